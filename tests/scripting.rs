//! Scripts against the running server: a long script makes others answer BUSY until SCRIPT KILL
//! stops it (and one that wrote cannot be killed); a script touching keys it did not declare
//! stays atomic against writers on other workers, and waits for one another client holds even
//! after it has written; scripted writes and function libraries
//! survive a restart and BGREWRITEAOF, and a real redis-server loads the AOF to the same data.
mod aofutil;
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aofutil::{redis_loading, wait_log};
use common::{show, Raw, Rudis};
use rudis::resp::Frame;

const BUSY: &[u8] =
    b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";

/// Sends `cmd` until it answers something other than `reply`, for at most `secs`.
fn wait_until_not(c: &mut Raw, cmd: &[&str], reply: &[u8], secs: u64) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = c.cmd(cmd);
        if r != reply || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_long_script_makes_others_busy_until_script_kill() {
    let r = Rudis::start(&["--workers", "4", "--busy-reply-threshold", "200"]);
    let mut runner = r.raw();
    runner.send(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"]);
    let mut other = r.raw();
    // Before the threshold the others wait on nothing (they touch no key of the script's).
    let first = wait_until_not(&mut other, &["PING"], b"+PONG\r\n", 5);
    assert_eq!(first, BUSY, "{}", show(&first));
    assert_eq!(other.cmd(&["GET", "x"]), BUSY);
    // FUNCTION STATS refuses while an EVAL runs, as Redis does.
    assert!(other.cmd(&["FUNCTION", "STATS"]).starts_with(b"-BUSY"));
    assert_eq!(
        other.cmd(&["FUNCTION", "KILL"]),
        BUSY,
        "FUNCTION KILL cannot stop an EVAL"
    );
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n");
    let reply = runner.read_reply();
    assert!(
        reply.starts_with(b"-ERR Script killed by user with SCRIPT KILL..."),
        "{}",
        show(&reply)
    );
    assert_eq!(other.cmd(&["SET", "x", "1"]), b"+OK\r\n");
    assert_eq!(runner.cmd(&["GET", "x"]), b"$1\r\n1\r\n");
    assert_eq!(
        other.cmd(&["SCRIPT", "KILL"]),
        b"-NOTBUSY No scripts in execution right now.\r\n"
    );
    // A pcall inside the script cannot catch the kill.
    runner.send(&[
        "EVAL",
        "while true do pcall(function() while true do end end) end",
        "0",
    ]);
    assert_eq!(wait_until_not(&mut other, &["PING"], b"+PONG\r\n", 5), BUSY);
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n");
    assert!(runner.read_reply().starts_with(b"-ERR Script killed"));
    assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_script_that_wrote_cannot_be_killed() {
    let r = Rudis::start(&["--workers", "4", "--busy-reply-threshold", "100"]);
    let mut runner = r.raw();
    // Writes, then loops until its deadline (1.5 s): SCRIPT KILL must not stop it.
    runner.send(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'partial') local t = redis.call('time') \
         local stop = tonumber(t[1]) + 2 \
         while tonumber(redis.call('time')[1]) < stop do end \
         redis.call('set', KEYS[1], 'done') return 'finished'",
        "1",
        "w",
    ]);
    let mut other = r.raw();
    let busy = wait_until_not(&mut other, &["PING"], b"+PONG\r\n", 5);
    assert_eq!(busy, BUSY, "{}", show(&busy));
    let kill = other.cmd(&["SCRIPT", "KILL"]);
    assert!(
        kill.starts_with(
            b"-UNKILLABLE Sorry the script already executed write commands against the dataset."
        ),
        "{}",
        show(&kill)
    );
    assert_eq!(runner.read_reply(), b"$8\r\nfinished\r\n");
    assert_eq!(other.cmd(&["GET", "w"]), b"$4\r\ndone\r\n");
}

#[test]
fn a_long_function_is_stopped_by_function_kill() {
    let r = Rudis::start(&["--workers", "4", "--busy-reply-threshold", "100"]);
    let mut c = r.raw();
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), b"$4\r\nspin\r\n");
    c.send(&["FCALL", "spin", "0"]);
    let mut other = r.raw();
    let busy = wait_until_not(&mut other, &["PING"], b"+PONG\r\n", 5);
    assert!(
        busy.starts_with(b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL"),
        "{}",
        show(&busy)
    );
    let stats = show(&other.cmd(&["FUNCTION", "STATS"]));
    assert!(
        stats.contains("spin") && stats.contains("duration_ms"),
        "{stats}"
    );
    assert!(other.cmd(&["SCRIPT", "KILL"]).starts_with(b"-BUSY"));
    assert_eq!(other.cmd(&["FUNCTION", "KILL"]), b"+OK\r\n");
    assert!(c.read_reply().starts_with(b"-ERR Script killed"));
    assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
}

/// A script that reads and rewrites keys it never declares (numkeys 0) while other clients,
/// on other workers, write the same keys: each script run sees and leaves a consistent state.
/// Moves one unit from `from` to `to` in a transaction.
fn transfer(c: &mut Raw, from: &str, to: &str) {
    c.cmd(&["MULTI"]);
    c.cmd(&["DECR", from]);
    c.cmd(&["INCR", to]);
    let reply = c.cmd(&["EXEC"]);
    assert!(reply.starts_with(b"*2"), "{}", show(&reply));
}

