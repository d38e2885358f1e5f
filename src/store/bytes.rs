//! `CompactBytes`: a byte string in 16 bytes. Up to 15 bytes live inline, with no heap
//! allocation; longer ones on the heap with a 32-bit length and capacity.
//!
//! Why: a million small keys and values is the common Redis workload, and a map bucket of
//! `(Box<[u8]>, Vec<u8>)` costs 40 bytes plus two heap blocks of at least 32 bytes each per key.
//! With this type a key and a short value fit in the bucket itself.
//!
//! Representation (little-endian only, checked at compile time): the first byte tells the two
//! apart. Heap blocks are allocated with alignment 2, so a heap pointer's lowest bit is 0; the
//! inline form stores `len << 1 | 1` in that byte and the data in the 15 bytes after it.

use std::alloc::{self, Layout};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

#[cfg(not(target_endian = "little"))]
compile_error!("CompactBytes assumes a little-endian target");

const INLINE_CAP: usize = 15;

#[derive(Clone, Copy)]
#[repr(C)]
struct Heap {
    ptr: NonNull<u8>,
    len: u32,
    cap: u32,
}

#[repr(C)]
union Repr {
    inline: [u8; 16],
    heap: Heap,
}

pub struct CompactBytes {
    repr: Repr,
}

// SAFETY: CompactBytes owns its heap block exclusively, like Vec<u8>.
unsafe impl Send for CompactBytes {}
// SAFETY: shared access is read-only, like &Vec<u8>.
unsafe impl Sync for CompactBytes {}

fn layout(cap: usize) -> Layout {
    // Alignment 2 keeps the pointer's low bit free for the inline tag.
    Layout::from_size_align(cap, 2).expect("capacity fits a layout")
}

/// Lengths beyond u32 cannot arise: Redis's limits (512 MB) stop them long before.
fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("CompactBytes is limited to 4 GiB")
}

impl CompactBytes {
    pub const fn new() -> Self {
        let mut inline = [0u8; 16];
        inline[0] = 1;
        CompactBytes {
            repr: Repr { inline },
        }
    }

    fn is_inline(&self) -> bool {
        // SAFETY: both variants start with an initialized byte.
        unsafe { self.repr.inline[0] & 1 == 1 }
    }

