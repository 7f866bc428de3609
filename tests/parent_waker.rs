//! Which parent waker a wake reaches, and what a parent waker that panics
//! does to the set (issue 14).
//!
//! - A set polled with W1 and then with W2 wakes only W2 from then on,
//!   including for wakes a child makes inside its own poll (futures-util
//!   registers the waker of every `poll_next`; so does velodrome, at no
//!   atomic cost while the waker stays the same).
//! - A parent waker that panics on wake or on clone: the panic reaches the
//!   caller of `wake` (or of `poll_next`), the set stays consistent, no child
//!   is lost, and nothing leaks: a by-value `Waker::wake` still gives up its
//!   reference on the set's shared header. Leaks are checked here by counting
//!   this thread's live allocations, and by Miri's and LeakSanitizer's leak
//!   checks when CI runs this file under them.
#![cfg(panic = "unwind")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};
use std::thread;

use futures::Stream;
use velodrome::FuturesUnordered;

/// Forwards to `System`, counting the current thread's live allocations.
struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the slot may be gone while the thread is torn down.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees are ours; counting touches only a thread-local `Cell`
// and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(1);
        // SAFETY: forwarded unchanged; the caller upholds the contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-1);
        // SAFETY: forwarded unchanged; `ptr` came from `System` through us.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// A parent waker that counts its wakes and panics on each one if asked.
#[derive(Default)]
struct Parent {
    wakes: AtomicUsize,
    panics: bool,
}

impl Parent {
    fn counting() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn panicking() -> Arc<Self> {
        Arc::new(Self {
            wakes: AtomicUsize::new(0),
            panics: true,
        })
    }

    fn wakes(&self) -> usize {
        self.wakes.load(SeqCst)
    }
}

impl Wake for Parent {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
        if self.panics {
            panic!("parent waker panics on wake");
        }
    }
}

/// A child that stays pending, hands its waker out on every poll, and
/// finishes once `release` is set. If `self_wake` is set, it wakes itself
/// inside its first poll (a yield).
struct Child {
    polls: Arc<AtomicUsize>,
    waker: Arc<Mutex<Option<Waker>>>,
    release: Arc<AtomicUsize>,
    self_wake: bool,
}

#[derive(Clone, Default)]
struct Handles {
    polls: Arc<AtomicUsize>,
    waker: Arc<Mutex<Option<Waker>>>,
    release: Arc<AtomicUsize>,
}

impl Handles {
    fn child(&self, self_wake: bool) -> Child {
        Child {
            polls: self.polls.clone(),
            waker: self.waker.clone(),
            release: self.release.clone(),
            self_wake,
        }
    }

    fn waker(&self) -> Waker {
        self.waker
            .lock()
            .unwrap()
            .clone()
            .expect("child polled once")
    }

    fn polls(&self) -> usize {
        self.polls.load(SeqCst)
    }
}

