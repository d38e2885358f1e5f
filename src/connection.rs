//! One client's session: its socket, its buffers and the read → parse → execute → write steps a
//! worker runs when the socket is ready (see `pool`).
//!
//! The socket is non-blocking, so no step waits on the client. A step reads once, runs every
//! complete request, and leaves the replies in one output buffer; the worker writes them after
//! the batch's AOF records are written (an acknowledged write is in the file), one write per
//! pipelined batch. A client that does not read its replies stops being read from once a
//! socket's worth is pending, and costs nothing until it reads again.
//!
//! Other threads reach the session only through its client's handle (see `clients`): what
//! they deliver to its outbox is moved into the output buffer at the start of a step, which
//! their wake-up brings about.
//!
//! Defences against hostile or careless clients, each closing only the offender: the parser's
//! protocol limits (answered with Redis's error), `client-query-buffer-limit` (unprocessed
//! input), `client-output-buffer-limit` (pending replies), `timeout` (idle clients) and
//! `client-write-timeout` (a client that never reads its replies).

use std::io::{ErrorKind, Write};
use std::sync::Arc;

use crate::tls::Transport;
use crate::util::net::Socket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::aof::AofWait;
use crate::client::{Client, Reply};
use crate::commands;
use crate::config::OutputLimit;
use crate::resp::parse::{Limits, Parsed, RequestParser};
use crate::resp::reply::sizing;
use crate::resp::{InBuf, ReplyBuf};
use crate::shared::Shared;

/// Pending replies beyond this stop the session from running further requests until they are
/// handed to the socket: a pipeline of large replies goes out as it runs. When the socket
/// takes no more (the client is not reading yet), the requests run still, as in Redis.
const OUT_FLUSH: usize = 64 * 1024;

pub const PROTECTED_MODE_ERROR: &[u8] = b"-DENIED Redis is running in protected mode because \
protected mode is enabled and no password is set for the default user. In this mode connections \
are only accepted from the loopback interface. If you want to connect from external computers to \
Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the \
command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from \
the same host the server is running, however MAKE SURE Redis is not publicly accessible from \
internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you \
can just disable the protected mode by editing the Redis configuration file, and setting the \
protected mode option to 'no', and then restarting the server. 3) If you started the server \
manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an \
authentication password for the default user. NOTE: You only need to do one of the above things \
in order for the server to start accepting connections from the outside.\r\n";

/// The `client-output-buffer-limit` class of a client: `normal`, or `pubsub` while it is
/// subscribed (Redis's getClientType).
fn output_class(pubsub: bool) -> usize {
    if pubsub {
        2
    } else {
        0
    }
}

/// What the worker does with the session after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do until the socket is ready again.
    Wait,
    /// More may be waiting (a full read, or requests held back while replies were pending):
    /// step again soon.
    Again,
    /// Close the connection now.
    Close,
    /// SYNC or PSYNC ran: the connection leaves the pool for a replica link of its own.
    Detach,
}

/// The limits a session obeys, read from the shared config once per step so that CONFIG SET
/// applies to connected clients too.
struct Policy {
    query_limit: usize,
    output: OutputLimit,
    password: bool,
}

impl Policy {
    /// `pubsub`: the client is subscribed, and so in Redis's `pubsub` output class.
    fn read(shared: &Shared, pubsub: bool) -> Policy {
        let c = shared.config.read();
        Policy {
            query_limit: c.client_query_buffer_limit.try_into().unwrap_or(usize::MAX),
            output: c.client_output_buffer_limit[output_class(pubsub)],
            password: shared.acl.requires_auth(),
        }
    }

    /// True when `pending` reply bytes break the hard limit (or the soft one, if it has no
    /// grace period).
    fn output_exceeded(&self, pending: usize) -> bool {
        let pending = pending as u64;
        let OutputLimit {
            hard,
            soft,
            soft_seconds,
        } = self.output;
        (hard > 0 && pending > hard) || (soft > 0 && soft_seconds == 0 && pending > soft)
    }
}

