//! loom models of the wake protocol, driven through the public API.
//!
//! Run with (release + debug assertions, as tokio does):
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release --target-dir /work/target-loom --test loom
//! ```
//!
//! Preemption bound: 2 for every model. `LOOM_MAX_PREEMPTIONS` overrides it;
//! when the variable is unset, [`model`] uses [`DEFAULT_PREEMPTIONS`] rather
//! than loom's unbounded default, so a bare `cargo test` stays fast.
//!
//! What loom checks for us in every model, beyond the asserts:
//!
//! - the set's atomics (`src/engine/loom.rs` swaps in loom's types under
//!   `cfg(loom)`) are explored under the C11 memory model, and the
//!   parent's `AtomicWaker` cell is a loom `UnsafeCell`, so a torn
//!   register/wake is a causality error;
//! - [`Msg`] is a loom `UnsafeCell`: the waking thread writes it before
//!   `wake()` and the child reads it when polled again, so loom fails the
//!   model if the engine's Release/Acquire chain (`mark` → `refill`, push →
//!   `occupant`) does not order the two;
//! - the parent waker is a loom `Arc`, so a leaked registration (a parent
//!   waker clone the set never drops) is reported as "Arc leaked".
//!
//! What the children check themselves ([`Probe`], [`Feed`]): that they are
//! never polled after their drop (a poll of a finished, cancelled or
//! cleared child) and never twice in one `poll_next` call (rule C2, via
//! [`OncePerCall`]).
//!
//! What loom cannot see: the header, record pages and child slots are plain
//! `Box`es, so a use-after-free or leak of those is invisible here; run the
//! same scenarios under Miri or ASan for that.
//!
//! Every model tallies how its executions ended (which side saw the wake,
//! what a concurrent reader saw) and asserts that each interesting outcome
//! occurred, so a model cannot pass by never reaching the race it is about.
//!
//! Threads: at most 3 per model (loom allows 4 with the main thread).
#![cfg(loom)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Instant;

use futures::Stream;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{
    AtomicUsize,
    Ordering::{Acquire, Release, SeqCst},
};
use loom::sync::Arc;
use loom::thread;
use velodrome::{FuturesUnordered, Priority, StreamsUnordered};

/// Preemption bound used when `LOOM_MAX_PREEMPTIONS` is unset.
const DEFAULT_PREEMPTIONS: usize = 2;

/// How the executions of one model ended: outcome name → executions.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<&'static str, usize>>);

impl Tally {
    /// Records that this execution ended with `outcome`.
    fn note(&self, outcome: &'static str) {
        *self.0.lock().unwrap().entry(outcome).or_default() += 1;
    }
}

