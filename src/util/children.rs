//! The child processes the server forks (forked Lua debugging sessions): reaped by the cron,
//! killed at shutdown as Redis kills its children. INFO's total_forks counts them and the
//! background jobs Redis forks for, which are threads here (`background_job`).

use parking_lot::Mutex;

static CHILDREN: Mutex<Vec<libc::pid_t>> = parking_lot::const_mutex(Vec::new());
/// Every fork, and every background job in a fork's place, since start (INFO's total_forks).
static FORKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn add(pid: libc::pid_t) {
    FORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CHILDREN.lock().push(pid);
}

/// A background save, AOF rewrite or replication snapshot began: Redis forks a child for
/// each, and monitoring (and Redis's own tests) count them by total_forks.
pub fn background_job() {
    FORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

pub fn forks() -> u64 {
    FORKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Reaps the children that have ended.
pub fn reap() {
    CHILDREN.lock().retain(|&pid| {
        let mut status = 0;
        // SAFETY: waits without blocking for a child of ours.
        unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == 0 }
    });
}

/// Kills and reaps every child.
pub fn kill_all() {
    let children = std::mem::take(&mut *CHILDREN.lock());
    for pid in children {
        log::warn!("Killing debugging session {pid}");
        // SAFETY: signals and reaps a child of ours.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}
