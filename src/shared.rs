//! Everything the worker threads share.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::RwLock;
use smallvec::smallvec;

use crate::aof::{Aof, AofWait};
use crate::blocking::Blocking;
use crate::clients::Clients;
use crate::config::Config;
use crate::resp::reply::encode_command;
use crate::scripts::Scripts;
use crate::stats::Stats;
use crate::store::{Locked, ShardId, ShardIds, Store};
use crate::util::clock::now_ms;
use crate::watch::Watches;

/// Why writes are refused: the AOF's write error, as C's strerror words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRefusal {
    Aof(String),
    /// The last RDB snapshot failed (`stop-writes-on-bgsave-error`).
    Rdb,
}

impl std::fmt::Display for WriteRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteRefusal::Aof(e) => write!(f, "MISCONF Errors writing to the AOF file: {e}"),
            WriteRefusal::Rdb => f.write_str(
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable \
                 to persist to disk. Commands that may modify the data set are disabled, because \
                 this instance is configured to report errors during writes if RDB snapshotting \
                 fails (stop-writes-on-bgsave-error option). Please check the Redis logs for \
                 details about the RDB error.",
            ),
        }
    }
}

pub struct Shared {
    pub config: RwLock<Config>,
    pub store: Store,
    /// On or off (see `Shared::aof`).
    aof: Aof,
    pub stats: Stats,
    pub clients: Clients,
    pub watches: Watches,
    /// Blocked clients and the keys they wait on.
    pub blocking: Blocking,
    pub pubsub: crate::notify::pubsub::PubSub,
    pub tracking: crate::notify::tracking::Tracking,
    /// The script cache, the function libraries, the scripts running long.
    pub scripts: Scripts,
    pub acl: crate::acl::Acl,
    /// The TLS configuration new TLS clients get (None without a `tls-port`).
    pub tls: crate::tls::TlsContext,
    /// The listening sockets, which CONFIG SET port / tls-port move.
    pub ports: crate::listen::Ports,
    /// Statistics, slow log, latency monitor, MONITOR, CLIENT PAUSE (see `ops`).
    pub ops: crate::ops::Ops,
    pub started: Instant,
    loading: Loading,
    /// SAVE and BGSAVE: the running snapshot and the last one's status.
    pub snapshots: crate::rdb::snapshot::Snapshots,
    /// This server's replication role and its link to a master.
    pub repl: crate::repl::Repl,
}

/// Whether a load is running (nested ones count) and how far it is.
#[derive(Default)]
struct Loading {
    depth: AtomicUsize,
    start_secs: AtomicU64,
    total_bytes: AtomicU64,
    loaded_bytes: AtomicU64,
}

impl Shared {
    /// With the AOF off, and no writer to turn it on (for in-process users: tests, benches).
    pub fn new(config: Config) -> Self {
        let layout = crate::aof::Layout::Single(config.aof_path());
        let aof = Aof::new(layout, config.appendfsync, false);
        Shared::with_aof(config, aof)
    }

    pub fn with_aof(config: Config, aof: Aof) -> Self {
        let acl = crate::acl::Acl::default();
        acl.set_default_password(&config.requirepass.expose());
        Shared {
            store: Store::new(config.databases),
            config: RwLock::new(config),
            aof,
            stats: Stats::default(),
            clients: Clients::default(),
            watches: Watches::default(),
            blocking: Blocking::default(),
            pubsub: Default::default(),
            tracking: Default::default(),
            scripts: Scripts::default(),
            acl,
            tls: Default::default(),
            ports: Default::default(),
            ops: Default::default(),
            started: Instant::now(),
            loading: Loading::default(),
            snapshots: Default::default(),
            repl: Default::default(),
        }
    }

    /// The AOF, while it is on: what records are made for.
    #[inline]
    pub fn aof(&self) -> Option<&Aof> {
        self.aof.enabled().then_some(&self.aof)
    }

    /// The AOF on or off: for what outlives a switch (a rewrite running, records queued
    /// before it, the fsync policy, turning it on).
    pub fn aof_handle(&self) -> &Aof {
        &self.aof
    }

    pub fn is_loading(&self) -> bool {
        self.loading.depth.load(Ordering::Relaxed) > 0
    }

