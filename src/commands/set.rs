//! Set commands (Redis's t_set.c). Replies that Redis 7.0 sends as a set (SMEMBERS, SINTER,
//! SUNION, SDIFF, SPOP with a count) are RESP3 sets; SRANDMEMBER's and SSCAN's are arrays.

use super::ctx::Keyspace;
use super::flags::*;
use super::hash::{distinct_picks, parse_cursor, random};
use super::{args, CommandError, CommandSpec, Ctx, Keys, ALL_KEYS, KEY1};
use crate::notify::events::class::{GENERIC, SET};
use crate::resp::ReplyBuf;
use crate::store::set::Member;
use crate::store::{Set, Value};
use crate::util::glob;

pub(super) const KEY12: Keys = Keys::Range {
    first: 1,
    last: 2,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("sadd", -3, WRITE | DENYOOM | FAST, KEY1, sadd),
    cmd!("srem", -3, WRITE | FAST, KEY1, srem),
    cmd!("smembers", 2, READONLY, KEY1, smembers),
    cmd!("sismember", 3, READONLY | FAST, KEY1, sismember),
    cmd!("smismember", -3, READONLY | FAST, KEY1, smismember),
    cmd!("scard", 2, READONLY | FAST, KEY1, scard),
    cmd!("spop", -2, WRITE | FAST, KEY1, spop),
    cmd!("srandmember", -2, READONLY, KEY1, srandmember),
    cmd!("smove", 4, WRITE | FAST, KEY12, smove),
    cmd!("sinter", -2, READONLY, ALL_KEYS, sinter),
    cmd!(
        "sintercard",
        -3,
        READONLY | MOVABLEKEYS,
        Keys::KeyNum {
            count: 1,
            first: 2,
            step: 1,
        },
        sintercard
    ),
    cmd!("sinterstore", -3, WRITE | DENYOOM, ALL_KEYS, sinterstore),
    cmd!("sunion", -2, READONLY, ALL_KEYS, sunion),
    cmd!("sunionstore", -3, WRITE | DENYOOM, ALL_KEYS, sunionstore),
    cmd!("sdiff", -2, READONLY, ALL_KEYS, sdiff),
    cmd!("sdiffstore", -3, WRITE | DENYOOM, ALL_KEYS, sdiffstore),
    cmd!("sscan", -3, READONLY, KEY1, sscan),
];

fn reply_member(out: &mut ReplyBuf, m: Member) {
    match m {
        Member::Int(v) => out.bulk_int(v),
        Member::Bytes(b) => out.bulk(b),
    }
}

fn sadd(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // Nothing new: no change, so WATCH must not see one (Redis signals only on an addition).
    if let Some(s) = ctx.ks.get_set(argv[1])? {
        if argv[2..].iter().all(|m| s.contains(m)) {
            ctx.out.int(0);
            return Ok(());
        }
    }
    let s = ctx.ks.set_mut(argv[1])?;
    let added = argv[2..].iter().filter(|m| s.insert(m)).count();
    ctx.dirty(added as u64);
    ctx.notify(SET, "sadd", argv[1]);
    ctx.out.int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let present = match ctx.ks.get_set(argv[1])? {
        None => false,
        Some(s) => argv[2..].iter().any(|m| s.contains(m)),
    };
    if !present {
        ctx.out.int(0);
        return Ok(());
    }
    let s = ctx.ks.existing_set_mut(argv[1])?.expect("read above");
    let deleted = argv[2..].iter().filter(|m| s.remove(m)).count();
    let emptied = s.is_empty();
    if emptied {
        ctx.ks.remove(argv[1]);
    }
    ctx.dirty(deleted as u64);
    ctx.notify(SET, "srem", argv[1]);
    ctx.notify_del_if(emptied, argv[1]);
    ctx.out.int(deleted as i64);
    Ok(())
}

fn smembers(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // As Redis 7.0, SMEMBERS is SINTER of one key.
    inter(ctx, &argv[1..], None, None)
}

