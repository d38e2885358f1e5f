//! The Unix socket listener (`unixsocket`, `unixsocketperm`), as Redis 7.0 opens, shows and
//! removes it: differential where the bytes are Redis's.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, require_tool, Rudis};
use rudis::resp::Frame;

/// One command over a Unix socket connection, its raw reply back.
fn cmd(s: &mut UnixStream, args: &[&str]) -> Vec<u8> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend(format!("${}\r\n{a}\r\n", a.len()).bytes());
    }
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    loop {
        if let Some((_, n)) = Frame::parse(&buf).expect("valid RESP") {
            assert_eq!(n, buf.len(), "one reply");
            return buf;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a reply to {args:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn connect(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).expect("connect to the unix socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// CLIENT INFO's fields that say how the client came, with the id and fd (which differ
/// between servers) left out.
fn how_connected(info: &[u8], path: &Path) -> String {
    let text = String::from_utf8_lossy(info).replace(&*path.to_string_lossy(), "PATH");
    text.split_whitespace()
        .filter(|f| {
            ["addr=", "laddr=", "flags="]
                .iter()
                .any(|p| f.starts_with(p))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A redis-server listening only on a Unix socket at `path`; killed on drop.
/// The dir lives as long as the server.
struct RealUnix(std::process::Child, #[allow(dead_code)] tempfile::TempDir);

impl RealUnix {
    fn start(dir: tempfile::TempDir, path: &Path) -> RealUnix {
        require_tool("redis-server");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(path)
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        wait_for_socket(path);
        RealUnix(child, dir)
    }
}

impl Drop for RealUnix {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_socket(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(path).is_err() {
        assert!(Instant::now() < deadline, "nothing listens at {path:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn clients_come_through_the_unix_socket_as_in_redis() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rudis.sock");
    let p = path.to_str().unwrap();
    let r = Rudis::start(&["--unixsocket", p, "--unixsocketperm", "700"]);
    let meta = std::fs::metadata(&path).expect("the socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700, "unixsocketperm");

    let mut s = connect(&path);
    assert_eq!(cmd(&mut s, &["SET", "k", "v"]), b"+OK\r\n");
    // The same data as over TCP.
    assert_eq!(r.raw().cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    let ours = cmd(&mut s, &["CLIENT", "INFO"]);
    let list = cmd(&mut s, &["CLIENT", "LIST"]);
    assert!(
        String::from_utf8_lossy(&list).contains(&format!("addr={p}:0 laddr={p}:0")),
        "{}",
        String::from_utf8_lossy(&list)
    );
    let get = |s: &mut UnixStream| {
        let mut both = cmd(s, &["CONFIG", "GET", "unixsocket"]);
        both.extend(cmd(s, &["CONFIG", "GET", "unixsocketperm"]));
        both
    };
    let mut hello = get(&mut s);
    let set = cmd(&mut s, &["CONFIG", "SET", "unixsocket", "/tmp/elsewhere"]);

    // A client library reaches it too.
    let mut conn = redis::Client::open(format!("redis+unix://{p}"))
        .and_then(|c| c.get_connection())
        .expect("the redis crate over the unix socket");
    let v: String = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    assert_eq!(v, "v");

    let real_tmp = tempfile::tempdir().unwrap();
    let real_path = real_tmp.path().join("rudis.sock");
    let _real = RealUnix::start(real_tmp, &real_path);
    let mut t = connect(&real_path);
    let theirs = cmd(&mut t, &["CLIENT", "INFO"]);
    assert_eq!(
        how_connected(&ours, &path),
        how_connected(&theirs, &real_path)
    );
    assert_eq!(
        how_connected(&ours, &path),
        "addr=PATH:0 laddr=PATH:0 flags=U"
    );
    let mut theirs_get = get(&mut t);
    // The paths differ in length; the shapes and the other values must not.
    let norm = |b: &mut Vec<u8>, path: &Path| {
        let text = String::from_utf8_lossy(b).replace(&*path.to_string_lossy(), "PATH");
        *b = text.into_bytes();
    };
    norm(&mut hello, &path);
    norm(&mut theirs_get, &real_path);
    assert_eq!(
        String::from_utf8_lossy(&hello).replace(char::is_numeric, "#"),
        String::from_utf8_lossy(&theirs_get).replace(char::is_numeric, "#")
    );
    assert!(String::from_utf8_lossy(&hello).contains("700"));
    assert_eq!(
        set,
        cmd(&mut t, &["CONFIG", "SET", "unixsocket", "/tmp/elsewhere"])
    );
}

#[test]
fn protected_mode_lets_unix_socket_clients_in() {
    // Bound only to an address no client comes from as local: TCP clients from 127.0.0.2
    // would be refused, the Unix socket's never are.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.sock");
    let r = Rudis::start(&[
        "--unixsocket",
        path.to_str().unwrap(),
        "--protected-mode",
        "yes",
        "--bind",
        "127.0.0.1 127.0.0.2",
    ]);
    let mut s = connect(&path);
    assert_eq!(cmd(&mut s, &["PING"]), b"+PONG\r\n");
    let mut far = common::Raw::from_stream(common::connect_from(
        std::net::Ipv4Addr::new(127, 0, 0, 2),
        r.port,
    ));
    let refused = far.try_read_reply().unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&refused).starts_with("-DENIED"),
        "{}",
        String::from_utf8_lossy(&refused)
    );
}

#[test]
fn the_socket_file_is_replaced_at_start_and_removed_at_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.sock");
    // A file left by an earlier run is taken over, as Redis unlinks it first.
    std::fs::write(&path, b"stale").unwrap();
    let bin = env!("CARGO_BIN_EXE_rudis-server");
    let mut child = Command::new(bin)
        .args(["--port", "0", "--unixsocket", path.to_str().unwrap()])
        .arg("--dir")
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_socket(&path);
    let mut s = connect(&path);
    // Served from the start, as Redis serves while it loads: -LOADING until it is in.
    let mut reply = cmd(&mut s, &["SET", "a", "1"]);
    while reply.starts_with(b"-LOADING") {
        std::thread::sleep(std::time::Duration::from_millis(10));
        reply = cmd(&mut s, &["SET", "a", "1"]);
    }
    assert_eq!(reply, b"+OK\r\n");
    // No TCP port at all: the Unix socket is somewhere to listen.
    let _ = s.write_all(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(!path.exists(), "the socket file is removed at shutdown");
    assert!(log.contains("Removing the unix socket file."), "{log}");
}

#[test]
fn a_bad_unixsocketperm_stops_start_up_as_in_redis() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.sock");
    for (perm, why) in [
        ("999", "argument couldn't be parsed as an octal number"),
        ("1000", "argument must be between 0 and 777 inclusive"),
    ] {
        let (ok, err) = common::run_briefly(&[
            "--port",
            &free_port().to_string(),
            "--unixsocket",
            path.to_str().unwrap(),
            "--unixsocketperm",
            perm,
        ])
        .expect("exits");
        assert!(!ok);
        assert!(err.contains(why), "{perm}: {err}");
    }
}

#[test]
fn moving_the_tcp_listeners_keeps_the_unix_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.sock");
    let r = Rudis::start(&["--unixsocket", path.to_str().unwrap()]);
    let mut s = connect(&path);
    let port = free_port().to_string();
    assert_eq!(cmd(&mut s, &["CONFIG", "SET", "port", &port]), b"+OK\r\n");
    assert_eq!(
        cmd(&mut s, &["CONFIG", "SET", "bind", "127.0.0.1"]),
        b"+OK\r\n"
    );
    assert_eq!(cmd(&mut connect(&path), &["PING"]), b"+PONG\r\n");
    drop(r);
}
