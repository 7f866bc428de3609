//! The deadlines of a `Deadlines` set: a FIFO run for deadlines that come
//! in order, and an indexed 4-ary min-heap for the others.
//!
//! Most sets use one timeout for every child, so deadlines arrive in
//! nondecreasing order: those are appended to `run` (`O(1)`), and the
//! earliest is at its front (`O(1)` to pop). A deadline earlier than the
//! run's last goes to `heap` (`O(log n)`). The earliest deadline is the
//! smaller of the run's front and the heap's top.
//!
//! `slots[key.index]` says where a slot's entry is (a heap position, or in
//! the run) and holds its tick and generation, so the entry of a child that
//! finishes or is cancelled is found in `O(1)`: removed from the heap in
//! `O(log n)`, or left in the run as a *dead* entry (its slot no longer
//! names it), dropped when it reaches the front. Dead entries never exceed
//! half the run plus 32: past that the run is compacted (`O(run)`, so
//! `O(1)` amortised per removal), which bounds its memory by about twice the
//! live deadlines. The front of the run is always a live entry.
//!
//! A tick is a deadline as signed nanoseconds from the first deadline ever
//! scheduled (`base`), so comparing two is one integer comparison.

use alloc::collections::VecDeque;

use tokio::time::{Duration, Instant};

use crate::sets::key::Key;

/// Children per heap node.
const ARITY: usize = 4;

/// `Slot::at` of a slot without an entry.
const NO_ENTRY: u32 = u32::MAX;
/// `Slot::at` of a slot whose entry is in the run.
const IN_RUN: u32 = u32::MAX - 1;

/// Dead entries the run may hold beyond half its length.
const DEAD_SLACK: usize = 32;

/// One deadline.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tick: i64,
    key: Key,
}

/// Where a slot's entry is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// `NO_ENTRY`, `IN_RUN`, or the heap position.
    at: u32,
    /// Generation of the key the entry belongs to.
    generation: u32,
    /// The entry's tick.
    tick: i64,
}

const VACANT: Slot = Slot {
    at: NO_ENTRY,
    generation: 0,
    tick: 0,
};

/// Invariants: a slot whose `at` is a heap position `p` has
/// `heap[p].key == (index, slot.generation)`; an entry in the run is live
/// iff its slot is `IN_RUN` with its generation; `run` is sorted by tick and
/// its front is live; `dead` counts the run's dead entries; every parent in
/// the heap has a tick at most its children's.
#[derive(Debug)]
pub(super) struct DeadlineQueue {
    run: VecDeque<Entry>,
    heap: Vec<Entry>,
    slots: Vec<Slot>,
    /// Streams with a timeout: the idle timeout, by `Key::index` (only
    /// meaningful while the slot has an entry).
    idle: Vec<Option<Duration>>,
    dead: usize,
    /// The instant tick 0 stands for: the first deadline ever scheduled.
    base: Option<Instant>,
    /// The latest `Instant::now()` seen, as a tick (time only moves
    /// forward, so an entry at or before it is due without asking again).
    seen: i64,
}

impl DeadlineQueue {
    pub(super) fn new() -> Self {
        Self {
            run: VecDeque::new(),
            heap: Vec::new(),
            slots: Vec::new(),
            idle: Vec::new(),
            dead: 0,
            base: None,
            seen: i64::MIN,
        }
    }

    /// Number of (live) deadlines.
    pub(super) fn len(&self) -> usize {
        self.heap.len() + self.run.len() - self.dead
    }

    /// `at` as a tick (saturating at about 292 years either side of
    /// `base`).
    fn tick(&mut self, at: Instant) -> i64 {
        let base = *self.base.get_or_insert(at);
        match at.checked_duration_since(base) {
            Some(after) => nanos(after),
            None => -nanos(base - at),
        }
    }

    /// The instant of a tick made by `tick`.
    fn instant(&self, tick: i64) -> Instant {
        let Some(base) = self.base else {
            unreachable!("a tick exists only once a base was set")
        };
        let offset = Duration::from_nanos(tick.unsigned_abs());
        if tick >= 0 {
            base + offset
        } else {
            base - offset
        }
    }

