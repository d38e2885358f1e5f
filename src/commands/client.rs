//! CLIENT and its subcommands (Redis's networking.c), over the registry in `crate::clients`.

use std::sync::Arc;

use super::flags::*;
use super::{args, dispatch_sub, help, tracking, CommandError, CommandSpec, Ctx, Keys};
use crate::clients::{ClientHandle, ClientKind};

pub static COMMANDS: &[CommandSpec] =
    &[cmd!("client", -2, 0, Keys::None, dispatch_sub).container(SUBCOMMANDS, HELP)];

const SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("client|id", 2, NOSCRIPT | LOADING | STALE, Keys::None, id),
    cmd!(
        "client|getname",
        2,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        getname
    ),
    cmd!(
        "client|setname",
        3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        setname
    ),
    cmd!(
        "client|setinfo",
        4,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        setinfo
    ),
    cmd!(
        "client|list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        list
    ),
    cmd!(
        "client|info",
        2,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        info
    ),
    cmd!(
        "client|kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        kill
    ),
    cmd!(
        "client|unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        unblock
    ),
    cmd!("client|help", 2, LOADING | STALE, Keys::None, help),
    cmd!(
        "client|reply",
        3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        reply
    ),
    cmd!(
        "client|no-evict",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        no_evict
    ),
    cmd!(
        "client|pause",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        pause
    ),
    cmd!(
        "client|unpause",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        unpause
    ),
    cmd!(
        "client|tracking",
        -3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        tracking::tracking
    ),
    cmd!(
        "client|caching",
        3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        tracking::caching
    ),
    cmd!(
        "client|getredir",
        2,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        tracking::getredir
    ),
    cmd!(
        "client|trackinginfo",
        2,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        tracking::trackinginfo
    ),
];

/// CLIENT REPLY ON|OFF|SKIP: the session drops the replies of silenced commands (see
/// `connection::run_request`). OFF and SKIP answer nothing; SKIP while OFF changes nothing.
fn reply(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    use crate::client::Reply;
    match argv[2].to_ascii_lowercase().as_slice() {
        b"on" => {
            ctx.client.reply = Reply::On;
            ctx.out.ok();
        }
        b"off" => ctx.client.reply = Reply::Off,
        b"skip" => {
            if ctx.client.reply != Reply::Off {
                ctx.client.reply = Reply::SkipNext;
            }
        }
        _ => return Err(CommandError::Syntax),
    }
    Ok(())
}

/// CLIENT NO-EVICT ON|OFF: exempts the client from client eviction (`e` in CLIENT LIST).
fn no_evict(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let on = match argv[2].to_ascii_lowercase().as_slice() {
        b"on" => true,
        b"off" => false,
        _ => return Err(CommandError::Syntax),
    };
    ctx.client
        .handle
        .no_evict
        .store(on, std::sync::atomic::Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

/// CLIENT PAUSE timeout [WRITE|ALL] (see `ops::pause`).
fn pause(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    use crate::ops::pause::{PauseKind, Purpose};
    if argv.len() > 4 {
        return Err(CommandError::UnknownSubcommand {
            sub: argv[1].to_vec(),
            cmd: "client",
        });
    }
    let kind = match argv.get(3).map(|a| a.to_ascii_lowercase()) {
        None => PauseKind::All,
        Some(m) if m == b"write" => PauseKind::Write,
        Some(m) if m == b"all" => PauseKind::All,
        Some(_) => {
            return Err(CommandError::Err(
                "CLIENT PAUSE mode must be WRITE or ALL".into(),
            ))
        }
    };
    let ms = args::int(argv[2])
        .map_err(|_| CommandError::Err("timeout is not an integer or out of range".into()))?;
    if ms < 0 {
        return Err(CommandError::Err("timeout is negative".into()));
    }
    ctx.shared.ops.pause.pause(
        Purpose::Client,
        kind,
        Some(std::time::Duration::from_millis(ms as u64)),
    );
    ctx.out.ok();
    Ok(())
}

fn unpause(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.shared
        .ops
        .pause
        .unpause(crate::ops::pause::Purpose::Client);
    ctx.out.ok();
    Ok(())
}

fn id(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.int(ctx.client.id as i64);
    Ok(())
}

fn getname(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let name = ctx.client.handle.state.lock().name.clone();
    if name.is_empty() {
        ctx.out.null_bulk();
    } else {
        ctx.out.bulk(&name);
    }
    Ok(())
}

/// Checks a client name as Redis's `validateClientName`: printable ASCII without spaces.
pub fn validate_name(name: &[u8]) -> Result<(), CommandError> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        Ok(())
    } else {
        Err(CommandError::Err(
            "Client names cannot contain spaces, newlines or special characters.".into(),
        ))
    }
}

