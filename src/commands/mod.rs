//! The command table and the dispatcher.
//!
//! The table is data: each command's arity, flags and key positions live in a `CommandSpec`, and
//! the dispatcher uses them for arity and unknown-command errors, for the locks a command needs,
//! and for AOF propagation. Handlers hold only the command's own logic, one file per data type.

/// A `CommandSpec` on one line: name, arity, flags, keys, handler.
macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $handler:expr) => {
        $crate::commands::CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            handler: $handler,
        }
    };
}

pub mod args;
pub mod ctx;
pub mod error;

pub mod bitmap;
pub mod client;
pub mod config;
pub mod connection;
pub mod debug;
pub mod docs;
pub mod expire;
pub mod hash;
pub mod info;
pub mod keys;
pub mod list;
pub mod persistence;
pub mod server;
pub mod string;
pub mod transaction;

use std::sync::OnceLock;

use smallvec::SmallVec;

pub use args::Args;
pub use ctx::Ctx;
use ctx::KnownKeys;
pub use error::CommandError;

use crate::client::Client;
use crate::resp::ReplyBuf;
use crate::shared::Shared;
use crate::store::{hash_key, Slot};

pub type Handler = fn(&mut Ctx, &[&[u8]]) -> Result<(), CommandError>;

/// The slots a command touches, from its arguments and the client's database.
pub type Slots = SmallVec<[Slot; 4]>;
pub type PlanFn = fn(&Shared, usize, &[&[u8]]) -> Result<Slots, CommandError>;

/// Command flags, named as COMMAND INFO prints them.
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

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOSCRIPT, "noscript"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
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
    /// Computed from the arguments (MOVE, COPY ... DB n): returns the slots, or an error to
    /// reply with. `range` is what COMMAND INFO reports.
    Custom {
        range: (i32, i32, i32),
        plan: PlanFn,
    },
}

pub struct CommandSpec {
    /// Lower case; subcommands are `container|sub`.
    pub name: &'static str,
    /// As Redis counts it, the name included: `-3` means at least three words.
    pub arity: i32,
    pub flags: u32,
    pub keys: Keys,
    pub handler: Handler,
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
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
            Keys::Custom { range, .. } => range,
            _ => (0, 0, 0),
        }
    }
}

/// Every command, from each module's own list.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    [
        connection::COMMANDS,
        client::COMMANDS,
        config::COMMANDS,
        info::COMMANDS,
        string::COMMANDS,
        bitmap::COMMANDS,
        hash::COMMANDS,
        list::COMMANDS,
        keys::COMMANDS,
        persistence::COMMANDS,
        expire::COMMANDS,
        server::COMMANDS,
        debug::COMMANDS,
        transaction::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// Looked up once per request, so built for that: a name is read as three words, and hashed
/// and compared word by word with ASCII case folded by a mask, with no copy, no lowercasing
/// pass and no byte loop to compare (a general map needs a lowercased copy and a full hash of
/// it, several times the cost). Open addressing, at most a quarter full.
struct Table {
    slots: Box<[Option<Entry>]>,
    /// 64 minus log2 of the table's size: the hash's top bits pick the slot.
    shift: u32,
}

#[derive(Clone, Copy)]
struct Entry {
    spec: &'static CommandSpec,
    /// The name (lower case), zero padded.
    words: [u64; 3],
    /// 0x20 on the name's letters: an input byte matches a letter with or without it.
    folds: [u64; 3],
}

/// The longest name the table can hold (the longest today is 18 bytes).
const MAX_NAME: usize = 24;

/// `name` (at most `MAX_NAME` bytes) as three little-endian words, zero padded.
fn name_words(name: &[u8]) -> [u64; 3] {
    let mut w = [0u64; 3];
    for (i, &b) in name.iter().enumerate() {
        w[i / 8] |= (b as u64) << (8 * (i % 8));
    }
    w
}

/// Equal for names equal but for ASCII case (bit 0x20 set on every byte folds the letters;
/// other bytes that collide so only cost a comparison).
fn name_hash(w: [u64; 3], shift: u32) -> usize {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let h = (w[0] | FOLD) ^ (w[1] | FOLD).rotate_left(21) ^ (w[2] | FOLD).rotate_left(42);
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
}

