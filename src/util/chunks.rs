//! 16 KiB read buffers carved from mmapped regions, for connections' first input buffers.
//!
//! Every connection's first read gets a 16 KiB buffer (Redis's PROTO_IOBUF_LEN, which CLIENT
//! LIST reports and Redis's tests check), but an idle one writes only its first page. From
//! glibc's heap such a buffer sits between the connection's small blocks, whose pages are
//! written, so each one cost 8 KiB of resident memory; jemalloc keeps 16 KiB blocks apart from
//! small ones and Redis pays one page. Carved from regions of their own, untouched pages stay
//! untouched: a connection pays for the pages its reads reach.
//!
//! A chunk given back keeps its pages for the next connection while few are free; past that,
//! its pages go back to the system (MADV_DONTNEED) so that 10,000 clients gone leave nothing
//! resident. Regions are never unmapped: their address space is all they cost once empty.

use std::ptr::NonNull;

use parking_lot::Mutex;

pub const CHUNK: usize = 16 * 1024;
/// Chunks per mapped region (1 MiB).
const PER_REGION: usize = 64;
/// Free chunks kept resident for reuse; the ones freed past this give their pages back.
const KEEP_RESIDENT: usize = 256;

struct Free {
    /// Free chunks whose pages may be resident (reused first).
    warm: Vec<usize>,
    /// Free chunks whose pages were given back.
    cold: Vec<usize>,
}

static FREE: Mutex<Free> = Mutex::new(Free {
    warm: Vec::new(),
    cold: Vec::new(),
});

/// A chunk of `CHUNK` bytes, zeroed on first use of each page (fresh or given-back pages read
/// as zeros) but not necessarily zero if reused. None if the system has no memory to map.
pub fn take() -> Option<NonNull<u8>> {
    let mut free = FREE.lock();
    let addr = match free.warm.pop().or_else(|| free.cold.pop()) {
        Some(a) => a,
        None => {
            let len = CHUNK * PER_REGION;
            // SAFETY: an anonymous private mapping; no file, no fixed address.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return None;
            }
            let base = p as usize;
            free.cold
                .extend((1..PER_REGION).rev().map(|i| base + i * CHUNK));
            base
        }
    };
    drop(free);
    super::alloc::count_external(CHUNK as isize);
    NonNull::new(addr as *mut u8)
}

/// Gives back a chunk `take` returned.
///
/// # Safety
/// `chunk` came from `take` and is not used after this call.
pub unsafe fn give(chunk: NonNull<u8>) {
    super::alloc::count_external(-(CHUNK as isize));
    let addr = chunk.as_ptr() as usize;
    let mut free = FREE.lock();
    if free.warm.len() < KEEP_RESIDENT {
        free.warm.push(addr);
        return;
    }
    drop(free);
    // SAFETY: the chunk is ours (see the contract) and lies in a region we mapped.
    unsafe { libc::madvise(addr as *mut libc::c_void, CHUNK, libc::MADV_DONTNEED) };
    FREE.lock().cold.push(addr);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_distinct_writable_and_reused() {
        let a = take().unwrap();
        let b = take().unwrap();
        assert_ne!(a, b);
        let (x, y) = (a.as_ptr() as usize, b.as_ptr() as usize);
        assert!(x.abs_diff(y) >= CHUNK, "chunks overlap");
        // SAFETY: both are ours, CHUNK bytes each.
        unsafe {
            std::ptr::write_bytes(a.as_ptr(), 1, CHUNK);
            std::ptr::write_bytes(b.as_ptr(), 2, CHUNK);
            assert_eq!(*a.as_ptr().add(CHUNK - 1), 1);
            give(a);
            give(b);
        }
        let c = take().unwrap();
        // SAFETY: ours again.
        unsafe { give(c) };
    }
}