#[test]
fn undeclared_keys_stay_atomic_against_other_writers() {
    let r = Rudis::start(&["--workers", "4"]);
    let mut c = r.raw();
    let keys: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    for k in &keys {
        c.cmd(&["SET", k, "0"]);
    }
    // Moves one unit from every key to the next and checks the sum is unchanged, twice:
    // another client's write between its reads would break the check.
    let script = "local keys = {} for i = 0, 7 do keys[#keys+1] = 'u' .. i end \
        local function sum() local s = 0 for _, k in ipairs(keys) do \
        s = s + tonumber(redis.call('get', k)) end return s end \
        local before = sum() \
        for i = 1, #keys do redis.call('incrby', keys[i], 1) \
        redis.call('decrby', keys[(i % #keys) + 1], 1) end \
        local after = sum() if before ~= after then return redis.error_reply('torn') end \
        return after";
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let port = r.port;
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Each MULTI adds +1 and -1: sums stay constant for consistent readers.
                    let a = format!("u{}", (n + w) % 8);
                    let b = format!("u{}", (n + w + 3) % 8);
                    transfer(&mut c, &b, &a);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut runs = 0;
    while Instant::now() < deadline {
        let reply = c.cmd(&["EVAL", script, "0"]);
        assert_eq!(reply, b":0\r\n", "run {runs}: {}", show(&reply));
        runs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(runs > 10 && writes > 100, "runs {runs}, writes {writes}");
}

#[test]
fn scripted_writes_and_functions_survive_restart_and_rewrite() {
    let mut r = Rudis::start(&["--auto-aof-rewrite-percentage", "0"]);
    let mut c = r.raw();
    let lib = "#!lua name=counters\nredis.register_function('bump', function(keys, args) \
        redis.call('incrby', keys[1], args[1]) return redis.call('rpush', keys[2], args[1]) end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), b"$8\r\ncounters\r\n");
    let sha = String::from_utf8(c.cmd(&[
        "SCRIPT",
        "LOAD",
        "redis.call('incr', KEYS[1]) redis.call('select', 3) \
             redis.call('set', 'in3', ARGV[1]) redis.call('select', 0) \
             return redis.call('incr', KEYS[1])",
    ]))
    .unwrap();
    let sha = sha.lines().nth(1).unwrap().to_string();
    for i in 0..50 {
        c.cmd(&["EVALSHA", &sha, "1", "n", &format!("v{i}")]);
        c.cmd(&["FCALL", "bump", "2", "total", "list", &i.to_string()]);
    }
    // A script whose writes are not logged (set_repl) and a read-only one: nothing to replay.
    c.cmd(&[
        "EVAL",
        "redis.set_repl(redis.REPL_NONE) return redis.call('set', 'unlogged', 1)",
        "0",
    ]);
    c.cmd(&["EVAL_RO", "return redis.call('get', 'n')", "0"]);
    let expect = |c: &mut Raw| {
        assert_eq!(c.cmd(&["GET", "n"]), b"$3\r\n100\r\n");
        assert_eq!(c.cmd(&["GET", "total"]), b"$4\r\n1225\r\n");
        assert_eq!(c.cmd(&["LLEN", "list"]), b":50\r\n");
        assert_eq!(
            c.cmd(&["FCALL", "bump", "2", "total", "list", "0"]),
            b":51\r\n"
        );
        c.cmd(&["RPOP", "list"]);
        c.cmd(&["SELECT", "3"]);
        assert_eq!(c.cmd(&["GET", "in3"]), b"$3\r\nv49\r\n");
        c.cmd(&["SELECT", "0"]);
    };
    expect(&mut c);
    let aof = std::fs::read(r.aof_path()).unwrap();
    let text = String::from_utf8_lossy(&aof);
    assert!(
        !text.contains("EVALSHA") && !text.contains("FCALL"),
        "{text}"
    );
    assert!(
        text.contains("MULTI") && text.contains("FUNCTION"),
        "{text}"
    );
    assert!(!text.contains("unlogged"), "{text}");

    r.restart();
    let mut c = r.raw();
    expect(&mut c);
    // The same data through a real redis-server reading the file.
    let (redis, _dir) = redis_loading(&r.aof_path());
    let mut rc = redis.raw();
    expect(&mut rc);
    drop(rc);
    drop(redis);

    assert!(c.cmd(&["BGREWRITEAOF"]).starts_with(b"+"));
    wait_log(&r, "Background AOF rewrite finished successfully", 1, 20);
    let rewritten = String::from_utf8_lossy(&std::fs::read(r.aof_path()).unwrap()).into_owned();
    assert!(rewritten.contains("counters"), "{rewritten}");
    r.restart();
    let mut c = r.raw();
    expect(&mut c);
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", lib]),
        b"-ERR Library 'counters' already exists\r\n"
    );
    let (redis, _dir) = redis_loading(&r.aof_path());
    expect(&mut redis.raw());
}

