//! Replication commands: REPLICAOF (and its old name SLAVEOF), ROLE, FAILOVER, and what
//! replicas send their master (REPLCONF, SYNC, PSYNC) and WAIT (Redis's replication.c).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};
use crate::blocking::{Served, TimeoutReply};
use crate::repl::failover::{self, FailoverError};
use crate::repl::master::{ReplConf, SyncRequest, WAIT_DB, WAIT_KEY};
use crate::repl::RoleChange;
use crate::resp::ReplyBuf;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING,
        Keys::None,
        replicaof
    ),
    cmd!(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING,
        Keys::None,
        replicaof
    ),
    cmd!(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        Keys::None,
        replconf
    ),
    cmd!(
        "sync",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        Keys::None,
        sync
    ),
    cmd!(
        "psync",
        -3,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        Keys::None,
        psync
    ),
    cmd!("wait", 3, NOSCRIPT, Keys::None, wait),
    cmd!(
        "failover",
        -1,
        ADMIN | NOSCRIPT | STALE,
        Keys::None,
        failover_cmd
    ),
    cmd!(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        Keys::None,
        role
    ),
];

/// REPLICAOF host port | NO ONE. The change is kept as the `replicaof` setting, so that
/// CONFIG GET shows it and CONFIG REWRITE writes it.
fn replicaof(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let repl = &ctx.shared.repl;
    // A failover changes the role itself; only FAILOVER ABORT may stop it.
    if repl.failover.active() {
        return Err(CommandError::Err(
            "REPLICAOF not allowed while failing over.".into(),
        ));
    }
    if argv[1].eq_ignore_ascii_case(b"no") && argv[2].eq_ignore_ascii_case(b"one") {
        if repl.is_replica() {
            ctx.shared.become_master();
            failover::remember_master(ctx.shared, None);
            log::info!(
                "MASTER MODE enabled (user request from 'id={} addr={}')",
                ctx.client.id,
                ctx.client.handle.addr
            );
        }
        ctx.out.ok();
        return Ok(());
    }
    let port = std::str::from_utf8(argv[2])
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| CommandError::Err("Invalid master port".into()))?;
    let host = String::from_utf8_lossy(argv[1]).into_owned();
    match ctx.shared.become_replica(&host, port) {
        RoleChange::AlreadyThere => {
            log::info!(
                "REPLICAOF would result into synchronization with the master we are already \
                 connected with. No operation performed."
            );
            ctx.out.simple("OK Already connected to specified master");
        }
        RoleChange::Changed => {
            failover::remember_master(ctx.shared, Some((&host, port)));
            log::info!(
                "REPLICAOF {host}:{port} enabled (user request from 'id={} addr={}')",
                ctx.client.id,
                ctx.client.handle.addr
            );
            ctx.out.ok();
        }
    }
    Ok(())
}

/// REPLCONF option value ...: what a replica tells its master of itself before it syncs,
/// and its ACKs once it streams (those reach its link, see `repl::master`; a client that is
/// no replica gets no reply to one, as in Redis).
fn replconf(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    let mut conf = ctx.client.replconf.take().map(|b| *b).unwrap_or_default();
    let res = apply_replconf(&mut conf, argv);
    ctx.client.replconf = Some(Box::new(conf));
    // ACK and GETACK get no reply.
    if res? {
        ctx.out.ok();
    }
    Ok(())
}

