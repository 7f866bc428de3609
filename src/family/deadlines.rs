//! [`Deadlines`]: a set whose children may each have a deadline, all served
//! by one timer.
//!
//! The children live in an ordinary set (the wrapped type's public API:
//! `insert_with_priority`, `cancel`, `get_pin_mut`, keyed polling). Their
//! deadlines live beside it in a `DeadlineQueue` (`queue.rs`): a FIFO
//! run for deadlines that come in order (one timeout for every child: `O(1)`
//! per insert and expiry) and an indexed 4-ary min-heap for the others
//! (`O(log n)`), with each slot's entry found by `Key::index`, so a
//! completion or a cancel drops its entry at once. One `tokio::time::Sleep`
//! is kept at the earliest deadline; it is only touched when the set is
//! about to return `Pending`.
//!
//! Order of work in `poll_next`: first the set's own poll (the woken
//! children, as the plain set would poll them), and only when that is
//! `Pending` the earliest deadline, compared with `Instant::now()`. An
//! expired future is polled once more before it is dropped, so an output
//! that is ready at the deadline always wins.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use tokio::time::{Duration, Instant, Sleep};

mod queue;

use crate::engine::budget::Budget;
use crate::engine::lanes::Priority;
use crate::sets::futures_unordered::FuturesUnordered;
use crate::sets::key::Key;
use crate::sets::progress::ProgressWhile;
use crate::sets::streams_unordered::{IndexedStreamsUnordered, StreamsUnordered};

use queue::DeadlineQueue;

/// The error of a child that was still pending at its deadline (or, for a
/// stream with a timeout, that went that long without an item): the child
/// was dropped, and this is reported in its place.
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use velodrome::{Deadlines, FuturesUnordered};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
/// let key = set.insert_with_timeout(std::future::pending::<()>(), Duration::from_secs(1));
/// let deadline = set.deadline(key).unwrap();
/// let (got, result) = set.next().await.unwrap();
/// assert_eq!(got, key);
/// let elapsed = result.unwrap_err();
/// assert_eq!(elapsed.deadline(), deadline);
/// assert_eq!(elapsed.to_string(), "deadline has elapsed");
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Elapsed {
    deadline: Instant,
}

impl Elapsed {
    /// The deadline that passed (for a stream with a timeout: the end of the
    /// last idle period).
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio::time::Instant;
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let at = Instant::now() + Duration::from_millis(5);
    /// set.insert_with_deadline(std::future::pending::<()>(), at);
    /// let (_, result) = set.next().await.unwrap();
    /// assert_eq!(result.unwrap_err().deadline(), at);
    /// # }
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl core::error::Error for Elapsed {}

/// The set types a [`Deadlines`] can wrap: [`FuturesUnordered`],
/// [`StreamsUnordered`] and [`IndexedStreamsUnordered`]. Sealed: it cannot
/// be implemented outside this crate.
///
/// | `S` | child | `Ok` value | `Err(Elapsed)` after |
/// |---|---|---|---|
/// | `FuturesUnordered<F>` | `F: Future` | `F::Output` | deadline, or timeout since insert |
/// | `StreamsUnordered<St>` | `St: Stream` | each `St::Item` (the end is not reported) | deadline, or timeout since insert or the last item |
/// | `IndexedStreamsUnordered<St>` | `St: Stream` | `Some(item)` per item, `None` once at the end | as above |
///
/// ```
/// use velodrome::{Deadlines, IndexedStreamsUnordered};
///
/// let set: Deadlines<IndexedStreamsUnordered<futures::stream::Iter<std::vec::IntoIter<u8>>>> =
///     Deadlines::new();
/// assert!(set.is_empty());
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub trait DeadlineSet: sealed::Sealed {
    /// A child of the set: a future or a stream.
    type Child;
    /// What the set reports for a child that did not time out: an output,
    /// an item, or (`IndexedStreamsUnordered`) `Some(item)` / `None`.
    type Output;
}

impl<F: Future> DeadlineSet for FuturesUnordered<F> {
    type Child = F;
    type Output = F::Output;
}

impl<St: Stream> DeadlineSet for StreamsUnordered<St> {
    type Child = St;
    type Output = St::Item;
}

impl<St: Stream> DeadlineSet for IndexedStreamsUnordered<St> {
    type Child = St;
    type Output = Option<St::Item>;
}

mod sealed {
    use super::*;

