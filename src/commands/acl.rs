//! ACL: users, their rules and the log (the registry is `crate::acl`); the check itself runs
//! in the dispatcher, EXEC and redis.call through `check`.

use super::dispatch::{dispatch_sub, help};
use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};
use crate::acl::{Denied, LogEntry};
use crate::client::Client;
use crate::shared::Shared;

const SUB: u32 = NOSCRIPT | LOADING | STALE;

pub static SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("acl|cat", -2, SUB, Keys::None, cat),
    cmd!("acl|deluser", -3, ADMIN | SUB, Keys::None, deluser),
    cmd!("acl|dryrun", -4, ADMIN | SUB, Keys::None, dryrun),
    cmd!("acl|genpass", -2, SUB, Keys::None, genpass),
    cmd!("acl|getuser", 3, ADMIN | SUB, Keys::None, getuser),
    cmd!("acl|help", 2, LOADING | STALE, Keys::None, help),
    cmd!("acl|list", 2, ADMIN | SUB, Keys::None, list),
    cmd!("acl|load", 2, ADMIN | SUB, Keys::None, load),
    cmd!("acl|log", -2, ADMIN | SUB, Keys::None, log),
    cmd!("acl|save", 2, ADMIN | SUB, Keys::None, save),
    cmd!("acl|setuser", -3, ADMIN | SUB, Keys::None, setuser),
    cmd!("acl|users", 2, ADMIN | SUB, Keys::None, users),
    cmd!("acl|whoami", 2, SUB, Keys::None, whoami),
];

pub static COMMANDS: &[CommandSpec] =
    &[cmd!("acl", -2, 0, Keys::None, dispatch_sub).container(SUBCOMMANDS, HELP)];

/// Where a check runs, as ACL LOG's `context` names it.
#[derive(Clone, Copy)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

/// The client's user is refreshed if the users changed since it last looked (a deleted user's
/// connection is closed); then, unless the user may do everything, `spec` is checked. A
/// denial is logged and returned with the argv position it names.
#[inline]
pub fn check(
    shared: &Shared,
    client: &mut Client,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
    context: Context,
) -> Result<(), Denied> {
    let gen = shared.acl.generation();
    if client.acl_gen != gen {
        refresh(shared, client, gen);
    }
    let Some(user) = &client.user else {
        return Ok(());
    };
    if user.unrestricted {
        return Ok(());
    }
    let spec = spec.resolve(argv);
    let Err((denied, pos)) = user.check(spec, argv) else {
        return Ok(());
    };
    let object = match denied {
        Denied::Cmd => spec.name.to_string(),
        _ => String::from_utf8_lossy(argv[pos]).into_owned(),
    };
    log_denial(shared, client, denied, context, object, None);
    Err(denied)
}

#[cold]
fn refresh(shared: &Shared, client: &mut Client, gen: u64) {
    client.acl_gen = gen;
    let Some(name) = client.user.as_ref().map(|u| u.name.clone()) else {
        return;
    };
    match shared.acl.get(&name) {
        Some(u) => client.user = Some(u),
        None => {
            // Deleted: nothing more runs for this connection.
            client.user = Some(std::sync::Arc::new(crate::acl::User::new(&name)));
            client.close_after_reply = true;
        }
    }
}

pub fn log_denial(
    shared: &Shared,
    client: &Client,
    reason: Denied,
    context: Context,
    object: String,
    username: Option<&str>,
) {
    let max_len = shared.config.read().number("acllog-max-len", 128) as usize;
    shared.acl.log_denial(
        LogEntry {
            count: 1,
            reason,
            context: match context {
                Context::Toplevel => "toplevel",
                Context::Multi => "multi",
                Context::Lua => "lua",
            },
            object,
            username: username.map(str::to_string).unwrap_or_else(|| {
                client
                    .user
                    .as_ref()
                    .map_or_else(|| "default".into(), |u| u.name.clone())
            }),
            ctime_ms: crate::util::clock::now_ms(),
            client_info: client.handle.info_line(),
        },
        max_len,
    );
}

