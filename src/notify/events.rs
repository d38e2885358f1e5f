//! Keyspace notifications (Redis's notify.c): `notify-keyspace-events` says which classes of
//! events are published, on `__keyspace@<db>__:<key>` (the event as the message, class `K`)
//! and `__keyevent@<db>__:<event>` (the key as the message, class `E`).
//!
//! How a command emits its events: one call per event, after the change, as Redis's
//! `notifyKeyspaceEvent(NOTIFY_LIST, "lpush", key, db)`:
//! ```ignore
//! ctx.notify(class::LIST, "lpush", key);
//! ```
//! (`Ctx::notify`; `Ctx::notify_del_if_emptied` for the `del` a container emptied to nothing
//! adds). A new data type adds its class's events the same way, one line each: sorted sets
//! `ctx.notify(class::ZSET, "zadd", key)`, streams `ctx.notify(class::STREAM, "xadd", key)`.
//! `new` (a key created) and `expired` (lazy and active expiry) are emitted by the keyspace
//! itself, never by handlers. A call costs one atomic load while no class is configured.

use std::sync::atomic::{AtomicU32, Ordering};

use super::pubsub::{Kind, Publisher};
use crate::shared::Shared;

/// Event classes, Redis's bits (server.h's NOTIFY_*).
pub mod class {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    /// Excluded from `A`, as in Redis.
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 13;
    /// Excluded from `A`, as in Redis.
    pub const NEW: u32 = 1 << 14;
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// The letters, in the order Redis writes them back (keyspaceEventsFlagsToString).
const LETTERS: &[(char, u32)] = &[
    ('g', class::GENERIC),
    ('$', class::STRING),
    ('l', class::LIST),
    ('s', class::SET),
    ('h', class::HASH),
    ('z', class::ZSET),
    ('x', class::EXPIRED),
    ('e', class::EVICTED),
    ('t', class::STREAM),
    ('d', class::MODULE),
    ('n', class::NEW),
];

/// The configured classes: process-wide, as the encoding limits (`store::limits`), so that a
/// write pays one relaxed load and no config lock.
static FLAGS: AtomicU32 = AtomicU32::new(0);

pub fn flags() -> u32 {
    FLAGS.load(Ordering::Relaxed)
}

pub fn set_flags(f: u32) {
    FLAGS.store(f, Ordering::Relaxed);
}

/// `notify-keyspace-events` as Redis reads it; its error otherwise.
pub fn parse(s: &str) -> Result<u32, &'static str> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => class::ALL,
            'K' => class::KEYSPACE,
            'E' => class::KEYEVENT,
            'm' => class::KEY_MISS,
            c => LETTERS
                .iter()
                .find(|(l, _)| *l == c)
                .map(|(_, b)| *b)
                .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?,
        };
    }
    Ok(f)
}

/// The classes as CONFIG GET shows them: `A` when it covers them (and then, as in Redis,
/// without `n` even if set), then `K`, `E`, `m`.
pub fn format(f: u32) -> String {
    let mut s = String::new();
    if f & class::ALL == class::ALL {
        s.push('A');
    } else {
        s.extend(LETTERS.iter().filter(|(_, b)| f & b != 0).map(|(c, _)| c));
    }
    for (c, b) in [
        ('K', class::KEYSPACE),
        ('E', class::KEYEVENT),
        ('m', class::KEY_MISS),
    ] {
        if f & b != 0 {
            s.push(c);
        }
    }
    s
}

/// True when events of `class` are published at all.
#[inline]
pub fn enabled(class: u32) -> bool {
    flags() & class != 0
}

/// Publishes `event` on `key` in `db`, if its class is configured. `me`: the client whose
/// command caused it, which gets its own notifications before its reply.
pub fn emit(
    shared: &Shared,
    class: u32,
    event: &str,
    db: usize,
    key: &[u8],
    mut me: Option<Publisher>,
) {
    let f = flags();
    if f & class == 0 || !shared.pubsub.has_listeners() {
        return;
    }
    let limit = shared.config.read().client_output_buffer_limit[2].hard;
    let db = itoa::Buffer::new().format(db).to_owned();
    if f & class::KEYSPACE != 0 {
        let mut chan = Vec::with_capacity(key.len() + 24);
        chan.extend_from_slice(b"__keyspace@");
        chan.extend_from_slice(db.as_bytes());
        chan.extend_from_slice(b"__:");
        chan.extend_from_slice(key);
        let me = me.as_mut().map(|p| Publisher {
            id: p.id,
            out: &mut *p.out,
        });
        shared
            .pubsub
            .publish(Kind::Channel, &chan, event.as_bytes(), limit, me);
    }
    if f & class::KEYEVENT != 0 {
        let chan = format!("__keyevent@{db}__:{event}");
        shared
            .pubsub
            .publish(Kind::Channel, chan.as_bytes(), key, limit, me);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_read_back_as_redis_writes_them() {
        let back = |s: &str| parse(s).map(format);
        assert_eq!(back("KEA").unwrap(), "AKE");
        assert_eq!(back("Ex$").unwrap(), "$xE");
        assert_eq!(back("").unwrap(), "");
        assert_eq!(back("An").unwrap(), "A");
        assert_eq!(back("nmK").unwrap(), "nKm");
        assert_eq!(back("g$lshzxetd").unwrap(), "A");
        assert_eq!(
            back("Kq").unwrap_err(),
            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
        );
        assert_ne!(parse("An").unwrap() & class::NEW, 0);
    }
}
