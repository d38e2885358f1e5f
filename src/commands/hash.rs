//! Hash commands (Redis's t_hash.c).

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};

const KEY1: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "hset",
        arity: -4,
        flags: WRITE | DENYOOM | FAST,
        keys: KEY1,
        handler: hset,
    },
    CommandSpec {
        name: "hget",
        arity: 3,
        flags: READONLY | FAST,
        keys: KEY1,
        handler: hget,
    },
    CommandSpec {
        name: "hgetall",
        arity: 2,
        flags: READONLY,
        keys: KEY1,
        handler: hgetall,
    },
];

fn hset(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if !argv.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity("hset"));
    }
    let h = ctx.ks.hash_mut(argv[1])?;
    let added = argv[2..]
        .chunks(2)
        .filter(|fv| h.insert(fv[0], fv[1]))
        .count();
    ctx.dirty((argv.len() as u64 - 2) / 2);
    ctx.out.int(added as i64);
    Ok(())
}

fn hget(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let v = ctx.ks.get_hash(argv[1])?.and_then(|h| h.get(argv[2]));
    ctx.out.bulk_opt(v);
    Ok(())
}

fn hgetall(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(h) = ctx.ks.get_hash(argv[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    ctx.out.array(h.len() * 2);
    for (f, v) in h.iter() {
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
    Ok(())
}
