//! Bit operations on strings (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP.

use super::flags::*;
use super::spec::KeyFlags;
use super::string::clamp_range;
use super::{args, CommandError, CommandSpec, Ctx, Keys, KEY1};
use crate::notify::events::class::{GENERIC, STRING};
use crate::resp::Limits;
use crate::store::Value;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("setbit", 4, WRITE | DENYOOM, KEY1, setbit),
    cmd!("getbit", 3, READONLY | FAST, KEY1, getbit),
    cmd!("bitcount", -2, READONLY, KEY1, bitcount),
    cmd!("bitpos", -3, READONLY, KEY1, bitpos),
    cmd!(
        "bitop",
        -4,
        WRITE | DENYOOM,
        Keys::Range {
            first: 2,
            last: -1,
            step: 1
        },
        bitop
    ),
    cmd!("bitfield", -2, WRITE | DENYOOM, KEY1, bitfield),
    cmd!("bitfield_ro", -2, READONLY | FAST, KEY1, bitfield_ro),
];

/// A bit offset: a non-negative integer whose byte lies within `proto-max-bulk-len`.
fn bit_offset(arg: &[u8]) -> Result<u64, CommandError> {
    offset_in_range(args::int(arg).ok())
}

fn offset_in_range(n: Option<i64>) -> Result<u64, CommandError> {
    match n {
        Some(n) if n >= 0 && ((n >> 3) as usize) < Limits::default().max_bulk_len => Ok(n as u64),
        _ => Err(CommandError::Err(
            "bit offset is not an integer or out of range".into(),
        )),
    }
}