    /// What one keyed poll of the wrapped set produced.
    #[derive(Debug)]
    pub enum Event<T> {
        /// The child is gone (finished or ended) with this output.
        Done(T),
        /// The child (a stream) yielded this item and stays.
        Item(T),
        /// The child (a stream) ended and is gone; nothing to report.
        Ended,
    }

    /// The machinery behind [`DeadlineSet`](super::DeadlineSet), over the
    /// public set API. `Inner` is the set actually held: a
    /// `StreamsUnordered` is run as an `IndexedStreamsUnordered`, so that the
    /// end of each stream is seen and its deadline dropped at once.
    pub trait Sealed {
        type Inner: Default + Unpin;
        /// Whether items restart a timeout (streams).
        const STREAMS: bool;

        fn insert(set: &Self::Inner, child: Self::Child, priority: Priority) -> Key
        where
            Self: DeadlineSet;
        fn poll_event(
            set: &mut Self::Inner,
            cx: &mut Context<'_>,
        ) -> Poll<Option<(Key, Event<Self::Output>)>>
        where
            Self: DeadlineSet;
        /// The last poll of a child whose deadline passed and that is
        /// dropped right after: futures only (a stream that yielded here
        /// would stay, but with the parent's waker instead of its own).
        fn poll_last(set: &mut Self::Inner, key: Key, cx: &mut Context<'_>) -> Poll<Self::Output>
        where
            Self: DeadlineSet;
        /// Polls the children into the set's stash (`progress_while`).
        fn progress(set: &mut Self::Inner, cx: &mut Context<'_>)
        where
            Self: DeadlineSet,
            <Self as DeadlineSet>::Output: Send;
        fn cancel(set: &mut Self::Inner, key: Key) -> bool;
        fn contains(set: &Self::Inner, key: Key) -> bool;
        fn len(set: &Self::Inner) -> usize;
        fn clear(set: &mut Self::Inner);
        fn is_terminated(set: &Self::Inner) -> bool;
    }

    /// The forwarding half of `Sealed`, the same for every set type.
    macro_rules! forward {
        () => {
            fn insert(
                set: &Self::Inner,
                child: <Self as DeadlineSet>::Child,
                priority: Priority,
            ) -> Key {
                set.insert_with_priority(child, priority)
            }
            fn progress(set: &mut Self::Inner, cx: &mut Context<'_>)
            where
                <Self as DeadlineSet>::Output: Send,
            {
                set.poll_progress(cx);
            }
            fn cancel(set: &mut Self::Inner, key: Key) -> bool {
                set.cancel(key)
            }
            fn contains(set: &Self::Inner, key: Key) -> bool {
                set.contains(key)
            }
            fn len(set: &Self::Inner) -> usize {
                set.len()
            }
            fn clear(set: &mut Self::Inner) {
                set.clear();
            }
            fn is_terminated(set: &Self::Inner) -> bool {
                set.is_terminated()
            }
        };
    }

    impl<F: Future> Sealed for FuturesUnordered<F> {
        type Inner = FuturesUnordered<F>;
        const STREAMS: bool = false;

        forward!();

        fn poll_event(
            set: &mut Self::Inner,
            cx: &mut Context<'_>,
        ) -> Poll<Option<(Key, Event<<Self as DeadlineSet>::Output>)>> {
            set.poll_next_with_key(cx)
                .map(|next| next.map(|(key, output)| (key, Event::Done(output))))
        }

        fn poll_last(
            set: &mut Self::Inner,
            key: Key,
            cx: &mut Context<'_>,
        ) -> Poll<<Self as DeadlineSet>::Output> {
            match set.get_pin_mut(key) {
                Some(child) => child.poll(cx),
                None => Poll::Pending,
            }
        }
    }

    impl<St: Stream> Sealed for StreamsUnordered<St> {
        type Inner = IndexedStreamsUnordered<St>;
        const STREAMS: bool = true;

        forward!();

        fn poll_event(
            set: &mut Self::Inner,
            cx: &mut Context<'_>,
        ) -> Poll<Option<(Key, Event<<Self as DeadlineSet>::Output>)>> {
            Pin::new(set).poll_next(cx).map(|next| {
                next.map(|(key, item)| match item {
                    Some(item) => (key, Event::Item(item)),
                    None => (key, Event::Ended),
                })
            })
        }

        fn poll_last(
            _: &mut Self::Inner,
            _: Key,
            _: &mut Context<'_>,
        ) -> Poll<<Self as DeadlineSet>::Output> {
            Poll::Pending
        }
    }

    impl<St: Stream> Sealed for IndexedStreamsUnordered<St> {
        type Inner = IndexedStreamsUnordered<St>;
        const STREAMS: bool = true;

        forward!();

        fn poll_event(
            set: &mut Self::Inner,
            cx: &mut Context<'_>,
        ) -> Poll<Option<(Key, Event<<Self as DeadlineSet>::Output>)>> {
            Pin::new(set).poll_next(cx).map(|next| {
                next.map(|(key, item)| match item {
                    Some(item) => (key, Event::Item(Some(item))),
                    None => (key, Event::Done(None)),
                })
            })
        }

        fn poll_last(
            _: &mut Self::Inner,
            _: Key,
            _: &mut Context<'_>,
        ) -> Poll<<Self as DeadlineSet>::Output> {
            Poll::Pending
        }
    }
}

use sealed::Event;

/// What one `poll_next` of a `Deadlines<S>` returns.
type Next<S> = Poll<Option<(Key, Result<<S as DeadlineSet>::Output, Elapsed>)>>;

/// A set of futures or streams in which each child may have a deadline, all
/// served by one timer. A child still pending at its deadline is dropped in
/// place and reported as `(key, Err(Elapsed))`; every other output comes as
/// `(key, Ok(output))`.
///
/// `S` is the set type it behaves as: [`FuturesUnordered`],
/// [`StreamsUnordered`] or [`IndexedStreamsUnordered`] (see
/// [`DeadlineSet`] for what each yields). Fairness, lanes, keys and the
/// cooperative budget are those of that set.
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use velodrome::{Deadlines, FuturesUnordered};
///
/// async fn request(ms: u64) -> u64 {
///     tokio::time::sleep(Duration::from_millis(ms)).await;
///     ms
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
/// let fast = set.insert_with_timeout(request(10), Duration::from_millis(100));
/// let slow = set.insert_with_timeout(request(500), Duration::from_millis(100));
/// let free = set.insert(request(300)); // no deadline
///
/// assert_eq!(set.next().await, Some((fast, Ok(10))));
/// let (key, result) = set.next().await.unwrap();
/// assert_eq!(key, slow);
/// assert!(result.is_err()); // dropped at 100 ms
/// assert_eq!(set.next().await, Some((free, Ok(300))));
/// assert_eq!(set.next().await, None);
/// # }
/// ```
///
/// # Output type
///
/// Items are `(Key, Result<output, Elapsed>)`: the key says which child it
/// was (the one [`insert_with_deadline`](Self::insert_with_deadline) and
/// the others returned), and the `Result` whether it finished or timed out,
/// without wrapping each child in a `tokio::time::timeout`. A child inserted
/// without a deadline only ever yields `Ok`.
///
/// # Deadlines and timeouts
///
/// - [`insert_with_deadline`](Self::insert_with_deadline): a point in time.
///   A stream must end by then (items do not move it).
/// - [`insert_with_timeout`](Self::insert_with_timeout): a duration. For a
///   future, the deadline is `now + timeout`. For a stream it is an idle
///   timeout: it starts at the insert and starts again at each item, so a
///   stream is dropped only after `timeout` without an item. A timeout too
///   large to represent as an `Instant` means no deadline.
///
/// An expired child is reported once and its key then matches nothing.
/// [`cancel`](Self::cancel) drops a child and its deadline: nothing is
/// reported for it afterwards, even if its deadline had already passed.
///
/// # A child ready at its deadline
///
/// The output wins. `poll_next` first polls the woken children, as the plain
/// set would; deadlines are looked at only when that returns `Pending`. A
/// future whose deadline has passed is then polled once more before it is
/// dropped, and if that poll is `Ready`, its output is reported instead of
/// `Elapsed` (as with `tokio::time::timeout`, which polls its future before
/// its timer). A stream is not polled again: an item it yields at the very
/// instant of its deadline wins if the set polled it first, which it does
/// whenever the stream was woken before the set's poll, unless the set
/// returned early to yield (its cycle rule or the budget) and the expiry is
/// handled in the next call.
///
/// # Timers
///
/// - **One timer for the whole set**: one `tokio::time::Sleep`, boxed once
///   (one allocation, on the first poll that finds a deadline) and reset to
///   the earliest deadline. It is reset and polled only when the set is
///   about to return `Pending`, so outputs that are ready cost no timer
///   work; moving the deadline later is one atomic update inside tokio.
/// - **`O(1)` or `O(log n)` bookkeeping**: deadlines that come in order
///   (the usual case: one timeout for every child) are appended to a FIFO
///   run and expire from its front, `O(1)` each. A deadline earlier than the
///   last one goes to an indexed 4-ary min-heap: `O(log n)` per insert,
///   removal and expiry, at most 7 levels with 10,000 deadlines, 10 with a
///   million. Every child's entry is found by its slot index, so a
///   completion or a cancel drops it at once (from the heap in `O(log n)`;
///   in the run it is marked dead and the run is compacted when dead
///   entries pass half of it, `O(1)` amortised). Memory per child with a
///   deadline: a 16-byte entry and a 16-byte slot record (streams with a
///   timeout add 16 for the duration); the run holds at most twice the
///   live deadlines plus 32.
/// - **One clock read per batch**: an expiry reads `Instant::now()` only if
///   the earliest deadline was not already known to have passed.
/// - **No allocation per child** in steady state: the run, the heap and the
///   slot table keep their memory, as the set keeps its slots.
/// - **A child without a deadline pays nothing**: no entry and no timer
///   work; its completion costs one bounds-checked look-up (none at all
///   while no child has a deadline).
/// - The timer wakes the task with tokio's resolution (deadlines rounded up
///   to the millisecond); a child is reported as timed out by the first poll
///   of the set at or after its deadline that finds no output ready.
///
/// # Cooperative scheduling
///
/// As the wrapped set's, and expiries count as outputs: after 128 outputs
/// (finished or expired) since it last returned `Pending`, the set spends
/// the rest of the task's budget and yields; with the task's budget
/// exhausted it reports nothing, not even an expiry (whose last poll would
/// find every tokio resource `Pending`).
///
/// # Panics
///
/// Polling a set that holds a deadline outside a tokio runtime with the time
/// driver enabled panics, as `tokio::time::Sleep` does. A child that panics
/// in `poll` is dropped by the set, as without deadlines, and its deadline
/// is dropped on the next call.
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[must_use = "streams do nothing unless polled"]
pub struct Deadlines<S: DeadlineSet> {
    set: S::Inner,
    /// The deadlines, by key.
    timers: DeadlineQueue,
    /// A child may have panicked while the set polled it: the entries of
    /// children that are gone must be dropped before the heap is touched.
    repair_pending: bool,
    /// The one timer, made on the first poll that needs it.
    sleep: Option<Pin<Box<Sleep>>>,
    budget: Budget,
}

impl<S: DeadlineSet> Deadlines<S> {
    /// An empty set. Allocates only the wrapped set's small header; the
    /// heap grows with the first deadline, the timer is made on the first
    /// poll that needs it.
    ///
    /// ```
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let set: Deadlines<FuturesUnordered<std::future::Ready<u8>>> = Deadlines::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            set: S::Inner::default(),
            timers: DeadlineQueue::new(),
            repair_pending: false,
            sleep: None,
            budget: Budget::default(),
        }
    }

