//! Sets beyond what a differential script can say: the AOF keeps them across a restart and a
//! BGREWRITEAOF (and real Redis loads the file), WATCH sees exactly the changes Redis counts,
//! and SPOP / SRANDMEMBER are uniform, distinct where they must be, repeating where they may.
mod aofutil;
mod common;

use std::collections::HashMap;

use aofutil::{check_aof, redis_loading, wait_log};
use common::{Raw, Rudis};
use rudis::resp::Frame;

fn words(w: &[&str]) -> Vec<Vec<u8>> {
    w.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn members(f: Frame) -> Vec<Vec<u8>> {
    match f {
        Frame::Array(items) | Frame::Set(items) => items
            .into_iter()
            .map(|i| match i {
                Frame::Bulk(b) => b,
                other => panic!("not a bulk: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

const KEYS: &[&str] = &[
    "small", "wide", "big", "strs", "bin", "popped", "moved", "inter", "union", "diff", "gone",
];

/// Writes sets of every encoding and width, and changes them with every writing command.
fn load(c: &mut Raw) {
    let mut cmds = vec![
        words(&["SADD", "small", "3", "1", "2"]),
        words(&["SADD", "wide", "1", "70000", "-9223372036854775808", "42"]),
        words(&["SREM", "wide", "42"]),
        words(&["SADD", "gone", "a"]),
        words(&["SREM", "gone", "a"]),
    ];
    // A table of integers (past 512) and one larger than one SADD of the dump.
    let mut big = words(&["SADD", "big"]);
    big.extend((0..700).map(|i| i.to_string().into_bytes()));
    cmds.push(big);
    let mut strs = words(&["SADD", "strs"]);
    strs.extend((0..300).map(|i| format!("member:{i}:{}", "x".repeat(i % 40)).into_bytes()));
    cmds.push(strs);
    cmds.push(vec![
        b"SADD".to_vec(),
        b"bin".to_vec(),
        b"\x00\r\n\xff".to_vec(),
        b"".to_vec(),
        b"01".to_vec(),
    ]);
    let mut popped = words(&["SADD", "popped"]);
    popped.extend((0..100).map(|i| format!("p{i}").into_bytes()));
    cmds.push(popped);
    cmds.push(words(&["SPOP", "popped"]));
    cmds.push(words(&["SPOP", "popped", "30"]));
    cmds.push(words(&["SPOP", "small", "0"]));
    cmds.push(words(&["SADD", "moved", "m"]));
    cmds.push(words(&["SMOVE", "big", "moved", "5"]));
    cmds.push(words(&["SMOVE", "strs", "moved", "member:1:x"]));
    cmds.push(words(&["SINTERSTORE", "inter", "big", "small"]));
    cmds.push(words(&["SUNIONSTORE", "union", "small", "wide", "bin"]));
    cmds.push(words(&["SDIFFSTORE", "diff", "big", "small", "moved"]));
    cmds.push(words(&["SELECT", "3"]));
    cmds.push(words(&["SADD", "small", "in", "db", "3"]));
    cmds.push(words(&["SADD", "whole", "1", "2"]));
    cmds.push(words(&["SPOP", "whole", "5"]));
    cmds.push(words(&["SELECT", "0"]));
    c.pipeline_ok(&cmds);
}

/// Every key's type and sorted members, in both databases used.
fn snapshot(c: &mut Raw) -> Vec<(String, Vec<u8>, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    for db in ["0", "3"] {
        c.frame(&["SELECT", db]);
        for k in KEYS.iter().chain(&["whole"]) {
            let t = match c.frame(&["TYPE", k]) {
                Frame::Simple(t) => t.into_bytes(),
                other => panic!("TYPE: {other:?}"),
            };
            let mut m = members(c.frame(&["SMEMBERS", k]));
            m.sort();
            out.push((format!("{db}/{k}"), t, m));
        }
    }
    c.frame(&["SELECT", "0"]);
    out
}

#[test]
fn aof_restart_and_rewrite_keep_every_set_and_redis_loads_the_file() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    load(&mut r.raw());
    let truth = snapshot(&mut r.raw());
    // The SPOPs took what they took: 100 - 1 - 30 remain, and the file must say which.
    let popped = truth.iter().find(|(k, _, _)| k == "0/popped").unwrap();
    assert_eq!(popped.2.len(), 69);
    assert!(truth.iter().any(|(k, t, _)| k == "0/gone" && t == b"none"));
    assert!(truth.iter().any(|(k, t, _)| k == "3/whole" && t == b"none"));

    r.restart();
    assert!(snapshot(&mut r.raw()) == truth, "restart loses sets");

    let mut c = r.raw();
    c.frame(&["BGREWRITEAOF"]);
    wait_log(&r, "Background AOF rewrite finished successfully", 1, 30);
    let text = std::fs::read(r.aof_path()).unwrap();
    assert!(
        !text.windows(4).any(|w| w == b"SPOP"),
        "the rewrite dumps sets as SADD"
    );
    r.restart();
    assert!(snapshot(&mut r.raw()) == truth, "the rewrite loses sets");

    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "redis-check-aof rejects the file:\n{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    assert!(
        snapshot(&mut redis.raw()) == truth,
        "real redis-server loads other sets"
    );
}

/// WATCHed transactions around set commands that change, or do not change, the key (Redis
/// signals a change only when there is one).
#[test]
fn watch_sees_the_set_changes_redis_sees() {
    let setup: &[&[&str]] = &[
        &["DEL", "w", "w2"],
        &["SADD", "w", "1", "3"],
        &["SADD", "w2", "x", "1"],
    ];
    let cmds: &[&[&str]] = &[
        &["SADD", "w", "1"],
        &["SREM", "w", "nope"],
        &["SMOVE", "w", "other", "nope"],
        &["SPOP", "w", "0"],
        &["SINTERCARD", "1", "w"],
        &["SMOVE", "w2", "w", "1"],
        &["SADD", "w", "2"],
        &["SREM", "w", "3"],
        &["SPOP", "w"],
        &["SMOVE", "w2", "w", "x"],
        &["SINTERSTORE", "w", "w2"],
    ];
    // The first six change nothing; the rest do.
    common::assert_watch_outcomes("w", setup, cmds, |i| i >= 6);
}

fn counts(items: Vec<Vec<u8>>) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m
}

fn assert_uniform(c: &HashMap<Vec<u8>, usize>, n: usize, total: usize) {
    assert_eq!(c.len(), n, "every member is picked");
    let expect = total / n;
    for (m, k) in c {
        // Far beyond 5 standard deviations of a fair pick.
        assert!(
            k.abs_diff(expect) < expect / 4,
            "{} picked {k} times, expected about {expect}",
            String::from_utf8_lossy(m)
        );
    }
}

#[test]
fn random_members_are_uniform_distinct_or_repeating_as_asked() {
    let r = Rudis::start(&[]);
    let mut c = r.raw();
    // An intset and a table.
    let ints: Vec<String> = (0..10).map(|i| (i * 1000).to_string()).collect();
    let strs: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
    for (key, ms) in [("ri", &ints), ("rs", &strs)] {
        let mut sadd = vec!["SADD".to_string(), key.to_string()];
        sadd.extend(ms.iter().cloned());
        c.cmd(&sadd);
        // Negative counts repeat members: 20000 picks of 10.
        let picks = members(c.frame(&["SRANDMEMBER", key, "-20000"]));
        assert_eq!(picks.len(), 20000);
        assert_uniform(&counts(picks), 10, 20000);
        // Positive counts below the size: distinct members, each equally often over many calls.
        let mut all = Vec::new();
        for count in ["3", "8"] {
            for _ in 0..1000 {
                let got = members(c.frame(&["SRANDMEMBER", key, count]));
                assert_eq!(got.len(), count.parse::<usize>().unwrap());
                assert_eq!(counts(got.clone()).len(), got.len(), "distinct: {got:?}");
                all.extend(got);
            }
        }
        assert_uniform(&counts(all), 10, 11000);
        // SPOP: a uniform member, removed.
        let mut popped = Vec::new();
        for _ in 0..4000 {
            c.cmd(&["DEL", "p"]);
            let mut sadd = vec!["SADD".to_string(), "p".into()];
            sadd.extend(ms.iter().cloned());
            c.cmd(&sadd);
            let Frame::Bulk(m) = c.frame(&["SPOP", "p"]) else {
                panic!("SPOP")
            };
            assert_eq!(
                c.frame(&["SISMEMBER", "p", std::str::from_utf8(&m).unwrap()]),
                Frame::Integer(0)
            );
            popped.push(m);
        }
        assert_uniform(&counts(popped), 10, 4000);
    }
    // SPOP with a count on a big table: distinct members, all gone from the set.
    let mut sadd = vec!["SADD".to_string(), "bigp".into()];
    sadd.extend((0..5000).map(|i| format!("b{i}")));
    c.cmd(&sadd);
    for count in ["10", "3000", "1500"] {
        let got = members(c.frame(&["SPOP", "bigp", count]));
        assert_eq!(counts(got.clone()).len(), count.parse::<usize>().unwrap());
        for m in got {
            let m = String::from_utf8(m).unwrap();
            assert_eq!(c.frame(&["SISMEMBER", "bigp", &m]), Frame::Integer(0));
        }
    }
    assert_eq!(c.frame(&["SCARD", "bigp"]), Frame::Integer(490));
    let rest = members(c.frame(&["SPOP", "bigp", "1000"]));
    assert_eq!(counts(rest).len(), 490);
    assert_eq!(c.frame(&["EXISTS", "bigp"]), Frame::Integer(0));
}

#[test]
fn sscan_of_a_big_table_returns_every_member_once_more_or_less() {
    let r = Rudis::start(&[]);
    let mut c = r.raw();
    let mut sadd = vec!["SADD".to_string(), "sc".into()];
    sadd.extend((0..3000).map(|i| format!("m{i}")));
    c.cmd(&sadd);
    let mut seen = HashMap::new();
    let mut cursor = "0".to_string();
    let mut steps = 0;
    loop {
        let Frame::Array(parts) = c.frame(&["SSCAN", "sc", &cursor, "COUNT", "50"]) else {
            panic!("SSCAN")
        };
        let mut parts = parts.into_iter();
        let Some(Frame::Bulk(next)) = parts.next() else {
            panic!("cursor")
        };
        for m in members(parts.next().unwrap()) {
            *seen.entry(m).or_insert(0) += 1;
        }
        // Members removed mid-scan, of those seen already, must not hide the others.
        c.cmd(&["SREM", "sc", &format!("m{}", steps * 13 % 3000)]);
        steps += 1;
        cursor = String::from_utf8(next).unwrap();
        if cursor == "0" {
            break;
        }
        assert!(steps < 1000, "the scan ends");
    }
    for i in 0..3000 {
        let m = format!("m{i}");
        if c.frame(&["SISMEMBER", "sc", &m]) == Frame::Integer(1) {
            assert!(seen.contains_key(m.as_bytes()), "{m} never returned");
        }
    }
}

/// SSCAN of a big set gives about COUNT members a call (a COUNT of any size used to return
/// the whole set: the count was mangled on its way to the table), each member exactly once.
#[test]
fn sscan_pages_are_count_sized() {
    let server = Rudis::start(&["--appendonly", "no"]);
    let mut c = server.raw();
    let n = 200_000;
    let cmds: Vec<Vec<String>> = (0..n)
        .collect::<Vec<usize>>()
        .chunks(1000)
        .map(|chunk| {
            let mut cmd = vec!["SADD".to_string(), "big".into()];
            cmd.extend(chunk.iter().map(|i| format!("m{i}")));
            cmd
        })
        .collect();
    c.pipeline_ok(&cmds);
    let (items, calls, largest) = common::scan_pages(&mut c, &["SSCAN", "big"], 100);
    assert!(largest <= 100, "a page of {largest} members for COUNT 100");
    assert!(calls >= n / 100, "{calls} calls");
    let distinct: std::collections::HashSet<_> = items.iter().collect();
    assert_eq!((items.len(), distinct.len()), (n, n));
}
