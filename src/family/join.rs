//! [`join_all`] / [`JoinAll`] and [`try_join_all`] / [`TryJoinAll`]: every
//! future of a list, polled on the fair core, outputs in input order.
//!
//! The futures go into a fresh `Core` in input order. A fresh core that
//! never had a child removed hands out slot indices 0, 1, 2, ... in push
//! order, so the slot index of each child's key *is* its input position: an
//! output is written straight into its place in a buffer allocated once, with
//! no sequence stored per child and nothing sorted. The buffer holds
//! `Option`s, so what is still missing is known without `unsafe`, and
//! dropping it (cancellation, an error, a panic) drops each output produced
//! so far exactly once; at the end it becomes the `Vec` of outputs in place
//! (the standard library reuses the allocation when the layouts allow, as
//! they do for `Option<T>` to `T`).

use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::mem;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::future::TryFuture;

use crate::engine::core::{Core, Step};
use crate::engine::lanes::Priority;
use crate::sets::iter::IterPinRef;

/// The futures of `iter` in a fresh core, and a buffer with one empty place
/// per future.
fn start<F, T>(iter: impl IntoIterator<Item = F>) -> (Core<F>, Vec<Option<T>>) {
    let core = Core::new();
    let mut len = 0;
    for future in iter {
        let key = core.push(future, Priority::NORMAL);
        // A fresh core fills indices 0, 1, 2, ... in push order.
        debug_assert_eq!(key.index(), len, "slot index is the input position");
        len += 1;
    }
    let mut outputs = Vec::new();
    outputs.resize_with(len, || None);
    (core, outputs)
}

/// The outputs, in input order, once every place is filled.
fn finish<T>(outputs: &mut Vec<Option<T>>) -> Vec<T> {
    mem::take(outputs)
        .into_iter()
        .map(|output| {
            // Every child wrote its place before the core ran empty, unless
            // one panicked and the join was polled again after the panic.
            output.expect("join polled again after one of its futures panicked")
        })
        .collect()
}

/// The pending futures, for `Debug`.
struct PendingFutures<'a, F>(&'a Core<F>);

impl<F: fmt::Debug> fmt::Debug for PendingFutures<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(IterPinRef::new(self.0)).finish()
    }
}

/// Future for [`join_all`]: the outputs of all its futures, in input order.
///
/// A drop-in replacement for `futures::future::JoinAll`.
///
/// ```
/// use velodrome::{join_all, JoinAll};
///
/// # futures::executor::block_on(async {
/// let join: JoinAll<_> = (1..=3).map(|i| async move { i * 10 }).collect();
/// assert_eq!(join.await, [10, 20, 30]);
/// # });
/// ```
///
/// # Fairness
///
/// The futures are polled by the same engine as
/// [`FuturesUnordered`](crate::FuturesUnordered)'s: only those that were
/// woken, each at most once per cycle, so a future that keeps waking itself
/// cannot starve the others, and a poll costs the number of futures woken,
/// not the number in the list.
///
/// # Cooperative scheduling
///
/// With the `tokio` feature (on by default) the futures are polled inside
/// the parent task's budget: none is polled once the budget is exhausted,
/// and after 128 of them have finished the join spends the rest of the
/// task's budget and yields, even when they spend no budget themselves.
/// Outside a tokio runtime nothing changes.
///
/// # Bad input
///
/// - Dropping the join drops every future still running and every output
///   produced so far, each exactly once, even if one of their `Drop`s
///   panics.
/// - A future that panics in `poll` is dropped before the panic continues.
///   Polling the join again after catching that panic polls the others and
///   then panics, since the output at that position is missing.
/// - Polling after completion returns an empty `Vec`, as futures-util's
///   `JoinAll` does.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct JoinAll<F>
where
    F: Future,
{
    core: Core<F>,
    /// Place `i` holds the output of the `i`-th future once it finished.
    outputs: Vec<Option<F::Output>>,
}

/// Creates a future that runs every future of `iter` concurrently and
/// resolves to their outputs, in the order `iter` gave the futures.
///
/// A drop-in replacement for `futures::future::join_all`: the same
/// signature, so changing the `use` line is the whole migration. It
/// allocates the same handful of times whatever the number of futures
/// (storage grows in pages that double, so a few more per doubling), not
/// once per future.
///
/// ```
/// use velodrome::join_all; // was: use futures::future::join_all;
///
/// async fn foo(i: u32) -> u32 { i }
///
/// # futures::executor::block_on(async {
/// let futures = vec![foo(1), foo(2), foo(3)];
/// assert_eq!(join_all(futures).await, [1, 2, 3]);
/// # });
/// ```
pub fn join_all<I>(iter: I) -> JoinAll<I::Item>
where
    I: IntoIterator,
    I::Item: Future,
{
    let (core, outputs) = start(iter);
    JoinAll { core, outputs }
}

