//! INFO: Redis's sections and field names, with rudis's real figures. Fields rudis has no
//! truthful figure for are left out rather than invented.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::connection::REDIS_VERSION;
use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};
use crate::shared::Shared;
use crate::store::ShardId;

pub static COMMANDS: &[CommandSpec] = &[cmd!("info", -1, LOADING | STALE, Keys::None, info)];

/// Every section, in Redis's order: what `INFO all` and `INFO everything` show.
const ALL: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// What `INFO` and `INFO default` leave out of `ALL`.
const NOT_DEFAULT: &[&str] = &["commandstats", "latencystats"];

fn info(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let mut wanted: Vec<&str> = Vec::new();
    let default = ALL.iter().filter(|s| !NOT_DEFAULT.contains(s));
    if argv.len() == 1 {
        wanted.extend(default.clone());
    }
    for a in &argv[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => wanted.extend(default.clone()),
            "all" | "everything" => wanted.extend(ALL),
            s => {
                if let Some(&name) = ALL.iter().find(|&&d| d == s) {
                    wanted.push(name);
                }
            }
        }
    }
    let text = render(ctx, &wanted);
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// The INFO text of the given sections (each once, in Redis's order).
pub fn render(ctx: &Ctx, wanted: &[&str]) -> String {
    let mut out = String::new();
    for &section in ALL.iter().filter(|s| wanted.contains(s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = section.to_string();
        title[..1].make_ascii_uppercase();
        let _ = write!(out, "# {title}\r\n");
        for (k, v) in fields(ctx, section) {
            let _ = write!(out, "{k}:{v}\r\n");
        }
    }
    out
}

fn fields(ctx: &Ctx, section: &str) -> Vec<(String, String)> {
    let shared = ctx.shared;
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| f.push((k.to_string(), v));
    match section {
        "server" => server(shared, &mut put),
        "clients" => {
            put("connected_clients", shared.clients.len().to_string());
            put("cluster_connections", "0".into());
            put("maxclients", shared.config.read().maxclients.to_string());
            put(
                "blocked_clients",
                (shared.blocking.count() + shared.ops.pause.parked()).to_string(),
            );
            put(
                "tracking_clients",
                shared.tracking.clients.load(Relaxed).to_string(),
            );
        }
        "memory" => memory(shared, &mut put),
        "persistence" => persistence(shared, &mut put),
        "stats" => {
            let s = &shared.stats;
            let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed).to_string();
            put("total_connections_received", n(&s.total_connections));
            put(
                "total_commands_processed",
                s.total_commands.get().to_string(),
            );
            use crate::stats::Rate;
            let kbps = |r: Rate| format!("{:.2}", s.rate(r) / 1024.0);
            put(
                "instantaneous_ops_per_sec",
                (s.rate(Rate::Commands) as u64).to_string(),
            );
            put("total_net_input_bytes", n(&s.net_input_bytes));
            put("total_net_output_bytes", n(&s.net_output_bytes));
            put("total_net_repl_input_bytes", n(&s.net_repl_input_bytes));
            put("total_net_repl_output_bytes", n(&s.net_repl_output_bytes));
            put("instantaneous_input_kbps", kbps(Rate::NetInput));
            put("instantaneous_output_kbps", kbps(Rate::NetOutput));
            put("instantaneous_input_repl_kbps", kbps(Rate::ReplInput));
            put("instantaneous_output_repl_kbps", kbps(Rate::ReplOutput));
            put("rejected_connections", n(&s.rejected_connections));
            put("sync_full", n(&s.sync_full));
            put("sync_partial_ok", n(&s.sync_partial_ok));
            put("sync_partial_err", n(&s.sync_partial_err));
            // Redis 7.4's count of hash fields expired, only once there are any: until then
            // the section reads as Redis 7.0's.
            if s.expired_subkeys.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                put("expired_subkeys", n(&s.expired_subkeys));
            }
            put("expired_keys", n(&s.expired_keys));
            // What rudis has no counterpart of reads as Redis's neutral values: its expiry
            // has no time cap, it evicts no clients (maxmemory-clients is refused), forks
            // nothing and defragments nothing.
            put("expired_stale_perc", "0.00".into());
            put("expired_time_cap_reached_count", "0".into());
            put("expire_cycle_cpu_milliseconds", "0".into());
            put("evicted_keys", n(&s.evicted_keys));
            put("evicted_clients", "0".into());
            put("total_eviction_exceeded_time", "0".into());
            put("current_eviction_exceeded_time", "0".into());
            put("keyspace_hits", s.keyspace_hits.get().to_string());
            put("keyspace_misses", s.keyspace_misses.get().to_string());
            use crate::notify::pubsub::Kind;
            let ps = &shared.pubsub;
            put(
                "pubsub_channels",
                ps.channel_count(Kind::Channel).to_string(),
            );
            put("pubsub_patterns", ps.numpat().to_string());
            put(
                "pubsubshard_channels",
                ps.channel_count(Kind::Shard).to_string(),
            );
            put("latest_fork_usec", "0".into());
            put("total_forks", crate::util::children::forks().to_string());
            put(
                "migrate_cached_sockets",
                super::dump::close_idle_migrate_sockets().to_string(),
            );
            put("slave_expires_tracked_keys", "0".into());
            for f in [
                "active_defrag_hits",
                "active_defrag_misses",
                "active_defrag_key_hits",
                "active_defrag_key_misses",
                "total_active_defrag_time",
                "current_active_defrag_time",
            ] {
                put(f, "0".into());
            }
            let t = &shared.tracking;
            put("tracking_total_keys", t.key_count().to_string());
            put("tracking_total_items", t.item_count().to_string());
            put("tracking_total_prefixes", t.prefix_count().to_string());
            put("unexpected_error_replies", n(&s.unexpected_error_replies));
            put("total_error_replies", n(&s.error_replies));
            put("dump_payload_sanitizations", "0".into());
            put("total_reads_processed", s.reads_processed.get().to_string());
            put(
                "total_writes_processed",
                s.writes_processed.get().to_string(),
            );
            put("io_threaded_reads_processed", "0".into());
            put("io_threaded_writes_processed", "0".into());
            put(
                "reply_buffer_shrinks",
                crate::resp::reply::sizing::SHRINKS
                    .load(Relaxed)
                    .to_string(),
            );
            put("reply_buffer_expands", "0".into());
        }
        "replication" => {
            let fields = shared
                .repl
                .info_fields(|name| shared.config.read().get(name).unwrap_or_default());
            for (k, v) in fields {
                put(k, v);
            }
        }
        "cpu" => cpu(&mut put),
        "errorstats" => {
            for (code, n) in shared.stats.errors_by_code.lock().iter() {
                put(&format!("errorstat_{code}"), format!("count={n}"));
            }
        }
        "cluster" => put("cluster_enabled", "0".into()),
        "commandstats" => {
            for c in crate::ops::cmdstats::snapshot(false) {
                if c.calls == 0 && c.rejected == 0 && c.failed == 0 {
                    continue;
                }
                let per = if c.calls > 0 {
                    c.usec as f64 / c.calls as f64
                } else {
                    0.0
                };
                put(
                    &format!("cmdstat_{}", c.name),
                    format!(
                        "calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}",
                        c.calls, c.usec, per, c.rejected, c.failed
                    ),
                );
            }
        }
        "latencystats" => {
            let s = crate::ops::settings();
            if s.latency_tracking() {
                let ps = s.percentiles();
                for c in crate::ops::cmdstats::snapshot(true) {
                    let Some(h) = c.hist else { continue };
                    let v: Vec<String> = ps
                        .iter()
                        .map(|&p| {
                            // "%f" trimmed, as Redis names the percentile.
                            let name = format!("{p:.6}");
                            let name = name.trim_end_matches('0').trim_end_matches('.');
                            format!("p{name}={:.3}", h.value_at(p) as f64 / 1000.0)
                        })
                        .collect();
                    put(&format!("latency_percentiles_usec_{}", c.name), v.join(","));
                }
            }
        }
        "keyspace" => keyspace(ctx, &mut put),
        _ => {}
    }
    f
}

