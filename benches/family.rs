//! Side-by-side timings of the family built on the sets: velodrome's
//! `FuturesOrdered`, `fair_buffer_unordered` / `fair_buffered`, `join_all`,
//! `try_join_all` and `select_all` against futures-util's (the baseline),
//! futures-buffered's, futures-concurrency's where it has the API, and a
//! floor (the same children polled with no set around them).
//!
//! One criterion group per workload, all named `family_*` (so that
//! `benches/report.py` puts them in their own table); inside a group one
//! bench per implementation and size, `BenchmarkId::new(implementation,
//! size)`, with throughput in children (in items for `family_select_all`).
//! Everything is driven by hand with the noop waker: every child here wakes
//! itself or is ready, so no runtime is needed.
//!
//! - `family_ordered`: push `n` ready children into a `FuturesOrdered`
//!   (`push_back`), drain it.
//! - `family_buffer_unordered_*` / `family_buffered_*`: a source of 65,536
//!   children through `buffer_unordered(256)` / `buffered(256)`, drained;
//!   children are `ready` (ready at once), `pending_once` (wake themselves
//!   and return `Pending` on their first poll) or `yield_10` (the same, ten
//!   times).
//! - `family_join_all` / `family_try_join_all`: `n` children that are
//!   pending once (as above) and then return their index (`Ok(index)`),
//!   joined and awaited.
//! - `family_select_all`: 1,000 streams of 10 ready items, merged and
//!   drained.
//!
//! `VELODROME_BENCH_QUICK=1` shrinks every measurement (as in
//! `benches/sets.rs`); allocation counts for the same types are in
//! `examples/family_memory.rs`.

mod common;

use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use futures::task::noop_waker_ref;
use futures_buffered::BufferedStreamExt as _;
use futures_util::{Stream, StreamExt as _};
use velodrome::FairStreamExt as _;

use common::{Floor, StreamFloor, Yield};

/// Sizes of the `FuturesOrdered` push-then-drain runs.
const ORDERED_SIZES: [usize; 2] = [1_000, 100_000];
/// Children the source of a buffered run yields.
const WINDOW_CHILDREN: usize = 65_536;
/// The limit of every buffered run.
const LIMIT: usize = 256;
/// Self-wakes of a `yield_10` child.
const YIELDS: u32 = 10;
/// Sizes of the join runs.
const JOIN_SIZES: [usize; 3] = [100, 10_000, 100_000];
/// Streams, and ready items per stream, in `family_select_all`.
const SELECT_STREAMS: usize = 1_000;
const SELECT_ITEMS: u32 = 10;

/// Id of the floor in every group that has one.
const FLOOR: &str = "floor";
const VELODROME: &str = "velodrome";
const FUTURES_UTIL: &str = "futures-util";
const FUTURES_BUFFERED: &str = "futures-buffered";
const FUTURES_CONCURRENCY: &str = "futures-concurrency";

/// Consecutive `Pending` results after which a driver calls its subject
/// stalled (a lost wake-up would otherwise hang the benchmark).
const STALL_LIMIT: u32 = 1_000_000;

/// Sets the group up for `n` children: large runs sample flat (same
/// iteration count per sample), as one iteration takes milliseconds.
fn tune(group: &mut BenchmarkGroup<'_, WallTime>, n: usize, per_iteration: u64) {
    group.throughput(Throughput::Elements(per_iteration));
    if n >= 10_000 {
        group.sampling_mode(SamplingMode::Flat);
        if !common::quick() {
            group.sample_size(20);
        }
    } else {
        group.sampling_mode(SamplingMode::Auto);
    }
}

// ------------------------------------------------------------------ drivers

/// Polls `stream` with the noop waker until it ends; panics unless it
/// yielded exactly `count` items.
#[inline]
fn drain_stream<S: Stream>(mut stream: Pin<&mut S>, count: usize) {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut got = 0;
    let mut idle = 0;
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => {
                black_box(item);
                got += 1;
                idle = 0;
            }
            Poll::Ready(None) => break,
            Poll::Pending => {
                idle += 1;
                assert!(idle < STALL_LIMIT, "stalled after {got} of {count} items");
            }
        }
    }
    assert_eq!(got, count, "stream ended early");
}

