//! What the side-by-side benchmarks share: every set behind one trait, the
//! children they run, a floor that polls children with no set at all, and a
//! noop-waker driver; the same for sets of streams ([`StreamSet`]); and the
//! Criterion configuration of every bench file ([`config`]).
//!
//! Used by every file in `benches/` and by `examples/budget_counts.rs`,
//! `examples/memory.rs`, `examples/family_memory.rs` and
//! `examples/instructions.rs` (the examples include it with `#[path]`).

#![allow(
    dead_code,
    reason = "shared by several bench and example targets; each uses a part"
)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::task::noop_waker_ref;
use futures_util::stream::StreamFuture;
use futures_util::{Stream, StreamExt as _};

/// The set measured under the name "velodrome".
///
/// Before the engine landed this line read `use futures_util::stream as
/// engine;` (the "velodrome" rows then repeated futures-util): pointing the
/// benchmarks at another build of the set is this one line.
use velodrome as engine;

/// A set of futures, as the benchmarks drive it.
///
/// `push` takes `&mut self` because most peers need it; velodrome and
/// futures-util take `&self` and are called through the same method.
pub(crate) trait Set<F: Future>: Sized {
    /// An empty set.
    fn new() -> Self;
    /// Adds a child; it is polled no earlier than the next `poll_set`.
    fn push(&mut self, fut: F);
    /// Children not yet completed.
    fn len(&self) -> usize;
    /// `Stream::poll_next` of the set.
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>>;
}

/// One implementation under test: a name and the set types it provides.
pub(crate) trait Peer {
    /// Bench id and table column; "futures-util" is the baseline.
    const NAME: &'static str;
    /// The set for `Unpin` children, stored unboxed.
    type Set<F: Future + Unpin>: Set<F>;
    /// The set for any child; only `FutureGroup` boxes here, because its
    /// `insert` needs `&mut self` and so an `Unpin` set.
    type SetAny<F: Future>: Set<F>;
}

/// The set under development (see [`engine`]).
#[derive(Debug)]
pub(crate) struct Velodrome<F>(engine::FuturesUnordered<F>);

impl<F: Future> Set<F> for Velodrome<F> {
    #[inline]
    fn new() -> Self {
        Self(engine::FuturesUnordered::new())
    }
    #[inline]
    fn push(&mut self, fut: F) {
        self.0.push(fut);
    }
    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.0.poll_next_unpin(cx)
    }
}

impl<F: Future> Set<F> for futures_util::stream::FuturesUnordered<F> {
    #[inline]
    fn new() -> Self {
        Self::new()
    }
    #[inline]
    fn push(&mut self, fut: F) {
        Self::push(self, fut);
    }
    #[inline]
    fn len(&self) -> usize {
        Self::len(self)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.poll_next_unpin(cx)
    }
}

impl<F: Future> Set<F> for futures_buffered::FuturesUnordered<F> {
    #[inline]
    fn new() -> Self {
        Self::new()
    }
    #[inline]
    fn push(&mut self, fut: F) {
        Self::push(self, fut);
    }
    #[inline]
    fn len(&self) -> usize {
        Self::len(self)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.poll_next_unpin(cx)
    }
}

impl<F: Future> Set<F> for unicycle::FuturesUnordered<F> {
    #[inline]
    fn new() -> Self {
        Self::new()
    }
    #[inline]
    fn push(&mut self, fut: F) {
        Self::push(self, fut);
    }
    #[inline]
    fn len(&self) -> usize {
        Self::len(self)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.poll_next_unpin(cx)
    }
}

impl<F: Future + Unpin> Set<F> for futures_concurrency::future::FutureGroup<F> {
    #[inline]
    fn new() -> Self {
        Self::new()
    }
    #[inline]
    fn push(&mut self, fut: F) {
        self.insert(fut);
    }
    #[inline]
    fn len(&self) -> usize {
        Self::len(self)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.poll_next_unpin(cx)
    }
}

/// `FutureGroup` for `!Unpin` children: each child boxed (one allocation
/// per child that the other peers do not pay).
#[derive(Debug)]
pub(crate) struct BoxedGroup<F>(futures_concurrency::future::FutureGroup<Pin<Box<F>>>);

