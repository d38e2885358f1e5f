//! A hash, and the deadlines of its fields (Redis 7.4's hash field expiration, HEXPIRE and
//! the rest): rudis speaks Redis 7.0, but a Redis 7.4 `dump.rdb`, DUMP payload or AOF may
//! carry field deadlines, and dropping them would keep fields their owner meant to vanish.
//!
//! A field past its deadline is gone for every read (`get_live`, `iter_live`); it is removed
//! from memory, with an HDEL propagated, by the next write to the hash or by active expiry
//! (`commands::hash_ttl` and `crate::expiry`). HLEN counts it until then, as in Redis.

use std::collections::{BTreeSet, HashMap};

use super::dense::DenseTable;
use super::value::{is_expired, Bytes};

/// A hash: its fields and, once any field had a deadline, the deadlines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hash {
    fields: Fields,
    /// Some from the first field deadline a small hash gets, even once none is left: Redis's
    /// listpack turns into a `listpackex` then and stays one (OBJECT ENCODING, RDB type 25).
    /// A large hash drops it with its last deadline.
    ttl: Option<Box<FieldTtls>>,
}

/// Small hashes are a vector in insertion order, as Redis's listpack is: HGETALL on a small
/// hash lists fields in the order they were first set, and users see that order. Once it
/// has deadlines (a `listpackex`), the fields that have one come first, soonest first, as
/// Redis orders them.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    Small(Vec<(Bytes, Bytes)>),
    /// Fields and values in a dense vector with an index: HSCAN's cursor and HRANDFIELD's
    /// picks are positions in it (see `dense`).
    Large(DenseTable<(Bytes, Bytes)>),
}

impl Default for Fields {
    fn default() -> Self {
        Fields::Small(Vec::new())
    }
}

/// Field deadlines (Unix ms), by field and in time order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTtls {
    at: HashMap<Box<[u8]>, u64, ahash::RandomState>,
    by_time: BTreeSet<(u64, Box<[u8]>)>,
}

impl FieldTtls {
    fn set(&mut self, field: &[u8], at: u64) {
        if let Some(old) = self.at.insert(field.into(), at) {
            self.by_time.remove(&(old, field.into()));
        }
        self.by_time.insert((at, field.into()));
    }

    fn clear(&mut self, field: &[u8]) -> Option<u64> {
        let old = self.at.remove(field)?;
        self.by_time.remove(&(old, field.into()));
        Some(old)
    }
}

/// A field and its value, borrowed from a hash.
pub type FieldValue<'a> = (&'a [u8], &'a [u8]);

/// The latest deadline a field may have (Redis's EB_EXPIRE_TIME_MAX, 2^48 - 1 ms): what an
/// RDB file may hold.
pub const MAX_FIELD_DEADLINE: u64 = (1 << 48) - 1;

/// The latest deadline HEXPIRE and its kin may set (Redis's HFE_MAX_ABS_TIME_MSEC).
pub const MAX_SET_DEADLINE: u64 = MAX_FIELD_DEADLINE >> 2;

