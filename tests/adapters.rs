//! The buffered stream adapters (`FairStreamExt`, `FairTryStreamExt`):
//! differential tests against futures-util's counterparts, the limit-0 and
//! "n in flight" regressions, allocations per item, panics and drops,
//! fairness, the unlimited pull bound, the tokio budget, errors of the
//! `try_` variants, and the auto traits.
//!
//! The counting allocator is tests/alloc.rs's: a `const` thread-local
//! counter, so each test sees only its own thread's allocations.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::future::{ready, FusedFuture, FutureExt, TryFutureExt};
use futures::stream::{self, FusedStream};
use futures::task::{waker, ArcWake};
use futures::{Stream, StreamExt, TryStreamExt};
use proptest::collection::vec;
use proptest::prelude::*;
use velodrome::{FairStreamExt, FairTryStreamExt};

// ---------------------------------------------------------------------------
// Counting allocator

mod common;

use common::allocations_during;

fn noop_cx() -> Context<'static> {
    Context::from_waker(futures::task::noop_waker_ref())
}

// ---------------------------------------------------------------------------
// The scripted world of the differential tests
//
// A source yields item `i` once `thresholds[i]` wakes were delivered to it
// (then ends after one more threshold); item `i` is a child that completes
// once `wakes` wakes were delivered to it, with `Ok(i)`, or `Err(i)` if it
// fails; or, for a source error, the item is `Err(i)` itself. Every
// readiness depends only on the wakes the script delivered, never on when
// or how often something was polled, and each side is driven until it
// settles, so settled sides are comparable: both reach the same fixpoint
// (every ready child in flight has finished, and the source is pulled until
// the limit is reached or it is not ready).

#[derive(Clone, Debug)]
struct ItemSpec {
    /// Source wakes needed beyond the previous item's.
    gate: usize,
    /// Wakes the child needs.
    wakes: usize,
    source_error: bool,
    child_fails: bool,
}

#[derive(Clone, Debug)]
enum Op {
    /// One wake to the source.
    Source,
    /// One wake to child `index % items`.
    Child(usize),
    /// One wake to every child.
    AllChildren,
    /// Drive the adapter until it settles.
    Poll,
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

    fn reached(&self, needed: usize, cx: &mut Context<'_>) -> bool {
        if self.delivered.load(Ordering::SeqCst) >= needed {
            return true;
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        false
    }
}

/// A child: `Ok(id)` (or `Err(id)`) once it has had `needed` wakes.
struct Child {
    id: usize,
    needed: usize,
    fails: bool,
    wakes: Arc<Wakes>,
}

impl Future for Child {
    type Output = Result<usize, usize>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<usize, usize>> {
        if !self.wakes.reached(self.needed, cx) {
            return Poll::Pending;
        }
        Poll::Ready(if self.fails {
            Err(self.id)
        } else {
            Ok(self.id)
        })
    }
}

/// A child of the non-`try` adapters: its id either way.
struct Plain(Child);

impl Future for Plain {
    type Output = usize;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|id| id))
    }
}

/// The scripted source: a `TryStream` of children (or source errors).
struct Source {
    next: usize,
    thresholds: Vec<usize>,
    specs: Arc<[ItemSpec]>,
    wakes: Arc<Wakes>,
    children: Arc<[Arc<Wakes>]>,
    /// Items (and source errors) yielded so far.
    pulled: Arc<AtomicUsize>,
}

impl Stream for Source {
    type Item = Result<Child, usize>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let items = self.specs.len();
        assert!(self.next <= items, "source polled after its end");
        let needed = self.thresholds[self.next];
        if !self.wakes.reached(needed, cx) {
            return Poll::Pending;
        }
        let id = self.next;
        self.next += 1;
        if id == items {
            return Poll::Ready(None);
        }
        self.pulled.fetch_add(1, Ordering::SeqCst);
        let spec = &self.specs[id];
        if spec.source_error {
            return Poll::Ready(Some(Err(id)));
        }
        Poll::Ready(Some(Ok(Child {
            id,
            needed: spec.wakes,
            fails: spec.child_fails,
            wakes: self.children[id].clone(),
        })))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.specs.len() - self.next.min(self.specs.len());
        (left, Some(left))
    }
}

fn to_plain(item: Result<Child, usize>) -> Plain {
    Plain(item.expect("no source errors in a non-try script"))
}

type PlainSource = stream::Map<Source, fn(Result<Child, usize>) -> Plain>;

/// What a side yields, whatever the adapter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Out {
    Item(Result<usize, usize>),
    Done(Result<(), usize>),
}

/// An adapter under test, whatever its type.
trait Driven {
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Option<Out>>;
    fn hint(&self) -> (usize, Option<usize>);
    fn terminated(&self) -> Option<bool>;
}

struct PlainStream<S>(Pin<Box<S>>);

impl<S: Stream<Item = usize> + FusedStream> Driven for PlainStream<S> {
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Option<Out>> {
        self.0
            .poll_next_unpin(cx)
            .map(|o| o.map(|id| Out::Item(Ok(id))))
    }
    fn hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
    fn terminated(&self) -> Option<bool> {
        Some(self.0.is_terminated())
    }
}

struct ResultStream<S>(Pin<Box<S>>);

impl<S: Stream<Item = Result<usize, usize>>> Driven for ResultStream<S> {
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Option<Out>> {
        self.0.poll_next_unpin(cx).map(|o| o.map(Out::Item))
    }
    fn hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
    fn terminated(&self) -> Option<bool> {
        None
    }
}

struct Fut<F: ?Sized>(Pin<Box<F>>);

