//! Operating rudis (issue 19): CLIENT REPLY, CLIENT PAUSE across workers, MONITOR's stream
//! compared with redis-server's, SLOWLOG and commandstats, each against the real binary.
mod common;

use std::time::{Duration, Instant};

use common::{both, info_number, show, wait_blocked, Raw, Rudis};

/// CLIENT REPLY OFF/SKIP/ON as Redis's own introspection.tcl drives it: the transcript of
/// what the client reads equals redis-server's.
#[test]
fn client_reply_silences_as_redis_does() {
    both(&[], |port| {
        let mut c = Raw::connect(port);
        let mut got = Vec::new();
        c.send(&["CLIENT", "REPLY", "OFF"]);
        c.send(&["PING", "pong"]);
        c.send(&["PING", "pong2"]);
        got.push(c.cmd(&["CLIENT", "REPLY", "ON"]));
        got.push(c.cmd(&["PING", "pong3"]));
        c.send(&["CLIENT", "REPLY", "SKIP"]);
        c.send(&["PING", "skipped"]);
        got.push(c.cmd(&["PING", "after"]));
        c.send(&["CLIENT", "REPLY", "SKIP"]);
        got.push(c.cmd(&["CLIENT", "REPLY", "ON"]));
        got.push(c.cmd(&["CLIENT", "REPLY", "MAYBE"]));
        // Subscribe confirmations and messages are pushes: never silenced.
        c.send(&["CLIENT", "REPLY", "OFF"]);
        c.send(&["SUBSCRIBE", "ch"]);
        got.push(c.read_reply());
        let mut p = Raw::connect(port);
        assert_eq!(p.cmd(&["PUBLISH", "ch", "hi"]), b":1\r\n");
        got.push(c.read_reply());
        got
    });
}

/// CLIENT PAUSE WRITE holds writes from clients on every worker and lets reads through; the
/// held writes run, in the order they were sent, once UNPAUSE comes.
#[test]
fn client_pause_write_holds_writes_and_releases_them_in_order() {
    let r = Rudis::start(&["--workers", "4"]);
    let mut admin = Raw::connect(r.port);
    assert_eq!(admin.cmd(&["SET", "k", "0"]), b"+OK\r\n");
    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]),
        b"+OK\r\n"
    );
    let mut writers: Vec<Raw> = Vec::new();
    for i in 0..6 {
        let mut w = Raw::connect(r.port);
        w.send(&["RPUSH", "order", &i.to_string()]);
        writers.push(w);
        wait_blocked(r.port, i + 1);
    }
    // Reads pass, from new clients (served by any worker) and from the pausing one.
    for _ in 0..8 {
        let mut rd = Raw::connect(r.port);
        assert_eq!(rd.cmd(&["GET", "k"]), b"$1\r\n0\r\n");
        assert_eq!(rd.cmd(&["LLEN", "order"]), b":0\r\n");
    }
    let list = String::from_utf8(admin.cmd(&["CLIENT", "LIST"])).unwrap();
    assert_eq!(list.matches("flags=b").count(), 6, "{list}");
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    for (i, w) in writers.iter_mut().enumerate() {
        assert_eq!(w.read_reply(), format!(":{}\r\n", i + 1).into_bytes());
    }
    let got = admin.cmd(&["LRANGE", "order", "0", "-1"]);
    assert_eq!(
        show(&got),
        show(b"*6\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n")
    );
}

