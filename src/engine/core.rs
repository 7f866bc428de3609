//! The scheduling core shared by every set type: storage, the push path,
//! keys, and the poll loop. `FuturesUnordered`, `StreamsUnordered` and
//! `IndexedStreamsUnordered` are thin layers that say what polling one child
//! means (see [`Step`]).

use alloc::vec::Vec;
use core::future::Future;
use core::marker::PhantomData;
use core::mem;
use core::ops::Range;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::task::{Context, Poll, Waker};

use futures_core::stream::Stream;

use crate::engine::budget::Budget;
use crate::engine::due::DueSet;
use crate::engine::header::{Header, RecordPage};
use crate::engine::lanes::{LaneShares, Priority, LANES, NORMAL};
use crate::engine::loom::{AtomicUsize, Ordering::*};
use crate::engine::page::{locate, page_base, Word, MAX_CHILDREN, WORD_BITS};
use crate::engine::slots::Slots;
use crate::engine::stash::Stash;
use crate::engine::state;
use crate::engine::stats::{Counters, Stats};
use crate::engine::wake_set::{MarkBatch, MarkOutcome};
use crate::engine::waker;
use crate::sets::key::Key;

mod progress;

/// What one poll of a child amounted to.
pub(crate) enum Step<R> {
    /// Not ready; its waker will queue it again.
    Pending,
    /// Finished with an output: remove the child, yield `R`.
    Done(R),
    /// Produced `R` and lives on (a stream item): yield `R`, poll it again
    /// next cycle.
    Item(R),
    /// Finished without an output (an exhausted stream): remove it.
    Ended,
    /// Produced `R` for the stash and lives on: yield `R`, and poll it
    /// again only once `R` is handed out (rule K1).
    Parked(R),
}

impl<R> Step<R> {
    /// One poll of a future child: its output finishes it.
    #[inline(always)]
    pub(crate) fn future<F: Future<Output = R>>(child: Pin<&mut F>, cx: &mut Context<'_>) -> Self {
        match child.poll(cx) {
            Poll::Ready(output) => Step::Done(output),
            Poll::Pending => Step::Pending,
        }
    }
}

impl<I> Step<I> {
    /// One poll of a stream child: an item, or the end without an output.
    #[inline(always)]
    pub(crate) fn stream<S: Stream<Item = I>>(child: Pin<&mut S>, cx: &mut Context<'_>) -> Self {
        match child.poll_next(cx) {
            Poll::Ready(Some(item)) => Step::Item(item),
            Poll::Ready(None) => Step::Ended,
            Poll::Pending => Step::Pending,
        }
    }
}

