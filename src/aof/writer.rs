//! The AOF writer: drains every queued record, writes the batch with one call, and fsyncs as
//! the policy says.
//!
//! Whoever pumps the queue holds the writer's mutex, and a pump drains the queue to empty before
//! it writes. A worker pumps before it sends replies to a client whose commands were logged
//! (see `Aof::write_through`): any pump that starts after a record was queued writes it, so
//! once the worker holds the mutex its records are in the file. Like Redis, which writes its AOF buffer before
//! it replies, an acknowledged write is thus in the file (the OS's cache at least) and a killed
//! process loses nothing acknowledged under any policy; only a machine crash can, within the
//! policy's bounds. This costs no thread hand-off: the worker writes itself, and one write
//! serves every record queued meanwhile by any client. The writer thread fsyncs everysec,
//! retries after failures, and pumps what nobody else did.
//!
//! Under `always`, replies also wait for their record's fsync, and one fsync acknowledges every
//! record drained before it (group commit).
//!
//! A failed write or fsync keeps the batch buffered and sets the error that makes write commands
//! fail with MISCONF; every later pump (a worker's, or the thread's every 100 ms) retries. A
//! write that failed half-way is first cut back off the file, as Redis does, so the retry cannot
//! duplicate it. Under `always` the process exits instead, with Redis's message: the write is
//! already applied in memory and may have been read by others (see `Aof::wait_observed`), and
//! Redis's contract is that an acknowledged or observed write is on disk.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::Mutex;

use super::manifest::{Dir, Manifest};
use super::{error_text, AofStatus, Layout, Msg, Record};
use crate::config::FsyncPolicy;
use crate::resp::reply::encode_command;

/// Batch room kept between writes (Redis keeps an aof_buf under 4000 bytes).
const BUF_KEEP: usize = 16 * 1024;

/// Records for a running rewrite, in the order the main file gets them.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
    selected: Option<usize>,
}

fn add_record(buf: &mut Vec<u8>, selected: &mut Option<usize>, r: &Record) {
    if *selected != Some(r.db) {
        let db = r.db.to_string();
        encode_command(buf, &[b"SELECT", db.as_bytes()]);
        *selected = Some(r.db);
    }
    buf.extend_from_slice(&r.data);
}

pub struct Writer {
    /// None while the AOF is off, and while turning it on until the first rewrite gives it a
    /// base: records are then dropped from the batch (a rewrite's tail keeps those it needs).
    file: Option<File>,
    /// The file appended to: the AOF, or the multi-part AOF's last incr file (its manifest
    /// while there is none).
    path: PathBuf,
    /// Multi-part: the manifest as on disk, and the size of its parts other than `file`.
    parts: Option<Parts>,
    status: Arc<AofStatus>,
    /// The database the file's last SELECT chose (None: not known, so select before the next).
    selected: Option<usize>,
    buf: Vec<u8>,
    /// The file's length after the last complete write: what a failed write is cut back to.
    good_len: u64,
    unsynced: bool,
    last_sync: Instant,
    tail: Option<Tail>,
    /// The generation of the last rewrite finished (or failed).
    done_gen: u64,
    /// Records made under `always`, waiting for the fsync that covers them.
    durable_acks: Vec<Sender<()>>,
    syncs: Vec<Sender<bool>>,
    /// Records drained from the queue so far.
    drained: u64,
    /// `Aof::epoch` as of the last stop processed: a rewrite begun in an older one overlapped
    /// a time the AOF was off, whose writes it may have missed.
    epoch: u64,
    /// The second of the last `#TS:` annotation written (`aof-timestamp-enabled`).
    annotated_secs: u64,
}

/// A multi-part AOF's state.
struct Parts {
    dir: Dir,
    manifest: Manifest,
    /// Bytes in the base and the incr files before the one appended to (INFO's
    /// aof_current_size counts them all, as Redis's does).
    before: u64,
}

impl Parts {
    fn before(&self) -> u64 {
        let m = &self.manifest;
        let earlier = &m.incrs[..m.incrs.len().saturating_sub(1)];
        m.base.iter().chain(earlier).map(|p| self.dir.size(p)).sum()
    }
}

/// A bad manifest as the writer's open and reload report it.
fn bad_manifest(e: super::manifest::BadManifest) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, e)
}

