//! [`FuturesUnordered`]: the set type, its push path and its poll loop.

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::mem;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};

use crate::budget::Budget;
use crate::due::DueSet;
use crate::header::{Header, Record, RecordPage};
use crate::lanes::{LaneShares, Priority, LANES};
use crate::loom::{AtomicUsize, Ordering::*};
use crate::page::{locate, MAX_CHILDREN};
use crate::slots::Slots;
use crate::state;
use crate::waker;

/// A set of futures that completes them in any order, polling each at most
/// once per cycle, highest [`Priority`] first.
///
/// A drop-in replacement for `futures::stream::FuturesUnordered`: the same
/// methods, receivers, bounds and traits, so changing the `use` line is the
/// whole migration.
///
/// ```
/// use futures::StreamExt;
/// use velodrome::FuturesUnordered; // was: use futures::stream::FuturesUnordered;
///
/// # futures::executor::block_on(async {
/// let set = FuturesUnordered::new();
/// for i in 0..3 {
///     set.push(std::future::ready(i * 10));
/// }
/// let mut out: Vec<i32> = set.collect().await;
/// out.sort();
/// assert_eq!(out, [0, 10, 20]);
/// # });
/// ```
///
/// # Fairness
///
/// A *cycle* of a lane polls the children of that lane that were woken
/// before it started, each once. A wake that arrives during the cycle,
/// including a child waking itself, is served in the next cycle. When a
/// whole cycle produced no output, [`poll_next`](Stream::poll_next) wakes
/// its own task and returns `Pending` rather than starting another cycle in
/// the same call, so one busy child cannot keep the set (or the task) to
/// itself.
///
/// # Priority lanes
///
/// See [`Priority`] and [`set_starvation_bound`](Self::set_starvation_bound).
///
/// # Cooperative scheduling
///
/// With the `tokio` feature (on by default), the set takes part in the
/// parent task's budget: it never polls a child once the budget is
/// exhausted, and it yields after at most 128 outputs even when its children
/// spend no budget themselves. Children's own spending is never erased.
/// Outside a tokio runtime nothing changes.
///
/// # Bad input
///
/// - A child that panics in `poll` is dropped and its slot freed before the
///   panic continues; the set stays usable and `len` is right.
/// - A child whose `Drop` panics during [`clear`](Self::clear) or the set's
///   drop does not stop the other children from being dropped, exactly once
///   each (a second panic while unwinding aborts, as everywhere in Rust).
/// - A waker may outlive the set, be woken from any thread and any number of
///   times: it then does nothing, and keeps only a small shared header alive.
/// - A stale waker of a finished child does not wake the slot's next
///   occupant (the slot's generation is checked), except for a wake racing
///   with the completion itself, which may cause one spurious poll.
/// - Children never move: their storage is pages that are never moved or
///   freed while the set lives.
pub struct FuturesUnordered<Fut> {
    slots: Slots<Fut>,
    header: HeaderRef,
    /// Pushes since the last `sync`; each claims one index (see
    /// `claimed_index`).
    claims: AtomicUsize,
    /// Free indices below `fresh`; pushes take from the end.
    recycled: Vec<u32>,
    /// Every index at or above `fresh` has never been used.
    fresh: usize,
    /// Children known to the poller (pushes since `sync` excluded).
    len: usize,
    due: [DueSet; LANES],
    shares: LaneShares,
    budget: Budget,
    terminated: bool,
    _marker: PhantomData<Fut>,
}

/// The set's own reference to the header; a field of its own so it is
/// released even when a child's `Drop` panics during the set's drop.
struct HeaderRef(NonNull<Header>);

impl Drop for HeaderRef {
    fn drop(&mut self) {
        // SAFETY: we hold the set's reference (S3).
        let header = unsafe { self.0.as_ref() };
        // Nobody will poll the parent on our behalf any more.
        drop(header.parent.take());
        // SAFETY: we give up the set's reference and never use it again.
        unsafe { Header::ref_dec(self.0) };
    }
}

