//! Per-command statistics (INFO commandstats, latencystats, LATENCY HISTOGRAM): calls,
//! microseconds, rejected and failed calls, and a latency histogram per command.
//!
//! Nothing here is shared between threads on the path of a command: each thread counts in a
//! table of its own (plain loads and stores of atomics only it writes), and a reader sums the
//! tables of every thread. A reset (CONFIG RESETSTAT) bumps an epoch; a thread seeing a new
//! epoch zeroes its own table before it counts, and readers skip tables of an old epoch.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::commands::CommandSpec;

/// Every command and subcommand, each with its place in the per-thread tables: found by the
/// spec's address, hashed once per command.
struct Index {
    specs: Vec<&'static CommandSpec>,
    slots: Box<[u32]>,
    shift: u32,
}

const EMPTY: u32 = u32::MAX;

fn addr_hash(spec: &CommandSpec, shift: u32) -> usize {
    let a = spec as *const CommandSpec as u64;
    (a.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut specs: Vec<&'static CommandSpec> = Vec::new();
        for c in crate::commands::all() {
            specs.push(c);
            specs.extend(c.subcommands.iter());
        }
        let size = (specs.len() * 4).next_power_of_two();
        let shift = 64 - size.trailing_zeros();
        let mut slots = vec![EMPTY; size].into_boxed_slice();
        for (i, s) in specs.iter().enumerate() {
            let mut h = addr_hash(s, shift);
            while slots[h] != EMPTY {
                h = (h + 1) & (size - 1);
            }
            slots[h] = i as u32;
        }
        Index {
            specs,
            slots,
            shift,
        }
    })
}

impl Index {
    fn find(&self, spec: &CommandSpec) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut h = addr_hash(spec, self.shift);
        loop {
            match self.slots[h] {
                EMPTY => return None,
                i if std::ptr::eq(self.specs[i as usize], spec) => return Some(i as usize),
                _ => h = (h + 1) & mask,
            }
        }
    }
}

/// An HDR histogram as Redis's (hdr_init(1, 1e9 ns, 2 significant figures)): 256 sub-buckets,
/// each bucket twice as wide as the one before, so the percentiles Redis prints come out the
/// same from the same durations.
pub struct Hist {
    counts: Box<[AtomicU64]>,
}

const SUB_HALF_MAG: u32 = 7;
const SUB_MASK: u64 = 255;
pub const HIST_MIN: u64 = 1;
pub const HIST_MAX: u64 = 1_000_000_000;
const HIST_LEN: usize = (bucket_of(HIST_MAX) as usize + 2) << SUB_HALF_MAG;

const fn bucket_of(v: u64) -> u32 {
    64 - (v | SUB_MASK).leading_zeros() - (SUB_HALF_MAG + 1)
}

fn counts_index(v: u64) -> usize {
    let b = bucket_of(v);
    let sub = (v >> b) as usize;
    (((b + 1) as usize) << SUB_HALF_MAG) + sub - (1 << SUB_HALF_MAG)
}

