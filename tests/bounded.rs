//! Back-pressure: a set with a limit refuses children and hands them back,
//! concurrent `try_push`es never pass the limit, and a task waiting for room
//! (`poll_ready`) is woken exactly when a slot frees and leaves the set
//! below its limit, from whichever task frees it.
//!
//! Wakes are counted with a counting waker, so "woken" and "not woken" are
//! exact; children are futures-channel oneshots (and mpsc streams) that the
//! test completes by hand. Allocations are counted with a thread-local
//! counting allocator, as in `tests/alloc.rs`.

use std::cell::Cell;
use std::future::{poll_fn, ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::channel::{mpsc, oneshot};
use futures::future::Either;
use futures::task::noop_waker_ref;
use futures::StreamExt;
use velodrome::{Full, FuturesUnordered, IndexedStreamsUnordered, Priority, StreamsUnordered};

// ------------------------------------------------------------------ helpers

mod common;

use common::allocations_during;

/// A waker that counts its wakes: the producer task's.
#[derive(Default)]
struct WakeCount(AtomicUsize);

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl WakeCount {
    fn wakes(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// A producer: a task (its counting waker) that waits for room.
struct Producer {
    count: Arc<WakeCount>,
    waker: Waker,
}

impl Producer {
    fn new() -> Self {
        let count = Arc::new(WakeCount::default());
        let waker = Waker::from(count.clone());
        Producer { count, waker }
    }

    fn wakes(&self) -> usize {
        self.count.wakes()
    }

    /// `poll_ready` from the producer's task.
    fn poll_ready<T>(&self, poll_ready: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        poll_ready(&mut Context::from_waker(&self.waker))
    }
}

/// Polls `set` once from the consumer's task (not the producer's).
fn consume<S: futures::Stream + Unpin>(set: &mut S) -> Poll<Option<S::Item>> {
    set.poll_next_unpin(&mut Context::from_waker(noop_waker_ref()))
}

/// A set of `n` pending oneshot children, with their senders.
fn full_set(
    n: usize,
) -> (
    FuturesUnordered<oneshot::Receiver<u32>>,
    Vec<oneshot::Sender<u32>>,
) {
    let set = FuturesUnordered::with_limit(n);
    let senders = (0..n)
        .map(|_| {
            let (tx, rx) = oneshot::channel();
            set.try_push(rx).expect("below the limit");
            tx
        })
        .collect();
    (set, senders)
}

/// A child whose identity is its heap address.
struct Tagged(Box<u32>);

impl Future for Tagged {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(*self.0)
    }
}

// ------------------------------------------------------- refusing and keys

#[test]
fn full_set_refuses_and_hands_back_the_same_child() {
    let set = FuturesUnordered::with_limit(2);
    set.try_push(Tagged(Box::new(1))).unwrap();
    set.try_insert(Tagged(Box::new(2))).unwrap();
    assert!(set.is_full());

    let child = Tagged(Box::new(3));
    let address: *const u32 = &*child.0;
    let refused = set.try_push(child).unwrap_err();
    let back = refused.into_inner();
    assert_eq!(
        &*back.0 as *const u32, address,
        "a different child came back"
    );
    assert_eq!(*back.0, 3);

    for refused in [
        set.try_push_with_priority(back, Priority::HIGH)
            .unwrap_err(),
        set.try_insert(Tagged(Box::new(4))).map(drop).unwrap_err(),
        set.try_insert_with_priority(Tagged(Box::new(5)), Priority::LOW)
            .map(drop)
            .unwrap_err(),
    ] {
        assert!([3, 4, 5].contains(&*refused.into_inner().0));
    }
    assert_eq!(set.len(), 2, "a refused child was added");
}

#[test]
fn full_is_an_error_that_shows_no_child() {
    let set = FuturesUnordered::with_limit(1);
    set.push(ready(1));
    let refused: Full<Ready<i32>> = set.try_push(ready(2)).unwrap_err();
    assert_eq!(format!("{refused:?}"), "Full(..)");
    assert_eq!(refused.to_string(), "the set is at its limit");
    let error: &dyn std::error::Error = &refused;
    assert!(error.source().is_none());
    assert_eq!(refused.clone().into_inner().into_inner(), 2);
    assert_eq!(
        format!("{set:?}"),
        "FuturesUnordered { len: 1, limit: 1, .. }"
    );
    let unlimited = FuturesUnordered::<Ready<()>>::new();
    assert_eq!(format!("{unlimited:?}"), "FuturesUnordered { len: 0, .. }");
}

#[test]
fn try_insert_key_names_the_child() {
    let mut set = FuturesUnordered::with_limit(2);
    let (tx, rx) = oneshot::channel();
    let key = set.try_insert(rx).unwrap();
    let (_tx2, rx2) = oneshot::channel();
    let other = set.try_insert_with_priority(rx2, Priority::HIGH).unwrap();
    assert_ne!(key, other);
    assert!(set.contains(key) && set.contains(other));
    tx.send(7).unwrap();
    let mut cx = Context::from_waker(noop_waker_ref());
    assert_eq!(
        set.poll_next_with_key(&mut cx),
        Poll::Ready(Some((key, Ok(7))))
    );
    assert!(!set.contains(key));
    assert!(set.cancel(other));
    assert!(set.is_empty());
}

#[test]
fn unlimited_try_push_always_succeeds() {
    let n = if cfg!(miri) { 100 } else { 10_000 };
    let mut set = FuturesUnordered::new();
    assert_eq!(set.limit(), None);
    for limit in [None, Some(0), Some(usize::MAX)] {
        set.set_limit(limit);
        assert_eq!(set.limit(), None, "{limit:?} is no limit");
        for i in 0..n {
            set.try_push(ready(i)).expect("no limit");
            set.push(ready(i));
        }
        assert!(!set.is_full());
        let producer = Producer::new();
        assert_eq!(
            producer.poll_ready(|cx| set.poll_ready(cx)),
            Poll::Ready(())
        );
        set.clear();
    }
    assert_eq!(FuturesUnordered::<Ready<()>>::with_limit(0).limit(), None);
}

#[test]
fn plain_push_ignores_the_limit_and_try_push_then_refuses() {
    let mut set = FuturesUnordered::with_limit(2);
    for i in 0..4 {
        set.push(ready(i));
    }
    assert_eq!(set.len(), 4);
    assert!(set.try_push(ready(9)).is_err());
    let mut out = Vec::new();
    while let Poll::Ready(Some(i)) = consume(&mut set) {
        out.push(i);
    }
    out.sort();
    assert_eq!(out, [0, 1, 2, 3]);
    assert!(set.try_push(ready(9)).is_ok());
}

// ------------------------------------------------------------ waking rules

#[test]
fn completion_in_the_consumer_task_wakes_the_waiting_producer() {
    let (mut set, mut senders) = full_set(2);
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    assert_eq!(consume(&mut set), Poll::Pending);
    assert_eq!(producer.wakes(), 0);

    senders.pop().unwrap().send(1).unwrap();
    assert_eq!(consume(&mut set), Poll::Ready(Some(Ok(1))));
    assert_eq!(
        producer.wakes(),
        1,
        "the completion did not wake the producer"
    );
    assert_eq!(
        producer.poll_ready(|cx| set.poll_ready(cx)),
        Poll::Ready(())
    );
    let (_tx, rx) = oneshot::channel();
    set.try_push(rx).expect("room after Ready");
    // The producer's waker was used once: the next free, with nobody
    // waiting, wakes nobody.
    senders.pop().unwrap().send(2).unwrap();
    assert_eq!(consume(&mut set), Poll::Ready(Some(Ok(2))));
    assert_eq!(producer.wakes(), 1);
}

#[test]
fn cancel_wakes_the_waiting_producer() {
    let mut set = FuturesUnordered::with_limit(1);
    let (_tx, rx) = oneshot::channel::<u32>();
    let key = set.try_insert(rx).unwrap();
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    assert!(set.cancel(key));
    assert_eq!(producer.wakes(), 1);
    assert_eq!(
        producer.poll_ready(|cx| set.poll_ready(cx)),
        Poll::Ready(())
    );
    // A second cancel of the same key frees nothing and wakes nobody.
    set.try_push(oneshot::channel().1).unwrap();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    assert!(!set.cancel(key));
    assert_eq!(producer.wakes(), 1);
}

#[test]
fn remove_wakes_the_waiting_producer_and_returns_the_child() {
    let mut set = FuturesUnordered::with_limit(1);
    let (tx, rx) = oneshot::channel::<u32>();
    let key = set.try_insert(rx).unwrap();
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    let child = set.remove(key).expect("the child is there");
    assert_eq!(producer.wakes(), 1);
    assert_eq!(set.len(), 0);
    // The removed child is whole: it still receives.
    tx.send(5).unwrap();
    assert_eq!(futures::executor::block_on(child), Ok(5));
}

#[test]
fn clear_wakes_the_waiting_producer() {
    let (mut set, _senders) = full_set(3);
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    set.clear();
    assert_eq!(producer.wakes(), 1);
    assert_eq!(
        producer.poll_ready(|cx| set.poll_ready(cx)),
        Poll::Ready(())
    );
}

#[test]
fn dropping_or_replacing_the_set_wakes_the_waiting_producer() {
    let shared = Mutex::new(full_set(2).0);
    let producer = Producer::new();
    let poll_ready = |cx: &mut Context<'_>| shared.lock().unwrap().poll_ready(cx);
    assert_eq!(producer.poll_ready(poll_ready), Poll::Pending);
    // The consumer replaces the set: the producer must look again.
    *shared.lock().unwrap() = FuturesUnordered::with_limit(2);
    assert_eq!(producer.wakes(), 1);
    assert_eq!(producer.poll_ready(poll_ready), Poll::Ready(()));
}

/// Panics when polled.
struct PanicOnPoll;

impl Future for PanicOnPoll {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        panic!("child panicked");
    }
}

#[cfg(panic = "unwind")]
#[test]
fn panicking_child_wakes_the_waiting_producer() {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    let mut set = FuturesUnordered::with_limit(1);
    set.try_push(PanicOnPoll).unwrap();
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    assert!(catch_unwind(AssertUnwindSafe(|| consume(&mut set))).is_err());
    assert_eq!(producer.wakes(), 1);
    assert_eq!(set.len(), 0);
    assert!(set.try_push(PanicOnPoll).is_ok());
}

/// Pending forever; panics when dropped if `panic`.
struct PanicOnDrop {
    panic: bool,
}

impl Future for PanicOnDrop {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if self.panic && !std::thread::panicking() {
            panic!("child's drop panicked");
        }
    }
}

