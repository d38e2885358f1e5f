//! The keyspace: databases, each split into shards, each shard a map behind its own
//! `parking_lot::RwLock`, so that writers to different keys rarely meet.
//!
//! Commands never lock shards themselves: the dispatcher computes every (db, shard) a command
//! may touch, takes those locks in one global order ((db, shard) ascending), runs the command,
//! and logs it to the AOF before releasing them. The fixed order rules out deadlock; logging
//! under the locks makes the AOF's order the store's order for every key.
//!
//! One kind of holder waits out of that order: a script that may write and reaches a key it did
//! not declare, after it may have written (so it can neither give up nor start again). It does
//! so only while holding the store's one *script token* (`Store::token`, taken before any
//! shard, so first in the order), and while it waits it raises `escalating`: a command waiting
//! for several shards then lets go of those it holds and starts again once the wait is over
//! (`Store::lock_unless`), so the only wait that holds shards against the order is the token
//! holder's, and no cycle of waits can form.

pub mod bytes;
pub mod dense;
pub mod evict;
pub mod expire;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod keymap;
pub mod lazyfree;
pub mod limits;
pub mod list;
pub mod set;
pub mod stream;
pub mod value;
pub mod zset;

use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use ahash::RandomState;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use smallvec::SmallVec;

pub use value::{Bytes, Hash, List, Set, Str, Stream, Value, ZSet};

/// Shards per database. A power of two; also the granularity of SCAN's cursor.
pub const SHARDS: usize = 256;

/// The hash of every key, as `hash_key` computes it: one per process, shared by every shard's
/// maps, so that a command hashes its key once and uses that hash both to pick the shard and
/// to look the key up in it (see `Shard::get_hashed`).
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher;

impl BuildHasher for KeyHasher {
    type Hasher = ahash::AHasher;
    fn build_hasher(&self) -> ahash::AHasher {
        key_hasher().build_hasher()
    }
}

pub type Map = keymap::KeyMap<Value>;

/// A shard's keys, and beside them the deadlines of the keys that have one (as Redis keeps an
/// `expires` dict): keys without a TTL pay nothing for expiry, and the active-expiry sweep
/// walks only keys that can expire.
#[derive(Debug, Default)]
pub struct Shard {
    pub map: Map,
    /// Absolute deadlines in Unix milliseconds.
    pub expires: keymap::KeyMap<u64>,
    /// The keys whose hash has field deadlines, each with a time no later than its soonest
    /// one, for active expiry to visit (see `expire`). An entry may outlive what it names
    /// (the key deleted, overwritten, its deadlines cleared): the visit checks and drops it.
    pub field_expires: keymap::KeyMap<u64>,
}

/// True if the map key `k` is `key`. Keys of 8 to 16 bytes (the usual `key:NNNN...`) are
/// compared as two overlapping words rather than through a call to memcmp.
#[inline]
pub fn is_key(k: &Bytes, key: &[u8]) -> bool {
    let k = k.as_slice();
    let n = key.len();
    if k.len() != n {
        return false;
    }
    if (8..=16).contains(&n) {
        return word_at(k, 0) == word_at(key, 0) && word_at(k, n - 8) == word_at(key, n - 8);
    }
    k == key
}

/// Hash tables never shrink by themselves: once most of a shard's keys are gone, its table is
/// cut to twice what it holds, so that deleting keys gives memory back (as Redis resizes its
/// dicts). An eighth full before shrinking to half full keeps the rehashes amortized.
#[inline]
fn shrink_if_sparse<V>(map: &mut keymap::KeyMap<V>) {
    shrink_if_sparse_above(map, 64);
}

/// `shrink_if_sparse` for tables of more than `floor` entries' room. Eviction, whose purpose
/// is memory, passes 0: small tables shrink too, and an empty one goes whole. A key and a
/// value of a few bytes live in their table's slot, so evicting them frees nothing until the
/// table shrinks (with few keys per shard, the tables are most of what the keys cost).
#[inline]
pub(crate) fn shrink_if_sparse_above<V>(map: &mut keymap::KeyMap<V>, floor: usize) {
    // An empty table of a few entries' room has no eighth to fall under.
    if map.capacity() > floor && (map.is_empty() || map.len() < map.capacity() / 8) {
        map.shrink_to(map.len() * 2);
    }
}

