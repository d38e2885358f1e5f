//! The one online dump engine: what the AOF rewrite, the RDB snapshot (SAVE, BGSAVE) and the
//! AOF's RDB preamble all are. A run walks the shards one at a time, each under its read lock,
//! encodes its live keys and marks it dumped; clients keep writing meanwhile. What differs
//! between the users is only
//! - the [`Encoding`] of a shard's keys (AOF commands or RDB records), and
//! - the [`Policy`] a write follows when it has locked shards the run has not dumped yet.
//!
//! The output is any [`Output`] (a file, a socket for a replica's full sync), checksummed as
//! it goes for RDB's CRC-64 trailer.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::store::{
    hash_key, value, DumpMarks, Locked, Shard, ShardId, Store, Value, WriteHook, SHARDS,
};

/// How a run serialises keys.
pub trait Encoding: Send + Sync {
    /// Appends what makes what follows belong to database `db`.
    fn select(&self, out: &mut Vec<u8>, db: usize);
    /// Appends one key of database `db`.
    fn key(&self, out: &mut Vec<u8>, db: usize, key: &[u8], v: &Value, deadline: Option<u64>);
    /// Whether keys already past their deadline are written too (else left out).
    fn keeps_expired(&self) -> bool {
        false
    }
}

/// What a write does when it has locked shards that the run has not dumped yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// A point-in-time snapshot (SAVE, BGSAVE, a replica's full sync): every key is written as
    /// it was at the instant the run began. A write that locked after the instant copies each
    /// key of an undumped shard into the dump just before it first changes it (copy-on-write
    /// per entry, as Dragonfly's snapshots do; the walk then skips the keys so copied), and
    /// the whole shard only for a change not confined to known keys (FLUSHDB, an expiry
    /// sweep). So a MULTI/EXEC or MSET across shards is in it whole (it locked before the
    /// instant: none of its shards can be dumped until it is done) or not at all (it locked
    /// after: the dump has each of its keys as it was before it). The cost a write pays is
    /// the serialising of the keys it changes, once each, and the extra memory the set of
    /// names copied, until their shard's turn comes.
    Instant,
    /// The AOF rewrite: its file is completed by a tail of the records made for shards
    /// already dumped, so a write to undumped shards only needs to go to the old file. Only a
    /// write spanning dumped and undumped shards would be half in the dump and half in the
    /// tail: it dumps the undumped ones first, and goes to the tail.
    Settle,
}

/// Where a run writes.
pub trait Output: Write + Send {
    /// Makes what was written durable (a file's fsync; a socket only flushes).
    fn durable(&mut self) -> io::Result<()> {
        self.flush()
    }
}

impl Output for BufWriter<File> {
    fn durable(&mut self) -> io::Result<()> {
        self.flush()?;
        self.get_ref().sync_all()
    }
}

impl Output for Vec<u8> {}
impl Output for std::net::TcpStream {}
impl Output for BufWriter<std::net::TcpStream> {}

/// An output that counts its bytes and, for RDB, keeps their CRC-64. The first write error
/// is kept (a writer dumping a shard inline has no one to return it to) and ends the writing.
pub struct Sink {
    w: Box<dyn Output>,
    checksum: bool,
    crc: u64,
    pub bytes: u64,
    error: Option<io::Error>,
    db: Option<usize>,
}

impl Sink {
    pub fn new(w: Box<dyn Output>, checksum: bool) -> Sink {
        Sink {
            w,
            checksum,
            crc: 0,
            bytes: 0,
            error: None,
            db: None,
        }
    }

    pub fn write(&mut self, b: &[u8]) -> io::Result<()> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        if self.checksum {
            self.crc = crate::rdb::crc64::crc64(self.crc, b);
        }
        self.bytes += b.len() as u64;
        let res = self.w.write_all(b);
        if let Err(e) = &res {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        }
        res
    }

    /// The CRC-64 of everything written so far (0 when not checksumming).
    pub fn crc(&self) -> u64 {
        if self.checksum {
            self.crc
        } else {
            0
        }
    }

    /// The first error met, if any; else the output, made durable.
    pub fn finish(mut self) -> io::Result<(Box<dyn Output>, u64)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.w.durable()?;
        Ok((self.w, self.bytes))
    }
}

