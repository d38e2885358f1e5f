//! What the table says of a command: its name, arity, flags, key positions and handler, and
//! for a container (CLIENT, CONFIG, COMMAND) its subcommands and help text. Every command's
//! spec is written one way, with `cmd!`; a container adds `.container(SUBCOMMANDS, HELP)`.

use smallvec::SmallVec;

use super::ctx::Ctx;
use super::error::CommandError;
use crate::shared::Shared;

/// A `CommandSpec` on one line: name, arity, flags, keys, handler.
macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $handler:expr) => {
        $crate::commands::CommandSpec::new($name, $arity, $flags, $keys, $handler)
    };
}

pub type Handler = fn(&mut Ctx, &[&[u8]]) -> Result<(), CommandError>;

/// For a `Keys::Custom` command run from database `db` with `argv`: the databases the key at
/// position `pos` is read or written in (COPY ... DB n, MOVE).
pub type KeyDbsFn = fn(shared: &Shared, db: usize, argv: &[&[u8]], pos: usize) -> KeyDbs;

/// A key's databases: one or two.
pub type KeyDbs = SmallVec<[usize; 2]>;

/// Command flags. Those in `NAMES` are Redis's, named as COMMAND INFO prints them; the others
/// are the dispatcher's own, for what Redis decides by comparing command procs.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const LOADING: u32 = 1 << 5;
    pub const STALE: u32 = 1 << 6;
    pub const FAST: u32 = 1 << 7;
    pub const NO_AUTH: u32 = 1 << 8;
    pub const NO_MULTI: u32 = 1 << 9;
    pub const ALLOW_BUSY: u32 = 1 << 10;
    /// The key positions depend on the arguments (`Keys::KeyNum`, COPY's and MOVE's databases).
    pub const MOVABLEKEYS: u32 = 1 << 11;
    /// May block the client (BLPOP ...).
    pub const BLOCKING: u32 = 1 << 12;
    pub const PUBSUB: u32 = 1 << 13;
    /// Refused while a replica loads its master's data asynchronously, in Redis; rudis loads
    /// it before serving, so only COMMAND INFO shows it.
    pub const NO_ASYNC_LOADING: u32 = 1 << 14;
    /// Not fed to MONITOR after it runs (EVAL and FCALL feed it before, then their commands).
    pub const SKIP_MONITOR: u32 = 1 << 15;
    /// Not in the slow log (EXEC: the commands it runs are).
    pub const SKIP_SLOWLOG: u32 = 1 << 16;
    /// May run with no keys though it declares them (EVAL ... 0).
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    /// Served by a cluster node importing the key's slot (RESTORE-ASKING); no cluster here.
    pub const ASKING: u32 = 1 << 18;

    /// Runs at once inside MULTI instead of being queued (EXEC, DISCARD, MULTI, WATCH, QUIT,
    /// RESET: Redis's list in `processCommand`).
    pub const NOT_QUEUED: u32 = 1 << 24;
    /// Runs the transaction: refused before it runs, it discards the transaction and answers
    /// EXECABORT (Redis's `rejectCommand` for `execCommand`).
    pub const RUNS_QUEUE: u32 = 1 << 25;
    /// Refused while persistence fails, though not a write (PING: so that monitoring notices,
    /// as Redis's `processCommand` does).
    pub const DISK_ERROR_REFUSES: u32 = 1 << 26;
    /// Moves the client to the database its first argument names (SELECT): inside EXEC, the
    /// commands after it are planned in that database.
    pub const SELECTS_DB: u32 = 1 << 27;
    /// Allowed to a RESP2 client in subscribed mode (Redis's list in `processCommand`: the
    /// subscribe family, PING, QUIT, RESET).
    pub const PUBSUB_CONTEXT: u32 = 1 << 28;
    /// Runs a script (EVAL, FCALL): it takes its own locks, as the script's flags and what it
    /// touches decide, and logs the script's effects, never itself (see `commands::script`).
    pub const RUNS_SCRIPT: u32 = 1 << 29;
    /// Redis's MAY_REPLICATE (which its 7.0 COMMAND INFO does not show): not a write, but may
    /// change a value and be logged (PFCOUNT caching its count). Takes write locks; its record
    /// is logged if it counted a change.
    pub const MAY_REPLICATE: u32 = 1 << 30;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// The key of a one-key command.
