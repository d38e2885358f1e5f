//! Whole RDB files: the header a snapshot starts with, loading a file into a store (all or
//! nothing), and the temp file + fsync + rename that makes a new file appear complete or not
//! at all.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use super::read::{self, Summary};
use super::write::Encoder;
use super::{opcode, RdbError, RDB_VERSION};
use crate::dump::{Output, Sink};
use crate::store::{Locked, Shard, ShardId, Store};

/// `rdbcompression`, `rdbchecksum`, and Redis's hidden `rdb-key-save-delay`.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub compression: bool,
    pub checksum: bool,
    /// Microseconds a save waits per key (see `util::debug_delay`).
    pub key_delay: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            compression: true,
            checksum: true,
            key_delay: 0,
        }
    }
}

/// The version Redis writes in `redis-ver`: tools that read it (and Redis itself, in its log)
/// see the server whose format this is.
pub const REDIS_VER: &str = "7.0.15";

/// `REDIS0010`, the AUX fields Redis 7.0 writes, then each function library.
pub fn header<'a>(
    compress: bool,
    aof_base: bool,
    functions: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    header_for_sync(compress, aof_base, None, functions)
}

/// Where a replication stream stands at a snapshot's instant: what a replica's full sync
/// (or a restart from the file) continues from (the `repl-*` AUX fields).
#[derive(Debug, Clone)]
pub struct ReplPoint {
    pub stream_db: usize,
    pub replid: String,
    pub offset: i64,
}

/// `header`, with the `repl-*` fields Redis writes between `used-mem` and `aof-base`.
pub fn header_for_sync<'a>(
    compress: bool,
    aof_base: bool,
    repl: Option<&ReplPoint>,
    functions: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut e = Encoder::new(compress);
    e.buf
        .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    let ctime = crate::util::clock::now_ms() / 1000;
    for (k, v) in [
        ("redis-ver", REDIS_VER.to_string()),
        ("redis-bits", "64".into()),
        ("ctime", ctime.to_string()),
        ("used-mem", "0".into()),
    ] {
        e.byte(opcode::AUX);
        e.string(k.as_bytes());
        e.string(v.as_bytes());
    }
    if let Some(r) = repl {
        for (k, v) in [
            ("repl-stream-db", r.stream_db.to_string()),
            ("repl-id", r.replid.clone()),
            ("repl-offset", r.offset.to_string()),
        ] {
            e.byte(opcode::AUX);
            e.string(k.as_bytes());
            e.string(v.as_bytes());
        }
    }
    e.byte(opcode::AUX);
    e.string(b"aof-base");
    e.string(u8::from(aof_base).to_string().as_bytes());
    for code in functions {
        e.byte(opcode::FUNCTION2);
        e.string(code);
    }
    e.buf
}