// SAFETY: the set owns its `Fut`s (so it is `Send` when they are) and shares
// only the header with other threads, which is all atomics (rule S3).
unsafe impl<Fut: Send> Send for FuturesUnordered<Fut> {}
// SAFETY: through `&self`, other threads can push (moving a `Fut` in: needs
// `Send`) and iterate (sharing `&Fut`: needs `Sync`); pushes synchronise
// through atomics only (rule S1).
unsafe impl<Fut: Send + Sync> Sync for FuturesUnordered<Fut> {}

impl<Fut> Unpin for FuturesUnordered<Fut> {}

impl<Fut> Default for FuturesUnordered<Fut> {
    fn default() -> Self {
        Self::new()
    }
}

enum Pick {
    /// Poll this child of this lane next.
    Child(usize, usize),
    /// A lane has woken children but already had its cycle in this call.
    Yield,
    /// Nothing is woken.
    Idle,
}

impl<Fut> FuturesUnordered<Fut> {
    /// An empty set. Allocates only its small shared header; storage grows
    /// with the first push.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::<std::future::Ready<()>>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            slots: Slots::new(),
            header: HeaderRef(Header::new()),
            claims: AtomicUsize::new(0),
            recycled: Vec::new(),
            fresh: 0,
            len: 0,
            due: Default::default(),
            shares: LaneShares::new(),
            budget: Budget::default(),
            terminated: false,
            _marker: PhantomData,
        }
    }

    /// Number of children in the set.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::new();
    /// set.push(async {});
    /// assert_eq!(set.len(), 1);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        // Relaxed: a count, not a publication; concurrent pushes may or may
        // not be included.
        self.len + self.claims.load(Relaxed)
    }

    /// Whether the set has no children.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::<std::future::Ready<()>>::new();
    /// assert!(set.is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a child in the [`Priority::NORMAL`] lane.
    ///
    /// Like futures-util's, this takes `&self` (pushes from several threads
    /// at once are safe) and does not poll the child: it is polled by the
    /// next [`poll_next`](Stream::poll_next). A push into a slot freed by an
    /// earlier child allocates nothing.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::new();
    /// set.push(async { 1 });
    /// assert_eq!(set.len(), 1);
    /// ```
    #[inline]
    pub fn push(&self, future: Fut) {
        self.push_with_priority(future, Priority::NORMAL);
    }

    /// Adds a child in the lane of `priority`.
    ///
    /// # Panics
    ///
    /// Aborts the process if the set would hold more than about 2^31
    /// children (the index space of its pages).
    ///
    /// ```
    /// use velodrome::{FuturesUnordered, Priority};
    ///
    /// let set = FuturesUnordered::new();
    /// set.push_with_priority(async { "urgent" }, Priority::HIGH);
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn push_with_priority(&self, future: Fut, priority: Priority) {
        // Relaxed: the counter only hands out distinct claims; the claimed
        // slot is published by the Release store of its state below.
        let claim = self.claims.fetch_add(1, Relaxed);
        let index = self.claimed_index(claim);
        if index >= MAX_CHILDREN {
            // Unwinding here would leave a claim without a child; this is
            // billions of children, far past any memory, so stop.
            crate::loom::abort();
        }
        let (page, offset) = locate(index);
        let records = self.header().page_or_alloc(self.header.0, page);
        let slot = self.slots.get_or_alloc(index);
        // SAFETY: the claim makes `index` ours alone (rule S1): no other push
        // got it, and the poller cannot run while we hold `&self`. The slot
        // is vacant, so nothing is overwritten.
        unsafe { slot.write(future) };
        let record = records.record(offset);
        // Relaxed: only the claimant writes a vacant record's state.
        let vacant = record.state.load(Relaxed);
        // Release: publishes the future written above to `iter` through
        // `&self` (Acquire in `occupant`) and to wakers reading the lane.
        record
            .state
            .store(state::occupy(vacant, priority.lane()), Release);
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
    /// join their lane's current cycle.
    fn sync(&mut self) {
        // Relaxed: `&mut self` orders every push before us.
        let claims = self.claims.swap(0, Relaxed);
        if claims == 0 {
            return;
        }
        self.terminated = false;
        let header = self.header.0;
        for claim in 0..claims {
            let index = self.claimed_index(claim);
            // SAFETY: the header outlives the set (S3).
            let lane = state::lane(
                record_of(unsafe { header.as_ref() }, index)
                    .state
                    .load(Relaxed),
            );
            self.due[lane].push_index(index);
        }
        let from_recycled = claims.min(self.recycled.len());
        self.recycled.truncate(self.recycled.len() - from_recycled);
        self.fresh += claims - from_recycled;
        self.len += claims;
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the set holds a reference to the header (S3).
        unsafe { self.header.0.as_ref() }
    }

    /// Removes every child, dropping each exactly once. The set keeps its
    /// storage for reuse.
    ///
    /// ```
    /// let mut set = velodrome::FuturesUnordered::new();
    /// set.push(async {});
    /// set.clear();
    /// assert!(set.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.sync();
        self.drop_children();
        self.recycled.clear();
        self.fresh = 0;
        for lane in 0..LANES {
            self.due[lane].clear();
            // Throw away wakes of the dropped children.
            let header = self.header.0;
            // SAFETY: the header outlives the set (S3).
            unsafe { header.as_ref() }.refill(lane, &mut self.due[lane]);
            self.due[lane].clear();
        }
    }

    /// The lower-lane share: while higher lanes keep having work, a lower
    /// lane with woken children waits for at most this many higher-lane
    /// polls before one of its children is polled. Default 16.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::<std::future::Ready<()>>::new();
    /// assert_eq!(set.starvation_bound(), 16);
    /// ```
    pub fn starvation_bound(&self) -> u32 {
        self.shares.bound
    }

    /// Sets the lower-lane share (see [`starvation_bound`](Self::starvation_bound)).
    ///
    /// With bound `n` and three lanes, a lane with woken children is polled
    /// at least once per `n + 2` child polls, however busy the lanes above
    /// it are. `n = 0` is treated as 1 (lanes take turns).
    ///
    /// ```
    /// let mut set = velodrome::FuturesUnordered::<std::future::Ready<()>>::new();
    /// set.set_starvation_bound(4);
    /// assert_eq!(set.starvation_bound(), 4);
    /// ```
    pub fn set_starvation_bound(&mut self, n: u32) {
        self.shares.bound = n.max(1);
    }

    /// Drops every child, continuing past a child whose `Drop` panics.
    fn drop_children(&mut self) {
        /// On unwind out of one child's `Drop`, drops the rest.
        struct Continue<'a, Fut>(&'a mut FuturesUnordered<Fut>);
        impl<Fut> Drop for Continue<'_, Fut> {
            fn drop(&mut self) {
                self.0.drop_children();
            }
        }

        for index in 0..self.fresh {
            if self.vacate(index).is_none() {
                continue;
            }
            let guard = Continue(self);
            // SAFETY: `vacate` marked the slot vacant before this drop, so
            // nothing drops it again even if this panics; it held a pinned
            // child, dropped in place.
            unsafe { ptr::drop_in_place(guard.0.slots.get(index)) };
            mem::forget(guard);
        }
    }

    /// Marks the child at `index` gone (new generation, stale wakes
    /// ignored, its queued wake cleared) and returns its lane, or `None` if
    /// the slot was vacant. The caller then owns the child's value.
    fn vacate(&mut self, index: usize) -> Option<usize> {
        let (page, offset) = locate(index);
        let records = self.header().page(page)?;
        let record = records.record(offset);
        // Relaxed: `&mut self` orders the push that wrote the state.
        let current = record.state.load(Relaxed);
        if !state::is_occupied(current) {
            return None;
        }
        // Relaxed: wakers compare generations only; nothing is published.
        record.state.store(state::vacate(current), Relaxed);
        let lane = state::lane(current);
        records.unmark(lane, offset);
        self.len -= 1;
        Some(lane)
    }

    /// Frees the slot of a finished child and drops it.
    fn release(&mut self, index: usize) {
        if self.vacate(index).is_some() {
            self.recycled.push(index as u32);
            // SAFETY: the slot held a child, now marked vacant, so it is
            // dropped exactly once here even if its `Drop` panics.
            unsafe { ptr::drop_in_place(self.slots.get(index)) };
        }
    }

    /// Chooses the next child to poll: a starving lower lane first, else the
    /// highest lane with due or woken children (rule L1).
    fn pick(&mut self, refilled: &mut [bool; LANES]) -> Pick {
        for lane in 1..LANES {
            if self.shares.is_starving(lane) {
                if let Some(index) = self.take_from(lane, refilled) {
                    return Pick::Child(lane, index);
                }
            }
        }
        for lane in 0..LANES {
            if let Some(index) = self.due[lane].pop() {
                return Pick::Child(lane, index);
            }
            if self.header().has_woken(lane) {
                if refilled[lane] {
                    return Pick::Yield;
                }
                if let Some(index) = self.take_from(lane, refilled) {
                    return Pick::Child(lane, index);
                }
            }
        }
        Pick::Idle
    }

    /// The next child of `lane`'s cycle, starting a new cycle if this call
    /// has not started one for the lane yet.
    fn take_from(&mut self, lane: usize, refilled: &mut [bool; LANES]) -> Option<usize> {
        if let Some(index) = self.due[lane].pop() {
            return Some(index);
        }
        if refilled[lane] {
            return None;
        }
        refilled[lane] = true;
        let header = self.header.0;
        // SAFETY: the header outlives the set (S3).
        unsafe { header.as_ref() }.refill(lane, &mut self.due[lane]);
        self.due[lane].pop()
    }

    /// The state word of the child at `index`, as seen by a `&self` reader.
    #[inline]
    fn occupant(&self, index: usize) -> Option<*mut Fut> {
        let (page, offset) = locate(index);
        let records = self.header().page(page)?;
        // Acquire: pairs with the Release store in `push_with_priority`, so
        // the child's value is visible.
        let current = records.record(offset).state.load(Acquire);
        state::is_occupied(current).then(|| self.slots.get(index))
    }

    /// Upper bound of used indices, including pushes not yet synced.
    #[inline]
    fn high_water(&self) -> usize {
        // Acquire: see the pages of concurrent pushes' slots (their states
        // are loaded with Acquire before use anyway).
        let claims = self.claims.load(Acquire);
        self.fresh + claims.saturating_sub(self.recycled.len())
    }

    /// Iterates over pinned shared references to the children.
    ///
    /// ```
    /// use std::pin::Pin;
    /// let set = velodrome::FuturesUnordered::new();
    /// set.push(std::future::ready(7));
    /// assert_eq!(Pin::new(&set).iter_pin_ref().len(), 1);
    /// ```
    pub fn iter_pin_ref(self: Pin<&Self>) -> IterPinRef<'_, Fut> {
        let set = self.get_ref();
        IterPinRef {
            set,
            next: 0,
            end: set.high_water(),
            remaining: set.len(),
        }
    }

    /// Iterates over shared references to the children.
    ///
    /// ```
    /// let set = velodrome::FuturesUnordered::new();
    /// set.push(std::future::ready(7));
    /// assert_eq!(set.iter().count(), 1);
    /// ```
    pub fn iter(&self) -> Iter<'_, Fut>
    where
        Fut: Unpin,
    {
        Iter(Pin::new(self).iter_pin_ref())
    }

    /// Iterates over pinned mutable references to the children.
    ///
    /// ```
    /// use std::pin::Pin;
    /// let mut set = velodrome::FuturesUnordered::new();
    /// set.push(std::future::ready(7));
    /// assert_eq!(Pin::new(&mut set).iter_pin_mut().len(), 1);
    /// ```
    pub fn iter_pin_mut(self: Pin<&mut Self>) -> IterPinMut<'_, Fut> {
        let set = self.get_mut();
        set.sync();
        IterPinMut {
            next: 0,
            end: set.fresh,
            remaining: set.len,
            set,
            _marker: PhantomData,
        }
    }

    /// Iterates over mutable references to the children.
    ///
    /// ```
    /// let mut set = velodrome::FuturesUnordered::new();
    /// set.push(std::future::ready(7));
    /// assert_eq!(set.iter_mut().count(), 1);
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, Fut>
    where
        Fut: Unpin,
    {
        IterMut(Pin::new(self).iter_pin_mut())
    }
}

