//! The listener and the worker pool.
//!
//! The pool (see `pool`) holds up to `maxclients` clients over `--workers` threads. A client
//! that arrives when `maxclients` are connected is told so, as Redis tells it, and closed: it
//! is never queued without an answer. At start the open files limit is raised for maxclients,
//! or maxclients lowered to what it allows (see `fdlimit`).

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aof::Aof;
use crate::config::Config;
use crate::listen::Listening;
use crate::loading;
use crate::pool::Pool;
use crate::shared::Shared;
use crate::util::net::Socket;

#[derive(Debug)]
pub enum ServerError {
    Bind(String, std::io::Error),
    Aof(String),
    Thread(std::io::Error),
    /// The open files limit leaves no room for a client (logged in Redis's words already).
    OpenFiles,
    /// Start-up cannot go on, in Redis's words: the users of redis.conf or the ACL file
    /// cannot be made, or nothing is to be listened on.
    Startup(String),
    /// The TLS settings do not hold (certificates, keys, protocols).
    Tls(String),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Bind(addr, e) => write!(f, "could not listen on {addr}: {e}"),
            ServerError::Aof(e) => f.write_str(e),
            ServerError::Thread(e) => write!(f, "could not start a thread: {e}"),
            ServerError::OpenFiles => f.write_str("the open files limit is too low to start"),
            ServerError::Startup(e) | ServerError::Tls(e) => f.write_str(e),
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
    let shared = new_shared(config)?;
    let first = data_file(&shared);
    load_and_start(&shared, first)?;
    Ok(shared)
}

/// The server's state with its users, before any data is loaded.
fn new_shared(config: Config) -> Result<Arc<Shared>, ServerError> {
    // Before anything is timed or stamped: the loaders, the replica link and every client
    // handle read `ticks`, whose unit changes when calibration switches to the TSC.
    crate::util::clock::calibrate();
    let layout = crate::aof::Layout::of(&config);
    if let (crate::aof::Layout::MultiPart(dir), true) = (&layout, config.appendonly) {
        // As Redis 7 with a pre-7 AOF in its dir: it becomes the directory's base.
        dir.upgrade_from(&config.aof_path()).map_err(|e| {
            ServerError::Aof(format!(
                "cannot move {} into {}: {e}",
                config.aof_path().display(),
                dir.path.display()
            ))
        })?;
    }
    let aof = Aof::new(layout, config.appendfsync, config.appendonly);
    aof.apply_config(&config);
    let shared = Arc::new(Shared::with_aof(config, aof));
    {
        let c = shared.config.read();
        let aclfile = c.get("aclfile").unwrap_or_default();
        shared
            .acl
            .load_at_start(&c.acl_users, &aclfile)
            .map_err(ServerError::Startup)?;
    }
    Ok(shared)
}

/// What start-up loads first.
enum DataFile {
    /// rudis's own AOF, which is on and exists.
    Aof(std::path::PathBuf),
    /// With the AOF on, a multi-part AOF's manifest (Redis 7's layout), which names them.
    Manifest,
    /// With the AOF off, or no AOF yet, dump.rdb (as Redis loads it); it may not exist.
    Rdb(std::path::PathBuf),
}

fn data_file(shared: &Shared) -> DataFile {
    let rdb = || DataFile::Rdb(crate::persist::rdb_path(shared));
    let Some(aof) = shared.aof() else {
        return rdb();
    };
    match aof.layout() {
        crate::aof::Layout::Single(p) if p.exists() => DataFile::Aof(p.clone()),
        crate::aof::Layout::MultiPart(d) if d.manifest_path().is_file() => DataFile::Manifest,
        _ => rdb(),
    }
}

/// Loads the RDB or the AOF (`first`, from `data_file`), then starts what writes them and
/// the link to a master.
fn load_and_start(shared: &Arc<Shared>, first: DataFile) -> Result<(), ServerError> {
    let shared = shared.clone();
    if let DataFile::Rdb(path) = &first {
        crate::persist::load_at_start(&shared, path).map_err(|e| {
            ServerError::Aof(format!(
                "{}: {e}. Terminating server after rdb file reading failure.",
                path.display()
            ))
        })?;
    }
    {
        let s = shared.clone();
        std::thread::Builder::new()
            .name("rdb-saver".into())
            .spawn(move || crate::persist::saver_loop(s))
            .map_err(ServerError::Thread)?;
    }
    let aof = shared.aof_handle();
    remove_stale_rewrites(&aof.layout().dir());
    if aof.enabled() {
        if let DataFile::Aof(_) | DataFile::Manifest = &first {
            loading::load_aof(&shared, aof.layout())
                .map_err(|e| ServerError::Aof(e.to_string()))?;
        }
        if let crate::aof::Layout::MultiPart(dir) = aof.layout() {
            create_base_if_none(&shared, aof, dir)?;
        }
    }
    // Both threads run with the AOF off too: CONFIG SET appendonly may turn it on.
    aof.start_writer()
        .map_err(|e| ServerError::Aof(format!("cannot open {}: {e}", aof.path().display())))?;
    let s = shared.clone();
    std::thread::Builder::new()
        .name("aof-rewrite".into())
        .spawn(move || {
            s.aof_handle().rewrite_loop(
                &s.store,
                || {
                    let c = s.config.read();
                    (c.auto_aof_rewrite_percentage, c.auto_aof_rewrite_min_size)
                },
                || crate::persist::aof_base(&s),
            );
        })
        .map_err(ServerError::Thread)?;
    // Once the local data is loaded: `replicaof` in the file or flags follows that master
    // from the start.
    let replicaof = shared.config.read().get("replicaof").unwrap_or_default();
    if let Some((host, port)) = replicaof.split_once(' ') {
        if let Ok(port) = port.parse() {
            shared.become_replica(host, port);
        }
    }
    // The role is known: the process's oom score follows it.
    let _ = shared.apply_oom_score(&shared.config.read());
    crate::repl::replica::spawn(shared.clone()).map_err(ServerError::Thread)?;
    shared.repl.apply_config(&shared.config.read());
    crate::repl::master::spawn_cron(shared.clone()).map_err(ServerError::Thread)?;
    Ok(())
}

