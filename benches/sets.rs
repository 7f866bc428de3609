//! Side-by-side timings: velodrome against futures-util, futures-buffered,
//! unicycle and futures-concurrency's `FutureGroup`, plus a floor (the same
//! children pinned in a boxed slice and polled by index, with no set).
//!
//! The `streams_*` workloads (criterion group `streams`) do the same for sets
//! of streams: velodrome's `StreamsUnordered` against futures-util's
//! `select_all` (their baseline), a hand-written futures-util
//! `FuturesUnordered<StreamFuture<_>>`, unicycle's `StreamsUnordered` and
//! futures-concurrency's `StreamGroup`, plus a floor (a `Vec` of streams
//! polled round-robin); throughput is in items.
//!
//! One criterion group per workload; inside it one bench per implementation
//! and size, `BenchmarkId::new(implementation, size)`, with throughput in
//! children (or, for `one_wake` and `steady_state`, in completed children).
//! Sets are driven by hand with the noop waker unless the workload needs a
//! runtime (`cross_thread`, `budget_pressure`).
//!
//! `VELODROME_BENCH_QUICK=1` shrinks every measurement so the whole file runs
//! in a few minutes on 2 cores; `benches/report.py` turns the results into a
//! ratio table and a chart.

mod common;

use std::cell::RefCell;
use std::future::{poll_fn, ready};
use std::hint::black_box;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, Bencher, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use futures::task::noop_waker_ref;

use common::{
    drain, drain_streams, next, parked_set, poll_once, server_event, set_any_for, shuffled,
    wake_all, Board, Floor, FuturesBuffered, FuturesConcurrency, FuturesUtil,
    FuturesUtilStreamFutures, Parked, Peer, PendingOnce, PendingStream, SelectAll, Set,
    StreamFloor, StreamGroup, StreamPeer, StreamSet, Unicycle, UnicycleStreams, VelodromePeer,
    VelodromeStreams, Yield,
};

/// Children per set in the small and large runs.
const SIZES: [usize; 2] = [1_000, 100_000];
/// Children per set in the lock-contention runs (time must grow linearly).
const MUTEX_SIZES: [usize; 2] = [10_000, 80_000];
/// Self-wakes before a `yield_10` child completes.
const YIELDS: u32 = 10;
/// Size kept constant in `steady_state`.
const STEADY_SIZE: usize = 1_000;
/// Children and `consume_budget` calls per child in `budget_pressure`.
const BUDGET_CHILDREN: usize = 10_000;
const BUDGET_CALLS: usize = 10;

/// Sets the group up for `n` children: large sets sample flat (same
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

/// Runs `$workload::<P>(bencher, n)` for every peer, as
/// `BenchmarkId::new(P::NAME, n)`.
macro_rules! bench_peers {
    ($group:expr, $n:expr, $workload:ident) => {
        bench_peers!(@each $group, $n, $workload,
            [VelodromePeer, FuturesUtil, FuturesBuffered, Unicycle, FuturesConcurrency])
    };
    (@each $group:expr, $n:expr, $workload:ident, [$($peer:ty),*]) => {
        $(
            $group.bench_with_input(
                BenchmarkId::new(<$peer as Peer>::NAME, $n),
                &$n,
                |b, &n| $workload::<$peer>(b, n),
            );
        )*
    };
}

/// Id of the floor in every group that has one.
const FLOOR: &str = "floor";

// ---------------------------------------------------------------- ready_drain

/// Push `n` ready children, then drain them.
fn ready_drain<P: Peer>(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| common::ready_drain_round::<P>(n));
}

fn ready_drain_floor(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let mut floor = Floor::new((0..n).map(ready));
        floor.drain(n);
        floor
    });
}

fn bench_ready_drain(c: &mut Criterion) {
    let mut group = c.benchmark_group("ready_drain");
    for n in SIZES {
        tune(&mut group, n, n as u64);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            ready_drain_floor(b, n)
        });
        bench_peers!(group, n, ready_drain);
    }
    group.finish();
}

// --------------------------------------------------------------- pending_once

