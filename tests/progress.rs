//! `progress_while`: the set's children keep running while the loop body
//! awaits (futures-rs#2387), their outputs are kept in completion order and
//! served first, one item per stream, with keys, lanes, the budget, stats,
//! limits and panics behaving as in the plain loop.

use std::cell::Cell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{self, FusedStream, Stream};
use futures::task::noop_waker_ref;
use futures::StreamExt;
use tokio::time::{sleep, Instant};
use velodrome::{
    FuturesOrdered, FuturesUnordered, IndexedStreamsUnordered, Key, Priority, StreamsUnordered,
};

mod common;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A body that is pending `left` times (waking its task each time), then
/// ready with `()`: a loop body that takes a few polls, without a clock.
struct PendingFor {
    left: usize,
}

impl Future for PendingFor {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn pending_for(left: usize) -> PendingFor {
    PendingFor { left }
}

/// Polls `fut` once with a no-op waker.
fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(noop_waker_ref()))
}

/// A child of the #2387 scenario: a timer of `ms`, recording the moment it
/// completed (read inside the child, so a child that is polled late shows
/// it).
async fn timer_child(start: Instant, n: u64) -> (u64, Duration) {
    sleep(ms(n)).await;
    (n, start.elapsed())
}

const TIMERS: [u64; 6] = [10, 12, 14, 16, 18, 20];

#[tokio::test(start_paused = true)]
async fn children_finish_on_time_while_the_body_awaits() {
    // The plain loop: the body's 100 ms delay every child after the first.
    let start = Instant::now();
    let mut set: FuturesUnordered<_> = TIMERS.iter().map(|&n| timer_child(start, n)).collect();
    let mut plain = Vec::new();
    while let Some(done) = set.next().await {
        plain.push(done);
        sleep(ms(100)).await;
    }
    assert_eq!(plain[0], (10, ms(10)));
    for &(n, at) in &plain[1..] {
        assert!(
            at >= ms(110),
            "child {n} finished at {at:?}, before the body ended"
        );
    }

    // With progress: each finishes at its own time, in order.
    let start = Instant::now();
    let mut set: FuturesUnordered<_> = TIMERS.iter().map(|&n| timer_child(start, n)).collect();
    let mut progressed = Vec::new();
    while let Some(done) = set.next().await {
        progressed.push(done);
        set.progress_while(sleep(ms(100))).await;
    }
    let on_time: Vec<_> = TIMERS.iter().map(|&n| (n, ms(n))).collect();
    assert_eq!(progressed, on_time);
}

#[tokio::test(start_paused = true)]
async fn kept_outputs_are_served_first_in_completion_order() {
    let start = Instant::now();
    let mut set = FuturesUnordered::new();
    for n in [30, 10, 50, 20, 40] {
        set.push(timer_child(start, n));
    }
    set.progress_while(sleep(ms(100))).await;
    assert_eq!(set.len(), 5, "kept outputs are members until handed out");
    assert!(!set.is_terminated());
    let polls = set.stats().polls;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(set.next().await.unwrap().0);
    }
    assert_eq!(got, [10, 20, 30, 40, 50]);
    assert_eq!(set.stats().polls, polls, "serving the stash polls nothing");
    assert_eq!(set.next().await, None);
    assert!(set.is_terminated());
}

#[test]
fn a_ready_body_polls_no_child() {
    let mut set = FuturesUnordered::new();
    set.push(std::future::ready(1));
    let out = futures::executor::block_on(set.progress_while(async { 7 }));
    assert_eq!(out, 7);
    assert_eq!(set.stats().polls, 0);
}

/// An always-ready stream that counts its polls and wakes itself on each
/// (so a parked one is woken while parked). It ends after `CHATTY_ITEMS`
/// items, so that a set that failed to park it would not loop forever.
struct Chatty {
    polls: Rc<Cell<usize>>,
}

const CHATTY_ITEMS: usize = 1_000;

impl Stream for Chatty {
    type Item = usize;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        let n = self.polls.get();
        self.polls.set(n + 1);
        cx.waker().wake_by_ref();
        Poll::Ready((n < CHATTY_ITEMS).then_some(n))
    }
}

/// `Chatty` with `Send` items but a `!Send` counter: items are what must be
/// `Send`, not the stream.
fn chatty() -> (Chatty, Rc<Cell<usize>>) {
    let polls = Rc::new(Cell::new(0));
    (
        Chatty {
            polls: polls.clone(),
        },
        polls,
    )
}

