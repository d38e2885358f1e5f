//! A hash table of entries kept in a dense vector, with an index from key to position beside
//! it: the large encoding of sets and hashes. The vector gives what a plain hash map cannot:
//! a random entry in O(1) (SPOP, SRANDMEMBER, HRANDFIELD) and a scan cursor that is a position
//! (SSCAN, HSCAN), which returns about COUNT entries per call with Redis's guarantee (see
//! `scan`).

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::{Bytes, KeyHasher};

/// What a dense table holds: something with a key.
pub trait Entry {
    fn key(&self) -> &[u8];
}

/// A set's member.
impl Entry for Bytes {
    fn key(&self) -> &[u8] {
        self
    }
}

/// A hash's field and value.
impl Entry for (Bytes, Bytes) {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

fn hash(k: &[u8]) -> u64 {
    KeyHasher.hash_one(k)
}

#[derive(Debug, Clone)]
pub struct DenseTable<E> {
    entries: Vec<E>,
    index: HashTable<u32>,
}

impl<E> Default for DenseTable<E> {
    fn default() -> Self {
        DenseTable {
            entries: Vec::new(),
            index: HashTable::new(),
        }
    }
}

impl<E: Entry> DenseTable<E> {
    pub fn with_capacity(n: usize) -> Self {
        DenseTable {
            entries: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The index's slots (DEBUG HTSTATS-KEY's table size).
    pub fn slots(&self) -> usize {
        crate::store::slots_of_capacity(self.index.capacity())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn position(&self, k: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(hash(k), |&i| entries[i as usize].key() == k)
            .map(|&i| i as usize)
    }

    pub fn get(&self, k: &[u8]) -> Option<&E> {
        self.position(k).map(|i| &self.entries[i])
    }

    pub fn get_mut(&mut self, k: &[u8]) -> Option<&mut E> {
        self.position(k).map(|i| &mut self.entries[i])
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        self.position(k).is_some()
    }

    /// The entry at position `i` (below `len`).
    pub fn at(&self, i: usize) -> &E {
        &self.entries[i]
    }

    /// Adds an entry whose key is not in the table (a table being filled from one whose keys
    /// are distinct).
    pub fn push_new(&mut self, e: E) {
        let h = hash(e.key());
        self.push_hashed(h, e);
    }

    fn push_hashed(&mut self, h: u64, e: E) {
        let pos = self.entries.len() as u32;
        let entries = &self.entries;
        self.index
            .insert_unique(h, pos, |&i| hash(entries[i as usize].key()));
        self.entries.push(e);
    }

    /// The entry with key `k`, made by `make` and added if there is none (true then): one
    /// hashing of the key either way, as SADD and HSET need.
    pub fn get_or_push(&mut self, k: &[u8], make: impl FnOnce() -> E) -> (&mut E, bool) {
        let h = hash(k);
        let entries = &self.entries;
        let found = self
            .index
            .find(h, |&i| entries[i as usize].key() == k)
            .map(|&i| i as usize);
        match found {
            Some(i) => (&mut self.entries[i], false),
            None => {
                self.push_hashed(h, make());
                let last = self.entries.len() - 1;
                (&mut self.entries[last], true)
            }
        }
    }

    pub fn remove(&mut self, k: &[u8]) -> Option<E> {
        self.position(k).map(|i| self.remove_at(i))
    }

    /// Removes the entry at position `i`; the last entry moves into its place.
    pub fn remove_at(&mut self, i: usize) -> E {
        let h = hash(self.entries[i].key());
        if let Ok(e) = self.index.find_entry(h, |&p| p as usize == i) {
            e.remove();
        }
        let last = self.entries.len() - 1;
        if i != last {
            let hl = hash(self.entries[last].key());
            if let Some(p) = self.index.find_mut(hl, |&p| p as usize == last) {
                *p = i as u32;
            }
        }
        let e = self.entries.swap_remove(i);
        // Give memory back once the table has shrunk well below what it holds.
        if self.entries.capacity() > 64 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
            let entries = &self.entries;
            self.index
                .shrink_to(entries.len() * 2, |&p| hash(entries[p as usize].key()));
        }
        e
    }

    pub fn iter(&self) -> std::slice::Iter<'_, E> {
        self.entries.iter()
    }

