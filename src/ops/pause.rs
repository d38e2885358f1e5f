//! CLIENT PAUSE / UNPAUSE (Redis's `pauseClients`): for a while, the commands of a kind (writes,
//! or all) are held back. A held client parks, as a blocked one does: its session keeps the
//! request and runs nothing more of the client's, no worker waits for it, and the end of the
//! pause (UNPAUSE, or its deadline on a timer thread) wakes the parked clients in the order
//! they parked, each then running its request as if it had just arrived.
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

#[derive(Default)]
pub struct Pause {
    kind: AtomicU8,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    end: Option<Instant>,
    /// Parked clients, in the order they parked.
    parked: Vec<Arc<ClientHandle>>,
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
        let st = self.state.lock();
        if st.end.is_some_and(|e| Instant::now() >= e) {
            drop(st);
            self.unpause();
            return PauseKind::Off;
        }
        match self.kind.load(Ordering::Relaxed) {
            1 => PauseKind::Write,
            2 => PauseKind::All,
            _ => PauseKind::Off,
        }
    }

    /// Pauses `kind` for `dur`; a pause already on keeps the stricter kind and the later end,
    /// as Redis's. A timer ends it.
    pub fn pause(self: &Arc<Self>, kind: PauseKind, dur: Duration) {
        let end = Instant::now() + dur;
        {
            let mut st = self.state.lock();
            let old = self.kind.load(Ordering::Relaxed);
            let new = old.max(kind as u8);
            st.end = Some(st.end.filter(|_| old != 0).map_or(end, |e| e.max(end)));
            self.kind.store(new, Ordering::SeqCst);
        }
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

    /// Ends the pause and wakes the parked clients, first parked first.
    pub fn unpause(&self) {
        let parked = {
            let mut st = self.state.lock();
            self.kind.store(0, Ordering::SeqCst);
            st.end = None;
            std::mem::take(&mut st.parked)
        };
        for h in parked {
            h.set_postponed(false);
            h.nudge();
        }
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
        p.pause(PauseKind::All, Duration::from_millis(30));
        p.pause(PauseKind::Write, Duration::from_millis(10));
        assert_eq!(p.kind(), PauseKind::All);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(p.kind(), PauseKind::Off);
    }

    #[test]
    fn unpause_wakes_the_parked_in_order() {
        let p = Arc::new(Pause::default());
        p.pause(PauseKind::Write, Duration::from_secs(60));
        let a = Arc::new(ClientHandle::new(1, None));
        let b = Arc::new(ClientHandle::new(2, None));
        p.park(&a);
        p.park(&b);
        assert_eq!(p.parked(), 2);
        assert!(a.is_postponed());
        p.unpause();
        assert_eq!(p.parked(), 0);
        assert!(!a.is_postponed() && !b.is_postponed());
        // Parked after the end: not kept.
        p.park(&a);
        assert!(!a.is_postponed());
    }
}
