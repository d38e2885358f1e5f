//! The master side: serving SYNC and PSYNC to replicas (real Redis's as well as rudis's), as
//! Redis's replication.c does.
//!
//! A replica connects as a client, says who it is (REPLCONF listening-port, capa) and asks
//! to sync. From then on it is no longer a client of the pool: its connection is handed to a
//! thread of its own (the link), which
//! - continues it from the backlog when it asks for a part of this history that is still
//!   held (`+CONTINUE`), or sends it a point-in-time snapshot of the data (`+FULLRESYNC`,
//!   then the RDB with its length) taken at a known offset of the stream;
//! - then writes the stream to it from that offset as the stream grows (see `backlog`: the
//!   bytes are shared by every replica, no copy per replica), and reads its REPLCONF ACKs,
//!   which WAIT and the min-replicas gate count.
//!
//! A link thread per replica, rather than a place in the pool: a replica is a long stream
//! one way, not requests and replies, and its socket may be full for seconds during a full
//! sync; a thread of its own writes it with blocking-style waits and never holds a worker.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::backlog::{Backlog, Replica, ReplicaState};
use crate::client::Client;
use crate::rdb::file::ReplPoint;
use crate::resp::parse::{Limits, Parsed, RequestParser};
use crate::resp::reply::encode_command;
use crate::shared::Shared;
use crate::tls::Transport;
use crate::util::clock::now_ms;

/// What a replica said of itself with REPLCONF before it asked to sync.
#[derive(Debug, Clone, Default)]
pub struct ReplConf {
    /// `listening-port`: where it serves clients (what INFO and Sentinel show).
    pub port: u16,
    /// `ip-address`: the address it announces, instead of the connection's.
    pub ip: Option<String>,
    pub capa_psync2: bool,
    /// `rdb-only 1` (redis-cli --rdb): the snapshot, then the link ends.
    pub rdb_only: bool,
    /// `rdb-filter-only`: a snapshot without the data, with the functions if true
    /// (redis-cli --functions-rdb sends `functions`; an empty filter leaves them out too).
    pub rdb_filter: Option<bool>,
}

/// The request that made a client a replica.
#[derive(Debug, Clone)]
pub enum SyncRequest {
    /// The old protocol (redis-cli --replica, --rdb): a snapshot, then the stream; no ACKs.
    Sync,
    /// PSYNC replid offset: `offset` is the next byte the replica wants.
    Psync { replid: String, offset: i64 },
}

/// A connection leaving the pool for a link (see `connection::Session::detach`).
pub struct Detached {
    pub stream: Transport,
    pub client: Client,
    /// Replies the session had not written yet: they go first.
    pub unsent: Vec<u8>,
    /// Input after the SYNC request: the replica's first ACKs, perhaps.
    pub input: Vec<u8>,
}

/// The blocking registry's entry WAIT waits on: no database has this number, so no key
/// shares it.
pub const WAIT_DB: usize = usize::MAX;
pub const WAIT_KEY: &[u8] = b"";

/// How much of the stream a link copies out of the backlog at a time.
const CHUNK: usize = 256 * 1024;

/// Starts the link thread for a replica.
pub fn serve(shared: Arc<Shared>, conn: Detached) {
    let name = format!("repl-to-{}", conn.client.id);
    conn.client.handle.replica.store(true, Ordering::Relaxed);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let mut conn = conn;
        run(&shared, &mut conn);
        crate::connection::client_gone(&shared, &mut conn.client);
    });
    if let Err(e) = spawned {
        log::error!("cannot start a replica's link: {e}");
    }
}

/// Why a link ended.
type LinkResult = Result<(), String>;

