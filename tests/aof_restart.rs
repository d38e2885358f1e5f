//! The AOF across restarts: every write survives, the file is one real Redis tools accept, a
//! torn last record is cut off, a corrupt file is refused, SIGTERM and SHUTDOWN exit cleanly.
mod aofutil;
mod common;

use std::process::Command;
use std::time::Duration;

use aofutil::{check_aof, redis_loading, signal, wait_exit};
use common::{show, Raw, Rudis, BIN};
use rudis::resp::Frame;

const BINARY: &[u8] = b"a\r\nb\x00\xff$3\r\n*";

/// Writes a bit of everything that exists, in several databases.
fn write_everything(c: &mut Raw) {
    assert_eq!(c.cmd(&["SET", "s", "one"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "s", "two"]), b"+OK\r\n");
    assert_eq!(c.cmd(&[&b"SET"[..], b"bin", BINARY]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "gone", "x"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["DEL", "gone", "nothere"]), b":1\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "f1", "v1", "f2", "v2"]), b":2\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "f1", "w1", "f3", "v3"]), b":1\r\n");
    assert_eq!(c.cmd(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "s", "in-db3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["HSET", "h3", "f", "v"]), b":1\r\n");
    assert_eq!(c.cmd(&["SELECT", "0"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "last", "1"]), b"+OK\r\n");
}

fn check_everything(c: &mut Raw) {
    assert_eq!(c.cmd(&["GET", "s"]), b"$3\r\ntwo\r\n");
    let mut want = format!("${}\r\n", BINARY.len()).into_bytes();
    want.extend_from_slice(BINARY);
    want.extend_from_slice(b"\r\n");
    assert_eq!(c.cmd(&["GET", "bin"]), want);
    assert_eq!(c.cmd(&["EXISTS", "gone"]), b":0\r\n");
    assert_eq!(
        show(&c.cmd(&["HGETALL", "h"])),
        show(b"*6\r\n$2\r\nf1\r\n$2\r\nw1\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nf3\r\n$2\r\nv3\r\n")
    );
    assert_eq!(c.cmd(&["GET", "last"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "s"]), b"$6\r\nin-db3\r\n");
    assert_eq!(c.cmd(&["HGET", "h3", "f"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&["SELECT", "0"]), b"+OK\r\n");
}

#[test]
fn kill9_restart_keeps_every_write_under_always() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    write_everything(&mut r.raw());
    r.restart();
    check_everything(&mut r.raw());
    // And again: the replay itself must not have logged anything twice.
    let size = std::fs::metadata(r.aof_path()).unwrap().len();
    r.restart();
    check_everything(&mut r.raw());
    assert_eq!(std::fs::metadata(r.aof_path()).unwrap().len(), size);
    assert!(
        r.log().contains("DB loaded from append only file"),
        "{}",
        r.log()
    );
}

#[test]
fn shutdown_exits_zero_with_everything_on_disk() {
    let mut r = Rudis::start(&["--appendfsync", "no"]);
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["SHUTDOWN", "ABORT"]),
        b"-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(
        c.cmd(&["SHUTDOWN", "SAVE", "NOSAVE"]),
        b"-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["SHUTDOWN", "NOW", "ABORT"]),
        b"-ERR syntax error\r\n"
    );
    assert_eq!(c.cmd(&["SHUTDOWN", "bogus"]), b"-ERR syntax error\r\n");
    write_everything(&mut c);
    c.send(&["SHUTDOWN", "NOSAVE", "NOW"]);
    assert_eq!(c.try_read_reply(), None, "SHUTDOWN does not reply");
    let st = wait_exit(&mut r, 10);
    assert!(st.success(), "exit status {st}; log:\n{}", r.log());
    assert!(r.log().contains("ready to exit"), "{}", r.log());
    r.restart();
    check_everything(&mut r.raw());
}