/// Applies the pairs; false when nothing is to be answered (ACK, GETACK).
fn apply_replconf(conf: &mut ReplConf, argv: &[&[u8]]) -> Result<bool, CommandError> {
    for pair in argv[1..].chunks(2) {
        let (opt, val) = (pair[0], pair[1]);
        let lower = opt.to_ascii_lowercase();
        match &lower[..] {
            b"listening-port" => {
                let port = crate::resp::parse::parse_i64(val).ok_or(CommandError::NotInteger)?;
                conf.port = u16::try_from(port).unwrap_or(0);
            }
            b"ip-address" => {
                let ip = String::from_utf8_lossy(val).into_owned();
                if ip.len() >= 46 {
                    return Err(CommandError::Err(format!(
                        "REPLCONF ip-address provided by replica instance is too long: {} bytes",
                        ip.len()
                    )));
                }
                conf.ip = Some(ip);
            }
            // `capa eof` needs nothing: every replica takes the snapshot with its length,
            // which is how rudis sends it.
            b"capa" => conf.capa_psync2 |= val.eq_ignore_ascii_case(b"psync2"),
            b"ack" | b"getack" => return Ok(false),
            b"rdb-filter-only" => {
                // As Redis: words split as its sdssplitargs splits them; `functions` is the
                // one filter there is, and none leaves the snapshot empty.
                let words = crate::resp::parse::split_args(val)
                    .ok_or_else(|| CommandError::Err("Missing rdb-filter-only values".into()))?;
                let mut functions = false;
                for w in &words {
                    if w.eq_ignore_ascii_case(b"functions") {
                        functions = true;
                    } else {
                        return Err(CommandError::Err(format!(
                            "Unsupported rdb-filter-only option: {}",
                            String::from_utf8_lossy(w)
                        )));
                    }
                }
                conf.rdb_filter = Some(functions);
            }
            b"rdb-only" => {
                conf.rdb_only = match crate::resp::parse::parse_i64(val) {
                    Some(0) => false,
                    Some(1) => true,
                    _ => return Err(CommandError::Syntax),
                }
            }
            _ => {
                return Err(CommandError::Err(format!(
                    "Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(opt)
                )))
            }
        }
    }
    Ok(true)
}

/// The checks Redis's syncCommand makes before it serves a replica.
fn may_sync(ctx: &mut Ctx) -> Result<(), CommandError> {
    let repl = &ctx.shared.repl;
    // The stream is about to belong to another master.
    if repl.failover.active() {
        return Err(CommandError::Coded(
            "NOMASTERLINK Can't SYNC while failing over".into(),
        ));
    }
    if repl.is_replica() && !repl.link_up() {
        return Err(CommandError::Coded(
            "NOMASTERLINK Can't SYNC while not connected with my master".into(),
        ));
    }
    Ok(())
}

/// SYNC: the old protocol (redis-cli --replica and --rdb use it).
fn sync(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    may_sync(ctx)?;
    ctx.client.handoff = Some(SyncRequest::Sync);
    Ok(())
}

/// PSYNC replid offset [FAILOVER]: continue from the backlog, or sync in full (see
/// `repl::master`). With FAILOVER, from this server's master handing it its role: it becomes
/// a master first, and the old one continues partially from it.
fn psync(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() > 3 && argv[3].eq_ignore_ascii_case(b"failover") {
        promote_for_failover(ctx, argv[1])?;
    }
    may_sync(ctx)?;
    let replid = String::from_utf8_lossy(argv[1]).into_owned();
    // As Redis: an offset that does not parse asks for a full sync.
    let offset = crate::resp::parse::parse_i64(argv[2]).unwrap_or(-1);
    ctx.client.handoff = Some(SyncRequest::Psync { replid, offset });
    Ok(())
}

