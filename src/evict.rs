//! Eviction: keeping the data under `maxmemory`, as Redis's performEvictions. Before each
//! command (`gate`), while the memory in use (`util::alloc::used`) is past the limit, keys the
//! policy picks are removed, each as a DEL in the AOF, an `evicted` event, a WATCH flag and a
//! tracking invalidation; when nothing can go (noeviction, or no key the policy may take), the
//! commands that may grow memory (`denyoom`) are refused with `-OOM`, and reads and deletes go
//! on. Which keys: `store::evict` (sampling, scores, the pool).
//!
//! Workers choose keys one at a time (the pool's lock), as Redis's single thread does, and
//! remove them in parallel.

use std::cell::Cell;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use smallvec::smallvec;

use crate::client::Client;
use crate::commands::{flags, CommandError, CommandSpec};
use crate::resp::reply::encode_command;
use crate::shared::Shared;
use crate::store::evict::{self as policy_of, Policy, Pool};
use crate::store::{ShardId, SHARDS};
use crate::util::alloc;

/// Under a memory limit, how far the resident set may grow past what is in use before the
/// heap's free pages are given back (a fraction of `maxmemory`, 1 MB at least): eviction
/// frees blocks all over the heap, which glibc keeps resident, and new blocks touch them
/// again, so the resident set would drift above the limit.
const TRIM_AT_FRACTION: u64 = 64;

/// Once a second from the pool's cron: under a memory limit, gives the heap's free pages back
/// to the system (as jemalloc's decay does for Redis) once the resident set's excess over the
/// memory in use has grown by `TRIM_AT_FRACTION` of the limit since the last trim. The excess
/// is measured on the resident set, not on glibc's free total: a trim leaves the free total
/// as it was (the blocks stay free, their pages go), so only the resident set tells that
/// reused pages came back. Free blocks between live ones keep their partial pages, so a heap
/// that stays fragmented is not trimmed again and again. MEMORY PURGE by hand does the same.
pub fn trim_heap() {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static LEFT_AFTER_TRIM: AtomicU64 = AtomicU64::new(0);
    let limit = policy_of::maxmemory();
    if limit == 0 {
        return;
    }
    let excess = || crate::util::resident::resident().saturating_sub(alloc::used());
    let (now, left) = (excess(), LEFT_AFTER_TRIM.load(Relaxed));
    if now < left {
        LEFT_AFTER_TRIM.store(now, Relaxed);
    } else if wants_trim(now, left, limit) {
        alloc::purge();
        LEFT_AFTER_TRIM.store(excess(), Relaxed);
    }
}

/// True when the resident set's excess over the memory in use (`excess`) has grown past
/// what the last trim left (`left`) by `TRIM_AT_FRACTION` of `limit` (1 MB at least).
fn wants_trim(excess: u64, left: u64, limit: u64) -> bool {
    excess.saturating_sub(left) > (limit / TRIM_AT_FRACTION).max(1 << 20)
}

pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

static POOL: Mutex<Pool> = Mutex::new(Pool::new());

thread_local! {
    /// Redis's `pre_command_oom_state`: memory was past the limit, with nothing to evict, when
    /// this thread's current command began. A script's first write is refused then.
    static OOM_AT_START: Cell<bool> = const { Cell::new(false) };
}

/// True if the running command began out of memory (see `OOM_AT_START`).
pub fn oom_at_start() -> bool {
    OOM_AT_START.with(|c| c.get())
}

/// The maxmemory gate of Redis's processCommand: evicts what the limit asks, and refuses
/// `spec` if memory is still over it and `spec` may grow it. Inside MULTI every command but
/// the ones that end it is refused then (queueing takes memory too); EXEC is refused if it
/// would run a `denyoom` command. Ok(true): keys were evicted meanwhile (their tracking
/// invalidations go before the command's reply, as Redis sends them).
/// `cmd_flags` are `spec`'s, or a script's declared ones (`commands::script::command_flags`).
pub fn gate(
    shared: &Shared,
    client: &Client,
    spec: &CommandSpec,
    cmd_flags: impl FnOnce() -> u32,
) -> Result<bool, CommandError> {
    if policy_of::maxmemory() == 0 {
        return Ok(false);
    }
    let evicted_before = shared
        .stats
        .evicted_keys
        .load(std::sync::atomic::Ordering::Relaxed);
    let oom = !perform(shared);
    OOM_AT_START.with(|c| c.set(oom));
    let evicted = shared
        .stats
        .evicted_keys
        .load(std::sync::atomic::Ordering::Relaxed)
        != evicted_before;
    if !oom {
        return Ok(evicted);
    }
    let deny = cmd_flags() & flags::DENYOOM != 0
        || match &client.multi {
            Some(m) if spec.has(flags::RUNS_QUEUE) => {
                m.queue.iter().any(|q| q.flags & flags::DENYOOM != 0)
            }
            Some(_) => !spec.has(flags::NOT_QUEUED),
            None => false,
        };
    if deny {
        Err(CommandError::Coded(OOM.into()))
    } else {
        Ok(evicted)
    }
}

