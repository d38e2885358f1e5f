//! The Lua interpreter, set up as Redis 7.0 sets up its own (script_lua.c, eval.c,
//! function_lua.c): the same libraries, the same `redis` API, the same sandbox (globals and
//! library tables read-only, unknown globals an error), and the same conversions between Lua
//! values and replies. It is Redis's own Lua 5.1 (csrc/lua, compiled by build.rs), reached
//! through mlua's raw bindings: the functions the scripts call are C functions written here in
//! Rust, ported from Redis's, so errors are raised as the same Lua values Redis raises.
//!
//! Each worker thread has its own interpreters (one for EVAL, one for functions, as Redis has
//! two), so scripts on different keys run in parallel. What a script's `redis.call` runs goes
//! through the `Host` the caller installs for the run (see `super::run`).
//!
//! Raising a Lua error unwinds with `longjmp`, which would skip Rust destructors: every C
//! function below finishes its Rust work (dropping what it owns) before it calls `lua_error`.

use std::cell::Cell;
use std::ffi::{c_char, c_int, CStr};
use std::ptr;

use mlua_sys as ffi;
use mlua_sys::lua_State;

use crate::resp::ReplyBuf;
use crate::scripts::flags as sflags;

extern "C-unwind" {
    // Redis's patch to Lua (lapi.c): tables scripts cannot change.
    fn lua_enablereadonlytable(L: *mut lua_State, idx: c_int, enabled: c_int);
    fn lua_isreadonlytable(L: *mut lua_State, idx: c_int) -> c_int;
    fn luaopen_cjson(L: *mut lua_State) -> c_int;
    fn luaopen_struct(L: *mut lua_State) -> c_int;
    fn luaopen_cmsgpack(L: *mut lua_State) -> c_int;
    fn luaopen_bit(L: *mut lua_State) -> c_int;
}

/// The version scripts see as REDIS_VERSION_NUM: 0x00MMmmpp, as Redis numbers it.
fn version_num() -> f64 {
    let mut parts = crate::commands::connection::REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let mut n = 0;
    for _ in 0..3 {
        n = (n << 8) | parts.next().unwrap_or(0);
    }
    n as f64
}

/// What a script run asks of the server.
pub trait Host {
    /// Runs `argv` as `redis.call` does and leaves its reply, in the script's protocol, in
    /// `reply`; or says why the command was refused before it ran (Redis's `scriptCall`
    /// errors, without the `ERR ` code).
    fn call(&mut self, argv: &[&[u8]], reply: &mut Vec<u8>) -> Result<(), String>;
    /// redis.setresp.
    fn set_resp(&mut self, resp: u8);
    fn resp(&self) -> u8;
    /// Where the script's reply goes.
    fn out(&mut self) -> &mut ReplyBuf;
    /// redis.set_repl (REPL_* bits).
    fn set_repl(&mut self, flags: u8);
    /// Called every 100,000 instructions: true if the script is to stop (SCRIPT KILL).
    fn interrupt(&mut self) -> bool;
    /// redis.acl_check_cmd: whether the caller's user may run `argv`, None if `argv` names no
    /// command (or no subcommand of a container).
    fn acl_check(&self, argv: &[&[u8]]) -> Option<bool>;
}

/// A function registered while a library loads.
pub struct Registered {
    pub name: String,
    pub description: Option<String>,
    pub flags: u32,
    pub reference: c_int,
}

thread_local! {
    /// The running script's host (a `*mut dyn Host` as two words), null between runs.
    static HOST: Cell<Option<*mut (dyn Host + 'static)>> = const { Cell::new(None) };
    /// The library being loaded: where register_function puts what it registers.
    static LOADING: Cell<*mut Vec<Registered>> = const { Cell::new(ptr::null_mut()) };
    static LOAD_DEADLINE: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
    /// Redis's redisLrand48 state (math.random): one per thread here.
    static RAND48: Cell<u64> = const { Cell::new(0x1234_ABCD_330E) };
}

/// One interpreter.
pub struct Vm {
    pub l: *mut lua_State,
    /// The script cache or library generation it was built for.
    pub generation: u64,
    /// For a functions interpreter: each function's registry reference.
    pub functions: std::collections::HashMap<String, c_int>,
    /// The state's allocator (`lua_newstate`'s user data), freed after the state.
    pool: *mut super::pool::Pool,
}

// A Lua state is tied to no thread: any may use it, one at a time, which the slot holding it
// ensures (see `vms`). What its C functions find in thread locals (the host of a run) is set
// by the thread running the call, for the call.
unsafe impl Send for Vm {}

impl Drop for Vm {
    fn drop(&mut self) {
        unsafe {
            ffi::lua_close(self.l);
            drop(Box::from_raw(self.pool));
        }
    }
}

/// As lauxlib's: an error outside any protected call (Lua then exits).
unsafe extern "C-unwind" fn at_panic(l: *mut lua_State) -> c_int {
    let msg = to_bytes(l, -1).unwrap_or_default();
    log::error!(
        "PANIC: unprotected error in call to Lua API ({})",
        String::from_utf8_lossy(msg)
    );
    0
}

/// A new Lua state on its own `pool::Pool`.
unsafe fn new_state() -> (*mut lua_State, *mut super::pool::Pool) {
    let pool = Box::into_raw(super::pool::Pool::new());
    let l = ffi::lua_newstate(super::pool::lua_alloc, pool as *mut std::ffi::c_void);
    assert!(!l.is_null(), "no memory for a Lua interpreter");
    ffi::lua_atpanic(l, at_panic);
    (l, pool)
}

// ---------------------------------------------------------------------------------------------
// Small helpers over the raw API.

pub(super) unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    ffi::lua_pushlstring_(l, b.as_ptr() as *const c_char, b.len());
}

unsafe fn set_field_fn(l: *mut lua_State, name: &CStr, f: ffi::lua_CFunction) {
    ffi::lua_pushstring_(l, name.as_ptr());
    ffi::lua_pushcclosure(l, f, 0);
    ffi::lua_settable(l, -3);
}

unsafe fn set_field_num(l: *mut lua_State, name: &CStr, n: f64) {
    ffi::lua_pushstring_(l, name.as_ptr());
    ffi::lua_pushnumber(l, n);
    ffi::lua_settable(l, -3);
}

/// The bytes of the string (or number, converted in place) at `idx`.
pub(super) unsafe fn to_bytes<'l>(l: *mut lua_State, idx: c_int) -> Option<&'l [u8]> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

unsafe fn is_string(l: *mut lua_State, idx: c_int) -> bool {
    ffi::lua_isstring(l, idx) != 0
}

unsafe fn is_table(l: *mut lua_State, idx: c_int) -> bool {
    ffi::lua_type(l, idx) == ffi::LUA_TTABLE
}

unsafe fn is_function(l: *mut lua_State, idx: c_int) -> bool {
    ffi::lua_type(l, idx) == ffi::LUA_TFUNCTION
}

unsafe fn is_boolean(l: *mut lua_State, idx: c_int) -> bool {
    ffi::lua_type(l, idx) == ffi::LUA_TBOOLEAN
}

