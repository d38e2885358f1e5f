//! RDB files and DUMP payloads between rudis and a real redis-server 7.0: every type and
//! encoding both ways, compared key by key; corrupt and truncated input refused; BGSAVE
//! point-in-time under cross-shard transactions; a kill -9 during BGSAVE. And RDB inside
//! AOFs: the rewrite's RDB preamble (redis-check-aof and redis-server accept it; a kill -9
//! during the rewrite), and starting on a Redis 7 appendonlydir/ that redis-server made.

mod aofutil;
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{info_number, Raw, RealRedis, Rudis};
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
                "stream" => vec![common::show(&r.cmd(&["XRANGE", &key, "-", "+"]))],
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
    assert!(rudis::rdb::file::parse(&data, 16, 0).is_ok());
    // Every truncation is refused (a sample of lengths, the last bytes each).
    let mut cuts: Vec<usize> = (0..data.len()).step_by(97).collect();
    cuts.extend(data.len() - 12..data.len());
    for n in cuts {
        let e = rudis::rdb::file::parse(&data[..n], 16, 0)
            .err()
            .expect("refused");
        assert!(e.offset <= n, "{n}: {e}");
    }
    // A wrong checksum is named in Redis's words ("RDB CRC error", which its tests grep).
    let mut bad = data.clone();
    let n = bad.len();
    bad[n - 8..].copy_from_slice(b"foobar00");
    let e = rudis::rdb::file::parse(&bad, 16, 0).err().expect("refused");
    assert!(e.to_string().contains("RDB CRC error"), "{e}");
    // A flipped byte is caught by the structure or by the CRC-64.
    for at in (10..data.len() - 9).step_by(53) {
        let mut bad = data.clone();
        bad[at] ^= 0x5a;
        assert!(
            rudis::rdb::file::parse(&bad, 16, 0).is_err(),
            "flip at {at}"
        );
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
    // Keys created and removed while a snapshot runs: one that did not exist at its instant
    // is not in it, one that did is, whatever happens to it after. Each transaction creates
    // an item and counts it, or removes an old key and counts that.
    const OLD: usize = 3000;
    for i in 0..OLD {
        setup.cmd(&["SET", &format!("old:{i}"), "v"]);
    }
    setup.cmd(&["SET", "created", "0"]);
    setup.cmd(&["SET", "left", &OLD.to_string()]);
    let churn = {
        let (port, stop) = (rudis.port, stop.clone());
        std::thread::spawn(move || {
            let mut r = Raw::connect(port);
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                r.cmd(&["MULTI"]);
                r.cmd(&["SET", &format!("new:{n}"), "v"]);
                r.cmd(&["INCR", "created"]);
                if n < OLD {
                    r.cmd(&["DEL", &format!("old:{n}")]);
                    r.cmd(&["DECR", "left"]);
                }
                r.cmd(&["EXEC"]);
                n += 1;
            }
            n
        })
    };
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
        let parsed = rudis::rdb::file::parse(&data, 16, 0).unwrap();
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
        let count = |prefix: &str| {
            store.dbs[0]
                .shards
                .iter()
                .map(|s| {
                    s.read()
                        .map
                        .iter()
                        .filter(|(k, _)| k.starts_with(prefix.as_bytes()))
                        .count() as i64
                })
                .sum::<i64>()
        };
        assert_eq!(count("new:"), get("created"), "keys created");
        assert_eq!(count("old:"), get("left"), "keys removed");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let done: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(done > 0);
    assert!(churn.join().unwrap() > 0);
}

/// `chunks` MSETs of `per_chunk` keys each, values of about `pad` + 10 bytes.
fn mset_keys(r: &mut Raw, chunks: usize, per_chunk: usize, pad: usize) {
    for chunk in 0..chunks {
        let mut mset = vec!["MSET".to_string()];
        for j in 0..per_chunk {
            mset.push(format!("k:{chunk}:{j}"));
            mset.push(format!("value-{j}-{}", "y".repeat(pad)));
        }
        r.cmd(&mset);
    }
}

/// Enough data for a dump to take a while: 100,000 keys.
fn hundred_thousand_keys(r: &mut Raw) {
    mset_keys(r, 50, 2000, 30);
}

