//! Lists, laid out as Redis's quicklist of listpacks: elements packed back to back in byte
//! buffers ("nodes"), a small list in one node, a long one in a chain of nodes, each bounded by
//! `list-max-listpack-size` (negative: bytes per node, -2 = 8 KB; positive: entries per node).
//!
//! Why: a list of short elements costs a few bytes per element instead of a heap block each,
//! and both ends stay O(1): a push or pop touches only the first or last node, whose size is
//! bounded.
//!
//! An entry is `header payload backlen`. The header says what follows (see `write_entry`):
//! strings that are canonical integers are kept in binary, as listpack does, so `"1234567"`
//! takes 5 bytes, not 9. `backlen` is the size of header + payload, written so that it can be
//! read from its last byte backwards: that is what lets RPOP and negative indexes walk a node
//! from its end.

use std::collections::VecDeque;

use super::limits::max_listpack_size;

/// A node with a count limit still stops at this many bytes (Redis's SIZE_SAFETY_LIMIT).
const SAFETY_LIMIT: usize = 8192;

/// True if a node of `bytes` bytes holding `count` entries is within the limit `fill`.
fn fits(bytes: usize, count: usize, fill: i32) -> bool {
    if fill >= 0 {
        count <= fill.max(1) as usize && bytes <= SAFETY_LIMIT
    } else {
        let max = match fill {
            -1 => 4096,
            -2 => 8192,
            -3 => 16384,
            -4 => 32768,
            _ => 65536,
        };
        bytes <= max
    }
}

/// An element as a node holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl<'a> Elem<'a> {
    /// The form a string is stored in: binary if it is an integer that prints back the same.
    pub fn of(b: &'a [u8]) -> Elem<'a> {
        match canonical_int(b) {
            Some(i) => Elem::Int(i),
            None => Elem::Bytes(b),
        }
    }

    /// Calls `f` with the element's bytes (an integer is printed on the stack).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Elem::Bytes(b) => f(b),
            Elem::Int(i) => f(itoa::Buffer::new().format(i).as_bytes()),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// True if this element is the string `other` (already converted with `Elem::of`).
    pub fn same(&self, other: &Elem) -> bool {
        self == other
    }
}

/// The integer `b` spells in Redis's canonical form (no sign but '-', no leading zeros, no
/// "-0"), which is the only form that prints back to the same bytes.
fn canonical_int(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let i: i64 = s.parse().ok()?;
    (itoa::Buffer::new().format(i).as_bytes() == b).then_some(i)
}

// Headers: 0x00..=0x7f an integer 0..=127 in the header itself; 0x80..=0xbf a string of
// 0..=63 bytes; 0xc0..=0xc7 an integer in 1..=8 little-endian bytes; STR16 and STR32 a string
// with a 2- or 4-byte length.
const STR6: u8 = 0x80;
const INT_N: u8 = 0xc0;
const STR16: u8 = 0xe0;
const STR32: u8 = 0xf0;

/// Bytes an integer needs in two's complement.
fn int_width(i: i64) -> usize {
    (1..8)
        .find(|&n| {
            let bits = 8 * n as u32;
            let min = -(1i64 << (bits - 1));
            let max = (1i64 << (bits - 1)) - 1;
            (min..=max).contains(&i)
        })
        .unwrap_or(8)
}

/// Size of header + payload.
fn body_len(e: Elem) -> usize {
    match e {
        Elem::Int(i) if (0..128).contains(&i) => 1,
        Elem::Int(i) => 1 + int_width(i),
        Elem::Bytes(b) if b.len() < 64 => 1 + b.len(),
        Elem::Bytes(b) if b.len() <= u16::MAX as usize => 3 + b.len(),
        Elem::Bytes(b) => 5 + b.len(),
    }
}

fn backlen_len(body: usize) -> usize {
    match body {
        0..=127 => 1,
        128..=16383 => 2,
        16384..=2097151 => 3,
        2097152..=268435455 => 4,
        _ => 5,
    }
}

/// The whole entry's size.
fn entry_len(e: Elem) -> usize {
    let body = body_len(e);
    body + backlen_len(body)
}

