//! Transactions with a real client: replies, atomicity (in replies and in the AOF), WATCH,
//! and the AOF's MULTI/EXEC blocks.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{show, Raw, Rudis};
use rudis::harness::Harness;
use rudis::store::ShardId;

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn runtime_error_stays_in_its_slot_and_the_rest_applies() {
    let r = Rudis::start(&[]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["SET", "s", "str"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&words("SET a 1")), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&words("HSET s f v")), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&words("SET b 2")), b"+QUEUED\r\n");
    assert_eq!(
        show(&c.cmd(&["EXEC"])),
        "*3\\r\\n+OK\\r\\n-WRONGTYPE Operation against a key holding the wrong kind of value\\r\\n+OK\\r\\n"
    );
    assert_eq!(c.cmd(&["GET", "b"]), b"$1\r\n2\r\n");
}

#[test]
fn queue_time_error_aborts_and_nothing_applies() {
    let r = Rudis::start(&[]);
    let mut c = r.raw();
    c.cmd(&["MULTI"]);
    c.cmd(&words("SET a 1"));
    assert!(c
        .cmd(&["GET"])
        .starts_with(b"-ERR wrong number of arguments"));
    assert_eq!(
        c.cmd(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(c.cmd(&["GET", "a"]), b"$-1\r\n");
    // The client is out of MULTI again.
    assert_eq!(c.cmd(&["EXEC"]), b"-ERR EXEC without MULTI\r\n");
}

/// Another client never sees half of a transaction: a pair of keys is always both present or
/// both absent.
#[test]
fn exec_is_atomic_for_other_clients() {
    let r = Rudis::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let port = r.port;
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = Raw::connect(port);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                // Pipelined, so that the transaction's commands arrive together.
                c.send_raw(
                    b"MULTI\r\nSET pair:a 1\r\nSET pair:b 1\r\nEXEC\r\n\
                      MULTI\r\nDEL pair:a\r\nDEL pair:b\r\nEXEC\r\n",
                );
                for _ in 0..8 {
                    c.read_reply();
                }
                n += 1;
            }
            n
        })
    };
    let mut c = r.raw();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut seen = [0usize; 3];
    while Instant::now() < deadline {
        match c.cmd(&["EXISTS", "pair:a", "pair:b"]).as_slice() {
            b":0\r\n" => seen[0] += 1,
            b":2\r\n" => seen[2] += 1,
            other => panic!("saw half a transaction: {}", show(other)),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap();
    assert!(rounds > 10, "the writer made only {rounds} rounds");
    assert!(seen[0] + seen[2] > 10);
}

/// Each transaction is one contiguous MULTI ... EXEC block in the AOF, with no other client's
/// command inside it.
#[test]
fn aof_blocks_are_whole_transactions() {
    let r = Rudis::start(&["--appendfsync", "always"]);
    let port = r.port;
    let other = std::thread::spawn(move || {
        let mut c = Raw::connect(port);
        for i in 0..300 {
            c.cmd(&["SET", &format!("other:{i}"), "x"]);
        }
    });
    let mut c = r.raw();
    for i in 0..100 {
        c.send_raw(
            format!("MULTI\r\nSET tx:{i}:a 1\r\nSET tx:{i}:b 2\r\nDEL tx:{i}:a\r\nEXEC\r\n")
                .as_bytes(),
        );
        for _ in 0..5 {
            c.read_reply();
        }
    }
    other.join().unwrap();
    let aof = std::fs::read(r.aof_path()).unwrap();
    let (reqs, err) = rudis::harness::parse_in_pieces(&aof, []);
    assert!(err.is_none());
    let mut blocks = 0;
    let mut inside: Option<Vec<String>> = None;
    for req in reqs {
        let name = String::from_utf8_lossy(&req[0]).to_ascii_uppercase();
        let key = req.get(1).map(|k| String::from_utf8_lossy(k).into_owned());
        match name.as_str() {
            "MULTI" => {
                assert!(inside.is_none(), "nested MULTI in the AOF");
                inside = Some(Vec::new());
            }
            "EXEC" => {
                let cmds = inside.take().expect("EXEC without MULTI in the AOF");
                assert_eq!(cmds.len(), 3, "block {cmds:?}");
                let id = cmds[0].split(':').nth(1).unwrap().to_string();
                assert!(cmds.iter().all(|k| k.starts_with(&format!("tx:{id}:"))));
                blocks += 1;
            }
            _ => {
                if let Some(cmds) = inside.as_mut() {
                    let key = key.expect("a key");
                    assert!(key.starts_with("tx:"), "{name} {key} inside a transaction");
                    cmds.push(key);
                }
            }
        }
    }
    assert_eq!(blocks, 100);
}

#[test]
fn select_inside_multi_is_logged_and_replayed() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    for cmd in ["MULTI", "SELECT 3", "SET b 1", "SET c 2", "EXEC"] {
        c.cmd(&words(cmd));
    }
    // The client stays in database 3 after EXEC, as in Redis.
    assert_eq!(c.cmd(&words("SET d 3")), b"+OK\r\n");
    c.cmd(&words("SELECT 0"));
    c.cmd(&words("SET z 0"));
    let aof = String::from_utf8(std::fs::read(r.aof_path()).unwrap()).unwrap();
    assert!(aof.contains("MULTI") && aof.contains("EXEC"), "{aof}");
    r.restart();
    let mut c = r.raw();
    assert_eq!(c.cmd(&["EXISTS", "b", "c", "d"]), b":0\r\n");
    assert_eq!(c.cmd(&["GET", "z"]), b"$1\r\n0\r\n");
    c.cmd(&words("SELECT 3"));
    assert_eq!(c.cmd(&["EXISTS", "b", "c", "d", "z"]), b":3\r\n");
}