#[test]
fn kill_9_during_bgsave_leaves_the_previous_file_loadable() {
    let mut rudis = Rudis::start(&["--appendonly", "no"]);
    let mut r = rudis.raw();
    hundred_thousand_keys(&mut r);
    assert_eq!(r.cmd(&["SAVE"]), b"+OK\r\n");
    let before = std::fs::read(rudis.dir.join("dump.rdb")).unwrap();
    r.cmd(&["SET", "later", "1"]);
    r.cmd(&["BGSAVE"]);
    rudis.kill9();
    let after = std::fs::read(rudis.dir.join("dump.rdb")).unwrap();
    // Either the old file whole or the new one whole, never a torn one.
    let parsed = rudis::rdb::file::parse(&after, 16, 0).expect("loadable");
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

/// Redis's total_forks counts its BGSAVE and BGREWRITEAOF children (unit/multi waits on it):
/// rudis's background jobs in their place count, SAVE (no child in Redis either) does not.
#[test]
fn total_forks_counts_background_saves_and_rewrites_and_not_save() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut r = rudis.raw();
    let forks = |r: &mut Raw| info_number(r, "stats", "total_forks");
    let wait_idle = |r: &mut Raw, field: &str| {
        for _ in 0..300 {
            if info_number(r, "persistence", field) == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("{field} stayed 1");
    };
    assert_eq!(forks(&mut r), 0);
    r.cmd(&["SET", "a", "1"]);
    assert_eq!(r.cmd(&["SAVE"]), b"+OK\r\n");
    assert_eq!(forks(&mut r), 0);
    assert_eq!(r.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    wait_idle(&mut r, "rdb_bgsave_in_progress");
    assert_eq!(forks(&mut r), 1);
    r.cmd(&["BGREWRITEAOF"]);
    wait_idle(&mut r, "aof_rewrite_in_progress");
    assert_eq!(forks(&mut r), 2);
}

/// Waits for the `n`th finished rewrite.
fn wait_rewrites(r: &Rudis, n: usize) {
    aofutil::wait_log(r, "Background AOF rewrite finished successfully", n, 60);
}

#[test]
fn the_aof_rewrite_writes_an_rdb_preamble_that_redis_check_aof_and_redis_server_accept() {
    let mut rudis = Rudis::start(&["--appendfsync", "always"]);
    let mut ours = rudis.raw();
    populate(&mut ours);
    ours.cmd(&["XADD", "stream", "1-1", "f", "v"]);
    ours.cmd(&["XADD", "stream", "2-1", "g", "w"]);
    assert_eq!(
        ours.cmd(&["BGREWRITEAOF"]),
        b"+Background append only file rewriting started\r\n"
    );
    wait_rewrites(&rudis, 1);
    // Writes after the rewrite are commands after the preamble.
    ours.cmd(&["SET", "after", "rewrite"]);
    ours.cmd(&["RPUSH", "list:5", "pushed-after"]);
    let want = contents(&mut ours);
    let data = std::fs::read(rudis.aof_path()).unwrap();
    assert!(data.starts_with(b"REDIS0010"), "no RDB preamble");
    let (ok, out) = aofutil::check_aof(&rudis.aof_path());
    assert!(ok && out.contains("RDB preamble is OK"), "{out}");
    let (redis, _dir) = aofutil::redis_loading(&rudis.aof_path());
    let mut theirs = redis.raw();
    assert_eq!(contents(&mut theirs), want);
    assert_eq!(function_names(&mut theirs), function_names(&mut ours));
    rudis.restart();
    let mut again = rudis.raw();
    assert_eq!(contents(&mut again), want);
    assert_eq!(function_names(&mut again), function_names(&mut theirs));
    assert!(rudis.log().contains("Reading RDB base file on AOF loading"));
    // With the preamble off, the rewrite is commands again.
    again.cmd(&["CONFIG", "SET", "aof-use-rdb-preamble", "no"]);
    again.cmd(&["BGREWRITEAOF"]);
    wait_rewrites(&rudis, 1);
    assert!(std::fs::read(rudis.aof_path()).unwrap().starts_with(b"*"));
    rudis.restart();
    assert_eq!(contents(&mut rudis.raw()), want);
}

#[test]
fn kill_9_during_an_rdb_preamble_rewrite_leaves_a_file_that_loads_completely() {
    let mut rudis = Rudis::start(&["--appendfsync", "always"]);
    let mut r = rudis.raw();
    hundred_thousand_keys(&mut r);
    let mut expected = 100_000;
    for (round, delay_ms) in [0u64, 3, 10, 30, 80].into_iter().enumerate() {
        let mut r = rudis.raw();
        assert!(r.cmd(&["BGREWRITEAOF"]).starts_with(b"+"));
        // Writes that land in the tail (or the old file) while the rewrite runs.
        for i in 0..20 {
            r.cmd(&["SET", &format!("during:{round}:{i}"), "x"]);
        }
        expected += 20;
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        rudis.kill9();
        let data = std::fs::read(rudis.aof_path()).unwrap();
        let (ok, out) = aofutil::check_aof(&rudis.aof_path());
        assert!(ok, "round {round}: {out}");
        rudis.restart();
        let mut r = rudis.raw();
        assert_eq!(
            r.frame(&["DBSIZE"]),
            Frame::Integer(expected),
            "round {round} (file {} bytes, preamble {})",
            data.len(),
            data.starts_with(b"REDIS")
        );
        // The interrupted rewrite's temp file is gone.
        let temps = std::fs::read_dir(&rudis.dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
            .count();
        assert_eq!(temps, 0, "round {round}");
    }
}

/// A data directory made by a real redis-server 7.0 with `--appendonly yes`, then stopped.
/// `preamble`: its rewrite writes an RDB base (else an AOF base). Returns the dir and what
/// the server held.
fn redis_aof_dir(preamble: &str) -> (tempfile::TempDir, BTreeMap<(u8, String), String>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let redis = RealRedis::start(&[
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        preamble,
        "--dir",
        &d,
    ]);
    let mut theirs = redis.raw();
    populate(&mut theirs);
    theirs.cmd(&["XADD", "stream", "1-1", "f", "v"]);
    // The rewrite makes the base (with what populate made) and a new incr file.
    assert!(theirs.cmd(&["BGREWRITEAOF"]).starts_with(b"+"));
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let info = String::from_utf8_lossy(&theirs.cmd(&["INFO", "persistence"])).into_owned();
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrites:1") {
            break;
        }
    }
    theirs.cmd(&["SET", "after", "rewrite"]);
    theirs.cmd(&["DEL", "str:plain"]);
    theirs.cmd(&["XADD", "stream", "2-1", "g", "w"]);
    let want = contents(&mut theirs);
    theirs.send(&["SHUTDOWN"]);
    let _ = theirs.try_read_reply();
    drop(redis);
    (dir, want)
}

fn manifest_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap()
}

#[test]
fn rudis_starts_on_a_redis_7_appendonlydir_with_an_rdb_base_and_incr_files() {
    let (dir, mut want) = redis_aof_dir("yes");
    let manifest = manifest_of(dir.path());
    assert!(
        manifest.contains(".base.rdb") && manifest.contains(".incr.aof"),
        "{manifest}"
    );
    // A second incr file, as Redis leaves after a failed rewrite: loaded after the first.
    let incr = "appendonly.aof.99.incr.aof";
    std::fs::write(
        dir.path().join("appendonlydir").join(incr),
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$6\r\nsecond\r\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("appendonlydir/appendonly.aof.manifest"),
        format!("{manifest}file {incr} seq 99 type i\n"),
    )
    .unwrap();
    want.insert((0, "after".into()), "string none [\"second\"]".into());
    let mut rudis = Rudis::start_in(dir.path(), &[]);
    let mut ours = rudis.raw();
    assert_eq!(contents(&mut ours), want);
    let log = rudis.log();
    for line in [
        "Loading the multi-part AOF of",
        ".base.rdb (RDB)",
        "(RDB version 10, written by Redis 7.0",
        "DB loaded from incr file",
        "appendonly.aof.99.incr.aof (AOF)",
    ] {
        assert!(log.contains(line), "no {line:?} in\n{log}");
    }
    // rudis goes on in Redis's layout: the write lands in the last incr file, and no
    // appendonly.aof of its own is made.
    ours.cmd(&["SET", "written", "by rudis"]);
    want.insert((0, "written".into()), "string none [\"by rudis\"]".into());
    let last = std::fs::read(dir.path().join("appendonlydir").join(incr)).unwrap();
    assert!(last.ends_with(b"$7\r\nwritten\r\n$8\r\nby rudis\r\n"));
    assert!(!dir.path().join("appendonly.aof").exists());
    assert_eq!(
        manifest_of(dir.path()),
        format!("{manifest}file {incr} seq 99 type i\n")
    );
    rudis.restart();
    assert_eq!(contents(&mut rudis.raw()), want);
    // A rewrite makes the next base and incr file, as Redis's would, and deletes the rest.
    let mut ours = rudis.raw();
    assert!(ours.cmd(&["BGREWRITEAOF"]).starts_with(b"+"));
    wait_rewrites(&rudis, 1);
    let base_seq = manifest
        .lines()
        .find(|l| l.ends_with("type b"))
        .and_then(|l| l.split(' ').nth(3))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap();
    let next = format!(
        "file appendonly.aof.{}.base.rdb seq {} type b\nfile appendonly.aof.100.incr.aof seq 100 type i\n",
        base_seq + 1,
        base_seq + 1
    );
    assert_eq!(manifest_of(dir.path()), next);
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("appendonlydir"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "appendonly.aof.100.incr.aof".to_string(),
            format!("appendonly.aof.{}.base.rdb", base_seq + 1),
            "appendonly.aof.manifest".to_string(),
        ]
    );
    ours.cmd(&["INCR", "after:rewrite"]);
    want.insert((0, "after:rewrite".into()), "string none [\"1\"]".into());
    drop(rudis);
    // And redis-server starts on the directory rudis left, with everything in it.
    let d = dir.path().to_str().unwrap().to_string();
    let redis = RealRedis::start(&["--appendonly", "yes", "--dir", &d]);
    assert_eq!(contents(&mut redis.raw()), want);
}

