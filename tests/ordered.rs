//! `FuturesOrdered`: outputs in push order on the fair core.
//!
//! - a differential property test against `futures::stream::FuturesOrdered`
//!   (random pushes to both ends, random readiness, wakes in random order):
//!   the same outputs in the same order, and the same `len`, `size_hint` and
//!   `is_terminated` after every step;
//! - allocations: none per output in steady state, in order or not;
//! - panics and drop counts; fairness; tokio's budget; auto traits; the API.
//!
//! The allocation counter is a `const`-initialised thread-local `Cell` (as
//! in `tests/alloc.rs`), so each test only sees its own thread's
//! allocations.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::stream::FusedStream;
use futures::task::{waker, ArcWake};
use futures::{Stream, StreamExt};
use proptest::collection::vec;
use proptest::prelude::*;
use velodrome::FuturesOrdered;

// ---------------------------------------------------------------------------
// Counting allocator (as in tests/alloc.rs).

mod common;

use common::allocations_during;

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

// ---------------------------------------------------------------------------
// Differential test against futures-util.

/// One scripted operation, applied to both queues.
#[derive(Clone, Debug)]
enum Op {
    /// `push_back` a child that completes with `value` once it has been
    /// woken `wakes` times (and then polled).
    PushBack { value: u32, wakes: usize },
    /// `push_front` such a child.
    PushFront { value: u32, wakes: usize },
    /// Drive the queue until it settles.
    Poll,
    /// Deliver one wake to every child pushed so far (live or not).
    WakeAll,
    /// Deliver one wake to child `index % pushed`.
    WakeOne(usize),
    /// `clear()` the queue.
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u32>(), 0..4_usize).prop_map(|(value, wakes)| Op::PushBack { value, wakes }),
        2 => (any::<u32>(), 0..4_usize).prop_map(|(value, wakes)| Op::PushFront { value, wakes }),
        4 => Just(Op::Poll),
        2 => Just(Op::WakeAll),
        4 => any::<usize>().prop_map(Op::WakeOne),
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

/// Pending until its state has had `wakes_needed` wakes, then `value`.
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

/// The operations both queues offer, under one name.
trait OrderedQueue: Unpin + Default + FusedStream<Item = u32> {
    fn back(&mut self, child: Child);
    fn front(&mut self, child: Child);
    fn length(&self) -> usize;
    fn empty(&self) -> bool;
    fn clear_all(&mut self);
}

macro_rules! impl_ordered_queue {
    ($queue:ty) => {
        impl OrderedQueue for $queue {
            fn back(&mut self, child: Child) {
                self.push_back(child);
            }
            fn front(&mut self, child: Child) {
                self.push_front(child);
            }
            fn length(&self) -> usize {
                self.len()
            }
            fn empty(&self) -> bool {
                self.is_empty()
            }
            fn clear_all(&mut self) {
                self.clear();
            }
        }
    };
}

impl_ordered_queue!(velodrome::FuturesOrdered<Child>);
impl_ordered_queue!(futures::stream::FuturesOrdered<Child>);

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// One queue with its own children and everything it has yielded.
struct Side<Q> {
    queue: Q,
    children: Vec<Arc<ChildState>>,
    outputs: Vec<u32>,
    parent: Arc<CountingWaker>,
}

/// What is compared after every step.
#[derive(Debug, PartialEq)]
struct Observed {
    outputs: Vec<u32>,
    len: usize,
    is_empty: bool,
    size_hint: (usize, Option<usize>),
    is_terminated: bool,
}

impl<Q: OrderedQueue> Side<Q> {
    fn new() -> Self {
        Self {
            queue: Q::default(),
            children: Vec::new(),
            outputs: Vec::new(),
            parent: Arc::default(),
        }
    }

