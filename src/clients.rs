//! The registry of connected clients, and the handle through which one client is reached by
//! the others (CLIENT LIST / INFO / KILL, INFO's clients section, and next Pub/Sub, client-side
//! caching invalidations and MONITOR).
//!
//! A connection's own worker owns everything else about it (buffers, parser, database, MULTI)
//! under a lock that it holds for as long as a step runs, which may be a long command. So what
//! another thread may read or do goes through the [`ClientHandle`] alone, never that lock:
//! - read what CLIENT LIST shows, from a small mutex the owner updates once per command;
//! - [`ClientHandle::kill`]: a flag, and a wake-up, so that the owner closes the connection;
//! - [`ClientHandle::deliver`]: bytes appended to the client's outbox, and a wake-up, so that
//!   the owner writes them to the socket promptly, even if the client sends nothing.
//!
//! The wake-up is a [`Waker`] the server's pool installs when it takes the connection: this
//! module knows only the trait, so that nothing below the server layer depends on the pool.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;

use crate::util::net::Socket;

thread_local! {
    /// Set on the pool's workers: a wake-up from one is taken by that worker after its step
    /// (see `pool`), and what it feeds MONITOR waits for its batch to end (see `ops::monitor`).
    static WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// This thread is a pool worker (see `on_worker`).
pub fn mark_worker() {
    WORKER.with(|b| b.set(true));
}

pub fn on_worker() -> bool {
    WORKER.with(|b| b.get())
}

/// What CLIENT LIST shows of a client that changes while it runs.
#[derive(Debug, Clone)]
pub struct ClientState {
    pub name: Vec<u8>,
    pub db: usize,
    pub lib_name: Vec<u8>,
    pub lib_ver: Vec<u8>,
    /// Commands queued since MULTI; -1 outside a transaction (CLIENT LIST's `multi=`, and
    /// its `x` flag).
    pub multi: i64,
    /// The protocol the connection speaks (2 or 3, set by HELLO): CLIENT LIST's `resp=`.
    pub resp: u8,
    /// Channels, patterns and shard channels subscribed to (CLIENT LIST's `sub=`, `psub=`,
    /// `ssub=`, and its `P` flag).
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// CLIENT TRACKING: on (`t`), in BCAST mode (`B`), and the client its invalidations go
    /// to (`redir=`; -1 none, 0 itself).
    pub tracking: bool,
    pub bcast: bool,
    pub redir: i64,
    /// CLIENT TRACKING ... NOLOOP: its own writes invalidate nothing for it.
    pub noloop: bool,
    /// The ACL user it authenticated as (CLIENT LIST's `user=`).
    pub user: String,
}

/// Gets a connection's owner to serve it soon: implemented by the server's pool, which knows
/// the connection by `token`.
pub trait Wake: Send + Sync {
    fn wake(&self, token: u64);
}

/// A connection's wake-up: who serves it, and how they know it.
pub struct Waker {
    pub by: Arc<dyn Wake>,
    pub token: u64,
}

/// The client types of CLIENT LIST TYPE and CLIENT KILL TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Normal,
    Replica,
    Master,
    Pubsub,
}

/// Bytes queued in outboxes, not yet taken by their connections' workers.
static IN_OUTBOXES: AtomicU64 = AtomicU64::new(0);
/// Outbox room kept between bursts (Redis's PROTO_REPLY_MIN_BYTES): a few messages.
const OUTBOX_KEEP: usize = 1024;

fn queue(outbox: &mut Vec<u8>, bytes: &[u8]) {
    outbox.extend_from_slice(bytes);
    IN_OUTBOXES.fetch_add(bytes.len() as u64, Ordering::Relaxed);
}

/// What other threads queued for clients and their workers have yet to take: output in
/// flight, which Redis, one thread, would have written to the sockets before its next
/// command ran. Eviction leaves it out (see `evict::not_counted`): tracking invalidations
/// for the keys it evicted would otherwise have it evict again for them.
pub fn in_outboxes() -> u64 {
    IN_OUTBOXES.load(Ordering::Relaxed)
}

pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    /// Came through the Unix socket (CLIENT LIST's `U`).
    pub unix: bool,
    pub created: Instant,
    killed: AtomicBool,
    /// Waiting in a blocking command (see `blocking`): its session runs nothing more until
    /// this clears, which `unblock_with` does.
    blocked: AtomicBool,
    pub state: Mutex<ClientState>,
    /// Set by any change to a key the client WATCHes (Redis's CLIENT_DIRTY_CAS); the
    /// watchers' registry (`watch`) holds a clone.
    pub watch_flag: Arc<AtomicBool>,
    /// Bytes other threads have delivered, not yet moved into the client's output.
    outbox: Mutex<Vec<u8>>,
    /// Set by a delivery or a kill whose wake-up the owner has not yet answered: further ones
    /// add no wake-up of their own.
    signalled: AtomicBool,
    /// Installed once the pool has the connection; a client without one (the AOF loader's) is
    /// never reached by others.
    waker: OnceLock<Waker>,
    /// Speaks RESP3: what a publisher writes for it (a push, not an array). Beside `state`'s
    /// copy so that a delivery takes no lock to know it.
    resp3: AtomicBool,
    /// Held by CLIENT PAUSE (see `ops::pause`): shown as blocked.
    postponed: AtomicBool,
    /// Another thread asked for the connection to close once what its outbox holds is
    /// written (Redis's CLIENT_CLOSE_AFTER_REPLY, set from outside).
    close_after_outbox: AtomicBool,
    /// The buffers' figures CLIENT LIST shows, published by the owner (relaxed stores to a
    /// line only it writes).
    pub io: IoFigures,
    /// CLIENT NO-EVICT on (`e`), MONITOR (`O`).
    pub no_evict: AtomicBool,
    pub monitor: AtomicBool,
    /// A replica served by this master (`S`), or this replica's link to its master (`M`):
    /// Redis's CLIENT_SLAVE and CLIENT_MASTER, for CLIENT LIST and KILL TYPE.
    pub replica: AtomicBool,
    pub master: AtomicBool,
    /// The last command's full name (`client|list`), as CLIENT LIST's `cmd=`: a pointer to a
    /// command table entry's `&'static str` (thin, so one atomic store records it), or null.
    last_cmd: AtomicPtr<&'static str>,
    /// When the last command began, in `util::clock::ticks`: kept outside `state` because
    /// every command records it.
    last_active: AtomicU64,
}

/// CLIENT LIST's `qbuf`, `qbuf-free`, `argv-mem`, `multi-mem`, `rbs`, `rbp`, `obl`,
/// `tot-mem`, and whether replies wait for the socket (`events=rw`).
#[derive(Default)]
pub struct IoFigures {
    pub qbuf: AtomicU64,
    pub qbuf_free: AtomicU64,
    pub argv_mem: AtomicU64,
    pub multi_mem: AtomicU64,
    pub rbs: AtomicU64,
    pub rbp: AtomicU64,
    pub pending: AtomicU64,
    pub tot_mem: AtomicU64,
}

/// Redis's reply buffer (16 KB) and list nodes: how `obl`, `oll` and `omem` split the bytes
/// pending, so that tools reading them see Redis's meaning.
const REPLY_CHUNK: u64 = 16 * 1024;

impl ClientHandle {
    pub fn new(id: u64, stream: Option<&Socket>) -> ClientHandle {
        let (peer, local, fd) = match stream {
            Some(s) => {
                use std::os::fd::AsRawFd;
                let (peer, local) = s.addresses();
                (peer, local, s.as_raw_fd() as i64)
            }
            None => (String::new(), String::new(), -1),
        };
        let now = Instant::now();
        ClientHandle {
            id,
            addr: peer,
            laddr: local,
            fd,
            unix: stream.is_some_and(Socket::is_unix),
            created: now,
            killed: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            state: Mutex::new(ClientState {
                name: Vec::new(),
                db: 0,
                user: "default".into(),
                lib_name: Vec::new(),
                lib_ver: Vec::new(),
                multi: -1,
                resp: 2,
                sub: 0,
                psub: 0,
                ssub: 0,
                tracking: false,
                bcast: false,
                redir: -1,
                noloop: false,
            }),
            watch_flag: Arc::default(),
            outbox: Mutex::new(Vec::new()),
            signalled: AtomicBool::new(false),
            waker: OnceLock::new(),
            resp3: AtomicBool::new(false),
            postponed: AtomicBool::new(false),
            close_after_outbox: AtomicBool::new(false),
            io: IoFigures::default(),
            no_evict: AtomicBool::new(false),
            monitor: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            master: AtomicBool::new(false),
            last_cmd: AtomicPtr::new(std::ptr::null_mut()),
            last_active: AtomicU64::new(crate::util::clock::ticks()),
        }
    }

    pub fn is_postponed(&self) -> bool {
        self.postponed.load(Ordering::Relaxed)
    }

    pub fn set_postponed(&self, on: bool) {
        self.postponed.store(on, Ordering::SeqCst);
    }

