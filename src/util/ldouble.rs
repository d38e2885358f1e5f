//! INCRBYFLOAT's arithmetic as Redis does it: in C `long double`, parsed by `strtold` and
//! printed with `%.17Lf` (csrc/ldouble.c). An `f64` gives other digits for everyday inputs
//! (0.1 + 0.2), and users compare the digits.

/// Why an increment has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatError {
    /// The current value or the increment is not a number `strtold` reads whole.
    NotFloat,
    /// The sum is NaN or infinite, which Redis refuses to store.
    NanOrInfinity,
}

const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

extern "C" {
    fn rudis_incrbyfloat(
        cur: *const u8,
        curlen: usize,
        incr: *const u8,
        incrlen: usize,
        out: *mut u8,
    ) -> std::os::raw::c_long;
}

/// `current` (absent: 0) plus `incr`, formatted as Redis stores and replies with it.
pub fn incr_by_float(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, FloatError> {
    let mut out = vec![0u8; MAX_LONG_DOUBLE_CHARS];
    let (cur_ptr, cur_len) = match current {
        Some(c) => (c.as_ptr(), c.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: the pointers are valid for the lengths given; `out` has the
    // MAX_LONG_DOUBLE_CHARS bytes the C side writes at most (it NUL-terminates within them);
    // the C side copies its inputs and keeps no pointer.
    let n = unsafe {
        rudis_incrbyfloat(
            cur_ptr,
            cur_len,
            incr.as_ptr(),
            incr.len(),
            out.as_mut_ptr(),
        )
    };
    match n {
        -1 => Err(FloatError::NotFloat),
        -2 => Err(FloatError::NanOrInfinity),
        n => {
            out.truncate(n.max(0) as usize);
            Ok(out)
        }
    }
}

extern "C" {
    fn rudis_timeout_ms(s: *const u8, len: usize, ms: *mut std::os::raw::c_longlong) -> i32;
}

/// A blocking command's timeout (seconds, fractions allowed) in milliseconds, rounded up in
/// `long double` as Redis does; None when it is not a float `strtold` reads whole.
pub fn timeout_ms(text: &[u8]) -> Option<i64> {
    let mut ms: std::os::raw::c_longlong = 0;
    // SAFETY: `text` is valid for its length; the C side copies it and writes only `ms`.
    let ok = unsafe { rudis_timeout_ms(text.as_ptr(), text.len(), &mut ms) };
    (ok == 1).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::incr_by_float;

    fn s(cur: Option<&str>, by: &str) -> String {
        String::from_utf8(incr_by_float(cur.map(str::as_bytes), by.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn like_redis() {
        assert_eq!(s(None, "0.1"), "0.1");
        assert_eq!(s(Some("0.1"), "0.2"), "0.3");
        assert_eq!(s(Some("10.50"), "0.1"), "10.6");
        assert_eq!(s(Some("5.0e3"), "2.0e2"), "5200");
        assert_eq!(s(None, "1e-20"), "0");
        assert_eq!(s(None, "0x10"), "16");
        assert_eq!(s(Some("-1"), "1"), "0");
        assert!(incr_by_float(Some(b" 1"), b"1").is_err());
        assert!(incr_by_float(Some(b"1"), b"nan").is_err());
        assert!(incr_by_float(Some(b"1"), b"").is_err());
        assert!(incr_by_float(Some(b"inf"), b"1").is_err());
    }

    #[test]
    fn timeouts_round_up_in_long_double() {
        use super::timeout_ms;
        assert_eq!(timeout_ms(b"0.1"), Some(100));
        assert_eq!(timeout_ms(b"1.0001"), Some(1001));
        assert_eq!(timeout_ms(b"-0.001"), Some(0));
        assert_eq!(timeout_ms(b"-1"), Some(-1000));
        assert_eq!(timeout_ms(b"0x10"), Some(16000));
        assert_eq!(timeout_ms(b" 1"), None);
        assert_eq!(timeout_ms(b"abc"), None);
        assert_eq!(timeout_ms(b""), None);
    }
}
