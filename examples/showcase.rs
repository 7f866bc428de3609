//! velodrome next to futures-util's `FuturesUnordered`, measured: fairness,
//! priority lanes, and the tail latency of a neighbour task.
//!
//! Runs short versions of `examples/fairness.rs`, `examples/audio_priority.rs`
//! and `examples/tail_latency.rs` (each explains its scenario; run them for
//! the full tables) and prints a compact report. Every number comes from
//! this run; expect noise in max and p99 values on a busy machine (the first
//! line says how busy).
//!
//! Run: `cargo run --release --example showcase` (about 5 s).

#[path = "scenarios/mod.rs"]
mod scenarios;

use std::time::{Duration, Instant};

use scenarios::{audio, fairness, tail, Noise};

fn main() {
    let start = Instant::now();
    println!("velodrome showcase: velodrome vs futures-util 0.3 FuturesUnordered");
    println!("{}", Noise::measure(Duration::from_millis(300)).describe());

    println!();
    println!("1. Fairness: {}", fairness::setup());
    let report = fairness::run(true);
    report.print_summary();
    println!("{}", report.interpretation());
    println!("{}", report.explain_with_stats());

    println!();
    let report = audio::run(true);
    println!("2. Priority: {}", report.setup());
    report.print_summary();
    println!("{}", report.interpretation());

    println!();
    let report = tail::run(true);
    println!("3. Tail latency: {}", report.setup());
    report.print_summary();
    println!("{}", report.interpretation());

    println!();
    println!("(measured in {:.1} s)", start.elapsed().as_secs_f64());
}
