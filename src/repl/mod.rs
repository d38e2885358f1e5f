//! Replication: this server's role (master, or replica of a master), what INFO replication
//! and ROLE show of it, and the replica side's link to its master (`replica`).
//!
//! The master side is `master` (serving replicas) and `backlog` (the stream they read);
//! `failover` hands the role to a replica (FAILOVER).
//!
//! The role is read on every command by the dispatcher's gates (READONLY, MASTERDOWN), so the
//! two facts they need are atomics; the rest is behind one mutex, read by INFO and ROLE and
//! written by the link thread and REPLICAOF.

pub mod backlog;
pub mod failover;
pub mod master;
pub mod replica;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

/// The replica's link to its master, as Redis's `repl_state` (ROLE's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Waiting to (re)connect.
    Connect,
    Connecting,
    /// PING, AUTH, REPLCONF, PSYNC sent and answered one by one.
    Handshake,
    /// Receiving (or loading) the master's RDB.
    Transfer,
    Connected,
}

impl Link {
    pub fn role_name(self) -> &'static str {
        match self {
            Link::Connect => "connect",
            Link::Connecting => "connecting",
            Link::Handshake => "handshake",
            Link::Transfer => "sync",
            Link::Connected => "connected",
        }
    }
}

/// A full sync's transfer, for INFO's master_sync_* fields.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// The payload's size; 0 while it is EOF-marked (diskless) and so unknown.
    pub size: u64,
    pub read: u64,
    pub last_io: Instant,
}

#[derive(Debug)]
pub struct State {
    /// `host port` of the master, None on a master.
    pub master: Option<(String, u16)>,
    /// Bumped by every REPLICAOF: a link made for an older one ends itself.
    pub generation: u64,
    pub link: Link,
    /// The history this data set belongs to (PSYNC2): the master's id once synced, and the
    /// one before it with the offset where it ended (+1), so that a replica of the old
    /// history can continue partially.
    pub replid: String,
    pub replid2: String,
    pub second_offset: i64,
    /// Bytes of the replication stream applied (master_repl_offset, slave_repl_offset), and
    /// read (slave_read_repl_offset).
    pub offset: i64,
    pub read_offset: i64,
    /// What a reconnecting replica offers in PSYNC: the history and offset it has applied
    /// (Redis's cached master). None: `PSYNC ? -1`.
    pub cached: Option<(String, i64)>,
    /// The database the master's stream has selected, as of `offset`. A partial resync
    /// goes on without a SELECT (Redis's master keeps the replica's `slaveseldb`, and its
    /// cached master client keeps its db), so the new link's client starts in this one.
    pub master_db: usize,
    pub last_io: Option<Instant>,
    /// Unix seconds the link went down (0: never up since this role began).
    pub down_since: u64,
    pub transfer: Option<Transfer>,
}

pub struct Repl {
    /// A replica: READONLY and MASTERDOWN apply, keys expire only by the master's DELs.
    replica: AtomicBool,
    /// The link is up (Redis's REPL_STATE_CONNECTED).
    link_up: AtomicBool,
    state: Mutex<State>,
    /// Signalled when the role changes, for the link thread.
    changed: Condvar,
    /// The replication stream this server's replicas read (see `backlog`).
    pub backlog: std::sync::Arc<backlog::Backlog>,
    /// Held by a replica's applier over each batch of its master's stream it applies and
    /// passes on, and by a snapshot for a replica of its own up to the snapshot's instant.
    pub apply: Mutex<()>,
    /// min-replicas-to-write and min-replicas-max-lag, for the write gate (see
    /// `apply_config`): a write reads them without the config lock.
    min_replicas: std::sync::atomic::AtomicU64,
    min_replicas_lag: std::sync::atomic::AtomicU64,
    /// A FAILOVER under way (see `failover`).
    pub failover: failover::Failover,
    /// Keys a writable replica's own clients gave a deadline (Redis's slaveKeysWithExpire):
    /// the master sends no DEL for them, so the replica expires them itself (see
    /// `crate::expiry`).
    pub local_expires: Mutex<std::collections::HashSet<(usize, Vec<u8>)>>,
}

impl Default for Repl {
    fn default() -> Self {
        Repl {
            replica: AtomicBool::new(false),
            link_up: AtomicBool::new(false),
            state: Mutex::new(State {
                master: None,
                generation: 0,
                link: Link::Connect,
                replid: random_id(),
                replid2: "0".repeat(40),
                second_offset: -1,
                offset: 0,
                read_offset: 0,
                cached: None,
                master_db: 0,
                last_io: None,
                down_since: 0,
                transfer: None,
            }),
            changed: Condvar::new(),
            backlog: Default::default(),
            apply: Mutex::new(()),
            min_replicas: Default::default(),
            min_replicas_lag: std::sync::atomic::AtomicU64::new(10),
            failover: Default::default(),
            local_expires: Mutex::new(Default::default()),
        }
    }
}

/// What a write gets on a master short of good replicas (min-replicas-to-write).
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// What a client's write gets on a read-only replica (Redis's shared.roslaveerr).
pub const READONLY: &str = "READONLY You can't write against a read only replica.";

