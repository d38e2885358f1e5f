//! A RESP2 value, for clients of the protocol (tests, tools) rather than the server's hot path.

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
            Frame::Null => out.null(),
            Frame::NullArray => out.null_array(),
            Frame::Array(items) => {
                out.array(items.len());
                for i in items {
                    i.encode(out);
                }
            }
        }
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
                let mut items = Vec::with_capacity((n as usize).min(1024));
                let mut p = next;
                for _ in 0..n {
                    match parse_at(buf, p, depth + 1)? {
                        Some((f, np)) => {
                            items.push(f);
                            p = np;
                        }
                        None => return Ok(None),
                    }
                }
                (Frame::Array(items), p)
            }
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

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

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
