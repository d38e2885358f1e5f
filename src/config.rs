//! Settings: the command line (clap), redis.conf-style files, and the registry CONFIG GET/SET
//! reads and writes. Every setting goes through [`Config::set`], so the file, the flags and
//! CONFIG SET validate the same way.

use std::path::PathBuf;

use clap::Parser;

/// When the AOF writer calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before replying to a write; one fsync covers every record waiting at that moment.
    Always,
    /// At most once a second, in the writer thread; clients never wait for it.
    EverySec,
    /// Never explicitly; the OS flushes when it likes.
    No,
}

impl FsyncPolicy {
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
}

impl LogLevel {
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "verbose",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
        }
    }

    /// The most verbose records this level lets through.
    pub fn level_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Verbose | LogLevel::Notice => log::LevelFilter::Info,
            LogLevel::Warning => log::LevelFilter::Warn,
        }
    }
}

/// A setting could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    UnknownSetting(String),
    /// `reason` in Redis's words (`argument must be 'yes' or 'no'`).
    BadValue {
        name: String,
        value: String,
        reason: String,
    },
    /// CONFIG SET of a setting fixed at start-up.
    Immutable(String),
    /// A problem in a config file, with its place.
    File {
        path: String,
        line: usize,
        reason: String,
    },
    Io(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::UnknownSetting(n) => write!(f, "unknown setting '{n}'"),
            ConfigError::BadValue {
                name,
                value,
                reason,
            } => write!(f, "invalid value '{value}' for '{name}': {reason}"),
            ConfigError::Immutable(n) => write!(f, "'{n}' cannot be changed while running"),
            ConfigError::File { path, line, reason } => {
                write!(f, "{path}:{line}: {reason}")
            }
            ConfigError::Io(e) => f.write_str(e),
        }
    }
}

impl ConfigError {
    /// Why CONFIG SET failed, in Redis's words (after "possibly related to argument 'x' - ").
    pub fn reason(&self) -> String {
        match self {
            ConfigError::BadValue { reason, .. } => reason.clone(),
            ConfigError::Immutable(_) => "can't set immutable config".into(),
            other => other.to_string(),
        }
    }
}

impl std::error::Error for ConfigError {}

/// How a setting's value is read; one validation path for the file, the flags and CONFIG SET.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Enum(&'static [&'static str]),
    /// Bytes, with redis.conf's units (`64mb`).
    Memory,
    Str,
}

/// An int setting from 0 up, as Redis bounds its own (a C int).
const NON_NEGATIVE: Kind = Kind::Int {
    min: 0,
    max: i32::MAX as i64,
};

/// A setting rudis has: its redis.conf name, how it is read, and whether CONFIG SET may
/// change it while the server runs.
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    pub kind: Kind,
    pub mutable: bool,
    /// Several words allowed (`bind 127.0.0.1 ::1`, `save 3600 1`); they are joined by spaces.
    pub multi: bool,
}

const fn setting(name: &'static str, kind: Kind, mutable: bool) -> Setting {
    Setting {
        name,
        kind,
        mutable,
        multi: false,
    }
}

/// Every setting, in the order CONFIG GET * lists them.
pub static SETTINGS: &[Setting] = &[
    setting("port", Kind::Int { min: 0, max: 65535 }, false),
    Setting {
        multi: true,
        ..setting("bind", Kind::Str, false)
    },
    setting(
        "workers",
        Kind::Int {
            min: 1,
            max: 100_000,
        },
        false,
    ),
    setting("dir", Kind::Str, false),
    setting("appendonly", Kind::Bool, false),
    setting("appendfilename", Kind::Str, false),
    setting(
        "appendfsync",
        Kind::Enum(&["everysec", "always", "no"]),
        true,
    ),
    setting(
        "loglevel",
        Kind::Enum(&["debug", "verbose", "notice", "warning"]),
        true,
    ),
    setting(
        "databases",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        false,
    ),
    setting("timeout", NON_NEGATIVE, true),
    Setting {
        multi: true,
        ..setting("save", Kind::Str, true)
    },
    setting("auto-aof-rewrite-percentage", NON_NEGATIVE, true),
    setting("auto-aof-rewrite-min-size", Kind::Memory, true),
    setting("requirepass", Kind::Str, true),
    setting("protected-mode", Kind::Bool, true),
    setting("client-query-buffer-limit", Kind::Memory, true),
    Setting {
        multi: true,
        ..setting("client-output-buffer-limit", Kind::Str, true)
    },
    setting("client-write-timeout", NON_NEGATIVE, true),
    setting("busy-poll-us", Kind::Int { min: 0, max: 1000 }, false),
    setting(
        "list-max-listpack-size",
        Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        true,
    ),
    setting(
        "enable-debug-command",
        Kind::Enum(&["no", "yes", "local"]),
        false,
    ),
];