/// The eight bytes of `b` from `i` (the caller knows they are there).
#[inline]
fn word_at(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_ne_bytes(w)
}

/// The `*_hashed` methods take `hash`, which must be `hash_key(key)`: callers that already
/// have it (a command's keys are hashed once, when its locks are planned) skip hashing again.
impl Shard {
    #[inline]
    pub fn get_hashed(&self, hash: u64, key: &[u8]) -> Option<&Value> {
        self.map.find_hashed(hash, key).map(|e| &e.1)
    }

    /// `get_hashed`, marking the key accessed (its LRU clock or LFU counter, see `evict`), as
    /// Redis's lookupKey does for every command but OBJECT, TYPE, TTL and the like.
    #[inline]
    pub fn get_touched_hashed(&self, hash: u64, key: &[u8]) -> Option<&Value> {
        let e = self.map.find_hashed(hash, key)?;
        evict::touch(&e.0);
        Some(&e.1)
    }

    /// The stored key itself (its access clock), if present.
    pub fn key_entry(&self, key: &[u8]) -> Option<&Bytes> {
        self.map.find_hashed(hash_key(key), key).map(|e| &e.0)
    }

    #[inline]
    pub fn get_mut_hashed(&mut self, hash: u64, key: &[u8]) -> Option<&mut Value> {
        let e = self.map.find_mut_hashed(hash, key)?;
        evict::touch(&e.0);
        Some(&mut e.1)
    }

    /// The value at `key`, inserted with `make` if absent.
    #[inline]
    pub fn get_or_insert_hashed(
        &mut self,
        hash: u64,
        key: &[u8],
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        // Two lookups on a miss only: the borrow checker cannot see that the found entry's
        // borrow ends on the other branch.
        if self.map.find_hashed(hash, key).is_some() {
            return self.get_mut_hashed(hash, key).expect("found above");
        }
        self.map
            .insert_new_hashed(hash, evict::new_key(key), make())
    }

    /// Stores `value` under `key`, replacing its value (its deadline is left as it was).
    #[inline]
    pub fn insert_hashed(&mut self, hash: u64, key: &[u8], value: Value) {
        match &value {
            Value::Hash(h) if h.has_ttls() => {
                if let Some(at) = h.next_deadline() {
                    self.note_field_deadline(hash, key, at);
                }
            }
            // What replaces a hash with deadlines has none (INFO's subexpiry counts them).
            _ if !self.field_expires.is_empty() => {
                self.field_expires.remove_entry_hashed(hash, key);
            }
            _ => {}
        }
        if let Some(e) = self.map.find_mut_hashed(hash, key) {
            evict::touch(&e.0);
            e.1 = value;
        } else {
            self.map.insert_new_hashed(hash, evict::new_key(key), value);
        }
    }

    #[inline]
    pub fn deadline_hashed(&self, hash: u64, key: &[u8]) -> Option<u64> {
        if self.expires.is_empty() {
            return None;
        }
        self.expires.find_hashed(hash, key).map(|e| e.1)
    }

    #[inline]
    pub fn is_expired_hashed(&self, hash: u64, key: &[u8], clock: u64) -> bool {
        self.deadline_hashed(hash, key)
            .is_some_and(|d| value::is_expired(d, clock))
    }

    #[inline]
    pub fn clear_deadline_hashed(&mut self, hash: u64, key: &[u8]) {
        if self.expires.is_empty() {
            return;
        }
        if self.expires.remove_entry_hashed(hash, key).is_some() {
            shrink_if_sparse(&mut self.expires);
        }
    }

