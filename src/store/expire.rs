//! Active expiry's mechanism, one shard at a time, as Redis's `activeExpireCycle` samples a
//! database: the thread that drives it, locks the shards and logs the DELs is server-level
//! (`crate::expiry`).
//!
//! A turn examines a window of at most `SAMPLE` deadlines (the window moves on each turn, so
//! over time every deadline is seen) and removes the expired keys. If more than a quarter of
//! the window had expired it looks again, at most `MAX_ROUNDS` times: the work under one lock
//! stays bounded.

use super::value::is_expired;
use super::{Bytes, Shard};

const SAMPLE: usize = 32;
const MAX_ROUNDS: usize = 16;

impl Shard {
    /// One turn of the sweep over this shard, its window starting at `offset` (moved on for
    /// the next turn). Calls `removed` with each key it removes, and returns how many.
    pub fn expire_sample(
        &mut self,
        offset: &mut usize,
        now: u64,
        mut removed: impl FnMut(&[u8]),
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
                self.remove(k);
                removed(k);
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
