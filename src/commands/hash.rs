//! Hash commands (Redis's t_hash.c), and Redis 7.4's field deadlines (HEXPIRE and its
//! kin, see `store::hash` for why a Redis 7.0 server has them).

use super::ctx::Keyspace;
use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, KEY1};
use crate::notify::events::class::HASH;
use crate::store::hash::MAX_SET_DEADLINE;
use crate::store::{Hash, Value};
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
    cmd!("hexpire", -6, WRITE | DENYOOM | FAST, KEY1, hexpire),
    cmd!("hpexpire", -6, WRITE | DENYOOM | FAST, KEY1, hpexpire),
    cmd!("hexpireat", -6, WRITE | DENYOOM | FAST, KEY1, hexpireat),
    cmd!("hpexpireat", -6, WRITE | DENYOOM | FAST, KEY1, hpexpireat),
    cmd!("httl", -5, READONLY | FAST, KEY1, httl),
    cmd!("hpttl", -5, READONLY | FAST, KEY1, hpttl),
    cmd!("hexpiretime", -5, READONLY | FAST, KEY1, hexpiretime),
    cmd!("hpexpiretime", -5, READONLY | FAST, KEY1, hpexpiretime),
    cmd!("hpersist", -5, WRITE | FAST, KEY1, hpersist),
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
    ctx.ks.expire_field(argv[1], argv[2]);
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

/// A field's value as a read of it sees it: none past its deadline, and such a field is
/// removed after the command (Redis 7.4's lazy expiry of a field read).
fn read_field<'h>(ks: &Keyspace, h: &'h Hash, key: &[u8], field: &[u8]) -> Option<&'h [u8]> {
    if h.is_field_expired(field, ks.clock()) {
        ks.saw_expired_field(key, field);
        return None;
    }
    h.get(field)
}

fn hget(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let ks = &ctx.ks;
    let v = ks
        .get_hash(argv[1])?
        .and_then(|h| read_field(ks, h, argv[1], argv[2]));
    ctx.out.bulk_opt(v);
    Ok(())
}

fn hmget(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let ks = &ctx.ks;
    let h = ks.get_hash(argv[1])?;
    ctx.out.array(argv.len() - 2);
    for f in &argv[2..] {
        ctx.out
            .bulk_opt(h.and_then(|h| read_field(ks, h, argv[1], f)));
    }
    Ok(())
}

