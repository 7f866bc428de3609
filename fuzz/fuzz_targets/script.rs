//! Fuzzes a set with a script of operations decoded from the input, checked
//! against a plain model.
//!
//! Run: `cargo +nightly fuzz run script` (from the repository root).
//!
//! # Input format
//!
//! Byte 0 picks the set: `FuturesUnordered`, `StreamsUnordered` or
//! `IndexedStreamsUnordered` (`% 3`). Then each operation is an opcode byte
//! (`% 20`) and an argument byte `a` (missing bytes read as 0); a few take
//! more bytes. A child's spec byte gives its lane (`% 3`), its `Pending`
//! polls before each output (`>> 2 & 3`), whether it wakes itself while
//! pending (bit 4) and, for streams, its item count (`>> 5 & 3`).
//!
//! | op | action |
//! |---|---|
//! | 0, 1 | `push_with_priority` a child of spec `a` |
//! | 2, 3 | `insert_with_priority`, keeping the key |
//! | 4 | push `a + 1` children at once (crosses pages) |
//! | 5, 6 | `cancel` / `remove` a known key (live or stale) |
//! | 7, 8 | wake a child here (`wake`, `wake_by_ref`, clones), mode byte |
//! | 9, 10 | send a child's waker to a helper: wake, wake by ref, or stash |
//! | 11 | helpers: wake their stash, drop it, or flush |
//! | 12, 13 | one `poll_next` |
//! | 14 | flush helpers, then poll until idle (checks R1) |
//! | 15 | `clear` |
//! | 16 | two threads push/insert `a % 8 + 1` children each (spec bytes) |
//! | 17 | check `iter`/`iter_mut`/`contains`; `get_pin_mut`; starvation bound |
//! | 18 | one `poll_next` with a waker the set has not seen |
//! | 19 | stop |
//!
//! The last argument byte read picks the ending: drain every child to
//! completion, drop the set while helpers wake stashed wakers, take some
//! children through `into_iter`, or just drop it. Then every waker left
//! anywhere is woken and dropped, with the set gone.
//!
//! Two engine bugs were found this way and are fixed (feb2038): a wake
//! lost after `cancel`/`iter_mut`/... adopted pushes, and a `Pending` from
//! a set emptied by cancelling the rest of a cycle. Their inputs are in the
//! corpus (`*_is_lost`, `*_pending_when_empty`).
//!
//! # What is checked
//!
//! - Every `poll_next` agrees with what the children did during the call
//!   (recorded by the children themselves): a `Ready(Some)` is exactly the
//!   one child that finished or yielded, with the child's key; `Pending`
//!   and `Ready(None)` mean no child finished.
//! - Outputs as a multiset equal the model's: every child's output (or
//!   every stream's items, in order) comes out exactly once, unless the
//!   child was cancelled, removed or cleared first.
//! - `len`, `contains`, `cancel`, `remove`, `get_pin_mut` and the iterators
//!   agree with the model after every operation, for live and stale keys.
//! - No child is polled after it completed, ended, or was removed (the
//!   children assert it themselves).
//! - No lost wake-up (rule R1), from both sides, once the helper threads
//!   are flushed: a `Pending` that did not wake the parent leaves no live
//!   child that was woken since its last poll; and after such a `Pending`,
//!   a wake of any live child wakes the parent before the next poll.
//! - Every child is dropped exactly once: when it completes, is removed,
//!   cleared, or when the set drops, and never again however many of its
//!   wakers (held here, by helper threads, or by the child itself) outlive
//!   it or the set.
//!
//! Wakers travel to two helper threads over channels; they wake them now,
//! or stash them and wake them later, racing with the main thread's polls,
//! cancels, clears and the set's drop. libFuzzer's leak check catches a
//! header that the last waker failed to free.

#![no_main]

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use futures_core::Stream;
use libfuzzer_sys::fuzz_target;
use velodrome::{FuturesUnordered, IndexedStreamsUnordered, Key, Priority, StreamsUnordered};

