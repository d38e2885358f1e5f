//! Authentication (requirepass, AUTH) and protected mode, with real clients; replies compared
//! with a real redis-server where it can run the same case.
mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use common::{connect_from, show, Raw, RealRedis, Rudis};
use rudis::config::Config;
use rudis::shared::Shared;

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Runs each line on both servers (one connection each) and compares the replies byte for
/// byte.
fn same_replies(redis: &mut Raw, rudis: &mut Raw, lines: &[&str]) {
    for line in lines {
        let want = redis.cmd(&words(line));
        let got = rudis.cmd(&words(line));
        assert_eq!(show(&got), show(&want), "{line}");
    }
}

const WITH_PASSWORD: &[&str] = &[
    "GET a",
    "NOSUCHCOMMAND x",
    "GET",
    "PING",
    "SET a 1",
    "MULTI",
    "AUTH wrong",
    "AUTH default wrong",
    "AUTH nobody s3cret",
    "AUTH a b c",
    "AUTH s3cret",
    "GET a",
    "AUTH wrong",
    "SET a 1",
    "AUTH default s3cret",
    "PING",
];

#[test]
fn requirepass_gates_every_command_but_auth_like_redis() {
    let redis = RealRedis::start(&["--requirepass", "s3cret"]);
    let rudis = Rudis::start(&["--requirepass", "s3cret"]);
    same_replies(&mut redis.raw(), &mut rudis.raw(), WITH_PASSWORD);
    // QUIT needs no password.
    same_replies(&mut redis.raw(), &mut rudis.raw(), &["QUIT"]);
}

#[test]
fn auth_without_a_password_configured_like_redis() {
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(&[]);
    same_replies(
        &mut redis.raw(),
        &mut rudis.raw(),
        &[
            "AUTH x",
            "AUTH default anything",
            "AUTH someone x",
            "AUTH default",
            "PING",
        ],
    );
}

