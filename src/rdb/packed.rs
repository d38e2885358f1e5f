//! The packed blobs RDB files embed as strings: listpack (Redis 7), ziplist (Redis 3.2 to 6),
//! intset and zipmap (Redis 2.x). Each reader checks every length against the blob before
//! it reads, and says where inside the blob it stopped and why; `read` adds the blob's own
//! offset in the file.

use crate::store::list::Elem;

/// Where inside a blob it is malformed, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    pub at: usize,
    pub expected: &'static str,
}

type R<T> = Result<T, PackError>;

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, expected: &'static str) -> R<&'a [u8]> {
        match self
            .pos
            .checked_add(n)
            .and_then(|end| self.b.get(self.pos..end))
        {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(PackError {
                at: self.pos,
                expected,
            }),
        }
    }

    fn byte(&mut self, expected: &'static str) -> R<u8> {
        Ok(self.take(1, expected)?[0])
    }

    fn le(&mut self, n: usize, expected: &'static str) -> R<u64> {
        let s = self.take(n, expected)?;
        Ok(s.iter().rev().fold(0u64, |v, &b| (v << 8) | b as u64))
    }

    fn err<T>(&self, expected: &'static str) -> R<T> {
        Err(PackError {
            at: self.pos,
            expected,
        })
    }
}

