//! The encoding limits redis.conf and CONFIG SET set (`set-max-intset-entries`,
//! `hash-max-listpack-*`, `zset-max-listpack-*`, `list-max-listpack-size`,
//! `hll-sparse-max-bytes`), read by a value when it converts (a list: when it fills a node).
//! The config's own value: CONFIG GET reads them here.
//! Process-wide atomics: one relaxed load where a value grows, no lock and no config lookup
//! on the hot paths. As in Redis, a new limit applies to values from their next write on;
//! none is converted back.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// `list-max-listpack-size`: Redis's default -2 (8 KB nodes); positive: entries per node.
static LIST_MAX_LISTPACK_SIZE: AtomicI32 = AtomicI32::new(-2);

static SET_MAX_INTSET_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static HASH_MAX_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static HASH_MAX_VALUE: AtomicUsize = AtomicUsize::new(64);
static ZSET_MAX_ENTRIES: AtomicUsize = AtomicUsize::new(128);
static ZSET_MAX_VALUE: AtomicUsize = AtomicUsize::new(64);

pub fn max_listpack_size() -> i32 {
    LIST_MAX_LISTPACK_SIZE.load(Ordering::Relaxed)
}

pub fn set_max_listpack_size(fill: i32) {
    LIST_MAX_LISTPACK_SIZE.store(fill, Ordering::Relaxed);
}

pub fn max_intset_entries() -> usize {
    SET_MAX_INTSET_ENTRIES.load(Ordering::Relaxed)
}

pub fn hash_max_entries() -> usize {
    HASH_MAX_ENTRIES.load(Ordering::Relaxed)
}

pub fn hash_max_value() -> usize {
    HASH_MAX_VALUE.load(Ordering::Relaxed)
}

pub fn set_max_intset_entries(n: usize) {
    SET_MAX_INTSET_ENTRIES.store(n, Ordering::Relaxed);
}

pub fn set_hash_max_entries(n: usize) {
    HASH_MAX_ENTRIES.store(n, Ordering::Relaxed);
}

pub fn set_hash_max_value(n: usize) {
    HASH_MAX_VALUE.store(n, Ordering::Relaxed);
}

/// `hll-sparse-max-bytes`: a sparse HyperLogLog that would grow past it turns dense.
static HLL_SPARSE_MAX: AtomicUsize = AtomicUsize::new(3000);

pub fn hll_sparse_max() -> usize {
    HLL_SPARSE_MAX.load(Ordering::Relaxed)
}

pub fn set_hll_sparse_max(n: usize) {
    HLL_SPARSE_MAX.store(n, Ordering::Relaxed);
}

pub fn zset_max_entries() -> usize {
    ZSET_MAX_ENTRIES.load(Ordering::Relaxed)
}

pub fn zset_max_value() -> usize {
    ZSET_MAX_VALUE.load(Ordering::Relaxed)
}

pub fn set_zset_max_entries(n: usize) {
    ZSET_MAX_ENTRIES.store(n, Ordering::Relaxed);
}

pub fn set_zset_max_value(n: usize) {
    ZSET_MAX_VALUE.store(n, Ordering::Relaxed);
}

/// `stream-node-max-bytes` and `stream-node-max-entries`: where a stream's node ends.
static STREAM_NODE_MAX_BYTES: AtomicUsize = AtomicUsize::new(4096);
static STREAM_NODE_MAX_ENTRIES: AtomicUsize = AtomicUsize::new(100);

pub fn stream_node_max_bytes() -> usize {
    STREAM_NODE_MAX_BYTES.load(Ordering::Relaxed)
}

pub fn stream_node_max_entries() -> usize {
    STREAM_NODE_MAX_ENTRIES.load(Ordering::Relaxed)
}

pub fn set_stream_node_max_bytes(n: usize) {
    STREAM_NODE_MAX_BYTES.store(n, Ordering::Relaxed);
}

pub fn set_stream_node_max_entries(n: usize) {
    STREAM_NODE_MAX_ENTRIES.store(n, Ordering::Relaxed);
}
