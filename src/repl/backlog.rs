//! The replication stream as a master keeps it: one byte sequence, numbered by offset, that
//! every write's effect enters in the store's order (`Shared::propagate`, beside the AOF
//! record), and that every attached replica reads from at its own pace.
//!
//! As Redis 7's shared replication buffer, the bytes are kept once for all replicas: a
//! replica's pending output is the part of the stream past what it was sent, so a replica
//! costs no copy of the stream, and what the backlog keeps for partial resyncs
//! (`repl-backlog-size`) is the same memory. Bytes go once no replica needs them and they are
//! older than the backlog's size; a replica further behind than its output limit
//! (`client-output-buffer-limit replica`) is dropped, as Redis drops it, rather than holding
//! memory without bound.
//!
//! A master with no replica pays one relaxed load per write: the backlog is created with the
//! first replica, as Redis's createReplicationBacklog, and until then offsets do not move.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use crate::resp::reply::encode_command;

/// A replica's state, as INFO replication names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplicaState {
    /// Waiting for the snapshot its full sync starts from.
    WaitBgsave = 0,
    /// The snapshot is being sent.
    SendBulk = 1,
    Online = 2,
}

impl ReplicaState {
    pub fn name(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// One attached replica, as INFO, ROLE, WAIT and the write gates see it; its thread (see
/// `master`) updates it.
pub struct Replica {
    pub client_id: u64,
    pub ip: String,
    /// The port it listens on (REPLCONF listening-port), which Sentinel connects to.
    pub port: u16,
    state: AtomicU8,
    /// Offset of the last byte of the stream written to its socket.
    pub sent: AtomicI64,
    /// The offset it last acknowledged (REPLCONF ACK), and when (unix ms).
    pub ack: AtomicI64,
    pub ack_ms: AtomicU64,
    /// Set to end its link: too far behind, CLIENT KILL, a role change.
    pub dropped: AtomicBool,
    /// Unix ms since it has been further behind than the soft output limit (0: it is not).
    over_soft_since: AtomicU64,
    /// What its link holds of the stream, copied out to be written (its send buffer).
    pub held: AtomicU64,
    /// Written to wake its thread when new bytes arrive while it waits (an eventfd).
    wake: OwnedFd,
    parked: AtomicBool,
}

impl Replica {
    pub fn new(client_id: u64, ip: String, port: u16) -> std::io::Result<Replica> {
        // SAFETY: eventfd takes no pointers; a valid descriptor is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nothing else owns.
        let wake = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Replica {
            client_id,
            ip,
            port,
            state: AtomicU8::new(ReplicaState::WaitBgsave as u8),
            sent: AtomicI64::new(0),
            ack: AtomicI64::new(0),
            ack_ms: AtomicU64::new(crate::util::clock::now_ms()),
            dropped: AtomicBool::new(false),
            over_soft_since: AtomicU64::new(0),
            held: AtomicU64::new(0),
            wake,
            parked: AtomicBool::new(false),
        })
    }

    pub fn state(&self) -> ReplicaState {
        match self.state.load(Ordering::Relaxed) {
            0 => ReplicaState::WaitBgsave,
            1 => ReplicaState::SendBulk,
            _ => ReplicaState::Online,
        }
    }

    pub fn set_state(&self, s: ReplicaState) {
        self.state.store(s as u8, Ordering::SeqCst);
    }

    /// The descriptor its thread polls for wake-ups.
    pub fn wake_fd(&self) -> std::os::fd::RawFd {
        self.wake.as_raw_fd()
    }

    /// Consumes a wake-up.
    pub fn drain_wake(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `buf`; the eventfd is non-blocking.
        unsafe { libc::read(self.wake.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    }

    fn wake(&self) {
        if self.parked.swap(false, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from `one` to the eventfd.
            unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Ends its link: its thread wakes (parked or not) and goes.
    fn end(&self) {
        self.dropped.store(true, Ordering::SeqCst);
        self.parked.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Ends its link for breaking an output limit.
    fn drop_link(&self, why: &str) {
        log::warn!(
            "Client id={} addr={}:{} (replica) scheduled to be closed ASAP for overcoming of \
             output buffer limits ({why}).",
            self.client_id,
            self.ip,
            self.port
        );
        self.end();
    }

    /// Seconds since its last ACK (INFO's `lag`).
    pub fn lag_secs(&self) -> u64 {
        crate::util::clock::now_ms().saturating_sub(self.ack_ms.load(Ordering::Relaxed)) / 1000
    }
}

pub struct Inner {
    /// The bytes held are `buf[head..]`; the first of them has offset `first`.
    buf: Vec<u8>,
    head: usize,
    pub first: i64,
    /// master_repl_offset: the offset of the last byte of the stream (0: none yet).
    pub offset: i64,
    /// The database the stream has selected (Redis's slaveseldb); None: the next write
    /// selects its own.
    db: Option<usize>,
    /// Created (repl_backlog_active): with the first replica.
    pub created: bool,
    /// repl-backlog-size.
    pub size: usize,
    /// client-output-buffer-limit replica's hard limit (0: none).
    pub hard_limit: u64,
    pub replicas: Vec<Arc<Replica>>,
    /// Unix ms the last replica went (for repl-backlog-ttl).
    pub alone_since: u64,
}

impl Inner {
    pub fn histlen(&self) -> i64 {
        (self.buf.len() - self.head) as i64
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.offset += bytes.len() as i64;
    }

    /// After bytes were pushed: trims, and wakes the replicas waiting for them.
    fn pushed(&mut self) {
        self.trim();
        self.wake_all();
    }

    /// Keeps what a replica still needs and `size` bytes besides; drops replicas whose
    /// pending bytes break the hard limit.
    fn trim(&mut self) {
        let mut keep_from = self.offset + 1 - self.size as i64;
        for r in &self.replicas {
            if r.dropped.load(Ordering::Relaxed) || r.state() == ReplicaState::WaitBgsave {
                continue;
            }
            let sent = r.sent.load(Ordering::Relaxed);
            if self.hard_limit > 0 && (self.offset - sent) as u64 > self.hard_limit {
                r.drop_link("hard limit");
                continue;
            }
            keep_from = keep_from.min(sent + 1);
        }
        if keep_from > self.first {
            let n = ((keep_from - self.first) as usize).min(self.buf.len() - self.head);
            self.head += n;
            self.first += n as i64;
        }
        // Moving the live bytes down costs their length: only once as many are dead.
        if self.head > 64 * 1024 && self.head * 2 > self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
            // The room a replica's lag took goes back once it has caught up (Redis frees
            // its buffer's blocks as they are sent).
            let want = self.buf.len().max(self.size) * 2;
            if self.buf.capacity() > want.max(1 << 20) {
                self.buf.shrink_to(want);
            }
        }
    }

    /// Copies the stream from offset `from` (at most `max` bytes) onto `out`; None when those
    /// bytes are gone (the caller needs a full sync).
    pub fn copy_from(&self, from: i64, max: usize, out: &mut Vec<u8>) -> Option<usize> {
        if from < self.first || from > self.offset + 1 {
            return None;
        }
        let start = self.head + (from - self.first) as usize;
        let end = self.buf.len().min(start + max);
        out.extend_from_slice(&self.buf[start..end]);
        Some(end - start)
    }

    /// True when a replica asking to continue from offset `from` can.
    pub fn holds(&self, from: i64) -> bool {
        self.created && from >= self.first && from <= self.offset + 1
    }

    /// Starts the backlog, empty, at the current offset (Redis's createReplicationBacklog).
    pub fn create(&mut self) {
        if !self.created {
            self.created = true;
            self.buf.clear();
            self.head = 0;
            self.first = self.offset + 1;
            self.alone_since = crate::util::clock::now_ms();
        }
    }

    /// Frees the backlog (repl-backlog-ttl): no replica can continue from it any more.
    pub fn free(&mut self) {
        self.created = false;
        self.buf = Vec::new();
        self.head = 0;
        self.first = self.offset + 1;
    }

    /// Forgets the stream and restarts it at `offset` (a replica's full sync: its new
    /// history begins there).
    pub fn reset_at(&mut self, offset: i64) {
        self.buf.clear();
        self.head = 0;
        self.offset = offset;
        self.first = offset + 1;
        self.db = None;
    }

    /// The next write selects its database anew: a replica whose full sync starts here
    /// begins with no database selected.
    pub fn forget_db(&mut self) {
        self.db = None;
    }

    /// client-output-buffer-limit replica's soft limit: a replica further behind than `soft`
    /// bytes for `seconds` is dropped (0 seconds: at once). Checked once a second.
    pub fn check_soft_limit(&self, soft: u64, seconds: u64) {
        let now = crate::util::clock::now_ms();
        for r in &self.replicas {
            if soft == 0
                || r.dropped.load(Ordering::Relaxed)
                || r.state() == ReplicaState::WaitBgsave
            {
                r.over_soft_since.store(0, Ordering::Relaxed);
                continue;
            }
            let pending = (self.offset - r.sent.load(Ordering::Relaxed)).max(0) as u64;
            if pending <= soft {
                r.over_soft_since.store(0, Ordering::Relaxed);
                continue;
            }
            let since = r.over_soft_since.load(Ordering::Relaxed);
            if since == 0 {
                r.over_soft_since.store(now, Ordering::Relaxed);
            }
            if seconds == 0 || (since != 0 && now.saturating_sub(since) >= seconds * 1000) {
                r.drop_link("soft limit");
            }
        }
    }

    /// Replicas online whose last ACK is at most `max_lag` seconds old (min-replicas-*).
    pub fn good_replicas(&self, max_lag: u64) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.state() == ReplicaState::Online && r.lag_secs() <= max_lag)
            .count()
    }

    /// Wakes the replicas waiting for bytes.
    fn wake_all(&self) {
        for r in &self.replicas {
            r.wake();
        }
    }
}

thread_local! {
    /// The stream's offset after the last write this thread fed (see `take_written`).
    static WRITTEN_AT: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

/// Where the stream stood after the writes of the command this thread just ran, if it
/// wrote: the offset WAIT waits for on behalf of its client (Redis's `c->woff`).
pub fn take_written() -> Option<i64> {
    WRITTEN_AT.with(|w| w.take())
}

pub struct Backlog {
    /// Writes feed the stream: a master with a backlog. One relaxed load per write otherwise.
    feeding: AtomicBool,
    inner: Mutex<Inner>,
}

impl Default for Backlog {
    fn default() -> Self {
        Backlog {
            feeding: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                buf: Vec::new(),
                head: 0,
                first: 1,
                offset: 0,
                db: None,
                created: false,
                size: 1024 * 1024,
                hard_limit: 256 * 1024 * 1024,
                replicas: Vec::new(),
                alone_since: 0,
            }),
        }
    }
}

/// What the replication stream holds, as INFO's memory section splits it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// The shared buffer (Redis's repl_buffer_mem).
    pub buffer: u64,
    /// Its part up to `repl-backlog-size`: the backlog's own (mem_replication_backlog).
    pub backlog_part: u64,
    /// Its part beyond `repl-backlog-size`, and what the links hold copied out: what
    /// replicas have yet to be sent, counted as their output buffers (mem_clients_slaves)
    /// and left out of eviction's count.
    pub replicas_part: u64,
    pub replicas: usize,
}

impl Backlog {
    /// The stream's memory, as Redis's getMemoryOverheadData and
    /// freeMemoryGetNotCountedMemory count it. A replica killed a moment ago is gone from the
    /// count of replicas, as in Redis, but its link's buffer is still left out of eviction's
    /// count until its thread, leaving the list shortly, frees it.
    pub fn memory(&self) -> Memory {
        let g = self.inner.lock();
        let buffer = g.buf.capacity() as u64;
        let held: u64 = g
            .replicas
            .iter()
            .map(|r| r.held.load(Ordering::Relaxed))
            .sum();
        Memory {
            buffer,
            backlog_part: buffer.min(g.size as u64),
            replicas_part: buffer.saturating_sub(g.size as u64) + held,
            replicas: g
                .replicas
                .iter()
                .filter(|r| !r.dropped.load(Ordering::Relaxed))
                .count(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Whether writes on this server feed the stream: true on a master with a backlog; a
    /// replica feeds it with its master's bytes instead (`feed_raw`).
    pub fn set_feeding(&self, on: bool) {
        self.feeding.store(on, Ordering::SeqCst);
    }

    #[inline]
    pub fn is_feeding(&self) -> bool {
        self.feeding.load(Ordering::Relaxed)
    }

    /// One write's effect, to be applied in database `db` (see `aof::Record` for the form).
    /// Called under the write's locks, which orders the stream as they order the AOF.
    #[inline]
    pub fn feed(&self, db: usize, data: &[u8]) {
        if self.is_feeding() {
            self.feed_slow(db, data);
        }
    }

    #[cold]
    fn feed_slow(&self, db: usize, data: &[u8]) {
        let mut g = self.inner.lock();
        if !g.created {
            return;
        }
        if g.db != Some(db) {
            let mut select = Vec::with_capacity(24);
            let mut n = itoa::Buffer::new();
            encode_command(&mut select, &[&b"SELECT"[..], n.format(db).as_bytes()]);
            g.push(&select);
            g.db = Some(db);
        }
        g.push(data);
        WRITTEN_AT.with(|w| w.set(Some(g.offset)));
        g.pushed();
    }

    /// Bytes that enter the stream as they are: a replica's master's stream, passed on to its
    /// own replicas, and the master's PINGs and GETACKs, which select nothing.
    /// Without a backlog the offset still moves: a replica's offset is its master's,
    /// whether or not it has replicas of its own yet.
    pub fn feed_raw(&self, data: &[u8]) {
        let mut g = self.inner.lock();
        if !g.created {
            g.offset += data.len() as i64;
            g.first = g.offset + 1;
            return;
        }
        g.push(data);
        g.pushed();
    }

    /// A replica's thread found nothing to send: the next feed wakes it. Called under the
    /// lock that found nothing, so that no feed slips between.
    pub fn park(r: &Replica) {
        r.parked.store(true, Ordering::SeqCst);
    }

    /// Ends the link of the replica that is client `id` (CLIENT KILL).
    pub fn end_replica(&self, id: u64) {
        let g = self.inner.lock();
        for r in g.replicas.iter().filter(|r| r.client_id == id) {
            r.end();
        }
    }

    /// Drops every replica (a role change: they reconnect and learn the new history).
    pub fn drop_replicas(&self) {
        let g = self.inner.lock();
        for r in &g.replicas {
            r.end();
        }
    }

    /// Offset of the stream's last byte.
    pub fn offset(&self) -> i64 {
        self.inner.lock().offset
    }

    /// Replicas online whose last ACK reached `offset`.
    pub fn acked(&self, offset: i64) -> usize {
        let g = self.inner.lock();
        g.replicas
            .iter()
            .filter(|r| r.state() == ReplicaState::Online && r.ack.load(Ordering::SeqCst) >= offset)
            .count()
    }

    /// Replicas online whose last ACK is at most `max_lag` seconds old (min-replicas-*).
    pub fn good_replicas(&self, max_lag: u64) -> usize {
        self.inner.lock().good_replicas(max_lag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active() -> Backlog {
        let b = Backlog::default();
        b.lock().create();
        b.set_feeding(true);
        b
    }

    #[test]
    fn a_write_to_another_database_is_preceded_by_its_select() {
        let b = active();
        b.feed(0, b"A");
        b.feed(0, b"B");
        b.feed(3, b"C");
        let g = b.lock();
        let mut out = Vec::new();
        g.copy_from(1, usize::MAX, &mut out).unwrap();
        let mut want = Vec::new();
        encode_command(&mut want, &[&b"SELECT"[..], b"0"]);
        want.extend_from_slice(b"AB");
        encode_command(&mut want, &[&b"SELECT"[..], b"3"]);
        want.extend_from_slice(b"C");
        assert_eq!(out, want);
        assert_eq!(g.offset, want.len() as i64);
    }

    #[test]
    fn old_bytes_go_once_no_replica_needs_them() {
        let b = active();
        b.lock().size = 10;
        let r = Arc::new(Replica::new(1, "x".into(), 1).unwrap());
        r.set_state(ReplicaState::Online);
        b.lock().replicas.push(r.clone());
        b.feed_raw(&[b'x'; 100]);
        // The replica has been sent nothing: all 100 bytes stay for it.
        assert!(b.lock().holds(1));
        r.sent.store(95, Ordering::SeqCst);
        b.feed_raw(b"y");
        let g = b.lock();
        // Now only the last `size` bytes are kept.
        assert!(!g.holds(90));
        assert!(g.holds(92));
        let mut out = Vec::new();
        assert_eq!(g.copy_from(100, 10, &mut out), Some(2));
        assert_eq!(out, b"xy");
        assert_eq!(g.copy_from(50, 10, &mut Vec::new()), None);
    }

    #[test]
    fn a_replica_past_the_hard_limit_is_dropped_and_holds_nothing() {
        let b = active();
        {
            let mut g = b.lock();
            g.size = 10;
            g.hard_limit = 50;
        }
        let r = Arc::new(Replica::new(1, "x".into(), 1).unwrap());
        r.set_state(ReplicaState::Online);
        b.lock().replicas.push(r.clone());
        b.feed_raw(&[b'x'; 40]);
        assert!(!r.dropped.load(Ordering::SeqCst));
        b.feed_raw(&[b'x'; 40]);
        assert!(r.dropped.load(Ordering::SeqCst));
        assert!(!b.lock().holds(1));
    }

    #[test]
    fn nothing_is_kept_before_the_backlog_is_created() {
        let b = Backlog::default();
        b.set_feeding(true);
        b.feed(0, b"A");
        assert_eq!(b.offset(), 0);
        b.lock().create();
        b.feed(0, b"A");
        assert!(b.lock().holds(1));
        assert!(b.offset() > 1);
    }
}

#[cfg(test)]
mod soft_limit_tests {
    use super::*;

    #[test]
    fn a_replica_over_the_soft_limit_for_its_seconds_is_dropped() {
        let b = Backlog::default();
        b.lock().create();
        b.set_feeding(true);
        let r = Arc::new(Replica::new(1, "x".into(), 1).unwrap());
        r.set_state(ReplicaState::Online);
        b.lock().replicas.push(r.clone());
        b.feed_raw(&[b'x'; 100]);
        // Over 50 bytes behind: the clock starts, nothing is dropped yet.
        b.lock().check_soft_limit(50, 1);
        assert!(!r.dropped.load(Ordering::SeqCst));
        // Caught up: the clock stops.
        r.sent.store(100, Ordering::SeqCst);
        b.lock().check_soft_limit(50, 1);
        assert_eq!(r.over_soft_since.load(Ordering::SeqCst), 0);
        // Behind with no grace: dropped at once.
        b.feed_raw(&[b'x'; 100]);
        b.lock().check_soft_limit(50, 0);
        assert!(r.dropped.load(Ordering::SeqCst));
    }
}
