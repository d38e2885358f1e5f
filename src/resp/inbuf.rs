//! A connection's input buffer: the bytes read and not yet consumed by complete requests.
//!
//! Its storage is zeroed once, when it grows, and never again: reads go straight into the free
//! room. (Resizing a `Vec` up to its capacity before every read would zero all of it each time:
//! 16 KiB per request, and after one 64 MB value, 64 MB per request.)

use std::io::{self, ErrorKind, Read};

/// The room offered to a read, at least half of it; also the starting size.
pub const READ_CHUNK: usize = 16 * 1024;
/// A buffer larger than this is given back once it is empty: a client that sent one big value
/// does not keep its memory.
const KEEP_MAX: usize = 1024 * 1024;

#[derive(Debug)]
pub struct InBuf {
    buf: Vec<u8>,
    filled: usize,
}

impl Default for InBuf {
    fn default() -> Self {
        InBuf {
            buf: vec![0; READ_CHUNK],
            filled: 0,
        }
    }
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

    /// Bytes of storage held (for tests and memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The first `done` bytes were used by complete requests. Drops them when that is worth a
    /// copy: when nothing else is left, or when they are at least half of what is. Returns how
    /// many were dropped, for `RequestParser::rebase`.
    pub fn discard(&mut self, done: usize) -> usize {
        if done == self.filled {
            self.filled = 0;
            if self.buf.len() > KEEP_MAX {
                *self = InBuf::default();
            }
            done
        } else if done > 0 && done >= self.filled / 2 {
            self.buf.copy_within(done..self.filled, 0);
            self.filled -= done;
            done
        } else {
            0
        }
    }

    /// One read into the free room, doubling the storage first when less than half a chunk is
    /// left. Returns the bytes read: 0 at the end of the stream.
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.buf.len() - self.filled < READ_CHUNK / 2 {
            let grown = (self.buf.len() * 2).max(self.filled + READ_CHUNK);
            self.buf.resize(grown, 0);
        }
        loop {
            match r.read(&mut self.buf[self.filled..]) {
                Ok(n) => {
                    self.filled += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
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
        assert_eq!(b.read_from(&mut r).unwrap(), 6);
        assert_eq!(b.read_from(&mut r).unwrap(), 5);
        assert_eq!(b.data(), b"hello world");
        assert_eq!(b.discard(2), 0, "a short prefix is not worth a copy");
        assert_eq!(b.discard(6), 6);
        assert_eq!(b.data(), b"world");
        assert_eq!(b.discard(5), 5);
        assert!(b.is_empty());
        assert_eq!(b.read_from(&mut r).unwrap(), 0, "end of stream");
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
        while b.read_from(&mut r).unwrap() > 0 {
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
        assert_eq!(b.capacity(), READ_CHUNK);
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
        assert_eq!(b.read_from(&mut Flaky(true)).unwrap(), 1);
        assert_eq!(b.data(), b"x");
    }
}
