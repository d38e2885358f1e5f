//! Hash commands (Redis's t_hash.c).

use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, KEY1};
use crate::notify::events::class::HASH;
use crate::store::Hash;
use crate::util::glob;
use crate::util::ldouble::{self, FloatError};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("hset", -4, WRITE | DENYOOM | FAST, KEY1, hset),
    cmd!("hmset", -4, WRITE | DENYOOM | FAST, KEY1, hmset),
    cmd!("hsetnx", 4, WRITE | DENYOOM | FAST, KEY1, hsetnx),
    cmd!("hget", 3, READONLY | FAST, KEY1, hget),
    cmd!("hmget", -3, READONLY | FAST, KEY1, hmget),
    cmd!("hgetall", 2, READONLY, KEY1, hgetall),
    cmd!("hkeys", 2, READONLY, KEY1, hkeys),
    cmd!("hvals", 2, READONLY, KEY1, hvals),
    cmd!("hdel", -3, WRITE | FAST, KEY1, hdel),
    cmd!("hexists", 3, READONLY | FAST, KEY1, hexists),
    cmd!("hlen", 2, READONLY | FAST, KEY1, hlen),
    cmd!("hstrlen", 3, READONLY | FAST, KEY1, hstrlen),
    cmd!("hincrby", 4, WRITE | DENYOOM | FAST, KEY1, hincrby),
    cmd!(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        KEY1,
        hincrbyfloat
    ),
    cmd!("hrandfield", -2, READONLY, KEY1, hrandfield),
    cmd!("hscan", -3, READONLY, KEY1, hscan),
];

/// Sets every field/value pair of HSET/HMSET; returns how many fields were new.
fn set_pairs(ctx: &mut Ctx, argv: &[&[u8]], name: &'static str) -> Result<usize, CommandError> {
    if !argv.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity(name));
    }
    let h = ctx.ks.hash_mut(argv[1])?;
    let added = argv[2..]
        .chunks(2)
        .filter(|fv| h.insert(fv[0], fv[1]))
        .count();
    ctx.dirty((argv.len() as u64 - 2) / 2);
    ctx.notify(HASH, "hset", argv[1]);
    Ok(added)
}

fn hset(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let added = set_pairs(ctx, argv, "hset")?;
    ctx.out.int(added as i64);
    Ok(())
}

fn hmset(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    set_pairs(ctx, argv, "hmset")?;
    ctx.out.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if ctx
        .ks
        .get_hash(argv[1])?
        .is_some_and(|h| h.get(argv[2]).is_some())
    {
        ctx.out.int(0);
        return Ok(());
    }
    ctx.ks.hash_mut(argv[1])?.insert(argv[2], argv[3]);
    ctx.dirty(1);
    ctx.notify(HASH, "hset", argv[1]);
    ctx.out.int(1);
    Ok(())
}

fn hget(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let v = ctx.ks.get_hash(argv[1])?.and_then(|h| h.get(argv[2]));
    ctx.out.bulk_opt(v);
    Ok(())
}

fn hmget(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let h = ctx.ks.get_hash(argv[1])?;
    ctx.out.array(argv.len() - 2);
    for f in &argv[2..] {
        ctx.out.bulk_opt(h.and_then(|h| h.get(f)));
    }
    Ok(())
}

/// HGETALL (a map), HKEYS, HVALS: the fields and/or values, in the hash's order.
fn list(ctx: &mut Ctx, key: &[u8], fields: bool, values: bool) -> Result<(), CommandError> {
    let both = fields && values;
    let Some(h) = ctx.ks.get_hash(key)? else {
        if both {
            ctx.out.map(0);
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    if both {
        ctx.out.map(h.len());
    } else {
        ctx.out.array(h.len());
    }
    for (f, v) in h.iter() {
        if fields {
            ctx.out.bulk(f);
        }
        if values {
            ctx.out.bulk(v);
        }
    }
    Ok(())
}

fn hgetall(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    list(ctx, argv[1], true, true)
}

fn hkeys(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    list(ctx, argv[1], true, false)
}

fn hvals(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    list(ctx, argv[1], false, true)
}

fn hdel(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if ctx.ks.get_hash(argv[1])?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let h = ctx.ks.hash_mut(argv[1])?;
    let deleted = argv[2..].iter().filter(|f| h.remove(f)).count();
    let emptied = h.is_empty();
    if emptied {
        ctx.ks.remove(argv[1]);
    }
    ctx.dirty(deleted as u64);
    if deleted > 0 {
        ctx.notify(HASH, "hdel", argv[1]);
        ctx.notify_del_if(emptied, argv[1]);
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let found = ctx
        .ks
        .get_hash(argv[1])?
        .is_some_and(|h| h.get(argv[2]).is_some());
    ctx.out.int(found as i64);
    Ok(())
}

fn hlen(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = ctx.ks.get_hash(argv[1])?.map_or(0, Hash::len);
    ctx.out.int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = ctx
        .ks
        .get_hash(argv[1])?
        .and_then(|h| h.get(argv[2]))
        .map_or(0, <[u8]>::len);
    ctx.out.int(n as i64);
    Ok(())
}

fn hincrby(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let incr = args::int(argv[3])?;
    let h = ctx.ks.hash_mut(argv[1])?;
    let cur = match h.get(argv[2]) {
        Some(v) => {
            args::int(v).map_err(|_| CommandError::Err("hash value is not an integer".into()))?
        }
        None => 0,
    };
    let new = cur.checked_add(incr).ok_or(CommandError::Overflow)?;
    h.insert(argv[2], itoa::Buffer::new().format(new).as_bytes());
    ctx.dirty(1);
    ctx.notify(HASH, "hincrby", argv[1]);
    ctx.out.int(new);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // The increment alone first: Redis rejects a bad one before it looks at the key.
    match ldouble::incr_by_float(None, argv[3]) {
        Ok(_) => {}
        Err(FloatError::NotFloat) => return Err(CommandError::NotFloat),
        Err(FloatError::NanOrInfinity) => {
            return Err(CommandError::Err("value is NaN or Infinity".into()))
        }
    }
    let h = ctx.ks.hash_mut(argv[1])?;
    let text = match ldouble::incr_by_float(h.get(argv[2]), argv[3]) {
        Ok(t) => t,
        Err(FloatError::NotFloat) => {
            return Err(CommandError::Err("hash value is not a float".into()))
        }
        Err(e) => return Err(e.into()),
    };
    h.insert(argv[2], &text);
    ctx.dirty(1);
    ctx.notify(HASH, "hincrbyfloat", argv[1]);
    // Replayed as the value it produced, as Redis logs it, so a replay cannot round differently.
    ctx.propagate(&[b"HSET", argv[1], argv[2], &text]);
    ctx.out.bulk(&text);
    Ok(())
}

/// A small xorshift generator: HRANDFIELD needs spread, not cryptographic quality.
pub(crate) fn random(bound: usize) -> usize {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(ahash::RandomState::new().hash_one(0u8) | 1);
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x % bound.max(1) as u64) as usize
    })
}

