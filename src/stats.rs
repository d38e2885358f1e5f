//! Counters INFO reports.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use parking_lot::Mutex;

/// A counter every worker bumps and INFO reads now and then: split into cache-line stripes, a
/// thread adding to its own, so that workers do not pass one cache line back and forth on
/// every command.
#[derive(Default)]
pub struct Counter {
    stripes: [Stripe; STRIPES],
}

const STRIPES: usize = 16;

#[derive(Default)]
#[repr(align(64))]
struct Stripe(AtomicU64);

/// Threads take stripes in turn. (A const thread-local with a sentinel: a lazily
/// initialized one checks its state on every access.)
fn my_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| match s.get() {
        usize::MAX => {
            let mine = NEXT.fetch_add(1, Relaxed) % STRIPES;
            s.set(mine);
            mine
        }
        mine => mine,
    })
}

impl Counter {
    pub fn add(&self, n: u64) {
        self.stripes[my_stripe()].0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.stripes
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Relaxed)))
    }

    pub fn reset(&self) {
        for s in &self.stripes {
            s.0.store(0, Relaxed);
        }
    }
}

#[derive(Default)]
pub struct Stats {
    pub total_commands: Counter,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub connected_clients: AtomicU64,
    pub expired_keys: AtomicU64,
    pub dirty: Counter,
    pub error_replies: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// Error replies by their code (`ERR`, `WRONGTYPE`), for INFO errorstats. Only errors
    /// take the lock.
    pub errors_by_code: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn commands_processed(&self) {
        self.total_commands.add(1);
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
        self.total_commands.reset();
        for c in [
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
        self.dirty.add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_sums_every_thread() {
        let c = Counter::default();
        std::thread::scope(|s| {
            for _ in 0..20 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.add(1);
                    }
                });
            }
        });
        c.add(5);
        assert_eq!(c.get(), 20_005);
        c.reset();
        assert_eq!(c.get(), 0);
    }
}
