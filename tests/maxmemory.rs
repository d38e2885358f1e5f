//! maxmemory and the eviction policies against the real binary: which keys each policy
//! removes (on crafted access patterns and deadlines), OOM under noeviction (plain, in MULTI,
//! in a script), a lowered limit evicting before CONFIG SET answers, evictions as DELs in the
//! AOF and as `evicted` events, OBJECT IDLETIME / FREQ.
mod common;

use common::{info_number as info_field, show, Raw, Rudis};

fn used(c: &mut Raw) -> u64 {
    info_field(c, "memory", "used_memory")
}

fn int(reply: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(reply);
    s.trim()
        .strip_prefix(':')
        .unwrap_or_else(|| panic!("not an integer: {s}"))
        .parse()
        .unwrap()
}

/// `n` keys `prefix:i` of 1000 bytes each, `extra` appended to each SET.
fn fill(c: &mut Raw, prefix: &str, n: usize, extra: &[&str]) {
    let value = "v".repeat(1000);
    let cmds: Vec<Vec<String>> = (0..n)
        .map(|i| {
            let mut cmd = vec!["SET".to_string(), format!("{prefix}:{i}"), value.clone()];
            cmd.extend(extra.iter().map(|s| s.to_string()));
            cmd
        })
        .collect();
    c.pipeline_ok(&cmds);
}

fn exists(c: &mut Raw, key: &str) -> bool {
    int(&c.cmd(&["EXISTS", key])) == 1
}

fn surviving(c: &mut Raw, prefix: &str, n: usize) -> usize {
    (0..n)
        .filter(|i| exists(c, &format!("{prefix}:{i}")))
        .count()
}

/// Lowers maxmemory to `bytes` under the current usage; CONFIG SET evicts before answering.
fn lower_by(c: &mut Raw, bytes: u64) -> u64 {
    let limit = used(c) - bytes;
    let ok = c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    assert_eq!(ok, b"+OK\r\n");
    limit
}

#[test]
fn noeviction_refuses_writes_that_grow_memory_but_not_reads_or_deletes() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    fill(&mut c, "k", 100, &[]);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1"]), b"+OK\r\n");
    let oom = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(c.cmd(&["SET", "x", "y"]), oom);
    assert_eq!(c.cmd(&["LPUSH", "l", "a"]), oom);
    assert!(c.cmd(&["GET", "k:1"]).starts_with(b"$1000\r\n"));
    assert_eq!(c.cmd(&["DEL", "k:1"]), b":1\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]), b":99\r\n");
    // In MULTI every queued command is refused, and EXEC discards the transaction.
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k:2"]), oom);
    assert_eq!(
        c.cmd(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    // A script's first write that may grow memory fails; its reads run.
    let e = c.cmd(&["EVAL", "return redis.call('set','x','y')", "0"]);
    assert!(e.starts_with(b"-OOM command not allowed"), "{}", show(&e));
    let e = c.cmd(&["EVAL", "return redis.call('get','k:3')", "0"]);
    assert!(e.starts_with(b"$1000"), "{}", show(&e));
    let e = c.cmd(&["EVAL", "#!lua\nreturn redis.call('set','x','y')", "0"]);
    assert!(e.starts_with(b"-OOM command not allowed"), "{}", show(&e));
    // Nothing was evicted; raising the limit lets writes through again.
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), 0);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "x", "y"]), b"+OK\r\n");
}

#[test]
fn exec_with_a_denyoom_command_queued_before_the_limit_is_aborted() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    let mut d = r.raw();
    fill(&mut c, "k", 10, &[]);
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "a", "1"]), b"+QUEUED\r\n");
    assert_eq!(d.cmd(&["CONFIG", "SET", "maxmemory", "1"]), b"+OK\r\n");
    assert_eq!(
        c.cmd(&["EXEC"]),
        &b"-EXECABORT Transaction discarded because of: OOM command not allowed when used \
           memory > 'maxmemory'.\r\n"[..]
    );
    assert_eq!(c.cmd(&["EXISTS", "a"]), b":0\r\n");
}

