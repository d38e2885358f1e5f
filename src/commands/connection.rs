//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO, RESET, AUTH.

use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, Keys};
use crate::client::Client;
use crate::shared::Shared;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "ping",
        -1,
        FAST | DISK_ERROR_REFUSES | PUBSUB_CONTEXT,
        Keys::None,
        ping
    ),
    cmd!("echo", 2, LOADING | STALE | FAST, Keys::None, echo),
    cmd!(
        "quit",
        -1,
        NOSCRIPT | ALLOW_BUSY | NO_AUTH | FAST | LOADING | STALE | NOT_QUEUED | PUBSUB_CONTEXT,
        Keys::None,
        quit
    ),
    cmd!(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        Keys::None,
        hello
    ),
    cmd!(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | NOT_QUEUED | PUBSUB_CONTEXT,
        Keys::None,
        reset
    ),
    cmd!(
        "select",
        2,
        LOADING | STALE | FAST | SELECTS_DB,
        Keys::None,
        select
    ),
    cmd!(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        Keys::None,
        auth
    ),
];

/// AUTH [username] password, and HELLO's AUTH option: the user's password (SHA-256
/// compared), as Redis's ACLAuthenticateUser; a failure is logged in ACL LOG.
pub fn authenticate(
    shared: &Shared,
    client: &mut Client,
    command: &[u8],
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<(), CommandError> {
    if user.is_none() && shared.acl.default_user().nopass {
        return Err(CommandError::Err(
            "AUTH <password> called without any password configured for the default \
             user. Are you sure your configuration is correct?"
                .into(),
        ));
    }
    let name = user.unwrap_or(b"default");
    let Some(u) = shared.acl.authenticate(name, password) else {
        log::debug!("client {} gave a wrong password", client.id);
        let context = if client.multi.is_some() {
            super::acl::Context::Multi
        } else {
            super::acl::Context::Toplevel
        };
        super::acl::log_denial(
            shared,
            client,
            crate::acl::Denied::Auth,
            context,
            String::from_utf8_lossy(command).into_owned(),
            Some(&String::from_utf8_lossy(name)),
        );
        return Err(CommandError::Coded(
            "WRONGPASS invalid username-password pair or user is disabled.".into(),
        ));
    };
    client.handle.state.lock().user = u.name.clone();
    client.user = Some(u);
    client.acl_gen = shared.acl.generation();
    client.authenticated = true;
    Ok(())
}

fn auth(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let (user, password) = match argv {
        [_, password] => (None, *password),
        [_, user, password] => (Some(*user), *password),
        _ => return Err(CommandError::Syntax),
    };
    authenticate(ctx.shared, ctx.client, argv[0], user, password)?;
    ctx.out.ok();
    Ok(())
}

fn ping(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // A RESP2 subscriber reads only arrays: its PONG is one, as in Redis.
    if ctx.client.subs.active() && !ctx.out.has_push() && argv.len() <= 2 {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(argv.get(1).copied().unwrap_or(b""));
        return Ok(());
    }
    match argv {
        [_] => ctx.out.simple("PONG"),
        [_, msg] => ctx.out.bulk(msg),
        _ => return Err(CommandError::WrongArity("ping")),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.bulk(argv[1]);
    Ok(())
}

fn quit(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn select(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let db = args::int(argv[1])
        .map_err(|_| CommandError::Err("value is not an integer or out of range".into()))?;
    if db < 0 || db as usize >= ctx.shared.store.dbs.len() {
        return Err(CommandError::DbIndexOutOfRange);
    }
    ctx.select(db as usize);
    ctx.out.ok();
    Ok(())
}

/// The Redis version rudis answers as (HELLO, INFO's `redis_version`): clients gate features on
/// it, and rudis speaks Redis 7.0's protocol.
pub const REDIS_VERSION: &str = "7.0.15";

/// HELLO [protover [AUTH user pass] [SETNAME name]], as Redis 7.0's `helloCommand`: options
/// take effect in their order (a SETNAME before a failing AUTH stays), and the protocol switches
/// only once the client is authenticated, before the server map is written in it.
fn hello(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let mut version = None;
    if let Some(v) = argv.get(1) {
        let v = args::int(v).map_err(|_| {
            CommandError::Err("Protocol version is not an integer or out of range".into())
        })?;
        if !(2..=3).contains(&v) {
            return Err(CommandError::Coded(
                "NOPROTO unsupported protocol version".into(),
            ));
        }
        version = Some(v as u8);
    }
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if argv[i].eq_ignore_ascii_case(b"auth") && more >= 2 {
            authenticate(
                ctx.shared,
                ctx.client,
                argv[0],
                Some(argv[i + 1]),
                argv[i + 2],
            )?;
            i += 3;
        } else if argv[i].eq_ignore_ascii_case(b"setname") && more >= 1 {
            super::client::set_name(ctx, argv[i + 1])?;
            i += 2;
        } else {
            return Err(CommandError::Err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(argv[i])
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CommandError::Coded(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise \
             the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time"
                .into(),
        ));
    }
    if let Some(v) = version {
        set_protocol(ctx, v);
    }
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(out.protocol() as i64);
    out.bulk(b"id");
    out.int(ctx.client.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// The connection's replies are written in `version` from now on, and CLIENT LIST says so.
fn set_protocol(ctx: &mut Ctx, version: u8) {
    ctx.out.set_protocol(version);
    ctx.client.handle.set_protocol(version);
}

/// RESET: back to a fresh connection's state (database 0, no name, no transaction, watches,
/// subscriptions, tracking or MONITOR, replies on, and unauthenticated if a password is set)
/// and `+RESET`.
fn reset(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    use crate::client::Reply;
    if ctx
        .client
        .handle
        .monitor
        .swap(false, std::sync::atomic::Ordering::Relaxed)
    {
        ctx.shared.ops.monitors.remove(ctx.client.id);
    }
    // As Redis's clearClientConnectionState: OFF and SKIP-next end, but a RESET that is
    // itself the skipped command stays silent.
    if ctx.client.reply != Reply::Skip {
        ctx.client.reply = Reply::On;
    }
    ctx.select(0);
    ctx.client.multi = None;
    super::transaction::unwatch_all(ctx.shared, ctx.client);
    ctx.shared
        .pubsub
        .unsubscribe_all(&mut ctx.client.subs, &ctx.client.handle);
    {
        let mut st = ctx.client.handle.state.lock();
        (st.sub, st.psub, st.ssub) = (0, 0, 0);
    }
    super::tracking::off(ctx);
    ctx.client.authenticated = !ctx.shared.requires_auth();
    ctx.client.user = Some(ctx.shared.acl.default_user());
    ctx.client.handle.state.lock().user = "default".into();
    ctx.client.handle.state.lock().name.clear();
    set_protocol(ctx, 2);
    ctx.out.simple("RESET");
    Ok(())
}