impl<F: Future<Output = Result<(), usize>> + FusedFuture + ?Sized> Driven for Fut<F> {
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Option<Out>> {
        self.0.poll_unpin(cx).map(|r| Some(Out::Done(r)))
    }
    fn hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
    fn terminated(&self) -> Option<bool> {
        Some(self.0.is_terminated())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Buffered,
    BufferUnordered,
    TryBuffered,
    TryBufferUnordered,
    ForEach,
    TryForEach,
}

impl Kind {
    fn ordered(self) -> bool {
        matches!(self, Kind::Buffered | Kind::TryBuffered)
    }
}

/// Items whose children were made (`f` called) and finished, for the
/// `for_each` futures.
#[derive(Default)]
struct Log {
    started: Mutex<Vec<usize>>,
    finished: Mutex<Vec<usize>>,
}

struct Side {
    adapter: Box<dyn Driven>,
    source: Arc<Wakes>,
    children: Arc<[Arc<Wakes>]>,
    log: Arc<Log>,
    pulled: Arc<AtomicUsize>,
    outputs: Vec<Out>,
    done: bool,
    parent: Arc<CountingWaker>,
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn thresholds(specs: &[ItemSpec], end_gate: usize) -> Vec<usize> {
    let mut total = 0;
    let mut out: Vec<usize> = specs
        .iter()
        .map(|s| {
            total += s.gate;
            total
        })
        .collect();
    out.push(total + end_gate);
    out
}

impl Side {
    fn new(
        kind: Kind,
        ours: bool,
        specs: &[ItemSpec],
        end_gate: usize,
        limit: Option<usize>,
    ) -> Self {
        let source_wakes = Arc::new(Wakes::default());
        let children: Arc<[Arc<Wakes>]> = specs.iter().map(|_| Arc::default()).collect();
        let pulled = Arc::new(AtomicUsize::new(0));
        let source = Source {
            next: 0,
            thresholds: thresholds(specs, end_gate),
            specs: specs.into(),
            wakes: source_wakes.clone(),
            children: children.clone(),
            pulled: pulled.clone(),
        };
        let log = Arc::new(Log::default());
        // futures-util's `buffered(0)` hangs: its "no limit" is `usize::MAX`.
        let n = limit.filter(|&n| n > 0).unwrap_or(usize::MAX);
        let plain = || source_plain(source_clone_for_plain(&source));
        let adapter: Box<dyn Driven> = match (kind, ours) {
            (Kind::Buffered, true) => Box::new(PlainStream(Box::pin(plain().fair_buffered(limit)))),
            (Kind::Buffered, false) => Box::new(PlainStream(Box::pin(plain().buffered(n)))),
            (Kind::BufferUnordered, true) => {
                Box::new(PlainStream(Box::pin(plain().fair_buffer_unordered(limit))))
            }
            (Kind::BufferUnordered, false) => {
                Box::new(PlainStream(Box::pin(plain().buffer_unordered(n))))
            }
            (Kind::TryBuffered, true) => {
                Box::new(ResultStream(Box::pin(source.fair_try_buffered(limit))))
            }
            (Kind::TryBuffered, false) => Box::new(ResultStream(Box::pin(source.try_buffered(n)))),
            (Kind::TryBufferUnordered, true) => Box::new(ResultStream(Box::pin(
                source.fair_try_buffer_unordered(limit),
            ))),
            (Kind::TryBufferUnordered, false) => {
                Box::new(ResultStream(Box::pin(source.try_buffer_unordered(n))))
            }
            (Kind::ForEach, _) => {
                let l = log.clone();
                let f = move |child: Plain| {
                    l.started.lock().unwrap().push(child.0.id);
                    let l = l.clone();
                    child.map(move |id| l.finished.lock().unwrap().push(id))
                };
                let src = plain();
                let fut = if ours {
                    Box::pin(src.fair_for_each_concurrent(limit, f).map(Ok::<(), usize>))
                        as Pin<Box<dyn FusedFutureResult>>
                } else {
                    Box::pin(src.for_each_concurrent(limit, f).map(Ok::<(), usize>))
                };
                Box::new(Fut(fut))
            }
            (Kind::TryForEach, _) => {
                let l = log.clone();
                let f = move |child: Child| {
                    l.started.lock().unwrap().push(child.id);
                    let l = l.clone();
                    child.map_ok(move |id| l.finished.lock().unwrap().push(id))
                };
                let fut = if ours {
                    Box::pin(source.fair_try_for_each_concurrent(limit, f))
                        as Pin<Box<dyn FusedFutureResult>>
                } else {
                    Box::pin(source.try_for_each_concurrent(limit, f))
                };
                Box::new(Fut(fut))
            }
        };
        Self {
            adapter,
            source: source_wakes,
            children,
            log,
            pulled,
            outputs: Vec::new(),
            done: false,
            parent: Arc::default(),
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Source => self.source.deliver(),
            Op::Child(i) => {
                if !self.children.is_empty() {
                    self.children[i % self.children.len()].deliver();
                }
            }
            Op::AllChildren => self.children.iter().for_each(|c| c.deliver()),
            Op::Poll => self.settle(),
        }
    }