    fn child(&mut self, value: u32, wakes: usize) -> Child {
        let state = Arc::new(ChildState {
            wakes_needed: wakes,
            ..ChildState::default()
        });
        self.children.push(state.clone());
        Child { value, state }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::PushBack { value, wakes } => {
                let child = self.child(value, wakes);
                self.queue.back(child);
            }
            Op::PushFront { value, wakes } => {
                let child = self.child(value, wakes);
                self.queue.front(child);
            }
            Op::Poll => self.settle(),
            Op::WakeAll => self.children.iter().for_each(|c| c.deliver_wake()),
            Op::WakeOne(index) => {
                if !self.children.is_empty() {
                    self.children[index % self.children.len()].deliver_wake();
                }
            }
            Op::Clear => self.queue.clear_all(),
        }
    }

    /// Poll until `Ready(None)` or a `Pending` without a self-wake.
    fn settle(&mut self) {
        let waker = waker(self.parent.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10_000 {
            let wakes_before = self.parent.0.load(Ordering::SeqCst);
            match self.queue.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(value)) => self.outputs.push(value),
                Poll::Ready(None) => return,
                Poll::Pending => {
                    if self.parent.0.load(Ordering::SeqCst) == wakes_before {
                        return;
                    }
                }
            }
        }
        panic!("the queue did not settle in 10,000 calls");
    }

    fn observe(&self) -> Observed {
        Observed {
            outputs: self.outputs.clone(),
            len: self.queue.length(),
            is_empty: self.queue.empty(),
            size_hint: self.queue.size_hint(),
            is_terminated: self.queue.is_terminated(),
        }
    }
}

fn run_script(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut ours = Side::<velodrome::FuturesOrdered<Child>>::new();
    let mut reference = Side::<futures::stream::FuturesOrdered<Child>>::new();
    for (step, op) in ops.iter().enumerate() {
        ours.apply(op);
        reference.apply(op);
        prop_assert_eq!(
            ours.observe(),
            reference.observe(),
            "differ after step {} ({:?})",
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
    prop_assert_eq!(ours.queue.len(), 0, "velodrome kept children");
    prop_assert!(ours.queue.is_terminated());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn same_outputs_order_len_and_termination_as_futures_util(
        ops in vec(op(), 0..if cfg!(miri) { 16 } else { 64 }),
    ) {
        run_script(&ops)?;
    }
}

#[test]
fn push_front_behind_waiting_outputs_matches_futures_util() {
    run_script(&[
        Op::PushBack { value: 1, wakes: 1 },
        Op::PushBack { value: 2, wakes: 0 },
        Op::PushBack { value: 3, wakes: 0 },
        Op::Poll,
        Op::PushFront { value: 0, wakes: 1 },
        Op::WakeOne(0),
        Op::Poll,
        Op::WakeOne(3),
        Op::Poll,
    ])
    .unwrap();
}

#[test]
fn clear_with_waiting_outputs_then_reuse_matches_futures_util() {
    run_script(&[
        Op::PushBack { value: 1, wakes: 2 },
        Op::PushBack { value: 2, wakes: 0 },
        Op::Poll,
        Op::Clear,
        Op::Poll,
        Op::PushFront { value: 3, wakes: 0 },
        Op::PushBack { value: 4, wakes: 1 },
        Op::Poll,
        Op::WakeAll,
        Op::Poll,
        Op::Poll,
    ])
    .unwrap();
}

// ---------------------------------------------------------------------------
// The API.

#[test]
fn outputs_come_in_push_order_whatever_the_completion_order() {
    let gates: Vec<Rc<Gate>> = (0..8).map(|_| Rc::new(Gate::default())).collect();
    let mut queue: FuturesOrdered<Gated> = gates
        .iter()
        .enumerate()
        .map(|(i, gate)| Gated::new(gate, i as u32))
        .collect();
    let mut cx = noop_cx();
    assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Pending);
    // Open them back to front: nothing comes out until the first opens.
    for gate in gates[1..].iter().rev() {
        gate.open();
        assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Pending);
        assert_eq!(queue.len(), 8);
    }
    gates[0].open();
    for i in 0..8 {
        assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Ready(Some(i)));
        assert_eq!(queue.len(), 7 - i as usize);
    }
    assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Ready(None));
    assert!(queue.is_terminated());
}

#[test]
fn push_front_comes_out_next_even_behind_waiting_outputs() {
    let mut queue = FuturesOrdered::new();
    let gate = Rc::new(Gate::default());
    queue.push_back(Gated::new(&gate, 1));
    queue.push_back(Gated::ready(2));
    let mut cx = noop_cx();
    assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Pending);
    queue.push_front(Gated::ready(0));
    queue.push_front(Gated::ready(-1_i32 as u32));
    assert_eq!(queue.len(), 4);
    assert_eq!(
        queue.poll_next_unpin(&mut cx),
        Poll::Ready(Some(-1_i32 as u32))
    );
    assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Ready(Some(0)));
    assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Pending);
    gate.open();
    assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
    assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Ready(Some(2)));
    assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Ready(None));
}

