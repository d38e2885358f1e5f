//! Server commands: COMMAND (and its subcommands), TIME.

use super::flags::*;
use super::{all, dispatch_sub, docs, help, lookup, CommandError, CommandSpec, Ctx, Keys};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("command", -1, LOADING | STALE, Keys::None, command).container(SUBCOMMANDS, HELP),
    cmd!("time", 1, LOADING | STALE | FAST, Keys::None, time),
];

const SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("command|count", 2, LOADING | STALE, Keys::None, count),
    cmd!(
        "command|docs",
        -2,
        LOADING | STALE,
        Keys::None,
        command_docs
    ),
    cmd!("command|getkeys", -4, LOADING | STALE, Keys::None, getkeys),
    cmd!(
        "command|getkeysandflags",
        -4,
        LOADING | STALE,
        Keys::None,
        getkeysandflags
    ),
    cmd!("command|help", 2, LOADING | STALE, Keys::None, help),
    cmd!("command|info", -2, LOADING | STALE, Keys::None, info),
    cmd!("command|list", -2, LOADING | STALE, Keys::None, list),
];

/// One COMMAND INFO entry: what the table says, plus Redis's ACL categories, tips and key
/// specs, plus the subcommands'.
fn command_info(ctx: &mut Ctx, c: &CommandSpec) {
    let (first, last, step) = docs::redis_key_range(c.name).unwrap_or_else(|| c.key_range());
    ctx.out.array(10);
    ctx.out.bulk(c.name.as_bytes());
    ctx.out.int(c.arity as i64);
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| c.has(*f))
        .map(|(_, n)| *n)
        .collect();
    ctx.out.set(names.len());
    for n in names {
        ctx.out.simple(n);
    }
    ctx.out.int(first as i64);
    ctx.out.int(last as i64);
    ctx.out.int(step as i64);
    for extra in docs::info_extras(c.name) {
        extra.encode(ctx.out);
    }
    // As Redis: an empty set when there are none, else an array.
    if c.subcommands.is_empty() {
        ctx.out.set(0);
    } else {
        ctx.out.array(c.subcommands.len());
    }
    for s in c.subcommands {
        command_info(ctx, s);
    }
}

/// A command or a subcommand (`client|kill`) by name, ignoring case.
fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    match name.split_once('|') {
        None => lookup(name.as_bytes()),
        Some((container, _)) => lookup(container.as_bytes())?
            .subcommands
            .iter()
            .find(|s| s.name == name),
    }
}

fn command(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() > 1 {
        return dispatch_sub(ctx, argv);
    }
    let cmds: Vec<_> = all().collect();
    ctx.out.array(cmds.len());
    for c in cmds {
        command_info(ctx, c);
    }
    Ok(())
}

fn count(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    ctx.out.int(all().count() as i64);
    Ok(())
}

fn info(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    if argv.len() == 2 {
        return command(ctx, &argv[..1]);
    }
    ctx.out.array(argv.len() - 2);
    for name in &argv[2..] {
        match find(name) {
            Some(c) => command_info(ctx, c),
            None => ctx.out.null_bulk(),
        }
    }
    Ok(())
}

fn docs_entry(ctx: &mut Ctx, c: &CommandSpec) {
    ctx.out.bulk(c.name.as_bytes());
    docs::docs(c.name, |n| c.subcommands.iter().any(|s| s.name == n)).encode(ctx.out);
}

fn command_docs(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let cmds: Vec<&CommandSpec> = if argv.len() == 2 {
        all().collect()
    } else {
        argv[2..].iter().filter_map(|n| find(n)).collect()
    };
    ctx.out.map(cmds.len());
    for c in cmds {
        docs_entry(ctx, c);
    }
    Ok(())
}

