//! Memory and allocation counts for the family (`FuturesOrdered`, the
//! buffered adapters, `join_all`, `try_join_all`, `select_all`) and its
//! peers, measured with a counting global allocator, as
//! `examples/memory.rs` does for the sets.
//!
//! Children are zero-sized (so bytes per child are the container's alone):
//! a [`Gated`] child parks a clone of its waker on its first poll and
//! finishes once a global gate opens (at once if it is open). For each
//! type and implementation:
//!
//! - `FuturesOrdered` (100,000 children): bytes/child after the pushes and
//!   after every child was polled once; allocations per push (first fill,
//!   and again into the set a drain left behind); allocations per output
//!   when all the children are released at once; and allocations per
//!   output when they are released in reverse push order, so that every
//!   output but the last waits for the first (first round, then again in
//!   the same set: the steady state). velodrome's `FuturesUnordered` is
//!   measured the same way for reference (the sets' figures).
//! - `buffer_unordered(256)` / `buffered(256)` over 65,536 children:
//!   allocations to build the adapter and fill its 256 slots, bytes per
//!   child in flight (live bytes with 256 children parked, divided by 256),
//!   and allocations per item of the drain that follows (the gate open).
//! - `join_all` / `try_join_all` over 100 and 100,000 children (from an
//!   iterator that allocates nothing): allocations per join (to build it,
//!   park every child, and complete), and bytes per child while parked.
//! - `select_all` over 1,000 streams of 10 ready items: allocations to
//!   build it, bytes per stream (each stream is 8 bytes of its own), and
//!   allocations per item of the drain.
//!
//! Run: `cargo run --release --example family_memory`.

#[path = "../benches/common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use common::Board;
use futures_buffered::BufferedStreamExt as _;
use futures_util::{Stream, StreamExt as _};
use velodrome::FairStreamExt as _;

/// Children of a `FuturesOrdered` measurement.
const ORDERED_N: usize = 100_000;
/// Children a buffered adapter's source yields, and its limit.
const WINDOW_N: usize = 65_536;
const LIMIT: usize = 256;
/// Join sizes.
const JOIN_SIZES: [usize; 2] = [100, 100_000];
/// Streams and ready items per stream of the `select_all` measurement.
const STREAMS: usize = 1_000;
const ITEMS: u32 = 10;

#[path = "heap/mod.rs"]
mod heap;

use heap::{allocs, live};

/// Opens the gate: every [`Gated`] child finishes on its next poll.
static OPEN: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Wakers parked by [`Gated`] children on their first poll.
    static PARKED: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// The zero-sized child.
#[derive(Debug)]
struct Gated;

impl Future for Gated {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if OPEN.load(Relaxed) {
            return Poll::Ready(());
        }
        PARKED.with(|parked| parked.borrow_mut().push(cx.waker().clone()));
        Poll::Pending
    }
}

/// The zero-sized child of the `try_join_all` measurements.
#[derive(Debug)]
struct TryGated;

impl Future for TryGated {
    type Output = Result<(), ()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Pin::new(&mut Gated).poll(cx).map(Ok)
    }
}

/// Closes the gate and makes room for `n` parked wakers (outside any
/// measured phase).
fn close_gate(n: usize) {
    OPEN.store(false, Relaxed);
    PARKED.with(|parked| {
        let mut parked = parked.borrow_mut();
        parked.clear();
        parked.reserve(n);
    });
}

/// Opens the gate and wakes every parked waker (by value: no clone).
fn open_gate() {
    OPEN.store(true, Relaxed);
    let parked = PARKED.with(|parked| std::mem::take(&mut *parked.borrow_mut()));
    for waker in parked {
        waker.wake();
    }
}

fn parked() -> usize {
    PARKED.with(|parked| parked.borrow().len())
}

/// The parent's waker: records that the subject asked to be polled again.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Relaxed);
    }
}