/// Children created per input at most (enough to fill pages 0..=3).
const MAX_CHILDREN: usize = 1_000;
/// Operations per input at most.
const MAX_OPS: usize = 2_000;
/// Polls one `quiesce` may take before it is deemed a livelock.
const MAX_QUIESCE_POLLS: usize = 20_000;

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

/// The part of a child the harness keeps, outliving the child.
#[derive(Debug)]
struct Shared {
    id: u32,
    /// Set before every wake of one of its wakers, cleared when polled.
    woken: AtomicBool,
    /// Returned `Ready` (future) or `Ready(None)` (stream).
    finished: AtomicBool,
    /// Cancelled, removed, cleared, or in a dropped set.
    removed: AtomicBool,
    drops: AtomicU32,
    /// The waker of its latest `Pending` poll.
    waker: Mutex<Option<Waker>>,
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
            s.woken.store(true, SeqCst);
            cx.waker().wake_by_ref();
        }
        false
    }
}

impl std::future::Future for Child {
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
// The parent task's waker

#[derive(Default)]
struct Parent {
    notified: AtomicBool,
}

impl Wake for Parent {
    fn wake(self: Arc<Self>) {
        self.notified.store(true, SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notified.store(true, SeqCst);
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
}

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

fn helper(rx: mpsc::Receiver<Msg>) {
    let mut stash: Vec<(Arc<Shared>, Waker)> = Vec::new();
    for msg in rx {
        match msg {
            Msg::Wake(shared, waker) => {
                shared.woken.store(true, SeqCst);
                waker.wake();
            }
            Msg::WakeByRef(shared, waker) => {
                shared.woken.store(true, SeqCst);
                waker.wake_by_ref();
            }
            Msg::Stash(shared, waker) => stash.push((shared, waker)),
            Msg::WakeStash => {
                for (shared, waker) in &stash {
                    shared.woken.store(true, SeqCst);
                    waker.wake_by_ref();
                }
            }
            Msg::DropStash => stash.clear(),
            Msg::Flush(ack) => ack.send(()).unwrap(),
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
// The three set types behind one interface

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// A future's output: its id.
    Done(u32),
    /// A stream's item.
    Item(u32, u32),
    /// `IndexedStreamsUnordered`'s end-of-stream marker.
    End,
}

trait Set: Sync + Sized {
    const STREAMS: bool;
    /// Whether a stream's end is an output `(key, None)`.
    const REPORTS_END: bool;
    fn new() -> Self;
    fn push(&self, child: Child, priority: Priority);
    fn insert(&self, child: Child, priority: Priority) -> Key;
    fn cancel(&mut self, key: Key) -> bool;
    fn remove(&mut self, key: Key) -> Option<Child>;
    fn contains(&self, key: Key) -> bool;
    fn has_pin_mut(&mut self, key: Key) -> bool;
    fn len(&self) -> usize;
    fn clear(&mut self);
    fn set_starvation_bound(&mut self, n: u32);
    fn ids(&self) -> Vec<u32>;
    fn ids_mut(&mut self) -> Vec<u32>;
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Key, Out)>>;
    fn into_iter(self) -> velodrome::IntoIter<Child>;
}

macro_rules! common {
    () => {
        fn new() -> Self {
            Self::new()
        }
        fn push(&self, child: Child, priority: Priority) {
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
        fn clear(&mut self) {
            self.clear()
        }
        fn set_starvation_bound(&mut self, n: u32) {
            self.set_starvation_bound(n)
        }
        fn ids(&self) -> Vec<u32> {
            let iter = self.iter();
            let len = iter.len();
            let ids: Vec<u32> = iter.map(|c| c.shared.id).collect();
            assert_eq!(ids.len(), len, "iter's ExactSizeIterator len");
            ids
        }
        fn ids_mut(&mut self) -> Vec<u32> {
            let iter = self.iter_mut();
            let len = iter.len();
            let ids: Vec<u32> = iter.map(|c| c.shared.id).collect();
            assert_eq!(ids.len(), len, "iter_mut's ExactSizeIterator len");
            ids
        }
        fn into_iter(self) -> velodrome::IntoIter<Child> {
            IntoIterator::into_iter(self)
        }
    };
}

impl Set for FuturesUnordered<Child> {
    const STREAMS: bool = false;
    const REPORTS_END: bool = false;
    common!();
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Key, Out)>> {
        self.poll_next_with_key(cx)
            .map(|o| o.map(|(k, id)| (k, Out::Done(id))))
    }
}

impl Set for StreamsUnordered<Child> {
    const STREAMS: bool = true;
    const REPORTS_END: bool = false;
    common!();
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Key, Out)>> {
        self.poll_next_with_key(cx)
            .map(|o| o.map(|(k, (id, seq))| (k, Out::Item(id, seq))))
    }
}

impl Set for IndexedStreamsUnordered<Child> {
    const STREAMS: bool = true;
    const REPORTS_END: bool = true;
    common!();
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Key, Out)>> {
        Pin::new(self).poll_next(cx).map(|o| {
            o.map(|(k, item)| match item {
                Some((id, seq)) => (k, Out::Item(id, seq)),
                None => (k, Out::End),
            })
        })
    }
}

// ---------------------------------------------------------------------------
// The model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Live,
    Finished,
    Removed,
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
    live: usize,
    /// The last poll returned `Pending` without waking the parent (the
    /// set is idle): from then until the next poll, any wake of a live
    /// child must wake the parent (rule R1).
    idle: bool,
    parent: Arc<Parent>,
    parent_waker: Waker,
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
        let parent = Arc::new(Parent::default());
        Model {
            set: Some(S::new()),
            children: Vec::new(),
            status: Vec::new(),
            keys: Vec::new(),
            items_left: Vec::new(),
            next_seq: Vec::new(),
            live: 0,
            idle: false,
            parent_waker: Waker::from(parent.clone()),
            parent,
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

    fn check_len(&self) {
        if let Some(set) = &self.set {
            assert_eq!(set.len(), self.live, "len");
        }
    }

    /// The child was taken out of the set by the harness (cancel, remove,
    /// clear, drop): it must be dropped exactly once by now.
    fn removed(&mut self, id: usize, dropped_now: bool) {
        assert_eq!(self.status[id], Status::Live);
        self.status[id] = Status::Removed;
        self.children[id].removed.store(true, SeqCst);
        self.live -= 1;
        if dropped_now {
            assert_eq!(self.children[id].drops.load(SeqCst), 1, "child {id} drops");
        }
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

    /// One `poll_next` with the parent's waker, checked.
    fn poll_once(&mut self) -> Poll<Option<(Key, Out)>> {
        let waker = self.parent_waker.clone();
        self.poll_with(&waker)
    }

    /// One `poll_next`, checked against the children's own record of it.
    fn poll_with(&mut self, waker: &Waker) -> Poll<Option<(Key, Out)>> {
        take_events();
        self.idle = false;
        let mut cx = Context::from_waker(waker);
        let result = self.set().poll(&mut cx);
        let events = take_events();
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
                self.learn_key(id, key);
            }
            Poll::Ready(None) => {
                assert_eq!(outputs, 0);
                assert_eq!(self.live, 0, "Ready(None) with live children");
            }
            Poll::Pending => {
                assert_eq!(outputs, 0, "Pending after a child produced: {events:?}");
                assert!(
                    self.live > 0,
                    "Pending from an empty set (futures-util returns Ready(None))"
                );
            }
        }
        self.check_len();
        result
    }