    /// Polls until it is done, or returns `Pending` without a self-wake.
    fn settle(&mut self) {
        let waker = waker(self.parent.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10_000 {
            if self.done {
                return;
            }
            let wakes_before = self.parent.0.load(Ordering::SeqCst);
            match self.adapter.poll_out(&mut cx) {
                Poll::Ready(Some(out)) => {
                    let finished = matches!(out, Out::Done(_));
                    self.outputs.push(out);
                    self.done = finished;
                }
                Poll::Ready(None) => self.done = true,
                Poll::Pending => {
                    if self.parent.0.load(Ordering::SeqCst) == wakes_before {
                        return;
                    }
                }
            }
        }
        panic!("the adapter did not settle in 10,000 calls");
    }

    fn observe(&self, kind: Kind) -> Observed {
        let mut outputs = self.outputs.clone();
        let mut finished = self.log.finished.lock().unwrap().clone();
        if !kind.ordered() {
            outputs.sort_unstable();
        }
        finished.sort_unstable();
        let failed = matches!(outputs.last(), Some(Out::Done(Err(_))));
        Observed {
            outputs,
            pulled: (!failed).then(|| self.pulled.load(Ordering::SeqCst)),
            // After the first error the two may have pulled and finished
            // different children (futures-util pulls one item per pass, we
            // fill to the limit first): only the error must agree.
            started: if failed {
                None
            } else {
                Some(self.log.started.lock().unwrap().clone())
            },
            finished: if failed { None } else { Some(finished) },
            size_hint: self.adapter.hint(),
            terminated: self.adapter.terminated(),
            done: self.done,
        }
    }
}

trait FusedFutureResult: Future<Output = Result<(), usize>> + FusedFuture {}
impl<T: Future<Output = Result<(), usize>> + FusedFuture> FusedFutureResult for T {}

fn source_clone_for_plain(source: &Source) -> Source {
    Source {
        next: source.next,
        thresholds: source.thresholds.clone(),
        specs: source.specs.clone(),
        wakes: source.wakes.clone(),
        children: source.children.clone(),
        pulled: source.pulled.clone(),
    }
}

fn source_plain(source: Source) -> PlainSource {
    source.map(to_plain as fn(Result<Child, usize>) -> Plain)
}

#[derive(Debug, PartialEq)]
struct Observed {
    outputs: Vec<Out>,
    /// Items taken from the source: the same at every settled point, so the
    /// same number of children in flight.
    pulled: Option<usize>,
    started: Option<Vec<usize>>,
    finished: Option<Vec<usize>>,
    size_hint: (usize, Option<usize>),
    terminated: Option<bool>,
    done: bool,
}

#[derive(Clone, Debug)]
struct Script {
    specs: Vec<ItemSpec>,
    end_gate: usize,
    limit: Option<usize>,
    ops: Vec<Op>,
}

fn script(errors: bool) -> impl Strategy<Value = Script> {
    let spec =
        (0..3_usize, 0..4_usize, any::<u8>(), any::<u8>()).prop_map(move |(gate, wakes, e, f)| {
            ItemSpec {
                gate,
                wakes,
                source_error: errors && e % 8 == 0,
                child_fails: errors && f % 6 == 0,
            }
        });
    let limit = prop_oneof![Just(None), Just(Some(0)), (1..5_usize).prop_map(Some)];
    let op = prop_oneof![
        3 => Just(Op::Source),
        3 => any::<usize>().prop_map(Op::Child),
        1 => Just(Op::AllChildren),
        4 => Just(Op::Poll),
    ];
    // Under Miri, shorter scripts: each step costs about a millisecond there.
    let (items, ops) = if cfg!(miri) {
        (0..6, 0..16)
    } else {
        (0..10, 0..40)
    };
    (vec(spec, items), 0..2_usize, limit, vec(op, ops)).prop_map(|(specs, end_gate, limit, ops)| {
        Script {
            specs,
            end_gate,
            limit,
            ops,
        }
    })
}

/// Keeps only the first error of a script, for the `try_for_each` futures:
/// with two errors ready at once, which one comes first depends on the poll
/// order, which differs on purpose.
fn first_error_only(mut script: Script) -> Script {
    let mut seen = false;
    for spec in &mut script.specs {
        for flag in [&mut spec.source_error, &mut spec.child_fails] {
            if *flag && seen {
                *flag = false;
            }
            seen |= *flag;
        }
    }
    script
}

fn run(kind: Kind, script: &Script) -> Result<(), TestCaseError> {
    let mut ours = Side::new(kind, true, &script.specs, script.end_gate, script.limit);
    let mut reference = Side::new(kind, false, &script.specs, script.end_gate, script.limit);
    let check = |ours: &mut Side, reference: &mut Side, step: usize, op: &Op| {
        ours.apply(op);
        reference.apply(op);
        prop_assert_eq!(
            ours.observe(kind),
            reference.observe(kind),
            "{:?} after step {} ({:?})",
            kind,
            step,
            op
        );
        Ok(())
    };
    for (step, op) in script.ops.iter().enumerate() {
        check(&mut ours, &mut reference, step, op)?;
    }
    // Then wake everything until both are done: at most 9 items with gates
    // of 2, an end gate of 1 and children needing 3 wakes take 23 rounds.
    let drain = [Op::Source, Op::AllChildren, Op::Poll];
    for round in 0..24 {
        if ours.done && reference.done {
            break;
        }
        for op in &drain {
            check(&mut ours, &mut reference, script.ops.len() + round, op)?;
        }
    }
    prop_assert!(ours.done, "{:?}: the drain finishes the adapter", kind);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 192 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Same outputs in the same order, same `size_hint` and `is_terminated`.
    #[test]
    fn buffered_matches_futures_util(script in script(false)) {
        run(Kind::Buffered, &script)?;
    }

    /// Same outputs as multisets, same `size_hint` and `is_terminated`.
    #[test]
    fn buffer_unordered_matches_futures_util(script in script(false)) {
        run(Kind::BufferUnordered, &script)?;
    }

    /// Same results (errors of the source and of children included) in the
    /// same order.
    #[test]
    fn try_buffered_matches_futures_util(script in script(true)) {
        run(Kind::TryBuffered, &script)?;
    }

    /// Same results as multisets.
    #[test]
    fn try_buffer_unordered_matches_futures_util(script in script(true)) {
        run(Kind::TryBufferUnordered, &script)?;
    }

    /// Same items started in the same order, same children finished, done
    /// at the same step, same `is_terminated`.
    #[test]
    fn for_each_concurrent_matches_futures_util(script in script(false)) {
        run(Kind::ForEach, &script)?;
    }

    /// As above until the first error, which both return at the same step.
    #[test]
    fn try_for_each_concurrent_matches_futures_util(
        script in script(true).prop_map(first_error_only),
    ) {
        run(Kind::TryForEach, &script)?;
    }
}

// ---------------------------------------------------------------------------
// Limit 0 (rust-lang/futures-rs#2348, #2939, #2981)

/// Polls a stream once with a no-op waker.
fn poll_once<S: Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
    stream.poll_next_unpin(&mut noop_cx())
}

fn ok_ready(n: u32) -> Result<futures::future::Ready<Result<u32, ()>>, ()> {
    Ok(ready(Ok(n)))
}

#[test]
fn limit_zero_or_none_on_an_empty_source_ends_at_once() {
    for limit in [Some(0), None] {
        let empty = || stream::iter(Vec::<u32>::new()).map(ready);
        let try_empty = || stream::iter(Vec::<u32>::new()).map(ok_ready);
        assert_eq!(
            poll_once(&mut empty().fair_buffered(limit)),
            Poll::Ready(None)
        );
        assert_eq!(
            poll_once(&mut empty().fair_buffer_unordered(limit)),
            Poll::Ready(None)
        );
        assert_eq!(
            poll_once(&mut try_empty().fair_try_buffered(limit)),
            Poll::Ready(None)
        );
        assert_eq!(
            poll_once(&mut try_empty().fair_try_buffer_unordered(limit)),
            Poll::Ready(None)
        );
        let mut each = empty().fair_for_each_concurrent(limit, |_| ready(()));
        assert_eq!(each.poll_unpin(&mut noop_cx()), Poll::Ready(()));
        let mut try_each = try_empty().fair_try_for_each_concurrent(limit, |_| ready(Ok(())));
        assert_eq!(try_each.poll_unpin(&mut noop_cx()), Poll::Ready(Ok(())));
    }
}

#[test]
fn futures_util_limit_zero_hangs_on_an_empty_source() {
    // The defect the `0` means "no limit" rule fixes: futures-util never pulls
    // and never registers a waker, so the task is never woken again.
    let empty = || stream::iter(Vec::<u32>::new()).map(ready);
    assert_eq!(poll_once(&mut empty().buffered(0)), Poll::Pending);
    assert_eq!(poll_once(&mut empty().buffer_unordered(0)), Poll::Pending);
    let try_empty = || stream::iter(Vec::<u32>::new()).map(ok_ready);
    assert_eq!(poll_once(&mut try_empty().try_buffered(0)), Poll::Pending);
    assert_eq!(
        poll_once(&mut try_empty().try_buffer_unordered(0)),
        Poll::Pending
    );
}

#[test]
fn limit_zero_or_none_on_a_non_empty_source_runs_everything_at_once() {
    let items = if cfg!(miri) { 20 } else { 100 };
    for limit in [Some(0), None] {
        // All children pending: after one poll, every one is in flight.
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..items)
            .map(|_| futures::channel::oneshot::channel::<u32>())
            .unzip();
        let pulled = Arc::new(AtomicUsize::new(0));
        let p = pulled.clone();
        let mut adapter = stream::iter(receivers)
            .inspect(move |_| {
                p.fetch_add(1, Ordering::SeqCst);
            })
            .fair_buffer_unordered(limit);
        assert_eq!(poll_once(&mut adapter), Poll::Pending);
        assert_eq!(pulled.load(Ordering::SeqCst), items);
        assert_eq!(adapter.size_hint(), (items, Some(items)));
        for (i, tx) in senders.into_iter().enumerate() {
            tx.send(i as u32).unwrap();
        }
        let mut out: Vec<u32> = futures::executor::block_on(adapter.map(Result::unwrap).collect());
        out.sort_unstable();
        assert_eq!(out, (0..items as u32).collect::<Vec<_>>());

        let ordered: Vec<u32> = futures::executor::block_on(
            stream::iter(0..items as u32)
                .map(ready)
                .fair_buffered(limit)
                .collect(),
        );
        assert_eq!(ordered, (0..items as u32).collect::<Vec<_>>());
    }
    // futures-util's `buffered(0)` does not even pull.
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let mut reference = stream::iter(0..3_u32)
        .inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        })
        .map(ready)
        .buffered(0);
    assert_eq!(poll_once(&mut reference), Poll::Pending);
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------
// Children in flight per output (futures-rs#2961)

