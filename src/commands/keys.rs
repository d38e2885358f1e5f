//! Keyspace and database commands (Redis's db.c): DEL, EXISTS, TYPE, KEYS, SCAN, RANDOMKEY,
//! RENAME, COPY, MOVE, SWAPDB, FLUSHDB, ...

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use smallvec::smallvec;

use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, KeyDbs, Keys, ALL_KEYS, KEY1};
use crate::notify::events::class::GENERIC;
use crate::shared::Shared;
use crate::store::{lazyfree, ShardId, Value, SHARDS};
use crate::util::glob;

const KEY12: Keys = Keys::Range {
    first: 1,
    last: 2,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("del", -2, WRITE, ALL_KEYS, del),
    cmd!("unlink", -2, WRITE | FAST, ALL_KEYS, del),
    cmd!("exists", -2, READONLY | FAST, ALL_KEYS, exists),
    cmd!("touch", -2, READONLY | FAST, ALL_KEYS, touch),
    cmd!("type", 2, READONLY | FAST, KEY1, type_),
    cmd!("keys", 2, READONLY, Keys::Db, keys),
    cmd!("scan", -2, READONLY, Keys::Db, scan),
    cmd!("randomkey", 1, READONLY, Keys::Db, randomkey),
    cmd!("dbsize", 1, READONLY | FAST, Keys::Db, dbsize),
    cmd!("rename", 3, WRITE, KEY12, rename),
    cmd!("renamenx", 3, WRITE | FAST, KEY12, renamenx),
    cmd!(
        "copy",
        -3,
        WRITE | DENYOOM,
        Keys::Custom {
            range: (1, 2, 1),
            dbs: copy_dbs,
        },
        copy
    ),
    cmd!(
        "move",
        3,
        WRITE | FAST,
        Keys::Custom {
            range: (1, 1, 1),
            dbs: move_dbs,
        },
        move_
    ),
    cmd!("swapdb", 3, WRITE | FAST, Keys::All, swapdb),
    cmd!("flushdb", -1, WRITE, Keys::Db, flushdb),
    cmd!("flushall", -1, WRITE, Keys::All, flushall),
];

/// DEL and UNLINK. UNLINK (and DEL under `lazyfree-lazy-user-del`) frees big values in the
/// background (see `store::lazyfree`).
fn del(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let lazy =
        argv[0].eq_ignore_ascii_case(b"unlink") || ctx.shared.config.read().lazyfree_lazy_user_del;
    let mut n = 0;
    for k in &argv[1..] {
        if let Some(v) = ctx.ks.remove(k) {
            n += 1;
            ctx.notify(GENERIC, "del", k);
            if lazy {
                lazyfree::free(v);
            }
        }
    }
    ctx.dirty(n);
    ctx.out.int(n as i64);
    Ok(())
}