    /// The earliest entry's tick.
    #[inline]
    fn earliest_tick(&self) -> Option<i64> {
        match (self.run.front(), self.heap.first()) {
            (Some(run), Some(heap)) => Some(run.tick.min(heap.tick)),
            (Some(only), None) | (None, Some(only)) => Some(only.tick),
            (None, None) => None,
        }
    }

    /// The earliest deadline.
    pub(super) fn earliest(&self) -> Option<Instant> {
        self.earliest_tick().map(|tick| self.instant(tick))
    }

    /// Whether the earliest deadline has passed; reads the clock only if
    /// it was not already known to have.
    pub(super) fn earliest_is_due(&mut self) -> bool {
        let Some(first) = self.earliest_tick() else {
            return false;
        };
        if first <= self.seen {
            return true;
        }
        self.seen = self.tick(Instant::now());
        first <= self.seen
    }

    /// `key`'s slot, if its entry is there.
    #[inline]
    fn slot(&self, key: Key) -> Option<Slot> {
        if self.run.is_empty() && self.heap.is_empty() {
            return None;
        }
        let slot = *self.slots.get(key.index())?;
        (slot.at != NO_ENTRY && slot.generation == key.generation).then_some(slot)
    }

    /// Whether a run entry is live.
    #[inline]
    fn is_live(&self, entry: &Entry) -> bool {
        let slot = self.slots[entry.key.index()];
        slot.at == IN_RUN && slot.generation == entry.key.generation
    }

    /// The deadline of `key`'s entry, if it has one.
    pub(super) fn deadline(&self, key: Key) -> Option<Instant> {
        self.slot(key).map(|slot| self.instant(slot.tick))
    }

    /// Adds `key`'s entry: it has none (a new child). `idle` is a stream's
    /// timeout, restarted by [`restart`](Self::restart).
    pub(super) fn schedule(&mut self, key: Key, deadline: Instant, idle: Option<Duration>) {
        let index = key.index();
        if index >= self.slots.len() {
            self.slots.resize(index + 1, VACANT);
        }
        if idle.is_some() || index < self.idle.len() {
            if index >= self.idle.len() {
                self.idle.resize(index + 1, None);
            }
            self.idle[index] = idle;
        }
        let tick = self.tick(deadline);
        let entry = Entry { tick, key };
        let in_order = self.run.back().is_none_or(|last| last.tick <= tick);
        self.slots[index] = Slot {
            at: IN_RUN,
            generation: key.generation,
            tick,
        };
        if in_order {
            self.run.push_back(entry);
        } else {
            let at = self.heap.len();
            self.heap.push(entry);
            self.sift_up(at);
        }
    }

    /// Drops `key`'s entry, if it has one (its child is gone).
    #[inline]
    pub(super) fn forget(&mut self, key: Key) {
        if let Some(slot) = self.slot(key) {
            self.remove(key, slot.at);
        }
    }

    fn remove(&mut self, key: Key, at: u32) {
        self.slots[key.index()].at = NO_ENTRY;
        if at != IN_RUN {
            self.remove_at(at as usize);
            return;
        }
        self.dead += 1;
        self.trim_run();
        if self.dead > DEAD_SLACK && self.dead > self.run.len() / 2 {
            self.compact_run();
        }
    }

    /// Pops dead entries off the front of the run.
    fn trim_run(&mut self) {
        while let Some(front) = self.run.front() {
            if self.is_live(front) {
                break;
            }
            self.run.pop_front();
            self.dead -= 1;
        }
    }

    #[cold]
    fn compact_run(&mut self) {
        let slots = &self.slots;
        self.run.retain(|entry| {
            let slot = slots[entry.key.index()];
            slot.at == IN_RUN && slot.generation == entry.key.generation
        });
        self.dead = 0;
    }

    /// A stream yielded: starts its idle timeout again, if it has one.
    #[inline]
    pub(super) fn restart(&mut self, key: Key) {
        let Some(slot) = self.slot(key) else { return };
        let Some(idle) = self.idle.get(key.index()).copied().flatten() else {
            return;
        };
        self.remove(key, slot.at);
        if let Some(deadline) = Instant::now().checked_add(idle) {
            self.schedule(key, deadline, Some(idle));
        }
    }