#[test]
fn sigterm_and_sigint_exit_zero_with_everything_on_disk() {
    for sig in ["TERM", "INT"] {
        let mut r = Rudis::start(&["--appendfsync", "no"]);
        write_everything(&mut r.raw());
        signal(&r, sig);
        let st = wait_exit(&mut r, 10);
        assert!(
            st.success(),
            "SIG{sig}: exit status {st}; log:\n{}",
            r.log()
        );
        r.restart();
        check_everything(&mut r.raw());
    }
}

#[test]
fn the_file_is_valid_for_redis_check_aof_and_redis_server() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    write_everything(&mut r.raw());
    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "redis-check-aof rejects the file:\n{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    check_everything(&mut redis.raw());
    assert_eq!(redis.raw().cmd(&["DBSIZE"]), b":4\r\n");
    r.kill9();
}

fn set_cmd(k: &str, v: &str) -> Vec<u8> {
    let mut out = Vec::new();
    rudis::resp::reply::encode_command(&mut out, &["SET", k, v]);
    out
}

#[test]
fn a_torn_last_record_is_cut_off_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let aof = dir.path().join("appendonly.aof");
    let mut data = set_cmd("a", "1");
    data.extend(set_cmd("b", "2"));
    let good = data.len();
    let torn = set_cmd("c", "3");
    data.extend_from_slice(&torn[..torn.len() - 3]);
    std::fs::write(&aof, &data).unwrap();
    let r = Rudis::start_in(dir.path(), &[]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["GET", "a"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["GET", "b"]), b"$1\r\n2\r\n");
    assert_eq!(c.cmd(&["EXISTS", "c"]), b":0\r\n");
    let log = r.log();
    assert!(
        log.contains(&format!("incomplete command at offset {good}")) && log.contains("WARN"),
        "no warning with the offset:\n{log}"
    );
    assert_eq!(std::fs::metadata(&aof).unwrap().len(), good as u64);
    // Writes go on after the cut, and the file stays whole.
    assert_eq!(c.cmd(&["SET", "d", "4"]), b"+OK\r\n");
    drop(c);
    drop(r);
    let (ok, out) = check_aof(&aof);
    assert!(ok, "{out}");
}

#[test]
fn garbage_in_the_middle_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let aof = dir.path().join("appendonly.aof");
    let mut data = set_cmd("a", "1");
    let bad_at = data.len();
    data.extend_from_slice(b"this is not RESP\r\n");
    data.extend(set_cmd("b", "2"));
    std::fs::write(&aof, &data).unwrap();
    let port = common::free_port().to_string();
    let child = Command::new(BIN)
        .args(["--port", &port, "--dir"])
        .arg(dir.path())
        .output_with_timeout(Duration::from_secs(20));
    let st = child.status;
    let stderr = String::from_utf8_lossy(&child.stderr).into_owned();
    assert!(!st.success(), "started anyway: {stderr}");
    assert!(
        stderr.contains(&format!("offset {bad_at}")) && stderr.contains("redis-check-aof --fix"),
        "message lacks the offset or the advice:\n{stderr}"
    );
    // The file is left as it was, for the user to inspect.
    assert_eq!(std::fs::read(&aof).unwrap(), data);
}

trait OutputWithTimeout {
    fn output_with_timeout(&mut self, t: Duration) -> std::process::Output;
}

impl OutputWithTimeout for Command {
    /// Runs to completion; a server that does not exit within `t` is killed (and fails the
    /// test through its success status).
    fn output_with_timeout(&mut self, t: Duration) -> std::process::Output {
        use std::process::Stdio;
        let child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let id = child.id();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            std::thread::sleep(t);
            if !d.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = Command::new("kill")
                    .args(["-KILL", &id.to_string()])
                    .status();
            }
        });
        let out = child.wait_with_output().expect("wait");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    }
}