    /// Gets the owner to step the connection soon, with nothing delivered (the end of a
    /// pause).
    pub fn nudge(&self) {
        self.signalled.store(true, Ordering::SeqCst);
        self.wake_owner();
    }

    /// Records the protocol the connection switched to (HELLO, RESET).
    pub fn set_protocol(&self, version: u8) {
        self.state.lock().resp = version;
        self.resp3.store(version == 3, Ordering::Relaxed);
    }

    /// Redis's getClientType: master, replica, pubsub or normal.
    pub fn kind(&self) -> ClientKind {
        if self.master.load(Ordering::Relaxed) {
            ClientKind::Master
        } else if self.replica.load(Ordering::Relaxed) {
            ClientKind::Replica
        } else if self.is_subscribed() {
            ClientKind::Pubsub
        } else {
            ClientKind::Normal
        }
    }

    /// Subscribed to a channel, pattern or shard channel (Redis's `pubsub` client type).
    pub fn is_subscribed(&self) -> bool {
        let st = self.state.lock();
        st.sub + st.psub + st.ssub > 0
    }

    pub fn is_resp3(&self) -> bool {
        self.resp3.load(Ordering::Relaxed)
    }

    /// Installs the connection's wake-up (once; later calls are ignored).
    pub fn set_waker(&self, waker: Waker) {
        let _ = self.waker.set(waker);
        // Something delivered before the waker was there must not wait for the next event.
        if self.signalled.load(Ordering::SeqCst) {
            self.wake_owner();
        }
    }

    /// The connection closes once what was delivered so far is written: call before the
    /// delivery.
    pub fn close_after_outbox(&self) {
        self.close_after_outbox.store(true, Ordering::SeqCst);
    }

    pub fn closes_after_outbox(&self) -> bool {
        self.close_after_outbox.load(Ordering::Relaxed)
    }

    /// Marks the client killed and wakes its connection, which then closes.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.signal();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Queues `bytes` (complete replies in the client's protocol) for the client, from any
    /// thread, and wakes its connection to write them. Never waits for the client's own step.
    /// Returns how many bytes wait in the outbox now, for the sender to enforce a limit.
    pub fn deliver(&self, bytes: &[u8]) -> usize {
        let len = {
            let mut outbox = self.outbox.lock();
            queue(&mut outbox, bytes);
            outbox.len()
        };
        self.signal();
        len
    }

    /// Wakes the connection to write what is in its outbox (what `deliver_quietly` queued),
    /// unless a wake-up is already pending.
    pub fn signal(&self) {
        if !self.signalled.swap(true, Ordering::AcqRel) {
            self.wake_owner();
        }
    }

    /// `deliver` without the wake-up, which the caller owes (see `ops::monitor`).
    pub fn deliver_quietly(&self, bytes: &[u8]) {
        queue(&mut self.outbox.lock(), bytes);
    }

    fn wake_owner(&self) {
        if let Some(w) = self.waker.get() {
            w.by.wake(w.token);
        }
    }

