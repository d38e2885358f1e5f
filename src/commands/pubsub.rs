//! Pub/Sub commands (Redis's pubsub.c): the subscribe family, PUBLISH, SPUBLISH and PUBSUB,
//! over the registry in `notify::pubsub`.
//!
//! Confirmations and messages are pushes: RESP3 `>` frames, RESP2 arrays, by `ReplyBuf::push`.

use super::flags::*;
use super::{dispatch_sub, help, CommandError, CommandSpec, Ctx, Keys};
use crate::notify::pubsub::{Kind, Publisher};

/// Flags of the commands a RESP2 client in subscribed mode may send.
const SUBSCRIBING: u32 = PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("subscribe", -2, SUBSCRIBING, Keys::None, subscribe),
    cmd!("unsubscribe", -1, SUBSCRIBING, Keys::None, unsubscribe),
    cmd!("psubscribe", -2, SUBSCRIBING, Keys::None, psubscribe),
    cmd!("punsubscribe", -1, SUBSCRIBING, Keys::None, punsubscribe),
    cmd!("ssubscribe", -2, SUBSCRIBING, Keys::None, ssubscribe),
    cmd!("sunsubscribe", -1, SUBSCRIBING, Keys::None, sunsubscribe),
    cmd!(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        Keys::None,
        publish
    ),
    cmd!(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        Keys::None,
        spublish
    ),
    cmd!("pubsub", -2, 0, Keys::None, dispatch_sub).container(SUBCOMMANDS, HELP),
];

const INFO: u32 = PUBSUB | LOADING | STALE;

const SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("pubsub|channels", -2, INFO, Keys::None, channels),
    cmd!("pubsub|numsub", -2, INFO, Keys::None, numsub),
    cmd!("pubsub|numpat", 2, INFO, Keys::None, numpat),
    cmd!("pubsub|shardchannels", -2, INFO, Keys::None, shardchannels),
    cmd!("pubsub|shardnumsub", -2, INFO, Keys::None, shardnumsub),
    cmd!("pubsub|help", 2, LOADING | STALE, Keys::None, help),
];

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// One (un)subscribe confirmation: `[word, channel or null, count]`.
/// Under CLIENT REPLY OFF/SKIP it still reaches the client, as Redis's CLIENT_PUSHING: through
/// the outbox, which the silencing does not touch.
fn confirm(ctx: &mut Ctx, word: &[u8], channel: Option<&[u8]>, count: usize) {
    let write = |out: &mut crate::resp::ReplyBuf| {
        out.push(3);
        out.bulk(word);
        out.bulk_opt(channel);
        out.int(count as i64);
    };
    if ctx.client.reply.silenced() {
        let mut out = crate::resp::ReplyBuf::new();
        out.set_protocol(ctx.out.protocol());
        write(&mut out);
        ctx.client.handle.deliver(&out.buf);
    } else {
        write(ctx.out);
    }
}

/// CLIENT LIST's counts follow the client's subscriptions.
fn show_counts(ctx: &mut Ctx) {
    let subs = &ctx.client.subs;
    let mut st = ctx.client.handle.state.lock();
    st.sub = subs.count(Kind::Channel) - subs.pattern_count();
    st.psub = subs.pattern_count();
    st.ssub = subs.count(Kind::Shard);
}

fn subscribe_kind(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> Result<(), CommandError> {
    for ch in &argv[1..] {
        let handle = ctx.client.handle.clone();
        ctx.shared
            .pubsub
            .subscribe(&mut ctx.client.subs, &handle, kind, ch);
        let n = ctx.client.subs.count(kind);
        confirm(ctx, kind.subscribe_word(), Some(ch), n);
    }
    show_counts(ctx);
    Ok(())
}

fn unsubscribe_kind(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> Result<(), CommandError> {
    let named: Vec<Box<[u8]>> = if argv.len() > 1 {
        argv[1..].iter().map(|c| (*c).into()).collect()
    } else {
        ctx.client.subs.channels(kind)
    };
    if named.is_empty() {
        let n = ctx.client.subs.count(kind);
        confirm(ctx, kind.unsubscribe_word(), None, n);
    }
    for ch in named {
        let handle = ctx.client.handle.clone();
        ctx.shared
            .pubsub
            .unsubscribe(&mut ctx.client.subs, &handle, kind, &ch);
        let n = ctx.client.subs.count(kind);
        confirm(ctx, kind.unsubscribe_word(), Some(&ch), n);
    }
    show_counts(ctx);
    Ok(())
}

fn subscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    subscribe_kind(ctx, argv, Kind::Channel)
}

fn ssubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // As Redis: a client that cannot wait cannot subscribe to shard channels (inside EXEC,
    // where plain SUBSCRIBE is allowed).
    if ctx.client.deny_blocking {
        return Err(CommandError::Err(
            "SSUBSCRIBE isn't allowed for a DENY BLOCKING client".into(),
        ));
    }
    subscribe_kind(ctx, argv, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    unsubscribe_kind(ctx, argv, Kind::Channel)
}

fn sunsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    unsubscribe_kind(ctx, argv, Kind::Shard)
}

