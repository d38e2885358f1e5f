//! String commands (Redis's t_string.c).

use super::flags::*;
use super::spec::KeyFlags;
use super::{args, CommandError, CommandSpec, Ctx, Keys, ALL_KEYS, KEY1};
use crate::notify::events::class::{GENERIC, STRING};
use crate::resp::parse::parse_i64;
use crate::resp::Limits;
use crate::store::Value;
use crate::util::ldouble;

const EVERY_OTHER: Keys = Keys::Range {
    first: 1,
    last: -1,
    step: 2,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("get", 2, READONLY | FAST, KEY1, get),
    cmd!("set", -3, WRITE | DENYOOM, KEY1, set),
    cmd!("setnx", 3, WRITE | DENYOOM | FAST, KEY1, setnx),
    cmd!("setex", 4, WRITE | DENYOOM, KEY1, setex),
    cmd!("psetex", 4, WRITE | DENYOOM, KEY1, psetex),
    cmd!("getset", 3, WRITE | DENYOOM | FAST, KEY1, getset),
    cmd!("getdel", 2, WRITE | FAST, KEY1, getdel),
    cmd!("getex", -2, WRITE | FAST, KEY1, getex),
    cmd!("mget", -2, READONLY | FAST, ALL_KEYS, mget),
    cmd!("mset", -3, WRITE | DENYOOM, EVERY_OTHER, mset),
    cmd!("msetnx", -3, WRITE | DENYOOM, EVERY_OTHER, msetnx),
    cmd!("incr", 2, WRITE | DENYOOM | FAST, KEY1, incr),
    cmd!("decr", 2, WRITE | DENYOOM | FAST, KEY1, decr),
    cmd!("incrby", 3, WRITE | DENYOOM | FAST, KEY1, incrby),
    cmd!("decrby", 3, WRITE | DENYOOM | FAST, KEY1, decrby),
    cmd!("incrbyfloat", 3, WRITE | DENYOOM | FAST, KEY1, incrbyfloat),
    cmd!("append", 3, WRITE | DENYOOM | FAST, KEY1, append),
    cmd!("strlen", 2, READONLY | FAST, KEY1, strlen),
    cmd!("getrange", 4, READONLY, KEY1, getrange),
    cmd!("substr", 4, READONLY, KEY1, getrange),
    cmd!("setrange", 4, WRITE | DENYOOM, KEY1, setrange),
    cmd!(
        "lcs",
        -3,
        READONLY,
        Keys::Range {
            first: 1,
            last: 2,
            step: 1
        },
        lcs
    ),
];

/// How an expire argument counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl Unit {
    fn seconds(self) -> bool {
        matches!(self, Unit::Ex | Unit::ExAt)
    }

    fn relative(self) -> bool {
        matches!(self, Unit::Ex | Unit::Px)
    }
}

/// SET's and GETEX's options (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Default)]
struct Opts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(&'a [u8], Unit)>,
}

