//! `join_all` / `try_join_all` on the fair core.
//!
//! - differential property tests against futures-util's `join_all` and
//!   `try_join_all` (random list lengths on both sides of futures-util's
//!   30-future threshold, random readiness, wakes in random order): the same
//!   result at the same step;
//! - the futures-rs#2866 regression: the first error of 1,000 futures comes
//!   out while the others are still pending, and they are dropped at once;
//! - allocation counts for 100, 10,000 and 100,000 futures;
//! - panics and drop counts; polling after completion; fairness; tokio's
//!   budget; auto traits.
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

use futures::task::{waker, ArcWake};
use futures::FutureExt;
use proptest::collection::vec;
use proptest::prelude::*;
use velodrome::{join_all, try_join_all, JoinAll, TryJoinAll};

// ---------------------------------------------------------------------------
// Counting allocator (as in tests/alloc.rs).

mod common;

use common::allocations_during;

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

// ---------------------------------------------------------------------------
// Differential tests against futures-util.

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

    fn complete(&self) -> bool {
        self.wakes_delivered.load(Ordering::SeqCst) >= self.wakes_needed
    }
}

/// Pending until its state has had `wakes_needed` wakes, then `output`.
struct Child<T> {
    output: Option<T>,
    state: Arc<ChildState>,
}

impl<T: Unpin> Future for Child<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.state.complete() {
            return Poll::Ready(self.output.take().expect("polled after completion"));
        }
        *self.state.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// One scripted operation.
#[derive(Clone, Debug)]
enum Op {
    /// Drive the join until it settles.
    Poll,
    /// Deliver one wake to every child.
    WakeAll,
    /// Deliver one wake to child `index % len`.
    WakeOne(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Poll),
        1 => Just(Op::WakeAll),
        5 => any::<usize>().prop_map(Op::WakeOne),
    ]
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// One join with its own children; `result` once it is ready.
struct Side<J: Future> {
    join: Pin<Box<J>>,
    children: Vec<Arc<ChildState>>,
    result: Option<J::Output>,
    parent: Arc<CountingWaker>,
}

