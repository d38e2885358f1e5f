//! The worker pool: `--workers` threads serving up to `maxclients` clients through one shared
//! epoll set.
//!
//! Why not one thread blocked in `read` per client: then every request wakes a sleeping thread,
//! and on loopback that wake-up is paid by the client that sends the request. Measured against
//! Redis with redis-benchmark (50 clients, no pipelining), that held rudis to 0.75 of Redis's
//! rate even with a server that did nothing. Here a worker that has work keeps going, as
//! Redis's event loop does: it takes the clients epoll reports ready from a shared queue, runs
//! each one's requests, writes the AOF once for all of them, then writes their replies. The
//! other workers sleep, and nobody pays for waking them.
//!
//! No client waits long on another, though: a watchdog wakes a sleeping worker whenever ready
//! clients (or the epoll set itself) have gone a slice (`SLICE`) without any worker finishing a
//! step. A long command, a long pipeline or an fsync wait then holds up only its own client
//! and the few its worker stepped just before it (their replies wait for the batch's flush);
//! every other client is served by the other workers from the shared queue. Only as many long
//! commands at once as there are workers hold up everybody, as one does in Redis.
//!
//! A connection is served by one worker at a time: its `state` is claimed before a step and
//! released after. An event that arrives for a claimed connection marks it, and the holder
//! steps it again, so that with edge-triggered epoll no event is lost. Other threads reach a
//! client through its handle (see `clients`): the pool is its [`Wake`], and a wake-up queues
//! the connection as an event would.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clients::{Wake, Waker};
use crate::connection::{Next, Session};
use crate::shared::Shared;
use crate::util::net::Socket;

/// How long ready clients may go unserved, while every awake worker is busy, before the
/// watchdog wakes another worker.
const SLICE: Duration = Duration::from_millis(2);
/// The periodic checks (idle clients, unread replies) run this often.
const CRON: Duration = Duration::from_millis(100);
/// Buffer bytes one cron pass must give back before it returns free pages to the system.
const PURGE_AFTER_FREEING: usize = 4 << 20;
/// Sessions stepped before their replies are written, at most.
const BATCH: usize = 64;
/// A worker thread's stack (see `Pool::start`).
const WORKER_STACK: usize = 8 << 20;
/// Steps a worker runs, while clients stay queued, between two looks at the epoll set.
const POLL_EVERY: usize = 16;
/// Busy polling applies only while the last sleep in epoll_wait was shorter than this: clients
/// are then writing faster than every 20 us, and a worker that sleeps would be woken at once.
/// Below that rate, the spin would mostly burn CPU.
const BUSY_POLL_IF_SLEPT_UNDER_US: u64 = 20;
/// epoll data of the pool's eventfd (connection tokens never reach it).
const WAKE_TOKEN: u64 = u64::MAX;

/// The events of a step queued by another thread's wake-up rather than by epoll (a bit epoll
/// never reports).
const WOKEN: u32 = 1 << 30;

/// Events saying the peer has shut its side (or the socket failed).
const HUNG_UP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

const IDLE: u8 = 0;
const BUSY: u8 = 1;
const BUSY_AGAIN: u8 = 2;
const CLOSED: u8 = 3;

struct Conn {
    token: u64,
    fd: RawFd,
    state: AtomicU8,
    session: Mutex<Option<Session>>,
}

impl Conn {
    /// Claims the connection for a step. When another worker holds it, marks it so that the
    /// holder steps it again, and returns false.
    fn claim(&self) -> bool {
        let mut cur = self.state.load(Acquire);
        loop {
            let want = match cur {
                IDLE => BUSY,
                BUSY => BUSY_AGAIN,
                _ => return false,
            };
            match self.state.compare_exchange_weak(cur, want, AcqRel, Acquire) {
                Ok(_) => return cur == IDLE,
                Err(now) => cur = now,
            }
        }
    }

    /// Gives the connection up; true when an event came for it meanwhile.
    fn release(&self) -> bool {
        self.state.swap(IDLE, AcqRel) == BUSY_AGAIN
    }
}

/// A connection's token is its slab slot (low 32 bits) and the slot's generation (high 32
/// bits), so that an event harvested for a closed connection never reaches the slot's next one.
fn slot_of(token: u64) -> usize {
    (token & 0xffff_ffff) as usize
}