impl Writer {
    /// `open`: append to the AOF (the AOF is on); else the writer starts off. A multi-part
    /// AOF appends to its last incr file, or to a new one it adds to the manifest, as Redis's
    /// `aofOpenIfNeededOnServerStart`.
    pub fn open(layout: &Layout, status: Arc<AofStatus>, open: bool) -> std::io::Result<Writer> {
        let append = |p: &Path| OpenOptions::new().create(true).append(true).open(p);
        let (file, path, parts) = match layout {
            Layout::Single(p) => (open.then(|| append(p)).transpose()?, p.clone(), None),
            Layout::MultiPart(dir) => {
                let mut manifest = match dir.read()? {
                    Some(m) => m.map_err(bad_manifest)?,
                    None => Manifest::default(),
                };
                let mut path = dir.manifest_path();
                let mut file = None;
                if open {
                    dir.create()?;
                    let (name, created) = manifest.last_incr(&dir.name);
                    path = dir.file(&name);
                    file = Some(append(&path)?);
                    if created {
                        dir.persist(&manifest)?;
                        log::info!("Creating AOF incr file {name} on server start");
                    } else {
                        log::info!("Opening AOF incr file {name} on server start");
                    }
                }
                let mut parts = Parts {
                    dir: dir.clone(),
                    manifest,
                    before: 0,
                };
                if file.is_some() {
                    parts.before = parts.before();
                }
                (file, path, Some(parts))
            }
        };
        let good_len = match &file {
            Some(f) => f.metadata()?.len(),
            None => 0,
        };
        let before = parts.as_ref().map_or(0, |p| p.before);
        status.current_size.store(before + good_len, Relaxed);
        // As Redis at start: the base alone (the single file is its own base).
        let base = match &parts {
            Some(p) if file.is_some() => p.manifest.base.as_ref().map_or(0, |b| p.dir.size(b)),
            _ => good_len,
        };
        status.base_size.store(base, Relaxed);
        Ok(Writer {
            file,
            path,
            parts,
            status,
            selected: None,
            buf: Vec::with_capacity(64 * 1024),
            good_len,
            unsynced: false,
            last_sync: Instant::now(),
            tail: None,
            done_gen: 0,
            durable_acks: Vec::new(),
            syncs: Vec::new(),
            drained: 0,
            epoch: 0,
            annotated_secs: 0,
        })
    }

    /// The writer thread: pumps every 100 ms (for everysec's fsync, for retries after a
    /// failure, and for records no client waits on, such as active expiry's DELs), and at once
    /// when woken: by a record under `always`, a SYNC or a rewrite's end. A client's own records
    /// do not wake it, since the client's worker pumps them itself before replying (see
    /// `Aof::write_through`): a wake-up per write would cost a context switch per write.
    pub fn run(writer: Arc<Mutex<Writer>>, rx: Receiver<Msg>, wake: Receiver<()>) {
        loop {
            let _ = wake.recv_timeout(Duration::from_millis(100));
            let (closed, due) = {
                let mut w = writer.lock();
                (w.pump(&rx), w.everysec_due())
            };
            // everysec's fsync runs without the mutex (on a second descriptor), so workers
            // keep writing meanwhile: a slow disk delays the fsync, not the replies (Redis
            // fsyncs in a background thread for the same reason).
            if let Some(f) = due {
                if let Err(e) = f.sync_data() {
                    writer.lock().fsync_failed(&e);
                }
            }
            if closed {
                return;
            }
        }
    }

    /// Under everysec, once a second with something unsynced: a descriptor to fsync, outside
    /// the mutex. What is written from now on counts as unsynced again.
    fn everysec_due(&mut self) -> Option<File> {
        if self.status.policy() != FsyncPolicy::EverySec
            || !self.unsynced
            || self.last_sync.elapsed() < Duration::from_secs(1)
        {
            return None;
        }
        let f = self.file.as_ref()?.try_clone().ok()?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.status.fsyncs.fetch_add(1, Relaxed);
        Some(f)
    }

    fn fsync_failed(&mut self, e: &std::io::Error) {
        self.unsynced = true;
        self.report(&Err(std::io::Error::new(e.kind(), error_text(e))));
    }