impl<F: Future> Set<F> for BoxedGroup<F> {
    #[inline]
    fn new() -> Self {
        Self(futures_concurrency::future::FutureGroup::new())
    }
    #[inline]
    fn push(&mut self, fut: F) {
        self.0.insert(Box::pin(fut));
    }
    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.0.poll_next_unpin(cx)
    }
}

/// velodrome.
#[derive(Debug)]
pub(crate) enum VelodromePeer {}
impl Peer for VelodromePeer {
    const NAME: &'static str = "velodrome";
    type Set<F: Future + Unpin> = Velodrome<F>;
    type SetAny<F: Future> = Velodrome<F>;
}

/// futures-util 0.3, the baseline.
#[derive(Debug)]
pub(crate) enum FuturesUtil {}
impl Peer for FuturesUtil {
    const NAME: &'static str = "futures-util";
    type Set<F: Future + Unpin> = futures_util::stream::FuturesUnordered<F>;
    type SetAny<F: Future> = futures_util::stream::FuturesUnordered<F>;
}

/// futures-buffered 0.2 (built with its `tokio-coop` feature).
#[derive(Debug)]
pub(crate) enum FuturesBuffered {}
impl Peer for FuturesBuffered {
    const NAME: &'static str = "futures-buffered";
    type Set<F: Future + Unpin> = futures_buffered::FuturesUnordered<F>;
    type SetAny<F: Future> = futures_buffered::FuturesUnordered<F>;
}

/// unicycle 0.10.
#[derive(Debug)]
pub(crate) enum Unicycle {}
impl Peer for Unicycle {
    const NAME: &'static str = "unicycle";
    type Set<F: Future + Unpin> = unicycle::FuturesUnordered<F>;
    type SetAny<F: Future> = unicycle::FuturesUnordered<F>;
}

/// futures-concurrency 7's `FutureGroup` (children boxed when `!Unpin`).
#[derive(Debug)]
pub(crate) enum FuturesConcurrency {}
impl Peer for FuturesConcurrency {
    const NAME: &'static str = "futures-concurrency";
    type Set<F: Future + Unpin> = futures_concurrency::future::FutureGroup<F>;
    type SetAny<F: Future> = BoxedGroup<F>;
}

/// An empty `P::SetAny` for the children `make` returns; lets a generic
/// function hold a set of unnameable (`async`) children.
pub(crate) fn set_any_for<P: Peer, A, F: Future, M: Fn(A) -> F>(_make: &M) -> P::SetAny<F> {
    Set::new()
}

/// `set.next().await` for any [`Set`].
pub(crate) async fn next<F: Future, S: Set<F>>(set: &mut S) -> Option<F::Output> {
    std::future::poll_fn(|cx| set.poll_set(cx)).await
}

/// Consecutive `Pending` results after which [`drain`] calls a set stalled
/// (a lost wake-up would otherwise hang the benchmark).
const STALL_LIMIT: u32 = 1_000_000;

/// Polls `set` with the noop waker until it has yielded `count` items.
///
/// The noop waker is enough: every workload's wakes land in the set's own
/// queue, and this loop polls again whatever the set returned.
#[inline]
pub(crate) fn drain<F: Future, S: Set<F>>(set: &mut S, count: usize) {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut got = 0;
    let mut idle = 0;
    while got < count {
        match set.poll_set(&mut cx) {
            Poll::Ready(Some(out)) => {
                black_box(out);
                got += 1;
                idle = 0;
            }
            Poll::Ready(None) => panic!("set ended after {got} of {count} items"),
            Poll::Pending => {
                idle += 1;
                assert!(
                    idle < STALL_LIMIT,
                    "set stalled after {got} of {count} items"
                );
            }
        }
    }
}

/// Polls `set` once with the noop waker, expecting no item.
#[inline]
pub(crate) fn poll_once<F: Future, S: Set<F>>(set: &mut S) {
    let mut cx = Context::from_waker(noop_waker_ref());
    if let Poll::Ready(out) = set.poll_set(&mut cx) {
        black_box(out);
    }
}

/// One round of `ready_drain`: push `n` ready children, drain them. Returns
/// the emptied set, so that a timed caller can drop it outside the timing.
pub(crate) fn ready_drain_round<P: Peer>(n: usize) -> P::Set<std::future::Ready<usize>> {
    let mut set = <P::Set<_> as Set<_>>::new();
    for i in 0..n {
        set.push(std::future::ready(i));
    }
    drain(&mut set, n);
    set
}