#[test]
fn functions_dump_and_restore_with_a_real_redis() {
    let r = Rudis::start(&[]);
    let redis = common::RealRedis::start(&[]);
    let lib = "#!lua name=dumped\nredis.register_function('hello', function() return 'hi from a restored library, long enough to be compressed by redis' end)";
    let mut c = r.raw();
    let mut rc = redis.raw();
    assert!(rc.cmd(&["FUNCTION", "LOAD", lib]).starts_with(b"$6"));
    // Redis's payload (LZF-compressed code) restores here, and ours there.
    let theirs = rc.frame(&["FUNCTION", "DUMP"]);
    let rudis::resp::Frame::Bulk(theirs) = theirs else {
        panic!("{theirs:?}")
    };
    assert_eq!(c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &theirs]), b"+OK\r\n");
    assert!(c
        .cmd(&["FCALL", "hello", "0"])
        .starts_with(b"$65\r\nhi from"));
    let rudis::resp::Frame::Bulk(ours) = c.frame(&["FUNCTION", "DUMP"]) else {
        panic!()
    };
    assert_eq!(
        rc.cmd(&[&b"FUNCTION"[..], b"RESTORE", &ours]),
        b"-ERR Library dumped already exists\r\n"
    );
    assert_eq!(
        rc.cmd(&[&b"FUNCTION"[..], b"RESTORE", &ours, b"FLUSH"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &ours]),
        b"-ERR Library dumped already exists\r\n"
    );
    assert_eq!(
        c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &ours, b"REPLACE"]),
        b"+OK\r\n"
    );
    let mut bad = ours.clone();
    bad[5] ^= 1;
    assert_eq!(
        c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &bad]),
        b"-ERR DUMP payload version or checksum are wrong\r\n"
    );
}

/// Two keys in different shards.
fn keys_in_two_shards() -> (String, String) {
    let a = "held".to_string();
    let b = (0..)
        .map(|i| format!("other{i}"))
        .find(|k| rudis::store::shard_of(k.as_bytes()) != rudis::store::shard_of(a.as_bytes()))
        .unwrap();
    (a, b)
}

/// A script reaching an undeclared key whose shard another script holds: with nothing written
/// yet, or having written, it waits for the holder and goes on (never Redis-unknown errors),
/// and its effects are one unit in the AOF.
#[test]
fn an_undeclared_key_held_elsewhere_waits_for_it() {
    let r = Rudis::start(&["--workers", "4"]);
    let (held, other) = keys_in_two_shards();
    let mut c = r.raw();
    c.cmd(&["SET", &held, "before"]);
    let hold = |r: &Rudis, held: &str| {
        let mut h = r.raw();
        // Holds `held`'s shard for about 400 ms, then changes it.
        h.send(&[
            "EVAL",
            "local t0 = redis.call('time') local stop = t0[1] * 1000000 + t0[2] + 400000 \
             while true do local t = redis.call('time') if t[1] * 1000000 + t[2] > stop then break end end \
             return redis.call('set', KEYS[1], 'after')",
            "1",
            held,
        ]);
        std::thread::sleep(Duration::from_millis(100));
        h
    };
    let mut h = hold(&r, &held);
    let reader = format!("return redis.call('get', '{held}')");
    // Waits for the holder, then reads what it left.
    assert_eq!(c.cmd(&["EVAL", &reader, "0"]), b"$5\r\nafter\r\n");
    assert_eq!(h.read_reply(), b"+OK\r\n");
    // The same for an EVAL_RO (it holds no token: it runs again with every shard).
    c.cmd(&["SET", &held, "before"]);
    let mut h = hold(&r, &held);
    assert_eq!(c.cmd(&["EVAL_RO", &reader, "0"]), b"$5\r\nafter\r\n");
    assert_eq!(h.read_reply(), b"+OK\r\n");

    for round in 0..2 {
        c.cmd(&["SET", &held, "before"]);
        let mut h = hold(&r, &held);
        // Has written `other` before it reaches `held`: it waits all the same.
        let writer = format!(
            "redis.call('set', '{other}', 'w{round}') \
             return redis.call('append', '{held}', '+{round}')"
        );
        assert_eq!(c.cmd(&["EVAL", &writer, "0"]), b":7\r\n", "round {round}");
        assert_eq!(h.read_reply(), b"+OK\r\n");
        assert_eq!(
            c.cmd(&["GET", &held]),
            format!("$7\r\nafter+{round}\r\n").as_bytes()
        );
    }
    let aof = String::from_utf8_lossy(&std::fs::read(r.aof_path()).unwrap()).into_owned();
    assert!(aof.contains("MULTI") && aof.contains("+1"), "{aof}");
}