fn unix_now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// 40 hex digits, fixed for the life of the process, as Redis's run_id.
fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let s = ahash::RandomState::new();
        let mut id = String::new();
        for i in 0u8..3 {
            let _ = write!(id, "{:016x}", s.hash_one((i, std::process::id())));
        }
        id.truncate(40);
        id
    })
}

fn uname() -> String {
    // SAFETY: uname fills the zeroed struct it is given; the fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return std::env::consts::OS.into();
        }
        let field = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        format!(
            "{} {} {}",
            field(&u.sysname),
            field(&u.release),
            field(&u.machine)
        )
    }
}

fn server(shared: &Shared, put: &mut impl FnMut(&str, String)) {
    let config = shared.config.read();
    let uptime = shared.started.elapsed().as_secs();
    put("redis_version", REDIS_VERSION.into());
    put("rudis_version", env!("CARGO_PKG_VERSION").into());
    put("redis_git_sha1", "00000000".into());
    put("redis_git_dirty", "0".into());
    put("redis_mode", "standalone".into());
    put("os", uname());
    put("arch_bits", (usize::BITS).to_string());
    put("multiplexing_api", "threads".into());
    put("process_id", std::process::id().to_string());
    put("process_supervised", "no".into());
    put("run_id", run_id().into());
    put("tcp_port", config.port.to_string());
    put("server_time_usec", unix_now().as_micros().to_string());
    put("uptime_in_seconds", uptime.to_string());
    put("uptime_in_days", (uptime / 86400).to_string());
    put("hz", "10".into());
    put("configured_hz", "10".into());
    put(
        "executable",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    put(
        "config_file",
        config
            .config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    put("workers", config.workers.to_string());
}

/// Bytes as Redis's `bytesToHuman` writes them.
pub fn human(n: u64) -> String {
    let n_f = n as f64;
    const UNITS: [(f64, &str); 5] = [
        (1024.0, "K"),
        (1024.0 * 1024.0, "M"),
        (1024.0 * 1024.0 * 1024.0, "G"),
        (1024.0 * 1024.0 * 1024.0 * 1024.0, "T"),
        (1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0, "P"),
    ];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut unit = UNITS[0];
    for u in UNITS {
        if n_f >= u.0 {
            unit = u;
        }
    }
    format!("{:.2}{}", n_f / unit.0, unit.1)
}

/// A `Key: N kB` line of a /proc file, in bytes.
fn proc_kb(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .map_or(0, |kb: u64| kb * 1024)
}

fn memory(shared: &Shared, put: &mut impl FnMut(&str, String)) {
    // used_memory is what the process holds from the allocator (see `util::alloc`), what
    // maxmemory is held to; the resident set beside it.
    let o = super::memory::overhead(shared);
    let used = o.used;
    let rss = crate::util::resident::resident();
    let peak = o.peak;
    let net = used.saturating_sub(o.startup);
    let pct = |a: u64, b: u64| {
        if b == 0 {
            "0.00%".to_string()
        } else {
            format!("{:.2}%", a as f64 * 100.0 / b as f64)
        }
    };
    put("used_memory", used.to_string());
    put("used_memory_human", human(used));
    put("used_memory_rss", rss.to_string());
    put("used_memory_rss_human", human(rss));
    put("used_memory_peak", peak.to_string());
    put("used_memory_peak_human", human(peak));
    put("used_memory_peak_perc", pct(used, peak));
    put("used_memory_overhead", o.total.to_string());
    put("used_memory_startup", o.startup.to_string());
    put("used_memory_dataset", o.dataset.to_string());
    put("used_memory_dataset_perc", pct(o.dataset, net));
    put(
        "allocator_allocated",
        crate::util::alloc::allocator_allocated().to_string(),
    );
    put(
        "allocator_active",
        crate::util::alloc::allocator_active().to_string(),
    );
    put("allocator_resident", rss.to_string());
    let total = proc_kb("/proc/meminfo", "MemTotal:");
    put("total_system_memory", total.to_string());
    put("total_system_memory_human", human(total));
    let scripts = &shared.scripts;
    let vm_eval = scripts.eval_vm_bytes.load(Relaxed) as u64;
    let vm_functions = scripts.function_vm_bytes.load(Relaxed) as u64;
    let scripts_eval = scripts.cache_memory() as u64;
    let functions = scripts.functions_memory() as u64;
    let libs = scripts.libraries();
    put("used_memory_lua", vm_eval.to_string());
    put("used_memory_vm_eval", vm_eval.to_string());
    put("used_memory_lua_human", human(vm_eval));
    put("used_memory_scripts_eval", scripts_eval.to_string());
    put("number_of_cached_scripts", scripts.cached().to_string());
    put("number_of_functions", libs.functions.len().to_string());
    put("number_of_libraries", libs.libs.len().to_string());
    put("used_memory_vm_functions", vm_functions.to_string());
    put("used_memory_vm_total", (vm_eval + vm_functions).to_string());
    put("used_memory_vm_total_human", human(vm_eval + vm_functions));
    put("used_memory_functions", functions.to_string());
    put(
        "used_memory_scripts",
        (scripts_eval + functions).to_string(),
    );
    put("used_memory_scripts_human", human(scripts_eval + functions));
    let max = crate::store::evict::maxmemory();
    put("maxmemory", max.to_string());
    put("maxmemory_human", human(max));
    put(
        "maxmemory_policy",
        crate::store::evict::policy().name().into(),
    );
    let frag = if used == 0 {
        0.0
    } else {
        rss as f64 / used as f64
    };
    put("mem_fragmentation_ratio", format!("{frag:.2}"));
    put(
        "mem_fragmentation_bytes",
        (rss as i64 - used as i64).to_string(),
    );
    // As Redis's getMemoryOverheadData: with replicas, the replication buffer beyond the
    // backlog's size is theirs.
    let repl = shared.repl.backlog.memory();
    let (backlog, replicas) = if repl.replicas > 0 {
        (repl.backlog_part, repl.replicas_part)
    } else {
        (repl.buffer, 0)
    };
    put(
        "mem_not_counted_for_evict",
        crate::evict::not_counted(shared).to_string(),
    );
    put("mem_replication_backlog", backlog.to_string());
    put("mem_clients_slaves", replicas.to_string());
    put(
        "mem_clients_normal",
        shared.clients.normal_memory().to_string(),
    );
    put(
        "mem_aof_buffer",
        crate::evict::aof_buffer(shared).to_string(),
    );
    put("mem_allocator", "libc".into());
    put("active_defrag_running", "0".into());
    let (pending, freed) = crate::store::lazyfree::stats();
    put("lazyfree_pending_objects", pending.to_string());
    put("lazyfreed_objects", freed.to_string());
}

fn persistence(shared: &Shared, put: &mut impl FnMut(&str, String)) {
    put("loading", (shared.is_loading() as u8).to_string());
    put("async_loading", "0".into());
    let st = &shared.snapshots.status;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let running = shared.snapshots.in_progress();
    // A snapshot's copy-on-write is the keys writes copied before changing them (per entry,
    // where Redis's fork copies pages), counted as they are copied.
    let (done, total, copied) = shared.snapshots.progress().unwrap_or_default();
    put("current_cow_peak", copied.to_string());
    put("current_cow_size", copied.to_string());
    put("current_cow_size_age", "0".into());
    let perc = if total == 0 {
        0.0
    } else {
        (done as f64 * 100.0 / total as f64).min(100.0)
    };
    put("current_fork_perc", format!("{perc:.2}"));
    put("current_save_keys_processed", done.to_string());
    put("current_save_keys_total", total.to_string());
    put(
        "rdb_changes_since_last_save",
        shared
            .stats
            .dirty
            .get()
            .saturating_sub(ld(&st.dirty_at_save))
            .to_string(),
    );
    put("rdb_bgsave_in_progress", u8::from(running).to_string());
    put("rdb_last_save_time", ld(&st.last_save).to_string());
    let ok = st.last_ok.load(std::sync::atomic::Ordering::Relaxed);
    put(
        "rdb_last_bgsave_status",
        if ok { "ok" } else { "err" }.into(),
    );
    put(
        "rdb_last_bgsave_time_sec",
        st.last_secs
            .load(std::sync::atomic::Ordering::Relaxed)
            .to_string(),
    );
    let current = match ld(&st.started_ms) {
        0 => -1,
        t => (crate::util::clock::now_ms().saturating_sub(t) / 1000) as i64,
    };
    put("rdb_current_bgsave_time_sec", current.to_string());
    put("rdb_saves", ld(&st.saves).to_string());
    put("rdb_last_cow_size", ld(&st.last_copied).to_string());
    put(
        "rdb_last_load_keys_expired",
        ld(&st.last_load_expired).to_string(),
    );
    put(
        "rdb_last_load_keys_loaded",
        ld(&st.last_load_keys).to_string(),
    );
    let (head, tail) = shared.aof_handle().info_fields();
    for (k, v) in head.into_iter().chain(tail) {
        put(k, v);
    }
    if shared.is_loading() {
        loading_fields(shared, put);
    }
}

/// Redis's progress of a running load, with its estimate of the time left.
fn loading_fields(shared: &Shared, put: &mut impl FnMut(&str, String)) {
    let (start, total, loaded) = shared.load_status();
    let (perc, remaining) = match total {
        0 => (0.0, 1),
        t => (loaded as f64 / t as f64 * 100.0, t.saturating_sub(loaded)),
    };
    let elapsed = (crate::util::clock::now_ms() / 1000).saturating_sub(start);
    // A fake 1 second until a second has passed, as Redis.
    let eta = match elapsed {
        0 => 1,
        e => e.saturating_mul(remaining) / (loaded + 1),
    };
    put("loading_start_time", start.to_string());
    put("loading_total_bytes", total.to_string());
    put("loading_rdb_used_mem", "0".into());
    put("loading_loaded_bytes", loaded.to_string());
    put("loading_loaded_perc", format!("{perc:.2}"));
    put("loading_eta_seconds", eta.to_string());
}

fn cpu(put: &mut impl FnMut(&str, String)) {
    let usage = |who| {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let t = |tv: libc::timeval| format!("{}.{:06}", tv.tv_sec, tv.tv_usec);
        (t(u.ru_stime), t(u.ru_utime))
    };
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (csys, cuser) = usage(libc::RUSAGE_CHILDREN);
    put("used_cpu_sys", sys);
    put("used_cpu_user", user);
    put("used_cpu_sys_children", csys);
    put("used_cpu_user_children", cuser);
}

/// `dbN:keys=..,expires=..,avg_ttl=..` for every non-empty database, and Redis 7.4's
/// `subexpiry=..` (hashes with field deadlines) where there are any: a data set without them
/// reads as Redis 7.0's. The shards are read one at a time; INFO holds no other lock.
fn keyspace(ctx: &Ctx, put: &mut impl FnMut(&str, String)) {
    let now = ctx.ks.now();
    for (i, db) in ctx.shared.store.dbs.iter().enumerate() {
        let (mut keys, mut expires, mut ttl_sum, mut subexpiry) = (0u64, 0u64, 0u128, 0u64);
        for (j, shard) in db.shards.iter().enumerate() {
            let slot = ShardId {
                db: i as u32,
                shard: j as u32,
            };
            // A shard this command already holds (INFO inside EXEC) is read through its guard:
            // locking it again would deadlock.
            let guard;
            let s = if ctx.ks.locked.holds(slot) {
                ctx.ks.locked.shard(slot)
            } else {
                guard = shard.read();
                &*guard
            };
            keys += s.map.len() as u64;
            expires += s.expires.len() as u64;
            subexpiry += s.field_expires.len() as u64;
            ttl_sum += s
                .expires
                .values()
                .map(|&d| d.saturating_sub(now) as u128)
                .sum::<u128>();
        }
        if keys > 0 {
            let avg = if expires > 0 {
                ttl_sum / expires as u128
            } else {
                0
            };
            let mut line = format!("keys={keys},expires={expires},avg_ttl={avg}");
            if subexpiry > 0 {
                line += &format!(",subexpiry={subexpiry}");
            }
            put(&format!("db{i}"), line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1024), "1.00K");
        assert_eq!(human(7626752), "7.27M");
        assert!(crate::util::resident::resident() > 0);
    }
}