pub const KEY1: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

/// Every argument is a key.
pub const ALL_KEYS: Keys = Keys::Range {
    first: 1,
    last: -1,
    step: 1,
};

/// Which shards a command must hold while it runs.
#[derive(Clone, Copy)]
pub enum Keys {
    /// Touches no keys.
    None,
    /// Keys at argv positions first, first+step, ... up to last (negative: from the end), in the
    /// client's current database. Also what COMMAND INFO reports.
    Range { first: i32, last: i32, step: i32 },
    /// The whole current database (FLUSHDB, KEYS, SCAN, DBSIZE, RANDOMKEY).
    Db,
    /// Every database (FLUSHALL, SWAPDB).
    All,
    /// Keys counted by an argument, Redis's "keynum" key spec (LMPOP, SINTERCARD, ZUNION,
    /// EVAL): `argv[count]` says how many there are; they start at `first`, `step` apart.
    /// COMMAND INFO reports 0 0 0 for them, and the command carries `MOVABLEKEYS`. A count
    /// that is not a positive integer names no keys: the handler reports it.
    KeyNum { count: i32, first: i32, step: i32 },
    /// Keys at `range`'s positions, as `Range`, each in the databases `dbs` names for it
    /// (MOVE, COPY ... DB n).
    Custom {
        range: (i32, i32, i32),
        dbs: KeyDbsFn,
    },
    /// Keys at `range`'s positions, as `Range`, unless `whole_db` says the arguments reach
    /// keys not known before the command runs (SORT's BY/GET patterns, its STORE destination
    /// found by parsing): then the whole current database, as `Db`.
    /// `more_key` finds a key the range does not hold (STORE's destination), for COMMAND
    /// GETKEYS.
    Parsed {
        range: (i32, i32, i32),
        whole_db: fn(&[&[u8]]) -> bool,
        more_key: fn(&[&[u8]]) -> Option<usize>,
    },
    /// A destination key at 1, then keys as `KeyNum` (ZUNIONSTORE dst numkeys key ...): COMMAND
    /// INFO reports 1 1 1, as Redis's legacy range covers the destination only.
    DestKeyNum { count: i32, first: i32, step: i32 },
    /// XREAD and XREADGROUP: the first half of the arguments after STREAMS (Redis's
    /// xreadGetKeys); COMMAND INFO reports 0 0 0, and the command carries `MOVABLEKEYS`.
    Streams,
    /// MIGRATE: the key at 3, or with `KEYS` every argument after it (Redis's
    /// migrateGetKeys); COMMAND INFO reports 3 3 1, and the command carries `MOVABLEKEYS`.
    Migrate,
}

pub struct CommandSpec {
    /// Lower case; subcommands are `container|sub`.
    pub name: &'static str,
    /// As Redis counts it, the name included: `-3` means at least three words.
    pub arity: i32,
    pub flags: u32,
    pub keys: Keys,
    pub handler: Handler,
    /// A container's subcommands, named `container|sub` (empty for other commands).
    pub subcommands: &'static [CommandSpec],
    /// A container's `HELP` text, one status line per entry.
    pub help: &'static [&'static str],
}

/// The key flags of a command whose arguments decide them: as COMMAND GETKEYSANDFLAGS names
/// them, and whether they read (`access`) and write (an update) the key, as ACL checks them.
pub struct KeyFlags {
    pub words: &'static [&'static str],
    pub read: bool,
    pub write: bool,
}