/// The parent waker and its flag; made once, before any measurement.
struct Parent {
    flag: Arc<Flag>,
    waker: Waker,
}

impl Parent {
    fn new() -> Self {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&flag));
        Self { flag, waker }
    }

    /// Polls `stream` until it ends or returns `Pending` without asking to
    /// be polled again; returns the items it yielded and whether it ended.
    fn poll_stream<S: Stream>(&self, mut stream: Pin<&mut S>) -> (usize, bool) {
        let mut cx = Context::from_waker(&self.waker);
        let mut items = 0;
        loop {
            self.flag.0.store(false, Relaxed);
            match stream.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(item)) => {
                    drop(item);
                    items += 1;
                }
                Poll::Ready(None) => return (items, true),
                Poll::Pending if self.flag.0.load(Relaxed) => {}
                Poll::Pending => return (items, false),
            }
        }
    }

    /// Polls `fut` until it completes or returns `Pending` without asking
    /// to be polled again.
    fn poll_future<F: Future>(&self, mut fut: Pin<&mut F>) -> Option<F::Output> {
        let mut cx = Context::from_waker(&self.waker);
        loop {
            self.flag.0.store(false, Relaxed);
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(out) => return Some(out),
                Poll::Pending if self.flag.0.load(Relaxed) => {}
                Poll::Pending => return None,
            }
        }
    }

    /// Polls `stream` (whose children are all runnable) to its end; returns
    /// the items it yielded.
    fn drain_stream<S: Stream>(&self, mut stream: Pin<&mut S>) -> usize {
        let mut total = 0;
        loop {
            let (items, ended) = self.poll_stream(stream.as_mut());
            total += items;
            if ended {
                return total;
            }
            assert!(items > 0, "stalled after {total} items");
        }
    }

    /// Polls `stream` until it has yielded `count` items.
    fn drain_count<S: Stream>(&self, mut stream: Pin<&mut S>, count: usize) {
        let mut total = 0;
        while total < count {
            let (items, _) = self.poll_stream(stream.as_mut());
            assert!(items > 0, "stalled after {total} of {count} items");
            total += items;
        }
    }
}

fn per(count: u64, n: usize) -> f64 {
    count as f64 / n as f64
}

fn bytes_per(live_now: isize, base: isize, n: usize) -> f64 {
    (live_now - base) as f64 / n as f64
}

// ------------------------------------------------------------ FuturesOrdered

/// A queue that yields its children's outputs, as the measurement drives it.
trait Queue<F: Future>: Stream<Item = F::Output> + Unpin {
    const NAME: &'static str;
    fn new() -> Self;
    fn push(&mut self, fut: F);
}

macro_rules! queue {
    ($ty:ident, $name:expr, $push:ident) => {
        impl<F: Future> Queue<F> for $ty<F> {
            const NAME: &'static str = $name;
            fn new() -> Self {
                $ty::new()
            }
            fn push(&mut self, fut: F) {
                $ty::$push(self, fut);
            }
        }
    };
}

use futures_buffered::FuturesOrdered as BufferedOrdered;
use futures_util::stream::FuturesOrdered as UtilOrdered;
use velodrome::FuturesOrdered as VelodromeOrdered;
use velodrome::FuturesUnordered as VelodromeUnordered;

queue!(VelodromeOrdered, "velodrome", push_back);
queue!(UtilOrdered, "futures-util", push_back);
queue!(BufferedOrdered, "futures-buffered", push_back);
queue!(
    VelodromeUnordered,
    "velodrome FuturesUnordered (the sets)",
    push
);

struct OrderedRow {
    name: &'static str,
    bytes_pushed: f64,
    bytes_polled: f64,
    allocs_push_first: f64,
    allocs_push_reused: f64,
    allocs_output: f64,
    allocs_output_reversed_first: f64,
    allocs_output_reversed_steady: f64,
}

