//! Behaviour of every public item that velodrome shares with
//! `futures::stream::FuturesUnordered`: construction, `len`, `push`, the
//! iterators, `clear`, the `Stream`/`FusedStream` contract, `Debug`,
//! `FromIterator`/`Extend` and the `Spawn`/`LocalSpawn` impls.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::executor::block_on;
use futures::future::{pending, ready, FutureObj, LocalFutureObj};
use futures::stream::FusedStream;
use futures::task::{noop_waker, waker, ArcWake, LocalSpawn, LocalSpawnExt, Spawn, SpawnExt};
use futures::{Stream, StreamExt};
use velodrome::FuturesUnordered;

/// An `Unpin` child that is ready at once with its tag.
#[derive(Debug)]
struct Tagged(u32);

impl Future for Tagged {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(self.0)
    }
}

/// A `!Unpin` child that is ready at once with its (mutable through a shared
/// pin) tag.
#[derive(Debug)]
struct PinnedTagged {
    tag: Cell<u32>,
    _pin: PhantomPinned,
}

impl PinnedTagged {
    fn new(tag: u32) -> Self {
        Self {
            tag: Cell::new(tag),
            _pin: PhantomPinned,
        }
    }
}

impl Future for PinnedTagged {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(self.tag.get())
    }
}

/// An `Unpin` child that counts its drops and is ready at once.
#[derive(Debug)]
struct DropCounted {
    tag: u32,
    drops: Arc<AtomicUsize>,
}

impl Future for DropCounted {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(self.tag)
    }
}

impl Drop for DropCounted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that counts how often it was woken.
#[derive(Debug, Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    let waker = waker(counter.clone());
    (counter, waker)
}

fn assert_exact_size_hint<S: Stream>(set: &S, len: usize) {
    assert_eq!(set.size_hint(), (len, Some(len)), "size_hint must be exact");
}

#[test]
fn new_set_is_empty_and_not_terminated() {
    let set = FuturesUnordered::<Tagged>::new();
    assert_eq!(set.len(), 0);
    assert!(set.is_empty());
    assert!(!set.is_terminated(), "a new set has not yielded None yet");
    assert_exact_size_hint(&set, 0);
    assert_eq!(set.iter().len(), 0);
}

#[test]
fn default_is_an_empty_set() {
    let mut set: FuturesUnordered<Tagged> = Default::default();
    assert!(set.is_empty());
    assert!(!set.is_terminated());
    assert_eq!(block_on(set.next()), None);
}

#[test]
fn len_counts_pending_children_and_drops_on_completion() {
    let set = FuturesUnordered::new();
    for _ in 0..3 {
        set.push(futures::future::Either::Left(pending::<u32>()));
        assert!(!set.is_empty());
    }
    assert_eq!(set.len(), 3);
    set.push(futures::future::Either::Right(ready(7_u32)));
    assert_eq!(set.len(), 4);

    let mut set = set;
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(Some(7)));
    assert_eq!(set.len(), 3, "a completed child leaves the set");
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!(set.len(), 3, "pending children stay in the set");
    assert!(!set.is_terminated());
}

#[test]
fn size_hint_is_exact_throughout() {
    let mut set: FuturesUnordered<Tagged> = (0..5).map(Tagged).collect();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut seen = BTreeSet::new();
    for remaining in (0..5).rev() {
        match set.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(tag)) => assert!(seen.insert(tag), "tag {tag} yielded twice"),
            other => panic!("expected an output, got {other:?}"),
        }
        assert_eq!(set.len(), remaining);
        assert_exact_size_hint(&set, remaining);
    }
    assert_eq!(seen, (0..5).collect());
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(None));
    assert_exact_size_hint(&set, 0);
}

#[test]
fn is_terminated_after_ready_none_and_reset_by_push() {
    let mut set = FuturesUnordered::new();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);

    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(None));
    assert!(set.is_terminated(), "terminated after yielding None");

    set.push(Tagged(1));
    assert!(!set.is_terminated(), "push revives a terminated set");
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
    assert!(
        !set.is_terminated(),
        "yielding an item does not terminate the set"
    );
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(None));
    assert!(set.is_terminated());
}