impl CommandSpec {
    /// The key flags of a command whose key spec says `variable_flags` (SET, BITFIELD), which
    /// its arguments decide (Redis's setGetKeys and bitfieldGetKeys); None for the others.
    pub fn variable_key_flags(&self, argv: &[&[u8]]) -> Option<&'static KeyFlags> {
        match self.name {
            "set" => Some(super::string::set_key_flags(argv)),
            "bitfield" => Some(super::bitmap::bitfield_key_flags(argv)),
            _ => None,
        }
    }

    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: Keys,
        handler: Handler,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            keys,
            handler,
            subcommands: &[],
            help: &[],
        }
    }

    /// This command as a container of `subcommands`, answering `help` to `<NAME> HELP`.
    pub const fn container(
        self,
        subcommands: &'static [CommandSpec],
        help: &'static [&'static str],
    ) -> CommandSpec {
        CommandSpec {
            subcommands,
            help,
            ..self
        }
    }

    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }

    /// Takes write locks and may be logged: a write, or a read that may change a value.
    pub fn may_change(&self) -> bool {
        self.flags & (flags::WRITE | flags::MAY_REPLICATE) != 0
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    /// The (first, last, step) COMMAND INFO reports.
    pub fn key_range(&self) -> (i32, i32, i32) {
        match self.keys {
            Keys::Range { first, last, step } => (first, last, step),
            Keys::Custom { range, .. } | Keys::Parsed { range, .. } => range,
            Keys::DestKeyNum { .. } => (1, 1, 1),
            Keys::Migrate => (3, 3, 1),
            _ => (0, 0, 0),
        }
    }

    /// The argv positions of the keys in `argv`: what the lock plan, a write's expiry of its
    /// keys and COMMAND GETKEYS all use.
    pub fn key_positions(&self, argv: &[&[u8]]) -> KeyPositions {
        self.checked_key_positions(argv)
            .unwrap_or_else(|| KeyPositions::new((1, 0, 1), 0))
    }

    /// `key_positions`, or None when a keynum spec's count is not a positive integer or names
    /// more words than there are (COMMAND GETKEYS's "Invalid arguments").
    pub fn checked_key_positions(&self, argv: &[&[u8]]) -> Option<KeyPositions> {
        let argc = argv.len();
        Some(match self.keys {
            Keys::Range { first, last, step } => KeyPositions::new((first, last, step), argc),
            Keys::KeyNum { count, first, step } => KeyPositions::counted(argv, count, first, step)?,
            Keys::DestKeyNum { count, first, step } => KeyPositions {
                lead: 1,
                ..KeyPositions::counted(argv, count, first, step)?
            },
            Keys::Custom { range, .. } | Keys::Parsed { range, .. } => {
                KeyPositions::new(range, argc)
            }
            Keys::Streams => streams_keys(argv)?,
            Keys::Migrate => migrate_keys(argv),
            Keys::None | Keys::Db | Keys::All => KeyPositions::new((1, 0, 1), 0),
        })
    }

    /// True if the command names keys among its arguments (COMMAND GETKEYS refuses others).
    pub fn has_key_arguments(&self) -> bool {
        match self.keys {
            Keys::Range { first, .. } => first > 0,
            Keys::Custom { range, .. } | Keys::Parsed { range, .. } => range.0 > 0,
            Keys::KeyNum { .. } | Keys::DestKeyNum { .. } | Keys::Streams | Keys::Migrate => true,
            Keys::None | Keys::Db | Keys::All => false,
        }
    }

    /// The command `argv` runs: this container's subcommand `argv[1]` if it has one by that
    /// name (FUNCTION LOAD, CONFIG SET), else this command, as Redis's lookupCommand returns.
    pub fn resolve<'a>(&'a self, argv: &[&[u8]]) -> &'a CommandSpec {
        self.subcommand(argv).unwrap_or(self)
    }

    /// The subcommand `argv[1]` of this container, if it has one by that name.
    pub fn subcommand(&self, argv: &[&[u8]]) -> Option<&'static CommandSpec> {
        let sub = argv.get(1)?;
        let prefix = self.name.len() + 1;
        self.subcommands
            .iter()
            .find(|c| c.name.as_bytes()[prefix..].eq_ignore_ascii_case(sub))
    }
}

/// The keys of MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw]
/// [KEYS key...]: with KEYS (and an empty key) the arguments after it, else the key.
fn migrate_keys(argv: &[&[u8]]) -> KeyPositions {
    let mut i = 6;
    while i < argv.len() {
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"keys") {
            if !argv[3].is_empty() {
                return KeyPositions::new((1, 0, 1), 0);
            }
            return KeyPositions::new((i as i32 + 1, -1, 1), argv.len());
        }
        if a.eq_ignore_ascii_case(b"auth") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            i += 2;
        }
        i += 1;
    }
    KeyPositions::new((3, 3, 1), argv.len())
}

