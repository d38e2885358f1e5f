use std::io::Write;
use std::sync::OnceLock;

use rudis::config::{Cli, Config, ConfigError};

use rudis::util::proctitle;

/// See `proctitle::capture`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array"]
static CAPTURE: extern "C" fn(
    std::ffi::c_int,
    *mut *mut std::ffi::c_char,
    *mut *mut std::ffi::c_char,
) = proctitle::capture;

fn main() {
    let cli = Cli::parse_redis_style(std::env::args());
    proctitle::init();
    let mut config = match Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e @ ConfigError::File { .. }) => {
            // Redis's own words and layout, which tools and people grep for.
            eprintln!("{e}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("rudis-server: {e}");
            std::process::exit(1);
        }
    };
    let renames = config
        .renames
        .iter()
        .map(|r| (r.from.as_str(), r.to.as_str()));
    if let Err((i, reason)) = rudis::commands::table::rename_commands(renames) {
        let r = &config.renames[i];
        let e = ConfigError::File {
            line: r.at,
            text: r.line.clone(),
            reason: reason.into(),
        };
        eprintln!("{e}");
        std::process::exit(1);
    }
    let log_file = (!config.logfile.is_empty()).then(|| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.logfile)
            .unwrap_or_else(|e| fatal(&format!("Can't open the log file: {e}")))
    });
    // Relative paths (the AOF, CONFIG REWRITE's file) were resolved before, as in Redis the
    // working directory is `dir` from here on.
    if let Err(e) = std::env::set_current_dir(&config.dir) {
        fatal(&format!("Can't chdir to '{}': {e}", config.dir.display()));
    }
    config.dir = std::env::current_dir().unwrap_or_else(|_| config.dir.clone());
    if config.daemonize {
        daemonize();
    }
    // The crash report writes to the log's own descriptor: kept open for the process's life.
    let crash_fd = log_file
        .as_ref()
        .and_then(|f| f.try_clone().ok())
        .map(std::os::fd::IntoRawFd::into_raw_fd);
    init_logger(&config, log_file);
    rudis::util::crash::install(crash_fd);
    if config.daemonize && config.pidfile.is_empty() {
        config.pidfile = "/var/run/redis.pid".into();
    }
    if !config.pidfile.is_empty() {
        write_pidfile(&config.pidfile);
    }
    if let Some(w) = config.ignored_warning() {
        log::warn!("{w}");
    }
    let logs_to_stderr = config.logfile.is_empty();
    if let Err(e) = rudis::server::run(config) {
        log::error!("{e}");
        // The log is stderr already unless it is a file.
        if !logs_to_stderr {
            eprintln!("rudis-server: {e}");
        }
        std::process::exit(1);
    }
}

fn fatal(msg: &str) -> ! {
    eprintln!("rudis-server: {msg}");
    std::process::exit(1);
}

fn init_logger(config: &Config, file: Option<std::fs::File>) {
    let mut b = if std::env::var_os("RUST_LOG").is_some() {
        env_logger::Builder::from_env(env_logger::Env::default())
    } else {
        // Every level passes the logger's own filter; the global maximum, which CONFIG SET
        // loglevel moves, does the filtering.
        let mut b = env_logger::Builder::new();
        // Trace (Redis's debug level) for rudis's own records only: libraries' trace output
        // is theirs, not Redis's.
        b.filter_level(log::LevelFilter::Debug);
        b.filter_module("rudis", log::LevelFilter::Trace);
        b
    };
    if let Some(f) = file {
        b.target(env_logger::Target::Pipe(Box::new(f)));
    }
    b.init();
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(config.loglevel.level_filter());
    }
}

/// Forks into the background as Redis does: the parent exits, the child leads a new session
/// with its standard streams on /dev/null. Runs before any thread exists, as fork requires.
fn daemonize() {
    // SAFETY: single-threaded here (no thread has been started yet), so the child is a
    // complete copy; the parent only exits.
    match unsafe { libc::fork() } {
        -1 => fatal(&format!("cannot fork: {}", std::io::Error::last_os_error())),
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: setsid has no preconditions; the descriptors are ours to replace.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
}

static PIDFILE: OnceLock<String> = OnceLock::new();

extern "C" fn remove_pidfile() {
    if let Some(p) = PIDFILE.get() {
        let _ = std::fs::remove_file(p);
    }
}

/// Writes the pid file, removed again when the process exits normally (SHUTDOWN, SIGTERM).
fn write_pidfile(path: &str) {
    let written =
        std::fs::File::create(path).and_then(|mut f| writeln!(f, "{}", std::process::id()));
    if let Err(e) = written {
        log::warn!("Failed to write PID file {path}: {e}");
        return;
    }
    let _ = PIDFILE.set(path.to_string());
    // SAFETY: registers a plain extern "C" function without arguments.
    unsafe {
        libc::atexit(remove_pidfile);
    }
}