/// Redis's luaPushErrorBuff: an error table `{err="CODE message"}`. A message starting with
/// `-` carries its own code; any other gets `ERR`. Trailing CR/LF are trimmed.
unsafe fn push_error(l: *mut lua_State, msg: &[u8]) {
    if super::ldb::logging() {
        super::ldb::log_error(msg);
    }
    let text = error_text(msg);
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushstring_(l, c"err".as_ptr());
    push_bytes(l, &text);
    ffi::lua_settable(l, -3);
}

fn error_text(msg: &[u8]) -> Vec<u8> {
    let (code, rest): (&[u8], &[u8]) = match msg.strip_prefix(b"-") {
        Some(m) => match m.iter().position(|&b| b == b' ') {
            Some(i) => (&m[..i], &m[i + 1..]),
            None => (b"ERR", m),
        },
        None => (b"ERR", msg),
    };
    // sdstrim(msg, "\r\n"): from both ends.
    let trim = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = rest.iter().position(|b| !trim(b)).unwrap_or(rest.len());
    let end = rest.iter().rposition(|b| !trim(b)).map_or(start, |i| i + 1);
    let mut text = code.to_vec();
    text.push(b' ');
    text.extend_from_slice(&rest[start..end]);
    text
}

/// Pushes an error table and raises it. Only for callers that own nothing needing a drop.
pub(super) unsafe fn raise(l: *mut lua_State, msg: &[u8]) -> c_int {
    push_error(l, msg);
    ffi::lua_error(l)
}

pub(super) fn host() -> Option<&'static mut dyn Host> {
    // SAFETY: set by `with_host` for exactly the duration of a run on this thread, during
    // which nothing else holds the host.
    HOST.with(|h| h.get()).map(|p| unsafe { &mut *p })
}