#[test]
fn rudis_starts_on_a_redis_7_appendonlydir_with_an_aof_base() {
    let (dir, want) = redis_aof_dir("no");
    assert!(manifest_of(dir.path()).contains(".base.aof"));
    let rudis = Rudis::start_in(dir.path(), &[]);
    let mut ours = rudis.raw();
    assert_eq!(contents(&mut ours), want);
    assert!(rudis.log().contains(".base.aof (AOF)"), "{}", rudis.log());
}

#[test]
fn a_bad_manifest_or_a_missing_file_stops_the_start() {
    for (manifest, files, expect) in [
        (
            "file a.aof seq 1\n",
            &[][..],
            "at line 1: Invalid AOF manifest file format",
        ),
        (
            "file a.rdb seq 1 type b\nfile b.rdb seq 2 type b\n",
            &["a.rdb", "b.rdb"][..],
            "Found duplicate base file information",
        ),
        (
            "file a.aof seq 2 type i\nfile b.aof seq 1 type i\n",
            &["a.aof", "b.aof"][..],
            "Found a non-monotonic sequence number",
        ),
        ("file ../x seq 1 type i\n", &[][..], "File can't be a path"),
        ("file gone.aof seq 1 type i\n", &[][..], "gone.aof"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("appendonlydir");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("appendonly.aof.manifest"), manifest).unwrap();
        for f in files {
            std::fs::write(sub.join(f), "").unwrap();
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rudis-server"))
            .args(["--port", "0", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && text.contains(expect),
            "{manifest:?}: {text}"
        );
        assert!(!dir.path().join("appendonly.aof").exists());
    }
}

/// MIGRATE from `src` to the server on `port` (whose client is `tgt`): each reply, and what
/// the source still holds.
fn migrations(src: &mut Raw, port: u16, tgt: &mut Raw) -> Vec<String> {
    populate(src);
    let p = port.to_string();
    let closed = common::free_port().to_string();
    tgt.cmd(&["SET", "busy", "theirs"]);
    src.cmd(&["SET", "busy", "ours"]);
    src.cmd(&["SET", "gone", "x"]);
    // One command a line, words split at spaces; `""` is the empty key, T the target.
    let script = format!(
        "MIGRATE 127.0.0.1 T str:plain 0 5000
        EXISTS str:plain
        MIGRATE 127.0.0.1 T nosuchkey 0 5000
        MIGRATE 127.0.0.1 T busy 0 5000
        EXISTS busy
        MIGRATE 127.0.0.1 T busy 0 5000 REPLACE
        EXISTS busy
        MIGRATE 127.0.0.1 T \"\" 0 5000 COPY KEYS list:5 hash:2000 zset:5 set:5 intset:2000 str:ttl nosuchkey
        EXISTS list:5 hash:2000 zset:5 set:5 intset:2000 str:ttl
        MIGRATE 127.0.0.1 T str:int 3 0
        MIGRATE 127.0.0.1 T \"\" 0 5000 KEYS list:2000 zset:odd
        MIGRATE 127.0.0.1 T str:long 0 5000 KEYS a
        MIGRATE 127.0.0.1 T str:long 0 5000 BOGUS
        MIGRATE 127.0.0.1 T str:long x 5000
        MIGRATE 127.0.0.1 T str:long 99 5000
        MIGRATE 127.0.0.1 T str:long 0 5000 AUTH pw
        MIGRATE 127.0.0.1 T str:long 0 5000 AUTH2 u pw
        MIGRATE 127.0.0.1 {closed} str:long 0 5000
        MIGRATE 127.0.0.1 T str:long 0 5000 COPY REPLACE
        EXISTS str:long
        MIGRATE 127.0.0.1 T gone 0 5000
        COMMAND GETKEYS MIGRATE h 1 \"\" 0 0 AUTH x KEYS a"
    );
    let cases: Vec<Vec<&str>> = script
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|w| match w {
                    "T" => p.as_str(),
                    "\"\"" => "",
                    w => w,
                })
                .collect()
        })
        .collect();
    let mut out: Vec<String> = cases.iter().map(|c| common::show(&src.cmd(c))).collect();
    out.push(format!(
        "{:?}",
        contents(src).into_keys().collect::<Vec<_>>()
    ));
    out
}

/// `migrations` from `a` to the server on port `ta` and from `b` to the one on `tb`: the
/// same replies, the same targets; returns the replies.
fn same_migrations(a: u16, ta: u16, b: u16, tb: u16, what: &str) -> Vec<String> {
    let ours = migrations(&mut Raw::connect(a), ta, &mut Raw::connect(ta));
    let theirs = migrations(&mut Raw::connect(b), tb, &mut Raw::connect(tb));
    assert_eq!(ours, theirs, "{what}");
    assert_eq!(
        contents(&mut Raw::connect(ta)),
        contents(&mut Raw::connect(tb)),
        "{what}"
    );
    ours
}

#[test]
fn migrate_moves_keys_between_rudis_and_redis_both_ways_with_redis_s_replies() {
    let redis = || RealRedis::start(&[]);
    // rudis as the source, against Redis as the source; Redis targets.
    let mut rudis = Rudis::start(&["--appendfsync", "always"]);
    let (target_a, src_b, target_b) = (redis(), redis(), redis());
    let replies = same_migrations(
        rudis.port,
        target_a.port,
        src_b.port,
        target_b.port,
        "rudis as the source",
    );
    let all = replies.join("\n");
    for want in [
        "+NOKEY",
        "error: BUSYKEY",
        "-IOERR error or timeout writing",
        "DB index is out of range",
    ] {
        assert!(all.contains(want), "no {want} in\n{all}");
    }
    // What left rudis is logged as DEL: a restart does not bring it back.
    let aof = String::from_utf8_lossy(&std::fs::read(rudis.aof_path()).unwrap()).into_owned();
    assert!(
        aof.contains("*2\r\n$3\r\nDEL\r\n$9\r\nstr:plain\r\n"),
        "{aof}"
    );
    assert!(!aof.contains("MIGRATE"));
    let before = contents(&mut rudis.raw());
    rudis.restart();
    assert_eq!(contents(&mut rudis.raw()), before);
    // rudis as the target, against Redis as the target; Redis sources.
    let target = Rudis::start(&["--appendonly", "no"]);
    let (src_c, src_d, target_d) = (redis(), redis(), redis());
    same_migrations(
        src_c.port,
        target.port,
        src_d.port,
        target_d.port,
        "rudis as the target",
    );
}

// ---- Formats redis-server 7.0 does not write: old Redis's files, and newer servers' ----

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rdb");
    std::fs::read(path.join(name)).unwrap()
}

/// Starts redis-server 7.0 and rudis each on `file` as its dump.rdb.
fn on_file(file: &[u8]) -> (tempfile::TempDir, RealRedis, tempfile::TempDir, Rudis) {
    let theirs = tempfile::tempdir().unwrap();
    std::fs::write(theirs.path().join("dump.rdb"), file).unwrap();
    let redis = redis_in(theirs.path());
    let ours = tempfile::tempdir().unwrap();
    std::fs::write(ours.path().join("dump.rdb"), file).unwrap();
    let rudis = Rudis::start_in(ours.path(), &["--appendonly", "no"]);
    (theirs, redis, ours, rudis)
}

