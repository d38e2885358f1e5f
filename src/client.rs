//! The state a command runs against, owned by the client's connection (see `connection`) and
//! reached by no other thread: the selected database, authentication, the open transaction,
//! the watched keys, the AOF write its reply waits for. What others may see or do is in its
//! handle (see `clients`).
//!
//! Layering: this sits at the bottom of the commands layer, beside the command spec, below the
//! handlers and the dispatcher that use it. So it imports only downwards: the spec (data about
//! commands, which a queued MULTI command refers to), the AOF's wait ticket (persistence), the
//! handle. The transaction's types live here, as client state, rather than in the handlers'
//! module (`commands::transaction`, which re-exports them), so that the handlers look down on
//! the client and not the other way round.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::util::net::Socket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::aof::AofWait;
use crate::clients::ClientHandle;
use crate::commands::CommandSpec;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A client's open transaction.
#[derive(Default)]
pub struct Multi {
    pub queue: Vec<Queued>,
    /// A command was refused while queueing: EXEC will answer EXECABORT.
    pub failed: bool,
}

pub struct Queued {
    pub spec: &'static CommandSpec,
    pub argv: Vec<Vec<u8>>,
    /// The flags EXEC's gates judge it by, taken when it was queued (as Redis accumulates
    /// getCommandFlags into mstate.cmd_flags): its subcommand's, or a script's declared ones.
    pub flags: u32,
}

impl Queued {
    pub fn args(&self) -> SmallVec<[&[u8]; 8]> {
        self.argv.iter().map(|a| a.as_slice()).collect()
    }

    /// The command EXEC's gates judge: a container's subcommand (FUNCTION LOAD is a write),
    /// as Redis accumulates the flags of what its lookupCommand returned.
    pub fn effective(&self) -> &'static CommandSpec {
        // The name and the subcommand are all `resolve` reads: no slice of every argument.
        let head: SmallVec<[&[u8]; 2]> = self.argv.iter().take(2).map(Vec::as_slice).collect();
        self.spec.resolve(&head)
    }
}

/// The keys a client WATCHes, as (db, key), each with what it was when it was watched.
pub type Watched = HashMap<(usize, Vec<u8>), WatchedAs>;

/// A watched key's state at WATCH. Expiry itself flags no watcher: EXEC compares what the key
/// was then with what it is now (as Redis 7's `wk->expired`), so a key that expires after WATCH
/// fails the EXEC, and one already expired at WATCH that expiry then removes does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchedAs {
    Absent,
    Live,
    Expired,
}

/// SCRIPT DEBUG's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debugging {
    Off,
    /// SYNC: the session runs in the server, its changes kept.
    Sync,
    /// YES: a forked copy of the server runs the session, its changes gone with it.
    Forked,
}

