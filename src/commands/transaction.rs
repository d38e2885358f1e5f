//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis's multi.c).
//!
//! EXEC is atomic: it takes, at once, the union of the locks every queued command needs (and
//! those of the watched keys), runs every command against those same held locks, and sends one
//! AOF record for the whole transaction before releasing them. No other client can see, in a
//! reply or in the AOF, half of a transaction.

use std::sync::atomic::Ordering;

use super::flags::*;
use super::{args, call, plan, CommandError, CommandSpec, Ctx, Keys, ALL_KEYS};
use crate::client::Client;
use crate::resp::reply::encode_command;
use crate::shared::Shared;
use crate::store::{Locked, ShardId, ShardIds};

pub use crate::client::{Multi, Queued, Watched, WatchedAs};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NOT_QUEUED,
        Keys::None,
        multi
    ),
    cmd!(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | NOT_QUEUED | RUNS_QUEUE,
        Keys::None,
        exec
    ),
    cmd!(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NOT_QUEUED,
        Keys::None,
        discard
    ),
    cmd!(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NOT_QUEUED,
        ALL_KEYS,
        watch
    ),
    cmd!(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        Keys::None,
        unwatch
    ),
];

pub fn queue(client: &mut Client, spec: &'static CommandSpec, argv: &[&[u8]], flags: u32) {
    if let Some(m) = client.multi.as_mut() {
        m.queue.push(Queued {
            spec,
            argv: argv.iter().map(|a| a.to_vec()).collect(),
            flags,
        });
    }
}

/// Publishes the transaction's state to CLIENT LIST (`flags=x multi=<queued>`).
pub fn show_multi(client: &Client) {
    client.handle.state.lock().multi = client.multi.as_ref().map_or(-1, |m| m.queue.len() as i64);
}

/// Forgets every key `client` watches (UNWATCH, EXEC, DISCARD, and a disconnect).
pub fn unwatch_all(shared: &Shared, client: &mut Client) {
    let flag = &client.handle.watch_flag;
    if !client.watched.is_empty() {
        shared.watches.unwatch_keys(
            client.watched.keys().map(|(db, k)| (*db, k.as_slice())),
            flag,
        );
        client.watched.clear();
    }
    // No watch of ours is registered any more, so nothing can set the flag after this.
    flag.store(false, Ordering::SeqCst);
}

fn multi(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    if ctx.client.multi.is_some() {
        return Err(CommandError::Err("MULTI calls can not be nested".into()));
    }
    ctx.client.multi = Some(Multi::default());
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    if ctx.client.multi.take().is_none() {
        return Err(CommandError::Err("DISCARD without MULTI".into()));
    }
    unwatch_all(ctx.shared, ctx.client);
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    unwatch_all(ctx.shared, ctx.client);
    ctx.out.ok();
    Ok(())
}

/// Runs under read locks of the keys' shards, so a change made after WATCH returns is seen.
fn watch(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if ctx.client.multi.is_some() {
        return Err(CommandError::Err(
            "WATCH inside MULTI is not allowed".into(),
        ));
    }
    let flag = ctx.client.handle.watch_flag.clone();
    let db = ctx.ks.db;
    for key in &argv[1..] {
        let id = (db, key.to_vec());
        if ctx.client.watched.contains_key(&id) {
            continue;
        }
        let shard = ctx.ks.locked.shard(ShardId::of_key(db, key));
        let state = if shard.is_expired(key, ctx.ks.clock()) {
            WatchedAs::Expired
        } else if shard.contains(key) {
            WatchedAs::Live
        } else {
            WatchedAs::Absent
        };
        let expired = state == WatchedAs::Expired;
        ctx.shared.watches.watch(db, key, &flag, expired);
        ctx.client.watched.insert(id, state);
    }
    ctx.out.ok();
    Ok(())
}

/// The database a queued SELECT moves to, if it is valid.
fn selected_db(shared: &Shared, q: &Queued) -> Option<usize> {
    if !q.spec.has(SELECTS_DB) {
        return None;
    }
    let db = args::int(q.argv.get(1)?).ok()?;
    (db >= 0 && (db as usize) < shared.store.dbs.len()).then_some(db as usize)
}

/// True if a watched key changed (or expired) since WATCH. Called with the watched keys'
/// shards locked. A write flags the watchers; expiry does not, so a key live at WATCH that is
/// now expired, or gone with no write, has expired since.
fn watched_key_changed(ctx: &Ctx) -> bool {
    if ctx.client.handle.watch_flag.load(Ordering::SeqCst) {
        return true;
    }
    ctx.client.watched.iter().any(|((db, key), then)| {
        let shard = ctx.ks.locked.shard(ShardId::of_key(*db, key));
        *then == WatchedAs::Live && (!shard.contains(key) || shard.is_expired(key, ctx.ks.clock()))
    })
}