    /// Number of children in the set, with or without a deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// set.push(std::future::ready(1));
    /// set.insert_with_timeout(std::future::ready(2), Duration::from_secs(1));
    /// assert_eq!(set.len(), 2);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        S::len(&self.set)
    }

    /// Whether the set has no children.
    ///
    /// ```
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let set: Deadlines<FuturesUnordered<std::future::Ready<u8>>> = Deadlines::default();
    /// assert!(set.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a child without a deadline in the `NORMAL` lane. Like the
    /// plain set's `push`, it takes `&self`.
    ///
    /// ```
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// set.push(std::future::ready(1));
    /// assert_eq!(set.len(), 1);
    /// ```
    #[inline]
    pub fn push(&self, child: S::Child) {
        S::insert(&self.set, child, Priority::NORMAL);
    }

    /// Adds a child without a deadline in the `NORMAL` lane and returns its
    /// [`Key`].
    ///
    /// ```
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let key = set.insert(std::future::ready(1));
    /// assert!(set.contains(key));
    /// assert_eq!(set.deadline(key), None);
    /// ```
    #[inline]
    pub fn insert(&self, child: S::Child) -> Key {
        S::insert(&self.set, child, Priority::NORMAL)
    }

    /// Adds a child without a deadline in the lane of `priority` and
    /// returns its [`Key`].
    ///
    /// ```
    /// use velodrome::{Deadlines, FuturesUnordered, Priority};
    ///
    /// let set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let key = set.insert_with_priority(std::future::ready(1), Priority::HIGH);
    /// assert!(set.contains(key));
    /// ```
    #[inline]
    pub fn insert_with_priority(&self, child: S::Child, priority: Priority) -> Key {
        S::insert(&self.set, child, priority)
    }

