//! Reading RDB: lengths, strings (plain, integer, LZF), each value type in every encoding
//! Redis has written since 2.x, and whole files. Every read is bounds-checked; a problem is an
//! `RdbError` with the offset in the file and what was expected there, never a panic.

use std::borrow::Cow;

use super::packed::{self, PackError};
use super::{kind, lzf, module_name, opcode, RdbError, MAX_READ_VERSION};
use crate::store::hash::MAX_FIELD_DEADLINE;
use crate::store::list::{Elem, End};
use crate::store::{Hash, List, Set, Value, ZSet};

pub type Result<T> = std::result::Result<T, RdbError>;

/// A cursor over RDB bytes; `base` is where they start in the file (for the offsets errors
/// give).
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

/// A length, or the special encoding of a string (`RDB_ENCVAL`).
pub enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], base: usize) -> Self {
        Reader { data, pos: 0, base }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn error<T>(&self, at: usize, expected: impl Into<String>) -> Result<T> {
        Err(RdbError {
            offset: self.base + at,
            expected: expected.into(),
        })
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        match self
            .pos
            .checked_add(n)
            .and_then(|e| self.data.get(self.pos..e))
        {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.error(
                self.pos,
                format!("{what} ({n} bytes, {} left)", self.data.len() - self.pos),
            ),
        }
    }

    pub fn byte(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn le<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn len_or_encoding(&mut self, what: &str) -> Result<Len> {
        let b = self.byte(what)?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => Len::Plain((((b & 0x3f) as u64) << 8) | self.byte(what)? as u64),
            2 if b == 0x80 => Len::Plain(u32::from_be_bytes(self.le(what)?) as u64),
            2 if b == 0x81 => Len::Plain(u64::from_be_bytes(self.le(what)?)),
            2 => return self.error(self.pos - 1, format!("{what}: a length, not 0x{b:02x}")),
            _ => Len::Encoded(b & 0x3f),
        })
    }

    pub fn length(&mut self, what: &str) -> Result<u64> {
        let at = self.pos;
        match self.len_or_encoding(what)? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => self.error(at, format!("{what}: a length, not a string encoding")),
        }
    }

    /// A count of items each at least `min_bytes` long: bounded by what is left, so that a
    /// corrupt count cannot make the reader reserve memory the file could not fill.
    pub fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.length(what)?;
        let left = (self.data.len() - self.pos) as u64;
        if n > left / min_bytes as u64 {
            return self.error(
                at,
                format!("{what} of at most {}, not {n}", left / min_bytes as u64),
            );
        }
        Ok(n as usize)
    }

    pub fn string(&mut self) -> Result<Cow<'a, [u8]>> {
        let at = self.pos;
        match self.len_or_encoding("a string length")? {
            Len::Plain(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                Ok(Cow::Borrowed(self.take(n, "string bytes")?))
            }
            Len::Encoded(0) => Ok(int_string(self.byte("an 8-bit integer")? as i8 as i64)),
            Len::Encoded(1) => Ok(int_string(
                i16::from_le_bytes(self.le("a 16-bit integer")?) as i64
            )),
            Len::Encoded(2) => Ok(int_string(
                i32::from_le_bytes(self.le("a 32-bit integer")?) as i64
            )),
            Len::Encoded(3) => {
                let clen = self.length("a compressed length")?;
                let len = self.length("an uncompressed length")?;
                let start = self.pos;
                let c = self.take(
                    usize::try_from(clen).unwrap_or(usize::MAX),
                    "compressed bytes",
                )?;
                // LZF expands at most about 2000 times; a bigger claim is corrupt.
                if len > clen.saturating_mul(2048).max(64) {
                    return self.error(
                        at,
                        format!("an uncompressed length near {clen} bytes, not {len}"),
                    );
                }
                match lzf::decompress(c, len as usize) {
                    Some(v) => Ok(Cow::Owned(v)),
                    None => self.error(start, format!("LZF data that decompresses to {len} bytes")),
                }
            }
            Len::Encoded(e) => self.error(at, format!("a string encoding 0 to 3, not {e}")),
        }
    }

    /// A score as old sorted sets store it: a length byte, or 253/254/255 for NaN, +inf, -inf.
    fn text_double(&mut self) -> Result<f64> {
        let at = self.pos;
        match self.byte("a score")? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let s = self.take(n as usize, "score digits")?;
                match decimal(s) {
                    Some(v) => Ok(v),
                    None => self.error(at, "a score in decimal"),
                }
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.le("an 8-byte score")?))
    }

    /// A packed blob (a string) walked by `each`; its errors get the blob's file offset and
    /// Redis's words for the blob that failed (`check`, from `integrity`).
    fn blob<T>(
        &mut self,
        check: &str,
        each: impl FnOnce(&[u8]) -> std::result::Result<T, PackError>,
    ) -> Result<T> {
        let (start, s) = self.packed()?;
        each(&s).or_else(|e| self.packed_error(start, e, check))
    }

    /// A string holding a packed blob, and where its bytes start in the file (for the
    /// offsets of errors inside it).
    fn packed(&mut self) -> Result<(usize, Cow<'a, [u8]>)> {
        let s = self.string()?;
        Ok((self.pos - s.len().min(self.pos), s))
    }

    fn packed_error<T>(&self, blob_at: usize, e: PackError, check: &str) -> Result<T> {
        self.error(blob_at + e.at, format!("{} ({check})", e.expected))
    }
}

