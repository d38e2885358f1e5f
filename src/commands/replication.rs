//! Replication commands: REPLICAOF (and its old name SLAVEOF), ROLE (Redis's replication.c).

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};
use crate::repl::RoleChange;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE,
        Keys::None,
        replicaof
    ),
    cmd!(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE,
        Keys::None,
        replicaof
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
    if argv[1].eq_ignore_ascii_case(b"no") && argv[2].eq_ignore_ascii_case(b"one") {
        if repl.is_replica() {
            repl.unset_master();
            ctx.shared
                .config
                .write()
                .other
                .insert("replicaof", String::new());
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
    match repl.set_master(&host, port) {
        RoleChange::AlreadyThere => {
            log::info!(
                "REPLICAOF would result into synchronization with the master we are already \
                 connected with. No operation performed."
            );
            ctx.out.simple("OK Already connected to specified master");
        }
        RoleChange::Changed => {
            ctx.shared
                .config
                .write()
                .other
                .insert("replicaof", format!("{host} {port}"));
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

/// ROLE: `master offset [replicas]`, or `slave host port state offset` (Redis's names).
fn role(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let st = ctx.shared.repl.state();
    let out = &mut *ctx.out;
    match &st.master {
        None => {
            out.array(3);
            out.bulk(b"master");
            out.int(st.offset);
            out.array(0);
        }
        Some((host, port)) => {
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
        }
    }
    Ok(())
}
