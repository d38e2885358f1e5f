//! Pub/Sub: who listens to which channel, pattern and shard channel, and the delivery of a
//! message to each of them.
//!
//! A publisher never touches a subscriber's session: it encodes the message once per
//! protocol and appends it to each receiver's outbox (`ClientHandle::deliver`), which wakes
//! whichever worker holds the receiver. Messages of one publisher reach a subscriber in the
//! order published, since each is appended before PUBLISH returns. A receiver whose outbox
//! passes the `pubsub` class's hard limit of `client-output-buffer-limit` is killed right
//! there, as Redis closes it ASAP: nobody else waits for it.
//!
//! The registry is split in shards by channel hash so that publishers to different channels
//! do not meet on one lock; patterns are one list (Redis matches each against every channel
//! published), skipped with one atomic load while there are none.
//!
//! What a client is subscribed to is also kept on its own side (`Subscriptions`, owned by its
//! session), for its confirmations' counts, for UNSUBSCRIBE without arguments and for the
//! clean-up when it disconnects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::clients::ClientHandle;
use crate::resp::ReplyBuf;
use crate::util::glob;

const SHARDS: usize = 16;

type Listeners = Vec<Arc<ClientHandle>>;

/// Plain channels or Redis 7's shard channels: the same mechanism under other names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Shard,
}

impl Kind {
    pub fn subscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    pub fn unsubscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }

    fn message_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"message",
            Kind::Shard => b"smessage",
        }
    }
}

/// One kind's channels, sharded by hash.
#[derive(Default)]
struct Channels {
    shards: [RwLock<HashMap<Box<[u8]>, Listeners>>; SHARDS],
    /// Channels with at least one listener, for INFO.
    count: AtomicUsize,
}

impl Channels {
    fn shard(&self, channel: &[u8]) -> &RwLock<HashMap<Box<[u8]>, Listeners>> {
        &self.shards[(crate::store::hash_key(channel) as usize) % SHARDS]
    }

    fn add(&self, channel: &[u8], h: &Arc<ClientHandle>) {
        let mut m = self.shard(channel).write();
        let list = m.entry(channel.into()).or_default();
        if list.is_empty() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        list.push(h.clone());
    }

    fn remove(&self, channel: &[u8], id: u64) {
        let mut m = self.shard(channel).write();
        if let Some(list) = m.get_mut(channel) {
            list.retain(|c| c.id != id);
            if list.is_empty() {
                m.remove(channel);
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn numsub(&self, channel: &[u8]) -> usize {
        self.shard(channel).read().get(channel).map_or(0, Vec::len)
    }

    fn list(&self, pattern: Option<&[u8]>) -> Vec<Box<[u8]>> {
        let mut out = Vec::new();
        for s in &self.shards {
            out.extend(
                s.read()
                    .keys()
                    .filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false)))
                    .cloned(),
            );
        }
        out
    }
}

/// What one client is subscribed to, kept by its session.
#[derive(Default, Debug)]
pub struct Subscriptions {
    channels: std::collections::HashSet<Box<[u8]>>,
    /// In subscription order, as Redis's list.
    patterns: Vec<Box<[u8]>>,
    shard: std::collections::HashSet<Box<[u8]>>,
}

impl Subscriptions {
    /// Subscribed to anything: Redis's CLIENT_PUBSUB (the RESP2 subscribed mode, the
    /// `pubsub` output class, no idle timeout).
    pub fn active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }

    /// The count a (un)subscribe confirmation carries: channels and patterns, or shard
    /// channels alone.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard.len(),
        }
    }

    fn set(&mut self, kind: Kind) -> &mut std::collections::HashSet<Box<[u8]>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Shard => &mut self.shard,
        }
    }

    /// The channels of `kind`, for an UNSUBSCRIBE without arguments.
    pub fn channels(&self, kind: Kind) -> Vec<Box<[u8]>> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Shard => self.shard.iter().cloned().collect(),
        }
    }

    pub fn patterns(&self) -> Vec<Box<[u8]>> {
        self.patterns.clone()
    }

    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }
}

#[derive(Default)]
pub struct PubSub {
    channels: Channels,
    shard: Channels,
    patterns: RwLock<Vec<(Box<[u8]>, Listeners)>>,
    npatterns: AtomicUsize,
}

