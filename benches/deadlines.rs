//! Timeouts on a whole set: velodrome's `Deadlines` (one timer per set)
//! against the ways people get per-child timeouts today.
//!
//! Workload `deadlines_steady` (criterion group `deadlines`): a steady state
//! of about 10,000 children with a 100 ms timeout each. Time is tokio's
//! paused clock, moved 1 ms per iteration with `tokio::time::advance`, on a
//! current-thread runtime; the iteration is timed in real time. In each
//! iteration:
//!
//! 1. the clock moves 1 ms: the 100 children that hang (inserted 100 ms
//!    earlier) expire;
//! 2. the set is drained until the 100 expiries and the 100 quick children
//!    of the last iteration (ready at their first poll) have come out, each
//!    checked (`Ok` for quick, `Err` for hanging);
//! 3. each is replaced: 100 new hanging and 100 new quick children, all with
//!    the 100 ms timeout.
//!
//! So 10,000 hanging children are always in the set, and each iteration is
//! 200 inserts, 100 completions and 100 expiries (throughput: 200 children).
//!
//! Peers:
//! - `velodrome-deadlines`: `Deadlines<FuturesUnordered<Job>>`,
//!   `insert_with_timeout`;
//! - `futures-util+timeout`: `futures::stream::FuturesUnordered` of
//!   `tokio::time::timeout(100 ms, job)`;
//! - `velodrome+timeout`: `velodrome::FuturesUnordered` of the same;
//! - `futures-bounded`: libp2p's `FuturesMap<u64, u32>` with
//!   `Delay::tokio(100 ms)` (boxes every future and its timer; `try_push`
//!   scans the map for the id).
//!
//! Before measuring, each peer runs 300 iterations (to its steady state) and
//! the allocations of 100 more are counted with a counting global allocator
//! and printed per insert.
//!
//! `VELODROME_BENCH_QUICK=1` shrinks every measurement (as in
//! `benches/sets.rs`).

mod common;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use futures_util::StreamExt as _;
use tokio::runtime::Runtime;

/// The tests' counting allocator: this thread's allocations (a
/// thread-local increment: the same small cost for every peer).
#[path = "../tests/common/mod.rs"]
mod counting;

/// The timeout of every child.
const TIMEOUT: Duration = Duration::from_millis(100);
/// Clock step per iteration.
const STEP: Duration = Duration::from_millis(1);
/// Hanging and quick children inserted per iteration.
const PER_STEP: usize = 100;
/// Hanging children in the set in steady state.
const LIVE: usize = PER_STEP * 100;

/// A child: ready at its first poll, or pending forever (never wakes).
#[derive(Debug, Clone, Copy)]
enum Job {
    Quick(u32),
    Hang,
}

impl Future for Job {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        match *self {
            Job::Quick(n) => Poll::Ready(n),
            Job::Hang => Poll::Pending,
        }
    }
}

/// What a peer must do: insert with the timeout, poll for `Some(ok)`.
trait Peer {
    fn new() -> Self;
    fn insert(&mut self, job: Job);
    /// `Ready(true)` for an output, `Ready(false)` for a timeout.
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<bool>;
}

struct VelodromeDeadlines(velodrome::Deadlines<velodrome::FuturesUnordered<Job>>);