/// A child that completes with its index once released.
struct Gated {
    id: usize,
    gate: Arc<Wakes>,
}

impl Future for Gated {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        if self.gate.reached(1, cx) {
            Poll::Ready(self.id)
        } else {
            Poll::Pending
        }
    }
}

/// Releases the children of an adapter with limit `n` over an always-ready
/// source of `items` gated children, one at a time in `order`, driving the
/// adapter after each release; returns `pulled - returned` at every output
/// that came out while the source still had items.
fn in_flight_at_outputs<S>(
    items: usize,
    order: &[usize],
    make: impl FnOnce(stream::BoxStream<'static, Gated>) -> S,
) -> Vec<usize>
where
    S: Stream + Unpin,
{
    let gates: Arc<[Arc<Wakes>]> = (0..items).map(|_| Arc::default()).collect();
    let pulled = Arc::new(AtomicUsize::new(0));
    let (g, p) = (gates.clone(), pulled.clone());
    let source = stream::iter(0..items)
        .map(move |id| {
            p.fetch_add(1, Ordering::SeqCst);
            Gated {
                id,
                gate: g[id].clone(),
            }
        })
        .boxed();
    let mut adapter = make(source);
    let parent = Arc::new(CountingWaker::default());
    let waker = waker(parent);
    let mut cx = Context::from_waker(&waker);
    let mut returned = 0;
    let mut in_flight = Vec::new();
    let mut drive = |adapter: &mut S| loop {
        match adapter.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(_)) => {
                returned += 1;
                let pulled = pulled.load(Ordering::SeqCst);
                if pulled < items {
                    in_flight.push(pulled - returned);
                }
            }
            Poll::Ready(None) | Poll::Pending => return,
        }
    };
    drive(&mut adapter);
    for &i in order {
        gates[i].deliver();
        drive(&mut adapter);
    }
    in_flight
}

fn release_orders(items: usize) -> Vec<Vec<usize>> {
    // 5 is coprime with the sizes used (13, 101): a permutation.
    let stride: Vec<usize> = (0..items).map(|i| (i * 5) % items).collect();
    if cfg!(miri) {
        // Two orders are enough there: in order is the easy case.
        return vec![(0..items).rev().collect(), stride];
    }
    vec![(0..items).collect(), (0..items).rev().collect(), stride]
}

#[test]
fn n_children_are_in_flight_whenever_an_output_comes_out() {
    let items = if cfg!(miri) { 13 } else { 101 };
    let n = 4;
    for order in release_orders(items) {
        let ours = [
            in_flight_at_outputs(items, &order, |s| s.fair_buffer_unordered(n).boxed()),
            in_flight_at_outputs(items, &order, |s| s.fair_buffered(n).boxed()),
            in_flight_at_outputs(items, &order, |s| {
                s.map(|g| Ok::<_, ()>(g.map(Ok::<_, ()>)))
                    .fair_try_buffer_unordered(n)
                    .boxed()
            }),
            in_flight_at_outputs(items, &order, |s| {
                s.map(|g| Ok::<_, ()>(g.map(Ok::<_, ()>)))
                    .fair_try_buffered(n)
                    .boxed()
            }),
        ];
        for (which, figures) in ours.iter().enumerate() {
            assert!(!figures.is_empty());
            assert!(
                figures.iter().all(|&f| f == n),
                "adapter {which}, order {order:?}: in flight at outputs {figures:?}"
            );
        }
        // futures-util refills on the consumer's next call: n - 1.
        let reference = [
            in_flight_at_outputs(items, &order, |s| s.buffer_unordered(n).boxed()),
            in_flight_at_outputs(items, &order, |s| s.buffered(n).boxed()),
        ];
        for figures in &reference {
            assert!(
                figures.iter().all(|&f| f == n - 1),
                "futures-util: {figures:?}"
            );
        }
    }
}

#[test]
fn for_each_concurrent_keeps_n_in_flight_while_the_source_has_items() {
    let items = if cfg!(miri) { 13 } else { 101 };
    let n = 4;
    for order in release_orders(items) {
        let gates: Arc<[Arc<Wakes>]> = (0..items).map(|_| Arc::default()).collect();
        let started = Rc::new(Cell::new(0));
        let finished = Rc::new(Cell::new(0));
        let (s, f) = (started.clone(), finished.clone());
        let g = gates.clone();
        let mut each = stream::iter(0..items).fair_for_each_concurrent(n, move |id| {
            s.set(s.get() + 1);
            let f = f.clone();
            Gated {
                id,
                gate: g[id].clone(),
            }
            .map(move |_| f.set(f.get() + 1))
        });
        let mut cx = noop_cx();
        assert_eq!(each.poll_unpin(&mut cx), Poll::Pending);
        for &i in &order {
            assert_eq!(started.get(), (finished.get() + n).min(items));
            gates[i].deliver();
            let _ = each.poll_unpin(&mut cx);
        }
        assert!(each.is_terminated());
        assert_eq!(finished.get(), items);
    }
}

// ---------------------------------------------------------------------------
// Allocations per item

/// Outputs `items` of an adapter over always-ready children after a warm-up
/// of `warm` outputs; returns the allocations of the measured part.
fn allocations_per_items<S: Stream + Unpin>(mut adapter: S, warm: usize, items: usize) -> usize {
    let mut cx = noop_cx();
    let mut take = |count| {
        for _ in 0..count {
            assert!(matches!(
                adapter.poll_next_unpin(&mut cx),
                Poll::Ready(Some(_))
            ));
        }
    };
    take(warm);
    allocations_during(|| take(items)).0
}

#[test]
fn an_output_allocates_nothing_in_steady_state() {
    let items = if cfg!(miri) { 20 } else { 10_000 };
    let warm = if cfg!(miri) { 32 } else { 64 };
    let source = || stream::iter(0_u64..).map(ready);
    let try_source = || stream::iter(0_u64..).map(|n| Ok::<_, ()>(ready(Ok::<_, ()>(n))));
    let ours = [
        (
            "fair_buffer_unordered(16)",
            allocations_per_items(source().fair_buffer_unordered(16), warm, items),
        ),
        (
            "fair_buffered(16)",
            allocations_per_items(source().fair_buffered(16), warm, items),
        ),
        (
            "fair_try_buffer_unordered(16)",
            allocations_per_items(try_source().fair_try_buffer_unordered(16), warm, items),
        ),
        (
            "fair_try_buffered(16)",
            allocations_per_items(try_source().fair_try_buffered(16), warm, items),
        ),
    ];
    let reference = [
        (
            "buffer_unordered(16)",
            allocations_per_items(source().buffer_unordered(16), warm, items),
        ),
        (
            "buffered(16)",
            allocations_per_items(source().buffered(16), warm, items),
        ),
    ];
    println!("allocations for {items} outputs: ours {ours:?}, futures-util {reference:?}");
    for (name, allocs) in ours {
        assert_eq!(
            allocs, 0,
            "{name}: {allocs} allocations for {items} outputs"
        );
    }
    for (name, allocs) in reference {
        assert!(allocs >= items, "futures-util {name}: {allocs}");
    }
}

