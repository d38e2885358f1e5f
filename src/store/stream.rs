//! Streams (Redis's t_stream.c and stream.h): an append-only log of entries, each an ID and
//! field-value pairs, with consumer groups.
//!
//! Entries are packed per node as Redis packs them in the listpacks of its radix tree: a node
//! holds up to `stream-node-max-entries` entries (and about `stream-node-max-bytes`), its key
//! is its first ("master") ID, and each entry stores its ID as deltas from that ID and, when
//! its fields are the master entry's (the usual case: every entry of a stream has the same
//! fields), only its values. Deletion only flags an entry, as in Redis; a node whose entries
//! are all deleted goes, and trimming drops whole nodes. The encoding here is varints instead
//! of listpack elements (about half the bytes), but where a node ends is decided by the size
//! Redis's listpack would have (`lp_size`), so that `~` trimming, which removes whole nodes
//! only, leaves exactly what Redis leaves.

use std::collections::{BTreeMap, BTreeSet};

use super::bytes::CompactBytes as Bytes;

/// An entry ID: milliseconds and a sequence number, ordered as a pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// The next ID, None past the last one (Redis's streamIncrID failing).
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID, None before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    /// `ms-seq`, as replies and records show it.
    pub fn to_bytes(self) -> Vec<u8> {
        format!("{}-{}", self.ms, self.seq).into_bytes()
    }

    /// Parses an ID as a client gives it (Redis's streamGenericParseIDOrReply): `ms-seq`, or
    /// `ms` alone (the sequence is then `missing_seq`); `-` and `+` unless `strict`; `ms-*`
    /// when `seq_star` (the second value is then false: the sequence is to be generated).
    pub fn parse(
        arg: &[u8],
        missing_seq: u64,
        strict: bool,
        seq_star: bool,
    ) -> Option<(StreamId, bool)> {
        if arg.len() > 127 {
            return None;
        }
        // The C string ends at a NUL.
        let arg = arg.split(|&b| b == 0).next().unwrap_or(&[]);
        match arg {
            b"-" | b"+" if strict => return None,
            b"-" => return Some((StreamId::MIN, true)),
            b"+" => return Some((StreamId::MAX, true)),
            _ => {}
        }
        let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
            Some(i) => (&arg[..i], Some(&arg[i + 1..])),
            None => (arg, None),
        };
        let ms = string2ull(ms)?;
        match seq {
            Some(b"*") if seq_star => Some((StreamId::new(ms, 0), false)),
            Some(s) => Some((StreamId::new(ms, string2ull(s)?), true)),
            None => Some((StreamId::new(ms, missing_seq), true)),
        }
    }
}

/// Redis's string2ull: a strict integer, or else what C's strtoull accepts in full (leading
/// space, a sign, leading zeros; a minus sign negates, modulo 2^64), but not a negative
/// strict integer.
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = strict_i64(s) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Redis's string2ll / lpStringToInt64: no sign but '-', no leading zeros, no spaces.
pub fn strict_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// The bytes a listpack element holding integer `v` takes (encoding and back-length).
fn lp_int_size(v: i64) -> usize {
    match v {
        0..=127 => 2,
        -4096..=4095 => 3,
        -32768..=32767 => 4,
        -8_388_608..=8_388_607 => 5,
        -2_147_483_648..=2_147_483_647 => 6,
        _ => 10,
    }
}