impl<I> Step<Option<I>> {
    /// One poll of a stream child whose end is an output too (`None`).
    #[inline(always)]
    pub(crate) fn stream_to_end<S: Stream<Item = I>>(
        child: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Self {
        match child.poll_next(cx) {
            Poll::Ready(Some(item)) => Step::Item(Some(item)),
            Poll::Ready(None) => Step::Done(None),
            Poll::Pending => Step::Pending,
        }
    }
}

pub(crate) struct Core<T> {
    slots: Slots<T>,
    header: HeaderRef,
    /// Pushes since the last `sync`; each claims one index (see
    /// `claimed_index`).
    claims: AtomicUsize,
    /// Bit `l` set when a push since the last `sync` went to lane `l`, for
    /// every lane but NORMAL (see `sync_slow`).
    pushed_lanes: AtomicUsize,
    /// Bit `l` set once lane `l` may hold children: lanes outside it have no
    /// due children and no woken bits, so the poll loop skips them.
    lanes_in_use: u8,
    /// Free indices below `fresh`; pushes take from the end.
    recycled: Vec<u32>,
    /// Every index at or above `fresh` is free and not in `recycled`.
    pub(crate) fresh: usize,
    /// Every index at or above this one never had an occupant (`fresh` goes
    /// back to 0 on `clear`; this does not).
    ever_occupied: usize,
    /// Children known to the poller (pushes since `sync` excluded).
    pub(crate) len: usize,
    /// Push order, by index: the stamp `sync` gave the slot's occupant when
    /// it adopted it; larger is newer. The iterators yield the newest child
    /// first, as futures-util's do. Grows a page at a time, like the slots.
    stamps: Vec<u32>,
    /// The stamp of the next adopted push.
    next_stamp: u32,
    /// The order of the last `&mut` iteration (`adopt_newest_first`), kept
    /// so that iterating again allocates nothing and a forgotten iterator
    /// leaks nothing.
    pub(crate) order: Vec<u32>,
    due: [DueSet; LANES],
    shares: LaneShares,
    budget: Budget,
    /// What the poller did (`stats`).
    counters: Counters,
    terminated: bool,
    /// The most children `try_push` admits; `NO_LIMIT` for none. Read
    /// through `&self` by `try_push`, written only under `&mut self`.
    limit: usize,
    /// Tasks whose `poll_room` found the set full. Every operation that
    /// frees a slot holds `&mut self`, and so does `poll_room`, so a plain
    /// list needs no atomics; they are all woken once a freed slot leaves
    /// the set below its limit (`room_to_wake_after`). Empty (one branch
    /// per completion) when nobody waits.
    room: Vec<Waker>,
    /// Outputs kept by `progress_with` for the next `poll_next` calls, and
    /// the streams parked meanwhile (rule K1).
    stash: Stash,
    _marker: PhantomData<T>,
}

/// `Core::limit` of a set without a limit.
const NO_LIMIT: usize = usize::MAX;

/// The tasks waiting for room, taken out of the set while the slot that
/// makes room is freed (its child dropped, which may panic). `wake` wakes
/// them and hands the list's buffer back; dropped instead (an unwind), it
/// wakes them too.
struct WakeRoom(Vec<Waker>);

impl WakeRoom {
    fn wake(mut self) -> Vec<Waker> {
        let mut waiters = mem::take(&mut self.0);
        waiters.drain(..).for_each(Waker::wake);
        waiters
    }
}

impl Drop for WakeRoom {
    fn drop(&mut self) {
        self.0.drain(..).for_each(Waker::wake);
    }
}

/// The set's own reference to the header; a field of its own so it is
/// released even when a child's `Drop` panics during the set's drop.
struct HeaderRef(NonNull<Header>);

impl Drop for HeaderRef {
    fn drop(&mut self) {
        /// Gives up the set's reference, also if a child dropped by `close`
        /// panics.
        struct Release(NonNull<Header>);
        impl Drop for Release {
            fn drop(&mut self) {
                // SAFETY: we give up the set's reference and never use it
                // again.
                unsafe { Header::ref_dec(self.0) };
            }
        }
        let release = Release(self.0);
        // SAFETY: we hold the set's reference (S3).
        let header = unsafe { self.0.as_ref() };
        // Handles' later pushes fail, and handles wake no parent from now
        // on; the pushes not adopted are dropped (rule I1).
        header.inject.close();
        // Nobody will poll the parent on our behalf any more.
        drop(header.parent.take());
        drop(release);
    }
}

// SAFETY: the core owns its `T`s (so it is `Send` when they are) and shares
// only the header with other threads, which is all atomics (rule S3).
unsafe impl<T: Send> Send for Core<T> {}
// SAFETY: through `&self`, other threads can push (moving a `T` in: needs
// `Send`) and iterate (sharing `&T`: needs `Sync`); pushes synchronise
// through atomics only (rule S1).
unsafe impl<T: Send + Sync> Sync for Core<T> {}

enum Pick {
    /// Poll this child of this lane next.
    Child(usize, usize),
    /// A lane has woken children but already had its cycle in this call.
    Yield,
    /// Nothing is woken.
    Idle,
}

impl<T> Core<T> {
    pub(crate) fn new() -> Self {
        Self {
            slots: Slots::new(),
            header: HeaderRef(Header::new()),
            claims: AtomicUsize::new(0),
            pushed_lanes: AtomicUsize::new(0),
            lanes_in_use: 0,
            recycled: Vec::new(),
            fresh: 0,
            ever_occupied: 0,
            len: 0,
            stamps: Vec::new(),
            next_stamp: 0,
            order: Vec::new(),
            due: Default::default(),
            shares: LaneShares::new(),
            budget: Budget::default(),
            counters: Counters::default(),
            terminated: false,
            limit: NO_LIMIT,
            room: Vec::new(),
            stash: Stash::new(),
            _marker: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        // Relaxed: a count, not a publication; concurrent pushes may or may
        // not be included.
        self.len + self.claims.load(Relaxed) + self.stash.len()
    }

    #[inline]
    pub(crate) fn is_terminated(&self) -> bool {
        // Relaxed: a push since the set ended makes it live again, as does
        // a handle (made since: the set ended with none alive).
        self.terminated
            && self.claims.load(Relaxed) == 0
            && self.stash.len() == 0
            && !self.header().inject.may_receive()
    }

    /// A new push handle's share of the header: one reference (S3) and one
    /// live handle (rule I1). The handle gives both back when it drops.
    pub(crate) fn new_handle(&self) -> NonNull<Header> {
        let header = self.header();
        header.ref_inc();
        header.inject.add_handle();
        self.header.0
    }

    /// Adopts the children pushed through handles: each becomes an ordinary
    /// push (a claim), adopted with the others by the `sync` that follows.
    #[inline]
    fn adopt_injected(&mut self) {
        if self.header().inject.has_nodes() {
            self.adopt_injected_slow();
        }
    }

    #[cold]
    fn adopt_injected_slow(&mut self) {
        // SAFETY: only handles of this set push into its header, and they
        // push `T`s (`PushHandle<T>` is made by `new_handle` on a `Core<T>`),
        // rule I1.
        unsafe {
            self.header().inject.take::<T>(|child, priority| {
                let _ = self.push(child, priority);
            })
        };
    }

    /// Adds a child; see `FuturesUnordered::push_with_priority`.
    #[inline]
    pub(crate) fn push(&self, child: T, priority: Priority) -> Key {
        // Relaxed: the counter only hands out distinct claims; the claimed
        // slot is published by the Release store of its state in `fill`.
        let claim = self.claims.fetch_add(1, Relaxed);
        self.fill(claim, child, priority)
    }

    /// `push` if the set holds fewer children than its limit, else the
    /// child back; see `FuturesUnordered::try_push`.
    #[inline]
    pub(crate) fn try_push(&self, child: T, priority: Priority) -> Result<Key, T> {
        if self.limit == NO_LIMIT {
            return Ok(self.push(child, priority));
        }
        match self.claim_within_limit() {
            Some(claim) => Ok(self.fill(claim, child, priority)),
            None => Err(child),
        }
    }

    /// A claim, as `push` takes, but only while `len + claims < limit`, so
    /// concurrent `try_push`es never take the set past its limit (plain
    /// pushes may; then this claims nothing).
    #[inline]
    fn claim_within_limit(&self) -> Option<usize> {
        // `len` changes only under `&mut self`, so it is stable while we
        // hold `&self`; concurrent claims are counted by the CAS below.
        let room = self.limit.saturating_sub(self.len + self.stash.len());
        // Relaxed: as in `push`, the counter only hands out distinct claims
        // (every change to it is a read-modify-write, so each claim number
        // goes to one caller); the slot is published in `fill`.
        let mut claims = self.claims.load(Relaxed);
        while claims < room {
            match self
                .claims
                .compare_exchange_weak(claims, claims + 1, Relaxed, Relaxed)
            {
                Ok(_) => return Some(claims),
                Err(now) => claims = now,
            }
        }
        None
    }

    /// Writes `child` into the index of `claim` and publishes it.
    #[inline(always)]
    fn fill(&self, claim: usize, child: T, priority: Priority) -> Key {
        let index = self.claimed_index(claim);
        if index >= MAX_CHILDREN {
            // Unwinding here would leave a claim without a child; this is
            // billions of children, far past any memory, so stop.
            crate::engine::loom::abort();
        }
        let (page, offset) = locate(index);
        let records = self.header().page_or_alloc(self.header.0, page);
        let slot = self.slots.get_or_alloc(page, offset);
        // SAFETY: the claim makes `index` ours alone (rule S1): no other push
        // got it, and the poller cannot run while we hold `&self`. The slot
        // is vacant, so nothing is overwritten.
        unsafe { slot.write(child) };
        let lane = priority.lane();
        if lane != NORMAL {
            // Relaxed: read only by `sync`, which `&mut self` orders after
            // this push. The load spares a read-modify-write once the bit is
            // set.
            if self.pushed_lanes.load(Relaxed) & (1 << lane) == 0 {
                self.pushed_lanes.fetch_or(1 << lane, Relaxed);
            }
        }
        if index >= self.ever_occupied {
            records.init_record(offset);
        }
        let record = records.record(offset);
        // Relaxed: only the claimant writes a vacant record's state.
        let vacant = record.state.load(Relaxed);
        // Release: publishes the child written above to readers through
        // `&self` (Acquire in `occupant`) and to wakers reading the lane.
        record.state.store(state::occupy(vacant, lane), Release);
        Key {
            index: index as u32,
            generation: state::generation(vacant),
        }
    }

    /// The index the `claim`-th push since the last `sync` fills.
    #[inline]
    fn claimed_index(&self, claim: usize) -> usize {
        let recycled = self.recycled.len();
        if claim < recycled {
            self.recycled[recycled - 1 - claim] as usize
        } else {
            self.fresh + (claim - recycled)
        }
    }

    /// Adopts the pushes made through `&self` since the last call: they
    /// are marked woken, so the next refill of their lane starts a cycle
    /// with them (rule C1). Consecutive pushes share one mark per word.
    ///
    /// Outside `poll_next` (in `cancel`, `iter_mut`, ...), marking them may
    /// turn an idle lane woken; the parent is then woken too, or a later
    /// wake of any child would find the bits already set and not wake it
    /// (rule R1).
    #[inline]
    pub(crate) fn sync(&mut self) {
        self.adopt_injected();
        // Relaxed: `&mut self` orders every push before us.
        if self.claims.load(Relaxed) != 0 && self.sync_slow() == MarkOutcome::NotifyParent {
            self.header().parent.wake();
        }
    }

    /// `sync` without the parent wake, for callers that never need it: the
    /// poll loop (it looks at the bits itself), `clear` and drop (they
    /// discard them), `into_iter` (the set is never polled again).
    #[inline]
    fn sync_without_wake(&mut self) {
        self.adopt_injected();
        // Relaxed: as in `sync`.
        if self.claims.load(Relaxed) != 0 {
            let _ = self.sync_slow();
        }
    }

    /// `sync` for `poll_next`, which looks at the bits itself right after.
    ///
    /// When every push went to NORMAL (at most one into a recycled slot) and
    /// that lane has no cycle in progress and no woken child, the pushes
    /// are the lane's next cycle on
    /// their own: they go straight into its due set, with no atomic
    /// operation (rule C1). The lane then counts as refilled in this call
    /// (its due set is not empty), so a child that wakes itself during this
    /// first poll is polled again in the next call, not in this one (C2).
    /// Returns whether the pushes went straight into NORMAL's due set.
    #[inline(always)]
    fn adopt_for_poll(&mut self) -> bool {
        self.adopt_injected();
        // Relaxed: as in `sync`.
        let claims = self.claims.load(Relaxed);
        if claims == 0 {
            return false;
        }
        // Relaxed: `&mut self` orders every push before us; `has_woken` is
        // a hint (a wake it misses is served by the next refill, W3).
        // At most one recycled index, so the due set takes one entry per
        // word of fresh indices plus one (a batch into scattered recycled
        // slots is marked instead, which merges it by word).
        if self.pushed_lanes.load(Relaxed) == 0
            && claims.min(self.recycled.len()) <= 1
            && self.due[NORMAL].is_empty()
            && !self.header().has_woken(NORMAL)
        {
            self.adopt_into_due(claims);
            true
        } else {
            let _ = self.sync_slow();
            false
        }
    }

    /// `adopt_for_poll` for handles' pushes found when a `poll_next` would
    /// go idle (rule I1); out of line, so the call at the top of
    /// `poll_next` stays inlined.
    #[cold]
    #[inline(never)]
    fn adopt_late(&mut self) -> bool {
        self.adopt_for_poll()
    }

    /// `adopt_for_poll`'s direct path: the `claims` pushes, all in NORMAL,
    /// become NORMAL's cycle, in claim order.
    #[inline(always)]
    fn adopt_into_due(&mut self, claims: usize) {
        let Adoption {
            recycled_start,
            fresh,
        } = self.begin_adoption(claims, 0);
        self.counters.cycles += 1;
        if claims == 1 {
            let index = self.claimed_index(0);
            self.due[NORMAL].push_word((index / WORD_BITS) as u32, 1 << (index % WORD_BITS));
            self.stamp_one(index);
        } else {
            let due = &mut self.due[NORMAL];
            for &index in self.recycled[recycled_start..].iter().rev() {
                let index = index as usize;
                due.push_word((index / WORD_BITS) as u32, 1 << (index % WORD_BITS));
            }
            let mut index = fresh.start;
            while index < fresh.end {
                let count = (WORD_BITS - index % WORD_BITS).min(fresh.end - index);
                let bits = (Word::MAX >> (WORD_BITS - count)) << (index % WORD_BITS);
                due.push_word((index / WORD_BITS) as u32, bits);
                index += count;
            }
            self.stamp_claims(recycled_start, fresh.clone());
        }
        self.end_adoption(claims, recycled_start, fresh);
    }

    #[cold]
    fn sync_slow(&mut self) -> MarkOutcome {
        // Relaxed, and plain loads and stores rather than swaps: `&mut self`
        // orders every push before us and excludes any other.
        let claims = self.claims.load(Relaxed);
        let other_lanes = self.pushed_lanes.load(Relaxed) as u8;
        if other_lanes != 0 {
            self.pushed_lanes.store(0, Relaxed);
        }
        let Adoption {
            recycled_start,
            fresh,
        } = self.begin_adoption(claims, other_lanes);
        // With every push in the NORMAL lane (the usual case), the lanes need
        // not be read back, and fresh indices are marked a word at a time.
        let one_lane = other_lanes == 0;
        let outcome = if claims == 1 {
            // The steady state (one push per completion): mark it directly.
            let index = self.claimed_index(0);
            self.stamp_one(index);
            let (page, offset) = locate(index);
            let records = self.page(page);
            records.mark(self.header(), claim_lane(records, offset, one_lane), offset)
        } else {
            self.stamp_claims(recycled_start, fresh.clone());
            self.mark_claims(&self.recycled[recycled_start..], fresh.clone(), one_lane)
        };
        self.end_adoption(claims, recycled_start, fresh);
        outcome
    }

    /// The first half of adopting `claims` pushes (in the lanes `lanes`
    /// besides NORMAL): where their indices are.
    #[inline]
    fn begin_adoption(&mut self, claims: usize, lanes: u8) -> Adoption {
        // Relaxed: `&mut self` orders every push before us.
        self.claims.store(0, Relaxed);
        self.terminated = false;
        self.lanes_in_use |= lanes | 1 << NORMAL;
        let from_recycled = claims.min(self.recycled.len());
        let recycled_start = self.recycled.len() - from_recycled;
        Adoption {
            recycled_start,
            fresh: self.fresh..self.fresh + (claims - from_recycled),
        }
    }

    /// The second half: the claimed indices are the set's now.
    #[inline]
    fn end_adoption(&mut self, claims: usize, recycled_start: usize, fresh: Range<usize>) {
        self.recycled.truncate(recycled_start);
        self.fresh = fresh.end;
        self.ever_occupied = self.ever_occupied.max(fresh.end);
        self.len += claims;
    }

    /// Gives the one push being adopted, at `index`, its push-order stamp.
    #[inline]
    fn stamp_one(&mut self, index: usize) {
        if index >= self.stamps.len() || self.next_stamp == u32::MAX {
            return self.stamp_one_slow(index);
        }
        self.stamps[index] = self.next_stamp;
        self.next_stamp += 1;
    }

    #[cold]
    fn stamp_one_slow(&mut self, index: usize) {
        self.stamp_claims(self.recycled.len(), index..index + 1);
    }

    /// Gives the pushes being adopted their push-order stamps, in claim
    /// order (the order their `push` calls took their claims): first the
    /// recycled indices from `recycled_start` (claims take them from the
    /// end), then the `fresh` range.
    fn stamp_claims(&mut self, recycled_start: usize, fresh: Range<usize>) {
        if self.stamps.len() < fresh.end {
            self.grow_stamps(fresh.end);
        }
        let claims = self.recycled.len() - recycled_start + fresh.len();
        if claims > (u32::MAX - self.next_stamp) as usize {
            self.renumber_stamps();
        }
        let mut stamp = self.next_stamp;
        for &index in self.recycled[recycled_start..].iter().rev() {
            self.stamps[index as usize] = stamp;
            stamp += 1;
        }
        for slot in &mut self.stamps[fresh] {
            *slot = stamp;
            stamp += 1;
        }
        self.next_stamp = stamp;
    }

    /// Grows `stamps` to the end of the page holding index `end - 1`, so it
    /// covers the same indices as the slot pages.
    #[cold]
    fn grow_stamps(&mut self, end: usize) {
        let (page, _) = locate(end - 1);
        let len = page_base(page + 1);
        self.stamps.reserve_exact(len - self.stamps.len());
        self.stamps.resize(len, 0);
    }

    /// Once per 2^32 adopted pushes: gives the live children the stamps
    /// `0..n` in the same order, so stamps never wrap (the set holds fewer
    /// than 2^31 children, so the next 2^31 pushes fit).
    #[cold]
    fn renumber_stamps(&mut self) {
        let mut live: Vec<u32> = (0..self.fresh)
            .filter(|&index| self.is_occupied(index))
            .map(|index| index as u32)
            .collect();
        live.sort_unstable_by_key(|&index| self.stamps[index as usize]);
        for (stamp, &index) in live.iter().enumerate() {
            self.stamps[index as usize] = stamp as u32;
        }
        self.next_stamp = live.len() as u32;
    }

    /// Whether a child occupies `index` (below `fresh`), as seen by the
    /// owner or by a reader through `&self` that does not read the child.
    #[inline]
    fn is_occupied(&self, index: usize) -> bool {
        let (page, offset) = locate(index);
        // Relaxed: `&mut self` orders the push that wrote the state, and a
        // reader through `&self` loads it again with Acquire (`occupant`)
        // before it touches the child.
        self.header()
            .page(page)
            .is_some_and(|records| state::is_occupied(records.record(offset).state.load(Relaxed)))
    }

    /// Adopts the pushes and puts the indices of the live children in
    /// `self.order`, newest push first (for the iterators that hold `&mut`
    /// or own the set). `O(n log n)`; allocates only to grow `order`.
    /// `consumed`: the set will never be polled again (`into_iter`), so
    /// adopting wakes nobody (a panicking parent waker cannot interrupt it).
    pub(crate) fn adopt_newest_first(&mut self, consumed: bool) {
        if consumed {
            self.sync_without_wake();
        } else {
            self.sync();
        }
        let mut order = mem::take(&mut self.order);
        self.newest_first_into(&mut order);
        self.order = order;
    }

    /// The indices of the live children, newest push first, for a reader
    /// through `&self`. One allocation, `O(n log n)`.
    pub(crate) fn newest_first(&self) -> Vec<u32> {
        let mut order = Vec::new();
        self.newest_first_into(&mut order);
        order
    }

    /// Fills `order` with the indices of the live children, newest push
    /// first: the pushes not adopted yet (newest claim first; through
    /// `&self` some may still be being written, and `occupant` skips those),
    /// then the adopted ones by stamp.
    fn newest_first_into(&self, order: &mut Vec<u32>) {
        // Relaxed: claimed children are read only after their state is
        // loaded with Acquire (`occupant`).
        let claims = self.claims.load(Relaxed);
        let from_recycled = claims.min(self.recycled.len());
        let mut claimed: Vec<u32> = self.recycled[self.recycled.len() - from_recycled..].to_vec();
        claimed.sort_unstable();
        order.clear();
        order.reserve(self.len + claims);
        order.extend(
            (0..claims)
                .rev()
                .map(|claim| self.claimed_index(claim) as u32),
        );
        let unadopted = order.len();
        order.extend(
            (0..self.fresh as u32)
                .filter(|&index| self.is_occupied(index as usize))
                .filter(|index| claimed.binary_search(index).is_err()),
        );
        order[unadopted..]
            .sort_unstable_by_key(|&index| core::cmp::Reverse(self.stamps[index as usize]));
    }

    /// Marks the children of many claims woken: those at `recycled`, and
    /// the `fresh` range, gathering runs into one mark per word.
    #[inline(never)]
    fn mark_claims(&self, recycled: &[u32], fresh: Range<usize>, one_lane: bool) -> MarkOutcome {
        let mut batch = MarkBatch::new(self.header());
        let mut mark = |index: usize, end: usize| -> usize {
            let (page, offset) = locate(index);
            let records = self.page(page);
            // One lane: the rest of this word's run at once.
            let count = if one_lane {
                (WORD_BITS - offset % WORD_BITS).min(end - index)
            } else {
                1
            };
            let bits = (Word::MAX >> (WORD_BITS - count)) << (offset % WORD_BITS);
            let lane = claim_lane(records, offset, one_lane);
            batch.add(records, lane, offset / WORD_BITS, bits);
            count
        };
        for &index in recycled {
            mark(index as usize, index as usize + 1);
        }
        let mut index = fresh.start;
        while index < fresh.end {
            index += mark(index, fresh.end);
        }
        batch.finish()
    }

    /// The shared header. Its lifetime is not tied to the borrow of `self`
    /// so that records can be used while `self` is mutated: the header
    /// outlives the set, which holds a reference to it (S3).
    #[inline]
    fn header<'h>(&self) -> &'h Header {
        // SAFETY: the set holds a reference to the header (S3), and callers
        // use it only while they hold the set.
        unsafe { self.header.0.as_ref() }
    }

    /// The record page `page`, which exists because a child was pushed there.
    /// Unbounded lifetime: the header outlives the set (S3).
    #[inline]
    fn page<'h>(&self, page: usize) -> &'h RecordPage {
        // The header owns its pages until it is freed (S2).
        self.header()
            .page(page)
            .expect("record page of a pushed child")
    }

    /// Removes every child, dropping each exactly once; keeps the storage.
    pub(crate) fn clear(&mut self) {
        // No parent wake for the adopted pushes: they are dropped below,
        // with every woken bit.
        self.sync_without_wake();
        let room = self.room_to_wake_after(0);
        self.drop_children();
        if let Some(room) = room {
            self.room = room.wake();
        }
        self.recycled.clear();
        self.fresh = 0;
        // As in futures-util: a cleared set is a fresh, unterminated one.
        self.terminated = false;
        let header = self.header();
        for (lane, due) in self.due.iter_mut().enumerate() {
            // Throw away the cycle and the wakes of the dropped children.
            header.refill(lane, due);
            due.clear();
        }
        self.stash.clear();
    }

    /// What the poller has done so far (see [`Stats`]).
    pub(crate) fn stats(&self) -> Stats {
        let counters = &self.counters;
        Stats {
            polls: counters.lane_polls.iter().sum(),
            outputs: counters.outputs,
            cycles: counters.cycles,
            cycle_yields: counters.cycle_yields,
            output_budget_yields: self.budget.output_yields,
            tokio_budget_yields: self.budget.tokio_yields,
            lane_polls: counters.lane_polls,
            longest_lane_wait: self.shares.longest,
        }
    }

    pub(crate) fn shares_mut(&mut self) -> &mut LaneShares {
        &mut self.shares
    }

    pub(crate) fn shares(&self) -> &LaneShares {
        &self.shares
    }

    /// Drops every child, continuing past a child whose `Drop` panics.
    pub(crate) fn drop_children(&mut self) {
        /// On unwind out of one child's `Drop`, drops the rest.
        struct Continue<'a, T>(&'a mut Core<T>);
        impl<T> Drop for Continue<'_, T> {
            fn drop(&mut self) {
                self.0.drop_children();
            }
        }

