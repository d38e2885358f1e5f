//! CLIENT, INFO and CONFIG against a running server, and start-up from a redis.conf file.
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, run_briefly, show, Raw, Rudis, BIN};
use rudis::resp::Frame;

fn bulk(f: Frame) -> String {
    match f {
        Frame::Bulk(b) => String::from_utf8(b).expect("utf-8"),
        other => panic!("expected a bulk reply, got {other:?}"),
    }
}

fn int(f: Frame) -> i64 {
    match f {
        Frame::Integer(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// One `name:value` field of an INFO reply.
fn info_field(raw: &mut Raw, section: &str, name: &str) -> String {
    let text = bulk(raw.frame(&["INFO", section]));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO {section}:\n{text}"))
        .to_string()
}

/// Waits up to `secs` for the server to close `raw`.
fn closed_within(raw: &mut Raw, secs: u64) -> bool {
    raw.stream
        .set_read_timeout(Some(Duration::from_secs(secs)))
        .expect("timeout");
    raw.is_closed()
}

/// CLIENT LIST once it lists `n` clients (closed connections leave the registry as their
/// worker notices, e.g. the harness's readiness probe).
fn wait_for_clients(raw: &mut Raw, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let list = bulk(raw.frame(&["CLIENT", "LIST"]));
        if list.lines().count() == n || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_kill_closes_the_target_connection() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut killer = r.raw();
    let mut victim = r.raw();
    let mut by_addr = r.raw();
    assert_eq!(victim.cmd(&["CLIENT", "SETNAME", "victim"]), b"+OK\r\n");
    let victim_id = int(victim.frame(&["CLIENT", "ID"]));

    by_addr.cmd(&["PING"]);
    let list = wait_for_clients(&mut killer, 3);
    assert_eq!(list.lines().count(), 3, "{list}");
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={victim_id} ")))
        .expect("victim listed");
    assert!(line.contains(" name=victim "), "{line}");
    assert!(line.contains(" cmd=client|id "), "{line}");

    assert_eq!(
        killer.cmd(&["CLIENT", "KILL", "ID", &victim_id.to_string()]),
        b":1\r\n"
    );
    assert!(closed_within(&mut victim, 5), "killed client still open");
    assert_eq!(
        killer.cmd(&["CLIENT", "KILL", "ID", &victim_id.to_string()]),
        b":0\r\n"
    );

    // The old form, by address: +OK, and the connection goes.
    let addr = by_addr.stream.local_addr().expect("addr").to_string();
    assert_eq!(killer.cmd(&["CLIENT", "KILL", &addr]), b"+OK\r\n");
    assert!(closed_within(&mut by_addr, 5));
    assert_eq!(
        killer.cmd(&["CLIENT", "KILL", &addr]),
        b"-ERR No such client\r\n"
    );

    // Killing oneself: the reply still arrives, then the connection closes.
    let me = int(killer.frame(&["CLIENT", "ID"])).to_string();
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "ID", &me]), b":0\r\n");
    assert_eq!(
        killer.cmd(&["CLIENT", "KILL", "ID", &me, "SKIPME", "no"]),
        b":1\r\n"
    );
    assert!(closed_within(&mut killer, 5));
    let list = wait_for_clients(&mut r.raw(), 1);
    assert_eq!(list.lines().count(), 1, "{list}");
}