/// The error a denied command gets at the top level (Redis's processCommand).
pub fn denied_error(denied: Denied, spec: &CommandSpec, argv: &[&[u8]]) -> CommandError {
    let spec = spec.resolve(argv);
    CommandError::Coded(match denied {
        Denied::Cmd => format!(
            "NOPERM this user has no permissions to run the '{}' command",
            spec.name
        ),
        Denied::Key => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        _ => "NOPERM this user has no permissions to access one of the channels used as \
              arguments"
            .into(),
    })
}

/// The error inside EXEC, for a command allowed when it was queued.
pub fn exec_denied_error(denied: Denied) -> CommandError {
    let reason = match denied {
        Denied::Cmd => "no permission to execute the command or subcommand",
        Denied::Key => "no permission to touch the specified keys",
        _ => "no permission to access one of the channels used as arguments",
    };
    CommandError::Coded(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the \
         EXEC call. This command is no longer allowed for the following reason: {reason}"
    ))
}

/// The error redis.call raises (Redis's getAclErrorMessage).
pub fn script_denied_error(denied: Denied) -> String {
    let why = match denied {
        Denied::Cmd => "can't run this command or subcommand",
        Denied::Key => "can't access at least one of the keys mentioned in the command arguments",
        _ => "can't publish to the channel mentioned in the command",
    };
    format!("The user executing the script {why}")
}

fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

fn setuser(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let name = text(argv[2]);
    if argv[2].iter().any(|c| c.is_ascii_whitespace() || *c == 0) {
        return Err(CommandError::Err(
            "Usernames can't contain spaces or null characters".into(),
        ));
    }
    let rules: Vec<String> = argv[3..].iter().map(|a| text(a)).collect();
    ctx.shared
        .acl
        .set_user(&name, &rules)
        .map_err(CommandError::Err)?;
    kill_disabled(ctx.shared, &name);
    ctx.out.ok();
    Ok(())
}

/// A deleted user's connections are closed, and its subscribers to channels it may no longer
/// listen to. A user turned `off` keeps its open connections, as in Redis 7.0 (only new AUTHs
/// are refused; Redis's unit/acl runs on after resetting the user it is logged in as).
fn kill_disabled(shared: &Shared, name: &str) {
    if shared.acl.get(name).is_none() {
        shared.clients.kill_user(name);
    } else {
        kill_revoked_subscribers(shared, name);
    }
}

/// Redis's ACLKillPubsubClientsIfNeeded: a connection of `name` subscribed to a channel or
/// pattern its rules no longer allow is closed.
fn kill_revoked_subscribers(shared: &Shared, name: &str) {
    let Some(user) = shared.acl.get(name) else {
        return;
    };
    if user.selectors.iter().any(|s| s.allchannels) {
        return;
    }
    for h in shared
        .pubsub
        .listeners_of(name, |ch, pattern| user.may_listen(ch, pattern))
    {
        h.kill();
    }
}

fn deluser(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let names: Vec<String> = argv[2..].iter().map(|a| text(a)).collect();
    if names.iter().any(|n| n == "default") {
        return Err(CommandError::Err(
            "The 'default' user cannot be removed".into(),
        ));
    }
    let n = ctx.shared.acl.delete(&names);
    for name in &names {
        ctx.shared.clients.kill_user(name);
    }
    ctx.out.int(n as i64);
    Ok(())
}

fn describe_selector(ctx: &mut Ctx, s: &crate::acl::Selector) {
    ctx.out.bulk(b"commands");
    ctx.out.bulk(s.describe_commands().as_bytes());
    ctx.out.bulk(b"keys");
    ctx.out.bulk(s.describe_keys().as_bytes());
    ctx.out.bulk(b"channels");
    ctx.out.bulk(s.describe_channels().as_bytes());
}

