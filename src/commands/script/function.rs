//! Functions (Redis 7's functions.c, function_lua.c): FUNCTION LOAD DELETE FLUSH LIST DUMP
//! RESTORE STATS KILL, FCALL and FCALL_RO. The libraries live in `Shared::scripts`; each
//! thread's functions interpreter loads all of them again whenever they change. FUNCTION LOAD,
//! DELETE, FLUSH and RESTORE are write commands, logged as they were sent, so the AOF replays
//! them; a rewrite writes them ahead of the data (`aof::rewrite::Base`).

use std::cell::OnceCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::super::flags::*;
use super::super::{CommandError, CommandSpec, Ctx, Keys};
use super::lua::{self, Vm};
use super::{run, vms, SCRIPT_KEYS};
use crate::scripts::{flags as sflags, function_key, Function, Libraries, Library};
use crate::shared::Shared;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "fcall",
        -3,
        NOSCRIPT | STALE | MOVABLEKEYS | SKIP_MONITOR | NO_MANDATORY_KEYS | RUNS_SCRIPT,
        SCRIPT_KEYS,
        fcall
    ),
    cmd!(
        "fcall_ro",
        -3,
        NOSCRIPT | STALE | READONLY | MOVABLEKEYS | SKIP_MONITOR | NO_MANDATORY_KEYS | RUNS_SCRIPT,
        SCRIPT_KEYS,
        fcall_ro
    ),
    cmd!("function", -2, 0, Keys::None, super::super::dispatch_sub)
        .container(FUNCTION_SUBCOMMANDS, FUNCTION_HELP),
];

static FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!(
        "function|load",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        Keys::None,
        load
    ),
    cmd!("function|delete", 3, WRITE | NOSCRIPT, Keys::None, delete),
    cmd!("function|flush", -2, WRITE | NOSCRIPT, Keys::None, flush),
    cmd!("function|list", -2, NOSCRIPT, Keys::None, list),
    cmd!("function|dump", 2, NOSCRIPT, Keys::None, dump),
    cmd!(
        "function|restore",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        Keys::None,
        restore
    ),
    cmd!(
        "function|stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        Keys::None,
        stats
    ),
    cmd!("function|kill", 2, NOSCRIPT | ALLOW_BUSY, Keys::None, kill),
    cmd!(
        "function|help",
        2,
        LOADING | STALE,
        Keys::None,
        super::super::help
    ),
];

static FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

/// Redis's FUNCTION LOAD time limit for a library's body.
const LOAD_TIMEOUT_MS: u64 = 500;

thread_local! {
    static FUNCTION_VM: OnceCell<Arc<vms::Slot>> = const { OnceCell::new() };
}

static FUNCTION_VMS: vms::Interpreters = vms::Interpreters::new();

/// Changes the libraries (see `Scripts::change_libraries`); the interpreters built from the
/// old ones are closed.
fn change_libraries<R>(shared: &Shared, change: impl FnOnce(&mut Libraries) -> R) -> R {
    let scripts = &shared.scripts;
    let r = scripts.change_libraries(change);
    FUNCTION_VMS.close_stale(
        scripts.lib_gen.load(Ordering::SeqCst),
        &scripts.function_vm_bytes,
    );
    r
}

