//! DEBUG: SLEEP, which tests use to hold a client in a long command, and PROTOCOL, which writes
//! each reply type (the differential tests compare them under RESP2 and RESP3).

use std::time::Duration;

use super::flags::*;
use super::{CommandError, CommandSpec, Ctx, Keys};
use crate::config::DebugCommand;

pub static COMMANDS: &[CommandSpec] = &[cmd!(
    "debug",
    -2,
    ADMIN | NOSCRIPT | LOADING | STALE,
    Keys::None,
    debug
)];

const NOT_ALLOWED: &str = "DEBUG command not allowed. If the enable-debug-command option is set \
to \"local\", you can run it from a local connection, otherwise you need to set this option in \
the configuration file, and then restart the server.";

fn debug(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    let allowed = match ctx.shared.config.read().enable_debug_command {
        DebugCommand::Yes => true,
        DebugCommand::No => false,
        DebugCommand::Local => crate::util::net::is_local(ctx.client.addr),
    };
    if !allowed {
        return Err(CommandError::Err(NOT_ALLOWED.into()));
    }
    let sub = argv[1];
    if sub.eq_ignore_ascii_case(b"sleep") && argv.len() == 3 {
        // As Redis, with C's atof: what is not a number sleeps for no time.
        let secs = atof(argv[2]);
        if secs.is_finite() && secs > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(secs.min(3600.0)));
        }
        ctx.out.ok();
        return Ok(());
    }
    if sub.eq_ignore_ascii_case(b"protocol") && argv.len() == 3 {
        return protocol(ctx, argv[2]);
    }
    if sub.eq_ignore_ascii_case(b"set-disable-deny-scripts") && argv.len() == 3 {
        // Lets scripts run `noscript` commands, for Redis's own tests (C's atoi).
        let on = super::args::int(argv[2]).unwrap_or(0) != 0;
        ctx.shared
            .scripts
            .disable_deny_script
            .store(on, std::sync::atomic::Ordering::Relaxed);
        ctx.out.ok();
        return Ok(());
    }
    Err(CommandError::Err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(sub)
    )))
}

/// DEBUG PROTOCOL <type>: one reply of that type, Redis's sample values.
fn protocol(ctx: &mut Ctx, kind: &[u8]) -> Result<(), CommandError> {
    let out = &mut *ctx.out;
    match kind.to_ascii_lowercase().as_slice() {
        b"string" => out.bulk(b"Hello World"),
        b"integer" => out.int(12345),
        // Redis's sample value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        b"double" => out.double(3.141),
        b"bignum" => out.big_number(b"1234567999999999999999999999999999999"),
        b"null" => out.null_bulk(),
        b"array" | b"set" => {
            if kind.eq_ignore_ascii_case(b"set") {
                out.set(3);
            } else {
                out.array(3);
            }
            (0..3).for_each(|j| out.int(j));
        }
        b"map" => {
            out.map(3);
            for j in 0..3 {
                out.int(j);
                out.bool(j == 1);
            }
        }
        b"attrib" => {
            out.attribute(1, |out| {
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            });
            // Attributes are not replies: a reply follows them.
            out.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !out.has_push() {
                return Err(CommandError::Err(
                    "RESP2 is not supported by this command".into(),
                ));
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            // A push is not the reply: blocking clients that skip pushes still get one.
            out.bulk(b"Some real reply following the push reply");
        }
        b"true" => out.bool(true),
        b"false" => out.bool(false),
        b"verbatim" => out.verbatim("txt", b"This is a verbatim\nstring"),
        _ => {
            return Err(CommandError::Err(
                "Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"
                    .into(),
            ))
        }
    }
    Ok(())
}

/// C's atof: the longest leading number, or 0. (Looks at 64 bytes at most: no number is longer.)
fn atof(b: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(&b[..b.len().min(64)]);
    let s = s.trim_start();
    (1..=s.len())
        .rev()
        .filter(|&n| s.is_char_boundary(n))
        .find_map(|n| s[..n].parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn atof_reads_the_leading_number() {
        assert_eq!(super::atof(b"0.25"), 0.25);
        assert_eq!(super::atof(b" 1.5s"), 1.5);
        assert_eq!(super::atof(b"abc"), 0.0);
        assert_eq!(super::atof(b""), 0.0);
    }
}
