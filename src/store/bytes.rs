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
use std::sync::atomic::{AtomicU8, Ordering};

const INLINE_CAP: usize = 15;
/// Where the spare bytes start: inline data longer than this covers them.
const SPARE_AT: usize = 12;
/// Tags 1..=16: inline, length tag - 1; the same plus RAW_TAG: inline and raw (see `is_raw`).
/// Tags HEAP_TAG + c: heap, capacity class c (see `class_capacity`); a heap string's raw mark
/// is the top bit of its length (the spare bytes are the clock's).
const HEAP_TAG: u8 = 0x80;
const RAW_TAG: u8 = 0x40;
const INLINE_LEN: u8 = 0x3f;
const RAW_LEN_BIT: u32 = 1 << 31;

/// Bytes 0..15 hold the inline data, or a heap block's address (0..8) and length (8..12).
/// Byte 15 is the tag, one of the values of `Tag`: the values it can never take give
/// `Option<CompactBytes>` and enums holding one beside several pointers (the store's `Value`)
/// niches, so they stay 16 bytes.
///
/// Bytes 12..15 are data only for an inline string of 13 to 15 bytes. Otherwise they are
/// free, and a map key uses all three for its 24-bit access clock (Redis's `lru` field, see
/// `store::evict`), which reads update under a shared lock: hence atomics. `key_from` keeps
/// every map key in a form that has them free. (A heap string's raw mark is the top bit of its
/// length, not here.)
#[repr(C)]
pub struct CompactBytes {
    buf: [u8; 12],
    spare: [AtomicU8; 3],
    tag: Tag,
}