/// Every key of databases 0..4: (db, key) → (type, value with hash fields sorted, PTTL).
fn state(c: &mut Raw) -> std::collections::BTreeMap<(usize, Vec<u8>), (Frame, Frame, i64)> {
    let mut m = std::collections::BTreeMap::new();
    for db in 0..4 {
        assert_eq!(c.cmd(&["SELECT", &db.to_string()]), b"+OK\r\n");
        let Frame::Array(keys) = c.frame(&["KEYS", "*"]) else {
            panic!("KEYS")
        };
        for k in keys {
            let Frame::Bulk(k) = k else { panic!("key") };
            let ty = c.frame(&[&b"TYPE"[..], &k]);
            let v = match &ty {
                Frame::Simple(t) if t == "string" => c.frame(&[&b"GET"[..], &k]),
                Frame::Simple(t) if t == "hash" => match c.frame(&[&b"HGETALL"[..], &k]) {
                    Frame::Array(items) => {
                        let mut pairs: Vec<_> = items.chunks(2).map(|p| p.to_vec()).collect();
                        pairs.sort_by_key(|p| p[0].to_bytes());
                        Frame::Array(pairs.concat())
                    }
                    other => other,
                },
                other => panic!("type {other:?}"),
            };
            let Frame::Integer(pttl) = c.frame(&[&b"PTTL"[..], &k]) else {
                panic!("PTTL")
            };
            m.insert((db, k), (ty, v, pttl));
        }
    }
    assert_eq!(c.cmd(&["SELECT", "0"]), b"+OK\r\n");
    m
}

fn assert_same_state(
    before: &std::collections::BTreeMap<(usize, Vec<u8>), (Frame, Frame, i64)>,
    after: &std::collections::BTreeMap<(usize, Vec<u8>), (Frame, Frame, i64)>,
) {
    let keys = |m: &std::collections::BTreeMap<(usize, Vec<u8>), _>| {
        m.keys()
            .map(|(d, k)| format!("{d}:{}", String::from_utf8_lossy(k)))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(before), keys(after));
    for (k, (t, v, ttl)) in before {
        let (t2, v2, ttl2) = &after[k];
        assert_eq!((t, v), (t2, v2), "{k:?}");
        // A deadline survives as it was: never extended by the replay, never dropped.
        if *ttl < 0 {
            assert_eq!(ttl, ttl2, "{k:?}");
        } else {
            assert!(
                *ttl2 <= *ttl && *ttl2 > ttl - 20_000,
                "{k:?}: {ttl} -> {ttl2}"
            );
        }
    }
}

const EVERY_WRITE: &[&[&str]] = &[
    &["SET", "s1", "v"],
    &["SET", "s2", "v", "NX"],
    &["SET", "s2", "w", "XX", "GET"],
    &["SET", "s6", "v", "EX", "1000"],
    &["SET", "s7", "v", "PX", "900000", "GET"],
    &["SET", "s8", "v", "EXAT", "4102444800"],
    &["SET", "s6", "v2", "KEEPTTL"],
    &["SETNX", "s3", "v"],
    &["SETEX", "s4", "100", "v"],
    &["PSETEX", "s5", "100000", "v"],
    &["GETSET", "s1", "new"],
    &["GETDEL", "s3"],
    &["GETEX", "s2", "EX", "200"],
    &["GETEX", "s5", "PERSIST"],
    &["MSET", "m1", "a", "m2", "b", "m3", "c"],
    &["MSETNX", "n1", "a", "n2", "b"],
    &["INCR", "i"],
    &["INCRBY", "i", "10"],
    &["DECR", "i"],
    &["DECRBY", "i", "3"],
    &["INCRBYFLOAT", "f", "1.5"],
    &["INCRBYFLOAT", "f", "0.25"],
    &["APPEND", "s1", "xyz"],
    &["SETRANGE", "s1", "2", "ZZ"],
    &["SETRANGE", "sr", "3", "pad"],
    &["DEL", "m3"],
    &["UNLINK", "n2"],
    &["RENAME", "m1", "m1r"],
    &["RENAMENX", "m2", "m2r"],
    &["EXPIRE", "s1", "300"],
    &["PEXPIRE", "m2r", "400000"],
    &["EXPIREAT", "n1", "4102444800"],
    &["PEXPIREAT", "s2", "4102444800000"],
    &["EXPIRE", "s4", "100", "GT"],
    &["PERSIST", "s4"],
    &["HSET", "h", "a", "1", "b", "2"],
    &["HMSET", "h", "c", "3"],
    &["HSETNX", "h", "d", "4"],
    &["HDEL", "h", "a"],
    &["HINCRBY", "h", "hi", "5"],
    &["HINCRBYFLOAT", "h", "hf", "2.5"],
    &["HSET", "h2", "x", "1"],
    &["EXPIRE", "h2", "500"],
    &["COPY", "h", "hcopy"],
    &["COPY", "s1", "s1copy", "DB", "2"],
    &["MOVE", "n1", "1"],
    &["SELECT", "1"],
    &["SET", "x", "in-1"],
    &["SELECT", "3"],
    &["SET", "gone", "soon"],
    &["FLUSHDB"],
    &["SET", "kept", "after-flush"],
    &["SWAPDB", "1", "2"],
    &["SELECT", "0"],
    &["SET", "tmp", "x"],
    &["EXPIRE", "tmp", "-1"],
];

