//! The wall clock, read as Redis reads it: Unix milliseconds.

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

#[cfg(test)]
mod tests {
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