/// What a finished run wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub keys: u64,
    /// Shards dumped by writes rather than by the walk.
    pub copied: u64,
    /// Keys a write copied into the dump before changing them; the bytes of all that writes
    /// copied (those keys and the whole shards).
    pub copied_keys: u64,
    pub copied_bytes: u64,
}

/// Key names, as a set: the names' bytes in one buffer and a table of (hash, place), so
/// that recording a name costs no allocation of its own (the walk records every key of the
/// shard it is in, a write every key it copies). Hashed with `hash_key`, as the keyspace is.
#[derive(Default)]
struct Names {
    bytes: Vec<u8>,
    table: hashbrown::HashTable<(u64, usize, usize)>,
}

impl Names {
    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn reserve(&mut self, n: usize) {
        self.table.reserve(n, |&(h, _, _)| h);
    }

    fn name(&self, at: usize, len: usize) -> &[u8] {
        &self.bytes[at..at + len]
    }

    /// Adds `key` (of hash `hash`); false if it was there already.
    fn insert(&mut self, hash: u64, key: &[u8]) -> bool {
        if self.contains(hash, key) {
            return false;
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.table
            .insert_unique(hash, (hash, at, key.len()), |&(h, _, _)| h);
        true
    }

    fn contains(&self, hash: u64, key: &[u8]) -> bool {
        self.table
            .find(hash, |&(h, at, len)| h == hash && self.name(at, len) == key)
            .is_some()
    }
}

/// Buckets one step of a point-in-time walk covers under the shard's read lock: a write to
/// that shard waits for one step's encoding at most, not for the whole shard's (at 1,000,000
/// keys a shard's is milliseconds, and a worker held there holds all its clients).
const STEP_BUCKETS: usize = 256;

/// Asks for the names and values of the entries in `buckets` before they are read: each is on
/// the heap, a cache miss of its own, and asked for all at once the misses overlap (a save of
/// 1,000,000 mixed keys took 0.5 s instead of 0.83 s).
fn prefetch_entries(shard: &Shard, buckets: std::ops::Range<usize>) {
    for (k, v) in buckets.filter_map(|i| shard.map.bucket(i)) {
        crate::util::prefetch(k.as_ptr());
        crate::util::prefetch(v.first_byte());
    }
}

/// Where a point-in-time walk of one shard is (see `Run::step`).
#[derive(Default)]
struct Cursor {
    pos: usize,
    layout: Option<(usize, u32)>,
}

/// One dump.
pub struct Run {
    policy: Policy,
    encoding: Box<dyn Encoding>,
    /// Read and written under each shard's lock, which orders them.
    dumped: DumpMarks,
    /// Per shard (`Instant` only), the keys whose state at the instant is settled: written by
    /// a write just before it changed them (or found absent then), or by the walk of the
    /// shard it is in. Neither writes a key twice. Each is used under its shard's lock (the
    /// walk's read lock excludes writers); the mutex only makes it shareable.
    written: Box<[Mutex<Names>]>,
    /// Keys that writes copied (per database, in runs), waiting for the walk to write them: a
    /// write holding its shards never waits for the output (a file's write, a replica's
    /// socket, which may be slow for seconds), nor for the walk's own writing.
    copies: Mutex<Vec<(usize, Vec<u8>)>>,
    /// Taken out when the walk is done (a writer may still hold the run a moment, having
    /// found every one of its shards dumped).
    out: Mutex<Option<Sink>>,
    /// Keys past their deadline at the start are left out, unless the encoding keeps them.
    now: u64,
    /// Which AOF rewrite this is (0 for a snapshot), for the records of its tail.
    pub gen: u64,
    copied: AtomicU64,
    copied_keys: AtomicU64,
    copied_bytes: AtomicU64,
    keys: AtomicU64,
    /// The keys there were at the instant, as far as the caller counted them (INFO's
    /// `current_save_keys_total`).
    total: AtomicU64,
    /// Redis's `rdb-key-save-delay` (see `util::debug_delay`), slept by the walk between
    /// steps, never under a lock.
    key_delay: AtomicI64,
    /// The run's result will be thrown away (the AOF was turned off during its rewrite, as
    /// Redis kills its child then): the walk stops at its next step.
    aborted: std::sync::atomic::AtomicBool,
}

impl Run {
    pub fn new(
        dbs: usize,
        policy: Policy,
        encoding: Box<dyn Encoding>,
        out: Sink,
        gen: u64,
    ) -> Arc<Run> {
        let names = match policy {
            Policy::Instant => dbs * SHARDS,
            Policy::Settle => 0,
        };
        Arc::new(Run {
            policy,
            encoding,
            dumped: DumpMarks::new(dbs),
            written: (0..names).map(|_| Mutex::default()).collect(),
            copies: Mutex::default(),
            out: Mutex::new(Some(out)),
            now: crate::util::clock::now_ms(),
            gen,
            copied: AtomicU64::new(0),
            copied_keys: AtomicU64::new(0),
            copied_bytes: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            total: AtomicU64::new(0),
            key_delay: AtomicI64::new(0),
            aborted: Default::default(),
        })
    }

