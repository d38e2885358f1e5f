//! Counters INFO reports.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
}

impl Stats {
    pub fn commands_processed(&self) {
        self.total_commands.fetch_add(1, Relaxed);
    }

    pub fn expired_keys(&self, n: u64) {
        self.expired_keys.fetch_add(n, Relaxed);
    }

    pub fn error_reply(&self) {
        self.error_replies.fetch_add(1, Relaxed);
    }

    pub fn dirty(&self, n: u64) {
        self.dirty.fetch_add(n, Relaxed);
    }
}
