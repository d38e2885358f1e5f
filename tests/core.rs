//! The server core against the real binary: the README session (through the `redis` crate and
//! through `redis-cli`, compared with a real redis-server), pipelining, the worker limit,
//! protocol errors, inline commands, requests in pieces, binary safety, the start-up log line,
//! `--help`, and redis-benchmark.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{redis_cli, require_tool, show, Raw, RealRedis, Rudis, BIN};
use redis::Commands;

/// The README's example session: (command line, expected redis-cli output).
fn readme_session() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("    $ redis-cli\n")
        .expect("README has a redis-cli session");
    let mut steps: Vec<(String, String)> = Vec::new();
    for line in readme[start..].lines().skip(1) {
        let Some(line) = line.strip_prefix("    ") else {
            break;
        };
        if let Some(cmd) = line.strip_prefix("127.0.0.1:6379> ") {
            steps.push((cmd.to_string(), String::new()));
        } else {
            let last = steps.last_mut().expect("output before any command");
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    assert!(steps.len() >= 6, "README session too short: {steps:?}");
    steps
}

/// Runs each command of the session through redis-cli in its human (`--no-raw`) format, which
/// is what the README shows, and returns the outputs.
fn cli_session(port: u16, steps: &[(String, String)], raw: bool) -> Vec<String> {
    steps
        .iter()
        .map(|(cmd, _)| {
            let mut args = vec![if raw { "--raw" } else { "--no-raw" }];
            args.extend(cmd.split_whitespace());
            redis_cli(port, &args)
        })
        .collect()
}

#[test]
fn readme_session_through_redis_cli_matches_real_redis_and_readme() {
    let steps = readme_session();
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(&[]);
    for raw in [false, true] {
        if raw {
            // The second pass starts again from the same empty state on both.
            for port in [redis.port, rudis.port] {
                redis_cli(port, &["DEL", "greeting", "user:1"]);
            }
        }
        let want = cli_session(redis.port, &steps, raw);
        let got = cli_session(rudis.port, &steps, raw);
        for (i, (cmd, readme_out)) in steps.iter().enumerate() {
            assert_eq!(got[i], want[i], "redis-cli {cmd} (raw={raw})");
            if !raw {
                assert_eq!(&want[i], readme_out, "README's output for {cmd}");
            }
        }
    }
}

#[test]
fn readme_session_through_the_redis_crate() {
    let rudis = Rudis::start(&[]);
    let mut c = rudis.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let ok: String = c.set("greeting", "hello").unwrap();
    assert_eq!(ok, "OK");
    let v: String = c.get("greeting").unwrap();
    assert_eq!(v, "hello");
    let missing: Option<String> = c.get("nokey").unwrap();
    assert_eq!(missing, None);
    let added: i64 = redis::cmd("HSET")
        .arg("user:1")
        .arg("name")
        .arg("Ada")
        .arg("lang")
        .arg("rust")
        .query(&mut c)
        .unwrap();
    assert_eq!(added, 2);
    let added: i64 = redis::cmd("HSET")
        .arg("user:1")
        .arg("name")
        .arg("Ada")
        .arg("born")
        .arg("1815")
        .query(&mut c)
        .unwrap();
    assert_eq!(added, 1, "one new field, one overwritten");
    let name: String = c.hget("user:1", "name").unwrap();
    assert_eq!(name, "Ada");
    let all: Vec<(String, String)> = c.hgetall("user:1").unwrap();
    assert_eq!(
        all,
        vec![
            ("name".into(), "Ada".into()),
            ("lang".into(), "rust".into()),
            ("born".into(), "1815".into())
        ],
        "a small hash lists its fields in insertion order"
    );
    let err = c.get::<_, String>("user:1").unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err}");
}

#[test]
fn ten_thousand_pipelined_commands_answered_in_order() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut raw = rudis.raw();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        let key = format!("k{}", i / 2);
        let cmd: Vec<Vec<u8>> = if i % 2 == 0 {
            vec![b"SET".to_vec(), key.into(), format!("v{i}").into()]
        } else {
            vec![b"GET".to_vec(), key.into()]
        };
        rudis::resp::reply::encode_command(&mut batch, &cmd);
    }
    // Written from another thread: the server answers while the batch is still arriving, and
    // neither side may block on a full socket buffer.
    let mut w = raw.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&batch).unwrap());
    for i in 0..10_000 {
        let reply = raw.read_reply();
        let want = if i % 2 == 0 {
            b"+OK\r\n".to_vec()
        } else {
            let v = format!("v{}", i - 1);
            format!("${}\r\n{v}\r\n", v.len()).into_bytes()
        };
        assert_eq!(reply, want, "reply {i}: {}", show(&reply));
    }
    writer.join().unwrap();
    assert_eq!(raw.cmd(&["PING"]), b"+PONG\r\n");
}