/// One round of `pending_once`: push `n` children that park their waker on
/// the first poll, poll until all have parked, wake them all from this
/// thread, then drain. Returns the emptied set.
pub(crate) fn pending_once_round<P: Peer>(n: usize) -> P::Set<PendingOnce> {
    let wakers = Rc::new(RefCell::new(Vec::with_capacity(n)));
    let mut set = <P::Set<PendingOnce> as Set<_>>::new();
    for _ in 0..n {
        set.push(PendingOnce::new(&wakers));
    }
    while wakers.borrow().len() < n {
        poll_once(&mut set);
    }
    for waker in wakers.take() {
        waker.wake();
    }
    drain(&mut set, n);
    set
}

/// One round of `yield_10`: push `n` children that wake themselves `yields`
/// times before finishing, then drain. Returns the emptied set.
pub(crate) fn yield_round<P: Peer>(n: usize, yields: u32) -> P::Set<Yield> {
    let mut set = <P::Set<Yield> as Set<_>>::new();
    for _ in 0..n {
        set.push(Yield(yields));
    }
    drain(&mut set, n);
    set
}

/// Completes on its second poll; on the first it parks a clone of its waker
/// in the shared list, which the benchmark wakes all at once.
#[derive(Debug)]
pub(crate) struct PendingOnce {
    parked: bool,
    wakers: Rc<RefCell<Vec<Waker>>>,
}

impl PendingOnce {
    /// A child that will park its waker in `wakers`.
    pub(crate) fn new(wakers: &Rc<RefCell<Vec<Waker>>>) -> Self {
        Self {
            parked: false,
            wakers: Rc::clone(wakers),
        }
    }
}

impl Future for PendingOnce {
    type Output = ();
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.parked {
            return Poll::Ready(());
        }
        self.parked = true;
        self.wakers.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

/// Wakes itself and returns `Pending` this many more times, then completes.
#[derive(Debug)]
pub(crate) struct Yield(pub(crate) u32);

impl Future for Yield {
    type Output = ();
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Where [`Parked`] children keep their wakers and learn they may finish.
#[derive(Debug, Default)]
pub(crate) struct Board {
    wakers: RefCell<Vec<Option<Waker>>>,
    released: Vec<Cell<bool>>,
}

impl Board {
    /// A board for children `0..n`.
    pub(crate) fn new(n: usize) -> Rc<Self> {
        Rc::new(Self {
            wakers: RefCell::new(vec![None; n]),
            released: (0..n).map(|_| Cell::new(false)).collect(),
        })
    }

