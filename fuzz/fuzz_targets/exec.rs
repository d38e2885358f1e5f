//! Sequences of arbitrary commands against a store: nothing panics, and every request gets
//! exactly one well-formed RESP reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rudis::harness::{parse_in_pieces, Harness};
use rudis::resp::Frame;

/// Commands that stop the process, block, or touch files: not what this target is about.
fn skipped(name: &[u8]) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_slice(),
        b"shutdown"
            | b"debug"
            | b"rudis-test-panic"
            | b"config"
            | b"save"
            | b"bgsave"
            | b"bgrewriteaof"
            | b"monitor"
            | b"sync"
            | b"psync"
            | b"wait"
            | b"client"
    ) || [&b"bl"[..], b"br", b"bz", b"x"]
        .iter()
        .any(|p| name.starts_with(p))
}

fuzz_target!(|data: &[u8]| {
    let (requests, _) = parse_in_pieces(data, []);
    // Few databases: building the store is most of the cost of a short input.
    let mut h = Harness::with_config(rudis::config::Config {
        databases: 2,
        ..Default::default()
    });
    for argv in requests.iter().take(64) {
        if skipped(&argv[0]) {
            continue;
        }
        let reply = h.run(argv);
        match Frame::parse(reply) {
            Ok(Some((_, n))) => assert_eq!(n, reply.len(), "more than one reply to {argv:?}"),
            other => panic!("bad reply {other:?} to {argv:?}: {reply:?}"),
        }
    }
});