fn promote_for_failover(ctx: &mut Ctx, replid: &[u8]) -> Result<(), CommandError> {
    let repl = &ctx.shared.repl;
    log::warn!(
        "Failover request received for replid {}.",
        String::from_utf8_lossy(replid)
    );
    if !repl.is_replica() {
        return Err(CommandError::Err(
            "PSYNC FAILOVER can't be sent to a master.".into(),
        ));
    }
    let ours = repl.state().replid.clone();
    if !replid.eq_ignore_ascii_case(ours.as_bytes()) {
        return Err(CommandError::Err(
            "PSYNC FAILOVER replid must match my replid.".into(),
        ));
    }
    ctx.shared.become_master();
    failover::remember_master(ctx.shared, None);
    log::info!(
        "MASTER MODE enabled (failover request from 'id={} addr={}')",
        ctx.client.id,
        ctx.client.handle.addr
    );
    Ok(())
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (see `repl::failover`); the
/// arguments parsed as Redis's failoverCommand does, each at most once.
fn failover_cmd(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let refused = |e: FailoverError| CommandError::Err(e.to_string());
    if argv.len() == 2 && argv[1].eq_ignore_ascii_case(b"abort") {
        failover::abort_command(ctx.shared).map_err(refused)?;
        ctx.out.ok();
        return Ok(());
    }
    let mut req = failover::Request::default();
    let mut j = 1;
    while j < argv.len() {
        let arg = argv[j];
        if arg.eq_ignore_ascii_case(b"timeout") && j + 1 < argv.len() && req.timeout.is_none() {
            let ms = super::args::int(argv[j + 1])?;
            if ms <= 0 {
                return Err(CommandError::Err(
                    "FAILOVER timeout must be greater than 0".into(),
                ));
            }
            req.timeout = Some(std::time::Duration::from_millis(ms as u64));
            j += 2;
        } else if arg.eq_ignore_ascii_case(b"to") && j + 2 < argv.len() && req.target.is_none() {
            let port = super::args::int(argv[j + 2])?;
            req.target = Some((String::from_utf8_lossy(argv[j + 1]).into_owned(), port));
            j += 3;
        } else if arg.eq_ignore_ascii_case(b"force") && !req.force {
            req.force = true;
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    failover::start(ctx.shared, req).map_err(refused)?;
    ctx.out.ok();
    Ok(())
}

/// WAIT numreplicas timeout: blocks until that many replicas acknowledged everything written
/// so far, or the timeout (milliseconds, 0: for ever) passes; replies how many did.
fn wait(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let repl = &ctx.shared.repl;
    if repl.is_replica() {
        return Err(CommandError::Err(
            "WAIT cannot be used with replica instances. Please also note that since Redis 4.0 \
             if a replica is configured to be writable (which is not the default) writes to \
             replicas are just local and are not propagated."
                .into(),
        ));
    }
    let want = crate::resp::parse::parse_i64(argv[1]).ok_or(CommandError::NotInteger)?;
    let ms = crate::resp::parse::parse_i64(argv[2])
        .ok_or_else(|| CommandError::Err("timeout is not an integer or out of range".into()))?;
    if ms < 0 {
        return Err(CommandError::Err("timeout is negative".into()));
    }
    // The stream up to this client's last write (a MULTI or script's included).
    let backlog = Arc::clone(&repl.backlog);
    let target = ctx.client.woff;
    let acked = backlog.acked(target);
    if acked as i64 >= want || ctx.client.deny_blocking {
        ctx.out.int(acked as i64);
        return Ok(());
    }
    let deadline = (ms > 0)
        .then(|| std::time::Instant::now().checked_add(std::time::Duration::from_millis(ms as u64)))
        .flatten();
    let handle = ctx.client.handle.clone();
    let command = super::lookup(b"wait");
    let counted = backlog.clone();
    let timeout = TimeoutReply::Computed(Box::new(move || int_reply(counted.acked(target))));
    ctx.client.blocked = true;
    ctx.shared.blocking.block(
        &handle,
        command,
        WAIT_DB,
        vec![WAIT_KEY.to_vec()],
        deadline,
        timeout,
        Box::new(move |_, _| {
            let n = backlog.acked(target);
            if n as i64 >= want {
                Served::Reply(int_reply(n), None)
            } else {
                Served::NotYet
            }
        }),
    );
    crate::repl::master::request_acks(ctx.shared);
    Ok(())
}

/// WAIT's reply, made by the reply layer (an integer is the same in both protocols).
fn int_reply(n: usize) -> Vec<u8> {
    let mut out = ReplyBuf::new();
    out.int(n as i64);
    out.as_bytes().to_vec()
}

/// ROLE: `master offset [replicas]`, or `slave host port state offset` (Redis's names).
fn role(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let st = ctx.shared.repl.state();
    let out = &mut *ctx.out;
    if let Some((host, port)) = &st.master {
        out.array(5);
        out.bulk(b"slave");
        out.bulk(host.as_bytes());
        out.int(i64::from(*port));
        out.bulk(st.link.role_name().as_bytes());
        let offset = if st.link == crate::repl::Link::Connected {
            st.offset
        } else {
            -1
        };
        out.int(offset);
        return Ok(());
    }
    drop(st);
    let g = ctx.shared.repl.backlog.lock();
    let online: Vec<_> = (g.replicas.iter())
        .filter(|r| r.state() == crate::repl::backlog::ReplicaState::Online)
        .collect();
    out.array(3);
    out.bulk(b"master");
    out.int(g.offset);
    out.array(online.len());
    for r in online {
        out.array(3);
        out.bulk(r.ip.as_bytes());
        out.bulk(r.port.to_string().as_bytes());
        out.bulk(r.ack.load(Ordering::Relaxed).to_string().as_bytes());
    }
    Ok(())
}
