//! Regressions found by the fuzzer (`fuzz/fuzz_targets/script.rs`), each
//! reduced to the smallest script that showed it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::stream::StreamExt;
use velodrome::FuturesUnordered;

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Pending until released; keeps its latest waker where the test can reach
/// it.
#[derive(Clone, Default)]
struct Gate {
    waker: Arc<Mutex<Option<Waker>>>,
    open: Arc<AtomicUsize>,
}

impl Future for Gate {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.open.load(Ordering::SeqCst) != 0 {
            return Poll::Ready(());
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Pushes adopted by a `&mut` method other than `poll_next` (here
/// `iter_mut`) while the set is idle must not swallow the next wake of a
/// child: the parent is woken (no lost wake-up, rule R1).
#[test]
fn pushes_adopted_outside_poll_next_do_not_swallow_a_wake() {
    let parent = Arc::new(CountingWaker::default());
    let waker = Waker::from(parent.clone());
    let mut cx = Context::from_waker(&waker);
    let mut set = FuturesUnordered::new();
    let first = Gate::default();
    set.push(first.clone());
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);

    let idle = parent.0.load(Ordering::SeqCst);
    set.push(Gate::default());
    assert_eq!(set.iter_mut().count(), 2);
    first.open.store(1, Ordering::SeqCst);
    first.waker.lock().unwrap().take().unwrap().wake();
    let woken = parent.0.load(Ordering::SeqCst) > idle;
    assert!(
        woken,
        "nobody will poll the set again: the parent was not woken"
    );
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(Some(())));
}

/// A set emptied by cancelling the rest of a cycle ends at once, as
/// futures-util's does, instead of returning `Pending` one more time.
#[test]
fn set_emptied_mid_cycle_by_cancel_returns_ready_none() {
    let noop = futures::task::noop_waker();
    let mut cx = Context::from_waker(&noop);
    let mut set = FuturesUnordered::new();
    let gates: Vec<Gate> = (0..3).map(|_| Gate::default()).collect();
    let keys: Vec<_> = gates.iter().map(|gate| set.insert(gate.clone())).collect();
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    // Child 0 finishes, the others are woken: the cycle pauses at child 0's
    // output with children 1 and 2 still due.
    gates[0].open.store(1, Ordering::SeqCst);
    let wakers: Vec<Waker> = gates
        .iter()
        .map(|g| g.waker.lock().unwrap().clone().unwrap())
        .collect();
    for waker in &wakers {
        waker.wake_by_ref();
    }
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(Some(())));
    // Woken again while still due: their bits are set when they go.
    wakers[1].wake_by_ref();
    wakers[2].wake_by_ref();
    assert!(set.cancel(keys[1]));
    assert!(set.cancel(keys[2]));
    assert!(set.is_empty());
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(None));
}

/// The set and the last clone of a child's waker are released at the same
/// moment on two threads: the header is freed exactly once, after both
/// (rule S3). This is the case ThreadSanitizer needs `cfg(velodrome_tsan)`
/// for; other tests order the two drops through a channel or a join.
#[test]
fn set_and_last_waker_clone_released_at_once_on_two_threads() {
    let noop = futures::task::noop_waker();
    let mut cx = Context::from_waker(&noop);
    for _ in 0..if cfg!(miri) { 4 } else { 200 } {
        let gate = Gate::default();
        let mut set = FuturesUnordered::new();
        set.push(gate.clone());
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
        let waker = gate.waker.lock().unwrap().take().unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let other = barrier.clone();
        let thread = std::thread::spawn(move || {
            other.wait();
            waker.wake_by_ref();
            drop(waker);
        });
        barrier.wait();
        drop(set);
        thread.join().unwrap();
    }
}
