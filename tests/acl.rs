//! ACL users against the real binary: a restricted user reaches nothing beyond its rules by
//! any path, and rule changes reach its open connections.

mod common;
use common::{Raw, Rudis};

const NOKEY: &[u8] =
    b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";

fn as_app(r: &Rudis) -> Raw {
    let mut admin = r.raw();
    assert_eq!(
        admin.cmd(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">secret",
            "~app:*",
            "%R~ro:*",
            "&news",
            "-@all",
            "+@string",
            "+@keyspace",
            "+@list",
            "+multi",
            "+exec",
            "+eval",
            "+subscribe",
            "+publish",
            "+sort",
            "-flushall",
            "-flushdb",
            "-keys",
        ]),
        b"+OK\r\n"
    );
    admin.cmd(&["SET", "ro:1", "r"]);
    admin.cmd(&["SET", "secret:1", "s"]);
    let mut c = r.raw();
    assert_eq!(c.cmd(&["AUTH", "app", "secret"]), b"+OK\r\n");
    c
}

#[test]
fn a_restricted_user_stays_within_its_rules() {
    let r = Rudis::start(&[]);
    let mut c = as_app(&r);
    assert_eq!(c.cmd(&["SET", "app:1", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "ro:1"]), b"$1\r\nr\r\n");
    assert_eq!(c.cmd(&["GET", "secret:1"]), NOKEY);
    assert_eq!(c.cmd(&["SET", "ro:1", "x"]), NOKEY);
    assert_eq!(
        c.cmd(&["HSET", "app:h", "f", "v"]),
        b"-NOPERM this user has no permissions to run the 'hset' command\r\n"
    );
    // RENAME and COPY targets are keys too.
    assert_eq!(c.cmd(&["RENAME", "app:1", "secret:2"]), NOKEY);
    assert_eq!(c.cmd(&["COPY", "app:1", "secret:2"]), NOKEY);
    assert_eq!(c.cmd(&["COPY", "secret:1", "app:2"]), NOKEY);
    assert_eq!(c.cmd(&["RENAME", "app:1", "ro:1"]), NOKEY);
    // Blocking commands are refused before they wait.
    assert_eq!(c.cmd(&["BLPOP", "secret:l", "0"]), NOKEY);
    // SORT's STORE destination.
    assert_eq!(c.cmd(&["SORT", "app:l", "STORE", "secret:3"]), NOKEY);
    // SORT BY and GET patterns reach keys no check saw: refused without full read access.
    assert_eq!(
        c.cmd(&["SORT", "app:l", "BY", "secret:*"]),
        b"-ERR BY option of SORT denied due to insufficient ACL permissions.\r\n"
    );
    assert_eq!(
        c.cmd(&["SORT", "app:l", "GET", "secret:*"]),
        b"-ERR GET option of SORT denied due to insufficient ACL permissions.\r\n"
    );
    assert_eq!(c.cmd(&["SORT", "app:l", "BY", "nosort"]), b"*0\r\n");
    // Channels.
    assert_eq!(c.cmd(&["PUBLISH", "news", "m"]), b":0\r\n");
    assert_eq!(
        c.cmd(&["PUBLISH", "other", "m"]),
        b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
    );
    assert!(c.cmd(&["SUBSCRIBE", "other"]).starts_with(b"-NOPERM"));
    // Inside MULTI: refused at queueing, and the transaction is doomed.
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "secret:1"]), NOKEY);
    assert!(c.cmd(&["EXEC"]).starts_with(b"-EXECABORT"));
    // Inside a script.
    // Declared keys are checked as EVAL's own; undeclared ones by redis.call.
    assert_eq!(c.cmd(&["EVAL", "return 1", "1", "secret:1"]), NOKEY);
    let reply = c.cmd(&["EVAL", "return redis.call('get', 'secret:1')", "0"]);
    assert!(
        reply.starts_with(
            b"-ERR The user executing the script can't access at least one of the keys"
        ),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let reply = c.cmd(&["EVAL", "return redis.call('hset', 'app:x', 'f', 'v')", "0"]);
    assert!(reply.starts_with(b"-ERR The user executing the script can't run this command"));
    // Nothing was written by any of them.
    let mut admin = r.raw();
    assert_eq!(admin.cmd(&["GET", "ro:1"]), b"$1\r\nr\r\n");
    assert_eq!(
        admin.cmd(&["EXISTS", "secret:2", "secret:3", "app:x", "app:h"]),
        b":0\r\n"
    );
    // Every denial is in the log, the latest first.
    let log = String::from_utf8_lossy(&admin.cmd(&["ACL", "LOG", "1"])).into_owned();
    assert!(log.contains("lua") && log.contains("hset"), "{log}");
    assert_eq!(admin.cmd(&["ACL", "WHOAMI"]), b"$7\r\ndefault\r\n");
    assert_eq!(
        c.cmd(&["ACL", "WHOAMI"]),
        b"-NOPERM this user has no permissions to run the 'acl|whoami' command\r\n"
    );
}

#[test]
fn changes_apply_to_live_connections() {
    let r = Rudis::start(&[]);
    let mut c = as_app(&r);
    let mut admin = r.raw();
    assert_eq!(c.cmd(&["GET", "secret:1"]), NOKEY);
    admin.cmd(&["ACL", "SETUSER", "app", "~secret:*"]);
    assert_eq!(c.cmd(&["GET", "secret:1"]), b"$1\r\ns\r\n");
    // Queued while allowed, revoked before EXEC: refused inside EXEC.
    c.cmd(&["MULTI"]);
    assert_eq!(c.cmd(&["GET", "secret:1"]), b"+QUEUED\r\n");
    admin.cmd(&["ACL", "SETUSER", "app", "resetkeys", "~app:*"]);
    let exec = String::from_utf8_lossy(&c.cmd(&["EXEC"])).into_owned();
    assert!(exec.contains("NOPERM ACLs rules changed"), "{exec}");
    // A deleted user's connection is closed.
    assert_eq!(admin.cmd(&["ACL", "DELUSER", "app"]), b":1\r\n");
    assert!(c.is_closed());
    // A disabled user cannot log in, and its connections are closed.
    let mut d = as_app(&r);
    admin.cmd(&["ACL", "SETUSER", "app", "off"]);
    assert!(d.is_closed());
    let mut e = r.raw();
    assert!(e.cmd(&["AUTH", "app", "secret"]).starts_with(b"-WRONGPASS"));
}

#[test]
fn requirepass_is_the_default_users_password() {
    let r = Rudis::start(&["--requirepass", "pw"]);
    let mut c = r.raw();
    assert!(c.cmd(&["GET", "x"]).starts_with(b"-NOAUTH"));
    assert!(c.cmd(&["AUTH", "bad"]).starts_with(b"-WRONGPASS"));
    assert_eq!(c.cmd(&["AUTH", "default", "pw"]), b"+OK\r\n");
    let users = String::from_utf8_lossy(&c.cmd(&["ACL", "LIST"])).into_owned();
    // Only the hash is kept.
    assert!(!users.contains(" >pw") && users.contains('#'), "{users}");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", "new"]), b"+OK\r\n");
    let mut d = r.raw();
    assert!(d.cmd(&["AUTH", "pw"]).starts_with(b"-WRONGPASS"));
    assert_eq!(d.cmd(&["AUTH", "new"]), b"+OK\r\n");
    let mut h = r.raw();
    let reply = h.cmd(&["HELLO", "3", "AUTH", "default", "new"]);
    assert!(
        reply.starts_with(b"%7"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}
