//! [`ForEachConcurrent`] and [`TryForEachConcurrent`]: run a closure's
//! future for every item of a stream, at most `limit` at once, on a
//! [`FuturesUnordered`].
//!
//! The loop is futures-util's (pull while under the limit, poll the
//! children, repeat while a child finishes), with two bounds so that one
//! `poll` always returns:
//!
//! - Without a limit, one `poll` pulls at most
//!   [`PULLS_PER_CALL`](crate::family::buffered::PULLS_PER_CALL) items.
//! - Outside a tokio runtime (or without the `tokio` feature), one `poll`
//!   sees at most [`COMPLETIONS_PER_POLL`] children finish. Inside tokio
//!   the set's own budget already makes the task yield after 128 outputs;
//!   a second, independent count could make the next task poll wasted.
//!
//! When a bound stops the loop, the future refills its free slots, wakes its
//! task and returns `Pending`; the next `poll` goes on. futures-util's loops
//! for as long as the source and the children are ready, which for an
//! always-ready source is forever, and starves whatever else shares the task
//! (the other branches of a `select!`, for instance).
//!
//! Pinning follows rules PIN1 to PIN4 of `buffered.rs`.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::future::FusedFuture;
use futures_core::stream::{Stream, TryStream};

use crate::engine::budget::yield_task;
use crate::family::buffered::Limit;
use crate::sets::futures_unordered::FuturesUnordered;

/// Outside a tokio runtime, one `poll` of a `for_each_concurrent` future
/// sees at most this many children finish before it yields.
pub(crate) const COMPLETIONS_PER_POLL: usize = 128;

/// Whether tokio's cooperative budget governs the current task, so that
/// the set yields on its own after 128 outputs.
fn runtime_budgets_task() -> bool {
    #[cfg(feature = "tokio")]
    {
        tokio::runtime::Handle::try_current().is_ok()
    }
    #[cfg(not(feature = "tokio"))]
    {
        false
    }
}

/// The fields of a `for_each_concurrent` future, with the source pinned.
struct Projection<'a, St, Fut, F> {
    stream: Pin<&'a mut Option<St>>,
    f: &'a mut F,
    futures: &'a mut FuturesUnordered<Fut>,
    limit: Limit,
}

macro_rules! projection {
    () => {
        #[inline]
        fn project(self: Pin<&mut Self>) -> Projection<'_, St, Fut, F> {
            // SAFETY: we never move out of the returned references: the
            // source is pinned structurally and nothing else is (rules PIN1 to
            // PIN4 of `buffered.rs`).
            let this = unsafe { self.get_unchecked_mut() };
            Projection {
                // SAFETY: `this` is pinned, and so is its `stream` field
                // (structural pinning: it is only polled or replaced with
                // `Pin::set`, rule PIN3).
                stream: unsafe { Pin::new_unchecked(&mut this.stream) },
                f: &mut this.f,
                futures: &mut this.futures,
                limit: this.limit,
            }
        }
    };
}