    pub fn set_key_delay(&self, delay: i64) {
        self.key_delay.store(delay, Ordering::Relaxed);
    }

    pub fn set_total(&self, keys: u64) {
        self.total.store(keys, Ordering::Relaxed);
    }

    /// Where the run is: keys written, the keys at the instant, and the bytes of the keys
    /// writes copied (Redis's fork reports its copy-on-write there).
    pub fn progress(&self) -> (u64, u64, u64) {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (ld(&self.keys), ld(&self.total), ld(&self.copied_bytes))
    }

    /// Stops the walk at its next step; what it wrote is incomplete and must be discarded.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    /// `rdb-key-save-delay` after `n` more keys written by the walk, cut short by `abort`.
    fn delay(&self, n: u64) {
        let d = self.key_delay.load(Ordering::Relaxed);
        if d != 0 && n > 0 {
            let done = self.keys.load(Ordering::Relaxed).saturating_sub(n);
            let until = std::time::Instant::now() + crate::util::debug_delay(d, done, n);
            while !self.is_aborted() {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(std::time::Duration::from_millis(10)));
            }
        }
    }

    pub fn is_dumped(&self, id: ShardId) -> bool {
        self.dumped.is_dumped(id)
    }

    fn written(&self, id: ShardId) -> Option<&Mutex<Names>> {
        self.written
            .get(id.db as usize * SHARDS + id.shard as usize)
    }

    /// Writes the live keys of `shard` (locked by the caller) not written yet, and marks it
    /// dumped.
    pub fn dump_shard(&self, id: ShardId, shard: &Shard) {
        let (buf, _) = self.encode_shard(id, shard);
        self.emit(id.db as usize, &buf);
    }

    /// `dump_shard`'s keys, encoded, and how many.
    fn encode_shard(&self, id: ShardId, shard: &Shard) -> (Vec<u8>, u64) {
        self.dumped.mark(id);
        let written = self
            .written(id)
            .map(|m| std::mem::take(&mut *m.lock()))
            .unwrap_or_default();
        if shard.map.is_empty() {
            return (Vec::new(), 0);
        }
        let mut buf = Vec::with_capacity(shard.map.len() * 32);
        let mut keys = 0;
        let n = shard.map.num_buckets();
        for start in (0..n).step_by(STEP_BUCKETS) {
            let block = start..n.min(start + STEP_BUCKETS);
            prefetch_entries(shard, block.clone());
            for (k, v) in block.filter_map(|i| shard.map.bucket(i)) {
                let hash = hash_key(k);
                if !written.is_empty() && written.contains(hash, k) {
                    continue;
                }
                if self.encode(&mut buf, id, shard, hash, k, v) {
                    keys += 1;
                }
            }
        }
        self.keys.fetch_add(keys, Ordering::Relaxed);
        (buf, keys)
    }

