//! A connection's input buffer: the bytes read and not yet consumed by complete requests.
//!
//! Its storage is zeroed as reads first reach it, and never again: `zeroed` says how far it is,
//! and reads go straight into that room. (Zeroing all of it before every read would cost 16 KiB
//! per request, and after one 64 MB value, 64 MB per request.) Zeroing only as far as reads go,
//! doubling each time a read fills what is zeroed, and taking the first 16 KiB from
//! `util::chunks`, keeps an idle connection's buffer to the page its one request was read into,
//! as jemalloc's untouched pages do for Redis's query buffers.
//!
//! Its size follows Redis 7.0's query buffer (networking.c's readQueryFromClient and server.c's
//! clientsCronResizeQueryBuffer), which CLIENT LIST's `qbuf`/`qbuf-free` report and Redis's
//! tests check: none until the first read, one chunk for it, greedy growth after that, and for
//! a big argument room for exactly its rest (so that once it is consumed the buffer is the
//! argument's size, not twice that); what a request left behind is given back by the cron
//! (`shrink`), not when it is consumed, so a client sending big values in a row does not
//! reallocate for each.

use std::alloc::Layout;
use std::io::{self, ErrorKind, Read};
use std::ptr::NonNull;

use crate::util::chunks;

/// The room offered to a read, at least; also the size of the first read's buffer (Redis's
/// PROTO_IOBUF_LEN).
pub const READ_CHUNK: usize = 16 * 1024;
/// A bulk argument this long is read into room of exactly its size (PROTO_MBULK_BIG_ARG).
pub const BIG_ARG: usize = 32 * 1024;
/// A buffer larger than this and more than twice its recent peak is cut down to that peak
/// (PROTO_RESIZE_THRESHOLD).
const RESIZE_THRESHOLD: usize = 32 * 1024;
/// Below this much free room the cron leaves the buffer alone.
const SHRINK_MIN_FREE: usize = 4 * 1024;
/// The least room zeroed for a read: a page.
const INIT_STEP: usize = 4096;
/// Greedy growth doubles up to this size, then adds this much (sds's SDS_MAX_PREALLOC).
const MAX_PREALLOC: usize = 1024 * 1024;

/// A buffer's memory: none, a chunk of `util::chunks` (the first read's 16 KiB), or a heap
/// block of any other size. Its bytes are uninitialized until `InBuf` zeroes them.
#[derive(Debug)]
struct Storage {
    ptr: NonNull<u8>,
    cap: usize,
    chunk: bool,
}

// SAFETY: the storage owns its memory alone; a connection's buffer moves between workers.
unsafe impl Send for Storage {}

impl Storage {
    const EMPTY: Storage = Storage {
        ptr: NonNull::dangling(),
        cap: 0,
        chunk: false,
    };

