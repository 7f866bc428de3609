//! `stats()`: the poller's own counters agree with what the children did.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::task::noop_waker_ref;
use futures::{Stream, StreamExt};
use velodrome::{FuturesOrdered, FuturesUnordered, IndexedStreamsUnordered, Priority, Stats};

/// Pending (waking itself) `yields` times, then ready with `value`.
struct Yield {
    yields: u32,
    value: u32,
}

impl Future for Yield {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.yields == 0 {
            return Poll::Ready(self.value);
        }
        self.yields -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn drain<S: Stream + Unpin>(set: &mut S) -> usize {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut outputs = 0;
    let mut pendings = 0;
    while pendings < 100 {
        match Pin::new(&mut *set).poll_next(&mut cx) {
            Poll::Ready(Some(_)) => outputs += 1,
            Poll::Ready(None) => break,
            Poll::Pending => pendings += 1,
        }
    }
    outputs
}

#[test]
fn a_fresh_set_has_seen_nothing() {
    let set = FuturesUnordered::<Yield>::new();
    assert_eq!(set.stats(), Stats::default());
}

#[test]
fn ready_children_take_one_cycle() {
    let mut set: FuturesUnordered<_> = (0..3).map(std::future::ready).collect();
    assert_eq!(drain(&mut set), 3);
    let stats = set.stats();
    assert_eq!(stats.polls, 3);
    assert_eq!(stats.outputs, 3);
    assert_eq!(stats.cycles, 1);
    assert_eq!(stats.cycle_yields, 0);
    assert_eq!(stats.lane_polls, [0, 3, 0]);
}

#[test]
fn self_waking_children_count_cycles_and_cycle_yields() {
    let mut set = FuturesUnordered::new();
    for value in 0..4 {
        set.push(Yield { yields: 2, value });
    }
    assert_eq!(drain(&mut set), 4);
    let stats = set.stats();
    // Three polls each (two yields, then ready), one cycle per round.
    assert_eq!(stats.polls, 12);
    assert_eq!(stats.outputs, 4);
    assert_eq!(stats.cycles, 3);
    // Rounds 1 and 2 end with every child woken again: the cycle rule.
    assert_eq!(stats.cycle_yields, 2);
}

#[test]
fn lanes_are_counted_apart_and_waits_stay_within_the_bound() {
    let mut set = FuturesUnordered::new();
    set.set_starvation_bound(4);
    for value in 0..8 {
        set.push_with_priority(Yield { yields: 5, value }, Priority::HIGH);
    }
    set.push_with_priority(
        Yield {
            yields: 1,
            value: 99,
        },
        Priority::LOW,
    );
    assert_eq!(drain(&mut set), 9);
    let stats = set.stats();
    assert_eq!(stats.lane_polls, [48, 0, 2]);
    assert_eq!(stats.polls, 50);
    assert!(stats.longest_lane_wait[2] >= 1, "LOW waited behind HIGH");
    assert!(stats.longest_lane_wait[2] <= 4, "{stats:?}");
    assert_eq!(stats.longest_lane_wait[0], 0, "nothing is above HIGH");
}

#[test]
fn streams_count_items_and_ends() {
    let mut set = IndexedStreamsUnordered::new();
    set.push(futures::stream::iter(vec![1, 2]));
    set.push(futures::stream::iter(vec![3]));
    // Three items and two ends.
    assert_eq!(drain(&mut set), 5);
    let stats = set.stats();
    assert_eq!(stats.outputs, 5);
    assert_eq!(stats.polls, 5);
}

#[test]
fn futures_ordered_counts_its_children() {
    let mut queue: FuturesOrdered<_> = (0..5).map(std::future::ready).collect();
    assert_eq!(drain(&mut queue), 5);
    assert_eq!(queue.stats().polls, 5);
    assert_eq!(queue.stats().outputs, 5);
}

#[cfg(feature = "tokio")]
#[cfg_attr(
    miri,
    ignore = "a tokio runtime per test is slow under Miri; the counters are plain"
)]
#[tokio::test(flavor = "current_thread")]
async fn yields_by_reason_inside_tokio() {
    // 300 always-ready children: the set yields for its 128-output rule.
    let mut set: FuturesUnordered<_> = (0..300).map(std::future::ready).collect();
    let mut outputs = 0;
    while set.next().await.is_some() {
        outputs += 1;
    }
    assert_eq!(outputs, 300);
    let stats = set.stats();
    assert_eq!(stats.output_budget_yields, 2, "{stats:?}");

    // Children that spend two units of the task's budget each: it runs out
    // after 64 outputs, and the set stops before the next child poll.
    let mut set = FuturesUnordered::new();
    for _ in 0..300 {
        set.push(async {
            tokio::task::consume_budget().await;
            tokio::task::consume_budget().await;
        });
    }
    while set.next().await.is_some() {}
    let stats = set.stats();
    assert!(stats.tokio_budget_yields >= 4, "{stats:?}");
    assert_eq!(stats.output_budget_yields, 0, "{stats:?}");
    assert_eq!(stats.outputs, 300);
}
