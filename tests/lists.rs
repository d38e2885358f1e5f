//! Lists through the AOF (restart, BGREWRITEAOF, and a real redis-server loading rudis's file)
//! and through WATCH/MULTI.
mod aofutil;
mod common;

use aofutil::{check_aof, redis_loading, wait_log};
use common::{Raw, Rudis};
use rudis::resp::Frame;

const DONE: &str = "Background AOF rewrite finished successfully";

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

/// Lists of every size and kind of element, changed by every list command that writes.
fn workload() -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    for i in 0..200 {
        cmds.push(words(&format!("RPUSH small{i} a{i} {i} -{i} x")));
    }
    cmds.push(words("LPUSH l 3 2 1"));
    cmds.push(words("RPUSH l 4 5 6 7 8 9"));
    cmds.push(words("LPUSHX l 0"));
    cmds.push(words("RPUSHX l 10"));
    cmds.push(words("LPOP l"));
    cmds.push(words("RPOP l 2"));
    cmds.push(words("LSET l 1 changed"));
    cmds.push(words("LINSERT l BEFORE 5 four-and-a-half"));
    cmds.push(words("LREM l 1 6"));
    cmds.push(words("LTRIM l 0 -2"));
    cmds.push(words("LMOVE l l2 LEFT RIGHT"));
    cmds.push(words("RPOPLPUSH l l2"));
    cmds.push(words("LMPOP 2 nokey l2 RIGHT COUNT 1"));
    cmds.push(words("RPUSH gone only"));
    cmds.push(words("LPOP gone"));
    // One long list: a chain of nodes, and more elements than one RPUSH of the dump holds;
    // binary and empty elements among them.
    for round in 0..20 {
        let mut cmd = words("RPUSH big");
        for i in 0..1000 {
            let n = round * 1000 + i;
            cmd.push(match n % 4 {
                0 => n.to_string(),
                1 => format!("elem-{n}-{}", "z".repeat(n % 200)),
                2 => String::new(),
                _ => format!("\u{1}\u{0}{n}"),
            });
        }
        cmds.push(cmd);
    }
    cmds.push(words("LTRIM big 10 -10"));
    cmds.push(words("LREM big 0 elem-13-zzzzzzzzzzzzz"));
    cmds.push(words("SELECT 3"));
    cmds.push(words("RPUSH indb3 a b c"));
    cmds.push(words("SELECT 0"));
    cmds
}

/// Every list the workload leaves, in full.
fn snapshot(c: &mut Raw) -> Vec<Frame> {
    let mut keys: Vec<String> = (0..200).map(|i| format!("small{i}")).collect();
    keys.extend(["l", "l2", "gone", "big"].map(String::from));
    let mut got: Vec<Frame> = keys
        .iter()
        .map(|k| c.frame(&["LRANGE", k, "0", "-1"]))
        .collect();
    c.cmd(&["SELECT", "3"]);
    got.push(c.frame(&["LRANGE", "indb3", "0", "-1"]));
    c.cmd(&["SELECT", "0"]);
    got
}

#[test]
fn lists_survive_restart_and_rewrite_and_real_redis_loads_them() {
    // The rewrite as commands, whose batching this checks (tests/aof_rdb.rs has the preamble).
    let mut r = Rudis::start(&["--appendfsync", "always", "--aof-use-rdb-preamble", "no"]);
    let mut c = r.raw();
    c.pipeline_ok(&workload());
    let truth = snapshot(&mut c);
    assert_eq!(
        truth[200],
        Frame::Array(
            ["changed", "3", "4", "four-and-a-half", "5"]
                .iter()
                .map(|s| Frame::Bulk(s.as_bytes().to_vec()))
                .collect()
        )
    );
    // LTRIM 10 -10 keeps 19,981; LREM takes one more.
    assert!(matches!(&truth[203], Frame::Array(v) if v.len() == 19_980));
    assert_eq!(c.cmd(&["EXISTS", "gone"]), b":0\r\n");
    // LMPOP is logged as the RPOP it was.
    let aof = std::fs::read(r.aof_path()).expect("aof");
    let aof = String::from_utf8_lossy(&aof);
    assert!(!aof.contains("LMPOP"), "{aof}");
    assert!(aof.contains("RPOP\r\n$2\r\nl2\r\n$1\r\n1\r\n"), "{aof}");

    r.restart();
    assert_eq!(snapshot(&mut r.raw()), truth, "after a restart");

    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        b"+Background append only file rewriting started\r\n"
    );
    wait_log(&r, DONE, 1, 20);
    let aof = String::from_utf8_lossy(&std::fs::read(r.aof_path()).expect("aof")).into_owned();
    // The dump rebuilds each list with RPUSHes of at most 64 elements.
    assert!(
        !aof.contains("LPUSH") && !aof.contains("LTRIM"),
        "not compacted"
    );
    assert!(aof.contains("*66\r\n$5\r\nRPUSH\r\n$3\r\nbig\r\n"));
    assert!(!aof.contains("*67\r\n"), "a batch of more than 64");
    assert_eq!(snapshot(&mut c), truth, "while running after the rewrite");
    c.send(&["SHUTDOWN"]);
    assert!(aofutil::wait_exit(&mut r, 10).success());
    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "redis-check-aof rejects the file:\n{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    assert!(
        snapshot(&mut redis.raw()) == truth,
        "real redis-server loads other lists"
    );
    r.restart();
    assert_eq!(
        snapshot(&mut r.raw()),
        truth,
        "after the rewrite and a restart"
    );
}

