//! CONFIG GET / SET / RESETSTAT / HELP over the settings registry in `crate::config`.

use super::flags::*;
use super::{dispatch_sub, help, CommandError, CommandSpec, Ctx, Keys};
use crate::config::{listed_names, Config, ConfigError};
use crate::shared::Shared;

pub static COMMANDS: &[CommandSpec] =
    &[cmd!("config", -2, 0, Keys::None, dispatch_sub).container(SUBCOMMANDS, HELP)];

const SUBCOMMANDS: &[CommandSpec] = &[
    cmd!(
        "config|get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        get
    ),
    cmd!(
        "config|set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        set
    ),
    cmd!(
        "config|resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        resetstat
    ),
    cmd!(
        "config|rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        rewrite
    ),
    cmd!("config|help", 2, LOADING | STALE, Keys::None, help),
];

fn get(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let config = ctx.shared.config.read().clone();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pattern in &argv[2..] {
        let is_glob = pattern.iter().any(|c| b"*?[".contains(c));
        if !is_glob {
            // An exact name is answered under the name as given, as Redis does.
            let name = String::from_utf8_lossy(pattern).into_owned();
            if let Some(v) = config.get(&name) {
                if !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                    pairs.push((name, v));
                }
            }
            continue;
        }
        for name in listed_names() {
            if crate::util::glob::matches(pattern, name.as_bytes(), true)
                && !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                pairs.push((name.to_string(), config.get(name).unwrap_or_default()));
            }
        }
    }
    ctx.out.map(pairs.len());
    for (n, v) in pairs {
        ctx.out.bulk(n.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

fn set(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if !argv.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    let words: Vec<String> = argv[2..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let pairs: Vec<(&str, &str)> = words
        .chunks(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    let mut config = ctx.shared.config.write();
    // Redis's protected configs (dir, dbfilename): refused unless enable-protected-configs
    // allows this client (yes, or local for a loopback one), before anything is set.
    let allowed = match config.get("enable-protected-configs").as_deref() {
        Some("yes") => true,
        Some("local") => ctx.client.local,
        _ => false,
    };
    if !allowed {
        if let Some((name, _)) = pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("dir") || n.eq_ignore_ascii_case("dbfilename"))
        {
            return Err(CommandError::Err(format!(
                "CONFIG SET failed (possibly related to argument '{name}') - can't set \
                 protected config"
            )));
        }
    }
    let before = config.clone();
    match config.set_at_runtime(&pairs, ctx.shared.is_loading()) {
        Ok(replaced) => {
            if config.dir != before.dir {
                // As Redis's setConfigDirOption: the server moves into it (snapshots are
                // written there from now on; the AOF open stays where it is).
                if let Err(e) = std::env::set_current_dir(&config.dir) {
                    config.restore(before, replaced);
                    return Err(CommandError::Err(format!(
                        "CONFIG SET failed (possibly related to argument 'dir') - {}",
                        crate::util::strerror(&e)
                    )));
                }
                if let Ok(cwd) = std::env::current_dir() {
                    config.dir = cwd;
                }
            }
            if config.maxclients != before.maxclients {
                // As Redis's updateMaxclients: a value the open files limit cannot cover
                // undoes the whole CONFIG SET.
                if let Err(reason) = crate::fdlimit::update_maxclients(config.maxclients) {
                    log::warn!(
                        "Failed applying new configuration. Possibly related to new maxclients \
                         setting. Restoring previous settings."
                    );
                    config.restore(before, replaced);
                    return Err(CommandError::Err(format!(
                        "CONFIG SET failed (possibly related to argument 'maxclients') - \
                         {reason}"
                    )));
                }
            }
            if let Some((name, _)) = pairs.iter().find(|(n, _)| crate::tls::is_tls_setting(n)) {
                // As Redis's applyTlsCfg: the certificates are read again; settings that do
                // not hold undo the whole CONFIG SET.
                if let Err(e) = ctx.shared.tls.configure(&config) {
                    log::warn!("{e}");
                    config.restore(before, replaced);
                    return Err(CommandError::Err(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - Unable to \
                         update TLS configuration. Check server logs."
                    )));
                }
            }
            if config.bind != before.bind {
                // As Redis's applyBind; restoreBackupConfig binds the old addresses again.
                let shared = ctx.shared;
                let listen = |c: &crate::config::Config| {
                    let tls = crate::tls::tls_port(c);
                    shared
                        .ports
                        .replace_all(&c.bind, c.port, tls, c.tcp_backlog)
                };
                if let Err(e) = listen(&config) {
                    log::warn!("Failed to bind: {e}");
                    config.restore(before, replaced);
                    if let Err(e) = listen(&config) {
                        log::warn!("cannot listen on the previous addresses again: {e}");
                    }
                    if let Err(e) = shared.tls.configure(&config) {
                        log::warn!("{e}");
                    }
                    return Err(CommandError::Err(
                        "CONFIG SET failed (possibly related to argument 'bind') - Failed to \
                         bind to specified addresses."
                            .into(),
                    ));
                }
            } else if let Err(name) = rebind(ctx.shared, &before, &config) {
                // As Redis's updatePort / applyTLSPort; the old port still listens.
                config.restore(before, replaced);
                if let Err(e) = ctx.shared.tls.configure(&config) {
                    log::warn!("{e}");
                }
                return Err(CommandError::Err(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - Unable to \
                     listen on this port. Check server logs."
                )));
            }
            if config.appendonly != before.appendonly {
                // As Redis's updateAppendonly.
                let aof = ctx.shared.aof_handle();
                if !config.appendonly {
                    aof.disable();
                } else if !aof.enable(ctx.effects.is_some()) {
                    config.restore(before, replaced);
                    return Err(CommandError::Err(
                        "CONFIG SET failed (possibly related to argument 'appendonly') - \
                         Unable to turn on AOF. Check server logs."
                            .into(),
                    ));
                }
            }
            let oom_changed = ["oom-score-adj", "oom-score-adj-values"]
                .iter()
                .any(|n| config.get(n) != before.get(n));
            if oom_changed && ctx.shared.apply_oom_score(&config).is_err() {
                config.restore(before, replaced);
                // Back to the score of the settings restored.
                let _ = ctx.shared.apply_oom_score(&config);
                let name = pairs
                    .iter()
                    .map(|(n, _)| n.to_ascii_lowercase())
                    .find(|n| n.starts_with("oom-score-adj"))
                    .unwrap_or_else(|| "oom-score-adj".into());
                return Err(CommandError::Err(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - Failed to \
                         set current oom_score_adj. Check server logs."
                )));
            }
            apply(ctx.shared, &config);
            if pairs
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("requirepass"))
            {
                // As Redis: requirepass is the default user's one password.
                ctx.shared
                    .acl
                    .set_default_password(&config.requirepass.expose());
            }
            drop(config);
            // A lowered maxmemory evicts now, as Redis's does; unless this runs inside EXEC
            // with shards held (eviction takes its own locks): the next command evicts then.
            if ctx.ks.locked.shard_ids().is_empty() {
                crate::evict::perform_all(ctx.shared);
            }
            ctx.out.ok();
            Ok(())
        }
        Err((_, ConfigError::Loading)) => Err(CommandError::loading()),
        Err((name, ConfigError::UnknownSetting(_))) => Err(CommandError::Err(format!(
            "Unknown option or number of arguments for CONFIG SET - '{name}'"
        ))),
        Err((name, e)) => Err(CommandError::Err(format!(
            "CONFIG SET failed (possibly related to argument '{name}') - {}",
            e.reason()
        ))),
    }
}

