//! What a handler sees while it runs: the locked shards, the client, the reply buffer, the
//! clock, and the AOF record being built.

use std::cell::{Cell, RefCell};

use smallvec::SmallVec;

use super::{CommandError, CommandSpec};
use crate::client::Client;
use crate::notify::events::class::{KEY_MISS, NEW};
use crate::resp::reply::encode_command;
use crate::resp::ReplyBuf;
use crate::shared::Shared;
use crate::store::{
    hash_key, Bytes, Hash, List, Locked, Set, Shard, ShardId, Str, Stream, Value, ZSet,
};
use crate::util::clock::now_ms;

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
    /// The commands in `aof_custom`.
    aof_custom_ops: usize,
    /// Inside EXEC: the transaction's record, which a script it runs adds its effects to.
    pub(crate) effects: Option<super::transaction::Effects>,
    /// The handler wrote an error reply itself, though it returned Ok (a script's error): the
    /// call counts as failed in INFO commandstats.
    pub(crate) failed: bool,
}

/// The locked shards, seen from the client's current database.
pub struct Keyspace<'a> {
    shared: &'a Shared,
    pub locked: Locked<'a>,
    /// The client's current database.
    pub db: usize,
    /// Wall-clock milliseconds, read once per command as Redis caches it, when first needed
    /// (0: not yet): most commands touch no key with a deadline and never need it. See `now`.
    now: Cell<u64>,
    /// True while the AOF loads, and for the commands of a replica's master: keys expire by
    /// a clock of 0 then (see `clock`), since Redis expires nothing during a load (a replayed
    /// INCR must see the key it saw when it first ran), and a replica applies its master's
    /// commands to the keys the master saw (its DELs expire them).
    loading: bool,
    /// AOF text to log before the command itself (DELs of keys found expired).
    aof_pre: Vec<u8>,
    /// The DELs in `aof_pre` (its SELECTs are not commands of their own).
    aof_pre_ops: usize,
    /// Keys a read found expired: removed once its (read) locks are released, see
    /// `Shared::remove_expired`.
    seen_expired: RefCell<Vec<(usize, Box<[u8]>)>>,
    /// See `saw_expired_field`.
    seen_expired_fields: RefCell<Option<ExpiredFields>>,
    /// The hashes of the running command's keys, computed once when its locks were planned.
    known: KnownKeys,
    /// The client running the command: a tracking client with NOLOOP is not told of its
    /// own changes.
    client_id: u64,
    /// A read-only command runs: a key it finds missing is a `keymiss` event (class m), as
    /// Redis's lookupKeyRead.
    pub(crate) report_misses: bool,
}

/// Key hashes remembered by the address and length of the key's bytes in the command's
/// arguments: a handler passes those very slices back (`argv[1]`), so finding one costs a
/// comparison where hashing it again would cost a pass over its bytes. Only argument slices are
/// recorded, and only while the command runs (see `commands::run`); the arguments are borrowed
/// all that time, so no other bytes can sit at such an address with such a length meanwhile.
/// Addresses are compared, never followed.
///
/// Kept sorted by address so that a command naming a million keys finds each in O(log n): a
/// linear search made DEL/MSET/EXISTS quadratic in their key count, all of it under their locks.
/// Arguments parsed from one buffer arrive in address order, so `push` rarely has to sort.
#[derive(Default)]
pub struct KnownKeys {
    keys: SmallVec<[(usize, usize, u64); 2]>,
    unsorted: bool,
}

impl KnownKeys {
    pub fn push(&mut self, key: &[u8], hash: u64) {
        let k = (key.as_ptr() as usize, key.len(), hash);
        if self
            .keys
            .last()
            .is_some_and(|last| (last.0, last.1) > (k.0, k.1))
        {
            self.unsorted = true;
        }
        self.keys.push(k);
    }

    /// Sorts what `push` could not keep in order; `find` then searches by halving.
    pub fn seal(&mut self) {
        if self.unsorted {
            self.keys.sort_unstable_by_key(|k| (k.0, k.1));
            self.unsorted = false;
        }
    }

