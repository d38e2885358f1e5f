//! Redis Sentinel (Debian's redis-sentinel, Redis 7.0) managing rudis: three sentinels watch a
//! rudis master with two rudis replicas. A client connected through Sentinel (redis-py's
//! `Sentinel`) writes all along, each write followed by WAIT 1; the master is killed with
//! SIGKILL, then a second failover is asked for with SENTINEL FAILOVER. Each time a replica is
//! promoted within Sentinel's down-after time plus its failover time, the client goes on after
//! a short pause, and no write a replica acknowledged is lost.
mod common;

use std::io::{BufRead, BufReader};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, require_tool, Rudis};

const DOWN_AFTER_MS: u64 = 1000;
const FAILOVER_TIMEOUT_MS: u64 = 10_000;

struct Sentinel {
    port: u16,
    child: Child,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sentinel(dir: &std::path::Path, master: u16) -> Sentinel {
    let port = free_port();
    let conf = dir.join(format!("sentinel-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {d}\nlogfile {d}/sentinel-{port}.log\n\
             sentinel monitor mymaster 127.0.0.1 {master} 2\n\
             sentinel down-after-milliseconds mymaster {DOWN_AFTER_MS}\n\
             sentinel failover-timeout mymaster {FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs mymaster 1\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new("redis-sentinel")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-sentinel");
    Sentinel { port, child }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn ask(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c)
}

/// The master's port as this sentinel has it.
fn master_port(sentinel: u16) -> Option<u16> {
    let v = ask(
        sentinel,
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"],
    )
    .ok()?;
    let parts: Vec<String> = redis::from_redis_value(&v).ok()?;
    parts.get(1)?.parse().ok()
}

/// Waits until every sentinel sees the master's replicas and the other sentinels.
fn wait_discovered(sentinels: &[Sentinel], replicas: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for s in sentinels {
        loop {
            let info: redis::RedisResult<Vec<(String, String)>> =
                ask(s.port, &["SENTINEL", "MASTER", "mymaster"])
                    .and_then(|v| redis::from_redis_value(&v));
            let field = |name: &str| {
                info.as_ref()
                    .ok()
                    .and_then(|kv| kv.iter().find(|(k, _)| k == name))
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0)
            };
            if field("num-slaves") >= replicas && field("num-other-sentinels") >= 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sentinel {} did not discover everything: {info:?}",
                s.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Waits for the sentinels to name a master other than `old`; returns it and how long it took.
fn wait_switch(sentinel: u16, old: u16, since: Instant) -> (u16, Duration) {
    let limit = Duration::from_millis(DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS);
    loop {
        if let Some(p) = master_port(sentinel).filter(|&p| p != old) {
            return (p, since.elapsed());
        }
        assert!(
            since.elapsed() < limit + Duration::from_secs(5),
            "no replica promoted within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `k<i>` through Sentinel, each followed by WAIT 1; prints `ACK k<i> time` for every
/// write a replica acknowledged, and `DONE writes errors` once the stop file exists.
const CLIENT: &str = r#"
import sys, time
from redis.sentinel import Sentinel
ports = [int(p) for p in sys.argv[1].split(",")]
stop = sys.argv[2]
s = Sentinel([("127.0.0.1", p) for p in ports], socket_timeout=0.5)
m = s.master_for("mymaster", socket_timeout=0.5)
import os
i = 0
errors = 0
while not os.path.exists(stop):
    try:
        m.set(f"k{i}", i)
        if m.execute_command("WAIT", 1, 1000) >= 1:
            print("ACK", f"k{i}", time.time(), flush=True)
        i += 1
    except Exception:
        errors += 1
        time.sleep(0.05)
print("DONE", i, errors, flush=True)
"#;

#[test]
fn sentinel_fails_over_a_rudis_master_and_no_acknowledged_write_is_lost() {
    require_tool("redis-sentinel");
    let check = Command::new("python3")
        .args(["-c", "import redis.sentinel"])
        .status();
    assert!(
        matches!(check, Ok(s) if s.success()),
        "redis-py is not installed: run `pip install -q 'redis>=8'` (bash .ci/run does)"
    );
    let no_delay = ["--repl-diskless-sync-delay", "0"];
    let mut master = Rudis::start(&["--appendonly", "no", no_delay[0], no_delay[1]]);
    let mport = master.port.to_string();
    let replica_args = [
        "--appendonly",
        "no",
        no_delay[0],
        no_delay[1],
        "--replicaof",
        "127.0.0.1",
        &mport,
    ];
    let a = Rudis::start(&replica_args);
    let b = Rudis::start(&replica_args);
    let dir = tempfile::tempdir().unwrap();
    let sentinels: Vec<Sentinel> = (0..3)
        .map(|_| start_sentinel(dir.path(), master.port))
        .collect();
    wait_discovered(&sentinels, 2);
    let ports: Vec<String> = sentinels.iter().map(|s| s.port.to_string()).collect();
    let stop = dir.path().join("stop");
    let mut client = Command::new("python3")
        .args(["-c", CLIENT, &ports.join(",")])
        .arg(&stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = client.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    // A crash: the sentinels agree it is down and promote a replica.
    master.kill9();
    let killed = Instant::now();
    let (first, took) = wait_switch(sentinels[0].port, master.port, killed);
    assert!(
        first == a.port || first == b.port,
        "promoted {first}, not a replica"
    );
    eprintln!("kill -9: replica {first} promoted after {took:?}");
    // The other replica follows the new master.
    let other = if first == a.port { b.port } else { a.port };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let role: redis::RedisResult<Vec<redis::Value>> =
            ask(other, &["ROLE"]).and_then(|v| redis::from_redis_value(&v));
        let follows = role
            .as_ref()
            .ok()
            .and_then(|r| r.get(2))
            .and_then(|p| redis::from_redis_value::<i64>(p).ok())
            == Some(i64::from(first));
        if follows {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other replica does not follow {first}: {role:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    // A coordinated failover, asked for.
    // Sentinel refuses (-NOGOODSLAVE) until its own view of the replica is fresh (its INFO
    // every few seconds): asked again until it accepts, as an operator would.
    let deadline = Instant::now() + Duration::from_secs(30);
    let asked = loop {
        let reply = ask(sentinels[1].port, &["SENTINEL", "FAILOVER", "mymaster"]);
        if reply.is_ok() {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "SENTINEL FAILOVER: {reply:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let (second, took) = wait_switch(sentinels[1].port, first, asked);
    assert_eq!(second, other);
    let switched_at = unix_now();
    eprintln!("SENTINEL FAILOVER: replica {second} promoted after {took:?}");
    // The client goes on: writes reach a replica again (once Sentinel has reconfigured the
    // old master, which it does some seconds after the switch).
    let mut out: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let acked_after = |l: &str| {
        let mut w = l.split(' ');
        w.next() == Some("ACK")
            && w.nth(1)
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|t| t > switched_at)
    };
    while !out.last().is_some_and(|l| acked_after(l)) {
        assert!(
            Instant::now() < deadline,
            "no write acknowledged after the second failover; the new master's {:?}",
            ask(second, &["INFO", "replication"])
        );
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => out.push(l),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("the client ended: {e}: {out:?}"),
        }
    }
    std::fs::write(&stop, b"").unwrap();
    out.extend(rx.iter());
    let status = client.wait().unwrap();
    assert!(status.success(), "the client failed: {out:?}");
    let done = out.iter().find(|l| l.starts_with("DONE")).cloned();
    assert!(done.is_some(), "{out:?}");
    let acked: Vec<(&str, f64)> = out
        .iter()
        .filter_map(|l| {
            let mut w = l.split(' ');
            (w.next() == Some("ACK")).then(|| {
                (
                    w.next().unwrap_or(""),
                    w.next().unwrap_or("0").parse().unwrap_or(0.0),
                )
            })
        })
        .collect();
    // Every write a replica acknowledged is on the final master.
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{second}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    for (k, _) in &acked {
        let v: Option<String> = redis::cmd("GET").arg(*k).query(&mut c).unwrap();
        assert!(v.is_some(), "{k} was acknowledged by WAIT 1 and is lost");
    }
    eprintln!("{} acknowledged writes all there; {done:?}", acked.len());
}
