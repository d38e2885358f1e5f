//! BGREWRITEAOF and the automatic rewrite: while clients keep writing (counters included, so a
//! record applied twice shows), the file is compacted; afterwards it is smaller, loads to exactly
//! the data the server held, and real Redis tools accept it. A crash during a rewrite leaves a
//! file that loads completely.
mod aofutil;
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aofutil::{check_aof, redis_loading, wait_log};
use common::Rng;
use common::{Raw, Rudis};
use rudis::resp::reply::encode_command;
use rudis::resp::Frame;

const PRELOAD: usize = 20_000;
const DONE: &str = "Background AOF rewrite finished successfully";

fn pipeline(c: &mut Raw, cmds: &[Vec<String>]) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    for chunk in cmds.chunks(1000) {
        let mut out = Vec::new();
        for cmd in chunk {
            encode_command(&mut out, cmd);
        }
        c.send_raw(&out);
        for _ in chunk {
            replies.push(c.read_reply());
        }
    }
    replies
}

fn cmd(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn preload(c: &mut Raw, keys: usize) {
    let mut cmds = Vec::new();
    for round in 0..3 {
        for i in 0..keys {
            cmds.push(cmd(&["SET", &format!("k{i}"), &format!("v{i}-{round}")]));
        }
    }
    for i in 0..300 {
        for f in 0..5 {
            cmds.push(cmd(&["HSET", &format!("ph{i}"), &format!("f{f}"), "x"]));
        }
    }
    // One hash past the small encoding, and one with more fields than one HSET of the dump.
    for f in 0..300 {
        cmds.push(cmd(&[
            "HSET",
            "bighash",
            &format!("f{f}"),
            &"y".repeat(f % 90),
        ]));
    }
    cmds.push(cmd(&["SELECT", "2"]));
    for i in 0..1000 {
        cmds.push(cmd(&["SET", &format!("d2k{i}"), "in db 2"]));
    }
    cmds.push(cmd(&["SELECT", "0"]));
    for r in pipeline(c, &cmds) {
        assert!(!r.starts_with(b"-"), "{}", common::show(&r));
    }
}

/// Every key the test may have written, read back; hashes as sorted field lists.
fn snapshot(c: &mut Raw) -> Vec<Frame> {
    let mut cmds = Vec::new();
    for i in 0..PRELOAD {
        cmds.push(cmd(&["GET", &format!("k{i}")]));
    }
    for i in 0..2000 {
        cmds.push(cmd(&["GET", &format!("rk{i}")]));
    }
    for h in (0..300)
        .map(|i| format!("ph{i}"))
        .chain((0..500).map(|i| format!("rh{i}")))
        .chain((0..50).map(|i| format!("cnt{i}")))
        .chain(["bighash".to_string()])
    {
        cmds.push(cmd(&["HGETALL", &h]));
    }
    cmds.push(cmd(&["SELECT", "2"]));
    for i in 0..1000 {
        cmds.push(cmd(&["GET", &format!("d2k{i}")]));
    }
    cmds.push(cmd(&["SELECT", "0"]));
    pipeline(c, &cmds)
        .into_iter()
        .map(
            |r| match Frame::parse(&r).expect("valid").expect("whole").0 {
                Frame::Array(items) => {
                    let mut pairs: Vec<(Frame, Frame)> = items
                        .chunks(2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect();
                    pairs.sort_by_key(|p| p.0.to_bytes());
                    Frame::Array(pairs.into_iter().flat_map(|(a, b)| [a, b]).collect())
                }
                other => other,
            },
        )
        .collect()
}

/// Client threads writing until `stop`: SETs, multi-key DELs, HSETs, HINCRBY counters.
fn start_writers(
    port: u16,
    stop: &Arc<AtomicBool>,
    ops: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..4)
        .map(|t| {
            let (stop, ops) = (stop.clone(), ops.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::from_clock();
                let mut c = Raw::connect(port);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r = rng.below(1 << 30);
                    let words = match r % 5 {
                        0 => cmd(&["SET", &format!("rk{}", r % 2000), &format!("t{t}n{n}")]),
                        1 => cmd(&[
                            "DEL",
                            &format!("rk{}", r % 2000),
                            &format!("rk{}", (r / 7) % 2000),
                            &format!("k{}", (r / 3) % PRELOAD as u64),
                        ]),
                        2 => cmd(&[
                            "HSET",
                            &format!("rh{}", r % 500),
                            &format!("f{}", r % 20),
                            &n.to_string(),
                        ]),
                        3 => cmd(&[
                            "SET",
                            &format!("k{}", r % PRELOAD as u64),
                            &format!("new{n}"),
                        ]),
                        _ => cmd(&[
                            "HINCRBY",
                            &format!("cnt{}", r % 50),
                            &format!("f{}", r % 3),
                            "1",
                        ]),
                    };
                    let reply = c.cmd(&words);
                    assert!(
                        !reply.starts_with(b"-"),
                        "{words:?}: {}",
                        common::show(&reply)
                    );
                    n += 1;
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

fn size(r: &Rudis) -> u64 {
    std::fs::metadata(r.aof_path())
        .map(|m| m.len())
        .unwrap_or(0)
}

#[test]
fn bgrewriteaof_under_concurrent_writes_loses_nothing_and_shrinks_the_file() {
    let mut r = Rudis::start(&["--workers", "8", "--auto-aof-rewrite-percentage", "0"]);
    let mut c = r.raw();
    preload(&mut c, PRELOAD);
    let before = size(&r);
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let writers = start_writers(r.port, &stop, &ops);
    std::thread::sleep(Duration::from_millis(100));
    let mut accepted = 0;
    for _ in 0..3 {
        // Start one, waiting out one still in progress.
        loop {
            let reply = c.cmd(&["BGREWRITEAOF"]);
            if reply == b"+Background append only file rewriting started\r\n" {
                break;
            }
            assert_eq!(
                reply,
                b"-ERR Background append only file rewriting already in progress\r\n"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        accepted += 1;
        // While it runs another is refused (unless it was already over).
        let again = c.cmd(&["BGREWRITEAOF"]);
        if again.starts_with(b"+") {
            accepted += 1;
        } else {
            assert_eq!(
                again,
                b"-ERR Background append only file rewriting already in progress\r\n"
            );
        }
        wait_log(&r, DONE, accepted, 20);
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(ops.load(Ordering::Relaxed) > 100, "the writers hardly ran");
    let tails = r
        .log()
        .matches("bytes of writes made during the rewrite appended")
        .count();
    assert!(tails >= 3, "{}", r.log());
    let truth = snapshot(&mut c);
    let after = size(&r);
    assert!(
        after < before,
        "the file did not shrink: {before} -> {after}"
    );
    // Everything on disk before the file is examined (everysec writes within an instant, but
    // a clean exit makes it certain).
    c.send(&["SHUTDOWN"]);
    assert!(aofutil::wait_exit(&mut r, 10).success());
    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "redis-check-aof rejects the rewritten file:\n{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    assert!(
        snapshot(&mut redis.raw()) == truth,
        "real redis-server loads other data"
    );
    r.restart();
    let got = snapshot(&mut r.raw());
    let diff: Vec<_> = got
        .iter()
        .zip(&truth)
        .filter(|(a, b)| a != b)
        .take(5)
        .collect();
    assert!(diff.is_empty(), "after restart: {diff:?}");
}

#[test]
fn a_crash_during_a_rewrite_leaves_a_file_that_loads_completely() {
    let mut r = Rudis::start(&[
        "--appendfsync",
        "always",
        "--auto-aof-rewrite-percentage",
        "0",
    ]);
    preload(&mut r.raw(), PRELOAD / 4);
    let truth = snapshot(&mut r.raw());
    let mut rng = Rng::from_clock();
    for _ in 0..4 {
        let mut c = r.raw();
        assert!(c.cmd(&["BGREWRITEAOF"]).starts_with(b"+"));
        std::thread::sleep(Duration::from_millis(rng.below(80)));
        r.restart();
        assert!(
            snapshot(&mut r.raw()) == truth,
            "data changed by a crash mid-rewrite"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&r.dir)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("temp-rewriteaof")
            })
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }
}

#[test]
fn the_file_is_rewritten_automatically_when_it_doubles() {
    let mut r = Rudis::start(&[
        "--auto-aof-rewrite-min-size",
        "100kb",
        "--auto-aof-rewrite-percentage",
        "100",
    ]);
    let mut c = r.raw();
    let mut cmds = Vec::new();
    // About 140 kB of SETs to 100 keys: one rewrite once past 100 kB (to ~7 kB), then the
    // rest appended.
    for n in 0..20 {
        for i in 0..100 {
            cmds.push(cmd(&["SET", &format!("k{i}"), &format!("{n:040}")]));
        }
    }
    pipeline(&mut c, &cmds);
    wait_log(&r, "Starting automatic rewriting of AOF", 1, 10);
    wait_log(&r, DONE, 1, 10);
    assert!(size(&r) < 100 * 1024, "size {} after the rewrite", size(&r));
    r.restart();
    assert_eq!(
        r.raw().cmd(&["GET", "k99"]),
        format!("$40\r\n{:040}\r\n", 19).into_bytes()
    );
    assert_eq!(r.raw().cmd(&["EXISTS", "k0", "k50", "k100"]), b":2\r\n");
}