fn exec(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(multi) = ctx.client.multi.take() else {
        return Err(CommandError::Err("EXEC without MULTI".into()));
    };
    if multi.failed {
        unwatch_all(ctx.shared, ctx.client);
        return Err(CommandError::Coded(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    // A script may write: its run needs write locks (see `script::run`).
    let write = multi
        .queue
        .iter()
        .any(|q| q.effective().is_write() || q.spec.has(RUNS_SCRIPT));
    if write {
        if let Some(e) = ctx.shared.write_refusal() {
            unwatch_all(ctx.shared, ctx.client);
            return Err(CommandError::Coded(format!(
                "EXECABORT Transaction discarded because of: {e}"
            )));
        }
    }

    // The union of every command's lock plan, each planned in the database it will run in.
    let mut slots = ShardIds::new();
    let mut plans: Vec<Result<(), CommandError>> = Vec::with_capacity(multi.queue.len());
    let mut db = ctx.client.db;
    for q in &multi.queue {
        if let Some(d) = selected_db(ctx.shared, q) {
            db = d;
        }
        plans.push(plan(ctx.shared, q.spec, db, &q.args()).map(|s| slots.extend(s)));
    }
    slots.extend(
        ctx.client
            .watched
            .keys()
            .map(|(db, k)| ShardId::of_key(*db, k)),
    );
    // Through `Shared::lock`, as every multi-shard writer: it settles the transaction's place
    // in a running AOF rewrite before anything changes.
    // A script may write too (see `write` above).
    let may_change = write || multi.queue.iter().any(|q| q.spec.may_change());
    ctx.ks.locked = if multi.queue.iter().any(|q| q.spec.has(RUNS_SCRIPT)) {
        // With the script token: a script in the queue may reach keys it did not declare
        // after the queue has written, and then waits for them (see `script::run`).
        match ctx.shared.lock_for_script(slots) {
            Ok(l) => l,
            Err(kind) => {
                unwatch_all(ctx.shared, ctx.client);
                return Err(crate::commands::script::busy_error(kind));
            }
        }
    } else {
        ctx.shared.lock(slots, may_change)
    };

    let changed = watched_key_changed(ctx);
    unwatch_all(ctx.shared, ctx.client);
    if changed {
        ctx.ks.locked = Locked::none();
        ctx.out.null_array();
        return Ok(());
    }

    ctx.out.array(multi.queue.len());
    let deny_blocking = std::mem::replace(&mut ctx.client.deny_blocking, true);
    ctx.effects = Some(Effects::new(ctx.client.db));
    for (q, planned) in multi.queue.iter().zip(plans) {
        let argv = q.args();
        // Checked again: the rules may have changed since the command was queued.
        let allowed = super::acl::check(
            ctx.shared,
            ctx.client,
            q.spec,
            &argv,
            super::acl::Context::Multi,
        )
        .map_err(super::acl::exec_denied_error);
        if let Err(e) = allowed.and(planned).and_then(|()| call(ctx, q.spec, &argv)) {
            let msg = e.to_string();
            ctx.out.error(&msg);
            ctx.shared.stats.error_reply(&msg);
        }
        let mut effects = ctx
            .effects
            .take()
            .unwrap_or_else(|| Effects::new(ctx.ks.db));
        effects.add(ctx, q.spec, &argv);
        ctx.effects = Some(effects);
        ctx.shared.stats.commands_processed();
    }
    ctx.client.deny_blocking = deny_blocking;
    if let Some(effects) = ctx.effects.take() {
        effects.propagate(ctx);
    }
    ctx.ks.locked = Locked::none();
    Ok(())
}

/// The AOF record of several commands run as one unit (EXEC's queue, a script's calls): their
/// records in order, with the SELECTs between databases, sent once, wrapped in MULTI/EXEC when
/// there are several, so that a reader of the AOF (and the loader, at a cut-off tail) applies
/// all of them or none.
pub struct Effects {
    /// The database of the first command that logged: the record's own (as Redis propagates
    /// a transaction's MULTI in the database of its first write).
    start_db: Option<usize>,
    record_db: usize,
    record: Vec<u8>,
    logged: usize,
    /// Where a script's redis.set_repl sent part of the record to the AOF or the replicas
    /// only: the record's byte ranges and their targets (`TO_AOF`, `TO_REPLICAS`). None while
    /// everything goes to both.
    targets: Option<Vec<(std::ops::Range<usize>, u8)>>,
}

/// `body`, several commands, between a MULTI and an EXEC.
pub(crate) fn wrapped(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 32);
    encode_command(&mut out, &[b"MULTI"]);
    out.extend_from_slice(&body);
    encode_command(&mut out, &[b"EXEC"]);
    out
}

/// The targets of a record (Redis's PROPAGATE_AOF and PROPAGATE_REPL).
pub const TO_AOF: u8 = 1;
pub const TO_REPLICAS: u8 = 2;

impl Effects {
    /// Effects of commands starting in database `db`.
    pub fn new(db: usize) -> Effects {
        Effects {
            start_db: None,
            record_db: db,
            record: Vec::new(),
            logged: 0,
            targets: None,
        }
    }

    /// Adds the record of the command `ctx` just ran (if it logs one).
    pub fn add(&mut self, ctx: &mut Ctx, spec: &CommandSpec, argv: &[&[u8]]) {
        self.add_to(ctx, spec, argv, TO_AOF | TO_REPLICAS);
    }

    /// `add`, for the AOF, the replicas, both or neither (`to`, as redis.set_repl chose).
    pub fn add_to(&mut self, ctx: &mut Ctx, spec: &CommandSpec, argv: &[&[u8]], to: u8) {
        if to & (TO_AOF | TO_REPLICAS) == 0 {
            // Counted, not logged.
            let _ = ctx.take_record(spec, argv);
            return;
        }
        let before = self.record.len();
        if let Some((text, ops)) = ctx.take_record(spec, argv) {
            let start = *self.start_db.get_or_insert(ctx.ks.db);
            if self.logged == 0 {
                self.record_db = start;
            }
            if ctx.ks.db != self.record_db {
                self.record_db = ctx.ks.db;
                encode_command(
                    &mut self.record,
                    &[b"SELECT", self.record_db.to_string().as_bytes()],
                );
            }
            self.record.extend_from_slice(&text);
            self.logged += ops;
            let both = TO_AOF | TO_REPLICAS;
            if to != both || self.targets.is_some() {
                let targets = self.targets.get_or_insert_with(|| vec![(0..before, both)]);
                // A SELECT written before the command goes wherever the command goes.
                targets.push((before..self.record.len(), to));
            }
        }
    }

    /// The part of the record `targets` sends to `to`.
    fn part(&self, targets: &[(std::ops::Range<usize>, u8)], to: u8) -> Vec<u8> {
        targets
            .iter()
            .filter(|(_, at)| at & to != 0)
            .flat_map(|(r, _)| self.record[r.clone()].iter().copied())
            .collect()
    }

    /// Sends the record, under the locks `ctx` still holds.
    pub fn propagate(self, ctx: &mut Ctx) {
        let Some(start_db) = self.start_db else {
            return;
        };
        if self.record.is_empty() {
            return;
        }
        // As Redis's propagatePendingCommands: more than one command is a transaction, in
        // each stream, even where set_repl left one of them a single command.
        let (logged, record_db) = (self.logged, self.record_db);
        let finish = |body: Vec<u8>| {
            let mut record = if logged > 1 { wrapped(body) } else { body };
            // A record must leave the stream's selected database where it found it: after
            // the EXEC, so that the transaction reads as Redis propagates it.
            if record_db != start_db {
                encode_command(&mut record, &[b"SELECT", start_db.to_string().as_bytes()]);
            }
            record
        };
        let ack = if let Some(targets) = &self.targets {
            let (aof, replicas) = (self.part(targets, TO_AOF), self.part(targets, TO_REPLICAS));
            let pick = |part: Vec<u8>| (!part.is_empty()).then(|| finish(part));
            ctx.shared
                .propagate_split(start_db, pick(aof), pick(replicas), &ctx.ks.locked)
        } else {
            ctx.shared
                .propagate(start_db, finish(self.record), &ctx.ks.locked)
        };
        if let Some(ack) = ack {
            ctx.client.pending_ack = Some(ack);
        }
    }
}

#[cfg(test)]
mod expiry_tests {
    use crate::harness::Harness;

    fn sleep_ms(ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }

    /// As Redis 7's `wk->expired`: a key already expired at WATCH that expiry then removes has
    /// not changed, whenever the sweeper gets to it; one live at WATCH that expires has.
    #[test]
    fn expiry_fails_exec_only_for_keys_live_at_watch() {
        let mut h = Harness::new();
        h.run(&["SET", "gone", "v", "PX", "1"]);
        sleep_ms(5);
        h.run(&["WATCH", "gone"]);
        h.shared.remove_expired(0, b"gone");
        h.run(&["MULTI"]);
        h.run(&["PING"]);
        assert_eq!(h.run(&["EXEC"]), b"*1\r\n+PONG\r\n");

        h.run(&["SET", "live", "v", "PX", "30"]);
        h.run(&["WATCH", "live"]);
        sleep_ms(40);
        h.shared.remove_expired(0, b"live");
        h.run(&["MULTI"]);
        h.run(&["PING"]);
        assert_eq!(h.run(&["EXEC"]), b"*-1\r\n");

        // Expired but not yet removed at EXEC: changed all the same.
        h.run(&["SET", "late", "v", "PX", "30"]);
        h.run(&["WATCH", "late"]);
        sleep_ms(40);
        h.run(&["MULTI"]);
        h.run(&["PING"]);
        assert_eq!(h.run(&["EXEC"]), b"*-1\r\n");

        // Already expired at WATCH, then written: changed.
        h.run(&["SET", "again", "v", "PX", "1"]);
        sleep_ms(5);
        h.run(&["WATCH", "again"]);
        h.shared.remove_expired(0, b"again");
        h.run(&["SET", "again", "new"]);
        h.run(&["MULTI"]);
        h.run(&["PING"]);
        assert_eq!(h.run(&["EXEC"]), b"*-1\r\n");
    }
}