/// Push `n` children that park their waker on the first poll, poll until all
/// have parked, wake them all from this thread, then drain.
fn pending_once<P: Peer>(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| common::pending_once_round::<P>(n));
}

fn pending_once_floor(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let wakers = Rc::new(RefCell::new(Vec::with_capacity(n)));
        let mut floor = Floor::new((0..n).map(|_| PendingOnce::new(&wakers)));
        let mut cx = Context::from_waker(noop_waker_ref());
        for index in 0..n {
            let _ = floor.poll_slot(index, &mut cx);
        }
        for waker in wakers.take() {
            waker.wake();
        }
        floor.drain(n);
        floor
    });
}

fn bench_pending_once(c: &mut Criterion) {
    let mut group = c.benchmark_group("pending_once");
    for n in SIZES {
        tune(&mut group, n, n as u64);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            pending_once_floor(b, n)
        });
        bench_peers!(group, n, pending_once);
    }
    group.finish();
}

// ------------------------------------------------------------------- yield_10

/// Push `n` children that wake themselves ten times before finishing; drain.
fn yield_10<P: Peer>(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| common::yield_round::<P>(n, YIELDS));
}

fn yield_10_floor(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let mut floor = Floor::new((0..n).map(|_| Yield(YIELDS)));
        floor.drain(n);
        floor
    });
}

fn bench_yield_10(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield_10");
    for n in SIZES {
        tune(&mut group, n, n as u64);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| yield_10_floor(b, n));
        bench_peers!(group, n, yield_10);
    }
    group.finish();
}

// ------------------------------------------------------------------- one_wake

/// Seed of the order in which `one_wake` releases children.
const WAKE_ORDER_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// `n` parked children; each iteration releases one (in a scattered order),
/// wakes it and polls the set until it completes. Timed: the wake and the
/// polls only. A set is rebuilt, untimed, once half its children are done,
/// so it always holds between `n / 2` and `n` children.
fn one_wake<P: Peer>(b: &mut Bencher<'_>, n: usize) {
    let order = shuffled(n, WAKE_ORDER_SEED);
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let board = Board::new(n);
            let mut set = <P::Set<Parked> as Set<_>>::new();
            for id in 0..n {
                set.push(Parked::new(id, &board));
            }
            while board.parked() < n {
                poll_once(&mut set);
            }
            let k = left.min(n as u64 / 2) as usize;
            let start = Instant::now();
            for &id in &order[..k] {
                board.release(id);
                drain(&mut set, 1);
            }
            total += start.elapsed();
            left -= k as u64;
            drop(set);
        }
        total
    });
}

fn one_wake_floor(b: &mut Bencher<'_>, n: usize) {
    let order = shuffled(n, WAKE_ORDER_SEED);
    b.iter_custom(|iters| {
        let mut cx = Context::from_waker(noop_waker_ref());
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let board = Board::new(n);
            let mut floor = Floor::new((0..n).map(|id| Parked::new(id, &board)));
            for index in 0..n {
                let _ = floor.poll_slot(index, &mut cx);
            }
            let k = left.min(n as u64 / 2) as usize;
            let start = Instant::now();
            for &id in &order[..k] {
                board.release(id);
                let Poll::Ready(out) = floor.poll_slot(id, &mut cx) else {
                    panic!("released child {id} still pending");
                };
                black_box(out);
            }
            total += start.elapsed();
            left -= k as u64;
        }
        total
    });
}

fn bench_one_wake(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_wake");
    for n in SIZES {
        tune(&mut group, n, 1);
        // Each iteration is short here, whatever `n`.
        group.sampling_mode(SamplingMode::Auto);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| one_wake_floor(b, n));
        bench_peers!(group, n, one_wake);
    }
    group.finish();
}

// --------------------------------------------------------------- server_event

/// A server's hot path: `n` parked children; each iteration wakes one (in a
/// scattered order), takes its output, pushes a fresh child in its place
/// and polls until the new child has parked its waker. Timed: the events
/// only; the set stays at `n` children throughout.
fn server_event_bench<P: Peer>(b: &mut Bencher<'_>, n: usize) {
    let order = shuffled(n, WAKE_ORDER_SEED);
    let board = Board::new(n);
    let mut set: P::Set<Parked> = parked_set(&board, n);
    let mut next = 0;
    b.iter_custom(|iters| {
        let start = Instant::now();
        for _ in 0..iters {
            server_event(&mut set, &board, order[next]);
            next = (next + 1) % n;
        }
        start.elapsed()
    });
}

