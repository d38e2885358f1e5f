//! The replica side: one thread that keeps this server following its master, as Redis's
//! replication.c does from its event loop. It connects, makes Redis 7's handshake (PING,
//! AUTH, REPLCONF listening-port, REPLCONF capa eof capa psync2, PSYNC), takes a full sync
//! (an RDB sent with its length, or EOF-marked as a diskless master sends it) or continues
//! partially, then applies the command stream in order through the dispatcher as the
//! master's client (so this server's own AOF records it), answers REPLCONF GETACK and sends
//! REPLCONF ACK every second. A broken link is retried every second, offering what it has
//! applied (PSYNC replid offset+1) so that a brief cut needs no full sync.

use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Link, Transfer};
use crate::client::Client;
use crate::resp::parse::{Limits, Parsed, RequestParser};
use crate::resp::reply::encode_command;
use crate::resp::ReplyBuf;
use crate::shared::Shared;

/// How often the link thread looks up from its socket: for REPLCONF ACK (every second) and
/// for a REPLICAOF that ends this link.
const TICK: Duration = Duration::from_millis(100);

/// Why a link ended.
#[derive(Debug)]
pub enum LinkError {
    Io(io::Error),
    /// The master answered something the handshake cannot go on from.
    Refused(String),
    /// The master's RDB did not load.
    Load(String),
    /// The stream broke the protocol.
    Protocol(String),
    /// Nothing from the master for `repl-timeout` seconds.
    Timeout,
    /// REPLICAOF changed the master (or made this a master): not an error.
    Superseded,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Io(e) => write!(f, "{e}"),
            LinkError::Refused(s) => write!(f, "the master refused: {s}"),
            LinkError::Load(s) => write!(f, "the master's RDB did not load: {s}"),
            LinkError::Protocol(s) => write!(f, "protocol error in the master's stream: {s}"),
            LinkError::Timeout => f.write_str("timeout: no data from the master"),
            LinkError::Superseded => f.write_str("the master was changed"),
        }
    }
}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        LinkError::Io(e)
    }
}

/// Starts the link thread; it lives as long as the process and is idle on a master.
pub fn spawn(shared: Arc<Shared>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("repl-link".into())
        .spawn(move || link_loop(&shared))?;
    Ok(())
}

fn link_loop(shared: &Shared) {
    let repl = &shared.repl;
    loop {
        let (generation, host, port) = {
            let mut st = repl.state();
            loop {
                if let Some((h, p)) = st.master.clone() {
                    break (st.generation, h, p);
                }
                repl.wait_change(&mut st, Duration::from_secs(1));
            }
        };
        log::info!("Connecting to MASTER {host}:{port}");
        let mut link = Session {
            shared,
            generation,
            stream: None,
        };
        match link.run(&host, port) {
            Ok(()) | Err(LinkError::Superseded) => {}
            Err(LinkError::Timeout)
                if matches!(repl.state().link, Link::Connecting | Link::Handshake) =>
            {
                // Redis's words for a master that stops answering before the sync begins.
                log::warn!("Timeout connecting to the MASTER...")
            }
            Err(e) => log::warn!("Lost the link with MASTER {host}:{port}: {e}"),
        }
        {
            let mut st = repl.state();
            if st.generation == generation {
                repl.set_link(&mut st, Link::Connect);
                st.transfer = None;
                // Partial resync next time, from what was applied.
                if st.offset > 0 || st.cached.is_none() {
                    st.cached = Some((st.replid.clone(), st.offset));
                }
                // Wait a second before retrying, unless REPLICAOF changes things first.
                repl.wait_change(&mut st, Duration::from_secs(1));
            }
        }
    }
}

/// One connection to the master.
struct Session<'a> {
    shared: &'a Shared,
    generation: u64,
    stream: Option<crate::tls::ClientStream>,
}

/// Takes the master's client out of the client registry when its link ends.
struct Unlist<'a>(&'a Shared, u64);

impl Drop for Unlist<'_> {
    fn drop(&mut self) {
        self.0.clients.unregister(self.1);
    }
}

/// Bytes read from the master and not yet consumed.
struct Input {
    buf: Vec<u8>,
    /// Where the unconsumed bytes begin.
    pos: usize,
}

impl Input {
    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

impl Session<'_> {
    fn current(&self) -> Result<(), LinkError> {
        if self.shared.repl.state().generation != self.generation {
            return Err(LinkError::Superseded);
        }
        Ok(())
    }

    fn stream(&mut self) -> &mut crate::tls::ClientStream {
        self.stream.as_mut().expect("connected before use")
    }