fn setbit(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let offset = bit_offset(argv[2])?;
    let on = match args::int(argv[3]) {
        Ok(b @ (0 | 1)) => b == 1,
        _ => {
            return Err(CommandError::Err(
                "bit is not an integer or out of range".into(),
            ))
        }
    };
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    let mut grew = false;
    if ctx.ks.get_str(key)?.is_none() {
        ctx.ks.set(key, Value::str(b""));
    }
    let was = match ctx.ks.get_mut(key) {
        Some(Value::Str(s)) => {
            s.set_raw();
            if s.len() <= byte {
                s.resize(byte + 1, 0);
                grew = true;
            }
            let was = s[byte] & mask != 0;
            if on {
                s[byte] |= mask;
            } else {
                s[byte] &= !mask;
            }
            was
        }
        _ => unreachable!("a string by now"),
    };
    if grew || was != on {
        ctx.dirty(1);
        ctx.notify(STRING, "setbit", key);
    }
    ctx.out.int(was as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let offset = bit_offset(argv[2])?;
    let s = ctx.ks.get_str(argv[1])?.unwrap_or(b"");
    let byte = (offset >> 3) as usize;
    let bit = s
        .get(byte)
        .is_some_and(|b| b & (1 << (7 - (offset & 7))) != 0);
    ctx.out.int(bit as i64);
    Ok(())
}

/// The bit at absolute index `i` of `s` (most significant first, as Redis numbers them).
fn bit_at(s: &[u8], i: u64) -> bool {
    s[(i >> 3) as usize] & (0x80 >> (i & 7)) != 0
}

/// A `start end [BYTE|BIT]` range of `s`, as bit indexes `[first, last]`; None when empty.
/// `end` None: to the end of the string.
fn bit_range(len: usize, start: i64, end: Option<i64>, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits { len as i64 * 8 } else { len as i64 };
    let (start, end) = clamp_range(start, end.unwrap_or(total - 1), total)?;
    Some(if in_bits {
        (start as u64, end as u64)
    } else {
        (start as u64 * 8, end as u64 * 8 + 7)
    })
}

/// BYTE or BIT, the unit of a range.
fn unit(arg: &[u8]) -> Result<bool, CommandError> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

fn bitcount(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // Redis looks the key up before it reads the range.
    let Some(s) = ctx.ks.get_str(argv[1])? else {
        ctx.out.int(0);
        return Ok(());
    };
    let range = match argv.len() {
        2 => bit_range(s.len(), 0, None, false),
        4 | 5 => {
            let start = args::int(argv[2])?;
            let end = args::int(argv[3])?;
            let in_bits = match argv.get(4) {
                Some(u) => unit(u)?,
                None => false,
            };
            if start < 0 && end < 0 && start > end {
                None
            } else {
                bit_range(s.len(), start, Some(end), in_bits)
            }
        }
        _ => return Err(CommandError::Syntax),
    };
    let n = match range {
        None => 0,
        Some((first, last)) => {
            let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
            let whole: u64 = s[fb..=lb].iter().map(|b| b.count_ones() as u64).sum();
            let before = (first & 7) as u32;
            let after = 7 - (last & 7) as u32;
            // The bits of the first and last bytes outside the range.
            let head = if before == 0 {
                0
            } else {
                (s[fb] & (0xffu8 << (8 - before))).count_ones()
            };
            let tail = if after == 0 {
                0
            } else {
                (s[lb] & ((1u8 << after) - 1)).count_ones()
            };
            whole - head as u64 - tail as u64
        }
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn bitpos(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let bit = args::int(argv[2])?;
    if bit != 0 && bit != 1 {
        return Err(CommandError::Err("The bit argument must be 1 or 0.".into()));
    }
    let want = bit == 1;
    let Some(s) = ctx.ks.get_str(argv[1])? else {
        // A missing key is an endless run of zeros.
        ctx.out.int(if want { -1 } else { 0 });
        return Ok(());
    };
    let (range, end_given) = match argv.len() {
        3 => (bit_range(s.len(), 0, None, false), false),
        4..=6 => {
            let start = args::int(argv[3])?;
            let in_bits = match argv.get(5) {
                Some(u) => unit(u)?,
                None => false,
            };
            let end = match argv.get(4) {
                Some(e) => Some(args::int(e)?),
                None => None,
            };
            (bit_range(s.len(), start, end, in_bits), end.is_some())
        }
        _ => return Err(CommandError::Syntax),
    };
    let Some((first, last)) = range else {
        ctx.out.int(-1);
        return Ok(());
    };
    let pos = (first..=last).find(|&i| bit_at(s, i) == want);
    let reply = match pos {
        Some(p) => p as i64,
        // Looking for a clear bit with no end given, the string counts as padded with zeros.
        None if !want && !end_given => ((last >> 3) + 1) as i64 * 8,
        None => -1,
    };
    ctx.out.int(reply);
    Ok(())
}

fn bitop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let op = argv[1].to_ascii_lowercase();
    if !matches!(op.as_slice(), b"and" | b"or" | b"xor" | b"not") {
        return Err(CommandError::Syntax);
    }
    if op == b"not" && argv.len() != 4 {
        return Err(CommandError::Err(
            "BITOP NOT must be called with a single source key.".into(),
        ));
    }
    let mut sources: Vec<&[u8]> = Vec::with_capacity(argv.len() - 3);
    for k in &argv[3..] {
        sources.push(ctx.ks.get_str(k)?.unwrap_or(b""));
    }
    let maxlen = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    let byte = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..maxlen)
        .map(|i| {
            let first = byte(sources[0], i);
            let rest = sources[1..].iter().map(|s| byte(s, i));
            match op.as_slice() {
                b"and" => rest.fold(first, |a, b| a & b),
                b"or" => rest.fold(first, |a, b| a | b),
                b"xor" => rest.fold(first, |a, b| a ^ b),
                _ => !first,
            }
        })
        .collect();
    let dest = argv[2];
    if maxlen > 0 {
        // Made whole but, as Redis's BITOP leaves it, raw.
        let mut s = crate::store::Str::from(result);
        s.set_raw();
        ctx.ks.set(dest, Value::Str(s));
        ctx.dirty(1);
        ctx.notify(STRING, "set", dest);
    } else if ctx.ks.remove(dest).is_some() {
        ctx.dirty(1);
        ctx.notify(GENERIC, "del", dest);
    }
    ctx.out.int(maxlen as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), CommandError> {
    let err = || {
        CommandError::Err(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported \
             but i64 is."
                .into(),
        )
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    // Redis reads the width as a C string: it stops at a NUL byte.
    let digits = arg[1..].split(|&b| b == 0).next().unwrap_or_default();
    match args::int(digits) {
        Ok(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Ok((signed, n as u32)),
        _ => Err(err()),
    }
}

/// A field offset: bits, or `#n` for the n-th field of this width.
fn field_offset(arg: &[u8], bits: u32) -> Result<u64, CommandError> {
    let n = match arg {
        [b'#', rest @ ..] if !rest.is_empty() => args::int(rest)
            .ok()
            .and_then(|n| n.checked_mul(bits as i64)),
        _ => args::int(arg).ok(),
    };
    offset_in_range(n)
}

fn parse_fields(argv: &[&[u8]]) -> Result<Vec<Field>, CommandError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < argv.len() {
        let remaining = argv.len() - j - 1;
        let sub = argv[j];
        let op = if sub.eq_ignore_ascii_case(b"get") && remaining >= 2 {
            FieldOp::Get
        } else if sub.eq_ignore_ascii_case(b"set") && remaining >= 3 {
            FieldOp::Set
        } else if sub.eq_ignore_ascii_case(b"incrby") && remaining >= 3 {
            FieldOp::IncrBy
        } else if sub.eq_ignore_ascii_case(b"overflow") && remaining >= 1 {
            let kind = argv[j + 1];
            overflow = if kind.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if kind.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if kind.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                return Err(CommandError::Err("Invalid OVERFLOW type specified".into()));
            };
            j += 2;
            continue;
        } else {
            return Err(CommandError::Syntax);
        };
        let (signed, bits) = field_type(argv[j + 1])?;
        let offset = field_offset(argv[j + 2], bits)?;
        let value = if op == FieldOp::Get {
            0
        } else {
            args::int(argv[j + 3])?
        };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(fields)
}

/// The `bits`-wide unsigned field at bit `offset` (bits past the end read as 0).
fn get_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..bits as u64).fold(0, |v, j| {
        let i = offset + j;
        let bit = s
            .get((i >> 3) as usize)
            .is_some_and(|b| b & (0x80 >> (i & 7)) != 0);
        (v << 1) | bit as u64
    })
}

fn set_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let i = offset + j;
        let mask = 0x80u8 >> (i & 7);
        let byte = &mut s[(i >> 3) as usize];
        if (value >> (bits as u64 - 1 - j)) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: Some(value to store) when `value + incr` leaves the
/// width (None under FAIL), else the plain sum.
fn unsigned_result(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = (1u64 << bits) - 1;
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr as u64 > max - value) {
        (true, if ow == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr.unsigned_abs() > value {
        (true, if ow == Overflow::Sat { 0 } else { wrap() })
    } else {
        (false, value.wrapping_add(incr as u64))
    }
}

/// Redis's `checkSignedBitfieldOverflow`, likewise, computed as Redis computes it: its
/// `max - value` may wrap for a SET value out of range, and which limit SAT picks then follows
/// from the wrapped number (SET i8 0 -9223372036854775808 saturates to 127), so the same
/// arithmetic is kept.
fn signed_result(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        sign_extend(
            if bits < 64 {
                c & ((1u64 << bits) - 1)
            } else {
                c
            },
            bits,
        )
    };
    let narrow = bits != 64;
    if value > max || (narrow && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        (true, if ow == Overflow::Sat { max } else { wrap() })
    } else if value < min
        || (narrow && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        (true, if ow == Overflow::Sat { min } else { wrap() })
    } else {
        (false, value.wrapping_add(incr))
    }
}

fn bitfield_generic(ctx: &mut Ctx, argv: &[&[u8]], read_only: bool) -> Result<(), CommandError> {
    let key = argv[1];
    let fields = parse_fields(argv)?;
    let writes = fields.iter().any(|f| f.op != FieldOp::Get);
    if !writes {
        let s = ctx.ks.get_str(key)?.unwrap_or(b"");
        ctx.out.array(fields.len());
        for f in &fields {
            let v = get_field(s, f.offset, f.bits);
            ctx.out.int(if f.signed {
                sign_extend(v, f.bits)
            } else {
                v as i64
            });
        }
        return Ok(());
    }
    if read_only {
        return Err(CommandError::Err(
            "BITFIELD_RO only supports the GET subcommand".into(),
        ));
    }
    // Room up to the farthest bit written, made before any field is (as Redis does, even for
    // a write that then fails on overflow).
    let highest = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + f.bits as u64 - 1)
        .max()
        .unwrap_or(0);
    // As Redis's `dirty`: a key created or grown is a change even where no field's value is.
    let mut grew = false;
    if ctx.ks.get_str(key)?.is_none() {
        ctx.ks.set(key, Value::str(b""));
        grew = true;
    }
    let Some(Value::Str(s)) = ctx.ks.get_mut(key) else {
        unreachable!("a string by now");
    };
    s.set_raw();
    let need = (highest >> 3) as usize + 1;
    if s.len() < need {
        s.resize(need, 0);
        grew = true;
    }
    ctx.out.array(fields.len());
    let mut changes = 0;
    for f in &fields {
        let old = get_field(s, f.offset, f.bits);
        if f.op == FieldOp::Get {
            ctx.out.int(if f.signed {
                sign_extend(old, f.bits)
            } else {
                old as i64
            });
            continue;
        }
        let (overflowed, new, reply) = if f.signed {
            let old = sign_extend(old, f.bits);
            let (o, n) = if f.op == FieldOp::IncrBy {
                signed_result(old, f.value, f.bits, f.overflow)
            } else {
                signed_result(f.value, 0, f.bits, f.overflow)
            };
            let reply = if f.op == FieldOp::IncrBy { n } else { old };
            (o, n as u64, reply)
        } else {
            let (o, n) = if f.op == FieldOp::IncrBy {
                unsigned_result(old, f.value, f.bits, f.overflow)
            } else {
                unsigned_result(f.value as u64, 0, f.bits, f.overflow)
            };
            let reply = if f.op == FieldOp::IncrBy {
                n as i64
            } else {
                old as i64
            };
            (o, n, reply)
        };
        if overflowed && f.overflow == Overflow::Fail {
            ctx.out.null_bulk();
        } else {
            ctx.out.int(reply);
            set_field(s, f.offset, f.bits, new);
            // A SET to the value already there changes nothing: not counted, not logged.
            let mask = u64::MAX >> (64 - f.bits);
            if grew || new & mask != old {
                changes += 1;
            }
        }
    }
    ctx.dirty(changes);
    if changes > 0 {
        ctx.notify(STRING, "setbit", argv[1]);
    }
    Ok(())
}

fn bitfield(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    bitfield_generic(ctx, argv, false)
}

fn bitfield_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    bitfield_generic(ctx, argv, true)
}

/// BITFIELD's key flags (Redis's bitfieldGetKeys): read-only while every operation is a GET
/// (or OVERFLOW), else a read-write update; a syntax error counts as a write.
pub fn bitfield_key_flags(argv: &[&[u8]]) -> &'static KeyFlags {
    let mut i = 2;
    while i < argv.len() {
        let rem = argv.len() - i - 1;
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"get") && rem >= 2 {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"overflow") && rem >= 1 {
            i += 2;
        } else {
            return &KeyFlags {
                words: &["RW", "access", "update"],
                read: true,
                write: true,
            };
        }
    }
    &KeyFlags {
        words: &["RO", "access"],
        read: true,
        write: false,
    }
}