#[test]
fn deprecated_push_is_push_back() {
    let mut queue = FuturesOrdered::new();
    #[allow(deprecated)]
    {
        queue.push(std::future::ready(1));
        queue.push(std::future::ready(2));
    }
    queue.push_front(std::future::ready(0));
    let out: Vec<i32> = futures::executor::block_on(queue.collect());
    assert_eq!(out, [0, 1, 2]);
}

#[test]
fn default_extend_size_hint_and_debug() {
    let mut queue = FuturesOrdered::<std::future::Ready<u8>>::default();
    assert!(queue.is_empty());
    assert_eq!(queue.size_hint(), (0, Some(0)));
    assert!(!queue.is_terminated(), "a new queue is not terminated");
    queue.extend((0..3).map(std::future::ready));
    assert_eq!(queue.len(), 3);
    assert_eq!(queue.size_hint(), (3, Some(3)));
    assert_eq!(format!("{queue:?}"), "FuturesOrdered { len: 3, .. }");
    let out: Vec<u8> = futures::executor::block_on((&mut queue).collect());
    assert_eq!(out, [0, 1, 2]);
    assert!(queue.is_terminated());
    queue.push_back(std::future::ready(9));
    assert!(!queue.is_terminated(), "a push makes it live again");
}

#[test]
fn clear_drops_everything_once_and_restarts_the_order() {
    let drops = Rc::new(Cell::new(0));
    let mut queue = FuturesOrdered::new();
    let gate = Rc::new(Gate::default());
    queue.push_back(Counted::new(Gated::new(&gate, 0), &drops));
    for i in 1..4 {
        queue.push_back(Counted::new(Gated::ready(i), &drops));
    }
    let mut cx = noop_cx();
    assert!(queue.poll_next_unpin(&mut cx).is_pending());
    // Three outputs wait behind the gate; their futures are gone already.
    assert_eq!(drops.get(), 3);
    assert_eq!(queue.len(), 4);
    queue.clear();
    assert_eq!(drops.get(), 4 + 3, "four futures and three outputs");
    assert!(queue.is_empty());
    assert!(!queue.is_terminated());
    queue.push_back(Counted::new(Gated::ready(7), &drops));
    queue.push_front(Counted::new(Gated::ready(6), &drops));
    let out: Vec<u32> = futures::executor::block_on(
        (&mut queue)
            .map(|mut output: Counted<u32>| output.value.take().unwrap())
            .collect(),
    );
    assert_eq!(out, [6, 7], "sequences start again from 0 after clear");
    assert_eq!(drops.get(), 7 + 2 + 2);
}

/// A one-shot gate a test opens; the `Gated` child waiting on it is woken.
#[derive(Default)]
struct Gate {
    open: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.open.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// `value` once its gate is open (at once if it has none).
struct Gated {
    gate: Option<Rc<Gate>>,
    value: u32,
}

impl Gated {
    fn new(gate: &Rc<Gate>, value: u32) -> Self {
        Self {
            gate: Some(gate.clone()),
            value,
        }
    }

    fn ready(value: u32) -> Self {
        Self { gate: None, value }
    }
}

impl Future for Gated {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        match &self.gate {
            Some(gate) if !gate.open.get() => {
                let mut slot = gate.waker.borrow_mut();
                if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *slot = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            _ => Poll::Ready(self.value),
        }
    }
}

/// A future or output that counts its drops.
struct Counted<T> {
    value: Option<T>,
    drops: Rc<Cell<usize>>,
}

impl<T> Counted<T> {
    fn new(value: T, drops: &Rc<Cell<usize>>) -> Self {
        Self {
            value: Some(value),
            drops: drops.clone(),
        }
    }
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = Counted<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let drops = self.drops.clone();
        let inner = self.value.as_mut().expect("polled after completion");
        Pin::new(inner).poll(cx).map(|value| Counted {
            value: Some(value),
            drops,
        })
    }
}

impl Gate {
    fn close(&self) {
        self.open.set(false);
    }
}

// ---------------------------------------------------------------------------
// Allocations.

