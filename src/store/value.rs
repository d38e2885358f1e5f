//! What a key holds.

pub use super::bytes::CompactBytes;
use super::dense::DenseTable;
pub use super::list::List;
pub use super::set::Set;
pub use super::stream::Stream;
pub use super::zset::ZSet;

/// Key and field bytes: 16 bytes, inline up to 15 (see `bytes.rs` for why).
pub type Bytes = CompactBytes;

/// A string value. Construct with `Str::from(vec)` or `.into()` and read through `Deref<[u8]>`:
/// it may become a compact inline type, so code must not rely on it being a `Vec`.
pub type Str = CompactBytes;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Str),
    /// Boxed so that the pointer fits beside `CompactBytes`'s niche: a `Value` is 16 bytes.
    Hash(Box<Hash>),
    List(Box<List>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

impl Value {
    /// Where the value's first bytes outside its bucket are (or the bucket's, for an inline
    /// string): what a walk over many values prefetches (see `util::prefetch`).
    pub fn first_byte(&self) -> *const u8 {
        match self {
            Value::Str(s) => s.as_ptr(),
            Value::Hash(h) => std::ptr::from_ref(&**h).cast(),
            Value::List(l) => std::ptr::from_ref(&**l).cast(),
            Value::Set(s) => std::ptr::from_ref(&**s).cast(),
            Value::ZSet(z) => std::ptr::from_ref(&**z).cast(),
            Value::Stream(s) => std::ptr::from_ref(&**s).cast(),
        }
    }

    pub fn str(b: &[u8]) -> Value {
        Value::Str(Str::from(b))
    }

    pub fn hash(h: Hash) -> Value {
        Value::Hash(Box::new(h))
    }

    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
}

/// Redis counts a key as expired only once the clock has passed its deadline.
pub fn is_expired(deadline: u64, clock: u64) -> bool {
    clock > deadline
}

/// A hash. Small ones are a vector in insertion order, as Redis's listpack is: HGETALL on a small
/// hash lists fields in the order they were first set, and users see that order.
#[derive(Debug, Clone, PartialEq)]
pub enum Hash {
    Small(Vec<(Bytes, Bytes)>),
    /// Fields and values in a dense vector with an index: HSCAN's cursor and HRANDFIELD's
    /// picks are positions in it (see `dense`).
    Large(DenseTable<(Bytes, Bytes)>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Small(Vec::new())
    }
}

/// A field and its value, borrowed from a hash.
pub type FieldValue<'a> = (&'a [u8], &'a [u8]);

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Small(v) => v.len(),
            Hash::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Small(v) => v.iter().find(|(f, _)| &**f == field).map(|(_, v)| &**v),
            Hash::Large(m) => m.get(field).map(|e| &*e.1),
        }
    }

    /// Sets a field; true if it is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Hash::Small(v) = self {
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
            *self = Hash::Large(m);
        }
        match self {
            // An existing field keeps its key: no allocation for the field name again.
            Hash::Large(m) => {
                let (slot, added) = m.get_or_push(field, || (field.into(), Bytes::default()));
                slot.1 = value.into();
                added
            }
            Hash::Small(_) => unreachable!("converted above"),
        }
    }

    /// Removes a field; true if it was there. Small hashes keep the order of the rest.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Small(v) => match v.iter().position(|(f, _)| &**f == field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            Hash::Large(m) => m.remove(field).is_some(),
        }
    }

    /// One HSCAN step: the next cursor (0 when done) and the fields of this step. A small hash
    /// is returned whole, as Redis does for a listpack; a large one gives `count` a step.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<FieldValue<'_>>) {
        match self {
            Hash::Small(_) => (0, self.iter().collect()),
            Hash::Large(m) => {
                let (next, positions) = m.scan(cursor, count);
                let fields = positions.map(|i| m.at(i)).map(|(f, v)| (&**f, &**v));
                (next, fields.collect())
            }
        }
    }

    /// The field and value at position `i` (below `len`), for random picks.
    pub fn at(&self, i: usize) -> (&[u8], &[u8]) {
        let (f, v) = match self {
            Hash::Small(v) => &v[i],
            Hash::Large(m) => m.at(i),
        };
        (f, v)
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Hash::Small(v) => Box::new(v.iter().map(|(f, v)| (&**f, &**v))),
            Hash::Large(m) => Box::new(m.iter().map(|(f, v)| (&**f, &**v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_hash_keeps_insertion_order_and_converts() {
        let mut h = Hash::default();
        assert!(h.insert(b"b", b"1"));
        assert!(h.insert(b"a", b"2"));
        assert!(!h.insert(b"b", b"3"));
        let fields: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(
            fields,
            vec![
                (b"b".to_vec(), b"3".to_vec()),
                (b"a".to_vec(), b"2".to_vec())
            ]
        );
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        for i in 0..600 {
            h.insert(format!("f{i}").as_bytes(), b"v");
        }
        assert!(matches!(h, Hash::Large(_)));
        assert_eq!(h.len(), 601);
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A map bucket is key + value; keep both small (the memory goal depends on it).
    #[test]
    fn value_is_small() {
        assert_eq!(std::mem::size_of::<Bytes>(), 16);
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }
}
