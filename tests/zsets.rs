//! Sorted sets end to end: blocking pops across workers (against redis-server, reply for
//! reply), and persistence: an AOF restart and a BGREWRITEAOF keep every sorted set, and a real
//! redis-server loads rudis's file and holds the same sets.
mod aofutil;
mod common;

use std::time::{Duration, Instant};

use aofutil::{check_aof, redis_loading, wait_log};
use common::{blocked_clients, both, show, wait_blocked, Raw, RealRedis, Rudis};

fn words(w: &[&str]) -> Vec<Vec<u8>> {
    w.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn blocked_zpops_are_served_in_order_across_workers() {
    both(&["--workers", "4"], |port| {
        let mut waiters = blocked_clients(
            port,
            &[
                &["BZPOPMIN", "q", "0"],
                &["BZPOPMAX", "other", "q", "0"],
                &["BZMPOP", "0", "2", "q", "other", "MAX", "COUNT", "2"],
                &["BZPOPMIN", "q", "0"],
                &["BZMPOP", "0", "1", "q", "MIN"],
            ],
        );
        let mut p = Raw::connect(port);
        let mut t = vec![p.cmd(&["ZADD", "q", "1", "a", "2", "b", "3", "c", "4", "d"])];
        // The first three are served, in the order they blocked, from one ZADD.
        t.extend(waiters[..3].iter_mut().map(|w| w.read_reply()));
        wait_blocked(port, 2);
        // A ZINCRBY creating the key, then a ZUNIONSTORE into it, serve the next ones.
        t.push(p.cmd(&["ZINCRBY", "q", "7", "x"]));
        t.push(waiters[3].read_reply());
        t.push(p.cmd(&["ZADD", "src", "9", "y"]));
        t.push(p.cmd(&["ZUNIONSTORE", "q", "1", "src"]));
        t.push(waiters[4].read_reply());
        t.push(p.cmd(&["EXISTS", "q"]));
        // In RESP3 the score is a double.
        let mut r3 = Raw::connect(port);
        r3.cmd(&["HELLO", "3"]);
        r3.send(&["BZPOPMIN", "r", "0"]);
        wait_blocked(port, 1);
        t.push(p.cmd(&["ZADD", "r", "1.5", "m"]));
        t.push(r3.read_reply());
        t
    });
}

#[test]
fn zpop_timeouts_wrong_types_and_transactions() {
    both(&[], |port| {
        let mut c = Raw::connect(port);
        let start = Instant::now();
        let mut t = vec![c.cmd(&["BZPOPMIN", "none", "0.2"])];
        t.push(c.cmd(&["BZMPOP", "0.1", "1", "none", "MIN"]));
        assert!(start.elapsed() >= Duration::from_millis(300));
        // A key that becomes a string does not serve the waiter; a sorted set later does.
        let mut w = blocked_clients(port, &[&["BZPOPMAX", "k", "0"]]);
        t.push(c.cmd(&["SET", "k", "v"]));
        t.push(c.cmd(&["DEL", "k"]));
        t.push(c.cmd(&["ZADD", "k", "3", "z"]));
        t.push(w[0].read_reply());
        // Inside MULTI an empty key answers at once.
        c.cmd(&["MULTI"]);
        c.cmd(&["BZPOPMIN", "none", "0"]);
        c.cmd(&["BZMPOP", "0", "1", "none", "MIN"]);
        t.push(c.cmd(&["EXEC"]));
        t
    });
}

/// Every sorted set of every kind (packed, large, -0 and infinite scores, binary members),
/// built through every writing command, in two databases.
fn load(c: &mut Raw) {
    let mut cmds = vec![
        words(&[
            "ZADD", "small", "1", "a", "2.5", "b", "-inf", "c", "inf", "d",
        ]),
        words(&["ZADD", "small", "NX", "9", "a", "0.1", "e"]),
        words(&["ZINCRBY", "small", "0.2", "e"]),
        words(&["ZADD", "gone", "1", "x"]),
        words(&["ZREM", "gone", "x"]),
    ];
    let mut big = words(&["ZADD", "big"]);
    for i in 0..1000 {
        big.push(format!("{}", (i * 7919) % 1000 - 500).into_bytes());
        big.push(format!("member:{i}").into_bytes());
    }
    cmds.push(big);
    cmds.push(words(&[
        "ZADD", "negzero", "-0", "a", "1e300", "b", "5e-324", "c",
    ]));
    cmds.push(words(&["ZADD", "negzero", "1", &"l".repeat(80)]));
    cmds.push(vec![
        b"ZADD".to_vec(),
        b"bin".to_vec(),
        b"1".to_vec(),
        b"\x00\r\n\xff".to_vec(),
        b"2".to_vec(),
        b"".to_vec(),
    ]);
    cmds.push(words(&["ZPOPMIN", "big", "3"]));
    cmds.push(words(&["ZPOPMAX", "big"]));
    cmds.push(words(&["ZMPOP", "1", "big", "MIN", "COUNT", "2"]));
    cmds.push(words(&["ZREMRANGEBYRANK", "big", "100", "109"]));
    cmds.push(words(&["ZREMRANGEBYSCORE", "big", "(0", "10"]));
    cmds.push(words(&["ZREMRANGEBYLEX", "small", "-", "+"]));
    cmds.push(words(&[
        "ZUNIONSTORE",
        "union",
        "2",
        "big",
        "negzero",
        "WEIGHTS",
        "2",
        "-1",
    ]));
    cmds.push(words(&[
        "ZINTERSTORE",
        "inter",
        "2",
        "big",
        "big",
        "AGGREGATE",
        "MAX",
    ]));
    cmds.push(words(&["ZDIFFSTORE", "diff", "2", "big", "union"]));
    cmds.push(words(&[
        "ZRANGESTORE",
        "range",
        "big",
        "(-100",
        "100",
        "BYSCORE",
    ]));
    cmds.push(words(&["BZPOPMIN", "union", "0"]));
    cmds.push(words(&["BZMPOP", "0", "1", "union", "MAX", "COUNT", "3"]));
    cmds.push(words(&["SELECT", "3"]));
    cmds.push(words(&[
        "ZADD", "small", "1", "in", "2", "db", "3", "three",
    ]));
    cmds.push(words(&["ZADD", "whole", "1", "x"]));
    cmds.push(words(&["ZPOPMIN", "whole", "5"]));
    cmds.push(words(&["SELECT", "0"]));
    c.pipeline_ok(&cmds);
}

const KEYS: &[&str] = &[
    "small", "gone", "big", "negzero", "bin", "union", "inter", "diff", "range", "whole",
];

fn snapshot(c: &mut Raw) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for db in ["0", "3"] {
        c.frame(&["SELECT", db]);
        for k in KEYS {
            let t = c.cmd(&["TYPE", k]);
            out.push((
                format!("{db}/{k}"),
                t,
                c.cmd(&["ZRANGE", k, "0", "-1", "WITHSCORES"]),
            ));
        }
    }
    c.frame(&["SELECT", "0"]);
    out
}

