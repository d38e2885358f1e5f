//! Reading a command's arguments, with errors worded the same everywhere.

use super::CommandError;
use crate::resp::parse::parse_i64;

/// Integer argument, as Redis's `getLongLongFromObjectOrReply`.
pub fn int(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64(arg).ok_or(CommandError::NotInteger)
}

/// A cursor over a command's arguments (after the name), for option parsing.
pub struct Args<'a, 'b> {
    argv: &'b [&'a [u8]],
    pos: usize,
}

impl<'a, 'b> Args<'a, 'b> {
    /// Starts after the command name.
    pub fn new(argv: &'b [&'a [u8]]) -> Self {
        Args { argv, pos: 1 }
    }

    pub fn remaining(&self) -> usize {
        self.argv.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument, or a syntax error if there is none.
    pub fn next_bytes(&mut self) -> Result<&'a [u8], CommandError> {
        let a = self.argv.get(self.pos).ok_or(CommandError::Syntax)?;
        self.pos += 1;
        Ok(a)
    }

    pub fn next_i64(&mut self) -> Result<i64, CommandError> {
        int(self.next_bytes()?)
    }

    /// Consumes the next argument if it equals `word`, ignoring ASCII case.
    pub fn eat(&mut self, word: &str) -> bool {
        match self.argv.get(self.pos) {
            Some(a) if a.eq_ignore_ascii_case(word.as_bytes()) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    pub fn peek(&self) -> Option<&'a [u8]> {
        self.argv.get(self.pos).copied()
    }
}

/// The options of HSCAN, SSCAN and ZSCAN after the key and cursor (`argv[3..]`): COUNT (10 by
/// default) and MATCH (None for none, or for `*`, which matches everything). As Redis's
/// `scanGenericCommand`, this runs once the key was found.
pub fn scan_options<'a>(argv: &[&'a [u8]]) -> Result<(usize, Option<&'a [u8]>), CommandError> {
    let mut count: i64 = 10;
    let mut pattern = None;
    let mut i = 3;
    while i < argv.len() {
        let has_value = i + 1 < argv.len();
        if argv[i].eq_ignore_ascii_case(b"count") && has_value {
            count = int(argv[i + 1])?;
            if count < 1 {
                return Err(CommandError::Syntax);
            }
        } else if argv[i].eq_ignore_ascii_case(b"match") && has_value {
            pattern = Some(argv[i + 1]).filter(|p| *p != b"*");
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    Ok((usize::try_from(count).unwrap_or(usize::MAX), pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor() {
        let argv: Vec<&[u8]> = vec![b"set", b"k", b"v", b"EX", b"10"];
        let mut a = Args::new(&argv);
        assert_eq!(a.next_bytes().unwrap(), b"k");
        a.next_bytes().unwrap();
        assert!(a.eat("ex"));
        assert_eq!(a.next_i64().unwrap(), 10);
        assert!(a.is_empty());
        assert_eq!(a.next_bytes(), Err(CommandError::Syntax));
    }
}
