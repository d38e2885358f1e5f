//! Bit operations on strings (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP.

use super::flags::*;
use super::string::clamp_range;
use super::{args, CommandError, CommandSpec, Ctx, Keys, KEY1};
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
];

/// A bit offset: a non-negative integer whose byte lies within `proto-max-bulk-len`.
fn bit_offset(arg: &[u8]) -> Result<u64, CommandError> {
    match args::int(arg) {
        Ok(n) if n >= 0 && ((n >> 3) as usize) < Limits::default().max_bulk_len => Ok(n as u64),
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
        ctx.ks.set(dest, Value::str(&result));
        ctx.dirty(1);
    } else if ctx.ks.remove(dest).is_some() {
        ctx.dirty(1);
    }
    ctx.out.int(maxlen as i64);
    Ok(())
}
