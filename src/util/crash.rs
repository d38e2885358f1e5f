//! The crash report (Redis's sigsegvHandler and bugReportStart): a fatal signal (SIGSEGV,
//! SIGBUS, SIGFPE, SIGILL, SIGABRT) writes Redis's report to the log, the signal's number and
//! code and the stack of the thread that took it, then ends the process with the same signal,
//! so that a core dump and the exit status say what they would have said.
//!
//! The handler writes with write(2) to a descriptor of the log taken at start, from a buffer
//! on its stack: the logger's lock may be held by the thread that crashed. glibc's backtrace
//! and backtrace_symbols_fd write the stack without allocating (as Redis uses them).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// Where the report goes: the log file's descriptor, or stderr.
static LOG_FD: AtomicI32 = AtomicI32::new(2);

const SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
];

extern "C" {
    fn backtrace(buffer: *mut *mut libc::c_void, size: libc::c_int) -> libc::c_int;
    fn backtrace_symbols_fd(buffer: *const *mut libc::c_void, size: libc::c_int, fd: libc::c_int);
}

/// Installs the handler; `log_fd` (kept open for the life of the process) is the log file's,
/// None for stderr.
pub fn install(log_fd: Option<RawFd>) {
    if let Some(fd) = log_fd {
        LOG_FD.store(fd, Ordering::Relaxed);
    }
    // Loaded now: the first call of backtrace loads libgcc, which allocates.
    let mut frames = [std::ptr::null_mut(); 1];
    // SAFETY: `frames` has room for the one frame asked for.
    unsafe { backtrace(frames.as_mut_ptr(), 1) };
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction is valid; its fields are set before use, and `handler`
        // has the signature SA_SIGINFO asks for.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            // SA_RESETHAND: raised again from the handler, the signal takes its default action.
            // SA_ONSTACK: a stack overflow is reported on the thread's alternate stack (Rust
            // gives every thread one).
            sa.sa_flags =
                libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_RESETHAND | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// A fixed buffer that formats without allocating.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 256],
            len: 0,
        }
    }

    fn text(&mut self, s: &[u8]) -> &mut Self {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
        self
    }

    fn num(&mut self, n: i64) -> &mut Self {
        let mut digits = itoa::Buffer::new();
        let s = digits.format(n);
        self.text(s.as_bytes())
    }

    fn write(&self, fd: RawFd) {
        let mut at = 0;
        while at < self.len {
            // SAFETY: writes the initialised part of `buf`.
            let n = unsafe { libc::write(fd, self.buf[at..].as_ptr().cast(), self.len - at) };
            if n <= 0 {
                return;
            }
            at += n as usize;
        }
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let fd = LOG_FD.load(Ordering::Relaxed);
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let code = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_code }
    };
    // SAFETY: plain syscalls.
    let (pid, now) = unsafe { (libc::getpid(), libc::time(std::ptr::null_mut())) };
    Line::new()
        .text(b"\n\n=== RUDIS BUG REPORT START: Cut & paste starting from here ===\n")
        .num(pid as i64)
        .text(b":M ")
        .num(now)
        .text(b" # rudis ")
        .text(env!("CARGO_PKG_VERSION").as_bytes())
        .text(b" crashed by signal: ")
        .num(sig as i64)
        .text(b", si_code: ")
        .num(code as i64)
        .text(b"\n\n------ STACK TRACE ------\n")
        .write(fd);
    let mut frames = [std::ptr::null_mut(); 100];
    // SAFETY: `frames` has room for the frames asked for; the symbols go straight to `fd`.
    unsafe {
        let n = backtrace(frames.as_mut_ptr(), frames.len() as libc::c_int);
        backtrace_symbols_fd(frames.as_ptr(), n, fd);
    }
    Line::new()
        .text(b"\n=== RUDIS BUG REPORT END. Make sure to include from START to END. ===\n\n")
        .write(fd);
    // SAFETY: SA_RESETHAND restored the default action: this ends the process by `sig`.
    unsafe {
        libc::raise(sig);
    }
}

/// DEBUG PANIC: Redis's serverPanic, a report that says so, then the crash.
pub fn panic_now(what: &str) -> ! {
    log::warn!("------------------------------------------------");
    log::warn!("!!! Software Failure. Press left mouse button to continue");
    log::warn!("Guru Meditation: {what} #{}:{}", file!(), line!());
    std::process::abort()
}

/// DEBUG SEGFAULT: the report of a SIGSEGV.
pub fn segfault_now() -> ! {
    // SAFETY: raising a signal; the handler reports it and the default action ends the process.
    unsafe {
        libc::raise(libc::SIGSEGV);
    }
    std::process::abort()
}