/// The record of `index`, whose page must exist.
#[inline]
fn record_of(header: &Header, index: usize) -> &Record {
    let (page, offset) = locate(index);
    header
        .page(page)
        .map(|p: &RecordPage| p.record(offset))
        .expect("record page of a pushed child")
}

impl<Fut: Future> FuturesUnordered<Fut> {
    /// Polls the child at `index` once; on `Ready` it is dropped and its
    /// slot freed, and likewise if it panics.
    #[inline]
    fn poll_child(&mut self, index: usize) -> Poll<Fut::Output> {
        /// Frees the child's slot when dropped: on completion, or on unwind
        /// out of its `poll`.
        struct Release<'a, Fut>(&'a mut FuturesUnordered<Fut>, usize);
        impl<Fut> Drop for Release<'_, Fut> {
            fn drop(&mut self) {
                self.0.release(self.1);
            }
        }

        let (page, offset) = locate(index);
        let Some(records) = self.header().page(page) else {
            return Poll::Pending;
        };
        // Relaxed: `&mut self` orders the push that wrote the state.
        let current = records.record(offset).state.load(Relaxed);
        if !state::is_occupied(current) {
            return Poll::Pending;
        }
        let waker = waker::borrowed(records.record_ptr(offset), state::tag(current));
        let mut cx = Context::from_waker(&waker);
        let release = Release(self, index);
        // SAFETY: the slot holds a live child (OCCUPIED, and only the poller
        // vacates, under `&mut self`), and it never moves until dropped in
        // place (rule S2), so pinning it is sound.
        let child = unsafe { Pin::new_unchecked(&mut *release.0.slots.get(index)) };
        let poll = child.poll(&mut cx);
        if poll.is_pending() {
            mem::forget(release);
        }
        poll
    }
}