#[test]
fn a_stream_that_yielded_is_parked_until_its_item_is_handed_out() {
    let mut set = StreamsUnordered::new();
    let (a, a_polls) = chatty();
    let (b, b_polls) = chatty();
    set.push(a);
    set.push(b);
    let long_body = if cfg!(miri) { 20 } else { 1_000 };
    futures::executor::block_on(set.progress_while(pending_for(long_body)));
    assert_eq!(a_polls.get(), 1, "polled again while its item was kept");
    assert_eq!(b_polls.get(), 1);
    assert_eq!(set.len(), 4, "two streams, two kept items");

    futures::executor::block_on(async {
        let mut first = [set.next().await.unwrap(), set.next().await.unwrap()];
        first.sort();
        assert_eq!(first, [0, 0]);
        // Both handed out, neither polled yet: serving polls nothing.
        assert_eq!((a_polls.get(), b_polls.get()), (1, 1));
        // Then they resume, each queued again like any stream that yields.
        let mut next = [set.next().await.unwrap(), set.next().await.unwrap()];
        next.sort();
        assert_eq!(next, [1, 1]);
        assert_eq!((a_polls.get(), b_polls.get()), (2, 2));
    });
}

#[test]
fn a_parked_stream_resumes_in_a_later_progress_after_its_item_is_out() {
    let mut set = StreamsUnordered::new();
    let (a, polls) = chatty();
    set.push(a);
    let rounds = if cfg!(miri) { 5 } else { 100 };
    futures::executor::block_on(async {
        for round in 0..rounds {
            set.progress_while(pending_for(10)).await;
            assert_eq!(polls.get(), round + 1, "one item per stream per body");
            assert_eq!(set.next().await, Some(round));
        }
    });
}

#[test]
fn kept_outputs_keep_their_keys() {
    futures::executor::block_on(async {
        let mut set = FuturesUnordered::new();
        let keys: Vec<Key> = (0..4).map(|n| set.insert(std::future::ready(n))).collect();
        set.progress_while(pending_for(1)).await;
        let mut got = Vec::new();
        while let Some((key, n)) = set.with_keys().next().await {
            got.push((key, n));
        }
        got.sort_by_key(|&(_, n)| n);
        let expected: Vec<_> = keys.iter().copied().zip(0..4).collect();
        assert_eq!(got, expected);

        let mut streams = IndexedStreamsUnordered::new();
        let a = streams.insert(stream::iter(vec!['a']));
        let b = streams.insert(stream::iter(vec!['b', 'c']));
        streams.progress_while(pending_for(1)).await;
        let mut got = Vec::new();
        while let Some(event) = streams.next().await {
            got.push(event);
        }
        got.sort();
        let mut expected = vec![
            (a, Some('a')),
            (a, None),
            (b, Some('b')),
            (b, Some('c')),
            (b, None),
        ];
        expected.sort();
        assert_eq!(got, expected);

        let mut streams = StreamsUnordered::new();
        let key = streams.insert(stream::iter(vec![5]));
        streams.progress_while(pending_for(1)).await;
        let got = futures::future::poll_fn(|cx| streams.poll_next_with_key(cx)).await;
        assert_eq!(got, Some((key, 5)));
    });
}

#[test]
fn a_parked_stream_can_be_cancelled_and_its_slot_reused() {
    futures::executor::block_on(async {
        let mut set = StreamsUnordered::new();
        let (a, a_polls) = chatty();
        let a_key = set.insert(a);
        set.progress_while(pending_for(3)).await;
        assert_eq!(a_polls.get(), 1);
        assert!(set.cancel(a_key), "a parked stream is still in the set");
        assert_eq!(set.len(), 1, "its kept item remains");

        // A new stream in the same slot is not parked by the old entry.
        let (b, b_polls) = chatty();
        let b_key = set.insert(b);
        assert_eq!(b_key.index(), a_key.index());
        set.progress_while(pending_for(3)).await;
        assert_eq!(b_polls.get(), 1, "the new occupant was polled");

        // The old item comes out first, with its key; serving it touches
        // nothing of the new occupant, which is itself parked.
        let got = futures::future::poll_fn(|cx| set.poll_next_with_key(cx)).await;
        assert_eq!(got, Some((a_key, 0)));
        set.progress_while(pending_for(3)).await;
        assert_eq!(b_polls.get(), 1, "still parked: its item is kept");
        let got = futures::future::poll_fn(|cx| set.poll_next_with_key(cx)).await;
        assert_eq!(got, Some((b_key, 0)));
        assert_eq!(set.next().await, Some(1));
        assert_eq!(a_polls.get(), 1, "a cancelled stream stays gone");
    });
}

