//! What a key holds.

pub use super::bytes::CompactBytes;
pub use super::hash::{FieldValue, Hash};
pub use super::list::List;
pub use super::set::Set;
pub use super::stream::Stream;
pub use super::zset::ZSet;

/// Key and field bytes: 16 bytes, inline up to 15 (see `bytes.rs` for why).
pub type Bytes = CompactBytes;

/// A string value. Construct with `Str::from(vec)` or `.into()` and read through `Deref<[u8]>`:
/// it may become a compact inline type, so code must not rely on it being a `Vec`.
pub type Str = CompactBytes;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Str),
    /// Boxed so that the pointer fits beside `CompactBytes`'s niche: a `Value` is 16 bytes.
    Hash(Box<Hash>),
    List(Box<List>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

impl Value {
    /// Where the value's first bytes outside its bucket are (or the bucket's, for an inline
    /// string): what a walk over many values prefetches (see `util::prefetch`).
    pub fn first_byte(&self) -> *const u8 {
        match self {
            Value::Str(s) => s.as_ptr(),
            Value::Hash(h) => std::ptr::from_ref(&**h).cast(),
            Value::List(l) => std::ptr::from_ref(&**l).cast(),
            Value::Set(s) => std::ptr::from_ref(&**s).cast(),
            Value::ZSet(z) => std::ptr::from_ref(&**z).cast(),
            Value::Stream(s) => std::ptr::from_ref(&**s).cast(),
        }
    }

    pub fn str(b: &[u8]) -> Value {
        Value::Str(Str::from(b))
    }

    pub fn hash(h: Hash) -> Value {
        Value::Hash(Box::new(h))
    }

    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
}

/// Redis counts a key as expired only once the clock has passed its deadline.
pub fn is_expired(deadline: u64, clock: u64) -> bool {
    clock > deadline
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A map bucket is key + value; keep both small (the memory goal depends on it).
    #[test]
    fn value_is_small() {
        assert_eq!(std::mem::size_of::<Bytes>(), 16);
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }
}
