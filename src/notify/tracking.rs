//! Client-side caching (Redis's tracking.c): which clients may hold which keys, and the
//! invalidation messages a change to one of them sends.
//!
//! Default mode: the keys a tracking client reads are remembered with its id; the first
//! change to such a key sends it one invalidation and forgets the key. BCAST mode: nothing is
//! remembered; each change to a key under one of the client's prefixes is queued and sent,
//! batched per prefix, after the command that made it (Redis batches per event-loop turn).
//!
//! A message goes to the client itself (RESP3: a `>2 invalidate [keys]` push) or to the
//! client its REDIRECT names: a RESP3 one gets the push, a RESP2 one that is subscribed gets
//! it as a message on `__redis__:invalidate`. Delivery is through the target's handle, as a
//! publisher's: the writer never waits on the client it invalidates. Keys are shared by every
//! database, as in Redis.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::clients::ClientHandle;
use crate::resp::ReplyBuf;
use crate::shared::Shared;

/// `tracking-table-max-keys`: process-wide, as the other limits (0: no limit).
static MAX_KEYS: AtomicUsize = AtomicUsize::new(1_000_000);

pub fn max_keys() -> usize {
    MAX_KEYS.load(Ordering::Relaxed)
}

pub fn set_max_keys(n: usize) {
    MAX_KEYS.store(n, Ordering::Relaxed);
}

/// A client's tracking mode, owned by its session.
#[derive(Debug, Default, Clone)]
pub struct ClientTracking {
    pub on: bool,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING yes/no was given for the next command (or transaction).
    pub caching: bool,
    /// 0: itself.
    pub redirect: u64,
    pub prefixes: Vec<Box<[u8]>>,
}

impl ClientTracking {
    /// Whether the keys the command being run reads are to be remembered.
    pub fn remembers(&self) -> bool {
        // OPTIN: only after CACHING yes; OPTOUT: unless after CACHING no.
        let wanted = if self.optin {
            self.caching
        } else {
            !(self.optout && self.caching)
        };
        self.on && !self.bcast && wanted
    }
}

/// A BCAST client as the broadcaster sees it.
struct Listener {
    handle: Arc<ClientHandle>,
    noloop: bool,
    redirect: u64,
}

struct Prefix {
    prefix: Box<[u8]>,
    clients: Vec<Listener>,
    /// Keys changed since the last broadcast, each with who changed it (for NOLOOP).
    pending: BTreeMap<Box<[u8]>, u64>,
}

#[derive(Default)]
pub struct Tracking {
    /// Key → ids of the clients that may cache it.
    table: Mutex<HashMap<Box<[u8]>, Vec<u64>>>,
    /// Keys in `table`, read without its lock (writers skip it while 0).
    keys: AtomicUsize,
    prefixes: Mutex<Vec<Prefix>>,
    nprefixes: AtomicUsize,
    /// Keys queued for a broadcast.
    pending: AtomicUsize,
    /// Clients with tracking on (INFO's `tracking_clients`).
    pub clients: AtomicUsize,
}

/// Who gets a client's invalidations, and in which form.
fn target(shared: &Shared, client: &Arc<ClientHandle>, redirect: u64) -> Option<Arc<ClientHandle>> {
    if redirect == 0 {
        return Some(client.clone());
    }
    match shared.clients.get(redirect) {
        Some(t) => Some(t),
        None => {
            // As Redis: the tracking client is told, if it can be (RESP3).
            if client.is_resp3() {
                let mut out = ReplyBuf::new();
                out.set_protocol(3);
                out.push(2);
                out.bulk(b"tracking-redir-broken");
                out.int(redirect as i64);
                client.deliver(&out.buf);
            }
            None
        }
    }
}

