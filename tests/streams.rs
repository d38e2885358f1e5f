//! Streams end to end: blocked readers woken by XADD from other clients (compared with
//! redis-server), and consumer-group state surviving kill -9 under `appendfsync always`.
mod common;

use common::{blocked_clients, both, Rudis};

#[test]
fn blocked_readers_wake_in_order_as_redis() {
    both(&["--appendonly", "no"], |port| {
        let mut c = common::Raw::connect(port);
        c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        let mut waiters = blocked_clients(
            port,
            &[
                &["XREAD", "BLOCK", "0", "STREAMS", "s", "100-0"],
                &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "a",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "s",
                    ">",
                ],
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "b",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    "s",
                    ">",
                ],
            ],
        );
        let mut t = vec![c.cmd(&["XADD", "s", "5-0", "f", "v"])];
        // The $ reader and the first group reader are served; the reader past 100-0 and the
        // second group reader wait on.
        t.push(waiters[1].read_reply());
        t.push(waiters[2].read_reply());
        t.push(c.cmd(&["XADD", "s", "200-0", "f", "w"]));
        t.push(waiters[0].read_reply());
        t.push(waiters[3].read_reply());
        t.push(c.cmd(&["XPENDING", "s", "g"]));
        t
    });
}

#[test]
fn pending_entries_survive_kill9() {
    let mut r = Rudis::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = r.raw();
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    for i in 1..=10 {
        c.cmd(&["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "a",
        "COUNT",
        "6",
        "STREAMS",
        "s",
        ">",
    ]);
    c.cmd(&["XACK", "s", "g", "1-0", "2-0", "3-0"]);
    let mut w = r.raw();
    w.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "b",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    common::wait_blocked(r.port, 0);
    let served = w.read_reply();
    assert!(
        served.windows(4).any(|x| x == b"10-0"),
        "{}",
        common::show(&served)
    );
    let before = c.cmd(&["XPENDING", "s", "g", "-", "+", "100"]);
    r.kill9();
    r.restart();
    let mut c = r.raw();
    let pending = c.cmd(&["XPENDING", "s", "g"]);
    assert_eq!(
        common::show(&pending),
        common::show(b"*4\r\n:7\r\n$3\r\n4-0\r\n$4\r\n10-0\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n4\r\n")
    );
    let ids = |b: &[u8]| String::from_utf8_lossy(b).matches("-0").count();
    assert_eq!(
        ids(&c.cmd(&["XPENDING", "s", "g", "-", "+", "100"])),
        ids(&before)
    );
    // Nothing acknowledged comes back, and the group does not deliver again.
    assert_eq!(
        c.cmd(&["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"]),
        b"*-1\r\n"
    );
    let history = c.cmd(&["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "0"]);
    assert!(!history.windows(3).any(|x| x == b"1-0"));
}