fn list(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    // Subcommands are listed too, after their container, as Redis lists them.
    let every = all().flat_map(|c| std::iter::once(c).chain(c.subcommands));
    let names: Vec<&str> = match argv.len() {
        2 => every.map(|c| c.name).collect(),
        5 if argv[2].eq_ignore_ascii_case(b"filterby") => {
            let arg = argv[4];
            match argv[3].to_ascii_lowercase().as_slice() {
                b"module" => Vec::new(),
                b"aclcat" => {
                    let cat = String::from_utf8_lossy(arg).to_ascii_lowercase();
                    every
                        .filter(|c| docs::acl_categories(c.name).contains(&cat))
                        .map(|c| c.name)
                        .collect()
                }
                b"pattern" => every
                    .filter(|c| crate::util::glob::matches(arg, c.name.as_bytes(), true))
                    .map(|c| c.name)
                    .collect(),
                _ => return Err(CommandError::Syntax),
            }
        }
        _ => return Err(CommandError::Syntax),
    };
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

/// The command COMMAND GETKEYS* is asked about and the positions of its keys, from the one
/// key-positions function (plus what only parsing finds), or Redis's errors, in its order.
fn keys_of(target: &[&[u8]]) -> Result<(&'static CommandSpec, Vec<usize>), CommandError> {
    let spec =
        lookup(target[0]).ok_or_else(|| CommandError::Err("Invalid command specified".into()))?;
    let spec = spec.resolve(target);
    if !spec.has_key_arguments() {
        return Err(CommandError::Err("The command has no key arguments".into()));
    }
    if !spec.arity_ok(target.len()) {
        return Err(CommandError::Err(
            "Invalid number of arguments specified for command".into(),
        ));
    }
    let mut keys: Vec<usize> = match spec.checked_key_positions(target) {
        Some(k) => k.collect(),
        // EVAL, FCALL and their _RO forms may name no key (Redis's `no_mandatory_keys`).
        None if docs::redis_arity_flags(spec.name)
            .is_some_and(|(_, f)| f.iter().any(|f| f == "no_mandatory_keys")) =>
        {
            Vec::new()
        }
        None => {
            return Err(CommandError::Err(
                "Invalid arguments specified for command".into(),
            ))
        }
    };
    if let Keys::Parsed { more_key, .. } = spec.keys {
        keys.extend(more_key(target));
    }
    Ok((spec, keys))
}

fn getkeys(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let target = &argv[2..];
    let (_, keys) = keys_of(target)?;
    ctx.out.array(keys.len());
    for i in keys {
        ctx.out.bulk(target[i]);
    }
    Ok(())
}

/// COMMAND GETKEYSANDFLAGS: GETKEYS's keys, each with the flags of the key spec Redis finds it
/// by (RW/RO/OW/RM, access/update/insert/delete).
fn getkeysandflags(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let target = &argv[2..];
    let (spec, keys) = keys_of(target)?;
    let (found, fallback) = docs::key_flags(spec.name, target);
    let variable: Option<Vec<String>> = spec
        .variable_key_flags(target)
        .map(|f| f.words.iter().map(|s| s.to_string()).collect());
    ctx.out.array(keys.len());
    for i in keys {
        let flags = variable.as_ref().unwrap_or_else(|| {
            found
                .iter()
                .find(|(p, _)| *p == i)
                .map_or(&fallback, |(_, f)| f)
        });
        ctx.out.array(2);
        ctx.out.bulk(target[i]);
        ctx.out.set(flags.len());
        flags.iter().for_each(|f| ctx.out.simple(f));
    }
    Ok(())
}

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

fn time(ctx: &mut Ctx, _argv: &[&[u8]]) -> Result<(), CommandError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_int(now.as_secs() as i64);
    ctx.out.bulk_int(now.subsec_micros() as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Frame;

    /// rudis's table says what Redis 7.0 says of each command it shares with it, so COMMAND
    /// INFO and the behaviour it describes (arity errors, flags) match.
    #[test]
    fn table_matches_redis() {
        let mut wrong = Vec::new();
        for c in all().flat_map(|c| std::iter::once(c).chain(c.subcommands)) {
            let Some((arity, flags)) = docs::redis_arity_flags(c.name) else {
                continue;
            };
            // Flags rudis does not model (no_async_loading, ...) are not compared.
            let flags: Vec<String> = flags
                .into_iter()
                .filter(|f| NAMES.iter().any(|(_, n)| n == f))
                .collect();
            let ours: Vec<String> = NAMES
                .iter()
                .filter(|(f, _)| c.has(*f))
                .map(|(_, n)| n.to_string())
                .collect();
            if arity != c.arity as i64 || ours != flags {
                wrong.push(format!(
                    "{}: redis {arity} {flags:?}, rudis {} {ours:?}",
                    c.name, c.arity
                ));
            }
            // COMMAND INFO prints Redis's key range; where rudis locks other keys, it says why
            // (docs::redis_key_range).
            let locks_otherwise = ["memory", "spublish", "ssubscribe", "sunsubscribe"];
            let redis_range = docs::redis_key_range(c.name);
            if redis_range != Some(c.key_range()) && !locks_otherwise.contains(&c.name) {
                wrong.push(format!(
                    "{}: redis keys {redis_range:?}, rudis {:?}",
                    c.name,
                    c.key_range()
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// redis-cli's hints come from these docs: every command has them (CLIENT SETINFO is
    /// Redis 7.2's, later than the docs).
    #[test]
    fn every_command_is_documented() {
        let missing: Vec<&str> = all()
            .flat_map(|c| std::iter::once(c).chain(c.subcommands))
            .map(|c| c.name)
            .filter(|n| !docs::has_docs(n) && *n != "client|setinfo")
            .collect();
        assert!(missing.is_empty(), "no docs for {missing:?}");
    }

    #[test]
    fn docs_are_redis_docs() {
        let Frame::Map(d) = docs::docs("hset", |_| false) else {
            panic!()
        };
        assert_eq!(
            docs::map_get(&d, "group"),
            Some(&Frame::Bulk(b"hash".to_vec()))
        );
    }
}