/// Many clients on several workers run scripts that write a declared key and then move
/// amounts between keys they did not declare (in random order, so that the shards they reach
/// lie before and after those they hold), beside transactions and multi-key commands doing
/// the same, and read-only scripts: every script succeeds, no one sees the total change, and
/// the AOF replays, in rudis and in redis-server, to the same data.
#[test]
fn undeclared_keys_after_writes_always_succeed_and_stay_atomic() {
    const ACCOUNTS: usize = 24;
    const TOTAL: i64 = 100 * ACCOUNTS as i64;
    let mut r = Rudis::start(&["--workers", "4"]);
    let mut c = r.raw();
    for i in 0..ACCOUNTS {
        c.cmd(&["SET", &format!("acct{i}"), "100"]);
    }
    // KEYS[1]: the declared key; ARGV: a seed. Writes KEYS[1] first, then moves amounts among
    // undeclared accounts, logs the move to an undeclared list, and checks the total.
    let script = format!(
        "redis.call('incr', KEYS[1]) \
         local seed = tonumber(ARGV[1]) local n = {ACCOUNTS} \
         for j = 1, 4 do \
           local a = 'acct' .. ((seed * 7 + j * 5) % n) \
           local b = 'acct' .. ((seed * 11 + j * 3 + 1) % n) \
           redis.call('decrby', a, j) redis.call('incrby', b, j) \
         end \
         redis.call('rpush', 'moves', seed) \
         local s = 0 for i = 0, n - 1 do s = s + tonumber(redis.call('get', 'acct' .. i)) end \
         if s ~= {TOTAL} then return redis.error_reply('torn ' .. s) end \
         return s"
    );
    let ro = format!(
        "local s = 0 for i = 0, {} do s = s + tonumber(redis.call('get', 'acct' .. i)) end \
         return s",
        ACCOUNTS - 1
    );
    let stop = Arc::new(AtomicBool::new(false));
    let spawn = |f: Box<dyn FnOnce(Raw, Arc<AtomicBool>) -> u64 + Send>| {
        let raw = r.raw();
        let stop = stop.clone();
        std::thread::spawn(move || f(raw, stop))
    };
    let mut threads = Vec::new();
    for t in 0..6u64 {
        let script = script.clone();
        threads.push(spawn(Box::new(move |mut c, stop| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let seed = (t * 1_000_003 + n * 31) % 9973;
                let reply = c.cmd(&["EVAL", &script, "1", &format!("runs{t}"), &seed.to_string()]);
                assert_eq!(
                    reply,
                    format!(":{TOTAL}\r\n").as_bytes(),
                    "{}",
                    show(&reply)
                );
                n += 1;
            }
            n
        })));
    }
    for t in 0..2u64 {
        let ro = ro.clone();
        threads.push(spawn(Box::new(move |mut c, stop| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let cmd = if n.is_multiple_of(2) {
                    "EVAL_RO"
                } else {
                    "EVAL"
                };
                let reply = c.cmd(&[cmd, &ro, "0"]);
                assert_eq!(
                    reply,
                    format!(":{TOTAL}\r\n").as_bytes(),
                    "{}",
                    show(&reply)
                );
                n += 1 + t;
            }
            n
        })));
    }
    for t in 0..3u64 {
        threads.push(spawn(Box::new(move |mut c, stop| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let a = format!("acct{}", (n * 5 + t) % ACCOUNTS as u64);
                let b = format!("acct{}", (n * 13 + t + 2) % ACCOUNTS as u64);
                if n.is_multiple_of(3) {
                    // Several shards at once: a reader of every account, and an MSET of others.
                    let keys: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct{i}")).collect();
                    let mut args = vec!["MGET".to_string()];
                    args.extend(keys);
                    let reply = c.frame(&args);
                    let sum: i64 = match reply {
                        Frame::Array(v) => v
                            .iter()
                            .map(|x| match x {
                                Frame::Bulk(b) => {
                                    std::str::from_utf8(b).unwrap().parse::<i64>().unwrap()
                                }
                                other => panic!("{other:?}"),
                            })
                            .sum(),
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(sum, TOTAL);
                    c.cmd(&[
                        "MSET",
                        &format!("m{t}a"),
                        &n.to_string(),
                        "m-b",
                        &n.to_string(),
                    ]);
                } else {
                    transfer(&mut c, &a, &b);
                }
                n += 1;
            }
            n
        })));
    }
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let scripts: u64 = counts[..6].iter().sum();
    assert!(
        scripts > 50 && counts[8..].iter().sum::<u64>() > 50,
        "{counts:?}"
    );

    let state = |c: &mut Raw| {
        let mut out: Vec<Vec<u8>> = (0..ACCOUNTS)
            .map(|i| c.cmd(&["GET", &format!("acct{i}")]))
            .collect();
        out.extend((0..6).map(|t| c.cmd(&["GET", &format!("runs{t}")])));
        out.push(c.cmd(&["LRANGE", "moves", "0", "-1"]));
        out.push(c.cmd(&["MGET", "m0a", "m1a", "m2a", "m-b"]));
        out
    };
    let before = state(&mut c);
    assert_eq!(
        c.cmd(&["LLEN", "moves"]),
        format!(":{scripts}\r\n").as_bytes()
    );
    drop(c);
    r.restart();
    assert_eq!(state(&mut r.raw()), before);
    let (redis, _dir) = redis_loading(&r.aof_path());
    assert_eq!(state(&mut redis.raw()), before);
}