/// The valid tags: `I<n>` inline with length n - 1, `R<n>` the same marked raw, `H<e>` on the
/// heap with capacity class e.
/// An enum rather than a `NonZeroU8` so that the compiler knows all the other values are free.
#[allow(dead_code)] // Made only through `tag()`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    I1 = 1,
    I2 = 2,
    I3 = 3,
    I4 = 4,
    I5 = 5,
    I6 = 6,
    I7 = 7,
    I8 = 8,
    I9 = 9,
    I10 = 10,
    I11 = 11,
    I12 = 12,
    I13 = 13,
    I14 = 14,
    I15 = 15,
    I16 = 16,
    R1 = 0x40 + 1,
    R2 = 0x40 + 2,
    R3 = 0x40 + 3,
    R4 = 0x40 + 4,
    R5 = 0x40 + 5,
    R6 = 0x40 + 6,
    R7 = 0x40 + 7,
    R8 = 0x40 + 8,
    R9 = 0x40 + 9,
    R10 = 0x40 + 10,
    R11 = 0x40 + 11,
    R12 = 0x40 + 12,
    R13 = 0x40 + 13,
    R14 = 0x40 + 14,
    R15 = 0x40 + 15,
    R16 = 0x40 + 16,
    H0 = 0x80,
    H1 = 0x80 + 1,
    H2 = 0x80 + 2,
    H3 = 0x80 + 3,
    H4 = 0x80 + 4,
    H5 = 0x80 + 5,
    H6 = 0x80 + 6,
    H7 = 0x80 + 7,
    H8 = 0x80 + 8,
    H9 = 0x80 + 9,
    H10 = 0x80 + 10,
    H11 = 0x80 + 11,
    H12 = 0x80 + 12,
    H13 = 0x80 + 13,
    H14 = 0x80 + 14,
    H15 = 0x80 + 15,
    H16 = 0x80 + 16,
    H17 = 0x80 + 17,
    H18 = 0x80 + 18,
    H19 = 0x80 + 19,
    H20 = 0x80 + 20,
    H21 = 0x80 + 21,
    H22 = 0x80 + 22,
    H23 = 0x80 + 23,
    H24 = 0x80 + 24,
    H25 = 0x80 + 25,
    H26 = 0x80 + 26,
    H27 = 0x80 + 27,
    H28 = 0x80 + 28,
    H29 = 0x80 + 29,
    H30 = 0x80 + 30,
    H31 = 0x80 + 31,
    H32 = 0x80 + 32,
    H33 = 0x80 + 33,
    H34 = 0x80 + 34,
    H35 = 0x80 + 35,
    H36 = 0x80 + 36,
    H37 = 0x80 + 37,
    H38 = 0x80 + 38,
    H39 = 0x80 + 39,
    H40 = 0x80 + 40,
    H41 = 0x80 + 41,
    H42 = 0x80 + 42,
    H43 = 0x80 + 43,
    H44 = 0x80 + 44,
    H45 = 0x80 + 45,
    H46 = 0x80 + 46,
    H47 = 0x80 + 47,
    H48 = 0x80 + 48,
    H49 = 0x80 + 49,
    H50 = 0x80 + 50,
    H51 = 0x80 + 51,
    H52 = 0x80 + 52,
    H53 = 0x80 + 53,
    H54 = 0x80 + 54,
    H55 = 0x80 + 55,
    H56 = 0x80 + 56,
    H57 = 0x80 + 57,
    H58 = 0x80 + 58,
    H59 = 0x80 + 59,
    H60 = 0x80 + 60,
    H61 = 0x80 + 61,
    H62 = 0x80 + 62,
    H63 = 0x80 + 63,
    H64 = 0x80 + 64,
    H65 = 0x80 + 65,
    H66 = 0x80 + 66,
    H67 = 0x80 + 67,
    H68 = 0x80 + 68,
    H69 = 0x80 + 69,
    H70 = 0x80 + 70,
    H71 = 0x80 + 71,
    H72 = 0x80 + 72,
    H73 = 0x80 + 73,
    H74 = 0x80 + 74,
    H75 = 0x80 + 75,
    H76 = 0x80 + 76,
    H77 = 0x80 + 77,
    H78 = 0x80 + 78,
    H79 = 0x80 + 79,
    H80 = 0x80 + 80,
    H81 = 0x80 + 81,
    H82 = 0x80 + 82,
    H83 = 0x80 + 83,
    H84 = 0x80 + 84,
    H85 = 0x80 + 85,
    H86 = 0x80 + 86,
    H87 = 0x80 + 87,
    H88 = 0x80 + 88,
    H89 = 0x80 + 89,
    H90 = 0x80 + 90,
    H91 = 0x80 + 91,
    H92 = 0x80 + 92,
    H93 = 0x80 + 93,
    H94 = 0x80 + 94,
    H95 = 0x80 + 95,
    H96 = 0x80 + 96,
    H97 = 0x80 + 97,
    H98 = 0x80 + 98,
    H99 = 0x80 + 99,
    H100 = 0x80 + 100,
    H101 = 0x80 + 101,
    H102 = 0x80 + 102,
    H103 = 0x80 + 103,
    H104 = 0x80 + 104,
    H105 = 0x80 + 105,
    H106 = 0x80 + 106,
    H107 = 0x80 + 107,
    H108 = 0x80 + 108,
    H109 = 0x80 + 109,
    H110 = 0x80 + 110,
    H111 = 0x80 + 111,
    H112 = 0x80 + 112,
    H113 = 0x80 + 113,
    H114 = 0x80 + 114,
    H115 = 0x80 + 115,
    H116 = 0x80 + 116,
    H117 = 0x80 + 117,
    H118 = 0x80 + 118,
    H119 = 0x80 + 119,
    H120 = 0x80 + 120,
    H121 = 0x80 + 121,
    H122 = 0x80 + 122,
    H123 = 0x80 + 123,
    H124 = 0x80 + 124,
    H125 = 0x80 + 125,
    H126 = 0x80 + 126,
    H127 = 0x80 + 127,
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

/// Heap capacities come in four classes per power of two, 2^e times 1, 1.25, 1.5 and 1.75 (as
/// jemalloc's size classes): growth stays geometric, so repeated APPENDs cost amortized linear
/// time, while a block is at most a quarter larger than asked, not twice (a dense HLL of 12,304
/// bytes takes 14,336, not 16,384). Class c is 2^(c/4) times (4 + c%4)/4, from 16 bytes.
/// The heap class of a block exactly as long as the string: what a string stored whole (SET,
/// a clone, a load) gets, as Redis's sdsnewlen does. Rounding it up to a class would cost up to
/// a quarter more (a 1,000-byte value took a 1,040-byte malloc chunk, now 1,008); the first
/// growth moves it to a class. Classes under 16 bytes are never used otherwise.
const EXACT: u8 = 0;

fn class_capacity(class: u8) -> usize {
    let (e, q) = ((class >> 2) as u32, (class & 3) as usize);
    ((4 + q) << e) >> 2
}

