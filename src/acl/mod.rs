//! ACL users, as Redis 7.0 defines them (acl.c): each user has flags, SHA-256 password
//! hashes and selectors (the root one and those given in parentheses); a command runs if one
//! selector allows the command, its keys and its channels. The registry bumps a generation on
//! every change, so a connection refreshes its user with one atomic load per command, and the
//! default user with every permission costs a flag test.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

pub mod file;

use crate::commands::spec::{CommandSpec, Keys};
use crate::util::glob;
use crate::util::sha256::sha256_hex;

/// Redis's categories, in its order (ACL CAT and the describing of rules follow it).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Every command and subcommand, numbered: the bit a selector's bitmap has for it.
pub struct CommandIds {
    pub specs: Vec<&'static CommandSpec>,
    /// The parent of each (None for a top-level command).
    pub parent: Vec<Option<usize>>,
    pub categories: Vec<u32>,
    /// Per command: (first argv position of a key spec, needs read, needs write), from Redis's
    /// key specs; a key at position p takes the flags of the last spec starting at or before p.
    pub key_flags: Vec<Vec<(usize, bool, bool)>>,
    /// aHash: a restricted user's every command looks its id up here.
    by_ptr: HashMap<usize, usize, ahash::RandomState>,
}

pub fn ids() -> &'static CommandIds {
    static IDS: OnceLock<CommandIds> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut c = CommandIds {
            specs: Vec::new(),
            parent: Vec::new(),
            categories: Vec::new(),
            key_flags: Vec::new(),
            by_ptr: HashMap::default(),
        };
        for spec in crate::commands::table::all() {
            let top = c.push(spec, None);
            for sub in spec.subcommands {
                c.push(sub, Some(top));
            }
        }
        c
    })
}

impl CommandIds {
    fn push(&mut self, spec: &'static CommandSpec, parent: Option<usize>) -> usize {
        let id = self.specs.len();
        let mut cats = 0u32;
        for name in crate::commands::docs::acl_categories(spec.name) {
            if let Some(i) = CATEGORIES.iter().position(|c| *c == name) {
                cats |= 1 << i;
            }
        }
        self.specs.push(spec);
        self.parent.push(parent);
        self.categories.push(cats);
        self.key_flags
            .push(crate::commands::docs::key_spec_flags(spec.name));
        self.by_ptr.insert(spec as *const CommandSpec as usize, id);
        id
    }

    pub fn id(&self, spec: &CommandSpec) -> Option<usize> {
        self.by_ptr
            .get(&(spec as *const CommandSpec as usize))
            .copied()
    }

    pub fn by_name(&self, name: &str) -> Option<usize> {
        let spec = crate::commands::table::lookup(name.split('|').next()?.as_bytes())?;
        match name.split_once('|') {
            None => self.id(spec),
            Some((_, sub)) => {
                let s = spec.subcommand(&[b"", sub.as_bytes()])?;
                self.id(s)
            }
        }
    }

    /// The number of bits: one per command, and one more that `+@all` alone sets (future
    /// commands, as Redis's reserved bit).
    fn bits(&self) -> usize {
        self.specs.len() + 1
    }
}

const READ: u8 = 1;
const WRITE: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub flags: u8,
    /// The length of the pattern's literal start (before any `*?[\\`): a key that does not
    /// begin with it cannot match, and a pattern that is that start and one `*` matches every
    /// key that does. Most rules are such prefixes (`~app:*`); a user's keys are checked against
    /// each of its patterns on every command.
    literal: usize,
}

impl KeyPattern {
    fn new(pattern: Vec<u8>, flags: u8) -> KeyPattern {
        let literal = glob::literal_prefix(&pattern);
        KeyPattern {
            pattern,
            flags,
            literal,
        }
    }

    fn matches(&self, key: &[u8]) -> bool {
        let (lit, rest) = self.pattern.split_at(self.literal);
        // The first byte alone rejects most patterns without a call to memcmp.
        lit.first().is_none_or(|c| key.first() == Some(c))
            && key.starts_with(lit)
            && match rest {
                b"" => key.len() == lit.len(),
                // As Redis's matcher, `*` needs a byte when the whole key is empty.
                b"*" => !key.is_empty(),
                _ => glob::matches(&self.pattern, key, false),
            }
    }

