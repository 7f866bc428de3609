//! `SelectAll` / `select_all`: futures-util's API and behaviour (a
//! differential test against `futures::stream::SelectAll`), no allocation
//! per item, fairness (each stream polled at most once per `poll_next`
//! cycle, one item per poll), panics, and the auto traits.
//!
//! The counting allocator is tests/alloc.rs's: a `const` thread-local
//! counter, so each test sees only its own thread's allocations.

use std::cell::Cell;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::executor::block_on;
use futures::stream::{self, FusedStream};
use futures::task::{noop_waker, waker, ArcWake};
use futures::{Stream, StreamExt};
use proptest::collection::vec;
use proptest::prelude::*;
use velodrome::{select_all, SelectAll};

// ---------------------------------------------------------------------------
// Counting allocator

mod common;

use common::allocations_during;

/// Takes `items` items from `merged` with a no-op waker; every one must be
/// ready.
fn take_ready<S: Stream + Unpin>(merged: &mut S, items: usize) {
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    for _ in 0..items {
        assert!(matches!(
            merged.poll_next_unpin(&mut cx),
            Poll::Ready(Some(_))
        ));
    }
}

#[test]
fn an_item_allocates_nothing_in_steady_state() {
    let streams = if cfg!(miri) { 4 } else { 64 };
    let items = if cfg!(miri) { 40 } else { 10_000 };
    let mut ours = select_all((0..streams).map(|_| stream::repeat(1_u64)));
    // Warm up: the first poll allocates the set's storage.
    take_ready(&mut ours, streams);
    let (ours_allocs, ()) = allocations_during(|| take_ready(&mut ours, items));
    assert_eq!(
        ours_allocs, 0,
        "velodrome: {ours_allocs} allocations for {items} items"
    );

    // futures-util re-pushes the stream after each item: one allocation each.
    let mut reference = futures::stream::select_all((0..streams).map(|_| stream::repeat(1_u64)));
    take_ready(&mut reference, streams);
    let (reference_allocs, ()) = allocations_during(|| take_ready(&mut reference, items));
    println!("allocations per item: velodrome {ours_allocs}/{items}, futures-util {reference_allocs}/{items}");
    assert!(
        reference_allocs >= items,
        "futures-util: {reference_allocs} for {items} items"
    );
}

#[test]
fn streams_that_end_and_are_replaced_reuse_their_slots() {
    let rounds = if cfg!(miri) { 10 } else { 1_000 };
    let mut merged = SelectAll::new();
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    // Four streams of two items (arrays: no allocation of their own), drained
    // until each has ended and left the set.
    let mut round = || {
        for _ in 0..4 {
            merged.push(stream::iter([1, 2]));
        }
        for _ in 0..8 {
            assert!(matches!(
                merged.poll_next_unpin(&mut cx),
                Poll::Ready(Some(_))
            ));
        }
        assert_eq!(merged.poll_next_unpin(&mut cx), Poll::Ready(None));
        assert!(merged.is_empty());
    };
    round();
    let (allocs, ()) = allocations_during(|| {
        for _ in 0..rounds {
            round();
        }
    });
    assert_eq!(allocs, 0, "{allocs} allocations in {rounds} rounds");
}

// ---------------------------------------------------------------------------
// Differential test against `futures::stream::SelectAll`

/// One scripted operation, applied to both sets.
#[derive(Clone, Debug)]
enum Op {
    /// Push a stream whose item `i` needs `gates[i]` more wakes than item
    /// `i - 1`, and whose end needs `end` more after its last item.
    Push { gates: Vec<usize>, end: usize },
    /// Drive the set until it settles.
    Poll,
    /// Deliver one wake to every stream pushed so far.
    WakeAll,
    /// Deliver one wake to stream `index % pushed`.
    WakeOne(usize),
    /// `clear()` the set.
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (vec(0..3_usize, 0..5), 0..2_usize).prop_map(|(gates, end)| Op::Push { gates, end }),
        4 => Just(Op::Poll),
        2 => Just(Op::WakeAll),
        3 => any::<usize>().prop_map(Op::WakeOne),
        1 => Just(Op::Clear),
    ]
}