/// Writes `e` into `dst`, which is exactly `entry_len(e)` bytes.
fn write_entry(dst: &mut [u8], e: Elem) {
    let body = body_len(e);
    match e {
        Elem::Int(i) if (0..128).contains(&i) => dst[0] = i as u8,
        Elem::Int(i) => {
            let n = body - 1;
            dst[0] = INT_N + (n as u8 - 1);
            dst[1..=n].copy_from_slice(&i.to_le_bytes()[..n]);
        }
        Elem::Bytes(b) => {
            let at = match body - b.len() {
                1 => {
                    dst[0] = STR6 + b.len() as u8;
                    1
                }
                3 => {
                    dst[0] = STR16;
                    dst[1..3].copy_from_slice(&(b.len() as u16).to_le_bytes());
                    3
                }
                _ => {
                    dst[0] = STR32;
                    dst[1..5].copy_from_slice(&(b.len() as u32).to_le_bytes());
                    5
                }
            };
            dst[at..at + b.len()].copy_from_slice(b);
        }
    }
    // Backlen: 7 bits a byte, the lowest in the last byte; a set high bit means more bytes
    // come before it.
    let n = backlen_len(body);
    let back = &mut dst[body..body + n];
    let mut v = body;
    for i in (0..n).rev() {
        back[i] = (v & 0x7f) as u8 | if i == 0 { 0 } else { 0x80 };
        v >>= 7;
    }
}

/// The entry at `off`, and the offset of the next one.
#[inline]
fn read_entry(buf: &[u8], off: usize) -> (Elem<'_>, usize) {
    let h = buf[off];
    let (e, body) = match h {
        0..=0x7f => (Elem::Int(h as i64), 1),
        0x80..=0xbf => {
            let n = (h - STR6) as usize;
            (Elem::Bytes(&buf[off + 1..off + 1 + n]), 1 + n)
        }
        0xc0..=0xc7 => {
            let n = (h - INT_N) as usize + 1;
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&buf[off + 1..off + 1 + n]);
            // Sign-extend from n bytes.
            let shift = 64 - 8 * n as u32;
            let i = (i64::from_le_bytes(w) << shift) >> shift;
            (Elem::Int(i), 1 + n)
        }
        STR16 => {
            let n = u16::from_le_bytes([buf[off + 1], buf[off + 2]]) as usize;
            (Elem::Bytes(&buf[off + 3..off + 3 + n]), 3 + n)
        }
        _ => {
            let n = u32::from_le_bytes(buf[off + 1..off + 5].try_into().expect("4 bytes")) as usize;
            (Elem::Bytes(&buf[off + 5..off + 5 + n]), 5 + n)
        }
    };
    (e, off + body + backlen_len(body))
}

/// The offset of the entry that ends at `end`.
fn entry_before(buf: &[u8], end: usize) -> usize {
    let mut body = 0usize;
    let mut shift = 0;
    let mut p = end;
    loop {
        p -= 1;
        let b = buf[p];
        body |= ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    p - body
}

/// One packed buffer of entries: they live in `buf[head..]`. The gap before `head` makes both
/// ends O(1): a pop from the front only moves `head`, and a push to the front fills the gap
/// (made when the buffer grows for a front push) instead of moving the node's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    buf: Vec<u8>,
    head: u32,
    count: u32,
}

/// Capacity for `need` bytes: powers of two up to the node sizes, so that a full 8 KB node
/// has 8 KB of capacity, where doubling from its first entry's size would leave up to 40%
/// unused.
fn capacity_for(need: usize) -> usize {
    if need <= 65536 {
        need.next_power_of_two()
    } else {
        need
    }
}

impl Node {
    fn len(&self) -> usize {
        self.count as usize
    }

    /// The entries' bytes.
    fn data(&self) -> &[u8] {
        &self.buf[self.head as usize..]
    }

    fn size(&self) -> usize {
        self.buf.len() - self.head as usize
    }

    fn accepts(&self, e: Elem, fill: i32) -> bool {
        self.count == 0 || fits(self.size() + entry_len(e), self.len() + 1, fill)
    }

