//! Small pieces below every other layer: they import nothing from the crate.

pub mod alloc;
pub mod children;
pub mod chunks;
pub mod clock;
pub mod crash;
pub mod glob;
pub mod ldouble;
pub mod net;
pub mod oom;
pub mod proctitle;
pub mod resident;
pub mod sha1;
pub mod sha256;
pub mod strtod;
pub mod yielding;

/// An I/O error's text as C's strerror gives it ("No such file or directory"), without Rust's
/// " (os error N)": Redis's messages quote strerror, and tools grep for them.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Redis's debugDelay for `n` keys after the first `done` (its hidden `key-load-delay` and
/// `rdb-key-save-delay`, which tests use to watch a load or a save): `delay` microseconds a
/// key, or, negative, 1 µs for one key in that many.
pub fn debug_delay(delay: i64, done: u64, n: u64) -> std::time::Duration {
    let us = match delay {
        d if d >= 0 => d as u64 * n,
        d => {
            let every = d.unsigned_abs();
            (done + n) / every - done / every
        }
    };
    std::time::Duration::from_micros(us)
}

/// Asks the CPU to bring the cache line at `p` in: a hint, which never faults.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it does not dereference the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