    pub fn remove_hashed(&mut self, hash: u64, key: &[u8]) -> Option<Value> {
        let (_, v) = self.map.remove_entry_hashed(hash, key)?;
        shrink_if_sparse(&mut self.map);
        self.clear_deadline_hashed(hash, key);
        if !self.field_expires.is_empty()
            && self.field_expires.remove_entry_hashed(hash, key).is_some()
        {
            shrink_if_sparse(&mut self.field_expires);
        }
        Some(v)
    }

    /// Active expiry is to look at `key`'s hash by `at` (a field deadline it was given).
    pub fn note_field_deadline(&mut self, hash: u64, key: &[u8], at: u64) {
        expire::FIELD_DEADLINES.store(true, Ordering::Release);
        match self.field_expires.find_mut_hashed(hash, key) {
            Some(e) => e.1 = e.1.min(at),
            None => {
                self.field_expires
                    .insert_new_hashed(hash, Bytes::from_slice(key), at);
            }
        }
    }

    /// The deadline of `key`, if it has one.
    pub fn deadline(&self, key: &[u8]) -> Option<u64> {
        self.deadline_hashed(hash_key(key), key)
    }

    /// True if `key` exists but its deadline has passed at `clock`.
    pub fn is_expired(&self, key: &[u8], clock: u64) -> bool {
        self.is_expired_hashed(hash_key(key), key, clock)
    }

    /// True if `key` is in the map, expired or not.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.find_hashed(hash_key(key), key).is_some()
    }

    /// Removes `key` and its deadline.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.remove_hashed(hash_key(key), key)
    }
}

pub struct Db {
    pub shards: Box<[RwLock<Shard>]>,
}

impl Db {
    fn new() -> Self {
        Db {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
        }
    }

    /// Number of keys, expired-but-not-yet-removed included (as Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Store {
    pub dbs: Box<[Db]>,
    /// The script token (see the module's comment). Dumps (AOF rewrite, snapshots) also take
    /// it to start, so that none starts while a script that holds it runs.
    pub token: parking_lot::Mutex<()>,
    /// The token's holder is waiting for a shard out of the global order.
    escalating: std::sync::atomic::AtomicBool,
}

fn key_hasher() -> &'static RandomState {
    static H: OnceLock<RandomState> = OnceLock::new();
    H.get_or_init(RandomState::new)
}

/// The hash of `key`: picks its shard (`shard_of_hash`) and finds it in the shard's maps.
/// The slots of a hashbrown table that holds `capacity` entries before it grows (7/8 of its
/// slots from 8 up, one fewer below).
pub fn slots_of_capacity(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        c if c < 7 => c + 1,
        c => c / 7 * 8,
    }
}

pub fn hash_key(key: &[u8]) -> u64 {
    key_hasher().hash_one(key)
}

/// Which shard holds a key of hash `hash`. Bits the shard's own map does not use for its
/// buckets (it takes the low bits for the bucket and the top seven as tag): keys in one shard
/// all share these bits, and would crowd a few buckets if the map used them too.
pub fn shard_of_hash(hash: u64) -> usize {
    ((hash >> 40) as usize) & (SHARDS - 1)
}

/// Which shard of a database holds `key`.
pub fn shard_of(key: &[u8]) -> usize {
    shard_of_hash(hash_key(key))
}

/// Which shards a shard-by-shard dump (the AOF rewrite, an RDB snapshot) has written. A shard
/// is marked under its lock, so a writer holding that lock reads a settled answer.
pub struct DumpMarks(Box<[std::sync::atomic::AtomicBool]>);

impl DumpMarks {
    pub fn new(dbs: usize) -> Self {
        DumpMarks((0..dbs * SHARDS).map(|_| Default::default()).collect())
    }

    fn at(&self, id: ShardId) -> &std::sync::atomic::AtomicBool {
        &self.0[id.db as usize * SHARDS + id.shard as usize]
    }

