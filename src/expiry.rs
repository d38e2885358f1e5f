//! Active expiry: a background thread that finds expired keys nobody reads and removes them,
//! as Redis's `activeExpireCycle` does, so that they do not pile up in memory.
//!
//! Every tick (100 ms) it gives each shard that has deadlines a turn of
//! `Shard::expire_sample`, under the shard's write lock, and logs a DEL for each key removed
//! to the AOF before releasing the lock, as a command would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smallvec::smallvec;

use crate::resp::reply::encode_command;
use crate::shared::Shared;
use crate::store::expire::FIELD_DEADLINES;
use crate::store::{ShardId, SHARDS};
use crate::util::clock::now_ms;

pub const TICK: Duration = Duration::from_millis(100);

/// DEBUG SET-ACTIVE-EXPIRE: off, the sweeper leaves expired keys until something reads them
/// (Redis's tests use it to see lazy expiry alone).
static ACTIVE: AtomicBool = AtomicBool::new(true);

pub fn set_active(on: bool) {
    ACTIVE.store(on, Ordering::Relaxed);
}

/// Starts the sweeper thread; it runs as long as the process.
pub fn spawn(shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("active-expire".into())
        .spawn(move || {
            let mut sweeper = Sweeper::new(&shared);
            loop {
                std::thread::sleep(TICK);
                crate::store::evict::tick(now_ms());
                crate::util::alloc::peak();
                // Redis's serverCron keeps the tracking table under its limit (lowered at
                // run time, it evicts with no command needed).
                if !crate::pool::cron_paused() {
                    let _ = shared.tracking.enforce_limit(&shared);
                }
                // As Redis, nothing expires actively while clients are paused (a pause is a
                // failover's window: the data must not change under it).
                let paused = shared.ops.pause.kind() != crate::ops::pause::PauseKind::Off;
                // A replica's keys expire by its master's DELs, but for those its own
                // clients wrote (Redis's expireSlaveKeys).
                if !shared.is_loading() && !paused && ACTIVE.load(Ordering::Relaxed) {
                    let started = std::time::Instant::now();
                    if shared.repl.is_replica() {
                        sweep_local(&shared, now_ms());
                    } else {
                        shared.repl.local_expires.lock().clear();
                        sweeper.sweep(&shared, now_ms());
                    }
                    let ms = started.elapsed().as_millis() as u64;
                    shared.ops.latency.add_if_needed("expire-cycle", ms);
                }
            }
        })?;
    Ok(())
}

/// A replica's pass over the keys its own clients gave a deadline: the expired ones are
/// removed (and their DELs logged and passed on, as Redis's expireSlaveKeys does), those
/// without a deadline any more are forgotten.
fn sweep_local(shared: &Shared, now: u64) {
    let keys: Vec<(usize, Vec<u8>)> = {
        let set = shared.repl.local_expires.lock();
        if set.is_empty() {
            return;
        }
        set.iter().cloned().collect()
    };
    for (db, key) in keys {
        let id = ShardId::of_key(db, &key);
        let mut locked = shared.lock(smallvec![id], true);
        let shard = locked.shard_mut(id);
        let Some(deadline) = shard.deadline(&key) else {
            shared.repl.local_expires.lock().remove(&(db, key));
            continue;
        };
        if !crate::store::value::is_expired(deadline, now) {
            continue;
        }
        if let Some(v) = shard.remove(&key) {
            let mut record = Vec::new();
            expired(shared, db, &key, &v, &mut record);
            shared.stats.expired_keys(1);
            shared.propagate(db, record, &locked);
        }
        shared.repl.local_expires.lock().remove(&(db, key));
    }
    shared.blocking.drain(shared);
}

/// What follows a key's removal by active expiry, under its shard's lock: its DEL for the
/// record, its blocked clients told, its keyspace event.
fn expired(shared: &Shared, db: usize, key: &[u8], v: &crate::store::Value, record: &mut Vec<u8>) {
    encode_command(record, &[&b"DEL"[..], key]);
    shared.blocking.value_left(db, key, v);
    crate::notify::key_expired(shared, db, key);
}

