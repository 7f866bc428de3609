//! The per-child state word kept in each waker record.
//!
//! ```text
//!  31                          3   2 1   0
//! +-----------------------------+-----+---+
//! |         generation          | lane| O |
//! +-----------------------------+-----+---+
//! ```
//!
//! - `O` (`OCCUPIED`): a child lives in the slot. Set by the pusher after it
//!   wrote the future (rule S1), cleared by the poller before it drops it.
//! - `lane`: the child's priority lane, fixed for its life.
//! - `generation`: bumped every time the slot is freed. A waker carries the
//!   low `TAG_BITS` bits of the generation it was made for (rule G1), so a
//!   stale waker of a finished child does not wake the slot's next occupant.
//!
//! This module is plain arithmetic: no atomics, no `unsafe`.

pub(crate) const OCCUPIED: u32 = 1;
const LANE_SHIFT: u32 = 1;
const LANE_MASK: u32 = 0b11 << LANE_SHIFT;
const GENERATION_SHIFT: u32 = 3;
const GENERATION_ONE: u32 = 1 << GENERATION_SHIFT;

/// Bits of the generation carried by a waker pointer; records are aligned to
/// `1 << TAG_BITS` bytes so the low bits of their address are free.
pub(crate) const TAG_BITS: u32 = 4;
pub(crate) const TAG_MASK: usize = (1 << TAG_BITS) - 1;

/// State of a slot that was just filled with a child in `lane`.
#[inline]
pub(crate) const fn occupy(state: u32, lane: usize) -> u32 {
    (state & !LANE_MASK) | ((lane as u32) << LANE_SHIFT) | OCCUPIED
}

/// State of a slot whose child was just dropped: next generation, vacant.
#[inline]
pub(crate) const fn vacate(state: u32) -> u32 {
    (state & !(OCCUPIED | LANE_MASK)).wrapping_add(GENERATION_ONE)
}

#[inline]
pub(crate) const fn is_occupied(state: u32) -> bool {
    state & OCCUPIED != 0
}

#[inline]
pub(crate) const fn lane(state: u32) -> usize {
    ((state & LANE_MASK) >> LANE_SHIFT) as usize
}

/// The full generation, as kept in a `Key`.
#[inline]
pub(crate) const fn generation(state: u32) -> u32 {
    state >> GENERATION_SHIFT
}

/// The tag a waker made now for this occupant carries.
#[inline]
pub(crate) const fn tag(state: u32) -> usize {
    (state >> GENERATION_SHIFT) as usize & TAG_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vacate_changes_the_tag_and_clears_occupancy_and_lane() {
        let mut state = 0;
        for lane in [0, 1, 2, 1] {
            let full = occupy(state, lane);
            assert!(is_occupied(full));
            assert_eq!(super::lane(full), lane);
            assert_eq!(tag(full), tag(state));
            state = vacate(full);
            assert!(!is_occupied(state));
            assert_eq!(super::lane(state), 0);
            assert_eq!(tag(state), (tag(full) + 1) & TAG_MASK);
        }
    }

    #[test]
    fn generation_wraps_without_touching_low_bits() {
        let full = occupy(!OCCUPIED & !LANE_MASK, 2);
        let next = vacate(full);
        assert!(!is_occupied(next));
        assert_eq!(lane(next), 0);
        assert_eq!(tag(next), 0);
    }
}
