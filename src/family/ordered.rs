//! [`FuturesOrdered`]: futures polled on the fair core, outputs in push order.
//!
//! The children live in a `Core<Fut>`, so they are polled exactly as a
//! [`FuturesUnordered`](crate::FuturesUnordered)'s: once per cycle, inside
//! the task's budget. Each child's place in the output order (its
//! *sequence*) is kept in a side table indexed by the child's slot, so the
//! core stores the future itself and no wrapper needs pin projection.
//!
//! An output that is due (its sequence is the next one to go out) is
//! returned straight away. One that finishes early waits in a binary heap
//! keyed by sequence; the heap keeps its memory, so once it has grown to the
//! largest number of outputs that ever waited at once, waiting allocates
//! nothing. Memory is proportional to the outputs waiting, not to the
//! children in flight.

use core::cmp::Ordering;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use alloc::collections::binary_heap::{BinaryHeap, PeekMut};
use alloc::vec::Vec;

use futures_core::stream::{FusedStream, Stream};

use crate::engine::budget::Budget;
use crate::engine::core::{Core, Step};
use crate::engine::lanes::Priority;
use crate::sets::progress::ProgressWhile;

/// A queue of futures that runs them concurrently and yields their outputs
/// in the order they were pushed, polling each at most once per cycle.
///
/// A drop-in replacement for `futures::stream::FuturesOrdered`: the same
/// methods, receivers, bounds and traits, so changing the `use` line is the
/// whole migration.
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FuturesOrdered; // was: use futures::stream::FuturesOrdered;
///
/// async fn fetch(n: u32) -> u32 { n }
///
/// # futures::executor::block_on(async {
/// let mut queue = FuturesOrdered::new();
/// queue.push_back(fetch(2));
/// queue.push_back(fetch(3));
/// queue.push_front(fetch(1));
/// let out: Vec<u32> = queue.collect().await;
/// assert_eq!(out, [1, 2, 3]);
/// # });
/// ```
///
/// # Fairness
///
/// The futures are polled by the same engine as
/// [`FuturesUnordered`](crate::FuturesUnordered)'s: a cycle polls each child
/// that was woken before it started once, and a child that wakes itself is
/// polled again in the next cycle, after its siblings. An output that is not
/// yet due (an earlier future is still running) is kept, and the queue goes
/// on polling the others in the same `poll_next` call.
///
/// # Cooperative scheduling
///
/// With the `tokio` feature (on by default) the queue takes part in the
/// parent task's budget: no child is polled once the budget is exhausted,
/// and the queue yields after at most 128 outputs, whether they come
/// straight from a child or waited for an earlier one, even when the
/// children spend no budget themselves. Children's own spending is never
/// erased. Outside a tokio runtime nothing changes.
///
/// # Bad input
///
/// - A future that panics in `poll` is dropped before the panic continues,
///   and `len` is right afterwards. Its output never comes, so (as in
///   futures-util) the outputs pushed after it are never yielded; they are
///   dropped with the queue.
/// - A future or output whose `Drop` panics during [`clear`](Self::clear) or
///   the queue's drop does not stop the others from being dropped, exactly
///   once each.
#[must_use = "streams do nothing unless polled"]
pub struct FuturesOrdered<Fut: Future> {
    /// The futures still running.
    core: Core<Fut>,
    /// Sequence of the child in each slot (by `Key::index`); stale for
    /// vacant slots.
    sequence_of_slot: Vec<i64>,
    /// Outputs that finished before their turn.
    waiting: BinaryHeap<Waiting<Fut::Output>>,
    /// Sequence of the next `push_back`.
    next_incoming: i64,
    /// Sequence of the next output to yield; `push_front` takes the one
    /// before it.
    next_outgoing: i64,
    /// Outputs yielded since the queue last returned `Pending`, from either
    /// path. The core counts only the outputs of its children, and those
    /// that waited went out later, so the core alone would let up to two
    /// budgets' worth through between yields.
    budget: Budget,
}

/// An output with its sequence, ordered so that `BinaryHeap` (a max-heap)
/// has the lowest sequence on top.
struct Waiting<T> {
    sequence: i64,
    output: T,
}

impl<T> PartialEq for Waiting<T> {
    fn eq(&self, other: &Self) -> bool {
        self.sequence == other.sequence
    }
}

impl<T> Eq for Waiting<T> {}

impl<T> PartialOrd for Waiting<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Waiting<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the lowest sequence is the greatest, so it is on top.
        other.sequence.cmp(&self.sequence)
    }
}

// The core never moves a child (its pages are address-stable), and nothing
// else is pinned: the queue may move freely, as futures-util's may.
impl<Fut: Future> Unpin for FuturesOrdered<Fut> {}