    /// Loads nest: start-up holds the server loading across its RDB and AOF files, each of
    /// which also marks its own load. The outermost start resets the progress INFO shows.
    pub fn set_loading(&self, on: bool) {
        let l = &self.loading;
        if on {
            if l.depth.load(Ordering::SeqCst) == 0 {
                l.start_secs.store(now_ms() / 1000, Ordering::Relaxed);
                l.total_bytes.store(0, Ordering::Relaxed);
                l.loaded_bytes.store(0, Ordering::Relaxed);
            }
            l.depth.fetch_add(1, Ordering::SeqCst);
        } else {
            l.depth.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// How far the running load is: `loaded` of `total` bytes of the file being read.
    pub fn load_progress(&self, total: u64, loaded: u64) {
        self.loading.total_bytes.store(total, Ordering::Relaxed);
        self.loading.loaded_bytes.store(loaded, Ordering::Relaxed);
    }

    /// The running load's start (unix seconds), file size and bytes read, for INFO.
    pub fn load_status(&self) -> (u64, u64, u64) {
        let l = &self.loading;
        (
            l.start_secs.load(Ordering::Relaxed),
            l.total_bytes.load(Ordering::Relaxed),
            l.loaded_bytes.load(Ordering::Relaxed),
        )
    }

    /// Why write commands are refused right now, if they are: the AOF cannot be written.
    /// Redis's wording, with C's strerror text.
    #[inline]
    pub fn write_refusal(&self) -> Option<WriteRefusal> {
        if !self.snapshots.status.last_ok.load(Ordering::Relaxed) {
            return self.rdb_refusal();
        }
        self.aof()?.write_error().map(WriteRefusal::Aof)
    }

    /// The last snapshot failed: with a `save` schedule and `stop-writes-on-bgsave-error`,
    /// writes are refused until one succeeds (Redis's -MISCONF).
    #[cold]
    fn rdb_refusal(&self) -> Option<WriteRefusal> {
        let c = self.config.read();
        let stop = c
            .get("stop-writes-on-bgsave-error")
            .is_none_or(|v| v == "yes");
        (stop && !c.save.is_empty()).then_some(WriteRefusal::Rdb)
    }

    /// Locks `ids` for a command (see `Store::lock`). A write that spans several shards
    /// first settles its place in a running AOF rewrite (see `aof::rewrite`), before it
    /// changes anything.
    pub fn lock(&self, ids: ShardIds, write: bool) -> Locked<'_> {
        let mut locked = self.store.lock(ids, write);
        if write {
            self.before_write(&mut locked);
        }
        locked
    }

    /// `lock` for a client's command, unless a script runs past busy-reply-threshold while it
    /// waits (see `Store::lock_unless`): then the BUSY script's kind, EVAL (true) or function.
    pub fn lock_unless_busy(&self, ids: ShardIds, write: bool) -> Result<Locked<'_>, bool> {
        let give_up = || self.scripts.busy().is_some();
        let Some(mut locked) = self.store.lock_unless(ids, write, &give_up) else {
            return Err(self.scripts.busy().unwrap_or(true));
        };
        if write {
            self.before_write(&mut locked);
        }
        Ok(locked)
    }

