//! Secrets given on the command line, hidden from `ps`.
//!
//! `/proc/PID/cmdline` is readable by every local user, so `rudis-server --requirepass s3cret`
//! would show the password to all of them. Redis avoids this by rewriting its process title;
//! rudis overwrites the secret values in the process's own argument area, which is what the
//! kernel shows, and leaves everything else (so `pgrep -f 'rudis-server --port 7000'` still
//! works). A config file readable only by its owner remains the safer place for secrets.

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering::Relaxed};

/// The flags whose values are secrets.
pub const SECRET_FLAGS: &[&str] = &[
    "requirepass",
    "masterauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

static ARGC: AtomicIsize = AtomicIsize::new(0);
static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(std::ptr::null_mut());

/// glibc calls `.init_array` functions with the process's own `argc`/`argv` (Rust's std takes
/// its arguments the same way); these pointers are the memory `/proc/PID/cmdline` reads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array"]
static CAPTURE: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture;

extern "C" fn capture(argc: c_int, argv: *mut *mut c_char, _env: *mut *mut c_char) {
    ARGC.store(argc as isize, Relaxed);
    ARGV.store(argv, Relaxed);
}

/// Overwrites with NULs the value of every flag named in `SECRET_FLAGS` (`--flag value` and
/// `--flag=value`). Call once the arguments are parsed: they are read from this memory.
pub fn hide_secrets() {
    let (argc, argv) = (ARGC.load(Relaxed), ARGV.load(Relaxed));
    if argv.is_null() {
        return;
    }
    let is_secret = |name: &[u8]| {
        SECRET_FLAGS
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f.as_bytes()))
    };
    let mut hide_next = false;
    for i in 0..argc {
        // SAFETY: argv holds argc valid NUL-terminated strings for the whole process life
        // (the C runtime's contract), and nothing else reads or writes them concurrently
        // this early: the arguments are parsed and no thread has started.
        unsafe {
            let arg = *argv.offset(i);
            if arg.is_null() {
                break;
            }
            let bytes = CStr::from_ptr(arg).to_bytes();
            let len = bytes.len();
            if hide_next {
                std::ptr::write_bytes(arg, 0, len);
                hide_next = false;
                continue;
            }
            let Some(flag) = bytes.strip_prefix(b"--") else {
                continue;
            };
            match flag.iter().position(|&b| b == b'=') {
                Some(eq) if is_secret(&flag[..eq]) => {
                    let start = 2 + eq + 1;
                    std::ptr::write_bytes(arg.add(start), 0, len - start);
                }
                None if is_secret(flag) => hide_next = true,
                _ => {}
            }
        }
    }
}
