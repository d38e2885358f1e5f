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
    let evicted = info_field(&mut c, "stats", "evicted_keys") as usize;
    assert!(evicted > 100, "{evicted}");
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