/// The smallest class of at least `min_cap` bytes.
fn class_for(min_cap: usize) -> u8 {
    let min_cap = min_cap.max(16);
    let e = usize::BITS - 1 - min_cap.leading_zeros();
    let step = (1usize << e) >> 2;
    let q = (min_cap - (1usize << e)).div_ceil(step);
    let class = (e * 4) as usize + q;
    // Tags run out at class 127 (3.5 GiB); Redis's limits (512 MB) stop strings long before.
    assert!(class <= 127, "CompactBytes is limited to 3.5 GiB");
    class as u8
}

/// Lengths of 2 GiB and more cannot arise: Redis's limits (512 MB) stop them long before.
fn len32(n: usize) -> u32 {
    match u32::try_from(n) {
        Ok(n) if n & RAW_LEN_BIT == 0 => n,
        _ => panic!("CompactBytes is limited to 2 GiB"),
    }
}

fn tag(v: u8) -> Tag {
    assert!(
        (1..=16).contains(&v) || (RAW_TAG + 1..=RAW_TAG + 16).contains(&v) || v >= HEAP_TAG,
        "invalid tag {v}"
    );
    // SAFETY: `Tag` is `repr(u8)` with exactly the values checked above.
    unsafe { std::mem::transmute::<u8, Tag>(v) }
}

impl CompactBytes {
    pub const fn new() -> Self {
        CompactBytes {
            buf: [0; 12],
            spare: [AtomicU8::new(0), AtomicU8::new(0), AtomicU8::new(0)],
            tag: Tag::I1,
        }
    }

    /// A map key: like `from_slice`, but a key of 13 to 15 bytes goes to the heap, so that
    /// every key has the spare bytes its access clock lives in.
    pub fn key_from(data: &[u8]) -> Self {
        if (SPARE_AT + 1..=INLINE_CAP).contains(&data.len()) {
            Self::heap_with(data, data.len())
        } else {
            Self::from_slice(data)
        }
    }

    fn has_spare(&self) -> bool {
        !self.is_inline() || self.len() <= SPARE_AT
    }

    /// The 24-bit value kept in the spare bytes, if this has them.
    #[inline]
    pub fn clock(&self) -> Option<u32> {
        if !self.has_spare() {
            return None;
        }
        let b = |i: usize| self.spare[i].load(Ordering::Relaxed) as u32;
        Some(b(0) | (b(1) << 8) | (b(2) << 16))
    }

    /// Stores a 24-bit value in the spare bytes (nothing if this has none). Through a shared
    /// reference: readers of a key update its clock under a read lock, and racing readers
    /// both store a current value.
    #[inline]
    pub fn set_clock(&self, v: u32) {
        if self.has_spare() {
            for (i, b) in self.spare.iter().enumerate() {
                b.store((v >> (8 * i)) as u8, Ordering::Relaxed);
            }
        }
    }

    /// The first byte of the 15 data bytes.
    fn inline_ptr(&self) -> *const u8 {
        (self as *const Self).cast()
    }

    fn inline_mut_ptr(&mut self) -> *mut u8 {
        (self as *mut Self).cast()
    }

    fn is_inline(&self) -> bool {
        self.tag.get() < HEAP_TAG
    }

    fn heap_ptr(&self) -> *mut u8 {
        let addr = usize::from_le_bytes(self.buf[0..8].try_into().expect("8 bytes"));
        std::ptr::with_exposed_provenance_mut(addr)
    }

    fn set_heap(&mut self, ptr: *mut u8, len: usize, class: u8) {
        self.buf[0..8].copy_from_slice(&ptr.expose_provenance().to_le_bytes());
        self.buf[8..12].copy_from_slice(&len32(len).to_le_bytes());
        self.tag = tag(HEAP_TAG + class);
    }

    pub fn len(&self) -> usize {
        if self.is_inline() {
            ((self.tag.get() & INLINE_LEN) - 1) as usize
        } else {
            (self.heap_len_word() & !RAW_LEN_BIT) as usize
        }
    }

    fn heap_len_word(&self) -> u32 {
        u32::from_le_bytes(self.buf[8..12].try_into().expect("4 bytes"))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        if self.is_inline() {
            INLINE_CAP
        } else if self.is_exact() {
            self.len()
        } else {
            class_capacity(self.tag.get() - HEAP_TAG)
        }
    }