fn server_event_floor(b: &mut Bencher<'_>, n: usize) {
    let order = shuffled(n, WAKE_ORDER_SEED);
    let board = Board::new(n);
    let mut floor = Floor::new((0..n).map(|id| Parked::new(id, &board)));
    let mut cx = Context::from_waker(noop_waker_ref());
    for index in 0..n {
        let _ = floor.poll_slot(index, &mut cx);
    }
    let mut next = 0;
    b.iter_custom(|iters| {
        let start = Instant::now();
        for _ in 0..iters {
            let id = order[next];
            next = (next + 1) % n;
            board.release(id);
            let Poll::Ready(out) = floor.poll_slot(id, &mut cx) else {
                panic!("released child {id} still pending");
            };
            black_box(out);
            board.rearm(id);
            floor.replace(id, Parked::new(id, &board));
            let _ = floor.poll_slot(id, &mut cx);
        }
        start.elapsed()
    });
}

fn bench_server_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("server_event");
    for n in SIZES {
        tune(&mut group, n, 1);
        group.sampling_mode(SamplingMode::Auto);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            server_event_floor(b, n)
        });
        bench_peers!(group, n, server_event_bench);
    }
    group.finish();
}

// --------------------------------------------------------------- cross_thread

/// The runtime for `cross_thread`: two workers, woken from the bench thread.
fn multi_thread() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("multi-thread runtime")
    })
}

/// `n` children awaiting `oneshot` receivers, driven in `block_on` on the
/// bench thread; a task spawned on the runtime's workers fires the senders
/// once the set has polled (so wakes cross threads).
fn cross_thread<P: Peer>(b: &mut Bencher<'_>, n: usize) {
    let rt = multi_thread();
    b.iter(|| {
        rt.block_on(async {
            let mut set = <P::Set<tokio::sync::oneshot::Receiver<usize>> as Set<_>>::new();
            let mut senders = Vec::with_capacity(n);
            for _ in 0..n {
                let (tx, rx) = tokio::sync::oneshot::channel();
                senders.push(tx);
                set.push(rx);
            }
            let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
            let firing = tokio::spawn(async move {
                go_rx.await.expect("go signal");
                for (i, tx) in senders.into_iter().enumerate() {
                    tx.send(i).expect("receiver alive");
                }
            });
            let mut go = Some(go_tx);
            let mut got = 0;
            poll_fn(|cx| loop {
                match set.poll_set(cx) {
                    Poll::Ready(Some(out)) => {
                        black_box(out.expect("sender fired"));
                        got += 1;
                    }
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => {
                        if let Some(go) = go.take() {
                            go.send(()).expect("firing task alive");
                        }
                        return Poll::Pending;
                    }
                }
            })
            .await;
            assert_eq!(got, n);
            firing.await.expect("firing task");
        });
    });
}

fn bench_cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_thread");
    for n in SIZES {
        tune(&mut group, n, n as u64);
        bench_peers!(group, n, cross_thread);
    }
    group.finish();
}

// --------------------------------------------------------------- steady_state

/// A set kept at `STEADY_SIZE` children: each iteration polls until one child
/// completes and pushes a new one. Children yield 0, 1 or 2 times.
fn steady_state<P: Peer>(b: &mut Bencher<'_>, size: usize) {
    let mut set = <P::Set<Yield> as Set<_>>::new();
    for i in 0..size {
        set.push(Yield(i as u32 % 3));
    }
    let mut pushed = size as u32;
    b.iter(|| {
        drain(&mut set, 1);
        set.push(Yield(pushed % 3));
        pushed = pushed.wrapping_add(1);
    });
    assert_eq!(set.len(), size);
}