/// HGETALL (a map), HKEYS, HVALS: the fields and/or values, in the hash's order.
fn list(ctx: &mut Ctx, key: &[u8], fields: bool, values: bool) -> Result<(), CommandError> {
    let both = fields && values;
    let clock = ctx.ks.clock();
    let Some(h) = ctx.ks.get_hash(key)? else {
        if both {
            ctx.out.map(0);
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    let n = h.live_len(clock);
    if both {
        ctx.out.map(n);
    } else {
        ctx.out.array(n);
    }
    for (f, v) in h.iter_live(clock) {
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
    let ks = &ctx.ks;
    let found = ks
        .get_hash(argv[1])?
        .is_some_and(|h| read_field(ks, h, argv[1], argv[2]).is_some());
    ctx.out.int(found as i64);
    Ok(())
}

/// Fields past their deadline but not yet removed are counted, as Redis 7.4 counts them.
fn hlen(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = ctx.ks.get_hash(argv[1])?.map_or(0, Hash::len);
    ctx.out.int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let ks = &ctx.ks;
    let n = ks
        .get_hash(argv[1])?
        .and_then(|h| read_field(ks, h, argv[1], argv[2]))
        .map_or(0, <[u8]>::len);
    ctx.out.int(n as i64);
    Ok(())
}

fn hincrby(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let incr = args::int(argv[3])?;
    ctx.ks.expire_field(argv[1], argv[2]);
    let h = ctx.ks.hash_mut(argv[1])?;
    let cur = match h.get(argv[2]) {
        Some(v) => {
            args::int(v).map_err(|_| CommandError::Err("hash value is not an integer".into()))?
        }
        None => 0,
    };
    let new = cur.checked_add(incr).ok_or(CommandError::Overflow)?;
    // The field keeps its deadline, as in Redis 7.4.
    h.insert_keep_ttl(argv[2], itoa::Buffer::new().format(new).as_bytes());
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
    ctx.ks.expire_field(argv[1], argv[2]);
    let h = ctx.ks.hash_mut(argv[1])?;
    let text = match ldouble::incr_by_float(h.get(argv[2]), argv[3]) {
        Ok(t) => t,
        Err(FloatError::NotFloat) => {
            return Err(CommandError::Err("hash value is not a float".into()))
        }
        Err(e) => return Err(e.into()),
    };
    h.insert_keep_ttl(argv[2], &text);
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

/// The hash at `key` as HRANDFIELD picks from it: without the fields past their deadline
/// (Redis 7.4 removes them first; a read here holds a read lock, so it picks from a copy
/// and they are removed after the command).
fn random_source<'a>(
    ks: &'a Keyspace,
    key: &[u8],
) -> Result<Option<std::borrow::Cow<'a, Hash>>, CommandError> {
    let clock = ks.clock();
    Ok(match ks.get_hash(key)? {
        Some(h) if h.has_due(clock) => {
            for f in h.due_fields(clock) {
                ks.saw_expired_field(key, f);
            }
            Some(h.live_copy(clock))
                .filter(|h| !h.is_empty())
                .map(std::borrow::Cow::Owned)
        }
        h => h.map(std::borrow::Cow::Borrowed),
    })
}

fn hrandfield(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() == 2 {
        match random_source(&ctx.ks, argv[1])?.as_deref() {
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
    let source = random_source(&ctx.ks, argv[1])?;
    let Some(h) = source.as_deref() else {
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
    let clock = ctx.ks.clock();
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
        .filter(|(f, _)| h.get_live(f, clock).is_some())
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

// ----- field deadlines (Redis 7.4) -----

/// HEXPIRE's reply for a field: absent, condition not met, set, removed (a time past).
const NO_FIELD: i64 = -2;
const NOT_MET: i64 = 0;
const SET: i64 = 1;
const DELETED: i64 = 2;
/// HTTL's and HPERSIST's for a field without a deadline.
const NO_TTL: i64 = -1;

#[derive(Clone, Copy, PartialEq)]
enum Cond {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

/// The fields a FIELDS clause names, `numfields` at `at` (after the word FIELDS), with
/// Redis's errors (`bad_count`: its message for a count that is not a positive number).
fn fields_clause<'a, 'b>(
    argv: &'b [&'a [u8]],
    at: usize,
    bad_count: &str,
) -> Result<&'b [&'a [u8]], CommandError> {
    if !argv[at - 1].eq_ignore_ascii_case(b"FIELDS") {
        return Err(CommandError::Err(
            "Mandatory argument FIELDS is missing or not at the right position".into(),
        ));
    }
    let n = args::int(argv[at])
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| CommandError::Err(bad_count.into()))?;
    if n as u64 != (argv.len() - at - 1) as u64 {
        return Err(CommandError::Err(
            "The `numfields` parameter must match the number of arguments".into(),
        ));
    }
    Ok(&argv[at + 1..])
}

fn hexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    set_deadlines(ctx, argv, "hexpire", 1000, true)
}

fn hpexpire(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    set_deadlines(ctx, argv, "hpexpire", 1, true)
}

fn hexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    set_deadlines(ctx, argv, "hexpireat", 1000, false)
}

fn hpexpireat(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    set_deadlines(ctx, argv, "hpexpireat", 1, false)
}

/// What HEXPIRE does to one field of `h` given deadline `at`: its reply.
fn deadline_outcome(h: &Hash, f: &[u8], at: u64, cond: Cond, clock: u64, delete: bool) -> i64 {
    if h.get_live(f, clock).is_none() {
        return NO_FIELD;
    }
    let met = match (h.ttl_of(f), cond) {
        (_, Cond::Always) => true,
        // A field without a deadline meets LT (and NX), not XX or GT.
        (None, c) => !matches!(c, Cond::Xx | Cond::Gt),
        (Some(_), Cond::Nx) => false,
        (Some(prev), Cond::Gt) => prev < at,
        (Some(prev), Cond::Lt) => prev > at,
        (Some(_), Cond::Xx) => true,
    };
    match (met, delete) {
        (false, _) => NOT_MET,
        (true, true) => DELETED,
        (true, false) => SET,
    }
}

/// HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT: `unit` ms per unit of the time given, relative
/// to now or absolute. Logged as HPEXPIREAT with the fields it set (and an HDEL for each
/// field a time already past removed), as Redis 7.4 propagates it.
fn set_deadlines(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    name: &str,
    unit: u64,
    relative: bool,
) -> Result<(), CommandError> {
    let key = argv[1];
    // WRONGTYPE before the arguments' errors, as Redis looks the key up first.
    let h = ctx.ks.get_hash(key)?;
    let t = args::int(argv[2])?;
    if t < 0 {
        return Err(CommandError::Err(
            "invalid expire time, must be >= 0".into(),
        ));
    }
    let bad_time = || CommandError::Err(format!("invalid expire time in '{name}' command"));
    let now = ctx.ks.now();
    let base = if relative { now } else { 0 };
    let t = (t as u64).checked_mul(unit).ok_or_else(bad_time)?;
    if t > MAX_SET_DEADLINE / unit * unit || t > MAX_SET_DEADLINE - base.min(MAX_SET_DEADLINE) {
        return Err(bad_time());
    }
    let at = t + base;
    let cond = match argv[3].to_ascii_uppercase().as_slice() {
        b"NX" => Cond::Nx,
        b"XX" => Cond::Xx,
        b"GT" => Cond::Gt,
        b"LT" => Cond::Lt,
        _ => Cond::Always,
    };
    let at_count = if cond == Cond::Always { 4 } else { 5 };
    let fields = fields_clause(
        argv,
        at_count,
        "Parameter `numFields` should be greater than 0",
    )?;
    ctx.out.array(fields.len());
    let Some(h) = h else {
        for _ in fields {
            ctx.out.int(NO_FIELD);
        }
        return Ok(());
    };
    // A time already past removes the fields, but not while loading, on a replica or for its
    // master (Redis's checkAlreadyExpired): there the master's HDEL does.
    let clock = ctx.ks.clock();
    let delete = at <= now && clock != 0 && !ctx.shared.repl.is_replica();
    let outcome = |h: &Hash, f: &[u8]| deadline_outcome(h, f, at, cond, clock, delete);
    // Nothing changes unless some field would: then neither WATCH nor the AOF hears of it.
    if !fields
        .iter()
        .any(|f| matches!(outcome(h, f), SET | DELETED))
    {
        for f in fields {
            ctx.out.int(outcome(h, f));
        }
        // As Redis, the hash still becomes one that can hold deadlines (a listpackex).
        if let Some(Value::Hash(h)) = ctx.ks.get_mut_unsignalled(key) {
            h.allow_ttls();
        }
        return Ok(());
    }
    let h = ctx.ks.hash_mut(key)?;
    h.allow_ttls();
    let (mut set, mut deleted) = (Vec::new(), Vec::new());
    let mut replies = Vec::with_capacity(fields.len());
    for f in fields {
        let r = outcome(h, f);
        match r {
            SET => {
                h.set_ttl(f, Some(at));
                set.push(*f);
            }
            DELETED => {
                h.remove(f);
                deleted.push(*f);
            }
            _ => {}
        }
        replies.push(r);
    }
    let emptied = h.is_empty();
    for r in replies {
        ctx.out.int(r);
    }
    if emptied {
        ctx.ks.remove(key);
    } else if !set.is_empty() {
        ctx.ks.note_field_deadline(key, at);
    }
    ctx.dirty((set.len() + deleted.len()) as u64);
    ctx.shared.stats.expired_subkeys(deleted.len() as u64);
    for f in &deleted {
        ctx.propagate(&[b"HDEL", key, f]);
    }
    if !set.is_empty() {
        let (at, n) = (at.to_string(), set.len().to_string());
        let mut record: Vec<&[u8]> = vec![b"HPEXPIREAT", key, at.as_bytes()];
        if cond != Cond::Always {
            record.push(argv[3]);
        }
        record.extend([&b"FIELDS"[..], n.as_bytes()]);
        record.extend(set.iter().copied());
        ctx.propagate(&record);
    }
    if !deleted.is_empty() {
        ctx.notify(HASH, "hdel", key);
        ctx.notify_del_if(emptied, key);
    } else {
        ctx.notify(HASH, "hexpire", key);
    }
    Ok(())
}

fn httl(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    deadlines(ctx, argv, 1000, true)
}

fn hpttl(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    deadlines(ctx, argv, 1, true)
}

fn hexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    deadlines(ctx, argv, 1000, false)
}

fn hpexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    deadlines(ctx, argv, 1, false)
}