    /// One SCAN step over `count` positions. Positions are visited from the end down: cursor
    /// 0 starts at the end, any other cursor `c` means "positions below c remain". A removal
    /// moves the last entry into the hole, i.e. from a position visited already (or about to
    /// be) to a lower one, never from an unvisited position to a visited one; so an entry
    /// present for the whole scan is returned at least once, as Redis promises. Entries added
    /// meanwhile may or may not be. Returns the next cursor (0: done) and the positions of
    /// this step, highest first.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, std::iter::Rev<std::ops::Range<usize>>) {
        let len = self.entries.len();
        let top = if cursor == 0 {
            len
        } else {
            cursor.min(len as u64) as usize
        };
        let bottom = top.saturating_sub(count.max(1));
        (bottom as u64, (bottom..top).rev())
    }
}

/// Equal when they hold the same entries, whatever their order.
impl<E: Entry + PartialEq> PartialEq for DenseTable<E> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|e| other.get(e.key()) == Some(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn table(pairs: &[(u8, u8)]) -> DenseTable<(Bytes, Bytes)> {
        let mut t: DenseTable<(Bytes, Bytes)> = DenseTable::default();
        for &(k, v) in pairs {
            let k = [k];
            let (e, _) = t.get_or_push(&k, || (Bytes::from(&k[..]), Bytes::default()));
            e.1 = Bytes::from(&[v][..]);
        }
        t
    }

    proptest! {
        /// Inserts, updates and removals agree with a HashMap.
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec((any::<bool>(), 0u8..40, any::<u8>()), 0..300)) {
            let mut t: DenseTable<(Bytes, Bytes)> = DenseTable::default();
            let mut m: HashMap<u8, u8> = HashMap::new();
            for (insert, k, v) in ops {
                if insert {
                    let (e, _) = t.get_or_push(&[k], || (Bytes::from(&[k][..]), Bytes::default()));
                    e.1 = Bytes::from(&[v][..]);
                    m.insert(k, v);
                } else {
                    prop_assert_eq!(t.remove(&[k]).is_some(), m.remove(&k).is_some());
                }
                prop_assert_eq!(t.len(), m.len());
            }
            for (k, v) in &m {
                prop_assert_eq!(&*t.get(&[*k]).unwrap().1, &[*v][..]);
            }
        }

        /// A scan with removals between its steps returns every entry present throughout.
        #[test]
        fn scan_returns_what_stays(n in 1u8..200, count in 1usize..30, removals in proptest::collection::vec(0u8..200, 0..50)) {
            let pairs: Vec<(u8, u8)> = (0..n).map(|i| (i, i)).collect();
            let mut t = table(&pairs);
            let mut removed = std::collections::HashSet::new();
            let mut seen = std::collections::HashSet::new();
            let mut cursor = 0;
            let mut removals = removals.into_iter();
            let mut steps = 0;
            loop {
                let (next, positions) = t.scan(cursor, count);
                let got: Vec<u8> = positions.map(|i| t.at(i).0[0]).collect();
                prop_assert!(got.len() <= count);
                seen.extend(got);
                if let Some(r) = removals.next() {
                    if t.remove(&[r]).is_some() {
                        removed.insert(r);
                    }
                }
                cursor = next;
                steps += 1;
                if cursor == 0 {
                    break;
                }
            }
            prop_assert!(steps <= n as usize / count + 2);
            for k in 0..n {
                if !removed.contains(&k) {
                    prop_assert!(seen.contains(&k), "{} never returned", k);
                }
            }
        }
    }
}
