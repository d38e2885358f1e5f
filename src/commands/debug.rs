//! DEBUG (Redis's debug.c), behind `enable-debug-command`: the subcommands Redis's tests and
//! client libraries' tests use. DIGEST and DIGEST-VALUE are Redis's digests exactly (see
//! `ops::digest`), so that equal digests prove two servers hold the same data; RELOAD and
//! LOADAOF go through the server's own save and load paths. Subcommands that only C's memory
//! layout gives meaning to (SDSLEN, MALLCTL, ...) get Redis's unknown-subcommand error.
//!
//! DEBUG names no keys, as Redis's spec: the subcommands that read or write the store lock
//! what they touch themselves, for as long as they run (see `with_locks`).

use std::time::Duration;

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};
use crate::config::DebugCommand;
use crate::ops::digest;
use crate::store::{ShardIds, Value};

pub static COMMANDS: &[CommandSpec] = &[cmd!(
    "debug",
    -2,
    ADMIN | NOSCRIPT | LOADING | STALE,
    Keys::None,
    debug
)];

const NOT_ALLOWED: &str = "DEBUG command not allowed. If the enable-debug-command option is set \
to \"local\", you can run it from a local connection, otherwise you need to set this option in \
the configuration file, and then restart the server.";

/// Redis 7.0's DEBUG HELP, word for word (it lists what rudis refuses too: the text is the
/// reply Redis gives).
const HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "AOF-FLUSH-SLEEP <microsec>",
    "    Server will sleep before flushing the AOF, this is used for testing.",
    "ASSERT",
    "    Crash by assertion failed.",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "CRASH-AND-RECOVER [<milliseconds>]",
    "    Hard crash and restart after a <milliseconds> delay (default 0).",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LEAK <string>",
    "    Create a memory leak of the input string.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "REPLICATE <string>",
    "    Replicates the provided string to replicas, allowing data divergence.",
    "MALLCTL <key> [<val>]",
    "    Get or set a malloc tuning integer.",
    "MALLCTL-STR <key> [<val>]",
    "    Get or set a malloc tuning string.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "DROP-CLUSTER-PACKET-FILTER <packet-type>",
    "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
    "OOM",
    "    Crash the server simulating an out-of-memory error.",
    "PANIC",
    "    Crash the server simulating a panic.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "RESTART [<milliseconds>]",
    "    Graceful restart: save config, db, restart after a <milliseconds> delay (default 0).",
    "SDSLEN <key>",
    "    Show low level SDS string info representing `key` and value.",
    "SEGFAULT",
    "    Crash the server with sigsegv.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "STRINGMATCH-TEST",
    "    Run a fuzz tester against the stringmatchlen() function.",
    "STRUCTSIZE",
    "    Return the size of different Redis core C structures.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "QUICKLIST <key> [<0|1>]",
    "    Show low level info about the quicklist encoding of <key>.",
    "    The optional argument (0 by default) sets the level of detail",
    "CLIENT-EVICTION",
    "    Show low level client eviction pools info (maxmemory-clients).",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
    "CLUSTERLINK KILL <to|from|all> <node-id>",
    "    Kills the link based on the direction to/from (both) with the provided node.",
    "HELP",
    "    Prints this help.",
];