    /// A heap block exactly as long as the string (see `EXACT`): its length is its capacity,
    /// so it may only change by moving to another block.
    fn is_exact(&self) -> bool {
        self.tag.get() == HEAP_TAG + EXACT
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.is_inline() {
            // SAFETY: the struct is `repr(C)`, its first 15 bytes the inline data, len <= 15
            // of them initialized. The spare bytes are written through `&self` only when they
            // are not data (`has_spare`), so none this slice covers changes while it lives.
            unsafe { std::slice::from_raw_parts(self.inline_ptr(), self.len()) }
        } else {
            // SAFETY: a heap block is valid for len initialized bytes while we own it.
            unsafe { std::slice::from_raw_parts(self.heap_ptr(), self.len()) }
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.is_inline() {
            let n = self.len();
            // SAFETY: as in `as_slice`, and &mut self makes the access unique.
            unsafe { std::slice::from_raw_parts_mut(self.inline_mut_ptr(), n) }
        } else {
            // SAFETY: as above, and &mut self makes the access unique.
            unsafe { std::slice::from_raw_parts_mut(self.heap_ptr(), self.len()) }
        }
    }

    /// A heap block of at least `min_cap` bytes (a power of two) holding `data`.
    fn heap_with(data: &[u8], min_cap: usize) -> Self {
        Self::heap_in(data, class_for(min_cap))
    }

    /// A heap block of class `class` holding `data` (which fits it).
    fn heap_in(data: &[u8], class: u8) -> Self {
        let cap = match class {
            EXACT => data.len(),
            c => class_capacity(c),
        };
        let l = layout(cap);
        // SAFETY: the layout is non-zero-sized.
        let ptr = unsafe { alloc::alloc(l) };
        if ptr.is_null() {
            alloc::handle_alloc_error(l)
        }
        // SAFETY: the new block holds >= data.len() bytes and does not overlap data.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
        let mut c = CompactBytes::new();
        c.set_heap(ptr, data.len(), class);
        c
    }

    pub fn from_slice(data: &[u8]) -> Self {
        if data.len() <= INLINE_CAP {
            let mut c = CompactBytes::new();
            // SAFETY: data.len() <= 15 bytes fit the inline data; `c` is ours alone.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), c.inline_mut_ptr(), data.len()) };
            c.tag = tag(data.len() as u8 + 1);
            c
        } else {
            Self::heap_in(data, EXACT)
        }
    }

    /// Makes room for `additional` more bytes. Capacities are powers of two, so repeated
    /// APPENDs cost amortized linear time.
    pub fn reserve(&mut self, additional: usize) {
        let need = self.len() + additional;
        if need <= self.capacity() {
            return;
        }
        let raw = self.is_raw();
        let mut grown = Self::heap_with(self.as_slice(), need);
        if raw {
            grown.set_raw();
        }
        *self = grown;
    }

    /// Whether the string was changed in place (APPEND, SETRANGE, SETBIT...): Redis's
    /// OBJECT ENCODING says `raw` for such a string whatever its bytes, where a string stored
    /// whole (SET) is `int` or `embstr` by its contents. A string knows this itself because
    /// the commands that set it and the one that reports it never meet.
    pub fn is_raw(&self) -> bool {
        if self.is_inline() {
            self.tag.get() & RAW_TAG != 0
        } else {
            self.heap_len_word() & RAW_LEN_BIT != 0
        }
    }

    pub fn set_raw(&mut self) {
        if self.is_inline() {
            self.tag = tag(self.tag.get() | RAW_TAG);
        } else {
            let w = self.heap_len_word() | RAW_LEN_BIT;
            self.buf[8..12].copy_from_slice(&w.to_le_bytes());
        }
    }

    fn set_len(&mut self, n: usize) {
        debug_assert!(n <= self.capacity());
        debug_assert!(
            !self.is_exact() || n == self.len(),
            "an exact block never changes length"
        );
        if self.is_inline() {
            self.tag = tag((self.tag.get() & RAW_TAG) | (n as u8 + 1));
        } else {
            let w = len32(n) | (self.heap_len_word() & RAW_LEN_BIT);
            self.buf[8..12].copy_from_slice(&w.to_le_bytes());
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
        if new_len < old && self.is_exact() {
            let raw = self.is_raw();
            *self = Self::from_slice(&self.as_slice()[..new_len]);
            if raw {
                self.set_raw();
            }
            return;
        }
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
    /// Keeps the raw mark, as Redis's dupStringObject keeps the encoding (COPY).
    fn clone(&self) -> Self {
        let mut c = Self::from_slice(self.as_slice());
        if self.is_raw() {
            c.set_raw();
        }
        c
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
    fn capacity_classes_are_the_smallest_that_fit_and_a_quarter_apart() {
        assert_eq!(class_capacity(class_for(0)), 16);
        assert_eq!(class_capacity(class_for(16)), 16);
        assert_eq!(class_capacity(class_for(17)), 20);
        assert_eq!(class_capacity(class_for(12304)), 14336);
        assert_eq!(class_capacity(class_for(1 << 20)), 1 << 20);
        assert_eq!(class_capacity(class_for((1 << 20) + 1)), 5 << 18);
        assert_eq!(class_capacity(class_for(7 << 29)), 7 << 29);
        let mut prev = 0;
        for n in 1..5000usize {
            let cap = class_capacity(class_for(n));
            assert!(cap >= n && cap >= prev, "{n}: {cap}");
            assert!(
                n <= 16 || cap * 4 <= n * 5 + 64,
                "{n}: {cap} is more than a class above"
            );
            prev = cap;
        }
    }

    #[test]
    fn keys_keep_a_clock_in_their_spare_bytes() {
        for n in [0usize, 1, 12, 13, 14, 15, 16, 40] {
            let data: Vec<u8> = (0..n).map(|i| b'a' + i as u8).collect();
            let k = CompactBytes::key_from(&data);
            assert_eq!(k.as_slice(), &data[..]);
            k.set_clock(0xabcdef);
            assert_eq!(k.clock(), Some(0xabcdef), "{n}");
            assert_eq!(k.as_slice(), &data[..], "{n}");
            // A plain value of 13..15 bytes stays inline and has no clock.
            let v = CompactBytes::from_slice(&data);
            assert_eq!(v.clock().is_some(), !(13..=15).contains(&n));
            v.set_clock(1);
            assert_eq!(v.as_slice(), &data[..]);
        }
    }

    #[test]
    fn the_raw_mark_survives_growth_shrinking_and_clones_but_not_equality() {
        for n in [0usize, 3, 14, 15, 16, 40] {
            let data = vec![b'7'; n];
            let mut c = CompactBytes::from_slice(&data);
            assert!(!c.is_raw(), "a new string of {n} is not raw");
            c.set_raw();
            assert!(c.is_raw());
            assert_eq!(c.len(), n);
            assert_eq!(c.as_slice(), &data[..]);
            assert_eq!(
                c,
                CompactBytes::from_slice(&data),
                "raw or not, equal bytes are equal"
            );
            assert!(c.clone().is_raw());
            c.extend_from_slice(b"12");
            assert!(c.is_raw(), "after growing from {n}");
            assert_eq!(c.len(), n + 2);
            c.resize(1, 0);
            assert!(c.is_raw() && c.as_slice() == b"7" || n == 0 && c.as_slice() == b"1");
        }
        assert!(!CompactBytes::from_slice(b"x").clone().is_raw());
    }

    #[test]
    fn a_string_stored_whole_takes_a_block_of_its_length_until_it_grows() {
        let data = vec![b'v'; 1000];
        let mut c = CompactBytes::from_slice(&data);
        assert_eq!(c.capacity(), 1000);
        assert_eq!(c.clone().capacity(), 1000);
        c.set_raw();
        c.resize(900, 0);
        assert_eq!((c.len(), c.capacity(), c.is_raw()), (900, 900, true));
        c.extend_from_slice(b"more");
        assert_eq!(
            c.capacity(),
            class_capacity(class_for(904)),
            "a class once it grows"
        );
        assert_eq!(&c[..900], &data[..900]);
        assert_eq!(&c[900..], b"more");
        c.resize(10, 0);
        assert_eq!(
            (c.len(), c.is_raw()),
            (10, true),
            "a class block shrinks in place"
        );
    }

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
                proptest::prop_assert!(c.capacity() >= c.len());
            }
        }
    }
}
