//! Point-in-time snapshots without fork and without a pause (SAVE, BGSAVE, the save schedule).
//!
//! The dumper walks the shards one at a time, each under its read lock, writes its keys and
//! marks it dumped. The snapshot's instant is the moment it becomes active: a write that takes
//! its locks after that, and finds one of its shards not yet dumped, dumps that shard itself
//! first, under the write lock it already holds and before it changes anything (copy-on-write,
//! one shard at a time: see [`Snapshots::before_write`]). So every shard is written as it was
//! at the instant, and a MULTI/EXEC or MSET across shards is in the file whole (it locked
//! before the instant: no shard of it can be dumped until it is done) or not at all (it
//! locked after: all its shards are dumped before it writes).
//!
//! Extra memory is one shard's serialisation at a time per writer, never a second copy of the
//! data. The cost moves to the first write into each undumped shard, which pays for dumping
//! that shard (a 256th of its database).
//!
//! The file is written to a temp name, fsynced and renamed: the previous file stays whole
//! until the new one is.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::file::{self, Options, Out};
use super::opcode;
use super::write::Encoder;
use crate::store::{value, DumpMarks, Locked, Shard, ShardId, Store};
use crate::util::clock::now_ms;

struct Run {
    /// Per shard (db * SHARDS + shard); read and written under that shard's lock.
    dumped: DumpMarks,
    /// Taken out when the walk is done (a writer may still hold the run a moment, having
    /// found every one of its shards dumped).
    out: Mutex<Option<Sink>>,
    /// Keys past their deadline at the instant are left out.
    now: u64,
    compress: bool,
    /// Shards a write dumped before changing them.
    copied: AtomicU64,
    keys: AtomicU64,
}

struct Sink {
    out: Out,
    db: Option<usize>,
    error: Option<std::io::Error>,
}

impl Sink {
    fn put(&mut self, db: usize, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let mut res = Ok(());
        if self.db != Some(db) {
            let mut e = Encoder::new(false);
            e.byte(opcode::SELECTDB);
            e.len(db as u64);
            res = self.out.write(&e.buf);
            self.db = Some(db);
        }
        if let Err(e) = res.and_then(|_| self.out.write(bytes)) {
            self.error = Some(e);
        }
    }
}

impl Run {
    fn is_dumped(&self, id: ShardId) -> bool {
        self.dumped.is_dumped(id)
    }

    /// Writes `shard` (locked by the caller) and marks it dumped.
    fn dump_shard(&self, id: ShardId, shard: &Shard) {
        self.dumped.mark(id);
        if shard.map.is_empty() {
            return;
        }
        let mut e = Encoder::new(self.compress);
        e.buf.reserve(shard.map.len() * 32);
        let mut keys = 0;
        for (k, v) in &shard.map {
            let deadline = shard.deadline(k);
            if deadline.is_some_and(|d| value::is_expired(d, self.now)) {
                continue;
            }
            e.key(k, v, deadline);
            keys += 1;
        }
        self.keys.fetch_add(keys, Ordering::Relaxed);
        if let Some(sink) = self.out.lock().as_mut() {
            sink.put(id.db as usize, &e.buf);
        }
    }
}

/// What INFO persistence reports, and the schedule reads.
pub struct SaveStatus {
    /// Unix seconds of the last successful save (or of the start / the load).
    pub last_save: AtomicU64,
    pub last_ok: AtomicBool,
    /// Seconds the last background save took, -1 before the first.
    pub last_secs: AtomicI64,
    /// Unix ms the running one started, 0 when none runs.
    pub started_ms: AtomicU64,
    /// `stats.dirty` when the running/last snapshot took its instant.
    pub dirty_at_save: AtomicU64,
    pub saves: AtomicU64,
    /// Shards copied by writes in the last snapshot (INFO's rdb_last_cow_size, as a count).
    pub last_copied: AtomicU64,
    pub last_bytes: AtomicU64,
    /// Unix ms of the last failed attempt, for the schedule's retry delay.
    pub last_try_ms: AtomicU64,
    /// What the load at start found (INFO's rdb_last_load_keys_*).
    pub last_load_keys: AtomicU64,
    pub last_load_expired: AtomicU64,
}

impl Default for SaveStatus {
    fn default() -> Self {
        SaveStatus {
            last_save: AtomicU64::new(now_ms() / 1000),
            last_ok: AtomicBool::new(true),
            last_secs: AtomicI64::new(-1),
            started_ms: AtomicU64::new(0),
            dirty_at_save: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            last_copied: AtomicU64::new(0),
            last_bytes: AtomicU64::new(0),
            last_try_ms: AtomicU64::new(0),
            last_load_keys: AtomicU64::new(0),
            last_load_expired: AtomicU64::new(0),
        }
    }
}

/// The running snapshot, if any, and the status of the last one.
pub struct Snapshots {
    /// BGSAVE's requests to the saver thread.
    requests: (
        crossbeam_channel::Sender<()>,
        crossbeam_channel::Receiver<()>,
    ),
    /// One atomic load is all a write pays when no snapshot runs.
    active: AtomicBool,
    run: Mutex<Option<Arc<Run>>>,
    /// Taken by the one snapshot allowed at a time (SAVE or BGSAVE).
    busy: AtomicBool,
    /// A BGSAVE SCHEDULE waiting for an AOF rewrite to end.
    pub scheduled: AtomicBool,
    pub status: SaveStatus,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots {
            requests: crossbeam_channel::unbounded(),
            active: AtomicBool::new(false),
            run: Mutex::new(None),
            busy: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            status: SaveStatus::default(),
        }
    }
}