    fn describe(&self) -> String {
        let p = String::from_utf8_lossy(&self.pattern);
        match self.flags {
            READ => format!("%R~{p}"),
            WRITE => format!("%W~{p}"),
            _ => format!("~{p}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Selector {
    pub allkeys: bool,
    pub allchannels: bool,
    pub allcommands: bool,
    pub commands: Vec<u64>,
    /// Allowed first arguments of otherwise denied commands (`+select|0`).
    pub firstargs: BTreeMap<usize, Vec<String>>,
    pub patterns: Vec<KeyPattern>,
    /// The patterns by the byte their literal start begins with: those of byte b are
    /// `by_first[starts[b]..starts[b + 1]]` (`starts` is empty while there are none), and
    /// `wild` those that begin with a wildcard. A key is compared only with the patterns its
    /// first byte may match: a restricted user's keys are checked on every command.
    starts: Box<[u32]>,
    by_first: Vec<u32>,
    wild: Vec<u32>,
    pub channels: Vec<Vec<u8>>,
}

/// What a denied check names (Redis's ACL_DENIED_*), ordered as Redis picks the error to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Cmd,
    Key,
    Channel,
    Auth,
}

/// `acl-pubsub-default allchannels`: new selectors, and users after `reset`, may use every
/// channel (Redis ORs server.acl_pubsub_default into each selector it creates).
static PUBSUB_DEFAULT_ALL: AtomicBool = AtomicBool::new(false);

/// The ACL settings CONFIG hands here (config.rs marks them `Observed`).
pub fn apply_setting(name: &str, value: &str) {
    if name == "acl-pubsub-default" {
        PUBSUB_DEFAULT_ALL.store(value == "allchannels", Ordering::Relaxed);
    }
}

impl Selector {
    fn new() -> Selector {
        Selector {
            allkeys: false,
            allchannels: PUBSUB_DEFAULT_ALL.load(Ordering::Relaxed),
            allcommands: false,
            commands: vec![0; ids().bits().div_ceil(64)],
            firstargs: BTreeMap::new(),
            patterns: Vec::new(),
            starts: Box::default(),
            by_first: Vec::new(),
            wild: Vec::new(),
            channels: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.commands[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.commands[id / 64] |= 1 << (id % 64);
        } else {
            self.commands[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    fn future(&self) -> bool {
        self.bit(ids().bits() - 1)
    }

    fn change(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.firstargs.remove(&id);
        let ids = ids();
        for (i, p) in ids.parent.iter().enumerate() {
            if *p == Some(id) {
                self.set_bit(i, on);
            }
        }
    }

    fn category(&mut self, cat: &str, on: bool) -> Result<(), RuleError> {
        let i = CATEGORIES
            .iter()
            .position(|c| c.eq_ignore_ascii_case(cat))
            .ok_or(RuleError::Unknown)?;
        let ids = ids();
        for id in 0..ids.specs.len() {
            if ids.categories[id] & (1 << i) != 0 {
                self.change(id, on);
            }
        }
        Ok(())
    }

    pub fn apply(&mut self, op: &str) -> Result<(), RuleError> {
        let b = op.as_bytes();
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.allkeys = true;
                self.patterns.clear();
                self.index_patterns();
            }
            "resetkeys" => {
                self.allkeys = false;
                self.patterns.clear();
                self.index_patterns();
            }
            "allchannels" | "&*" => {
                self.allchannels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.commands.iter_mut().for_each(|w| *w = u64::MAX);
                self.allcommands = true;
                self.firstargs.clear();
            }
            "nocommands" | "-@all" => {
                self.commands.iter_mut().for_each(|w| *w = 0);
                self.allcommands = false;
                self.firstargs.clear();
            }
            _ if b[0] == b'~' || b[0] == b'%' => {
                if self.allkeys {
                    return Err(RuleError::AfterAllKeys);
                }
                let (mut flags, mut offset) = (0u8, 1);
                if b[0] == b'%' {
                    loop {
                        match b.get(offset).map(|c| c.to_ascii_uppercase()) {
                            Some(b'R') if flags & READ == 0 => flags |= READ,
                            Some(b'W') if flags & WRITE == 0 => flags |= WRITE,
                            Some(b'~') => {
                                offset += 1;
                                break;
                            }
                            _ => return Err(RuleError::Syntax),
                        }
                        offset += 1;
                    }
                } else {
                    flags = READ | WRITE;
                }
                let pattern = b[offset..].to_vec();
                if has_spaces(&pattern) {
                    return Err(RuleError::Syntax);
                }
                match self.patterns.iter_mut().find(|p| p.pattern == pattern) {
                    Some(p) => p.flags |= flags,
                    None => {
                        self.patterns.push(KeyPattern::new(pattern, flags));
                        self.index_patterns();
                    }
                }
            }
            _ if b[0] == b'&' => {
                if self.allchannels {
                    return Err(RuleError::AfterAllChannels);
                }
                let pattern = b[1..].to_vec();
                if has_spaces(&pattern) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.contains(&pattern) {
                    self.channels.push(pattern);
                }
            }
            _ if (b[0] == b'+' || b[0] == b'-') && b.get(1) == Some(&b'@') => {
                self.category(&op[2..], b[0] == b'+')?;
            }
            _ if b[0] == b'+' => {
                let name = &lower[1..];
                match name.rsplit_once('|') {
                    None => {
                        let id = ids().by_name(name).ok_or(RuleError::Unknown)?;
                        self.change(id, true);
                    }
                    Some((cmd, sub)) => {
                        let ids = ids();
                        let id = ids.by_name(cmd).ok_or(RuleError::Unknown)?;
                        if ids.parent[id].is_some() {
                            return Err(RuleError::SubcommandFirstArg);
                        }
                        if sub.is_empty() {
                            return Err(RuleError::Syntax);
                        }
                        if !ids.specs[id].subcommands.is_empty() {
                            let sid = ids.by_name(name).ok_or(RuleError::Unknown)?;
                            self.change(sid, true);
                        } else {
                            let list = self.firstargs.entry(id).or_default();
                            if !list.iter().any(|s| s.eq_ignore_ascii_case(sub)) {
                                list.push(op[op.len() - sub.len()..].to_string());
                            }
                        }
                    }
                }
            }
            _ if b[0] == b'-' => {
                let id = ids().by_name(&lower[1..]).ok_or(RuleError::Unknown)?;
                self.change(id, false);
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    /// Redis's ACLSelectorCheckCmd: None if allowed, else what is denied and at which argument.
    fn check(&self, id: usize, spec: &CommandSpec, argv: &[&[u8]]) -> Option<(Denied, usize)> {
        let ids = ids();
        if !self.allcommands && !spec.has(crate::commands::flags::NO_AUTH) && !self.bit(id) {
            let idx = if ids.parent[id].is_some() { 2 } else { 1 };
            let ok = argv.len() > idx
                && self.firstargs.get(&id).is_some_and(|l| {
                    l.iter()
                        .any(|s| s.as_bytes().eq_ignore_ascii_case(argv[idx]))
                });
            if !ok {
                return Some((Denied::Cmd, 0));
            }
        }
        if !self.allkeys {
            if let Some(pos) = first_denied_key(id, spec, argv, |k, r, w| self.key_ok(k, r, w)) {
                return Some((Denied::Key, pos));
            }
        }
        if !self.allchannels {
            if let Some((first, last, pattern)) = channels_of(spec, argv.len()) {
                for (pos, channel) in argv.iter().enumerate().take(last).skip(first) {
                    if !self.channel_ok(channel, pattern) {
                        return Some((Denied::Channel, pos));
                    }
                }
            }
        }
        None
    }

    fn key_ok(&self, key: &[u8], read: bool, write: bool) -> bool {
        if self.allkeys {
            return true;
        }
        let need = ((read as u8) * READ) | ((write as u8) * WRITE);
        let fits = |&i: &u32| {
            let p = &self.patterns[i as usize];
            p.flags & need == need && p.matches(key)
        };
        if let (Some(&b), false) = (key.first(), self.starts.is_empty()) {
            let (from, to) = (self.starts[b as usize], self.starts[b as usize + 1]);
            if self.by_first[from as usize..to as usize].iter().any(fits) {
                return true;
            }
        }
        self.wild.iter().any(fits)
    }

    /// Rebuilds `starts`, `by_first` and `wild` from `patterns`.
    fn index_patterns(&mut self) {
        self.wild.clear();
        self.by_first.clear();
        if self.patterns.is_empty() {
            self.starts = Box::default();
            return;
        }
        let first = |p: &KeyPattern| p.pattern[..p.literal].first().copied();
        let mut starts = vec![0u32; 257];
        for p in &self.patterns {
            if let Some(b) = first(p) {
                starts[b as usize + 1] += 1;
            }
        }
        for b in 0..256 {
            starts[b + 1] += starts[b];
        }
        self.by_first.resize(starts[256] as usize, 0);
        let mut next = starts.clone();
        for (i, p) in self.patterns.iter().enumerate() {
            match first(p) {
                Some(b) => {
                    self.by_first[next[b as usize] as usize] = i as u32;
                    next[b as usize] += 1;
                }
                None => self.wild.push(i as u32),
            }
        }
        self.starts = starts.into_boxed_slice();
    }

    fn channel_ok(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p == channel
                } else {
                    glob::matches(p, channel, false)
                }
            })
    }

    /// Redis's ACLSelectorHasUnrestrictedKeyAccess for reads (SORT's BY and GET).
    fn reads_every_key(&self) -> bool {
        self.allkeys
            || self
                .patterns
                .iter()
                .any(|p| p.flags & READ != 0 && p.pattern == b"*")
    }

    fn count(&self, cat: usize) -> (usize, usize) {
        let ids = ids();
        let (mut on, mut off) = (0, 0);
        for id in 0..ids.specs.len() {
            if ids.categories[id] & (1 << cat) != 0 {
                if self.bit(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// The command rules that rebuild this bitmap, as Redis's ACLDescribeSelectorCommandRules:
    /// `+@all` or `-@all`, the categories that fit best, then single commands.
    pub fn describe_commands(&self) -> String {
        let additive = !self.future();
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        let mut fake = Selector::new();
        let _ = fake.apply(if additive { "-@all" } else { "+@all" });
        let mut temp = self.clone();
        let mut applied = [false; 32];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, _) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (on, off) = temp.count(j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            let _ = fake.category(CATEGORIES[j], additive);
            let _ = temp.category(CATEGORIES[j], !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        let ids = ids();
        for id in 0..ids.specs.len() {
            let (mine, theirs) = (self.bit(id), fake.bit(id));
            if mine != theirs {
                rules.push(if mine { '+' } else { '-' });
                rules.push_str(ids.specs[id].name);
                rules.push(' ');
                fake.change(id, mine);
            }
            if !mine {
                for a in self.firstargs.get(&id).into_iter().flatten() {
                    rules.push_str(&format!("+{}|{} ", ids.specs[id].name, a));
                }
            }
        }
        rules.pop();
        rules
    }

    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let v: Vec<String> = self.patterns.iter().map(|p| p.describe()).collect();
        v.join(" ")
    }

    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let v: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        v.join(" ")
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        if self.allkeys {
            s.push_str("~* ");
        } else {
            for p in &self.patterns {
                s.push_str(&p.describe());
                s.push(' ');
            }
        }
        if self.allchannels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push_str(&format!("&{} ", String::from_utf8_lossy(c)));
            }
        }
        s.push_str(&self.describe_commands());
        s
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

/// The first key `argv` names that `ok` refuses, given the access it needs (read, write):
/// walked, not collected, as this runs for every command of a restricted user.
fn first_denied_key(
    id: usize,
    spec: &CommandSpec,
    argv: &[&[u8]],
    mut ok: impl FnMut(&[u8], bool, bool) -> bool,
) -> Option<usize> {
    let flags = &ids().key_flags[id];
    let of = |pos: usize| {
        flags
            .iter()
            .rev()
            .find(|f| f.0 <= pos)
            .or(flags.first())
            .map_or((true, true), |f| (f.1, f.2))
    };
    let variable = spec.variable_key_flags(argv).map(|f| (f.read, f.write));
    for p in spec.key_positions(argv) {
        let (r, w) = variable.unwrap_or_else(|| of(p));
        if !ok(argv[p], r, w) {
            return Some(p);
        }
    }
    if let Keys::Parsed { more_key, .. } = spec.keys {
        if let Some(p) = more_key(argv) {
            if !ok(argv[p], false, true) {
                return Some(p);
            }
        }
    }
    None
}

/// The channels a Pub/Sub command names: argv[first..last], and whether they are patterns
/// (Redis's commands_with_channels; the unsubscribe family is never checked).
fn channels_of(spec: &CommandSpec, argc: usize) -> Option<(usize, usize, bool)> {
    match spec.name {
        "subscribe" | "ssubscribe" => Some((1, argc, false)),
        "psubscribe" => Some((1, argc, true)),
        "publish" | "spublish" => Some((1, 2.min(argc), false)),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    Unknown,
    Syntax,
    AfterAllKeys,
    AfterAllChannels,
    NoSuchPassword,
    BadHash,
    SubcommandFirstArg,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::AfterAllKeys => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                 does not have any effect. Try 'resetkeys' to start with an empty list of \
                 patterns"
            }
            RuleError::AfterAllChannels => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid \
                 and does not have any effect. Try 'resetchannels' to start with an empty list \
                 of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase \
                 hexadecimal characters"
            }
            RuleError::SubcommandFirstArg => "Allowing first-arg of a subcommand is not supported",
        })
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (1) or `skip-sanitize-payload` (2) was given (0: neither), which
    /// Redis shows among the flags; rudis checks every RESTORE payload either way.
    pub payload: u8,
    /// SHA-256 hex digests; the cleartext is never kept.
    pub passwords: Vec<String>,
    /// The root selector first.
    pub selectors: Vec<Selector>,
    /// One selector with every command, key and channel: the check is skipped.
    pub unrestricted: bool,
}

impl User {
    pub fn new(name: &str) -> User {
        let root = Selector::new();
        User {
            name: name.into(),
            enabled: false,
            nopass: false,
            payload: 0,
            passwords: Vec::new(),
            selectors: vec![root],
            unrestricted: false,
        }
    }

    fn default_user() -> User {
        let mut u = User::new("default");
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op);
        }
        u.seal();
        u
    }

    fn seal(&mut self) {
        let r = &self.selectors[0];
        self.unrestricted =
            self.selectors.len() == 1 && r.allcommands && r.allkeys && r.allchannels;
    }

    pub fn apply(&mut self, op: &str) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let b = op.as_bytes();
        match op.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.payload = 2,
            "sanitize-payload" => self.payload = 1,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.truncate(1),
            "reset" => {
                for op in [
                    "resetpass",
                    "resetkeys",
                    "resetchannels",
                    "off",
                    "sanitize-payload",
                    "clearselectors",
                    "-@all",
                ] {
                    self.apply(op)?;
                }
                if PUBSUB_DEFAULT_ALL.load(Ordering::Relaxed) {
                    self.apply("allchannels")?;
                }
            }
            _ if b[0] == b'>' || b[0] == b'#' => {
                let hash = if b[0] == b'>' {
                    sha256_hex(&b[1..])
                } else {
                    valid_hash(&op[1..])?
                };
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
            }
            _ if b[0] == b'<' || b[0] == b'!' => {
                let hash = if b[0] == b'<' {
                    sha256_hex(&b[1..])
                } else {
                    valid_hash(&op[1..])?
                };
                let at = self
                    .passwords
                    .iter()
                    .position(|p| *p == hash)
                    .ok_or(RuleError::NoSuchPassword)?;
                self.passwords.remove(at);
            }
            _ if b[0] == b'(' && b[b.len() - 1] == b')' => {
                let mut s = Selector::new();
                for part in op[1..op.len() - 1].split_ascii_whitespace() {
                    s.apply(part)?;
                }
                self.selectors.push(s);
            }
            _ => self.selectors[0].apply(op)?,
        }
        Ok(())
    }