impl Hash {
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// OBJECT ENCODING's word for it.
    pub fn encoding(&self) -> &'static str {
        match (&self.fields, &self.ttl) {
            (Fields::Small(_), None) => "listpack",
            (Fields::Small(_), Some(_)) => "listpackex",
            (Fields::Large(_), _) => "hashtable",
        }
    }

    /// A small hash that had deadlines (written as RDB type 25, HASH_LISTPACK_EX).
    pub fn is_listpackex(&self) -> bool {
        self.is_small() && self.ttl.is_some()
    }

    pub fn is_small(&self) -> bool {
        matches!(self.fields, Fields::Small(_))
    }

    /// Every field, past its deadline or not (HLEN, as Redis's).
    pub fn len(&self) -> usize {
        match &self.fields {
            Fields::Small(v) => v.len(),
            Fields::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A field's value, past its deadline or not.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.fields {
            Fields::Small(v) => v.iter().find(|(f, _)| &**f == field).map(|(_, v)| &**v),
            Fields::Large(m) => m.get(field).map(|e| &*e.1),
        }
    }

    /// A field's value unless its deadline passed by `clock` (0: nothing expires).
    pub fn get_live(&self, field: &[u8], clock: u64) -> Option<&[u8]> {
        let v = self.get(field)?;
        (!self.is_field_expired(field, clock)).then_some(v)
    }

    /// Sets a field, clearing any deadline it had (HSET): true if it is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        let added = self.set_value(field, value);
        if !added {
            self.set_ttl(field, None);
        }
        added
    }

    /// Sets a field, keeping its deadline (HINCRBY, HINCRBYFLOAT): true if it is new.
    pub fn insert_keep_ttl(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.set_value(field, value)
    }

    fn set_value(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Fields::Small(v) = &mut self.fields {
            // Past `hash-max-listpack-entries` or `hash-max-listpack-value` a hash becomes a
            // hash table; a field's new value too long converts it as well, as in Redis.
            let max_value = super::limits::hash_max_value();
            let slot = v.iter_mut().find(|(f, _)| &**f == field);
            if let Some(slot) = slot.filter(|_| value.len() <= max_value) {
                slot.1 = value.into();
                return false;
            }
            if v.len() < super::limits::hash_max_entries()
                && field.len() <= max_value
                && value.len() <= max_value
            {
                v.push((field.into(), value.into()));
                return true;
            }
            let mut m = DenseTable::with_capacity(v.len() + 1);
            for e in v.drain(..) {
                m.push_new(e);
            }
            self.fields = Fields::Large(m);
            self.drop_ttls_if_large_and_none();
        }
        match &mut self.fields {
            // An existing field keeps its key: no allocation for the field name again.
            Fields::Large(m) => {
                let (slot, added) = m.get_or_push(field, || (field.into(), Bytes::default()));
                slot.1 = value.into();
                added
            }
            Fields::Small(_) => unreachable!("converted above"),
        }
    }

    /// Removes a field (and its deadline); true if it was there. Small hashes keep the order
    /// of the rest.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed = match &mut self.fields {
            Fields::Small(v) => match v.iter().position(|(f, _)| &**f == field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            Fields::Large(m) => m.remove(field).is_some(),
        };
        if removed {
            if let Some(ttl) = self.ttl.as_deref_mut() {
                ttl.clear(field);
            }
            self.drop_ttls_if_large_and_none();
        }
        removed
    }

    /// One HSCAN step: the next cursor (0 when done) and the fields of this step. A small hash
    /// is returned whole, as Redis does for a listpack; a large one gives `count` a step.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<FieldValue<'_>>) {
        match &self.fields {
            Fields::Small(_) => (0, self.iter().collect()),
            Fields::Large(m) => {
                let (next, positions) = m.scan(cursor, count);
                let fields = positions.map(|i| m.at(i)).map(|(f, v)| (&**f, &**v));
                (next, fields.collect())
            }
        }
    }

    /// The field and value at position `i` (below `len`), for random picks.
    pub fn at(&self, i: usize) -> (&[u8], &[u8]) {
        let (f, v) = match &self.fields {
            Fields::Small(v) => &v[i],
            Fields::Large(m) => m.at(i),
        };
        (f, v)
    }

    /// Every field and value, past its deadline or not.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match &self.fields {
            Fields::Small(v) => Box::new(v.iter().map(|(f, v)| (&**f, &**v))),
            Fields::Large(m) => Box::new(m.iter().map(|(f, v)| (&**f, &**v))),
        }
    }

    /// The fields whose deadline has not passed by `clock`.
    pub fn iter_live(&self, clock: u64) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let due = self.has_due(clock);
        self.iter()
            .filter(move |(f, _)| !due || !self.is_field_expired(f, clock))
    }

    /// How many fields are live at `clock`.
    pub fn live_len(&self, clock: u64) -> usize {
        self.len() - self.due_fields(clock).count()
    }

    /// A copy without the fields past their deadline at `clock` (for the reads that pick by
    /// position: HRANDFIELD).
    pub fn live_copy(&self, clock: u64) -> Hash {
        let mut h = self.clone();
        h.take_due(clock, usize::MAX);
        h
    }

    // ----- deadlines -----

    /// True if any field has a deadline.
    pub fn has_ttls(&self) -> bool {
        self.ttl.as_deref().is_some_and(|t| !t.at.is_empty())
    }

    /// The soonest field deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.ttl.as_deref()?.by_time.first().map(|e| e.0)
    }

    /// True if some field's deadline has passed at `clock`.
    pub fn has_due(&self, clock: u64) -> bool {
        self.next_deadline().is_some_and(|at| is_expired(at, clock))
    }

    pub fn ttl_of(&self, field: &[u8]) -> Option<u64> {
        self.ttl.as_deref()?.at.get(field).copied()
    }

    /// True if `field` has a deadline that has passed at `clock`.
    pub fn is_field_expired(&self, field: &[u8], clock: u64) -> bool {
        self.ttl_of(field).is_some_and(|at| is_expired(at, clock))
    }

    /// Readies a hash for deadlines (HEXPIRE's first step, which in Redis turns a listpack
    /// into a listpackex whatever the fields turn out to be).
    pub fn allow_ttls(&mut self) {
        if self.ttl.is_none() && self.is_small() {
            self.ttl = Some(Box::default());
        }
    }

    /// Sets (Some) or clears (None) an existing field's deadline, moving it in a small hash
    /// to where Redis's listpackex keeps it.
    pub fn set_ttl(&mut self, field: &[u8], at: Option<u64>) {
        match at {
            Some(at) => self.ttl.get_or_insert_with(Box::default).set(field, at),
            None => {
                let cleared = self
                    .ttl
                    .as_deref_mut()
                    .is_some_and(|t| t.clear(field).is_some());
                if !cleared {
                    return;
                }
            }
        }
        self.placed(field, at);
        self.drop_ttls_if_large_and_none();
    }

    /// Adds a field with its deadline at the end, as it comes in a file written by Redis
    /// (a listpackex's tuples are in Redis's order already). True if the field is new.
    pub fn push_loaded(&mut self, field: &[u8], value: &[u8], at: Option<u64>) -> bool {
        if !self.set_value(field, value) {
            return false;
        }
        match at {
            Some(at) => self.ttl.get_or_insert_with(Box::default).set(field, at),
            None => self.allow_ttls(),
        }
        true
    }

    /// The fields whose deadline has passed at `clock`, soonest first.
    pub fn due_fields(&self, clock: u64) -> impl Iterator<Item = &[u8]> + '_ {
        let due = self.ttl.as_deref().map(|t| {
            t.by_time
                .iter()
                .take_while(move |(at, _)| is_expired(*at, clock))
                .map(|(_, f)| &f[..])
        });
        due.into_iter().flatten()
    }

    /// Removes up to `max` fields whose deadline has passed at `clock`, soonest first, and
    /// returns them.
    pub fn take_due(&mut self, clock: u64, max: usize) -> Vec<Bytes> {
        let due: Vec<Bytes> = self.due_fields(clock).take(max).map(Bytes::from).collect();
        for f in &due {
            self.remove(f);
        }
        due
    }

    /// A small hash with deadlines keeps the fields that have one first, soonest first (a
    /// new one before those of the same time), then the others in the order they came:
    /// moves `field` to its place after its deadline changed.
    fn placed(&mut self, field: &[u8], at: Option<u64>) {
        let Fields::Small(v) = &mut self.fields else {
            return;
        };
        let Some(i) = v.iter().position(|(f, _)| &**f == field) else {
            return;
        };
        let entry = v.remove(i);
        let ttl = self.ttl.as_deref();
        let deadline = |f: &Bytes| ttl.and_then(|t| t.at.get(&f[..]).copied());
        let to = match at {
            None => v.len(),
            Some(at) => v
                .iter()
                .position(|(f, _)| deadline(f).is_none_or(|d| d >= at))
                .unwrap_or(v.len()),
        };
        v.insert(to, entry);
    }

    fn drop_ttls_if_large_and_none(&mut self) {
        if !self.is_small() && self.ttl.as_deref().is_some_and(|t| t.at.is_empty()) {
            self.ttl = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(h: &Hash) -> Vec<String> {
        h.iter()
            .map(|(f, _)| String::from_utf8_lossy(f).into_owned())
            .collect()
    }

    #[test]
    fn small_hash_keeps_insertion_order_and_converts() {
        let mut h = Hash::default();
        assert!(h.insert(b"b", b"1"));
        assert!(h.insert(b"a", b"2"));
        assert!(!h.insert(b"b", b"3"));
        assert_eq!(order(&h), ["b", "a"]);
        assert_eq!(h.get(b"b"), Some(&b"3"[..]));
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        for i in 0..600 {
            h.insert(format!("f{i}").as_bytes(), b"v");
        }
        assert!(matches!(h.fields(), Fields::Large(_)));
        assert_eq!(h.len(), 601);
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));
    }

    #[test]
    fn fields_with_deadlines_come_first_soonest_first_as_in_a_listpackex() {
        let mut h = Hash::default();
        for f in ["a", "b", "c", "d"] {
            h.insert(f.as_bytes(), b"v");
        }
        assert_eq!(h.encoding(), "listpack");
        h.allow_ttls();
        h.set_ttl(b"c", Some(1000));
        h.set_ttl(b"d", Some(500));
        assert_eq!(order(&h), ["d", "c", "a", "b"]);
        assert_eq!(h.encoding(), "listpackex");
        // A new deadline equal to another's goes before it.
        h.set_ttl(b"a", Some(1000));
        assert_eq!(order(&h), ["d", "a", "c", "b"]);
        // Cleared, by HPERSIST or by HSET's new value, a field goes to the end.
        h.set_ttl(b"d", None);
        assert_eq!(order(&h), ["a", "c", "b", "d"]);
        assert!(!h.insert(b"c", b"new"));
        assert_eq!(order(&h), ["a", "b", "d", "c"]);
        assert_eq!(h.ttl_of(b"c"), None);
        // HINCRBY keeps both the deadline and the place.
        h.insert_keep_ttl(b"a", b"7");
        assert_eq!((order(&h)[0].as_str(), h.ttl_of(b"a")), ("a", Some(1000)));
        // The encoding stays listpackex with no deadline left.
        h.set_ttl(b"a", None);
        assert!(!h.has_ttls());
        assert_eq!(h.encoding(), "listpackex");
    }

    #[test]
    fn fields_past_their_deadline_read_as_absent_and_are_taken_soonest_first() {
        let mut h = Hash::default();
        for i in 0..10 {
            h.insert(format!("f{i}").as_bytes(), b"v");
        }
        h.set_ttl(b"f3", Some(100));
        h.set_ttl(b"f1", Some(50));
        h.set_ttl(b"f2", Some(300));
        assert_eq!(
            h.get_live(b"f1", 0),
            Some(&b"v"[..]),
            "clock 0: nothing expires"
        );
        assert_eq!(h.get_live(b"f1", 101), None);
        assert_eq!(h.get_live(b"f2", 101), Some(&b"v"[..]));
        assert_eq!(h.live_len(101), 8);
        assert_eq!(h.iter_live(101).count(), 8);
        assert_eq!(h.len(), 10, "HLEN counts them until they are removed");
        assert!(h.has_due(101) && !h.has_due(50));
        assert_eq!(h.take_due(101, 1), vec![Bytes::from("f1")]);
        assert_eq!(h.take_due(101, 10), vec![Bytes::from("f3")]);
        assert_eq!(h.next_deadline(), Some(300));
        assert_eq!(h.len(), 8);
        assert_eq!(h.live_copy(301).len(), 7);
    }

    #[test]
    fn a_large_hash_forgets_its_deadlines_with_the_last_one() {
        let mut h = Hash::default();
        for i in 0..600 {
            h.insert(format!("f{i}").as_bytes(), b"v");
        }
        h.allow_ttls();
        assert_eq!(h.encoding(), "hashtable");
        h.set_ttl(b"f1", Some(10));
        assert!(h.has_ttls());
        h.remove(b"f1");
        assert!(!h.has_ttls() && h.next_deadline().is_none());
        // A small one with deadlines that grows keeps them.
        let mut s = Hash::default();
        s.insert(b"x", b"1");
        s.set_ttl(b"x", Some(10));
        for i in 0..600 {
            s.insert(format!("f{i}").as_bytes(), b"v");
        }
        assert_eq!((s.encoding(), s.ttl_of(b"x")), ("hashtable", Some(10)));
    }
}
