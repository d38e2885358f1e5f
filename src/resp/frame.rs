//! A RESP2 or RESP3 value, for clients of the protocol (tests, tools, stored replies) rather than
//! the server's hot path. Encoding goes through `ReplyBuf`, so a RESP3 frame written to a RESP2
//! buffer comes out as Redis's RESP2 fallback.

use super::parse::parse_i64;
use super::reply::ReplyBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Frame>),
    NullArray,
    /// RESP3 types. A null read back from RESP3 (`_`) is `Null`.
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
    /// The text as sent (`3.14`, `inf`), so that frames compare exactly.
    Double(String),
    Boolean(bool),
    BigNumber(String),
    /// Format (three letters) and text.
    Verbatim(String, Vec<u8>),
    /// Attributes and the reply they annotate.
    Attributed(Vec<(Frame, Frame)>, Box<Frame>),
}

/// Why a reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub &'static str);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid RESP: {}", self.0)
    }
}

impl std::error::Error for FrameError {}

const MAX_DEPTH: usize = 64;

impl Frame {
    pub fn encode(&self, out: &mut ReplyBuf) {
        match self {
            Frame::Simple(s) => out.simple(s),
            Frame::Error(s) => out.error(s),
            Frame::Integer(n) => out.int(*n),
            Frame::Bulk(b) => out.bulk(b),
            Frame::Null => out.null_bulk(),
            Frame::NullArray => out.null_array(),
            Frame::Array(items) => {
                out.array(items.len());
                items.iter().for_each(|i| i.encode(out));
            }
            Frame::Set(items) => {
                out.set(items.len());
                items.iter().for_each(|i| i.encode(out));
            }
            Frame::Push(items) => {
                out.push(items.len());
                items.iter().for_each(|i| i.encode(out));
            }
            Frame::Map(pairs) => {
                out.map(pairs.len());
                encode_pairs(pairs, out);
            }
            Frame::Attributed(pairs, reply) => {
                out.attribute(pairs.len(), |out| encode_pairs(pairs, out));
                reply.encode(out);
            }
            Frame::Double(text) => out.double(text.parse().unwrap_or(f64::NAN)),
            Frame::Boolean(b) => out.bool(*b),
            Frame::BigNumber(digits) => out.big_number(digits.as_bytes()),
            Frame::Verbatim(format, text) => out.verbatim(format, text),
        }
    }

    /// The frame's RESP3 bytes.
    pub fn to_resp3(&self) -> Vec<u8> {
        let mut r = ReplyBuf::new();
        r.set_protocol(3);
        self.encode(&mut r);
        r.buf
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut r = ReplyBuf::new();
        self.encode(&mut r);
        r.buf
    }

    /// Parse one frame from the front of `buf`: `Ok(None)` if more bytes are needed, else the frame
    /// and the number of bytes it took.
    pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        parse_at(buf, 0, 0)
    }
}

fn encode_pairs(pairs: &[(Frame, Frame)], out: &mut ReplyBuf) {
    for (k, v) in pairs {
        k.encode(out);
        v.encode(out);
    }
}

/// `n` frames from `pos` on, or `None` if the buffer ends first.
fn parse_items(
    buf: &[u8],
    mut pos: usize,
    n: usize,
    depth: usize,
) -> Result<Option<(Vec<Frame>, usize)>, FrameError> {
    let mut items = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        match parse_at(buf, pos, depth + 1)? {
            Some((f, next)) => {
                items.push(f);
                pos = next;
            }
            None => return Ok(None),
        }
    }
    Ok(Some((items, pos)))
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut it = items.into_iter();
    std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
}

fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rel = buf[from..].windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[from..from + rel], from + rel + 2))
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    if depth > MAX_DEPTH {
        return Err(FrameError("nesting too deep"));
    }
    if pos >= buf.len() {
        return Ok(None);
    }
    let Some((l, next)) = line(buf, pos + 1) else {
        return Ok(None);
    };
    let text = || String::from_utf8(l.to_vec()).map_err(|_| FrameError("non-UTF-8 status line"));
    let num = || parse_i64(l).ok_or(FrameError("bad length or integer"));
    let frame = match buf[pos] {
        b'+' => (Frame::Simple(text()?), next),
        b'-' => (Frame::Error(text()?), next),
        b':' => (Frame::Integer(num()?), next),
        b'$' => {
            let n = num()?;
            if n == -1 {
                (Frame::Null, next)
            } else if n < 0 {
                return Err(FrameError("negative bulk length"));
            } else {
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(FrameError("bulk not terminated by CRLF"));
                }
                (Frame::Bulk(buf[next..end].to_vec()), end + 2)
            }
        }
        b'*' => {
            let n = num()?;
            if n == -1 {
                (Frame::NullArray, next)
            } else if n < 0 {
                return Err(FrameError("negative array length"));
            } else {
                match parse_items(buf, next, n as usize, depth)? {
                    Some((items, p)) => (Frame::Array(items), p),
                    None => return Ok(None),
                }
            }
        }
        kind @ (b'~' | b'>' | b'%' | b'|') => {
            let n = usize::try_from(num()?).map_err(|_| FrameError("negative length"))?;
            let n = if matches!(kind, b'%' | b'|') {
                n.checked_mul(2).ok_or(FrameError("length too large"))?
            } else {
                n
            };
            let Some((items, p)) = parse_items(buf, next, n, depth)? else {
                return Ok(None);
            };
            match kind {
                b'~' => (Frame::Set(items), p),
                b'>' => (Frame::Push(items), p),
                b'%' => (Frame::Map(pairs(items)), p),
                _ => match parse_at(buf, p, depth + 1)? {
                    Some((reply, p)) => (Frame::Attributed(pairs(items), Box::new(reply)), p),
                    None => return Ok(None),
                },
            }
        }
        b'_' if l.is_empty() => (Frame::Null, next),
        b'#' => match l {
            b"t" => (Frame::Boolean(true), next),
            b"f" => (Frame::Boolean(false), next),
            _ => return Err(FrameError("bad boolean")),
        },
        b',' => (Frame::Double(text()?), next),
        b'(' => (Frame::BigNumber(text()?), next),
        b'=' => {
            let n = usize::try_from(num()?).map_err(|_| FrameError("negative length"))?;
            let end = next + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if n < 4 || buf[next + 3] != b':' || &buf[end..end + 2] != b"\r\n" {
                return Err(FrameError("bad verbatim string"));
            }
            let format = String::from_utf8(buf[next..next + 3].to_vec())
                .map_err(|_| FrameError("non-UTF-8 verbatim format"))?;
            (
                Frame::Verbatim(format, buf[next + 4..end].to_vec()),
                end + 2,
            )
        }
        _ => return Err(FrameError("unknown type byte")),
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_every_type() {
        let f = Frame::Array(vec![
            Frame::Simple("OK".into()),
            Frame::Error("ERR x".into()),
            Frame::Integer(i64::MIN),
            Frame::Bulk(b"bin\r\n\0".to_vec()),
            Frame::Null,
            Frame::NullArray,
            Frame::Array(vec![Frame::Array(vec![]), Frame::Bulk(vec![])]),
        ]);
        let bytes = f.to_bytes();
        assert_eq!(Frame::parse(&bytes).unwrap(), Some((f, bytes.len())));
    }

    #[test]
    fn resp3_types_and_their_resp2_fallback() {
        let f = Frame::Array(vec![
            Frame::Map(vec![(Frame::Bulk(b"k".to_vec()), Frame::Integer(1))]),
            Frame::Set(vec![Frame::Simple("a".into())]),
            Frame::Double("1.5".into()),
            Frame::Double("-inf".into()),
            Frame::Boolean(true),
            Frame::Boolean(false),
            Frame::BigNumber("12345678901234567890".into()),
            Frame::Verbatim("txt".into(), b"hi".to_vec()),
            Frame::Push(vec![]),
            Frame::Null,
            Frame::NullArray,
        ]);
        assert_eq!(
            f.to_resp3(),
            b"*11\r\n%1\r\n$1\r\nk\r\n:1\r\n~1\r\n+a\r\n,1.5\r\n,-inf\r\n#t\r\n#f\r\n\
              (12345678901234567890\r\n=6\r\ntxt:hi\r\n>0\r\n_\r\n_\r\n"
        );
        assert_eq!(
            f.to_bytes(),
            b"*11\r\n*2\r\n$1\r\nk\r\n:1\r\n*1\r\n+a\r\n$3\r\n1.5\r\n$4\r\n-inf\r\n:1\r\n:0\r\n\
              $20\r\n12345678901234567890\r\n$2\r\nhi\r\n*0\r\n$-1\r\n*-1\r\n"
        );
        let attributed = b"|1\r\n+a\r\n:1\r\n:2\r\n";
        assert_eq!(
            Frame::parse(attributed).unwrap(),
            Some((
                Frame::Attributed(
                    vec![(Frame::Simple("a".into()), Frame::Integer(1))],
                    Box::new(Frame::Integer(2))
                ),
                attributed.len()
            ))
        );
        assert!(Frame::parse(b"#x\r\n").is_err());
        assert!(Frame::parse(b"=2\r\nab\r\n").is_err());
        assert!(Frame::parse(b"%-1\r\n").is_err());
    }

    #[test]
    fn partial_frames_need_more() {
        let bytes =
            Frame::Array(vec![Frame::Bulk(b"hello".to_vec()), Frame::Integer(3)]).to_bytes();
        for n in 0..bytes.len() {
            assert_eq!(Frame::parse(&bytes[..n]).unwrap(), None, "prefix {n}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Frame::parse(b"?x\r\n").is_err());
        assert!(Frame::parse(b"$3\r\nabcd\r\n").is_err());
        assert!(Frame::parse(b":1x\r\n").is_err());
    }

    #[test]
    fn frame_errors() {
        assert_eq!(
            Frame::parse(b"$-2\r\n"),
            Err(FrameError("negative bulk length"))
        );
        assert_eq!(
            Frame::parse(b"*-2\r\n"),
            Err(FrameError("negative array length"))
        );
        assert_eq!(
            Frame::parse(b"+\xff\r\n"),
            Err(FrameError("non-UTF-8 status line"))
        );
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
        assert_eq!(
            Frame::parse(deep.as_bytes()),
            Err(FrameError("nesting too deep"))
        );
        let ok = "*1\r\n".repeat(MAX_DEPTH) + ":1\r\n";
        assert!(Frame::parse(ok.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn pipelined_frames_parse_one_at_a_time() {
        let mut bytes = Frame::Simple("OK".into()).to_bytes();
        bytes.extend(Frame::Integer(-1).to_bytes());
        bytes.extend(Frame::Null.to_bytes());
        let (a, n) = Frame::parse(&bytes).unwrap().unwrap();
        let (b, m) = Frame::parse(&bytes[n..]).unwrap().unwrap();
        let (c, k) = Frame::parse(&bytes[n + m..]).unwrap().unwrap();
        assert_eq!(
            (a, b, c),
            (Frame::Simple("OK".into()), Frame::Integer(-1), Frame::Null)
        );
        assert_eq!(n + m + k, bytes.len());
    }

    mod prop {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        fn frame() -> impl Strategy<Value = Frame> {
            let leaf = prop_oneof![
                "[a-zA-Z0-9 ]{0,12}".prop_map(Frame::Simple),
                "ERR [a-z ]{0,12}".prop_map(Frame::Error),
                any::<i64>().prop_map(Frame::Integer),
                vec(any::<u8>(), 0..20).prop_map(Frame::Bulk),
                Just(Frame::Null),
                Just(Frame::NullArray),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| vec(inner, 0..6).prop_map(Frame::Array))
        }

        fn resp3_frame() -> impl Strategy<Value = Frame> {
            let leaf = prop_oneof![
                "[a-zA-Z0-9 ]{0,12}".prop_map(Frame::Simple),
                any::<i64>().prop_map(Frame::Integer),
                vec(any::<u8>(), 0..20).prop_map(Frame::Bulk),
                Just(Frame::Null),
                any::<bool>().prop_map(Frame::Boolean),
                any::<f64>().prop_map(|x| {
                    let mut b = [0; 40];
                    Frame::Double(
                        String::from_utf8(crate::resp::reply::format_double(x, &mut b).to_vec())
                            .unwrap(),
                    )
                }),
                "-?[0-9]{1,40}".prop_map(Frame::BigNumber),
                ("[a-z]{3}", vec(any::<u8>(), 0..20)).prop_map(|(f, t)| Frame::Verbatim(f, t)),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..6).prop_map(Frame::Array),
                    vec(inner.clone(), 0..6).prop_map(Frame::Set),
                    vec(inner.clone(), 0..6).prop_map(Frame::Push),
                    vec((inner.clone(), inner.clone()), 0..4).prop_map(Frame::Map),
                    (vec((inner.clone(), inner.clone()), 0..3), inner)
                        .prop_map(|(a, r)| Frame::Attributed(a, Box::new(r))),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn resp3_roundtrip_and_every_prefix_is_incomplete(f in resp3_frame()) {
                let bytes = f.to_resp3();
                prop_assert_eq!(Frame::parse(&bytes).unwrap(), Some((f, bytes.len())));
                for n in 0..bytes.len() {
                    prop_assert_eq!(Frame::parse(&bytes[..n]).unwrap(), None);
                }
            }

            #[test]
            fn roundtrip_and_every_prefix_is_incomplete(f in frame()) {
                let bytes = f.to_bytes();
                prop_assert_eq!(Frame::parse(&bytes).unwrap(), Some((f, bytes.len())));
                for n in 0..bytes.len() {
                    prop_assert_eq!(Frame::parse(&bytes[..n]).unwrap(), None);
                }
            }
        }
    }
}
