//! HyperLogLog commands (Redis's hyperloglog.c): PFADD, PFCOUNT, PFMERGE, PFSELFTEST, PFDEBUG.
//! The structure, a string in Redis's encoding, is `store::hll`.

use smallvec::SmallVec;

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys, ALL_KEYS, KEY1};
use crate::notify::events::class::STRING;
use crate::store::hll::{self, HllError, REGISTERS};
use crate::store::limits::hll_sparse_max;
use crate::store::{Str, Value};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("pfadd", -2, WRITE | DENYOOM | FAST, KEY1, pfadd),
    // A read that may store the cardinality it computed in the value (and log that).
    cmd!("pfcount", -2, READONLY | MAY_REPLICATE, ALL_KEYS, pfcount),
    cmd!("pfmerge", -2, WRITE | DENYOOM, ALL_KEYS, pfmerge),
    cmd!("pfselftest", 1, ADMIN, Keys::None, pfselftest),
    cmd!(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        Keys::Range {
            first: 2,
            last: 2,
            step: 1
        },
        pfdebug
    ),
];

impl From<HllError> for CommandError {
    fn from(e: HllError) -> Self {
        CommandError::Coded(
            match e {
                HllError::NotHll => "WRONGTYPE Key is not a valid HyperLogLog string value.",
                HllError::Corrupt => "INVALIDOBJ Corrupted HLL object detected",
            }
            .into(),
        )
    }
}

/// The HLL at `key`: None if absent; WRONGTYPE (either kind) if it is not one.
fn get_hll<'a>(ctx: &'a Ctx, key: &[u8]) -> Result<Option<&'a [u8]>, CommandError> {
    let s = ctx.ks.get_str(key)?;
    if let Some(s) = s {
        hll::validate(s)?;
    }
    Ok(s)
}

/// As Redis's dbUnshareStringValue, which every HLL command but a many-key PFCOUNT runs on the
/// key it finds: the string is `raw` from then on (OBJECT ENCODING), changed or not. The HLL
/// at `key` (checked to be one by the caller), not counted as modified for WATCH.
fn unshare<'a>(ctx: &'a mut Ctx, key: &[u8]) -> &'a mut Str {
    match ctx.ks.get_mut_unsignalled(key) {
        Some(Value::Str(s)) => {
            s.set_raw();
            s
        }
        _ => unreachable!("checked to be an HLL by the caller"),
    }
}

/// The HLL at `key` (checked to be one), for changing; counts as modified for WATCH.
fn hll_mut<'a>(ctx: &'a mut Ctx, key: &[u8]) -> &'a mut Str {
    match ctx.ks.get_mut(key) {
        Some(Value::Str(s)) => s,
        _ => unreachable!("checked to be an HLL by the caller"),
    }
}

fn pfadd(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let max_bytes = hll_sparse_max();
    let regs: SmallVec<[(usize, u8); 8]> = argv[2..].iter().map(|e| hll::pat_len(e)).collect();
    let mut updated = 0;
    match get_hll(ctx, key)? {
        None => {
            ctx.ks.set(key, Value::Str(hll::new()));
            updated += 1;
        }
        // Nothing to raise: the key is not touched (WATCH and the AOF see no change).
        Some(_) => {
            let s = unshare(ctx, key);
            let mut raises = false;
            for &(index, count) in &regs {
                if hll::register(s, index)? < count {
                    raises = true;
                    break;
                }
            }
            if !raises {
                ctx.out.int(0);
                return Ok(());
            }
        }
    }
    let s = hll_mut(ctx, key);
    for &(index, count) in &regs {
        if hll::set_register(s, index, count, max_bytes)? {
            updated += 1;
        }
    }
    if updated > 0 {
        hll::invalidate(s);
        ctx.dirty(updated);
        ctx.notify(STRING, "pfadd", key);
    }
    ctx.out.int((updated > 0) as i64);
    Ok(())
}

