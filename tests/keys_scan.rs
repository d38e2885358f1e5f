//! Keyspace behaviour a differential script cannot show: SCAN's guarantee under concurrent
//! writes, active expiry, RANDOMKEY's spread, and the AOF forms of expiring writes (relative
//! times logged as absolute ones, so a replay never extends a key's life).
mod aofutil;
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Raw, Rudis};
use rudis::resp::Frame;

fn int(f: Frame) -> i64 {
    match f {
        Frame::Integer(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// One SCAN call: (next cursor, keys).
fn scan(c: &mut Raw, cursor: &str, extra: &[&str]) -> (String, Vec<Vec<u8>>) {
    let mut args = vec!["SCAN", cursor];
    args.extend_from_slice(extra);
    match c.frame(&args) {
        Frame::Array(mut parts) if parts.len() == 2 => {
            let keys = match parts.pop() {
                Some(Frame::Array(keys)) => keys
                    .into_iter()
                    .map(|k| match k {
                        Frame::Bulk(b) => b,
                        other => panic!("key {other:?}"),
                    })
                    .collect(),
                other => panic!("keys {other:?}"),
            };
            let cursor = match parts.pop() {
                Some(Frame::Bulk(b)) => String::from_utf8(b).expect("cursor"),
                other => panic!("cursor {other:?}"),
            };
            (cursor, keys)
        }
        other => panic!("SCAN replied {other:?}"),
    }
}

#[test]
fn scan_returns_every_stable_key_while_others_come_and_go() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    let stable: Vec<String> = (0..3000).map(|i| format!("stable:{i}")).collect();
    for chunk in stable.chunks(500) {
        let mut args = vec!["MSET".to_string()];
        for k in chunk {
            args.push(k.clone());
            args.push("v".into());
        }
        assert_eq!(c.cmd(&args), b"+OK\r\n");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, progress) = (stop.clone(), progress.clone());
        let mut w = Raw::connect(r.port);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let k = format!("churn:{}", i % 2000);
                if i % 3 == 2 {
                    w.cmd(&["DEL", &k]);
                } else {
                    w.cmd(&["SET", &k, "x"]);
                }
                i += 1;
                progress.store(i, Ordering::Relaxed);
            }
            i
        })
    };
    // The scan takes milliseconds: start it only once the writer is under way, or it may be
    // over before the writer's first command.
    let started = Instant::now();
    while progress.load(Ordering::Relaxed) < 100 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the writer does not get going"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, keys) = scan(&mut c, &cursor, &["COUNT", "50"]);
        calls += 1;
        seen.extend(keys);
        if next == "0" {
            break;
        }
        cursor = next;
        assert!(calls < 10_000, "SCAN does not finish");
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().expect("writer");
    assert!(writes > 0, "the writer ran during the scan");
    assert!(
        calls > 1,
        "COUNT 50 over 3000 keys takes several calls, took {calls}"
    );
    let missing: Vec<&String> = stable
        .iter()
        .filter(|k| !seen.contains(k.as_bytes()))
        .collect();
    assert!(
        missing.is_empty(),
        "SCAN missed {} stable keys",
        missing.len()
    );

    // MATCH and TYPE filter what a full scan returns.
    assert_eq!(c.cmd(&["HSET", "stable:hash", "f", "v"]), b":1\r\n");
    let mut cursor = "0".to_string();
    let mut hashes = Vec::new();
    loop {
        let (next, keys) = scan(&mut c, &cursor, &["MATCH", "stable:*", "TYPE", "hash"]);
        hashes.extend(keys);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(hashes, vec![b"stable:hash".to_vec()]);
}