#[test]
fn a_lowered_limit_evicts_at_once_and_lru_removes_the_idle_keys() {
    let r = Rudis::start(&["--appendonly", "no", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = r.raw();
    let n = 2000;
    fill(&mut c, "cold", n, &[]);
    fill(&mut c, "hot", n, &[]);
    // The LRU clock counts seconds: let every key grow idle, then use the hot ones.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    for i in 0..n {
        c.send(&["GET", &format!("hot:{i}")]);
    }
    for _ in 0..n {
        c.read_reply();
    }
    // About a third of the keys must go.
    let limit = lower_by(&mut c, 1_300_000);
    assert!(
        used(&mut c) <= limit + 64 * 1024,
        "evicted before the reply"
    );
    let hot = surviving(&mut c, "hot", n);
    let cold = surviving(&mut c, "cold", n);
    // Read last: a command may still evict a few keys, as other threads' counts reach the
    // total (see util::alloc).
    let evicted = info_field(&mut c, "stats", "evicted_keys") as usize;
    assert!(evicted > 800, "{evicted}");
    assert!(hot >= n * 95 / 100, "hot {hot} cold {cold}");
    // Within a few: evictions counted on other threads reach the total late (see above).
    assert!(
        (hot + cold).abs_diff(2 * n - evicted) <= 32,
        "hot {hot} cold {cold} evicted {evicted}"
    );
    // Writes go on, each evicting what it needs.
    fill(&mut c, "new", 500, &[]);
    assert!(used(&mut c) <= limit + 64 * 1024);
}

#[test]
fn lfu_removes_the_rarely_used_keys() {
    let r = Rudis::start(&["--appendonly", "no", "--maxmemory-policy", "allkeys-lfu"]);
    let mut c = r.raw();
    let n = 2000;
    fill(&mut c, "rare", n, &[]);
    fill(&mut c, "often", n, &[]);
    for _ in 0..20 {
        for i in 0..n {
            c.send(&["GET", &format!("often:{i}")]);
        }
        for _ in 0..n {
            c.read_reply();
        }
    }
    assert!(int(&c.cmd(&["OBJECT", "FREQ", "often:1"])) > 5);
    lower_by(&mut c, 1_300_000);
    let often = surviving(&mut c, "often", n);
    let rare = surviving(&mut c, "rare", n);
    assert!(often >= n * 95 / 100, "often {often} rare {rare}");
    assert!(rare < n * 70 / 100, "often {often} rare {rare}");
}

#[test]
fn volatile_policies_take_only_keys_with_a_deadline() {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let r = Rudis::start(&["--appendonly", "no", "--maxmemory-policy", policy]);
        let mut c = r.raw();
        fill(&mut c, "keep", 1000, &[]);
        fill(&mut c, "ttl", 1000, &["EX", "1000"]);
        lower_by(&mut c, 400_000);
        assert_eq!(surviving(&mut c, "keep", 1000), 1000, "{policy}");
        let ttl = surviving(&mut c, "ttl", 1000);
        assert!(ttl < 800, "{policy}: {ttl}");
        // Once no key has a deadline, nothing can go: OOM.
        lower_by(&mut c, 2_000_000);
        assert_eq!(surviving(&mut c, "keep", 1000), 1000, "{policy}");
        assert_eq!(surviving(&mut c, "ttl", 1000), 0, "{policy}");
        let e = c.cmd(&["SET", "x", "y"]);
        assert!(e.starts_with(b"-OOM"), "{policy}: {}", show(&e));
    }
}

#[test]
fn volatile_ttl_removes_the_nearest_deadlines_first() {
    let r = Rudis::start(&["--appendonly", "no", "--maxmemory-policy", "volatile-ttl"]);
    let mut c = r.raw();
    let value = "v".repeat(1000);
    let n = 2000;
    let cmds: Vec<Vec<String>> = (0..n)
        .map(|i| {
            let ttl = (1000 + i * 10).to_string();
            vec![
                "SET".into(),
                format!("t:{i}"),
                value.clone(),
                "EX".into(),
                ttl,
            ]
        })
        .collect();
    c.pipeline_ok(&cmds);
    lower_by(&mut c, 700_000);
    let near = (0..n / 5)
        .filter(|i| exists(&mut c, &format!("t:{i}")))
        .count();
    let far = (n * 4 / 5..n)
        .filter(|i| exists(&mut c, &format!("t:{i}")))
        .count();
    assert!(near < n / 5 / 2, "near {near}");
    assert_eq!(far, n / 5, "far {far}");
}