/// Sign-extends the low `bits` of `v`.
fn signed(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Calls `f` on each entry of a listpack; returns how many there were.
pub fn listpack_each<'a>(blob: &'a [u8], mut f: impl FnMut(Elem<'a>)) -> R<usize> {
    let mut c = Cur { b: blob, pos: 0 };
    let total = c.le(4, "a listpack header")? as usize;
    if total != blob.len() {
        return c.err("a listpack whose size is its header's");
    }
    let count = c.le(2, "a listpack header")? as usize;
    if blob.last() != Some(&0xff) {
        return Err(PackError {
            at: blob.len().saturating_sub(1),
            expected: "a listpack that ends with its end marker",
        });
    }
    let mut seen = 0;
    loop {
        let start = c.pos;
        let h = c.byte("a listpack entry or its end")?;
        if h == 0xff {
            break;
        }
        let e = match h {
            0x00..=0x7f => Elem::Int(h as i64),
            0x80..=0xbf => Elem::Bytes(c.take((h & 0x3f) as usize, "a listpack string")?),
            0xc0..=0xdf => {
                let lo = c.byte("a listpack integer")?;
                Elem::Int(signed(((h as u64 & 0x1f) << 8) | lo as u64, 13))
            }
            0xe0..=0xef => {
                let lo = c.byte("a listpack string length")?;
                let n = ((h as usize & 0x0f) << 8) | lo as usize;
                Elem::Bytes(c.take(n, "a listpack string")?)
            }
            0xf0 => {
                let n = c.le(4, "a listpack string length")? as usize;
                Elem::Bytes(c.take(n, "a listpack string")?)
            }
            0xf1 => Elem::Int(signed(c.le(2, "a listpack integer")?, 16)),
            0xf2 => Elem::Int(signed(c.le(3, "a listpack integer")?, 24)),
            0xf3 => Elem::Int(signed(c.le(4, "a listpack integer")?, 32)),
            0xf4 => Elem::Int(c.le(8, "a listpack integer")? as i64),
            _ => {
                c.pos = start;
                return c.err("a valid listpack entry encoding");
            }
        };
        let len = c.pos - start;
        let back = c.take(backlen_size(len), "a listpack entry's back length")?;
        // Read backwards, as lpPrev does: a wrong one would walk a reverse scan off course.
        if decode_backlen(back) != Some(len) {
            c.pos -= back.len();
            return c.err("a listpack entry's back length that is its length");
        }
        seen += 1;
        f(e);
    }
    if c.pos != blob.len() {
        return c.err("the listpack to end at its end marker");
    }
    if count != 0xffff && count != seen {
        return Err(PackError {
            at: 4,
            expected: "a listpack entry count that matches its entries",
        });
    }
    Ok(seen)
}

/// A back length as `lpDecodeBacklen` reads it: from its last byte towards the first, seven
/// bits per byte, each byte but the first flagged as continued. None: it does not end where
/// it should (at `back`'s first byte).
fn decode_backlen(back: &[u8]) -> Option<usize> {
    let mut v = 0usize;
    for (i, &b) in back.iter().rev().enumerate() {
        v |= ((b & 127) as usize) << (7 * i);
        let last = i + 1 == back.len();
        if (b & 128 != 0) == last {
            return None;
        }
    }
    Some(v)
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Calls `f` on each entry of a ziplist; returns how many there were. Checked as Redis's
/// `ziplistValidateIntegrity` checks it deeply: each entry's previous length is the size of
/// the entry before it, and the tail offset is where the last entry starts.
pub fn ziplist_each<'a>(blob: &'a [u8], mut f: impl FnMut(Elem<'a>)) -> R<usize> {
    let mut c = Cur { b: blob, pos: 0 };
    let total = c.le(4, "a ziplist header")? as usize;
    if total != blob.len() {
        return c.err("a ziplist whose size is its header's");
    }
    let tail = c.le(4, "a ziplist header")? as usize;
    let count = c.le(2, "a ziplist header")? as usize;
    if blob.last() != Some(&0xff) {
        return Err(PackError {
            at: blob.len().saturating_sub(1),
            expected: "a ziplist that ends with its end marker",
        });
    }
    if tail > blob.len() - 1 {
        return Err(PackError {
            at: 4,
            expected: "a ziplist tail offset inside the ziplist",
        });
    }
    let mut seen = 0;
    let mut prev: Option<usize> = None;
    loop {
        let start = c.pos;
        let first = c.byte("a ziplist entry or its end")?;
        if first == 0xff {
            break;
        }
        let prevlen = if first == 0xfe {
            c.le(4, "a ziplist entry's previous length")? as usize
        } else {
            first as usize
        };
        if prevlen != prev.map_or(0, |p| start - p) {
            c.pos = start;
            return c.err("a ziplist entry's previous length that is the entry before it");
        }
        let h = c.byte("a ziplist entry encoding")?;
        let e = match h >> 6 {
            0 => Elem::Bytes(c.take((h & 0x3f) as usize, "a ziplist string")?),
            1 => {
                let lo = c.byte("a ziplist string length")?;
                let n = ((h as usize & 0x3f) << 8) | lo as usize;
                Elem::Bytes(c.take(n, "a ziplist string")?)
            }
            2 => {
                let s = c.take(4, "a ziplist string length")?;
                let n = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
                Elem::Bytes(c.take(n, "a ziplist string")?)
            }
            _ => match h {
                0xc0 => Elem::Int(signed(c.le(2, "a ziplist integer")?, 16)),
                0xd0 => Elem::Int(signed(c.le(4, "a ziplist integer")?, 32)),
                0xe0 => Elem::Int(c.le(8, "a ziplist integer")? as i64),
                0xf0 => Elem::Int(signed(c.le(3, "a ziplist integer")?, 24)),
                0xfe => Elem::Int(signed(c.le(1, "a ziplist integer")?, 8)),
                0xf1..=0xfd => Elem::Int((h & 0x0f) as i64 - 1),
                _ => return c.err("a valid ziplist entry encoding"),
            },
        };
        prev = Some(start);
        seen += 1;
        f(e);
    }
    if c.pos != blob.len() {
        return c.err("the ziplist to end at its end marker");
    }
    if prev.is_some_and(|p| p != tail) {
        return Err(PackError {
            at: 4,
            expected: "a ziplist tail offset that is where its last entry starts",
        });
    }
    if count != 0xffff && count != seen {
        return Err(PackError {
            at: 8,
            expected: "a ziplist entry count that matches its entries",
        });
    }
    Ok(seen)
}

/// The members of an intset.
pub fn intset_each(blob: &[u8], mut f: impl FnMut(i64)) -> R<usize> {
    let mut c = Cur { b: blob, pos: 0 };
    let width = c.le(4, "an intset header")? as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(PackError {
            at: 0,
            expected: "an intset width of 2, 4 or 8",
        });
    }
    let n = c.le(4, "an intset header")? as usize;
    if n.checked_mul(width) != Some(blob.len() - 8) {
        return c.err("an intset whose size is its header's");
    }
    let mut prev = None;
    for _ in 0..n {
        let v = signed(c.le(width, "an intset member")?, 8 * width as u32);
        if prev.is_some_and(|p| p >= v) {
            return c.err("intset members in ascending order");
        }
        prev = Some(v);
        f(v);
    }
    Ok(n)
}

/// The fields and values of a zipmap (Redis 2.x's small hashes).
pub fn zipmap_each<'a>(blob: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) -> R<usize> {
    let mut c = Cur { b: blob, pos: 0 };
    c.byte("a zipmap header")?;
    let mut n = 0;
    let len = |c: &mut Cur<'a>| -> R<Option<usize>> {
        Ok(match c.byte("a zipmap length")? {
            0xff => None,
            0xfe => Some(c.le(4, "a zipmap length")? as usize),
            b => Some(b as usize),
        })
    };
    while let Some(klen) = len(&mut c)? {
        let key = c.take(klen, "a zipmap field")?;
        let Some(vlen) = len(&mut c)? else {
            return c.err("a zipmap value length");
        };
        let free = c.byte("a zipmap free count")? as usize;
        let value = c.take(vlen, "a zipmap value")?;
        c.take(free, "a zipmap value's free bytes")?;
        n += 1;
        f(key, value);
    }
    if c.pos != blob.len() {
        return c.err("the zipmap to end at its end marker");
    }
    // As zipmapValidateIntegrity: never empty, and a count below 254 is the real one.
    if n == 0 {
        return Err(PackError {
            at: 0,
            expected: "a zipmap with at least one field",
        });
    }
    if blob[0] < 254 && blob[0] as usize != n {
        return Err(PackError {
            at: 0,
            expected: "a zipmap count that matches its fields",
        });
    }
    Ok(n)
}

