//! What eviction knows of keys, as Redis's evict.c: the policy and its settings, each key's
//! 24-bit access clock (LRU) or logarithmic counter (LFU), and the pool of best candidates
//! that sampling fills. Which keys to remove is decided here; removing them (locks, AOF, events)
//! is server-level (`crate::evict`).
//!
//! The 24 bits live in the spare bytes of the key's own `CompactBytes` (see `bytes.rs`), so an
//! entry is no larger than before. Under an LRU policy (and noeviction, so that OBJECT IDLETIME
//! answers) they hold the clock in seconds, as Redis's `LRU_CLOCK`; under an LFU policy the top
//! 16 bits are the minutes of the last decrement and the low 8 the counter.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::{Bytes, Shard, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    NoEviction = 0,
    AllkeysLru,
    VolatileLru,
    AllkeysLfu,
    VolatileLfu,
    AllkeysRandom,
    VolatileRandom,
    VolatileTtl,
}

const POLICIES: [(Policy, &str); 8] = [
    (Policy::NoEviction, "noeviction"),
    (Policy::AllkeysLru, "allkeys-lru"),
    (Policy::VolatileLru, "volatile-lru"),
    (Policy::AllkeysLfu, "allkeys-lfu"),
    (Policy::VolatileLfu, "volatile-lfu"),
    (Policy::AllkeysRandom, "allkeys-random"),
    (Policy::VolatileRandom, "volatile-random"),
    (Policy::VolatileTtl, "volatile-ttl"),
];

impl Policy {
    pub fn parse(name: &str) -> Option<Policy> {
        POLICIES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(p, _)| *p)
    }

    pub fn name(self) -> &'static str {
        POLICIES[self as usize].1
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }

    /// Only keys with a deadline may go.
    pub fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    pub fn random(self) -> bool {
        matches!(self, Policy::AllkeysRandom | Policy::VolatileRandom)
    }
}

/// Redis's MAXMEMORY_FLAG_NO_SHARED_INTEGERS: under a memory limit with an LRU or LFU policy
/// Redis gives each small integer an object of its own (the access clock lives there), so
/// OBJECT REFCOUNT shows one reference rather than the shared count.
pub fn shares_integers() -> bool {
    maxmemory() == 0
        || !matches!(
            policy(),
            Policy::AllkeysLru | Policy::VolatileLru | Policy::AllkeysLfu | Policy::VolatileLfu
        )
}

static POLICY: AtomicU8 = AtomicU8::new(Policy::NoEviction as u8);
static MAXMEMORY: AtomicU64 = AtomicU64::new(0);
static SAMPLES: AtomicU32 = AtomicU32::new(5);
static TENACITY: AtomicU32 = AtomicU32::new(10);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);
/// Unix seconds, as of the last `tick`: the clock keys are stamped with.
static SECONDS: AtomicU64 = AtomicU64::new(0);

pub fn policy() -> Policy {
    POLICIES[POLICY.load(Ordering::Relaxed) as usize & 7].0
}
pub fn set_policy(p: Policy) {
    POLICY.store(p as u8, Ordering::Relaxed);
}
/// `maxmemory` in bytes; 0: no limit.
#[inline]
pub fn maxmemory() -> u64 {
    MAXMEMORY.load(Ordering::Relaxed)
}
pub fn set_maxmemory(n: u64) {
    MAXMEMORY.store(n, Ordering::Relaxed);
}
pub fn samples() -> usize {
    SAMPLES.load(Ordering::Relaxed) as usize
}
pub fn set_samples(n: u32) {
    SAMPLES.store(n, Ordering::Relaxed);
}
pub fn tenacity() -> u32 {
    TENACITY.load(Ordering::Relaxed)
}
pub fn set_tenacity(n: u32) {
    TENACITY.store(n, Ordering::Relaxed);
}
pub fn lfu_log_factor() -> u32 {
    LFU_LOG_FACTOR.load(Ordering::Relaxed)
}
pub fn set_lfu_log_factor(n: u32) {
    LFU_LOG_FACTOR.store(n, Ordering::Relaxed);
}
pub fn lfu_decay_time() -> u32 {
    LFU_DECAY_TIME.load(Ordering::Relaxed)
}
pub fn set_lfu_decay_time(n: u32) {
    LFU_DECAY_TIME.store(n, Ordering::Relaxed);
}

/// Moves the clock keys are stamped with to `now_ms` (the server does, ten times a second, as
/// Redis's cron updates `server.lruclock`).
pub fn tick(now_ms: u64) {
    SECONDS.store(now_ms / 1000, Ordering::Relaxed);
}

fn seconds() -> u64 {
    match SECONDS.load(Ordering::Relaxed) {
        // Before the first tick (a unit test's store): read the clock.
        0 => {
            let s = crate::util::clock::now_ms() / 1000;
            SECONDS.store(s, Ordering::Relaxed);
            s
        }
        s => s,
    }
}

