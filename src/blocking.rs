//! Blocked clients and the keys they wait on (Redis's blocked.c): the one wake-up path of every
//! blocking command (the list family, BZPOPMIN and its kind, XREAD and XREADGROUP).
//!
//! A client blocks by registering here, under the locks of the keys it found empty, what it
//! waits for: its keys, its deadline, and a [`Serve`] function (its command re-run in its
//! non-blocking form, as Redis 7.2 does). Its worker then moves on: the session runs nothing
//! more of the client's until it is unblocked (see `connection`).
//!
//! The keyspace [`signal`](Blocking::signal)s a key that may now serve a waiter (a list created
//! by a push, a move, RENAME, COPY, MOVE, SWAPDB), under the writer's locks: registration and
//! signal are thus ordered by those locks, and no wake-up is lost. After every command, once
//! its locks are released, the dispatcher [`drain`](Blocking::drain)s the ready keys: for each,
//! the waiters in the order they blocked are served one by one, each `Serve` taking its own
//! locks, so each served pop is atomic and reaches the AOF as the pop it is. A waiter that finds
//! the key empty again (someone else got there first) stays blocked, in its place.
//! Replies go out through the client's handle (its outbox and waker), once their AOF records are
//! written (and, under `appendfsync always`, on disk), as any reply.
//!
//! A timer thread answers the waiters whose deadline passes; CLIENT UNBLOCK and a disconnect
//! end a wait too. A waiter being served is not ended under its server: the end is recorded
//! and applied if the serve finds nothing.
//!
//! The blocked command counted as a call when it blocked; an error it is answered with once
//! woken (served, or ended by CLIENT UNBLOCK ... ERROR) counts here, for every blocking
//! command alike: in INFO errorstats and the error total, and as a failed call of the command
//! (Redis's updateStatsOnUnblock).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::aof::AofWait;
use crate::clients::ClientHandle;
use crate::commands::spec::CommandSpec;
use crate::shared::Shared;
use crate::store::Value;

/// What serving a waiter on a ready key gave.
pub enum Served {
    /// The reply to send (the waiter is unblocked), and the AOF write it must wait for.
    Reply(Vec<u8>, Option<AofWait>),
    /// Nothing to take from the key: the waiter keeps waiting.
    NotYet,
    /// Nothing for this waiter, but those after it may be served: stream readers wait for
    /// entries past IDs of their own, and groups of their own.
    Pass,
}

/// A waiter's command, re-run against one of its keys, which has been signalled.
pub type Serve = Box<dyn FnMut(&Shared, &[u8]) -> Served + Send>;

/// How a wait ends without being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The deadline passed, or CLIENT UNBLOCK ... TIMEOUT: the timeout reply.
    Timeout,
    /// CLIENT UNBLOCK ... ERROR.
    Error,
    /// The client disconnected: nothing to send.
    Gone,
    /// This master became a replica: the error, then the connection is closed (Redis's
    /// disconnectAllBlockedClients), since what the client waited for may now come from
    /// the new master's stream, which a pop must not take from.
    Demoted,
}

const UNBLOCKED_ERROR: &[u8] = b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n";
const DEMOTED_ERROR: &[u8] = b"-UNBLOCKED force unblock from blocking operation, \
    instance state changed (master -> replica?)\r\n";

/// What a waiter is answered when its time is up.
pub enum TimeoutReply {
    /// Known when it blocked (a null for the pops).
    Fixed(Vec<u8>),
    /// Made then: WAIT answers with the replicas that acknowledged by that time.
    Computed(Box<dyn FnOnce() -> Vec<u8> + Send>),
}

impl From<Vec<u8>> for TimeoutReply {
    fn from(r: Vec<u8>) -> Self {
        TimeoutReply::Fixed(r)
    }
}

/// One blocked client.
struct Waiter {
    handle: Arc<ClientHandle>,
    /// The blocked command, whose failed calls an error reply counts in.
    command: Option<&'static CommandSpec>,
    db: usize,
    keys: Vec<Vec<u8>>,
    deadline: Option<Instant>,
    /// The reply when the wait times out, in the client's protocol.
    timeout_reply: TimeoutReply,
    /// None while a drain is serving it.
    serve: Option<Serve>,
    /// An end that came while it was being served.
    ended: Option<End>,
}

