//! The allocator each Lua interpreter runs on (`lua_newstate`'s `lua_Alloc`).
//!
//! Lua makes many small blocks (strings, closures, prototypes, table parts) and tells its
//! allocator the size of every block it frees or resizes, so a block needs no header: blocks of
//! up to 256 bytes come from 4 KiB pages, each page holding blocks of one size (a multiple of 8),
//! and a block's page is its address rounded down. glibc's malloc, which Lua's default
//! allocator calls, adds 8 bytes to each block and rounds to 16 with a 32-byte minimum; for a
//! cache of 10,000 scripts that overhead was a fifth of the interpreter's memory, and the
//! resident set grew more than Redis's (whose Lua allocates from jemalloc's size classes).
//! Larger blocks go to malloc.
//!
//! Pages come from the system in chunks of 64 (one mapping each, so that a page given back does
//! not split a mapping); a page whose last block is freed returns to a list of free pages, its
//! memory handed back to the system (MADV_DONTNEED) once more than a few are free. Chunks are
//! unmapped when the interpreter closes, by which time Lua has freed every block.

use std::ffi::c_void;
use std::ptr;

const PAGE: usize = 4096;
const GRAIN: usize = 8;
/// The largest block served from pages.
const MAX_SMALL: usize = 256;
const CLASSES: usize = MAX_SMALL / GRAIN;
const CHUNK_PAGES: usize = 64;
/// Free pages kept resident for reuse before further ones are handed back.
const WARM_PAGES: usize = 16;

/// At the start of each page in use.
#[repr(C)]
struct Page {
    /// Freed blocks of this page.
    free: *mut Free,
    /// The class's list of pages with room.
    next: *mut Page,
    prev: *mut Page,
    /// Blocks handed out and not freed.
    live: u32,
    /// Offset of the first byte never handed out.
    bump: u32,
    class: u32,
    /// In its class's list (it has room).
    listed: bool,
}

const HEADER: usize = std::mem::size_of::<Page>().div_ceil(GRAIN) * GRAIN;

struct Free {
    next: *mut Free,
}

pub struct Pool {
    /// Per class, the pages with room (the head is allocated from).
    partial: [*mut Page; CLASSES],
    /// Pages no block is in; the first `WARM_PAGES` pushed since the last reuse are resident.
    free_pages: Vec<*mut u8>,
    warm: usize,
    chunks: Vec<*mut u8>,
}

fn class_of(size: usize) -> usize {
    size.div_ceil(GRAIN) - 1
}

fn block_size(class: usize) -> usize {
    (class + 1) * GRAIN
}

impl Pool {
    pub fn new() -> Box<Pool> {
        Box::new(Pool {
            partial: [ptr::null_mut(); CLASSES],
            free_pages: Vec::new(),
            warm: 0,
            chunks: Vec::new(),
        })
    }

    /// Pages taken from the system, in use or free.
    #[cfg(test)]
    fn mapped_pages(&self) -> usize {
        self.chunks.len() * CHUNK_PAGES
    }

