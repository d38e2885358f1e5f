//! The process's memory as eviction sees it (Redis's `zmalloc_used_memory`): a global
//! allocator that forwards to the system's and counts what each block costs there.
//!
//! Each thread adds to a counter of its own and moves it to the shared total once it passes
//! `BATCH` either way, so an allocation costs a thread-local add, no shared cache line; the
//! total is off by at most `BATCH` per thread, and a thread reading it sees its own count
//! exact (the client whose write passes the limit is the one whose worker checks it). A
//! block is counted as glibc's malloc carves it (an 8-byte header, 16-byte granules, 32 bytes
//! at least; large blocks mmapped whole pages), so the total follows what mallinfo says is in
//! use (`allocator_allocated`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

pub struct Counting;

static USED: AtomicIsize = AtomicIsize::new(0);
/// Small enough for Redis's maxmemory tests, which expect `used_memory` within 4 KB of the
/// limit once evictions are done; large enough that the shared total is written once per
/// several commands.
const BATCH: isize = 4 * 1024;
/// glibc's default M_MMAP_THRESHOLD: blocks from here on are mmapped.
const MMAP_FROM: usize = 128 * 1024;

thread_local! {
    static PENDING: Cell<isize> = const { Cell::new(0) };
    /// What this thread has moved to the shared total: with PENDING, its own net count
    /// (`thread_net`), kept at no cost per allocation.
    static MOVED: Cell<isize> = const { Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// Everything this thread has counted: the unit test's measure, which the other tests
    /// running in parallel threads cannot move (they do move the shared total).
    static MINE: Cell<isize> = const { Cell::new(0) };
}

/// What a block of `size` bytes costs in glibc's heap.
#[inline]
fn cost(size: usize) -> isize {
    if size >= MMAP_FROM {
        ((size + 16 + 4095) & !4095) as isize
    } else {
        ((size + 8 + 15) & !15).max(32) as isize
    }
}

#[inline]
fn account(delta: isize) {
    #[cfg(test)]
    MINE.with(|m| m.set(m.get() + delta));
    PENDING.with(|p| {
        let v = p.get() + delta;
        p.set(v);
        if !(-BATCH..=BATCH).contains(&v) {
            move_pending(p);
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(cost(layout.size()));
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(cost(layout.size()));
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        account(-cost(layout.size()));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(cost(new_size) - cost(layout.size()));
        }
        p
    }
}

/// Counts memory taken from the system outside the allocator (`chunks`' mapped buffers) as
/// if allocated: eviction and INFO see it like any block.
pub fn count_external(delta: isize) {
    account(delta);
}

/// Bytes the process holds from the allocator (INFO's `used_memory`), with this thread's
/// count not yet in the total.
#[inline]
pub fn used() -> u64 {
    (USED.load(Ordering::Relaxed) + PENDING.with(|p| p.get())).max(0) as u64
}

static PEAK: AtomicIsize = AtomicIsize::new(0);
static STARTUP: AtomicIsize = AtomicIsize::new(0);

/// The most `used` has been when looked at (INFO's `used_memory_peak`; the server looks ten
/// times a second).
pub fn peak() -> u64 {
    PEAK.fetch_max(USED.load(Ordering::Relaxed), Ordering::Relaxed)
        .max(USED.load(Ordering::Relaxed))
        .max(0) as u64
}

/// What the process held once started, before any data (`used_memory_startup`).
pub fn startup() -> u64 {
    STARTUP.load(Ordering::Relaxed).max(0) as u64
}

pub fn mark_startup() {
    flush();
    STARTUP.store(USED.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Adds this thread's pending count to the total now (a test that reads `used` right after
/// allocating).
pub fn flush() {
    PENDING.with(move_pending);
}

/// Moves this thread's pending count to the shared total.
#[inline]
fn move_pending(p: &Cell<isize>) {
    let v = p.replace(0);
    USED.fetch_add(v, Ordering::Relaxed);
    MOVED.with(|m| m.set(m.get() + v));
}

/// What this thread has allocated less what it freed, since it started: the difference of
/// two readings is what the code between them did, whatever other threads did meanwhile.
pub fn thread_net() -> i64 {
    (MOVED.with(|m| m.get()) + PENDING.with(|p| p.get())) as i64
}

/// What glibc itself says is in use (heap chunks in use in every arena, plus mmapped blocks).
pub fn allocator_allocated() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as u64
}

/// What glibc holds from the system (arenas plus mmapped blocks), used or free.
pub fn allocator_active() -> u64 {
    // SAFETY: as above.
    let m = unsafe { libc::mallinfo2() };
    (m.arena + m.hblkhd) as u64
}

/// One malloc arena for every thread: with one per worker, a block freed by the thread that
/// evicts it stays in another thread's arena, and under a write load at the limit the resident
/// set grew past twice `maxmemory` while `used` stayed at it.
pub fn configure() {
    // SAFETY: mallopt only changes the allocator's tuning.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

/// Bytes free inside glibc's heap: held from the system, in use by nobody.
pub fn heap_free() -> u64 {
    allocator_active().saturating_sub(allocator_allocated())
}

/// Gives free memory back to the system (MEMORY PURGE).
pub fn purge() {
    // SAFETY: malloc_trim is safe to call at any time.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_count_follows_allocations() {
        let mine = || super::MINE.with(|m| m.get());
        let before = mine();
        let blocks: Vec<Vec<u8>> = (0..1000).map(|_| Vec::with_capacity(1000)).collect();
        // 1000 blocks of 1008 bytes each in glibc, and the vector of them.
        let grown = mine() - before;
        assert!((1_008_000..1_100_000).contains(&grown), "{grown}");
        drop(blocks);
        assert_eq!(mine(), before);
        // What this thread counted reaches the shared total once flushed.
        super::flush();
        assert_eq!(super::PENDING.with(|p| p.get()), 0);
    }
}
