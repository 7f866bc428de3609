//! The buffered stream adapters: [`Buffered`], [`BufferUnordered`],
//! [`TryBuffered`], [`TryBufferUnordered`], with what they share with
//! [`ForEachConcurrent`](crate::ForEachConcurrent): the limit and the pull
//! bound.
//!
//! Each adapter pulls futures from its source into a set of the crate
//! ([`FuturesUnordered`], or [`FuturesOrdered`] for the ordered ones) and
//! yields their outputs. What differs from futures-util, on purpose:
//!
//! - **Limits** are `impl Into<Option<usize>>`; `0` and `None` both mean
//!   "no limit". futures-util's `buffered(0)` / `buffer_unordered(0)` never
//!   pull and return `Pending` forever, even on an empty source
//!   (rust-lang/futures-rs#2348, #2939, #2981).
//! - **Refill before returning** (futures-rs#2961): with a limit `n`, when a
//!   child finishes, the freed slot is refilled from the source in the same
//!   call, before the output is returned. So whenever an adapter returns an
//!   output and its source has items ready, `n` children are in flight
//!   (futures-util has `n - 1` until the consumer's next call).
//! - **No unbounded loop**: without a limit, one call pulls at most
//!   [`PULLS_PER_CALL`] items; if it stopped for that reason and has no
//!   output, it wakes its task and returns `Pending`, and the next call pulls
//!   on. futures-util pulls until the source is not ready, so an always-ready
//!   infinite source never lets its first call return.
//!
//! # Pinning
//!
//! The adapters pin their source structurally and nothing else (the sets
//! never move their children, so they are `Unpin`). The projections below
//! rely on these rules, which every type in this module and in
//! `for_each_concurrent.rs` keeps:
//!
//! - **PIN1** The adapter is `Unpin` only when its source is (an explicit
//!   `impl Unpin` with that bound, or the auto impl).
//! - **PIN2** No adapter implements `Drop`, and none is `repr(packed)`.
//! - **PIN3** A pinned source is never moved: it is only polled, replaced with
//!   `Pin::set` (dropped in place), or moved out by `into_inner(self)`,
//!   which takes the adapter by value (so it is not pinned).
//! - **PIN4** No other field is ever handed out pinned.

use core::convert::Infallible;
use core::fmt;
use core::future::Future;
use core::num::NonZeroUsize;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::future::TryFuture;
use futures_core::stream::{FusedStream, Stream, TryStream};

use crate::engine::budget::yield_task;
use crate::family::ordered::FuturesOrdered;
use crate::sets::futures_unordered::FuturesUnordered;

/// Without a limit, an adapter pulls at most this many items from its
/// source per call (`poll_next`, or `poll` of the `for_each` futures).
pub(crate) const PULLS_PER_CALL: usize = 128;

/// A concurrency limit: `Some(n)` children at most, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limit(Option<NonZeroUsize>);

impl Limit {
    /// `None` and `Some(0)` mean no limit.
    pub(crate) fn new(limit: Option<usize>) -> Self {
        Self(limit.and_then(NonZeroUsize::new))
    }

    /// Whether one more item may be pulled, with `in_flight` children and
    /// `pulls` items already pulled in this call.
    #[inline]
    pub(crate) fn has_room(self, in_flight: usize, pulls: usize) -> bool {
        match self.0 {
            Some(n) => in_flight < n.get(),
            None => pulls < PULLS_PER_CALL,
        }
    }

    /// Whether a call that pulled `pulls` items stopped because of the pull
    /// bound (the source may have more, and nobody will wake the task).
    #[inline]
    pub(crate) fn stopped_pulling(self, pulls: usize) -> bool {
        self.0.is_none() && pulls >= PULLS_PER_CALL
    }

    pub(crate) fn is_limited(self) -> bool {
        self.0.is_some()
    }

    /// As a number, for `Debug`: `None` when unlimited.
    pub(crate) fn get(self) -> Option<usize> {
        self.0.map(NonZeroUsize::get)
    }
}

/// A [`TryFuture`] as a [`Future`] of its `Result`, so that it can live in
/// a set (futures-util's `IntoFuture`).
struct TryChild<Fut>(Fut);

