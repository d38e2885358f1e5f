//! FAILOVER: a master hands its role to one of its replicas without losing a write, as Redis
//! 6.2+'s coordinated failover (replication.c's failoverCommand, updateFailoverStatus).
//!
//! 1. Writes are paused (a pause of FAILOVER's own, see `ops::pause`), so the stream stops
//!    growing: `waiting-for-sync`.
//! 2. Once the target (or, with no TO, any replica) has acknowledged the whole stream, this
//!    server becomes a replica of it, and the link's PSYNC carries `FAILOVER`, which makes the
//!    target promote itself before it answers: `failover-in-progress`.
//! 3. Its answer (a partial or full sync) ends the failover and the pause: the writes held
//!    run, and are refused as on any replica. Any other answer aborts it: this server is a
//!    master again.
//!
//! A TIMEOUT aborts the wait, or with FORCE goes ahead anyway; FAILOVER ABORT ends it at any
//! step. Redis leaves the other replicas where they are: they follow this server, now a
//! replica of the new master.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::backlog::ReplicaState;
use crate::ops::pause::{PauseKind, Purpose};
use crate::shared::Shared;

/// Where a failover stands (Redis's `failover_state`, INFO's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    None = 0,
    WaitForSync = 1,
    InProgress = 2,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::None => "no-failover",
            Phase::WaitForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }
}

/// A FAILOVER refused, with Redis's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailoverError {
    NotInProgress,
    AlreadyInProgress,
    IsReplica,
    NoReplicas,
    ForceNeedsTimeoutAndTarget,
    NotAReplica,
    TargetNotOnline,
}

impl fmt::Display for FailoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailoverError::NotInProgress => "No failover in progress.",
            FailoverError::AlreadyInProgress => "FAILOVER already in progress.",
            FailoverError::IsReplica => "FAILOVER is not valid when server is a replica.",
            FailoverError::NoReplicas => "FAILOVER requires connected replicas.",
            FailoverError::ForceNeedsTimeoutAndTarget => {
                "FAILOVER with force option requires both a timeout and target HOST and IP."
            }
            FailoverError::NotAReplica => "FAILOVER target HOST and PORT is not a replica.",
            FailoverError::TargetNotOnline => "FAILOVER target replica is not online.",
        })
    }
}

/// What FAILOVER asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// TO host port; the port as given (a long in Redis, compared with the replicas').
    pub target: Option<(String, i64)>,
    pub force: bool,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Default)]
struct Plan {
    /// The replica failed over to: the one asked for, or the first found caught up.
    target: Option<(String, u16)>,
    end: Option<Instant>,
    force: bool,
}

/// The failover state. The phase is an atomic, read without a lock by INFO, PSYNC and the
/// link (which hold the role's locks); the plan is only touched under its own lock, which is
/// taken before the role's, never after.
#[derive(Default)]
pub struct Failover {
    phase: AtomicU8,
    plan: Mutex<Plan>,
}

impl Failover {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            1 => Phase::WaitForSync,
            2 => Phase::InProgress,
            _ => Phase::None,
        }
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::SeqCst);
    }

    pub fn active(&self) -> bool {
        self.phase() != Phase::None
    }
}

/// FAILOVER [TO host port [FORCE]] [TIMEOUT ms]: checks it as Redis does, in its order, and
/// starts waiting for the replica.
pub fn start(shared: &Shared, req: Request) -> Result<(), FailoverError> {
    let repl = &shared.repl;
    let mut plan = repl.failover.plan.lock();
    if repl.failover.active() {
        return Err(FailoverError::AlreadyInProgress);
    }
    if repl.is_replica() {
        return Err(FailoverError::IsReplica);
    }
    {
        let g = repl.backlog.lock();
        if g.replicas.is_empty() {
            return Err(FailoverError::NoReplicas);
        }
        if req.force && (req.timeout.is_none() || req.target.is_none()) {
            return Err(FailoverError::ForceNeedsTimeoutAndTarget);
        }
        if let Some((host, port)) = &req.target {
            let r = (g.replicas.iter())
                .find(|r| r.ip.eq_ignore_ascii_case(host) && i64::from(r.port) == *port)
                .ok_or(FailoverError::NotAReplica)?;
            if r.state() != ReplicaState::Online {
                return Err(FailoverError::TargetNotOnline);
            }
            log::info!("FAILOVER requested to {host}:{port}.");
            plan.target = Some((r.ip.clone(), r.port));
        } else {
            log::info!("FAILOVER requested to any replica.");
        }
    }
    plan.end = req.timeout.map(|t| Instant::now() + t);
    plan.force = req.force;
    repl.failover.set_phase(Phase::WaitForSync);
    shared
        .ops
        .pause
        .pause(Purpose::Failover, PauseKind::Write, None);
    Ok(())
}

