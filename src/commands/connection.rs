//! Connection commands: PING, ECHO, QUIT, SELECT.

use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, Keys};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "ping",
        arity: -1,
        flags: FAST,
        keys: Keys::None,
        handler: ping,
    },
    CommandSpec {
        name: "echo",
        arity: 2,
        flags: FAST,
        keys: Keys::None,
        handler: echo,
    },
    CommandSpec {
        name: "quit",
        arity: -1,
        flags: ALLOW_BUSY | NO_AUTH | FAST | LOADING | STALE,
        keys: Keys::None,
        handler: quit,
    },
    CommandSpec {
        name: "select",
        arity: 2,
        flags: LOADING | STALE | FAST,
        keys: Keys::None,
        handler: select,
    },
];

fn ping(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    match argv {
        [_] => ctx.out.simple("PONG"),
        [_, msg] => ctx.out.bulk(msg),
        _ => return Err(CommandError::WrongArity("ping")),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.bulk(argv[1]);
    Ok(())
}

fn quit(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn select(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let db = args::int(argv[1])
        .map_err(|_| CommandError::Err("value is not an integer or out of range".into()))?;
    if db < 0 || db as usize >= ctx.shared.store.dbs.len() {
        return Err(CommandError::DbIndexOutOfRange);
    }
    ctx.select(db as usize);
    ctx.out.ok();
    Ok(())
}
