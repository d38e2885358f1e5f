//! Hashes through the AOF: what is logged, and what a restart brings back.
mod common;

use common::Rudis;

#[test]
fn hash_writes_survive_a_restart_and_log_what_they_did() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]),
        b":3\r\n"
    );
    assert_eq!(c.cmd(&["HDEL", "h", "b", "nope"]), b":1\r\n");
    assert_eq!(c.cmd(&["HDEL", "h", "nope"]), b":0\r\n");
    assert_eq!(c.cmd(&["HINCRBY", "h", "a", "41"]), b":42\r\n");
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "0.1"]), b"$3\r\n0.1\r\n");
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "0.2"]), b"$3\r\n0.3\r\n");
    assert_eq!(c.cmd(&["HSETNX", "h", "a", "x"]), b":0\r\n");
    assert_eq!(c.cmd(&["HSETNX", "h", "n", "x"]), b":1\r\n");
    assert_eq!(c.cmd(&["HSET", "gone", "only", "1"]), b":1\r\n");
    assert_eq!(c.cmd(&["HDEL", "gone", "only"]), b":1\r\n");
    // Past 128 fields the hash becomes a table.
    for i in 0..200 {
        c.cmd(&["HSET", "big", &format!("f{i}"), &i.to_string()]);
    }
    let before = c.cmd(&["HGETALL", "h"]);
    assert_eq!(
        before,
        b"*8\r\n$1\r\na\r\n$2\r\n42\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nf\r\n$3\r\n0.3\r\n$1\r\nn\r\n$1\r\nx\r\n"
    );

    let aof = String::from_utf8_lossy(&std::fs::read(r.aof_path()).expect("aof")).into_owned();
    // HINCRBYFLOAT is logged as the HSET of the value it produced, as Redis logs it.
    assert!(!aof.contains("HINCRBYFLOAT"), "{aof}");
    assert!(
        aof.contains("HSET\r\n$1\r\nh\r\n$1\r\nf\r\n$3\r\n0.3\r\n"),
        "{aof}"
    );
    // Changing nothing logs nothing.
    assert_eq!(aof.matches("HDEL").count(), 2, "{aof}");
    assert_eq!(aof.matches("HSETNX").count(), 1, "{aof}");

    r.restart();
    let mut c = r.raw();
    assert_eq!(c.cmd(&["HGETALL", "h"]), before, "small hash order kept");
    assert_eq!(c.cmd(&["EXISTS", "gone"]), b":0\r\n");
    assert_eq!(c.cmd(&["HLEN", "big"]), b":200\r\n");
    assert_eq!(c.cmd(&["HGET", "big", "f199"]), b"$3\r\n199\r\n");
}

/// Issue 21: HSCAN of a big hash pages through it COUNT fields at a time with a real cursor
/// (it used to return the whole hash at cursor 0, one huge reply built under the shard's lock),
/// and the pages together return every field exactly once when nothing changes meanwhile.
#[test]
fn hscan_of_a_million_fields_in_count_sized_pages() {
    let server = common::Rudis::start(&["--appendonly", "no"]);
    let mut c = server.raw();
    let n = 1_000_000usize;
    let cmds: Vec<Vec<String>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            let mut cmd = vec!["HSET".to_string(), "big".into()];
            for i in chunk {
                cmd.push(format!("f{i}"));
                cmd.push(i.to_string());
            }
            cmd
        })
        .collect();
    c.pipeline_ok(&cmds);
    let (items, calls, largest) = common::scan_pages(&mut c, &["HSCAN", "big"], 1000);
    let mut seen = vec![false; n];
    for pair in items.chunks(2) {
        let i: usize = std::str::from_utf8(&pair[1]).unwrap().parse().unwrap();
        assert_eq!(pair[0], format!("f{i}").as_bytes());
        assert!(!seen[i], "field f{i} returned twice");
        seen[i] = true;
    }
    let largest = largest / 2;
    assert!(seen.iter().all(|&s| s), "some fields never returned");
    assert!(largest <= 1000, "a page of {largest} fields for COUNT 1000");
    assert!(calls >= n / 1000, "{calls} calls");
}

// ----- Redis 7.4's field deadlines (HEXPIRE and its kin) -----

const SAME: &[u8] = b"";

