//! HyperLogLogs beyond what a differential script can say: thousands of random elements give
//! the same estimates and the same stored bytes as redis-server at every step (the sparse
//! encoding's splits and merges, its promotion to dense, merges of both); values copied either
//! way count the same; the AOF keeps HLLs, cached counts included, and real Redis loads the file;
//! WATCH sees exactly the changes Redis signals.
mod aofutil;
mod common;

use aofutil::{check_aof, redis_loading, wait_log};
use common::{show, Raw, RealRedis, Rng, Rudis};

/// Sends the same command to both servers; the raw replies must be identical.
fn same(a: &mut Raw, b: &mut Raw, cmd: &[Vec<u8>]) -> Vec<u8> {
    let ours = a.cmd(cmd);
    let theirs = b.cmd(cmd);
    assert!(
        ours == theirs,
        "{:?}: rudis {} redis {}",
        cmd.iter()
            .take(3)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect::<Vec<_>>(),
        show(&ours[..ours.len().min(300)]),
        show(&theirs[..theirs.len().min(300)])
    );
    ours
}

fn w(s: &[&str]) -> Vec<Vec<u8>> {
    s.iter().map(|x| x.as_bytes().to_vec()).collect()
}

#[test]
fn random_inserts_count_and_store_the_same_bytes_as_redis() {
    let rudis = Rudis::start(&[]);
    let redis = RealRedis::start(&[]);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let mut g = Rng::from_clock();
    let seed = g.next();
    eprintln!("seed {seed}");
    let mut g = Rng::seeded(seed);
    let keys = ["k0", "k1", "k2", "k3"];
    let mut promoted = 0;
    for round in 0..400 {
        let key = keys[g.below(keys.len() as u64) as usize];
        // Mostly small batches (the sparse encoding's steps), now and then a large one.
        let n = if g.below(10) == 0 {
            200 + g.below(800)
        } else {
            1 + g.below(20)
        };
        let mut cmd = w(&["PFADD", key]);
        for _ in 0..n {
            // Binary elements of every length: the hash's tail bytes are exercised too.
            cmd.push(g.bytes(b"abcxyz\x00\xff\r\n0123456789", 0, 24));
        }
        same(&mut a, &mut b, &cmd);
        if g.below(3) == 0 {
            same(&mut a, &mut b, &w(&["PFCOUNT", key]));
        }
        let enc = same(&mut a, &mut b, &w(&["PFDEBUG", "ENCODING", key]));
        if enc == b"+dense\r\n" {
            promoted += 1;
        }
        same(&mut a, &mut b, &w(&["GET", key]));
        if round % 25 == 0 {
            same(&mut a, &mut b, &w(&["PFCOUNT", "k0", "k1", "k2", "k3"]));
            same(&mut a, &mut b, &w(&["PFMERGE", "m", key, "k3"]));
            same(&mut a, &mut b, &w(&["GET", "m"]));
            same(&mut a, &mut b, &w(&["PFCOUNT", "m"]));
            same(&mut a, &mut b, &w(&["GET", "m"]));
        }
    }
    assert!(promoted > 0, "some HLL went dense");
    for key in keys {
        same(&mut a, &mut b, &w(&["PFCOUNT", key]));
        same(&mut a, &mut b, &w(&["GET", key]));
    }
}