#[test]
fn a_high_child_completes_first_into_the_stash() {
    futures::executor::block_on(async {
        let mut set = FuturesUnordered::new();
        for n in 0..8 {
            set.push(std::future::ready(n));
        }
        set.push_with_priority(std::future::ready(100), Priority::HIGH);
        set.progress_while(pending_for(1)).await;
        assert_eq!(set.stats().lane_polls[0], 1, "one HIGH poll");
        assert_eq!(set.next().await, Some(100));
        let mut rest = Vec::new();
        while let Some(n) = set.next().await {
            rest.push(n);
        }
        rest.sort();
        assert_eq!(rest, (0..8).collect::<Vec<_>>());
    });
}

#[test]
fn stats_count_each_kept_output_once() {
    futures::executor::block_on(async {
        let mut set: FuturesUnordered<_> = (0..5).map(std::future::ready).collect();
        set.progress_while(pending_for(1)).await;
        let stats = set.stats();
        assert_eq!((stats.polls, stats.outputs), (5, 5));
        while set.next().await.is_some() {}
        let stats = set.stats();
        assert_eq!(
            (stats.polls, stats.outputs),
            (5, 5),
            "served, not counted again"
        );
    });
}

/// An output that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Relaxed);
    }
}

#[test]
fn clear_and_drop_drop_kept_outputs() {
    let drops = Arc::new(AtomicUsize::new(0));
    let counted = |drops: &Arc<AtomicUsize>| std::future::ready(Counted(drops.clone()));
    let mut set = FuturesUnordered::new();
    for _ in 0..3 {
        set.push(counted(&drops));
    }
    futures::executor::block_on(set.progress_while(pending_for(1)));
    assert_eq!((set.len(), drops.load(Relaxed)), (3, 0));
    set.clear();
    assert_eq!((set.len(), drops.load(Relaxed)), (0, 3));
    assert!(!set.is_terminated());

    for _ in 0..2 {
        set.push(counted(&drops));
    }
    futures::executor::block_on(set.progress_while(pending_for(1)));
    drop(set);
    assert_eq!(drops.load(Relaxed), 5);
}

#[test]
fn dropping_progress_while_midway_keeps_the_stash() {
    let mut set: FuturesUnordered<_> = (0..3).map(std::future::ready).collect();
    {
        let progress = pin!(set.progress_while(std::future::pending::<()>()));
        assert!(poll_once(progress).is_pending());
    }
    assert_eq!(set.len(), 3);
    let mut got: Vec<i32> = futures::executor::block_on(set.collect());
    got.sort();
    assert_eq!(got, [0, 1, 2]);
}

#[test]
fn kept_outputs_count_against_the_limit() {
    let mut set = FuturesUnordered::with_limit(2);
    set.push(std::future::ready(1));
    set.push(std::future::ready(2));
    futures::executor::block_on(set.progress_while(pending_for(1)));
    assert!(set.is_full(), "two kept outputs fill a limit of two");
    assert!(set.try_push(std::future::ready(3)).is_err());
    let mut cx = Context::from_waker(noop_waker_ref());
    assert_eq!(set.poll_ready(&mut cx), Poll::Pending);
    assert!(matches!(set.poll_next_unpin(&mut cx), Poll::Ready(Some(_))));
    assert_eq!(set.poll_ready(&mut cx), Poll::Ready(()));
    assert!(set.try_push(std::future::ready(3)).is_ok());
}

