//! Differential tests: every script in tests/diff/ is run against a real redis-server and
//! against rudis, each on fresh ports, and the raw reply bytes must be identical. Each script
//! runs twice, on connections that first said HELLO 2 and HELLO 3: every reply is compared in
//! both protocols. Both servers allow DEBUG (for DEBUG PROTOCOL).
//!
//! Script syntax, one command per line, words split as redis-cli splits them (quotes, \x41):
//!   `# ...`          a comment
//!   `SET k v`        replies must be byte-identical
//!   `~ INFO`         replies compared by shape only (types and array lengths), for replies
//!                    that legitimately differ: INFO text, CLIENT ID, server version, ...
//!   `% KEYS *`       arrays compared as multisets, for replies whose order is Redis's hash order
//!   `!sleep 1100`    pause (milliseconds), for expiry
//!   `!debug`         (anywhere) both servers start with `enable-debug-command yes`
//!   `!changes SET k v`  replies must be identical, and so must the number of changes the
//!                    command added to INFO's `rdb_changes_since_last_save` (what Redis
//!                    counts as a change is also what it propagates)
//!   `{proto}`        in a command: the protocol the script runs in, 2 or 3
//!   `@sub CMD`       runs CMD on the connection named `sub` (opened, with the script's HELLO,
//!                    at its first use) instead of the main one
//!   `*3 CMD`         reads three frames (pushes or replies) instead of one reply: SUBSCRIBE
//!                    a b c answers with three; `@sub *2` with no command reads two frames
//!                    the connection was sent (Pub/Sub messages); `%` compares them as a
//!                    multiset
//!   `^ @ev PING`     reads Pub/Sub messages (pushes, or RESP2 message arrays) up to the
//!                    command's reply: what a subscriber received before it, in order
//!   `!no-aof-compare reason`  (anywhere) the AOFs are not compared (see below)
//!
//! In the RESP2 run both servers also keep an AOF (Redis 7's multi-part layout on both), and
//! at the end the commands in their incr files must be the same: what each command propagates
//! (to the AOF, and so to replicas) is Redis's too. Times a command turns into absolute ones
//! (EXPIRE's PEXPIREAT, SET EX's PXAT, XADD's `*`) are compared as `<ms>`/`<s>`; what the
//! lines compared by shape or as multisets (`~`, `%`: random picks, hash order) logged is left
//! out; a run of DELs (keys expired in one pass, in hash order) is compared as a multiset.
mod common;

use common::{show, RealRedis, Rng, Rudis};
use rudis::resp::parse::{Limits, Parsed, RequestParser};
use rudis::resp::Frame;

fn split_words(line: &str) -> Vec<Vec<u8>> {
    let mut p = RequestParser::new(Limits::default());
    let input = format!("{line}\r\n");
    match p.parse(input.as_bytes()) {
        Ok(Parsed::Request { .. }) => p
            .args()
            .iter()
            .map(|a| a.bytes(input.as_bytes()).to_vec())
            .collect(),
        other => panic!("bad script line {line:?}: {other:?}"),
    }
}

fn shape(f: &Frame) -> String {
    match f {
        Frame::Simple(_) => "simple".into(),
        Frame::Error(_) => "error".into(),
        Frame::Integer(_) => "int".into(),
        Frame::Bulk(_) => "bulk".into(),
        Frame::Null => "null".into(),
        Frame::NullArray => "nullarray".into(),
        Frame::Array(items) => format!("[{}]", shapes(items)),
        Frame::Set(items) => format!("~[{}]", shapes(items)),
        Frame::Push(items) => format!(">[{}]", shapes(items)),
        Frame::Map(pairs) => format!("{{{}}}", pair_shapes(pairs)),
        Frame::Attributed(pairs, reply) => format!("|{{{}}}{}", pair_shapes(pairs), shape(reply)),
        Frame::Double(_) => "double".into(),
        Frame::Boolean(_) => "bool".into(),
        Frame::BigNumber(_) => "bignum".into(),
        Frame::Verbatim(format, _) => format!("verbatim:{format}"),
    }
}

fn shapes(items: &[Frame]) -> String {
    items.iter().map(shape).collect::<Vec<_>>().join(",")
}