#[test]
fn allkeys_random_evicts_and_noeviction_never_does() {
    let r = Rudis::start(&["--appendonly", "no", "--maxmemory-policy", "allkeys-random"]);
    let mut c = r.raw();
    fill(&mut c, "k", 2000, &[]);
    let limit = lower_by(&mut c, 500_000);
    assert!(used(&mut c) <= limit + 64 * 1024);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        b"+OK\r\n"
    );
    let left = surviving(&mut c, "k", 2000);
    assert!((1000..1800).contains(&left), "{left}");
    lower_by(&mut c, 500_000);
    assert_eq!(surviving(&mut c, "k", 2000), left);
}

#[test]
fn evictions_are_dels_in_the_aof_and_evicted_events() {
    let r = Rudis::start(&[
        "--maxmemory-policy",
        "allkeys-lru",
        "--notify-keyspace-events",
        "Ee",
    ]);
    let mut sub = r.raw();
    sub.cmd(&["SUBSCRIBE", "__keyevent@0__:evicted"]);
    let mut c = r.raw();
    fill(&mut c, "k", 1000, &[]);
    lower_by(&mut c, 300_000);
    let first = info_field(&mut c, "stats", "evicted_keys") as usize;
    assert!(first > 100, "{first}");
    // Eviction frees what the limit asked for, not the events it sent: a command may evict
    // a few more while the subscriber's worker writes them out (as Redis may, see its
    // #8069). No more once the limit is gone.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), b"+OK\r\n");
    let evicted = info_field(&mut c, "stats", "evicted_keys") as usize;
    assert!(evicted < first + 30, "{first} then {evicted}");
    for _ in 0..evicted {
        let m = sub.read_reply();
        assert!(
            m.starts_with(b"*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:evicted\r\n$"),
            "{}",
            show(&m)
        );
    }
    let dbsize = int(&c.cmd(&["DBSIZE"]));
    assert_eq!(dbsize as usize, 1000 - evicted);
    // Evictions outside a client's command reach the file with the writer's next pass.
    let dels = || {
        let aof = std::fs::read(r.aof_path()).unwrap();
        aof.windows(9).filter(|w| w == b"$3\r\nDEL\r\n").count()
    };
    let t = std::time::Instant::now();
    while dels() < evicted && t.elapsed().as_secs() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(dels(), evicted);
    // A restart without a limit loads exactly the keys that were left.
    drop(c);
    drop(sub);
    let mut r = r;
    r.restart();
    let mut c = r.raw();
    assert_eq!(int(&c.cmd(&["DBSIZE"])), dbsize);
}

#[test]
fn object_idletime_counts_seconds_and_inspection_does_not_touch() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["SET", "a-key-of-14-by", "v"]);
    std::thread::sleep(std::time::Duration::from_millis(2200));
    for k in ["k", "a-key-of-14-by"] {
        for cmd in [
            &["TYPE", k][..],
            &["TTL", k],
            &["EXISTS", k],
            &["OBJECT", "ENCODING", k],
        ] {
            c.cmd(cmd);
        }
        assert!(int(&c.cmd(&["OBJECT", "IDLETIME", k])) >= 2, "{k}");
        c.cmd(&["GET", k]);
        assert!(int(&c.cmd(&["OBJECT", "IDLETIME", k])) <= 1, "{k}");
    }
    assert!(c
        .cmd(&["OBJECT", "FREQ", "k"])
        .starts_with(b"-ERR An LFU maxmemory policy is not"));
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    assert!(c
        .cmd(&["OBJECT", "IDLETIME", "k"])
        .starts_with(b"-ERR An LFU maxmemory policy is selected"));
}

#[test]
fn used_memory_follows_the_allocator_and_memory_usage_grows_with_the_value() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    let before = used(&mut c);
    fill(&mut c, "k", 10_000, &[]);
    let grown = used(&mut c) - before;
    // 10,000 values of 1000 bytes (1024-byte blocks) and their keys.
    assert!((10_000_000..13_000_000).contains(&grown), "{grown}");
    let small = int(&c.cmd(&["MEMORY", "USAGE", "k:1"]));
    c.cmd(&["SET", "big", &"x".repeat(100_000)]);
    let big = int(&c.cmd(&["MEMORY", "USAGE", "big"]));
    assert!((1000..1200).contains(&small), "{small}");
    assert!((100_000..140_000).contains(&big), "{big}");
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "nope"]), b"$-1\r\n");
    c.cmd(&["DEL", "big"]);
    let stats = String::from_utf8_lossy(&c.cmd(&["MEMORY", "STATS"])).into_owned();
    assert!(
        stats.starts_with("*56\r\n$14\r\npeak.allocated\r\n"),
        "{stats}"
    );
    assert!(stats.contains("keys.count\r\n:10000\r\n"), "{stats}");
}