impl<J: Future> Side<J>
where
    J::Output: Clone,
{
    /// A join over one child per `(wakes, output)`.
    fn new<T>(specs: &[(usize, T)], make: impl FnOnce(Vec<Child<T>>) -> J) -> Self
    where
        T: Clone,
    {
        let children: Vec<Arc<ChildState>> = specs
            .iter()
            .map(|(wakes, _)| {
                Arc::new(ChildState {
                    wakes_needed: *wakes,
                    ..ChildState::default()
                })
            })
            .collect();
        let futures = specs
            .iter()
            .zip(&children)
            .map(|((_, output), state)| Child {
                output: Some(output.clone()),
                state: state.clone(),
            })
            .collect();
        Self {
            join: Box::pin(make(futures)),
            children,
            result: None,
            parent: Arc::default(),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Poll => self.settle(),
            Op::WakeAll => self.children.iter().for_each(|c| c.deliver_wake()),
            Op::WakeOne(index) => {
                if !self.children.is_empty() {
                    self.children[index % self.children.len()].deliver_wake();
                }
            }
        }
    }

    /// Poll until `Ready` or a `Pending` without a self-wake; a join that is
    /// ready is not polled again.
    fn settle(&mut self) {
        if self.result.is_some() {
            return;
        }
        let waker = waker(self.parent.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10_000 {
            let wakes_before = self.parent.0.load(Ordering::SeqCst);
            match self.join.as_mut().poll(&mut cx) {
                Poll::Ready(result) => {
                    self.result = Some(result);
                    return;
                }
                Poll::Pending => {
                    if self.parent.0.load(Ordering::SeqCst) == wakes_before {
                        return;
                    }
                }
            }
        }
        panic!("the join did not settle in 10,000 calls");
    }

    /// Which children have had their wakes (and, after a settle, finished).
    fn complete(&self) -> Vec<bool> {
        self.children.iter().map(|c| c.complete()).collect()
    }
}

fn children(max: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(0..4_usize, 0..max)
}

fn run_join_all(wakes: &[usize], ops: &[Op]) -> Result<(), TestCaseError> {
    let specs: Vec<(usize, u32)> = wakes.iter().zip(0..).map(|(&w, v)| (w, v)).collect();
    let mut ours = Side::new(&specs, join_all);
    let mut reference = Side::new(&specs, futures::future::join_all);
    let all = ops
        .iter()
        .cloned()
        .chain((0..4).flat_map(|_| [Op::WakeAll, Op::Poll]));
    for (step, op) in all.enumerate() {
        ours.apply(&op);
        reference.apply(&op);
        prop_assert_eq!(
            &ours.result,
            &reference.result,
            "differ after step {} ({:?})",
            step,
            op
        );
        if matches!(op, Op::Poll) {
            let all_complete = ours.complete().iter().all(|&c| c);
            prop_assert_eq!(ours.result.is_some(), all_complete);
        }
    }
    prop_assert_eq!(ours.result, Some((0..wakes.len() as u32).collect()));
    Ok(())
}

/// A child's output in the `try_join_all` scripts: `Err(1000 + i)` for the
/// failing ones.
fn try_specs(children: &[(usize, bool)]) -> Vec<(usize, Result<u32, u32>)> {
    children
        .iter()
        .zip(0..)
        .map(|(&(wakes, fails), i)| (wakes, if fails { Err(1000 + i) } else { Ok(i) }))
        .collect()
}

fn run_try_join_all(children: &[(usize, bool)], ops: &[Op]) -> Result<(), TestCaseError> {
    let specs = try_specs(children);
    let small = specs.len() <= 30;
    let mut ours = Side::new(&specs, try_join_all);
    let mut reference = Side::new(&specs, futures::future::try_join_all);
    let all = ops
        .iter()
        .cloned()
        .chain((0..4).flat_map(|_| [Op::WakeAll, Op::Poll]));
    for (step, op) in all.enumerate() {
        let before = ours.result.clone();
        ours.apply(&op);
        reference.apply(&op);
        if !matches!(op, Op::Poll) || before.is_some() {
            continue;
        }
        // After a settle, a child has finished iff it has had its wakes.
        let complete = ours.complete();
        let failed: Vec<u32> = specs
            .iter()
            .zip(&complete)
            .filter_map(|((_, out), &done)| out.as_ref().err().filter(|_| done).copied())
            .collect();
        match &ours.result {
            // The first error comes out at the first settle after its child
            // had its wakes, whatever the length (futures-rs#2866).
            Some(Err(error)) => prop_assert!(
                failed.contains(error),
                "step {}: error {} is not one of the failed {:?}",
                step,
                error,
                failed
            ),
            Some(Ok(outputs)) => {
                prop_assert!(failed.is_empty() && complete.iter().all(|&c| c));
                prop_assert_eq!(outputs, &(0..specs.len() as u32).collect::<Vec<_>>());
            }
            None => prop_assert!(
                failed.is_empty() && !complete.iter().all(|&c| c),
                "step {}: pending with failed {:?}",
                step,
                failed
            ),
        }
        if small {
            // futures-util's small join polls every child each time: the
            // same step, and the same error unless several failed at once.
            match (&ours.result, &reference.result) {
                (Some(Err(_)), Some(Err(_))) if failed.len() > 1 => {}
                (ours, reference) => prop_assert_eq!(ours, reference, "step {}", step),
            }
        } else if let Some(Ok(outputs)) = &reference.result {
            prop_assert_eq!(&ours.result, &Some(Ok(outputs.clone())));
        }
    }
    prop_assert!(ours.result.is_some(), "every child had its wakes");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn join_all_gives_the_same_result_at_the_same_step_as_futures_util(
        wakes in children(if cfg!(miri) { 33 } else { 48 }),
        ops in vec(op(), 0..if cfg!(miri) { 10 } else { 64 }),
    ) {
        run_join_all(&wakes, &ops)?;
    }

    #[test]
    fn try_join_all_gives_the_same_result_as_futures_util_and_errors_at_once(
        children in vec(
            (0..4_usize, prop::bool::weighted(0.1)),
            0..if cfg!(miri) { 33 } else { 48 },
        ),
        ops in vec(op(), 0..if cfg!(miri) { 10 } else { 64 }),
    ) {
        run_try_join_all(&children, &ops)?;
    }
}

#[test]
fn empty_joins_are_ready_at_once_as_in_futures_util() {
    let mut cx = noop_cx();
    let mut ours = join_all(Vec::<std::future::Ready<u8>>::new());
    let mut theirs = futures::future::join_all(Vec::<std::future::Ready<u8>>::new());
    assert_eq!(ours.poll_unpin(&mut cx), Poll::Ready(vec![]));
    assert_eq!(theirs.poll_unpin(&mut cx), Poll::Ready(vec![]));
    let mut ours = try_join_all(Vec::<futures::future::Ready<Result<u8, u8>>>::new());
    assert_eq!(ours.poll_unpin(&mut cx), Poll::Ready(Ok(vec![])));
}

#[test]
fn polling_after_completion_matches_futures_util() {
    let mut cx = noop_cx();
    for n in [3_u32, 40] {
        let mut ours = join_all((0..n).map(std::future::ready));
        let mut theirs = futures::future::join_all((0..n).map(std::future::ready));
        let all: Vec<u32> = (0..n).collect();
        assert_eq!(ours.poll_unpin(&mut cx), Poll::Ready(all.clone()));
        assert_eq!(theirs.poll_unpin(&mut cx), Poll::Ready(all));
        for _ in 0..2 {
            assert_eq!(ours.poll_unpin(&mut cx), Poll::Ready(vec![]), "n = {n}");
            assert_eq!(theirs.poll_unpin(&mut cx), Poll::Ready(vec![]), "n = {n}");
        }

        let ok = || (0..n).map(futures::future::ok::<u32, u32>);
        let mut ours = try_join_all(ok());
        let mut theirs = futures::future::try_join_all(ok());
        let all: Vec<u32> = (0..n).collect();
        assert_eq!(ours.poll_unpin(&mut cx), Poll::Ready(Ok(all.clone())));
        assert_eq!(theirs.poll_unpin(&mut cx), Poll::Ready(Ok(all)));
        assert_eq!(ours.poll_unpin(&mut cx), Poll::Ready(Ok(vec![])));
        assert_eq!(theirs.poll_unpin(&mut cx), Poll::Ready(Ok(vec![])));
    }
    // After an error: `Ok` of nothing, as futures-util's (small) join gives.
    let failing = || (0..3).map(|i| futures::future::ready(if i == 1 { Err(i) } else { Ok(i) }));
    let mut ours = try_join_all(failing());
    let mut theirs = futures::future::try_join_all(failing());
    assert_eq!(ours.poll_unpin(&mut cx), Poll::Ready(Err(1)));
    assert_eq!(theirs.poll_unpin(&mut cx), Poll::Ready(Err(1)));
    assert_eq!(ours.poll_unpin(&mut cx), Poll::Ready(Ok(vec![])));
    assert_eq!(theirs.poll_unpin(&mut cx), Poll::Ready(Ok(vec![])));
}

#[test]
fn from_iterator_and_debug() {
    #[derive(Debug)]
    enum Fut {
        Ready(u32),
        Never,
    }
    impl Future for Fut {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            match *self {
                Fut::Ready(value) => Poll::Ready(value),
                Fut::Never => Poll::Pending,
            }
        }
    }
    let mut join: JoinAll<Fut> = [Fut::Ready(1), Fut::Never].into_iter().collect();
    assert!(join.poll_unpin(&mut noop_cx()).is_pending());
    assert_eq!(
        format!("{join:?}"),
        "JoinAll { pending: [Never], outputs: [Some(1), None] }"
    );

    #[derive(Debug)]
    struct TryFut(Result<u32, u8>, bool);
    impl Future for TryFut {
        type Output = Result<u32, u8>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<u32, u8>> {
            if self.1 {
                Poll::Ready(self.0)
            } else {
                Poll::Pending
            }
        }
    }
    let mut join: TryJoinAll<TryFut> = [TryFut(Ok(1), false), TryFut(Ok(2), true)]
        .into_iter()
        .collect();
    assert!(join.poll_unpin(&mut noop_cx()).is_pending());
    assert_eq!(
        format!("{join:?}"),
        "TryJoinAll { pending: [TryFut(Ok(1), false)], outputs: [None, Some(2)] }"
    );
}

