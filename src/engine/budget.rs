//! Taking part in the parent tokio task's cooperative budget.
//!
//! # What one unit is
//!
//! tokio gives a task 128 units per poll; its resources (channels, sockets,
//! timers, `consume_budget`) spend one unit per operation that made progress.
//! The set adds two rules:
//!
//! 1. It never polls a child once the task's budget is exhausted
//!    (`has_budget_remaining()` is checked before every child poll); it
//!    pauses its cycle where it is and returns `Pending` through
//!    `poll_proceed`, which makes tokio reschedule the task.
//! 2. Each output the set yields counts as one unit of work on a counter of
//!    its own. When that counter reaches 128 between two `Pending`s, the set
//!    spends whatever is left of the task's budget and yields. So a set of
//!    children that never touch a tokio resource still yields every 128
//!    outputs, while children whose own resources pay for their work are not
//!    charged twice: the task yields when `max(leaf units, outputs)` reaches
//!    the budget.
//!
//! The set never restores the budget (a dropped `RestoreOnPending` would
//! erase what children spent in between) and never charges a unit for a
//! poll that made no progress.
//!
//! Outside a tokio runtime (or inside `coop::unconstrained`) the budget is
//! unlimited, both checks pass, and the set behaves exactly as without the
//! feature.

use core::task::{Context, Poll};

/// tokio's budget per task poll, in units.
#[cfg(feature = "tokio")]
const UNITS: u32 = 128;

#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Outputs yielded since the set last returned `Pending`.
    outputs: u32,
    /// Yields after `UNITS` outputs (statistics).
    pub(crate) output_yields: u64,
    /// Stops for an exhausted task budget (statistics).
    pub(crate) tokio_yields: u64,
}

#[cfg(feature = "tokio")]
impl Budget {
    /// Whether the next child may be polled; on `Pending` the task's wake-up
    /// is registered with tokio and the caller must return `Pending`.
    #[inline]
    pub(crate) fn poll_proceed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.outputs >= UNITS {
            return self.spend_rest(cx);
        }
        if tokio::task::coop::has_budget_remaining() {
            Poll::Ready(())
        } else {
            let poll = self.exhausted(cx);
            self.tokio_yields += u64::from(poll.is_pending());
            poll
        }
    }

    /// Outputs reached a budget's worth: spend the rest of the task's budget
    /// so tokio's own resources in this task also yield, then yield.
    #[cold]
    fn spend_rest(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.outputs = 0;
        // Outside a runtime there is no budget to spend: skip the probe.
        if tokio::runtime::Handle::try_current().is_err() {
            return Poll::Ready(());
        }
        // A budget holds at most `UNITS`, so after that many charges it is
        // exhausted unless it is unlimited.
        for _ in 0..=UNITS {
            if !tokio::task::coop::has_budget_remaining() {
                let poll = self.exhausted(cx);
                self.output_yields += u64::from(poll.is_pending());
                return poll;
            }
            if let Poll::Ready(restore) = tokio::task::coop::poll_proceed(cx) {
                restore.made_progress();
            }
        }
        // Still budget after a full budget's worth: unconstrained (no runtime,
        // or `coop::unconstrained`), so carry on like the plain core.
        Poll::Ready(())
    }

    #[cold]
    fn exhausted(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.outputs = 0;
        // With the budget exhausted this returns `Pending` and defers the
        // task's wake-up until the worker yields, which is how tokio wants a
        // budget-limited task to be rescheduled.
        match tokio::task::coop::poll_proceed(cx) {
            Poll::Ready(restore) => {
                // Unreachable in practice (checked just before); had budget
                // reappeared, we keep it untouched and proceed.
                drop(restore);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ends the current poll of the task and has it polled again soon: the set
/// found more work but its cycle rule says "not in this call".
///
/// Inside tokio this goes through `yield_now`, which defers the wake-up
/// until the worker has checked its timers and I/O; a plain `wake_by_ref`
/// would put the task straight back on the run queue, and a current-thread
/// runtime only looks at its timers every 61 task polls.
#[cfg(feature = "tokio")]
pub(crate) fn yield_task(cx: &mut Context<'_>) {
    let yield_now = core::pin::pin!(tokio::task::yield_now());
    // The first poll registers the deferred wake (or, outside a runtime,
    // wakes the task at once) and returns `Pending`.
    let _ = core::future::Future::poll(yield_now, cx);
}

#[cfg(not(feature = "tokio"))]
pub(crate) fn yield_task(cx: &mut Context<'_>) {
    cx.waker().wake_by_ref();
}

#[cfg(not(feature = "tokio"))]
impl Budget {
    #[inline(always)]
    pub(crate) fn poll_proceed(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

impl Budget {
    /// The set yields an output.
    #[inline]
    pub(crate) fn on_output(&mut self) {
        self.outputs += 1;
    }

    /// The set returns `Pending`: the task is about to yield, which starts a
    /// fresh budget.
    #[inline]
    pub(crate) fn on_pending(&mut self) {
        self.outputs = 0;
    }
}