/// Files Redis 2.x to 6.x wrote (from Redis's own test suite, see tests/fixtures/rdb/README.md):
/// zipmap, ziplist lists / hashes / sorted sets, intsets, quicklist v1, text scores.
#[test]
fn old_redis_files_load_in_rudis_as_in_redis_key_by_key() {
    for (name, version, keys) in [
        ("hash-zipmap.rdb", 3, 1),
        ("encodings.rdb", 4, 13),
        ("list-quicklist.rdb", 8, 2),
        ("hash-ziplist.rdb", 9, 1),
        ("zset-ziplist.rdb", 10, 1),
    ] {
        let (_t, redis, _o, rudis) = on_file(&fixture(name));
        let want = contents(&mut redis.raw());
        assert_eq!(want.len(), keys, "{name}: redis-server loaded {want:?}");
        assert_eq!(contents(&mut rudis.raw()), want, "{name}");
        let log = rudis.log();
        assert!(
            log.contains(&format!("RDB version {version}")),
            "{name}: {log}"
        );
    }
}

/// An RDB file built field by field as rdb.c writes it, for what no server here writes.
/// Lengths are rdbSaveLen's: `00xxxxxx` (6 bits), `01xxxxxx xxxxxxxx` (14 bits), 0x80 and 4
/// bytes big-endian, 0x81 and 8 bytes big-endian.
struct RdbBytes {
    version: u16,
    b: Vec<u8>,
}

impl RdbBytes {
    /// `REDIS` and the version in four digits.
    fn new(version: u16) -> Self {
        RdbBytes {
            version,
            b: format!("REDIS{version:04}").into_bytes(),
        }
    }

    fn byte(&mut self, b: u8) -> &mut Self {
        self.b.push(b);
        self
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.b.extend_from_slice(b);
        self
    }

    fn len(&mut self, n: u64) -> &mut Self {
        match n {
            0..=63 => self.byte(n as u8),
            64..=16383 => self.bytes(&[0x40 | (n >> 8) as u8, n as u8]),
            16384..=0xffff_ffff => self.byte(0x80).bytes(&(n as u32).to_be_bytes()),
            _ => self.byte(0x81).bytes(&n.to_be_bytes()),
        }
    }

    /// A plain string: its length, then its bytes.
    fn str(&mut self, s: &[u8]) -> &mut Self {
        self.len(s.len() as u64).bytes(s)
    }

    /// A value's record: its type byte, then the key as a string.
    fn key(&mut self, t: u8, k: &str) -> &mut Self {
        self.byte(t).str(k.as_bytes())
    }

    fn aux(&mut self, k: &str, v: &str) -> &mut Self {
        self.byte(0xfa).str(k.as_bytes()).str(v.as_bytes())
    }

    /// A 64-bit ID as a stream's radix tree keys it: milliseconds, then sequence, big-endian.
    fn raw_id(&mut self, ms: u64, seq: u64) -> &mut Self {
        self.bytes(&ms.to_be_bytes()).bytes(&seq.to_be_bytes())
    }

    /// An ID as two lengths (rdbSaveLen of ms, then of seq).
    fn id(&mut self, ms: u64, seq: u64) -> &mut Self {
        self.len(ms).len(seq)
    }

    /// A millisecond time: 8 bytes little-endian.
    fn millis(&mut self, t: i64) -> &mut Self {
        self.bytes(&t.to_le_bytes())
    }

    /// EOF (255), then from version 5 the CRC-64 of all that precedes it, little-endian.
    fn finish(&mut self) -> Vec<u8> {
        self.byte(0xff);
        if self.version >= 5 {
            let crc = rudis::rdb::crc64::crc64(0, &self.b);
            self.bytes(&crc.to_le_bytes());
        }
        self.b.clone()
    }
}

/// A listpack entry small enough for the one-byte forms.
enum Lp<'a> {
    I(u8),
    /// A 64-bit integer: 0xf4 and 8 bytes little-endian.
    I64(i64),
    S(&'a str),
}

/// A listpack (listpack.c): total bytes (4, little-endian), entry count (2), the entries, 0xff.
/// An integer 0..=127 is one byte `0xxxxxxx`, a string under 64 bytes `10xxxxxx` and its
/// bytes; each entry is followed by its own length (the back length, one byte under 128).
fn listpack(items: &[Lp]) -> Vec<u8> {
    let mut body = Vec::new();
    for item in items {
        let start = body.len();
        match item {
            Lp::I(v) => body.push(*v & 0x7f),
            Lp::I64(v) => {
                body.push(0xf4);
                body.extend_from_slice(&v.to_le_bytes());
            }
            Lp::S(s) => {
                body.push(0x80 | s.len() as u8);
                body.extend_from_slice(s.as_bytes());
            }
        }
        body.push((body.len() - start) as u8);
    }
    let total = 4 + 2 + body.len() + 1;
    let mut lp = (total as u32).to_le_bytes().to_vec();
    lp.extend_from_slice(&(items.len() as u16).to_le_bytes());
    lp.extend_from_slice(&body);
    lp.push(0xff);
    lp
}

const T0: u64 = 1_700_000_000_000;

/// Stream `key` in RDB type `t` (15: Redis 5 and 6; 19: Redis 7.0; 21: Redis 7.2, 7.4, Valkey
/// 8), as rdb.c's rdbSaveObject writes OBJ_STREAM. One node, master ID T0-0, master field
/// `f`: T0-0 {f v1}, T0-1 {f v2} (deleted), T0+5-0 {g x h y} (fields of its own). Group `grp`
/// delivered T0-0 to alice (pending, delivered twice); group `late` read everything.
fn stream_record(b: &mut RdbBytes, t: u8, key: &str) {
    use Lp::{I, S};
    // The node's listpack (t_stream.c): master entry (live 2, deleted 1, 1 field "f", 0);
    // then per entry flags (1 deleted, 2 same fields), ms and seq deltas from the master ID,
    // the values (same fields) or field count and pairs, and its element count (lp-count:
    // fields + 3 with the master's fields, else 2 x fields + 4).
    let lp = listpack(&[
        I(2),
        I(1),
        I(1),
        S("f"),
        I(0),
        I(2),
        I(0),
        I(0),
        S("v1"),
        I(4),
        I(3),
        I(0),
        I(1),
        S("v2"),
        I(4),
        I(0),
        I(5),
        I(0),
        I(2),
        S("g"),
        S("x"),
        S("h"),
        S("y"),
        I(8),
    ]);
    b.key(t, key).len(1);
    // The node: its master ID as a 16-byte string, then its listpack as a string.
    b.len(16).raw_id(T0, 0).str(&lp);
    // Length (live entries), last ID.
    b.len(2).id(T0 + 5, 0);
    if t != 15 {
        // 7.0: first ID, largest deleted ID, entries ever added.
        b.id(T0, 0).id(T0, 1).len(3);
    }
    b.len(2);
    for (name, last, entries_read) in [("grp", (T0, 0), 1), ("late", (T0 + 5, 0), 3)] {
        b.str(name.as_bytes()).id(last.0, last.1);
        if t != 15 {
            b.len(entries_read);
        }
        if name == "late" {
            b.len(0).len(0);
            continue;
        }
        // The group's PEL: raw ID, delivery time, delivery count.
        b.len(1).raw_id(T0, 0).millis(T0 as i64 + 1000).len(2);
        // Consumers: name, seen time, (21) active time, the raw IDs of their pending entries.
        b.len(2);
        b.str(b"alice").millis(T0 as i64 + 2000);
        if t == 21 {
            b.millis(T0 as i64 + 1500);
        }
        b.len(1).raw_id(T0, 0);
        b.str(b"bob").millis(T0 as i64 + 3000);
        if t == 21 {
            b.millis(-1);
        }
        b.len(0);
    }
}

