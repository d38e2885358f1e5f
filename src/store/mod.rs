//! The keyspace: databases, each split into shards, each shard a map behind its own
//! `parking_lot::RwLock`, so that writers to different keys rarely meet.
//!
//! Commands never lock shards themselves: the dispatcher computes every (db, shard) a command
//! may touch, takes those locks in one global order ((db, shard) ascending), runs the command,
//! and logs it to the AOF before releasing them. The fixed order rules out deadlock; logging
//! under the locks makes the AOF's order the store's order for every key.

pub mod bytes;
pub mod expire;
pub mod value;

use std::collections::HashMap;
use std::sync::OnceLock;

use ahash::RandomState;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use smallvec::SmallVec;

pub use value::{Bytes, Hash, Str, Value};

/// Shards per database. A power of two; also the granularity of SCAN's cursor.
pub const SHARDS: usize = 256;

pub type Map = HashMap<Bytes, Value, RandomState>;

/// A shard's keys, and beside them the deadlines of the keys that have one (as Redis keeps an
/// `expires` dict): keys without a TTL pay nothing for expiry, and the active-expiry sweep
/// walks only keys that can expire.
#[derive(Debug, Default)]
pub struct Shard {
    pub map: Map,
    /// Absolute deadlines in Unix milliseconds.
    pub expires: HashMap<Bytes, u64, RandomState>,
}

impl Shard {
    /// The deadline of `key`, if it has one.
    pub fn deadline(&self, key: &[u8]) -> Option<u64> {
        if self.expires.is_empty() {
            return None;
        }
        self.expires.get(key).copied()
    }

    /// True if `key` exists but its deadline has passed at `clock`.
    pub fn is_expired(&self, key: &[u8], clock: u64) -> bool {
        self.deadline(key)
            .is_some_and(|d| value::is_expired(d, clock))
    }

    /// Removes `key` and its deadline.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let v = self.map.remove(key)?;
        if !self.expires.is_empty() {
            self.expires.remove(key);
        }
        Some(v)
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
}

fn shard_hasher() -> &'static RandomState {
    static H: OnceLock<RandomState> = OnceLock::new();
    H.get_or_init(RandomState::new)
}

/// Which shard of a database holds `key`.
pub fn shard_of(key: &[u8]) -> usize {
    (shard_hasher().hash_one(key) as usize) & (SHARDS - 1)
}

/// One lockable unit: a shard of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub db: u32,
    pub shard: u32,
}

impl Slot {
    pub fn of_key(db: usize, key: &[u8]) -> Slot {
        Slot {
            db: db as u32,
            shard: shard_of(key) as u32,
        }
    }
}

pub enum Guard<'a> {
    Read(RwLockReadGuard<'a, Shard>),
    Write(RwLockWriteGuard<'a, Shard>),
}

/// The shards a command holds while it runs.
pub struct Locked<'a> {
    slots: SmallVec<[Slot; 4]>,
    guards: SmallVec<[Guard<'a>; 4]>,
}

impl<'a> Locked<'a> {
    pub fn none() -> Self {
        Locked {
            slots: SmallVec::new(),
            guards: SmallVec::new(),
        }
    }

    fn index(&self, slot: Slot) -> Option<usize> {
        if self.slots.len() == 1 {
            return (self.slots[0] == slot).then_some(0);
        }
        self.slots.binary_search(&slot).ok()
    }

    pub fn holds(&self, slot: Slot) -> bool {
        self.index(slot).is_some()
    }

    pub fn is_write(&self) -> bool {
        matches!(self.guards.first(), Some(Guard::Write(_)))
    }

    /// The shard at `slot`. Asking for a shard the lock plan did not take is a bug in the
    /// command's key spec, hence the panic (caught per command by the dispatcher).
    pub fn shard(&self, slot: Slot) -> &Shard {
        match self.index(slot).map(|i| &self.guards[i]) {
            Some(Guard::Read(g)) => g,
            Some(Guard::Write(g)) => g,
            None => panic!("shard {slot:?} used without being locked"),
        }
    }

    pub fn shard_mut(&mut self, slot: Slot) -> &mut Shard {
        match self.index(slot).map(|i| &mut self.guards[i]) {
            Some(Guard::Write(g)) => g,
            Some(Guard::Read(_)) => panic!("shard {slot:?} written under a read lock"),
            None => panic!("shard {slot:?} used without being locked"),
        }
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
}

impl Store {
    pub fn new(databases: usize) -> Self {
        Store {
            dbs: (0..databases).map(|_| Db::new()).collect(),
        }
    }

    /// Lock `slots` (sorted and deduplicated here) in the global order.
    pub fn lock(&self, mut slots: SmallVec<[Slot; 4]>, write: bool) -> Locked<'_> {
        if slots.len() > 1 {
            slots.sort_unstable();
            slots.dedup();
        }
        let guards = slots
            .iter()
            .map(|s| {
                let lock = &self.dbs[s.db as usize].shards[s.shard as usize];
                if write {
                    Guard::Write(lock.write())
                } else {
                    Guard::Read(lock.read())
                }
            })
            .collect();
        Locked { slots, guards }
    }

    /// Every shard of one database.
    pub fn db_slots(&self, db: usize) -> impl Iterator<Item = Slot> {
        (0..SHARDS as u32).map(move |shard| Slot {
            db: db as u32,
            shard,
        })
    }

    /// Every shard of every database.
    pub fn all_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        (0..self.dbs.len()).flat_map(|db| self.db_slots(db))
    }
}