impl<Fut> Drop for FuturesUnordered<Fut> {
    fn drop(&mut self) {
        self.sync();
        self.drop_children();
        // `slots` frees its pages and `header` drops the set's reference as
        // fields, even if a child's `Drop` panicked above.
    }
}

impl<Fut: Future> Stream for FuturesUnordered<Fut> {
    type Item = Fut::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        let this = self.get_mut();
        this.sync();
        let mut refilled = [false; LANES];
        let mut registered = false;
        loop {
            match this.pick(&mut refilled) {
                Pick::Child(lane, index) => {
                    if this.budget.poll_proceed(cx).is_pending() {
                        // Pause the cycle exactly here (rule B1).
                        this.due[lane].unpop(index);
                        return Poll::Pending;
                    }
                    let (shares, due, header) = (&mut this.shares, &this.due, this.header.0);
                    shares.record_poll(lane, |l| {
                        // SAFETY: the header outlives the set (S3).
                        !due[l].is_empty() || unsafe { header.as_ref() }.has_woken(l)
                    });
                    if let Poll::Ready(output) = this.poll_child(index) {
                        this.budget.on_output();
                        return Poll::Ready(Some(output));
                    }
                }
                Pick::Yield => {
                    // Rule C2: one cycle per lane per call.
                    cx.waker().wake_by_ref();
                    this.budget.on_pending();
                    return Poll::Pending;
                }
                Pick::Idle => {
                    if this.len == 0 {
                        this.terminated = true;
                        return Poll::Ready(None);
                    }
                    if registered {
                        this.budget.on_pending();
                        return Poll::Pending;
                    }
                    // Rule R1: register, then look at the bits once more.
                    this.header().parent.register(cx.waker());
                    registered = true;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.len();
        (len, Some(len))
    }
}

impl<Fut: Future> FusedStream for FuturesUnordered<Fut> {
    fn is_terminated(&self) -> bool {
        // Relaxed: a push since the set ended makes it live again.
        self.terminated && self.claims.load(Relaxed) == 0
    }
}

impl<Fut> fmt::Debug for FuturesUnordered<Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FuturesUnordered")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<Fut> FromIterator<Fut> for FuturesUnordered<Fut> {
    fn from_iter<I: IntoIterator<Item = Fut>>(iter: I) -> Self {
        let set = Self::new();
        for future in iter {
            set.push(future);
        }
        set
    }
}

impl<Fut> Extend<Fut> for FuturesUnordered<Fut> {
    fn extend<I: IntoIterator<Item = Fut>>(&mut self, iter: I) {
        for future in iter {
            self.push(future);
        }
    }
}

/// Pinned shared references to the children, from
/// [`FuturesUnordered::iter_pin_ref`].
pub struct IterPinRef<'a, Fut> {
    set: &'a FuturesUnordered<Fut>,
    next: usize,
    end: usize,
    remaining: usize,
}

