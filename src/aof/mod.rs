//! The append-only file: a writer thread fed by a channel, and the rewrite that compacts it
//! while clients are served. Replaying it at start-up runs commands, so that is server-level
//! (`crate::loading`).
//!
//! Order: a command's record enters the channel while the command still holds the locks of every
//! shard it touched (see `commands::Ctx::finish`). Two commands that touch a common key are
//! therefore serialized by that shard's lock, and the one that changed the store first also sent
//! its record first; the channel is FIFO and has one consumer, so the file has the store's order
//! for every key.
//!
//! On and off: CONFIG SET appendonly turns the AOF on and off at run time (`Aof::enable`,
//! `Aof::disable`). Off, no record is made. Turned on, records flow at once but the file is
//! only written once a rewrite has given it a base (as Redis's startAppendOnly): until then
//! they are dropped, except those the rewrite's tail needs, which is what makes the new file
//! complete. A rewrite that overlapped a time the AOF was off may have missed that time's
//! writes, so the writer discards it (`epoch`).

pub mod manifest;
pub mod rewrite;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::config::FsyncPolicy;
use crate::store::{Locked, Store};
use crate::util::clock::now_ms;

/// Where the AOF lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// rudis's own: one file, `dir/appendfilename`.
    Single(PathBuf),
    /// Redis 7's: a directory with a manifest, a base and incr files (see `manifest`), so
    /// that a Redis 7 data directory stays one that Redis can start on again.
    MultiPart(manifest::Dir),
}

impl Layout {
    /// Redis 7's multi-part layout with `aof-multi-part yes`, or when the data directory
    /// holds one and no `appendonly.aof` (so that a directory Redis made stays one it can
    /// start on again); else rudis's single file.
    pub fn of(config: &crate::config::Config) -> Layout {
        let dir = manifest::Dir {
            path: config.dir.join(
                config
                    .get("appenddirname")
                    .unwrap_or_else(|| "appendonlydir".into()),
            ),
            name: config.appendfilename.clone(),
        };
        let single = config.aof_path();
        if config.aof_multi_part || (!single.exists() && dir.manifest_path().is_file()) {
            Layout::MultiPart(dir)
        } else {
            Layout::Single(single)
        }
    }

    /// The file that says what the AOF holds: the AOF itself, or the manifest.
    pub fn path(&self) -> PathBuf {
        match self {
            Layout::Single(p) => p.clone(),
            Layout::MultiPart(d) => d.manifest_path(),
        }
    }

    /// The directory the AOF's files (and a rewrite's temp file) are in.
    pub fn dir(&self) -> PathBuf {
        match self {
            Layout::Single(p) => crate::rdb::file::dir_of(p).to_path_buf(),
            Layout::MultiPart(d) => d.path.clone(),
        }
    }
}

/// Redis's timestamp annotation (`aof-timestamp-enabled`): a line loaders skip, which
/// redis-check-aof --truncate-to-timestamp cuts at.
pub fn timestamp_annotation() -> String {
    format!("#TS:{}\r\n", now_ms() / 1000)
}

/// One command's effect, as RESP text, to be applied in database `db`. A record that selects
/// other databases inside its text must select `db` again at its end.
pub struct Record {
    pub db: usize,
    pub data: Vec<u8>,
    /// Under `always`: signalled once the record is fsynced; the client's reply waits for it.
    pub ack: Option<Sender<()>>,
    /// Non-zero: made while rewrite number `tail` ran, for shards it had already dumped, so the
    /// rewritten file must get it too (see `rewrite`).
    pub tail: u64,
}

/// What a client's reply must wait for after its command was logged.
pub enum AofWait {
    /// The record written to the file (see `Aof::write_through`; the number is its ticket).
    Written(u64),
    /// ... and fsynced (`appendfsync always`).
    Synced(u64, Receiver<()>),
}

