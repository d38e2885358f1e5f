//! Point-in-time snapshots without fork and without a pause (SAVE, BGSAVE, the save schedule).
//!
//! A snapshot is a `dump::Run` with RDB records and the point-in-time policy
//! (`dump::Policy::Instant`, which says why a MULTI/EXEC or MSET across shards is in it whole
//! or not at all). A write copies only the keys it changes into the dump first; extra memory
//! is the names of the keys copied, never a second copy of the data.
//!
//! The file is written to a temp name, fsynced and renamed: the previous file stays whole
//! until the new one is.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use super::file::{self, Options};
use super::opcode;
use super::write::Encoder;
use crate::dump::{self, Current, Output, Policy, Sink};
use crate::store::{Locked, Store, Value};
use crate::util::clock::now_ms;

/// Keys as RDB records (`rdbcompression` on or off).
pub struct RdbEncoding {
    pub compress: bool,
}

impl dump::Encoding for RdbEncoding {
    fn select(&self, out: &mut Vec<u8>, db: usize) {
        let mut e = Encoder::with_buf(std::mem::take(out), false);
        e.byte(opcode::SELECTDB);
        e.len(db as u64);
        *out = e.buf;
    }

    fn key(&self, out: &mut Vec<u8>, _db: usize, key: &[u8], v: &Value, deadline: Option<u64>) {
        let mut e = Encoder::with_buf(std::mem::take(out), self.compress);
        e.key(key, v, deadline);
        *out = e.buf;
    }

    /// As Redis's rdbSaveRio: a master loading the file leaves them out and counts them
    /// (`rdb_last_load_keys_expired`); a replica keeps them until its master's DEL.
    fn keeps_expired(&self) -> bool {
        true
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
    /// Bytes that writes copied into the last snapshot before changing them (INFO's
    /// rdb_last_cow_size: what Redis's fork copies on write, this copies on write).
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
    current: Current,
    /// Taken by the one snapshot allowed at a time (SAVE or BGSAVE).
    busy: AtomicBool,
    /// A BGSAVE SCHEDULE waiting for an AOF rewrite to end.
    pub scheduled: AtomicBool,
    pub status: SaveStatus,
    /// The saver thread's priority: background saves yield to clients.
    pub saver: crate::util::yielding::Yielding,
}

impl Snapshots {
    /// The snapshot in progress, if any: keys written, keys at its instant, bytes its
    /// copy-on-write copied (see `dump::Run::progress`).
    pub fn progress(&self) -> Option<(u64, u64, u64)> {
        self.current.get().map(|r| r.progress())
    }
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots {
            requests: crossbeam_channel::unbounded(),
            current: Current::default(),
            busy: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            status: SaveStatus::default(),
            saver: Default::default(),
        }
    }
}

/// What a finished snapshot wrote.
#[derive(Debug, Clone, Copy)]
pub struct SaveStats {
    pub keys: u64,
    pub bytes: u64,
    /// Whole shards, and single keys with their encoded bytes, copied by writes first.
    pub copied: u64,
    pub copied_keys: u64,
    pub copied_bytes: u64,
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

    /// Gives the slot back after a snapshot that is not a save (a replica's full sync).
    pub fn release(&self) {
        self.status.started_ms.store(0, Ordering::Relaxed);
        self.busy.store(false, Ordering::SeqCst);
    }

    pub fn in_progress(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// Called by a write right after it locked `locked`, before it changes anything: if the
    /// running snapshot has not dumped all of its shards, the write copies what it changes in
    /// them first (see `dump::Policy::Instant`).
    #[inline]
    pub fn before_write(&self, locked: &mut Locked) {
        self.current.before_write(locked);
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
                st.last_copied.store(s.copied_bytes, Ordering::Relaxed);
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
        let temp = file::temp_path(path);
        let res = file::create(&temp)
            .and_then(|w| self.write_rdb(store, w, opts, functions, dirty, held, None))
            .and_then(|(stats, _)| file::publish(&temp, path).map(|_| stats));
        if res.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        res
    }

    /// Writes a point-in-time RDB of `store` (header, function libraries, keys, EOF, CRC-64)
    /// to `w` on this thread and makes it durable; returns `w`. The caller holds the slot
    /// (`try_begin`) throughout: this is the one entry point for any sink (a file, a
    /// replica's socket). `dirty`: the write counter at the instant, for the schedule;
    /// `held`: the caller holds every shard's lock.
    /// `instant`, for a replica's full sync, is called at the snapshot's instant, with every
    /// shard held so that no write is half done, and says where the replication stream stands
    /// then (the RDB records it; the replica continues the stream from there).
    #[allow(clippy::too_many_arguments)]
    pub fn write_rdb(
        &self,
        store: &Store,
        w: Box<dyn Output>,
        opts: Options,
        functions: &[Vec<u8>],
        dirty: u64,
        held: Option<&Locked>,
        instant: Option<&mut dyn FnMut() -> file::ReplPoint>,
    ) -> std::io::Result<(SaveStats, Box<dyn Output>)> {
        let started = Instant::now();
        let mut sink = Sink::new(w, opts.checksum);
        let encoding = RdbEncoding {
            compress: opts.compression,
        };
        let run = {
            // Not while a script holding the script token runs (see `Shared::lock_for_script`);
            // a caller holding every shard has no such script beside it.
            let _token = held.is_none().then(|| store.token.lock());
            // A write holds its shards from before it changes them until its effect is in
            // the replication stream: with every shard held, none is between the two.
            let _all = match (&instant, held) {
                (Some(_), None) => Some(store.lock(store.all_shards().collect(), false)),
                _ => None,
            };
            let point = instant.map(|f| f());
            sink.write(&file::header_for_sync(
                opts.compression,
                false,
                point.as_ref(),
                functions.iter().map(|f| &f[..]),
            ))?;
            let run = dump::Run::new(
                store.dbs.len(),
                Policy::Instant,
                Box::new(encoding),
                sink,
                0,
            );
            run.set_key_delay(opts.key_delay);
            // Through the locks held, where they are: taking them again could deadlock.
            let count =
                |l: &Locked| -> usize { store.all_shards().map(|id| l.shard(id).map.len()).sum() };
            let total: usize = match (held, &_all) {
                (Some(l), _) => count(l),
                (None, Some(l)) => count(l),
                (None, None) => store.dbs.iter().map(|d| d.len()).sum(),
            };
            run.set_total(total as u64);
            self.current.start(run.clone());
            run
        };
        self.saver.started();
        self.status.dirty_at_save.store(dirty, Ordering::Relaxed);
        run.walk(store, held);
        self.current.end();
        let (mut sink, counts) = run.take_output()?;
        file::end(&mut sink)?;
        let (w, bytes) = sink.finish()?;
        let stats = SaveStats {
            keys: counts.keys,
            bytes,
            copied: counts.copied,
            copied_keys: counts.copied_keys,
            copied_bytes: counts.copied_bytes,
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok((stats, w))
    }
}
