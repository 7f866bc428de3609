//! The core's side of `progress_while` (rule K1): polling children into
//! the stash while the loop body runs, handing the stash out first, and
//! parking a stream whose item is kept.
//!
//! Both go through the ordinary machinery: `progress_with` runs the same
//! poll loop as `poll_next` (so lanes, cycles, the budget and the counters
//! apply unchanged), only with every output kept instead of returned, and
//! `poll_stashed` is an output like any other for the budget (B1) and frees
//! room like a finished child (B3).

use core::pin::Pin;
use core::task::{Context, Poll};

use super::{Core, Step};
use crate::engine::loom::Ordering::Relaxed;
use crate::engine::page::locate;
use crate::engine::state;
use crate::sets::key::Key;

/// Outputs one `progress_with` keeps before it lets the task run again (the
/// size of tokio's budget, as for the set's own 128-output yield).
const MAX_OUTPUTS_PER_CALL: usize = 128;

impl<T> Core<T> {
    /// Whether outputs are kept for the next `poll_next` calls: then the
    /// set serves them (`poll_stashed`) before polling anything.
    #[inline(always)]
    pub(crate) fn has_stashed(&self) -> bool {
        self.stash.len() != 0
    }

    /// Hands out the oldest kept output, in completion order. A stream
    /// whose item it is was parked: it is queued again (marked woken, as a
    /// stream that yields is, rule C1), unless it was cancelled meanwhile.
    ///
    /// # Safety
    ///
    /// `R` is the one output type of this core's set, the `R` of every
    /// `progress_with` on it (rule K1), and the stash is not empty
    /// (`has_stashed`).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn poll_stashed<R>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(Key, R)>> {
        // Rule B1: a kept output counts as an output of this call.
        if self.budget.poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        // SAFETY: `R` is the stash's type (the caller's promise, K1).
        let (key, output) = unsafe { self.stash.pop::<R>() }.expect("has_stashed was checked");
        self.budget.on_output();
        self.unpark(key);
        // Rule B3: a kept output counted against the limit until now.
        if let Some(room) = self.room_to_wake_after(self.len()) {
            self.room = room.wake();
        }
        Poll::Ready(Some((key, output)))
    }

    /// Queues the stream `key` names again if it was parked for the item
    /// being handed out and still lives.
    fn unpark(&mut self, key: Key) {
        if !self.stash.unpark(key) {
            return;
        }
        let Some(index) = self.find(key) else {
            // Cancelled or removed while parked: nothing to queue.
            return;
        };
        let (page, offset) = locate(index);
        let records = self.page(page);
        // Relaxed: `&mut self` orders the push that wrote the state.
        let lane = state::lane(records.record(offset).state.load(Relaxed));
        // As for an item in `poll_child` (C1): no parent wake. This call
        // returns the item, and its caller polls again before it waits,
        // which finds the bit (R1).
        let _ = records.mark(self.header(), lane, offset);
    }

    /// Whether the child at `index` is a stream parked for a kept item.
    pub(super) fn is_parked(&self, index: usize) -> bool {
        let (page, offset) = locate(index);
        // Relaxed: `&mut self` orders the push that wrote the state.
        let current = self.page(page).record(offset).state.load(Relaxed);
        self.stash.is_parked(index, state::generation(current))
    }

    /// Polls the children through the ordinary poll loop, keeping every
    /// output in the stash, until the loop returns `Pending` (nothing
    /// woken, the cycle rule, or the budget) or the set is empty. A stream
    /// that yields is parked (`Step::Parked`), so the stash holds at most
    /// one item per stream and one output per finished future.
    ///
    /// # Safety
    ///
    /// `R` is the one output type of this core's set: every `progress_with`
    /// and `poll_stashed` on it uses the same `R` (rule K1).
    pub(crate) unsafe fn progress_with<R: Send>(
        &mut self,
        cx: &mut Context<'_>,
        mut poll_one: impl FnMut(Pin<&mut T>, &mut Context<'_>) -> Step<R>,
    ) {
        let mut poll_parking = |child: Pin<&mut T>, cx: &mut Context<'_>| match poll_one(child, cx)
        {
            Step::Item(output) => Step::Parked(output),
            step => step,
        };
        // Ending here is not the caller's `poll_next` returning `None`, so
        // it does not terminate the set (as futures-util defines it): the
        // set stays as it was, unless outputs came since, which the caller
        // has not seen yet.
        // As it was seen from outside: a push waiting for adoption (or a
        // live handle) made an ended set live again, whatever the flag says.
        let (terminated, kept) = (self.is_terminated(), self.stash.len());
        // Children pushed through handles while this runs could keep it
        // going for ever (each `poll_loop` call starts its own cycles): at
        // most this many outputs per call, then the task is polled again.
        let mut outputs = 0;
        loop {
            if outputs == MAX_OUTPUTS_PER_CALL {
                cx.waker().wake_by_ref();
                return;
            }
            match self.poll_loop::<R, true>(cx, &mut poll_parking) {
                Poll::Ready(Some((key, output))) => {
                    outputs += 1;
                    // SAFETY: `R` is the stash's type (the caller's promise).
                    unsafe { self.stash.push(key, output) }
                }
                Poll::Ready(None) => {
                    self.terminated = terminated && self.stash.len() == kept;
                    return;
                }
                Poll::Pending => return,
            }
        }
    }
}