    fn new(cap: usize) -> Storage {
        if cap == 0 {
            return Storage::EMPTY;
        }
        if cap == chunks::CHUNK {
            if let Some(ptr) = chunks::take() {
                return Storage {
                    ptr,
                    cap,
                    chunk: true,
                };
            }
        }
        let layout = Layout::array::<u8>(cap).expect("buffer size");
        // SAFETY: the layout is non-zero-sized.
        let p = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(p) else {
            std::alloc::handle_alloc_error(layout)
        };
        Storage {
            ptr,
            cap,
            chunk: false,
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if self.cap == 0 {
            return;
        }
        if self.chunk {
            // SAFETY: the chunk came from `chunks::take` and goes with this storage.
            unsafe { chunks::give(self.ptr) };
        } else {
            let layout = Layout::array::<u8>(self.cap).expect("buffer size");
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

#[derive(Debug)]
pub struct InBuf {
    store: Storage,
    /// Bytes of `store` zeroed or written so far: the only ones ever read or handed out.
    zeroed: usize,
    filled: usize,
    /// The most the buffer held since the last `shrink` (Redis's querybuf_peak).
    peak: usize,
    /// The last read filled all the room it was given.
    full: bool,
}

impl Default for InBuf {
    fn default() -> Self {
        InBuf {
            store: Storage::EMPTY,
            zeroed: 0,
            filled: 0,
            peak: 0,
            full: false,
        }
    }
}

impl InBuf {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes read so far and not discarded.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the first `zeroed` >= `filled` bytes of the storage are initialized.
        unsafe { std::slice::from_raw_parts(self.store.ptr.as_ptr(), self.filled) }
    }

    /// The initialized room from `from` to `to` (both within `zeroed`).
    fn room(&mut self, from: usize, to: usize) -> &mut [u8] {
        assert!(from <= to && to <= self.zeroed);
        // SAFETY: within the initialized part, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.store.ptr.as_ptr().add(from), to - from) }
    }

    /// Zeroes the storage up to `to` (at most its capacity).
    fn zero_to(&mut self, to: usize) {
        assert!(to <= self.store.cap);
        if to > self.zeroed {
            // SAFETY: within the storage's capacity.
            unsafe {
                std::ptr::write_bytes(
                    self.store.ptr.as_ptr().add(self.zeroed),
                    0,
                    to - self.zeroed,
                )
            };
            self.zeroed = to;
        }
    }

    /// Moves the data to new storage of `cap` bytes (at least `filled`; the rest not zeroed:
    /// see the module's comment).
    fn reallocate(&mut self, cap: usize) {
        debug_assert!(cap >= self.filled);
        let new = Storage::new(cap);
        if self.filled > 0 {
            // SAFETY: both hold at least `filled` bytes and are distinct blocks.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.store.ptr.as_ptr(),
                    new.ptr.as_ptr(),
                    self.filled,
                )
            };
        }
        self.store = new;
        self.zeroed = self.filled;
    }

    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// True when the last read filled all the room it had.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Bytes of storage held (CLIENT LIST's qbuf + qbuf-free, and memory accounting).
    pub fn capacity(&self) -> usize {
        self.store.cap
    }

    /// The first `done` bytes were used by complete requests. Drops them when that is worth a
    /// copy: when nothing else is left, or when they are at least half of what is. Returns how
    /// many were dropped, for `RequestParser::rebase`. The storage stays (see `shrink`).
    pub fn discard(&mut self, done: usize) -> usize {
        if done == self.filled {
            self.filled = 0;
            done
        } else if done > 0 && done >= self.filled / 2 {
            let filled = self.filled;
            self.room(0, filled).copy_within(done..filled, 0);
            self.filled -= done;
            done
        } else {
            0
        }
    }

    /// One read into the free room, grown first as Redis grows its query buffer. `big_arg`:
    /// the buffer length at which a big bulk argument being read ends (see
    /// `RequestParser::big_arg_end`); the read then stops there. Returns the bytes read: 0 at
    /// the end of the stream.
    pub fn read_from<R: Read>(&mut self, r: &mut R, big_arg: Option<usize>) -> io::Result<usize> {
        let cap = self.store.cap;
        let end = match big_arg {
            Some(total) if total > self.filled => {
                if cap < total {
                    // Doubling, but never past the argument: a claimed length costs memory
                    // only as its bytes arrive, and the buffer ends at the argument's size.
                    let grown = (cap * 2).max(self.filled + READ_CHUNK).min(total);
                    self.reallocate(grown);
                }
                total.min(self.store.cap)
            }
            _ => {
                if cap < READ_CHUNK {
                    self.reallocate(self.filled + READ_CHUNK);
                } else if cap - self.filled < READ_CHUNK {
                    let want = self.filled + READ_CHUNK;
                    let grown = if want < MAX_PREALLOC {
                        want * 2
                    } else {
                        want + MAX_PREALLOC
                    };
                    self.reallocate(grown);
                }
                self.store.cap
            }
        };
        // The room zeroed for the read: twice as much as before if the last read filled its
        // room, and a page at least.
        let zeroed = self.zeroed;
        if zeroed < end && (self.full || zeroed - self.filled < INIT_STEP) {
            self.zero_to((zeroed * 2).max(self.filled + INIT_STEP).min(end));
        }
        let (from, end) = (self.filled, end.min(self.zeroed));
        loop {
            match r.read(self.room(from, end)) {
                Ok(n) => {
                    self.filled += n;
                    self.full = self.filled == end;
                    self.peak = self.peak.max(self.filled);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The periodic resize (clientsCronResizeQueryBuffer): a client idle more than 2 s keeps
    /// no free room; a buffer past the threshold and more than twice its recent peak is cut
    /// to that peak (and to no less than `keep`, where a partial request's argument ends).
    /// Starts a new peak period. True when the storage changed.
    pub fn shrink(&mut self, idle_secs: u64, keep: usize) -> bool {
        let cap = self.store.cap;
        let mut target = None;
        if cap - self.filled > SHRINK_MIN_FREE {
            if idle_secs > 2 {
                target = Some(self.filled);
            } else if cap > RESIZE_THRESHOLD && cap / 2 > self.peak {
                target = Some(self.filled.max(self.peak).max(keep).min(cap));
            }
        }
        if let Some(t) = target {
            self.reallocate(t);
        }
        self.peak = self.filled.max(keep);
        target.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its data in pieces of at most `step` bytes.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.step).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn reads_append_and_discard_keeps_the_rest() {
        let mut b = InBuf::new();
        let mut r = Trickle {
            data: b"hello world",
            step: 6,
        };
        assert_eq!(b.read_from(&mut r, None).unwrap(), 6);
        assert_eq!(b.read_from(&mut r, None).unwrap(), 5);
        assert_eq!(b.data(), b"hello world");
        assert_eq!(b.discard(2), 0, "a short prefix is not worth a copy");
        assert_eq!(b.discard(6), 6);
        assert_eq!(b.data(), b"world");
        assert_eq!(b.discard(5), 5);
        assert!(b.is_empty());
        assert_eq!(b.read_from(&mut r, None).unwrap(), 0, "end of stream");
    }

    #[test]
    fn grows_for_a_big_value_and_gives_it_back_once_consumed() {
        let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut b = InBuf::new();
        let mut r = Trickle {
            data: &big,
            step: 64 * 1024,
        };
        let mut reads = 0;
        while b.read_from(&mut r, None).unwrap() > 0 {
            reads += 1;
            // Never more storage than twice the data plus a chunk.
            assert!(
                b.capacity() <= 2 * b.len() + 2 * READ_CHUNK,
                "{}",
                b.capacity()
            );
        }
        assert!(reads >= big.len() / (64 * 1024));
        assert!(b.data() == &big[..]);
        assert_eq!(b.discard(big.len()), big.len());
        // Kept until the cron finds it idle.
        assert!(b.capacity() >= big.len());
        assert!(b.shrink(3, 0));
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn interrupted_reads_are_retried() {
        struct Flaky(bool);
        impl Read for Flaky {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, false) {
                    return Err(ErrorKind::Interrupted.into());
                }
                out[0] = b'x';
                Ok(1)
            }
        }
        let mut b = InBuf::new();
        assert_eq!(b.read_from(&mut Flaky(true), None).unwrap(), 1);
        assert_eq!(b.data(), b"x");
    }

    #[test]
    fn a_big_argument_gets_room_for_exactly_its_rest() {
        let value = vec![b'v'; 400_000];
        let mut b = InBuf::new();
        let mut r = Trickle {
            data: &value,
            step: 64 * 1024,
        };
        assert_eq!(b.capacity(), 0, "no storage before the first read");
        let total = value.len() - 10;
        while b.len() < total {
            assert!(b.read_from(&mut r, Some(total)).unwrap() > 0);
            assert!(b.capacity() <= total);
        }
        assert_eq!(b.len(), total, "nothing read past the argument");
        assert_eq!(b.capacity(), total);
        b.discard(total);
        // Small requests since: the cron cuts the buffer to their peak, not below.
        let mut small = Trickle {
            data: &value[..100],
            step: 100,
        };
        assert!(!b.shrink(0, 0), "the peak was the big argument: reset only");
        b.read_from(&mut small, None).unwrap();
        assert_eq!(b.capacity(), total, "room enough: no growth");
        b.discard(100);
        assert!(b.shrink(0, 0));
        assert_eq!(b.capacity(), 100);
        assert!(!b.shrink(0, 0), "too little free room to be worth it");
    }

    #[test]
    fn an_idle_buffer_is_given_back_by_the_cron_only_after_two_seconds() {
        let mut b = InBuf::new();
        let mut r = Trickle {
            data: b"PING\r\n",
            step: 16,
        };
        b.read_from(&mut r, None).unwrap();
        b.discard(6);
        assert_eq!(b.capacity(), READ_CHUNK);
        assert!(
            !b.shrink(2, 0),
            "under the threshold, and not idle long enough"
        );
        assert_eq!(b.capacity(), READ_CHUNK);
        assert!(b.shrink(3, 0));
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn storage_is_zeroed_only_as_far_as_reads_reach() {
        let mut b = InBuf::new();
        let mut r = Trickle {
            data: b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n",
            step: 1 << 20,
        };
        b.read_from(&mut r, None).unwrap();
        assert_eq!(b.capacity(), READ_CHUNK);
        assert_eq!(b.zeroed, INIT_STEP, "one page zeroed for a short request");
        assert!(!b.is_full());
        // A burst: each read that fills its room doubles what the next one gets, up to the
        // storage, and then reads take whole chunks.
        let burst: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = Trickle {
            data: &burst,
            step: 1 << 20,
        };
        b.discard(b.len());
        let mut sizes = Vec::new();
        while sizes.len() < 6 {
            sizes.push(b.read_from(&mut r, None).unwrap());
            assert!(b.is_full());
            b.discard(b.len());
        }
        assert_eq!(sizes, [4096, 8192, 16384, 16384, 16384, 16384]);
    }
}
