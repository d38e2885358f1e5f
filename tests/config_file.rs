//! rudis on Redis's own redis.conf: Debian's shipped file starts and serves, directives rudis
//! cannot honour stop it, ignored ones give one warning, `bind` with several addresses,
//! `daemonize` with a pid file, CONFIG GET * against a real redis-server, and CONFIG REWRITE
//! round-trips.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Raw, RealRedis, BIN};
use rudis::resp::Frame;

const SHIPPED: &str = "/etc/redis/redis.conf";

/// A copy of Debian's redis.conf in `dir`.
fn shipped_copy(dir: &Path) -> PathBuf {
    assert!(
        Path::new(SHIPPED).exists(),
        "{SHIPPED} is missing: run `apt-get install -y redis-server` (bash .ci/run does)"
    );
    let to = dir.join("redis.conf");
    std::fs::copy(SHIPPED, &to).expect("copy redis.conf");
    to
}

/// What a test overrides in the shipped file: the port, where the data and log go, and
/// staying in the foreground.
fn overrides(port: u16, dir: &Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--dir",
        dir.to_str().unwrap(),
        "--logfile",
        "",
        "--pidfile",
        "",
        "--daemonize",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A server started by a test, killed on drop.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `program` with `args` (output to a log in `dir`) and waits for PING on `port`.
fn start(program: &str, args: &[String], port: u16, dir: &Path) -> Server {
    let log = dir.join(format!("out-{port}.log"));
    let f = std::fs::File::create(&log).unwrap();
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .expect("spawn");
    let mut s = Server { child, log };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(st)) = s.child.try_wait() {
            panic!("{program} exited ({st}):\n{}", s.log());
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let mut r = Raw::connect(port);
            if r.cmd(&["PING"]) == b"+PONG\r\n" {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "no PING on {port}:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rudis_on(conf: &Path, extra: &[String], port: u16, dir: &Path) -> Server {
    let mut args = vec![conf.to_str().unwrap().to_string()];
    args.extend_from_slice(extra);
    start(BIN, &args, port, dir)
}

/// Runs rudis expecting it to stop at once: (exit status success, stderr).
fn run_to_exit(args: &[&str]) -> (bool, String) {
    common::run_briefly(args).unwrap_or_else(|| panic!("rudis-server {args:?} did not stop"))
}

fn config_get(port: u16, pattern: &str) -> BTreeMap<String, String> {
    let mut raw = Raw::connect(port);
    let Frame::Array(items) = raw.frame(&["CONFIG", "GET", pattern]) else {
        panic!("CONFIG GET {pattern}: not an array");
    };
    let text = |f: &Frame| match f {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("not a bulk: {other:?}"),
    };
    items
        .chunks(2)
        .map(|p| (text(&p[0]), text(&p[1])))
        .collect()
}

#[test]
fn starts_on_the_shipped_file_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = shipped_copy(tmp.path());
    let port = free_port();
    let s = rudis_on(&conf, &overrides(port, tmp.path()), port, tmp.path());
    let mut raw = Raw::connect(port);
    assert_eq!(raw.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    let got = config_get(port, "*");
    // From the file, with the command line on top.
    for (name, want) in [
        ("bind", "127.0.0.1 -::1"),
        ("databases", "16"),
        ("appendonly", "no"),
        ("appendfilename", "appendonly.aof"),
        ("tcp-backlog", "511"),
        ("tcp-keepalive", "300"),
        ("protected-mode", "yes"),
        ("supervised", "no"),
        ("daemonize", "no"),
        ("maxmemory", "0"),
        ("hash-max-listpack-entries", "512"),
        ("hash-max-ziplist-entries", "512"),
        ("save", "3600 1 300 100 60 10000"),
    ] {
        assert_eq!(got.get(name).map(String::as_str), Some(want), "{name}");
    }
    assert_eq!(got["port"], port.to_string());
    let log = s.log();
    assert_eq!(
        log.lines().filter(|l| l.contains("ignores these")).count(),
        1,
        "one warning for all ignored directives:\n{log}"
    );
    assert!(log.contains("lazyfree-lazy-eviction"), "{log}");
}

#[test]
fn a_missing_file_stops_start_up() {
    let (ok, err) = run_to_exit(&["/nonexistent/redis.conf"]);
    assert!(!ok);
    assert!(
        err.contains("can't open config file '/nonexistent/redis.conf'"),
        "{err}"
    );
}

#[test]
fn refused_directives_stop_start_up_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("r.conf");
    for (line, what) in [
        // Replication is applied (tests/replication.rs); a bad port is Redis's error.
        ("replicaof 10.0.0.1 nope", "Invalid master port"),
        ("slaveof 10.0.0.1", "wrong number of arguments"),
        (
            "rename-command nosuch x",
            "No such command in rename-command",
        ),
        (
            "rename-command get set",
            "Target command name already exists",
        ),
        (
            "cluster-enabled yes",
            "'cluster-enabled' asks for cluster mode",
        ),
        ("loadmodule /x.so", "'loadmodule' asks for modules"),
        (
            "user alice on badrule",
            "Error in user declaration 'alice': Syntax error",
        ),
        (
            "frobnicate yes",
            "Bad directive or wrong number of arguments",
        ),
    ] {
        let dir = tmp.path().display();
        std::fs::write(&conf, format!("port 0\ndir {dir}\n{line}\n")).unwrap();
        let (ok, err) = run_to_exit(&[conf.to_str().unwrap()]);
        assert!(!ok, "{line}: started");
        assert!(
            err.contains("*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***")
                && err.contains(&format!(">>> '{line}'"))
                && err.contains(what),
            "{line}: {err}"
        );
    }
    // On the command line too, after the file.
    std::fs::write(&conf, format!("port 0\ndir {}\n", tmp.path().display())).unwrap();
    let (ok, err) = run_to_exit(&[conf.to_str().unwrap(), "--cluster-enabled", "yes"]);
    assert!(
        !ok && err.contains("'cluster-enabled' asks for cluster mode"),
        "{err}"
    );
}

#[test]
fn ignored_directives_give_one_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = tmp.path().join("i.conf");
    std::fs::write(
        &conf,
        "hz 20\nlazyfree-lazy-eviction yes\nslowlog-max-len 64\nstream-node-max-entries 64\nzset-max-ziplist-entries 64\n\
         list-max-ziplist-size -3\nappendonly no\n",
    )
    .unwrap();
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--activerehashing",
        "no",
        "--set-max-intset-entries",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let s = rudis_on(&conf, &args, port, tmp.path());
    let log = s.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ignores these"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].ends_with("hz, lazyfree-lazy-eviction, activerehashing"),
        "{log}"
    );
    let got = config_get(port, "*");
    assert_eq!(got["hz"], "20");
    assert_eq!(got["slowlog-max-len"], "64");
    assert_eq!(got["stream-node-max-entries"], "64");
    // Applied, under their old names too: not among the ignored.
    assert_eq!(got["zset-max-ziplist-entries"], "64");
    assert_eq!(got["zset-max-listpack-entries"], "64");
    assert_eq!(got["list-max-ziplist-size"], "-3");
    assert_eq!(got["list-max-listpack-size"], "-3");
    assert_eq!(got["activerehashing"], "no");
    // The encoding limits are not ignored: they take effect, from a flag as from the file.
    assert_eq!(got["set-max-intset-entries"], "2");
    let mut raw = Raw::connect(port);
    raw.cmd(&["SADD", "s", "1", "2", "3"]);
    assert_eq!(
        raw.cmd(&["OBJECT", "ENCODING", "s"]),
        b"$9\r\nhashtable\r\n"
    );
    // CONFIG SET takes the mutable ones, several at once, and refuses the rest as Redis.
    let mut raw = Raw::connect(port);
    assert_eq!(
        raw.cmd(&[
            "CONFIG",
            "SET",
            "hz",
            "30",
            "maxmemory-policy",
            "allkeys-lru"
        ]),
        b"+OK\r\n"
    );
    assert_eq!(
        config_get(port, "maxmemory-p*")["maxmemory-policy"],
        "allkeys-lru"
    );
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "daemonize", "yes"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config\r\n"
    );
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "hz", "x"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer\r\n"
    );
    // A real limit since maxmemory landed (tests/maxmemory.rs).
    assert_eq!(raw.cmd(&["CONFIG", "SET", "maxmemory", "1gb"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["CONFIG", "SET", "maxmemory", "0"]), b"+OK\r\n");
}

