//! RDB files and DUMP payloads between rudis and a real redis-server 7.0: every type and
//! encoding both ways, compared key by key; corrupt and truncated input refused; BGSAVE
//! point-in-time under cross-shard transactions; a kill -9 during BGSAVE.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Raw, RealRedis, Rudis};
use rudis::resp::frame::Frame;

/// Commands that make one key of every type in every encoding Redis 7.0 has, in two dbs.
fn population() -> Vec<Vec<String>> {
    let mut c: Vec<Vec<String>> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    c.push(s(&["SET", "str:int", "12345"]));
    c.push(s(&["SET", "str:neg", "-9223372036854775808"]));
    c.push(s(&["SET", "str:plain", "hello world"]));
    c.push(s(&["SET", "str:empty", ""]));
    c.push(vec![
        "SET".into(),
        "str:long".into(),
        "abcdefgh".repeat(500),
    ]);
    c.push(vec![
        "SET".into(),
        "str:bin".into(),
        (0..=255u8).map(|b| b as char).collect(),
    ]);
    c.push(s(&["SET", "str:ttl", "v", "PX", "100000000"]));
    for n in [5usize, 2000] {
        let mut lpush = s(&["RPUSH", &format!("list:{n}")]);
        let mut sadd = s(&["SADD", &format!("set:{n}")]);
        let mut ints = s(&["SADD", &format!("intset:{n}")]);
        let mut hset = s(&["HSET", &format!("hash:{n}")]);
        let mut zadd = s(&["ZADD", &format!("zset:{n}")]);
        for i in 0..n {
            lpush.push(format!("elem-{i}"));
            lpush.push(i.to_string());
            sadd.push(format!("member-{i}"));
            ints.push(((i as i64 - 3) * 100_003).to_string());
            hset.push(format!("field-{i}"));
            hset.push(if i % 3 == 0 {
                i.to_string()
            } else {
                format!("value-{i}")
            });
            zadd.push(format!("{}", i as f64 * 0.75 - 10.0));
            zadd.push(format!("z-{i}"));
        }
        for cmd in [lpush, sadd, ints, hset, zadd] {
            c.push(cmd);
        }
    }
    c.push(s(&[
        "ZADD",
        "zset:odd",
        "inf",
        "a",
        "-inf",
        "b",
        "0",
        "c",
        "3.141592653589793",
        "d",
    ]));
    c.push(s(&["HSET", "hash:ttl", "f", "v"]));
    c.push(s(&["PEXPIRE", "hash:ttl", "50000000"]));
    c.push(s(&["SELECT", "3"]));
    c.push(s(&["SET", "in-db3", "x"]));
    c.push(s(&["RPUSH", "list-db3", "a", "b"]));
    c.push(s(&["SELECT", "0"]));
    c.push(s(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return 1 end)",
    ]));
    c
}

fn populate(r: &mut Raw) {
    for cmd in population() {
        let reply = r.cmd(&cmd);
        assert!(
            !reply.starts_with(b"-"),
            "{cmd:?}: {}",
            common::show(&reply)
        );
    }
}

fn strings(f: Frame) -> Vec<String> {
    match f {
        Frame::Array(v) => v
            .into_iter()
            .map(|x| match x {
                Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => format!("{other:?}"),
            })
            .collect(),
        other => vec![format!("{other:?}")],
    }
}

/// Every key of dbs 0 to 3 as (db, key) -> a canonical text of its type, content and TTL.
fn contents(r: &mut Raw) -> BTreeMap<(u8, String), String> {
    let mut out = BTreeMap::new();
    for db in 0..4u8 {
        r.cmd(&["SELECT", &db.to_string()]);
        for key in strings(r.frame(&["KEYS", "*"])) {
            let t = match r.frame(&["TYPE", &key]) {
                Frame::Simple(t) => t,
                other => panic!("{other:?}"),
            };
            let mut body = match t.as_str() {
                "string" => strings(Frame::Array(vec![r.frame(&["GET", &key])])),
                "list" => strings(r.frame(&["LRANGE", &key, "0", "-1"])),
                "set" => strings(r.frame(&["SMEMBERS", &key])),
                "hash" => {
                    let v = strings(r.frame(&["HGETALL", &key]));
                    v.chunks(2).map(|p| p.join("=")).collect()
                }
                "zset" => strings(r.frame(&["ZRANGE", &key, "0", "-1", "WITHSCORES"])),
                other => panic!("type {other}"),
            };
            if t == "set" || t == "hash" {
                body.sort();
            }
            let ttl = match r.frame(&["PTTL", &key]) {
                Frame::Integer(n) if n > 0 => "ttl",
                Frame::Integer(-1) => "none",
                other => panic!("{other:?}"),
            };
            out.insert((db, key), format!("{t} {ttl} {body:?}"));
        }
    }
    r.cmd(&["SELECT", "0"]);
    out
}