    pub fn is_dumped(&self, id: ShardId) -> bool {
        self.at(id).load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn mark(&self, id: ShardId) {
        self.at(id)
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What a write must let happen before it changes a shard that it locked while a
/// point-in-time dump runs (the dump's copy-on-write, see `dump::Run`). Called under the
/// shard's write lock, before the change, with the shard as it still is.
pub trait WriteHook: Send + Sync {
    /// Before a change not confined to known keys (FLUSHDB, SWAPDB, an expiry sweep).
    fn shard(&self, id: ShardId, shard: &Shard);
    /// Before `key` is created, changed or removed.
    fn key(&self, id: ShardId, shard: &Shard, key: &[u8]);
}

/// The token's holder waits for a shard in slices: parking_lot has no untimed wait that
/// could not starve behind a stream of other takers.
const ESCALATION_SLICE: std::time::Duration = std::time::Duration::from_millis(1);

/// The shards a command locks: most name one or two.
pub type ShardIds = SmallVec<[ShardId; 4]>;

/// One lockable unit: a shard of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId {
    pub db: u32,
    pub shard: u32,
}

impl ShardId {
    pub fn of_key(db: usize, key: &[u8]) -> ShardId {
        ShardId::of_hash(db, hash_key(key))
    }

    pub fn of_hash(db: usize, hash: u64) -> ShardId {
        ShardId {
            db: db as u32,
            shard: shard_of_hash(hash) as u32,
        }
    }
}

pub enum Guard<'a> {
    Read(RwLockReadGuard<'a, Shard>),
    Write(RwLockWriteGuard<'a, Shard>),
}

#[cold]
#[inline(never)]
fn not_locked(id: ShardId) -> ! {
    panic!("shard {id:?} used without being locked")
}

#[cold]
#[inline(never)]
fn read_locked(id: ShardId) -> ! {
    panic!("shard {id:?} written under a read lock")
}

/// The shards a command holds while it runs (and the script token, for a script that may
/// write).
pub struct Locked<'a> {
    held: Held<'a>,
    token: Option<parking_lot::MutexGuard<'a, ()>>,
    /// Set when the locks were taken after a point-in-time dump's instant: every change goes
    /// through it first (`shard_mut`, `key_mut`).
    hook: Option<std::sync::Arc<dyn WriteHook>>,
}

enum Held<'a> {
    None,
    /// Most commands name one key: no vector, no search.
    One(ShardId, Guard<'a>),
    /// Sorted.
    Many {
        ids: ShardIds,
        guards: SmallVec<[Guard<'a>; 4]>,
    },
}

impl<'a> Locked<'a> {
    pub fn none() -> Self {
        Locked {
            held: Held::None,
            token: None,
            hook: None,
        }
    }

    /// True if this holds the script token, and so may wait for a shard out of the order
    /// (`add_waiting`).
    pub fn holds_token(&self) -> bool {
        self.token.is_some()
    }

    #[inline]
    fn guard(&self, id: ShardId) -> Option<&Guard<'a>> {
        match &self.held {
            Held::One(s, g) => (*s == id).then_some(g),
            Held::Many { ids, guards } => ids.binary_search(&id).ok().map(|i| &guards[i]),
            Held::None => None,
        }
    }

    #[inline]
    fn guard_mut(&mut self, id: ShardId) -> Option<&mut Guard<'a>> {
        match &mut self.held {
            Held::One(s, g) => (*s == id).then_some(g),
            Held::Many { ids, guards } => ids.binary_search(&id).ok().map(|i| &mut guards[i]),
            Held::None => None,
        }
    }

    pub fn holds(&self, id: ShardId) -> bool {
        self.guard(id).is_some()
    }

    pub fn is_write(&self) -> bool {
        match &self.held {
            Held::One(_, g) => matches!(g, Guard::Write(_)),
            Held::Many { guards, .. } => matches!(guards.first(), Some(Guard::Write(_))),
            Held::None => false,
        }
    }

    /// The shard at `id`. Asking for a shard the lock plan did not take is a bug in the
    /// command's key spec, hence the panic (caught per command by the dispatcher).
    #[inline]
    pub fn shard(&self, id: ShardId) -> &Shard {
        match self.guard(id) {
            Some(Guard::Read(g)) => g,
            Some(Guard::Write(g)) => g,
            None => not_locked(id),
        }
    }

    /// The shard at `id`, for a change that may touch any of its keys.
    #[inline]
    pub fn shard_mut(&mut self, id: ShardId) -> &mut Shard {
        if let Some(hook) = &self.hook {
            hook.shard(id, self.shard(id));
        }
        self.shard_mut_unhooked(id)
    }

    /// The shard at `id`, for a change to `key` alone: a running dump copies only that key
    /// first, not the whole shard.
    #[inline]
    pub fn key_mut(&mut self, id: ShardId, key: &[u8]) -> &mut Shard {
        if let Some(hook) = &self.hook {
            hook.key(id, self.shard(id), key);
        }
        self.shard_mut_unhooked(id)
    }

    /// Has every later change go through `hook` first (see `WriteHook`).
    pub fn set_hook(&mut self, hook: std::sync::Arc<dyn WriteHook>) {
        self.hook = Some(hook);
    }

    #[inline]
    fn shard_mut_unhooked(&mut self, id: ShardId) -> &mut Shard {
        match self.guard_mut(id) {
            Some(Guard::Write(g)) => g,
            Some(Guard::Read(_)) => read_locked(id),
            None => not_locked(id),
        }
    }

    /// True if `id` is held, and for writing when `write`.
    pub fn holds_for(&self, id: ShardId, write: bool) -> bool {
        match self.guard(id) {
            Some(Guard::Write(_)) => true,
            Some(Guard::Read(_)) => !write,
            None => false,
        }
    }

    /// Takes one more shard if no one holds it (a script reaching a key it did not declare):
    /// never waits, since waiting while holding others, out of the global order, could
    /// deadlock. False if it is taken, or if this holds it for reading and `write` is asked.
    pub fn try_add(&mut self, store: &'a Store, id: ShardId, write: bool) -> bool {
        if self.guard(id).is_some() {
            return self.holds_for(id, write);
        }
        let lock = &store.dbs[id.db as usize].shards[id.shard as usize];
        let guard = if write {
            lock.try_write().map(Guard::Write)
        } else {
            lock.try_read().map(Guard::Read)
        };
        let Some(guard) = guard else {
            return false;
        };
        self.insert(id, guard);
        true
    }

    /// Takes one more shard, waiting for it however it stands in the order: only for the
    /// token's holder (see the module's comment), which raises `escalating` meanwhile so that
    /// the commands waiting for several shards let go of theirs. False if this holds `id` for
    /// reading and `write` is asked (waiting would never end).
    pub fn add_waiting(&mut self, store: &'a Store, id: ShardId, write: bool) -> bool {
        debug_assert!(self.holds_token());
        if self.guard(id).is_some() {
            return self.holds_for(id, write);
        }
        let lock = &store.dbs[id.db as usize].shards[id.shard as usize];
        store.escalating.store(true, Ordering::SeqCst);
        let guard = loop {
            let g = if write {
                lock.try_write_for(ESCALATION_SLICE).map(Guard::Write)
            } else {
                lock.try_read_for(ESCALATION_SLICE).map(Guard::Read)
            };
            if let Some(g) = g {
                break g;
            }
        };
        store.escalating.store(false, Ordering::SeqCst);
        self.insert(id, guard);
        true
    }

    fn insert(&mut self, id: ShardId, guard: Guard<'a>) {
        let (mut ids, mut guards) = match std::mem::replace(&mut self.held, Held::None) {
            Held::None => (ShardIds::new(), SmallVec::new()),
            Held::One(s, g) => (smallvec::smallvec![s], smallvec::smallvec![g]),
            Held::Many { ids, guards } => (ids, guards),
        };
        let at = ids.binary_search(&id).unwrap_or_else(|i| i);
        ids.insert(at, id);
        guards.insert(at, guard);
        self.held = Held::Many { ids, guards };
    }

    /// Keeps `token` (the store's script token) until this is dropped, after the shards.
    pub fn set_token(&mut self, token: parking_lot::MutexGuard<'a, ()>) {
        self.token = Some(token);
    }

    pub fn shard_ids(&self) -> &[ShardId] {
        match &self.held {
            Held::One(s, _) => std::slice::from_ref(s),
            Held::Many { ids, .. } => ids,
            Held::None => &[],
        }
    }
}

impl Store {
    pub fn new(databases: usize) -> Self {
        Store {
            dbs: (0..databases).map(|_| Db::new()).collect(),
            token: parking_lot::Mutex::new(()),
            escalating: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// True if `key` of `db` is held, expired or not: a look under the shard's read lock,
    /// for a caller that only needs to know whether running a command on it can find
    /// anything.
    pub fn holds(&self, db: usize, key: &[u8]) -> bool {
        let hash = hash_key(key);
        self.dbs.get(db).is_some_and(|d| {
            d.shards[shard_of_hash(hash)]
                .read()
                .map
                .find_hashed(hash, key)
                .is_some()
        })
    }

    /// Every shard of every database, in order, with its lock (a dump's walk).
    pub fn shard_locks(&self) -> impl Iterator<Item = (ShardId, &RwLock<Shard>)> {
        self.dbs.iter().enumerate().flat_map(|(db, d)| {
            d.shards.iter().enumerate().map(move |(shard, lock)| {
                let id = ShardId {
                    db: db as u32,
                    shard: shard as u32,
                };
                (id, lock)
            })
        })
    }

    fn guard(&self, id: ShardId, write: bool) -> Guard<'_> {
        let lock = &self.dbs[id.db as usize].shards[id.shard as usize];
        if write {
            Guard::Write(lock.write())
        } else {
            Guard::Read(lock.read())
        }
    }

    /// Lock `ids` (sorted and deduplicated here) in the global order (letting go and starting
    /// again while the token's holder escalates: see `lock_unless`).
    pub fn lock(&self, ids: ShardIds, write: bool) -> Locked<'_> {
        self.lock_unless(ids, write, &|| false)
            .expect("gives up only when asked to")
    }

