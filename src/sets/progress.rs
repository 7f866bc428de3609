//! [`ProgressWhile`]: the set's children keep running while the loop body
//! awaits (futures-rs#2387), and `progress_while` on the three set types.
//!
//! In `while let Some(x) = set.next().await { handle(x).await }` nothing
//! polls the other children while `handle(x)` awaits: their timers fire,
//! their sockets fill, and nobody looks. `set.progress_while(handle(x))`
//! polls the body first and, while it is pending, the set's children,
//! keeping their outputs in the set's stash (`engine/stash.rs`, rule K1)
//! for the following `next()` calls.
//!
//! Which outputs and how many: see `Core::progress_with` (the poll loop of
//! `poll_next`, outputs kept instead of returned) and `Core::poll_stashed`
//! (the stash is served first, in completion order).

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::Stream;

use crate::engine::core::Step;
use crate::sets::futures_unordered::FuturesUnordered;
use crate::sets::streams_unordered::{IndexedStreamsUnordered, StreamsUnordered};

/// Future of `progress_while`: runs a body future and, while the body is
/// pending, the children of a set, keeping their outputs in the set for its
/// next `poll_next` calls. Resolves to the body's output.
///
/// Each poll polls the body first; if the body is pending, it polls the
/// set's woken children exactly as the set's own `poll_next` would (lanes,
/// the cycle rule, the tokio budget and [`stats`](crate::Stats) apply
/// unchanged) until that poll would return `Pending`. Every output they
/// produce is kept, with its [`Key`](crate::Key), and the set's next
/// `poll_next` (`next()`, `poll_next_with_key`, `with_keys`) hands the kept
/// outputs out first, in completion order, before polling anything.
///
/// Both are woken through the task that polls this future: the body
/// registers its waker, the set registers the same one as its parent
/// waker.
///
/// Dropping it before the body finishes drops the body; the outputs kept so
/// far stay in the set, nothing is lost.
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use tokio::time::{sleep, Instant};
/// use velodrome::FuturesUnordered;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = Instant::now();
/// let mut set = FuturesUnordered::new();
/// for ms in [10, 20] {
///     set.push(async move {
///         sleep(Duration::from_millis(ms)).await;
///         start.elapsed() // when this child finished
///     });
/// }
/// // A 100 ms body: the children finish meanwhile, at their own time.
/// let body = set.progress_while(sleep(Duration::from_millis(100)));
/// body.await;
/// assert_eq!(set.len(), 2, "kept for next()");
/// assert_eq!(set.next().await, Some(Duration::from_millis(10)));
/// assert_eq!(set.next().await, Some(Duration::from_millis(20)));
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ProgressWhile<'a, S, B> {
    set: &'a mut S,
    /// Pinned structurally (see `poll`); the only pinned field.
    body: B,
    /// Polls the set's children into its stash until its poll is `Pending`.
    progress: fn(&mut S, &mut Context<'_>),
}

impl<'a, S, B> ProgressWhile<'a, S, B> {
    pub(crate) fn new(set: &'a mut S, body: B, progress: fn(&mut S, &mut Context<'_>)) -> Self {
        ProgressWhile {
            set,
            body,
            progress,
        }
    }
}

impl<S: fmt::Debug, B> fmt::Debug for ProgressWhile<'_, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressWhile")
            .field("set", &self.set)
            .finish_non_exhaustive()
    }
}

impl<S, B: Future> Future for ProgressWhile<'_, S, B> {
    type Output = B::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<B::Output> {
        // SAFETY: `body` is pinned structurally and nothing else is: it is
        // never moved (only polled here, dropped in place with the future),
        // there is no `Drop` impl and no `repr(packed)`, and the auto `Unpin`
        // holds only when `B: Unpin` (the other fields are `Unpin`). The set
        // is behind `&mut` and not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `body` is structurally pinned (see above) and `this` is
        // never moved, so the body stays where it was pinned.
        let body = unsafe { Pin::new_unchecked(&mut this.body) };
        if let Poll::Ready(output) = body.poll(cx) {
            return Poll::Ready(output);
        }
        (this.progress)(this.set, cx);
        Poll::Pending
    }
}

/// # Progress while the loop body runs
impl<Fut: Future> FuturesUnordered<Fut> {
    /// Runs `body` and, while it is pending, the set's children, keeping
    /// their outputs for the next `next()` calls: the fix for the loop
    /// `while let Some(x) = set.next().await { handle(x).await }`, in which
    /// nothing polls the other children while `handle(x)` awaits
    /// (futures-rs#2387). See [`ProgressWhile`].
    ///
    /// A finished child's output is kept and its slot freed, so at most one
    /// output per child is kept. Kept outputs count in [`len`](Self::len)
    /// (and against the [limit](Self::with_limit)) until they are handed
    /// out, though not in the iterators, which visit children; the set is
    /// not terminated while any is kept; [`clear`](Self::clear), the set's
    /// drop and `into_iter` drop them.
    ///
    /// # `Send` outputs only
    ///
    /// The set is `Send` when its futures are, and the outputs it keeps
    /// would travel with it to another thread; futures-util's bound does not
    /// make a `Send` future's output `Send` (a future may return an `Rc`),
    /// so this method requires `Fut::Output: Send`. With a `!Send` output,
    /// handle it in the plain loop.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tokio::time::{sleep, Instant};
    /// use velodrome::FuturesUnordered;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let start = Instant::now();
    /// let mut set = FuturesUnordered::new();
    /// for ms in [0, 10, 20] {
    ///     set.push(async move {
    ///         sleep(Duration::from_millis(ms)).await;
    ///         start.elapsed()
    ///     });
    /// }
    /// let mut finished = Vec::new();
    /// while let Some(at) = set.next().await {
    ///     finished.push(at);
    ///     // The loop body takes 100 ms; the other children keep running.
    ///     set.progress_while(sleep(Duration::from_millis(100))).await;
    /// }
    /// let ms = |n| Duration::from_millis(n);
    /// assert_eq!(finished, [ms(0), ms(10), ms(20)]);
    /// # }
    /// ```
    pub fn progress_while<B: Future>(&mut self, body: B) -> ProgressWhile<'_, Self, B>
    where
        Fut::Output: Send,
    {
        ProgressWhile::new(self, body, Self::poll_progress)
    }

