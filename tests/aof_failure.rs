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

/// Under `always`, Redis's contract is that an acknowledged or observed write is on disk; when a
/// write cannot be made durable it is already applied in memory, so Redis (and rudis) exits
/// rather than let anyone read it: the writer sees its connection close, a reader never sees
/// the value, and a restart has exactly what was acknowledged.
#[test]
fn under_always_a_failed_write_stops_the_server_before_anyone_sees_it() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["SET", "before", "1"]), b"+OK\r\n");
    // The limit applies to the log too: make the AOF the bigger file, so the log stays
    // writable while the AOF hits the limit.
    let filler = "f".repeat(1000);
    for i in 0..10 {
        assert_eq!(c.cmd(&["SET", &format!("filler{i}"), &filler]), b"+OK\r\n");
    }
    set_fsize_limit(&r, Some(aof_len(&r)));
    let mut reader = r.raw();
    c.send(&["SET", "blocked", "1"]);
    reader.send(&["GET", "blocked"]);
    // No reply to either: the connection closes (or the GET ran first and found nothing).
    let mut b = [0u8; 64];
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let got = std::io::Read::read(&mut c.stream, &mut b);
    assert!(
        matches!(got, Ok(0) | Err(_)),
        "the writer got a reply: {:?}",
        got.map(|n| String::from_utf8_lossy(&b[..n]).into_owned())
    );
    let seen = reader.try_read_reply();
    assert!(
        seen.is_none() || seen.as_deref() == Some(&b"$-1\r\n"[..]),
        "a reader saw {:?}",
        seen
    );
    assert_eq!(aofutil::wait_exit(&mut r, 10).code(), Some(1));
    assert!(
        r.log().contains(
            "Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting..."
        ),
        "{}",
        r.log()
    );
    r.restart();
    let mut c = r.raw();
    assert_eq!(c.cmd(&["GET", "before"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["GET", "blocked"]), b"$-1\r\n");
    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "{out}");
}

/// Issue 21's disk-full case, on a real full file system (a 512 KB tmpfs; tests run as root):
/// a writer and a reader run until the disk fills under `always`; every write acknowledged and
/// every value the reader saw must be there after a kill -9 and restart.
#[test]
fn disk_full_under_always_loses_nothing_acknowledged_or_observed() {
    let dir = tempfile::tempdir().unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(dir.path())
        .status();
    assert!(
        matches!(mount, Ok(s) if s.success()),
        "cannot mount a tmpfs (this test needs root, as CI runs it): {mount:?}"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.path().to_path_buf());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // The log goes to the tmpfs too (beside --dir); keep it out of the way with a file
    // on the ordinary disk.
    let log = tempfile::NamedTempFile::new().unwrap();
    let logfile = log.path().to_str().unwrap().to_string();
    let mut r = Rudis::start_in(&data, &["--appendfsync", "always", "--logfile", &logfile]);
    let port = r.port;
    let value = "v".repeat(2000);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut c = common::Raw::connect(port);
        for i in 0.. {
            let key = format!("k{}", i / 2);
            let get = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
            // The server exits when the disk fills: a failed send ends the reader too.
            if std::io::Write::write_all(&mut c.stream, get.as_bytes()).is_err() {
                break;
            }
            match c.try_read_reply() {
                Some(r) if r.starts_with(b"$2000") => seen.push(key),
                Some(_) => {}
                None => break,
            }
        }
        seen
    });
    let mut acked = Vec::new();
    let mut c = r.raw();
    for i in 0..10_000 {
        let key = format!("k{i}");
        let set = format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$2000\r\n{value}\r\n",
            key.len()
        );
        if std::io::Write::write_all(&mut c.stream, set.as_bytes()).is_err() {
            break;
        }
        match c.try_read_reply() {
            Some(reply) => {
                assert_eq!(reply, b"+OK\r\n", "SET {key}");
                acked.push(key);
            }
            None => break,
        }
    }
    let seen = reader.join().unwrap();
    assert!(
        acked.len() > 10 && acked.len() < 10_000,
        "{} writes acknowledged",
        acked.len()
    );
    let status = aofutil::wait_exit(&mut r, 10);
    assert_eq!(
        status.code(),
        Some(1),
        "{}",
        std::fs::read_to_string(log.path()).unwrap()
    );
    r.restart();
    let mut c = r.raw();
    for k in acked.iter().chain(&seen) {
        assert_eq!(
            c.cmd(&["STRLEN", k]),
            b":2000\r\n",
            "{k} was acknowledged or seen, and is lost"
        );
    }
}
