//! Redis's glob patterns (util.c `stringmatchlen`), as KEYS, SCAN MATCH and CONFIG GET use them:
//! `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x` escapes.
//!
//! A port of Redis 7.0's matcher, quirks included (an unterminated `[` matches as if closed at
//! the end, ranges may be reversed), so that users get Redis's answers. Redis recurses at each
//! `*` but, since its fix for CVE-2022-36021, never backtracks past the innermost star; that
//! makes one remembered star position enough, so this runs without recursion and a long
//! client pattern cannot overflow a worker's stack.

/// The pattern byte at `i`, or 0 past the end (Redis reads its strings' NUL terminator).
fn at(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

fn fold(c: u8, nocase: bool) -> u8 {
    if nocase {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

enum Segment {
    Matched,
    Failed,
    /// Reached a `*` that needs trying: the pattern index after it, the string index.
    Star(usize, usize),
}

/// True if `s` matches `pattern`.
/// How many bytes `pattern` starts with that match only themselves (case-sensitively).
pub fn literal_prefix(pattern: &[u8]) -> usize {
    pattern
        .iter()
        .position(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len())
}

pub fn matches(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    // The innermost `*`: the pattern after it and the next string position to try it at.
    let mut star: Option<(usize, usize)> = None;
    let (mut pi, mut si) = (0, 0);
    loop {
        match segment(pattern, pi, s, si, nocase) {
            Segment::Matched => return true,
            Segment::Star(p, from) => {
                star = Some((p, from));
                pi = p;
                si = from;
            }
            Segment::Failed => match star {
                Some((p, from)) if from + 1 < s.len() => {
                    star = Some((p, from + 1));
                    pi = p;
                    si = from + 1;
                }
                _ => return false,
            },
        }
    }
}

/// Redis's main loop from pattern index `pi` and string index `si`, until a result or a `*`.
fn segment(pat: &[u8], mut pi: usize, s: &[u8], mut si: usize, nocase: bool) -> Segment {
    let plen = pat.len();
    while pi < plen && si < s.len() {
        match pat[pi] {
            b'*' => {
                while pi < plen && at(pat, pi + 1) == b'*' {
                    pi += 1;
                }
                if plen - pi == 1 {
                    return Segment::Matched;
                }
                return Segment::Star(pi + 1, si);
            }
            b'?' => si += 1,
            b'[' => {
                pi += 1;
                let not = at(pat, pi) == b'^';
                if not {
                    pi += 1;
                }
                let c = s[si];
                let mut matched = false;
                loop {
                    if at(pat, pi) == b'\\' && plen - pi >= 2 {
                        pi += 1;
                        if pat[pi] == c {
                            matched = true;
                        }
                    } else if at(pat, pi) == b']' {
                        break;
                    } else if pi >= plen {
                        pi -= 1;
                        break;
                    } else if plen - pi >= 3 && pat[pi + 1] == b'-' {
                        let (mut start, mut end) = (pat[pi], pat[pi + 2]);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        let (start, end, c) =
                            (fold(start, nocase), fold(end, nocase), fold(c, nocase));
                        pi += 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if fold(pat[pi], nocase) == fold(c, nocase) {
                        matched = true;
                    }
                    pi += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return Segment::Failed;
                }
                si += 1;
            }
            b => {
                let mut b = b;
                if b == b'\\' && plen - pi >= 2 {
                    pi += 1;
                    b = pat[pi];
                }
                if fold(b, nocase) != fold(s[si], nocase) {
                    return Segment::Failed;
                }
                si += 1;
            }
        }
        pi += 1;
        if si == s.len() {
            while at(pat, pi) == b'*' && pi < plen {
                pi += 1;
            }
            break;
        }
    }
    if pi >= plen && si == s.len() {
        Segment::Matched
    } else {
        Segment::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn stars_and_questions() {
        // Redis's matcher needs a byte to match: `*` fails on "" (KEYS * and SCAN MATCH *
        // skip the matcher, so they still list the empty key).
        assert!(!m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("*a*b*c", "xxaxxbxxc"));
        assert!(!m("*a*b*c", "xxaxxbxx"));
        assert!(m("a**", "a"));
        assert!(m("a*", "a"));
        assert!(!m("a?", "a"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(m("user:*:name", "user:12:name"));
        assert!(!m("user:*:name", "user:12:names"));
        assert!(m("*ab", "aab"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed ranges work as in Redis");
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[\\]]", "]"));
        assert!(
            m("[abc", "a"),
            "an unterminated class ends at the pattern's end"
        );
        assert!(!m("a[", "a["), "a lone [ never matches, as in Redis");
        assert!(m("[-]", "-"));
    }

    #[test]
    fn escapes_and_case() {
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a\\", "a\\"));
        assert!(matches(b"HeLLo", b"hello", true));
        assert!(!matches(b"HeLLo", b"hello", false));
        assert!(matches(b"[A-C]x", b"bx", true));
    }

    #[test]
    fn binary_and_long_patterns_do_not_recurse() {
        assert!(matches(b"\x00*\xff", b"\x00abc\xff", false));
        let pat = "*a".repeat(200_000);
        let s = "a".repeat(100);
        assert!(!m(&pat, &s));
        let s = "ab".repeat(5000) + "c";
        assert!(!m("*a*b*a*b*a*b*d", &s));
    }
}