/// Connects until the server serves the client (a worker may take a moment to notice that its
/// previous client left).
fn connect_served(port: u16) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Raw::connect(port);
        c.send(&["PING"]);
        match c.try_read_reply() {
            Some(r) if r == b"+PONG\r\n" => return c,
            other => assert!(
                Instant::now() < deadline,
                "never served: {:?}",
                other.map(|r| show(&r))
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stalled_clients_do_not_hold_up_the_others() {
    // Five workers, five clients: two misbehave, three must be served as if alone.
    let rudis = Rudis::start(&["--workers", "5", "--appendonly", "no"]);
    // One stops in the middle of a 1 MB value.
    let mut half = connect_served(rudis.port);
    half.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\nabc");
    // One pipelines large replies and never reads them.
    let mut deaf = connect_served(rudis.port);
    assert_eq!(deaf.cmd(&["SET", "big", &"x".repeat(1 << 20)]), b"+OK\r\n");
    let mut flood = Vec::new();
    for _ in 0..64 {
        rudis::resp::reply::encode_command(&mut flood, &[&b"GET"[..], b"big"]);
    }
    deaf.send_raw(&flood);
    let mut others: Vec<Raw> = (0..3).map(|_| connect_served(rudis.port)).collect();
    for round in 0..100 {
        for (i, c) in others.iter_mut().enumerate() {
            let k = format!("c{i}");
            let v = round.to_string();
            assert_eq!(c.cmd(&["SET", &k, &v]), b"+OK\r\n");
            assert_eq!(
                c.cmd(&["GET", &k]),
                format!("${}\r\n{v}\r\n", v.len()).into_bytes()
            );
        }
    }
    // The stalled request completes when its bytes arrive.
    let mut rest = vec![b'a'; 1_000_000 - 3];
    rest.extend_from_slice(b"\r\n");
    half.send_raw(&rest);
    assert_eq!(half.read_reply(), b"+OK\r\n");
}

#[test]
fn clients_beyond_maxclients_are_refused_without_queueing_behind_each_other() {
    let rudis = Rudis::start(&["--maxclients", "1", "--appendonly", "no"]);
    let mut served = connect_served(rudis.port);
    // Twenty at once: each must be told at once, not after a hand-off wait per client before
    // it (20 x 200 ms = 4 s when the accept loop waited for a worker per refused client).
    let started = std::time::Instant::now();
    let mut extra: Vec<Raw> = (0..20).map(|_| Raw::connect(rudis.port)).collect();
    for c in &mut extra {
        assert_eq!(
            c.try_read_reply().as_deref(),
            Some(&b"-ERR max number of clients reached\r\n"[..])
        );
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "20 refusals took {took:?}"
    );
    assert_eq!(served.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_client_beyond_maxclients_is_refused_and_the_others_go_on() {
    let rudis = Rudis::start(&["--maxclients", "5", "--appendonly", "no"]);
    // wait_ready's probe connection may still hold a worker for a moment.
    let mut five: Vec<Raw> = (0..5).map(|_| connect_served(rudis.port)).collect();
    let mut sixth = Raw::connect(rudis.port);
    let reply = sixth
        .try_read_reply()
        .expect("the sixth client gets a reply");
    assert_eq!(reply, b"-ERR max number of clients reached\r\n");
    assert!(sixth.is_closed(), "the sixth client is closed");
    // Redis says the same to a client beyond maxclients.
    let redis = RealRedis::start(&["--maxclients", "1"]);
    let _one = connect_served(redis.port);
    let mut two = redis.raw();
    assert_eq!(two.try_read_reply().as_deref(), Some(&reply[..]));

    for (i, c) in five.iter_mut().enumerate() {
        let k = format!("k{i}");
        assert_eq!(c.cmd(&["SET", &k, "v"]), b"+OK\r\n");
        assert_eq!(c.cmd(&["GET", &k]), b"$1\r\nv\r\n");
    }
    let log = rudis.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("max number of clients reached")),
        "no warning logged:\n{log}"
    );
    // One leaves; a newcomer is served.
    drop(five.pop());
    let mut newcomer = connect_served(rudis.port);
    assert_eq!(newcomer.cmd(&["GET", "k0"]), b"$1\r\nv\r\n");
    for c in &mut five {
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    }
}

/// Sends `input` on a fresh connection and returns everything the server says until it closes.
fn reply_until_close(port: u16, input: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(input).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("no close after {:?}: {e}", show(&out)),
        }
    }
}