impl<Fut: Future> FuturesOrdered<Fut> {
    /// An empty queue. Allocates only the core's small shared header;
    /// storage grows with the first push.
    ///
    /// ```
    /// let queue = velodrome::FuturesOrdered::<std::future::Ready<u8>>::new();
    /// assert!(queue.is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            core: Core::new(),
            sequence_of_slot: Vec::new(),
            waiting: BinaryHeap::new(),
            next_incoming: 0,
            next_outgoing: 0,
            budget: Budget::default(),
        }
    }

    /// Number of futures in the queue: those running plus those finished
    /// and waiting for an earlier one.
    ///
    /// ```
    /// let mut queue = velodrome::FuturesOrdered::new();
    /// queue.push_back(std::future::ready(1));
    /// assert_eq!(queue.len(), 1);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.core.len() + self.waiting.len()
    }

    /// What the queue's poller has done so far (see
    /// [`Stats`](crate::Stats)); `outputs` counts the children that
    /// finished, including those whose output is still waiting its turn.
    ///
    /// ```
    /// let mut queue = velodrome::FuturesOrdered::new();
    /// queue.push_back(std::future::ready(1));
    /// assert_eq!(queue.stats().polls, 0);
    /// ```
    pub fn stats(&self) -> crate::Stats {
        self.core.stats()
    }

    /// Whether the queue holds no future and no waiting output.
    ///
    /// ```
    /// let queue = velodrome::FuturesOrdered::<std::future::Ready<u8>>::new();
    /// assert!(queue.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pushes a future to the back of the queue (see
    /// [`push_back`](Self::push_back)).
    ///
    /// ```
    /// let mut queue = velodrome::FuturesOrdered::new();
    /// # #[allow(deprecated)]
    /// queue.push(std::future::ready(1));
    /// assert_eq!(queue.len(), 1);
    /// ```
    #[deprecated(note = "use `push_back` instead")]
    pub fn push(&mut self, future: Fut) {
        self.push_back(future);
    }

    /// Pushes a future to the back of the queue: its output comes after
    /// those of every future already in it.
    ///
    /// The future is not polled here but by the next `poll_next`. A push
    /// into a slot freed by an earlier future allocates nothing.
    ///
    /// ```
    /// use futures::StreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let mut queue = velodrome::FuturesOrdered::new();
    /// queue.push_back(std::future::ready('a'));
    /// queue.push_back(std::future::ready('b'));
    /// assert_eq!(queue.next().await, Some('a'));
    /// # });
    /// ```
    #[inline]
    pub fn push_back(&mut self, future: Fut) {
        let sequence = self.next_incoming;
        self.next_incoming += 1;
        self.push_with_sequence(future, sequence);
    }

    /// Pushes a future to the front of the queue: its output is the next one
    /// to come out.
    ///
    /// ```
    /// use futures::StreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let mut queue = velodrome::FuturesOrdered::new();
    /// queue.push_back(std::future::ready('b'));
    /// queue.push_front(std::future::ready('a'));
    /// assert_eq!(queue.next().await, Some('a'));
    /// # });
    /// ```
    #[inline]
    pub fn push_front(&mut self, future: Fut) {
        self.next_outgoing -= 1;
        self.push_with_sequence(future, self.next_outgoing);
    }

    #[inline]
    fn push_with_sequence(&mut self, future: Fut, sequence: i64) {
        let slot = self.core.push(future, Priority::NORMAL).index();
        match self.sequence_of_slot.get_mut(slot) {
            Some(entry) => *entry = sequence,
            None => {
                // Slots are handed out densely, so a new one is the next
                // index past the table.
                self.sequence_of_slot.resize(slot, 0);
                self.sequence_of_slot.push(sequence);
            }
        }
    }

    /// Drops every future and waiting output, each exactly once even if one
    /// of their `Drop`s panics, and makes the queue a fresh one. The storage
    /// is kept for reuse.
    ///
    /// ```
    /// let mut queue = velodrome::FuturesOrdered::new();
    /// queue.push_back(std::future::ready(1));
    /// queue.clear();
    /// assert!(queue.is_empty());
    /// ```
    pub fn clear(&mut self) {
        /// Clears the waiting outputs even if a child's `Drop` unwinds out
        /// of `Core::clear`.
        struct ClearOnDrop<'a, T>(&'a mut BinaryHeap<T>);
        impl<T> Drop for ClearOnDrop<'_, T> {
            fn drop(&mut self) {
                self.0.clear();
            }
        }

        self.next_incoming = 0;
        self.next_outgoing = 0;
        let _waiting = ClearOnDrop(&mut self.waiting);
        self.core.clear();
    }
}

