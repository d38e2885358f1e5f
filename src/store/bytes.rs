//! `CompactBytes`: a byte string in 16 bytes. Up to 15 bytes live inline, with no heap
//! allocation; longer ones on the heap with a 32-bit length and capacity.
//!
//! Why: a million small keys and values is the common Redis workload, and a map bucket of
//! `(Box<[u8]>, Vec<u8>)` costs 40 bytes plus two heap blocks of at least 32 bytes each per key.
//! With this type a key and a short value fit in the bucket itself.
//!
//! Representation: the last byte is a tag, never zero (see the struct); the 15 before it hold
//! the data inline, or a heap block's address and length.

use std::alloc::{self, Layout};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

const INLINE_CAP: usize = 15;
/// Tags 1..=16: inline, length tag - 1. Tags HEAP_TAG + e: heap, capacity 2^e.
const HEAP_TAG: u8 = 0x80;

/// Bytes 0..15 hold the inline data, or a heap block's address (0..8) and length (8..12).
/// Byte 15 is the tag and never zero, which gives `Option<CompactBytes>` and enums holding one
/// beside a pointer (the store's `Value`) a niche: they stay 16 bytes.
#[repr(C)]
pub struct CompactBytes {
    buf: [u8; 15],
    tag: Tag,
}

/// Every valid tag byte as a variant, so that the compiler knows the other 206 values are free:
/// an enum holding a `CompactBytes` beside several boxed variants (the store's `Value`) keeps
/// its own tag there and stays 16 bytes (`NonZeroU8` would leave room for one other variant).
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(dead_code)] // built by transmute in `tag`
enum Tag {
    I1 = 1,
    I2,
    I3,
    I4,
    I5,
    I6,
    I7,
    I8,
    I9,
    I10,
    I11,
    I12,
    I13,
    I14,
    I15,
    I16,
    H0 = HEAP_TAG,
    H1,
    H2,
    H3,
    H4,
    H5,
    H6,
    H7,
    H8,
    H9,
    H10,
    H11,
    H12,
    H13,
    H14,
    H15,
    H16,
    H17,
    H18,
    H19,
    H20,
    H21,
    H22,
    H23,
    H24,
    H25,
    H26,
    H27,
    H28,
    H29,
    H30,
    H31,
    H32,
}

impl Tag {
    fn get(self) -> u8 {
        self as u8
    }
}

// SAFETY: CompactBytes owns its heap block exclusively, like Vec<u8>.
unsafe impl Send for CompactBytes {}
// SAFETY: shared access is read-only, like &Vec<u8>.
unsafe impl Sync for CompactBytes {}

fn layout(cap: usize) -> Layout {
    Layout::from_size_align(cap, 1).expect("capacity fits a layout")
}

/// Lengths beyond u32 cannot arise: Redis's limits (512 MB) stop them long before.
fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("CompactBytes is limited to 4 GiB")
}

fn tag(v: u8) -> Tag {
    assert!(matches!(v, 1..=16 | HEAP_TAG..=0xa0), "invalid tag {v}");
    // SAFETY: checked above: `v` is one of Tag's discriminants.
    unsafe { std::mem::transmute::<u8, Tag>(v) }
}

impl CompactBytes {
    pub const fn new() -> Self {
        CompactBytes {
            buf: [0; 15],
            tag: Tag::I1,
        }
    }

    fn is_inline(&self) -> bool {
        self.tag.get() < HEAP_TAG
    }

    fn heap_ptr(&self) -> *mut u8 {
        let addr = usize::from_le_bytes(self.buf[0..8].try_into().expect("8 bytes"));
        std::ptr::with_exposed_provenance_mut(addr)
    }

    fn set_heap(&mut self, ptr: *mut u8, len: usize, cap_exp: u32) {
        self.buf[0..8].copy_from_slice(&ptr.expose_provenance().to_le_bytes());
        self.buf[8..12].copy_from_slice(&len32(len).to_le_bytes());
        self.tag = tag(HEAP_TAG + cap_exp as u8);
    }

    pub fn len(&self) -> usize {
        if self.is_inline() {
            (self.tag.get() - 1) as usize
        } else {
            u32::from_le_bytes(self.buf[8..12].try_into().expect("4 bytes")) as usize
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        if self.is_inline() {
            INLINE_CAP
        } else {
            1usize << (self.tag.get() - HEAP_TAG)
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.is_inline() {
            &self.buf[..self.len()]
        } else {
            // SAFETY: a heap block is valid for len initialized bytes while we own it.
            unsafe { std::slice::from_raw_parts(self.heap_ptr(), self.len()) }
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.is_inline() {
            let n = self.len();
            &mut self.buf[..n]
        } else {
            // SAFETY: as above, and &mut self makes the access unique.
            unsafe { std::slice::from_raw_parts_mut(self.heap_ptr(), self.len()) }
        }
    }

    /// A heap block of at least `min_cap` bytes (a power of two) holding `data`.
    fn heap_with(data: &[u8], min_cap: usize) -> Self {
        let cap_exp = min_cap.max(16).next_power_of_two().trailing_zeros();
        let l = layout(1usize << cap_exp);
        // SAFETY: the layout is non-zero-sized.
        let ptr = unsafe { alloc::alloc(l) };
        if ptr.is_null() {
            alloc::handle_alloc_error(l)
        }
        // SAFETY: the new block holds >= data.len() bytes and does not overlap data.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
        let mut c = CompactBytes::new();
        c.set_heap(ptr, data.len(), cap_exp);
        c
    }

    pub fn from_slice(data: &[u8]) -> Self {
        if data.len() <= INLINE_CAP {
            let mut c = CompactBytes::new();
            c.buf[..data.len()].copy_from_slice(data);
            c.tag = tag(data.len() as u8 + 1);
            c
        } else {
            Self::heap_with(data, data.len())
        }
    }

    /// Makes room for `additional` more bytes. Capacities are powers of two, so repeated
    /// APPENDs cost amortized linear time.
    pub fn reserve(&mut self, additional: usize) {
        let need = self.len() + additional;
        if need <= self.capacity() {
            return;
        }
        let grown = Self::heap_with(self.as_slice(), need);
        *self = grown;
    }

    fn set_len(&mut self, n: usize) {
        debug_assert!(n <= self.capacity());
        if self.is_inline() {
            self.tag = tag(n as u8 + 1);
        } else {
            self.buf[8..12].copy_from_slice(&len32(n).to_le_bytes());
        }
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        let old = self.len();
        self.set_len(old + data.len());
        self.as_mut_slice()[old..].copy_from_slice(data);
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
            // SAFETY: the block was allocated by heap_with with layout(capacity).
            unsafe { alloc::dealloc(self.heap_ptr(), layout(self.capacity())) }
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
        assert_eq!(std::mem::size_of::<Option<CompactBytes>>(), 16);
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