#[cfg(panic = "unwind")]
#[test]
fn a_panicking_drop_while_freeing_still_wakes_the_producer() {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    // cancel
    let mut set = FuturesUnordered::with_limit(1);
    let key = set.try_insert(PanicOnDrop { panic: true }).unwrap();
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    assert!(catch_unwind(AssertUnwindSafe(|| set.cancel(key))).is_err());
    assert_eq!(producer.wakes(), 1, "cancel");
    assert_eq!(set.len(), 0);

    // clear
    set.set_limit(2);
    set.try_push(PanicOnDrop { panic: false }).unwrap();
    set.try_push(PanicOnDrop { panic: true }).unwrap();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    assert!(catch_unwind(AssertUnwindSafe(|| set.clear())).is_err());
    assert_eq!(producer.wakes(), 2, "clear");
    assert_eq!(set.len(), 0);
    assert_eq!(
        producer.poll_ready(|cx| set.poll_ready(cx)),
        Poll::Ready(())
    );
}

#[test]
fn nothing_that_frees_no_slot_wakes_the_producer() {
    // Futures: polls that complete nothing, refused pushes, plain pushes, a
    // lowered limit, a stale key.
    let (mut set, _senders) = full_set(2);
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    for _ in 0..3 {
        assert_eq!(consume(&mut set), Poll::Pending);
    }
    assert!(set.try_push(oneshot::channel().1).is_err());
    let (stale_tx, rx) = oneshot::channel();
    set.push(rx);
    set.set_limit(1);
    stale_tx.send(0).unwrap();
    assert_eq!(consume(&mut set), Poll::Ready(Some(Ok(0))));
    // The completion freed a slot, but 2 children are still at or over the
    // lowered limit of 1.
    assert_eq!(set.len(), 2);
    assert_eq!(producer.wakes(), 0);

    // Streams: a stream yielding items keeps its slot.
    let mut streams = StreamsUnordered::with_limit(1);
    let (tx, rx) = mpsc::unbounded::<u32>();
    streams.try_push(rx).unwrap();
    assert_eq!(
        producer.poll_ready(|cx| streams.poll_ready(cx)),
        Poll::Pending
    );
    for i in 0..3 {
        tx.unbounded_send(i).unwrap();
        assert_eq!(consume(&mut streams), Poll::Ready(Some(i)));
    }
    assert_eq!(consume(&mut streams), Poll::Pending);
    assert_eq!(producer.wakes(), 0, "an item freed no slot");
    // Its end does.
    drop(tx);
    assert_eq!(consume(&mut streams), Poll::Ready(None));
    assert_eq!(producer.wakes(), 1, "the stream's end freed its slot");
}

