//! Helpers for the AOF tests: signals, exit statuses, the log, redis-check-aof, and loading a
//! file into a real redis-server.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{require_tool, RealRedis, Rudis};

pub fn signal(r: &Rudis, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &r.child.id().to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{sig} failed");
}

/// Waits (up to `secs`) for the server to exit on its own and returns how it exited.
pub fn wait_exit(r: &mut Rudis, secs: u64) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = r.child.try_wait().expect("try_wait") {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit; log:\n{}",
            r.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the server's log contains `what` `count` times.
pub fn wait_log(r: &Rudis, what: &str, count: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while r.log().matches(what).count() < count {
        assert!(
            Instant::now() < deadline,
            "log never said {what:?} {count} times; log:\n{}",
            r.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// redis-check-aof's verdict on `path` (without --fix): (valid, its output).
pub fn check_aof(path: &Path) -> (bool, String) {
    require_tool("redis-check-aof");
    let out = Command::new("redis-check-aof")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-check-aof");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success() && text.contains("is valid"), text)
}

/// A real redis-server 7 started with `--appendonly yes` in a dir holding a copy of `aof` as
/// appendonly.aof (Redis 7 upgrades such a lone file to its multi-part layout).
pub fn redis_loading(aof: &Path) -> (RealRedis, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(aof, dir.path().join("appendonly.aof")).expect("copy the AOF");
    let d = dir.path().to_str().expect("utf-8 path").to_string();
    let redis = RealRedis::start(&["--appendonly", "yes", "--dir", &d]);
    (redis, dir)
}
