//! Push handles: pushes from other tasks and threads, an empty set that
//! waits while handles live, pushes after the set is gone, `append`.

use std::future::{ready, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::{FutureExt, Stream, StreamExt};
use velodrome::{FuturesUnordered, Priority, PushHandle, StreamsUnordered};

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    (counter.clone(), Waker::from(counter))
}

fn poll_once<S: Stream + Unpin>(set: &mut S, waker: &Waker) -> Poll<Option<S::Item>> {
    Pin::new(set).poll_next(&mut Context::from_waker(waker))
}

/// Counts drops of the children that carry it.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

impl Drops {
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// A future that never finishes and counts its drop.
struct Forever(Drops);

impl Future for Forever {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.0 .0.fetch_add(1, SeqCst);
    }
}

#[test]
fn an_empty_set_waits_while_a_handle_lives_and_ends_when_the_last_goes() {
    let mut set = FuturesUnordered::<std::future::Ready<u32>>::new();
    let (wakes, waker) = counting_waker();
    let first = set.handle();
    let second = first.clone();
    assert_eq!(poll_once(&mut set, &waker), Poll::Pending);
    assert!(!futures::stream::FusedStream::is_terminated(&set));
    drop(first);
    assert_eq!(wakes.0.load(SeqCst), 0, "a handle remains: no wake");
    assert_eq!(poll_once(&mut set, &waker), Poll::Pending);
    drop(second);
    assert_eq!(wakes.0.load(SeqCst), 1, "the last handle wakes the set");
    assert_eq!(poll_once(&mut set, &waker), Poll::Ready(None));
    assert!(futures::stream::FusedStream::is_terminated(&set));
}

#[test]
fn a_push_wakes_the_idle_set_and_is_polled_by_its_next_poll() {
    let mut set = FuturesUnordered::new();
    let (wakes, waker) = counting_waker();
    let handle = set.handle();
    assert_eq!(poll_once(&mut set, &waker), Poll::Pending);
    handle.push(ready(1)).unwrap();
    assert_eq!(wakes.0.load(SeqCst), 1);
    handle.push(ready(2)).unwrap();
    assert_eq!(
        wakes.0.load(SeqCst),
        1,
        "the first push's wake covers the pushes after it until the set takes them"
    );
    assert_eq!(set.len(), 0, "not adopted before the next poll");
    assert_eq!(poll_once(&mut set, &waker), Poll::Ready(Some(1)));
    assert_eq!(set.len(), 1);
    assert_eq!(poll_once(&mut set, &waker), Poll::Ready(Some(2)));
    handle.push(ready(3)).unwrap();
    assert_eq!(wakes.0.load(SeqCst), 2, "taken: the next push wakes again");
    assert_eq!(poll_once(&mut set, &waker), Poll::Ready(Some(3)));
    assert_eq!(poll_once(&mut set, &waker), Poll::Pending);
}

#[test]
fn handle_pushes_are_adopted_oldest_first() {
    let mut set = FuturesUnordered::new();
    let handle = set.handle();
    for i in 0..100 {
        handle.push(ready(i)).unwrap();
    }
    drop(handle);
    let out: Vec<i32> = futures::executor::block_on(set.by_ref().collect());
    assert_eq!(out, (0..100).collect::<Vec<_>>());
}

#[test]
fn handle_pushes_keep_their_lane() {
    let mut set = FuturesUnordered::new();
    let handle = set.handle();
    handle
        .push_with_priority(ready("low"), Priority::LOW)
        .unwrap();
    handle.push(ready("normal")).unwrap();
    handle
        .push_with_priority(ready("high"), Priority::HIGH)
        .unwrap();
    drop(handle);
    let out: Vec<_> = futures::executor::block_on(set.by_ref().collect());
    assert_eq!(out, ["high", "normal", "low"]);
}

/// A child that pushes through a handle while the set polls it: the push
/// is adopted and polled in the same `poll_next` call, in its own lane
/// even when the set had used only NORMAL so far.
type BoxedStr = Pin<Box<dyn Future<Output = &'static str> + Send>>;

struct PushesWhenPolled {
    handle: Option<PushHandle<BoxedStr>>,
    priority: Priority,
}

impl Future for PushesWhenPolled {
    type Output = &'static str;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<&'static str> {
        if let Some(handle) = self.handle.take() {
            handle
                .push_with_priority(Box::pin(ready("pushed")), self.priority)
                .unwrap();
        }
        Poll::Pending
    }
}