fn sismember(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let found = ctx
        .ks
        .get_set(argv[1])?
        .is_some_and(|s| s.contains(argv[2]));
    ctx.out.int(found as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let s = ctx.ks.get_set(argv[1])?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        ctx.out.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = ctx.ks.get_set(argv[1])?.map_or(0, Set::len);
    ctx.out.int(n as i64);
    Ok(())
}

/// A count that must not be negative (Redis's `getPositiveLongFromObjectOrReply`).
pub(super) fn positive(arg: &[u8]) -> Result<u64, CommandError> {
    args::int(arg)
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n as u64)
        .ok_or_else(|| CommandError::Err("value is out of range, must be positive".into()))
}

/// Removes `n` (< the set's size) random members of the set at `key`, returning them.
/// One function for SPOP of one member and of many, so that any other caller that pops (a
/// script, a future blocking command) shares it.
fn pop_random(ctx: &mut Ctx, key: &[u8], n: usize) -> Result<Vec<Vec<u8>>, CommandError> {
    let Some(s) = ctx.ks.existing_set_mut(key)? else {
        return Ok(Vec::new());
    };
    let popped: Vec<Vec<u8>> = (0..n.min(s.len()))
        .map(|_| s.remove_at(random(s.len())))
        .collect();
    if s.is_empty() {
        ctx.ks.remove(key);
    }
    Ok(popped)
}

