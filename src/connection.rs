//! One client's read → parse → execute → write loop, run on a worker thread.
//!
//! Replies accumulate in one output buffer and are written when the input holds no further
//! complete request, so a pipelined batch costs one read and one write.
//!
//! Defences against hostile or careless clients, each closing only the offender: the parser's
//! protocol limits (answered with Redis's error), `client-query-buffer-limit` (unprocessed
//! input), `client-output-buffer-limit` (pending replies), `timeout` (idle clients) and
//! `client-write-timeout` (a client that never reads would otherwise hold its worker forever).

use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use smallvec::SmallVec;

use crate::aof::AofWait;
use crate::client::Client;
use crate::commands;
use crate::config::OutputLimit;
use crate::resp::parse::{Limits, Parsed, RequestParser};
use crate::resp::{InBuf, ReplyBuf};
use crate::shared::Shared;

/// Replies beyond this are written out mid-batch, so a pipeline of large replies does not pile
/// up in memory.
const OUT_FLUSH: usize = 64 * 1024;
/// How often an idle connection checks whether it has been idle longer than `timeout`.
const IDLE_CHECK: Duration = Duration::from_millis(250);

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

/// Redis counts only these two addresses as the loopback interface.
fn is_loopback(addr: Option<SocketAddr>) -> bool {
    match addr.map(|a| a.ip()) {
        Some(IpAddr::V4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST)
        }
        None => false,
    }
}

pub fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Wake up now and then while idle, to apply `timeout` (which CONFIG SET may change).
    let _ = stream.set_read_timeout(Some(IDLE_CHECK));
    let (password, protected) = {
        let c = shared.config.read();
        (c.requirepass.is_set(), c.protected_mode)
    };
    if protected && !password && !is_loopback(stream.peer_addr().ok()) {
        log::debug!(
            "refused client from {:?}: protected mode",
            stream.peer_addr().ok()
        );
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = stream.write_all(PROTECTED_MODE_ERROR);
        return;
    }
    let mut client = Client::new(Some(&stream));
    client.authenticated = !password;
    log::debug!("client {} connected from {:?}", client.id, client.addr);
    shared.stats.connected_clients.fetch_add(1, Relaxed);
    shared.stats.total_connections.fetch_add(1, Relaxed);
    shared.clients.register(client.handle.clone());
    if let Err(e) = client_loop(shared, &mut client, &mut stream) {
        log::debug!("client {} closed: {e}", client.id);
    }
    commands::transaction::unwatch_all(shared, &mut client);
    shared.clients.unregister(client.id);
    shared.stats.connected_clients.fetch_sub(1, Relaxed);
}

fn flush(
    shared: &Shared,
    client: &mut Client,
    stream: &mut TcpStream,
    out: &mut ReplyBuf,
) -> std::io::Result<()> {
    if let Some(wait) = client.pending_ack.take() {
        // No reply before its write is in the AOF, as in Redis (and on disk under always).
        let ticket = match &wait {
            AofWait::Written(t) | AofWait::Synced(t, _) => *t,
        };
        if let Some(aof) = &shared.aof {
            aof.help(ticket);
        }
        if let AofWait::Synced(_, ack) = wait {
            let _ = ack.recv();
        }
    }
    if !out.is_empty() {
        if let Err(e) = stream.write_all(out.as_bytes()) {
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                log::warn!(
                    "closing client id={} addr={:?}: it read none of its replies for \
                     client-write-timeout ({} bytes pending)",
                    client.id,
                    client.addr,
                    out.len()
                );
            }
            return Err(e);
        }
        shared
            .stats
            .net_output_bytes
            .fetch_add(out.len() as u64, Relaxed);
        out.clear();
    }
    Ok(())
}

/// The limits the loop obeys, read from the shared config once per read so that CONFIG SET
/// applies to connected clients too.
struct Policy {
    write_timeout: Option<Duration>,
    query_limit: usize,
    output: OutputLimit,
    password: bool,
}