/// What a finished snapshot wrote.
#[derive(Debug, Clone, Copy)]
pub struct SaveStats {
    pub keys: u64,
    pub bytes: u64,
    pub copied: u64,
    pub seconds: f64,
}

impl Snapshots {
    /// Claims the one snapshot slot; false if a snapshot runs.
    pub fn try_begin(&self) -> bool {
        let ok = self
            .busy
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if ok {
            self.status.started_ms.store(now_ms(), Ordering::Relaxed);
        }
        ok
    }

    /// Asks the saver thread for a background save.
    pub fn request(&self) {
        let _ = self.requests.0.send(());
    }

    /// The saver thread's wait: true if a save was requested within `timeout`.
    pub fn wait_request(&self, timeout: std::time::Duration) -> bool {
        self.requests.1.recv_timeout(timeout).is_ok()
    }

    pub fn in_progress(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// Called by a write right after it locked `locked`, before it changes anything: dumps
    /// those of its shards the running snapshot has not dumped yet.
    #[inline]
    pub fn before_write(&self, locked: &Locked) {
        if self.active.load(Ordering::SeqCst) {
            self.copy_before_write(locked);
        }
    }

    #[cold]
    fn copy_before_write(&self, locked: &Locked) {
        let Some(run) = self.run.lock().clone() else {
            return;
        };
        for &s in locked.shard_ids() {
            if !run.is_dumped(s) {
                run.dump_shard(s, locked.shard(s));
                run.copied.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes a snapshot of `store` to `path` (through a temp file) on this thread; the
    /// caller holds the slot (`try_begin`), which this releases. `dirty` is the write
    /// counter at the instant, recorded for the schedule on success. `held`: the caller
    /// holds every shard's lock (and so no write runs meanwhile).
    pub fn save(
        &self,
        store: &Store,
        path: &Path,
        opts: Options,
        functions: &[Vec<u8>],
        dirty: u64,
        held: Option<&Locked>,
    ) -> std::io::Result<SaveStats> {
        let res = self.save_inner(store, path, opts, functions, dirty, held);
        let st = &self.status;
        let started = st.started_ms.swap(0, Ordering::Relaxed);
        st.last_secs.store(
            (now_ms().saturating_sub(started) / 1000) as i64,
            Ordering::Relaxed,
        );
        st.last_ok.store(res.is_ok(), Ordering::Relaxed);
        match &res {
            Ok(s) => {
                st.last_save.store(now_ms() / 1000, Ordering::Relaxed);
                st.saves.fetch_add(1, Ordering::Relaxed);
                st.last_copied.store(s.copied, Ordering::Relaxed);
                st.last_bytes.store(s.bytes, Ordering::Relaxed);
            }
            Err(_) => st.last_try_ms.store(now_ms(), Ordering::Relaxed),
        }
        self.busy.store(false, Ordering::SeqCst);
        res
    }

    fn save_inner(
        &self,
        store: &Store,
        path: &Path,
        opts: Options,
        functions: &[Vec<u8>],
        dirty: u64,
        held: Option<&Locked>,
    ) -> std::io::Result<SaveStats> {
        let started = Instant::now();
        let temp = file::temp_path(path);
        let mut out = Out::create(&temp, opts.checksum)?;
        let head = file::header(opts.compression, false, functions.iter().map(|f| &f[..]));
        if let Err(e) = out.write(&head) {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        let run = Arc::new(Run {
            dumped: DumpMarks::new(store.dbs.len()),
            out: Mutex::new(Some(Sink {
                out,
                db: None,
                error: None,
            })),
            now: now_ms(),
            compress: opts.compression,
            copied: AtomicU64::new(0),
            keys: AtomicU64::new(0),
        });
        *self.run.lock() = Some(run.clone());
        // The instant: writes that lock after this see the run.
        self.active.store(true, Ordering::SeqCst);
        self.status.dirty_at_save.store(dirty, Ordering::Relaxed);
        for (id, lock) in store.shard_locks() {
            // A caller holding every shard (SHUTDOWN) is the only writer: no lock to take.
            match held {
                Some(all) => run.dump_shard(id, all.shard(id)),
                None => {
                    let g = lock.read();
                    if !run.is_dumped(id) {
                        run.dump_shard(id, &g);
                    }
                }
            }
        }
        self.active.store(false, Ordering::SeqCst);
        *self.run.lock() = None;
        let written = match run.out.lock().take() {
            Some(Sink { error: Some(e), .. }) => Err(e),
            Some(sink) => sink.out.finish(),
            None => Err(std::io::Error::other("snapshot output already closed")),
        };
        let bytes = match written.and_then(|b| file::publish(&temp, path).map(|_| b)) {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        Ok(SaveStats {
            keys: run.keys.load(Ordering::Relaxed),
            bytes,
            copied: run.copied.load(Ordering::Relaxed),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}