fn spop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    if argv.len() > 3 {
        return Err(CommandError::Syntax);
    }
    if argv.len() == 2 {
        if ctx.ks.get_set(key)?.is_none() {
            ctx.out.null_bulk();
            return Ok(());
        }
        let popped = pop_random(ctx, key, 1)?;
        // Logged as the SREM of what was popped, so that a replay removes the same member.
        ctx.propagate(&[b"SREM", key, &popped[0]]);
        ctx.dirty(1);
        notify_spop(ctx, key);
        ctx.out.bulk(&popped[0]);
        return Ok(());
    }
    let count = positive(argv[2])?;
    let Some(s) = ctx.ks.get_set(key)? else {
        ctx.out.set(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    let size = s.len();
    if count >= size as u64 {
        // The whole set, in the order Redis's SUNION of it would list it; logged as a DEL.
        let mut all = Set::default();
        for m in s.iter() {
            all.insert_member(m);
        }
        ctx.out.set(all.len());
        for m in all.iter() {
            reply_member(ctx.out, m);
        }
        ctx.ks.remove(key);
        ctx.propagate(&[&b"DEL"[..], key]);
        ctx.dirty(size as u64);
        notify_spop(ctx, key);
        return Ok(());
    }
    let popped = pop_random(ctx, key, count as usize)?;
    ctx.out.set(popped.len());
    for m in &popped {
        ctx.out.bulk(m);
    }
    // One SREM per member, as Redis 7.0 logs it (the record is then a MULTI/EXEC).
    for m in &popped {
        ctx.propagate(&[b"SREM", key, m]);
    }
    ctx.dirty(popped.len() as u64);
    notify_spop(ctx, key);
    Ok(())
}

/// SPOP's events: `spop`, and `del` if it took the last members.
fn notify_spop(ctx: &mut Ctx, key: &[u8]) {
    ctx.notify(SET, "spop", key);
    let emptied = ctx.ks.get(key).is_none();
    ctx.notify_del_if(emptied, key);
}

/// The most picks SRANDMEMBER with a negative count makes: its reply is built in memory.
const MAX_RANDOM_PICKS: u64 = 10_000_000;

fn srandmember(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() > 3 {
        return Err(CommandError::Syntax);
    }
    if argv.len() == 2 {
        match ctx.ks.get_set(argv[1])? {
            None => ctx.out.null_bulk(),
            Some(s) => reply_member(ctx.out, s.get(random(s.len()))),
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
    let Some(s) = ctx.ks.get_set(argv[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let out = &mut *ctx.out;
    let n = count.unsigned_abs();
    if n == 0 {
        out.array(0);
        return Ok(());
    }
    if count < 0 || n == 1 {
        // Independent picks: members may repeat.
        if n > MAX_RANDOM_PICKS {
            return Err(CommandError::Err("value is out of range".into()));
        }
        out.array(n as usize);
        for _ in 0..n {
            reply_member(out, s.get(random(s.len())));
        }
        return Ok(());
    }
    let size = s.len();
    if n >= size as u64 {
        out.array(size);
        for m in s.iter() {
            reply_member(out, m);
        }
        return Ok(());
    }
    let n = n as usize;
    let picks = distinct_picks(size, n);
    out.array(n);
    for i in picks {
        reply_member(out, s.get(i));
    }
    Ok(())
}

fn smove(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (src, dst, m) = (argv[1], argv[2], argv[3]);
    // Redis's order: a missing source is 0 whatever the destination holds.
    let Some(s) = ctx.ks.get_set(src)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let has = s.contains(m);
    ctx.ks.get_set(dst)?;
    if src == dst || !has {
        ctx.out.int(has as i64);
        return Ok(());
    }
    let s = ctx.ks.existing_set_mut(src)?.expect("read above");
    s.remove(m);
    let emptied = s.is_empty();
    if emptied {
        ctx.ks.remove(src);
    }
    ctx.dirty(1);
    ctx.notify(SET, "srem", src);
    ctx.notify_del_if(emptied, src);
    // A destination that has the member already is unchanged: WATCH must not see it.
    if !ctx.ks.get_set(dst)?.is_some_and(|d| d.contains(m)) {
        ctx.ks.set_mut(dst)?.insert(m);
        ctx.dirty(1);
        ctx.notify(SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

/// The sets at `keys`, `None` for a missing key; WRONGTYPE for the first key that holds
/// something else, whatever comes before it.
fn lookup<'k>(ks: &'k Keyspace, keys: &[&[u8]]) -> Result<Vec<Option<&'k Set>>, CommandError> {
    keys.iter().map(|k| ks.get_set(k)).collect()
}

/// Stores `result` at `dst` (replacing what is there, deadline included) if it has members,
/// else deletes `dst`; emits `event` (or `del`), replies with its size.
fn store(ctx: &mut Ctx, dst: &[u8], result: Set, event: &str) {
    let n = result.len();
    store_result(ctx, dst, n, (SET, event), || Value::Set(Box::new(result)));
}

/// A *STORE command's end (sets and sorted sets): `value` (of `n` members) replaces `dst`
/// with the keyspace event `event` (class, name), or with none `dst` is deleted (`del`); the
/// reply is `n`.
pub(super) fn store_result(
    ctx: &mut Ctx,
    dst: &[u8],
    n: usize,
    event: (u32, &str),
    value: impl FnOnce() -> Value,
) {
    if n > 0 {
        ctx.ks.set(dst, value());
        ctx.dirty(1);
        ctx.notify(event.0, event.1, dst);
    } else if ctx.ks.remove(dst).is_some() {
        ctx.dirty(1);
        ctx.notify(GENERIC, "del", dst);
    }
    ctx.out.int(n as i64);
}

fn reply_set(out: &mut ReplyBuf, s: &Set) {
    out.set(s.len());
    for m in s.iter() {
        reply_member(out, m);
    }
}

/// SINTER, SMEMBERS, SINTERSTORE (`dst`) and SINTERCARD (`card`: Some(limit), 0 = none).
fn inter(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    dst: Option<&[u8]>,
    card: Option<u64>,
) -> Result<(), CommandError> {
    let sets = lookup(&ctx.ks, keys)?;
    let mut sets: Vec<&Set> = match sets.into_iter().collect::<Option<Vec<_>>>() {
        Some(sets) => sets,
        // A missing key is an empty set, and so is the intersection.
        None => {
            match (dst, card) {
                (Some(dst), _) => store(ctx, dst, Set::default(), "sinterstore"),
                (None, Some(_)) => ctx.out.int(0),
                (None, None) => ctx.out.set(0),
            }
            return Ok(());
        }
    };
    // Smallest first: its members are the candidates (and the reply's order, as in Redis).
    sets.sort_by_key(|s| s.len());
    let (first, rest) = (sets[0], &sets[1..]);
    let common = first.iter().filter(|m| {
        rest.iter()
            .all(|s| std::ptr::eq(*s, first) || s.contains_member(*m))
    });
    if let Some(limit) = card {
        let n = match limit {
            0 => common.count(),
            l => common.take(l.min(usize::MAX as u64) as usize).count(),
        };
        ctx.out.int(n as i64);
        return Ok(());
    }
    match dst {
        Some(dst) => {
            let mut result = Set::default();
            for m in common {
                result.insert_member(m);
            }
            store(ctx, dst, result, "sinterstore");
        }
        None => {
            // In the first set's order, as Redis replies (no new set is built).
            let common: Vec<Member> = common.collect();
            ctx.out.set(common.len());
            for m in common {
                reply_member(ctx.out, m);
            }
        }
    }
    Ok(())
}

fn sinter(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    inter(ctx, &argv[1..], None, None)
}

fn sinterstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    inter(ctx, &argv[2..], Some(argv[1]), None)
}

/// SINTERCARD's numkeys, as Redis checks it.
fn numkeys(argv: &[&[u8]]) -> Result<usize, CommandError> {
    let bad = || CommandError::Err("numkeys should be greater than 0".into());
    let n = args::int(argv[1]).map_err(|_| bad())?;
    if n < 1 {
        return Err(bad());
    }
    if n as u64 > (argv.len() - 2) as u64 {
        return Err(CommandError::Err(
            "Number of keys can't be greater than number of args".into(),
        ));
    }
    Ok(n as usize)
}

fn sintercard(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = numkeys(argv)?;
    let mut limit = 0;
    let mut i = 2 + n;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"limit") && i + 1 < argv.len() {
            limit = args::int(argv[i + 1])
                .ok()
                .filter(|l| *l >= 0)
                .ok_or_else(|| CommandError::Err("LIMIT can't be negative".into()))?
                as u64;
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    inter(ctx, &argv[2..2 + n], None, Some(limit))
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Diff,
}

/// SUNION, SDIFF and their STORE forms. The result is built as a new set, as Redis builds it,
/// so its encoding and order are Redis's: integers only, few enough, come out ascending.
fn union_diff(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    dst: Option<&[u8]>,
    op: Op,
) -> Result<(), CommandError> {
    let sets = lookup(&ctx.ks, keys)?;
    let mut result = Set::default();
    match op {
        Op::Union => {
            for s in sets.iter().flatten() {
                for m in s.iter() {
                    result.insert_member(m);
                }
            }
        }
        Op::Diff => {
            // A later key naming the first one leaves nothing.
            let same = keys[1..].contains(&keys[0]);
            if let (Some(first), false) = (sets[0], same) {
                for m in first.iter() {
                    if !sets[1..].iter().flatten().any(|s| s.contains_member(m)) {
                        result.insert_member(m);
                    }
                }
            }
        }
    }
    match dst {
        Some(dst) => {
            let event = match op {
                Op::Union => "sunionstore",
                Op::Diff => "sdiffstore",
            };
            store(ctx, dst, result, event)
        }
        None => reply_set(ctx.out, &result),
    }
    Ok(())
}

fn sunion(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    union_diff(ctx, &argv[1..], None, Op::Union)
}

fn sunionstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    union_diff(ctx, &argv[2..], Some(argv[1]), Op::Union)
}

fn sdiff(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    union_diff(ctx, &argv[1..], None, Op::Diff)
}

fn sdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    union_diff(ctx, &argv[2..], Some(argv[1]), Op::Diff)
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]. As Redis 7.0: the cursor is checked first,
/// then the key (a missing one replies an empty scan before the options are read), then the
/// options. See `Set::scan` for the cursor.
fn sscan(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let cursor = parse_cursor(argv[2])?;
    let Some(s) = ctx.ks.get_set(argv[1])? else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let (count, pattern) = args::scan_options(argv)?;
    let (next, members) = s.scan(cursor, count);
    let matched: Vec<Member> = members
        .into_iter()
        .filter(|m| pattern.is_none_or(|p| m.with_bytes(|b| glob::matches(p, b, false))))
        .collect();
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(matched.len());
    for m in matched {
        reply_member(out, m);
    }
    Ok(())
}
