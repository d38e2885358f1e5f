//! MONITOR: every command run, from every worker, as one status line to each monitoring
//! client (Redis's replicationFeedMonitors). While nobody monitors, a command pays one
//! relaxed load.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::clients::ClientHandle;

#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<Arc<ClientHandle>>>,
    /// A worker's lines are gathered in its own buffer and handed to the monitors once per
    /// batch of steps (`end_batch`, before the batch's clients are released, so that a
    /// client's lines keep their order wherever it is served next), and `flush` (the pool's
    /// watchdog, every slice of 2 ms) wakes the monitors: a lock, a wake-up and a write per
    /// command made the workers queue on the monitor and doubled the server's writes (300,000
    /// SETs at -c 50 with one monitor: 415k writes, Redis 319k, as it writes once per turn of
    /// its loop). Lines reach the monitor at most a slice after their batch.
    pending: AtomicBool,
}

thread_local! {
    /// This worker's lines not yet handed to the monitors.
    static LINES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Appends `arg` as Redis's sdscatrepr quotes it.
pub fn repr(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'"');
    // Keys and values are mostly printable: copied whole.
    if arg
        .iter()
        .all(|&b| (b.is_ascii_graphic() || b == b' ') && b != b'\\' && b != b'"')
    {
        out.extend_from_slice(arg);
        out.push(b'"');
        return;
    }
    for &b in arg {
        match b {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(b);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b),
            b => {
                let _ = write!(ByteSink(out), "\\x{b:02x}");
            }
        }
    }
    out.push(b'"');
}

/// `write!` into a byte buffer.
struct ByteSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// One MONITOR line: `+<secs>.<usecs> [<db> <who>] "arg" ...\r\n`.
#[cfg(test)]
pub fn line(db: usize, who: &str, argv: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    append_line(&mut out, db, who, argv, &[]);
    out
}

/// Appends one MONITOR line to `out`, the arguments at `hidden` shown as `(redacted)`:
/// written in place, as every command run while someone monitors makes one.
pub fn append_line(out: &mut Vec<u8>, db: usize, who: &str, argv: &[&[u8]], hidden: &[usize]) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let _ = write!(
        ByteSink(out),
        "+{}.{:06} [{db} {who}] ",
        t.as_secs(),
        t.subsec_micros()
    );
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        if hidden.contains(&i) {
            repr(out, super::REDACTED);
        } else {
            repr(out, a);
        }
    }
    out.extend_from_slice(b"\r\n");
}

impl Monitors {
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    pub fn add(&self, h: Arc<ClientHandle>) {
        let mut l = self.list.lock();
        if !l.iter().any(|m| m.id == h.id) {
            l.push(h);
            self.count.store(l.len(), Ordering::SeqCst);
        }
    }

    pub fn remove(&self, id: u64) {
        if !self.active() {
            return;
        }
        let mut l = self.list.lock();
        l.retain(|m| m.id != id);
        self.count.store(l.len(), Ordering::SeqCst);
    }

    /// Wakes the monitors for the lines workers fed them since the last call.
    pub fn flush(&self) {
        if self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::AcqRel) {
            for m in self.list.lock().iter() {
                m.signal();
            }
        }
    }

    /// Sends the line `write` appends to every monitor: on a worker, into its batch's
    /// buffer directly. Its output limit is the `normal` class's, enforced by its own session
    /// when it takes the outbox (as for any delivery), so the feed reads no setting.
    pub fn feed(&self, write: impl FnOnce(&mut Vec<u8>)) {
        if crate::clients::on_worker() {
            LINES.with(|l| write(&mut l.borrow_mut()));
            return;
        }
        let mut line = Vec::new();
        write(&mut line);
        for m in self.list.lock().iter() {
            if !m.is_killed() {
                m.deliver(&line);
            }
        }
    }

    /// A worker's batch of steps is over: the lines its commands fed go to every monitor
    /// (woken by the next `flush`).
    pub fn end_batch(&self) {
        LINES.with(|l| {
            let mut lines = l.borrow_mut();
            if lines.is_empty() {
                return;
            }
            for m in self.list.lock().iter() {
                if !m.is_killed() {
                    m.deliver_quietly(&lines);
                }
            }
            self.pending.store(true, Ordering::Release);
            lines.clear();
            if lines.capacity() > 1 << 20 {
                lines.shrink_to(64 << 10);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_are_quoted_as_sdscatrepr() {
        let mut v = Vec::new();
        super::repr(&mut v, b"a\"b\\c\n\x01 \xff");
        assert_eq!(v, b"\"a\\\"b\\\\c\\n\\x01 \\xff\"");
        let l = super::line(3, "127.0.0.1:5", &[b"set", b"k"]);
        let s = String::from_utf8(l).unwrap();
        assert!(
            s.starts_with('+') && s.ends_with(" [3 127.0.0.1:5] \"set\" \"k\"\r\n"),
            "{s}"
        );
    }
}
