//! The registry of connected clients, for CLIENT LIST / INFO / KILL and INFO's clients section.
//!
//! Each connection registers a [`ClientHandle`] when it starts and drops it when it ends. What
//! other connections may read (name, database, last command, idle time) sits behind a small
//! mutex the owning connection updates once per command; the kill flag is an atomic, and a
//! clone of the socket lets a killer shut the target's connection down while it is blocked in
//! `read`.

use std::collections::BTreeMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

/// What CLIENT LIST shows of a client that changes while it runs.
#[derive(Debug, Clone)]
pub struct ClientState {
    pub name: Vec<u8>,
    pub db: usize,
    /// The last command's full name (`client|list`), as CLIENT LIST's `cmd=`.
    pub last_cmd: &'static str,
    pub last_active: Instant,
    pub lib_name: Vec<u8>,
    pub lib_ver: Vec<u8>,
    /// Commands queued since MULTI; -1 outside a transaction (CLIENT LIST's `multi=`, and
    /// its `x` flag).
    pub multi: i64,
    /// The protocol the connection speaks (2 or 3, set by HELLO): CLIENT LIST's `resp=`.
    pub resp: u8,
}

pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    pub created: Instant,
    /// A clone of the connection's socket: shutting it down wakes the owner from `read`.
    stream: Option<TcpStream>,
    killed: AtomicBool,
    pub state: Mutex<ClientState>,
}

impl ClientHandle {
    pub fn new(id: u64, stream: Option<&TcpStream>) -> ClientHandle {
        let addr =
            |a: std::io::Result<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        let (peer, local, fd) = match stream {
            Some(s) => {
                use std::os::fd::AsRawFd;
                (
                    addr(s.peer_addr()),
                    addr(s.local_addr()),
                    s.as_raw_fd() as i64,
                )
            }
            None => (String::new(), String::new(), -1),
        };
        let now = Instant::now();
        ClientHandle {
            id,
            addr: peer,
            laddr: local,
            fd,
            created: now,
            stream: stream.and_then(|s| s.try_clone().ok()),
            killed: AtomicBool::new(false),
            state: Mutex::new(ClientState {
                name: Vec::new(),
                db: 0,
                last_cmd: "NULL",
                last_active: now,
                lib_name: Vec::new(),
                lib_ver: Vec::new(),
                multi: -1,
                resp: 2,
            }),
        }
    }

    /// Marks the client killed and wakes its connection, which then closes.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        if let Some(s) = &self.stream {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Records a command just run.
    pub fn touch(&self, db: usize, cmd: &'static str) {
        let mut st = self.state.lock();
        st.db = db;
        st.last_cmd = cmd;
        st.last_active = Instant::now();
    }

    /// One line of CLIENT LIST, in Redis's field order (without the trailing newline).
    pub fn info_line(&self) -> String {
        let st = self.state.lock().clone();
        let now = Instant::now();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 \
             ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 \
             omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} \
             lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            String::from_utf8_lossy(&st.name),
            now.duration_since(self.created).as_secs(),
            now.duration_since(st.last_active).as_secs(),
            if st.multi >= 0 { "x" } else { "N" },
            st.db,
            st.multi,
            st.last_cmd,
            st.resp,
            String::from_utf8_lossy(&st.lib_name),
            String::from_utf8_lossy(&st.lib_ver),
        )
    }
}

/// Every connected client, by id (which is also connection order).
#[derive(Default)]
pub struct Clients {
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
}

impl Clients {
    pub fn register(&self, h: Arc<ClientHandle>) {
        self.map.lock().insert(h.id, h);
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.lock().get(&id).cloned()
    }

    /// A snapshot, in id order.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map.lock().values().cloned().collect()
    }
}