pub fn find_setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

fn bad(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::BadValue {
        name: name.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// A byte count as redis.conf writes it: `64mb`, `1gb`, `100k` (k = 1000, kb = 1024).
pub fn parse_memory(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let mul: u64 = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// A checked value, as the setting's kind reads it.
enum Parsed {
    Int(i64),
    Bool(bool),
    Word(&'static str),
    Str(String),
}

impl Setting {
    fn parse(&self, value: &str) -> Result<Parsed, ConfigError> {
        let name = self.name;
        Ok(match self.kind {
            Kind::Int { min, max } => {
                let n: i64 = crate::resp::parse::parse_i64(value.as_bytes()).ok_or_else(|| {
                    bad(name, value, "argument couldn't be parsed into an integer")
                })?;
                if n < min || n > max {
                    return Err(bad(
                        name,
                        value,
                        format!("argument must be between {min} and {max} inclusive"),
                    ));
                }
                Parsed::Int(n)
            }
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" => Parsed::Bool(true),
                "no" => Parsed::Bool(false),
                _ => return Err(bad(name, value, "argument must be 'yes' or 'no'")),
            },
            Kind::Enum(words) => match words.iter().find(|w| w.eq_ignore_ascii_case(value)) {
                Some(w) => Parsed::Word(w),
                None => {
                    return Err(bad(
                        name,
                        value,
                        format!(
                            "argument(s) must be one of the following: {}",
                            words.join(", ")
                        ),
                    ))
                }
            },
            Kind::Memory => Parsed::Int(
                parse_memory(value)
                    .and_then(|n| i64::try_from(n).ok())
                    .ok_or_else(|| bad(name, value, "argument must be a memory value"))?,
            ),
            Kind::Str => Parsed::Str(value.to_string()),
        })
    }
}

impl Parsed {
    fn int(&self) -> i64 {
        match self {
            Parsed::Int(n) => *n,
            _ => 0,
        }
    }

    fn bool(&self) -> bool {
        matches!(self, Parsed::Bool(true))
    }

    fn word(&self) -> &str {
        match self {
            Parsed::Word(w) => w,
            Parsed::Str(s) => s,
            _ => "",
        }
    }
}

/// A password: kept out of `Debug` output so that it never reaches a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// Compares in time independent of where the first difference is.
    pub fn matches(&self, given: &[u8]) -> bool {
        let want = self.0.as_bytes();
        let mut diff = want.len() ^ given.len();
        for (i, &b) in given.iter().enumerate() {
            diff |= (b ^ want.get(i).copied().unwrap_or(0)) as usize;
        }
        diff == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() { "<set>" } else { "<none>" })
    }
}

/// One class of `client-output-buffer-limit`: bytes (0 = none) and seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

/// Redis's classes; rudis has only normal clients, the others are kept for CONFIG GET.
pub const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Parses `<class> <hard> <soft> <seconds>` groups onto `limits`; classes not named keep
/// theirs.
fn output_limits(value: &str, limits: &mut [OutputLimit; 3]) -> Result<(), ConfigError> {
    let name = "client-output-buffer-limit";
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err(bad(
            name,
            value,
            "Wrong number of arguments in buffer limit configuration.",
        ));
    }
    let mut next = *limits;
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err(bad(
                    name,
                    value,
                    "Invalid client class specified in buffer limit configuration.",
                ))
            }
        };
        let mem = |v: &str| {
            parse_memory(v).ok_or_else(|| {
                bad(
                    name,
                    value,
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
                )
            })
        };
        next[class] = OutputLimit {
            hard: mem(group[1])?,
            soft: mem(group[2])?,
            soft_seconds: group[3].parse().map_err(|_| {
                bad(
                    name,
                    value,
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
                )
            })?,
        };
    }
    *limits = next;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    /// One or more addresses, space separated, as redis.conf's `bind`; rudis listens on the
    /// first (see [`Config::listen_addr`]).
    pub bind: String,
    pub workers: usize,
    pub dir: PathBuf,
    pub appendonly: bool,
    pub appendfilename: String,
    pub appendfsync: FsyncPolicy,
    pub loglevel: LogLevel,
    pub databases: usize,
    /// Rewrite the AOF automatically once it has grown by this % since the last rewrite
    /// (0: never).
    pub auto_aof_rewrite_percentage: u64,
    /// ... and is bigger than this many bytes.
    pub auto_aof_rewrite_min_size: u64,
    /// Seconds a client may stay idle before it is closed; 0: forever.
    pub timeout: u64,
    /// The config file the server was started with, for INFO.
    pub config_file: Option<PathBuf>,
    /// Empty: no password, every client is authenticated.
    pub requirepass: Secret,
    /// Without a password, refuse clients from other addresses than the loopback one.
    pub protected_mode: bool,
    /// Close a client whose unprocessed input exceeds this many bytes.
    pub client_query_buffer_limit: u64,
    /// Per class as in `OUTPUT_CLASSES`.
    pub client_output_buffer_limit: [OutputLimit; 3],
    /// Close a client that accepts none of its pending replies for this many seconds (0:
    /// never). rudis's own: a client that sends but never reads would otherwise hold its
    /// place in the pool (one of `workers`) forever.
    pub client_write_timeout: u64,
    /// Under heavy load, how long a worker about to sleep in epoll_wait polls first (see
    /// `pool`); 0: never.
    pub busy_poll_us: u64,
    /// Who may run DEBUG: nobody (Redis 7's default), everybody, or loopback clients only.
    pub enable_debug_command: DebugCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugCommand {
    No,
    Yes,
    Local,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: "127.0.0.1".into(),
            workers: 5,
            dir: PathBuf::from("."),
            appendonly: true,
            appendfilename: "appendonly.aof".into(),
            appendfsync: FsyncPolicy::EverySec,
            loglevel: LogLevel::Notice,
            databases: 16,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            timeout: 0,
            config_file: None,
            requirepass: Secret::default(),
            protected_mode: true,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            client_output_buffer_limit: [
                OutputLimit {
                    hard: 0,
                    soft: 0,
                    soft_seconds: 0,
                },
                OutputLimit {
                    hard: 256 << 20,
                    soft: 64 << 20,
                    soft_seconds: 60,
                },
                OutputLimit {
                    hard: 32 << 20,
                    soft: 8 << 20,
                    soft_seconds: 60,
                },
            ],
            client_write_timeout: 60,
            enable_debug_command: DebugCommand::No,
            busy_poll_us: 50,
        }
    }
}

