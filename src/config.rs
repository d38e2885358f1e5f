//! Settings: the command line (clap), redis.conf-style files, and the registry CONFIG GET/SET
//! reads and writes. Every setting goes through [`Config::set`], so the file, the flags and
//! CONFIG SET validate the same way.

use std::path::PathBuf;

use crate::store::evict;
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

    /// The most verbose records this level lets through: Redis's four levels are `log`'s
    /// trace, debug, info and warn (what Redis logs at VERBOSE is a `log::debug!`).
    pub fn level_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Debug => log::LevelFilter::Trace,
            LogLevel::Verbose => log::LevelFilter::Debug,
            LogLevel::Notice => log::LevelFilter::Info,
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
    /// A problem in a config file (or a `--name value` option), with its place.
    File {
        line: usize,
        text: String,
        reason: String,
    },
    /// Start-up cannot go on, for this reason.
    Startup(String),
    Io(String),
    /// CONFIG SET of a setting Redis refuses while the data loads (DENY_LOADING_CONFIG).
    Loading,
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
            ConfigError::File { line, text, reason } => write!(
                f,
                "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n\
                 Reading the configuration file, at line {line}\n>>> '{text}'\n{reason}"
            ),
            ConfigError::Startup(e) => f.write_str(e),
            ConfigError::Io(e) => f.write_str(e),
            ConfigError::Loading => f.write_str("refused while the data loads"),
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
    /// Bytes, within bounds (Redis's MEMORY_CONFIG integers).
    MemoryIn {
        min: i64,
        max: i64,
    },
    /// Bytes, or a percentage up to 100 written `N%` (Redis's MEMORY_CONFIG | PERCENT_CONFIG:
    /// maxmemory-clients).
    MemoryOrPercent,
    Str,
}

/// Bounds Redis gives its C ints.
pub const I32_MAX: i64 = i32::MAX as i64;
pub const I32_MIN: i64 = i32::MIN as i64;
pub const U32_MAX: i64 = u32::MAX as i64;

mod table;
pub use table::REDIS_ONLY;

/// What rudis does with a setting Redis 7.0 has and rudis does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Accepted, shown by CONFIG GET, without effect: ignoring it loses no data and weakens
    /// no security. Named in one start-up warning when a file or flag gives it.
    Ignored,
    /// Applied outside the Config (the slow log's and latency monitor's settings, see
    /// `ops::apply_setting`; `acl::apply_setting`), kept here for CONFIG GET.
    Observed,
    /// Any value but the default stops start-up (and CONFIG SET refuses it): it asks for
    /// this, which rudis does not have.
    Refused(&'static str),
    /// Kept in this table for its CONFIG GET/SET handling, read where it applies
    /// (`Config::get`): the RDB settings.
    Applied,
}

/// A Redis 7.0 setting rudis does not implement (see `table`).
#[derive(Debug)]
pub struct RedisOnly {
    pub name: &'static str,
    /// Redis's other name for it (`slaveof`, `hash-max-ziplist-entries`).
    pub alias: Option<&'static str>,
    pub kind: Kind,
    /// As CONFIG GET prints it.
    pub default: &'static str,
    pub mutable: bool,
    /// Redis lists it only when asked by its exact name.
    pub hidden: bool,
    /// Several words (`replicaof host port`).
    pub multi: bool,
    pub status: Status,
}

/// A setting found by name or alias.
#[derive(Debug, Clone, Copy)]
pub enum Entry {
    /// rudis implements it.
    Own(&'static Setting),
    Other(&'static RedisOnly),
}

impl Entry {
    /// The setting's own name (an alias resolves to it).
    pub fn name(self) -> &'static str {
        match self {
            Entry::Own(s) => s.name,
            Entry::Other(o) => o.name,
        }
    }

    pub fn mutable(self) -> bool {
        match self {
            Entry::Own(s) => s.mutable,
            Entry::Other(o) => o.mutable,
        }
    }

    pub fn multi(self) -> bool {
        match self {
            Entry::Own(s) => s.multi,
            Entry::Other(o) => o.multi,
        }
    }
}

/// Finds a setting by its name or alias, in any case.
pub fn lookup(name: &str) -> Option<Entry> {
    if let Some(s) = find_setting(name) {
        return Some(Entry::Own(s));
    }
    REDIS_ONLY
        .iter()
        .find(|o| {
            o.name.eq_ignore_ascii_case(name)
                || o.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
        })
        .map(Entry::Other)
}

/// Every name CONFIG GET with a pattern may list, aliases included, hidden settings not.
pub fn listed_names() -> impl Iterator<Item = &'static str> {
    SETTINGS
        .iter()
        .flat_map(|s| std::iter::once(s.name).chain(s.alias))
        .chain(
            REDIS_ONLY
                .iter()
                .filter(|o| !o.hidden)
                .flat_map(|o| std::iter::once(o.name).chain(o.alias)),
        )
}

/// Directives only a config file has (no CONFIG GET), and what rudis lacks to honour them.
const FILE_ONLY_REFUSED: &[(&str, &str)] =
    &[("loadmodule", "modules"), ("sentinel", "Sentinel mode")];

/// Directives Redis 7.0 still accepts and ignores.
const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

/// An int setting from 0 up, as Redis bounds its own (a C int).
/// An encoding limit's range (Redis's size_t configs).
const LIMIT: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

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
    /// Redis's other name for it (`list-max-ziplist-size`).
    pub alias: Option<&'static str>,
}

const fn setting(name: &'static str, kind: Kind, mutable: bool) -> Setting {
    Setting {
        name,
        kind,
        mutable,
        multi: false,
        alias: None,
    }
}

/// Every setting, in the order CONFIG GET * lists them.
pub static SETTINGS: &[Setting] = &[
    setting("port", Kind::Int { min: 0, max: 65535 }, true),
    Setting {
        multi: true,
        ..setting("bind", Kind::Str, true)
    },
    setting(
        "workers",
        Kind::Int {
            min: 1,
            max: 100_000,
        },
        false,
    ),
    // Redis's range: 1 up to an unsigned int; the fd limit may lower it (see `fdlimit`).
    setting(
        "maxclients",
        Kind::Int {
            min: 1,
            max: u32::MAX as i64,
        },
        true,
    ),
    setting("dir", Kind::Str, true),
    setting("appendonly", Kind::Bool, true),
    setting("appendfilename", Kind::Str, false),
    setting("aof-multi-part", Kind::Bool, false),
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
    setting("lazyfree-lazy-user-del", Kind::Bool, true),
    setting("lazyfree-lazy-user-flush", Kind::Bool, true),
    setting("client-query-buffer-limit", Kind::Memory, true),
    Setting {
        multi: true,
        ..setting("client-output-buffer-limit", Kind::Str, true)
    },
    setting("client-write-timeout", NON_NEGATIVE, true),
    setting("busy-poll-us", Kind::Int { min: 0, max: 1000 }, false),
    Setting {
        alias: Some("lua-time-limit"),
        ..setting("busy-reply-threshold", NON_NEGATIVE, true)
    },
    Setting {
        alias: Some("list-max-ziplist-size"),
        ..setting(
            "list-max-listpack-size",
            Kind::Int {
                min: i32::MIN as i64,
                max: i32::MAX as i64,
            },
            true,
        )
    },
    Setting {
        alias: Some("hash-max-ziplist-entries"),
        ..setting("hash-max-listpack-entries", LIMIT, true)
    },
    Setting {
        alias: Some("hash-max-ziplist-value"),
        ..setting(
            "hash-max-listpack-value",
            Kind::MemoryIn {
                min: 0,
                max: i64::MAX,
            },
            true,
        )
    },
    setting("set-max-intset-entries", LIMIT, true),
    setting("stream-node-max-entries", LIMIT, true),
    setting(
        "stream-node-max-bytes",
        Kind::MemoryIn {
            min: 0,
            max: i64::MAX,
        },
        true,
    ),
    setting("notify-keyspace-events", Kind::Str, true),
    setting("tracking-table-max-keys", LIMIT, true),
    Setting {
        alias: Some("zset-max-ziplist-entries"),
        ..setting("zset-max-listpack-entries", LIMIT, true)
    },
    Setting {
        alias: Some("zset-max-ziplist-value"),
        ..setting(
            "zset-max-listpack-value",
            Kind::MemoryIn {
                min: 0,
                max: i64::MAX,
            },
            true,
        )
    },
    setting(
        "hll-sparse-max-bytes",
        Kind::MemoryIn {
            min: 0,
            max: i64::MAX,
        },
        true,
    ),
    setting(
        "enable-debug-command",
        Kind::Enum(&["no", "yes", "local"]),
        false,
    ),
    setting("daemonize", Kind::Bool, false),
    setting("pidfile", Kind::Str, false),
    setting("logfile", Kind::Str, false),
    setting(
        "supervised",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        false,
    ),
    setting("tcp-keepalive", NON_NEGATIVE, true),
    setting(
        "maxmemory",
        Kind::MemoryIn {
            min: 0,
            max: i64::MAX,
        },
        true,
    ),
    setting(
        "maxmemory-policy",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        true,
    ),
    setting(
        "maxmemory-samples",
        Kind::Int {
            min: 1,
            max: I32_MAX,
        },
        true,
    ),
    setting(
        "maxmemory-eviction-tenacity",
        Kind::Int { min: 0, max: 100 },
        true,
    ),
    setting(
        "lfu-log-factor",
        Kind::Int {
            min: 0,
            max: I32_MAX,
        },
        true,
    ),
    setting(
        "lfu-decay-time",
        Kind::Int {
            min: 0,
            max: I32_MAX,
        },
        true,
    ),
    setting(
        "tcp-backlog",
        Kind::Int {
            min: 0,
            max: I32_MAX,
        },
        false,
    ),
];