fn debug(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let allowed = match ctx.shared.config.read().enable_debug_command {
        DebugCommand::Yes => true,
        DebugCommand::No => false,
        DebugCommand::Local => ctx.client.local,
    };
    if !allowed {
        return Err(CommandError::Err(NOT_ALLOWED.into()));
    }
    let sub = argv[1].to_ascii_lowercase();
    let argc = argv.len();
    match (sub.as_slice(), argc) {
        (b"help", 2) => {
            ctx.out.array(HELP.len());
            HELP.iter().for_each(|l| ctx.out.simple(l));
        }
        (b"segfault", 2) => crate::util::crash::segfault_now(),
        (b"panic", 2) => crate::util::crash::panic_now(&format!(
            "DEBUG PANIC called at Unix time {}",
            crate::util::clock::now_ms() / 1000
        )),
        (b"sleep", 3) => {
            // As Redis, with C's atof: what is not a number sleeps for no time.
            let secs = atof(argv[2]);
            if secs.is_finite() && secs > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(secs.min(3600.0)));
            }
            ctx.out.ok();
        }
        (b"aof-flush-sleep", 3) => {
            // Each AOF write first sleeps this long, for Redis's test that no reply overtakes
            // its write.
            let us = atoi(argv[2]).max(0) as u64;
            ctx.shared
                .aof_handle()
                .status
                .flush_sleep_us
                .store(us, std::sync::atomic::Ordering::Relaxed);
            ctx.out.ok();
        }
        (b"replicate", n) if n >= 3 => {
            // To the replicas only, not the AOF: for Redis's tests of data divergence.
            let mut record = Vec::new();
            crate::resp::reply::encode_command(&mut record, &argv[2..]);
            ctx.shared.repl.backlog.feed(ctx.client.db, &record);
            ctx.out.ok();
        }
        (b"protocol", 3) => return protocol(ctx, argv[2]),
        (b"set-disable-deny-scripts", 3) => {
            // Lets scripts run `noscript` commands, for Redis's own tests.
            ctx.shared
                .scripts
                .disable_deny_script
                .store(atoi(argv[2]) != 0, std::sync::atomic::Ordering::Relaxed);
            ctx.out.ok();
        }
        (b"digest", 2) => {
            let shared = ctx.shared;
            let ids = shared.store.all_shards().collect();
            let d = with_locks(ctx, ids, false, |ctx| {
                let dbs = (0..shared.store.dbs.len()).map(|db| (db, ctx.ks.db_shards(db)));
                digest::dataset_digest(dbs)
            })?;
            ctx.out.simple(&digest::hex(&d));
        }
        (b"digest-value", _) => {
            let db = ctx.client.db;
            let keys = &argv[2..];
            let ids = keys
                .iter()
                .map(|k| crate::store::ShardId::of_key(db, k))
                .collect();
            let digests = with_locks(ctx, ids, false, |ctx| {
                keys.iter()
                    .map(|k| {
                        // Expired keys still stored count, as Redis's dictFind finds them.
                        let shard = ctx.ks.db_shards(db);
                        let held = shard.iter().find(|s| s.contains(k));
                        digest::value_digest(
                            held.and_then(|s| Some((s.map.get(k)?, s.deadline(k).is_some()))),
                        )
                    })
                    .collect::<Vec<_>>()
            })?;
            ctx.out.array(digests.len());
            digests.iter().for_each(|d| ctx.out.simple(&digest::hex(d)));
        }
        (b"reload", _) => return reload(ctx, &argv[2..]),
        (b"loadaof", 2) => return loadaof(ctx),
        (b"object", 3) => return object(ctx, argv[2]),
        (b"htstats", 3) => return htstats(ctx, argv[2]),
        (b"htstats-key", 3) => return htstats_key(ctx, argv[2]),
        (b"populate", 3..=5) => return populate(ctx, argv),
        (b"listpack", 3) | (b"quicklist", 3 | 4) => return packed(ctx, &sub, argv[2]),
        (b"set-active-expire", 3) => {
            crate::expiry::set_active(atoi(argv[2]) != 0);
            ctx.out.ok();
        }
        (b"pause-cron", 3) => {
            crate::pool::pause_cron(atoi(argv[2]) != 0);
            ctx.out.ok();
        }
        (b"set-skip-checksum-validation", 3) => {
            crate::rdb::set_skip_checksum(atoi(argv[2]) != 0);
            ctx.out.ok();
        }
        (b"quicklist-packed-threshold", 3) => {
            // Redis stores elements past this as plain nodes of their own. rudis's list nodes
            // hold an element of any size, so the threshold has nothing to steer: it is
            // checked as Redis checks it, and the lists behave the same either way.
            let size = std::str::from_utf8(argv[2])
                .ok()
                .and_then(crate::config::parse_memory);
            // Redis's quicklistisSetPackedThreshold: up to 4 GB less 1 MB; 0 is the default.
            if size.is_none_or(|s| s > (1 << 32) - (1 << 20)) {
                return Err(CommandError::Err(
                    "argument must be a memory value bigger than 1 and smaller than 4gb".into(),
                ));
            }
            ctx.out.ok();
        }
        (b"error", 3) => {
            // The string is the whole error line, code included; newlines would end it.
            let text: String = String::from_utf8_lossy(argv[2])
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            return Err(CommandError::Coded(text));
        }
        (b"log", 3) => {
            log::warn!("DEBUG LOG: {}", String::from_utf8_lossy(argv[2]));
            ctx.out.ok();
        }
        (b"change-repl-id", 2) => {
            // rudis's replication ID is its run id until replication lands (it owns the IDs
            // and changes them here); a master without replicas notices no difference.
            log::warn!("Changing replication IDs after receiving DEBUG change-repl-id");
            ctx.out.ok();
        }
        (b"replybuffer", 4) => {
            use crate::resp::reply::sizing;
            let what = argv[2].to_ascii_lowercase();
            let value = argv[3].to_ascii_lowercase();
            match (what.as_slice(), value.as_slice()) {
                (b"peak-reset-time", b"never") => sizing::set_peak_reset_ms(-1),
                (b"peak-reset-time", b"reset") => {
                    sizing::set_peak_reset_ms(sizing::DEFAULT_PEAK_RESET_MS)
                }
                (b"peak-reset-time", _) => sizing::set_peak_reset_ms(
                    crate::resp::parse::parse_i64(argv[3]).ok_or(CommandError::NotInteger)?,
                ),
                (b"resizing", _) => sizing::set_resizing(atoi(argv[3]) != 0),
                _ => return Err(unknown_subcommand(argv)),
            }
            ctx.out.ok();
        }
        (b"config-rewrite-force-all", 2) => return super::config::rewrite_config(ctx, true),
        (b"stringmatch-test", 2) => {
            stringmatch_fuzz();
            ctx.out
                .simple("Apparently Redis did not crash: test passed");
        }
        _ => return Err(unknown_subcommand(argv)),
    }
    Ok(())
}

