//! The AOF in Redis 7's multi-part layout (`--aof-multi-part yes`, or a start on a directory
//! Redis made): base, incr files and manifest named and rotated as Redis names and rotates
//! them, so that redis-server and redis-check-aof take what rudis leaves; an old single file
//! moved in as Redis 7 moves it; history files kept or deleted as `aof-disable-auto-gc` says;
//! a kill -9 during a rewrite; timestamp annotations and `aof-load-truncated no`.

mod aofutil;
mod common;

use std::path::Path;

use common::{RealRedis, Rudis};

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).expect("a manifest")
}

/// The files in appendonlydir/, sorted.
fn parts(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn rewrite(r: &Rudis, n: usize) {
    assert!(r.raw().cmd(&["BGREWRITEAOF"]).starts_with(b"+"));
    aofutil::wait_log(r, "Background AOF rewrite finished successfully", n, 60);
}

fn writes(r: &Rudis, tag: &str) {
    let mut c = r.raw();
    for i in 0..20 {
        c.cmd(&["INCR", "counter"]);
        c.cmd(&["RPUSH", "list", &format!("{tag}{i}")]);
        c.cmd(&["HSET", "hash", &format!("{tag}{i}"), "v"]);
        c.cmd(&["ZADD", "zset", &i.to_string(), &format!("{tag}{i}")]);
    }
    c.cmd(&["SET", &format!("expiring:{tag}"), "x", "EX", "1000"]);
}

fn digest(port: u16) -> Vec<u8> {
    common::Raw::connect(port).cmd(&["DEBUG", "DIGEST"])
}

/// redis-server 7.0 started on `dir` with the AOF on: what rudis left is its data.
fn redis_on(dir: &Path) -> RealRedis {
    let d = dir.to_str().expect("utf-8 path").to_string();
    RealRedis::start(&[
        "--appendonly",
        "yes",
        "--enable-debug-command",
        "yes",
        "--dir",
        &d,
    ])
}

const ARGS: &[&str] = &["--aof-multi-part", "yes", "--enable-debug-command", "yes"];

#[test]
fn a_fresh_start_makes_redis_s_base_incr_and_manifest_and_rewrites_rotate_them() {
    let mut r = Rudis::start(ARGS);
    assert_eq!(
        manifest(&r.dir),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert!(!r.aof_path().exists(), "no single file beside it");
    writes(&r, "a");
    rewrite(&r, 1);
    assert_eq!(
        manifest(&r.dir),
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    // The history (seq 1) is deleted.
    assert_eq!(
        parts(&r.dir),
        [
            "appendonly.aof.2.base.rdb",
            "appendonly.aof.2.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
    writes(&r, "b");
    let (ok, out) = aofutil::check_aof(&r.dir.join("appendonlydir/appendonly.aof.manifest"));
    assert!(ok, "{out}");
    let want = digest(r.port);
    r.restart();
    assert_eq!(digest(r.port), want);
    assert!(r
        .log()
        .contains("Opening AOF incr file appendonly.aof.2.incr.aof on server start"));
    // Commands as the base: `.base.aof`.
    r.raw()
        .cmd(&["CONFIG", "SET", "aof-use-rdb-preamble", "no"]);
    rewrite(&r, 1);
    assert!(manifest(&r.dir).starts_with("file appendonly.aof.3.base.aof seq 3 type b\n"));
    writes(&r, "c");
    let want = digest(r.port);
    drop(r.raw());
    let dir = r.dir.clone();
    r.kill9();
    let redis = redis_on(&dir);
    assert_eq!(digest(redis.port), want);
}

#[test]
fn an_old_single_aof_is_moved_in_as_the_base_as_redis_7_upgrades_it() {
    let mut r = Rudis::start(&["--enable-debug-command", "yes"]);
    writes(&r, "old");
    let want = digest(r.port);
    assert!(r.aof_path().exists());
    let dir = r.dir.clone();
    r.kill9();
    let r = Rudis::start_in(&dir, ARGS);
    assert_eq!(digest(r.port), want);
    assert!(!dir.join("appendonly.aof").exists());
    assert_eq!(
        manifest(&dir),
        "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert!(r
        .log()
        .contains("Successfully migrated an old-style AOF file"));
    writes(&r, "new");
    let want = digest(r.port);
    drop(r);
    assert_eq!(digest(redis_on(&dir).port), want);
}

#[test]
fn aof_disable_auto_gc_keeps_history_files_until_it_is_turned_off() {
    let r = Rudis::start(ARGS);
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "aof-disable-auto-gc", "yes"]),
        b"+OK\r\n"
    );
    writes(&r, "a");
    rewrite(&r, 1);
    rewrite(&r, 2);
    // As Redis 7.0's manifest after two rewrites that kept their history.
    assert_eq!(
        manifest(&r.dir),
        "file appendonly.aof.3.base.rdb seq 3 type b\n\
         file appendonly.aof.2.incr.aof seq 2 type h\n\
         file appendonly.aof.2.base.rdb seq 2 type h\n\
         file appendonly.aof.1.incr.aof seq 1 type h\n\
         file appendonly.aof.1.base.rdb seq 1 type h\n\
         file appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    assert_eq!(parts(&r.dir).len(), 7);
    c.cmd(&["CONFIG", "SET", "aof-disable-auto-gc", "no"]);
    aofutil::wait_log(&r, "Removing the history file", 4, 10);
    assert_eq!(
        manifest(&r.dir),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    assert_eq!(parts(&r.dir).len(), 3);
}

#[test]
fn a_rewrite_with_the_aof_off_leaves_a_base_alone_and_turning_it_on_adds_an_incr_file() {
    let r = Rudis::start(ARGS);
    writes(&r, "a");
    let mut c = r.raw();
    c.cmd(&["CONFIG", "SET", "appendonly", "no"]);
    rewrite(&r, 1);
    assert_eq!(
        manifest(&r.dir),
        "file appendonly.aof.2.base.rdb seq 2 type b\n"
    );
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), b"+OK\r\n");
    // Read again from disk, the manifest names no incr file: the next is seq 1, as in Redis.
    c.cmd(&["CONFIG", "SET", "appendonly", "yes"]);
    aofutil::wait_log(&r, "Background AOF rewrite finished successfully", 2, 60);
    assert_eq!(
        manifest(&r.dir),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    writes(&r, "b");
    let want = digest(r.port);
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]), b"+OK\r\n");
    assert_eq!(digest(r.port), want);
}

