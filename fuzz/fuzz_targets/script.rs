//! Fuzzes a set with a script of operations decoded from the input, checked
//! against a plain model.
//!
//! Run: `.ci/fuzz` (or `FUZZ_SECONDS=900 .ci/fuzz`; it only reads the
//! committed corpus, while `cargo +nightly fuzz run script` would write new
//! inputs into it); one input: `fuzz/target/x86_64-unknown-linux-gnu/
//! release/script <file>`. With `FUZZ_STATS=1` each input prints what it
//! reached (unwinds, lost children, refused pushes, room wakes, order
//! checks, handle pushes adopted, dropped or refused, appends, progress
//! polls and the outputs they kept and handed out), to check
//! that a seed does what it is named for.
//!
//! # Input format
//!
//! Byte 0 picks the set (`% 5`): `FuturesUnordered`, `StreamsUnordered`,
//! `IndexedStreamsUnordered` (the *keyed* sets), `SelectAll` (made by
//! `select_all`) or `FuturesOrdered`. Then each operation is an opcode byte
//! (`% 30`) and an argument byte `a` (missing bytes read as 0); a few take
//! more bytes. A child's spec byte gives its lane (`% 3`), its `Pending`
//! polls before each output (`>> 2 & 3`), whether it wakes itself while
//! pending (bit 4) and, for streams, its item count (`>> 5 & 3`).
//! Operations a set does not have are skipped (keys, lanes, pushes through
//! `&self`, limits, push handles and `append` are the keyed sets';
//! `push_front` is `FuturesOrdered`'s).
//!
//! | op | action |
//! |---|---|
//! | 0, 1 | push a child of spec `a` (`push_with_priority`, `push_back`) |
//! | 2, 3 | `insert_with_priority`, keeping the key; `FuturesOrdered`: `push_front` |
//! | 4 | push `a + 1` children at once (crosses pages; `extend` where there are no lanes) |
//! | 5, 6 | `cancel` / `remove` a known key (live or stale); `FuturesOrdered`: `push_front` `a % 8 + 1` children |
//! | 7, 8 | wake a child here (`wake`, `wake_by_ref`, clones), mode byte |
//! | 9, 10 | send a child's waker to a helper: wake, wake by ref, or stash |
//! | 11 | helpers: wake their stash, drop it, or flush |
//! | 12, 13 | one `poll_next` with the current parent waker |
//! | 14 | flush helpers, then poll until idle (checks R1) |
//! | 15 | `clear` |
//! | 16 | two threads push/insert `a % 8 + 1` children each (spec bytes); with bit 6 of `a`, `try_push`/`try_insert` |
//! | 17 | check the iterators (exact order, newest first; bit 2: `iter_pin_mut` before `iter_mut`) and `contains`; `get_pin_mut`; starvation bound |
//! | 18 | one `poll_next` with another parent waker: a new one, a new one that panics on wake, or an earlier one (it becomes the current one), or a new one just for this poll |
//! | 19 | stop |
//! | 20 | `set_limit`: none, 0, exactly full, one more than now, or 1..=8 |
//! | 21 | `try_push` / `try_insert` (bit 7) a child of spec `a` |
//! | 22 | `poll_ready` with one of three room waiters |
//! | 23 | poll `make_room` once |
//! | 24 | `handle()` (`a` even) or clone a held handle (at most 8 held) |
//! | 25 | drop a held handle (the last one wakes the set) |
//! | 26 | push a child of spec `a` through a handle here, byte `b`: handle, and bit 7: `push` (NORMAL) instead of `push_with_priority` |
//! | 27 | a helper (`b & 1`) pushes `(b >> 1 & 3) + 1` children (specs from `a`) through clones of a handle, racing what follows |
//! | 28 | `append` a second set of `a % 8` children (spec bytes follow; bit 7: `insert`, keeping a key into that set), plus one pushed through its handle (bit 3 of `a`), polled once first (bit 4) |
//! | 29 | `progress_while(body)` (every set), byte `b`: the body is `Pending` for `k = a % 8` polls (bit 3: waking its task each time), then ready; the future is polled `a >> 4` times with the current parent waker, or until it is done, then dropped (half way if the body is not done); bit 0 of `b` (`panic = "unwind"`): the body panics on its poll `(b >> 1) % (k + 1)` |
//!
//! The last argument byte read picks the ending: drain every child to
//! completion (then, if handles live: the empty set must wait, and the
//! last handle's drop must wake it and let it end), drop the set while
//! helpers wake stashed wakers (and may still be pushing), take some
//! children through `into_iter` (checking their order), or just drop it.
//! If a handle survives the set, a push through it here and one from a
//! helper must hand the child back (`Closed`). Then every waker left
//! anywhere is woken and dropped, with the set gone.
//!
//! Two engine bugs were found this way and are fixed (feb2038): a wake
//! lost after `cancel`/`iter_mut`/... adopted pushes, and a `Pending` from
//! a set emptied by cancelling the rest of a cycle. Their inputs are in the
//! corpus (`*_is_lost`, `*_pending_when_empty`). A third (fixed in
//! 470e546): a set's drop woke its parent while adopting pushes, and a
//! parent waker that panicked there unwound past the children's drops,
//! which leaked (`su_drop_wakes_panicking_parent_leaks`, and
//! `tests/fuzz_regressions.rs`). A fourth, open when found (with push
//! handles, a race, so no seed): the set's drop cannot take its parent
//! waker out while a helper's wake holds it, and the last handle's drop
//! after the set is gone then wakes it (`tests/fuzz_regressions.rs`,
//! `the_last_handle_dropped_after_the_set_wakes_no_parent`). A fifth,
//! open when found: a progress that polls a stream pushed after the set
//! ended, and that ends without an item, leaves the set terminated
//! (`a_progress_that_empties_the_set_does_not_terminate_it_after_a_push`
//! there; tolerated by the target until fixed). The `*_progress_*` seeds
//! reach op 29 on each set type.
//!
//! # What is checked
//!
//! - Every `poll_next` agrees with what the children did during the call
//!   (recorded by the children themselves): a `Ready(Some)` is exactly the
//!   one child that finished or yielded, with the child's key; `Pending`
//!   and `Ready(None)` mean no child finished. `FuturesOrdered`: outputs
//!   come in push order (a model `VecDeque`: `push_back`, `push_front`),
//!   each only once its future finished, and a due output is never held
//!   back (`Pending` with the head's future finished is an error).
//! - Outputs as a multiset equal the model's: every child's output (or
//!   every stream's items, in order) comes out exactly once, unless the
//!   child was cancelled, removed, cleared or lost to a panic first.
//! - `len`, `contains`, `cancel`, `remove`, `get_pin_mut` and the iterators
//!   agree with the model after every operation, for live and stale keys.
//!   `iter`, `iter_pin_ref`, `iter_mut`, `iter_pin_mut` and `into_iter`
//!   yield the live children in exactly the model's push order, newest
//!   first, as futures-util's do (children pushed by two threads at once
//!   may interleave in any order that keeps each thread's own order; the
//!   first iterator to see them fixes it for the model).
//! - No child is polled after it completed, ended, or was removed (the
//!   children assert it themselves).
//! - No lost wake-up (rule R1), from both sides, once the helper threads
//!   are flushed: a `Pending` that did not wake the parent leaves no live
//!   child that was woken since its last poll; and after such a `Pending`,
//!   a wake of any live child wakes that poll's parent waker before the
//!   next poll.
//! - Whose waker (rule P1): each parent waker counts its wakes. Once the
//!   set is polled with waker W2 (with no helper's wake in flight, which
//!   could hold the old waker), no wake reaches any other parent waker,
//!   including wakes a child makes inside its own poll. (`FuturesOrdered`
//!   hands out an output that finished earlier without polling its core,
//!   so that poll registers nothing, as futures-util's; `Ready` needs no
//!   waker. The model knows.)
//! - A parent waker that panics on wake (op 18): the operation that woke
//!   it (a poll, a child's wake here or on a helper, `cancel`, `remove`,
//!   `get_pin_mut`, the iterators, `into_iter`, the set's drop) unwinds and
//!   is caught. The set stays consistent: only the child whose own wake
//!   panicked inside its poll is lost (dropped once), every other check
//!   goes on, and nothing leaks (libFuzzer's leak check).
//! - Limits: `try_push`/`try_insert` succeed exactly while the set holds
//!   fewer children than its limit and otherwise hand the same child back;
//!   from two threads at once exactly `min(tries, room)` succeed;
//!   `limit`, `is_full` and `poll_ready` agree with the model; a task
//!   waiting in `poll_ready` has been woken by the time the set is below
//!   its limit again; `make_room` returns at once when there is room and
//!   otherwise is one checked `poll_next`.
//! - Every child is dropped exactly once: when it completes, is removed,
//!   cleared, or when the set drops, and never again however many of its
//!   wakers (held here, by helper threads, or by the child itself) outlive
//!   it or the set.
//! - Push handles (rule I1): a handle push is not counted by `len` until
//!   the set adopts it; every operation that adopts (a poll, `cancel`,
//!   `remove`, `get_pin_mut`, `iter_mut`/`iter_pin_mut`, `into_iter`) takes
//!   every push surely in the stack (this thread's; a helper's once
//!   flushed); each thread's pushes are adopted oldest first, after every
//!   earlier push (iteration order; pushes of several threads interleave
//!   in any order keeping each thread's own; which ones an operation
//!   took is read through `iter`, which adopts nothing). An empty set
//!   returns `Pending`, never `Ready(None)`, while a handle lives or a push
//!   waits, and `Ready(None)` once none does (after a flush); it is not
//!   `is_terminated` while a handle lives. After the set went idle, a
//!   handle push, or the last handle's drop, wakes its parent (R1). A push
//!   or the last drop that wakes a panicking parent waker unwinds with the
//!   child in. `clear` and the set's drop drop the pushes not adopted yet
//!   (once; a helper's push after them stays, or is handed back), and a
//!   push after the set is gone returns `Err(Closed)` with the same child.
//! - `append`: the other set's children (including one polled there, and
//!   one pushed through its handle) join after the set's own, oldest
//!   first; the other set is left empty and its keys match nothing there;
//!   a stale wake through the other set's waker does nothing.
//! - `progress_while` (op 29, rule K1; model: `stash`, `unparked`): each
//!   poll polls the body first (ready: nothing else is polled, and the
//!   future resolves to the body's output on exactly poll `k + 1`; a
//!   panicking body polls nothing); while it is pending, the set's
//!   children as `poll_next` would, each child at most once per call of
//!   the poll loop (a call ends at an output; one progress poll runs
//!   several), every output kept with its key in completion order
//!   (`FuturesOrdered`: waiting for its turn, push order unchanged), at
//!   most 128 per progress poll, and 128 wake the task. A progress poll
//!   that returns without waking its task leaves no woken child unpolled
//!   but parked ones (R1). A stream whose item is kept is parked: not
//!   polled again (so at most one kept item per stream) until that item
//!   is handed out, and then polled before the set next goes idle (or
//!   by the next progress poll that wakes nothing). The following
//!   `poll_next` calls hand out the kept outputs first, oldest first, each
//!   with its child's key, polling nothing, registering no waker (P1) and
//!   counting nothing more in `stats().outputs` (a progress op counts each
//!   kept output once); kept outputs count in `len` and against the limit
//!   (`try_push` refusals, `is_full`, `poll_ready`, room wakes when they
//!   are handed out), the set is not `is_terminated` while any is kept (for
//!   `FuturesOrdered`, while a finished output waits), and a progress never
//!   terminates a set that was not (the fuzzer found one that did:
//!   `tests/fuzz_regressions.rs`, fixed); a parked stream can be
//!   cancelled or removed and its kept item still comes out; `clear`, the
//!   set's drop and `into_iter` drop the kept outputs (they never come out;
//!   libFuzzer's leak check covers the stash's memory); a body that wakes
//!   a panicking parent waker is not made, but a child's wake or the
//!   128-output wake that unwinds keeps every output before it and loses
//!   only the child being polled; handles' pushes are adopted by each
//!   progress poll (I1).
//!
//! Wakers and handle pushes travel to two helper threads over channels;
//! they wake or push now, or stash wakers and wake them later, racing with
//! the main thread's polls, cancels, clears and the set's drop.
//! `PushHandle<Child>` is `Send` (a `Child` is `Send`), and a `Child` is
//! `Unpin`, so `append` applies to all three keyed sets. libFuzzer's leak check catches a
//! header that the last waker failed to free.

#![no_main]

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use futures_core::stream::FusedStream;
use futures_core::Stream;
use libfuzzer_sys::fuzz_target;
use velodrome::{
    FuturesOrdered, FuturesUnordered, IndexedStreamsUnordered, Key, Priority, ProgressWhile,
    PushHandle, SelectAll, StreamsUnordered,
};

/// Children created per input at most (enough to fill pages 0..=3).
const MAX_CHILDREN: usize = 1_000;
/// Operations per input at most.
const MAX_OPS: usize = 2_000;
/// Polls one `quiesce` may take before it is deemed a livelock.
const MAX_QUIESCE_POLLS: usize = 20_000;
/// Parent wakers per input at most (op 18 makes new ones).
const MAX_PARENTS: usize = 8;
/// Tasks that may wait in `poll_ready` (op 22).
const ROOM_WAITERS: usize = 3;
/// Opcodes: `op % OPS`.
const OPS: u8 = 30;
/// Outputs one progress poll keeps at most before it wakes its task (K1).
const MAX_KEPT_PER_PROGRESS_POLL: usize = 128;
/// What a `progress_while` body resolves to (op 29).
const BODY_OUTPUT: u32 = 0xB0D1;
/// Push handles the model holds at most (ops 24, 25).
const MAX_HANDLES: usize = 8;