// ---------------------------------------------------------------------------
// futures-rs#2866: the first error arrives while the others are pending.

/// One counter per id.
type Counters = Rc<Vec<Cell<usize>>>;

/// Counts its drops into `drops[id]`.
#[derive(Debug)]
struct DropCount {
    id: usize,
    drops: Counters,
}

impl Drop for DropCount {
    fn drop(&mut self) {
        let count = &self.drops[self.id];
        count.set(count.get() + 1);
    }
}

fn drop_counters(n: usize) -> Counters {
    Rc::new((0..n).map(|_| Cell::new(0)).collect())
}

fn total(drops: &[Cell<usize>]) -> usize {
    drops.iter().map(Cell::get).sum()
}

/// A one-shot gate a test opens; the futures waiting on it are woken.
#[derive(Default)]
struct Gate {
    open: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.open.set(true);
        for waker in self.wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

/// Makes a child's output when it finishes (so an output that was never
/// produced is never dropped).
type Make<T> = Box<dyn FnOnce() -> T>;

/// A test child: once its gate (if any) is open, finishes with the output
/// `make` makes, or panics if `make` is `None`. Counts its drops.
struct Scripted<T> {
    gate: Option<Rc<Gate>>,
    make: Option<Make<T>>,
    _drop: DropCount,
}

impl<T> Future for Scripted<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(gate) = &self.gate {
            if !gate.open.get() {
                gate.wakers.borrow_mut().push(cx.waker().clone());
                return Poll::Pending;
            }
        }
        match self.make.take() {
            Some(make) => Poll::Ready(make()),
            None => panic!("scripted panic in poll"),
        }
    }
}

/// Futures `0..n` that stay pending, except `failing` which fails once
/// `gate` opens (at once if `gate` is `None`); counts drops.
fn one_fails(
    n: usize,
    failing: usize,
    gate: Option<&Rc<Gate>>,
) -> (Vec<Scripted<Result<(), usize>>>, Counters) {
    let drops = drop_counters(n);
    let never = Rc::new(Gate::default());
    let futures = (0..n)
        .map(|id| Scripted {
            gate: if id == failing {
                gate.cloned()
            } else {
                Some(never.clone())
            },
            make: Some(Box::new(move || Err(id))),
            _drop: DropCount {
                id,
                drops: drops.clone(),
            },
        })
        .collect();
    (futures, drops)
}

