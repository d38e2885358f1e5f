//! The listener and the worker pool.
//!
//! The pool (see `pool`) holds up to `maxclients` clients over `--workers` threads. A client
//! that arrives when `maxclients` are connected is told so, as Redis tells it, and closed: it
//! is never queued without an answer. At start the open files limit is raised for maxclients,
//! or maxclients lowered to what it allows (see `fdlimit`).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aof::Aof;
use crate::config::Config;
use crate::loading;
use crate::pool::Pool;
use crate::shared::Shared;

#[derive(Debug)]
pub enum ServerError {
    Bind(String, std::io::Error),
    Aof(String),
    Thread(std::io::Error),
    /// The open files limit leaves no room for a client (logged in Redis's words already).
    OpenFiles,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Bind(addr, e) => write!(f, "could not listen on {addr}: {e}"),
            ServerError::Aof(e) => f.write_str(e),
            ServerError::Thread(e) => write!(f, "could not start a thread: {e}"),
            ServerError::OpenFiles => f.write_str("the open files limit is too low to start"),
        }
    }
}

impl std::error::Error for ServerError {}

pub const MAX_CLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// How long a new client may wait, when maxclients are connected but a client in it has hung up, for
/// that client to be let go. On a loaded machine a woken thread can wait 100 ms and more for a
/// CPU, and redis-benchmark reconnects all its clients between tests. (25 ms was measured too
/// short at a load average of 20.)
const HANDOFF_GRACE: Duration = Duration::from_millis(200);

/// Replays the AOF into a new store, then starts its writer and rewrite threads.
pub fn prepare(config: Config) -> Result<Arc<Shared>, ServerError> {
    let aof = config
        .appendonly
        .then(|| Aof::new(config.aof_path(), config.appendfsync));
    let shared = Arc::new(Shared::new(config, aof));
    // With the AOF off, or no AOF file yet, the data is in dump.rdb (as Redis loads it).
    let aof_file = shared.aof.as_ref().is_some_and(|a| a.path().exists());
    if !aof_file {
        let path = crate::persist::rdb_path(&shared);
        crate::persist::load_at_start(&shared, &path)
            .map_err(|e| ServerError::Aof(format!("{}: {e}", path.display())))?;
    }
    {
        let s = shared.clone();
        std::thread::Builder::new()
            .name("rdb-saver".into())
            .spawn(move || crate::persist::saver_loop(s))
            .map_err(ServerError::Thread)?;
    }
    if let Some(aof) = &shared.aof {
        remove_stale_rewrites(aof.path());
        loading::load(&shared, aof.path()).map_err(|e| ServerError::Aof(e.to_string()))?;
        aof.start_writer()
            .map_err(|e| ServerError::Aof(format!("cannot open {}: {e}", aof.path().display())))?;
        let s = shared.clone();
        std::thread::Builder::new()
            .name("aof-rewrite".into())
            .spawn(move || {
                if let Some(aof) = &s.aof {
                    aof.rewrite_loop(
                        &s.store,
                        || {
                            let c = s.config.read();
                            (c.auto_aof_rewrite_percentage, c.auto_aof_rewrite_min_size)
                        },
                        || crate::commands::script::function::aof_records(&s),
                    );
                }
            })
            .map_err(ServerError::Thread)?;
    }
    // Once the local data is loaded: `replicaof` in the file or flags follows that master
    // from the start.
    let replicaof = shared.config.read().get("replicaof").unwrap_or_default();
    if let Some((host, port)) = replicaof.split_once(' ') {
        if let Ok(port) = port.parse() {
            shared.repl.set_master(host, port);
        }
    }
    crate::repl::replica::spawn(shared.clone()).map_err(ServerError::Thread)?;
    Ok(shared)
}