impl Config {
    /// Applies one setting by its redis.conf name (any case), after checking its value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let s = find_setting(name).ok_or_else(|| ConfigError::UnknownSetting(name.into()))?;
        let v = s.parse(value)?;
        match s.name {
            "port" => self.port = v.int() as u16,
            "bind" => {
                if value.split_whitespace().next().is_none() {
                    return Err(bad(s.name, value, "an address is needed"));
                }
                self.bind = value.split_whitespace().collect::<Vec<_>>().join(" ");
            }
            "workers" => self.workers = v.int() as usize,
            "dir" => {
                if value.is_empty() {
                    return Err(bad(s.name, value, "a directory is needed"));
                }
                self.dir = PathBuf::from(value)
            }
            "appendonly" => self.appendonly = v.bool(),
            "appendfilename" => {
                if value.is_empty() || value.contains('/') {
                    return Err(bad(
                        s.name,
                        value,
                        "appendfilename can't be a path, just a filename",
                    ));
                }
                self.appendfilename = value.into()
            }
            "appendfsync" => {
                self.appendfsync = match v.word() {
                    "always" => FsyncPolicy::Always,
                    "everysec" => FsyncPolicy::EverySec,
                    _ => FsyncPolicy::No,
                }
            }
            "loglevel" => {
                self.loglevel = match v.word() {
                    "debug" => LogLevel::Debug,
                    "verbose" => LogLevel::Verbose,
                    "notice" => LogLevel::Notice,
                    _ => LogLevel::Warning,
                }
            }
            "databases" => self.databases = v.int() as usize,
            "timeout" => self.timeout = v.int() as u64,
            "auto-aof-rewrite-percentage" => self.auto_aof_rewrite_percentage = v.int() as u64,
            "auto-aof-rewrite-min-size" => self.auto_aof_rewrite_min_size = v.int() as u64,
            "requirepass" => self.requirepass = Secret(value.to_string()),
            "protected-mode" => self.protected_mode = v.bool(),
            "client-query-buffer-limit" => {
                // Redis's own floor: below it ordinary requests would be refused.
                if v.int() < 1024 * 1024 {
                    return Err(bad(
                        s.name,
                        value,
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ));
                }
                self.client_query_buffer_limit = v.int() as u64;
            }
            "client-output-buffer-limit" => {
                output_limits(value, &mut self.client_output_buffer_limit)?
            }
            "client-write-timeout" => self.client_write_timeout = v.int() as u64,
            "busy-poll-us" => self.busy_poll_us = v.int() as u64,
            // One value for every list, read where nodes fill (as Redis's server global).
            "list-max-listpack-size" => crate::store::list::set_max_listpack_size(v.int() as i32),
            "enable-debug-command" => {
                self.enable_debug_command = match v.word() {
                    "yes" => DebugCommand::Yes,
                    "local" => DebugCommand::Local,
                    _ => DebugCommand::No,
                }
            }
            "save" => {
                // rudis persists through the AOF only; "" is Redis's way of saying "no snapshots".
                if !value.trim().is_empty() {
                    return Err(bad(
                        s.name,
                        value,
                        "rudis takes no RDB snapshots; only \"\" is accepted",
                    ));
                }
            }
            other => return Err(ConfigError::UnknownSetting(other.into())),
        }
        Ok(())
    }

    /// A setting's current value as CONFIG GET shows it.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match find_setting(name)?.name {
            "port" => self.port.to_string(),
            "bind" => self.bind.clone(),
            "workers" => self.workers.to_string(),
            "dir" => std::fs::canonicalize(&self.dir)
                .unwrap_or_else(|_| self.dir.clone())
                .display()
                .to_string(),
            "appendonly" => if self.appendonly { "yes" } else { "no" }.into(),
            "appendfilename" => self.appendfilename.clone(),
            "appendfsync" => self.appendfsync.name().into(),
            "loglevel" => self.loglevel.name().into(),
            "databases" => self.databases.to_string(),
            "timeout" => self.timeout.to_string(),
            "save" => String::new(),
            "auto-aof-rewrite-percentage" => self.auto_aof_rewrite_percentage.to_string(),
            "auto-aof-rewrite-min-size" => self.auto_aof_rewrite_min_size.to_string(),
            // As Redis: CONFIG GET shows the password itself.
            "requirepass" => self.requirepass.0.clone(),
            "protected-mode" => if self.protected_mode { "yes" } else { "no" }.into(),
            "client-query-buffer-limit" => self.client_query_buffer_limit.to_string(),
            "client-output-buffer-limit" => OUTPUT_CLASSES
                .iter()
                .zip(&self.client_output_buffer_limit)
                .map(|(c, l)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_seconds))
                .collect::<Vec<_>>()
                .join(" "),
            "client-write-timeout" => self.client_write_timeout.to_string(),
            "busy-poll-us" => self.busy_poll_us.to_string(),
            "list-max-listpack-size" => crate::store::list::max_listpack_size().to_string(),
            "enable-debug-command" => match self.enable_debug_command {
                DebugCommand::No => "no",
                DebugCommand::Yes => "yes",
                DebugCommand::Local => "local",
            }
            .into(),
            _ => return None,
        })
    }

    /// CONFIG SET of several settings at once, checked in Redis 7's order: every name is
    /// looked up first (an unknown one is reported even after others), a fixed or repeated one
    /// stops there, then the values are checked; either all are applied or none is. On error,
    /// the name as the client gave it and why.
    pub fn set_at_runtime(&mut self, pairs: &[(&str, &str)]) -> Result<(), (String, ConfigError)> {
        let mut unknown: Option<&str> = None;
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in pairs {
            let Some(s) = find_setting(name) else {
                unknown.get_or_insert(name);
                continue;
            };
            if unknown.is_some() {
                continue;
            }
            if !s.mutable {
                return Err((name.to_string(), ConfigError::Immutable(s.name.into())));
            }
            if seen.contains(&s.name) {
                return Err((name.to_string(), bad(s.name, "", "duplicate parameter")));
            }
            seen.push(s.name);
        }
        if let Some(name) = unknown {
            return Err((name.to_string(), ConfigError::UnknownSetting(name.into())));
        }
        let mut next = self.clone();
        for (name, value) in pairs {
            next.set(name, value).map_err(|e| (name.to_string(), e))?;
        }
        *self = next;
        Ok(())
    }

    /// The address to listen on: the first of `bind` (a leading `-`, redis.conf's "optional"
    /// mark, is dropped), with the port.
    pub fn listen_addr(&self) -> String {
        let first = self.bind.split_whitespace().next().unwrap_or("127.0.0.1");
        let host = first.trim_start_matches('-');
        let host = if host == "*" { "0.0.0.0" } else { host };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub fn aof_path(&self) -> PathBuf {
        self.dir.join(&self.appendfilename)
    }

    /// Builds the configuration from the command line: defaults, then the config file if one
    /// is given, then the flags.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        if let Some(path) = &cli.config_file {
            c.load_file(path)?;
            c.config_file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
        }
        for (name, value) in cli.overrides() {
            c.set(name, &value)?;
        }
        Ok(c)
    }

    /// Reads redis.conf syntax: one directive per line, its words split as Redis splits them
    /// (double quotes with `\n`, `\xHH` escapes; single quotes), `#` comments. A directive rudis
    /// does not have stops start-up, naming the file and line.
    pub fn load_file(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        let text = std::fs::read(path)
            .map_err(|e| ConfigError::Io(format!("cannot read {}: {e}", path.display())))?;
        self.load_text(&String::from_utf8_lossy(&text), &path.display().to_string())
    }

    /// [`Config::load_file`] on text already read; `origin` names it in errors.
    pub fn load_text(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        for (i, line) in text.lines().enumerate() {
            let at = |reason: String| ConfigError::File {
                path: origin.to_string(),
                line: i + 1,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_args(line)
                .ok_or_else(|| at("Unbalanced quotes in configuration line".into()))?;
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            if name.eq_ignore_ascii_case("include") {
                return Err(at(
                    "'include' is not supported: put every setting in one file".into(),
                ));
            }
            let setting =
                find_setting(name).ok_or_else(|| at(format!("unknown directive '{name}'")))?;
            if values.is_empty() || (values.len() > 1 && !setting.multi) {
                return Err(at(format!(
                    "wrong number of arguments for '{}'",
                    setting.name
                )));
            }
            self.set(name, &values.join(" "))
                .map_err(|e| at(e.to_string()))?;
        }
        Ok(())
    }
}

