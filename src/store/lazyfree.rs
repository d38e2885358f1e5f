//! Freeing big values off the request path, as Redis's lazyfree.c: UNLINK, FLUSHALL/FLUSHDB
//! ASYNC (and DEL/FLUSH* when `lazyfree-lazy-user-del` / `-user-flush` say so) hand what they
//! removed to one background thread, so that dropping a list of millions of elements does not
//! hold the shard's lock (and the client) for the milliseconds it takes. Small values are
//! dropped at once: sending them would cost more than freeing them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use crossbeam_channel::Sender;

use super::hash::Fields;
use super::value::{Set, Value};

/// Redis's LAZYFREE_THRESHOLD: values whose freeing costs more than this many allocations go to
/// the background thread.
pub const THRESHOLD: usize = 64;

type Garbage = Box<dyn Send>;

static QUEUE: OnceLock<Sender<Garbage>> = OnceLock::new();
static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

fn queue() -> Option<&'static Sender<Garbage>> {
    if let Some(q) = QUEUE.get() {
        return Some(q);
    }
    let (tx, rx) = crossbeam_channel::unbounded::<Garbage>();
    let started = std::thread::Builder::new()
        .name("lazyfree".into())
        .spawn(move || {
            for garbage in rx {
                drop(garbage);
                PENDING.fetch_sub(1, Relaxed);
                FREED.fetch_add(1, Relaxed);
            }
        });
    match started {
        Ok(_) => {
            // Two first callers at once: the second thread's sender is dropped, so it ends.
            let _ = QUEUE.set(tx);
            QUEUE.get()
        }
        // No thread: free in place, as if lazy freeing were off.
        Err(_) => None,
    }
}

/// How many allocations freeing `v` costs, as Redis's `lazyfreeGetFreeEffort` estimates it.
pub fn effort(v: &Value) -> usize {
    match v {
        Value::Str(_) => 1,
        Value::Hash(h) => match h.fields() {
            Fields::Small(_) => 1,
            Fields::Large(t) => t.len(),
        },
        Value::List(l) => l.node_count(),
        Value::Set(s) => match &**s {
            Set::Ints(_) => 1,
            Set::Table(t) => t.len(),
        },
        // A packed set is one allocation; a large one about one per member (Redis: the
        // skiplist's length).
        Value::ZSet(z) => match &**z {
            super::ZSet::Packed(_) => 1,
            super::ZSet::Large(_) => z.len(),
        },
        Value::Stream(s) => s.free_effort(),
    }
}

/// Drops `garbage` on the background thread when its freeing costs more than `THRESHOLD`
/// allocations (`effort`), here otherwise.
pub fn free_with_effort<T: Send + 'static>(garbage: T, effort: usize) {
    if effort <= THRESHOLD {
        return;
    }
    if let Some(q) = queue() {
        PENDING.fetch_add(1, Relaxed);
        if let Err(e) = q.send(Box::new(garbage)) {
            PENDING.fetch_sub(1, Relaxed);
            drop(e.into_inner());
        }
    }
}

/// `free_with_effort` for a removed value.
pub fn free(v: Value) {
    let e = effort(&v);
    free_with_effort(v, e);
}

/// CONFIG RESETSTAT zeroes `lazyfreed_objects`, as Redis's lazyfreeResetStats.
pub fn reset_stats() {
    FREED.store(0, Relaxed);
}

/// INFO's `lazyfree_pending_objects` and `lazyfreed_objects`.
pub fn stats() -> (u64, u64) {
    (PENDING.load(Relaxed), FREED.load(Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_values_are_freed_in_the_background() {
        let (_, before) = stats();
        let mut l = crate::store::List::default();
        for i in 0..100_000u32 {
            let e = format!("element-{i}-with-some-padding");
            l.push(crate::store::list::End::Right, e.as_bytes());
        }
        let v = Value::List(Box::new(l));
        assert!(effort(&v) > THRESHOLD);
        free(v);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stats().1 == before {
            assert!(std::time::Instant::now() < deadline, "never freed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // A small one is dropped in place.
        free(Value::str(b"x"));
    }
}
