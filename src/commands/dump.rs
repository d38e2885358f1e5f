//! DUMP and RESTORE (Redis's cluster.c): a value as Redis's payload (the RDB value, the RDB
//! version in two bytes, a CRC-64 of both), so that keys move between rudis and Redis.

use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, KEY1};
use crate::notify::events::class::GENERIC;
use crate::rdb::{file::Options, read, write};
use crate::shared::Shared;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("dump", 2, READONLY, KEY1, dump),
    cmd!("restore", -4, WRITE | DENYOOM, KEY1, restore),
];

/// `rdbcompression` and `rdbchecksum` as they are now.
pub fn rdb_options(shared: &Shared) -> Options {
    let c = shared.config.read();
    let yes = |name: &str| c.get(name).is_none_or(|v| v == "yes");
    Options {
        compression: yes("rdbcompression"),
        checksum: yes("rdbchecksum"),
    }
}

fn dump(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let compress = rdb_options(ctx.shared).compression;
    match ctx.ks.get(argv[1]) {
        Some(v) => {
            let payload = write::dump_payload(v, compress);
            ctx.out.bulk(&payload);
        }
        None => ctx.out.null_bulk(),
    }
    Ok(())
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency], checked in
/// Redis's order: options, the key, the TTL, the payload. IDLETIME and FREQ are checked and
/// otherwise ignored: rudis keeps no LRU/LFU data.
fn restore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (None, None);
    let mut i = 4;
    while i < argv.len() {
        let a = argv[i];
        let more = i + 1 < argv.len();
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && more && freq.is_none() {
            let v = args::int(argv[i + 1])?;
            if v < 0 {
                return Err(CommandError::Err(
                    "Invalid IDLETIME value, must be >= 0".into(),
                ));
            }
            idle = Some(v);
            i += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && more && idle.is_none() {
            let v = args::int(argv[i + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CommandError::Err(
                    "Invalid FREQ value, must be >= 0 and <= 255".into(),
                ));
            }
            freq = Some(v);
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if !replace && ctx.ks.get(key).is_some() {
        return Err(CommandError::Coded(
            "BUSYKEY Target key name already exists.".into(),
        ));
    }
    let ttl = args::int(argv[2])?;
    if ttl < 0 {
        return Err(CommandError::Err("Invalid TTL value, must be >= 0".into()));
    }
    let Some(body) = read::verify_payload(argv[3]) else {
        return Err(CommandError::Err(
            "DUMP payload version or checksum are wrong".into(),
        ));
    };
    let bad = || CommandError::Err("Bad data format".into());
    let mut r = read::Reader::new(body, 0);
    let t = r.byte("a type").map_err(|_| bad())?;
    // An empty collection is as bad a payload here as a malformed one.
    let v = read::value(&mut r, t).map_err(|_| bad())?.ok_or_else(bad)?;
    let deleted = replace && ctx.ks.remove(key).is_some();
    let deadline = match ttl {
        0 => None,
        t if absttl => Some(t as u64),
        t => Some(ctx.now_ms().saturating_add(t as u64)),
    };
    if deadline.is_some_and(|d| d <= ctx.now_ms()) {
        // Already expired: the key is not created (and an old one REPLACE removed stays gone).
        if deleted {
            ctx.notify(GENERIC, "del", key);
            ctx.dirty(1);
            ctx.propagate(&[&b"DEL"[..], key]);
        }
        ctx.out.ok();
        return Ok(());
    }
    ctx.ks.set(key, v);
    if let Some(d) = deadline {
        ctx.ks.set_deadline(key, Some(d));
        if !absttl {
            // Logged with its absolute deadline, as Redis propagates it.
            let d = d.to_string();
            let mut logged: Vec<&[u8]> = argv.to_vec();
            logged[2] = d.as_bytes();
            logged.push(b"ABSTTL");
            ctx.propagate(&logged);
        }
    }
    ctx.notify(GENERIC, "restore", key);
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}
