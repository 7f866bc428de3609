//! Iterators over the children of a set, shared by every set type.
//!
//! Every iterator yields the most recently pushed child first, as
//! futures-util's do: it takes the set's push order once when it is made,
//! so pushing and polling pay only a stamp per adopted push. The iterators
//! through `&mut` (and `into_iter`) keep that order in the set's own buffer
//! (no allocation once it has grown; a forgotten one leaks nothing); those
//! through `&` (`iter`, `iter_pin_ref`) own one allocation.

use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr;

use alloc::vec;

use crate::engine::core::Core;

/// Pinned shared references to the children, from `iter_pin_ref`.
pub struct IterPinRef<'a, T> {
    core: &'a Core<T>,
    order: vec::IntoIter<u32>,
    remaining: usize,
}

impl<'a, T> IterPinRef<'a, T> {
    pub(crate) fn new(core: &'a Core<T>) -> Self {
        let order = core.newest_first();
        Self {
            core,
            remaining: order.len(),
            order: order.into_iter(),
        }
    }
}

impl<'a, T> Iterator for IterPinRef<'a, T> {
    type Item = Pin<&'a T>;

    fn next(&mut self) -> Option<Pin<&'a T>> {
        for index in self.order.by_ref() {
            if let Some(child) = self.core.occupant(index as usize) {
                self.remaining -= 1;
                // SAFETY: the child is live (OCCUPIED seen with Acquire) and
                // cannot be removed or moved while `&'a` set is held (S1, S2).
                return Some(unsafe { Pin::new_unchecked(&*child) });
            }
        }
        self.remaining = 0;
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for IterPinRef<'_, T> {}

impl<T> fmt::Debug for IterPinRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterPinRef")
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// Shared references to the children, from `iter`.
#[derive(Debug)]
pub struct Iter<'a, T: Unpin>(pub(crate) IterPinRef<'a, T>);

impl<'a, T: Unpin> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        self.0.next().map(Pin::get_ref)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<T: Unpin> ExactSizeIterator for Iter<'_, T> {}

/// Pinned mutable references to the children, from `iter_pin_mut`.
pub struct IterPinMut<'a, T> {
    core: *const Core<T>,
    /// Position in the set's own `order`.
    next: usize,
    remaining: usize,
    _marker: PhantomData<&'a mut Core<T>>,
}

impl<'a, T> IterPinMut<'a, T> {
    pub(crate) fn new(core: &'a mut Core<T>) -> Self {
        core.adopt_newest_first(false);
        Self {
            next: 0,
            remaining: core.order.len(),
            core,
            _marker: PhantomData,
        }
    }
}

// SAFETY: it stands for the `&'a mut Core<T>` it was made from.
unsafe impl<T: Send> Send for IterPinMut<'_, T> {}
// SAFETY: as above; through `&self` it only reads its own counters.
unsafe impl<T: Sync> Sync for IterPinMut<'_, T> {}

impl<'a, T> Iterator for IterPinMut<'a, T> {
    type Item = Pin<&'a mut T>;

    fn next(&mut self) -> Option<Pin<&'a mut T>> {
        // SAFETY: we stand for an exclusive borrow of the set for `'a`.
        let core = unsafe { &*self.core };
        while let Some(&index) = core.order.get(self.next) {
            self.next += 1;
            if let Some(child) = core.occupant(index as usize) {
                self.remaining -= 1;
                // SAFETY: the child is live, each index is yielded once, so
                // the mutable references are disjoint, and children never
                // move (S2).
                return Some(unsafe { Pin::new_unchecked(&mut *child) });
            }
        }
        self.remaining = 0;
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for IterPinMut<'_, T> {}

impl<T> fmt::Debug for IterPinMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterPinMut")
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// Mutable references to the children, from `iter_mut`.
#[derive(Debug)]
pub struct IterMut<'a, T: Unpin>(pub(crate) IterPinMut<'a, T>);

impl<'a, T: Unpin> Iterator for IterMut<'a, T> {
    type Item = &'a mut T;

    fn next(&mut self) -> Option<&'a mut T> {
        self.0.next().map(Pin::get_mut)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<T: Unpin> ExactSizeIterator for IterMut<'_, T> {}

/// The children by value, from `into_iter`. Dropping it drops the children
/// not yet taken.
pub struct IntoIter<T: Unpin> {
    core: Core<T>,
    /// Position in the set's own `order`.
    next: usize,
}

impl<T: Unpin> IntoIter<T> {
    pub(crate) fn new(mut core: Core<T>) -> Self {
        core.adopt_newest_first(true);
        Self { core, next: 0 }
    }
}

impl<T: Unpin> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        while let Some(&index) = self.core.order.get(self.next) {
            self.next += 1;
            let index = index as usize;
            if self.core.vacate(index).is_some() {
                // SAFETY: `vacate` found a live child and made us its owner
                // (S1); it is `Unpin`, so moving it out is fine.
                return Some(unsafe { ptr::read(self.core.occupant_ptr(index)) });
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.core.len, Some(self.core.len))
    }
}

impl<T: Unpin> ExactSizeIterator for IntoIter<T> {}

impl<T: Unpin> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("remaining", &self.core.len)
            .finish()
    }
}