    /// The locks of a script that may write (or of an EXEC that runs one): the script token,
    /// which lets it wait for the shard of a key it did not declare whatever it holds (see
    /// `store`'s module comment), then `ids`, for writing. While a dump (AOF rewrite,
    /// snapshot) runs, every shard instead: a shard taken late could have been dumped before
    /// the script's other shards, which the dump reads after it. No dump starts while the
    /// token is held. Err as `lock_unless_busy`.
    pub fn lock_for_script(&self, ids: ShardIds) -> Result<Locked<'_>, bool> {
        let give_up = || self.scripts.busy().is_some();
        let Some(token) = self.store.token_unless(&give_up) else {
            return Err(self.scripts.busy().unwrap_or(true));
        };
        let dumping = self.aof.rewrite.in_progress() || self.snapshots.in_progress();
        let ids = match dumping {
            true => self.store.all_shards().collect(),
            false => ids,
        };
        let mut locked = self.lock_unless_busy(ids, true)?;
        locked.set_token(token);
        Ok(locked)
    }

    /// What a write does right after taking its locks, before it changes anything: settles
    /// its place in a running AOF rewrite and a running snapshot (see `aof::rewrite`,
    /// `rdb::snapshot`).
    #[inline]
    fn before_write(&self, locked: &mut Locked) {
        self.aof.rewrite.before_write(locked);
        self.snapshots.before_write(locked);
    }

    /// `lock` for one shard.
    pub fn lock_one(&self, id: ShardId, write: bool) -> Locked<'_> {
        let mut locked = self.store.lock_one(id, write);
        if write {
            self.snapshots.before_write(&mut locked);
        }
        locked
    }

    /// A replica under `replica-read-only yes`: clients' writes (their commands', their
    /// scripts') are refused with `repl::READONLY`; its master's are obeyed.
    pub fn refuses_client_writes(&self) -> bool {
        self.repl.is_replica()
            && self
                .config
                .read()
                .get("replica-read-only")
                .is_none_or(|v| v == "yes")
    }

    /// A replica whose link is down under `replica-serve-stale-data no`: only `STALE`
    /// commands are served (Redis's MASTERDOWN, and its scripts' stale-replica refusal).
    pub fn serves_stale_only(&self) -> bool {
        self.repl.is_replica()
            && !self.repl.link_up()
            && self
                .config
                .read()
                .get("replica-serve-stale-data")
                .is_some_and(|v| v == "no")
    }

    /// True while a password is configured: clients must AUTH before other commands.
    pub fn requires_auth(&self) -> bool {
        self.acl.requires_auth()
    }

    /// Removes `key` from `db` if it has expired, logging its DEL: what a read that found it
    /// expired leaves to do once its read locks are released. Checked again under the write
    /// lock, since another client may have written the key in between.
    pub fn remove_expired(&self, db: usize, key: &[u8]) {
        let id = ShardId::of_key(db, key);
        let mut locked = self.lock(smallvec![id], true);
        let shard = locked.key_mut(id, key);
        // A replica's keys expire by its master's DELs (reads only hide them meanwhile); and
        // as in Redis, nothing is removed while clients are paused, reads hide it then too
        // (a pause is a failover's window: the data must not change under it).
        if !shard.is_expired(key, now_ms())
            || self.is_loading()
            || self.repl.is_replica()
            || self.ops.pause.kind() != crate::ops::pause::PauseKind::Off
        {
            return;
        }
        if let Some(old) = shard.remove(key) {
            self.blocking.value_left(db, key, &old);
        }
        self.stats.expired_keys(1);
        crate::notify::key_expired(self, db, key);
        let mut record = Vec::new();
        encode_command(&mut record, &[&b"DEL"[..], key]);
        self.propagate(db, record, &locked);
    }

    /// `remove_expired` for hash fields a read found past their deadline (Redis 7.4's lazy
    /// field expiry): those still past it go, each with an HDEL, and the key with the last.
    pub fn remove_expired_fields(&self, db: usize, key: &[u8], fields: &[Box<[u8]>]) {
        let id = ShardId::of_key(db, key);
        let mut locked = self.lock(smallvec![id], true);
        if self.is_loading()
            || self.repl.is_replica()
            || self.ops.pause.kind() != crate::ops::pause::PauseKind::Off
        {
            return;
        }
        let shard = locked.key_mut(id, key);
        let Some(gone) = shard.remove_expired_fields(key, fields, now_ms()) else {
            return;
        };
        let n = gone.fields.len() as u64;
        crate::notify::fields_expired(self, db, key, n, gone.emptied);
        let mut record = crate::expiry::hdels(key, &gone.fields);
        // As Redis's propagatePendingCommands: one command's several HDELs (HRANDFIELD's)
        // are applied by a replica, or a load cut short, wholly or not at all.
        if n > 1 {
            record = crate::commands::transaction::wrapped(record);
        }
        self.propagate(db, record, &locked);
    }

    /// True when a write's effect has somewhere to go (the AOF, replicas): otherwise
    /// commands need not build their records.
    #[inline]
    pub fn propagates(&self) -> bool {
        self.aof().is_some() || self.repl.backlog.is_feeding()
    }

    /// Hands a write's AOF record to the writer thread. Called with the command's locks held
    /// (`locked`). Returns what the client's reply must wait for (see `Session::output`).
    pub fn propagate(&self, db: usize, data: Vec<u8>, locked: &Locked) -> Option<AofWait> {
        self.repl.backlog.feed(db, &data);
        self.aof()?.append(db, data, locked)
    }

    /// `propagate`, with a record of its own for the AOF and for the replicas (a script's
    /// redis.set_repl); None sends nothing there.
    pub fn propagate_split(
        &self,
        db: usize,
        aof: Option<Vec<u8>>,
        replicas: Option<Vec<u8>>,
        locked: &Locked,
    ) -> Option<AofWait> {
        if let Some(r) = replicas {
            self.repl.backlog.feed(db, &r);
        }
        self.aof()?.append(db, aof?, locked)
    }
}