#[test]
fn every_write_command_survives_restarts_and_a_rewrite() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    for cmd in EVERY_WRITE {
        let reply = c.cmd(cmd);
        assert!(!reply.starts_with(b"-"), "{cmd:?}: {}", show(&reply));
    }
    let before = state(&mut c);
    assert!(before.len() >= 19, "{}", before.len());
    r.restart();
    assert_same_state(&before, &state(&mut r.raw()));
    // Twice: replaying must not have changed anything (INCRs applied once, TTLs kept).
    r.restart();
    assert_same_state(&before, &state(&mut r.raw()));
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        b"+Background append only file rewriting started\r\n"
    );
    aofutil::wait_log(&r, "rewrite finished successfully", 1, 10);
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "persistence"])).into_owned();
    let size = std::fs::metadata(r.aof_path()).unwrap().len();
    for want in [
        "aof_enabled:1\r\n".to_string(),
        "aof_rewrite_in_progress:0\r\n".into(),
        "aof_rewrites:1\r\n".into(),
        "aof_last_bgrewrite_status:ok\r\n".into(),
        "aof_last_write_status:ok\r\n".into(),
        format!("aof_current_size:{size}\r\n"),
        format!("aof_base_size:{size}\r\n"),
    ] {
        assert!(info.contains(&want), "no {want:?} in\n{info}");
    }
    r.restart();
    assert_same_state(&before, &state(&mut r.raw()));
    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "{out}");
}

#[test]
fn replay_neither_extends_ttls_nor_revives_expired_keys() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["SET", "k", "v", "EX", "3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "e", "v", "PX", "200"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "h", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["PEXPIRE", "h", "250"]), b":1\r\n");
    std::thread::sleep(Duration::from_millis(700));
    r.restart();
    let mut c = r.raw();
    let Frame::Integer(pttl) = c.frame(&["PTTL", "k"]) else {
        panic!("PTTL")
    };
    assert!(
        pttl > 0 && pttl <= 2300,
        "TTL extended by the replay: {pttl} ms left"
    );
    assert_eq!(c.cmd(&["EXISTS", "e", "h"]), b":0\r\n");
    // The file holds absolute deadlines, not the relative forms sent.
    let text = String::from_utf8_lossy(&std::fs::read(r.aof_path()).unwrap()).to_lowercase();
    assert!(
        !text.contains("\r\nex\r\n")
            && !text.contains("\r\npx\r\n")
            && !text.contains("pexpire\r\n"),
        "relative expiry in the AOF:\n{text}"
    );
}
