//! [`FairStreamExt`] and [`FairTryStreamExt`]: the buffered adapters as
//! methods, named so they never clash with futures' `StreamExt` /
//! `TryStreamExt`, which every real user has in scope too.
//!
//! Migrating a call site is one token: `.buffer_unordered(n)` becomes
//! `.fair_buffer_unordered(n)`, and so on.

use core::future::Future;

use futures_core::future::TryFuture;
use futures_core::stream::{Stream, TryStream};

use crate::family::buffered::{BufferUnordered, Buffered, TryBufferUnordered, TryBuffered};
use crate::family::for_each_concurrent::{ForEachConcurrent, TryForEachConcurrent};

/// futures-util's concurrent [`Stream`] adapters on the fair core:
/// `buffered`, `buffer_unordered` and `for_each_concurrent` with a `fair_`
/// prefix.
///
/// Implemented for every [`Stream`]. The names cannot clash with
/// `futures::StreamExt`'s, so both traits can be in scope:
///
/// ```
/// use futures::StreamExt; // keeps working for everything else
/// use velodrome::FairStreamExt;
///
/// # futures::executor::block_on(async {
/// let doubled: Vec<u32> = futures::stream::iter(1..=3)
///     .map(|n| async move { n * 2 })
///     .fair_buffered(2) // was: .buffered(2)
///     .collect()
///     .await;
/// assert_eq!(doubled, [2, 4, 6]);
/// # });
/// ```
///
/// # Limits
///
/// Every limit is `impl Into<Option<usize>>`: `n`, `Some(n)` or `None`.
/// Both `None` and `0` mean "no limit". (futures-util's `buffered(0)` and
/// `buffer_unordered(0)` never pull and hang forever, even on an empty
/// source: rust-lang/futures-rs#2348, #2939, #2981. Its
/// `for_each_concurrent` already reads `0` as "no limit".)
///
/// # What else changes
///
/// - With a limit `n`, a child that finishes frees its slot and the slot is
///   refilled from the source *before* the output is returned, so `n`
///   children are in flight whenever an output comes out and the source has
///   items ready (futures-rs#2961; futures-util refills on the next call).
/// - Without a limit, one call pulls at most 128 items from the source, then
///   goes on with the children; if it has nothing to return it wakes its
///   task and returns `Pending`, and the next call pulls on. futures-util
///   pulls until the source is not ready, so an always-ready infinite source
///   never lets its first call return.
/// - The children are polled fairly (each at most once per cycle) and
///   inside tokio's cooperative budget.
pub trait FairStreamExt: Stream {
    /// Runs the futures this stream yields, at most `n` at once (see
    /// [Limits](Self#limits)), and yields their outputs in the order of the
    /// stream: futures-util's `buffered`.
    ///
    /// ```
    /// use futures::{FutureExt, StreamExt};
    /// use velodrome::FairStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let (tx, rx) = futures::channel::oneshot::channel();
    /// let mut outputs = futures::stream::iter([
    ///     rx.map(Result::unwrap).boxed(),
    ///     futures::future::ready(2).boxed(),
    /// ])
    /// .fair_buffered(0); // 0: no limit
    /// tx.send(1).unwrap();
    /// assert_eq!(outputs.next().await, Some(1));
    /// assert_eq!(outputs.next().await, Some(2));
    /// assert_eq!(outputs.next().await, None);
    /// # });
    /// ```
    fn fair_buffered(self, n: impl Into<Option<usize>>) -> Buffered<Self>
    where
        Self::Item: Future,
        Self: Sized,
    {
        Buffered::new(self, n.into())
    }

    /// Runs the futures this stream yields, at most `n` at once (see
    /// [Limits](Self#limits)), and yields their outputs as they finish:
    /// futures-util's `buffer_unordered`.
    ///
    /// ```
    /// use futures::{FutureExt, StreamExt};
    /// use velodrome::FairStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let (tx, rx) = futures::channel::oneshot::channel();
    /// let mut outputs = futures::stream::iter([
    ///     rx.map(Result::unwrap).boxed(),
    ///     futures::future::ready(2).boxed(),
    /// ])
    /// .fair_buffer_unordered(None);
    /// assert_eq!(outputs.next().await, Some(2));
    /// tx.send(1).unwrap();
    /// assert_eq!(outputs.next().await, Some(1));
    /// assert_eq!(outputs.next().await, None);
    /// # });
    /// ```
    fn fair_buffer_unordered(self, n: impl Into<Option<usize>>) -> BufferUnordered<Self>
    where
        Self::Item: Future,
        Self: Sized,
    {
        BufferUnordered::new(self, n.into())
    }