impl Future for Child {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let polls = self.polls.fetch_add(1, SeqCst) + 1;
        if self.release.load(SeqCst) != 0 {
            return Poll::Ready(polls);
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.self_wake {
            self.self_wake = false;
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

fn poll(set: &mut FuturesUnordered<Child>, waker: &Waker) -> Poll<Option<usize>> {
    Pin::new(set).poll_next(&mut Context::from_waker(waker))
}

#[test]
fn wakes_reach_only_the_waker_of_the_latest_poll() {
    let (w1, w2) = (Parent::counting(), Parent::counting());
    let (waker1, waker2) = (Waker::from(w1.clone()), Waker::from(w2.clone()));
    let handles = Handles::default();
    let mut set = FuturesUnordered::new();
    set.push(handles.child(false));
    assert_eq!(poll(&mut set, &waker1), Poll::Pending);
    // The set moves to another task: polled with W2, nothing woken.
    assert_eq!(poll(&mut set, &waker2), Poll::Pending);
    handles.waker().wake();
    assert_eq!((w1.wakes(), w2.wakes()), (0, 1), "the wake went to W1");

    assert_eq!(poll(&mut set, &waker2), Poll::Pending);

    // A wake made inside a child's poll, during a poll with a new waker.
    let w3 = Parent::counting();
    let waker3 = Waker::from(w3.clone());
    set.push(handles.child(true));
    let before = (w1.wakes(), w2.wakes());
    assert_eq!(poll(&mut set, &waker3), Poll::Pending);
    assert_eq!((w1.wakes(), w2.wakes()), before, "an old waker was woken");
    assert!(
        w3.wakes() >= 1,
        "the self-wake did not reach this poll's waker"
    );
}

#[test]
fn a_panicking_old_waker_does_not_break_a_poll_with_a_new_one() {
    let old = Parent::panicking();
    let new = Parent::counting();
    let (old_waker, new_waker) = (Waker::from(old.clone()), Waker::from(new));
    let handles = Handles::default();
    let mut set = FuturesUnordered::new();
    set.push(handles.child(false));
    assert_eq!(poll(&mut set, &old_waker), Poll::Pending);
    // The child wakes itself inside its poll with the new waker: that wake
    // must reach the new waker, not panic through the old one.
    set.push(handles.child(true));
    assert_eq!(poll(&mut set, &new_waker), Poll::Pending);
    assert_eq!(old.wakes(), 0);
    assert_eq!(set.len(), 2, "a child was dropped as though it panicked");
    handles.release.store(1, SeqCst);
    handles.waker().wake_by_ref();
    let mut outputs = 0;
    while let Poll::Ready(Some(_)) = poll(&mut set, &new_waker) {
        outputs += 1;
    }
    assert_eq!(outputs, 1, "the woken child completes");
}

/// A parent waker that panics on wake, woken through a child's waker (by
/// value or by reference, on this thread or another). The scenario runs
/// twice and the second run must leave this thread's live allocations as it
/// found them (the first fills one-time caches: the panic machinery's
/// backtrace state, thread-locals).
fn panicking_parent_wake(on_another_thread: bool, by_value: bool) {
    panicking_parent_wake_once(on_another_thread, by_value);
    let before = live();
    panicking_parent_wake_once(on_another_thread, by_value);
    let leaked = live() - before;
    // Spawning a thread moves a few allocations between threads (its handle
    // and result are freed by the other side); measure that on its own.
    let expected = if on_another_thread {
        let before = live();
        thread::spawn(|| ()).join().unwrap();
        live() - before
    } else {
        0
    };
    assert_eq!(leaked, expected, "allocations leaked");
}

fn panicking_parent_wake_once(on_another_thread: bool, by_value: bool) {
    {
        let parent = Parent::panicking();
        let panicky = Waker::from(parent.clone());
        let good = Parent::counting();
        let good_waker = Waker::from(good.clone());
        let handles = Handles::default();
        let mut set = FuturesUnordered::new();
        set.push(handles.child(false));
        set.push(handles.child(false));
        assert_eq!(poll(&mut set, &panicky), Poll::Pending);
        let waker = handles.waker();
        let wake = move || {
            if by_value {
                waker.wake();
            } else {
                waker.wake_by_ref();
            }
        };
        let outcome = if on_another_thread {
            thread::spawn(move || catch_unwind(AssertUnwindSafe(wake)).is_err())
                .join()
                .expect("the waking thread itself does not fail")
        } else {
            catch_unwind(AssertUnwindSafe(wake)).is_err()
        };
        assert!(outcome, "the parent waker's panic reaches the waking code");
        assert_eq!(parent.wakes(), 1);
        assert_eq!(set.len(), 2, "a panicking parent waker lost a child");

        // The set is consistent: the woken child is polled, the parent's
        // state is not stuck (a new waker is registered and woken).
        let polls = handles.polls();
        assert_eq!(poll(&mut set, &good_waker), Poll::Pending);
        assert_eq!(handles.polls(), polls + 1, "the woken child was lost");
        handles.release.store(1, SeqCst);
        handles.waker().wake();
        assert_eq!(good.wakes(), 1, "the parent state is stuck after a panic");
        let mut outputs = 0;
        while let Poll::Ready(Some(_)) = poll(&mut set, &good_waker) {
            outputs += 1;
        }
        assert_eq!(outputs, 1);
        drop(set);
    }
}

#[test]
fn panicking_parent_on_wake_by_value_same_thread_leaks_nothing() {
    panicking_parent_wake(false, true);
}

#[test]
fn panicking_parent_on_wake_by_ref_same_thread_leaks_nothing() {
    panicking_parent_wake(false, false);
}

#[test]
fn panicking_parent_on_wake_by_value_other_thread_leaks_nothing() {
    panicking_parent_wake(true, true);
}

#[test]
fn panicking_parent_on_wake_by_ref_other_thread_leaks_nothing() {
    panicking_parent_wake(true, false);
}

/// A waker whose `clone` panics once `clones` reaches zero.
struct CloneBudget {
    clones: AtomicUsize,
    wakes: AtomicUsize,
}

static CLONE_BUDGET_VTABLE: RawWakerVTable = RawWakerVTable::new(
    |data| {
        // SAFETY: `data` is the `CloneBudget` the test keeps alive.
        let budget = unsafe { &*data.cast::<CloneBudget>() };
        if budget
            .clones
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            panic!("parent waker panics on clone");
        }
        RawWaker::new(data, &CLONE_BUDGET_VTABLE)
    },
    |data| {
        // SAFETY: as above.
        unsafe { &*data.cast::<CloneBudget>() }
            .wakes
            .fetch_add(1, SeqCst);
    },
    |data| {
        // SAFETY: as above.
        unsafe { &*data.cast::<CloneBudget>() }
            .wakes
            .fetch_add(1, SeqCst);
    },
    |_| {},
);

#[test]
fn a_parent_waker_whose_clone_panics_leaves_the_set_usable() {
    let budget = Box::new(CloneBudget {
        clones: AtomicUsize::new(1),
        wakes: AtomicUsize::new(0),
    });
    let data = std::ptr::from_ref::<CloneBudget>(&budget).cast::<()>();
    // SAFETY: the vtable's functions only read the `CloneBudget`, which
    // outlives every clone (the set is dropped before `budget`).
    let waker = unsafe { Waker::from_raw(RawWaker::new(data, &CLONE_BUDGET_VTABLE)) };
    let handles = Handles::default();
    let mut set = FuturesUnordered::new();
    set.push(handles.child(false));
    // Registration uses the one allowed clone.
    assert_eq!(poll(&mut set, &waker), Poll::Pending);
    // The wake clones the registered waker: that clone panics.
    let child_waker = handles.waker();
    let panicked = catch_unwind(AssertUnwindSafe(|| child_waker.wake_by_ref())).is_err();
    assert!(panicked);
    // Not stuck: a new parent registers and is woken by the next wake.
    let good = Parent::counting();
    let good_waker = Waker::from(good.clone());
    assert_eq!(poll(&mut set, &good_waker), Poll::Pending);
    assert_eq!(handles.polls(), 2, "the woken child was lost");
    handles.waker().wake();
    assert_eq!(good.wakes(), 1);
    drop(set);
    drop(waker);
}