/// The lowest value of the counts slot `i`, and its width.
fn slot_range(i: usize) -> (u64, u64) {
    let half = 1usize << SUB_HALF_MAG;
    let mut b = (i >> SUB_HALF_MAG) as i64 - 1;
    let mut sub = (i & (half - 1)) + half;
    if b < 0 {
        sub -= half;
        b = 0;
    }
    let low = (sub as u64) << b;
    (low, 1u64 << b)
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: (0..HIST_LEN).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Hist {
    /// Shared by the threads (see `hist_of`): an atomic add.
    fn record(&self, ns: u64) {
        self.counts[counts_index(ns.clamp(HIST_MIN, HIST_MAX))].fetch_add(1, Relaxed);
    }

    fn clear(&self) {
        self.counts.iter().for_each(|c| c.store(0, Relaxed));
    }
}

/// A histogram's counts, copied out for a reply.
#[derive(Clone)]
pub struct Merged {
    counts: Vec<u64>,
    pub total: u64,
}

impl Merged {
    fn new() -> Self {
        Merged {
            counts: vec![0; HIST_LEN],
            total: 0,
        }
    }

    fn add(&mut self, h: &Hist) {
        for (m, c) in self.counts.iter_mut().zip(h.counts.iter()) {
            let c = c.load(Relaxed);
            *m += c;
            self.total += c;
        }
    }

    /// hdr_value_at_percentile: the highest value equivalent to the one at `p` percent.
    pub fn value_at(&self, p: f64) -> u64 {
        let p = p.min(100.0);
        let want = (((p / 100.0) * self.total as f64) + 0.5) as u64;
        let want = want.max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                let (low, width) = slot_range(i);
                return low + width - 1;
            }
        }
        0
    }

    /// LATENCY HISTOGRAM's buckets, as Redis's walk with hdr_iter_log_init(1024 ns, 2)
    /// reports them: at each power of two from 1024 ns, the top of its bucket in
    /// microseconds and the count of durations up to there, where that count grew.
    pub fn log_buckets(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let (mut level, mut cum, mut prev, mut i) = (1024u64, 0u64, 0u64, 0usize);
        while cum < self.total {
            let (low, width) = slot_range(counts_index(level));
            let top = low + width - 1;
            while i < self.counts.len() && slot_range(i).0 <= top {
                cum += self.counts[i];
                i += 1;
            }
            if cum > prev {
                out.push((top / 1000, cum));
            }
            prev = cum;
            level *= 2;
        }
        out
    }
}

#[derive(Default)]
struct Slot {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

/// A command's latency histogram, made on its first call, one per command for every thread
/// (as Redis's): 24 KB each, which per thread would make used_memory jump by that much
/// whenever a client's command first ran on another worker.
fn hist_of(i: usize) -> &'static OnceLock<Hist> {
    static HISTS: OnceLock<Box<[OnceLock<Hist>]>> = OnceLock::new();
    &HISTS.get_or_init(|| (0..index().specs.len()).map(|_| OnceLock::new()).collect())[i]
}

fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed).wrapping_add(n), Relaxed);
}

struct ThreadTable {
    epoch: AtomicU64,
    slots: Box<[Slot]>,
}

static EPOCH: AtomicU64 = AtomicU64::new(0);
/// Every thread's table, for readers. A table lives as long as the process (one per thread
/// that ever ran a command), so the thread's own handle to it is a plain reference.
static TABLES: Mutex<Vec<&'static ThreadTable>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: Cell<Option<&'static ThreadTable>> = const { Cell::new(None) };
}

/// Makes this thread's table now (a worker, as it starts): otherwise the first command each
/// worker runs would allocate it, and a client moved to another worker would see
/// used_memory jump by its size (Redis's maxmemory tests measure to 4 KB).
pub fn prepare_thread() {
    my_table();
}

fn my_table() -> &'static ThreadTable {
    MINE.with(|m| match m.get() {
        Some(t) => t,
        None => {
            let t: &'static ThreadTable = Box::leak(Box::new(ThreadTable {
                epoch: AtomicU64::new(EPOCH.load(Relaxed)),
                slots: (0..index().specs.len()).map(|_| Slot::default()).collect(),
            }));
            TABLES.lock().push(t);
            m.set(Some(t));
            t
        }
    })
}

#[inline]
fn with_slot(spec: &CommandSpec, f: impl FnOnce(usize, &Slot)) {
    let Some(i) = index().find(spec) else { return };
    let t = my_table();
    let now = EPOCH.load(Relaxed);
    if t.epoch.load(Relaxed) != now {
        t.reset(now);
    }
    f(i, &t.slots[i]);
}