/// Runs `f` with `host` installed for the Lua functions to reach.
pub fn with_host<R>(host: &mut dyn Host, f: impl FnOnce() -> R) -> R {
    // SAFETY: the pointer is removed again before `host`'s borrow ends (the guard below runs
    // even if `f` panics).
    let p: *mut (dyn Host + '_) = host;
    let p: *mut (dyn Host + 'static) = unsafe { std::mem::transmute(p) };
    struct Reset(Option<*mut (dyn Host + 'static)>);
    impl Drop for Reset {
        fn drop(&mut self) {
            HOST.with(|h| h.set(self.0));
        }
    }
    let _reset = Reset(HOST.with(|h| h.replace(Some(p))));
    f()
}

// ---------------------------------------------------------------------------------------------
// Reply (RESP) to Lua: Redis's redisProtocolToLuaType.

/// Pushes the Lua value of the reply at `buf[*pos..]` (if `push`; else only skips it).
/// Returns false if the reply is malformed (it is the server's own, so this is a bug; the
/// value pushed is then nil).
unsafe fn push_reply(l: *mut lua_State, buf: &[u8], pos: &mut usize, push: bool) -> bool {
    let Some(&kind) = buf.get(*pos) else {
        if push {
            ffi::lua_pushnil(l);
        }
        return false;
    };
    let Some(eol) = buf[*pos..].windows(2).position(|w| w == b"\r\n") else {
        if push {
            ffi::lua_pushnil(l);
        }
        return false;
    };
    let line = &buf[*pos + 1..*pos + eol];
    *pos += eol + 2;
    ffi::lua_checkstack(l, 5);
    let num = || {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' if !push => true,
        b'+' => {
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushstring_(l, c"ok".as_ptr());
            push_bytes(l, line);
            ffi::lua_settable(l, -3);
            true
        }
        b'-' => {
            let mut msg = Vec::with_capacity(line.len() + 1);
            msg.push(b'-');
            msg.extend_from_slice(line);
            push_error(l, &msg);
            ffi::lua_pushstring_(l, c"ignore_error_stats_update".as_ptr());
            ffi::lua_pushboolean(l, 1);
            ffi::lua_settable(l, -3);
            true
        }
        b':' => {
            ffi::lua_pushnumber(l, num().unwrap_or(0) as f64);
            true
        }
        b'_' => {
            ffi::lua_pushnil(l);
            true
        }
        b'#' => {
            ffi::lua_pushboolean(l, (line == b"t") as c_int);
            true
        }
        b',' => {
            let d = parse_double(line);
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushstring_(l, c"double".as_ptr());
            ffi::lua_pushnumber(l, d);
            ffi::lua_settable(l, -3);
            true
        }
        b'(' => {
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushstring_(l, c"big_number".as_ptr());
            push_bytes(l, line);
            ffi::lua_settable(l, -3);
            true
        }
        b'$' | b'=' => {
            let Some(n) = num() else { return false };
            if n < 0 {
                if push {
                    ffi::lua_pushboolean(l, 0);
                }
                return true;
            }
            let n = n as usize;
            let Some(body) = buf.get(*pos..*pos + n) else {
                if push {
                    ffi::lua_pushnil(l);
                }
                return false;
            };
            *pos += n + 2;
            if !push {
                return true;
            }
            if kind == b'$' {
                push_bytes(l, body);
            } else {
                let (format, text) = if body.len() >= 4 {
                    (&body[..3], &body[4..])
                } else {
                    (&b"txt"[..], body)
                };
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_pushstring_(l, c"verbatim_string".as_ptr());
                ffi::lua_createtable(l, 0, 2);
                ffi::lua_pushstring_(l, c"string".as_ptr());
                push_bytes(l, text);
                ffi::lua_settable(l, -3);
                ffi::lua_pushstring_(l, c"format".as_ptr());
                push_bytes(l, format);
                ffi::lua_settable(l, -3);
                ffi::lua_settable(l, -3);
            }
            true
        }
        b'*' | b'>' | b'~' | b'%' | b'|' => {
            let Some(n) = num() else { return false };
            if n < 0 {
                if push {
                    ffi::lua_pushboolean(l, 0);
                }
                return true;
            }
            let n = n as usize;
            let mut ok = true;
            match kind {
                b'|' => {
                    // Attributes are not shown to scripts: skipped, then the reply itself.
                    for _ in 0..2 * n {
                        ok &= push_reply(l, buf, pos, false);
                    }
                    return ok && push_reply(l, buf, pos, push);
                }
                b'%' | b'~' if push => {
                    ffi::lua_createtable(l, 0, 1);
                    ffi::lua_pushstring_(l, if kind == b'%' { c"map" } else { c"set" }.as_ptr());
                    ffi::lua_createtable(l, 0, n as c_int);
                    for _ in 0..n {
                        ok &= push_reply(l, buf, pos, true);
                        if kind == b'%' {
                            ok &= push_reply(l, buf, pos, true);
                        } else {
                            ffi::lua_checkstack(l, 1);
                            ffi::lua_pushboolean(l, 1);
                        }
                        ffi::lua_settable(l, -3);
                    }
                    ffi::lua_settable(l, -3);
                }
                _ if push => {
                    ffi::lua_createtable(l, n.min(1 << 16) as c_int, 0);
                    for j in 0..n {
                        ffi::lua_pushnumber(l, (j + 1) as f64);
                        ok &= push_reply(l, buf, pos, true);
                        ffi::lua_settable(l, -3);
                    }
                }
                _ => {
                    let per = if kind == b'%' { 2 } else { 1 };
                    for _ in 0..n * per {
                        ok &= push_reply(l, buf, pos, false);
                    }
                }
            }
            ok
        }
        _ => {
            if push {
                ffi::lua_pushnil(l);
            }
            false
        }
    }
}

fn parse_double(s: &[u8]) -> f64 {
    match s {
        b"inf" => f64::INFINITY,
        b"-inf" => f64::NEG_INFINITY,
        _ => std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN),
    }
}

// ---------------------------------------------------------------------------------------------
// Lua to reply: Redis's luaReplyToRedisReply.

/// The error replies a script's reply holds, at its top or nested in it.
#[derive(Default)]
pub struct ReplyErrors {
    /// Those the error statistics count: not those a command gave the script, already counted
    /// when the command replied (Redis's `ignore_error_stats_update`).
    pub counted: Vec<String>,
    /// There is one, counted or not: the script's call failed (Redis's afterErrorReply counts
    /// an uncounted one as a failed call itself).
    pub any: bool,
}

impl ReplyErrors {
    fn add(&mut self, msg: String, counted: bool) {
        self.any = true;
        if counted {
            self.counted.push(msg);
        }
    }
}

/// What an error table holds (Redis's errorInfo).
pub struct ErrorInfo {
    pub msg: Option<Vec<u8>>,
    pub source: Option<Vec<u8>>,
    pub line: Option<Vec<u8>>,
    pub ignore_stats: bool,
}

/// Redis's luaExtractErrorInformation, on the value at the top of the stack.
unsafe fn error_info(l: *mut lua_State) -> ErrorInfo {
    let mut info = ErrorInfo {
        msg: None,
        source: None,
        line: None,
        ignore_stats: false,
    };
    if is_string(l, -1) {
        let mut m = b"ERR ".to_vec();
        m.extend_from_slice(to_bytes(l, -1).unwrap_or_default());
        info.msg = Some(m);
        return info;
    }
    if !is_table(l, -1) {
        return info;
    }
    let field = |name: &CStr| -> Option<Vec<u8>> {
        ffi::lua_getfield_(l, -1, name.as_ptr());
        let v = if is_string(l, -1) {
            to_bytes(l, -1).map(|b| b.to_vec())
        } else {
            None
        };
        ffi::lua_pop(l, 1);
        v
    };
    info.msg = field(c"err");
    info.source = field(c"source");
    info.line = field(c"line");
    ffi::lua_getfield_(l, -1, c"ignore_error_stats_update".as_ptr());
    if is_boolean(l, -1) {
        info.ignore_stats = ffi::lua_toboolean(l, -1) != 0;
    }
    ffi::lua_pop(l, 1);
    info
}

/// Writes the value at the top of the stack as a reply, and pops it. `script_resp` is the
/// protocol the script chose (RESP2 turns booleans into 1 and nil). Notes in `stats` the error
/// replies it wrote.
///
/// # Safety
/// `l` is a live interpreter with a value on its stack.
pub unsafe fn write_reply(
    l: *mut lua_State,
    out: &mut ReplyBuf,
    script_resp: u8,
    stats: &mut ReplyErrors,
) {
    if ffi::lua_checkstack(l, 4) == 0 {
        let msg = "ERR reached lua stack limit";
        out.error(msg);
        stats.add(msg.into(), true);
        ffi::lua_pop(l, 1);
        return;
    }
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => out.bulk(to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TBOOLEAN => {
            let b = ffi::lua_toboolean(l, -1) != 0;
            if script_resp == 2 {
                if b {
                    out.int(1)
                } else {
                    out.null_bulk()
                }
            } else {
                out.bool(b)
            }
        }
        ffi::LUA_TNUMBER => out.int(c_cast_i64(ffi::lua_tonumber(l, -1))),
        ffi::LUA_TTABLE => {
            write_table(l, out, script_resp, stats);
            return;
        }
        _ => out.null_bulk(),
    }
    ffi::lua_pop(l, 1);
}

/// C's `(long long)` of a double as x86 computes it: out of range (or NaN) gives the minimum,
/// where Rust's `as` would saturate.
fn c_cast_i64(x: f64) -> i64 {
    // 2^63: the first double past i64's range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

/// `write_reply` for a table (popped here).
unsafe fn write_table(
    l: *mut lua_State,
    out: &mut ReplyBuf,
    script_resp: u8,
    stats: &mut ReplyErrors,
) {
    let field_type = |name: &CStr| {
        ffi::lua_pushstring_(l, name.as_ptr());
        ffi::lua_rawget_(l, -2);
        ffi::lua_type(l, -1)
    };
    if field_type(c"err") == ffi::LUA_TSTRING {
        ffi::lua_pop(l, 1);
        let info = error_info(l);
        let msg = String::from_utf8_lossy(&info.msg.unwrap_or_default()).into_owned();
        out.error(&msg);
        stats.add(msg, !info.ignore_stats);
        ffi::lua_pop(l, 1);
        return;
    }
    ffi::lua_pop(l, 1);
    if field_type(c"ok") == ffi::LUA_TSTRING {
        let ok =
            String::from_utf8_lossy(to_bytes(l, -1).unwrap_or_default()).replace(['\r', '\n'], " ");
        out.simple(&ok);
        ffi::lua_pop(l, 2);
        return;
    }
    ffi::lua_pop(l, 1);
    if field_type(c"double") == ffi::LUA_TNUMBER {
        out.double(ffi::lua_tonumber(l, -1));
        ffi::lua_pop(l, 2);
        return;
    }
    ffi::lua_pop(l, 1);
    if field_type(c"big_number") == ffi::LUA_TSTRING {
        let digits: Vec<u8> = to_bytes(l, -1)
            .unwrap_or_default()
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        out.big_number(&digits);
        ffi::lua_pop(l, 2);
        return;
    }
    ffi::lua_pop(l, 1);
    if field_type(c"verbatim_string") == ffi::LUA_TTABLE {
        ffi::lua_pushstring_(l, c"format".as_ptr());
        ffi::lua_rawget_(l, -2);
        if ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
            let format = String::from_utf8_lossy(to_bytes(l, -1).unwrap_or_default()).into_owned();
            ffi::lua_pushstring_(l, c"string".as_ptr());
            ffi::lua_rawget_(l, -3);
            if ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
                let s = to_bytes(l, -1).unwrap_or_default().to_vec();
                let format: String = format.chars().chain("   ".chars()).take(3).collect();
                out.verbatim(&format, &s);
                ffi::lua_pop(l, 4);
                return;
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
    }
    ffi::lua_pop(l, 1);
    for (name, is_map) in [(c"map", true), (c"set", false)] {
        if field_type(name) == ffi::LUA_TTABLE {
            // Counted first: the reply's length comes before its elements.
            let mut n = 0;
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                n += 1;
                ffi::lua_pop(l, 1);
            }
            if is_map {
                out.map(n);
            } else {
                out.set(n);
            }
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                if is_map {
                    ffi::lua_pushvalue(l, -2);
                    write_reply(l, out, script_resp, stats);
                    write_reply(l, out, script_resp, stats);
                } else {
                    ffi::lua_pop(l, 1);
                    ffi::lua_pushvalue(l, -1);
                    write_reply(l, out, script_resp, stats);
                }
            }
            ffi::lua_pop(l, 2);
            return;
        }
        ffi::lua_pop(l, 1);
    }
    // An array: up to the first nil.
    let mut n = 0;
    loop {
        ffi::lua_rawgeti_(l, -1, n + 1);
        let nil = ffi::lua_type(l, -1) == ffi::LUA_TNIL;
        ffi::lua_pop(l, 1);
        if nil {
            break;
        }
        n += 1;
    }
    out.array(n as usize);
    for j in 1..=n {
        ffi::lua_rawgeti_(l, -1, j);
        write_reply(l, out, script_resp, stats);
    }
    ffi::lua_pop(l, 1);
}

// ---------------------------------------------------------------------------------------------
// The `redis` API.

/// Redis's luaArgsToRedisArgv: the arguments as bytes (numbers as `%.17g`), or the error.
unsafe fn collect_args(l: *mut lua_State) -> Result<Vec<Vec<u8>>, &'static [u8]> {
    let argc = ffi::lua_gettop(l);
    if argc == 0 {
        return Err(b"Please specify at least one argument for this redis lib call");
    }
    let mut argv = Vec::with_capacity(argc as usize);
    for j in 1..=argc {
        if ffi::lua_type(l, j) == ffi::LUA_TNUMBER {
            argv.push(format_g17(ffi::lua_tonumber(l, j)));
        } else {
            match to_bytes(l, j) {
                Some(b) => argv.push(b.to_vec()),
                None => {
                    ffi::lua_pop(l, argc);
                    return Err(b"Lua redis lib command arguments must be strings or integers");
                }
            }
        }
    }
    ffi::lua_pop(l, argc);
    Ok(argv)
}

/// `%.17g`, through C's own printf so that every digit is as Redis prints it.
fn format_g17(x: f64) -> Vec<u8> {
    format_c(c"%.17g", x)
}

/// `x` as C's printf writes it with `fmt` (one double conversion).
pub(super) fn format_c(fmt: &CStr, x: f64) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = unsafe { libc::snprintf(buf.as_mut_ptr() as *mut c_char, buf.len(), fmt.as_ptr(), x) };
    buf[..(n.max(0) as usize).min(63)].to_vec()
}