/// What a command gets on a replica whose link is down under `replica-serve-stale-data no`
/// (Redis's shared.masterdownerr).
pub const MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// The answer REPLICAOF gives.
#[derive(Debug, PartialEq, Eq)]
pub enum RoleChange {
    Changed,
    AlreadyThere,
}

impl Repl {
    #[inline]
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn link_up(&self) -> bool {
        self.link_up.load(Ordering::Relaxed)
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// REPLICAOF host port: follow that master from now on. As Redis's replicationSetMaster,
    /// a master turning replica offers its own history (its id and offset) in its first
    /// PSYNC, so that a master that was its replica can continue it partially.
    pub fn set_master(&self, host: &str, port: u16) -> RoleChange {
        let mut st = self.state.lock();
        if st
            .master
            .as_ref()
            .is_some_and(|(h, p)| h == host && *p == port)
        {
            return RoleChange::AlreadyThere;
        }
        if st.master.is_none() {
            st.offset = self.backlog.offset();
            st.cached = Some((st.replid.clone(), st.offset));
            // A promoted master's stream begins with a SELECT (Redis resets slaveseldb).
            st.master_db = 0;
        }
        st.master = Some((host.to_string(), port));
        st.generation += 1;
        st.link = Link::Connect;
        st.transfer = None;
        st.down_since = 0;
        self.link_up.store(false, Ordering::SeqCst);
        self.replica.store(true, Ordering::SeqCst);
        // Writes stop feeding the stream (the master's bytes will), and replicas of this
        // server reconnect: as Redis's disconnectSlaves, so they follow the new history.
        self.backlog.set_feeding(false);
        self.backlog.drop_replicas();
        self.changed.notify_all();
        RoleChange::Changed
    }

    /// REPLICAOF NO ONE: a master from now on, of a new history that continues this one
    /// (Redis's shiftReplicationId), so that replicas of the old master can follow it.
    pub fn unset_master(&self) {
        let mut st = self.state.lock();
        if st.master.is_none() {
            return;
        }
        st.master = None;
        st.generation += 1;
        st.link = Link::Connect;
        st.transfer = None;
        st.cached = None;
        st.replid2 = std::mem::replace(&mut st.replid, random_id());
        st.second_offset = st.offset + 1;
        {
            let mut g = self.backlog.lock();
            // The first write of the new history selects its database.
            g.forget_db();
            // repl-backlog-ttl counts from the promotion (Redis's repl_no_slaves_since).
            g.alone_since = crate::util::clock::now_ms();
            self.backlog.set_feeding(g.created);
        }
        self.backlog.drop_replicas();
        self.link_up.store(false, Ordering::SeqCst);
        self.replica.store(false, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Reads the settings the hot paths use from atomics.
    pub fn apply_config(&self, config: &crate::config::Config) {
        self.min_replicas
            .store(config.number("min-replicas-to-write", 0), Ordering::SeqCst);
        self.min_replicas_lag
            .store(config.number("min-replicas-max-lag", 10), Ordering::SeqCst);
        // At once, as Redis's resizeReplicationBacklog (the cron applies it too): what the
        // replicas hold beyond it is theirs for INFO and for eviction.
        self.backlog.lock().size = backlog_size(config);
    }

    /// True when a write must be refused for want of good replicas (min-replicas-to-write),
    /// as Redis's checkGoodReplicasStatus.
    #[inline]
    pub fn lacks_good_replicas(&self) -> bool {
        let want = self.min_replicas.load(Ordering::Relaxed);
        if want == 0 || self.is_replica() {
            return false;
        }
        let lag = self.min_replicas_lag.load(Ordering::Relaxed);
        lag > 0 && (self.backlog.good_replicas(lag) as u64) < want
    }

    /// Sets the link's state, and the fast flag the gates read.
    pub fn set_link(&self, st: &mut State, link: Link) {
        let was_up = st.link == Link::Connected;
        st.link = link;
        self.link_up
            .store(link == Link::Connected, Ordering::SeqCst);
        if was_up && link != Link::Connected {
            st.down_since = crate::util::clock::now_ms() / 1000;
        }
    }

    /// Waits up to `timeout` for a role change.
    pub fn wait_change(&self, st: &mut MutexGuard<'_, State>, timeout: std::time::Duration) {
        self.changed.wait_for(st, timeout);
    }
}

/// `repl-timeout`: how long either side of a link waits for the other.
pub fn timeout(config: &crate::config::Config) -> std::time::Duration {
    std::time::Duration::from_secs(config.number("repl-timeout", 60).max(1))
}

/// `slaveN`, for the first replicas without an allocation; beyond, a name made once and
/// kept (field names are static).
fn slave_field(i: usize) -> &'static str {
    const NAMES: [&str; 16] = [
        "slave0", "slave1", "slave2", "slave3", "slave4", "slave5", "slave6", "slave7", "slave8",
        "slave9", "slave10", "slave11", "slave12", "slave13", "slave14", "slave15",
    ];
    NAMES.get(i).copied().unwrap_or_else(|| {
        static MORE: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
        let mut more = MORE.lock();
        while more.len() <= i - NAMES.len() {
            let n = NAMES.len() + more.len();
            more.push(Box::leak(format!("slave{n}").into_boxed_str()));
        }
        more[i - NAMES.len()]
    })
}

/// 40 random hex digits, as Redis's replication ids.
pub fn random_id() -> String {
    let mut bytes = [0u8; 20];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        // No /dev/urandom: the hasher's random keys still differ per process.
        let s = ahash::RandomState::new();
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let h = s.hash_one((i, std::process::id(), Instant::now()));
            let n = chunk.len();
            chunk.copy_from_slice(&h.to_le_bytes()[..n]);
        }
    }
    let mut id = String::with_capacity(40);
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    id
}

