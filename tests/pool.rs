//! The worker pool shares its workers among the clients: a client busy with a long command or a
//! long pipeline must not hold up the others, and the socket-level edge cases (a peer that
//! shuts its side with requests in flight, a killed client) must end as they did with a thread
//! per client.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// A client whose PING is answered (the pool has taken it).
fn served(port: u16) -> Raw {
    let mut c = Raw::connect(port);
    assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n");
    c
}

/// Many more clients than workers: `sleepers` clients each run a 3 s DEBUG SLEEP on one of the
/// five workers, and 100 others must be served meanwhile by the workers left.
fn slow_commands_hold_up_only_their_own_clients(sleepers: usize) {
    let rudis = Rudis::start(&[
        "--workers",
        "5",
        "--appendonly",
        "no",
        "--enable-debug-command",
        "yes",
    ]);
    let mut sleeping: Vec<Raw> = (0..sleepers).map(|_| served(rudis.port)).collect();
    let mut others: Vec<Raw> = (0..100).map(|_| served(rudis.port)).collect();
    for s in &mut sleeping {
        s.send(&["DEBUG", "SLEEP", "3"]);
    }
    // Let the sleeps begin.
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    for round in 0..5 {
        for (i, c) in others.iter_mut().enumerate() {
            let k = format!("k{i}");
            assert_eq!(c.cmd(&["SET", &k, &round.to_string()]), b"+OK\r\n");
            assert_eq!(
                c.cmd(&["INCR", &k]),
                format!(":{}\r\n", round + 1).into_bytes()
            );
        }
    }
    let took = started.elapsed();
    // Had the others waited for the sleeps, the sleepers' replies would be there by now.
    for s in &mut sleeping {
        s.stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let early = s.stream.peek(&mut byte);
        assert!(
            matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the others were served only after the 3 s sleep ({took:?}): {early:?}"
        );
        s.stream.set_nonblocking(false).unwrap();
    }
    let info = String::from_utf8(others[0].cmd(&["INFO", "clients"])).unwrap();
    let want = format!("connected_clients:{}\r\n", 100 + sleepers);
    assert!(info.contains(&want), "{info}");
    for s in &mut sleeping {
        assert_eq!(s.read_reply(), b"+OK\r\n");
    }
}

#[test]
fn a_slow_command_holds_up_only_its_own_client() {
    slow_commands_hold_up_only_their_own_clients(1);
}

#[test]
fn four_slow_commands_on_five_workers_leave_one_for_a_hundred_clients() {
    slow_commands_hold_up_only_their_own_clients(4);
}

#[test]
fn debug_is_refused_by_default_as_in_redis() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let mut c = rudis.raw();
    let reply = String::from_utf8(c.cmd(&["DEBUG", "SLEEP", "0"])).unwrap();
    assert!(
        reply.starts_with("-ERR DEBUG command not allowed."),
        "{reply}"
    );
}

#[test]
fn a_long_pipeline_does_not_starve_another_client() {
    let rudis = Rudis::start(&["--workers", "5", "--appendonly", "no"]);
    // LCS of two 300-byte strings: little to send, much to compute, so that the server (not
    // the sender) is the bottleneck and the piped client always has requests waiting.
    let mut rng = Rng::seeded(7);
    let mut piped = served(rudis.port);
    for key in ["a", "b"] {
        let v = rng.bytes(b"acgt", 300, 300);
        assert_eq!(piped.cmd(&[&b"SET"[..], key.as_bytes(), &v]), b"+OK\r\n");
    }
    let one = piped.cmd(&["LCS", "a", "b"]).len();
    const N: usize = 20_000;
    let mut flood = Vec::new();
    for _ in 0..N {
        flood.extend_from_slice(b"*3\r\n$3\r\nLCS\r\n$1\r\na\r\n$1\r\nb\r\n");
    }
    let mut reader = piped.stream.try_clone().unwrap();
    let mut writer = piped.stream.try_clone().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let read_thread = {
        let (received, finished) = (received.clone(), finished.clone());
        std::thread::spawn(move || {
            let want = N * one;
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0;
            while got < want {
                let n = reader.read(&mut buf).expect("read");
                assert!(n > 0, "closed after {got} bytes");
                got += n;
                received.store(got, Ordering::SeqCst);
            }
            finished.store(true, Ordering::SeqCst);
        })
    };
    let write_thread = std::thread::spawn(move || writer.write_all(&flood).expect("write"));
    // Among many idle clients, one is to be served while the pipeline runs.
    let _idle: Vec<Raw> = (0..50).map(|_| served(rudis.port)).collect();
    let mut other = served(rudis.port);
    // Once the pipeline is being answered, another client's request comes in.
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.load(Ordering::SeqCst) < 100 * one {
        assert!(Instant::now() < deadline, "the pipeline is not answered");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(other.cmd(&["SET", "x", "1"]), b"+OK\r\n");
    let at = received.load(Ordering::SeqCst);
    assert!(
        !finished.load(Ordering::SeqCst),
        "the other client was served only once the pipeline was done"
    );
    write_thread.join().unwrap();
    read_thread.join().unwrap();
    assert!(at < N * one);
}

#[test]
fn requests_sent_before_the_peer_shuts_its_side_are_answered() {
    let rudis = Rudis::start(&["--appendonly", "no"]);
    for _ in 0..20 {
        let mut c = Raw::connect(rudis.port);
        c.send_raw(b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nSET k v\r\n");
        c.stream.shutdown(Shutdown::Write).unwrap();
        let mut all = Vec::new();
        c.stream.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"+PONG\r\n$2\r\nhi\r\n+OK\r\n", "{}", show(&all));
    }
    // The closed clients gave their places back.
    let mut c = served(rudis.port);
    let info = String::from_utf8(c.cmd(&["INFO", "clients"])).unwrap();
    assert!(info.contains("connected_clients:1\r\n"), "{info}");
}

#[test]
fn a_killed_idle_client_is_closed_and_its_place_freed() {
    let rudis = Rudis::start(&["--workers", "2", "--maxclients", "3", "--appendonly", "no"]);
    // Idle clients around it, more than workers.
    let mut idle: Vec<Raw> = (0..1).map(|_| served(rudis.port)).collect();
    let mut victim = served(rudis.port);
    let mut killer = served(rudis.port);
    let id = String::from_utf8(victim.cmd(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end();
    let started = Instant::now();
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "ID", id]), b":1\r\n");
    // The victim sends nothing: its worker closes it on the kill's wake-up.
    assert!(victim.is_closed());
    assert!(started.elapsed() < Duration::from_secs(2));
    // Its place (of three) is free again.
    let mut third = Raw::connect(rudis.port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while third.cmd(&["PING"]) != b"+PONG\r\n" {
        assert!(
            Instant::now() < deadline,
            "the victim's place was not freed"
        );
        std::thread::sleep(Duration::from_millis(20));
        third = Raw::connect(rudis.port);
    }
    assert_eq!(idle[0].cmd(&["PING"]), b"+PONG\r\n");
    let list = String::from_utf8(killer.cmd(&["CLIENT", "LIST"])).unwrap();
    assert_eq!(list.matches("id=").count(), 3, "{list}");
}