/// The waiters on one key, in the order they blocked.
#[derive(Default)]
struct Queue {
    fifo: VecDeque<u64>,
    /// A drain is serving this key's waiters: another drain leaves it to that one.
    busy: bool,
    /// Signalled again while busy: the busy drain tries once more before it stops.
    again: bool,
}

#[derive(Default)]
struct State {
    keys: HashMap<(usize, Vec<u8>), Queue>,
    waiters: HashMap<u64, Waiter>,
    /// Signalled keys with waiters, not yet drained, in the order they were signalled (the
    /// order Redis serves them in).
    ready: VecDeque<(usize, Vec<u8>)>,
    deadlines: BTreeSet<(Instant, u64)>,
}

impl State {
    /// Takes a waiter out of every queue it is in.
    fn remove(&mut self, id: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        for key in &w.keys {
            let k = (w.db, key.clone());
            if let Some(q) = self.keys.get_mut(&k) {
                q.fifo.retain(|&i| i != id);
                if q.fifo.is_empty() && !q.busy {
                    self.keys.remove(&k);
                }
            }
        }
        if let Some(d) = w.deadline {
            self.deadlines.remove(&(d, id));
        }
        Some(w)
    }

    /// Ends a wait now, or once its serve is over; returns what to send now.
    fn end(&mut self, id: u64, how: End) -> Option<Unblocked> {
        let w = self.waiters.get_mut(&id)?;
        if w.serve.is_none() {
            w.ended.get_or_insert(how);
            return None;
        }
        let w = self.remove(id)?;
        let reply = match how {
            End::Timeout => match w.timeout_reply {
                TimeoutReply::Fixed(r) => r,
                TimeoutReply::Computed(f) => f(),
            },
            End::Error => UNBLOCKED_ERROR.to_vec(),
            End::Demoted => DEMOTED_ERROR.to_vec(),
            End::Gone => Vec::new(),
        };
        if how == End::Demoted {
            w.handle.close_after_outbox();
        }
        Some(Unblocked {
            handle: w.handle,
            command: w.command,
            reply,
            // As Redis, CLIENT UNBLOCK ... ERROR logs the command as served; a timeout not.
            served_us: matches!(how, End::Error).then_some(0),
            after: Vec::new(),
        })
    }
}

/// A client whose wait is over, and what it is sent.
struct Unblocked {
    handle: Arc<ClientHandle>,
    command: Option<&'static CommandSpec>,
    reply: Vec<u8>,
    /// How long serving it took, when it was served (not ended by a timeout or UNBLOCK).
    served_us: Option<u64>,
    /// Pushes that follow the reply (the invalidations its serving caused).
    after: Vec<u8>,
}

impl Unblocked {
    /// Sends the reply (counting it if an error) and lets the client's session run again.
    fn release(self, shared: Option<&Shared>) {
        if let (Some(shared), Some(us), Some(c)) = (shared, self.served_us, self.command) {
            shared.ops.unblocked(&self.handle, c, us);
        }
        if let (Some(shared), Some(msg)) = (shared, error_text(&self.reply)) {
            shared.stats.error_reply(&msg);
            if let Some(c) = self.command {
                crate::ops::cmdstats::record_failed(c);
            }
        }
        if self.after.is_empty() {
            self.handle.unblock_with(&self.reply);
        } else {
            let mut reply = self.reply;
            reply.extend_from_slice(&self.after);
            self.handle.unblock_with(&reply);
        }
    }
}

/// The text of an error reply (`-CODE message\r\n`), None for any other reply.
fn error_text(reply: &[u8]) -> Option<String> {
    let body = reply.strip_prefix(b"-")?;
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    Some(String::from_utf8_lossy(body).into_owned())
}

struct Inner {
    /// Clients blocked (INFO's `blocked_clients`); 0 makes `signal` one atomic load.
    count: AtomicUsize,
    has_ready: AtomicBool,
    state: Mutex<State>,
    /// Wakes the timer thread: a nearer deadline, or the first one.
    timer: Condvar,
}

pub struct Blocking {
    inner: Arc<Inner>,
    timer_started: Once,
}

impl Default for Blocking {
    fn default() -> Self {
        Blocking {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(0),
                has_ready: AtomicBool::new(false),
                state: Mutex::new(State::default()),
                timer: Condvar::new(),
            }),
            timer_started: Once::new(),
        }
    }
}