/// The library code after its shebang line (its line feed kept, as Redis keeps it), and the
/// library's name (Redis's functionExtractLibMetaData).
fn metadata(code: &[u8]) -> Result<(String, &[u8]), CommandError> {
    let err = |m: &str| CommandError::Err(m.to_owned());
    if !code.starts_with(b"#!") {
        return Err(err("Missing library metadata"));
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err(err("Invalid library metadata"));
    };
    let parts = match lua::split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err(err("Invalid library metadata")),
    };
    let engine = &parts[0][2..];
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(err(
                    "Invalid metadata value, name argument was given multiple times",
                ));
            }
            name = Some(String::from_utf8_lossy(&part[5..]).into_owned());
            continue;
        }
        return Err(CommandError::Err(format!(
            "Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        )));
    }
    let Some(name) = name else {
        return Err(err("Library name was not given"));
    };
    if !lua::valid_name(name.as_bytes()) {
        return Err(err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"));
    }
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(CommandError::Err(format!(
            "Engine '{}' not found",
            String::from_utf8_lossy(engine)
        )));
    }
    Ok((name, &code[end..]))
}

/// Compiles and runs a library's code in a fresh interpreter, for what it registers.
fn compile(code: &[u8], timeout_ms: u64) -> Result<(String, Vec<Function>), CommandError> {
    let (name, body) = metadata(code)?;
    let mut vm = Vm::new_functions(0);
    let registered = vm
        .load_library(body, timeout_ms)
        .map_err(CommandError::Err)?;
    if registered.is_empty() {
        return Err(CommandError::Err("No functions registered".into()));
    }
    let functions = registered
        .into_iter()
        .map(|r| Function {
            name: r.name,
            description: r.description,
            flags: r.flags,
            wide: Default::default(),
        })
        .collect();
    Ok((name, functions))
}

/// Adds a compiled library to `libs` (Redis's libraryJoin for one library).
/// `quoted`: FUNCTION LOAD's wording of a name taken; RESTORE's has no quotes.
fn link(
    libs: &mut Libraries,
    lib: Library,
    replace: bool,
    quoted: bool,
) -> Result<(), CommandError> {
    if libs.libs.contains_key(&lib.name) && !replace {
        let q = if quoted { "'" } else { "" };
        return Err(CommandError::Err(format!(
            "Library {q}{}{q} already exists",
            lib.name
        )));
    }
    for f in &lib.functions {
        if libs
            .functions
            .get(&function_key(&f.name))
            .is_some_and(|owner| *owner != lib.name)
        {
            return Err(CommandError::Err(format!(
                "Function {} already exists",
                f.name
            )));
        }
    }
    unlink(libs, &lib.name);
    for f in &lib.functions {
        libs.functions
            .insert(function_key(&f.name), lib.name.clone());
    }
    libs.libs.insert(lib.name.clone(), lib);
    Ok(())
}

fn unlink(libs: &mut Libraries, name: &str) -> Option<Library> {
    let old = libs.libs.remove(name)?;
    for f in &old.functions {
        libs.functions.remove(&function_key(&f.name));
    }
    Some(old)
}

fn load(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let mut replace = false;
    let mut i = 2;
    while i < argv.len() - 1 {
        if argv[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
            i += 1;
            continue;
        }
        return Err(CommandError::Err(format!(
            "Unknown option given: {}",
            String::from_utf8_lossy(argv[i])
        )));
    }
    let code = argv[argv.len() - 1];
    let loading = ctx.shared.is_loading();
    let (name, functions) = compile(code, if loading { 0 } else { LOAD_TIMEOUT_MS })?;
    let lib = Library {
        name: name.clone(),
        code: code.into(),
        functions,
    };
    change_libraries(ctx.shared, |libs| {
        // A rewrite may have written a library that the tail loads again: the same code
        // loads as a no-op.
        let same = loading && libs.libs.get(&name).is_some_and(|l| *l.code == *code);
        if same {
            Ok(())
        } else {
            link(libs, lib, replace, true)
        }
    })?;
    ctx.dirty(1);
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

fn delete(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let name = String::from_utf8_lossy(argv[2]).into_owned();
    change_libraries(ctx.shared, |libs| unlink(libs, &name))
        .ok_or_else(|| CommandError::Err("Library not found".into()))?;
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

fn flush(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() > 3 {
        return Err(CommandError::subcommand_syntax("function", argv));
    }
    super::flush_mode(argv, "FUNCTION")?;
    change_libraries(ctx.shared, |libs| *libs = Libraries::default());
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}

fn list(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < argv.len() {
        if !with_code && argv[i].eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && argv[i].eq_ignore_ascii_case(b"libraryname") {
            if i >= argv.len() - 1 {
                return Err(CommandError::Err(
                    "library name argument was not given".into(),
                ));
            }
            i += 1;
            pattern = Some(argv[i]);
        } else {
            return Err(CommandError::Err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(argv[i])
            )));
        }
        i += 1;
    }
    let libs = ctx.shared.scripts.libraries();
    let shown: Vec<&Library> = libs
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| crate::util::glob::matches(p, l.name.as_bytes(), true)))
        .collect();
    let out = &mut *ctx.out;
    out.array(shown.len());
    for lib in shown {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(lib.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in &lib.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            out.bulk_opt(f.description.as_deref().map(str::as_bytes));
            out.bulk(b"flags");
            let names: Vec<&str> = sflags::NAMES
                .iter()
                .filter(|(bit, _)| f.flags & bit != 0)
                .map(|(_, n)| *n)
                .collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
    Ok(())
}

fn stats(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let running = ctx.shared.scripts.running();
    if running.iter().any(|r| r.eval) {
        return Err(super::busy_error(true));
    }
    let libs = ctx.shared.scripts.libraries();
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match running.first() {
        None => out.null_bulk(),
        Some(r) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(r.name.as_bytes());
            out.bulk(b"command");
            out.array(r.command.len());
            for a in &r.command {
                out.bulk(a);
            }
            out.bulk(b"duration_ms");
            out.int(r.started.elapsed().as_millis() as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libs.libs.len() as i64);
    out.bulk(b"functions_count");
    out.int(libs.functions.len() as i64);
    Ok(())
}

fn kill(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    super::kill_reply(ctx, false)
}

fn fcall(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    fcall_generic(ctx, argv, false)
}

fn fcall_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    fcall_generic(ctx, argv, true)
}

/// Runs `f` on this thread's functions interpreter, with every library loaded.
fn with_function_vm<R>(shared: &Shared, f: impl FnOnce(&mut Vm) -> R) -> Result<R, CommandError> {
    let scripts = &shared.scripts;
    let generation = scripts.lib_gen.load(Ordering::SeqCst);
    let make = || {
        let mut vm = Vm::new_functions(generation);
        for lib in scripts.libraries().libs.values() {
            let Ok((_, body)) = metadata(&lib.code) else {
                continue;
            };
            // It loaded when FUNCTION LOAD checked it; without a time limit here.
            if let Ok(registered) = vm.load_library(body, 0) {
                for r in registered {
                    vm.functions.insert(r.name, r.reference);
                }
            }
        }
        vm
    };
    FUNCTION_VMS.with(
        &FUNCTION_VM,
        generation,
        &scripts.function_vm_bytes,
        make,
        f,
    )
}

fn fcall_generic(ctx: &mut Ctx, argv: &[&[u8]], ro: bool) -> Result<(), CommandError> {
    let libs = ctx.shared.scripts.libraries();
    let name = String::from_utf8_lossy(argv[1]).into_owned();
    let Some((_, function)) = libs.function(&name) else {
        return Err(CommandError::Err("Function not found".into()));
    };
    let nkeys = super::numkeys(argv, Some("Bad number of keys provided"))?;
    let function: Function = function.clone();
    let shared = ctx.shared;
    let plan = run::Plan {
        eval: false,
        name: &function.name,
        flags: function.flags,
        ro,
        wide: &function.wide,
        keys: &argv[3..3 + nkeys],
        args: &argv[3 + nkeys..],
        argv,
        debug: false,
    };
    with_function_vm(shared, |vm| {
        let Some(&reference) = vm.functions.get(&function.name) else {
            return Err(CommandError::Err("Function not found".into()));
        };
        run::run(ctx, vm, lua::Target::Function(reference), &plan)
    })?
}

/// Compiles libraries into a set of their own (FUNCTION RESTORE's payload, an RDB file's).
fn compile_all(codes: &[Vec<u8>]) -> Result<Libraries, CommandError> {
    let mut restored = Libraries::default();
    for code in codes {
        let (name, functions) = compile(code, 0)?;
        let lib = Library {
            name,
            code: Arc::from(&code[..]),
            functions,
        };
        link(&mut restored, lib, false, false)?;
    }
    Ok(restored)
}

/// The libraries of an RDB file, loaded at start in place of any there were.
pub fn load_libraries(shared: &Shared, codes: &[Vec<u8>]) -> Result<(), String> {
    restore_libraries(shared, codes, Policy::Flush).map_err(|e| e.to_string())
}

/// How restored libraries meet the loaded ones (FUNCTION RESTORE's policies; DEBUG RELOAD's
/// NOFLUSH appends, NOFLUSH MERGE replaces, a plain reload flushes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Policy {
    /// A library loaded already is an error, and nothing changes.
    Append,
    Replace,
    Flush,
}

