//! What an operator observes and steers of a running server: per-command statistics, the slow
//! log, the latency monitor, MONITOR's feed and CLIENT PAUSE. The dispatcher reports each
//! command once, through [`Ops::after_call`] (and [`Ops::before_call`] for what MONITOR
//! shows before a command runs); the settings these read on that path are process-wide
//! atomics, so a command reads no lock and writes no shared line for them.

pub mod cmdstats;
pub mod digest;
pub mod latency;
pub mod monitor;
pub mod pause;
pub mod slowlog;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::client::Client;
use crate::commands::{flags, CommandSpec};

#[derive(Default)]
pub struct Ops {
    pub pause: Arc<pause::Pause>,
    pub slowlog: slowlog::Slowlog,
    pub latency: latency::Latency,
    pub monitors: monitor::Monitors,
    /// The blocked clients' commands (by client id), as Redis keeps a blocked client's argv
    /// and first run's duration for the slow log entry its wake-up writes.
    parked: Mutex<std::collections::HashMap<u64, Parked>>,
}

/// A command that blocked: its arguments as the slow log shows them, and how long it ran.
struct Parked {
    argv: Vec<Vec<u8>>,
    usec: u64,
}

/// The settings read on every command (`slowlog-*`, `latency-*`), kept where a read is one
/// relaxed load; CONFIG keeps their text for CONFIG GET and hands each change here.
pub struct Settings {
    slowlog_slower_than: AtomicI64,
    slowlog_max_len: AtomicUsize,
    latency_threshold: AtomicU64,
    latency_tracking: AtomicBool,
    percentiles: Mutex<Vec<f64>>,
}

pub fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| Settings {
        slowlog_slower_than: AtomicI64::new(10_000),
        slowlog_max_len: AtomicUsize::new(128),
        latency_threshold: AtomicU64::new(0),
        latency_tracking: AtomicBool::new(true),
        percentiles: Mutex::new(vec![50.0, 99.0, 99.9]),
    })
}

impl Settings {
    pub fn slowlog_slower_than(&self) -> i64 {
        self.slowlog_slower_than.load(Relaxed)
    }
    pub fn slowlog_max_len(&self) -> usize {
        self.slowlog_max_len.load(Relaxed)
    }
    pub fn latency_threshold(&self) -> u64 {
        self.latency_threshold.load(Relaxed)
    }
    pub fn latency_tracking(&self) -> bool {
        self.latency_tracking.load(Relaxed)
    }
    pub fn percentiles(&self) -> Vec<f64> {
        self.percentiles.lock().clone()
    }
}

/// The names of the settings applied here (config.rs marks them `Observed`).
pub fn apply_setting(name: &str, value: &str) {
    let s = settings();
    let int = || value.parse::<i64>().unwrap_or(0);
    match name {
        "slowlog-log-slower-than" => s.slowlog_slower_than.store(int(), Relaxed),
        "slowlog-max-len" => s.slowlog_max_len.store(int().max(0) as usize, Relaxed),
        "latency-monitor-threshold" => s.latency_threshold.store(int().max(0) as u64, Relaxed),
        "latency-tracking" => s.latency_tracking.store(value == "yes", Relaxed),
        "latency-tracking-info-percentiles" => {
            *s.percentiles.lock() = value
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        }
        _ => {}
    }
}

/// What MONITOR and SLOWLOG show in place of a password.
const REDACTED: &[u8] = b"(redacted)";

/// The positions of `argv` that MONITOR and SLOWLOG show as `(redacted)`: passwords.
fn redacted(argv: &[&[u8]]) -> Vec<usize> {
    let is = |i: usize, w: &[u8]| argv.get(i).is_some_and(|a| a.eq_ignore_ascii_case(w));
    if is(0, b"auth") {
        return (1..argv.len()).collect();
    }
    if is(0, b"hello") {
        if let Some(i) = (2..argv.len()).find(|&i| is(i, b"auth")) {
            return vec![i + 1, i + 2];
        }
    }
    if is(0, b"config") && is(1, b"set") {
        return (2..argv.len())
            .step_by(2)
            .filter(|&i| {
                ["requirepass", "masterauth", "masteruser"]
                    .iter()
                    .any(|n| is(i, n.as_bytes()))
            })
            .map(|i| i + 1)
            .collect();
    }
    if is(0, b"migrate") {
        if let Some(i) = (6..argv.len()).find(|&i| is(i, b"auth")) {
            return vec![i + 1];
        }
        if let Some(i) = (6..argv.len()).find(|&i| is(i, b"auth2")) {
            return vec![i + 1, i + 2];
        }
    }
    Vec::new()
}

