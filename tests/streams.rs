//! Streams end to end: blocked readers woken by XADD from other clients (compared with
//! redis-server), consumer-group state surviving kill -9 under `appendfsync always`, and a real
//! redis-server loading rudis's rewritten AOF to the same streams and groups.
mod aofutil;
mod common;

use aofutil::{check_aof, redis_loading, wait_log};
use common::{blocked_clients, both, show, Raw, Rudis};

/// Consumer `a` of group `g` waiting for new entries of `s`.
const READ_AS_A: &[&str] = &[
    "XREADGROUP",
    "GROUP",
    "g",
    "a",
    "BLOCK",
    "0",
    "STREAMS",
    "s",
    ">",
];

#[test]
fn blocked_readers_wake_in_order_as_redis() {
    both(&["--appendonly", "no"], |port| {
        let mut c = common::Raw::connect(port);
        c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        let mut waiters = blocked_clients(
            port,
            &[
                &["XREAD", "BLOCK", "0", "STREAMS", "s", "100-0"],
                &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
                READ_AS_A,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "b",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "s",
                    ">",
                ],
            ],
        );
        let mut t = vec![c.cmd(&["XADD", "s", "5-0", "f", "v"])];
        // The $ reader and the first group reader are served; the reader past 100-0 and the
        // second group reader wait on.
        t.push(waiters[1].read_reply());
        t.push(waiters[2].read_reply());
        t.push(c.cmd(&["XADD", "s", "200-0", "f", "w"]));
        t.push(waiters[0].read_reply());
        t.push(waiters[3].read_reply());
        t.push(c.cmd(&["XPENDING", "s", "g"]));
        t
    });
}

#[test]
fn pending_entries_survive_kill9() {
    let mut r = Rudis::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = r.raw();
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    for i in 1..=10 {
        c.cmd(&["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "a",
        "COUNT",
        "6",
        "STREAMS",
        "s",
        ">",
    ]);
    c.cmd(&["XACK", "s", "g", "1-0", "2-0", "3-0"]);
    let mut w = r.raw();
    w.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "b",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    common::wait_blocked(r.port, 0);
    let served = w.read_reply();
    assert!(
        served.windows(4).any(|x| x == b"10-0"),
        "{}",
        common::show(&served)
    );
    let before = c.cmd(&["XPENDING", "s", "g", "-", "+", "100"]);
    r.kill9();
    r.restart();
    let mut c = r.raw();
    let pending = c.cmd(&["XPENDING", "s", "g"]);
    assert_eq!(
        common::show(&pending),
        common::show(b"*4\r\n:7\r\n$3\r\n4-0\r\n$4\r\n10-0\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n4\r\n")
    );
    let ids = |b: &[u8]| String::from_utf8_lossy(b).matches("-0").count();
    assert_eq!(
        ids(&c.cmd(&["XPENDING", "s", "g", "-", "+", "100"])),
        ids(&before)
    );
    // Nothing acknowledged comes back, and the group does not deliver again.
    assert_eq!(
        c.cmd(&["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]),
        b"*-1\r\n"
    );
    let history = c.cmd(&["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "0"]);
    assert!(!history.windows(3).any(|x| x == b"1-0"));
}

/// What a stream and its groups hold, as replies that do not depend on the clock: entries, the
/// stream's and groups' bookkeeping, and each pending entry's consumer and delivery count (its
/// idle time masked).
fn stream_state(c: &mut Raw, key: &str) -> Vec<String> {
    let mut out = vec![
        show(&c.cmd(&["XRANGE", key, "-", "+"])),
        show(&c.cmd(&["XINFO", "STREAM", key])),
        show(&c.cmd(&["XINFO", "GROUPS", key])),
    ];
    for g in ["g1", "g2"] {
        out.push(show(&c.cmd(&["XPENDING", key, g])));
        let ext = c.cmd(&["XPENDING", key, g, "-", "+", "100"]);
        // Each entry is *4, id, consumer, idle, count: the idle line follows the consumer.
        let text = String::from_utf8_lossy(&ext).to_string();
        let lines: Vec<&str> = text.split("\r\n").collect();
        let mut masked = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            if lines[i] == "*4" && i + 5 < lines.len() {
                masked.extend_from_slice(&lines[i..i + 5]);
                masked.push(":idle");
                i += 6;
            } else {
                masked.push(lines[i]);
                i += 1;
            }
        }
        out.push(masked.join("|"));
    }
    out
}

fn same(got: &[String], want: &[String], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g == w, "{what}, reply {i}:\n got {g}\nwant {w}");
    }
}

#[test]
fn redis_loads_the_rewritten_aof_to_the_same_streams_and_groups() {
    let mut r = Rudis::start(&["--appendonly", "yes"]);
    let mut c = r.raw();
    add_file_streams(&mut c);
    let truth = stream_state(&mut c, "s");
    let empty = show(&c.cmd(&["XINFO", "STREAM", "e"]));

    c.cmd(&["BGREWRITEAOF"]);
    wait_log(&r, "Background AOF rewrite finished successfully", 1, 30);
    r.restart();
    let mut c = r.raw();
    // Replayed XADDs pack the nodes afresh (as in Redis), so only the node counts may change.
    let after = stream_state(&mut c, "s");
    let nodes_masked = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|r| {
                let mut parts: Vec<&str> = r.split("\\r\\n").collect();
                for i in 0..parts.len() {
                    if parts[i].starts_with("radix-tree-") && i + 1 < parts.len() {
                        parts[i + 1] = ":n";
                    }
                }
                parts.join("|")
            })
            .collect()
    };
    same(
        &nodes_masked(&after),
        &nodes_masked(&truth),
        "rudis's own restart",
    );
    assert_eq!(show(&c.cmd(&["XINFO", "STREAM", "e"])), empty);

    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "redis-check-aof rejects the file:\n{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    let mut theirs = redis.raw();
    same(
        &stream_state(&mut theirs, "s"),
        &after,
        "redis-server loading rudis's AOF",
    );
    assert_eq!(show(&theirs.cmd(&["XINFO", "STREAM", "e"])), empty);
}