    /// Adds a child in the `NORMAL` lane that is dropped and reported as
    /// [`Elapsed`] if it is still pending at `deadline`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let at = Instant::now() + Duration::from_secs(1);
    /// let key = set.insert_with_deadline(std::future::ready(1), at);
    /// assert_eq!(set.deadline(key), Some(at));
    /// ```
    pub fn insert_with_deadline(&mut self, child: S::Child, deadline: Instant) -> Key {
        self.insert_with_priority_and_deadline(child, Priority::NORMAL, deadline)
    }

    /// Adds a child in the `NORMAL` lane with a timeout: a future is
    /// dropped if still pending `timeout` from now; a stream if it goes
    /// `timeout` without an item (the timeout starts again at each item).
    ///
    /// ```
    /// use std::time::Duration;
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let key = set.insert_with_timeout(std::future::ready(1), Duration::from_secs(1));
    /// assert!(set.deadline(key).is_some());
    /// ```
    pub fn insert_with_timeout(&mut self, child: S::Child, timeout: Duration) -> Key {
        self.insert_with_priority_and_timeout(child, Priority::NORMAL, timeout)
    }

    /// Adds a child in the lane of `priority` with a deadline (see
    /// [`insert_with_deadline`](Self::insert_with_deadline)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use velodrome::{Deadlines, FuturesUnordered, Priority};
    ///
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let at = Instant::now() + Duration::from_secs(1);
    /// let key = set.insert_with_priority_and_deadline(std::future::ready(1), Priority::LOW, at);
    /// assert_eq!(set.deadline(key), Some(at));
    /// ```
    pub fn insert_with_priority_and_deadline(
        &mut self,
        child: S::Child,
        priority: Priority,
        deadline: Instant,
    ) -> Key {
        self.repair();
        let key = S::insert(&self.set, child, priority);
        self.timers.schedule(key, deadline, None);
        key
    }

