//! OBJECT (Redis's object.c): what a key's value looks like inside. Encodings are named as
//! Redis 7.0 names them for the same contents.
//!
//! rudis keeps no access clock nor frequency per key (it evicts nothing: `maxmemory-policy`
//! is accepted but not applied, see config/table.rs): IDLETIME answers 0, and FREQ 0 under an
//! LFU policy; each gives Redis's error under the policy that does not track it.

use super::flags::*;
use super::{dispatch_sub, help, CommandError, CommandSpec, Ctx, Keys};
use crate::resp::parse::parse_i64;
use crate::store::value::Hash;
use crate::store::Value;

const KEY2: Keys = Keys::Range {
    first: 2,
    last: 2,
    step: 1,
};

/// The dispatcher locks for the container's spec: OBJECT is rare, so it holds the database
/// rather than teaching the plan about subcommands' keys.
pub static COMMANDS: &[CommandSpec] =
    &[cmd!("object", -2, 0, Keys::Db, dispatch_sub).container(SUBCOMMANDS, HELP)];

const SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("object|encoding", 3, READONLY, KEY2, encoding),
    cmd!("object|refcount", 3, READONLY, KEY2, refcount),
    cmd!("object|help", 2, LOADING | STALE, Keys::None, help),
    cmd!("object|idletime", 3, READONLY, KEY2, idletime),
    cmd!("object|freq", 3, READONLY, KEY2, freq),
];

const HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Redis's `OBJ_SHARED_REFCOUNT`: the refcount of the shared integers.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Redis shares the string objects of the integers below this (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10000;
/// Strings up to this long are allocated with their object (`OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
const EMBSTR_MAX: usize = 44;

/// OBJECT ENCODING's name for a value. A string changed in place is `raw`, as Redis leaves it;
/// another's is what Redis's `tryObjectEncoding` makes of the same bytes.
pub fn encoding_name(v: &Value) -> &'static str {
    match v {
        Value::Str(s) if s.is_raw() => "raw",
        Value::Str(s) if parse_i64(s).is_some() => "int",
        Value::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
        Value::Str(_) => "raw",
        Value::Hash(h) => match **h {
            Hash::Small(_) => "listpack",
            Hash::Large(_) => "hashtable",
        },
        Value::List(l) => l.encoding(),
        Value::Set(s) => s.encoding(),
        Value::ZSet(z) => z.encoding(),
        Value::Stream(_) => "stream",
    }
}

/// The key's value, or a null reply (Redis's `objectCommandLookupOrReply`).
fn value<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c Value> {
    if ctx.ks.get(key).is_none() {
        ctx.out.null_bulk();
        return None;
    }
    ctx.ks.get(key)
}

fn encoding(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if let Some(v) = value(ctx, argv[2]) {
        let name = encoding_name(v);
        ctx.out.bulk(name.as_bytes());
    }
    Ok(())
}

fn refcount(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if let Some(v) = value(ctx, argv[2]) {
        let shared = match v {
            Value::Str(s) => {
                !s.is_raw() && parse_i64(s).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n))
            }
            _ => false,
        };
        ctx.out.int(if shared { SHARED_REFCOUNT } else { 1 });
    }
    Ok(())
}

/// True under an LFU `maxmemory-policy`: Redis then tracks frequencies instead of idle times.
fn lfu(ctx: &Ctx) -> bool {
    let config = ctx.shared.config.read();
    config
        .get("maxmemory-policy")
        .is_some_and(|p| p.ends_with("-lfu"))
}

const SWITCHING: &str = "Please note that when switching between policies at runtime LRU and \
                         LFU data will take some time to adjust.";

/// Not tracked: 0 (see the module's comment).
fn idletime(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if value(ctx, argv[2]).is_none() {
        return Ok(());
    }
    if lfu(ctx) {
        return Err(CommandError::Err(format!(
            "An LFU maxmemory policy is selected, idle time not tracked. {SWITCHING}"
        )));
    }
    ctx.out.int(0);
    Ok(())
}

/// Not tracked: 0 under an LFU policy (see the module's comment).
fn freq(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if value(ctx, argv[2]).is_none() {
        return Ok(());
    }
    if !lfu(ctx) {
        return Err(CommandError::Err(format!(
            "An LFU maxmemory policy is not selected, access frequency not tracked. {SWITCHING}"
        )));
    }
    ctx.out.int(0);
    Ok(())
}
