//! The dispatcher: a request's gates, in Redis's order (`processCommand`), then its locks,
//! its handler and its AOF record. Every gate asks the spec's flags, never a command's name.

use smallvec::SmallVec;

use super::ctx::{Ctx, KnownKeys};
use super::error::CommandError;
use super::spec::{flags, CommandSpec, Keys};
use super::table::lookup;
use super::transaction;
use crate::client::Client;
use crate::ops::pause::PauseKind;
use crate::resp::ReplyBuf;
use crate::shared::Shared;
use crate::store::{hash_key, Locked, ShardId, ShardIds};

/// The handler of a container command: finds the subcommand, checks its arity, runs it.
pub fn dispatch_sub(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(container) = lookup(argv[0]) else {
        return Err(CommandError::Syntax);
    };
    let Some(sub) = container.subcommand(argv) else {
        return Err(CommandError::UnknownSubcommand {
            sub: argv.get(1).map_or_else(Vec::new, |s| s.to_vec()),
            cmd: container.name,
        });
    };
    if !sub.arity_ok(argv.len()) {
        return Err(CommandError::WrongArity(sub.name));
    }
    (sub.handler)(ctx, argv)
}

/// `<CONTAINER> HELP`: the container's help text, one status line per entry, as Redis's
/// `addReplyHelp`.
pub fn help(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let lines = lookup(argv[0]).map_or(&[][..], |c| c.help);
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
    Ok(())
}

/// The name CLIENT LIST shows as a command's `cmd=`: `client|list` for subcommands.
fn full_name(spec: &'static CommandSpec, argv: &[&[u8]]) -> &'static &'static str {
    spec.subcommand(argv).map_or(&spec.name, |s| &s.name)
}

