//! Writing RDB values as Redis 7.0 writes them: integers as integers, small hashes and sorted
//! sets as listpacks, integer sets as intsets, lists as quicklist 2 nodes of listpacks, and
//! strings over 20 bytes LZF-compressed when `rdbcompression` is on and it saves space.

use super::packed::{intset, ListpackWriter};
use super::{kind, lzf, opcode};
use crate::resp::reply::format_double;
use crate::store::list::Elem;
use crate::store::set::Member;
use crate::store::{Hash, List, Set, Value, ZSet};

/// An RDB byte buffer.
pub struct Encoder {
    pub buf: Vec<u8>,
    compress: bool,
}

impl Encoder {
    pub fn new(compress: bool) -> Self {
        Encoder {
            buf: Vec::new(),
            compress,
        }
    }

    /// An encoder that appends to `buf` (take it back from `.buf`).
    pub fn with_buf(buf: Vec<u8>, compress: bool) -> Self {
        Encoder { buf, compress }
    }

    pub fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    pub fn len(&mut self, n: u64) {
        let b = &mut self.buf;
        if n < 1 << 6 {
            b.push(n as u8);
        } else if n < 1 << 14 {
            b.push(0x40 | (n >> 8) as u8);
            b.push(n as u8);
        } else if n <= u32::MAX as u64 {
            b.push(0x80);
            b.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            b.push(0x81);
            b.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// A string: as an integer if it spells one that fits 32 bits (`rdbTryIntegerEncoding`),
    /// else LZF-compressed if that is smaller, else as is.
    pub fn string(&mut self, s: &[u8]) {
        if s.len() <= 11 {
            if let Elem::Int(v) = Elem::of(s) {
                if self.int(v) {
                    return;
                }
            }
        }
        if self.compress && s.len() > 20 {
            if let Some(c) = lzf::compress(s, s.len() - 4) {
                self.byte(0xc3);
                self.len(c.len() as u64);
                self.len(s.len() as u64);
                self.buf.extend_from_slice(&c);
                return;
            }
        }
        self.len(s.len() as u64);
        self.buf.extend_from_slice(s);
    }

    /// An integer in the string encodings; false if it needs more than 32 bits.
    fn int(&mut self, v: i64) -> bool {
        if let Ok(x) = i8::try_from(v) {
            self.buf.extend_from_slice(&[0xc0, x as u8]);
        } else if let Ok(x) = i16::try_from(v) {
            self.byte(0xc1);
            self.buf.extend_from_slice(&x.to_le_bytes());
        } else if let Ok(x) = i32::try_from(v) {
            self.byte(0xc2);
            self.buf.extend_from_slice(&x.to_le_bytes());
        } else {
            return false;
        }
        true
    }

    /// The value's type byte, then the value.
    pub fn value(&mut self, v: &Value) {
        self.byte(type_of(v));
        self.body(v);
    }

    /// One key: its deadline if any, type, name, value.
    pub fn key(&mut self, key: &[u8], v: &Value, deadline: Option<u64>) {
        if let Some(d) = deadline {
            self.byte(opcode::EXPIRETIME_MS);
            self.buf.extend_from_slice(&d.to_le_bytes());
        }
        self.byte(type_of(v));
        self.string(key);
        self.body(v);
    }

    fn body(&mut self, v: &Value) {
        match v {
            Value::Str(s) => self.string(s),
            Value::List(l) => self.list(l),
            Value::Set(s) => self.set(s),
            Value::Hash(h) => self.hash(h),
            Value::ZSet(z) => self.zset(z),
            Value::Stream(s) => super::stream::write(self, s),
        }
    }

    fn list(&mut self, l: &List) {
        let max = node_bytes(crate::store::limits::max_listpack_size());
        let mut nodes = Vec::new();
        let mut lp = ListpackWriter::default();
        for e in l.iter() {
            let size = e.with_bytes(<[u8]>::len);
            if !lp.is_empty() && (lp.size() + size + 11 > max.0 || lp.len() >= max.1) {
                nodes.push(std::mem::take(&mut lp).finish());
            }
            lp.push_elem(e);
        }
        if !lp.is_empty() {
            nodes.push(lp.finish());
        }
        self.len(nodes.len() as u64);
        for n in nodes {
            // Container 2: a packed node (a listpack).
            self.len(2);
            self.string(&n);
        }
    }

    fn set(&mut self, s: &Set) {
        if s.is_intset() {
            let members: Vec<i64> = s
                .iter()
                .map(|m| match m {
                    Member::Int(v) => v,
                    Member::Bytes(_) => unreachable!("an intset holds integers"),
                })
                .collect();
            self.string(&intset(&members));
            return;
        }
        self.len(s.len() as u64);
        for m in s.iter() {
            m.with_bytes(|b| self.string(b));
        }
    }

    fn hash(&mut self, h: &Hash) {
        let t = hash_type(h);
        // With field deadlines (Redis 7.4's types 25 and 24), the soonest deadline first.
        let soonest = h.next_deadline();
        if t == kind::HASH_LISTPACK_EX || t == kind::HASH_METADATA {
            self.millis(soonest.unwrap_or(0));
        }
        if h.is_small() {
            let mut lp = ListpackWriter::default();
            for (f, v) in h.iter() {
                lp.push(f);
                lp.push(v);
                if t == kind::HASH_LISTPACK_EX {
                    // A deadline is a listpack integer, 0 for none.
                    lp.push_int(h.ttl_of(f).unwrap_or(0) as i64);
                }
            }
            self.string(&lp.finish());
            return;
        }
        self.len(h.len() as u64);
        for (f, v) in h.iter() {
            if let Some(soonest) = soonest {
                // Each deadline relative to the soonest, plus one: 0 is none.
                self.len(h.ttl_of(f).map_or(0, |at| at - soonest + 1));
            }
            self.string(f);
            self.string(v);
        }
    }

    /// An 8-byte little-endian millisecond time (rdbSaveMillisecondTime).
    pub fn millis(&mut self, ms: u64) {
        self.buf.extend_from_slice(&ms.to_le_bytes());
    }

    fn zset(&mut self, z: &ZSet) {
        if let ZSet::Packed(_) = z {
            let mut lp = ListpackWriter::default();
            for (m, score) in z.iter() {
                lp.push(m);
                push_score(&mut lp, score);
            }
            self.string(&lp.finish());
            return;
        }
        self.len(z.len() as u64);
        // Highest first, as Redis writes them: its loader then inserts each at the head.
        let items: Vec<_> = z.iter().collect();
        for (m, score) in items.into_iter().rev() {
            self.string(m);
            self.buf.extend_from_slice(&score.to_le_bytes());
        }
    }
}

/// The RDB type a hash is written as: a listpack, or Redis 7.4's listpackex (25) once it had
/// field deadlines; a hash table, with deadlines (24) while it has any.
fn hash_type(h: &Hash) -> u8 {
    match (h.is_small(), h.is_listpackex(), h.has_ttls()) {
        (true, true, _) => kind::HASH_LISTPACK_EX,
        (true, false, _) => kind::HASH_LISTPACK,
        (false, _, true) => kind::HASH_METADATA,
        (false, _, false) => kind::HASH,
    }
}

/// The RDB type a value is written as: Redis 7.0's choice for its encoding.
fn type_of(v: &Value) -> u8 {
    match v {
        Value::Str(_) => kind::STRING,
        Value::List(_) => kind::LIST_QUICKLIST_2,
        Value::Set(s) if s.is_intset() => kind::SET_INTSET,
        Value::Set(_) => kind::SET,
        Value::Hash(h) => hash_type(h),
        Value::ZSet(z) if matches!(**z, ZSet::Packed(_)) => kind::ZSET_LISTPACK,
        Value::ZSet(_) => kind::ZSET_2,
        Value::Stream(_) => kind::STREAM_LISTPACKS_2,
    }
}

/// A listpack score as Redis 7.0's `d2string` spells it: an integer when it is one (within
/// 2^52), else `%.17g`.
fn push_score(lp: &mut ListpackWriter, score: f64) {
    const LIMIT: f64 = 4_503_599_627_370_496.0;
    if score != 0.0 && score.abs() < LIMIT && score == score.trunc() {
        lp.push_int(score as i64);
    } else if score == 0.0 {
        lp.push(if score.is_sign_negative() {
            b"-0"
        } else {
            b"0"
        });
    } else {
        lp.push(format_double(score, &mut [0; 40]));
    }
}

/// A quicklist node's byte and entry limits for `list-max-listpack-size`.
fn node_bytes(fill: i32) -> (usize, usize) {
    match fill {
        f if f > 0 => (8192, f as usize),
        -1 => (4096, usize::MAX),
        -2 => (8192, usize::MAX),
        -3 => (16384, usize::MAX),
        -4 => (32768, usize::MAX),
        _ => (65536, usize::MAX),
    }
}

/// DUMP's payload: the value, the RDB version (2 bytes), a CRC-64 of both (8 bytes).
pub fn dump_payload(v: &Value, compress: bool) -> Vec<u8> {
    let mut e = Encoder::new(compress);
    e.value(v);
    e.buf.extend_from_slice(&super::RDB_VERSION.to_le_bytes());
    let crc = super::crc64::crc64(0, &e.buf);
    e.buf.extend_from_slice(&crc.to_le_bytes());
    e.buf
}

#[cfg(test)]
mod tests {
    use super::super::read::{value, Reader};
    use super::*;
    use crate::store::list::End;

    fn round_trip(v: &Value, compress: bool) -> Value {
        let mut e = Encoder::new(compress);
        e.value(v);
        let mut r = Reader::new(&e.buf[1..], 1);
        let back = value(&mut r, e.buf[0]).unwrap().unwrap();
        assert!(r.at_end());
        back
    }

    fn sample_values() -> Vec<Value> {
        let mut out = vec![
            Value::str(b"plain"),
            Value::str(b"12345"),
            Value::str(b"-9223372036854775808"),
            Value::str(&[b'q'; 1000]),
            Value::str(b""),
        ];
        for n in [3, 600] {
            let mut l = List::default();
            let mut s = Set::default();
            let mut ints = Set::default();
            let mut h = Hash::default();
            let mut z = ZSet::default();
            for i in 0..n {
                l.push(End::Right, format!("item-{i}").as_bytes());
                l.push(End::Right, i.to_string().as_bytes());
                s.insert(format!("m{i}").as_bytes());
                ints.insert(((i as i64 - 10) * 70_001).to_string().as_bytes());
                h.insert(format!("f{i}").as_bytes(), format!("v{i}").as_bytes());
                z.insert(format!("z{i}").as_bytes(), i as f64 * 1.5 - 3.0);
            }
            z.insert(b"inf", f64::INFINITY);
            z.insert(b"neg0", -0.0);
            for v in [
                Value::List(Box::new(l)),
                Value::Set(Box::new(s)),
                Value::Set(Box::new(ints)),
                Value::hash(h),
                Value::ZSet(Box::new(z)),
            ] {
                out.push(v);
            }
        }
        out
    }

    #[test]
    fn every_type_round_trips_with_and_without_compression() {
        for v in sample_values() {
            for compress in [false, true] {
                let back = round_trip(&v, compress);
                assert_eq!(back.type_name(), v.type_name());
                match (&v, &back) {
                    (Value::ZSet(a), Value::ZSet(b)) => {
                        let a: Vec<_> = a.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect();
                        let b: Vec<_> = b.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect();
                        assert_eq!(a, b);
                    }
                    _ => assert_eq!(back, v),
                }
            }
        }
    }

    #[test]
    fn integers_and_long_strings_take_the_compact_forms() {
        let mut e = Encoder::new(true);
        e.string(b"100");
        assert_eq!(e.buf, [0xc0, 100]);
        let mut e = Encoder::new(true);
        e.string(b"0100");
        assert_eq!(e.buf, [4, b'0', b'1', b'0', b'0']);
        let mut e = Encoder::new(true);
        e.string(&[b'a'; 100]);
        assert_eq!(e.buf[0], 0xc3);
        assert!(e.buf.len() < 20);
    }

    #[test]
    fn payload_layout() {
        let p = dump_payload(&Value::str(b"hi"), true);
        // Type 0, length 2, "hi", version 10, CRC-64.
        assert_eq!(&p[..6], &[0, 2, b'h', b'i', 10, 0]);
        assert_eq!(p.len(), 14);
    }
}