/// Under CLIENT PAUSE WRITE a script is held unless it cannot write: EVAL_RO, and scripts and
/// functions that declare `no-writes` run (Redis's unit/pause 'Test RO scripts are not blocked
/// by pause RO'); EVAL without a shebang, or with one that allows writes, waits.
#[test]
fn client_pause_write_lets_scripts_that_cannot_write_through() {
    let r = Rudis::start(&[]);
    let mut admin = Raw::connect(r.port);
    let lib = "#!lua name=lib\nredis.register_function{function_name='ro', \
               callback=function() return 'f' end, flags={'no-writes'}}\n\
               redis.register_function('rw', function() return 'w' end)";
    assert_eq!(admin.cmd(&["FUNCTION", "LOAD", lib]), b"$3\r\nlib\r\n");
    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]),
        b"+OK\r\n"
    );
    let no_writes = "#!lua flags=no-writes\nreturn 'r'";
    for (cmd, want) in [
        (vec!["EVAL", no_writes, "0"], &b"$1\r\nr\r\n"[..]),
        (vec!["EVAL_RO", "return 'o'", "0"], b"$1\r\no\r\n"),
        (vec!["FCALL", "ro", "0"], b"$1\r\nf\r\n"),
        (vec!["FCALL_RO", "ro", "0"], b"$1\r\nf\r\n"),
    ] {
        // From a client in another database too, as the suite's clients are.
        let mut c = Raw::connect(r.port);
        assert_eq!(c.cmd(&["SELECT", "9"]), b"+OK\r\n");
        assert_eq!(c.cmd(&cmd), want, "{cmd:?}");
    }
    let mut held = Vec::new();
    for cmd in [
        vec!["EVAL", "return 1", "0"],
        vec!["EVAL", "#!lua\nreturn 2", "0"],
        vec!["FCALL", "rw", "0"],
    ] {
        let mut c = Raw::connect(r.port);
        c.send(&cmd);
        held.push(c);
    }
    wait_blocked(r.port, 3);
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    let got: Vec<Vec<u8>> = held.iter_mut().map(|c| c.read_reply()).collect();
    assert_eq!(got, [&b":1\r\n"[..], b":2\r\n", b"$1\r\nw\r\n"]);
}

/// Nothing expires while clients are paused, actively or by a read (reads hide the key):
/// a pause is a failover's window. Once it ends, a read removes the key and counts it.
/// (Redis's unit/pause 'Test both active and passive expires are skipped during client
/// pause'.) And a read-only script may not PUBLISH, which may replicate.
#[test]
fn nothing_expires_during_a_pause_and_read_only_scripts_may_not_publish() {
    let r = Rudis::start(&[]);
    let mut c = Raw::connect(r.port);
    let before = info_number(&mut c, "stats", "expired_keys");
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    c.cmd(&["SET", "foo", "bar", "PX", "10"]);
    c.cmd(&["SET", "bar", "foo", "PX", "10"]);
    c.cmd(&["CLIENT", "PAUSE", "50000", "WRITE"]);
    assert_eq!(c.cmd(&["EXEC"]), b"*3\r\n+OK\r\n+OK\r\n+OK\r\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(c.cmd(&["GET", "foo"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["GET", "bar"]), b"$-1\r\n");
    assert_eq!(info_number(&mut c, "stats", "expired_keys"), before);
    assert_eq!(c.cmd(&["DBSIZE"]), b":2\r\n", "still held, only hidden");
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    c.cmd(&["GET", "foo"]);
    c.cmd(&["GET", "bar"]);
    assert_eq!(info_number(&mut c, "stats", "expired_keys"), before + 2);
    let refused = "-ERR Write commands are not allowed from read-only scripts.";
    for cmd in [
        vec!["EVAL_RO", "return redis.call('publish','ch','msg')", "0"],
        vec![
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('publish','ch','msg')",
            "0",
        ],
    ] {
        let got = String::from_utf8(c.cmd(&cmd)).unwrap();
        assert!(got.starts_with(refused), "{cmd:?}: {got}");
    }
    assert_eq!(
        c.cmd(&["EVAL", "return redis.call('publish','ch','msg')", "0"]),
        b":0\r\n"
    );
}

/// A pause ends by itself at its deadline; PAUSE ALL holds reads too.
#[test]
fn client_pause_all_ends_at_its_timeout() {
    let r = Rudis::start(&[]);
    let mut admin = Raw::connect(r.port);
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "300"]), b"+OK\r\n");
    let started = Instant::now();
    let mut c = Raw::connect(r.port);
    assert_eq!(c.cmd(&["GET", "x"]), b"$-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(
        Raw::connect(r.port).cmd(&["CLIENT", "PAUSE", "-1"]),
        b"-ERR timeout is negative\r\n"
    );
    assert_eq!(
        Raw::connect(r.port).cmd(&["CLIENT", "PAUSE", "10", "SOME"]),
        b"-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"
    );
}