/// redis.call / redis.pcall (Redis's luaRedisGenericCommand). Returns true if the value
/// pushed is an error to raise.
unsafe fn generic_call(l: *mut lua_State, raise_error: bool) -> bool {
    let Some(host) = host() else {
        push_error(
            l,
            b"redis.call/pcall can only be called inside a script invocation",
        );
        return true;
    };
    let argv = match collect_args(l) {
        Ok(a) => a,
        Err(e) => {
            push_error(l, e);
            return raise_error;
        }
    };
    let args: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
    let stepping = super::ldb::logging();
    if stepping {
        super::ldb::log_command(&argv);
    }
    let mut reply = Vec::new();
    match host.call(&args, &mut reply) {
        Err(e) => {
            push_error(l, e.as_bytes());
            ffi::lua_pushstring_(l, c"ignore_error_stats_update".as_ptr());
            ffi::lua_pushboolean(l, 1);
            ffi::lua_settable(l, -3);
            raise_error
        }
        Ok(()) => {
            let mut pos = 0;
            push_reply(l, &reply, &mut pos, true);
            if stepping {
                super::ldb::log_reply(&reply);
            }
            raise_error && reply.first() == Some(&b'-')
        }
    }
}

unsafe extern "C-unwind" fn redis_call(l: *mut lua_State) -> c_int {
    if generic_call(l, true) {
        ffi::lua_error(l)
    }
    1
}

unsafe extern "C-unwind" fn redis_pcall(l: *mut lua_State) -> c_int {
    generic_call(l, false);
    1
}

/// The global `pcall` (Redis's luaRedisPcall): an error table is given back as its message.
unsafe extern "C-unwind" fn lua_pcall_compat(l: *mut lua_State) -> c_int {
    let argc = ffi::lua_gettop(l);
    ffi::lua_pushboolean(l, 1);
    ffi::lua_insert(l, 1);
    if ffi::lua_pcall(l, argc - 1, ffi::LUA_MULTRET, 0) != 0 {
        ffi::lua_remove(l, 1);
        if is_table(l, -1) {
            ffi::lua_getfield_(l, -1, c"err".as_ptr());
            if is_string(l, -1) {
                ffi::lua_replace(l, -2);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
        ffi::lua_pushboolean(l, 0);
        ffi::lua_insert(l, 1);
    }
    ffi::lua_gettop(l)
}

unsafe extern "C-unwind" fn redis_sha1hex(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 {
        return raise(l, b"wrong number of arguments");
    }
    let digest = crate::util::sha1::sha1_hex(to_bytes(l, 1).unwrap_or_default());
    push_bytes(l, &digest);
    1
}

unsafe extern "C-unwind" fn redis_error_reply(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
        push_error(l, b"wrong number or type of arguments");
        return 1;
    }
    let err = to_bytes(l, -1).unwrap_or_default();
    // C string semantics: the message ends at its first NUL, as Redis reads it.
    let err = &err[..err.iter().position(|&b| b == 0).unwrap_or(err.len())];
    let mut msg = Vec::with_capacity(err.len() + 1);
    if err.first() != Some(&b'-') {
        msg.push(b'-');
    }
    msg.extend_from_slice(err);
    push_error(l, &msg);
    1
}

unsafe extern "C-unwind" fn redis_status_reply(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 1 || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
        push_error(l, b"wrong number or type of arguments");
        return 1;
    }
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushstring_(l, c"ok".as_ptr());
    ffi::lua_pushvalue(l, -3);
    ffi::lua_settable(l, -3);
    1
}

unsafe extern "C-unwind" fn redis_set_repl(l: *mut lua_State) -> c_int {
    let Some(host) = host() else {
        return raise(
            l,
            b"redis.set_repl can only be called inside a script invocation",
        );
    };
    if ffi::lua_gettop(l) != 1 {
        return raise(l, b"redis.set_repl() requires two arguments.");
    }
    let flags = ffi::lua_tonumber(l, -1) as i64;
    if flags & !3 != 0 {
        return raise(
            l,
            b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        );
    }
    host.set_repl(flags as u8);
    0
}

unsafe extern "C-unwind" fn redis_setresp(l: *mut lua_State) -> c_int {
    let Some(host) = host() else {
        return raise(
            l,
            b"redis.setresp can only be called inside a script invocation",
        );
    };
    if ffi::lua_gettop(l) != 1 {
        return raise(l, b"redis.setresp() requires one argument.");
    }
    let resp = ffi::lua_tonumber(l, -1) as i64;
    if resp != 2 && resp != 3 {
        return raise(l, b"RESP version must be 2 or 3.");
    }
    host.set_resp(resp as u8);
    0
}

