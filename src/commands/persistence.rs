//! Persistence commands: BGREWRITEAOF and SHUTDOWN.

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT,
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

fn bgrewriteaof(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(aof) = &ctx.shared.aof else {
        return Err(CommandError::Err(
            "Background append only file rewriting needs appendonly yes".into(),
        ));
    };
    if !aof.request_rewrite() {
        return Err(CommandError::Err(
            "Background append only file rewriting already in progress".into(),
        ));
    }
    ctx.out
        .simple("Background append only file rewriting started");
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] | ABORT. There is no RDB and no replica to wait for,
/// so NOSAVE, SAVE and NOW change nothing: the AOF is always written and fsynced. FORCE exits
/// even when that fails. ABORT has no pending shutdown to cancel.
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
        if let Some(aof) = &ctx.shared.aof {
            aof.sync();
        }
        std::process::exit(0);
    }
    log::warn!("User requested shutdown...");
    // Returns only when the AOF could not be written and FORCE was not given.
    ctx.shared.shutdown(force);
    Err(CommandError::Err(
        "Errors trying to SHUTDOWN. Check logs.".into(),
    ))
}