#[test]
fn push_one_take_one_allocates_nothing_per_output() {
    let rounds = if cfg!(miri) { 50 } else { 10_000 };
    let mut queue = FuturesOrdered::new();
    let mut cx = noop_cx();
    let mut round = |queue: &mut FuturesOrdered<Gated>, i: u32| {
        queue.push_back(Gated::ready(i));
        assert_eq!(queue.poll_next_unpin(&mut cx), Poll::Ready(Some(i)));
    };
    for i in 0..4 {
        round(&mut queue, i);
    }
    let (allocations, ()) = allocations_during(|| {
        for i in 0..rounds {
            round(&mut queue, i);
        }
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {rounds} push-one-take-one rounds"
    );
}

#[test]
fn outputs_waiting_behind_a_slow_future_allocate_nothing_in_steady_state() {
    let behind = if cfg!(miri) { 8 } else { 64 };
    let rounds = if cfg!(miri) { 3 } else { 100 };
    let gate = Rc::new(Gate::default());
    let mut queue = FuturesOrdered::new();
    let mut cx = noop_cx();
    let mut round = |queue: &mut FuturesOrdered<Gated>| {
        gate.close();
        queue.push_back(Gated::new(&gate, 0));
        for i in 1..=behind {
            if i % 3 == 0 {
                // A push to the front goes out before the gated one.
                queue.push_front(Gated::ready(1_000 + i));
            } else {
                queue.push_back(Gated::ready(i));
            }
        }
        let mut out = 0;
        while let Poll::Ready(Some(value)) = queue.poll_next_unpin(&mut cx) {
            assert!(value > 1_000, "only the fronts come out before the gate");
            out += 1;
        }
        assert_eq!(out, behind / 3);
        assert_eq!(queue.len() as u32, behind + 1 - behind / 3);
        gate.open();
        let mut expected = 0;
        while let Poll::Ready(Some(value)) = queue.poll_next_unpin(&mut cx) {
            assert_eq!(value, expected, "then the backs, in order");
            expected += 1;
            while expected % 3 == 0 && expected != 0 {
                expected += 1;
            }
            out += 1;
        }
        assert_eq!(out, behind + 1);
        assert!(queue.is_empty());
    };
    round(&mut queue);
    round(&mut queue);
    let (allocations, ()) = allocations_during(|| {
        for _ in 0..rounds {
            round(&mut queue);
        }
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {rounds} rounds of {behind} outputs waiting"
    );
}

#[test]
fn outputs_in_order_never_wait() {
    // Outputs that finish in push order take the fast path: the heap of
    // waiting outputs never allocates, so draining allocates no more than the
    // same children in a `FuturesUnordered`.
    let n = if cfg!(miri) { 100 } else { 10_000 };
    // The executor's first `block_on` on a thread allocates its waker.
    futures::executor::block_on(async {});
    let ordered: FuturesOrdered<_> = (0..n).map(std::future::ready).collect();
    let unordered: velodrome::FuturesUnordered<_> = (0..n).map(std::future::ready).collect();
    let (ordered_allocations, out) =
        allocations_during(|| futures::executor::block_on(ordered.collect::<Vec<u32>>()));
    assert_eq!(out, (0..n).collect::<Vec<_>>());
    let (unordered_allocations, out) =
        allocations_during(|| futures::executor::block_on(unordered.collect::<Vec<u32>>()));
    assert_eq!(out.len(), n as usize);
    assert_eq!(ordered_allocations, unordered_allocations);
}

// ---------------------------------------------------------------------------
// Panics and drops.

/// Panics in `poll`; counts its drops.
struct PanicsInPoll(Rc<Cell<usize>>);

impl Future for PanicsInPoll {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        panic!("child panics in poll");
    }
}

impl Drop for PanicsInPoll {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// The children of the panic scenario, for either queue.
enum Scenario {
    Ready(u32),
    Gated(Gated),
    Panics(PanicsInPoll),
}

impl Future for Scenario {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        match self.get_mut() {
            Scenario::Ready(value) => Poll::Ready(*value),
            Scenario::Gated(gated) => Pin::new(gated).poll(cx),
            Scenario::Panics(panics) => Pin::new(panics).poll(cx),
        }
    }
}

/// `Ready(Some)`, `Ready(None)`, `Pending` or a panic, and `len` after.
#[cfg(panic = "unwind")]
fn poll_caught<Q: Stream<Item = u32> + Unpin>(queue: &mut Q) -> Option<Poll<Option<u32>>> {
    let mut cx = noop_cx();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        queue.poll_next_unpin(&mut cx)
    }))
    .ok()
}

