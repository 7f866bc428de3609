//! The one `RawWakerVTable`: a child's waker is a tagged pointer to its
//! [`Record`].
//!
//! The pointer's low `TAG_BITS` bits carry the generation the waker was made
//! for (rule G1). Cloning increments the header's reference count; waking
//! sets a bit; nothing allocates.

use core::mem::ManuallyDrop;
use core::task::{RawWaker, RawWakerVTable, Waker};

use crate::engine::header::{Header, Record};
use crate::engine::loom::Ordering::*;
use crate::engine::state::{self, TAG_MASK};
use crate::engine::wake_set::MarkOutcome;

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// A waker for the occupant of `record` with generation tag `tag`, borrowed
/// for one poll: it owns no reference, so it must not outlive the set.
/// Clones the child makes take their own reference.
#[inline]
pub(crate) fn borrowed(record: *const Record, tag: usize) -> ManuallyDrop<Waker> {
    let data = record.map_addr(|addr| addr | tag).cast::<()>();
    // SAFETY: the vtable's contract holds for `data` (see each function); the
    // `ManuallyDrop` keeps us from dropping a reference we never took.
    ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) })
}

#[inline]
/// The record and tag behind a waker's data pointer. The lifetime is the
/// caller's: it must not use the record after giving up the waker's
/// reference (as `drop_waker` does last).
fn split<'a>(data: *const ()) -> (&'a Record, usize) {
    let tag = data.addr() & TAG_MASK;
    let record = data.map_addr(|addr| addr & !TAG_MASK).cast::<Record>();
    // SAFETY: every waker made by `borrowed` or `clone` points to a record
    // in a page of a header it (or, for the borrowed one, the set) holds a
    // reference to; pages live as long as the header (S2, S3).
    let record = unsafe { &*record };
    (record, tag)
}

#[inline]
fn header_of(record: &Record) -> &Header {
    // SAFETY: the record's page and header outlive the record (S2, S3).
    unsafe { record.page().header.as_ref() }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    let (record, _) = split(data);
    header_of(record).ref_inc();
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    /// Gives up the waker's reference when dropped, also while unwinding
    /// from a parent waker that panics, so the header is never leaked.
    struct DropReference(*const ());
    impl Drop for DropReference {
        fn drop(&mut self) {
            // SAFETY: `wake`'s caller gave us this waker's reference, and
            // nothing uses the waker after this guard.
            unsafe { drop_waker(self.0) }
        }
    }

    let reference = DropReference(data);
    // SAFETY: the reference the guard holds keeps the header alive until
    // after the wake.
    unsafe { wake_by_ref(data) };
    drop(reference);
}

unsafe fn wake_by_ref(data: *const ()) {
    let (record, tag) = split(data);
    // Acquire: pairs with the Release store that occupied the slot, so the
    // lane we read belongs to the occupant our tag names.
    let current = record.state.load(Acquire);
    if !state::is_occupied(current) || state::tag(current) != tag {
        // The child finished (or the set is gone): a stale wake is a no-op
        // (rule G1).
        return;
    }
    let page = record.page();
    let header = header_of(record);
    if page.mark(header, state::lane(current), record.offset()) == MarkOutcome::NotifyParent {
        // Rule R1: the bits are set before the parent is woken.
        header.parent.wake();
    }
}

unsafe fn drop_waker(data: *const ()) {
    let (record, _) = split(data);
    // SAFETY: the page holds the header pointer it was created with, and the
    // caller gives up this waker's reference.
    unsafe { Header::ref_dec(record.page().header) };
}
