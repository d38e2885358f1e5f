//! Streams in RDB (Redis's rdb.c, OBJ_STREAM): read in the three encodings Redis has written,
//! `STREAM_LISTPACKS` (15, Redis 5 to 6.2), `_2` (19, Redis 7.0: first ID, largest deleted ID,
//! entries added, each group's entries read) and `_3` (21, Redis 7.2: each consumer's active
//! time, which rudis does not keep), and written as Redis 7.0 writes them (19).
//!
//! Layout: the node count, then per node its master ID (16 bytes, milliseconds and sequence
//! big-endian, as the radix tree's key) and its listpack; the length, last ID, (19+) first ID,
//! largest deleted ID and entries added; the groups, each: name, last delivered ID, (19+)
//! entries read, its PEL (raw 16-byte IDs, delivery time in 8 little-endian bytes, delivery
//! count), and its consumers (name, seen time, (21) active time, the IDs they own).
//!
//! A node's listpack (t_stream.c): the master entry (live count, deleted count, field count,
//! the fields, a 0), then per entry its flags, ID deltas from the master ID, its values (when
//! its fields are the master's) or field count and pairs, and its element count (lp-count).

use std::collections::BTreeMap;

use super::kind;
use super::packed::{listpack_each, ListpackWriter};
use super::read::{integrity, Reader, Result};
use super::write::Encoder;
use crate::store::list::Elem;
use crate::store::stream::{Consumer, Group, Nack, NodeBuilder, Stream, StreamId};

fn id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

fn key_id(k: &[u8]) -> StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&k[..8]);
    seq.copy_from_slice(&k[8..16]);
    StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
}

/// A stream value of RDB type `t` (one of the three stream types).
pub fn read(r: &mut Reader, t: u8) -> Result<Stream> {
    let mut s = Stream::default();
    let nodes = r.count("a stream's node count", 2)?;
    for _ in 0..nodes {
        let at = r.pos();
        let key = r.string()?;
        if key.len() != 16 {
            return r.error(at, "a stream node's master ID (16 bytes)");
        }
        let master = key_id(&key);
        let at = r.pos();
        let lp = r.string()?;
        let mut elems: Vec<Elem> = Vec::new();
        if let Err(e) = listpack_each(&lp, |e| elems.push(e)) {
            return r.error(
                at,
                format!(
                    "a stream node's listpack: {} ({})",
                    e.expected,
                    integrity(t)
                ),
            );
        }
        if elems.is_empty() {
            return r.error(
                at,
                "a stream node with entries (Empty listpack inside stream)",
            );
        }
        let Some((b, live, deleted)) = node(master, &elems) else {
            return r.error(
                at,
                format!(
                    "a stream node's listpack: its master entry and entries ({})",
                    integrity(t)
                ),
            );
        };
        if !s.add_loaded_node(b, lp.len(), live, deleted) {
            return r.error(
                at,
                "a stream node with entries, above the nodes before it \
                 (Listpack re-added with existing key)",
            );
        }
    }
    let at = r.pos();
    let length = r.length("a stream's length")?;
    if length != s.len() {
        return r.error(
            at,
            format!("a stream length of {} (its live entries)", s.len()),
        );
    }
    s.last_id = read_id(r, "a stream's last ID")?;
    if s.edge_id(false) > s.last_id {
        return r.error(at, "a last ID no lower than the last entry's");
    }
    let v2 = t != kind::STREAM_LISTPACKS;
    if v2 {
        s.first_id = read_id(r, "a stream's first ID")?;
        s.max_deleted = read_id(r, "a stream's largest deleted ID")?;
        let at = r.pos();
        s.entries_added = r.length("a stream's count of entries added")?;
        // Lag and entries-read are computed from it: the entries there are were added.
        if s.entries_added < s.len() {
            return r.error(at, "a count of entries added no lower than the length");
        }
    } else {
        // As Redis migrates an older stream: every entry counts as added, none as deleted.
        s.entries_added = s.len();
        s.first_id = s.edge_id(true);
    }
    let groups = r.count("a stream's group count", 3)?;
    for _ in 0..groups {
        let at = r.pos();
        let name = r.string()?.into_owned().into_boxed_slice();
        let last_id = read_id(r, "a group's last delivered ID")?;
        let entries_read = if v2 {
            r.length("a group's entries read")? as i64
        } else {
            s.entries_read_at(last_id)
                .map_or(crate::store::stream::INVALID_ENTRIES_READ, |n| n as i64)
        };
        let g = group(r, t, Group::new(last_id, entries_read))?;
        if s.groups.insert(name, g).is_some() {
            return r.error(
                at,
                "a group name not seen before in the stream (Duplicated consumer group name)",
            );
        }
    }
    Ok(s)
}

