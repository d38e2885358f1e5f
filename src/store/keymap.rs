//! `KeyMap`: a shard's table of keys (to values, or to deadlines), a `hashbrown::HashTable`
//! of `(key, V)` hashed by `hash_key`.
//!
//! Why not a `HashMap`: eviction samples random keys, as Redis's `dictGetSomeKeys` does, and
//! only the raw table can reach a bucket by its index; a map could only walk from its start,
//! always meeting the same keys first (or pay for a walk to a random position).

use hashbrown::HashTable;

use super::{hash_key, is_key, Bytes};

#[derive(Debug, Clone)]
pub struct KeyMap<V> {
    table: HashTable<(Bytes, V)>,
    /// Counts the changes that may have moved entries to other buckets (a growth, a rehash in
    /// place, a shrink, a clear), so that a walk by bucket index that lets go of the shard's
    /// lock between steps can tell whether its position still means anything (`layout`).
    moves: u32,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            table: HashTable::new(),
            moves: 0,
        }
    }
}

fn rehash<V>(e: &(Bytes, V)) -> u64 {
    hash_key(&e.0)
}

impl<V> KeyMap<V> {
    #[inline]
    pub fn find_hashed(&self, hash: u64, key: &[u8]) -> Option<&(Bytes, V)> {
        self.table.find(hash, |e| is_key(&e.0, key))
    }