impl Table {
    fn new(specs: impl Iterator<Item = &'static CommandSpec>) -> Table {
        let specs: Vec<_> = specs.collect();
        let size = (specs.len() * 4).next_power_of_two();
        let shift = 64 - size.trailing_zeros();
        let mut slots = vec![None; size].into_boxed_slice();
        for spec in specs {
            let name = spec.name.as_bytes();
            assert!(
                name.len() <= MAX_NAME,
                "command name {} too long",
                spec.name
            );
            let words = name_words(name);
            let folds = name_words(
                &name
                    .iter()
                    .map(|b| if b.is_ascii_lowercase() { 0x20 } else { 0 })
                    .collect::<Vec<u8>>(),
            );
            let mut i = name_hash(words, shift);
            while slots[i].is_some() {
                i = (i + 1) & (size - 1);
            }
            slots[i] = Some(Entry { spec, words, folds });
        }
        Table { slots, shift }
    }

    fn get(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        if name.len() > MAX_NAME {
            return None;
        }
        let w = name_words(name);
        let mask = self.slots.len() - 1;
        let mut i = name_hash(w, self.shift);
        loop {
            let e = self.slots[i].as_ref()?;
            if (w[0] | e.folds[0]) == e.words[0]
                && (w[1] | e.folds[1]) == e.words[1]
                && (w[2] | e.folds[2]) == e.words[2]
                && e.spec.name.len() == name.len()
            {
                return Some(e.spec);
            }
            i = (i + 1) & mask;
        }
    }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::new(all().chain(test_hooks::COMMANDS)))
}

/// Case-insensitive lookup, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    table().get(name)
}

/// A command that touches no keys.
pub const fn keyless(name: &'static str, arity: i32, flags: u32, handler: Handler) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys: Keys::None,
        handler,
    }
}

/// `<CONTAINER> HELP`: the container's help text, one status line per entry, as Redis's
/// `addReplyHelp`.
pub fn help(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let lines = match argv[0].to_ascii_lowercase().as_slice() {
        b"client" => client::HELP,
        b"config" => config::HELP,
        _ => server::COMMAND_HELP,
    };
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
    Ok(())
}

/// The subcommands of a container command (CLIENT, CONFIG, COMMAND), named `container|sub`.
pub fn subcommands(container: &str) -> &'static [CommandSpec] {
    match container {
        "client" => client::SUBCOMMANDS,
        "config" => config::SUBCOMMANDS,
        "command" => server::SUBCOMMANDS,
        _ => &[],
    }
}

/// The subcommand `argv[1]` of container `spec`, if it has one by that name.
pub fn lookup_sub(spec: &CommandSpec, argv: &[&[u8]]) -> Option<&'static CommandSpec> {
    let sub = argv.get(1)?;
    let prefix = spec.name.len() + 1;
    subcommands(spec.name)
        .iter()
        .find(|c| c.name.as_bytes()[prefix..].eq_ignore_ascii_case(sub))
}

/// The handler of a container command: finds the subcommand, checks its arity, runs it.
pub fn dispatch_sub(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(container) = lookup(argv[0]) else {
        return Err(CommandError::Syntax);
    };
    let Some(sub) = lookup_sub(container, argv) else {
        return Err(CommandError::UnknownSubcommand {
            sub: argv.get(1).map_or_else(Vec::new, |s| s.to_vec()),
            cmd: container_upper(container.name),
        });
    };
    if !sub.arity_ok(argv.len()) {
        return Err(CommandError::WrongArity(sub.name));
    }
    (sub.handler)(ctx, argv)
}

fn container_upper(name: &str) -> &'static str {
    match name {
        "client" => "CLIENT",
        "config" => "CONFIG",
        _ => "COMMAND",
    }
}