    /// Flushes the helpers, then polls until the set is idle: `Pending`
    /// without a wake-up of the parent. Checks rule R1 there.
    fn quiesce(&mut self) {
        flush_helpers();
        self.check_parent_woken();
        for _ in 0..MAX_QUIESCE_POLLS {
            self.parent.notified.store(false, SeqCst);
            match self.poll_once() {
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => return,
                Poll::Pending => {
                    if self.parent.notified.load(SeqCst) {
                        continue;
                    }
                    assert!(
                        self.live > 0,
                        "an empty set is Pending and will never be woken"
                    );
                    for (id, shared) in self.children.iter().enumerate() {
                        if self.status[id] == Status::Live {
                            assert!(
                                !shared.woken.load(SeqCst),
                                "lost wake-up: child {id} was woken, the set is Pending \
                                 and did not wake its parent"
                            );
                        }
                    }
                    self.idle = true;
                    return;
                }
            }
        }
        panic!("the set kept producing or waking itself for {MAX_QUIESCE_POLLS} polls");
    }

    /// Rule R1 from the parent's side: the set went idle, and a live child
    /// has been woken since (every wake sent so far has completed), so the
    /// parent must have been woken.
    fn check_parent_woken(&self) {
        if !self.idle || self.parent.notified.load(SeqCst) {
            return;
        }
        for (id, shared) in self.children.iter().enumerate() {
            if self.status[id] == Status::Live {
                assert!(
                    !shared.woken.load(SeqCst),
                    "lost wake-up: child {id} was woken while the set was idle, \
                     and the parent was not woken"
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
                        waker.wake();
                    }
                }
            }
        }
        assert_eq!(self.live, 0, "children left after draining");
        self.parent.notified.store(false, SeqCst);
        assert!(matches!(self.poll_once(), Poll::Ready(None)));
        if S::STREAMS {
            for id in 0..self.children.len() {
                if self.status[id] == Status::Finished {
                    assert_eq!(self.items_left[id], 0, "stream {id} owes items");
                }
            }
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
        match b % 4 {
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
            0 => send(h, Msg::Wake(shared, waker)),
            1 => send(h, Msg::WakeByRef(shared, waker)),
            _ => send(h, Msg::Stash(shared, waker)),
        }
    }

