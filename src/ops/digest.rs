//! DEBUG DIGEST and DIGEST-VALUE, computed exactly as Redis's debug.c computes them, so that
//! equal digests from rudis and redis-server prove they hold the same data.
//!
//! Unordered things (keys, set members, hash fields, sorted-set members) are XORed together
//! (`xor`); ordered ones (list elements, stream entries, a key's parts) are chained, each step
//! hashing the digest so far (`mix`).

use crate::resp::reply::format_double;
use crate::store::stream::StreamId;
use crate::store::{Shard, Value};
use crate::util::sha1::sha1;

pub type Digest = [u8; 20];

/// Redis's xorDigest: `digest ^= SHA1(data)`.
fn xor(digest: &mut Digest, data: &[u8]) {
    for (d, h) in digest.iter_mut().zip(sha1(data)) {
        *d ^= h;
    }
}

/// Redis's mixDigest: `digest = SHA1(digest ^ SHA1(data))`.
fn mix(digest: &mut Digest, data: &[u8]) {
    xor(digest, data);
    *digest = sha1(digest);
}

/// Redis's object type numbers (`OBJ_STRING` ...), which the digest of a value starts with.
fn type_number(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// Redis's xorObjectDigest: mixes `v` (and whether it has a deadline) into `digest`.
pub fn mix_value(digest: &mut Digest, v: &Value, has_deadline: bool) {
    mix(digest, &type_number(v).to_be_bytes());
    match v {
        Value::Str(s) => mix(digest, s),
        Value::List(l) => l.iter().for_each(|e| e.with_bytes(|b| mix(digest, b))),
        Value::Set(s) => s.iter().for_each(|m| m.with_bytes(|b| xor(digest, b))),
        Value::ZSet(z) => {
            let mut buf = [0u8; 40];
            for (member, score) in z.iter() {
                let mut elem = Digest::default();
                mix(&mut elem, member);
                mix(&mut elem, format_double(score, &mut buf));
                xor(digest, &elem);
            }
        }
        Value::Hash(h) => {
            for (field, value) in h.iter() {
                let mut elem = Digest::default();
                mix(&mut elem, field);
                mix(&mut elem, value);
                xor(digest, &elem);
            }
        }
        Value::Stream(s) => {
            for e in s.range(StreamId::MIN, StreamId::MAX, false) {
                mix(digest, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                for (field, value) in e.pairs() {
                    mix(digest, field);
                    mix(digest, value);
                }
            }
        }
    }
    if has_deadline {
        xor(digest, b"!!expire!!");
    }
}

/// DEBUG DIGEST-VALUE's digest of one value: zeros for a missing key.
pub fn value_digest(v: Option<(&Value, bool)>) -> Digest {
    let mut d = Digest::default();
    if let Some((v, has_deadline)) = v {
        mix_value(&mut d, v, has_deadline);
    }
    d
}

/// Redis's computeDatasetDigest over the databases in order, each given as its shards. Keys
/// past their deadline count while they are still stored, as Redis's dict walk sees them.
pub fn dataset_digest<'a>(dbs: impl Iterator<Item = (usize, Vec<&'a Shard>)>) -> Digest {
    let mut out = Digest::default();
    for (db, shards) in dbs {
        if shards.iter().all(|s| s.map.is_empty()) {
            continue;
        }
        // The database's number is chained in: the same keys in another one digest apart.
        mix(&mut out, &(db as u32).to_be_bytes());
        for shard in shards {
            for (key, v) in shard.map.iter() {
                let mut d = Digest::default();
                mix(&mut d, key);
                mix_value(&mut d, v, shard.deadline(key).is_some());
                xor(&mut out, &d);
            }
        }
    }
    out
}

/// The digest as Redis prints it: 40 lower-case hex digits.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_digests_to_zeros() {
        assert_eq!(hex(&value_digest(None)), "0".repeat(40));
        assert_eq!(hex(&dataset_digest(std::iter::empty())), "0".repeat(40));
    }

    #[test]
    fn order_matters_for_lists_only() {
        let mut a = crate::store::List::default();
        let mut b = crate::store::List::default();
        use crate::store::list::End;
        a.push(End::Right, b"x");
        a.push(End::Right, b"y");
        b.push(End::Right, b"y");
        b.push(End::Right, b"x");
        let da = value_digest(Some((&Value::List(Box::new(a)), false)));
        let db = value_digest(Some((&Value::List(Box::new(b)), false)));
        assert_ne!(da, db);
        let mut s = crate::store::Set::default();
        let mut t = crate::store::Set::default();
        s.insert(b"x");
        s.insert(b"y");
        t.insert(b"y");
        t.insert(b"x");
        let ds = value_digest(Some((&Value::Set(Box::new(s)), false)));
        let dt = value_digest(Some((&Value::Set(Box::new(t)), false)));
        assert_eq!(ds, dt);
        let expiring = value_digest(Some((&Value::str(b"v"), true)));
        assert_ne!(expiring, value_digest(Some((&Value::str(b"v"), false))));
    }
}