#[cfg(panic = "unwind")]
#[test]
fn child_panicking_in_poll_is_dropped_and_matches_futures_util() {
    fn run<Q>(mut queue: Q, len: fn(&Q) -> usize) -> Vec<(Option<Poll<Option<u32>>>, usize)>
    where
        Q: Stream<Item = u32> + Unpin + Extend<Scenario>,
    {
        let drops = Rc::new(Cell::new(0));
        let gate = Rc::new(Gate::default());
        queue.extend([
            Scenario::Ready(0),
            Scenario::Panics(PanicsInPoll(drops.clone())),
            Scenario::Gated(Gated::new(&gate, 2)),
            Scenario::Ready(3),
        ]);
        let mut trace = Vec::new();
        for step in 0..6 {
            if step == 3 {
                gate.open();
            }
            let polled = poll_caught(&mut queue);
            if polled.is_none() {
                assert_eq!(drops.get(), 1, "dropped before the panic continues");
            }
            trace.push((polled, len(&queue)));
        }
        assert_eq!(drops.get(), 1, "dropped exactly once");
        trace
    }
    let ours = run(FuturesOrdered::new(), FuturesOrdered::len);
    let reference = run(
        futures::stream::FuturesOrdered::new(),
        futures::stream::FuturesOrdered::len,
    );
    assert_eq!(ours, reference);
    assert_eq!(ours[0], (Some(Poll::Ready(Some(0))), 3));
    assert!(
        ours.iter().any(|(polled, _)| polled.is_none()),
        "the child panicked"
    );
}

/// A future whose `Drop` panics (once it has counted itself).
struct PanicsInDrop(Rc<Cell<usize>>);

impl Future for PanicsInDrop {
    type Output = Counted<u32>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Counted<u32>> {
        Poll::Pending
    }
}

impl Drop for PanicsInDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
        panic!("child panics in drop");
    }
}

enum DropScenario {
    Gated(Counted<Gated>),
    PanicsInDrop(PanicsInDrop),
}

impl Future for DropScenario {
    type Output = Counted<u32>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Counted<u32>> {
        match self.get_mut() {
            DropScenario::Gated(gated) => Pin::new(gated).poll(cx),
            DropScenario::PanicsInDrop(panics) => Pin::new(panics).poll(cx),
        }
    }
}

/// A queue of 2 gated futures, the panicking one, 2 more gated and 3 ready
/// ones (whose outputs wait behind the first gate). Returns the queue, the
/// drop counter of everything, and the gate.
fn drop_scenario() -> (FuturesOrdered<DropScenario>, Rc<Cell<usize>>, Rc<Gate>) {
    let drops = Rc::new(Cell::new(0));
    let gate = Rc::new(Gate::default());
    let gated = |value| DropScenario::Gated(Counted::new(Gated::new(&gate, value), &drops));
    let ready = |value| DropScenario::Gated(Counted::new(Gated::ready(value), &drops));
    let mut queue = FuturesOrdered::new();
    queue.extend([gated(0), gated(1)]);
    queue.push_back(DropScenario::PanicsInDrop(PanicsInDrop(drops.clone())));
    queue.extend([gated(3), gated(4), ready(5), ready(6), ready(7)]);
    let mut cx = noop_cx();
    assert!(queue.poll_next_unpin(&mut cx).is_pending());
    assert_eq!(drops.get(), 3, "the ready futures finished");
    assert_eq!(queue.len(), 8);
    (queue, drops, gate)
}

#[cfg(panic = "unwind")]
#[test]
fn drop_panic_in_a_child_still_drops_everything_else_once() {
    let (queue, drops, _gate) = drop_scenario();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(queue)));
    assert!(result.is_err(), "the Drop panic propagates");
    // 3 finished futures, then 5 futures (one of them panicking) and 3
    // waiting outputs.
    assert_eq!(drops.get(), 3 + 5 + 3);
}

#[cfg(panic = "unwind")]
#[test]
fn drop_panic_during_clear_still_clears_everything_once() {
    let (mut queue, drops, _gate) = drop_scenario();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| queue.clear()));
    assert!(result.is_err(), "the Drop panic propagates out of clear");
    assert_eq!(drops.get(), 3 + 5 + 3);
    assert!(queue.is_empty());
    // The queue is a fresh one: the order starts again.
    let counted = |value| DropScenario::Gated(Counted::new(Gated::ready(value), &drops));
    queue.push_back(counted(1));
    queue.push_front(counted(0));
    let out: Vec<u32> = futures::executor::block_on(
        (&mut queue)
            .map(|mut output| output.value.take().unwrap())
            .collect(),
    );
    assert_eq!(out, [0, 1]);
    drop(queue);
    assert_eq!(drops.get(), 3 + 5 + 3 + 4);
}

