//! Producer tasks on other threads feed one set through push handles; the
//! consumer's loop is a plain `while let Some(..) = set.next().await`, with
//! no channel and no `select!` beside it, and it ends when the last
//! producer is done and every child has finished.
//!
//! `cargo run --release --example producers`

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use velodrome::{FuturesUnordered, Priority};

const PRODUCERS: usize = 4;
const JOBS_PER_PRODUCER: usize = 25_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut set = FuturesUnordered::new();
    let producers_left = Arc::new(AtomicUsize::new(PRODUCERS));
    let start = Instant::now();
    for producer in 0..PRODUCERS {
        let handle = set.handle();
        let producers_left = producers_left.clone();
        tokio::spawn(async move {
            for job in 0..JOBS_PER_PRODUCER {
                // Every 100th job is urgent: it goes to the HIGH lane.
                let priority = if job % 100 == 0 {
                    Priority::HIGH
                } else {
                    Priority::NORMAL
                };
                let pushed = handle.push_with_priority(
                    async move {
                        tokio::task::yield_now().await;
                        (producer, job)
                    },
                    priority,
                );
                pushed.expect("the consumer's set lives until the end");
                if job % 1_000 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            producers_left.fetch_sub(1, SeqCst);
            // The handle drops here; the last drop lets the set end.
        });
    }

    let mut per_producer = [0usize; PRODUCERS];
    let mut in_flight_max = 0;
    while let Some((producer, _job)) = set.next().await {
        per_producer[producer] += 1;
        in_flight_max = in_flight_max.max(set.len());
    }
    let elapsed = start.elapsed();
    let stats = set.stats();

    println!("{PRODUCERS} producer tasks, {JOBS_PER_PRODUCER} jobs each, pushed through handles");
    println!("outputs per producer: {per_producer:?}");
    println!(
        "the set ended with {} producers left (every handle gone), after {elapsed:.1?}",
        producers_left.load(SeqCst),
    );
    println!(
        "most children in the set at once: {in_flight_max}; polls: {} ({} HIGH, {} NORMAL); cycles: {}",
        stats.polls, stats.lane_polls[0], stats.lane_polls[1], stats.cycles
    );
    assert_eq!(per_producer, [JOBS_PER_PRODUCER; PRODUCERS]);
    assert_eq!(producers_left.load(SeqCst), 0);
}