/// The loop both futures share. `pull` polls the source once (`Ok(None)`:
/// not ready, or ended and set to `None`; `Err`: failed); `finished` looks
/// at one child's output (`Err`: failed).
fn drive<St, Fut, F, E>(
    this: &mut Projection<'_, St, Fut, F>,
    cx: &mut Context<'_>,
    mut pull: impl FnMut(Pin<&mut Option<St>>, &mut F, &mut Context<'_>) -> Result<Option<Fut>, E>,
    mut finished: impl FnMut(Fut::Output) -> Result<(), E>,
) -> Poll<Result<(), E>>
where
    Fut: Future,
{
    let mut pulls = 0;
    let mut completions = 0;
    let result = loop {
        if let Err(error) = fill(this, cx, &mut pulls, &mut pull) {
            break Err(error);
        }
        match Pin::new(&mut *this.futures).poll_next(cx) {
            Poll::Ready(Some(output)) => {
                if let Err(error) = finished(output) {
                    break Err(error);
                }
                completions += 1;
                if completions >= COMPLETIONS_PER_POLL && !runtime_budgets_task() {
                    // Give the task back, with the freed slots refilled.
                    if let Err(error) = fill(this, cx, &mut pulls, &mut pull) {
                        break Err(error);
                    }
                    yield_task(cx);
                    return Poll::Pending;
                }
            }
            Poll::Ready(None) if this.stream.is_none() => return Poll::Ready(Ok(())),
            // Nothing finished. Whatever was just pulled has been polled by
            // this call of the set (or the set woke the task to do it), and
            // nothing more can be pulled until a child finishes: futures-util
            // would go round once more and poll those children a second time.
            Poll::Ready(None) | Poll::Pending => {
                if this.stream.is_some() && this.limit.stopped_pulling(pulls) {
                    // The pull bound stopped us, not the source: come back.
                    yield_task(cx);
                }
                return Poll::Pending;
            }
        }
    };
    // As futures-util: on the first error, drop the source and every child,
    // so the future is terminated.
    this.stream.set(None);
    this.futures.clear();
    Poll::Ready(result)
}

/// Pulls while the limit has room.
#[inline]
fn fill<St, Fut, F, E>(
    this: &mut Projection<'_, St, Fut, F>,
    cx: &mut Context<'_>,
    pulls: &mut usize,
    pull: &mut impl FnMut(Pin<&mut Option<St>>, &mut F, &mut Context<'_>) -> Result<Option<Fut>, E>,
) -> Result<(), E> {
    while this.stream.is_some() && this.limit.has_room(this.futures.len(), *pulls) {
        match pull(this.stream.as_mut(), this.f, cx)? {
            Some(future) => {
                *pulls += 1;
                this.futures.push(future);
            }
            None => break,
        }
    }
    Ok(())
}

/// Future that runs `f`'s future for every item of a stream, at most
/// `limit` at once; from
/// [`FairStreamExt::fair_for_each_concurrent`](crate::FairStreamExt::fair_for_each_concurrent).
///
/// futures-util's `ForEachConcurrent`, on a [`FuturesUnordered`]; see the
/// [method](crate::FairStreamExt::fair_for_each_concurrent) for what
/// changes.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use velodrome::FairStreamExt;
///
/// # futures::executor::block_on(async {
/// let sum = AtomicU32::new(0);
/// futures::stream::iter(1..=4)
///     .fair_for_each_concurrent(2, |n| {
///         let sum = &sum;
///         async move {
///             sum.fetch_add(n, Ordering::Relaxed);
///         }
///     })
///     .await;
/// assert_eq!(sum.into_inner(), 10);
/// # });
/// ```
///
/// # Fairness
///
/// The children run in a [`FuturesUnordered`]: each is polled at most once
/// per cycle. One `poll` pulls at most 128 items when there is no limit,
/// and, outside tokio, sees at most 128 children finish; then it wakes its
/// task and returns `Pending`, so it never keeps the task to itself.
///
/// # Cooperative scheduling
///
/// With the `tokio` feature (default), no child is polled once the task's
/// budget is exhausted, and the set yields after at most 128 outputs.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ForEachConcurrent<St, Fut, F> {
    stream: Option<St>,
    f: F,
    futures: FuturesUnordered<Fut>,
    limit: Limit,
}

// Rule PIN1: only the source is pinned; `f` and the set are not.
impl<St: Unpin, Fut, F> Unpin for ForEachConcurrent<St, Fut, F> {}

impl<St, Fut, F> ForEachConcurrent<St, Fut, F>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: Future<Output = ()>,
{
    pub(crate) fn new(stream: St, limit: Option<usize>, f: F) -> Self {
        Self {
            stream: Some(stream),
            f,
            futures: FuturesUnordered::new(),
            limit: Limit::new(limit),
        }
    }
}

impl<St, Fut, F> ForEachConcurrent<St, Fut, F> {
    projection!();
}

impl<St, Fut, F> Future for ForEachConcurrent<St, Fut, F>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: Future<Output = ()>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let polled = drive(
            &mut this,
            cx,
            |mut stream, f, cx| {
                let Some(source) = stream.as_mut().as_pin_mut() else {
                    return Ok(None);
                };
                match source.poll_next(cx) {
                    Poll::Ready(Some(item)) => Ok(Some(f(item))),
                    Poll::Ready(None) => {
                        stream.set(None);
                        Ok(None)
                    }
                    Poll::Pending => Ok(None),
                }
            },
            |()| Ok::<(), core::convert::Infallible>(()),
        );
        polled.map(|result| match result {
            Ok(()) => (),
            Err(never) => match never {},
        })
    }
}

