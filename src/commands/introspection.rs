//! SLOWLOG, LATENCY and MONITOR (Redis's slowlog.c, latency.c, replication.c's monitor
//! feed), over what `ops` collects.

use std::sync::atomic::Ordering::Relaxed;

use super::flags::*;
use super::{args, dispatch_sub, help, CommandError, CommandSpec, Ctx, Keys};
use crate::ops;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("slowlog", -2, 0, Keys::None, dispatch_sub).container(SLOWLOG_SUBS, SLOWLOG_HELP),
    cmd!("latency", -2, 0, Keys::None, dispatch_sub).container(LATENCY_SUBS, LATENCY_HELP),
    cmd!(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        monitor
    ),
];

const INFO: u32 = ADMIN | LOADING | STALE;
const LATENCY: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

const SLOWLOG_SUBS: &[CommandSpec] = &[
    cmd!("slowlog|get", -2, INFO, Keys::None, slowlog_get),
    cmd!("slowlog|len", 2, INFO, Keys::None, slowlog_len),
    cmd!("slowlog|reset", 2, INFO, Keys::None, slowlog_reset),
    cmd!("slowlog|help", 2, LOADING | STALE, Keys::None, help),
];

const LATENCY_SUBS: &[CommandSpec] = &[
    cmd!("latency|latest", 2, LATENCY, Keys::None, latency_latest),
    cmd!("latency|history", 3, LATENCY, Keys::None, latency_history),
    cmd!("latency|reset", -2, LATENCY, Keys::None, latency_reset),
    cmd!("latency|graph", 3, LATENCY, Keys::None, latency_graph),
    cmd!("latency|doctor", 2, LATENCY, Keys::None, latency_doctor),
    cmd!(
        "latency|histogram",
        -2,
        LATENCY,
        Keys::None,
        latency_histogram
    ),
    cmd!("latency|help", 2, LOADING | STALE, Keys::None, help),
];

fn slowlog_get(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() > 3 {
        return Err(CommandError::subcommand_syntax("slowlog", argv));
    }
    let bad = || CommandError::Err("count should be greater than or equal to -1".into());
    let count = match argv.get(2) {
        None => 10,
        Some(a) => match args::int(a).map_err(|_| bad())? {
            -1 => usize::MAX,
            n if n < -1 => return Err(bad()),
            n => n as usize,
        },
    };
    let n = count.min(ctx.shared.ops.slowlog.len());
    let out = &mut *ctx.out;
    out.array(n);
    ctx.shared.ops.slowlog.newest(n, |e| {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.time as i64);
        out.int(e.duration as i64);
        out.array(e.argv.len());
        for a in &e.argv {
            out.bulk(a);
        }
        out.bulk(e.peer.as_bytes());
        out.bulk(&e.name);
    });
    Ok(())
}

fn slowlog_len(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.int(ctx.shared.ops.slowlog.len() as i64);
    Ok(())
}

fn slowlog_reset(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.shared.ops.slowlog.reset();
    ctx.out.ok();
    Ok(())
}

fn latency_latest(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let all = ctx.shared.ops.latency.all();
    ctx.out.array(all.len());
    for (event, s) in all {
        let last = s.samples.last().copied().unwrap_or_default();
        ctx.out.array(4);
        ctx.out.bulk(event.as_bytes());
        ctx.out.int(last.time as i64);
        ctx.out.int(last.ms as i64);
        ctx.out.int(s.max as i64);
    }
    Ok(())
}

fn latency_history(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let samples = ctx
        .shared
        .ops
        .latency
        .series(argv[2])
        .map(|(_, s)| s.samples)
        .unwrap_or_default();
    ctx.out.array(samples.len());
    for x in samples {
        ctx.out.array(2);
        ctx.out.int(x.time as i64);
        ctx.out.int(x.ms as i64);
    }
    Ok(())
}

fn latency_reset(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let l = &ctx.shared.ops.latency;
    let n = if argv.len() == 2 {
        l.reset(None)
    } else {
        argv[2..].iter().map(|e| l.reset(Some(e))).sum()
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn latency_graph(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some((event, s)) = ctx.shared.ops.latency.series(argv[2]) else {
        return Err(CommandError::Err(format!(
            "No samples available for event '{}'",
            String::from_utf8_lossy(argv[2])
        )));
    };
    let text = ops::latency::graph(event, &s);
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

fn latency_doctor(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let s = ops::settings();
    let text = ops::latency::doctor(
        &ctx.shared.ops.latency,
        s.slowlog_slower_than(),
        s.latency_threshold(),
    );
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// LATENCY HISTOGRAM [command ...]: each command's calls and cumulative latency buckets; a
/// container names its subcommands; unknown names are skipped.
fn latency_histogram(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let stats = ops::cmdstats::snapshot(true);
    let wanted: Vec<&ops::cmdstats::CmdStat> = if argv.len() == 2 {
        stats.iter().collect()
    } else {
        let mut v = Vec::new();
        for a in &argv[2..] {
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            for s in &stats {
                let container = s.name.split('|').next() == Some(name.as_str());
                if (s.name == name || container) && !v.iter().any(|x: &&_| std::ptr::eq(*x, s)) {
                    v.push(s);
                }
            }
        }
        v
    };
    let with: Vec<_> = wanted
        .into_iter()
        .filter_map(|s| s.hist.as_ref().map(|h| (s.name, h)))
        .collect();
    ctx.out.map(with.len());
    for (name, h) in with {
        ctx.out.bulk(name.as_bytes());
        ctx.out.map(2);
        ctx.out.bulk(b"calls");
        ctx.out.int(h.total as i64);
        ctx.out.bulk(b"histogram_usec");
        let buckets = h.log_buckets();
        ctx.out.map(buckets.len());
        for (us, n) in buckets {
            ctx.out.int(us as i64);
            ctx.out.int(n as i64);
        }
    }
    Ok(())
}

/// MONITOR: from now on the client receives every command run (see `ops::monitor`).
fn monitor(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let h = &ctx.client.handle;
    if !h.monitor.swap(true, Relaxed) {
        ctx.shared.ops.monitors.add(h.clone());
    }
    ctx.out.ok();
    Ok(())
}

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];