// ---------------------------------------------------------------------------
// Children

/// What one child did inside a `poll_next` call, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Pending(u32),
    /// A future finished with its id as output.
    Ready(u32),
    /// A stream yielded `(id, seq)`.
    Item(u32, u32),
    /// A stream ended.
    Ended(u32),
}

thread_local! {
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
}

fn record(event: Event) {
    EVENTS.with(|events| events.borrow_mut().push(event));
}

fn take_events() -> Vec<Event> {
    EVENTS.with(|events| std::mem::take(&mut *events.borrow_mut()))
}

// ---------------------------------------------------------------------------
// What an input reached, printed per input with `FUZZ_STATS=1` (to see that
// a seed does what it is named for).

thread_local! {
    static STATS: RefCell<std::collections::BTreeMap<&'static str, u32>> =
        const { RefCell::new(std::collections::BTreeMap::new()) };
}

/// Wakes that unwound on a helper thread.
static HELPER_UNWINDS: AtomicU32 = AtomicU32::new(0);

fn stat(what: &'static str) {
    STATS.with(|stats| *stats.borrow_mut().entry(what).or_default() += 1);
}

fn print_stats() {
    static ON: OnceLock<bool> = OnceLock::new();
    let stats = STATS.with(|stats| std::mem::take(&mut *stats.borrow_mut()));
    let helpers = HELPER_UNWINDS.swap(0, SeqCst);
    if *ON.get_or_init(|| std::env::var_os("FUZZ_STATS").is_some()) {
        eprintln!("stats: {stats:?}, helper wakes unwound: {helpers}");
    }
}

/// The part of a child the harness keeps, outliving the child.
#[derive(Debug)]
struct Shared {
    id: u32,
    /// Set before every wake of one of its wakers, cleared when polled.
    woken: AtomicBool,
    /// Returned `Ready` (future) or `Ready(None)` (stream).
    finished: AtomicBool,
    /// Cancelled, removed, cleared, lost, or in a dropped set.
    removed: AtomicBool,
    drops: AtomicU32,
    /// The waker of its latest `Pending` poll.
    waker: Mutex<Option<Waker>>,
}

/// `Shared`s alive: none once an input is done (a child, a waker message
/// or a stash that kept one would be a leak the leak check finds later,
/// attributed to some other input).
static LIVE_SHARED: AtomicU32 = AtomicU32::new(0);

impl Drop for Shared {
    fn drop(&mut self) {
        LIVE_SHARED.fetch_sub(1, SeqCst);
    }
}

impl Shared {
    fn waker(&self) -> Option<Waker> {
        self.waker.lock().unwrap().clone()
    }
}

/// A future (output: its id) or a stream (items `(id, 0..items)`).
#[derive(Debug)]
struct Child {
    shared: Arc<Shared>,
    /// `Pending` polls left before the next `Ready`.
    pending_left: u8,
    /// `pending_left` after each stream item.
    delay: u8,
    items_left: u8,
    next_seq: u32,
    /// Wake itself from inside `poll` when returning `Pending`.
    self_wake: bool,
    /// A clone of its own waker, dropped with the child (so a waker's last
    /// reference may go while the set drops its children).
    held: Option<Waker>,
}

impl Drop for Child {
    fn drop(&mut self) {
        self.shared.drops.fetch_add(1, SeqCst);
    }
}

impl Child {
    /// Common prologue of a poll; `true` when the child is ready to produce.
    fn step(&mut self, cx: &mut Context<'_>) -> bool {
        let s = &self.shared;
        assert!(
            !s.finished.load(SeqCst),
            "child {} polled after it finished",
            s.id
        );
        assert!(
            !s.removed.load(SeqCst),
            "child {} polled after removal",
            s.id
        );
        assert_eq!(s.drops.load(SeqCst), 0, "child {} polled after drop", s.id);
        s.woken.store(false, SeqCst);
        if self.pending_left == 0 {
            return true;
        }
        self.pending_left -= 1;
        let waker = cx.waker().clone();
        *s.waker.lock().unwrap() = Some(waker.clone());
        self.held = Some(waker);
        record(Event::Pending(s.id));
        if self.self_wake {
            // May unwind (a panicking parent waker): the set then drops us.
            s.woken.store(true, SeqCst);
            cx.waker().wake_by_ref();
        }
        false
    }
}

impl Future for Child {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if !self.step(cx) {
            return Poll::Pending;
        }
        let id = self.shared.id;
        self.shared.finished.store(true, SeqCst);
        record(Event::Ready(id));
        Poll::Ready(id)
    }
}

impl Stream for Child {
    type Item = (u32, u32);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(u32, u32)>> {
        if !self.step(cx) {
            return Poll::Pending;
        }
        let id = self.shared.id;
        if self.items_left == 0 {
            self.shared.finished.store(true, SeqCst);
            record(Event::Ended(id));
            return Poll::Ready(None);
        }
        self.items_left -= 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending_left = self.delay;
        record(Event::Item(id, seq));
        Poll::Ready(Some((id, seq)))
    }
}

// ---------------------------------------------------------------------------
// Parent tasks' wakers (and the tasks waiting for room)

/// A task's waker: counts its wakes, and panics on each if `panics`.
#[derive(Default)]
struct Parent {
    wakes: AtomicU32,
    panics: bool,
}

/// The payload of a panicking parent waker: the one panic that is caught.
struct ParentPanic;

/// The payload of a `progress_while` body that panics (op 29).
struct BodyPanic;

/// The loop body of `progress_while` (op 29): `Pending` for `left` polls
/// (waking its task each time if `wakes`), then `Ready(BODY_OUTPUT)`;
/// panics on poll number `panic_at` (0-based) if set.
struct Body {
    left: u8,
    polls: u8,
    wakes: bool,
    panic_at: Option<u8>,
}

impl Future for Body {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let n = self.polls;
        self.polls += 1;
        if self.panic_at == Some(n) {
            panic::panic_any(BodyPanic);
        }
        if self.left == 0 {
            return Poll::Ready(BODY_OUTPUT);
        }
        self.left -= 1;
        if self.wakes {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Wake for Parent {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
        if self.panics {
            panic::panic_any(ParentPanic);
        }
    }
}

/// libfuzzer-sys's panic hook aborts on every panic, caught or not. This
/// one lets a parent waker's panic, or a `progress_while` body's, unwind
/// quietly (both are caught) and hands every other panic on to it.
fn quiet_parent_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            if !payload.is::<ParentPanic>() && !payload.is::<BodyPanic>() {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, catching a panicking parent waker's panic (any other panic has
/// already aborted in the hook). `None` if it unwound.
fn caught<R>(f: impl FnOnce() -> R) -> Option<R> {
    panic::catch_unwind(AssertUnwindSafe(f)).ok()
}

/// `caught` on a helper thread, counted.
fn caught_on_helper(f: impl FnOnce()) {
    if caught(f).is_none() {
        HELPER_UNWINDS.fetch_add(1, SeqCst);
    }
}

/// The parent wakers of one input, and what the model knows about them.
struct Parents {
    all: Vec<(Arc<Parent>, Waker)>,
    /// The waker polls use (ops 12–14, 23 and the ending).
    polling: usize,
    /// The waker of the latest poll.
    last: usize,
    /// The wakers a child's wake may reach now (rule P1): the latest
    /// poll's; while a helper's wake raced that poll, also those before it
    /// (`register` cannot store a waker while a wake holds the cell, and a
    /// wake that cloned the old waker delivers it after the poll).
    reachable: Vec<usize>,
    /// Each waker's wake count when the set last could reach only others.
    baseline: Vec<u32>,
    /// Wakes were sent to the helpers since they were last flushed.
    in_flight: bool,
    /// The latest waker's wake count at the end of the last idle poll: a
    /// wake of a live child after it must wake that waker (rule R1).
    idle: Option<u32>,
}

impl Parents {
    fn new() -> Self {
        let mut parents = Parents {
            all: Vec::new(),
            polling: 0,
            last: 0,
            reachable: Vec::new(),
            baseline: Vec::new(),
            in_flight: false,
            idle: None,
        };
        parents.add(false);
        parents
    }

    /// A new parent waker (an old one of the same kind once there are
    /// `MAX_PARENTS`).
    fn add(&mut self, panics: bool) -> usize {
        if self.all.len() >= MAX_PARENTS {
            return (0..self.all.len())
                .rev()
                .find(|&i| self.panics(i) == panics)
                .unwrap_or(0);
        }
        let parent = Arc::new(Parent {
            wakes: AtomicU32::new(0),
            panics,
        });
        self.all.push((parent.clone(), Waker::from(parent)));
        self.baseline.push(0);
        self.all.len() - 1
    }

    fn wakes(&self, i: usize) -> u32 {
        self.all[i].0.wakes.load(SeqCst)
    }

    fn panics(&self, i: usize) -> bool {
        self.all[i].0.panics
    }

    fn waker(&self, i: usize) -> Waker {
        self.all[i].1.clone()
    }

    /// A poll with waker `k` returned or unwound.
    fn polled(&mut self, k: usize) {
        if k != self.last {
            stat("poll with another parent waker");
        }
        self.last = k;
        if self.in_flight {
            if !self.reachable.contains(&k) {
                self.reachable.push(k);
            }
        } else {
            self.reachable = vec![k];
            self.baseline = (0..self.all.len()).map(|i| self.wakes(i)).collect();
        }
    }

    /// Waker `k` was woken `n` times by someone else than the set (a
    /// `progress_while` body, op 29): not a wake P1 is about.
    fn woken_directly(&mut self, k: usize, n: u32) {
        if !self.reachable.contains(&k) {
            self.baseline[k] += n;
        }
    }

    /// Rule P1: no wake reached a waker the set no longer has.
    fn check(&self) {
        for i in 0..self.all.len() {
            if !self.reachable.contains(&i) {
                assert_eq!(
                    self.wakes(i),
                    self.baseline[i],
                    "parent waker {i} was woken after the set was polled with waker {} (P1)",
                    self.last
                );
            }
        }
    }

    /// Whether a wake of the set's parent may panic now.
    fn may_panic(&self) -> bool {
        self.reachable.iter().any(|&i| self.panics(i))
    }

    /// The waker for polls that must not unwind: the current one, unless
    /// it panics (then the first, which never does, from now on).
    fn steady(&mut self) -> usize {
        if self.panics(self.polling) {
            self.polling = 0;
        }
        self.polling
    }
}

// ---------------------------------------------------------------------------
// Helper threads: persistent across inputs, emptied at the end of each.

enum Msg {
    Wake(Arc<Shared>, Waker),
    WakeByRef(Arc<Shared>, Waker),
    Stash(Arc<Shared>, Waker),
    WakeStash,
    DropStash,
    Flush(mpsc::SyncSender<()>),
    /// Push the child through the handle (a clone, dropped after the push);
    /// a child handed back (`Closed`) goes to `REFUSED`.
    Push(PushHandle<Child>, Child, Priority),
}

/// Children a helper's handle push got back (`Closed`: the set was gone),
/// for the main thread to check and drop.
static REFUSED: Mutex<Vec<Child>> = Mutex::new(Vec::new());

const HELPERS: usize = 2;

fn helpers() -> &'static [Mutex<mpsc::Sender<Msg>>] {
    static HELPERS_TX: OnceLock<Vec<Mutex<mpsc::Sender<Msg>>>> = OnceLock::new();
    HELPERS_TX.get_or_init(|| {
        (0..HELPERS)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<Msg>();
                std::thread::spawn(move || helper(rx));
                Mutex::new(tx)
            })
            .collect()
    })
}

/// A helper thread. A wake that reaches a panicking parent waker unwinds
/// out of `wake`; it is caught here, as a runtime's worker would.
fn helper(rx: mpsc::Receiver<Msg>) {
    let mut stash: Vec<(Arc<Shared>, Waker)> = Vec::new();
    for msg in rx {
        match msg {
            Msg::Wake(shared, waker) => {
                shared.woken.store(true, SeqCst);
                caught_on_helper(|| waker.wake());
            }
            Msg::WakeByRef(shared, waker) => {
                shared.woken.store(true, SeqCst);
                caught_on_helper(|| waker.wake_by_ref());
            }
            Msg::Stash(shared, waker) => stash.push((shared, waker)),
            Msg::WakeStash => {
                for (shared, waker) in &stash {
                    shared.woken.store(true, SeqCst);
                    caught_on_helper(|| waker.wake_by_ref());
                }
            }
            Msg::DropStash => stash.clear(),
            Msg::Flush(ack) => ack.send(()).unwrap(),
            Msg::Push(handle, child, priority) => {
                // The push may wake a panicking parent waker (after the child
                // is in); the handle is dropped outside that unwind, as its
                // own drop may wake the parent too (the last handle).
                caught_on_helper(|| {
                    if let Err(closed) = handle.push_with_priority(child, priority) {
                        REFUSED.lock().unwrap().push(closed.into_inner());
                    }
                });
                caught_on_helper(move || drop(handle));
            }
        }
    }
}