/// Moves the listeners of a changed `port` or `tls-port`; Err names the setting whose port
/// could not be listened on (the listeners moved before it are moved back).
fn rebind(shared: &Shared, before: &Config, config: &Config) -> Result<(), &'static str> {
    let ports = [
        ("port", before.port, config.port, false),
        (
            "tls-port",
            crate::tls::tls_port(before),
            crate::tls::tls_port(config),
            true,
        ),
    ];
    for (i, &(name, old, new, tls)) in ports.iter().enumerate() {
        if old == new {
            continue;
        }
        if let Err(e) = shared
            .ports
            .rebind(tls, &config.bind, new, config.tcp_backlog)
        {
            log::warn!("Failed listening on port {new} (tcp), aborting: {e}");
            for &(_, old, new, tls) in &ports[..i] {
                if old != new {
                    if let Err(e) = shared
                        .ports
                        .rebind(tls, &config.bind, old, config.tcp_backlog)
                    {
                        log::warn!("cannot listen on port {old} again: {e}");
                    }
                }
            }
            return Err(name);
        }
    }
    Ok(())
}

/// Puts settings changed at run time into effect. `timeout` needs nothing here: connections
/// read it from the config as they wait; nor do the auto-aof-rewrite settings, which the
/// rewrite thread reads.
fn apply(shared: &Shared, config: &Config) {
    shared.repl.apply_config(config);
    // As Redis after a change of the template or of the ports it shows.
    config.apply_proc_title();
    // Records made from now on follow it; one made under `always` still waits for its
    // fsync.
    shared.aof_handle().apply_config(config);
    // With RUST_LOG set, the environment's filter stays in charge.
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(config.loglevel.level_filter());
    }
}

fn rewrite(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    rewrite_config(ctx, false)
}

/// CONFIG REWRITE, or with `force_all` every setting written (DEBUG CONFIG-REWRITE-FORCE-ALL).
pub fn rewrite_config(ctx: &mut Ctx, force_all: bool) -> Result<(), CommandError> {
    let config = ctx.shared.config.read().clone();
    let users: Vec<String> = (ctx.shared.acl.users().iter())
        .map(|u| format!("{} {}", u.name, u.describe()))
        .collect();
    match config.rewrite_file(&users, force_all) {
        Ok(()) => {
            log::info!("CONFIG REWRITE executed with success.");
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            log::warn!("CONFIG REWRITE failed: {e}");
            Err(CommandError::Err(e.to_string()))
        }
    }
}

fn resetstat(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.shared.stats.reset();
    crate::ops::cmdstats::reset();
    crate::store::lazyfree::reset_stats();
    ctx.out.ok();
    Ok(())
}

const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];
