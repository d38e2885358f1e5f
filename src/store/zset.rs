//! The sorted-set type. Members are ordered by (score, member bytes), as Redis orders them.
//!
//! A small sorted set is one packed buffer, as Redis's listpack is: entries in order, each a
//! tag byte, the score (an integral one in 1, 2 or 4 bytes, any other in 8) and the member
//! with its length in front. It stays packed up to `zset-max-listpack-entries` members of at
//! most `zset-max-listpack-value` bytes (see `limits`); past either it becomes a [`Large`].
//!
//! A large one is a hash table (member → score, for ZSCORE in O(1)) beside an ordered index:
//! a vector of sorted chunks of at most `CHUNK` entries with a Fenwick tree of their sizes.
//! Rank and select are O(log n) (a search over the chunks, one in a chunk and one down the
//! tree); an insertion or deletion moves at most one chunk's entries. Entries are 24 bytes,
//! and chunks are kept at least a quarter full: with the hash table that is ~ 80 bytes a
//! short member, where Redis's skiplist node, dict entry and sds take ~ 100.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::{limits, Bytes, KeyHasher};

/// Entries per chunk of a large set's index.
const CHUNK: usize = 256;

/// One member and its score, as the index and the iterators give them.
pub type Item<'a> = (&'a [u8], f64);

