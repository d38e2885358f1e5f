//! The append-only file: a writer thread fed by a channel, and the loader that replays the file
//! at start-up.
//!
//! Order: a command's record enters the channel while the command still holds the locks of every
//! shard it touched (see `commands::Ctx::finish`). Two commands that touch a common key are
//! therefore serialized by that shard's lock, and the one that changed the store first also sent
//! its record first; the channel is FIFO and has one consumer, so the file has the store's order
//! for every key.

pub mod loader;
pub mod writer;

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::config::FsyncPolicy;

/// One command's effect, as RESP text, to be applied in database `db`. A record that selects
/// other databases inside its text must select `db` again at its end.
pub struct Record {
    pub db: usize,
    pub data: Vec<u8>,
    /// Under `always`: signalled once the record is on disk.
    pub ack: Option<Sender<()>>,
}

pub enum Msg {
    Record(Record),
    /// Write and fsync everything before this message, then signal.
    Sync(Sender<()>),
}

/// The handle workers use.
pub struct Aof {
    tx: Sender<Msg>,
    policy: FsyncPolicy,
    /// The last write or fsync error, while it lasts.
    error: std::sync::Arc<Mutex<Option<String>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Aof {
    /// Opens (creating if needed) the file for appending and starts the writer thread.
    pub fn start(path: PathBuf, policy: FsyncPolicy) -> std::io::Result<Aof> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let error = std::sync::Arc::new(Mutex::new(None));
        let w = writer::Writer::open(path, policy, error.clone())?;
        let handle = std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || w.run(rx))?;
        Ok(Aof {
            tx,
            policy,
            error,
            writer: Mutex::new(Some(handle)),
        })
    }

    pub fn write_error(&self) -> Option<String> {
        self.error.lock().clone()
    }

    pub fn append(&self, db: usize, data: Vec<u8>) -> Option<Receiver<()>> {
        let (ack, wait) = if self.policy == FsyncPolicy::Always {
            let (s, r) = crossbeam_channel::bounded(1);
            (Some(s), Some(r))
        } else {
            (None, None)
        };
        // The writer lives as long as the process; a send can only fail during exit.
        let _ = self.tx.send(Msg::Record(Record { db, data, ack }));
        wait
    }

    /// Blocks until everything sent so far is written and fsynced.
    pub fn sync(&self) {
        let (s, r) = crossbeam_channel::bounded(1);
        if self.tx.send(Msg::Sync(s)).is_ok() {
            let _ = r.recv();
        }
    }

    /// Joins the writer if it has stopped (used by tests of the lifecycle).
    pub fn take_writer(&self) -> Option<JoinHandle<()>> {
        self.writer.lock().take()
    }
}
