//! Command errors as values. Each renders to the exact line Redis sends.

use std::fmt;

use crate::shared::WriteRefusal;
use crate::util::ldouble::FloatError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Holds the command's full name as Redis prints it (`get`, `client|setname`).
    WrongArity(&'static str),
    UnknownCommand {
        name: Vec<u8>,
        args: Vec<Vec<u8>>,
    },
    /// `sub` as the client typed it; `cmd` the container's name (upper-cased in the message, as
    /// in Redis's "Try CLIENT HELP.").
    UnknownSubcommand {
        sub: Vec<u8>,
        cmd: &'static str,
    },
    /// Redis's addReplySubcommandSyntaxError: a known subcommand given arguments it does not
    /// take (`sub`, `cmd` as for `UnknownSubcommand`).
    SubcommandSyntax {
        sub: Vec<u8>,
        cmd: &'static str,
    },
    WrongType,
    NotInteger,
    NotFloat,
    Overflow,
    Syntax,
    NoSuchKey,
    DbIndexOutOfRange,
    /// `invalid expire time in '<cmd>' command`.
    InvalidExpire(&'static str),
    /// `NOAUTH Authentication required.`
    NoAuth,
    /// `ERR <message>`, for the rarer messages.
    Err(String),
    /// A full error line with its own code (`NOAUTH ...`, `MISCONF ...`).
    Coded(String),
}

impl CommandError {
    /// Redis's shared.loadingerr: what a command refused while the data loads gets.
    pub fn loading() -> Self {
        CommandError::Coded("LOADING Redis is loading the dataset in memory".into())
    }

    /// Redis's addReplySubcommandSyntaxError for `cmd`'s subcommand `argv[1]`.
    pub fn subcommand_syntax(cmd: &'static str, argv: &[&[u8]]) -> Self {
        CommandError::SubcommandSyntax {
            sub: argv[1].to_vec(),
            cmd,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::WrongArity(name) => {
                write!(f, "ERR wrong number of arguments for '{name}' command")
            }
            CommandError::UnknownCommand { name, args } => {
                // Redis quotes the name (up to 128 bytes) and the first arguments, up to about
                // 128 bytes of them in all.
                let name = String::from_utf8_lossy(&name[..name.len().min(128)]);
                write!(
                    f,
                    "ERR unknown command '{name}', with args beginning with: "
                )?;
                let mut shown = String::new();
                for a in args {
                    if shown.len() >= 128 {
                        break;
                    }
                    let room = 128 - shown.len();
                    let a = String::from_utf8_lossy(&a[..a.len().min(room)]);
                    shown.push_str(&format!("'{a}' "));
                }
                f.write_str(&shown)
            }
            CommandError::UnknownSubcommand { sub, cmd } => write!(
                f,
                "ERR unknown subcommand '{}'. Try {} HELP.",
                String::from_utf8_lossy(&sub[..sub.len().min(128)]),
                cmd.to_ascii_uppercase()
            ),
            CommandError::SubcommandSyntax { sub, cmd } => write!(
                f,
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
                String::from_utf8_lossy(&sub[..sub.len().min(128)]),
                cmd.to_ascii_uppercase()
            ),
            CommandError::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            CommandError::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            CommandError::NotFloat => f.write_str("ERR value is not a valid float"),
            CommandError::Overflow => f.write_str("ERR increment or decrement would overflow"),
            CommandError::Syntax => f.write_str("ERR syntax error"),
            CommandError::NoSuchKey => f.write_str("ERR no such key"),
            CommandError::DbIndexOutOfRange => f.write_str("ERR DB index is out of range"),
            CommandError::InvalidExpire(cmd) => {
                write!(f, "ERR invalid expire time in '{cmd}' command")
            }
            CommandError::NoAuth => f.write_str("NOAUTH Authentication required."),
            CommandError::Err(m) => write!(f, "ERR {m}"),
            CommandError::Coded(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CommandError {}

/// INCRBYFLOAT's wording; HINCRBYFLOAT words its own.
impl From<FloatError> for CommandError {
    fn from(e: FloatError) -> Self {
        match e {
            FloatError::NotFloat => CommandError::NotFloat,
            FloatError::NanOrInfinity => {
                CommandError::Err("increment would produce NaN or Infinity".into())
            }
        }
    }
}

impl From<WriteRefusal> for CommandError {
    fn from(e: WriteRefusal) -> Self {
        CommandError::Coded(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording() {
        assert_eq!(
            CommandError::WrongArity("get").to_string(),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            CommandError::UnknownCommand {
                name: b"foo".to_vec(),
                args: vec![b"a".to_vec(), b"b".to_vec()]
            }
            .to_string(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
    }
}