fn measure_ordered<Q: Queue<Gated>, R: Queue<common::Parked>>(parent: &Parent) -> OrderedRow {
    let n = ORDERED_N;
    close_gate(n);

    let base = live();
    let a = allocs();
    let mut queue = Q::new();
    for _ in 0..n {
        queue.push(Gated);
    }
    let allocs_push_first = per(allocs() - a, n);
    let bytes_pushed = bytes_per(live(), base, n);

    assert_eq!(parent.poll_stream(Pin::new(&mut queue)), (0, false));
    assert_eq!(parked(), n, "{}", Q::NAME);
    let bytes_polled = bytes_per(live(), base, n);

    let a = allocs();
    open_gate();
    parent.drain_count(Pin::new(&mut queue), n);
    let allocs_output = per(allocs() - a, n);

    close_gate(n);
    let a = allocs();
    for _ in 0..n {
        queue.push(Gated);
    }
    let allocs_push_reused = per(allocs() - a, n);
    drop(queue);

    // Released in reverse push order: every output but the first pushed
    // finishes before it and waits.
    let mut queue = R::new();
    let reversed_round = |queue: &mut R| {
        let board = Board::new(n);
        for id in 0..n {
            queue.push(common::Parked::new(id, &board));
        }
        assert_eq!(parent.poll_stream(Pin::new(&mut *queue)), (0, false));
        let a = allocs();
        for id in (0..n).rev() {
            board.release(id);
        }
        parent.drain_count(Pin::new(&mut *queue), n);
        per(allocs() - a, n)
    };
    let allocs_output_reversed_first = reversed_round(&mut queue);
    let allocs_output_reversed_steady = reversed_round(&mut queue);

    OrderedRow {
        name: Q::NAME,
        bytes_pushed,
        bytes_polled,
        allocs_push_first,
        allocs_push_reused,
        allocs_output,
        allocs_output_reversed_first,
        allocs_output_reversed_steady,
    }
}

fn ordered_table(parent: &Parent) {
    let rows = [
        measure_ordered::<VelodromeOrdered<_>, VelodromeOrdered<_>>(parent),
        measure_ordered::<UtilOrdered<_>, UtilOrdered<_>>(parent),
        measure_ordered::<BufferedOrdered<_>, BufferedOrdered<_>>(parent),
        measure_ordered::<VelodromeUnordered<_>, VelodromeUnordered<_>>(parent),
    ];
    println!("FuturesOrdered: {ORDERED_N} zero-sized children");
    println!();
    println!(
        "| implementation | bytes/child pushed | bytes/child polled | allocs/push first fill \
         | allocs/push reused | allocs/output | allocs/output reversed, first \
         | allocs/output reversed, steady |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            r.name,
            r.bytes_pushed,
            r.bytes_polled,
            r.allocs_push_first,
            r.allocs_push_reused,
            r.allocs_output,
            r.allocs_output_reversed_first,
            r.allocs_output_reversed_steady,
        );
    }
    println!();
}

// ----------------------------------------------------------------- buffered

/// The source of a buffered measurement (allocates nothing).
fn gated_source() -> impl Stream<Item = Gated> + Unpin {
    futures::stream::iter(std::iter::repeat_with(|| Gated).take(WINDOW_N))
}

struct WindowRow {
    name: String,
    allocs_start: u64,
    bytes_in_flight: f64,
    allocs_drain: u64,
}

/// Measures the adapter `make` builds over [`gated_source`].
fn measure_window<S: Stream>(parent: &Parent, name: String, make: impl FnOnce() -> S) -> WindowRow {
    close_gate(LIMIT);
    let base = live();
    let a = allocs();
    let mut stream = pin!(make());
    assert_eq!(parent.poll_stream(stream.as_mut()), (0, false));
    let allocs_start = allocs() - a;
    assert_eq!(parked(), LIMIT, "{name}: children in flight");
    let bytes_in_flight = bytes_per(live(), base, LIMIT);

    let a = allocs();
    open_gate();
    assert_eq!(parent.drain_stream(stream.as_mut()), WINDOW_N, "{name}");
    let allocs_drain = allocs() - a;
    WindowRow {
        name,
        allocs_start,
        bytes_in_flight,
        allocs_drain,
    }
}