/// Redis's evictionTimeLimitUs: how long one call may evict for, by
/// `maxmemory-eviction-tenacity` (None: until done).
fn time_limit() -> Option<Duration> {
    match policy_of::tenacity() {
        t @ 0..=10 => Some(Duration::from_micros(50 * t as u64)),
        100.. => None,
        t => Some(Duration::from_micros(
            (500.0 * 1.15f64.powi(t as i32 - 10)) as u64,
        )),
    }
}

/// Evicts until memory is under `maxmemory` (or the time limit passes: the next command goes
/// on). False if it is over the limit and nothing more can be evicted.
pub fn perform(shared: &Shared) -> bool {
    perform_for(shared, time_limit())
}

/// `perform` with no time limit: a lowered `maxmemory` takes effect before CONFIG SET answers.
pub fn perform_all(shared: &Shared) -> bool {
    perform_for(shared, None)
}

fn perform_for(shared: &Shared, budget: Option<Duration>) -> bool {
    let limit = policy_of::maxmemory();
    if limit == 0 || alloc::used() <= limit || shared.is_loading() {
        return true;
    }
    let used = counted_used(shared);
    if used <= limit {
        return true;
    }
    let policy = policy_of::policy();
    if policy == Policy::NoEviction {
        return false;
    }
    // As Redis's performEvictions: what is to be freed is fixed now, and each key counts
    // what its removal freed, not what its notifications took (invalidation messages to
    // clients that do not read them would otherwise drive the loop on until the database is
    // empty).
    let to_free = (used - limit) as i64;
    let start = Instant::now();
    let mut evicted = 0u64;
    let mut freed = 0i64;
    let mut key = KEY.take();
    while freed < to_free {
        // The pool's lock covers the choice only: removing the key (its shard's lock, the free
        // of a cold value, the AOF record) runs beside other workers' choices, so workers at
        // the limit evict in parallel. Together they may overshoot by a key each.
        let Some(db) = pick(shared, policy, &mut POOL.lock(), &mut key) else {
            KEY.set(key);
            return false;
        };
        if let Some(n) = remove(shared, policy, db, &key) {
            evicted += 1;
            freed += n;
        }
        // What this thread freed, in the total now (see `alloc`).
        alloc::flush();
        if evicted.is_multiple_of(16) && budget.is_some_and(|b| start.elapsed() > b) {
            break;
        }
    }
    KEY.set(key);
    true
}

/// `used_memory` as eviction counts it: less what Redis's freeMemoryGetNotCountedMemory
/// leaves out, the replication buffer beyond the backlog's size (what replicas have yet to
/// be sent: evicting keys for it would only feed them more), and output in flight.
pub fn counted_used(shared: &Shared) -> u64 {
    alloc::used().saturating_sub(not_counted(shared))
}

/// INFO's `mem_not_counted_for_evict`: with the replicas' part, the AOF records the writer
/// has yet to take (Redis's aof_buf) and the output other threads queued for clients (see
/// `clients::in_outboxes`).
pub fn not_counted(shared: &Shared) -> u64 {
    shared.repl.backlog.memory().replicas_part + aof_buffer(shared) + crate::clients::in_outboxes()
}

/// INFO's `mem_aof_buffer`: the records queued for the writer and its batch buffer.
pub fn aof_buffer(shared: &Shared) -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    let status = &shared.aof_handle().status;
    status.queued_bytes.load(Relaxed) + status.buf_bytes.load(Relaxed)
}

