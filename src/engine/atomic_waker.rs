//! The parent task's waker, registered by the poller and woken by children's
//! wakers from any thread.
//!
//! This is the algorithm of `futures_core::task::AtomicWaker`, rewritten over
//! the crate's atomic facade so that loom models the registration race.
//!
//! # Memory ordering
//!
//! `register` acquires the state and `wake` releases it (`AcqRel` on both
//! sides), so a waker that sets a woken bit and then calls [`wake`] either
//! wakes the newly registered waker, or its bit is visible to a poller that
//! checks the bits after `register` returns. That store-then-wake /
//! register-then-check pattern is the no-lost-wake-up rule R1 in
//! `ARCHITECTURE.md`.
//!
//! [`wake`]: AtomicWaker::wake

use core::task::Waker;

use crate::engine::loom::{AtomicUsize, Ordering::*, UnsafeCell};

const WAITING: usize = 0;
const REGISTERING: usize = 0b01;
const WAKING: usize = 0b10;

pub(crate) struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the `waker` cell is only accessed by the thread that won the
// REGISTERING or WAKING bit of `state`, so at most one thread touches it at a
// time, and `Waker` is `Send + Sync`.
unsafe impl Send for AtomicWaker {}
// SAFETY: as above.
unsafe impl Sync for AtomicWaker {}

impl AtomicWaker {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Registers `waker` to be woken by the next [`AtomicWaker::wake`].
    pub(crate) fn register(&self, waker: &Waker) {
        // Acquire: pairs with the Release half of `wake`'s `fetch_or` and of
        // the final `swap` below, so the previous holder's writes to the cell
        // are visible before we touch it.
        match self
            .state
            .compare_exchange(WAITING, REGISTERING, Acquire, Acquire)
            .unwrap_or_else(|x| x)
        {
            WAITING => {
                // SAFETY: we hold REGISTERING, so no other thread accesses
                // the cell until we release it below.
                let old = self.waker.with_mut(|cell| unsafe {
                    match &*cell {
                        Some(old) if old.will_wake(waker) => None,
                        _ => (*cell).replace(waker.clone()),
                    }
                });
                // AcqRel: Release publishes the new waker to the next `wake`;
                // Acquire sees a WAKING bit set while we were registering.
                let res = self
                    .state
                    .compare_exchange(REGISTERING, WAITING, AcqRel, Acquire);
                match res {
                    Ok(_) => drop(old),
                    Err(actual) => {
                        // A wake arrived while we registered: it could not
                        // take the waker, so we wake it ourselves.
                        debug_assert_eq!(actual, REGISTERING | WAKING);
                        // SAFETY: we still hold REGISTERING, so the cell is
                        // ours until the swap below.
                        let waker = self.waker.with_mut(|cell| unsafe { (*cell).take() });
                        // AcqRel: releases the cell, as above.
                        self.state.swap(WAITING, AcqRel);
                        drop(old);
                        if let Some(waker) = waker {
                            waker.wake();
                        }
                    }
                }
            }
            WAKING => {
                // A concurrent wake is running: the task must be polled
                // again, so wake the new waker directly.
                waker.wake_by_ref();
            }
            state => {
                // Another thread is registering concurrently; only the owner
                // of the set registers, so this is a misuse we tolerate.
                debug_assert!(state == REGISTERING || state == REGISTERING | WAKING);
            }
        }
    }

    /// Wakes the registered waker, if any.
    pub(crate) fn wake(&self) {
        if let Some(waker) = self.take() {
            waker.wake();
        }
    }

    /// Takes the registered waker out, if no other thread is using it.
    pub(crate) fn take(&self) -> Option<Waker> {
        // AcqRel: Acquire sees the waker stored by `register`; Release
        // publishes the bits the caller set before waking (rule R1).
        match self.state.fetch_or(WAKING, AcqRel) {
            WAITING => {
                // SAFETY: we hold WAKING and nobody held REGISTERING, so the
                // cell is ours until the store below.
                let waker = self.waker.with_mut(|cell| unsafe { (*cell).take() });
                // Release: hands the cell back to the next registrant.
                self.state.fetch_and(!WAKING, Release);
                waker
            }
            // A registration is in progress (it will see WAKING and wake
            // itself) or another wake holds the cell: nothing to do.
            _ => None,
        }
    }
}

impl core::fmt::Debug for AtomicWaker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AtomicWaker")
    }
}
