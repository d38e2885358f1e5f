//! Each thread's Lua interpreters, one for EVAL and one for the functions (Lua is not
//! thread-safe, and one interpreter for all would make every script wait for every other),
//! each made anew when the script cache or the libraries it was built from change. They are
//! kept where any thread can reach them, so that the change closes the stale ones at once:
//! the memory they held is freed and leaves INFO's used_memory_lua, as Redis's SCRIPT FLUSH
//! resets its one interpreter. One its thread is using is left to that thread, which replaces
//! it at its next run.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::LocalKey;

use parking_lot::Mutex;

use super::lua::Vm;
use super::CommandError;

/// One thread's interpreter of one kind.
#[derive(Default)]
pub struct Slot {
    vm: Mutex<Option<Vm>>,
    /// Its thread is in `Interpreters::with` (only that thread writes it): a second entry
    /// would wait for itself.
    in_use: AtomicBool,
}

/// A thread's handle on its slot of one kind.
pub type Local = LocalKey<OnceCell<Arc<Slot>>>;

/// Every thread's interpreter of one kind.
pub struct Interpreters {
    slots: Mutex<Vec<Weak<Slot>>>,
}

/// Adds the change from `before` to `after` bytes to `bytes`, the interpreters' sum.
fn account(bytes: &AtomicUsize, before: usize, after: usize) {
    if after >= before {
        bytes.fetch_add(after - before, Ordering::Relaxed);
    } else {
        let less = (before - after).min(bytes.load(Ordering::Relaxed));
        bytes.fetch_sub(less, Ordering::Relaxed);
    }
}

impl Default for Interpreters {
    fn default() -> Self {
        Self::new()
    }
}

impl Interpreters {
    pub const fn new() -> Self {
        Interpreters {
            slots: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on this thread's interpreter (its slot `local`), made anew by `make` when it
    /// was built for another `generation`. `bytes` sums the interpreters' memory, for INFO.
    pub fn with<R>(
        &self,
        local: &'static Local,
        generation: u64,
        bytes: &AtomicUsize,
        make: impl FnOnce() -> Vm,
        f: impl FnOnce(&mut Vm) -> R,
    ) -> Result<R, CommandError> {
        local.with(|cell| {
            let slot = cell.get_or_init(|| {
                let slot = Arc::new(Slot::default());
                let mut slots = self.slots.lock();
                slots.retain(|s| s.strong_count() > 0);
                slots.push(Arc::downgrade(&slot));
                slot
            });
            // Only a script run with DEBUG SET-DISABLE-DENY-SCRIPTS can call EVAL or FCALL
            // (Redis crashes there).
            if slot.in_use.swap(true, Ordering::Relaxed) {
                return Err(CommandError::Err(
                    "A script cannot run a script of its kind".into(),
                ));
            }
            // Cleared however `f` ends: a panic in a command is contained to the command.
            struct InUse<'s>(&'s AtomicBool);
            impl Drop for InUse<'_> {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::Relaxed);
                }
            }
            let _in_use = InUse(&slot.in_use);
            let mut vm = slot.vm.lock();
            if vm.as_ref().is_none_or(|v| v.generation != generation) {
                if let Some(old) = vm.take() {
                    account(bytes, old.memory(), 0);
                }
                let new = make();
                account(bytes, 0, new.memory());
                *vm = Some(new);
            }
            let vm_ref = vm.as_mut().expect("made above");
            let before = vm_ref.memory();
            let r = f(vm_ref);
            account(bytes, before, vm_ref.memory());
            Ok(r)
        })
    }

    /// Closes every interpreter built for a generation other than `generation` that no
    /// thread is using, taking its memory out of `bytes`.
    pub fn close_stale(&self, generation: u64, bytes: &AtomicUsize) {
        let slots: Vec<Arc<Slot>> = self.slots.lock().iter().filter_map(Weak::upgrade).collect();
        for slot in slots {
            let Some(mut vm) = slot.vm.try_lock() else {
                continue;
            };
            if vm.as_ref().is_some_and(|v| v.generation != generation) {
                if let Some(old) = vm.take() {
                    account(bytes, old.memory(), 0);
                }
            }
        }
    }
}