#[test]
fn debug_names_the_type() {
    let set: FuturesUnordered<Tagged> = (0..3).map(Tagged).collect();
    let text = format!("{set:?}");
    assert!(
        text.contains("FuturesUnordered"),
        "Debug output {text:?} should name the type"
    );
    assert!(!format!("{:?}", set.iter()).is_empty());
}

#[test]
fn pushed_children_all_yield_their_output() {
    let set = FuturesUnordered::new();
    for i in 0..100_u32 {
        set.push(ready(i));
    }
    let mut outputs = block_on(set.collect::<Vec<_>>());
    outputs.sort_unstable();
    assert_eq!(outputs, (0..100).collect::<Vec<_>>());
}

#[test]
fn from_iterator_collects_every_child() {
    let set: FuturesUnordered<_> = (0..10_u32).map(ready).collect();
    assert_eq!(set.len(), 10);
    let mut outputs = block_on(set.collect::<Vec<_>>());
    outputs.sort_unstable();
    assert_eq!(outputs, (0..10).collect::<Vec<_>>());
}

#[test]
fn extend_adds_every_child() {
    let mut set: FuturesUnordered<_> = (0..4_u32).map(ready).collect();
    set.extend((4..10_u32).map(ready));
    assert_eq!(set.len(), 10);
    assert!(!set.is_terminated());
    let mut outputs = block_on(set.collect::<Vec<_>>());
    outputs.sort_unstable();
    assert_eq!(outputs, (0..10).collect::<Vec<_>>());
}

#[test]
fn iter_visits_every_child_once_with_exact_len() {
    let set: FuturesUnordered<Tagged> = (0..8).map(Tagged).collect();
    let mut iter = set.iter();
    let mut seen = BTreeSet::new();
    for remaining in (0..8).rev() {
        let child = iter.next().expect("iter ended early");
        assert!(seen.insert(child.0), "child {} visited twice", child.0);
        assert_eq!(iter.len(), remaining);
        assert_eq!(iter.size_hint(), (remaining, Some(remaining)));
    }
    assert!(iter.next().is_none());
    assert_eq!(seen, (0..8).collect());
    assert_eq!(set.len(), 8, "iterating does not remove children");
}

#[test]
fn iter_mut_changes_what_children_yield() {
    let mut set: FuturesUnordered<Tagged> = (0..6).map(Tagged).collect();
    let mut iter = set.iter_mut();
    assert_eq!(iter.len(), 6);
    let mut visited = 0;
    for child in iter.by_ref() {
        child.0 += 100;
        visited += 1;
    }
    assert_eq!(visited, 6);
    assert_eq!(iter.len(), 0);
    let mut outputs = block_on(set.collect::<Vec<_>>());
    outputs.sort_unstable();
    assert_eq!(outputs, (100..106).collect::<Vec<_>>());
}

#[test]
fn iter_pin_ref_visits_not_unpin_children() {
    let set: FuturesUnordered<PinnedTagged> = (0..5).map(PinnedTagged::new).collect();
    let mut iter = Pin::new(&set).iter_pin_ref();
    assert_eq!(iter.len(), 5);
    let mut seen = BTreeSet::new();
    for remaining in (0..5).rev() {
        let child: Pin<&PinnedTagged> = iter.next().expect("iter_pin_ref ended early");
        assert!(seen.insert(child.tag.get()));
        assert_eq!(iter.len(), remaining);
    }
    assert!(iter.next().is_none());
    assert_eq!(seen, (0..5).collect());
}