/// Bytes per child of a velodrome `FuturesUnordered` holding `n` parked
/// zero-sized children: the sets' figure, for comparison.
fn set_bytes(n: usize) -> f64 {
    let parent = Parent::new();
    close_gate(n);
    let base = live();
    let mut set = velodrome::FuturesUnordered::new();
    for _ in 0..n {
        set.push(Gated);
    }
    assert_eq!(parent.poll_stream(Pin::new(&mut set)), (0, false));
    assert_eq!(parked(), n);
    bytes_per(live(), base, n)
}

fn window_table(parent: &Parent) {
    let rows = [
        measure_window(parent, "velodrome fair_buffer_unordered".into(), || {
            gated_source().fair_buffer_unordered(LIMIT)
        }),
        measure_window(parent, "futures-util buffer_unordered".into(), || {
            gated_source().buffer_unordered(LIMIT)
        }),
        measure_window(parent, "futures-buffered buffered_unordered".into(), || {
            gated_source().buffered_unordered(LIMIT)
        }),
        measure_window(parent, "velodrome fair_buffered".into(), || {
            gated_source().fair_buffered(LIMIT)
        }),
        measure_window(parent, "futures-util buffered".into(), || {
            gated_source().buffered(LIMIT)
        }),
        measure_window(parent, "futures-buffered buffered_ordered".into(), || {
            gated_source().buffered_ordered(LIMIT)
        }),
    ];
    println!("Buffered adapters: limit {LIMIT}, {WINDOW_N} zero-sized children");
    println!();
    println!(
        "| adapter | allocs to build and fill | bytes/child in flight \
         | allocs in the drain | allocs/item |"
    );
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {} | {:.4} |",
            r.name,
            r.allocs_start,
            r.bytes_in_flight,
            r.allocs_drain,
            per(r.allocs_drain, WINDOW_N)
        );
    }
    println!(
        "| (reference: velodrome FuturesUnordered, {LIMIT} children) | | {:.1} | | |",
        set_bytes(LIMIT)
    );
    println!();
}

// -------------------------------------------------------------------- joins

struct JoinRow {
    name: String,
    n: usize,
    allocs_join: u64,
    bytes_child: f64,
}

/// Measures the join `make` builds over `n` children.
fn measure_join<F: Future>(
    parent: &Parent,
    name: &str,
    n: usize,
    make: impl FnOnce() -> F,
) -> JoinRow {
    close_gate(n);
    let base = live();
    let a = allocs();
    let mut join = pin!(make());
    assert!(parent.poll_future(join.as_mut()).is_none());
    assert_eq!(parked(), n, "{name}: parked children");
    let bytes_child = bytes_per(live(), base, n);
    open_gate();
    let out = parent.poll_future(join.as_mut()).expect("join completes");
    drop(out);
    JoinRow {
        name: name.into(),
        n,
        allocs_join: allocs() - a,
        bytes_child,
    }
}

fn gated(n: usize) -> impl Iterator<Item = Gated> {
    std::iter::repeat_with(|| Gated).take(n)
}

fn try_gated(n: usize) -> impl Iterator<Item = TryGated> {
    std::iter::repeat_with(|| TryGated).take(n)
}

