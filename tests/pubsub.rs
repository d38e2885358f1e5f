//! Pub/Sub against the real binary: delivery across workers in order, the output limit that
//! disconnects a subscriber that does not read (and nobody else), clean-up on disconnect, and
//! the counts CLIENT LIST and INFO show.
mod common;

use std::time::{Duration, Instant};

use common::{show, Raw, Rudis};
use rudis::resp::Frame;

/// The subscriber's frames, as their bulk strings.
fn words(f: &Frame) -> Vec<Vec<u8>> {
    match f {
        Frame::Array(items) | Frame::Push(items) => items
            .iter()
            .map(|i| match i {
                Frame::Bulk(b) => b.clone(),
                Frame::Integer(n) => n.to_string().into_bytes(),
                other => format!("{other:?}").into_bytes(),
            })
            .collect(),
        other => panic!("not a push: {other:?}"),
    }
}

fn subscriber(r: &Rudis, proto: u8, channels: &[&str]) -> Raw {
    let mut c = r.raw();
    c.cmd(&["HELLO", &proto.to_string()]);
    let mut cmd = vec!["SUBSCRIBE"];
    cmd.extend_from_slice(channels);
    c.send(&cmd);
    for _ in channels {
        c.read_reply();
    }
    c
}

/// Polls `cmd` until it answers `want` (5 s at most).
fn eventually(c: &mut Raw, cmd: &[&str], want: &[u8]) {
    let start = Instant::now();
    loop {
        let got = c.cmd(cmd);
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{cmd:?}: {} (want {})",
            show(&got),
            show(want)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn subscribers_on_every_worker_get_every_message_in_order() {
    let r = Rudis::start(&["--appendonly", "no", "--workers", "4"]);
    let mut subs: Vec<Raw> = (0..12)
        .map(|i| subscriber(&r, 2 + (i % 2) as u8, &["ch"]))
        .collect();
    const N: usize = 3000;
    let mut publisher = r.raw();
    let cmds: Vec<Vec<String>> = (0..N)
        .map(|i| vec!["PUBLISH".into(), "ch".into(), format!("m{i}")])
        .collect();
    let reader = std::thread::spawn(move || {
        for s in subs.iter_mut() {
            for i in 0..N {
                let w = words(&s.read_frame());
                assert_eq!(
                    w,
                    vec![
                        b"message".to_vec(),
                        b"ch".to_vec(),
                        format!("m{i}").into_bytes()
                    ]
                );
            }
        }
        subs
    });
    for chunk in cmds.chunks(500) {
        let mut out = Vec::new();
        for c in chunk {
            rudis::resp::reply::encode_command(&mut out, c);
        }
        publisher.send_raw(&out);
        for _ in chunk {
            assert_eq!(publisher.read_reply(), b":12\r\n");
        }
    }
    let subs = reader
        .join()
        .expect("every subscriber got every message in order");
    assert_eq!(subs.len(), 12);
}

#[test]
fn a_subscriber_that_does_not_read_is_disconnected_and_others_keep_receiving() {
    let r = Rudis::start(&["--appendonly", "no", "--workers", "2"]);
    let mut admin = r.raw();
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 0 0"
        ]),
        b"+OK\r\n"
    );
    let mut slow = subscriber(&r, 2, &["ch"]);
    let fast = subscriber(&r, 3, &["ch"]);
    const N: usize = 400;
    let payload = "x".repeat(100_000);
    // The reading subscriber says when it has each message, and the publisher waits for that
    // before it publishes the next: it is never more than one message (far under the limit)
    // behind, however slowly a loaded machine runs it.
    let (read_tx, read_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut fast = fast;
        for i in 0..N {
            let w = words(&fast.read_frame());
            assert_eq!(w[2].len(), 100_000 + i.to_string().len());
            let _ = read_tx.send(i);
        }
        fast
    });
    let mut publisher = r.raw();
    for i in 0..N {
        let msg = format!("{payload}{i}");
        let n = publisher.cmd(&["PUBLISH", "ch", &msg]);
        assert!(n == b":2\r\n" || n == b":1\r\n", "{}", show(&n));
        if read_rx.recv_timeout(Duration::from_secs(30)) != Ok(i) {
            break;
        }
    }
    let mut fast = reader
        .join()
        .expect("the reading subscriber got everything");
    // 40 MB were sent: the slow one was cut off, with at most a socket's worth delivered.
    slow.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut received = 0;
    while slow.try_read_reply().is_some() {
        received += 1;
    }
    assert!(received < N, "the slow subscriber got all {received}");
    eventually(
        &mut admin,
        &["PUBSUB", "NUMSUB", "ch"],
        b"*2\r\n$2\r\nch\r\n:1\r\n",
    );
    assert!(
        r.log()
            .contains("closed for overcoming of output buffer limits"),
        "{}",
        r.log()
    );
    assert_eq!(fast.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_subscriber_that_disconnects_leaves_every_channel() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut s = subscriber(&r, 2, &["a", "b"]);
    s.send(&["PSUBSCRIBE", "p*", "q*"]);
    s.read_reply();
    s.read_reply();
    s.send(&["SSUBSCRIBE", "sh"]);
    s.read_reply();
    let mut c = r.raw();
    let list = String::from_utf8(c.cmd(&["CLIENT", "LIST"])).unwrap();
    assert!(list.contains("flags=P db=0 sub=2 psub=2 ssub=1"), "{list}");
    let pubsub = String::from_utf8(c.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"])).unwrap();
    let normal = String::from_utf8(c.cmd(&["CLIENT", "LIST", "TYPE", "normal"])).unwrap();
    assert_eq!(pubsub.matches("id=").count(), 1, "{pubsub}");
    assert!(pubsub.contains("sub=2"), "{pubsub}");
    assert!(!normal.contains("flags=P"), "{normal}");
    let info = String::from_utf8(c.cmd(&["INFO", "stats"])).unwrap();
    assert!(info.contains("pubsub_channels:2\r\n"), "{info}");
    assert!(info.contains("pubsub_patterns:2\r\n"), "{info}");
    assert!(info.contains("pubsubshard_channels:1\r\n"), "{info}");
    drop(s);
    eventually(
        &mut c,
        &["PUBSUB", "NUMSUB", "a", "b"],
        b"*4\r\n$1\r\na\r\n:0\r\n$1\r\nb\r\n:0\r\n",
    );
    eventually(&mut c, &["PUBSUB", "NUMPAT"], b":0\r\n");
    eventually(
        &mut c,
        &["PUBSUB", "SHARDNUMSUB", "sh"],
        b"*2\r\n$2\r\nsh\r\n:0\r\n",
    );
    assert_eq!(c.cmd(&["PUBLISH", "a", "x"]), b":0\r\n");
    let info = String::from_utf8(c.cmd(&["INFO", "stats"])).unwrap();
    assert!(info.contains("pubsub_channels:0\r\n"), "{info}");
}

#[test]
fn a_resp3_subscriber_runs_any_command_and_gets_its_own_messages_first() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut s = subscriber(&r, 3, &["me"]);
    assert_eq!(s.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    s.send(&["PUBLISH", "me", "hi"]);
    assert_eq!(
        s.read_reply(),
        b">3\r\n$7\r\nmessage\r\n$2\r\nme\r\n$2\r\nhi\r\n"
    );
    assert_eq!(s.read_reply(), b":1\r\n");
    // And a subscriber is never closed as idle.
    let mut c = r.raw();
    c.cmd(&["CONFIG", "SET", "timeout", "1"]);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(c.is_closed(), "an idle client is closed");
    let mut c = r.raw();
    assert_eq!(c.cmd(&["PUBLISH", "me", "still"]), b":1\r\n");
    assert_eq!(
        s.read_reply(),
        b">3\r\n$7\r\nmessage\r\n$2\r\nme\r\n$5\r\nstill\r\n"
    );
}

/// REDIRECT to a RESP2 subscriber of `__redis__:invalidate`, and the way rueidis caches
/// (HELLO 3, OPTIN, CLIENT CACHING YES before a MULTI of PTTL + GET): the bytes each client
/// receives, the same from rudis as from redis-server.
fn tracking_transcript(port: u16) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut sub = Raw::connect(port);
    let id = String::from_utf8(sub.cmd(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim().to_string();
    got.push(sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"]));
    let mut t = Raw::connect(port);
    got.push(t.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]));
    got.push(t.cmd(&["CLIENT", "GETREDIR"]).len().to_le_bytes().to_vec());
    got.push(t.cmd(&["GET", "k"]));
    let mut w = Raw::connect(port);
    got.push(w.cmd(&["SET", "k", "v"]));
    got.push(sub.read_reply());
    // rueidis's client-side caching: OPTIN, then CACHING YES + MULTI PTTL GET EXEC.
    let mut r = Raw::connect(port);
    r.cmd(&["HELLO", "3"]);
    got.push(r.cmd(&["CLIENT", "TRACKING", "on", "OPTIN"]));
    for c in [
        &["CLIENT", "CACHING", "YES"][..],
        &["MULTI"],
        &["PTTL", "k"],
        &["GET", "k"],
    ] {
        got.push(r.cmd(c));
    }
    got.push(r.cmd(&["EXEC"]));
    got.push(r.cmd(&["GET", "other"]));
    got.push(w.cmd(&["MSET", "k", "v2", "other", "x"]));
    got.push(r.read_reply());
    got.push(r.cmd(&["PING"]));
    // The redirect target gone: a RESP3 tracker is told once its key changes.
    let mut t3 = Raw::connect(port);
    t3.cmd(&["HELLO", "3"]);
    let mut gone = Raw::connect(port);
    let gid = String::from_utf8(gone.cmd(&["CLIENT", "ID"])).unwrap();
    let gid = gid.trim_start_matches(':').trim().to_string();
    got.push(t3.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &gid]));
    got.push(t3.cmd(&["GET", "g"]));
    drop(gone);
    std::thread::sleep(Duration::from_millis(200));
    got.push(w.cmd(&["SET", "g", "1"]));
    // Client ids differ between the servers: the id is compared to the one it named.
    let broken = String::from_utf8(t3.read_reply()).unwrap();
    got.push(
        broken
            .replace(&format!(":{gid}\r\n"), ":ID\r\n")
            .into_bytes(),
    );
    got
}

