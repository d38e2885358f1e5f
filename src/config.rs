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

    /// The env_logger filter this level stands for.
    pub fn filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "info",
            LogLevel::Notice => "info",
            LogLevel::Warning => "warn",
        }
    }
}

/// A setting could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    UnknownSetting(String),
    BadValue {
        name: String,
        value: String,
    },
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
            ConfigError::BadValue { name, value } => {
                write!(f, "invalid value '{value}' for setting '{name}'")
            }
            ConfigError::File { path, line, reason } => {
                write!(f, "{path}:{line}: {reason}")
            }
            ConfigError::Io(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
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
        }
    }
}

fn yes_no(name: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(bad(name, v)),
    }
}

fn bad(name: &str, v: &str) -> ConfigError {
    ConfigError::BadValue {
        name: name.into(),
        value: v.into(),
    }
}

/// A byte count as redis.conf writes it: `64mb`, `1gb`, `100k` (k = 1000, kb = 1024).
pub fn parse_memory(name: &str, v: &str) -> Result<u64, ConfigError> {
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
        _ => return Err(bad(name, v)),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| bad(name, v))
}

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ConfigError> {
    v.parse().map_err(|_| bad(name, v))
}

impl Config {
    /// Every setting's name, in the order CONFIG GET * lists them.
    pub const NAMES: &'static [&'static str] = &[
        "port",
        "bind",
        "workers",
        "dir",
        "appendonly",
        "appendfilename",
        "appendfsync",
        "loglevel",
        "databases",
        "auto-aof-rewrite-percentage",
        "auto-aof-rewrite-min-size",
    ];

    /// Applies one setting by its redis.conf name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let name = name.to_ascii_lowercase();
        let n = name.as_str();
        match n {
            "port" => self.port = num(n, value)?,
            "bind" => self.bind = value.split_whitespace().next().unwrap_or("").to_string(),
            "workers" => {
                self.workers = num(n, value)?;
                if self.workers == 0 {
                    return Err(bad(n, value));
                }
            }
            "dir" => self.dir = PathBuf::from(value),
            "appendonly" => self.appendonly = yes_no(n, value)?,
            "appendfilename" => {
                if value.is_empty() || value.contains('/') {
                    return Err(bad(n, value));
                }
                self.appendfilename = value.into()
            }
            "appendfsync" => {
                self.appendfsync = match value.to_ascii_lowercase().as_str() {
                    "always" => FsyncPolicy::Always,
                    "everysec" => FsyncPolicy::EverySec,
                    "no" => FsyncPolicy::No,
                    _ => return Err(bad(n, value)),
                }
            }
            "loglevel" => {
                self.loglevel = match value.to_ascii_lowercase().as_str() {
                    "debug" => LogLevel::Debug,
                    "verbose" => LogLevel::Verbose,
                    "notice" => LogLevel::Notice,
                    "warning" => LogLevel::Warning,
                    _ => return Err(bad(n, value)),
                }
            }
            "databases" => {
                self.databases = num(n, value)?;
                if self.databases == 0 {
                    return Err(bad(n, value));
                }
            }
            "auto-aof-rewrite-percentage" => self.auto_aof_rewrite_percentage = num(n, value)?,
            "auto-aof-rewrite-min-size" => self.auto_aof_rewrite_min_size = parse_memory(n, value)?,
            _ => return Err(ConfigError::UnknownSetting(name)),
        }
        Ok(())
    }

    /// A setting's current value as CONFIG GET shows it.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "port" => self.port.to_string(),
            "bind" => self.bind.clone(),
            "workers" => self.workers.to_string(),
            "dir" => self.dir.display().to_string(),
            "appendonly" => if self.appendonly { "yes" } else { "no" }.into(),
            "appendfilename" => self.appendfilename.clone(),
            "appendfsync" => self.appendfsync.name().into(),
            "loglevel" => self.loglevel.name().into(),
            "databases" => self.databases.to_string(),
            "auto-aof-rewrite-percentage" => self.auto_aof_rewrite_percentage.to_string(),
            "auto-aof-rewrite-min-size" => self.auto_aof_rewrite_min_size.to_string(),
            _ => return None,
        })
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
        }
        for (name, value) in cli.overrides() {
            c.set(name, &value)?;
        }
        Ok(c)
    }

    /// Reads redis.conf syntax: `name value...` per line, `#` comments, quoted values.
    pub fn load_file(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io(format!("cannot read {}: {e}", path.display())))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let value = rest.trim().trim_matches('"');
            self.set(name, value).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                line: i + 1,
                reason: e.to_string(),
            })?;
        }
        Ok(())
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
        assert_eq!(parse_memory("x", "64mb"), Ok(64 * 1024 * 1024));
        assert_eq!(parse_memory("x", "1K"), Ok(1000));
        assert_eq!(parse_memory("x", "12"), Ok(12));
        assert!(parse_memory("x", "12q").is_err());
        assert!(parse_memory("x", "mb").is_err());
    }

    #[test]
    fn every_name_round_trips() {
        let mut c = Config::default();
        for n in Config::NAMES {
            let v = c.get(n).unwrap();
            c.set(n, &v).unwrap();
            assert_eq!(c.get(n).unwrap(), v);
        }
    }
}