#[test]
fn a_push_made_during_a_poll_is_polled_in_that_same_call() {
    for priority in [Priority::NORMAL, Priority::HIGH, Priority::LOW] {
        let mut set: FuturesUnordered<BoxedStr> = FuturesUnordered::new();
        let handle = Some(set.handle());
        set.push(Box::pin(PushesWhenPolled { handle, priority }));
        let (wakes, waker) = counting_waker();
        assert_eq!(
            poll_once(&mut set, &waker),
            Poll::Ready(Some("pushed")),
            "{priority:?}"
        );
        // The handle is gone (dropped by the child): its last drop woke us.
        assert!(wakes.0.load(SeqCst) >= 1);
        assert_eq!(poll_once(&mut set, &waker), Poll::Pending);
        assert_eq!(set.len(), 1);
    }
}

#[test]
fn a_push_after_the_set_is_gone_hands_the_child_back() {
    let set = FuturesUnordered::new();
    let handle = set.handle();
    assert!(!handle.is_closed());
    drop(set);
    assert!(handle.is_closed());
    let refused = handle.push(ready(String::from("kept"))).unwrap_err();
    assert_eq!(format!("{refused:?}"), "Closed(..)");
    assert_eq!(refused.into_inner().now_or_never().unwrap(), "kept");
}

#[test]
fn children_pushed_but_not_adopted_are_dropped_with_the_set_once() {
    let drops = Drops::default();
    let set = FuturesUnordered::new();
    set.push(Forever(drops.clone()));
    let handle = set.handle();
    for _ in 0..3 {
        handle.push(Forever(drops.clone())).unwrap();
    }
    drop(set);
    assert_eq!(drops.count(), 4);
    drop(handle);
    assert_eq!(drops.count(), 4);
}

#[test]
fn clear_drops_the_children_pushed_through_handles_too() {
    let drops = Drops::default();
    let mut set = FuturesUnordered::new();
    let handle = set.handle();
    handle.push(Forever(drops.clone())).unwrap();
    set.clear();
    assert_eq!(drops.count(), 1);
    assert!(set.is_empty());
}

/// Drops its children and panics on the first drop.
struct PanicsOnDrop(Drops, bool);

impl Future for PanicsOnDrop {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0 .0.fetch_add(1, SeqCst);
        if self.1 {
            panic!("child drop");
        }
    }
}

#[test]
#[cfg(panic = "unwind")]
fn a_panicking_drop_of_an_unadopted_child_drops_the_rest() {
    let drops = Drops::default();
    let set = FuturesUnordered::new();
    let handle = set.handle();
    handle.push(PanicsOnDrop(drops.clone(), false)).unwrap();
    handle.push(PanicsOnDrop(drops.clone(), true)).unwrap();
    handle.push(PanicsOnDrop(drops.clone(), false)).unwrap();
    // The set adopts nothing before its drop here: the drop takes the
    // pushes (as a sync) and drops them with its children.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(set)));
    assert!(result.is_err());
    assert_eq!(drops.count(), 3);
    assert!(handle.is_closed());
    let refused = handle.push(PanicsOnDrop(drops.clone(), false));
    drop(refused);
    assert_eq!(drops.count(), 4);
}

#[test]
fn is_terminated_turns_false_again_for_a_handle_made_after_the_end() {
    let mut set = FuturesUnordered::new();
    let waker = futures::task::noop_waker();
    assert_eq!(poll_once(&mut set, &waker), Poll::Ready(None::<u8>));
    assert!(futures::stream::FusedStream::is_terminated(&set));
    let handle = set.handle();
    assert!(!futures::stream::FusedStream::is_terminated(&set));
    handle.push(ready(5)).unwrap();
    drop(handle);
    assert!(!futures::stream::FusedStream::is_terminated(&set));
    assert_eq!(poll_once(&mut set, &waker), Poll::Ready(Some(5)));
    assert_eq!(poll_once(&mut set, &waker), Poll::Ready(None));
    assert!(futures::stream::FusedStream::is_terminated(&set));
}

#[test]
fn streams_sets_take_handles_too() {
    let mut set = StreamsUnordered::new();
    let handle = set.handle();
    handle.push(futures::stream::iter(vec![1, 2])).unwrap();
    handle.push(futures::stream::iter(vec![3])).unwrap();
    drop(handle);
    let mut out: Vec<i32> = futures::executor::block_on(set.by_ref().collect());
    out.sort();
    assert_eq!(out, [1, 2, 3]);
}

