//! Counters INFO reports.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use parking_lot::Mutex;

/// A counter every worker bumps and INFO reads now and then. Each of the first `SLOTS`
/// threads that count has a cache line of its own, which only it writes: a plain load and
/// store, no locked read-modify-write and no line passed between cores on every command.
/// Threads past those share one more line, atomically.
pub struct Counter {
    own: [Slot; SLOTS],
    shared: Slot,
    /// The total at the last reset: slots only grow, so that a reset cannot race with an
    /// owner's load and store.
    base: AtomicU64,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            own: std::array::from_fn(|_| Slot::default()),
            shared: Slot::default(),
            base: AtomicU64::new(0),
        }
    }
}

/// Enough for every worker of a typical server; more threads still count, via `shared`.
const SLOTS: usize = 64;

#[derive(Default)]
#[repr(align(64))]
struct Slot(AtomicU64);

/// This thread's slot number: threads take numbers in turn, never given back. (A const
/// thread-local with a sentinel: a lazily initialized one checks its state on every access.)
fn my_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|s| match s.get() {
        usize::MAX => {
            let mine = NEXT.fetch_add(1, Relaxed);
            s.set(mine);
            mine
        }
        mine => mine,
    })
}

impl Counter {
    pub fn add(&self, n: u64) {
        match self.own.get(my_slot()) {
            // Only this thread writes here.
            Some(slot) => slot.0.store(slot.0.load(Relaxed).wrapping_add(n), Relaxed),
            None => {
                self.shared.0.fetch_add(n, Relaxed);
            }
        }
    }

    fn total(&self) -> u64 {
        self.own.iter().fold(self.shared.0.load(Relaxed), |sum, s| {
            sum.wrapping_add(s.0.load(Relaxed))
        })
    }

    pub fn get(&self) -> u64 {
        self.total().wrapping_sub(self.base.load(Relaxed))
    }

    pub fn reset(&self) {
        self.base.store(self.total(), Relaxed);
    }
}

#[derive(Default)]
pub struct Stats {
    pub total_commands: Counter,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub connected_clients: AtomicU64,
    pub expired_keys: AtomicU64,
    /// Hash fields removed past their deadline (Redis 7.4's INFO field).
    pub expired_subkeys: AtomicU64,
    /// Keys removed to stay under `maxmemory`.
    pub evicted_keys: AtomicU64,
    pub dirty: Counter,
    pub error_replies: AtomicU64,
    /// Errors a replica's commands from its master ended in (INFO's
    /// unexpected_error_replies): the master applied them, the replica did not.
    pub unexpected_error_replies: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// The replication stream's bytes: read from this server's master, written to its
    /// replicas.
    pub net_repl_input_bytes: AtomicU64,
    pub net_repl_output_bytes: AtomicU64,
    /// Replicas served a full sync, a partial one, or refused a partial one.
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// Error replies by their code (`ERR`, `WRONGTYPE`), for INFO errorstats. Only errors
    /// take the lock.
    pub errors_by_code: Mutex<BTreeMap<String, u64>>,
    /// Read-only commands' key lookups that found a live key, and those that did not (Redis's
    /// lookupKeyRead counts; writes' lookups do not).
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    /// Reads from clients' sockets, and writes to them.
    pub reads_processed: Counter,
    pub writes_processed: Counter,
    instantaneous: Mutex<Instantaneous>,
}

/// The rates INFO's `instantaneous_*` fields show, as Redis's trackInstantaneousMetric: each
/// sampled every 100 ms (the pool's cron) over the time since the last sample, and reported as
/// the mean of the last 16 samples.
#[derive(Default)]
struct Instantaneous {
    last: Option<(std::time::Instant, [u64; METRICS])>,
    samples: [[f64; SAMPLES]; METRICS],
    next: usize,
}

const SAMPLES: usize = 16;
const METRICS: usize = 5;

/// One of the sampled rates.
#[derive(Clone, Copy)]
pub enum Rate {
    Commands = 0,
    NetInput,
    NetOutput,
    ReplInput,
    ReplOutput,
}

impl Stats {
    pub fn commands_processed(&self) {
        self.total_commands.add(1);
    }

    pub fn expired_keys(&self, n: u64) {
        self.expired_keys.fetch_add(n, Relaxed);
    }

    pub fn expired_subkeys(&self, n: u64) {
        self.expired_subkeys.fetch_add(n, Relaxed);
    }

    /// Counts an error reply; `msg` is its text, code first (`ERR ...`).
    pub fn error_reply(&self, msg: &str) {
        self.error_replies.fetch_add(1, Relaxed);
        // As Redis's afterErrorReply: the code is the first word if a space ends it within
        // the reply's first 32 bytes (its '-' one of them), else ERR (a script's
        // `{err='oops'}`).
        let code = match msg.bytes().take(31).position(|b| b == b' ') {
            Some(i) => &msg[..i],
            None => "ERR",
        };
        let mut m = self.errors_by_code.lock();
        // Redis keeps at most 128 codes, so that odd client-made codes cannot grow it.
        if m.len() < 128 || m.contains_key(code) {
            *m.entry(code.to_string()).or_insert(0) += 1;
        }
    }

    /// Takes the `instantaneous_*` samples (every 100 ms).
    pub fn sample_rates(&self) {
        let now = std::time::Instant::now();
        let values = [
            self.total_commands.get(),
            self.net_input_bytes.load(Relaxed),
            self.net_output_bytes.load(Relaxed),
            self.net_repl_input_bytes.load(Relaxed),
            self.net_repl_output_bytes.load(Relaxed),
        ];
        let mut inst = self.instantaneous.lock();
        if let Some((at, before)) = inst.last {
            let ms = now.duration_since(at).as_millis().max(1) as f64;
            let slot = inst.next;
            for (m, (v, b)) in values.iter().zip(before).enumerate() {
                inst.samples[m][slot] = v.saturating_sub(b) as f64 * 1000.0 / ms;
            }
            inst.next = (slot + 1) % SAMPLES;
        }
        inst.last = Some((now, values));
    }

    /// A rate per second, the mean of its last samples.
    pub fn rate(&self, r: Rate) -> f64 {
        let inst = self.instantaneous.lock();
        inst.samples[r as usize].iter().sum::<f64>() / SAMPLES as f64
    }

    /// Zeroes what CONFIG RESETSTAT resets.
    pub fn reset(&self) {
        self.total_commands.reset();
        self.keyspace_hits.reset();
        self.keyspace_misses.reset();
        self.reads_processed.reset();
        self.writes_processed.reset();
        for c in [
            &self.total_connections,
            &self.rejected_connections,
            &self.expired_keys,
            &self.expired_subkeys,
            &self.evicted_keys,
            &self.error_replies,
            &self.unexpected_error_replies,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.net_repl_input_bytes,
            &self.net_repl_output_bytes,
            &self.sync_full,
            &self.sync_partial_ok,
            &self.sync_partial_err,
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
        // More threads than slots: some share the atomic one.
        std::thread::scope(|s| {
            for _ in 0..SLOTS + 20 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.add(1);
                    }
                });
            }
        });
        c.add(5);
        assert_eq!(c.get(), (SLOTS as u64 + 20) * 1000 + 5);
        c.reset();
        assert_eq!(c.get(), 0);
        c.add(2);
        assert_eq!(c.get(), 2);
    }
}