#[test]
fn info_reports_real_figures() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut a = r.raw();
    let mut b = r.raw();
    let mut c = r.raw();
    // A connection is registered once a worker has taken it: a reply proves that.
    b.cmd(&["PING"]);
    c.cmd(&["PING"]);
    wait_for_clients(&mut a, 3);
    assert_eq!(info_field(&mut a, "clients", "connected_clients"), "3");
    drop(c);
    wait_for_clients(&mut a, 2);
    assert_eq!(info_field(&mut a, "clients", "connected_clients"), "2");
    for i in 0..25 {
        a.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    a.cmd(&["HSET", "h", "f", "v"]);
    a.cmd(&["SET", "ttl", "v", "EX", "1000"]);
    a.cmd(&["SELECT", "2"]);
    a.cmd(&["SET", "other", "v"]);
    let keyspace = bulk(a.frame(&["INFO", "keyspace"]));
    let lines: Vec<&str> = keyspace.lines().collect();
    assert_eq!(lines[0], "# Keyspace", "{keyspace}");
    assert!(
        lines[1].starts_with("db0:keys=27,expires=1,avg_ttl="),
        "{keyspace}"
    );
    let avg: u64 = lines[1].rsplit('=').next().unwrap().parse().unwrap();
    assert!(avg > 900_000 && avg <= 1_000_000, "avg_ttl {avg}");
    assert_eq!(lines[2], "db2:keys=1,expires=0,avg_ttl=0");

    let before: u64 = info_field(&mut a, "stats", "total_commands_processed")
        .parse()
        .unwrap();
    assert!(before >= 30, "{before}");
    a.cmd(&["PING"]);
    a.cmd(&["NOSUCHCOMMAND"]);
    a.cmd(&["SELECT", "0"]);
    a.cmd(&["HSET", "k0", "f", "v"]);
    let errors = bulk(a.frame(&["INFO", "errorstats"]));
    // The server listens while it loads: the start-up's readiness PING may have been
    // answered -LOADING, which counts as Redis counts it.
    let errors: String = errors
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("errorstat_LOADING:"))
        .collect();
    assert_eq!(
        errors,
        "# Errorstats\r\nerrorstat_ERR:count=1\r\nerrorstat_WRONGTYPE:count=1\r\n"
    );
    let after: u64 = info_field(&mut a, "stats", "total_commands_processed")
        .parse()
        .unwrap();
    assert!(after >= before + 3, "{before} -> {after}");
    assert!(
        info_field(&mut a, "stats", "total_error_replies")
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(
        info_field(&mut a, "stats", "total_connections_received")
            .parse::<u64>()
            .unwrap()
            >= 3
    );

    // used_memory_rss is what /proc says of the process.
    let rss: u64 = info_field(&mut a, "memory", "used_memory_rss")
        .parse()
        .unwrap();
    let statm = std::fs::read_to_string(format!("/proc/{}/statm", r.child.id())).unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    let proc_rss = pages * 4096;
    assert!(
        rss.abs_diff(proc_rss) < proc_rss / 5,
        "INFO says {rss}, /proc says {proc_rss}"
    );
    assert_eq!(info_field(&mut a, "persistence", "aof_enabled"), "0");
    assert_eq!(info_field(&mut a, "server", "tcp_port"), r.port.to_string());

    // INFO everything has every section; several sections are given in Redis's order.
    let all = bulk(a.frame(&["INFO", "everything"]));
    for s in [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Keyspace",
    ] {
        assert!(all.contains(&format!("# {s}\r\n")), "{s} missing");
    }
    let two = bulk(a.frame(&["INFO", "keyspace", "CLIENTS"]));
    assert!(two.starts_with("# Clients\r\n"), "{two}");
    assert!(two.contains("\r\n\r\n# Keyspace\r\n"), "{two}");

    assert_eq!(a.cmd(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    let reset: u64 = info_field(&mut a, "stats", "total_commands_processed")
        .parse()
        .unwrap();
    assert!(reset <= 2, "{reset} after RESETSTAT");
}

#[test]
fn config_set_takes_effect() {
    let r = Rudis::start(&["--appendonly", "no", "--loglevel", "notice"]);
    let mut admin = r.raw();

    // timeout: an idle client is closed once it has been idle that long, a busy one is not.
    let mut idle = r.raw();
    let mut busy = r.raw();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "timeout", "1"]), b"+OK\r\n");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        assert_eq!(busy.cmd(&["PING"]), b"+PONG\r\n");
        assert_eq!(admin.cmd(&["PING"]), b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(closed_within(&mut idle, 2), "idle client not closed");
    assert_eq!(busy.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(admin.cmd(&["CONFIG", "SET", "timeout", "0"]), b"+OK\r\n");

    // All or nothing: one bad pair and nothing changes.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "timeout", "9", "loglevel", "loud"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning\r\n".to_vec()
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "timeout"]),
        b"*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n"
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "databases", "1"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n".to_vec()
    );
    // A setting set to the value it has is no change, and no error (Redis's
    // unit/introspection sets every setting back to its own value): the port stays bound.
    let port = r.port.to_string();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "port", &port]), b"+OK\r\n");
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "workers", "5", "port", &port]),
        b"+OK\r\n"
    );
}

