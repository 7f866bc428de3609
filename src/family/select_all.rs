//! [`select_all`] and [`SelectAll`]: futures-util's stream merger, on
//! [`StreamsUnordered`].
//!
//! futures-util keeps each stream in a `FuturesUnordered<StreamFuture<St>>`:
//! every item takes the stream out of its task and pushes it back, one
//! allocation per item. Here a stream stays in its slot for its whole life;
//! after an item it is queued for the next cycle (rule C1), so an item costs
//! no allocation.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use crate::sets::iter::{IntoIter, Iter, IterMut};
use crate::sets::progress::ProgressWhile;
use crate::sets::streams_unordered::StreamsUnordered;

/// An unbounded set of streams, merged fairly: a drop-in replacement for
/// `futures::stream::SelectAll`.
///
/// The same methods, bounds and traits as futures-util's; change the `use`
/// line. It is a [`StreamsUnordered`] underneath, so each stream is polled
/// at most once per cycle and yields at most one item per poll, and an item
/// costs no allocation (futures-util allocates once per item).
///
/// ```
/// use futures::StreamExt;
/// use velodrome::SelectAll; // was: use futures::stream::SelectAll;
///
/// # futures::executor::block_on(async {
/// let mut merged = SelectAll::new();
/// merged.push(futures::stream::iter([1, 2]));
/// merged.push(futures::stream::iter([10, 20]));
/// let mut items: Vec<i32> = merged.collect().await;
/// items.sort();
/// assert_eq!(items, [1, 2, 10, 20]);
/// # });
/// ```
///
/// # Fairness
///
/// A stream that yields an item is queued behind every stream woken in the
/// current cycle: with `n` streams always ready, items come out round-robin
/// (futures-util does the same, by re-pushing the stream). A stream that
/// keeps waking itself without yielding is polled once per cycle, so it
/// cannot keep its siblings waiting.
///
/// # Cooperative scheduling
///
/// As [`StreamsUnordered`]: with the `tokio` feature (default), it polls no
/// stream once the task's budget is exhausted and yields after at most 128
/// items even when its streams spend no budget themselves.
#[must_use = "streams do nothing unless polled"]
pub struct SelectAll<St> {
    inner: StreamsUnordered<St>,
}

impl<St: Stream + Unpin> SelectAll<St> {
    /// An empty set: polling it returns `Ready(None)` until a stream is
    /// pushed.
    ///
    /// ```
    /// let merged = velodrome::SelectAll::<futures::stream::Empty<u8>>::new();
    /// assert!(merged.is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            inner: StreamsUnordered::new(),
        }
    }

    /// Number of streams in the set; a stream leaves it when it ends.
    ///
    /// ```
    /// use futures::stream::iter;
    ///
    /// let merged = velodrome::select_all([iter([1]), iter([9])]);
    /// assert_eq!(merged.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the set holds no streams.
    ///
    /// ```
    /// let mut merged = velodrome::SelectAll::new();
    /// assert!(merged.is_empty());
    /// merged.push(futures::stream::iter([1]));
    /// assert!(!merged.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// What the merger's poller has done so far (see
    /// [`Stats`](crate::Stats)).
    ///
    /// ```
    /// let merged = velodrome::select_all([futures::stream::iter([1, 2])]);
    /// assert_eq!(merged.stats().polls, 0);
    /// ```
    pub fn stats(&self) -> crate::Stats {
        self.inner.stats()
    }

    /// Adds a stream. It is not polled here but by the next `poll_next`;
    /// a push into the slot of an ended stream allocates nothing.
    ///
    /// ```
    /// use futures::StreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let mut merged = velodrome::SelectAll::new();
    /// merged.push(futures::stream::iter([7]));
    /// assert_eq!(merged.next().await, Some(7));
    /// # });
    /// ```
    pub fn push(&mut self, stream: St) {
        self.inner.push(stream);
    }

    /// A [`PushHandle`](crate::PushHandle) that adds streams from other
    /// tasks and threads while this one is polled. While any handle lives,
    /// an empty `SelectAll` waits for streams instead of ending.
    ///
    /// ```
    /// use futures::StreamExt;
    ///
    /// # futures::executor::block_on(async {
    /// let mut merged = velodrome::SelectAll::new();
    /// let handle = merged.handle();
    /// std::thread::spawn(move || handle.push(futures::stream::iter(vec![1, 2])).unwrap());
    /// // Ends once the handle is gone and the stream is exhausted.
    /// assert_eq!(merged.collect::<Vec<_>>().await, [1, 2]);
    /// # });
    /// ```
    pub fn handle(&self) -> crate::PushHandle<St> {
        self.inner.handle()
    }

    /// Iterates over shared references to the streams.
    ///
    /// ```
    /// use futures::stream::iter;
    ///
    /// let merged = velodrome::select_all([iter([1]), iter([9])]);
    /// assert_eq!(merged.iter().count(), 2);
    /// ```
    pub fn iter(&self) -> Iter<'_, St> {
        self.inner.iter()
    }

    /// Iterates over mutable references to the streams.
    ///
    /// ```
    /// use futures::stream::iter;
    ///
    /// let mut merged = velodrome::select_all([iter([1]), iter([9])]);
    /// assert_eq!(merged.iter_mut().count(), 2);
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, St> {
        self.inner.iter_mut()
    }

    /// Drops every stream, each exactly once; the set keeps its storage and
    /// is no longer terminated.
    ///
    /// ```
    /// let mut merged = velodrome::select_all([futures::stream::iter([1])]);
    /// merged.clear();
    /// assert!(merged.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.inner.clear();
    }
}