fn pair_shapes(pairs: &[(Frame, Frame)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", shape(k), shape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn sorted(f: Frame) -> Frame {
    let sort = |items: Vec<Frame>| {
        // Nested arrays too: SCAN's reply is [cursor, [keys in hash order]].
        let mut items: Vec<Frame> = items.into_iter().map(sorted).collect();
        items.sort_by_key(|i| i.to_resp3());
        items
    };
    match f {
        Frame::Array(items) => Frame::Array(sort(items)),
        Frame::Set(items) => Frame::Set(sort(items)),
        Frame::Map(pairs) => {
            let mut pairs: Vec<(Frame, Frame)> = pairs
                .into_iter()
                .map(|(k, v)| (sorted(k), sorted(v)))
                .collect();
            pairs.sort_by_key(|(k, v)| (k.to_resp3(), v.to_resp3()));
            Frame::Map(pairs)
        }
        other => other,
    }
}

/// The reply in `bytes`, after any pushes.
fn parse(mut bytes: &[u8]) -> Frame {
    loop {
        let (f, n) = Frame::parse(bytes).expect("valid RESP").expect("complete");
        if n == bytes.len() {
            return f;
        }
        bytes = &bytes[n..];
    }
}

/// Frames up to the first that is neither a push nor a RESP2 Pub/Sub message, which ends it.
fn read_messages_then_reply(c: &mut common::Raw) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let frame = c.read_reply();
        let message = frame.starts_with(b">")
            || [&b"*3\r\n$7\r\nmessage\r\n"[..], b"*4\r\n$8\r\npmessage\r\n"]
                .iter()
                .any(|m| frame.starts_with(m));
        bytes.extend(frame);
        if !message {
            return bytes;
        }
    }
}