    fn concurrent_push(&mut self, a: u8, data: &mut Decoder<'_>) {
        let per_thread = usize::from(a % 8) + 1;
        if !self.can_create(2 * per_thread) {
            return;
        }
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
        let keys: Vec<(u32, Key)> = std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .into_iter()
                .map(|batch| {
                    scope.spawn(move || {
                        let mut keys = Vec::new();
                        for (child, spec, insert) in batch {
                            let id = child.shared.id;
                            if insert {
                                keys.push((id, set.insert(child, spec.priority)));
                            } else {
                                set.push(child, spec.priority);
                            }
                        }
                        keys
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for (id, key) in keys {
            self.learn_key(id, key);
        }
    }

    fn check_contents(&mut self) {
        let mut expected: Vec<u32> = (0..self.children.len() as u32)
            .filter(|&id| self.status[id as usize] == Status::Live)
            .collect();
        expected.sort_unstable();
        let mut ids = self.set.as_ref().unwrap().ids();
        ids.sort_unstable();
        assert_eq!(ids, expected, "iter");
        let mut ids = self.set().ids_mut();
        ids.sort_unstable();
        assert_eq!(ids, expected, "iter_mut");
        for (id, key) in self.keys.clone().into_iter().enumerate() {
            if let Some(key) = key {
                let live = self.status[id] == Status::Live;
                assert_eq!(self.set.as_ref().unwrap().contains(key), live, "contains");
            }
        }
    }

    fn op_cancel(&mut self, a: u8) {
        let Some((id, key)) = self.pick_key(a) else {
            return;
        };
        let live = self.status[id] == Status::Live;
        assert_eq!(self.set().cancel(key), live, "cancel({id})");
        if live {
            self.removed(id, true);
        }
    }

    fn op_remove(&mut self, a: u8) {
        let Some((id, key)) = self.pick_key(a) else {
            return;
        };
        let live = self.status[id] == Status::Live;
        let child = self.set().remove(key);
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
        let Some((id, key)) = self.pick_key(a) else {
            return;
        };
        let live = self.status[id] == Status::Live;
        assert_eq!(self.set().has_pin_mut(key), live, "get_pin_mut({id})");
    }

    fn op_clear(&mut self) {
        self.set().clear();
        for id in 0..self.children.len() {
            if self.status[id] == Status::Live {
                self.removed(id, true);
            }
        }
        assert_eq!(self.set().len(), 0);
    }

    /// How the script ends, chosen by `a`. Then every waker left anywhere
    /// is woken (the set is gone) and dropped, and drop counts checked.
    fn finish(mut self, a: u8) {
        match a % 4 {
            0 => {
                self.drain();
                self.set = None;
            }
            1 => {
                // Drop while helpers may be waking stashed wakers.
                for h in 0..HELPERS {
                    send(h, Msg::WakeStash);
                }
                self.drop_set();
            }
            2 => {
                let set = self.set.take().unwrap();
                let mut iter = set.into_iter();
                let take = usize::from(a >> 2);
                for _ in 0..take {
                    let Some(child) = iter.next() else { break };
                    let id = child.shared.id as usize;
                    drop(child);
                    self.removed(id, true);
                }
                for id in 0..self.children.len() {
                    if self.status[id] == Status::Live {
                        self.children[id].removed.store(true, SeqCst);
                    }
                }
                drop(iter);
                self.mark_all_removed();
            }
            _ => self.drop_set(),
        }
        // Stale wakes after the set is gone, from here and the helpers.
        for (i, shared) in self.children.iter().enumerate() {
            if let Some(waker) = shared.waker() {
                if i % 2 == 0 {
                    waker.wake_by_ref();
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
        for (id, shared) in self.children.iter().enumerate() {
            shared.waker.lock().unwrap().take();
            assert_eq!(shared.drops.load(SeqCst), 1, "child {id} dropped once");
        }
    }

    fn drop_set(&mut self) {
        for id in 0..self.children.len() {
            if self.status[id] == Status::Live {
                self.children[id].removed.store(true, SeqCst);
            }
        }
        self.set = None;
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
        match op % 20 {
            0 | 1 => {
                if model.can_create(1) {
                    let spec = Spec::decode(a);
                    let child = model.create(spec);
                    model.set().push(child, spec.priority);
                }
            }
            2 | 3 => {
                if model.can_create(1) {
                    let spec = Spec::decode(a);
                    let child = model.create(spec);
                    let id = child.shared.id;
                    let key = model.set().insert(child, spec.priority);
                    model.learn_key(id, key);
                }
            }
            4 => {
                // Many at once, to cross page boundaries (64, 192, 448).
                let n = usize::from(a) + 1;
                if model.can_create(n) {
                    for i in 0..n {
                        let spec = Spec::decode((i as u8).wrapping_mul(37) ^ a);
                        let child = model.create(spec);
                        model.set().push(child, spec.priority);
                    }
                }
            }
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
            11 => match a % 3 {
                0 => send(usize::from(a >> 2), Msg::WakeStash),
                1 => send(usize::from(a >> 2), Msg::DropStash),
                _ => {
                    flush_helpers();
                    model.check_parent_woken();
                }
            },
            12 | 13 => {
                model.parent.notified.store(false, SeqCst);
                let _ = model.poll_once();
            }
            14 => model.quiesce(),
            15 => model.op_clear(),
            16 => model.concurrent_push(a, data),
            17 => match a % 3 {
                0 => model.check_contents(),
                1 => model.op_pin_mut(a >> 2),
                _ => model.set().set_starvation_bound(u32::from(a >> 2) % 20),
            },
            18 => {
                // A poll with a waker the set has never seen, then back:
                // the registration must follow the latest waker (R1).
                // (`quiesce` polls with the real waker again before it
                // judges R1.)
                let other = Waker::from(Arc::new(Parent::default()));
                let _ = model.poll_with(&other);
            }
            _ => break,
        }
        model.check_len();
    }
    model.finish(ending);
}

fuzz_target!(|data: &[u8]| {
    let mut data = Decoder { data };
    match data.byte() % 3 {
        0 => run::<FuturesUnordered<Child>>(&mut data),
        1 => run::<StreamsUnordered<Child>>(&mut data),
        _ => run::<IndexedStreamsUnordered<Child>>(&mut data),
    }
});