#[tokio::test(start_paused = true)]
async fn futures_ordered_keeps_push_order_with_progress() {
    let start = Instant::now();
    let mut queue = FuturesOrdered::new();
    for n in [20, 10, 15] {
        queue.push_back(timer_child(start, n));
    }
    queue.progress_while(sleep(ms(100))).await;
    assert_eq!(queue.len(), 3);
    assert_eq!(queue.next().await, Some((20, ms(20))));
    assert_eq!(queue.next().await, Some((10, ms(10))));
    assert_eq!(queue.next().await, Some((15, ms(15))));
    assert_eq!(queue.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn select_all_progresses_through_its_set() {
    let mut merged = velodrome::select_all([stream::iter(vec![1, 2]), stream::iter(vec![3])]);
    merged.progress_while(sleep(ms(1))).await;
    assert_eq!(merged.len(), 4, "two streams, two kept items");
    let mut items: Vec<i32> = merged.collect().await;
    items.sort();
    assert_eq!(items, [1, 2, 3]);
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn deadlines_report_kept_outputs_first_then_expiries() {
    let start = Instant::now();
    let mut set: velodrome::Deadlines<FuturesUnordered<_>> = velodrome::Deadlines::new();
    let a = set.insert_with_timeout(timer_child(start, 10), ms(50));
    let b = set.insert_with_timeout(timer_child(start, 500), ms(50));
    set.progress_while(sleep(ms(100))).await;
    assert_eq!(set.next().await, Some((a, Ok((10, ms(10))))));
    let (key, result) = set.next().await.unwrap();
    assert_eq!(key, b);
    assert!(result.is_err());
    assert_eq!(set.next().await, None);

    // A stream's idle timeout restarts when its kept item is handed out:
    // parked for longer than its timeout, it is not timed out for it.
    let mut streams: velodrome::Deadlines<StreamsUnordered<_>> = velodrome::Deadlines::new();
    let key = streams.insert_with_timeout(stream::iter(vec![1, 2]), ms(50));
    streams.progress_while(sleep(ms(100))).await;
    assert_eq!(streams.len(), 2, "the stream and its kept item");
    assert_eq!(streams.next().await, Some((key, Ok(1))));
    assert_eq!(streams.next().await, Some((key, Ok(2))));
    assert_eq!(streams.next().await, None);
}

#[cfg(feature = "tokio")]
mod budget {
    use super::*;
    use tokio::task::coop;

    /// Counts polls of children made with the task's budget already gone.
    struct Budgeted {
        left: u32,
        wasted: Rc<Cell<u32>>,
    }

    impl Future for Budgeted {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if !coop::has_budget_remaining() {
                self.wasted.set(self.wasted.get() + 1);
            }
            while self.left > 0 {
                let step = pin!(coop::consume_budget());
                if step.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.left -= 1;
            }
            Poll::Ready(())
        }
    }

    #[test]
    fn a_progress_poll_never_polls_a_child_once_the_budget_is_gone() {
        let children = if cfg!(miri) { 20 } else { 500 };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let wasted = Rc::new(Cell::new(0));
        let w = wasted.clone();
        local.block_on(&rt, async move {
            let mut set = FuturesUnordered::new();
            for _ in 0..children {
                set.push(Budgeted {
                    left: 5,
                    wasted: w.clone(),
                });
            }
            // A body that spends budget too: it comes back with the budget
            // gone at every budget boundary.
            let body = async move {
                for _ in 0..children * 5 {
                    coop::consume_budget().await;
                }
            };
            tokio::task::spawn_local(async move {
                set.progress_while(body).await;
                let mut done = 0;
                while set.next().await.is_some() {
                    done += 1;
                }
                assert_eq!(done, children);
            })
            .await
            .unwrap();
        });
        assert_eq!(wasted.get(), 0, "children polled without budget");
    }
}

#[cfg(panic = "unwind")]
mod panics {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    #[test]
    fn a_body_that_panics_leaves_the_set_consistent() {
        let mut set: FuturesUnordered<_> = (0..3).map(std::future::ready).collect();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let mut progress = pin!(set.progress_while(async {
                PendingFor { left: 1 }.await;
                panic!("body");
            }));
            let _ = poll_once(progress.as_mut());
            let _ = poll_once(progress.as_mut());
        }));
        assert!(caught.is_err());
        assert_eq!(set.len(), 3);
        let mut got: Vec<i32> = futures::executor::block_on(set.collect());
        got.sort();
        assert_eq!(got, [0, 1, 2]);
    }

    struct PanicsWhenPolled;

    impl Future for PanicsWhenPolled {
        type Output = i32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<i32> {
            panic!("child");
        }
    }

    #[test]
    fn a_child_that_panics_during_progress_leaves_the_set_consistent() {
        let mut set: FuturesUnordered<Pin<Box<dyn Future<Output = i32> + Send>>> =
            FuturesUnordered::new();
        set.push(Box::pin(std::future::ready(1)));
        set.push(Box::pin(PanicsWhenPolled));
        set.push(Box::pin(std::future::ready(3)));
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let progress = pin!(set.progress_while(std::future::pending::<()>()));
            let _ = poll_once(progress);
        }));
        assert!(caught.is_err());
        // The panicking child is gone; whatever was kept before it stays,
        // and the rest is polled as usual.
        assert_eq!(set.len(), 2);
        let mut got: Vec<i32> = futures::executor::block_on(set.collect());
        got.sort();
        assert_eq!(got, [1, 3]);
    }
}