/// `n` distinct random positions below `size` (n < size), for HRANDFIELD and SRANDMEMBER.
pub(crate) fn distinct_picks(size: usize, n: usize) -> Vec<usize> {
    if n * 3 > size {
        // Many of them: a partial Fisher-Yates shuffle of the positions.
        let mut idx: Vec<usize> = (0..size).collect();
        for i in 0..n {
            let j = i + random(size - i);
            idx.swap(i, j);
        }
        idx.truncate(n);
        idx
    } else {
        // Few of many: random positions until n distinct ones, without a vector of them all.
        let mut seen = hashbrown::HashSet::with_capacity_and_hasher(n, ahash::RandomState::new());
        let mut picks = Vec::with_capacity(n);
        while picks.len() < n {
            let i = random(size);
            if seen.insert(i) {
                picks.push(i);
            }
        }
        picks
    }
}

fn hrandfield(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() == 2 {
        match ctx.ks.get_hash(argv[1])? {
            None => ctx.out.null_bulk(),
            Some(h) => {
                let (f, _) = h.at(random(h.len()));
                ctx.out.bulk(f);
            }
        }
        return Ok(());
    }
    let count = args::int(argv[2])?;
    if count == i64::MIN {
        return Err(CommandError::Err(format!(
            "value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    let withvalues = match argv.len() {
        3 => false,
        4 if argv[3].eq_ignore_ascii_case(b"withvalues") => true,
        _ => return Err(CommandError::Syntax),
    };
    if withvalues && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(CommandError::Err("value is out of range".into()));
    }
    let Some(h) = ctx.ks.get_hash(argv[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let len = h.len();
    let header = |out: &mut crate::resp::ReplyBuf, n: usize| {
        if withvalues {
            out.pairs(n);
        } else {
            out.array(n);
        }
    };
    let reply = |out: &mut crate::resp::ReplyBuf, (f, v): (&[u8], &[u8])| {
        if withvalues {
            out.pair();
        }
        out.bulk(f);
        if withvalues {
            out.bulk(v);
        }
    };
    if count < 0 {
        // Negative: that many picks, each independent, so fields may repeat. Redis would build
        // a reply of any length; rudis builds replies in memory, so it refuses absurd ones.
        let n = count.unsigned_abs();
        if n > MAX_RANDOM_PICKS {
            return Err(CommandError::Err("value is out of range".into()));
        }
        header(ctx.out, n as usize);
        for _ in 0..n {
            reply(ctx.out, h.at(random(len)));
        }
        return Ok(());
    }
    let picks: Vec<usize> = if count as u64 >= len as u64 {
        (0..len).collect()
    } else {
        distinct_picks(len, count as usize)
    };
    header(ctx.out, picks.len());
    for i in picks {
        reply(ctx.out, h.at(i));
    }
    Ok(())
}

/// The most picks HRANDFIELD with a negative count makes: its reply is built in memory.
const MAX_RANDOM_PICKS: u64 = 10_000_000;

/// A SCAN cursor, as Redis's `parseScanCursorOrReply`: an unsigned 64-bit number.
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| {
            // strtoul accepts a sign; a negative cursor wraps, as in Redis.
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<i64>().ok().map(|v| v as u64))
        })
        .ok_or_else(|| CommandError::Err("invalid cursor".into()))
}

/// HSCAN: a small hash (a listpack in Redis) is returned whole with cursor 0, as Redis does; a
/// large one in steps of about COUNT fields (see `DenseTable::scan`), so that scanning a hash of
/// millions of fields never builds one huge reply under the shard's lock.
fn hscan(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let cursor = parse_cursor(argv[2])?;
    let Some(h) = ctx.ks.get_hash(argv[1])? else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let (count, pattern) = args::scan_options(argv)?;
    let (next, fields) = h.scan(cursor, count);
    let matched: Vec<(&[u8], &[u8])> = fields
        .into_iter()
        .filter(|(f, _)| pattern.is_none_or(|p| glob::matches(p, f, false)))
        .collect();
    ctx.out.array(2);
    ctx.out.bulk(itoa::Buffer::new().format(next).as_bytes());
    ctx.out.array(matched.len() * 2);
    for (f, v) in matched {
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
    Ok(())
}