fn steady_state_floor(b: &mut Bencher<'_>, size: usize) {
    let mut floor = Floor::new((0..size).map(|i| Yield(i as u32 % 3)));
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut cursor = 0;
    let mut pushed = size as u32;
    b.iter(|| loop {
        let out = floor.poll_slot(cursor, &mut cx);
        if let Poll::Ready(out) = out {
            black_box(out);
            floor.replace(cursor, Yield(pushed % 3));
            pushed = pushed.wrapping_add(1);
            cursor = (cursor + 1) % size;
            break;
        }
        cursor = (cursor + 1) % size;
    });
}

fn bench_steady_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("steady_state");
    let n = STEADY_SIZE;
    tune(&mut group, n, 1);
    group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
        steady_state_floor(b, n)
    });
    bench_peers!(group, n, steady_state);
    group.finish();
}

// ---------------------------------------------------------- mutex_contention

/// A child that takes the lock and releases it at once.
async fn lock_child(mutex: Arc<tokio::sync::Mutex<()>>) {
    drop(mutex.lock().await);
}

/// `n` children queue on one `tokio::sync::Mutex` held by the bench; it is
/// released after all are pushed and polled once, and the set is drained.
/// Each completion hands the lock to the next waiter: one wake per cycle.
fn mutex_contention<P: Peer>(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let mutex = Arc::new(tokio::sync::Mutex::new(()));
        let held = Arc::clone(&mutex).try_lock_owned().expect("fresh mutex");
        let mut set = set_any_for::<P, _, _, _>(&lock_child);
        for _ in 0..n {
            set.push(lock_child(Arc::clone(&mutex)));
        }
        poll_once(&mut set);
        drop(held);
        drain(&mut set, n);
        set
    });
}

fn mutex_contention_floor(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let mutex = Arc::new(tokio::sync::Mutex::new(()));
        let held = Arc::clone(&mutex).try_lock_owned().expect("fresh mutex");
        let mut floor = Floor::new((0..n).map(|_| lock_child(Arc::clone(&mutex))));
        let mut cx = Context::from_waker(noop_waker_ref());
        for index in 0..n {
            let _ = floor.poll_slot(index, &mut cx);
        }
        drop(held);
        floor.drain(n);
        floor
    });
}

fn bench_mutex_contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_contention");
    for n in MUTEX_SIZES {
        tune(&mut group, n, n as u64);
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            mutex_contention_floor(b, n)
        });
        bench_peers!(group, n, mutex_contention);
    }
    group.finish();
}

// ----------------------------------------------------------- budget_pressure

/// The runtime for `budget_pressure`: one thread, tokio's coop budget on.
fn current_thread() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("current-thread runtime")
    })
}

/// A child spending `BUDGET_CALLS` units of the task's coop budget.
async fn budget_child() {
    for _ in 0..BUDGET_CALLS {
        tokio::task::coop::consume_budget().await;
    }
}

/// `n` budget-spending children drained by `while let Some(_) = next().await`
/// in `block_on` (which runs under the coop budget like a task). Counts of
/// polls for the same workload: `examples/budget_counts.rs`.
fn budget_pressure<P: Peer>(b: &mut Bencher<'_>, n: usize) {
    let rt = current_thread();
    b.iter(|| {
        rt.block_on(async {
            let make = |()| budget_child();
            let mut set = set_any_for::<P, _, _, _>(&make);
            for _ in 0..n {
                set.push(make(()));
            }
            while let Some(out) = next(&mut set).await {
                black_box(out);
            }
        });
    });
}

fn bench_budget_pressure(c: &mut Criterion) {
    let mut group = c.benchmark_group("budget_pressure");
    let n = BUDGET_CHILDREN;
    tune(&mut group, n, n as u64);
    bench_peers!(group, n, budget_pressure);
    group.finish();
}

// ------------------------------------------------------------- streams_ready

/// Ready items per stream in `streams_ready`.
const READY_ITEMS: u32 = 10;
/// Items per stream in `streams_pending` (each after one `Pending`).
const PENDING_ITEMS: u32 = 4;