/// The client that publishes, when it may be a receiver too: its own messages go straight
/// into its reply buffer, before its command's reply, as in Redis.
pub struct Publisher<'a> {
    pub id: u64,
    pub out: &'a mut ReplyBuf,
}

/// A message being delivered: its bytes in RESP2 and RESP3, and the hard limit receivers'
/// outboxes are held to (0: none).
struct Outgoing {
    resp2: Vec<u8>,
    resp3: Vec<u8>,
    limit: u64,
}

fn encode(parts: &[&[u8]]) -> Outgoing {
    let mut out = ReplyBuf::new();
    out.push(parts.len());
    for p in parts {
        out.bulk(p);
    }
    let resp2 = out.buf;
    let mut resp3 = resp2.clone();
    // A push and an array differ only by their type byte.
    resp3[0] = b'>';
    Outgoing {
        resp2,
        resp3,
        limit: 0,
    }
}

impl Outgoing {
    fn send(&self, to: &ClientHandle, me: &mut Option<Publisher>) {
        let bytes = if to.is_resp3() {
            &self.resp3
        } else {
            &self.resp2
        };
        if let Some(p) = me.as_mut().filter(|p| p.id == to.id) {
            p.out.raw(bytes);
            return;
        }
        if to.is_killed() {
            return;
        }
        let pending = to.deliver(bytes);
        if self.limit > 0 && pending as u64 > self.limit {
            log::warn!(
                "Client id={} addr={} closed for overcoming of output buffer limits ({} bytes \
                 of Pub/Sub messages pending).",
                to.id,
                to.addr,
                pending
            );
            to.kill();
        }
    }
}