#[test]
fn indexed_stream_end_wakes_the_waiting_producer() {
    let mut set = IndexedStreamsUnordered::with_limit(1);
    let (tx, rx) = mpsc::unbounded::<u32>();
    let key = set.try_insert(rx).unwrap();
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    tx.unbounded_send(1).unwrap();
    assert_eq!(consume(&mut set), Poll::Ready(Some((key, Some(1)))));
    assert_eq!(producer.wakes(), 0);
    drop(tx);
    assert_eq!(consume(&mut set), Poll::Ready(Some((key, None))));
    assert_eq!(producer.wakes(), 1);
}

#[test]
fn lowering_the_limit_below_len_keeps_the_children_until_they_leave() {
    let (mut set, mut senders) = full_set(4);
    set.set_limit(2);
    assert_eq!(set.limit(), Some(2));
    assert_eq!(set.len(), 4, "lowering the limit dropped children");
    assert!(set.is_full());
    assert!(set.try_push(oneshot::channel().1).is_err());
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    for (value, woken) in [(0, false), (1, false), (2, true)] {
        senders.remove(0).send(value).unwrap();
        assert_eq!(consume(&mut set), Poll::Ready(Some(Ok(value))));
        assert_eq!(
            producer.wakes() > 0,
            woken,
            "after {} children left, {} remain",
            value + 1,
            set.len()
        );
        if !woken {
            // Still at or over the limit: the producer waits on.
            assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
        }
    }
    assert_eq!(set.len(), 1);
    assert_eq!(
        producer.poll_ready(|cx| set.poll_ready(cx)),
        Poll::Ready(())
    );
}

