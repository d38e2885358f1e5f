//! A background thread that gives the CPU to clients first, and is never starved.
//!
//! While its job runs (`begin` .. `end`) the thread is in Linux's SCHED_IDLE class: it runs
//! on cores the clients' threads leave idle, and any of them that wakes takes its core at
//! once. At nice 10 back-to-back saves still took 70 % of a core from a SET load on 2 cores
//! (a worker woken by a client first waited out part of the saver's slice), and the load
//! kept 0.40 of its throughput; at SCHED_IDLE it kept 0.48-0.53 and the saves went on at
//! Redis's pace (`benches/bgsave-under-load.py`). Where the clients leave no idle time,
//! SCHED_IDLE would let the job starve, so a `check` once a second raises a job that got
//! under a tenth of a core since the last check to the normal class at nice 10 (about a
//! tenth of a core against each busy thread) until it ends.
//!
//! A job that holds something clients wait for (a dump's walk holds a shard's read lock for
//! a step) must not be preempted while it does: `urgent` puts the thread in the normal class
//! for that long.
//!
//! Leaving SCHED_IDLE needs CAP_SYS_NICE or an RLIMIT_NICE of 20 (Linux treats it as nice 20,
//! and an unprivileged thread may only lower its priority). Without either, a thread there
//! could be starved for good, so the job runs at nice 10 instead, as a plain lower priority.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

/// Below this share of a core between two checks, a job counts as starved.
const STARVED_SHARE: f64 = 0.1;
/// The job's priority once raised.
const RAISED_NICE: libc::c_int = 10;