/// One turn of hash field expiry in database `db`: the fields past their deadline go, each
/// logged as an HDEL (with no DEL when the key goes with its last field: the replica's HDEL
/// removes it too), hash by hash in the order of their soonest deadline across the shards,
/// as Redis 7.4's active expiry of fields takes them (its AOF and replicas see that order).
/// Returns false if no shard of `db` has any hash filed.
fn expire_fields(shared: &Shared, db: usize, offsets: &mut [usize], now: u64) -> bool {
    let mut due: Vec<(u64, usize, crate::store::Bytes)> = Vec::new();
    let mut any = false;
    for (i, lock) in shared.store.dbs[db].shards.iter().enumerate() {
        let s = lock.read();
        if !s.field_expires.is_empty() {
            any = true;
            let found = s.field_candidates(&mut offsets[i], now);
            due.extend(found.into_iter().map(|(at, key)| (at, i, key)));
        }
    }
    due.sort_unstable_by_key(|(at, i, _)| (*at, *i));
    let mut quota = crate::store::expire::FIELDS_PER_TURN;
    for (_, shard, key) in due {
        if quota == 0 {
            break;
        }
        let id = ShardId {
            db: db as u32,
            shard: shard as u32,
        };
        let mut locked = shared.lock(smallvec![id], true);
        let Some(gone) = locked.key_mut(id, &key).expire_fields(&key, now, quota) else {
            continue;
        };
        quota = quota.saturating_sub(gone.fields.len());
        let n = gone.fields.len() as u64;
        crate::notify::fields_expired(shared, db, &key, n, gone.emptied);
        shared.propagate(db, hdels(&key, &gone.fields), &locked);
        shared.tracking.broadcast(shared);
    }
    any
}

/// The record of hash fields' expiry: an HDEL per field, as Redis 7.4 propagates it.
pub fn hdels(key: &[u8], fields: &[crate::store::Bytes]) -> Vec<u8> {
    let mut record = Vec::new();
    for f in fields {
        encode_command(&mut record, &[&b"HDEL"[..], key, f]);
    }
    record
}

/// Where each shard's windows start (its keys' deadlines, its hashes' field deadlines).
pub struct Sweeper {
    offsets: Vec<usize>,
    field_offsets: Vec<usize>,
}

impl Sweeper {
    pub fn new(shared: &Shared) -> Self {
        Sweeper {
            offsets: vec![0; shared.store.dbs.len() * SHARDS],
            field_offsets: vec![0; shared.store.dbs.len() * SHARDS],
        }
    }

    /// One pass over every shard; returns how many keys it removed.
    pub fn sweep(&mut self, shared: &Shared, now: u64) -> u64 {
        let mut removed = 0;
        // Cleared before the pass: a hash filed meanwhile sets it again.
        let fields = FIELD_DEADLINES.swap(false, Ordering::AcqRel);
        for (db, d) in shared.store.dbs.iter().enumerate() {
            let offsets = &mut self.field_offsets[db * SHARDS..(db + 1) * SHARDS];
            if fields && expire_fields(shared, db, offsets, now) {
                FIELD_DEADLINES.store(true, Ordering::Release);
            }
            for (i, lock) in d.shards.iter().enumerate() {
                if lock.read().expires.is_empty() {
                    continue;
                }
                let offset = &mut self.offsets[db * SHARDS + i];
                let id = ShardId {
                    db: db as u32,
                    shard: i as u32,
                };
                // Through `Shared::lock`, as a command's write, so that a running AOF rewrite
                // sees it too.
                let mut locked = shared.lock(smallvec![id], true);
                let mut record = Vec::new();
                // No WATCH flag: EXEC tells an expiry from the state it saw at WATCH.
                let n = locked
                    .shard_mut(id)
                    .expire_sample(offset, now, |k, v| expired(shared, db, k, v, &mut record));
                removed += n;
                shared.stats.expired_keys(n);
                if !record.is_empty() {
                    // Under the shard's lock: the AOF's order stays the store's order.
                    shared.propagate(db, record, &locked);
                }
            }
        }
        // Once the locks are released, as after a command: an expired stream's XREADGROUP
        // waiters are told it went.
        shared.blocking.drain(shared);
        removed
    }
}
