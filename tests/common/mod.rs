//! Shared helpers for the integration tests: start rudis (and a real redis-server) on free ports
//! in temp dirs, and talk raw RESP to them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rudis::resp::reply::encode_command;
use rudis::resp::Frame;

pub const BIN: &str = env!("CARGO_BIN_EXE_rudis-server");

/// A port no other test of this run holds. The kernel's `bind(0)` picks from the ephemeral range,
/// which every outgoing connection also draws its local port from: between the probe and the
/// server's own bind, a test client's connection could take the port (CI saw redis-server fail
/// with "Address already in use"). So ports come from below the ephemeral range, handed out in
/// turn from a per-process starting point, and each is probed before it is given.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (start, end) = (10000u32, low.max(10001));
    if low > 10100 {
        let span = end - start;
        let _ = NEXT.compare_exchange(
            u32::MAX,
            (std::process::id().wrapping_mul(7919)) % span,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        for _ in 0..span {
            let port = (start + NEXT.fetch_add(1, Ordering::SeqCst) % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// redis-check-rdb's verdict on `path`: (valid, its output).
pub fn check_rdb(path: &Path) -> (bool, String) {
    require_tool("redis-check-rdb");
    let out = Command::new("redis-check-rdb")
        .arg(path)
        .output()
        .expect("run redis-check-rdb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && text.contains("RDB looks OK"), text)
}

/// Fails the test with an install hint when a tool is missing.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run `apt-get install -y redis-server redis-tools` (bash .ci/run does)"
    );
}

pub fn wait_ready(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited early ({status}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok() {
                let mut b = [0u8; 64];
                if let Ok(n) = s.read(&mut b) {
                    if b[..n].starts_with(b"+PONG") {
                        return;
                    }
                    // A server with a password answers NOAUTH, before it would answer LOADING:
                    // it is up once its log says it has loaded (rudis's and Redis's "ready to
                    // accept connections" follow the load).
                    let loaded = || {
                        std::fs::read_to_string(log)
                            .is_ok_and(|l| l.contains("eady to accept connections"))
                    };
                    if b[..n].starts_with(b"-NOAUTH") && loaded() {
                        return;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not answer PING on port {port}");
}

/// A rudis-server process, killed on drop.
pub struct Rudis {
    pub port: u16,
    pub dir: PathBuf,
    pub child: Child,
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Rudis {
    /// Starts rudis in a fresh temp dir with extra flags.
    pub fn start(extra: &[&str]) -> Rudis {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut r = Rudis::start_in(&dir, extra);
        r._tmp = Some(tmp);
        r
    }

    /// Starts rudis with `--dir dir` (the dir outlives the server: restarts reuse it).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Rudis {
        let port = free_port();
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn_rudis(port, dir, &args);
        let mut r = Rudis {
            port,
            dir: dir.to_path_buf(),
            child,
            args,
            _tmp: None,
        };
        let log = r.log_path();
        wait_ready(port, &mut r.child, "rudis-server", &log);
        r
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("rudis-{}.log", self.port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn aof_path(&self) -> PathBuf {
        self.dir.join("appendonly.aof")
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same server again on the same dir (and a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.port = free_port();
        self.child = spawn_rudis(self.port, &self.dir, &self.args);
        let log = self.log_path();
        wait_ready(self.port, &mut self.child, "rudis-server", &log);
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect with the redis crate")
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }
}

fn spawn_rudis(port: u16, dir: &Path, args: &[String]) -> Child {
    let log = std::fs::File::create(dir.join(format!("rudis-{port}.log"))).expect("log file");
    // A config file goes first, as redis-server takes it.
    let (file, args) = match args.split_first() {
        Some((f, rest)) if !f.starts_with('-') => (Some(f), rest),
        _ => (None, args),
    };
    Command::new(BIN)
        .args(file)
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn rudis-server")
}

/// Starts the binary with `args`, returning its exit status and stderr if it exits within a
/// few seconds, or None if it is still running (then it is killed).
pub fn run_briefly(args: &[&str]) -> Option<(bool, String)> {
    // In a directory of its own: a server that gets as far as opening its AOF or dump.rdb
    // before it stops must not leave them in the checkout.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            return Some((status.success(), err));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for Rudis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real redis-server, for differential tests. Killed on drop.
pub struct RealRedis {
    pub port: u16,
    child: Child,
    _tmp: tempfile::TempDir,
}

impl RealRedis {
    pub fn start(extra: &[&str]) -> RealRedis {
        require_tool("redis-server");
        let tmp = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = tmp.path().join("redis.log");
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", ""])
            .args(["--appendonly", "no", "--logfile"])
            .arg(&log)
            .arg("--dir")
            .arg(tmp.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        wait_ready(port, &mut child, "redis-server", &log);
        RealRedis {
            port,
            child,
            _tmp: tmp,
        }
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    pub fn dir(&self) -> &Path {
        self._tmp.path()
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to 127.0.0.1:`port` from source address `src` (any 127.x.y.z works on
/// Linux's loopback interface; Redis counts only 127.0.0.1 and ::1 as local).
pub fn connect_from(src: std::net::Ipv4Addr, port: u16) -> TcpStream {
    // SAFETY: plain socket calls on a descriptor owned here and handed to TcpStream.
    unsafe {
        use std::os::fd::FromRawFd;
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(src).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let sap = &sa as *const libc::sockaddr_in as *const libc::sockaddr;
        assert_eq!(libc::bind(fd, sap, len), 0, "bind {src}");
        sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        sa.sin_port = port.to_be();
        let sap = &sa as *const libc::sockaddr_in as *const libc::sockaddr;
        assert_eq!(libc::connect(fd, sap, len), 0, "connect");
        TcpStream::from_raw_fd(fd)
    }
}

/// Waits until the server reports `n` blocked clients.
pub fn wait_blocked(port: u16, n: usize) {
    let mut c = Raw::connect(port);
    let want = format!("blocked_clients:{n}\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = c.cmd(&["INFO", "clients"]);
        if String::from_utf8_lossy(&info).contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never {want:?}: {}", show(&info));
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `scenario` (a blocking scenario, say) against rudis (with `rudis_args`) and redis-server; both must give the same
/// transcript, which is returned.
pub fn both(rudis_args: &[&str], scenario: impl Fn(u16) -> Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let real = RealRedis::start(&[]);
    let expected = scenario(real.port);
    let rudis = Rudis::start(rudis_args);
    let got = scenario(rudis.port);
    let s = |t: &[Vec<u8>]| t.iter().map(|r| show(r)).collect::<Vec<_>>();
    assert_eq!(s(&got), s(&expected), "rudis vs redis-server");
    got
}

/// Clients that block in turn, one at a time (so their order is known).
pub fn blocked_clients(port: u16, cmds: &[&[&str]]) -> Vec<Raw> {
    cmds.iter()
        .enumerate()
        .map(|(i, cmd)| {
            let mut c = Raw::connect(port);
            c.send(cmd);
            wait_blocked(port, i + 1);
            c
        })
        .collect()
}

/// Runs a SCAN-family command (`prefix` is e.g. `["HSCAN", "key"]`) with COUNT `count` from
/// cursor 0 until the cursor is 0 again. Returns every element of every page in order, the
/// number of calls, and the largest page's element count.
pub fn scan_pages(c: &mut Raw, prefix: &[&str], count: usize) -> (Vec<Vec<u8>>, usize, usize) {
    let (mut cursor, mut items, mut calls, mut largest) = ("0".to_string(), Vec::new(), 0, 0);
    loop {
        let count = count.to_string();
        let mut cmd: Vec<&str> = prefix.to_vec();
        cmd.extend([cursor.as_str(), "COUNT", &count]);
        let reply = c.frame(&cmd);
        let Frame::Array(parts) = reply else {
            panic!("{reply:?}")
        };
        let (Frame::Bulk(next), Frame::Array(page)) = (&parts[0], &parts[1]) else {
            panic!("{parts:?}")
        };
        largest = largest.max(page.len());
        for item in page {
            let Frame::Bulk(b) = item else {
                panic!("{item:?}")
            };
            items.push(b.clone());
        }
        calls += 1;
        cursor = String::from_utf8(next.clone()).unwrap();
        if cursor == "0" {
            return (items, calls, largest);
        }
    }
}

/// A server started by hand, killed when the test ends, passed or not (a panicking test
/// would otherwise leave it running).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A raw RESP connection: send commands, read whole replies as bytes.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        Raw::from_stream(TcpStream::connect(("127.0.0.1", port)).expect("connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let mut out = Vec::new();
        encode_command(&mut out, args);
        self.stream.write_all(&out).expect("send");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends `cmds` pipelined, 500 at a time, and fails the test on any error reply.
    pub fn pipeline_ok<A: AsRef<[u8]>>(&mut self, cmds: &[Vec<A>]) {
        for chunk in cmds.chunks(500) {
            let mut out = Vec::new();
            for cmd in chunk {
                encode_command(&mut out, cmd);
            }
            self.send_raw(&out);
            for cmd in chunk {
                let r = self.read_reply();
                assert!(
                    !r.starts_with(b"-"),
                    "{:?}: {}",
                    String::from_utf8_lossy(cmd[0].as_ref()),
                    show(&r)
                );
            }
        }
    }

    /// The next reply's raw bytes. Panics on timeout or close.
    pub fn read_reply(&mut self) -> Vec<u8> {
        self.try_read_reply()
            .expect("connection closed before a reply")
    }

    /// The next reply's raw bytes, or None if the server closed the connection.
    pub fn try_read_reply(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some((_, n)) = Frame::parse(&self.buf).expect("server sent invalid RESP") {
                return Some(self.buf.drain(..n).collect());
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                // A read with a timeout is not restarted after a signal.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading a reply: {e}"),
            }
        }
    }

    /// The next reply's raw bytes together with any RESP3 pushes before it (a push is not a
    /// reply: DEBUG PROTOCOL push, for one, writes a push and then its reply).
    pub fn read_reply_with_pushes(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        loop {
            let reply = self.read_reply();
            let push = reply.starts_with(b">");
            bytes.extend(reply);
            if !push {
                return bytes;
            }
        }
    }

    pub fn read_frame(&mut self) -> Frame {
        let bytes = self.read_reply();
        Frame::parse(&bytes).expect("valid").expect("complete").0
    }

    /// Sends one command and returns its raw reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    pub fn frame<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        self.send(args);
        self.read_frame()
    }

    /// True once the server has closed the connection (reads EOF or reset).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        loop {
            match self.stream.read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return matches!(r, Ok(0) | Err(_)),
            }
        }
    }
}

/// EXEC's replies, one per command of `cmds`: each time `setup` runs, one client WATCHes `key`,
/// another runs the command, and the first runs MULTI, PING, EXEC (`*-1`: WATCH saw a change).
fn watch_outcomes(port: u16, key: &str, setup: &[&[&str]], cmds: &[&[&str]]) -> Vec<Vec<u8>> {
    let mut a = Raw::connect(port);
    let mut b = Raw::connect(port);
    let mut got = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        for s in setup {
            a.cmd(s);
        }
        a.cmd(&["WATCH", key]);
        b.cmd(cmd);
        a.cmd(&["MULTI"]);
        a.cmd(&["PING", &i.to_string()]);
        got.push(a.cmd(&["EXEC"]));
    }
    got
}

/// `watch_outcomes` on rudis and on redis-server: the replies must be the same, and the
/// command at index `i` must count as a change exactly when `changes(i)`.
pub fn assert_watch_outcomes(
    key: &str,
    setup: &[&[&str]],
    cmds: &[&[&str]],
    changes: impl Fn(usize) -> bool,
) {
    let r = Rudis::start(&[]);
    let redis = RealRedis::start(&[]);
    let ours = watch_outcomes(r.port, key, setup, cmds);
    assert_eq!(ours, watch_outcomes(redis.port, key, setup, cmds));
    for (i, reply) in ours.iter().enumerate() {
        assert_eq!(
            reply.starts_with(b"*-1"),
            changes(i),
            "{i}: {}",
            show(reply)
        );
    }
}

/// Runs `redis-cli` with `args` against `port`, returning stdout.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    require_tool("redis-cli");
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A numeric field of INFO `section`.
pub fn info_number(c: &mut Raw, section: &str, field: &str) -> u64 {
    let text = String::from_utf8_lossy(&c.cmd(&["INFO", section])).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\\r\\n")
}

/// A tiny xorshift64 generator for the tests: seeded for a script that is the same every run,
/// or from the clock where only spread matters (kill moments).
pub struct Rng(u64);

impl Rng {
    /// `seed` must not be 0.
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn from_clock() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(t | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Between `min` and `max` bytes, each drawn from `alphabet`.
    pub fn bytes(&mut self, alphabet: &[u8], min: u64, max: u64) -> Vec<u8> {
        let len = min + self.below(max - min + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize])
            .collect()
    }
}