#[test]
fn config_set_loglevel_takes_effect() {
    // Started by hand: the harness sets RUST_LOG, which takes logging out of the config's hands.
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--appendonly", "no"])
        .args(["--loglevel", "notice"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn");
    common::wait_ready(port, &mut child, "rudis-server", &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut admin = Raw::connect(port);
    admin.cmd(&["PING"]);
    assert!(!read_log().contains("DEBUG"), "debug logged at notice");
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "loglevel", "debug"]),
        b"+OK\r\n"
    );
    Raw::connect(port).cmd(&["PING"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !read_log().contains("DEBUG") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        read_log().contains("DEBUG"),
        "no debug line:\n{}",
        read_log()
    );
}

#[test]
fn config_file_then_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data dir");
    std::fs::create_dir(&data).unwrap();
    let port = free_port();
    let conf = tmp.path().join("redis.conf");
    std::fs::write(
        &conf,
        format!(
            "# rudis test\n\
             port {port}\n\
             bind 127.0.0.1\n\
             dir \"{}\"\n\
             APPENDONLY yes\n\
             appendfilename 'my file.aof'\n\
             appendfsync everysec\n\
             timeout 300\n\
             loglevel warning\n\
             save \"\"\n\
             databases 4\n",
            data.display()
        ),
    )
    .unwrap();
    let log = tmp.path().join("log");
    let mut child = Command::new(BIN)
        .arg(&conf)
        .args(["--appendfsync", "always", "--databases", "8"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn");
    // Up once it answers PING (a bare connect could be anyone's), and killed even if an
    // assertion fails.
    common::wait_ready(port, &mut child, "rudis-server", &log);
    let child = common::KillOnDrop(child);
    let mut raw = Raw::connect(port);
    let get = |raw: &mut Raw, name: &str| match raw.frame(&["CONFIG", "GET", name]) {
        Frame::Array(v) if v.len() == 2 => bulk(v[1].clone()),
        other => panic!("CONFIG GET {name}: {other:?}"),
    };
    assert_eq!(get(&mut raw, "timeout"), "300");
    assert_eq!(get(&mut raw, "appendfilename"), "my file.aof");
    assert_eq!(
        get(&mut raw, "appendfsync"),
        "always",
        "flag overrides file"
    );
    assert_eq!(get(&mut raw, "databases"), "8", "flag overrides file");
    assert_eq!(get(&mut raw, "loglevel"), "warning");
    assert_eq!(
        get(&mut raw, "dir"),
        std::fs::canonicalize(&data).unwrap().display().to_string()
    );
    assert_eq!(raw.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert!(
        data.join("my file.aof").exists(),
        "AOF not in the configured dir"
    );
    let config_file = bulk(raw.frame(&["INFO", "server"]));
    assert!(
        config_file.contains(&format!(
            "config_file:{}",
            std::fs::canonicalize(&conf).unwrap().display()
        )),
        "{config_file}"
    );
    drop(child);

    // An unknown directive stops start-up, in Redis's words, naming the line.
    std::fs::write(&conf, format!("port {port}\n\nno-such-directive yes\n")).unwrap();
    let conf_s = conf.to_str().unwrap();
    let (ok, err) = run_briefly(&[conf_s]).expect("should exit");
    assert!(!ok);
    assert!(
        err.contains(
            "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n\
             Reading the configuration file, at line 3\n\
             >>> 'no-such-directive yes'\n\
             Bad directive or wrong number of arguments"
        ),
        "{err}"
    );
    for (text, want) in [
        (
            "include /nonexistent/other.conf\n",
            "can't open config file '/nonexistent/other.conf'",
        ),
        (
            "port 1 2\n",
            "at line 1\n>>> 'port 1 2'\nwrong number of arguments",
        ),
        (
            "dir \"unbalanced\n",
            "Unbalanced quotes in configuration line",
        ),
        (
            "appendfsync sometimes\n",
            "argument(s) must be one of the following: everysec, always, no",
        ),
    ] {
        std::fs::write(&conf, text).unwrap();
        let (ok, err) = run_briefly(&[conf_s]).expect("should exit");
        assert!(!ok && err.contains(want), "{text:?}: {err}");
    }
    let (ok, err) = run_briefly(&["/nonexistent/redis.conf"]).expect("should exit");
    assert!(!ok && err.contains("/nonexistent/redis.conf"), "{err}");
}

#[test]
fn hrandfield_refuses_a_reply_too_big_to_build() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    c.cmd(&["HSET", "h", "f", "v"]);
    assert_eq!(
        c.cmd(&["HRANDFIELD", "h", "-9223372036854775807"]),
        b"-ERR value is out of range\r\n"
    );
    let reply = c.cmd(&["HRANDFIELD", "h", "-1000"]);
    assert!(reply.starts_with(b"*1000\r\n$1\r\nf\r\n"));
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
}

/// CONFIG RESETSTAT zeroes `lazyfreed_objects` too, as Redis's lazyfreeResetStats.
#[test]
fn resetstat_zeroes_the_lazyfree_count() {
    let server = Rudis::start(&[]);
    let mut a = server.raw();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let mut cmd = vec!["SADD", "big"];
    cmd.extend(members.iter().map(String::as_str));
    assert_eq!(a.cmd(&cmd), b":1000\r\n");
    assert_eq!(a.cmd(&["UNLINK", "big"]), b":1\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut a, "memory", "lazyfreed_objects") != "1" {
        assert!(Instant::now() < deadline, "not freed in the background");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(a.cmd(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    assert_eq!(info_field(&mut a, "memory", "lazyfreed_objects"), "0");
}

/// `qbuf` + `qbuf-free` of the client named `name` in CLIENT LIST: its input buffer's size.
fn query_buffer(raw: &mut Raw, name: &str) -> u64 {
    let list = bulk(raw.frame(&["CLIENT", "LIST"]));
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))
        .unwrap_or_else(|| panic!("no client {name} in {list}"));
    let field = |f: &str| -> u64 {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{f}=")))
            .unwrap_or_else(|| panic!("no {f} in {line}"))
            .parse()
            .unwrap()
    };
    field("qbuf") + field("qbuf-free")
}

/// The input buffer as Redis 7.0 sizes its query buffer (unit/querybuf checks it through
/// CLIENT LIST): one 16 KiB chunk for a first small request, room for exactly a big argument,
/// cut to the recent peak by the cron once small requests follow, and given back entirely
/// once the client is idle more than 2 s.
#[test]
fn the_query_buffer_is_sized_and_given_back_as_redis_does() {
    let r = Rudis::start(&[]);
    let mut admin = r.raw();
    let mut c = r.raw();
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "sized"]), b"+OK\r\n");
    assert_eq!(query_buffer(&mut admin, "sized"), 16 * 1024);

    let value = "A".repeat(400_000);
    assert_eq!(c.cmd(&["SET", "x", &value]), b"+OK\r\n");
    let big = query_buffer(&mut admin, "sized");
    // The request's header and the argument, and not the doubling's slack.
    assert!((400_002..400_100).contains(&big), "{big}");

    let deadline = Instant::now() + Duration::from_secs(3);
    let shrunk = loop {
        assert_eq!(c.cmd(&["SET", "x", "small"]), b"+OK\r\n");
        let now = query_buffer(&mut admin, "sized");
        if now < big {
            break now;
        }
        assert!(Instant::now() < deadline, "the buffer stayed at {now}");
        std::thread::sleep(Duration::from_millis(10));
    };
    // Cut to the recent peak (a small request's size), or, if a request came after the cut,
    // one chunk again.
    assert!(
        shrunk > 0 && (shrunk < 1024 || shrunk == 16 * 1024),
        "{shrunk}"
    );

    // Idle: nothing kept, once CLIENT LIST says 3 s.
    let deadline = Instant::now() + Duration::from_secs(6);
    while query_buffer(&mut admin, "sized") != 0 {
        assert!(Instant::now() < deadline, "an idle client kept its buffer");
        std::thread::sleep(Duration::from_millis(100));
    }
    // And a request after that still works, from a new chunk.
    assert_eq!(c.cmd(&["GET", "x"]), b"$5\r\nsmall\r\n");
    assert_eq!(query_buffer(&mut admin, "sized"), 16 * 1024);
}

