//! The blocking list commands: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP (Redis's t_list.c).
//!
//! Each first acts as its non-blocking form when a key has something (and logs that form:
//! LPOP, LMOVE, ...). Otherwise the client blocks (see `crate::blocking`) with a [`Serve`]
//! that re-runs the non-blocking command (LPOP key, LMOVE, LMPOP 1 key ...) against the key
//! that became ready, through the dispatcher as any command: its own locks, its own AOF record.
//! Inside EXEC (or a script) a client may not block: an empty key gives the timeout reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::flags::*;
use super::list::{lmpop_args, move_one, parse_end, pop_first};
use super::{lookup, run, CommandError, CommandSpec, Ctx, Keys};
use crate::blocking::{Serve, Served};
use crate::client::Client;
use crate::resp::ReplyBuf;
use crate::shared::Shared;
use crate::store::list::End;

/// Every argument but the first and the last (the timeout) is a key.
pub(super) const KEYS_BUT_LAST: Keys = Keys::Range {
    first: 1,
    last: -2,
    step: 1,
};
const KEY12: Keys = Keys::Range {
    first: 1,
    last: 2,
    step: 1,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        KEYS_BUT_LAST,
        blpop
    ),
    cmd!(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        KEYS_BUT_LAST,
        brpop
    ),
    cmd!(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        KEY12,
        blmove
    ),
    cmd!(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        KEY12,
        brpoplpush
    ),
    cmd!(
        "blmpop",
        -5,
        WRITE | BLOCKING | MOVABLEKEYS,
        Keys::KeyNum {
            count: 2,
            first: 3,
            step: 1,
        },
        blmpop
    ),
];

/// A timeout in seconds (fractions allowed), as Redis's `getTimeoutFromObjectOrReply`: the
/// deadline, None for 0 (for ever).
pub(super) fn deadline(arg: &[u8]) -> Result<Option<Instant>, CommandError> {
    let Some(ms) = crate::util::ldouble::timeout_ms(arg) else {
        return Err(CommandError::Err(
            "timeout is not a float or out of range".into(),
        ));
    };
    if ms < 0 {
        return Err(CommandError::Err("timeout is negative".into()));
    }
    if ms == 0 {
        return Ok(None);
    }
    // Beyond what an Instant holds is for ever.
    Ok(Instant::now().checked_add(Duration::from_millis(ms as u64)))
}

fn end_word(end: End) -> &'static [u8] {
    match end {
        End::Left => b"LEFT",
        End::Right => b"RIGHT",
    }
}

/// Blocks the client on `keys`, or, when it may not block, gives the timeout reply now.
pub(super) fn block(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    deadline: Option<Instant>,
    serve: impl FnMut(&Shared, &mut Client, &[u8], &mut ReplyBuf) -> bool + Send + 'static,
) {
    block_with(ctx, keys, deadline, Served::NotYet, serve)
}

/// `block`, where a waiter `serve` finds nothing for answers `unserved`: `Served::Pass` lets
/// the waiters after it be tried (stream readers each wait for something of their own).
pub(super) fn block_with(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    deadline: Option<Instant>,
    unserved: Served,
    serve: impl FnMut(&Shared, &mut Client, &[u8], &mut ReplyBuf) -> bool + Send + 'static,
) {
    if ctx.client.deny_blocking {
        ctx.out.null_array();
        return;
    }
    let protocol = ctx.out.protocol();
    let mut timeout = ReplyBuf::new();
    timeout.set_protocol(protocol);
    timeout.null_array();
    let handle = ctx.client.handle.clone();
    let db = ctx.ks.db;
    let pass = matches!(unserved, Served::Pass);
    let serve = serving(handle.clone(), db, protocol, pass, serve);
    // The command the session just ran (nothing that runs inside another blocks).
    let command = lookup(handle.last_cmd().as_bytes());
    ctx.shared.blocking.block(
        &handle,
        command,
        db,
        keys.iter().map(|k| k.to_vec()).collect(),
        deadline,
        timeout.as_bytes().to_vec(),
        serve,
    );
    ctx.client.blocked = true;
}

/// The `Serve` of a waiter: `attempt` runs its command on behalf of the client, into a reply
/// in the client's protocol, and says whether it served it.
fn serving(
    handle: Arc<crate::clients::ClientHandle>,
    db: usize,
    protocol: u8,
    pass: bool,
    mut attempt: impl FnMut(&Shared, &mut Client, &[u8], &mut ReplyBuf) -> bool + Send + 'static,
) -> Serve {
    Box::new(move |shared: &Shared, key: &[u8]| {
        // A key that is gone serves no pop: after one push has served its element, each
        // waiter after it would otherwise cost a whole command run to learn that. A stream
        // reader (`pass`) is told of a deleted stream by its command, so it always runs.
        if !pass && !shared.store.holds(db, key) {
            return Served::NotYet;
        }
        let mut client = Client::acting_for(handle.clone(), db);
        let mut out = ReplyBuf::new();
        out.set_protocol(protocol);
        if attempt(shared, &mut client, key, &mut out) {
            Served::Reply(out.as_bytes().to_vec(), client.pending_ack.take())
        } else if pass {
            Served::Pass
        } else {
            Served::NotYet
        }
    })
}

