//! The loop-body footgun of futures-rs#2387, and `progress_while`.
//!
//! ```sh
//! cargo run --example progress
//! ```
//!
//! Six requests (timers of 10 to 20 ms) run in a set; the loop body that
//! handles each output awaits 100 ms. In the plain loop nothing polls the
//! set while the body awaits, so no request but the first finishes before
//! a body has ended, whatever its own time; and as each `next()` hands out
//! one output, the n-th request waits for n - 1 bodies (110, 210, ... ms).
//! With `set.progress_while(body)`, each finishes at its own time, and the
//! outputs wait in the set for the loop.
//!
//! The clock is tokio's paused clock (it jumps to the next timer when
//! everything waits), so the figures are exact and the run is instant; with
//! `--real-time` the same run takes about 1.2 s of wall-clock time, with
//! the same figures give or take a millisecond or two (the timer's
//! resolution).

use std::time::Duration;

use futures::StreamExt;
use tokio::time::{sleep, Instant};
use velodrome::FuturesUnordered;

const REQUESTS: [u64; 6] = [10, 12, 14, 16, 18, 20];
const BODY: Duration = Duration::from_millis(100);

/// A request that takes `ms`; returns when it finished, measured inside it.
async fn request(start: Instant, ms: u64) -> (u64, Duration) {
    sleep(Duration::from_millis(ms)).await;
    (ms, start.elapsed())
}

/// The requests' completion times, handled by the plain loop or with
/// `progress_while`.
async fn run(progress: bool) -> Vec<(u64, Duration)> {
    let start = Instant::now();
    let mut set: FuturesUnordered<_> = REQUESTS.iter().map(|&ms| request(start, ms)).collect();
    let mut finished = Vec::new();
    while let Some(done) = set.next().await {
        finished.push(done);
        let body = sleep(BODY); // handle(done).await
        if progress {
            set.progress_while(body).await;
        } else {
            body.await;
        }
    }
    finished
}

fn print(name: &str, finished: &[(u64, Duration)]) {
    println!("{name}");
    for &(ms, at) in finished {
        let late = at.as_secs_f64() * 1e3 - ms as f64;
        println!("  {ms:>2} ms request finished at {at:>9.1?} (late by {late:>5.1} ms)");
    }
}

fn main() {
    let real_time = std::env::args().any(|arg| arg == "--real-time");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(!real_time)
        .build()
        .expect("a current-thread runtime");
    println!(
        "{} requests of 10-20 ms, a loop body of {BODY:?} per output ({} clock)\n",
        REQUESTS.len(),
        if real_time { "real" } else { "paused" }
    );
    let plain = rt.block_on(run(false));
    print(
        "plain loop: `while let Some(x) = set.next().await { handle(x).await }`",
        &plain,
    );
    let progressed = rt.block_on(run(true));
    print(
        "with progress: `... { set.progress_while(handle(x)).await }`",
        &progressed,
    );
    let worst = |finished: &[(u64, Duration)]| {
        finished
            .iter()
            .map(|&(ms, at)| at.saturating_sub(Duration::from_millis(ms)))
            .max()
            .unwrap_or_default()
    };
    println!(
        "\nworst lateness: plain loop {:.1} ms, with progress {:.1} ms",
        worst(&plain).as_secs_f64() * 1e3,
        worst(&progressed).as_secs_f64() * 1e3
    );
}