impl<Fut: TryFuture> Future for TryChild<Fut> {
    type Output = Result<Fut::Ok, Fut::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of the only field: `TryChild` is `Unpin`
        // exactly when `Fut` is (auto impl), has no `Drop`, is not packed,
        // and never moves `Fut` out (rules PIN1 to PIN3).
        let future = unsafe { self.map_unchecked_mut(|this| &mut this.0) };
        future.try_poll(cx)
    }
}

/// What the buffered adapters need of the set their children run in.
trait Queue: Stream + Unpin {
    type Child;
    /// Children held: running, or finished and waiting for their turn.
    fn held(&self) -> usize;
    fn enqueue(&mut self, child: Self::Child);
}

impl<Fut: Future> Queue for FuturesUnordered<Fut> {
    type Child = Fut;
    fn held(&self) -> usize {
        self.len()
    }
    fn enqueue(&mut self, child: Fut) {
        self.push(child);
    }
}

impl<Fut: Future> Queue for FuturesOrdered<Fut> {
    type Child = Fut;
    fn held(&self) -> usize {
        self.len()
    }
    fn enqueue(&mut self, child: Fut) {
        self.push_back(child);
    }
}

/// One poll of a source: a child, a source error, the end, or `Pending`.
type Pulled<C, E> = Poll<Option<Result<C, E>>>;