    /// Adds a child in the lane of `priority` with a timeout (see
    /// [`insert_with_timeout`](Self::insert_with_timeout)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use velodrome::{Deadlines, Priority, StreamsUnordered};
    ///
    /// let mut set: Deadlines<StreamsUnordered<_>> = Deadlines::new();
    /// let key = set.insert_with_priority_and_timeout(
    ///     futures::stream::iter([1, 2]),
    ///     Priority::HIGH,
    ///     Duration::from_secs(1),
    /// );
    /// assert!(set.contains(key));
    /// ```
    pub fn insert_with_priority_and_timeout(
        &mut self,
        child: S::Child,
        priority: Priority,
        timeout: Duration,
    ) -> Key {
        self.repair();
        let key = S::insert(&self.set, child, priority);
        if let Some(deadline) = Instant::now().checked_add(timeout) {
            let idle = if S::STREAMS { Some(timeout) } else { None };
            self.timers.schedule(key, deadline, idle);
        }
        key
    }

    /// Whether the child `key` names is still in the set.
    ///
    /// ```
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let key = set.insert(std::future::ready(1));
    /// assert!(set.contains(key));
    /// set.cancel(key);
    /// assert!(!set.contains(key));
    /// ```
    #[inline]
    pub fn contains(&self, key: Key) -> bool {
        S::contains(&self.set, key)
    }

