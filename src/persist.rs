//! The server's RDB side: where `dbfilename` lives, SAVE and BGSAVE of the whole server
//! (keys and function libraries), the save schedule, and loading at start. Plain functions,
//! so that other callers (DEBUG RELOAD, a replica's full sync) save and load the same way.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::rdb::file::{self, LoadError, Loaded};
use crate::rdb::snapshot::SaveStats;
use crate::shared::Shared;
use crate::store::Locked;
use crate::util::clock::now_ms;

/// Redis's hidden `key-load-delay` (see `file::parse`).
fn key_load_delay(shared: &Shared) -> i64 {
    let c = shared.config.read();
    c.get("key-load-delay")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `dir`/`dbfilename`.
pub fn rdb_path(shared: &Shared) -> PathBuf {
    let c = shared.config.read();
    c.dir
        .join(c.get("dbfilename").unwrap_or_else(|| "dump.rdb".into()))
}

/// The function libraries' code, as a snapshot stores them.
pub(crate) fn functions(shared: &Shared) -> Vec<Vec<u8>> {
    let libs = shared.scripts.libraries();
    libs.libs.values().map(|l| l.code.to_vec()).collect()
}

/// What an AOF rewrite starts its file with: the function libraries, and with
/// `aof-use-rdb-preamble yes` (Redis's default) the keys as RDB (`rdbcompression`,
/// `rdbchecksum` apply).
pub fn aof_base(shared: &Shared) -> crate::aof::rewrite::Base {
    let (preamble, timestamp) = {
        let c = shared.config.read();
        (
            c.get("aof-use-rdb-preamble").is_none_or(|v| v == "yes"),
            c.get("aof-timestamp-enabled").is_some_and(|v| v == "yes"),
        )
    };
    let rdb = crate::commands::dump::rdb_options(shared);
    crate::aof::rewrite::Base {
        functions: functions(shared),
        rdb: preamble.then_some(rdb),
        key_delay: rdb.key_delay,
        timestamp,
    }
}

/// Why a save could not start.
#[derive(Debug)]
pub enum SaveError {
    InProgress,
    Io(std::io::Error),
}

/// Saves the whole server to `path` now, on this thread (SAVE; DEBUG RELOAD's first half).
/// Other clients keep being served: the snapshot is point-in-time without stopping them.
pub fn save_to_path(shared: &Shared, path: &Path) -> Result<SaveStats, SaveError> {
    save_with(shared, path, None)
}

/// `save_to_path` by a caller that holds every shard already (SHUTDOWN).
pub fn save_held(shared: &Shared, path: &Path, all: &Locked) -> Result<SaveStats, SaveError> {
    save_with(shared, path, Some(all))
}

fn save_with(shared: &Shared, path: &Path, held: Option<&Locked>) -> Result<SaveStats, SaveError> {
    if !shared.snapshots.try_begin() {
        return Err(SaveError::InProgress);
    }
    save_claimed(shared, path, held)
}

/// A save by the holder of the snapshot slot (`Snapshots::try_begin`), which it releases.
fn save_claimed(
    shared: &Shared,
    path: &Path,
    held: Option<&Locked>,
) -> Result<SaveStats, SaveError> {
    let snaps = &shared.snapshots;
    let opts = crate::commands::dump::rdb_options(shared);
    let dirty = shared.stats.dirty.get();
    let res = snaps.save(&shared.store, path, opts, &functions(shared), dirty, held);
    match &res {
        Ok(s) => log::info!(
            "DB saved on disk: {} keys, {} bytes in {:.3} seconds to {}{}",
            s.keys,
            s.bytes,
            s.seconds,
            path.display(),
            if s.copied + s.copied_keys > 0 {
                format!(
                    " ({} keys, {} bytes, and {} whole shards copied before writes)",
                    s.copied_keys, s.copied_bytes, s.copied
                )
            } else {
                String::new()
            }
        ),
        Err(e) => log::warn!("Failed saving the DB to {}: {e}", path.display()),
    }
    res.map_err(SaveError::Io)
}

/// Starts a background save; false if one runs already. The slot is taken here, so that
/// INFO and a second BGSAVE see it at once.
pub fn bgsave(shared: &Shared) -> bool {
    if !shared.snapshots.try_begin() {
        return false;
    }
    shared.snapshots.request();
    true
}

/// The saver thread: runs BGSAVE's requests, SCHEDULEd ones once no AOF rewrite runs, and the
/// `save` schedule (`seconds changes` pairs: save when that many changes are that old).
pub fn saver_loop(shared: Arc<Shared>) {
    let snaps = &shared.snapshots;
    loop {
        let requested = snaps.wait_request(Duration::from_millis(100));
        let rewriting = shared
            .aof_handle()
            .status
            .rewrite_in_progress
            .load(Ordering::SeqCst);
        let scheduled = !rewriting && snaps.scheduled.swap(false, Ordering::SeqCst);
        if !requested {
            let due = scheduled || schedule_due(&shared);
            if !due || !snaps.try_begin() {
                continue;
            }
        }
        log::info!("Background saving started");
        crate::util::children::background_job();
        let path = rdb_path(&shared);
        // Background work once its instant is taken: where cores are short, clients'
        // commands come first.
        snaps.saver.begin_after_start();
        let res = save_claimed(&shared, &path, None);
        snaps.saver.end();
        match res {
            Ok(_) => log::info!("Background saving terminated with success"),
            Err(SaveError::InProgress) => {}
            Err(SaveError::Io(_)) => log::warn!("Background saving error"),
        }
    }
}

/// True when a `save` point is reached (Redis's serverCron rule, with its 5 s retry delay
/// after a failure).
fn schedule_due(shared: &Shared) -> bool {
    let save = shared.config.read().save.clone();
    if save.is_empty() || shared.snapshots.in_progress() {
        return false;
    }
    let st = &shared.snapshots.status;
    let changes = shared
        .stats
        .dirty
        .get()
        .saturating_sub(st.dirty_at_save.load(Ordering::Relaxed));
    let now = now_ms() / 1000;
    let since = now.saturating_sub(st.last_save.load(Ordering::Relaxed));
    let failed_recently = !st.last_ok.load(Ordering::Relaxed)
        && now_ms().saturating_sub(st.last_try_ms.load(Ordering::Relaxed)) < 5000;
    if failed_recently {
        return false;
    }
    let words: Vec<u64> = save
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    words.chunks_exact(2).any(|p| {
        let due = changes >= p[1] && since >= p[0];
        if due {
            log::info!("{} changes in {} seconds. Saving...", p[1], p[0]);
        }
        due
    })
}

/// Loads `path` at start: the log says what it was and what it held.
pub fn load_at_start(shared: &Shared, path: &Path) -> Result<Option<Loaded>, LoadError> {
    let started = std::time::Instant::now();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    shared.set_loading(true);
    shared.load_progress(data.len() as u64, 0);
    let res = install_rdb(shared, &data, path, started);
    shared.set_loading(false);
    Ok(Some(Loaded {
        summary: res?,
        bytes: data.len(),
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// Replaces the data set with the RDB in `data` (keys and function libraries, all or
/// nothing; an AOF's RDB preamble may go on past the RDB's end, at `Summary::len`), and logs
/// what it held. `path` and `started` are for the log line.
pub fn install_rdb(
    shared: &Shared,
    data: &[u8],
    path: &Path,
    started: std::time::Instant,
) -> Result<crate::rdb::read::Summary, LoadError> {
    let parsed = match file::parse(data, shared.store.dbs.len(), key_load_delay(shared)) {
        Ok(p) => p,
        Err(e) => {
            // What redis-check-rdb would report, as Redis runs it on a file it cannot load.
            log::warn!(
                "--- RDB ERROR DETECTED --- {} ({}, {} bytes): at byte {} ({:.1}% in), expected {}",
                path.display(),
                data.get(..9)
                    .map_or("no header".into(), String::from_utf8_lossy),
                data.len(),
                e.offset,
                100.0 * e.offset as f64 / data.len().max(1) as f64,
                e.expected
            );
            return Err(LoadError::Rdb(e));
        }
    };
    let s = parsed.install(&shared.store);
    restore_functions(shared, &s.functions).map_err(|e| {
        LoadError::Rdb(crate::rdb::RdbError {
            offset: 0,
            expected: format!("function libraries that load: {e}"),
        })
    })?;
    log::info!(
        "DB loaded from disk: {} (RDB version {}, written by Redis {}): keys loaded: {}, keys \
         expired: {}, empty keys skipped: {}, function libraries: {}, {} bytes in {:.3} seconds",
        path.display(),
        s.version,
        s.aux("redis-ver")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "?".into()),
        s.keys,
        s.expired,
        s.empty,
        s.functions.len(),
        s.len,
        started.elapsed().as_secs_f64()
    );
    if !s.checksummed && s.version >= 5 {
        log::warn!("RDB file was saved with checksum disabled: no check performed.");
    }
    let st = &shared.snapshots.status;
    st.last_load_keys.store(s.keys, Ordering::Relaxed);
    st.last_load_expired.store(s.expired, Ordering::Relaxed);
    Ok(s)
}

fn restore_functions(shared: &Shared, codes: &[Vec<u8>]) -> Result<(), String> {
    if codes.is_empty() {
        return Ok(());
    }
    crate::commands::script::function::load_libraries(shared, codes)
}

/// What DEBUG RELOAD does besides loading (Redis's MERGE, NOFLUSH and NOSAVE options).
#[derive(Debug, Clone, Copy)]
pub struct Reload {
    pub save: bool,
    pub flush: bool,
    pub merge: bool,
}

/// Why DEBUG RELOAD failed.
#[derive(Debug)]
pub enum ReloadError {
    Save(SaveError),
    Load(String),
}

/// DEBUG RELOAD: saves the RDB file (unless `!save`), empties the server (unless `!flush`) and
/// loads the file back, by a caller that holds every shard for writing, so that no write falls
/// between the save and the load. With `flush` the load is all or nothing; without it the
/// file's keys are added to the live ones (`merge`: replacing those of the same name).
pub fn reload(shared: &Shared, held: &mut Locked, how: Reload) -> Result<(), ReloadError> {
    use crate::commands::script::function::{restore_libraries, Policy};
    let path = rdb_path(shared);
    if how.save {
        save_held(shared, &path, held).map_err(ReloadError::Save)?;
    }
    let data = std::fs::read(&path).map_err(|e| ReloadError::Load(e.to_string()))?;
    let load_error = |e: &dyn std::fmt::Display| {
        log::warn!("DEBUG RELOAD could not load {}: {e}", path.display());
        ReloadError::Load(e.to_string())
    };
    let summary = if how.flush {
        let parsed = file::parse(&data, shared.store.dbs.len(), key_load_delay(shared))
            .map_err(|e| load_error(&e))?;
        // Flushed with the keys, as Redis's emptyData empties the function libraries too.
        restore_libraries(shared, &parsed.summary.functions, Policy::Flush)
            .map_err(|e| load_error(&e))?;
        shared.tracking.flush(shared);
        parsed.install_held(held)
    } else {
        let policy = if how.merge {
            Policy::Replace
        } else {
            Policy::Append
        };
        let summary = file::merge_held(&data, held, how.merge).map_err(|e| load_error(&e))?;
        restore_libraries(shared, &summary.functions, policy).map_err(|e| load_error(&e))?;
        summary
    };
    let st = &shared.snapshots.status;
    st.last_load_keys.store(summary.keys, Ordering::Relaxed);
    st.last_load_expired
        .store(summary.expired, Ordering::Relaxed);
    log::warn!("DB reloaded by DEBUG RELOAD");
    Ok(())
}

/// What a replica's full sync loaded.
pub struct SyncLoaded {
    pub keys: u64,
    pub expired: u64,
    /// The database the master's stream had selected at the snapshot (`repl-stream-db`):
    /// what follows runs there until the stream selects another.
    pub stream_db: usize,
}

/// A replica's full sync: the master's RDB replaces every database and every function
/// library. It is parsed aside first, so that a payload that fails leaves the data as it
/// was; while it is parsed and installed the server is loading (clients get -LOADING).
pub fn install_from_master(shared: &Shared, payload: &[u8]) -> Result<SyncLoaded, LoadError> {
    shared.set_loading(true);
    let res = file::parse(payload, shared.store.dbs.len(), key_load_delay(shared))
        .map(|parsed| parsed.install(&shared.store));
    shared.set_loading(false);
    let s = res.map_err(LoadError::Rdb)?;
    // As Redis's emptyData on a sync: every watch fails, every tracked key is invalidated.
    for db in 0..shared.store.dbs.len() {
        shared.watches.touch_db(db, |_| true, None);
    }
    shared.tracking.flush(shared);
    crate::commands::script::function::load_libraries(shared, &s.functions).map_err(|e| {
        LoadError::Rdb(crate::rdb::RdbError {
            offset: 0,
            expected: format!("function libraries that load: {e}"),
        })
    })?;
    let st = &shared.snapshots.status;
    st.last_load_keys.store(s.keys, Ordering::Relaxed);
    st.last_load_expired.store(s.expired, Ordering::Relaxed);
    let stream_db = s
        .aux("repl-stream-db")
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .filter(|&db: &usize| db < shared.store.dbs.len())
        .unwrap_or(0);
    Ok(SyncLoaded {
        keys: s.keys,
        expired: s.expired,
        stream_db,
    })
}
