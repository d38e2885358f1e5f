//! The command table: every command's spec, found by name once per request.

use std::sync::OnceLock;

use super::spec::CommandSpec;
use super::{
    acl, bitmap, client, cluster, config, connection, debug, dump, expire, geo, hash, hll, info,
    introspection, keys, list, list_blocking, lolwut, memory, module, object, persistence, pubsub,
    replication, script, server, set, sort, stream, string, transaction, zset,
};

/// Every command, from each module's own list.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    [
        connection::COMMANDS,
        acl::COMMANDS,
        client::COMMANDS,
        cluster::COMMANDS,
        config::COMMANDS,
        info::COMMANDS,
        string::COMMANDS,
        bitmap::COMMANDS,
        hash::COMMANDS,
        hll::COMMANDS,
        geo::COMMANDS,
        list::COMMANDS,
        set::COMMANDS,
        list_blocking::COMMANDS,
        sort::COMMANDS,
        keys::COMMANDS,
        object::COMMANDS,
        memory::COMMANDS,
        module::COMMANDS,
        persistence::COMMANDS,
        dump::COMMANDS,
        expire::COMMANDS,
        server::COMMANDS,
        lolwut::COMMANDS,
        debug::COMMANDS,
        introspection::COMMANDS,
        transaction::COMMANDS,
        pubsub::COMMANDS,
        replication::COMMANDS,
        script::COMMANDS,
        script::function::COMMANDS,
        zset::COMMANDS,
        stream::COMMANDS,
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
    match RENAMED.get() {
        None => table().get(name),
        Some(r) => r.get(name),
    }
}

/// The names `rename-command` changed: the table's own names that are gone, and the new
/// names (lowercase). Made once at start; absent, as almost always, lookups never see it.
#[derive(Default)]
struct Renamed {
    gone: std::collections::HashSet<&'static str>,
    added: std::collections::HashMap<Vec<u8>, &'static CommandSpec>,
}

static RENAMED: OnceLock<Renamed> = OnceLock::new();

impl Renamed {
    fn get(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        if !self.added.is_empty() {
            if let Some(spec) = self.added.get(&name.to_ascii_lowercase()) {
                return Some(spec);
            }
        }
        table().get(name).filter(|s| !self.gone.contains(s.name))
    }

    /// As Redis's rename-command: the command `from` names now (after earlier renames) is
    /// named `to` instead, or none at all for an empty `to`.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), &'static str> {
        let from = from.as_bytes().to_ascii_lowercase();
        let spec = self.get(&from).ok_or("No such command in rename-command")?;
        if self.added.remove(&from).is_none() {
            self.gone.insert(spec.name);
        }
        if !to.is_empty() {
            let to = to.as_bytes().to_ascii_lowercase();
            if self.get(&to).is_some() {
                return Err("Target command name already exists");
            }
            self.added.insert(to, spec);
        }
        Ok(())
    }
}

/// Applies redis.conf's `rename-command` lines in order, before any client is served; Err
/// gives the index of the line that cannot be applied and Redis's reason.
pub fn rename_commands<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), (usize, &'static str)> {
    let mut renamed = Renamed::default();
    for (i, (from, to)) in pairs.into_iter().enumerate() {
        renamed.rename(from, to).map_err(|e| (i, e))?;
    }
    // Every rename leaves a name gone or added: none, and lookups never see the table.
    if !renamed.gone.is_empty() || !renamed.added.is_empty() {
        let _ = RENAMED.set(renamed);
    }
    Ok(())
}

/// Commands that exist only to test the server's own defences; compiled into debug builds and
/// unit tests, never into a release build.
mod test_hooks {
    use crate::commands::CommandSpec;
    #[cfg(any(test, debug_assertions))]
    use crate::commands::{flags, CommandError, Ctx, Keys, KEY1};

    #[cfg(any(test, debug_assertions))]
    pub static COMMANDS: &[CommandSpec] = &[
        cmd!(
            "rudis-test-panic",
            2,
            flags::WRITE,
            KEY1,
            panic_holding_lock
        ),
        // Stands for Redis's no_multi commands (SYNC, PSYNC, SAVE...) until rudis has one.
        cmd!(
            "rudis-test-nomulti",
            1,
            flags::NO_MULTI,
            Keys::None,
            |ctx, _| {
                ctx.out.ok();
                Ok(())
            }
        ),
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
    fn renames_as_redis_applies_them() {
        let mut r = Renamed::default();
        r.rename("FLUSHDB", "badger").unwrap();
        assert!(r.get(b"flushdb").is_none());
        assert_eq!(r.get(b"BADGER").unwrap().name, "flushdb");
        r.rename("badger", "flushdb").unwrap();
        assert_eq!(r.get(b"flushdb").unwrap().name, "flushdb");
        assert!(r.get(b"badger").is_none());
        r.rename("config", "").unwrap();
        assert!(r.get(b"config").is_none());
        assert_eq!(
            r.rename("config", "x"),
            Err("No such command in rename-command")
        );
        assert_eq!(
            r.rename("get", "set"),
            Err("Target command name already exists")
        );
        assert_eq!(r.get(b"ping").unwrap().name, "ping");
    }

    #[test]
    fn names_are_lowercase_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(seen.insert(c.name), "duplicate {}", c.name);
            assert!(c.arity != 0, "{} has no arity", c.name);
        }
    }

    /// Where Redis compares command procs, rudis has a flag: on the same commands, and never
    /// shown by COMMAND INFO.
    #[test]
    fn the_dispatchers_own_flags_mark_redis_s_commands() {
        use crate::commands::flags::*;
        let with = |f| {
            let mut v: Vec<&str> = all().filter(|c| c.has(f)).map(|c| c.name).collect();
            v.sort_unstable();
            v
        };
        let ours =
            NOT_QUEUED | RUNS_QUEUE | DISK_ERROR_REFUSES | SELECTS_DB | RUNS_SCRIPT | MAY_REPLICATE;
        assert_eq!(
            with(NOT_QUEUED),
            ["discard", "exec", "multi", "quit", "reset", "watch"]
        );
        assert_eq!(with(RUNS_QUEUE), ["exec"]);
        assert_eq!(with(DISK_ERROR_REFUSES), ["ping"]);
        assert_eq!(with(SELECTS_DB), ["select"]);
        assert_eq!(
            with(RUNS_SCRIPT),
            [
                "eval",
                "eval_ro",
                "evalsha",
                "evalsha_ro",
                "fcall",
                "fcall_ro"
            ]
        );
        assert!(NAMES.iter().all(|(f, _)| f & ours == 0));
    }

    #[test]
    fn containers_carry_their_subcommands_and_help() {
        for c in all().filter(|c| !c.subcommands.is_empty()) {
            // Without cluster support Redis refuses CLUSTER HELP like every CLUSTER subcommand.
            assert!(
                !c.help.is_empty() || c.name == "cluster",
                "{} has no help",
                c.name
            );
            for s in c.subcommands {
                assert!(s.name.starts_with(&format!("{}|", c.name)), "{}", s.name);
            }
            let help = format!("{}|help", c.name);
            assert!(c.subcommands.iter().any(|s| s.name == help), "{help}");
        }
        let containers: Vec<&str> = all()
            .filter(|c| !c.subcommands.is_empty())
            .map(|c| c.name)
            .collect();
        assert_eq!(
            containers,
            [
                "acl", "client", "cluster", "config", "object", "memory", "module", "command",
                "slowlog", "latency", "pubsub", "script", "function", "xgroup", "xinfo"
            ]
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
