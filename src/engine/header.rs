//! The shared header: the one allocation that wakers point into.
//!
//! The header owns what a waker may touch after the set is gone: the
//! reference count, the parent task's waker, the per-lane summary of woken
//! pages, and the record pages (one 16-byte [`Record`] per slot plus the
//! woken bitsets). The set holds one reference and every `Waker` clone
//! holds one (rule S3); the futures themselves live in the set's own
//! storage (`slots.rs`), so a leaked waker keeps only this alive.
//!
//! The atomic protocol over the bits lives in `wake_set.rs`; this module
//! only allocates, finds and frees.

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};

use crate::engine::atomic_waker::AtomicWaker;
use crate::engine::inject::Injector;
use crate::engine::lanes::LANES;
use crate::engine::loom::{self, AtomicPtr, AtomicU32, AtomicUsize, AtomicWord, Ordering::*};
use crate::engine::page::{page_len, page_words, MAX_PAGES, WORD_BITS};

/// Upper bound on references before we abort, as `std::sync::Arc` does.
const MAX_REFS: usize = isize::MAX as usize;

pub(crate) struct Header {
    refs: AtomicUsize,
    /// The parent task, woken when a lane's `tops` word goes from zero to
    /// non-zero (rule W2).
    pub(crate) parent: AtomicWaker,
    /// Per lane: bit `p` is set when page `p` may hold woken bits.
    pub(crate) tops: [AtomicWord; LANES],
    /// Children pushed through handles, for the owner to adopt (rule I1).
    pub(crate) inject: Injector,
    /// Record pages; a non-null entry is never changed again (rule S2).
    pages: [AtomicPtr<RecordPage>; MAX_PAGES],
}

/// Waker records and woken bits for the slots of one page.
pub(crate) struct RecordPage {
    pub(crate) header: NonNull<Header>,
    /// Page number.
    pub(crate) number: usize,
    /// Words per lane run in `woken` (`page_words(number)`).
    pub(crate) words: usize,
    records: Box<[Record]>,
    /// `LANES` runs of `page_words(number)` words: bit `o` of run `l` is set
    /// when the child at offset `o` was woken in lane `l` (rule W1).
    pub(crate) woken: Box<[AtomicWord]>,
    /// `LANES` runs of summary words: bit `w` is set when word `w` of the
    /// lane's run may be non-zero.
    pub(crate) summary: Box<[AtomicWord]>,
}

/// What a waker points at. Aligned so the low `TAG_BITS` bits of its address
/// can carry the generation tag (see `state.rs`).
///
/// A page's records start all zero (vacant, generation 0, no back pointers);
/// the first push into a slot writes the back pointers (`init_record`), so a
/// new page costs no pass over its records.
#[repr(C, align(16))]
pub(crate) struct Record {
    /// The record's page; null until the slot's first occupant.
    page: UnsafeCell<*const RecordPage>,
    /// The record's offset in its page; valid once `page` is set.
    offset: UnsafeCell<u32>,
    pub(crate) state: AtomicU32,
}

/// Types for which all-zero bytes are a valid value, so their arrays can come
/// straight from `alloc_zeroed` (fresh zero pages for large ones).
///
/// # Safety
///
/// All-zero bytes must be a valid value equal to `zero()`.
unsafe trait Zeroed: Sized {
    fn zero() -> Self;
}

// SAFETY: `AtomicWord` (`AtomicUsize`) has the in-memory representation of
// `usize` (its docs).
unsafe impl Zeroed for AtomicWord {
    fn zero() -> Self {
        AtomicWord::new(0)
    }
}

// SAFETY: null pointer, zero offset, and an `AtomicU32` (same representation
// as `u32`) of zero: a vacant, never occupied record.
unsafe impl Zeroed for Record {
    fn zero() -> Self {
        Record {
            page: UnsafeCell::new(ptr::null()),
            offset: UnsafeCell::new(0),
            state: AtomicU32::new(0),
        }
    }
}

/// `len` zero values.
#[cfg(not(loom))]
fn zeroed<T: Zeroed>(len: usize) -> Box<[T]> {
    use alloc::alloc::{alloc_zeroed, handle_alloc_error, Layout};
    let layout = Layout::array::<T>(len).expect("page size fits in memory");
    if layout.size() == 0 {
        return (0..len).map(|_| T::zero()).collect();
    }
    // SAFETY: the layout has a non-zero size.
    let raw = unsafe { alloc_zeroed(layout) }.cast::<T>();
    if raw.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `raw` is a fresh allocation of `layout`, the layout `Box<[T]>`
    // frees with, and its zero bytes are `len` valid `T`s (`Zeroed`).
    unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(raw, len)) }
}

/// `len` zero values. Loom's atomics are not plain memory: build each one.
#[cfg(loom)]
fn zeroed<T: Zeroed>(len: usize) -> Box<[T]> {
    (0..len).map(|_| T::zero()).collect()
}

impl Record {
    /// The record's page. Only for a waker, or anyone else that saw the
    /// slot occupied (the back pointers are written before the first
    /// occupant is published).
    #[inline]
    pub(crate) fn page(&self) -> &RecordPage {
        // SAFETY: written once, by `init_record`, before the Release store that
        // published the slot's first occupant, which every waker of the slot
        // happens after; never written again. Pages live as long as their
        // header (S2), which the caller keeps alive (S3).
        unsafe { &**self.page.get() }
    }

    /// The record's offset in its page; same contract as `page`.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        // SAFETY: as in `page`.
        unsafe { *self.offset.get() as usize }
    }
}

const _: () = assert!(core::mem::align_of::<Record>() >= 1 << crate::engine::state::TAG_BITS);