/// EXISTS: how many of the keys (repeats counted) exist; their access clocks stay as they
/// were, as Redis's LOOKUP_NOTOUCH.
fn exists(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = argv[1..]
        .iter()
        .filter(|k| ctx.ks.peek(k).is_some())
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

/// TOUCH: as EXISTS, but each key found counts as accessed.
fn touch(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = argv[1..].iter().filter(|k| ctx.ks.get(k).is_some()).count();
    ctx.out.int(n as i64);
    Ok(())
}

fn type_(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let name = ctx.ks.peek(argv[1]).map_or("none", Value::type_name);
    ctx.out.simple(name);
    Ok(())
}

fn keys(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let pattern = argv[1];
    let all = pattern == b"*";
    let found: Vec<&[u8]> = ctx
        .ks
        .live_keys(ctx.ks.db)
        .map(|(k, _)| k)
        .filter(|k| all || glob::matches(pattern, k, false))
        .collect();
    ctx.out.array(found.len());
    for k in found {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// SCAN's cursor, read as Redis reads it (`strtoul`): an optional sign and digits, or nothing
/// at all (cursor 0); a negative number wraps around as C's `strtoul` does.
fn parse_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    let invalid = || CommandError::Err("invalid cursor".into());
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if arg.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
///
/// The cursor is the index of the next shard to visit. A call takes whole shards until it has
/// at least COUNT keys, so a key present from the scan's start to its end is in exactly one
/// shard visit, whatever is added or removed meanwhile: it is returned at least once (exactly
/// once, here, since a shard is visited once).
fn scan(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let cursor = parse_cursor(argv[1])?;
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < argv.len() {
        let opt = argv[i];
        let has_value = i + 1 < argv.len();
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            count = args::int(argv[i + 1])?;
            if count < 1 {
                return Err(CommandError::Syntax);
            }
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            pattern = Some(argv[i + 1]).filter(|p| *p != b"*");
        } else if opt.eq_ignore_ascii_case(b"type") && has_value {
            type_name = Some(argv[i + 1]);
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    let db = ctx.ks.db;
    let clock = ctx.ks.clock();
    let mut found: Vec<&[u8]> = Vec::new();
    let mut next = 0;
    if cursor < SHARDS as u64 {
        let mut shard = cursor as usize;
        while shard < SHARDS {
            let s = ctx.ks.locked.shard(ShardId {
                db: db as u32,
                shard: shard as u32,
            });
            found.extend(
                s.map
                    .iter()
                    .filter(|(k, v)| {
                        pattern.is_none_or(|p| glob::matches(p, k, false))
                            && type_name
                                .is_none_or(|t| t.eq_ignore_ascii_case(v.type_name().as_bytes()))
                            && !(s.is_expired(k, clock) && {
                                // As Redis's scan: an expired key it meets is removed.
                                ctx.ks.saw_expired(db, k);
                                true
                            })
                    })
                    .map(|(k, _)| &**k),
            );
            shard += 1;
            if found.len() as i64 >= count && shard < SHARDS {
                next = shard;
                break;
            }
        }
    }
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(found.len());
    for k in found {
        ctx.out.bulk(k);
    }
    Ok(())
}

fn random_u64() -> u64 {
    // Each RandomState is freshly keyed, which is all the randomness RANDOMKEY needs.
    RandomState::new().hash_one(0u8)
}

/// A random live key, each key equally likely: a random index into the database's keys (the
/// shards' sizes say which shard holds it), retried when it lands on an expired key; after a
/// run of those, the first live key found by walking every shard.
fn randomkey(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let db = ctx.ks.db;
    let clock = ctx.ks.clock();
    let shards = ctx.ks.db_shards(db);
    let total: usize = shards.iter().map(|s| s.map.len()).sum();
    let mut pick = None;
    if total > 0 {
        for _ in 0..100 {
            let mut i = (random_u64() % total as u64) as usize;
            let Some(s) = shards.iter().find(|s| {
                let here = i < s.map.len();
                if !here {
                    i -= s.map.len();
                }
                here
            }) else {
                break;
            };
            let Some((k, _)) = s.map.iter().nth(i) else {
                break;
            };
            if !s.is_expired(k, clock) {
                pick = Some(&**k);
                break;
            }
            // As Redis's dbRandomKey: an expired key it draws is removed.
            ctx.ks.saw_expired(db, k);
        }
        if pick.is_none() {
            pick = ctx.ks.live_keys(db).map(|(k, _)| k).next();
        }
    }
    ctx.out.bulk_opt(pick);
    Ok(())
}

fn dbsize(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    // Expired keys not yet removed count, as in Redis.
    let n: usize = ctx
        .ks
        .db_shards(ctx.ks.db)
        .iter()
        .map(|s| s.map.len())
        .sum();
    ctx.out.int(n as i64);
    Ok(())
}

fn rename_generic(ctx: &mut Ctx, argv: &[&[u8]], nx: bool) -> Result<(), CommandError> {
    let (src, dst) = (argv[1], argv[2]);
    if ctx.ks.get(src).is_none() {
        return Err(CommandError::NoSuchKey);
    }
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    if nx && ctx.ks.get(dst).is_some() {
        ctx.out.int(0);
        return Ok(());
    }
    let deadline = ctx.ks.deadline(src);
    if let Some(v) = ctx.ks.remove(src) {
        ctx.ks.set(dst, v);
        if deadline.is_some() {
            ctx.ks.set_deadline(dst, deadline);
        }
    }
    ctx.dirty(1);
    ctx.notify(GENERIC, "rename_from", src);
    ctx.notify(GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn rename(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    rename_generic(ctx, argv, false)
}

fn renamenx(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    rename_generic(ctx, argv, true)
}

/// A database index argument, as Redis's `getIntFromObjectOrReply` + `selectDb`.
pub fn db_index(shared: &Shared, arg: &[u8]) -> Result<usize, CommandError> {
    let n = args::int(arg)?;
    if i32::try_from(n).is_err() {
        return Err(CommandError::Err(
            "value is out of range, value must between -2147483648 and 2147483647".into(),
        ));
    }
    if n < 0 || n as usize >= shared.store.dbs.len() {
        return Err(CommandError::DbIndexOutOfRange);
    }
    Ok(n as usize)
}

/// COPY's options: (target database, REPLACE).
fn copy_options(shared: &Shared, db: usize, argv: &[&[u8]]) -> Result<(usize, bool), CommandError> {
    let (mut target, mut replace) = (db, false);
    let mut j = 3;
    while j < argv.len() {
        if argv[j].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if argv[j].eq_ignore_ascii_case(b"db") && j + 1 < argv.len() {
            target = db_index(shared, argv[j + 1])?;
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    Ok((target, replace))
}

/// COPY's source is in the current database and its destination in the target one. Bad
/// options lock the source only: the handler then replies with the error.
fn copy_dbs(shared: &Shared, db: usize, argv: &[&[u8]], pos: usize) -> KeyDbs {
    match pos {
        1 => smallvec![db],
        _ => copy_options(shared, db, argv)
            .map(|(target, _)| smallvec![target])
            .unwrap_or_default(),
    }
}

fn same_object() -> CommandError {
    CommandError::Err("source and destination objects are the same".into())
}

fn copy(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (src, dst) = (argv[1], argv[2]);
    let db = ctx.ks.db;
    let (target, replace) = copy_options(ctx.shared, db, argv)?;
    if target == db && src == dst {
        return Err(same_object());
    }
    expire_both(ctx, (db, src), (target, dst));
    let Some(v) = ctx.ks.get(src).cloned() else {
        ctx.out.int(0);
        return Ok(());
    };
    let deadline = ctx.ks.deadline(src);
    if ctx.ks.get_in(target, dst).is_some() && !replace {
        ctx.out.int(0);
        return Ok(());
    }
    put(ctx, target, dst, v, deadline, "copy_to");
    Ok(())
}

/// The end of COPY and MOVE: stores the value with its deadline in `db`, emits `event` there,
/// replies 1.
fn put(ctx: &mut Ctx, db: usize, key: &[u8], v: Value, deadline: Option<u64>, event: &str) {
    ctx.ks.set_in(db, key, v);
    if deadline.is_some() {
        ctx.ks.set_deadline_in(db, key, deadline);
    }
    ctx.dirty(1);
    ctx.notify_in(db, GENERIC, event, key);
    ctx.out.int(1);
}

/// COPY and MOVE name keys in two databases, beyond what the dispatcher expires before a
/// write (see `commands::run`): expired ones go first, their DELs logged.
fn expire_both(ctx: &mut Ctx, a: (usize, &[u8]), b: (usize, &[u8])) {
    ctx.ks.expire_if_needed(a.0, a.1);
    ctx.ks.expire_if_needed(b.0, b.1);
}

/// MOVE's key is in the current database and the target one (if it names one).
fn move_dbs(shared: &Shared, db: usize, argv: &[&[u8]], _pos: usize) -> KeyDbs {
    let mut dbs = smallvec![db];
    dbs.extend(db_index(shared, argv[2]).ok());
    dbs
}

fn move_(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let db = ctx.ks.db;
    let target = db_index(ctx.shared, argv[2])?;
    if target == db {
        return Err(same_object());
    }
    expire_both(ctx, (db, key), (target, key));
    if ctx.ks.get(key).is_none() || ctx.ks.get_in(target, key).is_some() {
        ctx.out.int(0);
        return Ok(());
    }
    let deadline = ctx.ks.deadline(key);
    if let Some(v) = ctx.ks.remove(key) {
        ctx.notify(GENERIC, "move_from", key);
        put(ctx, target, key, v, deadline, "move_to");
    }
    Ok(())
}

/// True if `key` is in `db`'s map, expired or not (what Redis's flush and swap check before
/// flagging a watcher).
fn in_map(ctx: &Ctx, db: usize, key: &[u8]) -> bool {
    ctx.ks
        .locked
        .shard(ShardId::of_key(db, key))
        .map
        .contains_key(key)
}

fn swapdb(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let index = |arg: &[u8], what: &str| match args::int(arg).ok().map(i32::try_from) {
        Some(Ok(n)) => Ok(n),
        _ => Err(CommandError::Err(format!("invalid {what} DB index"))),
    };
    let a = index(argv[1], "first")?;
    let b = index(argv[2], "second")?;
    let n = ctx.shared.store.dbs.len() as i32;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CommandError::DbIndexOutOfRange);
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        let either = |k: &[u8]| in_map(ctx, a, k) || in_map(ctx, b, k);
        let now = ctx.ks.clock();
        let held = |db: usize, k: &[u8]| {
            let shard = ctx.ks.locked.shard(ShardId::of_key(db, k));
            shard.map.contains_key(k).then(|| shard.is_expired(k, now))
        };
        let (in_a, in_b) = (|k: &[u8]| held(a, k), |k: &[u8]| held(b, k));
        ctx.shared
            .watches
            .touch_db(a, |k| in_map(ctx, a, k), Some(&in_b));
        ctx.shared
            .watches
            .touch_db(b, |k| in_map(ctx, b, k), Some(&in_a));
        // Every waited name that holds something before or after the swap looks again (the
        // waiters' commands decide): a pop served by a list that arrives, a group reader told
        // its stream went (Redis's scanDatabaseForReadyKeys and
        // scanDatabaseForDeletedStreams).
        ctx.shared.blocking.signal_db(a, either);
        ctx.shared.blocking.signal_db(b, either);
        // A key's shard index is the same in every database, so swapping shard by shard swaps
        // the databases.
        for shard in 0..SHARDS as u32 {
            let sa = ShardId {
                db: a as u32,
                shard,
            };
            let sb = ShardId {
                db: b as u32,
                shard,
            };
            let taken = std::mem::take(ctx.ks.locked.shard_mut(sa));
            let other = std::mem::replace(ctx.ks.locked.shard_mut(sb), taken);
            *ctx.ks.locked.shard_mut(sa) = other;
        }
    }
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

/// FLUSHDB's and FLUSHALL's optional ASYNC or SYNC (both flush at once here).
/// Whether FLUSHALL/FLUSHDB frees in the background: ASYNC, or no mode with
/// `lazyfree-lazy-user-flush yes`.
fn flush_flags(ctx: &Ctx, argv: &[&[u8]]) -> Result<bool, CommandError> {
    match argv {
        [_] => Ok(ctx.shared.config.read().lazyfree_lazy_user_flush),
        [_, mode] if mode.eq_ignore_ascii_case(b"sync") => Ok(false),
        [_, mode] if mode.eq_ignore_ascii_case(b"async") => Ok(true),
        _ => Err(CommandError::Syntax),
    }
}

/// Empties database `db` (every shard of it must be locked); returns how many keys it held.
fn empty_db(ctx: &mut Ctx, db: usize, lazy: bool) -> u64 {
    ctx.shared
        .watches
        .touch_db(db, |k| in_map(ctx, db, k), None);
    // Its waiters look again: a blocked XREADGROUP learns its stream is gone (Redis's
    // "no longer exists"), a pop keeps waiting.
    ctx.shared.blocking.signal_db(db, |_| true);
    let mut removed = 0;
    for shard in 0..SHARDS as u32 {
        let s = ctx.ks.locked.shard_mut(ShardId {
            db: db as u32,
            shard,
        });
        removed += s.map.len() as u64;
        if !s.map.is_empty() || !s.expires.is_empty() {
            let old = std::mem::take(s);
            if lazy {
                let effort = old.map.len();
                lazyfree::free_with_effort(old, effort);
            }
        }
    }
    removed
}

fn flushdb(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let lazy = flush_flags(ctx, argv)?;
    let n = empty_db(ctx, ctx.ks.db, lazy);
    ctx.dirty(n);
    ctx.shared.tracking.flush(ctx.shared);
    // Logged even when there was nothing to remove, as Redis does.
    ctx.propagate(argv);
    ctx.out.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let lazy = flush_flags(ctx, argv)?;
    let mut n = 0;
    for db in 0..ctx.shared.store.dbs.len() {
        n += empty_db(ctx, db, lazy);
    }
    let shared = ctx.shared;
    if shared.config.read().save.is_empty() || shared.is_loading() {
        ctx.dirty(n);
    } else {
        // As Redis's flushAllDataAndResetRDB: with save points, the emptied data is saved
        // at once (every shard is held here), which resets the changes to save, so that no
        // background save follows for them. Counted first, so that the save counts them.
        shared.stats.dirty(n);
        let path = crate::persist::rdb_path(shared);
        if let Err(e) = crate::persist::save_held(shared, &path, &ctx.ks.locked) {
            log::warn!("FLUSHALL could not save the emptied data: {e:?}");
        }
    }
    shared.tracking.flush(shared);
    ctx.propagate(argv);
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursors_as_strtoul() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"+7"), Ok(7));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert!(parse_cursor(b" 0").is_err());
        assert!(parse_cursor(b"+").is_err());
        assert!(parse_cursor(b"1a").is_err());
        assert!(parse_cursor(b"99999999999999999999").is_err());
    }
}
