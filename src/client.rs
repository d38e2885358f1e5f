//! Per-connection state.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::aof::AofWait;

use crate::clients::ClientHandle;
use crate::commands::transaction::{Multi, Watched};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct Client {
    pub id: u64,
    pub addr: Option<SocketAddr>,
    pub db: usize,
    pub created: Instant,
    /// Set by QUIT and protocol errors: close once the pending replies are written.
    pub close_after_reply: bool,
    /// Set when a command of this client was logged to the AOF: replies are held until the
    /// record is written (and under `always` fsynced).
    pub pending_ack: Option<AofWait>,
    /// What other connections see of this one (CLIENT LIST, CLIENT KILL).
    pub handle: Arc<ClientHandle>,
    /// Passed AUTH, or connected while no password was required (as Redis, a password set
    /// later does not lock out clients already connected). True for clients without a
    /// connection (the AOF loader's); the connection code decides for network clients.
    pub authenticated: bool,
    /// Between MULTI and EXEC/DISCARD: the queued commands.
    pub multi: Option<Multi>,
    /// Set by any change to a key this client WATCHes; created by its first WATCH.
    pub watch_flag: Option<Arc<AtomicBool>>,
    pub watched: Watched,
}

impl Client {
    /// A client; `stream` is its connection (none for the AOF loader's client).
    pub fn new(stream: Option<&TcpStream>) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Client {
            id,
            addr: stream.and_then(|s| s.peer_addr().ok()),
            db: 0,
            handle: Arc::new(ClientHandle::new(id, stream)),
            created: Instant::now(),
            close_after_reply: false,
            pending_ack: None,
            authenticated: true,
            multi: None,
            watch_flag: None,
            watched: Watched::default(),
        }
    }
}
