//! Blocking list commands against the real binary: waiters served in the order they blocked,
//! from any worker, after transactions; timeouts; CLIENT UNBLOCK; disconnects; type changes;
//! the AOF holding what was served. Where the behaviour is Redis's to copy, the same scenario
//! runs against a real redis-server and must give the same replies.
mod common;

use std::time::{Duration, Instant};

use common::{blocked_clients, both, wait_blocked, Raw, Rudis};

#[test]
fn waiters_are_served_in_the_order_they_blocked_across_workers() {
    both(&["--workers", "4"], |port| {
        let blpop: &[&str] = &["BLPOP", "q", "0"];
        let mut waiters = blocked_clients(port, &[blpop; 6]);
        let mut p = Raw::connect(port);
        let mut t = vec![p.cmd(&["RPUSH", "q", "1", "2", "3"])];
        t.extend(waiters[..3].iter_mut().map(|w| w.read_reply()));
        wait_blocked(port, 3);
        // One at a time, from another client each time.
        for v in ["4", "5", "6"] {
            t.push(Raw::connect(port).cmd(&["LPUSH", "q", v]));
        }
        t.extend(waiters[3..].iter_mut().map(|w| w.read_reply()));
        wait_blocked(port, 0);
        t.push(p.cmd(&["EXISTS", "q"]));
        t
    });
}

#[test]
fn timeouts_answer_null_after_the_time_given() {
    both(&[], |port| {
        let mut t = Vec::new();
        for (cmd, proto) in [
            (&["BLPOP", "none", "0.1"][..], "2"),
            (&["BRPOP", "none", "other", "0.1"][..], "3"),
            (&["BLMOVE", "none", "dst", "LEFT", "RIGHT", "0.1"][..], "2"),
            (&["BLMOVE", "none", "dst", "LEFT", "RIGHT", "0.1"][..], "3"),
            (&["BRPOPLPUSH", "none", "dst", "0.1"][..], "2"),
            (&["BLMPOP", "0.1", "1", "none", "LEFT"][..], "3"),
        ] {
            let mut c = Raw::connect(port);
            c.cmd(&["HELLO", proto]);
            let start = Instant::now();
            t.push(c.cmd(cmd));
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(100), "{cmd:?} after {took:?}");
            assert!(took < Duration::from_millis(900), "{cmd:?} after {took:?}");
            // Served by nobody meanwhile: nothing was created.
            t.push(c.cmd(&["EXISTS", "dst"]));
        }
        t
    });
}

#[test]
fn commands_pipelined_after_a_blocking_one_wait_for_it() {
    both(&["--workers", "2"], |port| {
        let mut c = Raw::connect(port);
        c.send_raw(b"BLPOP q 0\r\nPING\r\nRPUSH q again\r\nLLEN q\r\n");
        wait_blocked(port, 1);
        // Nothing ran after the BLPOP: its RPUSH did not serve it.
        let mut p = Raw::connect(port);
        let mut t = vec![p.cmd(&["LLEN", "q"]), p.cmd(&["RPUSH", "q", "v"])];
        for _ in 0..4 {
            t.push(c.read_reply());
        }
        t
    });
}

#[test]
fn a_push_inside_exec_serves_after_the_transaction() {
    both(&[], |port| {
        let blpop: &[&str] = &["BLPOP", "q", "0"];
        let mut w = blocked_clients(port, &[blpop, &["BRPOP", "r", "q", "0"]]);
        let mut p = Raw::connect(port);
        let mut t = vec![p.cmd(&["MULTI"])];
        // Pushed and popped again inside: nothing for the waiters.
        t.push(p.cmd(&["RPUSH", "q", "a"]));
        t.push(p.cmd(&["LPOP", "q"]));
        t.push(p.cmd(&["EXEC"]));
        std::thread::sleep(Duration::from_millis(50));
        t.push(
            p.cmd(&["INFO", "clients"])
                .windows(17)
                .any(|w| w == b"blocked_clients:2")
                .to_string()
                .into_bytes(),
        );
        t.push(p.cmd(&["MULTI"]));
        t.push(p.cmd(&["RPUSH", "q", "a", "b"]));
        t.push(p.cmd(&["RPUSH", "r", "c"]));
        t.push(p.cmd(&["EXEC"]));
        t.push(w[0].read_reply());
        t.push(w[1].read_reply());
        t.push(p.cmd(&["LRANGE", "q", "0", "-1"]));
        t
    });
}