/// (score, member) order: scores as numbers (-0 equals 0), then the bytes.
pub fn cmp_items(a: Item, b: Item) -> Ordering {
    match a.1.partial_cmp(&b.1) {
        Some(Ordering::Equal) | None => a.0.cmp(b.0),
        Some(o) => o,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ZSet {
    Packed(Packed),
    Large(Box<Large>),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Packed(Packed::default())
    }
}

impl ZSet {
    /// An empty set that will hold about `n` members of at most `max_len` bytes: packed if
    /// those fit the limits (as Redis's `zsetTypeCreate`); GEOADD and GEOSEARCHSTORE start so.
    pub fn with_hint(n: usize, max_len: usize) -> ZSet {
        if n <= limits::zset_max_entries() && max_len <= limits::zset_max_value() {
            ZSet::default()
        } else {
            ZSet::new_large()
        }
    }

    /// An empty set in the large form whatever it will hold, as Redis starts the result of
    /// ZUNIONSTORE (and a ZRANGESTORE of many ranks): it keeps a score of -0, which a packed
    /// set would read back as 0.
    pub fn new_large() -> ZSet {
        ZSet::Large(Box::default())
    }

    /// Packs a large set that is within `zset-max-listpack-*` (Redis's
    /// `zsetConvertToListpackIfNeeded`, which *STORE results go through).
    pub fn pack_if_fits(&mut self) {
        if let ZSet::Large(l) = self {
            if l.len <= limits::zset_max_entries()
                && self.max_member_len() <= limits::zset_max_value()
            {
                *self = ZSet::Packed(Packed::from_sorted(self.iter()));
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSet::Packed(p) => p.len(),
            ZSet::Large(l) => l.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `listpack` or `skiplist`, as OBJECT ENCODING names them.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Packed(_) => "listpack",
            ZSet::Large(_) => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => p.iter().find(|e| e.0 == member).map(|e| e.1),
            ZSet::Large(l) => l.score(member),
        }
    }

    /// Sets `member`'s score, adding it if absent; the old score if it was there.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        if let ZSet::Packed(p) = self {
            let old = p.remove(member);
            let fits = member.len() <= limits::zset_max_value()
                && (old.is_some() || p.len() < limits::zset_max_entries());
            if fits {
                p.insert(member, score);
                return old;
            }
            if let Some(s) = old {
                p.insert(member, s);
            }
            self.convert();
        }
        match self {
            ZSet::Large(l) => l.insert(member, score),
            ZSet::Packed(_) => unreachable!("converted above"),
        }
    }

    fn convert(&mut self) {
        if let ZSet::Packed(p) = self {
            let mut l = Large::default();
            for (m, s) in p.iter() {
                l.insert(m, s);
            }
            *self = ZSet::Large(Box::new(l));
        }
    }

    /// Removes `member`; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => p.remove(member),
            ZSet::Large(l) => l.remove(member),
        }
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSet::Packed(p) => p.iter().position(|e| e.0 == member),
            ZSet::Large(l) => {
                let s = l.score(member)?;
                Some(l.count_while(|e| cmp_items(e, (member, s)) == Ordering::Less))
            }
        }
    }

    /// How many of the first members `below` holds for; `below` must hold for a prefix of
    /// the order (a lower bound on score or on member). A range's ends are two of these.
    pub fn count_while(&self, below: impl Fn(Item) -> bool) -> usize {
        match self {
            ZSet::Packed(p) => p.iter().take_while(|e| below(*e)).count(),
            ZSet::Large(l) => l.count_while(below),
        }
    }

    /// The member at rank `i` (< len).
    pub fn get(&self, i: usize) -> Item<'_> {
        match self {
            ZSet::Packed(p) => p.iter().nth(i).expect("rank in range"),
            ZSet::Large(l) => {
                let (c, p) = l.locate(i);
                let e = &l.chunks[c][p];
                (&e.member, e.score)
            }
        }
    }

    /// Members of ranks `start..end` (clamped to the set), ascending.
    pub fn range(&self, start: usize, end: usize) -> Iter<'_> {
        let end = end.min(self.len());
        let start = start.min(end);
        match self {
            ZSet::Packed(p) => {
                let mut it = p.iter();
                for _ in 0..start {
                    it.next();
                }
                Iter::Packed(it, end - start)
            }
            ZSet::Large(l) => {
                let (c, p) = if start < l.len {
                    l.locate(start)
                } else {
                    (l.chunks.len(), 0)
                };
                Iter::Large {
                    chunks: &l.chunks,
                    c,
                    p,
                    left: end - start,
                }
            }
        }
    }

    /// Every member, ascending.
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, usize::MAX)
    }

    /// Members of ranks `start..end`, descending (from rank `end - 1` down).
    pub fn rev_range(&self, start: usize, end: usize) -> impl Iterator<Item = Item<'_>> {
        let items: Vec<Item> = self.range(start, end).collect();
        items.into_iter().rev()
    }

    /// Removes the members of ranks `start..end` (clamped); how many went.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match self {
            ZSet::Packed(p) => p.remove_range(start, end),
            ZSet::Large(l) => l.remove_range(start, end),
        }
        end - start
    }

    /// Removes and returns the `n` lowest (`max`: highest) members, in the order they were
    /// popped.
    pub fn pop(&mut self, n: usize, max: bool) -> Vec<(Vec<u8>, f64)> {
        let len = self.len();
        let n = n.min(len);
        let popped: Vec<(Vec<u8>, f64)> = if max {
            self.rev_range(len - n, len)
                .map(|(m, s)| (m.to_vec(), s))
                .collect()
        } else {
            self.range(0, n).map(|(m, s)| (m.to_vec(), s)).collect()
        };
        if max {
            self.remove_range(len - n, len);
        } else {
            self.remove_range(0, n);
        }
        popped
    }

    /// The longest member's length (for the packing decision of a result built from this).
    pub fn max_member_len(&self) -> usize {
        self.iter().map(|e| e.0.len()).max().unwrap_or(0)
    }

    /// ZSCAN: `count` members or more from `cursor` and the cursor to go on from (0: done).
    /// A packed set is returned whole, as Redis returns a listpack. A large set's cursor is
    /// the (order-preserving) bits of the next score to return, and a batch always ends
    /// between two scores: a member present throughout with its score unchanged is returned,
    /// whatever is added or removed meanwhile.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<Item<'_>>) {
        if let ZSet::Packed(_) = self {
            return (0, self.iter().collect());
        }
        let start = if cursor == 0 {
            0
        } else {
            let from = from_ordered_bits(cursor);
            self.count_while(|e| e.1 < from)
        };
        let mut out: Vec<Item> = Vec::with_capacity(count.min(1024));
        for e in self.range(start, usize::MAX) {
            if out.len() >= count && out.last().is_some_and(|l| l.1 != e.1) {
                return (ordered_bits(e.1), out);
            }
            out.push(e);
        }
        (0, out)
    }
}