/// A CONFIG SET whose port cannot be listened on changes nothing, the settings kept outside
/// the Config (maxmemory, the encoding limits) included (unit/introspection's "CONFIG SET
/// rollback on apply error").
#[test]
fn config_set_failing_to_listen_changes_nothing() {
    let r = Rudis::start(&[]);
    let mut c = r.raw();
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let reply = c.cmd(&[
        "CONFIG",
        "SET",
        "maxmemory",
        "10000001",
        "zset-max-listpack-entries",
        "7",
        "port",
        &port,
        "client-query-buffer-limit",
        "10mb",
    ]);
    assert!(
        reply.starts_with(
            b"-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen"
        ),
        "{}",
        common::show(&reply)
    );
    for (name, was) in [
        ("maxmemory", "0"),
        ("zset-max-listpack-entries", "128"),
        ("client-query-buffer-limit", "1073741824"),
    ] {
        let got = c.cmd(&["CONFIG", "GET", name]);
        let want = format!(
            "*2\r\n${}\r\n{name}\r\n${}\r\n{was}\r\n",
            name.len(),
            was.len()
        );
        assert_eq!(common::show(&got), common::show(want.as_bytes()));
    }
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
}

/// A connection to `ip`:`port`, or None if it is refused.
fn try_connect(ip: &str, port: u16) -> Option<Raw> {
    std::net::TcpStream::connect((ip, port))
        .ok()
        .map(Raw::from_stream)
}