    fn find(&self, key: &[u8]) -> Option<u64> {
        let (addr, len) = (key.as_ptr() as usize, key.len());
        if self.keys.len() <= 8 || self.unsorted {
            return self
                .keys
                .iter()
                .find(|k| k.0 == addr && k.1 == len)
                .map(|k| k.2);
        }
        self.keys
            .binary_search_by_key(&(addr, len), |k| (k.0, k.1))
            .ok()
            .map(|i| self.keys[i].2)
    }
}

impl<'a> Ctx<'a> {
    pub fn new(
        shared: &'a Shared,
        client: &'a mut Client,
        out: &'a mut ReplyBuf,
        locked: Locked<'a>,
    ) -> Self {
        let (db, client_id, master) = (client.db, client.id, client.master);
        Ctx {
            shared,
            client,
            out,
            ks: Keyspace {
                shared,
                locked,
                db,
                now: Cell::new(0),
                loading: shared.is_loading() || master,
                aof_pre: Vec::new(),
                aof_pre_ops: 0,
                seen_expired: RefCell::new(Vec::new()),
                seen_expired_fields: RefCell::new(None),
                known: KnownKeys::default(),
                client_id,
                report_misses: false,
            },
            dirty: 0,
            aof_custom: None,
            aof_custom_ops: 0,
            effects: None,
            failed: false,
        }
    }

    /// The wall-clock milliseconds this command runs at (read once, when first needed), for
    /// callers that need the time too and need not read the clock again.
    pub fn now_ms(&self) -> u64 {
        self.ks.now()
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

    /// Publishes a keyspace event on `key` in the current database (see `notify::events`):
    /// the one call a handler makes per event, after its change.
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        self.notify_in(self.ks.db, class, event, key);
    }

    /// `notify` for a key in database `db` (MOVE, COPY ... DB).
    pub fn notify_in(&mut self, db: usize, class: u32, event: &str, key: &[u8]) {
        if !crate::notify::events::enabled(class) {
            return;
        }
        let me = crate::notify::pubsub::Publisher {
            id: self.client.id,
            out: self.out,
        };
        crate::notify::events::emit(self.shared, class, event, db, key, Some(me));
    }

    /// The generic `del` event for a container a command left empty (and so removed):
    /// call after the type's own event when `emptied`.
    pub fn notify_del_if(&mut self, emptied: bool, key: &[u8]) {
        if emptied {
            self.notify(crate::notify::events::class::GENERIC, "del", key);
        }
    }

    /// Logs `args` to the AOF instead of the command as it was sent. Call once per command
    /// to be logged; several calls log several commands.
    pub fn propagate<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        encode_command(self.aof_custom.get_or_insert_with(Vec::new), args);
        self.aof_custom_ops += 1;
    }
    /// After the handler: the AOF text of the command's effect and the number of commands in
    /// it (None if there is nothing to log), resetting what the command recorded so that the
    /// same Ctx can run the next command of a transaction.
    pub(crate) fn take_record(
        &mut self,
        spec: &CommandSpec,
        argv: &[&[u8]],
    ) -> Option<(Vec<u8>, usize)> {
        // A container's subcommand says whether it writes (FUNCTION LOAD does).
        let spec = spec.resolve(argv);
        // The common cases, a read or no AOF: nothing to log, only the changes to count.
        if !spec.may_change() || !self.shared.propagates() {
            if self.dirty > 0 {
                self.shared.stats.dirty(std::mem::take(&mut self.dirty));
            }
            if self.aof_custom.is_some() {
                self.aof_custom = None;
            }
            self.aof_custom_ops = 0;
            self.ks.aof_pre.clear();
            self.ks.aof_pre_ops = 0;
            return None;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let custom = self.aof_custom.take();
        let mut ops =
            std::mem::take(&mut self.ks.aof_pre_ops) + std::mem::take(&mut self.aof_custom_ops);
        let mut text = std::mem::take(&mut self.ks.aof_pre);
        if dirty > 0 {
            self.shared.stats.dirty(dirty);
        }
        // A custom record is logged even with no change counted: FLUSHDB on an empty database
        // is still logged, as Redis forces its propagation.
        let log = dirty > 0 || custom.is_some() || !text.is_empty();
        // With no AOF nothing reads the record: don't build it.
        if !spec.may_change() || !log || self.shared.is_loading() || !self.shared.propagates() {
            return None;
        }
        match custom {
            Some(custom) => text.extend_from_slice(&custom),
            None if dirty > 0 => {
                encode_command(&mut text, argv);
                ops += 1;
            }
            None => {}
        }
        (!text.is_empty()).then_some((text, ops))
    }

    /// After the handler: log the command's effect (under the locks still held) and release
    /// the locks.
    /// (By reference: a Ctx is large, and moving it here cost a memcpy per command.)
    pub(super) fn finish(&mut self, spec: &CommandSpec, argv: &[&[u8]]) {
        if let Some((mut text, ops)) = self.take_record(spec, argv) {
            if ops > 1 {
                // As Redis's propagatePendingCommands: what one command logged as several
                // (SPOP's SREMs, a DEL of a key found expired and the write after it) is
                // applied by a replica, or a load cut short, wholly or not at all.
                text = super::transaction::wrapped(text);
            }
            // Sent before the locks are released below: this is what makes the AOF's order the
            // store's order (see aof/mod.rs), and what places the record in a running rewrite
            // (see aof/rewrite.rs).
            if let Some(ack) = self.shared.propagate(self.client.db, text, &self.ks.locked) {
                self.client.pending_ack = Some(ack);
            }
        }
        self.ks.locked = Locked::none();
    }
}

