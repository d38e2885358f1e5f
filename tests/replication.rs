//! Replication against real Redis: rudis as a replica of a redis-server master (full sync
//! from an RDB sent with its length and from a diskless, EOF-marked one; the command stream
//! under a write load of every type; partial resync after a link cut through a proxy; the
//! master killed mid-stream; the replica restarted mid-sync), each ending with a key-by-key
//! comparison of the two data sets; and the replica's gates (READONLY, MASTERDOWN), ROLE,
//! INFO replication and REPLICAOF NO ONE.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, RealRedis, Rng, Rudis};

fn con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .expect("connect")
}

fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(c).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

fn info_int(c: &mut redis::Connection, section: &str, field: &str) -> i64 {
    info_field(c, section, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// Waits until the replica has applied everything the master has sent.
fn wait_caught_up(master: u16, replica: u16, within: Duration) {
    let mut m = con(master);
    let mut r = con(replica);
    let deadline = Instant::now() + within;
    loop {
        let want = info_int(&mut m, "replication", "master_repl_offset");
        let link = info_field(&mut r, "replication", "master_link_status");
        let have = info_int(&mut r, "replication", "slave_repl_offset");
        if link.as_deref() == Some("up") && have == want && want > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica did not catch up: master offset {want}, replica {have}, link {link:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every key of every database, with its type, its content read back with type-specific
/// commands (members sorted where the type has no order), and whether it has a TTL.
fn dataset(port: u16) -> BTreeMap<(u8, Vec<u8>), String> {
    let mut c = con(port);
    let mut all = BTreeMap::new();
    for db in 0..4u8 {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut c).unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        for k in keys {
            let t: String = redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
            let body = match t.as_str() {
                "string" => {
                    let v: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query(&mut c).unwrap();
                    format!("{v:?}")
                }
                "list" => {
                    let v: Vec<Vec<u8>> = redis::cmd("LRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .query(&mut c)
                        .unwrap();
                    format!("{v:?}")
                }
                "set" => {
                    let mut v: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&k).query(&mut c).unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "zset" => {
                    let v: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query(&mut c)
                        .unwrap();
                    format!("{v:?}")
                }
                "hash" => {
                    let mut v: Vec<(Vec<u8>, Vec<u8>)> =
                        redis::cmd("HGETALL").arg(&k).query(&mut c).unwrap();
                    v.sort();
                    format!("{v:?}")
                }
                "stream" => {
                    let v: redis::Value = redis::cmd("XRANGE")
                        .arg(&k)
                        .arg("-")
                        .arg("+")
                        .query(&mut c)
                        .unwrap();
                    format!("{v:?}")
                }
                // Gone between KEYS and TYPE (expired): compared as absent.
                "none" => continue,
                other => panic!("unexpected type {other}"),
            };
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut c).unwrap();
            all.insert((db, k), format!("{t} ttl={} {body}", ttl > 0));
        }
    }
    all
}

fn assert_same_data(master: u16, replica: u16) {
    let m = dataset(master);
    let r = dataset(replica);
    assert!(
        !m.is_empty(),
        "the master holds no data: the test proves nothing"
    );
    for (k, v) in &m {
        assert_eq!(
            r.get(k),
            Some(v),
            "key {:?} of db {}",
            String::from_utf8_lossy(&k.1),
            k.0
        );
    }
    assert_eq!(m.len(), r.len(), "the replica has keys the master has not");
}

/// Keys of every type but streams (the write load adds those), in three databases, some
/// with TTLs.
fn preload(port: u16, n: usize) {
    let mut c = con(port);
    for db in 0..3u8 {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut c).unwrap();
        let mut p = redis::pipe();
        for i in 0..n {
            p.cmd("SET")
                .arg(format!("s:{i}"))
                .arg(format!("v{i}"))
                .ignore();
            p.cmd("SET").arg(format!("n:{i}")).arg(i).ignore();
            p.cmd("RPUSH")
                .arg(format!("l:{}", i % 20))
                .arg(i)
                .arg(format!("x{i}"))
                .ignore();
            p.cmd("SADD").arg(format!("is:{}", i % 10)).arg(i).ignore();
            p.cmd("SADD")
                .arg(format!("ss:{}", i % 10))
                .arg(format!("m{i}"))
                .ignore();
            p.cmd("ZADD")
                .arg(format!("z:{}", i % 10))
                .arg(i as f64 / 3.0)
                .arg(format!("m{i}"))
                .ignore();
            p.cmd("HSET")
                .arg(format!("h:{}", i % 10))
                .arg(format!("f{i}"))
                .arg(i)
                .ignore();
            if i % 7 == 0 {
                p.cmd("SET")
                    .arg(format!("t:{i}"))
                    .arg("ttl")
                    .arg("EX")
                    .arg(1000)
                    .ignore();
            }
        }
        // A big hash and a big sorted set (hashtable / skiplist encodings in Redis's RDB).
        for i in 0..300 {
            p.cmd("HSET")
                .arg("bighash")
                .arg(format!("field-{i}"))
                .arg("x".repeat(70))
                .ignore();
            p.cmd("ZADD")
                .arg("bigzset")
                .arg(i)
                .arg(format!("member-{i}-{}", "y".repeat(70)))
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
}

/// One random write of any type (streams included), in a random database of the first
/// three, sometimes inside MULTI, sometimes a script (Redis propagates its effects).
fn random_write(c: &mut redis::Connection, rng: &mut Rng, streams: bool) {
    let db = rng.below(3);
    let _: () = redis::cmd("SELECT").arg(db).query(c).unwrap();
    let i = rng.below(400);
    let cmd = match rng.below(16) {
        0 => redis::cmd("SET")
            .arg(format!("s:{i}"))
            .arg(rng.next())
            .clone(),
        1 => redis::cmd("INCRBY")
            .arg(format!("n:{i}"))
            .arg(rng.below(10))
            .clone(),
        2 => redis::cmd("RPUSH")
            .arg(format!("l:{}", i % 20))
            .arg(i)
            .clone(),
        3 => redis::cmd("LPOP").arg(format!("l:{}", i % 20)).clone(),
        4 => redis::cmd("SADD")
            .arg(format!("ss:{}", i % 10))
            .arg(format!("w{i}"))
            .clone(),
        5 => redis::cmd("SREM")
            .arg(format!("is:{}", i % 10))
            .arg(i)
            .clone(),
        6 => redis::cmd("ZINCRBY")
            .arg(format!("z:{}", i % 10))
            .arg(1.5)
            .arg(format!("m{i}"))
            .clone(),
        7 => redis::cmd("HINCRBY")
            .arg(format!("h:{}", i % 10))
            .arg(format!("f{i}"))
            .arg(3)
            .clone(),
        8 => redis::cmd("DEL").arg(format!("s:{i}")).clone(),
        9 if streams => redis::cmd("XADD")
            .arg(format!("x:{}", i % 5))
            .arg("*")
            .arg("f")
            .arg(i)
            .clone(),
        10 => redis::cmd("SET")
            .arg(format!("e:{i}"))
            .arg("short")
            .arg("PX")
            .arg(rng.below(300) + 1)
            .clone(),
        11 => redis::cmd("EXPIRE").arg(format!("s:{i}")).arg(1000).clone(),
        12 => redis::cmd("INCRBYFLOAT")
            .arg(format!("f:{i}"))
            .arg("0.1")
            .clone(),
        13 => redis::cmd("EVAL")
            .arg(
                "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('LPUSH', KEYS[2], ARGV[1])",
            )
            .arg(2)
            .arg(format!("s:{i}"))
            .arg(format!("l:{}", i % 20))
            .arg(rng.next())
            .clone(),
        14 => {
            let mut p = redis::pipe();
            p.atomic()
                .cmd("SET")
                .arg(format!("s:{i}"))
                .arg("multi")
                .ignore()
                .cmd("HSET")
                .arg(format!("h:{}", i % 10))
                .arg("m")
                .arg(i)
                .ignore()
                .cmd("ZREM")
                .arg(format!("z:{}", i % 10))
                .arg(format!("m{i}"))
                .ignore();
            match p.query::<()>(c) {
                // The server turned replica under the load (FAILOVER): refused, as the
                // other writes are.
                Err(e) if e.kind() == redis::ErrorKind::ReadOnly => {}
                r => r.unwrap(),
            }
            return;
        }
        _ => redis::cmd("HDEL")
            .arg("bighash")
            .arg(format!("field-{i}"))
            .clone(),
    };
    let _: redis::RedisResult<redis::Value> = cmd.query(c);
}

/// Writes to `port` on a thread until the flag is cleared; with `streams`, XADDs too.
fn write_load(
    port: u16,
    seed: u64,
    streams: bool,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let mut c = con(port);
        let mut rng = Rng::seeded(seed);
        let mut n = 0;
        while !s.load(Ordering::SeqCst) {
            random_write(&mut c, &mut rng, streams);
            n += 1;
        }
        n
    });
    (stop, h)
}

fn stop_load(load: (Arc<AtomicBool>, std::thread::JoinHandle<u64>)) -> u64 {
    load.0.store(true, Ordering::SeqCst);
    load.1.join().expect("the write load panicked")
}

/// Lets the short TTLs the load gave run out, so that both sides have expired them (the
/// replica by the master's DELs).
fn settle(master: u16, replica: u16) {
    std::thread::sleep(Duration::from_millis(400));
    // Reading every key makes the master expire (and propagate the DELs of) the ones due.
    let _ = dataset(master);
    wait_caught_up(master, replica, Duration::from_secs(20));
}

fn redis_to_rudis(diskless: bool) {
    let sync = if diskless { "yes" } else { "no" };
    let master = RealRedis::start(&[
        "--repl-diskless-sync",
        sync,
        "--repl-diskless-sync-delay",
        "0",
    ]);
    preload(master.port, 500);
    let load = write_load(master.port, 17, true);
    let mport = master.port.to_string();
    let replica = Rudis::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &mport]);
    wait_caught_up(master.port, replica.port, Duration::from_secs(30));
    let mut writes = stop_load(load);
    let load = write_load(master.port, 18, true);
    std::thread::sleep(Duration::from_millis(500));
    writes += stop_load(load);
    assert!(writes > 100, "only {writes} writes");
    settle(master.port, replica.port);
    assert_same_data(master.port, replica.port);
    let log = replica.log();
    assert!(log.contains("Finished with success"), "{log}");
    let how = if diskless {
        "with EOF"
    } else {
        "bytes from master"
    };
    assert!(log.contains(how), "{log}");
}

#[test]
fn redis_to_rudis_full_sync_from_disk() {
    redis_to_rudis(false);
}

#[test]
fn redis_to_rudis_full_sync_diskless() {
    redis_to_rudis(true);
}

#[test]
fn a_replica_refuses_writes_and_reports_its_role() {
    let master = RealRedis::start(&[
        "--repl-diskless-sync-delay",
        "0",
        "--enable-debug-command",
        "yes",
    ]);
    let mut m = con(master.port);
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut m).unwrap();
    let replica = Rudis::start(&["--appendonly", "no"]);
    let mut raw = replica.raw();
    assert_eq!(raw.cmd(&["ROLE"]), b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    let mport = master.port.to_string();
    assert_eq!(raw.cmd(&["REPLICAOF", "127.0.0.1", &mport]), b"+OK\r\n");
    assert_eq!(
        raw.cmd(&["REPLICAOF", "127.0.0.1", &mport]),
        b"+OK Already connected to specified master\r\n"
    );
    assert_eq!(
        raw.cmd(&["REPLICAOF", "127.0.0.1", "notaport"]),
        b"-ERR Invalid master port\r\n"
    );
    wait_caught_up(master.port, replica.port, Duration::from_secs(20));
    assert_eq!(raw.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(
        raw.cmd(&["SET", "k", "mine"]),
        b"-READONLY You can't write against a read only replica.\r\n"
    );
    // Inside MULTI the refusal dooms the transaction, as Redis's.
    raw.cmd(&["MULTI"]);
    assert_eq!(
        raw.cmd(&["INCR", "n"]),
        b"-READONLY You can't write against a read only replica.\r\n"
    );
    assert_eq!(
        raw.cmd(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    // A script's write too, as Redis's scriptVerifyWriteCommandAllow.
    let eval = raw.cmd(&["EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "k"]);
    assert!(
        eval.starts_with(b"-READONLY You can't write against a read only replica."),
        "{}",
        String::from_utf8_lossy(&eval)
    );
    assert_eq!(raw.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    let role = String::from_utf8_lossy(&raw.cmd(&["ROLE"])).into_owned();
    assert!(
        role.starts_with(&format!(
            "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:{mport}\r\n$9\r\nconnected\r\n:"
        )),
        "{role}"
    );
    let mut r = con(replica.port);
    let mut mm = con(master.port);
    assert_eq!(
        info_field(&mut r, "replication", "role").as_deref(),
        Some("slave")
    );
    assert_eq!(
        info_field(&mut r, "replication", "master_port"),
        Some(mport.clone())
    );
    assert_eq!(
        info_field(&mut r, "replication", "master_replid"),
        info_field(&mut mm, "replication", "master_replid")
    );
    for f in [
        "master_last_io_seconds_ago",
        "slave_read_repl_offset",
        "slave_priority",
        "slave_read_only",
        "replica_announced",
        "master_sync_in_progress",
    ] {
        assert!(
            info_field(&mut r, "replication", f).is_some(),
            "INFO lacks {f}"
        );
    }
    // The master sees it online, with the port it listens on.
    let slave0 = info_field(&mut mm, "replication", "slave0").unwrap_or_default();
    assert!(
        slave0.contains(&format!("port={},state=online", replica.port)),
        "{slave0}"
    );
    // Keys expire by the master's DELs; a read hides a key past its deadline meanwhile.
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut mm)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("e")
        .arg("v")
        .arg("PX")
        .arg(200)
        .query(&mut mm)
        .unwrap();
    wait_caught_up(master.port, replica.port, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(raw.cmd(&["GET", "e"]), b"$-1\r\n");
    assert_eq!(
        raw.cmd(&["DBSIZE"]),
        b":2\r\n",
        "the replica removed a key itself"
    );
    assert_eq!(mm_get(&mut mm, "e"), None);
    wait_caught_up(master.port, replica.port, Duration::from_secs(10));
    assert_eq!(
        raw.cmd(&["DBSIZE"]),
        b":1\r\n",
        "the master's DEL did not reach the replica"
    );
    // Promoted: writable, of a new history that continues the master's.
    let old_id = info_field(&mut r, "replication", "master_replid").unwrap();
    let offset = info_int(&mut r, "replication", "master_repl_offset");
    assert_eq!(raw.cmd(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "k", "mine"]), b"+OK\r\n");
    assert_eq!(
        info_field(&mut r, "replication", "role").as_deref(),
        Some("master")
    );
    assert_eq!(
        info_field(&mut r, "replication", "master_replid2"),
        Some(old_id)
    );
    assert_eq!(
        info_int(&mut r, "replication", "second_repl_offset"),
        offset + 1
    );
    assert_eq!(
        raw.cmd(&["CONFIG", "GET", "replicaof"]),
        b"*2\r\n$9\r\nreplicaof\r\n$0\r\n\r\n"
    );
}

fn mm_get(c: &mut redis::Connection, k: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(k).query(c).unwrap()
}

#[test]
fn a_replica_without_stale_data_answers_masterdown() {
    // Nothing listens on the master's port: the link never comes up.
    let nobody = free_port().to_string();
    let replica = Rudis::start(&["--appendonly", "no", "--replica-serve-stale-data", "no"]);
    let mut raw = replica.raw();
    assert_eq!(raw.cmd(&["REPLICAOF", "127.0.0.1", &nobody]), b"+OK\r\n");
    // As Redis's: PING is not a STALE command.
    assert_eq!(
        raw.cmd(&["PING"]),
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
    );
    assert_eq!(
        raw.cmd(&["GET", "k"]),
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
    );
    // STALE commands answer.
    assert!(raw.cmd(&["INFO", "replication"]).starts_with(b"$"));
    let info = String::from_utf8_lossy(&raw.cmd(&["INFO", "replication"])).into_owned();
    assert!(info.contains("master_link_status:down"), "{info}");
    assert!(info.contains("master_link_down_since_seconds:"), "{info}");
    let role = String::from_utf8_lossy(&raw.cmd(&["ROLE"])).into_owned();
    assert!(role.ends_with(":-1\r\n"), "{role}");
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "replica-serve-stale-data", "yes"]),
        b"+OK\r\n"
    );
    assert_eq!(raw.cmd(&["GET", "k"]), b"$-1\r\n");
}

/// A TCP proxy that can cut every connection through it, and refuse new ones meanwhile.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (u, cs) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !u.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                cs.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_cut_link_resumes_with_a_partial_resync() {
    // The load writes megabytes a second: the backlog must hold the 2 s of the cut.
    let master = RealRedis::start(&[
        "--repl-diskless-sync-delay",
        "0",
        "--repl-backlog-size",
        "200mb",
    ]);
    partial_resync_after_a_cut(Server::Redis(master), false, 5);
}

/// A partial resync goes on in the database the stream had selected: Redis's master sends
/// no SELECT for writes to the db its replica's stream is already in.
#[test]
fn a_partial_resync_keeps_the_selected_database() {
    let master = RealRedis::start(&["--repl-diskless-sync-delay", "0"]);
    let proxy = Proxy::start(master.port);
    let pport = proxy.port.to_string();
    let replica = Rudis::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &pport]);
    let mut m = con(master.port);
    let _: () = redis::cmd("SELECT").arg(2).query(&mut m).unwrap();
    let _: () = redis::cmd("SET")
        .arg("before")
        .arg("1")
        .query(&mut m)
        .unwrap();
    wait_caught_up(master.port, replica.port, Duration::from_secs(30));
    proxy.cut();
    let mut r = con(replica.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut r, "replication", "master_link_status").as_deref() != Some("down") {
        assert!(Instant::now() < deadline, "the link did not go down");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _: () = redis::cmd("SET")
        .arg("during")
        .arg("2")
        .query(&mut m)
        .unwrap();
    proxy.restore();
    wait_caught_up(master.port, replica.port, Duration::from_secs(30));
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        1,
        "a second full sync"
    );
    let _: () = redis::cmd("SELECT").arg(2).query(&mut r).unwrap();
    let got: Option<String> = redis::cmd("GET").arg("during").query(&mut r).unwrap();
    assert_eq!(
        got.as_deref(),
        Some("2"),
        "the write after the cut is not in db 2"
    );
    let _: () = redis::cmd("SELECT").arg(0).query(&mut r).unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut r).unwrap();
    assert_eq!(n, 0, "the write after the cut went to db 0");
}

