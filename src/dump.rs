//! The one online dump engine: what the AOF rewrite, the RDB snapshot (SAVE, BGSAVE) and the
//! AOF's RDB preamble all are. A run walks the shards one at a time, each under its read lock,
//! encodes its live keys and marks it dumped; clients keep writing meanwhile. What differs
//! between the users is only
//! - the [`Encoding`] of a shard's keys (AOF commands or RDB records), and
//! - the [`Policy`] a write follows when it has locked shards the run has not dumped yet.
//!
//! The output is any [`Output`] (a file, a socket for a replica's full sync), checksummed as
//! it goes for RDB's CRC-64 trailer.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::store::{value, DumpMarks, Locked, Shard, ShardId, Store, Value, WriteHook, SHARDS};

/// How a run serialises keys.
pub trait Encoding: Send + Sync {
    /// Appends what makes what follows belong to database `db`.
    fn select(&self, out: &mut Vec<u8>, db: usize);
    /// Appends one live key of database `db`.
    fn key(&self, out: &mut Vec<u8>, db: usize, key: &[u8], v: &Value, deadline: Option<u64>);
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
    /// Keys a write copied into the dump before changing them, and their bytes there.
    pub copied_keys: u64,
    pub copied_bytes: u64,
}

/// Key names, as a set, hashed with ahash as the keyspace's own maps are. (Profiles of saves
/// under load show the walk's lookup here at an eighth of the server's time whatever the
/// hasher, and comparing entry addresses instead only moved that time to the deadline lookup:
/// it is the first touch of each key's bytes, a cache miss the walk pays once either way.)
type Names = HashSet<Box<[u8]>, ahash::RandomState>;

/// One dump.
pub struct Run {
    policy: Policy,
    encoding: Box<dyn Encoding>,
    /// Read and written under each shard's lock, which orders them.
    dumped: DumpMarks,
    /// Per shard (`Instant` only), the keys writes have copied (or found absent) before
    /// changing them: the walk leaves them out. Each is used under its shard's lock; the
    /// mutex only makes it shareable.
    copied_names: Box<[Mutex<Names>]>,
    /// Taken out when the walk is done (a writer may still hold the run a moment, having
    /// found every one of its shards dumped).
    out: Mutex<Option<Sink>>,
    /// Keys past their deadline at the start are left out.
    now: u64,
    /// Which AOF rewrite this is (0 for a snapshot), for the records of its tail.
    pub gen: u64,
    copied: AtomicU64,
    copied_keys: AtomicU64,
    copied_bytes: AtomicU64,
    keys: AtomicU64,
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
            copied_names: (0..names).map(|_| Mutex::default()).collect(),
            out: Mutex::new(Some(out)),
            now: crate::util::clock::now_ms(),
            gen,
            copied: AtomicU64::new(0),
            copied_keys: AtomicU64::new(0),
            copied_bytes: AtomicU64::new(0),
            keys: AtomicU64::new(0),
        })
    }

    pub fn is_dumped(&self, id: ShardId) -> bool {
        self.dumped.is_dumped(id)
    }

    fn copied_names(&self, id: ShardId) -> Option<&Mutex<Names>> {
        self.copied_names
            .get(id.db as usize * SHARDS + id.shard as usize)
    }

    /// Writes the live keys of `shard` (locked by the caller) that no write has copied, and
    /// marks it dumped.
    pub fn dump_shard(&self, id: ShardId, shard: &Shard) {
        self.dumped.mark(id);
        let copied = self
            .copied_names(id)
            .map(|m| std::mem::take(&mut *m.lock()))
            .unwrap_or_default();
        if shard.map.is_empty() {
            return;
        }
        // Encoded before the output is locked, so that writers dumping other shards inline
        // wait only for each other's copying, not for each other's encoding.
        let mut buf = Vec::with_capacity(shard.map.len() * 32);
        let mut keys = 0;
        for (k, v) in &shard.map {
            if !copied.is_empty() && copied.contains(&**k) {
                continue;
            }
            if self.encode(&mut buf, id, shard, k, v) {
                keys += 1;
            }
        }
        self.keys.fetch_add(keys, Ordering::Relaxed);
        self.emit(id.db as usize, &buf);
    }

    /// Dumps `shard` for a write about to change it, unless the run has already.
    fn copy_shard(&self, id: ShardId, shard: &Shard) {
        if !self.is_dumped(id) {
            self.dump_shard(id, shard);
            self.copied.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Appends `key` as the dump has it, unless it had expired when the run began.
    fn encode(&self, buf: &mut Vec<u8>, id: ShardId, shard: &Shard, key: &[u8], v: &Value) -> bool {
        let deadline = shard.deadline(key);
        if deadline.is_some_and(|d| value::is_expired(d, self.now)) {
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
        for (id, lock) in store.shard_locks() {
            match held {
                Some(all) => self.dump_shard(id, all.shard(id)),
                None => {
                    let g = lock.read();
                    if !self.is_dumped(id) {
                        self.dump_shard(id, &g);
                    }
                }
            }
        }
    }

    /// The output, once the walk is done and the run is no longer current.
    pub fn take_output(&self) -> io::Result<(Sink, Counts)> {
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
        let Some(names) = self.copied_names(id) else {
            return;
        };
        {
            let mut names = names.lock();
            if names.contains(key) {
                return;
            }
            // Absent keys too: one created now was not there at the instant.
            names.insert(key.into());
        }
        let Some(v) = shard.map.get(key) else { return };
        let mut buf = Vec::new();
        if self.encode(&mut buf, id, shard, key, v) {
            self.keys.fetch_add(1, Ordering::Relaxed);
            self.copied_keys.fetch_add(1, Ordering::Relaxed);
            self.copied_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            self.emit(id.db as usize, &buf);
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
