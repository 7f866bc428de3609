//! The set inside tokio's cooperative budget: no wasted polls, exact
//! charging, and yielding to siblings.
#![cfg(feature = "tokio")]

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::StreamExt;
use tokio::task::coop;
use velodrome::FuturesUnordered;

/// Counts polls of a child, and those that happened with the task's budget
/// already exhausted (wasted: every tokio resource in the child would return
/// `Pending`).
#[derive(Default)]
struct Counts {
    polls: Cell<u64>,
    wasted: Cell<u64>,
}

struct Counted<F> {
    inner: Pin<Box<F>>,
    counts: Rc<Counts>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.counts.polls.set(self.counts.polls.get() + 1);
        if !coop::has_budget_remaining() {
            self.counts.wasted.set(self.counts.wasted.get() + 1);
        }
        self.inner.as_mut().poll(cx)
    }
}

/// Counts polls of the parent task's future.
struct ParentPolls<F> {
    inner: Pin<Box<F>>,
    polls: Rc<Cell<u64>>,
}

impl<F: Future> Future for ParentPolls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.inner.as_mut().poll(cx)
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

const N: u64 = if cfg!(miri) { 40 } else { 10_000 };
const K: u64 = 10;

/// The workload of the budget bar: N children each awaiting K always-ready
/// budgeted operations, drained by one task.
fn run_consume_budget_workload() -> (Rc<Counts>, u64) {
    let counts = Rc::new(Counts::default());
    let parent = Rc::new(Cell::new(0));
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let (c, p) = (counts.clone(), parent.clone());
    local.block_on(&rt, async move {
        let set = FuturesUnordered::new();
        for _ in 0..N {
            set.push(Counted {
                inner: Box::pin(async {
                    for _ in 0..K {
                        coop::consume_budget().await;
                    }
                }),
                counts: c.clone(),
            });
        }
        let drive = ParentPolls {
            inner: Box::pin(async move {
                let mut set = set;
                let mut outputs = 0;
                while set.next().await.is_some() {
                    outputs += 1;
                }
                assert_eq!(outputs, N);
            }),
            polls: p,
        };
        tokio::task::spawn_local(drive).await.unwrap();
    });
    let parent_polls = parent.get();
    (counts, parent_polls)
}

#[test]
fn no_child_is_polled_once_the_budget_is_exhausted() {
    let (counts, _) = run_consume_budget_workload();
    assert_eq!(counts.wasted.get(), 0, "wasted polls");
    // Each child is polled about once per budget boundary it straddles, not
    // once per leaf operation.
    assert!(
        counts.polls.get() < N + N * K / 128 + 2,
        "child polls {}",
        counts.polls.get()
    );
}

#[test]
fn parent_is_polled_as_often_as_the_leaf_work_requires() {
    let (_, parent_polls) = run_consume_budget_workload();
    // N*K leaf units at 128 per task poll: 781 polls for the full workload.
    let ideal = (N * K) as f64 / 128.0;
    let (low, high) = ((ideal * 0.95).floor() as u64, (ideal * 1.05).ceil() as u64);
    assert!(
        (low..=high).contains(&parent_polls),
        "parent polls {parent_polls}, ideal {ideal:.1}, allowed {low}..={high}"
    );
}

/// Drains `n` always-ready children in one task while a sibling task waits
/// to run; returns how many outputs the drain had produced when the sibling
/// first ran.
fn outputs_before_sibling_runs(n: usize, unconstrained: bool) -> usize {
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let produced = Rc::new(Cell::new(0usize));
        let seen = Rc::new(Cell::new(None));
        let (p, s) = (produced.clone(), seen.clone());
        let drain = async move {
            let mut set: FuturesUnordered<_> = (0..n).map(std::future::ready).collect();
            while set.next().await.is_some() {
                p.set(p.get() + 1);
            }
        };
        let drainer = if unconstrained {
            tokio::task::spawn_local(async move { coop::unconstrained(drain).await })
        } else {
            tokio::task::spawn_local(drain)
        };
        let sibling = tokio::task::spawn_local(async move {
            s.set(Some(produced.get()));
        });
        drainer.await.unwrap();
        sibling.await.unwrap();
        seen.get().unwrap()
    })
}

#[test]
fn sibling_runs_within_one_budget_of_outputs() {
    let n = if cfg!(miri) { 300 } else { 10_000 };
    let before = outputs_before_sibling_runs(n, false);
    assert!(before <= 128, "sibling waited for {before} outputs");
    assert!(
        before >= 100,
        "set yielded too early: after {before} outputs"
    );
}

#[test]
fn unconstrained_set_does_not_yield() {
    let n = if cfg!(miri) { 300 } else { 10_000 };
    assert_eq!(outputs_before_sibling_runs(n, true), n);
}

#[test]
fn always_ready_set_yields_about_every_128_outputs() {
    let n: u64 = if cfg!(miri) { 600 } else { 12_800 };
    let parent = Rc::new(Cell::new(0));
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let p = parent.clone();
    local.block_on(&rt, async move {
        let drive = ParentPolls {
            inner: Box::pin(async move {
                let mut set: FuturesUnordered<_> = (0..n).map(std::future::ready).collect();
                while set.next().await.is_some() {}
            }),
            polls: p,
        };
        tokio::task::spawn_local(drive).await.unwrap();
    });
    let expected = n / 128;
    let polls = parent.get();
    assert!(
        (expected..=expected + 2).contains(&polls),
        "parent polled {polls} times for {n} outputs"
    );
}

#[test]
fn outside_a_runtime_the_set_never_yields_for_budget() {
    // Under futures' executor there is no budget: 1,000 ready children drain
    // in one poll of the task.
    let polls = Rc::new(Cell::new(0));
    let drive = ParentPolls {
        inner: Box::pin(async {
            let mut set: FuturesUnordered<_> = (0..1000).map(std::future::ready).collect();
            let mut n = 0;
            while set.next().await.is_some() {
                n += 1;
            }
            n
        }),
        polls: polls.clone(),
    };
    assert_eq!(futures::executor::block_on(drive), 1000);
    assert_eq!(polls.get(), 1);
}