/// Parses options from `argv[from..]`; `set` tells SET's options from GETEX's. A repeated
/// option is accepted (the last expire wins), conflicting ones are a syntax error, as in Redis.
fn parse_opts<'a>(argv: &[&'a [u8]], from: usize, set: bool) -> Result<Opts<'a>, CommandError> {
    let mut o = Opts::default();
    let mut j = from;
    while j < argv.len() {
        let opt = argv[j];
        let next = argv.get(j + 1).copied();
        let is = |w: &str| opt.eq_ignore_ascii_case(w.as_bytes());
        let unit = if is("ex") {
            Some(Unit::Ex)
        } else if is("px") {
            Some(Unit::Px)
        } else if is("exat") {
            Some(Unit::ExAt)
        } else if is("pxat") {
            Some(Unit::PxAt)
        } else {
            None
        };
        if is("nx") && !o.xx && set {
            o.nx = true;
        } else if is("xx") && !o.nx && set {
            o.xx = true;
        } else if is("get") && set {
            o.get = true;
        } else if is("keepttl") && !o.persist && o.expire.is_none() && set {
            o.keepttl = true;
        } else if is("persist") && !set && o.expire.is_none() && !o.keepttl {
            o.persist = true;
        } else if let (Some(unit), Some(next)) = (unit, next) {
            if o.keepttl || o.persist || o.expire.is_some_and(|(_, u)| u != unit) {
                return Err(CommandError::Syntax);
            }
            o.expire = Some((next, unit));
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// The absolute deadline (Unix ms) an expire argument names, with Redis's checks.
fn deadline(cmd: &'static str, arg: &[u8], unit: Unit, now: u64) -> Result<u64, CommandError> {
    let n = args::int(arg)?;
    let invalid = CommandError::InvalidExpire(cmd);
    if n <= 0 || (unit.seconds() && n > i64::MAX / 1000) {
        return Err(invalid);
    }
    let ms = if unit.seconds() { n * 1000 } else { n };
    let when = if unit.relative() {
        ms.checked_add(now as i64).ok_or(invalid)?
    } else {
        ms
    };
    Ok(when as u64)
}

/// The replies of a SET-like command: (done, not done because of NX/XX).
enum SetReply {
    OkNull,
    OneZero,
}

/// Redis's `setGenericCommand`.
fn set_generic(
    ctx: &mut Ctx,
    cmd: &'static str,
    argv: &[&[u8]],
    key: &[u8],
    val: &[u8],
    o: &Opts,
    reply: SetReply,
) -> Result<(), CommandError> {
    let when = match o.expire {
        Some((arg, unit)) => Some(deadline(cmd, arg, unit, ctx.ks.now())?),
        None => None,
    };
    if o.get {
        let old = ctx.ks.get_str(key)?;
        ctx.out.bulk_opt(old);
    }
    // Looked up only when NX or XX asks: a plain SET need not know.
    let blocked = (o.nx || o.xx) && (ctx.ks.get(key).is_some() == o.nx);
    if blocked {
        if !o.get {
            match reply {
                SetReply::OkNull => ctx.out.null_bulk(),
                SetReply::OneZero => ctx.out.int(0),
            }
        }
        return Ok(());
    }
    if o.keepttl {
        ctx.ks.set_keep_ttl(key, Value::str(val));
    } else {
        ctx.ks.set(key, Value::str(val));
    }
    ctx.dirty(1);
    ctx.notify(STRING, "set", key);
    if let Some(when) = when {
        ctx.ks.set_deadline(key, Some(when));
        ctx.notify(GENERIC, "expire", key);
        // Relative expiry is logged as absolute, so that a replay never extends a key's life.
        let when = when.to_string();
        ctx.propagate(&[b"SET", key, val, b"PXAT", when.as_bytes()]);
    } else if o.get {
        // GET changes nothing: logged without it.
        let mut logged: Vec<&[u8]> = argv[..3].to_vec();
        logged.extend(argv[3..].iter().filter(|a| !a.eq_ignore_ascii_case(b"get")));
        ctx.propagate(&logged);
    }
    if !o.get {
        match reply {
            SetReply::OkNull => ctx.out.ok(),
            SetReply::OneZero => ctx.out.int(1),
        }
    }
    Ok(())
}

fn get(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let v = ctx.ks.get_str(argv[1])?;
    ctx.out.bulk_opt(v);
    Ok(())
}

fn set(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let o = parse_opts(argv, 3, true)?;
    set_generic(ctx, "set", argv, argv[1], argv[2], &o, SetReply::OkNull)
}

fn setnx(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let o = Opts {
        nx: true,
        ..Opts::default()
    };
    set_generic(ctx, "setnx", argv, argv[1], argv[2], &o, SetReply::OneZero)
}

fn setex_generic(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    cmd: &'static str,
    unit: Unit,
) -> Result<(), CommandError> {
    let o = Opts {
        expire: Some((argv[2], unit)),
        ..Opts::default()
    };
    set_generic(ctx, cmd, argv, argv[1], argv[3], &o, SetReply::OkNull)
}

fn setex(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setex_generic(ctx, argv, "setex", Unit::Ex)
}

fn psetex(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    setex_generic(ctx, argv, "psetex", Unit::Px)
}

fn getset(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let old = ctx.ks.get_str(argv[1])?;
    ctx.out.bulk_opt(old);
    ctx.ks.set(argv[1], Value::str(argv[2]));
    ctx.dirty(1);
    // As Redis 7.0: the AOF and the replicas get a SET (a replica's commandstats count it).
    ctx.propagate(&[b"SET", argv[1], argv[2]]);
    ctx.notify(STRING, "set", argv[1]);
    Ok(())
}

fn getdel(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let old = ctx.ks.get_str(argv[1])?;
    ctx.out.bulk_opt(old);
    if old.is_some() {
        ctx.ks.remove(argv[1]);
        ctx.dirty(1);
        ctx.propagate(&[b"DEL", argv[1]]);
        ctx.notify(GENERIC, "del", argv[1]);
    }
    Ok(())
}

fn getex(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let o = parse_opts(argv, 2, false)?;
    // Redis looks the key up before it checks the expire time.
    if ctx.ks.get_str(key)?.is_none() {
        ctx.out.null_bulk();
        return Ok(());
    }
    let when = match o.expire {
        Some((arg, unit)) => Some(deadline("getex", arg, unit, ctx.ks.now())?),
        None => None,
    };
    ctx.out.bulk_opt(ctx.ks.get_str(key)?);
    if let Some(when) = when {
        if already_expired(ctx, when as i64) {
            ctx.ks.remove(key);
            ctx.propagate(&[b"DEL", key]);
            ctx.notify(GENERIC, "del", key);
        } else {
            ctx.ks.set_deadline(key, Some(when));
            let when = when.to_string();
            ctx.propagate(&[b"PEXPIREAT", key, when.as_bytes()]);
            ctx.notify(GENERIC, "expire", key);
        }
        ctx.dirty(1);
    } else if o.persist && ctx.ks.deadline(key).is_some() {
        ctx.ks.set_deadline(key, None);
        ctx.propagate(&[b"PERSIST", key]);
        ctx.dirty(1);
        ctx.notify(GENERIC, "persist", key);
    }
    Ok(())
}

/// Redis's `checkAlreadyExpired`: a deadline already reached deletes the key at once, except
/// while the AOF loads (a replay must leave the key for the DEL that follows it).
pub fn already_expired(ctx: &Ctx, when: i64) -> bool {
    !ctx.shared.is_loading() && when <= ctx.ks.now() as i64
}

fn mget(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.array(argv.len() - 1);
    for k in &argv[1..] {
        match ctx.ks.get(k) {
            Some(Value::Str(s)) => ctx.out.bulk(s),
            _ => ctx.out.null_bulk(),
        }
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity("mset"));
    }
    for kv in argv[1..].chunks(2) {
        ctx.ks.set(kv[0], Value::str(kv[1]));
        ctx.notify(STRING, "set", kv[0]);
    }
    ctx.dirty((argv.len() as u64 - 1) / 2);
    ctx.out.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity("msetnx"));
    }
    if argv[1..].iter().step_by(2).any(|k| ctx.ks.get(k).is_some()) {
        ctx.out.int(0);
        return Ok(());
    }
    for kv in argv[1..].chunks(2) {
        ctx.ks.set(kv[0], Value::str(kv[1]));
        ctx.notify(STRING, "set", kv[0]);
    }
    ctx.dirty((argv.len() as u64 - 1) / 2);
    ctx.out.int(1);
    Ok(())
}

