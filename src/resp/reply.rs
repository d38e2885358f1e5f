//! The reply writer: handlers append RESP straight into the connection's output buffer, so no
//! tree of reply values is built per request.
//!
//! One reply layer, two protocols (Redis's `addReplyMap`, `addReplyDouble`, `addReplyNull`...):
//! a handler says what it replies (`map`, `double`, `null_bulk`), and this buffer, which knows the
//! connection's protocol, writes RESP3 natively or exactly Redis 7.0's RESP2 fallback. The types
//! both protocols share (`int`, `bulk`, `simple`, `array`) never look at the protocol, so the hot
//! path costs what it did before RESP3.

/// How a connection's output buffer is sized between requests, as Redis 7.0's
/// clientsCronResizeOutputBuffer sizes a client's reply buffer: the room a burst of replies
/// made is given back once the buffer is empty (above `CHUNK` at once; below it, to the peak
/// seen since the last reset, when that is under half the room), so that a client that once read
/// a 10 MB value does not hold 10 MB for the rest of its life. DEBUG REPLYBUFFER sets these.
pub mod sizing {
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

    /// Redis's PROTO_REPLY_CHUNK_BYTES: the most room an empty buffer keeps.
    pub const CHUNK: usize = 16 * 1024;
    /// Redis's PROTO_REPLY_MIN_BYTES: no shrink below this.
    pub const MIN: usize = 1024;
    /// Redis's reply_buffer_peak_reset_time default, in ms; -1 never resets.
    pub const DEFAULT_PEAK_RESET_MS: i64 = 5000;

    static PEAK_RESET_MS: AtomicI64 = AtomicI64::new(DEFAULT_PEAK_RESET_MS);
    static RESIZING: AtomicBool = AtomicBool::new(true);
    /// INFO's reply_buffer_shrinks.
    pub static SHRINKS: AtomicU64 = AtomicU64::new(0);

    pub fn peak_reset_ms() -> i64 {
        PEAK_RESET_MS.load(Relaxed)
    }

    pub fn set_peak_reset_ms(ms: i64) {
        PEAK_RESET_MS.store(ms, Relaxed);
    }

    pub fn resizing() -> bool {
        RESIZING.load(Relaxed)
    }

    pub fn set_resizing(on: bool) {
        RESIZING.store(on, Relaxed);
    }
}

/// A connection's output buffer.
#[derive(Debug, Default, Clone)]
pub struct ReplyBuf {
    pub buf: Vec<u8>,
    /// The connection speaks RESP3 (after `HELLO 3`); RESP2 otherwise.
    resp3: bool,
}