/// The lines of a MONITOR stream with their timestamps and client ports masked.
fn monitor_lines(port: u16) -> Vec<String> {
    let mut m = Raw::connect(port);
    assert_eq!(m.cmd(&["MONITOR"]), b"+OK\r\n");
    let mut c = Raw::connect(port);
    let cmds: &[&[&str]] = &[
        &["SET", "k\"q", "v\n\x01\u{7f}"],
        &["GET", "k\"q"],
        &["SELECT", "3"],
        &["INCR", "n"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["EXEC"],
        &["EVAL", "return redis.call('get', KEYS[1])", "1", "a"],
        &["AUTH", "secret"],
        &["CONFIG", "GET", "maxclients"],
        // Admin commands are not shown; passwords are redacted.
        &["CONFIG", "SET", "masterauth", "pw", "maxclients", "9000"],
        &["HELLO", "2", "AUTH", "default", "pw"],
        &["PING"],
    ];
    for cmd in cmds {
        c.cmd(cmd);
    }
    let mut out = Vec::new();
    // One line each, less the admin ones, plus the script's call.
    for _ in 0..cmds.len() - 1 {
        let line = String::from_utf8_lossy(&m.read_reply()).into_owned();
        // +1700000000.123456 [0 127.0.0.1:PORT] ...
        let rest = line.split_once(' ').map_or("", |x| x.1).to_string();
        let masked = match rest.split_once("] ") {
            Some((who, args)) if who.contains(':') => {
                format!("{}:*] {args}", who.rsplit_once(':').unwrap().0)
            }
            _ => rest.clone(),
        };
        assert!(line.starts_with('+'), "{line}");
        out.push(masked);
    }
    out
}

#[test]
fn monitor_streams_what_redis_streams() {
    let real = common::RealRedis::start(&[]);
    let want = monitor_lines(real.port);
    let r = Rudis::start(&["--workers", "3"]);
    let got = monitor_lines(r.port);
    assert_eq!(got, want);
}

#[test]
fn slowlog_and_commandstats_count_what_ran() {
    let r = Rudis::start(&[]);
    let mut c = Raw::connect(r.port);
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    c.cmd(&["CLIENT", "SETNAME", "me"]);
    let long = "x".repeat(200);
    c.cmd(&["SET", "k", &long]);
    let e = show(&c.cmd(&["SLOWLOG", "GET", "1"]));
    assert!(
        e.contains(&format!("{}... (72 more bytes)", "x".repeat(128))),
        "{e}"
    );
    assert!(e.contains("me"), "{e}");
    assert_eq!(
        c.cmd(&["SLOWLOG", "GET", "-2"]),
        b"-ERR count should be greater than or equal to -1\r\n"
    );
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    let n = c.cmd(&["SLOWLOG", "LEN"]);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), n);
    c.cmd(&["CONFIG", "RESETSTAT"]);
    c.cmd(&["SET", "a", "b"]);
    c.cmd(&["SET", "a", "b"]);
    c.cmd(&["LPUSH", "a", "x"]);
    c.cmd(&["GET"]);
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "commandstats"])).into_owned();
    assert!(info.contains("cmdstat_set:calls=2,"), "{info}");
    assert!(
        info.contains("cmdstat_lpush:calls=1,") && info.contains("failed_calls=1"),
        "{info}"
    );
    assert!(info.contains("cmdstat_get:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1"));
    let lat = String::from_utf8_lossy(&c.cmd(&["INFO", "latencystats"])).into_owned();
    assert!(lat.contains("latency_percentiles_usec_set:p50="), "{lat}");
}