#[test]
fn shutdown_nosave_ends_a_script_that_wrote() {
    let mut r = Rudis::start(&["--workers", "4", "--busy-reply-threshold", "100"]);
    let mut c = r.raw();
    c.cmd(&["SET", "before", "1"]);
    let mut runner = r.raw();
    runner.send(&[
        "EVAL",
        "redis.call('set', 'partial', 1) while true do end",
        "0",
    ]);
    let mut other = r.raw();
    assert_eq!(wait_until_not(&mut other, &["PING"], b"+PONG\r\n", 5), BUSY);
    assert!(other.cmd(&["SCRIPT", "KILL"]).starts_with(b"-UNKILLABLE"));
    assert_eq!(other.cmd(&["SHUTDOWN"]), BUSY);
    other.send(&["SHUTDOWN", "NOSAVE"]);
    // Once the connection has ended, the port refuses: the listener goes first (Redis's
    // unit/scripting connects straight after).
    let mut buf = [0u8; 1];
    let _ = std::io::Read::read(&mut other.stream, &mut buf);
    assert!(std::net::TcpStream::connect(("127.0.0.1", r.port)).is_err());
    let status = aofutil::wait_exit(&mut r, 10);
    assert!(status.success(), "{status:?}");
    // Started again: what was logged before the script is there, the script's write is not.
    r.restart();
    let mut c = r.raw();
    assert_eq!(c.cmd(&["GET", "before"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "partial"]), b":0\r\n");
}

/// Clients whose commands wait on the locks of a script that then runs long get BUSY instead of
/// holding their workers for ever: with every worker waiting so, SCRIPT KILL still gets through.
#[test]
fn commands_waiting_on_a_long_script_give_up_with_busy() {
    let r = Rudis::start(&["--workers", "2", "--busy-reply-threshold", "300"]);
    let mut runner = r.raw();
    runner.send(&["EVAL", "while true do end", "1", "k"]);
    std::thread::sleep(Duration::from_millis(50));
    let mut waiters: Vec<Raw> = (0..4).map(|_| r.raw()).collect();
    for w in &mut waiters {
        w.send(&["GET", "k"]);
    }
    for w in &mut waiters {
        let reply = w.read_reply();
        assert_eq!(reply, BUSY, "{}", show(&reply));
    }
    let mut other = r.raw();
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n");
    assert!(runner.read_reply().starts_with(b"-ERR Script killed"));
    assert_eq!(waiters[0].cmd(&["GET", "k"]), b"$-1\r\n");
}

/// A script returning a table that holds itself: Redis replies nested arrays down to Lua's
/// stack limit, then `-ERR reached lua stack limit`; rudis sends the same bytes (it had
/// overflowed a worker's stack and died), and both go on serving the connection.
#[test]
fn a_self_holding_table_replies_as_redis_down_to_the_stack_limit() {
    use std::io::{Read, Write};
    let r = Rudis::start(&[]);
    let redis = common::RealRedis::start(&[]);
    let body = "local a = {} local b = {a} a[1] = b return a";
    let request = format!(
        "*3\r\n$4\r\nEVAL\r\n${}\r\n{body}\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n",
        body.len()
    );
    let reply = |port: u16| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while !got.ends_with(b"+PONG\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        got
    };
    let (ours, theirs) = (reply(r.port), reply(redis.port));
    assert!(
        theirs.ends_with(b"*1\r\n-ERR reached lua stack limit\r\n+PONG\r\n"),
        "{}",
        show(&theirs[theirs.len() - 60..])
    );
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs);
}

/// INFO's error counters after one command: total_error_replies, errorstats, and each
/// command's calls, rejected_calls and failed_calls (not its times).
fn error_counters(c: &mut Raw) -> Vec<u8> {
    let info = c.frame(&["INFO", "ALL"]);
    let Frame::Bulk(text) = info else {
        panic!("INFO: {info:?}")
    };
    let mut kept = Vec::new();
    for line in String::from_utf8_lossy(&text).lines() {
        if line.starts_with("total_error_replies:") || line.starts_with("errorstat_") {
            kept.push(line.to_string());
        } else if let Some(rest) = line.strip_prefix("cmdstat_") {
            let fields: Vec<&str> = rest
                .split([':', ','])
                .filter(|f| !f.starts_with("usec"))
                .collect();
            kept.push(fields.join(","));
        }
    }
    // Redis lists commands in its hash order.
    kept.sort();
    kept.join("\n").into_bytes()
}