unsafe extern "C-unwind" fn redis_log(l: *mut lua_State) -> c_int {
    let argc = ffi::lua_gettop(l);
    if argc < 2 {
        return raise(l, b"redis.log() requires two arguments or more.");
    }
    if ffi::lua_isnumber(l, -argc) == 0 {
        return raise(l, b"First argument must be a number (log level).");
    }
    let level = ffi::lua_tonumber(l, -argc) as i64;
    if !(0..=3).contains(&level) {
        return raise(l, b"Invalid debug level.");
    }
    let mut text = Vec::new();
    for j in 1..argc {
        if let Some(s) = to_bytes(l, -argc + j) {
            if j != 1 {
                text.push(b' ');
            }
            text.extend_from_slice(s);
        }
    }
    let text = String::from_utf8_lossy(&text);
    match level {
        0 => log::trace!("{text}"),
        1 => log::debug!("{text}"),
        2 => log::info!("{text}"),
        _ => log::warn!("{text}"),
    }
    0
}

unsafe extern "C-unwind" fn redis_acl_check_cmd(l: *mut lua_State) -> c_int {
    let Some(host) = host() else {
        return raise(
            l,
            b"redis.acl_check_cmd can only be called inside a script invocation",
        );
    };
    let argv = match collect_args(l) {
        Ok(a) => a,
        Err(e) => return raise(l, e),
    };
    let args: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
    let allowed = host.acl_check(&args);
    drop(args);
    drop(argv);
    let Some(allowed) = allowed else {
        return raise(l, b"Invalid command passed to redis.acl_check_cmd()");
    };
    ffi::lua_pushboolean(l, allowed as c_int);
    1
}

unsafe extern "C-unwind" fn redis_replicate_commands(l: *mut lua_State) -> c_int {
    ffi::lua_pushboolean(l, 1);
    1
}

/// Redis's redisLrand48: lrand48's generator, so that a seeded script draws Redis's numbers.
fn lrand48() -> i32 {
    RAND48.with(|s| {
        let x = s.get().wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & ((1 << 48) - 1);
        s.set(x);
        (x >> 17) as i32
    })
}

unsafe extern "C-unwind" fn math_random(l: *mut lua_State) -> c_int {
    if host().is_none() {
        return ffi::luaL_error(
            l,
            c"math.random can only be called inside a script invocation".as_ptr(),
        );
    }
    let r = (lrand48() % i32::MAX) as f64 / i32::MAX as f64;
    match ffi::lua_gettop(l) {
        0 => ffi::lua_pushnumber(l, r),
        1 => {
            let u = ffi::luaL_checkinteger(l, 1) as c_int;
            if u < 1 {
                return ffi::luaL_argerror(l, 1, c"interval is empty".as_ptr());
            }
            ffi::lua_pushnumber(l, (r * u as f64).floor() + 1.0);
        }
        2 => {
            let lo = ffi::luaL_checkinteger(l, 1) as c_int;
            let u = ffi::luaL_checkinteger(l, 2) as c_int;
            if lo > u {
                return ffi::luaL_argerror(l, 2, c"interval is empty".as_ptr());
            }
            ffi::lua_pushnumber(l, (r * (u as f64 - lo as f64 + 1.0)).floor() + lo as f64);
        }
        _ => return ffi::luaL_error(l, c"wrong number of arguments".as_ptr()),
    }
    1
}

unsafe extern "C-unwind" fn math_randomseed(l: *mut lua_State) -> c_int {
    if host().is_none() {
        return ffi::luaL_error(
            l,
            c"math.randomseed can only be called inside a script invocation".as_ptr(),
        );
    }
    let seed = ffi::luaL_checkinteger(l, 1) as i32;
    RAND48.with(|s| s.set(((seed as u32 as u64) << 16) | 0x330E));
    0
}

/// `__index` of protected tables: reading a missing global is an error.
unsafe extern "C-unwind" fn protected_table_error(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 2 {
        return ffi::luaL_error(
            l,
            c"Wrong number of arguments to luaProtectedTableError".as_ptr(),
        );
    }
    if !is_string(l, -1) && ffi::lua_isnumber(l, -1) == 0 {
        return ffi::luaL_error(
            l,
            c"Second argument to luaProtectedTableError must be a string or number".as_ptr(),
        );
    }
    let name = ffi::lua_tostring(l, -1);
    ffi::luaL_error(
        l,
        c"Script attempted to access nonexistent global variable '%s'".as_ptr(),
        name,
    )
}

/// Globals Redis allows the libraries to define while the interpreter is set up.
const ALLOWED_GLOBALS: &[&[u8]] = &[
    b"string",
    b"cjson",
    b"bit",
    b"cmsgpack",
    b"math",
    b"table",
    b"struct",
    b"redis",
    b"__redis__err__handler",
    b"xpcall",
    b"tostring",
    b"getfenv",
    b"setmetatable",
    b"next",
    b"assert",
    b"tonumber",
    b"rawequal",
    b"collectgarbage",
    b"getmetatable",
    b"rawset",
    b"pcall",
    b"coroutine",
    b"type",
    b"_G",
    b"select",
    b"unpack",
    b"gcinfo",
    b"pairs",
    b"rawget",
    b"loadstring",
    b"ipairs",
    b"_VERSION",
    b"setfenv",
    b"load",
    b"error",
    b"newproxy",
    b"debug",
];

/// `__newindex` of the globals while libraries load: only the allowed names are kept.
unsafe extern "C-unwind" fn newindex_allow_list(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 3 {
        return ffi::luaL_error(
            l,
            c"Wrong number of arguments to luaNewIndexAllowList".as_ptr(),
        );
    }
    let name = to_bytes(l, -2).unwrap_or_default();
    if ALLOWED_GLOBALS.contains(&name) {
        ffi::lua_rawset(l, -3);
    } else if !matches!(name, b"dofile" | b"loadfile" | b"print") {
        log::warn!(
            "A key '{}' was added to Lua globals which is not on the globals allow list nor \
             listed on the deny list.",
            String::from_utf8_lossy(name)
        );
    }
    0
}

unsafe fn set_error_metatable(l: *mut lua_State) {
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushcclosure(l, protected_table_error, 0);
    ffi::lua_setfield(l, -2, c"__index".as_ptr());
    ffi::lua_setmetatable(l, -2);
}

/// Makes the table at the top of the stack, the tables it holds and their metatables
/// read-only (Redis's luaSetTableProtectionRecursively).
unsafe fn protect_recursively(l: *mut lua_State) {
    if lua_isreadonlytable(l, -1) != 0 {
        return;
    }
    lua_enablereadonlytable(l, -1, 1);
    ffi::lua_checkstack(l, 2);
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        if is_table(l, -1) {
            protect_recursively(l);
        }
        ffi::lua_pop(l, 1);
    }
    if ffi::lua_getmetatable(l, -1) != 0 {
        protect_recursively(l);
        ffi::lua_pop(l, 1);
    }
}

unsafe fn register_log(l: *mut lua_State) {
    set_field_fn(l, c"log", redis_log);
    set_field_num(l, c"LOG_DEBUG", 0.0);
    set_field_num(l, c"LOG_VERBOSE", 1.0);
    set_field_num(l, c"LOG_NOTICE", 2.0);
    set_field_num(l, c"LOG_WARNING", 3.0);
}