    /// Polls the children into the stash until the set's poll is `Pending`.
    pub(crate) fn poll_progress(&mut self, cx: &mut Context<'_>)
    where
        Fut::Output: Send,
    {
        // SAFETY: this set keeps only `Fut::Output`s (here, and served by
        // `poll_next_with_key`), K1.
        unsafe { self.core.progress_with(cx, Step::future) }
    }
}

/// # Progress while the loop body runs
impl<S: Stream> StreamsUnordered<S> {
    /// Runs `body` and, while it is pending, the set's streams, keeping
    /// their items for the next `next()` calls (see [`ProgressWhile`]).
    ///
    /// A stream that yields an item meanwhile is *parked*: it is not polled
    /// again until that item has been handed out (then it is queued as a
    /// stream that yields always is), so at most one item per stream is
    /// kept, and a stream that is always ready cannot fill memory while the
    /// body runs. A parked stream can still be [`cancel`](Self::cancel)led;
    /// its kept item is handed out all the same.
    ///
    /// Kept items count in [`len`](Self::len) until handed out. The set is
    /// `Send` when its streams are, so this requires `S::Item: Send` (see
    /// [`FuturesUnordered::progress_while`]).
    ///
    /// ```
    /// use futures::StreamExt;
    /// use velodrome::StreamsUnordered;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut set = StreamsUnordered::new();
    /// set.push(futures::stream::iter(vec![1, 2, 3]));
    /// set.push(futures::stream::iter(vec![10, 20]));
    /// // A body that is pending once: each stream yields one item meanwhile,
    /// // and is parked until that item is handed out.
    /// set.progress_while(tokio::task::yield_now()).await;
    /// assert_eq!(set.len(), 4, "two streams and their two kept items");
    /// let mut items: Vec<i32> = set.collect().await;
    /// items.sort();
    /// assert_eq!(items, [1, 2, 3, 10, 20]);
    /// # }
    /// ```
    pub fn progress_while<B: Future>(&mut self, body: B) -> ProgressWhile<'_, Self, B>
    where
        S::Item: Send,
    {
        ProgressWhile::new(self, body, Self::poll_progress)
    }

    /// Polls the streams into the stash until the set's poll is `Pending`.
    pub(crate) fn poll_progress(&mut self, cx: &mut Context<'_>)
    where
        S::Item: Send,
    {
        // SAFETY: this set keeps only `S::Item`s (here, and served by
        // `poll_next_with_key`), K1.
        unsafe { self.core.progress_with(cx, Step::stream) }
    }
}

/// # Progress while the loop body runs
impl<S: Stream> IndexedStreamsUnordered<S> {
    /// Runs `body` and, while it is pending, the set's streams, keeping
    /// what they yield (`(key, Some(item))`, and `(key, None)` for a stream
    /// that ends) for the next `next()` calls; a stream that yields is
    /// parked until its item is handed out. See
    /// [`StreamsUnordered::progress_while`] and [`ProgressWhile`]; requires
    /// `S::Item: Send`.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use velodrome::IndexedStreamsUnordered;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut set = IndexedStreamsUnordered::new();
    /// let key = set.insert(futures::stream::iter(["a", "b"]));
    /// let body = async {
    ///     tokio::task::yield_now().await; // pending once
    ///     "done"
    /// };
    /// assert_eq!(set.progress_while(body).await, "done");
    /// // "a" was kept; the stream waited for it to be handed out.
    /// assert_eq!(set.len(), 2);
    /// assert_eq!(set.next().await, Some((key, Some("a"))));
    /// assert_eq!(set.next().await, Some((key, Some("b"))));
    /// assert_eq!(set.next().await, Some((key, None)));
    /// # }
    /// ```
    pub fn progress_while<B: Future>(&mut self, body: B) -> ProgressWhile<'_, Self, B>
    where
        S::Item: Send,
    {
        ProgressWhile::new(self, body, Self::poll_progress)
    }

    /// Polls the streams into the stash until the set's poll is `Pending`.
    /// (The bound says what is kept; `S::Item: Send` implies it.)
    pub(crate) fn poll_progress(&mut self, cx: &mut Context<'_>)
    where
        Option<S::Item>: Send,
    {
        // SAFETY: this set keeps only `Option<S::Item>`s (here, and served
        // by `poll_next`), K1.
        unsafe { self.core.progress_with(cx, Step::stream_to_end) }
    }
}