impl Shared {
    /// Sets the process's oom_score_adj for its role by `config` (see `util::oom`): at start,
    /// in CONFIG SET (with the settings it is making), and when the role changes.
    pub fn apply_oom_score(&self, config: &crate::config::Config) -> Result<(), String> {
        let mode = config.get("oom-score-adj").unwrap_or_default();
        let values = config.get("oom-score-adj-values").unwrap_or_default();
        crate::util::oom::apply(&mode, &values, self.repl.is_replica()).inspect_err(|e| {
            log::warn!("{e}");
        })
    }

    /// REPLICAOF host port (the command, a failover, the config at start): follows that
    /// master from now on, and ends every client's wait as Redis's replicationSetMaster
    /// does (see `blocking::End::Demoted`).
    pub fn become_replica(&self, host: &str, port: u16) -> crate::repl::RoleChange {
        let change = self.repl.set_master(host, port);
        if matches!(change, crate::repl::RoleChange::Changed) {
            self.blocking.end_all(self, crate::blocking::End::Demoted);
            let _ = self.apply_oom_score(&self.config.read());
        }
        change
    }

    /// REPLICAOF NO ONE (the command, a failover's promotion): a master from now on.
    pub fn become_master(&self) {
        self.repl.unset_master();
        let _ = self.apply_oom_score(&self.config.read());
    }

    /// Stops the process cleanly: waits for every command in flight (by taking every shard's
    /// lock, so no command changes data after this), writes and fsyncs the AOF, and exits 0.
    /// Returns only if the AOF could not be written and `force` is false: the server then
    /// keeps running, as Redis does when it cannot persist at shutdown.
    pub fn shutdown(&self, force: bool) {
        self.shutdown_saving(force, false, false)
    }

    /// `shutdown`, saving the RDB first when `save`, or when a `save` schedule is set and not
    /// `nosave` (as Redis). The snapshot is taken holding every shard: nothing changes after.
    pub fn shutdown_saving(&self, force: bool, save: bool, nosave: bool) {
        // Just turned on, the AOF does not hold the data yet: exiting now would lose it
        // (Redis's words).
        if self.aof().is_some_and(|a| !a.has_base()) {
            if !force {
                log::warn!("Writing initial AOF, can't exit.");
                return;
            }
            log::warn!("Writing initial AOF. Exit anyway.");
        }
        let scheduled = !self.config.read().save.is_empty();
        let all = loop {
            let ids = self.store.all_shards().collect();
            let all = self.store.lock(ids, true);
            if !(save || (scheduled && !nosave)) {
                break all;
            }
            log::warn!("Saving the final RDB snapshot before exiting.");
            let path = crate::persist::rdb_path(self);
            match crate::persist::save_held(self, &path, &all) {
                // A BGSAVE still writing needs the shards this holds: let it finish first.
                Err(crate::persist::SaveError::InProgress) => {
                    drop(all);
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(_) if !force => {
                    log::warn!("Error trying to save the DB, can't exit.");
                    return;
                }
                _ => break all,
            }
        };
        if let Some(aof) = self.aof() {
            log::warn!("Calling fsync() on the AOF file.");
            if !aof.sync() {
                if !force {
                    log::warn!(
                        "Error trying to shut down: the AOF {} cannot be written ({}); not \
                         exiting (SHUTDOWN FORCE exits anyway)",
                        aof.path().display(),
                        aof.write_error().unwrap_or_default()
                    );
                    drop(all);
                    return;
                }
                log::warn!("the AOF could not be written; exiting anyway (FORCE)");
            }
            log::info!(
                "AOF: {} records written with {} fsyncs since start",
                aof.status
                    .records
                    .load(std::sync::atomic::Ordering::Relaxed),
                aof.status.fsyncs.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        // A rewrite still dumping is abandoned with its temp file, as Redis kills its child.
        let _ = std::fs::remove_file(crate::aof::rewrite::temp_path(&self.aof.layout().dir()));
        crate::util::children::kill_all();
        self.ports.close_all();
        log::warn!("rudis is now ready to exit, bye bye...");
        std::process::exit(0)
    }
}