/// `poll_next` of every buffered adapter. `pull` polls the source once:
/// an item is a child, or (for the `try_` adapters) a source error.
fn poll_buffered<St, Q: Queue, E>(
    mut this: Projection<'_, St, Q, E>,
    cx: &mut Context<'_>,
    mut pull: impl FnMut(Pin<&mut St>, &mut Context<'_>) -> Pulled<Q::Child, E>,
) -> Poll<Option<Result<Q::Item, E>>> {
    if let Some(error) = this.error.take() {
        return Poll::Ready(Some(Err(error)));
    }
    let mut pulls = 0;
    if let Some(error) = fill(&mut this, &mut pulls, cx, &mut pull) {
        return Poll::Ready(Some(Err(error)));
    }
    let ended = match Pin::new(&mut *this.queue).poll_next(cx) {
        Poll::Ready(Some(output)) => {
            if this.limit.is_limited() {
                // futures-rs#2961: refill the freed slot before returning; a
                // source error found doing so is returned by the next call.
                *this.error = fill(&mut this, &mut pulls, cx, &mut pull);
            }
            return Poll::Ready(Some(Ok(output)));
        }
        Poll::Ready(None) => true,
        Poll::Pending => false,
    };
    if ended && *this.done {
        return Poll::Ready(None);
    }
    if !*this.done && this.limit.stopped_pulling(pulls) {
        // The pull bound stopped us, not the source: come back.
        yield_task(cx);
    }
    Poll::Pending
}

/// Pulls from the source into the queue while the limit has room; a
/// source error stops it and is returned.
#[inline]
fn fill<St, Q: Queue, E>(
    this: &mut Projection<'_, St, Q, E>,
    pulls: &mut usize,
    cx: &mut Context<'_>,
    pull: &mut impl FnMut(Pin<&mut St>, &mut Context<'_>) -> Pulled<Q::Child, E>,
) -> Option<E> {
    while !*this.done && this.limit.has_room(this.queue.held(), *pulls) {
        match pull(this.stream.as_mut(), cx) {
            Poll::Ready(Some(item)) => {
                *pulls += 1;
                match item {
                    Ok(child) => this.queue.enqueue(child),
                    Err(error) => return Some(error),
                }
            }
            Poll::Ready(None) => *this.done = true,
            Poll::Pending => break,
        }
    }
    None
}

/// `pull` for the plain adapters: every item is a child.
#[inline]
fn pull_plain<St: Stream>(
    stream: Pin<&mut St>,
    cx: &mut Context<'_>,
) -> Pulled<St::Item, Infallible> {
    stream.poll_next(cx).map(|item| item.map(Ok))
}

/// `pull` for the `try_` adapters: `Ok` items are children.
#[inline]
fn pull_try<St: TryStream>(
    stream: Pin<&mut St>,
    cx: &mut Context<'_>,
) -> Pulled<TryChild<St::Ok>, St::Error> {
    stream
        .try_poll_next(cx)
        .map(|item| item.map(|item| item.map(TryChild)))
}

/// The output of a plain adapter, which has no error.
#[inline]
fn infallible<T>(polled: Poll<Option<Result<T, Infallible>>>) -> Poll<Option<T>> {
    polled.map(|output| {
        output.map(|output| match output {
            Ok(output) => output,
            Err(never) => match never {},
        })
    })
}

/// The output of a `try_` adapter: a child's result, or a source error.
#[inline]
fn flatten<T, E>(polled: Poll<Option<Result<Result<T, E>, E>>>) -> Poll<Option<Result<T, E>>> {
    polled.map(|output| output.map(|output| output.and_then(|result| result)))
}

/// The source's `size_hint` plus the children held, as futures-util's
/// adapters compute it (an ended source counts as `(0, Some(0))`).
fn size_hint_with<St: Stream>(stream: &St, done: bool, held: usize) -> (usize, Option<usize>) {
    let (lower, upper) = if done {
        (0, Some(0))
    } else {
        stream.size_hint()
    };
    (
        lower.saturating_add(held),
        upper.and_then(|upper| upper.checked_add(held)),
    )
}

/// Generates the accessors futures-util's adapters have (`get_ref`,
/// `get_mut`, `get_pin_mut`, `into_inner`) for a type with a `stream` field
/// and a `project` method.
macro_rules! source_accessors {
    ($method:literal, $make:literal) => {
        /// The source.
        ///
        /// ```
        /// use futures::{Stream, StreamExt};
        /// use velodrome::{FairStreamExt, FairTryStreamExt};
        #[doc = concat!("let adapter = ", $make, ".", $method, "(2);")]
        /// assert_eq!(adapter.get_ref().size_hint(), (3, Some(3)));
        /// ```
        pub fn get_ref(&self) -> &St {
            &self.stream
        }

        /// The source, mutably. Taking items out of it directly bypasses
        /// the adapter.
        ///
        /// ```
        /// use futures::{Stream, StreamExt};
        /// use velodrome::{FairStreamExt, FairTryStreamExt};
        #[doc = concat!("let mut adapter = ", $make, ".", $method, "(2);")]
        /// let _source = adapter.get_mut();
        /// ```
        pub fn get_mut(&mut self) -> &mut St {
            &mut self.stream
        }

        /// The source, pinned.
        ///
        /// ```
        /// use futures::{Stream, StreamExt};
        /// use velodrome::{FairStreamExt, FairTryStreamExt};
        #[doc = concat!("let mut adapter = ", $make, ".", $method, "(2);")]
        /// let _source = std::pin::Pin::new(&mut adapter).get_pin_mut();
        /// ```
        pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut St> {
            self.project().stream
        }

        /// The source, by value; children still in flight are dropped.
        ///
        /// ```
        /// use futures::{Stream, StreamExt};
        /// use velodrome::{FairStreamExt, FairTryStreamExt};
        #[doc = concat!("let adapter = ", $make, ".", $method, "(2);")]
        /// let source = adapter.into_inner();
        /// assert_eq!(source.size_hint(), (3, Some(3)));
        /// ```
        pub fn into_inner(self) -> St {
            self.stream
        }
    };
}

/// The fields of an adapter, with the source pinned.
struct Projection<'a, St, Q, E> {
    stream: Pin<&'a mut St>,
    done: &'a mut bool,
    queue: &'a mut Q,
    error: &'a mut Option<E>,
    limit: Limit,
}

/// Generates `project` for an adapter with fields `stream`, `done`,
/// `queue`, `error` and `limit`.
macro_rules! projection {
    ($Queue:ty, $Error:ty) => {
        #[inline]
        fn project(self: Pin<&mut Self>) -> Projection<'_, St, $Queue, $Error> {
            // SAFETY: we never move out of the returned references: the
            // source is pinned structurally and nothing else is (rules PIN1 to
            // PIN4 in this module's docs).
            let this = unsafe { self.get_unchecked_mut() };
            Projection {
                // SAFETY: `this` is pinned, and so is its `stream` field
                // (structural pinning, rule PIN3: it is never moved).
                stream: unsafe { Pin::new_unchecked(&mut this.stream) },
                done: &mut this.done,
                queue: &mut this.queue,
                error: &mut this.error,
                limit: this.limit,
            }
        }
    };
}

