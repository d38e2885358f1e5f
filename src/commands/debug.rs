//! DEBUG: only SLEEP so far, which tests use to hold a client in a long command.

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
        DebugCommand::Local => ctx.client.addr.is_some_and(|a| a.ip().is_loopback()),
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
    Err(CommandError::Err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(sub)
    )))
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