/// A score's bits, mapped so that the integers order as the scores do (never 0: -inf's is
/// 0x000f_ffff_ffff_ffff).
fn ordered_bits(x: f64) -> u64 {
    let x = if x == 0.0 { 0.0 } else { x };
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn from_ordered_bits(b: u64) -> f64 {
    f64::from_bits(if b >> 63 == 1 { b & !(1 << 63) } else { !b })
}

/// Ascending members of a range.
pub enum Iter<'a> {
    Packed(PackedIter<'a>, usize),
    Large {
        chunks: &'a [Vec<Entry>],
        c: usize,
        p: usize,
        left: usize,
    },
}

impl<'a> Iterator for Iter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        match self {
            Iter::Packed(it, left) => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                it.next()
            }
            Iter::Large { chunks, c, p, left } => {
                if *left == 0 {
                    return None;
                }
                let chunks: &'a [Vec<Entry>] = chunks;
                let chunk = chunks.get(*c)?;
                let e = &chunk[*p];
                *left -= 1;
                *p += 1;
                if *p == chunk.len() {
                    *c += 1;
                    *p = 0;
                }
                Some((e.member.as_slice(), e.score))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Packed(_, left) | Iter::Large { left, .. } => (*left, Some(*left)),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

// ---------------------------------------------------------------------------------------
// The packed form.

/// One allocation, exactly as long as it must be (it is rewritten on each change, as a
/// listpack is): the member count (4 bytes) then the entries in order, `tag [score] len
/// member`. Tags: an integral score of 0 to 251 is the tag itself (4 + the score), others in
/// 1, 2 or 4 bytes after it, any other score as the 8 bytes of the double; the length is a
/// LEB128 varint. An empty set has no bytes at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Packed {
    buf: Box<[u8]>,
}

/// The first tag that is a score by itself (score = tag - TAG_SMALL).
const TAG_SMALL: u8 = 4;

const TAG_F64: u8 = 0;
const TAG_I8: u8 = 1;
const TAG_I16: u8 = 2;
const TAG_I32: u8 = 3;

fn encode_entry(out: &mut Vec<u8>, member: &[u8], score: f64) {
    // -0 is stored as the integer 0, as a listpack stores the text "-0": a packed set reads it
    // back as 0 (a large one keeps the sign), and Redis replies so.
    let int = (score.fract() == 0.0 && score.abs() < 2147483648.0).then_some(score as i32);
    match int {
        Some(i) if (0..=(255 - TAG_SMALL) as i32).contains(&i) => out.push(TAG_SMALL + i as u8),
        Some(i) if i8::try_from(i).is_ok() => {
            out.push(TAG_I8);
            out.push(i as i8 as u8);
        }
        Some(i) if i16::try_from(i).is_ok() => {
            out.push(TAG_I16);
            out.extend_from_slice(&(i as i16).to_le_bytes());
        }
        Some(i) => {
            out.push(TAG_I32);
            out.extend_from_slice(&i.to_le_bytes());
        }
        None => {
            out.push(TAG_F64);
            out.extend_from_slice(&score.to_le_bytes());
        }
    }
    let mut n = member.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(member);
}

/// Decodes the entry at `buf[at..]`: (member, score, the next entry's offset).
fn decode_entry(buf: &[u8], at: usize) -> (&[u8], f64, usize) {
    let mut i = at + 1;
    let score = match buf[at] {
        TAG_I8 => {
            i += 1;
            buf[at + 1] as i8 as f64
        }
        TAG_I16 => {
            i += 2;
            i16::from_le_bytes([buf[at + 1], buf[at + 2]]) as f64
        }
        TAG_I32 => {
            i += 4;
            i32::from_le_bytes(buf[at + 1..at + 5].try_into().expect("4 bytes")) as f64
        }
        TAG_F64 => {
            i += 8;
            f64::from_le_bytes(buf[at + 1..at + 9].try_into().expect("8 bytes"))
        }
        t => (t - TAG_SMALL) as f64,
    };
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = buf[i];
        i += 1;
        n |= ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    (&buf[i..i + n], score, i + n)
}

#[derive(Clone)]
pub struct PackedIter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if self.at >= self.buf.len() {
            return None;
        }
        let (m, s, next) = decode_entry(self.buf, self.at);
        self.at = next;
        Some((m, s))
    }
}

