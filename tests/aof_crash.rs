//! kill -9 under load: client threads write distinct keys and note each acknowledged write;
//! the server is killed at a random moment and restarted. Under `always` every acknowledged
//! write must be back. Under `everysec` a machine crash may lose the last second or two, but a
//! killed process loses nothing acknowledged, as with Redis (the record is written before the
//! reply; only its fsync is deferred), so that is what is checked.
mod aofutil;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Rng;
use common::Rudis;
use rudis::resp::reply::encode_command;

const THREADS: usize = 4;

/// Writes `prefix{t}:{i}` until the connection dies; returns (key, when acknowledged).
fn writer(
    port: u16,
    prefix: String,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
) -> Vec<(String, Instant)> {
    let mut acked = Vec::new();
    let Some(mut s) = connect(port) else {
        return acked;
    };
    let mut i = 0u64;
    let mut cmd = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{prefix}:{i}");
        cmd.clear();
        encode_command(&mut cmd, &["SET", &key, &value_of(&key)]);
        let mut reply = [0u8; 5];
        if s.write_all(&cmd).is_err() || s.read_exact(&mut reply).is_err() {
            break;
        }
        assert_eq!(&reply, b"+OK\r\n", "SET {key}");
        acked.push((key, Instant::now()));
        acks.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
    acked
}

/// A connection a worker has taken (on a loaded machine a just-started server may not have
/// every worker waiting yet, and refuses the client).
fn connect(port: u16) -> Option<TcpStream> {
    for _ in 0..50 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut reply = [0u8; 7];
        if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
            && s.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
        {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

/// GETs `keys` pipelined; returns those missing or wrong.
fn missing(r: &Rudis, keys: &[String]) -> Vec<String> {
    let mut c = r.raw();
    let mut bad = Vec::new();
    for chunk in keys.chunks(500) {
        let mut out = Vec::new();
        for k in chunk {
            encode_command(&mut out, &["GET", k]);
        }
        c.send_raw(&out);
        for k in chunk {
            let v = value_of(k);
            let want = format!("${}\r\n{v}\r\n", v.len());
            if c.read_reply() != want.as_bytes() {
                bad.push(k.clone());
            }
        }
    }
    bad
}

fn rounds(policy: &str, rounds: usize, min_ms: u64, spread_ms: u64, grace: Duration) {
    let mut rng = Rng::from_clock();
    let mut r = Rudis::start(&["--appendfsync", policy, "--workers", "8"]);
    let mut must_have: Vec<String> = Vec::new();
    let mut total = 0;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(Vec::new()));
        let acks = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (stop, results, port) = (stop.clone(), results.clone(), r.port);
                let acks = acks.clone();
                std::thread::spawn(move || {
                    let acked = writer(port, format!("r{round}t{t}"), stop, acks);
                    results.lock().unwrap().extend(acked);
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(min_ms + rng.below(spread_ms)));
        // On a loaded machine the first fsyncs after a restart can take that long: the kill
        // must fall among acknowledged writes, or the round checks nothing.
        let patience = Instant::now() + Duration::from_secs(20);
        while acks.load(Ordering::Relaxed) == 0 && Instant::now() < patience {
            std::thread::sleep(Duration::from_millis(10));
        }
        r.kill9();
        let killed = Instant::now();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let acked = std::mem::take(&mut *results.lock().unwrap());
        assert!(
            !acked.is_empty(),
            "round {round}: no write was acknowledged"
        );
        total += acked.len();
        let all_acked: Vec<String> = acked.iter().map(|(k, _)| k.clone()).collect();
        must_have.extend(
            acked
                .into_iter()
                .filter(|(_, at)| *at + grace <= killed)
                .map(|(k, _)| k),
        );
        r.restart();
        let recent = missing(&r, &all_acked).len();
        eprintln!(
            "{policy}, round {round}: {recent} of {} acknowledged writes missing after the kill",
            all_acked.len()
        );
        let lost = missing(&r, &must_have);
        assert!(
            lost.is_empty(),
            "{policy}, round {round}: {} of {} acknowledged writes lost, e.g. {:?}; log:\n{}",
            lost.len(),
            must_have.len(),
            &lost[..lost.len().min(5)],
            r.log()
        );
    }
    assert!(!must_have.is_empty(), "nothing was checked");
    eprintln!(
        "{policy}: {total} writes acknowledged, {} required after the kills",
        must_have.len()
    );
}

#[test]
fn kill9_under_always_loses_no_acknowledged_write() {
    rounds("always", 4, 200, 600, Duration::ZERO);
}

#[test]
fn kill9_under_everysec_loses_no_acknowledged_write() {
    rounds("everysec", 3, 300, 800, Duration::ZERO);
}