/// Splits a line into words as Redis's `sdssplitargs` (the inline-command splitter, which
/// does exactly that): None on unbalanced quotes (or a closing quote not followed by a space).
pub fn split_args(line: &str) -> Option<Vec<String>> {
    use crate::resp::parse::{Limits, Parsed, RequestParser};
    if line.starts_with('*') {
        // The parser would read a RESP array; no directive starts so.
        return Some(vec![line.to_string()]);
    }
    let input = format!("{line}\r\n");
    let mut p = RequestParser::new(Limits::default());
    match p.parse(input.as_bytes()) {
        Ok(Parsed::Request { .. }) => Some(
            p.args()
                .iter()
                .map(|a| String::from_utf8_lossy(a.bytes(input.as_bytes())).into_owned())
                .collect(),
        ),
        _ => None,
    }
}

/// rudis-server: a Redis-compatible key-value server.
#[derive(Parser, Debug, Default)]
#[command(name = "rudis-server", version, about, long_about = None)]
pub struct Cli {
    /// A redis.conf-style configuration file; flags given here override it.
    pub config_file: Option<PathBuf>,
    /// TCP port to listen on.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Worker threads, and so the most clients served at once; one more is refused with
    /// "max number of clients reached".
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Directory the AOF lives in.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Log every write to the append-only file and replay it at start (yes|no).
    #[arg(long, value_name = "yes|no")]
    pub appendonly: Option<String>,
    /// Name of the append-only file inside --dir.
    #[arg(long, value_name = "NAME")]
    pub appendfilename: Option<String>,
    /// When to fsync the AOF: always (before each write is acknowledged), everysec, or no.
    #[arg(long, value_name = "always|everysec|no")]
    pub appendfsync: Option<String>,
    /// Log verbosity: debug, verbose, notice or warning. RUST_LOG overrides it.
    #[arg(long, value_name = "LEVEL")]
    pub loglevel: Option<String>,
    /// Number of databases (SELECT 0 .. N-1).
    #[arg(long, value_name = "N")]
    pub databases: Option<usize>,
    /// Rewrite the AOF automatically when it has grown by this many percent since the last
    /// rewrite (0 disables).
    #[arg(long, value_name = "PERCENT")]
    pub auto_aof_rewrite_percentage: Option<u64>,
    /// ... and is at least this big (bytes, or 64mb, 1gb...).
    #[arg(long, value_name = "SIZE")]
    pub auto_aof_rewrite_min_size: Option<String>,
    /// Close a client after it has been idle this many seconds (0: never).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// RDB snapshot schedule; rudis takes none, so only "" is accepted (as in redis.conf).
    #[arg(long, value_name = "\"\"")]
    pub save: Option<String>,
    /// Password clients must give with AUTH before any other command.
    #[arg(long, value_name = "PASSWORD")]
    pub requirepass: Option<String>,
    /// Without a password, accept clients only from 127.0.0.1 and ::1 (yes|no).
    #[arg(long, value_name = "yes|no")]
    pub protected_mode: Option<String>,
    /// Close a client whose unprocessed input grows past this (bytes, or 1mb, 1gb...).
    #[arg(long, value_name = "BYTES")]
    pub client_query_buffer_limit: Option<String>,
    /// `normal <hard> <soft> <seconds>`: close a client whose pending replies pass the hard
    /// limit, or stay above the soft one that long.
    #[arg(long, value_name = "LIMITS")]
    pub client_output_buffer_limit: Option<String>,
    /// Close a client that reads none of its replies for this many seconds (0: never).
    #[arg(long, value_name = "SECONDS")]
    pub client_write_timeout: Option<u64>,
    /// Under heavy load, microseconds a worker about to sleep in epoll_wait polls first
    /// (0: never). Costs CPU, saves the clients' wake-ups.
    #[arg(long, value_name = "MICROSECONDS")]
    pub busy_poll_us: Option<u64>,
    /// Allow the DEBUG command: no, yes, or local (loopback clients only).
    #[arg(long, value_name = "no|yes|local")]
    pub enable_debug_command: Option<String>,
}

