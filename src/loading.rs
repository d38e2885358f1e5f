//! Replays the AOF into the store at start-up, through the command dispatcher, as Redis's
//! `loadAppendOnlyFile` does with a fake client.

use std::fmt;
use std::path::Path;
use std::time::Instant;

use smallvec::SmallVec;

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
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read the AOF: {e}"),
            LoadError::Corrupt { offset, reason } => write!(
                f,
                "bad file format reading the append only file at offset {offset}: {reason}; \
                 make a backup of it and run 'redis-check-aof --fix <file>'"
            ),
        }
    }
}

impl std::error::Error for LoadError {}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub commands: u64,
    /// Set when an incomplete last command was cut off: the length the file was truncated to.
    pub truncated_at: Option<usize>,
}

/// Replays `path` into `shared`'s store. A missing file is an empty one. An incomplete last
/// command (a crash mid-write) is cut off and the file truncated to its valid prefix; anything
/// else unreadable stops the load with the offset.
pub fn load(shared: &Shared, path: &Path) -> Result<LoadStats, LoadError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LoadStats::default()),
        Err(e) => return Err(LoadError::Io(e)),
    };
    let started = Instant::now();
    let mut stats = LoadStats::default();
    let mut parser = RequestParser::new(Limits {
        max_inline_len: 64 * 1024,
        ..Limits::default()
    });
    let mut client = Client::new(None);
    let mut out = ReplyBuf::new();
    shared.set_loading(true);
    let result = (|| {
        let mut last_complete = 0;
        // Where the open MULTI began: a transaction the file does not finish was cut off by a
        // crash, and is dropped with what follows it (Redis does the same).
        let mut before_multi = 0;
        loop {
            if parser.is_idle() && last_complete < data.len() && data[last_complete] != b'*' {
                return Err(LoadError::Corrupt {
                    offset: last_complete,
                    reason: format!("expected '*', got byte 0x{:02x}", data[last_complete]),
                });
            }
            match parser.parse(&data) {
                Ok(Parsed::Request { end }) => {
                    let argv: SmallVec<[&[u8]; 8]> =
                        parser.args().iter().map(|a| a.bytes(&data)).collect();
                    if commands::lookup(argv[0]).is_none() {
                        return Err(LoadError::Corrupt {
                            offset: last_complete,
                            reason: format!(
                                "unknown command '{}'",
                                String::from_utf8_lossy(argv[0])
                            ),
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
                }
                Ok(Parsed::Incomplete { .. }) => {
                    if client.multi.is_some() {
                        stats.truncated_at = Some(before_multi);
                    } else if last_complete < data.len() {
                        stats.truncated_at = Some(last_complete);
                    }
                    return Ok(());
                }
                Err(e) => {
                    return Err(LoadError::Corrupt {
                        offset: last_complete,
                        reason: e.to_string(),
                    })
                }
            }
        }
    })();
    shared.set_loading(false);
    result?;
    if let Some(at) = stats.truncated_at {
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
    Ok(stats)
}