/// Temp files of rewrites a crash interrupted: never part of the data, so they go.
fn remove_stale_rewrites(aof: &std::path::Path) {
    let dir = match aof.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("temp-rewriteaof-bg-") && name.ends_with(".aof") {
            log::info!("removing {name}, left by an interrupted AOF rewrite");
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Binds, loads, and serves until the process is stopped.
pub fn run(mut config: Config) -> Result<(), ServerError> {
    config.maxclients = crate::fdlimit::adjust(config.maxclients).ok_or(ServerError::OpenFiles)?;
    crate::fdlimit::grow_table(config.maxclients);
    let listeners = crate::listen::bind_all(&config.bind, config.port, config.tcp_backlog)
        .map_err(|e| ServerError::Bind(e.addr, e.error))?;
    let addr = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let workers = config.workers;
    // A file-size limit (ulimit -f) must make AOF writes fail with EFBIG, which the writer
    // reports and retries, rather than kill the process.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    install_panic_hook();
    let shared = prepare(config)?;
    spawn_signal_handler(&shared)?;
    crate::store::evict::tick(crate::util::clock::now_ms());
    crate::util::alloc::configure();
    crate::util::alloc::mark_startup();
    crate::expiry::spawn(shared.clone()).map_err(ServerError::Thread)?;
    log::info!(
        "rudis {} ready to accept connections on {addr}, {workers} workers, pid {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    crate::listen::notify_ready(shared.config.read().supervised);
    serve_all(&shared, listeners, workers)
}

/// Panics go to the log (with a backtrace if RUST_BACKTRACE asks for one); the dispatcher
/// contains a panicking command to its own client.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let backtrace = std::backtrace::Backtrace::capture();
        log::error!(
            "thread '{}' panicked: {info}\n{backtrace}",
            thread.name().unwrap_or("?")
        );
    }));
}

fn spawn_signal_handler(shared: &Arc<Shared>) -> Result<(), ServerError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(ServerError::Thread)?;
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                log::warn!("Received {name} scheduling shutdown...");
                shared.shutdown(false);
                log::warn!(
                    "{name} received but errors trying to shut down the server, check the \
                     logs for more information"
                );
            }
        })
        .map_err(ServerError::Thread)?;
    Ok(())
}

/// [`serve_all`] on one listener.
pub fn serve(
    shared: &Arc<Shared>,
    listener: TcpListener,
    workers: usize,
) -> Result<(), ServerError> {
    serve_all(shared, vec![listener], workers)
}

/// One accept loop per listener (`bind` may name several addresses), all feeding one pool.
pub fn serve_all(
    shared: &Arc<Shared>,
    listeners: Vec<TcpListener>,
    workers: usize,
) -> Result<(), ServerError> {
    crate::util::clock::calibrate();
    let busy_poll = Duration::from_micros(shared.config.read().busy_poll_us);
    let pool = Pool::new(shared.clone(), busy_poll).map_err(ServerError::Thread)?;
    pool.start(workers).map_err(ServerError::Thread)?;
    std::thread::scope(|scope| {
        for listener in listeners {
            let pool = &pool;
            std::thread::Builder::new()
                .name("accept".into())
                .spawn_scoped(scope, move || accept_loop(shared, pool, listener))
                .map_err(ServerError::Thread)?;
        }
        Ok(())
    })
}

/// A warning logged at most once a second; the ones held back are counted in the next.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttled {
    fn warn(&mut self, message: impl FnOnce() -> String) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            self.held_back += 1;
            return;
        }
        match std::mem::take(&mut self.held_back) {
            0 => log::warn!("{}", message()),
            n => log::warn!("{} ({n} more like it in the last second)", message()),
        }
        self.last = Some(Instant::now());
    }
}

/// Hands each client to the pool, or refuses it when maxclients are connected.
fn accept_loop(shared: &Arc<Shared>, pool: &Arc<Pool>, listener: TcpListener) {
    // A flood of refusals or a run out of descriptors would otherwise write a log line per
    // attempt (hundreds a second); one a second, with a count, says the same.
    let mut refusals = Throttled::default();
    let mut failures = Throttled::default();
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let keepalive = shared.config.read().tcp_keepalive;
                if keepalive > 0 {
                    if let Err(e) = crate::listen::keepalive(&stream, keepalive) {
                        log::warn!("cannot set TCP keepalive on a client: {e}");
                    }
                }
                if let Err(stream) = pool.admit(stream, HANDOFF_GRACE) {
                    reject(shared, stream, &mut refusals);
                }
            }
            Err(e) => {
                // Typically out of file descriptors: wait rather than spin.
                failures.warn(|| format!("accept failed: {e}"));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn reject(shared: &Shared, mut stream: TcpStream, log: &mut Throttled) {
    shared.stats.rejected_connections.fetch_add(1, Relaxed);
    log.warn(|| {
        format!(
            "refused client {:?}: max number of clients reached (maxclients {})",
            stream.peer_addr().ok(),
            shared.config.read().maxclients
        )
    });
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(MAX_CLIENTS_ERROR);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