unsafe fn register_version(l: *mut lua_State) {
    set_field_num(l, c"REDIS_VERSION_NUM", version_num());
    ffi::lua_pushstring_(l, c"REDIS_VERSION".as_ptr());
    push_bytes(l, crate::commands::connection::REDIS_VERSION.as_bytes());
    ffi::lua_settable(l, -3);
}

unsafe fn load_lib(l: *mut lua_State, name: &CStr, open: ffi::lua_CFunction) {
    ffi::lua_pushcclosure(l, open, 0);
    ffi::lua_pushstring_(l, name.as_ptr());
    ffi::lua_call(l, 1, 0);
}

/// Redis's luaRegisterRedisAPI.
unsafe fn register_redis_api(l: *mut lua_State) {
    ffi::lua_pushvalue(l, ffi::LUA_GLOBALSINDEX);
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushcclosure(l, newindex_allow_list, 0);
    ffi::lua_setfield(l, -2, c"__newindex".as_ptr());
    ffi::lua_setmetatable(l, -2);
    ffi::lua_pop(l, 1);

    load_lib(l, c"", ffi::luaopen_base);
    load_lib(l, c"table", ffi::luaopen_table);
    load_lib(l, c"string", ffi::luaopen_string);
    load_lib(l, c"math", ffi::luaopen_math);
    load_lib(l, c"debug", ffi::luaopen_debug);
    load_lib(l, c"cjson", luaopen_cjson);
    load_lib(l, c"struct", luaopen_struct);
    load_lib(l, c"cmsgpack", luaopen_cmsgpack);
    load_lib(l, c"bit", luaopen_bit);

    ffi::lua_pushcclosure(l, lua_pcall_compat, 0);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"pcall".as_ptr());

    ffi::lua_createtable(l, 0, 24);
    set_field_fn(l, c"call", redis_call);
    set_field_fn(l, c"pcall", redis_pcall);
    register_log(l);
    register_version(l);
    set_field_fn(l, c"setresp", redis_setresp);
    set_field_fn(l, c"sha1hex", redis_sha1hex);
    set_field_fn(l, c"error_reply", redis_error_reply);
    set_field_fn(l, c"status_reply", redis_status_reply);
    set_field_fn(l, c"set_repl", redis_set_repl);
    set_field_num(l, c"REPL_NONE", 0.0);
    set_field_num(l, c"REPL_AOF", 1.0);
    set_field_num(l, c"REPL_SLAVE", 2.0);
    set_field_num(l, c"REPL_REPLICA", 2.0);
    set_field_num(l, c"REPL_ALL", 3.0);
    set_field_fn(l, c"acl_check_cmd", redis_acl_check_cmd);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"redis".as_ptr());

    ffi::lua_getfield_(l, ffi::LUA_GLOBALSINDEX, c"math".as_ptr());
    set_field_fn(l, c"random", math_random);
    set_field_fn(l, c"randomseed", math_randomseed);
    ffi::lua_pop(l, 1);
}

/// Redis's error handler: the error as a table, with where it was raised (the caller of a C
/// function that raised it).
const ERROR_HANDLER: &str = concat!(
    "local dbg = debug\n",
    "local error_handler = function (err)\n",
    "  local i = dbg.getinfo(2,'nSl')\n",
    "  if i and i.what == 'C' then\n",
    "    i = dbg.getinfo(3,'nSl')\n",
    "  end\n",
    "  if type(err) ~= 'table' then\n",
    "    err = {err='ERR ' .. tostring(err)}",
    "  end",
    "  if i then\n",
    "    err['source'] = i.source\n",
    "    err['line'] = i.currentline\n",
    "  end",
    "  return err\n",
    "end\n",
);

unsafe fn load_chunk(l: *mut lua_State, code: &[u8], name: &CStr) -> Result<(), Vec<u8>> {
    if ffi::luaL_loadbuffer(l, code.as_ptr() as *const c_char, code.len(), name.as_ptr()) != 0 {
        let e = to_bytes(l, -1).unwrap_or_default().to_vec();
        ffi::lua_pop(l, 1);
        return Err(e);
    }
    Ok(())
}

const ERROR_HANDLER_KEY: &CStr = c"__ERROR_HANDLER__";