fn read_id(r: &mut Reader, what: &str) -> Result<StreamId> {
    let ms = r.length(what)?;
    Ok(StreamId::new(ms, r.length(what)?))
}

fn raw_id(r: &mut Reader, what: &str) -> Result<StreamId> {
    Ok(key_id(r.take(16, what)?))
}

fn millis(r: &mut Reader, what: &str) -> Result<i64> {
    let b = r.take(8, what)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(i64::from_le_bytes(a))
}

/// A group's PEL and consumers, after its name and IDs.
fn group(r: &mut Reader, t: u8, mut g: Group) -> Result<Group> {
    let n = r.count("a group's PEL size", 17)?;
    let mut unowned: BTreeMap<StreamId, (i64, u64)> = BTreeMap::new();
    for _ in 0..n {
        let at = r.pos();
        let id = raw_id(r, "a pending entry's ID")?;
        let time = millis(r, "a pending entry's delivery time")?;
        let count = r.length("a pending entry's delivery count")?;
        if unowned.insert(id, (time, count)).is_some() {
            return r.error(
                at,
                "a pending entry not seen before in the group (Duplicated global PEL entry)",
            );
        }
    }
    let consumers = r.count("a group's consumer count", 10)?;
    for _ in 0..consumers {
        let at = r.pos();
        let name = r.string()?.into_owned().into_boxed_slice();
        if g.consumers.contains_key(&name) {
            return r.error(
                at,
                "a consumer name not seen before in the group \
                 (Duplicate stream consumer detected.)",
            );
        }
        let seen_time = millis(r, "a consumer's seen time")?;
        if t == kind::STREAM_LISTPACKS_3 {
            // Redis 7.2's active time: rudis reports the seen time only, as Redis 7.0.
            millis(r, "a consumer's active time")?;
        }
        let mut c = Consumer {
            seen_time,
            pel: Default::default(),
        };
        let owned = r.count("a consumer's PEL size", 16)?;
        for _ in 0..owned {
            let at = r.pos();
            let id = raw_id(r, "a consumer's pending entry ID")?;
            let Some((delivery_time, delivery_count)) = unowned.remove(&id) else {
                let why = if g.pel.contains_key(&id) {
                    "Duplicated consumer PEL entry"
                } else {
                    "Consumer entry not found in group global PEL"
                };
                return r.error(
                    at,
                    format!("an ID pending in the group and owned by no other consumer ({why})"),
                );
            };
            g.pel.insert(
                id,
                Nack {
                    delivery_time,
                    delivery_count,
                    consumer: name.clone(),
                },
            );
            c.pel.insert(id);
        }
        g.consumers.insert(name, c);
    }
    if !unowned.is_empty() {
        return r.error(
            r.pos(),
            "every pending entry of the group owned by a consumer \
             (Stream CG PEL entry without consumer)",
        );
    }
    Ok(g)
}

fn int(e: Option<&Elem>) -> Option<i64> {
    match e? {
        Elem::Int(v) => Some(*v),
        Elem::Bytes(_) => None,
    }
}