#[test]
fn raising_the_limit_wakes_the_waiting_producer() {
    let (mut set, _senders) = full_set(2);
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    set.set_limit(2);
    assert_eq!(producer.wakes(), 0, "the same limit gives no room");
    set.set_limit(3);
    assert_eq!(producer.wakes(), 1);
    assert_eq!(
        producer.poll_ready(|cx| set.poll_ready(cx)),
        Poll::Ready(())
    );
    assert_eq!(
        producer.poll_ready(|cx| set.poll_ready(cx)),
        Poll::Ready(())
    );
    set.try_push(oneshot::channel().1).unwrap();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    set.set_limit(None);
    assert_eq!(producer.wakes(), 2, "removing the limit gives room");
}

#[test]
fn every_waiting_producer_is_woken() {
    let (mut set, mut senders) = full_set(1);
    let producers: Vec<Producer> = (0..3).map(|_| Producer::new()).collect();
    for producer in &producers {
        assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    }
    senders.pop().unwrap().send(1).unwrap();
    assert_eq!(consume(&mut set), Poll::Ready(Some(Ok(1))));
    for producer in &producers {
        assert_eq!(producer.wakes(), 1);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "Miri gives a waker vtable a new address per use, so will_wake cannot tell a task waits again"
)]
fn a_task_waiting_again_is_woken_once() {
    let (mut set, mut senders) = full_set(1);
    let producer = Producer::new();
    for _ in 0..3 {
        assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
    }
    senders.pop().unwrap().send(1).unwrap();
    assert_eq!(consume(&mut set), Poll::Ready(Some(Ok(1))));
    assert_eq!(producer.wakes(), 1);
}

