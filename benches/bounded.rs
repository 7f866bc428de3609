//! Side-by-side timings of bounded sets: velodrome's `FuturesUnordered`
//! with a limit (`with_limit`, `try_push`) against futures-buffered's
//! `FuturesUnorderedBounded` (fixed capacity, `try_push -> Result<(), F>`)
//! and futures-util's `FuturesUnordered` with a `len()` check before each
//! `push` (the baseline: what people write today).
//!
//! - `bounded_churn`: a set kept at its limit (1,000 or 10,000 children that
//!   wake themselves 0–2 times before completing, as in `steady_state` of
//!   `benches/sets.rs`); each iteration takes one output and `try_push`es
//!   one new child. Throughput: one completion and one push per iteration.
//! - `bounded_refuse`: `try_push` into a full set, the child handed back.
//!   Throughput: one refused push per iteration.
//!
//! Before criterion runs, the bench counts the allocations of 10,000 churn
//! rounds per implementation and prints them (allocations per `try_push`
//! in steady state). The counting allocator counts only during that census;
//! afterwards it forwards to `System` behind one relaxed load.
//!
//! `VELODROME_BENCH_QUICK=1` shrinks every measurement (as in
//! `benches/sets.rs`).

mod common;

use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use futures::task::noop_waker_ref;
use futures_util::StreamExt as _;

use common::Yield;

/// Limits of the churn and refusal runs.
const LIMITS: [usize; 2] = [1_000, 10_000];
/// Churn rounds counted by the allocation census.
const CENSUS_ROUNDS: usize = 10_000;

// ------------------------------------------------------ counting allocator

/// The tests' counting allocator (`allocations_during`): this thread's
/// allocations, the same small cost for every peer.
#[path = "../tests/common/mod.rs"]
mod counting;

// --------------------------------------------------------------- the peers

/// A set with a limit, as the bench drives it.
trait Bounded<F: Future>: Sized {
    /// Bench id and census row.
    const NAME: &'static str;
    /// An empty set that takes at most `limit` children.
    fn with_limit(limit: usize) -> Self;
    /// Adds `child` if the set holds fewer than its limit, else hands it back.
    fn try_push(&mut self, child: F) -> Result<(), F>;
    /// `Stream::poll_next` of the set.
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>>;
    /// Children in the set.
    fn len(&self) -> usize;
}

impl<F: Future> Bounded<F> for velodrome::FuturesUnordered<F> {
    const NAME: &'static str = "velodrome";
    fn with_limit(limit: usize) -> Self {
        Self::with_limit(limit)
    }
    #[inline]
    fn try_push(&mut self, child: F) -> Result<(), F> {
        Self::try_push(self, child).map_err(velodrome::Full::into_inner)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.poll_next_unpin(cx)
    }
    fn len(&self) -> usize {
        Self::len(self)
    }
}

impl<F: Future> Bounded<F> for futures_buffered::FuturesUnorderedBounded<F> {
    const NAME: &'static str = "futures-buffered";
    fn with_limit(limit: usize) -> Self {
        Self::new(limit)
    }
    #[inline]
    fn try_push(&mut self, child: F) -> Result<(), F> {
        Self::try_push(self, child)
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.poll_next_unpin(cx)
    }
    fn len(&self) -> usize {
        Self::len(self)
    }
}

/// futures-util's set with the check people write by hand.
struct CheckedLen<F> {
    set: futures_util::stream::FuturesUnordered<F>,
    limit: usize,
}

impl<F: Future> Bounded<F> for CheckedLen<F> {
    const NAME: &'static str = "futures-util";
    fn with_limit(limit: usize) -> Self {
        CheckedLen {
            set: futures_util::stream::FuturesUnordered::new(),
            limit,
        }
    }
    #[inline]
    fn try_push(&mut self, child: F) -> Result<(), F> {
        if self.set.len() < self.limit {
            self.set.push(child);
            Ok(())
        } else {
            Err(child)
        }
    }
    #[inline]
    fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        self.set.poll_next_unpin(cx)
    }
    fn len(&self) -> usize {
        self.set.len()
    }
}

// --------------------------------------------------------------- workloads

