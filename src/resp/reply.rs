//! The reply writer: handlers append RESP2 straight into the connection's output buffer, so no
//! tree of reply values is built per request.

/// A connection's output buffer.
#[derive(Debug, Default, Clone)]
pub struct ReplyBuf {
    pub buf: Vec<u8>,
}

impl ReplyBuf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// `+OK`-style status. `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// An error line. `msg` includes its code (`ERR ...`, `WRONGTYPE ...`). Newlines would break
    /// the protocol, so they become spaces as Redis does.
    pub fn error(&mut self, msg: &str) {
        self.buf.push(b'-');
        self.buf.extend(
            msg.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        if (0..10).contains(&n) {
            self.buf
                .extend_from_slice(&[b':', b'0' + n as u8, b'\r', b'\n']);
            return;
        }
        self.line(b':', itoa::Buffer::new().format(n).as_bytes());
    }

    pub fn bulk(&mut self, b: &[u8]) {
        self.header(b'$', b.len());
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_int(&mut self, n: i64) {
        self.bulk(itoa::Buffer::new().format(n).as_bytes());
    }

    pub fn null(&mut self) {
        self.buf.extend_from_slice(b"$-1\r\n");
    }

    pub fn array(&mut self, len: usize) {
        self.header(b'*', len);
    }

    pub fn null_array(&mut self) {
        self.buf.extend_from_slice(b"*-1\r\n");
    }

    /// An optional bulk: null when absent.
    pub fn bulk_opt(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }

    /// Bytes that are already valid RESP.
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// `kind`, then `len` in decimal, then CRLF. Most lengths are one digit: four bytes
    /// in one append.
    fn header(&mut self, kind: u8, len: usize) {
        if len < 10 {
            self.buf
                .extend_from_slice(&[kind, b'0' + len as u8, b'\r', b'\n']);
            return;
        }
        self.line(kind, itoa::Buffer::new().format(len).as_bytes());
    }

    /// `kind`, `text` and CRLF, with one reservation.
    fn line(&mut self, kind: u8, text: &[u8]) {
        self.buf.reserve(text.len() + 3);
        self.buf.push(kind);
        self.buf.extend_from_slice(text);
        self.buf.extend_from_slice(b"\r\n");
    }
}

/// Encode a command as a RESP array of bulk strings (the AOF's and the wire's request form).
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    // One allocation for the whole record rather than a doubling per argument: each header
    // and its CRLFs take at most 16 bytes ahead of the argument.
    out.reserve(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type() {
        let mut r = ReplyBuf::new();
        r.simple("PONG");
        r.error("ERR bad\r\nthing");
        r.int(-42);
        r.bulk(b"a\r\nb");
        r.null();
        r.array(2);
        r.bulk(b"");
        r.array(0);
        r.null_array();
        r.bulk_int(7);
        assert_eq!(
            r.as_bytes(),
            &b"+PONG\r\n-ERR bad  thing\r\n:-42\r\n$4\r\na\r\nb\r\n$-1\r\n*2\r\n$0\r\n\r\n*0\r\n*-1\r\n$1\r\n7\r\n"[..]
        );
    }

    #[test]
    fn command_encoding() {
        let mut out = Vec::new();
        encode_command(&mut out, &[&b"SET"[..], b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn integers_at_the_edges_and_bulk_forms() {
        let mut r = ReplyBuf::new();
        r.int(i64::MIN);
        r.int(i64::MAX);
        r.int(0);
        r.bulk_int(-5);
        r.bulk_opt(None);
        r.bulk_opt(Some(b""));
        r.raw(b"+RAW\r\n");
        r.simple("");
        assert_eq!(
            r.as_bytes(),
            &b":-9223372036854775808\r\n:9223372036854775807\r\n:0\r\n$2\r\n-5\r\n$-1\r\n$0\r\n\r\n+RAW\r\n+\r\n"[..]
        );
        let bulk: Vec<u8> = (0..=255u8).collect();
        r.clear();
        r.bulk(&bulk);
        assert!(r.as_bytes().starts_with(b"$256\r\n\x00\x01"));
        assert_eq!(r.len(), 6 + 256 + 2);
    }

    #[test]
    fn written_replies_parse_back_as_frames() {
        use crate::resp::Frame;
        let mut r = ReplyBuf::new();
        r.array(3);
        r.bulk(b"a");
        r.int(2);
        r.null();
        assert_eq!(
            Frame::parse(r.as_bytes()).unwrap(),
            Some((
                Frame::Array(vec![
                    Frame::Bulk(b"a".to_vec()),
                    Frame::Integer(2),
                    Frame::Null
                ]),
                r.len()
            ))
        );
    }
}
