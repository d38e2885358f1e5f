//! Keyspace commands (Redis's db.c and expire.c).

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};

const ALL_KEYS: Keys = Keys::Range {
    first: 1,
    last: -1,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "del",
        arity: -2,
        flags: WRITE,
        keys: ALL_KEYS,
        handler: del,
    },
    CommandSpec {
        name: "exists",
        arity: -2,
        flags: READONLY | FAST,
        keys: ALL_KEYS,
        handler: exists,
    },
];

fn del(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let mut n = 0;
    for k in &argv[1..] {
        if ctx.ks.remove(k).is_some() {
            n += 1;
        }
    }
    ctx.dirty(n);
    ctx.out.int(n as i64);
    Ok(())
}

fn exists(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = argv[1..].iter().filter(|k| ctx.ks.get(k).is_some()).count();
    ctx.out.int(n as i64);
    Ok(())
}