/// A set of `limit` [`Yield`] children, at its limit.
fn full<B: Bounded<Yield>>(limit: usize) -> B {
    let mut set = B::with_limit(limit);
    for i in 0..limit {
        assert!(set.try_push(Yield(i as u32 % 3)).is_ok(), "below the limit");
    }
    set
}

/// One churn round: take one output, `try_push` one child into its slot.
#[inline]
fn churn_round<B: Bounded<Yield>>(set: &mut B, cx: &mut Context<'_>, pushed: &mut u32) {
    loop {
        match set.poll_set(cx) {
            Poll::Ready(Some(out)) => {
                black_box(out);
                break;
            }
            Poll::Ready(None) => panic!("{}: the set ended", B::NAME),
            Poll::Pending => {}
        }
    }
    if set.try_push(Yield(*pushed % 3)).is_err() {
        panic!("{}: no room after a completion", B::NAME);
    }
    *pushed = pushed.wrapping_add(1);
}

fn churn<B: Bounded<Yield>>(b: &mut criterion::Bencher<'_>, limit: usize) {
    let mut set = full::<B>(limit);
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut pushed = limit as u32;
    b.iter(|| churn_round(&mut set, &mut cx, &mut pushed));
    assert_eq!(set.len(), limit);
}

fn refuse<B: Bounded<Yield>>(b: &mut criterion::Bencher<'_>, limit: usize) {
    let mut set = full::<B>(limit);
    b.iter(|| {
        let back = set.try_push(black_box(Yield(1)));
        black_box(back.is_err())
    });
    assert_eq!(set.len(), limit);
}

/// Allocations per churn round in steady state (after one warm-up pass of
/// the whole set).
fn census<B: Bounded<Yield>>(limit: usize) -> f64 {
    let mut set = full::<B>(limit);
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut pushed = limit as u32;
    for _ in 0..2 * limit {
        churn_round(&mut set, &mut cx, &mut pushed);
    }
    let (allocations, ()) = counting::allocations_during(|| {
        for _ in 0..CENSUS_ROUNDS {
            churn_round(&mut set, &mut cx, &mut pushed);
        }
    });
    allocations as f64 / CENSUS_ROUNDS as f64
}

fn print_census() {
    for limit in LIMITS {
        eprintln!(
            "bounded_churn/{limit}: allocations per try_push in steady state: \
             velodrome {}, futures-buffered {}, futures-util {}",
            census::<velodrome::FuturesUnordered<Yield>>(limit),
            census::<futures_buffered::FuturesUnorderedBounded<Yield>>(limit),
            census::<CheckedLen<Yield>>(limit),
        );
    }
}

// ---------------------------------------------------------------- criterion

/// Runs `$workload::<B>(bencher, limit)` for every peer.
macro_rules! bench_peers {
    ($group:expr, $limit:expr, $workload:ident) => {
        bench_peers!(@each $group, $limit, $workload, [
            velodrome::FuturesUnordered<Yield>,
            futures_buffered::FuturesUnorderedBounded<Yield>,
            CheckedLen<Yield>
        ])
    };
    (@each $group:expr, $limit:expr, $workload:ident, [$($peer:ty),*]) => {
        $(
            $group.bench_with_input(
                BenchmarkId::new(<$peer as Bounded<Yield>>::NAME, $limit),
                &$limit,
                |b, &limit| $workload::<$peer>(b, limit),
            );
        )*
    };
}

fn bench_churn(c: &mut Criterion) {
    print_census();
    let mut group = c.benchmark_group("bounded_churn");
    group.throughput(Throughput::Elements(1));
    group.sampling_mode(SamplingMode::Auto);
    for limit in LIMITS {
        bench_peers!(group, limit, churn);
    }
    group.finish();
}

fn bench_refuse(c: &mut Criterion) {
    let mut group = c.benchmark_group("bounded_refuse");
    group.throughput(Throughput::Elements(1));
    for limit in LIMITS {
        bench_peers!(group, limit, refuse);
    }
    group.finish();
}

criterion_group! {
    name = bounded;
    config = common::config();
    targets = bench_churn, bench_refuse
}
criterion_main!(bounded);