const CLOCK_MAX: u32 = (1 << 24) - 1;
/// A new key's counter, as Redis's LFU_INIT_VAL: new keys are not evicted before they had a
/// chance to be used.
const LFU_INIT: u32 = 5;

/// Redis's LRU_CLOCK: seconds, 24 bits.
pub fn lru_clock() -> u32 {
    (seconds() as u32) & CLOCK_MAX
}

fn lfu_minutes() -> u32 {
    ((seconds() / 60) & 0xffff) as u32
}

/// What a new key's 24 bits start as.
fn initial() -> u32 {
    if policy().is_lfu() {
        (lfu_minutes() << 8) | LFU_INIT
    } else {
        lru_clock()
    }
}

/// A key for a keyspace map, stamped as just accessed.
pub fn new_key(key: &[u8]) -> Bytes {
    let k = Bytes::key_from(key);
    k.set_clock(initial());
    k
}

/// Marks `key` (a map's own key) accessed: Redis's `updateLFU`, or the LRU clock. Storing
/// only what changed keeps a read-mostly key's cache line clean for the other cores.
#[inline]
pub fn touch(key: &Bytes) {
    let Some(old) = key.clock() else { return };
    let new = if policy().is_lfu() {
        let counter = log_incr(decayed(old));
        (lfu_minutes() << 8) | counter
    } else {
        lru_clock()
    };
    if new != old {
        key.set_clock(new);
    }
}

/// Redis's LFUDecrAndReturn: the counter, less one per `lfu-decay-time` minutes since it was
/// last decremented (not stored: the next access stores it).
fn decayed(bits: u32) -> u32 {
    let (last, counter) = (bits >> 8, bits & 255);
    let now = lfu_minutes();
    let elapsed = if now >= last {
        now - last
    } else {
        65535 - last + now
    };
    match lfu_decay_time() {
        0 => counter,
        d => counter.saturating_sub(elapsed / d),
    }
}

/// Redis's LFULogIncr: the counter grows with probability 1 / ((counter - 5) * factor + 1).
fn log_incr(counter: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT) as f64;
    let p = 1.0 / (base * lfu_log_factor() as f64 + 1.0);
    if unit_random() < p {
        counter + 1
    } else {
        counter
    }
}

/// RESTORE's FREQ / IDLETIME (and an RDB's hints), as Redis's objectSetLRUOrLFU: the one the
/// policy tracks is stored, the other ignored.
pub fn set_hints(key: &Bytes, freq: Option<u8>, idle_secs: Option<u64>) {
    if policy().is_lfu() {
        if let Some(f) = freq {
            key.set_clock((lfu_minutes() << 8) | f as u32);
        }
    } else if let Some(idle) = idle_secs {
        let idle = (idle % (CLOCK_MAX as u64 + 1)) as u32;
        let now = lru_clock();
        // The clock wraps: an access before its start is near its end.
        let then = if idle <= now {
            now - idle
        } else {
            CLOCK_MAX - (idle - now)
        };
        key.set_clock(then);
    }
}

/// OBJECT FREQ: the decayed counter of `key`.
pub fn frequency(key: &Bytes) -> u32 {
    key.clock().map_or(0, decayed)
}

/// OBJECT IDLETIME, in milliseconds (Redis's estimateObjectIdleTime).
pub fn idle_ms(key: &Bytes) -> u64 {
    let Some(then) = key.clock() else { return 0 };
    let now = lru_clock();
    let secs = if now >= then {
        now - then
    } else {
        now + (CLOCK_MAX - then)
    };
    secs as u64 * 1000
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A fast per-thread random number (xorshift), good enough for sampling and LFU's coin.
pub fn random() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            x = crate::util::clock::now_ms() ^ (r as *const _ as u64) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

fn unit_random() -> f64 {
    (random() >> 11) as f64 / (1u64 << 53) as f64
}

/// The score of a candidate under `policy`: the higher, the better to evict (Redis's `idle`).
fn score(policy: Policy, key: &Bytes, deadline: Option<u64>) -> u64 {
    match policy {
        Policy::VolatileTtl => u64::MAX - deadline.unwrap_or(u64::MAX),
        p if p.is_lfu() => 255 - frequency(key) as u64,
        _ => idle_ms(key),
    }
}

/// A candidate: its score, database and key.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub score: u64,
    pub db: usize,
    pub key: Vec<u8>,
}

/// Redis's EVPOOL_SIZE.
const POOL_SIZE: usize = 16;

/// The best candidates seen so far, ascending by score, kept between evictions as Redis's
/// `EvictionPoolLRU`: each round adds a few samples, and the best of all goes. As Redis's
/// pool keeps a cached sds per entry, the keys' buffers are reused: a sample that enters costs
/// a copy, not an allocation and a free.
#[derive(Debug, Default)]
pub struct Pool {
    entries: Vec<Candidate>,
    spare: Vec<Vec<u8>>,
}

