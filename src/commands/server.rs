//! Server commands: COMMAND.

use super::flags::*;
use super::{all, CommandError, CommandSpec, Ctx, Keys};

pub static COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "command",
    arity: -1,
    flags: LOADING | STALE,
    keys: Keys::None,
    handler: command,
}];

fn command_info(ctx: &mut Ctx, c: &CommandSpec) {
    let (first, last, step) = c.key_range();
    ctx.out.array(10);
    ctx.out.bulk(c.name.as_bytes());
    ctx.out.int(c.arity as i64);
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| c.has(*f))
        .map(|(_, n)| *n)
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.simple(n);
    }
    ctx.out.int(first as i64);
    ctx.out.int(last as i64);
    ctx.out.int(step as i64);
    ctx.out.array(0); // ACL categories
    ctx.out.array(0); // tips
    ctx.out.array(0); // key specs
    ctx.out.array(0); // subcommands
}

fn command(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let Some(sub) = argv.get(1) else {
        let cmds: Vec<_> = all().collect();
        ctx.out.array(cmds.len());
        for c in cmds {
            command_info(ctx, c);
        }
        return Ok(());
    };
    match sub.to_ascii_lowercase().as_slice() {
        b"count" => ctx.out.int(all().count() as i64),
        b"docs" => ctx.out.array(0),
        b"info" => {
            ctx.out.array(argv.len() - 2);
            for name in &argv[2..] {
                match super::lookup(name) {
                    Some(c) => command_info(ctx, c),
                    None => ctx.out.null_array(),
                }
            }
        }
        b"list" => {
            let cmds: Vec<_> = all().collect();
            ctx.out.array(cmds.len());
            for c in cmds {
                ctx.out.bulk(c.name.as_bytes());
            }
        }
        _ => {
            return Err(CommandError::UnknownSubcommand {
                sub: sub.to_vec(),
                cmd: "COMMAND",
            })
        }
    }
    Ok(())
}
