//! [`Stats`]: what a set's poller did, counted by the poller itself.
//!
//! Every counter is a plain integer in the set, bumped by the owner of
//! `&mut set` on its own path (a child poll, an output, a refill, a yield):
//! no atomic operation, and nothing on the wake path.

use crate::engine::lanes::LANES;

/// What a set's poller has done since the set was made, from
/// [`FuturesUnordered::stats`](crate::FuturesUnordered::stats) and the
/// same method on every set type.
///
/// The poller keeps these counters itself, in plain integers: no atomic
/// operation is added anywhere, and wakes (from any thread) are not counted
/// one by one; `polls` counts the children the cycles found woken instead.
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FuturesUnordered;
///
/// # futures::executor::block_on(async {
/// let mut set = FuturesUnordered::new();
/// for n in 0..3 {
///     set.push(std::future::ready(n));
/// }
/// while set.next().await.is_some() {}
/// let stats = set.stats();
/// assert_eq!(stats.polls, 3);
/// assert_eq!(stats.outputs, 3);
/// assert_eq!(stats.cycles, 1, "one cycle polled the three new children");
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Child polls (a stream's poll counts once, whatever it yields). Each
    /// is of a child the poller found woken, or a new push: this is also
    /// the number of children found woken, counted once per cycle however
    /// many times each was woken.
    pub polls: u64,
    /// Outputs the set returned from `poll_next` (a future's output, a
    /// stream's item, and for `IndexedStreamsUnordered` a stream's end).
    pub outputs: u64,
    /// Cycles started: a lane's woken children (and new pushes) taken for
    /// polling, each to be polled once; `polls / cycles` is the children
    /// per cycle.
    pub cycles: u64,
    /// `Pending`s returned by the cycle rule: a cycle produced no output
    /// and more children were woken, so the set woke its own task instead
    /// of starting another cycle in the same call.
    pub cycle_yields: u64,
    /// Yields after 128 outputs in one task poll with no `Pending` between
    /// them (feature `tokio`, inside a runtime).
    pub output_budget_yields: u64,
    /// Stops because the task's tokio budget was exhausted before a child
    /// poll (feature `tokio`).
    pub tokio_budget_yields: u64,
    /// Child polls per lane: `[HIGH, NORMAL, LOW]`.
    pub lane_polls: [u64; LANES],
    /// Per lane, `[HIGH, NORMAL, LOW]`: the most child polls of higher
    /// lanes the lane waited through, with woken children, before one of its
    /// own was polled. The starvation bound caps it (see
    /// `set_starvation_bound`).
    pub longest_lane_wait: [u32; LANES],
}

/// The poller's own counters (the rest of [`Stats`] lives with the budget
/// and the lane shares).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) outputs: u64,
    pub(crate) cycles: u64,
    pub(crate) cycle_yields: u64,
    pub(crate) lane_polls: [u64; LANES],
}
