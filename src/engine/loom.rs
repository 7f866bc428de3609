//! The one facade for every atomic in the crate.
//!
//! Under `--cfg loom` these are loom's model-checked types; otherwise they
//! are `core`'s. No other module names `core::sync::atomic` directly, so the
//! same protocol code runs under both.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// A word of the woken bitsets, the atomic of [`Word`](crate::engine::page::Word).
pub(crate) type AtomicWord = AtomicUsize;

// Under `cfg(velodrome_tsan)` the header's last reference Acquires with a
// load instead (ThreadSanitizer ignores fences), and nothing uses `fence`.
#[cfg(all(loom, not(velodrome_tsan)))]
pub(crate) use loom::sync::atomic::fence;

#[cfg(all(not(loom), not(velodrome_tsan)))]
pub(crate) use core::sync::atomic::fence;

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` with loom's closure-based API, so accesses to
/// cells shared between threads are checked by loom when it runs.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Aborts the process: used where unwinding could not leave memory sound
/// (a reference count overflow).
#[cfg(feature = "std")]
#[cold]
pub(crate) fn abort() -> ! {
    std::process::abort()
}

/// Aborts without `std`: panics while a guard whose `Drop` panics is live,
/// so with `panic = "unwind"` the second panic happens during the unwind of
/// the first, which Rust turns into an abort; with `panic = "abort"` the
/// first panic aborts. Neither returns or lets the caller's frame go on.
#[cfg(not(feature = "std"))]
#[cold]
pub(crate) fn abort() -> ! {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("velodrome: aborting");
        }
    }
    let _guard = PanicOnDrop;
    panic!("velodrome: reference count overflow, aborting");
}