fn unknown_subcommand(argv: &[&[u8]]) -> CommandError {
    CommandError::subcommand_syntax("debug", argv)
}

/// Refuses a subcommand that locks shards itself while the command already holds locks (a
/// transaction's): locking a shard this thread holds could deadlock.
fn outside_keyed_transaction(ctx: &Ctx) -> Result<(), CommandError> {
    if !ctx.ks.locked.shard_ids().is_empty() {
        return Err(CommandError::Err(
            "this DEBUG subcommand cannot run inside a transaction that touches keys".into(),
        ));
    }
    Ok(())
}

/// Runs `f` with `ids` locked (for writing when `write`) in place of the none DEBUG's plan
/// took, and releases them after (see `outside_keyed_transaction`).
fn with_locks<'a, R>(
    ctx: &mut Ctx<'a>,
    ids: ShardIds,
    write: bool,
    f: impl FnOnce(&mut Ctx<'a>) -> R,
) -> Result<R, CommandError> {
    outside_keyed_transaction(ctx)?;
    let shared = ctx.shared;
    let held = shared.lock(ids, write);
    let none = std::mem::replace(&mut ctx.ks.locked, held);
    let r = f(ctx);
    // Drops the locks taken here.
    ctx.ks.locked = none;
    Ok(r)
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE], holding every shard so that it is atomic, as it is
/// in Redis.
fn reload(ctx: &mut Ctx, opts: &[&[u8]]) -> Result<(), CommandError> {
    let mut how = crate::persist::Reload {
        save: true,
        flush: true,
        merge: false,
    };
    for o in opts {
        if o.eq_ignore_ascii_case(b"merge") {
            how.merge = true;
        } else if o.eq_ignore_ascii_case(b"noflush") {
            how.flush = false;
        } else if o.eq_ignore_ascii_case(b"nosave") {
            how.save = false;
        } else {
            return Err(CommandError::Err(
                "DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.".into(),
            ));
        }
    }
    let shared = ctx.shared;
    let ids = shared.store.all_shards().collect();
    let res = with_locks(ctx, ids, true, |ctx| {
        crate::persist::reload(shared, &mut ctx.ks.locked, how)
    })?;
    match res {
        Ok(()) => ctx.out.ok(),
        // Redis's shared.err: a bare ERR.
        Err(crate::persist::ReloadError::Save(_)) => return Err(CommandError::Coded("ERR".into())),
        Err(crate::persist::ReloadError::Load(_)) => {
            return Err(CommandError::Err(
                "Error trying to load the RDB dump".into(),
            ))
        }
    }
    Ok(())
}

