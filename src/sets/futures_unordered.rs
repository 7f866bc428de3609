//! [`FuturesUnordered`]: a set of futures.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use crate::engine::core::{Core, Step};
use crate::sets::key::Key;
use crate::sets::set_api::impl_set_api;

/// A set of futures that completes them in any order, polling each at most
/// once per cycle, highest [`Priority`](crate::Priority) first.
///
/// A drop-in replacement for `futures::stream::FuturesUnordered`: the same
/// methods, receivers, bounds and traits, so changing the `use` line is the
/// whole migration.
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FuturesUnordered; // was: use futures::stream::FuturesUnordered;
///
/// # futures::executor::block_on(async {
/// let set = FuturesUnordered::new();
/// for i in 0..3 {
///     set.push(std::future::ready(i * 10));
/// }
/// let mut out: Vec<i32> = set.collect().await;
/// out.sort();
/// assert_eq!(out, [0, 10, 20]);
/// # });
/// ```
///
/// # Fairness
///
/// A *cycle* of a lane polls the children of that lane that were woken
/// before it started, each once. A wake that arrives during the cycle,
/// including a child waking itself, is served in the next cycle. When a
/// whole cycle produced no output, [`poll_next`](Stream::poll_next) wakes
/// its own task and returns `Pending` rather than starting another cycle in
/// the same call, so one busy child cannot keep the set (or the task) to
/// itself.
///
/// # Priority lanes
///
/// See [`Priority`](crate::Priority) and
/// [`set_starvation_bound`](Self::set_starvation_bound).
///
/// # Keys
///
/// [`insert`](Self::insert) returns a [`Key`] with which one child can be
/// [`cancel`](Self::cancel)led or [`remove`](Self::remove)d;
/// [`poll_next_with_key`](Self::poll_next_with_key) and
/// [`with_keys`](Self::with_keys) tell which child an output came from.
///
/// # Cooperative scheduling
///
/// With the `tokio` feature (on by default), the set takes part in the
/// parent task's budget: it never polls a child once the budget is
/// exhausted, and it yields after at most 128 outputs even when its children
/// spend no budget themselves. Children's own spending is never erased.
/// Outside a tokio runtime nothing changes.
///
/// # Bad input
///
/// - A child that panics in `poll` is dropped and its slot freed before the
///   panic continues; the set stays usable and `len` is right.
/// - A child whose `Drop` panics during [`clear`](Self::clear), `cancel` or
///   the set's drop does not stop the other children from being dropped,
///   exactly once each (a second panic while unwinding aborts, as everywhere
///   in Rust).
/// - A waker may outlive the set, be woken from any thread and any number of
///   times: it then does nothing, and keeps only a small shared header alive.
/// - A stale waker of a finished child does not wake the slot's next
///   occupant (the slot's generation is checked), except for a wake racing
///   with the completion itself, which may cause one spurious poll (per
///   such wake) of the next occupant: futures must tolerate those. A waker
///   carries the low 4 bits of the generation, so a waker kept while its
///   slot is reused 16 times may likewise cause one spurious poll of the
///   occupant of that time. [`Key`]s carry the full generation.
/// - Children never move: their storage is pages that are never moved or
///   freed while the set lives.
pub struct FuturesUnordered<Fut> {
    pub(super) core: Core<Fut>,
}

impl_set_api!(FuturesUnordered, "std::future::ready(1)");

impl<Fut: Future> FuturesUnordered<Fut> {
    /// Like [`poll_next`](Stream::poll_next), with the [`Key`] of the child
    /// the output came from.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use velodrome::FuturesUnordered;
    ///
    /// # futures::executor::block_on(async {
    /// let mut set = FuturesUnordered::new();
    /// let key = set.insert(std::future::ready("hello"));
    /// let got = futures::future::poll_fn(|cx| set.poll_next_with_key(cx)).await;
    /// assert_eq!(got, Some((key, "hello")));
    /// # });
    /// ```
    pub fn poll_next_with_key(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Key, Fut::Output)>> {
        if self.core.has_stashed() {
            // SAFETY: this set keeps only `Fut::Output`s (`progress.rs`), K1.
            return unsafe { self.core.poll_stashed::<Fut::Output>(cx) };
        }
        self.core.poll_next_with(cx, Step::future)
    }

    /// A stream of `(Key, output)` pairs, borrowing the set.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use velodrome::FuturesUnordered;
    ///
    /// # futures::executor::block_on(async {
    /// let mut set = FuturesUnordered::new();
    /// let key = set.insert(std::future::ready(7));
    /// assert_eq!(set.with_keys().next().await, Some((key, 7)));
    /// # });
    /// ```
    pub fn with_keys(&mut self) -> WithKeys<'_, Fut> {
        WithKeys { set: self }
    }
}

impl<Fut: Future> Stream for FuturesUnordered<Fut> {
    type Item = Fut::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        self.get_mut()
            .poll_next_with_key(cx)
            .map(|next| next.map(|(_, output)| output))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.len();
        (len, Some(len))
    }
}

impl<Fut: Future> FusedStream for FuturesUnordered<Fut> {
    fn is_terminated(&self) -> bool {
        self.core.is_terminated()
    }
}

/// Outputs of a [`FuturesUnordered`] with the [`Key`] of their child, from
/// [`FuturesUnordered::with_keys`].
#[derive(Debug)]
pub struct WithKeys<'a, Fut> {
    set: &'a mut FuturesUnordered<Fut>,
}

impl<Fut: Future> Stream for WithKeys<'_, Fut> {
    type Item = (Key, Fut::Output);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().set.poll_next_with_key(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.set.size_hint()
    }
}

impl<Fut: Future> FusedStream for WithKeys<'_, Fut> {
    fn is_terminated(&self) -> bool {
        self.set.is_terminated()
    }
}

mod spawn {
    use futures_task::{FutureObj, LocalFutureObj, LocalSpawn, Spawn, SpawnError};

    use super::FuturesUnordered;

    impl Spawn for FuturesUnordered<FutureObj<'_, ()>> {
        fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
            self.push(future);
            Ok(())
        }
    }

    impl LocalSpawn for FuturesUnordered<LocalFutureObj<'_, ()>> {
        fn spawn_local_obj(&self, future: LocalFutureObj<'static, ()>) -> Result<(), SpawnError> {
            self.push(future);
            Ok(())
        }
    }
}