/// The shards `spec` needs for `argv` when run from database `db`.
pub fn plan(
    shared: &Shared,
    spec: &CommandSpec,
    db: usize,
    argv: &[&[u8]],
) -> Result<ShardIds, CommandError> {
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
) -> Result<ShardIds, CommandError> {
    Ok(match spec.keys {
        Keys::None => SmallVec::new(),
        Keys::Parsed { whole_db, .. } if whole_db(argv) => shared.store.db_shards(db).collect(),
        Keys::Range { .. }
        | Keys::KeyNum { .. }
        | Keys::DestKeyNum { .. }
        | Keys::Streams
        | Keys::Migrate
        | Keys::Parsed { .. } => {
            let mut ids = ShardIds::new();
            for i in spec.key_positions(argv) {
                let h = hash_key(argv[i]);
                known.push(argv[i], h);
                ids.push(ShardId::of_hash(db, h));
            }
            ids
        }
        Keys::Db => shared.store.db_shards(db).collect(),
        Keys::All => shared.store.all_shards().collect(),
        Keys::Custom { dbs, .. } => {
            let mut ids = ShardIds::new();
            for i in spec.key_positions(argv) {
                for d in dbs(shared, db, argv, i) {
                    ids.push(ShardId::of_key(d, argv[i]));
                }
            }
            ids
        }
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

/// Looks a request up, checks it, and runs it (or queues it inside MULTI); the reply (or
/// error) goes to `out`. The gates, in Redis 7.0's order: unknown command, arity,
/// authentication (`NO_AUTH`), `NO_MULTI`, maxmemory (`DENYOOM`, see `evict`), MULTI queueing
/// (`NOT_QUEUED`); then, in `run`, the
/// disk-error refusal (`WRITE`, `DISK_ERROR_REFUSES`).
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
    client.handle.touch(full_name(spec, argv));
    // A container's subcommand is the command the gates judge (SCRIPT KILL is ALLOW_BUSY,
    // FUNCTION LOAD is DENYOOM, CONFIG SET is STALE), as Redis's lookupCommand returns it.
    let effective = spec.resolve(argv);
    let context = if client.multi.is_some() {
        super::acl::Context::Multi
    } else {
        super::acl::Context::Toplevel
    };
    if let Err(denied) = super::acl::check(shared, client, spec, argv, context) {
        let err = super::acl::denied_error(denied, spec, argv);
        return reject(shared, client, out, Some(spec), err);
    }
    if client.subs.active() && !out.has_push() && !spec.has(flags::PUBSUB_CONTEXT) {
        let err = CommandError::Err(format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET \
             are allowed in this context",
            full_name(spec, argv)
        ));
        return reject(shared, client, out, Some(spec), err);
    }
    // Before any lock is taken: the running script may hold the locks this command needs.
    if let Some(eval) = shared.scripts.busy() {
        if !effective.has(flags::ALLOW_BUSY) {
            return reject(
                shared,
                client,
                out,
                Some(spec),
                super::script::busy_error(eval),
            );
        }
    }
    if client.multi.is_some() && spec.has(flags::NO_MULTI) {
        let err = CommandError::Err("Command not allowed inside a transaction".into());
        return reject(shared, client, out, Some(spec), err);
    }
    // As Redis's processCommand, which begins with trackingLimitUsedSlots: keys over a
    // lowered tracking-table-max-keys go now, their invalidations before this reply (a
    // relaxed load or two when under the limit).
    if client.tracking.on
        && client.reply == crate::client::Reply::On
        && shared.tracking.enforce_limit(shared)
    {
        shared.tracking.broadcast(shared);
        client.handle.take_outbox(&mut out.buf);
    }
    // What the gates below judge: a script's declared flags stand in for its command's.
    // Looked up only by a gate that applies (a replica's, maxmemory's, a queued command's):
    // an EVALSHA on a plain master finds its script once, when it runs.
    let gate_flags = || gate_flags_of(shared, effective, argv);
    match crate::evict::gate(shared, client, effective, gate_flags) {
        Err(e) => return reject(shared, client, out, Some(spec), e),
        // As Redis: the evicted keys' invalidations reach this client before the reply.
        Ok(true) if client.reply == crate::client::Reply::On => {
            shared.tracking.broadcast(shared);
            client.handle.take_outbox(&mut out.buf);
        }
        Ok(_) => {}
    }
    // A connection's own requests only: the master's stream and the AOF are obeyed.
    if client.pausable {
        if let Some(e) = replica_gate(shared, client, effective, gate_flags) {
            return reject(shared, client, out, Some(spec), e);
        }
    }
    // Redis's last gate: CLIENT PAUSE holds the request; the session parks the client.
    if client.pausable
        && shared.ops.pause.kind() != PauseKind::Off
        && paused(shared, client, gate_flags)
    {
        client.postponed = true;
        return;
    }
    if client.multi.is_some() && !spec.has(flags::NOT_QUEUED) {
        transaction::queue(client, spec, argv, gate_flags());
        transaction::show_multi(client);
        out.simple("QUEUED");
        return;
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
    // CLIENT CACHING applies to the one command (or transaction) after it.
    if client.multi.is_none() && spec.name != "client" {
        client.tracking.caching = false;
    }
    // As Redis's handleClientsBlockedOnKeys after each command: the keys it made ready serve
    // their waiters, now that its locks are released.
    shared.blocking.drain(shared);
    shared.tracking.broadcast(shared);
}

/// Redis's gates of a replica and of a load, in its order: READONLY (a write on a read-only
/// replica), MASTERDOWN (the link is down and `replica-serve-stale-data no`: only `STALE`
/// commands), LOADING (a full sync is loading: only `LOADING` commands). `cmd_flags` are
/// `spec`'s, or a script's declared ones (`script::command_flags`).
fn replica_gate(
    shared: &Shared,
    client: &Client,
    spec: &CommandSpec,
    cmd_flags: impl Fn() -> u32,
) -> Option<CommandError> {
    // Found once, if a check needs it (a script's may take a lookup).
    let found = std::cell::OnceCell::new();
    let has = |f: u32| *found.get_or_init(&cmd_flags) & f != 0;
    let repl = &shared.repl;
    let queued = |f: u32| {
        spec.has(flags::RUNS_QUEUE)
            && client
                .multi
                .as_ref()
                .is_some_and(|m| m.queue.iter().any(|q| q.flags & f != 0))
    };
    // Before a write is queued in MULTI too, and at an EXEC of writes (which then aborts), as
    // Redis's processCommand checks it.
    if !client.master && repl.lacks_good_replicas() && (has(flags::WRITE) || queued(flags::WRITE)) {
        return Some(CommandError::Coded(crate::repl::NOREPLICAS.into()));
    }
    if repl.is_replica() {
        if (has(flags::WRITE) || queued(flags::WRITE)) && shared.refuses_client_writes() {
            return Some(CommandError::Coded(crate::repl::READONLY.into()));
        }
        if shared.serves_stale_only()
            && (!has(flags::STALE)
                || spec.has(flags::RUNS_QUEUE) && !all_queued(client, flags::STALE))
        {
            return Some(CommandError::Coded(crate::repl::MASTERDOWN.into()));
        }
    }
    let loading_ok = spec.has(flags::LOADING)
        && (!spec.has(flags::RUNS_QUEUE) || all_queued(client, flags::LOADING));
    if shared.is_loading() && !loading_ok {
        return Some(CommandError::loading());
    }
    None
}

/// Every command queued in the client's transaction has `flag`.
fn all_queued(client: &Client, flag: u32) -> bool {
    client
        .multi
        .as_ref()
        .is_none_or(|m| m.queue.iter().all(|q| q.flags & flag != 0))
}

/// Whether the pause on now holds back `argv` from `client` (a command from the master: as in
/// Redis, a paused replica reads its master's stream but applies no write of it until the
/// pause ends).
pub fn held_by_pause(shared: &Shared, client: &Client, argv: &[&[u8]]) -> bool {
    if shared.ops.pause.kind() == PauseKind::Off {
        return false;
    }
    let Some(spec) = lookup(argv[0]) else {
        return false;
    };
    let effective = spec.resolve(argv);
    paused(shared, client, || gate_flags_of(shared, effective, argv))
}

/// The flags the gates judge `effective` (run as `argv`) by: a script's declared flags stand
/// in for its command's.
fn gate_flags_of(shared: &Shared, effective: &CommandSpec, argv: &[&[u8]]) -> u32 {
    if effective.has(flags::RUNS_SCRIPT) {
        super::script::command_flags(shared, effective, argv)
    } else {
        effective.flags
    }
}

/// Whether the pause on now holds the command (of gate flags `flags_of`) back: everything
/// under PAUSE ALL; under PAUSE WRITE what may write or replicate (Redis's
/// `is_may_replicate_command`): writes, PUBLISH and PFCOUNT (MAY_REPLICATE), scripts unless
/// they are `_RO` or declare `no-writes`, and an EXEC whose queue has any.
fn paused(shared: &Shared, client: &Client, flags_of: impl Fn() -> u32) -> bool {
    let may_write = |f: u32| f & (flags::WRITE | flags::MAY_REPLICATE) != 0;
    match shared.ops.pause.kind() {
        PauseKind::Off => false,
        PauseKind::All => true,
        PauseKind::Write => {
            let f = flags_of();
            may_write(f)
                || (f & flags::RUNS_QUEUE != 0
                    && client
                        .multi
                        .as_ref()
                        .is_some_and(|m| m.queue.iter().any(|q| may_write(q.flags))))
        }
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
    if let Some(spec) = spec {
        crate::ops::cmdstats::record_rejected(spec);
    }
    let mut msg = err.to_string();
    if spec.is_some_and(|s| s.has(flags::RUNS_QUEUE)) {
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
    if spec.has(flags::WRITE | flags::DISK_ERROR_REFUSES) {
        if let Some(e) = shared.write_refusal() {
            return Err(e.into());
        }
    }
    // `argv` outlives `ctx`, as `KnownKeys` requires.
    let mut ctx = match one_key(spec, argv) {
        _ if spec.has(flags::RUNS_SCRIPT) => Ctx::new(shared, client, out, Locked::none()),
        // Most commands name one key: no vector of slots to build, sort or search.
        Some(key) => {
            let h = hash_key(key);
            let id = ShardId::of_hash(client.db, h);
            let locked = if spec.has(flags::ALLOW_BUSY) {
                shared.lock_one(id, spec.may_change())
            } else {
                shared
                    .lock_unless_busy(smallvec::smallvec![id], spec.may_change())
                    .map_err(super::script::busy_error)?
            };
            let mut ctx = Ctx::new(shared, client, out, locked);
            ctx.ks.known_key(key, h);
            ctx
        }
        None => {
            let mut known = KnownKeys::default();
            let slots = plan_hashed(shared, spec, client.db, argv, &mut known)?;
            known.seal();
            let locked = if spec.has(flags::ALLOW_BUSY) {
                shared.lock(slots, spec.may_change())
            } else {
                shared
                    .lock_unless_busy(slots, spec.may_change())
                    .map_err(super::script::busy_error)?
            };
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
            shared.remove_expired(db, &key);
        }
    }
    if let Some((db, key, fields)) = ctx.ks.take_seen_expired_fields() {
        shared.remove_expired_fields(db, &key, &fields);
    }
    if !ctx.client.serves_waiter {
        shared.stats.commands_processed();
    }
    result
}

/// Runs `spec`'s handler on `ctx`, as Redis's call(): afterwards a tracking client may cache
/// the keys a read-only command read. A script is the exception: it remembers its declared
/// keys once it calls a read-only command (see `script::run`), whatever keys it read.
pub(crate) fn call(ctx: &mut Ctx, spec: &CommandSpec, argv: &[&[u8]]) -> Result<(), CommandError> {
    let result = call_in_script(ctx, spec, argv)?;
    if spec.has(flags::READONLY) && !spec.has(flags::RUNS_SCRIPT) {
        remember_reads(ctx, spec.key_positions(argv).map(|i| argv[i]));
    }
    result
}

/// A writable replica's own client wrote keys: those that now have a deadline are the
/// replica's to expire (see `Repl::local_expires`).
#[cold]
fn remember_local_expires(ctx: &Ctx, spec: &CommandSpec, argv: &[&[u8]]) {
    if let Keys::Custom { .. } = spec.keys {
        return;
    }
    let db = ctx.ks.db;
    for i in spec.key_positions(argv) {
        if ctx.ks.deadline(argv[i]).is_some() {
            (ctx.shared.repl.local_expires.lock()).insert((db, argv[i].to_vec()));
        }
    }
}

/// A tracking client may now cache `keys`.
pub(crate) fn remember_reads<'k>(ctx: &Ctx, keys: impl Iterator<Item = &'k [u8]>) {
    if ctx.client.tracking.remembers() {
        for key in keys {
            ctx.shared.tracking.remember(ctx.shared, ctx.client.id, key);
        }
    }
}

/// Runs `spec`'s handler on `ctx`, remembering nothing for tracking. The outer error is a
/// panic (a bug: nothing client-controlled should panic), contained to this command: its
/// partial reply is dropped, the client gets an error, the panic is in the log, and the locks
/// are released as usual by the caller (parking_lot locks are not poisoned).
pub(crate) fn call_in_script(
    ctx: &mut Ctx,
    spec: &CommandSpec,
    argv: &[&[u8]],
) -> Result<Result<(), CommandError>, CommandError> {
    if spec.is_write() {
        // As Redis's lookupKeyWrite: a write first removes the expired keys it names and logs
        // their DELs ahead of its own record, so that a replay (which expires nothing while it
        // loads) sees the same keys the command saw.
        let db = ctx.ks.db;
        if let Some(key) = one_key(spec, argv) {
            ctx.ks.expire_if_needed(db, key);
        } else if let Keys::Range { .. }
        | Keys::KeyNum { .. }
        | Keys::DestKeyNum { .. }
        | Keys::Streams
        | Keys::Migrate
        | Keys::Parsed { .. } = spec.keys
        {
            // Not a `Keys::Custom` command's: some of its keys are in another database.
            for i in spec.key_positions(argv) {
                ctx.ks.expire_if_needed(db, argv[i]);
            }
        }
    }
    ctx.ks.report_misses = spec.has(flags::READONLY);
    let reply_start = ctx.out.len();
    let ops = &ctx.shared.ops;
    ops.before_call(ctx.shared, ctx.client, spec, argv);
    let started = crate::util::clock::ticks();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (spec.handler)(ctx, argv)));
    let usec = crate::util::clock::ticks_to_us(crate::util::clock::ticks().wrapping_sub(started));
    let failed = !matches!(ran, Ok(Ok(()))) || std::mem::take(&mut ctx.failed);
    if !ctx.client.serves_waiter {
        ops.after_call(ctx.shared, ctx.client, spec, argv, usec, failed);
    }
    if spec.is_write() && !ctx.client.master && ctx.shared.repl.is_replica() {
        remember_local_expires(ctx, spec, argv);
    }
    match ran {
        Ok(result) => Ok(result),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