fn getuser(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(u) = ctx.shared.acl.get(&text(argv[2])) else {
        ctx.out.null_bulk();
        return Ok(());
    };
    ctx.out.map(6);
    ctx.out.bulk(b"flags");
    let flags = u.flags();
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"passwords");
    ctx.out.array(u.passwords.len());
    for p in &u.passwords {
        ctx.out.bulk(p.as_bytes());
    }
    describe_selector(ctx, &u.selectors[0]);
    ctx.out.bulk(b"selectors");
    ctx.out.array(u.selectors.len() - 1);
    for s in &u.selectors[1..] {
        ctx.out.map(3);
        describe_selector(ctx, s);
    }
    Ok(())
}

fn list(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let users = ctx.shared.acl.users();
    ctx.out.array(users.len());
    for u in users {
        ctx.out
            .bulk(format!("user {} {}", u.name, u.describe()).as_bytes());
    }
    Ok(())
}

/// The ACL file ACL LOAD and SAVE use, or Redis's error without one.
fn aclfile(ctx: &Ctx) -> Result<String, CommandError> {
    match ctx.shared.config.read().get("aclfile") {
        Some(f) if !f.is_empty() => Ok(f),
        _ => Err(CommandError::Err(
            "This Redis instance is not configured to use an ACL file. You may want to specify \
             users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you \
             have a Redis configuration file set) in order to store users in the Redis \
             configuration."
                .into(),
        )),
    }
}

fn load(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let path = aclfile(ctx)?;
    let before = ctx.shared.acl.users();
    ctx.shared.acl.load_file(&path).map_err(CommandError::Err)?;
    // As Redis 7.0, which frees every old user but the default one: their connections are
    // closed, even where the file has a user of the same name.
    for u in before.iter().filter(|u| u.name != "default") {
        ctx.shared.clients.kill_user(&u.name);
    }
    ctx.out.ok();
    Ok(())
}

fn save(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let path = aclfile(ctx)?;
    if let Err(e) = ctx.shared.acl.save_file(&path) {
        log::warn!(
            "Writing ACL file for ACL SAVE: {}",
            crate::util::strerror(&e)
        );
        return Err(CommandError::Err(
            "There was an error trying to save the ACLs. Please check the server logs for \
             more information"
                .into(),
        ));
    }
    ctx.out.ok();
    Ok(())
}

fn users(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let users = ctx.shared.acl.users();
    ctx.out.array(users.len());
    for u in users {
        ctx.out.bulk(u.name.as_bytes());
    }
    Ok(())
}