    /// Writes `e` as a new entry at byte offset `at` of the data.
    fn insert_at(&mut self, at: usize, e: Elem) {
        let n = entry_len(e);
        if at == 0 && self.count > 0 {
            if (self.head as usize) < n {
                // Rebuild with the free space in front, where the next pushes will go.
                let size = self.size();
                let cap = capacity_for(size + n).max(self.buf.capacity());
                let mut buf = vec![0u8; cap];
                buf[cap - size..].copy_from_slice(self.data());
                self.buf = buf;
                self.head = (cap - size) as u32;
            }
            self.head -= n as u32;
            let h = self.head as usize;
            write_entry(&mut self.buf[h..h + n], e);
            self.count += 1;
            return;
        }
        if self.buf.len() + n > self.buf.capacity() && self.head > 0 {
            // Reclaim the gap before growing: the node's bytes then stay within its limit's
            // power of two.
            self.buf.drain(..self.head as usize);
            self.head = 0;
        }
        let at = self.head as usize + at;
        let old = self.buf.len();
        if old + n > self.buf.capacity() {
            self.buf.reserve_exact(capacity_for(old + n) - old);
        }
        self.buf.resize(old + n, 0);
        self.buf.copy_within(at..old, at + n);
        write_entry(&mut self.buf[at..at + n], e);
        self.count += 1;
    }

    fn push_back(&mut self, e: Elem) {
        self.insert_at(self.size(), e);
    }

    fn push_front(&mut self, e: Elem) {
        self.insert_at(0, e);
    }

    /// Removes the entry at byte offset `at` of the data, whose next entry starts at `next`.
    fn remove_at(&mut self, at: usize, next: usize) {
        self.count -= 1;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        } else if at == 0 {
            self.head += next as u32;
        } else {
            let head = self.head as usize;
            self.buf.drain(head + at..head + next);
        }
    }

    /// Pops the first or last entry, handing it to `f` first.
    fn pop_with<R>(&mut self, end: End, f: impl FnOnce(Elem) -> R) -> Option<R> {
        if self.count == 0 {
            return None;
        }
        let data = self.data();
        let (at, next) = match end {
            End::Left => (0, read_entry(data, 0).1),
            End::Right => (entry_before(data, data.len()), data.len()),
        };
        let r = f(read_entry(data, at).0);
        self.remove_at(at, next);
        Some(r)
    }

    /// Byte offset of entry `i` (≤ len) in the data, walking from the closer end.
    fn offset_of(&self, i: usize) -> usize {
        let data = self.data();
        if i <= self.len() / 2 {
            let mut off = 0;
            for _ in 0..i {
                off = read_entry(data, off).1;
            }
            off
        } else {
            let mut off = data.len();
            for _ in i..self.len() {
                off = entry_before(data, off);
            }
            off
        }
    }

    /// Removes the first `n` (≤ len) entries.
    fn remove_front(&mut self, n: usize) {
        let off = self.offset_of(n);
        self.head += off as u32;
        self.count -= n as u32;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
    }

    /// Removes the last `n` (≤ len) entries.
    fn remove_back(&mut self, n: usize) {
        let off = self.offset_of(self.len() - n);
        self.buf.truncate(self.head as usize + off);
        self.count -= n as u32;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
    }

    /// Moves the second half of the entries into a new node.
    fn split(&mut self) -> Node {
        let keep = self.len() / 2;
        let off = self.offset_of(keep);
        let tail = Node {
            buf: self.data()[off..].to_vec(),
            head: 0,
            count: self.count - keep as u32,
        };
        let head = self.head as usize;
        self.buf.truncate(head + off);
        self.buf.drain(..head);
        self.buf.shrink_to_fit();
        self.head = 0;
        self.count = keep as u32;
        tail
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = Elem<'_>> + '_ {
        let buf = self.data();
        NodeIter {
            buf,
            front: 0,
            back: buf.len(),
        }
    }
}

struct NodeIter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = Elem<'a>;
    fn next(&mut self) -> Option<Elem<'a>> {
        if self.front >= self.back {
            return None;
        }
        let (e, next) = read_entry(self.buf, self.front);
        self.front = next;
        Some(e)
    }
}

impl DoubleEndedIterator for NodeIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back = entry_before(self.buf, self.back);
        Some(read_entry(self.buf, self.back).0)
    }
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl End {
    pub fn other(self) -> End {
        match self {
            End::Left => End::Right,
            End::Right => End::Left,
        }
    }
}

/// A list: one node while it fits in one, a chain of nodes after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum List {
    Packed(Node),
    Chain(Box<Chain>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    nodes: VecDeque<Node>,
    len: usize,
}

impl Default for List {
    fn default() -> Self {
        List::Packed(Node::default())
    }
}

