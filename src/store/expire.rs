//! Active expiry's mechanism, one shard at a time, as Redis's `activeExpireCycle` samples a
//! database: the thread that drives it, locks the shards and logs the DELs is server-level
//! (`crate::expiry`).
//!
//! A turn examines a window of at most `SAMPLE` deadlines (the window moves on each turn, so
//! over time every deadline is seen) and removes the expired keys. If more than a quarter of
//! the window had expired it looks again, at most `MAX_ROUNDS` times: the work under one lock
//! stays bounded.

use super::value::is_expired;
use super::{Bytes, Shard, Value};

const SAMPLE: usize = 32;
const MAX_ROUNDS: usize = 16;

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
            let len = self.expires.len();
            if *offset >= len {
                *offset = 0;
            }
            let window = SAMPLE.min(len - *offset);
            let expired: Vec<Bytes> = self
                .expires
                .iter()
                .skip(*offset)
                .take(window)
                .filter(|(_, d)| is_expired(**d, now))
                .map(|(k, _)| k.clone())
                .collect();
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
}