/// RESTORE's IDLETIME and FREQ set what the policy tracks (Redis's objectSetLRUOrLFU), which
/// the LRU and LFU policies then evict by.
#[test]
fn restore_sets_the_idle_time_or_the_frequency() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    c.cmd(&["SET", "foo", "bar"]);
    let payload = c.frame(&["DUMP", "foo"]);
    let rudis::resp::Frame::Bulk(payload) = payload else {
        panic!("DUMP: {payload:?}")
    };
    c.cmd(&["DEL", "foo"]);
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let restore = |c: &mut Raw, opt: &str, v: &str| {
        c.cmd(&[
            &b"RESTORE"[..],
            b"foo",
            b"0",
            &payload,
            opt.as_bytes(),
            v.as_bytes(),
            b"REPLACE",
        ])
    };
    assert_eq!(restore(&mut c, "IDLETIME", "1000"), b"+OK\r\n");
    let idle = int(&c.cmd(&["OBJECT", "IDLETIME", "foo"]));
    assert!((1000..=1001).contains(&idle), "idle {idle}");
    assert_eq!(c.cmd(&["GET", "foo"]), b"$3\r\nbar\r\n");
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    assert_eq!(restore(&mut c, "FREQ", "100"), b"+OK\r\n");
    assert_eq!(c.cmd(&["OBJECT", "FREQ", "foo"]), b":100\r\n");
}

/// Redis's unit/maxmemory "policy volatile-* should only remove volatile keys": keys of a
/// few bytes live in their tables' slots, so evicting them frees memory only as the tables
/// shrink, which they do, down to nothing for a shard left empty. With 100 KB of room, as
/// many volatile keys again as fitted keep memory within 4 KB of the limit, and every key
/// without a deadline stays.
#[test]
fn tiny_keys_are_evicted_to_within_4kb_of_the_limit_and_only_volatile_ones() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), b"+OK\r\n");
        assert_eq!(c.cmd(&["FLUSHALL"]), b"+OK\r\n");
        let limit = used(&mut c) + 100 * 1024;
        let ok = c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
        assert_eq!(ok, b"+OK\r\n");
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]),
            b"+OK\r\n"
        );
        let mut n = 0;
        loop {
            let key = format!("key:{n}");
            let reply = if n % 2 == 1 {
                c.cmd(&["SETEX", &key, "10000", "x"])
            } else {
                c.cmd(&["SET", &key, "x"])
            };
            assert_eq!(reply, b"+OK\r\n", "{policy}: {}", show(&reply));
            if used(&mut c) + 4096 > limit {
                break;
            }
            n += 1;
        }
        assert!(n > 10, "{policy}: only {n} keys fitted in 100 KB");
        for j in 0..n {
            let reply = c.cmd(&["SETEX", &format!("foo:{j}"), "10000", "x"]);
            assert_eq!(reply, b"+OK\r\n", "{policy}: {}", show(&reply));
        }
        let over = used(&mut c) as i64 - limit as i64;
        assert!(over < 4096, "{policy}: {over} bytes over the limit");
        for j in (0..n).step_by(2) {
            assert!(
                exists(&mut c, &format!("key:{j}")),
                "{policy}: key:{j} evicted"
            );
        }
    }
}

/// Under a limit with an LRU or LFU policy Redis gives small integers objects of their own
/// (OBJECT REFCOUNT 1), and shares them otherwise: the same replies from both servers.
#[test]
fn small_integers_are_shared_unless_an_lru_or_lfu_limit_is_set() {
    common::both(&["--appendonly", "no"], |port| {
        let mut c = Raw::connect(port);
        let mut out = Vec::new();
        for (maxmemory, policy) in [
            ("0", "allkeys-lru"),
            ("1gb", "allkeys-random"),
            ("1gb", "allkeys-lru"),
            ("1gb", "volatile-lfu"),
            ("1gb", "noeviction"),
        ] {
            c.cmd(&["CONFIG", "SET", "maxmemory", maxmemory]);
            c.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]);
            c.cmd(&["SET", "a", "1"]);
            out.push(c.cmd(&["OBJECT", "REFCOUNT", "a"]));
        }
        c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
        out
    });
}