impl Peer for VelodromeDeadlines {
    fn new() -> Self {
        Self(velodrome::Deadlines::new())
    }
    fn insert(&mut self, job: Job) {
        self.0.insert_with_timeout(job, TIMEOUT);
    }
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        match self.0.poll_next_unpin(cx) {
            Poll::Ready(Some((_, result))) => Poll::Ready(result.is_ok()),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

struct FuturesUtilTimeout(futures_util::stream::FuturesUnordered<tokio::time::Timeout<Job>>);

impl Peer for FuturesUtilTimeout {
    fn new() -> Self {
        Self(futures_util::stream::FuturesUnordered::new())
    }
    fn insert(&mut self, job: Job) {
        self.0.push(tokio::time::timeout(TIMEOUT, job));
    }
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        match self.0.poll_next_unpin(cx) {
            Poll::Ready(Some(result)) => Poll::Ready(result.is_ok()),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

struct VelodromeTimeout(velodrome::FuturesUnordered<tokio::time::Timeout<Job>>);

impl Peer for VelodromeTimeout {
    fn new() -> Self {
        Self(velodrome::FuturesUnordered::new())
    }
    fn insert(&mut self, job: Job) {
        self.0.push(tokio::time::timeout(TIMEOUT, job));
    }
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        match self.0.poll_next_unpin(cx) {
            Poll::Ready(Some(result)) => Poll::Ready(result.is_ok()),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

struct FuturesBounded {
    map: futures_bounded::FuturesMap<u64, u32>,
    next_id: u64,
}

impl Peer for FuturesBounded {
    fn new() -> Self {
        Self {
            map: futures_bounded::FuturesMap::new(
                || futures_bounded::Delay::tokio(TIMEOUT),
                2 * LIVE,
            ),
            next_id: 0,
        }
    }
    fn insert(&mut self, job: Job) {
        self.next_id += 1;
        if self.map.try_push(self.next_id, job).is_err() {
            panic!("futures-bounded refused a child below its capacity");
        }
    }
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        self.map.poll_unpin(cx).map(|(_, result)| result.is_ok())
    }
}

/// A peer in its steady state, and the iteration count so far.
struct Steady<P> {
    peer: P,
    step: u64,
}

impl<P: Peer> Steady<P> {
    fn new() -> Self {
        Self {
            peer: P::new(),
            step: 0,
        }
    }

    /// One iteration (see the module docs); checks what came out.
    async fn step(&mut self) {
        tokio::time::advance(STEP).await;
        let quick = if self.step >= 1 { PER_STEP } else { 0 };
        // Hanging children inserted at step `s` expire at step `s + 100`.
        let expiring = if self.step >= 100 { PER_STEP } else { 0 };
        let (mut ok, mut expired) = (0, 0);
        while ok + expired < quick + expiring {
            if poll_fn(|cx| self.peer.poll_one(cx)).await {
                ok += 1;
            } else {
                expired += 1;
            }
        }
        assert_eq!((ok, expired), (quick, expiring), "step {}", self.step);
        for i in 0..PER_STEP {
            self.peer.insert(Job::Hang);
            self.peer.insert(Job::Quick(i as u32));
        }
        self.step += 1;
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

fn bench_peer<P: Peer>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
) {
    let rt = runtime();
    let mut steady = rt.block_on(async {
        let mut steady = Steady::<P>::new();
        for _ in 0..300 {
            steady.step().await;
        }
        let before = counting::allocations();
        for _ in 0..100 {
            steady.step().await;
        }
        let allocations = counting::allocations() - before;
        println!(
            "deadlines_steady/{name}: {:.2} allocations per insert in steady state",
            allocations as f64 / (100 * 2 * PER_STEP) as f64
        );
        steady
    });
    group.bench_function(BenchmarkId::new(name, LIVE), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    steady.step().await;
                }
                start.elapsed()
            })
        });
    });
}

fn deadlines(c: &mut Criterion) {
    let mut group = c.benchmark_group("deadlines_steady");
    group.throughput(Throughput::Elements(2 * PER_STEP as u64));
    group.sampling_mode(SamplingMode::Flat);
    bench_peer::<VelodromeDeadlines>(&mut group, "velodrome-deadlines");
    bench_peer::<FuturesUtilTimeout>(&mut group, "futures-util+timeout");
    bench_peer::<VelodromeTimeout>(&mut group, "velodrome+timeout");
    bench_peer::<FuturesBounded>(&mut group, "futures-bounded");
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = deadlines
}
criterion_main!(benches);