#[test]
fn one_push_wakes_clients_on_several_keys() {
    both(&["--workers", "3"], |port| {
        let mut w = blocked_clients(
            port,
            &[
                &["BLPOP", "k1", "k2", "0"],
                &["BRPOP", "k2", "0"],
                &["BLMPOP", "0", "2", "k3", "k2", "LEFT", "COUNT", "5"],
                &["BLMOVE", "k3", "k1", "RIGHT", "LEFT", "0"],
            ],
        );
        let mut p = Raw::connect(port);
        // The first two waiters on k2 take an element each, the third what is left.
        let mut t = vec![p.cmd(&["RPUSH", "k2", "a", "b", "c", "d"])];
        t.extend(w[..3].iter_mut().map(|c| c.read_reply()));
        // k3 for the move: it lands in k1, which nobody waits on any more.
        t.push(p.cmd(&["RPUSH", "k3", "x", "y"]));
        t.push(w[3].read_reply());
        t.push(p.cmd(&["LRANGE", "k1", "0", "-1"]));
        t.push(p.cmd(&["LRANGE", "k3", "0", "-1"]));
        t
    });
}

#[test]
fn client_unblock_both_forms_and_disconnects() {
    both(&[], |port| {
        let mut w = blocked_clients(
            port,
            &[
                &["BLPOP", "q", "0"],
                &["BLMOVE", "q", "d", "LEFT", "LEFT", "0"],
            ],
        );
        let mut p = Raw::connect(port);
        let list = String::from_utf8_lossy(&p.cmd(&["CLIENT", "LIST"])).into_owned();
        let blocked: Vec<&str> = list
            .lines()
            .filter(|l| l.contains("flags=b "))
            .map(|l| l.split(' ').next().unwrap().trim_start_matches("id="))
            .collect();
        assert_eq!(blocked.len(), 2, "{list}");
        let mut t = vec![p.cmd(&["CLIENT", "UNBLOCK", blocked[0]])];
        t.push(w[0].read_reply());
        t.push(p.cmd(&["CLIENT", "UNBLOCK", blocked[0]]));
        t.push(p.cmd(&["CLIENT", "UNBLOCK", blocked[1], "ERROR"]));
        t.push(w[1].read_reply());
        // Unblocked clients run commands again.
        t.push(w[0].cmd(&["PING"]));
        t.push(w[1].cmd(&["PING"]));
        // A waiter that disconnects is forgotten: the push stays in the list.
        let mut gone = blocked_clients(port, &[&["BLPOP", "q", "0"]]);
        drop(gone.pop());
        wait_blocked(port, 0);
        t.push(p.cmd(&["RPUSH", "q", "v"]));
        t.push(p.cmd(&["LLEN", "q"]));
        t
    });
}

#[test]
fn type_changes_renames_and_recreation_under_waiters() {
    both(&["--workers", "2"], |port| {
        let mut w = blocked_clients(
            port,
            &[
                &["BLPOP", "k", "0"],
                &["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"],
                &["BRPOP", "target", "0"],
            ],
        );
        let mut p = Raw::connect(port);
        // A string under a waited name: Redis 7.0 keeps waiting.
        let mut t = vec![p.cmd(&["SET", "k", "str"])];
        t.push(p.cmd(&["SET", "src", "str"]));
        std::thread::sleep(Duration::from_millis(50));
        t.push(p.cmd(&["DEL", "k", "src"]));
        // Deleted and pushed again: served.
        t.push(p.cmd(&["RPUSH", "k", "v"]));
        t.push(w[0].read_reply());
        // A destination of the wrong type: the move ends with the error.
        t.push(p.cmd(&["SET", "dst", "str"]));
        t.push(p.cmd(&["RPUSH", "src", "x"]));
        t.push(w[1].read_reply());
        t.push(p.cmd(&["LRANGE", "src", "0", "-1"]));
        // A list renamed into the waited name.
        t.push(p.cmd(&["RPUSH", "tmp", "r1", "r2"]));
        t.push(p.cmd(&["RENAME", "tmp", "target"]));
        t.push(w[2].read_reply());
        t.push(p.cmd(&["LRANGE", "target", "0", "-1"]));
        t
    });
}