#[test]
fn for_each_concurrent_allocates_a_constant_amount() {
    let (small, large) = if cfg!(miri) {
        (50, 100)
    } else {
        (1_000, 10_000)
    };
    let run = |items: u64| {
        allocations_during(|| {
            futures::executor::block_on(
                stream::iter(0..items).fair_for_each_concurrent(16, |_| ready(())),
            );
            futures::executor::block_on(
                stream::iter(0..items)
                    .map(Ok::<_, ()>)
                    .fair_try_for_each_concurrent(16, |_| ready(Ok(()))),
            )
            .unwrap();
        })
        .0
    };
    // The first run also pays for lazily made thread-locals.
    run(small);
    let (a, b) = (run(small), run(large));
    assert_eq!(a, b, "allocations grow with the number of items");
    // futures-util's allocates once per item (a task per child).
    let reference = |items: u64| {
        allocations_during(|| {
            futures::executor::block_on(
                stream::iter(0..items).for_each_concurrent(16, |_| ready(())),
            );
        })
        .0
    };
    let (c, d) = (reference(small), reference(large));
    println!(
        "for_each_concurrent + try_for_each_concurrent allocations: ours {a} for {small} items, \
         {b} for {large}; futures-util's for_each_concurrent {c} for {small}, {d} for {large}"
    );
    assert!(d - c >= (large - small) as usize, "futures-util: {c}, {d}");
}

// ---------------------------------------------------------------------------
// Panics and drops

/// Counts drops of values of one kind.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

impl Drops {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// An output that counts its drops.
struct Tracked(Drops);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0 .0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A child: ready at once with a `Tracked` output unless `pending`; panics
/// in `poll` if `panic_in_poll`, in `Drop` if `panic_in_drop`; counts its
/// own drops.
struct Fragile {
    pending: bool,
    panic_in_poll: bool,
    panic_in_drop: bool,
    outputs: Drops,
    drops: Drops,
}

impl Future for Fragile {
    type Output = Tracked;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Tracked> {
        if self.panic_in_poll {
            panic!("child panics in poll");
        }
        if self.pending {
            return Poll::Pending;
        }
        Poll::Ready(Tracked(self.outputs.clone()))
    }
}

impl Drop for Fragile {
    fn drop(&mut self) {
        self.drops.0.fetch_add(1, Ordering::SeqCst);
        if self.panic_in_drop && !std::thread::panicking() {
            panic!("child panics in drop");
        }
    }
}

fn fragile(
    outputs: &Drops,
    drops: &Drops,
    pending: bool,
    panic_in_poll: bool,
    panic_in_drop: bool,
) -> Fragile {
    Fragile {
        pending,
        panic_in_poll,
        panic_in_drop,
        outputs: outputs.clone(),
        drops: drops.clone(),
    }
}

#[cfg(panic = "unwind")]
fn drain_catching<S: Stream<Item = Tracked> + Unpin>(adapter: &mut S) -> (usize, usize) {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let (mut outputs, mut panics) = (0, 0);
    for _ in 0..1_000 {
        match catch_unwind(AssertUnwindSafe(|| adapter.poll_next_unpin(&mut noop_cx()))) {
            Ok(Poll::Ready(Some(_))) => outputs += 1,
            Ok(Poll::Ready(None)) | Ok(Poll::Pending) => return (outputs, panics),
            Err(_) => panics += 1,
        }
    }
    panic!("the adapter did not finish");
}

#[test]
#[cfg(panic = "unwind")]
fn buffer_unordered_survives_a_child_panicking_in_poll() {
    let (outputs, drops) = (Drops::default(), Drops::default());
    let children: Vec<Fragile> = (0..6)
        .map(|i| fragile(&outputs, &drops, false, i == 2, false))
        .collect();
    let mut adapter = stream::iter(children).fair_buffer_unordered(3);
    let (yielded, panics) = drain_catching(&mut adapter);
    assert_eq!((yielded, panics), (5, 1));
    assert_eq!(drops.count(), 6, "every child dropped once");
    assert_eq!(outputs.count(), 5, "every output dropped once");
    drop(adapter);
    assert_eq!((drops.count(), outputs.count()), (6, 5));
}

#[test]
#[cfg(panic = "unwind")]
fn buffered_drops_waiting_outputs_once_after_a_child_panics() {
    // Child 0 stays pending, children 1..4 finish and wait behind it, child 4
    // panics. As in futures-util, outputs queued behind a lost child never
    // come out; they are dropped with the adapter, once each.
    let (outputs, drops) = (Drops::default(), Drops::default());
    let children: Vec<Fragile> = (0..6)
        .map(|i| fragile(&outputs, &drops, i == 0, i == 4, false))
        .collect();
    let mut adapter = stream::iter(children).fair_buffered(None);
    let (yielded, panics) = drain_catching(&mut adapter);
    assert_eq!((yielded, panics), (0, 1));
    assert_eq!(drops.count(), 5, "all but the pending child are gone");
    assert_eq!(outputs.count(), 0, "four outputs wait");
    drop(adapter);
    assert_eq!((drops.count(), outputs.count()), (6, 4));
}

#[test]
#[cfg(panic = "unwind")]
fn a_child_panicking_in_drop_does_not_stop_the_others_from_being_dropped() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let (outputs, drops) = (Drops::default(), Drops::default());
    let children: Vec<Fragile> = (0..5)
        .map(|i| fragile(&outputs, &drops, true, false, i == 1))
        .collect();
    let mut adapter = stream::iter(children).fair_buffer_unordered(None);
    assert!(poll_once(&mut adapter).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(move || drop(adapter))).is_err());
    assert_eq!(drops.count(), 5);

    let children: Vec<Fragile> = (0..5)
        .map(|i| fragile(&outputs, &drops, true, false, i == 3))
        .collect();
    let mut each = stream::iter(children).fair_for_each_concurrent(None, |child| child.map(drop));
    assert!(each.poll_unpin(&mut noop_cx()).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(move || drop(each))).is_err());
    assert_eq!(drops.count(), 10);
}

#[test]
fn try_for_each_concurrent_drops_every_running_child_at_the_first_error() {
    let (outputs, drops) = (Drops::default(), Drops::default());
    let pulled = Rc::new(Cell::new(0));
    let p = pulled.clone();
    let (o, d) = (outputs.clone(), drops.clone());
    let source = stream::iter(0..100).map(move |i| {
        p.set(p.get() + 1);
        Ok::<_, usize>(i)
    });
    let mut each = source.fair_try_for_each_concurrent(4, move |i| {
        let child = fragile(&o, &d, i != 5, false, false);
        async move {
            drop(child.await);
            if i == 5 {
                Err(i)
            } else {
                Ok(())
            }
        }
    });
    // Children 0..4 are pending; nothing fails yet.
    assert_eq!(each.poll_unpin(&mut noop_cx()), Poll::Pending);
    assert_eq!(pulled.get(), 4);
    assert_eq!(drops.count(), 0);
    drop(each);
    assert_eq!(drops.count(), 4);

    let (o, d) = (outputs.clone(), drops.clone());
    let pulled = Rc::new(Cell::new(0));
    let p = pulled.clone();
    let source = stream::iter(0..100).map(move |i| {
        p.set(p.get() + 1);
        Ok::<_, usize>(i)
    });
    // Child 2 fails at once while 0, 1 and 3 are pending: the error comes
    // out in the same poll, the others are dropped, nothing more is pulled.
    let mut each = source.fair_try_for_each_concurrent(4, move |i| {
        let child = fragile(&o, &d, i != 2, false, false);
        async move {
            drop(child.await);
            if i == 2 {
                Err(i)
            } else {
                Ok(())
            }
        }
    });
    assert_eq!(each.poll_unpin(&mut noop_cx()), Poll::Ready(Err(2)));
    assert_eq!(pulled.get(), 4);
    assert_eq!(
        drops.count(),
        8,
        "the four children of this run are dropped"
    );
    assert!(each.is_terminated());
    // Polled again after the error: `Ok(())`, as futures-util.
    assert_eq!(each.poll_unpin(&mut noop_cx()), Poll::Ready(Ok(())));
}