impl<'a, Fut> Iterator for IterPinRef<'a, Fut> {
    type Item = Pin<&'a Fut>;

    fn next(&mut self) -> Option<Pin<&'a Fut>> {
        while self.remaining > 0 && self.next < self.end {
            let index = self.next;
            self.next += 1;
            if let Some(child) = self.set.occupant(index) {
                self.remaining -= 1;
                // SAFETY: the child is live (OCCUPIED seen with Acquire) and
                // cannot be removed or moved while `&'a` set is held (S1, S2).
                return Some(unsafe { Pin::new_unchecked(&*child) });
            }
        }
        self.remaining = 0;
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<Fut> ExactSizeIterator for IterPinRef<'_, Fut> {}

impl<Fut> fmt::Debug for IterPinRef<'_, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterPinRef")
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// Shared references to the children, from [`FuturesUnordered::iter`].
#[derive(Debug)]
pub struct Iter<'a, Fut: Unpin>(IterPinRef<'a, Fut>);

impl<'a, Fut: Unpin> Iterator for Iter<'a, Fut> {
    type Item = &'a Fut;

    fn next(&mut self) -> Option<&'a Fut> {
        self.0.next().map(Pin::get_ref)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<Fut: Unpin> ExactSizeIterator for Iter<'_, Fut> {}

/// Pinned mutable references to the children, from
/// [`FuturesUnordered::iter_pin_mut`].
pub struct IterPinMut<'a, Fut> {
    set: *const FuturesUnordered<Fut>,
    next: usize,
    end: usize,
    remaining: usize,
    _marker: PhantomData<&'a mut FuturesUnordered<Fut>>,
}