#[test]
fn blocked_clients_hold_up_nobody() {
    let r = Rudis::start(&["--workers", "2"]);
    let cmds: Vec<[&str; 3]> = (0..20).map(|_| ["BLPOP", "never", "0"]).collect();
    let mut waiters: Vec<Raw> = (0..20).map(|_| Raw::connect(r.port)).collect();
    for (w, c) in waiters.iter_mut().zip(&cmds) {
        w.send(c);
    }
    wait_blocked(r.port, 20);
    let start = Instant::now();
    let mut others: Vec<Raw> = (0..5).map(|_| r.raw()).collect();
    for i in 0..200 {
        let c = &mut others[i % 5];
        assert_eq!(c.cmd(&["SET", "k", &i.to_string()]), b"+OK\r\n");
        assert_eq!(
            c.cmd(&["INCR", "n"]),
            format!(":{}\r\n", i + 1).into_bytes()
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // And they are still served when their key comes.
    let args: Vec<String> = std::iter::once("RPUSH".to_string())
        .chain(std::iter::once("never".to_string()))
        .chain((0..20).map(|i| i.to_string()))
        .collect();
    assert_eq!(others[0].cmd(&args), b":20\r\n");
    let mut got: Vec<String> = waiters
        .iter_mut()
        .map(|w| {
            let f = w.read_frame();
            format!("{f:?}")
        })
        .collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 20, "each waiter got its own element: {got:?}");
    wait_blocked(r.port, 0);
}

#[test]
fn the_aof_holds_the_served_pops_and_restarts_exact() {
    let mut r = Rudis::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut w = blocked_clients(
        r.port,
        &[
            &["BLPOP", "q", "0"],
            &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"],
            &["BLMPOP", "0", "1", "m", "RIGHT", "COUNT", "2"],
            &["BRPOPLPUSH", "src2", "dst", "0"],
        ],
    );
    let mut p = r.raw();
    assert_eq!(p.cmd(&["RPUSH", "q", "a", "b"]), b":2\r\n");
    assert_eq!(w[0].read_reply(), b"*2\r\n$1\r\nq\r\n$1\r\na\r\n");
    assert_eq!(p.cmd(&["RPUSH", "src", "x", "y"]), b":2\r\n");
    assert_eq!(w[1].read_reply(), b"$1\r\ny\r\n");
    assert_eq!(p.cmd(&["RPUSH", "m", "1", "2", "3"]), b":3\r\n");
    assert_eq!(
        w[2].read_reply(),
        b"*2\r\n$1\r\nm\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
    );
    assert_eq!(p.cmd(&["LPUSH", "src2", "z"]), b":1\r\n");
    assert_eq!(w[3].read_reply(), b"$1\r\nz\r\n");
    let aof = String::from_utf8_lossy(&std::fs::read(r.aof_path()).unwrap()).to_lowercase();
    for served in ["lpop", "lmove", "rpop", "rpoplpush"] {
        assert!(
            aof.contains(&format!("\r\n{served}\r\n")),
            "{served} in {aof:?}"
        );
    }
    for blocking in ["blpop", "blmove", "blmpop", "brpoplpush"] {
        assert!(!aof.contains(blocking), "{blocking} in {aof:?}");
    }
    let before: Vec<Vec<u8>> = ["q", "src", "m", "dst", "src2"]
        .iter()
        .map(|k| p.cmd(&["LRANGE", k, "0", "-1"]))
        .collect();
    r.restart();
    let mut p = r.raw();
    let after: Vec<Vec<u8>> = ["q", "src", "m", "dst", "src2"]
        .iter()
        .map(|k| p.cmd(&["LRANGE", k, "0", "-1"]))
        .collect();
    assert_eq!(after, before);
    assert_eq!(after[3], b"*2\r\n$1\r\nz\r\n$1\r\ny\r\n");
}

/// Sends `args` and reads one reply; None once the server is gone.
fn try_cmd(c: &mut Raw, args: &[&str]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut out = Vec::new();
    rudis::resp::reply::encode_command(&mut out, args);
    c.stream.write_all(&out).ok()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.try_read_reply()))
        .ok()
        .flatten()
}

