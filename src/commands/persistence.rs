//! Persistence commands: SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF and SHUTDOWN.

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        Keys::None,
        save
    ),
    cmd!(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        Keys::None,
        bgsave
    ),
    cmd!("lastsave", 1, LOADING | STALE | FAST, Keys::None, lastsave),
    cmd!(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        Keys::None,
        bgrewriteaof
    ),
    cmd!(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        Keys::None,
        shutdown
    ),
];

fn save(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let path = crate::persist::rdb_path(ctx.shared);
    match crate::persist::save_to_path(ctx.shared, &path) {
        Ok(_) => ctx.out.ok(),
        Err(crate::persist::SaveError::InProgress) => {
            return Err(CommandError::Err(
                "Background save already in progress".into(),
            ))
        }
        Err(crate::persist::SaveError::Io(_)) => return Err(CommandError::Coded("ERR".into())),
    }
    Ok(())
}

/// BGSAVE [SCHEDULE]: during an AOF rewrite, as Redis, refused or (SCHEDULE) started once
/// the rewrite ends.
fn bgsave(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let schedule = match argv {
        [_] => false,
        [_, s] if s.eq_ignore_ascii_case(b"schedule") => true,
        _ => return Err(CommandError::Syntax),
    };
    let snaps = &ctx.shared.snapshots;
    if snaps.in_progress() {
        if schedule {
            ctx.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CommandError::Err(
            "Background save already in progress".into(),
        ));
    }
    let rewriting = ctx
        .shared
        .aof_handle()
        .status
        .rewrite_in_progress
        .load(std::sync::atomic::Ordering::SeqCst);
    if rewriting {
        if schedule {
            snaps
                .scheduled
                .store(true, std::sync::atomic::Ordering::SeqCst);
            ctx.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CommandError::Err(
            "An AOF log rewriting in progress: can't BGSAVE right now. Use BGSAVE SCHEDULE in \
             order to schedule a BGSAVE whenever possible."
                .into(),
        ));
    }
    if !crate::persist::bgsave(ctx.shared) {
        return Err(CommandError::Err(
            "Background save already in progress".into(),
        ));
    }
    ctx.out.simple("Background saving started");
    Ok(())
}

fn lastsave(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let t = ctx
        .shared
        .snapshots
        .status
        .last_save
        .load(std::sync::atomic::Ordering::Relaxed);
    ctx.out.int(t as i64);
    Ok(())
}

fn bgrewriteaof(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    // With the AOF off too, as Redis 7.0: the file is written, and DEBUG LOADAOF loads it.
    // Inside EXEC (ctx's effects) it is scheduled, as Redis forks no child in a transaction.
    let aof = ctx.shared.aof_handle();
    let in_exec = ctx.effects.is_some();
    let started = if in_exec {
        aof.schedule_rewrite()
    } else {
        aof.request_rewrite()
    };
    if !started {
        return Err(CommandError::Err(
            "Background append only file rewriting already in progress".into(),
        ));
    }
    ctx.out.simple(if in_exec {
        "Background append only file rewriting scheduled"
    } else {
        "Background append only file rewriting started"
    });
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] | ABORT. The AOF is always written and fsynced; the
/// RDB is saved with SAVE, or with a `save` schedule unless NOSAVE. FORCE exits even when
/// that fails. ABORT has no pending shutdown to cancel (there is no replica to wait for).
fn shutdown(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (mut save, mut nosave, mut force, mut abort) = (false, false, false, false);
    for a in &argv[1..] {
        match a.to_ascii_lowercase().as_slice() {
            b"save" => save = true,
            b"nosave" => nosave = true,
            b"now" => {}
            b"force" => force = true,
            b"abort" => abort = true,
            _ => return Err(CommandError::Syntax),
        }
    }
    if (save && nosave) || (abort && argv.len() > 2) {
        return Err(CommandError::Syntax);
    }
    if abort {
        return Err(CommandError::Err("No shutdown in progress.".into()));
    }
    if let Some(eval) = ctx.shared.scripts.busy() {
        // A script past busy-reply-threshold holds its locks, which a clean shutdown would
        // wait for: only NOSAVE ends it, at once, as Redis does (its effects, not yet logged,
        // are lost with it).
        if !nosave {
            return Err(super::script::busy_error(eval));
        }
        log::warn!("User requested shutdown while a script runs: exiting without waiting for it.");
        if let Some(aof) = ctx.shared.aof() {
            aof.sync();
        }
        ctx.shared.ports.close_all();
        std::process::exit(0);
    }
    log::warn!("User requested shutdown...");
    // Returns only when the AOF could not be written, or does not hold the data yet, and
    // FORCE was not given.
    ctx.shared.shutdown_saving(force, save, nosave);
    Err(CommandError::Err(
        "Errors trying to SHUTDOWN. Check logs.".into(),
    ))
}
