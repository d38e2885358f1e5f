//! String commands (Redis's t_string.c).

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};
use crate::store::Value;

const KEY1: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "get",
        arity: 2,
        flags: READONLY | FAST,
        keys: KEY1,
        handler: get,
    },
    CommandSpec {
        name: "set",
        arity: -3,
        flags: WRITE | DENYOOM,
        keys: KEY1,
        handler: set,
    },
];

fn get(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let v = ctx.ks.get_str(argv[1])?;
    ctx.out.bulk_opt(v);
    Ok(())
}

fn set(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() != 3 {
        return Err(CommandError::Syntax);
    }
    ctx.ks.set(argv[1], Value::str(argv[2]));
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}