#[test]
fn lanes_keys_and_limit_together() {
    let mut set = FuturesUnordered::with_limit(3);
    let low = set
        .try_insert_with_priority(Either::Right(ready("low")), Priority::LOW)
        .map_err(drop)
        .unwrap();
    let normal = set
        .try_insert(Either::Right(ready("normal")))
        .map_err(drop)
        .unwrap();
    let (tx, rx) = oneshot::channel::<&str>();
    let high = set
        .try_insert_with_priority(Either::Left(async { rx.await.unwrap() }), Priority::HIGH)
        .map_err(drop)
        .unwrap();
    let refused = set
        .try_push_with_priority(Either::Right(ready("late")), Priority::HIGH)
        .unwrap_err();
    assert_eq!(set.len(), 3);
    let producer = Producer::new();
    assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);

    // Cancelling the NORMAL child by key frees its slot.
    assert!(set.cancel(normal));
    assert_eq!(producer.wakes(), 1);
    assert!(!set.contains(normal));
    // The refused child goes in now, in the HIGH lane, and is served first.
    let late = set
        .try_insert_with_priority(refused.into_inner(), Priority::HIGH)
        .map_err(drop)
        .unwrap();
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut with_key = || match set.poll_next_with_key(&mut cx) {
        Poll::Ready(Some(next)) => Some(next),
        _ => None,
    };
    assert_eq!(with_key(), Some((late, "late")));
    assert_eq!(with_key(), Some((low, "low")));
    tx.send("high").unwrap();
    assert_eq!(with_key(), Some((high, "high")));
    assert_eq!(with_key(), None);
}

// ---------------------------------------------------------- the future form

#[test]
fn make_room_resolves_at_once_when_there_is_room() {
    let mut set = FuturesUnordered::with_limit(2);
    set.push(std::future::pending::<()>());
    let mut cx = Context::from_waker(noop_waker_ref());
    assert_eq!(
        Pin::new(&mut set.make_room()).poll(&mut cx),
        Poll::Ready(None)
    );
    let mut unlimited = FuturesUnordered::new();
    unlimited.push(std::future::pending::<()>());
    assert_eq!(
        Pin::new(&mut unlimited.make_room()).poll(&mut cx),
        Poll::Ready(None)
    );
}

#[test]
fn make_room_drives_a_full_set_and_hands_back_each_output() {
    // Futures: waits for a completion, woken by the child.
    let (mut set, mut senders) = full_set(1);
    let producer = Producer::new();
    let mut cx = Context::from_waker(&producer.waker);
    assert_eq!(Pin::new(&mut set.make_room()).poll(&mut cx), Poll::Pending);
    senders.pop().unwrap().send(4).unwrap();
    assert_eq!(producer.wakes(), 1, "the child's completion woke the task");
    assert_eq!(
        Pin::new(&mut set.make_room()).poll(&mut cx),
        Poll::Ready(Some(Ok(4)))
    );
    assert_eq!(
        Pin::new(&mut set.make_room()).poll(&mut cx),
        Poll::Ready(None)
    );

    // Streams: every item comes out until the stream ends and frees its slot.
    let mut streams = StreamsUnordered::with_limit(1);
    streams.push(futures::stream::iter([1, 2, 3]));
    let items: Vec<i32> = futures::executor::block_on(async {
        let mut items = Vec::new();
        while let Some(item) = streams.make_room().await {
            items.push(item);
        }
        items
    });
    assert_eq!(items, [1, 2, 3]);
    assert!(streams.try_push(futures::stream::iter([4, 5, 6])).is_ok());
}

#[test]
fn make_room_loop_keeps_the_set_at_its_limit_and_loses_nothing() {
    let n: u32 = if cfg!(miri) { 50 } else { 1_000 };
    let mut set = FuturesUnordered::with_limit(8);
    let outputs = futures::executor::block_on(async {
        let mut outputs = Vec::new();
        for i in 0..n {
            while let Some(output) = set.make_room().await {
                outputs.push(output);
            }
            set.try_push(ready(i)).expect("room was made");
            assert!(set.len() <= 8);
        }
        outputs.extend(set.collect::<Vec<_>>().await);
        outputs
    });
    let mut sorted = outputs;
    sorted.sort();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>());
}

// --------------------------------------------------------- two real tasks

