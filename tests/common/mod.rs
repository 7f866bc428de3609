//! The counting global allocator the allocation tests share: a
//! `const`-initialised thread-local `Cell` counts the allocations (and
//! reallocations) of the current thread, so tests running in parallel do
//! not see each other's, and it needs no allocation of its own. It works
//! under Miri too.
//!
//! A test file uses it with `mod common;` and `common::allocations_during`
//! (or `common::allocations` around an `.await`); `benches/bounded.rs` and
//! `benches/deadlines.rs` include it with `#[path]`.

#![allow(
    dead_code,
    reason = "included by several test and bench targets; each uses a part"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to `System`, counting allocations made by the current thread.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: the slot may be gone while the thread is being torn down.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees are ours; counting touches only a thread-local `Cell`
// and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded unchanged; `ptr` came from `System` through us.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` through us.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` and returns how many allocations (and reallocations) this thread
/// made meanwhile.
pub(crate) fn allocations_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = allocations();
    let result = f();
    (allocations() - before, result)
}

/// Allocations (and reallocations) this thread has made so far; for code
/// that awaits between two counts.
pub(crate) fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}
