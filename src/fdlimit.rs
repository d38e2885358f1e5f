//! The open files limit (RLIMIT_NOFILE) that `maxclients` needs, raised and reported as Redis's
//! `adjustOpenFilesLimit` does (server.c, 7.0): each client costs one descriptor, and a few
//! more are kept for the listener, the epoll set, the AOF and the log.
//!
//! Below everything else: it knows only numbers and the OS, so that both the start-up code and
//! CONFIG SET can use it.

/// Descriptors kept besides the clients' (Redis's CONFIG_MIN_RESERVED_FDS).
pub const RESERVED_FDS: u64 = 32;

/// Raises the open files limit as far as `maxclients` needs and the OS allows, and returns the
/// number of clients the limit covers: `maxclients`, or less (then logged in Redis's words).
/// None when the limit leaves no room for a single client.
pub fn adjust(maxclients: u64) -> Option<u64> {
    let want = maxclients.saturating_add(RESERVED_FDS);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == -1 {
        log::warn!(
            "Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max \
             clients configuration accordingly.",
            std::io::Error::last_os_error()
        );
        return Some(1024 - RESERVED_FDS);
    }
    let old = limit.rlim_cur;
    if old >= want {
        return Some(maxclients);
    }
    // As Redis: the limit asked for, else the highest one allowed below it, 16 at a time.
    let mut best = want;
    let mut error = None;
    while best > old {
        let try_limit = libc::rlimit {
            rlim_cur: best,
            // Redis sets the hard limit to the same value; keeping a higher hard limit as it
            // is costs nothing and leaves a later CONFIG SET maxclients room to raise it.
            rlim_max: limit.rlim_max.max(best),
        };
        // SAFETY: `try_limit` is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &try_limit) } != -1 {
            break;
        }
        error = Some(std::io::Error::last_os_error());
        if best < 16 {
            best = old;
            break;
        }
        best -= 16;
    }
    best = best.max(old);
    if best >= want {
        log::info!(
            "Increased maximum number of open files to {want} (it was originally set to {old})."
        );
        return Some(maxclients);
    }
    if best <= RESERVED_FDS {
        log::warn!(
            "Your current 'ulimit -n' of {old} is not enough for the server to start. Please \
             increase your open file limit to at least {want}. Exiting."
        );
        return None;
    }
    let reduced = best - RESERVED_FDS;
    let reason = error.map_or_else(|| "unknown".to_string(), |e| strerror(&e));
    log::warn!(
        "You requested maxclients of {maxclients} requiring at least {want} max file descriptors."
    );
    log::warn!("Server can't set maximum open files to {want} because of OS error: {reason}.");
    log::warn!(
        "Current maximum open files is {best}. maxclients has been reduced to {reduced} to \
         compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
    );
    Some(reduced)
}

/// CONFIG SET maxclients (Redis's `updateMaxclients`): the limit is raised for the new value,
/// or the change is refused with the number of clients the OS can handle.
pub fn update_maxclients(maxclients: u64) -> Result<(), String> {
    match adjust(maxclients) {
        Some(n) if n == maxclients => Ok(()),
        n => Err(format!(
            "The operating system is not able to handle the specified number of clients, try \
             with {}",
            n.unwrap_or(0)
        )),
    }
}

/// Makes the process's descriptor table big enough for `maxclients` now, while the process
/// has one thread. Linux grows it by doubling as descriptors are opened, and in a process with
/// several threads each growth waits for an RCU grace period, tens of milliseconds on a loaded
/// machine, during which the accept loop stands still and a burst of new clients overflows
/// the listen backlog (each dropped SYN costs that client a second).
pub fn grow_table(maxclients: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == -1 {
        return;
    }
    let top = maxclients
        .saturating_add(RESERVED_FDS)
        .min(limit.rlim_cur)
        .min(i32::MAX as u64) as libc::c_int;
    if top < 1 {
        return;
    }
    // Any open descriptor will do to duplicate (stdin may be closed).
    for from in 0..3 {
        // SAFETY: F_DUPFD picks the lowest free descriptor from `top - 1` up (it closes
        // nothing); the duplicate is closed at once.
        unsafe {
            let fd = libc::fcntl(from, libc::F_DUPFD_CLOEXEC, top - 1);
            if fd >= 0 {
                libc::close(fd);
                return;
            }
        }
    }
}

use crate::util::strerror;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_already_high_enough_is_left_alone() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        let n = limit.rlim_cur.saturating_sub(RESERVED_FDS).max(1);
        assert_eq!(adjust(n), Some(n));
        assert_eq!(update_maxclients(n), Ok(()));
    }

    #[test]
    fn os_messages_lose_the_error_number() {
        let e = std::io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(strerror(&e), "Operation not permitted");
    }
}