/// The name CLIENT LIST shows as a command's `cmd=`: `client|list` for subcommands.
fn full_name(spec: &'static CommandSpec, argv: &[&[u8]]) -> &'static str {
    lookup_sub(spec, argv).map_or(spec.name, |s| s.name)
}

/// The shards `spec` needs for `argv` when run from database `db`.
pub fn plan(
    shared: &Shared,
    spec: &CommandSpec,
    db: usize,
    argv: &[&[u8]],
) -> Result<Slots, CommandError> {
    plan_hashed(shared, spec, db, argv, &mut KnownKeys::default())
}

/// `plan`, also recording the hashes of the keys it names in `known`, for the command's own
/// accesses to reuse (see `KnownKeys`).
fn plan_hashed(
    shared: &Shared,
    spec: &CommandSpec,
    db: usize,
    argv: &[&[u8]],
    known: &mut KnownKeys,
) -> Result<Slots, CommandError> {
    Ok(match spec.keys {
        Keys::None => SmallVec::new(),
        Keys::Range { first, last, step } => {
            let mut slots = Slots::new();
            for i in key_positions(first, last, step, argv.len()) {
                let h = hash_key(argv[i]);
                known.push(argv[i], h);
                slots.push(Slot::of_hash(db, h));
            }
            slots
        }
        Keys::Db => shared.store.db_slots(db).collect(),
        Keys::All => shared.store.all_slots().collect(),
        Keys::Custom { plan, .. } => plan(shared, db, argv)?,
    })
}

/// The key of a command whose only key is its first argument, as `plan` would find it.
fn one_key<'a>(spec: &CommandSpec, argv: &[&'a [u8]]) -> Option<&'a [u8]> {
    match spec.keys {
        Keys::Range {
            first: 1, last: 1, ..
        } if argv.len() >= 2 => Some(argv[1]),
        _ => None,
    }
}

/// The argv positions of a `Keys::Range` command's keys.
fn key_positions(first: i32, last: i32, step: i32, argc: usize) -> KeyPositions {
    let argc = argc as i32;
    let last = if last < 0 {
        argc + last
    } else {
        last.min(argc - 1)
    };
    KeyPositions {
        next: first.max(0),
        last: last.min(argc - 1),
        step: step.max(1),
    }
}

/// What `key_positions` returns: a plain loop, cheaper than a stepped range for the one or two
/// keys most commands have.
struct KeyPositions {
    next: i32,
    last: i32,
    step: i32,
}

impl Iterator for KeyPositions {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.next > self.last {
            return None;
        }
        let i = self.next;
        self.next += self.step;
        Some(i as usize)
    }
}

/// Looks a request up, checks it, and runs it (or queues it inside MULTI); the reply (or
/// error) goes to `out`.
pub fn execute(shared: &Shared, client: &mut Client, argv: &[&[u8]], out: &mut ReplyBuf) {
    let Some(spec) = lookup(argv[0]) else {
        let err = CommandError::UnknownCommand {
            name: argv[0].to_vec(),
            args: argv[1..].iter().take(16).map(|a| a.to_vec()).collect(),
        };
        return reject(shared, client, out, None, err);
    };
    if !spec.arity_ok(argv.len()) {
        return reject(
            shared,
            client,
            out,
            Some(spec),
            CommandError::WrongArity(spec.name),
        );
    }
    // As Redis: unknown commands and arity are reported before authentication is asked for.
    if !client.authenticated && !spec.has(flags::NO_AUTH) && shared.requires_auth() {
        return reject(shared, client, out, Some(spec), CommandError::NoAuth);
    }
    client.handle.touch(client.db, full_name(spec, argv));
    if client.multi.is_some() {
        if spec.has(flags::NO_MULTI) {
            let err = CommandError::Err("Command not allowed inside a transaction".into());
            return reject(shared, client, out, Some(spec), err);
        }
        if transaction::queues(spec) {
            transaction::queue(client, spec, argv);
            transaction::show_multi(client);
            out.simple("QUEUED");
            return;
        }
    }
    let db = client.db;
    let in_multi = client.multi.is_some();
    if let Err(e) = run(shared, client, spec, argv, out) {
        let msg = e.to_string();
        out.error(&msg);
        shared.stats.error_reply(&msg);
    }
    if client.db != db {
        client.handle.state.lock().db = client.db;
    }
    if client.multi.is_some() != in_multi {
        transaction::show_multi(client);
    }
}