/// A key changed (Redis's signalModifiedKey): its watchers are flagged and its tracking
/// clients invalidated.
#[inline]
fn modified(shared: &Shared, by: u64, db: usize, key: &[u8]) {
    shared.watches.touch(db, key);
    shared.tracking.invalidate(shared, key, by);
}

/// The events the keyspace emits itself, whatever the command: `new` for a key created,
/// `expired` for one found expired (see `notify::events`).
#[inline]
fn key_event(shared: &Shared, class: u32, event: &str, db: usize, key: &[u8]) {
    if crate::notify::events::enabled(class) {
        crate::notify::events::emit(shared, class, event, db, key, None);
    }
}

/// A key's hash fields found past their deadline: (db, key, fields).
pub type ExpiredFields = (usize, Box<[u8]>, Vec<Box<[u8]>>);

impl<'a> Keyspace<'a> {
    /// The wall-clock milliseconds of this command: read at the first call, the same after.
    pub fn now(&self) -> u64 {
        match self.now.get() {
            0 => {
                let now = now_ms();
                self.now.set(now);
                now
            }
            now => now,
        }
    }

    /// The clock keys expire by: `now`, or 0 while the AOF loads.
    pub fn clock(&self) -> u64 {
        if self.loading {
            0
        } else {
            self.now()
        }
    }

    /// True if `key` (hash `h`) has a deadline that has passed. Reads the clock only for a key
    /// that has a deadline.
    #[inline]
    fn has_expired(&self, shard: &Shard, h: u64, key: &[u8]) -> bool {
        shard
            .deadline_hashed(h, key)
            .is_some_and(|d| crate::store::value::is_expired(d, self.clock()))
    }

    /// The running command's key hashes (see `KnownKeys`).
    pub(crate) fn set_known(&mut self, known: KnownKeys) {
        self.known = known;
    }

    /// One more of the running command's key hashes (see `KnownKeys`).
    pub(crate) fn known_key(&mut self, key: &[u8], hash: u64) {
        self.known.push(key, hash);
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.known.find(key).unwrap_or_else(|| hash_key(key))
    }

    /// The shard holding `key`, and the key's hash.
    fn shard(&self, db: usize, key: &[u8]) -> (&Shard, u64) {
        let h = self.hash(key);
        (self.locked.shard(ShardId::of_hash(db, h)), h)
    }

    fn key_mut(&mut self, db: usize, key: &[u8]) -> (&mut Shard, u64) {
        let h = self.hash(key);
        (self.locked.key_mut(ShardId::of_hash(db, h), key), h)
    }

    /// A live value in database `db`; expired keys read as absent. Counts as an access of
    /// the key (its LRU clock, LFU counter).
    pub fn get_in(&self, db: usize, key: &[u8]) -> Option<&Value> {
        self.lookup(db, key, true)
    }

    /// `get` without counting an access, as Redis's LOOKUP_NOTOUCH (OBJECT, TYPE, TTL,
    /// EXISTS, MEMORY USAGE).
    pub fn peek(&self, key: &[u8]) -> Option<&Value> {
        self.lookup(self.db, key, false)
    }