#[test]
fn first_error_of_1000_comes_out_while_the_others_are_pending() {
    // Under Miri fewer, still past futures-util's 30-future threshold.
    const N: usize = if cfg!(miri) { 40 } else { 1_000 };
    let mut cx = noop_cx();
    for failing in [0, N / 2, N - 1] {
        // Fails on its first poll.
        let (futures, drops) = one_fails(N, failing, None);
        let mut join = try_join_all(futures);
        assert_eq!(join.poll_unpin(&mut cx), Poll::Ready(Err(failing)));
        assert!(
            drops.iter().all(|d| d.get() == 1),
            "every future is dropped when the error comes out"
        );
        drop(join);
        assert_eq!(total(&drops), N, "and none twice");

        // Fails after the others have all been polled and are waiting.
        let gate = Rc::new(Gate::default());
        let (futures, drops) = one_fails(N, failing, Some(&gate));
        let mut join = try_join_all(futures);
        assert!(join.poll_unpin(&mut cx).is_pending());
        assert!(join.poll_unpin(&mut cx).is_pending());
        assert_eq!(total(&drops), 0);
        gate.open();
        assert_eq!(join.poll_unpin(&mut cx), Poll::Ready(Err(failing)));
        assert!(drops.iter().all(|d| d.get() == 1));
        drop(join);
        assert_eq!(total(&drops), N);
    }
}

#[test]
fn first_error_drops_the_outputs_produced_before_it_once() {
    let n = if cfg!(miri) { 40 } else { 1_000 };
    let future_drops = drop_counters(n);
    let outputs = Outputs::new(n);
    let gate = Rc::new(Gate::default());
    // Even futures finish at once with a counted output; 501 fails when the
    // gate opens; the other odd ones never finish.
    let never = Rc::new(Gate::default());
    let futures = (0..n).map(|id| Scripted {
        gate: match id {
            _ if id % 2 == 0 => None,
            _ if id == n / 2 + 1 => Some(gate.clone()),
            _ => Some(never.clone()),
        },
        make: Some(if id == n / 2 + 1 {
            Box::new(move || Err(id))
        } else {
            let make = outputs.maker(id);
            Box::new(move || Ok(make()))
        }),
        _drop: DropCount {
            id,
            drops: future_drops.clone(),
        },
    });
    let mut join = try_join_all(futures);
    let mut cx = noop_cx();
    assert!(join.poll_unpin(&mut cx).is_pending());
    assert_eq!(total(&future_drops), n / 2, "the even futures finished");
    assert_eq!(outputs.made(), n / 2);
    assert_eq!(outputs.dropped(), 0, "their outputs are kept");
    gate.open();
    assert!(matches!(join.poll_unpin(&mut cx), Poll::Ready(Err(e)) if e == n / 2 + 1));
    assert!(
        future_drops.iter().all(|d| d.get() == 1),
        "the rest dropped at once"
    );
    assert_eq!(outputs.made(), n / 2);
    outputs.assert_each_made_one_dropped_once();
    drop(join);
    assert_eq!(total(&future_drops), n);
    outputs.assert_each_made_one_dropped_once();
}

// ---------------------------------------------------------------------------
// Allocations.

/// Completes on its second poll, having woken itself on the first.
struct PendingOnce(Option<u32>, bool);