#[derive(Default)]
struct Slab {
    entries: Vec<(u32, Option<Arc<Conn>>)>,
    free: Vec<u32>,
    len: usize,
}

#[derive(Default)]
struct Coord {
    /// Connections epoll reported ready (token, events), not yet taken by a worker.
    queue: VecDeque<(u64, u32)>,
    /// A worker is in (or about to enter) epoll_wait.
    polling: bool,
    /// Workers asleep, waiting for work.
    parked: usize,
    /// Workers started.
    workers: usize,
}

/// Which other worker `nudge` tells of a queued step.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Taker {
    /// The one in epoll_wait, through the eventfd: under load it is spinning and takes the
    /// queue without a thread switch.
    Poller,
    /// A parked one, woken.
    Parked,
}

impl Coord {
    fn nudged(&self) -> Option<Taker> {
        if self.polling {
            Some(Taker::Poller)
        } else if self.parked > 0 {
            Some(Taker::Parked)
        } else {
            None
        }
    }

    /// What another thread queued is left to a worker busy with steps (neither parked nor
    /// polling): it looks at the queue before it parks or polls. See `hand_over_locked`.
    fn left_to_busy(&self) -> bool {
        !self.polling && self.workers > self.parked
    }
}

pub struct Pool {
    shared: Arc<Shared>,
    epoll: OwnedFd,
    wake: OwnedFd,
    conns: Mutex<Slab>,
    room: Condvar,
    coord: Mutex<Coord>,
    work: Condvar,
    /// Steps finished, so that the watchdog can tell a stuck pool from a busy one.
    progress: AtomicU64,
    /// `busy-poll-us`: how long a worker about to sleep in epoll_wait looks again first.
    busy_poll: Duration,
    /// How long the last blocking epoll_wait slept.
    last_sleep_us: AtomicU64,
    /// The watchdog sleeps long while the pool is idle; the first poll to find work wakes it.
    watch_idle: AtomicBool,
    watch: (Mutex<()>, Condvar),
}

/// What a worker does next.
enum Job {
    Step(u64, u32),
    Flush,
    /// Look at the epoll set; `wait`: until something is ready.
    Poll {
        wait: bool,
    },
}

/// One worker's stepped sessions whose replies are not written yet.
struct Done {
    conn: Arc<Conn>,
    next: Next,
    ticket: Option<u64>,
    fsync: bool,
}

fn os_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