/// Redis's "Consistent eval error reporting": a script's error reply is a failed call of
/// EVAL (or FCALL), whether it is the script's own error (counted in the error statistics)
/// or a command's that the script raised or returned (counted once, when the command gave
/// it); an error the script caught with pcall and did not return is not.
#[test]
fn a_script_error_is_a_failed_call_as_in_redis() {
    let scripts: &[&[&str]] = &[
        &["EVAL", "return redis.call('set','x','y')", "1", "x"],
        &[
            "EVAL",
            "local t = redis.pcall('set','x','y') return 1",
            "1",
            "x",
        ],
        &["EVAL", "return redis.pcall('set','x','y')", "1", "x"],
        &["EVAL", "return redis.call('select',99)", "0"],
        &["EVAL", "local t = redis.pcall('select',99) return 1", "0"],
        &["EVAL", "return redis.pcall('select',99)", "0"],
        &["EVAL_RO", "return redis.call('set','x','y')", "1", "x"],
        &["EVAL", "return redis.call('incr','s')", "1", "s"],
        &["EVAL", "error('boom')", "0"],
        &["EVAL", "return redis.error_reply('MY code')", "0"],
        &["EVAL", "return {1, {err='inner'}}", "0"],
        &["EVAL", "return {err='my own'}", "0"],
        &[
            "EVAL",
            "return {err='AN_ERROR_CODE_OF_MORE_THAN_32_BYTES x'}",
            "0",
        ],
        &["EVAL", "return {1, redis.pcall('incr','s')}", "1", "s"],
        &["EVAL", "return 1 +", "0"],
        &["FCALL", "ok", "0"],
        &["FCALL", "bad", "1", "s"],
        &["FCALL", "nosuch", "0"],
    ];
    common::both(&[], |port| {
        let mut c = Raw::connect(port);
        c.cmd(&["SET", "s", "str"]);
        c.cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('ok', function() return 1 end)\n\
             redis.register_function('bad', function(k) return redis.call('incr', k[1]) end)",
        ]);
        let mut transcript = Vec::new();
        for (i, script) in scripts.iter().enumerate() {
            // The first three run out of memory, as Redis's test does.
            let maxmemory = if i < 3 { "1" } else { "0" };
            c.cmd(&["CONFIG", "SET", "maxmemory", maxmemory]);
            c.cmd(&["CONFIG", "RESETSTAT"]);
            transcript.push(c.cmd(script));
            transcript.push(error_counters(&mut c));
        }
        c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
        transcript
    });
}

/// SCRIPT FLUSH closes every thread's EVAL interpreter, and a change to the libraries every
/// functions interpreter, at once: what they held leaves INFO's used_memory_lua (Redis's
/// unit/scripting checks it under 100 KB after a flush), and scripts run again afterwards.
#[test]
fn flushing_frees_every_threads_interpreter() {
    let r = Rudis::start(&["--workers", "4"]);
    let mut clients: Vec<Raw> = (0..4).map(|_| r.raw()).collect();
    // Hundreds of compiled scripts on each connection's thread.
    for (n, c) in clients.iter_mut().enumerate() {
        let loads: Vec<Vec<String>> = (0..500)
            .map(|i| {
                let body =
                    format!("local t = {{}} for i = 1, 10 do t[i] = '{n}-{i}' end return #t");
                vec!["SCRIPT".into(), "LOAD".into(), body]
            })
            .collect();
        c.pipeline_ok(&loads);
    }
    let lua = |c: &mut Raw| common::info_number(c, "memory", "used_memory_lua");
    let before = lua(&mut clients[0]);
    assert!(before > 1_000_000, "used_memory_lua {before}");
    assert_eq!(clients[1].cmd(&["SCRIPT", "FLUSH"]), b"+OK\r\n");
    let after = lua(&mut clients[2]);
    assert!(
        after < 100 * 1024,
        "used_memory_lua {after} after SCRIPT FLUSH"
    );
    for c in clients.iter_mut() {
        assert_eq!(c.cmd(&["EVAL", "return 7", "0"]), b":7\r\n");
    }
    assert!(lua(&mut clients[0]) < 200 * 1024);

    // The same for the functions.
    let code = |n: usize| {
        let mut code = format!("#!lua name=lib{n}\n");
        for i in 0..300 {
            code.push_str(&format!(
                "redis.register_function('f{n}_{i}', function() return {i} end)\n"
            ));
        }
        code
    };
    for (n, c) in clients.iter_mut().enumerate() {
        assert!(c.cmd(&["FUNCTION", "LOAD", &code(n)]).starts_with(b"$"));
    }
    for (n, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.cmd(&["FCALL", &format!("f{n}_7"), "0"]), b":7\r\n");
    }
    let functions = |c: &mut Raw| common::info_number(c, "memory", "used_memory_vm_functions");
    let before = functions(&mut clients[0]);
    assert!(before > 250_000, "used_memory_vm_functions {before}");
    assert_eq!(clients[3].cmd(&["FUNCTION", "FLUSH"]), b"+OK\r\n");
    let after = functions(&mut clients[0]);
    assert!(
        after < 100 * 1024,
        "used_memory_vm_functions {after} after FUNCTION FLUSH"
    );
}

/// A debugging session (SCRIPT DEBUG SYNC, then EVAL) driven through every debugger command:
/// each step's reply (the arrays of log lines, the script's reply after `<endsession>`, then
/// the close).
fn debugger_transcript(port: u16, hello: &str, script: &str, steps: &[&[&str]]) -> Vec<Vec<u8>> {
    debugger_transcript_in(port, "SYNC", hello, script, steps)
}