    /// The key as stored (its access clock), if live.
    pub fn stored_key(&self, key: &[u8]) -> Option<&Bytes> {
        self.peek(key)?;
        self.shard(self.db, key).0.key_entry(key)
    }

    /// A key a command came across expired (SCAN, RANDOMKEY): removed, and its DEL
    /// propagated, once the command's locks are released, as a lookup's is.
    pub fn saw_expired(&self, db: usize, key: &[u8]) {
        self.seen_expired.borrow_mut().push((db, key.into()));
    }

    #[inline]
    fn lookup(&self, db: usize, key: &[u8], touch: bool) -> Option<&Value> {
        let (shard, h) = self.shard(db, key);
        let found = if touch {
            shard.get_touched_hashed(h, key)
        } else {
            shard.get_hashed(h, key)
        };
        let Some(v) = found else {
            self.missed(db, key);
            return None;
        };
        if self.has_expired(shard, h, key) {
            self.seen_expired.borrow_mut().push((db, key.into()));
            self.missed(db, key);
            return None;
        }
        if self.report_misses {
            self.shared.stats.keyspace_hits.add(1);
        }
        Some(v)
    }

    #[inline]
    fn missed(&self, db: usize, key: &[u8]) {
        if self.report_misses {
            self.shared.stats.keyspace_misses.add(1);
            key_event(self.shared, KEY_MISS, "keymiss", db, key);
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.get_in(self.db, key)
    }

    /// The deadline (Unix ms) of a live key in `db`, if it has one.
    pub fn deadline_in(&self, db: usize, key: &[u8]) -> Option<u64> {
        self.lookup(db, key, false)?;
        let (shard, h) = self.shard(db, key);
        shard.deadline_hashed(h, key)
    }

    pub fn deadline(&self, key: &[u8]) -> Option<u64> {
        self.deadline_in(self.db, key)
    }

    /// A live value, for changing in place (its deadline is kept). An expired key is removed
    /// (and its DEL logged) and reads as absent. The key counts as modified for WATCH.
    pub fn get_mut_in(&mut self, db: usize, key: &[u8]) -> Option<&mut Value> {
        let h = self.hash(key);
        self.expire_hashed(db, key, h);
        modified(self.shared, self.client_id, db, key);
        self.locked
            .key_mut(ShardId::of_hash(db, h), key)
            .get_mut_hashed(h, key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.get_mut_in(self.db, key)
    }

    /// A live value for a change of representation only, which Redis does not signal to WATCH
    /// (PFDEBUG TODENSE): like `get_mut`, but the key does not count as modified.
    pub fn get_mut_unsignalled(&mut self, key: &[u8]) -> Option<&mut Value> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        self.locked
            .key_mut(ShardId::of_hash(db, h), key)
            .get_mut_hashed(h, key)
    }

    /// Stores `value` under `key`, replacing what was there and clearing any deadline (as a
    /// plain SET does).
    pub fn set_in(&mut self, db: usize, key: &[u8], value: Value) {
        modified(self.shared, self.client_id, db, key);
        if let Value::List(_) | Value::ZSet(_) | Value::Stream(_) = value {
            // RENAME, COPY, MOVE, *STORE: a list, sorted set or stream arriving under a name
            // clients wait on.
            self.shared.blocking.signal(db, key);
        }
        let new_events = crate::notify::events::enabled(NEW);
        let shared = self.shared;
        let (shard, h) = self.key_mut(db, key);
        if let Some(old) = shard.get_hashed(h, key) {
            // Its XREADGROUP waiters are told (Redis's dbOverwrite).
            shared.blocking.value_left(db, key, old);
        }
        let created = new_events && shard.get_hashed(h, key).is_none();
        shard.clear_deadline_hashed(h, key);
        shard.insert_hashed(h, key, value);
        if created {
            self.event(NEW, "new", db, key);
        }
    }

    pub fn set(&mut self, key: &[u8], value: Value) {
        self.set_in(self.db, key, value)
    }

    /// Stores `value` under `key`, keeping the deadline of a live key (KEEPTTL, INCR, APPEND).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        modified(self.shared, self.client_id, db, key);
        // A live key keeps its deadline; an absent one has none.
        let shard = self.locked.key_mut(ShardId::of_hash(db, h), key);
        if let Some(old) = shard.get_hashed(h, key) {
            self.shared.blocking.value_left(db, key, old);
        }
        let created = crate::notify::events::enabled(NEW) && shard.get_hashed(h, key).is_none();
        shard.insert_hashed(h, key, value);
        if created {
            self.event(NEW, "new", db, key);
        }
    }