/// The bytes a listpack element holding `s` takes: as an integer if it reads as one.
fn lp_str_size(s: &[u8]) -> usize {
    if let Some(v) = strict_i64(s) {
        return lp_int_size(v);
    }
    let n = s.len();
    let enc = if n < 64 {
        1 + n
    } else if n < 4096 {
        2 + n
    } else {
        5 + n
    };
    enc + match enc {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Redis's STREAM_LISTPACK_MAX_SIZE.
const LISTPACK_MAX: usize = 1 << 30;

const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = data[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn get_bytes<'a>(data: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = get_varint(data, pos) as usize;
    let s = &data[*pos..*pos + n];
    *pos += n;
    s
}

/// Entries from one master ID on. Each entry: flags, ms delta, seq (a delta from the master's
/// when the ms delta is 0, else the sequence itself), then the values (SAME_FIELDS) or a
/// count and the pairs; strings are a varint length and the bytes.
#[derive(Clone, Debug, PartialEq)]
struct Node {
    fields: Box<[Bytes]>,
    data: Vec<u8>,
    live: u32,
    deleted: u32,
    /// What Redis's listpack for this node would take, but for its two counters.
    lp_base: u32,
}

impl Node {
    /// Encodes entry `id` with `flags` at the end: its field-value `pairs`, of which only the
    /// values when the flags say it has the master entry's fields.
    fn put_entry(&mut self, master: StreamId, id: StreamId, flags: u8, pairs: &[&[u8]]) {
        let dms = id.ms.wrapping_sub(master.ms);
        let dseq = id.seq.wrapping_sub(master.seq);
        let same = flags & SAME_FIELDS != 0;
        self.data.push(flags);
        put_varint(&mut self.data, dms);
        put_varint(&mut self.data, if dms == 0 { dseq } else { id.seq });
        if !same {
            put_varint(&mut self.data, (pairs.len() / 2) as u64);
        }
        for (i, s) in pairs.iter().enumerate() {
            if same && i % 2 == 0 {
                continue;
            }
            put_varint(&mut self.data, s.len() as u64);
            self.data.extend_from_slice(s);
        }
    }

    fn lp_bytes(&self) -> usize {
        self.lp_base as usize
            + lp_int_size(i64::from(self.live))
            + lp_int_size(i64::from(self.deleted))
    }

    /// Decodes the entry at `pos`: its flags, ID and where its body starts.
    fn head(&self, master: StreamId, pos: usize) -> (u8, StreamId, usize) {
        let mut p = pos;
        let flags = self.data[p];
        p += 1;
        let dms = get_varint(&self.data, &mut p);
        let s = get_varint(&self.data, &mut p);
        let id = if dms == 0 {
            StreamId::new(master.ms, master.seq.wrapping_add(s))
        } else {
            StreamId::new(master.ms.wrapping_add(dms), s)
        };
        (flags, id, p)
    }

    /// Where the entry whose body starts at `body` ends.
    fn skip_body(&self, flags: u8, body: usize) -> usize {
        let mut p = body;
        let n = if flags & SAME_FIELDS != 0 {
            self.fields.len()
        } else {
            get_varint(&self.data, &mut p) as usize * 2
        };
        for _ in 0..n {
            get_bytes(&self.data, &mut p);
        }
        p
    }

    /// The start of every entry, deleted ones included.
    fn offsets(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity((self.live + self.deleted) as usize);
        let mut p = 0;
        while p < self.data.len() {
            out.push(p);
            let flags = self.data[p];
            let mut q = p + 1;
            get_varint(&self.data, &mut q);
            get_varint(&self.data, &mut q);
            p = self.skip_body(flags, q);
        }
        out
    }
}

/// One entry, borrowed from its node.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    pub id: StreamId,
    node: &'a Node,
    flags: u8,
    body: usize,
}

impl<'a> Entry<'a> {
    /// Deleted (XDEL, or trimmed out of a node that stays): only a node's walk shows these.
    pub fn is_deleted(&self) -> bool {
        self.flags & DELETED != 0
    }

    /// Stored with the master entry's fields, as its values only.
    pub fn has_master_fields(&self) -> bool {
        self.flags & SAME_FIELDS != 0
    }

    pub fn num_fields(&self) -> usize {
        if self.flags & SAME_FIELDS != 0 {
            self.node.fields.len()
        } else {
            let mut p = self.body;
            get_varint(&self.node.data, &mut p) as usize
        }
    }

    /// The entry's field-value pairs, in the order they were added.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let node = self.node;
        let same = self.flags & SAME_FIELDS != 0;
        let mut p = self.body;
        let n = if same {
            node.fields.len()
        } else {
            get_varint(&node.data, &mut p) as usize
        };
        (0..n).map(move |i| {
            if same {
                (&*node.fields[i], get_bytes(&node.data, &mut p))
            } else {
                let f = get_bytes(&node.data, &mut p);
                (f, get_bytes(&node.data, &mut p))
            }
        })
    }
}