impl Packed {
    pub fn len(&self) -> usize {
        match self.buf.get(..4) {
            Some(h) => u32::from_le_bytes(h.try_into().expect("4 bytes")) as usize,
            None => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn body(&self) -> &[u8] {
        self.buf.get(4..).unwrap_or_default()
    }

    pub fn iter(&self) -> PackedIter<'_> {
        PackedIter {
            buf: self.body(),
            at: 0,
        }
    }

    /// Byte offsets (in the body) of every entry, and the end.
    fn offsets(&self) -> Vec<usize> {
        let body = self.body();
        let mut out = Vec::with_capacity(self.len() + 1);
        let mut at = 0;
        while at < body.len() {
            out.push(at);
            at = decode_entry(body, at).2;
        }
        out.push(at);
        out
    }

    /// Replaces the body's bytes `cut` with `with`, and the count by `len`.
    fn splice(&mut self, cut: std::ops::Range<usize>, with: &[u8], len: usize) {
        if len == 0 {
            self.buf = Box::default();
            return;
        }
        let body = self.body();
        let mut buf = Vec::with_capacity(4 + body.len() - cut.len() + with.len());
        buf.extend_from_slice(&(len as u32).to_le_bytes());
        buf.extend_from_slice(&body[..cut.start]);
        buf.extend_from_slice(with);
        buf.extend_from_slice(&body[cut.end..]);
        self.buf = buf.into_boxed_slice();
    }

    /// Entries appended in order (the caller's order must be the set's).
    fn from_sorted<'a>(items: impl Iterator<Item = Item<'a>>) -> Packed {
        let mut body = Vec::new();
        let mut n = 0;
        for (m, s) in items {
            encode_entry(&mut body, m, s);
            n += 1;
        }
        let mut p = Packed::default();
        p.splice(0..0, &body, n);
        p
    }

    fn insert(&mut self, member: &[u8], score: f64) {
        let body = self.body();
        let mut at = 0;
        while at < body.len() {
            let (m, s, next) = decode_entry(body, at);
            if cmp_items((m, s), (member, score)) == Ordering::Greater {
                break;
            }
            at = next;
        }
        let mut e = Vec::with_capacity(member.len() + 10);
        encode_entry(&mut e, member, score);
        self.splice(at..at, &e, self.len() + 1);
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let body = self.body();
        let mut at = 0;
        while at < body.len() {
            let (m, s, next) = decode_entry(body, at);
            if m == member {
                self.splice(at..next, &[], self.len() - 1);
                return Some(s);
            }
            at = next;
        }
        None
    }

    fn remove_range(&mut self, start: usize, end: usize) {
        let off = self.offsets();
        self.splice(off[start]..off[end], &[], self.len() - (end - start));
    }
}

// ---------------------------------------------------------------------------------------
// The large form.

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub member: Bytes,
    pub score: f64,
}

impl Entry {
    fn item(&self) -> Item<'_> {
        (&self.member, self.score)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Large {
    /// Sorted chunks, none empty (but the only one when the set is empty).
    chunks: Vec<Vec<Entry>>,
    /// Fenwick tree (1-based) of the chunks' lengths.
    fen: Vec<usize>,
    map: HashTable<Entry>,
    len: usize,
}

impl PartialEq for Large {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.chunks.concat() == other.chunks.concat()
    }
}

fn hash(m: &[u8]) -> u64 {
    KeyHasher.hash_one(m)
}

impl Large {
    /// The member index's slots (DEBUG HTSTATS-KEY's table size).
    pub fn slots(&self) -> usize {
        crate::store::slots_of_capacity(self.map.capacity())
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.map
            .find(hash(member), |e| &*e.member == member)
            .map(|e| e.score)
    }