pub struct Client {
    /// The handle's id, copied for the commands that log or compare it.
    pub id: u64,
    /// The TCP peer (none for a Unix socket's client).
    pub addr: Option<SocketAddr>,
    /// Connected from this machine as Redis's islocalClient judges it (loopback, or the Unix
    /// socket): what `enable-*-command local` asks.
    pub local: bool,
    /// The selected database. The handle shows a copy to CLIENT LIST, updated when it changes.
    pub db: usize,
    /// Set by QUIT and protocol errors: close once the pending replies are written.
    pub close_after_reply: bool,
    /// Set when a command of this client was logged to the AOF: replies are held until the
    /// record is written (and under `always` fsynced).
    pub pending_ack: Option<AofWait>,
    /// What other connections see of this one and may do to it (CLIENT LIST, CLIENT KILL,
    /// WATCH's flag, deliveries).
    pub handle: Arc<ClientHandle>,
    /// Passed AUTH, or connected while no password was required (as Redis, a password set
    /// later does not lock out clients already connected). True for clients without a
    /// connection (the AOF loader's); the connection code decides for network clients.
    pub authenticated: bool,
    /// Between MULTI and EXEC/DISCARD: the queued commands.
    pub multi: Option<Multi>,
    pub watched: Watched,
    /// The last command blocked the client (see `blocking`): its session runs nothing more
    /// until the handle says it is unblocked. Owner-side, beside the handle's flag.
    pub blocked: bool,
    /// Blocking commands act as their non-blocking forms (inside EXEC, and scripts later):
    /// Redis's CLIENT_DENY_BLOCKING.
    pub deny_blocking: bool,
    /// Channels and patterns subscribed to (the registry, `notify::pubsub`, has the other
    /// side).
    pub subs: crate::notify::pubsub::Subscriptions,
    /// CLIENT TRACKING's mode (the handle's state shows what others need of it).
    pub tracking: crate::notify::tracking::ClientTracking,
    /// Commands run from a script's redis.call (Redis's CLIENT_SCRIPT): SORT orders a set's
    /// elements then, for the script to see the same everywhere.
    pub in_script: bool,
    /// SCRIPT DEBUG: how the next EVAL runs under the debugger (see `script::ldb`).
    pub ldb: Debugging,
    /// The ACL user (None: the AOF loader's and other internal clients, which may do
    /// everything), and the registry's generation it was read at.
    pub user: Option<Arc<crate::acl::User>>,
    pub acl_gen: u64,
    /// CLIENT REPLY: what becomes of the replies (see `Reply`).
    pub reply: Reply,
    /// The last request was held by CLIENT PAUSE (the dispatcher ran nothing): the session
    /// keeps it and parks the client until the pause ends. Only clients with a connection
    /// (`pausable`) are held: the AOF loader's and those acting for blocked clients never are.
    pub postponed: bool,
    pub pausable: bool,
    /// The replication link's client (Redis's CLIENT_MASTER): its commands are obeyed on a
    /// read-only replica, and keys do not expire under them (the master sends the DELs).
    pub master: bool,
    /// Runs a blocked client's command for it (`acting_for`): what it runs is that command
    /// served, not calls of its own, so command statistics, MONITOR and the slow log see
    /// none of it (as in Redis, where serving a blocked client calls no command).
    pub serves_waiter: bool,
    /// What a replica told this master of itself (REPLCONF), for when it asks to sync.
    pub replconf: Option<Box<crate::repl::master::ReplConf>>,
    /// SYNC or PSYNC ran: the session hands its connection to a replica link (see
    /// `repl::master`) once its replies so far are out.
    pub handoff: Option<crate::repl::master::SyncRequest>,
    /// The replication offset after this client's last write (Redis's woff): what WAIT
    /// waits for.
    pub woff: i64,
}

/// CLIENT REPLY's modes, as Redis's CLIENT_REPLY_OFF / _SKIP / _SKIP_NEXT flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reply {
    #[default]
    On,
    Off,
    /// Set by CLIENT REPLY SKIP: the command after this one is silenced.
    SkipNext,
    /// This command's reply is dropped.
    Skip,
}

impl Reply {
    /// Replies of the command now running are dropped (pushes still go out).
    pub fn silenced(self) -> bool {
        matches!(self, Reply::Off | Reply::Skip)
    }
}

impl Client {
    /// A client; `stream` is its connection (none for the AOF loader's client).
    pub fn new(stream: Option<&Socket>) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::new(ClientHandle::new(id, stream));
        let pausable = stream.is_some();
        // Without a connection (the AOF loader's client) nothing could deliver the reply of a
        // wait: a blocking command acts as its non-blocking form.
        let mut c = Client::with_handle(
            handle,
            stream.and_then(Socket::peer_addr),
            0,
            stream.is_none(),
        );
        c.local = stream.is_some_and(Socket::is_local);
        c.pausable = pausable;
        c
    }

    /// A client that runs a command on behalf of a blocked one being served (see
    /// `blocking`): its handle and database, no connection, never blocking.
    pub fn acting_for(handle: Arc<ClientHandle>, db: usize) -> Self {
        let mut c = Client::with_handle(handle, None, db, true);
        c.serves_waiter = true;
        c
    }

    fn with_handle(
        handle: Arc<ClientHandle>,
        addr: Option<SocketAddr>,
        db: usize,
        deny_blocking: bool,
    ) -> Self {
        Client {
            id: handle.id,
            addr,
            local: false,
            db,
            handle,
            close_after_reply: false,
            pending_ack: None,
            authenticated: true,
            multi: None,
            watched: Watched::default(),
            blocked: false,
            deny_blocking,
            subs: Default::default(),
            tracking: Default::default(),
            in_script: false,
            ldb: Debugging::Off,
            user: None,
            acl_gen: 0,
            reply: Reply::On,
            postponed: false,
            pausable: false,
            master: false,
            serves_waiter: false,
            replconf: None,
            handoff: None,
            woff: 0,
        }
    }
}
