//! The AOF writer thread: drains every queued record, writes the batch with one call, and fsyncs
//! as the policy says. Under `always`, one fsync acknowledges the whole batch (group commit).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::{Msg, Record};
use crate::config::FsyncPolicy;
use crate::resp::reply::encode_command;

pub struct Writer {
    file: File,
    path: PathBuf,
    policy: FsyncPolicy,
    error: Arc<Mutex<Option<String>>>,
    /// The database the file's last SELECT chose (None: not known, so select before the next).
    selected: Option<usize>,
    buf: Vec<u8>,
    unsynced: bool,
    last_sync: Instant,
}

impl Writer {
    pub fn open(
        path: PathBuf,
        policy: FsyncPolicy,
        error: Arc<Mutex<Option<String>>>,
    ) -> std::io::Result<Writer> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Writer {
            file,
            path,
            policy,
            error,
            selected: None,
            buf: Vec::with_capacity(64 * 1024),
            unsynced: false,
            last_sync: Instant::now(),
        })
    }

    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut acks: Vec<Sender<()>> = Vec::new();
        let mut syncs: Vec<Sender<()>> = Vec::new();
        loop {
            let first = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.flush_and_sync(true);
                    return;
                }
            };
            let mut next = first;
            while let Some(msg) = next {
                match msg {
                    Msg::Record(r) => self.add(r, &mut acks),
                    Msg::Sync(s) => syncs.push(s),
                }
                next = rx.try_recv().ok();
            }
            let want_sync = match self.policy {
                FsyncPolicy::Always => !acks.is_empty() || !syncs.is_empty(),
                FsyncPolicy::EverySec => {
                    !syncs.is_empty() || self.last_sync.elapsed() >= Duration::from_secs(1)
                }
                FsyncPolicy::No => !syncs.is_empty(),
            };
            if self.flush_and_sync(want_sync).is_ok() {
                for a in acks.drain(..) {
                    let _ = a.send(());
                }
            }
            for s in syncs.drain(..) {
                let _ = s.send(());
            }
        }
    }

    fn add(&mut self, r: Record, acks: &mut Vec<Sender<()>>) {
        if self.selected != Some(r.db) {
            let db = r.db.to_string();
            encode_command(&mut self.buf, &[b"SELECT", db.as_bytes()]);
            self.selected = Some(r.db);
        }
        self.buf.extend_from_slice(&r.data);
        if let Some(a) = r.ack {
            acks.push(a);
        }
    }

    /// Writes the pending batch; fsyncs if asked and something is unsynced. On failure the
    /// batch stays buffered for the next attempt and the error refuses writes meanwhile.
    fn flush_and_sync(&mut self, sync: bool) -> std::io::Result<()> {
        let res = (|| -> std::io::Result<()> {
            if !self.buf.is_empty() {
                self.file.write_all(&self.buf)?;
                self.buf.clear();
                self.unsynced = true;
            }
            if sync && self.unsynced {
                self.file.sync_data()?;
                self.unsynced = false;
                self.last_sync = Instant::now();
            }
            Ok(())
        })();
        let mut err = self.error.lock();
        match &res {
            Ok(()) => {
                if err.take().is_some() {
                    log::warn!("AOF writes to {} succeed again", self.path.display());
                }
            }
            Err(e) => {
                if err.is_none() {
                    log::error!(
                        "cannot write the AOF {}: {e}; refusing writes until it works",
                        self.path.display()
                    );
                }
                *err = Some(e.to_string());
            }
        }
        res
    }
}