/// A crash in the middle of writing a transaction leaves MULTI without EXEC at the tail: none
/// of it is applied and the file is cut before the MULTI.
#[test]
fn unfinished_transaction_at_aof_tail_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let good = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
    let mut file = good.to_vec();
    file.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n");
    file.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\n3\r\n*1\r\n$4\r\nEX");
    std::fs::write(dir.path().join("appendonly.aof"), &file).unwrap();
    let r = Rudis::start_in(dir.path(), &[]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["GET", "a"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "b", "c"]), b":0\r\n");
    assert_eq!(std::fs::read(r.aof_path()).unwrap(), good);

    // Complete commands after an unfinished MULTI are dropped too.
    let dir = tempfile::tempdir().unwrap();
    let mut file = good.to_vec();
    file.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n");
    std::fs::write(dir.path().join("appendonly.aof"), &file).unwrap();
    let r = Rudis::start_in(dir.path(), &[]);
    assert_eq!(r.raw().cmd(&["EXISTS", "b"]), b":0\r\n");
    assert_eq!(std::fs::read(r.aof_path()).unwrap(), good);
}

#[test]
fn watch_aborts_when_another_client_changes_the_key() {
    let r = Rudis::start(&[]);
    let mut a = r.raw();
    let mut b = r.raw();
    a.cmd(&words("SET k 1"));
    assert_eq!(a.cmd(&words("WATCH k")), b"+OK\r\n");
    b.cmd(&words("SET k 2"));
    a.cmd(&["MULTI"]);
    a.cmd(&words("SET k 3"));
    a.cmd(&words("SET other 1"));
    assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n");
    assert_eq!(a.cmd(&words("GET k")), b"$1\r\n2\r\n");
    assert_eq!(a.cmd(&words("EXISTS other")), b":0\r\n");

    // EXEC cleared the watch: the next transaction goes through despite a new change.
    b.cmd(&words("SET k 4"));
    a.cmd(&["MULTI"]);
    a.cmd(&words("SET k 5"));
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");

    // A key deleted by someone else counts as changed; an untouched one does not.
    a.cmd(&words("WATCH k untouched"));
    b.cmd(&words("DEL k"));
    a.cmd(&["MULTI"]);
    a.cmd(&["PING"]);
    assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n");
    a.cmd(&words("WATCH untouched"));
    b.cmd(&words("SET elsewhere 1"));
    a.cmd(&["MULTI"]);
    a.cmd(&["PING"]);
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+PONG\r\n");
}