impl Pool {
    pub fn new(shared: Arc<Shared>, busy_poll: Duration) -> std::io::Result<Arc<Pool>> {
        // SAFETY: plain syscalls; each returned descriptor is checked and then owned.
        let epoll = unsafe {
            let fd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            if fd < 0 {
                return Err(os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        // SAFETY: as above.
        let wake = unsafe {
            let fd = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if fd < 0 {
                return Err(os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        let pool = Pool {
            shared,
            epoll,
            wake,
            conns: Mutex::new(Slab::default()),
            room: Condvar::new(),
            coord: Mutex::new(Coord::default()),
            work: Condvar::new(),
            progress: AtomicU64::new(0),
            busy_poll,
            last_sleep_us: AtomicU64::new(u64::MAX),
            watch_idle: AtomicBool::new(false),
            watch: (Mutex::new(()), Condvar::new()),
        };
        pool.ctl(
            libc::EPOLL_CTL_ADD,
            pool.wake.as_raw_fd(),
            libc::EPOLLIN as u32,
            WAKE_TOKEN,
        )?;
        Ok(Arc::new(pool))
    }

    /// Starts the workers and the watchdog. A worker gets the stack Redis's one thread has
    /// (8 MiB, only reserved): a script's reply nested as deep as Lua's stack allows
    /// (`lua.rs`'s `write_reply`, one Rust frame per level) must end in Redis's `reached lua
    /// stack limit` error, not overflow the 2 MiB of a default thread.
    pub fn start(self: &Arc<Self>, workers: usize) -> std::io::Result<()> {
        for i in 0..workers {
            // Counted before it runs: until then it is as a busy worker, whose first look is
            // at the queue.
            self.coord.lock().workers += 1;
            let pool = self.clone();
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .stack_size(WORKER_STACK)
                .spawn(move || pool.work())?;
        }
        let pool = self.clone();
        std::thread::Builder::new()
            .name("pool-watch".into())
            .spawn(move || pool.watchdog())?;
        Ok(())
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) } < 0 {
            return Err(os_error());
        }
        Ok(())
    }

    /// Takes a newly accepted client, or gives it back when `maxclients` are connected. A full
    /// pool waits up to `grace` for a client that has hung up to be let go: the worker that
    /// will notice may be waiting for a CPU, and Redis, which handles a close before its next
    /// accept, would not count that client any more. Lowering maxclients closes nobody: the
    /// newcomers are refused until enough have left, as in Redis.
    /// `tls`: the TLS configuration for a client of the TLS port.
    pub fn admit(
        self: &Arc<Self>,
        stream: Socket,
        tls: Option<Arc<rustls::ServerConfig>>,
        grace: Duration,
    ) -> Result<(), Socket> {
        let capacity = usize::try_from(self.shared.config.read().maxclients).unwrap_or(usize::MAX);
        if self.conns.lock().len >= capacity {
            if !self.some_hung_up() {
                return Err(stream);
            }
            let mut slab = self.conns.lock();
            let deadline = Instant::now() + grace;
            while slab.len >= capacity {
                if self.room.wait_until(&mut slab, deadline).timed_out() {
                    break;
                }
            }
            if slab.len >= capacity {
                return Err(stream);
            }
        }
        let Some(session) = Session::open(&self.shared, stream, tls) else {
            return Ok(());
        };
        let fd = session.fd();
        let handle = session.client.handle.clone();
        let conn = {
            let mut slab = self.conns.lock();
            let index = slab.free.pop().unwrap_or_else(|| {
                slab.entries.push((0, None));
                (slab.entries.len() - 1) as u32
            });
            let entry = &mut slab.entries[index as usize];
            let conn = Arc::new(Conn {
                token: (u64::from(entry.0) << 32) | u64::from(index),
                fd,
                state: AtomicU8::new(IDLE),
                session: Mutex::new(Some(session)),
            });
            entry.1 = Some(conn.clone());
            slab.len += 1;
            conn
        };
        let by: Arc<dyn Wake> = self.clone();
        handle.set_waker(Waker {
            by,
            token: conn.token,
        });
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        if let Err(e) = self.ctl(libc::EPOLL_CTL_ADD, fd, events, conn.token) {
            log::warn!("cannot watch a new client's socket: {e}");
            if conn.claim() {
                self.close(&conn);
            }
        }
        Ok(())
    }

    /// True when some client held has hung up (its close is on its way to a worker).
    fn some_hung_up(&self) -> bool {
        // Polled without the slab's lock, which every step takes: with thousands of clients
        // the poll takes a millisecond. A descriptor closed meanwhile answers POLLNVAL, one
        // reused answers for its new owner: either costs at most one needless grace wait.
        let mut fds: Vec<libc::pollfd> = self
            .conns
            .lock()
            .entries
            .iter()
            .filter_map(|(_, c)| c.as_ref())
            .map(|c| libc::pollfd {
                fd: c.fd,
                events: libc::POLLRDHUP,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        n > 0
            && fds
                .iter()
                .any(|p| p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0)
    }

    fn lookup(&self, token: u64) -> Option<Arc<Conn>> {
        let slab = self.conns.lock();
        match slab.entries.get(slot_of(token)) {
            Some((gen, Some(conn))) if u64::from(*gen) == token >> 32 => Some(conn.clone()),
            _ => None,
        }
    }

    /// Ends a connection this worker has claimed.
    fn close(&self, conn: &Conn) {
        if let Some(s) = self.remove(conn) {
            s.close(&self.shared);
        }
    }

    /// Takes a claimed connection out of the pool, its session still open: for a replica
    /// link, which serves the socket from a thread of its own (see `repl::master`).
    fn detach(&self, conn: &Conn) {
        if let Some(s) = self.remove(conn) {
            crate::repl::master::serve(self.shared.clone(), s.detach());
        }
    }

    /// Takes a claimed connection out of the epoll set and the slab; returns its session.
    fn remove(&self, conn: &Conn) -> Option<Session> {
        conn.state.store(CLOSED, SeqCst);
        let session = conn.session.lock().take();
        // Out of the epoll set before the descriptor is closed and its number reused.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, conn.fd, 0, 0);
        {
            let mut slab = self.conns.lock();
            let index = slot_of(conn.token);
            if let Some(entry) = slab.entries.get_mut(index) {
                entry.0 = entry.0.wrapping_add(1);
                entry.1 = None;
                slab.free.push(index as u32);
                slab.len -= 1;
            }
        }
        self.room.notify_all();
        session
    }

    fn work(&self) {
        crate::clients::mark_worker();
        crate::ops::cmdstats::prepare_thread();
        let mut done: Vec<Done> = Vec::new();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // Steps since this worker last looked at the epoll set: with clients always queued
        // (a long pipeline is stepped again and again), it still looks now and then, as
        // Redis's loop does on every turn, so that a newly ready client is not starved.
        let mut since_poll = 0;
        loop {
            let job = {
                let mut c = self.coord.lock();
                loop {
                    if !c.polling
                        && (since_poll >= POLL_EVERY || c.queue.is_empty() && done.is_empty())
                    {
                        c.polling = true;
                        let wait = c.queue.is_empty() && done.is_empty();
                        break Job::Poll { wait };
                    }
                    if let Some((token, events)) = c.queue.pop_front() {
                        break Job::Step(token, events);
                    }
                    if !done.is_empty() {
                        break Job::Flush;
                    }
                    c.parked += 1;
                    self.work.wait(&mut c);
                    c.parked -= 1;
                }
            };
            match job {
                Job::Step(token, events) => {
                    since_poll += 1;
                    self.step(token, events, &mut done);
                    if done.len() >= BATCH {
                        self.flush(&mut done);
                    }
                }
                Job::Flush => self.flush(&mut done),
                Job::Poll { wait } => {
                    since_poll = 0;
                    self.poll(&mut events, wait);
                }
            }
        }
    }

    /// Waits for ready sockets and queues them.
    fn poll(&self, events: &mut [libc::epoll_event], wait: bool) {
        // Nothing fed to a monitor waits in this worker while it polls.
        self.shared.ops.monitors.end_batch();
        let epoll_wait = |events: &mut [libc::epoll_event], timeout| {
            // SAFETY: `events` is a writable array of its length.
            unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    timeout,
                )
            }
        };
        // Busy polling, under heavy load only (the last sleep was short): a worker asleep in
        // epoll_wait must be woken by the next client's write, and on loopback that client
        // pays for the wake-up; one that is still looking pays nothing.
        let spin = wait
            && self.busy_poll > Duration::ZERO
            && self.last_sleep_us.load(Relaxed) < BUSY_POLL_IF_SLEPT_UNDER_US;
        let mut n = 0;
        if !wait || spin {
            let until = Instant::now() + self.busy_poll;
            loop {
                n = epoll_wait(events, 0);
                if n != 0 || !spin || Instant::now() >= until {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        if n == 0 && wait {
            let slept = Instant::now();
            n = epoll_wait(events, -1);
            let us = slept.elapsed().as_micros().min(u64::MAX as u128) as u64;
            self.last_sleep_us.store(us, Relaxed);
        }
        let mut c = self.coord.lock();
        c.polling = false;
        for ev in &events[..n.max(0) as usize] {
            if ev.u64 == WAKE_TOKEN {
                let mut buf = [0u8; 8];
                // SAFETY: reads at most 8 bytes into `buf`; the eventfd is non-blocking.
                unsafe { libc::read(self.wake.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
            } else {
                c.queue.push_back((ev.u64, ev.events));
            }
        }
        drop(c);
        self.progress.fetch_add(1, Relaxed);
        if n > 0 && self.watch_idle.load(Relaxed) {
            self.watch.1.notify_one();
        }
    }

    /// Reads and runs one client's requests; its replies wait in `done` for `flush`.
    fn step(&self, token: u64, events: u32, done: &mut Vec<Done>) {
        let Some(conn) = self.lookup(token) else {
            return;
        };
        if !conn.claim() {
            return;
        }
        let mut guard = conn.session.lock();
        let Some(s) = guard.as_mut() else {
            return;
        };
        let next = catch_unwind(AssertUnwindSafe(|| {
            s.input(&self.shared, events & HUNG_UP != 0, events == WOKEN)
        }))
        .unwrap_or_else(|_| {
            log::error!("closing client {}: its step panicked", s.client.id);
            Next::Close
        });
        let (ticket, fsync) = (s.aof_ticket(), s.awaits_fsync());
        drop(guard);
        self.progress.fetch_add(1, Relaxed);
        done.push(Done {
            conn,
            next,
            ticket,
            fsync,
        });
    }

    /// Writes the AOF records of the stepped sessions, once for all of them, then their
    /// replies.
    fn flush(&self, done: &mut Vec<Done>) {
        self.shared.ops.monitors.end_batch();
        if let Some(ticket) = done.iter().filter_map(|d| d.ticket).max() {
            let aof = self.shared.aof_handle();
            if done.iter().any(|d| d.fsync) {
                // An fsync takes milliseconds: let someone else serve the others meanwhile.
                self.nudge();
            }
            aof.write_through(ticket);
        }
        for d in done.drain(..) {
            let mut guard = d.conn.session.lock();
            let Some(s) = guard.as_mut() else {
                continue;
            };
            let out = if d.next == Next::Close || d.next == Next::Detach {
                d.next
            } else {
                catch_unwind(AssertUnwindSafe(|| s.output(&self.shared))).unwrap_or(Next::Close)
            };
            drop(guard);
            if out == Next::Close {
                self.close(&d.conn);
                continue;
            }
            if out == Next::Detach {
                self.detach(&d.conn);
                continue;
            }
            let again = d.conn.release();
            // Again with replies unsent: more input waits, which the client may send only
            // once it has written the rest of its pipeline (see `Session::input`).
            if again || d.next == Next::Again {
                self.coord.lock().queue.push_back((d.conn.token, 0));
            }
        }
        self.progress.fetch_add(1, Relaxed);
    }

    /// Makes sure a worker is free to serve the queue and the epoll set.
    fn nudge(&self) {
        self.nudge_locked(&self.coord.lock());
    }

    fn nudge_locked(&self, c: &Coord) {
        match c.nudged() {
            Some(Taker::Poller) => {
                let one: u64 = 1;
                // SAFETY: writes 8 bytes from `one` to the eventfd.
                unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
            }
            Some(Taker::Parked) => {
                self.work.notify_one();
            }
            None => {}
        }
    }

    /// Gets a worker to what another thread queued (a wake-up, the cron's re-queue). A worker
    /// busy with steps takes the queue before it parks or polls, so it is left to: waking a
    /// parked one instead put a second worker on the clients for good, each a thread switch
    /// away from the other and sharing their locks (a monitor, woken every slice by the
    /// watchdog, spread a one-worker redis-benchmark load over all five workers and cost 13 %
    /// of its rate). A busy worker stuck in a long command is the watchdog's, within a slice.
    fn hand_over_locked(&self, c: &Coord) {
        if !c.left_to_busy() {
            self.nudge_locked(c);
        }
    }

    /// Wakes a worker when ready clients or the epoll set have gone a slice unattended, and
    /// runs the periodic checks.
    fn watchdog(&self) {
        let mut last_progress = 0;
        let mut last_cron = Instant::now();
        let mut quiet_ticks = 0u32;
        let mut cron_cursor = 0;
        let mut cron_passes = 0u32;
        loop {
            let idle = quiet_ticks > 50;
            self.watch_idle.store(idle, Relaxed);
            {
                let mut g = self.watch.0.lock();
                let wait = if idle { CRON } else { SLICE };
                self.watch.1.wait_for(&mut g, wait);
            }
            let progress = self.progress.load(Relaxed);
            let stuck = progress == last_progress;
            last_progress = progress;
            {
                let c = self.coord.lock();
                let unattended = !c.queue.is_empty() || !c.polling;
                if unattended && c.parked > 0 && stuck {
                    self.work.notify_one();
                }
                quiet_ticks = if c.queue.is_empty() && c.polling && stuck {
                    quiet_ticks.saturating_add(1)
                } else {
                    0
                };
            }
            self.shared.ops.monitors.flush();
            if last_cron.elapsed() >= CRON {
                last_cron = Instant::now();
                self.cron(&mut cron_cursor);
                cron_passes += 1;
                if cron_passes.is_multiple_of(10) {
                    crate::evict::trim_heap();
                    self.shared.snapshots.saver.check();
                }
            }
        }
    }

    /// Closes the clients idle beyond `timeout`, killed, or not reading their replies, and
    /// MIGRATE's idle cached connections; resizes the others' input buffers.
    fn cron(&self, cursor: &mut usize) {
        if CRON_PAUSED.load(Relaxed) {
            return;
        }
        self.shared.stats.sample_rates();
        crate::commands::dump::close_idle_migrate_sockets();
        crate::util::children::reap();
        // A tenth of the connections per pass (all of them when there are few), so each is
        // visited about once a second, as Redis's clientsCron visits numclients/hz per call:
        // 10,000 idle connections cost a thousand visits every 100 ms, not ten thousand.
        let conns: Vec<Arc<Conn>> = {
            let slab = self.conns.lock();
            let len = slab.entries.len();
            let n = len.div_ceil(CRON_PASSES).max(CRON_MIN_VISITS).min(len);
            let start = *cursor % len.max(1);
            *cursor = start + n;
            (start..start + n)
                .filter_map(|i| slab.entries[i % len].1.clone())
                .collect()
        };
        let mut freed = 0;
        for conn in conns {
            if !conn.claim() {
                continue;
            }
            let expired = conn.session.lock().as_mut().is_some_and(|s| {
                let expired = s.expired(&self.shared);
                if !expired {
                    freed += s.resize_buffers();
                }
                expired
            });
            if expired {
                self.close(&conn);
            } else if conn.release() {
                // An event came while the cron held it: stepped as that event would be.
                let mut c = self.coord.lock();
                c.queue.push_back((conn.token, 0));
                self.hand_over_locked(&c);
            }
        }
        // Buffers given back by many clients at once (a crowd of subscribers gone idle) sit
        // between live blocks, where glibc keeps their pages: hand those back to the system,
        // as jemalloc's decay does for Redis (10,000 idle subscribers held 18 KB each, Redis
        // 10 KB).
        if freed >= PURGE_AFTER_FREEING {
            crate::util::alloc::purge();
        }
    }
}

/// Cron passes over which every connection is visited once (10 a second).
const CRON_PASSES: usize = 10;
/// Connections visited per pass at least (Redis's CLIENTS_CRON_MIN_ITERATIONS is 5; visiting a
/// few dozen costs nothing and keeps small servers' checks at 100 ms).
const CRON_MIN_VISITS: usize = 50;

/// DEBUG PAUSE-CRON: the periodic checks (idle clients, MIGRATE's idle sockets, and the
/// sweeper's tracking-table limit) stop until it is cleared.
static CRON_PAUSED: AtomicBool = AtomicBool::new(false);

pub fn pause_cron(on: bool) {
    CRON_PAUSED.store(on, SeqCst);
}

pub fn cron_paused() -> bool {
    CRON_PAUSED.load(Relaxed)
}

impl Wake for Pool {
    /// Queues the connection as if epoll had reported it, and gets a worker to it. A worker
    /// that wakes a client (a push serving a blocked client, CLIENT KILL) takes it from the
    /// queue itself once its step is over, as Redis's loop would: waking another worker for it
    /// would cost a thread switch per served client (the watchdog still moves it elsewhere if
    /// the step runs long).
    fn wake(&self, token: u64) {
        let mut c = self.coord.lock();
        c.queue.push_back((token, WOKEN));
        if !crate::clients::on_worker() {
            self.hand_over_locked(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn conn() -> Conn {
        Conn {
            token: 0,
            fd: -1,
            state: AtomicU8::new(IDLE),
            session: Mutex::new(None),
        }
    }

    #[test]
    fn a_wake_up_goes_to_the_poller_then_a_busy_worker_then_a_parked_one() {
        let at = |workers, parked, polling| Coord {
            workers,
            parked,
            polling,
            ..Coord::default()
        };
        // One worker busy, four parked: the busy one takes it, no thread is woken.
        assert!(at(5, 4, false).left_to_busy());
        // Busy, polling and parked ones: the poller, as it may be spinning.
        assert!(!at(5, 3, true).left_to_busy());
        assert_eq!(at(5, 3, true).nudged(), Some(Taker::Poller));
        // Nobody busy or polling: a parked one is woken.
        assert!(!at(5, 5, false).left_to_busy());
        assert_eq!(at(5, 5, false).nudged(), Some(Taker::Parked));
        // A worker about to wait on an fsync wants another one: never itself.
        assert_eq!(at(5, 4, false).nudged(), Some(Taker::Parked));
        assert_eq!(at(1, 0, false).nudged(), None);
    }

    /// A pool on its own listener, and a client connected to it and served once.
    fn pool_with_client() -> (Arc<Shared>, TcpStream) {
        pool_with_client_of(crate::config::Config::default())
    }

    fn pool_with_client_of(config: crate::config::Config) -> (Arc<Shared>, TcpStream) {
        let shared = Arc::new(Shared::new(config));
        let pool = Pool::new(shared.clone(), Duration::ZERO).unwrap();
        pool.start(2).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        pool.admit(Socket::Tcp(stream), None, Duration::ZERO)
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        use std::io::{Read, Write};
        client.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 7];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
        (shared, client)
    }

    #[test]
    fn bytes_delivered_from_another_thread_reach_an_idle_client() {
        use std::io::Read;
        let (shared, mut client) = pool_with_client();
        let handle = shared.clients.all().pop().expect("registered");
        // The client sends nothing: only the wake-up can get its worker to write.
        let from = std::thread::spawn(move || {
            handle.deliver(b"+one\r\n");
            handle.deliver(b"+two\r\n");
        });
        from.join().unwrap();
        let mut buf = [0u8; 12];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+one\r\n+two\r\n");
        // And again, once the first wake-up has been answered.
        shared.clients.all()[0].deliver(b":3\r\n");
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b":3\r\n");
    }

    #[test]
    fn deliveries_beyond_the_output_limit_close_the_client() {
        use std::io::Read;
        let mut config = crate::config::Config::default();
        config.client_output_buffer_limit[0].hard = 1 << 20;
        let (shared, mut client) = pool_with_client_of(config);
        let handle = shared.clients.all().pop().expect("registered");
        // Never read: the socket's buffers fill, then the output buffer passes the limit.
        let chunk = vec![b'x'; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !shared.clients.is_empty() {
            assert!(Instant::now() < deadline, "never closed");
            handle.deliver(&chunk);
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut all = Vec::new();
        let _ = client.read_to_end(&mut all);
        assert!(all.len() < 64 << 20, "{} bytes", all.len());
    }

    #[test]
    fn a_killed_idle_client_is_closed_by_its_worker() {
        use std::io::Read;
        let (shared, mut client) = pool_with_client();
        shared.clients.all()[0].kill();
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).unwrap(), 0, "closed");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !shared.clients.is_empty() {
            assert!(Instant::now() < deadline, "still registered");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn an_event_for_a_held_connection_is_not_lost() {
        let c = conn();
        assert!(c.claim());
        // Another worker's event while this one holds it: refused, but remembered.
        assert!(!c.claim());
        assert!(!c.claim());
        assert!(c.release(), "the holder must step it again");
        assert!(c.claim());
        assert!(!c.release());
    }

    #[test]
    fn a_closed_connection_cannot_be_claimed() {
        let c = conn();
        assert!(c.claim());
        c.state.store(CLOSED, SeqCst);
        assert!(!c.claim());
    }

    #[test]
    fn claims_from_many_threads_admit_one_holder_at_a_time() {
        let c = Arc::new(conn());
        let inside = Arc::new(AtomicU8::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, inside) = (c.clone(), inside.clone());
                std::thread::spawn(move || {
                    let mut held = 0;
                    for _ in 0..20_000 {
                        if c.claim() {
                            assert_eq!(inside.fetch_add(1, SeqCst), 0, "two holders");
                            held += 1;
                            inside.fetch_sub(1, SeqCst);
                            c.release();
                        }
                    }
                    held
                })
            })
            .collect();
        let total: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(total > 0);
    }
}