/// Sets the connection's name (empty clears it), after validation.
pub fn set_name(ctx: &mut Ctx, name: &[u8]) -> Result<(), CommandError> {
    validate_name(name)?;
    ctx.client.handle.state.lock().name = name.to_vec();
    Ok(())
}

fn setname(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    set_name(ctx, argv[2])?;
    ctx.out.ok();
    Ok(())
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value, as Redis 7.2 has it (7.0 lacks it, but current client
/// libraries send it on connect).
fn setinfo(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let attr = argv[2].to_ascii_lowercase();
    let value = argv[3];
    let field = match attr.as_slice() {
        b"lib-name" => "lib-name",
        b"lib-ver" => "lib-ver",
        _ => {
            return Err(CommandError::Err(format!(
                "Unrecognized option '{}'",
                String::from_utf8_lossy(argv[2])
            )))
        }
    };
    if !value.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        return Err(CommandError::Err(format!(
            "{field} cannot contain spaces, newlines or special characters."
        )));
    }
    if field == "lib-name" && value.contains(&b' ') {
        return Err(CommandError::Syntax);
    }
    let mut st = ctx.client.handle.state.lock();
    match field {
        "lib-name" => st.lib_name = value.to_vec(),
        _ => st.lib_ver = value.to_vec(),
    }
    drop(st);
    ctx.out.ok();
    Ok(())
}

/// The client types Redis knows (`slave` is `replica`'s old name).
fn client_type(name: &[u8]) -> Result<ClientKind, CommandError> {
    match name.to_ascii_lowercase().as_slice() {
        b"normal" => Ok(ClientKind::Normal),
        b"pubsub" => Ok(ClientKind::Pubsub),
        b"master" => Ok(ClientKind::Master),
        b"replica" | b"slave" => Ok(ClientKind::Replica),
        _ => Err(CommandError::Err(format!(
            "Unknown client type '{}'",
            String::from_utf8_lossy(name)
        ))),
    }
}

fn list(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let clients: Vec<Arc<ClientHandle>> = match argv.len() {
        2 => ctx.shared.clients.all(),
        4 if argv[2].eq_ignore_ascii_case(b"type") => {
            let kind = client_type(argv[3])?;
            let mut all = ctx.shared.clients.all();
            all.retain(|c| c.kind() == kind);
            all
        }
        n if n > 3 && argv[2].eq_ignore_ascii_case(b"id") => {
            let mut v = Vec::new();
            for a in &argv[3..] {
                let id = args::int(a).map_err(|_| CommandError::Err("Invalid client ID".into()))?;
                v.extend(ctx.shared.clients.get(id as u64));
            }
            v
        }
        _ => return Err(CommandError::Syntax),
    };
    let mut text = String::new();
    for c in clients {
        text.push_str(&c.info_line());
        text.push('\n');
    }
    ctx.out.verbatim("txt", text.as_bytes());
    Ok(())
}

fn info(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let line = format!("{}\n", ctx.client.handle.info_line());
    ctx.out.verbatim("txt", line.as_bytes());
    Ok(())
}

/// CLIENT KILL addr (old form: OK or "No such client"), or CLIENT KILL filter value ... (new
/// form: the number killed). The caller itself is skipped by default in the new form; when it
/// is killed, its reply is still written before it is closed, as in Redis.
fn kill(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let mut id: Option<u64> = None;
    let mut addr: Option<&[u8]> = None;
    let mut laddr: Option<&[u8]> = None;
    let mut kind: Option<ClientKind> = None;
    let mut skipme = true;
    let mut maxage: Option<u64> = None;
    if argv.len() == 3 {
        addr = Some(argv[2]);
        skipme = false;
    } else {
        let mut i = 2;
        while i < argv.len() {
            let opt = argv[i].to_ascii_lowercase();
            let Some(&val) = argv.get(i + 1) else {
                return Err(CommandError::Syntax);
            };
            match opt.as_slice() {
                b"id" => {
                    let n = args::int(val).ok().filter(|&n| n >= 1).ok_or_else(|| {
                        CommandError::Err("client-id should be greater than 0".into())
                    })?;
                    id = Some(n as u64);
                }
                b"type" => kind = Some(client_type(val)?),
                b"addr" => addr = Some(val),
                b"laddr" => laddr = Some(val),
                b"user" => {
                    // Only the default user exists until ACLs do.
                    if val != b"default" {
                        return Err(CommandError::Err(format!(
                            "No such user '{}'",
                            String::from_utf8_lossy(val)
                        )));
                    }
                }
                b"maxage" => {
                    let n = args::int(val)
                        .ok()
                        .filter(|&n| n >= 0)
                        .ok_or(CommandError::Syntax)?;
                    maxage = Some(n as u64);
                }
                b"skipme" => {
                    skipme = match val.to_ascii_lowercase().as_slice() {
                        b"yes" => true,
                        b"no" => false,
                        _ => return Err(CommandError::Syntax),
                    }
                }
                _ => return Err(CommandError::Syntax),
            }
            i += 2;
        }
    }
    let me = ctx.client.id;
    let mut killed = 0;
    for c in ctx.shared.clients.all() {
        let matches = kind.is_none_or(|k| k == c.kind())
            && id.is_none_or(|id| c.id == id)
            && addr.is_none_or(|a| c.addr.as_bytes() == a)
            && laddr.is_none_or(|a| c.laddr.as_bytes() == a)
            && maxage.is_none_or(|m| c.created.elapsed().as_secs() >= m)
            && !(skipme && c.id == me);
        if !matches {
            continue;
        }
        if c.id == me {
            ctx.client.close_after_reply = true;
        } else {
            c.kill();
            // Gone from CLIENT LIST now, as in Redis, not once its worker notices; a replica
            // is gone from INFO too (its thread may be stuck writing to it).
            ctx.shared.clients.unregister(c.id);
            if c.kind() == ClientKind::Replica {
                ctx.shared.repl.backlog.end_replica(c.id);
            }
        }
        killed += 1;
    }
    if argv.len() == 3 {
        if killed == 0 {
            return Err(CommandError::Err("No such client".into()));
        }
        ctx.out.ok();
    } else {
        ctx.out.int(killed);
    }
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends a client's wait in a blocking command, with its
/// timeout reply or an UNBLOCKED error. 1 if it was blocked.
fn unblock(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() > 4 {
        return Err(CommandError::subcommand_syntax("client", argv));
    }
    let how = match argv.get(3) {
        None => crate::blocking::End::Timeout,
        Some(r) if r.eq_ignore_ascii_case(b"timeout") => crate::blocking::End::Timeout,
        Some(r) if r.eq_ignore_ascii_case(b"error") => crate::blocking::End::Error,
        Some(_) => {
            return Err(CommandError::Err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into(),
            ))
        }
    };
    let id = args::int(argv[2])?;
    let done = u64::try_from(id).is_ok_and(|id| ctx.shared.blocking.end(ctx.shared, id, how));
    ctx.out.int(done as i64);
    Ok(())
}

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients of the given ids.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attributes: LIB-NAME or LIB-VER.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];