/// Refuses a request before it runs; inside MULTI this also dooms the transaction, as Redis's
/// `rejectCommand` does, and a refused EXEC discards the transaction it would have run.
fn reject(
    shared: &Shared,
    client: &mut Client,
    out: &mut ReplyBuf,
    spec: Option<&CommandSpec>,
    err: CommandError,
) {
    let mut msg = err.to_string();
    if spec.is_some_and(|s| s.name == "exec") {
        client.multi = None;
        transaction::show_multi(client);
        transaction::unwatch_all(shared, client);
        let why = msg.strip_prefix("ERR ").unwrap_or(&msg);
        msg = format!("EXECABORT Transaction discarded because of: {why}");
    } else if let Some(m) = client.multi.as_mut() {
        m.failed = true;
    }
    out.error(&msg);
    shared.stats.error_reply(&msg);
}

/// Runs a command already checked for arity: takes its locks, runs its handler, and logs its
/// effect to the AOF before the locks are released.
pub fn run(
    shared: &Shared,
    client: &mut Client,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
    out: &mut ReplyBuf,
) -> Result<(), CommandError> {
    // Redis refuses PING too while its persistence fails, so that monitoring notices.
    if spec.is_write() || spec.name == "ping" {
        if let Some(e) = shared.write_refusal() {
            return Err(e);
        }
    }
    // `argv` outlives `ctx`, as `KnownKeys` requires.
    let mut ctx = match one_key(spec, argv) {
        // Most commands name one key: no vector of slots to build, sort or search.
        Some(key) => {
            let h = hash_key(key);
            let locked = shared.lock_one(Slot::of_hash(client.db, h), spec.is_write());
            let mut ctx = Ctx::new(shared, client, out, locked);
            ctx.ks.known_key(key, h);
            ctx
        }
        None => {
            let mut known = KnownKeys::default();
            let slots = plan_hashed(shared, spec, client.db, argv, &mut known)?;
            let locked = shared.lock(slots, spec.is_write());
            let mut ctx = Ctx::new(shared, client, out, locked);
            ctx.ks.set_known(known);
            ctx
        }
    };
    let result = call(&mut ctx, spec, argv);
    ctx.finish(spec, argv);
    // The locks are released: removing takes its own.
    if let Some(expired) = ctx.ks.take_seen_expired() {
        for (db, key) in expired {
            crate::store::expire::remove_expired(shared, db, &key);
        }
    }
    shared.stats.commands_processed();
    result
}

/// Runs `spec`'s handler on `ctx`. A panic (a bug: nothing client-controlled should panic)
/// is contained to this command: its partial reply is dropped, the client gets an error, the
/// panic is in the log, and the locks are released as usual by the caller (parking_lot locks
/// are not poisoned).
pub(crate) fn call(ctx: &mut Ctx, spec: &CommandSpec, argv: &[&[u8]]) -> Result<(), CommandError> {
    if spec.is_write() {
        // As Redis's lookupKeyWrite: a write first removes the expired keys it names and logs
        // their DELs ahead of its own record, so that a replay (which expires nothing while it
        // loads) sees the same keys the command saw.
        let db = ctx.ks.db;
        if let Some(key) = one_key(spec, argv) {
            ctx.ks.expire_if_needed(db, key);
        } else if let Keys::Range { first, last, step } = spec.keys {
            for i in key_positions(first, last, step, argv.len()) {
                ctx.ks.expire_if_needed(db, argv[i]);
            }
        }
    }
    let reply_start = ctx.out.len();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (spec.handler)(ctx, argv))) {
        Ok(result) => result,
        Err(_) => {
            ctx.out.buf.truncate(reply_start);
            log::error!(
                "command '{}' of client {} panicked (see above); the client got an error",
                spec.name,
                ctx.client.id
            );
            Err(CommandError::Err(format!(
                "internal error while running '{}'; the server log has the details",
                spec.name
            )))
        }
    }
}

/// Commands that exist only to test the server's own defences; compiled into debug builds and
/// unit tests, never into a release build.
mod test_hooks {
    use super::*;

    #[cfg(any(test, debug_assertions))]
    pub static COMMANDS: &[CommandSpec] = &[
        CommandSpec {
            name: "rudis-test-panic",
            arity: 2,
            flags: flags::WRITE,
            keys: Keys::Range {
                first: 1,
                last: 1,
                step: 1,
            },
            handler: panic_holding_lock,
        },
        // Stands for Redis's no_multi commands (SYNC, PSYNC, SAVE...) until rudis has one.
        CommandSpec {
            name: "rudis-test-nomulti",
            arity: 1,
            flags: flags::NO_MULTI,
            keys: Keys::None,
            handler: |ctx, _| {
                ctx.out.ok();
                Ok(())
            },
        },
    ];