fn join_table(parent: &Parent) {
    let mut rows = Vec::new();
    for n in JOIN_SIZES {
        rows.push(measure_join(parent, "velodrome join_all", n, || {
            velodrome::join_all(gated(n))
        }));
        rows.push(measure_join(parent, "futures-util join_all", n, || {
            futures_util::future::join_all(gated(n))
        }));
        rows.push(measure_join(parent, "futures-buffered join_all", n, || {
            futures_buffered::join_all(gated(n))
        }));
        rows.push(measure_join(parent, "futures-concurrency Join", n, || {
            // A `Vec` of zero-sized children allocates nothing.
            futures_concurrency::future::Join::join(gated(n).collect::<Vec<_>>())
        }));
        rows.push(measure_join(parent, "velodrome try_join_all", n, || {
            velodrome::try_join_all(try_gated(n))
        }));
        rows.push(measure_join(parent, "futures-util try_join_all", n, || {
            futures_util::future::try_join_all(try_gated(n))
        }));
        rows.push(measure_join(
            parent,
            "futures-buffered try_join_all",
            n,
            || futures_buffered::try_join_all(try_gated(n)),
        ));
        rows.push(measure_join(
            parent,
            "futures-concurrency TryJoin",
            n,
            || futures_concurrency::future::TryJoin::try_join(try_gated(n).collect::<Vec<_>>()),
        ));
    }
    println!("Joins: zero-sized children, all parked once, then released");
    println!();
    println!("| join | children | allocs/join | bytes/child parked |");
    println!("|---|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.1} |",
            r.name, r.n, r.allocs_join, r.bytes_child
        );
    }
    for n in JOIN_SIZES {
        println!(
            "| (reference: velodrome FuturesUnordered) | {n} | | {:.1} |",
            set_bytes(n)
        );
    }
    println!();
}

// --------------------------------------------------------------- select_all

type Items = futures::stream::Iter<std::ops::Range<u32>>;

fn streams() -> impl Iterator<Item = Items> {
    (0..STREAMS).map(|_| futures::stream::iter(0..ITEMS))
}

struct SelectRow {
    name: &'static str,
    allocs_build: u64,
    bytes_stream: f64,
    allocs_drain: u64,
}

fn measure_select<S: Stream>(
    parent: &Parent,
    name: &'static str,
    make: impl FnOnce() -> S,
) -> SelectRow {
    let base = live();
    let a = allocs();
    let mut set = pin!(make());
    let allocs_build = allocs() - a;
    let bytes_stream = bytes_per(live(), base, STREAMS);
    let a = allocs();
    let items = parent.drain_stream(set.as_mut());
    assert_eq!(items, STREAMS * ITEMS as usize, "{name}");
    SelectRow {
        name,
        allocs_build,
        bytes_stream,
        allocs_drain: allocs() - a,
    }
}

fn select_table(parent: &Parent) {
    let rows = [
        measure_select(parent, "velodrome select_all", || {
            velodrome::select_all(streams())
        }),
        measure_select(parent, "futures-util select_all", || {
            futures_util::stream::select_all(streams())
        }),
        measure_select(parent, "futures-buffered MergeUnbounded", || {
            streams().collect::<futures_buffered::MergeUnbounded<_>>()
        }),
        measure_select(parent, "futures-concurrency Merge (Vec)", || {
            futures_concurrency::stream::Merge::merge(streams().collect::<Vec<_>>())
        }),
        measure_select(parent, "(reference: velodrome StreamsUnordered)", || {
            streams().collect::<velodrome::StreamsUnordered<_>>()
        }),
    ];
    println!(
        "select_all: {STREAMS} streams of {ITEMS} ready items ({} bytes each)",
        size_of::<Items>()
    );
    println!();
    println!(
        "| implementation | allocs to build | bytes/stream | allocs in the drain | allocs/item |"
    );
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {} | {:.4} |",
            r.name,
            r.allocs_build,
            r.bytes_stream,
            r.allocs_drain,
            per(r.allocs_drain, STREAMS * ITEMS as usize)
        );
    }
    println!();
}

fn main() {
    assert_eq!(size_of::<Gated>(), 0);
    assert_eq!(size_of::<TryGated>(), 0);
    let parent = Parent::new();
    ordered_table(&parent);
    window_table(&parent);
    join_table(&parent);
    select_table(&parent);
}
