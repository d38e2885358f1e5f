//! Reading a command's arguments, with errors worded the same everywhere.

use super::CommandError;
use crate::resp::parse::parse_i64;

/// Integer argument, as Redis's `getLongLongFromObjectOrReply`.
pub fn int(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64(arg).ok_or(CommandError::NotInteger)
}

/// Float argument, as Redis's `getLongDoubleFromObjectOrReply`: no spaces, no NaN.
pub fn float(arg: &[u8]) -> Result<f64, CommandError> {
    let s = std::str::from_utf8(arg).map_err(|_| CommandError::NotFloat)?;
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return Err(CommandError::NotFloat);
    }
    match s.parse::<f64>() {
        Ok(v) if !v.is_nan() => Ok(v),
        _ => Err(CommandError::NotFloat),
    }
}

/// Formats a double the way Redis replies with one (`%.17g`, shortest round-trip here).
pub fn fmt_float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    format!("{v}")
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

    pub fn next_f64(&mut self) -> Result<f64, CommandError> {
        float(self.next_bytes()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        assert_eq!(float(b"1.5").unwrap(), 1.5);
        assert_eq!(float(b"1e3").unwrap(), 1000.0);
        assert!(float(b" 1").is_err());
        assert!(float(b"nan").is_err());
        assert!(float(b"").is_err());
        assert!(float(b"1x").is_err());
        assert_eq!(fmt_float(10.5), "10.5");
        assert_eq!(fmt_float(3.0), "3");
        assert_eq!(fmt_float(1e20), "100000000000000000000");
    }

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