/// DEBUG LOADAOF: writes out and fsyncs what the AOF has pending, empties the server and
/// replays the file, as at start. With the AOF off, the file a BGREWRITEAOF wrote (as Redis
/// 7.0 loads the one its rewrite left).
fn loadaof(ctx: &mut Ctx) -> Result<(), CommandError> {
    let shared = ctx.shared;
    let aof = shared.aof_handle();
    if !aof.enabled() && !aof.path().exists() {
        // Redis exits here (it finds no AOF to load); rudis keeps its data and says why.
        return Err(CommandError::Err(
            "DEBUG LOADAOF: there is no AOF file to load (appendonly is no and no \
             BGREWRITEAOF wrote one)"
                .into(),
        ));
    }
    outside_keyed_transaction(ctx)?;
    if aof.enabled() && !aof.has_base() {
        // Just turned on, the file is not this data set's yet: loading it would lose data.
        return Err(CommandError::Err(
            "DEBUG LOADAOF: the AOF was just turned on and its rewrite has not finished".into(),
        ));
    }
    aof.sync();
    {
        let mut all = shared.lock(shared.store.all_shards().collect(), true);
        for id in shared.store.all_shards() {
            let shard = all.shard_mut(id);
            shard.map.clear();
            shard.expires.clear();
            shard.field_expires.clear();
        }
    }
    if let Err(e) = aof
        .reload_manifest()
        .map_err(crate::loading::LoadError::Io)
        .and_then(|()| crate::loading::load_aof(shared, aof.layout()))
    {
        log::warn!("DEBUG LOADAOF: {e}");
        return Err(CommandError::Err(format!("DEBUG LOADAOF failed: {e}")));
    }
    log::warn!("Append Only File loaded by DEBUG LOADAOF");
    ctx.out.ok();
    Ok(())
}

/// DEBUG OBJECT <key>: Redis's line, with the encoding and RDB length Redis would have for the
/// same value. The address is where the value is stored (it stays while the value is changed
/// in place, as Redis's tests check).
fn object(ctx: &mut Ctx, key: &[u8]) -> Result<(), CommandError> {
    let db = ctx.client.db;
    let ids = smallvec::smallvec![crate::store::ShardId::of_key(db, key)];
    let compress = crate::commands::dump::rdb_options(ctx.shared).compression;
    let line = with_locks(ctx, ids, false, |ctx| {
        let shards = ctx.ks.db_shards(db);
        let shard = shards.first()?;
        let (k, v) = shard.map.find_hashed(crate::store::hash_key(key), key)?;
        let mut enc = crate::rdb::write::Encoder::new(compress);
        enc.value(v);
        let idle = crate::store::evict::idle_ms(k) / 1000;
        let lru = k.clock().unwrap_or(0);
        let mut extra = String::new();
        if let Value::List(l) = v {
            let nodes = l.node_count();
            let compressed = ctx
                .shared
                .config
                .read()
                .get("list-compress-depth")
                .as_deref()
                != Some("0");
            extra = format!(
                " ql_nodes:{nodes} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:{} \
                 ql_uncompressed_size:{}",
                l.len() as f64 / nodes as f64,
                crate::store::limits::max_listpack_size(),
                compressed as u8,
                l.listpack_bytes()
            );
        }
        Some(format!(
            "Value at:{:p} refcount:{} encoding:{} serializedlength:{} lru:{lru} \
             lru_seconds_idle:{idle}{extra}",
            v as *const Value,
            super::object::refcount_of(v),
            super::object::encoding_name(v),
            enc.buf.len() - 1,
        ))
    })?;
    match line {
        Some(l) => ctx.out.simple(&l),
        None => return Err(CommandError::NoSuchKey),
    }
    Ok(())
}

/// DEBUG HTSTATS-KEY <key>: Redis's dictGetStats for a value kept in a hash table, in its
/// words (see `table_stats`).
fn htstats_key(ctx: &mut Ctx, key: &[u8]) -> Result<(), CommandError> {
    use crate::store::hash::Fields;
    let db = ctx.client.db;
    let ids = smallvec::smallvec![crate::store::ShardId::of_key(db, key)];
    let found = with_locks(ctx, ids, false, |ctx| {
        ctx.ks.peek(key).map(|v| match v {
            Value::Set(s) => match &**s {
                crate::store::set::Set::Table(t) => Some((t.slots(), t.len())),
                _ => None,
            },
            Value::Hash(h) => match h.fields() {
                Fields::Large(t) => Some((t.slots(), t.len())),
                _ => None,
            },
            Value::ZSet(z) => match &**z {
                crate::store::zset::ZSet::Large(l) => Some((l.slots(), z.len())),
                _ => None,
            },
            _ => None,
        })
    })?;
    let (slots, used) = match found {
        None => return Err(CommandError::NoSuchKey),
        Some(None) => {
            return Err(CommandError::Err(
                "The value stored at the specified key is not represented using an hash table"
                    .into(),
            ))
        }
        Some(Some(t)) => t,
    };
    ctx.out.verbatim("txt", table_stats(slots, used).as_bytes());
    Ok(())
}