fn run(shared: &Shared, conn: &mut Detached) {
    let Some(req) = conn.client.handoff.take() else {
        return;
    };
    let conf = conn.client.replconf.take().map(|b| *b).unwrap_or_default();
    let ip = conf.ip.clone().unwrap_or_else(|| {
        conn.client
            .addr
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    });
    let replica = match Replica::new(conn.client.id, ip, conf.port) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            log::warn!("cannot serve a replica: {e}");
            return;
        }
    };
    let name = format!("{}:{}", replica.ip, replica.port);
    let mut link = Link {
        shared,
        replica: &replica,
        stream: &mut conn.stream,
        handle: conn.client.handle.clone(),
        input: std::mem::take(&mut conn.input),
        timeout: super::timeout(&shared.config.read()),
    };
    let unsent = std::mem::take(&mut conn.unsent);
    let res = (|| -> LinkResult {
        link.write_all(&unsent)?;
        let continued = match &req {
            SyncRequest::Psync { replid, offset } => {
                try_continue(shared, &replica, replid, *offset, conf.capa_psync2)
            }
            SyncRequest::Sync => None,
        };
        match continued {
            Some(line) => link.write_all(line.as_bytes())?,
            None => {
                link.full_sync(matches!(req, SyncRequest::Psync { .. }), conf.rdb_filter)?;
                if conf.rdb_only {
                    return Ok(());
                }
            }
        }
        log::info!("Synchronization with replica {name} succeeded");
        link.stream_loop(matches!(req, SyncRequest::Psync { .. }))
    })();
    if let Err(e) = res {
        log::warn!("Connection with replica {name} lost: {e}");
    }
    let backlog = &shared.repl.backlog;
    let mut g = backlog.lock();
    g.replicas.retain(|r| !Arc::ptr_eq(r, &replica));
    if g.replicas.is_empty() {
        g.alone_since = now_ms();
    }
    drop(g);
    // Waiters on WAIT may count one replica fewer: nothing to wake (a count only falls).
}

/// A partial resync when the replica's history is ours (or the one ours continues, up to
/// where it forked) and the backlog still holds what it lacks: the line to answer with.
fn try_continue(
    shared: &Shared,
    replica: &Arc<Replica>,
    replid: &str,
    offset: i64,
    psync2: bool,
) -> Option<String> {
    let (ours, id2, second) = {
        let st = shared.repl.state();
        (st.replid.clone(), st.replid2.clone(), st.second_offset)
    };
    let refused = || {
        if replid != "?" {
            shared
                .stats
                .sync_partial_err
                .fetch_add(1, Ordering::Relaxed);
        }
    };
    if replid != ours && !(replid == id2 && offset <= second) {
        refused();
        if replid != "?" {
            log::info!(
                "Partial resynchronization not accepted: Replication ID mismatch (Replica \
                 asked for '{replid}', my replication IDs are '{ours}' and '{id2}')"
            );
        } else {
            log::info!(
                "Full resync requested by replica {}:{}",
                replica.ip,
                replica.port
            );
        }
        return None;
    }
    let mut g = shared.repl.backlog.lock();
    if !g.holds(offset) {
        refused();
        log::info!(
            "Unable to partial resync with replica {}:{} for lack of backlog (Replica request \
             was: {offset}).",
            replica.ip,
            replica.port
        );
        return None;
    }
    replica.sent.store(offset - 1, Ordering::SeqCst);
    replica.ack.store(offset - 1, Ordering::SeqCst);
    replica.ack_ms.store(now_ms(), Ordering::SeqCst);
    replica.set_state(ReplicaState::Online);
    g.replicas.push(replica.clone());
    shared.stats.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
    log::info!(
        "Partial resynchronization request from {}:{} accepted. Sending {} bytes of backlog \
         starting from offset {offset}.",
        replica.ip,
        replica.port,
        g.offset + 1 - offset
    );
    Some(if psync2 {
        format!("+CONTINUE {ours}\r\n")
    } else {
        "+CONTINUE\r\n".to_string()
    })
}

/// A snapshot's bytes, written by the snapshot (possibly from other threads' writes).
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl crate::dump::Output for Buffer {}

/// A snapshot and where the stream stood at its instant, shared by the replicas it serves.
type Snapshot = Arc<Result<(Vec<u8>, ReplPoint), String>>;

/// Replicas waiting for the next snapshot: those that ask within `repl-diskless-sync-delay`
/// of the first share one (Redis's diskless sync delay), so that replicas started together
/// cost one snapshot.
struct Batch {
    /// Only under `BATCH`'s lock: who the snapshot is for.
    replicas: Mutex<Vec<Arc<Replica>>>,
    result: Mutex<Option<Snapshot>>,
    done: parking_lot::Condvar,
}