    /// ACL LIST's and the ACL file's description, without `user <name> `.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        s.push_str(if self.enabled { "on " } else { "off " });
        for f in self.flags().into_iter().skip(1) {
            s.push_str(f);
            s.push(' ');
        }
        for p in &self.passwords {
            s.push('#');
            s.push_str(p);
            s.push(' ');
        }
        for (i, sel) in self.selectors.iter().enumerate() {
            if i == 0 {
                s.push_str(&sel.describe());
            } else {
                s.push_str(&format!(" ({})", sel.describe()));
            }
        }
        s
    }

    /// The flags, in Redis's order (ACL GETUSER).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.payload {
            2 => f.push("skip-sanitize-payload"),
            1 => f.push("sanitize-payload"),
            _ => {}
        }
        f
    }

    fn password_ok(&self, given: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = sha256_hex(given);
        // Every hash is compared, whole, so the time says nothing of which one matched.
        self.passwords
            .iter()
            .fold(false, |ok, p| ok | constant_eq(p.as_bytes(), h.as_bytes()))
    }

    /// The channels a subscriber may stay subscribed to (`pattern`: a PSUBSCRIBE pattern,
    /// which must be allowed as written): one selector allowing it is enough, as Redis checks
    /// against every selector's channels at once (ACLKillPubsubClientsIfNeeded).
    pub fn may_listen(&self, channel: &[u8], pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.channel_ok(channel, pattern))
    }

    /// Redis's ACLCheckAllUserCommandPerm.
    pub fn check(&self, spec: &CommandSpec, argv: &[&[u8]]) -> Result<(), (Denied, usize)> {
        let Some(id) = ids().id(spec) else {
            return Ok(());
        };
        let mut worst = (Denied::Cmd, 0);
        for s in &self.selectors {
            match s.check(id, spec, argv) {
                None => return Ok(()),
                Some(d) => {
                    if d.0 > worst.0 || (d.0 == worst.0 && d.1 > worst.1) {
                        worst = d;
                    }
                }
            }
        }
        Err(worst)
    }

    /// True if a selector that allows `spec` reads every key (SORT BY/GET patterns).
    pub fn reads_every_key(&self, spec: &CommandSpec, argv: &[&[u8]]) -> bool {
        let Some(id) = ids().id(spec) else {
            return true;
        };
        self.unrestricted
            || self
                .selectors
                .iter()
                .any(|s| s.check(id, spec, argv).is_none() && s.reads_every_key())
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn valid_hash(h: &str) -> Result<String, RuleError> {
    if h.len() == 64
        && h.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        Ok(h.to_string())
    } else {
        Err(RuleError::BadHash)
    }
}

