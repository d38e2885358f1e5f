//! The request parser.
//!
//! It is resumable: a request that arrives in pieces is parsed once, not once per read, so a
//! multibulk of a million arguments arriving in small reads costs linear time. Lengths claimed by
//! the client are never allocated up front; the caller's buffer only grows as bytes arrive.

use std::fmt;

use smallvec::SmallVec;

/// Redis 7's defaults (`proto-max-bulk-len`, the multibulk cap, `PROTO_INLINE_MAX_SIZE`).
/// Until the client has authenticated, Redis 7 allows it much less (see
/// [`RequestParser::set_auth_required`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bulk_len: usize,
    pub max_multibulk_len: usize,
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            // Redis 7 accepts any count up to INT_MAX (older versions capped it at 1M); the
            // count is only a claim, and arguments are stored only as they arrive.
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A malformed request. The connection answers with `-ERR Protocol error: ...` and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    InvalidMultibulkLength,
    InvalidBulkLength,
    ExpectedDollar(u8),
    TooBigInline,
    TooBigMultibulkCount,
    TooBigBulkCount,
    UnbalancedQuotes,
    UnauthenticatedMultibulkLength,
    UnauthenticatedBulkLength,
}

/// What a client that has yet to pass AUTH may send, as Redis 7 limits it: a few arguments,
/// none long, so that no one can make the server buffer much without the password.
const UNAUTHENTICATED_MULTIBULK_LEN: i64 = 10;
const UNAUTHENTICATED_BULK_LEN: i64 = 16384;

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match self {
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedDollar(c) => write!(f, "expected '$', got '{}'", *c as char),
            ProtocolError::TooBigInline => f.write_str("too big inline request"),
            ProtocolError::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            ProtocolError::TooBigBulkCount => f.write_str("too big bulk count string"),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            ProtocolError::UnauthenticatedMultibulkLength => {
                f.write_str("unauthenticated multibulk length")
            }
            ProtocolError::UnauthenticatedBulkLength => f.write_str("unauthenticated bulk length"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// One argument of a parsed request: a span of the input buffer, or bytes of its own when an
/// inline argument had quotes or escapes to undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Span(usize, usize),
    Owned(Vec<u8>),
}

impl Arg {
    pub fn bytes<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        match self {
            Arg::Span(s, e) => &buf[*s..*e],
            Arg::Owned(v) => v,
        }
    }
}

#[derive(Debug, Default)]
enum State {
    /// Between requests.
    #[default]
    Start,
    /// Inside a multibulk: this many bulks still to read.
    Multibulk { remaining: usize },
    /// Inside a multibulk, after a bulk header: waiting for `len` bytes and CRLF.
    Bulk { remaining: usize, len: usize },
}

/// Outcome of one call to [`RequestParser::parse`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete request; its arguments are in [`RequestParser::args`]. `end` is the offset one
    /// past its last byte.
    Request { end: usize },
    /// The buffer holds no complete request yet. `need` is a lower bound on the buffer length
    /// worth parsing again at (the caller may wait for that many bytes before calling again).
    Incomplete { need: usize },
}

/// The most argument slots a parser keeps between requests.
const KEEP_ARGS: usize = 1024;