/// A pending entry of a group: delivered, not yet acknowledged (Redis's streamNACK).
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    pub delivery_time: i64,
    pub delivery_count: u64,
    pub consumer: Box<[u8]>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Consumer {
    pub seen_time: i64,
    /// The IDs of its pending entries (their details are in the group's PEL).
    pub pel: BTreeSet<StreamId>,
}

/// Redis's SCG_INVALID_ENTRIES_READ.
pub const INVALID_ENTRIES_READ: i64 = -1;

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    /// How many entries the group has read, -1 when unknown (then lag is estimated).
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    /// By name, in byte order (as Redis's rax lists them).
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Adds a consumer seen at `now`; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.into(),
            Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Removes a consumer and its pending entries; how many it had (None: no such consumer).
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Acknowledges `id`: true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&nack.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Makes `id` pending for `consumer` (which exists), delivered at `now` for the first
    /// time; an entry pending for another consumer moves to this one (XGROUP SETID can make
    /// a group deliver an entry again).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: i64) {
        let old = self.pel.insert(
            id,
            Nack {
                delivery_time: now,
                delivery_count: 1,
                consumer: consumer.into(),
            },
        );
        if let Some(old) = old {
            if &*old.consumer != consumer {
                if let Some(c) = self.consumers.get_mut(&old.consumer) {
                    c.pel.remove(&id);
                }
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Gives pending entry `id` to `consumer` (which exists).
    pub fn reassign(&mut self, id: StreamId, consumer: &[u8]) {
        let Some(nack) = self.pel.get_mut(&id) else {
            return;
        };
        if &*nack.consumer != consumer {
            if let Some(c) = self.consumers.get_mut(&nack.consumer) {
                c.pel.remove(&id);
            }
            nack.consumer = consumer.into();
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not above the last one (EDOM).
    IdTooSmall,
    /// Fields and values over 1 GB (ERANGE).
    TooLarge,
}

/// The node limits (`stream-node-max-bytes`, `stream-node-max-entries`).
#[derive(Clone, Copy)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    /// By name, in byte order.
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

impl Stream {
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// An estimate of the heap bytes held (MEMORY USAGE): the nodes' buffers and field names,
    /// a B-tree slot per node, and each group's pending entries and consumers.
    pub fn heap_bytes(&self) -> usize {
        let nodes: usize = self
            .nodes
            .values()
            .map(|n| n.data.capacity() + n.fields.len() * 16 + 64)
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| name.len() + 96 + g.pel.len() * 64 + g.consumers.len() * 96)
            .sum();
        nodes + groups
    }

    /// The nodes, in ID order, as a file stores them.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'_>> {
        self.nodes
            .iter()
            .map(|(&master, node)| NodeView { master, node })
    }

    /// Adds a node read from a file, whose listpack took `lp_bytes` with counters `lp_live`
    /// and `lp_deleted` in its master entry (what later appends to it are measured against).
    /// False if the node has no entry, or its entries are not all above those of the nodes
    /// before it. The stream's length counts its live entries.
    pub fn add_loaded_node(
        &mut self,
        b: NodeBuilder,
        lp_bytes: usize,
        lp_live: i64,
        lp_deleted: i64,
    ) -> bool {
        if b.last.is_none() {
            return false;
        }
        if let Some((&prev_master, prev)) = self.nodes.last_key_value() {
            let prev_last = prev.offsets().last().map(|&p| prev.head(prev_master, p).1);
            if prev_last.is_some_and(|l| b.master <= l) {
                return false;
            }
        }
        let mut node = b.node;
        let counters = lp_int_size(lp_live) + lp_int_size(lp_deleted);
        node.lp_base = lp_bytes.saturating_sub(counters).min(u32::MAX as usize) as u32;
        self.length += u64::from(node.live);
        self.nodes.insert(b.master, node);
        true
    }

    /// How many nodes (Redis's listpacks: XINFO's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes Redis's radix tree would have for these node keys (XINFO's
    /// radix-tree-nodes): the root, every child of a position where keys branch, and every
    /// position where a run of single-child positions ends (leaves, here, as no 16-byte key
    /// is a prefix of another).
    pub fn rax_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self
            .nodes
            .keys()
            .map(|id| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&id.ms.to_be_bytes());
                k[8..].copy_from_slice(&id.seq.to_be_bytes());
                k
            })
            .collect();
        if keys.is_empty() {
            return 1;
        }
        // Per depth d (prefix length), the runs of keys sharing a prefix of length d, as
        // the index of each run's first key; the children of a prefix are its runs at d + 1.
        let mut count = 1;
        let n = keys.len();
        // Starts of prefix groups at each depth, computed from adjacent differences: the
        // first byte where keys i-1 and i differ.
        let mut diff = vec![0usize; n];
        for i in 1..n {
            diff[i] = (0..16)
                .find(|&d| keys[i - 1][d] != keys[i][d])
                .unwrap_or(16);
        }
        // A prefix of length d (d >= 1) is a group of keys [a, b) with diff > d - 1 inside;
        // its number of children: 1 + the inner positions where diff == d (for d < 16).
        // Position v at depth d counts if its parent (depth d - 1) has >= 2 children, or if
        // v itself has != 1 children.
        let groups_at = |d: usize| -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            let mut a = 0;
            for i in (1..=n).filter(|&i| i == n || diff[i] < d) {
                out.push((a, i));
                a = i;
            }
            out
        };
        let children = |(a, b): (usize, usize), d: usize| -> usize {
            if d == 16 {
                0
            } else {
                1 + (a + 1..b).filter(|&i| diff[i] == d).count()
            }
        };
        let mut parents = groups_at(0);
        for d in 1..=16 {
            let here = groups_at(d);
            let mut pi = 0;
            for &g in &here {
                while parents[pi].1 <= g.0 {
                    pi += 1;
                }
                let parent_children = children(parents[pi], d - 1);
                if parent_children >= 2 || children(g, d) != 1 {
                    count += 1;
                }
            }
            parents = here;
        }
        count
    }

    /// The ID the next entry would get from `*` at `now_ms` (Redis's streamNextID).
    fn next_auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.next()
        }
    }

    /// Appends an entry (Redis's streamAppendItem); `id`: given in full, or with the
    /// sequence to generate (`seq_given` false), or None for `*`.
    pub fn append(
        &mut self,
        id: Option<(StreamId, bool)>,
        pairs: &[&[u8]],
        now_ms: u64,
        limits: NodeLimits,
    ) -> Result<StreamId, AppendError> {
        let id = match id {
            Some((id, true)) => id,
            Some((id, false)) => {
                if self.last_id.ms == id.ms {
                    if self.last_id.seq == u64::MAX {
                        return Err(AppendError::IdTooSmall);
                    }
                    StreamId::new(id.ms, self.last_id.seq + 1)
                } else {
                    id
                }
            }
            None => self.next_auto_id(now_ms).ok_or(AppendError::IdTooSmall)?,
        };
        if id <= self.last_id {
            return Err(AppendError::IdTooSmall);
        }
        let total: usize = pairs.iter().map(|p| p.len()).sum();
        if total > LISTPACK_MAX {
            return Err(AppendError::TooLarge);
        }
        let nfields = pairs.len() / 2;
        let mut max_bytes = limits.max_bytes;
        if max_bytes == 0 || max_bytes > LISTPACK_MAX {
            max_bytes = LISTPACK_MAX;
        }
        let tail_full = match self.nodes.last_key_value() {
            None => true,
            Some((_, n)) => {
                n.lp_bytes() + total >= max_bytes
                    || (limits.max_entries != 0
                        && (n.live + n.deleted) as usize >= limits.max_entries)
            }
        };
        if tail_full {
            if let Some(mut last) = self.nodes.last_entry() {
                last.get_mut().data.shrink_to_fit();
            }
            let fields: Box<[Bytes]> = (0..nfields).map(|i| Bytes::from(pairs[2 * i])).collect();
            // Header and end (7), the master entry's field count, fields and terminator.
            let lp_base = 7
                + lp_int_size(nfields as i64)
                + fields.iter().map(|f| lp_str_size(f)).sum::<usize>()
                + lp_int_size(0);
            self.nodes.insert(
                id,
                Node {
                    fields,
                    data: Vec::new(),
                    live: 0,
                    deleted: 0,
                    lp_base: lp_base.min(u32::MAX as usize) as u32,
                },
            );
        }
        let mut tail = self.nodes.last_entry().expect("a tail node");
        let master = *tail.key();
        let node = tail.get_mut();
        let same = node.fields.len() == nfields
            && node
                .fields
                .iter()
                .enumerate()
                .all(|(i, f)| &**f == pairs[2 * i]);
        let dms = id.ms.wrapping_sub(master.ms);
        let dseq = id.seq.wrapping_sub(master.seq);
        let mut lp = lp_int_size(if same { SAME_FIELDS } else { 0 } as i64)
            + lp_int_size(dms as i64)
            + lp_int_size(dseq as i64);
        let lp_count = if same { nfields + 3 } else { 2 * nfields + 4 };
        lp += lp_int_size(lp_count as i64);
        if !same {
            lp += lp_int_size(nfields as i64);
        }
        for i in 0..nfields {
            if !same {
                lp += lp_str_size(pairs[2 * i]);
            }
            lp += lp_str_size(pairs[2 * i + 1]);
        }
        node.put_entry(master, id, if same { SAME_FIELDS } else { 0 }, pairs);
        node.lp_base = (node.lp_base as usize + lp).min(u32::MAX as usize) as u32;
        node.live += 1;
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// Entries from `start` to `end` (inclusive), backwards if `rev`; deleted ones skipped.
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Range<'_> {
        let nodes: Box<dyn Iterator<Item = (&StreamId, &Node)>> = if start > end {
            Box::new(std::iter::empty())
        } else if rev {
            Box::new(self.nodes.range(..=end).rev())
        } else {
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map(|(k, _)| *k)
                .unwrap_or(start);
            Box::new(self.nodes.range(from..))
        };
        Range {
            nodes,
            current: None,
            offsets: Vec::new(),
            start,
            end,
            rev,
            done: false,
        }
    }

    /// The entry `id`, if present and not deleted.
    pub fn get(&self, id: StreamId) -> Option<Entry<'_>> {
        self.range(id, id, false).next()
    }

    pub fn exists(&self, id: StreamId) -> bool {
        self.get(id).is_some()
    }

    /// The first or last live entry's ID (Redis's streamGetEdgeID skipping tombstones):
    /// MAX / 0-0 when there is none.
    pub fn edge_id(&self, first: bool) -> StreamId {
        let e = if first {
            self.range(StreamId::MIN, StreamId::MAX, false).next()
        } else {
            self.range(StreamId::MIN, StreamId::MAX, true).next()
        };
        match e {
            Some(e) => e.id,
            None if first => StreamId::MAX,
            None => StreamId::MIN,
        }
    }

    /// Marks entry `id` deleted; false if there is no such live entry.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let mut p = 0;
        while p < node.data.len() {
            let (flags, eid, body) = node.head(master, p);
            if eid > id {
                return false;
            }
            if eid == id {
                if flags & DELETED != 0 {
                    return false;
                }
                node.data[p] |= DELETED;
                node.live -= 1;
                node.deleted += 1;
                if node.live == 0 {
                    self.nodes.remove(&master);
                }
                self.length -= 1;
                return true;
            }
            p = node.skip_body(flags, body);
        }
        false
    }

    /// Removes entries from the head (Redis's streamTrim): whole nodes, and when not
    /// `approx`, then entries of the first remaining node, marked deleted. `limit` (0: none)
    /// bounds the entries removed. Returns how many went.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = how {
                if self.length <= max {
                    break;
                }
            }
            let Some(mut first) = self.nodes.first_entry() else {
                break;
            };
            let entries = u64::from(first.get().live);
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let master = *first.key();
            let remove = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => {
                    // Its last entry, deleted or not, as Redis's lpGetEdgeStreamID.
                    let node = first.get();
                    let last = node.offsets().last().map(|&p| node.head(master, p).1);
                    last.is_some_and(|l| l < min)
                }
            };
            if remove {
                first.remove();
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let node = first.get_mut();
            let mut p = 0;
            let mut from_node = 0u32;
            while p < node.data.len() {
                let (flags, id, body) = node.head(master, p);
                let stop = match how {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                let next = node.skip_body(flags, body);
                if flags & DELETED == 0 {
                    node.data[p] |= DELETED;
                    from_node += 1;
                    self.length -= 1;
                }
                p = next;
            }
            node.live -= from_node;
            node.deleted += from_node;
            deleted += u64::from(from_node);
            // A node emptied this way stays, as in Redis (its count is 0).
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.edge_id(true);
        }
        deleted
    }

    /// True if a deleted entry may lie between `start` and `end` (None: the ends of the
    /// stream), Redis's streamRangeHasTombstones.
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted {
            return false;
        }
        let start = start.unwrap_or(StreamId::MIN);
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// The number of entries added up to `id`, when it can be known (Redis's
    /// streamEstimateDistanceFromFirstEverEntry); None otherwise.
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.length + 1);
            }
        }
        None
    }

    /// A group's lag: entries not yet delivered to it, None when it cannot be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ
            && !self.range_has_tombstones(Some(g.last_id), None)
        {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        self.entries_read_at(g.last_id)
            .map(|r| self.entries_added as i64 - r as i64)
    }

    /// A group passing entry `id` as it delivers it (streamReplyWithRange's bookkeeping).
    pub fn advance_group(&self, g: &mut Group, id: StreamId) {
        if id <= g.last_id {
            return;
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(Some(id), None) {
            g.entries_read += 1;
        } else if self.entries_added != 0 {
            g.entries_read = self
                .entries_read_at(id)
                .map_or(INVALID_ENTRIES_READ, |r| r as i64);
        }
        g.last_id = id;
    }

    /// Approximate heap bytes, for freeing decisions.
    pub fn free_effort(&self) -> usize {
        self.nodes.len() + self.groups.values().map(|g| 1 + g.pel.len()).sum::<usize>()
    }
}

