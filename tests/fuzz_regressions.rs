//! Findings of the fuzz target (`fuzz/fuzz_targets/script.rs`), each as a
//! plain test with the minimised input it came from.

#![cfg(panic = "unwind")]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_core::Stream;
use velodrome::{FuturesUnordered, StreamsUnordered};

/// A parent task's waker that panics on every wake (as in tokio's
/// `test_panicky_waker`).
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("the parent waker panics");
    }
}

/// A child that never finishes and counts its drops: a future and a stream.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl std::future::Future for Counted {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Stream for Counted {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<()>> {
        Poll::Pending
    }
}

/// Fuzz input `[141, 42, 33, 0, 33]`: a `StreamsUnordered` polled once
/// (empty) with a parent waker that panics, then a push, then the set's
/// drop. The drop adopts the push, which turns an idle lane woken and wakes
/// the registered parent; that wake panics out of the set's `Drop` before
/// the children are dropped, so the child is never dropped and leaks.
#[test]
fn set_drop_drops_children_when_the_parent_waker_panics() {
    let drops = Arc::new(AtomicUsize::new(0));
    let waker = Waker::from(Arc::new(PanickingWaker));
    let mut cx = Context::from_waker(&waker);

    let mut streams = StreamsUnordered::new();
    assert!(matches!(
        Pin::new(&mut streams).poll_next(&mut cx),
        Poll::Ready(None)
    ));
    streams.push(Counted(drops.clone()));
    let _ = catch_unwind(AssertUnwindSafe(move || drop(streams)));
    assert_eq!(drops.load(SeqCst), 1, "the stream is dropped with its set");

    let mut futures = FuturesUnordered::new();
    futures.push(Counted(drops.clone()));
    assert!(Pin::new(&mut futures).poll_next(&mut cx).is_pending());
    futures.push(Counted(drops.clone()));
    let _ = catch_unwind(AssertUnwindSafe(move || drop(futures)));
    assert_eq!(
        drops.load(SeqCst),
        3,
        "both futures are dropped with their set"
    );
}

/// A parent waker that counts its wakes and whose `clone` can be made to
/// stop in the middle (a wake clones the parent's waker while it holds the
/// waker's cell), so another thread can act while a wake is in progress.
mod gated {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Barrier};
    use std::task::{RawWaker, RawWakerVTable, Waker};

    pub struct Gate {
        pub wakes: AtomicUsize,
        /// The next clone stops: it meets `entered`, then waits on `release`.
        pub stop_next_clone: AtomicBool,
        pub entered: Barrier,
        pub release: Barrier,
    }

    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);

    fn gate<'a>(data: *const ()) -> &'a Gate {
        // SAFETY: `data` is an `Arc<Gate>` pointer made by `waker` or `clone`,
        // whose reference this waker holds.
        unsafe { &*data.cast::<Gate>() }
    }

    fn clone(data: *const ()) -> RawWaker {
        let gate = gate(data);
        if gate.stop_next_clone.swap(false, SeqCst) {
            gate.entered.wait();
            gate.release.wait();
        }
        // SAFETY: as in `gate`; the new waker gets its own reference.
        unsafe { Arc::increment_strong_count(data.cast::<Gate>()) };
        RawWaker::new(data, &VTABLE)
    }

    fn wake(data: *const ()) {
        wake_by_ref(data);
        drop(data);
    }

    fn wake_by_ref(data: *const ()) {
        gate(data).wakes.fetch_add(1, SeqCst);
    }

    fn drop(data: *const ()) {
        // SAFETY: the reference this waker held, given up once.
        unsafe { Arc::decrement_strong_count(data.cast::<Gate>()) };
    }

    pub fn waker() -> (Arc<Gate>, Waker) {
        let gate = Arc::new(Gate {
            wakes: AtomicUsize::new(0),
            stop_next_clone: AtomicBool::new(false),
            entered: Barrier::new(2),
            release: Barrier::new(2),
        });
        let data = Arc::into_raw(gate.clone()).cast::<()>();
        // SAFETY: the vtable's functions keep the `Arc` contract above.
        (gate, unsafe {
            Waker::from_raw(RawWaker::new(data, &VTABLE))
        })
    }
}

/// Fuzz crash (`crash-2863a45308d1f51cb34b9eacfbe643ff38e8f564`, racy: a
/// helper thread's handle push woke a panicking parent waker while the set
/// was dropped; later the harness dropped its last handle and that parent's
/// panic came out of the handle's drop). The set's drop takes its parent
/// waker out only if no wake holds it (`AtomicWaker::take`); otherwise the
/// waker stays registered in the header. Nothing woke it after that before
/// handles existed, but the last handle's drop does, after the set is gone:
/// a wake of the dropped set's task, which may run (and panic in) the
/// handle's `Drop` on any thread. Fixed: the set's drop closes the
/// injection stack before it takes the waker, and a handle wakes no parent
/// once the stack is closed.
#[test]
fn the_last_handle_dropped_after_the_set_wakes_no_parent() {
    let (gate, waker) = gated::waker();
    let mut set = FuturesUnordered::<std::future::Ready<u8>>::new();
    let handle = set.handle();
    // Empty with a live handle: waits, with `waker` registered.
    assert!(Pin::new(&mut set)
        .poll_next(&mut Context::from_waker(&waker))
        .is_pending());
    gate.stop_next_clone.store(true, SeqCst);
    let pusher = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            // The first push wakes the parent: it clones the registered
            // waker while holding it, and that clone stops.
            handle.push(std::future::ready(1)).unwrap();
        })
    };
    gate.entered.wait();
    // A wake holds the parent waker: the drop cannot take it out.
    drop(set);
    gate.release.wait();
    pusher.join().unwrap();
    let woken = gate.wakes.load(SeqCst);
    assert_eq!(woken, 1, "the push's wake, racing the drop");
    drop(handle);
    assert_eq!(
        gate.wakes.load(SeqCst),
        woken,
        "the last handle's drop, after the set is gone, woke the set's parent waker"
    );
}

/// Fuzz input (`StreamsUnordered`, ops `12 0`, `0 0`, `29 239 239`): a set
/// that ended (`poll_next` returned `Ready(None)`), then a push of a stream
/// that ends without an item, then one poll of `progress_while` whose body
/// is pending. The progress adopts and polls the stream, which ends, and
/// the set is empty again. `Core::progress_with` restores the `terminated`
/// flag it found on entry (true: the earlier `Ready(None)`), but the set
/// was not terminated then (`is_terminated` was false: a push was waiting),
/// so it turns terminated although no `poll_next` returned `Ready(None)`
/// since the push. Rule K1 and the rustdoc: a progress that finds the set
/// empty does not terminate it, "the set stays as it was". Fixed: it
/// restores `is_terminated()` as seen on entry.
#[test]
fn a_progress_that_empties_the_set_does_not_terminate_it_after_a_push() {
    use futures_core::stream::FusedStream;
    use std::future::Future;

    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut set = StreamsUnordered::new();
    assert_eq!(Pin::new(&mut set).poll_next(&mut cx), Poll::Ready(None));
    assert!(set.is_terminated());
    set.push(futures::stream::empty::<u8>());
    assert!(!set.is_terminated(), "a push makes the set live again");
    {
        let body = set.progress_while(std::future::pending::<()>());
        let mut body = std::pin::pin!(body);
        assert!(body.as_mut().poll(&mut cx).is_pending());
    }
    assert!(set.is_empty(), "the stream ended during the progress");
    assert!(
        !set.is_terminated(),
        "the progress terminated the set: no poll_next returned Ready(None) since the push"
    );
}