    /// For the owner: moves what was delivered to the end of `out`; true when there was some.
    /// One atomic load when nothing was.
    pub fn take_outbox(&self, out: &mut Vec<u8>) -> bool {
        if !self.signalled.load(Ordering::Acquire) {
            return false;
        }
        // Cleared before the outbox is read: a delivery after this signals again.
        self.signalled.store(false, Ordering::SeqCst);
        let mut outbox = self.outbox.lock();
        if outbox.is_empty() {
            return false;
        }
        out.extend_from_slice(&outbox);
        IN_OUTBOXES.fetch_sub(outbox.len() as u64, Ordering::Relaxed);
        // A burst (invalidations of many keys, a slow subscriber's backlog) gives its room
        // back once passed on; the usual few messages keep theirs.
        if outbox.capacity() > OUTBOX_KEEP {
            *outbox = Vec::new();
        } else {
            outbox.clear();
        }
        true
    }

    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::SeqCst)
    }

    pub fn set_blocked(&self, on: bool) {
        self.blocked.store(on, Ordering::SeqCst);
    }

    /// Ends the client's wait: queues the blocking command's reply and wakes the connection.
    /// The reply is in the outbox before the flag clears, so that a session that sees itself
    /// unblocked has it before anything it runs next; the wake-up is unconditional, since a
    /// wake-up already pending may be answered by a step that still saw the flag set.
    pub fn unblock_with(&self, reply: &[u8]) {
        {
            let mut outbox = self.outbox.lock();
            queue(&mut outbox, reply);
            self.blocked.store(false, Ordering::SeqCst);
        }
        self.signalled.store(true, Ordering::SeqCst);
        self.wake_owner();
    }

    /// Records a command about to run: `cmd` is its entry's name in the command table. Two
    /// relaxed stores, no lock: every command pays for this.
    #[inline]
    pub fn touch(&self, cmd: &'static &'static str) {
        self.last_cmd.store(
            cmd as *const &'static str as *mut &'static str,
            Ordering::Relaxed,
        );
        self.last_active
            .store(crate::util::clock::ticks(), Ordering::Relaxed);
    }

    /// CLIENT LIST's `cmd=`.
    pub fn last_cmd(&self) -> &'static str {
        let p = self.last_cmd.load(Ordering::Relaxed);
        // SAFETY: `touch` stores only pointers to `&'static str`s, which never move or die.
        unsafe { p.as_ref() }.copied().unwrap_or("NULL")
    }

    /// Microseconds since the last command began (CLIENT LIST's `idle=`, `timeout`).
    pub fn idle_us(&self) -> u64 {
        use crate::util::clock::{ticks, ticks_to_us};
        // Saturating: the reading may come from another core's counter, a little behind.
        ticks_to_us(ticks().saturating_sub(self.last_active.load(Ordering::Relaxed)))
    }

    /// One line of CLIENT LIST, in Redis 7.0's field order (catClientInfoString), without
    /// the trailing newline.
    pub fn info_line(&self) -> String {
        let st = self.state.lock().clone();
        let now = Instant::now();
        let mut flags = String::new();
        for (on, c) in [
            (self.monitor.load(Ordering::Relaxed), 'O'),
            (self.replica.load(Ordering::Relaxed), 'S'),
            (self.master.load(Ordering::Relaxed), 'M'),
            (st.sub + st.psub + st.ssub > 0, 'P'),
            (st.multi >= 0, 'x'),
            (self.is_blocked() || self.is_postponed(), 'b'),
            (st.tracking, 't'),
            (st.bcast, 'B'),
            (self.watch_flag.load(Ordering::Relaxed), 'd'),
            (self.unix, 'U'),
            (self.no_evict.load(Ordering::Relaxed), 'e'),
        ] {
            if on {
                flags.push(c);
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let io = &self.io;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let pending = get(&io.pending);
        let obl = pending.min(REPLY_CHUNK);
        let omem = pending - obl;
        let oll = omem.div_ceil(REPLY_CHUNK);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} \
             ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} \
             obl={} oll={} omem={} tot-mem={} events={} cmd={} user={} redir={} resp={} \
             lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&st.name),
            now.duration_since(self.created).as_secs(),
            self.idle_us() / 1_000_000,
            flags,
            st.db,
            st.sub,
            st.psub,
            st.ssub,
            st.multi,
            get(&io.qbuf),
            get(&io.qbuf_free),
            get(&io.argv_mem),
            get(&io.multi_mem),
            get(&io.rbs),
            get(&io.rbp),
            obl,
            oll,
            omem,
            get(&io.tot_mem),
            if pending > 0 { "rw" } else { "r" },
            self.last_cmd(),
            st.user,
            st.redir,
            st.resp,
            String::from_utf8_lossy(&st.lib_name),
            String::from_utf8_lossy(&st.lib_ver),
        )
    }
}

/// Every connected client, by id (which is also connection order).
#[derive(Default)]
pub struct Clients {
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
}

impl Clients {
    pub fn register(&self, h: Arc<ClientHandle>) {
        self.map.lock().insert(h.id, h);
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.lock().get(&id).cloned()
    }

    /// Closes the connections authenticated as ACL user `name` (deleted or disabled).
    pub fn kill_user(&self, name: &str) {
        for h in self.all() {
            if h.state.lock().user == name {
                h.kill();
            }
        }
    }

    /// INFO's mem_clients_normal: what every client but the replicas holds (its session and
    /// buffers, as CLIENT LIST's tot-mem), as Redis sums its normal, pub/sub and master
    /// clients.
    pub fn normal_memory(&self) -> u64 {
        self.map
            .lock()
            .values()
            .filter(|h| !h.replica.load(Ordering::Relaxed))
            .map(|h| h.io.tot_mem.load(Ordering::Relaxed))
            .sum()
    }

    /// A snapshot, in id order.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map.lock().values().cloned().collect()
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        IN_OUTBOXES.fetch_sub(self.outbox.get_mut().len() as u64, Ordering::Relaxed);
    }
}