/// Merges `streams` into one [`SelectAll`]: a drop-in replacement for
/// `futures::stream::select_all`.
///
/// ```
/// use futures::stream::iter;
/// use futures::StreamExt;
///
/// # futures::executor::block_on(async {
/// let merged = velodrome::select_all([iter(0..=2), iter(10..=11)]);
/// // Always-ready streams take turns.
/// assert_eq!(merged.collect::<Vec<_>>().await, [0, 10, 1, 11, 2]);
/// # });
/// ```
pub fn select_all<I>(streams: I) -> SelectAll<I::Item>
where
    I: IntoIterator,
    I::Item: Stream + Unpin,
{
    let mut set = SelectAll::new();
    for stream in streams {
        set.push(stream);
    }
    set
}

impl<St: Stream + Unpin> Default for SelectAll<St> {
    fn default() -> Self {
        Self::new()
    }
}

impl<St> fmt::Debug for SelectAll<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectAll")
            .field("len", &self.inner.len())
            .finish_non_exhaustive()
    }
}

impl<St: Stream + Unpin> Stream for SelectAll<St> {
    type Item = St::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<St::Item>> {
        Pin::new(&mut self.get_mut().inner).poll_next(cx)
    }

    // `size_hint` is the default `(0, None)`, as in futures-util.
}

impl<St: Stream + Unpin> FusedStream for SelectAll<St> {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<St: Stream + Unpin> FromIterator<St> for SelectAll<St> {
    fn from_iter<T: IntoIterator<Item = St>>(iter: T) -> Self {
        select_all(iter)
    }
}

impl<St: Stream + Unpin> Extend<St> for SelectAll<St> {
    fn extend<T: IntoIterator<Item = St>>(&mut self, iter: T) {
        for stream in iter {
            self.push(stream);
        }
    }
}

impl<St: Stream + Unpin> IntoIterator for SelectAll<St> {
    type Item = St;
    type IntoIter = IntoIter<St>;

    fn into_iter(self) -> IntoIter<St> {
        self.inner.into_iter()
    }
}

impl<'a, St: Stream + Unpin> IntoIterator for &'a SelectAll<St> {
    type Item = &'a St;
    type IntoIter = Iter<'a, St>;

    fn into_iter(self) -> Iter<'a, St> {
        self.iter()
    }
}

impl<'a, St: Stream + Unpin> IntoIterator for &'a mut SelectAll<St> {
    type Item = &'a mut St;
    type IntoIter = IterMut<'a, St>;

    fn into_iter(self) -> IterMut<'a, St> {
        self.iter_mut()
    }
}

/// # Progress while the loop body runs
impl<St: Stream + Unpin> SelectAll<St> {
    /// Runs `body` and, while it is pending, the set's streams, keeping one
    /// item per stream for the next `next()` calls: a stream that yielded is
    /// not polled again until its item is handed out. As
    /// [`StreamsUnordered::progress_while`], which it is; requires
    /// `St::Item: Send`. See [`ProgressWhile`].
    ///
    /// ```
    /// use futures::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut merged = velodrome::select_all([futures::stream::iter([1, 2])]);
    /// merged.progress_while(tokio::task::yield_now()).await;
    /// assert_eq!(merged.next().await, Some(1)); // kept during the body
    /// assert_eq!(merged.next().await, Some(2));
    /// # }
    /// ```
    pub fn progress_while<B: Future>(&mut self, body: B) -> ProgressWhile<'_, Self, B>
    where
        St::Item: Send,
    {
        ProgressWhile::new(self, body, |set, cx| set.inner.poll_progress(cx))
    }
}