thread_local! {
    /// The key being evicted, copied out of the pool: a buffer per thread, not a block per
    /// eviction.
    static KEY: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Database numbers, inline up to Redis's default 16: copied out per eviction.
type LiveDbs = smallvec::SmallVec<[usize; 16]>;

/// The databases holding keys, looked up again every 100 ms: a database's size is a walk
/// over its shards, too much to pay for each key evicted.
fn live_dbs(shared: &Shared) -> LiveDbs {
    static CACHE: Mutex<Option<(Instant, LiveDbs)>> = Mutex::new(None);
    let mut cache = CACHE.lock();
    if let Some((at, dbs)) = &*cache {
        if at.elapsed() < Duration::from_millis(100) {
            return dbs.clone();
        }
    }
    let dbs: LiveDbs = (0..shared.store.dbs.len())
        .filter(|&db| {
            shared.store.dbs[db]
                .shards
                .iter()
                .any(|s| !s.read().map.is_empty())
        })
        .collect();
    *cache = Some((Instant::now(), dbs.clone()));
    dbs
}

/// Random shards of `db` tried before walking them all in order.
const RANDOM_TRIES: usize = 8;

/// Shards of `db` to look in: a few random ones, then every one.
fn shards_to_try(db: usize) -> impl Iterator<Item = ShardId> {
    let first = (policy_of::random() % SHARDS as u64) as usize;
    let random = (0..RANDOM_TRIES).map(|_| (policy_of::random() % SHARDS as u64) as usize);
    random
        .chain((0..SHARDS).map(move |i| (first + i) % SHARDS))
        .map(move |s| ShardId {
            db: db as u32,
            shard: s as u32,
        })
}

/// The next key to evict, copied into `key`, and its database: Redis's choice of `bestkey`.
fn pick(shared: &Shared, policy: Policy, pool: &mut Pool, key: &mut Vec<u8>) -> Option<usize> {
    let dbs = live_dbs(shared);
    if policy.random() {
        // As Redis: the next database with a key, round robin, and a random key there.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..dbs.len() {
            let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % dbs.len();
            let db = dbs[i];
            for id in shards_to_try(db) {
                let shard = shared.store.dbs[db].shards[id.shard as usize].read();
                if let Some(k) = shard.random_evictable(policy) {
                    key.clear();
                    key.extend_from_slice(&k);
                    return Some(db);
                }
            }
        }
        return None;
    }
    // The pool's best, unless it has gone meanwhile; refilled from every database first, a
    // shard of each (keys are spread over shards by hash, so a shard's keys are a random
    // sample of its database's).
    for _ in 0..4 {
        let samples = policy_of::samples();
        for &db in &dbs {
            for id in shards_to_try(db).take(RANDOM_TRIES + SHARDS) {
                let shard = shared.store.dbs[db].shards[id.shard as usize].read();
                if shard.evict_sample(policy, db, samples, pool) > 0 {
                    break;
                }
            }
        }
        while let Some(mut c) = pool.pop() {
            let id = ShardId::of_key(c.db, &c.key);
            let evictable = shared.store.dbs[c.db].shards[id.shard as usize]
                .read()
                .evictable(policy, &c.key);
            // The chosen key's buffer becomes the caller's, and the caller's goes back.
            if evictable {
                std::mem::swap(key, &mut c.key);
            }
            pool.recycle(c.key);
            if evictable {
                return Some(c.db);
            }
        }
    }
    None
}

/// Removes `key` from `db` if `policy` still may, as a DEL in the AOF; returns the bytes its
/// removal freed (its notifications and its record not counted, as Redis counts them).
fn remove(shared: &Shared, policy: Policy, db: usize, key: &[u8]) -> Option<i64> {
    let id = ShardId::of_key(db, key);
    let mut locked = shared.lock(smallvec![id], true);
    let shard = locked.key_mut(id, key);
    if !shard.evictable(policy, key) {
        return None;
    }
    // This thread's own count: other workers' allocations meanwhile (the clients its
    // invalidations reach, writing them out) are not this key's.
    let before = alloc::thread_net();
    let value = shard.evict(key);
    // The free at the end reads the block's header, a cold line (an evicted value is the
    // least used there is): asked for now, it arrives while the rest is done.
    if let Some(v) = &value {
        crate::util::prefetch(v.first_byte().wrapping_sub(8));
    }
    shared
        .stats
        .evicted_keys
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let unnoticed = alloc::thread_net();
    crate::notify::key_evicted(shared, db, key);
    if shared.propagates() {
        let mut record = Vec::new();
        encode_command(&mut record, &[&b"DEL"[..], key]);
        // Under the shard's lock: the AOF's order stays the store's order.
        shared.propagate(db, record, &locked);
    }
    let noticed = alloc::thread_net();
    drop(locked);
    drop(value);
    Some(before - alloc::thread_net() + (noticed - unnoticed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_heap_is_trimmed_once_its_resident_excess_grew_by_a_64th_of_the_limit() {
        let mb = 1 << 20;
        let limit = 100 * mb;
        assert!(
            !super::wants_trim(9 * mb, 8 * mb, limit),
            "1 MB of 100: not yet"
        );
        assert!(super::wants_trim(10 * mb, 8 * mb, limit));
        // A small limit still waits for a megabyte.
        assert!(!super::wants_trim(8 * mb + mb / 2, 8 * mb, 10 * mb));
        assert!(
            !super::wants_trim(5 * mb, 8 * mb, limit),
            "less than the trim left"
        );
    }
}