impl ThreadTable {
    #[cold]
    fn reset(&self, now: u64) {
        for s in self.slots.iter() {
            for a in [&s.calls, &s.usec, &s.rejected, &s.failed] {
                a.store(0, Relaxed);
            }
        }
        self.epoch.store(now, Relaxed);
    }
}

/// A command ran for `usec`; `failed`: it replied with an error.
pub fn record_call(spec: &CommandSpec, usec: u64, failed: bool, histogram: bool) {
    with_slot(spec, |i, s| {
        bump(&s.calls, 1);
        bump(&s.usec, usec);
        if failed {
            bump(&s.failed, 1);
        }
        if histogram {
            hist_of(i).get_or_init(Hist::default).record(usec * 1000);
        }
    });
}

/// A blocked command was served: `usec` more of its time, and the whole `total` for its
/// latency histogram (Redis records a blocked command's latency once, when it is served).
pub fn record_unblocked(spec: &CommandSpec, usec: u64, total: u64, histogram: bool) {
    with_slot(spec, |i, s| {
        bump(&s.usec, usec);
        if histogram {
            hist_of(i).get_or_init(Hist::default).record(total * 1000);
        }
    });
}

/// A blocked command, counted as a call when it blocked, was answered with an error once
/// woken (Redis's updateStatsOnUnblock).
pub fn record_failed(spec: &CommandSpec) {
    with_slot(spec, |_, s| bump(&s.failed, 1));
}

/// A command was refused before it ran (arity, auth, OOM, ...).
pub fn record_rejected(spec: &CommandSpec) {
    with_slot(spec, |_, s| bump(&s.rejected, 1));
}

pub fn reset() {
    EPOCH.fetch_add(1, Relaxed);
    for i in 0..index().specs.len() {
        if let Some(h) = hist_of(i).get() {
            h.clear();
        }
    }
}

/// One command's figures, summed over threads.
pub struct CmdStat {
    pub name: &'static str,
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
    pub hist: Option<Merged>,
}

/// Every command that has figures, in table order (containers before their subcommands).
pub fn snapshot(with_hist: bool) -> Vec<CmdStat> {
    let idx = index();
    let tables = TABLES.lock().clone();
    let now = EPOCH.load(Relaxed);
    let live: Vec<&ThreadTable> = tables
        .into_iter()
        .filter(|t| t.epoch.load(Relaxed) == now)
        .collect();
    let mut out = Vec::new();
    for (i, spec) in idx.specs.iter().enumerate() {
        let mut st = CmdStat {
            name: spec.name,
            calls: 0,
            usec: 0,
            rejected: 0,
            failed: 0,
            hist: None,
        };
        for t in &live {
            let s = &t.slots[i];
            st.calls += s.calls.load(Relaxed);
            st.usec += s.usec.load(Relaxed);
            st.rejected += s.rejected.load(Relaxed);
            st.failed += s.failed.load(Relaxed);
        }
        if with_hist {
            if let Some(h) = hist_of(i).get() {
                st.hist.get_or_insert_with(Merged::new).add(h);
            }
        }
        if st.calls + st.rejected + st.failed > 0 {
            out.push(st);
        }
    }
    out
}

/// Names as INFO writes them: `client|list`.
pub fn by_name(stats: Vec<CmdStat>) -> HashMap<&'static str, CmdStat> {
    stats.into_iter().map(|s| (s.name, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_hdrs() {
        let h = Hist::default();
        for v in [1000u64, 1000, 1000, 2000, 500_000] {
            h.record(v);
        }
        let mut m = Merged::new();
        m.add(&h);
        // Redis: p50=1.003 for 1 us (the top of its 2-significant-figure bucket).
        assert_eq!(m.value_at(50.0), 1003);
        assert_eq!(m.value_at(80.0), 2007);
        assert_eq!(m.value_at(100.0), 501_759);
        assert_eq!(slot_range(counts_index(100)), (100, 1));
        assert_eq!(slot_range(counts_index(300)), (300, 2));
    }
}
