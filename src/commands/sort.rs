//! SORT and SORT_RO (Redis's sort.c): the elements of a list or set (sorted sets: add an arm
//! to `elements`), ordered by themselves or by the keys a BY pattern names, numerically or
//! (ALPHA) as strings, cut by LIMIT, mapped through GET patterns, replied or STOREd as a list.
//!
//! BY and GET patterns name keys only known once the elements are read, and STORE's
//! destination is found by parsing: such a SORT locks the whole current database
//! (`Keys::Parsed`); a plain SORT locks its one key.

use std::cmp::Ordering;

use super::ctx::Keyspace;
use super::flags::*;
use super::{args, CommandError, CommandSpec, Ctx, Keys};
use crate::notify::events::class::{GENERIC, LIST};
use crate::store::list::End;
use crate::store::{List, Value};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "sort",
        -2,
        WRITE | DENYOOM | MOVABLEKEYS,
        Keys::Parsed {
            range: (1, 1, 1),
            whole_db: reaches_other_keys,
            more_key: store_key,
        },
        sort
    ),
    cmd!(
        "sort_ro",
        -2,
        READONLY | MOVABLEKEYS,
        Keys::Parsed {
            range: (1, 1, 1),
            whole_db: reaches_other_keys,
            more_key: |_| None,
        },
        sort_ro
    ),
];

/// The position of SORT's last STORE destination, skipping the other options' arguments, as
/// Redis's `sortGetKeys`.
fn store_key(argv: &[&[u8]]) -> Option<usize> {
    let mut found = None;
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < argv.len() {
            found = Some(i + 1);
        }
        i += 1;
    }
    found
}

/// True if SORT's arguments may touch keys besides the sorted one: a STORE, a BY pattern or a
/// GET pattern other than `#`. Looser than the parser (a pattern without `*` reaches nothing),
/// which only costs a wider lock.
fn reaches_other_keys(argv: &[&[u8]]) -> bool {
    argv.iter().skip(2).any(|a| {
        a.eq_ignore_ascii_case(b"store")
            || a.eq_ignore_ascii_case(b"by")
            || a.eq_ignore_ascii_case(b"get")
    })
}

/// The options, as `sortCommandGeneric` parses them.
struct Options<'a> {
    desc: bool,
    alpha: bool,
    /// LIMIT's offset and count, unclamped.
    limit: (i64, i64),
    store: Option<&'a [u8]>,
    by: Option<&'a [u8]>,
    /// BY's pattern has no `*`: no weights, the elements keep their order.
    dontsort: bool,
    get: Vec<&'a [u8]>,
}

/// `full_keys`: the user may read every key (Redis's ACLUserCheckCmdWithUnrestrictedKeyAccess);
/// BY and GET patterns are refused otherwise, as they reach keys no check saw.
fn parse<'a>(
    argv: &[&'a [u8]],
    readonly: bool,
    full_keys: bool,
) -> Result<Options<'a>, CommandError> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: (0, -1),
        store: None,
        by: None,
        dontsort: false,
        get: Vec::new(),
    };
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = argv[j];
        if a.eq_ignore_ascii_case(b"asc") {
            o.desc = false;
        } else if a.eq_ignore_ascii_case(b"desc") {
            o.desc = true;
        } else if a.eq_ignore_ascii_case(b"alpha") {
            o.alpha = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            o.limit = (args::int(argv[j + 1])?, args::int(argv[j + 2])?);
            j += 2;
        } else if !readonly && a.eq_ignore_ascii_case(b"store") && left >= 1 {
            o.store = Some(argv[j + 1]);
            j += 1;
        } else if a.eq_ignore_ascii_case(b"by") && left >= 1 {
            o.by = Some(argv[j + 1]);
            if argv[j + 1].contains(&b'*') && !full_keys {
                return Err(CommandError::Err(
                    "BY option of SORT denied due to insufficient ACL permissions.".into(),
                ));
            }
            // Never unset: after `BY nosort`, a later BY pattern still does not sort.
            o.dontsort |= !argv[j + 1].contains(&b'*');
            j += 1;
        } else if a.eq_ignore_ascii_case(b"get") && left >= 1 {
            if !full_keys {
                return Err(CommandError::Err(
                    "GET option of SORT denied due to insufficient ACL permissions.".into(),
                ));
            }
            o.get.push(argv[j + 1]);
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

fn sort(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    sort_generic(ctx, argv, false)
}

fn sort_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> Result<(), CommandError> {
    sort_generic(ctx, argv, true)
}

/// What a pattern finds for an element (Redis's `lookupKeyByPattern`): `#` is the element
/// itself; otherwise the first `*` is replaced by the element, and a `->field` after it reads
/// that field of a hash; the key must be a string (or a hash, with a field). A pattern
/// without `*` finds nothing. Only keys of the current database are reached.
fn lookup<'v>(ks: &'v Keyspace, pattern: &[u8], elem: &'v [u8]) -> Option<&'v [u8]> {
    if pattern == b"#" {
        return Some(elem);
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let field = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&i| i + 2 < pattern.len());
    let key_end = field.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(key_end + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    match (ks.get(&key)?, field) {
        (Value::Hash(h), Some(f)) => h.get_live(&pattern[f + 2..], ks.clock()),
        (Value::Str(s), None) => Some(s),
        _ => None,
    }
}

/// A number as C's `strtod` reads one for SORT: the whole string (up to a NUL) must be one
/// number, leading white space allowed; an empty string is 0; NaN, overflow and underflow are
/// errors (`ERANGE`).
pub(crate) fn score(b: &[u8]) -> Option<f64> {
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    if b.is_empty() {
        return Some(0.0);
    }
    let s = std::str::from_utf8(b).ok()?;
    let s = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .filter(|h| h.starts_with(|c: char| c.is_ascii_hexdigit() || c == '.'))
    {
        hex_float(hex)?
    } else {
        if digits.starts_with(['+', '-']) {
            return None;
        }
        let v: f64 = digits.parse().ok()?;
        let named = digits
            .bytes()
            .any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E');
        if v.is_nan() || (v.is_infinite() && !named) {
            return None;
        }
        let mantissa = digits.split(['e', 'E']).next().unwrap_or("");
        let nonzero = mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c));
        if (v == 0.0 && nonzero) || (v != 0.0 && v.abs() < f64::MIN_POSITIVE) {
            return None;
        }
        v
    };
    Some(if neg { -v } else { v })
}