/// A field's deadline if it has one and it has not passed. A listpackex in Redis counts a
/// deadline equal to now as passed, a hash table does not: kept, as HTTL shows the difference.
fn live_deadline(h: &Hash, f: &[u8], now: u64) -> Result<Option<u64>, ()> {
    h.get(f).ok_or(())?;
    match h.ttl_of(f) {
        None => Ok(None),
        Some(at) if at < now || (h.is_small() && at == now) => Err(()),
        Some(at) => Ok(Some(at)),
    }
}

/// HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME: each field's time left (`relative`) or deadline,
/// in units of `unit` ms (seconds rounded up, as Redis does).
fn deadlines(ctx: &mut Ctx, argv: &[&[u8]], unit: u64, relative: bool) -> Result<(), CommandError> {
    let now = ctx.ks.now();
    let h = ctx.ks.get_hash(argv[1])?;
    let fields = fields_clause(argv, 3, "Number of fields must be a positive integer")?;
    let base = if relative { now } else { 0 };
    ctx.out.array(fields.len());
    for f in fields {
        let r = match h.map(|h| live_deadline(h, f, now)) {
            None | Some(Err(())) => NO_FIELD,
            Some(Ok(None)) => NO_TTL,
            Some(Ok(Some(at))) => (at - base).div_ceil(unit) as i64,
        };
        ctx.out.int(r);
    }
    Ok(())
}

