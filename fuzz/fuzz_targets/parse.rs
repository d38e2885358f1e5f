//! Any bytes, split anywhere, give the request parser requests or a protocol error, never a
//! panic, and the same outcome as the bytes fed whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rudis::harness::parse_in_pieces;

fuzz_target!(|data: &[u8]| {
    // The first bytes choose where reads end; the rest is the input.
    if data.len() < 4 {
        return;
    }
    let (head, input) = data.split_at(4);
    let mut cuts = Vec::new();
    let mut at = 0usize;
    for &b in head {
        at += b as usize;
        cuts.push(at);
    }
    let whole = parse_in_pieces(input, []);
    let pieces = parse_in_pieces(input, cuts);
    let bytewise = parse_in_pieces(input, 0..input.len());
    assert_eq!(whole, pieces);
    assert_eq!(whole, bytewise);
});