impl Blocking {
    /// How many clients are blocked.
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::SeqCst)
    }

    /// Blocks the client of `handle`, which ran `command`, on `keys` of `db`, until
    /// `deadline` (None: for ever). Call under the keys' locks, having found nothing to serve.
    #[allow(clippy::too_many_arguments)]
    pub fn block(
        &self,
        handle: &Arc<ClientHandle>,
        command: Option<&'static CommandSpec>,
        db: usize,
        keys: Vec<Vec<u8>>,
        deadline: Option<Instant>,
        timeout_reply: impl Into<TimeoutReply>,
        serve: Serve,
    ) {
        let timeout_reply = timeout_reply.into();
        let id = handle.id;
        handle.set_blocked(true);
        let mut st = self.inner.state.lock();
        for key in &keys {
            let q = st.keys.entry((db, key.clone())).or_default();
            if !q.fifo.contains(&id) {
                q.fifo.push_back(id);
            }
        }
        if let Some(d) = deadline {
            let first = st.deadlines.first().is_none_or(|&(f, _)| d < f);
            st.deadlines.insert((d, id));
            if first {
                self.inner.timer.notify_one();
            }
        }
        st.waiters.insert(
            id,
            Waiter {
                handle: handle.clone(),
                command,
                db,
                keys,
                deadline,
                timeout_reply,
                serve: Some(serve),
                ended: None,
            },
        );
        self.inner.count.fetch_add(1, Ordering::SeqCst);
        drop(st);
        if deadline.is_some() {
            self.start_timer();
        }
    }

    /// `key` of `db` may serve its waiters now. Called by writers under their locks; one
    /// atomic load when nobody is blocked.
    #[inline]
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.inner.count.load(Ordering::SeqCst) != 0 {
            self.signal_waited(db, key);
        }
    }

    #[cold]
    fn signal_waited(&self, db: usize, key: &[u8]) {
        let mut st = self.inner.state.lock();
        let k = (db, key.to_vec());
        if st.keys.contains_key(&k) && !st.ready.contains(&k) {
            st.ready.push_back(k);
            self.inner.has_ready.store(true, Ordering::SeqCst);
        }
    }

    /// `old` left `key` of `db` (deleted, expired, overwritten, swapped away): a stream's
    /// XREADGROUP waiters look again and learn it went (Redis signals a stream removed, and
    /// only a stream: nothing else has waiters that its removal concerns).
    #[inline]
    pub fn value_left(&self, db: usize, key: &[u8], old: &Value) {
        if let Value::Stream(_) = old {
            self.signal(db, key);
        }
    }

    /// Signals every waited key of `db` that `holds` says can serve (SWAPDB).
    pub fn signal_db(&self, db: usize, holds: impl Fn(&[u8]) -> bool) {
        if self.count() == 0 {
            return;
        }
        let mut st = self.inner.state.lock();
        let keys: Vec<_> = st
            .keys
            .keys()
            .filter(|(d, k)| *d == db && holds(k))
            .cloned()
            .collect();
        for k in keys {
            if !st.ready.contains(&k) {
                st.ready.push_back(k);
            }
        }
        if !st.ready.is_empty() {
            self.inner.has_ready.store(true, Ordering::SeqCst);
        }
    }

    /// Serves the waiters of the signalled keys (see the module's comment). Called with no
    /// lock held; returns once the replies are sent.
    pub fn drain(&self, shared: &Shared) {
        if !self.inner.has_ready.load(Ordering::SeqCst) {
            return;
        }
        let mut served: Vec<(Unblocked, Option<AofWait>)> = Vec::new();
        loop {
            let next = {
                let mut st = self.inner.state.lock();
                let k = st.ready.pop_front();
                if st.ready.is_empty() {
                    self.inner.has_ready.store(false, Ordering::SeqCst);
                }
                k
            };
            let Some((db, key)) = next else { break };
            self.serve_key(shared, db, &key, &mut served);
        }
        if served.is_empty() {
            return;
        }
        // The replies wait for their records, as every reply does: one write (and fsync) for
        // them all.
        if let Some(t) = served
            .iter()
            .filter_map(|s| s.1.as_ref().map(AofWait::ticket))
            .max()
        {
            shared.aof_handle().write_through(t);
        }
        for (unblocked, wait) in served {
            if let Some(AofWait::Synced(_, ack)) = wait {
                let _ = ack.recv();
            }
            unblocked.release(Some(shared));
        }
    }

    fn serve_key(
        &self,
        shared: &Shared,
        db: usize,
        key: &[u8],
        served: &mut Vec<(Unblocked, Option<AofWait>)>,
    ) {
        let k = (db, key.to_vec());
        {
            let mut st = self.inner.state.lock();
            let Some(q) = st.keys.get_mut(&k) else { return };
            if q.busy {
                q.again = true;
                return;
            }
            q.busy = true;
        }
        let mut skip = 0;
        loop {
            // The next waiter, in blocking order; one being served on another of its keys by
            // another drain is passed over.
            let picked = {
                let mut st = self.inner.state.lock();
                let id = st.keys.get(&k).and_then(|q| q.fifo.get(skip).copied());
                id.map(|id| {
                    st.waiters
                        .get_mut(&id)
                        .and_then(|w| w.serve.take())
                        .map(|s| (id, s))
                })
            };
            let (id, mut serve) = match picked {
                Some(Some(p)) => p,
                Some(None) => {
                    skip += 1;
                    continue;
                }
                None => {
                    if self.stop(&k) {
                        return;
                    }
                    skip = 0;
                    continue;
                }
            };
            crate::notify::tracking::defer_for(id);
            let started = crate::util::clock::ticks();
            let result = serve(shared, key);
            let served_us =
                crate::util::clock::ticks_to_us(crate::util::clock::ticks().wrapping_sub(started));
            let after = crate::notify::tracking::take_deferred();
            let mut st = self.inner.state.lock();
            match result {
                Served::Reply(reply, wait) => {
                    if let Some(w) = st.remove(id) {
                        self.inner.count.fetch_sub(1, Ordering::SeqCst);
                        let unblocked = Unblocked {
                            handle: w.handle,
                            command: w.command,
                            reply,
                            served_us: Some(served_us),
                            after,
                        };
                        served.push((unblocked, wait));
                    }
                }
                Served::NotYet | Served::Pass => {
                    if let Some(w) = st.waiters.get(&id).filter(|_| !after.is_empty()) {
                        w.handle.deliver(&after);
                    }
                    let pass = matches!(result, Served::Pass);
                    let ended = st.waiters.get_mut(&id).and_then(|w| {
                        w.serve = Some(serve);
                        w.ended
                    });
                    if let Some(how) = ended {
                        if let Some(u) = st.end(id, how) {
                            self.inner.count.fetch_sub(1, Ordering::SeqCst);
                            drop(st);
                            u.release(Some(shared));
                        }
                        continue;
                    }
                    if pass {
                        skip += 1;
                        continue;
                    }
                    // The key has nothing for this waiter, nor for those after it; it is
                    // tried again only if signalled again meanwhile.
                    drop(st);
                    if self.stop(&k) {
                        return;
                    }
                    skip = 0;
                    continue;
                }
            }
        }
    }

    /// Ends a drain's turn on a key: true unless it was signalled meanwhile (then the drain
    /// goes on).
    fn stop(&self, k: &(usize, Vec<u8>)) -> bool {
        let mut st = self.inner.state.lock();
        let Some(q) = st.keys.get_mut(k) else {
            return true;
        };
        if q.again {
            q.again = false;
            return false;
        }
        q.busy = false;
        if q.fifo.is_empty() {
            st.keys.remove(k);
        }
        true
    }

    /// Ends the wait of client `id` (CLIENT UNBLOCK, a disconnect): false if it is not
    /// blocked.
    pub fn end(&self, shared: &Shared, id: u64, how: End) -> bool {
        let mut st = self.inner.state.lock();
        if !st.waiters.contains_key(&id) {
            return false;
        }
        if let Some(u) = st.end(id, how) {
            self.inner.count.fetch_sub(1, Ordering::SeqCst);
            drop(st);
            if how != End::Gone {
                u.release(Some(shared));
            }
        }
        true
    }

    /// Ends every wait with `how` (see `End::Demoted`).
    pub fn end_all(&self, shared: &Shared, how: End) {
        let ids: Vec<u64> = self.inner.state.lock().waiters.keys().copied().collect();
        for id in ids {
            self.end(shared, id, how);
        }
    }

    fn start_timer(&self) {
        self.timer_started.call_once(|| {
            let inner = self.inner.clone();
            let spawned = std::thread::Builder::new()
                .name("block-timer".into())
                .spawn(move || timer(&inner));
            if let Err(e) = spawned {
                log::error!("cannot start the blocked clients' timer: {e}");
            }
        });
    }
}