fn send(helper: usize, msg: Msg) {
    helpers()[helper % HELPERS]
        .lock()
        .unwrap()
        .send(msg)
        .unwrap();
}

/// Waits until every helper has handled everything sent so far.
fn flush_helpers() {
    for h in 0..HELPERS {
        let (tx, rx) = mpsc::sync_channel(1);
        send(h, Msg::Flush(tx));
        rx.recv().unwrap();
    }
}

// ---------------------------------------------------------------------------
// The five set types behind one interface

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// A future's output: its id.
    Done(u32),
    /// A stream's item.
    Item(u32, u32),
    /// `IndexedStreamsUnordered`'s end-of-stream marker.
    End,
}

/// One `poll_next` (or `make_room`) result: the output with its key, where
/// the set reports keys.
type Polled = Poll<Option<(Option<Key>, Out)>>;

/// The child an event is about.
fn event_id(event: Event) -> u32 {
    let (Event::Pending(id) | Event::Ready(id) | Event::Item(id, _) | Event::Ended(id)) = event;
    id
}

/// Whether the event is an output of the set `S` (which ends a call of the
/// poll loop).
fn is_output<S: Set>(event: Event) -> bool {
    match event {
        Event::Pending(_) => false,
        Event::Ready(_) | Event::Item(..) => true,
        Event::Ended(_) => S::REPORTS_END,
    }
}

/// The ids an iterator yields, checking its `ExactSizeIterator::len`.
fn ids<I: ExactSizeIterator>(iter: I, id: impl Fn(I::Item) -> u32) -> Vec<u32> {
    let len = iter.len();
    let ids: Vec<u32> = iter.map(id).collect();
    assert_eq!(ids.len(), len, "ExactSizeIterator::len");
    ids
}

/// The interface the model drives. Methods a set type lacks are never
/// called (see the capability constants).
trait Set: Sync + Sized {
    const STREAMS: bool;
    /// Whether a stream's end is an output `(key, None)`.
    const REPORTS_END: bool;
    /// Keys, lanes, pushes through `&self`, limits, the pinned iterators.
    const KEYED: bool;
    /// `iter`, `iter_mut`, `into_iter`.
    const ITERS: bool;
    /// Outputs in push order (`FuturesOrdered`).
    const ORDERED: bool;
    fn new() -> Self;
    fn push(&mut self, child: Child, priority: Priority);
    fn extend(&mut self, children: Vec<(Child, Priority)>) {
        for (child, priority) in children {
            Set::push(self, child, priority);
        }
    }
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool;
    fn clear(&mut self);
    fn poll(&mut self, cx: &mut Context<'_>) -> Polled;
    fn push_front(&mut self, _child: Child) {
        unreachable!()
    }
    fn push_shared(&self, _child: Child, _priority: Priority) {
        unreachable!()
    }
    fn insert(&self, _child: Child, _priority: Priority) -> Key {
        unreachable!()
    }
    fn cancel(&mut self, _key: Key) -> bool {
        unreachable!()
    }
    fn remove(&mut self, _key: Key) -> Option<Child> {
        unreachable!()
    }
    fn contains(&self, _key: Key) -> bool {
        unreachable!()
    }
    fn has_pin_mut(&mut self, _key: Key) -> bool {
        unreachable!()
    }
    fn set_starvation_bound(&mut self, _n: u32) {
        unreachable!()
    }
    /// Each iterator's ids, `None` where making it unwound (adopting pushes
    /// woke a panicking parent waker). `pin_first`: `iter_pin_mut` before
    /// `iter_mut` (the first of them adopts the pushes).
    fn orders(&mut self, _pin_first: bool) -> Vec<(&'static str, Option<Vec<u32>>)> {
        unreachable!()
    }
    fn into_iter(self) -> velodrome::IntoIter<Child> {
        unreachable!()
    }
    fn limit_to(&mut self, _limit: Option<usize>) {
        unreachable!()
    }
    fn get_limit(&self) -> Option<usize> {
        unreachable!()
    }
    fn full(&self) -> bool {
        unreachable!()
    }
    /// `try_insert_with_priority` (with the key) or `try_push_with_priority`.
    fn try_add(
        &self,
        _child: Child,
        _priority: Priority,
        _insert: bool,
    ) -> Result<Option<Key>, Child> {
        unreachable!()
    }
    fn poll_room(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        unreachable!()
    }
    /// `make_room` polled once; `Ready(None)`: there is room.
    fn poll_make_room(&mut self, _cx: &mut Context<'_>) -> Polled {
        unreachable!()
    }
    /// The ids `iter` yields (through `&self`: adopts nothing).
    fn ids_now(&self) -> Vec<u32> {
        unreachable!()
    }
    /// `handle` (the keyed sets).
    fn new_handle(&self) -> PushHandle<Child> {
        unreachable!()
    }
    /// `append`.
    fn append_from(&mut self, _other: &mut Self) {
        unreachable!()
    }
    /// `FusedStream::is_terminated`.
    fn terminated(&self) -> bool;
    /// `progress_while(body)`.
    fn progress_while(&mut self, body: Body) -> ProgressWhile<'_, Self, Body>;
    /// `stats().outputs`.
    fn stats_outputs(&self) -> u64;
}

macro_rules! keyed {
    () => {
        const KEYED: bool = true;
        const ITERS: bool = true;
        const ORDERED: bool = false;
        fn new() -> Self {
            Self::new()
        }
        fn push(&mut self, child: Child, priority: Priority) {
            self.push_with_priority(child, priority)
        }
        fn push_shared(&self, child: Child, priority: Priority) {
            self.push_with_priority(child, priority)
        }
        fn insert(&self, child: Child, priority: Priority) -> Key {
            self.insert_with_priority(child, priority)
        }
        fn cancel(&mut self, key: Key) -> bool {
            self.cancel(key)
        }
        fn remove(&mut self, key: Key) -> Option<Child> {
            self.remove(key)
        }
        fn contains(&self, key: Key) -> bool {
            self.contains(key)
        }
        fn has_pin_mut(&mut self, key: Key) -> bool {
            self.get_pin_mut(key).is_some()
        }
        fn len(&self) -> usize {
            self.len()
        }
        fn is_empty(&self) -> bool {
            self.is_empty()
        }
        fn clear(&mut self) {
            self.clear()
        }
        fn set_starvation_bound(&mut self, n: u32) {
            self.set_starvation_bound(n)
        }
        fn orders(&mut self, pin_first: bool) -> Vec<(&'static str, Option<Vec<u32>>)> {
            let iter = caught(|| ids(self.iter(), |c| c.shared.id));
            let pin_ref = caught(|| ids(Pin::new(&*self).iter_pin_ref(), |c| c.shared.id));
            let mut orders = vec![("iter", iter), ("iter_pin_ref", pin_ref)];
            for pin in [pin_first, !pin_first] {
                orders.push(if pin {
                    let pin_mut = Pin::new(&mut *self);
                    (
                        "iter_pin_mut",
                        caught(|| ids(pin_mut.iter_pin_mut(), |c| c.shared.id)),
                    )
                } else {
                    ("iter_mut", caught(|| ids(self.iter_mut(), |c| c.shared.id)))
                });
            }
            orders
        }
        fn into_iter(self) -> velodrome::IntoIter<Child> {
            IntoIterator::into_iter(self)
        }
        fn limit_to(&mut self, limit: Option<usize>) {
            self.set_limit(limit)
        }
        fn get_limit(&self) -> Option<usize> {
            self.limit()
        }
        fn full(&self) -> bool {
            self.is_full()
        }
        fn try_add(
            &self,
            child: Child,
            priority: Priority,
            insert: bool,
        ) -> Result<Option<Key>, Child> {
            if insert {
                self.try_insert_with_priority(child, priority)
                    .map(Some)
                    .map_err(velodrome::Full::into_inner)
            } else {
                self.try_push_with_priority(child, priority)
                    .map(|()| None)
                    .map_err(velodrome::Full::into_inner)
            }
        }
        fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            self.poll_ready(cx)
        }
        fn ids_now(&self) -> Vec<u32> {
            ids(self.iter(), |c| c.shared.id)
        }
        fn new_handle(&self) -> PushHandle<Child> {
            self.handle()
        }
        fn append_from(&mut self, other: &mut Self) {
            self.append(other)
        }
        fn terminated(&self) -> bool {
            FusedStream::is_terminated(self)
        }
        fn progress_while(&mut self, body: Body) -> ProgressWhile<'_, Self, Body> {
            self.progress_while(body)
        }
        fn stats_outputs(&self) -> u64 {
            self.stats().outputs
        }
    };
}

/// The `Set` methods every type has under the same name, for the two that
/// are not keyed.
macro_rules! common {
    () => {
        fn terminated(&self) -> bool {
            FusedStream::is_terminated(self)
        }
        fn progress_while(&mut self, body: Body) -> ProgressWhile<'_, Self, Body> {
            self.progress_while(body)
        }
        fn stats_outputs(&self) -> u64 {
            self.stats().outputs
        }
    };
}

impl Set for FuturesUnordered<Child> {
    const STREAMS: bool = false;
    const REPORTS_END: bool = false;
    keyed!();
    fn poll(&mut self, cx: &mut Context<'_>) -> Polled {
        self.poll_next_with_key(cx)
            .map(|o| o.map(|(k, id)| (Some(k), Out::Done(id))))
    }
    fn poll_make_room(&mut self, cx: &mut Context<'_>) -> Polled {
        Pin::new(&mut self.make_room())
            .poll(cx)
            .map(|o| o.map(|id| (None, Out::Done(id))))
    }
}

impl Set for StreamsUnordered<Child> {
    const STREAMS: bool = true;
    const REPORTS_END: bool = false;
    keyed!();
    fn poll(&mut self, cx: &mut Context<'_>) -> Polled {
        self.poll_next_with_key(cx)
            .map(|o| o.map(|(k, (id, seq))| (Some(k), Out::Item(id, seq))))
    }
    fn poll_make_room(&mut self, cx: &mut Context<'_>) -> Polled {
        Pin::new(&mut self.make_room())
            .poll(cx)
            .map(|o| o.map(|(id, seq)| (None, Out::Item(id, seq))))
    }
}

/// An `IndexedStreamsUnordered` item as a keyed output.
fn indexed((k, item): (Key, Option<(u32, u32)>)) -> (Option<Key>, Out) {
    match item {
        Some((id, seq)) => (Some(k), Out::Item(id, seq)),
        None => (Some(k), Out::End),
    }
}

impl Set for IndexedStreamsUnordered<Child> {
    const STREAMS: bool = true;
    const REPORTS_END: bool = true;
    keyed!();
    fn poll(&mut self, cx: &mut Context<'_>) -> Polled {
        Pin::new(self).poll_next(cx).map(|o| o.map(indexed))
    }
    fn poll_make_room(&mut self, cx: &mut Context<'_>) -> Polled {
        Pin::new(&mut self.make_room())
            .poll(cx)
            .map(|o| o.map(indexed))
    }
}

impl Set for SelectAll<Child> {
    const STREAMS: bool = true;
    const REPORTS_END: bool = false;
    const KEYED: bool = false;
    const ITERS: bool = true;
    const ORDERED: bool = false;
    fn new() -> Self {
        velodrome::select_all(Vec::new())
    }
    fn push(&mut self, child: Child, _: Priority) {
        self.push(child)
    }
    fn extend(&mut self, children: Vec<(Child, Priority)>) {
        Extend::extend(self, children.into_iter().map(|(child, _)| child))
    }
    fn len(&self) -> usize {
        self.len()
    }
    fn is_empty(&self) -> bool {
        self.is_empty()
    }
    fn clear(&mut self) {
        self.clear()
    }
    fn poll(&mut self, cx: &mut Context<'_>) -> Polled {
        Pin::new(self)
            .poll_next(cx)
            .map(|o| o.map(|(id, seq)| (None, Out::Item(id, seq))))
    }
    common!();
    fn orders(&mut self, _: bool) -> Vec<(&'static str, Option<Vec<u32>>)> {
        let iter = caught(|| ids(self.iter(), |c| c.shared.id));
        let iter_mut = caught(|| ids(self.iter_mut(), |c| c.shared.id));
        vec![("iter", iter), ("iter_mut", iter_mut)]
    }
    fn into_iter(self) -> velodrome::IntoIter<Child> {
        IntoIterator::into_iter(self)
    }
}

impl Set for FuturesOrdered<Child> {
    const STREAMS: bool = false;
    const REPORTS_END: bool = false;
    const KEYED: bool = false;
    const ITERS: bool = false;
    const ORDERED: bool = true;
    fn new() -> Self {
        Self::new()
    }
    fn push(&mut self, child: Child, _: Priority) {
        self.push_back(child)
    }
    common!();
    fn push_front(&mut self, child: Child) {
        FuturesOrdered::push_front(self, child)
    }
    fn extend(&mut self, children: Vec<(Child, Priority)>) {
        Extend::extend(self, children.into_iter().map(|(child, _)| child))
    }
    fn len(&self) -> usize {
        self.len()
    }
    fn is_empty(&self) -> bool {
        self.is_empty()
    }
    fn clear(&mut self) {
        self.clear()
    }
    fn poll(&mut self, cx: &mut Context<'_>) -> Polled {
        Pin::new(self)
            .poll_next(cx)
            .map(|o| o.map(|id| (None, Out::Done(id))))
    }
}