/// Runs `argv` (a non-blocking command) for `client`, its reply appended to `out`; true if
/// the reply is neither null nor an error.
pub(super) fn run_for(
    shared: &Shared,
    client: &mut Client,
    argv: &[&[u8]],
    out: &mut ReplyBuf,
) -> bool {
    let Some(spec) = lookup(argv[0]) else {
        return false;
    };
    let start = out.len();
    if let Err(e) = run(shared, client, spec, argv, out) {
        out.error(&e.to_string());
    }
    let reply = &out.as_bytes()[start..];
    !(reply.starts_with(b"-") || matches!(reply, b"$-1\r\n" | b"*-1\r\n" | b"_\r\n"))
}

fn bpop(ctx: &mut Ctx, argv: &[&[u8]], end: End) -> Result<(), CommandError> {
    let deadline = deadline(argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    if pop_first(ctx, keys, end, None)? {
        return Ok(());
    }
    let name: &'static [u8] = if end == End::Left { b"lpop" } else { b"rpop" };
    block(ctx, keys, deadline, move |shared, client, key, out| {
        let start = out.len();
        out.array(2);
        out.bulk(key);
        if run_for(shared, client, &[name, key], out) {
            return true;
        }
        out.buf.truncate(start);
        false
    });
    Ok(())
}

fn blpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    bpop(ctx, argv, End::Left)
}

fn brpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    bpop(ctx, argv, End::Right)
}

/// BLMOVE and BRPOPLPUSH; `rpoplpush`: the record names RPOPLPUSH, as Redis's does.
fn bmove(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    from: End,
    to: End,
    rpoplpush: bool,
    deadline: Option<Instant>,
) -> Result<(), CommandError> {
    let (src, dst) = (argv[1], argv[2]);
    let args: Vec<Vec<u8>> = if rpoplpush {
        vec![b"RPOPLPUSH".to_vec(), src.to_vec(), dst.to_vec()]
    } else {
        [&b"LMOVE"[..], src, dst, end_word(from), end_word(to)]
            .iter()
            .map(|a| a.to_vec())
            .collect()
    };
    if ctx.ks.get_list(src)?.is_some() {
        move_one(ctx, src, dst, from, to)?;
        ctx.propagate(&args);
        return Ok(());
    }
    if ctx.client.deny_blocking {
        // BLMOVE's own form of "cannot block": a null bulk, where the others answer a null
        // array.
        ctx.out.null_bulk();
        return Ok(());
    }
    block(ctx, &[src], deadline, move |shared, client, key, out| {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let start = out.len();
        if run_for(shared, client, &argv, out) {
            return true;
        }
        // A wrong-type destination ends the wait with the error (as Redis 7.0); a source that
        // is not a list (any more) does not.
        if out.as_bytes()[start..].starts_with(b"-WRONGTYPE") {
            let mut ty = ReplyBuf::new();
            run_for(shared, client, &[b"type", key], &mut ty);
            if ty.as_bytes() == b"+list\r\n" {
                return true;
            }
        }
        out.buf.truncate(start);
        false
    });
    Ok(())
}

fn blmove(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (from, to) = (parse_end(argv[3])?, parse_end(argv[4])?);
    let deadline = deadline(argv[5])?;
    bmove(ctx, argv, from, to, false, deadline)
}

fn brpoplpush(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let deadline = deadline(argv[3])?;
    bmove(ctx, argv, End::Right, End::Left, true, deadline)
}

fn blmpop(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // LMPOP's arguments sit after the timeout, and are checked before it, as in Redis.
    let (n, end, count) = lmpop_args(&argv[1..])?;
    let deadline = deadline(argv[1])?;
    let keys = &argv[3..3 + n];
    if pop_first(ctx, keys, end, Some(count))? {
        return Ok(());
    }
    let count = count.to_string().into_bytes();
    block(ctx, keys, deadline, move |shared, client, key, out| {
        let argv: [&[u8]; 6] = [b"lmpop", b"1", key, end_word(end), b"COUNT", &count];
        let start = out.len();
        if run_for(shared, client, &argv, out) {
            return true;
        }
        out.buf.truncate(start);
        false
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_without_a_connection_never_blocks() {
        // The AOF loader's case: a BLPOP in a file must not park the loader's client.
        let mut h = crate::harness::Harness::new();
        assert_eq!(h.run(&["BLPOP", "q", "0"]), b"*-1\r\n");
        assert_eq!(
            h.run(&["BLMOVE", "q", "d", "LEFT", "LEFT", "0"]),
            b"$-1\r\n"
        );
        assert_eq!(h.run(&["BLMPOP", "0", "1", "q", "LEFT"]), b"*-1\r\n");
        assert_eq!(h.shared.blocking.count(), 0);
        h.run(&["RPUSH", "q", "a", "b"]);
        assert_eq!(h.run(&["BLPOP", "q", "0"]), b"*2\r\n$1\r\nq\r\n$1\r\na\r\n");
        assert_eq!(h.run(&["BRPOPLPUSH", "q", "d", "0"]), b"$1\r\nb\r\n");
        assert_eq!(h.run(&["LRANGE", "d", "0", "-1"]), b"*1\r\n$1\r\nb\r\n");
    }
}