thread_local! {
    /// A blocked client being served on this thread (see `blocking`) and the invalidations
    /// meant for it meanwhile: they follow its reply, as Redis defers the invalidations of the
    /// client whose command is running until its reply is written.
    static DEFERRED: std::cell::RefCell<Option<(u64, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

/// From now on this thread holds back the invalidations for client `id` (see `DEFERRED`).
pub fn defer_for(id: u64) {
    DEFERRED.with(|d| *d.borrow_mut() = Some((id, Vec::new())));
}

/// Ends `defer_for`: what was held back, to be delivered after the client's reply.
pub fn take_deferred() -> Vec<u8> {
    DEFERRED.with(|d| d.borrow_mut().take().map(|(_, v)| v).unwrap_or_default())
}

/// Sends an invalidation of `keys` (RESP of an array, or of a null for a flush) to `to`.
fn send(to: &ClientHandle, redirected: bool, keys: &[u8]) {
    let mut out = ReplyBuf::new();
    if to.is_resp3() {
        out.set_protocol(3);
        out.push(2);
        out.bulk(b"invalidate");
    } else if redirected {
        let st = to.state.lock();
        if st.sub + st.psub + st.ssub == 0 {
            return;
        }
        drop(st);
        out.push(3);
        out.bulk(b"message");
        out.bulk(b"__redis__:invalidate");
    } else {
        // RESP2 has no pushes on the client's own connection: nothing can be sent.
        return;
    }
    out.raw(keys);
    let held = DEFERRED.with(|d| match &mut *d.borrow_mut() {
        Some((id, held)) if *id == to.id => {
            held.extend_from_slice(&out.buf);
            true
        }
        _ => false,
    });
    if !held {
        to.deliver(&out.buf);
    }
}

fn key_array(keys: &[&[u8]]) -> Vec<u8> {
    let mut out = ReplyBuf::new();
    out.array(keys.len());
    for k in keys {
        out.bulk(k);
    }
    out.buf
}

impl Tracking {
    /// CLIENT TRACKING ON: registers a BCAST client's prefixes (all keys when none).
    pub fn enable(&self, handle: &Arc<ClientHandle>, t: &ClientTracking, was_on: bool) {
        if !was_on {
            self.clients.fetch_add(1, Ordering::Relaxed);
        }
        if !t.bcast {
            return;
        }
        let mut prefixes = self.prefixes.lock();
        let wanted: Vec<Box<[u8]>> = if t.prefixes.is_empty() {
            vec![Box::default()]
        } else {
            t.prefixes.clone()
        };
        for p in wanted {
            // Sorted, as Redis's radix tree: broadcasts go out in prefix order.
            let i = match prefixes.binary_search_by(|x| x.prefix.cmp(&p)) {
                Ok(i) => i,
                Err(i) => {
                    prefixes.insert(
                        i,
                        Prefix {
                            prefix: p,
                            clients: Vec::new(),
                            pending: BTreeMap::new(),
                        },
                    );
                    i
                }
            };
            let list = &mut prefixes[i].clients;
            list.retain(|l| l.handle.id != handle.id);
            list.push(Listener {
                handle: handle.clone(),
                noloop: t.noloop,
                redirect: t.redirect,
            });
        }
        self.nprefixes.store(prefixes.len(), Ordering::Release);
    }

    /// CLIENT TRACKING OFF, RESET, disconnect. The keys it read stay in the table, as in
    /// Redis: an invalidation skips a client no longer tracking.
    pub fn disable(&self, id: u64, t: &ClientTracking) {
        if !t.on {
            return;
        }
        self.clients.fetch_sub(1, Ordering::Relaxed);
        if t.bcast {
            let mut prefixes = self.prefixes.lock();
            for p in prefixes.iter_mut() {
                p.clients.retain(|l| l.handle.id != id);
            }
            prefixes.retain(|p| !p.clients.is_empty());
            self.nprefixes.store(prefixes.len(), Ordering::Release);
        }
    }

    /// Evicts keys over `tracking-table-max-keys` (lowered at run time), invalidating their
    /// clients: the periodic check Redis's serverCron makes (trackingLimitUsedSlots).
    /// True when it evicted some.
    pub fn enforce_limit(&self, shared: &Shared) -> bool {
        let max = max_keys();
        if max == 0 || self.keys.load(Ordering::Relaxed) <= max {
            return false;
        }
        let over: Vec<Box<[u8]>> = {
            let table = self.table.lock();
            if table.len() <= max {
                return false;
            }
            table.keys().take(table.len() - max).cloned().collect()
        };
        for k in over {
            self.invalidate(shared, &k, 0);
        }
        true
    }

    /// Remembers that client `id` read `key` (and may cache it). Over
    /// `tracking-table-max-keys`, keys are evicted, their clients invalidated.
    pub fn remember(&self, shared: &Shared, id: u64, key: &[u8]) {
        {
            let mut table = self.table.lock();
            let ids = table.entry(key.into()).or_insert_with(|| {
                self.keys.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            });
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let _ = self.enforce_limit(shared);
    }

    /// A key changed (by client `by`; 0 for none, as expiry): invalidates the clients that
    /// read it, and queues it for the BCAST prefixes it falls under.
    pub fn invalidate(&self, shared: &Shared, key: &[u8], by: u64) {
        if self.nprefixes.load(Ordering::Acquire) > 0 {
            let mut prefixes = self.prefixes.lock();
            for p in prefixes.iter_mut().filter(|p| key.starts_with(&p.prefix)) {
                p.pending.insert(key.into(), by);
                self.pending.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.keys.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some(ids) = self.table.lock().remove(key) else {
            return;
        };
        self.keys.fetch_sub(1, Ordering::Relaxed);
        let msg = key_array(&[key]);
        for id in ids {
            let Some(h) = shared.clients.get(id) else {
                continue;
            };
            let (redirect, noloop) = {
                let st = h.state.lock();
                if !st.tracking || st.bcast {
                    continue;
                }
                (st.redir.max(0) as u64, st.noloop)
            };
            if noloop && id == by {
                continue;
            }
            if let Some(to) = target(shared, &h, redirect) {
                send(&to, redirect != 0, &msg);
            }
        }
    }

    /// Sends the BCAST clients the keys changed under their prefixes: after each command.
    pub fn broadcast(&self, shared: &Shared) {
        if self.pending.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut prefixes = self.prefixes.lock();
        self.pending.store(0, Ordering::Relaxed);
        for p in prefixes.iter_mut() {
            if p.pending.is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut p.pending);
            let all: Vec<&[u8]> = pending.keys().map(|k| &**k).collect();
            let msg = key_array(&all);
            for l in &p.clients {
                let Some(to) = target(shared, &l.handle, l.redirect) else {
                    continue;
                };
                if l.noloop {
                    let theirs: Vec<&[u8]> = pending
                        .iter()
                        .filter(|(_, by)| **by != l.handle.id)
                        .map(|(k, _)| &**k)
                        .collect();
                    if !theirs.is_empty() {
                        send(&to, l.redirect != 0, &key_array(&theirs));
                    }
                } else {
                    send(&to, l.redirect != 0, &msg);
                }
            }
        }
    }

    /// FLUSHDB / FLUSHALL: every tracking client is told to drop everything (a null), and the
    /// table is emptied.
    pub fn flush(&self, shared: &Shared) {
        // The table goes even with no client tracking now: keys read by clients that have
        // since turned tracking off stay in it until they change (Redis frees it whole).
        let clients = if self.clients.load(Ordering::Relaxed) == 0 {
            Vec::new()
        } else {
            shared.clients.all()
        };
        for h in clients {
            let (on, redirect, resp3) = {
                let st = h.state.lock();
                (st.tracking, st.redir.max(0) as u64, st.resp == 3)
            };
            if !on {
                continue;
            }
            let null: &[u8] = if resp3 { b"_\r\n" } else { b"$-1\r\n" };
            if let Some(to) = target(shared, &h, redirect) {
                send(&to, redirect != 0, null);
            }
        }
        self.table.lock().clear();
        self.keys.store(0, Ordering::Relaxed);
    }

    /// Keys remembered (INFO's `tracking_total_keys`).
    pub fn key_count(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// Entries (key, client) remembered (INFO's `tracking_total_items`).
    pub fn item_count(&self) -> usize {
        self.table.lock().values().map(Vec::len).sum()
    }

    pub fn prefix_count(&self) -> usize {
        self.nprefixes.load(Ordering::Acquire)
    }
}