impl List {
    pub fn len(&self) -> usize {
        match self {
            List::Packed(n) => n.len(),
            List::Chain(c) => c.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING's name: Redis 7.0 makes every list a quicklist, however small (7.2
    /// says `listpack` while it is one node).
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// True once the list has outgrown one node (OBJECT ENCODING's `quicklist` in Redis 7.2;
    /// 7.0 says `quicklist` for every list).
    pub fn is_chained(&self) -> bool {
        matches!(self, List::Chain(_))
    }

    /// How many packed nodes hold the list: what freeing it costs (see `lazyfree`).
    pub fn node_count(&self) -> usize {
        match self {
            List::Packed(_) => 1,
            List::Chain(c) => c.nodes.len(),
        }
    }

    /// The nodes' bytes as listpacks (their entries plus a listpack's 7 bytes of header and
    /// end mark): DEBUG OBJECT's `ql_uncompressed_size`.
    pub fn listpack_bytes(&self) -> usize {
        self.nodes().map(|n| n.size() + 7).sum()
    }

    /// The nodes, in order (a chain's deque made contiguous).
    fn nodes_mut(&mut self) -> &mut [Node] {
        match self {
            List::Packed(n) => std::slice::from_mut(n),
            List::Chain(c) => c.nodes.make_contiguous(),
        }
    }

    fn nodes(&self) -> impl DoubleEndedIterator<Item = &Node> + '_ {
        let (a, b): (&[Node], &[Node]) = match self {
            List::Packed(n) => (std::slice::from_ref(n), &[]),
            List::Chain(c) => c.nodes.as_slices(),
        };
        a.iter().chain(b.iter())
    }

    /// The chain, converting a packed list into a chain of its one node.
    fn chain(&mut self) -> &mut Chain {
        if let List::Packed(n) = self {
            let node = std::mem::take(n);
            let len = node.len();
            *self = List::Chain(Box::new(Chain {
                nodes: VecDeque::from([node]),
                len,
            }));
        }
        match self {
            List::Chain(c) => c,
            List::Packed(_) => unreachable!("converted above"),
        }
    }

    pub fn push(&mut self, end: End, v: &[u8]) {
        self.push_with(end, v, max_listpack_size())
    }

    pub fn push_with(&mut self, end: End, v: &[u8], fill: i32) {
        let e = Elem::of(v);
        if let List::Packed(n) = self {
            if n.accepts(e, fill) {
                match end {
                    End::Left => n.push_front(e),
                    End::Right => n.push_back(e),
                }
                return;
            }
        }
        let c = self.chain();
        c.len += 1;
        let node = match end {
            End::Left => c.nodes.front_mut(),
            End::Right => c.nodes.back_mut(),
        }
        .filter(|n| n.accepts(e, fill));
        let node = match node {
            Some(n) => n,
            None => {
                match end {
                    End::Left => c.nodes.push_front(Node::default()),
                    End::Right => c.nodes.push_back(Node::default()),
                }
                match end {
                    End::Left => c.nodes.front_mut(),
                    End::Right => c.nodes.back_mut(),
                }
                .expect("just pushed")
            }
        };
        match end {
            End::Left => node.push_front(e),
            End::Right => node.push_back(e),
        }
    }

    /// Pops an element and hands it to `f` before it is gone: no copy unless `f` makes one.
    pub fn pop_with<R>(&mut self, end: End, f: impl FnOnce(Elem) -> R) -> Option<R> {
        let (node, emptied) = match self {
            List::Packed(n) => (n, false),
            List::Chain(c) => {
                let n = match end {
                    End::Left => c.nodes.front_mut()?,
                    End::Right => c.nodes.back_mut()?,
                };
                c.len -= 1;
                let emptied = n.count == 1;
                (n, emptied)
            }
        };
        let r = node.pop_with(end, f)?;
        if emptied {
            if let List::Chain(c) = self {
                match end {
                    End::Left => c.nodes.pop_front(),
                    End::Right => c.nodes.pop_back(),
                };
            }
        }
        Some(r)
    }

    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        self.pop_with(end, |e| e.to_vec())
    }

    /// Node index and entry index within it of element `i` (< len).
    fn locate(&self, mut i: usize) -> (usize, usize) {
        let len = self.len();
        if i > len / 2 {
            // From the tail: node counts summed backwards.
            let mut from_end = len - i;
            let n = self.nodes().count();
            for (k, node) in self.nodes().rev().enumerate() {
                if from_end <= node.len() {
                    return (n - 1 - k, node.len() - from_end);
                }
                from_end -= node.len();
            }
            unreachable!("index within the list");
        }
        for (k, node) in self.nodes().enumerate() {
            if i < node.len() {
                return (k, i);
            }
            i -= node.len();
        }
        unreachable!("index within the list")
    }

