//! The set type, encoded as Redis 7.0 encodes it: a set of integers is a sorted array of them
//! (Redis's intset: every entry 16, 32 or 64 bits wide, the smallest width that fits them all)
//! until it has more than `SET_MAX_INTSET_ENTRIES` members; any other set is a hash table.
//!
//! The hash table is a `DenseTable`: members in a dense vector with a hash index of positions
//! beside it, so that a random member (SPOP, SRANDMEMBER) costs O(1) and SSCAN's cursor is a
//! position in the vector (see `DenseTable::scan` for why that cursor keeps SCAN's guarantee).

use smallvec::SmallVec;

use super::dense::DenseTable;
use super::Bytes;
use crate::resp::parse::parse_i64;

/// Redis's `set-max-intset-entries` default: past this many members an intset becomes a table.
/// `set-max-intset-entries`'s default (see `limits`).
pub const SET_MAX_INTSET_ENTRIES: usize = 512;

/// One member as a set holds it: an intset's members are integers, a table's are bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// Calls `f` with the member's bytes (an integer in decimal, as Redis replies with it).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Member::Int(v) => f(itoa::Buffer::new().format(v).as_bytes()),
            Member::Bytes(b) => f(b),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(<[u8]>::to_vec)
    }
}

/// The width of an intset's entries, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Width {
    W16 = 2,
    W32 = 4,
    W64 = 8,
}

impl Width {
    fn of(v: i64) -> Width {
        if i16::try_from(v).is_ok() {
            Width::W16
        } else if i32::try_from(v).is_ok() {
            Width::W32
        } else {
            Width::W64
        }
    }

    fn bytes(self) -> usize {
        self as usize
    }
}

/// Sorted integers, little-endian, all of one width. Up to `INLINE` bytes of them (10 of 16
/// bits, 5 of 32) live inline, so that a small set is a single allocation of 32 bytes: the box
/// of its `Set` (as Redis's robj + intset are 16 + 32).
#[derive(Debug, Clone, PartialEq)]
pub enum IntSet {
    Inline {
        width: Width,
        len: u8,
        buf: [u8; INLINE],
    },
    /// Exactly as long as the entries: an intset is rewritten on every change anyway.
    Heap { width: Width, data: Box<[u8]> },
}

const INLINE: usize = 21;

/// A working copy of an intset's bytes, on the stack for the inline ones.
type Scratch = SmallVec<[u8; 32]>;

impl Default for IntSet {
    fn default() -> Self {
        IntSet::Inline {
            width: Width::W16,
            len: 0,
            buf: [0; INLINE],
        }
    }
}

impl IntSet {
    fn bytes(&self) -> &[u8] {
        match self {
            IntSet::Inline { len, buf, .. } => &buf[..*len as usize],
            IntSet::Heap { data, .. } => data,
        }
    }

    fn w(&self) -> Width {
        match self {
            IntSet::Inline { width, .. } | IntSet::Heap { width, .. } => *width,
        }
    }

