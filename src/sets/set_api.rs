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

        impl<T> Unpin for $Set<T> {}

        impl<T> Default for $Set<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> core::fmt::Debug for $Set<T> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($Set))
                    .field("len", &self.len())
                    .finish_non_exhaustive()
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