/// The outcomes of a finished model.
struct Outcomes(BTreeMap<&'static str, usize>);

impl Outcomes {
    /// Asserts that some execution ended with each of `outcomes`: the model
    /// reached the interleavings it exists for.
    fn assert_seen(&self, outcomes: &[&str]) {
        for outcome in outcomes {
            assert!(
                self.0.get(outcome).copied().unwrap_or(0) > 0,
                "no execution ended with {outcome:?}; outcomes: {:?}",
                self.0
            );
        }
    }
}

/// Runs `f` under loom with the file's preemption bound, prints how many
/// interleavings were explored and how they ended (visible with
/// `--nocapture`), and returns the outcomes `f` noted.
fn model<F>(name: &str, f: F) -> Outcomes
where
    F: Fn(&Tally) + Sync + Send + 'static,
{
    model_with(name, 1_000, f)
}

/// As [`model`], with room for `max_branches` scheduling points per
/// execution (loom's default, 1000, is too few for a model that first fills
/// a whole page).
fn model_with<F>(name: &str, max_branches: usize, f: F) -> Outcomes
where
    F: Fn(&Tally) + Sync + Send + 'static,
{
    let tally = std::sync::Arc::new(Tally::default());
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    builder.max_branches = builder.max_branches.max(max_branches);
    let bound = builder.preemption_bound;
    let shared = tally.clone();
    let start = Instant::now();
    builder.check(move || {
        shared.note("(execution)");
        f(&shared);
    });
    let outcomes = std::mem::take(&mut *tally.0.lock().unwrap());
    println!(
        "{name}: preemption bound {bound:?}, {:.2?}, {outcomes:?}",
        start.elapsed(),
    );
    Outcomes(outcomes)
}

// ---------------------------------------------------------------------------
// The parent task: a waker that counts its wakes.
// ---------------------------------------------------------------------------

/// The parent task's waker: a loom `Arc` around a loom counter, so wakes from
/// any loom thread are modelled and a leaked clone fails the model.
struct Parent {
    wakes: Arc<AtomicUsize>,
    waker: Waker,
    /// `poll_next` calls made so far by [`drive`] and friends; children
    /// compare it across their polls (see [`OncePerCall`]).
    calls: Rc<Cell<usize>>,
}

static PARENT_VTABLE: RawWakerVTable =
    RawWakerVTable::new(parent_clone, parent_wake, parent_wake_by_ref, parent_drop);

unsafe fn parent_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` came from `Arc::into_raw` in `Parent::new` and the waker
    // being cloned holds one strong reference.
    unsafe { Arc::increment_strong_count(data.cast::<AtomicUsize>()) };
    RawWaker::new(data, &PARENT_VTABLE)
}

unsafe fn parent_wake(data: *const ()) {
    // SAFETY: the waker's own reference is consumed by the drop, after use.
    unsafe {
        parent_wake_by_ref(data);
        parent_drop(data);
    }
}

unsafe fn parent_wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds a strong reference, so the counter is alive.
    let wakes = unsafe { &*data.cast::<AtomicUsize>() };
    // SeqCst: the test reads the count after joining; any ordering would do.
    wakes.fetch_add(1, SeqCst);
}

unsafe fn parent_drop(data: *const ()) {
    // SAFETY: the waker gives up its one strong reference.
    unsafe { Arc::decrement_strong_count(data.cast::<AtomicUsize>()) };
}

impl Parent {
    fn new() -> Self {
        let wakes = Arc::new(AtomicUsize::new(0));
        let data = Arc::into_raw(wakes.clone()).cast::<()>();
        // SAFETY: the vtable functions above uphold the `RawWaker` contract
        // for a pointer from `Arc::into_raw`.
        let waker = unsafe { Waker::from_raw(RawWaker::new(data, &PARENT_VTABLE)) };
        Parent {
            wakes,
            waker,
            calls: Rc::new(Cell::new(0)),
        }
    }

    fn wakes(&self) -> usize {
        self.wakes.load(SeqCst)
    }

    /// Strong references to the counter besides `self.wakes`: our waker and
    /// every clone the set still holds.
    fn waker_refs(&self) -> usize {
        Arc::strong_count(&self.wakes) - 1
    }
}

/// Polls `set` (any of the crate's sets) the way an executor would for the parent task: again at once
/// after `Ready(Some)`, and after `Pending` only if the parent was woken
/// since `seen` (the count of wakes already consumed). Stops at `Pending`
/// with no new wake, or at `Ready(None)`; returns whether it ended there.
///
/// Use only while no other thread can wake the parent (before spawning,
/// after joining): see [`race`] for the concurrent phase.
fn drive<S: Stream + Unpin>(
    set: &mut S,
    parent: &Parent,
    seen: &mut usize,
    out: &mut Vec<S::Item>,
) -> bool {
    drive_at_most(set, parent, seen, out, usize::MAX)
}

/// Polls the set concurrently with the waking threads: as [`drive`], but
/// re-polls after a wake at most [`RACING_REPOLLS`] times.
///
/// The bound keeps loom from spinning: while a waking thread is paused
/// inside `AtomicWaker::take` (between setting and clearing WAKING),
/// `register` wakes the parent itself on every poll (as futures'
/// `AtomicWaker` does), so an unbounded executor loop never ends in a
/// schedule that never resumes that thread. It is not a `yield_now`, which
/// would make loom run the waking threads before every re-poll and so hide
/// the "re-polled before the bits were set" interleavings. A wake seen after
/// the last allowed re-poll is left unconsumed in `seen`, so [`resume`]
/// still acts on it: the bound never hides a wake.
fn race<S: Stream + Unpin>(
    set: &mut S,
    parent: &Parent,
    seen: &mut usize,
    out: &mut Vec<S::Item>,
) -> bool {
    drive_at_most(set, parent, seen, out, RACING_REPOLLS)
}

/// Wake-driven re-polls of the set, per model, while other threads run.
const RACING_REPOLLS: usize = 2;

fn drive_at_most<S: Stream + Unpin>(
    set: &mut S,
    parent: &Parent,
    seen: &mut usize,
    out: &mut Vec<S::Item>,
    max_repolls: usize,
) -> bool {
    let mut cx = Context::from_waker(&parent.waker);
    let mut repolls = 0;
    loop {
        parent.calls.set(parent.calls.get() + 1);
        match Pin::new(&mut *set).poll_next(&mut cx) {
            Poll::Ready(Some(output)) => out.push(output),
            Poll::Ready(None) => return true,
            Poll::Pending => {
                let wakes = parent.wakes();
                if wakes == *seen || repolls == max_repolls {
                    // Idle, or out of re-polls: a new wake stays unconsumed
                    // for `resume`.
                    return false;
                }
                *seen = wakes;
                repolls += 1;
            }
        }
    }
}

/// After the waking threads are joined: the executor polls the task again
/// only if the parent was woken since `seen`; then as [`drive`]. Returns
/// whether the set ended.
fn resume<S: Stream + Unpin>(
    set: &mut S,
    parent: &Parent,
    seen: &mut usize,
    out: &mut Vec<S::Item>,
) -> bool {
    let wakes = parent.wakes();
    if wakes == *seen {
        return false;
    }
    *seen = wakes;
    drive(set, parent, seen, out)
}

// ---------------------------------------------------------------------------
// Children.
// ---------------------------------------------------------------------------

/// Data a waking thread hands to a child: written before `wake()`, read by
/// the child's next poll. A loom cell, so loom checks that the engine orders
/// the write before the read.
struct Msg(UnsafeCell<u32>);

// SAFETY: the cell is written by one thread before it wakes the child and
// read by the child only after the set saw that wake; whether that is
// ordered is exactly what loom checks on every access.
unsafe impl Sync for Msg {}

impl Msg {
    fn new(value: u32) -> Self {
        Msg(UnsafeCell::new(value))
    }

    fn write(&self, value: u32) {
        // SAFETY: see `impl Sync`; loom reports any unordered access.
        self.0.with_mut(|p| unsafe { *p = value });
    }

    fn read(&self) -> u32 {
        // SAFETY: as above.
        self.0.with(|p| unsafe { *p })
    }
}

/// A child that is `Pending` on its first poll, handing a clone of its waker
/// to the test through `stash`, and on any later poll is `Ready` with the
/// value of its `msg` (so a poll that is not ordered after the wake is a
/// loom causality error).
struct Child {
    msg: Arc<Msg>,
    stash: Rc<Cell<Option<Waker>>>,
    polls: usize,
    drops: Rc<Cell<usize>>,
}

impl Child {
    fn new() -> (Child, Arc<Msg>, Rc<Cell<Option<Waker>>>, Rc<Cell<usize>>) {
        let msg = Arc::new(Msg::new(0));
        let stash = Rc::new(Cell::new(None));
        let drops = Rc::new(Cell::new(0));
        let child = Child {
            msg: msg.clone(),
            stash: stash.clone(),
            polls: 0,
            drops: drops.clone(),
        };
        (child, msg, stash, drops)
    }
}

impl Future for Child {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.polls += 1;
        if self.polls == 1 {
            self.stash.set(Some(cx.waker().clone()));
            return Poll::Pending;
        }
        Poll::Ready(self.msg.read())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// A child that is `Ready` at once with its value; the value lives in a loom
/// cell created by the pushing thread, so reading it from another thread is
/// checked against the push's publication.
struct Value(Msg);

impl Value {
    fn new(value: u32) -> Self {
        Value(Msg::new(value))
    }
}

impl Future for Value {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(self.0.read())
    }
}

/// A child that needs two wakes: `Pending` until it sees that its waker
/// thread has sent twice (`sent`, published with Release before each wake),
/// then `Ready(2)`. Its first poll hands out its waker like [`Child`].
struct Twice {
    sent: Arc<AtomicUsize>,
    stash: Rc<Cell<Option<Waker>>>,
    polls: usize,
}

impl Future for Twice {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls += 1;
        if self.polls == 1 {
            self.stash.set(Some(cx.waker().clone()));
            return Poll::Pending;
        }
        // Acquire: pairs with the sender's Release increments.
        match self.sent.load(Acquire) {
            2 => Poll::Ready(2),
            _ => Poll::Pending,
        }
    }
}

/// Checks rule C2 from inside a child: each [`drive`]-family call of
/// `poll_next` polls the child at most once (so a cycle never polls it
/// twice, and a cycle without output never rolls into another).
struct OncePerCall {
    calls: Rc<Cell<usize>>,
    last: usize,
}

impl OncePerCall {
    fn new(parent: &Parent) -> Self {
        OncePerCall {
            calls: parent.calls.clone(),
            last: 0,
        }
    }

    /// Called at each poll of the child.
    fn check(&mut self, who: &str) {
        let call = self.calls.get();
        assert_ne!(
            call, self.last,
            "{who} was polled twice in one poll_next call"
        );
        self.last = call;
    }
}

/// What the test keeps of a [`Probe`] it pushed.
struct ProbeHandle {
    /// Read by the probe when it completes; written by a waking thread.
    msg: Arc<Msg>,
    /// Until set, every poll after the first is `Pending`.
    go: Rc<Cell<bool>>,
    stash: Rc<Cell<Option<Waker>>>,
    polls: Rc<Cell<usize>>,
    drops: Rc<Cell<usize>>,
}

/// A child future that counts its polls and drops. Its first poll hands a
/// clone of its waker to the test (through `stash`) and is `Pending` (unless
/// it was made `ready_first`); later polls are `Ready` with `msg` once `go`
/// is set, else `Pending`. It fails the model if it is polled after its
/// drop (a poll of a finished or cancelled child: the slot is vacant, so
/// the poller would be polling dropped memory) or twice in one call.
struct Probe {
    name: &'static str,
    ready_first: bool,
    msg: Arc<Msg>,
    go: Rc<Cell<bool>>,
    stash: Rc<Cell<Option<Waker>>>,
    polls: Rc<Cell<usize>>,
    drops: Rc<Cell<usize>>,
    once: OncePerCall,
}

impl Probe {
    /// A probe `Pending` at its first poll; `go` says whether it is `Ready`
    /// at the next one (true) or waits for the test to set its `go` flag.
    fn new(parent: &Parent, name: &'static str, go: bool) -> (Probe, ProbeHandle) {
        let handle = ProbeHandle {
            msg: Arc::new(Msg::new(0)),
            go: Rc::new(Cell::new(go)),
            stash: Rc::new(Cell::new(None)),
            polls: Rc::new(Cell::new(0)),
            drops: Rc::new(Cell::new(0)),
        };
        let probe = Probe {
            name,
            ready_first: false,
            msg: handle.msg.clone(),
            go: handle.go.clone(),
            stash: handle.stash.clone(),
            polls: handle.polls.clone(),
            drops: handle.drops.clone(),
            once: OncePerCall::new(parent),
        };
        (probe, handle)
    }

    /// A probe `Ready` with `value` at its first poll.
    fn ready(parent: &Parent, name: &'static str, value: u32) -> (Probe, ProbeHandle) {
        let (mut probe, handle) = Probe::new(parent, name, true);
        probe.ready_first = true;
        handle.msg.write(value);
        (probe, handle)
    }
}

impl Future for Probe {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        assert_eq!(
            self.drops.get(),
            0,
            "{} was polled after it was dropped",
            self.name
        );
        let name = self.name;
        self.once.check(name);
        self.polls.set(self.polls.get() + 1);
        if self.polls.get() == 1 && !self.ready_first {
            self.stash.set(Some(cx.waker().clone()));
            return Poll::Pending;
        }
        if self.go.get() {
            Poll::Ready(self.msg.read())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// What the test keeps of a [`Feed`].
struct FeedHandle {
    sent: Arc<AtomicUsize>,
    /// Set by the sender after its wake returned.
    woke: Arc<AtomicUsize>,
    /// Whether the poll that yielded [`Feed::SENT`] saw `woke` set.
    saw_woke: Rc<Cell<bool>>,
    may_end: Rc<Cell<bool>>,
    stash: Rc<Cell<Option<Waker>>>,
    /// Polls that found nothing sent yet.
    pending_before_send: Rc<Cell<usize>>,
    /// Polls after it yielded [`Feed::SENT`], before it may end.
    polls_after_item: Rc<Cell<usize>>,
    drops: Rc<Cell<usize>>,
}

/// A stream whose first poll hands a clone of its waker to the test and
/// yields [`Feed::FIRST`] at once (so the poller re-queues it by marking its
/// own woken bit, rule C1). Then it yields [`Feed::SENT`] once it sees the
/// other thread's `sent` flag (`Pending` before), and then ends once the
/// test sets `may_end` (`Pending` before). Fails the model if it is polled
/// after it ended or was dropped, or twice in one `poll_next` call.
struct Feed {
    sent: Arc<AtomicUsize>,
    woke: Arc<AtomicUsize>,
    saw_woke: Rc<Cell<bool>>,
    may_end: Rc<Cell<bool>>,
    stash: Rc<Cell<Option<Waker>>>,
    polls: usize,
    got: bool,
    ended: bool,
    pending_before_send: Rc<Cell<usize>>,
    polls_after_item: Rc<Cell<usize>>,
    drops: Rc<Cell<usize>>,
    once: OncePerCall,
}

impl Feed {
    const FIRST: u32 = 10;
    const SENT: u32 = 7;

    fn new(parent: &Parent) -> (Feed, FeedHandle) {
        let handle = FeedHandle {
            sent: Arc::new(AtomicUsize::new(0)),
            woke: Arc::new(AtomicUsize::new(0)),
            saw_woke: Rc::new(Cell::new(false)),
            may_end: Rc::new(Cell::new(false)),
            stash: Rc::new(Cell::new(None)),
            pending_before_send: Rc::new(Cell::new(0)),
            polls_after_item: Rc::new(Cell::new(0)),
            drops: Rc::new(Cell::new(0)),
        };
        let feed = Feed {
            sent: handle.sent.clone(),
            woke: handle.woke.clone(),
            saw_woke: handle.saw_woke.clone(),
            may_end: handle.may_end.clone(),
            stash: handle.stash.clone(),
            polls: 0,
            got: false,
            ended: false,
            pending_before_send: handle.pending_before_send.clone(),
            polls_after_item: handle.polls_after_item.clone(),
            drops: handle.drops.clone(),
            once: OncePerCall::new(parent),
        };
        (feed, handle)
    }
}

impl Stream for Feed {
    type Item = u32;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        assert_eq!(self.drops.get(), 0, "the stream was polled after its drop");
        assert!(!self.ended, "the stream was polled after it ended");
        self.once.check("the stream");
        self.polls += 1;
        if self.polls == 1 {
            self.stash.set(Some(cx.waker().clone()));
            return Poll::Ready(Some(Feed::FIRST));
        }
        if !self.got {
            // Acquire: pairs with the sender's Release store.
            if self.sent.load(Acquire) == 1 {
                self.got = true;
                // Acquire: if set, the sender's whole wake happened before
                // this poll.
                self.saw_woke.set(self.woke.load(Acquire) == 1);
                return Poll::Ready(Some(Feed::SENT));
            }
            self.pending_before_send
                .set(self.pending_before_send.get() + 1);
            return Poll::Pending;
        }
        if self.may_end.get() {
            self.ended = true;
            return Poll::Ready(None);
        }
        self.polls_after_item.set(self.polls_after_item.get() + 1);
        Poll::Pending
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// Waits for `handle` and re-raises a panic of its thread.
fn join<T>(handle: thread::JoinHandle<T>) -> T {
    handle.join().expect("model thread panicked")
}

// ---------------------------------------------------------------------------
// Models.
// ---------------------------------------------------------------------------

/// A child's waker is woken on another thread while the poller runs a cycle
/// (its `refill` swaps the three bit levels) with an already registered
/// parent waker. No lost wake-up: after the waking thread is joined, either
/// the racing poll already produced the child's output, or the parent was
/// woken and the next poll produces it. The output is the value the waking
/// thread wrote before `wake()`, read without a data race.
#[test]
fn loom_wake_vs_cycle_swap() {
    let outcomes = model("loom_wake_vs_cycle_swap", |tally| {
        let mut set = FuturesUnordered::new();
        let (child, msg, stash, _) = Child::new();
        set.push(child);
        let parent = Parent::new();
        let mut seen = 0;
        let mut out = Vec::new();
        // First poll: the child hands out its waker, the set registers the
        // parent and goes idle.
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        assert_eq!(parent.wakes(), 0, "nothing was woken yet");
        let waker = stash.take().expect("child polled once");

        let waking = thread::spawn(move || {
            msg.write(7);
            waker.wake();
        });
        // Racing poll, with the same parent waker as before.
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        tally.note(if out.is_empty() {
            "wake after the racing poll"
        } else {
            "racing poll saw the wake"
        });
        join(waking);
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        assert_eq!(
            out,
            [7],
            "lost wake-up: the woken child was never polled again"
        );
        assert!(done, "the set ends once its only child is done");
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&["racing poll saw the wake", "wake after the racing poll"]);
}

/// The poller's `poll_next` goes idle and registers a *new* parent waker
/// (replacing the one of the previous poll) while another thread wakes the
/// child. No lost wake-up: either the racing poll saw the wake and produced
/// the output, or the new parent waker was woken (a wake delivered only to
/// the replaced waker would be lost) and the next poll produces it.
#[test]
fn loom_wake_vs_parent_registration() {
    let outcomes = model("loom_wake_vs_parent_registration", |tally| {
        let mut set = FuturesUnordered::new();
        let (child, msg, stash, _) = Child::new();
        set.push(child);
        let old_parent = Parent::new();
        let mut old_seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &old_parent, &mut old_seen, &mut out));
        let waker = stash.take().expect("child polled once");

        let waking = thread::spawn(move || {
            msg.write(7);
            waker.wake();
        });
        let parent = Parent::new();
        let mut seen = 0;
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        tally.note(if out.is_empty() {
            "wake after the racing poll"
        } else {
            "racing poll saw the wake"
        });
        join(waking);
        if old_parent.wakes() > 0 {
            tally.note("the replaced parent waker was woken");
        }
        if !done {
            // Only a wake of the *current* parent waker counts: the executor
            // would not poll the task for the replaced one.
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        assert_eq!(
            out,
            [7],
            "lost wake-up: the wake raced past the new registration"
        );
        assert!(done);
        drop(set);
        assert_eq!(
            old_parent.waker_refs(),
            1,
            "the replaced parent waker was not dropped"
        );
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "racing poll saw the wake",
        "wake after the racing poll",
        "the replaced parent waker was woken",
    ]);
}

/// As `loom_wake_vs_parent_registration`, with a child that needs two wakes
/// from the other thread. A `register` that finds a wake in progress cannot
/// store the new parent waker (the waking thread holds the cell and wakes
/// the old one), so it must wake the new one itself: otherwise, after the
/// child's second poll goes `Pending` again, the second wake finds no waker
/// and is lost.
#[test]
fn loom_second_wake_vs_parent_registration() {
    let outcomes = model("loom_second_wake_vs_parent_registration", |tally| {
        let mut set = FuturesUnordered::new();
        let sent = Arc::new(AtomicUsize::new(0));
        let stash = Rc::new(Cell::new(None));
        set.push(Twice {
            sent: sent.clone(),
            stash: stash.clone(),
            polls: 0,
        });
        let old_parent = Parent::new();
        let mut old_seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &old_parent, &mut old_seen, &mut out));
        let waker = stash.take().expect("child polled once");

        let waking = thread::spawn(move || {
            sent.fetch_add(1, Release);
            waker.wake_by_ref();
            sent.fetch_add(1, Release);
            waker.wake();
        });
        let parent = Parent::new();
        let mut seen = 0;
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        tally.note(if out.is_empty() {
            "wakes after the racing poll"
        } else {
            "racing poll saw both wakes"
        });
        join(waking);
        if old_parent.wakes() > 0 {
            tally.note("the replaced parent waker was woken");
        }
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        assert_eq!(
            out,
            [2],
            "lost wake-up: the second wake found no parent waker"
        );
        assert!(done);
        drop(set);
        assert_eq!(
            old_parent.waker_refs(),
            1,
            "the replaced parent waker was not dropped"
        );
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "racing poll saw both wakes",
        "wakes after the racing poll",
        "the replaced parent waker was woken",
    ]);
}

/// What the thread holding the child's waker does while the set is dropped.
#[derive(Clone, Copy, Debug)]
enum Holder {
    Drop,
    Wake,
    CloneWakeByRefDrop,
}

/// One model of `loom_waker_*_vs_set_drop`: the child's waker clone is moved
/// to another thread, which uses it as `holder` says while the main thread
/// drops the set. The child is dropped exactly once, on the main thread; the
/// set's parent waker clone is released; nothing panics.
fn waker_vs_set_drop(name: &str, holder: Holder) {
    let outcomes = model(name, move |tally| {
        let mut set = FuturesUnordered::new();
        let (child, _msg, stash, drops) = Child::new();
        set.push(child);
        let parent = Parent::new();
        let mut seen = 0;
        assert!(!drive(&mut set, &parent, &mut seen, &mut Vec::new()));
        let waker = stash.take().expect("child polled once");

        let holding = thread::spawn(move || match holder {
            Holder::Drop => drop(waker),
            Holder::Wake => waker.wake(),
            Holder::CloneWakeByRefDrop => {
                let clone = waker.clone();
                drop(waker);
                clone.wake_by_ref();
                drop(clone);
            }
        });
        drop(set);
        assert_eq!(
            drops.get(),
            1,
            "{holder:?}: the child is dropped with the set"
        );
        join(holding);
        if !matches!(holder, Holder::Drop) {
            // Not reached: the set vacated the slot or took the parent
            // waker out before the wake got there.
            tally.note(if parent.wakes() > 0 {
                "the wake reached the parent"
            } else {
                "the wake did not reach the parent"
            });
        }
        assert_eq!(
            drops.get(),
            1,
            "{holder:?}: the child is dropped exactly once"
        );
        assert_eq!(
            parent.waker_refs(),
            1,
            "{holder:?}: a parent waker clone leaked"
        );
    });
    if !matches!(holder, Holder::Drop) {
        outcomes.assert_seen(&[
            "the wake reached the parent",
            "the wake did not reach the parent",
        ]);
    }
}

/// The waker's last reference is dropped on another thread while the set is
/// dropped: whichever side drops last frees the header, exactly once.
#[test]
fn loom_waker_drop_vs_set_drop() {
    waker_vs_set_drop("loom_waker_drop_vs_set_drop", Holder::Drop);
}

/// As `loom_waker_drop_vs_set_drop`, but the waker is woken (and so dropped)
/// racing with the set's drop: the wake reads the slot's state and may mark
/// bits and wake the parent while the set vacates the slot and takes the
/// parent waker out.
#[test]
fn loom_waker_wake_vs_set_drop() {
    waker_vs_set_drop("loom_waker_wake_vs_set_drop", Holder::Wake);
}

/// As above, with a clone made on the other thread (a reference increment
/// racing with the set's decrement) and woken by reference.
#[test]
fn loom_waker_clone_wake_vs_set_drop() {
    waker_vs_set_drop(
        "loom_waker_clone_wake_vs_set_drop",
        Holder::CloneWakeByRefDrop,
    );
}

/// How many children the set already holds (or held) when the concurrent
/// pushes start.
#[derive(Clone, Copy, Debug)]
enum Before {
    /// Empty: both pushes claim fresh indices 0 and 1 in page 0, which a
    /// new set has not allocated yet, so both race to allocate its record
    /// page and its slot page (the loser frees its own).
    Nothing,
    /// One finished child: the first claim takes its recycled index 0, the
    /// second a fresh index.
    OneRecycled,
    /// A full page 0: both pushes land in page 1, which does not exist yet
    /// (the same allocation race, past the first page boundary).
    FullPage,
}

/// Two threads push through `&set` while the main thread iterates over it
/// through `&set`. The iteration yields only fully pushed children (reading
/// each one's value is ordered after its push); after the join, `len` counts
/// both pushes, and draining yields every pushed output exactly once.
fn concurrent_push(name: &str, before: Before) {
    let branches = match before {
        Before::FullPage => 5_000,
        _ => 1_000,
    };
    let outcomes = model_with(name, branches, move |tally| {
        let mut set = FuturesUnordered::new();
        let mut expected = Vec::new();
        let parent = Parent::new();
        let mut seen = 0;
        match before {
            Before::Nothing => {}
            Before::OneRecycled => {
                set.push(Value::new(100));
                let mut out = Vec::new();
                assert!(drive(&mut set, &parent, &mut seen, &mut out));
                assert_eq!(out, [100]);
            }
            Before::FullPage => {
                for i in 0..64 {
                    set.push(Value::new(100 + i));
                    expected.push(100 + i);
                }
            }
        }
        let already = set.len();
        let set = Arc::new(set);
        let pushers: Vec<_> = [1, 2]
            .into_iter()
            .map(|value| {
                let set = set.clone();
                thread::spawn(move || set.push(Value::new(value)))
            })
            .collect();

        // Concurrent readers through `&set`.
        let len = set.len();
        assert!(
            (already..=already + 2).contains(&len),
            "{before:?}: len {len} mid-push"
        );
        let mut fresh_seen = Vec::new();
        for child in set.iter() {
            let value = child.0.read();
            if value < 100 {
                fresh_seen.push(value);
            }
        }
        let fresh = fresh_seen.len();
        fresh_seen.sort();
        fresh_seen.dedup();
        assert_eq!(
            fresh_seen.len(),
            fresh,
            "{before:?}: iter yielded a child twice"
        );
        tally.note(["iter saw 0 pushes", "iter saw 1 push", "iter saw 2 pushes"][fresh]);

        for pusher in pushers {
            join(pusher);
        }
        let Ok(mut set) = Arc::try_unwrap(set) else {
            panic!("pushers still hold the set");
        };
        assert_eq!(set.len(), already + 2, "{before:?}: len after both pushes");
        assert_eq!(
            set.iter().count(),
            already + 2,
            "{before:?}: iter after both pushes"
        );
        let mut out = Vec::new();
        assert!(
            drive(&mut set, &parent, &mut seen, &mut out),
            "{before:?}: drained"
        );
        out.sort();
        expected.extend([1, 2]);
        expected.sort();
        assert_eq!(
            out, expected,
            "{before:?}: every push comes out exactly once"
        );
        assert!(set.is_empty());
    });
    outcomes.assert_seen(&["iter saw 0 pushes", "iter saw 1 push", "iter saw 2 pushes"]);
}

/// Two concurrent pushes into an empty set.
#[test]
fn loom_concurrent_push() {
    concurrent_push("loom_concurrent_push", Before::Nothing);
}

/// Two concurrent pushes, one of which reuses a freed slot.
#[test]
fn loom_concurrent_push_into_recycled_slot() {
    concurrent_push(
        "loom_concurrent_push_into_recycled_slot",
        Before::OneRecycled,
    );
}

/// Two concurrent pushes that both need page 1 (after 64 children filled
/// page 0): the record-page and slot-page allocations race, the loser frees
/// its page, and both children end up in the winner's.
#[test]
fn loom_concurrent_push_across_page_boundary() {
    concurrent_push(
        "loom_concurrent_push_across_page_boundary",
        Before::FullPage,
    );
}

/// Two children in the same bitset word are woken from two threads at once
/// while the poller runs (and refills). Both are polled again: the second
/// `mark` into a non-empty word wakes nobody and relies on the first to
/// propagate the summary and top bits and wake the parent (rule W2), and the
/// poller's top-down swaps must not lose either bit (W3).
#[test]
fn loom_two_wakers_same_word() {
    let outcomes = model("loom_two_wakers_same_word", |tally| {
        let mut set = FuturesUnordered::new();
        let (a, msg_a, stash_a, _) = Child::new();
        let (b, msg_b, stash_b, _) = Child::new();
        set.push(a);
        set.push(b);
        let parent = Parent::new();
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        let waker_a = stash_a.take().expect("a polled once");
        let waker_b = stash_b.take().expect("b polled once");

        let waking_a = thread::spawn(move || {
            msg_a.write(1);
            waker_a.wake();
        });
        let waking_b = thread::spawn(move || {
            msg_b.write(2);
            waker_b.wake();
        });
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        tally.note(
            [
                "racing poll saw neither wake",
                "racing poll saw one wake",
                "racing poll saw both wakes",
            ][out.len()],
        );
        join(waking_a);
        join(waking_b);
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        out.sort();
        assert_eq!(
            out,
            [1, 2],
            "lost wake-up: a woken child was never polled again"
        );
        assert!(done);
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "racing poll saw neither wake",
        "racing poll saw one wake",
        "racing poll saw both wakes",
    ]);
}

/// `StreamsUnordered` self-marking (rule C1) racing a wake. A stream that
/// yields an item is re-queued by the poller, which marks the stream's own
/// woken bit (`fetch_or` into the same word a waker uses) right after the
/// poll. Here another thread sets the stream's `sent` flag and wakes it
/// while the poller swaps bits (`refill`), polls the stream and re-marks it:
/// the wake may land on the bit the self-mark set, the self-mark on the bit
/// the wake set, or either on a clear word.
///
/// Checked: no lost wake-up (the sent item comes out, and the stream is
/// re-polled after each item it yields); the poll that consumed the wake
/// sees what the sender stored before `wake()`; no double poll (at most once
/// per `poll_next` call; after its last item at most one poll for the
/// self-mark and one for the wake, and exactly one when the two shared a
/// queued bit); the stream is dropped exactly once, when it ends, and never
/// polled after.
#[test]
fn loom_stream_self_mark_vs_wake() {
    let outcomes = model("loom_stream_self_mark_vs_wake", |tally| {
        let parent = Parent::new();
        let mut set = StreamsUnordered::new();
        let (feed, handle) = Feed::new(&parent);
        set.push(feed);
        let mut seen = 0;
        let mut out = Vec::new();
        // One `poll_next` call: the stream hands out its waker, yields its
        // first item and is marked woken by the poller.
        let mut cx = Context::from_waker(&parent.waker);
        parent.calls.set(parent.calls.get() + 1);
        match Pin::new(&mut set).poll_next(&mut cx) {
            Poll::Ready(Some(item)) => out.push(item),
            other => panic!("first poll: {other:?}"),
        }
        let waker = handle.stash.take().expect("stream polled once");

        let (sent, woke) = (handle.sent.clone(), handle.woke.clone());
        let sender = thread::spawn(move || {
            sent.store(1, Release);
            waker.wake_by_ref();
            woke.store(1, Release);
            waker
        });
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        let waker = join(sender);
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        assert!(!done, "the stream has not ended");
        assert_eq!(
            out,
            [Feed::FIRST, Feed::SENT],
            "lost wake-up: the stream's items did not all come out"
        );
        let after = handle.polls_after_item.get();
        assert!(
            after >= 1,
            "the stream was not re-polled after its item (self-mark lost)"
        );
        assert!(
            after <= 2,
            "the stream was polled {after} times after its item: only the \
             self-mark and the one wake may re-queue it"
        );
        if handle.saw_woke.get() {
            // The whole wake came before the poll yielding SENT, so before
            // the self-mark that followed it: the wake was consumed by that
            // poll or shares its bit with that self-mark. Exactly one more
            // poll.
            assert_eq!(
                after, 1,
                "the wake was done before the item's poll, yet the stream \
                 was polled {after} times after its item"
            );
            if handle.pending_before_send.get() == 0 {
                // The stream never idled: the wake landed on the bit the
                // first self-mark set, or the second self-mark on its bit.
                tally.note("the wake and the self-mark shared one queued bit");
            }
        }
        tally.note(if handle.pending_before_send.get() > 0 {
            "the stream went Pending before the send"
        } else {
            "the stream saw the send at its next poll"
        });
        if after == 2 {
            tally.note("the wake re-polled the stream after the self-mark's poll");
        }

        assert_eq!(handle.drops.get(), 0, "dropped before it ended");
        handle.may_end.set(true);
        waker.wake();
        assert!(
            resume(&mut set, &parent, &mut seen, &mut out),
            "lost wake-up: the set did not end with its stream"
        );
        assert_eq!(out, [Feed::FIRST, Feed::SENT]);
        assert_eq!(handle.drops.get(), 1, "the stream is dropped when it ends");
        drop(set);
        assert_eq!(handle.drops.get(), 1, "the stream is dropped exactly once");
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "the stream went Pending before the send",
        "the stream saw the send at its next poll",
        "the wake re-polled the stream after the self-mark's poll",
        "the wake and the self-mark shared one queued bit",
    ]);
}

/// How the owner takes a child out of the set in `removal_vs_wake`.
#[derive(Clone, Copy, Debug)]
enum Removal {
    Cancel,
    Remove,
    Clear,
}

/// One model of `loom_{cancel,remove,clear}_vs_wake`. A thread holding a
/// child's waker wakes it (and so drops it) while the owner takes the child
/// out by key (`cancel`, `remove`) or with `clear`, then inserts a new child
/// that reuses the slot (next generation) and polls the set. The wake reads
/// the record's state and, if it still saw the old occupant, may set the
/// woken bit after the removal cleared it (`unmark`).
///
/// Checked: the removed child is dropped exactly once, at the removal, and
/// never polled after it; its key matches nothing; the new occupant is
/// polled (its push is not lost), at most once spuriously for the stale
/// wake (rule G1), and not at all when the wake is ordered after the reuse
/// (the generation tag must stop it); the new occupant's own wake still
/// completes it; the set releases its parent waker. (The header's reference
/// count is a plain `Box`, invisible to loom: Miri and ASan cover its leaks.)
fn removal_vs_wake(name: &str, removal: Removal) {
    let outcomes = model(name, move |tally| {
        let parent = Parent::new();
        let mut set = FuturesUnordered::new();
        let (old, old_handle) = Probe::new(&parent, "the removed child", true);
        let old_key = set.insert(old);
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        let waker = old_handle.stash.take().expect("polled once");

        let reused = Arc::new(AtomicUsize::new(0));
        let waking = {
            let reused = reused.clone();
            thread::spawn(move || {
                // Acquire: if set, the reuse happens before this wake.
                let after_reuse = reused.load(Acquire) == 1;
                waker.wake();
                after_reuse
            })
        };
        match removal {
            Removal::Cancel => assert!(set.cancel(old_key)),
            Removal::Remove => drop(set.remove(old_key).expect("the child is there")),
            Removal::Clear => set.clear(),
        }
        assert_eq!(
            old_handle.drops.get(),
            1,
            "{removal:?}: the child is dropped once, at once"
        );
        assert!(!set.contains(old_key), "{removal:?}: the key still matches");
        let (new, new_handle) = Probe::new(&parent, "the new occupant", false);
        let new_key = set.insert(new);
        // Release: orders the reuse before a wake that sees the flag.
        reused.store(1, Release);
        assert_eq!(new_key.index(), old_key.index(), "the slot is reused");
        assert!(!set.contains(old_key), "{removal:?}: a stale key matches");
        assert!(set.contains(new_key));

        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        let after_reuse = join(waking);
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        assert!(!done && out.is_empty(), "{removal:?}: nothing is finished");
        let polls = new_handle.polls.get();
        assert!(polls >= 1, "{removal:?}: the new occupant was never polled");
        assert!(
            polls <= 2,
            "{removal:?}: the stale wake polled the new occupant {} times",
            polls - 1
        );
        if after_reuse {
            assert_eq!(
                polls, 1,
                "{removal:?}: a wake ordered after the reuse reached the new \
                 occupant (generation tag not checked)"
            );
            tally.note("the wake came after the reuse");
        } else if polls == 2 {
            tally.note("the stale wake polled the new occupant once (G1)");
        } else {
            tally.note("the stale wake raced and did nothing");
        }

        // The new occupant's own waker still works.
        new_handle.msg.write(5);
        new_handle.go.set(true);
        new_handle.stash.take().expect("polled").wake();
        assert!(
            resume(&mut set, &parent, &mut seen, &mut out),
            "{removal:?}: lost wake-up of the new occupant"
        );
        assert_eq!(out, [5]);
        assert_eq!(old_handle.drops.get(), 1, "{removal:?}: dropped twice");
        assert_eq!(new_handle.drops.get(), 1);
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "the wake came after the reuse",
        "the stale wake polled the new occupant once (G1)",
        "the stale wake raced and did nothing",
    ]);
}

/// `cancel` by key racing the child's wake; see `removal_vs_wake`.
#[test]
fn loom_cancel_vs_wake() {
    removal_vs_wake("loom_cancel_vs_wake", Removal::Cancel);
}

/// `remove` by key (the child is moved out) racing its wake.
#[test]
fn loom_remove_vs_wake() {
    removal_vs_wake("loom_remove_vs_wake", Removal::Remove);
}

/// `clear` (drops every child, drains each lane's woken bits, resets the
/// slot allocator) racing a child's wake.
#[test]
fn loom_clear_vs_wake() {
    removal_vs_wake("loom_clear_vs_wake", Removal::Clear);
}

/// A stale waker vs slot reuse after completion. A child is woken and about
/// to complete; a clone of its waker is woken on another thread while the
/// poller completes the child (`release`: vacate, new generation, `unmark`,
/// slot recycled), polls the emptied set, pushes a new child into the same
/// slot and polls it.
///
/// Checked: the finished child is polled exactly twice and never after its
/// drop (a stale bit for the vacant slot must be skipped); the new occupant
/// is polled at least once (its push is not lost), at most once spuriously
/// for the stale wake (rule G1: only a wake that read the state before the
/// completion), and not at all when the wake is ordered after the reuse;
/// its own wake completes it.
#[test]
fn loom_stale_waker_vs_slot_reuse() {
    let outcomes = model("loom_stale_waker_vs_slot_reuse", |tally| {
        let parent = Parent::new();
        let mut set = FuturesUnordered::new();
        let (old, old_handle) = Probe::new(&parent, "the finished child", true);
        old_handle.msg.write(1);
        set.push(old);
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        let waker = old_handle.stash.take().expect("polled once");
        let stale = waker.clone();
        // Queue the child: its next poll completes it.
        waker.wake();
        assert_eq!(parent.wakes(), 1);

        let reused = Arc::new(AtomicUsize::new(0));
        let waking = {
            let reused = reused.clone();
            thread::spawn(move || {
                // Acquire: if set, the reuse happens before this wake.
                let after_reuse = reused.load(Acquire) == 1;
                stale.wake();
                after_reuse
            })
        };
        // The child completes; the set, empty, ends (possibly after polling
        // a stale bit for the vacant slot).
        assert!(
            race(&mut set, &parent, &mut seen, &mut out),
            "the set ends with its only child"
        );
        assert_eq!(out, [1]);
        assert_eq!(
            old_handle.polls.get(),
            2,
            "the finished child was re-polled"
        );
        assert_eq!(old_handle.drops.get(), 1);
        let (new, new_handle) = Probe::new(&parent, "the new occupant", false);
        set.push(new);
        // Release: orders the reuse before a wake that sees the flag.
        reused.store(1, Release);
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        let after_reuse = join(waking);
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        assert!(!done);
        assert_eq!(out, [1]);
        let polls = new_handle.polls.get();
        assert!(polls >= 1, "lost: the new occupant was never polled");
        assert!(
            polls <= 2,
            "the stale wake polled the new occupant {} times",
            polls - 1
        );
        if after_reuse {
            assert_eq!(
                polls, 1,
                "a wake ordered after the reuse reached the new occupant \
                 (generation tag not checked)"
            );
            tally.note("the wake came after the reuse");
        } else if polls == 2 {
            tally.note("the stale wake polled the new occupant once (G1)");
        } else {
            tally.note("the stale wake raced and did nothing");
        }

        new_handle.msg.write(2);
        new_handle.go.set(true);
        new_handle.stash.take().expect("polled").wake();
        assert!(
            resume(&mut set, &parent, &mut seen, &mut out),
            "lost wake-up of the new occupant"
        );
        assert_eq!(out, [1, 2]);
        assert_eq!(
            old_handle.polls.get(),
            2,
            "the finished child was re-polled"
        );
        assert_eq!(old_handle.drops.get(), 1);
        assert_eq!(new_handle.drops.get(), 1);
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "the wake came after the reuse",
        "the stale wake polled the new occupant once (G1)",
        "the stale wake raced and did nothing",
    ]);
}

/// Rule R1, second half: pushes adopted outside `poll_next` (here by
/// `cancel`'s `sync`) race a sibling's wake. The set is idle with its
/// parent waker registered; the owner pushes a child through `&self` and
/// cancels another, so `sync` marks the pushed child woken, while another
/// thread wakes a third child in the same bitset word. Whichever `mark`
/// turns the lane's top word from zero must wake the parent: when the wake
/// comes second it finds the bits set and wakes nobody, so `sync` must.
///
/// Checked: after the join the parent was woken, and polling then yields
/// both the pushed child and the woken one (with the data the waking thread
/// wrote before `wake()`); the cancelled child is dropped once.
#[test]
fn loom_adopted_push_vs_wake() {
    let outcomes = model("loom_adopted_push_vs_wake", |tally| {
        let parent = Parent::new();
        let mut set = FuturesUnordered::new();
        let (woken, woken_handle) = Probe::new(&parent, "the woken child", true);
        let (cancelled, cancelled_handle) = Probe::new(&parent, "the cancelled child", false);
        set.insert(woken);
        let cancelled_key = set.insert(cancelled);
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        let waker = woken_handle.stash.take().expect("polled once");

        let adopted = Arc::new(AtomicUsize::new(0));
        let msg = woken_handle.msg.clone();
        let waking = {
            let adopted = adopted.clone();
            thread::spawn(move || {
                // Acquire: if set, the adoption happens before this wake.
                let after = adopted.load(Acquire) == 1;
                msg.write(7);
                waker.wake();
                after
            })
        };
        let (pushed, _pushed_handle) = Probe::ready(&parent, "the pushed child", 3);
        set.push(pushed);
        assert!(set.cancel(cancelled_key));
        // Release: orders the adoption before a wake that sees the flag.
        adopted.store(1, Release);
        let after = join(waking);
        tally.note(if after {
            "the wake came after the adoption"
        } else {
            "the wake raced with the adoption"
        });
        assert!(
            parent.wakes() > seen,
            "lost wake-up: nobody woke the parent (after: {after})"
        );
        assert!(resume(&mut set, &parent, &mut seen, &mut out));
        out.sort();
        assert_eq!(out, [3, 7], "a woken or pushed child was not polled");
        assert_eq!(cancelled_handle.drops.get(), 1);
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "the wake came after the adoption",
        "the wake raced with the adoption",
    ]);
}

/// Two children in different lanes (`Priority::HIGH` and `Priority::LOW`,
/// so different top words and woken runs than the default lane) are woken
/// from two threads while the poller runs: `mark` must use the child's own
/// lane at every level, `pick` must look at every lane's top word (also in
/// the re-check after registering, rule R1), and the per-lane cycle rule
/// (C2) must not strand one lane's wake behind the other's.
///
/// Checked: both children are polled again, each reading the data its
/// waking thread wrote (whichever lane's wake the poller saw first).
#[test]
fn loom_wakes_in_two_lanes() {
    let outcomes = model("loom_wakes_in_two_lanes", |tally| {
        let parent = Parent::new();
        let mut set = FuturesUnordered::new();
        let (high, high_handle) = Probe::new(&parent, "the high child", true);
        let (low, low_handle) = Probe::new(&parent, "the low child", true);
        set.push_with_priority(low, Priority::LOW);
        set.push_with_priority(high, Priority::HIGH);
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        let waker_high = high_handle.stash.take().expect("polled once");
        let waker_low = low_handle.stash.take().expect("polled once");
        let spawn = |waker: Waker, msg: Arc<Msg>, value| {
            thread::spawn(move || {
                msg.write(value);
                waker.wake();
            })
        };
        let waking_high = spawn(waker_high, high_handle.msg.clone(), 1);
        let waking_low = spawn(waker_low, low_handle.msg.clone(), 2);
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        tally.note(
            [
                "racing poll saw neither wake",
                "racing poll saw one wake",
                "racing poll saw both wakes",
            ][out.len()],
        );
        if out == [2, 1] {
            tally.note("the low lane came first (its wake was seen first)");
        }
        join(waking_high);
        join(waking_low);
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        let mut sorted = out.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [1, 2],
            "lost wake-up: a woken child was never polled again"
        );
        assert!(done);
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "racing poll saw neither wake",
        "racing poll saw one wake",
        "racing poll saw both wakes",
        "the low lane came first (its wake was seen first)",
    ]);
}

/// A child of [`loom_wakes_from_two_pages_vs_unchanged_parent`]: a filler
/// that stays pending, or a [`Child`].
enum Slot {
    Filler,
    Child(Child),
}

impl Future for Slot {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        match self.get_mut() {
            Slot::Filler => Poll::Pending,
            Slot::Child(child) => Pin::new(child).poll(cx),
        }
    }
}

/// Rule P1 with rule R1: the poller polls with the waker it registered in an
/// earlier call, so it registers nothing (no read-modify-write on the
/// parent's state) and goes idle without a re-check, while two children on
/// different record pages are woken from two threads. Each `mark` can turn
/// the lane's top word from zero (the poller's refill clears it in
/// between), so both wakes can reach the parent's `AtomicWaker` at once, and
/// one finds the other holding WAKING and delivers nothing itself: its bits
/// must then be visible to the poll the other wake causes (the holder's
/// unlock acquires them). No lost wake-up: both outputs come out.
#[test]
fn loom_wakes_from_two_pages_vs_unchanged_parent() {
    let outcomes = model_with(
        "loom_wakes_from_two_pages_vs_unchanged_parent",
        20_000,
        |tally| {
            let mut set = FuturesUnordered::new();
            let (a, msg_a, stash_a, _) = Child::new();
            let (b, msg_b, stash_b, _) = Child::new();
            set.push(Slot::Child(a));
            // Indices 1..64 fill page 0, so `b` is on page 1.
            for _ in 1..64 {
                set.push(Slot::Filler);
            }
            set.push(Slot::Child(b));
            let parent = Parent::new();
            let mut seen = 0;
            let mut out = Vec::new();
            assert!(!drive(&mut set, &parent, &mut seen, &mut out));
            let waker_a = stash_a.take().expect("a polled once");
            let waker_b = stash_b.take().expect("b polled once");

            let waking_a = thread::spawn(move || {
                msg_a.write(1);
                waker_a.wake();
            });
            let waking_b = thread::spawn(move || {
                msg_b.write(2);
                waker_b.wake();
            });
            race(&mut set, &parent, &mut seen, &mut out);
            tally.note(
                [
                    "racing poll saw neither wake",
                    "racing poll saw one wake",
                    "racing poll saw both wakes",
                ][out.len()],
            );
            join(waking_a);
            join(waking_b);
            resume(&mut set, &parent, &mut seen, &mut out);
            if parent.wakes() >= 2 {
                tally.note("the parent was woken twice");
            }
            out.sort();
            assert_eq!(
                out,
                [1, 2],
                "lost wake-up: a woken child was never polled again"
            );
            drop(set);
            assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
        },
    );
    outcomes.assert_seen(&[
        "racing poll saw neither wake",
        "racing poll saw one wake",
        "racing poll saw both wakes",
        "the parent was woken twice",
    ]);
}

// ---------------------------------------------------------------------------
// Back-pressure: `try_push` claims within the limit.
// ---------------------------------------------------------------------------

/// A child of the `try_push` models: one that stays pending, or a [`Value`].
enum Limited {
    Stays,
    Value(Value),
}

impl Future for Limited {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        match self.get_mut() {
            Limited::Stays => Poll::Pending,
            Limited::Value(value) => Pin::new(value).poll(cx),
        }
    }
}

/// Which push the second thread makes in [`try_push_for_the_last_slot`].
#[derive(Clone, Copy, Debug)]
enum Rival {
    /// `try_push` too: the two CAS loops on `claims` race.
    TryPush,
    /// A plain `push`, which ignores the limit: its `fetch_add` races with
    /// the CAS.
    Push,
}

/// A set with a limit of 2 holds one pending child and has one free slot
/// (recycled from a finished child). Thread 1 `try_push`es value 1; thread
/// 2 pushes value 2 as `rival` says; the main thread meanwhile reads `len`
/// and iterates over the children through `&set`, reading each value (so
/// loom checks that a `try_push`ed child is published before it is read).
///
/// Checked: `len` never exceeds the limit mid-race when both use
/// `try_push`; exactly one `try_push` wins and the loser gets its own child
/// back (against a plain push, the `try_push` wins only when it claimed
/// first, and the push always lands); every child that got in is polled
/// and yields its value.
fn try_push_for_the_last_slot(name: &str, rival: Rival) {
    let outcomes = model(name, move |tally| {
        let parent = Parent::new();
        let mut set = FuturesUnordered::with_limit(2);
        set.push(Limited::Value(Value::new(100)));
        set.push(Limited::Stays);
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        assert_eq!(out, [100]);
        assert_eq!(set.len(), 1);

        let set = Arc::new(set);
        let first = {
            let set = set.clone();
            thread::spawn(move || match set.try_push(Limited::Value(Value::new(1))) {
                Ok(()) => None,
                Err(full) => match full.into_inner() {
                    Limited::Value(value) => Some(value.0.read()),
                    Limited::Stays => panic!("a different child came back"),
                },
            })
        };
        let second = {
            let set = set.clone();
            thread::spawn(move || match rival {
                Rival::TryPush => match set.try_push(Limited::Value(Value::new(2))) {
                    Ok(()) => None,
                    Err(full) => match full.into_inner() {
                        Limited::Value(value) => Some(value.0.read()),
                        Limited::Stays => panic!("a different child came back"),
                    },
                },
                Rival::Push => {
                    set.push(Limited::Value(Value::new(2)));
                    None
                }
            })
        };

        let len = set.len();
        if let Rival::TryPush = rival {
            assert!(len <= 2, "len {len} past the limit mid-race");
        }
        let mut pushed_seen = 0;
        for child in set.iter() {
            if let Limited::Value(value) = child {
                match value.0.read() {
                    1 => tally.note("iter saw the try_push"),
                    2 => {}
                    other => panic!("iter saw a child never pushed: {other}"),
                }
                pushed_seen += 1;
            }
        }
        tally.note(
            [
                "iter saw no push",
                "iter saw a push",
                "iter saw both pushes",
            ][pushed_seen],
        );

        let refused = [join(first), join(second)];
        let Ok(mut set) = Arc::try_unwrap(set) else {
            panic!("pushers still hold the set");
        };
        let expected: &[u32] = match (rival, refused) {
            (Rival::TryPush, [None, Some(2)]) => {
                tally.note("thread 1 won the slot");
                &[1]
            }
            (Rival::TryPush, [Some(1), None]) => {
                tally.note("thread 2 won the slot");
                &[2]
            }
            (Rival::Push, [None, None]) => {
                tally.note("try_push claimed first, the push went past the limit");
                &[1, 2]
            }
            (Rival::Push, [Some(1), None]) => {
                tally.note("the push claimed first, try_push was refused");
                &[2]
            }
            (rival, refused) => panic!("{rival:?}: refused {refused:?}"),
        };
        assert_eq!(set.len(), 1 + expected.len());
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        out.sort();
        assert_eq!(out, expected, "the winner's child was not polled");
        assert_eq!(set.len(), 1, "only the pending child is left");
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    match rival {
        // loom's DPOR keeps one last access per atomic, so the pushing
        // thread's own load of `claims` right before its CAS hides the CAS's
        // dependency on the main thread's earlier loads: with two `try_push`
        // threads, loom never runs a CAS before the main thread's reads. The
        // `Push` rival's `fetch_add` has no such load, so that model does
        // reorder the reads after the claims, and shows the iteration seeing
        // the `try_push`ed child (the publication is the same `fill`).
        Rival::TryPush => outcomes.assert_seen(&["thread 1 won the slot", "thread 2 won the slot"]),
        Rival::Push => outcomes.assert_seen(&[
            "try_push claimed first, the push went past the limit",
            "the push claimed first, try_push was refused",
            "iter saw no push",
            "iter saw a push",
            "iter saw both pushes",
            "iter saw the try_push",
        ]),
    }
}

/// Two `try_push`es race for the last slot: exactly one wins.
#[test]
fn loom_try_push_race_for_the_last_slot() {
    try_push_for_the_last_slot("loom_try_push_race_for_the_last_slot", Rival::TryPush);
}

/// A `try_push` races a plain `push` for the last slot.
#[test]
fn loom_try_push_vs_push_for_the_last_slot() {
    try_push_for_the_last_slot("loom_try_push_vs_push_for_the_last_slot", Rival::Push);
}

/// A child that wakes itself inside its first poll and is `Ready(5)` at its
/// second; fails the model if polled twice in one call (rule C2).
struct SelfWaking {
    polls: usize,
    once: OncePerCall,
}

impl Future for SelfWaking {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.once.check("the self-waking pushed child");
        self.polls += 1;
        if self.polls == 1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(5)
    }
}

/// Rule C1's direct path: a push adopted by `poll_next` while NORMAL has no
/// cycle and no woken child goes straight into the due set, with no atomic
/// operation, while another thread wakes an older child. The wake may land
/// before the adoption looks at the lane (the push is then marked and joins
/// the refill) or after (the lane already had its cycle in this call, so the
/// woken child waits for the next call, which the set asks for by yielding).
/// Checked: both children complete; the pushed child, which wakes itself in
/// its first poll, is not polled twice in one call; the woken child reads
/// what its waker's thread wrote.
#[test]
fn loom_pushed_cycle_vs_wake() {
    let outcomes = model("loom_pushed_cycle_vs_wake", |tally| {
        let parent = Parent::new();
        let mut set = FuturesUnordered::new();
        let (woken, woken_handle) = Probe::new(&parent, "the woken child", true);
        set.push(Slot2::Probe(woken));
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        let waker = woken_handle.stash.take().expect("polled once");
        let msg = woken_handle.msg.clone();
        let waking = thread::spawn(move || {
            msg.write(7);
            waker.wake();
        });
        set.push(Slot2::SelfWaking(SelfWaking {
            polls: 0,
            once: OncePerCall::new(&parent),
        }));
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        tally.note(if out.contains(&7) {
            "racing polls saw the wake"
        } else {
            "the wake came after the racing polls"
        });
        join(waking);
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        out.sort();
        assert_eq!(out, [5, 7], "a pushed or woken child was not completed");
        assert!(done);
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "racing polls saw the wake",
        "the wake came after the racing polls",
    ]);
}

/// The children of [`loom_pushed_cycle_vs_wake`].
enum Slot2 {
    Probe(Probe),
    SelfWaking(SelfWaking),
}

impl Future for Slot2 {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        match self.get_mut() {
            Slot2::Probe(probe) => Pin::new(probe).poll(cx),
            Slot2::SelfWaking(child) => Pin::new(child).poll(cx),
        }
    }
}

// ---------------------------------------------------------------------------
// Push handles (rule I1).
// ---------------------------------------------------------------------------

/// Threads push through [`PushHandle`]s (one each, then drop it) while the
/// poller polls the empty set, which waits because handles live. No lost
/// wake-up and no lost child: after the joins, every pushed value came out
/// (read without a data race: the stack's Release/Acquire orders the value
/// the pushing thread wrote) and the set ended, because the last handle's
/// drop woke it.
fn handle_pushes_vs_poll(name: &str, pushers: u32) {
    let outcomes = model_with(name, 2_000, move |tally| {
        let mut set = FuturesUnordered::new();
        let handles: Vec<_> = (0..pushers).map(|_| set.handle()).collect();
        let parent = Parent::new();
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(
            !drive(&mut set, &parent, &mut seen, &mut out),
            "an empty set with live handles waits"
        );
        let threads: Vec<_> = handles
            .into_iter()
            .zip(1..)
            .map(|(handle, value)| {
                thread::spawn(move || {
                    handle.push(Value::new(value)).expect("the set lives");
                })
            })
            .collect();
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        tally.note(match out.len() {
            0 => "every push after the racing poll",
            n if n == pushers as usize => "racing poll saw every push",
            _ => "racing poll saw some pushes",
        });
        for thread in threads {
            join(thread);
        }
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        out.sort();
        assert_eq!(
            out,
            (1..=pushers).collect::<Vec<_>>(),
            "a pushed child was lost"
        );
        assert!(done, "the last handle's drop ends the empty set");
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "racing poll saw every push",
        "every push after the racing poll",
    ]);
}

#[test]
fn loom_handle_push_vs_poll() {
    handle_pushes_vs_poll("loom_handle_push_vs_poll", 1);
}

/// Two pushers race each other on the stack's head and the poller's swap.
#[test]
fn loom_two_handle_pushes_vs_poll() {
    handle_pushes_vs_poll("loom_two_handle_pushes_vs_poll", 2);
}

/// A child that counts its drops in a loom atomic behind a loom `Arc` (so a
/// node leaked with its child is reported as a leaked `Arc`).
struct Counted(Arc<AtomicUsize>);

impl Future for Counted {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // Release: the test reads the count with Acquire after the join.
        self.0.fetch_add(1, Release);
    }
}

/// A handle pushes while the set is dropped on another thread. The child is
/// either taken by the set's drop (adopted or found in the closed stack) and
/// dropped there, or handed back in `Closed`: dropped exactly once either
/// way, never leaked, never left in the header.
#[test]
fn loom_handle_push_vs_set_drop() {
    let outcomes = model("loom_handle_push_vs_set_drop", |tally| {
        let set = FuturesUnordered::<Counted>::new();
        let handle = set.handle();
        let drops = Arc::new(AtomicUsize::new(0));
        let child = Counted(drops.clone());
        let pusher = thread::spawn(move || match handle.push(child) {
            Ok(()) => true,
            Err(refused) => {
                assert!(handle.is_closed());
                drop(refused.into_inner());
                false
            }
        });
        drop(set);
        let pushed = join(pusher);
        tally.note(if pushed {
            "pushed before the drop"
        } else {
            "refused after the drop"
        });
        assert_eq!(drops.load(Acquire), 1, "the child was dropped once");
    });
    outcomes.assert_seen(&["pushed before the drop", "refused after the drop"]);
}

/// The last handle drops on another thread while the poller polls the empty
/// set. The set ends: either the racing poll saw the handle gone, or the
/// drop woke the parent and the next poll ends it.
#[test]
fn loom_last_handle_drop_vs_poll() {
    let outcomes = model("loom_last_handle_drop_vs_poll", |tally| {
        let mut set = FuturesUnordered::<Value>::new();
        let handle = set.handle();
        let parent = Parent::new();
        let mut seen = 0;
        let mut out = Vec::new();
        assert!(!drive(&mut set, &parent, &mut seen, &mut out));
        let dropper = thread::spawn(move || drop(handle));
        let mut done = race(&mut set, &parent, &mut seen, &mut out);
        tally.note(if done {
            "racing poll ended the set"
        } else {
            "the drop came after the racing poll"
        });
        join(dropper);
        if !done {
            done = resume(&mut set, &parent, &mut seen, &mut out);
        }
        assert!(done, "hang: the last handle's drop did not end the set");
        assert!(out.is_empty());
        drop(set);
        assert_eq!(parent.waker_refs(), 1, "the set kept a parent waker clone");
    });
    outcomes.assert_seen(&[
        "racing poll ended the set",
        "the drop came after the racing poll",
    ]);
}