    /// Runs `f`'s future for every item, at most `limit` at once (see
    /// [Limits](Self#limits)), and completes when the stream has ended and
    /// every future has finished: futures-util's `for_each_concurrent`.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use velodrome::FairStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let seen = Mutex::new(Vec::new());
    /// futures::stream::iter(0..5)
    ///     .fair_for_each_concurrent(2, |n| {
    ///         let seen = &seen;
    ///         async move { seen.lock().unwrap().push(n) }
    ///     })
    ///     .await;
    /// let mut seen = seen.into_inner().unwrap();
    /// seen.sort();
    /// assert_eq!(seen, [0, 1, 2, 3, 4]);
    /// # });
    /// ```
    fn fair_for_each_concurrent<Fut, F>(
        self,
        limit: impl Into<Option<usize>>,
        f: F,
    ) -> ForEachConcurrent<Self, Fut, F>
    where
        F: FnMut(Self::Item) -> Fut,
        Fut: Future<Output = ()>,
        Self: Sized,
    {
        ForEachConcurrent::new(self, limit.into(), f)
    }
}

impl<St: Stream + ?Sized> FairStreamExt for St {}

/// futures-util's concurrent [`TryStream`] adapters on the fair core:
/// `try_buffered`, `try_buffer_unordered` and `try_for_each_concurrent`
/// with a `fair_` prefix.
///
/// Implemented for every [`TryStream`]; the limits and the other changes
/// are [`FairStreamExt`]'s. Errors come out as in futures-util: the
/// buffered streams yield an error (of the source, or of a child) as an
/// item and go on; `fair_try_for_each_concurrent` stops at the first one.
///
/// ```
/// use futures::{StreamExt, TryStreamExt};
/// use velodrome::FairTryStreamExt;
///
/// # futures::executor::block_on(async {
/// let out: Result<Vec<u32>, String> = futures::stream::iter(1..=3)
///     .map(|n| Ok::<_, String>(async move { Ok::<_, String>(n * 2) }))
///     .fair_try_buffered(2) // was: .try_buffered(2)
///     .try_collect()
///     .await;
/// assert_eq!(out, Ok(vec![2, 4, 6]));
/// # });
/// ```
pub trait FairTryStreamExt: TryStream {
    /// Runs the try-futures this stream yields, at most `n` at once, and
    /// yields their results in the order of the stream: futures-util's
    /// `try_buffered`. An error of the source is yielded as soon as it is
    /// pulled.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use velodrome::FairTryStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let out: Vec<Result<u32, ()>> = futures::stream::iter([1, 2])
    ///     .map(|n| Ok(async move { Ok(n) }))
    ///     .fair_try_buffered(None)
    ///     .collect()
    ///     .await;
    /// assert_eq!(out, [Ok(1), Ok(2)]);
    /// # });
    /// ```
    fn fair_try_buffered(self, n: impl Into<Option<usize>>) -> TryBuffered<Self>
    where
        Self::Ok: TryFuture<Error = Self::Error>,
        Self: Sized,
    {
        TryBuffered::new(self, n.into())
    }

    /// Runs the try-futures this stream yields, at most `n` at once, and
    /// yields their results as they finish: futures-util's
    /// `try_buffer_unordered`. An error of the source is yielded as soon as
    /// it is pulled.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use velodrome::FairTryStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let mut out: Vec<Result<u32, ()>> = futures::stream::iter([1, 2])
    ///     .map(|n| Ok(async move { Ok(n) }))
    ///     .fair_try_buffer_unordered(2)
    ///     .collect()
    ///     .await;
    /// out.sort();
    /// assert_eq!(out, [Ok(1), Ok(2)]);
    /// # });
    /// ```
    fn fair_try_buffer_unordered(self, n: impl Into<Option<usize>>) -> TryBufferUnordered<Self>
    where
        Self::Ok: TryFuture<Error = Self::Error>,
        Self: Sized,
    {
        TryBufferUnordered::new(self, n.into())
    }

    /// Runs `f`'s future for every `Ok` item, at most `limit` at once, and
    /// completes with the first error (of the source or of a future), or
    /// `Ok(())` when the stream has ended and every future has finished:
    /// futures-util's `try_for_each_concurrent`. On an error, the source and
    /// the futures still running are dropped.
    ///
    /// ```
    /// use velodrome::FairTryStreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let result = futures::stream::iter([Ok(1), Err("stop"), Ok(3)])
    ///     .fair_try_for_each_concurrent(2, |_| async { Ok(()) })
    ///     .await;
    /// assert_eq!(result, Err("stop"));
    /// # });
    /// ```
    fn fair_try_for_each_concurrent<Fut, F>(
        self,
        limit: impl Into<Option<usize>>,
        f: F,
    ) -> TryForEachConcurrent<Self, Fut, F>
    where
        F: FnMut(Self::Ok) -> Fut,
        Fut: Future<Output = Result<(), Self::Error>>,
        Self: Sized,
    {
        TryForEachConcurrent::new(self, limit.into(), f)
    }
}

impl<St: TryStream + ?Sized> FairTryStreamExt for St {}