#[test]
fn the_master_killed_mid_stream_then_back() {
    let dir = tempfile::tempdir().unwrap();
    let dpath = dir.path().to_str().unwrap().to_string();
    let port = free_port();
    let start_master = || {
        let mut child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .args([
                "--appendfsync",
                "always",
                "--dir",
                &dpath,
                "--repl-diskless-sync-delay",
                "0",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Up once it answers PING: a restarted master loads its AOF first (-LOADING).
        let pong = || -> redis::RedisResult<String> {
            let mut c =
                redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
            redis::cmd("PING").query(&mut c)
        };
        while pong().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            assert!(child.try_wait().unwrap().is_none(), "redis-server exited");
            std::thread::sleep(Duration::from_millis(20));
        }
        KillOnDrop(child)
    };
    let mut child = start_master();
    preload(port, 200);
    let replica = Rudis::start(&[
        "--appendonly",
        "no",
        "--replicaof",
        "127.0.0.1",
        &port.to_string(),
    ]);
    let load = write_load(port, 9, true);
    wait_caught_up(port, replica.port, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // The load's thread sees its connection fail: it panics, and that is expected here.
    load.0.store(true, Ordering::SeqCst);
    let _ = load.1.join();
    let mut r = con(replica.port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(&mut r, "replication", "master_link_status").as_deref() != Some("down") {
        assert!(Instant::now() < deadline, "the link stayed up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The replica still serves what it had.
    let n: i64 = redis::cmd("DBSIZE").query(&mut r).unwrap();
    assert!(n > 0);
    let child = start_master();
    let load = write_load(port, 10, true);
    std::thread::sleep(Duration::from_millis(500));
    stop_load(load);
    settle(port, replica.port);
    assert_same_data(port, replica.port);
    drop(child);
}

/// A server process the test started, killed however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_replica_restarted_mid_sync_syncs_again() {
    // 10 us per key makes the master's RDB of ~24,000 keys take a quarter of a second or more.
    let master = RealRedis::start(&["--repl-diskless-sync", "no", "--rdb-key-save-delay", "20"]);
    preload(master.port, 3000);
    let dir = tempfile::tempdir().unwrap();
    let mport = master.port.to_string();
    let args = ["--appendonly", "yes", "--replicaof", "127.0.0.1", &mport];
    let mut replica = Rudis::start_in(dir.path(), &args);
    let mut r = con(replica.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(&mut r, "replication", "master_sync_in_progress").as_deref() != Some("1") {
        assert!(Instant::now() < deadline, "the sync never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    replica.kill9();
    let load = write_load(master.port, 3, true);
    replica.restart();
    std::thread::sleep(Duration::from_millis(300));
    stop_load(load);
    wait_caught_up(master.port, replica.port, Duration::from_secs(60));
    settle(master.port, replica.port);
    assert_same_data(master.port, replica.port);
    // The replica's own AOF holds the synced data and the stream: started as a master on
    // it, it has the same data.
    let before = dataset(replica.port);
    drop(master);
    replica.kill9();
    let mut alone = Rudis::start_in(dir.path(), &["--appendonly", "yes"]);
    let after = dataset(alone.port);
    assert_eq!(before.len(), after.len());
    assert_eq!(before, after);
    alone.kill9();
}

/// rudis without an AOF, and as a master serving a full sync at once (Redis's default waits
/// `repl-diskless-sync-delay` 5 s for more replicas to share the snapshot).
const NO_AOF: &[&str] = &["--appendonly", "no"];
const NO_DELAY: &[&str] = &["--repl-diskless-sync-delay", "0"];

/// The master side, in each pairing: `replica_is_redis` puts a real Redis behind rudis.
enum Server {
    Rudis(Rudis),
    Redis(RealRedis),
}

impl Server {
    fn port(&self) -> u16 {
        match self {
            Server::Rudis(r) => r.port,
            Server::Redis(r) => r.port,
        }
    }

    /// rudis's log, for a failure's message (Redis's is not kept).
    fn log(&self) -> String {
        match self {
            Server::Rudis(r) => r.log(),
            Server::Redis(_) => String::new(),
        }
    }
}

/// A replica of 127.0.0.1:`master`: rudis's, or Redis's.
fn replica_of(master: u16, redis: bool) -> Server {
    let mport = master.to_string();
    if redis {
        Server::Redis(RealRedis::start(&["--replicaof", "127.0.0.1", &mport]))
    } else {
        Server::Rudis(Rudis::start(
            &[NO_AOF, NO_DELAY, &["--replicaof", "127.0.0.1", &mport]].concat(),
        ))
    }
}

/// A rudis master under a write load of every type (MULTI and scripts among it), a replica
/// started in the middle of it, more load, and then the same data key by key.
fn rudis_master_to(replica_is_redis: bool) {
    let master = Rudis::start(&[NO_AOF, NO_DELAY].concat());
    preload(master.port, 500);
    let load = write_load(master.port, 21, true);
    std::thread::sleep(Duration::from_millis(200));
    let replica = replica_of(master.port, replica_is_redis);
    wait_caught_up(master.port, replica.port(), Duration::from_secs(30));
    let mut writes = stop_load(load);
    let load = write_load(master.port, 22, true);
    std::thread::sleep(Duration::from_millis(500));
    writes += stop_load(load);
    assert!(writes > 100, "only {writes} writes");
    settle(master.port, replica.port());
    assert_same_data(master.port, replica.port());
    let mut m = con(master.port);
    assert_eq!(info_int(&mut m, "stats", "sync_full"), 1);
    assert_eq!(info_int(&mut m, "replication", "connected_slaves"), 1);
    let slave0 = info_field(&mut m, "replication", "slave0").unwrap_or_default();
    assert!(
        slave0.starts_with(&format!(
            "ip=127.0.0.1,port={},state=online,offset=",
            replica.port()
        )),
        "{slave0}"
    );
    assert_eq!(
        info_field(&mut m, "replication", "repl_backlog_active").as_deref(),
        Some("1")
    );
    // ROLE lists it with the offset it acknowledged.
    let role: redis::Value = redis::cmd("ROLE").query(&mut m).unwrap();
    let text = format!("{role:?}");
    assert!(text.contains(&replica.port().to_string()), "{text}");
}

#[test]
fn rudis_to_rudis_under_load() {
    rudis_master_to(false);
}

#[test]
fn rudis_to_redis_under_load() {
    rudis_master_to(true);
}

/// Redis → rudis → rudis: the middle one passes its master's stream on as it is, so the
/// end of the chain has the master's offsets and data.
#[test]
fn a_chain_redis_rudis_rudis() {
    let master = RealRedis::start(&["--repl-diskless-sync-delay", "0"]);
    preload(master.port, 300);
    let load = write_load(master.port, 31, true);
    let middle = replica_of(master.port, false);
    wait_caught_up(master.port, middle.port(), Duration::from_secs(30));
    let end = replica_of(middle.port(), false);
    std::thread::sleep(Duration::from_millis(500));
    stop_load(load);
    let load = write_load(master.port, 32, true);
    std::thread::sleep(Duration::from_millis(300));
    stop_load(load);
    settle(master.port, middle.port());
    wait_caught_up(master.port, end.port(), Duration::from_secs(30));
    assert_same_data(master.port, middle.port());
    assert_same_data(master.port, end.port());
    let mut e = con(end.port());
    let mut m = con(master.port);
    assert_eq!(
        info_field(&mut e, "replication", "master_replid"),
        info_field(&mut m, "replication", "master_replid"),
        "the chain's end is not of the master's history"
    );
}

/// A link cut for 2 s under load (through a proxy) resumes from the backlog, without a second
/// full sync: from Redis's master and from rudis's, with rudis's replicas and with Redis's.
fn partial_resync_after_a_cut(master: Server, replica_is_redis: bool, seed: u64) {
    let mport = master.port();
    preload(mport, 200);
    let proxy = Proxy::start(mport);
    let replica = replica_of(proxy.port, replica_is_redis);
    wait_caught_up(mport, replica.port(), Duration::from_secs(30));
    let load = write_load(mport, seed, true);
    std::thread::sleep(Duration::from_millis(300));
    proxy.cut();
    // Writes go on for 2 s while the link is down.
    std::thread::sleep(Duration::from_secs(2));
    let mut r = con(replica.port());
    assert_eq!(
        info_field(&mut r, "replication", "master_link_status").as_deref(),
        Some("down")
    );
    proxy.restore();
    std::thread::sleep(Duration::from_millis(1500));
    stop_load(load);
    let rp = replica.port();
    if std::panic::catch_unwind(|| settle(mport, rp)).is_err() {
        panic!("the replica did not catch up; its log:\n{}", replica.log());
    }
    assert_same_data(mport, replica.port());
    let mut m = con(mport);
    assert_eq!(
        info_int(&mut m, "stats", "sync_full"),
        1,
        "a second full sync: {}",
        master.log()
    );
    assert!(
        info_int(&mut m, "stats", "sync_partial_ok") >= 1,
        "no partial resync"
    );
    if !replica_is_redis {
        assert!(replica
            .log()
            .contains("Master accepted a Partial Resynchronization"));
    }
}

fn rudis_master_with_a_big_backlog() -> Server {
    Server::Rudis(Rudis::start(
        &[NO_AOF, NO_DELAY, &["--repl-backlog-size", "200mb"]].concat(),
    ))
}

#[test]
fn a_cut_link_to_a_rudis_master_resumes_partially() {
    partial_resync_after_a_cut(rudis_master_with_a_big_backlog(), false, 41);
}

#[test]
fn a_redis_replica_resumes_partially_from_a_rudis_master() {
    partial_resync_after_a_cut(rudis_master_with_a_big_backlog(), true, 41);
}

fn wait_reply(c: &mut redis::Connection, n: i64, ms: i64) -> i64 {
    redis::cmd("WAIT").arg(n).arg(ms).query(c).unwrap()
}

/// WAIT counts the replicas that have every write so far; a write it counted on survives the
/// master's death: the promoted replica has it, and the other replica follows the promoted
/// one by a partial resync (its history continues the old master's).
#[test]
fn writes_acknowledged_by_wait_survive_a_failover() {
    // No PING into the stream before the kill: one replica could get it and the other not,
    // and the one ahead could not continue from the one promoted (Redis would full-sync it
    // too).
    let quiet = &["--repl-ping-replica-period", "3600"];
    let mut master = Rudis::start(&[NO_AOF, NO_DELAY, quiet].concat());
    let a = replica_of(master.port, false);
    let b = replica_of(master.port, false);
    let mut m = con(master.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_int(&mut m, "replication", "connected_slaves") < 2
        || !info_field(&mut m, "replication", "slave1")
            .unwrap_or_default()
            .contains("online")
    {
        assert!(Instant::now() < deadline, "the replicas did not attach");
        std::thread::sleep(Duration::from_millis(20));
    }
    let load = write_load(master.port, 51, false);
    let mut acked = Vec::new();
    for i in 0..200 {
        let key = format!("acked:{i}");
        let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut m).unwrap();
        assert_eq!(
            wait_reply(&mut m, 2, 5000),
            2,
            "WAIT 2 did not see both replicas"
        );
        acked.push(key);
    }
    // More replicas than there are: the timeout answers with those that acknowledged.
    let started = Instant::now();
    assert_eq!(wait_reply(&mut m, 3, 200), 2);
    assert!(started.elapsed() >= Duration::from_millis(190));
    // Nothing written since: enough replicas answer at once.
    assert_eq!(wait_reply(&mut m, 0, 0), 2);
    stop_load(load);
    // Both replicas have all of the load before the master dies, and the REPLCONF GETACK
    // that WAIT itself put in the stream too (one replica holding those bytes and the other
    // not could not continue from it).
    assert_eq!(wait_reply(&mut m, 2, 5000), 2);
    wait_caught_up(master.port, a.port(), Duration::from_secs(20));
    wait_caught_up(master.port, b.port(), Duration::from_secs(20));
    master.kill9();
    let mut ra = con(a.port());
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut ra)
        .unwrap();
    for k in &acked {
        let v: Option<String> = redis::cmd("GET").arg(k).query(&mut ra).unwrap();
        assert!(v.is_some(), "{k} was acknowledged by WAIT and is lost");
    }
    let mut rb = con(b.port());
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(a.port())
        .query(&mut rb)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("1")
        .query(&mut ra)
        .unwrap();
    wait_caught_up(a.port(), b.port(), Duration::from_secs(20));
    settle(a.port(), b.port());
    assert_same_data(a.port(), b.port());
    assert_eq!(
        info_int(&mut ra, "stats", "sync_full"),
        0,
        "the other replica needed a full sync from the promoted one"
    );
    // WAIT on a replica is an error, Redis's words exactly.
    let mut raw = common::Raw::connect(b.port());
    assert_eq!(
        common::show(&raw.cmd(&["WAIT", "1", "0"])),
        common::show(
            b"-ERR WAIT cannot be used with replica instances. Please also note that since \
              Redis 4.0 if a replica is configured to be writable (which is not the default) \
              writes to replicas are just local and are not propagated.\r\n"
        )
    );
}

/// min-replicas-to-write refuses writes (NOREPLICAS) until enough replicas acknowledge
/// within min-replicas-max-lag.
#[test]
fn writes_wait_for_enough_good_replicas() {
    let master = Rudis::start(&[NO_AOF, NO_DELAY].concat());
    let mut raw = master.raw();
    // A write queued before the setting changed aborts EXEC: a container's subcommand
    // (FUNCTION FLUSH is a write, FUNCTION no command of its own) counts as Redis counts it.
    let mut other = master.raw();
    assert_eq!(raw.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["FUNCTION", "FLUSH"]), b"+QUEUED\r\n");
    assert_eq!(
        other.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]),
        b"+OK\r\n"
    );
    assert_eq!(
        raw.cmd(&["EXEC"]),
        &b"-EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write.\r\n"[..]
    );
    assert_eq!(
        raw.cmd(&["SET", "k", "v"]),
        b"-NOREPLICAS Not enough good replicas to write.\r\n"
    );
    // Reads are served; scripts that may write are refused, before they run when their flags
    // say so, at their first write when they have none (as Redis).
    assert_eq!(raw.cmd(&["GET", "k"]), b"$-1\r\n");
    let noreplicas = b"-NOREPLICAS Not enough good replicas to write.\r\n";
    assert_eq!(
        raw.cmd(&["EVAL", "#!lua\nreturn redis.call('get', KEYS[1])", "1", "k"]),
        noreplicas
    );
    assert_eq!(
        raw.cmd(&[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
            "1",
            "k"
        ]),
        b"$-1\r\n"
    );
    assert_eq!(
        raw.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]),
        b"$-1\r\n"
    );
    let refused = raw.cmd(&["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "k"]);
    assert!(
        refused.starts_with(&noreplicas[..noreplicas.len() - 2]),
        "{}",
        common::show(&refused)
    );
    // Refused when queued, so the transaction aborts.
    assert_eq!(raw.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "k", "v"]), noreplicas);
    assert_eq!(
        raw.cmd(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    let _replica = replica_of(master.port, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = raw.cmd(&["SET", "k", "v"]);
        if r == b"+OK\r\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused: {}",
            common::show(&r)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let info = String::from_utf8_lossy(&raw.cmd(&["INFO", "replication"])).into_owned();
    assert!(info.contains("min_slaves_good_slaves:1"), "{info}");
}

/// redis-cli --rdb takes a snapshot over the replication protocol; --replica shows the
/// stream.
#[test]
fn redis_cli_rdb_and_replica_work_against_rudis() {
    common::require_tool("redis-cli");
    let master = Rudis::start(&[NO_AOF, NO_DELAY].concat());
    preload(master.port, 100);
    // The file holds the data: a Redis started on it has every key.
    let (copy, _dir) = redis_on_cli_dump(master.port, "--rdb");
    assert_same_data(master.port, copy.port);
    let mut child = std::process::Command::new("redis-cli")
        .args(["-p", &master.port.to_string(), "--replica"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            s.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut m = con(master.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _: () = redis::cmd("SET")
            .arg("streamed")
            .arg("yes")
            .query(&mut m)
            .unwrap();
        let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        if text.contains("\"SET\",\"streamed\",\"yes\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "redis-cli --replica showed: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Redis carries PUBLISH to its replicas' subscribers; CLIENT LIST shows the replica (`S`) on
/// the master and the master's link (`M`) on the replica; CLIENT KILL TYPE replica|master ends
/// the link, which comes back with a partial resync.
#[test]
fn publish_reaches_replicas_and_links_are_clients_of_their_type() {
    let master = Rudis::start(&[NO_AOF, NO_DELAY].concat());
    let replica = replica_of(master.port, false);
    let mut m = master.raw();
    wait_caught_up_after_write(&mut m, master.port, replica.port());
    let mut sub = common::Raw::connect(replica.port());
    sub.send(&["SUBSCRIBE", "news"]);
    let _ = sub.read_reply();
    assert_eq!(m.cmd(&["PUBLISH", "news", "hello"]), b":0\r\n");
    assert_eq!(
        sub.read_reply(),
        b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    let listed =
        String::from_utf8_lossy(&m.cmd(&["CLIENT", "LIST", "TYPE", "replica"])).into_owned();
    assert!(listed.contains("flags=S "), "{listed}");
    let mut r = common::Raw::connect(replica.port());
    let listed =
        String::from_utf8_lossy(&r.cmd(&["CLIENT", "LIST", "TYPE", "master"])).into_owned();
    assert!(listed.contains("flags=M "), "{listed}");
    assert_eq!(m.cmd(&["CLIENT", "KILL", "TYPE", "replica"]), b":1\r\n");
    wait_caught_up_after_write(&mut m, master.port, replica.port());
    assert_eq!(r.cmd(&["CLIENT", "KILL", "TYPE", "master"]), b":1\r\n");
    wait_caught_up_after_write(&mut m, master.port, replica.port());
    let mut mc = con(master.port);
    assert_eq!(info_int(&mut mc, "stats", "sync_full"), 1);
    assert!(info_int(&mut mc, "stats", "sync_partial_ok") >= 2);
}

/// Writes a key on the master, then waits until the replica has it all.
fn wait_caught_up_after_write(m: &mut common::Raw, master: u16, replica: u16) {
    assert_eq!(m.cmd(&["SET", "tick", "1"]), b"+OK\r\n");
    wait_caught_up(master, replica, Duration::from_secs(20));
}

/// Replicas that ask within `repl-diskless-sync-delay` of each other share one snapshot.
#[test]
fn replicas_asking_within_the_delay_share_one_snapshot() {
    let master = Rudis::start(&[NO_AOF, &["--repl-diskless-sync-delay", "1"]].concat());
    preload(master.port, 100);
    let started = Instant::now();
    let a = replica_of(master.port, false);
    let b = replica_of(master.port, false);
    wait_caught_up(master.port, a.port(), Duration::from_secs(20));
    wait_caught_up(master.port, b.port(), Duration::from_secs(20));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the sync did not wait for the delay"
    );
    assert_same_data(master.port, a.port());
    assert_same_data(master.port, b.port());
    let log = master.log();
    let shared = log
        .lines()
        .filter(|l| l.contains("Snapshot for replicas"))
        .collect::<Vec<_>>();
    assert_eq!(shared.len(), 1, "{log}");
    assert!(
        shared[0].contains(&a.port().to_string()) && shared[0].contains(&b.port().to_string()),
        "{}",
        shared[0]
    );
    let mut m = con(master.port);
    assert_eq!(info_int(&mut m, "stats", "sync_full"), 2);
}

/// A transaction reaches the stream as Redis propagates it: its MULTI in the database of its
/// first write, a SELECT only where the database changes.
#[test]
fn a_transaction_across_databases_streams_as_redis_propagates_it() {
    let master = Rudis::start(&[NO_AOF, NO_DELAY].concat());
    let mut stream = TcpStream::connect(("127.0.0.1", master.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"SYNC\r\n").unwrap();
    // `$len\r\n` and the RDB, which no CRLF ends.
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
    let len: usize = std::str::from_utf8(&buf[1..buf.len() - 2])
        .unwrap()
        .parse()
        .unwrap();
    let mut rdb = vec![0u8; len];
    stream.read_exact(&mut rdb).unwrap();
    assert!(rdb.starts_with(b"REDIS"));
    let mut c = master.raw();
    assert_eq!(c.cmd(&["SELECT", "9"]), b"+OK\r\n");
    for cmd in [
        &["MULTI"][..],
        &["SELECT", "1"],
        &["SET", "a", "1"],
        &["GET", "a"],
        &["SELECT", "2"],
        &["SET", "b", "2"],
    ] {
        let _ = c.cmd(cmd);
    }
    let _ = c.cmd(&["EXEC"]);
    let mut want = Vec::new();
    for cmd in [
        &["SELECT", "1"][..],
        &["MULTI"],
        &["SET", "a", "1"],
        &["SELECT", "2"],
        &["SET", "b", "2"],
        &["EXEC"],
    ] {
        let mut one = format!("*{}\r\n", cmd.len());
        for a in cmd {
            one.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        want.extend_from_slice(one.as_bytes());
    }
    let mut got = vec![0u8; want.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(common::show(&got), common::show(&want));
}

/// A replica made by hand: it syncs once, acknowledges that offset, then stays silent, so a
/// master's FAILOVER to it waits for ever. It announces the port of a listener of its own,
/// where a master failing over to it connects.
struct StalledReplica {
    _link: TcpStream,
    listener: TcpListener,
    port: u16,
}

impl StalledReplica {
    fn attach(master: u16) -> StalledReplica {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut c = common::Raw::connect(master);
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
        let p = port.to_string();
        assert_eq!(c.cmd(&["REPLCONF", "listening-port", &p]), b"+OK\r\n");
        assert_eq!(c.cmd(&["REPLCONF", "capa", "psync2"]), b"+OK\r\n");
        c.send(&["PSYNC", "?", "-1"]);
        let mut link = c.stream;
        let full = read_line(&mut link);
        let offset = full.rsplit(' ').next().unwrap().to_string();
        assert!(full.starts_with("+FULLRESYNC "), "{full}");
        let len: usize = read_line(&mut link)
            .strip_prefix('$')
            .and_then(|l| l.parse().ok())
            .expect("the RDB's length");
        let mut rdb = vec![0u8; len];
        link.read_exact(&mut rdb).unwrap();
        let mut ack = Vec::new();
        for a in ["REPLCONF", "ACK", &offset] {
            ack.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
        }
        link.write_all(b"*3\r\n").unwrap();
        link.write_all(&ack).unwrap();
        StalledReplica {
            _link: link,
            listener,
            port,
        }
    }

    /// Accepts the master that fails over to this one and answers its handshake up to its
    /// PSYNC: that PSYNC's arguments, and the connection, to answer it.
    fn psync_from_master(&self) -> (Vec<String>, TcpStream) {
        self.listener.set_nonblocking(false).unwrap();
        let (mut s, _) = self.listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        loop {
            let argv = read_command(&mut s, &mut buf);
            if argv[0].eq_ignore_ascii_case("psync") {
                return (argv, s);
            }
            let reply: &[u8] = if argv[0].eq_ignore_ascii_case("ping") {
                b"+PONG\r\n"
            } else {
                b"+OK\r\n"
            };
            s.write_all(reply).unwrap();
        }
    }
}

/// A line from the master, skipping the bare newlines it sends while it prepares an RDB.
fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        s.read_exact(&mut b).unwrap();
        if b[0] == b'\n' {
            if line.is_empty() {
                continue;
            }
            return String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
        }
        line.push(b[0]);
    }
}

/// One RESP command (an array of bulk strings) from `s`.
fn read_command(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<String> {
    loop {
        if let Some((rudis::resp::Frame::Array(items), n)) = rudis::resp::Frame::parse(buf).unwrap()
        {
            buf.drain(..n);
            return items
                .iter()
                .map(|f| match f {
                    rudis::resp::Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                    other => format!("{other:?}"),
                })
                .collect();
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "the master closed the link");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Fields of one INFO replication ("?" for one it lacks).
fn repl_fields<const N: usize>(c: &mut common::Raw, names: [&str; N]) -> [String; N] {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "replication"])).into_owned();
    names.map(|name| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or("?")
            .trim()
            .to_string()
    })
}

fn failover_state(c: &mut common::Raw) -> String {
    repl_fields(c, ["role", "master_failover_state"]).join(" ")
}

/// Polls until the state is `want`: what it became (the transcript shows a wrong one).
fn wait_failover_state(c: &mut common::Raw, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = failover_state(c);
        if st == want || Instant::now() > deadline {
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when `c` has a reply within `ms` (a write the failover holds has none).
fn replies_within(c: &mut common::Raw, ms: u64) -> bool {
    c.stream
        .set_read_timeout(Some(Duration::from_millis(ms)))
        .unwrap();
    let mut b = [0u8; 1];
    let got = matches!(c.stream.peek(&mut b), Ok(n) if n > 0);
    c.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    got
}

/// FAILOVER's errors, its wait for a replica that never catches up (writes held, CLIENT
/// UNPAUSE not releasing them, TIMEOUT aborting), ABORT, and FORCE going ahead to a target
/// that then refuses the PSYNC FAILOVER (so the master is one again): a transcript.
fn failover_scenario(port: u16) -> Vec<String> {
    let mut t = Vec::new();
    let mut c = common::Raw::connect(port);
    let say = |t: &mut Vec<String>, c: &mut common::Raw, args: &[&str]| {
        let r = c.cmd(args);
        t.push(format!("{} => {}", args.join(" "), common::show(&r)));
    };
    say(&mut t, &mut c, &["FAILOVER"]);
    say(&mut t, &mut c, &["FAILOVER", "ABORT"]);
    for args in [
        &["FAILOVER", "TO"][..],
        &["FAILOVER", "TO", "127.0.0.1"],
        &["FAILOVER", "TO", "127.0.0.1", "x"],
        &["FAILOVER", "TIMEOUT"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TIMEOUT", "-5"],
        &["FAILOVER", "TIMEOUT", "x"],
        &["FAILOVER", "TIMEOUT", "10", "TIMEOUT", "10"],
        &["FAILOVER", "FORCE", "FORCE"],
        &["FAILOVER", "ABORT", "ABORT"],
        &["FAILOVER", "ABORT", "TIMEOUT", "10"],
        &["FAILOVER", "bogus"],
        &["failover", "to", "127.0.0.1", "1", "force", "timeout", "10"],
    ] {
        say(&mut t, &mut c, args);
    }
    let stalled = StalledReplica::attach(port);
    let p = stalled.port.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&c.cmd(&["INFO", "replication"])).contains("state=online") {
        assert!(Instant::now() < deadline, "the replica never came online");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The replica is behind from now on.
    say(&mut t, &mut c, &["SET", "k", "1"]);
    for args in [
        &["FAILOVER", "TO", "127.0.0.1", "1"][..],
        &["FAILOVER", "TO", "10.1.1.1", &p],
        &["FAILOVER", "TO", "127.0.0.1", &p, "FORCE"],
        &["FAILOVER", "FORCE", "TIMEOUT", "10"],
    ] {
        say(&mut t, &mut c, args);
    }
    // Waits, holding writes, and gives up at the timeout.
    say(
        &mut t,
        &mut c,
        &["FAILOVER", "TO", "127.0.0.1", &p, "TIMEOUT", "700"],
    );
    t.push(failover_state(&mut c));
    let mut w = common::Raw::connect(port);
    w.send(&["SET", "held", "1"]);
    say(&mut t, &mut c, &["GET", "k"]);
    say(&mut t, &mut c, &["FAILOVER"]);
    say(&mut t, &mut c, &["FAILOVER", "TO", "127.0.0.1", &p]);
    say(&mut t, &mut c, &["REPLICAOF", "127.0.0.1", "1"]);
    let mut s = common::Raw::connect(port);
    say(&mut t, &mut s, &["PSYNC", "?", "-1"]);
    say(&mut t, &mut c, &["CLIENT", "UNPAUSE"]);
    t.push(format!(
        "held write answered: {}",
        replies_within(&mut w, 200)
    ));
    t.push(wait_failover_state(&mut c, "master no-failover"));
    t.push(format!("held write: {}", common::show(&w.read_reply())));
    // ABORT, the only way out without a timeout.
    say(&mut t, &mut c, &["FAILOVER", "TO", "127.0.0.1", &p]);
    w.send(&["SET", "held", "2"]);
    t.push(format!(
        "held write answered: {}",
        replies_within(&mut w, 300)
    ));
    t.push(failover_state(&mut c));
    say(&mut t, &mut c, &["FAILOVER", "ABORT"]);
    t.push(failover_state(&mut c));
    t.push(format!("held write: {}", common::show(&w.read_reply())));
    say(&mut t, &mut c, &["FAILOVER", "ABORT"]);
    // FORCE: at the timeout this server follows the target anyway, with a PSYNC FAILOVER;
    // refused, it is a master again.
    let [replid, offset] = repl_fields(&mut c, ["master_replid", "master_repl_offset"]);
    say(
        &mut t,
        &mut c,
        &["FAILOVER", "TO", "127.0.0.1", &p, "FORCE", "TIMEOUT", "200"],
    );
    let (psync, mut link) = stalled.psync_from_master();
    let next = offset.parse::<i64>().unwrap() + 1;
    t.push(format!(
        "PSYNC from the master: {:?}",
        psync
            .iter()
            .map(|a| a
                .replace(&replid, "<replid>")
                .replace(&next.to_string(), "<offset+1>"))
            .collect::<Vec<_>>()
    ));
    t.push(failover_state(&mut c));
    say(&mut t, &mut c, &["SET", "k", "2"]);
    link.write_all(b"-ERR no thanks\r\n").unwrap();
    t.push(wait_failover_state(&mut c, "master no-failover"));
    say(&mut t, &mut c, &["SET", "k", "3"]);
    // On a replica.
    let nobody = free_port().to_string();
    say(&mut t, &mut c, &["REPLICAOF", "127.0.0.1", &nobody]);
    say(&mut t, &mut c, &["FAILOVER"]);
    say(&mut t, &mut c, &["PSYNC", "nope", "1", "FAILOVER"]);
    say(&mut t, &mut c, &["REPLICAOF", "NO", "ONE"]);
    say(&mut t, &mut c, &["PSYNC", "nope", "1", "FAILOVER"]);
    // Ports differ from run to run.
    t.iter()
        .map(|l| {
            l.replace(&p, "<replica-port>")
                .replace(&nobody, "<free-port>")
        })
        .collect()
}

#[test]
fn failover_errors_waits_timeout_abort_and_force_as_redis() {
    let expected = {
        let real = RealRedis::start(&["--repl-diskless-sync-delay", "0"]);
        failover_scenario(real.port)
    };
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let got = failover_scenario(rudis.port);
    assert_eq!(
        got,
        expected,
        "rudis vs redis-server; rudis's log: {}",
        rudis.log()
    );
    // The transcript shows what was checked: the held writes were held.
    assert!(got.contains(&"held write answered: false".to_string()));
    assert!(got.contains(&"slave failover-in-progress".to_string()));
}

/// Writes `acked:N` keys to `port` one by one until one is refused or the flag is set: the
/// ones the server answered +OK.
fn acked_writer(port: u16) -> (Arc<AtomicBool>, std::thread::JoinHandle<Vec<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let mut c = common::Raw::connect(port);
        let mut acked = Vec::new();
        for i in 0.. {
            if s.load(Ordering::SeqCst) {
                break;
            }
            let key = format!("acked:{i}");
            if c.cmd(&["SET", &key, "1"]) != b"+OK\r\n" {
                break;
            }
            acked.push(key);
        }
        acked
    });
    (stop, h)
}

/// FAILOVER TO one of two replicas under a write load: the target becomes the master with
/// every write the old one acknowledged, the old master its replica by a partial resync,
/// the other replica stays where it was (a replica of the old master, now in a chain, as
/// in Redis), and writes go on at the new master. The other replica is rudis's; the master
/// or the target may be Redis's.
fn failover_under_load(master_is_redis: bool, target_is_redis: bool) {
    let master = if master_is_redis {
        Server::Redis(RealRedis::start(&["--repl-diskless-sync-delay", "0"]))
    } else {
        Server::Rudis(Rudis::start(&["--appendonly", "no"]))
    };
    let log = || match &master {
        Server::Rudis(r) => r.log(),
        Server::Redis(_) => String::new(),
    };
    let master_port = master.port();
    preload(master_port, 300);
    let target = replica_of(master_port, target_is_redis);
    let other = replica_of(master_port, false);
    wait_caught_up(master_port, target.port(), Duration::from_secs(30));
    wait_caught_up(master_port, other.port(), Duration::from_secs(30));
    let load = write_load(master_port, 61, true);
    let writer = acked_writer(master_port);
    std::thread::sleep(Duration::from_millis(300));
    let mut m = common::Raw::connect(master_port);
    let tport = target.port().to_string();
    assert_eq!(
        m.cmd(&["FAILOVER", "TO", "127.0.0.1", &tport, "TIMEOUT", "10000"]),
        b"+OK\r\n"
    );
    assert_eq!(
        wait_failover_state(&mut m, "slave no-failover"),
        "slave no-failover",
        "{}",
        log()
    );
    let mut t = common::Raw::connect(target.port());
    assert_eq!(failover_state(&mut t), "master no-failover");
    // The old master's writers are refused from now on, as on any replica.
    let acked = writer.1.join().expect("the writer panicked");
    stop_load(load);
    assert!(acked.len() > 10, "only {} acknowledged writes", acked.len());
    for k in &acked {
        assert_eq!(
            t.cmd(&["EXISTS", k]),
            b":1\r\n",
            "{k} was acknowledged by the old master and is lost"
        );
    }
    assert!(String::from_utf8_lossy(&m.cmd(&["SET", "x", "1"])).starts_with("-READONLY"));
    // Writes resume at the new master and reach both.
    let load = write_load(target.port(), 62, true);
    std::thread::sleep(Duration::from_millis(300));
    stop_load(load);
    wait_caught_up(target.port(), master_port, Duration::from_secs(20));
    wait_caught_up(target.port(), other.port(), Duration::from_secs(20));
    settle(target.port(), master_port);
    wait_caught_up(target.port(), other.port(), Duration::from_secs(20));
    assert_same_data(target.port(), master_port);
    assert_same_data(target.port(), other.port());
    let mut tc = con(target.port());
    assert_eq!(
        info_int(&mut tc, "stats", "sync_full"),
        0,
        "the old master needed a full sync from the new one"
    );
    let mut oc = con(other.port());
    assert_eq!(
        info_int(&mut oc, "replication", "master_port"),
        i64::from(master_port),
        "the other replica was moved"
    );
    let mut mc = con(master_port);
    assert_eq!(
        info_int(&mut mc, "replication", "master_port"),
        i64::from(target.port())
    );
}

#[test]
fn failover_to_a_rudis_replica_under_load() {
    failover_under_load(false, false);
}

#[test]
fn failover_of_a_rudis_master_to_a_redis_replica() {
    failover_under_load(false, true);
}

#[test]
fn failover_of_a_redis_master_to_a_rudis_replica() {
    failover_under_load(true, false);
}

/// CONFIG REWRITE after a role change writes it (Sentinel rewrites after each failover).
#[test]
fn config_rewrite_keeps_the_role() {
    let master = Rudis::start(&[NO_AOF, NO_DELAY].concat());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rudis.conf");
    std::fs::write(&conf, "appendonly no\n").unwrap();
    let replica = Rudis::start_in(dir.path(), &[conf.to_str().unwrap()]);
    let mut r = replica.raw();
    let mport = master.port.to_string();
    assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &mport]), b"+OK\r\n");
    assert_eq!(r.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.lines()
            .any(|l| l == format!("replicaof 127.0.0.1 {mport}")),
        "{text}"
    );
    // While the replica loads the master's dataset it answers -LOADING, as Redis does.
    wait_caught_up_after_write(&mut master.raw(), master.port, replica.port);
    assert_eq!(r.cmd(&["REPLICAOF", "NO", "ONE"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(!text.contains("replicaof"), "{text}");
}

/// Scripts on a replica, as Redis judges them: by their declared flags before they run
/// (READONLY, MASTERDOWN, EXECABORT for a queued one), by the commands they call inside (the
/// stale-replica refusal of a non-STALE command in an `allow-stale` script). The same
/// commands go to a redis-server replica and a rudis one, both with their links down, and
/// the replies are compared byte for byte.
#[test]
fn scripts_on_a_replica_answer_as_redis() {
    let nobody = free_port().to_string();
    let lib = "#!lua name=lib\n\
        redis.register_function{function_name='ro', callback=function() return 'hi' end, flags={'no-writes'}}\n\
        redis.register_function{function_name='stale', callback=function() return 'hi' end, flags={'allow-stale', 'no-writes'}}\n\
        redis.register_function{function_name='staleget', callback=function() return redis.call('get', 'x') end, flags={'allow-stale', 'no-writes'}}\n\
        redis.register_function{function_name='staleecho', callback=function() return redis.call('echo', 'e') end, flags={'allow-stale', 'no-writes'}}\n\
        redis.register_function('w', function() return redis.call('set', 'x', '1') end)";
    let script: &[&[&str]] = &[
        &["SET", "x", "v"],
        &["FUNCTION", "LOAD", lib],
        &["REPLICAOF", "127.0.0.1", &nobody],
        // Served stale: only the write flags count.
        &["EVAL", "return redis.call('get','x')", "1", "x"],
        &["EVAL", "return redis.call('set','x','1')", "1", "x"],
        &["EVAL", "#!lua\nreturn redis.call('get','x')", "1", "x"],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get','x')",
            "1",
            "x",
        ],
        &["FCALL", "w", "0"],
        &["FCALL", "ro", "0"],
        &["FCALL_RO", "w", "0"],
        &["MULTI"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EXEC"],
        &["MULTI"],
        &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
        &["EXEC"],
        // Not served stale.
        &["CONFIG", "SET", "replica-serve-stale-data", "no"],
        &["EVAL", "return redis.call('get','x')", "1", "x"],
        &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
        &["EVAL", "#!lua flags=allow-stale,no-writes\nreturn 1", "0"],
        &[
            "EVAL",
            "#!lua flags=allow-stale,no-writes\nreturn redis.call('get','x')",
            "1",
            "x",
        ],
        &[
            "EVAL",
            "#!lua flags=allow-stale,no-writes\nreturn redis.call('echo','e')",
            "0",
        ],
        &["EVAL", "#!lua flags=allow-stale\nreturn 1", "0"],
        &["FCALL", "ro", "0"],
        &["FCALL", "stale", "0"],
        &["FCALL", "staleget", "0"],
        &["FCALL", "staleecho", "0"],
        &["FCALL", "w", "0"],
        &["CONFIG", "SET", "replica-serve-stale-data", "yes"],
        &["REPLICAOF", "NO", "ONE"],
        &["FCALL", "w", "0"],
        &["GET", "x"],
    ];
    let run = |mut c: common::Raw| -> Vec<String> {
        script
            .iter()
            .map(|cmd| format!("{cmd:?} -> {}", String::from_utf8_lossy(&c.cmd(cmd))))
            .collect()
    };
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(NO_AOF);
    let (want, got) = (run(redis.raw()), run(rudis.raw()));
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g, w);
    }
}

/// redis.set_repl sends each command where the script says: the replica gets the REPL_ALL
/// ones, the AOF the REPL_ALL and REPL_AOF ones (Redis's unit/scripting, "selective
/// replication"), with a replica of either kind.
fn selective_replication(replica_is_redis: bool) {
    let dir = tempfile::tempdir().unwrap();
    let master = Rudis::start_in(
        dir.path(),
        &[
            "--appendonly",
            "yes",
            "--enable-debug-command",
            "yes",
            NO_DELAY[0],
            NO_DELAY[1],
        ],
    );
    let replica = replica_of(master.port, replica_is_redis);
    wait_caught_up(master.port, replica.port(), Duration::from_secs(30));
    let mut m = master.raw();
    let body = "redis.call('set','a','1'); redis.set_repl(redis.REPL_NONE); \
                redis.call('set','b','2'); redis.set_repl(redis.REPL_AOF); \
                redis.call('set','c','3'); redis.set_repl(redis.REPL_ALL); \
                redis.call('set','d','4')";
    assert_eq!(m.cmd(&["EVAL", body, "0"]), b"$-1\r\n");
    let mut r = con(replica.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&["a", "b", "c", "d"])
            .query(&mut r)
            .unwrap();
        if got == [Some("1".into()), None, None, Some("4".into())] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica has {got:?}: {}",
            replica.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        m.cmd(&["MGET", "a", "b", "c", "d"]),
        b"*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n"
    );
    // The AOF has a, c and d.
    assert_eq!(m.cmd(&["DEBUG", "LOADAOF"]), b"+OK\r\n");
    assert_eq!(
        m.cmd(&["MGET", "a", "b", "c", "d"]),
        b"*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n$1\r\n4\r\n"
    );
}

#[test]
fn selective_replication_to_rudis() {
    selective_replication(false);
}

#[test]
fn selective_replication_to_redis() {
    selective_replication(true);
}

/// `bind-source-addr`: the replica's link to its master comes from that address, as the
/// master's INFO shows (Redis's unit/networking), whether set at start or by CONFIG SET.
#[test]
fn a_replica_connects_from_bind_source_addr() {
    let master = Rudis::start(&["--protected-mode", "no"]);
    let mut m = con(master.port);
    let mut replicas = Vec::new();
    for (source, at_start) in [("127.0.0.2", true), ("127.0.0.3", false)] {
        let args: &[&str] = if at_start {
            &["--bind-source-addr", source]
        } else {
            &[]
        };
        let replica = Rudis::start(args);
        let mut r = con(replica.port);
        if !at_start {
            let _: () = redis::cmd("CONFIG")
                .arg(&["SET", "bind-source-addr", source])
                .query(&mut r)
                .unwrap();
        }
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(master.port)
            .query(&mut r)
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg(source)
            .query(&mut m)
            .unwrap();
        wait_caught_up(master.port, replica.port, Duration::from_secs(20));
        let info: String = redis::cmd("INFO").arg("replication").query(&mut m).unwrap();
        assert!(
            info.contains(&format!("ip={source},port={}", replica.port)),
            "{info}"
        );
        replicas.push(replica);
    }
}

/// A writable replica expires the keys its own clients gave a deadline (the master sends no
/// DEL for them), as Redis's expireSlaveKeys does, and logs their DELs in its own AOF; keys
/// from its master still wait for the master's DEL.
#[test]
fn a_writable_replica_expires_the_keys_its_own_clients_wrote() {
    let master = Rudis::start(&["--appendonly", "no", "--enable-debug-command", "yes"]);
    let mport = master.port.to_string();
    let replica = Rudis::start(&[
        "--appendonly",
        "yes",
        "--replica-read-only",
        "no",
        "--enable-debug-command",
        "yes",
        "--replicaof",
        "127.0.0.1",
        &mport,
    ]);
    let mut m = master.raw();
    let mut r = replica.raw();
    // The master's key, whose expiry is the master's to send (its active expiry is off here,
    // so no DEL comes).
    m.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    // Once the link is up (the stream then has an offset to catch up with).
    while !String::from_utf8_lossy(&r.cmd(&["INFO", "replication"]))
        .contains("master_link_status:up")
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    m.cmd(&["SET", "from-master", "v", "PX", "50"]);
    wait_caught_up(master.port, replica.port, Duration::from_secs(20));
    let before = common::info_number(&mut r, "stats", "expired_keys");
    assert_eq!(r.cmd(&["SET", "local", "v", "PX", "50"]), b"+OK\r\n");
    assert_eq!(r.cmd(&["SET", "local-kept", "v", "EX", "1000"]), b"+OK\r\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while common::info_number(&mut r, "stats", "expired_keys") < before + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the local key never expired"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        common::info_number(&mut r, "stats", "expired_keys"),
        before + 1
    );
    // Gone from the data, not only hidden, and its DEL is in the replica's AOF.
    assert_eq!(
        r.cmd(&["DEBUG", "OBJECT", "local"]),
        b"-ERR no such key\r\n"
    );
    let aof = std::fs::read(replica.aof_path()).unwrap();
    let text = String::from_utf8_lossy(&aof);
    assert!(
        text.contains("*2\r\n$3\r\nDEL\r\n$5\r\nlocal\r\n"),
        "{text:?}"
    );
    assert_eq!(r.cmd(&["EXISTS", "local-kept"]), b":1\r\n");
    assert_eq!(
        r.cmd(&["DBSIZE"]),
        b":2\r\n",
        "the master's key stays until its DEL"
    );
}

/// A command from the master that fails on the replica (DEBUG REPLICATE sends one only to
/// the replicas) is logged as Redis logs it and counted in unexpected_error_replies; the
/// stream goes on.
#[test]
fn a_master_command_that_fails_on_the_replica_is_logged_and_counted() {
    let master = Rudis::start(&["--appendonly", "no", "--enable-debug-command", "yes"]);
    let mport = master.port.to_string();
    let replica = Rudis::start(&["--appendonly", "no", "--replicaof", "127.0.0.1", &mport]);
    let mut m = master.raw();
    let mut r = replica.raw();
    while !String::from_utf8_lossy(&r.cmd(&["INFO", "replication"]))
        .contains("master_link_status:up")
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        m.cmd(&["DEBUG", "REPLICATE", "fake-command-1", "x"]),
        b"+OK\r\n"
    );
    assert_eq!(m.cmd(&["SET", "after", "1"]), b"+OK\r\n");
    wait_caught_up(master.port, replica.port, Duration::from_secs(20));
    assert_eq!(r.cmd(&["GET", "after"]), b"$1\r\n1\r\n");
    assert_eq!(
        common::info_number(&mut r, "stats", "unexpected_error_replies"),
        1
    );
    assert_eq!(
        common::info_number(&mut m, "stats", "unexpected_error_replies"),
        0
    );
    let log = replica.log();
    let line = log
        .lines()
        .find(|l| l.contains("== CRITICAL =="))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(
            "This replica is sending an error to its master: 'ERR unknown command \
             'fake-command-1'"
        ) && line.ends_with("after processing the command '<unknown>'"),
        "{line}"
    );
}

/// A master that becomes a replica ends its clients' waits with Redis's error and closes
/// them (Redis's disconnectAllBlockedClients): a pop served from its new master's stream
/// would take an element the master keeps, and the two would differ (Redis's issue #2473).
#[test]
fn a_master_turned_replica_ends_its_blocked_clients_and_stays_in_sync() {
    let new_master = Rudis::start(&["--appendonly", "no", "--repl-diskless-sync-delay", "0"]);
    let old_master = Rudis::start(&["--appendonly", "no"]);
    let mut blocked = old_master.raw();
    blocked.send(&["BLPOP", "foo", "0"]);
    let mut waiting_for_a_reply = old_master.raw();
    waiting_for_a_reply.send(&["BRPOPLPUSH", "bar", "baz", "100"]);
    common::wait_blocked(old_master.port, 2);
    let mut c = old_master.raw();
    let port = new_master.port.to_string();
    assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
    let want: &[u8] = b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n";
    for client in [&mut blocked, &mut waiting_for_a_reply] {
        assert_eq!(client.read_reply(), want);
        assert!(
            client.is_closed(),
            "closed after the error, as Redis closes it"
        );
    }
    assert_eq!(common::info_number(&mut c, "clients", "blocked_clients"), 0);
    wait_caught_up(new_master.port, old_master.port, Duration::from_secs(20));
    let mut m = new_master.raw();
    assert_eq!(m.cmd(&["RPUSH", "foo", "a", "b", "c"]), b":3\r\n");
    wait_caught_up(new_master.port, old_master.port, Duration::from_secs(20));
    let all = ["LRANGE", "foo", "0", "-1"];
    let list: &[u8] = b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
    assert_eq!(m.cmd(&all), list);
    assert_eq!(
        c.cmd(&all),
        list,
        "the replica popped from its master's list"
    );
    // The other clients stay connected.
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
}

/// A replica under CLIENT PAUSE WRITE reads its master's stream but applies none of its
/// writes until the pause ends (Redis's unit/pause 'Test when replica paused, offset would
/// not grow'): slave_read_repl_offset reaches the master's, slave_repl_offset stays.
#[test]
fn a_paused_replica_reads_but_does_not_apply_its_masters_writes() {
    let master = Rudis::start(&["--appendonly", "no", "--repl-diskless-sync-delay", "0"]);
    let replica = Rudis::start(&["--appendonly", "no"]);
    let mut r = replica.raw();
    let port = master.port.to_string();
    assert_eq!(r.cmd(&["REPLICAOF", "127.0.0.1", &port]), b"+OK\r\n");
    let mut m = master.raw();
    wait_caught_up(master.port, replica.port, Duration::from_secs(20));
    // Once streaming: the stream's SELECT is behind, as in Redis's test.
    assert_eq!(m.cmd(&["SET", "foo", "bar"]), b"+OK\r\n");
    wait_caught_up(master.port, replica.port, Duration::from_secs(20));
    let applied = common::info_number(&mut r, "replication", "slave_repl_offset");
    assert_eq!(r.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), b"+OK\r\n");
    assert_eq!(m.cmd(&["SET", "foo2", "bar2"]), b"+OK\r\n");
    let want = common::info_number(&mut m, "replication", "master_repl_offset");
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::info_number(&mut r, "replication", "slave_read_repl_offset") != want {
        assert!(Instant::now() < deadline, "the replica stopped reading");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        common::info_number(&mut r, "replication", "slave_repl_offset"),
        applied
    );
    assert_eq!(r.cmd(&["GET", "foo2"]), b"$-1\r\n");
    assert_eq!(r.cmd(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    wait_caught_up(master.port, replica.port, Duration::from_secs(10));
    assert_eq!(r.cmd(&["GET", "foo2"]), b"$4\r\nbar2\r\n");
}

/// `redis-cli --rdb` (or `--functions-rdb`) against `port` into a fresh directory, the file
/// checked with redis-check-rdb, and a redis-server started on it (with the directory, which
/// must outlive it).
fn redis_on_cli_dump(port: u16, flag: &str) -> (RealRedis, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.rdb");
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), flag])
        .arg(&file)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("Transfer finished with success"),
        "{said}"
    );
    let (ok, report) = common::check_rdb(&file);
    assert!(ok, "{report}");
    let redis = RealRedis::start(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--dbfilename",
        "dump.rdb",
    ]);
    (redis, dir)
}

/// redis-cli --functions-rdb asks (REPLCONF rdb-filter-only functions) for a snapshot with
/// the function libraries and no data: a Redis started on the file has the libraries and no
/// key. A filter Redis does not know is refused with its words.
#[test]
fn redis_cli_functions_rdb_gets_the_libraries_without_the_data() {
    common::require_tool("redis-cli");
    let master = Rudis::start(&[NO_AOF, NO_DELAY].concat());
    preload(master.port, 100);
    let mut c = master.raw();
    let keys = c.cmd(&["DBSIZE"]);
    assert_ne!(keys, b":0\r\n");
    let lib = "#!lua name=lib1\nredis.register_function('func1', function() return 123 end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), b"$4\r\nlib1\r\n");
    assert_eq!(
        c.cmd(&["REPLCONF", "rdb-filter-only", "keys"]),
        b"-ERR Unsupported rdb-filter-only option: keys\r\n"
    );
    let (copy, _dir) = redis_on_cli_dump(master.port, "--functions-rdb");
    let mut theirs = copy.raw();
    assert_eq!(theirs.cmd(&["DBSIZE"]), b":0\r\n");
    assert_eq!(theirs.cmd(&["FCALL", "func1", "0"]), b":123\r\n");
    // The master goes on serving as before.
    assert_eq!(c.cmd(&["DBSIZE"]), keys);
}

/// Hash field deadlines (Redis 7.4's HEXPIRE) reach a replica through the full sync (its
/// snapshot's type 25 hash) and the stream (HPEXPIREAT at the master's absolute time), and a
/// field the master expires goes from the replica by the master's HDEL, the key with it.
#[test]
fn a_replica_gets_hash_field_deadlines_and_their_expiry_from_its_master() {
    let master = Rudis::start(&[NO_AOF, NO_DELAY].concat());
    let mut m = master.raw();
    m.cmd(&["HSET", "synced", "a", "1", "b", "2"]);
    m.cmd(&["HPEXPIREAT", "synced", "4102444800000", "FIELDS", "1", "b"]);
    let replica = replica_of(master.port, false);
    wait_caught_up(master.port, replica.port(), Duration::from_secs(10));
    m.cmd(&["HSET", "streamed", "x", "1", "y", "2"]);
    m.cmd(&["HEXPIRE", "streamed", "1000", "FIELDS", "1", "x"]);
    m.cmd(&["HSET", "short", "z", "1"]);
    m.cmd(&["HPEXPIRE", "short", "300", "FIELDS", "1", "z"]);
    wait_caught_up(master.port, replica.port(), Duration::from_secs(10));
    let mut r = common::Raw::connect(replica.port());
    for (key, fields) in [("synced", ["a", "b"]), ("streamed", ["x", "y"])] {
        let cmd = ["HPEXPIRETIME", key, "FIELDS", "2", fields[0], fields[1]];
        assert_eq!(r.cmd(&cmd), m.cmd(&cmd), "{key}");
        assert_eq!(r.cmd(&["HGETALL", key]), m.cmd(&["HGETALL", key]), "{key}");
    }
    assert_eq!(
        r.cmd(&["OBJECT", "ENCODING", "synced"]),
        b"$10\r\nlistpackex\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.cmd(&["EXISTS", "short"]) != b":0\r\n" {
        assert!(
            Instant::now() < deadline,
            "the replica keeps the expired field"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(m.cmd(&["EXISTS", "short"]), b":0\r\n");
}