#[test]
fn bind_several_addresses_one_optional_and_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = tmp.path().join("b.conf");
    // 192.0.2.1 (TEST-NET-1) is on no interface here.
    std::fs::write(
        &conf,
        format!("port {port}\nbind 127.0.0.1 127.0.0.2 -192.0.2.1\nappendonly no\n"),
    )
    .unwrap();
    let _s = rudis_on(&conf, &[], port, tmp.path());
    for host in ["127.0.0.1", "127.0.0.2"] {
        let mut s = TcpStream::connect((host, port)).unwrap_or_else(|e| panic!("{host}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::io::Write::write_all(&mut s, b"PING\r\n").unwrap();
        let mut b = [0u8; 7];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"+PONG\r\n", "{host}");
    }
    assert!(TcpStream::connect(("127.0.0.3", port)).is_err());
    assert_eq!(
        config_get(port, "bind")["bind"],
        "127.0.0.1 127.0.0.2 -192.0.2.1"
    );
    // Not optional: start-up fails, naming the address.
    std::fs::write(&conf, format!("port {port}\nbind 127.0.0.1 192.0.2.1\n")).unwrap();
    let (ok, err) = run_to_exit(&[conf.to_str().unwrap(), "--port", &free_port().to_string()]);
    assert!(!ok && err.contains("192.0.2.1"), "{err}");
}

