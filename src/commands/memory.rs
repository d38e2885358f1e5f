//! MEMORY (Redis's object.c `memoryCommand`): USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP,
//! and the overhead figures INFO's memory section shares with STATS.
//!
//! USAGE estimates what rudis holds for a key: its map entry, the key's and value's heap
//! blocks as the allocator carves them, and for a container its elements, from `SAMPLES` of
//! them (5; 0: all) scaled to its length, as Redis's objectComputeSize samples.

use super::flags::*;
use super::{dispatch_sub, help, CommandError, CommandSpec, Ctx, Keys};
use crate::resp::parse::parse_i64;
use crate::shared::Shared;
use crate::store::hash::{Fields, Hash};
use crate::store::{Bytes, Value};
use crate::util::alloc;

const KEY2: Keys = Keys::Range {
    first: 2,
    last: 2,
    step: 1,
};

/// The container locks the shard of USAGE's key (argument 2); the others name none.
pub static COMMANDS: &[CommandSpec] =
    &[cmd!("memory", -2, 0, KEY2, dispatch_sub).container(SUBCOMMANDS, HELP)];

const SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("memory|doctor", 2, 0, Keys::None, doctor),
    cmd!("memory|help", 2, LOADING | STALE, Keys::None, help),
    cmd!("memory|malloc-stats", 2, 0, Keys::None, malloc_stats),
    cmd!("memory|purge", 2, 0, Keys::None, purge),
    cmd!("memory|stats", 2, 0, Keys::None, stats),
    cmd!("memory|usage", -3, READONLY, KEY2, usage),
];

const HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// What glibc's malloc takes for a block of `n` bytes (see `util::alloc`).
fn block(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

/// The heap a byte string holds beyond its 16 inline bytes.
fn bytes_heap(b: &[u8]) -> usize {
    if b.len() <= 15 {
        0
    } else {
        block(b.len().next_power_of_two())
    }
}

/// Sums `cost` over at most `samples` of `items` and scales it to `len` of them.
fn sampled<T>(
    items: impl Iterator<Item = T>,
    len: usize,
    samples: usize,
    cost: impl Fn(T) -> usize,
) -> usize {
    let (mut sum, mut n) = (0usize, 0usize);
    for it in items.take(samples) {
        sum += cost(it);
        n += 1;
    }
    (sum * len).checked_div(n).unwrap_or(0)
}

/// An estimate of the bytes `v` holds outside its 16-byte slot in the map entry.
pub fn value_usage(v: &Value, samples: usize) -> usize {
    match v {
        Value::Str(s) => bytes_heap(s),
        Value::Hash(h) => {
            let pair = |(f, v): (&[u8], &[u8])| bytes_heap(f) + bytes_heap(v);
            let items = sampled(h.iter(), h.len(), samples, pair);
            block(std::mem::size_of::<Hash>())
                + items
                + match h.fields() {
                    Fields::Small(p) => block(p.capacity() * 32),
                    // The pair, and its slot in the index.
                    Fields::Large(_) => h.len() * (32 + 9),
                }
        }
        Value::List(l) => {
            // Packed as a listpack: the bytes, a header and a back-length each.
            let elem = |e: crate::store::list::Elem| match e {
                crate::store::list::Elem::Bytes(b) => b.len() + 2,
                crate::store::list::Elem::Int(_) => 9,
            };
            let packed = sampled(l.iter(), l.len(), samples, elem);
            // Nodes of about 8 KB, each a block and a link.
            block(64) + packed + packed.div_ceil(8192) * 64
        }
        Value::Set(s) => {
            let elem = |m: crate::store::set::Member| match m {
                crate::store::set::Member::Int(_) => 8,
                crate::store::set::Member::Bytes(b) => 16 + 9 + bytes_heap(b),
            };
            block(64) + sampled(s.iter(), s.len(), samples, elem)
        }
        Value::ZSet(z) => {
            let packed = z.encoding() == "listpack";
            let elem = |(m, _): (&[u8], f64)| {
                if packed {
                    m.len() + 11
                } else {
                    // The member and score in the table, the ordered index's copy.
                    16 + 8 + 9 + 24 + bytes_heap(m)
                }
            };
            block(64) + sampled(z.iter(), z.len(), samples, elem)
        }
        Value::Stream(st) => block(std::mem::size_of::<crate::store::Stream>()) + st.heap_bytes(),
    }
}

/// MEMORY USAGE of a stored key: the entry (key, value, control byte) and what both hold.
pub fn key_usage(key: &Bytes, v: &Value, samples: usize) -> usize {
    std::mem::size_of::<(Bytes, Value)>() + 1 + bytes_heap(key) + value_usage(v, samples)
}

fn usage(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let mut samples = 5usize;
    let mut i = 3;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"samples") && i + 1 < argv.len() {
            let n = parse_i64(argv[i + 1]).ok_or(CommandError::NotInteger)?;
            if n < 0 {
                return Err(CommandError::Syntax);
            }
            samples = if n == 0 { usize::MAX } else { n as usize };
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let key = argv[2];
    match (ctx.ks.stored_key(key), ctx.ks.peek(key)) {
        (Some(k), Some(v)) => {
            let n = key_usage(k, v, samples);
            ctx.out.int(n as i64);
        }
        _ => ctx.out.null_bulk(),
    }
    Ok(())
}

/// The figures INFO memory and MEMORY STATS share (Redis's redisMemOverhead).
pub struct Overhead {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    /// The keyspace tables of each database holding keys: (db, main, expires).
    pub dbs: Vec<(usize, u64, u64)>,
    pub keys: u64,
    pub scripts: u64,
    pub total: u64,
    pub dataset: u64,
}

pub fn overhead(shared: &Shared) -> Overhead {
    let used = alloc::used();
    let peak = alloc::peak().max(used);
    let startup = alloc::startup().min(used);
    let mut dbs = Vec::new();
    let mut keys = 0u64;
    for (i, db) in shared.store.dbs.iter().enumerate() {
        let (mut main, mut expires, mut n) = (0u64, 0u64, 0u64);
        for s in db.shards.iter() {
            let s = s.read();
            main += s.map.table_bytes() as u64;
            expires += s.expires.table_bytes() as u64;
            n += s.map.len() as u64;
        }
        if n > 0 {
            dbs.push((i, main, expires));
            keys += n;
        }
    }
    let scripts = (shared.scripts.cache_memory() + shared.scripts.functions_memory()) as u64;
    let total = startup + scripts + dbs.iter().map(|d| d.1 + d.2).sum::<u64>();
    Overhead {
        used,
        peak,
        startup,
        dbs,
        keys,
        scripts,
        total,
        dataset: used.saturating_sub(total),
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn stats(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let o = overhead(ctx.shared);
    let rss = crate::util::resident::resident();
    let allocated = alloc::allocator_allocated();
    let active = alloc::allocator_active();
    let net = o.used.saturating_sub(o.startup);
    let out = &mut *ctx.out;
    out.map(27 + o.dbs.len());
    let int = |out: &mut crate::resp::ReplyBuf, name: &str, v: u64| {
        out.bulk(name.as_bytes());
        out.int(v as i64);
    };
    int(out, "peak.allocated", o.peak);
    int(out, "total.allocated", o.used);
    int(out, "startup.allocated", o.startup);
    for name in [
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "cluster.links",
        "aof.buffer",
    ] {
        int(out, name, 0);
    }
    int(out, "lua.caches", ctx.shared.scripts.cache_memory() as u64);
    int(
        out,
        "functions.caches",
        ctx.shared.scripts.functions_memory() as u64,
    );
    for &(db, main, expires) in &o.dbs {
        out.bulk(format!("db.{db}").as_bytes());
        out.map(3);
        int(out, "overhead.hashtable.main", main);
        int(out, "overhead.hashtable.expires", expires);
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", o.total);
    int(out, "keys.count", o.keys);
    int(
        out,
        "keys.bytes-per-key",
        net.checked_div(o.keys).unwrap_or(0),
    );
    int(out, "dataset.bytes", o.dataset);
    out.bulk(b"dataset.percentage");
    out.double(ratio(o.dataset, net) * 100.0);
    out.bulk(b"peak.percentage");
    out.double(ratio(o.used, o.peak) * 100.0);
    int(out, "allocator.allocated", allocated);
    int(out, "allocator.active", active);
    int(out, "allocator.resident", rss);
    out.bulk(b"allocator-fragmentation.ratio");
    out.double(ratio(active, allocated));
    int(
        out,
        "allocator-fragmentation.bytes",
        active.saturating_sub(allocated),
    );
    out.bulk(b"allocator-rss.ratio");
    out.double(ratio(rss, active));
    int(out, "allocator-rss.bytes", rss.saturating_sub(active));
    out.bulk(b"rss-overhead.ratio");
    out.double(1.0);
    int(out, "rss-overhead.bytes", 0);
    out.bulk(b"fragmentation");
    out.double(ratio(rss, o.used));
    int(out, "fragmentation.bytes", rss.saturating_sub(o.used));
    Ok(())
}

fn doctor(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let o = overhead(ctx.shared);
    let rss = crate::util::resident::resident();
    let report = if o.used < 5 << 20 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector \
         can't be used in these conditions. Please, leave for your mission on Earth and fill it \
         with some data. The new Sam and I will be back to our programming as soon as I \
         finished rebooting.\n"
            .to_string()
    } else {
        let mut issues = String::new();
        if ratio(o.peak, o.used) > 1.5 {
            issues.push_str(
                " * Peak memory: In the past this instance used more than 150% the memory that \
                 is currently using. The allocator is normally not able to release memory after \
                 a peak, so you can expect to see a big fragmentation ratio, however this is \
                 actually harmless and is only due to the memory peak, and if the Redis instance \
                 Resident Set Size (RSS) is currently bigger than expected, the memory will be \
                 used as soon as you fill the Redis instance with more data. If the memory peak \
                 was only occasional and you want to try to reclaim memory, please try the \
                 MEMORY PURGE command, otherwise the only other option is to shutdown and \
                 restart the instance.\n\n",
            );
        }
        if ratio(rss, o.used) > 1.4 && rss.saturating_sub(o.used) > 10 << 20 {
            issues.push_str(
                " * High total RSS: This instance has a memory fragmentation and RSS overhead \
                 greater than 1.4 (this means that the Resident Set Size of the Redis process is \
                 much larger than the sum of the logical allocations Redis performed). This \
                 problem is usually due either to a large peak memory (check if there is a peak \
                 memory entry above in the report) or may result from a workload that causes the \
                 allocator to fragment memory a lot. If the problem is a large peak memory, then \
                 there is no issue. Otherwise, make sure you are using the Jemalloc allocator and \
                 not the default libc malloc. Note: The currently used allocator is \"libc\".\n\n",
            );
        }
        if issues.is_empty() {
            "Hi Sam, I can't find any memory issue in your instance. I can only account for \
             what occurs on this base.\n"
                .to_string()
        } else {
            format!(
                "Sam, I detected a few issues in this Redis instance memory implants:\n\n\
                 {issues}I'm here to keep you safe, Sam. I want to help you.\n"
            )
        }
    };
    ctx.out.verbatim("txt", report.as_bytes());
    Ok(())
}

/// As Redis built with libc's malloc says (it has jemalloc's report only).
fn malloc_stats(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out
        .bulk(b"Stats not supported for the current allocator");
    Ok(())
}

fn purge(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    alloc::purge();
    ctx.out.simple("OK");
    Ok(())
}
