//! Fairness: how much a busy child takes from its siblings, for futures-util's
//! `FuturesUnordered` and velodrome's.
//!
//! 100 children each need 5 wakes from a helper task that delivers one wake
//! per turn; next to them, hot children burn 5 µs per poll and never finish:
//! one that wakes itself in every poll, or two that wake each other. Counts
//! polls of the hot children until the 100 others are done, `poll_next`
//! calls, helper turns and the time taken; every number comes from this run.
//!
//! futures-util (0.3.34) ends a `poll_next` call after two children woke
//! themselves during their poll, or after `len` polls, so a self-waking child
//! gets at most two polls per call there, and one per cycle in velodrome. A
//! child woken by a *sibling* is not a self-wake to futures-util: a pair that
//! wakes each other is polled until `len` polls are used up, in every call.
//! velodrome polls each child at most once per cycle however it was woken.
//!
//! Run: `cargo run --release --example fairness`.

#[path = "scenarios/mod.rs"]
mod scenarios;

fn main() {
    scenarios::fairness::run(false).print();
}