#[test]
fn iter_pin_mut_changes_not_unpin_children() {
    let mut set: FuturesUnordered<PinnedTagged> = (0..5).map(PinnedTagged::new).collect();
    let mut iter = Pin::new(&mut set).iter_pin_mut();
    assert_eq!(iter.len(), 5);
    let mut remaining = 5;
    while let Some(child) = iter.next() {
        let child: Pin<&mut PinnedTagged> = child;
        child.tag.set(child.tag.get() + 50);
        remaining -= 1;
        assert_eq!(iter.len(), remaining);
    }
    assert_eq!(remaining, 0);
    let mut outputs = block_on(set.collect::<Vec<_>>());
    outputs.sort_unstable();
    assert_eq!(outputs, (50..55).collect::<Vec<_>>());
}

#[test]
fn into_iterator_for_shared_and_mutable_references() {
    let mut set: FuturesUnordered<Tagged> = (0..4).map(Tagged).collect();
    let mut shared = BTreeSet::new();
    for child in &set {
        shared.insert(child.0);
    }
    assert_eq!(shared, (0..4).collect());
    for child in &mut set {
        child.0 *= 10;
    }
    let tags: BTreeSet<u32> = (&set).into_iter().map(|child| child.0).collect();
    assert_eq!(tags, [0, 10, 20, 30].into_iter().collect());
    assert_eq!((&mut set).into_iter().len(), 4);
}

#[test]
fn into_iter_yields_every_child_with_exact_len() {
    let set: FuturesUnordered<Tagged> = (0..7).map(Tagged).collect();
    let mut iter = set.into_iter();
    assert_eq!(iter.len(), 7);
    let mut seen = BTreeSet::new();
    for remaining in (0..7).rev() {
        let child: Tagged = iter.next().expect("into_iter ended early");
        assert!(seen.insert(child.0));
        assert_eq!(iter.len(), remaining);
        assert_eq!(iter.size_hint(), (remaining, Some(remaining)));
    }
    assert!(iter.next().is_none());
    assert_eq!(seen, (0..7).collect());
}

#[test]
fn into_iter_drops_children_it_did_not_yield() {
    let drops = Arc::new(AtomicUsize::new(0));
    let set: FuturesUnordered<DropCounted> = (0..10)
        .map(|tag| DropCounted {
            tag,
            drops: drops.clone(),
        })
        .collect();
    let mut iter = set.into_iter();
    let taken: Vec<DropCounted> = iter.by_ref().take(3).collect();
    assert_eq!(iter.len(), 7);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "nothing dropped yet");
    drop(iter);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        7,
        "the 7 children left in the iterator are dropped with it"
    );
    drop(taken);
    assert_eq!(drops.load(Ordering::SeqCst), 10);
}

#[test]
fn clear_drops_every_child_and_leaves_a_usable_set() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut set: FuturesUnordered<DropCounted> = (0..10)
        .map(|tag| DropCounted {
            tag,
            drops: drops.clone(),
        })
        .collect();
    set.clear();
    assert_eq!(drops.load(Ordering::SeqCst), 10, "clear drops every child");
    assert_eq!(set.len(), 0);
    assert!(set.is_empty());
    assert_exact_size_hint(&set, 0);
    assert_eq!(set.iter().len(), 0);

    set.push(DropCounted {
        tag: 42,
        drops: drops.clone(),
    });
    assert_eq!(set.len(), 1);
    assert_eq!(block_on(set.next()), Some(42));
    assert_eq!(drops.load(Ordering::SeqCst), 11);
    assert_eq!(block_on(set.next()), None);
}

#[test]
fn clear_of_pending_children_drops_them() {
    let drops = Arc::new(AtomicUsize::new(0));
    let drops_in_child = drops.clone();
    let mut set = FuturesUnordered::new();
    let marker = Arc::new(());
    for _ in 0..5 {
        let marker = marker.clone();
        let drops = drops_in_child.clone();
        set.push(async move {
            let _marker = marker;
            let _counted = DropCounted { tag: 0, drops };
            pending::<()>().await;
        });
    }
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!(Arc::strong_count(&marker), 6);
    set.clear();
    assert_eq!(drops.load(Ordering::SeqCst), 5);
    assert_eq!(Arc::strong_count(&marker), 1);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(None));
}