fn incr_decr(ctx: &mut Ctx, key: &[u8], by: i64) -> Result<(), CommandError> {
    let mut new = 0;
    ctx.ks.update_str(key, |cur| {
        // Matches rather than ok_or: an error value built eagerly is also dropped, and the
        // drop is a call, on every INCR.
        let cur = match cur.map(parse_i64) {
            None => 0,
            Some(Some(n)) => n,
            Some(None) => return Err(CommandError::NotInteger),
        };
        let Some(sum) = cur.checked_add(by) else {
            return Err(CommandError::Overflow);
        };
        new = sum;
        Ok(itoa::Buffer::new().format(new).as_bytes().into())
    })?;
    ctx.dirty(1);
    ctx.notify(STRING, "incrby", key);
    ctx.out.int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    incr_decr(ctx, argv[1], 1)
}

fn decr(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    incr_decr(ctx, argv[1], -1)
}

fn incrby(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let by = args::int(argv[2])?;
    incr_decr(ctx, argv[1], by)
}

fn decrby(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let by = args::int(argv[2])?;
    if by == i64::MIN {
        return Err(CommandError::Err("decrement would overflow".into()));
    }
    incr_decr(ctx, argv[1], -by)
}

fn incrbyfloat(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let new = ldouble::incr_by_float(ctx.ks.get_str(key)?, argv[2])?;
    // Logged as the value it produced, so that a replay cannot round differently.
    ctx.propagate(&[b"SET", key, &new, b"KEEPTTL"]);
    ctx.ks.set_keep_ttl(key, Value::str(&new));
    ctx.dirty(1);
    ctx.notify(STRING, "incrbyfloat", key);
    ctx.out.bulk(&new);
    Ok(())
}

