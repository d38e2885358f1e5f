//! Redis's RDB format: the reader (every version real servers write, 1 to 12), the writer
//! (version 10, what Redis 7.0 writes), the DUMP payload, and the files of SAVE and BGSAVE.
//!
//! Layout of a file: `REDIS` + four version digits, AUX fields, function libraries, then per
//! database SELECTDB, RESIZEDB and its keys (each: optional EXPIRETIME/IDLE/FREQ, a type byte,
//! the key as a string, the value), EOF, and from version 5 a CRC-64 of everything before it.
//! A value's type byte picks its encoding; `read::value` and `write::value` are the one place
//! each type is decoded and encoded (a new type adds its arm there).

pub mod crc64;
pub mod file;
pub mod lzf;
pub mod packed;
pub mod read;
pub mod snapshot;
pub mod stream;
pub mod write;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: CRCs of files and DUMP payloads go unchecked (Redis's
/// tests feed hand-corrupted payloads past the checksum to reach the decoders' checks).
static SKIP_CHECKSUM: AtomicBool = AtomicBool::new(false);

pub fn set_skip_checksum(on: bool) {
    SKIP_CHECKSUM.store(on, Ordering::Relaxed);
}

pub fn skip_checksum() -> bool {
    SKIP_CHECKSUM.load(Ordering::Relaxed)
}

/// The version this writer produces: Redis 7.0's.
pub const RDB_VERSION: u16 = 10;
/// The newest this reader accepts: Redis 7.4's (Valkey 7 and 8 write 10 and 11).
pub const MAX_READ_VERSION: u16 = 12;

pub mod kind {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    /// Redis 7.4's hashes with field expirations (22, 23 from its release candidates).
    pub const HASH_METADATA_PRE_GA: u8 = 22;
    pub const HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    pub const HASH_METADATA: u8 = 24;
    pub const HASH_LISTPACK_EX: u8 = 25;
}

pub mod opcode {
    /// Redis 7.4's and Valkey 8's per-slot key counts (cluster mode): a sizing hint.
    pub const SLOT_INFO: u8 = 244;
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Why a file or payload was refused: the byte offset, and what was expected there (or what
/// this server cannot load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    pub offset: usize,
    pub expected: String,
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: expected {}", self.offset, self.expected)
    }
}

impl std::error::Error for RdbError {}

/// A module's name from the 64-bit id RDB stores (nine characters of six bits, then ten
/// bits of encoding version), for the error that names a module this server lacks.
pub fn module_name(id: u64) -> String {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let name = id >> 10;
    (0..9)
        .rev()
        .map(|i| CHARSET[((name >> (6 * i)) & 63) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_names_decode() {
        // "ReJSON-RL", the name RedisJSON registers, encoded as Redis's moduleTypeEncodeId.
        const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut id = 0u64;
        for c in b"ReJSON-RL" {
            id = (id << 6) | CHARSET.iter().position(|x| x == c).unwrap() as u64;
        }
        id = (id << 10) | 3;
        assert_eq!(super::module_name(id), "ReJSON-RL");
    }
}
