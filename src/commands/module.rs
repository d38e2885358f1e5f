//! MODULE, as a Redis with no module loaded answers it: LIST is empty, and a load fails the
//! way Redis's does when the library cannot be loaded (rudis loads no native modules). LOAD,
//! LOADEX and UNLOAD are protected as in Redis: refused unless `enable-module-command` allows
//! this connection.

use super::flags::*;
use super::{dispatch_sub, help, CommandError, CommandSpec, Ctx, Keys};

pub static COMMANDS: &[CommandSpec] =
    &[cmd!("module", -2, 0, Keys::None, dispatch_sub).container(SUBCOMMANDS, HELP)];

const SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("module|help", 2, LOADING | STALE, Keys::None, help),
    cmd!("module|list", 2, ADMIN | NOSCRIPT, Keys::None, list),
    cmd!(
        "module|load",
        -3,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        Keys::None,
        load
    ),
    cmd!(
        "module|loadex",
        -3,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        Keys::None,
        load
    ),
    cmd!(
        "module|unload",
        3,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        Keys::None,
        unload
    ),
];

const HELP: &[&str] = &[
    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
    "HELP",
    "    Prints this help.",
];

const NOT_ALLOWED: &str = "MODULE command not allowed. If the enable-module-command option is \
set to \"local\", you can run it from a local connection, otherwise you need to set this option \
in the configuration file, and then restart the server.";

fn list(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.array(0);
    Ok(())
}

/// Redis's protected-command check (`allowProtectedAction`) for `enable-module-command`.
fn check_allowed(ctx: &Ctx) -> Result<(), CommandError> {
    let setting = ctx.shared.config.read().get("enable-module-command");
    let allowed = match setting.as_deref() {
        Some("yes") => true,
        Some("local") => ctx.client.local,
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(CommandError::Err(NOT_ALLOWED.into()))
    }
}

fn load(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    check_allowed(ctx)?;
    log::warn!("Module loading is not supported by rudis");
    Err(CommandError::Err(
        "Error loading the extension. Please check the server logs.".into(),
    ))
}

fn unload(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    check_allowed(ctx)?;
    Err(CommandError::Err(
        "Error unloading module: no such module with that name".into(),
    ))
}