impl PubSub {
    fn kind(&self, kind: Kind) -> &Channels {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Shard => &self.shard,
        }
    }

    /// Subscribes the client; false if it already was.
    pub fn subscribe(
        &self,
        subs: &mut Subscriptions,
        h: &Arc<ClientHandle>,
        kind: Kind,
        channel: &[u8],
    ) -> bool {
        if !subs.set(kind).insert(channel.into()) {
            return false;
        }
        self.kind(kind).add(channel, h);
        true
    }

    /// Unsubscribes the client; false if it was not subscribed.
    pub fn unsubscribe(
        &self,
        subs: &mut Subscriptions,
        h: &ClientHandle,
        kind: Kind,
        channel: &[u8],
    ) -> bool {
        if !subs.set(kind).remove(channel) {
            return false;
        }
        self.kind(kind).remove(channel, h.id);
        true
    }

    pub fn psubscribe(&self, subs: &mut Subscriptions, h: &Arc<ClientHandle>, pat: &[u8]) -> bool {
        if subs.patterns.iter().any(|p| &**p == pat) {
            return false;
        }
        subs.patterns.push(pat.into());
        let mut pats = self.patterns.write();
        match pats.iter_mut().find(|(p, _)| &**p == pat) {
            Some((_, list)) => list.push(h.clone()),
            None => {
                pats.push((pat.into(), vec![h.clone()]));
                self.npatterns.store(pats.len(), Ordering::Release);
            }
        }
        true
    }

    pub fn punsubscribe(&self, subs: &mut Subscriptions, h: &ClientHandle, pat: &[u8]) -> bool {
        let Some(i) = subs.patterns.iter().position(|p| &**p == pat) else {
            return false;
        };
        subs.patterns.remove(i);
        let mut pats = self.patterns.write();
        if let Some(i) = pats.iter().position(|(p, _)| &**p == pat) {
            pats[i].1.retain(|c| c.id != h.id);
            if pats[i].1.is_empty() {
                pats.remove(i);
                self.npatterns.store(pats.len(), Ordering::Release);
            }
        }
        true
    }

    /// The subscribers authenticated as `user` listening to a channel or pattern that
    /// `allowed(name, is_pattern)` refuses (an ACL change revoked it), each once.
    pub fn listeners_of(
        &self,
        user: &str,
        allowed: impl Fn(&[u8], bool) -> bool,
    ) -> Vec<Arc<ClientHandle>> {
        let mut out: Vec<Arc<ClientHandle>> = Vec::new();
        let mut take = |name: &[u8], pattern: bool, list: &Listeners| {
            if allowed(name, pattern) {
                return;
            }
            for h in list {
                if !out.iter().any(|o| o.id == h.id) && h.state.lock().user == user {
                    out.push(h.clone());
                }
            }
        };
        for kind in [&self.channels, &self.shard] {
            for shard in &kind.shards {
                for (name, list) in shard.read().iter() {
                    take(name, false, list);
                }
            }
        }
        for (pat, list) in self.patterns.read().iter() {
            take(pat, true, list);
        }
        out
    }

    /// Drops every subscription of a client (disconnect, RESET), without confirmations.
    pub fn unsubscribe_all(&self, subs: &mut Subscriptions, h: &ClientHandle) {
        if !subs.active() {
            return;
        }
        for kind in [Kind::Channel, Kind::Shard] {
            for c in subs.channels(kind) {
                self.unsubscribe(subs, h, kind, &c);
            }
        }
        for p in subs.patterns() {
            self.punsubscribe(subs, h, &p);
        }
    }

    /// Sends `message` to the listeners of `channel` (and, for plain channels, of the
    /// patterns matching it); returns how many received it. `limit`: the receivers' hard
    /// output limit in bytes (0: none).
    pub fn publish(
        &self,
        kind: Kind,
        channel: &[u8],
        message: &[u8],
        limit: u64,
        mut me: Option<Publisher>,
    ) -> usize {
        let mut receivers = 0;
        {
            let m = self.kind(kind).shard(channel).read();
            if let Some(list) = m.get(channel) {
                let mut msg = encode(&[kind.message_word(), channel, message]);
                msg.limit = limit;
                for h in list {
                    msg.send(h, &mut me);
                }
                receivers += list.len();
            }
        }
        if kind == Kind::Shard || self.npatterns.load(Ordering::Acquire) == 0 {
            return receivers;
        }
        let pats = self.patterns.read();
        for (pat, list) in pats.iter() {
            if !glob::matches(pat, channel, false) {
                continue;
            }
            let mut msg = encode(&[b"pmessage", pat, channel, message]);
            msg.limit = limit;
            for h in list {
                msg.send(h, &mut me);
            }
            receivers += list.len();
        }
        receivers
    }

    /// True while some channel or pattern has a listener: keyspace events skip building
    /// messages nobody would read.
    pub fn has_listeners(&self) -> bool {
        self.channels.count.load(Ordering::Relaxed) > 0
            || self.npatterns.load(Ordering::Acquire) > 0
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: the channels with listeners (matching `pattern`).
    pub fn channel_list(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Box<[u8]>> {
        self.kind(kind).list(pattern)
    }

    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        self.kind(kind).numsub(channel)
    }

    /// Patterns with at least one listener (PUBSUB NUMPAT, INFO's `pubsub_patterns`).
    pub fn numpat(&self) -> usize {
        self.npatterns.load(Ordering::Acquire)
    }

    /// Channels with at least one listener (INFO's `pubsub_channels`, `pubsubshard_channels`).
    pub fn channel_count(&self, kind: Kind) -> usize {
        self.kind(kind).count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_follows_subscriptions() {
        let ps = PubSub::default();
        let h = Arc::new(ClientHandle::new(7, None));
        let mut subs = Subscriptions::default();
        assert!(ps.subscribe(&mut subs, &h, Kind::Channel, b"a"));
        assert!(!ps.subscribe(&mut subs, &h, Kind::Channel, b"a"));
        assert!(ps.psubscribe(&mut subs, &h, b"a*"));
        assert_eq!(subs.count(Kind::Channel), 2);
        assert_eq!(ps.numsub(Kind::Channel, b"a"), 1);
        assert_eq!(ps.numpat(), 1);
        let mut out = ReplyBuf::new();
        let n = ps.publish(
            Kind::Channel,
            b"a",
            b"hi",
            0,
            Some(Publisher {
                id: 7,
                out: &mut out,
            }),
        );
        assert_eq!(n, 2);
        assert_eq!(
            out.as_bytes(),
            &b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n*4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$2\r\nhi\r\n"[..]
        );
        ps.unsubscribe_all(&mut subs, &h);
        assert!(!subs.active());
        assert_eq!(ps.numsub(Kind::Channel, b"a"), 0);
        assert_eq!(ps.numpat(), 0);
        assert_eq!(ps.channel_count(Kind::Channel), 0);
    }
}