    pub fn get(&self, i: usize) -> Option<Elem<'_>> {
        if i >= self.len() {
            return None;
        }
        let (k, j) = self.locate(i);
        let node = self.nodes().nth(k).expect("located");
        Some(read_entry(node.data(), node.offset_of(j)).0)
    }

    /// Elements from index `i` to the tail.
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = Elem<'_>> + '_ {
        let (k, j) = if i >= self.len() {
            (usize::MAX, 0)
        } else {
            self.locate(i)
        };
        self.nodes()
            .enumerate()
            .skip(k.min(usize::MAX - 1))
            .flat_map(move |(n, node)| node.iter().skip(if n == k { j } else { 0 }))
    }

    /// Calls `f` on `n` elements from index `first` (fewer if the list ends first): LRANGE's
    /// loop, kept free of iterator adaptors because it runs once per element replied.
    pub fn for_range(&self, first: usize, mut n: usize, mut f: impl FnMut(Elem)) {
        if n == 0 || first >= self.len() {
            return;
        }
        let (k, j) = self.locate(first);
        for (i, node) in self.nodes().skip(k).enumerate() {
            let data = node.data();
            let mut off = if i == 0 { node.offset_of(j) } else { 0 };
            while off < data.len() {
                let (e, next) = read_entry(data, off);
                f(e);
                n -= 1;
                if n == 0 {
                    return;
                }
                off = next;
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Elem<'_>> + '_ {
        self.nodes().flat_map(|n| n.iter())
    }

    /// Elements from the tail towards the head.
    pub fn iter_rev(&self) -> impl Iterator<Item = Elem<'_>> + '_ {
        self.nodes().rev().flat_map(|n| n.iter().rev())
    }

    /// Splits node `k` if it has outgrown the limit.
    fn split_if_needed(&mut self, k: usize, fill: i32) {
        let node = &self.nodes_mut()[k];
        if node.len() <= 1 || fits(node.size(), node.len(), fill) {
            return;
        }
        let c = self.chain();
        let tail = c.nodes[k].split();
        c.nodes.insert(k + 1, tail);
        self.split_if_needed(k + 1, fill);
        self.split_if_needed(k, fill);
    }

    /// Replaces element `i` (< len).
    pub fn set(&mut self, i: usize, v: &[u8]) {
        self.set_with(i, v, max_listpack_size())
    }

    pub fn set_with(&mut self, i: usize, v: &[u8], fill: i32) {
        let (k, j) = self.locate(i);
        let node = &mut self.nodes_mut()[k];
        let at = node.offset_of(j);
        let next = read_entry(node.data(), at).1;
        node.remove_at(at, next);
        node.insert_at(at, Elem::of(v));
        self.split_if_needed(k, fill);
    }

    /// Inserts `v` so that it becomes element `i` (≤ len).
    pub fn insert(&mut self, i: usize, v: &[u8]) {
        self.insert_with(i, v, max_listpack_size())
    }

    pub fn insert_with(&mut self, i: usize, v: &[u8], fill: i32) {
        if i == 0 {
            return self.push_with(End::Left, v, fill);
        }
        if i >= self.len() {
            return self.push_with(End::Right, v, fill);
        }
        let (k, j) = self.locate(i);
        let node = &mut self.nodes_mut()[k];
        let at = node.offset_of(j);
        node.insert_at(at, Elem::of(v));
        if let List::Chain(c) = self {
            c.len += 1;
        }
        self.split_if_needed(k, fill);
    }

    /// Keeps only the elements for which `keep(index, element)` is true; returns how many
    /// went. Nodes left empty are dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(usize, Elem) -> bool) -> usize {
        let mut index = 0;
        let mut removed = 0;
        for node in self.nodes_mut() {
            let mut out = Vec::new();
            let mut count = 0u32;
            let mut off = 0;
            let mut changed = false;
            let data = node.data();
            while off < data.len() {
                let (e, next) = read_entry(data, off);
                if keep(index, e) {
                    out.extend_from_slice(&data[off..next]);
                    count += 1;
                } else {
                    changed = true;
                    removed += 1;
                }
                index += 1;
                off = next;
            }
            if changed {
                node.buf = out;
                node.head = 0;
                node.count = count;
            }
        }
        if let List::Chain(c) = self {
            c.len -= removed;
            c.nodes.retain(|n| n.count > 0);
        }
        removed
    }

    /// Removes `n` elements from one end.
    pub fn remove_end(&mut self, end: End, mut n: usize) {
        n = n.min(self.len());
        match self {
            List::Packed(node) => match end {
                End::Left => node.remove_front(n),
                End::Right => node.remove_back(n),
            },
            List::Chain(c) => {
                c.len -= n;
                while n > 0 {
                    let node = match end {
                        End::Left => c.nodes.front_mut(),
                        End::Right => c.nodes.back_mut(),
                    }
                    .expect("n ≤ len");
                    if node.len() <= n {
                        n -= node.len();
                        match end {
                            End::Left => c.nodes.pop_front(),
                            End::Right => c.nodes.pop_back(),
                        };
                        continue;
                    }
                    match end {
                        End::Left => node.remove_front(n),
                        End::Right => node.remove_back(n),
                    }
                    n = 0;
                }
            }
        }
    }

    /// Heap bytes held (for INFO-style accounting and the memory tests).
    pub fn heap_bytes(&self) -> usize {
        self.nodes().map(|n| n.buf.capacity()).sum::<usize>()
            + match self {
                List::Packed(_) => 0,
                List::Chain(c) => {
                    std::mem::size_of::<Chain>() + c.nodes.capacity() * std::mem::size_of::<Node>()
                }
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(|e| e.to_vec()).collect()
    }

    #[test]
    fn entries_round_trip_every_encoding() {
        let long = vec![b'x'; 70000];
        let mid = vec![b'y'; 300];
        let samples: Vec<&[u8]> = vec![
            b"",
            b"0",
            b"127",
            b"128",
            b"-1",
            b"-128",
            b"-129",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"9223372036854775808",
            b"007",
            b"-0",
            b"+1",
            b"hello",
            &mid,
            &long,
        ];
        let mut l = List::default();
        for s in &samples {
            l.push_with(End::Right, s, -5);
        }
        let got = all(&l);
        let want: Vec<Vec<u8>> = samples.iter().map(|s| s.to_vec()).collect();
        assert_eq!(got, want);
        let mut rev: Vec<Vec<u8>> = l.iter_rev().map(|e| e.to_vec()).collect();
        rev.reverse();
        assert_eq!(rev, want);
        assert_eq!(Elem::of(b"007"), Elem::Bytes(b"007"));
        assert_eq!(Elem::of(b"-42"), Elem::Int(-42));
    }

    #[test]
    fn small_ints_take_two_bytes_and_short_strings_two_more_than_their_length() {
        assert_eq!(entry_len(Elem::of(b"5")), 2);
        assert_eq!(entry_len(Elem::of(b"1234567")), 5);
        assert_eq!(entry_len(Elem::of(b"abc")), 5);
    }

    #[test]
    fn a_list_becomes_a_chain_past_the_node_limit() {
        let mut l = List::default();
        for i in 0..5 {
            l.push_with(End::Right, format!("e{i}").as_bytes(), 5);
        }
        assert!(!l.is_chained());
        l.push_with(End::Right, b"e5", 5);
        assert!(l.is_chained());
        let mut l = List::default();
        for _ in 0..2000 {
            l.push_with(End::Left, b"abcdefgh", -2);
        }
        // 8 KB nodes of 10-byte entries: about 819 to a node.
        let nodes = l.nodes().count();
        assert_eq!(nodes, 3, "nodes: {nodes}");
        assert!(l.nodes().all(|n| n.size() <= 8192));
    }

    /// Both ends touch one node: pushing and popping a million elements at the ends stays
    /// fast (a quadratic layout would take minutes here).
    #[test]
    fn ends_are_constant_time() {
        let mut l = List::default();
        for i in 0..1_000_000u32 {
            let end = if i % 2 == 0 { End::Left } else { End::Right };
            l.push_with(end, &i.to_le_bytes(), -2);
        }
        assert_eq!(l.len(), 1_000_000);
        let mut popped = 0;
        while l.pop(End::Left).is_some() {
            popped += 1;
            if l.pop(End::Right).is_some() {
                popped += 1;
            }
        }
        assert_eq!(popped, 1_000_000);
        assert!(l.is_empty());
    }

    #[test]
    fn huge_elements_get_a_node_each() {
        let big = vec![b'z'; 10000];
        let mut l = List::default();
        l.push_with(End::Right, b"a", -2);
        l.push_with(End::Right, &big, -2);
        l.push_with(End::Right, b"b", -2);
        assert_eq!(l.nodes().count(), 3);
        assert_eq!(l.get(1).unwrap().to_vec(), big);
        l.set_with(0, &big, -2);
        assert_eq!(l.len(), 3);
        assert_eq!(all(&l), vec![big.clone(), big.clone(), b"b".to_vec()]);
    }

    mod model {
        use super::super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Push(bool, Vec<u8>),
            Pop(bool),
            Set(usize, Vec<u8>),
            Insert(usize, Vec<u8>),
            RemoveEvery(u8),
            RemoveEnd(bool, usize),
        }

        fn elem() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                (0i64..300).prop_map(|i| i.to_string().into_bytes()),
                any::<i64>().prop_map(|i| i.to_string().into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..80),
                proptest::collection::vec(any::<u8>(), 0..3000),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (any::<bool>(), elem()).prop_map(|(l, e)| Op::Push(l, e)),
                3 => any::<bool>().prop_map(Op::Pop),
                1 => (any::<usize>(), elem()).prop_map(|(i, e)| Op::Set(i, e)),
                2 => (any::<usize>(), elem()).prop_map(|(i, e)| Op::Insert(i, e)),
                1 => (2u8..6).prop_map(Op::RemoveEvery),
                1 => (any::<bool>(), 0usize..20).prop_map(|(l, n)| Op::RemoveEnd(l, n)),
            ]
        }

        fn end(left: bool) -> End {
            if left {
                End::Left
            } else {
                End::Right
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn matches_a_vecdeque(ops in proptest::collection::vec(op(), 0..200),
                                  fill in prop_oneof![Just(-1), Just(-2), Just(1), Just(3), Just(7)]) {
                let mut l = List::default();
                let mut m: VecDeque<Vec<u8>> = VecDeque::new();
                for op in ops {
                    match op {
                        Op::Push(left, e) => {
                            l.push_with(end(left), &e, fill);
                            if left { m.push_front(e) } else { m.push_back(e) }
                        }
                        Op::Pop(left) => {
                            let want = if left { m.pop_front() } else { m.pop_back() };
                            prop_assert_eq!(l.pop(end(left)), want);
                        }
                        Op::Set(i, e) => if !m.is_empty() {
                            let i = i % m.len();
                            l.set_with(i, &e, fill);
                            m[i] = e;
                        },
                        Op::Insert(i, e) => {
                            let i = i % (m.len() + 1);
                            l.insert_with(i, &e, fill);
                            m.insert(i, e);
                        }
                        Op::RemoveEvery(k) => {
                            let k = k as usize;
                            let n = l.retain(|i, _| i % k != 0);
                            let before = m.len();
                            let mut i = 0;
                            m.retain(|_| { i += 1; (i - 1) % k != 0 });
                            prop_assert_eq!(n, before - m.len());
                        }
                        Op::RemoveEnd(left, n) => {
                            l.remove_end(end(left), n);
                            for _ in 0..n.min(m.len()) {
                                if left { m.pop_front(); } else { m.pop_back(); }
                            }
                        }
                    }
                    prop_assert_eq!(l.len(), m.len());
                    prop_assert!(l.nodes().all(|n| n.count > 0) || !l.is_chained());
                    prop_assert!(l.nodes().all(|n| n.len() == 1 || fits(n.size(), n.len(), fill)));
                }
                let got: Vec<Vec<u8>> = l.iter().collect::<Vec<_>>().iter().map(|e| e.to_vec()).collect();
                let want: Vec<Vec<u8>> = m.iter().cloned().collect();
                prop_assert_eq!(&got, &want);
                let mut rev: Vec<Vec<u8>> = l.iter_rev().map(|e| e.to_vec()).collect();
                rev.reverse();
                prop_assert_eq!(&rev, &want);
                for i in 0..m.len() {
                    prop_assert_eq!(l.get(i).map(|e| e.to_vec()), Some(m[i].clone()));
                    let from: Vec<Vec<u8>> = l.iter_from(i).map(|e| e.to_vec()).collect();
                    prop_assert_eq!(&from[..], &want[i..]);
                    let mut ranged = Vec::new();
                    l.for_range(i, 7, |e| ranged.push(e.to_vec()));
                    prop_assert_eq!(&ranged[..], &want[i..(i + 7).min(want.len())]);
                }
                prop_assert_eq!(l.get(m.len()), None);
            }
        }
    }
}
