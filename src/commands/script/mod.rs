//! Scripting (Redis's eval.c, script.c, functions.c): EVAL and its forms, SCRIPT, FUNCTION,
//! FCALL. `lua` is the interpreter; `run` is what a script's run holds (its locks, its effects,
//! the `Host` its `redis.call` goes through); `function` the libraries; `vms` each thread's
//! interpreters.
//!
//! A script runs as one unit, as EXEC does: its `redis.call`s run through the dispatcher's
//! `call`, against locks already held, and its effects reach the AOF as one record (the write
//! commands it ran, wrapped in MULTI/EXEC when there are several), never as the script.

pub mod dump;
pub mod function;
pub mod ldb;
pub mod lua;
pub mod pool;
pub mod run;
pub mod vms;

use std::cell::OnceCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::flags::*;
use super::{transaction, CommandError, CommandSpec, Ctx, Keys};
use crate::client::Debugging;
use crate::scripts::{flags as sflags, Kill, Script};
use crate::shared::Shared;
use lua::Vm;

/// EVAL's keys: `argv[2]` of them from `argv[3]`.
pub const SCRIPT_KEYS: Keys = Keys::KeyNum {
    count: 2,
    first: 3,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "eval",
        -3,
        NOSCRIPT | STALE | MOVABLEKEYS | SKIP_MONITOR | NO_MANDATORY_KEYS | RUNS_SCRIPT,
        SCRIPT_KEYS,
        eval
    ),
    cmd!(
        "evalsha",
        -3,
        NOSCRIPT | STALE | MOVABLEKEYS | SKIP_MONITOR | NO_MANDATORY_KEYS | RUNS_SCRIPT,
        SCRIPT_KEYS,
        evalsha
    ),
    cmd!(
        "eval_ro",
        -3,
        NOSCRIPT | STALE | READONLY | MOVABLEKEYS | SKIP_MONITOR | NO_MANDATORY_KEYS | RUNS_SCRIPT,
        SCRIPT_KEYS,
        eval_ro
    ),
    cmd!(
        "evalsha_ro",
        -3,
        NOSCRIPT | STALE | READONLY | MOVABLEKEYS | SKIP_MONITOR | NO_MANDATORY_KEYS | RUNS_SCRIPT,
        SCRIPT_KEYS,
        evalsha_ro
    ),
    cmd!("script", -2, 0, Keys::None, super::dispatch_sub)
        .container(SCRIPT_SUBCOMMANDS, SCRIPT_HELP),
];

static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("script|debug", 3, NOSCRIPT, Keys::None, script_debug),
    cmd!("script|exists", -3, NOSCRIPT, Keys::None, script_exists),
    cmd!("script|flush", -2, NOSCRIPT, Keys::None, script_flush),
    cmd!(
        "script|kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        Keys::None,
        script_kill
    ),
    cmd!("script|load", 3, NOSCRIPT | STALE, Keys::None, script_load),
    cmd!("script|help", 2, LOADING | STALE, Keys::None, super::help),
];

static SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// Redis's `-BUSY` replies, for a script (`eval`) or a function running long.
pub fn busy_error(eval: bool) -> CommandError {
    CommandError::Coded(format!(
        "BUSY Redis is busy running a script. You can only call {} KILL or SHUTDOWN NOSAVE.",
        if eval { "SCRIPT" } else { "FUNCTION" }
    ))
}

fn noscript() -> CommandError {
    CommandError::Coded("NOSCRIPT No matching script. Please use EVAL.".into())
}

thread_local! {
    /// This thread's EVAL interpreter (see `vms`).
    static EVAL_VM: OnceCell<Arc<vms::Slot>> = const { OnceCell::new() };
}

static EVAL_VMS: vms::Interpreters = vms::Interpreters::new();