    /// Takes the earliest entry out, with its deadline; there is one.
    pub(super) fn pop(&mut self) -> (Key, Instant) {
        let from_run = match (self.run.front(), self.heap.first()) {
            (Some(run), Some(heap)) => run.tick <= heap.tick,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let entry = if from_run {
            let Some(entry) = self.run.pop_front() else {
                unreachable!("the run has a front")
            };
            self.slots[entry.key.index()].at = NO_ENTRY;
            self.trim_run();
            entry
        } else {
            let entry = self.remove_at(0);
            self.slots[entry.key.index()].at = NO_ENTRY;
            entry
        };
        (entry.key, self.instant(entry.tick))
    }

    /// Removes the heap entry at `at`; its slot is the caller's to update.
    fn remove_at(&mut self, at: usize) -> Entry {
        let Some(last) = self.heap.pop() else {
            unreachable!("remove_at on an empty heap")
        };
        if at == self.heap.len() {
            return last;
        }
        let entry = core::mem::replace(&mut self.heap[at], last);
        if at > 0 && last.tick < self.heap[(at - 1) / ARITY].tick {
            self.sift_up(at);
        } else {
            self.sift_down(at);
        }
        entry
    }

    /// Drops every entry; keeps the memory.
    pub(super) fn clear(&mut self) {
        for entry in self.heap.drain(..).chain(self.run.drain(..)) {
            self.slots[entry.key.index()].at = NO_ENTRY;
        }
        self.dead = 0;
    }

    /// Keeps the entries whose key is `live`, and rebuilds the heap:
    /// `O(n log n)`. After a child panicked, this drops its entry.
    pub(super) fn retain(&mut self, mut live: impl FnMut(Key) -> bool) {
        self.compact_run();
        for at in 0..self.run.len() {
            let key = self.run[at].key;
            if !live(key) {
                self.slots[key.index()].at = NO_ENTRY;
            }
        }
        self.compact_run();
        for entry in &self.heap {
            self.slots[entry.key.index()].at = NO_ENTRY;
        }
        self.heap.retain(|entry| live(entry.key));
        // Rebuilt in place: each entry sifts up within the prefix before it.
        for at in 0..self.heap.len() {
            self.sift_up(at);
        }
    }

    /// Moves the heap entry at `at` up to its place, updating slots.
    fn sift_up(&mut self, mut at: usize) {
        let entry = self.heap[at];
        while at > 0 {
            let parent = (at - 1) / ARITY;
            let above = self.heap[parent];
            if above.tick <= entry.tick {
                break;
            }
            self.heap[at] = above;
            self.slots[above.key.index()].at = at as u32;
            at = parent;
        }
        self.heap[at] = entry;
        // A position fits: the set's index space (and so the heap) is 2^31.
        self.slots[entry.key.index()].at = at as u32;
    }

    /// Moves the heap entry at `at` down to its place, updating slots.
    fn sift_down(&mut self, mut at: usize) {
        let entry = self.heap[at];
        let len = self.heap.len();
        loop {
            let first = ARITY * at + 1;
            if first >= len {
                break;
            }
            let children = &self.heap[first..(first + ARITY).min(len)];
            let (offset, below) =
                children
                    .iter()
                    .enumerate()
                    .fold((0, children[0]), |(best, min), (i, child)| {
                        if child.tick < min.tick {
                            (i, *child)
                        } else {
                            (best, min)
                        }
                    });
            if entry.tick <= below.tick {
                break;
            }
            let child = first + offset;
            self.heap[at] = below;
            self.slots[below.key.index()].at = at as u32;
            at = child;
        }
        self.heap[at] = entry;
        self.slots[entry.key.index()].at = at as u32;
    }
}

/// `d` in nanoseconds, saturating.
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|secs| secs.checked_mul(1_000_000_000))
        .and_then(|ns| ns.checked_add(i64::from(d.subsec_nanos())))
        .unwrap_or(i64::MAX)
}