/// A C99 hexadecimal float after its `0x`: `h[.h][p[+-]d]`, at least one hex digit.
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let exp: i32 = match exp {
        None => 0,
        Some(e)
            if e.trim_start_matches(['+', '-'])
                .bytes()
                .all(|c| c.is_ascii_digit()) =>
        {
            e.parse().ok()?
        }
        Some(_) => return None,
    };
    let v = v * 2f64.powi(exp);
    v.is_finite().then_some(v)
}

/// The bytes C's string functions see: up to the first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// The sorted collection's elements, in its own order; None if the key is absent.
fn elements(v: &Value) -> Result<Vec<Vec<u8>>, CommandError> {
    Ok(match v {
        Value::List(l) => l.iter().map(|e| e.to_vec()).collect(),
        Value::Set(s) => s.iter().map(|m| m.to_vec()).collect(),
        // In score order, as Redis's SORT reads a sorted set (it is not a set to order).
        Value::ZSet(z) => z.iter().map(|(m, _)| m.to_vec()).collect(),
        _ => return Err(CommandError::WrongType),
    })
}

/// What an element is sorted by.
enum Weight<'v> {
    None,
    Score(f64),
    /// ALPHA BY: the looked-up string, absent when the key is (sorted first).
    Str(Option<&'v [u8]>),
}