    /// Lets child `id` finish and wakes it (clone, wake, drop).
    #[inline]
    pub(crate) fn release(&self, id: usize) {
        self.released[id].set(true);
        let waker = self.wakers.borrow_mut()[id].take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Makes slot `id` pending again, for a child pushed in its place.
    #[inline]
    pub(crate) fn reset(&self, id: usize) {
        self.released[id].set(false);
    }

    /// How many children have parked a waker.
    pub(crate) fn parked(&self) -> usize {
        self.wakers.borrow().iter().filter(|w| w.is_some()).count()
    }

    /// Whether child `id` has parked its waker (polled while pending).
    #[inline]
    pub(crate) fn is_parked(&self, id: usize) -> bool {
        self.wakers.borrow()[id].is_some()
    }

    /// Makes id `id` pending again, for a new child that reuses it.
    #[inline]
    pub(crate) fn rearm(&self, id: usize) {
        self.released[id].set(false);
    }
}

/// A set of `n` parked children, each polled once (so each holds a waker).
pub(crate) fn parked_set<S: Set<Parked>>(board: &Rc<Board>, n: usize) -> S {
    let mut set = S::new();
    for id in 0..n {
        set.push(Parked::new(id, board));
    }
    while board.parked() < n {
        poll_once(&mut set);
    }
    set
}

/// One event of `server_event`, a server's hot path: child `id` of a set of
/// parked children is woken, its output taken, and a fresh child pushed in
/// its place and polled until it has parked its waker.
#[inline]
pub(crate) fn server_event<S: Set<Parked>>(set: &mut S, board: &Rc<Board>, id: usize) {
    board.release(id);
    drain(set, 1);
    board.rearm(id);
    set.push(Parked::new(id, board));
    let mut cx = Context::from_waker(noop_waker_ref());
    while !board.is_parked(id) {
        if let Poll::Ready(out) = set.poll_set(&mut cx) {
            black_box(out);
        }
    }
}

/// Pending until the board releases its id; keeps its latest waker there.
#[derive(Debug)]
pub(crate) struct Parked {
    id: usize,
    board: Rc<Board>,
}

impl Parked {
    /// Child `id` of `board`.
    pub(crate) fn new(id: usize, board: &Rc<Board>) -> Self {
        Self {
            id,
            board: Rc::clone(board),
        }
    }
}

impl Future for Parked {
    type Output = usize;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        if self.board.released[self.id].get() {
            return Poll::Ready(self.id);
        }
        let mut wakers = self.board.wakers.borrow_mut();
        match &mut wakers[self.id] {
            Some(old) if old.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The floor: children in a boxed slice, pinned in place and polled by
/// index, with no set around them.
#[derive(Debug)]
pub(crate) struct Floor<F> {
    slots: Pin<Box<[Option<F>]>>,
}

impl<F: Future> Floor<F> {
    /// Pins `children` in place.
    pub(crate) fn new(children: impl IntoIterator<Item = F>) -> Self {
        let slots: Box<[Option<F>]> = children.into_iter().map(Some).collect();
        Self {
            slots: Box::into_pin(slots),
        }
    }

    /// Number of slots, finished or not.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn slot(&mut self, index: usize) -> Pin<&mut Option<F>> {
        // SAFETY: the slots are structurally pinned. The boxed slice never
        // moves or reallocates while `self` lives, a slot's child is never
        // moved out (it is only replaced through `Pin::set`, which drops it
        // in place), and the slice drops its children in place.
        unsafe { self.slots.as_mut().map_unchecked_mut(|s| &mut s[index]) }
    }

    /// Polls the child in slot `index`; a finished child leaves the slot
    /// empty. `Ready(None)` for an empty slot.
    #[inline]
    pub(crate) fn poll_slot(
        &mut self,
        index: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Option<F::Output>> {
        let mut slot = self.slot(index);
        let Some(child) = slot.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let out = std::task::ready!(child.poll(cx));
        slot.set(None);
        Poll::Ready(Some(out))
    }

    /// Puts a new child in slot `index`, dropping any old one in place.
    #[inline]
    pub(crate) fn replace(&mut self, index: usize, child: F) {
        self.slot(index).set(Some(child));
    }

    /// Polls every unfinished slot in index order with the noop waker, in
    /// passes, until `count` children have finished.
    #[inline]
    pub(crate) fn drain(&mut self, count: usize) {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut got = 0;
        let mut idle = 0;
        while got < count {
            let before = got;
            for index in 0..self.len() {
                if let Poll::Ready(Some(out)) = self.poll_slot(index, &mut cx) {
                    black_box(out);
                    got += 1;
                }
            }
            idle = if got == before { idle + 1 } else { 0 };
            assert!(
                idle < STALL_LIMIT,
                "floor stalled after {got} of {count} items"
            );
        }
    }
}

/// A deterministic permutation of `0..n` (xorshift Fisher-Yates), so wakes
/// land all over a set instead of in push order.
pub(crate) fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed | 1;
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

// -------------------------------------------------------------- stream sets

/// A set of streams, as the `streams_*` benchmarks drive it: yields the
/// items of all its streams and drops a stream that ended.
pub(crate) trait StreamSet<S: Stream>: Sized {
    /// An empty set.
    fn new() -> Self;
    /// Adds a stream; it is polled no earlier than the next `poll_set`.
    fn push(&mut self, stream: S);
    /// Streams not yet ended.
    fn len(&self) -> usize;
    /// `Stream::poll_next` of the set.
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>>;
}

/// One implementation of a set of streams: a name and its set type.
pub(crate) trait StreamPeer {
    /// Bench id and table column; "select_all" is the baseline.
    const NAME: &'static str;
    /// The set; every stream the benchmarks push is `Unpin` (`SelectAll`
    /// and `StreamFuture` need it).
    type Set<S: Stream + Unpin>: StreamSet<S>;
}

impl<S: Stream> StreamSet<S> for engine::StreamsUnordered<S> {
    #[inline]
    fn new() -> Self {
        Self::new()
    }
    #[inline]
    fn push(&mut self, stream: S) {
        Self::push(self, stream);
    }
    #[inline]
    fn len(&self) -> usize {
        Self::len(self)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.poll_next_unpin(cx)
    }
}

impl<S: Stream + Unpin> StreamSet<S> for futures_util::stream::SelectAll<S> {
    #[inline]
    fn new() -> Self {
        Self::new()
    }
    #[inline]
    fn push(&mut self, stream: S) {
        Self::push(self, stream);
    }
    #[inline]
    fn len(&self) -> usize {
        Self::len(self)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.poll_next_unpin(cx)
    }
}

impl<S: Stream> StreamSet<S> for unicycle::StreamsUnordered<S> {
    #[inline]
    fn new() -> Self {
        Self::new()
    }
    #[inline]
    fn push(&mut self, stream: S) {
        Self::push(self, stream);
    }
    #[inline]
    fn len(&self) -> usize {
        Self::len(self)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.poll_next_unpin(cx)
    }
}

impl<S: Stream + Unpin> StreamSet<S> for futures_concurrency::stream::StreamGroup<S> {
    #[inline]
    fn new() -> Self {
        Self::new()
    }
    #[inline]
    fn push(&mut self, stream: S) {
        self.insert(stream);
    }
    #[inline]
    fn len(&self) -> usize {
        Self::len(self)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.poll_next_unpin(cx)
    }
}

/// The pattern written by hand before `SelectAll`: a futures-util
/// `FuturesUnordered` of `StreamFuture`s (`stream.into_future()`), each
/// stream pushed back after it yields an item and dropped when it ends.
#[derive(Debug)]
pub(crate) struct StreamFutures<S>(futures_util::stream::FuturesUnordered<StreamFuture<S>>);

impl<S: Stream + Unpin> StreamSet<S> for StreamFutures<S> {
    #[inline]
    fn new() -> Self {
        Self(futures_util::stream::FuturesUnordered::new())
    }
    #[inline]
    fn push(&mut self, stream: S) {
        self.0.push(stream.into_future());
    }
    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        loop {
            match std::task::ready!(self.0.poll_next_unpin(cx)) {
                Some((Some(item), stream)) => {
                    self.0.push(stream.into_future());
                    return Poll::Ready(Some(item));
                }
                Some((None, _ended)) => {}
                None => return Poll::Ready(None),
            }
        }
    }
}

/// velodrome's `StreamsUnordered`.
#[derive(Debug)]
pub(crate) enum VelodromeStreams {}
impl StreamPeer for VelodromeStreams {
    const NAME: &'static str = "velodrome";
    type Set<S: Stream + Unpin> = engine::StreamsUnordered<S>;
}

/// futures-util 0.3's `SelectAll` (`futures::stream::select_all`), the
/// baseline of the `streams_*` workloads.
#[derive(Debug)]
pub(crate) enum SelectAll {}
impl StreamPeer for SelectAll {
    const NAME: &'static str = "select_all";
    type Set<S: Stream + Unpin> = futures_util::stream::SelectAll<S>;
}

/// futures-util 0.3's `FuturesUnordered<StreamFuture<S>>`, by hand.
#[derive(Debug)]
pub(crate) enum FuturesUtilStreamFutures {}
impl StreamPeer for FuturesUtilStreamFutures {
    const NAME: &'static str = "futures-util-streamfuture";
    type Set<S: Stream + Unpin> = StreamFutures<S>;
}

/// unicycle 0.10's `StreamsUnordered`.
#[derive(Debug)]
pub(crate) enum UnicycleStreams {}
impl StreamPeer for UnicycleStreams {
    const NAME: &'static str = "unicycle";
    type Set<S: Stream + Unpin> = unicycle::StreamsUnordered<S>;
}

/// futures-concurrency 7's `StreamGroup`.
#[derive(Debug)]
pub(crate) enum StreamGroup {}
impl StreamPeer for StreamGroup {
    const NAME: &'static str = "futures-concurrency";
    type Set<S: Stream + Unpin> = futures_concurrency::stream::StreamGroup<S>;
}

/// Polls `set` with the noop waker until it ends, calling `wake` after each
/// `Pending`; panics unless it yielded exactly `count` items.
///
/// `wake` wakes whatever the streams parked (nothing, for streams that
/// are always ready).
#[inline]
pub(crate) fn drain_streams<S: Stream, T: StreamSet<S>>(
    set: &mut T,
    count: usize,
    mut wake: impl FnMut(),
) {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut got = 0;
    let mut idle = 0;
    loop {
        match set.poll_set(&mut cx) {
            Poll::Ready(Some(item)) => {
                black_box(item);
                got += 1;
                idle = 0;
            }
            Poll::Ready(None) => break,
            Poll::Pending => {
                wake();
                idle += 1;
                assert!(
                    idle < STALL_LIMIT,
                    "stream set stalled after {got} of {count} items"
                );
            }
        }
    }
    assert_eq!(got, count, "stream set ended early");
}

/// Wakes, in park order, every waker parked in `wakers`.
#[inline]
pub(crate) fn wake_all(wakers: &RefCell<Vec<Waker>>) {
    for waker in wakers.take() {
        waker.wake();
    }
}

/// Yields `items` items, each after one `Pending`: its first poll for an
/// item parks a clone of its waker in the shared list (which the benchmark
/// wakes), the next one yields it. Ends at once after the last item.
#[derive(Debug)]
pub(crate) struct PendingStream {
    left: u32,
    parked: bool,
    wakers: Rc<RefCell<Vec<Waker>>>,
}

impl PendingStream {
    /// A stream of `items` items that parks its waker in `wakers`.
    pub(crate) fn new(items: u32, wakers: &Rc<RefCell<Vec<Waker>>>) -> Self {
        Self {
            left: items,
            parked: false,
            wakers: Rc::clone(wakers),
        }
    }
}

impl Stream for PendingStream {
    type Item = u32;
    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if !self.parked {
            self.parked = true;
            self.wakers.borrow_mut().push(cx.waker().clone());
            return Poll::Pending;
        }
        self.parked = false;
        self.left -= 1;
        Poll::Ready(Some(self.left))
    }
}

/// The floor for streams: a `Vec` of (`Unpin`, so pinned in place) streams
/// polled round-robin by index with the noop waker, one poll per stream per
/// pass, an ended stream removed; no set around them.
#[derive(Debug)]
pub(crate) struct StreamFloor<S> {
    streams: Vec<S>,
}

impl<S: Stream + Unpin> StreamFloor<S> {
    /// The streams, in polling order.
    pub(crate) fn new(streams: impl IntoIterator<Item = S>) -> Self {
        Self {
            streams: streams.into_iter().collect(),
        }
    }