#[test]
fn kill_9_during_a_rewrite_leaves_the_previous_parts_loadable() {
    let mut r = Rudis::start(ARGS);
    writes(&r, "a");
    let before = manifest(&r.dir);
    let mut c = r.raw();
    // Slow enough to be killed in the middle, with writes going on.
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "100000"]);
    assert!(c.cmd(&["BGREWRITEAOF"]).starts_with(b"+"));
    writes(&r, "during");
    let want = digest(r.port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !parts(&r.dir)
        .iter()
        .any(|p| p.starts_with("temp-rewriteaof-bg-"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the rewrite never began"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    r.kill9();
    assert_eq!(manifest(&r.dir), before);
    r.restart();
    assert_eq!(digest(r.port), want);
    assert!(!parts(&r.dir).iter().any(|p| p.starts_with("temp-")));
}

#[test]
fn timestamp_annotations_are_written_and_skipped_at_load() {
    let mut r = Rudis::start(ARGS);
    let mut c = r.raw();
    c.cmd(&["CONFIG", "SET", "aof-timestamp-enabled", "yes"]);
    c.cmd(&["SET", "a", "1"]);
    let incr = std::fs::read(r.dir.join("appendonlydir/appendonly.aof.1.incr.aof")).unwrap();
    assert!(
        incr.starts_with(b"#TS:"),
        "{}",
        String::from_utf8_lossy(&incr)
    );
    c.cmd(&["CONFIG", "SET", "aof-use-rdb-preamble", "no"]);
    rewrite(&r, 1);
    let base = std::fs::read(r.dir.join("appendonlydir/appendonly.aof.2.base.aof")).unwrap();
    assert!(base.starts_with(b"#TS:"));
    c.cmd(&["SET", "b", "2"]);
    let want = digest(r.port);
    r.restart();
    assert_eq!(digest(r.port), want);
}

#[test]
fn aof_load_truncated_no_refuses_an_aof_cut_short() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let r = Rudis::start_in(&dir, &[]);
    r.raw().cmd(&["SET", "a", "1"]);
    let aof = r.aof_path();
    drop(r);
    let mut bytes = std::fs::read(&aof).unwrap();
    bytes.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\n");
    std::fs::write(&aof, &bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rudis-server"))
        .args(["--port", "0", "--aof-load-truncated", "no", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("Unexpected end of file reading the append only file"),
        "{text}"
    );
    // Untouched: the default (yes) would have cut it back.
    assert_eq!(std::fs::read(&aof).unwrap(), bytes);
}