impl Repl {
    /// INFO replication, every field Redis 7.0 prints for this role, in its order.
    /// `setting` reads a configuration value.
    pub fn info_fields(&self, setting: impl Fn(&str) -> String) -> Vec<(&'static str, String)> {
        let st = self.state.lock();
        let now = Instant::now();
        let secs = |t: Instant| now.saturating_duration_since(t).as_secs() as i64;
        let yes = |name: &str| i64::from(setting(name) == "yes");
        let mut f: Vec<(&'static str, String)> = Vec::new();
        match &st.master {
            None => f.push(("role", "master".into())),
            Some((host, port)) => {
                f.push(("role", "slave".into()));
                f.push(("master_host", host.clone()));
                f.push(("master_port", port.to_string()));
                let up = st.link == Link::Connected;
                f.push(("master_link_status", if up { "up" } else { "down" }.into()));
                let last_io = match st.last_io {
                    Some(t) if up => secs(t),
                    _ => -1,
                };
                f.push(("master_last_io_seconds_ago", last_io.to_string()));
                let transfer = st.link == Link::Transfer;
                f.push(("master_sync_in_progress", i64::from(transfer).to_string()));
                f.push(("slave_read_repl_offset", st.read_offset.max(1).to_string()));
                f.push(("slave_repl_offset", st.offset.max(1).to_string()));
                if let (true, Some(t)) = (transfer, st.transfer) {
                    let perc = if t.size > 0 {
                        t.read as f64 / t.size as f64 * 100.0
                    } else {
                        0.0
                    };
                    f.push(("master_sync_total_bytes", t.size.to_string()));
                    f.push(("master_sync_read_bytes", t.read.to_string()));
                    f.push((
                        "master_sync_left_bytes",
                        (t.size as i64 - t.read as i64).to_string(),
                    ));
                    f.push(("master_sync_perc", format!("{perc:.2}")));
                    f.push((
                        "master_sync_last_io_seconds_ago",
                        secs(t.last_io).to_string(),
                    ));
                }
                if !up {
                    let since = match st.down_since {
                        0 => -1,
                        t => (crate::util::clock::now_ms() / 1000).saturating_sub(t) as i64,
                    };
                    f.push(("master_link_down_since_seconds", since.to_string()));
                }
                f.push(("slave_priority", setting("replica-priority")));
                f.push(("slave_read_only", yes("replica-read-only").to_string()));
                f.push(("replica_announced", yes("replica-announced").to_string()));
            }
        }
        let g = self.backlog.lock();
        f.push(("connected_slaves", g.replicas.len().to_string()));
        let lag = self.min_replicas_lag.load(Ordering::Relaxed);
        if self.min_replicas.load(Ordering::Relaxed) > 0 && lag > 0 {
            f.push(("min_slaves_good_slaves", g.good_replicas(lag).to_string()));
        }
        for (i, r) in g.replicas.iter().enumerate() {
            f.push((
                slave_field(i),
                format!(
                    "ip={},port={},state={},offset={},lag={}",
                    r.ip,
                    r.port,
                    r.state().name(),
                    r.ack.load(Ordering::Relaxed),
                    r.lag_secs()
                ),
            ));
        }
        let offset = if st.master.is_some() {
            st.offset
        } else {
            g.offset
        };
        f.push(("master_failover_state", self.failover.phase().name().into()));
        f.push(("master_replid", st.replid.clone()));
        f.push(("master_replid2", st.replid2.clone()));
        f.push(("master_repl_offset", offset.to_string()));
        f.push(("second_repl_offset", st.second_offset.to_string()));
        f.push(("repl_backlog_active", i64::from(g.created).to_string()));
        f.push(("repl_backlog_size", setting("repl-backlog-size")));
        let (first, hist) = if g.created {
            (g.first, g.histlen())
        } else {
            (0, 0)
        };
        f.push(("repl_backlog_first_byte_offset", first.to_string()));
        f.push(("repl_backlog_histlen", hist.to_string()));
        f
    }
}

/// repl-backlog-size, at least Redis's CONFIG_REPL_BACKLOG_MIN_SIZE (16 KB).
pub fn backlog_size(config: &crate::config::Config) -> usize {
    config.number("repl-backlog-size", 1 << 20).max(16 * 1024) as usize
}