impl Header {
    /// A new header with one reference, held by the set.
    pub(crate) fn new() -> NonNull<Header> {
        let header = Box::new(Header {
            refs: AtomicUsize::new(1),
            parent: AtomicWaker::new(),
            tops: core::array::from_fn(|_| AtomicWord::new(0)),
            inject: Injector::new(),
            pages: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        });
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(Box::into_raw(header)) }
    }

    /// Takes one more reference (a waker clone).
    #[inline]
    pub(crate) fn ref_inc(&self) {
        // Relaxed: a new reference is made from an existing one, which keeps
        // the header alive; nothing is published (as in `Arc::clone`).
        let old = self.refs.fetch_add(1, Relaxed);
        if old > MAX_REFS {
            loom::abort();
        }
    }

    /// Drops one reference, freeing the header with the last one.
    ///
    /// # Safety
    ///
    /// `this` points to a live header and the caller owns one reference,
    /// which it gives up: it must not use `this` afterwards.
    #[inline]
    pub(crate) unsafe fn ref_dec(this: NonNull<Header>) {
        // SAFETY: the caller's reference keeps the header alive (S3).
        let refs = unsafe { &this.as_ref().refs };
        // Release: every use of the header by this owner happens before the
        // free below, which the last owner orders with Acquire.
        if refs.fetch_sub(1, Release) != 1 {
            return;
        }
        acquire_for_free(refs);
        // SAFETY: that was the last reference, so nothing else can reach the
        // header; it came from `Box::into_raw` in `new`.
        unsafe { Header::free(this) };
    }

    #[cold]
    unsafe fn free(this: NonNull<Header>) {
        // SAFETY: the caller guarantees exclusive ownership (last reference).
        let header = unsafe { Box::from_raw(this.as_ptr()) };
        for page in &header.pages {
            let page = page.load(Relaxed);
            if !page.is_null() {
                // SAFETY: non-null pages came from `Box::into_raw` in
                // `alloc_page` and are freed only here, once.
                drop(unsafe { Box::from_raw(page) });
            }
        }
    }

    /// The record page `number`, if it was allocated.
    #[inline]
    pub(crate) fn page(&self, number: usize) -> Option<&RecordPage> {
        // Acquire: pairs with the Release CAS in `alloc_page`, so the page's
        // contents are initialised before we read them.
        let page = self.pages[number].load(Acquire);
        // SAFETY: a non-null page lives as long as the header (S2).
        unsafe { page.as_ref() }
    }

    /// The record page `number`, allocating it if needed. Safe to call from
    /// concurrent pushes: the loser of the race frees its allocation.
    /// `this` must be the pointer `new` returned for `self`; pages keep it so
    /// the last waker can free the header with its original provenance.
    #[inline]
    pub(crate) fn page_or_alloc(&self, this: NonNull<Header>, number: usize) -> &RecordPage {
        debug_assert!(ptr::eq(this.as_ptr(), self));
        match self.page(number) {
            Some(page) => page,
            None => self.alloc_page(this, number),
        }
    }

    #[cold]
    fn alloc_page(&self, this: NonNull<Header>, number: usize) -> &RecordPage {
        let words = page_words(number);
        let summary_words = words.div_ceil(WORD_BITS);
        let raw = Box::into_raw(Box::new(RecordPage {
            header: this,
            number,
            words,
            records: zeroed(page_len(number)),
            woken: zeroed(LANES * words),
            summary: zeroed(LANES * summary_words),
        }));
        // Release: publishes the initialised page to `page`'s Acquire load.
        // Acquire on failure: we read the winner's page instead.
        match self.pages[number].compare_exchange(ptr::null_mut(), raw, AcqRel, Acquire) {
            // SAFETY: published pages live as long as the header (S2).
            Ok(_) => unsafe { &*raw },
            Err(winner) => {
                // SAFETY: our page was never published; the winner's lives as
                // long as the header (S2).
                unsafe {
                    drop(Box::from_raw(raw));
                    &*winner
                }
            }
        }
    }
}

impl RecordPage {
    /// Writes the back pointers of the record at `offset`, for the push that
    /// claimed its slot as the slot's first occupant ever.
    #[inline]
    pub(crate) fn init_record(&self, offset: usize) {
        let record = self.record(offset);
        // SAFETY: only the push that claimed the slot calls this (S1), once
        // in the slot's life: no waker of the slot (their only other reader)
        // exists yet. Written without a read first, so a fresh zero page is
        // faulted in once, for the write.
        unsafe {
            *record.page.get() = self;
            *record.offset.get() = offset as u32;
        }
    }

    /// Pointer to the record at `offset`, with provenance over the record so
    /// that a waker may keep it.
    #[inline]
    pub(crate) fn record_ptr(&self, offset: usize) -> *const Record {
        self.record(offset)
    }

    /// The record at `offset`, which must come from `page::locate` for this
    /// page (so it is below `page_len(self.number)`).
    #[inline]
    pub(crate) fn record(&self, offset: usize) -> &Record {
        debug_assert!(offset < self.records.len());
        // SAFETY: `locate` returns offsets below the page's length, which is
        // the length of `records` (built in `alloc_page`); this is on every
        // push and poll, so the bounds check is worth removing.
        unsafe { self.records.get_unchecked(offset) }
    }
}

/// The Acquire half of the last reference drop.
#[inline]
fn acquire_for_free(refs: &AtomicUsize) {
    // Acquire: pairs with every other owner's Release decrement, so all their
    // uses happen before the free.
    #[cfg(not(velodrome_tsan))]
    {
        let _ = refs;
        loom::fence(Acquire);
    }
    // ThreadSanitizer does not model fences; an Acquire load of the same
    // counter gives it (and the hardware) the same ordering.
    #[cfg(velodrome_tsan)]
    let _ = refs.load(Acquire);
}
