//! Sorted-set commands (Redis's t_zset.c), the blocking pops included. Scores are doubles in
//! replies (`ReplyBuf::double`: a bulk string in RESP2); a reply WITHSCORES is an array of
//! [member, score] pairs in RESP3 and one flat array in RESP2 (`ReplyBuf::pairs`), but ZMPOP's,
//! which nests in both, as Redis 7.0 does.

use super::flags::*;
use super::hash::{distinct_picks, parse_cursor, random};
use super::list::mpop_args;
use super::list_blocking::{block, deadline, run_for, KEYS_BUT_LAST};
use super::set::{store_result, KEY12};
use super::{args, CommandError, CommandSpec, Ctx, Keys, KEY1};
use crate::notify::events::class::ZSET;
use crate::resp::ReplyBuf;
use crate::store::zset::Item;
use crate::store::{Set, Value, ZSet};
use crate::util::glob;
use crate::util::strtod::{parse_double, strtod};

/// ZUNION numkeys key ...: keys from 2, as many as argv[1] says.
const NUMKEYS_1: Keys = Keys::KeyNum {
    count: 1,
    first: 2,
    step: 1,
};
/// ZUNIONSTORE dst numkeys key ...
const DST_NUMKEYS_2: Keys = Keys::DestKeyNum {
    count: 2,
    first: 3,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("zadd", -4, WRITE | DENYOOM | FAST, KEY1, zadd),
    cmd!("zincrby", 4, WRITE | DENYOOM | FAST, KEY1, zincrby),
    cmd!("zrem", -3, WRITE | FAST, KEY1, zrem),
    cmd!("zcard", 2, READONLY | FAST, KEY1, zcard),
    cmd!("zcount", 4, READONLY | FAST, KEY1, zcount),
    cmd!("zlexcount", 4, READONLY | FAST, KEY1, zlexcount),
    cmd!("zscore", 3, READONLY | FAST, KEY1, zscore),
    cmd!("zmscore", -3, READONLY | FAST, KEY1, zmscore),
    cmd!("zrank", 3, READONLY | FAST, KEY1, zrank),
    cmd!("zrevrank", 3, READONLY | FAST, KEY1, zrevrank),
    cmd!("zrange", -4, READONLY, KEY1, zrange),
    cmd!("zrangestore", -5, WRITE | DENYOOM, KEY12, zrangestore),
    cmd!("zrevrange", -4, READONLY, KEY1, zrevrange),
    cmd!("zrangebyscore", -4, READONLY, KEY1, zrangebyscore),
    cmd!("zrevrangebyscore", -4, READONLY, KEY1, zrevrangebyscore),
    cmd!("zrangebylex", -4, READONLY, KEY1, zrangebylex),
    cmd!("zrevrangebylex", -4, READONLY, KEY1, zrevrangebylex),
    cmd!("zremrangebyrank", 4, WRITE, KEY1, zremrangebyrank),
    cmd!("zremrangebyscore", 4, WRITE, KEY1, zremrangebyscore),
    cmd!("zremrangebylex", 4, WRITE, KEY1, zremrangebylex),
    cmd!("zpopmin", -2, WRITE | FAST, KEY1, zpopmin),
    cmd!("zpopmax", -2, WRITE | FAST, KEY1, zpopmax),
    cmd!("zmpop", -4, WRITE | MOVABLEKEYS, NUMKEYS_1, zmpop),
    cmd!("zunion", -3, READONLY | MOVABLEKEYS, NUMKEYS_1, zunion),
    cmd!("zinter", -3, READONLY | MOVABLEKEYS, NUMKEYS_1, zinter),
    cmd!("zdiff", -3, READONLY | MOVABLEKEYS, NUMKEYS_1, zdiff),
    cmd!(
        "zunionstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        DST_NUMKEYS_2,
        zunionstore
    ),
    cmd!(
        "zinterstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        DST_NUMKEYS_2,
        zinterstore
    ),
    cmd!(
        "zdiffstore",
        -4,
        WRITE | DENYOOM | MOVABLEKEYS,
        DST_NUMKEYS_2,
        zdiffstore
    ),
    cmd!(
        "zintercard",
        -3,
        READONLY | MOVABLEKEYS,
        NUMKEYS_1,
        zintercard
    ),
    cmd!("zrandmember", -2, READONLY, KEY1, zrandmember),
    cmd!("zscan", -3, READONLY, KEY1, zscan),
    cmd!(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        KEYS_BUT_LAST,
        bzpopmin
    ),
    cmd!(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        KEYS_BUT_LAST,
        bzpopmax
    ),
    cmd!(
        "bzmpop",
        -5,
        WRITE | BLOCKING | MOVABLEKEYS,
        Keys::KeyNum {
            count: 2,
            first: 3,
            step: 1,
        },
        bzmpop
    ),
];