fn int_string(v: i64) -> Cow<'static, [u8]> {
    Cow::Owned(itoa::Buffer::new().format(v).as_bytes().to_vec())
}

/// Redis's words (rdbLoadObject's) for a packed value of type `t` that fails its checks:
/// what its users, and its tests, look for in the log.
pub(super) fn integrity(t: u8) -> &'static str {
    match t {
        kind::LIST_QUICKLIST => "Ziplist integrity check failed.",
        kind::LIST_QUICKLIST_2 => "Listpack integrity check failed.",
        kind::HASH_ZIPMAP => "Zipmap integrity check failed.",
        kind::LIST_ZIPLIST => "List ziplist integrity check failed.",
        kind::SET_INTSET => "Intset integrity check failed.",
        kind::SET_LISTPACK => "Set listpack integrity check failed.",
        kind::ZSET_ZIPLIST => "Zset ziplist integrity check failed.",
        kind::ZSET_LISTPACK => "Zset listpack integrity check failed.",
        kind::HASH_ZIPLIST => "Hash ziplist integrity check failed.",
        kind::HASH_LISTPACK | kind::HASH_LISTPACK_EX | kind::HASH_LISTPACK_EX_PRE_GA => {
            "Hash listpack integrity check failed."
        }
        kind::STREAM_LISTPACKS | kind::STREAM_LISTPACKS_2 | kind::STREAM_LISTPACKS_3 => {
            "Stream listpack integrity check failed."
        }
        _ => "Integrity check failed.",
    }
}

/// A sorted set being filled from a file: duplicates and NaN refused, as Redis refuses them
/// (`check`: Redis's words when the set came packed, where it finds them in its own check).
fn zadd(r: &Reader, z: &mut ZSet, at: usize, m: &[u8], score: f64, check: &str) -> Result<()> {
    if score.is_nan() {
        return r.error(at, format!("a score that is a number, not NaN ({check})"));
    }
    if z.insert(m, score).is_some() {
        return r.error(
            at,
            format!("sorted set members without duplicates ({check})"),
        );
    }
    Ok(())
}

fn hset(r: &Reader, h: &mut Hash, at: usize, f: &[u8], v: &[u8], check: &str) -> Result<()> {
    if !h.insert(f, v) {
        return r.error(at, format!("hash fields without duplicates ({check})"));
    }
    Ok(())
}

/// A set member seen twice, in Redis's words.
const DUPLICATE_MEMBER: &str = "set members without duplicates (Duplicate set members detected)";

fn sadd(r: &Reader, s: &mut Set, at: usize, m: &[u8]) -> Result<()> {
    if !s.insert(m) {
        return r.error(at, DUPLICATE_MEMBER);
    }
    Ok(())
}

