//! The notification hub's parts beside WATCH and the blocking registry: Pub/Sub channels
//! (`pubsub`), keyspace events (`events`, published on Pub/Sub channels) and client-side
//! caching's invalidations (`tracking`, sent as pushes or on a Pub/Sub channel). All of them
//! reach other clients through their handles' outboxes, never their sessions.

pub mod events;
pub mod pubsub;
pub mod tracking;

use crate::shared::Shared;

/// A key expiry removed (lazily, or the sweeper): its `expired` event, and its tracking
/// clients' invalidation, as Redis's deleteExpiredKeyAndPropagate. (WATCH is not flagged:
/// EXEC tells an expiry from the state it saw at WATCH.)
pub fn key_expired(shared: &Shared, db: usize, key: &[u8]) {
    if events::enabled(events::class::EXPIRED) {
        events::emit(shared, events::class::EXPIRED, "expired", db, key, None);
    }
    shared.tracking.invalidate(shared, key, 0);
    // Active expiry runs outside any command, whose end would broadcast: BCAST clients hear
    // of an expired key now (Redis sends them in the same event-loop turn).
    shared.tracking.broadcast(shared);
}

/// Hash fields removed past their deadline (`n` of them; the key with them when `emptied`),
/// wherever that happened (a read, a write, active expiry): INFO's expired_subkeys, WATCH's
/// flag, the tracking clients' invalidation, `hexpired` (and `del`), as Redis 7.4 signals the
/// key modified. The caller logs the HDELs.
pub fn fields_expired(shared: &Shared, db: usize, key: &[u8], n: u64, emptied: bool) {
    shared.stats.expired_subkeys(n);
    shared.watches.touch(db, key);
    shared.tracking.invalidate(shared, key, 0);
    events::emit(shared, events::class::HASH, "hexpired", db, key, None);
    if emptied {
        events::emit(shared, events::class::GENERIC, "del", db, key, None);
    }
}

/// A key eviction removed to stay under `maxmemory`: its `evicted` event, WATCH's flag and
/// its tracking clients' invalidation, as Redis's performEvictions (a modified key).
pub fn key_evicted(shared: &Shared, db: usize, key: &[u8]) {
    if events::enabled(events::class::EVICTED) {
        events::emit(shared, events::class::EVICTED, "evicted", db, key, None);
    }
    shared.watches.touch(db, key);
    shared.tracking.invalidate(shared, key, 0);
}