/// Compiles `codes` and links them into the loaded libraries as `policy` says.
pub fn restore_libraries(
    shared: &Shared,
    codes: &[Vec<u8>],
    policy: Policy,
) -> Result<(), CommandError> {
    let restored = compile_all(codes)?;
    change_libraries(shared, |libs| {
        if policy == Policy::Flush {
            *libs = restored;
            return Ok::<(), CommandError>(());
        }
        let mut joined = libs.clone();
        for lib in restored.libs.into_values() {
            link(&mut joined, lib, policy == Policy::Replace, false)?;
        }
        *libs = joined;
        Ok(())
    })
}

fn dump(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let libs = ctx.shared.scripts.libraries();
    let payload = super::dump::functions_payload(libs.libs.values().map(|l| &*l.code));
    ctx.out.bulk(&payload);
    Ok(())
}

fn restore(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() > 4 {
        return Err(CommandError::subcommand_syntax("function", argv));
    }
    let policy = match argv.get(3) {
        None => Policy::Append,
        Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
        Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
        Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
        Some(_) => {
            return Err(CommandError::Err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
                    .into(),
            ))
        }
    };
    let codes = super::dump::parse_functions_payload(argv[2]).map_err(CommandError::Err)?;
    restore_libraries(ctx.shared, &codes, policy)?;
    ctx.dirty(1);
    ctx.out.ok();
    Ok(())
}