impl<Fut: Future> Default for FuturesOrdered<Fut> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Fut: Future> Stream for FuturesOrdered<Fut> {
    type Item = Fut::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        let this = self.get_mut();

        // An output that finished early and is now due.
        if let Some(head) = this.waiting.peek_mut() {
            if head.sequence == this.next_outgoing {
                if this.budget.poll_proceed(cx).is_pending() {
                    return Poll::Pending;
                }
                this.next_outgoing += 1;
                this.budget.on_output();
                return Poll::Ready(Some(PeekMut::pop(head).output));
            }
        }

        loop {
            let polled = this.core.poll_next_with(cx, Step::future);
            match polled {
                Poll::Ready(Some((key, output))) => {
                    let sequence = this.sequence_of_slot[key.index()];
                    if sequence == this.next_outgoing {
                        // The fast path: the output that finished is due.
                        if this.budget.poll_proceed(cx).is_pending() {
                            // A budget's worth of outputs went out, some of
                            // them from `waiting`, which the core does not
                            // count: keep this one, due first next call.
                            this.waiting.push(Waiting { sequence, output });
                            return Poll::Pending;
                        }
                        this.next_outgoing += 1;
                        this.budget.on_output();
                        return Poll::Ready(Some(output));
                    }
                    this.waiting.push(Waiting { sequence, output });
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    this.budget.on_pending();
                    return Poll::Pending;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.len();
        (len, Some(len))
    }
}

impl<Fut: Future> FusedStream for FuturesOrdered<Fut> {
    /// As futures-util's: the running futures have all finished, a
    /// `poll_next` has returned `Ready(None)` since, and no output waits.
    fn is_terminated(&self) -> bool {
        self.core.is_terminated() && self.waiting.is_empty()
    }
}

impl<Fut: Future> fmt::Debug for FuturesOrdered<Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuturesOrdered")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<Fut: Future> FromIterator<Fut> for FuturesOrdered<Fut> {
    fn from_iter<I: IntoIterator<Item = Fut>>(iter: I) -> Self {
        let mut queue = Self::new();
        queue.extend(iter);
        queue
    }
}

impl<Fut: Future> Extend<Fut> for FuturesOrdered<Fut> {
    fn extend<I: IntoIterator<Item = Fut>>(&mut self, iter: I) {
        for future in iter {
            self.push_back(future);
        }
    }
}

/// # Progress while the loop body runs
impl<Fut: Future> FuturesOrdered<Fut> {
    /// Runs `body` and, while it is pending, the queue's futures: the fix
    /// for `while let Some(x) = queue.next().await { handle(x).await }`,
    /// in which nothing polls the queue while `handle(x)` awaits
    /// (futures-rs#2387). See [`ProgressWhile`].
    ///
    /// The outputs of the futures that finish meanwhile are kept where
    /// early outputs always wait (no second buffer), and still come out in
    /// push order. At most one output per future is kept, counted in
    /// [`len`](Self::len). Unlike the unordered sets', this needs no
    /// `Fut::Output: Send` bound: the queue holds waiting outputs anyway,
    /// so it is `Send` only when they are.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio::time::{sleep, Instant};
    /// use velodrome::FuturesOrdered;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let start = Instant::now();
    /// let mut queue = FuturesOrdered::new();
    /// for ms in [20, 10] {
    ///     queue.push_back(async move {
    ///         sleep(Duration::from_millis(ms)).await;
    ///         (ms, start.elapsed())
    ///     });
    /// }
    /// queue.progress_while(sleep(Duration::from_millis(100))).await;
    /// // Both finished on time during the body, and come out in push order.
    /// let ms = Duration::from_millis;
    /// assert_eq!(queue.next().await, Some((20, ms(20))));
    /// assert_eq!(queue.next().await, Some((10, ms(10))));
    /// # }
    /// ```
    pub fn progress_while<B: Future>(&mut self, body: B) -> ProgressWhile<'_, Self, B> {
        ProgressWhile::new(self, body, Self::poll_progress)
    }

    /// Polls the futures, keeping every output in `waiting`, until the
    /// core's poll is `Pending` or no future is left (never letting it
    /// return `None`: that would terminate the queue before its outputs
    /// are out).
    fn poll_progress(&mut self, cx: &mut Context<'_>) {
        while self.core.len() != 0 {
            let polled = self.core.poll_next_with(cx, Step::future);
            let Poll::Ready(Some((key, output))) = polled else {
                return;
            };
            let sequence = self.sequence_of_slot[key.index()];
            self.waiting.push(Waiting { sequence, output });
        }
    }
}
