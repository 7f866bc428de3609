//! Back-pressure: [`Full`], the error of a push into a set at its limit,
//! and [`MakeRoom`], the future that drives a full set until it has room.
//!
//! The limit itself, `try_push`, `poll_ready` and the waiting tasks live in
//! the core (`Core::try_push`, `Core::poll_room`) and the shared set API.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::stream::Stream;

/// The error of `try_push` and `try_insert` (and their `_with_priority`
/// forms) on a set at its limit: it holds the child that was not added, so
/// nothing is dropped or lost.
///
/// ```
/// use velodrome::FuturesUnordered;
///
/// let set = FuturesUnordered::with_limit(1);
/// set.push(std::future::ready(1));
/// let refused = set.try_push(std::future::ready(2)).unwrap_err();
/// assert_eq!(refused.to_string(), "the set is at its limit");
/// // The child comes back untouched.
/// let child = refused.into_inner();
/// assert_eq!(child.into_inner(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Full<T>(T);

impl<T> Full<T> {
    pub(crate) fn new(child: T) -> Self {
        Full(child)
    }

    /// The child that was refused.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::with_limit(1);
    /// set.push(std::future::ready("first"));
    /// let child = set.try_push(std::future::ready("second")).unwrap_err().into_inner();
    /// assert_eq!(child.into_inner(), "second");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Shows `Full(..)`: the child is not printed, so children need not be
/// `Debug` (futures rarely are) and `unwrap`/`expect` work on any set.
impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the set is at its limit")
    }
}

impl<T> core::error::Error for Full<T> {}

/// Future of `make_room` on a set: resolves to `None` as soon as the set
/// holds fewer children than its limit, and otherwise polls the set like
/// `StreamExt::next` and resolves to its next output.
///
/// Call it in a loop until it gives `None`; then, while you still hold the
/// set, `try_push` succeeds. Every output produced while making room is
/// handed to you, none is dropped.
///
/// ```
/// use velodrome::FuturesUnordered;
///
/// # futures::executor::block_on(async {
/// let mut set = FuturesUnordered::with_limit(2);
/// let mut outputs = Vec::new();
/// for i in 0..5 {
///     while let Some(output) = set.make_room().await {
///         outputs.push(output);
///     }
///     set.try_push(std::future::ready(i)).expect("room was made");
///     assert!(set.len() <= 2);
/// }
/// # });
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct MakeRoom<'a, S> {
    set: &'a mut S,
    has_room: fn(&S) -> bool,
}

impl<'a, S> MakeRoom<'a, S> {
    pub(crate) fn new(set: &'a mut S, has_room: fn(&S) -> bool) -> Self {
        MakeRoom { set, has_room }
    }
}

impl<S: fmt::Debug> fmt::Debug for MakeRoom<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MakeRoom").field("set", &self.set).finish()
    }
}

impl<S: Stream + Unpin> Future for MakeRoom<'_, S> {
    type Output = Option<S::Item>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        if (this.has_room)(this.set) {
            return Poll::Ready(None);
        }
        // An empty set has room (a limit is at least 1), so `None` from the
        // set cannot happen here; it would mean room all the same.
        Pin::new(&mut *this.set).poll_next(cx)
    }
}