#[test]
fn dropping_the_queue_drops_waiting_outputs_and_futures_once() {
    let drops = Rc::new(Cell::new(0));
    let gate = Rc::new(Gate::default());
    let mut queue = FuturesOrdered::new();
    queue.push_back(Counted::new(Gated::new(&gate, 0), &drops));
    for i in 1..=5 {
        queue.push_back(Counted::new(Gated::ready(i), &drops));
    }
    let mut cx = noop_cx();
    assert!(queue.poll_next_unpin(&mut cx).is_pending());
    assert_eq!(drops.get(), 5);
    gate.open();
    let first = queue.poll_next_unpin(&mut cx);
    assert!(matches!(&first, Poll::Ready(Some(c)) if c.value == Some(0)));
    drop(first);
    assert_eq!(drops.get(), 5 + 1 + 1, "the gated future and its output");
    let second = queue.poll_next_unpin(&mut cx);
    assert!(matches!(&second, Poll::Ready(Some(c)) if c.value == Some(1)));
    drop(second);
    drop(queue);
    assert_eq!(drops.get(), 6 + 6, "six futures and six outputs, once each");
}

// ---------------------------------------------------------------------------
// Fairness.

/// Wakes itself `wakes_left` times (one per poll), then completes with
/// `tag`; `usize::MAX` wakes itself forever. Counts its polls.
struct SelfWaking {
    tag: usize,
    wakes_left: usize,
    polls: Rc<Vec<Cell<usize>>>,
}