fn function_names(r: &mut Raw) -> String {
    common::show(&r.cmd(&["FUNCTION", "LIST"]))
}

fn redis_in(dir: &Path) -> RealRedis {
    RealRedis::start(&["--dir", dir.to_str().unwrap()])
}

#[test]
fn redis_dump_rdb_loads_in_rudis_key_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = redis_in(tmp.path());
    let mut theirs = redis.raw();
    populate(&mut theirs);
    assert_eq!(theirs.cmd(&["SAVE"]), b"+OK\r\n");
    let want = contents(&mut theirs);
    assert!(want.len() > 15);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(tmp.path().join("dump.rdb"), dir.path().join("dump.rdb")).unwrap();
    let rudis = Rudis::start_in(dir.path(), &["--appendonly", "no"]);
    let mut ours = rudis.raw();
    assert_eq!(contents(&mut ours), want);
    assert_eq!(function_names(&mut ours), function_names(&mut theirs));
    assert!(rudis.log().contains("RDB version 10"), "{}", rudis.log());
}

#[test]
fn rudis_dump_rdb_loads_in_redis_and_passes_redis_check_rdb() {
    for compression in ["yes", "no"] {
        let rudis = Rudis::start(&["--appendonly", "no", "--rdbcompression", compression]);
        let mut ours = rudis.raw();
        populate(&mut ours);
        assert_eq!(ours.cmd(&["SAVE"]), b"+OK\r\n");
        let want = contents(&mut ours);
        let file = rudis.dir.join("dump.rdb");
        let (ok, text) = common::check_rdb(&file);
        assert!(ok, "{text}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&file, dir.path().join("dump.rdb")).unwrap();
        let redis = redis_in(dir.path());
        let mut theirs = redis.raw();
        assert_eq!(contents(&mut theirs), want, "rdbcompression {compression}");
        assert_eq!(function_names(&mut theirs), function_names(&mut ours));
        // And rudis loads its own file back.
        let again = Rudis::start_in(dir.path(), &["--appendonly", "no"]);
        assert_eq!(contents(&mut again.raw()), want);
    }
}

#[test]
fn dump_payloads_restore_both_ways() {
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let (mut theirs, mut ours) = (redis.raw(), rudis.raw());
    populate(&mut theirs);
    populate(&mut ours);
    let keys: Vec<String> = contents(&mut ours)
        .into_keys()
        .filter(|(db, _)| *db == 0)
        .map(|(_, k)| k)
        .collect();
    for way in 0..2 {
        let (from, to) = if way == 0 {
            (&mut theirs, &mut ours)
        } else {
            (&mut ours, &mut theirs)
        };
        for k in &keys {
            let Frame::Bulk(payload) = from.frame(&["DUMP", k]) else {
                panic!("DUMP {k}")
            };
            let name = format!("restored:{k}");
            let reply = to.cmd(&[b"RESTORE", name.as_bytes(), b"0", &payload]);
            assert_eq!(reply, b"+OK\r\n", "{k}");
        }
        // The restored keys hold what the originals hold (without their TTLs: RESTORE 0).
        let now = contents(to);
        for ((db, k), v) in &now {
            if let Some(orig) = k.strip_prefix("restored:") {
                let want = now[&(*db, orig.to_string())].replace(" ttl ", " none ");
                assert_eq!(v, &want, "{k} way {way}");
            }
        }
        for k in &keys {
            to.cmd(&["DEL", &format!("restored:{k}")]);
        }
    }
}

#[test]
fn restore_errors_are_redis_s() {
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let (mut theirs, mut ours) = (redis.raw(), rudis.raw());
    for r in [&mut theirs, &mut ours] {
        r.cmd(&["SET", "k", "v"]);
    }
    let Frame::Bulk(good) = ours.frame(&["DUMP", "k"]) else {
        panic!()
    };
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let mut bad_body = good.clone();
    bad_body[0] = 99;
    let crc = rudis::rdb::crc64::crc64(0, &bad_body[..bad_body.len() - 8]);
    let n = bad_body.len();
    bad_body[n - 8..].copy_from_slice(&crc.to_le_bytes());
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"RESTORE", b"k", b"0", &good],
        vec![b"RESTORE", b"new", b"0", &bad_crc],
        vec![b"RESTORE", b"new", b"0", b"short"],
        vec![b"RESTORE", b"new", b"0", &bad_body],
        vec![b"RESTORE", b"new", b"-1", &good],
        vec![b"RESTORE", b"new", b"x", &good],
        vec![b"RESTORE", b"new", b"0", &good, b"FREQ", b"300"],
        vec![b"RESTORE", b"new", b"0", &good, b"IDLETIME", b"-1"],
        vec![
            b"RESTORE",
            b"new",
            b"0",
            &good,
            b"IDLETIME",
            b"1",
            b"FREQ",
            b"1",
        ],
        vec![b"RESTORE", b"new", b"0", &good, b"BOGUS"],
        vec![
            b"RESTORE",
            b"k",
            b"0",
            &good,
            b"REPLACE",
            b"ABSTTL",
            b"IDLETIME",
            b"5",
        ],
        vec![b"RESTORE", b"gone", b"1", &good, b"ABSTTL"],
        vec![b"EXISTS", b"gone"],
        vec![b"DUMP", b"nosuchkey"],
        vec![b"GET", b"k"],
    ];
    for c in cases {
        assert_eq!(
            common::show(&ours.cmd(&c)),
            common::show(&theirs.cmd(&c)),
            "{:?}",
            c[..3]
                .iter()
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn corrupt_and_truncated_files_are_refused_with_the_offset() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut ours = rudis.raw();
    populate(&mut ours);
    assert_eq!(ours.cmd(&["SAVE"]), b"+OK\r\n");
    let data = std::fs::read(rudis.dir.join("dump.rdb")).unwrap();
    assert!(rudis::rdb::file::parse(&data, 16).is_ok());
    // Every truncation is refused (a sample of lengths, the last bytes each).
    let mut cuts: Vec<usize> = (0..data.len()).step_by(97).collect();
    cuts.extend(data.len() - 12..data.len());
    for n in cuts {
        let e = rudis::rdb::file::parse(&data[..n], 16)
            .err()
            .expect("refused");
        assert!(e.offset <= n, "{n}: {e}");
    }
    // A flipped byte is caught by the structure or by the CRC-64.
    for at in (10..data.len() - 9).step_by(53) {
        let mut bad = data.clone();
        bad[at] ^= 0x5a;
        assert!(rudis::rdb::file::parse(&bad, 16).is_err(), "flip at {at}");
    }
    // A server given a truncated file stops with the offset and does not serve half of it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.rdb"), &data[..data.len() / 2]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rudis-server"))
        .args(["--port", "0", "--appendonly", "no", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("at offset"),
        "{text}"
    );
}

/// Transactions move one unit from `a{i}` to `b{i}` (different shards) while BGSAVE runs:
/// each snapshot's sum over both is the same, so no transaction is half in it.
#[test]
fn bgsave_shows_each_cross_shard_transaction_whole_or_not_at_all() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut setup = rudis.raw();
    const PAIRS: usize = 50;
    for i in 0..PAIRS {
        setup.cmd(&["SET", &format!("a{i}"), "1000000"]);
        setup.cmd(&["SET", &format!("b{i}"), "0"]);
    }
    // Bulk so each shard has something to dump.
    for chunk in 0..20 {
        let mut mset = vec!["MSET".to_string()];
        for j in 0..1000 {
            mset.push(format!("filler:{chunk}:{j}"));
            mset.push("x".repeat(50));
        }
        setup.cmd(&mset);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (port, stop) = (rudis.port, stop.clone());
            std::thread::spawn(move || {
                let mut r = Raw::connect(port);
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let i = (n as usize * 7 + w) % PAIRS;
                    r.cmd(&["MULTI"]);
                    r.cmd(&["DECR", &format!("a{i}")]);
                    r.cmd(&["INCR", &format!("b{i}")]);
                    r.cmd(&["EXEC"]);
                    n += 1;
                }
                n
            })
        })
        .collect();
    for _ in 0..5 {
        assert_eq!(setup.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
        loop {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let info = String::from_utf8_lossy(&setup.cmd(&["INFO", "persistence"])).into_owned();
            if info.contains("rdb_bgsave_in_progress:0") {
                break;
            }
        }
        let data = std::fs::read(rudis.dir.join("dump.rdb")).unwrap();
        let parsed = rudis::rdb::file::parse(&data, 16).unwrap();
        let store = rudis::store::Store::new(16);
        parsed.install(&store);
        let get = |k: &str| -> i64 {
            let id = rudis::store::ShardId::of_key(0, k.as_bytes());
            let shard = store.dbs[0].shards[id.shard as usize].read();
            match shard.map.get(k.as_bytes()) {
                Some(rudis::store::Value::Str(s)) => {
                    std::str::from_utf8(s).unwrap().parse().unwrap()
                }
                other => panic!("{k}: {other:?}"),
            }
        };
        for i in 0..PAIRS {
            assert_eq!(
                get(&format!("a{i}")) + get(&format!("b{i}")),
                1_000_000,
                "pair {i}"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let done: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(done > 0);
}

#[test]
fn kill_9_during_bgsave_leaves_the_previous_file_loadable() {
    let mut rudis = Rudis::start(&["--appendonly", "no"]);
    let mut r = rudis.raw();
    for chunk in 0..50 {
        let mut mset = vec!["MSET".to_string()];
        for j in 0..2000 {
            mset.push(format!("k:{chunk}:{j}"));
            mset.push(format!("value-{j}-{}", "y".repeat(30)));
        }
        r.cmd(&mset);
    }
    assert_eq!(r.cmd(&["SAVE"]), b"+OK\r\n");
    let before = std::fs::read(rudis.dir.join("dump.rdb")).unwrap();
    r.cmd(&["SET", "later", "1"]);
    r.cmd(&["BGSAVE"]);
    rudis.kill9();
    let after = std::fs::read(rudis.dir.join("dump.rdb")).unwrap();
    // Either the old file whole or the new one whole, never a torn one.
    let parsed = rudis::rdb::file::parse(&after, 16).expect("loadable");
    assert!(parsed.summary.keys >= 100_000);
    assert!(after == before || parsed.summary.keys == 100_001);
    rudis.restart();
    let mut r = rudis.raw();
    assert!(matches!(r.frame(&["DBSIZE"]), Frame::Integer(n) if n >= 100_000));
}

#[test]
fn lastsave_bgsave_and_info_fields() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut r = rudis.raw();
    let Frame::Integer(t0) = r.frame(&["LASTSAVE"]) else {
        panic!()
    };
    r.cmd(&["SET", "a", "1"]);
    let info = String::from_utf8_lossy(&r.cmd(&["INFO", "persistence"])).into_owned();
    assert!(info.contains("rdb_changes_since_last_save:1"), "{info}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(r.cmd(&["SAVE"]), b"+OK\r\n");
    let Frame::Integer(t1) = r.frame(&["LASTSAVE"]) else {
        panic!()
    };
    assert!(t1 > t0);
    let info = String::from_utf8_lossy(&r.cmd(&["INFO", "persistence"])).into_owned();
    assert!(
        info.contains("rdb_changes_since_last_save:0") && info.contains("rdb_saves:1"),
        "{info}"
    );
    assert_eq!(r.cmd(&["BGSAVE", "NOW"]), b"-ERR syntax error\r\n");
}