/// `debugger_transcript` in SCRIPT DEBUG `mode`.
fn debugger_transcript_in(
    port: u16,
    mode: &str,
    hello: &str,
    script: &str,
    steps: &[&[&str]],
) -> Vec<Vec<u8>> {
    let mut c = Raw::connect(port);
    c.cmd(&["HELLO", hello]);
    let mut got = vec![c.cmd(&["SCRIPT", "DEBUG", mode])];
    got.push(c.cmd(&["EVAL", script, "1", "k", "val"]));
    for step in steps {
        c.send(step);
        let Some(r) = c.try_read_reply() else {
            got.push(b"<closed>".to_vec());
            return got;
        };
        let end = r.ends_with(b"+<endsession>\r\n");
        got.push(r);
        if end {
            got.push(c.read_reply());
            got.push(if c.is_closed() {
                b"<closed>".to_vec()
            } else {
                b"<open>".to_vec()
            });
            return got;
        }
    }
    got
}

const DEBUGGED: &str =
    "local a = 1\nlocal t = {1,2,'x',{y=true}}\nredis.call('set', KEYS[1], ARGV[1])\n\
redis.debug('hi', t, a)\nlocal v = redis.call('get', KEYS[1])\nredis.breakpoint()\n\
redis.setresp(3)\nlocal h = redis.pcall('hgetall', 'h')\nreturn v\n";

#[test]
fn the_debugger_converses_as_redis_does() {
    let big = "x".repeat(300);
    let steps: &[&[&str]] = &[
        &["help"],
        &["s"],
        &["p"],
        &["print", "t"],
        &["p", "KEYS"],
        &["p", "ARGV"],
        &["p", "nosuch"],
        &["l"],
        &["list", "3", "1"],
        &["b", "5"],
        &["b", "8"],
        &["b"],
        &["b", "99"],
        &["b", "x"],
        &["b", "-8"],
        &["b", "-8"],
        &["w"],
        &["t"],
        &["e", "1+1"],
        &["e", "{1,'a'}"],
        &["e", "nosuch()"],
        &["e", "return ("],
        &["r", "incr", "n"],
        &["r", "nosuch"],
        &["r", "hset", "h", "f", "v"],
        &["r", "hgetall", "h"],
        &["redis", "set", "big", &big],
        &["r", "get", "big"],
        &["m"],
        &["m", "10"],
        &["r", "get", "big"],
        &["m", "0"],
        &["r", "get", "big"],
        &["hello\0world"],
        &["\0step"],
        &["r"],
        &["s"],
        &["n"],
        &["c"],
        &["p"],
        &["s"],
        &["s"],
        &["s"],
        &["s"],
        &["c"],
    ];
    for hello in ["2", "3"] {
        let t = common::both(&[], |port| {
            debugger_transcript(port, hello, DEBUGGED, steps)
        });
        assert!(
            t.iter().any(|r| r == b"$3\r\nval\r\n"),
            "the script's reply after the session: {:?}",
            t.iter().map(|r| show(r)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_debugger_aborts_and_refuses_as_redis_does() {
    common::both(&[], |port| {
        let mut got = debugger_transcript(
            port,
            "2",
            "redis.call('set','a','1')\nreturn 1",
            &[&["abort"]],
        );
        // The write before the abort stays (synchronous mode keeps changes).
        let mut c = Raw::connect(port);
        got.push(c.cmd(&["GET", "a"]));
        got.push(c.cmd(&["SCRIPT", "DEBUG", "maybe"]));
        got.push(c.cmd(&["SCRIPT", "DEBUG", "SYNC"]));
        got.push(c.cmd(&["EVALSHA", "0000000000000000000000000000000000000000", "0"]));
        got.push(c.cmd(&["SCRIPT", "DEBUG", "NO"]));
        got.push(c.cmd(&["EVAL", "return 7", "0"]));
        // Replies still waiting: refused.
        c.send_raw(b"*1\r\n$4\r\nPING\r\n*3\r\n$6\r\nSCRIPT\r\n$5\r\nDEBUG\r\n$4\r\nSYNC\r\n");
        got.push(c.read_reply());
        got.push(c.read_reply());
        // A protocol error from the debugging client ends the script with it.
        let mut d = Raw::connect(port);
        d.cmd(&["SCRIPT", "DEBUG", "SYNC"]);
        got.push(d.cmd(&["EVAL", "return 1", "0"]));
        d.send_raw(b"step\r\n");
        got.push(d.read_reply());
        got.push(d.read_reply());
        // The stack holds a hundred arguments for a debugger `redis` call.
        let mut e = Raw::connect(port);
        e.cmd(&["SCRIPT", "DEBUG", "SYNC"]);
        got.push(e.cmd(&["EVAL", "return 1", "0"]));
        let mut hundred = vec!["redis"];
        hundred.extend(["test"; 99]);
        got.push(e.cmd(&hundred));
        got
    });
}

#[test]
fn a_forked_session_converses_as_redis_and_its_changes_go() {
    let steps: &[&[&str]] = &[
        &["s"],
        &["s"],
        &["r", "incr", "n"],
        &["p"],
        &["b", "8"],
        &["c"],
        &["s"],
        &["c"],
    ];
    common::both(&[], |port| {
        let mut c = Raw::connect(port);
        c.cmd(&["SET", "n", "41"]);
        let mut got = debugger_transcript_in(port, "YES", "3", DEBUGGED, steps);
        // The session's writes were the child's: the server's data is as it was.
        got.push(c.cmd(&["GET", "k"]));
        got.push(c.cmd(&["GET", "n"]));
        got.push(c.cmd(&["EXISTS", "h"]));
        got
    });
}

#[test]
fn the_server_serves_on_while_a_forked_session_waits() {
    let rudis = Rudis::start(&["--busy-reply-threshold", "100"]);
    let mut c = rudis.raw();
    c.cmd(&["SET", "k", "before"]);
    let mut d = rudis.raw();
    assert_eq!(d.cmd(&["SCRIPT", "DEBUG", "YES"]), b"+OK\r\n");
    let stop = d.cmd(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'debugged')\nreturn 1",
        "1",
        "k",
    ]);
    assert!(show(&stop).contains("Stopped at 1"), "{}", show(&stop));
    assert!(d.cmd(&["s"]).starts_with(b"*"));
    // Past the threshold, the server still answers everyone, the script's key too, with
    // the data it had.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.cmd(&["GET", "k"]), b"$6\r\nbefore\r\n");
    assert_eq!(c.cmd(&["SET", "k", "after"]), b"+OK\r\n");
    assert_eq!(
        c.cmd(&["SCRIPT", "KILL"]),
        b"-NOTBUSY No scripts in execution right now.\r\n"
    );
    let log = rudis.log();
    let pid: i32 = log
        .split("Redis forked for debugging eval (child ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no fork in the log: {log}"));
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(common::info_number(&mut c, "stats", "total_forks"), 1);
    // The session ends with its reply; the child is reaped, the data untouched by it.
    let logs = d.cmd(&["c"]);
    assert!(show(&logs).contains("<endsession>"), "{}", show(&logs));
    assert_eq!(d.read_reply(), b":1\r\n");
    assert!(d.is_closed());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "child {pid} not reaped"
    );
    assert_eq!(c.cmd(&["GET", "k"]), b"$5\r\nafter\r\n");
}