/// The keys of XREAD/XREADGROUP: after the options, STREAMS, then as many keys as IDs.
fn streams_keys(argv: &[&[u8]]) -> Option<KeyPositions> {
    let mut i = 1;
    let mut pos = None;
    while i < argv.len() {
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"block") || a.eq_ignore_ascii_case(b"count") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"group") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"noack") {
        } else if a.eq_ignore_ascii_case(b"streams") {
            pos = Some(i);
            break;
        } else {
            break;
        }
        i += 1;
    }
    let pos = pos?;
    let num = argv.len() - pos - 1;
    if num == 0 || !num.is_multiple_of(2) {
        return None;
    }
    let first = pos as i32 + 1;
    Some(KeyPositions::new(
        (first, first + (num / 2) as i32 - 1, 1),
        argv.len(),
    ))
}

/// What `CommandSpec::key_positions` returns: a plain loop, cheaper than a stepped range for
/// the one or two keys most commands have.
pub struct KeyPositions {
    /// A position before the progression (0: none): a destination key.
    lead: i32,
    next: i32,
    last: i32,
    step: i32,
}

impl KeyPositions {
    /// Positions first, first+step, ... up to last (negative: from the end) within `argc`;
    /// `first` is at least 1 (a key range's first key follows the command's name).
    #[inline]
    pub fn new((first, last, step): (i32, i32, i32), argc: usize) -> KeyPositions {
        let argc = argc as i32;
        let last = if last < 0 {
            argc + last
        } else {
            last.min(argc - 1)
        };
        KeyPositions {
            lead: 0,
            next: first,
            last: last.min(argc - 1),
            step: step.max(1),
        }
    }
}

impl KeyPositions {
    /// A keynum spec's positions: `argv[count]` keys from `first`, `step` apart; None unless
    /// that is a positive integer and they all are within argv.
    pub fn counted(argv: &[&[u8]], count: i32, first: i32, step: i32) -> Option<KeyPositions> {
        let n = std::str::from_utf8(argv.get(count as usize)?)
            .ok()?
            .parse::<i64>()
            .ok()
            .filter(|&n| n > 0)?;
        // Checked: a count near i64::MAX names no keys rather than overflowing.
        let last = (n - 1)
            .checked_mul(i64::from(step.max(1)))?
            .checked_add(i64::from(first))?;
        if last >= argv.len() as i64 {
            return None;
        }
        Some(KeyPositions::new((first, last as i32, step), argv.len()))
    }
}

impl Iterator for KeyPositions {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.lead > 0 {
            return Some(std::mem::take(&mut self.lead) as usize);
        }
        if self.next > self.last {
            return None;
        }
        let i = self.next;
        self.next += self.step;
        Some(i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_positions_follow_the_range() {
        let at = |range, argc| KeyPositions::new(range, argc).collect::<Vec<_>>();
        assert_eq!(at((1, 1, 1), 3), [1]);
        assert_eq!(at((1, -1, 1), 4), [1, 2, 3]);
        assert_eq!(at((1, -1, 2), 5), [1, 3]);
        assert_eq!(at((2, -1, 1), 2), Vec::<usize>::new());
        assert_eq!(at((1, 2, 1), 2), [1]);
        let none = CommandSpec::new("x", 1, 0, Keys::Db, |_, _| Ok(()));
        assert_eq!(none.key_positions(&[b"x", b"a", b"b"]).count(), 0);
        let lmpop = CommandSpec::new(
            "x",
            -4,
            flags::MOVABLEKEYS,
            Keys::KeyNum {
                count: 1,
                first: 2,
                step: 1,
            },
            |_, _| Ok(()),
        );
        let keys = |argv: &[&[u8]]| lmpop.key_positions(argv).collect::<Vec<_>>();
        assert_eq!(keys(&[b"lmpop", b"2", b"a", b"b", b"left"]), [2, 3]);
        assert_eq!(keys(&[b"lmpop", b"1", b"a", b"left"]), [2]);
        // As Redis counts them: the keys may run into the other arguments, not past the end.
        assert_eq!(keys(&[b"lmpop", b"3", b"a", b"b", b"left"]), [2, 3, 4]);
        for bad in [
            &b"0"[..],
            b"-1",
            b"x",
            b"99999999999",
            b"4",
            b"9223372036854775807",
        ] {
            let argv: &[&[u8]] = &[b"lmpop", bad, b"a", b"b", b"left"];
            assert!(keys(argv).is_empty());
            assert!(lmpop.checked_key_positions(argv).is_none());
        }
        assert!(lmpop.has_key_arguments());
        assert!(!none.has_key_arguments());
    }
}
