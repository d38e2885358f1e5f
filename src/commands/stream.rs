//! Stream commands and consumer groups (Redis's t_stream.c), over `store::stream`.
//!
//! What reaches the AOF is what Redis propagates: XADD and XTRIM with `~` trimming rewritten
//! to the exact length or ID they left (and XADD's generated ID), and for the group commands
//! their effects only: an XCLAIM ... FORCE JUSTID LASTID per entry delivered or claimed, an
//! XGROUP SETID ... ENTRIESREAD when NOACK moved the group on, XGROUP CREATECONSUMER for a
//! consumer a NOACK read created. A blocked XREAD/XREADGROUP is served by running its
//! non-blocking form for the key that became ready (see `crate::blocking`), so its records
//! are these same ones.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::flags::*;
use super::list_blocking::{block_with, run_for};
use super::{args, dispatch_sub, help, CommandError, CommandSpec, Ctx, Keys, KEY1};
use crate::blocking::Served;
use crate::notify::events::class::STREAM;
use crate::resp::ReplyBuf;
use crate::store::stream::{
    AppendError, Entry, Group, NodeLimits, Stream, StreamId, Trim, INVALID_ENTRIES_READ,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("xadd", -5, WRITE | DENYOOM | FAST, KEY1, xadd),
    cmd!("xrange", -4, READONLY, KEY1, xrange),
    cmd!("xrevrange", -4, READONLY, KEY1, xrevrange),
    cmd!("xlen", 2, READONLY | FAST, KEY1, xlen),
    cmd!("xdel", -3, WRITE | FAST, KEY1, xdel),
    cmd!("xtrim", -4, WRITE, KEY1, xtrim),
    cmd!("xsetid", -3, WRITE | DENYOOM | FAST, KEY1, xsetid),
    cmd!(
        "xread",
        -4,
        READONLY | BLOCKING | MOVABLEKEYS,
        Keys::Streams,
        xread
    ),
    cmd!(
        "xreadgroup",
        -7,
        WRITE | BLOCKING | MOVABLEKEYS,
        Keys::Streams,
        xreadgroup
    ),
    cmd!("xack", -4, WRITE | FAST, KEY1, xack),
    cmd!("xpending", -3, READONLY, KEY1, xpending),
    cmd!("xclaim", -6, WRITE | FAST, KEY1, xclaim),
    cmd!("xautoclaim", -6, WRITE | FAST, KEY1, xautoclaim),
    // Rare: the containers hold the database rather than teaching the plan their keys (as
    // OBJECT does); XGROUP takes write locks and logs what its subcommand changed.
    cmd!("xgroup", -2, MAY_REPLICATE, Keys::Db, dispatch_sub)
        .container(XGROUP_SUBCOMMANDS, XGROUP_HELP),
    cmd!("xinfo", -2, 0, Keys::Db, dispatch_sub).container(XINFO_SUBCOMMANDS, XINFO_HELP),
];

const KEY2: Keys = Keys::Range {
    first: 2,
    last: 2,
    step: 1,
};

const XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("xgroup|create", -5, WRITE | DENYOOM, KEY2, xgroup),
    cmd!("xgroup|setid", -5, WRITE, KEY2, xgroup),
    cmd!("xgroup|destroy", 4, WRITE, KEY2, xgroup),
    cmd!("xgroup|createconsumer", 5, WRITE | DENYOOM, KEY2, xgroup),
    cmd!("xgroup|delconsumer", 5, WRITE, KEY2, xgroup),
    cmd!("xgroup|help", 2, LOADING | STALE, Keys::None, help),
];

const XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("xinfo|consumers", 4, READONLY, KEY2, xinfo),
    cmd!("xinfo|groups", 3, READONLY, KEY2, xinfo),
    cmd!("xinfo|stream", -3, READONLY, KEY2, xinfo),
    cmd!("xinfo|help", 2, LOADING | STALE, Keys::None, help),
];

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

/// A blocked XREAD with no COUNT gets at most this many entries (XREAD_BLOCKED_DEFAULT_COUNT).
const BLOCKED_DEFAULT_COUNT: i64 = 1000;

fn err(msg: &str) -> CommandError {
    CommandError::Err(msg.into())
}

fn invalid_id() -> CommandError {
    err("Invalid stream ID specified as stream command argument")
}

fn s(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// The container (XINFO or XGROUP) whose subcommand `argv[1]` was given arguments it does not take.
fn subcommand_syntax(argv: &[&[u8]]) -> CommandError {
    let cmd = if argv[0].eq_ignore_ascii_case(b"xinfo") {
        "xinfo"
    } else {
        "xgroup"
    };
    CommandError::subcommand_syntax(cmd, argv)
}

fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, CommandError> {
    StreamId::parse(arg, missing_seq, strict, false)
        .map(|(id, _)| id)
        .ok_or_else(invalid_id)
}

fn strict_id(arg: &[u8]) -> Result<StreamId, CommandError> {
    parse_id(arg, 0, true)
}

/// Every ID must parse before any is used (all or nothing, as Redis).
fn strict_ids(args: &[&[u8]]) -> Result<Vec<StreamId>, CommandError> {
    args.iter().map(|a| strict_id(a)).collect()
}

/// A range bound: `(` makes it exclusive (and strict), Redis's streamParseIntervalIDOrReply.
fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CommandError> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id(&arg[1..], missing_seq, true)?, true))
    } else {
        Ok((parse_id(arg, missing_seq, false)?, false))
    }
}

fn start_bound(arg: &[u8]) -> Result<StreamId, CommandError> {
    match interval_id(arg, 0)? {
        (id, false) => Ok(id),
        (id, true) => id
            .next()
            .ok_or_else(|| err("invalid start ID for the interval")),
    }
}

