//! The listener and the bounded worker pool.
//!
//! Each worker serves one client at a time, so `--workers` is also the number of clients served
//! at once. A client that arrives when every worker is busy is told so, as Redis tells a client
//! beyond `maxclients`, and closed: it is never queued without an answer.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::TrySendError;

use crate::aof::{loader, Aof};
use crate::config::Config;
use crate::connection;
use crate::shared::Shared;

#[derive(Debug)]
pub enum ServerError {
    Bind(String, std::io::Error),
    Aof(String),
    Thread(std::io::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Bind(addr, e) => write!(f, "could not listen on {addr}: {e}"),
            ServerError::Aof(e) => f.write_str(e),
            ServerError::Thread(e) => write!(f, "could not start a thread: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

pub const MAX_CLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// Opens the AOF and replays it into a new store.
pub fn prepare(config: Config) -> Result<Arc<Shared>, ServerError> {
    let aof = if config.appendonly {
        let path = config.aof_path();
        let aof = Aof::start(path.clone(), config.appendfsync)
            .map_err(|e| ServerError::Aof(format!("cannot open {}: {e}", path.display())))?;
        Some(aof)
    } else {
        None
    };
    let path = config.aof_path();
    let appendonly = config.appendonly;
    let shared = Arc::new(Shared::new(config, aof));
    if appendonly {
        loader::load(&shared, &path).map_err(|e| ServerError::Aof(e.to_string()))?;
    }
    Ok(shared)
}

/// Binds, loads, and serves until the process is stopped.
pub fn run(config: Config) -> Result<(), ServerError> {
    let addr = format!("{}:{}", config.bind, config.port);
    let listener = TcpListener::bind(&addr).map_err(|e| ServerError::Bind(addr.clone(), e))?;
    let workers = config.workers;
    let shared = prepare(config)?;
    spawn_signal_handler(&shared)?;
    log::info!(
        "rudis {} ready to accept connections on {addr}, {workers} workers, pid {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    serve(&shared, listener, workers)
}

fn spawn_signal_handler(shared: &Arc<Shared>) -> Result<(), ServerError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(ServerError::Thread)?;
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                log::warn!("received signal {sig}, shutting down");
                shared.shutdown();
            }
        })
        .map_err(ServerError::Thread)?;
    Ok(())
}

/// The accept loop.
pub fn serve(
    shared: &Arc<Shared>,
    listener: TcpListener,
    workers: usize,
) -> Result<(), ServerError> {
    // A rendezvous channel: a hand-off succeeds only when a worker is idle and waiting.
    let (tx, rx) = crossbeam_channel::bounded::<TcpStream>(0);
    for i in 0..workers {
        let rx = rx.clone();
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                for stream in rx {
                    connection::serve(&shared, stream);
                }
            })
            .map_err(ServerError::Thread)?;
    }
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => match tx.try_send(stream) {
                Ok(()) => {}
                Err(TrySendError::Full(stream)) => reject(shared, stream),
                Err(TrySendError::Disconnected(_)) => break,
            },
            Err(e) => {
                // Typically out of file descriptors: wait rather than spin.
                log::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(())
}

fn reject(shared: &Shared, mut stream: TcpStream) {
    shared.stats.rejected_connections.fetch_add(1, Relaxed);
    log::warn!(
        "refused client {:?}: max number of clients reached (every one of the workers is busy)",
        stream.peer_addr().ok()
    );
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(MAX_CLIENTS_ERROR);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
