//! Expiry commands (Redis's expire.c): EXPIRE and its kin, TTL and its kin, PERSIST.
//!
//! Every deadline is logged to the AOF as an absolute PEXPIREAT (or a DEL when it has already
//! passed), so that replaying the file later can never extend a key's life.

use super::flags::*;
use super::string::already_expired;
use super::{args, CommandError, CommandSpec, Ctx, KEY1};
use crate::notify::events::class::GENERIC;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("expire", -3, WRITE | FAST, KEY1, expire),
    cmd!("pexpire", -3, WRITE | FAST, KEY1, pexpire),
    cmd!("expireat", -3, WRITE | FAST, KEY1, expireat),
    cmd!("pexpireat", -3, WRITE | FAST, KEY1, pexpireat),
    cmd!("ttl", 2, READONLY | FAST, KEY1, ttl),
    cmd!("pttl", 2, READONLY | FAST, KEY1, pttl),
    cmd!("expiretime", 2, READONLY | FAST, KEY1, expiretime),
    cmd!("pexpiretime", 2, READONLY | FAST, KEY1, pexpiretime),
    cmd!("persist", 2, WRITE | FAST, KEY1, persist),
];

#[derive(Default)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_conditions(argv: &[&[u8]]) -> Result<Conditions, CommandError> {
    let mut c = Conditions::default();
    for opt in &argv[3..] {
        let flag = match opt.to_ascii_lowercase().as_slice() {
            b"nx" => &mut c.nx,
            b"xx" => &mut c.xx,
            b"gt" => &mut c.gt,
            b"lt" => &mut c.lt,
            _ => {
                // Redis prints the option with %s: it stops at a NUL byte.
                let shown = opt.split(|&b| b == 0).next().unwrap_or_default();
                return Err(CommandError::Err(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(shown)
                )));
            }
        };
        *flag = true;
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(CommandError::Err(
            "NX and XX, GT or LT options at the same time are not compatible".into(),
        ));
    }
    if c.gt && c.lt {
        return Err(CommandError::Err(
            "GT and LT options at the same time are not compatible".into(),
        ));
    }
    Ok(c)
}

/// Redis's `expireGenericCommand`: `argv[2]` in seconds or milliseconds, added to `base`.
fn expire_generic(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    cmd: &'static str,
    base: i64,
    seconds: bool,
) -> Result<(), CommandError> {
    let key = argv[1];
    let cond = parse_conditions(argv)?;
    let mut when = args::int(argv[2])?;
    let invalid = CommandError::InvalidExpire(cmd);
    if seconds {
        when = when.checked_mul(1000).ok_or(invalid.clone())?;
    }
    when = when.checked_add(base).ok_or(invalid)?;
    if ctx.ks.get(key).is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    // No deadline counts as an infinite one.
    let current = ctx.ks.deadline(key).map(|d| d as i64);
    let refused = (cond.nx && current.is_some())
        || (cond.xx && current.is_none())
        || (cond.gt && current.is_none_or(|c| when <= c))
        || (cond.lt && current.is_some_and(|c| when >= c));
    if refused {
        ctx.out.int(0);
        return Ok(());
    }
    if already_expired(ctx, when) {
        ctx.ks.remove(key);
        ctx.propagate(&[b"DEL", key]);
        ctx.notify(GENERIC, "del", key);
    } else {
        ctx.ks.set_deadline(key, Some(when.max(0) as u64));
        let when = when.to_string();
        let mut logged: Vec<&[u8]> = vec![b"PEXPIREAT", key, when.as_bytes()];
        logged.extend_from_slice(&argv[3..]);
        ctx.propagate(&logged);
        ctx.notify(GENERIC, "expire", key);
    }
    ctx.dirty(1);
    ctx.out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let now = ctx.ks.now() as i64;
    expire_generic(ctx, argv, "expire", now, true)
}

fn pexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let now = ctx.ks.now() as i64;
    expire_generic(ctx, argv, "pexpire", now, false)
}

fn expireat(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    expire_generic(ctx, argv, "expireat", 0, true)
}

fn pexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    expire_generic(ctx, argv, "pexpireat", 0, false)
}

/// Redis's `ttlGenericCommand`: -2 for no key, -1 for no deadline.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], ms: bool, absolute: bool) -> Result<(), CommandError> {
    if ctx.ks.peek(key).is_none() {
        ctx.out.int(-2);
        return Ok(());
    }
    let Some(deadline) = ctx.ks.deadline(key) else {
        ctx.out.int(-1);
        return Ok(());
    };
    let deadline = deadline as i64;
    let ttl = if absolute {
        deadline
    } else {
        deadline - ctx.ks.now() as i64
    }
    .max(0);
    ctx.out.int(if ms { ttl } else { (ttl + 500) / 1000 });
    Ok(())
}

fn ttl(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    ttl_generic(ctx, argv[1], false, false)
}

fn pttl(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    ttl_generic(ctx, argv[1], true, false)
}

fn expiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    ttl_generic(ctx, argv[1], false, true)
}

fn pexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    ttl_generic(ctx, argv[1], true, true)
}

fn persist(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    if ctx.ks.get(key).is_some() && ctx.ks.deadline(key).is_some() {
        ctx.ks.set_deadline(key, None);
        ctx.dirty(1);
        ctx.notify(GENERIC, "persist", key);
        ctx.out.int(1);
    } else {
        ctx.out.int(0);
    }
    Ok(())
}