/// HPERSIST: the fields' deadlines cleared. Logged as it came, as Redis does.
fn hpersist(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let now = ctx.ks.now();
    let outcome = |h: &Hash, f: &[u8]| match live_deadline(h, f, now) {
        Err(()) => NO_FIELD,
        Ok(None) => NO_TTL,
        Ok(Some(_)) => SET,
    };
    // WRONGTYPE before the arguments' errors, as Redis looks the key up first.
    let h = ctx.ks.get_hash(key)?;
    let fields = fields_clause(argv, 3, "Number of fields must be a positive integer")?;
    ctx.out.array(fields.len());
    // Nothing changes unless some field has a deadline: then WATCH does not hear of it.
    match h {
        None => {
            for _ in fields {
                ctx.out.int(NO_FIELD);
            }
            return Ok(());
        }
        Some(h) if !fields.iter().any(|f| outcome(h, f) == SET) => {
            for f in fields {
                ctx.out.int(outcome(h, f));
            }
            return Ok(());
        }
        Some(_) => {}
    }
    let h = ctx.ks.hash_mut(key)?;
    let mut replies = Vec::with_capacity(fields.len());
    for f in fields {
        let r = outcome(h, f);
        if r == SET {
            h.set_ttl(f, None);
        }
        replies.push(r);
    }
    for r in replies {
        ctx.out.int(r);
    }
    ctx.dirty(1);
    ctx.notify(HASH, "hpersist", key);
    Ok(())
}