#[test]
fn try_for_each_concurrent_stops_at_a_source_error_like_futures_util() {
    let run = |ours: bool| {
        let started = Rc::new(RefCell::new(Vec::new()));
        let s = started.clone();
        let source = stream::iter([Ok(1), Ok(2), Err(-1), Ok(3)]);
        let f = move |n: i32| {
            s.borrow_mut().push(n);
            futures::future::pending::<Result<(), i32>>()
        };
        let mut cx = noop_cx();
        let result = if ours {
            source
                .fair_try_for_each_concurrent(None, f)
                .poll_unpin(&mut cx)
        } else {
            source.try_for_each_concurrent(None, f).poll_unpin(&mut cx)
        };
        let started = started.borrow().clone();
        (result, started)
    };
    assert_eq!(run(true), (Poll::Ready(Err(-1)), vec![1, 2]));
    assert_eq!(run(true), run(false));
}

#[test]
fn try_buffered_streams_go_on_after_errors_like_futures_util() {
    let items = || {
        stream::iter([Ok(1), Err(-1), Ok(2), Ok(-2), Ok(3)])
            .map(|item: Result<i32, i32>| item.map(|n| ready(if n < 0 { Err(n) } else { Ok(n) })))
    };
    for limit in [1, 2, 8] {
        let ours: Vec<_> = futures::executor::block_on(items().fair_try_buffered(limit).collect());
        let reference: Vec<_> = futures::executor::block_on(items().try_buffered(limit).collect());
        assert_eq!(ours, reference, "limit {limit}");
        let mut ours: Vec<_> =
            futures::executor::block_on(items().fair_try_buffer_unordered(limit).collect());
        let mut reference: Vec<_> =
            futures::executor::block_on(items().try_buffer_unordered(limit).collect());
        ours.sort_unstable();
        reference.sort_unstable();
        assert_eq!(ours, reference, "limit {limit}");
    }
}

// ---------------------------------------------------------------------------
// Fairness: each child is polled at most once per call

/// A child that never finishes, wakes itself on every poll, and counts its
/// polls.
struct Spinner(Rc<Cell<usize>>);

impl Future for Spinner {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.set(self.0.get() + 1);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn each_child_is_polled_at_most_once_per_call() {
    let k = if cfg!(miri) { 4 } else { 16 };
    let calls = 5;
    let counters = || (0..k).map(|_| Rc::new(Cell::new(0))).collect::<Vec<_>>();
    let check = |counters: &[Rc<Cell<usize>>], call: usize, what: &str| {
        for polls in counters {
            assert!(
                polls.get() <= call,
                "{what}: {} polls in {call} calls",
                polls.get()
            );
        }
    };
    let source = |counters: &[Rc<Cell<usize>>]| {
        // The children, then a source that is never ready again.
        stream::iter(counters.iter().cloned().map(Spinner).collect::<Vec<_>>())
            .chain(stream::pending())
    };

    let c = counters();
    let mut adapter = source(&c).fair_buffer_unordered(k);
    let c2 = counters();
    let mut ordered = source(&c2).fair_buffered(None);
    let c3 = counters();
    let mut each = source(&c3).fair_for_each_concurrent(k, |child| child);
    for call in 1..=calls {
        assert!(poll_once(&mut adapter).is_pending());
        check(&c, call, "fair_buffer_unordered");
        assert!(poll_once(&mut ordered).is_pending());
        check(&c2, call, "fair_buffered");
        assert!(each.poll_unpin(&mut noop_cx()).is_pending());
        check(&c3, call, "fair_for_each_concurrent");
    }
    // And each was polled in every call.
    assert!(c
        .iter()
        .chain(&c2)
        .chain(&c3)
        .all(|polls| polls.get() == calls));
}

// ---------------------------------------------------------------------------
// Without a limit: an always-ready infinite source

#[test]
fn unlimited_adapters_return_on_an_always_ready_infinite_source() {
    let pulled = Rc::new(Cell::new(0));
    let counting = |pulled: &Rc<Cell<usize>>| {
        let p = pulled.clone();
        stream::repeat_with(move || {
            p.set(p.get() + 1);
        })
    };

    // Ready children: the first call returns an output.
    let mut adapter = counting(&pulled).map(ready).fair_buffer_unordered(None);
    assert_eq!(poll_once(&mut adapter), Poll::Ready(Some(())));
    assert_eq!(pulled.get(), 128, "one call pulls at most 128 items");

    // Pending children: the call returns `Pending` and wakes the task.
    let pulled = Rc::new(Cell::new(0));
    let parent = Arc::new(CountingWaker::default());
    let parent_waker = waker(parent.clone());
    let mut cx = Context::from_waker(&parent_waker);
    let mut adapter = counting(&pulled)
        .map(|()| futures::future::pending::<()>())
        .fair_buffered(0);
    assert_eq!(adapter.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!((pulled.get(), parent.0.load(Ordering::SeqCst)), (128, 1));
    assert_eq!(adapter.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!((pulled.get(), parent.0.load(Ordering::SeqCst)), (256, 2));

    // The same for `for_each_concurrent`.
    let pulled = Rc::new(Cell::new(0));
    let parent = Arc::new(CountingWaker::default());
    let parent_waker = waker(parent.clone());
    let mut cx = Context::from_waker(&parent_waker);
    let mut each =
        counting(&pulled).fair_for_each_concurrent(None, |()| futures::future::pending::<()>());
    assert_eq!(each.poll_unpin(&mut cx), Poll::Pending);
    assert_eq!((pulled.get(), parent.0.load(Ordering::SeqCst)), (128, 1));
    let pulled = Rc::new(Cell::new(0));
    let mut each = counting(&pulled).fair_for_each_concurrent(None, |()| ready(()));
    assert_eq!(each.poll_unpin(&mut cx), Poll::Pending);
    assert_eq!(pulled.get(), 128);
}

#[test]
fn for_each_concurrent_outside_tokio_yields_after_128_completions() {
    // futures-util's loops for as long as the source and the children are
    // ready: with an infinite source, forever.
    let finished = Rc::new(Cell::new(0));
    let f = finished.clone();
    let parent = Arc::new(CountingWaker::default());
    let waker = waker(parent.clone());
    let mut cx = Context::from_waker(&waker);
    let mut each = stream::repeat(()).fair_for_each_concurrent(4, move |()| {
        f.set(f.get() + 1);
        ready(())
    });
    assert_eq!(each.poll_unpin(&mut cx), Poll::Pending);
    assert_eq!(parent.0.load(Ordering::SeqCst), 1, "it woke its task");
    // 128 finished, and the freed slots were refilled (their `f` ran).
    assert_eq!(finished.get(), 128 + 4);
}

// ---------------------------------------------------------------------------
// The tokio budget

#[cfg(feature = "tokio")]
mod budget {
    use super::*;

    /// Drains `adapter` (over always-ready children) in one task while a
    /// sibling task waits to run; returns the outputs produced when the
    /// sibling first ran.
    fn outputs_before_sibling_runs(
        drain: impl FnOnce(Rc<Cell<usize>>) -> Pin<Box<dyn Future<Output = ()>>>,
    ) -> usize {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let produced = Rc::new(Cell::new(0));
            let seen = Rc::new(Cell::new(None));
            let (p, s) = (produced.clone(), seen.clone());
            let drainer = tokio::task::spawn_local(drain(p));
            let sibling = tokio::task::spawn_local(async move { s.set(Some(produced.get())) });
            drainer.await.unwrap();
            sibling.await.unwrap();
            seen.get().unwrap()
        })
    }

    fn items() -> usize {
        // More than one budget's worth of outputs, so the sibling must run
        // before the drain ends.
        if cfg!(miri) {
            160
        } else {
            10_000
        }
    }

    fn stream_drain<S: Stream + 'static>(
        make: impl FnOnce() -> S + 'static,
    ) -> impl FnOnce(Rc<Cell<usize>>) -> Pin<Box<dyn Future<Output = ()>>> {
        move |produced| {
            Box::pin(async move {
                let mut adapter = std::pin::pin!(make());
                while adapter.next().await.is_some() {
                    produced.set(produced.get() + 1);
                }
            })
        }
    }

