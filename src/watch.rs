//! WATCH bookkeeping: which clients watch which keys, so that a change can flag them.
//! Writers pay one atomic load when nobody watches anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Flags of the clients watching each key of one database.
type DbWatches = HashMap<Vec<u8>, Vec<Arc<AtomicBool>>>;

#[derive(Default)]
pub struct Watches {
    active: AtomicUsize,
    by_db: Mutex<HashMap<usize, DbWatches>>,
}

impl Watches {
    /// How many (key, client) watches are registered.
    pub fn count(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// `flag` is set when `key` in `db` changes.
    pub fn watch(&self, db: usize, key: &[u8], flag: &Arc<AtomicBool>) {
        let mut m = self.by_db.lock();
        m.entry(db)
            .or_default()
            .entry(key.to_vec())
            .or_default()
            .push(flag.clone());
        self.active.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets the watches of `keys` ((db, key) pairs) that set `flag`.
    pub fn unwatch_keys<'k>(
        &self,
        keys: impl Iterator<Item = (usize, &'k [u8])>,
        flag: &Arc<AtomicBool>,
    ) {
        let mut m = self.by_db.lock();
        let mut removed = 0;
        for (db, key) in keys {
            let Some(dbw) = m.get_mut(&db) else { continue };
            let Some(flags) = dbw.get_mut(key) else {
                continue;
            };
            let before = flags.len();
            flags.retain(|f| !Arc::ptr_eq(f, flag));
            removed += before - flags.len();
            if flags.is_empty() {
                dbw.remove(key);
                if dbw.is_empty() {
                    m.remove(&db);
                }
            }
        }
        self.active.fetch_sub(removed, Ordering::SeqCst);
    }

    /// Forgets every watch that sets `flag`.
    pub fn unwatch_all(&self, flag: &Arc<AtomicBool>) {
        let mut m = self.by_db.lock();
        let mut removed = 0;
        for keys in m.values_mut() {
            keys.retain(|_, flags| {
                let before = flags.len();
                flags.retain(|f| !Arc::ptr_eq(f, flag));
                removed += before - flags.len();
                !flags.is_empty()
            });
        }
        m.retain(|_, keys| !keys.is_empty());
        self.active.fetch_sub(removed, Ordering::SeqCst);
    }

    /// Flags the watchers of `key` in `db`. Inline, as every write calls it: the check for
    /// no watchers at all is the whole cost in the common case.
    #[inline]
    pub fn touch(&self, db: usize, key: &[u8]) {
        if self.active.load(Ordering::SeqCst) != 0 {
            self.touch_watched(db, key);
        }
    }

    #[cold]
    fn touch_watched(&self, db: usize, key: &[u8]) {
        if let Some(flags) = self.by_db.lock().get(&db).and_then(|k| k.get(key)) {
            for f in flags {
                f.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Flags every watcher of a key in `db` for which `exists(key)` holds (FLUSHDB, SWAPDB).
    pub fn touch_db(&self, db: usize, exists: impl Fn(&[u8]) -> bool) {
        if self.active.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(keys) = self.by_db.lock().get(&db) {
            for (k, flags) in keys {
                if exists(k) {
                    for f in flags {
                        f.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
    }
}