    #[inline]
    pub fn find_mut_hashed(&mut self, hash: u64, key: &[u8]) -> Option<&mut (Bytes, V)> {
        self.table.find_mut(hash, |e| is_key(&e.0, key))
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.find_hashed(hash_key(key), key).map(|e| &e.1)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Adds a key known to be absent (`key` made with `Bytes::key_from` for a keyspace map).
    #[inline]
    pub fn insert_new_hashed(&mut self, hash: u64, key: Bytes, value: V) -> &mut V {
        // hashbrown grows or rehashes in place only when no room is left.
        if self.table.len() >= self.table.capacity() {
            self.moves = self.moves.wrapping_add(1);
        }
        &mut self
            .table
            .insert_unique(hash, (key, value), rehash)
            .into_mut()
            .1
    }

    /// Stores `value` under `key` (made by `make_key` if new); the old value, if any.
    #[inline]
    pub fn insert_hashed(
        &mut self,
        hash: u64,
        key: &[u8],
        value: V,
        make_key: impl FnOnce(&[u8]) -> Bytes,
    ) -> Option<V> {
        match self.find_mut_hashed(hash, key) {
            Some(e) => Some(std::mem::replace(&mut e.1, value)),
            None => {
                self.insert_new_hashed(hash, make_key(key), value);
                None
            }
        }
    }

    /// `insert_hashed` for a key already made (tests, and callers moving a key).
    pub fn insert(&mut self, key: Bytes, value: V) -> Option<V> {
        let h = hash_key(&key);
        match self.find_mut_hashed(h, &key) {
            Some(e) => Some(std::mem::replace(&mut e.1, value)),
            None => {
                self.insert_new_hashed(h, key, value);
                None
            }
        }
    }

    /// Removes `key`; the entry it had.
    #[inline]
    pub fn remove_entry_hashed(&mut self, hash: u64, key: &[u8]) -> Option<(Bytes, V)> {
        match self.table.find_entry(hash, |e| is_key(&e.0, key)) {
            Ok(e) => Some(e.remove().0),
            Err(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    pub fn clear(&mut self) {
        self.moves = self.moves.wrapping_add(1);
        self.table.clear();
    }

    pub fn shrink_to(&mut self, min: usize) {
        self.moves = self.moves.wrapping_add(1);
        self.table.shrink_to(min, rehash);
    }

    /// The bucket count and the move count: while both are unchanged, every entry is in the
    /// bucket it was in (removals leave the others where they are).
    pub fn layout(&self) -> (usize, u32) {
        (self.table.num_buckets(), self.moves)
    }

    pub fn num_buckets(&self) -> usize {
        self.table.num_buckets()
    }

    /// The entry in bucket `index`, if it is full.
    pub fn bucket(&self, index: usize) -> Option<&(Bytes, V)> {
        self.table.get_bucket(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &V)> + '_ {
        self.table.iter().map(|(k, v)| (k, v))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.table.iter().map(|e| &e.1)
    }

    /// The bytes the table itself holds (its buckets and control bytes), for MEMORY USAGE.
    pub fn table_bytes(&self) -> usize {
        self.table.num_buckets() * (std::mem::size_of::<(Bytes, V)>() + 1)
    }

    /// A random entry: the first full bucket at or after bucket `r` (mod the bucket count),
    /// wrapping. A table is kept at least an eighth full (see `Shard`), so this looks at a
    /// few buckets.
    pub fn sample(&self, r: u64) -> Option<&(Bytes, V)> {
        let n = self.table.num_buckets();
        if self.table.is_empty() || n == 0 {
            return None;
        }
        let start = (r % n as u64) as usize;
        (0..n).find_map(|i| self.table.get_bucket((start + i) % n))
    }

    /// Up to `count` entries from consecutive buckets at and after bucket `r`, as Redis's
    /// dictGetSomeKeys: one random place and its neighbours cost a cache miss or two where
    /// `count` random places cost `count`. Walks at most ten buckets per entry asked (Redis's
    /// bound), then, if none was full, takes `sample`'s.
    pub fn sample_run(&self, r: u64, count: usize) -> impl Iterator<Item = &(Bytes, V)> + '_ {
        let n = self.table.num_buckets();
        let start = if n == 0 { 0 } else { (r % n as u64) as usize };
        let steps = n.min(count * 10);
        let mut run = (0..steps)
            .filter_map(move |i| self.table.get_bucket((start + i) % n))
            .take(count)
            .peekable();
        let fallback = match run.peek() {
            Some(_) => None,
            None => self.sample(r),
        };
        run.chain(fallback)
    }
}

impl<'a, V> IntoIterator for &'a KeyMap<V> {
    type Item = (&'a Bytes, &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a Bytes, &'a V)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map of `n` keys `k0`.. to their numbers.
    fn numbered(n: u32) -> KeyMap<u32> {
        let mut m = KeyMap::default();
        for i in 0..n {
            m.insert(Bytes::from(format!("k{i}")), i);
        }
        m
    }

    #[test]
    fn samples_reach_every_key() {
        let mut m = numbered(100);
        let mut seen = std::collections::HashSet::new();
        for r in 0..m.table.num_buckets() as u64 {
            seen.insert(m.sample(r).unwrap().1);
        }
        assert_eq!(seen.len(), 100);
        assert!(KeyMap::<u32>::default().sample(7).is_none());
        assert_eq!(m.remove_entry_hashed(hash_key(b"k5"), b"k5").unwrap().1, 5);
        assert!(m.get(b"k5").is_none());
        assert_eq!(m.len(), 99);
    }

    #[test]
    fn the_layout_changes_only_when_entries_may_move() {
        let mut m = numbered(10);
        let before = m.layout();
        while m.len() < m.capacity() {
            let i = m.len();
            m.insert(Bytes::from(format!("k{i}")), i as u32);
            assert_eq!(m.layout(), before, "an insert with room left");
        }
        m.remove_entry_hashed(hash_key(b"k3"), b"k3");
        assert_eq!(m.layout(), before, "a removal");
        // No room is left (a removal does not give its slot back to the growth count).
        while m.len() < m.capacity() {
            let i = m.len() + 100;
            m.insert(Bytes::from(format!("k{i}")), i as u32);
        }
        m.insert(Bytes::from("one more"), 0);
        assert_ne!(m.layout(), before, "an insert into a full table");
        let grown = m.layout();
        m.shrink_to(0);
        assert_ne!(m.layout(), grown, "a shrink");
    }

    #[test]
    fn runs_of_samples_are_distinct_and_reach_every_key() {
        let m = numbered(100);
        let mut seen = std::collections::HashSet::new();
        for r in 0..m.table.num_buckets() as u64 {
            let run: Vec<u32> = m.sample_run(r, 5).map(|e| e.1).collect();
            assert!((1..=5).contains(&run.len()), "{run:?}");
            let distinct: std::collections::HashSet<_> = run.iter().collect();
            assert_eq!(distinct.len(), run.len());
            seen.extend(run);
        }
        assert_eq!(seen.len(), 100);
        // A sparse table: the walk's bound is reached, and the fallback still finds a key.
        let mut sparse = numbered(1000);
        for i in 1..1000u32 {
            sparse.remove_entry_hashed(
                hash_key(format!("k{i}").as_bytes()),
                format!("k{i}").as_bytes(),
            );
        }
        for r in 0..64 {
            assert_eq!(
                sparse.sample_run(r, 1).map(|e| e.1).collect::<Vec<_>>(),
                [0]
            );
        }
        assert_eq!(KeyMap::<u32>::default().sample_run(3, 5).count(), 0);
    }
}
