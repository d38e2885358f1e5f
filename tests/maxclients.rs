//! Clients are not workers: `--maxclients` (10000 by default, as Redis) connections over
//! `--workers` threads; the one past maxclients is refused in Redis's words; the open files
//! limit is raised for maxclients, or lowers it, as Redis's adjustOpenFilesLimit does.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;

const REFUSED: &[u8] = b"-ERR max number of clients reached\r\n";

fn info_field(c: &mut Raw, field: &str) -> String {
    let info = String::from_utf8(c.cmd(&["INFO"])).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .to_string()
}

#[test]
fn two_thousand_clients_on_five_workers_with_the_defaults() {
    // This process holds the other ends.
    assert_eq!(rudis::fdlimit::adjust(2100), Some(2100));
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut clients: Vec<Raw> = (0..2000).map(|_| Raw::connect(rudis.port)).collect();
    // All connected at once; then each is served, in turn and interleaved.
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&["SET", &format!("k{i}"), &i.to_string()]);
    }
    for c in clients.iter_mut() {
        assert_eq!(c.read_reply(), b"+OK\r\n");
    }
    for (i, c) in clients.iter_mut().enumerate().rev() {
        let v = i.to_string();
        assert_eq!(
            c.cmd(&["GET", &format!("k{i}")]),
            format!("${}\r\n{v}\r\n", v.len()).into_bytes()
        );
    }
    let c = &mut clients[0];
    assert_eq!(info_field(c, "connected_clients"), "2000");
    assert_eq!(info_field(c, "maxclients"), "10000");
    let list = String::from_utf8(c.cmd(&["CLIENT", "LIST"])).unwrap();
    assert_eq!(list.matches("\nid=").count(), 2000, "{}", &list[..200]);
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxclients"]),
        b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
}

/// Connects until a client is served (the start-up probe may still hold a place a moment).
fn served(port: u16) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Raw::connect(port);
        if c.cmd(&["PING"]) == b"+PONG\r\n" {
            return c;
        }
        assert!(Instant::now() < deadline, "never served");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_one_past_maxclients_is_refused_and_the_others_keep_working() {
    let rudis = Rudis::start(&["--maxclients", "20", "--workers", "2", "--appendonly", "no"]);
    let mut twenty: Vec<Raw> = (0..20).map(|_| served(rudis.port)).collect();
    let mut extra = Raw::connect(rudis.port);
    assert_eq!(extra.try_read_reply().as_deref(), Some(REFUSED));
    assert!(extra.is_closed());
    for (i, c) in twenty.iter_mut().enumerate() {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    let c = &mut twenty[0];
    assert_eq!(info_field(c, "rejected_connections"), "1");
    assert_eq!(info_field(c, "connected_clients"), "20");

    // Lowered below the clients connected: they stay, newcomers are refused until enough
    // have left (as Redis).
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxclients", "10"]), b"+OK\r\n");
    for c in twenty.iter_mut() {
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    }
    let mut extra = Raw::connect(rudis.port);
    assert_eq!(extra.try_read_reply().as_deref(), Some(REFUSED));
    twenty.truncate(9);
    let mut newcomer = served(rudis.port);
    assert_eq!(newcomer.cmd(&["GET", "k0"]), b"$1\r\nv\r\n");
    assert_eq!(info_field(&mut newcomer, "maxclients"), "10");
}

/// Starts `program` with an open files limit of `nofile` (soft and hard).
fn spawn_limited(program: &str, args: &[&str], nofile: u64, log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: only async-signal-safe setrlimit runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_served(port: u16, child: &mut Child, log: &std::path::Path) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return served(port);
        }
        assert!(Instant::now() < deadline, "not up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_low_open_files_limit_lowers_maxclients_as_in_redis() {
    require_tool("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let (rport, port) = (free_port(), free_port());
    let (rlog, log) = (dir.path().join("redis.log"), dir.path().join("rudis.log"));
    // The same start for both, under an open files limit of 200.
    let start = |program: &str, port: u16, log: &std::path::Path| {
        let port = port.to_string();
        let dir = dir.path().to_str().unwrap();
        let args = [
            "--port",
            &port,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir,
            "--maxclients",
            "1000",
        ];
        Killed(spawn_limited(program, &args, 200, log))
    };
    let mut redis = start("redis-server", rport, &rlog);
    let mut rudis = start(BIN, port, &log);
    let mut r = wait_served(rport, &mut redis.0, &rlog);
    let mut c = wait_served(port, &mut rudis.0, &log);
    let text = std::fs::read_to_string(&log).unwrap();
    for line in [
        "You requested maxclients of 1000 requiring at least 1032 max file descriptors.",
        "Server can't set maximum open files to 1032 because of OS error: Operation not \
         permitted.",
        "Current maximum open files is 200. maxclients has been reduced to 168 to compensate \
         for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    for args in [
        &["CONFIG", "GET", "maxclients"][..],
        // More than the limit covers: refused, and nothing of the CONFIG SET applied.
        &["CONFIG", "SET", "maxclients", "500", "timeout", "7"],
        &["CONFIG", "GET", "maxclients"],
        &["CONFIG", "GET", "timeout"],
        // Less is fine.
        &["CONFIG", "SET", "maxclients", "100"],
        &["CONFIG", "GET", "maxclients"],
    ] {
        assert_eq!(show(&c.cmd(args)), show(&r.cmd(args)), "{args:?}");
    }
    // The 168 places are there: this process may not have the descriptors for them all, so
    // a handful will do, and the server has not crashed.
    let more: Vec<Raw> = (0..20).map(|_| served(port)).collect();
    assert_eq!(more.len(), 20);
}

/// Issue 21: under a low descriptor limit, clients past it are refused with Redis's error (none
/// left hanging in the accept backlog), the refusals are logged at most once a second, and the
/// server serves again once clients leave.
#[test]
fn descriptor_exhaustion_refuses_with_the_error_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("rudis.log");
    let p = port.to_string();
    let args = [
        "--port",
        &p,
        "--appendonly",
        "no",
        "--dir",
        dir.path().to_str().unwrap(),
    ];
    let mut rudis = Killed(spawn_limited(BIN, &args, 200, &log));
    let mut c = wait_served(port, &mut rudis.0, &log);
    let maxclients = show(&c.cmd(&["CONFIG", "GET", "maxclients"]));
    assert!(maxclients.ends_with("$3\\r\\n168\\r\\n"), "{maxclients}");

    let (mut served, mut refused, mut held) = (Vec::new(), 0, 0);
    for _ in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(n) if buf[..n].starts_with(b"+PONG") => served.push(s),
            Ok(n) if &buf[..n] == REFUSED => refused += 1,
            other => {
                held += 1;
                eprintln!("neither served nor refused: {other:?}");
            }
        }
    }
    assert_eq!(held, 0, "clients left without a reply");
    // 168 places, one taken by `c`.
    assert_eq!(served.len(), 167);
    assert_eq!(refused, 300 - 167);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.matches("max number of clients reached").count();
    assert!(
        (1..=3).contains(&lines),
        "{lines} refusal lines for {refused} refusals in one burst:\n{text}"
    );
    drop(served);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = Raw::connect(port);
    assert_eq!(show(&again.cmd(&["PING"])), "+PONG\\r\\n");
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\\r\\n");
}
