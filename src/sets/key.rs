//! [`Key`]: a handle to one child of a set.

/// Names one child of a set, from `insert` / `insert_with_priority`, for
/// `contains`, `get_pin_mut`, `remove` and `cancel`, and next to outputs in
/// `poll_next_with_key`.
///
/// A key holds the slot's index and the generation of the child it was made
/// for. When that child finishes or is removed, the slot's generation moves
/// on, so the key matches nothing, even after a new child reuses the slot.
/// (Generations have 29 bits: a key could only be confused with a child
/// after 2^29 reuses of the same slot while the key was kept.)
///
/// ```
/// use velodrome::FuturesUnordered;
///
/// let mut set = FuturesUnordered::new();
/// let key = set.insert(std::future::pending::<()>());
/// assert!(set.contains(key));
/// assert!(set.cancel(key));
/// assert!(!set.contains(key));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl Key {
    /// The slot index, useful as a dense id among the set's live children
    /// (indices are reused once a child is gone; the key is not).
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::new();
    /// let key = set.insert(std::future::ready(()));
    /// assert_eq!(key.index(), 0);
    /// ```
    pub fn index(self) -> usize {
        self.index as usize
    }
}