#[test]
fn watch_sees_list_writes_and_ignores_pops_of_nothing() {
    let r = Rudis::start(&[]);
    let (mut a, mut b) = (r.raw(), r.raw());
    a.cmd(&["RPUSH", "q", "1"]);

    // A push by another client aborts the transaction.
    assert_eq!(a.cmd(&["WATCH", "q"]), b"+OK\r\n");
    b.cmd(&["LPUSH", "q", "0"]);
    a.cmd(&["MULTI"]);
    assert_eq!(a.cmd(&["LLEN", "q"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n");

    // So does a pop that empties (and deletes) the list, and an LMOVE into a watched key.
    for (setup, write) in [
        (&["RPUSH", "w", "x"][..], &["RPOP", "w"][..]),
        (
            &["RPUSH", "src", "x"][..],
            &["LMOVE", "src", "w", "LEFT", "LEFT"][..],
        ),
    ] {
        b.cmd(setup);
        a.cmd(&["WATCH", "w"]);
        b.cmd(write);
        a.cmd(&["MULTI"]);
        a.cmd(&["LLEN", "w"]);
        assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n", "{write:?}");
    }

    // Commands that change nothing leave a watch alone, as in Redis.
    a.cmd(&["WATCH", "nokey", "q"]);
    b.cmd(&["LPOP", "nokey"]);
    b.cmd(&["LRANGE", "q", "0", "-1"]);
    b.cmd(&["LPUSHX", "nokey", "a"]);
    assert_eq!(b.cmd(&["LPOP", "q", "0"]), b"*0\r\n");
    assert_eq!(b.cmd(&["LREM", "q", "0", "absent"]), b":0\r\n");
    a.cmd(&["MULTI"]);
    a.cmd(&["RPUSH", "q", "2"]);
    a.cmd(&["LRANGE", "q", "0", "-1"]);
    assert_eq!(
        a.cmd(&["EXEC"]),
        b"*2\r\n:3\r\n*3\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
}

fn lazyfreed(c: &mut Raw) -> u64 {
    let info = String::from_utf8(c.cmd(&["INFO", "memory"])).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("lazyfreed_objects:"))
        .expect("lazyfreed_objects")
        .trim()
        .parse()
        .unwrap()
}

/// Waits until INFO's `lazyfreed_objects` reaches `n`.
fn wait_lazyfreed(c: &mut Raw, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while lazyfreed(c) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "lazyfreed_objects never reached {n}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// UNLINK (and DEL under lazyfree-lazy-user-del, FLUSHALL ASYNC or under
/// lazyfree-lazy-user-flush) frees a big value in the background, as Redis's lazyfree; DEL by
/// default and small values are freed in place.
#[test]
fn big_values_are_freed_in_the_background_by_unlink_and_async_flushes() {
    let server = Rudis::start(&["--appendonly", "no"]);
    let mut c = server.raw();
    let fill = |c: &mut Raw, key: &str| {
        let cmds: Vec<Vec<String>> = (0..200)
            .map(|_| {
                let mut cmd = vec!["RPUSH".to_string(), key.to_string()];
                cmd.extend((0..1000).map(|i| format!("element-{i}")));
                cmd
            })
            .collect();
        c.pipeline_ok(&cmds);
    };
    fill(&mut c, "big");
    c.cmd(&["RPUSH", "small", "a", "b"]);
    assert_eq!(lazyfreed(&mut c), 0);
    assert_eq!(c.cmd(&["UNLINK", "big", "small", "none"]), b":2\r\n");
    wait_lazyfreed(&mut c, 1);
    assert_eq!(c.cmd(&["EXISTS", "big"]), b":0\r\n");

    // DEL frees in place unless lazyfree-lazy-user-del says otherwise.
    fill(&mut c, "big");
    assert_eq!(c.cmd(&["DEL", "big"]), b":1\r\n");
    assert_eq!(lazyfreed(&mut c), 1);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"]),
        b"+OK\r\n"
    );
    fill(&mut c, "big");
    assert_eq!(c.cmd(&["DEL", "big"]), b":1\r\n");
    wait_lazyfreed(&mut c, 2);

    // FLUSHALL ASYNC hands over the shards it emptied; SYNC does not.
    for _ in 0..100 {
        fill_keys(&mut c);
    }
    assert_eq!(c.cmd(&["FLUSHALL", "SYNC"]), b"+OK\r\n");
    assert_eq!(lazyfreed(&mut c), 2);
    for _ in 0..100 {
        fill_keys(&mut c);
    }
    assert_eq!(c.cmd(&["FLUSHALL", "ASYNC"]), b"+OK\r\n");
    wait_lazyfreed(&mut c, 3);
    assert_eq!(c.cmd(&["DBSIZE"]), b":0\r\n");
}

/// 2,000 small keys per call, spread over every shard.
fn fill_keys(c: &mut Raw) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let base = N.fetch_add(2000, std::sync::atomic::Ordering::Relaxed);
    let mut cmd = vec!["MSET".to_string()];
    for i in base..base + 2000 {
        cmd.push(format!("key:{i}"));
        cmd.push("v".into());
    }
    assert_eq!(c.cmd(&cmd), b"+OK\r\n");
}