/// What a stream key shows: entries, XINFO STREAM FULL (groups, PELs, consumers, seen
/// times), XINFO GROUPS (entries-read, lag), XPENDING's summary.
fn stream_view(r: &mut Raw, key: &str) -> Vec<String> {
    [
        vec!["XRANGE", key, "-", "+"],
        vec!["XINFO", "STREAM", key, "FULL"],
        vec!["XINFO", "GROUPS", key],
        vec!["XPENDING", key, "grp"],
    ]
    .iter()
    .map(|c| common::show(&r.cmd(c)))
    .collect()
}

/// RDB 1 to 5 as Redis 1.x to 2.8 wrote them: SELECTDB, plain and integer-encoded strings
/// (8, 16, 32 bits), LZF, lists, sets, sorted sets with text scores, hashes, expiries in
/// seconds (one already past), in milliseconds from version 3, and no CRC before version 5.
#[test]
fn rdb_1_to_5_load_as_redis_loads_them() {
    for version in 1..=5u16 {
        let mut b = RdbBytes::new(version);
        b.byte(0xfe).len(0);
        b.key(0, "s:plain").str(b"hello");
        // Integer encodings: 0xc0 + i8, 0xc1 + i16 LE, 0xc2 + i32 LE.
        b.key(0, "s:i8").bytes(&[0xc0, (-123i8) as u8]);
        b.key(0, "s:i16").byte(0xc1).bytes(&12345i16.to_le_bytes());
        b.key(0, "s:i32")
            .byte(0xc2)
            .bytes(&(-1_000_000i32).to_le_bytes());
        // LZF (0xc3, compressed length 7, length 12): a literal run of 3 ("abc": control
        // byte 2), then a back reference of 9 bytes at distance 3 (control 0xe0: length - 2
        // = 7 says "one more length byte", 0 more; then distance - 1 = 2).
        b.key(0, "s:lzf")
            .byte(0xc3)
            .len(7)
            .len(12)
            .bytes(&[0x02, b'a', b'b', b'c', 0xe0, 0x00, 0x02]);
        // Expire times in seconds (253, i32 LE): a day ahead, and long past.
        let now_s = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()) as i32;
        b.byte(0xfd).bytes(&(now_s + 86_400).to_le_bytes());
        b.key(0, "s:ttl").str(b"v");
        b.byte(0xfd).bytes(&1000i32.to_le_bytes());
        b.key(0, "s:gone").str(b"v");
        if version >= 3 {
            b.byte(0xfc)
                .bytes(&((now_s as u64 + 3600) * 1000 + 123).to_le_bytes());
            b.key(0, "s:ttlms").str(b"w");
        }
        b.key(1, "list")
            .len(3)
            .str(b"a")
            .bytes(&[0xc0, 1])
            .str(b"c");
        b.key(2, "set")
            .len(3)
            .str(b"x")
            .str(b"y")
            .bytes(&[0xc0, 42]);
        // Text scores: a length and digits, or 254 (+inf), 255 (-inf).
        b.key(3, "zset").len(4);
        b.str(b"a").str(b"1.5");
        b.str(b"b").byte(254);
        b.str(b"c").byte(255);
        b.str(b"d").str(b"-0.25");
        b.key(4, "hash")
            .len(2)
            .str(b"f1")
            .str(b"v1")
            .str(b"f2")
            .bytes(&[0xc0, 7]);
        b.byte(0xfe).len(2);
        b.key(0, "other").str(b"db2");
        let file = b.finish();
        let (_t, redis, _o, rudis) = on_file(&file);
        let want = contents(&mut redis.raw());
        let n = if version >= 3 { 12 } else { 11 };
        assert_eq!(want.len(), n, "RDB {version}: redis-server loaded {want:?}");
        let mut ours = rudis.raw();
        assert_eq!(contents(&mut ours), want, "RDB {version}");
        assert_eq!(ours.cmd(&["GET", "s:lzf"]), b"$12\r\nabcabcabcabc\r\n");
        assert_eq!(ours.cmd(&["GET", "s:i32"]), b"$8\r\n-1000000\r\n");
        for (key, secs) in [("s:ttl", 86_400), ("s:ttlms", 3600)] {
            if key == "s:ttlms" && version < 3 {
                continue;
            }
            let Frame::Integer(ttl) = ours.frame(&["TTL", key]) else {
                panic!()
            };
            assert!(
                (secs - 2..=secs).contains(&ttl),
                "RDB {version} {key}: {ttl}"
            );
            let theirs = redis.raw().frame(&["PEXPIRETIME", key]);
            assert_eq!(ours.frame(&["PEXPIRETIME", key]), theirs, "{key}");
        }
        assert!(rudis.log().contains(&format!("RDB version {version}")));
    }
}

/// Streams as Redis 5 and 6 (type 15) and 7.0 (type 19) wrote them, with a deleted entry, an
/// entry with fields of its own, groups, a PEL and consumers.
#[test]
fn streams_of_redis_5_6_and_7_0_load_as_redis_loads_them() {
    for (version, t) in [(9u16, 15u8), (10, 19)] {
        let mut b = RdbBytes::new(version);
        b.byte(0xfe).len(0);
        stream_record(&mut b, t, "s");
        let (_t, redis, _o, rudis) = on_file(&b.finish());
        let want = stream_view(&mut redis.raw(), "s");
        assert!(
            want[0].contains("v1") && want[1].contains("alice"),
            "{want:?}"
        );
        assert_eq!(stream_view(&mut rudis.raw(), "s"), want, "type {t}");
    }
}

