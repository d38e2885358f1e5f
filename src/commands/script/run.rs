//! One run of a script or function: its checks (Redis's scriptPrepareForRun), its locks, the
//! `Host` its `redis.call`s go through (Redis's scriptCall), its effects, and the watch over
//! its duration (busy-reply-threshold, SCRIPT KILL).
//!
//! Locks. A run takes the shards of the keys it declares, and a command it runs on a key it
//! did not declare takes that key's shard too: held until the run ends, every shard it
//! touched keeps it atomic. A run that may write first takes the store's script token
//! (`Shared::lock_for_script`), which lets it wait for such a shard whoever holds it and
//! whatever it holds (see `store`'s module comment for why no deadlock can follow), so it
//! never has to give up or undo a write: as in standalone Redis, the script just works. The
//! token makes the runs of scripts that may write one at a time, as Redis runs every script;
//! commands and read-only scripts still run beside them. A run that cannot write (EVAL_RO,
//! `no-writes`) holds no token and never waits out of order: if the shard is taken it starts
//! again holding every shard (it changed nothing), and later runs of that script take every
//! shard from the start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::lua::{Hook, Host, Target, Vm};
use super::CommandError;
use crate::commands::dispatch::{call_in_script, remember_reads};
use crate::commands::transaction::{Effects, TO_AOF, TO_REPLICAS};
use crate::commands::{lookup, plan, Ctx};
use crate::scripts::{flags as sflags, Running};
use crate::shared::Shared;
use crate::store::{Locked, ShardId, ShardIds};

/// What is run, and how.
pub struct Plan<'a> {
    /// EVAL rather than FCALL.
    pub eval: bool,
    /// The SHA-1 or the function's name, for error replies.
    pub name: &'a str,
    pub flags: u32,
    /// EVAL_RO, EVALSHA_RO, FCALL_RO.
    pub ro: bool,
    pub wide: &'a AtomicBool,
    pub keys: &'a [&'a [u8]],
    pub args: &'a [&'a [u8]],
    pub argv: &'a [&'a [u8]],
    /// Run under the debugger (see `ldb`).
    pub debug: bool,
}

/// The configured busy-reply-threshold, in milliseconds (0: never busy).
fn threshold_ms(shared: &Shared) -> u64 {
    shared.config.read().busy_reply_threshold
}

use crate::repl::NOREPLICAS;

/// Redis's scriptPrepareForRun checks, for a script with declared flags.
fn prepare(ctx: &Ctx, plan: &Plan) -> Result<(), CommandError> {
    let stale = ctx.shared.serves_stale_only();
    if plan.flags & sflags::EVAL_COMPAT_MODE != 0 {
        // EVAL is `stale` for the dispatcher; a script without flags is not.
        if stale {
            return Err(CommandError::Coded(crate::repl::MASTERDOWN.into()));
        }
        return Ok(());
    }
    if stale && plan.flags & sflags::ALLOW_STALE == 0 {
        return Err(CommandError::Coded(
            "MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' and \
             'allow-stale' flag is not set on the script."
                .into(),
        ));
    }
    if plan.flags & sflags::NO_WRITES != 0 {
        return Ok(());
    }
    if ctx.client.pausable && ctx.shared.refuses_client_writes() {
        return Err(CommandError::Coded(
            "READONLY Can not run script with write flag on readonly replica".into(),
        ));
    }
    match ctx.shared.write_refusal() {
        Some(crate::shared::WriteRefusal::Aof(e)) => {
            return Err(CommandError::Coded(format!(
                "MISCONF Redis is configured to persist data to AOF, but it's currently unable to \
                 persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only \
                 scripts. AOF error: {e}"
            )))
        }
        Some(e) => return Err(CommandError::Coded(e.to_string())),
        None => {}
    }
    if !ctx.client.master && ctx.shared.repl.lacks_good_replicas() {
        return Err(CommandError::Coded(NOREPLICAS.into()));
    }
    if plan.ro {
        return Err(CommandError::Err(
            "Can not execute a script with write flag using *_ro command.".into(),
        ));
    }
    // Redis refuses such a script before it runs, in processCommand, as its flags make it
    // `denyoom`: the same words here.
    if plan.flags & sflags::ALLOW_OOM == 0
        && crate::store::evict::maxmemory() > 0
        && crate::evict::oom_at_start()
    {
        return Err(CommandError::Coded(crate::evict::OOM.into()));
    }
    Ok(())
}