/// Settings whose value is process-wide state rather than a `Config` field.
const PROCESS_WIDE: &[&str] = &[
    "list-max-listpack-size",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "set-max-intset-entries",
    "notify-keyspace-events",
    "tracking-table-max-keys",
    "hll-sparse-max-bytes",
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "maxmemory-eviction-tenacity",
    "lfu-log-factor",
    "lfu-decay-time",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "stream-node-max-entries",
    "stream-node-max-bytes",
];

/// The process-wide values (see `PROCESS_WIDE`) a CONFIG SET replaced, which a copy of the
/// Config from before does not hold: what `Config::restore` puts back.
#[must_use]
#[derive(Debug)]
pub struct Replaced(Vec<(&'static str, String)>);

pub fn find_setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| {
        s.name.eq_ignore_ascii_case(name) || s.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    })
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
        parse_value(self.name, self.kind, value)
    }
}

fn in_range(name: &str, value: &str, n: i64, min: i64, max: i64) -> Result<Parsed, ConfigError> {
    if n < min || n > max {
        return Err(bad(
            name,
            value,
            format!("argument must be between {min} and {max} inclusive"),
        ));
    }
    Ok(Parsed::Int(n))
}

/// Checks `value` as `kind` reads it; errors in Redis's words.
fn parse_value(name: &str, kind: Kind, value: &str) -> Result<Parsed, ConfigError> {
    Ok(match kind {
        Kind::Int { min, max } => {
            let n: i64 = crate::resp::parse::parse_i64(value.as_bytes())
                .ok_or_else(|| bad(name, value, "argument couldn't be parsed into an integer"))?;
            in_range(name, value, n, min, max)?
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
        Kind::MemoryIn { min, max } => {
            let n = parse_memory(value)
                .and_then(|n| i64::try_from(n).ok())
                .or_else(|| {
                    // Redis's signed memory settings take negative plain numbers too.
                    crate::resp::parse::parse_i64(value.as_bytes()).filter(|_| min < 0)
                })
                .ok_or_else(|| bad(name, value, "argument must be a memory value"))?;
            in_range(name, value, n, min, max)?
        }
        Kind::MemoryOrPercent => {
            if let Some(n) = parse_memory(value).and_then(|n| i64::try_from(n).ok()) {
                return Ok(Parsed::Int(n));
            }
            let percent = value
                .strip_suffix('%')
                .and_then(|p| crate::resp::parse::parse_i64(p.as_bytes()))
                .filter(|p| *p >= 0)
                .ok_or_else(|| bad(name, value, "argument must be a memory or percent value"))?;
            if percent > 100 {
                return Err(bad(
                    name,
                    value,
                    "percentage argument must be less or equal to 100",
                ));
            }
            // As Redis's CONFIG GET prints it (0% is 0 bytes).
            Parsed::Str(match percent {
                0 => "0".into(),
                p => format!("{p}%"),
            })
        }
        Kind::Str => Parsed::Str(value.to_string()),
    })
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

    fn word_static(&self) -> &'static str {
        match self {
            Parsed::Word(w) => w,
            _ => "",
        }
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
    /// The password itself, for the default ACL user's hash.
    pub fn expose(&self) -> String {
        self.0.clone()
    }

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

/// Redis's classes: subscribed clients are held to `pubsub`; `slave` is kept for CONFIG GET.
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

/// The few settings rudis ignores whose values Redis checks and rewrites in its own way.
fn special_value(name: &str, v: &str) -> Result<String, &'static str> {
    let words: Vec<&str> = v.split_whitespace().collect();
    match name {
        // Redis's OCTAL_CONFIG: read and shown in octal.
        "unixsocketperm" => {
            let n = u32::from_str_radix(v, 8)
                .map_err(|_| "argument couldn't be parsed as an octal number")?;
            if n > 0o777 {
                return Err("argument must be between 0 and 777 inclusive");
            }
            Ok(format!("{n:o}"))
        }
        "oom-score-adj-values" => {
            if words.len() != 3 {
                return Err("wrong number of arguments");
            }
            let ok = words
                .iter()
                .all(|w| w.parse::<i64>().is_ok_and(|n| (-2000..=2000).contains(&n)));
            if !ok {
                return Err(
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000.",
                );
            }
            Ok(words.join(" "))
        }
        "latency-tracking-info-percentiles" => {
            let mut out = Vec::new();
            for w in words {
                let p: f64 = w
                    .parse()
                    .map_err(|_| "Invalid latency-tracking-info-percentiles parameters")?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(
                        "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
                    );
                }
                // "%f" with the trailing zeros trimmed, as Redis prints them.
                let f = format!("{p:.6}");
                out.push(f.trim_end_matches('0').trim_end_matches('.').to_string());
            }
            Ok(out.join(" "))
        }
        // `replicaof <host> <port>`, or `no one` (a master), as Redis reads it.
        "replicaof" => match words.as_slice() {
            [] => Ok(String::new()),
            [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => {
                Ok(String::new())
            }
            // Port 0 too, as Redis takes it (its tests use it for a master never reached).
            [host, port] => match port.parse::<u16>() {
                Ok(p) => Ok(format!("{host} {p}")),
                _ => Err("Invalid master port"),
            },
            _ => Err("wrong number of arguments"),
        },
        "shutdown-on-sigint" | "shutdown-on-sigterm" => {
            let known = ["default", "save", "nosave", "now", "force"];
            if words.is_empty()
                || !words
                    .iter()
                    .all(|w| known.contains(&w.to_ascii_lowercase().as_str()))
            {
                return Err(
                    "argument(s) must be one of the following: default, save, nosave, now, force",
                );
            }
            // As Redis shows a set of flags: in its table's order, `default` for none.
            let given: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
            let set: Vec<&str> = known[1..]
                .iter()
                .copied()
                .filter(|k| given.iter().any(|g| g == k))
                .collect();
            Ok(match set.is_empty() {
                true => "default".to_string(),
                false => set.join(" "),
            })
        }
        _ => Ok(v.to_string()),
    }
}

/// `save` as Redis 7 reads it: "" for none, else `seconds changes` pairs of integers.
fn parse_save(value: &str) -> Result<String, ConfigError> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let ok = words.len().is_multiple_of(2)
        && words
            .iter()
            .all(|w| crate::resp::parse::parse_i64(w.as_bytes()).is_some());
    if !ok {
        return Err(bad("save", value, "Invalid save parameters"));
    }
    Ok(words.join(" "))
}

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    /// One or more addresses, space separated, as redis.conf's `bind` (`-` marks an
    /// optional one); `listen::bind_all` listens on each.
    pub bind: String,
    pub workers: usize,
    /// Connections served at once (over `workers` threads); the one past it is refused.
    pub maxclients: u64,
    pub dir: PathBuf,
    pub appendonly: bool,
    pub appendfilename: String,
    /// Write the AOF in Redis 7's layout (`appenddirname`, a manifest, base and incr files)
    /// rather than as one file; a start on such a directory keeps it (see `aof_layout`).
    pub aof_multi_part: bool,
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
    /// DEL frees as UNLINK does (big values in the background), and FLUSHALL/FLUSHDB without
    /// SYNC as with ASYNC.
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    /// Close a client whose unprocessed input exceeds this many bytes.
    pub client_query_buffer_limit: u64,
    /// Per class as in `OUTPUT_CLASSES`.
    pub client_output_buffer_limit: [OutputLimit; 3],
    /// Close a client that accepts none of its pending replies for this many seconds (0:
    /// never). rudis's own: a client that sends but never reads would otherwise hold its
    /// place (one of `maxclients`) forever.
    pub client_write_timeout: u64,
    /// Under heavy load, how long a worker about to sleep in epoll_wait polls first (see
    /// `pool`); 0: never.
    pub busy_poll_us: u64,
    /// Milliseconds a script runs before other clients get BUSY and SCRIPT KILL may stop it
    /// (0: never).
    pub busy_reply_threshold: u64,
    /// Who may run DEBUG: nobody (Redis 7's default), everybody, or loopback clients only.
    pub enable_debug_command: DebugCommand,
    /// Fork into the background at start (before any thread exists).
    pub daemonize: bool,
    /// Where the pid goes; empty: nowhere (daemonized: Redis's `/var/run/redis.pid`).
    pub pidfile: String,
    /// Where the log goes; empty: standard output (daemonized: nowhere, as Redis).
    pub logfile: String,
    /// upstart, systemd, auto or no; under systemd, READY=1 goes to $NOTIFY_SOCKET.
    pub supervised: &'static str,
    /// The listen(2) backlog.
    pub tcp_backlog: i32,
    /// Seconds of silence before TCP probes a client (0: no probes).
    pub tcp_keepalive: u64,
    /// Redis's RDB schedule, `seconds changes` pairs; "" = none. rudis takes no snapshots
    /// and keeps it only with the AOF on, which persists every write anyway.
    pub save: String,
    /// Redis 7.0's settings rudis does not implement (see `REDIS_ONLY`), by their own
    /// name, as CONFIG GET prints them; absent ones are at their default.
    pub other: std::collections::BTreeMap<&'static str, String>,
    /// The ignored directives a file or the command line gave, for one start-up warning.
    pub ignored_given: Vec<&'static str>,
    /// redis.conf's `user` lines, each the name and its rules (checked as they were read;
    /// the users are made at start, see `acl::file`).
    pub acl_users: Vec<Vec<String>>,
    /// redis.conf's `rename-command` lines, in order, applied to the command table at start.
    pub renames: Vec<Rename>,
}