#[test]
fn unwatch_and_discard_clear_watches() {
    let r = Rudis::start(&[]);
    let mut a = r.raw();
    let mut b = r.raw();
    a.cmd(&words("WATCH k"));
    b.cmd(&words("SET k 1"));
    assert_eq!(a.cmd(&["UNWATCH"]), b"+OK\r\n");
    a.cmd(&["MULTI"]);
    a.cmd(&words("SET k 2"));
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");

    a.cmd(&words("WATCH k"));
    b.cmd(&words("SET k 3"));
    a.cmd(&["MULTI"]);
    assert_eq!(a.cmd(&["DISCARD"]), b"+OK\r\n");
    a.cmd(&["MULTI"]);
    a.cmd(&words("SET k 4"));
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");

    // A doomed transaction also clears them.
    a.cmd(&words("WATCH k"));
    b.cmd(&words("SET k 5"));
    a.cmd(&["MULTI"]);
    a.cmd(&["NOSUCH"]);
    assert!(a.cmd(&["EXEC"]).starts_with(b"-EXECABORT"));
    a.cmd(&["MULTI"]);
    a.cmd(&words("SET k 6"));
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");
}

/// The client's own change after WATCH aborts too, as in Redis; a key in another database
/// with the same name does not.
#[test]
fn watch_is_per_database_and_sees_own_changes() {
    let r = Rudis::start(&[]);
    let mut a = r.raw();
    a.cmd(&words("WATCH k"));
    a.cmd(&words("SELECT 1"));
    a.cmd(&words("SET k 1"));
    a.cmd(&["MULTI"]);
    a.cmd(&["PING"]);
    assert_eq!(a.cmd(&["EXEC"]), b"*1\r\n+PONG\r\n");
    a.cmd(&words("WATCH k"));
    a.cmd(&words("SET k 2"));
    a.cmd(&["MULTI"]);
    a.cmd(&["PING"]);
    assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n");
}

/// Gives `key` in database 0 a deadline `ms` from now, directly in the store.
fn expire_in(h: &Harness, key: &str, ms: u64) {
    let slot = ShardId::of_key(0, key.as_bytes());
    let mut locked = h.shared.store.lock([slot].into_iter().collect(), true);
    let deadline = rudis::util::clock::now_ms() + ms;
    locked
        .shard_mut(slot)
        .expires
        .insert(key.as_bytes().into(), deadline);
}

/// Redis 7: a watched key that expires after WATCH fails the EXEC; one already expired when
/// watched does not.
#[test]
fn watched_key_expiring_after_watch_aborts() {
    let mut h = Harness::new();
    h.run(&words("SET k v"));
    expire_in(&h, "k", 60);
    assert_eq!(h.run(&words("WATCH k")), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(100));
    h.run(&["MULTI"]);
    h.run(&words("SET x 1"));
    assert_eq!(h.run(&["EXEC"]), b"*-1\r\n");

    h.run(&words("SET j v"));
    expire_in(&h, "j", 1);
    std::thread::sleep(Duration::from_millis(20));
    h.run(&words("WATCH j"));
    h.run(&["MULTI"]);
    h.run(&words("SET x 1"));
    assert_eq!(h.run(&["EXEC"]), b"*1\r\n+OK\r\n");
}

/// A disconnected client's watches are freed.
#[test]
fn disconnect_frees_watches() {
    let shared = std::sync::Arc::new(Harness::new().shared);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = shared.clone();
    std::thread::spawn(move || rudis::server::serve(&s, listener, 2));
    let mut c = Raw::connect(port);
    assert_eq!(c.cmd(&words("WATCH a b c")), b"+OK\r\n");
    assert_eq!(shared.watches.count(), 3);
    drop(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while shared.watches.count() != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(shared.watches.count(), 0);
}

/// CLIENT LIST shows a client in MULTI as Redis does: `flags=x` and how many are queued.
#[test]
fn client_list_shows_the_open_transaction() {
    let r = Rudis::start(&[]);
    let mut a = r.raw();
    let mut b = r.raw();
    let id = String::from_utf8(a.cmd(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end().to_string();
    let line_of_a = |b: &mut Raw| {
        let list = String::from_utf8(b.cmd(&["CLIENT", "LIST"])).unwrap();
        list.lines()
            .find(|l| l.contains(&format!("id={id} ")))
            .unwrap_or_else(|| panic!("no id={id} in {list}"))
            .to_string()
    };
    a.cmd(&["MULTI"]);
    a.cmd(&words("SET k 1"));
    a.cmd(&words("SET k 2"));
    let line = line_of_a(&mut b);
    assert!(
        line.contains(" flags=x ") && line.contains(" multi=2 "),
        "{line}"
    );
    a.cmd(&["EXEC"]);
    let line = line_of_a(&mut b);
    assert!(
        line.contains(" flags=N ") && line.contains(" multi=-1 "),
        "{line}"
    );
}