impl Policy {
    fn read(shared: &Shared) -> Policy {
        let c = shared.config.read();
        let output = c.client_output_buffer_limit[0];
        let mut write_timeout =
            (c.client_write_timeout > 0).then(|| Duration::from_secs(c.client_write_timeout));
        // Replies held above the soft limit for its seconds close the client too; for us
        // that is a write that blocks that long.
        if output.soft > 0 && output.soft_seconds > 0 {
            let soft = Duration::from_secs(output.soft_seconds);
            write_timeout = Some(write_timeout.map_or(soft, |w| w.min(soft)));
        }
        Policy {
            write_timeout,
            query_limit: c.client_query_buffer_limit.try_into().unwrap_or(usize::MAX),
            output,
            password: c.requirepass.is_set(),
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

fn client_loop(
    shared: &Shared,
    client: &mut Client,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let mut inbuf = InBuf::new();
    let mut parser = RequestParser::new(Limits::default());
    let mut out = ReplyBuf::new();
    let mut write_timeout = None;
    loop {
        let policy = Policy::read(shared);
        if write_timeout != policy.write_timeout {
            stream.set_write_timeout(policy.write_timeout)?;
            write_timeout = policy.write_timeout;
        }
        loop {
            parser.set_auth_required(!client.authenticated && policy.password);
            match parser.parse(inbuf.data()) {
                Ok(Parsed::Request { .. }) => {
                    let argv: SmallVec<[&[u8]; 8]> = parser
                        .args()
                        .iter()
                        .map(|a| a.bytes(inbuf.data()))
                        .collect();
                    if client.handle.is_killed() {
                        return Ok(());
                    }
                    commands::execute(shared, client, &argv, &mut out);
                    if policy.output_exceeded(out.len()) {
                        log::warn!(
                            "Client id={} addr={:?} closed for overcoming of output buffer \
                             limits ({} bytes pending).",
                            client.id,
                            client.addr,
                            out.len()
                        );
                        return Ok(());
                    }
                    if client.close_after_reply {
                        return flush(shared, client, stream, &mut out);
                    }
                    if out.len() > OUT_FLUSH {
                        flush(shared, client, stream, &mut out)?;
                    }
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => {
                    log::info!(
                        "client id={} addr={:?}: {e}; closing it",
                        client.id,
                        client.addr
                    );
                    out.error(&format!("ERR {e}"));
                    return flush(shared, client, stream, &mut out);
                }
            }
        }
        flush(shared, client, stream, &mut out)?;
        // Drop what complete requests used; keep a partial request's bytes.
        let dropped = inbuf.discard(parser.request_start());
        parser.rebase(dropped);
        let pending = inbuf.len() - parser.request_start();
        if pending > policy.query_limit {
            let head = &inbuf.data()[parser.request_start()..][..pending.min(64)];
            log::warn!(
                "Closing client that reached max query buffer length: id={} addr={:?} \
                 (qbuf initial bytes: {:?})",
                client.id,
                client.addr,
                String::from_utf8_lossy(head)
            );
            return Ok(());
        }
        let n = loop {
            match inbuf.read_from(stream) {
                Ok(n) => break n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if client.handle.is_killed() {
                        return Ok(());
                    }
                    if idle_too_long(shared, client) {
                        log::info!(
                            "Closing idle client id={} addr={:?}",
                            client.id,
                            client.addr
                        );
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        };
        shared.stats.net_input_bytes.fetch_add(n as u64, Relaxed);
        if n == 0 || client.handle.is_killed() {
            return Ok(());
        }
    }
}

/// True once the client has sent nothing for longer than the `timeout` setting (0: never).
fn idle_too_long(shared: &Shared, client: &Client) -> bool {
    let timeout = shared.config.read().timeout;
    timeout > 0 && client.handle.state.lock().last_active.elapsed() > Duration::from_secs(timeout)
}
