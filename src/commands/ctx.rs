//! What a handler sees while it runs: the locked shards, the client, the reply buffer, the
//! clock, and the AOF record being built.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{CommandError, CommandSpec};
use crate::client::Client;
use crate::resp::reply::encode_command;
use crate::resp::ReplyBuf;
use crate::shared::Shared;
use crate::store::{Entry, Hash, Locked, Slot, Value};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub client: &'a mut Client,
    pub out: &'a mut ReplyBuf,
    /// The keys the command may touch. A field of its own so that a handler can read a value
    /// from it while writing the reply to `out`.
    pub ks: Keyspace<'a>,
    /// Changes made (Redis's `server.dirty`); a write command with none is not logged.
    dirty: u64,
    /// AOF text that replaces the command (e.g. SET ... EX becomes SET ... PXAT).
    aof_custom: Option<Vec<u8>>,
}

/// The locked shards, seen from the client's current database.
pub struct Keyspace<'a> {
    shared: &'a Shared,
    pub locked: Locked<'a>,
    /// The client's current database.
    pub db: usize,
    /// Wall-clock milliseconds, read once per command as Redis caches it.
    pub now: u64,
    /// The clock keys expire by: 0 while the AOF is loading, since Redis expires nothing during a
    /// load (a replayed INCR must see the key it saw when it first ran).
    pub clock: u64,
    /// AOF text to log before the command itself (DELs of keys found expired).
    aof_pre: Vec<u8>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        shared: &'a Shared,
        client: &'a mut Client,
        out: &'a mut ReplyBuf,
        locked: Locked<'a>,
    ) -> Self {
        let now = now_ms();
        let clock = if shared.is_loading() { 0 } else { now };
        let db = client.db;
        Ctx {
            shared,
            client,
            out,
            ks: Keyspace {
                shared,
                locked,
                db,
                now,
                clock,
                aof_pre: Vec::new(),
            },
            dirty: 0,
            aof_custom: None,
        }
    }

    /// Switches the client's current database.
    pub fn select(&mut self, db: usize) {
        self.client.db = db;
        self.ks.db = db;
    }

    /// Records `n` changes to the data set.
    pub fn dirty(&mut self, n: u64) {
        self.dirty += n;
    }

    /// Logs `args` to the AOF instead of the command as it was sent. Call once per command
    /// to be logged; several calls log several commands.
    pub fn propagate<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        encode_command(self.aof_custom.get_or_insert_with(Vec::new), args);
    }
    /// After the handler: log the command's effect (under the locks still held) and release
    /// the locks.
    pub(super) fn finish(self, spec: &CommandSpec, argv: &[&[u8]]) {
        let Ctx {
            shared,
            client,
            ks,
            dirty,
            aof_custom,
            ..
        } = self;
        let Keyspace {
            locked,
            mut aof_pre,
            ..
        } = ks;
        if dirty > 0 {
            shared.stats.dirty(dirty);
        }
        if spec.is_write() && (dirty > 0 || !aof_pre.is_empty()) && !shared.is_loading() {
            match aof_custom {
                Some(custom) => aof_pre.extend_from_slice(&custom),
                None if dirty > 0 => encode_command(&mut aof_pre, argv),
                None => {}
            }
            if !aof_pre.is_empty() {
                if let Some(ack) = shared.propagate(client.db, aof_pre) {
                    client.pending_ack = Some(ack);
                }
            }
        }
        drop(locked);
    }
}

impl<'a> Keyspace<'a> {
    /// A live entry in database `db`; expired ones read as absent.
    pub fn get_in(&self, db: usize, key: &[u8]) -> Option<&Entry> {
        let e = self.locked.shard(Slot::of_key(db, key)).map.get(key)?;
        (!e.is_expired(self.clock)).then_some(e)
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.get_in(self.db, key)
    }

    /// A live entry, for changing in place. An expired one is removed (and its DEL logged) and
    /// reads as absent. The key counts as modified for WATCH.
    pub fn get_mut_in(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        self.expire_if_needed(db, key);
        self.shared.watches.touch(db, key);
        self.locked
            .shard_mut(Slot::of_key(db, key))
            .map
            .get_mut(key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.get_mut_in(self.db, key)
    }

    /// Stores `entry` under `key`, replacing whatever was there.
    pub fn set_in(&mut self, db: usize, key: &[u8], entry: Entry) {
        self.shared.watches.touch(db, key);
        let map = &mut self.locked.shard_mut(Slot::of_key(db, key)).map;
        match map.get_mut(key) {
            Some(e) => *e = entry,
            None => {
                map.insert(key.into(), entry);
            }
        }
    }

    pub fn set(&mut self, key: &[u8], entry: Entry) {
        self.set_in(self.db, key, entry)
    }

    /// Removes a live key and returns it; an expired one is removed and reads as absent.
    pub fn remove_in(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        self.expire_if_needed(db, key);
        let e = self
            .locked
            .shard_mut(Slot::of_key(db, key))
            .map
            .remove(key)?;
        self.shared.watches.touch(db, key);
        Some(e)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_in(self.db, key)
    }

    fn expire_if_needed(&mut self, db: usize, key: &[u8]) {
        let map = &mut self.locked.shard_mut(Slot::of_key(db, key)).map;
        if map.get(key).is_some_and(|e| e.is_expired(self.clock)) {
            map.remove(key);
            self.shared.stats.expired_keys(1);
            self.shared.watches.touch(db, key);
            if db == self.db {
                encode_command(&mut self.aof_pre, &[&b"DEL"[..], key]);
            } else {
                // A record must leave the AOF's selected database where it found it.
                let there = db.to_string();
                let here = self.db.to_string();
                encode_command(&mut self.aof_pre, &[b"SELECT", there.as_bytes()]);
                encode_command(&mut self.aof_pre, &[&b"DEL"[..], key]);
                encode_command(&mut self.aof_pre, &[b"SELECT", here.as_bytes()]);
            }
        }
    }

    /// The string at `key`: `None` if absent, WRONGTYPE if it holds something else.
    pub fn get_str(&self, key: &[u8]) -> Result<Option<&[u8]>, CommandError> {
        match self.get(key) {
            None => Ok(None),
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Ok(Some(s)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// The hash at `key`: `None` if absent, WRONGTYPE if it holds something else.
    pub fn get_hash(&self, key: &[u8]) -> Result<Option<&Hash>, CommandError> {
        match self.get(key) {
            None => Ok(None),
            Some(Entry {
                value: Value::Hash(h),
                ..
            }) => Ok(Some(h)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// The hash at `key` for changing, created empty if absent; WRONGTYPE if it holds
    /// something else. The caller removes it again if it leaves it empty.
    pub fn hash_mut(&mut self, key: &[u8]) -> Result<&mut Hash, CommandError> {
        if self.get_mut(key).is_none() {
            self.set(key, Entry::new(Value::Hash(Hash::default())));
        }
        match self.get_mut(key) {
            Some(Entry {
                value: Value::Hash(h),
                ..
            }) => Ok(h),
            Some(_) => Err(CommandError::WrongType),
            None => unreachable!("inserted above"),
        }
    }

    /// Checks that `key` is absent or a hash, without creating it.
    pub fn check_hash(&self, key: &[u8]) -> Result<(), CommandError> {
        self.get_hash(key).map(|_| ())
    }
}
