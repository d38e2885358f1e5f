//! The Lua debugger (Redis's LDB, in eval.c). After SCRIPT DEBUG SYNC (or YES) a client's next EVAL
//! runs as a debugging session: the script stops before its first line, and the worker
//! serving it talks to the client's socket directly (blocking, as Redis's ldb.conn), sending
//! logs as arrays of status lines and reading debugger commands (`step`, `continue`,
//! `print`, `break`, `eval`, `redis`, ...) until one lets the script go on. At the end
//! comes `<endsession>`, then the EVAL's reply, then the connection closes, as in Redis.
//!
//! Unlike Redis's synchronous mode, the rest of the server keeps serving meanwhile: the
//! session holds only the shards its script touched, as any script does, and once it has run
//! past `busy-reply-threshold` other clients get `-BUSY` and SCRIPT KILL can end it (a worker
//! must not wait on a person). SCRIPT DEBUG YES forks, as Redis does (see `fork`).
//!
//! The state lives in a thread-local, as Redis's is a global: one session per worker thread
//! at a time, entered and left by `session`.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, CStr};
use std::io;
use std::time::Instant;

use mlua_sys as ffi;
use mlua_sys::lua_State;

use super::lua::{self, host, push_bytes, raise, to_bytes};

/// The debugging client's connection, driven directly during a session.
pub trait Console {
    /// Makes the connection blocking (sends time out after 5 s, as Redis's, and reads come
    /// back now and then empty-handed so that the session can watch the time).
    fn begin(&mut self) -> io::Result<()>;
    /// Back to the session's non-blocking ways.
    fn end(&mut self);
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// What came, Ok(0) at the end of the stream, Err(WouldBlock or TimedOut) when nothing
    /// came for a while.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Its socket, which a forked session's child keeps (and nothing else).
    fn fd(&self) -> std::os::fd::RawFd;
}

/// Most breakpoints (LDB_BREAKPOINTS_MAX).
const MAX_BREAKPOINTS: usize = 64;
/// The default trim of logged replies and values (LDB_MAX_LEN_DEFAULT).
const MAX_LEN_DEFAULT: usize = 256;
/// Nested tables shown (LDB_MAX_VALUES_DEPTH: LUA_MINSTACK/2).
const MAX_DEPTH: usize = 10;

