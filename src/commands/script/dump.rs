//! FUNCTION DUMP's payload, as Redis's: each library as an RDB `FUNCTION2` opcode and its code
//! as an RDB string, then the RDB version (10, Redis 7.0's) and a CRC-64 of all before it.
//! Read with or without Redis's LZF compression, so a payload Redis dumped restores here.

use crate::rdb::crc64::crc64;
use crate::rdb::read::Reader;
use crate::rdb::write::Encoder;
use crate::rdb::{opcode, RDB_VERSION};

pub fn functions_payload<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut e = Encoder::new(false);
    for code in codes {
        e.byte(opcode::FUNCTION2);
        e.string(code);
    }
    let mut out = e.buf;
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The libraries' codes in a FUNCTION RESTORE payload, or Redis's error text.
pub fn parse_functions_payload(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let body = crate::rdb::read::verify_payload(data)
        .ok_or("DUMP payload version or checksum are wrong")?;
    let mut r = Reader::new(body, 0);
    let mut codes = Vec::new();
    let failed = |_| "failed loading the given functions payload".to_string();
    while !r.at_end() {
        let kind = r.byte("").map_err(|_| "can not read data type")?;
        match kind {
            opcode::FUNCTION2 => {}
            opcode::FUNCTION_PRE_GA => {
                // Redis 7.0 release candidates: name, engine and description before the code.
                for _ in 0..2 {
                    r.string().map_err(failed)?;
                }
                if r.length("").map_err(failed)? != 0 {
                    r.string().map_err(failed)?;
                }
            }
            _ => return Err("given type is not a function".into()),
        }
        codes.push(r.string().map_err(failed)?.into_owned());
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
