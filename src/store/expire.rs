//! Active expiry's mechanism, one shard at a time, as Redis's `activeExpireCycle` samples a
//! database: the thread that drives it, locks the shards and logs the DELs is server-level
//! (`crate::expiry`).
//!
//! A turn examines a window of at most `SAMPLE` deadlines (the window moves on each turn, so
//! over time every deadline is seen) and removes the expired keys. If more than a quarter of
//! the window had expired it looks again, at most `MAX_ROUNDS` times: the work under one lock
//! stays bounded.
//!
//! Hash fields with deadlines (Redis 7.4's HEXPIRE) expire the same way: a turn looks at a
//! window of the keys in `field_expires` whose time has come (`field_candidates`), and each
//! such hash gives up its fields past their deadline (`expire_fields`), at most
//! `FIELDS_PER_TURN` of them a turn.

use std::sync::atomic::AtomicBool;

use super::keymap::KeyMap;
use super::value::is_expired;
use super::{hash_key, Bytes, Shard, Value};

const SAMPLE: usize = 32;
const MAX_ROUNDS: usize = 16;

/// The most hash fields a turn removes from one shard (Redis's active expiry has a quota of
/// fields per cycle too): a hash of millions of expired fields cannot hold the lock long.
pub const FIELDS_PER_TURN: usize = 1000;

/// False while no shard has filed a hash with field deadlines since the sweep last found
/// none: the sweep then skips the pass over every shard (most data sets have none).
pub static FIELD_DEADLINES: AtomicBool = AtomicBool::new(false);

/// What active expiry took from one hash.
pub struct ExpiredFields {
    pub fields: Vec<Bytes>,
    /// The hash lost its last field, and so the key went.
    pub emptied: bool,
}

/// The keys of `times` past their time at `now` (with the time) in a window of at most `size`
/// entries from `offset` (reset to the start once past the end), and the window's length.
fn due_in_window(
    times: &KeyMap<u64>,
    offset: &mut usize,
    size: usize,
    now: u64,
) -> (usize, Vec<(u64, Bytes)>) {
    let len = times.len();
    if *offset >= len {
        *offset = 0;
    }
    let window = size.min(len - *offset);
    let due = times
        .iter()
        .skip(*offset)
        .take(window)
        .filter(|(_, t)| is_expired(**t, now))
        .map(|(k, t)| (*t, k.clone()))
        .collect();
    (window, due)
}

impl Shard {
    /// One turn of the sweep over this shard, its window starting at `offset` (moved on for
    /// the next turn). Calls `removed` with each key it removes and its value, and returns how
    /// many.
    pub fn expire_sample(
        &mut self,
        offset: &mut usize,
        now: u64,
        mut removed: impl FnMut(&[u8], &Value),
    ) -> u64 {
        let mut count = 0;
        for _ in 0..MAX_ROUNDS {
            let (window, expired) = due_in_window(&self.expires, offset, SAMPLE, now);
            let expired: Vec<Bytes> = expired.into_iter().map(|(_, k)| k).collect();
            // Removing leaves the others' iteration order as it was (the window moves past
            // the keys that stay), unless the table shrank (see `Shard::remove`): then the
            // walk starts over.
            *offset += window - expired.len();
            let capacity = self.expires.capacity();
            for k in &expired {
                if let Some(v) = self.remove(k) {
                    removed(k, &v);
                }
            }
            if self.expires.capacity() != capacity {
                *offset = 0;
            }
            count += expired.len() as u64;
            if expired.len() * 4 <= window || self.expires.is_empty() {
                break;
            }
        }
        count
    }

    /// The keys of a window of `field_expires` (from `offset`, moved on) whose hash may have
    /// a field past its deadline at `now`, each with the time it was filed by.
    pub fn field_candidates(&self, offset: &mut usize, now: u64) -> Vec<(u64, Bytes)> {
        let (window, due) = due_in_window(&self.field_expires, offset, SAMPLE * 4, now);
        *offset += window;
        due
    }

