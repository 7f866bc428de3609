//! Priority lanes.
//!
//! A child is pushed into one of [`LANES`] lanes. Each lane has its own woken
//! bits and its own due set, so each lane has its own cycles; at every child
//! boundary the poller serves the highest lane with work, except that a
//! lower lane kept waiting for [`FuturesUnordered::starvation_bound`]
//! higher-lane polls is served first (see [`LaneShares`]).
//!
//! [`FuturesUnordered::starvation_bound`]: crate::FuturesUnordered::starvation_bound

/// Number of lanes.
pub(crate) const LANES: usize = 3;

/// Lane of [`Priority::NORMAL`], the lane of a plain `push`.
pub(crate) const NORMAL: usize = Priority::NORMAL.lane();

/// Default for [`FuturesUnordered::starvation_bound`](crate::FuturesUnordered::starvation_bound).
pub(crate) const DEFAULT_STARVATION_BOUND: u32 = 16;

/// The lane a child is polled in.
///
/// Woken children in a higher lane are polled before woken children in a
/// lower lane; a child woken in a higher lane while the set works through a
/// lower lane is polled at the next child boundary. Lower lanes keep a
/// guaranteed share: see
/// [`FuturesUnordered::set_starvation_bound`](crate::FuturesUnordered::set_starvation_bound).
///
/// ```
/// use velodrome::{FuturesUnordered, Priority};
///
/// let set = FuturesUnordered::new();
/// set.push_with_priority(std::future::ready("frame to the sound card"), Priority::HIGH);
/// set.push_with_priority(std::future::ready("read more from the network"), Priority::LOW);
/// assert!(Priority::HIGH > Priority::NORMAL && Priority::NORMAL > Priority::LOW);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Priority(Lane);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    High = 0,
    Normal = 1,
    Low = 2,
}

impl Priority {
    /// Polled before everything else (the sound card).
    pub const HIGH: Priority = Priority(Lane::High);
    /// The lane of [`FuturesUnordered::push`](crate::FuturesUnordered::push).
    pub const NORMAL: Priority = Priority(Lane::Normal);
    /// Polled when nothing above is woken, and when its share is due (the
    /// network, bulk work).
    pub const LOW: Priority = Priority(Lane::Low);

    /// Lane index: 0 is the highest.
    #[inline]
    pub(crate) const fn lane(self) -> usize {
        self.0 as usize
    }

    /// The priority of lane index `lane` (below `LANES`).
    #[inline]
    pub(crate) fn of_lane(lane: usize) -> Priority {
        match lane {
            0 => Priority::HIGH,
            1 => Priority::NORMAL,
            _ => Priority::LOW,
        }
    }
}

impl Default for Priority {
    /// [`Priority::NORMAL`].
    fn default() -> Self {
        Priority::NORMAL
    }
}

impl PartialOrd for Priority {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Priority {
    /// Higher priority compares greater.
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        other.lane().cmp(&self.lane())
    }
}

/// The starvation rule's bookkeeping.
///
/// `waited[l]` counts polls served from lanes above `l` while lane `l` had
/// work. When it reaches the bound, lane `l` is served next. So a lane with
/// work is polled at least once per `bound + LANES - 1` child polls: at most
/// `bound` polls of higher lanes, then at most `LANES - 2` other starving
/// lanes ahead of it.
#[derive(Debug)]
pub(crate) struct LaneShares {
    pub(crate) bound: u32,
    waited: [u32; LANES],
    /// The largest `waited[l]` seen when lane `l` was served (statistics).
    pub(crate) longest: [u32; LANES],
}

impl LaneShares {
    pub(crate) fn new() -> Self {
        Self {
            bound: DEFAULT_STARVATION_BOUND,
            waited: [0; LANES],
            longest: [0; LANES],
        }
    }

    /// Whether lane `lane` has waited its full share.
    #[inline]
    pub(crate) fn is_starving(&self, lane: usize) -> bool {
        self.waited[lane] >= self.bound
    }

    /// Records a poll in `lane`; `has_work(l)` tells whether lane `l` of
    /// the mask `lower` (lanes below `lane` that may hold children) is
    /// waiting.
    #[inline]
    pub(crate) fn record_poll(
        &mut self,
        lane: usize,
        lower: u8,
        mut has_work: impl FnMut(usize) -> bool,
    ) {
        self.longest[lane] = self.longest[lane].max(self.waited[lane]);
        self.waited[lane] = 0;
        if lower == 0 {
            return;
        }
        for l in lane + 1..LANES {
            if lower & 1 << l != 0 && has_work(l) {
                self.waited[l] = self.waited[l].saturating_add(1);
            }
        }
    }
}