#[test]
fn pushes_from_many_threads_while_the_set_is_polled_all_come_out_once() {
    const THREADS: u64 = 4;
    let per_thread: u64 = if cfg!(miri) { 20 } else { 5_000 };
    let mut set = FuturesUnordered::new();
    let handle = set.handle();
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    handle.push(ready(t * per_thread + i)).unwrap();
                }
            })
        })
        .collect();
    drop(handle);
    // `block_on` parks the thread until a wake: a lost wake would hang here.
    let mut out: Vec<u64> = futures::executor::block_on(set.by_ref().collect());
    for producer in producers {
        producer.join().unwrap();
    }
    out.sort_unstable();
    assert_eq!(out, (0..THREADS * per_thread).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_tasks_feed_a_consumer_loop_without_a_channel() {
    let mut set = FuturesUnordered::new();
    let tasks = if cfg!(miri) { 2 } else { 8 };
    let per_task = if cfg!(miri) { 3 } else { 200 };
    for t in 0..tasks {
        let handle = set.handle();
        tokio::spawn(async move {
            for i in 0..per_task {
                handle
                    .push(async move {
                        tokio::task::yield_now().await;
                        t * per_task + i
                    })
                    .unwrap();
                tokio::task::yield_now().await;
            }
        });
    }
    let mut out = Vec::new();
    while let Some(n) = set.next().await {
        out.push(n);
    }
    out.sort_unstable();
    assert_eq!(out, (0..tasks * per_task).collect::<Vec<_>>());
}

#[test]
fn append_moves_every_child_with_its_lane_and_leaves_the_other_empty() {
    let mut a = FuturesUnordered::new();
    let mut b = FuturesUnordered::new();
    a.push(ready("a normal"));
    b.push_with_priority(ready("b low"), Priority::LOW);
    let key = b.insert_with_priority(ready("b high"), Priority::HIGH);
    b.push(ready("b normal"));
    a.append(&mut b);
    assert_eq!((a.len(), b.len()), (4, 0));
    assert!(!b.contains(key), "keys of the old set match nothing");
    let out: Vec<_> = futures::executor::block_on(a.by_ref().collect());
    assert_eq!(out, ["b high", "a normal", "b normal", "b low"]);
    b.push(ready("reused"));
    assert_eq!(futures::executor::block_on(b.next()), Some("reused"));
}

/// A child that finishes when its flag is set, re-registering the waker of
/// every poll.
struct Gate {
    open: Arc<Mutex<(bool, Option<Waker>)>>,
    polls: Rc<std::cell::Cell<usize>>,
}

impl Future for Gate {
    type Output = u8;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
        self.polls.set(self.polls.get() + 1);
        let mut gate = self.open.lock().unwrap();
        if gate.0 {
            return Poll::Ready(7);
        }
        gate.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[test]
fn an_appended_child_is_polled_again_so_its_wake_reaches_the_new_set() {
    let open = Arc::new(Mutex::new((false, None)));
    let polls = Rc::new(std::cell::Cell::new(0));
    let mut old = FuturesUnordered::new();
    old.push(Gate {
        open: open.clone(),
        polls: polls.clone(),
    });
    let waker = futures::task::noop_waker();
    assert_eq!(poll_once(&mut old, &waker), Poll::Pending);
    assert_eq!(polls.get(), 1);
    let mut new = FuturesUnordered::new();
    new.append(&mut old);
    let (wakes, new_waker) = counting_waker();
    assert_eq!(poll_once(&mut new, &new_waker), Poll::Pending);
    assert_eq!(polls.get(), 2, "moved, so polled once more");
    let registered = open.lock().unwrap().1.take().unwrap();
    open.lock().unwrap().0 = true;
    registered.wake();
    assert_eq!(wakes.0.load(SeqCst), 1, "the wake reached the new set");
    assert_eq!(poll_once(&mut new, &new_waker), Poll::Ready(Some(7)));
}

#[test]
fn append_wakes_the_tasks_waiting_for_room_in_the_other_set() {
    let mut full = FuturesUnordered::with_limit(1);
    full.push(ready(1));
    let (wakes, waker) = counting_waker();
    assert!(full
        .poll_ready(&mut Context::from_waker(&waker))
        .is_pending());
    let mut into = FuturesUnordered::new();
    into.append(&mut full);
    assert_eq!(wakes.0.load(SeqCst), 1);
    assert!(full.poll_ready(&mut Context::from_waker(&waker)).is_ready());
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_are_send_and_sync_when_children_are_send() {
    assert_send_sync::<PushHandle<std::future::Ready<u32>>>();
    assert_send_sync::<PushHandle<Pin<Box<dyn Future<Output = ()> + Send>>>>();
}

/// `PushHandle<Rc<_>>` is neither: a push moves the child to the set's
/// thread.
#[allow(dead_code)]
fn handles_of_rc_children_are_not_send() {
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    // Compiles only if exactly one impl applies, i.e. the type is not Send.
    <PushHandle<std::future::Ready<Rc<u8>>> as AmbiguousIfSend<_>>::some_item();
}

#[test]
fn select_all_merges_streams_pushed_from_another_thread() {
    let mut merged = velodrome::SelectAll::new();
    let handle = merged.handle();
    let producer = std::thread::spawn(move || {
        for i in 0..4 {
            handle.push(futures::stream::iter(vec![i, i + 10])).unwrap();
        }
    });
    let mut out: Vec<i32> = futures::executor::block_on(merged.by_ref().collect());
    producer.join().unwrap();
    out.sort();
    assert_eq!(out, [0, 1, 2, 3, 10, 11, 12, 13]);
}