// SAFETY: equivalent to the `&'a mut FuturesUnordered<Fut>` it stands for.
unsafe impl<Fut: Send> Send for IterPinMut<'_, Fut> {}
// SAFETY: as above; shared access only reads counters.
unsafe impl<Fut: Sync> Sync for IterPinMut<'_, Fut> {}

impl<'a, Fut> Iterator for IterPinMut<'a, Fut> {
    type Item = Pin<&'a mut Fut>;

    fn next(&mut self) -> Option<Pin<&'a mut Fut>> {
        // SAFETY: we stand for an exclusive borrow of the set for `'a`.
        let set = unsafe { &*self.set };
        while self.remaining > 0 && self.next < self.end {
            let index = self.next;
            self.next += 1;
            if let Some(child) = set.occupant(index) {
                self.remaining -= 1;
                // SAFETY: the child is live, each index is yielded once, so
                // the mutable references are disjoint, and children never
                // move (S2).
                return Some(unsafe { Pin::new_unchecked(&mut *child) });
            }
        }
        self.remaining = 0;
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<Fut> ExactSizeIterator for IterPinMut<'_, Fut> {}

impl<Fut> fmt::Debug for IterPinMut<'_, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterPinMut")
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// Mutable references to the children, from [`FuturesUnordered::iter_mut`].
#[derive(Debug)]
pub struct IterMut<'a, Fut: Unpin>(IterPinMut<'a, Fut>);