/// A producer task and a consumer task share the set behind a mutex; the
/// producer only ever waits in `poll_ready` and never polls the set, so
/// every time it runs again it was woken by a completion in the consumer's
/// task.
#[test]
fn producer_task_waits_for_room_freed_by_consumer_task() {
    let n: u32 = if cfg!(miri) { 40 } else { 2_000 };
    let limit = 4;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (outputs, waits) = rt.block_on(async move {
        let set = Arc::new(Mutex::new(FuturesUnordered::with_limit(limit)));
        let producer = tokio::spawn({
            let set = set.clone();
            async move {
                let mut waits = 0;
                for i in 0..n {
                    let mut waited = false;
                    poll_fn(|cx| {
                        let ready = set.lock().unwrap().poll_ready(cx);
                        waited |= ready.is_pending();
                        ready
                    })
                    .await;
                    waits += usize::from(waited);
                    let set = set.lock().unwrap();
                    set.try_push(async move {
                        tokio::task::yield_now().await;
                        i
                    })
                    .expect("room after poll_ready, and only this task pushes");
                    assert!(set.len() <= limit);
                }
                waits
            }
        });
        let mut outputs = Vec::new();
        loop {
            let next = poll_fn(|cx| set.lock().unwrap().poll_next_unpin(cx)).await;
            match next {
                Some(i) => outputs.push(i),
                None if producer.is_finished() => break,
                None => tokio::task::yield_now().await,
            }
        }
        (outputs, producer.await.unwrap())
    });
    let mut sorted = outputs;
    sorted.sort();
    assert_eq!(
        sorted,
        (0..n).collect::<Vec<_>>(),
        "a child was lost or doubled"
    );
    assert!(waits > 0, "the producer never had to wait");
}

/// The same in a `LocalSet` with `Rc<RefCell<..>>`, and children that
/// complete only when the test's third task sends: the producer waits on
/// the consumer, the consumer on the children.
#[test]
fn local_producer_is_woken_by_local_consumer() {
    let n: usize = if cfg!(miri) { 20 } else { 500 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let received = local.block_on(&rt, async move {
        let set = Rc::new(std::cell::RefCell::new(StreamsUnordered::with_limit(2)));
        let (senders_tx, mut senders_rx) = tokio::sync::mpsc::unbounded_channel();
        let producer = tokio::task::spawn_local({
            let set = set.clone();
            async move {
                for i in 0..n {
                    poll_fn(|cx| set.borrow_mut().poll_ready(cx)).await;
                    let (tx, rx) = mpsc::unbounded::<usize>();
                    set.borrow().try_push(rx).expect("room");
                    senders_tx.send((i, tx)).unwrap();
                }
            }
        });
        let feeder = tokio::task::spawn_local(async move {
            while let Some((i, tx)) = senders_rx.recv().await {
                tx.unbounded_send(i).unwrap();
                tokio::task::yield_now().await;
                // The stream ends here, freeing its slot.
                drop(tx);
            }
        });
        let mut received = Vec::new();
        loop {
            let next = poll_fn(|cx| set.borrow_mut().poll_next_unpin(cx)).await;
            match next {
                Some(i) => received.push(i),
                None if producer.is_finished() => break,
                None => tokio::task::yield_now().await,
            }
        }
        feeder.await.unwrap();
        received
    });
    let mut sorted = received;
    sorted.sort();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>());
}

// ------------------------------------------------------------------ storm

/// A child with an id, ready at once.
struct Id(u64);

impl Future for Id {
    type Output = u64;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u64> {
        Poll::Ready(self.0)
    }
}