    #[test]
    fn a_sibling_task_runs_within_128_outputs() {
        let n = items();
        let source = move || stream::iter(0..n).map(ready);
        let runs = [
            (
                "fair_buffer_unordered(16)",
                outputs_before_sibling_runs(stream_drain(move || {
                    source().fair_buffer_unordered(16)
                })),
            ),
            (
                "fair_buffer_unordered(None)",
                outputs_before_sibling_runs(stream_drain(move || {
                    source().fair_buffer_unordered(None)
                })),
            ),
            (
                "fair_buffered(16)",
                outputs_before_sibling_runs(stream_drain(move || source().fair_buffered(16))),
            ),
            (
                "fair_for_each_concurrent(16)",
                outputs_before_sibling_runs(|produced| {
                    Box::pin(source().fair_for_each_concurrent(16, move |f| {
                        let produced = produced.clone();
                        f.map(move |_| produced.set(produced.get() + 1))
                    }))
                }),
            ),
        ];
        for (name, before) in runs {
            assert!(
                before <= 128,
                "{name}: the sibling waited for {before} outputs"
            );
            assert!(
                before >= 100,
                "{name}: yielded too early, after {before} outputs"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The rest of the API

#[test]
fn names_do_not_clash_with_futures_ext_traits() {
    // `StreamExt`, `TryStreamExt`, `FairStreamExt` and `FairTryStreamExt` are
    // all in scope here; both spellings resolve, integer literals included.
    let ours: Vec<u32> =
        futures::executor::block_on(stream::iter(0..3).map(ready).fair_buffered(2).collect());
    let reference: Vec<u32> =
        futures::executor::block_on(stream::iter(0..3).map(ready).buffered(2).collect());
    assert_eq!(ours, reference);
    let ok = || stream::iter(0..3).map(|n| Ok::<_, ()>(ready(Ok::<_, ()>(n))));
    let ours: Result<Vec<u32>, ()> =
        futures::executor::block_on(ok().fair_try_buffered(2).try_collect());
    let reference: Result<Vec<u32>, ()> =
        futures::executor::block_on(ok().try_buffered(2).try_collect());
    assert_eq!(ours, reference);
}

#[test]
fn size_hint_is_terminated_debug_and_accessors() {
    let mut adapter = stream::iter(0..5).map(ready).fair_buffer_unordered(2);
    assert_eq!(adapter.size_hint(), (5, Some(5)));
    assert!(!adapter.is_terminated());
    assert!(matches!(poll_once(&mut adapter), Poll::Ready(Some(_))));
    assert_eq!(
        adapter.size_hint(),
        (4, Some(4)),
        "2 in flight, 2 in the source"
    );
    assert_eq!(adapter.get_ref().size_hint(), (2, Some(2)));
    let debug = format!("{adapter:?}");
    assert!(debug.starts_with("BufferUnordered { stream: "), "{debug}");
    assert!(debug.contains("in_flight: 2, limit: Some(2)"), "{debug}");
    while let Poll::Ready(Some(_)) = poll_once(&mut adapter) {}
    assert!(adapter.is_terminated());
    assert_eq!(adapter.size_hint(), (0, Some(0)));
    let source = adapter.into_inner();
    assert_eq!(source.size_hint(), (0, Some(0)));

    let adapter = stream::iter(0..5).map(ready).fair_buffered(None);
    assert!(format!("{adapter:?}").contains("limit: None"));
}

// ---------------------------------------------------------------------------
// Auto traits, as futures-0.3.34/tests/auto_traits.rs asserts them for
// futures-util's types. A negative check fails to compile ("type annotations
// needed") when the type implements the trait.

macro_rules! assert_impl {
    ($ty:ty: $($trait:path),+) => {
        const _: fn() = || {
            fn check<T: ?Sized $(+ $trait)+>() {}
            check::<$ty>();
        };
    };
}

macro_rules! assert_not_impl {
    ($ty:ty: $trait:path) => {
        const _: fn() = || {
            trait AmbiguousIfImpl<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
            impl<T: ?Sized + $trait> AmbiguousIfImpl<u8> for T {}
            let _ = <$ty as AmbiguousIfImpl<_>>::some_item;
        };
    };
}

mod auto_traits {
    use std::marker::PhantomData;

    use super::*;
    use velodrome::{
        BufferUnordered, Buffered, ForEachConcurrent, TryBufferUnordered, TryBuffered,
        TryForEachConcurrent,
    };

    type LocalFuture<T = *const ()> = Pin<Box<dyn Future<Output = T>>>;
    type SendFuture<T = *const ()> = Pin<Box<dyn Future<Output = T> + Send>>;
    type SyncFuture<T = *const ()> = Pin<Box<dyn Future<Output = T> + Sync>>;
    type SendSyncFuture<T = *const ()> = Pin<Box<dyn Future<Output = T> + Send + Sync>>;
    type SendTryFuture<T = *const (), E = *const ()> = SendFuture<Result<T, E>>;
    type LocalTryFuture<T = *const (), E = *const ()> = LocalFuture<Result<T, E>>;
    type SendSyncTryFuture<T = *const (), E = *const ()> = SendSyncFuture<Result<T, E>>;
    type UnpinTryFuture<T = PhantomPinned, E = PhantomPinned> = LocalFuture<Result<T, E>>;
    struct PinnedFuture<T = PhantomPinned>(PhantomPinned, PhantomData<T>);
    impl<T> Future for PinnedFuture<T> {
        type Output = T;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
            unimplemented!()
        }
    }
    type PinnedTryFuture<T = PhantomPinned, E = PhantomPinned> = PinnedFuture<Result<T, E>>;

    type LocalStream<T = *const ()> = Pin<Box<dyn Stream<Item = T>>>;
    type SendStream<T = *const ()> = Pin<Box<dyn Stream<Item = T> + Send>>;
    type SyncStream<T = *const ()> = Pin<Box<dyn Stream<Item = T> + Sync>>;
    type UnpinStream<T = PhantomPinned> = LocalStream<T>;
    type LocalTryStream<T = *const (), E = *const ()> = LocalStream<Result<T, E>>;
    type SendTryStream<T = *const (), E = *const ()> = SendStream<Result<T, E>>;
    type SyncTryStream<T = *const (), E = *const ()> = SyncStream<Result<T, E>>;
    type UnpinTryStream<T = PhantomPinned, E = PhantomPinned> = UnpinStream<Result<T, E>>;
    struct PinnedStream<T = PhantomPinned>(PhantomPinned, PhantomData<T>);
    impl<T> Stream for PinnedStream<T> {
        type Item = T;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
            unimplemented!()
        }
    }
    type PinnedTryStream<T = PhantomPinned, E = PhantomPinned> = PinnedStream<Result<T, E>>;

    assert_impl!(BufferUnordered<SendStream<()>>: Send);
    assert_not_impl!(BufferUnordered<SendStream>: Send);
    assert_not_impl!(BufferUnordered<LocalStream>: Send);
    assert_impl!(BufferUnordered<SyncStream<()>>: Sync);
    assert_not_impl!(BufferUnordered<SyncStream>: Sync);
    assert_not_impl!(BufferUnordered<LocalStream>: Sync);
    assert_impl!(BufferUnordered<UnpinStream>: Unpin);
    assert_not_impl!(BufferUnordered<PinnedStream>: Unpin);

    assert_impl!(Buffered<SendStream<SendFuture<()>>>: Send);
    assert_not_impl!(Buffered<SendStream<SendFuture>>: Send);
    assert_not_impl!(Buffered<SendStream<LocalFuture>>: Send);
    assert_not_impl!(Buffered<LocalStream<SendFuture<()>>>: Send);
    assert_impl!(Buffered<SyncStream<SendSyncFuture<()>>>: Sync);
    assert_not_impl!(Buffered<SyncStream<SyncFuture<()>>>: Sync);
    assert_not_impl!(Buffered<LocalStream<SendSyncFuture<()>>>: Sync);
    assert_impl!(Buffered<UnpinStream<PinnedFuture>>: Unpin);
    assert_not_impl!(Buffered<PinnedStream<PinnedFuture>>: Unpin);

    assert_impl!(ForEachConcurrent<(), (), ()>: Send);
    assert_not_impl!(ForEachConcurrent<*const (), (), ()>: Send);
    assert_not_impl!(ForEachConcurrent<(), *const (), ()>: Send);
    assert_not_impl!(ForEachConcurrent<(), (), *const ()>: Send);
    assert_impl!(ForEachConcurrent<(), (), ()>: Sync);
    assert_not_impl!(ForEachConcurrent<*const (), (), ()>: Sync);
    assert_not_impl!(ForEachConcurrent<(), *const (), ()>: Sync);
    assert_not_impl!(ForEachConcurrent<(), (), *const ()>: Sync);
    assert_impl!(ForEachConcurrent<(), PhantomPinned, PhantomPinned>: Unpin);
    assert_not_impl!(ForEachConcurrent<PhantomPinned, (), ()>: Unpin);

    // futures-util: `TryBufferUnordered<SendTryStream<()>>: Send` (and the
    // `Sync` twin), whose error type is `*const ()`. Ours holds a source error
    // found while refilling until the next call, so it needs `St::Error: Send`
    // (`Sync`) too: the documented difference.
    assert_impl!(TryBufferUnordered<SendTryStream<(), ()>>: Send);
    assert_not_impl!(TryBufferUnordered<SendTryStream<()>>: Send);
    assert_not_impl!(TryBufferUnordered<SendTryStream>: Send);
    assert_not_impl!(TryBufferUnordered<LocalTryStream>: Send);
    assert_impl!(TryBufferUnordered<SyncTryStream<(), ()>>: Sync);
    assert_not_impl!(TryBufferUnordered<SyncTryStream<()>>: Sync);
    assert_not_impl!(TryBufferUnordered<SyncTryStream>: Sync);
    assert_not_impl!(TryBufferUnordered<LocalTryStream>: Sync);
    assert_impl!(TryBufferUnordered<UnpinTryStream>: Unpin);
    assert_not_impl!(TryBufferUnordered<PinnedTryStream>: Unpin);

    assert_impl!(TryBuffered<SendTryStream<SendTryFuture<(), ()>>>: Send);
    assert_not_impl!(TryBuffered<SendTryStream<SendTryFuture<*const (), ()>>>: Send);
    assert_not_impl!(TryBuffered<SendTryStream<SendTryFuture<(), *const ()>>>: Send);
    assert_not_impl!(TryBuffered<SendTryStream<LocalTryFuture<(), ()>>>: Send);
    assert_not_impl!(TryBuffered<LocalTryStream<SendTryFuture<(), ()>>>: Send);
    assert_impl!(TryBuffered<SyncTryStream<SendSyncTryFuture<(), ()>>>: Sync);
    assert_not_impl!(TryBuffered<SyncTryStream<SendSyncTryFuture<*const (), ()>>>: Sync);
    assert_not_impl!(TryBuffered<SyncTryStream<SendSyncTryFuture<(), *const ()>>>: Sync);
    assert_not_impl!(TryBuffered<SyncTryStream<SendTryFuture<(), ()>>>: Sync);
    assert_not_impl!(TryBuffered<LocalTryStream<SendSyncTryFuture<(), ()>>>: Sync);
    assert_impl!(TryBuffered<UnpinTryStream<PinnedTryFuture>>: Unpin);
    assert_not_impl!(TryBuffered<PinnedTryStream<UnpinTryFuture>>: Unpin);

    assert_impl!(TryForEachConcurrent<(), (), ()>: Send);
    assert_not_impl!(TryForEachConcurrent<*const (), (), ()>: Send);
    assert_not_impl!(TryForEachConcurrent<(), *const (), ()>: Send);
    assert_not_impl!(TryForEachConcurrent<(), (), *const ()>: Send);
    assert_impl!(TryForEachConcurrent<(), (), ()>: Sync);
    assert_not_impl!(TryForEachConcurrent<*const (), (), ()>: Sync);
    assert_not_impl!(TryForEachConcurrent<(), *const (), ()>: Sync);
    assert_not_impl!(TryForEachConcurrent<(), (), *const ()>: Sync);
    assert_impl!(TryForEachConcurrent<(), PhantomPinned, PhantomPinned>: Unpin);
    assert_not_impl!(TryForEachConcurrent<PhantomPinned, (), ()>: Unpin);

    // Self-checks of the probes.
    assert_impl!(u8: Send, Sync, Unpin);
    assert_not_impl!(*const (): Send);
    assert_not_impl!(PhantomPinned: Unpin);
}
