//! The API every set type shares, generated once over the shared core so
//! the three types cannot drift apart: construction, push and keys, lanes,
//! clearing, iteration, and the std traits.
//!
//! `impl_set_api!(Type, "a child expression")` expects `Type<T>` to be a
//! struct with one field `core: Core<T>`; the expression is used in the
//! generated doc examples.

macro_rules! impl_set_api {
    ($Set:ident, $child:literal) => {
        impl<T> $Set<T> {
            /// An empty set. Allocates only a small shared header; storage
            /// grows with the first push.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// assert_eq!(set.len(), 1);
            /// ```
            pub fn new() -> Self {
                Self { core: $crate::engine::core::Core::new() }
            }

            /// Number of children in the set.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// assert_eq!(set.len(), 1);
            /// ```
            #[inline]
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether the set has no children.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::<std::future::Pending<()>>::new();")]
            /// assert!(set.is_empty());
            /// ```
            #[inline]
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Adds a child in the [`Priority::NORMAL`](crate::Priority::NORMAL) lane.
            ///
            /// Takes `&self`: pushes from several threads at once are safe.
            /// The child is not polled here but by the next `poll_next`.
            /// A push into a slot freed by an earlier child allocates
            /// nothing.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// assert_eq!(set.len(), 1);
            /// ```
            #[inline]
            pub fn push(&self, child: T) {
                self.core.push(child, $crate::Priority::NORMAL);
            }

            /// Adds a child in the lane of `priority`.
            ///
            /// # Panics
            ///
            /// Aborts the process if the set would hold more than 2^31
            /// children (the index space of its pages).
            ///
            /// ```
            /// use velodrome::Priority;
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push_with_priority(", $child, ", Priority::HIGH);")]
            /// assert_eq!(set.len(), 1);
            /// ```
            #[inline]
            pub fn push_with_priority(&self, child: T, priority: $crate::Priority) {
                self.core.push(child, priority);
            }

            /// Adds a child in the `NORMAL` lane and returns its [`Key`](crate::Key).
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("let key = set.insert(", $child, ");")]
            /// assert!(set.contains(key));
            /// ```
            #[inline]
            pub fn insert(&self, child: T) -> $crate::Key {
                self.core.push(child, $crate::Priority::NORMAL)
            }

            /// Adds a child in the lane of `priority` and returns its
            /// [`Key`](crate::Key).
            ///
            /// ```
            /// use velodrome::Priority;
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("let key = set.insert_with_priority(", $child, ", Priority::LOW);")]
            /// assert!(set.contains(key));
            /// ```
            #[inline]
            pub fn insert_with_priority(&self, child: T, priority: $crate::Priority) -> $crate::Key {
                self.core.push(child, priority)
            }

            /// A [`PushHandle`](crate::PushHandle) that pushes into this set
            /// from other tasks and threads while it is polled here. While
            /// any handle lives, the set waits for pushes instead of ending
            /// when empty.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            /// let handle = set.handle();
            /// std::thread::scope(|s| {
            #[doc = concat!("    s.spawn(|| handle.push(", $child, ").unwrap());")]
            /// });
            /// // Adopted by the next poll (or `iter_mut`, `cancel`, ...).
            /// assert_eq!(set.len(), 0);
            /// ```
            pub fn handle(&self) -> $crate::PushHandle<T> {
                $crate::PushHandle::new(self.core.new_handle())
            }

            /// Moves every child of `other` into this set, oldest first,
            /// each in its own lane, without re-boxing or re-allocating
            /// them (pushes through `other`'s handles so far included);
            /// `other` is left with no children. Each moved child is polled
            /// in this set's next cycle of its lane, so it registers this
            /// set's waker (one poll it did not ask for, which futures
            /// allow). Their keys in `other` no longer match anything.
            /// Outputs `other` keeps from a `progress_while` stay there (a
            /// stream whose item `other` keeps moves and is polled again
            /// here), as do later pushes through `other`'s handles.
            ///
            /// Needs `T: Unpin`: a child `other` has polled is pinned in
            /// `other`'s storage and may only move if it is `Unpin` (boxed
            /// futures are).
            ///
            /// ```
            #[doc = concat!("let mut a = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("let mut b = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("a.push(", $child, ");")]
            #[doc = concat!("b.push(", $child, ");")]
            /// a.append(&mut b);
            /// assert_eq!((a.len(), b.len()), (2, 0));
            /// ```
            pub fn append(&mut self, other: &mut Self)
            where
                T: Unpin,
            {
                self.core.append(&mut other.core);
            }

            /// Whether the child `key` names is still in the set.
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("let key = set.insert(", $child, ");")]
            /// assert!(set.contains(key));
            /// set.cancel(key);
            /// assert!(!set.contains(key));
            /// ```
            #[inline]
            pub fn contains(&self, key: $crate::Key) -> bool {
                self.core.find(key).is_some()
            }

            /// Drops the child `key` names, in place, and returns whether it
            /// was there. Its waker then does nothing, and the key matches
            /// nothing, even after a new child reuses the slot.
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("let key = set.insert(", $child, ");")]
            /// assert!(set.cancel(key));
            /// assert!(!set.cancel(key));
            /// assert!(set.is_empty());
            /// ```
            pub fn cancel(&mut self, key: $crate::Key) -> bool {
                self.core.cancel(key)
            }

            /// Takes the child `key` names out of the set.
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("let key = set.insert(", $child, ");")]
            /// assert!(set.remove(key).is_some());
            /// assert!(set.remove(key).is_none());
            /// ```
            pub fn remove(&mut self, key: $crate::Key) -> Option<T>
            where
                T: Unpin,
            {
                self.core.remove_with(key, |child| {
                    // SAFETY: `remove_with` vacated the slot, so we own the
                    // child; it is `Unpin`, so moving it out is fine.
                    unsafe { core::ptr::read(child) }
                })
            }

            /// The child `key` names, pinned, if it is still in the set.
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("let key = set.insert(", $child, ");")]
            /// assert!(set.get_pin_mut(key).is_some());
            /// ```
            pub fn get_pin_mut(&mut self, key: $crate::Key) -> Option<core::pin::Pin<&mut T>> {
                self.core.get_pin_mut(key)
            }

            /// Removes every child, dropping each exactly once, even if one
            /// of their `Drop`s panics. The set keeps its storage for reuse.
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// set.clear();
            /// assert!(set.is_empty());
            /// ```
            pub fn clear(&mut self) {
                self.core.clear();
            }

            /// What the set's poller has done so far: child polls, outputs,
            /// cycles, children found woken, yields by reason, polls per
            /// lane and the longest a lane waited. Plain counters kept by
            /// the poller; see [`Stats`](crate::Stats).
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// assert_eq!(set.stats().polls, 0, "pushing polls nothing");
            /// ```
            pub fn stats(&self) -> $crate::Stats {
                self.core.stats()
            }

            /// The lower-lane share: while higher lanes keep having work, a
            /// lower lane with woken children waits for at most this many
            /// higher-lane polls before one of its children is polled.
            /// Default 16.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::<std::future::Pending<()>>::new();")]
            /// assert_eq!(set.starvation_bound(), 16);
            /// ```
            pub fn starvation_bound(&self) -> u32 {
                self.core.shares().bound
            }

            /// Sets the lower-lane share (see
            /// [`starvation_bound`](Self::starvation_bound)).
            ///
            /// With bound `n` and three lanes, a lane with woken children is
            /// polled at least once per `n + 2` child polls, however busy the
            /// lanes above it are. `n = 0` is treated as 1 (lanes alternate).
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::<std::future::Pending<()>>::new();")]
            /// set.set_starvation_bound(4);
            /// assert_eq!(set.starvation_bound(), 4);
            /// ```
            pub fn set_starvation_bound(&mut self, n: u32) {
                self.core.shares_mut().bound = n.max(1);
            }

            /// Iterates over pinned shared references to the children.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// assert_eq!(std::pin::Pin::new(&set).iter_pin_ref().len(), 1);
            /// ```
            pub fn iter_pin_ref(self: core::pin::Pin<&Self>) -> $crate::IterPinRef<'_, T> {
                $crate::IterPinRef::new(&self.get_ref().core)
            }

            /// Iterates over shared references to the children.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// assert_eq!(set.iter().count(), 1);
            /// ```
            pub fn iter(&self) -> $crate::Iter<'_, T>
            where
                T: Unpin,
            {
                $crate::Iter(core::pin::Pin::new(self).iter_pin_ref())
            }

            /// Iterates over pinned mutable references to the children.
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// assert_eq!(std::pin::Pin::new(&mut set).iter_pin_mut().len(), 1);
            /// ```
            pub fn iter_pin_mut(self: core::pin::Pin<&mut Self>) -> $crate::IterPinMut<'_, T> {
                $crate::IterPinMut::new(&mut self.get_mut().core)
            }

            /// Iterates over mutable references to the children.
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            /// assert_eq!(set.iter_mut().count(), 1);
            /// ```
            pub fn iter_mut(&mut self) -> $crate::IterMut<'_, T>
            where
                T: Unpin,
            {
                $crate::IterMut(core::pin::Pin::new(self).iter_pin_mut())
            }
        }

        /// # Back-pressure
        ///
        /// A set can have a *limit*: [`with_limit`](Self::with_limit) or
        /// [`set_limit`](Self::set_limit). Without one (the default) nothing
        /// changes and nothing costs more. With one:
        ///
        /// - [`try_push`](Self::try_push) and [`try_insert`](Self::try_insert)
        ///   (and their `_with_priority` forms) add the child only while the
        ///   set holds fewer children than the limit, and otherwise hand it
        ///   back inside [`Full`](crate::Full): nothing is dropped. They take
        ///   `&self`, and concurrent ones from any number of threads never
        ///   take the set past its limit.
        /// - [`poll_ready`](Self::poll_ready) waits for room: its task is
        ///   woken when a slot frees (a child completes or ends, is
        ///   cancelled, removed, cleared, or panics) and leaves the set below
        ///   its limit, whichever task polls the set. That is the way for a
        ///   producer task to wait on a set shared with a consumer task.
        /// - [`make_room`](Self::make_room) is the one-task form: it drives
        ///   the set until it has room, handing back each output meanwhile.
        /// - Plain [`push`](Self::push) and [`insert`](Self::insert) (and
        ///   `extend`, `collect`) ignore the limit: they cannot hand a child
        ///   back, and code written for futures-util calls them. The limit
        ///   binds the callers of `try_push`, `poll_ready` and `make_room`.
        ///
        /// A producer task and a consumer task sharing a set of at most 2
        /// children:
        ///
        /// ```
        /// use std::future::poll_fn;
        /// use std::sync::{Arc, Mutex};
        /// use futures::StreamExt;
        #[doc = concat!("use velodrome::", stringify!($Set), ";")]
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        #[doc = concat!("let set = Arc::new(Mutex::new(", stringify!($Set), "::with_limit(2)));")]
        /// let producer = tokio::spawn({
        ///     let set = set.clone();
        ///     async move {
        ///         for _ in 0..10 {
        ///             // Woken by the consumer's task when a slot frees.
        ///             poll_fn(|cx| set.lock().unwrap().poll_ready(cx)).await;
        ///             let set = set.lock().unwrap();
        #[doc = concat!("            set.try_push(", $child, ").expect(\"room, and nobody else pushes\");")]
        ///             assert!(set.len() <= 2);
        ///         }
        ///     }
        /// });
        /// loop {
        ///     let next = poll_fn(|cx| set.lock().unwrap().poll_next_unpin(cx)).await;
        ///     if next.is_none() {
        ///         if producer.is_finished() {
        ///             break;
        ///         }
        ///         tokio::task::yield_now().await;
        ///     }
        /// }
        /// # }
        /// ```
        ///
        /// A limit of 0 means no limit, as in futures-util's adapters
        /// (`buffer_unordered(0)`, `for_each_concurrent(Some(0))`): a set
        /// that could never take a child would make every `poll_ready`
        /// wait forever, which no caller wants.
        impl<T> $Set<T> {
            /// An empty set that [`try_push`](Self::try_push) keeps to at
            /// most `limit` children; 0 means no limit. See
            /// [Back-pressure](#back-pressure).
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::with_limit(1);")]
            #[doc = concat!("assert!(set.try_push(", $child, ").is_ok());")]
            #[doc = concat!("assert!(set.try_push(", $child, ").is_err());")]
            /// assert_eq!(set.limit(), Some(1));
            /// ```
            pub fn with_limit(limit: usize) -> Self {
                let mut set = Self::new();
                set.core.set_limit(Some(limit));
                set
            }

            /// The limit [`try_push`](Self::try_push) keeps to, or `None`.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::<std::future::Pending<()>>::new();")]
            /// assert_eq!(set.limit(), None);
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::<std::future::Pending<()>>::with_limit(8);")]
            /// assert_eq!(set.limit(), Some(8));
            /// ```
            #[inline]
            pub fn limit(&self) -> Option<usize> {
                self.core.limit()
            }

            /// Sets or removes the limit; `None` and `Some(0)` remove it
            /// (a limit of `usize::MAX` is also none).
            ///
            /// Lowering it below [`len`](Self::len) drops nothing: the
            /// children stay, `try_push` refuses and `poll_ready` waits until
            /// enough of them have left. Raising it wakes the tasks waiting
            /// in `poll_ready` if they now have room.
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::new();")]
            #[doc = concat!("set.push(", $child, ");")]
            #[doc = concat!("set.push(", $child, ");")]
            /// set.set_limit(1);
            /// assert_eq!(set.len(), 2);
            #[doc = concat!("assert!(set.try_push(", $child, ").is_err());")]
            /// set.set_limit(None);
            #[doc = concat!("assert!(set.try_push(", $child, ").is_ok());")]
            /// ```
            pub fn set_limit(&mut self, limit: impl Into<Option<usize>>) {
                self.core.set_limit(limit.into());
            }

            /// Whether the set holds as many children as its limit, or more
            /// (never, without a limit). Through `&self`, concurrent pushes
            /// may or may not be counted.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::with_limit(1);")]
            /// assert!(!set.is_full());
            #[doc = concat!("set.push(", $child, ");")]
            /// assert!(set.is_full());
            /// ```
            #[inline]
            pub fn is_full(&self) -> bool {
                !self.core.has_room()
            }

            /// Adds a child in the `NORMAL` lane if the set holds fewer
            /// children than its limit; otherwise hands it back in
            /// [`Full`](crate::Full). Without a limit it always succeeds.
            ///
            /// Takes `&self` like [`push`](Self::push): concurrent calls from
            /// several threads never take the set past its limit. A child
            /// added into a slot freed by an earlier one allocates nothing.
            ///
            /// ```
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::with_limit(1);")]
            #[doc = concat!("assert!(set.try_push(", $child, ").is_ok());")]
            #[doc = concat!("let refused = set.try_push(", $child, ").unwrap_err();")]
            /// let _child = refused.into_inner(); // nothing is lost
            /// assert_eq!(set.len(), 1);
            /// ```
            #[inline]
            pub fn try_push(&self, child: T) -> Result<(), $crate::Full<T>> {
                self.try_insert_with_priority(child, $crate::Priority::NORMAL)
                    .map(drop)
            }

            /// [`try_push`](Self::try_push) into the lane of `priority`.
            ///
            /// ```
            /// use velodrome::Priority;
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::with_limit(1);")]
            #[doc = concat!("assert!(set.try_push_with_priority(", $child, ", Priority::HIGH).is_ok());")]
            #[doc = concat!("assert!(set.try_push_with_priority(", $child, ", Priority::HIGH).is_err());")]
            /// ```
            #[inline]
            pub fn try_push_with_priority(
                &self,
                child: T,
                priority: $crate::Priority,
            ) -> Result<(), $crate::Full<T>> {
                self.try_insert_with_priority(child, priority).map(drop)
            }

            /// [`try_push`](Self::try_push) that returns the child's
            /// [`Key`](crate::Key).
            ///
            /// ```
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::with_limit(1);")]
            #[doc = concat!("let key = set.try_insert(", $child, ").unwrap();")]
            /// assert!(set.contains(key));
            #[doc = concat!("assert!(set.try_insert(", $child, ").is_err());")]
            /// set.cancel(key);
            #[doc = concat!("assert!(set.try_insert(", $child, ").is_ok());")]
            /// ```
            #[inline]
            pub fn try_insert(&self, child: T) -> Result<$crate::Key, $crate::Full<T>> {
                self.try_insert_with_priority(child, $crate::Priority::NORMAL)
            }

            /// [`try_insert`](Self::try_insert) into the lane of `priority`.
            ///
            /// ```
            /// use velodrome::Priority;
            #[doc = concat!("let set = velodrome::", stringify!($Set), "::with_limit(1);")]
            #[doc = concat!("let key = set.try_insert_with_priority(", $child, ", Priority::LOW).unwrap();")]
            /// assert!(set.contains(key));
            /// ```
            #[inline]
            pub fn try_insert_with_priority(
                &self,
                child: T,
                priority: $crate::Priority,
            ) -> Result<$crate::Key, $crate::Full<T>> {
                self.core.try_push(child, priority).map_err($crate::Full::new)
            }

            /// `Ready` when the set holds fewer children than its limit
            /// (always, without one). Otherwise `Pending`, and the task of
            /// `cx` is woken when a slot frees and leaves the set below its
            /// limit, when a raised limit gives it room, or when the set is
            /// dropped: by whichever task polls, cancels, removes, clears or
            /// drops, even if the waiting task never polls the set itself.
            ///
            /// Every task waiting at once is woken (each then checks again),
            /// so several producers can wait on one set. After `Ready`, a
            /// `try_push` made while still holding `&mut self` succeeds.
            /// Waiting allocates only the first time the list of waiting
            /// tasks grows; nothing is paid when no task waits.
            ///
            /// ```
            /// use std::task::{Context, Poll};
            ///
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::with_limit(1);")]
            #[doc = concat!("let key = set.insert(", $child, ");")]
            /// let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            /// assert_eq!(set.poll_ready(&mut cx), Poll::Pending);
            /// set.cancel(key); // wakes the waiting task
            /// assert_eq!(set.poll_ready(&mut cx), Poll::Ready(()));
            /// ```
            pub fn poll_ready(&mut self, cx: &mut core::task::Context<'_>) -> core::task::Poll<()> {
                self.core.poll_room(cx)
            }

            /// Makes room for a push: a future that resolves to `None` as
            /// soon as the set has room, and otherwise polls the set and
            /// resolves to its next output. Call it until it gives `None`;
            /// see [`MakeRoom`](crate::MakeRoom).
            ///
            /// A future that only waited would wait forever here: it holds
            /// `&mut self`, and only `&mut self` frees slots. To wait from a
            /// task that does not poll the set, use
            /// [`poll_ready`](Self::poll_ready).
            ///
            /// ```
            /// # futures::executor::block_on(async {
            #[doc = concat!("let mut set = velodrome::", stringify!($Set), "::with_limit(1);")]
            #[doc = concat!("set.push(", $child, ");")]
            /// while let Some(_output) = set.make_room().await {}
            #[doc = concat!("assert!(set.try_push(", $child, ").is_ok());")]
            /// # });
            /// ```
            pub fn make_room(&mut self) -> $crate::MakeRoom<'_, Self>
            where
                Self: futures_core::Stream,
            {
                $crate::MakeRoom::new(self, |set| set.core.has_room())
            }
        }

        impl<T> Unpin for $Set<T> {}

        impl<T> Default for $Set<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> core::fmt::Debug for $Set<T> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut set = f.debug_struct(stringify!($Set));
                set.field("len", &self.len());
                if let Some(limit) = self.limit() {
                    set.field("limit", &limit);
                }
                set.finish_non_exhaustive()
            }
        }

        impl<T> FromIterator<T> for $Set<T> {
            fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
                let set = Self::new();
                for child in iter {
                    set.push(child);
                }
                set
            }
        }

        impl<T> Extend<T> for $Set<T> {
            fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
                for child in iter {
                    self.push(child);
                }
            }
        }

        impl<T: Unpin> IntoIterator for $Set<T> {
            type Item = T;
            type IntoIter = $crate::IntoIter<T>;

            fn into_iter(self) -> $crate::IntoIter<T> {
                $crate::IntoIter::new(self.core)
            }
        }

        impl<'a, T: Unpin> IntoIterator for &'a $Set<T> {
            type Item = &'a T;
            type IntoIter = $crate::Iter<'a, T>;

            fn into_iter(self) -> $crate::Iter<'a, T> {
                self.iter()
            }
        }

        impl<'a, T: Unpin> IntoIterator for &'a mut $Set<T> {
            type Item = &'a mut T;
            type IntoIter = $crate::IterMut<'a, T>;

            fn into_iter(self) -> $crate::IterMut<'a, T> {
                self.iter_mut()
            }
        }
    };
}

pub(crate) use impl_set_api;
