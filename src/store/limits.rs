//! The encoding limits redis.conf sets (`set-max-intset-entries`, `hash-max-listpack-*`;
//! `list-max-listpack-size` lives beside the list code), read by a value when it converts.
//! Process-wide atomics: one relaxed load where a value grows, no lock and no config lookup
//! on the hot paths. As in Redis, a new limit applies to values from their next write on;
//! none is converted back.

use std::sync::atomic::{AtomicUsize, Ordering};

static SET_MAX_INTSET_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static HASH_MAX_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static HASH_MAX_VALUE: AtomicUsize = AtomicUsize::new(64);

pub fn set_max_intset_entries() -> usize {
    SET_MAX_INTSET_ENTRIES.load(Ordering::Relaxed)
}

pub fn hash_max_entries() -> usize {
    HASH_MAX_ENTRIES.load(Ordering::Relaxed)
}

pub fn hash_max_value() -> usize {
    HASH_MAX_VALUE.load(Ordering::Relaxed)
}

/// The limits as `get` (CONFIG GET's view of the configuration) gives them; a value that
/// does not parse (it was checked when set) leaves a limit as it is.
pub fn apply(get: impl Fn(&str) -> Option<String>) {
    let num = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
    let size = |v: i64| v.max(0) as usize;
    if let Some(v) = num("set-max-intset-entries") {
        SET_MAX_INTSET_ENTRIES.store(size(v), Ordering::Relaxed);
    }
    if let Some(v) = num("hash-max-listpack-entries") {
        HASH_MAX_ENTRIES.store(size(v), Ordering::Relaxed);
    }
    if let Some(v) = num("hash-max-listpack-value") {
        HASH_MAX_VALUE.store(size(v), Ordering::Relaxed);
    }
    if let Some(v) = num("list-max-listpack-size") {
        super::list::set_max_listpack_size(v.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
    }
}