/// Polls `fut` with the noop waker until it completes.
#[inline]
fn complete<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut idle = 0;
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        idle += 1;
        assert!(idle < STALL_LIMIT, "future stalled");
    }
}

/// Wakes itself and returns `Pending` on its first poll, then returns its
/// value.
#[derive(Debug)]
struct PendingOnceWith<T> {
    value: Option<T>,
    polled: bool,
}

impl<T> PendingOnceWith<T> {
    fn new(value: T) -> Self {
        Self {
            value: Some(value),
            polled: false,
        }
    }
}

impl<T: Unpin> Future for PendingOnceWith<T> {
    type Output = T;
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if !self.polled {
            self.polled = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.value.take().expect("polled after completion"))
    }
}

// ----------------------------------------------------------- family_ordered

/// Pushes `n` ready children into `set` with `push`, then drains it; returns
/// the emptied set.
#[inline]
fn ordered_round<S: Stream + Unpin>(
    mut set: S,
    n: usize,
    push: impl Fn(&mut S, Ready<usize>),
) -> S {
    for i in 0..n {
        push(&mut set, ready(i));
    }
    drain_stream(Pin::new(&mut set), n);
    set
}

fn bench_ordered(c: &mut Criterion) {
    let mut group = c.benchmark_group("family_ordered");
    for n in ORDERED_SIZES {
        tune(&mut group, n, n as u64);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            b.iter(|| {
                let mut floor = Floor::new((0..n).map(ready));
                floor.drain(n);
                floor
            });
        });
        group.bench_with_input(BenchmarkId::new(VELODROME, n), &n, |b, &n| {
            b.iter(|| ordered_round(velodrome::FuturesOrdered::new(), n, |s, f| s.push_back(f)));
        });
        group.bench_with_input(BenchmarkId::new(FUTURES_UTIL, n), &n, |b, &n| {
            b.iter(|| {
                ordered_round(futures_util::stream::FuturesOrdered::new(), n, |s, f| {
                    s.push_back(f)
                })
            });
        });
        group.bench_with_input(BenchmarkId::new(FUTURES_BUFFERED, n), &n, |b, &n| {
            b.iter(|| {
                ordered_round(futures_buffered::FuturesOrdered::new(), n, |s, f| {
                    s.push_back(f)
                })
            });
        });
    }
    group.finish();
}

// ------------------------------------------ family_buffer_unordered/buffered

/// The source of a buffered run.
type Source<F> = futures::stream::Iter<std::iter::Map<std::ops::Range<usize>, fn(usize) -> F>>;

/// The source of a buffered run: `WINDOW_CHILDREN` children made by `make`.
#[inline]
fn source<F>(make: fn(usize) -> F) -> Source<F> {
    futures::stream::iter((0..WINDOW_CHILDREN).map(make))
}

/// Drains the adapter `stream` (its source yields `WINDOW_CHILDREN`).
#[inline]
fn window_round<S: Stream>(stream: S) {
    drain_stream(pin!(stream), WINDOW_CHILDREN);
}

/// The floor of a buffered run: `LIMIT` slots pinned in place, polled in
/// index order with the noop waker, a finished child replaced at once by
/// the source's next. It keeps no order, so it is the floor of both
/// `buffer_unordered` and `buffered` (whose identical children finish in
/// source order anyway).
#[inline]
fn window_floor<F: Future>(make: fn(usize) -> F) {
    let mut children = (0..WINDOW_CHILDREN).map(make);
    let mut floor = Floor::new(children.by_ref().take(LIMIT));
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut got = 0;
    while got < WINDOW_CHILDREN {
        for index in 0..floor.len() {
            if let Poll::Ready(Some(out)) = floor.poll_slot(index, &mut cx) {
                black_box(out);
                got += 1;
                if let Some(child) = children.next() {
                    floor.replace(index, child);
                }
            }
        }
    }
}