#[test]
fn malformed_requests_get_redis_errors_and_are_closed() {
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut bystander = rudis.raw();
    assert_eq!(bystander.cmd(&["SET", "safe", "yes"]), b"+OK\r\n");
    // Lines one byte over Redis's 64 KiB limit, with no end: the error comes only once every
    // byte was read, so that closing cannot reset the connection before the reply is read.
    let long_inline = vec![b'a'; 64 * 1024 + 1];
    let mut long_count = b"*".to_vec();
    long_count.extend(vec![b'1'; 64 * 1024]);
    let mut long_bulk_count = b"*1\r\n$".to_vec();
    long_bulk_count.extend(vec![b'1'; 64 * 1024]);
    let cases: Vec<Vec<u8>> = vec![
        b"*x\r\n".to_vec(),
        b"*2147483648\r\n".to_vec(),
        b"*1\r\n$-1\r\n".to_vec(),
        b"*1\r\n$abc\r\n".to_vec(),
        b"*1\r\n$600000000\r\n".to_vec(),
        b"*1\r\nx3\r\n".to_vec(),
        b"*2\r\n$4\r\nECHO\r\n:3\r\n".to_vec(),
        b"SET \"a\r\n".to_vec(),
        b"SET 'a'b c\r\n".to_vec(),
        // Replies to the requests before the bad one come first.
        b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$-5\r\n".to_vec(),
        long_inline,
        long_count,
        long_bulk_count,
    ];
    for input in &cases {
        let want = reply_until_close(redis.port, input);
        let got = reply_until_close(rudis.port, input);
        let what = show(&input[..input.len().min(40)]);
        assert!(
            show(&want).contains("Protocol error"),
            "redis: {}",
            show(&want)
        );
        assert_eq!(show(&got), show(&want), "input {what}");
    }
    // The other client never noticed.
    assert_eq!(bystander.cmd(&["GET", "safe"]), b"$3\r\nyes\r\n");
    assert_eq!(
        rudis.raw().cmd(&["PING"]),
        b"+PONG\r\n",
        "workers were freed"
    );
}

#[test]
fn inline_commands_match_real_redis() {
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let script: &[u8] = b"PING\r\nSET a \"b c\\r\\n\\x00\"\r\nGET a\nECHO 'it\\'s'\r\n\r\n   \r\n\
        HSET h f1 v1 \"f 2\" v2\r\nHGETALL h\r\nget\r\nnosuch x 'y z'\r\nQUIT\r\n";
    let want = reply_until_close(redis.port, script);
    let got = reply_until_close(rudis.port, script);
    assert_eq!(show(&got), show(&want));
    assert!(
        want.starts_with(b"+PONG\r\n+OK\r\n$6\r\nb c\r\n\0\r\n"),
        "{}",
        show(&want)
    );
}

#[test]
fn requests_split_across_many_small_writes() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut raw = rudis.raw();
    raw.stream.set_nodelay(true).unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut input = Vec::new();
    rudis::resp::reply::encode_command(&mut input, &[&b"SET"[..], b"big", &big]);
    input.extend_from_slice(b"GET big\r\n");
    rudis::resp::reply::encode_command(&mut input, &[&b"ECHO"[..], b"tail"]);
    // The first 300 bytes one at a time (every header boundary), then 997-byte pieces.
    let (head, rest) = input.split_at(300);
    for b in head {
        raw.send_raw(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_micros(200));
    }
    for piece in rest.chunks(997) {
        raw.send_raw(piece);
    }
    assert_eq!(raw.read_reply(), b"+OK\r\n");
    let mut want = format!("${}\r\n", big.len()).into_bytes();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"\r\n");
    assert!(raw.read_reply() == want, "GET big differs");
    assert_eq!(raw.read_reply(), b"$4\r\ntail\r\n");
}