/// Runs `target` on `vm` for `ctx`'s client, writing its reply to `ctx.out`.
pub fn run(ctx: &mut Ctx, vm: &mut Vm, target: Target, plan: &Plan) -> Result<(), CommandError> {
    prepare(ctx, plan)?;
    let read_only = plan.ro
        || (plan.flags & sflags::EVAL_COMPAT_MODE == 0 && plan.flags & sflags::NO_WRITES != 0);
    let shared = ctx.shared;
    let in_exec = ctx.effects.is_some();
    let start_db = ctx.client.db;
    let reply_start = ctx.out.len();
    let mut wide = plan.wide.load(Ordering::Relaxed);
    loop {
        if !in_exec {
            let ids: ShardIds = if wide {
                shared.store.all_shards().collect()
            } else {
                plan.keys
                    .iter()
                    .map(|k| ShardId::of_key(start_db, k))
                    .collect()
            };
            let locked = match wide || read_only {
                // Every shard held, or no write possible: no token needed.
                true => shared.lock_unless_busy(ids, !read_only),
                false => shared.lock_for_script(ids),
            };
            ctx.ks.locked = locked.map_err(super::busy_error)?;
        }
        let effects = ctx.effects.take().unwrap_or_else(|| Effects::new(start_db));
        let deny_blocking = std::mem::replace(&mut ctx.client.deny_blocking, true);
        let in_script = std::mem::replace(&mut ctx.client.in_script, true);
        let mut host = Run {
            ctx: &mut *ctx,
            plan,
            resp: 2,
            read_only,
            lock_write: !read_only,
            wrote: false,
            repl_to: TO_AOF | TO_REPLICAS,
            started: Instant::now(),
            threshold_ms: threshold_ms(shared),
            running: None,
            effects: Some(effects),
            restart: false,
            in_exec,
            wide,
            tracked: false,
        };
        let hook = match (plan.debug, host.threshold_ms > 0) {
            (true, _) => Hook::Debug,
            (false, true) => Hook::Count,
            (false, false) => Hook::None,
        };
        let errors = vm.call(target, plan.name, plan.keys, plan.args, hook, &mut host);
        let restart = host.restart;
        let effects = host.effects.take();
        if let Some(r) = host.running.take() {
            shared.scripts.leave_busy(&r);
        }
        drop(host);
        ctx.client.deny_blocking = deny_blocking;
        ctx.client.in_script = in_script;
        ctx.select(start_db);
        if restart {
            // Nothing was written: the run starts again, holding every shard.
            plan.wide.store(true, Ordering::Relaxed);
            ctx.out.buf.truncate(reply_start);
            if in_exec {
                ctx.effects = effects;
            } else {
                ctx.ks.locked = Locked::none();
            }
            wide = true;
            continue;
        }
        for e in &errors.counted {
            shared.stats.error_reply(e);
        }
        ctx.failed = errors.any;
        if let Some(e) = effects {
            if in_exec {
                ctx.effects = Some(e);
            } else {
                e.propagate(ctx);
            }
        }
        return Ok(());
    }
}

/// The host of one run (Redis's scriptRunCtx).
struct Run<'r, 'c, 'a> {
    ctx: &'r mut Ctx<'c>,
    plan: &'r Plan<'a>,
    resp: u8,
    read_only: bool,
    lock_write: bool,
    wrote: bool,
    /// Where the commands' records go (redis.set_repl): `TO_AOF`, `TO_REPLICAS`, both or none.
    repl_to: u8,
    started: Instant,
    threshold_ms: u64,
    running: Option<Arc<Running>>,
    effects: Option<Effects>,
    /// Thrown away, to run again holding every shard.
    restart: bool,
    in_exec: bool,
    wide: bool,
    /// The caller's tracking has remembered the declared keys.
    tracked: bool,
}

