//! Counters INFO reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

#[derive(Default)]
pub struct Stats {
    pub total_commands: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub connected_clients: AtomicU64,
    pub expired_keys: AtomicU64,
    pub dirty: AtomicU64,
    pub error_replies: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// Error replies by their code (`ERR`, `WRONGTYPE`), for INFO errorstats. Only errors
    /// take the lock.
    pub errors_by_code: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn commands_processed(&self) {
        self.total_commands.fetch_add(1, Relaxed);
    }

    pub fn expired_keys(&self, n: u64) {
        self.expired_keys.fetch_add(n, Relaxed);
    }

    /// Counts an error reply; `msg` is its text, code first (`ERR ...`).
    pub fn error_reply(&self, msg: &str) {
        self.error_replies.fetch_add(1, Relaxed);
        let code = msg.split(' ').next().unwrap_or("ERR");
        let mut m = self.errors_by_code.lock();
        // Redis keeps at most 128 codes, so that odd client-made codes cannot grow it.
        if m.len() < 128 || m.contains_key(code) {
            *m.entry(code.to_string()).or_insert(0) += 1;
        }
    }

    /// Zeroes what CONFIG RESETSTAT resets.
    pub fn reset(&self) {
        for c in [
            &self.total_commands,
            &self.total_connections,
            &self.rejected_connections,
            &self.expired_keys,
            &self.error_replies,
            &self.net_input_bytes,
            &self.net_output_bytes,
        ] {
            c.store(0, Relaxed);
        }
        self.errors_by_code.lock().clear();
    }

    pub fn dirty(&self, n: u64) {
        self.dirty.fetch_add(n, Relaxed);
    }
}