/// A whole RDB with no keys, only `functions` (a replica's `rdb-filter-only`, redis-cli
/// --functions-rdb): the header, the libraries, EOF and the checksum.
pub fn without_data(compress: bool, repl: &ReplPoint, functions: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = header_for_sync(
        compress,
        false,
        Some(repl),
        functions.iter().map(|f| &f[..]),
    );
    buf.push(opcode::EOF);
    let crc = super::crc64::crc64(0, &buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// A new file to write a dump to, buffered.
pub fn create(path: &Path) -> io::Result<Box<dyn Output>> {
    Ok(Box::new(BufWriter::with_capacity(
        1 << 20,
        File::create(path)?,
    )))
}

/// EOF and the CRC-64 of everything before it (0 without `rdbchecksum`): what ends a file
/// whose header and keys went to `sink`.
pub fn end(sink: &mut Sink) -> io::Result<()> {
    sink.write(&[opcode::EOF])?;
    let crc = sink.crc();
    sink.write(&crc.to_le_bytes())
}

/// Renames `temp` over `path` and fsyncs the directory, so the new name survives a crash.
pub fn publish(temp: &Path, path: &Path) -> io::Result<()> {
    std::fs::rename(temp, path)?;
    File::open(dir_of(path))?.sync_all()
}

/// The directory `path` is in (`.` for a bare file name).
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Where a snapshot of `path` is written before it is renamed (Redis's name).
pub fn temp_path(path: &Path) -> PathBuf {
    dir_of(path).join(format!("temp-{}.rdb", std::process::id()))
}

#[derive(Debug)]
pub enum LoadError {
    Io(io::Error),
    Rdb(RdbError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read the RDB file: {e}"),
            LoadError::Rdb(e) => write!(f, "bad RDB file {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A parsed file, not yet in the live store.
pub struct Parsed {
    pub summary: Summary,
    staging: Store,
}

/// Parses `data` into a store of its own, so that a file that fails half way leaves the live
/// store untouched. `key_delay`: Redis's hidden `key-load-delay`, microseconds slept after
/// each key (negative: one in that many keys sleeps 1 µs), so that tests can watch a load.
pub fn parse(data: &[u8], databases: usize, key_delay: i64) -> Result<Parsed, RdbError> {
    let mut staging = Store::new(databases);
    let now = crate::util::clock::now_ms();
    let mut loaded = 0u64;
    let summary = read::parse(data, now, |db, key, v, deadline| {
        if key_delay != 0 {
            std::thread::sleep(crate::util::debug_delay(key_delay, loaded, 1));
        }
        loaded += 1;
        if db >= databases {
            return Err(format!(
                "database numbers below {databases} (the file has db {db}; raise 'databases')"
            ));
        }
        let hash = crate::store::hash_key(key);
        let id = ShardId::of_hash(db, hash);
        let shard: &mut Shard = staging.dbs[db].shards[id.shard as usize].get_mut();
        if shard.get_hashed(hash, key).is_some() {
            return Err(format!(
                "each key once ('{}' appears twice)",
                String::from_utf8_lossy(key)
            ));
        }
        shard.insert_hashed(hash, key, v);
        if let Some(d) = deadline {
            shard.expires.insert(key.into(), d);
        }
        Ok(())
    })?;
    Ok(Parsed { summary, staging })
}

impl Parsed {
    /// Replaces every database of `store` with the file's.
    pub fn install(mut self, store: &Store) -> Summary {
        for (db, staged) in self.staging.dbs.iter_mut().enumerate() {
            let Some(live) = store.dbs.get(db) else { break };
            for (s, shard) in staged.shards.iter_mut().enumerate() {
                std::mem::swap(&mut *live.shards[s].write(), shard.get_mut());
            }
        }
        self.summary
    }
}

impl Parsed {
    /// `install` by a caller that holds every shard of the store for writing (DEBUG RELOAD,
    /// which saved under the same locks: nobody writes between the save and the load).
    pub fn install_held(mut self, held: &mut Locked) -> Summary {
        for (db, staged) in self.staging.dbs.iter_mut().enumerate() {
            for (s, shard) in staged.shards.iter_mut().enumerate() {
                let id = ShardId {
                    db: db as u32,
                    shard: s as u32,
                };
                if held.holds_for(id, true) {
                    std::mem::swap(held.shard_mut(id), shard.get_mut());
                }
            }
        }
        self.summary
    }
}

/// Adds the keys of the RDB file `data` to the live shards `held` (all of them, write-locked),
/// as Redis's rdbLoad does without emptying first (DEBUG RELOAD NOFLUSH): a key the store has
/// already is replaced with `replace` (MERGE); without it the load stops there with an error
/// (where Redis stops the server), leaving the keys before it added.
pub fn merge_held(data: &[u8], held: &mut Locked, replace: bool) -> Result<Summary, RdbError> {
    let now = crate::util::clock::now_ms();
    read::parse(data, now, |db, key, v, deadline| {
        let hash = crate::store::hash_key(key);
        let id = ShardId::of_hash(db, hash);
        if !held.holds_for(id, true) {
            return Err(format!(
                "database numbers this server has (the file has db {db})"
            ));
        }
        let shard = held.shard_mut(id);
        if !replace && shard.get_hashed(hash, key).is_some() {
            return Err(format!(
                "keys not in the database already ('{}' is)",
                String::from_utf8_lossy(key)
            ));
        }
        shard.remove_hashed(hash, key);
        shard.insert_hashed(hash, key, v);
        if let Some(d) = deadline {
            shard.expires.insert(key.into(), d);
        }
        Ok(())
    })
}

/// What a load did, for the log line and INFO.
pub struct Loaded {
    pub summary: Summary,
    pub bytes: usize,
    pub seconds: f64,
}