/// One group: `WINDOW_CHILDREN` children made by `make` through each
/// implementation's `buffer_unordered(LIMIT)` (or `buffered(LIMIT)` when
/// `ordered`).
fn bench_window<F: Future + Unpin>(
    c: &mut Criterion,
    name: &str,
    ordered: bool,
    make: fn(usize) -> F,
) {
    let mut group = c.benchmark_group(name);
    let n = WINDOW_CHILDREN;
    tune(&mut group, n, n as u64);
    group.bench_function(BenchmarkId::new(FLOOR, n), |b| {
        b.iter(|| window_floor(make));
    });
    group.bench_function(BenchmarkId::new(VELODROME, n), |b| {
        if ordered {
            b.iter(|| window_round(source(make).fair_buffered(LIMIT)));
        } else {
            b.iter(|| window_round(source(make).fair_buffer_unordered(LIMIT)));
        }
    });
    group.bench_function(BenchmarkId::new(FUTURES_UTIL, n), |b| {
        if ordered {
            b.iter(|| window_round(source(make).buffered(LIMIT)));
        } else {
            b.iter(|| window_round(source(make).buffer_unordered(LIMIT)));
        }
    });
    group.bench_function(BenchmarkId::new(FUTURES_BUFFERED, n), |b| {
        if ordered {
            b.iter(|| window_round(source(make).buffered_ordered(LIMIT)));
        } else {
            b.iter(|| window_round(source(make).buffered_unordered(LIMIT)));
        }
    });
    group.finish();
}

fn ready_child(i: usize) -> Ready<usize> {
    ready(i)
}

fn pending_once_child(_: usize) -> Yield {
    Yield(1)
}

fn yield_10_child(_: usize) -> Yield {
    Yield(YIELDS)
}

fn bench_buffer_unordered(c: &mut Criterion) {
    bench_window(c, "family_buffer_unordered_ready", false, ready_child);
    bench_window(
        c,
        "family_buffer_unordered_pending_once",
        false,
        pending_once_child,
    );
    bench_window(c, "family_buffer_unordered_yield_10", false, yield_10_child);
}

fn bench_buffered(c: &mut Criterion) {
    bench_window(c, "family_buffered_ready", true, ready_child);
    bench_window(c, "family_buffered_pending_once", true, pending_once_child);
    bench_window(c, "family_buffered_yield_10", true, yield_10_child);
}

// ------------------------------------------------- family_(try_)join_all

/// The floor of a join: the children pinned in a boxed slice, polled in
/// passes until all are done, each output stored at its index; then the
/// outputs collected in order.
#[inline]
fn join_floor<T: Unpin>(children: impl Iterator<Item = PendingOnceWith<T>>) -> Vec<T> {
    let mut floor = Floor::new(children);
    let n = floor.len();
    let mut outputs: Vec<Option<T>> = std::iter::repeat_with(|| None).take(n).collect();
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut got = 0;
    while got < n {
        for (index, output) in outputs.iter_mut().enumerate() {
            if let Poll::Ready(Some(out)) = floor.poll_slot(index, &mut cx) {
                *output = Some(out);
                got += 1;
            }
        }
    }
    outputs
        .into_iter()
        .map(|out| out.expect("every child finished"))
        .collect()
}

fn join_children(n: usize) -> impl Iterator<Item = PendingOnceWith<usize>> {
    (0..n).map(PendingOnceWith::new)
}

fn try_join_children(n: usize) -> impl Iterator<Item = PendingOnceWith<Result<usize, ()>>> {
    (0..n).map(|i| PendingOnceWith::new(Ok(i)))
}