/// One `rename-command from to` line (`to` empty: the command goes), with where it was read
/// for the error that a name the table lacks makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub at: usize,
    pub line: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugCommand {
    No,
    Yes,
    Local,
}

/// Each setting's value before anything set it, read off the first `Config` made (before any
/// `set`): many settings live in process-wide statics (`store::limits`, `evict`...), where a
/// `Config::default()` made later would read the current values, and CONFIG REWRITE would take
/// a changed value for the default and leave it out.
fn default_value(name: &str) -> Option<String> {
    static DEFAULTS: std::sync::OnceLock<std::collections::HashMap<&'static str, Option<String>>> =
        std::sync::OnceLock::new();
    DEFAULTS
        .get_or_init(|| {
            let c = Config::default();
            SETTINGS.iter().map(|s| (s.name, c.get(s.name))).collect()
        })
        .get(name)
        .cloned()
        .unwrap_or_else(|| Config::default().get(name))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: "* -::*".into(),
            workers: 5,
            maxclients: 10_000,
            dir: PathBuf::from("."),
            appendonly: true,
            appendfilename: "appendonly.aof".into(),
            aof_multi_part: false,
            appendfsync: FsyncPolicy::EverySec,
            loglevel: LogLevel::Notice,
            databases: 16,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            timeout: 0,
            config_file: None,
            requirepass: Secret::default(),
            protected_mode: true,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
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
            busy_reply_threshold: 5000,
            daemonize: false,
            pidfile: String::new(),
            logfile: String::new(),
            supervised: "no",
            tcp_backlog: 511,
            tcp_keepalive: 300,
            save: "3600 1 300 100 60 10000".into(),
            other: Default::default(),
            ignored_given: Vec::new(),
            acl_users: Vec::new(),
            renames: Vec::new(),
        }
    }
}

/// The settings Redis 7.0 declares DENY_LOADING_CONFIG: CONFIG SET refuses them (-LOADING)
/// while the data loads.
const DENY_LOADING: &[&str] = &["dir", "appendonly", "repl-diskless-load"];

/// The settings Redis 7.0 declares IMMUTABLE_CONFIG: CONFIG SET refuses them whatever the value.
const REDIS_IMMUTABLE: &[&str] = &[
    "rdbchecksum",
    "daemonize",
    "io-threads-do-reads",
    "always-show-logo",
    "set-proc-title",
    "syslog-enabled",
    "cluster-enabled",
    "disable-thp",
    "aclfile",
    "unixsocket",
    "pidfile",
    "cluster-config-file",
    "syslog-ident",
    "appendfilename",
    "appenddirname",
    "logfile",
    "supervised",
    "syslog-facility",
    "enable-protected-configs",
    "enable-debug-command",
    "enable-module-command",
    "databases",
    "io-threads",
    "tcp-backlog",
    "cluster-port",
    "unixsocketperm",
    "socket-mark-id",
];