    /// Drains every queued message in order, writes them with one call, fsyncs if due, and
    /// acknowledges. Runs under the writer's mutex, so the file gets the queue's order
    /// whichever thread pumps. True once the queue is closed (the process is exiting).
    pub fn pump(&mut self, rx: &Receiver<Msg>) -> bool {
        let pump = self.status.pumps_started.fetch_add(1, SeqCst) + 1;
        let closed = loop {
            match rx.try_recv() {
                Ok(msg) => self.process(msg),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        // A record made under `always` waits for an fsync whatever the policy is now.
        let always = self.status.policy() == FsyncPolicy::Always;
        let want_sync = closed || always || !self.durable_acks.is_empty() || !self.syncs.is_empty();
        let ok = self.flush_and_sync(want_sync).is_ok();
        if ok && !self.unsynced {
            self.status.set_synced(self.drained);
        }
        if ok {
            for a in self.durable_acks.drain(..) {
                let _ = a.send(());
            }
        }
        for s in self.syncs.drain(..) {
            let _ = s.send(ok);
        }
        self.status.pumps_done.store(pump, SeqCst);
        closed
    }

    fn process(&mut self, msg: Msg) {
        match msg {
            Msg::Record(r) => {
                self.drained += 1;
                self.status
                    .queued_bytes
                    .fetch_sub(r.data.len() as u64, Relaxed);
                self.status.records.fetch_add(1, Relaxed);
                if self.status.timestamps.load(Relaxed) {
                    // As Redis's feedAppendOnlyFile: once per second that has writes.
                    let now = crate::util::clock::now_ms() / 1000;
                    if now > self.annotated_secs {
                        self.annotated_secs = now;
                        self.buf
                            .extend_from_slice(super::timestamp_annotation().as_bytes());
                    }
                }
                add_record(&mut self.buf, &mut self.selected, &r);
                self.status
                    .buf_bytes
                    .store(self.buf.capacity() as u64, Relaxed);
                // A record of a rewrite already finished is in the new file as it is.
                if r.tail > self.done_gen {
                    let t = self.tail.get_or_insert_with(Tail::default);
                    add_record(&mut t.buf, &mut t.selected, &r);
                }
                if let Some(a) = r.ack {
                    self.durable_acks.push(a);
                }
            }
            Msg::Sync(s) => self.syncs.push(s),
            Msg::RewriteDone {
                temp,
                gen,
                epoch,
                began_off,
                rdb,
            } => {
                self.done_gen = gen;
                // Turned on since an off rewrite began: the writes made before that to shards
                // it had dumped are in neither the dump nor the tail, so it cannot be the
                // base; the rewrite the switch scheduled makes one.
                let turned_on = began_off && self.status.needs_base.load(SeqCst);
                if epoch != self.epoch || turned_on {
                    // As Redis kills its rewrite child when the AOF is turned off: not a
                    // failure.
                    let _ = std::fs::remove_file(&temp);
                    self.tail = None;
                    log::info!("AOF rewrite begun before the AOF was turned off: discarded");
                    self.status.rewrite_abandoned();
                    return;
                }
                if began_off {
                    self.publish_off(&temp, rdb);
                    return;
                }
                // The old file stays complete until the rename replaces it.
                let _ = self.flush_and_sync(true);
                self.finish_rewrite(&temp, rdb);
            }
            Msg::Stop { epoch, done } => {
                let ok = self.flush_and_sync(true).is_ok();
                if !ok {
                    log::warn!(
                        "cannot write and fsync {} while turning the AOF off",
                        self.path.display()
                    );
                }
                self.file = None;
                self.buf.clear();
                self.selected = None;
                self.unsynced = false;
                self.epoch = epoch;
                // Writes are no longer refused for a file that is not written any more.
                self.status.set_error(None);
                self.status.current_size.store(0, Relaxed);
                self.status.base_size.store(0, Relaxed);
                let _ = done.send(ok);
            }
            Msg::CollectHistory => self.collect_history(),
            Msg::RewriteFailed { gen } => {
                self.done_gen = gen;
                self.tail = None;
                self.status.rewrite_ended(true);
            }
        }
    }

    /// Writes `buf` to the end of the file. On failure, bytes that made it are cut off again
    /// (or, if that fails too, dropped from `buf` so they are never written twice).
    fn write_buf(&mut self) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            // No file to write (see `file`).
            self.buf.clear();
            return Ok(());
        };
        let sleep = self.status.flush_sleep_us.load(Relaxed);
        if sleep > 0 {
            std::thread::sleep(Duration::from_micros(sleep));
        }
        let mut written = 0;
        let res = loop {
            if written >= self.buf.len() {
                break Ok(());
            }
            match file.write(&self.buf[written..]) {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = res {
            return Err(self.undo_partial(written, e));
        }
        self.good_len += written as u64;
        self.status.current_size.store(self.total_len(), Relaxed);
        // As Redis's aof_buf: a batch's room goes back once written, unless it is small, so
        // that a burst of writes (a hundred evicted keys' DELs) leaves no memory behind.
        if self.buf.capacity() > BUF_KEEP {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.status
            .buf_bytes
            .store(self.buf.capacity() as u64, Relaxed);
        self.unsynced = true;
        Ok(())
    }

    /// INFO's aof_current_size: every part's bytes.
    fn total_len(&self) -> u64 {
        self.parts.as_ref().map_or(0, |p| p.before) + self.good_len
    }

    fn undo_partial(&mut self, written: usize, e: std::io::Error) -> std::io::Error {
        if written == 0 {
            return e;
        }
        let cut = match &self.file {
            Some(f) => f.set_len(self.good_len),
            None => Ok(()),
        };
        match cut {
            Ok(()) => log::warn!(
                "AOF write to {} was short ({written} of {} bytes): cut back to {} bytes",
                self.path.display(),
                self.buf.len(),
                self.good_len
            ),
            Err(te) => {
                log::warn!(
                    "AOF write to {} was short and cannot be cut back ({te}): keeping the \
                     {written} bytes written",
                    self.path.display()
                );
                self.buf.drain(..written);
                self.good_len += written as u64;
                self.status.current_size.store(self.total_len(), Relaxed);
                self.unsynced = true;
            }
        }
        e
    }

    /// Writes the pending batch; fsyncs if asked and something is unsynced. On failure the
    /// batch stays buffered for the next attempt and the error refuses writes meanwhile.
    fn flush_and_sync(&mut self, sync: bool) -> std::io::Result<()> {
        let always = self.status.policy() == FsyncPolicy::Always;
        if !self.buf.is_empty() {
            if let Err(e) = self.write_buf() {
                if always {
                    log::warn!(
                        "Can't recover from AOF write error when the AOF fsync policy is \
                         'always'. Exiting..."
                    );
                    std::process::exit(1);
                }
                let res = Err(e);
                self.report(&res);
                return res;
            }
        }
        let mut res = Ok(());
        if sync && self.unsynced {
            self.status.fsyncs.fetch_add(1, Relaxed);
            let synced = match &self.file {
                Some(f) => f.sync_data(),
                None => Ok(()),
            };
            match synced {
                Ok(()) => {
                    self.unsynced = false;
                    self.last_sync = Instant::now();
                }
                Err(e) if always => {
                    log::warn!(
                        "Can't persist AOF for fsync error when the AOF fsync policy is \
                         'always': {}. Exiting...",
                        error_text(&e)
                    );
                    std::process::exit(1);
                }
                Err(e) => res = Err(e),
            }
        }
        self.report(&res);
        res
    }

    fn report(&self, res: &std::io::Result<()>) {
        let had = self.status.error().is_some();
        match res {
            Ok(()) => {
                if had {
                    log::warn!(
                        "AOF write error looks solved: {} is written again",
                        self.path.display()
                    );
                    self.status.set_error(None);
                }
            }
            Err(e) => {
                if !had {
                    log::error!(
                        "cannot write the AOF {}: {e}; write commands are refused (MISCONF) \
                         until it works again",
                        self.path.display()
                    );
                }
                self.status.set_error(Some(error_text(e)));
            }
        }
    }

    /// Completes a rewrite made with the AOF off: the dump is the whole data (no record was
    /// made meanwhile), published as the AOF (or a multi-part AOF's base, with no incr file
    /// after it, as Redis leaves it) but not opened, since nothing is appended. The sizes
    /// stay 0, as Redis updates aof_current_size only with the AOF on.
    fn publish_off(&mut self, temp: &Path, rdb: bool) {
        let res = match &mut self.parts {
            None => crate::rdb::file::publish(temp, &self.path).map(|()| self.path.clone()),
            Some(p) => p.publish(temp, rdb, None).map(|(path, _)| path),
        };
        match &res {
            Ok(path) => log::info!(
                "Background AOF rewrite finished successfully: {} written (the AOF is off)",
                path.display()
            ),
            Err(e) => {
                let _ = std::fs::remove_file(temp);
                log::warn!("Background AOF rewrite failed: {e}");
            }
        }
        self.collect_history();
        self.status.rewrite_ended(res.is_err());
    }

    /// Completes a rewrite: what arrived meanwhile (the tail) is appended to the dump, which
    /// is renamed over the AOF; or, in a multi-part AOF, the dump becomes the new base and the
    /// tail the start of a new incr file. Until the rename (of the manifest) the old files
    /// are whole; after it the new ones are.
    fn finish_rewrite(&mut self, temp: &Path, rdb: bool) {
        let tail = self.tail.take().unwrap_or_default();
        let res = match &mut self.parts {
            None => self
                .publish_single(temp, &tail.buf)
                .map(|f| (self.path.clone(), f)),
            Some(p) => {
                self.status.fsyncs.fetch_add(1, Relaxed);
                p.publish(temp, rdb, Some(&tail.buf))
                    .map(|(path, f)| (path, f.expect("an incr file with a tail")))
            }
        };
        let res_failed = res.is_err();
        match res {
            Ok((path, f)) => {
                // Every record still buffered is in the new file already (in the dump, or in
                // the tail if its shard had been dumped).
                self.good_len = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(f);
                self.path = path;
                if let Some(p) = &mut self.parts {
                    p.before = p.before();
                }
                self.buf.clear();
                self.selected = tail.selected;
                self.unsynced = false;
                self.status.current_size.store(self.total_len(), Relaxed);
                self.status.base_size.store(self.total_len(), Relaxed);
                self.status.needs_base.store(false, SeqCst);
                self.report(&Ok(()));
                log::info!(
                    "Background AOF rewrite finished successfully: {} is now {} bytes ({} \
                     bytes of writes made during the rewrite appended){}",
                    self.path.display(),
                    self.good_len,
                    tail.buf.len(),
                    match &self.parts {
                        Some(_) => format!(", {} bytes in all parts", self.total_len()),
                        None => String::new(),
                    }
                );
                self.collect_history();
            }
            Err(e) => {
                let _ = std::fs::remove_file(temp);
                log::warn!(
                    "Background AOF rewrite failed: {e}; {} is kept as it was",
                    self.path.display()
                );
            }
        }
        self.status.rewrite_ended(res_failed);
    }

    /// The single file's rewrite: the tail appended to the dump, fsynced, renamed over the
    /// AOF; the temp file's descriptor then is the AOF's, to keep appending to.
    fn publish_single(&self, temp: &Path, tail: &[u8]) -> std::io::Result<File> {
        let mut f = OpenOptions::new().append(true).open(temp)?;
        f.write_all(tail)?;
        self.status.fsyncs.fetch_add(1, Relaxed);
        f.sync_data()?;
        std::fs::rename(temp, &self.path)?;
        // Makes the rename itself durable. Past the rename there is no going back, so a
        // failure here is only reported.
        let dir = crate::rdb::file::dir_of(&self.path);
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            log::warn!("cannot fsync the directory {}: {e}", dir.display());
        }
        Ok(f)
    }

    /// A multi-part AOF's history files are deleted, unless `aof-disable-auto-gc` keeps
    /// them.
    fn collect_history(&mut self) {
        if self.status.keep_history.load(Relaxed) {
            return;
        }
        if let Some(p) = &mut self.parts {
            if let Err(e) = p.dir.delete_history(&mut p.manifest) {
                log::warn!("cannot write the AOF manifest without its history files: {e}");
            }
        }
    }

    /// DEBUG LOADAOF: the manifest is read again from disk, as Redis reads it then (so the
    /// seqs new parts get are counted from what it names).
    pub fn reload_manifest(&mut self) -> std::io::Result<()> {
        if let Some(p) = &mut self.parts {
            if let Some(m) = p.dir.read()? {
                p.manifest = m.map_err(bad_manifest)?;
            }
        }
        self.collect_history();
        Ok(())
    }
}

impl Parts {
    /// Makes `temp` the new base and, with the AOF on, `tail` the start of a new incr file
    /// (returned open for appending); every earlier incr file becomes history. The manifest's
    /// rename is the switch: a crash before it leaves the old parts named, after it the new.
    fn publish(
        &mut self,
        temp: &Path,
        rdb: bool,
        tail: Option<&[u8]>,
    ) -> std::io::Result<(PathBuf, Option<File>)> {
        let mut m = self.manifest.clone();
        let base = self.dir.file(&m.new_base(&self.dir.name, rdb));
        let incr = tail.map(|_| self.dir.file(&m.new_incr(&self.dir.name)));
        m.incrs_to_history(incr.is_some());
        let res = (|| {
            let file = match (&incr, tail) {
                (Some(path), Some(tail)) => {
                    let mut f = File::create(path)?;
                    f.write_all(tail)?;
                    f.sync_data()?;
                    Some(OpenOptions::new().append(true).open(path)?)
                }
                _ => None,
            };
            std::fs::rename(temp, &base)?;
            self.dir.persist(&m)?;
            Ok(file)
        })();
        match res {
            Ok(file) => {
                log::info!(
                    "AOF manifest {} now names base {}{}",
                    self.dir.manifest_path().display(),
                    base.display(),
                    match &incr {
                        Some(i) => format!(" and incr file {}", i.display()),
                        None => String::new(),
                    }
                );
                self.manifest = m;
                Ok((incr.unwrap_or(base), file))
            }
            Err(e) => {
                // Not named by the manifest on disk: not data.
                for p in incr.iter().chain([&base]) {
                    let _ = std::fs::remove_file(p);
                }
                Err(e)
            }
        }
    }
}