    fn page(&mut self) -> Option<*mut u8> {
        if let Some(p) = self.free_pages.pop() {
            self.warm = self.warm.saturating_sub(1);
            return Some(p);
        }
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let chunk = unsafe {
            libc::mmap(
                ptr::null_mut(),
                PAGE * CHUNK_PAGES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if chunk == libc::MAP_FAILED {
            return None;
        }
        let chunk = chunk as *mut u8;
        self.chunks.push(chunk);
        // The chunk's other pages, the highest first, so that pop takes them in address order.
        for i in (1..CHUNK_PAGES).rev() {
            // SAFETY: within the mapping just made.
            self.free_pages.push(unsafe { chunk.add(i * PAGE) });
        }
        self.warm = 0;
        Some(chunk)
    }

    unsafe fn unlink(&mut self, p: *mut Page) {
        let c = (*p).class as usize;
        if (*p).prev.is_null() {
            self.partial[c] = (*p).next;
        } else {
            (*(*p).prev).next = (*p).next;
        }
        if !(*p).next.is_null() {
            (*(*p).next).prev = (*p).prev;
        }
        (*p).listed = false;
    }

    unsafe fn push(&mut self, p: *mut Page) {
        let c = (*p).class as usize;
        (*p).prev = ptr::null_mut();
        (*p).next = self.partial[c];
        if !(*p).next.is_null() {
            (*(*p).next).prev = p;
        }
        self.partial[c] = p;
        (*p).listed = true;
    }

    unsafe fn alloc_small(&mut self, class: usize) -> *mut u8 {
        let size = block_size(class);
        let mut p = self.partial[class];
        if p.is_null() {
            let Some(mem) = self.page() else {
                return ptr::null_mut();
            };
            p = mem as *mut Page;
            p.write(Page {
                free: ptr::null_mut(),
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                live: 0,
                bump: HEADER as u32,
                class: class as u32,
                listed: false,
            });
            self.push(p);
        }
        let block = if !(*p).free.is_null() {
            let b = (*p).free;
            (*p).free = (*b).next;
            b as *mut u8
        } else {
            let b = (p as *mut u8).add((*p).bump as usize);
            (*p).bump += size as u32;
            b
        };
        (*p).live += 1;
        if (*p).free.is_null() && (*p).bump as usize + size > PAGE {
            self.unlink(p);
        }
        block
    }

    unsafe fn free_small(&mut self, block: *mut u8) {
        let p = (block as usize & !(PAGE - 1)) as *mut Page;
        let b = block as *mut Free;
        (*b).next = (*p).free;
        (*p).free = b;
        (*p).live -= 1;
        if !(*p).listed {
            self.push(p);
        }
        if (*p).live == 0 {
            self.unlink(p);
            if self.warm >= WARM_PAGES {
                libc::madvise(p as *mut c_void, PAGE, libc::MADV_DONTNEED);
            } else {
                self.warm += 1;
            }
            self.free_pages.push(p as *mut u8);
        }
    }

    /// Lua's allocator contract: `nsize` 0 frees, a null `ptr` allocates, else resizes;
    /// `osize` is the block's size whenever `ptr` is not null.
    unsafe fn realloc(&mut self, ptr: *mut u8, osize: usize, nsize: usize) -> *mut u8 {
        let small = |n: usize| n <= MAX_SMALL;
        if nsize == 0 {
            if !ptr.is_null() {
                if small(osize) {
                    self.free_small(ptr);
                } else {
                    libc::free(ptr as *mut c_void);
                }
            }
            return ptr::null_mut();
        }
        if ptr.is_null() {
            return if small(nsize) {
                self.alloc_small(class_of(nsize))
            } else {
                libc::malloc(nsize) as *mut u8
            };
        }
        match (small(osize), small(nsize)) {
            (true, true) if class_of(osize) == class_of(nsize) => ptr,
            (false, false) => libc::realloc(ptr as *mut c_void, nsize) as *mut u8,
            _ => {
                let new = self.realloc(ptr::null_mut(), 0, nsize);
                if !new.is_null() {
                    ptr::copy_nonoverlapping(ptr, new, osize.min(nsize));
                    self.realloc(ptr, osize, 0);
                }
                new
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for &c in &self.chunks {
            // SAFETY: each chunk is a mapping of this size made by `page`; the interpreter
            // that used it is closed.
            unsafe { libc::munmap(c as *mut c_void, PAGE * CHUNK_PAGES) };
        }
    }
}

/// The `lua_Alloc` for `lua_newstate`, with a `Pool` as its user data.
///
/// # Safety
/// `ud` is the `Pool` of the state calling, used by no other; `ptr` and `osize` are as Lua
/// passes them (a block of this pool of that size).
pub unsafe extern "C" fn lua_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    let pool = &mut *(ud as *mut Pool);
    pool.realloc(ptr as *mut u8, osize, nsize) as *mut c_void
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of random sizes allocated, resized and freed in random order keep their bytes,
    /// never overlap, and leave no page in use once all are freed.
    #[test]
    fn blocks_keep_their_bytes() {
        let mut pool = Pool::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut live: Vec<(*mut u8, usize, u8)> = Vec::new();
        let fill = |p: *mut u8, n: usize, tag: u8| unsafe { ptr::write_bytes(p, tag, n) };
        let check = |p: *mut u8, n: usize, tag: u8| unsafe {
            assert!(std::slice::from_raw_parts(p, n).iter().all(|&b| b == tag));
        };
        for step in 0..200_000u32 {
            let r = next();
            let tag = (step % 251) as u8 + 1;
            match r % 4 {
                0 | 1 => {
                    let n = 1 + (next() % if r % 64 == 0 { 2000 } else { 300 }) as usize;
                    let p = unsafe { pool.realloc(ptr::null_mut(), 0, n) };
                    assert!(!p.is_null());
                    if n <= MAX_SMALL {
                        assert_eq!(p as usize % GRAIN, 0);
                    }
                    fill(p, n, tag);
                    live.push((p, n, tag));
                }
                2 if !live.is_empty() => {
                    let i = (next() % live.len() as u64) as usize;
                    let (p, n, t) = live.swap_remove(i);
                    check(p, n, t);
                    unsafe { pool.realloc(p, n, 0) };
                }
                3 if !live.is_empty() => {
                    let i = (next() % live.len() as u64) as usize;
                    let (p, n, t) = live[i];
                    let m = 1 + (next() % 400) as usize;
                    let q = unsafe { pool.realloc(p, n, m) };
                    check(q, n.min(m), t);
                    fill(q, m, tag);
                    live[i] = (q, m, tag);
                }
                _ => {}
            }
        }
        for &(p, n, t) in &live {
            check(p, n, t);
        }
        for (p, n, _) in live.drain(..) {
            unsafe { pool.realloc(p, n, 0) };
        }
        assert!(pool.partial.iter().all(|p| p.is_null()));
        assert_eq!(pool.free_pages.len(), pool.mapped_pages());
    }

    /// A page's capacity is its size less the header, in blocks of its class.
    #[test]
    fn a_page_fills_before_the_next() {
        let mut pool = Pool::new();
        let per_page = (PAGE - HEADER) / 64;
        let blocks: Vec<*mut u8> = (0..per_page + 1)
            .map(|_| unsafe { pool.realloc(ptr::null_mut(), 0, 60) })
            .collect();
        let page = |p: *mut u8| p as usize & !(PAGE - 1);
        assert!(blocks[..per_page]
            .iter()
            .all(|&b| page(b) == page(blocks[0])));
        assert_ne!(page(blocks[per_page]), page(blocks[0]));
        for b in blocks {
            unsafe { pool.realloc(b, 60, 0) };
        }
    }
}
