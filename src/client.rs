//! Per-connection state.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::Receiver;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct Client {
    pub id: u64,
    pub addr: Option<SocketAddr>,
    pub db: usize,
    pub name: Option<Vec<u8>>,
    pub created: Instant,
    /// Set by QUIT and protocol errors: close once the pending replies are written.
    pub close_after_reply: bool,
    /// Under `appendfsync always`: fsync acknowledgement of the last write; replies are held
    /// until it arrives.
    pub pending_ack: Option<Receiver<()>>,
}

impl Client {
    pub fn new(addr: Option<SocketAddr>) -> Self {
        Client {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            addr,
            db: 0,
            name: None,
            created: Instant::now(),
            close_after_reply: false,
            pending_ack: None,
        }
    }
}
