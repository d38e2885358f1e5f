//! Property tests of the protocol code: frames round-trip, and the request parser gives the
//! same requests (or the same error) however its input is split, without panicking.

use proptest::prelude::*;
use rudis::harness::parse_in_pieces;
use rudis::resp::Frame;

/// Status and error lines cannot hold CR or LF.
fn line() -> impl Strategy<Value = String> {
    "[^\r\n]{0,20}"
}

fn frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line().prop_map(Frame::Simple),
        line().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Frame::Bulk),
        Just(Frame::Null),
        Just(Frame::NullArray),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        proptest::collection::vec(inner, 0..8).prop_map(Frame::Array)
    })
}

/// Bytes that look like requests often enough to reach deep into the parser: pieces of RESP
/// and inline syntax, and noise.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\\x4".to_vec()),
        Just(b"-".to_vec()),
        Just(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".to_vec()),
        Just(b"PING\r\n".to_vec()),
        (0u32..40).prop_map(|n| n.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_frame_round_trips(f in frame()) {
        let bytes = f.to_bytes();
        prop_assert_eq!(Frame::parse(&bytes).unwrap(), Some((f, bytes.len())));
        // Every proper prefix asks for more.
        for n in 0..bytes.len() {
            prop_assert_eq!(Frame::parse(&bytes[..n]).unwrap(), None);
        }
    }

    #[test]
    fn parser_is_split_invariant(
        input in prop_oneof![request_bytes(), proptest::collection::vec(any::<u8>(), 0..200)],
        cuts in proptest::collection::vec(0usize..300, 0..8),
    ) {
        let whole = parse_in_pieces(&input, []);
        prop_assert_eq!(&parse_in_pieces(&input, cuts), &whole);
        prop_assert_eq!(&parse_in_pieces(&input, 0..input.len()), &whole);
    }
}

/// Valid requests survive any split and come out as they went in.
#[test]
fn encoded_requests_parse_back() {
    proptest!(|(reqs in proptest::collection::vec(
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..5), 0..10),
        cut in 0usize..400)| {
        let mut input = Vec::new();
        for r in &reqs {
            rudis::resp::reply::encode_command(&mut input, r);
        }
        let (got, err) = parse_in_pieces(&input, [cut]);
        prop_assert!(err.is_none());
        prop_assert_eq!(got, reqs);
    });
}