/// What Redis 7.4.1 replied to these, recorded in RESP2 and after HELLO 3 (SAME: the
/// same bytes in both), on a server started empty.
const CASES: &[(&str, &[u8], &[u8])] = &[
    ("HSET h f1 v1 f2 v2 f3 v3", b":3\r\n", SAME),
    ("HEXPIRE h 100 FIELDS 2 f1 nosuch", b"*2\r\n:1\r\n:-2\r\n", SAME),
    ("HEXPIRE h 100 NX FIELDS 1 f1", b"*1\r\n:0\r\n", SAME),
    ("HEXPIRE h 200 XX FIELDS 2 f1 f2", b"*2\r\n:1\r\n:0\r\n", SAME),
    ("HEXPIRE h 50 GT FIELDS 1 f1", b"*1\r\n:0\r\n", SAME),
    ("HEXPIRE h 50 LT FIELDS 1 f1", b"*1\r\n:1\r\n", SAME),
    ("HPEXPIRE h 100000 FIELDS 1 f3", b"*1\r\n:1\r\n", SAME),
    ("HTTL h FIELDS 3 f1 f2 nosuch", b"*3\r\n:50\r\n:-1\r\n:-2\r\n", SAME),
    ("HPTTL h FIELDS 1 f2", b"*1\r\n:-1\r\n", SAME),
    ("HEXPIRETIME h FIELDS 1 f2", b"*1\r\n:-1\r\n", SAME),
    ("HPEXPIRETIME h FIELDS 1 f2", b"*1\r\n:-1\r\n", SAME),
    ("HTTL nokey FIELDS 1 a", b"*1\r\n:-2\r\n", SAME),
    ("HPERSIST h FIELDS 3 f1 f2 nosuch", b"*3\r\n:1\r\n:-1\r\n:-2\r\n", SAME),
    ("HPERSIST nokey FIELDS 1 a", b"*1\r\n:-2\r\n", SAME),
    ("HEXPIRE h 0 FIELDS 1 f3", b"*1\r\n:2\r\n", SAME),
    ("HGETALL h", b"*4\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nf1\r\n$2\r\nv1\r\n", b"%2\r\n$2\r\nf2\r\n$2\r\nv2\r\n$2\r\nf1\r\n$2\r\nv1\r\n"),
    ("HEXPIRE h -1 FIELDS 1 f1", b"-ERR invalid expire time, must be >= 0\r\n", SAME),
    ("HEXPIRE h 100 FIELDS 0", b"-ERR wrong number of arguments for 'hexpire' command\r\n", SAME),
    ("HEXPIRE h 100 FIELDS 2 f1", b"-ERR The `numfields` parameter must match the number of arguments\r\n", SAME),
    ("HEXPIRE h 100 FIELDS -1 f1", b"-ERR Parameter `numFields` should be greater than 0\r\n", SAME),
    ("HEXPIRE h 100 FIELDS abc f1", b"-ERR Parameter `numFields` should be greater than 0\r\n", SAME),
    ("HEXPIRE h 100 FILDS 1 f1", b"-ERR Mandatory argument FIELDS is missing or not at the right position\r\n", SAME),
    ("HEXPIRE h 100 NX NX FIELDS 1 f1", b"-ERR Mandatory argument FIELDS is missing or not at the right position\r\n", SAME),
    ("HEXPIRE h abc FIELDS 1 f1", b"-ERR value is not an integer or out of range\r\n", SAME),
    ("HEXPIRE h 99999999999999999 FIELDS 1 f1", b"-ERR invalid expire time in 'hexpire' command\r\n", SAME),
    ("HPEXPIREAT h 9999999999999999 FIELDS 1 f1", b"-ERR invalid expire time in 'hpexpireat' command\r\n", SAME),
    ("HTTL h FIELDS 0", b"-ERR wrong number of arguments for 'httl' command\r\n", SAME),
    ("HTTL h FIELDS 2 a", b"-ERR The `numfields` parameter must match the number of arguments\r\n", SAME),
    ("HTTL h FIELD 1 a", b"-ERR Mandatory argument FIELDS is missing or not at the right position\r\n", SAME),
    ("HPERSIST h FIELDS 0", b"-ERR wrong number of arguments for 'hpersist' command\r\n", SAME),
    ("HEXPIRE h", b"-ERR wrong number of arguments for 'hexpire' command\r\n", SAME),
    ("HTTL h", b"-ERR wrong number of arguments for 'httl' command\r\n", SAME),
    ("SET s x", b"+OK\r\n", SAME),
    ("HEXPIRE s 10 FIELDS 1 a", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", SAME),
    ("HTTL s FIELDS 1 a", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", SAME),
    ("HPERSIST s FIELDS 1 a", b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", SAME),
    ("HSET h2 a 1 b 2 c 3 d 4", b":4\r\n", SAME),
    ("HEXPIRE h2 1000 FIELDS 1 c", b"*1\r\n:1\r\n", SAME),
    ("HEXPIRE h2 500 FIELDS 1 d", b"*1\r\n:1\r\n", SAME),
    ("HGETALL h2", b"*8\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", b"%4\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
    ("OBJECT ENCODING h2", b"$10\r\nlistpackex\r\n", SAME),
    ("HPERSIST h2 FIELDS 1 d", b"*1\r\n:1\r\n", SAME),
    ("HGETALL h2", b"*8\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nd\r\n$1\r\n4\r\n", b"%4\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nd\r\n$1\r\n4\r\n"),
    ("HSET h2 c 33", b":0\r\n", SAME),
    ("HGETALL h2", b"*8\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\nc\r\n$2\r\n33\r\n", b"%4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\nc\r\n$2\r\n33\r\n"),
    ("HTTL h2 FIELDS 1 c", b"*1\r\n:-1\r\n", SAME),
    ("HEXPIRE h2 1000 FIELDS 1 a", b"*1\r\n:1\r\n", SAME),
    ("HINCRBY h2 a 5", b":6\r\n", SAME),
    ("HTTL h2 FIELDS 1 a", b"*1\r\n:1000\r\n", SAME),
    ("HPEXPIRE h2 1 FIELDS 1 b", b"*1\r\n:1\r\n", SAME),
    ("HGET h2 b", b"$-1\r\n", b"_\r\n"),
    ("HLEN h2", b":3\r\n", SAME),
    ("HGETALL h2", b"*6\r\n$1\r\na\r\n$1\r\n6\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\nc\r\n$2\r\n33\r\n", b"%3\r\n$1\r\na\r\n$1\r\n6\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\nc\r\n$2\r\n33\r\n"),
    ("HEXISTS h2 b", b":0\r\n", SAME),
];

/// Polls `cmd` until it replies `want` (a deadline passing, active expiry running).
fn eventually(c: &mut common::Raw, cmd: &[&str], want: &[u8]) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = c.cmd(cmd);
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{cmd:?}: {}",
            common::show(&got)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn field_deadline_commands_reply_as_redis_7_4_in_both_protocols() {
    for proto in [2, 3] {
        let r = Rudis::start(&[]);
        let mut c = r.raw();
        if proto == 3 {
            c.cmd(&["HELLO", "3"]);
        }
        for (cmd, resp2, resp3) in CASES {
            let args: Vec<&str> = cmd.split(' ').collect();
            let want = if proto == 3 && !resp3.is_empty() {
                *resp3
            } else {
                *resp2
            };
            assert_eq!(
                common::show(&c.cmd(&args)),
                common::show(want),
                "RESP{proto}: {cmd}"
            );
            if cmd.starts_with("HPEXPIRE h2 1 ") {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

/// A field past its deadline reads as absent at once; a read of it removes it (HLEN counts it
/// until then), active expiry removes the rest and the key with its last field, each field
/// logged as an HDEL and the deadlines as HPEXPIREAT at absolute times, as Redis 7.4 logs them.
#[test]
fn fields_expire_lazily_and_actively_and_the_aof_says_so() {
    let r = Rudis::start(&["--appendfsync", "always", "--enable-debug-command", "yes"]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), b"+OK\r\n");
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(
        c.cmd(&["HPEXPIRE", "h", "1", "FIELDS", "2", "a", "b"]),
        b"*2\r\n:1\r\n:1\r\n"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(c.cmd(&["HGETALL", "h"]), b"*2\r\n$1\r\nc\r\n$1\r\n3\r\n");
    assert_eq!(c.cmd(&["HLEN", "h"]), b":3\r\n", "not removed by HGETALL");
    assert_eq!(c.cmd(&["HGET", "h", "a"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["HLEN", "h"]), b":2\r\n", "removed by HGET");
    assert_eq!(c.cmd(&["HEXISTS", "h", "b"]), b":0\r\n");
    assert_eq!(c.cmd(&["HLEN", "h"]), b":1\r\n");
    c.cmd(&["HSET", "k", "x", "1"]);
    c.cmd(&["HPEXPIRE", "k", "1", "FIELDS", "1", "x"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(c.cmd(&["EXISTS", "k"]), b":1\r\n", "active expiry is off");
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), b"+OK\r\n");
    eventually(&mut c, &["EXISTS", "k"], b":0\r\n");
    // A time already past removes the field at once (2), and is logged as its HDEL.
    assert_eq!(
        c.cmd(&["HEXPIREAT", "h", "1", "FIELDS", "1", "c"]),
        b"*1\r\n:2\r\n"
    );
    assert_eq!(c.cmd(&["EXISTS", "h"]), b":0\r\n");
    let aof = String::from_utf8_lossy(&std::fs::read(r.aof_path()).unwrap()).replace("\r\n", " ");
    let at = regex_free_number_after(&aof, "HPEXPIREAT $1 h $13 ");
    assert!(at > 1_700_000_000_000, "{aof}");
    for want in [
        "$6 FIELDS $1 2 $1 a $1 b",
        "*3 $4 HDEL $1 h $1 a ",
        "*3 $4 HDEL $1 h $1 b ",
        "*3 $4 HDEL $1 k $1 x ",
        "*3 $4 HDEL $1 h $1 c ",
    ] {
        assert!(aof.contains(want), "{want} in {aof}");
    }
    assert!(
        !aof.contains("$8 HPEXPIRE ") && !aof.contains("$3 DEL"),
        "{aof}"
    );
}

/// The number that follows `prefix` in `text`.
fn regex_free_number_after(text: &str, prefix: &str) -> u64 {
    let i = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix} in {text}"))
        + prefix.len();
    text[i..].split(' ').next().unwrap().parse().unwrap()
}

/// A small hash with deadlines keeps Redis 7.4's order (fields with a deadline first, soonest
/// first) and its deadlines through a restart from the AOF, and through rewrites with and
/// without the RDB preamble.
#[test]
fn field_deadlines_and_order_survive_restarts_and_rewrites() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"]);
    let far = "4102444800000";
    c.cmd(&["HPEXPIREAT", "h", far, "FIELDS", "2", "c", "d"]);
    c.cmd(&["HPEXPIREAT", "h", "4102444700000", "FIELDS", "1", "b"]);
    for i in 0..600 {
        c.cmd(&["HSET", "big", &format!("f{i}"), "v"]);
    }
    c.cmd(&["HPEXPIREAT", "big", far, "FIELDS", "1", "f7"]);
    let view = |c: &mut common::Raw| {
        (
            c.cmd(&["HGETALL", "h"]),
            c.cmd(&["HPEXPIRETIME", "h", "FIELDS", "5", "a", "b", "c", "d", "e"]),
            c.cmd(&["OBJECT", "ENCODING", "h"]),
            c.cmd(&["HPEXPIRETIME", "big", "FIELDS", "2", "f7", "f8"]),
            c.cmd(&["OBJECT", "ENCODING", "big"]),
        )
    };
    let want = view(&mut c);
    assert_eq!(
        common::show(&want.0),
        // As Redis 7.4.1 orders them (d, given the same deadline after c, goes before it).
        common::show(b"*8\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n1\r\n")
    );
    assert_eq!(
        want.1,
        b"*5\r\n:-1\r\n:4102444700000\r\n:4102444800000\r\n:4102444800000\r\n:-2\r\n"
    );
    assert_eq!(want.2, b"$10\r\nlistpackex\r\n");
    assert_eq!(want.3, b"*2\r\n:4102444800000\r\n:-1\r\n");
    drop(c);
    r.restart();
    assert_eq!(view(&mut r.raw()), want, "after replaying the AOF");
    for preamble in ["no", "yes"] {
        let mut c = r.raw();
        c.cmd(&["CONFIG", "SET", "aof-use-rdb-preamble", preamble]);
        assert_eq!(
            c.cmd(&["BGREWRITEAOF"]),
            b"+Background append only file rewriting started\r\n"
        );
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while common::info_number(&mut c, "persistence", "aof_rewrite_in_progress") == 1 {
            assert!(std::time::Instant::now() < until);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(c);
        r.restart();
        assert_eq!(
            view(&mut r.raw()),
            want,
            "after a rewrite, preamble {preamble}"
        );
    }
}

/// The keyspace events of field deadlines, in the order Redis 7.4.1 sends them: `hexpire`,
/// `hpersist`, `hexpired` when active expiry takes a field, `hdel` (and `del` with the last
/// field) when a time already past does.
#[test]
fn field_deadline_events_are_redis_7_4_s() {
    let r = Rudis::start(&["--notify-keyspace-events", "Eh"]);
    let mut sub = r.raw();
    sub.send(&["SUBSCRIBE", "__keyevent@0__:hset", "__keyevent@0__:hexpire"]);
    sub.read_reply();
    sub.read_reply();
    for ch in ["hpersist", "hexpired", "hdel"] {
        sub.send(&["SUBSCRIBE", &format!("__keyevent@0__:{ch}")]);
        sub.read_reply();
    }
    let mut c = r.raw();
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Egh"]);
    sub.send(&["SUBSCRIBE", "__keyevent@0__:del"]);
    sub.read_reply();
    for cmd in [
        &["HSET", "n", "a", "1", "b", "2"][..],
        &["HEXPIRE", "n", "100", "FIELDS", "1", "a"],
        &["HEXPIRE", "n", "100", "NX", "FIELDS", "1", "a"],
        &["HPERSIST", "n", "FIELDS", "1", "a"],
        &["HPERSIST", "n", "FIELDS", "1", "a"],
        &["HPEXPIRE", "n", "1", "FIELDS", "1", "b"],
    ] {
        c.cmd(cmd);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    c.cmd(&["HSET", "n", "c", "1"]);
    c.cmd(&["HEXPIRE", "n", "0", "FIELDS", "1", "c"]);
    c.cmd(&["HSET", "d", "a", "1"]);
    c.cmd(&["HEXPIRE", "d", "0", "FIELDS", "1", "a"]);
    let mut got = Vec::new();
    for _ in 0..9 {
        let push = String::from_utf8_lossy(&sub.read_reply()).replace("\r\n", " ");
        got.push(
            push.split("__keyevent@0__:")
                .nth(1)
                .unwrap_or(&push)
                .to_string(),
        );
    }
    let want = [
        "hset $1 n ",
        "hexpire $1 n ",
        "hpersist $1 n ",
        "hexpire $1 n ",
        "hexpired $1 n ",
        "hset $1 n ",
        "hdel $1 n ",
        "hset $1 d ",
        "hdel $1 d ",
    ];
    assert_eq!(got, want);
    assert_eq!(
        common::show(&sub.read_reply()),
        common::show(b"*3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:del\r\n$1\r\nd\r\n")
    );
}

/// What each command does with a field past its deadline that nothing removed yet, as Redis
/// 7.4.1 does (its unit/type/hash-field-expire, lazy expiry): HDEL still deletes it, HINCRBY
/// starts it again from 0 without a deadline, HRANDFIELD removes every such field (the key
/// with the last); INFO counts them (`expired_subkeys`) and the hashes that have deadlines
/// (`subexpiry`, absent when there are none, as in Redis 7.0's INFO).
#[test]
fn fields_past_their_deadline_meet_each_command_as_in_redis_7_4() {
    let r = Rudis::start(&["--enable-debug-command", "yes"]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), b"+OK\r\n");
    c.cmd(&["HSET", "h1", "01", "01"]);
    c.cmd(&["HSET", "h4", "1", "99", "2", "99"]);
    c.cmd(&["HSET", "r", "f1", "v1", "f2", "v2", "f3", "v3"]);
    let keyspace = |c: &mut common::Raw| {
        let info = String::from_utf8_lossy(&c.cmd(&["INFO", "keyspace"])).into_owned();
        info.lines()
            .find(|l| l.starts_with("db0:"))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        !keyspace(&mut c).contains("subexpiry"),
        "{}",
        keyspace(&mut c)
    );
    c.cmd(&["HPEXPIRE", "h1", "1", "FIELDS", "1", "01"]);
    c.cmd(&["HPEXPIRE", "h4", "1", "FIELDS", "1", "2"]);
    c.cmd(&["HPEXPIRE", "r", "1", "FIELDS", "2", "f1", "f2"]);
    assert!(
        keyspace(&mut c).ends_with(",subexpiry=3"),
        "{}",
        keyspace(&mut c)
    );
    std::thread::sleep(std::time::Duration::from_millis(10));
    c.cmd(&["CONFIG", "RESETSTAT"]);
    assert_eq!(c.cmd(&["HDEL", "h1", "01"]), b":1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "h1"]), b":0\r\n");
    assert_eq!(c.cmd(&["HINCRBY", "h4", "2", "1"]), b":1\r\n");
    assert_eq!(c.cmd(&["HTTL", "h4", "FIELDS", "1", "2"]), b"*1\r\n:-1\r\n");
    assert_eq!(common::info_number(&mut c, "stats", "expired_subkeys"), 1);
    assert_eq!(c.cmd(&["HRANDFIELD", "r", "5"]), b"*1\r\n$2\r\nf3\r\n");
    assert_eq!(common::info_number(&mut c, "stats", "expired_subkeys"), 3);
    assert_eq!(c.cmd(&["HLEN", "r"]), b":1\r\n");
    c.cmd(&["HPEXPIRE", "r", "1", "FIELDS", "1", "f3"]);
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert_eq!(c.cmd(&["HRANDFIELD", "r"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "r"]), b":0\r\n");
}