    /// Replaces the string at `key` (keeping its deadline) with what `f` makes of it (`None`:
    /// absent), finding the key once. On an error from `f`, or WRONGTYPE, nothing changes and
    /// WATCH sees nothing, as with a read followed by `set_keep_ttl`.
    pub fn update_str(
        &mut self,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Result<Str, CommandError>,
    ) -> Result<(), CommandError> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        let (shared, client_id) = (self.shared, self.client_id);
        let shard = self.locked.key_mut(ShardId::of_hash(db, h), key);
        match shard.map.find_mut_hashed(h, key) {
            Some(e) => {
                let Value::Str(cur) = &e.1 else {
                    return Err(CommandError::WrongType);
                };
                let new = f(Some(cur))?;
                modified(shared, client_id, db, key);
                crate::store::evict::touch(&e.0);
                e.1 = Value::Str(new);
            }
            None => {
                let new = f(None)?;
                modified(shared, client_id, db, key);
                let k = crate::store::evict::new_key(key);
                shard.map.insert_new_hashed(h, k, Value::Str(new));
                self.event(NEW, "new", db, key);
            }
        }
        Ok(())
    }

    /// A hash field a read found past its deadline (HGET and the like): removed after the
    /// command, as Redis 7.4 removes it lazily. Only the current command's one key is kept.
    pub fn saw_expired_field(&self, key: &[u8], field: &[u8]) {
        if self.clock() == 0 {
            return;
        }
        let mut seen = self.seen_expired_fields.borrow_mut();
        match &mut *seen {
            Some((db, k, fields)) if *db == self.db && &**k == key => fields.push(field.into()),
            _ => *seen = Some((self.db, key.into(), vec![field.into()])),
        }
    }

    /// The hash fields reads found past their deadline (see `saw_expired_field`).
    pub fn take_seen_expired_fields(&mut self) -> Option<ExpiredFields> {
        self.seen_expired_fields.get_mut().take()
    }

    /// The expired keys reads came across, for removal after the command (Redis deletes a key
    /// that a read finds expired; a read here holds only read locks).
    pub fn take_seen_expired(&mut self) -> Option<Vec<(usize, Box<[u8]>)>> {
        let seen = self.seen_expired.get_mut();
        (!seen.is_empty()).then(|| std::mem::take(seen))
    }

    /// The locked shards of database `db` (all of them under a `Keys::Db` or `Keys::All` plan).
    pub fn db_shards(&self, db: usize) -> Vec<&Shard> {
        self.locked
            .shard_ids()
            .iter()
            .filter(|s| s.db as usize == db)
            .map(|s| self.locked.shard(*s))
            .collect()
    }

    /// The live keys of the locked shards of `db`, with their values.
    pub fn live_keys(&self, db: usize) -> impl Iterator<Item = (&[u8], &Value)> + '_ {
        let clock = self.clock();
        self.db_shards(db).into_iter().flat_map(move |shard| {
            shard
                .map
                .iter()
                .filter(move |(k, _)| !shard.is_expired(k, clock))
                .map(|(k, v)| (&**k, v))
        })
    }

    /// Sets or clears the deadline of an existing key. Returns false if the key is absent.
    pub fn set_deadline_in(&mut self, db: usize, key: &[u8], deadline: Option<u64>) -> bool {
        self.expire_if_needed(db, key);
        let (shard, h) = self.key_mut(db, key);
        if shard.get_hashed(h, key).is_none() {
            return false;
        }
        match deadline {
            Some(d) => {
                shard.expires.insert_hashed(h, key, d, Bytes::from_slice);
            }
            None => shard.clear_deadline_hashed(h, key),
        }
        modified(self.shared, self.client_id, db, key);
        true
    }

    pub fn set_deadline(&mut self, key: &[u8], deadline: Option<u64>) -> bool {
        self.set_deadline_in(self.db, key, deadline)
    }

    /// Removes a live key (and its deadline) and returns its value; an expired key is removed
    /// and reads as absent.
    pub fn remove_in(&mut self, db: usize, key: &[u8]) -> Option<Value> {
        self.expire_if_needed(db, key);
        let (shard, h) = self.key_mut(db, key);
        let v = shard.remove_hashed(h, key)?;
        modified(self.shared, self.client_id, db, key);
        // Its XREADGROUP waiters are told it went (Redis's dbGenericDelete).
        self.shared.blocking.value_left(db, key, &v);
        Some(v)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.remove_in(self.db, key)
    }

    /// Removes `key` if it has expired, logging a DEL for it (so the AOF says what happened).
    pub fn expire_if_needed(&mut self, db: usize, key: &[u8]) {
        let h = self.hash(key);
        self.expire_hashed(db, key, h);
    }

    /// `expire_if_needed` for a key whose hash is known.
    #[inline]
    fn expire_hashed(&mut self, db: usize, key: &[u8], h: u64) {
        let slot = ShardId::of_hash(db, h);
        if self.has_expired(self.locked.shard(slot), h, key) {
            self.remove_expired(db, key, h);
        }
    }

    fn event(&self, class: u32, event: &str, db: usize, key: &[u8]) {
        key_event(self.shared, class, event, db, key);
    }

    #[cold]
    fn remove_expired(&mut self, db: usize, key: &[u8], h: u64) {
        let old = self
            .locked
            .key_mut(ShardId::of_hash(db, h), key)
            .remove_hashed(h, key);
        if let Some(old) = &old {
            self.shared.blocking.value_left(db, key, old);
        }
        self.shared.stats.expired_keys(1);
        crate::notify::key_expired(self.shared, db, key);
        self.log_before(db, &[&b"DEL"[..], key]);
    }

    /// Logs `args`, something the keyspace did in database `db` on its own (an expiry it
    /// found), ahead of the command's own record.
    fn log_before(&mut self, db: usize, args: &[&[u8]]) {
        self.aof_pre_ops += 1;
        if db == self.db {
            encode_command(&mut self.aof_pre, args);
        } else {
            // A record must leave the AOF's selected database where it found it.
            let there = db.to_string();
            let here = self.db.to_string();
            encode_command(&mut self.aof_pre, &[b"SELECT", there.as_bytes()]);
            encode_command(&mut self.aof_pre, args);
            encode_command(&mut self.aof_pre, &[b"SELECT", here.as_bytes()]);
        }
    }

    /// Before a write that reads `field` of the hash at `key` (HINCRBY, HSETNX): if it is past
    /// its deadline it goes first, with its HDEL logged, and the key with it if it was the
    /// last (Redis 7.4's lazy expiry of a field; other fields wait for their own reads or
    /// for active expiry, as there).
    pub fn expire_field(&mut self, key: &[u8], field: &[u8]) {
        let (db, h) = (self.db, self.hash(key));
        // A replica's fields expire by its master's HDELs, even under its own clients' writes.
        if self.shared.repl.is_replica() {
            return;
        }
        let clock = self.clock();
        let id = ShardId::of_hash(db, h);
        // Looked at first under the shard's own guard: a running dump copies the key only
        // when it is about to change.
        match self.locked.shard(id).get_hashed(h, key) {
            Some(Value::Hash(hash)) if hash.is_field_expired(field, clock) => {}
            _ => return,
        }
        let shard = self.locked.key_mut(id, key);
        let Some(gone) = shard.remove_expired_fields(key, &[field], clock) else {
            return;
        };
        self.log_before(db, &[&b"HDEL"[..], key, field]);
        crate::notify::fields_expired(self.shared, db, key, 1, gone.emptied);
    }

    /// Files the hash at `key` for active expiry by `at`, a field deadline it was just given.
    pub fn note_field_deadline(&mut self, key: &[u8], at: u64) {
        let (db, h) = (self.db, self.hash(key));
        self.locked
            .key_mut(ShardId::of_hash(db, h), key)
            .note_field_deadline(h, key, at);
    }

    /// The string at `key`: `None` if absent, WRONGTYPE if it holds something else.
    pub fn get_str(&self, key: &[u8]) -> Result<Option<&[u8]>, CommandError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// The hash at `key`: `None` if absent, WRONGTYPE if it holds something else.
    pub fn get_hash(&self, key: &[u8]) -> Result<Option<&Hash>, CommandError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Hash(h)) => Ok(Some(h)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// The hash at `key` for changing, created empty if absent; WRONGTYPE if it holds
    /// something else. The caller removes the key again if it leaves the hash empty.
    pub fn hash_mut(&mut self, key: &[u8]) -> Result<&mut Hash, CommandError> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        modified(self.shared, self.client_id, db, key);
        let shared = self.shared;
        let shard = self.locked.key_mut(ShardId::of_hash(db, h), key);
        match shard.get_or_insert_hashed(h, key, || {
            key_event(shared, NEW, "new", db, key);
            Value::hash(Hash::default())
        }) {
            Value::Hash(h) => Ok(h),
            _ => Err(CommandError::WrongType),
        }
    }

    /// The set at `key` in database `db`: `None` if absent, WRONGTYPE if it holds something
    /// else.
    pub fn get_set_in(&self, db: usize, key: &[u8]) -> Result<Option<&Set>, CommandError> {
        match self.get_in(db, key) {
            None => Ok(None),
            Some(Value::Set(s)) => Ok(Some(s)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    pub fn get_set(&self, key: &[u8]) -> Result<Option<&Set>, CommandError> {
        self.get_set_in(self.db, key)
    }

    /// The live set at `key` for changing (`None` if absent, and nothing is created);
    /// WRONGTYPE if it holds something else. The key counts as modified for WATCH only if it
    /// is a set. The caller removes the key if it leaves the set empty.
    pub fn existing_set_mut(&mut self, key: &[u8]) -> Result<Option<&mut Set>, CommandError> {
        self.existing_mut(key, |v| match v {
            Value::Set(s) => Some(&mut **s),
            _ => None,
        })
    }

    /// The live value at `key` for changing if `pick` finds it of its type (`None` if absent);
    /// WRONGTYPE if it is of another. Only a value of the type counts as modified for WATCH.
    fn existing_mut<T: ?Sized>(
        &mut self,
        key: &[u8],
        pick: impl FnOnce(&mut Value) -> Option<&mut T>,
    ) -> Result<Option<&mut T>, CommandError> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        let (shared, client_id) = (self.shared, self.client_id);
        match self
            .locked
            .key_mut(ShardId::of_hash(db, h), key)
            .get_mut_hashed(h, key)
        {
            None => Ok(None),
            Some(v) => {
                let t = pick(v).ok_or(CommandError::WrongType)?;
                modified(shared, client_id, db, key);
                Ok(Some(t))
            }
        }
    }

    /// The set at `key` for changing, created empty if absent; WRONGTYPE if it holds
    /// something else. The caller removes the key again if it leaves the set empty.
    pub fn set_mut(&mut self, key: &[u8]) -> Result<&mut Set, CommandError> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        let (shared, client_id) = (self.shared, self.client_id);
        let shard = self.locked.key_mut(ShardId::of_hash(db, h), key);
        match shard.get_or_insert_hashed(h, key, || {
            key_event(shared, NEW, "new", db, key);
            Value::Set(Box::default())
        }) {
            Value::Set(s) => {
                modified(shared, client_id, db, key);
                Ok(s)
            }
            _ => Err(CommandError::WrongType),
        }
    }

    /// The list at `key`: `None` if absent, WRONGTYPE if it holds something else.
    pub fn get_list(&self, key: &[u8]) -> Result<Option<&List>, CommandError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::List(l)) => Ok(Some(l)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// The list at `key` for changing: `None` if absent, WRONGTYPE if it holds something
    /// else; only a list found counts as modified for WATCH. The caller removes the key if it
    /// leaves the list empty.
    pub fn list_mut(&mut self, key: &[u8]) -> Result<Option<&mut List>, CommandError> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        let shard = self.locked.key_mut(ShardId::of_hash(db, h), key);
        match shard.get_mut_hashed(h, key) {
            None => Ok(None),
            Some(Value::List(l)) => {
                modified(self.shared, self.client_id, db, key);
                Ok(Some(l))
            }
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// The list at `key` for changing, created empty if absent; WRONGTYPE if it holds
    /// something else.
    pub fn list_or_new(&mut self, key: &[u8]) -> Result<&mut List, CommandError> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        modified(self.shared, self.client_id, db, key);
        let shared = self.shared;
        let shard = self.locked.key_mut(ShardId::of_hash(db, h), key);
        let v = shard.get_or_insert_hashed(h, key, || {
            // Under the writer's locks, as blocking registration is: no wake-up is lost.
            shared.blocking.signal(db, key);
            key_event(shared, NEW, "new", db, key);
            Value::List(Box::default())
        });
        match v {
            Value::List(l) => Ok(l),
            _ => Err(CommandError::WrongType),
        }
    }

    // Sorted sets.

    /// The sorted set at `key` in database `db`: `None` if absent, WRONGTYPE if it holds
    /// something else.
    pub fn get_zset_in(&self, db: usize, key: &[u8]) -> Result<Option<&ZSet>, CommandError> {
        match self.get_in(db, key) {
            None => Ok(None),
            Some(Value::ZSet(z)) => Ok(Some(z)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    pub fn get_zset(&self, key: &[u8]) -> Result<Option<&ZSet>, CommandError> {
        self.get_zset_in(self.db, key)
    }

    /// The live sorted set at `key` for changing (`None` if absent, nothing is created);
    /// WRONGTYPE if it holds something else. Only a sorted set found counts as modified for
    /// WATCH. The caller removes the key if it leaves the set empty.
    pub fn existing_zset_mut(&mut self, key: &[u8]) -> Result<Option<&mut ZSet>, CommandError> {
        self.existing_mut(key, |v| match v {
            Value::ZSet(z) => Some(&mut **z),
            _ => None,
        })
    }

    /// The sorted set at `key` for changing, created by `make` if absent (and then signalled
    /// to clients blocked on the key, as a new list is); WRONGTYPE if it holds something
    /// else. The caller removes the key again if it leaves the set empty.
    pub fn zset_or_new(
        &mut self,
        key: &[u8],
        make: impl FnOnce() -> ZSet,
    ) -> Result<&mut ZSet, CommandError> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        modified(self.shared, self.client_id, db, key);
        let shared = self.shared;
        let shard = self.locked.key_mut(ShardId::of_hash(db, h), key);
        let v = shard.get_or_insert_hashed(h, key, || {
            // Under the writer's locks, as blocking registration is: no wake-up is lost.
            shared.blocking.signal(db, key);
            key_event(shared, NEW, "new", db, key);
            Value::ZSet(Box::new(make()))
        });
        match v {
            Value::ZSet(z) => Ok(z),
            _ => Err(CommandError::WrongType),
        }
    }

    // Streams.

    /// The stream at `key`: `None` if absent, WRONGTYPE if it holds something else.
    pub fn get_stream(&self, key: &[u8]) -> Result<Option<&Stream>, CommandError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Stream(s)) => Ok(Some(s)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// The live stream at `key` for changing (`None` if absent, nothing is created);
    /// WRONGTYPE if it holds something else. Only a stream found counts as modified.
    pub fn existing_stream_mut(&mut self, key: &[u8]) -> Result<Option<&mut Stream>, CommandError> {
        self.existing_mut(key, |v| match v {
            Value::Stream(s) => Some(&mut **s),
            _ => None,
        })
    }

    /// The stream at `key` for changing, created empty if absent; WRONGTYPE if it holds
    /// something else. A stream stays when emptied (as in Redis).
    pub fn stream_or_new(&mut self, key: &[u8]) -> Result<&mut Stream, CommandError> {
        let (db, h) = (self.db, self.hash(key));
        self.expire_hashed(db, key, h);
        let shared = self.shared;
        let shard = self.locked.key_mut(ShardId::of_hash(db, h), key);
        let v = shard.get_or_insert_hashed(h, key, || {
            key_event(shared, NEW, "new", db, key);
            Value::Stream(Box::default())
        });
        match v {
            Value::Stream(s) => {
                modified(shared, self.client_id, db, key);
                Ok(s)
            }
            _ => Err(CommandError::WrongType),
        }
    }
}