    /// `guard`, waiting in slices and asking `give_up` after each: None if it says so.
    fn guard_unless(
        &self,
        id: ShardId,
        write: bool,
        give_up: &dyn Fn() -> bool,
    ) -> Option<Guard<'_>> {
        const SLICE: std::time::Duration = std::time::Duration::from_millis(20);
        let lock = &self.dbs[id.db as usize].shards[id.shard as usize];
        loop {
            let g = if write {
                lock.try_write_for(SLICE).map(Guard::Write)
            } else {
                lock.try_read_for(SLICE).map(Guard::Read)
            };
            if g.is_some() || give_up() {
                return g;
            }
        }
    }

    /// `lock`, giving up (None, holding nothing) if `give_up` says so while it waits: a client
    /// waiting on a script that runs past busy-reply-threshold gets BUSY rather than holding
    /// its worker for as long as the script runs. Waiting for several shards while the
    /// script token's holder waits for one out of the order (`Locked::add_waiting`), it lets
    /// go of those it has and starts again once that wait is over: what it holds may be what
    /// the holder waits for, and what it waits for may be held by the holder.
    pub fn lock_unless(
        &self,
        mut ids: ShardIds,
        write: bool,
        give_up: &dyn Fn() -> bool,
    ) -> Option<Locked<'_>> {
        if ids.len() < 2 {
            let held = match ids.first() {
                None => Held::None,
                Some(&id) => Held::One(id, self.guard_unless(id, write, give_up)?),
            };
            return Some(Locked {
                held,
                token: None,
                hook: None,
            });
        }
        ids.sort_unstable();
        ids.dedup();
        let yields = || give_up() || self.escalating.load(Ordering::SeqCst);
        loop {
            let guards: Option<SmallVec<_>> = ids
                .iter()
                .map(|&s| self.guard_unless(s, write, &yields))
                .collect();
            if let Some(guards) = guards {
                return Some(Locked {
                    held: Held::Many { ids, guards },
                    token: None,
                    hook: None,
                });
            }
            // Everything taken is let go (dropped above); wait for the escalation to end.
            while self.escalating.load(Ordering::SeqCst) {
                if give_up() {
                    return None;
                }
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            if give_up() {
                return None;
            }
        }
    }