fn score_arg(arg: &[u8]) -> Result<f64, CommandError> {
    parse_double(arg).ok_or(CommandError::NotFloat)
}

/// Members, with their scores if `withscores`: pairs in RESP3, one flat array in RESP2.
fn reply_items<'a>(
    out: &mut ReplyBuf,
    items: impl ExactSizeIterator<Item = Item<'a>>,
    withscores: bool,
) {
    if withscores {
        out.pairs(items.len());
        for (m, s) in items {
            out.pair();
            out.bulk(m);
            out.double(s);
        }
    } else {
        out.array(items.len());
        for (m, _) in items {
            out.bulk(m);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Ranges.

/// A score interval as ZRANGEBYSCORE reads one (Redis's `zslParseRange`): `(` before a bound
/// excludes it; the rest is read by `strtod` (so `inf`, `-inf`, and an empty string for 0).
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (ex, text) = match arg.first() {
        Some(b'(') => (true, &arg[1..]),
        _ => (false, arg),
    };
    let (v, whole, _) = strtod(text);
    (whole && !v.is_nan()).then_some((v, ex))
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CommandError> {
        let bad = || CommandError::Err("min or max is not a float".into());
        let (min, minex) = score_bound(min).ok_or_else(bad)?;
        let (max, maxex) = score_bound(max).ok_or_else(bad)?;
        Ok(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }
}

/// One end of a lex interval: `-`, `+`, `[x` (inclusive) or `(x` (exclusive).
#[derive(Clone, Copy)]
enum Lex<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn lex_bound(arg: &[u8]) -> Option<Lex<'_>> {
    match arg {
        b"+" => Some(Lex::Max),
        b"-" => Some(Lex::Min),
        [b'[', rest @ ..] => Some(Lex::Incl(rest)),
        [b'(', rest @ ..] => Some(Lex::Excl(rest)),
        _ => None,
    }
}

/// The interval a range command selects, by score or by member.
#[derive(Clone, Copy)]
enum Interval<'a> {
    Score(ScoreRange),
    Lex(Lex<'a>, Lex<'a>),
}

impl<'a> Interval<'a> {
    fn lex(min: &'a [u8], max: &'a [u8]) -> Result<Interval<'a>, CommandError> {
        match (lex_bound(min), lex_bound(max)) {
            (Some(a), Some(b)) => Ok(Interval::Lex(a, b)),
            _ => Err(CommandError::Err(
                "min or max not valid string range item".into(),
            )),
        }
    }

    fn gte_min(&self, (m, s): Item) -> bool {
        match *self {
            Interval::Score(r) => {
                if r.minex {
                    s > r.min
                } else {
                    s >= r.min
                }
            }
            Interval::Lex(min, _) => match min {
                Lex::Min => true,
                Lex::Max => false,
                Lex::Incl(x) => m >= x,
                Lex::Excl(x) => m > x,
            },
        }
    }

    fn lte_max(&self, (m, s): Item) -> bool {
        match *self {
            Interval::Score(r) => {
                if r.maxex {
                    s < r.max
                } else {
                    s <= r.max
                }
            }
            Interval::Lex(_, max) => match max {
                Lex::Max => true,
                Lex::Min => false,
                Lex::Incl(x) => m <= x,
                Lex::Excl(x) => m < x,
            },
        }
    }

    /// The ranks `lo..hi` of the members inside the interval.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let lo = z.count_while(|e| !self.gte_min(e));
        let hi = z.count_while(|e| self.lte_max(e));
        (lo, hi.max(lo))
    }
}

/// Redis's rank range normalisation (ZRANGE, ZREMRANGEBYRANK): negative ranks count from the
/// end; None when nothing is in range.
fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize + 1))
}

/// What a ZRANGE-family command selects.
enum Select<'a> {
    Rank(i64, i64),
    /// The interval, LIMIT's offset and count (negative: all).
    Within(Interval<'a>, i64, i64),
}