fn end_bound(arg: &[u8]) -> Result<StreamId, CommandError> {
    match interval_id(arg, u64::MAX)? {
        (id, false) => Ok(id),
        (id, true) => id
            .prev()
            .ok_or_else(|| err("invalid end ID for the interval")),
    }
}

fn limits() -> NodeLimits {
    NodeLimits {
        max_bytes: crate::store::limits::stream_node_max_bytes(),
        max_entries: crate::store::limits::stream_node_max_entries(),
    }
}

/// An ID as a bulk string, formatted without allocating.
pub fn reply_id(out: &mut ReplyBuf, id: StreamId) {
    let mut buf = [0u8; 41];
    let n = format_id(id, &mut buf);
    out.bulk(&buf[..n]);
}

/// `ms-seq` into `buf`; its length. Two digits a step (itoa): every XADD and entry reply
/// formats IDs, and a digit a step was the costliest part of XADD after parsing its request
/// (callgrind: 228 instructions a request, more than the append).
fn format_id(id: StreamId, buf: &mut [u8; 41]) -> usize {
    let mut b = itoa::Buffer::new();
    let ms = b.format(id.ms).as_bytes();
    let mut n = ms.len();
    buf[..n].copy_from_slice(ms);
    buf[n] = b'-';
    n += 1;
    let seq = b.format(id.seq).as_bytes();
    buf[n..n + seq.len()].copy_from_slice(seq);
    n + seq.len()
}

/// One entry: [id, [field, value, ...]].
fn reply_entry(out: &mut ReplyBuf, e: &Entry) {
    out.array(2);
    reply_id(out, e.id);
    out.array(e.num_fields() * 2);
    for (f, v) in e.pairs() {
        out.bulk(f);
        out.bulk(v);
    }
}

/// The first `count` entries (all for 0 or less).
fn first<'a>(count: i64, it: impl Iterator<Item = Entry<'a>>) -> Vec<Entry<'a>> {
    if count > 0 {
        it.take(count as usize).collect()
    } else {
        it.collect()
    }
}

/// Makes `name` the group's consumer for a claim, seen now; true if it was created.
fn claimant(g: &mut Group, name: &[u8], now: i64) -> bool {
    match g.consumers.get_mut(name) {
        Some(c) => {
            c.seen_time = now;
            false
        }
        None => g.create_consumer(name, now),
    }
}

/// The claimed entries (or their IDs with JUSTID).
fn reply_claimed(out: &mut ReplyBuf, st: &Stream, claimed: &[StreamId], justid: bool) {
    out.array(claimed.len());
    for &id in claimed {
        if justid {
            reply_id(out, id);
        } else if let Some(e) = st.get(id) {
            reply_entry(out, &e);
        }
    }
}

/// After a group command: its consumer event and its records.
fn group_effects(ctx: &mut Ctx, key: &[u8], created: bool, records: Vec<Vec<Vec<u8>>>) {
    if created {
        ctx.notify(STREAM, "xgroup-createconsumer", key);
    }
    for r in records {
        ctx.propagate(&r);
    }
}

fn reply_entries(out: &mut ReplyBuf, entries: &[Entry]) {
    out.array(entries.len());
    for e in entries {
        reply_entry(out, e);
    }
}

/// The options of XADD and XTRIM (Redis's streamAddTrimArgs).
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    /// The position of MAXLEN/MINID's argument (for the rewritten record).
    arg_idx: usize,
    no_mkstream: bool,
    /// XADD's ID: None for `*`; with `seq_given` false for `ms-*`.
    id: Option<(StreamId, bool)>,
    /// XADD: where the ID is.
    id_pos: usize,
}