pub struct Session {
    stream: Transport,
    pub client: Client,
    inbuf: InBuf,
    parser: RequestParser,
    out: ReplyBuf,
    /// Bytes at the front of `out` already written.
    sent: usize,
    /// The most `out` held since `peak_reset_at` (Redis's buf_peak; see `resp::reply::sizing`).
    out_peak: usize,
    peak_reset_at: Instant,
    /// Since when replies have been pending that the socket would not take.
    unsent_since: Option<Instant>,
    /// QUIT, a protocol error or the end of the input: run nothing more, close once the
    /// replies are written.
    closing: bool,
    /// The peer has shut its side: read to the end, as no further event will say there is
    /// more to read.
    hung_up: bool,
    /// The last read left the socket empty, and no event has come since: a step for a
    /// wake-up (a reply another client delivered) need not read, and with edge-triggered
    /// epoll whatever arrives later brings its own event. Skipping that read saves a
    /// syscall per served blocked client, one that always failed with EAGAIN.
    drained: bool,
    /// A request CLIENT PAUSE holds back (see `ops::pause`): run first once the pause ends,
    /// before anything after it.
    held: Option<Vec<Vec<u8>>>,
}

/// What ends with a connected client, wherever it was served (a session, a replica link):
/// its watches, its wait, its subscriptions and its entry in the client registry.
pub fn client_gone(shared: &Shared, client: &mut Client) {
    commands::transaction::unwatch_all(shared, client);
    if client.blocked {
        shared
            .blocking
            .end(shared, client.id, crate::blocking::End::Gone);
    }
    shared
        .pubsub
        .unsubscribe_all(&mut client.subs, &client.handle);
    shared.tracking.disable(client.id, &client.tracking);
    shared.ops.client_gone(client.id);
    shared.clients.unregister(client.id);
    shared.stats.connected_clients.fetch_sub(1, Relaxed);
}

/// Runs one request, then applies CLIENT REPLY: a silenced command's replies are dropped
/// (pushes, which go through the outbox, are not), and SKIP lasts one command, as Redis's
/// resetClient moves CLIENT_REPLY_SKIP_NEXT to CLIENT_REPLY_SKIP.
fn run_request(shared: &Shared, client: &mut Client, out: &mut ReplyBuf, argv: &[&[u8]]) {
    let mark = out.len();
    commands::execute(shared, client, argv, out);
    if let Some(off) = crate::repl::backlog::take_written() {
        client.woff = off;
    }
    if client.reply != Reply::On && !client.postponed {
        if client.reply.silenced() {
            out.buf.truncate(mark);
        }
        client.reply = match client.reply {
            Reply::Skip => Reply::On,
            Reply::SkipNext => Reply::Skip,
            r => r,
        };
    }
}

/// Runs one request of a session: with its socket at hand for the Lua debugger when the
/// client is in debug mode (SCRIPT DEBUG SYNC or YES).
fn run_on(
    shared: &Shared,
    stream: &mut Transport,
    client: &mut Client,
    out: &mut ReplyBuf,
    argv: &[&[u8]],
) {
    if client.ldb != crate::client::Debugging::Off {
        let mut console = DebugConsole(stream);
        commands::script::ldb::with_console(&mut console, || {
            run_request(shared, client, out, argv)
        });
    } else {
        run_request(shared, client, out, argv);
    }
}

/// The debugger's hold on a session's socket: blocking while it lasts, sends timing out
/// after 5 s as Redis's, reads after a tenth of a second so that the session can watch for
/// SCRIPT KILL.
struct DebugConsole<'a>(&'a mut Transport);