/// Runs `f` on this thread's EVAL interpreter, made anew after SCRIPT FLUSH (Redis resets its
/// interpreter there too).
fn with_eval_vm<R>(shared: &Shared, f: impl FnOnce(&mut Vm) -> R) -> Result<R, CommandError> {
    let scripts = &shared.scripts;
    let generation = scripts.cache_gen.load(Ordering::SeqCst);
    EVAL_VMS.with(
        &EVAL_VM,
        generation,
        &scripts.eval_vm_bytes,
        || Vm::new_eval(generation),
        f,
    )
}

/// The body Lua compiles: the shebang line blanked, its line feed kept so that line numbers
/// stay the user's.
fn compile_in(
    vm: &Vm,
    sha: &[u8; 40],
    body: &[u8],
    shebang_len: usize,
) -> Result<(), CommandError> {
    vm.compile_script(sha, &body[shebang_len..]).map_err(|e| {
        CommandError::Err(format!(
            "Error compiling script (new function): {}",
            String::from_utf8_lossy(&e)
        ))
    })
}

/// Adds `body` to the cache (compiling it here first, as Redis's luaCreateFunction does).
fn create_script(
    shared: &Shared,
    body: &[u8],
) -> Result<(std::sync::Arc<Script>, [u8; 40]), CommandError> {
    let sha = crate::util::sha1::sha1_hex(body);
    if let Some(s) = shared.scripts.get(&sha) {
        return Ok((s, sha));
    }
    let (flags, shebang_len) = lua::shebang_flags(body).map_err(CommandError::Err)?;
    with_eval_vm(shared, |vm| compile_in(vm, &sha, body, shebang_len))??;
    Ok((shared.scripts.insert(sha, body, flags), sha))
}

fn eval(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    eval_generic(ctx, argv, false, false)
}

fn evalsha(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    eval_generic(ctx, argv, true, false)
}

fn eval_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    eval_generic(ctx, argv, false, true)
}

fn evalsha_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    eval_generic(ctx, argv, true, true)
}

/// KEYS' count, checked as Redis checks it (`bad` is FCALL's message for a count that is not
/// a number).
pub fn numkeys(argv: &[&[u8]], bad: Option<&str>) -> Result<usize, CommandError> {
    let n = match super::args::int(argv[2]) {
        Ok(n) => n,
        Err(e) => return Err(bad.map_or(e, |m| CommandError::Err(m.into()))),
    };
    if n > argv.len() as i64 - 3 {
        return Err(CommandError::Err(
            "Number of keys can't be greater than number of args".into(),
        ));
    }
    if n < 0 {
        return Err(CommandError::Err("Number of keys can't be negative".into()));
    }
    Ok(n as usize)
}

fn eval_generic(ctx: &mut Ctx, argv: &[&[u8]], by_sha: bool, ro: bool) -> Result<(), CommandError> {
    // As Redis's evalCommand: a client in debug mode debugs its next EVAL (run from its own
    // connection, not inside EXEC), then is closed.
    let debugging = ctx.client.ldb;
    if debugging != Debugging::Off
        && ctx.effects.is_none()
        && !ctx.client.in_script
        && ldb::has_console()
    {
        if by_sha {
            return Err(CommandError::Err(
                "Please use EVAL instead of EVALSHA for debugging".into(),
            ));
        }
        let timeout_ms = ctx.shared.config.read().busy_reply_threshold;
        if debugging == Debugging::Forked {
            return debug_forked(ctx, argv, ro, timeout_ms);
        }
        if let Some(r) = ldb::session(argv[1], timeout_ms, false, || {
            eval_script(ctx, argv, false, ro, true)
        }) {
            ctx.client.close_after_reply = true;
            return r;
        }
    }
    eval_script(ctx, argv, by_sha, ro, false)
}