    /// The script token, waiting in slices and asking `give_up` after each.
    pub fn token_unless(
        &self,
        give_up: &dyn Fn() -> bool,
    ) -> Option<parking_lot::MutexGuard<'_, ()>> {
        loop {
            if let Some(g) = self
                .token
                .try_lock_for(std::time::Duration::from_millis(20))
            {
                return Some(g);
            }
            if give_up() {
                return None;
            }
        }
    }

    /// `lock` for one shard. (A single shard cannot concern a running AOF rewrite: see
    /// `aof::rewrite`'s `before_write`, which looks only at writes to several.)
    pub fn lock_one(&self, id: ShardId, write: bool) -> Locked<'_> {
        Locked {
            held: Held::One(id, self.guard(id, write)),
            token: None,
            hook: None,
        }
    }

    /// Every shard of one database.
    pub fn db_shards(&self, db: usize) -> impl Iterator<Item = ShardId> {
        (0..SHARDS as u32).map(move |shard| ShardId {
            db: db as u32,
            shard,
        })
    }

    /// Every shard of every database.
    pub fn all_shards(&self) -> impl Iterator<Item = ShardId> + '_ {
        (0..self.dbs.len()).flat_map(|db| self.db_shards(db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_key_is_byte_equality() {
        let base = b"abcdefghijklmnopqrstuvwxyz";
        for n in 0..base.len() {
            let k = Bytes::from(&base[..n]);
            assert!(is_key(&k, &base[..n]));
            for i in 0..n {
                let mut other = base[..n].to_vec();
                other[i] ^= 1;
                assert!(!is_key(&k, &other), "{n} {i}");
            }
            assert!(!is_key(&k, &base[..n + 1]));
        }
    }

    #[test]
    fn a_shard_gives_memory_back_once_most_keys_are_gone() {
        let mut s = Shard::default();
        let keys: Vec<String> = (0..10_000).map(|i| format!("key:{i:012}")).collect();
        for k in &keys {
            s.insert_hashed(hash_key(k.as_bytes()), k.as_bytes(), Value::str(b"v"));
            s.expires.insert(k.as_bytes().into(), 1);
        }
        let (full, full_expires) = (s.map.capacity(), s.expires.capacity());
        for k in &keys[100..] {
            assert!(s.remove(k.as_bytes()).is_some());
        }
        assert!(
            s.map.capacity() * 8 <= full,
            "{} of {full}",
            s.map.capacity()
        );
        assert!(s.expires.capacity() * 8 <= full_expires);
        // The survivors are all still there, with their deadlines.
        for k in &keys[..100] {
            assert!(s.get_hashed(hash_key(k.as_bytes()), k.as_bytes()).is_some());
            assert_eq!(s.deadline(k.as_bytes()), Some(1));
        }
    }

    #[test]
    fn hashed_access_agrees_with_plain_map_access() {
        let mut s = Shard::default();
        let keys: Vec<String> = (0..2000).map(|i| format!("key:{i:012}")).collect();
        // Enough inserts to rehash several times: the map must rehash with `hash_key` too.
        for k in &keys {
            s.insert_hashed(hash_key(k.as_bytes()), k.as_bytes(), Value::str(b"v"));
        }
        assert_eq!(s.map.len(), keys.len());
        for k in &keys {
            let k = k.as_bytes();
            assert!(s.map.get(k).is_some());
            assert!(s.get_hashed(hash_key(k), k).is_some());
        }
        s.expires.insert(Bytes::from("key:000000000001"), 5);
        assert_eq!(s.deadline(b"key:000000000001"), Some(5));
        assert!(s.is_expired(b"key:000000000001", 6));
        assert!(s.remove(b"key:000000000001").is_some());
        assert!(s.expires.is_empty());
        assert!(s.get_hashed(hash_key(b"nope"), b"nope").is_none());
    }
}