impl Vm {
    /// The EVAL interpreter (Redis's scriptingInit).
    pub fn new_eval(generation: u64) -> Vm {
        unsafe {
            let (l, pool) = new_state();
            register_redis_api(l);
            ffi::lua_getfield_(l, ffi::LUA_GLOBALSINDEX, c"redis".as_ptr());
            set_field_fn(l, c"breakpoint", super::ldb::redis_breakpoint);
            set_field_fn(l, c"debug", super::ldb::redis_debug);
            set_field_fn(l, c"replicate_commands", redis_replicate_commands);
            ffi::lua_pop(l, 1);
            let code = format!(
                "{ERROR_HANDLER}debug = nil\n__redis__err__handler = error_handler\nreturn error_handler"
            );
            if load_chunk(l, code.as_bytes(), c"@err_handler_def").is_ok() {
                ffi::lua_pcall(l, 0, 1, 0);
                ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, ERROR_HANDLER_KEY.as_ptr());
            }
            ffi::lua_pushvalue(l, ffi::LUA_GLOBALSINDEX);
            set_error_metatable(l);
            protect_recursively(l);
            ffi::lua_pop(l, 1);
            Vm {
                l,
                generation,
                functions: Default::default(),
                pool,
            }
        }
    }

    /// The functions interpreter (Redis's luaEngineInitEngine).
    pub fn new_functions(generation: u64) -> Vm {
        unsafe {
            let (l, pool) = new_state();
            register_redis_api(l);
            // The globals a library's body sees while it loads: only `redis` with
            // register_function, log and the version.
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_createtable(l, 0, 8);
            set_field_fn(l, c"register_function", register_function);
            register_log(l);
            register_version(l);
            set_error_metatable(l);
            ffi::lua_setfield(l, -2, c"redis".as_ptr());
            set_error_metatable(l);
            protect_recursively(l);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"__LIBRARY_API__".as_ptr());

            let code = format!("{ERROR_HANDLER}debug = nil\nreturn error_handler");
            if load_chunk(l, code.as_bytes(), c"@err_handler_def").is_ok() {
                ffi::lua_pcall(l, 0, 1, 0);
                ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, ERROR_HANDLER_KEY.as_ptr());
            }
            ffi::lua_pushvalue(l, ffi::LUA_GLOBALSINDEX);
            set_error_metatable(l);
            protect_recursively(l);
            ffi::lua_pop(l, 1);
            ffi::lua_pushvalue(l, ffi::LUA_GLOBALSINDEX);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"__GLOBALS_API__".as_ptr());

            // Each library runs against fresh globals that read through to the real ones.
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushvalue(l, ffi::LUA_GLOBALSINDEX);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            lua_enablereadonlytable(l, -1, 1);
            ffi::lua_setmetatable(l, -2);
            lua_enablereadonlytable(l, -1, 1);
            ffi::lua_replace(l, ffi::LUA_GLOBALSINDEX);
            Vm {
                l,
                generation,
                functions: Default::default(),
                pool,
            }
        }
    }

    /// Interpreter memory in bytes.
    pub fn memory(&self) -> usize {
        unsafe {
            ffi::lua_gc(self.l, ffi::LUA_GCCOUNT, 0) as usize * 1024
                + ffi::lua_gc(self.l, ffi::LUA_GCCOUNTB, 0) as usize
        }
    }

    /// Compiles an EVAL body (shebang line already blanked out) under its registry name, as
    /// Redis's luaCreateFunction does. The error is Lua's message.
    pub fn compile_script(&self, sha: &[u8; 40], body: &[u8]) -> Result<(), Vec<u8>> {
        unsafe {
            load_chunk(self.l, body, c"@user_script")?;
            let key = script_key(sha);
            ffi::lua_setfield(
                self.l,
                ffi::LUA_REGISTRYINDEX,
                key.as_ptr() as *const c_char,
            );
            Ok(())
        }
    }

    pub fn has_script(&self, sha: &[u8; 40]) -> bool {
        unsafe {
            let key = script_key(sha);
            ffi::lua_getfield_(
                self.l,
                ffi::LUA_REGISTRYINDEX,
                key.as_ptr() as *const c_char,
            );
            let found = is_function(self.l, -1);
            ffi::lua_pop(self.l, 1);
            found
        }
    }

    /// Loads a library's code (after its shebang line), running it so that it registers its
    /// functions (Redis's luaEngineCreate). `timeout_ms` 0: none.
    pub fn load_library(
        &mut self,
        code: &[u8],
        timeout_ms: u64,
    ) -> Result<Vec<Registered>, String> {
        unsafe {
            let l = self.l;
            let set_index = |api: &CStr| {
                ffi::lua_getmetatable(l, ffi::LUA_GLOBALSINDEX);
                lua_enablereadonlytable(l, -1, 0);
                ffi::lua_getfield_(l, ffi::LUA_REGISTRYINDEX, api.as_ptr());
                ffi::lua_setfield(l, -2, c"__index".as_ptr());
                lua_enablereadonlytable(l, ffi::LUA_GLOBALSINDEX, 1);
                ffi::lua_pop(l, 1);
            };
            set_index(c"__LIBRARY_API__");
            let mut registered = Vec::new();
            let result = match load_chunk(l, code, c"@user_function") {
                Err(e) => Err(format!(
                    "Error compiling function: {}",
                    String::from_utf8_lossy(&e)
                )),
                Ok(()) => {
                    LOADING.with(|c| c.set(&mut registered));
                    LOAD_DEADLINE.with(|d| {
                        d.set((timeout_ms > 0).then(|| {
                            std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms)
                        }))
                    });
                    ffi::lua_sethook(l, Some(load_hook), ffi::LUA_MASKCOUNT, 100_000);
                    let failed = ffi::lua_pcall(l, 0, 0, 0) != 0;
                    ffi::lua_sethook(l, None, 0, 0);
                    LOADING.with(|c| c.set(ptr::null_mut()));
                    if failed {
                        let info = error_info(l);
                        ffi::lua_pop(l, 1);
                        Err(format!(
                            "Error registering functions: {}",
                            String::from_utf8_lossy(&info.msg.unwrap_or_default())
                        ))
                    } else {
                        Ok(())
                    }
                }
            };
            set_index(c"__GLOBALS_API__");
            match result {
                Ok(()) => Ok(registered),
                Err(e) => {
                    for r in registered {
                        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r.reference);
                    }
                    Err(e)
                }
            }
        }
    }

    /// Runs a compiled EVAL script (`sha`) or a function (`reference`) with KEYS and ARGV,
    /// writing its reply to `out` (Redis's luaCallFunction). `name` goes in error replies.
    /// Returns the error replies it wrote.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &mut self,
        target: Target,
        name: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
        hook: Hook,
        host: &mut dyn Host,
    ) -> ReplyErrors {
        let mut stats = ReplyErrors::default();
        unsafe {
            let l = self.l;
            ffi::lua_getfield_(l, ffi::LUA_REGISTRYINDEX, ERROR_HANDLER_KEY.as_ptr());
            match target {
                Target::Script(sha) => {
                    let key = script_key(sha);
                    ffi::lua_getfield_(l, ffi::LUA_REGISTRYINDEX, key.as_ptr() as *const c_char);
                }
                Target::Function(r) => ffi::lua_rawgeti_(l, ffi::LUA_REGISTRYINDEX, r),
            }
            match hook {
                Hook::None => {}
                Hook::Count => {
                    ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKCOUNT, 100_000);
                }
                Hook::Debug => {
                    ffi::lua_sethook(
                        l,
                        Some(super::ldb::line_hook),
                        ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT,
                        100_000,
                    );
                }
            }
            let eval = matches!(target, Target::Script(_));
            push_array(l, keys);
            if eval {
                lua_enablereadonlytable(l, ffi::LUA_GLOBALSINDEX, 0);
                ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"KEYS".as_ptr());
                lua_enablereadonlytable(l, ffi::LUA_GLOBALSINDEX, 1);
            }
            push_array(l, args);
            if eval {
                lua_enablereadonlytable(l, ffi::LUA_GLOBALSINDEX, 0);
                ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"ARGV".as_ptr());
                lua_enablereadonlytable(l, ffi::LUA_GLOBALSINDEX, 1);
            }
            let err = with_host(host, || {
                if eval {
                    ffi::lua_pcall(l, 0, 1, -2)
                } else {
                    ffi::lua_pcall(l, 2, 1, -4)
                }
            });
            let resp = host.resp();
            let out = host.out();
            GC_COUNT.with(|c| {
                let n = c.get() + 1;
                if n == 50 {
                    ffi::lua_gc(l, ffi::LUA_GCSTEP, 50);
                    c.set(0);
                } else {
                    c.set(n);
                }
            });
            if err != 0 {
                if !is_table(l, -1) {
                    let msg = if is_string(l, -1) {
                        String::from_utf8_lossy(to_bytes(l, -1).unwrap_or_default()).into_owned()
                    } else {
                        "execution failure".to_owned()
                    };
                    let msg: String = msg.chars().take(100).collect();
                    let line = format!("ERR Error running script {name}, {msg}");
                    out.error(&line);
                    stats.add(line, true);
                } else {
                    let info = error_info(l);
                    let mut line =
                        String::from_utf8_lossy(&info.msg.unwrap_or_default()).into_owned();
                    if let (Some(source), Some(at)) = (&info.source, &info.line) {
                        line.push_str(&format!(
                            " script: {name}, on {}:{}.",
                            String::from_utf8_lossy(source),
                            String::from_utf8_lossy(at)
                        ));
                    }
                    out.error(&line);
                    stats.add(line, !info.ignore_stats);
                }
                ffi::lua_pop(l, 1);
            } else {
                write_reply(l, out, resp, &mut stats);
            }
            if hook != Hook::None {
                ffi::lua_sethook(l, None, 0, 0);
            }
            ffi::lua_pop(l, 1);
        }
        stats
    }
}

thread_local! {
    static GC_COUNT: Cell<u32> = const { Cell::new(0) };
}