/// Redis's "client tracking don't cause eviction feedback loop": evicting keys that ten
/// tracking clients read sends each of them an invalidation per key, which they do not read.
/// Eviction counts what removing each key freed, not the messages it caused, and a burst of
/// messages leaves the clients' buffers as they were: lowering the limit by 40 KB evicts
/// about 40 KB of keys, not the database.
#[test]
fn tracking_invalidations_do_not_drive_eviction_on() {
    let r = Rudis::start(&["--appendonly", "no", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = r.raw();
    c.cmd(&["CONFIG", "SET", "maxmemory-eviction-tenacity", "100"]);
    let mut trackers: Vec<Raw> = (0..10).map(|_| r.raw()).collect();
    for t in &mut trackers {
        t.cmd(&["HELLO", "3"]);
        assert_eq!(t.cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n");
    }
    for j in 0..300 {
        let key = format!("{j}{}", "x".repeat(1000));
        assert_eq!(c.cmd(&["SET", &key, "x"]), b"+OK\r\n");
        for t in &mut trackers {
            assert_eq!(t.cmd(&["GET", &key]), b"$1\r\nx\r\n");
        }
    }
    // The cron trims the clients' input buffers first, as in Redis's test.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    lower_by(&mut c, 40_000);
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    let left = int(&c.cmd(&["DBSIZE"]));
    assert!(
        (200..=300).contains(&left),
        "{left} keys left, {evicted} evicted"
    );
    assert!((10..=100).contains(&evicted), "{evicted} evicted");
    for t in &mut trackers {
        let push = t.read_reply();
        assert!(
            push.starts_with(b">2\r\n$10\r\ninvalidate\r\n"),
            "{}",
            show(&push)
        );
    }
}

/// Redis's "replica buffer don't induce eviction" and "slave buffer are counted correctly":
/// what a stopped replica has yet to be sent is its memory in INFO (mem_clients_slaves,
/// mem_not_counted_for_evict), not the dataset's, so no key goes for it; killed, it has none.
#[test]
fn a_stopped_replicas_backlog_is_counted_apart_and_evicts_nothing() {
    let master = Rudis::start(&["--appendonly", "no"]);
    let replica = Rudis::start(&["--appendonly", "no"]);
    let mut m = master.raw();
    for j in 0..100 {
        let reply = m.cmd(&["SETRANGE", &format!("key:{j}"), "100000", "asdf"]);
        assert_eq!(reply, b":100004\r\n");
    }
    m.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    m.cmd(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "replica 100000000 100000000 300",
    ]);
    m.cmd(&["CONFIG", "SET", "repl-backlog-size", "16384"]);
    let port = master.port.to_string();
    assert_eq!(
        replica.raw().cmd(&["REPLICAOF", "127.0.0.1", &port]),
        b"+OK\r\n"
    );
    let started = std::time::Instant::now();
    while !String::from_utf8_lossy(&replica.raw().cmd(&["INFO", "replication"]))
        .contains("master_link_status:up")
    {
        assert!(started.elapsed().as_secs() < 10, "the replica did not sync");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let not_counted = info_field(&mut m, "memory", "mem_not_counted_for_evict");
    let limit = used(&mut m) - not_counted + 32 * 1024;
    m.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    // SAFETY: kill only sends a signal to the replica's process.
    unsafe { libc::kill(replica.child.id() as i32, libc::SIGSTOP) };
    // One by one, as Redis's test sends them: a pipeline grows the query buffer, which is
    // the dataset's to pay for.
    let value = "A".repeat(100);
    for _ in 0..100_000 {
        assert_eq!(m.cmd(&["SETRANGE", "key:0", "0", &value]), b":100004\r\n");
    }
    let slaves = info_field(&mut m, "memory", "mem_clients_slaves");
    let dbsize = int(&m.cmd(&["DBSIZE"]));
    let memory = String::from_utf8_lossy(&m.cmd(&["INFO", "memory"])).into_owned();
    m.cmd(&["CLIENT", "KILL", "TYPE", "replica"]);
    let killed = info_field(&mut m, "memory", "mem_clients_slaves");
    // SAFETY: as above.
    unsafe { libc::kill(replica.child.id() as i32, libc::SIGCONT) };
    assert_eq!(
        dbsize, 100,
        "keys were evicted for the replica's backlog (limit {limit}):\n{memory}"
    );
    assert!(slaves > 2 << 20, "mem_clients_slaves {slaves}");
    assert_eq!(killed, 0);
}
