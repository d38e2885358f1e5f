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
    // MIGRATE's keys, its one key or those after KEYS, are checked before it connects
    // anywhere (port 1: had it connected, the error would say so).
    assert_eq!(
        c.cmd(&["MIGRATE", "127.0.0.1", "1", "secret:1", "0", "1000"]),
        NOKEY
    );
    assert_eq!(
        c.cmd(&[
            "MIGRATE",
            "127.0.0.1",
            "1",
            "",
            "0",
            "1000",
            "KEYS",
            "app:1",
            "secret:1"
        ]),
        NOKEY
    );
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
    // The log keeps the newest acllog-max-len entries, as Redis trims at each new one.
    admin.cmd(&["ACL", "LOG", "RESET"]);
    admin.cmd(&["CONFIG", "SET", "acllog-max-len", "3"]);
    for i in 0..6 {
        assert_eq!(c.cmd(&["GET", &format!("secret:{i}")]), NOKEY);
    }
    let log = admin.cmd(&["ACL", "LOG"]);
    assert!(
        log.starts_with(b"*3\r\n"),
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert!(String::from_utf8_lossy(&log).contains("secret:5"));
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
    // A disabled user cannot log in; its open connections go on, as Redis 7.0's do.
    let mut d = as_app(&r);
    admin.cmd(&["ACL", "SETUSER", "app", "off"]);
    assert_eq!(d.cmd(&["GET", "app:1"]), b"$-1\r\n");
    assert_eq!(d.cmd(&["GET", "secret:1"]), NOKEY);
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

/// Users written by ACL SAVE load back the same, in rudis and in redis-server alike: the
/// file rudis saves is byte for byte the one Redis saves for the same users.
#[test]
fn acl_save_and_load_round_trip() {
    let users = "user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 \
                 ~app:* resetchannels &news -@all +get\nuser default on nopass ~* &* +@all\n";
    let saved = |path: &std::path::Path, port: u16| {
        let mut c = Raw::connect(port);
        assert_eq!(c.cmd(&["AUTH", "alice", "pw"]), b"+OK\r\n");
        assert_eq!(c.cmd(&["GET", "other"]), NOKEY);
        let mut admin = Raw::connect(port);
        assert_eq!(
            admin.cmd(&[
                "ACL",
                "SETUSER",
                "bob",
                "on",
                ">pw",
                "%R~ro:*",
                "(~s:* +@set)",
                "+@read"
            ]),
            b"+OK\r\n"
        );
        assert_eq!(admin.cmd(&["ACL", "SAVE"]), b"+OK\r\n");
        let text = std::fs::read_to_string(path).unwrap();
        // A file that does not hold is refused whole, with every line's problem named.
        std::fs::write(
            path,
            format!("{text}user carol on\nnot a user line\nuser carol off\n"),
        )
        .unwrap();
        let err = String::from_utf8(admin.cmd(&["ACL", "LOAD"])).unwrap();
        let p = path.display();
        assert_eq!(
            err,
            format!(
                "-ERR {p}:5 should start with user keyword followed by the username. WARNING: \
                 Duplicate user 'carol' found on line 6. WARNING: ACL errors detected, no \
                 change to the previously active ACL rules was performed\r\n"
            )
        );
        assert_eq!(
            admin.cmd(&["ACL", "DRYRUN", "carol", "get", "x"]),
            b"-ERR User 'carol' not found\r\n"
        );
        // A file that holds replaces the users; the old users' connections are closed.
        std::fs::write(path, format!("{text}user carol on nopass ~* +@all\n")).unwrap();
        assert_eq!(admin.cmd(&["ACL", "LOAD"]), b"+OK\r\n");
        assert!(c.is_closed());
        assert_eq!(
            admin.cmd(&["ACL", "DRYRUN", "carol", "get", "x"]),
            b"+OK\r\n"
        );
        std::fs::remove_file(path).unwrap();
        let err = String::from_utf8(admin.cmd(&["ACL", "LOAD"])).unwrap();
        assert_eq!(
            err,
            format!("-ERR Error loading ACLs, opening file '{p}': No such file or directory\r\n")
        );
        text
    };
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("rudis.acl");
    let theirs = tmp.path().join("redis.acl");
    std::fs::write(&ours, users).unwrap();
    std::fs::write(&theirs, users).unwrap();
    let r = Rudis::start(&["--aclfile", ours.to_str().unwrap()]);
    let redis = common::RealRedis::start(&["--aclfile", theirs.to_str().unwrap()]);
    let our_text = saved(&ours, r.port);
    let their_text = saved(&theirs, redis.port);
    assert_eq!(our_text, their_text);
    // A restart on the saved file has the same users.
    std::fs::write(&ours, &our_text).unwrap();
    let again = Rudis::start(&["--aclfile", ours.to_str().unwrap()]);
    assert_eq!(again.raw().cmd(&["ACL", "SAVE"]), b"+OK\r\n");
    assert_eq!(std::fs::read_to_string(&ours).unwrap(), our_text);
    let mut bob = again.raw();
    assert_eq!(bob.cmd(&["AUTH", "bob", "pw"]), b"+OK\r\n");
    assert_eq!(bob.cmd(&["SADD", "s:1", "m"]), b":1\r\n");
}

#[test]
fn acl_files_and_user_lines_are_checked_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let acl = tmp.path().join("users.acl");
    std::fs::write(&acl, "user alice on\nfoo\nuser bob on +nosuch\n").unwrap();
    let p = acl.to_str().unwrap();
    let (ok, err) = common::run_briefly(&["--port", "0", "--aclfile", p]).expect("should exit");
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "Aborting Redis startup because of ACL errors: {p}:2 should start with user keyword \
             followed by the username. {p}:3: Error in applying operation '+nosuch': Unknown \
             command or category name in ACL. WARNING: ACL errors detected"
        )),
        "{err}"
    );
    // redis.conf's user lines: a bad rule is a config file error on its line.
    let conf = tmp.path().join("redis.conf");
    std::fs::write(&conf, "port 0\nuser alice on badrule\n").unwrap();
    let (ok, err) = common::run_briefly(&[conf.to_str().unwrap()]).expect("should exit");
    assert!(!ok);
    assert!(
        err.contains(
            "line 2\n>>> 'user alice on badrule'\nError in user declaration 'alice': Syntax error"
        ),
        "{err}"
    );
    std::fs::write(&conf, format!("port 0\naclfile {p}\nuser alice on\n")).unwrap();
    let (ok, err) = common::run_briefly(&[conf.to_str().unwrap()]).expect("should exit");
    assert!(
        !ok && err.contains("please define either an ACL file or declare users"),
        "{err}"
    );
    // Good lines make their users; `user default` replaces the default user.
    std::fs::write(
        &conf,
        "user alice on >pw ~app:* +get\nuser default on >admin ~* &* +@all\n",
    )
    .unwrap();
    let r = Rudis::start(&[conf.to_str().unwrap(), "--appendonly", "no"]);
    let mut c = r.raw();
    assert!(c.cmd(&["GET", "app:1"]).starts_with(b"-NOAUTH"));
    assert_eq!(c.cmd(&["AUTH", "alice", "pw"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "app:1"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["GET", "x"]), NOKEY);
    assert_eq!(c.cmd(&["AUTH", "admin"]), b"+OK\r\n");
}