    /// Removes up to `max` fields past their deadline at `now` from the hash at `key` (the
    /// key too if that empties it), and files the key again by its next deadline, or drops
    /// it from `field_expires` when it has none (or holds no hash any more, or has expired
    /// itself: the key's own expiry deletes it).
    pub fn expire_fields(&mut self, key: &[u8], now: u64, max: usize) -> Option<ExpiredFields> {
        let h = hash_key(key);
        let key_expired = self.is_expired_hashed(h, key, now);
        let hash = match self.map.find_mut_hashed(h, key) {
            Some((_, Value::Hash(hash))) if !key_expired && hash.has_ttls() => hash,
            _ => {
                self.field_expires.remove_entry_hashed(h, key);
                return None;
            }
        };
        let fields = hash.take_due(now, max);
        let (emptied, next) = (hash.is_empty(), hash.next_deadline());
        if emptied {
            self.remove_hashed(h, key);
        } else {
            match next {
                Some(at) => {
                    if let Some(e) = self.field_expires.find_mut_hashed(h, key) {
                        e.1 = at;
                    }
                }
                None => {
                    self.field_expires.remove_entry_hashed(h, key);
                }
            }
        }
        (!fields.is_empty()).then_some(ExpiredFields { fields, emptied })
    }

    /// Removes those of `fields` of the hash at `key` whose deadline has passed at `now` (the
    /// key too if that empties it): the lazy expiry of the fields a command read.
    pub fn remove_expired_fields<F: AsRef<[u8]>>(
        &mut self,
        key: &[u8],
        fields: &[F],
        now: u64,
    ) -> Option<ExpiredFields> {
        let h = hash_key(key);
        let Some(Value::Hash(hash)) = self.get_mut_hashed(h, key) else {
            return None;
        };
        let gone: Vec<Bytes> = fields
            .iter()
            .map(AsRef::as_ref)
            .filter(|f| hash.is_field_expired(f, now) && hash.remove(f))
            .map(Bytes::from)
            .collect();
        if gone.is_empty() {
            return None;
        }
        let emptied = hash.is_empty();
        if emptied {
            self.remove_hashed(h, key);
        }
        Some(ExpiredFields {
            fields: gone,
            emptied,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{hash_key, Value};
    use super::*;

    #[test]
    fn a_turn_removes_the_expired_keys_it_samples_and_keeps_the_others() {
        let mut s = Shard::default();
        for i in 0..100 {
            let k = format!("k{i}");
            s.insert_hashed(hash_key(k.as_bytes()), k.as_bytes(), Value::str(b"v"));
            // Keys 0..80 are past their deadline at 10, the others not.
            let deadline = if i < 80 { 5 } else { 50 };
            s.expires.insert(Bytes::from(k.as_str()), deadline);
        }
        let (mut offset, mut seen) = (0, Vec::new());
        let mut removed = 0;
        for _ in 0..10 {
            removed += s.expire_sample(&mut offset, 10, |k, _| seen.push(k.to_vec()));
        }
        assert_eq!(removed, 80);
        assert_eq!(seen.len(), 80);
        assert_eq!(s.expires.len(), 20);
        assert!(s.get_hashed(hash_key(b"k0"), b"k0").is_none());
        assert!(s.get_hashed(hash_key(b"k99"), b"k99").is_some());
    }

    #[test]
    fn hash_fields_past_their_deadline_are_taken_and_the_key_filed_again() {
        let mut s = Shard::default();
        let mut h = crate::store::Hash::default();
        for f in ["a", "b", "c"] {
            h.insert(f.as_bytes(), b"v");
        }
        h.set_ttl(b"a", Some(5));
        h.set_ttl(b"b", Some(50));
        s.insert_hashed(hash_key(b"h"), b"h", Value::hash(h));
        assert_eq!(
            s.field_expires.get(b"h"),
            Some(&5),
            "filed by its soonest deadline"
        );
        let mut offset = 0;
        assert!(
            s.field_candidates(&mut offset, 5).is_empty(),
            "not yet past"
        );
        assert_eq!(
            s.field_candidates(&mut offset, 10),
            vec![(5, Bytes::from("h"))]
        );
        let got = s.expire_fields(b"h", 10, 100).unwrap();
        assert_eq!((got.fields, got.emptied), (vec![Bytes::from("a")], false));
        assert_eq!(s.field_expires.get(b"h"), Some(&50));
        let got = s.expire_fields(b"h", 60, 100).unwrap();
        assert_eq!(got.fields, vec![Bytes::from("b")]);
        assert!(s.field_expires.get(b"h").is_none(), "no deadline left");
        // The last field going takes the key with it.
        let mut h = crate::store::Hash::default();
        h.insert(b"x", b"1");
        h.set_ttl(b"x", Some(5));
        s.insert_hashed(hash_key(b"g"), b"g", Value::hash(h));
        let got = s.expire_fields(b"g", 10, 100).unwrap();
        assert!(got.emptied && s.get_hashed(hash_key(b"g"), b"g").is_none());
        assert!(s.field_expires.is_empty());
    }
}