/// Resumable parser over a caller-owned buffer. Offsets are absolute positions in that buffer;
/// when the caller drops a consumed prefix it calls [`RequestParser::rebase`].
#[derive(Debug, Default)]
pub struct RequestParser {
    limits: Limits,
    state: State,
    pos: usize,
    /// Where the request being parsed began.
    start: usize,
    args: Vec<Arg>,
    auth_required: bool,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            ..Default::default()
        }
    }

    /// The client has yet to authenticate: apply Redis's tighter limits.
    pub fn set_auth_required(&mut self, on: bool) {
        self.auth_required = on;
    }

    /// Where the next unparsed byte is.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Where the request being parsed (or the next one) begins: bytes before it are no longer
    /// needed.
    pub fn request_start(&self) -> usize {
        if self.is_idle() {
            self.pos
        } else {
            self.start
        }
    }

    /// Between requests: the next one starts at `pos` (the bytes before it are not requests,
    /// such as an AOF's annotations).
    pub fn skip_to(&mut self, pos: usize) {
        debug_assert!(self.is_idle() && pos >= self.pos);
        self.pos = pos;
    }

    /// True between requests (nothing of a partial request has been consumed).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Start)
    }

    /// Inside a bulk argument of at least `big` bytes: the buffer offset where it ends (its
    /// CRLF included), for the input buffer to read that far and no further (see `InBuf`).
    pub fn big_arg_end(&self, big: usize) -> Option<usize> {
        match self.state {
            State::Bulk { len, .. } if len >= big => Some(self.pos + len + 2),
            _ => None,
        }
    }

    /// The arguments of the request just returned by `parse`.
    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// The arguments of the request just returned by `parse`, as slices of `buf` (the buffer
    /// it parsed): the form `commands::execute` takes. Cheaper than collecting `args()`
    /// through an iterator: up to eight are written into the inline array in place.
    pub fn argv<'b>(&'b self, buf: &'b [u8]) -> SmallVec<[&'b [u8]; 8]> {
        if self.args.len() > 8 {
            return self.args.iter().map(|a| a.bytes(buf)).collect();
        }
        let mut inline: [&[u8]; 8] = [&[]; 8];
        for (slot, a) in inline.iter_mut().zip(&self.args) {
            *slot = a.bytes(buf);
        }
        SmallVec::from_buf_and_len(inline, self.args.len())
    }

    /// The caller removed `delta` bytes from the front of its buffer; all of them were already
    /// consumed by complete requests or belong to the current partial request's start.
    pub fn rebase(&mut self, delta: usize) {
        self.pos -= delta;
        self.start = self.start.saturating_sub(delta);
        if self.is_idle() {
            // What `args` holds is the last complete request's, in the dropped bytes: the next
            // parse clears it, and shifting those spans would go below zero.
            self.clear_args();
            return;
        }
        for a in &mut self.args {
            if let Arg::Span(s, e) = a {
                *s -= delta;
                *e -= delta;
            }
        }
    }

    /// Forgets the last request's arguments. The room for them is kept for the next, unless a
    /// request of many arguments made it large: as Redis frees a client's argv after each
    /// command, a million-argument SADD leaves no 24 MB behind in an idle connection.
    fn clear_args(&mut self) {
        if self.args.capacity() > KEEP_ARGS {
            self.args = Vec::new();
        } else {
            self.args.clear();
        }
    }

    /// Parse the next request starting at the parser's position. Empty requests (a blank inline
    /// line, `*0`) are skipped, as Redis does.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        loop {
            match self.state {
                State::Start => {
                    self.clear_args();
                    self.start = self.pos;
                    if self.pos >= buf.len() {
                        return Ok(Parsed::Incomplete { need: self.pos + 1 });
                    }
                    if let Some(end) = self.whole_multibulk(buf) {
                        self.pos = end;
                        return Ok(Parsed::Request { end });
                    }
                    if buf[self.pos] == b'*' {
                        let Some((n, next)) = self.line_number(
                            buf,
                            self.pos + 1,
                            ProtocolError::TooBigMultibulkCount,
                        )?
                        else {
                            return Ok(Parsed::Incomplete {
                                need: buf.len() + 1,
                            });
                        };
                        let n = n.ok_or(ProtocolError::InvalidMultibulkLength)?;
                        if n > self.limits.max_multibulk_len as i64 {
                            return Err(ProtocolError::InvalidMultibulkLength);
                        }
                        if n > UNAUTHENTICATED_MULTIBULK_LEN && self.auth_required {
                            return Err(ProtocolError::UnauthenticatedMultibulkLength);
                        }
                        self.pos = next;
                        if n <= 0 {
                            continue;
                        }
                        // Reserve for the arguments, but not more than a small amount: the count is
                        // only a claim.
                        self.args.reserve((n as usize).min(64));
                        self.state = State::Multibulk {
                            remaining: n as usize,
                        };
                    } else {
                        match self.inline(buf)? {
                            Some(true) => return Ok(Parsed::Request { end: self.pos }),
                            Some(false) => continue,
                            None => {
                                return Ok(Parsed::Incomplete {
                                    need: buf.len() + 1,
                                })
                            }
                        }
                    }
                }
                State::Multibulk { remaining } => {
                    if remaining == 0 {
                        self.state = State::Start;
                        return Ok(Parsed::Request { end: self.pos });
                    }
                    if self.pos >= buf.len() {
                        return Ok(Parsed::Incomplete { need: self.pos + 1 });
                    }
                    if buf[self.pos] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[self.pos]));
                    }
                    let Some((len, next)) =
                        self.line_number(buf, self.pos + 1, ProtocolError::TooBigBulkCount)?
                    else {
                        return Ok(Parsed::Incomplete {
                            need: buf.len() + 1,
                        });
                    };
                    let len = len.ok_or(ProtocolError::InvalidBulkLength)?;
                    if len < 0 || len > self.limits.max_bulk_len as i64 {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    if len > UNAUTHENTICATED_BULK_LEN && self.auth_required {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    self.pos = next;
                    self.state = State::Bulk {
                        remaining,
                        len: len as usize,
                    };
                }
                State::Bulk { remaining, len } => {
                    let end = self.pos + len;
                    if buf.len() < end + 2 {
                        return Ok(Parsed::Incomplete { need: end + 2 });
                    }
                    // Like Redis, the two bytes after the data are skipped, not checked.
                    self.args.push(Arg::Span(self.pos, end));
                    self.pos = end + 2;
                    self.state = State::Multibulk {
                        remaining: remaining - 1,
                    };
                }
            }
        }
    }

    /// The fast path: a multibulk request already whole in `buf` at the parser's position,
    /// every length plain (no sign, no leading zero, at most nine digits) and within the limits.
    /// Its arguments go to `args` and its end is returned. Anything else (a partial request,
    /// an error, an unusual but valid number) returns None with `args` empty, for the state
    /// machine to handle exactly as before; so this changes no outcome, only the cost of the
    /// common case (about a third of it).
    fn whole_multibulk(&mut self, buf: &[u8]) -> Option<usize> {
        if buf[self.pos] != b'*' {
            return None;
        }
        let (n, mut p) = self.plain_length(buf, self.pos)?;
        if n == 0
            || n > self.limits.max_multibulk_len
            || (self.auth_required && n as i64 > UNAUTHENTICATED_MULTIBULK_LEN)
        {
            return None;
        }
        for _ in 0..n {
            let whole = buf.get(p) == Some(&b'$')
                && match self.plain_length(buf, p) {
                    Some((len, data)) if self.bulk_len_ok(len) && data + len + 2 <= buf.len() => {
                        self.args.push(Arg::Span(data, data + len));
                        p = data + len + 2;
                        true
                    }
                    _ => false,
                };
            if !whole {
                self.args.clear();
                return None;
            }
        }
        Some(p)
    }

    fn bulk_len_ok(&self, len: usize) -> bool {
        len <= self.limits.max_bulk_len
            && !(self.auth_required && len as i64 > UNAUTHENTICATED_BULK_LEN)
    }

    /// `<digits>\r` and one more byte after the type byte at `at`: the number and where the
    /// line's next byte is. Only what `parse_i64` reads the same: no sign, no leading zero.
    fn plain_length(&self, buf: &[u8], at: usize) -> Option<(usize, usize)> {
        let mut p = at + 1;
        let first = *buf.get(p)?;
        if !first.is_ascii_digit() {
            return None;
        }
        let mut n = (first - b'0') as usize;
        p += 1;
        loop {
            let c = *buf.get(p)?;
            if c == b'\r' {
                break;
            }
            // n == 0 here: a leading zero. Past nine digits: let parse_i64 judge.
            if !c.is_ascii_digit() || n == 0 || p - at > 9 {
                return None;
            }
            n = n * 10 + (c - b'0') as usize;
            p += 1;
        }
        let next = p + 2;
        (next <= buf.len() && p - at <= self.limits.max_inline_len).then_some((n, next))
    }

    /// Reads `<integer>\r\n` starting at `from`. `Ok(None)`: the line is not complete yet.
    /// `Ok(Some((None, _)))`: the line is complete but not a number.
    #[allow(clippy::type_complexity)]
    fn line_number(
        &self,
        buf: &[u8],
        from: usize,
        too_big: ProtocolError,
    ) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
        let Some(cr) = find(&buf[from..], b'\r').map(|i| from + i) else {
            if buf.len() - self.pos > self.limits.max_inline_len {
                return Err(too_big);
            }
            return Ok(None);
        };
        if cr - self.pos > self.limits.max_inline_len {
            return Err(too_big);
        }
        if cr + 1 >= buf.len() {
            return Ok(None);
        }
        Ok(Some((parse_i64(&buf[from..cr]), cr + 2)))
    }

    /// An inline request: one line, split like a shell would. `Some(true)`: a request is ready;
    /// `Some(false)`: an empty line was skipped; `None`: the line is not complete.
    fn inline(&mut self, buf: &[u8]) -> Result<Option<bool>, ProtocolError> {
        let start = self.pos;
        let Some(nl) = find(&buf[start..], b'\n').map(|i| start + i) else {
            if buf.len() - start > self.limits.max_inline_len {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(None);
        };
        if nl - start > self.limits.max_inline_len {
            return Err(ProtocolError::TooBigInline);
        }
        let mut line_end = nl;
        if line_end > start && buf[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        split_inline(buf, start, line_end, &mut self.args)?;
        self.pos = nl + 1;
        Ok(Some(!self.args.is_empty()))
    }
}

fn find(hay: &[u8], b: u8) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}

