//! [`StreamsUnordered`] and [`IndexedStreamsUnordered`]: sets of streams.

use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use crate::engine::core::{Core, Step};
use crate::sets::key::Key;
use crate::sets::set_api::impl_set_api;

/// Merges many streams fairly: each stream is polled at most once per cycle
/// and yields at most one item per poll, so a chatty stream cannot drown
/// quiet ones. A stream that ends is dropped and its slot reused.
///
/// The same lanes, keys, budget behaviour, iteration and traits as
/// [`FuturesUnordered`](crate::FuturesUnordered).
///
/// ```
/// use futures::StreamExt;
/// use velodrome::StreamsUnordered;
///
/// # futures::executor::block_on(async {
/// let set = StreamsUnordered::new();
/// set.push(futures::stream::iter(vec![1, 2, 3]));
/// set.push(futures::stream::iter(vec![10, 20]));
/// let mut items: Vec<i32> = set.collect().await;
/// items.sort();
/// assert_eq!(items, [1, 2, 3, 10, 20]);
/// # });
/// ```
///
/// # Fairness
///
/// A stream that yields an item is queued for the next cycle, behind every
/// stream woken in this one: with `n` streams always ready, items come out
/// round-robin.
pub struct StreamsUnordered<S> {
    pub(super) core: Core<S>,
}

impl_set_api!(StreamsUnordered, "futures::stream::iter([1, 2])");

impl<S: Stream> StreamsUnordered<S> {
    /// Like [`poll_next`](Stream::poll_next), with the [`Key`] of the stream
    /// the item came from.
    ///
    /// ```
    /// use velodrome::StreamsUnordered;
    ///
    /// # futures::executor::block_on(async {
    /// let mut set = StreamsUnordered::new();
    /// let key = set.insert(futures::stream::iter(["a"]));
    /// let got = futures::future::poll_fn(|cx| set.poll_next_with_key(cx)).await;
    /// assert_eq!(got, Some((key, "a")));
    /// # });
    /// ```
    pub fn poll_next_with_key(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Key, S::Item)>> {
        if self.core.has_stashed() {
            // SAFETY: this set keeps only `S::Item`s (`progress.rs`), K1.
            return unsafe { self.core.poll_stashed::<S::Item>(cx) };
        }
        self.core.poll_next_with(cx, Step::stream)
    }
}

impl<S: Stream> Stream for StreamsUnordered<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.get_mut()
            .poll_next_with_key(cx)
            .map(|next| next.map(|(_, item)| item))
    }
}

impl<S: Stream> FusedStream for StreamsUnordered<S> {
    fn is_terminated(&self) -> bool {
        self.core.is_terminated()
    }
}

/// Like [`StreamsUnordered`], but says which stream spoke: it yields
/// `(key, Some(item))` for each item and `(key, None)` once when that
/// stream ends (and is dropped).
///
/// ```
/// use futures::StreamExt;
/// use velodrome::IndexedStreamsUnordered;
///
/// # futures::executor::block_on(async {
/// let mut set = IndexedStreamsUnordered::new();
/// let key = set.insert(futures::stream::iter([1]));
/// assert_eq!(set.next().await, Some((key, Some(1))));
/// assert_eq!(set.next().await, Some((key, None)));
/// assert_eq!(set.next().await, None);
/// # });
/// ```
pub struct IndexedStreamsUnordered<S> {
    pub(super) core: Core<S>,
}

impl_set_api!(IndexedStreamsUnordered, "futures::stream::iter([1, 2])");

impl<S: Stream> Stream for IndexedStreamsUnordered<S> {
    type Item = (Key, Option<S::Item>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.core.has_stashed() {
            // SAFETY: this set keeps only `Option<S::Item>`s (`progress.rs`),
            // K1.
            return unsafe { this.core.poll_stashed::<Option<S::Item>>(cx) };
        }
        this.core.poll_next_with(cx, Step::stream_to_end)
    }
}

impl<S: Stream> FusedStream for IndexedStreamsUnordered<S> {
    fn is_terminated(&self) -> bool {
        self.core.is_terminated()
    }
}