/// One node as a file stores it (the listpack under its master ID in Redis's radix tree, see
/// `rdb::stream`).
pub struct NodeView<'a> {
    pub master: StreamId,
    node: &'a Node,
}

impl<'a> NodeView<'a> {
    /// The master entry's fields.
    pub fn fields(&self) -> &'a [Bytes] {
        &self.node.fields
    }

    pub fn live(&self) -> u32 {
        self.node.live
    }

    pub fn deleted(&self) -> u32 {
        self.node.deleted
    }

    /// Every entry, deleted ones included, in order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + 'a {
        let (node, master) = (self.node, self.master);
        let mut p = 0;
        std::iter::from_fn(move || {
            if p >= node.data.len() {
                return None;
            }
            let (flags, id, body) = node.head(master, p);
            p = node.skip_body(flags, body);
            Some(Entry {
                id,
                node,
                flags,
                body,
            })
        })
    }
}

/// A node rebuilt from a file, entry by entry, before it joins its stream
/// (`Stream::add_loaded_node`).
pub struct NodeBuilder {
    master: StreamId,
    node: Node,
    last: Option<StreamId>,
}

impl NodeBuilder {
    pub fn new(master: StreamId, fields: &[&[u8]]) -> NodeBuilder {
        NodeBuilder {
            master,
            node: Node {
                fields: fields.iter().map(|f| Bytes::from(*f)).collect(),
                data: Vec::new(),
                live: 0,
                deleted: 0,
                lp_base: 0,
            },
            last: None,
        }
    }

