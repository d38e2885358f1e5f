//! The latency monitor (Redis's latency.c): for each event kind (`command`, `fast-command`,
//! `aof-write`, `expire-cycle`, ...) that took at least `latency-monitor-threshold` ms, one
//! sample per second (the worst), the last 160 seconds that had one, and the all-time worst.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Redis's LATENCY_TS_LEN.
pub const HISTORY: usize = 160;

#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub time: u64,
    pub ms: u64,
}

#[derive(Clone)]
pub struct Series {
    /// Oldest first.
    pub samples: Vec<Sample>,
    pub max: u64,
}

#[derive(Default)]
pub struct Latency {
    events: Mutex<BTreeMap<&'static str, Series>>,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Latency {
    /// Records `ms` for `event` if the monitor is on and it reaches the threshold.
    #[inline]
    pub fn add_if_needed(&self, event: &'static str, ms: u64) {
        let threshold = super::settings().latency_threshold();
        if threshold > 0 && ms >= threshold {
            self.add(event, ms);
        }
    }

    #[cold]
    pub fn add(&self, event: &'static str, ms: u64) {
        let now = unix_secs();
        let mut events = self.events.lock();
        let s = events.entry(event).or_insert_with(|| Series {
            samples: Vec::new(),
            max: 0,
        });
        s.max = s.max.max(ms);
        if let Some(last) = s.samples.last_mut() {
            if last.time == now {
                last.ms = last.ms.max(ms);
                return;
            }
        }
        if s.samples.len() == HISTORY {
            s.samples.remove(0);
        }
        s.samples.push(Sample { time: now, ms });
    }

    pub fn series(&self, event: &[u8]) -> Option<(&'static str, Series)> {
        let events = self.events.lock();
        events
            .iter()
            .find(|(k, _)| k.as_bytes() == event)
            .map(|(k, v)| (*k, v.clone()))
    }

    pub fn all(&self) -> Vec<(&'static str, Series)> {
        self.events
            .lock()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// Forgets `event` (or every event): how many were forgotten.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut events = self.events.lock();
        match event {
            None => {
                let n = events.len();
                events.clear();
                n
            }
            Some(e) => {
                let before = events.len();
                events.retain(|k, _| k.as_bytes() != e);
                before - events.len()
            }
        }
    }
}

/// LATENCY DOCTOR's report, Redis's wording for what rudis can observe.
pub fn doctor(latency: &Latency, slowlog_slower_than: i64, threshold: u64) -> String {
    let events = latency.all();
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis \
                instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" \
                in order to enable it. If we weren't in a deep space mission I'd suggest to take \
                a look at https://redis.io/topics/latency-monitor.\n"
            .into();
    }
    if events.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, \
                not in the slightest bit. I honestly think you ought to sleep tonight.\n"
            .into();
    }
    let now = unix_secs();
    let mut r = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking \
         about it, do you Dave?\n\n",
    );
    let mut command = false;
    for (i, (event, s)) in events.iter().enumerate() {
        let n = s.samples.len() as u64;
        let sum: u64 = s.samples.iter().map(|x| x.ms).sum();
        let avg = sum / n.max(1);
        let mad = s.samples.iter().map(|x| x.ms.abs_diff(avg)).sum::<u64>() / n.max(1);
        let oldest = s.samples.iter().map(|x| x.time).min().unwrap_or(now);
        let period = now.saturating_sub(oldest).max(1);
        r.push_str(&format!(
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). \
             Worst all time event {}ms.\n",
            i + 1,
            event,
            n,
            avg,
            mad,
            period as f64 / n.max(1) as f64,
            s.max
        ));
        command |= *event == "command";
    }
    r.push_str("\nI have a few advices for you:\n\n");
    if command {
        if slowlog_slower_than < 0 {
            r.push_str(
                "- The system is slow to execute Redis code paths not containing system calls. \
                 This usually means the system does not provide Redis CPU time to run for long \
                 periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer \
                 / VM just for Redis if you are running other software in the same system.\n  \
                 3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli \
                 --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) \
                 Check if the problem is allocator-related by recompiling Redis with \
                 MALLOC=libc, if you are using Jemalloc. However this may create fragmentation \
                 problems.\n",
            );
            r.push_str(
                "- Enable the slowlog: CONFIG SET slowlog-log-slower-than <microseconds>.\n",
            );
        }
        r.push_str(
            "- Check your Slow Log to understand what are the commands you are running which \
             are too slow to execute. Please check https://redis.io/commands/slowlog for more \
             information.\n",
        );
        r.push_str(
            "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a \
             blocking operation. If you have very large objects that are often deleted, \
             expired, or evicted, try to fragment those objects into multiple smaller \
             objects.\n",
        );
    } else {
        r.push_str("- Check the events above, and what the server was doing when they happened.\n");
    }
    r
}

/// LATENCY GRAPH's text, after Redis's sparkline.c: a header, a rule, four rows of bars
/// (`_`, `o`, `#`... as Redis's SPARKLINE_FILL) and the labels (time ago) written vertically.
pub fn graph(event: &str, s: &Series) -> String {
    const COLS: usize = 80;
    const ROWS: usize = 4;
    let now = unix_secs();
    let (mut min, mut max) = (u64::MAX, 0);
    for x in &s.samples {
        min = min.min(x.ms);
        max = max.max(x.ms);
    }
    if s.samples.is_empty() {
        min = 0;
    }
    let mut out = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n",
        s.max
    );
    out.push_str(&"-".repeat(COLS));
    out.push('\n');
    let labels: Vec<String> = s
        .samples
        .iter()
        .map(|x| {
            let e = now.saturating_sub(x.time);
            if e < 60 {
                format!("{e}s")
            } else if e < 3600 {
                format!("{}m", e / 60)
            } else if e < 86400 {
                format!("{}h", e / 3600)
            } else {
                format!("{}d", e / 86400)
            }
        })
        .collect();
    // Each sample's height in steps of a quarter row, as Redis's sparklineRenderRange.
    let range = (max - min).max(1) as f64;
    let steps = ROWS * 2;
    let heights: Vec<usize> = s
        .samples
        .iter()
        .map(|x| (((x.ms - min) as f64 / range) * steps as f64) as usize)
        .collect();
    for row in 0..ROWS {
        let mut line = String::new();
        for &h in heights.iter().take(COLS) {
            let level = (ROWS - 1 - row) * 2;
            let c = if h > level + 1 {
                '#'
            } else if h == level + 1 || row == ROWS - 1 {
                '_'
            } else {
                ' '
            };
            line.push(c);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let longest = labels.iter().map(|l| l.len()).max().unwrap_or(0);
    for i in 0..longest {
        let mut line = String::new();
        for l in labels.iter().take(COLS) {
            line.push(l.as_bytes().get(i).map_or(' ', |&b| b as char));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_a_second_the_worst_kept() {
        let l = Latency::default();
        l.add("command", 5);
        l.add("command", 9);
        l.add("command", 7);
        let (_, s) = l.series(b"command").unwrap();
        assert_eq!(s.samples.len(), 1);
        assert_eq!(s.samples[0].ms, 9);
        assert_eq!(s.max, 9);
        assert_eq!(l.reset(Some(b"other")), 0);
        assert_eq!(l.reset(None), 1);
        assert!(l.all().is_empty());
    }
}
