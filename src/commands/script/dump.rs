//! FUNCTION DUMP's payload, as Redis's: each library as an RDB `FUNCTION2` opcode and its code
//! as an RDB string, then the RDB version (10, Redis 7.0's) and a CRC-64 of all before it.
//! Written uncompressed (a valid RDB string, which Redis reads); read with or without Redis's
//! LZF compression, so a payload Redis dumped restores here.

const RDB_OPCODE_FUNCTION2: u8 = 245;
const RDB_OPCODE_FUNCTION: u8 = 246;
const RDB_VERSION: u16 = 10;

/// Redis's crc64: Jones polynomial, reflected, no final xor.
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY: u64 = 0x95AC_9329_AC4B_C9B5;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

pub fn functions_payload<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(RDB_OPCODE_FUNCTION2);
        put_len(&mut out, code.len());
        out.extend_from_slice(code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// An RDB length, or the encoding of a special string (`Err`).
    fn len(&mut self) -> Option<Result<usize, u8>> {
        let b = self.byte()?;
        Some(match b >> 6 {
            0 => Ok((b & 0x3f) as usize),
            1 => Ok((((b & 0x3f) as usize) << 8) | self.byte()? as usize),
            2 if b == 0x80 => Ok(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize),
            2 if b == 0x81 => usize::try_from(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
                .ok()
                .map(Ok)?,
            2 => return None,
            _ => Err(b & 0x3f),
        })
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.len()? {
            Ok(n) => Some(self.take(n)?.to_vec()),
            // Integers stored as strings.
            Err(0) => Some((self.byte()? as i8).to_string().into_bytes()),
            Err(1) => Some(
                i16::from_le_bytes(self.take(2)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            Err(2) => Some(
                i32::from_le_bytes(self.take(4)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            Err(3) => {
                let clen = self.len()?.ok()?;
                let len = self.len()?.ok()?;
                lzf_decompress(self.take(clen)?, len)
            }
            Err(_) => None,
        }
    }
}

/// LZF decompression (Redis's lzf_d.c), to exactly `len` bytes.
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
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

/// The libraries' codes in a FUNCTION RESTORE payload, or Redis's error text.
pub fn parse_functions_payload(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let bad = || "DUMP payload version or checksum are wrong".to_string();
    if data.len() < 10 {
        return Err(bad());
    }
    let footer = &data[data.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(bad());
    }
    let crc = u64::from_le_bytes(footer[2..].try_into().map_err(|_| bad())?);
    if crc64(0, &data[..data.len() - 8]) != crc {
        return Err(bad());
    }
    let mut r = Reader {
        data: &data[..data.len() - 10],
        pos: 0,
    };
    let mut codes = Vec::new();
    while r.pos < r.data.len() {
        let kind = r.byte().ok_or("can not read data type")?;
        match kind {
            RDB_OPCODE_FUNCTION2 => {}
            RDB_OPCODE_FUNCTION => {
                // Redis 7.0 release candidates: name, engine and description before the code.
                for _ in 0..2 {
                    r.string()
                        .ok_or("failed loading the given functions payload")?;
                }
                if r.byte() == Some(1) {
                    r.string()
                        .ok_or("failed loading the given functions payload")?;
                }
            }
            _ => return Err("given type is not a function".into()),
        }
        codes.push(
            r.string()
                .ok_or("failed loading the given functions payload")?,
        );
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_redis_s() {
        // Redis's own test vector (crc64.c).
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn payloads_round_trip_and_are_checked() {
        let codes: [&[u8]; 2] = [
            b"#!lua name=a\nredis.register_function('f', function() end)",
            &[b'x'; 20000],
        ];
        let p = functions_payload(codes.iter().copied());
        assert_eq!(
            parse_functions_payload(&p).unwrap(),
            codes.map(|c| c.to_vec())
        );
        let mut bad = p.clone();
        bad[3] ^= 1;
        assert!(parse_functions_payload(&bad).is_err());
        assert!(parse_functions_payload(b"short").is_err());
    }

    #[test]
    fn lzf_runs_and_back_references() {
        // "aaaaaaaaaa": a literal 'a', then a back reference of 9 (run 7 + 2) at distance 1.
        assert_eq!(
            lzf_decompress(&[0, b'a', 0xe0, 0, 0], 10).unwrap(),
            b"aaaaaaaaaa"
        );
        assert!(lzf_decompress(&[0, b'a', 0xe0, 5, 0], 10).is_none());
    }
}