impl<'a, Fut: Unpin> Iterator for IterMut<'a, Fut> {
    type Item = &'a mut Fut;

    fn next(&mut self) -> Option<&'a mut Fut> {
        self.0.next().map(Pin::get_mut)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<Fut: Unpin> ExactSizeIterator for IterMut<'_, Fut> {}

/// The children by value, from `FuturesUnordered::into_iter`. Dropping it
/// drops the children not yet taken.
pub struct IntoIter<Fut: Unpin> {
    set: FuturesUnordered<Fut>,
    next: usize,
}

impl<Fut: Unpin> Iterator for IntoIter<Fut> {
    type Item = Fut;

    fn next(&mut self) -> Option<Fut> {
        while self.next < self.set.fresh {
            let index = self.next;
            self.next += 1;
            if self.set.vacate(index).is_some() {
                // SAFETY: `vacate` made us the owner of the live child; it is
                // `Unpin`, so moving it out is fine.
                return Some(unsafe { ptr::read(self.set.slots.get(index)) });
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.set.len, Some(self.set.len))
    }
}

impl<Fut: Unpin> ExactSizeIterator for IntoIter<Fut> {}

impl<Fut: Unpin> fmt::Debug for IntoIter<Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("remaining", &self.set.len)
            .finish()
    }
}

impl<Fut: Unpin> IntoIterator for FuturesUnordered<Fut> {
    type Item = Fut;
    type IntoIter = IntoIter<Fut>;

    fn into_iter(mut self) -> IntoIter<Fut> {
        self.sync();
        IntoIter { set: self, next: 0 }
    }
}

impl<'a, Fut: Unpin> IntoIterator for &'a FuturesUnordered<Fut> {
    type Item = &'a Fut;
    type IntoIter = Iter<'a, Fut>;

    fn into_iter(self) -> Iter<'a, Fut> {
        self.iter()
    }
}

impl<'a, Fut: Unpin> IntoIterator for &'a mut FuturesUnordered<Fut> {
    type Item = &'a mut Fut;
    type IntoIter = IterMut<'a, Fut>;

    fn into_iter(self) -> IterMut<'a, Fut> {
        self.iter_mut()
    }
}

mod spawn {
    use futures_task::{FutureObj, LocalFutureObj, LocalSpawn, Spawn, SpawnError};

    use super::FuturesUnordered;

    impl Spawn for FuturesUnordered<FutureObj<'_, ()>> {
        fn spawn_obj(&self, future: FutureObj<'static, ()>) -> Result<(), SpawnError> {
            self.push(future);
            Ok(())
        }
    }

    impl LocalSpawn for FuturesUnordered<LocalFutureObj<'_, ()>> {
        fn spawn_local_obj(&self, future: LocalFutureObj<'static, ()>) -> Result<(), SpawnError> {
            self.push(future);
            Ok(())
        }
    }
}