fn sort_generic(ctx: &mut Ctx, argv: &[&[u8]], readonly: bool) -> Result<(), CommandError> {
    let full_keys = match (&ctx.client.user, super::table::lookup(argv[0])) {
        (Some(u), Some(spec)) if !u.unrestricted => u.reads_every_key(spec, argv),
        _ => true,
    };
    let mut o = parse(argv, readonly, full_keys)?;
    let (mut elems, is_set) = match ctx.ks.get(argv[1]) {
        None => (Vec::new(), false),
        Some(v) => (elements(v)?, matches!(v, Value::Set(_))),
    };
    // A set has no order of its own: one that is stored (and so logged and replayed), or read
    // by a script, is sorted, as strings, for the result to be the same everywhere.
    if o.dontsort && is_set && (o.store.is_some() || ctx.client.in_script) {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = elems.len() as i64;
    let start = o.limit.0.clamp(0, len);
    let count = o.limit.1.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    let start = if start >= len {
        end = len - 2;
        len - 1
    } else {
        start
    };
    end = end.min(len - 1);
    let range = if end >= start {
        start as usize..end as usize + 1
    } else {
        0..0
    };

    if o.dontsort {
        // A list keeps its order (reversed by DESC); a set its iteration order.
        if o.desc && !is_set {
            elems.reverse();
        }
    } else {
        let partial = (start != 0 || end != len - 1).then_some((range.start, range.end));
        let order = sort_order(&ctx.ks, &o, &elems, partial.filter(|(a, b)| a < b))?;
        let mut taken: Vec<Option<Vec<u8>>> = elems.into_iter().map(Some).collect();
        elems = order
            .into_iter()
            .map(|i| taken[i].take().expect("each index once"))
            .collect();
    }
    let picked = &elems[range];

    let Some(dest) = o.store else {
        let n = picked.len() * o.get.len().max(1);
        ctx.out.array(n);
        for e in picked {
            if o.get.is_empty() {
                ctx.out.bulk(e);
            }
            for p in &o.get {
                let v = lookup(&ctx.ks, p, e);
                ctx.out.bulk_opt(v);
            }
        }
        return Ok(());
    };
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(picked.len() * o.get.len().max(1));
    for e in picked {
        if o.get.is_empty() {
            out.push(e.clone());
        }
        for p in &o.get {
            out.push(lookup(&ctx.ks, p, e).unwrap_or_default().to_vec());
        }
    }
    let db = ctx.ks.db;
    ctx.ks.expire_if_needed(db, dest);
    // Logged as sent, as Redis logs it: the result does not depend on a set's iteration
    // order (a set with nothing to sort by was sorted above).
    if out.is_empty() {
        if ctx.ks.remove(dest).is_some() {
            ctx.dirty(1);
            ctx.notify(GENERIC, "del", dest);
        }
    } else {
        let mut list = List::default();
        for v in &out {
            list.push(End::Right, v);
        }
        ctx.ks.set(dest, Value::List(Box::new(list)));
        ctx.dirty(out.len() as u64);
        ctx.notify(LIST, "sortstore", dest);
    }
    ctx.out.int(out.len() as i64);
    Ok(())
}

/// The order of `elems` as `sortCompare` does: by score (ties by the elements' bytes), or as
/// strings; ALPHA BY puts elements whose key is missing first and keeps equal ones in their
/// order.
///
/// `partial`: the output range, when LIMIT cuts the result.
fn sort_order(
    ks: &Keyspace,
    o: &Options,
    elems: &[Vec<u8>],
    partial: Option<(usize, usize)>,
) -> Result<Vec<usize>, CommandError> {
    let mut weighted: Vec<(Weight, usize)> = Vec::with_capacity(elems.len());
    let mut bad_score = false;
    for (i, e) in elems.iter().enumerate() {
        let by = match o.by {
            Some(p) => lookup(ks, p, e),
            None => Some(&e[..]),
        };
        let w = match (o.alpha, by) {
            (true, v) if o.by.is_some() => Weight::Str(v),
            (true, _) => Weight::None,
            (false, None) => Weight::Score(0.0),
            (false, Some(v)) => match score(v) {
                Some(s) => Weight::Score(s),
                None => {
                    bad_score = true;
                    Weight::Score(0.0)
                }
            },
        };
        weighted.push((w, i));
    }
    // As Redis: the error is found after every weight is read, and reported instead of the
    // result (a STORE stores nothing).
    if bad_score {
        return Err(CommandError::Err(
            "One or more scores can't be converted into double".into(),
        ));
    }
    let binary = o.store.is_some();
    let cmp_str = |a: &[u8], b: &[u8]| {
        if binary {
            a.cmp(b)
        } else {
            c_str(a).cmp(c_str(b))
        }
    };
    let cmp = |(wa, ia): &(Weight, usize), (wb, ib): &(Weight, usize)| {
        let ord = match (wa, wb) {
            (Weight::Score(a), Weight::Score(b)) => a
                .partial_cmp(b)
                .unwrap_or(Ordering::Equal)
                .then_with(|| elems[*ia].cmp(&elems[*ib])),
            (Weight::Str(a), Weight::Str(b)) => match (a, b) {
                (Some(a), Some(b)) => cmp_str(a, b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            },
            _ => cmp_str(&elems[*ia], &elems[*ib]),
        };
        if o.desc {
            ord.reverse()
        } else {
            ord
        }
    };
    // As Redis: BY with a LIMIT that cuts sorts only as far as the range needs, with its own
    // quicksort (which orders equal ALPHA weights its own way); otherwise qsort, stable in
    // glibc (a merge sort).
    match partial {
        Some((first, last)) if o.by.is_some() => pqsort(&mut weighted, &cmp, first, last),
        _ => weighted.sort_by(cmp),
    }
    Ok(weighted.into_iter().map(|(_, i)| i).collect())
}

/// Redis's pqsort.c (NetBSD's qsort, made to skip the parts outside `first..last`): the
/// same comparisons and swaps, so that elements with equal weights come out in Redis's order.
pub(crate) fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, first: usize, last: usize) {
    let (lrange, rrange) = (first, last - 1);
    // True if a part from `s`, `m` long, holds none of the range.
    let outside =
        |s: usize, m: usize| (lrange < s && rrange < s) || (lrange >= s + m && rrange >= s + m);
    let med3 = |v: &[T], a: usize, b: usize, c: usize| {
        if cmp(&v[a], &v[b]) == Ordering::Less {
            if cmp(&v[b], &v[c]) == Ordering::Less {
                b
            } else if cmp(&v[a], &v[c]) == Ordering::Less {
                c
            } else {
                a
            }
        } else if cmp(&v[b], &v[c]) == Ordering::Greater {
            b
        } else if cmp(&v[a], &v[c]) == Ordering::Less {
            a
        } else {
            c
        }
    };
    fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
        for i in 0..n {
            v.swap(a + i, b + i);
        }
    }
    // The C code's explicit stack: its recursion and its loop.
    let mut parts = vec![(0usize, v.len())];
    while let Some((mut a, mut n)) = parts.pop() {
        loop {
            if n < 7 {
                for pm in a + 1..a + n {
                    let mut pl = pm;
                    while pl > a && cmp(&v[pl - 1], &v[pl]) == Ordering::Greater {
                        v.swap(pl, pl - 1);
                        pl -= 1;
                    }
                }
                break;
            }
            let mut pm = a + n / 2;
            if n > 7 {
                let (mut pl, mut pn) = (a, a + n - 1);
                if n > 40 {
                    let d = n / 8;
                    pl = med3(v, pl, pl + d, pl + 2 * d);
                    pm = med3(v, pm - d, pm, pm + d);
                    pn = med3(v, pn - 2 * d, pn - d, pn);
                }
                pm = med3(v, pl, pm, pn);
            }
            v.swap(a, pm);
            let (mut pa, mut pb) = (a + 1, a + 1);
            let (mut pc, mut pd) = (a + n - 1, a + n - 1);
            loop {
                while pb <= pc {
                    let c = cmp(&v[pb], &v[a]);
                    if c == Ordering::Greater {
                        break;
                    }
                    if c == Ordering::Equal {
                        v.swap(pa, pb);
                        pa += 1;
                    }
                    pb += 1;
                }
                while pb <= pc {
                    let c = cmp(&v[pc], &v[a]);
                    if c == Ordering::Less {
                        break;
                    }
                    if c == Ordering::Equal {
                        v.swap(pc, pd);
                        pd -= 1;
                    }
                    pc -= 1;
                }
                if pb > pc {
                    break;
                }
                v.swap(pb, pc);
                pb += 1;
                pc -= 1;
            }
            let pn = a + n;
            let r = (pa - a).min(pb - pa);
            vecswap(v, a, pb - r, r);
            let r = (pd - pc).min(pn - pd - 1);
            vecswap(v, pb, pn - r, r);
            let left = pb - pa;
            let right = pd - pc;
            // The C code recurses into the left part first, then loops on the right one.
            if right > 1 && !outside(pn - right, right) {
                parts.push((pn - right, right));
            }
            if left > 1 && !outside(a, left) {
                (a, n) = (a, left);
                continue;
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_read_as_strtod_does() {
        assert_eq!(score(b""), Some(0.0));
        assert_eq!(score(b" 1.5"), Some(1.5));
        assert_eq!(score(b"-3"), Some(-3.0));
        assert_eq!(score(b"1e3"), Some(1000.0));
        assert_eq!(score(b"0x10"), Some(16.0));
        assert_eq!(score(b"0x1p3"), Some(8.0));
        assert_eq!(score(b"-0x.8"), Some(-0.5));
        assert_eq!(score(b"inf"), Some(f64::INFINITY));
        assert_eq!(score(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(score(b"2\0junk"), Some(2.0));
        for bad in [
            &b"abc"[..],
            b"1 ",
            b" ",
            b"nan",
            b"1e400",
            b"1e-400",
            b"--1",
            b"1x",
        ] {
            assert_eq!(score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn pqsort_orders_the_range_it_is_asked_for() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for n in [0usize, 1, 6, 7, 8, 40, 41, 300] {
            let v: Vec<u32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 50) as u32
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort();
            for (first, last) in [
                (0, n),
                (0, n / 2),
                (n / 3, (n / 2 + 1).min(n)),
                (n.saturating_sub(1), n),
            ] {
                if first >= last {
                    continue;
                }
                let mut got = v.clone();
                pqsort(&mut got, &|a: &u32, b: &u32| a.cmp(b), first, last);
                assert_eq!(
                    got[first..last],
                    sorted[first..last],
                    "n {n} {first}..{last}"
                );
            }
        }
    }

    #[test]
    fn only_patterns_and_store_widen_the_lock() {
        assert!(!reaches_other_keys(&[
            b"sort", b"k", b"desc", b"limit", b"0", b"1"
        ]));
        assert!(reaches_other_keys(&[b"sort", b"k", b"STORE", b"d"]));
        assert!(reaches_other_keys(&[b"sort", b"k", b"by", b"w_*"]));
        assert!(reaches_other_keys(&[b"sort", b"k", b"get", b"#"]));
    }
}