/// The members `sel` picks from `z`, in reply order (`rev`: descending).
fn select<'z>(z: &'z ZSet, sel: &Select, rev: bool) -> Vec<Item<'z>> {
    let len = z.len();
    match *sel {
        Select::Rank(start, end) => match rank_range(start, end, len) {
            None => Vec::new(),
            Some((a, b)) if rev => z.rev_range(len - b, len - a).collect(),
            Some((a, b)) => z.range(a, b).collect(),
        },
        Select::Within(interval, offset, limit) => {
            if offset < 0 {
                return Vec::new();
            }
            let (lo, hi) = interval.ranks(z);
            let skip = (offset as u64).min((hi - lo) as u64) as usize;
            let take = if limit < 0 {
                usize::MAX
            } else {
                limit as u64 as usize
            };
            if rev {
                let end = hi - skip;
                z.rev_range(end.saturating_sub(take).max(lo), end).collect()
            } else {
                let start = lo + skip;
                z.range(start, start.saturating_add(take).min(hi)).collect()
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// ZRANGE and its older forms (Redis's `zrangeGenericCommand`): the source key at
/// `argv[first]`, its two bounds after it, then the options `by` and `rev` leave open.
fn zrange_generic(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    first: usize,
    dst: Option<&[u8]>,
    mut by: By,
    rev: Option<bool>,
) -> Result<(), CommandError> {
    let key = argv[first];
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut reverse = rev;
    let mut j = first + 3;
    while j < argv.len() {
        let a = argv[j];
        let left = argv.len() - j - 1;
        if dst.is_none() && a.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            offset = args::int(argv[j + 1])?;
            limit = args::int(argv[j + 2])?;
            j += 2;
        } else if reverse.is_none() && a.eq_ignore_ascii_case(b"rev") {
            reverse = Some(true);
        } else if by == By::Auto && a.eq_ignore_ascii_case(b"bylex") {
            by = By::Lex;
        } else if by == By::Auto && a.eq_ignore_ascii_case(b"byscore") {
            by = By::Score;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    let rev = reverse.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    if limit != -1 && by == By::Rank {
        return Err(CommandError::Err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
                .into(),
        ));
    }
    if withscores && by == By::Lex {
        return Err(CommandError::Err(
            "syntax error, WITHSCORES not supported in combination with BYLEX".into(),
        ));
    }
    // Reversed by score or member, the bounds come as max, min.
    let (mut lo, mut hi) = (argv[first + 1], argv[first + 2]);
    if rev && by != By::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let sel = match by {
        By::Score => Select::Within(Interval::Score(ScoreRange::parse(lo, hi)?), offset, limit),
        By::Lex => Select::Within(Interval::lex(lo, hi)?, offset, limit),
        _ => Select::Rank(args::int(lo)?, args::int(hi)?),
    };
    let Some(dst) = dst else {
        match ctx.ks.get_zset(key)? {
            None => ctx.out.array(0),
            Some(z) => {
                let items = select(z, &sel, rev);
                reply_items(ctx.out, items.into_iter(), withscores);
            }
        }
        return Ok(());
    };
    let result = match ctx.ks.get_zset(key)? {
        None => ZSet::default(),
        Some(z) => {
            let items = select(z, &sel, rev);
            // As Redis's `zrangeResultBeginStore`: packed unless a rank range is known to be
            // longer than a listpack may be (a score or lex range's length is not known).
            let long = matches!(sel, Select::Rank(..))
                && items.len() > crate::store::limits::zset_max_entries();
            let mut r = if long {
                ZSet::new_large()
            } else {
                ZSet::default()
            };
            for (m, s) in items {
                r.insert(m, s);
            }
            r
        }
    };
    store(ctx, dst, result, "zrangestore");
    Ok(())
}

/// Stores `result` at `dst` (replacing what is there, deadline included) if it has members,
/// else deletes `dst`; replies with its size. Blocked clients on `dst` are signalled by the
/// store itself (`Keyspace::set`).
fn store(ctx: &mut Ctx, dst: &[u8], result: ZSet, event: &str) {
    let n = result.len();
    store_result(ctx, dst, n, (ZSET, event), || Value::ZSet(Box::new(result)));
}

fn zrange(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrange_generic(ctx, argv, 1, None, By::Auto, None)
}

fn zrangestore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrange_generic(ctx, argv, 2, Some(argv[1]), By::Auto, None)
}

fn zrevrange(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrange_generic(ctx, argv, 1, None, By::Rank, Some(true))
}

fn zrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrange_generic(ctx, argv, 1, None, By::Score, Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrange_generic(ctx, argv, 1, None, By::Score, Some(true))
}

fn zrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrange_generic(ctx, argv, 1, None, By::Lex, Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrange_generic(ctx, argv, 1, None, By::Lex, Some(true))
}

fn zcount_generic(ctx: &mut Ctx, key: &[u8], interval: Interval) -> Result<(), CommandError> {
    let n = ctx.ks.get_zset(key)?.map_or(0, |z| {
        let (lo, hi) = interval.ranks(z);
        hi - lo
    });
    ctx.out.int(n as i64);
    Ok(())
}

fn zcount(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let r = ScoreRange::parse(argv[2], argv[3])?;
    zcount_generic(ctx, argv[1], Interval::Score(r))
}

fn zlexcount(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let i = Interval::lex(argv[2], argv[3])?;
    zcount_generic(ctx, argv[1], i)
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX: the bounds are parsed before the key is
/// read, as in Redis; nothing to remove changes nothing (WATCH included).
fn zremrange(ctx: &mut Ctx, key: &[u8], sel: Select, event: &str) -> Result<(), CommandError> {
    let range = match ctx.ks.get_zset(key)? {
        None => None,
        Some(z) => match sel {
            Select::Rank(a, b) => rank_range(a, b, z.len()),
            Select::Within(i, _, _) => Some(i.ranks(z)).filter(|(lo, hi)| lo < hi),
        },
    };
    let Some((lo, hi)) = range else {
        ctx.out.int(0);
        return Ok(());
    };
    let z = ctx.ks.existing_zset_mut(key)?.expect("read above");
    let n = z.remove_range(lo, hi);
    let emptied = z.is_empty();
    if emptied {
        ctx.ks.remove(key);
    }
    ctx.dirty(n as u64);
    ctx.notify(ZSET, event, key);
    ctx.notify_del_if(emptied, key);
    ctx.out.int(n as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let sel = Select::Rank(args::int(argv[2])?, args::int(argv[3])?);
    zremrange(ctx, argv[1], sel, "zremrangebyrank")
}

fn zremrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let r = ScoreRange::parse(argv[2], argv[3])?;
    zremrange(
        ctx,
        argv[1],
        Select::Within(Interval::Score(r), 0, -1),
        "zremrangebyscore",
    )
}

fn zremrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let i = Interval::lex(argv[2], argv[3])?;
    zremrange(ctx, argv[1], Select::Within(i, 0, -1), "zremrangebylex")
}

// ---------------------------------------------------------------------------------------
// ZADD and the single-member reads.

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one score-member pair does (Redis's `zsetAdd`).
#[derive(PartialEq)]
enum Outcome {
    /// Nothing (NX on a member, XX on none, GT/LT refusing).
    Nop,
    Added(f64),
    Updated(f64),
    /// Processed but the same score (INCR by 0, or a ZADD of the score it has).
    Same(f64),
    Nan,
}

fn outcome(cur: Option<f64>, score: f64, f: AddFlags) -> Outcome {
    match cur {
        None if f.xx => Outcome::Nop,
        None => Outcome::Added(score),
        Some(_) if f.nx => Outcome::Nop,
        Some(c) => {
            let new = if f.incr { c + score } else { score };
            if new.is_nan() {
                return Outcome::Nan;
            }
            if (f.lt && new >= c) || (f.gt && new <= c) {
                Outcome::Nop
            } else if new != c {
                Outcome::Updated(new)
            } else {
                Outcome::Same(new)
            }
        }
    }
}

fn nan_error() -> CommandError {
    CommandError::Err("resulting score is not a number (NaN)".into())
}

/// ZADD and ZINCRBY (`incr`), as Redis's `zaddGenericCommand`: options, then every score is
/// checked before anything changes.
fn zadd_generic(ctx: &mut Ctx, argv: &[&[u8]], incr: bool) -> Result<(), CommandError> {
    let key = argv[1];
    let mut f = AddFlags {
        incr,
        ..AddFlags::default()
    };
    let mut i = 2;
    while i < argv.len() {
        let o = argv[i];
        let flag = match o.to_ascii_lowercase().as_slice() {
            b"nx" => &mut f.nx,
            b"xx" => &mut f.xx,
            b"ch" => &mut f.ch,
            b"incr" => &mut f.incr,
            b"gt" => &mut f.gt,
            b"lt" => &mut f.lt,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let pairs = &argv[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CommandError::Err(
            "XX and NX options at the same time are not compatible".into(),
        ));
    }
    if ((f.gt || f.lt) && f.nx) || (f.gt && f.lt) {
        return Err(CommandError::Err(
            "GT, LT, and/or NX options at the same time are not compatible".into(),
        ));
    }
    if f.incr && pairs.len() > 2 {
        return Err(CommandError::Err(
            "INCR option supports a single increment-element pair".into(),
        ));
    }
    let scores = pairs
        .chunks(2)
        .map(|p| score_arg(p[0]))
        .collect::<Result<Vec<f64>, _>>()?;
    let members = pairs.chunks(2).map(|p| p[1]);
    // A first pass reads only: if nothing would change, nothing is written (so WATCH and
    // the AOF see nothing), and an INCR that would make NaN fails before any change.
    let (mut changes, mut last) = (0, None);
    {
        let z = ctx.ks.get_zset(key)?;
        for (m, &s) in members.clone().zip(&scores) {
            match outcome(z.and_then(|z| z.score(m)), s, f) {
                Outcome::Nan => return Err(nan_error()),
                Outcome::Nop => {}
                Outcome::Same(x) => last = Some(x),
                Outcome::Added(x) | Outcome::Updated(x) => {
                    changes += 1;
                    last = Some(x);
                }
            }
        }
    }
    let (mut added, mut updated) = (0, 0);
    if changes > 0 {
        let z = ctx.ks.zset_or_new(key, ZSet::default)?;
        for (m, &s) in members.zip(&scores) {
            match outcome(z.score(m), s, f) {
                Outcome::Added(x) => {
                    z.insert(m, x);
                    added += 1;
                    last = Some(x);
                }
                Outcome::Updated(x) => {
                    z.insert(m, x);
                    updated += 1;
                    last = Some(x);
                }
                Outcome::Same(x) => last = Some(x),
                Outcome::Nop | Outcome::Nan => {}
            }
        }
        ctx.dirty(added + updated);
        if added + updated > 0 {
            ctx.notify(ZSET, if f.incr { "zincr" } else { "zadd" }, key);
        }
    }
    if f.incr {
        match last {
            Some(x) => ctx.out.double(x),
            None => ctx.out.null_bulk(),
        }
    } else {
        ctx.out
            .int(if f.ch { added + updated } else { added } as i64);
    }
    Ok(())
}

fn zadd(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zadd_generic(ctx, argv, false)
}

fn zincrby(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zadd_generic(ctx, argv, true)
}

fn zrem(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let present = ctx
        .ks
        .get_zset(argv[1])?
        .is_some_and(|z| argv[2..].iter().any(|m| z.score(m).is_some()));
    if !present {
        ctx.out.int(0);
        return Ok(());
    }
    let z = ctx.ks.existing_zset_mut(argv[1])?.expect("read above");
    let n = argv[2..].iter().filter(|m| z.remove(m).is_some()).count();
    let emptied = z.is_empty();
    if emptied {
        ctx.ks.remove(argv[1]);
    }
    ctx.dirty(n as u64);
    ctx.notify(ZSET, "zrem", argv[1]);
    ctx.notify_del_if(emptied, argv[1]);
    ctx.out.int(n as i64);
    Ok(())
}

fn zcard(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = ctx.ks.get_zset(argv[1])?.map_or(0, ZSet::len);
    ctx.out.int(n as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    match ctx.ks.get_zset(argv[1])?.and_then(|z| z.score(argv[2])) {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null_bulk(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let z = ctx.ks.get_zset(argv[1])?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null_bulk(),
        }
    }
    Ok(())
}

fn zrank_generic(ctx: &mut Ctx, argv: &[&[u8]], rev: bool) -> Result<(), CommandError> {
    let z = ctx.ks.get_zset(argv[1])?;
    match z.and_then(|z| z.rank(argv[2]).map(|r| (r, z.len()))) {
        Some((r, len)) => ctx.out.int(if rev { len - 1 - r } else { r } as i64),
        None => ctx.out.null_bulk(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrank_generic(ctx, argv, false)
}

fn zrevrank(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zrank_generic(ctx, argv, true)
}

// ---------------------------------------------------------------------------------------
// Pops.

/// Pops up to `count` members of the sorted set at `key` (which holds one), lowest first or
/// (`max`) highest first, deleting the key when it empties.
fn pop(ctx: &mut Ctx, key: &[u8], count: usize, max: bool) -> Vec<(Vec<u8>, f64)> {
    let Ok(Some(z)) = ctx.ks.existing_zset_mut(key) else {
        return Vec::new();
    };
    let popped = z.pop(count, max);
    let emptied = z.is_empty();
    if emptied {
        ctx.ks.remove(key);
    }
    ctx.dirty(popped.len() as u64);
    ctx.notify(ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    ctx.notify_del_if(emptied, key);
    popped
}

fn pop_word(max: bool) -> &'static [u8] {
    if max {
        b"ZPOPMAX"
    } else {
        b"ZPOPMIN"
    }
}

fn zpop(ctx: &mut Ctx, argv: &[&[u8]], max: bool) -> Result<(), CommandError> {
    if argv.len() > 3 {
        return Err(CommandError::Syntax);
    }
    let count = match argv.get(2) {
        None => None,
        Some(a) => Some(super::set::positive(a)?),
    };
    if ctx.ks.get_zset(argv[1])?.is_none() || count == Some(0) {
        ctx.out.array(0);
        return Ok(());
    }
    let n = count.map_or(1, |c| c.min(usize::MAX as u64) as usize);
    let popped = pop(ctx, argv[1], n, max);
    if count.is_some() {
        ctx.out.pairs(popped.len());
    } else {
        ctx.out.array(2);
    }
    for (m, s) in &popped {
        if count.is_some() {
            ctx.out.pair();
        }
        ctx.out.bulk(m);
        ctx.out.double(*s);
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zpop(ctx, argv, false)
}

fn zpopmax(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    zpop(ctx, argv, true)
}

/// MIN or MAX: true for MAX.
fn parse_where(arg: &[u8]) -> Result<bool, CommandError> {
    if arg.eq_ignore_ascii_case(b"min") {
        Ok(false)
    } else if arg.eq_ignore_ascii_case(b"max") {
        Ok(true)
    } else {
        Err(CommandError::Syntax)
    }
}

/// Pops from the first of `keys` that holds a sorted set and replies `[key, [[m, s] ...]]`
/// (nested in both protocols), logged as ZPOPMIN/ZPOPMAX key count, as Redis propagates ZMPOP
/// and BZMPOP. False, with nothing replied, when every key is empty.
fn mpop_first(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    max: bool,
    count: usize,
) -> Result<bool, CommandError> {
    for key in keys {
        if ctx.ks.get_zset(key)?.is_none() {
            continue;
        }
        let popped = pop(ctx, key, count, max);
        ctx.out.array(2);
        ctx.out.bulk(key);
        ctx.out.array(popped.len());
        for (m, s) in &popped {
            ctx.out.array(2);
            ctx.out.bulk(m);
            ctx.out.double(*s);
        }
        let n = itoa::Buffer::new().format(popped.len()).to_owned();
        ctx.propagate(&[pop_word(max), key, n.as_bytes()]);
        return Ok(true);
    }
    Ok(false)
}

fn zmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (n, max, count) = mpop_args(argv, parse_where)?;
    if !mpop_first(ctx, &argv[2..2 + n], max, count)? {
        ctx.out.null_array();
    }
    Ok(())
}

/// BZPOPMIN and BZPOPMAX: the first non-empty key's member, as `[key, member, score]`,
/// logged as the ZPOPMIN/ZPOPMAX it is; a waiter is served by running that ZPOPMIN.
fn bzpop(ctx: &mut Ctx, argv: &[&[u8]], max: bool) -> Result<(), CommandError> {
    let deadline = deadline(argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    for key in keys {
        if ctx.ks.get_zset(key)?.is_none() {
            continue;
        }
        let popped = pop(ctx, key, 1, max);
        ctx.out.array(3);
        ctx.out.bulk(key);
        ctx.out.bulk(&popped[0].0);
        ctx.out.double(popped[0].1);
        ctx.propagate(&[pop_word(max), key]);
        return Ok(());
    }
    let name: &'static [u8] = if max { b"zpopmax" } else { b"zpopmin" };
    block(ctx, keys, deadline, move |shared, client, key, out| {
        let mut one = ReplyBuf::new();
        one.set_protocol(out.protocol());
        // ZPOPMIN key replies [member, score]: the key goes in front.
        if run_for(shared, client, &[name, key], &mut one) && one.as_bytes().starts_with(b"*2\r\n")
        {
            out.array(3);
            out.bulk(key);
            out.raw(&one.as_bytes()[4..]);
            return true;
        }
        false
    });
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    bzpop(ctx, argv, false)
}

fn bzpopmax(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    bzpop(ctx, argv, true)
}

fn bzmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // ZMPOP's arguments sit after the timeout, and are checked before it, as in Redis.
    let (n, max, count) = mpop_args(&argv[1..], parse_where)?;
    let deadline = deadline(argv[1])?;
    let keys = &argv[3..3 + n];
    if mpop_first(ctx, keys, max, count)? {
        return Ok(());
    }
    let count = count.to_string().into_bytes();
    block(ctx, keys, deadline, move |shared, client, key, out| {
        let word: &[u8] = if max { b"MAX" } else { b"MIN" };
        let argv: [&[u8]; 6] = [b"zmpop", b"1", key, word, b"COUNT", &count];
        let start = out.len();
        if run_for(shared, client, &argv, out) {
            return true;
        }
        out.buf.truncate(start);
        false
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Union, intersection, difference.

/// An input of ZUNION and the others: a sorted set, or a set whose members score 1.
#[derive(Clone, Copy)]
enum Src<'a> {
    None,
    Z(&'a ZSet),
    S(&'a Set),
}

impl<'a> Src<'a> {
    fn len(&self) -> usize {
        match self {
            Src::None => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }

    fn items(&self) -> Vec<(std::borrow::Cow<'a, [u8]>, f64)> {
        use std::borrow::Cow;
        match *self {
            Src::None => Vec::new(),
            Src::Z(z) => z.iter().map(|(m, s)| (Cow::Borrowed(m), s)).collect(),
            Src::S(s) => s
                .iter()
                .map(|m| match m {
                    crate::store::set::Member::Bytes(b) => (Cow::Borrowed(b), 1.0),
                    crate::store::set::Member::Int(_) => (Cow::Owned(m.to_vec()), 1.0),
                })
                .collect(),
        }
    }

    fn find(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::None => None,
            Src::Z(z) => z.score(m),
            Src::S(s) => s.contains(m).then_some(1.0),
        }
    }

    fn same(&self, other: &Src) -> bool {
        match (self, other) {
            (Src::Z(a), Src::Z(b)) => std::ptr::eq(*a, *b),
            (Src::S(a), Src::S(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, v: f64, a: Aggregate) {
    match a {
        Aggregate::Sum => {
            *target += v;
            // -inf + inf: Redis takes 0 rather than store NaN.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if v < *target {
                *target = v
            }
        }
        Aggregate::Max => {
            if v > *target {
                *target = v
            }
        }
    }
}

/// The weighted score of one input's member: NaN (0 × inf) counts as 0.
fn weighted(w: f64, s: f64) -> f64 {
    let x = w * s;
    if x.is_nan() {
        0.0
    } else {
        x
    }
}

/// ZUNION ZINTER ZDIFF, their STORE forms (`dst`) and ZINTERCARD (`card`), as Redis's
/// `zunionInterDiffGenericCommand`: numkeys at `argv[at]`, then the keys (read, and their
/// types checked, before the options are), then the options.
fn setop(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    at: usize,
    dst: Option<&[u8]>,
    op: Op,
    card: bool,
) -> Result<(), CommandError> {
    let n = args::int(argv[at])?;
    if n < 1 {
        let name = std::str::from_utf8(argv[0])
            .unwrap_or("")
            .to_ascii_lowercase();
        return Err(CommandError::Err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    if n as u64 > (argv.len() - at - 1) as u64 {
        return Err(CommandError::Syntax);
    }
    let n = n as usize;
    let keys = &argv[at + 1..at + 1 + n];
    let mut srcs = Vec::with_capacity(n);
    for k in keys {
        srcs.push(match ctx.ks.get(k) {
            None => Src::None,
            Some(Value::ZSet(z)) => Src::Z(z),
            Some(Value::Set(s)) => Src::S(s),
            Some(_) => return Err(CommandError::WrongType),
        });
    }
    let mut weights = vec![1.0; n];
    let (mut agg, mut withscores, mut limit) = (Aggregate::Sum, false, 0u64);
    let mut j = at + 1 + n;
    while j < argv.len() {
        let a = argv[j];
        let left = argv.len() - j;
        if op != Op::Diff && !card && left > n && a.eq_ignore_ascii_case(b"weights") {
            for (i, w) in weights.iter_mut().enumerate() {
                *w = parse_double(argv[j + 1 + i])
                    .ok_or_else(|| CommandError::Err("weight value is not a float".into()))?;
            }
            j += 1 + n;
        } else if op != Op::Diff && !card && left >= 2 && a.eq_ignore_ascii_case(b"aggregate") {
            let w = argv[j + 1];
            agg = if w.eq_ignore_ascii_case(b"sum") {
                Aggregate::Sum
            } else if w.eq_ignore_ascii_case(b"min") {
                Aggregate::Min
            } else if w.eq_ignore_ascii_case(b"max") {
                Aggregate::Max
            } else {
                return Err(CommandError::Syntax);
            };
            j += 2;
        } else if dst.is_none() && !card && a.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
            j += 1;
        } else if card && left >= 2 && a.eq_ignore_ascii_case(b"limit") {
            limit = args::int(argv[j + 1])
                .ok()
                .filter(|l| *l >= 0)
                .ok_or_else(|| CommandError::Err("LIMIT can't be negative".into()))?
                as u64;
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let mut inputs: Vec<(Src, f64)> = srcs.into_iter().zip(weights).collect();
    if op != Op::Diff {
        // Smallest first: its members are the intersection's candidates.
        inputs.sort_by_key(|(s, _)| s.len());
    }
    // Built large and packed at the end if small, as Redis builds it (see `ZSet::new_large`).
    let mut result = ZSet::new_large();
    let mut count = 0u64;
    match op {
        Op::Inter => {
            let (first, w0) = inputs[0];
            if first.len() > 0 {
                for (m, s) in first.items() {
                    let mut score = weighted(w0, s);
                    let all = inputs[1..].iter().all(|(src, w)| {
                        let v = if src.same(&first) {
                            Some(s)
                        } else {
                            src.find(&m)
                        };
                        v.map(|v| aggregate(&mut score, v * w, agg)).is_some()
                    });
                    if !all {
                        continue;
                    }
                    if card {
                        count += 1;
                        if limit > 0 && count >= limit {
                            break;
                        }
                    } else {
                        result.insert(&m, score);
                    }
                }
            }
        }
        Op::Union => {
            let mut acc: hashbrown::HashMap<Vec<u8>, f64, ahash::RandomState> =
                hashbrown::HashMap::with_capacity_and_hasher(
                    inputs.last().map_or(0, |(s, _)| s.len()),
                    ahash::RandomState::new(),
                );
            for (src, w) in &inputs {
                for (m, s) in src.items() {
                    let score = weighted(*w, s);
                    match acc.get_mut(&*m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.into_owned(), score);
                        }
                    }
                }
            }
            for (m, s) in acc {
                result.insert(&m, s);
            }
        }
        Op::Diff => {
            let first = inputs[0].0;
            for (m, s) in first.items() {
                if !inputs[1..]
                    .iter()
                    .any(|(src, _)| src.same(&first) || src.find(&m).is_some())
                {
                    result.insert(&m, s);
                }
            }
        }
    }
    if card {
        ctx.out.int(count as i64);
        return Ok(());
    }
    match dst {
        Some(dst) => {
            result.pack_if_fits();
            let event = match op {
                Op::Union => "zunionstore",
                Op::Inter => "zinterstore",
                Op::Diff => "zdiffstore",
            };
            store(ctx, dst, result, event)
        }
        None => reply_items(ctx.out, result.iter(), withscores),
    }
    Ok(())
}

fn zunion(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setop(ctx, argv, 1, None, Op::Union, false)
}

fn zinter(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setop(ctx, argv, 1, None, Op::Inter, false)
}

fn zdiff(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setop(ctx, argv, 1, None, Op::Diff, false)
}

fn zunionstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setop(ctx, argv, 2, Some(argv[1]), Op::Union, false)
}

fn zinterstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setop(ctx, argv, 2, Some(argv[1]), Op::Inter, false)
}

fn zdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setop(ctx, argv, 2, Some(argv[1]), Op::Diff, false)
}

fn zintercard(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setop(ctx, argv, 1, None, Op::Inter, true)
}

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER, ZSCAN.

/// The most picks ZRANDMEMBER with a negative count makes (as SRANDMEMBER's cap).
const MAX_RANDOM_PICKS: u64 = 10_000_000;

fn zrandmember(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() == 2 {
        match ctx.ks.get_zset(argv[1])? {
            None => ctx.out.null_bulk(),
            Some(z) => ctx.out.bulk(z.get(random(z.len())).0),
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
    if argv.len() > 4 || (argv.len() == 4 && !argv[3].eq_ignore_ascii_case(b"withscores")) {
        return Err(CommandError::Syntax);
    }
    let withscores = argv.len() == 4;
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(CommandError::Err("value is out of range".into()));
    }
    let Some(z) = ctx.ks.get_zset(argv[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let n = count.unsigned_abs();
    let size = z.len();
    let picks: Vec<usize> = if n == 0 {
        Vec::new()
    } else if count < 0 || n == 1 {
        if n > MAX_RANDOM_PICKS {
            return Err(CommandError::Err("value is out of range".into()));
        }
        (0..n).map(|_| random(size)).collect()
    } else if n >= size as u64 {
        // The whole set, in order.
        (0..size).collect()
    } else {
        distinct_picks(size, n as usize)
    };
    let items: Vec<Item> = picks.into_iter().map(|i| z.get(i)).collect();
    reply_items(ctx.out, items.into_iter(), withscores);
    Ok(())
}

/// A score as Redis's `d2string` writes it into a listpack: integers without a fraction,
/// `-0`, else `%.17g`. ZSCAN of a packed set shows these.
fn d2string(x: f64) -> Vec<u8> {
    if x == 0.0 {
        return if x.is_sign_negative() {
            b"-0".to_vec()
        } else {
            b"0".to_vec()
        };
    }
    let half = (i64::MAX / 2) as f64;
    if x.is_finite() && x.fract() == 0.0 && (-half..=half).contains(&x) {
        return itoa::Buffer::new().format(x as i64).as_bytes().to_vec();
    }
    crate::resp::reply::format_double(x, &mut [0; 40]).to_vec()
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: the cursor is checked first, then the key,
/// then the options, as Redis does. See `ZSet::scan` for the cursor.
fn zscan(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let cursor = parse_cursor(argv[2])?;
    let Some(z) = ctx.ks.get_zset(argv[1])? else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let (count, pattern) = args::scan_options(argv)?;
    let packed = matches!(z, ZSet::Packed(_));
    let (next, items) = z.scan(cursor, count);
    let matched: Vec<Item> = items
        .into_iter()
        .filter(|(m, _)| pattern.is_none_or(|p| glob::matches(p, m, false)))
        .collect();
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(matched.len() * 2);
    for (m, s) in matched {
        out.bulk(m);
        // A listpack holds the `d2string` text; a skiplist's double is printed as Redis's
        // `%.17Lg` of it, the same digits as `%.17g`.
        if packed {
            out.bulk(&d2string(s));
        } else {
            out.bulk(crate::resp::reply::format_double(s, &mut [0; 40]));
        }
    }
    Ok(())
}
