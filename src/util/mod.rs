//! Small pieces below every other layer: they import nothing from the crate.

pub mod alloc;
pub mod clock;
pub mod glob;
pub mod ldouble;
pub mod net;
pub mod sha1;
pub mod sha256;
pub mod strtod;
