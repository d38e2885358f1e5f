//! Active expiry: a background thread that finds expired keys nobody reads and removes them,
//! as Redis's `activeExpireCycle` does, so that they do not pile up in memory.
//!
//! Every tick (100 ms) it visits each shard that has deadlines, under the shard's write lock:
//! it examines a window of at most `SAMPLE` deadlines (the window moves on each tick, so over
//! time every deadline is seen), removes the expired keys, and logs a DEL for each to the AOF
//! before releasing the lock, as a command would. If more than a quarter of the window had
//! expired it looks again, at most `MAX_ROUNDS` times: the work under one lock stays bounded.

use std::sync::Arc;
use std::time::Duration;

use crate::commands::ctx::now_ms;
use crate::resp::reply::encode_command;
use crate::shared::Shared;
use crate::store::value::is_expired;
use crate::store::{Bytes, Slot, SHARDS};

use smallvec::smallvec;

pub const TICK: Duration = Duration::from_millis(100);
const SAMPLE: usize = 32;
const MAX_ROUNDS: usize = 16;

/// Starts the sweeper thread; it runs as long as the process.
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("active-expire".into())
        .spawn(move || {
            let mut sweeper = Sweeper::new(&shared);
            loop {
                std::thread::sleep(TICK);
                if !shared.is_loading() {
                    sweeper.sweep(&shared, now_ms());
                }
            }
        })?;
    Ok(())
}

/// Removes `key` from `db` if it has expired, logging its DEL: what a read that found it
/// expired leaves to do once its read locks are released. Checked again under the write lock,
/// since another client may have written the key in between.
pub fn remove_expired(shared: &Shared, db: usize, key: &[u8]) {
    let slot = Slot::of_key(db, key);
    let mut locked = shared.lock(smallvec![slot], true);
    let shard = locked.shard_mut(slot);
    if !shard.is_expired(key, now_ms()) || shared.is_loading() {
        return;
    }
    shard.remove(key);
    shared.watches.touch(db, key);
    shared.stats.expired_keys(1);
    let mut record = Vec::new();
    encode_command(&mut record, &[&b"DEL"[..], key]);
    shared.propagate(db, record, &locked);
}

/// Where each shard's window starts.
pub struct Sweeper {
    offsets: Vec<usize>,
}

impl Sweeper {
    pub fn new(shared: &Shared) -> Self {
        Sweeper {
            offsets: vec![0; shared.store.dbs.len() * SHARDS],
        }
    }

    /// One pass over every shard; returns how many keys it removed.
    pub fn sweep(&mut self, shared: &Shared, now: u64) -> u64 {
        let mut removed = 0;
        for (db, d) in shared.store.dbs.iter().enumerate() {
            for (i, lock) in d.shards.iter().enumerate() {
                if lock.read().expires.is_empty() {
                    continue;
                }
                let offset = &mut self.offsets[db * SHARDS + i];
                let slot = Slot {
                    db: db as u32,
                    shard: i as u32,
                };
                // Through `Shared::lock`, as a command's write, so that a running AOF rewrite
                // sees it too.
                let mut locked = shared.lock(smallvec![slot], true);
                let shard = locked.shard_mut(slot);
                let mut record = Vec::new();
                for _ in 0..MAX_ROUNDS {
                    let len = shard.expires.len();
                    if *offset >= len {
                        *offset = 0;
                    }
                    let window = SAMPLE.min(len - *offset);
                    let expired: Vec<Bytes> = shard
                        .expires
                        .iter()
                        .skip(*offset)
                        .take(window)
                        .filter(|(_, d)| is_expired(**d, now))
                        .map(|(k, _)| k.clone())
                        .collect();
                    // Removing leaves the others' iteration order as it was (the window moves
                    // past the keys that stay), unless the table shrank (see `Shard::remove`):
                    // then the walk starts over.
                    *offset += window - expired.len();
                    let capacity = shard.expires.capacity();
                    for k in &expired {
                        shard.remove(k);
                        shared.watches.touch(db, k);
                        encode_command(&mut record, &[&b"DEL"[..], k]);
                    }
                    if shard.expires.capacity() != capacity {
                        *offset = 0;
                    }
                    removed += expired.len() as u64;
                    shared.stats.expired_keys(expired.len() as u64);
                    if expired.len() * 4 <= window || shard.expires.is_empty() {
                        break;
                    }
                }
                if !record.is_empty() {
                    // Under the shard's lock: the AOF's order stays the store's order.
                    shared.propagate(db, record, &locked);
                }
            }
        }
        removed
    }
}