    #[cfg(not(any(test, debug_assertions)))]
    pub static COMMANDS: &[CommandSpec] = &[];

    /// Writes half a reply and changes a key under its write lock, then panics.
    #[cfg(any(test, debug_assertions))]
    fn panic_holding_lock(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
        ctx.out.array(2);
        ctx.ks.set(argv[1], crate::store::Value::str(b"half-done"));
        panic!("rudis-test-panic called, as asked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(seen.insert(c.name), "duplicate {}", c.name);
            assert!(c.arity != 0, "{} has no arity", c.name);
        }
    }

    #[test]
    fn a_panicking_handler_is_contained() {
        let mut h = crate::harness::Harness::new();
        h.run(&["SET", "k", "v"]);
        let reply = h.run(&["rudis-test-panic", "k"]).to_vec();
        assert!(
            reply.starts_with(b"-ERR internal error while running 'rudis-test-panic'"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        assert_eq!(h.run(&["PING"]), b"+PONG\r\n");
        // The write lock it held is free: another thread can take it.
        let shared = &h.shared;
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut c = Client::new(None);
                let mut out = ReplyBuf::new();
                execute(shared, &mut c, &[b"SET", b"k", b"w"], &mut out);
                assert_eq!(out.as_bytes(), b"+OK\r\n");
            });
        });
        assert_eq!(h.run(&["GET", "k"]), b"$1\r\nw\r\n");
        // Inside EXEC too: its slot gets the error, the others run.
        h.run(&["MULTI"]);
        h.run(&["SET", "a", "1"]);
        h.run(&["rudis-test-panic", "k"]);
        h.run(&["SET", "b", "2"]);
        let reply = String::from_utf8_lossy(h.run(&["EXEC"])).into_owned();
        assert!(
            reply.starts_with("*3\r\n+OK\r\n-ERR internal error"),
            "{reply}"
        );
        assert!(reply.ends_with("+OK\r\n"), "{reply}");
        assert_eq!(h.run(&["EXISTS", "a", "b"]), b":2\r\n");
    }

    #[test]
    fn no_multi_commands_are_refused_inside_multi() {
        let mut h = crate::harness::Harness::new();
        assert_eq!(h.run(&["rudis-test-nomulti"]), b"+OK\r\n");
        h.run(&["MULTI"]);
        assert_eq!(
            h.run(&["rudis-test-nomulti"]),
            b"-ERR Command not allowed inside a transaction\r\n"
        );
        h.run(&["SET", "a", "1"]);
        assert_eq!(
            h.run(&["EXEC"]),
            b"-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert_eq!(h.run(&["EXISTS", "a"]), b":0\r\n");
    }

    #[test]
    fn a_read_that_finds_a_key_expired_removes_it() {
        let mut h = crate::harness::Harness::new();
        h.run(&["SET", "k", "v", "PX", "1"]);
        h.run(&["SET", "other", "v"]);
        std::thread::sleep(std::time::Duration::from_millis(5));
        // DBSIZE counts a key until it is removed, as Redis's does.
        assert_eq!(h.run(&["DBSIZE"]), b":2\r\n");
        assert_eq!(h.run(&["GET", "k"]), b"$-1\r\n");
        assert_eq!(h.run(&["DBSIZE"]), b":1\r\n");
        assert_eq!(
            h.shared
                .stats
                .expired_keys
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn test_hooks_are_not_listed() {
        assert!(all().all(|c| !c.name.starts_with("rudis-test")));
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
        for c in all() {
            let upper = c.name.to_ascii_uppercase();
            assert!(lookup(upper.as_bytes()).is_some_and(|f| std::ptr::eq(f, c)));
        }
        // '-' and '\r' fold to the same hash; the names are still told apart. So are names
        // that differ only in trailing zero bytes.
        assert!(lookup(b"rudis-test-panic").is_some());
        assert!(lookup(b"rudis\rtest-panic").is_none());
        assert!(lookup(b"get\0").is_none());
        assert!(lookup(b"GET").is_some());
        assert!(lookup(b"gEt ").is_none());
        assert!(lookup(b"").is_none());
    }
}
