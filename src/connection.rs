//! One client's read → parse → execute → write loop, run on a worker thread.
//!
//! Replies accumulate in one output buffer and are written when the input holds no further
//! complete request, so a pipelined batch costs one read and one write.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;

use smallvec::SmallVec;

use crate::client::Client;
use crate::commands;
use crate::resp::parse::{Limits, Parsed, RequestParser};
use crate::resp::ReplyBuf;
use crate::shared::Shared;

/// Read size when the buffer has no room; the buffer only grows as bytes arrive.
const READ_CHUNK: usize = 16 * 1024;
/// Replies beyond this are written out mid-batch, so a pipeline of large replies does not pile
/// up in memory.
const OUT_FLUSH: usize = 64 * 1024;

pub fn serve(shared: &Shared, mut stream: TcpStream) {
    let addr = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let mut client = Client::new(addr);
    log::debug!("client {} connected from {:?}", client.id, addr);
    shared.stats.connected_clients.fetch_add(1, Relaxed);
    shared.stats.total_connections.fetch_add(1, Relaxed);
    if let Err(e) = client_loop(shared, &mut client, &mut stream) {
        log::debug!("client {} closed: {e}", client.id);
    }
    shared.stats.connected_clients.fetch_sub(1, Relaxed);
}

fn flush(client: &mut Client, stream: &mut TcpStream, out: &mut ReplyBuf) -> std::io::Result<()> {
    if let Some(ack) = client.pending_ack.take() {
        // appendfsync always: no reply before its write is on disk.
        let _ = ack.recv();
    }
    if !out.is_empty() {
        stream.write_all(out.as_bytes())?;
        out.clear();
    }
    Ok(())
}

fn client_loop(
    shared: &Shared,
    client: &mut Client,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new(Limits::default());
    let mut out = ReplyBuf::new();
    loop {
        loop {
            match parser.parse(&inbuf) {
                Ok(Parsed::Request { .. }) => {
                    let argv: SmallVec<[&[u8]; 8]> =
                        parser.args().iter().map(|a| a.bytes(&inbuf)).collect();
                    commands::execute(shared, client, &argv, &mut out);
                    if client.close_after_reply {
                        return flush(client, stream, &mut out);
                    }
                    if out.len() > OUT_FLUSH {
                        flush(client, stream, &mut out)?;
                    }
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => {
                    log::debug!("client {}: {e}", client.id);
                    out.error(&format!("ERR {e}"));
                    return flush(client, stream, &mut out);
                }
            }
        }
        flush(client, stream, &mut out)?;
        // Drop what complete requests used; keep a partial request's bytes.
        let done = parser.request_start();
        if done == inbuf.len() {
            inbuf.clear();
            parser.rebase(done);
        } else if done > 0 && done >= inbuf.len() / 2 {
            inbuf.drain(..done);
            parser.rebase(done);
        }
        let old = inbuf.len();
        let room = (inbuf.capacity() - old).max(READ_CHUNK);
        inbuf.resize(old + room, 0);
        let n = loop {
            match stream.read(&mut inbuf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    inbuf.truncate(old);
                    return Err(e);
                }
            }
        };
        inbuf.truncate(old + n);
        if n == 0 {
            return Ok(());
        }
    }
}