impl Config {
    /// Applies one setting by its redis.conf name (any case), after checking its value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        // The defaults are read before the first change (see `default_value`).
        let _ = default_value("port");
        let s = match lookup(name) {
            None => return Err(ConfigError::UnknownSetting(name.into())),
            Some(Entry::Other(o)) => return self.set_other(o, value),
            Some(Entry::Own(s)) => s,
        };
        let v = s.parse(value)?;
        match s.name {
            "port" => self.port = v.int() as u16,
            "bind" => {
                // As Redis, the words are taken as they are (none: no TCP listener); an
                // address that cannot be listened on fails when it is bound.
                self.bind = value.split_whitespace().collect::<Vec<_>>().join(" ");
            }
            "workers" => self.workers = v.int() as usize,
            "maxclients" => self.maxclients = v.int() as u64,
            "dir" => {
                if value.is_empty() {
                    return Err(bad(s.name, value, "a directory is needed"));
                }
                self.dir = PathBuf::from(value)
            }
            "appendonly" => self.appendonly = v.bool(),
            "aof-multi-part" => self.aof_multi_part = v.bool(),
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
            "lazyfree-lazy-user-del" => self.lazyfree_lazy_user_del = v.bool(),
            "lazyfree-lazy-user-flush" => self.lazyfree_lazy_user_flush = v.bool(),
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
            "busy-reply-threshold" => self.busy_reply_threshold = v.int() as u64,
            // One value for every list, read where nodes fill (as Redis's server global).
            "list-max-listpack-size" => crate::store::limits::set_max_listpack_size(v.int() as i32),
            "hash-max-listpack-entries" => {
                crate::store::limits::set_hash_max_entries(v.int() as usize)
            }
            "hash-max-listpack-value" => crate::store::limits::set_hash_max_value(v.int() as usize),
            "set-max-intset-entries" => {
                crate::store::limits::set_max_intset_entries(v.int() as usize)
            }
            "tracking-table-max-keys" => crate::notify::tracking::set_max_keys(v.int() as usize),
            "notify-keyspace-events" => crate::notify::events::set_flags(
                crate::notify::events::parse(value).map_err(|e| bad(s.name, value, e))?,
            ),
            "hll-sparse-max-bytes" => crate::store::limits::set_hll_sparse_max(v.int() as usize),
            "maxmemory" => evict::set_maxmemory(v.int() as u64),
            "maxmemory-policy" => {
                evict::set_policy(evict::Policy::parse(v.word()).expect("an enum value"))
            }
            "maxmemory-samples" => evict::set_samples(v.int() as u32),
            "maxmemory-eviction-tenacity" => evict::set_tenacity(v.int() as u32),
            "lfu-log-factor" => evict::set_lfu_log_factor(v.int() as u32),
            "lfu-decay-time" => evict::set_lfu_decay_time(v.int() as u32),
            "zset-max-listpack-entries" => {
                crate::store::limits::set_zset_max_entries(v.int() as usize)
            }
            "zset-max-listpack-value" => crate::store::limits::set_zset_max_value(v.int() as usize),
            "stream-node-max-entries" => {
                crate::store::limits::set_stream_node_max_entries(v.int() as usize)
            }
            "stream-node-max-bytes" => {
                crate::store::limits::set_stream_node_max_bytes(v.int() as usize)
            }
            "enable-debug-command" => {
                self.enable_debug_command = match v.word() {
                    "yes" => DebugCommand::Yes,
                    "local" => DebugCommand::Local,
                    _ => DebugCommand::No,
                }
            }
            "save" => self.save = parse_save(value)?,
            "daemonize" => self.daemonize = v.bool(),
            "pidfile" => self.pidfile = value.into(),
            "logfile" => self.logfile = value.into(),
            "supervised" => self.supervised = v.word_static(),
            "tcp-backlog" => self.tcp_backlog = v.int() as i32,
            "tcp-keepalive" => self.tcp_keepalive = v.int() as u64,
            other => return Err(ConfigError::UnknownSetting(other.into())),
        }
        Ok(())
    }

    /// A setting rudis does not implement: checked as Redis checks it and kept for CONFIG
    /// GET; one that asks for what rudis lacks is refused unless at its default.
    fn set_other(&mut self, o: &'static RedisOnly, value: &str) -> Result<(), ConfigError> {
        let v = match parse_value(o.name, o.kind, value)? {
            Parsed::Int(n) => n.to_string(),
            Parsed::Bool(b) => if b { "yes" } else { "no" }.to_string(),
            Parsed::Word(w) => w.to_string(),
            Parsed::Str(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        let v = special_value(o.name, &v).map_err(|reason| bad(o.name, value, reason))?;
        // As Redis's validateProcTitleTemplate: expanded with these settings and an empty
        // title, known variables only, and not empty.
        if o.name == "proc-title-template" && self.expand_title(&v, "").is_none_or(|t| t.is_empty())
        {
            return Err(bad(
                o.name,
                value,
                "template format is invalid or contains unknown variables",
            ));
        }
        if let Status::Refused(what) = o.status {
            if v != o.default {
                return Err(bad(
                    o.name,
                    value,
                    format!(
                        "'{}' asks for {what}, which rudis does not have (only '{}' is accepted)",
                        o.name, o.default
                    ),
                ));
            }
        }
        if o.status == Status::Observed {
            crate::ops::apply_setting(o.name, &v);
            crate::acl::apply_setting(o.name, &v);
        }
        self.other.insert(o.name, v);
        Ok(())
    }

    /// The process title `proc-title-template` makes of these settings, with the variables
    /// Redis's redisProcTitleGetVariable fills; None under `set-proc-title no`.
    pub fn proc_title(&self) -> Option<String> {
        if self.get("set-proc-title").as_deref() == Some("no") {
            return None;
        }
        let template = self.get("proc-title-template").unwrap_or_default();
        self.expand_title(&template, &crate::util::proctitle::arg0())
    }

    /// `template` with Redis's variables filled from these settings and `title`; None for an
    /// invalid template.
    fn expand_title(&self, template: &str, title: &str) -> Option<String> {
        let tls_port = self.get("tls-port").unwrap_or_default();
        let unixsocket = self.get("unixsocket").unwrap_or_default();
        crate::util::proctitle::expand(template, |name| {
            Some(match name {
                "title" => title.to_string(),
                "listen-addr" if self.port != 0 || tls_port != "0" => {
                    let first = self.bind.split_whitespace().next().unwrap_or("*");
                    let port = match self.port {
                        0 => tls_port.clone(),
                        p => p.to_string(),
                    };
                    format!("{first}:{port}")
                }
                "listen-addr" => format!("unixsocket:{unixsocket}"),
                "server-mode" => String::new(),
                "config-file" => match &self.config_file {
                    Some(p) => p.display().to_string(),
                    None => "-".into(),
                },
                "port" => self.port.to_string(),
                "tls-port" => tls_port.clone(),
                "unixsocket" => unixsocket.clone(),
                _ => return None,
            })
        })
    }

    /// Sets the process title these settings ask for (see `proc_title`).
    pub fn apply_proc_title(&self) {
        if let Some(title) = self.proc_title() {
            crate::util::proctitle::set(&title);
        }
    }

    /// Checks that hold between settings: a snapshot schedule needs the AOF to stand in for
    /// the snapshots rudis does not take.
    pub fn check(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// A numeric setting's current value (as CONFIG GET shows it, in plain units), or
    /// `default` when it has none or it is not a number.
    pub fn number(&self, name: &str, default: u64) -> u64 {
        self.get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// A setting's current value as CONFIG GET shows it.
    pub fn get(&self, name: &str) -> Option<String> {
        let s = match lookup(name)? {
            Entry::Other(o) => {
                return Some(
                    self.other
                        .get(o.name)
                        .cloned()
                        .unwrap_or_else(|| o.default.to_string()),
                )
            }
            Entry::Own(s) => s,
        };
        Some(match s.name {
            "port" => self.port.to_string(),
            "bind" => self.bind.clone(),
            "workers" => self.workers.to_string(),
            "maxclients" => self.maxclients.to_string(),
            "dir" => std::fs::canonicalize(&self.dir)
                .unwrap_or_else(|_| self.dir.clone())
                .display()
                .to_string(),
            "appendonly" => if self.appendonly { "yes" } else { "no" }.into(),
            "appendfilename" => self.appendfilename.clone(),
            "aof-multi-part" => if self.aof_multi_part { "yes" } else { "no" }.into(),
            "appendfsync" => self.appendfsync.name().into(),
            "loglevel" => self.loglevel.name().into(),
            "databases" => self.databases.to_string(),
            "timeout" => self.timeout.to_string(),
            "save" => self.save.clone(),
            "daemonize" => if self.daemonize { "yes" } else { "no" }.into(),
            "pidfile" => self.pidfile.clone(),
            "logfile" => self.logfile.clone(),
            "supervised" => self.supervised.into(),
            "tcp-backlog" => self.tcp_backlog.to_string(),
            "tcp-keepalive" => self.tcp_keepalive.to_string(),
            "auto-aof-rewrite-percentage" => self.auto_aof_rewrite_percentage.to_string(),
            "auto-aof-rewrite-min-size" => self.auto_aof_rewrite_min_size.to_string(),
            // As Redis: CONFIG GET shows the password itself.
            "requirepass" => self.requirepass.0.clone(),
            "protected-mode" => if self.protected_mode { "yes" } else { "no" }.into(),
            "lazyfree-lazy-user-del" => if self.lazyfree_lazy_user_del {
                "yes"
            } else {
                "no"
            }
            .into(),
            "lazyfree-lazy-user-flush" => if self.lazyfree_lazy_user_flush {
                "yes"
            } else {
                "no"
            }
            .into(),
            "client-query-buffer-limit" => self.client_query_buffer_limit.to_string(),
            "client-output-buffer-limit" => OUTPUT_CLASSES
                .iter()
                .zip(&self.client_output_buffer_limit)
                .map(|(c, l)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_seconds))
                .collect::<Vec<_>>()
                .join(" "),
            "client-write-timeout" => self.client_write_timeout.to_string(),
            "busy-poll-us" => self.busy_poll_us.to_string(),
            "busy-reply-threshold" => self.busy_reply_threshold.to_string(),
            "list-max-listpack-size" => crate::store::limits::max_listpack_size().to_string(),
            "hash-max-listpack-entries" => crate::store::limits::hash_max_entries().to_string(),
            "hash-max-listpack-value" => crate::store::limits::hash_max_value().to_string(),
            "set-max-intset-entries" => crate::store::limits::max_intset_entries().to_string(),
            "notify-keyspace-events" => {
                crate::notify::events::format(crate::notify::events::flags())
            }
            "tracking-table-max-keys" => crate::notify::tracking::max_keys().to_string(),
            "hll-sparse-max-bytes" => crate::store::limits::hll_sparse_max().to_string(),
            "maxmemory" => evict::maxmemory().to_string(),
            "maxmemory-policy" => evict::policy().name().into(),
            "maxmemory-samples" => evict::samples().to_string(),
            "maxmemory-eviction-tenacity" => evict::tenacity().to_string(),
            "lfu-log-factor" => evict::lfu_log_factor().to_string(),
            "lfu-decay-time" => evict::lfu_decay_time().to_string(),
            "zset-max-listpack-entries" => crate::store::limits::zset_max_entries().to_string(),
            "zset-max-listpack-value" => crate::store::limits::zset_max_value().to_string(),
            "stream-node-max-entries" => {
                crate::store::limits::stream_node_max_entries().to_string()
            }
            "stream-node-max-bytes" => crate::store::limits::stream_node_max_bytes().to_string(),
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
    /// `loading`: the data is loading, and the settings of `DENY_LOADING` are refused, that
    /// error before any other found after it, as Redis gives it precedence.
    pub fn set_at_runtime(
        &mut self,
        pairs: &[(&str, &str)],
        loading: bool,
    ) -> Result<Replaced, (String, ConfigError)> {
        let mut unknown: Option<&str> = None;
        let mut deny_loading: Option<&str> = None;
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            let Some(s) = lookup(name) else {
                unknown.get_or_insert(name);
                continue;
            };
            if unknown.is_some() {
                continue;
            }
            // Setting a fixed one to the value it has changes nothing, so it is no error:
            // Redis's tests set every setting CONFIG GET lists back to its own value, and
            // some that Redis can change at run time (port, bind) rudis cannot. Redis's own
            // immutable ones stay refused, as Redis refuses them.
            if !s.mutable()
                && (REDIS_IMMUTABLE.contains(&s.name())
                    || self.get(name).as_deref() != Some(*value))
            {
                if let Some(first) = deny_loading {
                    return Err((first.to_string(), ConfigError::Loading));
                }
                return Err((name.to_string(), ConfigError::Immutable(s.name().into())));
            }
            if loading && DENY_LOADING.contains(&s.name()) {
                deny_loading.get_or_insert(name);
            }
            // By the name given: Redis 7.0 takes a setting and its alias in one call, in
            // order.
            if seen.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err((name.to_string(), bad(s.name(), "", "duplicate parameter")));
            }
            seen.push(name);
        }
        if let Some(name) = deny_loading {
            return Err((name.to_string(), ConfigError::Loading));
        }
        if let Some(name) = unknown {
            return Err((name.to_string(), ConfigError::UnknownSetting(name.into())));
        }
        // The encoding limits live outside the Config (process-wide, read by the types): a
        // failed CONFIG SET puts back those it had already changed.
        let saved: Vec<(&'static str, String)> = pairs
            .iter()
            .filter_map(|(n, _)| find_setting(n))
            .filter(|s| PROCESS_WIDE.contains(&s.name))
            .filter_map(|s| Some((s.name, self.get(s.name)?)))
            .collect();
        let mut next = self.clone();
        let result = pairs
            .iter()
            .try_for_each(|(name, value)| next.set(name, value).map_err(|e| (name.to_string(), e)))
            .and_then(|()| next.check().map_err(|e| ("save".to_string(), e)));
        if let Err(e) = result {
            next.put_back(saved);
            return Err(e);
        }
        *self = next;
        Ok(Replaced(saved))
    }

    /// Undoes a CONFIG SET that `set_at_runtime` took but whose effects outside the Config
    /// could not all be applied (a port not listened on): the Config as `before`, and the
    /// process-wide values it `replaced`.
    pub fn restore(&mut self, before: Config, replaced: Replaced) {
        *self = before;
        self.put_back(replaced.0);
    }

    fn put_back(&mut self, saved: Vec<(&'static str, String)>) {
        for (name, value) in saved {
            // A value CONFIG GET gave back is one `set` takes.
            let _ = self.set(name, &value);
        }
    }

    pub fn aof_path(&self) -> PathBuf {
        self.dir.join(&self.appendfilename)
    }

    /// Builds the configuration from the command line: defaults, then the config file if one
    /// is given, then the flags, then Redis-style `--name value...` options, as Redis
    /// appends its command-line options to the file.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        // One loader for the file and what follows it: a `save` there adds to the file's
        // (Redis appends its command line to the file's text).
        let mut loader = Loader::default();
        if let Some(path) = &cli.config_file {
            loader.file(&mut c, path, 0)?;
            c.config_file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
        }
        for (name, value) in cli.overrides() {
            if name == "save" {
                let words = ["save".to_string(), value];
                let line = format!("save {}", quote(&words[1]));
                loader.directive(&mut c, &words, &line, 0, 0)?;
            } else {
                c.set(name, &value)?;
            }
        }
        for (i, words) in cli.directives.iter().enumerate() {
            // As Redis shows the command line's options: the name, then each value quoted.
            let line = std::iter::once(words[0].clone())
                .chain(words[1..].iter().map(|w| repr(w)))
                .collect::<Vec<_>>()
                .join(" ");
            loader.directive(&mut c, words, &line, i + 1, 0)?;
        }
        c.check().map_err(|e| ConfigError::Startup(e.reason()))?;
        Ok(c)
    }

    /// Reads redis.conf syntax: one directive per line, its words split as Redis splits them
    /// (double quotes with `\n`, `\xHH` escapes; single quotes), `#` comments, `include`.
    /// A directive Redis does not know, or one asking for what rudis lacks, stops start-up
    /// with Redis's FATAL CONFIG FILE ERROR.
    pub fn load_file(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        Loader::default().file(self, path, 0)
    }

    /// [`Config::load_file`] on text already read.
    pub fn load_text(&mut self, text: &str) -> Result<(), ConfigError> {
        Loader::default().text(self, text, 0)
    }

    /// Names the ignored directives given, in one line; None when there are none.
    pub fn ignored_warning(&self) -> Option<String> {
        if self.ignored_given.is_empty() {
            return None;
        }
        Some(format!(
            "rudis accepts but ignores these Redis directives (no effect here): {}",
            self.ignored_given.join(", ")
        ))
    }
}

/// The line CONFIG REWRITE puts before the settings it appends, as Redis does.
pub const REWRITE_SIGNATURE: &str = "# Generated by CONFIG REWRITE";

/// Directives a file may hold that are no setting; CONFIG REWRITE keeps their lines.
const FILE_DIRECTIVES: &[&str] = &["include", "rename-command", "loadmodule", "sentinel"];

/// String settings whose empty value Redis writes as `""` (the others it leaves out).
const EMPTY_IS_A_VALUE: &[&str] = &[
    "bind",
    "logfile",
    "aclfile",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "cluster-config-file",
    "syslog-ident",
    "ignore-warnings",
    "proc-title-template",
    "notify-keyspace-events",
];

/// Bytes as redis.conf writes them back: `64mb` when that is exact.
fn format_memory(n: i64) -> String {
    for (unit, size) in [("gb", 1i64 << 30), ("mb", 1 << 20), ("kb", 1 << 10)] {
        if n != 0 && n % size == 0 {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// One option's lines into the rewritten file (Redis's rewriteConfigRewriteLine): in the
/// places its lines had, then (when `force`) appended after the signature; places left over
/// are emptied.
fn place(
    lines: &mut Vec<String>,
    mut slots: std::collections::VecDeque<usize>,
    new: Vec<String>,
    force: bool,
    needs_signature: &mut bool,
) {
    for new in new {
        if let Some(at) = slots.pop_front() {
            lines[at] = new;
        } else if force {
            if *needs_signature {
                lines.push(REWRITE_SIGNATURE.into());
                *needs_signature = false;
            }
            lines.push(new);
        }
    }
    for orphan in slots {
        lines[orphan].clear();
    }
}

impl Config {
    /// The lines CONFIG REWRITE writes for one setting (by its own name).
    fn rewrite_lines(&self, entry: Entry) -> Vec<String> {
        let name = entry.name();
        let value = self.get(name).unwrap_or_default();
        let kind = match entry {
            Entry::Own(s) => s.kind,
            Entry::Other(o) => o.kind,
        };
        match name {
            "save" if value.is_empty() => vec!["save \"\"".into()],
            "save" => value
                .split_whitespace()
                .collect::<Vec<_>>()
                .chunks(2)
                .map(|p| format!("save {}", p.join(" ")))
                .collect(),
            "client-output-buffer-limit" => OUTPUT_CLASSES
                .iter()
                .zip(&self.client_output_buffer_limit)
                .map(|(c, l)| {
                    format!(
                        "{name} {c} {} {} {}",
                        format_memory(l.hard as i64),
                        format_memory(l.soft as i64),
                        l.soft_seconds
                    )
                })
                .collect(),
            "dir" => vec![format!("dir {}", repr(&value))],
            _ if entry.multi() => {
                if value.is_empty() && EMPTY_IS_A_VALUE.contains(&name) {
                    vec![format!("{name} \"\"")]
                } else if value.is_empty() {
                    Vec::new()
                } else {
                    vec![format!("{name} {value}")]
                }
            }
            _ => match kind {
                Kind::Memory | Kind::MemoryIn { .. } => {
                    vec![format!(
                        "{name} {}",
                        format_memory(value.parse().unwrap_or(0))
                    )]
                }
                Kind::Str if value.is_empty() && !EMPTY_IS_A_VALUE.contains(&name) => Vec::new(),
                Kind::Str => vec![format!("{name} {}", repr(&value))],
                _ => vec![format!("{name} {value}")],
            },
        }
    }

    /// CONFIG REWRITE: `old` (the file as it is) with every setting's lines replaced in
    /// place, comments and unknown lines kept, lines of a setting left over removed, and
    /// settings not in the file appended after [`REWRITE_SIGNATURE`] when they differ
    /// from the default (as Redis's rewriteConfig). `users` are the ACL users as ACL LIST
    /// describes them, without `user `: written as `user` lines unless an aclfile holds them
    /// (then the file's `user` lines go), as Redis's rewriteConfigUserOption. `force_all`
    /// writes every setting, defaults too (DEBUG CONFIG-REWRITE-FORCE-ALL).
    pub fn rewritten(&self, old: &str, users: &[String], force_all: bool) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut slots: std::collections::HashMap<&'static str, std::collections::VecDeque<usize>> =
            Default::default();
        let mut user_slots = std::collections::VecDeque::new();
        let mut needs_signature = true;
        let old = old.strip_suffix('\n').unwrap_or(old);
        for raw in old.split('\n').filter(|_| !old.is_empty()) {
            let line = raw.trim_matches(|ch| matches!(ch, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() || line.starts_with('#') {
                needs_signature &= line != REWRITE_SIGNATURE;
                lines.push(line.to_string());
                continue;
            }
            let words = split_args(line).unwrap_or_default();
            let Some(first) = words.first().map(|w| w.to_ascii_lowercase()) else {
                lines.push(format!("# ??? {line}"));
                continue;
            };
            if let Some(entry) = lookup(&first) {
                slots
                    .entry(entry.name())
                    .or_default()
                    .push_back(lines.len());
            } else if first == "user" {
                user_slots.push_back(lines.len());
            } else if !FILE_DIRECTIVES.contains(&first.as_str()) {
                lines.push(format!("# ??? {line}"));
                continue;
            }
            lines.push(line.to_string());
        }
        let entries = SETTINGS
            .iter()
            .map(Entry::Own)
            .chain(REDIS_ONLY.iter().map(Entry::Other));
        for entry in entries {
            let name = entry.name();
            // `dir` and `save` always, as Redis's rewriteConfigDirOption and
            // rewriteConfigSaveOption force theirs (a default save replaces a file's own).
            let force = force_all
                || name == "dir"
                || name == "save"
                || self.get(name) != default_value(name);
            let mine = slots.remove(name).unwrap_or_default();
            let new = self.rewrite_lines(entry);
            place(&mut lines, mine, new, force, &mut needs_signature);
        }
        let aclfile = self.get("aclfile").unwrap_or_default();
        let users = if aclfile.is_empty() { users } else { &[] };
        let new = users.iter().map(|u| format!("user {u}")).collect();
        place(&mut lines, user_slots, new, true, &mut needs_signature);
        let mut out = String::new();
        let mut was_empty = false;
        for l in &lines {
            if l.is_empty() && was_empty {
                continue;
            }
            was_empty = l.is_empty();
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// Writes [`Config::rewritten`] over the config file the server started with: to a
    /// temporary file beside it, synced, then renamed over it.
    pub fn rewrite_file(&self, users: &[String], force_all: bool) -> Result<(), ConfigError> {
        let Some(path) = &self.config_file else {
            return Err(ConfigError::Startup(
                "The server is running without a config file".into(),
            ));
        };
        let old = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(ConfigError::Io(format!("Rewriting config file: {e}"))),
        };
        let text = self.rewritten(&old, users, force_all);
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ConfigError::Io(format!("Rewriting config file: {e}"))
        })
    }
}

/// How deep `include` may nest: beyond this a file surely includes itself.
const MAX_INCLUDE_DEPTH: usize = 16;

/// One pass over config files: what it has seen, for directives that accumulate.
#[derive(Default)]
struct Loader {
    /// The first `save` line replaces the default, later ones add to it (as Redis 7).
    save_seen: bool,
}

impl Loader {
    fn file(
        &mut self,
        c: &mut Config,
        path: &std::path::Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let text = std::fs::read(path).map_err(|e| {
            ConfigError::Startup(format!(
                "Fatal error, can't open config file '{}': {e}",
                path.display()
            ))
        })?;
        self.text(c, &String::from_utf8_lossy(&text), depth)
    }

    fn text(&mut self, c: &mut Config, text: &str, depth: usize) -> Result<(), ConfigError> {
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches(|ch| matches!(ch, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(words) = split_args(line) else {
                return Err(file_error(
                    i + 1,
                    line,
                    "Unbalanced quotes in configuration line",
                ));
            };
            if words.is_empty() {
                continue;
            }
            self.directive(c, &words, line, i + 1, depth)?;
        }
        Ok(())
    }

    fn directive(
        &mut self,
        c: &mut Config,
        words: &[String],
        line: &str,
        at: usize,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let fail = |reason: &str| Err(file_error(at, line, reason));
        let name = words[0].to_ascii_lowercase();
        let values = &words[1..];
        if let Some(entry) = lookup(&name) {
            if !entry.multi() && values.len() != 1 {
                return fail("wrong number of arguments");
            }
            // One word holding several is split, as Redis does for `--save "60 1"`.
            let mut value = values.join(" ");
            if entry.name() == "save" && self.save_seen && !value.is_empty() {
                value = format!("{} {value}", c.save);
            }
            if entry.name() == "save" {
                self.save_seen = true;
            }
            if let Err(e) = c.set(&name, &value) {
                return fail(&e.reason());
            }
            if let Entry::Other(o) = entry {
                if o.status == Status::Ignored && !c.ignored_given.contains(&o.name) {
                    c.ignored_given.push(o.name);
                }
            }
            return Ok(());
        }
        if name == "include" && values.len() == 1 {
            if depth >= MAX_INCLUDE_DEPTH {
                return fail("include nested too deep");
            }
            return self.file(c, std::path::Path::new(&values[0]), depth + 1);
        }
        if name == "user" && !values.is_empty() {
            if c.acl_users.iter().any(|u| u[0] == values[0]) {
                return fail(&format!(
                    "Error in user declaration '{}': Duplicate user found. A user can only be \
                     defined once in config files",
                    values[0]
                ));
            }
            crate::acl::file::check_user_line(values).map_err(|e| file_error(at, line, &e))?;
            c.acl_users.push(values.to_vec());
            return Ok(());
        }
        if name == "rename-command" && values.len() == 2 {
            c.renames.push(Rename {
                at,
                line: line.to_string(),
                from: values[0].clone(),
                to: values[1].clone(),
            });
            return Ok(());
        }
        if let Some((_, what)) = FILE_ONLY_REFUSED.iter().find(|(n, _)| *n == name) {
            return fail(&format!(
                "'{name}' asks for {what}, which rudis does not have"
            ));
        }
        if name.contains('.') {
            return fail(&format!(
                "'{name}' is a module's setting, and rudis has no modules"
            ));
        }
        if DEPRECATED.contains(&name.as_str()) && values.len() == 1 {
            return Ok(());
        }
        fail("Bad directive or wrong number of arguments")
    }
}

/// A config file problem, as Redis reports it before exiting.
fn file_error(line: usize, text: &str, reason: &str) -> ConfigError {
    ConfigError::File {
        line,
        text: text.to_string(),
        reason: reason.to_string(),
    }
}

/// A word as redis.conf may hold it: bare when that reads back the same, else quoted as
/// Redis's `sdscatrepr` quotes.
pub fn quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'));
    if plain {
        return w.to_string();
    }
    repr(w)
}

/// `sdscatrepr`: always quoted, escapes for quotes, backslashes and bytes outside print.
pub fn repr(w: &str) -> String {
    let mut out = String::from("\"");
    for b in w.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// Splits a line into words as Redis's `sdssplitargs` (see `resp::parse::split_args`).
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let words = crate::resp::parse::split_args(line.as_bytes())?;
    Some(
        words
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect(),
    )
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
    /// Addresses to listen on, space separated; a leading `-` marks one optional.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Worker threads serving the clients.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Most clients connected at once; one more is refused with "max number of clients
    /// reached". Lowered at start when the open files limit cannot cover it.
    #[arg(long, value_name = "N")]
    pub maxclients: Option<u64>,
    /// Directory the AOF lives in.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Log every write to the append-only file and replay it at start (yes|no).
    #[arg(long, value_name = "yes|no")]
    pub appendonly: Option<String>,
    /// Name of the append-only file inside --dir.
    #[arg(long, value_name = "NAME")]
    pub appendfilename: Option<String>,
    /// Write the AOF as Redis 7 does, in --dir's appendonlydir/ (a manifest, a base and incr
    /// files), rather than as one file (yes|no). A start on such a directory keeps it anyway.
    #[arg(long, value_name = "yes|no")]
    pub aof_multi_part: Option<String>,
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
    /// Redis's RDB snapshot schedule ("seconds changes" pairs, "" for none). rudis takes no
    /// snapshots, so a schedule is accepted only with appendonly yes.
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
    /// `<class> <hard> <soft> <seconds>` (normal, pubsub): close a client whose pending
    /// replies pass the hard limit, or stay above the soft one that long.
    #[arg(long, value_name = "LIMITS")]
    pub client_output_buffer_limit: Option<String>,
    /// Keyspace event classes to publish, in Redis's letters (KEA, Ex, ...).
    #[arg(long, value_name = "CLASSES")]
    pub notify_keyspace_events: Option<String>,
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
    /// Redis-style `--name value...` options for any other directive, applied after the
    /// file in order (see [`Cli::parse_redis_style`]).
    #[arg(skip)]
    pub directives: Vec<Vec<String>>,
}

impl Cli {
    /// Parses the command line as Redis does (`rudis-server [file] [--name value...]...`,
    /// each option's values running to the next `--`), handing the flags clap knows, with
    /// one value, to clap and keeping the others as directives.
    pub fn parse_redis_style(args: impl IntoIterator<Item = String>) -> Cli {
        use clap::CommandFactory;
        let known: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        let mut args = args.into_iter();
        let mut for_clap: Vec<String> = args.next().into_iter().collect();
        let mut directives: Vec<Vec<String>> = Vec::new();
        let mut rest: Vec<String> = args.collect();
        if rest
            .iter()
            .any(|a| matches!(a.as_str(), "-h" | "--help" | "-V" | "--version"))
        {
            for_clap.append(&mut rest);
            return Cli::parse_from(for_clap);
        }
        // As Redis's main(): a config file only first; then each `--name` starts an option
        // whose values run to the next `--name`, except that the argument right after a bare
        // name is its value whatever it looks like (`--port --bla` sets port to "--bla"),
        // and a bare `--save` before another option (or last) is `save ""`. `--name value`
        // in one argument is the name and its value.
        let mut options: Vec<Vec<String>> = Vec::new();
        let mut start = 0;
        if rest.first().is_some_and(|a| !a.starts_with('-')) {
            for_clap.push(rest[0].clone());
            start = 1;
        }
        let mut handled_last = true;
        for (j, arg) in rest.iter().enumerate().skip(start) {
            if handled_last && arg.starts_with("--") {
                // Split as Redis's sdssplitargs splits it (quotes taken off).
                let mut option: Vec<String> = split_args(&arg[2..])
                    .unwrap_or_else(|| arg[2..].split_whitespace().map(str::to_string).collect());
                if option.is_empty() {
                    option.push(String::new());
                }
                if option.len() == 1 {
                    handled_last = false;
                    let next_is_option = rest.get(j + 1).is_some_and(|n| n.starts_with("--"));
                    let last = j + 1 == rest.len();
                    if option[0] == "save" && (next_is_option || last) {
                        option.push(String::new());
                        handled_last = !last;
                    } else if option[0] == "sentinel" && next_is_option {
                        handled_last = true;
                    }
                } else {
                    handled_last = true;
                }
                options.push(option);
            } else {
                match options.last_mut() {
                    Some(o) => o.push(arg.clone()),
                    // Words before any option make a line of their own, as Redis joins them:
                    // `rudis-server f.conf loglevel verbose` sets loglevel.
                    None => options.push(vec![arg.clone()]),
                }
                handled_last = true;
            }
        }
        for mut option in options {
            let name = option.remove(0);
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (name, None),
            };
            let mut values: Vec<String> = inline.into_iter().chain(option).collect();
            // (A value that looks like a flag to clap is the loader's to judge.)
            if known.contains(&name) && values.len() == 1 && !values[0].starts_with('-') {
                for_clap.push(format!("--{name}"));
                for_clap.append(&mut values);
            } else {
                directives.push(std::iter::once(name).chain(values).collect());
            }
        }
        let mut cli = Cli::parse_from(for_clap);
        cli.directives = directives;
        cli
    }

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
        put("maxclients", self.maxclients.map(|w| w.to_string()));
        put("dir", self.dir.as_ref().map(|d| d.display().to_string()));
        put("appendonly", self.appendonly.clone());
        put("appendfilename", self.appendfilename.clone());
        put("aof-multi-part", self.aof_multi_part.clone());
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
        put(
            "notify-keyspace-events",
            self.notify_keyspace_events.clone(),
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
            .set_at_runtime(&[("timeout", "5"), ("databases", "1")], false)
            .unwrap_err();
        assert_eq!(err.1.reason(), "can't set immutable config");
        assert_eq!(c.timeout, 0, "nothing applied when one pair fails");
        let _ = c
            .set_at_runtime(&[("timeout", "5"), ("LOGLEVEL", "debug")], false)
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
        )
        .unwrap();
        assert_eq!((c.port, c.appendfsync), (7001, FsyncPolicy::Always));
        assert_eq!(c.bind, "127.0.0.1 -::1");
        let err = c.load_text("port 1\nfrobnicate yes\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n\
             Reading the configuration file, at line 2\n>>> 'frobnicate yes'\n\
             Bad directive or wrong number of arguments"
        );
        let reason = |r: Result<(), ConfigError>| match r.unwrap_err() {
            ConfigError::File { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(c.load_text("port 1 2\n")),
            "wrong number of arguments"
        );
        assert_eq!(reason(c.load_text("port\n")), "wrong number of arguments");
        c.load_text("rename-command FLUSHALL \"\"\n").unwrap();
        assert_eq!(
            (c.renames[0].from.as_str(), c.renames[0].to.as_str()),
            ("FLUSHALL", "")
        );
        assert!(reason(c.load_text("cluster-enabled yes\n")).contains("cluster mode"));
        assert!(reason(c.load_text("mymodule.opt 1\n")).contains("modules"));
        // At its default a refused directive asks for nothing.
        c.load_text("cluster-enabled no\ntls-port 0\nmaxmemory 0\nreplicaof \"\"\n")
            .unwrap();
        assert!(c.ignored_given.is_empty());
        // (Not an encoding limit that rudis applies: those are process-wide, and other tests
        // in this process build hashes.)
        c.load_text("tcp-keepalive 60\nactiverehashing no\nhz 10\nhz 20\n")
            .unwrap();
        assert_eq!(c.ignored_given, ["activerehashing", "hz"]);
        assert_eq!(c.get("activerehashing").unwrap(), "no");
        assert_eq!(c.get("ACTIVEREHASHING").unwrap(), "no");
        assert_eq!(c.get("hz").unwrap(), "20");
        assert_eq!(c.get("tcp-keepalive").unwrap(), "60");
    }

    #[test]
    fn values_redis_rewrites() {
        let mut c = Config::default();
        let mut got = |name: &str, v: &str| {
            c.set(name, v).map_err(|e| e.reason())?;
            Ok::<_, String>(c.get(name).unwrap())
        };
        // notify-keyspace-events: see notify::events.
        assert_eq!(
            got("latency-tracking-info-percentiles", "50 99.90 100").unwrap(),
            "50 99.9 100"
        );
        assert!(got("latency-tracking-info-percentiles", "101").is_err());
        assert_eq!(
            got("oom-score-adj-values", "0 200 800").unwrap(),
            "0 200 800"
        );
        assert!(got("oom-score-adj-values", "0 200").is_err());
        assert_eq!(
            got("shutdown-on-sigterm", "NOSAVE now").unwrap(),
            "nosave now"
        );
        assert!(got("shutdown-on-sigterm", "later").is_err());
        assert_eq!(
            got("shutdown-on-sigint", "nosave force now").unwrap(),
            "nosave now force"
        );
        assert_eq!(got("shutdown-on-sigint", "default").unwrap(), "default");
    }

    #[test]
    fn include_reads_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("inner.conf");
        std::fs::write(&inner, "timeout 42\n").unwrap();
        let mut c = Config::default();
        c.load_text(&format!("include {}\nport 7002\n", inner.display()))
            .unwrap();
        assert_eq!((c.timeout, c.port), (42, 7002));
        // Including itself ends, with an error, rather than recursing forever.
        let own = dir.path().join("self.conf");
        std::fs::write(&own, format!("include {}\n", own.display())).unwrap();
        assert!(c.load_file(&own).is_err());
    }

    #[test]
    fn save_lines_accumulate() {
        let mut c = Config::default();
        assert_eq!(c.save, "3600 1 300 100 60 10000");
        c.load_text("save 900 1\nsave 60 10000\n").unwrap();
        assert_eq!(c.save, "900 1 60 10000");
        c.appendonly = false;
        c.check().unwrap();
        assert!(c.set("save", "1 2 3").is_err());
    }

    #[test]
    fn redis_style_options_after_the_file() {
        let args = [
            "rudis-server",
            "f.conf",
            "--port",
            "7000",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--hz",
            "20",
            "--save",
            "",
        ];
        let cli = Cli::parse_redis_style(args.iter().map(|s| s.to_string()));
        assert_eq!(cli.config_file, Some(PathBuf::from("f.conf")));
        assert_eq!(cli.port, Some(7000));
        assert_eq!(
            cli.directives,
            vec![
                vec!["bind".to_string(), "127.0.0.1".into(), "-::1".into()],
                vec!["hz".to_string(), "20".into()]
            ]
        );
        assert_eq!(cli.save.as_deref(), Some(""));
        // As Redis: a file name only first; later, a word is the option's value.
        let args = ["rudis-server", "--port", "7000", "f.conf", "--dir", "d"];
        let cli = Cli::parse_redis_style(args.iter().map(|s| s.to_string()));
        assert_eq!(cli.config_file, None);
        assert_eq!(
            cli.directives,
            vec![vec!["port".to_string(), "7000".into(), "f.conf".into()]]
        );
        // A bare name takes the next argument, `--` or not; a bare --save before another
        // option is an empty one.
        let args = ["rudis-server", "--port", "--bla", "--save", "--dir", "d"];
        let cli = Cli::parse_redis_style(args.iter().map(|s| s.to_string()));
        assert_eq!(cli.save.as_deref(), Some(""));
        assert_eq!(cli.dir, Some(PathBuf::from("d")));
        assert_eq!(
            cli.directives,
            vec![vec!["port".to_string(), "--bla".into()]]
        );
    }

    /// As Redis appends its command line to the file's text: a `save` given there adds to
    /// the file's, an empty one resets them.
    #[test]
    fn save_on_the_command_line_adds_to_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("r.conf");
        std::fs::write(&conf, "save 900 1\n").unwrap();
        let path = conf.to_str().unwrap().to_string();
        let with = |extra: &[&str]| {
            let args = ["rudis-server", path.as_str()]
                .into_iter()
                .chain(extra.iter().copied());
            let cli = Cli::parse_redis_style(args.map(String::from));
            Config::from_cli(&cli).unwrap().save
        };
        assert_eq!(with(&[]), "900 1");
        assert_eq!(with(&["--save", "100 100"]), "900 1 100 100");
        assert_eq!(with(&["--save", ""]), "");
        assert_eq!(Config::default().save, "3600 1 300 100 60 10000");
    }

    /// A default save replaces the file's own lines, as Redis's rewriteConfigSaveOption
    /// always writes save (Redis's unit/introspection "CONFIG REWRITE handles save").
    #[test]
    fn a_rewrite_writes_a_default_save_over_the_files() {
        let c = Config::default();
        let out = c.rewritten("port 7000\nsave 900 1\n", &[], false);
        let saves: Vec<&str> = out.lines().filter(|l| l.starts_with("save")).collect();
        assert_eq!(
            saves,
            ["save 3600 1", "save 300 100", "save 60 10000"],
            "{out}"
        );
        let mut back = Config::default();
        back.load_text(&out).unwrap();
        assert_eq!(back.save, c.save);
    }

    /// DEBUG CONFIG-REWRITE-FORCE-ALL writes every setting, defaults too, and the file reads
    /// back to the same settings.
    #[test]
    fn a_forced_rewrite_writes_every_setting() {
        let c = Config::default();
        let out = c.rewritten("", &[], true);
        for name in ["port", "hz", "maxmemory-policy", "appendonly", "save"] {
            assert!(
                out.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{name}: {out}"
            );
        }
        let mut back = Config::default();
        back.load_text(&out).unwrap();
        for name in [
            "port",
            "hz",
            "maxmemory-policy",
            "save",
            "busy-reply-threshold",
        ] {
            assert_eq!(back.get(name), c.get(name), "{name}");
        }
    }

    #[test]
    fn rewrite_keeps_comments_and_appends_what_changed() {
        let mut c = Config::default();
        let old = "# top\nport 6379\n\n\n# save\nsave 900 1\nsave 60 5\nslaveof \"\"\nfrob x\n";
        c.load_text(old).unwrap_err();
        c.set("port", "7000").unwrap();
        c.set("save", "100 1").unwrap();
        c.set("hz", "50").unwrap();
        c.set("maxmemory-policy", "allkeys-lru").unwrap();
        let out = c.rewritten(old, &[], false);
        let dir = std::env::current_dir().unwrap().display().to_string();
        assert_eq!(
            out,
            format!(
                "# top\nport 7000\n\n# save\nsave 100 1\n\n# ??? frob x\n{REWRITE_SIGNATURE}\n\
                 dir \"{dir}\"\nmaxmemory-policy allkeys-lru\nhz 50\n"
            )
        );
        let mut back = Config::default();
        back.load_text(&out.replace("# ??? ", "# ")).unwrap();
        assert_eq!(back.get("hz").unwrap(), "50");
        assert_eq!((back.port, back.save.as_str()), (7000, "100 1"));
    }

    #[test]
    fn rewrite_writes_the_users_unless_an_aclfile_holds_them() {
        // Only the user lines are compared: other tests change process-wide settings.
        let mut c = Config::default();
        let old = "user alice on nopass ~* +@all\n# c\nuser bob off\n";
        let users = [
            "alice on nopass ~a* resetchannels -@all".to_string(),
            "default on nopass ~* &* +@all".into(),
            "zed off resetchannels -@all".into(),
        ];
        let out = c.rewritten(old, &users, false);
        let head: Vec<&str> = out.lines().take(3).collect();
        assert_eq!(
            head,
            [
                "user alice on nopass ~a* resetchannels -@all",
                "# c",
                "user default on nopass ~* &* +@all",
            ]
        );
        let users_out: Vec<&str> = out.lines().filter(|l| l.starts_with("user ")).collect();
        assert_eq!(users_out.len(), 3, "{out}");
        assert_eq!(users_out[2], "user zed off resetchannels -@all");
        let signature = out.find(REWRITE_SIGNATURE).unwrap();
        assert!(out.find("user zed").unwrap() > signature, "{out}");
        c.set("aclfile", "/tmp/users.acl").unwrap();
        let out = c.rewritten(old, &users, false);
        assert!(!out.contains("user "), "{out}");
    }

    #[test]
    fn every_redis_setting_reads_back_its_default() {
        let mut c = Config::default();
        for o in REDIS_ONLY {
            c.set(o.name, o.default)
                .unwrap_or_else(|e| panic!("{}: {e}", o.name));
            assert_eq!(c.get(o.name).unwrap(), o.default, "{}", o.name);
            if let Some(a) = o.alias {
                assert_eq!(c.get(a).unwrap(), o.default);
            }
        }
        assert_eq!(format_memory(64 << 20), "64mb");
        assert_eq!(format_memory(4096), "4kb");
        assert_eq!(format_memory(1000), "1000");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("x"), "x");
    }
}