thread_local! {
    /// Set on a thread while its yielding job runs, to what `urgent` must check.
    static JOB: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
    /// Set by `begin_after_start`: the job yields once `started` says its instant is taken.
    static PENDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True if it worked; a failure (no privilege, a kernel without SCHED_IDLE, a seccomp
/// filter) leaves the class, which only changes how fast the thread runs.
fn set_class(tid: libc::pid_t, class: libc::c_int) -> bool {
    let p = libc::sched_param { sched_priority: 0 };
    // SAFETY: a system call on a thread of this process.
    unsafe { libc::sched_setscheduler(tid, class, &p) == 0 }
}

/// Whether a thread can leave SCHED_IDLE again (see the module), tried once on a thread
/// made for the purpose.
fn idle_is_reversible() -> bool {
    static REVERSIBLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REVERSIBLE.get_or_init(|| {
        std::thread::spawn(|| set_class(0, libc::SCHED_IDLE) && set_class(0, libc::SCHED_OTHER))
            .join()
            .unwrap_or(false)
    })
}

/// The share of a core below which a job counts as starved, over `wall_ns`.
fn starved(cpu_ns: u64, wall_ns: u64) -> bool {
    wall_ns >= 500_000_000 && (cpu_ns as f64) < wall_ns as f64 * STARVED_SHARE
}

#[derive(Default)]
pub struct Yielding {
    running: AtomicBool,
    /// Shared with `urgent` on the job's thread.
    raised: Arc<AtomicBool>,
    tid: AtomicI32,
    /// The thread's CPU-time clock (`pthread_getcpuclockid`).
    clock: AtomicI32,
    /// The thread's CPU time, and when it was read, at the last check.
    seen: Mutex<(u64, Option<Instant>)>,
    /// Jobs raised since start, for the log and tests.
    pub raises: AtomicU64,
}

fn cpu_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec; a clock that is gone gives an error, not a fault.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

impl Yielding {
    /// Called by the background thread as its job starts.
    pub fn begin(&self) {
        if !idle_is_reversible() {
            // SAFETY: a system call about the calling thread.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, RAISED_NICE) };
            return;
        }
        // SAFETY: plain system calls about the calling thread.
        unsafe {
            let mut clock: libc::clockid_t = 0;
            if libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) == 0 {
                self.clock.store(clock, Relaxed);
            }
            self.tid.store(libc::gettid(), Relaxed);
            libc::setpriority(libc::PRIO_PROCESS, 0, 0);
        }
        set_class(0, libc::SCHED_IDLE);
        *self.seen.lock() = (
            cpu_ns(self.clock.load(Relaxed)).unwrap_or(0),
            Some(Instant::now()),
        );
        self.raised.store(false, Relaxed);
        JOB.with(|j| *j.borrow_mut() = Some(self.raised.clone()));
        self.running.store(true, Relaxed);
    }

    /// Like `begin`, but only at `started`: what comes first (a snapshot taking its instant)
    /// runs at the thread's normal priority, as it must happen when it was asked for; a
    /// starved start would move the instant past later writes.
    pub fn begin_after_start(&self) {
        PENDING.with(|p| p.set(true));
    }

    /// The job's instant is taken: from here on it is background work (if this thread asked
    /// for it with `begin_after_start`; any other caller, a worker's SAVE, is untouched).
    pub fn started(&self) {
        if PENDING.with(|p| p.replace(false)) {
            self.begin();
        }
    }

    /// Called by the background thread as its job ends.
    pub fn end(&self) {
        PENDING.with(|p| p.set(false));
        JOB.with(|j| *j.borrow_mut() = None);
        self.running.store(false, Relaxed);
        // Between jobs the thread waits for the next request, which it must take up at once.
        if idle_is_reversible() {
            set_class(0, libc::SCHED_OTHER);
            // SAFETY: about the calling thread.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) };
        }
    }

    /// Called once a second or so by another thread: raises a starved job (see the module).
    pub fn check(&self) {
        if !self.running.load(Relaxed) || self.raised.load(Relaxed) {
            return;
        }
        let Some(cpu) = cpu_ns(self.clock.load(Relaxed)) else {
            return;
        };
        let now = Instant::now();
        let mut seen = self.seen.lock();
        let (before, at) = std::mem::replace(&mut *seen, (cpu, Some(now)));
        let Some(at) = at else { return };
        let wall = now.duration_since(at).as_nanos().min(u64::MAX as u128) as u64;
        if !starved(cpu.saturating_sub(before), wall) {
            return;
        }
        let tid = self.tid.load(Relaxed);
        // Before the change: an `urgent` ending now then puts it back (see there).
        self.raised.store(true, Relaxed);
        raise(tid);
        self.raises.fetch_add(1, Relaxed);
        log::debug!("background thread {tid} was starved: raised to nice {RAISED_NICE}");
    }
}

fn raise(tid: libc::pid_t) {
    set_class(tid, libc::SCHED_OTHER);
    // SAFETY: a system call on a thread of this process by its id.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, RAISED_NICE) };
}

/// While alive, the calling thread, if its yielding job is at idle priority, is in the
/// normal class (see the module). Two system calls: for steps of tens of microseconds.
pub struct Urgent(Option<Arc<AtomicBool>>);

pub fn urgent() -> Urgent {
    let Some(raised) = JOB.with(|j| j.borrow().clone()) else {
        return Urgent(None);
    };
    if raised.load(Relaxed) {
        return Urgent(None);
    }
    set_class(0, libc::SCHED_OTHER);
    Urgent(Some(raised))
}

impl Drop for Urgent {
    fn drop(&mut self) {
        let Some(raised) = &self.0 else { return };
        set_class(0, libc::SCHED_IDLE);
        // `check` may have raised the job meanwhile: its change must stand.
        if raised.load(Relaxed) {
            // SAFETY: about the calling thread.
            raise(unsafe { libc::gettid() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class() -> libc::c_int {
        // SAFETY: about the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    fn nice() -> libc::c_int {
        // SAFETY: about the calling thread (its id, as Linux's nice is per thread).
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn starved_means_under_a_tenth_of_a_core_over_half_a_second_at_least() {
        assert!(starved(0, 1_000_000_000));
        assert!(starved(99_000_000, 1_000_000_000));
        assert!(!starved(100_000_000, 1_000_000_000));
        assert!(!starved(0, 400_000_000), "too short to tell");
    }

    #[test]
    fn a_job_runs_idle_urgent_steps_normal_and_a_starved_one_is_raised() {
        std::thread::spawn(|| {
            let y = Yielding::default();
            y.begin();
            if !idle_is_reversible() {
                assert_eq!(nice(), RAISED_NICE, "the fallback: a plain lower priority");
                return;
            }
            assert_eq!(class(), libc::SCHED_IDLE);
            {
                let _u = urgent();
                assert_eq!(class(), libc::SCHED_OTHER);
            }
            assert_eq!(class(), libc::SCHED_IDLE);
            y.check();
            assert_eq!(y.raises.load(Relaxed), 0, "a check too soon tells nothing");
            // As if the last check were 2 s ago and the job had had no CPU since.
            *y.seen.lock() = (
                u64::MAX,
                Instant::now().checked_sub(std::time::Duration::from_secs(2)),
            );
            y.check();
            assert_eq!(y.raises.load(Relaxed), 1);
            assert_eq!((class(), nice()), (libc::SCHED_OTHER, RAISED_NICE));
            drop(urgent());
            assert_eq!(
                class(),
                libc::SCHED_OTHER,
                "an urgent step leaves a raised job"
            );
            y.end();
            assert_eq!((class(), nice()), (libc::SCHED_OTHER, 0), "between jobs");
            y.begin();
            assert_eq!(
                (class(), nice()),
                (libc::SCHED_IDLE, 0),
                "the next job starts idle"
            );
            y.end();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_job_begun_after_its_start_yields_only_once_started() {
        std::thread::spawn(|| {
            if !idle_is_reversible() {
                return;
            }
            let y = Yielding::default();
            y.begin_after_start();
            assert_eq!(class(), libc::SCHED_OTHER, "its instant is taken at once");
            y.started();
            assert_eq!(class(), libc::SCHED_IDLE);
            y.end();
            assert_eq!(class(), libc::SCHED_OTHER);
            // `started` on a thread that did not ask (a worker's SAVE) changes nothing.
            y.started();
            assert_eq!(class(), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }
}
