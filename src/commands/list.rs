//! List commands (Redis's t_list.c). The blocking forms are in `list_blocking`: they pop through
//! `pop_reply` and `move_one` when a key has elements, and a served waiter re-runs LPOP, LMOVE
//! or LMPOP.

use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, Keys, KEY1};
use crate::notify::events::class::LIST;
use crate::resp::ReplyBuf;
use crate::store::list::{Elem, End};

const KEY12: Keys = Keys::Range {
    first: 1,
    last: 2,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("lpush", -3, WRITE | DENYOOM | FAST, KEY1, lpush),
    cmd!("rpush", -3, WRITE | DENYOOM | FAST, KEY1, rpush),
    cmd!("lpushx", -3, WRITE | DENYOOM | FAST, KEY1, lpushx),
    cmd!("rpushx", -3, WRITE | DENYOOM | FAST, KEY1, rpushx),
    cmd!("lpop", -2, WRITE | FAST, KEY1, lpop),
    cmd!("rpop", -2, WRITE | FAST, KEY1, rpop),
    cmd!("llen", 2, READONLY | FAST, KEY1, llen),
    cmd!("lrange", 4, READONLY, KEY1, lrange),
    cmd!("lindex", 3, READONLY, KEY1, lindex),
    cmd!("lset", 4, WRITE | DENYOOM, KEY1, lset),
    cmd!("linsert", 5, WRITE | DENYOOM, KEY1, linsert),
    cmd!("lrem", 4, WRITE, KEY1, lrem),
    cmd!("ltrim", 4, WRITE, KEY1, ltrim),
    cmd!("lpos", -3, READONLY, KEY1, lpos),
    cmd!("lmove", 5, WRITE | DENYOOM, KEY12, lmove),
    cmd!("rpoplpush", 3, WRITE | DENYOOM, KEY12, rpoplpush),
    cmd!(
        "lmpop",
        -4,
        WRITE | MOVABLEKEYS,
        Keys::KeyNum {
            count: 1,
            first: 2,
            step: 1,
        },
        lmpop
    ),
];

#[inline]
fn reply_elem(out: &mut ReplyBuf, e: Elem) {
    match e {
        Elem::Bytes(b) => out.bulk(b),
        Elem::Int(i) => out.bulk_int(i),
    }
}

/// `left` / `right`, any case.
pub(super) fn parse_end(arg: &[u8]) -> Result<End, CommandError> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Left)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Right)
    } else {
        Err(CommandError::Syntax)
    }
}

/// A count that must be ≥ 0, as Redis's `getPositiveLongFromObjectOrReply`: `msg` is the
/// error for a bad or negative value.
fn positive(arg: &[u8], msg: &str) -> Result<i64, CommandError> {
    match args::int(arg) {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(CommandError::Err(msg.into())),
    }
}

/// A count that must be ≥ 1 (LMPOP's numkeys and COUNT).
fn at_least_one(arg: &[u8], msg: &str) -> Result<usize, CommandError> {
    match args::int(arg) {
        Ok(n) if n >= 1 => Ok(n as usize),
        _ => Err(CommandError::Err(msg.into())),
    }
}