/// Pairs of a packed blob's entries, for hashes and sorted sets in ziplist/listpack form.
fn pairs<'b>(
    items: &'b [Elem<'b>],
    r: &Reader,
    at: usize,
    check: &str,
) -> Result<std::slice::ChunksExact<'b, Elem<'b>>> {
    if !items.len().is_multiple_of(2) {
        return r.error(
            at,
            format!("an even number of entries (field, value pairs) ({check})"),
        );
    }
    Ok(items.chunks_exact(2))
}

fn elem_score(e: &Elem) -> Option<f64> {
    match *e {
        Elem::Int(i) => Some(i as f64),
        Elem::Bytes(b) => decimal(b),
    }
}

/// A score written in decimal, as Redis reads one back (`strtod`, every byte).
fn decimal(b: &[u8]) -> Option<f64> {
    let (v, whole, _) = crate::util::strtod::strtod(b);
    (whole && !b.is_empty()).then_some(v)
}

/// One value of type `t`. None: an empty collection, which Redis skips (and so do we).
pub fn value(r: &mut Reader, t: u8) -> Result<Option<Value>> {
    let at = r.pos();
    let v = match t {
        kind::STRING => Value::Str(r.string()?.as_ref().into()),
        kind::LIST => {
            let n = r.count("a list length", 1)?;
            let mut l = List::default();
            for _ in 0..n {
                l.push(End::Right, &r.string()?);
            }
            Value::List(Box::new(l))
        }
        kind::SET => {
            let n = r.count("a set size", 1)?;
            let mut s = Set::default();
            for _ in 0..n {
                let at = r.pos();
                let m = r.string()?;
                sadd(r, &mut s, at, &m)?;
            }
            Value::Set(Box::new(s))
        }
        kind::ZSET | kind::ZSET_2 => {
            let n = r.count("a sorted set size", 2)?;
            let mut z = ZSet::default();
            for _ in 0..n {
                let at = r.pos();
                let m = r.string()?;
                let score = if t == kind::ZSET {
                    r.text_double()?
                } else {
                    r.binary_double()?
                };
                zadd(r, &mut z, at, &m, score, "Duplicate zset fields detected")?;
            }
            Value::ZSet(Box::new(z))
        }
        kind::HASH => {
            let n = r.count("a hash size", 2)?;
            let mut h = Hash::default();
            for _ in 0..n {
                let at = r.pos();
                let f = r.string()?;
                let v = r.string()?;
                hset(r, &mut h, at, &f, &v, "Duplicate hash fields detected")?;
            }
            Value::hash(h)
        }
        kind::SET_INTSET => {
            let mut members = Vec::new();
            r.blob(integrity(t), |b| {
                packed::intset_each(b, |v| members.push(v))
            })?;
            let mut s = Set::default();
            for m in members {
                s.insert(itoa::Buffer::new().format(m).as_bytes());
            }
            Value::Set(Box::new(s))
        }
        kind::SET_LISTPACK => {
            let mut s = Set::default();
            let mut dup = false;
            r.blob(integrity(t), |b| {
                packed::listpack_each(b, |e| dup |= !e.with_bytes(|b| s.insert(b)))
            })?;
            if dup {
                return r.error(at, DUPLICATE_MEMBER);
            }
            Value::Set(Box::new(s))
        }
        kind::LIST_ZIPLIST | kind::LIST_QUICKLIST | kind::LIST_QUICKLIST_2 => {
            let mut l = List::default();
            let nodes = if t == kind::LIST_ZIPLIST {
                1
            } else {
                r.count("a quicklist node count", 1)?
            };
            for _ in 0..nodes {
                let container_at = r.pos();
                let container = if t == kind::LIST_QUICKLIST_2 {
                    r.length("a quicklist node container")?
                } else {
                    2
                };
                if container != 1 && container != 2 {
                    return r.error(
                        container_at,
                        format!(
                            "a quicklist container 1 or 2, not {container} \
                             (Quicklist integrity check failed.)"
                        ),
                    );
                }
                let node_at = r.pos();
                let (start, blob) = r.packed()?;
                // Redis refuses an empty node of either kind (an empty packed one has a header).
                if blob.is_empty() {
                    return r.error(node_at, "a quicklist node that is not empty");
                }
                match container {
                    // A plain node: one element, as is.
                    1 => l.push(End::Right, &blob),
                    _ => {
                        let each = |e: Elem| e.with_bytes(|b| l.push(End::Right, b));
                        let res = if t == kind::LIST_QUICKLIST_2 {
                            packed::listpack_each(&blob, each)
                        } else {
                            packed::ziplist_each(&blob, each)
                        };
                        res.or_else(|e| r.packed_error(start, e, integrity(t)))?;
                    }
                }
            }
            Value::List(Box::new(l))
        }
        kind::HASH_ZIPMAP => {
            let mut fields = Vec::new();
            r.blob(integrity(t), |b| {
                packed::zipmap_each(b, |f, v| fields.push((f.to_vec(), v.to_vec())))
            })?;
            let mut h = Hash::default();
            for (f, v) in fields {
                hset(r, &mut h, at, &f, &v, "Hash zipmap with dup elements")?;
            }
            Value::hash(h)
        }
        kind::ZSET_ZIPLIST | kind::ZSET_LISTPACK | kind::HASH_ZIPLIST | kind::HASH_LISTPACK => {
            let (start, blob) = r.packed()?;
            let check = integrity(t);
            let mut items = Vec::new();
            let res = if t == kind::ZSET_LISTPACK || t == kind::HASH_LISTPACK {
                packed::listpack_each(&blob, |e| items.push(e))
            } else {
                packed::ziplist_each(&blob, |e| items.push(e))
            };
            res.or_else(|e| r.packed_error(start, e, check))?;
            if t == kind::ZSET_ZIPLIST || t == kind::ZSET_LISTPACK {
                let mut z = ZSet::default();
                for p in pairs(&items, r, start, check)? {
                    let Some(score) = elem_score(&p[1]) else {
                        return r.error(
                            start,
                            format!("a sorted set score that is a number ({check})"),
                        );
                    };
                    p[0].with_bytes(|m| zadd(r, &mut z, start, m, score, check))?;
                }
                Value::ZSet(Box::new(z))
            } else {
                let mut h = Hash::default();
                for p in pairs(&items, r, start, check)? {
                    let f = p[0].to_vec();
                    p[1].with_bytes(|v| hset(r, &mut h, start, &f, v, check))?;
                }
                Value::hash(h)
            }
        }
        kind::MODULE | kind::MODULE_2 => {
            let id = r.length("a module type id")?;
            return r.error(
                at,
                format!(
                    "no value of module type '{}': rudis has no modules, so the file cannot be loaded",
                    module_name(id)
                ),
            );
        }
        kind::STREAM_LISTPACKS | kind::STREAM_LISTPACKS_2 | kind::STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(super::stream::read(r, t)?))
        }
        kind::HASH_METADATA_PRE_GA | kind::HASH_METADATA => {
            // Redis 7.4's hash table with field deadlines: (deadline, field, value) triples,
            // each deadline relative to the soonest (written first), plus one, 0 for none; a
            // release candidate's (22) are absolute.
            let soonest = if t == kind::HASH_METADATA {
                let ms = u64::from_le_bytes(r.le("the hash's soonest field deadline")?);
                if ms > MAX_FIELD_DEADLINE + 1 {
                    return r.error(r.pos() - 8, "Hash read invalid minExpire value");
                }
                Some(ms)
            } else {
                None
            };
            let n = r.count("a hash size", 3)?;
            let mut h = Hash::default();
            h.allow_ttls();
            for _ in 0..n {
                let at = r.pos();
                let ttl = r.length("a hash field's deadline")?;
                let deadline = match (ttl, soonest) {
                    (0, _) => None,
                    (ttl, Some(soonest)) => Some((ttl - 1).saturating_add(soonest)),
                    (ttl, None) => Some(ttl),
                };
                if let Some(d) = deadline.filter(|d| *d > MAX_FIELD_DEADLINE) {
                    return r.error(at, format!("a field deadline, not {d}"));
                }
                let f = r.string()?;
                let v = r.string()?;
                hset(r, &mut h, at, &f, &v, "Duplicate hash fields detected")?;
                // As Redis inserts them: a small one's fields in deadline order.
                if let Some(d) = deadline {
                    h.set_ttl(&f, Some(d));
                }
            }
            Value::hash(h)
        }
        kind::HASH_LISTPACK_EX_PRE_GA | kind::HASH_LISTPACK_EX => {
            // Redis 7.4's small hash with field deadlines: the soonest one (unused, as in
            // Redis), then a listpack of (field, value, deadline) triples, 0 for none.
            if t == kind::HASH_LISTPACK_EX {
                r.le::<8>("the hash's soonest field deadline")?;
            }
            let (start, blob) = r.packed()?;
            let check = integrity(t);
            let mut items = Vec::new();
            packed::listpack_each(&blob, |e| items.push(e))
                .or_else(|e| r.packed_error(start, e, check))?;
            if !items.len().is_multiple_of(3) {
                return r.error(
                    start,
                    format!("entries in (field, value, deadline) triples ({check})"),
                );
            }
            let mut h = Hash::default();
            for triple in items.chunks_exact(3) {
                let deadline = match triple[2] {
                    Elem::Int(0) => None,
                    Elem::Int(d) if (1..=MAX_FIELD_DEADLINE as i64).contains(&d) => Some(d as u64),
                    _ => return r.error(start, format!("a field deadline ({check})")),
                };
                let f = triple[0].to_vec();
                let added = triple[1].with_bytes(|v| h.push_loaded(&f, v, deadline));
                if !added {
                    return r.error(start, format!("hash fields without duplicates ({check})"));
                }
            }
            Value::hash(h)
        }
        t => return r.error(at.saturating_sub(1), format!("a value type, not {t}")),
    };
    let empty = match &v {
        Value::Str(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::ZSet(z) => z.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::Stream(_) => false,
    };
    Ok((!empty).then_some(v))
}