#[test]
fn spawn_runs_future_objects() {
    let set = FuturesUnordered::<FutureObj<'static, ()>>::new();
    assert!(set.status().is_ok());
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let ran = ran.clone();
        set.spawn(async move {
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .expect("spawning into a set cannot fail");
    }
    let done = Arc::new(AtomicBool::new(false));
    let done_in_obj = done.clone();
    set.spawn_obj(FutureObj::new(Box::pin(async move {
        done_in_obj.store(true, Ordering::SeqCst);
    })))
    .expect("spawn_obj cannot fail");
    assert_eq!(set.len(), 4);
    assert_eq!(block_on(set.collect::<Vec<()>>()).len(), 4);
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    assert!(done.load(Ordering::SeqCst));
}

#[test]
fn local_spawn_runs_local_future_objects() {
    let set = FuturesUnordered::<LocalFutureObj<'static, ()>>::new();
    assert!(set.status_local().is_ok());
    let ran = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let ran = ran.clone();
        set.spawn_local(async move { ran.set(ran.get() + 1) })
            .expect("spawning into a set cannot fail");
    }
    let ran_in_obj = ran.clone();
    set.spawn_local_obj(LocalFutureObj::new(Box::pin(async move {
        ran_in_obj.set(ran_in_obj.get() + 10);
    })))
    .expect("spawn_local_obj cannot fail");
    assert_eq!(set.len(), 4);
    assert_eq!(block_on(set.collect::<Vec<()>>()).len(), 4);
    assert_eq!(ran.get(), 13);
}

#[test]
fn concurrent_push_from_four_threads_yields_every_output_once() {
    const THREADS: u32 = 4;
    let per_thread: u32 = if cfg!(miri) { 16 } else { 1_000 };
    let set = FuturesUnordered::new();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let set = &set;
            scope.spawn(move || {
                for i in 0..per_thread {
                    set.push(ready(thread * per_thread + i));
                }
            });
        }
    });
    let total = (THREADS * per_thread) as usize;
    assert_eq!(set.len(), total);
    assert_eq!(set.iter().len(), total);
    let mut outputs = block_on(set.collect::<Vec<_>>());
    outputs.sort_unstable();
    let expected: Vec<u32> = (0..THREADS * per_thread).collect();
    assert_eq!(outputs, expected, "every output exactly once");
}

/// A child that completes on its second poll and hands out its waker.
struct WakeOnce {
    waker: Arc<Mutex<Option<Waker>>>,
    polls: Arc<AtomicUsize>,
}

impl Future for WakeOnce {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.polls.fetch_add(1, Ordering::SeqCst) == 0 {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

#[test]
fn child_wake_notifies_the_parent_task() {
    let slot = Arc::new(Mutex::new(None));
    let polls = Arc::new(AtomicUsize::new(0));
    let mut set = FuturesUnordered::new();
    set.push(WakeOnce {
        waker: slot.clone(),
        polls: polls.clone(),
    });
    let (counter, parent) = counting_waker();
    let mut cx = Context::from_waker(&parent);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!(polls.load(Ordering::SeqCst), 1);
    let before = counter.0.load(Ordering::SeqCst);

    let child_waker = slot.lock().unwrap().take().expect("child stored a waker");
    child_waker.wake();
    assert!(
        counter.0.load(Ordering::SeqCst) > before,
        "waking a child must wake the task polling the set"
    );
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(Some(())));
    assert_eq!(polls.load(Ordering::SeqCst), 2);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(None));
}

#[test]
fn unwoken_pending_child_is_not_polled_again() {
    let slot = Arc::new(Mutex::new(None));
    let polls = Arc::new(AtomicUsize::new(0));
    let mut set = FuturesUnordered::new();
    set.push(WakeOnce {
        waker: slot.clone(),
        polls: polls.clone(),
    });
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..5 {
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    }
    assert_eq!(polls.load(Ordering::SeqCst), 1, "no wake, no poll");
    assert_eq!(set.len(), 1);
}