#[test]
fn shutdown_kills_forked_sessions() {
    let mut rudis = Rudis::start(&[]);
    let mut d = rudis.raw();
    d.cmd(&["SCRIPT", "DEBUG", "YES"]);
    let stop = d.cmd(&["EVAL", "return 1", "0"]);
    assert!(show(&stop).contains("Stopped at 1"), "{}", show(&stop));
    let mut c = rudis.raw();
    c.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(c.is_closed());
    let _ = rudis.child.wait();
    // The child went with the server: the debugging client's connection is closed.
    assert!(d.is_closed());
    assert!(
        rudis.log().contains("Killing debugging session"),
        "{}",
        rudis.log()
    );
}

#[test]
fn a_debugging_session_lets_others_run_and_script_kill_ends_it() {
    let rudis = Rudis::start(&["--busy-reply-threshold", "300"]);
    let mut d = rudis.raw();
    assert_eq!(d.cmd(&["SCRIPT", "DEBUG", "SYNC"]), b"+OK\r\n");
    let stop = d.cmd(&[
        "EVAL",
        "local x = redis.call('get', KEYS[1])\nreturn x",
        "1",
        "held",
    ]);
    assert!(show(&stop).contains("Stopped at 1"), "{}", show(&stop));
    // Until the threshold, clients that do not need the script's keys are served.
    let mut other = rudis.raw();
    let started = Instant::now();
    assert_eq!(other.cmd(&["SET", "free", "1"]), b"+OK\r\n");
    assert!(started.elapsed() < Duration::from_millis(300));
    // Past it, everyone is told the server is busy, and SCRIPT KILL ends the session.
    let busy = wait_until_not(&mut other, &["PING"], b"+PONG\r\n", 10);
    assert_eq!(busy, BUSY);
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n");
    let logs = d.read_reply();
    assert!(show(&logs).contains("<endsession>"), "{}", show(&logs));
    let reply = d.read_reply();
    assert!(
        show(&reply).contains("Script killed by user with SCRIPT KILL"),
        "{}",
        show(&reply)
    );
    assert!(d.is_closed());
    assert_eq!(
        wait_until_not(&mut other, &["PING"], BUSY, 10),
        b"+PONG\r\n"
    );
}

#[test]
fn a_debugging_client_that_leaves_lets_its_script_finish() {
    let rudis = Rudis::start(&[]);
    let mut d = rudis.raw();
    d.cmd(&["SCRIPT", "DEBUG", "SYNC"]);
    let stop = d.cmd(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'done')\nreturn 1",
        "1",
        "k",
    ]);
    assert!(show(&stop).contains("Stopped at 1"), "{}", show(&stop));
    drop(d);
    let mut c = rudis.raw();
    assert_eq!(
        wait_until_not(&mut c, &["GET", "k"], b"$-1\r\n", 10),
        b"$4\r\ndone\r\n"
    );
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
}