    fn set_link(&self, link: Link) -> Result<(), LinkError> {
        let repl = &self.shared.repl;
        let mut st = repl.state();
        if st.generation != self.generation {
            return Err(LinkError::Superseded);
        }
        repl.set_link(&mut st, link);
        Ok(())
    }

    fn setting(&self, name: &str) -> String {
        self.shared.config.read().get(name).unwrap_or_default()
    }

    fn timeout(&self) -> Duration {
        super::timeout(&self.shared.config.read())
    }

    fn run(&mut self, host: &str, port: u16) -> Result<(), LinkError> {
        self.set_link(Link::Connecting)?;
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| LinkError::Refused(format!("{host} resolves to no address")))?;
        let source = self.setting("bind-source-addr").parse().ok();
        let stream = crate::util::net::connect_from(addr, source, self.timeout())?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TICK))?;
        let config = self.shared.config.read().clone();
        let stream = crate::tls::ClientStream::replica_link(&config, host, stream)
            .map_err(LinkError::Refused)?;
        self.stream = Some(stream);
        log::info!("MASTER <-> REPLICA sync started");
        self.set_link(Link::Handshake)?;
        let mut input = Input {
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
        };
        self.handshake(&mut input)?;
        self.stream_loop(&mut input)
    }

    /// Sends one command of the handshake and reads its one-line answer.
    fn ask(&mut self, input: &mut Input, argv: &[&[u8]]) -> Result<String, LinkError> {
        let mut req = Vec::new();
        encode_command(&mut req, argv);
        self.stream().write_all(&req)?;
        self.read_line(input)
    }

    /// The next line from the master (without CRLF), skipping the bare newlines a master
    /// sends to keep the link alive while it prepares an RDB.
    fn read_line(&mut self, input: &mut Input) -> Result<String, LinkError> {
        let deadline = Instant::now() + self.timeout();
        loop {
            let pending = input.pending();
            if let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&pending[..nl])
                    .trim_end_matches('\r')
                    .to_string();
                input.pos += nl + 1;
                if line.is_empty() {
                    continue;
                }
                return Ok(line);
            }
            if pending.len() > 64 * 1024 {
                return Err(LinkError::Protocol("a reply line over 64 KB".into()));
            }
            self.fill(input, deadline)?;
        }
    }

    /// Reads more into `input`; a quiet tick checks that this link is still wanted.
    fn fill(&mut self, input: &mut Input, deadline: Instant) -> Result<usize, LinkError> {
        input.compact();
        let start = input.buf.len();
        input.buf.resize(start + 64 * 1024, 0);
        let res = self.stream().read(&mut input.buf[start..]);
        match res {
            Ok(0) => {
                input.buf.truncate(start);
                Err(LinkError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by the master",
                )))
            }
            Ok(n) => {
                input.buf.truncate(start + n);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                input.buf.truncate(start);
                self.current()?;
                if Instant::now() >= deadline {
                    return Err(LinkError::Timeout);
                }
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                input.buf.truncate(start);
                Ok(0)
            }
            Err(e) => {
                input.buf.truncate(start);
                Err(e.into())
            }
        }
    }

    fn handshake(&mut self, input: &mut Input) -> Result<(), LinkError> {
        // As Redis: an error about authentication is fine here, AUTH comes next.
        let pong = self.ask(input, &[b"PING"])?;
        if pong.starts_with('-')
            && !["-NOAUTH", "-NOPERM", "-ERR operation not permitted"]
                .iter()
                .any(|p| pong.starts_with(p))
        {
            return Err(LinkError::Refused(format!(
                "Error reply to PING from master: '{pong}'"
            )));
        }
        let pass = self.setting("masterauth");
        if !pass.is_empty() {
            let user = self.setting("masteruser");
            let reply = if user.is_empty() {
                self.ask(input, &[b"AUTH", pass.as_bytes()])?
            } else {
                self.ask(input, &[b"AUTH", user.as_bytes(), pass.as_bytes()])?
            };
            if reply.starts_with('-') {
                // Redis's words, which operators and its tests look for in the log.
                return Err(LinkError::Refused(format!(
                    "Unable to AUTH to MASTER: {reply}"
                )));
            }
        }
        let port = match self.setting("replica-announce-port").parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => self.shared.config.read().port,
        };
        let reply = self.ask(
            input,
            &[b"REPLCONF", b"listening-port", port.to_string().as_bytes()],
        )?;
        if reply.starts_with('-') {
            log::info!(
                "(Non critical) Master does not understand REPLCONF listening-port: {reply}"
            );
        }
        let ip = self.setting("replica-announce-ip");
        if !ip.is_empty() {
            let reply = self.ask(input, &[b"REPLCONF", b"ip-address", ip.as_bytes()])?;
            if reply.starts_with('-') {
                log::info!(
                    "(Non critical) Master does not understand REPLCONF ip-address: {reply}"
                );
            }
        }
        let reply = self.ask(input, &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
        if reply.starts_with('-') {
            log::info!("(Non critical) Master does not understand REPLCONF capa: {reply}");
        }
        let cached = self.shared.repl.state().cached.clone();
        let (id, from) = match &cached {
            Some((id, off)) => (id.clone(), (off + 1).to_string()),
            None => ("?".to_string(), "-1".to_string()),
        };
        if cached.is_some() {
            log::info!("Trying a partial resynchronization (request {id}:{from}).");
        }
        // Handing this server's role over (FAILOVER): the target promotes itself on this.
        let failing_over = self.shared.repl.failover.phase() == super::failover::Phase::InProgress;
        let mut psync: Vec<&[u8]> = vec![b"PSYNC", id.as_bytes(), from.as_bytes()];
        if failing_over {
            psync.push(b"FAILOVER");
        }
        let reply = match self.ask(input, &psync) {
            Ok(r) => r,
            Err(e) => {
                if failing_over {
                    super::failover::abort(self.shared, "Write error to failover target");
                }
                return Err(e);
            }
        };
        let words: Vec<&str> = reply.split_whitespace().collect();
        let accepted = matches!(words.as_slice(), ["+FULLRESYNC", _, _] | ["+CONTINUE", ..]);
        if failing_over && !accepted {
            super::failover::abort(self.shared, "Failover target rejected psync request");
            return Err(LinkError::Refused(format!("PSYNC FAILOVER: {reply}")));
        }
        match words.as_slice() {
            ["+FULLRESYNC", replid, offset] => {
                let offset: i64 = offset
                    .parse()
                    .map_err(|_| LinkError::Protocol(format!("bad FULLRESYNC offset: {reply}")))?;
                log::info!("Full resync from master: {replid}:{offset}");
                if failing_over {
                    // As Redis: a full sync is not what the target should answer, but it
                    // took this server as its replica all the same.
                    super::failover::finish(self.shared);
                }
                self.full_sync(input, replid, offset)
            }
            ["+CONTINUE", rest @ ..] => {
                let repl = &self.shared.repl;
                let mut st = repl.state();
                if st.generation != self.generation {
                    return Err(LinkError::Superseded);
                }
                let (old_id, offset) = cached.unwrap_or_default();
                st.offset = offset;
                st.read_offset = offset;
                {
                    let mut g = repl.backlog.lock();
                    if g.offset != offset {
                        g.reset_at(offset);
                    }
                    // Kept from now on, as Redis's replicas keep one: promoted, this server
                    // continues its old master's other replicas partially.
                    g.create();
                }
                if let Some(new_id) = rest.first().filter(|n| **n != old_id) {
                    // Replicas of this one learn the new history by reconnecting.
                    repl.backlog.drop_replicas();
                    // The master's history moved on (it was promoted): ours continues it.
                    st.replid2 = old_id;
                    st.second_offset = offset + 1;
                    st.replid = new_id.to_string();
                    log::info!("Master replication ID changed to {new_id}");
                } else {
                    st.replid = old_id;
                }
                st.last_io = Some(Instant::now());
                repl.set_link(&mut st, Link::Connected);
                drop(st);
                log::info!(
                    "Successful partial resynchronization with master. MASTER <-> REPLICA sync: \
                     Master accepted a Partial Resynchronization."
                );
                if failing_over {
                    super::failover::finish(self.shared);
                }
                Ok(())
            }
            _ => Err(LinkError::Refused(format!("PSYNC: {reply}"))),
        }
    }

    /// Receives the master's RDB and loads it in place of every database. Until it is
    /// loaded, clients read the old data (or get -MASTERDOWN, see the dispatcher); while
    /// it loads, -LOADING: never half of either.
    fn full_sync(&mut self, input: &mut Input, replid: &str, offset: i64) -> Result<(), LinkError> {
        self.set_link(Link::Transfer)?;
        let header = self.read_line(input)?;
        let Some(spec) = header.strip_prefix('$') else {
            return Err(LinkError::Protocol(format!(
                "expected the RDB's length, got '{header}'"
            )));
        };
        let eof_mark = spec.strip_prefix("EOF:").map(|m| m.as_bytes().to_vec());
        let size = match &eof_mark {
            Some(m) if m.len() == 40 => 0,
            Some(_) => return Err(LinkError::Protocol(format!("bad EOF mark '{header}'"))),
            None => spec
                .parse::<u64>()
                .map_err(|_| LinkError::Protocol(format!("bad RDB length '{header}'")))?,
        };
        log::info!(
            "MASTER <-> REPLICA sync: receiving {}",
            if eof_mark.is_some() {
                "streamed RDB from master with EOF to parser".to_string()
            } else {
                format!("{size} bytes from master to memory")
            }
        );
        self.progress(size, 0)?;
        let timeout = self.timeout();
        let mut last_io = Instant::now();
        let payload = loop {
            let have = input.pending().len() as u64;
            match &eof_mark {
                None if have >= size => {
                    let p = input.pending()[..size as usize].to_vec();
                    input.pos += size as usize;
                    break p;
                }
                Some(mark) if input.pending().ends_with(mark) => {
                    let pending = input.pending();
                    let p = pending[..pending.len() - 40].to_vec();
                    input.pos = input.buf.len();
                    break p;
                }
                _ => {}
            }
            self.progress(size, have)?;
            if self.fill(input, last_io + timeout)? > 0 {
                last_io = Instant::now();
            }
        };
        log::info!("MASTER <-> REPLICA sync: Flushing old data");
        log::info!("MASTER <-> REPLICA sync: Loading DB in memory");
        let loaded = crate::persist::install_from_master(self.shared, &payload)
            .map_err(|e| LinkError::Load(e.to_string()))?;
        drop(payload);
        log::info!(
            "MASTER <-> REPLICA sync: Finished with success ({} keys, {} expired keys skipped)",
            loaded.keys,
            loaded.expired
        );
        // The AOF held the old data set: it is rewritten from the new one.
        if let Some(aof) = self.shared.aof() {
            if !aof.request_rewrite() {
                log::warn!("an AOF rewrite already runs: the AOF may hold data from before the sync until the next one");
            }
        }
        let repl = &self.shared.repl;
        let mut st = repl.state();
        if st.generation != self.generation {
            return Err(LinkError::Superseded);
        }
        st.replid = replid.to_string();
        st.replid2 = "0".repeat(40);
        st.second_offset = -1;
        st.offset = offset;
        st.read_offset = offset;
        st.master_db = loaded.stream_db;
        // A new history: this server's own replicas must sync again from it.
        {
            let mut g = repl.backlog.lock();
            g.reset_at(offset);
            g.create();
        }
        repl.backlog.drop_replicas();
        st.transfer = None;
        st.last_io = Some(Instant::now());
        repl.set_link(&mut st, Link::Connected);
        Ok(())
    }

    fn progress(&self, size: u64, read: u64) -> Result<(), LinkError> {
        let mut st = self.shared.repl.state();
        if st.generation != self.generation {
            return Err(LinkError::Superseded);
        }
        st.transfer = Some(Transfer {
            size,
            read,
            last_io: Instant::now(),
        });
        Ok(())
    }

    /// Applies the master's commands as they come, as its client: no replies, except to
    /// REPLCONF GETACK; REPLCONF ACK every second.
    fn stream_loop(&mut self, input: &mut Input) -> Result<(), LinkError> {
        let shared = self.shared;
        let limits = Limits {
            max_bulk_len: usize::MAX / 2,
            max_multibulk_len: usize::MAX / 2,
            max_inline_len: 64 * 1024,
        };
        let mut parser = RequestParser::new(limits);
        let mut client = Client::new(None);
        client.master = true;
        // Listed (flags=M) and killable (CLIENT KILL TYPE master) as Redis's master client.
        client
            .handle
            .master
            .store(true, std::sync::atomic::Ordering::Relaxed);
        shared.clients.register(client.handle.clone());
        let _listed = Unlist(shared, client.id);
        let mut offset = {
            let st = shared.repl.state();
            client.db = st.master_db;
            st.offset
        };
        client.handle.state.lock().db = client.db;
        let mut out = ReplyBuf::new();
        // Bytes of a transaction read and queued but not yet run: as Redis's master client,
        // the applied offset moves past MULTI ... EXEC only at its EXEC, so a link cut inside
        // one resumes before its MULTI (the queued part dies with this client).
        let mut in_multi: i64 = 0;
        let mut last_ack = Instant::now() - Duration::from_secs(1);
        let timeout = self.timeout();
        let mut last_io = Instant::now();
        // What was applied, to pass on to this server's own replicas (the master's bytes as
        // they are, so that offsets agree down a chain); a transaction's once its EXEC ran.
        let mut to_feed: Vec<u8> = Vec::new();
        let mut ready_to_feed = 0;
        loop {
            input.compact();
            parser.rebase(0);
            let mut consumed = 0;
            let apply = shared.repl.apply.lock();
            // A command CLIENT PAUSE holds: it stays in `input`, and the link goes on reading
            // (slave_read_repl_offset grows, slave_repl_offset does not) until the pause ends.
            let mut held = false;
            loop {
                let data = &input.buf[..];
                match parser.parse(data) {
                    Ok(Parsed::Request { end }) => {
                        let argv = parser.argv(data);
                        if crate::commands::dispatch::held_by_pause(shared, &client, &argv) {
                            held = true;
                            break;
                        }
                        let getack = argv.len() >= 2
                            && argv[0].eq_ignore_ascii_case(b"replconf")
                            && argv[1].eq_ignore_ascii_case(b"getack");
                        if getack {
                            // The offset before this command, as Redis answers it.
                            let mut ack = Vec::new();
                            let off = offset.to_string();
                            encode_command(&mut ack, &[&b"REPLCONF"[..], b"ACK", off.as_bytes()]);
                            self.stream.as_mut().expect("connected").write_all(&ack)?;
                            last_ack = Instant::now();
                        } else if !argv.is_empty() {
                            out.clear();
                            crate::commands::execute(shared, &mut client, &argv, &mut out);
                            if out.as_bytes().first() == Some(&b'-') {
                                diverged(shared, &argv, out.as_bytes());
                            }
                        }
                        in_multi += (end - consumed) as i64;
                        to_feed.extend_from_slice(&data[consumed..end]);
                        consumed = end;
                        if client.multi.is_none() {
                            offset += in_multi;
                            in_multi = 0;
                            ready_to_feed = to_feed.len();
                        }
                    }
                    Ok(Parsed::Incomplete { .. }) => break,
                    Err(e) => return Err(LinkError::Protocol(e.to_string())),
                }
            }
            // The parser skips blank lines without a request: they count as read.
            if !held && parser.is_idle() && parser.position() > consumed {
                in_multi += (parser.position() - consumed) as i64;
                to_feed.extend_from_slice(&input.buf[consumed..parser.position()]);
                consumed = parser.position();
                if client.multi.is_none() {
                    offset += in_multi;
                    in_multi = 0;
                    ready_to_feed = to_feed.len();
                }
            }
            if ready_to_feed > 0 {
                shared.repl.backlog.feed_raw(&to_feed[..ready_to_feed]);
                to_feed.drain(..ready_to_feed);
                ready_to_feed = 0;
            }
            if held {
                // Parsed again from its start once the pause is over.
                input.buf.drain(..consumed);
                parser = RequestParser::new(limits);
            } else {
                let start = parser.request_start();
                input.buf.drain(..start);
                parser.rebase(start);
            }
            if let Some(wait) = client.pending_ack.take() {
                shared.aof_handle().write_through(wait.ticket());
            }
            {
                let mut st = shared.repl.state();
                if st.generation != self.generation {
                    return Err(LinkError::Superseded);
                }
                st.offset = offset;
                // Queued commands have not run: the db is that of `offset`.
                st.master_db = client.db;
                st.read_offset = offset + in_multi + input.buf.len() as i64;
                st.last_io = Some(last_io);
            }
            drop(apply);
            let _ = consumed;
            if client.handle.is_killed() {
                return Err(LinkError::Io(io::Error::other("killed (CLIENT KILL)")));
            }
            if last_ack.elapsed() >= Duration::from_secs(1) {
                let mut ack = Vec::new();
                let off = offset.to_string();
                encode_command(&mut ack, &[&b"REPLCONF"[..], b"ACK", off.as_bytes()]);
                self.stream().write_all(&ack)?;
                last_ack = Instant::now();
            }
            if self.fill(input, last_io + timeout)? > 0 {
                last_io = Instant::now();
            }
        }
    }
}

/// A command from the master failed here, which it did not there: the data sets may now
/// differ. Logged as Redis's afterErrorReply logs it (its tests look for the line), and
/// counted; the stream goes on (`propagation-error-behavior ignore`, Redis's default).
#[cold]
fn diverged(shared: &Shared, argv: &[&[u8]], reply: &[u8]) {
    let err = reply[1..].strip_suffix(b"\r\n").unwrap_or(&reply[1..]);
    let err = &err[..err.len().min(4096)];
    let name = crate::commands::lookup(argv[0]).map_or("<unknown>", |s| s.name);
    log::warn!(
        "== CRITICAL == This replica is sending an error to its master: '{}' after \
         processing the command '{name}'",
        String::from_utf8_lossy(err)
    );
    shared
        .stats
        .unexpected_error_replies
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}