impl Cli {
    /// The flags given, as (setting name, value) pairs.
    fn overrides(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut put = |name: &'static str, val: Option<String>| {
            if let Some(val) = val {
                v.push((name, val));
            }
        };
        put("port", self.port.map(|p| p.to_string()));
        put("bind", self.bind.clone());
        put("workers", self.workers.map(|w| w.to_string()));
        put("dir", self.dir.as_ref().map(|d| d.display().to_string()));
        put("appendonly", self.appendonly.clone());
        put("appendfilename", self.appendfilename.clone());
        put("appendfsync", self.appendfsync.clone());
        put("loglevel", self.loglevel.clone());
        put("databases", self.databases.map(|d| d.to_string()));
        put(
            "auto-aof-rewrite-percentage",
            self.auto_aof_rewrite_percentage.map(|p| p.to_string()),
        );
        put(
            "auto-aof-rewrite-min-size",
            self.auto_aof_rewrite_min_size.clone(),
        );
        put("timeout", self.timeout.map(|t| t.to_string()));
        put("save", self.save.clone());
        put("requirepass", self.requirepass.clone());
        put("protected-mode", self.protected_mode.clone());
        put(
            "client-query-buffer-limit",
            self.client_query_buffer_limit.clone(),
        );
        put(
            "client-output-buffer-limit",
            self.client_output_buffer_limit.clone(),
        );
        put(
            "client-write-timeout",
            self.client_write_timeout.map(|t| t.to_string()),
        );
        put("enable-debug-command", self.enable_debug_command.clone());
        put("busy-poll-us", self.busy_poll_us.map(|t| t.to_string()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults_and_are_validated() {
        let cli = Cli::parse_from(["rudis-server", "--port", "7000", "--appendfsync", "always"]);
        let c = Config::from_cli(&cli).unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.appendfsync, FsyncPolicy::Always);
        assert!(c.appendonly);
        let cli = Cli::parse_from(["rudis-server", "--appendonly", "maybe"]);
        assert!(Config::from_cli(&cli).is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("64mb"), Some(64 * 1024 * 1024));
        assert_eq!(parse_memory("1K"), Some(1000));
        assert_eq!(parse_memory("12"), Some(12));
        assert!(parse_memory("12q").is_none());
        assert!(parse_memory("mb").is_none());
    }

    #[test]
    fn every_name_round_trips() {
        let mut c = Config::default();
        for s in SETTINGS {
            let v = c.get(s.name).unwrap();
            c.set(s.name, &v).unwrap();
            assert_eq!(c.get(s.name).unwrap(), v);
        }
    }

    #[test]
    fn errors_in_redis_words() {
        let mut c = Config::default();
        let reason = |r: Result<(), ConfigError>| r.unwrap_err().reason();
        assert_eq!(
            reason(c.set("port", "abc")),
            "argument couldn't be parsed into an integer"
        );
        assert_eq!(
            reason(c.set("port", "99999")),
            "argument must be between 0 and 65535 inclusive"
        );
        assert_eq!(
            reason(c.set("appendonly", "maybe")),
            "argument must be 'yes' or 'no'"
        );
        assert_eq!(
            reason(c.set("loglevel", "loud")),
            "argument(s) must be one of the following: debug, verbose, notice, warning"
        );
        assert!(matches!(
            c.set("nosuch", "1"),
            Err(ConfigError::UnknownSetting(_))
        ));
        let err = c
            .set_at_runtime(&[("timeout", "5"), ("port", "1")])
            .unwrap_err();
        assert_eq!(err.1.reason(), "can't set immutable config");
        assert_eq!(c.timeout, 0, "nothing applied when one pair fails");
        c.set_at_runtime(&[("timeout", "5"), ("LOGLEVEL", "debug")])
            .unwrap();
        assert_eq!((c.timeout, c.loglevel), (5, LogLevel::Debug));
    }

    #[test]
    fn words_split_as_redis_splits_them() {
        let w = |l: &str| split_args(l);
        assert_eq!(w("a  b"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            w(r#"dir "/tmp/with space" 'x\'y'"#),
            Some(vec!["dir".into(), "/tmp/with space".into(), "x'y".into()])
        );
        assert_eq!(w(r#"x "a\x41\n""#), Some(vec!["x".into(), "aA\n".into()]));
        assert_eq!(w(r#"x "unbalanced"#), None);
        assert_eq!(w(r#"x "a"b"#), None);
        assert_eq!(w(r#"save """#), Some(vec!["save".into(), "".into()]));
    }

    #[test]
    fn file_syntax() {
        let mut c = Config::default();
        c.load_text(
            "# comment\n\nport 7001\nbind 127.0.0.1 -::1\nAPPENDFSYNC \"always\"\nsave \"\"\n",
            "t.conf",
        )
        .unwrap();
        assert_eq!((c.port, c.appendfsync), (7001, FsyncPolicy::Always));
        assert_eq!(c.listen_addr(), "127.0.0.1:7001");
        let err = c
            .load_text("port 1\nfrobnicate yes\n", "t.conf")
            .unwrap_err();
        assert_eq!(err.to_string(), "t.conf:2: unknown directive 'frobnicate'");
        let err = c.load_text("include other.conf\n", "t.conf").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("t.conf:1: 'include' is not supported"));
        let err = c.load_text("port 1 2\n", "t.conf").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.conf:1: wrong number of arguments for 'port'"
        );
        let err = c.load_text("port\n", "t.conf").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.conf:1: wrong number of arguments for 'port'"
        );
    }
}