    fn store(&mut self, width: Width, bytes: &[u8]) {
        *self = if bytes.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            IntSet::Inline {
                width,
                len: bytes.len() as u8,
                buf,
            }
        } else {
            IntSet::Heap {
                width,
                data: bytes.into(),
            }
        };
    }

    fn edit(&mut self, f: impl FnOnce(&mut Scratch)) {
        let mut v = Scratch::from_slice(self.bytes());
        f(&mut v);
        self.store(self.w(), &v);
    }

    pub fn len(&self) -> usize {
        self.bytes().len() / self.w().bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The width of the entries in bytes (2, 4 or 8), as Redis's intset encoding field.
    pub fn width(&self) -> usize {
        self.w().bytes()
    }

    pub fn get(&self, i: usize) -> i64 {
        let w = self.w().bytes();
        let b = &self.bytes()[i * w..(i + 1) * w];
        match self.w() {
            Width::W16 => i16::from_le_bytes([b[0], b[1]]) as i64,
            Width::W32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            Width::W64 => i64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }

    fn encode(width: Width, v: i64) -> ([u8; 8], usize) {
        let mut out = [0u8; 8];
        match width {
            Width::W16 => out[..2].copy_from_slice(&(v as i16).to_le_bytes()),
            Width::W32 => out[..4].copy_from_slice(&(v as i32).to_le_bytes()),
            Width::W64 => out.copy_from_slice(&v.to_le_bytes()),
        }
        (out, width.bytes())
    }

    /// The position of `v`, or where it would go.
    fn search(&self, v: i64) -> Result<usize, usize> {
        if Width::of(v) > self.w() {
            // Wider than every entry: it is past one end.
            return Err(if v < 0 { 0 } else { self.len() });
        }
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Adds `v`; true if it is new. Widens every entry first if `v` needs more bits.
    pub fn insert(&mut self, v: i64) -> bool {
        let w = Width::of(v);
        if w > self.w() {
            let mut data = Scratch::with_capacity((self.len() + 1) * w.bytes());
            for i in 0..self.len() {
                let (b, n) = Self::encode(w, self.get(i));
                data.extend_from_slice(&b[..n]);
            }
            self.store(w, &data);
        }
        match self.search(v) {
            Ok(_) => false,
            Err(i) => {
                let (b, n) = Self::encode(self.w(), v);
                self.edit(|d| d.insert_from_slice(i * n, &b[..n]));
                true
            }
        }
    }

    /// Removes `v`; true if it was there. The width stays (as Redis's intset never narrows).
    pub fn remove(&mut self, v: i64) -> bool {
        match self.search(v) {
            Ok(i) => {
                self.remove_at(i);
                true
            }
            Err(_) => false,
        }
    }

    fn remove_at(&mut self, i: usize) -> i64 {
        let v = self.get(i);
        let w = self.w().bytes();
        self.edit(|d| {
            d.drain(i * w..(i + 1) * w);
        });
        v
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A set's hash table: members in a dense vector, and an index from member to position.
pub type Table = DenseTable<Bytes>;

impl Table {
    fn insert(&mut self, m: &[u8]) -> bool {
        self.get_or_push(m, || m.into()).1
    }
}

/// A set.
#[derive(Debug, Clone, PartialEq)]
pub enum Set {
    Ints(IntSet),
    /// Boxed: small sets are intsets, and a `Set` should stay the size of one.
    Table(Box<Table>),
}

impl Default for Set {
    /// An empty intset, as Redis creates for a set whose first member is an integer; the first
    /// member that is not one converts it.
    fn default() -> Self {
        Set::Ints(IntSet::default())
    }
}

impl Set {
    pub fn len(&self) -> usize {
        match self {
            Set::Ints(s) => s.len(),
            Set::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_intset(&self) -> bool {
        matches!(self, Set::Ints(_))
    }

    /// OBJECT ENCODING's name for the set's encoding.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => parse_i64(m).is_some_and(|v| s.contains(v)),
            Set::Table(t) => t.contains(m),
        }
    }

    pub fn contains_member(&self, m: Member) -> bool {
        match (self, m) {
            (Set::Ints(s), Member::Int(v)) => s.contains(v),
            _ => m.with_bytes(|b| self.contains(b)),
        }
    }

    /// Adds `m`; true if it is new.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        self.insert_limit(m, super::limits::max_intset_entries())
    }

    /// Adds `m` with `max_intset` as `set-max-intset-entries`.
    pub fn insert_limit(&mut self, m: &[u8], max_intset: usize) -> bool {
        if let Set::Ints(s) = self {
            match parse_i64(m) {
                Some(v) => {
                    if !s.insert(v) {
                        return false;
                    }
                    if s.len() > max_intset {
                        self.convert(0);
                    }
                    return true;
                }
                None => self.convert(1),
            }
        }
        match self {
            Set::Table(t) => t.insert(m),
            Set::Ints(_) => unreachable!("converted above"),
        }
    }

    /// Adds a member read from another set.
    pub fn insert_member(&mut self, m: Member) -> bool {
        match (&mut *self, m) {
            (Set::Ints(s), Member::Int(v)) if s.len() < super::limits::max_intset_entries() => {
                s.insert(v)
            }
            _ => m.with_bytes(|b| self.insert(b)),
        }
    }

    /// An intset becomes a table with room for `extra` more members.
    fn convert(&mut self, extra: usize) {
        if let Set::Ints(s) = self {
            let mut t = Table::with_capacity(s.len() + extra);
            let mut buf = itoa::Buffer::new();
            for v in s.iter() {
                t.insert(buf.format(v).as_bytes());
            }
            *self = Set::Table(Box::new(t));
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => parse_i64(m).is_some_and(|v| s.remove(v)),
            Set::Table(t) => t.remove(m).is_some(),
        }
    }

    /// The member at position `i` (< len): intsets in ascending order, tables in their own.
    pub fn get(&self, i: usize) -> Member<'_> {
        match self {
            Set::Ints(s) => Member::Int(s.get(i)),
            Set::Table(t) => Member::Bytes(t.at(i)),
        }
    }

    /// Removes the member at position `i` (< len), returning its bytes.
    pub fn remove_at(&mut self, i: usize) -> Vec<u8> {
        match self {
            Set::Ints(s) => itoa::Buffer::new()
                .format(s.remove_at(i))
                .as_bytes()
                .to_vec(),
            Set::Table(t) => t.remove_at(i).to_vec(),
        }
    }

    /// Every member: an intset's in ascending order (as Redis lists them).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Member<'_>> + '_> {
        match self {
            Set::Ints(s) => Box::new(s.iter().map(Member::Int)),
            Set::Table(t) => Box::new(t.iter().map(|m| Member::Bytes(m))),
        }
    }

    /// One SSCAN step: the next cursor (0 when done) and the members of this step. An intset
    /// is returned whole with cursor 0, as Redis does for its compact encodings; a table gives
    /// `count` members a step.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<Member<'_>>) {
        match self {
            Set::Ints(_) => (0, self.iter().collect()),
            Set::Table(t) => {
                let (next, positions) = t.scan(cursor, count);
                (next, positions.map(|i| self.get(i)).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn members(s: &Set) -> Vec<Vec<u8>> {
        s.iter().map(|m| m.to_vec()).collect()
    }

    #[test]
    fn intset_is_sorted_and_widens() {
        let mut s = IntSet::default();
        assert!(s.insert(5));
        assert!(s.insert(-3));
        assert!(!s.insert(5));
        assert_eq!(s.width(), 2);
        assert!(s.insert(70000));
        assert_eq!(s.width(), 4);
        assert!(s.insert(i64::MIN));
        assert_eq!(s.width(), 8);
        assert!(s.insert(i64::MAX));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [i64::MIN, -3, 5, 70000, i64::MAX]
        );
        assert!(s.remove(70000));
        assert!(!s.remove(70000));
        assert!(!s.contains(1 << 40));
        // Redis never narrows an intset.
        assert_eq!(s.width(), 8);
        assert!(s.contains(i64::MIN) && s.contains(-3));
    }

    #[test]
    fn a_wider_value_than_the_set_is_found_absent() {
        let mut s = IntSet::default();
        s.insert(1);
        assert!(!s.contains(1 << 20));
        assert!(!s.contains(-(1 << 40)));
        assert!(!s.remove(1 << 40));
    }

    #[test]
    fn small_integer_sets_stay_inline() {
        // The size of the box a Value points to (one 32-byte block of malloc), and no heap
        // buffer for 5 integers of 32 bits.
        assert_eq!(std::mem::size_of::<Set>(), 24);
        let mut s = IntSet::default();
        for v in 0..5 {
            s.insert(v * 100_000 - 200_000);
        }
        assert_eq!(s.width(), 4);
        assert!(matches!(s, IntSet::Inline { .. }));
        s.insert(1 << 40);
        assert!(matches!(s, IntSet::Heap { .. }));
        s.remove(1 << 40);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [-200_000, -100_000, 0, 100_000, 200_000]
        );
    }

    #[test]
    fn converts_past_the_intset_limit_and_on_a_string() {
        let mut s = Set::default();
        for i in 0..SET_MAX_INTSET_ENTRIES as i64 {
            assert!(s.insert(i.to_string().as_bytes()));
        }
        assert!(s.is_intset());
        assert!(s.insert(b"512"));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 513);
        assert!(s.contains(b"0") && s.contains(b"512"));

        let mut s = Set::default();
        s.insert(b"1");
        assert!(s.is_intset());
        // Not integers as Redis reads them: they make a table.
        for not_int in [&b"01"[..], b"+1", b" 1", b"-0", b"9223372036854775808"] {
            let mut t = s.clone();
            assert!(t.insert(not_int));
            assert!(!t.is_intset(), "{not_int:?}");
            assert!(t.contains(b"1") && t.contains(not_int));
        }
        // A table never goes back.
        let mut t = s.clone();
        t.insert(b"x");
        t.remove(b"x");
        assert_eq!(t.encoding(), "hashtable");
    }

    #[test]
    fn table_remove_keeps_the_index_right() {
        let mut s = Set::default();
        for i in 0..1000 {
            s.insert(format!("m{i}").as_bytes());
        }
        for i in (0..1000).step_by(3) {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        for i in 0..1000 {
            assert_eq!(s.contains(format!("m{i}").as_bytes()), i % 3 != 0, "{i}");
        }
        while !s.is_empty() {
            let m = s.remove_at(0);
            assert!(!s.contains(&m));
        }
    }

    #[test]
    fn scan_returns_every_member_present_throughout() {
        let mut s = Set::default();
        for i in 0..2000 {
            s.insert(format!("m{i}").as_bytes());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let (next, got) = s.scan(cursor, 10);
            seen.extend(got.iter().map(|m| m.to_vec()));
            // Churn: remove members already seen and add new ones between steps.
            step += 1;
            let victim = format!("m{}", step * 7 % 2000);
            if seen.contains(victim.as_bytes()) {
                s.remove(victim.as_bytes());
            }
            s.insert(format!("new{step}").as_bytes());
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..2000 {
            let m = format!("m{i}");
            if s.contains(m.as_bytes()) {
                assert!(seen.contains(m.as_bytes()), "{m} missed");
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(Vec<u8>),
        Remove(Vec<u8>),
        RemoveAt(usize),
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (-40i64..40).prop_map(|v| v.to_string().into_bytes()),
            any::<i64>().prop_map(|v| v.to_string().into_bytes()),
            "[a-c]{0,2}".prop_map(String::into_bytes),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => member().prop_map(Op::Add),
            2 => member().prop_map(Op::Remove),
            1 => any::<usize>().prop_map(Op::RemoveAt),
        ]
    }

    proptest! {
        #[test]
        fn behaves_as_a_hashset(ops in proptest::collection::vec(op(), 0..300), limit in 1usize..20) {
            let mut s = Set::default();
            let mut model: HashSet<Vec<u8>> = HashSet::new();
            for op in ops {
                match op {
                    Op::Add(m) => prop_assert_eq!(s.insert_limit(&m, limit), model.insert(m)),
                    Op::Remove(m) => prop_assert_eq!(s.remove(&m), model.remove(&m)),
                    Op::RemoveAt(i) if !model.is_empty() => {
                        let m = s.remove_at(i % s.len());
                        prop_assert!(model.remove(&m));
                    }
                    Op::RemoveAt(_) => {}
                }
                prop_assert_eq!(s.len(), model.len());
                if s.is_intset() {
                    prop_assert!(s.len() <= limit);
                    let v: Vec<i64> = s.iter().map(|m| match m { Member::Int(v) => v, _ => unreachable!() }).collect();
                    prop_assert!(v.windows(2).all(|w| w[0] < w[1]));
                }
            }
            let got: HashSet<Vec<u8>> = members(&s).into_iter().collect();
            prop_assert_eq!(&got, &model);
            for m in &model {
                prop_assert!(s.contains(m));
            }
        }
    }
}