/// Redis's `checkStringLength`: a string may not grow past `proto-max-bulk-len`.
fn check_length(size: usize, append: usize) -> Result<(), CommandError> {
    if size.saturating_add(append) > Limits::default().max_bulk_len {
        return Err(CommandError::Err(
            "string exceeds maximum allowed size (proto-max-bulk-len)".into(),
        ));
    }
    Ok(())
}

fn append(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (key, add) = (argv[1], argv[2]);
    let len = match ctx.ks.get_str(key)? {
        None => {
            ctx.ks.set(key, Value::str(add));
            add.len()
        }
        Some(cur) => {
            check_length(cur.len(), add.len())?;
            match ctx.ks.get_mut(key) {
                Some(Value::Str(s)) => {
                    s.extend_from_slice(add);
                    s.set_raw();
                    s.len()
                }
                _ => unreachable!("checked to be a string above"),
            }
        }
    };
    ctx.dirty(1);
    ctx.notify(STRING, "append", key);
    ctx.out.int(len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = ctx.ks.get_str(argv[1])?.map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// Redis's range rule (GETRANGE, BITCOUNT, BITPOS): negative indexes count from the end,
/// both are clamped into `[0, total)`; None when nothing is left.
pub fn clamp_range(mut start: i64, mut end: i64, total: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0).min(total - 1);
    (start <= end).then_some((start, end))
}

fn getrange(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let start = args::int(argv[2])?;
    let end = args::int(argv[3])?;
    let s = ctx.ks.get_str(argv[1])?.unwrap_or(b"");
    let range = if start < 0 && end < 0 && start > end {
        None
    } else {
        clamp_range(start, end, s.len() as i64)
    };
    match range {
        Some((start, end)) => ctx.out.bulk(&s[start as usize..=end as usize]),
        None => ctx.out.bulk(b""),
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (key, value) = (argv[1], argv[3]);
    let offset = args::int(argv[2])?;
    if offset < 0 {
        return Err(CommandError::Err("offset is out of range".into()));
    }
    let offset = offset as usize;
    match ctx.ks.get_str(key)? {
        None => {
            if value.is_empty() {
                ctx.out.int(0);
                return Ok(());
            }
            check_length(offset, value.len())?;
            ctx.ks.set(key, Value::str(b""));
        }
        Some(cur) => {
            if value.is_empty() {
                ctx.out.int(cur.len() as i64);
                return Ok(());
            }
            check_length(offset, value.len())?;
        }
    }
    let len = match ctx.ks.get_mut(key) {
        Some(Value::Str(s)) => {
            let end = offset + value.len();
            if s.len() < end {
                s.resize(end, 0);
            }
            s[offset..end].copy_from_slice(value);
            s.set_raw();
            s.len()
        }
        _ => unreachable!("a string by now"),
    };
    ctx.dirty(1);
    ctx.notify(STRING, "setrange", key);
    ctx.out.int(len as i64);
    Ok(())
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: Redis's dynamic programming
/// over the two strings, and its walk back through the table for the matched ranges.
fn lcs(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (a, b) = match (ctx.ks.get_str(argv[1]), ctx.ks.get_str(argv[2])) {
        (Ok(a), Ok(b)) => (a.unwrap_or(b""), b.unwrap_or(b"")),
        _ => {
            return Err(CommandError::Err(
                "The specified keys must contain string values".into(),
            ))
        }
    };
    let (mut get_len, mut get_idx, mut with_len, mut min_len) = (false, false, false, 0i64);
    let mut j = 3;
    while j < argv.len() {
        let opt = argv[j];
        if opt.eq_ignore_ascii_case(b"idx") {
            get_idx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            get_len = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            with_len = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && j + 1 < argv.len() {
            min_len = args::int(argv[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    if get_idx && get_len {
        return Err(CommandError::Err(
            "If you want both the length and indexes, please just use IDX.".into(),
        ));
    }
    let (alen, blen) = (a.len(), b.len());
    // The table is (alen+1)*(blen+1) u32s; past proto-max-bulk-len Redis 7.2 refuses it, and a
    // worker must not try to allocate gigabytes for one request.
    let cells = (alen + 1).checked_mul(blen + 1);
    if cells.is_none_or(|c| c.saturating_mul(4) > Limits::default().max_bulk_len) {
        return Err(CommandError::Err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len".into(),
        ));
    }
    let w = blen + 1;
    let mut dp = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[alen * w + blen];
    if get_len {
        ctx.out.int(total as i64);
        return Ok(());
    }
    let mut result = vec![0u8; total as usize];
    let mut ranges: Vec<[usize; 4]> = Vec::new();
    // (a start, a end, b start, b end) of the range being walked; None between ranges.
    let mut range: Option<[usize; 4]> = None;
    let (mut i, mut j, mut idx) = (alen, blen, total as usize);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            match &mut range {
                None => range = Some([i - 1, i - 1, j - 1, j - 1]),
                Some(r) if r[0] == i && r[2] == j => {
                    r[0] -= 1;
                    r[2] -= 1;
                }
                Some(_) => emit = true,
            }
            if range.is_some_and(|r| r[0] == 0 || r[2] == 0) {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = range.is_some();
        }
        if emit {
            if let Some(r) = range.take() {
                if (r[1] - r[0] + 1) as i64 >= min_len {
                    ranges.push(r);
                }
            }
        }
    }
    if !get_idx {
        ctx.out.bulk(&result);
        return Ok(());
    }
    ctx.out.map(2);
    ctx.out.bulk(b"matches");
    ctx.out.array(ranges.len());
    for r in ranges {
        ctx.out.array(2 + with_len as usize);
        ctx.out.array(2);
        ctx.out.int(r[0] as i64);
        ctx.out.int(r[1] as i64);
        ctx.out.array(2);
        ctx.out.int(r[2] as i64);
        ctx.out.int(r[3] as i64);
        if with_len {
            ctx.out.int((r[1] - r[0] + 1) as i64);
        }
    }
    ctx.out.bulk(b"len");
    ctx.out.int(total as i64);
    Ok(())
}

/// SET's key flags (Redis's setGetKeys): with GET it reads the old value, else it only
/// overwrites.
pub fn set_key_flags(argv: &[&[u8]]) -> &'static KeyFlags {
    if argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) {
        &KeyFlags {
            words: &["RW", "access", "update"],
            read: true,
            write: true,
        }
    } else {
        &KeyFlags {
            words: &["OW", "update"],
            read: false,
            write: true,
        }
    }
}