/// Runs one script file against both servers, in RESP2 and then in RESP3; fails with every
/// mismatch.
pub fn run_script(name: &str, text: &str) {
    let mut failures = run_in(name, text, 2);
    failures.extend(run_in(name, text, 3));
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs one script on fresh servers, on connections that said `HELLO protocol` first.
fn run_in(name: &str, text: &str, protocol: u8) -> Vec<String> {
    let debug: &[&str] = if text.lines().any(|l| l.trim() == "!debug") {
        &["--enable-debug-command", "yes"]
    } else {
        &[]
    };
    let compare_aof = protocol == 2
        && !text
            .lines()
            .any(|l| l.trim().starts_with("!no-aof-compare"));
    let aof: &[&str] = if compare_aof {
        &["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        &["--appendonly", "no"]
    };
    let redis = RealRedis::start(&[debug, aof].concat());
    let rudis_aof: &[&str] = if compare_aof {
        &["--aof-multi-part", "yes"]
    } else {
        &[]
    };
    let rudis = Rudis::start(&[aof, &["--save", ""], rudis_aof, debug].concat());
    let hello = ["HELLO".to_string(), protocol.to_string()];
    let connect = || {
        let (mut a, mut b) = (redis.raw(), rudis.raw());
        // The reply holds the client id: only its shape is compared.
        let (want, got) = (parse(&a.cmd(&hello)), parse(&b.cmd(&hello)));
        assert_eq!(shape(&want), shape(&got), "HELLO {protocol}");
        (a, b)
    };
    let mut conns = std::collections::HashMap::new();
    conns.insert(String::new(), connect());
    let name = format!("{name} (RESP{protocol})");
    let mut failures = Vec::new();
    let (redis_aof, rudis_aof) = (
        redis.dir().join("appendonlydir"),
        rudis.dir.join("appendonlydir"),
    );
    let aof_len = |dir: &std::path::Path| propagated(dir).len();
    // The records of lines not compared, by index, for each server.
    let mut skipped: [Vec<std::ops::Range<usize>>; 2] = Default::default();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line == "!debug"
            || line.starts_with("!no-aof-compare")
        {
            continue;
        }
        if let Some(ms) = line.strip_prefix("!sleep ") {
            std::thread::sleep(std::time::Duration::from_millis(
                ms.trim().parse().expect("ms"),
            ));
            continue;
        }
        let (mode, mut cmd) = match line.as_bytes()[0] {
            b'~' => ('~', line[1..].trim()),
            b'%' => ('%', line[1..].trim()),
            b'^' => ('^', line[1..].trim()),
            _ => match line.strip_prefix("!changes ") {
                Some(cmd) => ('c', cmd.trim()),
                None => ('=', line),
            },
        };
        let mut conn = "";
        if let Some(rest) = cmd.strip_prefix('@') {
            let (c, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            (conn, cmd) = (c, rest.trim());
        }
        let mut frames = None;
        if let Some(rest) = cmd.strip_prefix('*') {
            let (n, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            frames = Some(n.parse::<usize>().expect("frame count"));
            cmd = rest.trim();
        }
        let (a, b) = conns.entry(conn.to_string()).or_insert_with(connect);
        let before = (mode == 'c').then(|| (changes(a), changes(b)));
        // Where the AOFs stood before a line whose records are not compared.
        let unlogged_from = (compare_aof && matches!(mode, '~' | '%'))
            .then(|| [aof_len(&redis_aof), aof_len(&rudis_aof)]);
        if !cmd.is_empty() {
            let words = split_words(&cmd.replace("{proto}", &protocol.to_string()));
            a.send(&words);
            b.send(&words);
        }
        let (same, want, got) = if let Some(n) = frames {
            let read = |c: &mut common::Raw| (0..n).map(|_| c.read_reply()).collect::<Vec<_>>();
            let (mut want, mut got) = (read(a), read(b));
            if mode == '%' {
                want.sort();
                got.sort();
            }
            let (want, got) = (want.concat(), got.concat());
            (want == got, want, got)
        } else if mode == '^' {
            let (want, got) = (read_messages_then_reply(a), read_messages_then_reply(b));
            (want == got, want, got)
        } else {
            let mut want = a.read_reply_with_pushes();
            let mut got = b.read_reply_with_pushes();
            if let Some((was_a, was_b)) = before {
                let counted =
                    |c: &mut common::Raw, was: u64| format!(" (+{} changes)", changes(c) - was);
                want.extend(counted(a, was_a).as_bytes());
                got.extend(counted(b, was_b).as_bytes());
            }
            let same = match mode {
                '~' => shape(&parse(&want)) == shape(&parse(&got)),
                '%' => sorted(parse(&want)) == sorted(parse(&got)),
                _ => want == got,
            };
            (same, want, got)
        };
        if let Some([a, b]) = unlogged_from {
            skipped[0].push(a..aof_len(&redis_aof));
            skipped[1].push(b..aof_len(&rudis_aof));
        }
        if !same {
            failures.push(format!(
                "{name}:{}: {cmd}\n  redis: {}\n  rudis: {}",
                no + 1,
                show(&want),
                show(&got)
            ));
        }
    }
    if compare_aof {
        let compared = |dir: &std::path::Path, skip: &[std::ops::Range<usize>]| {
            let all = propagated(dir);
            let kept: Vec<String> = all
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !skip.iter().any(|r| r.contains(i)))
                .map(|(_, c)| c)
                .collect();
            sort_del_runs(kept)
        };
        let (want, got) = (
            compared(&redis_aof, &skipped[0]),
            compared(&rudis_aof, &skipped[1]),
        );
        if let Some(at) = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i)) {
            let around =
                |v: &[String]| v[at.saturating_sub(3)..(at + 3).min(v.len())].join("\n    ");
            failures.push(format!(
                "{name}: the AOFs differ at command {at} of {} (redis) / {} (rudis)\n  redis:\n    {}\n  rudis:\n    {}",
                want.len(),
                got.len(),
                around(&want),
                around(&got)
            ));
        }
    }
    failures
}

/// Each run of consecutive DELs sorted: keys expired in one pass are deleted in hash order.
fn sort_del_runs(mut commands: Vec<String>) -> Vec<String> {
    let is_del = |c: &String| c.starts_with("\"DEL\" ");
    let mut i = 0;
    while i < commands.len() {
        let run = commands[i..].iter().take_while(|c| is_del(c)).count();
        commands[i..i + run].sort();
        i += run.max(1);
    }
    commands
}