// ---------------------------------------------------------------------------
// The model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Live,
    Finished,
    Removed,
    /// Dropped by the set because its poll unwound (its own wake reached a
    /// panicking parent waker).
    Lost,
    /// Pushed through a handle and not adopted yet (in the set's injection
    /// stack, or still on its way from a helper): not counted by `len`.
    Injected,
}

/// A step of the push order.
#[derive(Debug, Clone)]
enum Batch {
    One(u32),
    /// Pushed by several threads at once (op 16; or handle pushes adopted
    /// together, from this thread and the helpers), each in its own order.
    Racing(Vec<Vec<u32>>),
}

struct Model<S: Set> {
    /// `None` once dropped.
    set: Option<S>,
    children: Vec<Arc<Shared>>,
    status: Vec<Status>,
    /// The child's key, once known (from `insert`, or from an output).
    keys: Vec<Option<Key>>,
    /// Streams: items this child still owes, and the next expected seq.
    items_left: Vec<u32>,
    next_seq: Vec<u32>,
    /// Children not yet finished, removed or lost.
    live: usize,
    parents: Parents,
    /// Push order, oldest first (every set but `FuturesOrdered`).
    pushes: Vec<Batch>,
    /// `FuturesOrdered`: the children whose outputs are still to come, in
    /// output order (running, finished and waiting, or lost).
    queue: VecDeque<u32>,
    /// The limit the model set (op 20).
    limit: Option<usize>,
    /// Tasks that wait for room (op 22), made on first use.
    room: Vec<(Arc<Parent>, Waker)>,
    /// Those whose `poll_ready` returned `Pending`, with their wake count.
    waiting: Vec<(usize, u32)>,
    /// The push handles held here (ops 24–27).
    handles: Vec<PushHandle<Child>>,
    /// Handle pushes not adopted yet, oldest first, by source: this thread,
    /// helper 0, helper 1 (each source's pushes are adopted in its order).
    pending: [VecDeque<u32>; 3],
    /// A helper may still be pushing (sent since the last flush).
    remote_in_flight: [bool; HELPERS],
    /// The last operation adopts every push in the stack (a poll, `cancel`,
    /// `iter_mut`, ...): checked by the next `resolve`.
    must_adopt: bool,
    /// Since the set last went idle (op 14): a handle push was made, and a
    /// handle lived (so if none lives now, the last one's drop woke it).
    pushed_since_idle: bool,
    handles_since_idle: bool,
    /// The outputs `progress_while` kept (op 29), with their child, in
    /// completion order: the next `poll_next` calls hand them out first
    /// (rule K1). Every set but `FuturesOrdered`, whose kept outputs wait
    /// in `queue` like any early output.
    stash: VecDeque<(u32, Out)>,
    /// Streams whose kept item was handed out (so unparked, and queued
    /// again) and that were not polled since: the set must poll them
    /// before it goes idle.
    unparked: Vec<u32>,
}

/// Decoded parameters of a new child.
#[derive(Debug, Clone, Copy)]
struct Spec {
    priority: Priority,
    pending: u8,
    self_wake: bool,
    items: u8,
}

impl Spec {
    fn decode(a: u8) -> Spec {
        Spec {
            priority: [Priority::HIGH, Priority::NORMAL, Priority::LOW][(a % 3) as usize],
            pending: (a >> 2) % 4,
            self_wake: (a >> 4) & 1 == 1,
            items: (a >> 5) % 4,
        }
    }
}

impl<S: Set> Model<S> {
    fn new() -> Self {
        Model {
            set: Some(S::new()),
            children: Vec::new(),
            status: Vec::new(),
            keys: Vec::new(),
            items_left: Vec::new(),
            next_seq: Vec::new(),
            live: 0,
            parents: Parents::new(),
            pushes: Vec::new(),
            queue: VecDeque::new(),
            limit: None,
            room: Vec::new(),
            waiting: Vec::new(),
            handles: Vec::new(),
            pending: Default::default(),
            remote_in_flight: [false; HELPERS],
            must_adopt: false,
            pushed_since_idle: false,
            handles_since_idle: false,
            stash: VecDeque::new(),
            unparked: Vec::new(),
        }
    }

    fn set(&mut self) -> &mut S {
        self.set.as_mut().unwrap()
    }

    fn can_create(&self, n: usize) -> bool {
        self.children.len() + n <= MAX_CHILDREN
    }

    /// A new child, registered with the model as live.
    fn create(&mut self, spec: Spec) -> Child {
        let id = self.children.len() as u32;
        LIVE_SHARED.fetch_add(1, SeqCst);
        let shared = Arc::new(Shared {
            id,
            woken: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            drops: AtomicU32::new(0),
            waker: Mutex::new(None),
        });
        self.children.push(shared.clone());
        self.status.push(Status::Live);
        self.keys.push(None);
        self.items_left.push(u32::from(spec.items));
        self.next_seq.push(0);
        self.live += 1;
        Child {
            shared,
            pending_left: spec.pending,
            delay: spec.pending,
            items_left: spec.items,
            next_seq: 0,
            self_wake: spec.self_wake,
            held: None,
        }
    }

    /// A new child for a handle push: not live until the set adopts it.
    fn create_injected(&mut self, spec: Spec) -> Child {
        let child = self.create(spec);
        self.status[child.shared.id as usize] = Status::Injected;
        self.live -= 1;
        child
    }

    /// Whether source `src`'s pending pushes are surely in the stack (or
    /// adopted): this thread's always, a helper's once flushed.
    fn definite(&self, src: usize) -> bool {
        src == 0 || !self.remote_in_flight[src - 1]
    }

    /// Handle pushes surely in the stack, not adopted yet.
    fn definite_injected(&self) -> usize {
        (0..3)
            .filter(|&src| self.definite(src))
            .map(|src| self.pending[src].len())
            .sum()
    }

    fn injected(&self) -> usize {
        self.status
            .iter()
            .filter(|&&s| s == Status::Injected)
            .count()
    }

    /// A child the set polled: if it was a handle push, the set adopted it.
    fn seen_polled(&mut self, id: u32) {
        if self.status[id as usize] == Status::Injected {
            self.status[id as usize] = Status::Live;
            self.live += 1;
        }
    }

    /// Learns which handle pushes the set adopted during the last operation
    /// (those it polled are already `Live`; the others are seen through
    /// `iter`, which adopts nothing), and checks: each source's adopted
    /// pushes are the oldest of its pending ones; an operation that adopts
    /// (`must_adopt`) took every push surely in the stack; the adopted ones
    /// come after every earlier push, newest first (iteration order).
    fn resolve(&mut self) {
        let must = std::mem::take(&mut self.must_adopt);
        if self.pending.iter().all(VecDeque::is_empty) {
            return;
        }
        let Some(set) = &self.set else { return };
        let observed = set.ids_now();
        let present: HashSet<u32> = observed.iter().copied().collect();
        let mut batch = Vec::new();
        let mut any = false;
        for src in 0..3 {
            let mut adopted = Vec::new();
            while let Some(&id) = self.pending[src].front() {
                if self.status[id as usize] == Status::Injected {
                    if !present.contains(&id) {
                        break;
                    }
                    self.seen_polled(id);
                }
                adopted.push(id);
                self.pending[src].pop_front();
            }
            for &id in &self.pending[src] {
                assert_eq!(
                    self.status[id as usize],
                    Status::Injected,
                    "handle push {id} adopted before an older push of the same thread"
                );
                assert!(
                    !present.contains(&id),
                    "handle push {id} adopted before an older push of the same thread"
                );
                assert_eq!(
                    self.children[id as usize].drops.load(SeqCst),
                    0,
                    "handle push {id} dropped while not adopted"
                );
            }
            if must && self.definite(src) {
                assert!(
                    self.pending[src].is_empty(),
                    "handle pushes {:?} (source {src}) in the stack were not adopted",
                    self.pending[src]
                );
            }
            any |= !adopted.is_empty();
            batch.push(adopted);
        }
        if any {
            stat("handle pushes adopted");
            self.pushes.push(Batch::Racing(batch));
            self.check_order(&observed, true);
        }
    }

    /// Records a push at the back (or, for `FuturesOrdered`, the front).
    fn pushed(&mut self, id: u32, front: bool) {
        match (S::ORDERED, front) {
            (true, true) => self.queue.push_front(id),
            (true, false) => self.queue.push_back(id),
            (false, _) => self.pushes.push(Batch::One(id)),
        }
    }

    /// What `len` must say.
    fn expected_len(&self) -> usize {
        if S::ORDERED {
            // Running, or finished and waiting for their turn.
            self.queue
                .iter()
                .filter(|&&id| self.status[id as usize] != Status::Lost)
                .count()
        } else {
            self.held()
        }
    }

    /// What counts against the limit: the live children and the kept
    /// outputs (K1).
    fn held(&self) -> usize {
        self.live + self.stash.len()
    }

    fn has_room(&self) -> bool {
        self.limit.is_none_or(|limit| self.held() < limit)
    }

    /// The checks after every operation.
    fn check(&mut self) {
        self.parents.check();
        self.resolve();
        let Some(set) = &self.set else { return };
        let len = self.expected_len();
        assert_eq!(set.len(), len, "len");
        assert_eq!(set.is_empty(), len == 0, "is_empty");
        let waiting = S::ORDERED
            && self
                .queue
                .iter()
                .any(|&id| self.status[id as usize] == Status::Finished);
        if !self.stash.is_empty() || waiting {
            assert!(!set.terminated(), "is_terminated while outputs are kept");
        }
        if !S::KEYED {
            return;
        }
        if !self.handles.is_empty() || !self.pending[0].is_empty() {
            assert!(
                !set.terminated(),
                "is_terminated while a handle lives or a push waits"
            );
        }
        assert_eq!(set.get_limit(), self.limit, "limit");
        assert_eq!(set.full(), !self.has_room(), "is_full");
        if self.has_room() {
            for (waiter, wakes) in self.waiting.drain(..) {
                stat("room waiter woken");
                assert!(
                    self.room[waiter].0.wakes.load(SeqCst) > wakes,
                    "the set has room, and the task {waiter} waiting in poll_ready was not woken"
                );
            }
        }
    }

    /// The child was taken out of the set by the harness (cancel, remove,
    /// clear, drop, refused): it must be dropped exactly once by now.
    fn removed(&mut self, id: usize, dropped_now: bool) {
        assert_eq!(self.status[id], Status::Live);
        self.status[id] = Status::Removed;
        self.children[id].removed.store(true, SeqCst);
        self.live -= 1;
        if dropped_now {
            assert_eq!(self.children[id].drops.load(SeqCst), 1, "child {id} drops");
        }
    }

    /// The set dropped the child because its poll unwound.
    fn lost(&mut self, id: usize) {
        stat("child lost to an unwound poll");
        assert_eq!(self.status[id], Status::Live);
        assert_eq!(
            self.children[id].drops.load(SeqCst),
            1,
            "lost child {id} drops"
        );
        self.status[id] = Status::Lost;
        self.children[id].removed.store(true, SeqCst);
        self.live -= 1;
    }

    fn finished(&mut self, id: u32) {
        let id = id as usize;
        assert_eq!(self.status[id], Status::Live, "child {id} finished twice");
        if S::STREAMS {
            assert_eq!(self.items_left[id], 0, "stream {id} ended early");
        }
        self.status[id] = Status::Finished;
        self.live -= 1;
        // A finished child is dropped before `poll_next` returns.
        assert_eq!(
            self.children[id].drops.load(SeqCst),
            1,
            "child {id} drops on finish"
        );
    }

    fn learn_key(&mut self, id: u32, key: Key) {
        match self.keys[id as usize] {
            Some(known) => assert_eq!(known, key, "key of child {id}"),
            None => self.keys[id as usize] = Some(key),
        }
    }

    /// The id whose key the harness picks with `a` (among known keys).
    fn pick_key(&self, a: u8) -> Option<(usize, Key)> {
        let known: Vec<(usize, Key)> = self
            .keys
            .iter()
            .enumerate()
            .filter_map(|(id, k)| k.map(|k| (id, k)))
            .collect();
        if known.is_empty() {
            return None;
        }
        Some(known[a as usize % known.len()])
    }

    fn pick_child(&self, a: u8) -> Option<Arc<Shared>> {
        if self.children.is_empty() {
            return None;
        }
        Some(self.children[a as usize % self.children.len()].clone())
    }

    /// An operation unwound (a panicking parent waker): only allowed if
    /// one may be reached, and it must have changed nothing in the model.
    fn unwound(&self, what: &'static str) {
        stat(what);
        assert!(
            self.parents.may_panic(),
            "{what} unwound, but no parent waker the set may wake panics"
        );
        for (id, shared) in self.children.iter().enumerate() {
            if self.status[id] == Status::Live {
                assert_eq!(
                    shared.drops.load(SeqCst),
                    0,
                    "{what} unwound and dropped child {id}"
                );
            }
        }
    }

    fn flush(&mut self) {
        flush_helpers();
        self.parents.in_flight = false;
        self.remote_in_flight = [false; HELPERS];
        self.parents.check();
        if self.set.is_some() {
            assert!(
                REFUSED.lock().unwrap().is_empty(),
                "a helper's handle push was refused while the set lives"
            );
        }
    }

    // -- polling ------------------------------------------------------------