struct State {
    console: *mut (dyn Console + 'static),
    logs: Vec<Vec<u8>>,
    breakpoints: Vec<i32>,
    /// Stop at the next line.
    step: bool,
    /// Stop at the next line: redis.breakpoint() was called.
    luabp: bool,
    src: Vec<Vec<u8>>,
    line: i32,
    /// Debugger input not yet parsed.
    cbuf: Vec<u8>,
    maxlen: usize,
    hint_sent: bool,
    /// Since the script last went on: a run this long without a stop is stopped.
    since: Instant,
    timeout_ms: u64,
}

thread_local! {
    /// The console of the connection whose request this thread runs (see `with_console`).
    static CONSOLE: Cell<Option<*mut (dyn Console + 'static)>> = const { Cell::new(None) };
    static LDB: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Runs `f` (one request of a client in debug mode) with `console` reachable by `session`.
pub fn with_console<R>(console: &mut dyn Console, f: impl FnOnce() -> R) -> R {
    let p: *mut (dyn Console + '_) = console;
    // SAFETY: the pointer is removed again before `console`'s borrow ends (the guard runs
    // even if `f` panics), and only `session`, within `f`, uses it.
    let p: *mut (dyn Console + 'static) = unsafe { std::mem::transmute(p) };
    struct Reset(Option<*mut (dyn Console + 'static)>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CONSOLE.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(CONSOLE.with(|c| c.replace(Some(p))));
    f()
}

/// True when this thread runs a request from a client's connection (a session can start).
pub fn has_console() -> bool {
    CONSOLE.with(|c| c.get()).is_some()
}

/// Runs `run` (an EVAL) as a debugging session of `source` when this thread has a console
/// (the request came from a client's connection): None without one, and `run` not called.
/// `timeout_ms`: how long the script may run without a stop before it is stopped.
/// `forked`: the session is a forked child's, whose end is `end_child`.
pub fn session<R>(
    source: &[u8],
    timeout_ms: u64,
    forked: bool,
    run: impl FnOnce() -> R,
) -> Option<R> {
    let console = CONSOLE.with(|c| c.take())?;
    // SAFETY: see `with_console`; taken, so that no nested session can use it too.
    let c = unsafe { &mut *console };
    if let Err(e) = c.begin() {
        log::warn!("Lua debugging session not started: {e}");
        CONSOLE.with(|slot| slot.set(Some(console)));
        return None;
    }
    if !forked {
        log::warn!("Redis synchronous debugging eval session started");
    }
    let mut body = source;
    while let [rest @ .., b'\n' | b'\r'] = body {
        body = rest;
    }
    let src = body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    LDB.with(|s| {
        *s.borrow_mut() = Some(State {
            console,
            logs: Vec::new(),
            breakpoints: Vec::new(),
            step: true,
            luabp: false,
            src,
            line: 0,
            cbuf: Vec::new(),
            maxlen: MAX_LEN_DEFAULT,
            hint_sent: false,
            since: Instant::now(),
            timeout_ms: if timeout_ms == 0 { 5000 } else { timeout_ms },
        })
    });
    let r = run();
    log(b"<endsession>".to_vec());
    send_logs();
    LDB.with(|s| s.borrow_mut().take());
    if !forked {
        let c = unsafe { &mut *console };
        c.end();
        log::warn!("Redis synchronous debugging eval session ended");
    }
    CONSOLE.with(|slot| slot.set(Some(console)));
    Some(r)
}

// ---------------------------------------------------------------------------------------------
// Forked sessions (SCRIPT DEBUG YES).
//
// As in Redis, a child process debugs on a copy-on-write image of the data and exits at the
// end, its changes gone with it, while the server serves on; the parent closes its side of
// the connection at once. The caller forks holding every shard and the script token, so that
// the child's image is whole (no command half-applied) and every lock of the keyspace is
// its own; it writes nothing to the AOF nor to replicas (its effects are dropped), closes
// every descriptor but the client's socket first (epoll sets, listeners, the AOF, other
// clients: none stays open on its account), and never returns into the worker loop: it
// ends in `end_child`. Only this thread lives on in the child, so it logs nothing either
// (the logger's lock may have been held by a thread that is not there).

/// Forks for a debugging session: Some(pid) in the parent, None in the child (which keeps
/// only the console's socket and the standard streams).
pub fn fork() -> io::Result<Option<libc::pid_t>> {
    let Some(console) = CONSOLE.with(|c| c.get()) else {
        return Err(io::Error::other("no client connection"));
    };
    // SAFETY: the console outlives the request being run (see `with_console`).
    let keep = unsafe { &*console }.fd();
    // SAFETY: fork has no preconditions; the child runs only this thread's code from here,
    // touching what the parent's locks (held by the caller) make consistent.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: closing descriptors and ignoring signals in a process of one thread.
            unsafe {
                close_from(3, keep);
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
            }
            log::set_max_level(log::LevelFilter::Off);
            Ok(None)
        }
        pid => {
            log::warn!("Redis forked for debugging eval (child {pid})");
            crate::util::children::add(pid);
            Ok(Some(pid))
        }
    }
}

/// Closes every descriptor from `first` up but `keep`.
unsafe fn close_from(first: i32, keep: i32) {
    let ranges = [(first, keep - 1), (keep + 1, i32::MAX)];
    for (lo, hi) in ranges {
        if lo > hi {
            continue;
        }
        if libc::syscall(libc::SYS_close_range, lo as u32, hi as u32, 0u32) != 0 {
            // A kernel before close_range (5.9): one by one, up to the descriptor limit.
            let mut lim: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            let top = (lim.rlim_cur.min(1 << 20) as i32).min(hi.saturating_add(1));
            for fd in lo..top {
                libc::close(fd);
            }
        }
    }
}

/// Ends a forked session's child: writes the script's `reply` to the client and exits
/// (no destructor nor exit handler of the parent's runs here).
pub fn end_child(reply: &[u8]) -> ! {
    if let Some(console) = CONSOLE.with(|c| c.get()) {
        // SAFETY: the console outlives the request being run (see `with_console`).
        let _ = unsafe { &mut *console }.send(reply);
    }
    // SAFETY: _exit ends the process at once, which is all that is wanted.
    unsafe { libc::_exit(0) }
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    LDB.with(|s| s.borrow_mut().as_mut().map(f))
}

/// The script is being stepped through: its Redis calls and their replies are logged
/// (Redis's ldbIsEnabled).
pub fn logging() -> bool {
    LDB.with(|s| s.borrow().as_ref().is_some_and(|s| s.step))
}

fn log(entry: Vec<u8>) {
    with_state(|s| s.logs.push(entry));
}

/// Logs `entry`, trimmed to `maxlen` (with a hint the first time, as ldbLogWithMaxLen).
fn log_trimmed(mut entry: Vec<u8>) {
    with_state(|s| {
        if s.maxlen > 0 && entry.len() > s.maxlen {
            entry.truncate(s.maxlen);
            entry.extend_from_slice(b" ...");
            s.logs.push(entry);
            if !s.hint_sent {
                s.hint_sent = true;
                s.logs.push(
                    b"<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming."
                        .to_vec(),
                );
            }
        } else {
            s.logs.push(entry);
        }
    });
}

/// A Redis command a stepped script calls: its first ten arguments.
pub fn log_command(argv: &[Vec<u8>]) {
    let mut line = b"<redis>".to_vec();
    for (j, a) in argv.iter().enumerate() {
        if j == 10 {
            line.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
            break;
        }
        line.push(b' ');
        line.extend_from_slice(a);
    }
    log(line);
}

/// The reply a stepped script's Redis command got, in words.
pub fn log_reply(reply: &[u8]) {
    let mut line = b"<reply> ".to_vec();
    let mut pos = 0;
    human(reply, &mut pos, &mut line);
    log_trimmed(line);
}

/// An error raised to a stepped script (Redis logs it where luaPushError makes it).
pub fn log_error(msg: &[u8]) {
    let mut line = b"<error> ".to_vec();
    line.extend_from_slice(msg);
    log(line);
}

/// Sends the logs as one array of status lines (line breaks in them become spaces).
fn send_logs() {
    let Some((console, logs)) = with_state(|s| (s.console, std::mem::take(&mut s.logs))) else {
        return;
    };
    let mut proto = format!("*{}\r\n", logs.len()).into_bytes();
    for entry in logs {
        proto.push(b'+');
        proto.extend(entry.iter().map(|&b| match b {
            b'\r' | b'\n' => b' ',
            b => b,
        }));
        proto.extend_from_slice(b"\r\n");
    }
    // SAFETY: the session's console, valid while its state is installed. A failed send is
    // found by the next read, which ends the debugging.
    let _ = unsafe { &mut *console }.send(&proto);
}

// ---------------------------------------------------------------------------------------------
// Replies in words (ldbRedisProtocolToHuman).

/// Where `needle` first comes in `hay` from `from` on (C's strstr, on bytes).
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from.min(hay.len())..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

fn human(buf: &[u8], pos: &mut usize, o: &mut Vec<u8>) {
    let Some(&kind) = buf.get(*pos) else {
        return;
    };
    let end = find(buf, b"\r\n", *pos + 1).unwrap_or(buf.len());
    let head = &buf[*pos + 1..end];
    let count = || std::str::from_utf8(head).ok()?.parse::<i64>().ok();
    *pos = end + 2;
    match kind {
        b':' | b'(' => o.extend_from_slice(head),
        b'$' | b'=' => match count() {
            Some(n) if n >= 0 => {
                let n = n as usize;
                let body = &buf[(*pos).min(buf.len())..(*pos + n).min(buf.len())];
                crate::ops::monitor::repr(o, body);
                *pos += n + 2;
            }
            _ => o.extend_from_slice(b"NULL"),
        },
        b'+' | b'-' => {
            let mut text = vec![kind];
            text.extend_from_slice(head);
            crate::ops::monitor::repr(o, &text);
        }
        b'*' | b'~' | b'%' | b'>' => {
            let Some(n) = count().filter(|&n| n >= 0) else {
                o.extend_from_slice(b"NULL");
                return;
            };
            let (open, close) = match kind {
                b'~' => (&b"~("[..], b')'),
                b'%' => (&b"{"[..], b'}'),
                _ => (&b"["[..], b']'),
            };
            o.extend_from_slice(open);
            for j in 0..n {
                human(buf, pos, o);
                if kind == b'%' {
                    o.extend_from_slice(b" => ");
                    human(buf, pos, o);
                }
                if j != n - 1 {
                    o.push(b',');
                }
            }
            o.push(close);
        }
        b'_' => o.extend_from_slice(b"(null)"),
        b'#' => o.extend_from_slice(if head.first() == Some(&b't') {
            b"#true"
        } else {
            b"#false"
        }),
        b',' => {
            o.extend_from_slice(b"(double) ");
            o.extend_from_slice(head);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Lua values in words (ldbCatStackValue).

unsafe fn cat_value(l: *mut lua_State, idx: c_int, level: usize, s: &mut Vec<u8>) {
    if level == MAX_DEPTH {
        s.extend_from_slice(b"<max recursion level reached! Nested table?>");
        return;
    }
    let level = level + 1;
    let t = ffi::lua_type(l, idx);
    match t {
        ffi::LUA_TSTRING => crate::ops::monitor::repr(s, to_bytes(l, idx).unwrap_or_default()),
        ffi::LUA_TBOOLEAN => s.extend_from_slice(if ffi::lua_toboolean(l, idx) != 0 {
            b"true"
        } else {
            b"false"
        }),
        ffi::LUA_TNUMBER => s.extend_from_slice(&lua::format_c(c"%g", ffi::lua_tonumber(l, idx))),
        ffi::LUA_TNIL => s.extend_from_slice(b"nil"),
        ffi::LUA_TTABLE => {
            // Both forms made at once; which one shows is known at the end.
            let mut expected = 1.0;
            let mut is_array = true;
            let (mut as_array, mut as_map) = (Vec::new(), Vec::new());
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, idx - 1) != 0 {
                if is_array
                    && (ffi::lua_type(l, -2) != ffi::LUA_TNUMBER
                        || ffi::lua_tonumber(l, -2) != expected)
                {
                    is_array = false;
                }
                cat_value(l, -1, level, &mut as_array);
                as_array.extend_from_slice(b"; ");
                as_map.push(b'[');
                cat_value(l, -2, level, &mut as_map);
                as_map.extend_from_slice(b"]=");
                cat_value(l, -1, level, &mut as_map);
                as_map.extend_from_slice(b"; ");
                ffi::lua_pop(l, 1);
                expected += 1.0;
            }
            let chosen = if is_array { as_array } else { as_map };
            s.push(b'{');
            s.extend_from_slice(&chosen[..chosen.len().saturating_sub(2)]);
            s.push(b'}');
        }
        ffi::LUA_TFUNCTION | ffi::LUA_TUSERDATA | ffi::LUA_TTHREAD | ffi::LUA_TLIGHTUSERDATA => {
            let name = match t {
                ffi::LUA_TFUNCTION => "function",
                ffi::LUA_TUSERDATA => "userdata",
                ffi::LUA_TTHREAD => "thread",
                _ => "light-userdata",
            };
            let p = ffi::lua_topointer(l, idx);
            s.extend_from_slice(format!("\"{name}@{p:p}\"").as_bytes());
        }
        _ => s.extend_from_slice(b"\"<unknown-lua-type>\""),
    }
}

/// Logs the value on top of the stack after `prefix` (ldbLogStackValue).
unsafe fn log_top(l: *mut lua_State, prefix: &[u8]) {
    let mut s = prefix.to_vec();
    cat_value(l, -1, 0, &mut s);
    log_trimmed(s);
}

// ---------------------------------------------------------------------------------------------
// The `redis` API's debugging calls.

/// redis.debug(...): logs its arguments (a session only).
///
/// # Safety
/// A Lua C function: called by Lua with its state.
pub unsafe extern "C-unwind" fn redis_debug(l: *mut lua_State) -> c_int {
    let Some(line) = with_state(|s| s.line) else {
        return 0;
    };
    let argc = ffi::lua_gettop(l);
    let mut s = format!("<debug> line {line}: ").into_bytes();
    for j in 1..=argc {
        cat_value(l, j - argc - 1, 0, &mut s);
        if j != argc {
            s.extend_from_slice(b", ");
        }
    }
    log(s);
    0
}

/// redis.breakpoint(): stops at the next line, true in a session.
///
/// # Safety
/// A Lua C function: called by Lua with its state.
pub unsafe extern "C-unwind" fn redis_breakpoint(l: *mut lua_State) -> c_int {
    let active = with_state(|s| s.luabp = true).is_some();
    ffi::lua_pushboolean(l, active as c_int);
    1
}

// ---------------------------------------------------------------------------------------------
// The line hook and the debugger's commands.

/// The hook of a debugged script, on every line and every 100,000 instructions
/// (Redis's luaLdbLineHook).
///
/// # Safety
/// A Lua hook: called by Lua with its state and the event's record.
pub unsafe extern "C-unwind" fn line_hook(l: *mut lua_State, ar: *mut ffi::lua_Debug) {
    // Everything that owns memory is gone before an error is raised (it does not return).
    match hook(l, ar) {
        Ok(()) | Err(Stop::Gone) => {}
        Err(Stop::Raise(msg)) => {
            raise(l, msg);
        }
        Err(Stop::Kill) => {
            lua::kill(l);
        }
    }
}

unsafe fn hook(l: *mut lua_State, ar: *mut ffi::lua_Debug) -> Result<(), Stop> {
    let event = (*ar).event;
    ffi::lua_getstack(l, 0, ar);
    ffi::lua_getinfo(l, c"Sl".as_ptr(), ar);
    let line = (*ar).currentline;
    let Some((bp, step, luabp, since, timeout_ms)) = with_state(|s| {
        s.line = line;
        (
            s.breakpoints.contains(&line) || s.luabp,
            s.step,
            s.luabp,
            s.since,
            s.timeout_ms,
        )
    }) else {
        return Ok(());
    };
    if host().is_some_and(|h| h.interrupt()) {
        return Err(Stop::Kill);
    }
    let src = CStr::from_ptr((*ar).short_src.as_ptr()).to_bytes();
    if find(src, b"user_script", 0).is_none() {
        return Ok(());
    }
    let mut timeout = false;
    if event == ffi::LUA_HOOKCOUNT && !step && !bp {
        if since.elapsed().as_millis() as u64 >= timeout_ms {
            timeout = true;
        } else {
            return Ok(());
        }
    }
    if !(step || bp || timeout) {
        return Ok(());
    }
    let reason = if bp {
        if luabp {
            "redis.breakpoint() called"
        } else {
            "break point"
        }
    } else if timeout {
        "timeout reached, infinite loop?"
    } else {
        "step over"
    };
    with_state(|s| {
        s.step = false;
        s.luabp = false;
        s.logs
            .push(format!("* Stopped at {line}, stop reason = {reason}").into_bytes());
        log_source_line(s, line);
    });
    send_logs();
    let outcome = repl(l);
    with_state(|s| s.since = Instant::now());
    match outcome {
        Err(Stop::Gone) if timeout => Err(Stop::Raise(
            b"timeout during Lua debugging with client closing connection",
        )),
        other => other,
    }
}

/// Why the debugger lets the script go on otherwise than by `step` or `continue`.
enum Stop {
    /// The client is gone: the script runs on without stops.
    Gone,
    /// Raise this error in the script.
    Raise(&'static [u8]),
    /// SCRIPT KILL asked for it.
    Kill,
}

fn log_source_line(s: &mut State, line: i32) {
    let text: &[u8] = usize::try_from(line - 1)
        .ok()
        .and_then(|i| s.src.get(i))
        .map_or(b"<out of range source code line>", |l| l);
    let current = s.line == line;
    let bp = s.breakpoints.contains(&line);
    let prefix = match (current, bp) {
        (true, true) => "->#",
        (true, false) => "-> ",
        (false, true) => "  #",
        (false, false) => "   ",
    };
    let mut entry = format!("{prefix}{line:<3} ").into_bytes();
    entry.extend_from_slice(text);
    s.logs.push(entry);
}

/// `list`: the lines within `context` of `around` (0: all of them).
fn list(s: &mut State, around: i32, context: i32) {
    for j in 1..=s.src.len() as i32 {
        if around != 0 && (around - j).abs() > context {
            continue;
        }
        log_source_line(s, j);
    }
}

/// C's atoi: leading blanks, a sign, digits, whatever follows ignored.
fn atoi(b: &[u8]) -> i64 {
    let s = b.iter().skip_while(|c| c.is_ascii_whitespace());
    let mut neg = false;
    let mut n: i64 = 0;
    for (i, &c) in s.enumerate() {
        match c {
            b'-' | b'+' if i == 0 => neg = c == b'-',
            b'0'..=b'9' => n = n.wrapping_mul(10).wrapping_add((c - b'0') as i64),
            _ => break,
        }
    }
    if neg {
        -n
    } else {
        n
    }
}

/// One debugger command from `buf` (ldbReplParseCommand, as forgiving as it): Ok(None) to
/// read more, Err on a protocol error. As there, the buffer ends at a NUL byte outside a
/// bulk's body.
fn parse_command(buf: &[u8]) -> Result<Option<Vec<Vec<u8>>>, ()> {
    if buf.is_empty() {
        return Ok(None);
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let text = &buf[..end];
    let crlf = |from: usize| find(text, b"\r\n", from);
    let Some(star) = text.iter().position(|&b| b == b'*') else {
        return Err(());
    };
    let Some(e) = crlf(star) else {
        return Ok(None);
    };
    let argc = atoi(&text[star + 1..e]);
    if argc <= 0 || argc > 1024 {
        return Err(());
    }
    let mut p = e + 2;
    let mut argv = Vec::with_capacity(argc as usize);
    while argv.len() < argc as usize {
        match buf.get(p) {
            None | Some(0) => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(()),
        }
        let Some(e) = crlf(p) else {
            return Ok(None);
        };
        let len = atoi(&text[p + 1..e]);
        if len <= 0 || len > 1024 {
            return Err(());
        }
        p = e + 2;
        let len = len as usize;
        if p + len + 2 > buf.len() {
            return Ok(None);
        }
        argv.push(buf[p..p + len].to_vec());
        p += len;
        if &buf[p..p + 2] != b"\r\n" {
            return Err(());
        }
        p += 2;
    }
    Ok(Some(argv))
}

/// Reads debugger commands and runs them until one lets the script go on (ldbRepl).
unsafe fn repl(l: *mut lua_State) -> Result<(), Stop> {
    loop {
        let argv = loop {
            let parsed = with_state(|s| parse_command(&s.cbuf)).unwrap_or(Err(()));
            match parsed {
                Err(()) => return Err(Stop::Raise(b"protocol error")),
                Ok(Some(argv)) => break argv,
                Ok(None) => {}
            }
            let mut buf = [0u8; 1024];
            let Some(console) = with_state(|s| s.console) else {
                return Err(Stop::Gone);
            };
            match (*console).recv(&mut buf) {
                Ok(0) => return Err(gone()),
                Ok(n) => {
                    let full = with_state(|s| {
                        s.cbuf.extend_from_slice(&buf[..n]);
                        // A client may not make the debugger hold more than this.
                        if s.cbuf.len() > 1 << 20 {
                            s.cbuf = Vec::new();
                            true
                        } else {
                            false
                        }
                    });
                    if full == Some(true) {
                        return Err(Stop::Raise(b"max client buffer reached"));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    // Nothing yet: time to see whether SCRIPT KILL came.
                    if host().is_some_and(|h| h.interrupt()) {
                        return Err(Stop::Kill);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(gone()),
            }
        };
        with_state(|s| s.cbuf.clear());
        let name = argv[0].to_ascii_lowercase();
        let argc = argv.len();
        match name.as_slice() {
            b"h" | b"help" => {
                for line in HELP {
                    log(line.as_bytes().to_vec());
                }
            }
            b"s" | b"step" | b"n" | b"next" => {
                with_state(|s| s.step = true);
                return Ok(());
            }
            b"c" | b"continue" => return Ok(()),
            b"t" | b"trace" => trace(l),
            b"m" | b"maxlen" => maxlen(&argv),
            b"b" | b"break" => breakpoints(&argv),
            b"e" | b"eval" => eval(l, &argv),
            b"a" | b"abort" => return Err(Stop::Raise(b"script aborted for user request")),
            b"r" | b"redis" if argc > 1 => redis(l, &argv),
            b"p" | b"print" => {
                if argc == 2 {
                    print(l, &argv[1]);
                } else {
                    print_all(l);
                }
            }
            b"l" | b"list" => {
                with_state(|s| {
                    let mut around = s.line;
                    if argc > 1 {
                        let n = atoi(&argv[1]) as i32;
                        if n > 0 {
                            around = n;
                        }
                    }
                    let context = if argc > 2 { atoi(&argv[2]) as i32 } else { 5 };
                    list(s, around, context);
                });
            }
            b"w" | b"whole" => {
                with_state(|s| list(s, 1, 1_000_000));
            }
            _ => log(
                b"<error> Unknown Redis Lua debugger command or wrong number of arguments."
                    .to_vec(),
            ),
        }
        send_logs();
    }
}

/// The client went away: the script runs to its end without stopping.
fn gone() -> Stop {
    with_state(|s| {
        s.step = false;
        s.breakpoints.clear();
    });
    Stop::Gone
}

static HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

/// Redis's string2l: an exact decimal integer.
fn exact_int(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty()
        || !digits.bytes().all(|c| c.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

fn breakpoints(argv: &[Vec<u8>]) {
    with_state(|s| {
        if argv.len() == 1 {
            if s.breakpoints.is_empty() {
                s.logs
                    .push(b"No breakpoints set. Use 'b <line>' to add one.".to_vec());
            } else {
                s.logs
                    .push(format!("{} breakpoints set:", s.breakpoints.len()).into_bytes());
                for line in s.breakpoints.clone() {
                    log_source_line(s, line);
                }
            }
            return;
        }
        for arg in &argv[1..] {
            let Some(line) = exact_int(arg) else {
                let mut e = b"Invalid argument:'".to_vec();
                e.extend_from_slice(arg);
                e.push(b'\'');
                s.logs.push(e);
                continue;
            };
            if line == 0 {
                s.breakpoints.clear();
                s.logs.push(b"All breakpoints removed.".to_vec());
            } else if line > 0 {
                let line = line.min(i32::MAX as i64) as i32;
                if s.breakpoints.len() == MAX_BREAKPOINTS {
                    s.logs.push(b"Too many breakpoints set.".to_vec());
                } else if line as usize <= s.src.len() && !s.breakpoints.contains(&line) {
                    s.breakpoints.push(line);
                    list(s, line, 1);
                } else {
                    s.logs.push(b"Wrong line number.".to_vec());
                }
            } else {
                let line = (-line).min(i32::MAX as i64) as i32;
                match s.breakpoints.iter().position(|&b| b == line) {
                    Some(i) => {
                        s.breakpoints.remove(i);
                        s.logs.push(b"Breakpoint removed.".to_vec());
                    }
                    None => s
                        .logs
                        .push(b"No breakpoint in the specified line.".to_vec()),
                }
            }
        }
    });
}

fn maxlen(argv: &[Vec<u8>]) {
    with_state(|s| {
        if argv.len() == 2 {
            let mut n = atoi(&argv[1]).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            s.hint_sent = true;
            if n != 0 && n <= 60 {
                n = 60;
            }
            s.maxlen = n as usize;
        }
        let entry = match s.maxlen {
            0 => "<value> replies are unlimited.".to_owned(),
            n => format!("<value> replies are truncated at {} bytes.", n as i32),
        };
        s.logs.push(entry.into_bytes());
    });
}

/// The message of the error on top of the stack.
unsafe fn error_message(l: *mut lua_State) -> Vec<u8> {
    if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
        ffi::lua_getfield_(l, -1, c"err".as_ptr());
        let m = to_bytes(l, -1).unwrap_or(b"(null)").to_vec();
        ffi::lua_pop(l, 1);
        return m;
    }
    to_bytes(l, -1).unwrap_or(b"(null)").to_vec()
}

/// `eval <code>`: the code as an expression, else as a statement, in a frame of its own.
unsafe fn eval(l: *mut lua_State, argv: &[Vec<u8>]) {
    let code = argv[1..].join(&b' ');
    let mut expr = b"return ".to_vec();
    expr.extend_from_slice(&code);
    let load = |text: &[u8]| {
        ffi::luaL_loadbuffer(
            l,
            text.as_ptr() as *const _,
            text.len(),
            c"@ldb_eval".as_ptr(),
        )
    };
    if load(&expr) != 0 {
        ffi::lua_pop(l, 1);
        if load(&code) != 0 {
            let mut e = b"<error> ".to_vec();
            e.extend_from_slice(&error_message(l));
            log(e);
            ffi::lua_pop(l, 1);
            return;
        }
    }
    if ffi::lua_pcall(l, 0, 1, 0) != 0 {
        let mut e = b"<error> ".to_vec();
        e.extend_from_slice(&error_message(l));
        log(e);
        ffi::lua_pop(l, 1);
        return;
    }
    log_top(l, b"<retval> ");
    ffi::lua_pop(l, 1);
}

/// `redis <cmd> ...`: through redis.call itself, stepping, so that the call and its reply
/// are logged as a stepped script's are.
unsafe fn redis(l: *mut lua_State, argv: &[Vec<u8>]) {
    if ffi::lua_checkstack(l, argv.len() as c_int + 1) == 0 {
        log_reply(b"max lua stack reached");
        return;
    }
    ffi::lua_getfield_(l, ffi::LUA_GLOBALSINDEX, c"redis".as_ptr());
    ffi::lua_pushstring_(l, c"call".as_ptr());
    ffi::lua_gettable(l, -2);
    for a in &argv[1..] {
        push_bytes(l, a);
    }
    with_state(|s| s.step = true);
    ffi::lua_pcall(l, argv.len() as c_int - 1, 1, 0);
    with_state(|s| s.step = false);
    ffi::lua_pop(l, 2);
}

/// `trace`: the script's frames, innermost first.
unsafe fn trace(l: *mut lua_State) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        ffi::lua_getinfo(l, c"Snl".as_ptr(), &mut ar);
        let src = CStr::from_ptr(ar.short_src.as_ptr()).to_bytes();
        if find(src, b"user_script", 0).is_some() {
            let name = if ar.name.is_null() {
                "top level".to_owned()
            } else {
                CStr::from_ptr(ar.name).to_string_lossy().into_owned()
            };
            let at = if level == 0 { "In" } else { "From" };
            let line = ar.currentline;
            with_state(|s| {
                s.logs.push(format!("{at} {name}:").into_bytes());
                log_source_line(s, line);
            });
        }
        level += 1;
    }
    if level == 0 {
        log(b"<error> Can't retrieve Lua stack.".to_vec());
    }
}

/// Calls `f` with each local of the frame `ar` names, its value on top of the stack while
/// `f` runs; stops when `f` says so (true).
unsafe fn each_local(
    l: *mut lua_State,
    ar: &ffi::lua_Debug,
    mut f: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut i = 1;
    loop {
        let local = ffi::lua_getlocal(l, ar, i);
        if local.is_null() {
            return false;
        }
        i += 1;
        let stop = f(CStr::from_ptr(local).to_bytes());
        ffi::lua_pop(l, 1);
        if stop {
            return true;
        }
    }
}

/// `print <var>`: the innermost local of that name, or KEYS or ARGV.
unsafe fn print(l: *mut lua_State, name: &[u8]) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        level += 1;
        let found = each_local(l, &ar, |local| {
            let hit = local == name;
            if hit {
                log_top(l, b"<value> ");
            }
            hit
        });
        if found {
            return;
        }
    }
    if name == b"ARGV" || name == b"KEYS" {
        let global = if name == b"ARGV" { c"ARGV" } else { c"KEYS" };
        ffi::lua_getfield_(l, ffi::LUA_GLOBALSINDEX, global.as_ptr());
        log_top(l, b"<value> ");
        ffi::lua_pop(l, 1);
    } else {
        log(b"No such variable.".to_vec());
    }
}

/// `print`: the current frame's locals.
unsafe fn print_all(l: *mut lua_State) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut vars = 0;
    if ffi::lua_getstack(l, 0, &mut ar) != 0 {
        each_local(l, &ar, |local| {
            if find(local, b"(*temporary)", 0).is_none() {
                let mut prefix = b"<value> ".to_vec();
                prefix.extend_from_slice(local);
                prefix.extend_from_slice(b" = ");
                log_top(l, &prefix);
                vars += 1;
            }
            false
        });
    }
    if vars == 0 {
        log(b"No local variables in the current context.".to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_redis_parses_them() {
        let one = |b: &[u8]| parse_command(b);
        assert_eq!(
            one(b"*2\r\n$1\r\np\r\n$4\r\nKEYS\r\n"),
            Ok(Some(vec![b"p".to_vec(), b"KEYS".to_vec()]))
        );
        // Whatever comes before the count is skipped, as strchr skips it.
        assert_eq!(one(b"xx*1\r\n$1\r\ns\r\n"), Ok(Some(vec![b"s".to_vec()])));
        assert_eq!(one(b"*1\r\n$1\r\ns"), Ok(None));
        assert_eq!(one(b"*1\r\n"), Ok(None));
        assert_eq!(one(b""), Ok(None));
        assert_eq!(one(b"step\r\n"), Err(()));
        assert_eq!(one(b"*0\r\n"), Err(()));
        assert_eq!(one(b"*1025\r\n"), Err(()));
        assert_eq!(one(b"*1\r\n$0\r\n\r\n"), Err(()));
        assert_eq!(one(b"*1\r\n+s\r\n"), Err(()));
        assert_eq!(one(b"*1\r\n$1\r\nsXY"), Err(()));
        // A NUL inside a bulk is the bulk's; the buffer ends at one outside.
        assert_eq!(
            one(b"*1\r\n$3\r\na\0b\r\n"),
            Ok(Some(vec![b"a\0b".to_vec()]))
        );
        assert_eq!(one(b"*1\r\n\0$1\r\ns\r\n"), Ok(None));
    }

    #[test]
    fn replies_read_as_redis_words_them() {
        let words = |r: &[u8]| {
            let mut o = Vec::new();
            human(r, &mut 0, &mut o);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(words(b":12\r\n"), "12");
        assert_eq!(words(b"$3\r\na\"b\r\n"), "\"a\\\"b\"");
        assert_eq!(words(b"$-1\r\n"), "NULL");
        assert_eq!(words(b"*-1\r\n"), "NULL");
        assert_eq!(words(b"+OK\r\n"), "\"+OK\"");
        assert_eq!(words(b"-ERR no\r\n"), "\"-ERR no\"");
        assert_eq!(words(b"*2\r\n:1\r\n$1\r\nx\r\n"), "[1,\"x\"]");
        assert_eq!(words(b"%1\r\n$1\r\nk\r\n#t\r\n"), "{\"k\" => #true}");
        assert_eq!(words(b"~1\r\n,1.5\r\n"), "~((double) 1.5)");
        assert_eq!(words(b"_\r\n"), "(null)");
    }

    #[test]
    fn atoi_stops_where_c_stops() {
        assert_eq!(atoi(b" 12x"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(exact_int(b"012"), None);
        assert_eq!(exact_int(b"-4"), Some(-4));
        assert_eq!(exact_int(b"4a"), None);
    }
}
