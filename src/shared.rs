//! Everything the worker threads share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::Receiver;
use parking_lot::RwLock;

use crate::aof::Aof;
use crate::commands::CommandError;
use crate::config::Config;
use crate::stats::Stats;
use crate::store::Store;
use crate::watch::Watches;

pub struct Shared {
    pub config: RwLock<Config>,
    pub store: Store,
    pub aof: Option<Aof>,
    pub stats: Stats,
    pub watches: Watches,
    pub started: Instant,
    loading: AtomicBool,
}

impl Shared {
    pub fn new(config: Config, aof: Option<Aof>) -> Self {
        Shared {
            store: Store::new(config.databases),
            config: RwLock::new(config),
            aof,
            stats: Stats::default(),
            watches: Watches::default(),
            started: Instant::now(),
            loading: AtomicBool::new(false),
        }
    }

    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Relaxed)
    }

    pub fn set_loading(&self, on: bool) {
        self.loading.store(on, Ordering::SeqCst);
    }

    /// Why write commands are refused right now, if they are (the AOF cannot be written).
    pub fn write_refusal(&self) -> Option<CommandError> {
        self.aof
            .as_ref()?
            .write_error()
            .map(|e| CommandError::Coded(format!("MISCONF Errors writing to the AOF file: {e}")))
    }

    /// Hands a write's AOF record to the writer thread. Called with the command's locks held.
    /// Under `appendfsync always` returns what to wait on before replying.
    pub fn propagate(&self, db: usize, data: Vec<u8>) -> Option<Receiver<()>> {
        self.aof.as_ref()?.append(db, data)
    }
}

impl Shared {
    /// Stops the process cleanly: waits for every command in flight (by taking every shard's
    /// lock), writes and fsyncs the AOF, and exits 0.
    pub fn shutdown(&self) -> ! {
        let slots = self.store.all_slots().collect();
        let _all = self.store.lock(slots, true);
        if let Some(aof) = &self.aof {
            aof.sync();
        }
        log::warn!("rudis is now ready to exit, bye bye...");
        std::process::exit(0)
    }
}