/// A node from its listpack's elements: the builder, and the master entry's counters.
fn node(master: StreamId, elems: &[Elem]) -> Option<(NodeBuilder, i64, i64)> {
    let mut it = elems.iter();
    let live = int(it.next())?;
    let deleted = int(it.next())?;
    let nfields = usize::try_from(int(it.next())?).ok()?;
    if nfields > elems.len() {
        return None;
    }
    let fields: Vec<Vec<u8>> = (0..nfields)
        .map(|_| it.next().map(Elem::to_vec))
        .collect::<Option<_>>()?;
    if int(it.next())? != 0 {
        return None;
    }
    let field_refs: Vec<&[u8]> = fields.iter().map(|f| &f[..]).collect();
    let mut b = NodeBuilder::new(master, &field_refs);
    let mut items: Vec<Vec<u8>> = Vec::new();
    while let Some(flags) = it.next() {
        let flags = int(Some(flags))?;
        let dms = int(it.next())? as u64;
        let dseq = int(it.next())? as u64;
        let id = StreamId::new(master.ms.wrapping_add(dms), master.seq.wrapping_add(dseq));
        let same = flags & 2 != 0;
        let n = if same {
            b.field_count()
        } else {
            usize::try_from(int(it.next())?).ok()?.checked_mul(2)?
        };
        if n > elems.len() {
            return None;
        }
        items.clear();
        for _ in 0..n {
            items.push(it.next()?.to_vec());
        }
        let lp_count = int(it.next())?;
        let want = if same { n + 3 } else { n + 4 };
        if lp_count != want as i64 || flags & !3 != 0 {
            return None;
        }
        let refs: Vec<&[u8]> = items.iter().map(|i| &i[..]).collect();
        if !b.push(id, flags & 1 != 0, same, &refs) {
            return None;
        }
    }
    Some((b, live, deleted))
}