/// FLUSHALL tells a blocked group reader its stream is gone, as Redis does; a blocked pop on
/// the flushed database keeps waiting and is served by the next push.
#[test]
fn a_flush_tells_blocked_group_readers_their_stream_is_gone() {
    both(&["--appendonly", "no"], |port| {
        let mut c = Raw::connect(port);
        c.cmd(&["XADD", "s", "1-0", "f", "v"]);
        c.cmd(&["XGROUP", "CREATE", "s", "g", "$"]);
        let mut w = blocked_clients(port, &[READ_AS_A, &["BLPOP", "l", "0"]]);
        let mut t = vec![c.cmd(&["FLUSHALL"])];
        t.push(w[0].read_reply());
        t.push(c.cmd(&["RPUSH", "l", "x"]));
        t.push(w[1].read_reply());
        t
    });
}

/// `INFO errorstats` and the counted calls of `cmds` (from `INFO commandstats`, their times
/// left out), one line each.
fn error_stats(c: &mut Raw, cmds: &[&str]) -> Vec<u8> {
    let info = |c: &mut Raw, section: &str| {
        String::from_utf8_lossy(&c.cmd(&["INFO", section])).to_string()
    };
    let mut out = String::new();
    for line in info(c, "errorstats")
        .lines()
        .filter(|l| l.starts_with("errorstat_"))
    {
        out.push_str(line);
        out.push('\n');
    }
    let stats = info(c, "stats");
    if let Some(l) = stats
        .lines()
        .find(|l| l.starts_with("total_error_replies:"))
    {
        out.push_str(l);
        out.push('\n');
    }
    // Sorted: Redis lists commands in its table's hash order.
    let mut lines: Vec<String> = info(c, "commandstats").lines().map(String::from).collect();
    lines.sort();
    for line in &lines {
        let Some((name, fields)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        if !cmds.contains(&name) {
            continue;
        }
        let kept: Vec<&str> = fields
            .split(',')
            .filter(|f| f.starts_with("calls=") || f.contains("_calls="))
            .collect();
        out.push_str(&format!("{name}:{}\n", kept.join(",")));
    }
    out.into_bytes()
}

/// A group `g` on stream `s` of the current database, with one entry, and a client of
/// database `db` blocked reading it as consumer `a`.
fn group_reader(c: &mut Raw, port: u16, db: &str) -> Raw {
    c.cmd(&["DEL", "s"]);
    c.cmd(&["XADD", "s", "1-0", "f", "v"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$"]);
    let mut w = Raw::connect(port);
    w.cmd(&["SELECT", db]);
    let before = blocked_count(port);
    w.send(READ_AS_A);
    common::wait_blocked(port, before + 1);
    w
}

fn blocked_count(port: u16) -> usize {
    let info = Raw::connect(port).cmd(&["INFO", "clients"]);
    let text = String::from_utf8_lossy(&info).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Whatever takes a blocked group reader's stream away tells it so, as redis-server does:
/// SWAPDB (the other database without the key, with a list there, with a stream whose group
/// has news), active and lazy expiry, DEL, SET, a transaction replacing it by a set, RENAME
/// onto it; a plain XREAD keeps waiting through a DEL. The errors count in INFO errorstats
/// and as failed calls of XREADGROUP, as Redis counts them (calls=1, failed_calls=1 each).
#[test]
fn whatever_takes_a_stream_away_tells_its_blocked_group_readers() {
    both(&["--appendonly", "no"], |port| {
        let mut c = Raw::connect(port);
        let mut t = vec![c.cmd(&["CONFIG", "RESETSTAT"])];
        // SWAPDB 4 9 with the reader in 9 and database 4 holding, under the name: nothing; a
        // list; a stream whose group has an entry it has not read (the reader is served).
        let stream_with_news: &[&[&str]] = &[
            &["XADD", "s", "1-0", "f", "v"],
            &["XGROUP", "CREATE", "s", "g", "0"],
            &["XADD", "s", "2-0", "f", "other"],
        ];
        for db4 in [&[][..], &[&["LPUSH", "s", "e1"][..]][..], stream_with_news] {
            c.cmd(&["SELECT", "4"]);
            c.cmd(&["FLUSHDB"]);
            for cmd in db4 {
                c.cmd(cmd);
            }
            c.cmd(&["SELECT", "9"]);
            let mut w = group_reader(&mut c, port, "9");
            t.push(c.cmd(&["SWAPDB", "4", "9"]));
            t.push(w.read_reply());
        }
        c.cmd(&["SELECT", "0"]);
        // Active expiry.
        let mut w = group_reader(&mut c, port, "0");
        t.push(c.cmd(&["PEXPIRE", "s", "50"]));
        t.push(w.read_reply());
        // Lazy expiry: a read finds it expired (before the sweeper, most likely; either way
        // the reader is told).
        let mut w = group_reader(&mut c, port, "0");
        t.push(c.cmd(&["PEXPIRE", "s", "1"]));
        std::thread::sleep(std::time::Duration::from_millis(5));
        t.push(c.cmd(&["EXISTS", "s"]));
        t.push(w.read_reply());
        // DEL, SET, a transaction, RENAME.
        let mut w = group_reader(&mut c, port, "0");
        t.push(c.cmd(&["DEL", "s"]));
        t.push(w.read_reply());
        let mut w = group_reader(&mut c, port, "0");
        t.push(c.cmd(&["SET", "s", "x"]));
        t.push(w.read_reply());
        let mut w = group_reader(&mut c, port, "0");
        c.cmd(&["MULTI"]);
        c.cmd(&["DEL", "s"]);
        c.cmd(&["SADD", "s", "m"]);
        t.push(c.cmd(&["EXEC"]));
        t.push(w.read_reply());
        let mut w = group_reader(&mut c, port, "0");
        c.cmd(&["SET", "other", "x"]);
        t.push(c.cmd(&["RENAME", "other", "s"]));
        t.push(w.read_reply());
        // A plain reader waits through a DEL and is served by the next XADD.
        c.cmd(&["DEL", "s"]);
        c.cmd(&["XADD", "s", "1-0", "f", "v"]);
        let mut w = blocked_clients(port, &[&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]]);
        t.push(c.cmd(&["DEL", "s"]));
        t.push(c.cmd(&["XADD", "s", "2-0", "f", "w"]));
        t.push(w[0].read_reply());
        t.push(error_stats(
            &mut c,
            &["xreadgroup", "xread", "type", "del", "swapdb"],
        ));
        t
    });
}

/// An error answering a woken blocked client counts for every blocking command, as in
/// Redis: BLMOVE's pop served onto a destination of the wrong type, and CLIENT UNBLOCK
/// ... ERROR; a timeout is no error.
#[test]
fn errors_to_woken_blocked_clients_count_in_errorstats() {
    both(&["--appendonly", "no"], |port| {
        let mut c = Raw::connect(port);
        let mut t = vec![c.cmd(&["CONFIG", "RESETSTAT"])];
        c.cmd(&["SET", "dst", "string"]);
        let mut w = blocked_clients(
            port,
            &[
                &["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"],
                &["BLPOP", "nothing", "0"],
                &["BZPOPMIN", "z", "0.05"],
            ],
        );
        t.push(c.cmd(&["RPUSH", "src", "a"]));
        t.push(w[0].read_reply());
        let id = c.cmd(&["CLIENT", "LIST"]);
        let text = String::from_utf8_lossy(&id).to_string();
        let blpop = text
            .lines()
            .find(|l| l.contains("cmd=blpop"))
            .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .expect("the BLPOP client")
            .to_string();
        t.push(c.cmd(&["CLIENT", "UNBLOCK", &blpop, "ERROR"]));
        t.push(w[1].read_reply());
        t.push(w[2].read_reply());
        t.push(error_stats(
            &mut c,
            &["blmove", "blpop", "bzpopmin", "lpop", "lmove", "rpush"],
        ));
        t
    });
}

/// Streams of every shape a file must carry, with explicit IDs: several nodes, entries with
/// and without the master entry's fields, integer-looking and long values (past a
/// listpack's 6- and 12-bit string lengths), deletions and a trim that leaves tombstones,
/// groups with pending entries, claims, an idle consumer and an unknown entries-read, an empty
/// stream with XSETID's counters, and a stream with no group.
const FILE_STREAMS: &[&[&str]] = &[
    &["XADD", "s", "1-1", "f", "1", "g", "x"],
    &["XGROUP", "CREATE", "s", "g1", "0"],
    &["XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "3"],
    &["XGROUP", "CREATECONSUMER", "s", "g2", "idle-one"],
    &["XDEL", "s", "7-1", "150-1"],
    &["XTRIM", "s", "MAXLEN", "250"],
    &[
        "XREADGROUP",
        "GROUP",
        "g1",
        "a",
        "COUNT",
        "20",
        "STREAMS",
        "s",
        ">",
    ],
    &[
        "XREADGROUP",
        "GROUP",
        "g1",
        "b",
        "COUNT",
        "5",
        "STREAMS",
        "s",
        ">",
    ],
    &["XACK", "s", "g1", "60-1", "61-1", "70-1"],
    &["XCLAIM", "s", "g1", "b", "0", "62-1", "63-1"],
    &["XCLAIM", "s", "g1", "a", "0", "64-1", "RETRYCOUNT", "9"],
    &["XADD", "s", "400-1", "f", "late"],
    &[
        "XREADGROUP",
        "GROUP",
        "g2",
        "c",
        "NOACK",
        "STREAMS",
        "s",
        ">",
    ],
    &["XADD", "e", "5-5", "f", "v"],
    &["XDEL", "e", "5-5"],
    &[
        "XSETID",
        "e",
        "9-9",
        "ENTRIESADDED",
        "40",
        "MAXDELETEDID",
        "8-0",
    ],
];

/// Adds `FILE_STREAMS` to the server of `c`, after the bulk of `s` (entries 2-1 to 300-1)
/// and the stream `plain`.
fn add_file_streams(c: &mut Raw) {
    c.cmd(FILE_STREAMS[0]);
    for i in 2..=300u64 {
        let v = i.to_string();
        let long = "w".repeat((i as usize * 37) % 5000);
        let args: Vec<&str> = match i % 7 {
            0 => vec!["other", &v],
            3 => vec!["f", &long, "g", "-17"],
            _ => vec!["f", &v, "g", "x"],
        };
        let id = format!("{i}-1");
        let mut cmd = vec!["XADD", "s", &id];
        cmd.extend(args);
        c.cmd(&cmd);
    }
    for cmd in &FILE_STREAMS[1..] {
        let r = c.cmd(cmd);
        assert!(!r.starts_with(b"-"), "{cmd:?}: {}", show(&r));
    }
    for i in 1..=500u64 {
        c.cmd(&[
            "XADD",
            "plain",
            &format!("{}-{}", 1000 + i / 3, i),
            "n",
            &(i * 7919).to_string(),
        ]);
    }
}

/// XINFO STREAM FULL of `key`, every entry and pending entry shown, its times (delivery and seen times: integers past 10^12)
/// masked.
fn full_info(c: &mut Raw, key: &str) -> String {
    let reply = c.cmd(&["XINFO", "STREAM", key, "FULL", "COUNT", "0"]);
    let text = String::from_utf8_lossy(&reply).to_string();
    text.split("\r\n")
        .map(
            |l| match l.strip_prefix(':').and_then(|n| n.parse::<i64>().ok()) {
                Some(n) if n > 1_000_000_000_000 => ":time",
                _ => l,
            },
        )
        .collect::<Vec<_>>()
        .join("|")
}

const FILE_KEYS: &[&str] = &["s", "e", "plain"];

/// DUMP a stream on one side, RESTORE it on the other: the copy answers XINFO STREAM FULL as
/// the original does, both ways; without compression (and with no delivery times in it) the
/// payload is Redis's byte for byte. Redis 5's payload of type 15 (Redis's own test's)
/// restores as it does in Redis 7.0.
#[test]
fn stream_dumps_restore_both_ways() {
    let redis = common::RealRedis::start(&[]);
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let (mut theirs, mut ours) = (redis.raw(), rudis.raw());
    add_file_streams(&mut theirs);
    add_file_streams(&mut ours);
    for key in FILE_KEYS {
        same(
            &[full_info(&mut ours, key)],
            &[full_info(&mut theirs, key)],
            &format!("{key} as built"),
        );
    }
    for way in 0..2 {
        let (from, to) = if way == 0 {
            (&mut theirs, &mut ours)
        } else {
            (&mut ours, &mut theirs)
        };
        for key in FILE_KEYS {
            let payload = from.cmd(&["DUMP", key]);
            let body_start = payload.iter().position(|&b| b == b'\n').unwrap() + 1;
            let body = &payload[body_start..payload.len() - 2];
            let copy = format!("{key}:copy");
            let reply = to.cmd(&[b"RESTORE", copy.as_bytes(), b"0", body]);
            assert_eq!(show(&reply), "+OK\\r\\n", "{key}, way {way}");
            let want = full_info(from, key);
            same(
                &[full_info(to, &copy)],
                &[want],
                &format!("{key}, way {way}"),
            );
            to.cmd(&["DEL", &copy]);
        }
    }
    for c in [&mut theirs, &mut ours] {
        c.cmd(&["CONFIG", "SET", "rdbcompression", "no"]);
    }
    assert_eq!(
        show(&ours.cmd(&["DUMP", "plain"])),
        show(&theirs.cmd(&["DUMP", "plain"]))
    );
    assert_eq!(
        show(&ours.cmd(&["DUMP", "e"])),
        show(&theirs.cmd(&["DUMP", "e"]))
    );
    let legacy: &[u8] = b"\x0F\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\xC3\x40\x4A\x40\x57\x16\x57\x00\x00\x00\x23\x00\x02\x01\x04\x01\x01\x01\x84\x64\x61\x74\x61\x05\x00\x01\x03\x01\x00\x20\x01\x03\x81\x61\x02\x04\x20\x0A\x00\x01\x40\x0A\x00\x62\x60\x0A\x00\x02\x40\x0A\x00\x63\x60\x0A\x40\x22\x01\x81\x64\x20\x0A\x40\x39\x20\x0A\x00\x65\x60\x0A\x00\x05\x40\x0A\x00\x66\x20\x0A\x00\xFF\x02\x06\x00\x02\x02\x67\x31\x05\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x01\x03\x63\x31\x31\x3E\xF7\x83\x43\x7A\x01\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x02\x67\x32\x00\x00\x00\x00\x09\x00\x3D\x52\xEF\x68\x67\x52\x1D\xFA";
    let mut infos = Vec::new();
    for c in [&mut theirs, &mut ours] {
        assert_eq!(c.cmd(&[&b"RESTORE"[..], b"x", b"0", legacy]), b"+OK\r\n");
        // Its times are the file's: nothing to mask.
        infos.push(show(&c.cmd(&["XINFO", "STREAM", "x", "FULL"])));
    }
    assert_eq!(infos[1], infos[0], "the legacy payload");
}

/// rudis's SAVE with streams passes redis-check-rdb, and redis-server 7.0 loads it to the
/// same XINFO STREAM FULL; rudis loads redis-server's own file to the same again.
#[test]
fn stream_rdb_files_load_both_ways() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut ours = rudis.raw();
    add_file_streams(&mut ours);
    let want: Vec<String> = FILE_KEYS.iter().map(|k| full_info(&mut ours, k)).collect();
    assert_eq!(ours.cmd(&["SAVE"]), b"+OK\r\n");
    let file = rudis.dir.join("dump.rdb");
    let (ok, text) = common::check_rdb(&file);
    assert!(ok, "{text}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&file, dir.path().join("dump.rdb")).unwrap();
    let redis = common::RealRedis::start(&["--dir", dir.path().to_str().unwrap()]);
    let mut theirs = redis.raw();
    let got: Vec<String> = FILE_KEYS
        .iter()
        .map(|k| full_info(&mut theirs, k))
        .collect();
    same(&got, &want, "redis-server loading rudis's dump.rdb");
    // Redis writes the file again, in its own way; rudis loads that.
    assert_eq!(theirs.cmd(&["SAVE"]), b"+OK\r\n");
    let back = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("dump.rdb"), back.path().join("dump.rdb")).unwrap();
    let again = Rudis::start_in(back.path(), &["--appendonly", "no"]);
    let mut c = again.raw();
    let got: Vec<String> = FILE_KEYS.iter().map(|k| full_info(&mut c, k)).collect();
    same(&got, &want, "rudis loading redis-server's dump.rdb");
}

/// XADD's records name the ID it generated and the exact trim `~` made (`MAXLEN = n`,
/// `MINID = first`), as Redis propagates them: replayed after a restart they give the same
/// stream, not one with new IDs or a different trim.
#[test]
fn xadd_records_replay_to_the_same_ids_and_trims() {
    let mut r = Rudis::start(&["--appendonly", "yes", "--stream-node-max-entries", "10"]);
    let mut c = r.raw();
    for i in 0..120 {
        let v = i.to_string();
        let reply = match i % 3 {
            0 => c.cmd(&["XADD", "s", "*", "f", &v]),
            1 => c.cmd(&["XADD", "s", "MAXLEN", "~", "45", "*", "f", &v]),
            _ => c.cmd(&["XADD", "s", "9999999999999-*", "f", &v]),
        };
        assert!(reply.starts_with(b"$"), "{}", show(&reply));
        if i == 60 {
            c.cmd(&["XADD", "m", "1-1", "f", "v"]);
            c.cmd(&["XADD", "m", "2-1", "f", "v"]);
            c.cmd(&["XADD", "m", "MINID", "~", "2", "*", "f", "v"]);
        }
    }
    let before = (
        show(&c.cmd(&["XRANGE", "s", "-", "+"])),
        show(&c.cmd(&["XINFO", "STREAM", "s"])),
        show(&c.cmd(&["XRANGE", "m", "-", "+"])),
    );
    r.restart();
    let mut c = r.raw();
    let after = (
        show(&c.cmd(&["XRANGE", "s", "-", "+"])),
        show(&c.cmd(&["XINFO", "STREAM", "s"])),
        show(&c.cmd(&["XRANGE", "m", "-", "+"])),
    );
    assert_eq!(after, before);
}