fn pfcount(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() > 2 {
        // The union's cardinality, from registers one per byte; nothing is cached.
        let mut max = Box::new([0u8; REGISTERS]);
        for key in &argv[1..] {
            if let Some(s) = get_hll(ctx, key)? {
                hll::merge_into(&mut max, s)?;
            }
        }
        ctx.out.int(hll::count_raw(&max) as i64);
        return Ok(());
    }
    let key = argv[1];
    if get_hll(ctx, key)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let s = unshare(ctx, key);
    if let Some(card) = hll::cached_card(s) {
        ctx.out.int(card as i64);
        return Ok(());
    }
    let card = hll::count(s)?;
    // The value changes (its cache): WATCH sees it and the AOF logs this PFCOUNT, as Redis's.
    hll::set_cached_card(hll_mut(ctx, key), card);
    ctx.dirty(1);
    ctx.out.int(card as i64);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let dest = argv[1];
    let mut max = Box::new([0u8; REGISTERS]);
    let mut dense = false;
    // The destination's own registers count too: it is argv[1].
    for key in &argv[1..] {
        if let Some(s) = get_hll(ctx, key)? {
            dense |= hll::is_dense(s);
            hll::merge_into(&mut max, s)?;
        }
    }
    if ctx.ks.get(dest).is_none() {
        ctx.ks.set(dest, Value::Str(hll::new()));
    }
    let max_bytes = hll_sparse_max();
    let s = hll_mut(ctx, dest);
    if dense {
        hll::to_dense(s)?;
    }
    for (i, &m) in max.iter().enumerate() {
        if m > 0 {
            // Redis ignores the result here: the destination was read without error above.
            let _ = hll::set_register(s, i, m, max_bytes);
        }
    }
    hll::invalidate(s);
    ctx.dirty(1);
    ctx.notify(STRING, "pfadd", dest);
    ctx.out.ok();
    Ok(())
}

fn pfselftest(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let seed = crate::util::clock::now_ms() ^ ctx.client.id;
    match hll::selftest(seed, hll_sparse_max()) {
        Ok(()) => ctx.out.ok(),
        // Redis's wording carries its own code (TESTFAILED).
        Err(e) => return Err(CommandError::Coded(e)),
    }
    Ok(())
}

/// PFDEBUG GETREG | DECODE | ENCODING | TODENSE key.
fn pfdebug(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (sub, key) = (argv[1], argv[2]);
    if get_hll(ctx, key)?.is_none() {
        return Err(CommandError::Err("The specified key does not exist".into()));
    }
    let s: &[u8] = unshare(ctx, key);
    let is = |w: &[u8]| sub.eq_ignore_ascii_case(w);
    if is(b"getreg") || is(b"todense") {
        let converted = !hll::is_dense(s);
        if converted {
            let Some(Value::Str(s)) = ctx.ks.get_mut_unsignalled(key) else {
                unreachable!("checked to be an HLL above");
            };
            hll::to_dense(s)?;
            // The encoding changed: logged, as Redis forces it.
            ctx.dirty(1);
        }
        if is(b"todense") {
            ctx.out.int(converted as i64);
            return Ok(());
        }
        let Some(s) = get_hll(ctx, key)? else {
            unreachable!("found above, and nothing removed it");
        };
        let regs = hll::registers(s)?;
        ctx.out.array(regs.len());
        for r in regs {
            ctx.out.int(r as i64);
        }
    } else if is(b"decode") {
        if hll::is_dense(s) {
            return Err(CommandError::Err("HLL encoding is not sparse".into()));
        }
        let text = hll::decode(s);
        ctx.out.bulk(text.as_bytes());
    } else if is(b"encoding") {
        let dense = hll::is_dense(s);
        ctx.out.simple(if dense { "dense" } else { "sparse" });
    } else {
        return Err(CommandError::Err(format!(
            "Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}