/// What watches a run from inside the interpreter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    None,
    /// Every 100,000 instructions: time and SCRIPT KILL (Redis's luaMaskCountHook).
    Count,
    /// The debugger's, on every line too (see `ldb`).
    Debug,
}

/// What `Vm::call` runs.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    Script(&'a [u8; 40]),
    Function(c_int),
}

fn script_key(sha: &[u8; 40]) -> [u8; 43] {
    let mut key = [0u8; 43];
    key[..2].copy_from_slice(b"f_");
    key[2..42].copy_from_slice(sha);
    key
}

unsafe fn push_array(l: *mut lua_State, items: &[&[u8]]) {
    ffi::lua_createtable(l, items.len().min(1 << 20) as c_int, 0);
    for (j, item) in items.iter().enumerate() {
        push_bytes(l, item);
        ffi::lua_rawseti_(l, -2, (j + 1) as c_int);
    }
}

/// The count hook (Redis's luaMaskCountHook): lets the host see time pass, and stops a killed
/// script with a hook on every line, so that pcall cannot keep it alive.
unsafe extern "C-unwind" fn count_hook(l: *mut lua_State, _ar: *mut ffi::lua_Debug) {
    let kill = host().is_some_and(|h| h.interrupt());
    if kill {
        self::kill(l);
    }
}

/// Ends a script SCRIPT KILL stopped, with a hook on every line from now on, so that pcall
/// cannot keep it alive.
pub(super) unsafe fn kill(l: *mut lua_State) -> c_int {
    log::warn!("Lua script killed by user with SCRIPT KILL.");
    ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKLINE, 0);
    raise(l, b"Script killed by user with SCRIPT KILL...")
}

unsafe extern "C-unwind" fn load_hook(l: *mut lua_State, _ar: *mut ffi::lua_Debug) {
    let late = LOAD_DEADLINE
        .with(|d| d.get())
        .is_some_and(|d| std::time::Instant::now() > d);
    if late {
        ffi::lua_sethook(l, Some(load_hook), ffi::LUA_MASKLINE, 0);
        raise(l, b"FUNCTION LOAD timeout");
    }
}

/// Redis's function names: letters, digits and underscores, at least one.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn parse_flag(name: &[u8]) -> Option<u32> {
    sflags::NAMES
        .iter()
        .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(f, _)| *f)
}

/// redis.register_function: positional (name, callback) or one table of named arguments.
unsafe extern "C-unwind" fn register_function(l: *mut lua_State) -> c_int {
    let list = LOADING.with(|c| c.get());
    if list.is_null() {
        return raise(
            l,
            b"redis.register_function can only be called on FUNCTION LOAD command",
        );
    }
    match read_function_args(l) {
        Err(e) => raise(l, e.as_bytes()),
        Ok(r) => {
            let list = &mut *list;
            let err: &[u8] = if !valid_name(r.name.as_bytes()) {
                b"Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
            } else if list.iter().any(|x| x.name == r.name) {
                b"Function already exists in the library"
            } else {
                list.push(r);
                return 0;
            };
            ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r.reference);
            drop(r);
            raise(l, err)
        }
    }
}

unsafe fn read_function_args(l: *mut lua_State) -> Result<Registered, &'static str> {
    let argc = ffi::lua_gettop(l);
    if !(1..=2).contains(&argc) {
        return Err("wrong number of arguments to redis.register_function");
    }
    if argc == 2 {
        let Some(name) = is_string(l, 1).then(|| to_bytes(l, 1)).flatten() else {
            return Err("first argument to redis.register_function must be a string");
        };
        let name = String::from_utf8_lossy(name).into_owned();
        if !is_function(l, 2) {
            return Err("second argument to redis.register_function must be a function");
        }
        let reference = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        return Ok(Registered {
            name,
            description: None,
            flags: 0,
            reference,
        });
    }
    if !is_table(l, 1) {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
    }
    let (mut name, mut description, mut reference, mut flags) = (None, None, None, 0u32);
    let fail = |reference: Option<c_int>, e: &'static str| {
        if let Some(r) = reference {
            ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
        }
        Err(e)
    };
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        if !is_string(l, -2) {
            return fail(
                reference,
                "named argument key given to redis.register_function is not a string",
            );
        }
        let key = to_bytes(l, -2).unwrap_or_default().to_ascii_lowercase();
        match key.as_slice() {
            b"function_name" => {
                match is_string(l, -1).then(|| to_bytes(l, -1)).flatten() {
                    Some(s) => name = Some(String::from_utf8_lossy(s).into_owned()),
                    None => return fail(
                        reference,
                        "function_name argument given to redis.register_function must be a string",
                    ),
                }
            }
            b"description" => {
                match is_string(l, -1).then(|| to_bytes(l, -1)).flatten() {
                    Some(s) => description = Some(String::from_utf8_lossy(s).into_owned()),
                    None => return fail(
                        reference,
                        "description argument given to redis.register_function must be a string",
                    ),
                }
            }
            b"callback" => {
                if !is_function(l, -1) {
                    return fail(
                        reference,
                        "callback argument given to redis.register_function must be a function",
                    );
                }
                if let Some(old) = reference.replace(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX)) {
                    ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, old);
                }
                continue;
            }
            b"flags" => {
                if !is_table(l, -1) {
                    return fail(
                        reference,
                        "flags argument to redis.register_function must be a table representing function flags",
                    );
                }
                let mut j = 1;
                loop {
                    ffi::lua_rawgeti_(l, -1, j);
                    j += 1;
                    if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                        ffi::lua_pop(l, 1);
                        break;
                    }
                    let flag = is_string(l, -1)
                        .then(|| to_bytes(l, -1))
                        .flatten()
                        .and_then(parse_flag);
                    ffi::lua_pop(l, 1);
                    match flag {
                        Some(f) => flags |= f,
                        None => return fail(reference, "unknown flag given"),
                    }
                }
            }
            _ => {
                return fail(
                    reference,
                    "unknown argument given to redis.register_function",
                )
            }
        }
        ffi::lua_pop(l, 1);
    }
    let Some(name) = name else {
        return fail(
            reference,
            "redis.register_function must get a function name argument",
        );
    };
    let Some(reference) = reference else {
        return Err("redis.register_function must get a callback argument");
    };
    Ok(Registered {
        name,
        description,
        flags,
        reference,
    })
}

pub use crate::resp::parse::split_args;

/// Redis's evalExtractShebangFlags: the script's flags and the length of its shebang line
/// (0 without one), or the error.
pub fn shebang_flags(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((sflags::EVAL_COMPAT_MODE, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    if parts[0] != b"#!lua" {
        return Err(format!(
            "Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(&parts[0])
        ));
    }
    let mut flags = 0;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        for name in list.split(|&b| b == b',') {
            // Exact names here (Redis compares them with strcmp); register_function's ignore
            // case.
            match sflags::NAMES.iter().find(|(_, n)| n.as_bytes() == name) {
                Some((f, _)) => flags |= f,
                None if name.is_empty() && list.is_empty() => {}
                None => {
                    return Err(format!(
                        "Unexpected flag in script shebang: {}",
                        String::from_utf8_lossy(name)
                    ))
                }
            }
        }
    }
    Ok((flags, end))
}