impl ReplyBuf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        ReplyBuf {
            buf: Vec::with_capacity(n),
            resp3: false,
        }
    }

    /// The protocol version replies are written in: 2 or 3.
    pub fn protocol(&self) -> u8 {
        if self.resp3 {
            3
        } else {
            2
        }
    }

    /// Switches the protocol of the replies written from now on (HELLO, RESET). Any version but
    /// 3 means RESP2, the only other one there is.
    pub fn set_protocol(&mut self, version: u8) {
        self.resp3 = version == 3;
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
        // One reservation and plain stores: replies of many short elements (LRANGE, HGETALL,
        // SMEMBERS) are mostly this, where three growth checks and a copy call per element
        // cost more than its bytes.
        let n = b.len();
        let mut digits = itoa::Buffer::new();
        let d = digits.format(n).as_bytes();
        let total = 1 + d.len() + 2 + n + 2;
        self.buf.reserve(total);
        let at = self.buf.len();
        // SAFETY: `total` bytes past `at` are reserved above and written below, each once,
        // before the length covers them; the sources are other buffers.
        unsafe {
            let p = self.buf.as_mut_ptr().add(at);
            *p = b'$';
            std::ptr::copy_nonoverlapping(d.as_ptr(), p.add(1), d.len());
            let q = p.add(1 + d.len());
            *q = b'\r';
            *q.add(1) = b'\n';
            if n <= 16 {
                for (i, &c) in b.iter().enumerate() {
                    *q.add(2 + i) = c;
                }
            } else {
                std::ptr::copy_nonoverlapping(b.as_ptr(), q.add(2), n);
            }
            *q.add(2 + n) = b'\r';
            *q.add(3 + n) = b'\n';
            self.buf.set_len(at + total);
        }
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_int(&mut self, n: i64) {
        self.bulk(itoa::Buffer::new().format(n).as_bytes());
    }

    /// The null a RESP2 reply writes as a null bulk string (`$-1`); RESP3's null `_`.
    pub fn null_bulk(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    pub fn array(&mut self, len: usize) {
        self.header(b'*', len);
    }

    /// The null a RESP2 reply writes as a null array (`*-1`); RESP3's null `_`.
    pub fn null_array(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    /// A map of `len` pairs (key, value, key, value... follow): a flat array of `2 * len` in
    /// RESP2.
    pub fn map(&mut self, len: usize) {
        if self.resp3 {
            self.header(b'%', len);
        } else {
            self.header(b'*', 2 * len);
        }
    }

    /// An array of `len` pairs, each opened by `pair()` (HRANDFIELD WITHVALUES): in RESP3 an
    /// array of two-element arrays, in RESP2 one flat array of `2 * len`, as Redis has it.
    pub fn pairs(&mut self, len: usize) {
        self.header(b'*', if self.resp3 { len } else { 2 * len });
    }

    /// Opens one pair of a `pairs` reply: its two elements follow.
    pub fn pair(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"*2\r\n");
        }
    }

    /// A set of `len` elements: an array in RESP2.
    pub fn set(&mut self, len: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, len);
    }

    /// Out-of-band data of `len` elements (Pub/Sub messages, invalidations): an array in RESP2.
    pub fn push(&mut self, len: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, len);
    }

    /// Attributes (`len` pairs, which `write` writes) for the reply that follows. RESP2 has
    /// none: there they are dropped, as Redis drops them.
    pub fn attribute(&mut self, len: usize, write: impl FnOnce(&mut Self)) {
        if self.resp3 {
            self.header(b'|', len);
            write(self);
        }
    }

    /// True if the protocol has out-of-band pushes (RESP3). Only for the rare command that
    /// refuses RESP2 for them, as DEBUG PROTOCOL push does; other pushes fall back to arrays.
    pub fn has_push(&self) -> bool {
        self.resp3
    }

    /// A boolean: `:1`/`:0` in RESP2.
    pub fn bool(&mut self, b: bool) {
        self.buf.extend_from_slice(match (self.resp3, b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        });
    }

    /// A double as Redis's `addReplyDouble` writes it: `%.17g` (`inf`, `-inf` spelt out), as a
    /// bulk string in RESP2.
    pub fn double(&mut self, x: f64) {
        let mut text = [0u8; 40];
        let text = format_double(x, &mut text);
        if self.resp3 {
            self.line(b',', text);
        } else {
            self.bulk(text);
        }
    }

    /// A number already written out (Redis's `addReplyHumanLongDouble`: GEOPOS's coordinates):
    /// a double in RESP3, a bulk string in RESP2.
    pub fn double_text(&mut self, text: &[u8]) {
        if self.resp3 {
            self.line(b',', text);
        } else {
            self.bulk(text);
        }
    }

    /// A number too big for an integer reply, in decimal: a bulk string in RESP2.
    pub fn big_number(&mut self, digits: &[u8]) {
        if self.resp3 {
            self.line(b'(', digits);
        } else {
            self.bulk(digits);
        }
    }

    /// Text with a three-letter format (`txt`, `mkd`; shorter ones are padded with spaces, as
    /// Redis pads them): a bulk string of the bare text in RESP2.
    pub fn verbatim(&mut self, format: &str, s: &[u8]) {
        if !self.resp3 {
            self.bulk(s);
            return;
        }
        self.header(b'=', s.len() + 4);
        let mut ext = [b' '; 3];
        for (e, f) in ext.iter_mut().zip(format.bytes()) {
            *e = f;
        }
        self.buf.extend_from_slice(&ext);
        self.buf.push(b':');
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An optional bulk: null when absent.
    pub fn bulk_opt(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bulk(b),
            None => self.null_bulk(),
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

/// `x` as C's `%.17g` writes it (what Redis replies with), infinities as `inf` and `-inf`.
/// Returns the text, inside `buf`.
pub fn format_double(x: f64, buf: &mut [u8; 40]) -> &[u8] {
    if x.is_infinite() {
        return if x > 0.0 { b"inf" } else { b"-inf" };
    }
    // SAFETY: `buf` is writable for its 40 bytes, which snprintf is told and never exceeds
    // (it truncates and NUL-terminates); the format takes exactly one double. `%.17g` of a
    // finite double or a NaN takes at most 24 characters.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%.17g".as_ptr(),
            x,
        )
    };
    &buf[..(n.max(0) as usize).min(buf.len() - 1)]
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
        r.null_bulk();
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
    fn resp3_types_in_both_protocols() {
        let write = |proto: u8| {
            let mut r = ReplyBuf::new();
            r.set_protocol(proto);
            r.map(2);
            r.pairs(2);
            r.pair();
            r.set(3);
            r.push(1);
            r.attribute(1, |r| {
                r.simple("a");
                r.int(1);
            });
            r.bool(true);
            r.bool(false);
            r.null_bulk();
            r.null_array();
            r.double(2.75);
            r.double(f64::INFINITY);
            r.double(f64::NEG_INFINITY);
            r.double(0.1);
            r.double(1e300);
            r.double(-0.0);
            r.double(10.0);
            r.big_number(b"1234567999999999999999999999999999999");
            r.verbatim("txt", b"a\r\nb");
            r.verbatim("md", b"");
            String::from_utf8(r.buf).unwrap()
        };
        assert_eq!(
            write(3),
            "%2\r\n*2\r\n*2\r\n~3\r\n>1\r\n|1\r\n+a\r\n:1\r\n#t\r\n#f\r\n_\r\n_\r\n,2.75\r\n,inf\r\n\
             ,-inf\r\n,0.10000000000000001\r\n,1.0000000000000001e+300\r\n,-0\r\n,10\r\n\
             (1234567999999999999999999999999999999\r\n=8\r\ntxt:a\r\nb\r\n=4\r\nmd :\r\n"
        );
        assert_eq!(
            write(2),
            "*4\r\n*4\r\n*3\r\n*1\r\n:1\r\n:0\r\n$-1\r\n*-1\r\n$4\r\n2.75\r\n\
             $3\r\ninf\r\n$4\r\n-inf\r\n$19\r\n0.10000000000000001\r\n$23\r\n1.0000000000000001e+300\r\n\
             $2\r\n-0\r\n$2\r\n10\r\n$37\r\n1234567999999999999999999999999999999\r\n\
             $4\r\na\r\nb\r\n$0\r\n\r\n"
        );
        let mut r = ReplyBuf::new();
        r.set_protocol(3);
        assert_eq!(r.protocol(), 3);
        r.clear();
        assert_eq!(r.protocol(), 3, "clearing the buffer keeps the protocol");
        r.set_protocol(2);
        assert_eq!(r.protocol(), 2);
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
        r.null_bulk();
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