/// Stream of the outputs of the futures a stream yields, in the order of
/// the stream, at most `n` running at once; from
/// [`FairStreamExt::fair_buffered`](crate::FairStreamExt::fair_buffered).
///
/// futures-util's `Buffered`, on a [`FuturesOrdered`]; see the
/// [method](crate::FairStreamExt::fair_buffered) for what changes. As in
/// futures-util, outputs that finished early and wait for an earlier one
/// count towards the limit.
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FairStreamExt;
///
/// # futures::executor::block_on(async {
/// let out: Vec<u32> = futures::stream::iter([3, 1, 2])
///     .map(|n| async move { n * 10 })
///     .fair_buffered(2)
///     .collect()
///     .await;
/// assert_eq!(out, [30, 10, 20]);
/// # });
/// ```
///
/// # Fairness
///
/// The children run in a [`FuturesOrdered`]: each is polled at most once
/// per cycle, so one that keeps waking itself cannot starve the others.
///
/// # Cooperative scheduling
///
/// With the `tokio` feature (default), no child is polled once the task's
/// budget is exhausted, and the adapter yields after at most 128 outputs.
#[must_use = "streams do nothing unless polled"]
pub struct Buffered<St>
where
    St: Stream,
    St::Item: Future,
{
    stream: St,
    done: bool,
    queue: FuturesOrdered<St::Item>,
    /// Always `None`: the plain adapters have no error.
    error: Option<Infallible>,
    limit: Limit,
}

// Rule PIN1: pinned only through the source.
impl<St> Unpin for Buffered<St>
where
    St: Stream + Unpin,
    St::Item: Future,
{
}

impl<St> Buffered<St>
where
    St: Stream,
    St::Item: Future,
{
    pub(crate) fn new(stream: St, limit: Option<usize>) -> Self {
        Self {
            stream,
            done: false,
            queue: FuturesOrdered::new(),
            error: None,
            limit: Limit::new(limit),
        }
    }

    projection!(FuturesOrdered<St::Item>, Infallible);
    source_accessors!(
        "fair_buffered",
        "futures::stream::iter([1, 2, 3]).map(std::future::ready)"
    );
}

impl<St> Stream for Buffered<St>
where
    St: Stream,
    St::Item: Future,
{
    type Item = <St::Item as Future>::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        infallible(poll_buffered(self.project(), cx, pull_plain))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        size_hint_with(&self.stream, self.done, self.queue.len())
    }
}

impl<St> FusedStream for Buffered<St>
where
    St: Stream,
    St::Item: Future,
{
    fn is_terminated(&self) -> bool {
        self.done && self.queue.is_terminated()
    }
}

impl<St> fmt::Debug for Buffered<St>
where
    St: Stream + fmt::Debug,
    St::Item: Future,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_adapter(f, "Buffered", &self.stream, self.queue.len(), self.limit)
    }
}

/// Stream of the outputs of the futures a stream yields, in the order they
/// finish, at most `n` running at once; from
/// [`FairStreamExt::fair_buffer_unordered`](crate::FairStreamExt::fair_buffer_unordered).
///
/// futures-util's `BufferUnordered`, on a [`FuturesUnordered`]; see the
/// [method](crate::FairStreamExt::fair_buffer_unordered) for what changes.
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FairStreamExt;
///
/// # futures::executor::block_on(async {
/// let mut out: Vec<u32> = futures::stream::iter([3, 1, 2])
///     .map(|n| async move { n * 10 })
///     .fair_buffer_unordered(2)
///     .collect()
///     .await;
/// out.sort();
/// assert_eq!(out, [10, 20, 30]);
/// # });
/// ```
///
/// # Fairness
///
/// The children run in a [`FuturesUnordered`]: each is polled at most once
/// per cycle, so one that keeps waking itself cannot starve the others.
///
/// # Cooperative scheduling
///
/// With the `tokio` feature (default), no child is polled once the task's
/// budget is exhausted, and the adapter yields after at most 128 outputs
/// even when its children spend no budget themselves.
#[must_use = "streams do nothing unless polled"]
pub struct BufferUnordered<St>
where
    St: Stream,
{
    stream: St,
    done: bool,
    queue: FuturesUnordered<St::Item>,
    /// Always `None`: the plain adapters have no error.
    error: Option<Infallible>,
    limit: Limit,
}

