//! One client's read → parse → execute → write loop, run on a worker thread.
//!
//! Replies accumulate in one output buffer and are written when the input holds no further
//! complete request, so a pipelined batch costs one read and one write.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use smallvec::SmallVec;

use crate::client::Client;
use crate::commands;
use crate::resp::parse::{Limits, Parsed, RequestParser};
use crate::resp::{InBuf, ReplyBuf};
use crate::shared::Shared;

/// Replies beyond this are written out mid-batch, so a pipeline of large replies does not pile
/// up in memory.
const OUT_FLUSH: usize = 64 * 1024;
/// How often an idle connection checks whether it has been idle longer than `timeout`.
const IDLE_CHECK: Duration = Duration::from_millis(250);

pub fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Wake up now and then while idle, to apply `timeout` (which CONFIG SET may change).
    let _ = stream.set_read_timeout(Some(IDLE_CHECK));
    let mut client = Client::new(Some(&stream));
    log::debug!("client {} connected from {:?}", client.id, client.addr);
    shared.stats.connected_clients.fetch_add(1, Relaxed);
    shared.stats.total_connections.fetch_add(1, Relaxed);
    shared.clients.register(client.handle.clone());
    if let Err(e) = client_loop(shared, &mut client, &mut stream) {
        log::debug!("client {} closed: {e}", client.id);
    }
    shared.clients.unregister(client.id);
    shared.stats.connected_clients.fetch_sub(1, Relaxed);
}

fn flush(
    shared: &Shared,
    client: &mut Client,
    stream: &mut TcpStream,
    out: &mut ReplyBuf,
) -> std::io::Result<()> {
    if let Some(ack) = client.pending_ack.take() {
        // No reply before its write is in the AOF (on disk, under appendfsync always).
        let _ = ack.recv();
    }
    if !out.is_empty() {
        stream.write_all(out.as_bytes())?;
        shared
            .stats
            .net_output_bytes
            .fetch_add(out.len() as u64, Relaxed);
        out.clear();
    }
    Ok(())
}

fn client_loop(
    shared: &Shared,
    client: &mut Client,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let mut inbuf = InBuf::new();
    let mut parser = RequestParser::new(Limits::default());
    let mut out = ReplyBuf::new();
    loop {
        loop {
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
                    if client.close_after_reply {
                        return flush(shared, client, stream, &mut out);
                    }
                    if out.len() > OUT_FLUSH {
                        flush(shared, client, stream, &mut out)?;
                    }
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => {
                    log::debug!("client {}: {e}", client.id);
                    out.error(&format!("ERR {e}"));
                    return flush(shared, client, stream, &mut out);
                }
            }
        }
        flush(shared, client, stream, &mut out)?;
        // Drop what complete requests used; keep a partial request's bytes.
        let dropped = inbuf.discard(parser.request_start());
        parser.rebase(dropped);
        let n = loop {
            match inbuf.read_from(stream) {
                Ok(n) => break n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if client.handle.is_killed() || idle_too_long(shared, client) {
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