impl AofWait {
    /// The record's ticket (see `Aof::write_through`).
    pub fn ticket(&self) -> u64 {
        match self {
            AofWait::Written(t) | AofWait::Synced(t, _) => *t,
        }
    }
}

pub enum Msg {
    Record(Record),
    /// Write and fsync everything before this message, then signal whether that worked.
    Sync(Sender<bool>),
    /// Rewrite `gen`'s dump is complete in `temp` (fsynced): append its tail, rename.
    RewriteDone {
        temp: PathBuf,
        gen: u64,
        /// `Aof::epoch` when the rewrite began.
        epoch: u64,
        /// The AOF was off when it began (BGREWRITEAOF runs then too, as in Redis 7.0): the
        /// file is written for DEBUG LOADAOF or a later start, but nothing appends to it.
        began_off: bool,
        /// The dump is RDB (a multi-part AOF names its base `.rdb`, else `.aof`).
        rdb: bool,
    },
    /// `aof-disable-auto-gc` was turned off: delete a multi-part AOF's history files now.
    CollectHistory,
    /// The AOF is turned off: write and fsync what is pending, close the file, signal whether
    /// that worked. `epoch` is the new `Aof::epoch`.
    Stop {
        epoch: u64,
        done: Sender<bool>,
    },
    /// Rewrite `gen` failed: forget its tail.
    RewriteFailed {
        gen: u64,
    },
}

/// What INFO persistence and the tests read; written by the writer and the rewrite.
#[derive(Default)]
pub struct AofStatus {
    /// Pumps of the queue started and finished (see `Aof::write_through`).
    pub pumps_started: AtomicU64,
    pub pumps_done: AtomicU64,
    /// The fsync policy (CONFIG SET may change it while the writer runs).
    policy: std::sync::atomic::AtomicU8,
    /// Whether `error` is set: what every write command checks, without taking the lock.
    failing: AtomicBool,
    /// The last write or fsync error (strerror text), while it lasts.
    error: Mutex<Option<String>>,
    /// fsync calls made on the AOF.
    pub fsyncs: AtomicU64,
    /// Records written (each one command's effect).
    pub records: AtomicU64,
    /// Size of the file now, and right after the last rewrite (or load): the auto-rewrite
    /// compares the two.
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    pub rewrite_in_progress: AtomicBool,
    /// `aof-timestamp-enabled`: records are preceded by a `#TS:` annotation each new second.
    pub timestamps: AtomicBool,
    /// DEBUG AOF-FLUSH-SLEEP: microseconds each write of the file first sleeps.
    pub flush_sleep_us: AtomicU64,
    /// `aof-disable-auto-gc yes`: a multi-part AOF keeps its history files.
    pub keep_history: AtomicBool,
    /// A rewrite is wanted as soon as the running one ends (INFO's aof_rewrite_scheduled).
    pub rewrite_scheduled: AtomicBool,
    /// Turned on, the AOF has no file until a rewrite succeeds: the rewrite thread retries.
    pub needs_base: AtomicBool,
    pub rewrites: AtomicU64,
    pub last_rewrite_failed: AtomicBool,
    pub rewrite_failures_in_a_row: AtomicU64,
    /// Unix ms when the running rewrite was asked for, and how long the last one took + 1 (0:
    /// none yet), for INFO's rewrite times.
    rewrite_started_ms: AtomicU64,
    last_rewrite_ms_plus1: AtomicU64,
    /// Records queued (counted while their command holds its locks), and how many of the first
    /// of them are fsynced: under `always`, a reply waits until every write it could have
    /// observed is on disk (see `Aof::wait_observed`).
    queued: AtomicU64,
    synced: AtomicU64,
    synced_changed: (Mutex<()>, parking_lot::Condvar),
    /// Bytes of the records queued and not yet taken by the writer (Redis's aof_buf, as
    /// INFO's mem_aof_buffer and eviction count it).
    pub queued_bytes: AtomicU64,
    /// The writer's batch buffer, written or not.
    pub buf_bytes: AtomicU64,
}