    pub fn len(&self) -> usize {
        if self.is_inline() {
            // SAFETY: inline variant checked.
            unsafe { (self.repr.inline[0] >> 1) as usize }
        } else {
            // SAFETY: heap variant checked.
            unsafe { self.repr.heap.len as usize }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        if self.is_inline() {
            INLINE_CAP
        } else {
            // SAFETY: heap variant checked.
            unsafe { self.repr.heap.cap as usize }
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.is_inline() {
            let n = self.len();
            // SAFETY: inline variant; n <= 15.
            unsafe { &self.repr.inline[1..1 + n] }
        } else {
            // SAFETY: heap variant; ptr is valid for len bytes.
            unsafe {
                let h = self.repr.heap;
                std::slice::from_raw_parts(h.ptr.as_ptr(), h.len as usize)
            }
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.is_inline() {
            let n = self.len();
            // SAFETY: inline variant; n <= 15.
            unsafe { &mut self.repr.inline[1..1 + n] }
        } else {
            // SAFETY: heap variant; ptr is valid and uniquely owned for len bytes.
            unsafe {
                let h = self.repr.heap;
                std::slice::from_raw_parts_mut(h.ptr.as_ptr(), h.len as usize)
            }
        }
    }

    fn heap_with(data: &[u8], cap: usize) -> Self {
        debug_assert!(cap >= data.len() && cap > 0);
        let l = layout(cap);
        // SAFETY: cap > 0 so the layout is non-zero-sized.
        let raw = unsafe { alloc::alloc(l) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(l)
        };
        // SAFETY: the new block holds cap >= data.len() bytes and does not overlap data.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
        CompactBytes {
            repr: Repr {
                heap: Heap {
                    ptr,
                    len: len32(data.len()),
                    cap: len32(cap),
                },
            },
        }
    }

    pub fn from_slice(data: &[u8]) -> Self {
        if data.len() <= INLINE_CAP {
            let mut inline = [0u8; 16];
            inline[0] = ((data.len() as u8) << 1) | 1;
            inline[1..1 + data.len()].copy_from_slice(data);
            CompactBytes {
                repr: Repr { inline },
            }
        } else {
            Self::heap_with(data, data.len())
        }
    }

    /// Makes room for `additional` more bytes, growing geometrically so that repeated APPENDs
    /// cost amortized linear time.
    pub fn reserve(&mut self, additional: usize) {
        let need = self.len() + additional;
        if need <= self.capacity() {
            return;
        }
        let new_cap = need.max(self.capacity() * 2).max(32);
        if self.is_inline() {
            *self = Self::heap_with(self.as_slice(), new_cap);
        } else {
            // SAFETY: heap variant; the block was allocated with layout(cap).
            unsafe {
                let h = self.repr.heap;
                let raw = alloc::realloc(h.ptr.as_ptr(), layout(h.cap as usize), new_cap);
                let Some(ptr) = NonNull::new(raw) else {
                    alloc::handle_alloc_error(layout(new_cap))
                };
                self.repr.heap = Heap {
                    ptr,
                    len: h.len,
                    cap: len32(new_cap),
                };
            }
        }
    }

    fn set_len(&mut self, n: usize) {
        debug_assert!(n <= self.capacity());
        if self.is_inline() {
            // SAFETY: inline variant; n <= 15.
            unsafe { self.repr.inline[0] = ((n as u8) << 1) | 1 }
        } else {
            // Writing a Copy field of a union is safe; callers keep n <= cap with the bytes
            // up to n initialized.
            self.repr.heap.len = len32(n)
        }
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        let old = self.len();
        self.set_len_uninit_write(old, data);
    }

    /// Writes `data` at `at` (<= len) through to the end, growing the length to cover it.
    fn set_len_uninit_write(&mut self, at: usize, data: &[u8]) {
        let end = at + data.len();
        debug_assert!(end <= self.capacity());
        let base = if self.is_inline() {
            // SAFETY: inline variant.
            unsafe { self.repr.inline.as_mut_ptr().add(1) }
        } else {
            // SAFETY: heap variant.
            unsafe { self.repr.heap.ptr.as_ptr() }
        };
        // SAFETY: at..end lies within capacity; data cannot alias our own buffer mutably.
        unsafe { std::ptr::copy(data.as_ptr(), base.add(at), data.len()) };
        if end > self.len() {
            self.set_len(end);
        }
    }

    /// Grows to `new_len` with `fill`, or truncates.
    pub fn resize(&mut self, new_len: usize, fill: u8) {
        let old = self.len();
        if new_len <= old {
            self.set_len(new_len);
            return;
        }
        self.reserve(new_len - old);
        self.set_len(new_len);
        self.as_mut_slice()[old..].fill(fill);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }
}

impl Default for CompactBytes {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CompactBytes {
    fn drop(&mut self) {
        if !self.is_inline() {
            // SAFETY: heap variant; the block was allocated with layout(cap).
            unsafe {
                let h = self.repr.heap;
                alloc::dealloc(h.ptr.as_ptr(), layout(h.cap as usize));
            }
        }
    }
}

impl Clone for CompactBytes {
    fn clone(&self) -> Self {
        Self::from_slice(self.as_slice())
    }
}

impl Deref for CompactBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for CompactBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for CompactBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for CompactBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Hashes exactly as `[u8]` does, so maps keyed by it can be queried with `&[u8]`.
impl Hash for CompactBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl PartialEq for CompactBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for CompactBytes {}

impl PartialEq<[u8]> for CompactBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

impl From<&[u8]> for CompactBytes {
    fn from(b: &[u8]) -> Self {
        Self::from_slice(b)
    }
}

impl<const N: usize> From<&[u8; N]> for CompactBytes {
    fn from(b: &[u8; N]) -> Self {
        Self::from_slice(b)
    }
}

impl From<Vec<u8>> for CompactBytes {
    fn from(v: Vec<u8>) -> Self {
        Self::from_slice(&v)
    }
}

impl From<&Vec<u8>> for CompactBytes {
    fn from(v: &Vec<u8>) -> Self {
        Self::from_slice(v)
    }
}

impl From<Box<[u8]>> for CompactBytes {
    fn from(v: Box<[u8]>) -> Self {
        Self::from_slice(&v)
    }
}

impl From<&str> for CompactBytes {
    fn from(s: &str) -> Self {
        Self::from_slice(s.as_bytes())
    }
}

impl From<String> for CompactBytes {
    fn from(s: String) -> Self {
        Self::from_slice(s.as_bytes())
    }
}

impl From<CompactBytes> for Vec<u8> {
    fn from(c: CompactBytes) -> Self {
        c.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 16);
    }

    #[test]
    fn inline_and_heap_round_trip() {
        for n in [0usize, 1, 14, 15, 16, 17, 100, 5000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let c = CompactBytes::from_slice(&data);
            assert_eq!(c.len(), n);
            assert_eq!(c.as_slice(), &data[..]);
            assert_eq!(c.is_inline(), n <= 15);
            let d = c.clone();
            assert_eq!(c, d);
            assert_eq!(d.to_vec(), data);
        }
    }

    #[test]
    fn growth_across_the_boundary() {
        let mut c = CompactBytes::new();
        let mut model = Vec::new();
        for i in 0..300u32 {
            let piece = i.to_string();
            c.extend_from_slice(piece.as_bytes());
            model.extend_from_slice(piece.as_bytes());
            assert_eq!(c.as_slice(), &model[..]);
        }
        c.resize(10, 0);
        model.truncate(10);
        assert_eq!(c.as_slice(), &model[..]);
        c.resize(40, b'z');
        model.resize(40, b'z');
        assert_eq!(c.as_slice(), &model[..]);
        c.as_mut_slice()[3] = b'!';
        model[3] = b'!';
        assert_eq!(c.as_slice(), &model[..]);
    }

    #[test]
    fn map_lookup_by_slice() {
        let mut m: HashMap<CompactBytes, u32> = HashMap::new();
        m.insert(CompactBytes::from("short"), 1);
        m.insert(CompactBytes::from("a key longer than fifteen bytes"), 2);
        assert_eq!(m.get(&b"short"[..]), Some(&1));
        assert_eq!(m.get(&b"a key longer than fifteen bytes"[..]), Some(&2));
        assert_eq!(m.get(&b"nope"[..]), None);
    }

    proptest::proptest! {
        /// Any sequence of edits leaves it equal to a Vec given the same edits.
        #[test]
        fn behaves_like_a_vec(ops in proptest::collection::vec(
            (0u8..3, proptest::collection::vec(proptest::num::u8::ANY, 0..40), 0usize..80), 0..40)) {
            let mut c = CompactBytes::new();
            let mut v: Vec<u8> = Vec::new();
            for (op, data, n) in ops {
                match op {
                    0 => { c.extend_from_slice(&data); v.extend_from_slice(&data); }
                    1 => { c.resize(n, 7); v.resize(n, 7); }
                    _ => { c = CompactBytes::from_slice(&data); v = data.clone(); }
                }
                proptest::prop_assert_eq!(c.as_slice(), &v[..]);
                proptest::prop_assert_eq!(c.clone().to_vec(), v.clone());
            }
        }
    }
}