/// Parses XADD's or XTRIM's options (Redis's streamParseAddOrTrimArgsOrReply).
fn trim_args(ctx: &Ctx, argv: &[&[u8]], xadd: bool) -> Result<TrimArgs, CommandError> {
    let mut a = TrimArgs {
        trim: None,
        approx: false,
        limit: 0,
        arg_idx: 0,
        no_mkstream: false,
        id: None,
        id_pos: 0,
    };
    let mut limit_given = false;
    let mut limit: i64 = 0;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = argv[i];
        if xadd && opt == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid"))
            && more > 0
        {
            let maxlen = opt.eq_ignore_ascii_case(b"maxlen");
            if a.trim.is_some() {
                return Err(err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            a.approx = false;
            let next = argv[i + 1];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let arg = argv.get(i + 1).copied().unwrap_or(b"");
            if maxlen {
                let n = args::int(arg)?;
                if n < 0 {
                    return Err(err("The MAXLEN argument must be >= 0."));
                }
                a.trim = Some(Trim::MaxLen(n as u64));
            } else {
                a.trim = Some(Trim::MinId(strict_id(arg)?));
            }
            i += 1;
            a.arg_idx = i;
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            limit = args::int(argv[i + 1])?;
            if limit < 0 {
                return Err(err("The LIMIT argument must be >= 0."));
            }
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            a.no_mkstream = true;
        } else if xadd {
            let id = StreamId::parse(opt, 0, true, true).ok_or_else(invalid_id)?;
            a.id = Some(id);
            break;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    a.id_pos = i;
    if limit != 0 && a.trim.is_none() {
        return Err(err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && a.trim.is_none() {
        return Err(err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if ctx.shared.is_loading() {
        // Replayed records trim exactly what they say.
        a.limit = 0;
    } else if limit_given {
        if !a.approx {
            return Err(err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        a.limit = limit as u64;
    } else if a.approx {
        let n = 100 * crate::store::limits::stream_node_max_entries() as u64;
        a.limit = if n == 0 { 10000 } else { n.min(1_000_000) };
    }
    Ok(a)
}

/// The record of an XADD/XTRIM whose `~` trim is rewritten to what it left (`=` and the
/// length or first ID), and XADD's ID to the one it made.
fn rewritten<'a>(
    argv: &[&'a [u8]],
    a: &TrimArgs,
    st: &Stream,
    id: Option<StreamId>,
) -> Option<SmallVec<[Cow<'a, [u8]>; 8]>> {
    let approx = a.approx && a.trim.is_some();
    let id_rewrite = id.is_some() && !matches!(a.id, Some((_, true)));
    if !approx && !id_rewrite {
        return None;
    }
    // The arguments as given, but for those replaced: no copy of the others (every XADD with
    // `*` is logged this way).
    let mut out: SmallVec<[Cow<'a, [u8]>; 8]> = argv.iter().map(|x| Cow::Borrowed(*x)).collect();
    let id_text = |id: StreamId| {
        let mut buf = [0u8; 41];
        let n = format_id(id, &mut buf);
        Cow::Owned(buf[..n].to_vec())
    };
    if approx {
        out[a.arg_idx - 1] = Cow::Borrowed(b"=");
        out[a.arg_idx] = match a.trim {
            Some(Trim::MaxLen(_)) => Cow::Owned(itoa::Buffer::new().format(st.len()).into()),
            _ => id_text(st.edge_id(true)),
        };
    }
    if let (true, Some(id)) = (id_rewrite, id) {
        out[a.id_pos] = id_text(id);
    }
    Some(out)
}

fn xadd(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let a = trim_args(ctx, argv, true)?;
    let fields = &argv[a.id_pos + 1..];
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(CommandError::WrongArity("xadd"));
    }
    if let Some((id, true)) = a.id {
        if id.is_zero() {
            return Err(err("The ID specified in XADD must be greater than 0-0"));
        }
    }
    let key = argv[1];
    if a.no_mkstream && ctx.ks.get_stream(key)?.is_none() {
        ctx.out.null_bulk();
        return Ok(());
    }
    let now = ctx.now_ms();
    let st = ctx.ks.stream_or_new(key)?;
    if st.last_id == StreamId::MAX {
        return Err(err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let id = match st.append(a.id, fields, now, limits()) {
        Ok(id) => id,
        Err(AppendError::IdTooSmall) => {
            return Err(err(
                "The ID specified in XADD is equal or smaller than the target stream top item",
            ))
        }
        Err(AppendError::TooLarge) => return Err(err("Elements are too large to be stored")),
    };
    let trimmed = match a.trim {
        Some(t) => st.trim(t, a.approx, a.limit),
        None => 0,
    };
    let record = if ctx.shared.propagates() {
        rewritten(argv, &a, st, Some(id))
    } else {
        None
    };
    reply_id(ctx.out, id);
    ctx.dirty(1);
    ctx.notify(STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(STREAM, "xtrim", key);
    }
    if let Some(r) = record {
        ctx.propagate(&r);
    }
    // New data: readers blocked on the key may be served.
    ctx.shared.blocking.signal(ctx.ks.db, key);
    Ok(())
}

fn xtrim(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let a = trim_args(ctx, argv, false)?;
    let key = argv[1];
    let Some(st) = ctx.ks.existing_stream_mut(key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let deleted = st.trim(a.trim.expect("XTRIM has a strategy"), a.approx, a.limit);
    let record = if deleted > 0 && ctx.shared.propagates() {
        rewritten(argv, &a, st, None)
    } else {
        None
    };
    if deleted > 0 {
        ctx.notify(STREAM, "xtrim", key);
        ctx.dirty(deleted);
        if let Some(r) = record {
            ctx.propagate(&r);
        }
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

fn range(ctx: &mut Ctx, argv: &[&[u8]], rev: bool) -> Result<(), CommandError> {
    let (start_arg, end_arg) = if rev {
        (argv[3], argv[2])
    } else {
        (argv[2], argv[3])
    };
    let start = start_bound(start_arg)?;
    let end = end_bound(end_arg)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < argv.len() {
        if argv[j].eq_ignore_ascii_case(b"count") && j + 1 < argv.len() {
            count = args::int(argv[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let Some(st) = ctx.ks.get_stream(argv[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.null_array();
        return Ok(());
    }
    let it = st.range(start, end, rev);
    let entries = first(count, it);
    reply_entries(ctx.out, &entries);
    Ok(())
}

fn xrange(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    range(ctx, argv, false)
}

fn xrevrange(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    range(ctx, argv, true)
}

fn xlen(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = ctx.ks.get_stream(argv[1])?.map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn xdel(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    if ctx.ks.get_stream(key)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let ids = strict_ids(&argv[2..])?;
    let st = ctx.ks.existing_stream_mut(key)?.expect("checked above");
    let mut deleted = 0u64;
    let mut first = false;
    for id in ids {
        if st.delete(id) {
            if id == st.first_id {
                first = true;
            }
            if id > st.max_deleted {
                st.max_deleted = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        if st.is_empty() {
            st.first_id = StreamId::MIN;
        } else if first {
            st.first_id = st.edge_id(true);
        }
        ctx.notify(STREAM, "xdel", key);
        ctx.dirty(deleted);
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

fn xsetid(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let id = strict_id(argv[2])?;
    let mut entries_added: i64 = -1;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if argv[i].eq_ignore_ascii_case(b"entriesadded") && more > 0 {
            entries_added = args::int(argv[i + 1])?;
            if entries_added < 0 {
                return Err(err("entries_added must be positive"));
            }
        } else if argv[i].eq_ignore_ascii_case(b"maxdeletedid") && more > 0 {
            max_deleted = strict_id(argv[i + 1])?;
            if id < max_deleted {
                return Err(err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    let Some(st) = ctx.ks.existing_stream_mut(argv[1])? else {
        return Err(CommandError::NoSuchKey);
    };
    if !st.is_empty() {
        if id < st.edge_id(false) {
            return Err(err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added != -1 && st.len() > entries_added as u64 {
            return Err(err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    st.last_id = id;
    if entries_added != -1 {
        st.entries_added = entries_added as u64;
    }
    if !max_deleted.is_zero() {
        st.max_deleted = max_deleted;
    }
    ctx.out.ok();
    ctx.dirty(1);
    ctx.notify(STREAM, "xsetid", argv[1]);
    Ok(())
}

fn nogroup(key: &[u8], group: &[u8], tail: &str) -> CommandError {
    CommandError::Coded(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{tail}",
        s(key),
        s(group)
    ))
}

/// XGROUP's and XINFO's error for a group the stream lacks.
fn no_such_group(key: &[u8], group: &[u8]) -> CommandError {
    CommandError::Coded(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        s(group),
        s(key)
    ))
}

/// XREAD / XREADGROUP's parsed arguments.
struct ReadArgs<'a> {
    block_ms: Option<i64>,
    count: i64,
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    streams: usize,
}

fn read_args<'a>(
    ctx: &Ctx,
    argv: &[&'a [u8]],
    xreadgroup: bool,
) -> Result<ReadArgs<'a>, CommandError> {
    let mut a = ReadArgs {
        block_ms: None,
        count: 0,
        group: None,
        noack: false,
        streams: 0,
    };
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let o = argv[i];
        if o.eq_ignore_ascii_case(b"block") && more > 0 {
            if ctx.client.in_script {
                return Err(err(&format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    s(argv[0])
                )));
            }
            i += 1;
            let ms =
                args::int(argv[i]).map_err(|_| err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(err("timeout is negative"));
            }
            a.block_ms = Some(ms);
        } else if o.eq_ignore_ascii_case(b"count") && more > 0 {
            i += 1;
            a.count = args::int(argv[i])?.max(0);
        } else if o.eq_ignore_ascii_case(b"streams") && more > 0 {
            a.streams = i + 1;
            if !(argv.len() - a.streams).is_multiple_of(2) {
                return Err(err("Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            break;
        } else if o.eq_ignore_ascii_case(b"group") && more >= 2 {
            if !xreadgroup {
                return Err(err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            a.group = Some((argv[i + 1], argv[i + 2]));
            i += 2;
        } else if o.eq_ignore_ascii_case(b"noack") {
            if !xreadgroup {
                return Err(err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            a.noack = true;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if a.streams == 0 {
        return Err(CommandError::Syntax);
    }
    if xreadgroup && a.group.is_none() {
        return Err(err("Missing GROUP option for XREADGROUP"));
    }
    Ok(a)
}

fn xread(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    read(ctx, argv, false)
}

fn xreadgroup(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    read(ctx, argv, true)
}

fn read(ctx: &mut Ctx, argv: &[&[u8]], xreadgroup: bool) -> Result<(), CommandError> {
    let a = read_args(ctx, argv, xreadgroup)?;
    let n = (argv.len() - a.streams) / 2;
    let keys = &argv[a.streams..a.streams + n];
    let mut ids = Vec::with_capacity(n);
    for (i, &key) in keys.iter().enumerate() {
        let arg = argv[a.streams + n + i];
        let st = ctx.ks.get_stream(key)?;
        if let Some((group, _)) = a.group {
            if st.and_then(|s| s.groups.get(group)).is_none() {
                return Err(nogroup(key, group, " in XREADGROUP with GROUP option"));
            }
        }
        if arg == b"$" {
            if xreadgroup {
                return Err(err("The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            ids.push(st.map_or(StreamId::MIN, |s| s.last_id));
        } else if arg == b">" {
            if !xreadgroup {
                return Err(err("The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
            }
            ids.push(StreamId::MAX);
        } else {
            ids.push(strict_id(arg)?);
        }
    }
    let mut body = ReplyBuf::new();
    body.set_protocol(ctx.out.protocol());
    let mut served = 0;
    for (i, &key) in keys.iter().enumerate() {
        if serve_one(ctx, key, ids[i], &a, &mut body)? {
            served += 1;
        }
    }
    if served > 0 {
        if ctx.out.protocol() == 3 {
            ctx.out.map(served);
        } else {
            ctx.out.array(served);
        }
        ctx.out.raw(body.as_bytes());
        return Ok(());
    }
    let Some(ms) = a.block_ms else {
        ctx.out.null_array();
        return Ok(());
    };
    let deadline = match ms {
        0 => None,
        ms => Instant::now().checked_add(Duration::from_millis(ms as u64)),
    };
    let count = if a.count > 0 {
        a.count
    } else {
        BLOCKED_DEFAULT_COUNT
    }
    .to_string()
    .into_bytes();
    let waits: Vec<(Vec<u8>, Vec<u8>)> = keys
        .iter()
        .zip(&ids)
        .map(|(k, id)| {
            let id = if a.group.is_some() {
                b">".to_vec()
            } else {
                id.to_bytes()
            };
            (k.to_vec(), id)
        })
        .collect();
    let group = a.group.map(|(g, c)| (g.to_vec(), c.to_vec()));
    let noack = a.noack;
    block_with(
        ctx,
        keys,
        deadline,
        Served::Pass,
        move |shared, client, key, out| {
            let Some((_, id)) = waits.iter().find(|(k, _)| k == key) else {
                return false;
            };
            let mut args: Vec<&[u8]> = Vec::with_capacity(12);
            match &group {
                Some((g, c)) => {
                    args.extend([&b"XREADGROUP"[..], b"GROUP", g, c]);
                    if noack {
                        args.push(b"NOACK");
                    }
                }
                None => args.push(b"XREAD"),
            }
            args.extend([&b"COUNT"[..], &count, b"STREAMS", key, id]);
            let start = out.len();
            if run_for(shared, client, &args, out) {
                return true;
            }
            let reply = out.as_bytes()[start..].to_vec();
            out.buf.truncate(start);
            if group.is_some()
                && (reply.starts_with(b"-NOGROUP") || reply.starts_with(b"-WRONGTYPE"))
            {
                // The key or the group went while the client waited: it is told, as Redis does.
                let mut ty = ReplyBuf::new();
                run_for(shared, client, &[b"type", key], &mut ty);
                if ty.as_bytes() == b"+stream\r\n" {
                    out.error(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    );
                } else {
                    out.error("UNBLOCKED the stream key no longer exists");
                }
                return true;
            }
            false
        },
    );
    Ok(())
}

/// Serves one stream of an XREAD/XREADGROUP into `out` if it has something for the reader
/// (Redis's conditions to serve synchronously); true if it did.
fn serve_one(
    ctx: &mut Ctx,
    key: &[u8],
    gt: StreamId,
    a: &ReadArgs,
    out: &mut ReplyBuf,
) -> Result<bool, CommandError> {
    let Some(st) = ctx.ks.get_stream(key)? else {
        return Ok(false);
    };
    let Some((group, consumer)) = a.group else {
        if st.is_empty() || st.edge_id(false) <= gt {
            return Ok(false);
        }
        open_stream_reply(out, key);
        let start = gt.next().unwrap_or(StreamId::MIN);
        let it = st.range(start, StreamId::MAX, false);
        let entries = first(a.count, it);
        reply_entries(out, &entries);
        return Ok(true);
    };
    let history = gt != StreamId::MAX;
    let g = &st.groups[group];
    let gt = if history {
        gt
    } else if !st.is_empty() && st.edge_id(false) > g.last_id {
        g.last_id
    } else {
        return Ok(false);
    };
    open_stream_reply(out, key);
    let now = ctx.now_ms() as i64;
    let logs = ctx.shared.propagates();
    let st = ctx.ks.existing_stream_mut(key)?.expect("found above");
    let (gname, mut g) = st.groups.remove_entry(group).expect("found above");
    let mut records: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut created = false;
    match g.consumers.get_mut(consumer) {
        Some(c) => c.seen_time = now,
        None => {
            g.create_consumer(consumer, now);
            created = true;
            if a.noack && logs {
                records.push(vec![
                    b"XGROUP".to_vec(),
                    b"CREATECONSUMER".to_vec(),
                    key.to_vec(),
                    group.to_vec(),
                    consumer.to_vec(),
                ]);
            }
        }
    }
    let start = gt.next().unwrap_or(StreamId::MIN);
    if history {
        let ids: Vec<StreamId> = g.consumers[consumer]
            .pel
            .range(start..)
            .take(if a.count > 0 {
                a.count as usize
            } else {
                usize::MAX
            })
            .copied()
            .collect();
        out.array(ids.len());
        for id in ids {
            match st.get(id) {
                Some(e) => {
                    reply_entry(out, &e);
                    if let Some(n) = g.pel.get_mut(&id) {
                        n.delivery_time = now;
                        n.delivery_count += 1;
                    }
                }
                None => {
                    out.array(2);
                    reply_id(out, id);
                    out.null_array();
                }
            }
        }
    } else {
        let it = st.range(start, StreamId::MAX, false);
        let entries = first(a.count, it);
        reply_entries(out, &entries);
        let ids: Vec<StreamId> = entries.iter().map(|e| e.id).collect();
        let mut moved = false;
        for id in ids {
            if id > g.last_id {
                st.advance_group(&mut g, id);
                moved = true;
            }
            if !a.noack {
                g.deliver(id, consumer, now);
                if logs {
                    records.push(xclaim_record(key, group, id, &g.pel[&id], g.last_id));
                }
            }
        }
        if a.noack && moved && logs {
            records.push(setid_record(key, group, &g));
        }
    }
    st.groups.insert(gname, g);
    group_effects(ctx, key, created, records);
    Ok(true)
}

/// A served stream's key: the head of its [key, entries] pair (RESP2) or map entry (RESP3).
fn open_stream_reply(out: &mut ReplyBuf, key: &[u8]) {
    if out.protocol() != 3 {
        out.array(2);
    }
    out.bulk(key);
}

/// Redis's streamPropagateXCLAIM: the entry's pending state, replayable as is.
fn xclaim_record(
    key: &[u8],
    group: &[u8],
    id: StreamId,
    nack: &crate::store::stream::Nack,
    last_id: StreamId,
) -> Vec<Vec<u8>> {
    vec![
        b"XCLAIM".to_vec(),
        key.to_vec(),
        group.to_vec(),
        nack.consumer.to_vec(),
        b"0".to_vec(),
        id.to_bytes(),
        b"TIME".to_vec(),
        nack.delivery_time.to_string().into_bytes(),
        b"RETRYCOUNT".to_vec(),
        (nack.delivery_count as i64).to_string().into_bytes(),
        b"FORCE".to_vec(),
        b"JUSTID".to_vec(),
        b"LASTID".to_vec(),
        last_id.to_bytes(),
    ]
}

/// Redis's streamPropagateGroupID.
fn setid_record(key: &[u8], group: &[u8], g: &Group) -> Vec<Vec<u8>> {
    vec![
        b"XGROUP".to_vec(),
        b"SETID".to_vec(),
        key.to_vec(),
        group.to_vec(),
        g.last_id.to_bytes(),
        b"ENTRIESREAD".to_vec(),
        g.entries_read.to_string().into_bytes(),
    ]
}

fn xgroup(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let sub = argv[1].to_ascii_lowercase();
    let (create, setid) = (sub == b"create", sub == b"setid");
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    let mut i = 5;
    while i < argv.len() {
        if create && argv[i].eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid)
            && argv[i].eq_ignore_ascii_case(b"entriesread")
            && i + 1 < argv.len()
        {
            entries_read = args::int(argv[i + 1])?;
            if entries_read < 0 && entries_read != INVALID_ENTRIES_READ {
                return Err(err("value for ENTRIESREAD must be positive or -1"));
            }
            i += 2;
        } else {
            return Err(subcommand_syntax(argv));
        }
    }
    let (key, group) = (argv[2], argv[3]);
    let exists = ctx.ks.get_stream(key)?.is_some();
    if !mkstream {
        let Some(st) = ctx.ks.get_stream(key)? else {
            return Err(err("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
        };
        if !st.groups.contains_key(group)
            && matches!(&sub[..], b"setid" | b"createconsumer" | b"delconsumer")
        {
            return Err(no_such_group(key, group));
        }
    }
    let now = ctx.now_ms() as i64;
    match &sub[..] {
        b"create" if argv.len() <= 8 => {
            let id = if argv[4] == b"$" {
                ctx.ks.get_stream(key)?.map_or(StreamId::MIN, |s| s.last_id)
            } else {
                strict_id(argv[4])?
            };
            let st = if exists {
                ctx.ks.existing_stream_mut(key)?.expect("exists")
            } else {
                ctx.ks.stream_or_new(key)?
            };
            if st.groups.contains_key(group) {
                return Err(CommandError::Coded(
                    "BUSYGROUP Consumer Group name already exists".into(),
                ));
            }
            st.groups.insert(group.into(), Group::new(id, entries_read));
            ctx.out.ok();
            ctx.dirty(1);
            ctx.notify(STREAM, "xgroup-create", key);
        }
        b"setid" if argv.len() == 5 || argv.len() == 7 => {
            let st = ctx.ks.existing_stream_mut(key)?.expect("exists");
            let id = if argv[4] == b"$" {
                st.last_id
            } else {
                parse_id(argv[4], 0, false)?
            };
            let g = st.groups.get_mut(group).expect("checked");
            g.last_id = id;
            g.entries_read = entries_read;
            ctx.out.ok();
            ctx.dirty(1);
            ctx.notify(STREAM, "xgroup-setid", key);
        }
        b"destroy" if argv.len() == 4 => {
            let st = ctx.ks.existing_stream_mut(key)?.expect("exists");
            if st.groups.remove(group).is_some() {
                ctx.out.int(1);
                ctx.dirty(1);
                ctx.notify(STREAM, "xgroup-destroy", key);
                // Its blocked readers are told.
                ctx.shared.blocking.signal(ctx.ks.db, key);
            } else {
                ctx.out.int(0);
            }
        }
        b"createconsumer" if argv.len() == 5 => {
            let st = ctx.ks.existing_stream_mut(key)?.expect("exists");
            let g = st.groups.get_mut(group).expect("checked");
            let created = g.create_consumer(argv[4], now);
            ctx.out.int(i64::from(created));
            if created {
                ctx.dirty(1);
                ctx.notify(STREAM, "xgroup-createconsumer", key);
            }
        }
        b"delconsumer" if argv.len() == 5 => {
            let st = ctx.ks.existing_stream_mut(key)?.expect("exists");
            let g = st.groups.get_mut(group).expect("checked");
            match g.delete_consumer(argv[4]) {
                Some(pending) => {
                    ctx.out.int(pending as i64);
                    ctx.dirty(1);
                    ctx.notify(STREAM, "xgroup-delconsumer", key);
                }
                None => ctx.out.int(0),
            }
        }
        _ => return Err(subcommand_syntax(argv)),
    }
    Ok(())
}

fn xack(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let key = argv[1];
    let has_group = match ctx.ks.get_stream(key)? {
        Some(st) => st.groups.contains_key(argv[2]),
        None => false,
    };
    if !has_group {
        ctx.out.int(0);
        return Ok(());
    }
    let ids = strict_ids(&argv[3..])?;
    let st = ctx.ks.existing_stream_mut(key)?.expect("checked");
    let g = st.groups.get_mut(argv[2]).expect("checked");
    let acked = ids.into_iter().filter(|&id| g.ack(id)).count();
    ctx.dirty(acked as u64);
    ctx.out.int(acked as i64);
    Ok(())
}

fn xpending(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let argc = argv.len();
    let just_info = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CommandError::Syntax);
    }
    let (mut start, mut end, mut count, mut min_idle) = (StreamId::MIN, StreamId::MAX, 0i64, 0i64);
    let mut consumer: Option<&[u8]> = None;
    if argc >= 6 {
        let mut at = 3;
        if argv[3].eq_ignore_ascii_case(b"idle") {
            min_idle = args::int(argv[4])?;
            if argc < 8 {
                return Err(CommandError::Syntax);
            }
            at += 2;
        }
        count = args::int(argv[at + 2])?.max(0);
        start = start_bound(argv[at])?;
        end = end_bound(argv[at + 1])?;
        if at + 3 < argc {
            consumer = Some(argv[at + 3]);
        }
    }
    let (key, group) = (argv[1], argv[2]);
    let Some(g) = ctx.ks.get_stream(key)?.and_then(|s| s.groups.get(group)) else {
        return Err(nogroup(key, group, ""));
    };
    let out = &mut *ctx.out;
    if just_info {
        out.array(4);
        out.int(g.pel.len() as i64);
        match (g.pel.first_key_value(), g.pel.last_key_value()) {
            (Some((first, _)), Some((last, _))) => {
                reply_id(out, *first);
                reply_id(out, *last);
                let with: Vec<_> = g
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .collect();
                out.array(with.len());
                for (name, c) in with {
                    out.array(2);
                    out.bulk(name);
                    out.bulk_int(c.pel.len() as i64);
                }
            }
            _ => {
                out.null_bulk();
                out.null_bulk();
                out.null_array();
            }
        }
        return Ok(());
    }
    let now = crate::util::clock::now_ms() as i64;
    let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
        Some(name) => match g.consumers.get(name) {
            Some(c) => Box::new(c.pel.range(start..).copied()),
            None => {
                out.array(0);
                return Ok(());
            }
        },
        None => Box::new(g.pel.range(start..).map(|(id, _)| *id)),
    };
    let mut rows = Vec::new();
    for id in ids {
        if count == 0 || id > end {
            break;
        }
        let nack = &g.pel[&id];
        if min_idle != 0 && now - nack.delivery_time < min_idle {
            continue;
        }
        rows.push((id, nack));
        count -= 1;
    }
    out.array(rows.len());
    for (id, nack) in rows {
        out.array(4);
        reply_id(out, id);
        out.bulk(&nack.consumer);
        out.int((now - nack.delivery_time).max(0));
        out.int(nack.delivery_count as i64);
    }
    Ok(())
}

/// Parses an integer option of XCLAIM/XAUTOCLAIM with Redis's own message for it.
fn int_or(arg: &[u8], msg: &str) -> Result<i64, CommandError> {
    args::int(arg).map_err(|_| err(msg))
}

fn xclaim(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (key, group, name) = (argv[1], argv[2], argv[3]);
    if ctx
        .ks
        .get_stream(key)?
        .and_then(|s| s.groups.get(group))
        .is_none()
    {
        return Err(nogroup(key, group, ""));
    }
    let min_idle = int_or(argv[4], "Invalid min-idle-time argument for XCLAIM")?.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < argv.len() {
        match StreamId::parse(argv[j], 0, true, false) {
            Some((id, _)) => ids.push((id, j)),
            None => break,
        }
        j += 1;
    }
    let now = ctx.now_ms() as i64;
    let (mut force, mut justid) = (false, false);
    let mut retry: i64 = -1;
    let mut time: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let o = argv[j];
        if o.eq_ignore_ascii_case(b"force") {
            force = true;
        } else if o.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else if o.eq_ignore_ascii_case(b"idle") && more > 0 {
            j += 1;
            time = now - int_or(argv[j], "Invalid IDLE option argument for XCLAIM")?;
        } else if o.eq_ignore_ascii_case(b"time") && more > 0 {
            j += 1;
            time = int_or(argv[j], "Invalid TIME option argument for XCLAIM")?;
        } else if o.eq_ignore_ascii_case(b"retrycount") && more > 0 {
            j += 1;
            retry = int_or(argv[j], "Invalid RETRYCOUNT option argument for XCLAIM")?;
        } else if o.eq_ignore_ascii_case(b"lastid") && more > 0 {
            j += 1;
            last_id = strict_id(argv[j])?;
        } else {
            return Err(err(&format!("Unrecognized XCLAIM option '{}'", s(o))));
        }
        j += 1;
    }
    let delivery = if time == -1 || time < 0 || time > now {
        now
    } else {
        time
    };
    let logs = ctx.shared.propagates();
    let st = ctx.ks.existing_stream_mut(key)?.expect("checked");
    let (gname, mut g) = st.groups.remove_entry(group).expect("checked");
    let mut propagate_last = false;
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last = true;
    }
    let mut records = Vec::new();
    let mut created = false;
    let mut have_consumer = false;
    let mut claimed: Vec<StreamId> = Vec::new();
    for (id, _) in ids {
        let pending = g.pel.contains_key(&id);
        if !st.exists(id) {
            if pending {
                if logs {
                    records.push(xclaim_record(key, group, id, &g.pel[&id], g.last_id));
                }
                propagate_last = false;
                g.ack(id);
            }
            continue;
        }
        let forced = force && !pending;
        if !pending && !forced {
            continue;
        }
        if !forced && min_idle != 0 && now - g.pel[&id].delivery_time < min_idle {
            continue;
        }
        if !have_consumer {
            created = claimant(&mut g, name, now);
            have_consumer = true;
        }
        if forced {
            g.pel.insert(
                id,
                // Counted as delivered once, as Redis's streamCreateNACK starts it.
                crate::store::stream::Nack {
                    delivery_time: delivery,
                    delivery_count: 1,
                    consumer: name.into(),
                },
            );
        }
        g.reassign(id, name);
        let nack = g.pel.get_mut(&id).expect("pending");
        nack.delivery_time = delivery;
        if retry >= 0 {
            nack.delivery_count = retry as u64;
        } else if !justid {
            nack.delivery_count += 1;
        }
        claimed.push(id);
        if logs {
            records.push(xclaim_record(key, group, id, &g.pel[&id], g.last_id));
        }
        propagate_last = false;
    }
    if propagate_last && logs {
        records.push(setid_record(key, group, &g));
    }
    let out = &mut *ctx.out;
    reply_claimed(out, st, &claimed, justid);
    st.groups.insert(gname, g);
    group_effects(ctx, key, created, records);
    Ok(())
}

fn xautoclaim(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (key, group, name) = (argv[1], argv[2], argv[3]);
    let min_idle = int_or(argv[4], "Invalid min-idle-time argument for XAUTOCLAIM")?.max(0);
    let start = start_bound(argv[5])?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if argv[j].eq_ignore_ascii_case(b"count") && more > 0 {
            let max = i64::MAX / 16;
            count = match args::int(argv[j + 1]) {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => return Err(err("COUNT must be > 0")),
            };
            j += 1;
        } else if argv[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    if ctx
        .ks
        .get_stream(key)?
        .and_then(|s| s.groups.get(group))
        .is_none()
    {
        return Err(nogroup(key, group, ""));
    }
    let now = ctx.now_ms() as i64;
    let logs = ctx.shared.propagates();
    let st = ctx.ks.existing_stream_mut(key)?.expect("checked");
    let (gname, mut g) = st.groups.remove_entry(group).expect("checked");
    let mut attempts = count.saturating_mul(10);
    let mut records = Vec::new();
    let mut deleted = Vec::new();
    let mut claimed = Vec::new();
    let mut created = false;
    let mut have_consumer = false;
    let mut cursor = start;
    let next: Option<StreamId>;
    loop {
        let Some((&id, _)) = g.pel.range(cursor..).next() else {
            next = None;
            break;
        };
        if attempts == 0 || count == 0 {
            next = Some(id);
            break;
        }
        attempts -= 1;
        cursor = match id.next() {
            Some(n) => n,
            None => StreamId::MAX,
        };
        if !st.exists(id) {
            if logs {
                records.push(xclaim_record(key, group, id, &g.pel[&id], g.last_id));
            }
            g.ack(id);
            deleted.push(id);
            count -= 1;
        } else if min_idle != 0 && now - g.pel[&id].delivery_time < min_idle {
            // Not idle long enough.
        } else {
            if !have_consumer {
                created = claimant(&mut g, name, now);
                have_consumer = true;
            }
            g.reassign(id, name);
            let nack = g.pel.get_mut(&id).expect("pending");
            nack.delivery_time = now;
            if !justid {
                nack.delivery_count += 1;
            }
            claimed.push(id);
            count -= 1;
            if logs {
                records.push(xclaim_record(key, group, id, &g.pel[&id], g.last_id));
            }
        }
        if id == StreamId::MAX {
            next = None;
            break;
        }
    }
    let out = &mut *ctx.out;
    out.array(3);
    reply_id(out, next.unwrap_or(StreamId::MIN));
    reply_claimed(out, st, &claimed, justid);
    out.array(deleted.len());
    for &id in &deleted {
        reply_id(out, id);
    }
    st.groups.insert(gname, g);
    group_effects(ctx, key, created, records);
    Ok(())
}

fn xinfo(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let sub = argv[1].to_ascii_lowercase();
    let key = argv[2];
    let Some(st) = ctx.ks.get_stream(key)? else {
        return Err(CommandError::NoSuchKey);
    };
    let out = &mut *ctx.out;
    let now = crate::util::clock::now_ms() as i64;
    match &sub[..] {
        b"consumers" if argv.len() == 4 => {
            let Some(g) = st.groups.get(argv[3]) else {
                return Err(no_such_group(key, argv[3]));
            };
            out.array(g.consumers.len());
            for (name, c) in &g.consumers {
                out.map(3);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"pending");
                out.int(c.pel.len() as i64);
                out.bulk(b"idle");
                out.int((now - c.seen_time).max(0));
            }
        }
        b"groups" if argv.len() == 3 => {
            out.array(st.groups.len());
            for (name, g) in &st.groups {
                out.map(6);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"consumers");
                out.int(g.consumers.len() as i64);
                out.bulk(b"pending");
                out.int(g.pel.len() as i64);
                out.bulk(b"last-delivered-id");
                reply_id(out, g.last_id);
                group_counters(out, st, g);
            }
        }
        b"stream" => stream_info(out, st, argv)?,
        _ => return Err(subcommand_syntax(argv)),
    }
    Ok(())
}

/// A group's entries-read and lag (null when unknown).
fn group_counters(out: &mut ReplyBuf, st: &Stream, g: &Group) {
    out.bulk(b"entries-read");
    if g.entries_read != INVALID_ENTRIES_READ {
        out.int(g.entries_read);
    } else {
        out.null_bulk();
    }
    out.bulk(b"lag");
    match st.lag(g) {
        Some(l) => out.int(l),
        None => out.null_bulk(),
    }
}

fn stream_info(out: &mut ReplyBuf, st: &Stream, argv: &[&[u8]]) -> Result<(), CommandError> {
    let opts = &argv[3..];
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if (opts.len() != 1 && opts.len() != 3) || !opts[0].eq_ignore_ascii_case(b"full") {
            return Err(subcommand_syntax(argv));
        }
        if opts.len() == 3 {
            if !opts[1].eq_ignore_ascii_case(b"count") {
                return Err(subcommand_syntax(argv));
            }
            count = args::int(opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
        full = true;
    }
    out.map(if full { 9 } else { 10 });
    out.bulk(b"length");
    out.int(st.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(st.node_count() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(st.rax_nodes() as i64);
    out.bulk(b"last-generated-id");
    reply_id(out, st.last_id);
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, st.max_deleted);
    out.bulk(b"entries-added");
    out.int(st.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, st.first_id);
    let limit = |n: usize| count == 0 || (n as i64) < count;
    if !full {
        out.bulk(b"groups");
        out.int(st.groups.len() as i64);
        out.bulk(b"first-entry");
        match st.range(StreamId::MIN, StreamId::MAX, false).next() {
            Some(e) => reply_entry(out, &e),
            None => out.null_bulk(),
        }
        out.bulk(b"last-entry");
        match st.range(StreamId::MIN, StreamId::MAX, true).next() {
            Some(e) => reply_entry(out, &e),
            None => out.null_bulk(),
        }
        return Ok(());
    }
    out.bulk(b"entries");
    let it = st.range(StreamId::MIN, StreamId::MAX, false);
    let entries = first(count, it);
    reply_entries(out, &entries);
    out.bulk(b"groups");
    out.array(st.groups.len());
    for (name, g) in &st.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        group_counters(out, st, g);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let pel: Vec<_> = g
            .pel
            .iter()
            .enumerate()
            .take_while(|(i, _)| limit(*i))
            .map(|(_, p)| p)
            .collect();
        out.array(pel.len());
        for (id, nack) in pel {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&nack.consumer);
            out.int(nack.delivery_time);
            out.int(nack.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time);
            out.bulk(b"pel-count");
            out.int(c.pel.len() as i64);
            out.bulk(b"pending");
            let ids: Vec<_> = c
                .pel
                .iter()
                .enumerate()
                .take_while(|(i, _)| limit(*i))
                .map(|(_, id)| *id)
                .collect();
            out.array(ids.len());
            for id in ids {
                let nack = &g.pel[&id];
                out.array(3);
                reply_id(out, id);
                out.int(nack.delivery_time);
                out.int(nack.delivery_count as i64);
            }
        }
    }
    Ok(())
}