        if self.len == 0 {
            return;
        }
        for index in 0..self.fresh {
            let (page, offset) = locate(index);
            let records = self.page(page);
            // Relaxed: `&mut self` orders the push that wrote it.
            let current = records.record(offset).state.load(Relaxed);
            if !state::is_occupied(current) {
                continue;
            }
            self.vacate_at(records, offset, current);
            let guard = Continue(self);
            // SAFETY: `vacate_at` marked the slot vacant before this drop, so
            // nothing drops it again even if this panics (S1); it held a
            // pinned child, dropped in place.
            unsafe { ptr::drop_in_place(guard.0.slots.get(index)) };
            mem::forget(guard);
        }
    }

    /// Marks the child at `index` gone (new generation, stale wakes and
    /// keys ignored, its queued wake cleared) and returns its lane, or
    /// `None` if the slot was vacant. The caller then owns the child's value.
    pub(crate) fn vacate(&mut self, index: usize) -> Option<usize> {
        let (page, offset) = locate(index);
        let records = self.header().page(page)?;
        // Relaxed: `&mut self` orders the push that wrote the state.
        let current = records.record(offset).state.load(Relaxed);
        if !state::is_occupied(current) {
            return None;
        }
        self.vacate_at(records, offset, current);
        Some(state::lane(current))
    }