impl AofStatus {
    pub fn set_error(&self, e: Option<String>) {
        let mut g = self.error.lock();
        self.failing.store(e.is_some(), Ordering::SeqCst);
        *g = e;
    }

    pub fn policy(&self) -> FsyncPolicy {
        match self.policy.load(Ordering::Relaxed) {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EverySec,
            _ => FsyncPolicy::No,
        }
    }

    pub fn set_policy(&self, p: FsyncPolicy) {
        let v = match p {
            FsyncPolicy::Always => 0,
            FsyncPolicy::EverySec => 1,
            FsyncPolicy::No => 2,
        };
        self.policy.store(v, Ordering::Relaxed);
    }

    /// A rewrite ended (the writer calls this last, so a new one may start after it).
    pub fn rewrite_ended(&self, failed: bool) {
        let took = now_ms().saturating_sub(self.rewrite_started_ms.load(Ordering::Relaxed));
        self.last_rewrite_ms_plus1
            .store(took + 1, Ordering::Relaxed);
        self.last_rewrite_failed.store(failed, Ordering::Relaxed);
        if failed {
            self.rewrite_failures_in_a_row
                .fetch_add(1, Ordering::Relaxed);
        } else {
            self.rewrites.fetch_add(1, Ordering::Relaxed);
            self.rewrite_failures_in_a_row.store(0, Ordering::Relaxed);
        }
        self.rewrite_in_progress.store(false, Ordering::SeqCst);
    }

    /// A rewrite was discarded because the AOF was turned off meanwhile: neither a success nor
    /// a failure, as in Redis, which kills its child then.
    pub fn rewrite_abandoned(&self) {
        self.rewrite_in_progress.store(false, Ordering::SeqCst);
    }

    /// The writer has fsynced the first `n` records queued.
    pub(crate) fn set_synced(&self, n: u64) {
        if self.synced.load(Ordering::SeqCst) < n {
            let _g = self.synced_changed.0.lock();
            self.synced.store(n, Ordering::SeqCst);
            self.synced_changed.1.notify_all();
        }
    }

    pub fn error(&self) -> Option<String> {
        if !self.failing.load(Ordering::SeqCst) {
            return None;
        }
        self.error.lock().clone()
    }
}