#[test]
fn requirepass_from_config_file_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, "# test\nrequirepass \"t0p-s3cret-pw\"\n").unwrap();
    let conf = conf.to_string_lossy().into_owned();
    let r = Rudis::start(&[&conf, "--loglevel", "debug"]);
    let mut c = r.raw();
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert!(c.cmd(&["AUTH", "t0p-s3cret-pX"]).starts_with(b"-WRONGPASS"));
    assert_eq!(c.cmd(&["AUTH", "t0p-s3cret-pw"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let log = r.log();
    assert!(log.contains("ready to accept"), "{log}");
    assert!(
        !log.contains("t0p-s3cret"),
        "the log shows the password:\n{log}"
    );
}

/// An in-process server, so that the test can change the configuration as CONFIG SET does.
fn in_process(config: Config) -> (Arc<Shared>, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared = Arc::new(Shared::new(config));
    let s = shared.clone();
    std::thread::spawn(move || rudis::server::serve(&s, listener, 4));
    (shared, port)
}

/// As in Redis: setting a password at run time locks out new connections, not the ones
/// already connected; clearing it lets everyone in, and AUTH then complains.
#[test]
fn password_set_at_run_time_applies_to_new_connections() {
    let (shared, port) = in_process(Config {
        appendonly: false,
        ..Config::default()
    });
    let mut old = Raw::connect(port);
    assert_eq!(old.cmd(&["PING"]), b"+PONG\r\n");
    // Through CONFIG SET, which also makes it the default user's password (ACL).
    assert_eq!(old.cmd(&["CONFIG", "SET", "requirepass", "pw"]), b"+OK\r\n");
    assert_eq!(shared.config.read().get("requirepass").unwrap(), "pw");
    assert_eq!(old.cmd(&["PING"]), b"+PONG\r\n");
    let mut new = Raw::connect(port);
    assert_eq!(new.cmd(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(new.cmd(&["AUTH", "default", "pw"]), b"+OK\r\n");
    assert_eq!(new.cmd(&["PING"]), b"+PONG\r\n");
    let mut third = Raw::connect(port);
    assert_eq!(old.cmd(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    assert_eq!(third.cmd(&["PING"]), b"+PONG\r\n");
    assert!(third
        .cmd(&["AUTH", "pw"])
        .starts_with(b"-ERR AUTH <password> called without"));
}

/// Sends PING from a non-loopback source and returns everything the server sends until it
/// closes (or 2 s pass).
fn ping_from_outside(port: u16) -> Vec<u8> {
    let mut s = connect_from(Ipv4Addr::new(127, 0, 0, 2), port);
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(b"PING\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.ends_with(b"+PONG\r\n") || got.starts_with(b"-NOAUTH") {
            return got;
        }
    }
}

#[test]
fn protected_mode_refuses_outside_clients_without_a_password() {
    let redis = RealRedis::start(&[]);
    let want = ping_from_outside(redis.port);
    assert!(want.starts_with(b"-DENIED Redis is running in protected mode"));
    let rudis = Rudis::start(&["--bind", "0.0.0.0"]);
    assert_eq!(show(&ping_from_outside(rudis.port)), show(&want));
    // Loopback clients are served.
    assert_eq!(rudis.raw().cmd(&["PING"]), b"+PONG\r\n");
    // And the refused client was closed, not left holding a worker.
    let mut s = connect_from(Ipv4Addr::new(127, 0, 0, 3), rudis.port);
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    assert_eq!(all, want);
}

#[test]
fn protected_mode_off_or_password_set_lets_outside_clients_in() {
    let r = Rudis::start(&["--protected-mode", "no"]);
    assert_eq!(ping_from_outside(r.port), b"+PONG\r\n");
    let r = Rudis::start(&["--requirepass", "pw"]);
    assert_eq!(
        ping_from_outside(r.port),
        b"-NOAUTH Authentication required.\r\n"
    );
}

/// HELLO's AUTH option, HELLO without it before AUTH, and RESET forgetting authentication:
/// the same replies as Redis (HELLO's own reply holds the client id, so only its shape).
#[test]
fn hello_auth_and_reset_like_redis() {
    let redis = RealRedis::start(&["--requirepass", "pw"]);
    let rudis = Rudis::start(&["--requirepass", "pw"]);
    let (mut a, mut b) = (redis.raw(), rudis.raw());
    same_replies(
        &mut a,
        &mut b,
        &[
            "HELLO 2",
            "HELLO 2 AUTH nobody pw",
            "HELLO 2 AUTH default nope",
            "PING",
        ],
    );
    for c in [&mut a, &mut b] {
        assert!(c
            .cmd(&words("HELLO 2 AUTH default pw"))
            .starts_with(b"*14\r\n"));
    }
    same_replies(
        &mut a,
        &mut b,
        &[
            "PING", "MULTI", "SET x 1", "RESET", "PING", "EXEC", "AUTH pw", "PING",
        ],
    );
}

/// CONFIG SET / GET requirepass over the protocol, with two connections, as Redis answers.
#[test]
fn config_set_requirepass_like_redis() {
    let redis = RealRedis::start(&[]);
    let rudis = Rudis::start(&[]);
    let (mut a1, mut b1) = (redis.raw(), rudis.raw());
    same_replies(
        &mut a1,
        &mut b1,
        &[
            "CONFIG GET requirepass",
            "CONFIG SET requirepass sekrit",
            "CONFIG GET requirepass",
            "PING",
        ],
    );
    let (mut a2, mut b2) = (redis.raw(), rudis.raw());
    same_replies(
        &mut a2,
        &mut b2,
        &["PING", "AUTH wrong", "AUTH sekrit", "PING"],
    );
    for c in [&mut a1, &mut b1] {
        assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    }
    let (mut a3, mut b3) = (redis.raw(), rudis.raw());
    same_replies(
        &mut a3,
        &mut b3,
        &["PING", "AUTH sekrit", "CONFIG GET protected-mode"],
    );
}

/// Issue 21: `/proc/PID/cmdline` is readable by every local user; a password given as a flag
/// must not be in it. As Redis (`set-proc-title yes`), the process title replaces the
/// arguments; with `set-proc-title no` they stay, the secrets blanked.
#[test]
fn a_password_flag_is_not_visible_in_the_process_arguments() {
    let start = |first: &[&str]| {
        let mut args = first.to_vec();
        args.extend([
            "--requirepass",
            "s3cret-in-argv",
            "--masterauth=other-s3cret",
        ]);
        let server = Rudis::start(&args);
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.child.id())).unwrap();
        let text = String::from_utf8_lossy(&cmdline).into_owned();
        assert!(!text.contains("s3cret"), "cmdline shows a secret: {text:?}");
        let mut c = server.raw();
        assert_eq!(show(&c.cmd(&["AUTH", "s3cret-in-argv"])), "+OK\\r\\n");
        (server, text)
    };
    let (server, text) = start(&[]);
    // Redis's default template, "{title} {listen-addr} {server-mode}".
    let title = format!("{} *:{}", env!("CARGO_BIN_EXE_rudis-server"), server.port);
    assert!(text.starts_with(&format!("{title}\0")), "{text:?}");

    let (server, text) = start(&["--set-proc-title", "no"]);
    // The rest is still there (pgrep -f patterns keep working).
    assert!(text.contains("--requirepass\0"), "{text:?}");
    assert!(
        text.contains(&format!("--port\0{}\0", server.port)),
        "{text:?}"
    );
}