/// Runs `$workload::<P>(bencher, n)` for every stream-set peer (or the
/// ones listed), as `BenchmarkId::new(P::NAME, n)`.
macro_rules! bench_stream_peers {
    ($group:expr, $n:expr, $workload:ident) => {
        bench_stream_peers!($group, $n, $workload, [
            VelodromeStreams, SelectAll, FuturesUtilStreamFutures, UnicycleStreams, StreamGroup
        ])
    };
    ($group:expr, $n:expr, $workload:ident, [$($peer:ty),*]) => {
        $(
            $group.bench_with_input(
                BenchmarkId::new(<$peer as StreamPeer>::NAME, $n),
                &$n,
                |b, &n| $workload::<$peer>(b, n),
            );
        )*
    };
}

/// Push `n` streams of `READY_ITEMS` ready items each, then drain all the
/// items until the set ends.
fn streams_ready<P: StreamPeer>(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let mut set = <P::Set<futures::stream::Iter<std::ops::Range<u32>>> as StreamSet<_>>::new();
        for _ in 0..n {
            set.push(futures::stream::iter(0..READY_ITEMS));
        }
        drain_streams(&mut set, n * READY_ITEMS as usize, || {});
        set
    });
}

fn streams_ready_floor(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let mut floor = StreamFloor::new((0..n).map(|_| futures::stream::iter(0..READY_ITEMS)));
        floor.drain(n * READY_ITEMS as usize, || {});
        floor
    });
}

fn bench_streams_ready(c: &mut Criterion) {
    let mut group = c.benchmark_group("streams_ready");
    for n in SIZES {
        tune(&mut group, n, n as u64 * u64::from(READY_ITEMS));
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            streams_ready_floor(b, n)
        });
        bench_stream_peers!(group, n, streams_ready);
    }
    group.finish();
}

// ----------------------------------------------------------- streams_pending

/// Largest `streams_pending` size `StreamGroup` runs at. Each of its polls
/// scans its streams from the first up to one that yields, and here the
/// ready stream is past every stream that already parked this round, so a
/// round costs O(n²): one iteration at 100,000 streams took ~250 s.
const STREAM_GROUP_MAX: usize = 1_000;

/// Push `n` streams of `PENDING_ITEMS` items that each park their waker
/// before every item; poll the set until it ends, waking (from this thread)
/// every parked waker whenever it returns `Pending`.
fn streams_pending<P: StreamPeer>(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let wakers = Rc::new(RefCell::new(Vec::with_capacity(n)));
        let mut set = <P::Set<PendingStream> as StreamSet<_>>::new();
        for _ in 0..n {
            set.push(PendingStream::new(PENDING_ITEMS, &wakers));
        }
        drain_streams(&mut set, n * PENDING_ITEMS as usize, || wake_all(&wakers));
        set
    });
}

fn streams_pending_floor(b: &mut Bencher<'_>, n: usize) {
    b.iter(|| {
        let wakers = Rc::new(RefCell::new(Vec::with_capacity(n)));
        let mut floor =
            StreamFloor::new((0..n).map(|_| PendingStream::new(PENDING_ITEMS, &wakers)));
        floor.drain(n * PENDING_ITEMS as usize, || wake_all(&wakers));
        floor
    });
}

fn bench_streams_pending(c: &mut Criterion) {
    let mut group = c.benchmark_group("streams_pending");
    for n in SIZES {
        tune(&mut group, n, n as u64 * u64::from(PENDING_ITEMS));
        group.bench_with_input(BenchmarkId::new(FLOOR, n), &n, |b, &n| {
            streams_pending_floor(b, n)
        });
        if n <= STREAM_GROUP_MAX {
            bench_stream_peers!(group, n, streams_pending);
        } else {
            bench_stream_peers!(
                group,
                n,
                streams_pending,
                [
                    VelodromeStreams,
                    SelectAll,
                    FuturesUtilStreamFutures,
                    UnicycleStreams
                ]
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = sets;
    config = common::config();
    targets = bench_ready_drain, bench_pending_once, bench_yield_10, bench_one_wake,
        bench_server_event,
        bench_cross_thread, bench_steady_state, bench_mutex_contention,
        bench_budget_pressure
}
criterion_group! {
    name = streams;
    config = common::config();
    targets = bench_streams_ready, bench_streams_pending
}
criterion_main!(sets, streams);