    /// One `poll_next` with the current parent waker, checked.
    fn poll_once(&mut self) -> Option<Polled> {
        let k = self.parents.polling;
        self.poll_with(k, S::poll)
    }

    /// One poll with parent waker `k`, checked against the children's own
    /// record of it; `None` if it unwound.
    fn poll_with(
        &mut self,
        k: usize,
        poll: fn(&mut S, &mut Context<'_>) -> Polled,
    ) -> Option<Polled> {
        take_events();
        self.parents.idle = None;
        let waker = self.parents.waker(k);
        // Rule K1: with outputs kept, the poll hands out the oldest and
        // polls nothing (and counts no new output in the stats).
        let stashed = !self.stash.is_empty();
        let set = self.set.as_mut().unwrap();
        let outputs = set.stats_outputs();
        let result = caught(|| poll(set, &mut Context::from_waker(&waker)));
        let events = take_events();
        if stashed {
            assert_eq!(
                set.stats_outputs(),
                outputs,
                "handing out a kept output counted it again in the stats"
            );
        }
        // `FuturesOrdered` hands out an output that finished earlier without
        // polling its core, so without registering this waker (as
        // futures-util's does; `Ready` needs no waker); so do the other
        // sets with a kept output (K1). Every other poll registers it first
        // (rule P1).
        let from_waiting =
            S::ORDERED && events.is_empty() && matches!(result, Some(Poll::Ready(Some(_))));
        if !from_waiting && !stashed {
            self.parents.polled(k);
        }
        // `poll_next` adopts handles' pushes before anything else, unless
        // it hands out a kept output.
        self.must_adopt = !stashed;
        match result {
            Some(result) if stashed => self.check_handed_out(&events, result),
            None if stashed => panic!("handing out a kept output unwound"),
            Some(result) if S::ORDERED => self.check_ordered_poll(&events, result),
            Some(result) => self.check_poll(&events, result),
            None => self.check_unwound_poll(&events),
        }
        self.check();
        result
    }

    /// Every child in `events` was polled, so adopted if a handle pushed it
    /// (and polled again if it was unparked). Checks that none was polled
    /// twice in one call of the poll loop (C2; a call ends at an output:
    /// `FuturesOrdered`'s `poll_next` and a progress poll make several)
    /// and that no stream was polled while its item is kept (K1).
    fn seen_in(&mut self, events: &[Event]) {
        let mut this_call = HashSet::new();
        for event in events {
            let id = event_id(*event);
            self.seen_polled(id);
            self.unparked.retain(|&u| u != id);
            assert!(
                this_call.insert(id),
                "child {id} polled twice in one call of the poll loop: {events:?}"
            );
            if is_output::<S>(*event) {
                this_call.clear();
            }
            assert!(
                !self.stash.iter().any(|&(kept, _)| kept == id),
                "stream {id} polled while its item is kept (it should be parked): {events:?}"
            );
        }
    }

    /// A `poll_next` while outputs are kept: it hands out the oldest, polls
    /// nothing, and queues the stream whose item it was again (K1).
    fn check_handed_out(&mut self, events: &[Event], result: Polled) {
        assert!(
            events.is_empty(),
            "poll_next polled children while outputs are kept: {events:?}"
        );
        let (id, kept) = self.stash.pop_front().unwrap();
        let Poll::Ready(Some((key, out))) = result else {
            panic!("poll_next with kept output {kept:?} of child {id}: {result:?}");
        };
        assert_eq!(
            out, kept,
            "kept outputs out of completion order (child {id}'s was next)"
        );
        if let Some(key) = key {
            self.learn_key(id, key);
        }
        stat("kept output handed out");
        if S::STREAMS && matches!(out, Out::Item(..)) {
            if self.status[id as usize] == Status::Live {
                self.unparked.push(id);
            } else {
                stat("kept item of a removed stream handed out");
            }
        }
    }

    fn check_poll(&mut self, events: &[Event], result: Polled) {
        self.seen_in(events);
        let mut outputs = 0;
        for (i, event) in events.iter().enumerate() {
            let last = i + 1 == events.len();
            match *event {
                Event::Pending(_) => {}
                Event::Ready(id) => {
                    assert!(last, "poll_next went on after a child finished");
                    outputs += 1;
                    self.finished(id);
                }
                Event::Item(id, seq) => {
                    assert!(last, "poll_next went on after a stream item");
                    outputs += 1;
                    let idx = id as usize;
                    assert_eq!(self.status[idx], Status::Live);
                    assert_eq!(seq, self.next_seq[idx], "stream {id} items in order");
                    assert!(self.items_left[idx] > 0, "stream {id} yields too much");
                    self.next_seq[idx] += 1;
                    self.items_left[idx] -= 1;
                }
                Event::Ended(id) => {
                    // `StreamsUnordered` drops an ended stream silently and
                    // goes on; `IndexedStreamsUnordered` reports it.
                    if S::REPORTS_END {
                        assert!(last, "poll_next went on after reporting an end");
                        outputs += 1;
                    }
                    self.finished(id);
                }
            }
        }
        match result {
            Poll::Ready(Some((key, out))) => {
                assert_eq!(outputs, 1, "one output per Ready(Some): {events:?}");
                let id = match (out, events.last()) {
                    (Out::Done(id), Some(&Event::Ready(e))) => {
                        assert_eq!(id, e);
                        id
                    }
                    (Out::Item(id, seq), Some(&Event::Item(e, s))) => {
                        assert_eq!((id, seq), (e, s));
                        id
                    }
                    (Out::End, Some(&Event::Ended(e))) => e,
                    other => panic!("output does not match the child: {other:?}"),
                };
                if let Some(key) = key {
                    self.learn_key(id, key);
                }
            }
            Poll::Ready(None) => {
                assert_eq!(outputs, 0);
                assert_eq!(self.live, 0, "Ready(None) with live children");
                assert!(self.stash.is_empty(), "Ready(None) with outputs kept");
                // A helper's push in flight holds a handle until it is in.
                assert!(
                    self.handles.is_empty(),
                    "Ready(None) while a handle lives (I1)"
                );
                assert_eq!(
                    self.injected(),
                    0,
                    "Ready(None) with a handle push not adopted (I1)"
                );
            }
            Poll::Pending => {
                assert_eq!(outputs, 0, "Pending after a child produced: {events:?}");
                let waits = !self.handles.is_empty() || self.remote_in_flight.contains(&true);
                assert!(
                    self.live > 0 || self.definite_injected() > 0 || waits,
                    "Pending from an empty set with no handle alive (futures-util returns \
                     Ready(None))"
                );
                if self.live == 0 && self.definite_injected() == 0 {
                    stat("empty set pending while a handle lives");
                }
            }
        }
    }

    /// `FuturesOrdered`: children finish in any order, outputs come in
    /// queue order.
    fn check_ordered_poll(&mut self, events: &[Event], result: Polled) {
        self.seen_in(events);
        for event in events {
            match *event {
                Event::Pending(_) => {}
                Event::Ready(id) => self.finished(id),
                other => panic!("a future made a stream event: {other:?}"),
            }
        }
        let head = self.queue.front().map(|&id| (id, self.status[id as usize]));
        match result {
            Poll::Ready(Some((_, Out::Done(id)))) => {
                assert_eq!(
                    head,
                    Some((id, Status::Finished)),
                    "FuturesOrdered output order"
                );
                if let Some(&last) = events.last() {
                    assert_eq!(
                        last,
                        Event::Ready(id),
                        "FuturesOrdered went on after a due output"
                    );
                }
                self.queue.pop_front();
                stat("ordered output");
            }
            Poll::Ready(Some(other)) => panic!("FuturesOrdered output {other:?}"),
            Poll::Ready(None) => {
                assert_eq!(self.live, 0, "Ready(None) with futures running");
                assert!(
                    matches!(head, None | Some((_, Status::Lost))),
                    "Ready(None) with output {head:?} due"
                );
            }
            Poll::Pending => {
                assert!(self.live > 0, "Pending with no future running");
                assert!(
                    !matches!(head, Some((_, Status::Finished))),
                    "Pending with the due output {head:?} finished"
                );
            }
        }
    }

    /// A poll that unwound: a parent waker it woke panicked. The child
    /// whose own wake inside its poll panicked is dropped by the set.
    fn check_unwound_poll(&mut self, events: &[Event]) {
        stat("poll unwound");
        self.seen_in(events);
        assert!(
            self.parents.may_panic(),
            "poll_next unwound, but no parent waker the set may wake panics"
        );
        for event in events {
            match *event {
                Event::Pending(_) => {}
                // Finished, its output waiting for an earlier one.
                Event::Ready(id) if S::ORDERED => self.finished(id),
                Event::Ended(id) if !S::REPORTS_END => self.finished(id),
                other => panic!("poll_next unwound after an output: {other:?} in {events:?}"),
            }
        }
        self.lose_child_polled_last(events, "a poll");
    }

    /// After `what` unwound: the one child dropped by the unwind, if any,
    /// must be the child polled last (its own wake panicked inside its
    /// poll); it is lost.
    fn lose_child_polled_last(&mut self, events: &[Event], what: &str) {
        let polled_last = match events.last() {
            Some(&Event::Pending(id)) => Some(id as usize),
            _ => None,
        };
        for id in 0..self.children.len() {
            if self.status[id] == Status::Live && self.children[id].drops.load(SeqCst) != 0 {
                assert_eq!(
                    Some(id),
                    polled_last,
                    "{what} that unwound dropped child {id}, not the one it was polling"
                );
                self.lost(id);
            }
        }
    }

    /// Flushes the helpers, then polls until the set is idle: `Pending`
    /// without a wake-up of the parent. Checks rule R1 there.
    fn quiesce(&mut self) {
        self.flush();
        self.check_parent_woken();
        let k = self.parents.steady();
        for _ in 0..MAX_QUIESCE_POLLS {
            let before = self.parents.wakes(k);
            match self.poll_with(k, S::poll) {
                None => panic!("a poll with a waker that does not panic unwound"),
                Some(Poll::Ready(Some(_))) => continue,
                Some(Poll::Ready(None)) => return,
                Some(Poll::Pending) => {
                    if self.parents.wakes(k) != before {
                        continue;
                    }
                    for (id, shared) in self.children.iter().enumerate() {
                        if self.status[id] == Status::Live {
                            assert!(
                                !shared.woken.load(SeqCst),
                                "lost wake-up: child {id} was woken, the set is Pending \
                                 and did not wake its parent"
                            );
                        }
                    }
                    self.check_unparked_polled("the set went idle");
                    self.parents.idle = Some(before);
                    self.pushed_since_idle = false;
                    self.handles_since_idle = !self.handles.is_empty();
                    stat("idle");
                    return;
                }
            }
        }
        panic!("the set kept producing or waking itself for {MAX_QUIESCE_POLLS} polls");
    }

    /// Rule R1 from the parent's side: the set went idle, and a live child
    /// has been woken since (every wake sent so far has completed), so the
    /// parent waker of that poll must have been woken.
    fn check_parent_woken(&self) {
        let Some(wakes) = self.parents.idle else {
            return;
        };
        if self.parents.wakes(self.parents.last) != wakes {
            return;
        }
        assert!(
            !self.pushed_since_idle,
            "lost wake-up: a handle pushed into the idle set, and the parent waker {} was \
             not woken (I1)",
            self.parents.last
        );
        assert!(
            !(self.handles_since_idle && self.handles.is_empty()),
            "lost wake-up: the last handle dropped while the set was idle, and the parent \
             waker {} was not woken (I1)",
            self.parents.last
        );
        for (id, shared) in self.children.iter().enumerate() {
            if self.status[id] == Status::Live {
                assert!(
                    !shared.woken.load(SeqCst),
                    "lost wake-up: child {id} was woken while the set was idle, \
                     and the parent waker {} was not woken",
                    self.parents.last
                );
            }
        }
    }

    /// Runs every live child to completion by waking them all whenever the
    /// set is idle, and checks that every expected output came out.
    fn drain(&mut self) {
        for _round in 0..64 {
            self.quiesce();
            if self.live == 0 {
                break;
            }
            for (id, shared) in self.children.iter().enumerate() {
                if self.status[id] == Status::Live {
                    if let Some(waker) = shared.waker() {
                        shared.woken.store(true, SeqCst);
                        assert!(caught(|| waker.wake()).is_some(), "a steady wake unwound");
                    }
                }
            }
        }
        assert_eq!(self.live, 0, "children left after draining");
        if !self.handles.is_empty() {
            // Empty, but a handle lives: the set waits (rule I1) ...
            let k = self.parents.steady();
            assert!(
                matches!(self.poll_with(k, S::poll), Some(Poll::Pending)),
                "an empty set with a live handle did not wait"
            );
            // ... until the last handle's drop wakes it, and then it ends.
            let before = self.parents.wakes(k);
            for handle in std::mem::take(&mut self.handles) {
                assert!(
                    caught(move || drop(handle)).is_some(),
                    "a handle's drop woke a panicking parent waker"
                );
            }
            stat("last handle dropped");
            assert!(
                self.parents.wakes(k) > before,
                "the last handle's drop did not wake the waiting set (I1)"
            );
        }
        assert!(matches!(self.poll_once(), Some(Poll::Ready(None))));
        if S::STREAMS {
            for id in 0..self.children.len() {
                if self.status[id] == Status::Finished {
                    assert_eq!(self.items_left[id], 0, "stream {id} owes items");
                }
            }
        }
    }

    // -- operations ---------------------------------------------------------

    fn op_push(&mut self, a: u8) {
        if self.can_create(1) {
            let spec = Spec::decode(a);
            let child = self.create(spec);
            let id = child.shared.id;
            self.set().push(child, spec.priority);
            self.pushed(id, false);
        }
    }

    fn op_insert(&mut self, a: u8) {
        if !S::KEYED {
            return self.op_push_front(a, 1);
        }
        if self.can_create(1) {
            let spec = Spec::decode(a);
            let child = self.create(spec);
            let id = child.shared.id;
            let key = self.set().insert(child, spec.priority);
            self.learn_key(id, key);
            self.pushed(id, false);
        }
    }

    /// `FuturesOrdered::push_front` of `n` children (plain pushes elsewhere).
    fn op_push_front(&mut self, a: u8, n: usize) {
        if !S::ORDERED {
            return self.op_push(a);
        }
        if self.can_create(n) {
            for i in 0..n {
                let child = self.create(Spec::decode(a.wrapping_add(i as u8)));
                let id = child.shared.id;
                self.set().push_front(child);
                self.pushed(id, true);
            }
        }
    }

    /// Many at once, to cross page boundaries (64, 192, 448).
    fn op_push_many(&mut self, a: u8) {
        let n = usize::from(a) + 1;
        if !self.can_create(n) {
            return;
        }
        let children: Vec<(Child, Priority)> = (0..n)
            .map(|i| {
                let spec = Spec::decode((i as u8).wrapping_mul(37) ^ a);
                (self.create(spec), spec.priority)
            })
            .collect();
        let ids: Vec<u32> = children.iter().map(|(c, _)| c.shared.id).collect();
        self.set().extend(children);
        for id in ids {
            self.pushed(id, false);
        }
    }

    fn wake_local(&mut self, a: u8, b: u8) {
        let Some(shared) = self.pick_child(a) else {
            return;
        };
        let Some(waker) = shared.waker() else {
            return;
        };
        shared.woken.store(true, SeqCst);
        let woke = caught(|| match b % 4 {
            0 => waker.wake_by_ref(),
            1 => waker.wake(),
            2 => {
                // The stored waker itself, consumed: the child's own `held`
                // clone (and the set) keep the header alive.
                let stored = shared.waker.lock().unwrap().take();
                if let Some(stored) = stored {
                    stored.wake();
                }
            }
            _ => {
                let clone = waker.clone();
                drop(waker);
                clone.wake_by_ref();
                clone.wake_by_ref();
            }
        });
        if woke.is_none() {
            self.unwound("a child's wake");
        }
    }

    fn wake_remote(&mut self, a: u8, b: u8) {
        let Some(shared) = self.pick_child(a) else {
            return;
        };
        let Some(waker) = shared.waker() else {
            return;
        };
        let h = usize::from(b & 1);
        match (b >> 1) % 3 {
            0 => {
                self.parents.in_flight = true;
                send(h, Msg::Wake(shared, waker));
            }
            1 => {
                self.parents.in_flight = true;
                send(h, Msg::WakeByRef(shared, waker));
            }
            _ => send(h, Msg::Stash(shared, waker)),
        }
    }

    fn op_helpers(&mut self, a: u8) {
        match a % 3 {
            0 => {
                self.parents.in_flight = true;
                send(usize::from(a >> 2), Msg::WakeStash);
            }
            1 => send(usize::from(a >> 2), Msg::DropStash),
            _ => {
                self.flush();
                self.check_parent_woken();
            }
        }
    }

    /// Op 18: a poll with another parent waker.
    fn op_other_waker(&mut self, a: u8) {
        let k = match a % 4 {
            0 => self.parents.add(false),
            1 => self.parents.add(true),
            2 => usize::from(a >> 2) % self.parents.all.len(),
            _ => {
                // Just this poll; the next ones go back to the current one.
                let k = self.parents.add(false);
                let _ = self.poll_with(k, S::poll);
                return;
            }
        };
        self.parents.polling = k;
        let _ = self.poll_with(k, S::poll);
    }

    fn concurrent_push(&mut self, a: u8, data: &mut Decoder<'_>) {
        let per_thread = usize::from(a % 8) + 1;
        if !S::KEYED || !self.can_create(2 * per_thread) {
            return;
        }
        let tries = a & 0x40 != 0;
        let before = self.held();
        let batches: Vec<Vec<(Child, Spec, bool)>> = (0..2)
            .map(|_| {
                (0..per_thread)
                    .map(|_| {
                        let b = data.byte();
                        let spec = Spec::decode(b);
                        (self.create(spec), spec, b & 0x80 != 0)
                    })
                    .collect()
            })
            .collect();
        let set = self.set.as_ref().unwrap();
        // Per thread: the ids pushed (in order), with keys where inserted,
        // and the children handed back.
        type Pushed = (Vec<(u32, Option<Key>)>, Vec<Child>);
        let results: Vec<Pushed> = std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .into_iter()
                .map(|batch| {
                    scope.spawn(move || {
                        let mut pushed = Vec::new();
                        let mut refused = Vec::new();
                        for (child, spec, insert) in batch {
                            let id = child.shared.id;
                            if tries {
                                match set.try_add(child, spec.priority, insert) {
                                    Ok(key) => pushed.push((id, key)),
                                    Err(child) => refused.push(child),
                                }
                            } else if insert {
                                pushed.push((id, Some(set.insert(child, spec.priority))));
                            } else {
                                set.push_shared(child, spec.priority);
                                pushed.push((id, None));
                            }
                        }
                        (pushed, refused)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut order: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        let mut accepted = 0;
        for (thread, (pushed, refused)) in results.into_iter().enumerate() {
            for (id, key) in pushed {
                if let Some(key) = key {
                    self.learn_key(id, key);
                }
                order[thread].push(id);
                accepted += 1;
            }
            for child in refused {
                stat("concurrent try_push refused");
                let id = child.shared.id as usize;
                drop(child);
                self.removed(id, true);
            }
        }
        if tries {
            // The set only grew meanwhile, so exactly the room there was.
            let room = self.limit.map_or(usize::MAX, |l| l.saturating_sub(before));
            assert_eq!(
                accepted,
                room.min(2 * per_thread),
                "concurrent try_push admitted"
            );
        }
        self.pushes.push(Batch::Racing(order.to_vec()));
    }

    /// Op 17, `a % 3 == 0`: the iterators agree with each other and with
    /// the model's push order, and `contains` with the model.
    fn check_contents(&mut self, pin_first: bool) {
        if !S::ITERS {
            return;
        }
        // With handle pushes waiting, `iter` and `iter_pin_ref` (through
        // `&self`) do not show them, and the first of `iter_pin_mut` and
        // `iter_mut` adopts them: two groups, each agreeing. (A helper's
        // push between those two would split the second group.)
        let waiting = self.pending.iter().any(|q| !q.is_empty());
        if waiting && self.remote_in_flight.contains(&true) {
            self.flush();
        }
        let orders = self.set().orders(pin_first);
        let mut agreed: [Option<(&str, Vec<u32>)>; 2] = [None, None];
        for (name, order) in orders {
            let Some(order) = order else {
                self.unwound(name);
                continue;
            };
            let group = usize::from(waiting && name.ends_with("mut"));
            match &agreed[group] {
                Some((first, seen)) => assert_eq!(&order, seen, "{name} and {first} disagree"),
                None => agreed[group] = Some((name, order)),
            }
        }
        let [before, after] = agreed;
        if let Some((_, order)) = before {
            self.check_order(&order, true);
        }
        if waiting {
            self.must_adopt = true;
            self.resolve();
            if let Some((_, order)) = after {
                self.check_order(&order, true);
            }
        }
        if S::KEYED {
            for (id, key) in self.keys.clone().into_iter().enumerate() {
                if let Some(key) = key {
                    let live = self.status[id] == Status::Live;
                    assert_eq!(self.set().contains(key), live, "contains");
                }
            }
        }
    }

    /// `observed` (an iterator's ids, or the first ones `into_iter` gave
    /// when not `full`) is the live children, newest push first. A full
    /// look fixes the order of racing pushes for the model.
    fn check_order(&mut self, observed: &[u32], full: bool) {
        // Newest first; each step has one lane, or two for racing pushes.
        let mut steps: Vec<Vec<VecDeque<u32>>> = Vec::new();
        let live = |id: &&u32| self.status[**id as usize] == Status::Live;
        for batch in self.pushes.iter().rev() {
            match batch {
                Batch::One(id) => {
                    if live(&id) {
                        steps.push(vec![VecDeque::from([*id])]);
                    }
                }
                Batch::Racing(threads) => {
                    steps.push(
                        threads
                            .iter()
                            .map(|t| t.iter().rev().filter(live).copied().collect())
                            .collect(),
                    );
                }
            }
        }
        let shown: Vec<Vec<Vec<u32>>> = steps
            .iter()
            .map(|s| s.iter().map(|l| l.iter().copied().collect()).collect())
            .collect();
        let mut step = 0;
        for (i, &id) in observed.iter().enumerate() {
            while step < steps.len() && steps[step].iter().all(VecDeque::is_empty) {
                step += 1;
            }
            let lane = steps
                .get_mut(step)
                .and_then(|s| s.iter_mut().find(|lane| lane.front() == Some(&id)));
            match lane {
                Some(lane) => {
                    lane.pop_front();
                }
                None => panic!(
                    "iteration order: item {i} is child {id}; expected, newest push first: \
                     {shown:?}; got {observed:?}"
                ),
            }
        }
        stat(if full {
            "order checked"
        } else {
            "into_iter order checked"
        });
        if full {
            assert_eq!(
                observed.len(),
                self.live,
                "the iterator missed children: expected {shown:?}, got {observed:?}"
            );
            self.pushes = observed.iter().rev().map(|&id| Batch::One(id)).collect();
        }
    }

    fn op_cancel(&mut self, a: u8) {
        if !S::KEYED {
            return self.op_push_front(a, usize::from(a % 8) + 1);
        }
        let Some((id, key)) = self.pick_key(a) else {
            return;
        };
        let live = self.status[id] == Status::Live;
        self.must_adopt = true;
        let set = self.set.as_mut().unwrap();
        match caught(|| set.cancel(key)) {
            Some(cancelled) => {
                assert_eq!(cancelled, live, "cancel({id})");
                if live {
                    self.removed(id, true);
                }
            }
            None => self.unwound("cancel"),
        }
    }

    fn op_remove(&mut self, a: u8) {
        if !S::KEYED {
            return;
        }
        let Some((id, key)) = self.pick_key(a) else {
            return;
        };
        let live = self.status[id] == Status::Live;
        self.must_adopt = true;
        let set = self.set.as_mut().unwrap();
        let Some(child) = caught(|| set.remove(key)) else {
            return self.unwound("remove");
        };
        assert_eq!(child.is_some(), live, "remove({id})");
        if let Some(child) = child {
            assert_eq!(
                child.shared.id as usize, id,
                "remove returned another child"
            );
            assert_eq!(self.children[id].drops.load(SeqCst), 0);
            drop(child);
            self.removed(id, true);
        }
    }

    fn op_pin_mut(&mut self, a: u8) {
        if !S::KEYED {
            return;
        }
        let Some((id, key)) = self.pick_key(a) else {
            return;
        };
        let live = self.status[id] == Status::Live;
        self.must_adopt = true;
        let set = self.set.as_mut().unwrap();
        match caught(|| set.has_pin_mut(key)) {
            Some(found) => assert_eq!(found, live, "get_pin_mut({id})"),
            None => self.unwound("get_pin_mut"),
        }
    }

    fn op_clear(&mut self) {
        let set = self.set.as_mut().unwrap();
        if caught(|| set.clear()).is_none() {
            panic!("clear wakes no parent waker, yet it unwound");
        }
        for id in 0..self.children.len() {
            if self.status[id] == Status::Live {
                self.removed(id, true);
            }
        }
        self.queue.clear();
        // Kept outputs are dropped too (K1); nothing is parked any more.
        self.stash.clear();
        self.unparked.clear();
        // `clear` adopts the handle pushes in the stack and drops them too;
        // a helper's push that comes after it stays for later.
        self.settle_injected(false, "clear");
    }

    /// Handle pushes that the set dropped (`clear`, the set's drop) without
    /// adopting them into a later life: each source's dropped ones are its
    /// oldest, and every one surely in the stack (all, after a flush:
    /// `flushed`) is dropped, exactly once.
    fn settle_injected(&mut self, flushed: bool, what: &'static str) {
        for src in 0..3 {
            let definite = flushed || self.definite(src);
            let mut kept = VecDeque::new();
            for id in std::mem::take(&mut self.pending[src]) {
                let idx = id as usize;
                assert_eq!(self.status[idx], Status::Injected);
                match self.children[idx].drops.load(SeqCst) {
                    0 => {
                        assert!(!definite, "{what} left handle push {id} undropped");
                        kept.push_back(id);
                    }
                    1 => {
                        assert!(
                            kept.is_empty(),
                            "{what} dropped handle push {id} but not an older one"
                        );
                        stat("handle push dropped unadopted");
                        self.status[idx] = Status::Removed;
                        self.children[idx].removed.store(true, SeqCst);
                    }
                    n => panic!("handle push {id} dropped {n} times"),
                }
            }
            self.pending[src] = kept;
        }
    }

    /// After the set is gone and the helpers flushed: the children that
    /// helpers' pushes got back (`Closed`) are the ones the set never had.
    fn settle_refused(&mut self) {
        let refused = std::mem::take(&mut *REFUSED.lock().unwrap());
        for child in refused {
            let id = child.shared.id;
            stat("handle push refused on a helper");
            assert!(self.set.is_none(), "a push refused while the set lives");
            assert_eq!(self.status[id as usize], Status::Injected);
            assert_eq!(child.shared.drops.load(SeqCst), 0);
            drop(child);
            assert_eq!(self.children[id as usize].drops.load(SeqCst), 1);
            self.status[id as usize] = Status::Removed;
            for q in &mut self.pending {
                q.retain(|&p| p != id);
            }
        }
        self.settle_injected(true, "the set's drop");
    }

    /// The set is gone: a push through a surviving handle hands its child
    /// back, here and on a helper (`settle_refused` checks that one).
    fn closed_pushes(&mut self, a: u8) {
        if self.handles.is_empty() || !self.can_create(2) {
            return;
        }
        let spec = Spec::decode(a);
        let child = self.create(spec);
        let id = child.shared.id;
        let handle = &self.handles[0];
        assert!(handle.is_closed(), "is_closed after the set is gone");
        let Err(refused) = handle.push_with_priority(child, spec.priority) else {
            panic!("a handle push after the set is gone succeeded");
        };
        let child = refused.into_inner();
        assert_eq!(child.shared.id, id, "Closed holds another child");
        stat("handle push refused here");
        drop(child);
        self.removed(id as usize, true);
        let child = self.create_injected(spec);
        let id = child.shared.id;
        let h = usize::from(a >> 7);
        send(h, Msg::Push(self.handles[0].clone(), child, spec.priority));
        self.pending[1 + h].push_back(id);
    }

    fn op_set_limit(&mut self, a: u8) {
        if !S::KEYED {
            return;
        }
        let limit = match a % 8 {
            0 => None,
            1 => Some(0),
            2 => Some(self.held()),
            3 => Some(self.held() + 1),
            _ => Some(usize::from(a >> 5) + 1),
        };
        self.set().limit_to(limit);
        self.limit = limit.filter(|&l| l != 0);
    }

    fn op_try_push(&mut self, a: u8) {
        if !S::KEYED || !self.can_create(1) {
            return;
        }
        let room = self.has_room();
        let spec = Spec::decode(a);
        let child = self.create(spec);
        let id = child.shared.id;
        match self.set().try_add(child, spec.priority, a & 0x80 != 0) {
            Ok(key) => {
                assert!(room, "try_push into a full set succeeded");
                if let Some(key) = key {
                    self.learn_key(id, key);
                }
                self.pushed(id, false);
            }
            Err(child) => {
                assert!(!room, "try_push refused a set with room");
                stat("try_push refused");
                assert_eq!(child.shared.id, id, "try_push handed back another child");
                drop(child);
                self.removed(id as usize, true);
            }
        }
    }

    fn op_poll_ready(&mut self, a: u8) {
        if !S::KEYED {
            return;
        }
        let waiter = usize::from(a) % ROOM_WAITERS;
        while self.room.len() <= waiter {
            let parent = Arc::new(Parent::default());
            self.room.push((parent.clone(), Waker::from(parent)));
        }
        let waker = self.room[waiter].1.clone();
        let ready = self.set().poll_room(&mut Context::from_waker(&waker));
        assert_eq!(ready.is_ready(), self.has_room(), "poll_ready");
        if ready.is_pending() && !self.waiting.iter().any(|&(w, _)| w == waiter) {
            let wakes = self.room[waiter].0.wakes.load(SeqCst);
            self.waiting.push((waiter, wakes));
        }
    }

    fn op_make_room(&mut self) {
        if !S::KEYED {
            return;
        }
        if self.has_room() {
            // Returns at once, polling nothing, registering nothing.
            take_events();
            let waker = self.parents.waker(self.parents.polling);
            let result = self.set().poll_make_room(&mut Context::from_waker(&waker));
            assert!(
                matches!(result, Poll::Ready(None)),
                "make_room with room: {result:?}"
            );
            assert!(
                take_events().is_empty(),
                "make_room with room polled a child"
            );
        } else {
            let k = self.parents.polling;
            let _ = self.poll_with(k, S::poll_make_room);
        }
    }

    // -- progress_while (op 29, every set) -------------------------------------

    /// Op 29: `progress_while` with a body that is `Pending` for `k = a % 8`
    /// polls (bit 3: waking its task each time), polled with the current
    /// parent waker `a >> 4` times or until it is done, then dropped (half
    /// way, if the body is not done). With bit 0 of `b` (`panic = "unwind"`
    /// only) the body panics on its poll `(b >> 1) % (k + 1)`.
    fn op_progress(&mut self, a: u8, b: u8) {
        let k = a % 8;
        let polls = a >> 4;
        let kp = self.parents.polling;
        // A body's wake of a panicking parent waker would unwind before
        // the set is touched; the model's P1 bookkeeping cannot tell it
        // from a set's wake, so such a body does not wake.
        let body_wakes = a & 8 != 0 && !self.parents.panics(kp);
        let panic_at = (cfg!(panic = "unwind") && b & 1 != 0).then_some((b >> 1) % (k + 1));
        let body = Body {
            left: k,
            polls: 0,
            wakes: body_wakes,
            panic_at,
        };
        let waker = self.parents.waker(kp);
        // Out of the model while the future borrows it: the checks between
        // polls need only the children's own records.
        let mut set = self.set.take().unwrap();
        let terminated = set.terminated();
        let outputs = set.stats_outputs();
        if self.live == 0 && self.stash.is_empty() {
            stat("progress on an empty set");
        }
        stat("progress_while");
        let mut kept = 0;
        let mut progressed = false;
        let mut done = false;
        {
            let mut fut = pin!(set.progress_while(body));
            for n in 0..polls {
                take_events();
                self.parents.idle = None;
                // `FuturesOrdered` polls its core only while futures run.
                let registers = !S::ORDERED || self.live > 0;
                let wakes = self.parents.wakes(kp);
                let result = panic::catch_unwind(AssertUnwindSafe(|| {
                    fut.as_mut().poll(&mut Context::from_waker(&waker))
                }));
                let events = take_events();
                match result {
                    Ok(Poll::Ready(out)) => {
                        assert_eq!(out, BODY_OUTPUT, "progress_while's output");
                        assert_eq!(n, k, "progress_while ready on poll {n}, body pending {k}");
                        assert!(
                            events.is_empty(),
                            "a progress poll whose body was ready polled children: {events:?}"
                        );
                        stat("progress body done");
                        done = true;
                        break;
                    }
                    Ok(Poll::Pending) => {
                        assert!(n < k, "progress_while pending after its body was ready");
                        progressed = true;
                        if registers {
                            self.parents.polled(kp);
                        }
                        if body_wakes {
                            self.parents.woken_directly(kp, 1);
                        }
                        let now = self.keep(&events);
                        kept += now;
                        self.check_progress_poll(kp, wakes, now, body_wakes);
                    }
                    Err(payload) if payload.is::<BodyPanic>() => {
                        assert_eq!(Some(n), panic_at, "the body panicked on poll {n}");
                        assert!(
                            events.is_empty(),
                            "children polled before the body's panic: {events:?}"
                        );
                        stat("progress body panicked");
                        done = true;
                        break;
                    }
                    Err(_) => {
                        // A parent waker that panicked: woken by a child's
                        // wake inside its poll, or after 128 kept outputs.
                        progressed = true;
                        if registers {
                            self.parents.polled(kp);
                        }
                        kept += self.progress_unwound(&events);
                        done = true;
                        break;
                    }
                }
            }
            if !done {
                stat("progress_while dropped half way");
            }
        }
        if S::STREAMS {
            let mut kept_streams = HashSet::new();
            for &(id, out) in &self.stash {
                if matches!(out, Out::Item(..)) {
                    assert!(kept_streams.insert(id), "two items of stream {id} kept");
                }
            }
        }
        assert_eq!(
            set.stats_outputs() - outputs,
            kept as u64,
            "stats' outputs must count each kept output once"
        );
        // A progress never terminates a set that was not (the fuzzer found
        // one that did: `tests/fuzz_regressions.rs`, fixed).
        assert!(
            terminated || !set.terminated(),
            "a progress poll terminated the set"
        );
        self.set = Some(set);
        // Each progress poll runs the poll loop, which adopts handles' pushes.
        self.must_adopt = progressed;
    }

    /// The events of one progress poll: every output is kept, in
    /// completion order (`FuturesOrdered`: waiting in `queue`); the same
    /// checks per child as `seen_in`, applied as the poll went (so a stream
    /// polled again after its item was kept in the same poll is caught).
    /// Returns the outputs kept.
    fn keep(&mut self, events: &[Event]) -> usize {
        let mut kept = 0;
        let mut this_call = HashSet::new();
        for &event in events {
            let id = event_id(event);
            self.seen_polled(id);
            self.unparked.retain(|&u| u != id);
            assert!(
                this_call.insert(id),
                "child {id} polled twice in one call of the poll loop during progress: {events:?}"
            );
            assert!(
                !self.stash.iter().any(|&(k, _)| k == id),
                "stream {id} polled during progress while its item is kept: {events:?}"
            );
            let out = match event {
                Event::Pending(_) => continue,
                Event::Ready(id) => {
                    self.finished(id);
                    Out::Done(id)
                }
                Event::Item(id, seq) => {
                    let idx = id as usize;
                    assert_eq!(self.status[idx], Status::Live);
                    assert_eq!(seq, self.next_seq[idx], "stream {id} items in order");
                    assert!(self.items_left[idx] > 0, "stream {id} yields too much");
                    self.next_seq[idx] += 1;
                    self.items_left[idx] -= 1;
                    Out::Item(id, seq)
                }
                Event::Ended(id) => {
                    self.finished(id);
                    if !S::REPORTS_END {
                        continue;
                    }
                    Out::End
                }
            };
            this_call.clear();
            kept += 1;
            if !S::ORDERED {
                self.stash.push_back((id, out));
            }
        }
        if kept != 0 {
            stat("progress poll kept outputs");
        }
        kept
    }

    /// After a progress poll that returned `Pending` (body pending): at
    /// most 128 outputs kept, and 128 wake the task (K1); one that woke
    /// nobody went idle (rule R1): every woken child was polled, but a
    /// stream whose item is kept, and so was every unparked one.
    fn check_progress_poll(&mut self, kp: usize, wakes: u32, kept: usize, body_wakes: bool) {
        let woke = self.parents.wakes(kp) != wakes;
        if !S::ORDERED {
            assert!(
                kept <= MAX_KEPT_PER_PROGRESS_POLL,
                "one progress poll kept {kept} outputs"
            );
            if kept == MAX_KEPT_PER_PROGRESS_POLL {
                stat("progress poll kept 128");
                assert!(
                    woke,
                    "a progress poll kept 128 outputs and did not wake its task"
                );
            }
        }
        if woke || body_wakes || self.parents.in_flight {
            return;
        }
        for (id, shared) in self.children.iter().enumerate() {
            if self.status[id] == Status::Live
                && shared.woken.load(SeqCst)
                && !self.stash.iter().any(|&(k, _)| k as usize == id)
            {
                panic!(
                    "lost wake-up: child {id} was woken, and a progress poll returned \
                     without polling it or waking its task"
                );
            }
        }
        self.check_unparked_polled("a progress poll returned without waking its task");
        stat("progress poll idle");
    }

    /// A progress poll that unwound (a parent waker panicked): the outputs
    /// before the unwind are kept, and only the child whose own wake
    /// panicked inside its poll is lost. Returns the outputs kept.
    fn progress_unwound(&mut self, events: &[Event]) -> usize {
        stat("progress poll unwound");
        assert!(
            self.parents.may_panic(),
            "a progress poll unwound, but no parent waker the set may wake panics"
        );
        let kept = self.keep(events);
        self.lose_child_polled_last(events, "a progress poll");
        kept
    }

    /// Every stream whose kept item was handed out was polled again since,
    /// as `what` happened (K1: handing it out queues it).
    fn check_unparked_polled(&mut self, what: &str) {
        for &id in &self.unparked {
            assert!(
                self.status[id as usize] != Status::Live,
                "stream {id}'s kept item was handed out, and {what} without polling it \
                 again (K1: it should have been unparked)"
            );
        }
        self.unparked.clear();
    }

    // -- push handles and append (the keyed sets) -----------------------------

    /// Op 24: a new handle (`a` even) or a clone of one.
    fn op_handle(&mut self, a: u8) {
        if !S::KEYED || self.handles.len() >= MAX_HANDLES {
            return;
        }
        let handle = if a & 1 == 0 || self.handles.is_empty() {
            stat("handle made");
            self.set.as_ref().unwrap().new_handle()
        } else {
            stat("handle cloned");
            self.handles[usize::from(a >> 1) % self.handles.len()].clone()
        };
        self.handles.push(handle);
        self.handles_since_idle = true;
    }

    /// Op 25: drops one of the handles (the last one wakes the set).
    fn op_drop_handle(&mut self, a: u8) {
        if self.handles.is_empty() {
            return;
        }
        let handle = self.handles.remove(usize::from(a) % self.handles.len());
        if self.handles.is_empty() {
            stat("last handle dropped");
        }
        if caught(move || drop(handle)).is_none() {
            self.unwound("a handle's drop");
        }
    }

    /// Op 26: a push of a child of spec `a` through a handle, here; bit 7
    /// of `b`: `push` (NORMAL), else `push_with_priority`.
    fn op_handle_push(&mut self, a: u8, b: u8) {
        if self.handles.is_empty() || !self.can_create(1) {
            return;
        }
        let spec = Spec::decode(a);
        let child = self.create_injected(spec);
        let id = child.shared.id;
        let handle = &self.handles[usize::from(b & 0x7f) % self.handles.len()];
        // The push may wake a panicking parent waker, after the child is in.
        let pushed = caught(|| {
            if b & 0x80 != 0 {
                handle.push(child)
            } else {
                handle.push_with_priority(child, spec.priority)
            }
        });
        self.pending[0].push_back(id);
        self.pushed_since_idle = true;
        stat("handle push");
        match pushed {
            Some(Ok(())) => {}
            Some(Err(_)) => panic!("a handle push was refused while the set lives"),
            None => self.unwound("a handle push"),
        }
    }

    /// Op 27: a helper pushes `b >> 1 & 3 + 1` children (specs from `a`)
    /// through clones of a handle, racing this thread.
    fn op_remote_push(&mut self, a: u8, b: u8) {
        let n = usize::from((b >> 1) & 3) + 1;
        if self.handles.is_empty() || !self.can_create(n) {
            return;
        }
        let h = usize::from(b & 1);
        for i in 0..n {
            let spec = Spec::decode(a.wrapping_add((i as u8).wrapping_mul(53)));
            let child = self.create_injected(spec);
            let id = child.shared.id;
            let handle = self.handles[usize::from(b >> 3) % self.handles.len()].clone();
            send(h, Msg::Push(handle, child, spec.priority));
            self.pending[1 + h].push_back(id);
        }
        stat("handle push from a helper");
        self.remote_in_flight[h] = true;
        // Its wake (and its clone's drop) may reach an older parent waker.
        self.parents.in_flight = true;
        self.pushed_since_idle = true;
        self.handles_since_idle = true;
    }

    /// Op 28: a second set of `a % 8` children (spec bytes follow; bit 7:
    /// inserted, keeping the key), plus one pushed through its handle (bit
    /// 3 of `a`), polled once (bit 4), then appended to the set.
    fn op_append(&mut self, a: u8, data: &mut Decoder<'_>) {
        let n = usize::from(a % 8);
        if !S::KEYED || !self.can_create(n + 1) {
            return;
        }
        let mut other = S::new();
        let mut order = Vec::new();
        let mut other_keys = Vec::new();
        for _ in 0..n {
            let b = data.byte();
            let spec = Spec::decode(b);
            let child = self.create(spec);
            order.push(child.shared.id);
            if b & 0x80 != 0 {
                other_keys.push(other.insert(child, spec.priority));
            } else {
                Set::push(&mut other, child, spec.priority);
            }
        }
        if a & 8 != 0 {
            // Adopted by `other` (its poll below, or `append`), so moved too.
            let spec = Spec::decode(a >> 5);
            let child = self.create(spec);
            order.push(child.shared.id);
            let handle = other.new_handle();
            assert!(handle.push_with_priority(child, spec.priority).is_ok());
        }
        // Polled once by `other`: the children hold its waker, and some may
        // finish or yield there.
        let other_parent = Arc::new(Parent::default());
        if a & 16 != 0 && !order.is_empty() {
            self.poll_other(&mut other, &other_parent);
        }
        let moved: Vec<u32> = order
            .iter()
            .copied()
            .filter(|&id| self.status[id as usize] == Status::Live)
            .collect();
        self.set().append_from(&mut other);
        stat("append");
        assert_eq!(other.len(), 0, "append left children in the other set");
        assert!(other.is_empty());
        for key in other_keys {
            assert!(
                !other.contains(key),
                "a key into the appended set still matches"
            );
        }
        let wakes = other_parent.wakes.load(SeqCst);
        for &id in &moved {
            stat("appended child");
            self.pushes.push(Batch::One(id));
            let shared = &self.children[id as usize];
            // A new push for this set: its next poll polls it, and only
            // its wakers from then on are this set's.
            shared.woken.store(false, SeqCst);
            let stale = shared.waker.lock().unwrap().take();
            if let Some(stale) = stale {
                // The other set's waker: its slot is vacant now (G1).
                stale.wake_by_ref();
            }
        }
        assert_eq!(
            other_parent.wakes.load(SeqCst),
            wakes,
            "a stale wake of a moved child woke the other set"
        );
    }

    /// One poll of `other` (op 28), checked against its children's events.
    fn poll_other(&mut self, other: &mut S, parent: &Arc<Parent>) {
        take_events();
        let waker = Waker::from(parent.clone());
        let result = other.poll(&mut Context::from_waker(&waker));
        let events = take_events();
        let mut outputs = 0;
        for event in &events {
            match *event {
                Event::Pending(_) => {}
                Event::Ready(id) => {
                    outputs += 1;
                    self.finished(id);
                }
                Event::Item(id, seq) => {
                    outputs += 1;
                    let idx = id as usize;
                    assert_eq!(seq, self.next_seq[idx], "stream {id} items in order");
                    assert!(self.items_left[idx] > 0, "stream {id} yields too much");
                    self.next_seq[idx] += 1;
                    self.items_left[idx] -= 1;
                }
                Event::Ended(id) => {
                    outputs += usize::from(S::REPORTS_END);
                    self.finished(id);
                }
            }
        }
        let expected = usize::from(matches!(result, Poll::Ready(Some(_))));
        assert_eq!(
            outputs, expected,
            "the other set's poll: {events:?}, {result:?}"
        );
    }

    // -- the ending ---------------------------------------------------------

    /// How the script ends, chosen by `a`. Then every waker left anywhere
    /// is woken (the set is gone) and dropped, and drop counts checked.
    fn finish(mut self, a: u8) {
        match a % 4 {
            0 => {
                self.drain();
                self.drop_set();
            }
            1 => {
                // Drop while helpers may be waking stashed wakers.
                self.parents.in_flight = true;
                for h in 0..HELPERS {
                    send(h, Msg::WakeStash);
                }
                self.drop_set();
            }
            2 if S::ITERS => self.take_some(usize::from(a >> 2)),
            _ => self.drop_set(),
        }
        self.closed_pushes(a);
        // Stale wakes after the set is gone, from here and the helpers.
        for (i, shared) in self.children.iter().enumerate() {
            if let Some(waker) = shared.waker() {
                if i % 2 == 0 {
                    assert!(
                        caught(|| waker.wake_by_ref()).is_some(),
                        "a wake after the set is gone reached a parent waker"
                    );
                } else {
                    send(i, Msg::Stash(shared.clone(), waker));
                }
            }
        }
        for h in 0..HELPERS {
            send(h, Msg::WakeStash);
            send(h, Msg::DropStash);
        }
        flush_helpers();
        self.settle_refused();
        // After the set is gone, the last handle's drop wakes nobody (see
        // `tests/fuzz_regressions.rs`: found here when the set's drop raced
        // a helper's wake and could not take its parent waker out).
        let wakes: Vec<u32> = (0..self.parents.all.len())
            .map(|i| self.parents.wakes(i))
            .collect();
        for handle in std::mem::take(&mut self.handles) {
            assert!(
                caught(move || drop(handle)).is_some(),
                "a handle's drop after the set is gone woke a panicking parent waker"
            );
        }
        let now: Vec<u32> = (0..self.parents.all.len())
            .map(|i| self.parents.wakes(i))
            .collect();
        assert_eq!(
            wakes, now,
            "a handle's drop after the set is gone woke a parent waker"
        );
        for (id, shared) in self.children.iter().enumerate() {
            shared.waker.lock().unwrap().take();
            assert_eq!(shared.drops.load(SeqCst), 1, "child {id} dropped once");
        }
        self.parents.in_flight = false;
        self.parents.check();
    }

    /// The ending through `into_iter`: takes `take` children (newest
    /// first), then drops the iterator with the rest.
    fn take_some(&mut self, take: usize) {
        // Every handle push in the stack; `into_iter` adopts them all.
        self.flush();
        let adopted: Vec<Vec<u32>> = self
            .pending
            .iter_mut()
            .map(|q| q.drain(..).collect())
            .collect();
        for &id in adopted.iter().flatten() {
            self.seen_polled(id);
        }
        self.pushes.push(Batch::Racing(adopted));
        // The kept outputs go with the set; `into_iter` yields children.
        self.stash.clear();
        let set = self.set.take().unwrap();
        for id in 0..self.children.len() {
            if self.status[id] == Status::Live {
                // None of them may be polled from now on.
                self.children[id].removed.store(true, SeqCst);
            }
        }
        // Making it adopts pushes, which may wake a panicking parent: then
        // the set is dropped as the panic unwinds, with all its children.
        let Some(mut iter) = caught(|| set.into_iter()) else {
            self.unwound_drop("into_iter");
            return;
        };
        assert_eq!(iter.len(), self.live, "IntoIter::len");
        let taken: Vec<Child> = iter.by_ref().take(take).collect();
        let ids: Vec<u32> = taken.iter().map(|child| child.shared.id).collect();
        self.check_order(&ids, false);
        for child in taken {
            let id = child.shared.id as usize;
            assert_eq!(self.children[id].drops.load(SeqCst), 0);
            drop(child);
            self.removed(id, true);
        }
        assert_eq!(iter.len(), self.live, "IntoIter::len after next");
        drop(iter);
        self.mark_all_removed();
    }

    /// Drops the set; a panicking parent waker woken by the drop (adopting
    /// pushes) must not keep it from dropping every child.
    fn drop_set(&mut self) {
        if S::ORDERED {
            self.queue.clear();
        }
        self.stash.clear();
        for id in 0..self.children.len() {
            if self.status[id] == Status::Live {
                self.children[id].removed.store(true, SeqCst);
            }
        }
        let set = self.set.take();
        if caught(move || drop(set)).is_none() {
            self.unwound_drop("the set's drop");
        }
        self.mark_all_removed();
        self.settle_injected(false, "the set's drop");
    }

    /// The set was dropped by an unwind: every child must be dropped too.
    fn unwound_drop(&mut self, what: &'static str) {
        stat(what);
        assert!(
            self.parents.may_panic(),
            "{what} unwound, but no parent waker the set may wake panics"
        );
        for (id, shared) in self.children.iter().enumerate() {
            if self.status[id] == Status::Live {
                assert_eq!(
                    shared.drops.load(SeqCst),
                    1,
                    "{what} unwound (a panicking parent waker) and leaked child {id}"
                );
            }
        }
        self.mark_all_removed();
    }

    fn mark_all_removed(&mut self) {
        for id in 0..self.children.len() {
            if self.status[id] == Status::Live {
                self.removed(id, true);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding

struct Decoder<'a> {
    data: &'a [u8],
}

impl Decoder<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

fn run<S: Set>(data: &mut Decoder<'_>) {
    let mut model = Model::<S>::new();
    let mut ending = 0;
    for _ in 0..MAX_OPS {
        if data.is_empty() {
            break;
        }
        let op = data.byte();
        let a = data.byte();
        ending = a;
        match op % OPS {
            0 | 1 => model.op_push(a),
            2 | 3 => model.op_insert(a),
            4 => model.op_push_many(a),
            5 => model.op_cancel(a),
            6 => model.op_remove(a),
            7 | 8 => {
                let b = data.byte();
                model.wake_local(a, b);
            }
            9 | 10 => {
                let b = data.byte();
                model.wake_remote(a, b);
            }
            11 => model.op_helpers(a),
            12 | 13 => {
                let _ = model.poll_once();
            }
            14 => model.quiesce(),
            15 => model.op_clear(),
            16 => model.concurrent_push(a, data),
            17 => match a % 3 {
                0 => model.check_contents(a & 4 != 0),
                1 => model.op_pin_mut(a >> 2),
                _ if S::KEYED => model.set().set_starvation_bound(u32::from(a >> 2) % 20),
                _ => {}
            },
            18 => model.op_other_waker(a),
            20 => model.op_set_limit(a),
            21 => model.op_try_push(a),
            22 => model.op_poll_ready(a),
            23 => model.op_make_room(),
            24 => model.op_handle(a),
            25 => model.op_drop_handle(a),
            26 => {
                let b = data.byte();
                model.op_handle_push(a, b);
            }
            27 => {
                let b = data.byte();
                model.op_remote_push(a, b);
            }
            28 => model.op_append(a, data),
            29 => {
                let b = data.byte();
                model.op_progress(a, b);
            }
            _ => break,
        }
        model.check();
    }
    model.finish(ending);
}

fuzz_target!(|data: &[u8]| {
    quiet_parent_panics();
    let mut data = Decoder { data };
    match data.byte() % 5 {
        0 => run::<FuturesUnordered<Child>>(&mut data),
        1 => run::<StreamsUnordered<Child>>(&mut data),
        2 => run::<IndexedStreamsUnordered<Child>>(&mut data),
        3 => run::<SelectAll<Child>>(&mut data),
        _ => run::<FuturesOrdered<Child>>(&mut data),
    }
    print_stats();
    assert_eq!(
        LIVE_SHARED.load(SeqCst),
        0,
        "children's shared records leaked"
    );
});
