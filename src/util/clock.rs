//! The wall clock, read as Redis reads it: Unix milliseconds.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Wall-clock Unix milliseconds (0 before 1970). Straight from `clock_gettime`, read once per
/// command: `SystemTime::now().duration_since(UNIX_EPOCH)` costs twice the instructions.
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill; CLOCK_REALTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if ts.tv_sec < 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// A monotonic tick count for timing commands (INFO commandstats, SLOWLOG, LATENCY): the
/// processor's time-stamp counter where it runs at a constant rate, else nanoseconds since a
/// base. Why not `Instant`: timing every command reads the clock twice, and on these VMs
/// `clock_gettime` through the vDSO cost a tenth of a pipelined SET's time; `rdtsc` costs a
/// fraction of that. Only differences of two readings on one thread mean anything.
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if US_PER_TICK_FX.load(Relaxed) != 0 {
        // SAFETY: rdtsc has no preconditions; x86_64 always has it.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    base().elapsed().as_nanos() as u64
}

/// Microseconds in a difference of two `ticks`: one multiply by a 32.32 fixed-point rate, so
/// that timing every command costs no division.
#[inline]
pub fn ticks_to_us(d: u64) -> u64 {
    match US_PER_TICK_FX.load(Relaxed) {
        0 => d / 1000,
        fx => ((d as u128 * fx as u128) >> 32) as u64,
    }
}

/// Microseconds per tick as 32.32 fixed point, 0 while the counter is not in use (not yet
/// calibrated, or not usable): then ticks are nanoseconds since `base`.
static US_PER_TICK_FX: AtomicU64 = AtomicU64::new(0);

fn base() -> &'static std::time::Instant {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(std::time::Instant::now)
}

/// The counter's rate, when it is usable: invariant (constant and non-stop, as the kernel
/// reports it), measured against the monotonic clock over 2 ms.
fn tsc_per_us() -> Option<f64> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let flags = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    if !(has("constant_tsc") && has("nonstop_tsc")) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let start = std::time::Instant::now();
        // SAFETY: as in `ticks`.
        let t0 = unsafe { core::arch::x86_64::_rdtsc() };
        while start.elapsed() < std::time::Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let t1 = unsafe { core::arch::x86_64::_rdtsc() };
        let us = start.elapsed().as_secs_f64() * 1e6;
        let rate = t1.wrapping_sub(t0) as f64 / us;
        return (rate.is_finite() && rate > 1.0).then_some(rate);
    }
    #[allow(unreachable_code)]
    None
}

/// Measures the tick rate now, so that no command pays for it.
/// Until then, `ticks` counts nanoseconds; call it before any command is timed, since a
/// difference across the switch means nothing.
pub fn calibrate() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = base();
        if let Some(per_us) = tsc_per_us() {
            let fx = ((1u64 << 32) as f64 / per_us) as u64;
            US_PER_TICK_FX.store(fx.max(1), Relaxed);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_measure_elapsed_time() {
        super::calibrate();
        let t0 = super::ticks();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let us = super::ticks_to_us(super::ticks().wrapping_sub(t0));
        assert!((19_000..200_000).contains(&us), "{us} us for a 20 ms sleep");
    }

    #[test]
    fn now_ms_is_the_unix_time() {
        let std_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ours = super::now_ms();
        assert!(ours.abs_diff(std_ms) < 1000, "{ours} vs {std_ms}");
    }
}
