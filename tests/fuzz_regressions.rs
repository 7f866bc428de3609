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