/// RDB 11 and 12 as Redis 7.2 / Valkey 8 and Redis 7.4 write them: sets as listpacks (type
/// 20), streams with consumers' active times (21), per-slot sizes (RDB_OPCODE_SLOT_INFO, 244,
/// in cluster mode). Each loads to what redis-server 7.0 holds from the same data in its own
/// format (a plain set, a type-19 stream).
#[test]
fn rdb_11_and_12_load_as_their_redis_7_0_form() {
    let mut b = RdbBytes::new(10);
    b.aux("redis-ver", "7.0.15").byte(0xfe).len(0);
    b.key(2, "set").len(3).str(b"a").str(b"b").str(b"7");
    b.key(0, "str").str(b"plain");
    stream_record(&mut b, 19, "s");
    let (_t, redis, _o, _r) = on_file(&b.finish());
    let mut theirs = redis.raw();
    let want = contents(&mut theirs);
    assert_eq!(want.len(), 3, "{want:?}");
    let want_stream = stream_view(&mut theirs, "s");
    for (version, server, ver) in [
        (11u16, "redis-ver", "7.2.4"),
        (11, "valkey-ver", "8.0.1"),
        (12, "redis-ver", "7.4.1"),
    ] {
        let mut b = RdbBytes::new(version);
        b.aux(server, ver).aux("redis-bits", "64");
        b.byte(0xfe).len(0).byte(0xfb).len(3).len(0);
        // Slot 1234 holds 3 keys, none with an expiry: three lengths.
        b.byte(244).len(1234).len(3).len(0);
        b.key(20, "set")
            .str(&listpack(&[Lp::S("a"), Lp::S("b"), Lp::I(7)]));
        b.key(0, "str").str(b"plain");
        stream_record(&mut b, 21, "s");
        let file = b.finish();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dump.rdb"), &file).unwrap();
        let rudis = Rudis::start_in(dir.path(), &["--appendonly", "no"]);
        let mut ours = rudis.raw();
        assert_eq!(contents(&mut ours), want, "RDB {version} ({server} {ver})");
        assert_eq!(stream_view(&mut ours, "s"), want_stream, "RDB {version}");
    }
}

/// Values rudis cannot hold (a module's type), or a hash field deadline no Redis writes, stop
/// the load with the type and the key named, and nothing of the file is served.
#[test]
fn types_rudis_cannot_hold_are_refused_by_name_and_nothing_is_loaded() {
    // Redis 7.4's HASH_METADATA (24): the soonest field deadline, the field count, then per
    // field its deadline (relative to the soonest, plus one), field and value; a deadline
    // past 2^48 - 1 ms is corrupt.
    let mut hfe = RdbBytes::new(12);
    hfe.byte(0xfe).len(0).key(0, "before").str(b"x");
    hfe.key(24, "h")
        .millis(T0 as i64)
        .len(1)
        .len(1 << 50)
        .str(b"f")
        .str(b"v");
    hfe.key(0, "after").str(b"y");
    // A module value (MODULE_2, 7): the module type id as a length, nine 6-bit characters
    // of its name and a 10-bit encoding version ("ReJSON-RL", version 3).
    const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let id = b"ReJSON-RL".iter().fold(0u64, |id, c| {
        (id << 6) | CHARSET.iter().position(|x| x == c).unwrap() as u64
    }) << 10
        | 3;
    let mut module = RdbBytes::new(10);
    module.byte(0xfe).len(0).key(0, "before").str(b"x");
    module.key(7, "doc").len(id).len(2).len(0);
    for (file, names) in [
        (hfe.finish(), ["field deadline", "'h'"]),
        (module.finish(), ["ReJSON-RL", "'doc'"]),
    ] {
        let e = rudis::rdb::file::parse(&file, 16, 0)
            .err()
            .expect("refused");
        for name in names {
            assert!(e.expected.contains(name), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dump.rdb"), &file).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rudis-server"))
            .args(["--port", "0", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{text}");
        for name in names {
            assert!(text.contains(name), "{text}");
        }
    }
}

/// A dump.rdb that Redis 7.4.1 wrote with hash field deadlines (tests/fixtures/rdb/README.md
/// says how it was made): every hash loads with its deadlines, its order and its encoding as
/// Redis 7.4.1 loads it, and rudis's own SAVE and DUMP of them (types 25 and 24) load back
/// the same.
#[test]
fn redis_7_4_hashes_with_field_deadlines_load_and_save_as_redis_7_4_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dump.rdb"),
        fixture("hash-field-ttl-7.4.rdb"),
    )
    .unwrap();
    let mut r = Rudis::start_in(dir.path(), &["--appendonly", "no"]);
    // What Redis 7.4.1 answered on the same file: (key, encoding, fields in order, deadlines).
    let expected: [(&str, &str, &[&str], &[i64]); 4] = [
        (
            "small",
            "listpackex",
            &["b", "a", "c", "d"],
            &[4102444800000, 4102444800500, -1, -1],
        ),
        (
            "big",
            "listpackex",
            &["f6", "f5", "f7", "f32"],
            &[4102444801000, 4102444801000, 4102444802000, -1],
        ),
        ("persisted", "listpackex", &["y", "x"], &[-1, -1]),
        ("plain", "listpack", &["p"], &[-1]),
    ];
    let check = |c: &mut Raw, when: &str| {
        for (key, encoding, fields, deadlines) in expected {
            let enc = c.cmd(&["OBJECT", "ENCODING", key]);
            assert_eq!(
                enc,
                format!("${}\r\n{encoding}\r\n", encoding.len()).as_bytes(),
                "{key} {when}"
            );
            let keys = c.frame(&["HKEYS", key]);
            let Frame::Array(keys) = keys else {
                panic!("{keys:?}")
            };
            let got: Vec<Frame> = keys.into_iter().take(fields.len()).collect();
            let want: Vec<Frame> = fields
                .iter()
                .map(|f| Frame::Bulk(f.as_bytes().to_vec()))
                .collect();
            assert_eq!(got, want, "{key} {when}");
            let mut cmd = vec!["HPEXPIRETIME", key, "FIELDS"];
            let n = fields.len().to_string();
            cmd.push(&n);
            cmd.extend(fields.iter());
            let want: Vec<Frame> = deadlines.iter().map(|d| Frame::Integer(*d)).collect();
            assert_eq!(c.frame(&cmd), Frame::Array(want), "{key} {when}");
        }
        assert_eq!(c.cmd(&["HLEN", "big"]), b":200\r\n");
        assert_eq!(c.cmd(&["GET", "str"]), b"$5\r\nhello\r\n");
    };
    let mut c = r.raw();
    check(&mut c, "as loaded");
    // DUMP and RESTORE keep them.
    let Frame::Bulk(payload) = c.frame(&["DUMP", "small"]) else {
        panic!()
    };
    c.send(&[&b"RESTORE"[..], b"again", b"0", &payload]);
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert_eq!(c.cmd(&["HKEYS", "again"]), c.cmd(&["HKEYS", "small"]));
    assert_eq!(
        c.cmd(&["HPEXPIRETIME", "again", "FIELDS", "2", "a", "b"]),
        b"*2\r\n:4102444800500\r\n:4102444800000\r\n"
    );
    assert_eq!(c.cmd(&["DEL", "again"]), b":1\r\n");
    assert_eq!(c.cmd(&["SAVE"]), b"+OK\r\n");
    drop(c);
    r.restart();
    check(&mut r.raw(), "after rudis saved and loaded it");
    // Written as Redis 7.4 writes them: the small ones as type 25 (HASH_LISTPACK_EX).
    let ours = std::fs::read(dir.path().join("dump.rdb")).unwrap();
    let at = ours
        .windows(6)
        .position(|w| w == b"\x05small")
        .expect("small");
    assert_eq!(ours[at - 1], 25);
}