impl Run<'_, '_, '_> {
    /// Takes the shards `argv` needs that the run does not hold yet.
    fn take_shards(&mut self, ids: &ShardIds) -> Result<(), String> {
        let store = &self.ctx.shared.store;
        for &id in ids {
            let locked = &mut self.ctx.ks.locked;
            if locked.holds_for(id, self.lock_write) {
                continue;
            }
            if locked.holds_token() {
                // Held for writing like every shard of a run that may write: it only waits.
                if locked.add_waiting(store, id, self.lock_write) {
                    continue;
                }
            } else {
                // Nor while a dump runs: a shard taken late would escape its settling (see
                // `Shared::lock_for_script`); the run starts again instead, below.
                let shared = self.ctx.shared;
                let dumping =
                    shared.aof_handle().rewrite.in_progress() || shared.snapshots.in_progress();
                if !dumping && !self.wide && locked.try_add(store, id, self.lock_write) {
                    continue;
                }
            }
            // Without the token a run writes nothing (it cannot, or holds every shard and so
            // never gets here), and a run inside EXEC has it (see `transaction::exec`): this
            // run changed nothing and can be thrown away.
            debug_assert!(!self.wrote && !self.in_exec);
            self.restart = true;
            return Err("Script is being run again".into());
        }
        Ok(())
    }
    /// Redis's scriptCall checks before a command runs: the command and whether it ran, or
    /// the refusal (and the command, when there is one).
    #[allow(clippy::type_complexity)]
    fn admit(
        &mut self,
        argv: &[&[u8]],
    ) -> Result<
        (&'static crate::commands::CommandSpec, bool),
        (Option<&'static crate::commands::CommandSpec>, String),
    > {
        // A container's subcommand is the command (SCRIPT LOAD is NOSCRIPT), as Redis's
        // lookupCommand finds it; the container alone is itself (and fails its arity).
        let spec = match lookup(argv[0]) {
            Some(c) if c.subcommands.is_empty() || argv.len() < 2 => Some(c),
            Some(c) => c.subcommand(argv),
            None => None,
        };
        let Some(spec) = spec else {
            return Err((None, "Unknown Redis command called from script".into()));
        };
        if !spec.arity_ok(argv.len()) {
            return Err((
                Some(spec),
                "Wrong number of args calling Redis command from script".into(),
            ));
        }
        if spec.has(crate::commands::flags::NOSCRIPT)
            && !self
                .ctx
                .shared
                .scripts
                .disable_deny_script
                .load(Ordering::Relaxed)
        {
            return Err((
                Some(spec),
                "This Redis command is not allowed from script".into(),
            ));
        }
        // Redis's scriptVerifyAllowStale: an `allow-stale` script on a replica that serves
        // stale data only may run only the commands that may.
        if !spec.has(crate::commands::flags::STALE) && self.ctx.shared.serves_stale_only() {
            return Err((
                Some(spec),
                "Can not execute the command on a stale replica".into(),
            ));
        }
        if let Err(denied) = crate::commands::acl::check(
            self.ctx.shared,
            self.ctx.client,
            spec,
            argv,
            crate::commands::acl::Context::Lua,
        ) {
            return Err((
                Some(spec),
                crate::commands::acl::script_denied_error(denied),
            ));
        }
        let write = spec.is_write();
        // As Redis's scriptVerifyWriteCommandAllow, a read-only script may not run what may
        // replicate either (PUBLISH, PFCOUNT): that is what lets such scripts run during
        // CLIENT PAUSE WRITE.
        if spec.may_change() && self.read_only {
            return Err((
                Some(spec),
                "Write commands are not allowed from read-only scripts.".into(),
            ));
        }
        // Redis's scriptVerifyWriteCommandAllow, up to the script's first write (after one,
        // failing on the server's state would leave it half done): a client's script may not
        // write on a read-only replica (the master's scripts are obeyed), nor when writes are
        // refused for the disk, nor (a script without flags: see `prepare`) lacking replicas.
        if write && !self.wrote {
            if self.ctx.client.pausable && self.ctx.shared.refuses_client_writes() {
                return Err((Some(spec), format!("-{}", crate::repl::READONLY)));
            }
            if let Some(e) = self.ctx.shared.write_refusal() {
                return Err((Some(spec), format!("-{e}")));
            }
            if !self.ctx.client.master && self.ctx.shared.repl.lacks_good_replicas() {
                return Err((Some(spec), format!("-{NOREPLICAS}")));
            }
        }
        // Redis's scriptVerifyOOM: a script that began out of memory may not make its first
        // write with a command that can grow it (after one, it could not stop half-way).
        if spec.has(crate::commands::flags::DENYOOM)
            && !self.wrote
            && self.plan.flags & sflags::ALLOW_OOM == 0
            && crate::store::evict::maxmemory() > 0
            && crate::evict::oom_at_start()
        {
            return Err((Some(spec), format!("-{}", crate::evict::OOM)));
        }
        Ok((spec, write))
    }
}

impl Host for Run<'_, '_, '_> {
    fn call(&mut self, argv: &[&[u8]], reply: &mut Vec<u8>) -> Result<(), String> {
        if self.restart {
            // The run is to be thrown away: nothing more may happen in it.
            return Err("Script is being run again".into());
        }
        let (spec, write) = match self.admit(argv) {
            Ok(admitted) => admitted,
            Err((spec, e)) => {
                // As Redis's scriptCall: a refusal counts as an error reply (the script's
                // own error reply later does not), and as a rejected call of the command.
                let code_first = e
                    .strip_prefix('-')
                    .map_or(format!("ERR {e}"), str::to_owned);
                self.ctx.shared.stats.error_reply(&code_first);
                if let Some(spec) = spec {
                    crate::ops::cmdstats::record_rejected(spec);
                }
                return Err(e);
            }
        };
        let shared = self.ctx.shared;
        let ids = match plan(shared, spec, self.ctx.ks.db, argv) {
            Ok(ids) => ids,
            Err(e) => {
                reply.extend_from_slice(format!("-{e}\r\n").as_bytes());
                return Ok(());
            }
        };
        self.take_shards(&ids)?;
        if write {
            self.wrote = true;
            if let Some(r) = &self.running {
                r.wrote.store(true, Ordering::SeqCst);
            }
        }
        let start = self.ctx.out.len();
        let protocol = self.ctx.out.protocol();
        self.ctx.out.set_protocol(self.resp);
        let result = call_in_script(self.ctx, spec, argv);
        if spec.has(crate::commands::flags::READONLY) && result.is_ok() && !self.tracked {
            // As Redis's call() for a script: its first read makes the caller cache the keys
            // the script declared, not the keys it read.
            self.tracked = true;
            remember_reads(self.ctx, self.plan.keys.iter().copied());
        }
        if let Err(e) = result.and_then(|r| r) {
            let msg = e.to_string();
            self.ctx.out.error(&msg);
            shared.stats.error_reply(&msg);
        }
        self.ctx.out.set_protocol(protocol);
        let mut effects = self
            .effects
            .take()
            .unwrap_or_else(|| Effects::new(self.ctx.ks.db));
        effects.add_to(self.ctx, spec, argv, self.repl_to);
        self.effects = Some(effects);
        shared.stats.commands_processed();
        reply.extend_from_slice(&self.ctx.out.buf[start..]);
        self.ctx.out.buf.truncate(start);
        Ok(())
    }

    fn set_resp(&mut self, resp: u8) {
        self.resp = resp;
    }

    fn out(&mut self) -> &mut crate::resp::ReplyBuf {
        self.ctx.out
    }

    fn resp(&self) -> u8 {
        self.resp
    }

    fn set_repl(&mut self, flags: u8) {
        // REPL_AOF is 1 and REPL_REPLICA 2, as Effects' targets.
        self.repl_to = flags & 3;
    }

    fn interrupt(&mut self) -> bool {
        if self.running.is_none() {
            let elapsed = self.started.elapsed().as_millis() as u64;
            // (A debugged script's hook asks whatever the threshold; 0 is never busy.)
            if elapsed < self.threshold_ms || self.threshold_ms == 0 {
                return false;
            }
            log::warn!(
                "Slow script detected: still in execution after {elapsed} milliseconds. You can \
                 try killing the script using the {} command. Script name is: {}.",
                if self.plan.eval {
                    "SCRIPT KILL"
                } else {
                    "FUNCTION KILL"
                },
                self.plan.name
            );
            let r = Arc::new(Running {
                eval: self.plan.eval,
                name: self.plan.name.to_owned(),
                command: self.plan.argv.iter().map(|a| a.to_vec()).collect(),
                started: self.started,
                wrote: AtomicBool::new(self.wrote),
                kill: AtomicBool::new(false),
            });
            self.ctx.shared.scripts.enter_busy(r.clone());
            self.running = Some(r);
        }
        self.running
            .as_ref()
            .is_some_and(|r| r.kill.load(Ordering::SeqCst))
    }

    fn acl_check(&self, argv: &[&[u8]]) -> Option<bool> {
        let spec = lookup(argv.first()?)?;
        // As Redis's lookupCommand: a container with an argument names one of its
        // subcommands, or nothing.
        let spec = match spec.subcommands.is_empty() || argv.len() < 2 {
            true => spec,
            false => spec.subcommand(argv)?,
        };
        Some(match &self.ctx.client.user {
            Some(user) if !user.unrestricted => user.check(spec, argv).is_ok(),
            _ => true,
        })
    }
}