// The core never moves a child (its pages are address-stable), and the
// outputs are never pinned.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F> Future for JoinAll<F>
where
    F: Future,
{
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        let this = self.get_mut();
        loop {
            let polled = this.core.poll_next_with(cx, Step::future);
            match polled {
                Poll::Ready(Some((key, output))) => this.outputs[key.index()] = Some(output),
                Poll::Ready(None) => return Poll::Ready(finish(&mut this.outputs)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<F> fmt::Debug for JoinAll<F>
where
    F: Future + fmt::Debug,
    F::Output: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("pending", &PendingFutures(&self.core))
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl<F: Future> FromIterator<F> for JoinAll<F> {
    fn from_iter<T: IntoIterator<Item = F>>(iter: T) -> Self {
        join_all(iter)
    }
}

/// Future for [`try_join_all`]: the `Ok` outputs of all its futures in input
/// order, or the first error.
///
/// A drop-in replacement for `futures::future::TryJoinAll`.
///
/// ```
/// use velodrome::{try_join_all, TryJoinAll};
///
/// # futures::executor::block_on(async {
/// let join: TryJoinAll<_> = (1..=3).map(|i| async move { Ok::<_, ()>(i) }).collect();
/// assert_eq!(join.await, Ok(vec![1, 2, 3]));
/// # });
/// ```
///
/// # Fairness
///
/// As for [`JoinAll`]: only woken futures are polled, each at most once per
/// cycle.
///
/// # Cooperative scheduling
///
/// As for [`JoinAll`]: inside a tokio runtime, no future is polled once the
/// task's budget is exhausted, and the join yields after at most 128 of
/// them have finished.
///
/// # Errors
///
/// The first future to fail ends the join at once, whatever the number of
/// futures: the error is returned from that very poll, and the futures still
/// running and the outputs produced so far are dropped before it is
/// returned. (futures-util's `TryJoinAll` of more than 30 futures returns an
/// error only once every future before it in the list has finished,
/// futures-rs#2866.)
///
/// # Bad input
///
/// As for [`JoinAll`]; polling after completion (or after the error)
/// returns `Ok` of an empty `Vec`, as futures-util's `TryJoinAll` of up to
/// 30 futures does.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct TryJoinAll<F>
where
    F: TryFuture,
{
    core: Core<F>,
    /// Place `i` holds the `Ok` output of the `i`-th future once it finished.
    outputs: Vec<Option<F::Ok>>,
    /// The auto traits of futures-util's `TryJoinAll`, whose queue holds
    /// errors too: `Send` / `Sync` only if `F::Error` is.
    _error: PhantomData<F::Error>,
}

/// Creates a future that runs every future of `iter` concurrently and
/// resolves to their `Ok` outputs in the order `iter` gave the futures, or
/// to the first error, as soon as it happens (the others are then dropped).
///
/// A drop-in replacement for `futures::future::try_join_all`: the same
/// signature, so changing the `use` line is the whole migration. Unlike
/// futures-util's, the first error is returned as soon as its future fails
/// at any number of futures (futures-rs#2866), and the join allocates the
/// same handful of times whatever the number of futures.
///
/// ```
/// use futures::future::{err, ok};
/// use velodrome::try_join_all; // was: use futures::future::try_join_all;
///
/// # futures::executor::block_on(async {
/// let futures = vec![ok::<u32, u32>(1), ok(2), ok(3)];
/// assert_eq!(try_join_all(futures).await, Ok(vec![1, 2, 3]));
///
/// let futures = vec![ok::<u32, u32>(1), err(2), ok(3)];
/// assert_eq!(try_join_all(futures).await, Err(2));
/// # });
/// ```
pub fn try_join_all<I>(iter: I) -> TryJoinAll<I::Item>
where
    I: IntoIterator,
    I::Item: TryFuture,
{
    let (core, outputs) = start(iter);
    TryJoinAll {
        core,
        outputs,
        _error: PhantomData,
    }
}

// As for `JoinAll`: children never move, nothing else is pinned.
impl<F: TryFuture> Unpin for TryJoinAll<F> {}

impl<F> Future for TryJoinAll<F>
where
    F: TryFuture,
{
    type Output = Result<Vec<F::Ok>, F::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let polled = this
                .core
                .poll_next_with(cx, |child, cx| match child.try_poll(cx) {
                    Poll::Ready(result) => Step::Done(result),
                    Poll::Pending => Step::Pending,
                });
            match polled {
                Poll::Ready(Some((key, Ok(output)))) => this.outputs[key.index()] = Some(output),
                Poll::Ready(Some((_, Err(error)))) => {
                    // Stop now: drop the futures still running, then the
                    // outputs (a guard drops them even if a future's `Drop`
                    // unwinds), then report.
                    let _outputs = mem::take(&mut this.outputs);
                    this.core.clear();
                    return Poll::Ready(Err(error));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(finish(&mut this.outputs))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<F> fmt::Debug for TryJoinAll<F>
where
    F: TryFuture + fmt::Debug,
    F::Ok: fmt::Debug,
    F::Error: fmt::Debug,
    F::Output: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoinAll")
            .field("pending", &PendingFutures(&self.core))
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl<F> FromIterator<F> for TryJoinAll<F>
where
    F: TryFuture,
{
    fn from_iter<T: IntoIterator<Item = F>>(iter: T) -> Self {
        try_join_all(iter)
    }
}