fn psubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    for pat in &argv[1..] {
        let handle = ctx.client.handle.clone();
        ctx.shared
            .pubsub
            .psubscribe(&mut ctx.client.subs, &handle, pat);
        let n = ctx.client.subs.count(Kind::Channel);
        confirm(ctx, b"psubscribe", Some(pat), n);
    }
    show_counts(ctx);
    Ok(())
}

fn punsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let named: Vec<Box<[u8]>> = if argv.len() > 1 {
        argv[1..].iter().map(|c| (*c).into()).collect()
    } else {
        ctx.client.subs.patterns()
    };
    if named.is_empty() {
        let n = ctx.client.subs.count(Kind::Channel);
        confirm(ctx, b"punsubscribe", None, n);
    }
    for pat in named {
        let handle = ctx.client.handle.clone();
        ctx.shared
            .pubsub
            .punsubscribe(&mut ctx.client.subs, &handle, &pat);
        let n = ctx.client.subs.count(Kind::Channel);
        confirm(ctx, b"punsubscribe", Some(&pat), n);
    }
    show_counts(ctx);
    Ok(())
}

/// Publishes from a command: the receivers' limit from the config, and the publisher's own
/// messages (if it listens) straight into its reply.
pub fn publish_from(ctx: &mut Ctx, kind: Kind, channel: &[u8], message: &[u8]) -> usize {
    let limit = ctx.shared.config.read().client_output_buffer_limit[2].hard;
    let me = Publisher {
        id: ctx.client.id,
        out: ctx.out,
    };
    ctx.shared
        .pubsub
        .publish(kind, channel, message, limit, Some(me))
}

fn publish(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = publish_from(ctx, Kind::Channel, argv[1], argv[2]);
    to_replicas(ctx, argv);
    ctx.out.int(n as i64);
    Ok(())
}

fn spublish(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let n = publish_from(ctx, Kind::Shard, argv[1], argv[2]);
    to_replicas(ctx, argv);
    ctx.out.int(n as i64);
    Ok(())
}

/// A message reaches a replica's subscribers too: Redis carries PUBLISH to its replicas
/// (and not to the AOF, which replays no messages).
fn to_replicas(ctx: &mut Ctx, argv: &[&[u8]]) {
    let backlog = &ctx.shared.repl.backlog;
    if backlog.is_feeding() {
        let mut record = Vec::new();
        crate::resp::reply::encode_command(&mut record, argv);
        backlog.feed(ctx.client.db, &record);
    }
}

fn list_channels(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> Result<(), CommandError> {
    if argv.len() > 3 {
        return Err(CommandError::subcommand_syntax("pubsub", argv));
    }
    let list = ctx.shared.pubsub.channel_list(kind, argv.get(2).copied());
    ctx.out.array(list.len());
    for c in list {
        ctx.out.bulk(&c);
    }
    Ok(())
}

fn count_subscribers(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> Result<(), CommandError> {
    // As Redis: a flat array in both protocols.
    ctx.out.array(2 * (argv.len() - 2));
    for ch in &argv[2..] {
        ctx.out.bulk(ch);
        ctx.out.int(ctx.shared.pubsub.numsub(kind, ch) as i64);
    }
    Ok(())
}

fn channels(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    list_channels(ctx, argv, Kind::Channel)
}

fn shardchannels(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    list_channels(ctx, argv, Kind::Shard)
}

fn numsub(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    count_subscribers(ctx, argv, Kind::Channel)
}

fn shardnumsub(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    count_subscribers(ctx, argv, Kind::Shard)
}

fn numpat(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.int(ctx.shared.pubsub.numpat() as i64);
    Ok(())
}