/// Answers the waiters whose deadline has passed, each when it passes.
fn timer(inner: &Inner) {
    let mut st = inner.state.lock();
    loop {
        let now = Instant::now();
        match st.deadlines.first().copied() {
            None => inner.timer.wait(&mut st),
            Some((d, _)) if d > now => {
                inner.timer.wait_until(&mut st, d);
            }
            Some((d, id)) => {
                st.deadlines.remove(&(d, id));
                if let Some(u) = st.end(id, End::Timeout) {
                    inner.count.fetch_sub(1, Ordering::SeqCst);
                    drop(st);
                    // A timeout answers with a null, never an error: nothing to count.
                    u.release(None);
                    st = inner.state.lock();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn shared() -> Shared {
        Shared::new(crate::config::Config::default())
    }

    /// A waiter whose serve succeeds while `stock` has something, taking one each time.
    fn waiter(stock: &Arc<AtomicUsize>, tag: &'static str) -> Serve {
        let stock = stock.clone();
        Box::new(move |_: &Shared, _: &[u8]| {
            let ok = stock
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if ok {
                Served::Reply(tag.as_bytes().to_vec(), None)
            } else {
                Served::NotYet
            }
        })
    }

    fn take(h: &ClientHandle) -> Vec<u8> {
        let mut out = Vec::new();
        h.take_outbox(&mut out);
        out
    }

    #[test]
    fn waiters_are_served_in_order_and_the_rest_keep_waiting() {
        let shared = shared();
        let b = &shared.blocking;
        let stock = Arc::new(AtomicUsize::new(0));
        let hs: Vec<Arc<ClientHandle>> = (1..=3)
            .map(|i| Arc::new(ClientHandle::new(i, None)))
            .collect();
        for (h, tag) in hs.iter().zip(["one", "two", "three"]) {
            b.block(
                h,
                None,
                0,
                vec![b"k".to_vec()],
                None,
                b"*-1\r\n".to_vec(),
                waiter(&stock, tag),
            );
        }
        assert_eq!(b.count(), 3);
        // Signalled with nothing there: nobody is served, nobody loses their place.
        b.signal(0, b"k");
        b.drain(&shared);
        assert_eq!(b.count(), 3);
        stock.store(2, Ordering::SeqCst);
        // A key nobody waits on, or another database, signals nothing.
        b.signal(1, b"k");
        b.signal(0, b"other");
        b.drain(&shared);
        assert_eq!(b.count(), 3);
        b.signal(0, b"k");
        b.drain(&shared);
        assert_eq!(take(&hs[0]), b"one");
        assert_eq!(take(&hs[1]), b"two");
        assert!(!hs[0].is_blocked() && !hs[1].is_blocked() && hs[2].is_blocked());
        assert_eq!(b.count(), 1);
        // Ended by CLIENT UNBLOCK: the timeout reply; a second end finds nothing.
        assert!(b.end(&shared, 3, End::Timeout));
        assert_eq!(take(&hs[2]), b"*-1\r\n");
        assert!(!b.end(&shared, 3, End::Error));
        assert_eq!(b.count(), 0);
    }

    #[test]
    fn deadlines_answer_with_the_timeout_reply() {
        let shared = shared();
        let b = &shared.blocking;
        let stock = Arc::new(AtomicUsize::new(0));
        let h = Arc::new(ClientHandle::new(9, None));
        let start = Instant::now();
        let deadline = start + std::time::Duration::from_millis(50);
        b.block(
            &h,
            None,
            0,
            vec![b"k".to_vec()],
            Some(deadline),
            b"_\r\n".to_vec(),
            waiter(&stock, "x"),
        );
        while h.is_blocked() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "never timed out"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(Instant::now() >= deadline);
        assert_eq!(take(&h), b"_\r\n");
        assert_eq!(b.count(), 0);
    }
}