fn bench_join_all(c: &mut Criterion) {
    let mut group = c.benchmark_group("family_join_all");
    for n in JOIN_SIZES {
        tune(&mut group, n, n as u64);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            b.iter(|| join_floor(join_children(n)));
        });
        group.bench_with_input(BenchmarkId::new(VELODROME, n), &n, |b, &n| {
            b.iter(|| complete(velodrome::join_all(join_children(n))));
        });
        group.bench_with_input(BenchmarkId::new(FUTURES_UTIL, n), &n, |b, &n| {
            b.iter(|| complete(futures_util::future::join_all(join_children(n))));
        });
        group.bench_with_input(BenchmarkId::new(FUTURES_BUFFERED, n), &n, |b, &n| {
            b.iter(|| complete(futures_buffered::join_all(join_children(n))));
        });
        group.bench_with_input(BenchmarkId::new(FUTURES_CONCURRENCY, n), &n, |b, &n| {
            b.iter(|| {
                let children: Vec<_> = join_children(n).collect();
                complete(futures_concurrency::future::Join::join(children))
            });
        });
    }
    group.finish();
}

fn bench_try_join_all(c: &mut Criterion) {
    let mut group = c.benchmark_group("family_try_join_all");
    for n in JOIN_SIZES {
        tune(&mut group, n, n as u64);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            b.iter(|| {
                join_floor(try_join_children(n))
                    .into_iter()
                    .collect::<Result<Vec<_>, ()>>()
            });
        });
        group.bench_with_input(BenchmarkId::new(VELODROME, n), &n, |b, &n| {
            b.iter(|| complete(velodrome::try_join_all(try_join_children(n))));
        });
        group.bench_with_input(BenchmarkId::new(FUTURES_UTIL, n), &n, |b, &n| {
            b.iter(|| complete(futures_util::future::try_join_all(try_join_children(n))));
        });
        group.bench_with_input(BenchmarkId::new(FUTURES_BUFFERED, n), &n, |b, &n| {
            b.iter(|| complete(futures_buffered::try_join_all(try_join_children(n))));
        });
        group.bench_with_input(BenchmarkId::new(FUTURES_CONCURRENCY, n), &n, |b, &n| {
            b.iter(|| {
                let children: Vec<_> = try_join_children(n).collect();
                complete(futures_concurrency::future::TryJoin::try_join(children))
            });
        });
    }
    group.finish();
}

// -------------------------------------------------------- family_select_all

/// The streams of `family_select_all`.
fn select_streams() -> impl Iterator<Item = futures::stream::Iter<std::ops::Range<u32>>> {
    (0..SELECT_STREAMS).map(|_| futures::stream::iter(0..SELECT_ITEMS))
}

fn bench_select_all(c: &mut Criterion) {
    let mut group = c.benchmark_group("family_select_all");
    let n = SELECT_STREAMS;
    let items = n * SELECT_ITEMS as usize;
    tune(&mut group, n, items as u64);
    group.bench_function(BenchmarkId::new(FLOOR, n), |b| {
        b.iter(|| {
            let mut floor = StreamFloor::new(select_streams());
            floor.drain(items, || {});
            floor
        });
    });
    group.bench_function(BenchmarkId::new(VELODROME, n), |b| {
        b.iter(|| {
            let mut set = velodrome::select_all(select_streams());
            drain_stream(Pin::new(&mut set), items);
            set
        });
    });
    group.bench_function(BenchmarkId::new(FUTURES_UTIL, n), |b| {
        b.iter(|| {
            let mut set = futures_util::stream::select_all(select_streams());
            drain_stream(Pin::new(&mut set), items);
            set
        });
    });
    group.bench_function(BenchmarkId::new(FUTURES_BUFFERED, n), |b| {
        b.iter(|| {
            let mut set: futures_buffered::MergeUnbounded<_> = select_streams().collect();
            drain_stream(Pin::new(&mut set), items);
            set
        });
    });
    group.bench_function(BenchmarkId::new(FUTURES_CONCURRENCY, n), |b| {
        b.iter(|| {
            let streams: Vec<_> = select_streams().collect();
            let merged = futures_concurrency::stream::Merge::merge(streams);
            drain_stream(pin!(merged), items);
        });
    });
    group.finish();
}

criterion_group! {
    name = family;
    config = common::config();
    targets = bench_ordered, bench_buffer_unordered, bench_buffered, bench_join_all,
        bench_try_join_all, bench_select_all
}
criterion_main!(family);