/// `(name, value)` lines of INFO.
pub type InfoFields = Vec<(&'static str, String)>;

/// The handle workers use.
pub struct Aof {
    /// CONFIG SET appendonly: what every write checks first, so that with the AOF off a write
    /// costs one load here and nothing else.
    enabled: AtomicBool,
    /// Times the AOF was turned off (see `Msg::Stop`).
    epoch: AtomicU64,
    /// Serializes turning on and off.
    switching: Mutex<()>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    /// The writer, once started (after the load); pumped by its thread and by workers.
    core: std::sync::OnceLock<Arc<Mutex<writer::Writer>>>,
    layout: Layout,
    /// `layout.path()`.
    path: PathBuf,
    pub status: Arc<AofStatus>,
    pub rewrite: rewrite::Rewrite,
    /// BGREWRITEAOF's requests to the rewrite thread.
    rewrite_tx: Sender<()>,
    rewrite_rx: Receiver<()>,
    /// Wakes the writer thread before its next 100 ms tick (see `Writer::run`).
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
}

/// The text Redis puts in its MISCONF error: C's strerror.
pub use crate::util::strerror as error_text;

impl Aof {
    /// The handle, on or off; records queue up until [`Aof::start_writer`] (called once the
    /// file is loaded, so the writer appends after whatever the loader truncated).
    pub fn new(layout: Layout, policy: FsyncPolicy, enabled: bool) -> Aof {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (rewrite_tx, rewrite_rx) = crossbeam_channel::unbounded();
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        let status = Arc::new(AofStatus::default());
        status.set_policy(policy);
        Aof {
            enabled: AtomicBool::new(enabled),
            epoch: AtomicU64::new(0),
            switching: Mutex::new(()),
            rewrite_tx,
            rewrite_rx,
            wake_tx,
            wake_rx,
            tx,
            rx,
            core: std::sync::OnceLock::new(),
            path: layout.path(),
            layout,
            status,
            rewrite: rewrite::Rewrite::default(),
        }
    }

    /// Opens (creating if needed) the file for appending if the AOF is on, and starts the
    /// writer thread.
    pub fn start_writer(&self) -> std::io::Result<()> {
        if self.core.get().is_some() {
            return Ok(());
        }
        let w = writer::Writer::open(&self.layout, self.status.clone(), self.enabled())?;
        let w = Arc::new(Mutex::new(w));
        let _ = self.core.set(w.clone());
        let (rx, wake) = (self.rx.clone(), self.wake_rx.clone());
        // The writer lives as long as the process; nothing joins it.
        std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || writer::Writer::run(w, rx, wake))?;
        Ok(())
    }

    /// Returns once the record with `ticket` is written: called before replies are sent to a
    /// client whose commands were logged (see writer.rs). The ticket is the number of pumps
    /// started when the record had been queued; any pump started later drains it, so once one
    /// has finished there is nothing to do, and the client does not queue for the mutex only
    /// to find its record written.
    pub fn write_through(&self, ticket: u64) {
        if self.status.pumps_done.load(Ordering::SeqCst) > ticket {
            return;
        }
        if let Some(w) = self.core.get() {
            let mut w = w.lock();
            if self.status.pumps_done.load(Ordering::SeqCst) <= ticket {
                w.pump(&self.rx);
            }
        }
    }

    /// Under `always`, returns once every record queued so far is fsynced: called before a
    /// client's replies are sent, so that no client, a reader included, sees a write that is
    /// not yet on disk, as in Redis (which fsyncs before it sends any reply of its event loop
    /// turn). Such a write cannot fail afterwards: under `always` a failed write or fsync
    /// stops the process, as Redis does, so what was observed is what a restart loads.
    pub fn wait_observed(&self) {
        let s = &self.status;
        // The policy first: on every reply under the other policies, one relaxed load.
        if s.policy() != FsyncPolicy::Always {
            return;
        }
        let want = s.queued.load(Ordering::SeqCst);
        if s.synced.load(Ordering::SeqCst) >= want {
            return;
        }
        self.wake_writer();
        let mut g = s.synced_changed.0.lock();
        while s.synced.load(Ordering::SeqCst) < want && s.policy() == FsyncPolicy::Always {
            // A timeout, in case the records were made before the policy became `always` and
            // so asked no fsync: the writer thread's tick then syncs them.
            s.synced_changed
                .1
                .wait_for(&mut g, std::time::Duration::from_millis(100));
        }
    }

    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Whether the file holds the data set (false from turning the AOF on until its first
    /// rewrite succeeds).
    pub fn has_base(&self) -> bool {
        !self.status.needs_base.load(Ordering::SeqCst)
    }

    /// CONFIG SET appendonly yes: records are made from now on, and a rewrite of the data as
    /// it is gives the file its base (scheduled if one runs already: it began while the AOF
    /// was off, and will be discarded).
    /// False if it cannot be: no writer runs (an in-process harness).
    pub fn enable(&self, in_exec: bool) -> bool {
        let _g = self.switching.lock();
        if self.enabled() {
            return true;
        }
        if self.core.get().is_none() {
            log::warn!("cannot turn the AOF on: its writer does not run");
            return false;
        }
        self.status.needs_base.store(true, Ordering::SeqCst);
        // Before the rewrite begins: every write it does not see is then logged.
        self.enabled.store(true, Ordering::SeqCst);
        if in_exec {
            log::warn!(
                "AOF was enabled during a transaction. An AOF background was scheduled to start \
                 when possible."
            );
            self.status.rewrite_scheduled.store(true, Ordering::SeqCst);
        } else if !self.request_rewrite() {
            self.status.rewrite_scheduled.store(true, Ordering::SeqCst);
        }
        log::info!("AOF turned on: rewriting it from the data set");
        true
    }

    /// CONFIG SET appendonly no: no more records; what is pending is written and fsynced and
    /// the file closed before this returns. A rewrite running is discarded when it ends.
    pub fn disable(&self) {
        let _g = self.switching.lock();
        if !self.enabled() {
            return;
        }
        self.enabled.store(false, Ordering::SeqCst);
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.status.needs_base.store(false, Ordering::SeqCst);
        self.status.rewrite_scheduled.store(false, Ordering::SeqCst);
        let (done, r) = crossbeam_channel::bounded(1);
        self.send(Msg::Stop { epoch, done });
        // The writer lives as long as the process; it answers unless exiting.
        let _ = r.recv();
        self.rewrite.abort();
        log::info!("AOF turned off");
    }

    /// The AOF, or a multi-part AOF's manifest.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// `aof-disable-auto-gc`: turned off, the history files kept meanwhile go at once (as
    /// Redis's CONFIG SET does).
    pub fn set_keep_history(&self, keep: bool) {
        if self.status.keep_history.swap(keep, Ordering::SeqCst) && !keep {
            self.send(Msg::CollectHistory);
        }
    }

    /// DEBUG LOADAOF, before it loads: a multi-part AOF's manifest is read again from disk.
    pub fn reload_manifest(&self) -> std::io::Result<()> {
        match self.core.get() {
            Some(w) => w.lock().reload_manifest(),
            None => Ok(()),
        }
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.status.policy()
    }

    /// For CONFIG SET appendfsync: takes effect with the next record.
    pub fn set_policy(&self, p: FsyncPolicy) {
        self.status.set_policy(p)
    }

    /// The settings the AOF follows at run time, at start and after each CONFIG SET:
    /// `appendfsync`, `aof-timestamp-enabled` and `aof-disable-auto-gc`.
    pub fn apply_config(&self, config: &crate::config::Config) {
        let yes = |name| config.get(name).as_deref() == Some("yes");
        self.set_policy(config.appendfsync);
        self.status
            .timestamps
            .store(yes("aof-timestamp-enabled"), Ordering::Relaxed);
        self.set_keep_history(yes("aof-disable-auto-gc"));
    }

    /// INFO persistence's AOF fields, in Redis's order and spelling (Redis lists the sizes and
    /// buffers after its fork fields, and only with the AOF on).
    pub fn info_fields(&self) -> (InfoFields, InfoFields) {
        let s = &self.status;
        let ok = |failed: bool| if failed { "err" } else { "ok" }.to_string();
        let running = s.rewrite_in_progress.load(Ordering::Relaxed);
        let secs = |ms: u64| (ms / 1000).to_string();
        let last = s.last_rewrite_ms_plus1.load(Ordering::Relaxed);
        let current = if running {
            secs(now_ms().saturating_sub(s.rewrite_started_ms.load(Ordering::Relaxed)))
        } else {
            "-1".into()
        };
        let head = vec![
            ("aof_enabled", u8::from(self.enabled()).to_string()),
            ("aof_rewrite_in_progress", u8::from(running).to_string()),
            (
                "aof_rewrite_scheduled",
                u8::from(s.rewrite_scheduled.load(Ordering::Relaxed)).to_string(),
            ),
            (
                "aof_last_rewrite_time_sec",
                if last == 0 {
                    "-1".into()
                } else {
                    secs(last - 1)
                },
            ),
            ("aof_current_rewrite_time_sec", current),
            (
                "aof_last_bgrewrite_status",
                ok(s.last_rewrite_failed.load(Ordering::Relaxed)),
            ),
            (
                "aof_rewrites",
                s.rewrites.load(Ordering::Relaxed).to_string(),
            ),
            (
                "aof_rewrites_consecutive_failures",
                s.rewrite_failures_in_a_row
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
            ("aof_last_write_status", ok(s.error().is_some())),
            // No fork, so nothing copied on write, and no module forks.
            ("aof_last_cow_size", "0".into()),
            ("module_fork_in_progress", "0".into()),
            ("module_fork_last_cow_size", "0".into()),
        ];
        let tail = vec![
            (
                "aof_current_size",
                s.current_size.load(Ordering::Relaxed).to_string(),
            ),
            (
                "aof_base_size",
                s.base_size.load(Ordering::Relaxed).to_string(),
            ),
            ("aof_pending_rewrite", "0".into()),
            ("aof_buffer_length", "0".into()),
            ("aof_pending_bio_fsync", "0".into()),
            ("aof_delayed_fsync", "0".into()),
        ];
        (head, if self.enabled() { tail } else { Vec::new() })
    }

    pub fn write_error(&self) -> Option<String> {
        self.status.error()
    }

    /// Queues a record and returns what the reply must wait for. Called with the command's shard locks held (`locked`), which is what
    /// orders the file (see the module comment) and what tells whether a running rewrite must
    /// also get the record.
    pub fn append(&self, db: usize, data: Vec<u8>, locked: &Locked) -> Option<AofWait> {
        let (ack, rx) = if self.policy() == FsyncPolicy::Always {
            let (s, r) = crossbeam_channel::bounded(1);
            (Some(s), Some(r))
        } else {
            (None, None)
        };
        let tail = self.rewrite.needs_tail(locked.shard_ids());
        self.status.queued.fetch_add(1, Ordering::SeqCst);
        self.status
            .queued_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        // The writer lives as long as the process; a send can only fail during exit.
        let _ = self.tx.send(Msg::Record(Record {
            db,
            data,
            ack,
            tail,
        }));
        // A read-modify-write, not a load: a pump's own increment then reads from it, which
        // makes this send visible to that pump's drain (on any memory model, not only x86's).
        let ticket = self.status.pumps_started.fetch_add(0, Ordering::SeqCst);
        Some(match rx {
            Some(r) => {
                self.wake_writer();
                AofWait::Synced(ticket, r)
            }
            None => AofWait::Written(ticket),
        })
    }

    pub(crate) fn send(&self, msg: Msg) {
        let _ = self.tx.send(msg);
        self.wake_writer();
    }

    fn wake_writer(&self) {
        // Full means a wake-up is pending already.
        let _ = self.wake_tx.try_send(());
    }

    /// Blocks until everything sent so far is written and fsynced; false if that failed.
    pub fn sync(&self) -> bool {
        let (s, r) = crossbeam_channel::bounded(1);
        if self.tx.send(Msg::Sync(s)).is_ok() {
            self.wake_writer();
            return r.recv().unwrap_or(false);
        }
        false
    }

    /// A rewrite to start at the rewrite thread's next check (Redis's aof_rewrite_scheduled,
    /// as BGREWRITEAOF inside EXEC asks); false if one already runs.
    pub fn schedule_rewrite(&self) -> bool {
        if self.status.rewrite_in_progress.load(Ordering::SeqCst) {
            return false;
        }
        self.status.rewrite_scheduled.store(true, Ordering::SeqCst);
        true
    }

    /// Asks the rewrite thread for a rewrite; false if one is in progress already.
    pub fn request_rewrite(&self) -> bool {
        if self
            .status
            .rewrite_in_progress
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        self.status
            .rewrite_started_ms
            .store(now_ms(), Ordering::Relaxed);
        let _ = self.rewrite_tx.send(());
        true
    }

    /// The rewrite thread: runs requested rewrites, and every 100 ms checks whether the file
    /// has grown enough for an automatic one (`auto` gives percentage and min size).
    /// `base` gives what the new file starts with besides the keys, and their form.
    pub fn rewrite_loop(
        &self,
        store: &Store,
        auto: impl Fn() -> (u64, u64),
        base: impl Fn() -> rewrite::Base,
    ) {
        let mut last_run = std::time::Instant::now();
        loop {
            let requested = match self
                .rewrite_rx
                .recv_timeout(std::time::Duration::from_millis(100))
            {
                Ok(()) => true,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => false,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            };
            // A rewrite scheduled with the AOF off (BGREWRITEAOF inside EXEC) runs as a
            // requested one.
            let requested = requested
                || (!self.enabled()
                    && self.status.rewrite_scheduled.load(Ordering::SeqCst)
                    && self.take_scheduled());
            let epoch = self.epoch.load(Ordering::SeqCst);
            if !requested && self.enabled() && self.wants_base_or_scheduled(last_run) {
                if !self.take_scheduled() {
                    continue;
                }
                // Checked again after taking the rewrite: turned off meanwhile, the request is
                // void (and `epoch` above tells the writer if it is turned on again).
                if !self.enabled() {
                    self.status.rewrite_abandoned();
                    continue;
                }
            } else if !requested {
                if !self.enabled() {
                    continue;
                }
                let (percentage, min_size) = auto();
                // After a failure, wait a little before the automatic retry (as Redis does).
                let backoff = self.status.last_rewrite_failed.load(Ordering::Relaxed)
                    && last_run.elapsed() < std::time::Duration::from_secs(5);
                if backoff
                    || !self.wants_auto_rewrite(percentage, min_size)
                    || !self.request_rewrite()
                {
                    continue;
                }
                // Ours, taken by request_rewrite: consume the request it queued.
                let _ = self.rewrite_rx.try_recv();
                log::info!(
                    "Starting automatic rewriting of AOF on {}% growth",
                    percentage
                );
            }
            // Read after the request: a BGREWRITEAOF with the AOF off writes the file all the
            // same (Redis 7.0's rewriteAppendOnlyFileBackground does not look at aof_state).
            let began_off = !self.enabled();
            crate::util::children::background_job();
            self.rewrite.run(self, store, &base, epoch, began_off);
            last_run = std::time::Instant::now();
        }
    }

    /// Takes the rewrite a schedule (or a wanted base) asks for, as a request would; false if
    /// one runs already.
    fn take_scheduled(&self) -> bool {
        if !self.request_rewrite() {
            return false;
        }
        self.status.rewrite_scheduled.store(false, Ordering::SeqCst);
        // The request's own message: this loop runs the rewrite now.
        let _ = self.rewrite_rx.try_recv();
        true
    }

    /// A rewrite is scheduled, or the AOF was turned on and still has no file (retried a
    /// little after a failure, as the automatic one is).
    fn wants_base_or_scheduled(&self, last_run: std::time::Instant) -> bool {
        let s = &self.status;
        if s.rewrite_scheduled.load(Ordering::SeqCst) {
            return true;
        }
        s.needs_base.load(Ordering::SeqCst)
            && !(s.last_rewrite_failed.load(Ordering::Relaxed)
                && last_run.elapsed() < std::time::Duration::from_secs(5))
    }

    /// Redis's auto-aof-rewrite rule: the file is past `min_size` and has grown by
    /// `percentage` % since the last rewrite (or the load).
    pub fn wants_auto_rewrite(&self, percentage: u64, min_size: u64) -> bool {
        if percentage == 0 {
            return false;
        }
        let cur = self.status.current_size.load(Ordering::Relaxed);
        if cur <= min_size {
            return false;
        }
        let base = self.status.base_size.load(Ordering::Relaxed).max(1);
        let growth = (cur as u128 * 100 / base as u128).saturating_sub(100);
        growth >= percentage as u128
    }
}
