//! Differential test against `futures::stream::FuturesUnordered`: random
//! scripts of pushes, polls, wakes and clears are applied to both sets, and
//! after every operation the multiset of outputs so far, `len()` and
//! `is_terminated()` must agree.
//!
//! The two sets poll in different orders, so outputs are compared as
//! multisets, and `Poll` drives each set until it settles: `Pending` without
//! a self-wake during the call (or `Ready(None)`). Every child's progress
//! depends only on the wakes the script delivered to it, never on how often
//! or in which order it was polled, so settled sets are comparable.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::stream::FusedStream;
use futures::task::{waker, ArcWake};
use futures::StreamExt;
use proptest::collection::vec;
use proptest::prelude::*;

/// One scripted operation, applied to both sets.
#[derive(Clone, Debug)]
enum Op {
    /// Push a child that completes with `value` once it has been woken
    /// `wakes` times (and then polled).
    Push { value: u32, wakes: usize },
    /// Drive the set until it settles.
    Poll,
    /// Deliver one wake to every child pushed so far (live or not).
    WakeAll,
    /// Deliver one wake to child `index % pushed`.
    WakeOne(usize),
    /// `clear()` the set.
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u32>(), 0..4_usize).prop_map(|(value, wakes)| Op::Push { value, wakes }),
        4 => Just(Op::Poll),
        2 => Just(Op::WakeAll),
        3 => any::<usize>().prop_map(Op::WakeOne),
        1 => Just(Op::Clear),
    ]
}

/// What the script controls about one child.
#[derive(Default)]
struct ChildState {
    wakes_needed: usize,
    wakes_delivered: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl ChildState {
    fn deliver_wake(&self) {
        self.wakes_delivered.fetch_add(1, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

struct Child {
    value: u32,
    state: Arc<ChildState>,
}

impl Future for Child {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.state.wakes_delivered.load(Ordering::SeqCst) >= self.state.wakes_needed {
            return Poll::Ready(self.value);
        }
        *self.state.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The operations both sets offer, under one name.
trait UnorderedSet: Unpin + FusedStream<Item = u32> {
    fn push_child(&self, child: Child);
    fn length(&self) -> usize;
    fn clear_all(&mut self);
}

impl UnorderedSet for velodrome::FuturesUnordered<Child> {
    fn push_child(&self, child: Child) {
        self.push(child);
    }
    fn length(&self) -> usize {
        self.len()
    }
    fn clear_all(&mut self) {
        self.clear();
    }
}

impl UnorderedSet for futures::stream::FuturesUnordered<Child> {
    fn push_child(&self, child: Child) {
        self.push(child);
    }
    fn length(&self) -> usize {
        self.len()
    }
    fn clear_all(&mut self) {
        self.clear();
    }
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// One set with its own children and everything it has yielded.
struct Side<S> {
    set: S,
    children: Vec<Arc<ChildState>>,
    outputs: Vec<u32>,
    parent: Arc<CountingWaker>,
}

impl<S: UnorderedSet + Default> Side<S> {
    fn new() -> Self {
        Self {
            set: S::default(),
            children: Vec::new(),
            outputs: Vec::new(),
            parent: Arc::default(),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Push { value, wakes } => {
                let state = Arc::new(ChildState {
                    wakes_needed: wakes,
                    ..ChildState::default()
                });
                self.children.push(state.clone());
                self.set.push_child(Child { value, state });
            }
            Op::Poll => self.settle(),
            Op::WakeAll => self.children.iter().for_each(|c| c.deliver_wake()),
            Op::WakeOne(index) => {
                if !self.children.is_empty() {
                    self.children[index % self.children.len()].deliver_wake();
                }
            }
            Op::Clear => self.set.clear_all(),
        }
    }

    /// Poll until `Ready(None)` or a `Pending` without a self-wake.
    fn settle(&mut self) {
        let waker = waker(self.parent.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10_000 {
            let wakes_before = self.parent.0.load(Ordering::SeqCst);
            match self.set.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(value)) => self.outputs.push(value),
                Poll::Ready(None) => return,
                Poll::Pending => {
                    if self.parent.0.load(Ordering::SeqCst) == wakes_before {
                        return;
                    }
                }
            }
        }
        panic!("the set did not settle in 10,000 calls");
    }

    fn observe(&self) -> (Vec<u32>, usize, bool) {
        let mut outputs = self.outputs.clone();
        outputs.sort_unstable();
        (outputs, self.set.length(), self.set.is_terminated())
    }
}

type Velodrome = Side<velodrome::FuturesUnordered<Child>>;
type Reference = Side<futures::stream::FuturesUnordered<Child>>;

fn run_script(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut ours = Velodrome::new();
    let mut reference = Reference::new();
    for (step, op) in ops.iter().enumerate() {
        ours.apply(op);
        reference.apply(op);
        prop_assert_eq!(
            ours.observe(),
            reference.observe(),
            "(outputs, len, is_terminated) differ after step {} ({:?})",
            step,
            op
        );
    }
    // Final drain: every live child needs at most 3 wakes.
    for round in 0..5 {
        for op in [Op::WakeAll, Op::Poll] {
            ours.apply(&op);
            reference.apply(&op);
            prop_assert_eq!(
                ours.observe(),
                reference.observe(),
                "differ in final drain round {} ({:?})",
                round,
                op
            );
        }
    }
    prop_assert_eq!(ours.set.length(), 0, "velodrome kept children");
    prop_assert_eq!(reference.set.length(), 0, "futures-util kept children");
    prop_assert!(ours.set.is_terminated());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn same_outputs_len_and_termination_as_futures_util(ops in vec(op(), 0..48)) {
        run_script(&ops)?;
    }
}

#[test]
fn clear_after_termination_matches_futures_util() {
    run_script(&[
        Op::Poll,
        Op::Clear,
        Op::Push { value: 1, wakes: 0 },
        Op::Poll,
        Op::Clear,
    ])
    .unwrap();
}

#[test]
fn wakes_before_first_poll_match_futures_util() {
    run_script(&[
        Op::Push { value: 1, wakes: 2 },
        Op::WakeOne(0),
        Op::WakeOne(0),
        Op::Push { value: 2, wakes: 1 },
        Op::Poll,
        Op::WakeAll,
        Op::Poll,
    ])
    .unwrap();
}
