//! LZF, the compression of RDB strings (`rdbcompression`). The format: a control byte below
//! 32 starts a literal run of ctrl+1 bytes; above, its top three bits are a match length - 2
//! (7: one more byte adds to it) and its low five, with the next byte, a distance - 1 back
//! into the output. Any stream of these is valid for Redis's decoder, so the compressor only
//! has to find matches well, not as liblzf does.

const HASH_BITS: u32 = 14;
const MAX_LIT: usize = 32;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

fn hash3(b: &[u8]) -> usize {
    let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
    (v.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
}

/// The match table of one thread's compressions: each slot holds a position tagged with the
/// call that stored it, so a call ignores older calls' positions instead of zeroing 128 KB
/// first (that zeroing was a quarter of SAVE's time, most strings being short).
struct Table {
    call: u32,
    slots: Box<[u64]>,
}

thread_local! {
    static TABLE: std::cell::RefCell<Table> = std::cell::RefCell::new(Table {
        call: 0,
        slots: vec![0u64; 1 << HASH_BITS].into_boxed_slice(),
    });
}

/// `input` compressed into at most `max` bytes, or None when it does not fit (the caller then
/// stores it raw).
pub fn compress(input: &[u8], max: usize) -> Option<Vec<u8>> {
    TABLE.with(|t| {
        let t = &mut *t.borrow_mut();
        t.call = t.call.wrapping_add(1);
        if t.call == 0 {
            t.slots.fill(0);
            t.call = 1;
        }
        compress_with(input, max, t.call, &mut t.slots)
    })
}

fn compress_with(input: &[u8], max: usize, call: u32, slots: &mut [u64]) -> Option<Vec<u8>> {
    let n = input.len();
    let mut out = Vec::with_capacity(max.min(n + n / 16 + 4));
    let tag = (call as u64) << 32;
    // A position stored by this call, plus one (0: none).
    let get = |slots: &[u64], h: usize| {
        let v = slots[h];
        if v & !0xffff_ffff == tag {
            (v & 0xffff_ffff) as usize
        } else {
            0
        }
    };
    let mut lit_start = 0;
    let mut ip = 0;
    let flush = |out: &mut Vec<u8>, from: usize, to: usize| {
        for chunk in input[from..to].chunks(MAX_LIT) {
            out.push((chunk.len() - 1) as u8);
            out.extend_from_slice(chunk);
        }
    };
    while ip + 2 < n {
        let h = hash3(&input[ip..]);
        let cand = get(slots, h);
        slots[h] = tag | (ip + 1) as u64;
        if cand > 0 && cand <= ip {
            let r = cand - 1;
            let off = ip - r;
            if off <= MAX_OFF && input[r..r + 3] == input[ip..ip + 3] {
                let max_len = (n - ip).min(MAX_REF);
                let mut len = 3;
                while len < max_len && input[r + len] == input[ip + len] {
                    len += 1;
                }
                flush(&mut out, lit_start, ip);
                let (code, off) = (len - 2, off - 1);
                if code < 7 {
                    out.push(((code as u8) << 5) | (off >> 8) as u8);
                } else {
                    out.push((7 << 5) | (off >> 8) as u8);
                    out.push((code - 7) as u8);
                }
                out.push(off as u8);
                if out.len() > max {
                    return None;
                }
                // The positions inside the match feed later matches too.
                let end = ip + len;
                let mut p = ip + 1;
                while p < end && p + 2 < n {
                    slots[hash3(&input[p..])] = tag | (p + 1) as u64;
                    p += 1;
                }
                ip = end;
                lit_start = ip;
                continue;
            }
        }
        ip += 1;
    }
    flush(&mut out, lit_start, n);
    (out.len() <= max).then_some(out)
}

/// `input` decompressed to exactly `len` bytes; None if it is not a valid stream of that
/// length.
pub fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            out.extend_from_slice(input.get(i..i + run)?);
            i += run;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            if out.len() + run + 2 > len {
                return None;
            }
            for k in 0..run + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_back_references() {
        // "aaaaaaaaaa": a literal 'a', then a back reference of 9 (run 7 + 2) at distance 1.
        assert_eq!(
            decompress(&[0, b'a', 0xe0, 0, 0], 10).unwrap(),
            b"aaaaaaaaaa"
        );
        assert!(decompress(&[0, b'a', 0xe0, 5, 0], 10).is_none());
        assert!(decompress(&[5, b'a'], 6).is_none());
    }

    #[test]
    fn round_trips() {
        let texts: Vec<Vec<u8>> = vec![
            b"hello hello hello hello hello hello".to_vec(),
            vec![b'x'; 100_000],
            (0..50_000u32).map(|i| (i % 7 + i / 1000) as u8).collect(),
            (0..3000u32)
                .flat_map(|i| format!("field:{i}:value:{}", i * 7).into_bytes())
                .collect(),
        ];
        for t in texts {
            let c = compress(&t, t.len()).expect("compressible");
            assert!(c.len() < t.len() / 2, "{} of {}", c.len(), t.len());
            assert_eq!(decompress(&c, t.len()).unwrap(), t);
        }
        // Incompressible within the limit: refused, not grown.
        let noise: Vec<u8> = (0..100u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(compress(&noise, noise.len() - 4).is_none());
    }

    #[test]
    fn earlier_calls_do_not_change_a_result() {
        // The table keeps other calls' positions: they must be ignored, so one input always
        // compresses to the same bytes (DUMP payloads of equal values are equal).
        let t = b"abcdefgh-abcdefgh-abcdefgh-0123456789-0123456789".to_vec();
        let first = compress(&t, t.len()).unwrap();
        for other in [
            vec![b'q'; 5000],
            b"0123456789-0123456789-abcdefgh".repeat(9),
        ] {
            compress(&other, other.len());
            assert_eq!(compress(&t, t.len()).unwrap(), first);
        }
        assert_eq!(decompress(&first, t.len()).unwrap(), t);
    }
}