    /// A point-in-time run's walk of one shard, in steps of `STEP_BUCKETS` buckets, each
    /// under the read lock, which is let go between them (`step`).
    fn walk_shard_in_steps(&self, id: ShardId, lock: &RwLock<Shard>, buf: &mut Vec<u8>) {
        let mut at = Cursor::default();
        loop {
            let urgent = crate::util::yielding::urgent();
            let shard = lock.read();
            let (done, keys) = self.step(id, &shard, &mut at, buf);
            drop(shard);
            drop(urgent);
            self.emit(id.db as usize, buf);
            buf.clear();
            self.write_copies();
            self.delay(keys);
            if done {
                return;
            }
        }
    }

    /// Encodes into `buf` the keys of the next `STEP_BUCKETS` buckets of `shard` (read-locked
    /// by the caller) that are still as they were at the instant, and records them so that no
    /// write copies them again: writes between steps settle each key they change
    /// (`WriteHook::key`). The position is a bucket index; a growth or rehash that moved the
    /// entries sends the walk back to the first bucket, and the names recorded skip what it
    /// has written already. True once the shard is dumped; and the keys written.
    fn step(&self, id: ShardId, shard: &Shard, at: &mut Cursor, buf: &mut Vec<u8>) -> (bool, u64) {
        let Some(written) = self.written(id) else {
            return (true, 0);
        };
        if self.is_dumped(id) {
            return (true, 0);
        }
        let layout = shard.map.layout();
        if at.layout != Some(layout) {
            *at = Cursor {
                pos: 0,
                layout: Some(layout),
            };
        }
        let end = shard.map.num_buckets().min(at.pos + STEP_BUCKETS);
        prefetch_entries(shard, at.pos..end);
        let mut keys = 0;
        let mut names = written.lock();
        if at.pos == 0 {
            let more = shard.map.len().saturating_sub(names.len());
            names.reserve(more);
        }
        for (k, v) in (at.pos..end).filter_map(|i| shard.map.bucket(i)) {
            let hash = hash_key(k);
            if names.insert(hash, k) && self.encode(buf, id, shard, hash, k, v) {
                keys += 1;
            }
        }
        self.keys.fetch_add(keys, Ordering::Relaxed);
        at.pos = end;
        let done = end >= shard.map.num_buckets();
        if done {
            self.dumped.mark(id);
            drop(std::mem::take(&mut *names));
        }
        (done, keys)
    }