/// The commands of the incr files in a multi-part AOF directory, in order, one line each,
/// with times near now written as `<ms>` or `<s>`.
fn propagated(dir: &std::path::Path) -> Vec<String> {
    let mut incrs: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?.to_string();
            let seq = name
                .strip_suffix(".incr.aof")?
                .rsplit('.')
                .next()?
                .parse()
                .ok()?;
            Some((seq, path))
        })
        .collect();
    incrs.sort();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Within 400 days of now: a time a command computed from a relative one.
    let near = |n: i64, scale: i64| (n - now_ms / scale).abs() < 400 * 86_400_000 / scale;
    let word = |w: &[u8]| -> String {
        let text = String::from_utf8_lossy(w).into_owned();
        let (head, tail) = text.split_once('-').unwrap_or((&text, ""));
        match head.parse::<i64>() {
            Ok(n)
                if head.len() == 13
                    && near(n, 1)
                    && (tail.is_empty() || tail.parse::<u64>().is_ok()) =>
            {
                format!(
                    "<ms>{}",
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("-{tail}")
                    }
                )
            }
            Ok(n) if text.len() == 10 && near(n, 1000) => "<s>".into(),
            _ => format!("{text:?}"),
        }
    };
    let mut out = Vec::new();
    for (_, path) in incrs {
        let bytes = std::fs::read(&path).unwrap();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (frame, n) = match Frame::parse(rest) {
                Ok(Some(parsed)) => parsed,
                other => panic!("{}: unreadable AOF at {other:?}", path.display()),
            };
            rest = &rest[n..];
            let Frame::Array(items) = frame else {
                panic!("{}: not a command: {frame:?}", path.display());
            };
            let words: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Frame::Bulk(b) => word(b),
                    other => format!("{other:?}"),
                })
                .collect();
            out.push(words.join(" "));
        }
    }
    out
}

/// INFO's `rdb_changes_since_last_save`.
fn changes(c: &mut common::Raw) -> u64 {
    let info = String::from_utf8(c.cmd(&["INFO", "persistence"])).unwrap();
    let field = info
        .lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .expect("rdb_changes_since_last_save in INFO");
    field.trim().parse().unwrap()
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/diff/", stringify!($name), ".txt");
            let text = std::fs::read_to_string(file).expect("script file");
            run_script(stringify!($name), &text);
        }
    )*};
}

scripts!(
    seed,
    hashes,
    lists,
    sets,
    blocking,
    sort,
    object,
    server,
    strings,
    bitmaps,
    keys,
    expire,
    databases,
    transactions,
    resp3,
    pubsub,
    keyspace_events,
    tracking,
    scripting,
    hll,
    geo,
    zsets,
    maxmemory,
    ops,
    streams,
    acl,
    debug,
    watch_stale,
    lolwut,
    propagation
);

/// A script word holding exactly `b`, whatever its bytes.
fn quoted(b: &[u8]) -> String {
    let hex: String = b.iter().map(|c| format!("\\x{c:02x}")).collect();
    format!("\"{hex}\"")
}