/// SCRIPT DEBUG YES's EVAL (Redis's ldbStartSession with a fork): the child debugs on a
/// copy of the data and exits; here the client is closed without a reply, as in Redis.
fn debug_forked(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    ro: bool,
    timeout_ms: u64,
) -> Result<(), CommandError> {
    let shared = ctx.shared;
    // Cached and compiled before the fork, so that the child takes no lock for it.
    create_script(shared, argv[1])?;
    // Every shard and the script token, so that no command is half-applied in the child's
    // image and every keyspace lock there is the child's own (see `ldb::fork`).
    let all = shared
        .lock_for_script(shared.store.all_shards().collect())
        .map_err(busy_error)?;
    ctx.client.ldb = Debugging::Off;
    match ldb::fork() {
        Err(e) => Err(CommandError::Err(format!(
            "Fork() failed: can't run EVAL in debugging mode: {e}"
        ))),
        Ok(Some(_)) => {
            drop(all);
            ctx.client.close_after_reply = true;
            Ok(())
        }
        Ok(None) => {
            // The child: run as inside EXEC, on the locks held, its effects kept from the AOF
            // and replicas and dropped with the process.
            ctx.ks.locked = all;
            ctx.effects = Some(transaction::Effects::new(ctx.client.db));
            let mark = ctx.out.len();
            let r = ldb::session(argv[1], timeout_ms, true, || {
                eval_script(ctx, argv, false, ro, true)
            });
            if let Some(Err(e)) = r {
                ctx.out.error(&e.to_string());
            }
            ldb::end_child(&ctx.out.as_bytes()[mark..])
        }
    }
}

fn eval_script(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    by_sha: bool,
    ro: bool,
    debug: bool,
) -> Result<(), CommandError> {
    if by_sha && argv[1].len() != 40 {
        return Err(noscript());
    }
    let nkeys = numkeys(argv, None)?;
    let (script, sha) = if by_sha {
        let mut sha = [0u8; 40];
        sha.copy_from_slice(argv[1]);
        sha.make_ascii_lowercase();
        (ctx.shared.scripts.get(&sha).ok_or_else(noscript)?, sha)
    } else {
        create_script(ctx.shared, argv[1])?
    };
    let shared = ctx.shared;
    let name = String::from_utf8_lossy(&sha).into_owned();
    let plan = run::Plan {
        eval: true,
        name: &name,
        flags: script.flags,
        ro,
        wide: &script.wide,
        keys: &argv[3..3 + nkeys],
        args: &argv[3 + nkeys..],
        argv,
        debug,
    };
    with_eval_vm(shared, |vm| {
        if !vm.has_script(&sha) {
            // Cached by another thread: compiled here on first use (it compiled there).
            let (_, shebang_len) = lua::shebang_flags(&script.body).unwrap_or((0, 0));
            compile_in(vm, &sha, &script.body, shebang_len)?;
        }
        run::run(ctx, vm, lua::Target::Script(&sha), &plan)
    })?
}

fn script_debug(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // Replies already waiting would reach the client after the debugger's, which writes to
    // the socket itself.
    if !ctx.out.is_empty() {
        return Err(CommandError::Err(
            "SCRIPT DEBUG must be called outside a pipeline".into(),
        ));
    }
    let mode = argv[2];
    if mode.eq_ignore_ascii_case(b"no") {
        ctx.client.ldb = Debugging::Off;
    } else if mode.eq_ignore_ascii_case(b"sync") {
        ctx.client.ldb = Debugging::Sync;
    } else if mode.eq_ignore_ascii_case(b"yes") {
        ctx.client.ldb = Debugging::Forked;
    } else {
        return Err(CommandError::Err("Use SCRIPT DEBUG YES/SYNC/NO".into()));
    }
    ctx.out.ok();
    Ok(())
}

fn script_exists(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.array(argv.len() - 2);
    for sha in &argv[2..] {
        ctx.out.int(ctx.shared.scripts.exists(sha) as i64);
    }
    Ok(())
}

