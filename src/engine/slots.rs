//! Address-stable storage for the children themselves.
//!
//! The futures live in pages owned by the set (not by the header), so a
//! waker that outlives the set keeps no future's memory alive. Page `p`
//! holds `page_len(p)` slots; pages are allocated on first use, by whichever
//! push needs them first (concurrent pushes race with a CAS), and are never
//! moved or freed before the set is dropped (rule S2). That is what makes
//! pinning sound: a child's address is fixed from push to drop, however the
//! set grows.
//!
//! Whether a slot holds a child is not recorded here but in its record's
//! state word (`state.rs`); this module only hands out places.

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr;

use crate::engine::loom::{AtomicPtr, Ordering::*};
use crate::engine::page::{locate, page_len, MAX_PAGES};

type Slot<F> = UnsafeCell<MaybeUninit<F>>;

pub(crate) struct Slots<F> {
    /// First slot of each allocated page; null when not allocated yet.
    pages: [AtomicPtr<Slot<F>>; MAX_PAGES],
}

impl<F> Slots<F> {
    pub(crate) fn new() -> Self {
        Self {
            pages: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// Pointer to the slot at `(page, offset)` (from `page::locate`),
    /// allocating its page if needed. Concurrent calls are safe; the pointer
    /// is valid until the set drops.
    #[inline]
    pub(crate) fn get_or_alloc(&self, page: usize, offset: usize) -> *mut F {
        // Acquire: pairs with the Release CAS in `alloc`, so another push's
        // page is fully allocated before we use it.
        let mut first = self.pages[page].load(Acquire);
        if first.is_null() {
            first = self.alloc(page);
        }
        // SAFETY: `offset < page_len(page)` by `locate`, inside the page.
        unsafe { first.add(offset).cast() }
    }

    /// Pointer to the slot at `index`, whose page must already exist
    /// because a child was pushed there.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> *mut F {
        let (page, offset) = locate(index);
        self.get_at(page, offset)
    }

    /// `get` for an index already split into `(page, offset)` by `locate`.
    #[inline]
    pub(crate) fn get_at(&self, page: usize, offset: usize) -> *mut F {
        // Relaxed is enough: the caller holds the set exclusively or saw the
        // child's OCCUPIED bit with Acquire, which orders the page's
        // allocation before this load.
        let first = self.pages[page].load(Relaxed);
        debug_assert!(!first.is_null());
        // SAFETY: as in `get_or_alloc`.
        unsafe { first.add(offset).cast() }
    }

    #[cold]
    fn alloc(&self, page: usize) -> *mut Slot<F> {
        let slots: Box<[Slot<F>]> = (0..page_len(page))
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        let raw = Box::into_raw(slots).cast::<Slot<F>>();
        // AcqRel: Release publishes the page; Acquire reads the winner's.
        match self.pages[page].compare_exchange(ptr::null_mut(), raw, AcqRel, Acquire) {
            Ok(_) => raw,
            Err(winner) => {
                // SAFETY: our page was never published, so we free it.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(raw, page_len(page))) });
                winner
            }
        }
    }
}

impl<F> Drop for Slots<F> {
    fn drop(&mut self) {
        // The set dropped every child before dropping its storage, so the
        // slots hold no live values; only the pages are freed here.
        for (page, first) in self.pages.iter_mut().enumerate() {
            // Relaxed: `&mut self` already orders every push before this.
            let first = first.load(Relaxed);
            if !first.is_null() {
                // SAFETY: `first` came from `Box::into_raw` of a boxed slice
                // of `page_len(page)` slots in `alloc`, and is freed once.
                drop(unsafe {
                    Box::from_raw(ptr::slice_from_raw_parts_mut(first, page_len(page)))
                });
            }
        }
    }
}