/// A multi-part AOF that names no file yet gets a base of the data set at start (empty, or
/// what dump.rdb held), as Redis's `aofOpenIfNeededOnServerStart` makes one: the incr file
/// the writer opens next then follows a base, and a restart finds the data.
fn create_base_if_none(
    shared: &Shared,
    aof: &Aof,
    dir: &crate::aof::manifest::Dir,
) -> Result<(), ServerError> {
    let fail = |e: std::io::Error| ServerError::Aof(format!("{}: {e}", dir.path.display()));
    let mut m = match dir.read().map_err(fail)? {
        Some(Ok(m)) if !m.is_empty() => return Ok(()),
        Some(Ok(m)) => m,
        // The load stopped at a bad manifest already.
        Some(Err(_)) => return Ok(()),
        None => crate::aof::manifest::Manifest::default(),
    };
    dir.create().map_err(fail)?;
    let base = crate::persist::aof_base(shared);
    let name = m.new_base(&dir.name, base.rdb.is_some());
    aof.rewrite
        .write_whole(&shared.store, &dir.file(&name), &base)
        .map_err(fail)?;
    dir.persist(&m).map_err(fail)?;
    log::info!("Creating AOF base file {name} on server start");
    Ok(())
}

/// Temp files of rewrites a crash interrupted: never part of the data, so they go.
fn remove_stale_rewrites(dir: &std::path::Path) {
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
    // As Redis: `port 0` listens for plain TCP nowhere (a TLS-only server with a tls-port).
    let bind = |port: u16| {
        if port == 0 {
            return Ok(Vec::new());
        }
        crate::listen::bind_all(&config.bind, port, config.tcp_backlog)
            .map_err(|e| ServerError::Bind(e.addr, e.error))
    };
    let tls_port = crate::tls::tls_port(&config);
    let plain = bind(config.port)?;
    let tls = bind(tls_port)?;
    let unix_path = config.get("unixsocket").filter(|p| !p.is_empty());
    let unix = unix_path
        .as_deref()
        .map(|path| {
            let perm = config
                .get("unixsocketperm")
                .and_then(|p| u32::from_str_radix(&p, 8).ok())
                .unwrap_or(0);
            crate::listen::bind_unix(path, perm, config.tcp_backlog)
                .map_err(|e| ServerError::Startup(format!("Failed opening Unix socket: {e}")))
        })
        .transpose()?;
    let addr = plain
        .iter()
        .chain(&tls)
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .chain(unix_path)
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
    let nowhere = plain.is_empty() && tls.is_empty() && unix.is_none();
    config.apply_proc_title();
    let shared = new_shared(config)?;
    shared
        .tls
        .configure(&shared.config.read())
        .map_err(ServerError::Tls)?;
    spawn_signal_handler(&shared)?;
    crate::store::evict::tick(crate::util::clock::now_ms());
    crate::util::alloc::configure();
    crate::util::alloc::mark_startup();
    // As Redis: clients are served while the data loads, and answered -LOADING by every
    // command not flagged `loading` (the dispatcher's gate) until it is in.
    shared.set_loading(true);
    // INFO's loading_total_bytes is the file's size from the first moment a client can ask
    // (Redis starts serving only once it has opened the file). A manifest's loader gives
    // each of its files' sizes itself.
    let first = data_file(&shared);
    if let DataFile::Aof(p) | DataFile::Rdb(p) = &first {
        if let Ok(m) = std::fs::metadata(p) {
            shared.load_progress(m.len(), 0);
        }
    }
    let listeners = plain
        .into_iter()
        .map(|l| Listening::new(l, false))
        .chain(tls.into_iter().map(|l| Listening::new(l, true)))
        .chain(unix.map(|l| Listening::of(l, false)))
        .collect();
    start_serving(&shared, listeners, workers)?;
    // A failed load ends the process still loading: no client is served the half-loaded
    // data, nor told that loading ended.
    load_and_start(&shared, first)?;
    shared.set_loading(false);
    // After the load (unlike Redis), so that `--port 0` checks a data file's errors.
    if nowhere {
        return Err(ServerError::Startup(
            "Configured to not listen anywhere, exiting.".into(),
        ));
    }
    crate::expiry::spawn(shared.clone()).map_err(ServerError::Thread)?;
    // What only start-up read (the command table's specs, the config parser, the loader,
    // the dynamic linker's relocations) need not stay resident: about half of the binary's
    // pages, a twentieth of a 100 MB cache's resident set.
    let dropped = crate::util::resident::drop_clean_file_pages();
    log::debug!("Unmapped {} kB of start-up's file pages", dropped / 1024);
    log::info!(
        "rudis {} ready to accept connections on {addr}, {workers} workers, pid {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    crate::listen::notify_ready(shared.config.read().supervised);
    serve_forever()
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

/// [`serve_listeners`] on plain TCP listeners.
pub fn serve_all(
    shared: &Arc<Shared>,
    listeners: Vec<TcpListener>,
    workers: usize,
) -> Result<(), ServerError> {
    serve_listeners(
        shared,
        listeners.into_iter().map(|l| (l, false)).collect(),
        workers,
    )
}

/// One accept loop per listener (`bind` may name several addresses; `true`: the TLS port),
/// all feeding one pool.
pub fn serve_listeners(
    shared: &Arc<Shared>,
    listeners: Vec<(TcpListener, bool)>,
    workers: usize,
) -> Result<(), ServerError> {
    let listeners = listeners
        .into_iter()
        .map(|(l, tls)| Listening::new(l, tls))
        .collect();
    start_serving(shared, listeners, workers)?;
    serve_forever()
}

/// Serves for as long as the process lives; the accept loops come and go with the ports.
fn serve_forever() -> Result<(), ServerError> {
    loop {
        std::thread::park();
    }
}

/// Starts the pool and the accept loops, and returns.
fn start_serving(
    shared: &Arc<Shared>,
    listeners: Vec<Arc<Listening>>,
    workers: usize,
) -> Result<(), ServerError> {
    // Idempotent; here for servers built without `prepare` (tests embedding one).
    crate::util::clock::calibrate();
    let busy_poll = Duration::from_micros(shared.config.read().busy_poll_us);
    let pool = Pool::new(shared.clone(), busy_poll).map_err(ServerError::Thread)?;
    pool.start(workers).map_err(ServerError::Thread)?;
    let server = shared.clone();
    let spawn: crate::listen::Spawner = Box::new(move |l: Arc<Listening>| {
        let (shared, pool) = (server.clone(), pool.clone());
        std::thread::Builder::new()
            .name(if l.tls { "accept-tls" } else { "accept" }.into())
            .spawn(move || accept_loop(&shared, &pool, &l))
            .map(|_| ())
    });
    shared
        .ports
        .serve(spawn, listeners)
        .map_err(ServerError::Thread)?;
    Ok(())
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

/// Hands each client to the pool, or refuses it when maxclients are connected, until the
/// port moves.
fn accept_loop(shared: &Arc<Shared>, pool: &Arc<Pool>, listening: &Listening) {
    let (listener, tls) = (&listening.listener, listening.tls);
    // A flood of refusals or a run out of descriptors would otherwise write a log line per
    // attempt (hundreds a second); one a second, with a count, says the same.
    let mut refusals = Throttled::default();
    let mut failures = Throttled::default();
    loop {
        let stream = listener.accept();
        if listening.is_closed() {
            return;
        }
        match stream {
            Ok(stream) => {
                let keepalive = shared.config.read().tcp_keepalive;
                if let (Socket::Tcp(tcp), true) = (&stream, keepalive > 0) {
                    if let Err(e) = crate::listen::keepalive(tcp, keepalive) {
                        log::warn!("cannot set TCP keepalive on a client: {e}");
                    }
                }
                let config = if tls {
                    match shared.tls.get() {
                        Some(c) => Some(c),
                        None => continue,
                    }
                } else {
                    None
                };
                if let Err(stream) = pool.admit(stream, config, HANDOFF_GRACE) {
                    if tls {
                        // Refused before its handshake: nothing can be said to it in clear.
                        shared.stats.rejected_connections.fetch_add(1, Relaxed);
                    } else {
                        reject(shared, stream, &mut refusals);
                    }
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

fn reject(shared: &Shared, mut stream: Socket, log: &mut Throttled) {
    shared.stats.rejected_connections.fetch_add(1, Relaxed);
    log.warn(|| {
        format!(
            "refused client {:?}: max number of clients reached (maxclients {})",
            stream.peer_addr(),
            shared.config.read().maxclients
        )
    });
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(MAX_CLIENTS_ERROR);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