    /// Dumps `shard` for a write about to change it, unless the run has already.
    fn copy_shard(&self, id: ShardId, shard: &Shard) {
        if !self.is_dumped(id) {
            let (buf, _) = self.encode_shard(id, shard);
            self.copied_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            self.copy(id.db as usize, buf);
            self.copied.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Keeps what a write copied for the walk to write (`write_copies`).
    fn copy(&self, db: usize, buf: Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        let mut copies = self.copies.lock();
        match copies.last_mut() {
            Some((d, b)) if *d == db => b.extend_from_slice(&buf),
            _ => copies.push((db, buf)),
        }
    }

    /// Writes what writes have copied so far.
    fn write_copies(&self) {
        let copies = std::mem::take(&mut *self.copies.lock());
        for (db, buf) in copies {
            self.emit(db, &buf);
        }
    }

    /// Appends `key` as the dump has it, unless it had expired when the run began.
    fn encode(
        &self,
        buf: &mut Vec<u8>,
        id: ShardId,
        shard: &Shard,
        hash: u64,
        key: &[u8],
        v: &Value,
    ) -> bool {
        let deadline = shard.deadline_hashed(hash, key);
        if deadline.is_some_and(|d| value::is_expired(d, self.now))
            && !self.encoding.keeps_expired()
        {
            return false;
        }
        self.encoding.key(buf, id.db as usize, key, v, deadline);
        true
    }

    /// Writes encoded keys of database `db` to the output.
    fn emit(&self, db: usize, buf: &[u8]) {
        if buf.is_empty() {
            return;
        }
        let mut out = self.out.lock();
        let Some(sink) = out.as_mut() else { return };
        if sink.db != Some(db) {
            let mut sel = Vec::new();
            self.encoding.select(&mut sel, db);
            if sink.write(&sel).is_err() {
                return;
            }
            sink.db = Some(db);
        }
        let _ = sink.write(buf);
    }

    /// What a write does right after locking `locked`, before it changes anything.
    fn before_write(self: &Arc<Self>, locked: &mut Locked) {
        let ids = locked.shard_ids();
        match self.policy {
            // Copied as it changes them (see `Policy::Instant`): a write into shards already
            // dumped has nothing to copy.
            Policy::Instant => {
                if ids.iter().any(|&s| !self.is_dumped(s)) {
                    locked.set_hook(self.clone());
                }
            }
            Policy::Settle => {
                if ids.len() < 2 || !ids.iter().any(|&s| self.is_dumped(s)) {
                    return;
                }
                for &s in ids {
                    self.copy_shard(s, locked.shard(s));
                }
            }
        }
    }

    /// Dumps every shard not dumped yet, taking each one's read lock; `held`: the caller
    /// holds every shard's lock already (SHUTDOWN), and so is the only writer.
    pub fn walk(&self, store: &Store, held: Option<&Locked>) {
        let mut buf = Vec::new();
        for (id, lock) in store.shard_locks() {
            if self.is_aborted() {
                break;
            }
            match held {
                Some(all) => self.dump_shard(id, all.shard(id)),
                None if self.policy == Policy::Instant => {
                    self.walk_shard_in_steps(id, lock, &mut buf)
                }
                None => {
                    let g = lock.read();
                    if !self.is_dumped(id) {
                        let (buf, keys) = self.encode_shard(id, &g);
                        drop(g);
                        self.emit(id.db as usize, &buf);
                        self.delay(keys);
                    }
                }
            }
            self.write_copies();
        }
    }

    /// The output, once the walk is done and the run is no longer current.
    pub fn take_output(&self) -> io::Result<(Sink, Counts)> {
        // Every shard is dumped: no write copies anything any more.
        self.write_copies();
        let sink = self
            .out
            .lock()
            .take()
            .ok_or_else(|| io::Error::other("the dump's output is already taken"))?;
        let counts = Counts {
            keys: self.keys.load(Ordering::Relaxed),
            copied: self.copied.load(Ordering::Relaxed),
            copied_keys: self.copied_keys.load(Ordering::Relaxed),
            copied_bytes: self.copied_bytes.load(Ordering::Relaxed),
        };
        Ok((sink, counts))
    }
}

/// A point-in-time run's copy-on-write (see `Policy::Instant`).
impl WriteHook for Run {
    fn shard(&self, id: ShardId, shard: &Shard) {
        self.copy_shard(id, shard);
    }

    fn key(&self, id: ShardId, shard: &Shard, key: &[u8]) {
        if self.is_dumped(id) {
            return;
        }
        let Some(written) = self.written(id) else {
            return;
        };
        let hash = hash_key(key);
        // Absent keys too: one created now was not there at the instant.
        if !written.lock().insert(hash, key) {
            return;
        }
        let Some(v) = shard.get_hashed(hash, key) else {
            return;
        };
        let mut buf = Vec::new();
        if self.encode(&mut buf, id, shard, hash, key, v) {
            self.keys.fetch_add(1, Ordering::Relaxed);
            self.copied_keys.fetch_add(1, Ordering::Relaxed);
            self.copied_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            self.copy(id.db as usize, buf);
        }
    }
}

/// The run in progress, if any, as writers see it.
#[derive(Default)]
pub struct Current {
    /// One atomic load is all a write pays when no run is in progress.
    active: AtomicBool,
    run: Mutex<Option<Arc<Run>>>,
}

impl Current {
    /// Makes `run` visible to writers: the instant of a point-in-time run. Writes that lock
    /// after this see it.
    pub fn start(&self, run: Arc<Run>) {
        *self.run.lock() = Some(run);
        self.active.store(true, Ordering::SeqCst);
    }

    pub fn end(&self) {
        self.active.store(false, Ordering::SeqCst);
        *self.run.lock() = None;
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    pub fn get(&self) -> Option<Arc<Run>> {
        if !self.is_active() {
            return None;
        }
        self.run.lock().clone()
    }

    /// Called by a write right after it locked `locked`, before it changes anything.
    #[inline]
    pub fn before_write(&self, locked: &mut Locked) {
        if self.is_active() {
            self.before_write_slow(locked);
        }
    }

    #[cold]
    fn before_write_slow(&self, locked: &mut Locked) {
        if let Some(run) = self.get() {
            run.before_write(locked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;
    use std::collections::BTreeMap;

    /// Keys as `name=value` lines.
    struct Lines;

    impl Encoding for Lines {
        fn select(&self, _: &mut Vec<u8>, _: usize) {}
        fn key(&self, out: &mut Vec<u8>, _: usize, key: &[u8], v: &Value, _: Option<u64>) {
            let Value::Str(s) = v else {
                panic!("strings only")
            };
            out.extend_from_slice(key);
            out.push(b'=');
            out.extend_from_slice(s);
            out.push(b'\n');
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Output for Captured {}

    fn keys_in(id: ShardId, n: usize) -> Vec<Vec<u8>> {
        (0..)
            .map(|i| format!("key:{i:012}").into_bytes())
            .filter(|k| ShardId::of_key(0, k) == id)
            .take(n)
            .collect()
    }

    /// One step of the walk under the shard's read lock: true when the shard is done.
    fn step(run: &Run, store: &Store, id: ShardId, at: &mut Cursor, buf: &mut Vec<u8>) -> bool {
        run.step(id, store.lock(smallvec![id], false).shard(id), at, buf)
            .0
    }

    /// A write as a command makes it after the instant: through the run's hook.
    fn write(run: &Arc<Run>, store: &Store, id: ShardId, key: &[u8], value: Option<&str>) {
        let mut l = store.lock(smallvec![id], true);
        run.before_write(&mut l);
        let map = &mut l.key_mut(id, key).map;
        match value {
            Some(v) => drop(map.insert(key.into(), Value::str(v.as_bytes()))),
            None => drop(map.remove_entry_hashed(hash_key(key), key)),
        }
    }

    /// A run over one shard holding `old` keys, `old{i}` each; the instant's contents.
    fn shard_with(
        store: &Store,
        id: ShardId,
        old: &[Vec<u8>],
    ) -> (Arc<Run>, Captured, BTreeMap<Vec<u8>, String>) {
        let mut instant = BTreeMap::new();
        let mut l = store.lock(smallvec![id], true);
        for (i, k) in old.iter().enumerate() {
            let v = format!("old{i}");
            l.shard_mut(id)
                .map
                .insert(k[..].into(), Value::str(v.as_bytes()));
            instant.insert(k.clone(), v);
        }
        let out = Captured::default();
        let sink = Sink::new(Box::new(out.clone()), false);
        let run = Run::new(1, Policy::Instant, Box::new(Lines), sink, 0);
        (run, out, instant)
    }

    /// What the run wrote, checking that no key is in it twice.
    fn written(run: &Run, out: &Captured) -> BTreeMap<Vec<u8>, String> {
        let (sink, _) = run.take_output().unwrap();
        sink.finish().unwrap();
        let text = out.0.lock().clone();
        let mut seen = BTreeMap::new();
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let i = line.iter().position(|&b| b == b'=').unwrap();
            let value = String::from_utf8(line[i + 1..].to_vec()).unwrap();
            let name = line[..i].to_vec();
            assert!(
                seen.insert(name, value).is_none(),
                "{} written twice",
                String::from_utf8_lossy(&line[..i])
            );
        }
        seen
    }

    #[test]
    fn a_walk_in_steps_writes_each_key_once_as_it_was_at_the_instant() {
        let store = Store::new(1);
        let id = ShardId { db: 0, shard: 3 };
        let keys = keys_in(id, 5000);
        let (old, new) = keys.split_at(1500);
        let (run, out, instant) = shard_with(&store, id, old);
        let mut at = Cursor::default();
        let mut buf = Vec::new();
        let (mut steps, mut restarts) = (0, 0);
        loop {
            let before = at.layout;
            let done = step(&run, &store, id, &mut at, &mut buf);
            if before.is_some() && at.layout != before {
                restarts += 1;
            }
            run.emit(0, &buf);
            buf.clear();
            if done {
                break;
            }
            // Between steps: keys changed on both sides of the position, some removed, and
            // enough new ones to make the table grow.
            write(
                &run,
                &store,
                id,
                &old[(steps * 7) % old.len()],
                Some("changed"),
            );
            write(&run, &store, id, &old[(steps * 13 + 700) % old.len()], None);
            for k in new.iter().skip(steps * 100).take(100) {
                write(&run, &store, id, k, Some("new"));
            }
            steps += 1;
        }
        assert!(restarts > 0, "the table grew during the walk");
        assert!(steps > 3, "{steps} steps");
        assert_eq!(written(&run, &out), instant);
        assert_eq!(run.keys.load(Ordering::Relaxed), old.len() as u64);
    }

    #[test]
    fn a_shrink_mid_walk_sends_the_walk_back_to_the_first_bucket() {
        let store = Store::new(1);
        let id = ShardId { db: 0, shard: 5 };
        let old = keys_in(id, 1500);
        let (run, out, instant) = shard_with(&store, id, &old);
        let mut at = Cursor::default();
        let mut buf = Vec::new();
        for _ in 0..4 {
            assert!(!step(&run, &store, id, &mut at, &mut buf));
        }
        // Most keys go, and the table is cut down (as `shrink_if_sparse` does): the ones
        // left move to buckets the walk has passed.
        for k in &old[..1300] {
            write(&run, &store, id, k, None);
        }
        store
            .lock(smallvec![id], true)
            .key_mut(id, b"-")
            .map
            .shrink_to(0);
        while !step(&run, &store, id, &mut at, &mut buf) {}
        run.emit(0, &buf);
        assert_eq!(written(&run, &out), instant);
    }

    #[test]
    fn a_change_to_a_whole_shard_mid_walk_writes_the_rest_of_it() {
        let store = Store::new(1);
        let id = ShardId { db: 0, shard: 9 };
        let old = keys_in(id, 1500);
        let (run, out, instant) = shard_with(&store, id, &old);
        let mut at = Cursor::default();
        let mut buf = Vec::new();
        assert!(!step(&run, &store, id, &mut at, &mut buf));
        run.emit(0, &buf);
        write(&run, &store, id, &old[0], Some("changed"));
        // FLUSHDB, as far as the run sees it.
        let mut l = store.lock(smallvec![id], true);
        run.before_write(&mut l);
        l.shard_mut(id).map.clear();
        drop(l);
        assert!(run.is_dumped(id));
        assert!(step(&run, &store, id, &mut at, &mut buf));
        assert_eq!(written(&run, &out), instant);
    }
}