/// A value's error, naming its key: what someone looking into the file searches for.
fn in_key(mut e: RdbError, key: &[u8]) -> RdbError {
    e.expected = format!("{} (key '{}')", e.expected, String::from_utf8_lossy(key));
    e
}

/// What a file held besides its keys, and how many of those there were.
#[derive(Debug, Default)]
pub struct Summary {
    pub version: u16,
    /// The AUX fields (`redis-ver`, `ctime`, `aof-base`...).
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Each function library's code (`FUNCTION2`, or a 7.0 release candidate's `FUNCTION`).
    pub functions: Vec<Vec<u8>>,
    pub keys: u64,
    /// Keys already past their deadline (left out, as a master leaves them out).
    pub expired: u64,
    /// Empty collections (left out, as Redis leaves them out).
    pub empty: u64,
    /// Bytes of the file that were RDB (an AOF with an RDB preamble continues after them).
    pub len: usize,
    /// False when the file was written with `rdbchecksum no` (or predates checksums).
    pub checksummed: bool,
}

impl Summary {
    pub fn aux(&self, name: &str) -> Option<&[u8]> {
        self.aux
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| &v[..])
    }
}

/// The body of a DUMP-style payload (value, 2-byte version, CRC-64) once its version and
/// checksum are checked; None when they are wrong (Redis's `verifyDumpPayload`).
pub fn verify_payload(data: &[u8]) -> Option<&[u8]> {
    if data.len() < 10 {
        return None;
    }
    let footer = &data[data.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > MAX_READ_VERSION {
        return None;
    }
    let crc = u64::from_le_bytes(footer[2..].try_into().ok()?);
    let ok = super::skip_checksum() || super::crc64::crc64(0, &data[..data.len() - 8]) == crc;
    ok.then(|| &data[..data.len() - 10])
}

/// True if `data` starts as an RDB file does.
pub fn is_rdb(data: &[u8]) -> bool {
    data.starts_with(b"REDIS")
}

/// Walks a whole RDB file (or an AOF's RDB preamble: `data` may go on past its end), handing
/// each key to `sink(db, key, value, deadline_ms)`; keys past their deadline at `now` are
/// left out. `sink` may refuse a key (a duplicate, a db out of range) with what it expected.
pub fn parse(
    data: &[u8],
    now: u64,
    mut sink: impl FnMut(usize, &[u8], Value, Option<u64>) -> std::result::Result<(), String>,
) -> Result<Summary> {
    let mut r = Reader::new(data, 0);
    let magic = r.take(9, "the header 'REDIS' and a four-digit version")?;
    if &magic[..5] != b"REDIS" {
        return r.error(0, "the header 'REDIS'");
    }
    let version: u16 = match std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(v) if (1..=MAX_READ_VERSION).contains(&v) => v,
        _ => {
            return r.error(
                5,
                format!(
                    "an RDB version from 1 to {MAX_READ_VERSION}, not '{}'",
                    String::from_utf8_lossy(&magic[5..])
                ),
            )
        }
    };
    let mut sum = Summary {
        version,
        ..Summary::default()
    };
    let mut db = 0usize;
    let mut deadline: Option<u64> = None;
    loop {
        let at = r.pos();
        let t = r.byte("an opcode or a value type (the file is truncated)")?;
        match t {
            opcode::EOF => break,
            opcode::SELECTDB => {
                db = r.length("a database number")? as usize;
                continue;
            }
            opcode::RESIZEDB => {
                r.length("a database size")?;
                r.length("a database expires size")?;
                continue;
            }
            opcode::AUX => {
                let k = r.string()?.into_owned();
                let v = r.string()?.into_owned();
                sum.aux.push((k, v));
                continue;
            }
            opcode::EXPIRETIME_MS => {
                deadline = Some(u64::from_le_bytes(r.le("an 8-byte expire time")?));
                continue;
            }
            opcode::EXPIRETIME => {
                let secs = i32::from_le_bytes(r.le("a 4-byte expire time")?);
                deadline = Some((secs.max(0) as u64) * 1000);
                continue;
            }
            opcode::SLOT_INFO => {
                r.length("a slot id")?;
                r.length("a slot size")?;
                r.length("a slot's expires size")?;
                continue;
            }
            opcode::IDLE => {
                r.length("an LRU idle time")?;
                continue;
            }
            opcode::FREQ => {
                r.byte("an LFU frequency")?;
                continue;
            }
            opcode::FUNCTION2 => {
                sum.functions.push(r.string()?.into_owned());
                continue;
            }
            opcode::FUNCTION_PRE_GA => {
                let name = r.string()?.into_owned();
                let engine = r.string()?.into_owned();
                if r.length("a library description flag")? != 0 {
                    r.string()?;
                }
                let body = r.string()?;
                let mut code = format!(
                    "#!{} name={}\n",
                    String::from_utf8_lossy(&engine),
                    String::from_utf8_lossy(&name)
                )
                .into_bytes();
                code.extend_from_slice(&body);
                sum.functions.push(code);
                continue;
            }
            opcode::MODULE_AUX => {
                let id = r.length("a module id")?;
                return r.error(
                    at,
                    format!(
                        "no module data: the file holds AUX data of module '{}', which rudis does not have",
                        module_name(id)
                    ),
                );
            }
            _ => {}
        }
        let key = r.string()?;
        let Some(v) = value(&mut r, t).map_err(|e| in_key(e, &key))? else {
            // Redis once wrote such keys (its #8453), so they are dropped, not refused.
            sum.empty += 1;
            if sum.empty <= 10 {
                log::warn!("RDB: skipping empty key: {}", String::from_utf8_lossy(&key));
            }
            deadline = None;
            continue;
        };
        if deadline.is_some_and(|d| crate::store::value::is_expired(d, now)) {
            sum.expired += 1;
        } else {
            sink(db, &key, v, deadline).or_else(|e| r.error(at, e))?;
            sum.keys += 1;
        }
        deadline = None;
    }
    let end = r.pos();
    if version >= 5 {
        let stored = u64::from_le_bytes(r.le("the 8-byte CRC-64 after EOF")?);
        sum.checksummed = stored != 0;
        if stored != 0 && !super::skip_checksum() {
            let crc = super::crc64::crc64(0, &data[..end]);
            if crc != stored {
                return r.error(
                    end,
                    format!(
                        "the CRC-64 {crc:016x} of the bytes before it, not {stored:016x} \
                         (RDB CRC error)"
                    ),
                );
            }
        }
    }
    sum.len = r.pos();
    Ok(sum)
}
