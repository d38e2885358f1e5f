//! WATCH bookkeeping: which clients watch which keys, so that a change can flag them.
//! Writers pay one atomic load when nobody watches anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// One client's watch of a key: the client's flag, and whether the key was logically
/// expired (but not yet deleted) when watched, as Redis's `watchedKey.expired`: deleting such
/// a key is no change.
struct Watcher {
    flag: Arc<AtomicBool>,
    expired: bool,
}

/// Whether a database coming in by SWAPDB holds a key: Some(expired) if it does.
pub type Incoming<'a> = &'a dyn Fn(&[u8]) -> Option<bool>;

/// The watchers of each key of one database.
type DbWatches = HashMap<Vec<u8>, Vec<Watcher>>;

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

    /// `flag` is set when `key` in `db` changes; `expired`: the key is logically expired now.
    pub fn watch(&self, db: usize, key: &[u8], flag: &Arc<AtomicBool>, expired: bool) {
        let mut m = self.by_db.lock();
        m.entry(db)
            .or_default()
            .entry(key.to_vec())
            .or_default()
            .push(Watcher {
                flag: flag.clone(),
                expired,
            });
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
            flags.retain(|w| !Arc::ptr_eq(&w.flag, flag));
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
                flags.retain(|w| !Arc::ptr_eq(&w.flag, flag));
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
            for w in flags {
                w.flag.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Database `db` is emptied (FLUSHDB, FLUSHALL, a full sync: `replaced_with` None) or
    /// swapped with another (SWAPDB): its watchers are flagged as Redis's
    /// touchAllWatchedKeysInDb does. `emptied(key)`: the key is in `db` now;
    /// `replaced_with(key)`: Some(expired) if the database coming in holds it. A key that was
    /// expired when watched and is deleted, or stays expired, is no change.
    pub fn touch_db(
        &self,
        db: usize,
        emptied: impl Fn(&[u8]) -> bool,
        replaced_with: Option<Incoming>,
    ) {
        if self.active.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(keys) = self.by_db.lock().get_mut(&db) {
            for (k, watchers) in keys.iter_mut() {
                let in_emptied = emptied(k);
                let incoming = replaced_with.and_then(|f| f(k));
                if !in_emptied && incoming.is_none() {
                    continue;
                }
                for w in watchers.iter_mut() {
                    if w.expired {
                        match incoming {
                            None => {
                                w.expired = false;
                                continue;
                            }
                            Some(true) => continue,
                            Some(false) => {}
                        }
                    } else if !in_emptied && incoming == Some(true) {
                        w.expired = true;
                        continue;
                    }
                    w.flag.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}