/// The SYNC/ASYNC argument of SCRIPT FLUSH and FUNCTION FLUSH (both free at once here).
pub fn flush_mode(argv: &[&[u8]], what: &str) -> Result<(), CommandError> {
    match argv.len() {
        2 => Ok(()),
        3 if argv[2].eq_ignore_ascii_case(b"sync") || argv[2].eq_ignore_ascii_case(b"async") => {
            Ok(())
        }
        _ => Err(CommandError::Err(format!(
            "{what} FLUSH only support{} SYNC|ASYNC option",
            if what == "SCRIPT" { "" } else { "s" }
        ))),
    }
}

fn script_flush(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    flush_mode(argv, "SCRIPT")?;
    let scripts = &ctx.shared.scripts;
    scripts.flush();
    EVAL_VMS.close_stale(
        scripts.cache_gen.load(Ordering::SeqCst),
        &scripts.eval_vm_bytes,
    );
    ctx.out.ok();
    Ok(())
}

fn script_load(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (_, sha) = create_script(ctx.shared, argv[2])?;
    ctx.out.bulk(&sha);
    Ok(())
}

fn script_kill(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    kill_reply(ctx, true)
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL.
pub fn kill_reply(ctx: &mut Ctx, eval: bool) -> Result<(), CommandError> {
    match ctx.shared.scripts.kill(eval) {
        Kill::Killed => {
            ctx.out.ok();
            Ok(())
        }
        Kill::NotBusy => Err(CommandError::Coded(
            "NOTBUSY No scripts in execution right now.".into(),
        )),
        Kill::Unkillable => Err(CommandError::Coded(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. \
             You can either wait the script termination or kill the server in a hard way using \
             the SHUTDOWN NOSAVE command."
                .into(),
        )),
        Kill::WrongKind { eval } => Err(busy_error(eval)),
    }
}

/// The flags the dispatcher's gates judge a script command by (Redis's getCommandFlags with
/// evalGetCommandFlags / fcallGetCommandFlags): a script that declares flags (a shebang, or
/// a function's) replaces the command's write, denyoom and stale flags with what they say, as
/// scriptFlagsToCmdFlags, so a replica refuses it with READONLY or MASTERDOWN and maxmemory
/// with OOM before it runs. An EVAL without a shebang, an unknown script and an unknown
/// function keep the command's flags (their errors come when they run).
pub fn command_flags(shared: &Shared, spec: &CommandSpec, argv: &[&[u8]]) -> u32 {
    let declared = match spec.name {
        "eval" | "eval_ro" => lua::shebang_flags(argv[1]).ok().map(|(f, _)| f),
        "evalsha" | "evalsha_ro" => shared.scripts.flags_of(argv[1]),
        "fcall" | "fcall_ro" => {
            let libs = shared.scripts.libraries();
            libs.function(&String::from_utf8_lossy(argv[1]))
                .map(|(_, f)| f.flags)
        }
        _ => None,
    };
    match declared {
        Some(f) if f & sflags::EVAL_COMPAT_MODE == 0 => {
            let mut flags = spec.flags & !(STALE | DENYOOM | WRITE);
            if f & (sflags::ALLOW_OOM | sflags::NO_WRITES) == 0 {
                flags |= DENYOOM;
            }
            if f & sflags::NO_WRITES == 0 {
                flags |= WRITE;
            }
            if f & sflags::ALLOW_STALE != 0 {
                flags |= STALE;
            }
            flags
        }
        // As Redis's EVAL, EVALSHA and FCALL, which are MAY_REPLICATE until a script says
        // what it does (their _RO forms are not).
        _ if spec.has(READONLY) => spec.flags,
        _ => spec.flags | MAY_REPLICATE,
    }
}

/// The flags a script's shebang declares, as FUNCTION LIST and Redis's scriptFlagsToCmdFlags
/// read them: true if the script may write.
pub fn may_write(flags: u32) -> bool {
    flags & sflags::EVAL_COMPAT_MODE != 0 || flags & sflags::NO_WRITES == 0
}