impl Future for SelfWaking {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let polls = &self.polls[self.tag];
        polls.set(polls.get() + 1);
        if self.wakes_left == 0 {
            return Poll::Ready(self.tag);
        }
        if self.wakes_left != usize::MAX {
            self.wakes_left -= 1;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn self_waking_head_does_not_starve_the_others() {
    // The spinner is first in the order, so nothing comes out; the others
    // must still all finish, each polled at most once per cycle.
    const OTHERS: usize = 10;
    let polls: Rc<Vec<Cell<usize>>> = Rc::new((0..=OTHERS).map(|_| Cell::new(0)).collect());
    let mut queue = FuturesOrdered::new();
    queue.push_back(SelfWaking {
        tag: OTHERS,
        wakes_left: usize::MAX,
        polls: polls.clone(),
    });
    for tag in 0..OTHERS {
        queue.push_back(SelfWaking {
            tag,
            wakes_left: 3,
            polls: polls.clone(),
        });
    }
    let snapshot = || polls.iter().map(Cell::get).collect::<Vec<_>>();
    let done = |counts: &[usize]| counts[..OTHERS].iter().filter(|&&c| c == 4).count();
    let mut cx = noop_cx();
    let mut calls = 0;
    while done(&snapshot()) < OTHERS {
        calls += 1;
        assert!(calls <= 5, "the others did not finish in 5 calls");
        let before = snapshot();
        assert!(queue.poll_next_unpin(&mut cx).is_pending());
        let after = snapshot();
        // A call runs one cycle, plus one more per output that went to wait
        // at the end of a cycle; each child is polled once per cycle.
        let finished_in_call = done(&after) - done(&before);
        for (tag, (b, a)) in before.iter().zip(&after).enumerate() {
            assert!(
                a - b <= 1 + finished_in_call,
                "child {tag} polled {} times in call {calls}",
                a - b
            );
        }
    }
    assert_eq!(
        queue.len(),
        OTHERS + 1,
        "ten outputs wait behind the spinner"
    );
    let spinner = polls[OTHERS].get();
    assert!(
        spinner <= 5,
        "the spinner was polled {spinner} times while the others needed 4 polls each"
    );
    // With nothing left to finish, each call polls the spinner exactly once.
    for _ in 0..3 {
        let before = polls[OTHERS].get();
        assert!(queue.poll_next_unpin(&mut cx).is_pending());
        assert_eq!(polls[OTHERS].get() - before, 1);
    }
}

// ---------------------------------------------------------------------------
// tokio's cooperative budget.

#[cfg(feature = "tokio")]
mod budget {
    use super::*;
    use tokio::task::coop;

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// Drains `queue` in one task while a sibling task waits to run; returns
    /// how many outputs the drain had produced when the sibling first ran.
    fn outputs_before_sibling_runs<F>(queue: FuturesOrdered<F>, unconstrained: bool) -> usize
    where
        F: Future + 'static,
    {
        let n = queue.len();
        let rt = current_thread();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let produced = Rc::new(Cell::new(0usize));
            let seen = Rc::new(Cell::new(None));
            let (p, s) = (produced.clone(), seen.clone());
            let drain = async move {
                let mut queue = queue;
                while queue.next().await.is_some() {
                    p.set(p.get() + 1);
                }
                assert_eq!(p.get(), n);
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

    fn always_ready(n: u32) -> FuturesOrdered<Gated> {
        (0..n).map(Gated::ready).collect()
    }

    /// `n` outputs already waiting behind a first future that has just
    /// become ready: draining them polls no child.
    fn waiting_behind_gate(n: u32) -> FuturesOrdered<Gated> {
        let gate = Rc::new(Gate::default());
        let mut queue = FuturesOrdered::new();
        queue.push_back(Gated::new(&gate, 0));
        queue.extend((1..=n).map(Gated::ready));
        let mut cx = noop_cx();
        assert!(queue.poll_next_unpin(&mut cx).is_pending());
        gate.open();
        queue
    }

    const N: u32 = if cfg!(miri) { 200 } else { 10_000 };

    #[test]
    fn sibling_runs_within_one_budget_of_outputs_in_order() {
        let before = outputs_before_sibling_runs(always_ready(N), false);
        assert!(before <= 128, "sibling waited for {before} outputs");
        assert!(before >= 100, "queue yielded too early: after {before}");
    }

    #[test]
    fn sibling_runs_within_one_budget_of_outputs_that_waited() {
        let before = outputs_before_sibling_runs(waiting_behind_gate(N), false);
        assert!(before <= 128, "sibling waited for {before} outputs");
        assert!(before >= 100, "queue yielded too early: after {before}");
    }

    /// Completes on its second poll (having woken itself) if `slow`, else
    /// on its first.
    struct MaybeSlow(u32, bool);

    impl Future for MaybeSlow {
        type Output = u32;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            if !self.1 {
                return Poll::Ready(self.0);
            }
            self.1 = false;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn mixed_fresh_and_waiting_outputs_stay_within_one_budget_per_task_poll() {
        // Every other future is slow, so outputs alternate between the ones
        // that waited (which the core does not count) and fresh ones.
        let n = if cfg!(miri) { 200 } else { 10_000 };
        let patterns: &[fn(u32) -> bool] = if cfg!(miri) {
            &[|i| i % 2 == 0]
        } else {
            &[|i| i % 2 == 0, |i| i % 64 == 0]
        };
        for slow in patterns {
            let queue: FuturesOrdered<_> = (0..n).map(|i| MaybeSlow(i, slow(i))).collect();
            let rt = current_thread();
            let local = tokio::task::LocalSet::new();
            let most = local.block_on(&rt, async move {
                let produced = Rc::new(Cell::new(0u32));
                let most = Rc::new(Cell::new(0u32));
                let (p, m) = (produced.clone(), most.clone());
                let mut drain = Box::pin(async move {
                    let mut queue = queue;
                    while queue.next().await.is_some() {
                        p.set(p.get() + 1);
                    }
                });
                let task = std::future::poll_fn(move |cx| {
                    let before = produced.get();
                    let polled = drain.as_mut().poll(cx);
                    m.set(m.get().max(produced.get() - before));
                    polled
                });
                tokio::task::spawn_local(task).await.unwrap();
                most.get()
            });
            assert!(most <= 128, "{most} outputs in one task poll");
            assert!(most >= 100, "yielded too early: at most {most} per poll");
        }
    }

    #[test]
    fn unconstrained_queue_does_not_yield() {
        // Past one budget's worth of outputs.
        let n = if cfg!(miri) { 150 } else { N };
        assert_eq!(
            outputs_before_sibling_runs(always_ready(n), true),
            n as usize
        );
        assert_eq!(
            outputs_before_sibling_runs(waiting_behind_gate(n), true),
            n as usize + 1
        );
    }

    #[test]
    fn always_ready_queue_yields_about_every_128_outputs() {
        let n: u32 = if cfg!(miri) { 256 } else { 12_800 };
        // Under Miri only the first, to keep the file within its time (the
        // waiting outputs' budget is checked by the sibling test).
        let queues = if cfg!(miri) {
            vec![always_ready(n)]
        } else {
            vec![always_ready(n), waiting_behind_gate(n - 1)]
        };
        for queue in queues {
            let polls = Rc::new(Cell::new(0u32));
            let rt = current_thread();
            let local = tokio::task::LocalSet::new();
            let p = polls.clone();
            local.block_on(&rt, async move {
                let mut drain = Box::pin(async move {
                    let mut queue = queue;
                    while queue.next().await.is_some() {}
                });
                let counted = std::future::poll_fn(move |cx| {
                    p.set(p.get() + 1);
                    drain.as_mut().poll(cx)
                });
                tokio::task::spawn_local(counted).await.unwrap();
            });
            let expected = n / 128;
            assert!(
                (expected..=expected + 2).contains(&polls.get()),
                "drain polled {} times for {n} outputs",
                polls.get()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Auto traits: those of futures-util's `FuturesOrdered` (`Send` if the
// future and its output are `Send`; `Sync` if the future is `Send + Sync`
// and its output `Sync`; `Unpin` always), checked on both types so a
// difference shows up as a compile error here.

fn assert_send<T: Send>(_: &T) {}
fn assert_sync<T: Sync>(_: &T) {}
fn assert_unpin<T: Unpin>(_: &T) {}

/// Fails to compile ("type annotations needed") if the value's type is `Send`.
macro_rules! assert_not_send {
    ($value:expr) => {{
        trait AmbiguousIfSend<A> {
            fn probe(&self) {}
        }
        impl<T: ?Sized> AmbiguousIfSend<()> for T {}
        impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
        AmbiguousIfSend::probe(&$value);
    }};
}

/// Fails to compile ("type annotations needed") if the value's type is `Sync`.
macro_rules! assert_not_sync {
    ($value:expr) => {{
        trait AmbiguousIfSync<A> {
            fn probe(&self) {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
        AmbiguousIfSync::probe(&$value);
    }};
}

/// A future with chosen auto traits (`M` for the future, `O` its output).
struct Probe<M, O>(PhantomData<M>, PhantomData<fn() -> O>, PhantomPinned);

impl<M, O> Future for Probe<M, O> {
    type Output = O;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<O> {
        Poll::Pending
    }
}

type SendSync = ();
type SendNotSync = Cell<()>;
type SyncNotSend = MutexGuard<'static, ()>;
type Neither = Rc<()>;

/// Both queues of futures `Probe<M, O>`.
macro_rules! both {
    ($m:ty, $o:ty) => {
        (
            FuturesOrdered::<Probe<$m, $o>>::new(),
            futures::stream::FuturesOrdered::<Probe<$m, $o>>::new(),
        )
    };
}

#[test]
fn send_sync_unpin_as_futures_util() {
    // Future and output `Send + Sync`: `Send + Sync`. Futures that are not
    // `Unpin` still give an `Unpin` queue.
    let (ours, theirs) = both!(SendSync, SendSync);
    assert_send(&ours);
    assert_sync(&ours);
    assert_unpin(&ours);
    assert_send(&theirs);
    assert_sync(&theirs);
    assert_unpin(&theirs);

    // Future `Send + !Sync`: `Send`, not `Sync`.
    let (ours, theirs) = both!(SendNotSync, SendSync);
    assert_send(&ours);
    assert_not_sync!(ours);
    assert_send(&theirs);
    assert_not_sync!(theirs);

    // Future `Sync + !Send`: neither (a shared queue could not be polled,
    // but futures-util's set needs `Send` for `Sync`, and so do we).
    let (ours, theirs) = both!(SyncNotSend, SendSync);
    assert_not_send!(ours);
    assert_not_sync!(ours);
    assert_not_send!(theirs);
    assert_not_sync!(theirs);

    // Output `Send + !Sync`: `Send`, not `Sync` (outputs wait inside).
    let (ours, theirs) = both!(SendSync, SendNotSync);
    assert_send(&ours);
    assert_not_sync!(ours);
    assert_send(&theirs);
    assert_not_sync!(theirs);

    // Output `!Send`: not `Send`.
    let (ours, theirs) = both!(SendSync, SyncNotSend);
    assert_not_send!(ours);
    assert_sync(&ours);
    assert_not_send!(theirs);
    assert_sync(&theirs);

    let (ours, theirs) = both!(Neither, Neither);
    assert_not_send!(ours);
    assert_not_sync!(ours);
    assert_unpin(&ours);
    assert_not_send!(theirs);
    assert_not_sync!(theirs);
}

#[test]
fn probe_macros_accept_exactly_the_non_implementors() {
    assert_not_send!(Rc::new(0_u8));
    assert_not_sync!(Cell::new(0_u8));
    assert_send(&Cell::new(0_u8));
    assert_sync(&PhantomData::<MutexGuard<'static, ()>>);
}
