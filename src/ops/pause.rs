//! CLIENT PAUSE / UNPAUSE (Redis's `pauseClients`): for a while, the commands of a kind (writes,
//! or all) are held back. A held client parks, as a blocked one does: its session keeps the
//! request and runs nothing more of the client's, no worker waits for it, and the end of the
//! pause (UNPAUSE, or its deadline on a timer thread) wakes the parked clients in the order
//! they parked, each then running its request as if it had just arrived.
//!
//! FAILOVER pauses writes too, for a purpose of its own that only it ends.
//!
//! Every command pays one relaxed load of `kind` while nothing is paused.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::clients::ClientHandle;

/// What a pause holds back; ordered, a stricter pause being greater (Redis's `pause_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum PauseKind {
    Off = 0,
    /// Writes and what may replicate (PUBLISH, PFCOUNT, scripts, EXEC of such commands).
    Write = 1,
    All = 2,
}

/// Who asked for a pause (Redis's `pause_purpose`): each has its own, and one ends only its
/// own, so that CLIENT UNPAUSE does not let writes through a FAILOVER's pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// CLIENT PAUSE.
    Client = 0,
    /// FAILOVER, until it ends or is aborted.
    Failover = 1,
}

#[derive(Default)]
pub struct Pause {
    /// The strictest kind among the purposes' pauses.
    kind: AtomicU8,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    kind: PauseKind,
    /// None: until its purpose ends it.
    end: Option<Instant>,
}

#[derive(Default)]
struct State {
    events: [Option<Event>; 2],
    /// Parked clients, in the order they parked.
    parked: Vec<Arc<ClientHandle>>,
}

impl State {
    /// Drops the pauses past their end; the strictest kind left.
    fn settle(&mut self, now: Instant) -> PauseKind {
        let mut kind = PauseKind::Off;
        for slot in &mut self.events {
            if slot.is_some_and(|e| e.end.is_some_and(|end| now >= end)) {
                *slot = None;
            }
            if let Some(e) = slot {
                kind = kind.max(e.kind);
            }
        }
        kind
    }
}

impl Pause {
    /// What is held back now. A pause past its deadline ends here if its timer has not yet
    /// ended it.
    #[inline]
    pub fn kind(&self) -> PauseKind {
        match self.kind.load(Ordering::Relaxed) {
            0 => PauseKind::Off,
            _ => self.kind_slow(),
        }
    }

    #[cold]
    fn kind_slow(&self) -> PauseKind {
        self.update(self.state.lock())
    }

    /// Recomputes the kind from the pauses left; clients parked by a stricter kind than what
    /// is left are woken, to run or park again (Redis's updateClientPauseTypeAndEndTime).
    fn update(&self, mut st: parking_lot::MutexGuard<'_, State>) -> PauseKind {
        let kind = st.settle(Instant::now());
        let old = self.kind.swap(kind as u8, Ordering::SeqCst);
        if (kind as u8) < old {
            let parked = std::mem::take(&mut st.parked);
            drop(st);
            for h in parked {
                h.set_postponed(false);
                h.nudge();
            }
        }
        kind
    }

    /// Pauses `kind` for `dur` (None: until `unpause`) on behalf of `purpose`; a pause of
    /// the same purpose already on keeps the stricter kind and the later end, as Redis's. A
    /// timer ends a timed one.
    pub fn pause(self: &Arc<Self>, purpose: Purpose, kind: PauseKind, dur: Option<Duration>) {
        let end = dur.map(|d| Instant::now() + d);
        {
            let mut st = self.state.lock();
            let slot = &mut st.events[purpose as usize];
            *slot = Some(match *slot {
                Some(e) => Event {
                    kind: e.kind.max(kind),
                    end: e.end.zip(end).map(|(a, b)| a.max(b)),
                },
                None => Event { kind, end },
            });
            self.update(st);
        }
        let Some(dur) = dur else {
            return;
        };
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("client-pause".into())
            .spawn(move || {
                std::thread::sleep(dur);
                // A later, longer pause has its own timer: this one ends only what is due.
                let _ = me.kind();
            })
            .ok();
    }

    /// Ends `purpose`'s pause; the clients it held run (or park again for another's).
    pub fn unpause(&self, purpose: Purpose) {
        let mut st = self.state.lock();
        st.events[purpose as usize] = None;
        self.update(st);
    }

    /// Parks a client whose request the pause holds. Parking after the pause ended (a race
    /// with UNPAUSE) wakes it at once.
    pub fn park(&self, h: &Arc<ClientHandle>) {
        let mut st = self.state.lock();
        h.set_postponed(true);
        if self.kind.load(Ordering::SeqCst) == 0 {
            drop(st);
            h.set_postponed(false);
            h.nudge();
            return;
        }
        if !st.parked.iter().any(|p| p.id == h.id) {
            st.parked.push(h.clone());
        }
    }

    /// A parked client that went away.
    pub fn forget(&self, id: u64) {
        self.state.lock().parked.retain(|p| p.id != id);
    }

    /// Clients parked now (INFO's blocked_clients counts them, as Redis's does).
    pub fn parked(&self) -> usize {
        if self.kind.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.state.lock().parked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_keeps_the_stricter_kind_and_ends_by_itself() {
        let p = Arc::new(Pause::default());
        assert_eq!(p.kind(), PauseKind::Off);
        p.pause(
            Purpose::Client,
            PauseKind::All,
            Some(Duration::from_millis(30)),
        );
        p.pause(
            Purpose::Client,
            PauseKind::Write,
            Some(Duration::from_millis(10)),
        );
        assert_eq!(p.kind(), PauseKind::All);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(p.kind(), PauseKind::Off);
    }

    #[test]
    fn unpause_wakes_the_parked_in_order() {
        let p = Arc::new(Pause::default());
        p.pause(
            Purpose::Client,
            PauseKind::Write,
            Some(Duration::from_secs(60)),
        );
        let a = Arc::new(ClientHandle::new(1, None));
        let b = Arc::new(ClientHandle::new(2, None));
        p.park(&a);
        p.park(&b);
        assert_eq!(p.parked(), 2);
        assert!(a.is_postponed());
        p.unpause(Purpose::Client);
        assert_eq!(p.parked(), 0);
        assert!(!a.is_postponed() && !b.is_postponed());
        // Parked after the end: not kept.
        p.park(&a);
        assert!(!a.is_postponed());
    }

    #[test]
    fn a_purpose_ends_only_its_own_pause() {
        let p = Arc::new(Pause::default());
        p.pause(Purpose::Failover, PauseKind::Write, None);
        p.pause(
            Purpose::Client,
            PauseKind::All,
            Some(Duration::from_secs(60)),
        );
        let a = Arc::new(ClientHandle::new(1, None));
        p.park(&a);
        // Down to the failover's kind: the parked client runs again (and parks if a write).
        p.unpause(Purpose::Client);
        assert_eq!(p.kind(), PauseKind::Write);
        assert!(!a.is_postponed());
        p.park(&a);
        assert!(a.is_postponed());
        p.unpause(Purpose::Failover);
        assert_eq!(p.kind(), PauseKind::Off);
        assert!(!a.is_postponed());
    }
}
