//! Poll counts under tokio's cooperative budget, for velodrome and its peers.
//!
//! In a current-thread runtime, one task drains a set of `N` children, each
//! awaiting `tokio::task::coop::consume_budget()` `K` times, with
//! `while let Some(_) = set.next().await {}`. Counted, per implementation:
//!
//! - child polls: every poll of a child;
//! - wasted polls: child polls that began with no budget left
//!   (`!has_budget_remaining()`), which can only return `Pending`;
//! - parent polls: polls of the draining task (each one after the first is
//!   a return to the runtime, which refills the budget).
//!
//! For reference, about `N` child polls plus one re-poll per budget refill
//! that lands inside a child, and no wasted poll. Prints a Markdown table.
//!
//! Run: `cargo run --release --example budget_counts`.

#[path = "../benches/common/mod.rs"]
mod common;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use common::{
    next, set_any_for, FuturesBuffered, FuturesConcurrency, FuturesUtil, Peer, Set, Unicycle,
    VelodromePeer,
};

/// Children in the set.
const N: usize = 10_000;
/// `consume_budget` calls per child.
const K: usize = 10;

// Single-threaded runtime: Relaxed counters are only read after the run.
static CHILD_POLLS: AtomicU64 = AtomicU64::new(0);
static WASTED_POLLS: AtomicU64 = AtomicU64::new(0);
static PARENT_POLLS: AtomicU64 = AtomicU64::new(0);

/// A child: `K` budget units, each poll counted.
async fn child() {
    let mut inner = pin!(async {
        for _ in 0..K {
            tokio::task::coop::consume_budget().await;
        }
    });
    poll_fn(|cx| {
        CHILD_POLLS.fetch_add(1, Relaxed);
        if !tokio::task::coop::has_budget_remaining() {
            WASTED_POLLS.fetch_add(1, Relaxed);
        }
        inner.as_mut().poll(cx)
    })
    .await;
}

/// `fut`, with each of its polls counted as a parent poll.
async fn counted_parent<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        PARENT_POLLS.fetch_add(1, Relaxed);
        fut.as_mut().poll(cx)
    })
    .await
}

/// One row of the table.
struct Row {
    name: &'static str,
    child_polls: u64,
    wasted_polls: u64,
    parent_polls: u64,
    millis: f64,
}

fn run<P: Peer>() -> Row {
    CHILD_POLLS.store(0, Relaxed);
    WASTED_POLLS.store(0, Relaxed);
    PARENT_POLLS.store(0, Relaxed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime");
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    let done = local.block_on(&rt, async {
        let driver = counted_parent(async {
            let make = |()| child();
            let mut set = set_any_for::<P, _, _, _>(&make);
            for _ in 0..N {
                set.push(make(()));
            }
            let mut done = 0;
            while let Some(()) = next(&mut set).await {
                done += 1;
            }
            done
        });
        tokio::task::spawn_local(driver).await.expect("driver task")
    });
    let millis = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(done, N, "{} lost children", P::NAME);
    Row {
        name: P::NAME,
        child_polls: CHILD_POLLS.load(Relaxed),
        wasted_polls: WASTED_POLLS.load(Relaxed),
        parent_polls: PARENT_POLLS.load(Relaxed),
        millis,
    }
}

fn main() {
    let rows = [
        run::<VelodromePeer>(),
        run::<FuturesUtil>(),
        run::<FuturesBuffered>(),
        run::<Unicycle>(),
        run::<FuturesConcurrency>(),
    ];
    println!(
        "Budget pressure: N = {N} children x K = {K} consume_budget() each, tokio current_thread"
    );
    println!();
    println!("| implementation | child polls | wasted polls | parent polls | child polls / child | time (ms) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.1} |",
            row.name,
            row.child_polls,
            row.wasted_polls,
            row.parent_polls,
            row.child_polls as f64 / N as f64,
            row.millis,
        );
    }
    println!();
    println!(
        "Reference: about N + N*K/128 = {} child polls (one re-poll per budget refill inside a child; tokio's budget is 128 units), 0 wasted.",
        N + N * K / 128
    );
    println!("futures-buffered is built with its `tokio-coop` feature; futures-concurrency boxes these (!Unpin) children.");
    println!("Time is from one run, for orientation only: `cargo bench --bench sets -- budget_pressure` times it.");
}