#[test]
fn keys_and_values_are_binary_safe() {
    let rudis = Rudis::start(&[]);
    let all: Vec<u8> = (0..=255u8).collect();
    let mut raw = rudis.raw();
    let key = [&b"k\0\r\n"[..], &all].concat();
    assert_eq!(raw.cmd(&[&b"SET"[..], &key, &all]), b"+OK\r\n");
    let mut want = b"$256\r\n".to_vec();
    want.extend_from_slice(&all);
    want.extend_from_slice(b"\r\n");
    assert_eq!(raw.cmd(&[&b"GET"[..], &key]), want);
    assert_eq!(
        raw.cmd(&[&b"HSET"[..], b"h\xff", b"\0f", b"\r\n"]),
        b":1\r\n"
    );
    assert_eq!(
        raw.cmd(&[&b"HGET"[..], b"h\xff", b"\0f"]),
        b"$2\r\n\r\n\r\n"
    );
    let mut c = rudis.client();
    let v: Vec<u8> = c.get(&key).unwrap();
    assert_eq!(v, all);
    let () = c.set(&b""[..], &b""[..]).unwrap();
    let empty: Option<Vec<u8>> = c.get(&b""[..]).unwrap();
    assert_eq!(empty, Some(Vec::new()));
    // And they survive the AOF. Under everysec a reply may go out before the writer thread
    // has written its record, so wait for the last record to reach the file before the kill.
    let last = b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n";
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read(rudis.aof_path())
        .unwrap_or_default()
        .ends_with(last)
    {
        assert!(Instant::now() < deadline, "the AOF never got the last SET");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut rudis = rudis;
    rudis.restart();
    let mut raw = rudis.raw();
    assert_eq!(raw.cmd(&[&b"GET"[..], &key]), want);
    assert_eq!(
        raw.cmd(&[&b"HGET"[..], b"h\xff", b"\0f"]),
        b"$2\r\n\r\n\r\n"
    );
    assert_eq!(raw.cmd(&[&b"GET"[..], b""]), b"$0\r\n\r\n");
}

#[test]
fn start_up_log_line_names_version_address_workers_pid() {
    let rudis = Rudis::start(&["--workers", "7", "--appendonly", "no"]);
    let log = rudis.log();
    // `[::]:port` follows the IPv4 address where the machine has IPv6 (the default bind).
    let line = log
        .lines()
        .find(|l| l.contains("ready to accept connections"))
        .unwrap_or_else(|| panic!("no ready line in:\n{log}"));
    let head = format!(
        "rudis {} ready to accept connections on 0.0.0.0:{}",
        env!("CARGO_PKG_VERSION"),
        rudis.port
    );
    let tail = format!(", 7 workers, pid {}", rudis.child.id());
    assert!(
        line.contains(&head) && line.ends_with(&tail),
        "want {head:?} ... {tail:?}: {line}"
    );
}

#[test]
fn help_explains_every_flag_that_the_readme_lists() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let readme_flags: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `--"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert!(readme_flags.len() >= 9, "README flags: {readme_flags:?}");
    let lines: Vec<&str> = help.lines().map(str::trim).collect();
    for flag in &readme_flags {
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("--{flag} ")))
            .unwrap_or_else(|| panic!("--help lacks --{flag}:\n{help}"));
        // clap puts the explanation after the value name, or on the lines below it.
        let mut text: Vec<&str> = lines[at].split_whitespace().skip(2).collect();
        for l in lines[at + 1..].iter().take_while(|l| !l.starts_with('-')) {
            text.extend(l.split_whitespace());
        }
        assert!(
            text.len() >= 3,
            "--{flag} is not explained: {text:?}\n{help}"
        );
    }
    let help_flags: Vec<&str> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|f| *f != "help" && *f != "version")
        .collect();
    for f in &help_flags {
        assert!(
            readme_flags.contains(f),
            "--{f} is in --help but not in README's flag table"
        );
    }
    assert!(help.contains("[CONFIG_FILE]"), "{help}");
}

#[test]
fn redis_benchmark_set_get_hset_runs_clean() {
    require_tool("redis-benchmark");
    let rudis = Rudis::start(&["--workers", "50", "--appendonly", "no"]);
    let out = Command::new("redis-benchmark")
        .args(["-p", &rudis.port.to_string()])
        .args(["-t", "set,get,hset", "-n", "100000", "-c", "50", "--csv"])
        .output()
        .expect("run redis-benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // redis-benchmark stops at the first error reply ("Error from server: ...").
    let all = format!("{stdout}{stderr}");
    assert!(
        all.lines()
            .all(|l| !l.contains("rror") && !l.contains("ERR")),
        "errors in redis-benchmark output:\n{all}"
    );
    for t in ["\"SET\"", "\"GET\"", "\"HSET\""] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(t))
            .unwrap_or_else(|| panic!("no {t} row:\n{stdout}"));
        let rps: f64 = row
            .split(',')
            .nth(1)
            .unwrap()
            .trim_matches('"')
            .parse()
            .unwrap();
        assert!(rps > 0.0, "{row}");
    }
    // Its SETs landed: a 3-byte value (-d's default) under its fixed key.
    let value = rudis.raw().cmd(&["GET", "key:__rand_int__"]);
    assert!(value.starts_with(b"$3\r\n"), "{}", show(&value));
    assert!(
        rudis.log().lines().all(|l| !l.contains("WARN")),
        "{}",
        rudis.log()
    );
}

/// A process's resident set, in kB, as the kernel counts it.
fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn info_memory_reports_the_true_rss() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut raw = rudis.raw();
    let mut batch = Vec::new();
    for i in 0..50_000 {
        let k = format!("key:{i}");
        rudis::resp::reply::encode_command(&mut batch, &[&b"SET"[..], k.as_bytes(), b"0123456789"]);
    }
    let mut w = raw.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&batch).unwrap());
    for _ in 0..50_000 {
        assert_eq!(raw.read_reply(), b"+OK\r\n");
    }
    writer.join().unwrap();
    let info = match raw.frame(&["INFO", "memory"]) {
        rudis::resp::Frame::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    let reported: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_rss:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no used_memory_rss in:\n{info}"));
    let actual = vm_rss_kb(rudis.child.id()) * 1024;
    let diff = reported.abs_diff(actual);
    assert!(
        diff < actual / 10,
        "INFO says {reported} bytes, /proc says {actual}"
    );
}

#[test]
fn a_claimed_huge_bulk_costs_no_memory() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let rss = || vm_rss_kb(rudis.child.id());
    let before = rss();
    let mut greedy: Vec<Raw> = (0..4).map(|_| rudis.raw()).collect();
    greedy[0].send_raw(b"*1\r\n$500000000\r\nabc");
    greedy[1].send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nxyz");
    greedy[2].send_raw(b"*2147483647\r\n$3\r\nabc\r\n");
    greedy[3].send_raw(b"*1\r\n$500000000\r\n");
    // Every one of them has been read once the server answers a later request.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rudis.raw().cmd(&["PING"]), b"+PONG\r\n");
    let after = rss();
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} kB to {after} kB on claims alone"
    );
    // They are still waiting for their bytes, not refused.
    for g in &mut greedy {
        g.stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut b = [0u8; 1];
        let r = loop {
            match g.stream.read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{r:?}"
        );
    }
}

/// By default rudis listens on every address, IPv6 ones too where the machine has them, as
/// Redis does without a bind (`* -::*`; protected mode turns away other hosts' clients while
/// no password is set): a client resolving "localhost" to ::1 finds it.
#[test]
fn default_bind_serves_both_loopback_addresses() {
    let server = Rudis::start(&[]);
    let mut v4 = Raw::connect(server.port);
    assert_eq!(
        show(&v4.cmd(&["CONFIG", "GET", "bind"])),
        "*2\\r\\n$4\\r\\nbind\\r\\n$6\\r\\n* -::*\\r\\n"
    );
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        // No IPv6 loopback here: `-::1` is optional, and the server above started without it.
        eprintln!("this machine has no ::1; only the IPv4 half was checked");
        return;
    }
    let v6 = std::net::TcpStream::connect(("::1", server.port)).expect("rudis on [::1]");
    let mut v6 = Raw::from_stream(v6);
    assert_eq!(show(&v6.cmd(&["PING"])), "+PONG\\r\\n");
}