    /// `vacate` for a child whose record and state the caller already has.
    #[inline]
    fn vacate_at(&mut self, records: &RecordPage, offset: usize, current: u32) {
        // Relaxed: wakers compare generations only; nothing is published.
        records
            .record(offset)
            .state
            .store(state::vacate(current), Relaxed);
        records.unmark(state::lane(current), offset);
        self.len -= 1;
    }

    /// Frees the slot of a finished child, whose record and state the
    /// caller has, and drops it.
    #[inline]
    fn release(&mut self, index: usize, records: &RecordPage, offset: usize, current: u32) {
        self.vacate_at(records, offset, current);
        self.recycled.push(index as u32);
        if !self.room.is_empty() {
            return self.release_waking_room(index);
        }
        // SAFETY: the slot held a child, now marked vacant, so it is dropped
        // exactly once here even if its `Drop` panics (S1).
        unsafe { ptr::drop_in_place(self.slots.get(index)) };
    }

    /// The end of `release` when tasks wait for room: they are woken once
    /// the child is dropped (or its `Drop` unwinds).
    #[cold]
    #[inline(never)]
    fn release_waking_room(&mut self, index: usize) {
        let room = self.room_to_wake_after(self.len());
        // SAFETY: as in `release`, whose slot this is.
        unsafe { ptr::drop_in_place(self.slots.get(index)) };
        if let Some(room) = room {
            self.room = room.wake();
        }
    }