    fn rebuild(&mut self) {
        let n = self.chunks.len();
        self.fen.clear();
        self.fen.resize(n + 1, 0);
        for i in 1..=n {
            self.fen[i] += self.chunks[i - 1].len();
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                let v = self.fen[i];
                self.fen[j] += v;
            }
        }
    }

    fn fen_add(&mut self, chunk: usize, delta: isize) {
        let mut i = chunk + 1;
        while i < self.fen.len() {
            self.fen[i] = self.fen[i].wrapping_add_signed(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Entries in the chunks before `chunk`.
    fn prefix(&self, chunk: usize) -> usize {
        let (mut i, mut sum) = (chunk, 0);
        while i > 0 {
            sum += self.fen[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// (chunk, position) of rank `r` (< len).
    fn locate(&self, mut r: usize) -> (usize, usize) {
        let n = self.chunks.len();
        let (mut pos, mut step) = (0, n.next_power_of_two());
        while step > 0 {
            let next = pos + step;
            if next <= n && self.fen[next] <= r {
                pos = next;
                r -= self.fen[next];
            }
            step >>= 1;
        }
        (pos, r)
    }

    fn count_while(&self, below: impl Fn(Item) -> bool) -> usize {
        let c = self
            .chunks
            .partition_point(|ch| ch.last().is_some_and(|e| below(e.item())));
        match self.chunks.get(c) {
            None => self.len,
            Some(ch) => self.prefix(c) + ch.partition_point(|e| below(e.item())),
        }
    }

    fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let h = hash(member);
        if let Some(e) = self.map.find_mut(h, |e| &*e.member == member) {
            let old = e.score;
            if old == score && old.is_sign_negative() == score.is_sign_negative() {
                return Some(old);
            }
            e.score = score;
            self.remove_from_index((member, old));
            self.insert_in_index(member, score);
            return Some(old);
        }
        self.map.insert_unique(
            h,
            Entry {
                member: member.into(),
                score,
            },
            |e| hash(&e.member),
        );
        self.len += 1;
        self.insert_in_index(member, score);
        None
    }

    fn insert_in_index(&mut self, member: &[u8], score: f64) {
        let e = Entry {
            member: member.into(),
            score,
        };
        if self.chunks.is_empty() {
            self.chunks.push(Vec::with_capacity(CHUNK));
            self.rebuild();
        }
        let below = |x: Item| cmp_items(x, (member, score)) == Ordering::Less;
        let last = self.chunks.len() - 1;
        let c = self
            .chunks
            .partition_point(|ch| ch.last().is_some_and(|x| below(x.item())))
            .min(last);
        let p = self.chunks[c].partition_point(|x| below(x.item()));
        if self.chunks[c].len() < CHUNK {
            self.chunks[c].insert(p, e);
            self.fen_add(c, 1);
            return;
        }
        // A full chunk: appending past the end (or before the start) opens a new chunk and
        // leaves this one full, so that ascending inserts pack chunks full; elsewhere it splits.
        if c == last && p == CHUNK {
            let mut v = Vec::with_capacity(CHUNK);
            v.push(e);
            self.chunks.push(v);
        } else if c == 0 && p == 0 {
            let mut v = Vec::with_capacity(CHUNK);
            v.push(e);
            self.chunks.insert(0, v);
        } else {
            let mut right = Vec::with_capacity(CHUNK);
            right.extend(self.chunks[c].drain(CHUNK / 2..));
            if p <= CHUNK / 2 {
                self.chunks[c].insert(p, e);
            } else {
                right.insert(p - CHUNK / 2, e);
            }
            self.chunks.insert(c + 1, right);
        }
        self.rebuild();
    }

    /// Removes the index entry of `item` (which is there).
    fn remove_from_index(&mut self, item: Item) {
        let r = self.count_while(|x| cmp_items(x, item) == Ordering::Less);
        let (c, p) = self.locate(r);
        self.chunks[c].remove(p);
        self.fen_add(c, -1);
        self.tidy(c);
    }

    /// After removals from chunk `c`: drops it if empty, merges it into a neighbour if it is
    /// under a quarter full and they fit in one.
    fn tidy(&mut self, c: usize) {
        let n = self.chunks[c].len();
        if n == 0 {
            if self.chunks.len() > 1 {
                self.chunks.remove(c);
                self.rebuild();
            }
            return;
        }
        if n >= CHUNK / 4 {
            return;
        }
        let into = if c + 1 < self.chunks.len() && self.chunks[c + 1].len() + n <= CHUNK {
            Some(c)
        } else if c > 0 && self.chunks[c - 1].len() + n <= CHUNK {
            Some(c - 1)
        } else {
            None
        };
        if let Some(l) = into {
            let right = self.chunks.remove(l + 1);
            self.chunks[l].extend(right);
            self.rebuild();
        }
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let e = match self.map.find_entry(hash(member), |e| &*e.member == member) {
            Ok(e) => e.remove().0,
            Err(_) => return None,
        };
        self.len -= 1;
        self.remove_from_index(e.item());
        self.shrink_map();
        Some(e.score)
    }

    /// Hash tables never shrink by themselves: cut one that is mostly empty.
    fn shrink_map(&mut self) {
        if self.map.capacity() > 64 && self.map.len() < self.map.capacity() / 8 {
            self.map.shrink_to(self.map.len() * 2, |e| hash(&e.member));
        }
    }

    fn remove_range(&mut self, start: usize, end: usize) {
        let (mut c, mut p) = self.locate(start);
        let mut left = end - start;
        let mut dropped = false;
        while left > 0 {
            let k = left.min(self.chunks[c].len() - p);
            for e in self.chunks[c].drain(p..p + k) {
                if let Ok(o) = self
                    .map
                    .find_entry(hash(&e.member), |x| x.member == e.member)
                {
                    o.remove();
                }
            }
            left -= k;
            self.len -= k;
            if self.chunks[c].is_empty() && self.chunks.len() > 1 {
                self.chunks.remove(c);
                dropped = true;
            } else {
                // Chunk positions still hold until one is dropped; after that the tree is
                // rebuilt anyway. (A pop from one end costs O(log n), not a rebuild.)
                if !dropped {
                    self.fen_add(c, -(k as isize));
                }
                c += 1;
            }
            p = 0;
        }
        if dropped {
            self.rebuild();
        }
        let c = c.min(self.chunks.len() - 1);
        self.tidy(c);
        if c > 0 && c - 1 < self.chunks.len() {
            self.tidy(c - 1);
        }
        self.shrink_map();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(z: &ZSet, model: &std::collections::BTreeMap<Vec<u8>, f64>) {
        let mut want: Vec<(Vec<u8>, f64)> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        want.sort_by(|a, b| cmp_items((&a.0, a.1), (&b.0, b.1)));
        let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(got, want);
        assert_eq!(z.len(), want.len());
        for (i, (m, s)) in want.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.score(m), Some(*s));
            assert_eq!(z.get(i), (&m[..], *s));
        }
    }

    #[test]
    fn packed_and_large_agree_with_a_model() {
        for large in [false, true] {
            let mut z = if large {
                ZSet::Large(Box::default())
            } else {
                ZSet::default()
            };
            let mut model = std::collections::BTreeMap::new();
            let mut x: u64 = 12345;
            for i in 0..6000 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let m = format!("m{}", (x >> 33) % 700).into_bytes();
                let s = ((x >> 20) % 50) as f64 - 10.5 * ((x >> 60) % 2) as f64;
                if (x >> 40).is_multiple_of(3) {
                    assert_eq!(z.remove(&m), model.remove(&m));
                } else {
                    assert_eq!(z.insert(&m, s), model.insert(m, s));
                }
                if i % 500 == 0 {
                    check(&z, &model);
                }
                if i == 3000 {
                    let n = z.len();
                    let gone: Vec<Vec<u8>> = z.range(n / 4, n / 2).map(|e| e.0.to_vec()).collect();
                    assert_eq!(z.remove_range(n / 4, n / 2), gone.len());
                    for m in gone {
                        model.remove(&m);
                    }
                    check(&z, &model);
                }
            }
            check(&z, &model);
            assert_eq!(z.encoding(), "skiplist");
            let n = z.len();
            let top = z.pop(3, true);
            assert_eq!(top.len(), 3);
            assert!(top[0].1 >= top[2].1);
            assert_eq!(z.len(), n - 3);
        }
    }

    #[test]
    fn packed_scores_keep_every_bit() {
        let mut z = ZSet::default();
        for (i, s) in [
            0.0,
            1.0,
            127.0,
            128.0,
            251.0,
            252.0,
            -128.0,
            -1.0,
            300.0,
            -70000.0,
            1e300,
            0.1 + 0.2,
            f64::INFINITY,
        ]
        .into_iter()
        .enumerate()
        {
            z.insert(format!("{i}").as_bytes(), s);
            assert_eq!(
                z.score(format!("{i}").as_bytes()).unwrap().to_bits(),
                s.to_bits()
            );
        }
        assert_eq!(z.encoding(), "listpack");
        // As a listpack holds it: the text "-0" reads back as the integer 0.
        z.insert(b"negzero", -0.0);
        assert_eq!(z.score(b"negzero").unwrap().to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn scan_cursor_orders_as_scores() {
        for s in [f64::NEG_INFINITY, -1.5, -0.0, 0.0, 2.0, f64::INFINITY] {
            let b = ordered_bits(s);
            assert_ne!(b, 0);
            assert_eq!(from_ordered_bits(b), if s == 0.0 { 0.0 } else { s });
        }
        assert!(ordered_bits(-1.0) < ordered_bits(0.0));
        assert!(ordered_bits(0.5) < ordered_bits(1.0));
    }
}
