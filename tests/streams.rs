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
    for i in 1..=300 {
        c.cmd(&[
            "XADD",
            "s",
            &format!("{i}-1"),
            "f",
            &i.to_string(),
            "g",
            "x",
        ]);
    }
    c.cmd(&["XDEL", "s", "7-1", "150-1"]);
    c.cmd(&["XTRIM", "s", "MAXLEN", "250"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g1", "0"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "3"]);
    c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g2", "idle-one"]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "a",
        "COUNT",
        "20",
        "STREAMS",
        "s",
        ">",
    ]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "b",
        "COUNT",
        "5",
        "STREAMS",
        "s",
        ">",
    ]);
    c.cmd(&["XACK", "s", "g1", "60-1", "61-1", "70-1"]);
    c.cmd(&["XCLAIM", "s", "g1", "b", "0", "62-1", "63-1"]);
    c.cmd(&["XCLAIM", "s", "g1", "a", "0", "64-1", "RETRYCOUNT", "9"]);
    c.cmd(&["XADD", "s", "400-1", "f", "late"]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g2",
        "c",
        "NOACK",
        "STREAMS",
        "s",
        ">",
    ]);
    c.cmd(&["XADD", "e", "5-5", "f", "v"]);
    c.cmd(&["XDEL", "e", "5-5"]);
    c.cmd(&[
        "XSETID",
        "e",
        "9-9",
        "ENTRIESADDED",
        "40",
        "MAXDELETEDID",
        "8-0",
    ]);
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
