//! Replays the AOF into the store at start-up, through the command dispatcher, as Redis's
//! `loadAppendOnlyFile` does with a fake client.

use std::fmt;
use std::path::Path;
use std::time::Instant;

use smallvec::SmallVec;

use crate::aof::manifest::{Dir, Manifest};
use crate::aof::Layout;
use crate::client::Client;
use crate::commands;
use crate::resp::parse::{Limits, Parsed, RequestParser};
use crate::resp::ReplyBuf;
use crate::shared::Shared;

#[derive(Debug)]
pub enum LoadError {
    Io(std::io::Error),
    /// Bytes that are not a command at `offset`.
    Corrupt {
        offset: usize,
        reason: String,
    },
    /// A command rudis does not know, at `offset`.
    UnknownCommand {
        offset: usize,
        name: String,
    },
    /// An incomplete command at the end, with `aof-load-truncated no`.
    Truncated {
        offset: usize,
    },
    /// A Redis 7 AOF manifest that is not one.
    Manifest(crate::aof::manifest::BadManifest),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read the AOF: {e}"),
            // Redis's sentences (its tests look for them), with where and why.
            LoadError::Corrupt { offset, reason } => write!(
                f,
                "Bad file format reading the append only file at offset {offset} ({reason}): \
                 make a backup of your AOF file, then use ./redis-check-aof --fix \
                 <filename.manifest>"
            ),
            LoadError::UnknownCommand { offset, name } => write!(
                f,
                "Unknown command '{name}' reading the append only file at offset {offset}"
            ),
            LoadError::Truncated { offset } => write!(
                f,
                "Unexpected end of file reading the append only file at offset {offset}. You \
                 can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix \
                 <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' \
                 configuration option to yes and restart the server."
            ),
            LoadError::Manifest(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub commands: u64,
    /// Set when an incomplete last command was cut off: the length the file was truncated to.
    pub truncated_at: Option<usize>,
    /// The file's size.
    pub bytes: u64,
}

/// Replays `path` into `shared`'s store. A missing file is an empty one. A file that starts
/// with `REDIS` is an RDB preamble followed by commands (`aof-use-rdb-preamble`). An
/// incomplete last command (a crash mid-write) is cut off and the file truncated to its valid
/// prefix; anything else unreadable stops the load with the offset.
pub fn load(shared: &Shared, path: &Path) -> Result<LoadStats, LoadError> {
    // INFO shows the size from the start: reading a large file takes a while too.
    if let Ok(m) = std::fs::metadata(path) {
        shared.load_progress(m.len(), 0);
    }
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LoadStats::default()),
        Err(e) => return Err(LoadError::Io(e)),
    };
    load_file(shared, path, &data, true)
}

/// One file of an AOF; `last`: an incomplete command at its end may be cut off (in any other
/// file it is an error, as in Redis).
fn load_file(
    shared: &Shared,
    path: &Path,
    data: &[u8],
    last: bool,
) -> Result<LoadStats, LoadError> {
    let started = Instant::now();
    shared.set_loading(true);
    shared.load_progress(data.len() as u64, 0);
    let res = (|| {
        let mut start = 0;
        if crate::rdb::read::is_rdb(data) {
            log::info!("Reading RDB base file on AOF loading: {}", path.display());
            let summary =
                crate::persist::install_rdb(shared, data, path, started).map_err(|e| match e {
                    crate::rdb::file::LoadError::Io(e) => LoadError::Io(e),
                    crate::rdb::file::LoadError::Rdb(e) => LoadError::Corrupt {
                        offset: e.offset,
                        reason: format!("in its RDB preamble, expected {}", e.expected),
                    },
                })?;
            start = summary.len;
            shared.load_progress(data.len() as u64, start as u64);
            if start < data.len() {
                log::info!("Reading the remaining AOF tail of {}", path.display());
            }
        }
        replay(shared, &data[start..], start)
    })();
    shared.set_loading(false);
    let mut stats = res?;
    if let Some(at) = stats.truncated_at {
        let allowed = shared.config.read().get("aof-load-truncated").as_deref() != Some("no");
        if last && !allowed {
            return Err(LoadError::Truncated { offset: at });
        }
        if !last {
            return Err(LoadError::Corrupt {
                offset: at,
                reason: "an incomplete command, in a file that is not the last one".into(),
            });
        }
        log::warn!(
            "!!! AOF {} ends with an incomplete command at offset {at} of {}: loading the \
             valid prefix and truncating the file to it",
            path.display(),
            data.len()
        );
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(LoadError::Io)?;
        f.set_len(at as u64).map_err(LoadError::Io)?;
        f.sync_all().map_err(LoadError::Io)?;
    }
    let keys: usize = shared.store.dbs.iter().map(|d| d.len()).sum();
    log::info!(
        "DB loaded from append only file {}: {} commands, {} keys, {} bytes in {:.3} seconds",
        path.display(),
        stats.commands,
        keys,
        stats.truncated_at.unwrap_or(data.len()),
        started.elapsed().as_secs_f64()
    );
    stats.bytes = data.len() as u64;
    Ok(stats)
}