/// Joins a selector given over several arguments (`(~a` `+get)`) into one, as Redis's
/// ACLMergeSelectorArguments; Err names the unmatched opening.
pub fn merge_selectors(args: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for a in args {
        if let Some(s) = open.as_mut() {
            s.push(' ');
            s.push_str(a);
            if a.ends_with(')') {
                out.push(open.take().unwrap_or_default());
            }
            continue;
        }
        if a.starts_with('(') && !a.ends_with(')') {
            open = Some(a.clone());
            continue;
        }
        out.push(a.clone());
    }
    match open {
        Some(s) => Err(s.split(' ').next().unwrap_or("").to_string()),
        None => Ok(out),
    }
}

/// One ACL LOG entry.
pub struct LogEntry {
    pub count: u64,
    pub reason: Denied,
    /// toplevel, multi, lua.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub ctime_ms: u64,
    pub client_info: String,
}

/// The users and the ACL log.
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    generation: AtomicU64,
    pub log: Mutex<VecDeque<LogEntry>>,
}

impl Default for Acl {
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user()));
        Acl {
            users: RwLock::new(users),
            generation: AtomicU64::new(1),
            log: Mutex::new(VecDeque::new()),
        }
    }
}

impl Acl {
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.get("default")
            .unwrap_or_else(|| Arc::new(User::default_user()))
    }

    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// ACL SETUSER: every rule applies, or none does.
    pub fn set_user(&self, name: &str, rules: &[String]) -> Result<(), String> {
        let merged = merge_selectors(rules)
            .map_err(|at| format!("Unmatched parenthesis in acl selector starting at '{at}'."))?;
        let mut users = self.users.write();
        let mut u = users
            .get(name)
            .map(|u| (**u).clone())
            .unwrap_or_else(|| User::new(name));
        for op in &merged {
            u.apply(op)
                .map_err(|e| format!("Error in ACL SETUSER modifier '{op}': {e}"))?;
        }
        u.seal();
        users.insert(name.to_string(), Arc::new(u));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Puts `u` in place of the user of its name (redis.conf's `user` lines).
    fn replace_user(&self, mut u: User) {
        u.seal();
        self.users.write().insert(u.name.clone(), Arc::new(u));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// ACL LOAD's new set of users, in place of every old one.
    fn replace_all(&self, users: BTreeMap<String, Arc<User>>) {
        *self.users.write() = users;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes the users; how many there were.
    pub fn delete(&self, names: &[String]) -> usize {
        let mut users = self.users.write();
        let n = names.iter().filter(|n| users.remove(*n).is_some()).count();
        self.generation.fetch_add(1, Ordering::AcqRel);
        n
    }

    /// `requirepass`: the default user's only password, or nopass when empty.
    pub fn set_default_password(&self, password: &str) {
        let rule = if password.is_empty() {
            "nopass".to_string()
        } else {
            format!(">{password}")
        };
        let _ = self.set_user("default", &["resetpass".into(), rule]);
    }

    /// AUTH's check: the user, if the name and password match an enabled user.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        let u = self.get(std::str::from_utf8(name).ok()?)?;
        (u.enabled && u.password_ok(password)).then_some(u)
    }

    /// New connections are authenticated at once when the default user needs no password.
    pub fn requires_auth(&self) -> bool {
        let d = self.default_user();
        !(d.nopass && d.enabled)
    }

    /// Records a denial, folded into a like entry of the last minute; the log keeps the newest
    /// `max_len` (`acllog-max-len`, which Redis applies at the next entry too).
    pub fn log_denial(&self, mut e: LogEntry, max_len: usize) {
        let mut log = self.log.lock();
        if let Some(i) = log.iter().take(10).position(|o| {
            o.reason == e.reason
                && o.context == e.context
                && o.object == e.object
                && o.username == e.username
                && e.ctime_ms.abs_diff(o.ctime_ms) <= 60_000
        }) {
            let mut o = log.remove(i).expect("found");
            o.count += 1;
            o.ctime_ms = e.ctime_ms;
            o.client_info = std::mem::take(&mut e.client_info);
            log.push_front(o);
        } else {
            log.push_front(e);
        }
        log.truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literal-start shortcut answers as the glob matcher would, for every pattern shape.
    #[test]
    fn key_patterns_match_as_the_glob_matcher() {
        let patterns = [
            "", "*", "**", "a", "a*", "a**", "ab*", "ab*c", "a?", "a[bc]*", "a\\*", "*a", "key:*",
            "key:", "k?y:*", "[k]ey:*", "key:*:x",
        ];
        let keys = [
            "", "a", "ab", "abc", "abd", "a*", "ac", "key:", "key:1", "key:1:x", "kay:1", "b",
        ];
        for p in patterns {
            let kp = KeyPattern::new(p.as_bytes().to_vec(), READ | WRITE);
            for k in keys {
                assert_eq!(
                    kp.matches(k.as_bytes()),
                    glob::matches(p.as_bytes(), k.as_bytes(), false),
                    "pattern {p:?} key {k:?}"
                );
            }
        }
    }

    /// A selector's key check, which looks only at the patterns a key's first byte may
    /// match, answers as a scan of every pattern with the glob matcher, for every subset.
    #[test]
    fn selectors_check_keys_as_every_pattern_would() {
        let patterns = [
            "*", "a*", "ab*c", "a?", "[k]ey:*", "key:*", "?ey:*", "", "b",
        ];
        let keys = ["", "a", "ab", "abc", "key:1", "kay:1", "b", "zzz"];
        for mask in 0u32..(1 << patterns.len()) {
            let mut s = Selector::new();
            let chosen: Vec<&str> = (0..patterns.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| patterns[i])
                .collect();
            for p in &chosen {
                s.apply(&format!("%R~{p}")).unwrap();
            }
            for k in keys {
                let want = chosen
                    .iter()
                    .any(|p| glob::matches(p.as_bytes(), k.as_bytes(), false));
                assert_eq!(
                    s.key_ok(k.as_bytes(), true, false),
                    want,
                    "{chosen:?} {k:?}"
                );
                assert!(s.allkeys || !s.key_ok(k.as_bytes(), false, true) || want);
            }
        }
    }

    #[test]
    fn rules_describe_as_redis_does() {
        let mut u = User::new("u");
        for op in ["on", ">pw", "~app:*", "%R~ro:*", "&chan", "-@all", "+get"] {
            u.apply(op).unwrap();
        }
        u.seal();
        assert_eq!(
            u.describe(),
            "on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 \
             ~app:* %R~ro:* resetchannels &chan -@all +get"
        );
        assert!(!u.unrestricted);
        assert!(User::default_user().unrestricted);
        assert_eq!(u.apply("~a b"), Err(RuleError::Syntax));
        assert_eq!(u.apply("+nosuch"), Err(RuleError::Unknown));
        assert_eq!(u.apply("<nope"), Err(RuleError::NoSuchPassword));
        assert!(u.password_ok(b"pw") && !u.password_ok(b"pW"));
    }
}