/// Strict decimal i64 as Redis's `string2ll` reads it: optional '-', no '+', no spaces, no
/// leading zeros (except "0" itself), within range.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A closing quote at `p` must end the word: followed by whitespace or the end of the line.
fn after_closing_quote(buf: &[u8], p: usize, end: usize) -> Result<usize, ProtocolError> {
    if p + 1 < end && !buf[p + 1].is_ascii_whitespace() {
        return Err(ProtocolError::UnbalancedQuotes);
    }
    Ok(p + 1)
}

/// Redis's `sdssplitargs`: whitespace-separated words, "double quotes" with C escapes
/// (\n \r \t \b \a \xHH), 'single quotes' with only \' as an escape. A closing quote must be
/// followed by a space or the end.
fn split_inline(
    buf: &[u8],
    start: usize,
    end: usize,
    out: &mut Vec<Arg>,
) -> Result<(), ProtocolError> {
    let mut p = start;
    loop {
        while p < end && buf[p].is_ascii_whitespace() {
            p += 1;
        }
        if p >= end {
            return Ok(());
        }
        let word_start = p;
        let mut owned: Option<Vec<u8>> = None;
        let mut in_dq = false;
        let mut in_sq = false;
        let mut plain = true;
        loop {
            if in_dq {
                if p >= end {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let cur = owned.get_or_insert_with(Vec::new);
                let c = buf[p];
                if c == b'\\'
                    && p + 3 < end
                    && buf[p + 1] == b'x'
                    && hex_val(buf[p + 2]).is_some()
                    && hex_val(buf[p + 3]).is_some()
                {
                    let hi = hex_val(buf[p + 2]).unwrap_or(0);
                    let lo = hex_val(buf[p + 3]).unwrap_or(0);
                    cur.push(hi * 16 + lo);
                    p += 3;
                } else if c == b'\\' && p + 1 < end {
                    p += 1;
                    cur.push(match buf[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    p = after_closing_quote(buf, p, end)?;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if p >= end {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let cur = owned.get_or_insert_with(Vec::new);
                let c = buf[p];
                if c == b'\\' && p + 1 < end && buf[p + 1] == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    p = after_closing_quote(buf, p, end)?;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if p >= end {
                    break;
                }
                let c = buf[p];
                if c.is_ascii_whitespace() {
                    break;
                } else if c == b'"' || c == b'\'' {
                    let cur = owned.get_or_insert_with(Vec::new);
                    if plain {
                        cur.extend_from_slice(&buf[word_start..p]);
                        plain = false;
                    }
                    if c == b'"' {
                        in_dq = true;
                    } else {
                        in_sq = true;
                    }
                } else if let Some(cur) = owned.as_mut() {
                    cur.push(c);
                }
            }
            p += 1;
        }
        out.push(match owned {
            Some(v) => Arg::Owned(v),
            None => Arg::Span(word_start, p),
        });
    }
}

/// Splits a line into words as Redis's `sdssplitargs` (the inline-command splitter, which
/// does exactly that): None on unbalanced quotes (or a closing quote not followed by a
/// space). For redis.conf lines and script shebangs.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    if line.starts_with(b"*") {
        // The parser would read a RESP array; no directive or shebang starts so.
        return Some(vec![line.to_vec()]);
    }
    let mut input = line.to_vec();
    input.extend_from_slice(b"\r\n");
    let mut p = RequestParser::new(Limits::default());
    match p.parse(&input) {
        Ok(Parsed::Request { .. }) => {
            Some(p.args().iter().map(|a| a.bytes(&input).to_vec()).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RequestParser::new(Limits::default());
        let mut out = Vec::new();
        loop {
            match p.parse(input)? {
                Parsed::Request { .. } => {
                    out.push(p.args().iter().map(|a| a.bytes(input).to_vec()).collect())
                }
                Parsed::Incomplete { .. } => return Ok(out),
            }
        }
    }

    fn req(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk() {
        let r = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap();
        assert_eq!(r, vec![req(&["GET", "k"])]);
    }

    #[test]
    fn binary_safe_bulk() {
        let r = parse_all(b"*1\r\n$4\r\na\r\n\0\r\n").unwrap();
        assert_eq!(r, vec![vec![b"a\r\n\0".to_vec()]]);
    }

    #[test]
    fn empty_bulk_and_empty_multibulk_skipped() {
        let r = parse_all(b"*0\r\n*-1\r\n*1\r\n$0\r\n\r\n").unwrap();
        assert_eq!(r, vec![vec![Vec::new()]]);
    }

    #[test]
    fn pipelined_batch() {
        let mut input = Vec::new();
        for i in 0..100 {
            let k = format!("k{i}");
            input.extend_from_slice(
                format!("*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n", k.len(), k).as_bytes(),
            );
        }
        let r = parse_all(&input).unwrap();
        assert_eq!(r.len(), 100);
        assert_eq!(r[42], req(&["GET", "k42"]));
    }

    #[test]
    fn byte_at_a_time_is_same_as_whole() {
        let input: &[u8] =
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
        let mut p = RequestParser::new(Limits::default());
        let mut got = Vec::new();
        for n in 1..=input.len() {
            let buf = &input[..n];
            while let Parsed::Request { .. } = p.parse(buf).unwrap() {
                got.push(
                    p.args()
                        .iter()
                        .map(|a| a.bytes(buf).to_vec())
                        .collect::<Vec<_>>(),
                );
            }
        }
        assert_eq!(
            got,
            vec![req(&["SET", "k", "hello"]), req(&["PING"]), req(&["PING"])]
        );
    }

    #[test]
    fn inline_commands() {
        let r = parse_all(b"PING\r\nset a \"b c\\n\" 'it\\'s'\n\r\n   \nECHO \"\\x41\\x42\"\r\n")
            .unwrap();
        assert_eq!(
            r,
            vec![
                req(&["PING"]),
                req(&["set", "a", "b c\n", "it's"]),
                req(&["ECHO", "AB"])
            ]
        );
    }

    #[test]
    fn inline_unbalanced_quotes() {
        assert_eq!(
            parse_all(b"SET \"a\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_all(b"SET \"a\"b\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert_eq!(
            parse_all(b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"*2147483648\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$-1\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$600000000\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$abc\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\nx3\r\n"),
            Err(ProtocolError::ExpectedDollar(b'x'))
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(b'x').to_string(),
            "Protocol error: expected '$', got 'x'"
        );
        let long = vec![b'a'; 70 * 1024];
        assert_eq!(parse_all(&long), Err(ProtocolError::TooBigInline));
        let mut mb = b"*".to_vec();
        mb.extend(vec![b'1'; 70 * 1024]);
        assert_eq!(parse_all(&mb), Err(ProtocolError::TooBigMultibulkCount));
    }

    #[test]
    fn huge_claimed_bulk_waits_without_allocating() {
        let mut p = RequestParser::new(Limits::default());
        let buf = b"*1\r\n$500000000\r\nabc";
        match p.parse(buf).unwrap() {
            Parsed::Incomplete { need } => assert_eq!(need, 16 + 500_000_000 + 2),
            other => panic!("unexpected {other:?}"),
        }
        assert!(p.args.capacity() < 1000);
    }

    #[test]
    fn rebase_keeps_partial_request() {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nh".to_vec();
        assert!(matches!(p.parse(&buf).unwrap(), Parsed::Request { end: 6 }));
        assert!(matches!(p.parse(&buf).unwrap(), Parsed::Incomplete { .. }));
        buf.drain(..6);
        p.rebase(6);
        buf.extend_from_slice(b"i\r\n");
        assert!(matches!(p.parse(&buf).unwrap(), Parsed::Request { .. }));
        let args: Vec<_> = p.args().iter().map(|a| a.bytes(&buf).to_vec()).collect();
        assert_eq!(args, req(&["ECHO", "hi"]));
    }

    #[test]
    fn rebase_after_complete_requests_drops_their_arguments() {
        // A caller may stop right after a request (QUIT, a full batch) and drop its bytes: its
        // arguments are still in `args`, and rebasing must not move them below zero.
        for input in [&b"ECHO hi\r\n"[..], b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"] {
            let mut p = RequestParser::new(Limits::default());
            let mut buf = input.to_vec();
            assert!(matches!(p.parse(&buf).unwrap(), Parsed::Request { .. }));
            let done = p.request_start();
            assert_eq!(done, buf.len());
            buf.drain(..done);
            p.rebase(done);
            buf.extend_from_slice(b"ECHO x\r\n");
            assert!(matches!(p.parse(&buf).unwrap(), Parsed::Request { end: 8 }));
            let args: Vec<_> = p.args().iter().map(|a| a.bytes(&buf).to_vec()).collect();
            assert_eq!(args, req(&["ECHO", "x"]));
        }
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b""), None);
    }

    #[test]
    fn need_is_a_true_lower_bound() {
        let input: &[u8] = b"*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n";
        let mut p = RequestParser::new(Limits::default());
        let mut n = 0;
        loop {
            match p.parse(&input[..n]).unwrap() {
                Parsed::Incomplete { need } => {
                    assert!(need > n && need <= input.len(), "need {need} at {n}");
                    // Nothing shorter than `need` completes the request.
                    for m in n + 1..need {
                        let mut fresh = RequestParser::new(Limits::default());
                        assert!(matches!(
                            fresh.parse(&input[..m]).unwrap(),
                            Parsed::Incomplete { .. }
                        ));
                    }
                    n = need;
                }
                Parsed::Request { end } => {
                    assert_eq!(end, input.len());
                    break;
                }
            }
        }
    }

    #[test]
    fn huge_multibulk_counts_wait_like_redis_7() {
        assert_eq!(parse_all(b"*2147483647\r\n$4\r\nPING\r\n"), Ok(vec![]));
        assert_eq!(parse_all(b"*2000000\r\n"), Ok(vec![]));
    }

    #[test]
    fn any_negative_or_zero_multibulk_is_an_empty_request() {
        let r = parse_all(b"*-5\r\n*0\r\n*-1\r\nPING\r\n").unwrap();
        assert_eq!(r, vec![req(&["PING"])]);
    }

    #[test]
    fn empty_and_binary_arguments_inside_a_request() {
        let r = parse_all(b"*4\r\n$4\r\nHSET\r\n$0\r\n\r\n$2\r\n\r\n\r\n$1\r\n\xff\r\n").unwrap();
        assert_eq!(
            r,
            vec![vec![
                b"HSET".to_vec(),
                Vec::new(),
                b"\r\n".to_vec(),
                b"\xff".to_vec()
            ]]
        );
    }

    #[test]
    fn bulk_terminator_is_skipped_unchecked_as_redis_does() {
        let r = parse_all(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(r, vec![req(&["PING"]), req(&["PING"])]);
    }

    #[test]
    fn inline_limit_is_redis_64k() {
        let mut ok = vec![b'a'; 64 * 1024];
        assert_eq!(parse_all(&ok), Ok(vec![]), "waits for the end of the line");
        ok.push(b'\n');
        assert_eq!(parse_all(&ok).unwrap().len(), 1);
        let over = vec![b'a'; 64 * 1024 + 1];
        assert_eq!(parse_all(&over), Err(ProtocolError::TooBigInline));
        let mut bulk_count = b"*1\r\n$".to_vec();
        bulk_count.extend(vec![b'1'; 64 * 1024]);
        assert_eq!(parse_all(&bulk_count), Err(ProtocolError::TooBigBulkCount));
        assert_eq!(parse_all(&bulk_count[..bulk_count.len() - 1]), Ok(vec![]));
    }

    #[test]
    fn every_error_renders_as_redis_words_it() {
        let all = [
            (
                ProtocolError::InvalidMultibulkLength,
                "invalid multibulk length",
            ),
            (ProtocolError::InvalidBulkLength, "invalid bulk length"),
            (ProtocolError::TooBigInline, "too big inline request"),
            (
                ProtocolError::TooBigMultibulkCount,
                "too big mbulk count string",
            ),
            (ProtocolError::TooBigBulkCount, "too big bulk count string"),
            (
                ProtocolError::UnbalancedQuotes,
                "unbalanced quotes in request",
            ),
        ];
        for (e, words) in all {
            assert_eq!(e.to_string(), format!("Protocol error: {words}"));
        }
    }

    #[test]
    fn inline_escapes_and_quotes_as_sdssplitargs() {
        let r = parse_all(b"a\"b c\"d\n").err();
        assert_eq!(r, Some(ProtocolError::UnbalancedQuotes));
        let r = parse_all(b"ECHO \"\\x4g\" 'a\\nb' \"\\q\" x\"\"\n").unwrap();
        assert_eq!(r, vec![req(&["ECHO", "x4g", "a\\nb", "q", "x"])]);
        let r = parse_all(b"\t SET\tk  v \r\n").unwrap();
        assert_eq!(r, vec![req(&["SET", "k", "v"])]);
    }

    /// Feeds `input` in the given pieces the way the connection loop does: append, parse every
    /// complete request, drop the consumed prefix and rebase.
    #[test]
    fn argv_is_args_as_slices() {
        let mut input = Vec::new();
        for n in 1..=11 {
            let words: Vec<Vec<u8>> = (0..n).map(|i| format!("w{i}").into_bytes()).collect();
            crate::resp::reply::encode_command(&mut input, &words);
        }
        input.extend_from_slice(b"set \"quoted key\" 'v'\r\n");
        let mut p = RequestParser::new(Limits::default());
        let mut seen = 0;
        while let Ok(Parsed::Request { .. }) = p.parse(&input) {
            let want: Vec<&[u8]> = p.args().iter().map(|a| a.bytes(&input)).collect();
            assert_eq!(p.argv(&input).as_slice(), want.as_slice());
            seen += 1;
        }
        assert_eq!(seen, 12);
    }

    /// A request of many arguments leaves no room for them behind once the next is parsed.
    #[test]
    fn a_huge_request_gives_its_argument_room_back() {
        let mut input = Vec::new();
        let words: Vec<Vec<u8>> = (0..100_000).map(|i| format!("{i}").into_bytes()).collect();
        crate::resp::reply::encode_command(&mut input, &words);
        crate::resp::reply::encode_command(&mut input, &[b"PING".to_vec()]);
        let mut p = RequestParser::new(Limits::default());
        assert!(matches!(p.parse(&input), Ok(Parsed::Request { .. })));
        assert_eq!(p.args().len(), 100_000);
        assert!(matches!(p.parse(&input), Ok(Parsed::Request { .. })));
        assert_eq!(p.args().len(), 1);
        assert!(p.args.capacity() <= KEEP_ARGS, "{}", p.args.capacity());
    }

    /// Whole requests take the fast path (`whole_multibulk`); fed a byte at a time they never
    /// can, so the state machine reads them: both must agree, on every edge of a length.
    #[test]
    fn the_fast_path_reads_as_the_state_machine() {
        let inputs: &[&[u8]] = &[
            b"*1\r\n$3\r\nget\r\n",
            b"*3\r\n$3\r\nset\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n",
            b"*01\r\n$3\r\nget\r\n",
            b"*1\r\n$03\r\nget\r\n",
            b"*1\r\n$0\r\n\r\n",
            b"*1\r\n$-1\r\n",
            b"*+1\r\n$1\r\na\r\n",
            b"*1\r\n$+1\r\na\r\n",
            b"*1\r\n$1234567890\r\n",
            b"*1\r\n$123456789\r\n",
            b"*1\r\n$\r\n",
            b"*\r\n",
            b"*2\r\n$1\r\na\r\n:1\r\n",
            b"*0\r\n*1\r\n$1\r\nx\r\n",
            b"*-1\r\n*1\r\n$1\r\nx\r\n",
            b"*1\r\n$1\r\nxyz*1\r\n$1\r\ny\r\n",
            b"*1\r\n$1\r\nx\r",
            b"*1\r\n$1\r\nx\r\n",
            b"*1\rX$1\rXx\rX",
            b"*1\r\n$2\r\nx\r\n",
            b"*10000000000\r\n",
            b"*999999999\r\n$1\r\nx\r\n",
        ];
        for input in inputs {
            let each_byte: Vec<usize> = (0..input.len()).collect();
            assert_eq!(
                parse_all(input),
                parse_in_pieces(input, &each_byte),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // Before AUTH, Redis's tighter limits apply on the fast path too.
        for (input, err) in [
            (
                &b"*11\r\n$1\r\na\r\n"[..],
                ProtocolError::UnauthenticatedMultibulkLength,
            ),
            (
                b"*1\r\n$16385\r\n",
                ProtocolError::UnauthenticatedBulkLength,
            ),
        ] {
            let mut p = RequestParser::new(Limits::default());
            p.set_auth_required(true);
            assert_eq!(p.parse(input), Err(err));
        }
    }

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        let mut fed = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        for cut in cuts {
            buf.extend_from_slice(&input[fed..cut]);
            fed = cut;
            while let Parsed::Request { .. } = p.parse(&buf)? {
                got.push(p.args().iter().map(|a| a.bytes(&buf).to_vec()).collect());
            }
            let done = p.request_start();
            buf.drain(..done);
            p.rebase(done);
        }
        Ok(got)
    }

    mod prop {
        use super::*;
        use crate::resp::reply::encode_command;
        use proptest::collection::vec;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn any_split_parses_as_the_whole(
                reqs in vec(vec(vec(any::<u8>(), 0..40), 1..6), 1..12),
                cuts in vec(any::<usize>(), 0..30),
            ) {
                let mut input = Vec::new();
                for r in &reqs {
                    encode_command(&mut input, r);
                }
                prop_assert_eq!(&parse_all(&input).unwrap(), &reqs);
                prop_assert_eq!(&parse_in_pieces(&input, &cuts).unwrap(), &reqs);
            }

            #[test]
            fn garbage_never_panics_and_pieces_change_nothing(
                input in vec(any::<u8>(), 0..200),
                cuts in vec(any::<usize>(), 0..10),
            ) {
                prop_assert_eq!(parse_all(&input), parse_in_pieces(&input, &cuts));
            }

            #[test]
            fn resp_like_garbage_pieces_change_nothing(
                input in vec(prop_oneof![
                    Just(&b"*"[..]), Just(&b"$"[..]), Just(&b"\r\n"[..]), Just(&b"1"[..]),
                    Just(&b"3"[..]), Just(&b"-"[..]), Just(&b"a"[..]), Just(&b" "[..]),
                    Just(&b"\""[..]), Just(&b"\n"[..]), Just(&b"0"[..]),
                ], 0..60),
                cuts in vec(any::<usize>(), 0..10),
            ) {
                let input = input.concat();
                prop_assert_eq!(parse_all(&input), parse_in_pieces(&input, &cuts));
            }
        }
    }
}
