//! [`PushHandle`]: pushes into a set from other tasks and threads while the
//! set is polled elsewhere, and [`Closed`], the error once the set is gone.
//!
//! The queue itself is `engine/inject.rs` (rule I1 in `ARCHITECTURE.md`).

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::engine::header::Header;
use crate::engine::lanes::Priority;

/// Pushes children into a set from anywhere: other tasks, other threads,
/// while the set is being polled by its owner.
///
/// Made by the set's `handle` method ([`FuturesUnordered::handle`],
/// [`StreamsUnordered::handle`], [`IndexedStreamsUnordered::handle`]);
/// cloneable; `Send` and `Sync` when the children are `Send`. A pushed child
/// joins the set at the set's next poll (or any call that adopts pushes,
/// such as `iter_mut` or `cancel`), oldest push first, and the set's task is
/// woken if it was idle. Until then it is not counted by `len`.
///
/// While any handle lives, an empty set does not end: `poll_next` returns
/// `Pending` and the set waits for pushes. When the last handle drops, the
/// set's task is woken and an empty set ends as usual. So
/// `while let Some(x) = set.next().await` runs as long as producers exist,
/// and no channel or `select!` is needed next to the set.
///
/// Once the set is dropped, [`push`](Self::push) hands the child back in
/// [`Closed`]; children pushed before the drop but not adopted yet are
/// dropped with the set.
///
/// A push through a handle allocates one node (the child and its lane);
/// the owner frees it when it adopts the child. It ignores the set's limit,
/// as `push` does. Keys: the handle cannot know the slot the owner will
/// give the child, so it has no `insert`; the owner sees each child's
/// [`Key`](crate::Key) with its output (`poll_next_with_key`).
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FuturesUnordered;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut set = FuturesUnordered::new();
/// let handle = set.handle();
/// let producer = tokio::spawn(async move {
///     for i in 0..3 {
///         handle.push(async move { i * 10 }).unwrap();
///         tokio::task::yield_now().await;
///     }
///     // The handle drops here: the set ends once it has handed out all.
/// });
/// let mut out = Vec::new();
/// while let Some(n) = set.next().await {
///     out.push(n);
/// }
/// out.sort();
/// assert_eq!(out, [0, 10, 20]);
/// producer.await.unwrap();
/// # }
/// ```
///
/// [`FuturesUnordered::handle`]: crate::FuturesUnordered::handle
/// [`StreamsUnordered::handle`]: crate::StreamsUnordered::handle
/// [`IndexedStreamsUnordered::handle`]: crate::IndexedStreamsUnordered::handle
pub struct PushHandle<T> {
    header: NonNull<Header>,
    /// The handle sends `T`s to the set and owns none.
    _marker: PhantomData<fn(T)>,
}

// SAFETY: a handle moves `T`s into the set, possibly from another thread,
// and touches the header only through its atomics (rule I1, S3): `T: Send`
// is all it needs.
unsafe impl<T: Send> Send for PushHandle<T> {}
// SAFETY: `&PushHandle` can only push, as above.
unsafe impl<T: Send> Sync for PushHandle<T> {}

impl<T> PushHandle<T> {
    /// `header` comes from `Core::new_handle`, which took the handle's
    /// reference and counted it as live.
    pub(crate) fn new(header: NonNull<Header>) -> Self {
        PushHandle {
            header,
            _marker: PhantomData,
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: the handle holds a reference to the header (S3).
        unsafe { self.header.as_ref() }
    }

    /// Pushes `child` into the set, in [`Priority::NORMAL`]; the child back
    /// in [`Closed`] if the set is gone.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::new();
    /// let handle = set.handle();
    /// assert!(handle.push(std::future::ready(1)).is_ok());
    /// drop(set);
    /// let refused = handle.push(std::future::ready(2)).unwrap_err();
    /// assert_eq!(refused.into_inner().into_inner(), 2);
    /// ```
    pub fn push(&self, child: T) -> Result<(), Closed<T>> {
        self.push_with_priority(child, Priority::NORMAL)
    }

    /// Pushes `child` into the set in the lane of `priority`; the child back
    /// in [`Closed`] if the set is gone.
    ///
    /// ```
    /// use velodrome::Priority;
    ///
    /// let set = velodrome::FuturesUnordered::new();
    /// let handle = set.handle();
    /// handle.push_with_priority(std::future::ready("urgent"), Priority::HIGH).unwrap();
    /// ```
    pub fn push_with_priority(&self, child: T, priority: Priority) -> Result<(), Closed<T>> {
        let header = self.header();
        match header.inject.push(child, priority) {
            // The pusher that found the queue empty wakes the parent for
            // every push above it (rule I1).
            Ok(true) => {
                // Not if the set was dropped right after the push took.
                if !header.inject.is_closed() {
                    header.parent.wake();
                }
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(child) => Err(Closed(child)),
        }
    }

    /// Whether the set is gone, so every push fails. `false` may be out of
    /// date by the time it is read; `true` is final.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::<std::future::Ready<()>>::new();
    /// let handle = set.handle();
    /// assert!(!handle.is_closed());
    /// drop(set);
    /// assert!(handle.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.header().inject.is_closed()
    }
}

impl<T> Clone for PushHandle<T> {
    /// Another handle to the same set; the set waits for pushes until every
    /// handle is gone.
    fn clone(&self) -> Self {
        let header = self.header();
        header.ref_inc();
        header.inject.add_handle();
        PushHandle::new(self.header)
    }
}

impl<T> Drop for PushHandle<T> {
    fn drop(&mut self) {
        /// Gives up the handle's reference even if the parent's wake panics.
        struct Release(NonNull<Header>);
        impl Drop for Release {
            fn drop(&mut self) {
                // SAFETY: the handle's reference, given up once, here.
                unsafe { Header::ref_dec(self.0) };
            }
        }
        let release = Release(self.header);
        let header = self.header();
        // The last handle: an empty set waiting on handles may end now. Not
        // once the set is gone: its parent waker may still be in the header
        // (the set's drop could not take it out while a wake held it).
        if header.inject.drop_handle() && !header.inject.is_closed() {
            header.parent.wake();
        }
        drop(release);
    }
}

impl<T> fmt::Debug for PushHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushHandle")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The error of a [`PushHandle`] push once its set is gone: it holds the
/// child that was not added, so nothing is dropped or lost.
///
/// ```
/// let set = velodrome::FuturesUnordered::new();
/// let handle = set.handle();
/// drop(set);
/// let refused = handle.push(std::future::ready(7)).unwrap_err();
/// assert_eq!(refused.to_string(), "the set is gone");
/// assert_eq!(refused.into_inner().into_inner(), 7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Closed<T>(T);

impl<T> Closed<T> {
    /// The child that was not pushed.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::new();
    /// let handle = set.handle();
    /// drop(set);
    /// let child = handle.push(std::future::ready("late")).unwrap_err().into_inner();
    /// assert_eq!(child.into_inner(), "late");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Shows `Closed(..)`: the child is not printed, so children need not be
/// `Debug` and `unwrap`/`expect` work on any handle.
impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the set is gone")
    }
}

impl<T> core::error::Error for Closed<T> {}
