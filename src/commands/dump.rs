//! DUMP, RESTORE and MIGRATE (Redis's cluster.c): a value as Redis's payload (the RDB value,
//! the RDB version in two bytes, a CRC-64 of both), so that keys move between rudis and Redis.

use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, KEY1};
use crate::notify::events::class::GENERIC;
use crate::rdb::{file::Options, read, write};
use crate::resp::reply::encode_command;
use crate::shared::Shared;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("dump", 2, READONLY, KEY1, dump),
    cmd!("restore", -4, WRITE | DENYOOM, KEY1, restore),
    // MIGRATE's to a cluster node importing the slot; standalone, it is RESTORE.
    cmd!(
        "restore-asking",
        -4,
        WRITE | DENYOOM | ASKING,
        KEY1,
        restore
    ),
    cmd!(
        "migrate",
        -6,
        WRITE | MOVABLEKEYS,
        super::Keys::Migrate,
        migrate
    ),
];

/// `rdbcompression` and `rdbchecksum` as they are now.
pub fn rdb_options(shared: &Shared) -> Options {
    let c = shared.config.read();
    let yes = |name: &str| c.get(name).is_none_or(|v| v == "yes");
    Options {
        compression: yes("rdbcompression"),
        checksum: yes("rdbchecksum"),
        key_delay: c
            .get("rdb-key-save-delay")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

fn dump(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let compress = rdb_options(ctx.shared).compression;
    match ctx.ks.get(argv[1]) {
        Some(v) => {
            let payload = write::dump_payload(v, compress);
            ctx.out.bulk(&payload);
        }
        None => ctx.out.null_bulk(),
    }
    Ok(())
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency], checked in
/// Redis's order: options, the key, the TTL, the payload. IDLETIME and FREQ are checked and
/// otherwise ignored: rudis keeps no LRU/LFU data.
fn restore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None, None);
    let mut i = 4;
    while i < argv.len() {
        let a = argv[i];
        let more = i + 1 < argv.len();
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && more && freq.is_none() {
            let v = args::int(argv[i + 1])?;
            if v < 0 {
                return Err(CommandError::Err(
                    "Invalid IDLETIME value, must be >= 0".into(),
                ));
            }
            idle = Some(v);
            i += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && more && idle.is_none() {
            let v = args::int(argv[i + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CommandError::Err(
                    "Invalid FREQ value, must be >= 0 and <= 255".into(),
                ));
            }
            freq = Some(v);
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if !replace && ctx.ks.get(key).is_some() {
        return Err(CommandError::Coded(
            "BUSYKEY Target key name already exists.".into(),
        ));
    }
    let ttl = args::int(argv[2])?;
    if ttl < 0 {
        return Err(CommandError::Err("Invalid TTL value, must be >= 0".into()));
    }
    let Some(body) = read::verify_payload(argv[3]) else {
        return Err(CommandError::Err(
            "DUMP payload version or checksum are wrong".into(),
        ));
    };
    let bad = || CommandError::Err("Bad data format".into());
    // Why, in the log at verbose (as Redis's rdbReportError in a RESTORE): the client only
    // hears "Bad data format".
    let refused = |e: crate::rdb::RdbError| {
        log::debug!(
            "RESTORE of key '{}' refused: bad payload {e}",
            String::from_utf8_lossy(key)
        );
        bad()
    };
    let mut r = read::Reader::new(body, 0);
    let t = r.byte("a type").map_err(refused)?;
    // An empty collection is as bad a payload here as a malformed one.
    let v = read::value(&mut r, t).map_err(refused)?.ok_or_else(bad)?;
    let deleted = replace && ctx.ks.remove(key).is_some();
    let deadline = match ttl {
        0 => None,
        t if absttl => Some(t as u64),
        t => Some(ctx.now_ms().saturating_add(t as u64)),
    };
    if deadline.is_some_and(|d| d <= ctx.now_ms()) {
        // Already expired: the key is not created (and an old one REPLACE removed stays gone).
        if deleted {
            ctx.notify(GENERIC, "del", key);
            ctx.dirty(1);
            ctx.propagate(&[&b"DEL"[..], key]);
        }
        ctx.out.ok();
        return Ok(());
    }
    ctx.ks.set(key, v);
    if let Some(k) = ctx.ks.stored_key(key) {
        crate::store::evict::set_hints(k, freq.map(|f| f as u8), idle.map(|i| i as u64));
    }
    if let Some(d) = deadline {
        ctx.ks.set_deadline(key, Some(d));
        if !absttl {
            // Logged with its absolute deadline, as Redis propagates it.
            let d = d.to_string();
            let mut logged: Vec<&[u8]> = argv.to_vec();
            logged[2] = d.as_bytes();
            logged.push(b"ABSTTL");
            ctx.propagate(&logged);
        }
    }
    ctx.notify(GENERIC, "restore", key);
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

/// Connections MIGRATE keeps open to its targets, by `host:port`, as Redis's
/// migrate_cached_sockets: at most 64, each closed once idle for 10 seconds.
static MIGRATE_SOCKETS: std::sync::LazyLock<Mutex<HashMap<Vec<u8>, Target>>> =
    std::sync::LazyLock::new(Default::default);
const MIGRATE_CACHE_ITEMS: usize = 64;
const MIGRATE_CACHE_TTL: Duration = Duration::from_secs(10);

/// Closes the cached connections idle for 10 seconds (Redis's migrateCloseTimedoutSockets,
/// run from its cron) and says how many stay open (INFO's `migrate_cached_sockets`).
pub fn close_idle_migrate_sockets() -> usize {
    let mut cache = MIGRATE_SOCKETS.lock();
    cache.retain(|_, t| t.last_use.elapsed() <= MIGRATE_CACHE_TTL);
    cache.len()
}

/// A connection to a MIGRATE target.
struct Target {
    stream: TcpStream,
    /// What was read past the last line.
    pending: Vec<u8>,
    /// The database its last SELECT chose (None: unknown, select first).
    db: Option<i64>,
    last_use: Instant,
}

/// How talking to the target failed: a timeout is not retried (as Redis's ETIMEDOUT).
struct Failed {
    timed_out: bool,
}

impl From<std::io::Error> for Failed {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        Failed {
            timed_out: matches!(e.kind(), TimedOut | WouldBlock),
        }
    }
}

impl Target {
    /// None: no address, or the connection timed out (Redis's "connecting" error). A refused
    /// connection is a failed write, as Redis finds it: its non-blocking connect completes,
    /// and the first write fails.
    fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Option<Result<Target, Failed>> {
        let host = std::str::from_utf8(host).ok()?;
        let port: u16 = std::str::from_utf8(port).ok()?.parse().ok()?;
        let addr = (host, port).to_socket_addrs().ok()?.next()?;
        let stream = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return None,
            Err(_) => return Some(Err(Failed { timed_out: false })),
        };
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(timeout)).ok()?;
        stream.set_write_timeout(Some(timeout)).ok()?;
        Some(Ok(Target {
            stream,
            pending: Vec::new(),
            db: None,
            last_use: Instant::now(),
        }))
    }

    /// The cached connection to `name`, if one is fresh enough.
    fn cached(name: &[u8], timeout: Duration) -> Option<Target> {
        let t = MIGRATE_SOCKETS.lock().remove(name)?;
        if t.last_use.elapsed() > MIGRATE_CACHE_TTL {
            return None;
        }
        t.stream.set_read_timeout(Some(timeout)).ok()?;
        t.stream.set_write_timeout(Some(timeout)).ok()?;
        Some(t)
    }

    fn keep(mut self, name: &[u8]) {
        self.last_use = Instant::now();
        let mut cache = MIGRATE_SOCKETS.lock();
        cache.retain(|_, t| t.last_use.elapsed() <= MIGRATE_CACHE_TTL);
        if cache.len() >= MIGRATE_CACHE_ITEMS {
            // Full: one goes (Redis drops one at random).
            if let Some(k) = cache.keys().next().cloned() {
                cache.remove(&k);
            }
        }
        cache.insert(name.to_vec(), self);
    }

    /// One reply line, without its CRLF (the target's replies here are all one line).
    fn line(&mut self) -> Result<Vec<u8>, Failed> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = self.pending[..i].to_vec();
                self.pending.drain(..i + 2);
                return Ok(line);
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(Failed { timed_out: false });
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

/// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw] [KEYS k...]:
/// RESTOREs the keys on the target, then (without COPY) deletes those it acknowledged, logged
/// as one DEL. Redis's replies: NOKEY, IOERR, the target's error. The keys stay locked while
/// the target answers, as Redis's whole server waits for it.
fn migrate(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (mut copy, mut replace) = (false, false);
    let (mut user, mut password): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    let mut keys: &[&[u8]] = &argv[3..4];
    let mut j = 6;
    while j < argv.len() {
        let a = argv[j];
        let more = argv.len() - 1 - j;
        if a.eq_ignore_ascii_case(b"copy") {
            copy = true;
        } else if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"auth") && more >= 1 {
            password = Some(argv[j + 1]);
            j += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") && more >= 2 {
            user = Some(argv[j + 1]);
            password = Some(argv[j + 2]);
            j += 2;
        } else if a.eq_ignore_ascii_case(b"keys") {
            if !argv[3].is_empty() {
                return Err(CommandError::Err(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty \
                     string"
                        .into(),
                ));
            }
            keys = &argv[j + 1..];
            break;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    let timeout = args::int(argv[5])?;
    let dbid = args::int(argv[4])?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let keys: Vec<&[u8]> = keys
        .iter()
        .copied()
        .filter(|k| ctx.ks.get(k).is_some())
        .collect();
    if keys.is_empty() {
        ctx.out.simple("NOKEY");
        return Ok(());
    }
    let (host, port) = (argv[1], argv[2]);
    let name = [host, b":", port].concat();
    let compress = rdb_options(ctx.shared).compression;
    let mut may_retry = true;
    loop {
        let target = match Target::cached(&name, timeout) {
            Some(t) => Some(Ok(t)),
            None => Target::connect(host, port, timeout),
        };
        let mut target = match target {
            Some(Ok(t)) => t,
            Some(Err(f)) if may_retry && !f.timed_out => {
                may_retry = false;
                continue;
            }
            Some(Err(_)) => {
                return Err(CommandError::Coded(
                    "IOERR error or timeout writing to target instance".into(),
                ))
            }
            None => {
                return Err(CommandError::Coded(
                    "IOERR error or timeout connecting to the client".into(),
                ))
            }
        };
        let mut cmd = Vec::new();
        if let Some(pw) = password {
            match user {
                Some(u) => encode_command(&mut cmd, &[&b"AUTH"[..], u, pw]),
                None => encode_command(&mut cmd, &[&b"AUTH"[..], pw]),
            }
        }
        let select = target.db != Some(dbid);
        if select {
            encode_command(&mut cmd, &[&b"SELECT"[..], dbid.to_string().as_bytes()]);
        }
        let now = ctx.now_ms();
        let mut sent: Vec<&[u8]> = Vec::with_capacity(keys.len());
        for &k in &keys {
            let Some(v) = ctx.ks.get(k) else { continue };
            let ttl = match ctx.ks.deadline(k) {
                Some(d) if d < now => continue,
                Some(d) => (d - now).max(1),
                None => 0,
            };
            let payload = write::dump_payload(v, compress);
            let ttl = ttl.to_string();
            let mut restore: Vec<&[u8]> = vec![b"RESTORE", k, ttl.as_bytes(), &payload];
            if replace {
                restore.push(b"REPLACE");
            }
            encode_command(&mut cmd, &restore);
            sent.push(k);
        }
        let written = target.stream.write_all(&cmd).map_err(Failed::from);
        let mut failure = written.err();
        let write_error = failure.is_some();
        let mut first_error: Option<Vec<u8>> = None;
        let mut acked: Vec<&[u8]> = Vec::new();
        let mut read_all = false;
        if failure.is_none() {
            let mut heads = Vec::new();
            let res = (|| -> Result<(), Failed> {
                if password.is_some() {
                    heads.push(target.line()?);
                }
                if select {
                    heads.push(target.line()?);
                }
                Ok(())
            })();
            failure = res.err();
            if failure.is_none() {
                read_all = true;
                let head_error = heads.iter().find(|l| l.first() == Some(&b'-')).cloned();
                for &k in &sent {
                    let line = match target.line() {
                        Ok(l) => l,
                        Err(f) => {
                            failure = Some(f);
                            read_all = false;
                            break;
                        }
                    };
                    let error = head_error
                        .clone()
                        .or_else(|| (line.first() == Some(&b'-')).then(|| line.clone()));
                    match error {
                        Some(e) => {
                            first_error.get_or_insert(e);
                        }
                        None if !copy => acked.push(k),
                        None => {}
                    }
                }
            }
        }
        // A retry only when nothing was processed: the write failed, or no reply came.
        let nothing_done = acked.is_empty() && first_error.is_none();
        if let Some(f) = &failure {
            if nothing_done && may_retry && !f.timed_out {
                may_retry = false;
                continue;
            }
        }
        for &k in &acked {
            ctx.ks.remove(k);
            ctx.notify(GENERIC, "del", k);
            ctx.dirty(1);
        }
        if !acked.is_empty() {
            let mut del: Vec<&[u8]> = vec![b"DEL"];
            del.extend(&acked);
            ctx.propagate(&del);
        }
        if let Some(e) = first_error {
            // The target's database is no longer known.
            target.db = None;
            if read_all {
                target.keep(&name);
            }
            return Err(CommandError::Err(format!(
                "Target instance replied with error: {}",
                String::from_utf8_lossy(&e[1..])
            )));
        }
        if failure.is_some() {
            return Err(CommandError::Coded(format!(
                "IOERR error or timeout {} to target instance",
                if write_error { "writing" } else { "reading" }
            )));
        }
        target.db = Some(dbid);
        target.keep(&name);
        ctx.out.ok();
        return Ok(());
    }
}