impl Future for PendingOnce {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.1 {
            return Poll::Ready(self.0.take().unwrap());
        }
        self.1 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn drive<F: Future + Unpin>(mut future: F) -> F::Output {
    let mut cx = noop_cx();
    loop {
        if let Poll::Ready(output) = future.poll_unpin(&mut cx) {
            return output;
        }
    }
}

/// Allocations from `join_all(iter)` to its output, for ready and
/// pending-once futures and for `try_join_all`, and those of futures-util.
fn join_allocations(n: u32) -> [usize; 4] {
    let (ready, out) = allocations_during(|| drive(join_all((0..n).map(std::future::ready))));
    assert_eq!(out, (0..n).collect::<Vec<_>>());
    let (pending_once, out) =
        allocations_during(|| drive(join_all((0..n).map(|i| PendingOnce(Some(i), false)))));
    assert_eq!(out.len(), n as usize);
    let (try_ready, out) =
        allocations_during(|| drive(try_join_all((0..n).map(futures::future::ok::<u32, ()>))));
    assert_eq!(out.map(|v| v.len()), Ok(n as usize));
    // For the record only (and not under Miri, where it is slow).
    let futures_util = if cfg!(miri) {
        0
    } else {
        allocations_during(|| drive(futures::future::join_all((0..n).map(std::future::ready)))).0
    };
    [ready, pending_once, try_ready, futures_util]
}

#[test]
fn join_all_allocates_a_handful_of_times_whatever_the_length() {
    let sizes: &[u32] = if cfg!(miri) {
        &[40, 130]
    } else {
        &[100, 10_000, 100_000]
    };
    for &n in sizes {
        let [ready, pending_once, try_ready, futures_util] = join_allocations(n);
        eprintln!(
            "n = {n}: join_all {ready} (ready) / {pending_once} (pending once), \
             try_join_all {try_ready}; futures-util join_all {futures_util}"
        );
        // Storage grows in pages that double (five allocations per page:
        // slots, record page, records, woken and summary bits), and the
        // core's free list and due set grow geometrically: a few
        // allocations per doubling, none per future.
        let doublings = (u32::BITS - n.leading_zeros()) as usize;
        for (what, count) in [
            ("ready", ready),
            ("pending once", pending_once),
            ("try ready", try_ready),
        ] {
            assert!(
                count <= 6 * doublings + 8,
                "n = {n}: {count} allocations ({what})"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Panics and drops.

/// Per id: outputs made (a child finished with it) and outputs dropped.
struct Outputs {
    made: Vec<Cell<usize>>,
    dropped: Counters,
}

impl Outputs {
    fn new(n: usize) -> Rc<Self> {
        Rc::new(Self {
            made: (0..n).map(|_| Cell::new(0)).collect(),
            dropped: drop_counters(n),
        })
    }

    /// A maker of output `id` that counts it.
    fn maker(self: &Rc<Self>, id: usize) -> Make<DropCount> {
        let outputs = self.clone();
        Box::new(move || {
            let made = &outputs.made[id];
            made.set(made.get() + 1);
            DropCount {
                id,
                drops: outputs.dropped.clone(),
            }
        })
    }

    fn made(&self) -> usize {
        total(&self.made)
    }

    fn dropped(&self) -> usize {
        total(&self.dropped)
    }

    /// Every output made was dropped, exactly once.
    fn assert_each_made_one_dropped_once(&self) {
        for (id, (made, dropped)) in self.made.iter().zip(self.dropped.iter()).enumerate() {
            assert!(made.get() <= 1, "output {id} made twice");
            assert_eq!(dropped.get(), made.get(), "output {id}: drops");
        }
    }
}

/// `n` futures: those with `id % 3 == 0` finish at once with a counted
/// output, the others wait for `gate`, and `panics` (if any) panics when
/// polled.
fn scripted(
    n: usize,
    gate: &Rc<Gate>,
    panics: Option<usize>,
) -> (Vec<Scripted<DropCount>>, Counters, Rc<Outputs>) {
    let future_drops = drop_counters(n);
    let outputs = Outputs::new(n);
    let futures = (0..n)
        .map(|id| Scripted {
            gate: (id % 3 != 0 && Some(id) != panics).then(|| gate.clone()),
            make: (Some(id) != panics).then(|| outputs.maker(id)),
            _drop: DropCount {
                id,
                drops: future_drops.clone(),
            },
        })
        .collect();
    (futures, future_drops, outputs)
}

#[test]
fn cancelling_drops_running_futures_and_produced_outputs_once() {
    let n = if cfg!(miri) { 40 } else { 300 };
    let gate = Rc::new(Gate::default());
    let (futures, future_drops, outputs) = scripted(n, &gate, None);
    let mut join = join_all(futures);
    assert!(join.poll_unpin(&mut noop_cx()).is_pending());
    let produced = n.div_ceil(3);
    assert_eq!(total(&future_drops), produced, "finished futures are gone");
    assert_eq!(outputs.made(), produced);
    assert_eq!(outputs.dropped(), 0, "their outputs are kept");
    drop(join);
    assert!(future_drops.iter().all(|d| d.get() == 1));
    outputs.assert_each_made_one_dropped_once();
}

#[cfg(panic = "unwind")]
fn caught<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

#[cfg(panic = "unwind")]
#[test]
fn child_panicking_in_poll_leaves_everything_dropped_once() {
    let n = if cfg!(miri) { 40 } else { 300 };
    let panics = 2 * n / 3 + 1;
    let gate = Rc::new(Gate::default());
    let (futures, future_drops, outputs) = scripted(n, &gate, Some(panics));
    let mut join = join_all(futures);
    let result = caught(|| join.poll_unpin(&mut noop_cx()));
    assert_eq!(result.unwrap_err(), "scripted panic in poll");
    assert_eq!(
        future_drops[panics].get(),
        1,
        "dropped as the panic unwinds"
    );
    assert_eq!(outputs.dropped(), 0, "outputs made so far are kept");
    drop(join);
    assert!(future_drops.iter().all(|d| d.get() == 1));
    outputs.assert_each_made_one_dropped_once();
}

#[cfg(panic = "unwind")]
#[test]
fn polling_again_after_a_child_panicked_finishes_the_others_then_panics() {
    let n = if cfg!(miri) { 40 } else { 300 };
    let gate = Rc::new(Gate::default());
    let (futures, future_drops, outputs) = scripted(n, &gate, Some(1));
    let mut join = join_all(futures);
    let mut cx = noop_cx();
    assert!(caught(|| join.poll_unpin(&mut cx)).is_err());
    gate.open();
    let result = caught(|| join.poll_unpin(&mut cx));
    assert_eq!(
        result.unwrap_err(),
        "join polled again after one of its futures panicked"
    );
    assert_eq!(
        total(&future_drops),
        n,
        "every future finished or was dropped"
    );
    assert_eq!(outputs.made(), n - 1, "every future but the panicked one");
    outputs.assert_each_made_one_dropped_once();
    drop(join);
    assert_eq!(total(&future_drops), n);
    outputs.assert_each_made_one_dropped_once();
}

/// A pending future whose `Drop` panics after counting itself.
struct PanicsInDrop(
    #[expect(dead_code, reason = "held for its own `Drop`, which counts")] DropCount,
);

impl Future for PanicsInDrop {
    type Output = Result<DropCount, usize>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

impl Drop for PanicsInDrop {
    fn drop(&mut self) {
        panic!("scripted panic in drop");
    }
}

/// `n` futures: even ones finish at once with a counted output, odd ones
/// after `gate`; `bad` stays pending and panics in `Drop`, and `n - 1`
/// (odd) fails.
#[expect(clippy::type_complexity, reason = "a test fixture's plain tuple")]
fn with_drop_panic(
    n: usize,
    bad: usize,
    gate: &Rc<Gate>,
) -> (
    Vec<futures::future::Either<Scripted<Result<DropCount, usize>>, PanicsInDrop>>,
    Counters,
    Rc<Outputs>,
) {
    use futures::future::Either;
    let future_drops = drop_counters(n);
    let outputs = Outputs::new(n);
    let futures = (0..n)
        .map(|id| {
            let count = DropCount {
                id,
                drops: future_drops.clone(),
            };
            if id == bad {
                return Either::Right(PanicsInDrop(count));
            }
            Either::Left(Scripted {
                gate: (id % 2 == 1).then(|| gate.clone()),
                make: Some(if id == n - 1 {
                    Box::new(move || Err(id))
                } else {
                    let make = outputs.maker(id);
                    Box::new(move || Ok(make()))
                }),
                _drop: count,
            })
        })
        .collect();
    (futures, future_drops, outputs)
}

#[cfg(panic = "unwind")]
#[test]
fn drop_panic_while_cancelling_still_drops_everything_else_once() {
    let n = if cfg!(miri) { 40 } else { 300 };
    let gate = Rc::new(Gate::default());
    let (futures, future_drops, outputs) = with_drop_panic(n, 10, &gate);
    let mut join = try_join_all(futures);
    assert!(join.poll_unpin(&mut noop_cx()).is_pending());
    assert_eq!(outputs.made(), n / 2 - 1, "the even ones but the bad one");
    assert_eq!(caught(|| drop(join)).unwrap_err(), "scripted panic in drop");
    assert!(future_drops.iter().all(|d| d.get() == 1));
    outputs.assert_each_made_one_dropped_once();
}

#[cfg(panic = "unwind")]
#[test]
fn drop_panic_at_the_first_error_still_drops_everything_else_once() {
    let n = if cfg!(miri) { 40 } else { 300 };
    let gate = Rc::new(Gate::default());
    let (futures, future_drops, outputs) = with_drop_panic(n, 11, &gate);
    let mut join = try_join_all(futures);
    let mut cx = noop_cx();
    assert!(join.poll_unpin(&mut cx).is_pending());
    gate.open();
    // The error is found, the rest are dropped, and the bad `Drop` panics
    // on the way out of that poll.
    assert_eq!(
        caught(|| join.poll_unpin(&mut cx)).unwrap_err(),
        "scripted panic in drop"
    );
    assert!(future_drops.iter().all(|d| d.get() == 1));
    outputs.assert_each_made_one_dropped_once();
    // The join is finished: polling again gives `Ok` of nothing, dropping
    // it drops nothing more.
    assert_eq!(
        join.poll_unpin(&mut cx).map(|r| r.map(|v| v.len())),
        Poll::Ready(Ok(0))
    );
    drop(join);
    assert!(future_drops.iter().all(|d| d.get() == 1));
    outputs.assert_each_made_one_dropped_once();
}

/// An output whose `Drop` panics.
struct OutputPanicsInDrop;

impl Drop for OutputPanicsInDrop {
    fn drop(&mut self) {
        panic!("scripted panic in output drop");
    }
}

#[cfg(panic = "unwind")]
#[test]
fn output_drop_panic_while_cancelling_still_drops_the_other_outputs_once() {
    use futures::future::Either;
    let n = 20;
    let outputs = Outputs::new(n);
    let never = Rc::new(Gate::default());
    let futures = (0..n).map(|id| {
        if id == 5 {
            return Either::Left(std::future::ready(Either::Left(OutputPanicsInDrop)));
        }
        let make = outputs.maker(id);
        Either::Right(Scripted {
            gate: (id == n - 1).then(|| never.clone()),
            make: Some(Box::new(move || Either::Right(make()))),
            _drop: DropCount {
                id,
                drops: drop_counters(n),
            },
        })
    });
    let mut join = join_all(futures);
    assert!(join.poll_unpin(&mut noop_cx()).is_pending());
    assert_eq!(outputs.made(), n - 2);
    assert_eq!(
        caught(|| drop(join)).unwrap_err(),
        "scripted panic in output drop"
    );
    outputs.assert_each_made_one_dropped_once();
}

// ---------------------------------------------------------------------------
// Fairness.

/// Wakes itself `wakes_left` times (one per poll), then completes with
/// `tag`; `usize::MAX` wakes itself forever. Counts its polls.
struct SelfWaking {
    tag: usize,
    wakes_left: usize,
    polls: Counters,
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
fn self_waking_future_does_not_starve_the_others() {
    const OTHERS: usize = 10;
    let polls: Counters = Rc::new((0..=OTHERS).map(|_| Cell::new(0)).collect());
    let spinner = SelfWaking {
        tag: OTHERS,
        wakes_left: usize::MAX,
        polls: polls.clone(),
    };
    let others = (0..OTHERS).map(|tag| SelfWaking {
        tag,
        wakes_left: 3,
        polls: polls.clone(),
    });
    let mut join = join_all(std::iter::once(spinner).chain(others));
    let snapshot = || polls.iter().map(Cell::get).collect::<Vec<_>>();
    let done = |counts: &[usize]| counts[..OTHERS].iter().filter(|&&c| c == 4).count();
    let mut cx = noop_cx();
    let mut calls = 0;
    while done(&snapshot()) < OTHERS {
        calls += 1;
        assert!(calls <= 5, "the others did not finish in 5 calls");
        let before = snapshot();
        assert!(join.poll_unpin(&mut cx).is_pending());
        let after = snapshot();
        // A call runs one cycle, plus one more per output that ended one;
        // each future is polled once per cycle.
        let finished_in_call = done(&after) - done(&before);
        for (tag, (b, a)) in before.iter().zip(&after).enumerate() {
            assert!(
                a - b <= 1 + finished_in_call,
                "future {tag} polled {} times in call {calls}",
                a - b
            );
        }
    }
    assert!(
        polls[OTHERS].get() <= 5,
        "spinner polled {}",
        polls[OTHERS].get()
    );
    for _ in 0..3 {
        let before = polls[OTHERS].get();
        assert!(join.poll_unpin(&mut cx).is_pending());
        assert_eq!(polls[OTHERS].get() - before, 1, "one cycle per call");
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

    /// Ready at once, counting into `finished`.
    struct Counts(Rc<Cell<usize>>);

    impl Future for Counts {
        type Output = Result<(), ()>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            self.0.set(self.0.get() + 1);
            Poll::Ready(Ok(()))
        }
    }

    /// Runs the join of `n` always-ready futures in one task while a
    /// sibling waits; returns how many futures had finished when the sibling
    /// first ran, and how often the joining task was polled.
    fn run(n: usize, try_join: bool, unconstrained: bool) -> (usize, usize) {
        let rt = current_thread();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let finished = Rc::new(Cell::new(0));
            let seen = Rc::new(Cell::new(None));
            let polls = Rc::new(Cell::new(0));
            let futures: Vec<Counts> = (0..n).map(|_| Counts(finished.clone())).collect();
            let mut join: Pin<Box<dyn Future<Output = usize>>> = if try_join {
                Box::pin(try_join_all(futures).map(|out| out.unwrap().len()))
            } else {
                Box::pin(join_all(futures).map(|out| out.len()))
            };
            let p = polls.clone();
            let counted = std::future::poll_fn(move |cx| {
                p.set(p.get() + 1);
                join.as_mut().poll(cx)
            });
            let joiner = if unconstrained {
                tokio::task::spawn_local(coop::unconstrained(counted))
            } else {
                tokio::task::spawn_local(counted)
            };
            let (f, s) = (finished.clone(), seen.clone());
            let sibling = tokio::task::spawn_local(async move {
                s.set(Some(f.get()));
            });
            assert_eq!(joiner.await.unwrap(), n);
            sibling.await.unwrap();
            (seen.get().unwrap(), polls.get())
        })
    }

    /// `join_all` and `try_join_all`; under Miri only the first (they share
    /// the poll loop), to keep the file within its time.
    fn kinds() -> &'static [bool] {
        if cfg!(miri) {
            &[false]
        } else {
            &[false, true]
        }
    }

    #[test]
    fn sibling_runs_within_one_budget_of_finished_futures() {
        let n = if cfg!(miri) { 160 } else { 10_000 };
        for try_join in [false, true] {
            let (before, _) = run(n, try_join, false);
            assert!(before <= 128, "sibling waited for {before} futures");
            assert!(before >= 100, "join yielded too early: after {before}");
        }
    }

    #[test]
    fn always_ready_join_yields_about_every_128_futures() {
        let n = if cfg!(miri) { 256 } else { 12_800 };
        for &try_join in kinds() {
            let (_, polls) = run(n, try_join, false);
            let expected = n / 128;
            assert!(
                (expected..=expected + 2).contains(&polls),
                "joining task polled {polls} times for {n} futures"
            );
        }
    }

    #[test]
    fn unconstrained_join_does_not_yield() {
        let n = if cfg!(miri) { 150 } else { 10_000 };
        for &try_join in kinds() {
            assert_eq!(run(n, try_join, true), (n, 1));
        }
    }
}

// ---------------------------------------------------------------------------
// Auto traits: those of futures-util's `JoinAll` (`Send` if the future and
// its output are; `Sync` if the future is `Send + Sync` and its output
// `Sync`; `Unpin` always) and `TryJoinAll` (the same, with the error counted
// as part of the output), checked on both so a difference is a compile error.

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

/// Both `join_all`s of one future `Probe<M, O>`.
macro_rules! joins {
    ($m:ty, $o:ty) => {
        (
            join_all(std::iter::empty::<Probe<$m, $o>>()),
            futures::future::join_all(std::iter::empty::<Probe<$m, $o>>()),
        )
    };
}

/// Both `try_join_all`s of one future `Probe<M, Result<T, E>>`.
macro_rules! try_joins {
    ($m:ty, $t:ty, $e:ty) => {
        (
            try_join_all(std::iter::empty::<Probe<$m, Result<$t, $e>>>()),
            futures::future::try_join_all(std::iter::empty::<Probe<$m, Result<$t, $e>>>()),
        )
    };
}

#[test]
fn join_all_send_sync_unpin_as_futures_util() {
    let (ours, theirs) = joins!(SendSync, SendSync);
    assert_send(&ours);
    assert_sync(&ours);
    assert_unpin(&ours);
    assert_send(&theirs);
    assert_sync(&theirs);
    assert_unpin(&theirs);

    let (ours, theirs) = joins!(SendNotSync, SendSync);
    assert_send(&ours);
    assert_not_sync!(ours);
    assert_send(&theirs);
    assert_not_sync!(theirs);

    let (ours, theirs) = joins!(SyncNotSend, SendSync);
    assert_not_send!(ours);
    assert_not_sync!(ours);
    assert_not_send!(theirs);
    assert_not_sync!(theirs);

    let (ours, theirs) = joins!(SendSync, SendNotSync);
    assert_send(&ours);
    assert_not_sync!(ours);
    assert_send(&theirs);
    assert_not_sync!(theirs);

    let (ours, theirs) = joins!(SendSync, SyncNotSend);
    assert_not_send!(ours);
    assert_sync(&ours);
    assert_not_send!(theirs);
    assert_sync(&theirs);

    let (ours, theirs) = joins!(Neither, Neither);
    assert_not_send!(ours);
    assert_not_sync!(ours);
    assert_unpin(&ours);
    assert_not_send!(theirs);
    assert_not_sync!(theirs);
}

#[test]
fn try_join_all_send_sync_unpin_as_futures_util() {
    let (ours, theirs) = try_joins!(SendSync, SendSync, SendSync);
    assert_send(&ours);
    assert_sync(&ours);
    assert_unpin(&ours);
    assert_send(&theirs);
    assert_sync(&theirs);
    assert_unpin(&theirs);

    let (ours, theirs) = try_joins!(SendNotSync, SendSync, SendSync);
    assert_send(&ours);
    assert_not_sync!(ours);
    assert_send(&theirs);
    assert_not_sync!(theirs);

    let (ours, theirs) = try_joins!(SyncNotSend, SendSync, SendSync);
    assert_not_send!(ours);
    assert_not_sync!(ours);
    assert_not_send!(theirs);
    assert_not_sync!(theirs);

    // The `Ok` type.
    let (ours, theirs) = try_joins!(SendSync, SendNotSync, SendSync);
    assert_send(&ours);
    assert_not_sync!(ours);
    assert_send(&theirs);
    assert_not_sync!(theirs);
    let (ours, theirs) = try_joins!(SendSync, SyncNotSend, SendSync);
    assert_not_send!(ours);
    assert_sync(&ours);
    assert_not_send!(theirs);
    assert_sync(&theirs);

    // The error type counts too.
    let (ours, theirs) = try_joins!(SendSync, SendSync, SendNotSync);
    assert_send(&ours);
    assert_not_sync!(ours);
    assert_send(&theirs);
    assert_not_sync!(theirs);
    let (ours, theirs) = try_joins!(SendSync, SendSync, SyncNotSend);
    assert_not_send!(ours);
    assert_sync(&ours);
    assert_not_send!(theirs);
    assert_sync(&theirs);

    let (ours, theirs) = try_joins!(Neither, Neither, Neither);
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
