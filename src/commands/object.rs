//! OBJECT (Redis's object.c): what a key's value looks like inside. Encodings are named as
//! Redis 7.0 names them for the same contents.
//!
//! IDLETIME and FREQ read the key's access clock or LFU counter (`store::evict`), each with
//! Redis's error under the policy that does not keep it. OBJECT itself does not count as an
//! access.

use super::flags::*;
use super::{dispatch_sub, help, CommandError, CommandSpec, Ctx, Keys};
use crate::resp::parse::parse_i64;
use crate::store::{evict, Value};

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
        Value::Hash(h) => h.encoding(),
        Value::List(l) => l.encoding(),
        Value::Set(s) => s.encoding(),
        Value::ZSet(z) => z.encoding(),
        Value::Stream(_) => "stream",
    }
}

/// The key's value, or a null reply (Redis's `objectCommandLookupOrReply`).
fn value<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c Value> {
    if ctx.ks.peek(key).is_none() {
        ctx.out.null_bulk();
        return None;
    }
    ctx.ks.peek(key)
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
        let n = refcount_of(v);
        ctx.out.int(n);
    }
    Ok(())
}

/// The refcount Redis would show for the same value (OBJECT REFCOUNT, DEBUG OBJECT): its
/// shared small integers have the shared refcount (when it shares them), every other value
/// one reference.
pub fn refcount_of(v: &Value) -> i64 {
    let shared = crate::store::evict::shares_integers()
        && match v {
            Value::Str(s) => {
                !s.is_raw() && parse_i64(s).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n))
            }
            _ => false,
        };
    if shared {
        SHARED_REFCOUNT
    } else {
        1
    }
}

/// True under an LFU `maxmemory-policy`: Redis then tracks frequencies instead of idle times.
fn lfu(_ctx: &Ctx) -> bool {
    evict::policy().is_lfu()
}

const SWITCHING: &str = "Please note that when switching between policies at runtime LRU and \
                         LFU data will take some time to adjust.";

/// Seconds since the key was last accessed.
fn idletime(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if value(ctx, argv[2]).is_none() {
        return Ok(());
    }
    if lfu(ctx) {
        return Err(CommandError::Err(format!(
            "An LFU maxmemory policy is selected, idle time not tracked. {SWITCHING}"
        )));
    }
    let idle = ctx.ks.stored_key(argv[2]).map_or(0, evict::idle_ms) / 1000;
    ctx.out.int(idle as i64);
    Ok(())
}

/// The key's decayed LFU counter.
fn freq(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if value(ctx, argv[2]).is_none() {
        return Ok(());
    }
    if !lfu(ctx) {
        return Err(CommandError::Err(format!(
            "An LFU maxmemory policy is not selected, access frequency not tracked. {SWITCHING}"
        )));
    }
    let freq = ctx.ks.stored_key(argv[2]).map_or(0, evict::frequency);
    ctx.out.int(freq as i64);
    Ok(())
}
