//! `Deadlines`: one timer for a whole set. Every test runs on tokio's paused
//! clock (time moves only when the runtime is idle, or by `advance`), so
//! the instants below are exact and nothing sleeps in real time.
#![cfg(feature = "tokio")]

use std::cell::Cell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::stream::{self, FusedStream, Stream, StreamExt};
use tokio::time::{advance, sleep, Duration, Instant};
use velodrome::{
    Deadlines, FuturesUnordered, IndexedStreamsUnordered, Key, Priority, StreamsUnordered,
};

mod common;

use common::allocations;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A request that takes `work` ms (none: ready at its first poll).
async fn request(work: u64, id: usize) -> usize {
    if work > 0 {
        sleep(ms(work)).await;
    }
    id
}

/// One `poll_next` with the task's own waker.
async fn poll_once<S: Stream + Unpin>(set: &mut S) -> Poll<Option<S::Item>> {
    poll_fn(|cx| Poll::Ready(set.poll_next_unpin(cx))).await
}

/// A future that is `Pending` at its first poll and `Ready` from then on,
/// without ever waking its waker: only a second poll finds it done.
struct ReadyOnSecondPoll(bool);

impl Future for ReadyOnSecondPoll {
    type Output = &'static str;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<&'static str> {
        if self.0 {
            Poll::Ready("late but ready")
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// A stream with an item after each delay (in ms, from the previous item),
/// then pending forever.
fn ticks(delays: Vec<u64>) -> Pin<Box<dyn Stream<Item = u64>>> {
    Box::pin(
        stream::iter(delays)
            .then(|d| async move {
                sleep(ms(d)).await;
                d
            })
            .chain(stream::pending()),
    )
}

/// A stream with an item after each delay, then its end.
fn finite_ticks(delays: Vec<u64>) -> Pin<Box<dyn Stream<Item = u64>>> {
    Box::pin(stream::iter(delays).then(|d| async move {
        sleep(ms(d)).await;
        d
    }))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Output,
    Elapsed,
}

#[tokio::test(start_paused = true)]
async fn mixed_deadlines_report_every_child_exactly_once_and_len_stays_right() {
    let n = if cfg!(miri) { 32 } else { 100_000 };
    let start = Instant::now();
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    // key -> (id, work, expected outcome, deadline)
    let mut pending: HashMap<Key, (usize, u64, Expect, Option<Instant>)> = HashMap::new();
    let lanes = [Priority::HIGH, Priority::NORMAL, Priority::LOW];
    // Work and deadlines spread over about `span` ms (each distinct
    // millisecond is one turn of the runtime's timer: few under Miri).
    let span: u64 = if cfg!(miri) { 23 } else { 97 };
    for id in 0..n {
        let work = (id as u64 * 7919) % span;
        let limit = (id as u64 * 31) % (span + 4);
        let child = request(work, id);
        let (key, deadline) = match id % 4 {
            0 => (set.insert(child), None),
            1 => (
                set.insert_with_timeout(child, ms(limit)),
                Some(start + ms(limit)),
            ),
            2 => (
                set.insert_with_deadline(child, start + ms(limit)),
                Some(start + ms(limit)),
            ),
            _ => {
                let lane = lanes[id % 3];
                (
                    set.insert_with_priority_and_timeout(child, lane, ms(limit)),
                    Some(start + ms(limit)),
                )
            }
        };
        assert_eq!(set.deadline(key), deadline);
        // A child ready at its deadline wins (`work == limit`).
        let expect = match deadline {
            Some(_) if work > limit => Expect::Elapsed,
            _ => Expect::Output,
        };
        assert!(pending.insert(key, (id, work, expect, deadline)).is_none());
    }
    assert_eq!(set.len(), n);

    let (mut outputs, mut expired) = (0, 0);
    while let Some((key, result)) = set.next().await {
        let (id, work, expect, deadline) =
            pending.remove(&key).expect("each child is reported once");
        assert_eq!(set.len(), pending.len());
        assert!(!set.contains(key));
        assert_eq!(set.deadline(key), None);
        match result {
            Ok(out) => {
                assert_eq!((out, expect), (id, Expect::Output));
                assert_eq!(
                    Instant::now() - start,
                    ms(work),
                    "output of {id} at its time"
                );
                outputs += 1;
            }
            Err(elapsed) => {
                assert_eq!(expect, Expect::Elapsed, "child {id} timed out");
                assert_eq!(Some(elapsed.deadline()), deadline);
                assert_eq!(
                    Instant::now(),
                    elapsed.deadline(),
                    "reported at its deadline"
                );
                expired += 1;
            }
        }
    }
    assert!(pending.is_empty());
    assert!(set.is_empty() && set.is_terminated());
    assert_eq!(outputs + expired, n);
    assert!(
        outputs > n / 4 && expired > n / 4,
        "{outputs} outputs, {expired} expired"
    );
}

#[tokio::test(start_paused = true)]
async fn deadlines_out_of_order_expire_in_deadline_order() {
    let n: u64 = if cfg!(miri) { 16 } else { 500 };
    let start = Instant::now();
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    // A permutation of 1..=n ms: in order, backwards and scattered, so the
    // deadlines go to the in-order run and to the heap.
    let mut keys = Vec::new();
    for i in 0..n {
        let at = (i * 37) % n + 1;
        let key = set.insert_with_deadline(std::future::pending::<()>(), start + ms(at));
        keys.push((key, at));
    }
    // Cancel every seventh: nothing is reported for them.
    let mut expected: Vec<_> = Vec::new();
    for (i, &(key, at)) in keys.iter().enumerate() {
        if i % 7 == 3 {
            assert!(set.cancel(key));
        } else {
            expected.push((at, key));
        }
    }
    expected.sort();
    assert_eq!(set.len(), expected.len());
    for &(at, key) in &expected {
        let (got, result) = set.next().await.unwrap();
        assert_eq!(got, key);
        assert_eq!(result.unwrap_err().deadline(), start + ms(at));
        assert_eq!(Instant::now() - start, ms(at));
    }
    assert_eq!(set.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn finished_children_behind_a_long_deadline_keep_memory_bounded() {
    // A child with a long deadline stays at the front; children with later
    // deadlines finish at once, round after round. Their entries must not
    // pile up behind it: after the first rounds, nothing allocates.
    let n = if cfg!(miri) { 8 } else { 1_000 };
    let mut set: Deadlines<FuturesUnordered<Pin<Box<dyn Future<Output = usize>>>>> =
        Deadlines::new();
    let long = set.insert_with_timeout(Box::pin(std::future::pending()), ms(3_600_000));
    let children: Vec<Pin<Box<dyn Future<Output = usize>>>> = Vec::with_capacity(n);
    let mut children = Some(children);
    let mut counts = Vec::new();
    for _ in 0..24 {
        let mut batch = children.take().unwrap();
        batch
            .extend((0..n).map(|id| {
                Box::pin(std::future::ready(id)) as Pin<Box<dyn Future<Output = usize>>>
            }));
        let before = allocations();
        for child in batch.drain(..) {
            set.insert_with_timeout(child, ms(3_600_001));
        }
        assert_eq!(drain(&mut set).await, n);
        counts.push(allocations() - before);
        children = Some(batch);
        assert_eq!(set.len(), 1);
    }
    assert!(set.contains(long));
    // Without compaction the run would grow by `n` dead entries per round
    // and reallocate every time its length doubles (at least twice in
    // rounds 8 to 23). Its peak with compaction is reached in the first
    // rounds.
    assert!(
        counts[8..].iter().all(|&c| c == 0),
        "allocations per round: {counts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn child_ready_at_the_instant_of_its_deadline_wins() {
    let start = Instant::now();
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    let on_time = set.insert_with_timeout(request(10, 1), ms(10));
    let late = set.insert_with_timeout(request(11, 2), ms(10));
    assert_eq!(set.next().await, Some((on_time, Ok(1))));
    assert_eq!(Instant::now() - start, ms(10));
    let (key, result) = set.next().await.unwrap();
    assert_eq!(key, late);
    assert_eq!(result.unwrap_err().deadline(), start + ms(10));
    assert_eq!(Instant::now() - start, ms(10));
    assert_eq!(set.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn expired_future_is_polled_once_more_and_its_output_wins() {
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    // Pending at the first poll, never wakes: only the last poll at the
    // deadline finds it ready.
    let key = set.insert_with_timeout(ReadyOnSecondPoll(false), ms(5));
    let start = Instant::now();
    assert_eq!(set.next().await, Some((key, Ok("late but ready"))));
    assert_eq!(Instant::now() - start, ms(5));
    assert!(set.is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancelled_child_with_deadline_reports_nothing() {
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    let doomed = set.insert_with_timeout(request(1_000, 1), ms(10));
    let keeper = set.insert(request(50, 2));
    assert!(poll_once(&mut set).await.is_pending());
    assert!(set.cancel(doomed));
    assert_eq!(set.deadline(doomed), None);
    assert!(!set.cancel(doomed));
    // Its deadline passes at 10 ms: nothing; the other child at 50 ms.
    let start = Instant::now();
    assert_eq!(set.next().await, Some((keeper, Ok(2))));
    assert_eq!(Instant::now() - start, ms(50));
    assert_eq!(set.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn cancel_after_the_timer_fired_but_before_the_poll_reports_nothing() {
    let start = Instant::now();
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    let first = set.insert_with_deadline(request(1_000, 1), start + ms(10));
    let second = set.insert_with_deadline(request(1_000, 2), start + ms(20));
    // Arms the timer at 10 ms.
    assert!(poll_once(&mut set).await.is_pending());
    advance(ms(10)).await;
    // The timer has fired and the deadline passed; the set is not polled yet.
    assert!(set.cancel(first));
    assert!(
        poll_once(&mut set).await.is_pending(),
        "nothing for the cancelled child"
    );
    // The timer is re-armed at the next deadline.
    let (key, result) = set.next().await.unwrap();
    assert_eq!(key, second);
    assert_eq!(result.unwrap_err().deadline(), start + ms(20));
    assert_eq!(Instant::now() - start, ms(20));
    assert_eq!(set.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn deadlines_in_every_lane_expire_with_their_keys() {
    let start = Instant::now();
    let mut set: Deadlines<FuturesUnordered<Pin<Box<dyn Future<Output = usize>>>>> =
        Deadlines::new();
    let high = set.insert_with_priority_and_deadline(
        Box::pin(request(1_000, 1)),
        Priority::HIGH,
        start + ms(30),
    );
    let normal = set.insert_with_priority_and_deadline(
        Box::pin(request(1_000, 2)),
        Priority::NORMAL,
        start + ms(20),
    );
    let low =
        set.insert_with_priority_and_timeout(Box::pin(request(1_000, 3)), Priority::LOW, ms(10));
    let free_low = set.insert_with_priority(Box::pin(request(40, 4)), Priority::LOW);
    // A HIGH child that wakes itself at every poll, without a deadline: the
    // set stays busy, and the deadlines are still served.
    let spinner = set.insert_with_priority(
        Box::pin(poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::<usize>::Pending
        })),
        Priority::HIGH,
    );
    assert!(set.cancel(normal));
    let mut reports = Vec::new();
    // Steps of 5 ms (10 under Miri, where each step is slow).
    let step = if cfg!(miri) { 10 } else { 5 };
    for _ in 0..50 / step {
        advance(ms(step)).await;
        // Enough polls for the LOW lane's turn (the starvation bound is 16
        // HIGH polls) within each step.
        for _ in 0..20 {
            if let Poll::Ready(Some((key, result))) = poll_once(&mut set).await {
                reports.push((key, result.is_ok(), (Instant::now() - start).as_millis()));
            }
        }
    }
    // Deadlines are exact; the LOW child's own timer (a tokio `sleep`) fires
    // when the runtime gets to its timers, which a task that is always
    // woken delays by a few milliseconds.
    assert_eq!(reports[..2], [(low, false, 10), (high, false, 30)]);
    assert!(
        matches!(reports[2..], [(key, true, at)] if key == free_low && (40..=50).contains(&at)),
        "{reports:?}"
    );
    assert!(set.contains(spinner));
    assert_eq!(set.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn stream_idle_timeout_restarts_at_each_item() {
    let start = Instant::now();
    let mut set: Deadlines<StreamsUnordered<_>> = Deadlines::new();
    // Items 40 ms apart, idle timeout 50 ms; after the third item it stalls.
    let key = set.insert_with_timeout(ticks(vec![40, 40, 40]), ms(50));
    for at in [40, 80, 120] {
        assert_eq!(set.next().await, Some((key, Ok(40))));
        assert_eq!((Instant::now() - start).as_millis(), at);
        assert_eq!(set.deadline(key), Some(start + ms(at as u64 + 50)));
    }
    let (got, result) = set.next().await.unwrap();
    assert_eq!(got, key);
    assert_eq!(result.unwrap_err().deadline(), start + ms(170));
    assert_eq!(Instant::now() - start, ms(170));
    // Reported once, then gone.
    assert!(!set.contains(key));
    assert_eq!(set.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn stream_item_at_the_instant_of_its_idle_deadline_keeps_it() {
    let start = Instant::now();
    let mut set: Deadlines<IndexedStreamsUnordered<_>> = Deadlines::new();
    let key = set.insert_with_timeout(ticks(vec![50, 50]), ms(50));
    assert_eq!(set.next().await, Some((key, Ok(Some(50)))));
    assert_eq!(set.next().await, Some((key, Ok(Some(50)))));
    let (_, result) = set.next().await.unwrap();
    assert_eq!(result.unwrap_err().deadline(), start + ms(150));
    assert_eq!(set.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn stream_deadline_is_a_point_in_time_that_items_do_not_move() {
    let start = Instant::now();
    let mut set: Deadlines<StreamsUnordered<_>> = Deadlines::new();
    let key = set.insert_with_deadline(ticks(vec![40, 40, 40]), start + ms(100));
    assert_eq!(set.next().await, Some((key, Ok(40))));
    assert_eq!(set.next().await, Some((key, Ok(40))));
    assert_eq!(set.deadline(key), Some(start + ms(100)));
    let (_, result) = set.next().await.unwrap();
    assert_eq!(result.unwrap_err().deadline(), start + ms(100));
    assert_eq!(Instant::now() - start, ms(100));
    assert_eq!(set.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn ended_stream_drops_its_deadline_at_once() {
    let start = Instant::now();
    // Indexed: the end is reported, and no timeout after it.
    let mut indexed: Deadlines<IndexedStreamsUnordered<_>> = Deadlines::new();
    let key = indexed.insert_with_timeout(finite_ticks(vec![10, 10]), ms(1_000));
    assert_eq!(indexed.next().await, Some((key, Ok(Some(10)))));
    assert_eq!(indexed.next().await, Some((key, Ok(Some(10)))));
    assert_eq!(indexed.next().await, Some((key, Ok(None))));
    assert_eq!(indexed.deadline(key), None);
    assert_eq!(indexed.next().await, None);
    assert_eq!(
        Instant::now() - start,
        ms(20),
        "did not wait for the deadline"
    );

    // Plain streams: the end is not reported, as in `StreamsUnordered`.
    let mut plain: Deadlines<StreamsUnordered<_>> = Deadlines::new();
    let key = plain.insert_with_timeout(finite_ticks(vec![10]), ms(1_000));
    assert_eq!(plain.next().await, Some((key, Ok(10))));
    assert_eq!(plain.next().await, None);
    assert!(!plain.contains(key));
    assert_eq!(Instant::now() - start, ms(30));
}

#[tokio::test(start_paused = true)]
async fn clear_drops_every_deadline() {
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    for id in 0..10 {
        set.insert_with_timeout(request(1_000, id), ms(10));
    }
    set.clear();
    assert!(set.is_empty());
    let key = set.insert(request(30, 99));
    let start = Instant::now();
    assert_eq!(set.next().await, Some((key, Ok(99))));
    assert_eq!(Instant::now() - start, ms(30));
}

#[tokio::test(start_paused = true)]
async fn timeout_too_large_for_an_instant_means_no_deadline() {
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    let key = set.insert_with_timeout(request(5, 1), Duration::MAX);
    assert_eq!(set.deadline(key), None);
    assert_eq!(set.next().await, Some((key, Ok(1))));
}

/// A child that panics at its first poll.
struct PanicAtFirstPoll;

impl Future for PanicAtFirstPoll {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<usize> {
        panic!("child panics");
    }
}

#[cfg(panic = "unwind")]
#[tokio::test(start_paused = true)]
async fn child_panicking_in_poll_leaves_no_deadline_behind() {
    use std::panic::AssertUnwindSafe;

    let start = Instant::now();
    let mut set: Deadlines<FuturesUnordered<Pin<Box<dyn Future<Output = usize>>>>> =
        Deadlines::new();
    // `bad`'s deadline is earlier than `other`'s: it goes to the heap.
    let other = set.insert_with_deadline(Box::pin(request(1_000, 0)), start + ms(50));
    let bad = set.insert_with_deadline(Box::pin(PanicAtFirstPoll), start + ms(10));
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| set.poll_next_unpin(&mut cx)));
    assert!(caught.is_err());
    assert_eq!(set.len(), 1);
    // The slot is reused by a child with a later deadline, and one without.
    let next = set.insert_with_deadline(Box::pin(request(1_000, 1)), start + ms(30));
    let free = set.insert(Box::pin(request(20, 2)));
    assert_eq!(next.index(), bad.index());
    assert_eq!(set.deadline(bad), None);
    assert_eq!(set.next().await, Some((free, Ok(2))));
    let (key, result) = set.next().await.unwrap();
    assert_eq!(key, next);
    assert_eq!(result.unwrap_err().deadline(), start + ms(30));
    let (key, result) = set.next().await.unwrap();
    assert_eq!(key, other);
    assert_eq!(result.unwrap_err().deadline(), start + ms(50));
    assert_eq!(set.next().await, None);
}

/// A child that is ready at once, for allocation counts.
fn ready_child(id: usize) -> std::future::Ready<usize> {
    std::future::ready(id)
}

/// Drains `set` until it is `Pending` for lack of work (not for the
/// budget: that `Pending` is retried in the next task poll), or empty;
/// returns the outputs.
async fn drain<S: Stream + Unpin>(set: &mut S) -> usize {
    let mut n = 0;
    loop {
        match poll_once(set).await {
            Poll::Ready(Some(_)) => n += 1,
            Poll::Ready(None) => return n,
            Poll::Pending if tokio::task::coop::has_budget_remaining() => return n,
            Poll::Pending => tokio::task::yield_now().await,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn insert_with_deadline_allocates_nothing_in_steady_state() {
    let n = if cfg!(miri) { 70 } else { 10_000 };
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    let mut counts = Vec::new();
    for round in 0..4 {
        let before = allocations();
        let deadline = Instant::now() + ms(100);
        for id in 0..n {
            set.insert_with_deadline(ready_child(id), deadline);
        }
        let inserts = allocations() - before;
        assert_eq!(drain(&mut set).await, n);
        counts.push((round, inserts, allocations() - before));
    }
    // The first round grows the pages, the heap and the position table; the
    // first yield for the budget (every 128 outputs: in round 0 or 1) grows
    // tokio's list of deferred wake-ups, once.
    assert!(counts[0].2 > 0);
    assert_eq!(
        &counts[2..],
        [(2, 0, 0), (3, 0, 0)],
        "(round, inserts, inserts and completions)"
    );
}

/// Inserts `n` pending children with `n` distinct deadlines, 1 ms apart, and
/// lets each expire through the timer (one timer reset per deadline);
/// returns what the set allocated (inserts and polls, not the runtime's
/// `advance`) in the second such round: the first grows the storage and
/// makes the timer.
async fn allocations_of_expiring_round(n: usize) -> usize {
    let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
    let mut counted = 0;
    for _ in 0..2 {
        counted = 0;
        let before = allocations();
        let start = Instant::now();
        for i in 0..n {
            set.insert_with_deadline(std::future::pending::<()>(), start + ms(i as u64 + 1));
        }
        counted += allocations() - before;
        let mut expired = 0;
        while expired < n {
            advance(ms(1)).await;
            let before = allocations();
            let now = drain(&mut set).await;
            counted += allocations() - before;
            assert_eq!(now, 1, "one deadline per millisecond");
            expired += now;
        }
    }
    counted
}

#[tokio::test(start_paused = true)]
async fn one_timer_allocations_do_not_grow_with_the_number_of_deadlines() {
    let (small, large) = if cfg!(miri) { (4, 12) } else { (100, 2_000) };
    assert_eq!(allocations_of_expiring_round(small).await, 0);
    assert_eq!(allocations_of_expiring_round(large).await, 0);
}

/// Drains `n` children (half ready with a deadline, half already expired)
/// in one task while a sibling waits; returns the outputs before the
/// sibling first ran.
fn outputs_before_sibling_runs(n: usize) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let produced = Rc::new(Cell::new(0usize));
        let seen = Rc::new(Cell::new(None));
        let (p, s) = (produced.clone(), seen.clone());
        let drainer = tokio::task::spawn_local(async move {
            let mut set: Deadlines<FuturesUnordered<Pin<Box<dyn Future<Output = usize>>>>> =
                Deadlines::new();
            let now = Instant::now();
            for id in 0..n {
                if id % 2 == 0 {
                    set.insert_with_deadline(Box::pin(std::future::ready(id)), now + ms(10));
                } else {
                    set.insert_with_deadline(Box::pin(std::future::pending()), now);
                }
            }
            while set.next().await.is_some() {
                p.set(p.get() + 1);
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

#[test]
fn busy_deadline_set_yields_within_128_outputs() {
    let n = if cfg!(miri) { 150 } else { 10_000 };
    let before = outputs_before_sibling_runs(n);
    assert!(before <= 128, "sibling waited for {before} outputs");
    assert!(
        before >= 100,
        "set yielded too early: after {before} outputs"
    );
}

#[tokio::test(start_paused = true)]
async fn expiries_alone_yield_every_128_outputs() {
    // Only expiries (the set's own poll is `Pending` each time): the task
    // still yields, so a sibling runs.
    let n = if cfg!(miri) { 150 } else { 10_000 };
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let produced = Rc::new(Cell::new(0usize));
            let p = produced.clone();
            let drainer = tokio::task::spawn_local(async move {
                let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
                let now = Instant::now();
                for _ in 0..n {
                    set.insert_with_deadline(std::future::pending::<()>(), now);
                }
                while set.next().await.is_some() {
                    p.set(p.get() + 1);
                }
            });
            tokio::task::yield_now().await;
            let seen = produced.get();
            drainer.await.unwrap();
            assert!(
                (100..=128).contains(&seen),
                "sibling ran after {seen} expiries"
            );
            assert_eq!(produced.get(), n);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn debug_default_and_fused() {
    let mut set: Deadlines<FuturesUnordered<std::future::Ready<u8>>> = Deadlines::default();
    assert!(set.is_terminated() || set.is_empty());
    set.insert_with_timeout(std::future::ready(1), ms(5));
    let shown = format!("{set:?}");
    assert!(
        shown.starts_with("Deadlines {")
            && shown.contains("len: 1")
            && shown.contains("deadlines: 1"),
        "{shown}"
    );
    assert!(set.next().await.is_some());
    assert_eq!(set.next().await, None);
    assert!(set.is_terminated());
    let elapsed = {
        let mut set: Deadlines<FuturesUnordered<_>> = Deadlines::new();
        set.insert_with_timeout(std::future::pending::<()>(), ms(1));
        set.next().await.unwrap().1.unwrap_err()
    };
    let error: &dyn std::error::Error = &elapsed;
    assert_eq!(error.to_string(), "deadline has elapsed");
}

#[test]
fn auto_traits_follow_the_children() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    fn unpin<T: Unpin>() {}
    send_sync::<Deadlines<FuturesUnordered<std::future::Ready<u8>>>>();
    send_sync::<Deadlines<StreamsUnordered<stream::Iter<std::vec::IntoIter<u8>>>>>();
    send_sync::<Deadlines<IndexedStreamsUnordered<stream::Iter<std::vec::IntoIter<u8>>>>>();
    send::<Deadlines<FuturesUnordered<Pin<Box<dyn Future<Output = u8> + Send>>>>>();
    unpin::<Deadlines<FuturesUnordered<std::future::Pending<()>>>>();
    send_sync::<velodrome::Elapsed>();
}

/// One step of the model-based test.
#[derive(Debug, Clone)]
enum Op {
    /// Insert a pending child with a deadline this many ms from now
    /// (`timeout` picks `insert_with_timeout` over `insert_with_deadline`).
    Insert { after: u64, timeout: bool },
    /// Cancel the live child at this index (modulo the live count).
    Cancel(usize),
    /// Advance the clock, then take every expiry.
    Advance(u64),
}

fn ops() -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
    use proptest::prelude::*;
    let op = prop_oneof![
        4 => (0u64..40, any::<bool>()).prop_map(|(after, timeout)| Op::Insert { after, timeout }),
        1 => any::<usize>().prop_map(Op::Cancel),
        2 => (0u64..15).prop_map(Op::Advance),
    ];
    proptest::collection::vec(op, 1..if cfg!(miri) { 10 } else { 200 })
}

/// Runs `ops` against a `Deadlines` and a map of deadlines: the same
/// children expire at each step, with their deadlines, and `len` and
/// `deadline` agree throughout.
fn run_against_model(ops: &[Op]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut set: Deadlines<FuturesUnordered<std::future::Pending<()>>> = Deadlines::new();
        let mut model: Vec<(Key, Instant)> = Vec::new();
        for op in ops {
            match *op {
                Op::Insert { after, timeout } => {
                    let child = std::future::pending();
                    let at = Instant::now() + ms(after);
                    let key = if timeout {
                        set.insert_with_timeout(child, ms(after))
                    } else {
                        set.insert_with_deadline(child, at)
                    };
                    model.push((key, at));
                }
                Op::Cancel(i) => {
                    if !model.is_empty() {
                        let (key, _) = model.remove(i % model.len());
                        assert!(set.cancel(key));
                    }
                }
                Op::Advance(by) => {
                    advance(ms(by)).await;
                    let now = Instant::now();
                    let mut reported = Vec::new();
                    while let Poll::Ready(Some((key, result))) = poll_once(&mut set).await {
                        reported.push((key, result.unwrap_err().deadline()));
                    }
                    let mut due: Vec<_> =
                        model.iter().copied().filter(|&(_, at)| at <= now).collect();
                    model.retain(|&(_, at)| at > now);
                    // Earliest first; ties in any order.
                    assert!(
                        reported.windows(2).all(|w| w[0].1 <= w[1].1),
                        "{reported:?}"
                    );
                    reported.sort();
                    due.sort();
                    assert_eq!(reported, due);
                }
            }
            assert_eq!(set.len(), model.len());
            for &(key, at) in &model {
                assert_eq!(set.deadline(key), Some(at));
            }
        }
    });
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Any mix of in-order and out-of-order deadlines, cancels and clock
    /// steps: exactly the due children expire, earliest first.
    #[test]
    fn deadlines_match_a_model(ops in ops()) {
        run_against_model(&ops);
    }
}