fn whoami(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let name = ctx
        .client
        .user
        .as_ref()
        .map_or_else(|| "default".to_string(), |u| u.name.clone());
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

fn cat(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    use crate::acl::CATEGORIES;
    match argv.len() {
        2 => {
            ctx.out.array(CATEGORIES.len());
            for c in CATEGORIES {
                ctx.out.bulk(c.as_bytes());
            }
        }
        3 => {
            let Some(i) = CATEGORIES
                .iter()
                .position(|c| c.as_bytes().eq_ignore_ascii_case(argv[2]))
            else {
                let mut name = text(argv[2]);
                name.truncate(128);
                return Err(CommandError::Err(format!("Unknown category '{name}'")));
            };
            let ids = crate::acl::ids();
            let names: Vec<&str> = (0..ids.specs.len())
                .filter(|&id| ids.categories[id] & (1 << i) != 0)
                .map(|id| ids.specs[id].name)
                .collect();
            ctx.out.array(names.len());
            for n in names {
                ctx.out.bulk(n.as_bytes());
            }
        }
        _ => return Err(subcommand_syntax(argv)),
    }
    Ok(())
}

fn subcommand_syntax(argv: &[&[u8]]) -> CommandError {
    CommandError::subcommand_syntax("acl", argv)
}

fn genpass(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let bits = match argv.len() {
        2 => 256,
        3 => super::args::int(argv[2])
            .map_err(|_| CommandError::Err("value is not an integer or out of range".into()))?,
        _ => return Err(subcommand_syntax(argv)),
    };
    if bits <= 0 || bits > 4096 {
        return Err(CommandError::Err(
            "ACL GENPASS argument must be the number of bits for the output password, a \
             positive number up to 4096"
                .into(),
        ));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut out = String::with_capacity(chars + 64);
    let mut seed = [0u8; 8];
    while out.len() < chars {
        // The kernel's randomness, hashed: a password must not be guessable.
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            use std::io::Read;
            let _ = f.read_exact(&mut seed);
        }
        out.push_str(&crate::util::sha256::sha256_hex(&seed));
    }
    out.truncate(chars);
    ctx.out.bulk(out.as_bytes());
    Ok(())
}

fn log(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let mut count = 10i64;
    match argv.len() {
        2 => {}
        3 if argv[2].eq_ignore_ascii_case(b"reset") => {
            ctx.shared.acl.log.lock().clear();
            ctx.out.ok();
            return Ok(());
        }
        3 => {
            count = super::args::int(argv[2])
                .map_err(|_| CommandError::Err("value is not an integer or out of range".into()))?;
        }
        _ => return Err(subcommand_syntax(argv)),
    }
    let now = crate::util::clock::now_ms();
    let log = ctx.shared.acl.log.lock();
    let n = (count.max(0) as usize).min(log.len());
    ctx.out.array(n);
    for e in log.iter().take(n) {
        ctx.out.map(7);
        ctx.out.bulk(b"count");
        ctx.out.int(e.count as i64);
        ctx.out.bulk(b"reason");
        ctx.out.bulk(match e.reason {
            Denied::Cmd => b"command",
            Denied::Key => b"key",
            Denied::Channel => b"channel",
            Denied::Auth => b"auth",
        });
        ctx.out.bulk(b"context");
        ctx.out.bulk(e.context.as_bytes());
        ctx.out.bulk(b"object");
        ctx.out.bulk(e.object.as_bytes());
        ctx.out.bulk(b"username");
        ctx.out.bulk(e.username.as_bytes());
        ctx.out.bulk(b"age-seconds");
        ctx.out
            .double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0);
        ctx.out.bulk(b"client-info");
        ctx.out.bulk(e.client_info.as_bytes());
    }
    Ok(())
}

fn dryrun(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(u) = ctx.shared.acl.get(&text(argv[2])) else {
        return Err(CommandError::Err(format!(
            "User '{}' not found",
            text(argv[2])
        )));
    };
    let cmd = &argv[3..];
    let Some(top) = super::table::lookup(cmd[0]) else {
        return Err(CommandError::Err(format!(
            "Command '{}' not found",
            text(cmd[0])
        )));
    };
    let spec = if top.subcommands.is_empty() {
        top
    } else {
        top.subcommand(cmd)
            .ok_or_else(|| CommandError::Err(format!("Command '{}' not found", text(cmd[0]))))?
    };
    if !spec.arity_ok(cmd.len()) {
        return Err(CommandError::Err(format!(
            "wrong number of arguments for '{}' command",
            spec.name
        )));
    }
    match u.check(spec, cmd) {
        Ok(()) => ctx.out.ok(),
        Err((Denied::Cmd, _)) => ctx.out.bulk(
            format!(
                "This user has no permissions to run the '{}' command",
                spec.name
            )
            .as_bytes(),
        ),
        Err((Denied::Key, i)) => ctx.out.bulk(
            format!(
                "This user has no permissions to access the '{}' key",
                text(cmd[i])
            )
            .as_bytes(),
        ),
        Err((_, i)) => ctx.out.bulk(
            format!(
                "This user has no permissions to access the '{}' channel",
                text(cmd[i])
            )
            .as_bytes(),
        ),
    }
    Ok(())
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];