impl commands::script::ldb::Console for DebugConsole<'_> {
    fn begin(&mut self) -> std::io::Result<()> {
        let tcp = self.0.socket();
        tcp.set_nonblocking(false)?;
        tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
        tcp.set_read_timeout(Some(Duration::from_millis(100)))
    }

    fn end(&mut self) {
        let tcp = self.0.socket();
        let _ = tcp.set_read_timeout(None);
        let _ = tcp.set_write_timeout(None);
        let _ = tcp.set_nonblocking(true);
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes)?;
        self.0.flush_held()
    }

    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(self.0, buf)
    }

    fn fd(&self) -> RawFd {
        self.0.socket().as_raw_fd()
    }
}

impl Session {
    /// Starts a session for a newly accepted client, or refuses it (protected mode) and
    /// returns None.
    /// `tls`: the client came to the TLS port, and this is the TLS configuration in force.
    pub fn open(
        shared: &Shared,
        mut stream: Socket,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Option<Session> {
        let (password, protected) = {
            let c = shared.config.read();
            (shared.acl.requires_auth(), c.protected_mode)
        };
        if protected && !password && !stream.is_local() {
            log::debug!(
                "refused client from {:?}: protected mode",
                stream.peer_addr()
            );
            if tls.is_none() {
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = stream.write_all(PROTECTED_MODE_ERROR);
            }
            return None;
        }
        if let Socket::Tcp(tcp) = &stream {
            let _ = tcp.set_nodelay(true);
        }
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("refused client {:?}: {e}", stream.peer_addr());
            return None;
        }
        let mut client = Client::new(Some(&stream));
        let stream = match tls {
            None => Transport::Plain(stream),
            Some(config) => match Transport::tls(stream, config) {
                Ok(t) => t,
                Err(e) => {
                    log::warn!("refused TLS client: {e}");
                    return None;
                }
            },
        };
        client.authenticated = !password;
        client.user = Some(shared.acl.default_user());
        client.acl_gen = shared.acl.generation();
        log::debug!("client {} connected from {:?}", client.id, client.addr);
        shared.stats.connected_clients.fetch_add(1, Relaxed);
        shared.stats.total_connections.fetch_add(1, Relaxed);
        shared.clients.register(client.handle.clone());
        Some(Session {
            stream,
            client,
            inbuf: InBuf::new(),
            parser: RequestParser::new(Limits::default()),
            // Redis's PROTO_REPLY_MIN_BYTES from the start: the least room a client's reply
            // buffer holds (CLIENT LIST's rbs, which Redis's replybufsize test checks), so
            // short replies never reallocate it.
            out: ReplyBuf::with_capacity(sizing::MIN),
            sent: 0,
            out_peak: 0,
            peak_reset_at: Instant::now(),
            unsent_since: None,
            closing: false,
            hung_up: false,
            drained: false,
            held: None,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.stream.socket().as_raw_fd()
    }

    /// Ends the session: its watches and its entry in the client registry go.
    pub fn close(mut self, shared: &Shared) {
        log::debug!("client {} closed", self.client.id);
        client_gone(shared, &mut self.client);
    }

    /// The session's parts for a replica link (see `repl::master`): its socket, its client,
    /// the replies not yet written and the input not yet run, all of which the link takes
    /// over where the session left them.
    pub fn detach(self) -> crate::repl::master::Detached {
        let unsent = self.out.as_bytes()[self.sent..].to_vec();
        let input = self.inbuf.data()[self.parser.request_start()..].to_vec();
        crate::repl::master::Detached {
            stream: self.stream,
            client: self.client,
            unsent,
            input,
        }
    }

    /// The AOF ticket the pending replies wait for, so that a worker can write the AOF once
    /// for a whole batch of sessions before writing their replies.
    pub fn aof_ticket(&self) -> Option<u64> {
        self.client.pending_ack.as_ref().map(AofWait::ticket)
    }

    /// True when the replies must wait for an fsync (`appendfsync always`).
    pub fn awaits_fsync(&self) -> bool {
        matches!(self.client.pending_ack, Some(AofWait::Synced(..)))
    }

    /// Reads once and runs the complete requests; the replies stay in the output buffer for
    /// `output`. Replies still pending from an earlier step are written first: they were
    /// cleared with the AOF then.
    /// `hung_up`: the event that led here says the peer has shut its side. `woken`: no
    /// socket event led here, only another thread's wake-up.
    pub fn input(&mut self, shared: &Shared, hung_up: bool, woken: bool) -> Next {
        self.hung_up |= hung_up;
        if !woken {
            self.drained = false;
        }
        if self.client.handle.is_killed() {
            return Next::Close;
        }
        let policy = Policy::read(shared, self.client.subs.active());
        // Read before the outbox: an unblocked client's reply is in the outbox before its flag
        // clears (see `ClientHandle::unblock_with`), so it goes out before what runs next.
        let unblocked = self.client.blocked && !self.client.handle.is_blocked();
        // What other clients delivered goes out with this step's replies (after those
        // already pending, before those of requests still to run), under the same limit.
        if self.client.handle.take_outbox(&mut self.out.buf)
            && policy.output_exceeded(self.pending())
        {
            self.log_output_exceeded();
            return Next::Close;
        }
        if unblocked {
            self.client.blocked = false;
        }
        if self.client.handle.closes_after_outbox() {
            self.closing = true;
        }
        if self.closing {
            return Next::Wait;
        }
        if self.has_unsent_output() && self.write_out(shared) == Next::Close {
            return Next::Close;
        }
        // The socket takes none of the replies now, yet the client is read and its requests
        // run, their replies kept: a client may write a whole pipeline before it reads any
        // reply (redis-py's pipelines do), and not reading it then would leave both sides
        // waiting on each other for good. As in Redis, what piles up counts in used_memory
        // (maxmemory evicts keys for it) and is bounded by client-output-buffer-limit.
        let stuck = self.has_unsent_output();
        // Nothing new to read since the socket was last found empty: run what is buffered.
        let mut read = self.drained && !self.hung_up;
        let mut full = false;
        loop {
            // A blocked client's further requests wait, as in Redis; its input is still read,
            // so that a disconnect ends the wait.
            if !self.client.blocked {
                match self.run_buffered(shared, &policy, stuck) {
                    Next::Wait => {}
                    other => return other,
                }
            }
            let unprocessed = self.inbuf.len() - self.parser.request_start();
            if unprocessed > policy.query_limit {
                let head = &self.inbuf.data()[self.parser.request_start()..];
                log::warn!(
                    "Closing client that reached max query buffer length: id={} addr={:?} \
                     (qbuf initial bytes: {:?})",
                    self.client.id,
                    self.client.addr,
                    String::from_utf8_lossy(&head[..head.len().min(64)])
                );
                return Next::Close;
            }
            if read && !self.hung_up {
                return if full { Next::Again } else { Next::Wait };
            }
            read = true;
            let big_arg = self.parser.big_arg_end(crate::resp::inbuf::BIG_ARG);
            shared.stats.reads_processed.add(1);
            match self.inbuf.read_from(&mut self.stream, big_arg) {
                Ok(0) => {
                    // Replies to what came before the end are still written.
                    self.closing = true;
                    return Next::Wait;
                }
                Ok(n) => {
                    shared.stats.net_input_bytes.fetch_add(n as u64, Relaxed);
                    // A read that filled the room may have left more behind, for which the
                    // socket signals nothing new.
                    full = self.inbuf.is_full() || self.stream.may_hold_input();
                    self.drained = !full;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.drained = true;
                    return Next::Wait;
                }
                Err(e) => {
                    log::debug!("client {} read failed: {e}", self.client.id);
                    return Next::Close;
                }
            }
        }
    }

    /// Runs the complete requests in the input buffer. `Wait` once they are all run; `Again`
    /// when replies piled up first (the rest runs once they are written, or found not to be
    /// taken: `stuck`); `Close`.
    fn run_buffered(&mut self, shared: &Shared, policy: &Policy, stuck: bool) -> Next {
        if let Some(held) = self.held.take() {
            let argv: smallvec::SmallVec<[&[u8]; 8]> = held.iter().map(|a| a.as_slice()).collect();
            self.publish_request(&argv, 0);
            run_on(
                shared,
                &mut self.stream,
                &mut self.client,
                &mut self.out,
                &argv,
            );
            if self.client.postponed {
                self.client.postponed = false;
                drop(argv);
                self.held = Some(held);
                shared.ops.pause.park(&self.client.handle);
                return Next::Wait;
            }
            if let Some(next) = self.after_request(policy) {
                self.publish_idle();
                return next;
            }
        }
        let next = loop {
            if self.pending() > OUT_FLUSH && !stuck {
                break Next::Again;
            }
            self.parser
                .set_auth_required(!self.client.authenticated && policy.password);
            let start = self.parser.request_start();
            match self.parser.parse(self.inbuf.data()) {
                Ok(Parsed::Request { .. }) => {
                    let argv = self.parser.argv(self.inbuf.data());
                    if self.client.handle.is_killed() {
                        break Next::Close;
                    }
                    let io = &self.client.handle.io;
                    io.qbuf.store((self.inbuf.len() - start) as u64, Relaxed);
                    io.argv_mem
                        .store(argv.iter().map(|a| a.len() as u64).sum(), Relaxed);
                    run_on(
                        shared,
                        &mut self.stream,
                        &mut self.client,
                        &mut self.out,
                        &argv,
                    );
                    if self.client.postponed {
                        // Held by CLIENT PAUSE: kept, and the client parked until it ends.
                        self.client.postponed = false;
                        self.held = Some(argv.iter().map(|a| a.to_vec()).collect());
                        shared.ops.pause.park(&self.client.handle);
                        break Next::Wait;
                    }
                    drop(argv);
                    if let Some(next) = self.after_request(policy) {
                        break next;
                    }
                }
                Ok(Parsed::Incomplete { .. }) => break Next::Wait,
                Err(e) => {
                    log::info!(
                        "client id={} addr={:?}: {e}; closing it",
                        self.client.id,
                        self.client.addr
                    );
                    self.out.error(&format!("ERR {e}"));
                    self.closing = true;
                    break Next::Wait;
                }
            }
        };
        // Drop what complete requests used; keep a partial request's bytes.
        let dropped = self.inbuf.discard(self.parser.request_start());
        self.parser.rebase(dropped);
        self.publish_idle();
        next
    }

    /// What follows a request that ran: Some when the step ends here.
    fn after_request(&mut self, policy: &Policy) -> Option<Next> {
        if policy.output_exceeded(self.pending()) {
            self.log_output_exceeded();
            return Some(Next::Close);
        }
        if self.client.close_after_reply {
            self.closing = true;
            return Some(Next::Wait);
        }
        if self.client.handoff.is_some() {
            return Some(Next::Detach);
        }
        if self.client.blocked {
            return Some(Next::Wait);
        }
        None
    }

    /// CLIENT LIST's view of a request being run (a held one: its bytes are out of the
    /// buffer).
    fn publish_request(&self, argv: &[&[u8]], qbuf: u64) {
        let io = &self.client.handle.io;
        io.qbuf.store(qbuf, Relaxed);
        io.argv_mem
            .store(argv.iter().map(|a| a.len() as u64).sum(), Relaxed);
    }

    /// CLIENT LIST's view of the buffers between steps: relaxed stores to the handle, which
    /// only this session writes.
    fn publish_idle(&self) {
        let io = &self.client.handle.io;
        let unprocessed = (self.inbuf.len() - self.parser.request_start()) as u64;
        let cap = self.inbuf.capacity() as u64;
        io.qbuf.store(unprocessed, Relaxed);
        io.qbuf_free
            .store(cap.saturating_sub(self.inbuf.len() as u64), Relaxed);
        io.argv_mem.store(0, Relaxed);
        io.rbs.store(self.out.buf.capacity() as u64, Relaxed);
        io.rbp.store(self.out_peak as u64, Relaxed);
        io.pending.store(self.pending() as u64, Relaxed);
        let multi = self.client.multi.as_ref().map_or(0, |m| {
            m.queue
                .iter()
                .map(|q| q.argv.iter().map(|a| a.len() as u64).sum::<u64>())
                .sum::<u64>()
        });
        io.multi_mem.store(multi, Relaxed);
        io.tot_mem.store(
            std::mem::size_of::<Session>() as u64 + cap + self.out.buf.capacity() as u64 + multi,
            Relaxed,
        );
    }

    fn log_output_exceeded(&self) {
        log::warn!(
            "Client id={} addr={:?} closed for overcoming of output buffer limits ({} bytes \
             pending).",
            self.client.id,
            self.client.addr,
            self.pending()
        );
    }

    /// Writes the replies, once their AOF records are written (the worker has normally done
    /// that for its whole batch already). `Close` when the session is over.
    pub fn output(&mut self, shared: &Shared) -> Next {
        if let Some(wait) = self.client.pending_ack.take() {
            // No reply before its write is in the AOF, as in Redis (and on disk under always).
            // Queued before a switch off, it is written still (see `Aof::disable`).
            shared.aof_handle().write_through(wait.ticket());
            if let AofWait::Synced(_, ack) = wait {
                let _ = ack.recv();
            }
        }
        if let Some(aof) = shared.aof() {
            aof.wait_observed();
        }
        let next = self.write_out(shared);
        if next == Next::Close || (self.closing && !self.has_unsent_output()) {
            return Next::Close;
        }
        next
    }

    /// Output is pending that the socket would not take yet (replies, or TLS records).
    pub fn has_unsent_output(&self) -> bool {
        self.pending() > 0 || self.stream.holds_output()
    }

    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Writes as much of the pending replies as the socket takes.
    fn write_out(&mut self, shared: &Shared) -> Next {
        if self.pending() > 0 {
            shared.stats.writes_processed.add(1);
        }
        while self.pending() > 0 {
            match self.stream.write(&self.out.as_bytes()[self.sent..]) {
                Ok(0) => return Next::Close,
                Ok(n) => {
                    self.sent += n;
                    self.unsent_since = None;
                    shared.stats.net_output_bytes.fetch_add(n as u64, Relaxed);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.unsent_since.get_or_insert_with(Instant::now);
                    // Keep the unsent tail only, once the sent part is worth a copy.
                    if self.sent >= OUT_FLUSH {
                        self.out.buf.drain(..self.sent);
                        self.sent = 0;
                    }
                    return Next::Wait;
                }
                Err(e) => {
                    log::debug!("client {} write failed: {e}", self.client.id);
                    return Next::Close;
                }
            }
        }
        // The room a burst of replies took goes back at once, as Redis frees its reply list;
        // but not when writes this big are this client's habit (its recent peak was as big:
        // pipelined GETs of large values), for whom growing and shrinking each time only
        // churns the heap (under maxmemory 100mb that left 5 MB of free holes between the
        // values: RSS 1.17x the limit, 1.12x without). The cron's peak check gives that room
        // back once the habit ends (`resize_buffers`).
        // A burst goes back to what the client's habit was (a tracking client's invalidations
        // for a hundred evicted keys must not leave each such client 16 KB fatter, for
        // eviction to evict more keys for).
        let (burst, habit) = (self.out.len() > self.out_peak, self.out_peak);
        self.out_peak = self.out_peak.max(self.out.len());
        self.out.clear();
        let keep = habit.clamp(sizing::MIN, sizing::CHUNK);
        if self.out.buf.capacity() > keep && burst {
            self.out.buf.shrink_to(keep);
            let io = &self.client.handle.io;
            io.rbs.store(self.out.buf.capacity() as u64, Relaxed);
        }
        self.sent = 0;
        self.client.handle.io.pending.store(0, Relaxed);
        if self.stream.holds_output() {
            match self.stream.flush_held() {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.unsent_since.get_or_insert_with(Instant::now);
                }
                Err(e) => {
                    log::debug!("client {} write failed: {e}", self.client.id);
                    return Next::Close;
                }
            }
        }
        Next::Wait
    }

    /// The periodic resize of the input buffer (see `InBuf::shrink`) and of the reply buffer
    /// (see `resp::reply::sizing`), between steps; CLIENT LIST then shows the new sizes.
    /// Returns the bytes of storage given back.
    pub fn resize_buffers(&mut self) -> usize {
        let held = self.inbuf.capacity() + self.out.buf.capacity();
        let idle_secs = self.client.handle.idle_us() / 1_000_000;
        // A bulk argument being read: the room up to its end stays.
        let keep = self.parser.big_arg_end(0).unwrap_or(0);
        let mut resized = self.inbuf.shrink(idle_secs, keep);
        // Redis's clientsCronResizeOutputBuffer, for an empty buffer (replies still unsent keep
        // theirs).
        let room = self.out.buf.capacity();
        if sizing::resizing()
            && self.pending() == 0
            && room / 2 >= sizing::MIN
            && self.out_peak < room / 2
        {
            self.out.buf.shrink_to(sizing::MIN.max(self.out_peak + 1));
            sizing::SHRINKS.fetch_add(1, Relaxed);
            resized = true;
        }
        let reset = sizing::peak_reset_ms();
        if reset >= 0 && self.peak_reset_at.elapsed() >= Duration::from_millis(reset as u64) {
            self.out_peak = self.out.len();
            self.peak_reset_at = Instant::now();
            resized = true;
        }
        if resized {
            self.publish_idle();
        }
        held.saturating_sub(self.inbuf.capacity() + self.out.buf.capacity())
    }

    /// The periodic check (see `pool`): true when the session must be closed because it has
    /// been idle longer than `timeout`, or has left its replies unread too long.
    /// (A killed client needs no check here: its kill wakes it.)
    pub fn expired(&self, shared: &Shared) -> bool {
        let c = shared.config.read();
        if let Some(since) = self.unsent_since {
            // client-write-timeout is for a client silent both ways: one still sending
            // requests reads its replies once it has sent them all.
            let silent = |secs: u64| self.client.handle.idle_us() >= secs * 1_000_000;
            let mut limit = (c.client_write_timeout > 0 && silent(c.client_write_timeout))
                .then_some(c.client_write_timeout);
            // Replies held above the soft limit for its seconds close the client too; for us
            // that is a socket that takes none of them that long.
            let soft = c.client_output_buffer_limit[output_class(self.client.subs.active())];
            if soft.soft > 0 && soft.soft_seconds > 0 && self.pending() as u64 > soft.soft {
                limit = Some(limit.map_or(soft.soft_seconds, |l| l.min(soft.soft_seconds)));
            }
            if limit.is_some_and(|l| since.elapsed() >= Duration::from_secs(l)) {
                log::warn!(
                    "closing client id={} addr={:?}: it read none of its replies for \
                     client-write-timeout ({} bytes pending)",
                    self.client.id,
                    self.client.addr,
                    self.pending()
                );
                return true;
            }
        }
        let timeout = c.timeout;
        drop(c);
        // A blocked client is not idle: its wait has its own timeout (as Redis's clientsCron);
        // nor is a subscriber, which waits for messages.
        if timeout > 0
            && !self.client.blocked
            && !self.client.subs.active()
            && self.client.handle.idle_us() > timeout * 1_000_000
        {
            log::info!(
                "Closing idle client id={} addr={:?}",
                self.client.id,
                self.client.addr
            );
            return true;
        }
        false
    }
}