/// Writes a stream as Redis 7.0 does (type 19; the caller wrote the type byte).
pub fn write(e: &mut Encoder, s: &Stream) {
    let nodes: Vec<_> = s.nodes().collect();
    e.len(nodes.len() as u64);
    for n in &nodes {
        e.string(&id_key(n.master));
        let mut lp = ListpackWriter::default();
        lp.push_int(i64::from(n.live()));
        lp.push_int(i64::from(n.deleted()));
        lp.push_int(n.fields().len() as i64);
        for f in n.fields() {
            lp.push(f);
        }
        lp.push_int(0);
        for entry in n.entries() {
            let same = entry.has_master_fields();
            let flags = i64::from(entry.is_deleted()) | if same { 2 } else { 0 };
            lp.push_int(flags);
            lp.push_int(entry.id.ms.wrapping_sub(n.master.ms) as i64);
            lp.push_int(entry.id.seq.wrapping_sub(n.master.seq) as i64);
            let nfields = entry.num_fields();
            if !same {
                lp.push_int(nfields as i64);
            }
            for (f, v) in entry.pairs() {
                if !same {
                    lp.push(f);
                }
                lp.push(v);
            }
            let lp_count = if same { nfields + 3 } else { 2 * nfields + 4 };
            lp.push_int(lp_count as i64);
        }
        e.string(&lp.finish());
    }
    e.len(s.len());
    for id in [s.last_id, s.first_id, s.max_deleted] {
        e.len(id.ms);
        e.len(id.seq);
    }
    e.len(s.entries_added);
    e.len(s.groups.len() as u64);
    for (name, g) in &s.groups {
        e.string(name);
        e.len(g.last_id.ms);
        e.len(g.last_id.seq);
        // -1 (unknown) as Redis writes it: the length of all ones.
        e.len(g.entries_read as u64);
        e.len(g.pel.len() as u64);
        for (id, nack) in &g.pel {
            e.buf.extend_from_slice(&id_key(*id));
            e.buf.extend_from_slice(&nack.delivery_time.to_le_bytes());
            e.len(nack.delivery_count);
        }
        e.len(g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            e.string(cname);
            e.buf.extend_from_slice(&c.seen_time.to_le_bytes());
            e.len(c.pel.len() as u64);
            for id in &c.pel {
                e.buf.extend_from_slice(&id_key(*id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::stream::NodeLimits;

    const LIMITS: NodeLimits = NodeLimits {
        max_bytes: 4096,
        max_entries: 100,
    };

    fn sample() -> Stream {
        let mut s = Stream::default();
        for i in 1..=250u64 {
            let v = i.to_string();
            let pairs: Vec<&[u8]> = if i % 5 == 0 {
                vec![b"other", v.as_bytes(), b"x", b"-3"]
            } else {
                vec![b"f", v.as_bytes()]
            };
            s.append(Some((StreamId::new(i, 7), true)), &pairs, 0, LIMITS)
                .unwrap();
        }
        s.delete(StreamId::new(3, 7));
        s.max_deleted = StreamId::new(3, 7);
        let mut g = Group::new(StreamId::new(9, 7), 9);
        g.create_consumer(b"alice", 1_700_000_000_000);
        g.deliver(StreamId::new(4, 7), b"alice", 1_700_000_000_001);
        g.deliver(StreamId::new(9, 7), b"alice", 1_700_000_000_002);
        s.groups.insert(b"grp"[..].into(), g);
        s
    }

    fn encode(s: &Stream) -> Vec<u8> {
        let mut e = Encoder::new(false);
        write(&mut e, s);
        e.buf
    }

    #[test]
    fn round_trips() {
        let s = sample();
        let bytes = encode(&s);
        let back = read(&mut Reader::new(&bytes, 0), kind::STREAM_LISTPACKS_2).unwrap();
        assert_eq!(back.len(), 249);
        assert_eq!(back.groups, s.groups);
        assert_eq!(back.max_deleted, s.max_deleted);
        assert_eq!(back.entries_added, 250);
        let ids = |s: &Stream| -> Vec<StreamId> {
            s.range(StreamId::MIN, StreamId::MAX, false)
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(ids(&back), ids(&s));
        // And appends to the loaded stream fill its last node as they would the original's.
        let (mut a, mut b) = (s.clone(), back);
        for i in 300..400u64 {
            let id = Some((StreamId::new(i, 0), true));
            a.append(id, &[b"f", b"v"], 0, LIMITS).unwrap();
            b.append(id, &[b"f", b"v"], 0, LIMITS).unwrap();
        }
        assert_eq!(a.node_count(), b.node_count());
        assert_eq!(encode(&a), encode(&b));
    }

    #[test]
    fn reads_redis_7_2_consumers_with_their_active_time() {
        let mut s = Stream::default();
        s.append(Some((StreamId::new(1, 1), true)), &[b"f", b"v"], 0, LIMITS)
            .unwrap();
        let mut g = Group::new(StreamId::MIN, 0);
        g.create_consumer(b"c", 5_000_000_000_000);
        s.groups.insert(b"g"[..].into(), g);
        let v19 = encode(&s);
        // Type 21 adds the active time after the seen time: before the last byte (the
        // consumer's empty PEL).
        let mut v21 = v19[..v19.len() - 1].to_vec();
        v21.extend_from_slice(&6_000_000_000_000i64.to_le_bytes());
        v21.push(0);
        let back = read(&mut Reader::new(&v21, 0), kind::STREAM_LISTPACKS_3).unwrap();
        assert_eq!(
            back.groups[&b"g"[..]].consumers[&b"c"[..]].seen_time,
            5_000_000_000_000
        );
    }

    #[test]
    fn truncated_or_altered_bytes_are_errors_not_panics() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            assert!(read(&mut Reader::new(&bytes[..n], 0), kind::STREAM_LISTPACKS_2).is_err());
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = bytes.clone();
            let i = (x as usize) % b.len();
            b[i] ^= (x >> 32) as u8 | 1;
            for t in [
                kind::STREAM_LISTPACKS,
                kind::STREAM_LISTPACKS_2,
                kind::STREAM_LISTPACKS_3,
            ] {
                let _ = read(&mut Reader::new(&b, 0), t);
            }
        }
    }
}