    /// Takes out the tasks waiting for room if some wait and `len`, the
    /// number of children once the slot being freed is free, is below the
    /// limit. The caller wakes them (`WakeRoom::wake`) after it has dropped
    /// the child; if that drop unwinds, `WakeRoom`'s `Drop` wakes them.
    #[inline]
    fn room_to_wake_after(&mut self, len: usize) -> Option<WakeRoom> {
        if self.room.is_empty() || len >= self.limit {
            return None;
        }
        Some(WakeRoom(mem::take(&mut self.room)))
    }

    /// The limit `try_push` keeps to, if any.
    pub(crate) fn limit(&self) -> Option<usize> {
        (self.limit != NO_LIMIT).then_some(self.limit)
    }

    /// Sets the limit; `None` and `Some(0)` remove it. Children beyond a
    /// lowered limit stay; tasks waiting for room are woken if a raised
    /// limit gives them some.
    pub(crate) fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = match limit {
            None | Some(0) => NO_LIMIT,
            Some(limit) => limit,
        };
        if let Some(room) = self.room_to_wake_after(self.len()) {
            self.room = room.wake();
        }
    }

    /// Whether the set holds fewer children than its limit.
    #[inline]
    pub(crate) fn has_room(&self) -> bool {
        self.len() < self.limit
    }

    /// `Ready` once the set holds fewer children than its limit; else the
    /// task of `cx` is woken when a slot frees and leaves it so (or the
    /// limit is raised).
    pub(crate) fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.has_room() {
            return Poll::Ready(());
        }
        if !self.room.iter().any(|waiter| waiter.will_wake(cx.waker())) {
            self.room.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The index of the live child `key` names, as seen through `&self`.
    pub(crate) fn find(&self, key: Key) -> Option<usize> {
        let index = key.index as usize;
        let (page, offset) = locate(index);
        let records = self.header().page(page)?;
        // Acquire: pairs with the Release store in `push`, so the child is
        // visible to a caller that goes on to read it.
        let current = records.record(offset).state.load(Acquire);
        (state::is_occupied(current) && state::generation(current) == key.generation)
            .then_some(index)
    }

    /// Removes the child `key` names from the set and hands its value to
    /// `take` (a drop in place, or a move out for `Unpin` children).
    pub(crate) fn remove_with<R>(&mut self, key: Key, take: impl FnOnce(*mut T) -> R) -> Option<R> {
        self.sync();
        let index = self.find(key)?;
        let lane = self.vacate(index)?;
        self.due[lane].remove(index);
        self.recycled.push(index as u32);
        let room = self.room_to_wake_after(self.len());
        let taken = take(self.slots.get(index));
        if let Some(room) = room {
            self.room = room.wake();
        }
        Some(taken)
    }

    /// Moves every child of `other` into this set, oldest push first, each
    /// in its lane, as pushes: each is polled in this set's next cycle of
    /// its lane (so it registers this set's waker; a wake through `other`'s
    /// old waker reaches nobody, and needs to reach nobody). `other` is left
    /// empty, with its storage, and its tasks waiting for room are woken.
    pub(crate) fn append(&mut self, other: &mut Core<T>)
    where
        T: Unpin,
    {
        other.adopt_newest_first(false);
        let order = mem::take(&mut other.order);
        for &index in order.iter().rev() {
            let index = index as usize;
            let Some(lane) = other.vacate(index) else {
                continue;
            };
            other.recycled.push(index as u32);
            // SAFETY: `vacate` made the slot vacant (S1), so this is the one
            // move out of it; the child is `Unpin`, so moving it out of its
            // pinned slot is allowed.
            let child = unsafe { ptr::read(other.slots.get(index)) };
            let _ = self.push(child, Priority::of_lane(lane));
        }
        other.order = order;
        // Their cycles went with them (`vacate` cleared their woken bits).
        other.due.iter_mut().for_each(DueSet::clear);
        if let Some(room) = other.room_to_wake_after(0) {
            other.room = room.wake();
        }
    }

    /// Drops the child `key` names, in place.
    pub(crate) fn cancel(&mut self, key: Key) -> bool {
        self.remove_with(key, |child| {
            // SAFETY: `remove_with` vacated the slot (S1), so this is its one
            // drop; the child never moved (S2).
            unsafe { ptr::drop_in_place(child) }
        })
        .is_some()
    }

    /// The child `key` names, pinned.
    pub(crate) fn get_pin_mut(&mut self, key: Key) -> Option<Pin<&mut T>> {
        self.sync();
        let index = self.find(key)?;
        // SAFETY: the child is live and `&mut self` is exclusive; it never
        // moves (S2).
        Some(unsafe { Pin::new_unchecked(&mut *self.slots.get(index)) })
    }

    /// Pointer to the live child at `index` as seen through `&self`, or
    /// `None` if the slot is vacant.
    #[inline]
    pub(crate) fn occupant(&self, index: usize) -> Option<*mut T> {
        let (page, offset) = locate(index);
        let records = self.header().page(page)?;
        // Acquire: pairs with the Release store in `push`, so the child's
        // value is visible.
        let current = records.record(offset).state.load(Acquire);
        state::is_occupied(current).then(|| self.slots.get(index))
    }

    /// Pointer to the slot at `index`, whose page exists because a child
    /// was pushed there.
    #[inline]
    pub(crate) fn occupant_ptr(&self, index: usize) -> *mut T {
        self.slots.get(index)
    }

    /// Chooses the next child to poll: a starving lower lane first, else the
    /// highest lane with due or woken children (rule L1). `refilled` has bit
    /// `l` set once lane `l` has had its cycle in this call.
    #[inline]
    fn pick(&mut self, refilled: &mut u8, one_lane: bool) -> Pick {
        if one_lane {
            // One lane: nothing to preempt it, nobody to starve.
            return self.pick_in(NORMAL, refilled).unwrap_or(Pick::Idle);
        }
        for lane in 1..LANES {
            if self.lanes_in_use & (1 << lane) != 0 && self.shares.is_starving(lane) {
                if let Some(index) = self.take_from(lane, refilled) {
                    return Pick::Child(lane, index);
                }
            }
        }
        for lane in 0..LANES {
            if self.lanes_in_use & (1 << lane) != 0 {
                if let Some(pick) = self.pick_in(lane, refilled) {
                    return pick;
                }
            }
        }
        Pick::Idle
    }

    /// `pick` within one lane, or `None` if it has no work.
    #[inline(always)]
    fn pick_in(&mut self, lane: usize, refilled: &mut u8) -> Option<Pick> {
        if let Some(index) = self.due[lane].pop() {
            return Some(Pick::Child(lane, index));
        }
        if !self.header().has_woken(lane) {
            return None;
        }
        if *refilled & (1 << lane) != 0 {
            return Some(Pick::Yield);
        }
        let index = self.take_from(lane, refilled)?;
        Some(Pick::Child(lane, index))
    }

    /// The next child of `lane`'s cycle, starting a new cycle if this call
    /// has not started one for the lane yet (rule C2).
    fn take_from(&mut self, lane: usize, refilled: &mut u8) -> Option<usize> {
        if let Some(index) = self.due[lane].pop() {
            return Some(index);
        }
        if *refilled & (1 << lane) != 0 {
            return None;
        }
        *refilled |= 1 << lane;
        let header = self.header();
        header.refill(lane, &mut self.due[lane]);
        let next = self.due[lane].pop();
        self.counters.cycles += u64::from(next.is_some());
        next
    }

    /// The poll loop (`poll_loop`) of a `poll_next` call: the stash is
    /// empty here (the set serves it first), so no stream is parked (K1).
    #[inline(always)]
    pub(crate) fn poll_next_with<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll_one: impl FnMut(Pin<&mut T>, &mut Context<'_>) -> Step<R>,
    ) -> Poll<Option<(Key, R)>> {
        self.poll_loop::<R, false>(cx, poll_one)
    }

    /// The poll loop: polls children in cycle and lane order until one
    /// produces an output, the cycle rule asks to yield, the budget runs
    /// out, or nothing is woken. `PARKING` (from `progress_with` only):
    /// parked streams are skipped (rule K1).
    fn poll_loop<R, const PARKING: bool>(
        &mut self,
        cx: &mut Context<'_>,
        mut poll_one: impl FnMut(Pin<&mut T>, &mut Context<'_>) -> Step<R>,
    ) -> Poll<Option<(Key, R)>> {
        self.adopt_for_poll();
        // Rule P1: every wake during and after this call reaches this call's
        // waker. Unchanged (the usual case), that costs no atomic operation.
        let parent = &self.header().parent;
        // Rule R1: a read-modify-write on the parent's state before the
        // last look at the bits; `register` is one.
        let mut synced = false;
        if !parent.will_wake(cx.waker()) {
            parent.register(cx.waker());
            synced = true;
        }
        // Only NORMAL in use (every plain `push`): no lane bookkeeping.
        let mut one_lane = self.lanes_in_use == 1 << NORMAL;
        // Rule I1: handles' pushes that arrived during this call are adopted
        // once, when it would go idle.
        let mut adopted_late = false;
        // Rule C2: a lane whose cycle began in an earlier call finishes it
        // in this one but starts no other.
        let mut refilled = if one_lane {
            u8::from(!self.due[NORMAL].is_empty()) << NORMAL
        } else {
            (0..LANES)
                .filter(|&lane| !self.due[lane].is_empty())
                .fold(0, |mask, lane| mask | 1 << lane)
        };
        loop {
            match self.pick(&mut refilled, one_lane) {
                Pick::Child(lane, index) => {
                    if PARKING && self.is_parked(index) {
                        // Rule K1: queued again when its item is handed out.
                        continue;
                    }
                    if self.budget.poll_proceed(cx).is_pending() {
                        // Pause the cycle exactly here (rule B1).
                        self.due[lane].unpop(index);
                        return Poll::Pending;
                    }
                    if !one_lane {
                        let header = self.header();
                        let due = &self.due;
                        let lower = self.lanes_in_use & !((2 << lane) - 1);
                        self.shares.record_poll(lane, lower, |l| {
                            !due[l].is_empty() || header.has_woken(l)
                        });
                    }
                    self.counters.lane_polls[lane] += 1;
                    if let Some(out) = self.poll_child(index, &mut poll_one) {
                        self.budget.on_output();
                        self.counters.outputs += 1;
                        return Poll::Ready(Some(out));
                    }
                }
                Pick::Yield | Pick::Idle
                    if self.len == 0 && !self.header().inject.may_receive() =>
                {
                    // Nothing left (a `Yield` saw only stale bits, whose
                    // children are gone), and no handle can push more.
                    self.terminated = true;
                    return Poll::Ready(None);
                }
                Pick::Yield if self.len != 0 => {
                    // Rule C2: one cycle per lane per call.
                    self.counters.cycle_yields += 1;
                    crate::engine::budget::yield_task(cx);
                    self.budget.on_pending();
                    return Poll::Pending;
                }
                Pick::Yield | Pick::Idle if synced => {
                    // Rule I1: a handle's push that came before our last
                    // read-modify-write on the parent's state is seen here;
                    // one after it wakes this call's waker.
                    if !adopted_late && self.header().inject.has_nodes() {
                        adopted_late = true;
                        if self.adopt_late() {
                            // They are NORMAL's cycle now (C1, C2).
                            refilled |= 1 << NORMAL;
                        }
                        one_lane = self.lanes_in_use == 1 << NORMAL;
                        continue;
                    }
                    // Rule R1: a wake after that last look reaches this
                    // call's waker, registered before it (P1).
                    self.budget.on_pending();
                    return Poll::Pending;
                }
                Pick::Yield | Pick::Idle => {
                    // Rule R1: acquire every wake that reached the parent's
                    // state so far, then look at the bits once more. Without
                    // it, a poll that is not ordered after the wake that
                    // caused it (an executor that clears its flag before
                    // polling) could miss that wake's bits.
                    self.header().parent.acquire_wakes();
                    synced = true;
                }
            }
        }
    }

    /// Polls the child at `index` once with its own waker. A finished child
    /// is dropped and its slot freed, as is one that panics.
    #[inline(always)]
    fn poll_child<R>(
        &mut self,
        index: usize,
        poll_one: &mut impl FnMut(Pin<&mut T>, &mut Context<'_>) -> Step<R>,
    ) -> Option<(Key, R)> {
        /// Frees the child's slot if its `poll` unwinds.
        struct ReleaseOnUnwind<T> {
            core: *mut Core<T>,
            index: usize,
        }
        impl<T> Drop for ReleaseOnUnwind<T> {
            #[cold]
            fn drop(&mut self) {
                // SAFETY: armed only during the child's `poll`, inside
                // `poll_child`, which holds `&mut Core` for that whole time
                // and does not touch it while the guard is armed.
                let core = unsafe { &mut *self.core };
                if core.vacate(self.index).is_some() {
                    core.recycled.push(self.index as u32);
                    let room = core.room_to_wake_after(core.len());
                    // SAFETY: the slot held the child that panicked, now
                    // marked vacant, so this is its one drop (S1).
                    unsafe { ptr::drop_in_place(core.slots.get(self.index)) };
                    if let Some(room) = room {
                        core.room = room.wake();
                    }
                }
            }
        }

        let (page, offset) = locate(index);
        let records = self.page(page);
        // Relaxed: `&mut self` orders the push that wrote the state.
        let current = records.record(offset).state.load(Relaxed);
        if !state::is_occupied(current) {
            return None;
        }
        let key = Key {
            index: index as u32,
            generation: state::generation(current),
        };
        let waker = waker::borrowed(records.record_ptr(offset), state::tag(current));
        let mut cx = Context::from_waker(&waker);
        let slot = self.slots.get_at(page, offset);
        // SAFETY: the slot holds a live child (OCCUPIED, and only the poller
        // vacates, under `&mut self`), and it never moves until dropped in
        // place (rule S2), so pinning it is sound.
        let child = unsafe { Pin::new_unchecked(&mut *slot) };
        let guard = ReleaseOnUnwind { core: self, index };
        let step = poll_one(child, &mut cx);
        mem::forget(guard);
        match step {
            Step::Pending => None,
            Step::Item(out) => {
                // Queue it for the next cycle: it may have more ready.
                let _ = records.mark(self.header(), state::lane(current), offset);
                Some((key, out))
            }
            Step::Done(out) => {
                self.release(index, records, offset, current);
                Some((key, out))
            }
            Step::Ended => {
                self.release(index, records, offset, current);
                None
            }
            Step::Parked(out) => {
                // Rule K1: not queued again until `out` is handed out.
                self.stash.park(index, state::generation(current));
                Some((key, out))
            }
        }
    }
}

/// Where the claims being adopted are: `recycled[recycled_start..]`
/// (taken from the end) and the `fresh` range.
struct Adoption {
    recycled_start: usize,
    fresh: Range<usize>,
}

/// The lane of a child pushed since the last `sync` at `offset` of
/// `records`: NORMAL if every such push was (`one_lane`), else read back.
#[inline]
fn claim_lane(records: &RecordPage, offset: usize, one_lane: bool) -> usize {
    if one_lane {
        NORMAL
    } else {
        // Relaxed: `&mut` on the set orders the push that wrote it.
        state::lane(records.record(offset).state.load(Relaxed))
    }
}

impl<T> Drop for Core<T> {
    fn drop(&mut self) {
        // No parent wake for the adopted pushes: nobody polls this set
        // again, and a parent waker that panicked here would leak them.
        self.sync_without_wake();
        // Tasks waiting for room in this set (one replaced behind a shared
        // lock, say) learn that it is gone; woken after the children's
        // drops, or during their unwind.
        let room = self.room_to_wake_after(0);
        self.drop_children();
        drop(room.map(WakeRoom::wake));
        // `slots` frees its pages and `header` drops the set's reference as
        // fields, even if a child's `Drop` panicked above.
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn stamps_renumber_instead_of_wrapping() {
        let mut core = Core::<u32>::new();
        core.next_stamp = u32::MAX - 4;
        for value in 0..3 {
            core.push(value, Priority::NORMAL);
        }
        core.sync();
        assert_eq!(core.next_stamp, u32::MAX - 1);
        // Three more do not fit below u32::MAX: the live ones are renumbered
        // 0..3 first, in order, and the new ones follow.
        for value in 3..6 {
            core.push(value, Priority::NORMAL);
        }
        core.sync();
        assert_eq!(core.next_stamp, 6);
        assert_eq!(core.newest_first(), [5, 4, 3, 2, 1, 0]);
    }
}