/// While the server loads its AOF at start-up it already listens, as Redis: commands flagged
/// `loading` (CONFIG GET, SELECT, CLIENT SETNAME, INFO...) are served, every other one gets
/// -LOADING, inside MULTI too (EXEC then aborts). The replies equal redis-server's loading
/// the same file, under RESP2 and RESP3; INFO shows `loading:1` and the load's progress.
#[test]
fn clients_are_served_while_the_aof_loads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Large enough to take a second or more to replay (2M commands, 64 MB): the replies
    // below are all read before the load ends, which the last INFO of each pipeline proves.
    let aof = tmp.path().join("big.aof");
    {
        let mut chunk = Vec::new();
        for i in 0..100_000 {
            chunk.extend_from_slice(&encode(&["SET", &format!("k{i}"), "v"]));
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(&aof).expect("aof"));
        for _ in 0..20 {
            std::io::Write::write_all(&mut f, &chunk).expect("write aof");
        }
    }
    let script: &[&[&str]] = &[
        &["GET", "k1"],
        &["PING"],
        &["DBSIZE"],
        &["SET", "x", "1"],
        &["ECHO", "a"],
        &["SELECT", "1"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CLIENT", "SETNAME", "loader-watcher"],
        &["MULTI"],
        &["GET", "k1"],
        &["EXEC"],
        &["KEYS", "*"],
    ];
    let mut transcripts = Vec::new();
    for redis in [true, false] {
        let dir = tmp.path().join(if redis { "redis" } else { "rudis" });
        std::fs::create_dir(&dir).expect("dir");
        std::fs::hard_link(&aof, dir.join("big.aof")).expect("link the aof");
        let port = common::free_port();
        let mut cmd = std::process::Command::new(if redis { "redis-server" } else { common::BIN });
        cmd.args(["--port", &port.to_string(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfilename", "big.aof"])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = KillOnDrop(cmd.spawn().expect("spawn"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                break s;
            }
            assert!(Instant::now() < deadline, "no listener on {port}");
            assert!(child.0.try_wait().expect("wait").is_none(), "server exited");
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut got = Vec::new();
        for proto in ["2", "3"] {
            let mut c = if proto == "2" {
                Raw::from_stream(stream.try_clone().expect("clone"))
            } else {
                Raw::connect(port)
            };
            c.cmd(&["HELLO", proto]);
            let mut all = Vec::new();
            for args in script {
                all.extend_from_slice(&encode(args));
            }
            all.extend_from_slice(&encode(&["INFO", "persistence"]));
            c.send_raw(&all);
            for args in script {
                got.push((proto, args.join(" "), c.read_reply()));
            }
            let info = String::from_utf8_lossy(&c.read_reply()).into_owned();
            assert!(
                info.contains("loading:1\r\n"),
                "{} finished loading before the pipeline was answered:\n{info}",
                if redis { "redis" } else { "rudis" }
            );
            for field in [
                "loading_start_time:",
                "loading_loaded_perc:",
                "loading_eta_seconds:",
            ] {
                assert!(info.contains(field), "no {field} while loading:\n{info}");
            }
            let total = format!("loading_total_bytes:{}\r\n", aof.metadata().unwrap().len());
            if !redis {
                assert!(info.contains(&total), "{total} missing:\n{info}");
            }
        }
        transcripts.push(got);
    }
    let (redis, rudis) = (&transcripts[0], &transcripts[1]);
    for (a, b) in redis.iter().zip(rudis) {
        assert_eq!(
            show(&a.2),
            show(&b.2),
            "RESP{} {}: redis-server vs rudis",
            a.0,
            a.1
        );
    }
    assert_eq!(redis.len(), rudis.len());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

/// A woken BLPOP, BRPOP, BLMOVE, BLMPOP is logged in SLOWLOG under its own arguments (not
/// the LPOP that served it), after the push that woke it, with its client's name, and counted
/// once in commandstats under its own name; one that times out is not logged: as Redis.
#[test]
fn woken_blocking_commands_are_logged_as_themselves() {
    use rudis::resp::Frame;
    both(&[], |port| {
        let mut c = Raw::connect(port);
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        let mut w = Raw::connect(port);
        w.cmd(&["CLIENT", "SETNAME", "waiter"]);
        c.cmd(&["SLOWLOG", "RESET"]);
        c.cmd(&["CONFIG", "RESETSTAT"]);
        let mut got = Vec::new();
        let woken: &[(&[&str], &[&str])] = &[
            (&["BLPOP", "q", "0"], &["RPUSH", "q", "a"]),
            (&["BRPOP", "q", "0"], &["RPUSH", "q", "b"]),
            (
                &["BLMOVE", "q2", "d", "LEFT", "RIGHT", "0"],
                &["RPUSH", "q2", "c"],
            ),
            (
                &["BLMPOP", "0", "1", "q3", "LEFT", "COUNT", "2"],
                &["RPUSH", "q3", "x", "y"],
            ),
        ];
        for (block, push) in woken {
            w.send(block);
            wait_blocked(port, 1);
            c.cmd(push);
            got.push(w.read_reply());
        }
        got.push(w.cmd(&["BLPOP", "q9", "0.01"]));
        let Frame::Array(entries) = c.frame(&["SLOWLOG", "GET", "100"]) else {
            panic!("SLOWLOG GET");
        };
        for e in entries.into_iter().rev() {
            let Frame::Array(fields) = e else {
                panic!("an entry");
            };
            let Frame::Array(args) = &fields[3] else {
                panic!("its arguments");
            };
            let args: Vec<u8> = args
                .iter()
                .flat_map(|a| match a {
                    Frame::Bulk(b) => [&b[..], b" "].concat(),
                    _ => panic!("an argument"),
                })
                .collect();
            // wait_blocked's polls: how many depends on timing.
            if !args.starts_with(b"INFO ") {
                got.push([&args[..], b"by ", &format!("{:?}", fields[5]).into_bytes()].concat());
            }
        }
        let stats = String::from_utf8_lossy(&c.cmd(&["INFO", "commandstats"])).into_owned();
        // Redis lists them in its hash table's order.
        let mut lines: Vec<&str> = stats
            .lines()
            .filter(|l| l.starts_with("cmdstat_"))
            .collect();
        lines.sort();
        for line in lines {
            let name = line.split(':').next().unwrap();
            if ["pop", "move", "push"].iter().any(|s| name.contains(s)) {
                let counts: Vec<&str> = line
                    .split([':', ','])
                    .filter(|f| f.contains("calls="))
                    .collect();
                got.push(format!("{name} {counts:?}").into_bytes());
            }
        }
        got
    });
}

/// INFO stats names Redis 7.0's fields in Redis's order (what redis_exporter and dashboards
/// read), and counts keyspace hits and misses as Redis does: read-only commands' lookups, a
/// lookup of an expired key a miss, writes' lookups neither.
#[test]
fn info_stats_fields_and_keyspace_hits_are_redis_s() {
    both(&["--enable-debug-command", "yes"], |port| {
        let mut c = Raw::connect(port);
        let mut out = Vec::new();
        let names = |c: &mut Raw| -> Vec<u8> {
            let text = String::from_utf8(c.cmd(&["INFO", "stats"])).unwrap();
            text.lines()
                .filter_map(|l| l.split_once(':').map(|(n, _)| format!("{n}\n")))
                .collect::<String>()
                .into_bytes()
        };
        out.push(names(&mut c));
        c.cmd(&["CONFIG", "RESETSTAT"]);
        c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        for cmd in [
            &["SET", "a", "1"][..],
            &["GET", "a"],
            &["GET", "nokey"],
            &["EXISTS", "a", "nokey"],
            &["MGET", "a", "a", "nokey"],
            &["TYPE", "a"],
            &["INCR", "a"],
            &["DEL", "nokey"],
            &["SET", "gone", "x", "PX", "1"],
        ] {
            c.cmd(cmd);
        }
        std::thread::sleep(Duration::from_millis(20));
        c.cmd(&["GET", "gone"]);
        for f in ["keyspace_hits", "keyspace_misses"] {
            out.push(format!("{f}={}", common::info_number(&mut c, "stats", f)).into_bytes());
        }
        c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
        out
    });
}

/// A client that read a large value does not keep room for it (Redis frees its reply list):
/// its buffers, CLIENT LIST's tot-mem, are back near their size before, and DEBUG
/// REPLYBUFFER's settings are Redis's.
#[test]
fn a_large_reply_leaves_no_room_behind() {
    let r = Rudis::start(&["--enable-debug-command", "yes"]);
    let mut admin = r.raw();
    let mut c = r.raw();
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "reader"]), b"+OK\r\n");
    let big = "x".repeat(4 << 20);
    assert_eq!(admin.cmd(&["SET", "big", &big]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "big"]).len(), big.len() + 12);
    let tot_mem = |admin: &mut Raw| -> u64 {
        let list = String::from_utf8(admin.cmd(&["CLIENT", "LIST"])).unwrap();
        let line = list
            .lines()
            .find(|l| l.contains("name=reader"))
            .unwrap()
            .to_string();
        line.split(' ')
            .find_map(|f| f.strip_prefix("tot-mem="))
            .unwrap()
            .parse()
            .unwrap()
    };
    // The next step of the reader publishes its buffers.
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    let mem = tot_mem(&mut admin);
    assert!(mem < 64 * 1024, "tot-mem {mem} after a 4 MB reply");
    for (args, want) in [
        (
            &["DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "never"][..],
            &b"+OK\r\n"[..],
        ),
        (
            &["DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "reset"],
            b"+OK\r\n",
        ),
        (
            &["DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "soon"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (&["DEBUG", "REPLYBUFFER", "RESIZING", "1"], b"+OK\r\n"),
    ] {
        assert_eq!(admin.cmd(args), want, "{args:?}");
    }
}

/// A fatal signal writes Redis's crash report to the log (stderr here, or the log file) and
/// ends the process by that signal: DEBUG SEGFAULT, and a SIGABRT from outside (Redis's
/// integration/logging).
#[test]
fn a_fatal_signal_writes_the_crash_report_and_ends_the_process_by_it() {
    use std::os::unix::process::ExitStatusExt;
    for (how, sig) in [("DEBUG SEGFAULT", 11), ("SIGABRT", 6)] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut r = Rudis::start_in(
            dir.path(),
            &[
                "--enable-debug-command",
                "yes",
                "--logfile",
                log.to_str().unwrap(),
            ],
        );
        if sig == 11 {
            let mut c = Raw::connect(r.port);
            c.send(&["DEBUG", "SEGFAULT"]);
            assert!(c.is_closed());
        } else {
            unsafe { libc::kill(r.child.id() as i32, libc::SIGABRT) };
        }
        let status = r.child.wait().unwrap();
        assert_eq!(status.signal(), Some(sig), "{how}: {status:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(&format!("crashed by signal: {sig}, si_code: "))
                && text.contains("------ STACK TRACE ------")
                && text.contains("=== RUDIS BUG REPORT END."),
            "{how}: {text}"
        );
    }
}

/// `oom-score-adj` moves the process's oom_score_adj by its role's value (master, replica),
/// relative to the score it started with or as given, and puts the score back when turned
/// off (Redis's unit/oom-score-adj, but for the fork child's class: rudis has no child).
#[test]
fn oom_score_adj_follows_the_role_and_is_restored_when_off() {
    let r = Rudis::start(&[]);
    let path = format!("/proc/{}/oom_score_adj", r.child.id());
    let score = || -> i32 {
        std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let base = score();
    let mut c = Raw::connect(r.port);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "oom-score-adj-values", "10 20 30"]),
        b"+OK\r\n"
    );
    assert_eq!(score(), base, "not touched while off");
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "oom-score-adj", "yes"]),
        b"+OK\r\n"
    );
    assert_eq!(score(), base + 10);
    assert_eq!(c.cmd(&["REPLICAOF", "localhost", "1"]), b"+OK\r\n");
    assert_eq!(score(), base + 20, "a replica's value");
    assert_eq!(c.cmd(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    assert_eq!(score(), base + 10);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "oom-score-adj", "absolute"]),
        b"+OK\r\n"
    );
    assert_eq!(score(), 10);
    assert_eq!(c.cmd(&["CONFIG", "SET", "oom-score-adj", "no"]), b"+OK\r\n");
    assert_eq!(score(), base, "restored");
}