/// Redis 7.4's release candidates wrote field deadlines as absolute times, with no soonest
/// deadline first (types 22 and 23); a field already past its deadline in the file reads as
/// absent and is removed by active expiry.
#[test]
fn hash_field_deadlines_of_redis_7_4_release_candidates_load() {
    let later = 4102444800000u64;
    let mut b = RdbBytes::new(12);
    b.byte(0xfe).len(0);
    // 22: count, then (absolute deadline or 0, field, value).
    b.key(22, "meta")
        .len(2)
        .len(later)
        .str(b"a")
        .str(b"1")
        .len(0)
        .str(b"b")
        .str(b"2");
    // 23: a listpack of (field, value, deadline) triples; "old" is long past its deadline.
    b.key(23, "lpex").str(&listpack(&[
        Lp::S("old"),
        Lp::S("1"),
        Lp::I64(T0 as i64),
        Lp::S("new"),
        Lp::S("2"),
        Lp::I64(later as i64),
        Lp::S("none"),
        Lp::S("3"),
        Lp::I(0),
    ]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.rdb"), b.finish()).unwrap();
    let r = Rudis::start_in(dir.path(), &["--appendonly", "no"]);
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["HPEXPIRETIME", "meta", "FIELDS", "2", "a", "b"]),
        format!("*2\r\n:{later}\r\n:-1\r\n").as_bytes()
    );
    assert_eq!(
        c.cmd(&["HPEXPIRETIME", "lpex", "FIELDS", "3", "old", "new", "none"]),
        format!("*3\r\n:-2\r\n:{later}\r\n:-1\r\n").as_bytes()
    );
    assert_eq!(c.cmd(&["HGET", "lpex", "old"]), b"$-1\r\n");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while c.cmd(&["HLEN", "lpex"]) != b":2\r\n" {
        assert!(std::time::Instant::now() < until, "the expired field stays");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// FLUSHALL with save points saves the emptied data at once, as Redis 7.0's does, so that
/// the changes to save are none after it (Redis's unit/other); without them it saves nothing.
#[test]
fn flushall_with_save_points_saves_at_once() {
    for (save, saved) in [("", false), ("3600 1 300 100", true)] {
        let r = Rudis::start(&["--save", save]);
        let mut c = r.raw();
        let dump = r.dir.join("dump.rdb");
        assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
        assert_eq!(c.cmd(&["FLUSHALL"]), b"+OK\r\n");
        let changes = common::info_number(&mut c, "persistence", "rdb_changes_since_last_save");
        assert_eq!(
            (changes == 0, dump.exists()),
            (saved, saved),
            "save {save:?}"
        );
        if saved {
            // What was saved is the emptied data.
            let (ok, out) = common::check_rdb(&dump);
            assert!(ok && out.contains("0 keys read"), "{out}");
        }
    }
}

/// As Redis's rdbSaveRio, a snapshot keeps keys already past their deadline, and a master
/// loading it leaves them out and counts them: the same INFO counts on both servers.
#[test]
fn expired_keys_are_saved_and_counted_at_load_as_redis_does() {
    let redis = RealRedis::start(&["--enable-debug-command", "yes"]);
    let rudis = Rudis::start(&["--appendonly", "no", "--enable-debug-command", "yes"]);
    let counts = |port: u16| {
        let mut c = Raw::connect(port);
        c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        for i in 0..40 {
            c.cmd(&["SELECT", &(i % 4).to_string()]);
            c.cmd(&["SET", &format!("short{i}"), "v", "PX", "10"]);
            if i % 4 == 0 {
                c.cmd(&["SET", &format!("long{i}"), "v"]);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), b"+OK\r\n");
        (
            info_number(&mut c, "persistence", "rdb_last_load_keys_expired"),
            info_number(&mut c, "persistence", "rdb_last_load_keys_loaded"),
        )
    };
    assert_eq!(counts(redis.port), (40, 10));
    assert_eq!(counts(rudis.port), (40, 10));
}

/// A BGSAVE's progress in INFO (Redis's fork fields: keys written of the keys at the instant,
/// and the copy-on-write, here the keys writes copied before changing them), with Redis's
/// hidden `rdb-key-save-delay` slowing it enough to watch.
#[test]
fn bgsave_reports_its_progress_and_honours_rdb_key_save_delay() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut c = rudis.raw();
    const KEYS: u64 = 3000;
    mset_keys(&mut c, 3, 1000, 40);
    // 3,000 keys at 300 us: 0.9 s.
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "300"]);
    let started = std::time::Instant::now();
    assert_eq!(c.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    let (mut seen_mid, mut seen_cow, mut last) = (false, false, 0);
    let mut j = 0;
    while info_number(&mut c, "persistence", "rdb_bgsave_in_progress") == 1 {
        // One INFO, so that both numbers are of the same moment; both are 0 before the saver
        // thread has taken the request and once the walk is done (the slot is let go after).
        let info = String::from_utf8_lossy(&c.cmd(&["INFO", "persistence"])).into_owned();
        let field = |name: &str| -> u64 {
            let line = info
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")));
            line.unwrap().trim().parse().unwrap()
        };
        let (total, done) = (
            field("current_save_keys_total"),
            field("current_save_keys_processed"),
        );
        assert!(
            total == KEYS || (total, done) == (0, 0),
            "{done} of {total}"
        );
        if total == 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        }
        assert!(done >= last && done <= KEYS, "{last} then {done}");
        seen_mid |= done > 0 && done < KEYS;
        last = done;
        // Keys the walk has likely not reached yet: their old values are copied.
        c.cmd(&["SET", &format!("k:2:{}", 999 - j), "new"]);
        j += 1;
        seen_cow |= info_number(&mut c, "persistence", "current_cow_size") > 0;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Keys copied by the SETs are not slept for; undelayed, the save takes milliseconds.
    assert!(started.elapsed() >= std::time::Duration::from_millis(750));
    assert!(seen_mid, "progress between none and all");
    assert!(seen_cow, "a copy-on-write counted");
    assert!(info_number(&mut c, "persistence", "rdb_last_cow_size") > 0);
    assert_eq!(
        info_number(&mut c, "persistence", "current_save_keys_total"),
        0
    );
    assert_eq!(info_number(&mut c, "persistence", "current_cow_size"), 0);
}

/// Starts rudis on `dir` with `loglevel verbose` (RUST_LOG unset, so the level is the
/// server's), its stdout and stderr in `dir/log`.
fn verbose_rudis(dir: &Path, extra: &[&str]) -> (std::process::Child, u16) {
    let port = common::free_port();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let child = std::process::Command::new(common::BIN)
        .args([
            "--port",
            &port.to_string(),
            "--appendonly",
            "no",
            "--loglevel",
            "verbose",
        ])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    (child, port)
}

