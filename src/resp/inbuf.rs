//! A connection's input buffer: the bytes read and not yet consumed by complete requests.
//!
//! Its storage is zeroed once, when it grows, and never again: reads go straight into the free
//! room. (Resizing a `Vec` up to its capacity before every read would zero all of it each time:
//! 16 KiB per request, and after one 64 MB value, 64 MB per request.)
//!
//! Its size follows Redis 7.0's query buffer (networking.c's readQueryFromClient and server.c's
//! clientsCronResizeQueryBuffer), which CLIENT LIST's `qbuf`/`qbuf-free` report and Redis's
//! tests check: none until the first read, one chunk for it, greedy growth after that, and for
//! a big argument room for exactly its rest (so that once it is consumed the buffer is the
//! argument's size, not twice that); what a request left behind is given back by the cron
//! (`shrink`), not when it is consumed, so a client sending big values in a row does not
//! reallocate for each.

use std::io::{self, ErrorKind, Read};

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
/// Greedy growth doubles up to this size, then adds this much (sds's SDS_MAX_PREALLOC).
const MAX_PREALLOC: usize = 1024 * 1024;

#[derive(Debug, Default)]
pub struct InBuf {
    buf: Vec<u8>,
    filled: usize,
    /// The most the buffer held since the last `shrink` (Redis's querybuf_peak).
    peak: usize,
}

impl InBuf {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes read so far and not discarded.
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// True when the last read filled all the room it had.
    pub fn is_full(&self) -> bool {
        self.filled == self.buf.len()
    }

    /// Bytes of storage held (CLIENT LIST's qbuf + qbuf-free, and memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The first `done` bytes were used by complete requests. Drops them when that is worth a
    /// copy: when nothing else is left, or when they are at least half of what is. Returns how
    /// many were dropped, for `RequestParser::rebase`. The storage stays (see `shrink`).
    pub fn discard(&mut self, done: usize) -> usize {
        if done == self.filled {
            self.filled = 0;
            done
        } else if done > 0 && done >= self.filled / 2 {
            self.buf.copy_within(done..self.filled, 0);
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
    /// Grows the storage to `len` zeroed bytes. An empty buffer gets fresh zeroed memory
    /// (calloc), whose pages the system provides only as the reads touch them: 10,000 idle
    /// subscribers then hold the page their SUBSCRIBE was read into, not a written-over 16 KB
    /// chunk each (18 KB per subscriber against Redis's 10 KB).
    fn grow(&mut self, len: usize) {
        if self.buf.is_empty() {
            self.buf = vec![0; len];
        } else {
            self.buf.resize(len, 0);
        }
    }

    pub fn read_from<R: Read>(&mut self, r: &mut R, big_arg: Option<usize>) -> io::Result<usize> {
        let cap = self.buf.len();
        let end = match big_arg {
            Some(total) if total > self.filled => {
                if cap < total {
                    // Doubling, but never past the argument: a claimed length costs memory
                    // only as its bytes arrive, and the buffer ends at the argument's size.
                    let grown = (cap * 2).max(self.filled + READ_CHUNK).min(total);
                    self.grow(grown);
                }
                total.min(self.buf.len())
            }
            _ => {
                if cap < READ_CHUNK {
                    self.grow(self.filled + READ_CHUNK);
                } else if cap - self.filled < READ_CHUNK {
                    let want = self.filled + READ_CHUNK;
                    let grown = if want < MAX_PREALLOC {
                        want * 2
                    } else {
                        want + MAX_PREALLOC
                    };
                    self.grow(grown);
                }
                self.buf.len()
            }
        };
        loop {
            match r.read(&mut self.buf[self.filled..end]) {
                Ok(n) => {
                    self.filled += n;
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
        let cap = self.buf.len();
        let mut target = None;
        if cap - self.filled > SHRINK_MIN_FREE {
            if idle_secs > 2 {
                target = Some(self.filled);
            } else if cap > RESIZE_THRESHOLD && cap / 2 > self.peak {
                target = Some(self.filled.max(self.peak).max(keep).min(cap));
            }
        }
        if let Some(t) = target {
            self.buf.truncate(t);
            self.buf.shrink_to_fit();
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
}