impl<St> BufferUnordered<St>
where
    St: Stream,
    St::Item: Future,
{
    pub(crate) fn new(stream: St, limit: Option<usize>) -> Self {
        Self {
            stream,
            done: false,
            queue: FuturesUnordered::new(),
            error: None,
            limit: Limit::new(limit),
        }
    }

    projection!(FuturesUnordered<St::Item>, Infallible);
    source_accessors!(
        "fair_buffer_unordered",
        "futures::stream::iter([1, 2, 3]).map(std::future::ready)"
    );
}

impl<St> Stream for BufferUnordered<St>
where
    St: Stream,
    St::Item: Future,
{
    type Item = <St::Item as Future>::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        infallible(poll_buffered(self.project(), cx, pull_plain))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        size_hint_with(&self.stream, self.done, self.queue.len())
    }
}

impl<St> FusedStream for BufferUnordered<St>
where
    St: Stream,
    St::Item: Future,
{
    fn is_terminated(&self) -> bool {
        self.queue.is_terminated() && self.done
    }
}

impl<St> fmt::Debug for BufferUnordered<St>
where
    St: Stream + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_adapter(
            f,
            "BufferUnordered",
            &self.stream,
            self.queue.len(),
            self.limit,
        )
    }
}

/// Stream of the results of the try-futures a try-stream yields, in the
/// order of the stream, at most `n` running at once; from
/// [`FairTryStreamExt::fair_try_buffered`](crate::FairTryStreamExt::fair_try_buffered).
///
/// futures-util's `TryBuffered`, on a [`FuturesOrdered`]. An error of the
/// source is yielded as soon as it is pulled; an error of a child in its
/// place in the order; the stream goes on after either, as futures-util's.
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FairTryStreamExt;
///
/// # futures::executor::block_on(async {
/// let source = futures::stream::iter([Ok(1), Err("bad"), Ok(2)])
///     .map(|item| item.map(|n| async move { Ok::<u32, &str>(n) }));
/// let out: Vec<_> = source.fair_try_buffered(2).collect().await;
/// assert_eq!(out, [Err("bad"), Ok(1), Ok(2)]);
/// # });
/// ```
///
/// # Fairness
///
/// As [`Buffered`].
///
/// # Cooperative scheduling
///
/// As [`Buffered`].
#[must_use = "streams do nothing unless polled"]
pub struct TryBuffered<St>
where
    St: TryStream,
    St::Ok: TryFuture,
{
    stream: St,
    done: bool,
    queue: FuturesOrdered<TryChild<St::Ok>>,
    /// A source error found while refilling after an output; the next call
    /// returns it first. Typed as the children's error, which `Stream`
    /// requires to be the source's: the queue holds such errors anyway, so
    /// the auto traits stay futures-util's.
    error: Option<<St::Ok as TryFuture>::Error>,
    limit: Limit,
}

// Rule PIN1: pinned only through the source.
impl<St> Unpin for TryBuffered<St>
where
    St: TryStream + Unpin,
    St::Ok: TryFuture,
{
}

impl<St> TryBuffered<St>
where
    St: TryStream,
    St::Ok: TryFuture,
{
    pub(crate) fn new(stream: St, limit: Option<usize>) -> Self {
        Self {
            stream,
            done: false,
            queue: FuturesOrdered::new(),
            error: None,
            limit: Limit::new(limit),
        }
    }

    projection!(
        FuturesOrdered<TryChild<St::Ok>>,
        <St::Ok as TryFuture>::Error
    );
    source_accessors!(
        "fair_try_buffered",
        "futures::stream::iter([1, 2, 3]).map(|n| Ok::<_, ()>(std::future::ready(Ok::<_, ()>(n))))"
    );
}