/// Payloads from Redis's own integration/corrupt-dump unit (valid CRCs, bad insides):
/// refused as Redis refuses them, and the log says why in Redis's words.
#[test]
fn corrupt_payloads_are_refused_as_redis_refuses_them_and_logged_in_its_words() {
    let payloads: [(&str, &[u8]); 6] = [
        // #7445: a quicklist (v1) node's ziplist with a wrong entry.
        ("Ziplist", b"\x0E\x01\x1D\x1D\x00\x00\x00\x16\x00\x00\x00\x03\x00\x00\x04\x43\x43\x43\x43\x06\x04\x42\x42\x42\x42\x06\x3F\x41\x41\x41\x41\xFF\x09\x00\x88\xA5\xCA\xA8\xC5\x41\xF4\x35"),
        // A hash ziplist with an entry length past its end.
        ("Hash ziplist", b"\x0D\x1B\x1B\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02\x61\x00\x04\x02\x62\x00\x04\x14\x63\x00\x04\x02\x64\x00\xFF\x09\x00\xD9\x10\x54\x92\x15\xF5\x5F\x52"),
        // A ziplist whose zlbytes is not its size.
        ("Hash ziplist", b"\x0D\x1B\x25\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02\x61\x00\x04\x02\x62\x00\x04\x02\x63\x00\x04\x02\x64\x00\xFF\x09\x00\xB7\xF7\x6E\x9F\x43\x43\x14\xC6"),
        // A hash ziplist with a field twice.
        ("Hash ziplist", b"\x0D\x1B\x1B\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02\x61\x00\x04\x02\x62\x00\x04\x02\x61\x00\x04\x02\x64\x00\xFF\x09\x00\xA1\x98\x36\x78\xCC\x8E\x93\x2E"),
        // A quicklist ziplist whose second entry's previous length is too big.
        ("Ziplist", b"\x0E\x01\x13\x13\x00\x00\x00\x0E\x00\x00\x00\x02\x00\x00\x02\x61\x00\x0E\x02\x62\x00\xFF\x09\x00\x49\x97\x30\xB2\x0D\xA1\xED\xAA"),
        // A quicklist (v2) plain node of no bytes.
        ("quicklist node", b"\x12\x01\x01\x00\x0a\x00\x8f\xc6\xc0\x57\x1c\x0a\xb3\x3c"),
    ];
    let redis = RealRedis::start(&["--sanitize-dump-payload", "yes"]);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = verbose_rudis(dir.path(), &[]);
    common::wait_ready(port, &mut child, "rudis-server", &dir.path().join("log"));
    let (mut theirs, mut ours) = (redis.raw(), Raw::connect(port));
    for (i, (why, p)) in payloads.iter().enumerate() {
        let key = format!("k{i}");
        let c: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), b"0", p];
        let reply = ours.cmd(&c);
        assert_eq!(common::show(&reply), common::show(&theirs.cmd(&c)), "{key}");
        assert_eq!(reply, b"-ERR Bad data format\r\n", "{key}");
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        let line = log
            .lines()
            .find(|l| l.contains(&format!("RESTORE of key '{key}' refused")))
            .unwrap_or_else(|| panic!("{key}: no log line in\n{log}"));
        assert!(line.contains(why), "{key}: {line}");
    }
    assert_eq!(ours.cmd(&["DBSIZE"]), b":0\r\n");
    let _ = child.kill();
    let _ = child.wait();
}

/// Redis's corrupt_ziplist.rdb stops the start as Redis stops it; its corrupt_empty_keys.rdb
/// loads as nothing, each empty key named in the log (Redis's #8453 made such files).
#[test]
fn a_corrupt_rdb_stops_the_start_and_empty_keys_are_skipped_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.rdb"), fixture("corrupt_ziplist.rdb")).unwrap();
    let (mut child, _) = verbose_rudis(dir.path(), &[]);
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(!status.success(), "{log}");
    assert_eq!(
        log.matches("Terminating server after rdb file reading failure.")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.matches("ziplist integrity check failed").count() >= 2,
        "{log}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dump.rdb"),
        fixture("corrupt_empty_keys.rdb"),
    )
    .unwrap();
    let redis_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        redis_dir.path().join("dump.rdb"),
        fixture("corrupt_empty_keys.rdb"),
    )
    .unwrap();
    let redis = redis_in(redis_dir.path());
    let (mut child, port) = verbose_rudis(dir.path(), &[]);
    common::wait_ready(port, &mut child, "rudis-server", &dir.path().join("log"));
    let mut ours = Raw::connect(port);
    assert_eq!(ours.cmd(&["DBSIZE"]), redis.raw().cmd(&["DBSIZE"]));
    assert_eq!(ours.cmd(&["DBSIZE"]), b":0\r\n");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    for key in [
        "set",
        "list_quicklist",
        "list_quicklist_empty_ziplist",
        "list_ziplist",
        "hash",
        "hash_ziplist",
        "zset",
        "zset_ziplist",
        "zset_listpack",
    ] {
        assert!(
            log.lines()
                .any(|l| l.ends_with(&format!("skipping empty key: {key}"))),
            "{key}: {log}"
        );
    }
    assert!(log.contains("empty keys skipped: 9"), "{log}");
    let _ = child.kill();
    let _ = child.wait();
}

/// DUMP payloads of hashes with field deadlines (types 25 and 24), corrupted byte by byte
/// and cut short, with checksums not checked (DEBUG SET-SKIP-CHECKSUM-VALIDATION, as Redis's
/// corrupt-dump fuzzer runs): each RESTORE either succeeds, and the hash then serves every
/// field-deadline command, or fails with an error; the server never goes down.
#[test]
fn corrupt_field_deadline_payloads_are_restored_or_refused_never_a_crash() {
    let r = Rudis::start(&["--enable-debug-command", "yes"]);
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"]),
        b"+OK\r\n"
    );
    let mut fields = vec!["HSET", "small"];
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    for n in &names {
        fields.extend([n.as_str(), "v"]);
    }
    c.cmd(&fields);
    c.cmd(&[
        "HPEXPIRE", "small", "100000", "FIELDS", "3", "f1", "f2", "f3",
    ]);
    c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "0"]);
    fields[1] = "big";
    c.cmd(&fields);
    c.cmd(&["HPEXPIRE", "big", "100000", "FIELDS", "2", "f1", "f5"]);
    c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "512"]);
    let payloads: Vec<Vec<u8>> = ["small", "big"]
        .iter()
        .map(|k| match c.frame(&["DUMP", k]) {
            Frame::Bulk(p) => p,
            f => panic!("{f:?}"),
        })
        .collect();
    assert_eq!((payloads[0][0], payloads[1][0]), (25, 24));
    let mut rng = common::Rng::seeded(16);
    let (mut restored, mut refused) = (0, 0);
    for _ in 0..3000 {
        let mut p = payloads[rng.below(2) as usize].clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(p.len() as u64 - 10) as usize;
            p[i] = rng.below(256) as u8;
        }
        if rng.below(5) == 0 {
            let cut = 1 + rng.below(p.len() as u64 - 11) as usize;
            p.drain(cut..p.len() - 10);
        }
        c.send(&[&b"RESTORE"[..], b"k", b"0", &p, b"REPLACE"]);
        match c.read_reply().first() {
            Some(b'+') => restored += 1,
            Some(b'-') => {
                refused += 1;
                continue;
            }
            other => panic!("{other:?}"),
        }
        for cmd in [
            &["HGETALL", "k"][..],
            &["HPEXPIRETIME", "k", "FIELDS", "2", "f1", "f5"],
            &["HRANDFIELD", "k", "-5", "WITHVALUES"],
            &["HPERSIST", "k", "FIELDS", "1", "f1"],
            &["HEXPIRE", "k", "10", "FIELDS", "1", "f2"],
            &["HSET", "k", "new", "1"],
            &["DUMP", "k"],
        ] {
            c.cmd(cmd);
        }
    }
    assert!(restored > 100 && refused > 100, "{restored} / {refused}");
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    assert!(!r.log().contains("panicked"), "{}", r.log());
}