    /// The deadline of the child `key` names, if it is in the set and has
    /// one (for a stream with a timeout: the end of its current idle
    /// period).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let at = Instant::now() + Duration::from_secs(1);
    /// let key = set.insert_with_deadline(std::future::ready(1), at);
    /// assert_eq!(set.deadline(key), Some(at));
    /// set.cancel(key);
    /// assert_eq!(set.deadline(key), None);
    /// ```
    pub fn deadline(&self, key: Key) -> Option<Instant> {
        self.timers
            .deadline(key)
            .filter(|_| !self.repair_pending || self.contains(key))
    }

    /// Drops the child `key` names, in place, with its deadline, and
    /// returns whether it was there. Nothing is reported for it later, even
    /// if its deadline has already passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let key = set.insert_with_timeout(std::future::pending::<()>(), Duration::from_secs(1));
    /// assert!(set.cancel(key));
    /// assert!(!set.cancel(key));
    /// assert!(set.is_empty());
    /// ```
    pub fn cancel(&mut self, key: Key) -> bool {
        self.repair();
        // The entry first: a child's `Drop` that panics leaves no entry
        // behind. An entry with this very key belongs to a live child.
        self.timers.forget(key);
        S::cancel(&mut self.set, key)
    }

    /// Removes every child and every deadline, dropping each child exactly
    /// once, even if one of their `Drop`s panics. The set keeps its storage
    /// (and its timer) for reuse.
    ///
    /// ```
    /// use std::time::Duration;
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// set.insert_with_timeout(std::future::ready(1), Duration::from_secs(1));
    /// set.push(std::future::ready(2));
    /// set.clear();
    /// assert!(set.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.timers.clear();
        self.repair_pending = false;
        S::clear(&mut self.set);
    }

    /// After a child panicked in `poll` (or its `Drop` after it finished),
    /// drops the entries of children that are gone.
    #[inline]
    fn repair(&mut self) {
        if self.repair_pending {
            self.repair_slow();
        }
    }

    #[cold]
    fn repair_slow(&mut self) {
        let set = &self.set;
        self.timers.retain(|key| S::contains(set, key));
        self.repair_pending = false;
    }

    #[inline]
    fn output(&mut self, key: Key, result: Result<S::Output, Elapsed>) -> Next<S> {
        self.budget.on_output();
        Poll::Ready(Some((key, result)))
    }

    fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Next<S> {
        self.repair();
        if self.budget.poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        loop {
            // Set while a child may run user code that can panic: the next
            // call then drops the entry of whichever child the set dropped.
            self.repair_pending = true;
            let event = S::poll_event(&mut self.set, cx);
            self.repair_pending = false;
            match event {
                Poll::Ready(Some((key, Event::Done(output)))) => {
                    self.timers.forget(key);
                    return self.output(key, Ok(output));
                }
                Poll::Ready(Some((key, Event::Item(item)))) => {
                    self.timers.restart(key);
                    return self.output(key, Ok(item));
                }
                Poll::Ready(Some((key, Event::Ended))) => self.timers.forget(key),
                Poll::Ready(None) => {
                    debug_assert_eq!(self.timers.len(), 0);
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        self.poll_expired(cx)
    }

    /// The set is `Pending`: reports the earliest expired child, if any, or
    /// arms the timer at the earliest deadline.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Next<S> {
        let due = self.timers.earliest_is_due() || {
            let Some(deadline) = self.timers.earliest() else {
                self.budget.on_pending();
                return Poll::Pending;
            };
            let sleep = match &mut self.sleep {
                Some(sleep) => {
                    if sleep.deadline() != deadline {
                        sleep.as_mut().reset(deadline);
                    }
                    sleep
                }
                None => self
                    .sleep
                    .insert(Box::pin(tokio::time::sleep_until(deadline))),
            };
            // Ready only if the deadline passed since `now()`; the budget
            // may also make it `Pending` (with the task's wake-up deferred).
            sleep.as_mut().poll(cx).is_ready()
        };
        if !due {
            self.budget.on_pending();
            return Poll::Pending;
        }
        // The child's last poll may use tokio resources: not without budget.
        if self.budget.poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let (key, deadline) = self.timers.pop();
        let last = {
            let guard = CancelOnDrop::<S> {
                set: &mut self.set,
                key,
            };
            S::poll_last(guard.set, key, cx)
        };
        let result = match last {
            Poll::Ready(output) => Ok(output),
            Poll::Pending => Err(Elapsed { deadline }),
        };
        self.output(key, result)
    }
}

/// # Progress while the loop body runs
impl<S: DeadlineSet> Deadlines<S> {
    /// Runs `body` and, while it is pending, the set's children, keeping
    /// their outputs for the next `next()` calls: see
    /// [`FuturesUnordered::progress_while`] and [`ProgressWhile`]
    /// (streams: [`StreamsUnordered::progress_while`], one item per stream).
    /// Requires the output to be `Send`.
    ///
    /// Deadlines are looked at by `poll_next` only, as always when the set
    /// has nothing ready: a kept output is reported as `Ok` (it finished
    /// first, as it would have been had `poll_next` polled it), and a child
    /// still pending at its deadline is reported as `Err(Elapsed)` by the
    /// first `poll_next` after the kept outputs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio::time::sleep;
    /// use velodrome::{Deadlines, FuturesUnordered};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    /// let quick = set.insert_with_timeout(sleep(Duration::from_millis(10)), Duration::from_millis(50));
    /// let slow = set.insert_with_timeout(sleep(Duration::from_secs(1)), Duration::from_millis(50));
    /// set.progress_while(sleep(Duration::from_millis(100))).await;
    /// assert_eq!(set.next().await, Some((quick, Ok(()))));
    /// let (key, result) = set.next().await.unwrap();
    /// assert_eq!(key, slow);
    /// assert!(result.is_err());
    /// # }
    /// ```
    pub fn progress_while<B: Future>(&mut self, body: B) -> ProgressWhile<'_, Self, B>
    where
        S::Output: Send,
    {
        ProgressWhile::new(self, body, Self::poll_progress)
    }

    fn poll_progress(&mut self, cx: &mut Context<'_>)
    where
        S::Output: Send,
    {
        self.repair();
        // As in `poll_next_entry`: a child may panic while it is polled.
        self.repair_pending = true;
        S::progress(&mut self.set, cx);
        self.repair_pending = false;
    }
}

/// Drops the child whose deadline passed, after its last poll, even if that
/// poll panics.
struct CancelOnDrop<'a, S: DeadlineSet> {
    set: &'a mut S::Inner,
    key: Key,
}

impl<S: DeadlineSet> Drop for CancelOnDrop<'_, S> {
    fn drop(&mut self) {
        S::cancel(self.set, self.key);
    }
}

impl<S: DeadlineSet> Unpin for Deadlines<S> {}

impl<S: DeadlineSet> Default for Deadlines<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: DeadlineSet> fmt::Debug for Deadlines<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadlines")
            .field("len", &self.len())
            .field("deadlines", &self.timers.len())
            .field("earliest", &self.timers.earliest())
            .finish_non_exhaustive()
    }
}

impl<S: DeadlineSet> Stream for Deadlines<S> {
    type Item = (Key, Result<S::Output, Elapsed>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_entry(cx)
    }
}

impl<S: DeadlineSet> FusedStream for Deadlines<S> {
    fn is_terminated(&self) -> bool {
        S::is_terminated(&self.set)
    }
}
