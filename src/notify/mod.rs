//! The notification hub's parts beside WATCH and the blocking registry: Pub/Sub channels
//! (`pubsub`), keyspace events (`events`, published on Pub/Sub channels) and client-side
//! caching's invalidations (`tracking`, sent as pushes or on a Pub/Sub channel). All of them
//! reach other clients through their handles' outboxes, never their sessions.

pub mod events;
pub mod pubsub;
pub mod tracking;