#[test]
fn try_push_storm_never_exceeds_the_limit_and_loses_nothing() {
    let (threads, rounds, attempts, limit) = if cfg!(miri) {
        (4, 3, 4, 5)
    } else {
        (8, 200, 64, 100)
    };
    let mut set = FuturesUnordered::with_limit(limit);
    let mut next_id = 0_u64;
    for round in 0..rounds {
        // Plain pushes first, some rounds past the limit (they ignore it).
        let before = round % (limit + 3);
        let mut expected: Vec<u64> = (0..before as u64).map(|i| next_id + i).collect();
        for &id in &expected {
            set.push(Id(id));
        }
        next_id += before as u64;
        let base = next_id;
        next_id += (threads * attempts) as u64;
        let ceiling = limit.max(before);

        let accepted: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let set = &set;
            let workers: Vec<_> = (0..threads)
                .map(|thread| {
                    scope.spawn(move || {
                        let mut accepted = Vec::new();
                        for attempt in 0..attempts {
                            let id = base + (thread * attempts + attempt) as u64;
                            match set.try_push(Id(id)) {
                                Ok(()) => accepted.push(id),
                                Err(full) => assert_eq!(full.into_inner().0, id),
                            }
                            let len = set.len();
                            assert!(len <= ceiling, "len {len} past {ceiling}");
                        }
                        accepted
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let accepted: Vec<u64> = accepted.into_iter().flatten().collect();
        assert_eq!(
            accepted.len(),
            (threads * attempts).min(limit.saturating_sub(before)),
            "round {round}: every free slot is taken exactly once"
        );
        assert_eq!(set.len(), before + accepted.len());
        expected.extend(accepted);
        let mut out = Vec::new();
        while let Poll::Ready(Some(id)) = consume(&mut set) {
            out.push(id);
        }
        out.sort();
        expected.sort();
        assert_eq!(out, expected, "round {round}: completed exactly once");
    }
}

// ------------------------------------------------------------- allocation

#[test]
fn try_push_into_a_freed_slot_allocates_nothing() {
    let limit = if cfg!(miri) { 16 } else { 1_000 };
    let rounds = if cfg!(miri) { 50 } else { 10_000 };
    let mut set = FuturesUnordered::with_limit(limit);
    // Warm up: every slot and the recycled list exist.
    for round in 0..2 {
        for i in 0..limit {
            set.try_push(ready(i)).unwrap();
        }
        assert!(set.try_push(ready(round)).is_err());
        while let Poll::Ready(Some(_)) = consume(&mut set) {}
    }
    for i in 0..limit {
        set.try_push(ready(i)).unwrap();
    }
    // Steady state at the limit: take one output, try_push one child.
    let (allocations, ()) = allocations_during(|| {
        for i in 0..rounds {
            assert!(matches!(consume(&mut set), Poll::Ready(Some(_))));
            set.try_push(ready(i)).unwrap();
            if let Err(full) = set.try_push(ready(i)) {
                drop(full.into_inner());
            }
        }
    });
    assert_eq!(allocations, 0, "allocations in {rounds} rounds of churn");
}

#[test]
fn waiting_for_room_again_allocates_nothing() {
    let (mut set, mut senders) = full_set(1);
    let producer = Producer::new();
    let rounds = if cfg!(miri) { 10 } else { 1_000 };
    // Round 0 warms up: the first wait grows the list of waiting tasks, the
    // first completion the set's free list and cycle storage.
    for round in 0..rounds {
        let (tx, rx) = oneshot::channel();
        let (allocations, ()) = allocations_during(|| {
            assert_eq!(producer.poll_ready(|cx| set.poll_ready(cx)), Poll::Pending);
            senders.pop().unwrap().send(1).unwrap();
            assert_eq!(consume(&mut set), Poll::Ready(Some(Ok(1))));
            assert_eq!(
                producer.poll_ready(|cx| set.poll_ready(cx)),
                Poll::Ready(())
            );
            set.try_push(rx).unwrap();
        });
        if round > 0 {
            assert_eq!(allocations, 0, "round {round}");
        }
        senders.push(tx);
    }
    assert_eq!(producer.wakes(), rounds);
}

// ----------------------------------------------------------------- budget

/// Drains a bounded set kept at its limit (each output replaced through
/// `try_push`, or `make_room` then `try_push`) while a sibling task waits to
/// run; returns how many outputs came out before the sibling first ran.
#[cfg(feature = "tokio")]
fn bounded_outputs_before_sibling_runs(n: usize, use_make_room: bool) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let produced = Rc::new(Cell::new(0usize));
        let seen = Rc::new(Cell::new(None));
        let (p, s) = (produced.clone(), seen.clone());
        let drainer = tokio::task::spawn_local(async move {
            let mut set = FuturesUnordered::with_limit(64);
            if use_make_room {
                for i in 0..n {
                    while set.make_room().await.is_some() {
                        p.set(p.get() + 1);
                    }
                    set.try_push(ready(i)).unwrap();
                }
            } else {
                for i in 0..64 {
                    set.try_push(ready(i)).unwrap();
                }
                let mut pushed = 64;
                while set.next().await.is_some() {
                    p.set(p.get() + 1);
                    if pushed < n {
                        set.try_push(ready(pushed)).unwrap();
                        pushed += 1;
                    }
                }
            }
        });
        let sibling = tokio::task::spawn_local(async move {
            s.set(Some(produced.get()));
        });
        drainer.await.unwrap();
        sibling.await.unwrap();
        seen.get().unwrap()
    })
}

#[cfg(feature = "tokio")]
#[test]
fn bounded_set_yields_to_siblings_within_one_budget() {
    let n = if cfg!(miri) { 300 } else { 10_000 };
    for use_make_room in [false, true] {
        let before = bounded_outputs_before_sibling_runs(n, use_make_room);
        assert!(
            (100..=128).contains(&before),
            "make_room: {use_make_room}: the sibling ran after {before} outputs"
        );
    }
}