#[test]
fn expired_keys_are_removed_without_being_read() {
    let r = Rudis::start(&["--appendonly", "yes"]);
    let mut c = r.raw();
    for i in 0..300 {
        assert_eq!(
            c.cmd(&["SET", &format!("tmp:{i}"), "v", "PX", "1000"]),
            b"+OK\r\n"
        );
    }
    for i in 0..50 {
        c.cmd(&["SET", &format!("keep:{i}"), "v"]);
        c.cmd(&["SET", &format!("later:{i}"), "v", "EX", "100"]);
    }
    // Other databases are swept too.
    c.cmd(&["SELECT", "3"]);
    for i in 0..20 {
        c.cmd(&["SET", &format!("tmp3:{i}"), "v", "PX", "1000"]);
    }
    assert_eq!(int(c.frame(&["DBSIZE"])), 20);
    c.cmd(&["SELECT", "0"]);
    assert_eq!(int(c.frame(&["DBSIZE"])), 400);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // DBSIZE counts keys expired but not yet removed, so it drops only by active expiry.
        let n = int(c.frame(&["DBSIZE"]));
        c.cmd(&["SELECT", "3"]);
        let in3 = int(c.frame(&["DBSIZE"]));
        c.cmd(&["SELECT", "0"]);
        if n == 100 && in3 == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DBSIZE stays at {n}, expected 100"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The writer thread writes within its 100 ms batching interval.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let aof = std::fs::read(r.aof_path()).expect("aof");
        let dels = commands(&aof)
            .into_iter()
            .filter(|c| c[0].eq_ignore_ascii_case(b"DEL"))
            .count();
        if dels == 320 {
            break;
        }
        assert!(dels < 320, "more DELs than expired keys: {dels}");
        assert!(
            Instant::now() < deadline,
            "{dels} DELs logged, expected one per key"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn randomkey_reaches_every_key_and_skips_expired_ones() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["RANDOMKEY"]), b"$-1\r\n");
    c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]);
    let mut seen = HashSet::new();
    for _ in 0..300 {
        match c.frame(&["RANDOMKEY"]) {
            Frame::Bulk(k) => {
                seen.insert(k);
            }
            other => panic!("RANDOMKEY replied {other:?}"),
        }
    }
    assert_eq!(seen.len(), 3, "every key comes up: {seen:?}");
    c.cmd(&["FLUSHDB"]);
    for i in 0..20 {
        c.cmd(&["SET", &format!("t{i}"), "v", "PX", "50"]);
    }
    c.cmd(&["SET", "alive", "v"]);
    std::thread::sleep(Duration::from_millis(80));
    for _ in 0..20 {
        assert_eq!(c.cmd(&["RANDOMKEY"]), b"$5\r\nalive\r\n");
    }
    c.cmd(&["DEL", "alive"]);
    c.cmd(&["SET", "t", "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.cmd(&["RANDOMKEY"]), b"$-1\r\n");
}

/// Every command in an AOF, as argument lists.
fn commands(aof: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut rest = aof;
    while !rest.is_empty() {
        // A record the writer is still writing ends the list.
        let Some((frame, n)) = Frame::parse(rest).expect("valid RESP in the AOF") else {
            break;
        };
        rest = &rest[n..];
        match frame {
            Frame::Array(items) => out.push(
                items
                    .into_iter()
                    .map(|i| match i {
                        Frame::Bulk(b) => b,
                        other => panic!("AOF word {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("AOF record {other:?}"),
        }
    }
    out
}

fn text(cmd: &[Vec<u8>]) -> Vec<String> {
    cmd.iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// The logged absolute time of a record `NAME key ... <ms>` at `pos`, checked to be `rel` ms
/// after `before` (give or take the test's own run time).
fn absolute_near(words: &[String], pos: usize, before: i64, rel: i64) {
    let at: i64 = words[pos].parse().expect("a number of milliseconds");
    let after = now_ms();
    assert!(
        at >= before + rel && at <= after + rel,
        "{words:?}: {at} is not {rel} ms after the command"
    );
}

#[test]
fn aof_logs_absolute_deadlines_and_replay_never_extends_a_life() {
    let mut r = Rudis::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = r.raw();
    let before = now_ms();
    let script: &[&[&str]] = &[
        &["SET", "ex", "v", "EX", "100"],
        &["SET", "px", "v", "PX", "100000"],
        &["SET", "exat", "v", "EXAT", "4102444800"],
        &["SET", "nx", "v", "NX", "EX", "100"],
        &["SETEX", "setex", "100", "v"],
        &["PSETEX", "psetex", "100000", "v"],
        &["SET", "plain", "v"],
        &["EXPIRE", "plain", "100"],
        &["PEXPIRE", "plain", "200000", "GT"],
        &["EXPIREAT", "plain", "4102444800"],
        &["PEXPIREAT", "plain", "4102444800000"],
        &["GETEX", "plain", "EX", "100"],
        &["GETEX", "plain", "PERSIST"],
        &["GETEX", "plain", "PERSIST"],
        &["GETDEL", "nx"],
        &["SET", "f", "1.5", "EX", "100"],
        &["INCRBYFLOAT", "f", "0.1"],
        &["SET", "g", "old", "GET"],
        &["EXPIRE", "g", "-1"],
        &["SELECT", "1"],
        &["FLUSHDB"],
        &["SELECT", "0"],
        &["SET", "short", "v", "PX", "300"],
        &["EXPIRE", "nosuch", "100"],
    ];
    for cmd in script {
        let reply = c.cmd(cmd);
        assert!(
            !reply.starts_with(b"-"),
            "{cmd:?}: {}",
            common::show(&reply)
        );
    }
    let aof = std::fs::read(r.aof_path()).expect("aof");
    let logged: Vec<Vec<String>> = commands(&aof)
        .iter()
        .map(|c| text(c))
        .filter(|c| c[0] != "SELECT")
        .collect();
    let want_shape: &[&[&str]] = &[
        &["SET", "ex", "v", "PXAT", "*"],
        &["SET", "px", "v", "PXAT", "*"],
        &["SET", "exat", "v", "PXAT", "4102444800000"],
        &["SET", "nx", "v", "PXAT", "*"],
        &["SET", "setex", "v", "PXAT", "*"],
        &["SET", "psetex", "v", "PXAT", "*"],
        &["SET", "plain", "v"],
        &["PEXPIREAT", "plain", "*"],
        &["PEXPIREAT", "plain", "*", "GT"],
        &["PEXPIREAT", "plain", "4102444800000"],
        &["PEXPIREAT", "plain", "4102444800000"],
        &["PEXPIREAT", "plain", "*"],
        &["PERSIST", "plain"],
        &["DEL", "nx"],
        &["SET", "f", "1.5", "PXAT", "*"],
        &["SET", "f", "1.6", "KEEPTTL"],
        &["SET", "g", "old"],
        &["DEL", "g"],
        &["FLUSHDB"],
        &["SET", "short", "v", "PXAT", "*"],
    ];
    assert_eq!(logged.len(), want_shape.len(), "logged: {logged:?}");
    for (got, want) in logged.iter().zip(want_shape) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(*w == "*" || g == w, "{got:?} vs {want:?}");
        }
    }
    absolute_near(&logged[0], 4, before, 100_000);
    absolute_near(&logged[4], 4, before, 100_000);
    absolute_near(&logged[7], 2, before, 100_000);
    absolute_near(&logged[11], 2, before, 100_000);

    // Real Redis takes the file as its own and reads the same deadlines from it.
    let (valid, report) = aofutil::check_aof(&r.aof_path());
    assert!(valid, "redis-check-aof: {report}");
    let (redis, _dir) = aofutil::redis_loading(&r.aof_path());
    let mut real = redis.raw();
    assert_eq!(real.cmd(&["GET", "f"]), b"$3\r\n1.6\r\n");
    assert_eq!(int(real.frame(&["PEXPIRETIME", "exat"])), 4102444800000);
    assert_eq!(int(real.frame(&["TTL", "plain"])), -1);
    let logged_ex: i64 = logged[0][4].parse().expect("ms");
    assert_eq!(int(real.frame(&["PEXPIRETIME", "ex"])), logged_ex);

    // After a restart later than its deadline, a key with a relative expiry is gone: the file
    // held its absolute deadline, not "300 ms from whenever it is replayed".
    std::thread::sleep(Duration::from_millis(400));
    r.restart();
    let mut c = r.raw();
    assert_eq!(c.cmd(&["EXISTS", "short"]), b":0\r\n");
    assert_eq!(c.cmd(&["GET", "f"]), b"$3\r\n1.6\r\n");
    let ttl = int(c.frame(&["TTL", "f"]));
    assert!((1..=100).contains(&ttl), "INCRBYFLOAT kept the TTL: {ttl}");
    assert_eq!(int(c.frame(&["TTL", "plain"])), -1);
    assert_eq!(int(c.frame(&["PEXPIRETIME", "exat"])), 4102444800000);
    assert_eq!(c.cmd(&["EXISTS", "g", "nx"]), b":0\r\n");
}

#[test]
fn flush_and_swap_keep_each_database_apart() {
    let r = Rudis::start(&["--appendonly", "no", "--databases", "4"]);
    let mut c = r.raw();
    let mut other = r.raw();
    c.cmd(&["SET", "k", "db0"]);
    other.cmd(&["SELECT", "1"]);
    other.cmd(&["SET", "k", "db1"]);
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), b"+OK\r\n");
    // Clients keep their database number; the data under it changed.
    assert_eq!(c.cmd(&["GET", "k"]), b"$3\r\ndb1\r\n");
    assert_eq!(other.cmd(&["GET", "k"]), b"$3\r\ndb0\r\n");
    assert_eq!(
        c.cmd(&["SWAPDB", "0", "4"]),
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        c.cmd(&["SELECT", "4"]),
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(c.cmd(&["FLUSHDB"]), b"+OK\r\n");
    assert_eq!(other.cmd(&["DBSIZE"]), b":1\r\n");
    assert_eq!(c.cmd(&["FLUSHALL"]), b"+OK\r\n");
    assert_eq!(other.cmd(&["DBSIZE"]), b":0\r\n");
}

/// Runs commands straight through the library, on a store with no active-expiry thread, so
/// that an expired key is still there for the next write to find.
struct Direct {
    shared: Arc<rudis::shared::Shared>,
    client: rudis::client::Client,
}

impl Direct {
    fn open(dir: &std::path::Path) -> Direct {
        let config = rudis::config::Config {
            dir: dir.to_path_buf(),
            appendonly: true,
            ..Default::default()
        };
        Direct {
            shared: rudis::server::prepare(config).expect("prepare"),
            client: rudis::client::Client::new(None),
        }
    }

    fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut out = rudis::resp::ReplyBuf::new();
        rudis::commands::execute(&self.shared, &mut self.client, &argv, &mut out);
        out.as_bytes().to_vec()
    }
}

#[test]
fn writes_on_expired_keys_replay_to_what_the_client_saw() {
    // A replay expires nothing while it loads, so a write that found a key expired must log
    // that key's DEL first, or the replayed write would act on the old value.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Direct::open(dir.path());
    for k in ["ap", "n", "sr", "h", "mv", "cp", "rn"] {
        c.cmd(&["SET", k, "old", "PX", "30"]);
    }
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["SET", "mv", "old-in-1", "PX", "30"]);
    c.cmd(&["SET", "cp", "old-in-1", "PX", "30"]);
    c.cmd(&["SELECT", "0"]);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(c.cmd(&["APPEND", "ap", "new"]), b":3\r\n");
    assert_eq!(c.cmd(&["INCR", "n"]), b":1\r\n");
    assert_eq!(c.cmd(&["SETRANGE", "sr", "1", "x"]), b":2\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]), b":1\r\n");
    assert_eq!(c.cmd(&["RENAMENX", "src", "rn"]), b"-ERR no such key\r\n");
    c.cmd(&["SET", "src", "v"]);
    assert_eq!(c.cmd(&["RENAMENX", "src", "rn"]), b":1\r\n");
    c.cmd(&["SET", "src", "v"]);
    assert_eq!(c.cmd(&["COPY", "src", "cp", "DB", "1"]), b":1\r\n");
    c.cmd(&["SET", "mv", "moving"]);
    assert_eq!(c.cmd(&["MOVE", "mv", "1"]), b":1\r\n");
    assert!(c.shared.aof().expect("aof").sync());

    let mut c = Direct::open(dir.path());
    assert_eq!(c.cmd(&["GET", "ap"]), b"$3\r\nnew\r\n");
    assert_eq!(c.cmd(&["GET", "n"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["GET", "sr"]), b"$2\r\n\x00x\r\n");
    assert_eq!(c.cmd(&["HGET", "h", "f"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", "rn"]), b"$1\r\nv\r\n");
    c.cmd(&["SELECT", "1"]);
    assert_eq!(c.cmd(&["GET", "cp"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", "mv"]), b"$6\r\nmoving\r\n");
    for k in ["cp", "mv"] {
        assert_eq!(c.cmd(&["TTL", k]), b":-1\r\n");
    }
}

#[test]
fn flushes_and_swaps_flag_the_watchers_of_keys_they_change() {
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Direct::open(dir.path());
    let watch = |c: &Direct, db: usize, key: &str| {
        let flag = Arc::new(AtomicBool::new(false));
        c.shared.watches.watch(db, key.as_bytes(), &flag, false);
        flag
    };
    let set = |f: &Arc<AtomicBool>| f.load(Ordering::SeqCst);

    c.cmd(&["SET", "here", "v"]);
    let here = watch(&c, 0, "here");
    let absent = watch(&c, 0, "absent");
    let other_db = watch(&c, 1, "here");
    c.cmd(&["FLUSHDB"]);
    assert!(set(&here), "FLUSHDB removed a watched key");
    assert!(
        !set(&absent),
        "as in Redis, a key that was not there is not flagged"
    );
    assert!(!set(&other_db), "FLUSHDB leaves other databases alone");

    // SWAPDB flags a watched key present on either side.
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["SET", "only-in-1", "v"]);
    c.cmd(&["SELECT", "0"]);
    let arriving = watch(&c, 0, "only-in-1");
    let nowhere = watch(&c, 0, "nowhere");
    c.cmd(&["SWAPDB", "0", "1"]);
    assert!(
        set(&arriving),
        "SWAPDB brought a watched key into database 0"
    );
    assert!(!set(&nowhere));

    let in3 = watch(&c, 3, "k");
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "k", "v"]);
    in3.store(false, Ordering::SeqCst);
    c.cmd(&["FLUSHALL"]);
    assert!(set(&in3), "FLUSHALL reaches every database");
}

#[test]
fn moves_copies_swaps_and_flushes_under_concurrent_writes_do_not_deadlock() {
    let r = Rudis::start(&["--appendonly", "no", "--databases", "4", "--workers", "8"]);
    let stop = Arc::new(AtomicBool::new(false));
    let scripts: Vec<Vec<Vec<String>>> = vec![
        vec![
            vec!["SET".into(), "k".into(), "v".into()],
            vec!["MOVE".into(), "k".into(), "1".into()],
        ],
        vec![
            vec!["SET".into(), "k".into(), "w".into()],
            vec![
                "COPY".into(),
                "k".into(),
                "k".into(),
                "DB".into(),
                "2".into(),
                "REPLACE".into(),
            ],
        ],
        vec![vec!["SWAPDB".into(), "0".into(), "1".into()]],
        vec![
            vec![
                "MSET".into(),
                "a".into(),
                "1".into(),
                "b".into(),
                "2".into(),
            ],
            vec!["RENAME".into(), "a".into(), "c".into()],
        ],
        vec![vec!["FLUSHDB".into()], vec!["SCAN".into(), "0".into()]],
        vec![vec!["SELECT".into(), "2".into()], vec!["FLUSHALL".into()]],
    ];
    let threads: Vec<_> = scripts
        .into_iter()
        .map(|script| {
            let stop = stop.clone();
            let mut c = Raw::connect(r.port);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for cmd in &script {
                        c.cmd(cmd);
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        // A deadlock would leave a thread waiting on its reply until the 10 s read timeout.
        assert!(t.join().expect("client thread") > 0);
    }
    assert_eq!(r.raw().cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_read_that_finds_a_key_expired_removes_it_and_logs_its_del() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Direct::open(dir.path());
    c.cmd(&["SET", "k", "v", "PX", "30"]);
    c.cmd(&["SET", "other", "v", "PX", "30"]);
    std::thread::sleep(Duration::from_millis(60));
    // No sweeper runs here: only the read can remove it.
    assert_eq!(c.cmd(&["DBSIZE"]), b":2\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), b":1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "other"]), b":0\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), b":0\r\n");
    assert!(c.shared.aof().expect("aof").sync());
    let aof = std::fs::read(dir.path().join("appendonly.aof")).expect("aof");
    let logged: Vec<Vec<String>> = commands(&aof)
        .iter()
        .map(|c| text(c))
        .filter(|c| c[0] != "SELECT")
        .collect();
    assert_eq!(logged.len(), 4, "{logged:?}");
    assert_eq!(logged[2], ["DEL", "k"]);
    assert_eq!(logged[3], ["DEL", "other"]);
}

/// SCAN and RANDOMKEY remove the expired keys they meet (and log their DELs), as Redis's do:
/// with active expiry off, only they can have removed them.
#[test]
fn scan_and_randomkey_remove_the_expired_keys_they_meet() {
    let server = Rudis::start(&["--enable-debug-command", "yes"]);
    let mut c = server.raw();
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), b"+OK\r\n");
    for (cmd, args) in [("SCAN", &["0"][..]), ("RANDOMKEY", &[][..])] {
        assert_eq!(c.cmd(&["SET", "a", "1", "PX", "1"]), b"+OK\r\n");
        assert_eq!(c.cmd(&["SET", "b", "1", "PX", "1"]), b"+OK\r\n");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.cmd(&["DBSIZE"]), b":2\r\n", "{cmd}");
        let mut argv = vec![cmd];
        argv.extend_from_slice(args);
        let _ = c.cmd(&argv);
        if cmd == "RANDOMKEY" {
            // Each draw removes the expired key it drew; draws go on until none is left.
            let _ = c.cmd(&argv);
        }
        assert_eq!(c.cmd(&["DBSIZE"]), b":0\r\n", "{cmd} left the expired keys");
    }
    // A write after them: once it is acknowledged, the records before it are in the file.
    assert_eq!(c.cmd(&["SET", "z", "1"]), b"+OK\r\n");
    let aof = std::fs::read(server.aof_path()).unwrap_or_default();
    let dels = aof.windows(5).filter(|w| w == b"\r\nDEL").count();
    assert_eq!(dels, 4, "{}", String::from_utf8_lossy(&aof));
}