impl Pool {
    pub const fn new() -> Self {
        Pool {
            entries: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// False if a candidate scoring `score` would not enter the pool: a sample's key is only
    /// copied (a cold cache line per sample, most of eviction's time) once it would.
    fn admits(&self, score: u64) -> bool {
        self.entries.len() < POOL_SIZE || score > self.entries[0].score
    }

    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if !self.admits(score) {
            return;
        }
        if self
            .entries
            .iter()
            .any(|e| e.db == db && e.key.as_slice() == key)
        {
            return;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(key);
        let at = self.entries.partition_point(|e| e.score < score);
        self.entries.insert(
            at,
            Candidate {
                score,
                db,
                key: buf,
            },
        );
        if self.entries.len() > POOL_SIZE {
            let gone = self.entries.remove(0);
            self.recycle(gone.key);
        }
    }

    /// The best candidate, taken out of the pool (its key's buffer is the caller's, to hand
    /// back with `recycle`).
    pub fn pop(&mut self) -> Option<Candidate> {
        self.entries.pop()
    }

    /// Keeps a popped candidate's key buffer for the next sample that enters.
    pub fn recycle(&mut self, key: Vec<u8>) {
        if self.spare.len() < POOL_SIZE {
            self.spare.push(key);
        }
    }

    pub fn clear(&mut self) {
        while let Some(c) = self.entries.pop() {
            self.recycle(c.key);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Shard {
    /// Offers `n` random keys of this shard (of database `db`) to `pool`, scored by `policy`
    /// (volatile policies sample only keys with a deadline, as Redis samples `db->expires`).
    /// Returns how many it found.
    pub fn evict_sample(&self, policy: Policy, db: usize, n: usize, pool: &mut Pool) -> usize {
        let mut found = 0;
        let mut consider = |score: u64, key: &[u8]| {
            found += 1;
            pool.offer(score, db, key);
        };
        if !policy.volatile() {
            for (k, _) in self.map.sample_run(random(), n) {
                consider(score(policy, k, None), k);
            }
        } else {
            for _ in 0..n {
                let c = self.expires.sample(random()).and_then(|(k, d)| {
                    let stored = &self.map.find_hashed(super::hash_key(k), k)?.0;
                    Some((score(policy, stored, Some(*d)), &k[..]))
                });
                let Some((score, key)) = c else { break };
                consider(score, key);
            }
        }
        found
    }

    /// A random key that `policy` may evict (the random policies).
    pub fn random_evictable(&self, policy: Policy) -> Option<Bytes> {
        let r = random();
        if policy.volatile() {
            self.expires.sample(r).map(|(k, _)| k.clone())
        } else {
            self.map.sample(r).map(|(k, _)| Bytes::from_slice(k))
        }
    }

    /// Removes `key` for eviction: as `remove`, and the tables shrink down to none at all
    /// (see `shrink_if_sparse_above`).
    pub fn evict(&mut self, key: &[u8]) -> Option<Value> {
        let value = self.remove(key)?;
        super::shrink_if_sparse_above(&mut self.map, 0);
        super::shrink_if_sparse_above(&mut self.expires, 0);
        Some(value)
    }

    /// True if `policy` may evict `key` from here (still present, with a deadline if volatile).
    pub fn evictable(&self, policy: Policy, key: &[u8]) -> bool {
        if policy.volatile() {
            self.deadline(key).is_some()
        } else {
            self.contains(key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::hash_key;

    #[test]
    fn lfu_counter_grows_logarithmically() {
        let mut c = LFU_INIT;
        for _ in 0..1000 {
            c = log_incr(c);
        }
        // Redis's table for factor 10: about 10 after 100 hits, 18 after 1000.
        assert!((10..40).contains(&c), "{c}");
        assert_eq!(log_incr(255), 255);
    }

    #[test]
    fn the_pool_keeps_the_best_candidates() {
        let mut p = Pool::new();
        for i in 0..40u64 {
            p.offer((i * 7) % 40, 0, format!("k{i}").as_bytes());
        }
        assert_eq!(p.len(), POOL_SIZE);
        let best = p.pop().unwrap();
        assert_eq!((best.score, &best.key[..]), (39, &b"k17"[..]));
        p.recycle(best.key);
        assert_eq!(p.pop().unwrap().score, 38);
        // A key already in the pool is not added twice.
        let before = p.len();
        p.offer(100, 0, b"new");
        p.offer(101, 0, b"new");
        assert_eq!(p.len(), before + 1);
        let c = p.pop().unwrap();
        assert_eq!((c.score, &c.key[..]), (100, &b"new"[..]));
    }

    #[test]
    fn volatile_sampling_sees_only_keys_with_a_deadline() {
        let mut s = Shard::default();
        for i in 0..50 {
            let k = format!("k{i}");
            s.insert_hashed(hash_key(k.as_bytes()), k.as_bytes(), Value::str(b"v"));
        }
        s.expires.insert(Bytes::from("k7"), 10);
        let mut pool = Pool::new();
        s.evict_sample(Policy::VolatileTtl, 0, 5, &mut pool);
        let c = pool.pop().unwrap();
        assert_eq!(&c.key[..], b"k7");
        assert!(pool.is_empty());
    }
}