    /// Passes over the streams until all have ended, calling `wake` after
    /// each pass; panics unless they yielded exactly `count` items.
    #[inline]
    pub(crate) fn drain(&mut self, count: usize, mut wake: impl FnMut()) {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut got = 0;
        let mut idle = 0;
        while !self.streams.is_empty() {
            let before = got;
            self.streams
                .retain_mut(|stream| match stream.poll_next_unpin(&mut cx) {
                    Poll::Ready(Some(item)) => {
                        black_box(item);
                        got += 1;
                        true
                    }
                    Poll::Ready(None) => false,
                    Poll::Pending => true,
                });
            wake();
            idle = if got == before { idle + 1 } else { 0 };
            assert!(
                idle < STALL_LIMIT,
                "stream floor stalled after {got} of {count} items"
            );
        }
        assert_eq!(got, count, "stream floor ended early");
    }
}

/// Whether `VELODROME_BENCH_QUICK=1` is set: a short run (CI, quick tables).
pub(crate) fn quick() -> bool {
    std::env::var_os("VELODROME_BENCH_QUICK").is_some_and(|v| v == "1")
}

/// Criterion as every bench file configures it: the default, or 10 samples
/// of 1 s after a 0.3 s warm-up in a quick run.
pub(crate) fn config() -> criterion::Criterion {
    let c = criterion::Criterion::default();
    if quick() {
        c.sample_size(10)
            .measurement_time(Duration::from_secs(1))
            .warm_up_time(Duration::from_millis(300))
    } else {
        c
    }
}