static BATCH: Mutex<Option<Arc<Batch>>> = Mutex::new(None);

/// The snapshot a full sync of `replica` starts from: taken by the first replica of a batch
/// once the delay is over, waited for by the others.
fn batched_snapshot(shared: &Shared, replica: &Arc<Replica>) -> Snapshot {
    let (batch, first) = {
        let mut b = BATCH.lock();
        let (batch, first) = match &*b {
            Some(batch) => (batch.clone(), false),
            None => {
                let batch = Arc::new(Batch {
                    replicas: Mutex::new(Vec::new()),
                    result: Mutex::new(None),
                    done: parking_lot::Condvar::new(),
                });
                *b = Some(batch.clone());
                (batch, true)
            }
        };
        batch.replicas.lock().push(replica.clone());
        (batch, first)
    };
    if first {
        let (delay, most) = {
            let c = shared.config.read();
            let diskless = c.get("repl-diskless-sync").is_none_or(|v| v == "yes");
            (
                if diskless {
                    c.number("repl-diskless-sync-delay", 0)
                } else {
                    0
                },
                c.number("repl-diskless-sync-max-replicas", 0),
            )
        };
        let until = Instant::now() + Duration::from_secs(delay);
        while Instant::now() < until {
            let n = batch.replicas.lock().len() as u64;
            if most > 0 && n >= most {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let group = {
            let mut b = BATCH.lock();
            *b = None;
            batch.replicas.lock().clone()
        };
        let result = Arc::new(snapshot_for(shared, &group));
        *batch.result.lock() = Some(result.clone());
        batch.done.notify_all();
        return result;
    }
    let mut r = batch.result.lock();
    loop {
        if let Some(res) = &*r {
            return res.clone();
        }
        batch.done.wait_for(&mut r, Duration::from_millis(100));
    }
}

/// A snapshot without the data for `replica` (see `ReplConf::rdb_filter`), and where the
/// stream stands: it receives the stream from there, as from any snapshot.
fn filtered_snapshot(
    shared: &Shared,
    replica: &Arc<Replica>,
    with_functions: bool,
) -> (Vec<u8>, ReplPoint) {
    let functions = if with_functions {
        crate::persist::functions(shared)
    } else {
        Vec::new()
    };
    let compress = crate::commands::dump::rdb_options(shared).compression;
    let point = stream_from_here(shared, std::slice::from_ref(replica));
    let payload = crate::rdb::file::without_data(compress, &point, &functions);
    (payload, point)
}

/// A snapshot's instant: `replicas` receive the stream from where it stands now (the backlog
/// made, and on a master fed, if it was not yet); returns that point.
fn stream_from_here(shared: &Shared, replicas: &[Arc<Replica>]) -> ReplPoint {
    let (replid, stream_db, is_replica) = {
        let st = shared.repl.state();
        (st.replid.clone(), st.master_db, st.master.is_some())
    };
    let backlog = &shared.repl.backlog;
    let mut g = backlog.lock();
    g.create();
    if !is_replica {
        // This replica's stream starts with no database selected (Redis's slaveseldb = -1):
        // the next write selects its own.
        g.forget_db();
        backlog.set_feeding(true);
    }
    for replica in replicas {
        replica.sent.store(g.offset, Ordering::SeqCst);
        replica.ack.store(g.offset, Ordering::SeqCst);
        replica.set_state(ReplicaState::SendBulk);
    }
    ReplPoint {
        stream_db: if is_replica { stream_db } else { 0 },
        replid,
        offset: g.offset,
    }
}

/// A point-in-time snapshot of this server for `replicas`, and where the stream stood at its
/// instant. The replicas, registered, receive the stream from there.
fn snapshot_for(
    shared: &Shared,
    replicas: &[Arc<Replica>],
) -> Result<(Vec<u8>, ReplPoint), String> {
    let snaps = &shared.snapshots;
    // One snapshot at a time: replicas arriving during a BGSAVE wait for it to end.
    while !snaps.try_begin() {
        if replicas.iter().all(|r| r.dropped.load(Ordering::SeqCst)) {
            return Err("dropped while waiting for a snapshot".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    crate::util::children::background_job();
    // On a replica, the applier passes each batch of its master's stream on after applying
    // it: held from before the instant to it, no batch is applied but not yet passed on.
    let mut gate = shared.repl.is_replica().then(|| shared.repl.apply.lock());
    let buffer = Buffer::default();
    let mut point = None;
    let opts = crate::commands::dump::rdb_options(shared);
    let functions = crate::persist::functions(shared);
    let dirty = shared.stats.dirty.get();
    let res = {
        let mut instant = || {
            let p = stream_from_here(shared, replicas);
            drop(gate.take());
            point = Some(p.clone());
            p
        };
        snaps.write_rdb(
            &shared.store,
            Box::new(buffer.clone()),
            opts,
            &functions,
            dirty,
            None,
            Some(&mut instant),
        )
    };
    snaps.release();
    let (stats, _) = res.map_err(|e| format!("the snapshot failed: {e}"))?;
    let names: Vec<String> = replicas
        .iter()
        .map(|r| format!("{}:{}", r.ip, r.port))
        .collect();
    log::info!(
        "Snapshot for replicas {} taken: {} keys, {} bytes in {:.3} seconds",
        names.join(" "),
        stats.keys,
        stats.bytes,
        stats.seconds
    );
    let bytes = std::mem::take(&mut *buffer.0.lock());
    let point = point.ok_or("the snapshot ended before its instant")?;
    Ok((bytes, point))
}

struct Link<'a> {
    shared: &'a Shared,
    replica: &'a Arc<Replica>,
    stream: &'a mut Transport,
    handle: Arc<crate::clients::ClientHandle>,
    input: Vec<u8>,
    timeout: Duration,
}

impl Link<'_> {
    fn fd(&self) -> i32 {
        self.stream.socket().as_raw_fd()
    }

    /// Waits up to `ms` for the socket (`events`) or the replica's wake-up; the socket's
    /// revents.
    fn poll(&self, events: i16, ms: i32) -> i16 {
        let mut fds = [
            libc::pollfd {
                fd: self.fd(),
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: self.replica.wake_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a writable array of two pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n > 0 && fds[1].revents != 0 {
            self.replica.drain_wake();
        }
        if n > 0 {
            fds[0].revents
        } else {
            0
        }
    }

    fn check_alive(&self) -> LinkResult {
        if self.replica.dropped.load(Ordering::SeqCst) {
            return Err("the link was dropped".into());
        }
        if self.handle.is_killed() {
            return Err("killed".into());
        }
        Ok(())
    }

    /// Writes as much of `buf` as the socket takes now.
    fn write_some(&mut self, buf: &[u8]) -> Result<usize, String> {
        let mut done = 0;
        while done < buf.len() {
            match self.stream.write(&buf[done..]) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        self.shared
            .stats
            .net_repl_output_bytes
            .fetch_add(done as u64, Ordering::Relaxed);
        if self.stream.holds_output() {
            match self.stream.flush_held() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(done)
    }

    /// Writes all of `buf`, waiting for the socket; the replica's ACKs read meanwhile are
    /// kept for later.
    fn write_all(&mut self, buf: &[u8]) -> LinkResult {
        let mut done = 0;
        let mut last_progress = Instant::now();
        while done < buf.len() || self.stream.holds_output() {
            self.check_alive()?;
            let n = self.write_some(&buf[done..])?;
            if n > 0 {
                last_progress = Instant::now();
            }
            done += n;
            if done < buf.len() || self.stream.holds_output() {
                if last_progress.elapsed() > self.timeout {
                    return Err("timeout writing to the replica".into());
                }
                self.poll(libc::POLLOUT, 100);
            }
        }
        Ok(())
    }

    /// `filter`: the replica asked for no data (`rdb-filter-only`), and for the functions if
    /// true: a snapshot of its own, the data's walk not needed.
    fn full_sync(&mut self, psync: bool, filter: Option<bool>) -> LinkResult {
        let r = self.replica;
        log::info!(
            "Replica {}:{} asks for synchronization; starting a snapshot for it",
            r.ip,
            r.port
        );
        self.shared.repl.backlog.lock().replicas.push(r.clone());
        self.shared.stats.sync_full.fetch_add(1, Ordering::Relaxed);
        let filtered;
        let snapshot;
        let (payload, point) = match filter {
            Some(with_functions) => {
                filtered = filtered_snapshot(self.shared, r, with_functions);
                (&filtered.0, &filtered.1)
            }
            None => {
                snapshot = batched_snapshot(self.shared, r);
                match &*snapshot {
                    Ok((p, at)) => (p, at),
                    Err(e) => return Err(e.clone()),
                }
            }
        };
        if psync {
            let line = format!("+FULLRESYNC {} {}\r\n", point.replid, point.offset);
            self.write_all(line.as_bytes())?;
        }
        self.write_all(format!("${}\r\n", payload.len()).as_bytes())?;
        self.write_all(payload)?;
        r.ack_ms.store(now_ms(), Ordering::SeqCst);
        r.set_state(ReplicaState::Online);
        Ok(())
    }

    /// Sends the stream as it grows and reads the replica's ACKs, until the link ends.
    /// `acks`: the replica speaks PSYNC and so acknowledges every second (one that does
    /// not, redis-cli --replica, is never timed out).
    fn stream_loop(&mut self, acks: bool) -> LinkResult {
        let shared = self.shared;
        let r = self.replica;
        let backlog = &shared.repl.backlog;
        let mut parser = RequestParser::new(Limits::default());
        let mut held = Held::new(r);
        let pending = &mut held.buf;
        let mut pos = 0;
        let mut buf = vec![0u8; 16 * 1024];
        self.take_acks(&mut parser)?;
        loop {
            self.check_alive()?;
            let mut idle = false;
            if pos == pending.len() {
                pending.clear();
                pos = 0;
                let g = backlog.lock();
                let next = r.sent.load(Ordering::SeqCst) + 1;
                if next <= g.offset {
                    if g.copy_from(next, CHUNK, pending).is_none() {
                        return Err("it fell behind what the backlog holds".into());
                    }
                    r.held.store(pending.capacity() as u64, Ordering::Relaxed);
                } else {
                    // Under the lock that found nothing: the next feed wakes this link.
                    Backlog::park(r);
                    idle = true;
                }
            }
            if pos < pending.len() {
                let n = self.write_some(&pending[pos..])?;
                pos += n;
                r.sent.fetch_add(n as i64, Ordering::SeqCst);
            }
            // The socket is full: wait for room. Nothing to send: wait for the stream. More
            // to send: only look whether the replica said something.
            let full = pos < pending.len() || self.stream.holds_output();
            let events = libc::POLLIN | if full { libc::POLLOUT } else { 0 };
            let ready = self.poll(events, if full || idle { 100 } else { 0 });
            if ready & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                loop {
                    match self.stream.read(&mut buf) {
                        Ok(0) => return Err("connection closed by the replica".into()),
                        Ok(n) => {
                            self.shared
                                .stats
                                .net_repl_input_bytes
                                .fetch_add(n as u64, Ordering::Relaxed);
                            self.input.extend_from_slice(&buf[..n]);
                            if n < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                self.take_acks(&mut parser)?;
            }
            if acks {
                let last = r.ack_ms.load(Ordering::Relaxed);
                if now_ms().saturating_sub(last) > self.timeout.as_millis() as u64 {
                    return Err("timeout: no ACK from the replica".into());
                }
            }
        }
    }

    /// Applies the REPLCONF ACKs read so far; other requests a replica sends are ignored, as
    /// Redis ignores them from a replica.
    fn take_acks(&mut self, parser: &mut RequestParser) -> LinkResult {
        let mut acked = false;
        loop {
            match parser.parse(&self.input) {
                Ok(Parsed::Request { .. }) => {
                    let argv = parser.argv(&self.input);
                    if argv.len() >= 3
                        && argv[0].eq_ignore_ascii_case(b"replconf")
                        && argv[1].eq_ignore_ascii_case(b"ack")
                    {
                        if let Some(off) = crate::resp::parse::parse_i64(argv[2]) {
                            self.replica.ack.fetch_max(off, Ordering::SeqCst);
                            self.replica.ack_ms.store(now_ms(), Ordering::SeqCst);
                            acked = true;
                        }
                    }
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => return Err(format!("protocol error from the replica: {e}")),
            }
        }
        let start = parser.request_start();
        self.input.drain(..start);
        parser.rebase(start);
        if acked {
            let shared = self.shared;
            shared.blocking.signal(WAIT_DB, WAIT_KEY);
            shared.blocking.drain(shared);
        }
        Ok(())
    }
}

/// Asks every replica to acknowledge what it has (WAIT): `REPLCONF GETACK *` in the stream.
pub fn request_acks(shared: &Shared) {
    let mut cmd = Vec::new();
    encode_command(&mut cmd, &[&b"REPLCONF"[..], b"GETACK", b"*"]);
    shared.repl.backlog.feed_raw(&cmd);
}

/// The master's periodic work, once a second (and a FAILOVER's check, ten times a second):
/// PINGs in the stream (so that replicas see the link alive, `repl-ping-replica-period`), the
/// backlog's settings and output limits, and freeing it once no replica has been attached for
/// `repl-backlog-ttl` seconds.
pub fn spawn_cron(shared: Arc<Shared>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("repl-cron".into())
        .spawn(move || {
            let mut last_ping = Instant::now();
            let mut last_cron = Instant::now();
            loop {
                // A failover is checked more often, as Redis runs its cron every 100 ms
                // during one: the writes are paused meanwhile.
                std::thread::sleep(Duration::from_millis(100));
                super::failover::tick(&shared);
                if last_cron.elapsed() >= Duration::from_secs(1) {
                    last_cron = Instant::now();
                    cron(&shared, &mut last_ping);
                }
            }
        })?;
    Ok(())
}

fn cron(shared: &Shared, last_ping: &mut Instant) {
    let (size, limit, period, ttl) = {
        let c = shared.config.read();
        (
            super::backlog_size(&c),
            c.client_output_buffer_limit[1],
            c.number("repl-ping-replica-period", 10),
            c.number("repl-backlog-ttl", 3600),
        )
    };
    let backlog = &shared.repl.backlog;
    let mut g = backlog.lock();
    g.size = size;
    g.hard_limit = limit.hard;
    g.check_soft_limit(limit.soft, limit.soft_seconds);
    let master = !shared.repl.is_replica();
    // No PING while a failover waits for a replica to match the stream's offset: it would
    // move the offset on (Redis skips it during a timed failover's pause).
    let failing_over = shared.repl.failover.active();
    if master
        && !failing_over
        && g.created
        && !g.replicas.is_empty()
        && last_ping.elapsed().as_secs() >= period
    {
        drop(g);
        *last_ping = Instant::now();
        let mut ping = Vec::new();
        encode_command(&mut ping, &[&b"PING"[..]]);
        backlog.feed_raw(&ping);
        return;
    }
    if master
        && g.created
        && g.replicas.is_empty()
        && ttl > 0
        && now_ms().saturating_sub(g.alone_since) / 1000 >= ttl
    {
        g.free();
        backlog.set_feeding(false);
        drop(g);
        // As Redis: with no backlog, no replica can continue the old history anyway.
        let mut st = shared.repl.state();
        st.replid = super::random_id();
        st.replid2 = "0".repeat(40);
        st.second_offset = -1;
        log::info!("Replication backlog freed after {ttl} seconds without connected replicas.");
    }
}

/// A link's copy of the stream for its socket, its room published as the replica's `held`
/// (the replica's memory for INFO and eviction) for as long as it exists: freed first, then
/// unpublished, so that eviction never counts it as the dataset's.
struct Held<'a> {
    buf: Vec<u8>,
    replica: &'a Replica,
}

impl<'a> Held<'a> {
    fn new(replica: &'a Replica) -> Self {
        let buf = Vec::with_capacity(CHUNK);
        replica.held.store(buf.capacity() as u64, Ordering::Relaxed);
        Held { buf, replica }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.buf));
        self.replica.held.store(0, Ordering::Relaxed);
    }
}