/// DEBUG HTSTATS <dbid>: Redis's stats of a database's keys and of its expires, each summed
/// over the database's shards (their tables are the one table Redis has). Read a shard at a
/// time: figures, not a snapshot.
fn htstats(ctx: &mut Ctx, dbid: &[u8]) -> Result<(), CommandError> {
    let dbid = crate::resp::parse::parse_i64(dbid).ok_or(CommandError::NotInteger)?;
    let dbs = &ctx.shared.store.dbs;
    let Some(db) = usize::try_from(dbid).ok().and_then(|i| dbs.get(i)) else {
        return Err(CommandError::Err("Out of range database".into()));
    };
    outside_keyed_transaction(ctx)?;
    let (mut keys, mut expires) = ((0, 0), (0, 0));
    for shard in db.shards.iter() {
        let s = shard.read();
        keys.0 += crate::store::slots_of_capacity(s.map.capacity());
        keys.1 += s.map.len();
        expires.0 += crate::store::slots_of_capacity(s.expires.capacity());
        expires.1 += s.expires.len();
    }
    let text = format!(
        "[Dictionary HT]\n{}[Expires HT]\n{}",
        table_stats(keys.0, keys.1),
        table_stats(expires.0, expires.1)
    );
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// Redis's dictGetStats text for an open-addressed table of `slots` holding `used`: each
/// member has a slot of its own, so every chain is one long, and a table grows at once, so
/// there is never a rehashing target.
fn table_stats(slots: usize, used: usize) -> String {
    if used == 0 {
        "Hash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n"
            .to_string()
    } else {
        let pct = |n: usize| n as f64 / slots as f64 * 100.0;
        let mut t = format!(
            "Hash table 0 stats (main hash table):\n table size: {slots}\n number of elements: \
             {used}\n different slots: {used}\n max chain length: 1\n avg chain length \
             (counted): 1.00\n avg chain length (computed): 1.00\n Chain length distribution:\n"
        );
        if slots > used {
            t += &format!("   0: {} ({:.2}%)\n", slots - used, pct(slots - used));
        }
        t += &format!("   1: {used} ({:.2}%)\n", pct(used));
        t
    }
}

/// DEBUG LISTPACK / QUICKLIST <key>: Redis prints the structure on its stdout; rudis logs the
/// counts it has and gives Redis's replies.
fn packed(ctx: &mut Ctx, sub: &[u8], key: &[u8]) -> Result<(), CommandError> {
    let db = ctx.client.db;
    let ids = smallvec::smallvec![crate::store::ShardId::of_key(db, key)];
    let encoding = with_locks(ctx, ids, false, |ctx| {
        ctx.ks.peek(key).map(super::object::encoding_name)
    })?;
    let Some(encoding) = encoding else {
        return Err(CommandError::NoSuchKey);
    };
    let (want, done, not) = if sub == b"listpack" {
        (
            "listpack",
            "Listpack structure printed on stdout",
            "Not a listpack encoded object.",
        )
    } else {
        (
            "quicklist",
            "Quicklist structure printed on stdout",
            "Not a quicklist encoded object.",
        )
    };
    // A hash with field deadlines is a listpack too (Redis 7.4's listpackex).
    if encoding != want && !(want == "listpack" && encoding == "listpackex") {
        return Err(CommandError::Err(not.into()));
    }
    log::info!(
        "DEBUG {}: '{}' is a {want}",
        want.to_ascii_uppercase(),
        String::from_utf8_lossy(key)
    );
    ctx.out.simple(done);
    Ok(())
}

/// DEBUG POPULATE <count> [<prefix>] [<size>]: string keys `prefix:N` = `value:N` (cut or
/// zero-padded to `size`), skipping names that exist. As in Redis they are not propagated:
/// neither the AOF nor replicas see them.
fn populate(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let positive = |a: &[u8]| {
        super::args::int(a)
            .ok()
            .filter(|&n| n >= 0)
            .ok_or_else(|| CommandError::Err("value is out of range, must be positive".into()))
    };
    let count = positive(argv[2])?;
    let size = argv.get(4).map(|a| positive(a)).transpose()?.unwrap_or(0) as usize;
    let prefix: &[u8] = if argv.len() >= 4 { argv[3] } else { b"key" };
    let db = ctx.client.db;
    let ids = ctx.shared.store.db_shards(db).collect();
    with_locks(ctx, ids, true, |ctx| {
        for j in 0..count {
            let mut key = prefix.to_vec();
            key.extend_from_slice(format!(":{j}").as_bytes());
            if ctx.ks.peek(&key).is_some() {
                continue;
            }
            let mut value = format!("value:{j}").into_bytes();
            if size > 0 {
                value.resize(size, 0);
            }
            ctx.ks.set(&key, Value::Str(value.into()));
        }
    })?;
    ctx.out.ok();
    Ok(())
}

/// DEBUG STRINGMATCH-TEST: Redis's fuzz of its glob matcher, on rudis's: random patterns
/// against random strings, for a crash or a hang.
fn stringmatch_fuzz() {
    let mut seed: u64 = crate::util::clock::now_ms() | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..100_000 {
        let mut word = |n: u64| -> Vec<u8> {
            let len = (next() % n) as usize;
            (0..len).map(|_| (next() % 256) as u8).collect()
        };
        let pattern = word(32);
        let s = word(32);
        let _ = crate::util::glob::matches(&pattern, &s, false);
    }
}

/// DEBUG PROTOCOL <type>: one reply of that type, Redis's sample values.
fn protocol(ctx: &mut Ctx, kind: &[u8]) -> Result<(), CommandError> {
    let out = &mut *ctx.out;
    match kind.to_ascii_lowercase().as_slice() {
        b"string" => out.bulk(b"Hello World"),
        b"integer" => out.int(12345),
        // Redis's sample value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        b"double" => out.double(3.141),
        b"bignum" => out.big_number(b"1234567999999999999999999999999999999"),
        b"null" => out.null_bulk(),
        b"array" | b"set" => {
            if kind.eq_ignore_ascii_case(b"set") {
                out.set(3);
            } else {
                out.array(3);
            }
            (0..3).for_each(|j| out.int(j));
        }
        b"map" => {
            out.map(3);
            for j in 0..3 {
                out.int(j);
                out.bool(j == 1);
            }
        }
        b"attrib" => {
            out.attribute(1, |out| {
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            });
            // Attributes are not replies: a reply follows them.
            out.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !out.has_push() {
                return Err(CommandError::Err(
                    "RESP2 is not supported by this command".into(),
                ));
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            // A push is not the reply: blocking clients that skip pushes still get one.
            out.bulk(b"Some real reply following the push reply");
        }
        b"true" => out.bool(true),
        b"false" => out.bool(false),
        b"verbatim" => out.verbatim("txt", b"This is a verbatim\nstring"),
        _ => {
            return Err(CommandError::Err(
                "Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"
                    .into(),
            ))
        }
    }
    Ok(())
}

/// C's atof: the longest leading number, or 0. (Looks at 64 bytes at most: no number is longer.)
fn atof(b: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(&b[..b.len().min(64)]);
    let s = s.trim_start();
    (1..=s.len())
        .rev()
        .filter(|&n| s.is_char_boundary(n))
        .find_map(|n| s[..n].parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// C's atoi: the leading integer, or 0.
fn atoi(b: &[u8]) -> i64 {
    let t = b.trim_ascii_start();
    let sign = usize::from(t.first().is_some_and(|c| *c == b'-' || *c == b'+'));
    let digits = t[sign..].iter().take_while(|c| c.is_ascii_digit()).count();
    super::args::int(&t[..sign + digits]).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn atof_reads_the_leading_number() {
        assert_eq!(super::atof(b"0.25"), 0.25);
        assert_eq!(super::atof(b" 1.5s"), 1.5);
        assert_eq!(super::atof(b"abc"), 0.0);
        assert_eq!(super::atof(b""), 0.0);
    }

    #[test]
    fn atoi_reads_the_leading_integer() {
        assert_eq!(super::atoi(b"1"), 1);
        assert_eq!(super::atoi(b" 12x"), 12);
        assert_eq!(super::atoi(b"-3"), -3);
        assert_eq!(super::atoi(b"yes"), 0);
    }
}