/// Runs the commands in `data`, which starts at `base` in its file (for the offsets).
fn replay(shared: &Shared, data: &[u8], base: usize) -> Result<LoadStats, LoadError> {
    let mut stats = LoadStats::default();
    let mut parser = RequestParser::new(Limits {
        max_inline_len: 64 * 1024,
        ..Limits::default()
    });
    let mut client = Client::new(None);
    let mut out = ReplyBuf::new();
    let mut last_complete = 0;
    // Where the open MULTI began: a transaction the file does not finish was cut off by a
    // crash, and is dropped with what follows it (Redis does the same).
    let mut before_multi = 0;
    loop {
        if parser.is_idle() && data.get(last_complete) == Some(&b'#') {
            // An annotation line (`aof-timestamp-enabled`'s `#TS:`), skipped as Redis's
            // loader skips it, to the end of the file if it has no newline.
            last_complete = match data[last_complete..].iter().position(|&b| b == b'\n') {
                Some(i) => last_complete + i + 1,
                None => data.len(),
            };
            parser.skip_to(last_complete);
            continue;
        }
        if parser.is_idle() && last_complete < data.len() && data[last_complete] != b'*' {
            return Err(LoadError::Corrupt {
                offset: base + last_complete,
                reason: format!("expected '*', got byte 0x{:02x}", data[last_complete]),
            });
        }
        match parser.parse(data) {
            Ok(Parsed::Request { end }) => {
                let argv: SmallVec<[&[u8]; 8]> =
                    parser.args().iter().map(|a| a.bytes(data)).collect();
                if commands::lookup(argv[0]).is_none() {
                    return Err(LoadError::UnknownCommand {
                        offset: base + last_complete,
                        name: String::from_utf8_lossy(argv[0]).into_owned(),
                    });
                }
                // Like Redis, a command that fails on replay (it failed live too) is
                // skipped, not fatal.
                if client.multi.is_none() {
                    before_multi = last_complete;
                }
                out.clear();
                commands::execute(shared, &mut client, &argv, &mut out);
                stats.commands += 1;
                last_complete = end;
                if stats.commands % 1024 == 0 {
                    let total = (base + data.len()) as u64;
                    shared.load_progress(total, (base + end) as u64);
                }
            }
            Ok(Parsed::Incomplete { .. }) => {
                if client.multi.is_some() {
                    stats.truncated_at = Some(base + before_multi);
                } else if last_complete < data.len() {
                    stats.truncated_at = Some(base + last_complete);
                }
                return Ok(stats);
            }
            Err(e) => {
                return Err(LoadError::Corrupt {
                    offset: base + last_complete,
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// Loads the AOF in its layout: the single file, or a multi-part AOF's parts in order (none
/// when it has no manifest yet).
pub fn load_aof(shared: &Shared, layout: &Layout) -> Result<LoadStats, LoadError> {
    match layout {
        Layout::Single(p) => load(shared, p),
        Layout::MultiPart(dir) => {
            let m = match dir.read().map_err(LoadError::Io)? {
                None => return Ok(LoadStats::default()),
                Some(m) => m.map_err(LoadError::Manifest)?,
            };
            load_manifest(shared, dir, &m)
        }
    }
}

/// Loads the base, then each incr file, as Redis 7.0's `loadAppendOnlyFiles`: only the last
/// file may end with an incomplete command; a file the manifest names must exist.
fn load_manifest(shared: &Shared, dir: &Dir, m: &Manifest) -> Result<LoadStats, LoadError> {
    let started = Instant::now();
    let manifest = dir.manifest_path();
    let files: Vec<(std::path::PathBuf, &str)> = m
        .base
        .iter()
        .map(|b| (dir.file(&b.name), "base"))
        .chain(m.incrs.iter().map(|i| (dir.file(&i.name), "incr")))
        .collect();
    log::info!(
        "Loading the multi-part AOF of {}: {} base file, {} incr files",
        manifest.display(),
        if m.base.is_some() { "a" } else { "no" },
        m.incrs.len()
    );
    let mut total = LoadStats::default();
    for (i, (path, kind)) in files.iter().enumerate() {
        let data = std::fs::read(path).map_err(|e| {
            LoadError::Io(std::io::Error::new(
                e.kind(),
                format!("{} (named by {}): {e}", path.display(), manifest.display()),
            ))
        })?;
        let format = if crate::rdb::read::is_rdb(&data) {
            "RDB"
        } else {
            "AOF"
        };
        let file_started = Instant::now();
        let stats = load_file(shared, path, &data, i + 1 == files.len())?;
        log::info!(
            "DB loaded from {kind} file {} ({format}): {:.3} seconds",
            path.display(),
            file_started.elapsed().as_secs_f64()
        );
        total.commands += stats.commands;
        total.bytes += stats.bytes;
        total.truncated_at = stats.truncated_at;
    }
    let keys: usize = shared.store.dbs.iter().map(|d| d.len()).sum();
    log::info!(
        "DB loaded from the multi-part AOF {}: {} files, {keys} keys, {} bytes in {:.3} seconds",
        manifest.display(),
        files.len(),
        total.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(total)
}
