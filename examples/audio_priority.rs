//! Priority lanes with a hard deadline: a simulated sound card fed by `HIGH`
//! children next to always-busy `LOW` "network" children, all in one set
//! driven by one task of a current-thread tokio runtime; deadline misses and
//! lateness for futures-util's `FuturesUnordered` and for velodrome.
//!
//! Frames become ready when a clock thread (the sound card's interrupt, or an
//! audio callback thread) raises them at their due time, so what is measured
//! is how soon the set hands a ready frame over while the network keeps it
//! busy. Each measured number comes from this run.
//!
//! Options:
//!
//! - `--tokio-timers`: frames await `tokio::time::sleep_until` instead. A
//!   tokio timer fires only when the runtime polls its time driver, between
//!   task polls, and rounds up to a whole millisecond, so this measures the
//!   runtime's timer delivery as much as the set.
//! - `--block-on`: drive the set in the `block_on` future instead of a
//!   spawned task.
//! - `--quick`: fewer frames.
//!
//! Run: `cargo run --release --example audio_priority`.

#[path = "scenarios/mod.rs"]
mod scenarios;

use scenarios::audio::{Config, Driver, Source};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let mut config = Config::new(has("--quick"));
    if has("--tokio-timers") {
        config.source = Source::TokioTimer;
    }
    if has("--block-on") {
        config.driver = Driver::BlockOn;
    }
    scenarios::audio::run_with(config).print();
}