impl<St> Stream for TryBuffered<St>
where
    St: TryStream,
    St::Ok: TryFuture<Error = St::Error>,
{
    type Item = Result<<St::Ok as TryFuture>::Ok, St::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        flatten(poll_buffered(self.project(), cx, pull_try))
    }
}

impl<St> fmt::Debug for TryBuffered<St>
where
    St: TryStream + fmt::Debug,
    St::Ok: TryFuture,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_adapter(f, "TryBuffered", &self.stream, self.queue.len(), self.limit)
    }
}

/// Stream of the results of the try-futures a try-stream yields, in the
/// order they finish, at most `n` running at once; from
/// [`FairTryStreamExt::fair_try_buffer_unordered`](crate::FairTryStreamExt::fair_try_buffer_unordered).
///
/// futures-util's `TryBufferUnordered`, on a [`FuturesUnordered`]. An error
/// of the source is yielded as soon as it is pulled, an error of a child
/// when it finishes; the stream goes on after either, as futures-util's.
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FairTryStreamExt;
///
/// # futures::executor::block_on(async {
/// let source = futures::stream::iter([Ok(1), Ok(2)]).map(|item: Result<u32, ()>| {
///     item.map(|n| async move { if n == 2 { Err(()) } else { Ok(n) } })
/// });
/// let mut out: Vec<_> = source.fair_try_buffer_unordered(None).collect().await;
/// out.sort();
/// assert_eq!(out, [Ok(1), Err(())]);
/// # });
/// ```
///
/// # Auto traits
///
/// It holds a source error found while refilling until the next call, so
/// it is `Send` (`Sync`) only when `St::Error` is too, besides `St` and
/// `St::Ok`; futures-util's needs only the latter two.
///
/// # Fairness
///
/// As [`BufferUnordered`].
///
/// # Cooperative scheduling
///
/// As [`BufferUnordered`].
#[must_use = "streams do nothing unless polled"]
pub struct TryBufferUnordered<St>
where
    St: TryStream,
{
    stream: St,
    done: bool,
    queue: FuturesUnordered<TryChild<St::Ok>>,
    /// A source error found while refilling after an output; returned by
    /// the next call.
    error: Option<St::Error>,
    limit: Limit,
}

// Rule PIN1: pinned only through the source (the held error is not pinned).
impl<St> Unpin for TryBufferUnordered<St> where St: TryStream + Unpin {}

impl<St> TryBufferUnordered<St>
where
    St: TryStream,
    St::Ok: TryFuture,
{
    pub(crate) fn new(stream: St, limit: Option<usize>) -> Self {
        Self {
            stream,
            done: false,
            queue: FuturesUnordered::new(),
            error: None,
            limit: Limit::new(limit),
        }
    }

    projection!(FuturesUnordered<TryChild<St::Ok>>, St::Error);
    source_accessors!(
        "fair_try_buffer_unordered",
        "futures::stream::iter([1, 2, 3]).map(|n| Ok::<_, ()>(std::future::ready(Ok::<_, ()>(n))))"
    );
}

impl<St> Stream for TryBufferUnordered<St>
where
    St: TryStream,
    St::Ok: TryFuture<Error = St::Error>,
{
    type Item = Result<<St::Ok as TryFuture>::Ok, St::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        flatten(poll_buffered(self.project(), cx, pull_try))
    }
}

impl<St> fmt::Debug for TryBufferUnordered<St>
where
    St: TryStream + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_adapter(
            f,
            "TryBufferUnordered",
            &self.stream,
            self.queue.len(),
            self.limit,
        )
    }
}

/// The `Debug` of every buffered adapter: the source, the children held,
/// the limit.
fn debug_adapter(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    stream: &dyn fmt::Debug,
    held: usize,
    limit: Limit,
) -> fmt::Result {
    f.debug_struct(name)
        .field("stream", stream)
        .field("in_flight", &held)
        .field("limit", &limit.get())
        .finish_non_exhaustive()
}