#[test]
fn aof_restart_and_rewrite_keep_every_zset_and_redis_loads_the_file() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    load(&mut r.raw());
    let truth = snapshot(&mut r.raw());
    let has = |k: &str, t: &[u8]| truth.iter().any(|(key, ty, _)| key == k && ty == t);
    assert!(has("0/gone", b"+none\r\n") && has("3/whole", b"+none\r\n"));
    assert!(has("0/big", b"+zset\r\n") && has("0/union", b"+zset\r\n"));
    // Redis writes what a blocking pop did as the ZPOPMIN/ZPOPMAX it was.
    let text = std::fs::read(r.aof_path()).unwrap();
    let has_word = |w: &[u8]| text.windows(w.len()).any(|x| x == w);
    assert!(!has_word(b"BZPOPMIN") && !has_word(b"BZMPOP") && !has_word(b"ZMPOP"));
    assert!(has_word(b"ZPOPMAX"));

    r.restart();
    assert!(snapshot(&mut r.raw()) == truth, "restart loses sorted sets");

    r.raw().frame(&["BGREWRITEAOF"]);
    wait_log(&r, "Background AOF rewrite finished successfully", 1, 30);
    let text = std::fs::read(r.aof_path()).unwrap();
    assert!(
        !text.windows(7).any(|w| w == b"ZPOPMIN"),
        "the rewrite dumps sorted sets as ZADD"
    );
    r.restart();
    assert!(
        snapshot(&mut r.raw()) == truth,
        "the rewrite loses sorted sets"
    );

    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "redis-check-aof rejects the file:\n{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    let theirs = snapshot(&mut redis.raw());
    for (a, b) in truth.iter().zip(&theirs) {
        assert!(
            a == b,
            "redis-server loads {} as {}, not {}",
            a.0,
            show(&b.2),
            show(&a.2)
        );
    }
}

/// Which commands count as a change for WATCH: no-ops do not (as in Redis), changes do.
fn watch_outcomes(port: u16) -> Vec<Vec<u8>> {
    let mut a = Raw::connect(port);
    let mut b = Raw::connect(port);
    let mut got = Vec::new();
    let cmds: &[&[&str]] = &[
        &["ZADD", "w", "1", "a"],
        &["ZADD", "w", "NX", "5", "a"],
        &["ZADD", "w", "XX", "5", "nope"],
        &["ZADD", "w", "GT", "0", "a"],
        &["ZINCRBY", "w", "0", "a"],
        &["ZREM", "w", "nope"],
        &["ZREMRANGEBYSCORE", "w", "10", "20"],
        &["ZPOPMIN", "w", "0"],
        &["ZADD", "w", "2", "a"],
        &["ZREM", "w", "a"],
        &["ZPOPMAX", "w"],
        &["ZUNIONSTORE", "w", "1", "w2"],
        &["ZREMRANGEBYRANK", "w", "0", "0"],
    ];
    for (i, cmd) in cmds.iter().enumerate() {
        a.cmd(&["DEL", "w", "w2"]);
        a.cmd(&["ZADD", "w", "1", "a", "3", "c"]);
        a.cmd(&["ZADD", "w2", "1", "x"]);
        a.cmd(&["WATCH", "w"]);
        b.cmd(cmd);
        a.cmd(&["MULTI"]);
        a.cmd(&["PING", &i.to_string()]);
        got.push(a.cmd(&["EXEC"]));
    }
    got
}

#[test]
fn watch_sees_the_sorted_set_changes_redis_sees() {
    let r = Rudis::start(&[]);
    let redis = RealRedis::start(&[]);
    let ours = watch_outcomes(r.port);
    assert_eq!(ours, watch_outcomes(redis.port));
    for (i, reply) in ours.iter().enumerate() {
        assert_eq!(reply.starts_with(b"*-1"), i >= 8, "{i}: {}", show(reply));
    }
}