#[derive(Default)]
struct Wakes {
    delivered: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl Wakes {
    fn deliver(&self) {
        self.delivered.fetch_add(1, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

/// A stream yielding `(id, i)` for item `i` once `thresholds[i]` wakes were
/// delivered to it, then ending after the last threshold; panics if polled
/// after its end.
struct Scripted {
    id: usize,
    next: usize,
    thresholds: Vec<usize>,
    wakes: Arc<Wakes>,
}

impl Stream for Scripted {
    type Item = (usize, usize);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(usize, usize)>> {
        let items = self.thresholds.len() - 1;
        assert!(
            self.next <= items,
            "stream {} polled after its end",
            self.id
        );
        if self.wakes.delivered.load(Ordering::SeqCst) < self.thresholds[self.next] {
            *self.wakes.waker.lock().unwrap() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        self.next += 1;
        if self.next > items {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some((self.id, self.next - 1)))
        }
    }
}

fn thresholds(gates: &[usize], end: usize) -> Vec<usize> {
    let mut total = 0;
    let mut out: Vec<usize> = gates
        .iter()
        .map(|gate| {
            total += gate;
            total
        })
        .collect();
    out.push(total + end);
    out
}

/// The API both `SelectAll`s share, under one name.
trait Merge: Default + Unpin + FusedStream<Item = (usize, usize)> {
    fn push_stream(&mut self, stream: Scripted);
    fn length(&self) -> usize;
    fn clear_all(&mut self);
}

impl Merge for SelectAll<Scripted> {
    fn push_stream(&mut self, stream: Scripted) {
        self.push(stream);
    }
    fn length(&self) -> usize {
        self.len()
    }
    fn clear_all(&mut self) {
        self.clear();
    }
}

impl Merge for futures::stream::SelectAll<Scripted> {
    fn push_stream(&mut self, stream: Scripted) {
        self.push(stream);
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

struct Side<S> {
    set: S,
    wakes: Vec<Arc<Wakes>>,
    /// Items so far, per stream, in the order they came out.
    items: Vec<Vec<usize>>,
    parent: Arc<CountingWaker>,
}

/// What must agree between the two sides after every operation.
#[derive(Debug, PartialEq)]
struct Observed {
    items: Vec<Vec<usize>>,
    len: usize,
    is_empty: bool,
    terminated: bool,
    size_hint: (usize, Option<usize>),
}

impl<S: Merge> Side<S> {
    fn new() -> Self {
        Self {
            set: S::default(),
            wakes: Vec::new(),
            items: Vec::new(),
            parent: Arc::default(),
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Push { gates, end } => {
                let wakes = Arc::new(Wakes::default());
                self.set.push_stream(Scripted {
                    id: self.wakes.len(),
                    next: 0,
                    thresholds: thresholds(gates, *end),
                    wakes: wakes.clone(),
                });
                self.wakes.push(wakes);
                self.items.push(Vec::new());
            }
            Op::Poll => self.settle(),
            Op::WakeAll => self.wakes.iter().for_each(|w| w.deliver()),
            Op::WakeOne(index) => {
                if !self.wakes.is_empty() {
                    self.wakes[index % self.wakes.len()].deliver();
                }
            }
            Op::Clear => self.set.clear_all(),
        }
    }

    /// Polls until `Ready(None)` or a `Pending` without a self-wake.
    fn settle(&mut self) {
        let waker = waker(self.parent.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10_000 {
            let wakes_before = self.parent.0.load(Ordering::SeqCst);
            match self.set.poll_next_unpin(&mut cx) {
                Poll::Ready(Some((id, i))) => self.items[id].push(i),
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

    fn observe(&self) -> Observed {
        Observed {
            items: self.items.clone(),
            len: self.set.length(),
            is_empty: self.set.length() == 0,
            terminated: self.set.is_terminated(),
            size_hint: self.set.size_hint(),
        }
    }
}

fn run_script(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut ours = Side::<SelectAll<Scripted>>::new();
    let mut reference = Side::<futures::stream::SelectAll<Scripted>>::new();
    let drain = (0..12).flat_map(|_| [Op::WakeAll, Op::Poll]);
    for (step, op) in ops.iter().cloned().chain(drain).enumerate() {
        ours.apply(&op);
        reference.apply(&op);
        prop_assert_eq!(
            ours.observe(),
            reference.observe(),
            "after step {} ({:?})",
            step,
            op
        );
    }
    prop_assert_eq!(ours.set.len(), 0, "the drain ends every stream");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Per-stream item order, `len`, `is_empty`, `is_terminated` and
    /// `size_hint` agree with futures-util's after every operation.
    #[test]
    fn select_all_matches_futures_util(ops in vec(op(), 0..40)) {
        run_script(&ops)?;
    }
}

// ---------------------------------------------------------------------------
// Fairness

/// A stream that is never ready and wakes itself on every poll, counting
/// its polls.
struct Spinner {
    polls: Rc<Cell<usize>>,
}

impl Stream for Spinner {
    type Item = usize;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        self.polls.set(self.polls.get() + 1);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn each_stream_is_polled_at_most_once_per_poll_next() {
    let streams = if cfg!(miri) { 4 } else { 32 };
    let counters: Vec<_> = (0..streams).map(|_| Rc::new(Cell::new(0))).collect();
    let mut merged: SelectAll<Spinner> = counters
        .iter()
        .map(|polls| Spinner {
            polls: polls.clone(),
        })
        .collect();
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    for call in 1..=5 {
        assert_eq!(merged.poll_next_unpin(&mut cx), Poll::Pending);
        for polls in &counters {
            assert_eq!(polls.get(), call, "polls after {call} calls");
        }
    }
}

#[test]
fn always_ready_streams_take_turns_one_item_per_poll() {
    let merged = select_all([stream::repeat(0), stream::repeat(1), stream::repeat(2)]);
    let items: Vec<i32> = block_on(merged.take(12).collect());
    assert_eq!(items, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
}

#[test]
fn a_busy_stream_does_not_delay_a_quiet_one() {
    // futures-util's select_all gives the same round-robin here (it re-pushes
    // the stream); the point is that a spinning stream cannot hold the set.
    let polls = Rc::new(Cell::new(0));
    let mut merged: SelectAll<Pin<Box<dyn Stream<Item = usize>>>> = SelectAll::new();
    merged.push(Box::pin(Spinner {
        polls: polls.clone(),
    }));
    merged.push(Box::pin(stream::iter([7])));
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    assert_eq!(merged.poll_next_unpin(&mut cx), Poll::Ready(Some(7)));
    assert_eq!(polls.get(), 1);
}

// ---------------------------------------------------------------------------
// Panics and drops

/// Counts its drops; panics in `poll_next` if asked to.
struct Fragile {
    items: Vec<u32>,
    panic_in_poll: bool,
    drops: Arc<AtomicUsize>,
}

impl Stream for Fragile {
    type Item = u32;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
        if self.panic_in_poll {
            panic!("stream panics in poll_next");
        }
        Poll::Ready(self.items.pop())
    }
}

impl Drop for Fragile {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
#[cfg(panic = "unwind")]
fn a_stream_panicking_in_poll_is_dropped_and_the_others_go_on() {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    let drops = Arc::new(AtomicUsize::new(0));
    let fragile = |items: Vec<u32>, panic_in_poll| Fragile {
        items,
        panic_in_poll,
        drops: drops.clone(),
    };
    let mut merged = select_all([
        fragile(vec![2, 1], false),
        fragile(vec![], true),
        fragile(vec![20, 10], false),
    ]);
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    let mut items = Vec::new();
    let mut panics = 0;
    loop {
        match catch_unwind(AssertUnwindSafe(|| merged.poll_next_unpin(&mut cx))) {
            Ok(Poll::Ready(Some(item))) => items.push(item),
            Ok(Poll::Ready(None)) => break,
            Ok(Poll::Pending) => unreachable!("every stream is ready"),
            Err(_) => {
                panics += 1;
                // The panicking stream is gone already.
                assert_eq!(drops.load(Ordering::SeqCst), 1);
            }
        }
    }
    items.sort_unstable();
    assert_eq!((items, panics), (vec![1, 2, 10, 20], 1));
    assert!(merged.is_empty());
    assert_eq!(drops.load(Ordering::SeqCst), 3, "each stream dropped once");
    drop(merged);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn clear_and_drop_drop_each_stream_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let make = || Fragile {
        items: vec![1],
        panic_in_poll: false,
        drops: drops.clone(),
    };
    let mut merged: SelectAll<Fragile> = (0..3).map(|_| make()).collect();
    merged.clear();
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    assert!(!merged.is_terminated(), "a cleared set is a fresh one");
    merged.extend([make(), make()]);
    assert_eq!(merged.len(), 2);
    drop(merged);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

// ---------------------------------------------------------------------------
// The rest of the API

#[test]
fn api_of_futures_util() {
    let mut merged: SelectAll<stream::Iter<std::vec::IntoIter<u8>>> = Default::default();
    assert!(merged.is_empty() && !merged.is_terminated());
    assert_eq!(format!("{merged:?}"), "SelectAll { len: 0, .. }");
    merged.extend([stream::iter(vec![1]), stream::iter(vec![2, 3])]);
    assert_eq!(merged.len(), 2);
    assert_eq!((&merged).into_iter().count(), 2);
    for stream in &mut merged {
        assert!(stream.size_hint().0 >= 1);
    }
    assert_eq!(
        merged.size_hint(),
        (0, None),
        "futures-util's (the default)"
    );
    assert_eq!(merged.into_iter().count(), 2);

    let collected: SelectAll<_> = [stream::iter(vec![1, 2]), stream::iter(vec![3])]
        .into_iter()
        .collect();
    let mut items: Vec<u8> = block_on(collected.collect());
    items.sort_unstable();
    assert_eq!(items, [1, 2, 3]);
}

// ---------------------------------------------------------------------------
// Auto traits: futures-util's `SelectAll<St>` is `Unpin` always, `Send` if
// `St: Send`, `Sync` if `St: Send + Sync`. Negative checks fail to compile
// ("type annotations needed") when the type implements the trait.

fn assert_send<T: Send>(_: &T) {}
fn assert_sync<T: Sync>(_: &T) {}
fn assert_unpin<T: Unpin>(_: &T) {}

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

macro_rules! assert_not_unpin {
    ($value:expr) => {{
        trait AmbiguousIfUnpin<A> {
            fn probe(&self) {}
        }
        impl<T: ?Sized> AmbiguousIfUnpin<()> for T {}
        impl<T: ?Sized + Unpin> AmbiguousIfUnpin<u8> for T {}
        AmbiguousIfUnpin::probe(&$value);
    }};
}

/// A stream with chosen auto traits (through `M`).
struct Probe<M>(PhantomData<M>);

impl<M> Stream for Probe<M> {
    type Item = ();
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<()>> {
        Poll::Ready(None)
    }
}

impl<M> Unpin for Probe<M> {}

fn probe_set<M>() -> SelectAll<Probe<M>> {
    SelectAll::new()
}

#[test]
fn auto_traits_are_futures_utils() {
    // Send + Sync stream.
    let set = probe_set::<()>();
    assert_send(&set);
    assert_sync(&set);
    assert_unpin(&set);
    // Send, !Sync stream: the set is Send, not Sync.
    let set = probe_set::<Cell<u8>>();
    assert_send(&set);
    assert_not_sync!(set);
    // Sync, !Send stream: neither (a shared set could move streams).
    let set = probe_set::<MutexGuard<'static, ()>>();
    assert_not_send!(set);
    assert_not_sync!(set);
    // Neither.
    let set = probe_set::<Rc<u8>>();
    assert_not_send!(set);
    assert_not_sync!(set);
    // Unpin whatever the stream, as futures-util's (only `Unpin` streams
    // can be pushed, but the type does not require it).
    assert_unpin_type::<SelectAll<PhantomPinned>>();
    assert_send_type::<SelectAll<()>>();
    assert_sync_type::<SelectAll<()>>();
    // Self-checks of the negative probes on std types.
    assert_not_unpin!(PhantomPinned);
    assert_not_send!(Rc::new(0_u8));
    assert_not_sync!(Cell::new(0_u8));
}

fn assert_unpin_type<T: Unpin>() {}
fn assert_send_type<T: Send>() {}
fn assert_sync_type<T: Sync>() {}