#[test]
fn daemonize_writes_and_removes_the_pid_file() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let pidfile = tmp.path().join("rudis.pid");
    let log = tmp.path().join("rudis.log");
    let conf = tmp.path().join("d.conf");
    std::fs::write(
        &conf,
        format!(
            "daemonize yes\npidfile {}\nlogfile {}\nport {port}\nappendonly no\ndir {}\n",
            pidfile.display(),
            log.display(),
            tmp.path().display()
        ),
    )
    .unwrap();
    // The parent returns at once, successfully; the daemon serves.
    let (ok, err) = run_to_exit(&[conf.to_str().unwrap()]);
    assert!(ok, "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .parse()
        .unwrap();
    // Whatever fails below, the daemon does not outlive the test.
    struct Reap(i32, PathBuf);
    impl Drop for Reap {
        fn drop(&mut self) {
            // Only while its pid file is there: after that the pid may be another's.
            if self.1.exists() {
                // SAFETY: kill(2) on the pid the running daemon wrote.
                unsafe { libc::kill(self.0, libc::SIGKILL) };
            }
        }
    }
    let _reap = Reap(pid, pidfile.clone());
    // Up once it has loaded (before that it answers -LOADING, as Redis).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut raw = Raw::connect(port);
    while raw.cmd(&["PING"]) != b"+PONG\r\n" {
        assert!(Instant::now() < deadline, "daemon did not finish loading");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signal 0 only checks that the process exists.
    assert_eq!(
        unsafe { libc::kill(pid, 0) },
        0,
        "pid file names the server"
    );
    let _ = raw.try_read_reply_after(&["SHUTDOWN"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pidfile.exists() {
        assert!(Instant::now() < deadline, "pid file not removed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("ready to accept connections"), "{logged}");
}

trait SendOnly {
    fn try_read_reply_after(&mut self, args: &[&str]) -> Option<Vec<u8>>;
}

impl SendOnly for Raw {
    /// Sends a command the server may answer by closing the connection.
    fn try_read_reply_after(&mut self, args: &[&str]) -> Option<Vec<u8>> {
        self.send(args);
        self.try_read_reply()
    }
}

/// rudis's own settings, which Redis does not have.
const RUDIS_ONLY: &[&str] = &[
    "workers",
    "busy-poll-us",
    "client-write-timeout",
    "aof-multi-part",
];

/// Compares CONFIG GET * of rudis and a real redis-server: the same names (rudis's own
/// aside), the same values but for `differ`, each there with its reason.
fn same_settings(rudis: u16, redis: u16, differ: &[(&str, &str)]) {
    let ours = config_get(rudis, "*");
    let theirs = config_get(redis, "*");
    for name in theirs.keys() {
        assert!(ours.contains_key(name), "rudis lacks '{name}'");
    }
    for name in ours.keys() {
        assert!(
            theirs.contains_key(name) || RUDIS_ONLY.contains(&name.as_str()),
            "rudis lists '{name}', Redis does not"
        );
    }
    for (name, want) in &theirs {
        let Some(got) = ours.get(name) else { continue };
        if differ.iter().any(|(n, _)| n == name) {
            continue;
        }
        assert_eq!(got, want, "CONFIG GET {name}");
    }
}

#[test]
fn config_get_star_matches_redis_defaults() {
    common::require_tool("redis-server");
    let tmp = tempfile::tempdir().unwrap();
    let (rdir, pdir) = (tmp.path().join("redis"), tmp.path().join("rudis"));
    std::fs::create_dir(&rdir).unwrap();
    std::fs::create_dir(&pdir).unwrap();
    let (rp, port) = (free_port(), free_port());
    // Nothing but the port: every other setting at its default.
    let _redis = start(
        "redis-server",
        &["--port".into(), rp.to_string()],
        rp,
        &rdir,
    );
    let _s = start(BIN, &["--port".into(), port.to_string()], port, &pdir);
    same_settings(
        port,
        rp,
        &[
            ("port", "each its own free port"),
            ("dir", "each its own working directory"),
            (
                "appendonly",
                "rudis persists through the AOF, on by default; Redis through snapshots",
            ),
        ],
    );
    let got = config_get(port, "*");
    assert_eq!(
        (
            got["bind"].as_str(),
            got["appendonly"].as_str(),
            got["save"].as_str()
        ),
        ("* -::*", "yes", "3600 1 300 100 60 10000")
    );
    // Several patterns in one call, each name once.
    let got = config_get(port, "*max-*-entries");
    assert_eq!(got["zset-max-listpack-entries"], "128");
    assert_eq!(got["zset-max-ziplist-entries"], "128");
    let mut raw = Raw::connect(port);
    let Frame::Array(v) = raw.frame(&["CONFIG", "GET", "maxmemory", "databases", "maxmemory"])
    else {
        panic!()
    };
    assert_eq!(v.len(), 4);
}

#[test]
fn config_get_star_matches_redis_on_the_shipped_file() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = shipped_copy(tmp.path());
    let (rp, pp) = (free_port(), free_port());
    let rdir = tmp.path().join("redis");
    let pdir = tmp.path().join("rudis");
    std::fs::create_dir(&rdir).unwrap();
    std::fs::create_dir(&pdir).unwrap();
    let mut rargs = vec![conf.to_str().unwrap().to_string()];
    rargs.extend(overrides(rp, &rdir));
    common::require_tool("redis-server");
    let _redis = start("redis-server", &rargs, rp, &rdir);
    let _rudis = rudis_on(&conf, &overrides(pp, &pdir), pp, &pdir);
    same_settings(
        pp,
        rp,
        &[
            ("port", "each its own free port"),
            ("dir", "each its own temp dir"),
        ],
    );
}

#[test]
fn config_rewrite_round_trips_the_shipped_file() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = shipped_copy(tmp.path());
    let port = free_port();
    let s = rudis_on(&conf, &overrides(port, tmp.path()), port, tmp.path());
    let mut raw = Raw::connect(port);
    assert_eq!(
        raw.cmd(&[
            "CONFIG",
            "SET",
            "timeout",
            "123",
            "hash-max-ziplist-entries",
            "77",
            "maxmemory-policy",
            "allkeys-lru",
            "loglevel",
            "warning",
            "client-output-buffer-limit",
            "pubsub 64mb 16mb 90",
        ]),
        b"+OK\r\n"
    );
    assert_eq!(raw.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    drop(raw);
    drop(s);
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains("# Redis configuration file example."),
        "comments kept"
    );
    assert!(text.contains("\ntimeout 123\n"), "changed in place");
    assert!(text.contains("\nhash-max-listpack-entries 77\n"));
    assert!(text.contains("\nclient-output-buffer-limit pubsub 64mb 16mb 90\n"));
    assert!(text.contains("# Generated by CONFIG REWRITE\n"));
    assert!(
        text.contains("\nmaxmemory-policy allkeys-lru\n"),
        "appended"
    );
    assert!(
        !text.contains("\nlfu-log-factor"),
        "defaults not in the file not added"
    );
    let port = free_port();
    let _s = rudis_on(
        &conf,
        &["--port".into(), port.to_string()],
        port,
        tmp.path(),
    );
    let got = config_get(port, "*");
    assert_eq!(got["timeout"], "123");
    assert_eq!(got["hash-max-listpack-entries"], "77");
    assert_eq!(got["maxmemory-policy"], "allkeys-lru");
    assert_eq!(got["loglevel"], "warning");
    assert_eq!(
        got["client-output-buffer-limit"],
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 67108864 16777216 90"
    );
    assert_eq!(
        got["daemonize"], "no",
        "the override was rewritten in place"
    );
}

#[test]
fn config_rewrite_without_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let args: Vec<String> = ["--port", &port.to_string(), "--appendonly", "no"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let _s = start(BIN, &args, port, tmp.path());
    assert_eq!(
        Raw::connect(port).cmd(&["CONFIG", "REWRITE"]),
        b"-ERR The server is running without a config file\r\n"
    );
}

#[test]
fn supervised_systemd_is_told_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--appendonly", "no"])
        .args(["--supervised", "systemd"])
        .current_dir(tmp.path())
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let got = sock.recv(&mut buf);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(&buf[..got.expect("no READY from rudis")], b"READY=1\n");
}

/// CONFIG SET and exact-name CONFIG GET answer byte for byte as Redis, errors included.
#[test]
fn config_set_and_get_replies_match_redis() {
    let redis = RealRedis::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    // RealRedis runs with save "": so does this one.
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--appendonly",
        "no",
        "--save",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _s = start(BIN, &args, port, tmp.path());
    let (mut ours, mut theirs) = (Raw::connect(port), redis.raw());
    let cases: &[&[&str]] = &[
        &["CONFIG", "SET", "nosuch", "1"],
        &["CONFIG", "SET", "activerehashing", "maybe"],
        &["CONFIG", "SET", "maxmemory-policy", "foo"],
        &["CONFIG", "SET", "hash-max-listpack-value", "10kb"],
        &["CONFIG", "GET", "hash-max-ziplist-value"],
        &["CONFIG", "SET", "hash-max-listpack-value", "-1"],
        &["CONFIG", "SET", "proto-max-bulk-len", "100"],
        &["CONFIG", "SET", "hz", "1", "hz", "2"],
        &[
            "CONFIG",
            "SET",
            "hash-max-ziplist-entries",
            "2",
            "hash-max-listpack-entries",
            "3",
        ],
        &["CONFIG", "GET", "hash-max-ziplist-entries"],
        &["CONFIG", "SET", "list-max-listpack-size", "-70000000000"],
        &["CONFIG", "SET", "repl-backlog-size", "1gb"],
        &["CONFIG", "GET", "repl-backlog-size"],
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
        &["CONFIG", "GET", "notify-keyspace-events"],
        &["CONFIG", "SET", "notify-keyspace-events", "Kq"],
        &["CONFIG", "SET", "tcp-keepalive", "100"],
        &["CONFIG", "GET", "tcp-keepalive"],
        &["CONFIG", "SET", "daemonize", "no"],
        &["CONFIG", "SET", "timeout", "10", "nosuch", "1"],
        &["CONFIG", "GET", "timeout"],
        &["CONFIG", "GET", "LUA-TIME-LIMIT"],
        &["CONFIG", "GET", "watchdog-period"],
        &["CONFIG", "GET", "watchdog*"],
        &["CONFIG", "GET", "maxmemory", "maxmemory"],
        &["CONFIG", "GET", "save"],
        &["CONFIG", "SET", "save", ""],
        &["CONFIG", "GET", "databases"],
    ];
    for c in cases {
        assert_eq!(
            common::show(&ours.cmd(c)),
            common::show(&theirs.cmd(c)),
            "{c:?}"
        );
    }
}

/// The `>>> '...'` line and the reason of Redis's FATAL CONFIG FILE ERROR.
fn fatal_lines(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(">>> "))
        .unwrap_or_else(|| panic!("no FATAL CONFIG FILE ERROR in {stderr:?}"));
    lines[at..(at + 2).min(lines.len())]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Redis's unit/introspection "redis-server command line arguments - error cases": options
/// run to the next `--name`, a bare name takes the next argument whatever it is, and each
/// error names the option as Redis shows it.
#[test]
fn command_line_errors_read_as_redis_reads_them() {
    common::require_tool("redis-server");
    let cases: &[&[&str]] = &[
        &["--port"],
        &["--port", "6380", "--loglevel"],
        &["--port", "6379", "6380"],
        &["--port", "--loglevel", "verbose"],
        &["--port", "--bla", "--loglevel", "verbose"],
        &["--logfile", "--my--log--file", "--loglevel", "--bla"],
        &["--shutdown-on-sigint"],
        &["--shutdown-on-sigint", "now force", "--shutdown-on-sigterm"],
        &["--replicaof", "127.0.0.1", "abc"],
        &["--replicaof", "--127.0.0.1", "abc"],
        &["--replicaof", "--127.0.0.1", "--abc"],
    ];
    for args in cases {
        let (ok, err) = run_to_exit(args);
        assert!(!ok, "{args:?} started");
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("redis-server")
            .args(*args)
            .current_dir(dir.path())
            .output()
            .expect("run redis-server");
        let redis = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(fatal_lines(&err), fatal_lines(&redis), "{args:?}");
    }
}

/// `rename-command` as Redis applies it: the old name is an unknown command, the new one runs
/// it (under its own name in COMMAND INFO), an empty one removes it; CONFIG REWRITE keeps the
/// lines, so a restart renames again. Differential against redis-server.
#[test]
fn rename_command_renames_as_redis_does() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("r.conf");
    std::fs::write(
        &conf,
        "rename-command flushdb badger\nrename-command LOLWUT \"\"\n",
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let real = RealRedis::start(&["--rename-command", "flushdb", "badger"]);
    let real_gone = RealRedis::start(&["--rename-command", "LOLWUT", ""]);
    let mut ours = common::Rudis::start(&[conf]);
    let script: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["FLUSHDB"],
        &["flushdb", "async"],
        &["DBSIZE"],
        &["BADGER"],
        &["DBSIZE"],
        &["COMMAND", "INFO", "badger"],
    ];
    let run = |c: &mut Raw| -> Vec<Vec<u8>> { script.iter().map(|a| c.cmd(a)).collect() };
    let theirs = run(&mut real.raw());
    assert_eq!(run(&mut ours.raw()), theirs);
    assert!(String::from_utf8_lossy(&theirs[1]).contains("unknown command 'FLUSHDB'"));
    assert_eq!(
        ours.raw().cmd(&["LOLWUT"]),
        real_gone.raw().cmd(&["LOLWUT"])
    );

    assert_eq!(ours.raw().cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let text = std::fs::read_to_string(conf).unwrap();
    assert!(text.contains("rename-command flushdb badger"), "{text}");
    ours.restart();
    let mut c = ours.raw();
    assert!(String::from_utf8_lossy(&c.cmd(&["FLUSHDB"])).starts_with("-ERR unknown command"));
    assert_eq!(c.cmd(&["BADGER"]), b"+OK\r\n");
}