/// `i` from the list's head, or `None` if past either end (negative counts from the tail).
fn index(i: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if i < 0 { len + i } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// LRANGE's `start`/`stop` clamped to the list: the first index and how many.
fn range(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    start = start.max(0);
    if start > stop || start >= len {
        return (0, 0);
    }
    stop = stop.min(len - 1);
    (start as usize, (stop - start + 1) as usize)
}

fn push(ctx: &mut Ctx, argv: &[&[u8]], end: End, only_existing: bool) -> Result<(), CommandError> {
    let key = argv[1];
    let list = if only_existing {
        match ctx.ks.list_mut(key)? {
            Some(l) => l,
            None => {
                ctx.out.int(0);
                return Ok(());
            }
        }
    } else {
        ctx.ks.list_or_new(key)?
    };
    for v in &argv[2..] {
        list.push(end, v);
    }
    let len = list.len();
    ctx.dirty(argv.len() as u64 - 2);
    ctx.notify(LIST, push_event(end), key);
    ctx.out.int(len as i64);
    Ok(())
}

/// The events of a push to, and a pop from, `end`.
fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

fn lpush(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    push(ctx, argv, End::Left, false)
}

fn rpush(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    push(ctx, argv, End::Right, false)
}

fn lpushx(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    push(ctx, argv, End::Left, true)
}

fn rpushx(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    push(ctx, argv, End::Right, true)
}

/// Pops from `end` of the list at `key`, which holds a non-empty list, and replies: one bulk
/// with `count` None, else an array of up to `count` elements (from `end` inwards). Removes
/// the key once empty. Returns how many were popped. LPOP, RPOP and LMPOP pop through here, and
/// so will a blocked BLPOP/BLMPOP client when it is served.
pub fn pop_reply(ctx: &mut Ctx, key: &[u8], end: End, count: Option<usize>) -> usize {
    let Ok(Some(list)) = ctx.ks.list_mut(key) else {
        unreachable!("the caller checked the key holds a list");
    };
    let n = match count {
        None => {
            list.pop_with(end, |e| reply_elem(ctx.out, e));
            1
        }
        Some(c) => {
            let n = c.min(list.len());
            ctx.out.array(n);
            for _ in 0..n {
                list.pop_with(end, |e| reply_elem(ctx.out, e));
            }
            n
        }
    };
    let emptied = list.is_empty();
    if emptied {
        ctx.ks.remove(key);
    }
    ctx.dirty(n as u64);
    ctx.notify(LIST, pop_event(end), key);
    ctx.notify_del_if(emptied, key);
    n
}

fn pop(ctx: &mut Ctx, argv: &[&[u8]], end: End) -> Result<(), CommandError> {
    if argv.len() > 3 {
        return Err(CommandError::WrongArity(if end == End::Left {
            "lpop"
        } else {
            "rpop"
        }));
    }
    let count = match argv.get(2) {
        Some(a) => Some(positive(a, "value is out of range, must be positive")? as usize),
        None => None,
    };
    // COUNT 0 is a read: it touches no WATCH, as in Redis.
    let exists = if count == Some(0) {
        ctx.ks.get_list(argv[1])?.is_some()
    } else {
        ctx.ks.list_mut(argv[1])?.is_some()
    };
    match (exists, count) {
        (false, Some(_)) => ctx.out.null_array(),
        (false, None) => ctx.out.null_bulk(),
        (true, Some(0)) => ctx.out.array(0),
        (true, _) => {
            pop_reply(ctx, argv[1], end, count);
        }
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    pop(ctx, argv, End::Left)
}

fn rpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    pop(ctx, argv, End::Right)
}

fn llen(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = ctx.ks.get_list(argv[1])?.map_or(0, |l| l.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (start, stop) = (args::int(argv[2])?, args::int(argv[3])?);
    let Some(list) = ctx.ks.get_list(argv[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let (first, n) = range(start, stop, list.len());
    ctx.out.array(n);
    list.for_range(first, n, |e| reply_elem(ctx.out, e));
    Ok(())
}

fn lindex(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(list) = ctx.ks.get_list(argv[1])? else {
        ctx.out.null_bulk();
        return Ok(());
    };
    let i = args::int(argv[2])?;
    match index(i, list.len()).and_then(|i| list.get(i)) {
        Some(e) => reply_elem(ctx.out, e),
        None => ctx.out.null_bulk(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(list) = ctx.ks.get_list(argv[1])? else {
        return Err(CommandError::NoSuchKey);
    };
    let i = args::int(argv[2])?;
    let Some(i) = index(i, list.len()) else {
        return Err(CommandError::Err("index out of range".into()));
    };
    if let Some(list) = ctx.ks.list_mut(argv[1])? {
        list.set(i, argv[3]);
    }
    ctx.dirty(1);
    ctx.notify(LIST, "lset", argv[1]);
    ctx.out.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let after = if argv[2].eq_ignore_ascii_case(b"after") {
        true
    } else if argv[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return Err(CommandError::Syntax);
    };
    let Some(list) = ctx.ks.get_list(argv[1])? else {
        ctx.out.int(0);
        return Ok(());
    };
    let pivot = Elem::of(argv[3]);
    let Some(at) = list.iter().position(|e| e == pivot) else {
        ctx.out.int(-1);
        return Ok(());
    };
    let Some(list) = ctx.ks.list_mut(argv[1])? else {
        unreachable!("read above under the same locks");
    };
    list.insert(at + after as usize, argv[4]);
    let len = list.len();
    ctx.dirty(1);
    ctx.notify(LIST, "linsert", argv[1]);
    ctx.out.int(len as i64);
    Ok(())
}

fn lrem(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let count = args::int(argv[2])?;
    let Some(list) = ctx.ks.get_list(argv[1])? else {
        ctx.out.int(0);
        return Ok(());
    };
    let needle = Elem::of(argv[3]);
    // Nothing to remove changes nothing (and touches no WATCH).
    if !list.iter().any(|e| e == needle) {
        ctx.out.int(0);
        return Ok(());
    }
    let len = list.len();
    // The matches to remove are those on the near side of a cutoff index: found by walking
    // from the end the count starts at.
    let want = count.unsigned_abs() as usize;
    let matches = |(_, e): &(usize, Elem)| *e == needle;
    let cutoff = if count > 0 {
        list.iter()
            .enumerate()
            .filter(matches)
            .nth(want - 1)
            .map(|(i, _)| i)
    } else if count < 0 {
        list.iter_rev()
            .enumerate()
            .filter(matches)
            .nth(want - 1)
            .map(|(i, _)| len - 1 - i)
    } else {
        None
    };
    let Some(list) = ctx.ks.list_mut(argv[1])? else {
        unreachable!("read above under the same locks");
    };
    let removed = list.retain(|i, e| {
        let in_reach = match cutoff {
            None => true,
            Some(c) if count > 0 => i <= c,
            Some(c) => i >= c,
        };
        !(in_reach && e == needle)
    });
    let emptied = list.is_empty();
    if emptied {
        ctx.ks.remove(argv[1]);
    }
    ctx.dirty(removed as u64);
    if removed > 0 {
        ctx.notify(LIST, "lrem", argv[1]);
        ctx.notify_del_if(emptied, argv[1]);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (start, stop) = (args::int(argv[2])?, args::int(argv[3])?);
    let Some(list) = ctx.ks.list_mut(argv[1])? else {
        ctx.out.ok();
        return Ok(());
    };
    let len = list.len();
    let (first, n) = range(start, stop, len);
    let (left, right) = if n == 0 {
        (len, 0)
    } else {
        (first, len - first - n)
    };
    list.remove_end(End::Left, left);
    list.remove_end(End::Right, right);
    let emptied = list.is_empty();
    if emptied {
        ctx.ks.remove(argv[1]);
    }
    ctx.dirty((left + right) as u64);
    ctx.notify(LIST, "ltrim", argv[1]);
    ctx.notify_del_if(emptied, argv[1]);
    ctx.out.ok();
    Ok(())
}

fn lpos(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut a = args::Args::new(argv);
    a.next_bytes()?;
    a.next_bytes()?;
    while let Some(opt) = a.peek() {
        a.next_bytes()?;
        let more = !a.is_empty();
        if opt.eq_ignore_ascii_case(b"rank") && more {
            rank = a.next_i64()?;
            if rank == 0 {
                return Err(CommandError::Err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list"
                        .into(),
                ));
            }
        } else if opt.eq_ignore_ascii_case(b"count") && more {
            count = Some(positive(a.next_bytes()?, "COUNT can't be negative")? as usize);
        } else if opt.eq_ignore_ascii_case(b"maxlen") && more {
            maxlen = positive(a.next_bytes()?, "MAXLEN can't be negative")? as usize;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let Some(list) = ctx.ks.get_list(argv[1])? else {
        match count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null_bulk(),
        }
        return Ok(());
    };
    let needle = Elem::of(argv[2]);
    let len = list.len();
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    // Redis negates RANK in a C long: i64::MIN stays negative, so every match counts (it
    // searches from the tail, from the first match).
    let skip = if rank == i64::MIN {
        0
    } else {
        rank.unsigned_abs() as usize - 1
    };
    // COUNT 0 means every match.
    let take = match count {
        Some(0) => usize::MAX,
        Some(c) => c,
        None => 1,
    };
    let found: Vec<usize> = if rank > 0 {
        list.iter()
            .take(scan)
            .enumerate()
            .filter(|(_, e)| *e == needle)
            .map(|(i, _)| i)
            .skip(skip)
            .take(take)
            .collect()
    } else {
        list.iter_rev()
            .take(scan)
            .enumerate()
            .filter(|(_, e)| *e == needle)
            .map(|(i, _)| len - 1 - i)
            .skip(skip)
            .take(take)
            .collect()
    };
    match count {
        Some(_) => {
            ctx.out.array(found.len());
            for i in found {
                ctx.out.int(i as i64);
            }
        }
        None => match found.first() {
            Some(&i) => ctx.out.int(i as i64),
            None => ctx.out.null_bulk(),
        },
    }
    Ok(())
}

/// Moves one element from `from` of `src`'s list to `to` of `dst`'s (created if absent) and
/// replies with it; null if `src` is absent. WRONGTYPE if either holds something else. LMOVE
/// and RPOPLPUSH move through here, and so will a served BLMOVE/BRPOPLPUSH.
pub fn move_one(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<(), CommandError> {
    if ctx.ks.get_list(src)?.is_none() {
        ctx.out.null_bulk();
        return Ok(());
    }
    ctx.ks.get_list(dst)?;
    let Some(list) = ctx.ks.list_mut(src)? else {
        unreachable!("read above under the same locks");
    };
    let v = list
        .pop(from)
        .expect("lists in the keyspace are never empty");
    ctx.ks.list_or_new(dst)?.push(to, &v);
    ctx.notify(LIST, push_event(to), dst);
    ctx.notify(LIST, pop_event(from), src);
    let emptied = ctx.ks.get_list(src)?.is_some_and(|l| l.is_empty());
    if emptied {
        ctx.ks.remove(src);
    }
    ctx.dirty(1);
    ctx.notify_del_if(emptied, src);
    ctx.out.bulk(&v);
    Ok(())
}

fn lmove(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (from, to) = (parse_end(argv[3])?, parse_end(argv[4])?);
    move_one(ctx, argv[1], argv[2], from, to)
}

fn rpoplpush(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    move_one(ctx, argv[1], argv[2], End::Right, End::Left)
}

/// LMPOP's keys, checked as the handler checks them first (numkeys, then that the keys fit).
fn lmpop_keys(argv: &[&[u8]]) -> Result<usize, CommandError> {
    let n = at_least_one(argv[1], "numkeys should be greater than 0")?;
    if n >= argv.len() - 2 {
        return Err(CommandError::Syntax);
    }
    Ok(n)
}

/// LMPOP's arguments after its name (`argv[0]` is not read: BLMPOP's timeout sits there):
/// numkeys, the end, the count (1 without COUNT), checked in Redis's order.
pub(super) fn lmpop_args(argv: &[&[u8]]) -> Result<(usize, End, usize), CommandError> {
    mpop_args(argv, parse_end)
}

/// LMPOP's and ZMPOP's arguments: numkeys, the word after the keys (`which` reads it: LEFT
/// or RIGHT, MIN or MAX), the count.
pub(super) fn mpop_args<W>(
    argv: &[&[u8]],
    which: impl FnOnce(&[u8]) -> Result<W, CommandError>,
) -> Result<(usize, W, usize), CommandError> {
    let n = lmpop_keys(argv)?;
    let end = which(argv[2 + n])?;
    let mut count = None;
    let mut i = 3 + n;
    while i < argv.len() {
        if count.is_none() && argv[i].eq_ignore_ascii_case(b"count") && i + 1 < argv.len() {
            count = Some(at_least_one(argv[i + 1], "count should be greater than 0")?);
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok((n, end, count.unwrap_or(1)))
}

/// Pops from the first of `keys` that holds a list and replies `[key, popped]` (one element
/// with `count` None, else an array), logged as the LPOP/RPOP it was, as Redis propagates
/// LMPOP, BLPOP and BLMPOP. False, with nothing replied, when every key is empty.
pub(super) fn pop_first(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    end: End,
    count: Option<usize>,
) -> Result<bool, CommandError> {
    for key in keys {
        if ctx.ks.get_list(key)?.is_none() {
            continue;
        }
        ctx.out.array(2);
        ctx.out.bulk(key);
        let popped = pop_reply(ctx, key, end, count);
        let name: &[u8] = if end == End::Left { b"LPOP" } else { b"RPOP" };
        match count {
            None => ctx.propagate(&[name, key]),
            Some(_) => ctx.propagate(&[name, key, itoa::Buffer::new().format(popped).as_bytes()]),
        }
        return Ok(true);
    }
    Ok(false)
}

fn lmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (n, end, count) = lmpop_args(argv)?;
    if !pop_first(ctx, &argv[2..2 + n], end, Some(count))? {
        ctx.out.null_array();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clamp_as_redis_does() {
        assert_eq!(range(0, -1, 5), (0, 5));
        assert_eq!(range(-100, 100, 5), (0, 5));
        assert_eq!(range(3, 1, 5), (0, 0));
        assert_eq!(range(5, 10, 5), (0, 0));
        assert_eq!(range(-2, -1, 5), (3, 2));
        assert_eq!(range(0, -6, 5), (0, 0));
        assert_eq!(index(-1, 3), Some(2));
        assert_eq!(index(-4, 3), None);
        assert_eq!(index(3, 3), None);
    }
}