impl<St, Fut, F> FusedFuture for ForEachConcurrent<St, Fut, F>
where
    St: Stream,
    F: FnMut(St::Item) -> Fut,
    Fut: Future<Output = ()>,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_none() && self.futures.is_empty()
    }
}

impl<St: fmt::Debug, Fut, F> fmt::Debug for ForEachConcurrent<St, Fut, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForEachConcurrent")
            .field("stream", &self.stream)
            .field("in_flight", &self.futures.len())
            .field("limit", &self.limit.get())
            .finish_non_exhaustive()
    }
}

/// Future that runs `f`'s try-future for every `Ok` item of a try-stream, at
/// most `limit` at once, and stops at the first error; from
/// [`FairTryStreamExt::fair_try_for_each_concurrent`](crate::FairTryStreamExt::fair_try_for_each_concurrent).
///
/// futures-util's `TryForEachConcurrent`, on a [`FuturesUnordered`]. The
/// first error, of the source or of a child, is returned at once; the source
/// and every child still running are dropped then.
///
/// ```
/// use velodrome::FairTryStreamExt;
///
/// # futures::executor::block_on(async {
/// let result = futures::stream::iter([Ok(1), Ok(2), Err("three"), Ok(4)])
///     .fair_try_for_each_concurrent(None, |n| async move {
///         if n == 2 { Err("two") } else { Ok(()) }
///     })
///     .await;
/// assert!(result.is_err());
/// # });
/// ```
///
/// # Fairness
///
/// As [`ForEachConcurrent`].
///
/// # Cooperative scheduling
///
/// As [`ForEachConcurrent`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct TryForEachConcurrent<St, Fut, F> {
    stream: Option<St>,
    f: F,
    futures: FuturesUnordered<Fut>,
    limit: Limit,
}

// Rule PIN1: only the source is pinned; `f` and the set are not.
impl<St: Unpin, Fut, F> Unpin for TryForEachConcurrent<St, Fut, F> {}

impl<St, Fut, F> TryForEachConcurrent<St, Fut, F>
where
    St: TryStream,
    F: FnMut(St::Ok) -> Fut,
    Fut: Future<Output = Result<(), St::Error>>,
{
    pub(crate) fn new(stream: St, limit: Option<usize>, f: F) -> Self {
        Self {
            stream: Some(stream),
            f,
            futures: FuturesUnordered::new(),
            limit: Limit::new(limit),
        }
    }
}

impl<St, Fut, F> TryForEachConcurrent<St, Fut, F> {
    projection!();
}

impl<St, Fut, F> Future for TryForEachConcurrent<St, Fut, F>
where
    St: TryStream,
    F: FnMut(St::Ok) -> Fut,
    Fut: Future<Output = Result<(), St::Error>>,
{
    type Output = Result<(), St::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        drive(
            &mut this,
            cx,
            |mut stream, f, cx| {
                let Some(source) = stream.as_mut().as_pin_mut() else {
                    return Ok(None);
                };
                match source.try_poll_next(cx) {
                    Poll::Ready(Some(Ok(item))) => Ok(Some(f(item))),
                    Poll::Ready(Some(Err(error))) => Err(error),
                    Poll::Ready(None) => {
                        stream.set(None);
                        Ok(None)
                    }
                    Poll::Pending => Ok(None),
                }
            },
            |output| output,
        )
    }
}

impl<St, Fut, F> FusedFuture for TryForEachConcurrent<St, Fut, F>
where
    St: TryStream,
    F: FnMut(St::Ok) -> Fut,
    Fut: Future<Output = Result<(), St::Error>>,
{
    fn is_terminated(&self) -> bool {
        self.stream.is_none() && self.futures.is_empty()
    }
}

impl<St: fmt::Debug, Fut, F> fmt::Debug for TryForEachConcurrent<St, Fut, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryForEachConcurrent")
            .field("stream", &self.stream)
            .field("in_flight", &self.futures.len())
            .field("limit", &self.limit.get())
            .finish_non_exhaustive()
    }
}