/// FAILOVER ABORT.
pub fn abort_command(shared: &Shared) -> Result<(), FailoverError> {
    if !shared.repl.failover.active() {
        return Err(FailoverError::NotInProgress);
    }
    abort(shared, "Failover manually aborted");
    Ok(())
}

/// Ends a failover that could not complete: a master again if it had turned replica.
pub fn abort(shared: &Shared, why: &str) {
    let mut plan = shared.repl.failover.plan.lock();
    let phase = shared.repl.failover.phase();
    if phase == Phase::None {
        return;
    }
    match &plan.target {
        Some((h, p)) => log::info!("FAILOVER to {h}:{p} aborted: {why}"),
        None => log::info!("FAILOVER to any replica aborted: {why}"),
    }
    if phase == Phase::InProgress {
        shared.become_master();
        remember_master(shared, None);
    }
    clear_locked(shared, &mut plan);
}

/// The target took this server as its replica: the failover is done.
pub fn finish(shared: &Shared) {
    let mut plan = shared.repl.failover.plan.lock();
    if shared.repl.failover.phase() == Phase::InProgress {
        if let Some((h, p)) = &plan.target {
            log::info!("FAILOVER to {h}:{p} succeeded.");
        }
        clear_locked(shared, &mut plan);
    }
}

fn clear_locked(shared: &Shared, plan: &mut Plan) {
    *plan = Plan::default();
    shared.repl.failover.set_phase(Phase::None);
    shared.ops.pause.unpause(Purpose::Failover);
}

/// Keeps the `replicaof` setting in step with the role (CONFIG GET and REWRITE show it).
pub fn remember_master(shared: &Shared, master: Option<(&str, u16)>) {
    let value = master.map_or_else(String::new, |(h, p)| format!("{h} {p}"));
    shared.config.write().other.insert("replicaof", value);
}

/// The failover's periodic check (Redis's updateFailoverStatus, run every 100 ms while one
/// is on): the timeout, then whether the replica has caught up.
pub fn tick(shared: &Shared) {
    let repl = &shared.repl;
    let mut plan = repl.failover.plan.lock();
    if repl.failover.phase() != Phase::WaitForSync {
        return;
    }
    if plan.end.is_some_and(|e| Instant::now() >= e) {
        if plan.force {
            if let Some((h, p)) = plan.target.clone() {
                log::info!("FAILOVER to {h}:{p} time out exceeded, failing over.");
                go(shared, &h, p);
            }
        } else {
            drop(plan);
            abort(shared, "Replica never caught up before timeout");
        }
        return;
    }
    let caught_up = {
        let g = repl.backlog.lock();
        let offset = g.offset;
        let acked = |r: &super::backlog::Replica| r.ack.load(Ordering::SeqCst) == offset;
        match &plan.target {
            Some((h, p)) => (g.replicas.iter())
                .find(|r| r.ip.eq_ignore_ascii_case(h) && r.port == *p)
                .filter(|r| acked(r))
                .map(|r| (r.ip.clone(), r.port)),
            None => (g.replicas.iter())
                .find(|r| acked(r))
                .map(|r| (r.ip.clone(), r.port)),
        }
    };
    if let Some((h, p)) = caught_up {
        plan.target = Some((h.clone(), p));
        log::info!("Failover target {h}:{p} is synced, failing over.");
        go(shared, &h, p);
    }
}

/// Turns this server into a replica of the target; its link's PSYNC carries FAILOVER.
fn go(shared: &Shared, host: &str, port: u16) {
    shared.repl.failover.set_phase(Phase::InProgress);
    shared.become_replica(host, port);
    remember_master(shared, Some((host, port)));
}
