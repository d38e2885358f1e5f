//! The process title, as Redis's setproctitle.c sets it, and secrets given on the command
//! line hidden from `ps`.
//!
//! `/proc/PID/cmdline` reads the process's own argument area. Redis (`set-proc-title yes`,
//! its default) writes its title there from `proc-title-template`; rudis does the same, after
//! moving the arguments and the environment strings that follow them elsewhere so that the
//! whole area is the title's. Before that, the values of secret flags (`--requirepass s3cret`)
//! are overwritten in place, so that they never show even with `set-proc-title no`. A config
//! file readable only by its owner remains the safer place for secrets.

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering::Relaxed};
use std::sync::Mutex;

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
/// its arguments the same way); these pointers are the memory `/proc/PID/cmdline` reads. The
/// binary installs this one (a library's `.init_array` entry may not be linked in).
pub extern "C" fn capture(argc: c_int, argv: *mut *mut c_char, _env: *mut *mut c_char) {
    ARGC.store(argc as isize, Relaxed);
    ARGV.store(argv, Relaxed);
}

/// Overwrites with NULs the value of every flag named in `SECRET_FLAGS` (`--flag value` and
/// `--flag=value`). Call once the arguments are parsed: they are read from this memory.
fn hide_secrets() {
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

/// The title's room: the argument area and the environment strings right after it.
struct Area {
    base: *mut c_char,
    len: usize,
    /// Where argv[0]'s NUL was (setproctitle's SPT.nul).
    nul: usize,
    /// Cleared whole once, by the first title.
    reset: bool,
}

// SAFETY: the area is memory nothing else uses once `init` has moved the arguments and the
// environment out of it; the mutex orders the writes.
unsafe impl Send for Area {}

static AREA: Mutex<Option<Area>> = Mutex::new(None);
static ARG0: Mutex<String> = Mutex::new(String::new());

/// Redis's SPT_MAXTITLE.
const MAX_TITLE: usize = 255;

extern "C" {
    static mut environ: *mut *mut c_char;
}

/// Hides the secrets, then frees the argument area for titles as Redis's spt_init: it runs
/// from argv[0] over every argument and environment string that follows contiguously, and
/// those strings are copied elsewhere (the argument and environment arrays point to the
/// copies). Call once, from `main`, after the arguments are parsed and before any thread
/// starts: nothing may read the environment meanwhile.
pub fn init() {
    let (argc, argv) = (ARGC.load(Relaxed), ARGV.load(Relaxed));
    if argv.is_null() || argc < 1 {
        return hide_secrets();
    }
    // SAFETY: argv holds argc valid NUL-terminated strings, environ a NULL-terminated array of
    // them (the C runtime's contract); no other thread exists yet to read or change them, and
    // the copies made replace the pointers before the originals are overwritten by a title.
    unsafe {
        let base = *argv;
        if base.is_null() {
            return hide_secrets();
        }
        let strlen = |p: *const c_char| CStr::from_ptr(p).to_bytes().len();
        let nul = base.add(strlen(base));
        let mut end = nul.add(1);
        let extend = |end: &mut *mut c_char, p: *mut c_char| {
            if p.is_null() || p < *end {
                return;
            }
            if *end >= p && *end <= p.add(strlen(p)) {
                *end = p.add(strlen(p) + 1);
            }
        };
        for i in 0..argc {
            extend(&mut end, *argv.offset(i));
        }
        let envp = environ;
        let mut envc = 0;
        if !envp.is_null() {
            while !(*envp.add(envc)).is_null() {
                extend(&mut end, *envp.add(envc));
                envc += 1;
            }
        }
        *ARG0.lock().unwrap_or_else(|e| e.into_inner()) =
            String::from_utf8_lossy(CStr::from_ptr(base).to_bytes()).into_owned();
        // The secrets go from the original strings, which `ps` shows until a title is set
        // (and for good with `set-proc-title no`).
        hide_secrets();
        // Each string inside the area is copied out, its pointer moved to the copy; on a
        // failed copy the area is left alone (no title).
        let relocate = |slot: *mut *mut c_char| {
            let p = *slot;
            if p >= base && p < end {
                let copy = libc::strdup(p);
                if copy.is_null() {
                    return false;
                }
                *slot = copy;
            }
            true
        };
        let moved =
            (0..envc).all(|i| relocate(envp.add(i))) && (1..argc).all(|i| relocate(argv.offset(i)));
        if !moved {
            return;
        }
        *AREA.lock().unwrap_or_else(|e| e.into_inner()) = Some(Area {
            base,
            len: end.offset_from(base) as usize,
            nul: nul.offset_from(base) as usize,
            reset: false,
        });
    }
}

/// The program's name as it was started (`{title}` in proc-title-template).
pub fn arg0() -> String {
    ARG0.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Writes `title` as the process title, as Redis's setproctitle: cut to the area (and 255
/// bytes), NUL-padded.
pub fn set(title: &str) {
    let mut guard = AREA.lock().unwrap_or_else(|e| e.into_inner());
    let Some(area) = guard.as_mut() else {
        return;
    };
    let bytes = title.as_bytes();
    // SAFETY: every offset written is below area.len, inside the area `init` freed.
    unsafe {
        if !area.reset {
            std::ptr::write_bytes(area.base, 0, area.len);
            area.reset = true;
        } else {
            std::ptr::write_bytes(area.base, 0, area.len.min(MAX_TITLE + 1));
        }
        let len = bytes.len().min(area.len.min(MAX_TITLE + 1) - 1);
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), area.base, len);
        // setproctitle's trick for the kernel's reading of a rewritten area.
        if len < area.nul {
            *area.base.add(area.nul) = b'.' as c_char;
        } else if len == area.nul && len + 1 < area.len {
            *area.base.add(area.nul) = b' ' as c_char;
            *area.base.add(len + 1) = 0;
        }
    }
}

/// `template` with each `{name}` replaced by `var(name)` and `{{` read as `{`, as Redis's
/// sdstemplate; None for an unknown name or an unclosed `{`. Trimmed of spaces, as Redis's
/// expandProcTitleTemplate.
pub fn expand(template: &str, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if after.is_empty() {
            return None;
        }
        if let Some(quoted) = after.strip_prefix('{') {
            out.push('{');
            rest = quoted;
            continue;
        }
        let close = after.find('}')?;
        out.push_str(&var(&after[..close])?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Some(out.trim_matches(' ').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_as_sdstemplate_reads_them() {
        let var = |n: &str| match n {
            "title" => Some("rudis-server".to_string()),
            "port" => Some("6379".to_string()),
            "server-mode" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            expand("{title} *:{port} {server-mode}", var).as_deref(),
            Some("rudis-server *:6379")
        );
        assert_eq!(expand("{{x} }", var).as_deref(), Some("{x} }"));
        assert_eq!(expand("{invalid-var}", var), None);
        assert_eq!(expand("{title", var), None);
        assert_eq!(expand("a {", var), None);
    }
}