/// Issue 11's queue, small: consumers blocked on BRPOP over several keys, fed by producers,
/// under `appendfsync always`, killed with SIGKILL mid-stream and restarted. Every element
/// acknowledged to a producer is delivered once or still queued after the restart; none twice.
/// The only ones that may be missing are replies in flight at the kill: at most one per
/// consumer (each has one BRPOP outstanding), as with Redis.
#[test]
fn a_queue_delivers_each_element_once_across_kill_9() {
    const KEYS: usize = 10;
    const CONSUMERS: usize = 40;
    const PRODUCERS: usize = 4;
    let mut r = Rudis::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--workers",
        "3",
    ]);
    let port = r.port;
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let key = format!("q{}", i % KEYS);
                let mut got = Vec::new();
                while let Some(reply) = try_cmd(&mut c, &["BRPOP", &key, "0"]) {
                    match rudis::resp::Frame::parse(&reply) {
                        Ok(Some((rudis::resp::Frame::Array(items), _))) if items.len() == 2 => {
                            got.push(format!("{:?}", items[1]));
                        }
                        other => panic!("BRPOP answered {other:?}"),
                    }
                }
                got
            })
        })
        .collect();
    wait_blocked(port, CONSUMERS);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let mut acked = Vec::new();
                for n in 0.. {
                    let elem = format!("p{p}-{n}");
                    let key = format!("q{}", n % KEYS);
                    match try_cmd(&mut c, &["LPUSH", &key, &elem]) {
                        Some(reply) if reply.starts_with(b":") => acked.push(elem),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    r.kill9();
    let acked: Vec<String> = producers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    let received: Vec<String> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(acked.len() > 100, "only {} pushes in the run", acked.len());
    r.restart();
    let mut p = r.raw();
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for e in &received {
        *seen.entry(e.clone()).or_default() += 1;
    }
    for k in 0..KEYS {
        let Ok(Some((rudis::resp::Frame::Array(items), _))) =
            rudis::resp::Frame::parse(&p.cmd(&["LRANGE", &format!("q{k}"), "0", "-1"]))
        else {
            panic!("LRANGE");
        };
        for i in items {
            *seen.entry(format!("{i:?}")).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "delivered or kept twice: {twice:?}");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|e| {
            !seen.contains_key(&format!(
                "{:?}",
                rudis::resp::Frame::Bulk(e.as_bytes().to_vec())
            ))
        })
        .collect();
    eprintln!(
        "acknowledged {}, received {}, missing {}",
        acked.len(),
        received.len(),
        missing.len()
    );
    assert!(
        missing.len() <= CONSUMERS,
        "{} acknowledged elements lost (of {}, {} received): {:?}",
        missing.len(),
        acked.len(),
        received.len(),
        &missing[..missing.len().min(10)]
    );
}

#[test]
fn moves_copies_and_swaps_into_a_waited_name_serve_it() {
    both(&["--workers", "2"], |port| {
        let mut w: Vec<Raw> = (0..3).map(|_| Raw::connect(port)).collect();
        w[0].cmd(&["SELECT", "1"]);
        w[0].send(&["BLPOP", "moved", "0"]);
        wait_blocked(port, 1);
        w[1].cmd(&["SELECT", "2"]);
        w[1].send(&["BRPOP", "swapped", "0"]);
        wait_blocked(port, 2);
        w[2].send(&["BLPOP", "copied", "0"]);
        wait_blocked(port, 3);
        let mut p = Raw::connect(port);
        let mut t = vec![p.cmd(&["RPUSH", "moved", "m"])];
        t.push(p.cmd(&["MOVE", "moved", "1"]));
        t.push(w[0].read_reply());
        t.push(p.cmd(&["RPUSH", "swapped", "s1", "s2"]));
        t.push(p.cmd(&["SWAPDB", "0", "2"]));
        t.push(w[1].read_reply());
        t.push(p.cmd(&["SELECT", "2"]));
        t.push(p.cmd(&["RPUSH", "orig", "c"]));
        t.push(p.cmd(&["COPY", "orig", "copied", "DB", "0"]));
        t.push(w[2].read_reply());
        t.push(p.cmd(&["LRANGE", "swapped", "0", "-1"]));
        t
    });
}

#[test]
fn a_blocked_client_outlives_the_idle_timeout() {
    // As Redis's clientsCron: a blocked client is not idle; its wait has its own timeout.
    let r = Rudis::start(&["--timeout", "1"]);
    let mut w = blocked_clients(r.port, &[&["BLPOP", "q", "0"]]);
    std::thread::sleep(Duration::from_millis(2300));
    let mut p = r.raw();
    assert_eq!(p.cmd(&["RPUSH", "q", "v"]), b":1\r\n");
    assert_eq!(w[0].read_reply(), b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n");
}