#[test]
fn config_set_bind_moves_the_listeners_as_redis() {
    let r = Rudis::start(&["--bind", "127.0.0.1"]);
    let mut admin = r.raw();
    assert!(try_connect("127.0.0.2", r.port).is_none());
    // Both addresses on the same port: the old listener closes before the new ones bind.
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "bind", "127.0.0.1 127.0.0.2"]),
        b"+OK\r\n"
    );
    let mut second = try_connect("127.0.0.2", r.port).expect("listening on 127.0.0.2");
    assert_eq!(second.cmd(&["PING"]), b"+PONG\r\n");
    // Addresses that cannot be bound: Redis's error, and the old ones listen again.
    let real = common::RealRedis::start(&[]);
    let mut redis = real.raw();
    for bad in ["999.999.999.999", "192.0.2.1", "127.0.0.1 192.0.2.1"] {
        let got = admin.cmd(&["CONFIG", "SET", "bind", bad]);
        assert_eq!(
            show(&got),
            show(&redis.cmd(&["CONFIG", "SET", "bind", bad])),
            "{bad}"
        );
        assert_eq!(
            show(&got),
            "-ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to \
             specified addresses.\\r\\n"
        );
        for ip in ["127.0.0.1", "127.0.0.2"] {
            let mut c = try_connect(ip, r.port).unwrap_or_else(|| panic!("{ip} after {bad}"));
            assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
        }
    }
    assert_eq!(
        show(&admin.cmd(&["CONFIG", "GET", "bind"])),
        "*2\\r\\n$4\\r\\nbind\\r\\n$19\\r\\n127.0.0.1 127.0.0.2\\r\\n"
    );
    // Moved away: connections already made stay.
    assert_eq!(
        second.cmd(&["CONFIG", "SET", "bind", "127.0.0.2"]),
        b"+OK\r\n"
    );
    assert!(try_connect("127.0.0.1", r.port).is_none());
    assert_eq!(admin.cmd(&["PING"]), b"+PONG\r\n");
    // No address at all: nothing listens, as in Redis, until bind is set again.
    assert_eq!(admin.cmd(&["CONFIG", "SET", "bind", ""]), b"+OK\r\n");
    assert!(try_connect("127.0.0.2", r.port).is_none());
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "bind"]),
        b"*2\r\n$4\r\nbind\r\n$0\r\n\r\n"
    );
    assert_eq!(admin.cmd(&["CONFIG", "SET", "bind", "*"]), b"+OK\r\n");
    assert!(try_connect("127.0.0.1", r.port).is_some());
}