#[test]
fn tracking_redirects_and_rueidis_caching_as_redis() {
    let redis = common::RealRedis::start(&[]);
    let rudis = Rudis::start(&["--appendonly", "no"]);
    let want = tracking_transcript(redis.port);
    let got = tracking_transcript(rudis.port);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(show(w), show(g), "step {i}");
    }
    assert_eq!(want.len(), got.len());
}

#[test]
fn tracking_table_max_keys_evicts_and_invalidates() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "2"]),
        b"+OK\r\n"
    );
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["CLIENT", "TRACKING", "on"]);
    for k in ["a", "b", "c"] {
        c.cmd(&["GET", k]);
    }
    // The third key read pushed one out: its client is told to forget it.
    let f = c.read_frame();
    let w = words(&f);
    assert_eq!(w[0], b"invalidate");
    let info = String::from_utf8(c.cmd(&["INFO", "stats"])).unwrap();
    assert!(info.contains("tracking_total_keys:2\r\n"), "{info}");
}

/// Where a tracking client's invalidations fall against its replies, as Redis orders them: a
/// key evicted before a command runs is invalidated before its reply; a BLMOVE served by
/// another client's push gets its reply before the invalidation of the key it moved into.
fn invalidation_order_transcript(port: u16) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut w = Raw::connect(port);
    let mut c = Raw::connect(port);
    c.cmd(&["HELLO", "3"]);
    got.push(c.cmd(&["CLIENT", "TRACKING", "on"]));
    got.push(w.cmd(&["RPUSH", "list2", "a"]));
    got.push(c.cmd(&["LRANGE", "list2", "0", "-1"]));
    c.send(&["BLMOVE", "list1", "list2", "LEFT", "LEFT", "0"]);
    common::wait_blocked(port, 1);
    got.push(w.cmd(&["RPUSH", "list1", "foo"]));
    got.push(c.read_reply());
    got.push(c.read_reply());
    // Eviction before the command: the limit just above what is used, then a big value.
    got.push(c.cmd(&["SET", "volatile-key", "x", "EX", "10000"]));
    got.push(c.cmd(&["GET", "volatile-key"]));
    let info = String::from_utf8(w.cmd(&["INFO", "memory"])).unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let limit = (used + 100 * 1024).to_string();
    got.push(w.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-random"]));
    got.push(w.cmd(&["CONFIG", "SET", "maxmemory", &limit]));
    got.push(w.cmd(&["SETBIT", "big-key", "1600000", "0"]));
    got.push(c.cmd(&["GETBIT", "big-key", "0"]));
    got.push(c.read_reply());
    got.push(w.cmd(&["CONFIG", "SET", "maxmemory", "0"]));
    got
}

