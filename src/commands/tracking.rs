//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO (Redis's networking.c), over
//! `notify::tracking`. Registered as CLIENT's subcommands in `client.rs`.

use super::{args, CommandError, Ctx};
use crate::notify::tracking::ClientTracking;

fn err(msg: &str) -> CommandError {
    CommandError::Err(msg.into())
}

/// CLIENT TRACKING on|off [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP],
/// with Redis's checks in Redis's order.
pub fn tracking(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let mut next = ClientTracking {
        on: true,
        ..ClientTracking::default()
    };
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let opt = argv[j].to_ascii_lowercase();
        match opt.as_slice() {
            b"redirect" if more => {
                j += 1;
                if next.redirect != 0 {
                    return Err(err("A client can only redirect to a single other client"));
                }
                let id = args::int(argv[j])?;
                if id <= 0 || ctx.shared.clients.get(id as u64).is_none() {
                    return Err(err("The client ID you want redirect to does not exist"));
                }
                next.redirect = id as u64;
            }
            b"bcast" => next.bcast = true,
            b"optin" => next.optin = true,
            b"optout" => next.optout = true,
            b"noloop" => next.noloop = true,
            b"prefix" if more => {
                j += 1;
                next.prefixes.push(argv[j].into());
            }
            _ => return Err(CommandError::Syntax),
        }
        j += 1;
    }
    let cur = &ctx.client.tracking;
    if argv[2].eq_ignore_ascii_case(b"on") {
        if !next.bcast && !next.prefixes.is_empty() {
            return Err(err("PREFIX option requires BCAST mode to be enabled"));
        }
        if cur.on && cur.bcast != next.bcast {
            return Err(err(
                "You can't switch BCAST mode on/off before disabling tracking for this client, \
                 and then re-enabling it with a different mode.",
            ));
        }
        if next.bcast && (next.optin || next.optout) {
            return Err(err("OPTIN and OPTOUT are not compatible with BCAST"));
        }
        if next.optin && next.optout {
            return Err(err("You can't specify both OPTIN mode and OPTOUT mode"));
        }
        if (next.optin && cur.optout) || (next.optout && cur.optin) {
            return Err(err(
                "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, \
                 and then re-enabling it with a different mode.",
            ));
        }
        if next.bcast {
            check_prefixes(&cur.prefixes, &next.prefixes)?;
            // Prefixes add up over successive CLIENT TRACKING ON ... BCAST, as in Redis.
            let mut all = cur.prefixes.clone();
            all.extend(next.prefixes.iter().cloned());
            next.prefixes = all;
        }
        let was_on = cur.on;
        let handle = ctx.client.handle.clone();
        ctx.shared.tracking.enable(&handle, &next, was_on);
        show(ctx, &next);
        ctx.client.tracking = next;
    } else if argv[2].eq_ignore_ascii_case(b"off") {
        off(ctx);
    } else {
        return Err(CommandError::Syntax);
    }
    ctx.out.ok();
    Ok(())
}

/// Ends tracking (CLIENT TRACKING OFF, RESET).
pub fn off(ctx: &mut Ctx) {
    let id = ctx.client.id;
    ctx.shared.tracking.disable(id, &ctx.client.tracking);
    ctx.client.tracking = ClientTracking::default();
    show(ctx, &ClientTracking::default());
}

/// What other threads need of the client's mode (CLIENT LIST, the invalidator).
fn show(ctx: &Ctx, t: &ClientTracking) {
    let mut st = ctx.client.handle.state.lock();
    st.tracking = t.on;
    st.bcast = t.bcast;
    st.noloop = t.noloop;
    st.redir = if t.on { t.redirect as i64 } else { -1 };
}

/// Redis's checkPrefixCollisionsOrReply: no two prefixes of a client may both cover a key.
fn check_prefixes(old: &[Box<[u8]>], new: &[Box<[u8]>]) -> Result<(), CommandError> {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    for (i, p) in new.iter().enumerate() {
        if let Some(o) = old.iter().find(|o| overlap(o, p)) {
            return Err(CommandError::Err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single \
                 client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(o)
            )));
        }
        if let Some(o) = new[i + 1..].iter().find(|o| overlap(o, p)) {
            return Err(CommandError::Err(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single \
                 client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(o)
            )));
        }
    }
    Ok(())
}

/// CLIENT CACHING yes|no: whether the next command's keys are tracked (OPTIN / OPTOUT).
pub fn caching(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let t = &mut ctx.client.tracking;
    if !t.on {
        return Err(err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN \
             or OPTOUT mode enabled",
        ));
    }
    if argv[2].eq_ignore_ascii_case(b"yes") {
        if !t.optin {
            return Err(err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if argv[2].eq_ignore_ascii_case(b"no") {
        if !t.optout {
            return Err(err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CommandError::Syntax);
    }
    t.caching = true;
    ctx.out.ok();
    Ok(())
}

pub fn getredir(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let t = &ctx.client.tracking;
    ctx.out.int(if t.on { t.redirect as i64 } else { -1 });
    Ok(())
}

pub fn trackinginfo(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let t = ctx.client.tracking.clone();
    let broken = t.redirect != 0 && ctx.shared.clients.get(t.redirect).is_none();
    let flags: Vec<&str> = [
        (true, if t.on { "on" } else { "off" }),
        (t.bcast, "bcast"),
        (t.optin, "optin"),
        (t.optin && t.caching, "caching-yes"),
        (t.optout, "optout"),
        (t.optout && t.caching, "caching-no"),
        (t.noloop, "noloop"),
        (t.on && broken, "broken_redirect"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| f)
    .collect();
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(if t.on { t.redirect as i64 } else { -1 });
    out.bulk(b"prefixes");
    let mut prefixes = t.prefixes.clone();
    // Redis lists them in its radix tree's (sorted) order.
    prefixes.sort();
    if t.bcast && prefixes.is_empty() {
        prefixes.push(Box::default());
    }
    out.array(prefixes.len());
    for p in prefixes {
        out.bulk(&p);
    }
    Ok(())
}
