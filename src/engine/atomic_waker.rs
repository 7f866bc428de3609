//! The parent task's waker, registered by the poller and woken by children's
//! wakers from any thread.
//!
//! This is the state machine of `futures_core::task::AtomicWaker`, rewritten
//! over the crate's atomic facade so that loom models it, with one change: a
//! wake does not take the registered waker out, it wakes a clone. The waker
//! stays registered until the poller registers a different one, so the
//! poller can tell with [`AtomicWaker::will_wake`], without a
//! read-modify-write, whether the waker of the current poll is already the
//! one every wake reaches (rule P1 in `ARCHITECTURE.md`).
//!
//! # Who touches the cell
//!
//! - Only the set's owner writes it ([`register`], [`take`]), and only while
//!   it holds REGISTERING or WAKING won from WAITING.
//! - A waking thread reads it (clones the waker) only while it holds WAKING
//!   won from WAITING.
//! - The owner may read it at any time ([`will_wake`]): the only writer is
//!   itself, and concurrent reads are not a race.
//!
//! No user code runs while a bit is held except the clone of the registered
//! waker in [`wake`], which a guard unlocks even if it panics: `register`
//! clones before it locks and drops the old waker after it unlocks, and
//! every wake of a waker happens after unlocking.
//!
//! # Memory ordering
//!
//! `register` acquires the state and releases it; `wake` acquires it with
//! its `fetch_or` and releases it with an `AcqRel` `fetch_and`. So a waker
//! that sets a woken bit and then calls [`wake`]:
//!
//! - finds WAITING and wakes the registered waker, whose registration it
//!   acquired; or
//! - finds REGISTERING: the registrant's unlock sees WAKING (Acquire), so the
//!   bits are visible to the rest of that poll, and it wakes the new waker;
//!   or
//! - finds WAKING held by another waker: that waker's unlock `fetch_and`
//!   reads our `fetch_or` (Acquire, through the release sequence), so our
//!   bits happen before the wake it then delivers, and so before the poll
//!   that wake causes.
//!
//! Either way the parent's next poll sees the bits once it has made a
//! read-modify-write on the state ([`register`], or [`acquire_wakes`] when
//! it goes idle) before its last look at them (rule R1).
//!
//! [`acquire_wakes`]: AtomicWaker::acquire_wakes
//!
//! [`register`]: AtomicWaker::register
//! [`take`]: AtomicWaker::take
//! [`wake`]: AtomicWaker::wake
//! [`will_wake`]: AtomicWaker::will_wake

use core::task::Waker;

use crate::engine::loom::{AtomicUsize, Ordering::*, UnsafeCell};

const WAITING: usize = 0;
const REGISTERING: usize = 0b01;
const WAKING: usize = 0b10;

pub(crate) struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the `waker` cell is written only by the set's owner while it
// holds REGISTERING or WAKING, and read by others only while they hold
// WAKING, so no access races a write; `Waker` is `Send + Sync`.
unsafe impl Send for AtomicWaker {}
// SAFETY: as above.
unsafe impl Sync for AtomicWaker {}

/// Clears WAKING when dropped, also while unwinding from a panicking clone.
struct Unlock<'a>(&'a AtomicUsize);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        // AcqRel: Release hands the cell back to the owner; Acquire reads
        // every `fetch_or` of a waker that found WAKING while we held it, so
        // their bits happen before the wake we deliver next (rule R1).
        self.0.fetch_and(!WAKING, AcqRel);
    }
}

impl AtomicWaker {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Whether the registered waker wakes the same task as `waker`.
    /// Owner only (see the module docs); no atomic operation.
    #[inline]
    pub(crate) fn will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: only the owner, our caller, writes the cell; other threads
        // only read it, which does not race with this read.
        self.waker.with(|cell| unsafe {
            (*cell)
                .as_ref()
                .is_some_and(|registered| registered.will_wake(waker))
        })
    }

    /// Makes `waker` the one every later [`wake`](Self::wake) reaches.
    /// Owner only. If a wake is in progress, it cannot be stored: `waker`
    /// is woken instead, so the task polls again and registers then.
    #[cold]
    pub(crate) fn register(&self, waker: &Waker) {
        // Cloned before locking: a panicking clone leaves nothing locked.
        let new = waker.clone();
        // Acquire: pairs with the Release of the last unlock, so earlier
        // wakers' reads of the cell happen before our write.
        match self
            .state
            .compare_exchange(WAITING, REGISTERING, Acquire, Acquire)
        {
            Ok(_) => {
                // SAFETY: we hold REGISTERING, so no other thread accesses
                // the cell until we release it below.
                let old = self.waker.with_mut(|cell| unsafe { (*cell).replace(new) });
                // AcqRel: Release publishes the new waker to the next
                // `wake`; Acquire sees a WAKING bit set while we registered.
                let unlocked = self
                    .state
                    .compare_exchange(REGISTERING, WAITING, AcqRel, Acquire);
                if let Err(actual) = unlocked {
                    // A wake arrived while we registered: it could not read
                    // the cell, so we wake the new waker ourselves.
                    debug_assert_eq!(actual, REGISTERING | WAKING);
                    // AcqRel: as the unlock above.
                    self.state.swap(WAITING, AcqRel);
                    waker.wake_by_ref();
                }
                // Dropped unlocked: its `Drop` is user code.
                drop(old);
            }
            Err(WAKING) => {
                // A wake holds the cell (with the old waker): have the task
                // polled again, which registers then.
                waker.wake_by_ref();
            }
            Err(state) => {
                // Only the owner registers, so this is a misuse we tolerate.
                debug_assert!(state == REGISTERING || state == REGISTERING | WAKING);
            }
        }
    }

    /// A read-modify-write that changes nothing: it reads the latest state,
    /// and with it acquires the bits of every waker whose `fetch_or` (or
    /// unlock) came before it, so the owner's next look at the bits sees
    /// them (rule R1). One per idle `poll_next`; `register` does the same.
    #[inline]
    pub(crate) fn acquire_wakes(&self) {
        // AcqRel: Acquire as above; the Release half keeps the read-modify-
        // write in every waker's release sequence.
        self.state.fetch_or(0, AcqRel);
    }

    /// Wakes the registered waker, if any; it stays registered.
    pub(crate) fn wake(&self) {
        // AcqRel: Acquire sees the waker stored by `register`; Release
        // publishes the bits the caller set before waking (rule R1).
        if self.state.fetch_or(WAKING, AcqRel) != WAITING {
            // A registration is in progress (it will see WAKING and wake the
            // new waker) or another wake holds the cell (it wakes after it
            // unlocks, which orders our bits first): nothing to do.
            return;
        }
        let unlock = Unlock(&self.state);
        // SAFETY: we hold WAKING won from WAITING, so the owner does not
        // write the cell until we unlock.
        let waker = self.waker.with(|cell| unsafe { (*cell).clone() });
        drop(unlock);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Takes the registered waker out, if no wake is using it (then it stays
    /// and is dropped with the header). Owner only.
    pub(crate) fn take(&self) -> Option<Waker> {
        // Acquire: sees the last registration; the unlock releases the cell.
        if self.state.fetch_or(WAKING, Acquire) != WAITING {
            return None;
        }
        let _unlock = Unlock(&self.state);
        // SAFETY: we hold WAKING won from WAITING, and we are the owner.
        self.waker.with_mut(|cell| unsafe { (*cell).take() })
    }
}

impl core::fmt::Debug for AtomicWaker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AtomicWaker")
    }
}
