//! C's `strtod`, which Redis reads every score, weight and range bound with: its exact set of
//! accepted spellings (`inf`, `infinity`, hex floats, leading white space) is what users of
//! sorted sets meet, so it is called rather than imitated.

/// What `strtod` makes of `text` up to its first NUL (as C sees the bytes): the value, whether
/// it read every byte up to there (an empty text reads whole, as 0), and whether it set `ERANGE`.
pub fn strtod(text: &[u8]) -> (f64, bool, bool) {
    let text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
    let mut c = Vec::with_capacity(text.len() + 1);
    c.extend_from_slice(text);
    c.push(0);
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `c` is NUL-terminated and outlives the call; strtod only reads it and writes
    // `end` (a pointer into it) and errno, which is this thread's.
    let (v, erange, read) = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtod(c.as_ptr() as *const libc::c_char, &mut end);
        let erange = *libc::__errno_location() == libc::ERANGE;
        (
            v,
            erange,
            end.offset_from(c.as_ptr() as *const libc::c_char) as usize,
        )
    };
    (v, read == text.len(), erange)
}

/// A double as Redis's `getDoubleFromObject` reads one: all the bytes (no NUL within), no
/// leading space, not NaN, no overflow, and no underflow to zero.
pub fn parse_double(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg[0].is_ascii_whitespace() || arg[0] == 0x0b || arg.contains(&0) {
        return None;
    }
    let (v, whole, erange) = strtod(arg);
    if !whole || v.is_nan() || (erange && (v.is_infinite() || v == 0.0)) {
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_redis_does() {
        assert_eq!(parse_double(b"1.5"), Some(1.5));
        assert_eq!(parse_double(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_double(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_double(b"0x10"), Some(16.0));
        assert_eq!(parse_double(b"1e400"), None);
        assert_eq!(parse_double(b"1e-400"), None);
        assert_eq!(parse_double(b"nan"), None);
        assert_eq!(parse_double(b" 1"), None);
        assert_eq!(parse_double(b"1 "), None);
        assert_eq!(parse_double(b""), None);
        assert_eq!(strtod(b""), (0.0, true, false));
        assert_eq!(strtod(b"2\x00x"), (2.0, true, false));
    }
}