    pub fn field_count(&self) -> usize {
        self.node.fields.len()
    }

    /// Adds entry `id`: `items` are its values when it has the master entry's fields, else its
    /// field-value pairs. False (nothing added) if `id` is below the master ID or not above
    /// the node's previous entry, or the values do not match the master's fields.
    pub fn push(
        &mut self,
        id: StreamId,
        deleted: bool,
        master_fields: bool,
        items: &[&[u8]],
    ) -> bool {
        if id < self.master || self.last.is_some_and(|l| id <= l) {
            return false;
        }
        let mut flags = if deleted { DELETED } else { 0 };
        if master_fields {
            if items.len() != self.node.fields.len() {
                return false;
            }
            flags |= SAME_FIELDS;
            // Only the values are stored: the field names are the master's.
            let pairs: Vec<&[u8]> = items.iter().flat_map(|v| [&b""[..], *v]).collect();
            self.node.put_entry(self.master, id, flags, &pairs);
        } else {
            if !items.len().is_multiple_of(2) {
                return false;
            }
            self.node.put_entry(self.master, id, flags, items);
        }
        if deleted {
            self.node.deleted += 1;
        } else {
            self.node.live += 1;
        }
        self.last = Some(id);
        true
    }
}

/// An iteration over a range of entries (see `Stream::range`).
pub struct Range<'a> {
    nodes: Box<dyn Iterator<Item = (&'a StreamId, &'a Node)> + 'a>,
    current: Option<(StreamId, &'a Node, usize)>,
    /// Backwards: the node's entry starts still to visit.
    offsets: Vec<usize>,
    start: StreamId,
    end: StreamId,
    rev: bool,
    done: bool,
}