/// A subscriber whose channel is taken away from its user is disconnected (Redis's
/// ACLKillPubsubClientsIfNeeded); one still allowed stays subscribed.
#[test]
fn revoked_channels_disconnect_their_subscribers() {
    let r = Rudis::start(&[]);
    let mut admin = r.raw();
    for (name, channels) in [("news", &["&news"][..]), ("both", &["&news", "&sport*"])] {
        let mut rules = vec![
            "ACL",
            "SETUSER",
            name,
            "on",
            "nopass",
            "resetchannels",
            "+@all",
        ];
        rules.extend(channels);
        assert_eq!(admin.cmd(&rules), b"+OK\r\n");
    }
    let subscriber = |user: &str, what: &[&str]| {
        let mut c = r.raw();
        assert_eq!(c.cmd(&["AUTH", user, "x"]), b"+OK\r\n");
        c.send(what);
        c.read_reply();
        c
    };
    let mut a = subscriber("news", &["SUBSCRIBE", "news"]);
    let mut b = subscriber("both", &["PSUBSCRIBE", "sport*"]);
    let mut c = subscriber("both", &["SUBSCRIBE", "news"]);
    // Widening the rules keeps everyone.
    admin.cmd(&["ACL", "SETUSER", "news", "&weather"]);
    assert_eq!(admin.cmd(&["PUBLISH", "news", "m"]), b":2\r\n");
    // The pattern as subscribed must be allowed as written: `sport*` no longer is.
    admin.cmd(&[
        "ACL",
        "SETUSER",
        "both",
        "resetchannels",
        "&news",
        "&sport1",
    ]);
    assert!(b.is_closed());
    assert_eq!(admin.cmd(&["PUBLISH", "news", "m"]), b":2\r\n");
    admin.cmd(&["ACL", "SETUSER", "news", "resetchannels", "&weather"]);
    for _ in 0..2 {
        assert!(a.read_reply().starts_with(b"*3\r\n$7\r\nmessage"));
    }
    assert!(a.is_closed());
    assert_eq!(admin.cmd(&["PUBLISH", "news", "m"]), b":1\r\n");
    assert!(c.read_reply().starts_with(b"*3\r\n$7\r\nmessage"));
}

