//! `appendfsync always` is group commit: a reply waits for its record's fsync, but one fsync
//! covers every record waiting at that moment, so many concurrent clients cost far fewer fsyncs
//! than writes. The server logs its counts when it shuts down.
mod aofutil;
mod common;

use aofutil::wait_exit;
use common::Rudis;

/// (records, fsyncs) from the shutdown log line.
fn counts(r: &mut Rudis) -> (u64, u64) {
    r.raw().send(&["SHUTDOWN"]);
    assert!(wait_exit(r, 10).success());
    let log = r.log();
    let line = log
        .lines()
        .find(|l| l.contains("records written with"))
        .unwrap_or_else(|| panic!("no counts in the log:\n{log}"));
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn one_fsync_covers_many_concurrent_writes() {
    const CLIENTS: usize = 12;
    const WRITES: usize = 150;
    let mut r = Rudis::start(&["--appendfsync", "always", "--workers", "16"]);
    let port = r.port;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = common::Raw::connect(port);
                for i in 0..WRITES {
                    assert_eq!(c.cmd(&["SET", &format!("t{t}:{i}"), "v"]), b"+OK\r\n");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (records, fsyncs) = counts(&mut r);
    assert_eq!(records, (CLIENTS * WRITES) as u64);
    assert!(
        fsyncs * 2 < records,
        "group commit is not grouping: {fsyncs} fsyncs for {records} writes"
    );
    r.restart();
    assert_eq!(
        r.raw().cmd(&[
            "EXISTS",
            "t0:0",
            &format!("t{}:{}", CLIENTS - 1, WRITES - 1)
        ]),
        b":2\r\n"
    );
}

#[test]
fn a_lone_client_gets_an_fsync_per_write_and_everysec_far_fewer() {
    let mut r = Rudis::start(&["--appendfsync", "always"]);
    let mut c = r.raw();
    for i in 0..100 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    let (records, fsyncs) = counts(&mut r);
    assert_eq!(records, 100);
    assert!(fsyncs >= 100, "{fsyncs} fsyncs for 100 sequential writes");

    let mut r = Rudis::start(&["--appendfsync", "everysec"]);
    let mut c = r.raw();
    for i in 0..300 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    let (records, fsyncs) = counts(&mut r);
    assert_eq!(records, 300);
    assert!(fsyncs <= 5, "{fsyncs} fsyncs under everysec");
}

#[test]
fn config_set_appendfsync_takes_effect_at_once() {
    let mut r = Rudis::start(&["--appendfsync", "no"]);
    let mut c = r.raw();
    for i in 0..50 {
        assert_eq!(c.cmd(&["SET", &format!("a{i}"), "v"]), b"+OK\r\n");
    }
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "appendfsync", "always"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendfsync"]),
        b"*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n"
    );
    for i in 0..50 {
        assert_eq!(c.cmd(&["SET", &format!("b{i}"), "v"]), b"+OK\r\n");
    }
    let (records, fsyncs) = counts(&mut r);
    assert_eq!(records, 100);
    // The shutdown adds one; under `no` the first 50 got none.
    assert!((50..=52).contains(&fsyncs), "{fsyncs} fsyncs");
}