/// Redis's glob matcher against rudis's on random patterns over the bytes that mean something
/// to it, through KEYS.
#[test]
fn generated_glob_patterns() {
    let mut g = Rng::seeded(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"ab[]^-\\*?";
    let mut script = String::from("MSET");
    for _ in 0..80 {
        let k = g.bytes(b"ab[]^-\\*?", 1, 5);
        script.push_str(&format!(" {} v", quoted(&k)));
    }
    script.push('\n');
    for _ in 0..400 {
        let p = g.bytes(alphabet, 1, 7);
        script.push_str(&format!("% KEYS {}\n", quoted(&p)));
    }
    run_script("generated_glob_patterns", &script);
}

/// INCRBYFLOAT on random numbers of every size and spelling: the digits must be Redis's.
#[test]
fn generated_incrbyfloat() {
    let mut g = Rng::seeded(0x2545_f491_4f6c_dd1d);
    let mut script = String::new();
    for _ in 0..400 {
        let sign = if g.below(3) == 0 { "-" } else { "" };
        let digits = g.below(10) as u32;
        let int = g.below(10u64.pow(digits));
        let frac_digits = 1 + g.below(12) as u32;
        let num = match g.below(6) {
            0 => format!("{sign}{int}"),
            1 => format!("{sign}{int}.{}", g.below(10u64.pow(frac_digits))),
            2 => format!(
                "{sign}{}.{}e{}",
                g.below(10),
                g.below(1000),
                g.below(60) as i64 - 30
            ),
            3 => format!(
                "{sign}0.{:0>width$}",
                g.below(1000),
                width = 1 + g.below(20) as usize
            ),
            4 => format!("{sign}{int}e{}", g.below(10)),
            _ => [
                "0.1", "0.2", "0.3", "1e-5", "5e-324", "1e308", "abc", "1.5.5", "0x1p3", ".5",
            ][g.below(10) as usize]
                .to_string(),
        };
        script.push_str(&format!("INCRBYFLOAT f{} {num}\n", g.below(6)));
    }
    run_script("generated_incrbyfloat", &script);
}

/// LCS on random strings over a small alphabet (many ties in the table walk), every form.
#[test]
fn generated_lcs() {
    let mut g = Rng::seeded(0x6a09_e667_f3bc_c908);
    let mut script = String::new();
    for _ in 0..150 {
        let a = g.bytes(b"abc", 0, 12);
        let b = g.bytes(b"abc", 0, 12);
        script.push_str(&format!("MSET a {} b {}\n", quoted(&a), quoted(&b)));
        script.push_str(&format!(
            "LCS a b IDX MINMATCHLEN {} WITHMATCHLEN\n",
            g.below(3)
        ));
        script.push_str("LCS a b\n");
    }
    run_script("generated_lcs", &script);
}

/// BITCOUNT and BITPOS over random strings and ranges, in bytes and in bits.
#[test]
fn generated_bit_ranges() {
    let mut g = Rng::seeded(0xbb67_ae85_84ca_a73b);
    let mut script = String::new();
    for _ in 0..60 {
        let s = g.bytes(b"\x00\x01\x0f\x80\xf0\xfe\xff\x55", 0, 5);
        script.push_str(&format!("SET s {}\n", quoted(&s)));
        for _ in 0..6 {
            let start = g.below(90) as i64 - 45;
            let end = g.below(90) as i64 - 45;
            let unit = ["", " BYTE", " BIT"][g.below(3) as usize];
            let bit = g.below(2);
            script.push_str(&format!("BITCOUNT s {start} {end}{unit}\n"));
            script.push_str(&format!("BITPOS s {bit} {start} {end}{unit}\n"));
            script.push_str(&format!("BITPOS s {bit} {start}\n"));
        }
        script.push_str("BITPOS s 0\nBITPOS s 1\nBITCOUNT s\n");
    }
    run_script("generated_bit_ranges", &script);
}

/// BITFIELD with random widths, offsets, values and overflow modes on one key.
#[test]
fn generated_bitfield() {
    let mut g = Rng::seeded(0x3c6e_f372_fe94_f82b);
    let mut script = String::from("DEL bf\n");
    for _ in 0..300 {
        let mut line = String::from("BITFIELD bf");
        for _ in 0..1 + g.below(3) {
            if g.below(4) == 0 {
                line.push_str(
                    [" OVERFLOW WRAP", " OVERFLOW SAT", " OVERFLOW FAIL"][g.below(3) as usize],
                );
            }
            let signed = g.below(2) == 0;
            let bits = 1 + g.below(if signed { 64 } else { 63 });
            let ty = format!("{}{bits}", if signed { 'i' } else { 'u' });
            let offset = if g.below(3) == 0 {
                format!("#{}", g.below(4))
            } else {
                g.below(80).to_string()
            };
            let value = match g.below(4) {
                0 => (g.below(1 << 16) as i64 - (1 << 15)).to_string(),
                1 => (g.next() as i64).to_string(),
                2 => [
                    "0",
                    "1",
                    "-1",
                    "9223372036854775807",
                    "-9223372036854775808",
                ][g.below(5) as usize]
                    .to_string(),
                _ => (g.below(600) as i64 - 300).to_string(),
            };
            match g.below(3) {
                0 => line.push_str(&format!(" GET {ty} {offset}")),
                1 => line.push_str(&format!(" SET {ty} {offset} {value}")),
                _ => line.push_str(&format!(" INCRBY {ty} {offset} {value}")),
            }
        }
        // The value after each command, so a difference in what was stored shows at once.
        script.push_str(&line);
        script.push_str("\nGET bf\n");
    }
    run_script("generated_bitfield", &script);
}

/// Random commands of the string, key and expiry families with random arguments drawn from
/// the values that matter to them (options, edge numbers, wrong types, repeated keys): every
/// reply, error or not, must be Redis's. Expiry values are either far off or already past, so
/// that both servers see the same outcome whatever their clocks.
#[test]
fn generated_keyspace_commands() {
    let mut g = Rng::seeded(0xa54f_f53a_5f1d_36f1);
    let commands = [
        "SET",
        "GET",
        "GETSET",
        "GETDEL",
        "GETEX",
        "SETNX",
        "SETEX",
        "PSETEX",
        "MGET",
        "MSET",
        "MSETNX",
        "INCR",
        "DECR",
        "INCRBY",
        "DECRBY",
        "INCRBYFLOAT",
        "APPEND",
        "STRLEN",
        "GETRANGE",
        "SETRANGE",
        "SUBSTR",
        "LCS",
        "SETBIT",
        "GETBIT",
        "BITCOUNT",
        "BITPOS",
        "BITOP",
        "EXISTS",
        "TYPE",
        "DEL",
        "UNLINK",
        "TOUCH",
        "RENAME",
        "RENAMENX",
        "COPY",
        "MOVE",
        "EXPIRE",
        "PEXPIRE",
        "EXPIREAT",
        "PEXPIREAT",
        "PERSIST",
        "TTL",
        "SELECT",
    ];
    // No DBSIZE: it counts expired keys not yet removed, and a write rejected for its arguments
    // has already removed the expired keys it names here, not in Redis (see `commands::call`).
    let words = [
        "a",
        "b",
        "c",
        "h",
        "a",
        "b",
        "0",
        "1",
        "-1",
        "2",
        "10",
        "-100",
        "100000",
        "1.5",
        "abc",
        "",
        "9223372036854775807",
        "-9223372036854775808",
        "NX",
        "XX",
        "GT",
        "LT",
        "GET",
        "KEEPTTL",
        "PERSIST",
        "EX",
        "PX",
        "EXAT",
        "PXAT",
        "DB",
        "REPLACE",
        "AND",
        "OR",
        "NOT",
        "BIT",
        "BYTE",
        "IDX",
        "LEN",
        "WITHMATCHLEN",
        "MINMATCHLEN",
        "4102444800",
        "3",
        "15",
        "16",
    ];
    let mut script = String::from("HSET h f v\n");
    for _ in 0..1500 {
        let mut line = commands[g.below(commands.len() as u64) as usize].to_string();
        for _ in 0..g.below(6) {
            line.push(' ');
            line.push_str(&quoted(
                words[g.below(words.len() as u64) as usize].as_bytes(),
            ));
        }
        script.push_str(&line);
        script.push('\n');
    }
    run_script("generated_keyspace_commands", &script);
}

/// Sorted sets under thousands of random writes and reads on a few keys (members enough to pass
/// 128 and become skiplists, scores with many ties, fractions and infinities): every reply,
/// and the whole of each set now and then, must be Redis's.
#[test]
fn generated_zset_ops() {
    let mut g = Rng::seeded(0x510e_527f_ade6_82d1);
    let score = |g: &mut Rng| match g.below(10) {
        0 => format!("{}.{}", g.below(40) as i64 - 20, g.below(1000)),
        1 => ["inf", "-inf", "+inf", "0.1", "-0", "1e300", "5e-324"][g.below(7) as usize].into(),
        2 => format!("({}", g.below(40) as i64 - 20),
        _ => format!("{}", g.below(40) as i64 - 20),
    };
    let bound = |g: &mut Rng| match g.below(8) {
        0 => "-inf".to_string(),
        1 => "+inf".to_string(),
        2 => format!("({}", g.below(40) as i64 - 20),
        _ => format!("{}", g.below(40) as i64 - 20),
    };
    let lex = |g: &mut Rng| match g.below(6) {
        0 => "-".to_string(),
        1 => "+".to_string(),
        2 => format!("(m{}", g.below(300)),
        _ => format!("[m{}", g.below(300)),
    };
    let mut script = String::new();
    for i in 0..4000 {
        let k = format!("z{}", g.below(3));
        let m = format!("m{}", g.below(300));
        let s = score(&mut g).trim_start_matches('(').to_string();
        let line = match g.below(24) {
            0..=5 => {
                let flags = ["", "NX ", "XX ", "GT ", "LT ", "CH ", "XX CH ", "GT CH "];
                let mut pairs = String::new();
                for _ in 0..1 + g.below(4) {
                    let s = score(&mut g).trim_start_matches('(').to_string();
                    pairs.push_str(&format!(" {s} m{}", g.below(300)));
                }
                format!(
                    "ZADD {k} {}{}",
                    flags[g.below(8) as usize],
                    pairs.trim_start()
                )
            }
            6 => format!("ZADD {k} INCR {s} {m}"),
            7 | 8 => format!("ZINCRBY {k} {s} {m}"),
            9 => format!("ZREM {k} {m} m{}", g.below(300)),
            10 => format!("ZSCORE {k} {m}"),
            11 => format!("ZRANK {k} {m}"),
            12 => format!("ZREVRANK {k} {m}"),
            13 => format!("ZCOUNT {k} {} {}", bound(&mut g), bound(&mut g)),
            14 => format!(
                "ZRANGE {k} {} {} WITHSCORES",
                g.below(200) as i64 - 100,
                g.below(200) as i64 - 100
            ),
            15 => format!(
                "ZRANGEBYSCORE {k} {} {} WITHSCORES LIMIT {} {}",
                bound(&mut g),
                bound(&mut g),
                g.below(10),
                g.below(20) as i64 - 2
            ),
            16 => format!("ZREVRANGEBYSCORE {k} {} {}", bound(&mut g), bound(&mut g)),
            17 => format!(
                "ZREMRANGEBYRANK {k} {} {}",
                g.below(100),
                g.below(100) as i64 - 90
            ),
            18 => {
                let a = g.below(40) as i64 - 20;
                format!("ZREMRANGEBYSCORE {k} {a} ({}", a + 1)
            }
            19 => format!(
                "{} {k} {}",
                ["ZPOPMIN", "ZPOPMAX"][g.below(2) as usize],
                g.below(3)
            ),
            20 => format!(
                "{} z{} 2 z0 z{} WEIGHTS {} {} AGGREGATE {}",
                ["ZUNIONSTORE", "ZINTERSTORE"][g.below(2) as usize],
                3 + g.below(2),
                g.below(3),
                g.below(5) as i64 - 2,
                score(&mut g).trim_start_matches('('),
                ["SUM", "MIN", "MAX"][g.below(3) as usize]
            ),
            21 => format!("ZADD lex 0 {m}"),
            22 => format!("ZRANGEBYLEX lex {} {} LIMIT 0 10", lex(&mut g), lex(&mut g)),
            _ => format!("ZMSCORE {k} {m} m{}", g.below(300)),
        };
        script.push_str(&line);
        script.push('\n');
        if i % 200 == 0 {
            for k in ["z0", "z1", "z2", "z3", "z4", "lex"] {
                script.push_str(&format!(
                    "ZRANGE {k} 0 -1 WITHSCORES\nOBJECT ENCODING {k}\n"
                ));
            }
        }
    }
    run_script("generated_zset_ops", &script);
}

/// Random writes to keys of every type (with expiries set and removed, keys moved between
/// databases), then DEBUG DIGEST-VALUE of each key and DEBUG DIGEST of the whole dataset:
/// Redis's digests, so equal ones say rudis holds what redis-server holds.
#[test]
fn generated_digests() {
    let mut g = Rng::seeded(0x6a09_e667_f3bc_c908);
    let mut script = String::from("!debug\n");
    let keys: Vec<String> = (0..24).map(|i| format!("k{i}")).collect();
    let member = |g: &mut Rng| match g.below(3) {
        0 => g.below(40).to_string(),
        1 => format!("m{}", g.below(40)),
        _ => quoted(&g.bytes(b"ab\x00\xffz", 0, 70)),
    };
    let score = |g: &mut Rng| {
        [
            "0", "-0", "1", "-1.5", "0.1", "1e-300", "1e300", "inf", "-inf", "3", "2.25",
        ][g.below(11) as usize]
            .to_string()
    };
    for _ in 0..600 {
        let k = &keys[g.below(keys.len() as u64) as usize];
        let line = match g.below(16) {
            0 => format!("SET {k} {}", member(&mut g)),
            1 => format!("APPEND {k} {}", member(&mut g)),
            2 => format!("RPUSH {k} {} {}", member(&mut g), member(&mut g)),
            3 => format!("LPUSH {k} {}", member(&mut g)),
            4 => format!("LPOP {k}"),
            5 => format!("SADD {k} {} {}", member(&mut g), member(&mut g)),
            6 => format!("SREM {k} {}", member(&mut g)),
            7 => format!("ZADD {k} {} {}", score(&mut g), member(&mut g)),
            8 => format!("ZINCRBY {k} {} {}", score(&mut g), member(&mut g)),
            9 => format!("HSET {k} {} {}", member(&mut g), member(&mut g)),
            10 => format!("HDEL {k} {}", member(&mut g)),
            11 => format!(
                "XADD {k} {}-{} f {}",
                1 + g.below(5),
                g.below(9),
                member(&mut g)
            ),
            12 => format!("EXPIRE {k} {}", 1000 + g.below(100000)),
            13 => format!("PERSIST {k}"),
            14 => format!("MOVE {k} {}", 1 + g.below(3)),
            _ => format!("DEL {k}"),
        };
        // WRONGTYPE and bad IDs are compared too: the same refusals leave the same data.
        script.push_str(&line);
        script.push('\n');
        if g.below(40) == 0 {
            script.push_str("DEBUG DIGEST\n");
        }
    }
    for db in 0..4 {
        script.push_str(&format!(
            "SELECT {db}\nDEBUG DIGEST-VALUE {}\n",
            keys.join(" ")
        ));
    }
    script.push_str("DEBUG DIGEST\n");
    run_script("generated_digests", &script);
}

/// COMMAND GETKEYSANDFLAGS on every COMMAND GETKEYS case of the other scripts, and on a
/// command of each kind of key spec (RO/RW/OW/RM, access/update/insert/delete, keywords,
/// key counts, keys found by parsing), compared with redis-server.
#[test]
fn getkeysandflags() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/diff");
    let mut script = String::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/diff")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("script");
        for line in text.lines().filter(|l| l.contains("COMMAND GETKEYS ")) {
            script.push_str(&line.replace("COMMAND GETKEYS ", "COMMAND GETKEYSANDFLAGS "));
            script.push('\n');
        }
    }
    script.push_str(
        "COMMAND GETKEYSANDFLAGS SET k v
COMMAND GETKEYSANDFLAGS GET k
COMMAND GETKEYSANDFLAGS DEL a b c
COMMAND GETKEYSANDFLAGS GETDEL k
COMMAND GETKEYSANDFLAGS LMOVE a b LEFT RIGHT
COMMAND GETKEYSANDFLAGS RPOPLPUSH a b
COMMAND GETKEYSANDFLAGS MSET a 1 b 2
COMMAND GETKEYSANDFLAGS MGET a b
COMMAND GETKEYSANDFLAGS RENAME a b
COMMAND GETKEYSANDFLAGS COPY a b
COMMAND GETKEYSANDFLAGS SMOVE a b m
COMMAND GETKEYSANDFLAGS SINTERSTORE d a b
COMMAND GETKEYSANDFLAGS ZUNIONSTORE d 2 a b
COMMAND GETKEYSANDFLAGS ZINTERCARD 2 a b
COMMAND GETKEYSANDFLAGS SORT k
COMMAND GETKEYSANDFLAGS SORT k STORE d
COMMAND GETKEYSANDFLAGS SORT_RO k
COMMAND GETKEYSANDFLAGS EVAL \"return 1\" 2 a b x
COMMAND GETKEYSANDFLAGS EVAL_RO \"return 1\" 1 a
COMMAND GETKEYSANDFLAGS FCALL f 1 a x
COMMAND GETKEYSANDFLAGS XREAD COUNT 2 STREAMS a b 0 0
COMMAND GETKEYSANDFLAGS XREADGROUP GROUP g c STREAMS a 0
COMMAND GETKEYSANDFLAGS XADD s * f v
COMMAND GETKEYSANDFLAGS HINCRBY h f 1
COMMAND GETKEYSANDFLAGS APPEND k v
COMMAND GETKEYSANDFLAGS EXPIRE k 10
COMMAND GETKEYSANDFLAGS PFADD h a
COMMAND GETKEYSANDFLAGS SETRANGE k 0 v
COMMAND GETKEYSANDFLAGS BITOP AND d a b
COMMAND GETKEYSANDFLAGS GEOSEARCH k FROMLONLAT 0 0 BYRADIUS 1 km
COMMAND GETKEYSANDFLAGS LPOS l a
COMMAND GETKEYSANDFLAGS OBJECT ENCODING k
COMMAND GETKEYSANDFLAGS MEMORY USAGE k
COMMAND GETKEYSANDFLAGS TOUCH a b
COMMAND GETKEYSANDFLAGS WATCH a b
COMMAND GETKEYSANDFLAGS PING
COMMAND GETKEYSANDFLAGS TIME x
COMMAND GETKEYSANDFLAGS GET
COMMAND GETKEYSANDFLAGS NOSUCH k
COMMAND GETKEYSANDFLAGS ZUNIONSTORE d x a
COMMAND GETKEYSANDFLAGS SET k v GET
COMMAND GETKEYSANDFLAGS SET k v EX 10 get
COMMAND GETKEYSANDFLAGS BITFIELD k GET u8 0
COMMAND GETKEYSANDFLAGS BITFIELD k GET u8 0 OVERFLOW SAT GET i4 4
COMMAND GETKEYSANDFLAGS BITFIELD k SET u8 0 1
COMMAND GETKEYSANDFLAGS BITFIELD k GET u8
COMMAND GETKEYSANDFLAGS BITFIELD_RO k GET u8 0
",
    );
    run_script("getkeysandflags", &script);
}