impl<'a> Iterator for Range<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        while !self.done {
            let Some((master, node, pos)) = self.current else {
                match self.nodes.next() {
                    Some((&m, n)) => {
                        if self.rev {
                            self.offsets = n.offsets();
                        }
                        self.current = Some((m, n, 0));
                        continue;
                    }
                    None => {
                        self.done = true;
                        break;
                    }
                }
            };
            let at = if self.rev {
                match self.offsets.pop() {
                    Some(p) => p,
                    None => {
                        self.current = None;
                        continue;
                    }
                }
            } else if pos >= node.data.len() {
                self.current = None;
                continue;
            } else {
                pos
            };
            let (flags, id, body) = node.head(master, at);
            if !self.rev {
                self.current = Some((master, node, node.skip_body(flags, body)));
            }
            if self.rev {
                if id < self.start {
                    self.done = true;
                    break;
                }
                if id > self.end {
                    continue;
                }
            } else {
                if id > self.end {
                    self.done = true;
                    break;
                }
                if id < self.start {
                    continue;
                }
            }
            if flags & DELETED != 0 {
                continue;
            }
            return Some(Entry {
                id,
                node,
                flags,
                body,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: NodeLimits = NodeLimits {
        max_bytes: 4096,
        max_entries: 100,
    };

    fn add(s: &mut Stream, ms: u64, seq: u64, pairs: &[&[u8]]) -> Result<StreamId, AppendError> {
        s.append(Some((StreamId::new(ms, seq), true)), pairs, 0, LIMITS)
    }

    fn ids(s: &Stream, rev: bool) -> Vec<(u64, u64)> {
        s.range(StreamId::MIN, StreamId::MAX, rev)
            .map(|e| (e.id.ms, e.id.seq))
            .collect()
    }

    #[test]
    fn parses_ids_as_redis() {
        let p = |s: &str| StreamId::parse(s.as_bytes(), 0, false, false).map(|x| x.0);
        assert_eq!(p("1-2"), Some(StreamId::new(1, 2)));
        assert_eq!(p("5"), Some(StreamId::new(5, 0)));
        assert_eq!(p("-"), Some(StreamId::MIN));
        assert_eq!(p("+"), Some(StreamId::MAX));
        assert_eq!(p("01-1"), Some(StreamId::new(1, 1)));
        assert_eq!(p("-1"), None);
        assert_eq!(p("a-1"), None);
        assert_eq!(p("1-"), None);
        assert_eq!(p("18446744073709551616"), None);
        assert_eq!(
            StreamId::parse(b"-", 0, true, false),
            None,
            "strict refuses -"
        );
        assert_eq!(
            StreamId::parse(b"7-*", 0, true, true),
            Some((StreamId::new(7, 0), false))
        );
        assert_eq!(StreamId::parse(b"7-*", 0, true, false), None);
    }

    #[test]
    fn appends_ranges_and_deletes() {
        let mut s = Stream::default();
        for i in 1..=250u64 {
            let v = i.to_string();
            let pairs: Vec<&[u8]> = if i % 7 == 0 {
                vec![b"other", v.as_bytes(), b"x", b"y"]
            } else {
                vec![b"f", v.as_bytes()]
            };
            add(&mut s, i, 0, &pairs).unwrap();
        }
        assert_eq!(s.len(), 250);
        assert_eq!(s.node_count(), 3);
        assert_eq!(
            add(&mut s, 250, 0, &[b"f", b"v"]),
            Err(AppendError::IdTooSmall)
        );
        let e = s.get(StreamId::new(14, 0)).unwrap();
        let pairs: Vec<_> = e.pairs().collect();
        assert_eq!(pairs, vec![(&b"other"[..], &b"14"[..]), (b"x", b"y")]);
        let e = s.get(StreamId::new(15, 0)).unwrap();
        assert_eq!(e.pairs().collect::<Vec<_>>(), vec![(&b"f"[..], &b"15"[..])]);
        let fwd = ids(&s, false);
        let mut back = ids(&s, true);
        back.reverse();
        assert_eq!(fwd, back);
        assert_eq!(fwd.len(), 250);
        let r: Vec<_> = s
            .range(StreamId::new(99, 0), StreamId::new(102, 0), false)
            .map(|e| e.id.ms)
            .collect();
        assert_eq!(r, vec![99, 100, 101, 102]);
        assert!(s.delete(StreamId::new(100, 0)));
        assert!(!s.delete(StreamId::new(100, 0)));
        assert!(!s.delete(StreamId::new(100, 1)));
        assert_eq!(s.len(), 249);
        let r: Vec<_> = s
            .range(StreamId::new(99, 0), StreamId::new(102, 0), true)
            .map(|e| e.id.ms)
            .collect();
        assert_eq!(r, vec![102, 101, 99]);
        // Deleting a node's every entry drops the node.
        for i in 201..=250 {
            assert!(s.delete(StreamId::new(i, 0)));
        }
        assert_eq!(s.node_count(), 2);
        assert_eq!(s.edge_id(false), StreamId::new(200, 0));
    }

    #[test]
    fn trims_whole_nodes_when_approximate() {
        let mut s = Stream::default();
        for i in 1..=350u64 {
            add(&mut s, i, 0, &[b"f", b"v"]).unwrap();
        }
        assert_eq!(s.trim(Trim::MaxLen(260), true, 0), 0);
        assert_eq!(s.trim(Trim::MaxLen(250), true, 0), 100);
        assert_eq!(s.len(), 250);
        assert_eq!(s.first_id, StreamId::new(101, 0));
        assert_eq!(s.trim(Trim::MaxLen(245), false, 0), 5);
        assert_eq!(s.first_id, StreamId::new(106, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(301, 0)), false, 0), 195);
        assert_eq!(ids(&s, false).first(), Some(&(301, 0)));
        assert_eq!(s.len(), 50);
    }

    #[test]
    fn nodes_end_where_redis_listpacks_would() {
        // 100-byte values: a 4096-byte listpack holds 36 of them.
        let mut s = Stream::default();
        let v = vec![b'x'; 100];
        for i in 1..=100u64 {
            add(&mut s, i, 0, &[b"f", &v]).unwrap();
        }
        assert_eq!(s.node_count(), 3);
    }

    #[test]
    fn rax_nodes_counts_as_redis_tree() {
        let mut s = Stream::default();
        assert_eq!(s.rax_nodes(), 1);
        add(&mut s, 1, 0, &[b"f", b"v"]).unwrap();
        assert_eq!(s.rax_nodes(), 2);
    }
}