#[test]
fn values_copied_from_redis_count_the_same_and_back() {
    let rudis = Rudis::start(&[]);
    let redis = RealRedis::start(&[]);
    let (mut a, mut b) = (rudis.raw(), redis.raw());
    let mut g = Rng::from_clock();
    for (key, n) in [("small", 30), ("mid", 900), ("big", 20000)] {
        let mut cmd = w(&["PFADD", key]);
        let salt = g.next();
        cmd.extend((0..n).map(|i| format!("{salt}:{i}").into_bytes()));
        // Built in Redis only: the bytes come across with SET.
        b.cmd(&cmd);
        let value = match b.frame(&["GET", key]) {
            rudis::resp::Frame::Bulk(v) => v,
            other => panic!("GET: {other:?}"),
        };
        let set: Vec<&[u8]> = vec![b"SET", key.as_bytes(), &value];
        assert_eq!(a.cmd(&set), b"+OK\r\n");
        same(&mut a, &mut b, &w(&["PFCOUNT", key]));
        same(&mut a, &mut b, &w(&["PFADD", key, "one", "two", "three"]));
        same(&mut a, &mut b, &w(&["GET", key]));
        same(&mut a, &mut b, &w(&["PFCOUNT", key]));
    }
    // The estimate is within the 0.81 % standard error's few sigmas at 20000.
    let n: u64 = String::from_utf8_lossy(&a.cmd(&["PFCOUNT", "big"]))
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(n.abs_diff(20000) < 20000 * 4 / 100, "{n}");
}

#[test]
fn aof_restart_and_rewrite_keep_hlls_and_redis_loads_the_file() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    let mut g = Rng::seeded(11);
    for (key, n) in [("sparse", 100), ("dense", 5000), ("cached", 700)] {
        let mut cmd = w(&["PFADD", key]);
        cmd.extend((0..n).map(|_| g.bytes(b"0123456789abcdef", 4, 10)));
        assert_eq!(c.cmd(&cmd), b":1\r\n");
    }
    c.cmd(&["PFCOUNT", "cached"]);
    assert_eq!(c.cmd(&["PFMERGE", "merged", "sparse", "dense"]), b"+OK\r\n");
    let keys = ["sparse", "dense", "cached", "merged"];
    let snapshot =
        |c: &mut Raw| -> Vec<Vec<u8>> { keys.iter().map(|k| c.cmd(&["GET", k])).collect() };
    let truth = snapshot(&mut c);
    assert_eq!(c.cmd(&["PFDEBUG", "ENCODING", "dense"]), b"+dense\r\n");
    assert_eq!(c.cmd(&["PFDEBUG", "ENCODING", "sparse"]), b"+sparse\r\n");
    drop(c);

    r.restart();
    // The cached count came back too (the AOF logged the PFCOUNT that stored it).
    let after = snapshot(&mut r.raw());
    for (k, (a, b)) in keys.iter().zip(after.iter().zip(&truth)) {
        assert!(a == b, "restart changes {k}");
    }

    let mut c = r.raw();
    c.cmd(&["BGREWRITEAOF"]);
    wait_log(&r, "Background AOF rewrite finished successfully", 1, 30);
    drop(c);
    r.restart();
    assert!(
        snapshot(&mut r.raw()) == truth,
        "the rewrite loses HLL bytes"
    );

    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "redis-check-aof rejects the file:\n{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    let mut rc = redis.raw();
    assert!(
        snapshot(&mut rc) == truth,
        "real redis-server loads other bytes"
    );
    let mut ours = r.raw();
    for k in keys {
        assert_eq!(ours.cmd(&["PFCOUNT", k]), rc.cmd(&["PFCOUNT", k]), "{k}");
    }
}

/// WATCH sees the changes Redis signals: PFADD of a new element, PFMERGE (always); not a
/// cached PFCOUNT or a change of encoding.
#[test]
fn watch_sees_the_hll_changes_redis_sees() {
    // The cache is made valid first: the PFCOUNT after it changes nothing.
    let setup: &[&[&str]] = &[&["DEL", "w"], &["PFADD", "w", "a", "b"], &["PFCOUNT", "w"]];
    let cmds: &[&[&str]] = &[
        &["PFADD", "w", "a"],
        &["PFCOUNT", "w"],
        &["PFCOUNT", "w", "other"],
        &["PFDEBUG", "ENCODING", "w"],
        &["PFADD", "w", "new"],
        &["PFMERGE", "w"],
        &["PFDEBUG", "TODENSE", "w"],
    ];
    common::assert_watch_outcomes("w", setup, cmds, |i| matches!(i, 4 | 5));
}