/// CONFIG SET dir as Redis's: the server moves into the directory (a SAVE writes there), a
/// missing one is strerror's words (differential), and while the data loads the setting is
/// refused with -LOADING (DENY_LOADING_CONFIG) where loglevel is taken.
#[test]
fn config_set_dir_moves_the_server_and_waits_for_the_load() {
    let protected = ["--enable-protected-configs", "yes", "--appendonly", "no"];
    let real = common::RealRedis::start(&protected);
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Rudis::start_in(tmp.path(), &protected);
    let mut c = r.raw();
    let missing = ["CONFIG", "SET", "dir", "/nonexistent/rudis-dir"];
    assert_eq!(show(&c.cmd(&missing)), show(&real.raw().cmd(&missing)));
    let other = tempfile::tempdir().unwrap();
    let other_path = std::fs::canonicalize(other.path()).unwrap();
    let other_path = other_path.to_str().unwrap();
    assert_eq!(c.cmd(&["CONFIG", "SET", "dir", other_path]), b"+OK\r\n");
    let Frame::Array(got) = c.frame(&["CONFIG", "GET", "dir"]) else {
        panic!("CONFIG GET dir")
    };
    assert_eq!(bulk(got[1].clone()), other_path);
    for batch in 0..20 {
        let mut mset = vec!["MSET".to_string()];
        for i in 0..1000 {
            mset.push(format!("key:{batch}:{i}"));
            mset.push("v".into());
        }
        assert_eq!(c.cmd(&mset), b"+OK\r\n");
    }
    assert_eq!(c.cmd(&["SAVE"]), b"+OK\r\n");
    assert!(
        other.path().join("dump.rdb").exists(),
        "saved in the new dir"
    );
    assert!(!tmp.path().join("dump.rdb").exists());
    r.kill9();

    // 20,000 keys at 100 µs each: two seconds of loading to look at.
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string(), "--dir", other_path])
        .args(protected)
        .args(["--key-load-delay", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break Raw::from_stream(s);
        }
        assert!(Instant::now() < deadline, "no listener");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        info_field(&mut c, "persistence", "loading") == "1",
        "still loading"
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "loglevel", "debug"]), b"+OK\r\n");
    assert_eq!(
        show(&c.cmd(&["CONFIG", "SET", "dir", "/tmp"])),
        "-LOADING Redis is loading the dataset in memory\\r\\n"
    );
    // An immutable setting before it is its own error, as Redis checks in order.
    assert!(
        show(&c.cmd(&["CONFIG", "SET", "daemonize", "yes", "dir", "/tmp"]))
            .contains("can't set immutable config")
    );
    assert_eq!(info_field(&mut c, "persistence", "loading"), "1");
    let _ = child.kill();
    let _ = child.wait();
}