/// A future ready on first poll, without allocating.
fn ready_child(n: u32) -> std::future::Ready<u32> {
    std::future::ready(n)
}

#[test]
fn keeping_outputs_allocates_nothing_in_steady_state() {
    let children = if cfg!(miri) { 8 } else { 256 };
    let rounds = if cfg!(miri) { 4 } else { 50 };
    let mut set = FuturesUnordered::new();
    let round = |set: &mut FuturesUnordered<_>| {
        for n in 0..children {
            set.push(ready_child(n));
        }
        let progress = pin!(set.progress_while(pending_for(1)));
        assert!(poll_once(progress).is_pending());
        assert_eq!(set.len(), children as usize);
        let mut cx = Context::from_waker(noop_waker_ref());
        while let Poll::Ready(Some(_)) = set.poll_next_unpin(&mut cx) {}
    };
    round(&mut set); // grows the slots and the stash
    let (allocations, ()) = common::allocations_during(|| {
        for _ in 0..rounds {
            round(&mut set);
        }
    });
    assert_eq!(allocations, 0);

    // Streams: the parked table too.
    let mut streams = StreamsUnordered::new();
    for _ in 0..children {
        streams.push(stream::repeat(1u8));
    }
    let round = |set: &mut StreamsUnordered<_>| {
        let progress = pin!(set.progress_while(pending_for(1)));
        assert!(poll_once(progress).is_pending());
        let mut cx = Context::from_waker(noop_waker_ref());
        for _ in 0..children {
            assert!(set.poll_next_unpin(&mut cx).is_ready());
        }
    };
    round(&mut streams);
    let (allocations, ()) = common::allocations_during(|| {
        for _ in 0..rounds {
            round(&mut streams);
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn progress_does_not_terminate_the_set() {
    futures::executor::block_on(async {
        let mut set = FuturesUnordered::new();
        // Empty and never polled: progress finds nothing and ends nothing.
        set.progress_while(pending_for(1)).await;
        assert!(!set.is_terminated());
        assert_eq!(set.next().await, None);
        assert!(set.is_terminated());
        // Still terminated after a progress that found nothing.
        set.progress_while(pending_for(1)).await;
        assert!(set.is_terminated());

        // Every child finishes into the stash: the set is empty of children
        // but terminated only once `next()` has said `None`.
        set.push(std::future::ready(1));
        set.push(std::future::ready(2));
        set.progress_while(pending_for(1)).await;
        assert!(!set.is_terminated());
        assert!(set.next().await.is_some());
        assert!(set.next().await.is_some());
        assert!(!set.is_terminated(), "no `None` seen yet");
        assert_eq!(set.next().await, None);
        assert!(set.is_terminated());
    });
}

/// Counts wakes of the task polling it.
#[derive(Default)]
struct WakeCount(AtomicUsize);

impl std::task::Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Relaxed);
    }
}

#[test]
fn one_progress_poll_keeps_at_most_128_outputs_then_lets_the_task_run() {
    let mut set = FuturesUnordered::new();
    for n in 0..300 {
        set.push(ready_child(n));
    }
    let wakes = Arc::new(WakeCount::default());
    let waker = std::task::Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    {
        let mut progress = pin!(set.progress_while(std::future::pending::<()>()));
        assert!(progress.as_mut().poll(&mut cx).is_pending());
        assert_eq!(wakes.0.load(Relaxed), 1, "more may be ready: polled again");
        assert!(progress.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(set.stats().outputs, 256);
    assert_eq!(set.len(), 300, "kept outputs are still members");
}
