//! Tail latency of a neighbour task: what a task draining a busy set costs
//! the other tasks of its runtime, for futures-util's `FuturesUnordered`,
//! velodrome, and velodrome inside `tokio::task::coop::unconstrained`.
//!
//! On a current-thread runtime, a load task keeps 10,000 always-ready
//! children (2 µs of CPU each) in its set for one second, pushing a new one
//! for each that completes; a probe task ticks a 1 ms interval and records
//! how late each tick runs (ticks missed during a stall fire afterwards, each
//! counted with its own lateness). futures-util's set never returns `Pending`
//! while children are ready, so the load task holds the thread for the whole
//! second; velodrome spends the task's cooperative budget and yields after at
//! most 128 outputs. Every number comes from this run.
//!
//! Run: `cargo run --release --example tail_latency`.

#[path = "scenarios/mod.rs"]
mod scenarios;

fn main() {
    scenarios::tail::run(false).print();
}
