//! Feeding a set from another thread: velodrome's `PushHandle` against what
//! people do with the other sets today, a channel next to the set (tokio's
//! unbounded mpsc, drained into the set in the same poll).
//!
//! Each iteration: a producer thread pushes `n` ready children and drops
//! its sender; the consumer (this thread, `futures::executor::block_on`)
//! takes every output until the set ends. Side by side, in one process:
//!
//! - `velodrome`: `set.handle()`, `handle.push(child)`, `set.next()`;
//! - `futures-util`: `tokio::sync::mpsc::unbounded_channel` + futures-util's
//!   `FuturesUnordered`, the loop users write around `select!`;
//! - `futures-buffered`: the same with futures-buffered's set.
//!
//! `cargo bench --bench handles` (`VELODROME_BENCH_QUICK=1` for a short
//! run); `python3 benches/report.py` prints the ratios to futures-util.

mod common;

use std::future::{poll_fn, ready, Ready};
use std::task::Poll;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::{Stream, StreamExt};

fn velodrome(n: u64) -> u64 {
    let mut set = velodrome::FuturesUnordered::new();
    let handle = set.handle();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..n {
                handle.push(ready(i)).unwrap();
            }
        });
        futures::executor::block_on(async {
            let mut sum = 0;
            while let Some(x) = set.next().await {
                sum += x;
            }
            sum
        })
    })
}

/// The channel-beside-the-set loop: take everything the channel has into
/// the set, then poll the set; end when the channel is closed and the set
/// empty.
fn channel<S>(n: u64, mut set: S, push: impl Fn(&mut S, Ready<u64>)) -> u64
where
    S: Stream<Item = u64> + Unpin,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..n {
                tx.send(ready(i)).unwrap();
            }
        });
        futures::executor::block_on(async {
            let mut sum = 0;
            let mut open = true;
            poll_fn(|cx| loop {
                while open {
                    match rx.poll_recv(cx) {
                        Poll::Ready(Some(child)) => push(&mut set, child),
                        Poll::Ready(None) => open = false,
                        Poll::Pending => break,
                    }
                }
                match set.poll_next_unpin(cx) {
                    Poll::Ready(Some(x)) => sum += x,
                    Poll::Ready(None) if !open => return Poll::Ready(()),
                    Poll::Ready(None) | Poll::Pending => return Poll::Pending,
                }
            })
            .await;
            sum
        })
    })
}

fn bench_handles(c: &mut Criterion) {
    let mut group = c.benchmark_group("handles_feed");
    for n in [1_000u64, 100_000] {
        group.throughput(Throughput::Elements(n));
        let expected = n * (n - 1) / 2;
        group.bench_with_input(BenchmarkId::new("velodrome", n), &n, |b, &n| {
            b.iter(|| assert_eq!(velodrome(n), expected))
        });
        group.bench_with_input(BenchmarkId::new("futures-util", n), &n, |b, &n| {
            b.iter(|| {
                let set = futures_util::stream::FuturesUnordered::new();
                assert_eq!(channel(n, set, |set, child| set.push(child)), expected)
            })
        });
        group.bench_with_input(BenchmarkId::new("futures-buffered", n), &n, |b, &n| {
            b.iter(|| {
                let set = futures_buffered::FuturesUnordered::new();
                assert_eq!(channel(n, set, |set, child| set.push(child)), expected)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_handles
}
criterion_main!(benches);