#[test]
fn invalidations_fall_before_or_after_the_reply_as_in_redis() {
    common::both(&["--appendonly", "no"], invalidation_order_transcript);
}

#[test]
fn reset_ends_monitor() {
    let r = Rudis::start(&["--appendonly", "no"]);
    let mut m = r.raw();
    assert_eq!(m.cmd(&["MONITOR"]), b"+OK\r\n");
    let mut c = r.raw();
    let list = String::from_utf8(c.cmd(&["CLIENT", "LIST"])).unwrap();
    assert!(list.contains("flags=O"), "{list}");
    assert_eq!(m.cmd(&["RESET"]), b"+RESET\r\n");
    let list = String::from_utf8(c.cmd(&["CLIENT", "LIST"])).unwrap();
    assert!(!list.contains("flags=O"), "{list}");
    // No longer fed: its next reply is PING's, not a MONITOR line.
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(m.cmd(&["PING"]), b"+PONG\r\n");
}

/// A lowered tracking-table-max-keys evicts keys (and invalidates them) by itself, as Redis's
/// cron does, with no further command needed; DEBUG PAUSE-CRON holds that back.
#[test]
fn a_lowered_tracking_table_limit_evicts_without_a_command() {
    let server = Rudis::start(&["--enable-debug-command", "yes"]);
    let mut c = server.raw();
    assert_eq!(c.cmd(&["HELLO", "3"]).first(), Some(&b'%'));
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n");
    let _ = c.cmd(&["MGET", "k1", "k2"]);
    let mut admin = server.raw();
    assert_eq!(admin.cmd(&["DEBUG", "PAUSE-CRON", "1"]), b"+OK\r\n");
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "1"]),
        b"+OK\r\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    let info = String::from_utf8_lossy(&admin.cmd(&["INFO", "stats"])).into_owned();
    assert!(info.contains("tracking_total_keys:2"), "{info}");
    assert_eq!(admin.cmd(&["DEBUG", "PAUSE-CRON", "0"]), b"+OK\r\n");
    let push = c.read_reply();
    let text = common::show(&push);
    assert!(text.contains("invalidate"), "{text}");
    let info = String::from_utf8_lossy(&admin.cmd(&["INFO", "stats"])).into_owned();
    assert!(info.contains("tracking_total_keys:1"), "{info}");
}

/// FLUSHALL empties the tracking table even when no client tracks any more, as Redis frees
/// it whole.
#[test]
fn flushall_empties_the_tracking_table() {
    let server = Rudis::start(&[]);
    let mut c = server.raw();
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n");
    let _ = c.cmd(&["GET", "k1"]);
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "off"]), b"+OK\r\n");
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "stats"])).into_owned();
    assert!(info.contains("tracking_total_keys:1"), "{info}");
    assert_eq!(c.cmd(&["FLUSHALL"]), b"+OK\r\n");
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "stats"])).into_owned();
    assert!(info.contains("tracking_total_keys:0"), "{info}");
    assert!(info.contains("tracking_total_items:0"), "{info}");
}