/// `argv` with its passwords replaced.
fn shown<'a>(argv: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let hide = redacted(argv);
    argv.iter()
        .enumerate()
        .map(|(i, a)| if hide.contains(&i) { REDACTED } else { *a })
        .collect()
}

fn who(client: &Client) -> &str {
    if client.in_script {
        "lua"
    } else {
        &client.handle.addr
    }
}

impl Ops {
    fn feed_monitors(&self, shared: &crate::shared::Shared, client: &Client, argv: &[&[u8]]) {
        // The loader's replay is not shown; clients served during a load are.
        if shared.is_loading() && !client.pausable {
            return;
        }
        let hidden = redacted(argv);
        self.monitors
            .feed(|out| monitor::append_line(out, client.db, who(client), argv, &hidden));
    }

    /// Before a command's handler: scripts show in MONITOR before the commands they run, as
    /// Redis's EVAL and FCALL feed the monitors themselves.
    #[inline]
    pub fn before_call(
        &self,
        shared: &crate::shared::Shared,
        client: &Client,
        spec: &CommandSpec,
        argv: &[&[u8]],
    ) {
        if self.monitors.active() && spec.has(flags::SKIP_MONITOR) {
            self.feed_monitors(shared, client, argv);
        }
    }

    /// After a command's handler ran for `usec` microseconds; `failed`: it answered an error.
    #[inline]
    pub fn after_call(
        &self,
        shared: &crate::shared::Shared,
        client: &Client,
        spec: &CommandSpec,
        argv: &[&[u8]],
        usec: u64,
        failed: bool,
    ) {
        let s = settings();
        let real = spec.resolve(argv);
        // A command that blocked is timed again, and logged, when it is served (`unblocked`).
        cmdstats::record_call(real, usec, failed, s.latency_tracking() && !client.blocked);
        if client.blocked {
            let argv = slowlog::trimmed(&shown(argv));
            self.parked.lock().insert(client.id, Parked { argv, usec });
        }
        let event = if spec.has(flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        self.latency.add_if_needed(event, usec / 1000);
        let slower = s.slowlog_slower_than();
        if slower >= 0
            && usec as i64 >= slower
            && !spec.has(flags::SKIP_SLOWLOG)
            && !client.blocked
            && (client.pausable || !shared.is_loading())
        {
            let name = client.handle.state.lock().name.clone();
            self.slowlog.push(
                slowlog::trimmed(&shown(argv)),
                usec,
                who(client).into(),
                name,
            );
        }
        if self.monitors.active() && !real.has(flags::ADMIN) && !spec.has(flags::SKIP_MONITOR) {
            self.feed_monitors(shared, client, argv);
        }
    }

    /// A blocked client of `handle` was served by its command `spec`, whose serving took
    /// `reply_us`: as Redis's updateStatsOnUnblock, the command's time (its first run's and
    /// this one's) goes to commandstats, its latency histogram and the slow log, under its
    /// own arguments (BLPOP ..., not the LPOP that served it).
    pub fn unblocked(
        &self,
        handle: &crate::clients::ClientHandle,
        spec: &CommandSpec,
        reply_us: u64,
    ) {
        let Some(p) = self.parked.lock().remove(&handle.id) else {
            return;
        };
        let s = settings();
        let total = p.usec + reply_us;
        cmdstats::record_unblocked(spec, total - p.usec, total, s.latency_tracking());
        let slower = s.slowlog_slower_than();
        if slower >= 0 && total as i64 >= slower {
            let name = handle.state.lock().name.clone();
            self.slowlog.push(p.argv, total, handle.addr.clone(), name);
        }
        self.latency
            .add_if_needed("command-unblocking", reply_us / 1000);
    }

    /// A client went away: it monitors and waits for nothing any more.
    pub fn client_gone(&self, id: u64) {
        self.parked.lock().remove(&id);
        self.monitors.remove(id);
        self.pause.forget(id);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::shown(&[b"auth", b"u", b"p"]),
            vec![&b"auth"[..], b"(redacted)", b"(redacted)"]
        );
        assert_eq!(
            super::redacted(&[b"hello", b"2", b"AUTH", b"u", b"p"]),
            vec![3, 4]
        );
        assert_eq!(
            super::redacted(&[b"config", b"set", b"maxclients", b"1", b"requirepass", b"x"]),
            vec![5]
        );
        assert!(super::redacted(&[b"set", b"auth", b"x"]).is_empty());
    }
}
