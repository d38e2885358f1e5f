//! A real write failure: the server's file-size limit (RLIMIT_FSIZE, set from outside with
//! prlimit) makes its AOF writes fail with EFBIG, the first one usually half-way. Writes must be
//! refused with Redis's MISCONF error, reads keep working, and once the limit is lifted writes
//! succeed again, with nothing acknowledged lost and nothing written twice.
mod aofutil;
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use aofutil::check_aof;
use common::{require_tool, Rudis};

const MISCONF: &[u8] = b"-MISCONF Errors writing to the AOF file: File too large\r\n";

fn set_fsize_limit(r: &Rudis, limit: Option<u64>) {
    require_tool("prlimit");
    let arg = match limit {
        Some(n) => format!("--fsize={n}:"),
        None => "--fsize=unlimited:".to_string(),
    };
    let ok = Command::new("prlimit")
        .args(["--pid", &r.child.id().to_string(), &arg])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "prlimit {arg} failed");
}

fn aof_len(r: &Rudis) -> u64 {
    std::fs::metadata(r.aof_path())
        .map(|m| m.len())
        .unwrap_or(0)
}

#[test]
fn writes_are_refused_while_the_aof_cannot_be_written_and_nothing_is_lost() {
    let mut r = Rudis::start(&["--appendfsync", "everysec"]);
    let mut c = r.raw();
    let value = "v".repeat(40);
    assert_eq!(c.cmd(&["SET", "before", "1"]), b"+OK\r\n");
    // The limit applies to the server's log file too: make the AOF the bigger file, so the
    // log stays writable while the AOF hits the limit.
    let filler = "f".repeat(1000);
    for i in 0..30 {
        assert_eq!(c.cmd(&["SET", &format!("filler{i}"), &filler]), b"+OK\r\n");
    }
    // Every filler record written: the size reaches its final value and stays there.
    let start = Instant::now();
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let len = aof_len(&r);
        if len >= 30_000 && len == last {
            break;
        }
        last = len;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "AOF never written"
        );
    }
    // Room for a few records, and then one cut in the middle.
    set_fsize_limit(&r, Some(aof_len(&r) + 300));
    let mut acked = Vec::new();
    let mut refused = false;
    for i in 0..2000 {
        let key = format!("k{i}");
        let reply = c.cmd(&["SET", &key, &value]);
        if reply == MISCONF {
            refused = true;
            break;
        }
        assert_eq!(reply, b"+OK\r\n", "SET {key}");
        acked.push(key);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(refused, "writes were never refused");
    assert!(acked.len() >= 3, "refused too early: {}", acked.len());
    // Reads work; PING is refused too, as in Redis.
    assert_eq!(c.cmd(&["GET", "before"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["EXISTS", &acked[0]]), b":1\r\n");
    assert_eq!(c.cmd(&["PING"]), MISCONF);
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "persistence"])).into_owned();
    assert!(info.contains("aof_last_write_status:err\r\n"), "{info}");
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]), MISCONF);

    set_fsize_limit(&r, None);
    let start = Instant::now();
    loop {
        let reply = c.cmd(&["SET", "after", "1"]);
        if reply == b"+OK\r\n" {
            break;
        }
        assert_eq!(reply, MISCONF);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "writes never resumed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    assert!(
        r.log().contains("cut back"),
        "the first failed write was not partial:\n{}",
        r.log()
    );
    // Under everysec a kill -9 may lose the last instant's records; a clean exit may not.
    c.send(&["SHUTDOWN"]);
    assert!(aofutil::wait_exit(&mut r, 10).success());
    r.restart();
    let (ok, out) = check_aof(&r.aof_path());
    assert!(
        ok,
        "the AOF is damaged (a retried write duplicated?):\n{out}"
    );
    let mut c = r.raw();
    for k in acked
        .iter()
        .chain([&"before".to_string(), &"after".to_string()])
    {
        assert_eq!(c.cmd(&["EXISTS", k]), b":1\r\n", "{k} lost");
    }
}

#[test]
fn under_always_a_write_is_acknowledged_only_once_it_is_on_disk() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["SET", "before", "1"]), b"+OK\r\n");
    set_fsize_limit(&r, Some(aof_len(&r)));
    c.send(&["SET", "blocked", "1"]);
    // No reply while the record cannot be written.
    c.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut b = [0u8; 64];
    let early = std::io::Read::read(&mut c.stream, &mut b);
    assert!(
        early.is_err(),
        "replied before the write was on disk: {early:?}"
    );
    let mut other = r.raw();
    assert_eq!(other.cmd(&["GET", "before"]), b"$1\r\n1\r\n");
    assert_eq!(
        other.cmd(&["SET", "x", "1"]),
        b"-MISCONF Errors writing to the AOF file: File too large\r\n"
    );
    set_fsize_limit(&r, None);
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(c.read_reply(), b"+OK\r\n");
    r.restart();
    assert_eq!(r.raw().cmd(&["GET", "blocked"]), b"$1\r\n1\r\n");
}