/// Builds a listpack, as Redis 7.0 encodes its entries (integers in the smallest form).
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        ListpackWriter {
            buf: vec![0; 6],
            count: 0,
        }
    }
}

impl ListpackWriter {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes so far (without the end marker).
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Adds a string, in binary when it is a canonical integer (as `lpAppend` does).
    pub fn push(&mut self, s: &[u8]) {
        match Elem::of(s) {
            Elem::Int(i) => self.push_int(i),
            Elem::Bytes(b) => self.push_bytes(b),
        }
    }

    pub fn push_elem(&mut self, e: Elem) {
        match e {
            Elem::Int(i) => self.push_int(i),
            Elem::Bytes(b) => self.push(b),
        }
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1fff;
            b.push(0xc0 | (u >> 8) as u8);
            b.push(u as u8);
        } else if i16::try_from(v).is_ok() {
            b.push(0xf1);
            b.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            b.push(0xf2);
            b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            b.push(0xf3);
            b.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            b.push(0xf4);
            b.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    fn push_bytes(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let b = &mut self.buf;
        let n = s.len();
        if n < 64 {
            b.push(0x80 | n as u8);
        } else if n < 4096 {
            b.push(0xe0 | (n >> 8) as u8);
            b.push(n as u8);
        } else {
            b.push(0xf0);
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let l = self.buf.len() - start;
        let n = backlen_size(l);
        for i in (0..n).rev() {
            let part = ((l >> (7 * i)) & 127) as u8;
            // The first byte written (the top group) has no continuation bit.
            self.buf.push(if i == n - 1 { part } else { part | 128 });
        }
        self.count += 1;
    }

    /// The finished listpack.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(0xffff) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// An intset of `members` (sorted ascending), in the narrowest width that holds them all.
pub fn intset(members: &[i64]) -> Vec<u8> {
    let width = members
        .iter()
        .map(|&v| {
            if i16::try_from(v).is_ok() {
                2
            } else if i32::try_from(v).is_ok() {
                4
            } else {
                8
            }
        })
        .max()
        .unwrap_or(2);
    let mut out = Vec::with_capacity(8 + members.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for &v in members {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(blob: &[u8]) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        listpack_each(blob, |e| v.push(e.to_vec())).unwrap();
        v
    }

    #[test]
    fn listpack_round_trips_every_encoding() {
        let long = vec![b'z'; 5000];
        let mid = vec![b'm'; 300];
        let items: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "8388607",
            "-8388608",
            "2147483647",
            "-2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "",
            "abc",
            "007",
            "-0",
            "1.5",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([long, mid])
        .collect();
        let mut w = ListpackWriter::default();
        for i in &items {
            w.push(i);
        }
        let blob = w.finish();
        assert_eq!(collect(&blob), items);
    }

    #[test]
    fn listpack_backlen_is_redis_s() {
        // A 200-byte string entry: header 2 + 200 = 202, backlen [1, 202 & 127 | 128].
        let mut w = ListpackWriter::default();
        w.push(&[b'a'; 200]);
        let blob = w.finish();
        assert_eq!(&blob[blob.len() - 3..], &[1, (202 & 127) | 128, 0xff]);
    }

    #[test]
    fn malformed_blobs_say_where() {
        let mut w = ListpackWriter::default();
        w.push(b"hello");
        let blob = w.finish();
        for cut in 0..blob.len() {
            assert!(listpack_each(&blob[..cut], |_| {}).is_err());
        }
        let mut bad = blob.clone();
        bad[4] = 2;
        assert_eq!(listpack_each(&bad, |_| {}).unwrap_err().at, 4);
        assert!(ziplist_each(&[1, 2, 3], |_| {}).is_err());
        assert!(intset_each(&[3, 0, 0, 0, 0, 0, 0, 0], |_| {}).is_err());
    }

    #[test]
    fn intsets_pick_the_narrowest_width() {
        for members in [
            vec![1i64, 2, 3],
            vec![-70000, 5],
            vec![i64::MIN, 0, i64::MAX],
        ] {
            let blob = intset(&members);
            let mut got = Vec::new();
            intset_each(&blob, |v| got.push(v)).unwrap();
            assert_eq!(got, members);
        }
        assert_eq!(intset(&[1, 2])[0], 2);
        assert_eq!(intset(&[1, 1 << 20])[0], 4);
    }

    #[test]
    fn ziplist_entries() {
        // zlbytes, zltail, zllen=3; "ab" (prevlen 0), int 12 immediate (0xfd), int16 1000.
        let mut z = vec![0u8; 10];
        z.extend_from_slice(&[0, 0x02, b'a', b'b']);
        z.extend_from_slice(&[4, 0xfd]);
        z.extend_from_slice(&[2, 0xc0, 0xe8, 0x03]);
        z.push(0xff);
        let n = z.len() as u32;
        z[..4].copy_from_slice(&n.to_le_bytes());
        z[4..8].copy_from_slice(&16u32.to_le_bytes());
        z[8..10].copy_from_slice(&3u16.to_le_bytes());
        let mut got = Vec::new();
        ziplist_each(&z, |e| got.push(e.to_vec())).unwrap();
        assert_eq!(got, vec![b"ab".to_vec(), b"12".to_vec(), b"1000".to_vec()]);
    }

    /// A ziplist of `entries` (already encoded, without their previous lengths), each entry's
    /// previous length right unless `prevlens` says otherwise.
    fn ziplist(entries: &[&[u8]], prevlens: Option<&[u8]>) -> Vec<u8> {
        let mut z = vec![0u8; 10];
        let mut prev = 0;
        let mut tail = 10;
        for (i, e) in entries.iter().enumerate() {
            tail = z.len();
            z.push(prevlens.map_or(prev as u8, |p| p[i]));
            z.extend_from_slice(e);
            prev = 1 + e.len();
        }
        z.push(0xff);
        let n = z.len() as u32;
        z[..4].copy_from_slice(&n.to_le_bytes());
        z[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
        z[8..10].copy_from_slice(&(entries.len() as u16).to_le_bytes());
        z
    }

    #[test]
    fn ziplists_are_checked_as_deeply_as_redis_checks_them() {
        let entries: [&[u8]; 2] = [&[0x01, b'a'], &[0x02, b'b', b'c']];
        assert_eq!(ziplist_each(&ziplist(&entries, None), |_| {}), Ok(2));
        // A previous length that is not the entry before it (Redis's "ziplist prev len").
        for wrong in [[0, 2], [0, 14], [1, 3]] {
            let z = ziplist(&entries, Some(&wrong));
            let e = ziplist_each(&z, |_| {}).unwrap_err();
            assert!(e.expected.contains("previous length"), "{wrong:?}: {e:?}");
        }
        // A tail offset that is not the last entry's start.
        let mut z = ziplist(&entries, None);
        z[4] = 10;
        assert!(ziplist_each(&z, |_| {})
            .unwrap_err()
            .expected
            .contains("tail"));
        z[4] = 200;
        assert!(ziplist_each(&z, |_| {})
            .unwrap_err()
            .expected
            .contains("tail"));
    }

    #[test]
    fn listpack_back_lengths_must_be_the_entries_lengths() {
        let mut w = ListpackWriter::default();
        w.push(b"hello");
        w.push(&[b'x'; 200]);
        let good = w.finish();
        assert_eq!(listpack_each(&good, |_| {}), Ok(2));
        // "hello": header 1 + 5 bytes, back length 6 at offset 12.
        for (at, v) in [(12, 7u8), (12, 0x86), (good.len() - 3, 0x81)] {
            let mut bad = good.clone();
            bad[at] = v;
            let e = listpack_each(&bad, |_| {}).unwrap_err();
            assert!(e.expected.contains("back length"), "{at}={v:#x}: {e:?}");
        }
        let mut bad = good.clone();
        *bad.last_mut().unwrap() = 0;
        assert!(listpack_each(&bad, |_| {}).is_err());
    }

    #[test]
    fn zipmaps_are_never_empty_and_count_their_fields() {
        assert!(zipmap_each(&[0, 0xff], |_, _| {}).is_err());
        let z = [3, 1, b'a', 1, 0, b'x', 0xff];
        assert!(zipmap_each(&z, |_, _| {})
            .unwrap_err()
            .expected
            .contains("count"));
        // 254 and up: a count too big for the byte, so it is not checked.
        let z = [254, 1, b'a', 1, 0, b'x', 0xff];
        assert_eq!(zipmap_each(&z, |_, _| {}), Ok(1));
    }

    #[test]
    fn zipmap_entries() {
        let z = [2, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 1, b'z', 0, 0xff];
        let mut got = Vec::new();
        zipmap_each(&z, |k, v| got.push((k.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), b"xy".to_vec()),
                (b"b".to_vec(), b"z".to_vec())
            ]
        );
    }
}