/// CONFIG REWRITE writes every user as a `user` line (Redis's rewriteConfigUserOption): in
/// the places of the file's own `user` lines, then after the signature, the same lines
/// redis-server writes; a restart on the file has the same users. With an aclfile the users
/// are its business, and the file keeps no `user` line. (Each user has one single-command
/// rule at most: Redis lists those in its command dict's order, which a random hash seed
/// picks at each start.)
#[test]
fn config_rewrite_writes_the_users() {
    let conf_text = "# users\nuser alice on >pw ~app:* +get\nuser gone on nopass +@all\n\
                     appendonly no\nsave \"\"\n";
    let change = |port: u16| {
        let mut admin = Raw::connect(port);
        for cmd in [
            &[
                "ACL",
                "SETUSER",
                "alice",
                "resetkeys",
                "~x:*",
                "%R~ro:*",
                "+@hash",
            ][..],
            &[
                "ACL",
                "SETUSER",
                "bob",
                "on",
                "#30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4",
                "(~s:* +@set)",
                "&news",
            ],
            &["ACL", "DELUSER", "gone"],
            &["CONFIG", "REWRITE"],
        ] {
            let expected: &[u8] = if cmd[1] == "DELUSER" {
                b":1\r\n"
            } else {
                b"+OK\r\n"
            };
            assert_eq!(admin.cmd(cmd), expected, "{cmd:?}");
        }
        admin.cmd(&["ACL", "LIST"])
    };
    let user_lines = |path: &std::path::Path| -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .filter(|l| l.starts_with("user "))
            .map(String::from)
            .collect()
    };
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("rudis.conf");
    std::fs::write(&ours, conf_text).unwrap();
    let mut r = Rudis::start_in(tmp.path(), &[ours.to_str().unwrap()]);
    let listed = change(r.port);

    let redis_dir = tempfile::tempdir().unwrap();
    let theirs = redis_dir.path().join("redis.conf");
    let port = common::free_port();
    std::fs::write(&theirs, format!("{conf_text}port {port}\n")).unwrap();
    let redis_on_its_file = || {
        let log = redis_dir.path().join("redis.log");
        let mut redis = std::process::Command::new("redis-server")
            .arg(&theirs)
            .arg("--logfile")
            .arg(&log)
            .arg("--dir")
            .arg(redis_dir.path())
            .spawn()
            .expect("spawn redis-server");
        common::wait_ready(port, &mut redis, "redis-server", &log);
        redis
    };
    let mut redis = redis_on_its_file();
    let redis_listed = change(port);
    let _ = redis.kill();
    let _ = redis.wait();
    assert_eq!(common::show(&listed), common::show(&redis_listed));
    assert_eq!(user_lines(&ours), user_lines(&theirs));
    let text = std::fs::read_to_string(&ours).unwrap();
    assert!(
        text.starts_with("# users\nuser alice "),
        "the first user line is rewritten in place: {text}"
    );

    // Restarted on the files, both have the same users (the `user default` line gains
    // sanitize-payload in both: a user line starts from `reset`).
    r.restart();
    let mut redis = redis_on_its_file();
    let redis_again = Raw::connect(port).cmd(&["ACL", "LIST"]);
    let _ = redis.kill();
    let _ = redis.wait();
    let again = r.raw().cmd(&["ACL", "LIST"]);
    assert_eq!(common::show(&again), common::show(&redis_again));
    let users = |reply: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(reply)
            .split("\r\n")
            .filter(|l| l.starts_with("user "))
            .map(|l| l.replace(" sanitize-payload", ""))
            .collect()
    };
    assert_eq!(users(&again), users(&listed));
    let mut bob = r.raw();
    assert_eq!(bob.cmd(&["AUTH", "bob", "pw"]), b"+OK\r\n");
    assert_eq!(bob.cmd(&["SADD", "s:1", "m"]), b":1\r\n");

    // With an aclfile, the users stay out of the config file.
    let acl = tmp.path().join("users.acl");
    std::fs::write(&acl, "user carol on nopass ~* +@all\n").unwrap();
    let conf = tmp.path().join("acl.conf");
    std::fs::write(&conf, format!("aclfile {}\nappendonly no\n", acl.display())).unwrap();
    let r = Rudis::start_in(tmp.path(), &[conf.to_str().unwrap()]);
    let mut admin = r.raw();
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "dave", "on"]), b"+OK\r\n");
    assert_eq!(admin.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    assert_eq!(user_lines(&conf), Vec::<String>::new());
}
