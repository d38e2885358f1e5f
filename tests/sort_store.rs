//! SORT ... STORE in the AOF: logged as its effect (DEL + RPUSH, or DEL of a destination an
//! empty result removes), so a restart and a real redis-server both rebuild the same lists,
//! whatever order a set's members come in.
mod aofutil;
mod common;

use aofutil::{check_aof, redis_loading};
use common::Rudis;
use common::{show, Raw};

fn load(c: &mut Raw) {
    for cmd in [
        &["RPUSH", "l", "3", "1", "2"][..],
        &["SADD", "s", "b", "c", "a", "d"],
        &["SET", "w_1", "30"],
        &["SET", "w_2", "10"],
        &["SET", "w_3", "20"],
        &["HSET", "o_1", "name", "one"],
        &["HSET", "o_3", "name", "three"],
        &["SET", "old", "x"],
        &["SET", "gone", "x"],
    ] {
        let reply = c.cmd(cmd);
        assert!(!reply.starts_with(b"-"), "{cmd:?}: {}", show(&reply));
    }
    assert_eq!(
        c.cmd(&[
            "SORT",
            "l",
            "BY",
            "w_*",
            "GET",
            "#",
            "GET",
            "o_*->name",
            "STORE",
            "byw"
        ]),
        b":6\r\n"
    );
    assert_eq!(
        c.cmd(&["SORT", "s", "BY", "nosort", "STORE", "old"]),
        b":4\r\n"
    );
    assert_eq!(c.cmd(&["SORT", "nokey", "STORE", "gone"]), b":0\r\n");
    assert_eq!(c.cmd(&["SORT", "nokey", "STORE", "never"]), b":0\r\n");
}

fn check(c: &mut Raw) {
    assert_eq!(
        show(&c.cmd(&["LRANGE", "byw", "0", "-1"])),
        show(b"*6\r\n$1\r\n2\r\n$0\r\n\r\n$1\r\n3\r\n$5\r\nthree\r\n$1\r\n1\r\n$3\r\none\r\n")
    );
    assert_eq!(
        show(&c.cmd(&["LRANGE", "old", "0", "-1"])),
        show(b"*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n")
    );
    assert_eq!(c.cmd(&["EXISTS", "gone", "never"]), b":0\r\n");
    assert_eq!(c.cmd(&["TYPE", "old"]), b"+list\r\n");
}

#[test]
fn sort_store_survives_a_restart_and_loads_in_redis() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    load(&mut c);
    check(&mut c);
    r.restart();
    check(&mut r.raw());
    let (ok, out) = check_aof(&r.aof_path());
    assert!(ok, "{out}");
    let (redis, _dir) = redis_loading(&r.aof_path());
    check(&mut redis.raw());
}

#[test]
fn sort_store_is_a_change_watch_sees() {
    let r = Rudis::start(&[]);
    let (mut a, mut b) = (r.raw(), r.raw());
    assert_eq!(b.cmd(&["RPUSH", "l", "2", "1"]), b":2\r\n");
    for (sort, aborted) in [
        // A stored result replaces the destination.
        (&["SORT", "l", "STORE", "d"][..], true),
        // An empty result deletes it.
        (&["SORT", "nokey", "STORE", "d"], true),
        // An empty result where there was nothing changes nothing.
        (&["SORT", "nokey", "STORE", "d"], false),
        // Neither does a read, patterns and all.
        (&["SORT", "l", "BY", "w_*", "GET", "d"], false),
    ] {
        assert_eq!(a.cmd(&["WATCH", "d"]), b"+OK\r\n");
        b.cmd(sort);
        assert_eq!(a.cmd(&["MULTI"]), b"+OK\r\n");
        assert_eq!(a.cmd(&["PING"]), b"+QUEUED\r\n");
        let want: &[u8] = if aborted {
            b"*-1\r\n"
        } else {
            b"*1\r\n+PONG\r\n"
        };
        assert_eq!(a.cmd(&["EXEC"]), want, "{sort:?}");
    }
}
