//! The fault battery of `tests/faults.rs`, for the stream sets
//! `StreamsUnordered` and `IndexedStreamsUnordered`: a stream panicking in
//! `poll_next`, panicking `Drop`s during `clear` and the set's drop, wakers
//! that outlive their stream or the set, wakes from 8 threads while the set
//! polls, a stream that wakes itself, wake storms, forgotten iterators, a
//! million streams, zero streams, polling after `Ready(None)`, new streams
//! made inside `poll_next`, and a HIGH stream that never stops waking
//! itself.
//!
//! Each case is written once, generic over [`Kind`], and run for both types
//! by `for_each_kind!` (one module per type). Each function's doc comment
//! states the documented outcome it checks.
//!
//! Covered in `tests/keys.rs` for both stream types and not repeated here:
//! a stream whose `Drop` panics during `cancel`, and one whose `Drop`
//! panics when it ends.

use std::cell::RefCell;
use std::mem;
#[cfg(panic = "unwind")]
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use futures::stream::FusedStream;
use futures::task::{noop_waker, waker, ArcWake};
use futures::Stream;
use velodrome::{
    IndexedStreamsUnordered, IntoIter, Iter, IterMut, IterPinMut, IterPinRef, Key, Priority,
    StreamsUnordered,
};

/// One output of a set, whatever its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event<I> {
    /// An item, with the key of its stream.
    Item(Key, I),
    /// `IndexedStreamsUnordered`'s end marker `(key, None)`.
    End(Key),
}

/// The API of the two stream sets that these tests use.
trait StreamSet<S: Stream>: Default + Unpin {
    fn push(&self, stream: S);
    fn insert(&self, stream: S) -> Key;
    fn insert_with_priority(&self, stream: S, priority: Priority) -> Key;
    fn len(&self) -> usize;
    fn clear(&mut self);
    fn set_starvation_bound(&mut self, bound: u32);
    fn terminated(&self) -> bool;
    /// The set's next output, with the key of its stream.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event<S::Item>>>;
    /// `Stream::poll_next` itself, the item thrown away.
    fn poll_stream(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>>;
    fn iter(&self) -> Iter<'_, S>
    where
        S: Unpin;
    fn iter_pin_ref(self: Pin<&Self>) -> IterPinRef<'_, S>;
    fn iter_mut(&mut self) -> IterMut<'_, S>
    where
        S: Unpin;
    fn iter_pin_mut(self: Pin<&mut Self>) -> IterPinMut<'_, S>;
    fn into_iter(self) -> IntoIter<S>
    where
        S: Unpin;
}

macro_rules! impl_stream_set {
    ($Set:ident, |$set:ident, $cx:ident| $poll:expr) => {
        impl<S: Stream> StreamSet<S> for $Set<S> {
            fn push(&self, stream: S) {
                $Set::push(self, stream);
            }
            fn insert(&self, stream: S) -> Key {
                $Set::insert(self, stream)
            }
            fn insert_with_priority(&self, stream: S, priority: Priority) -> Key {
                $Set::insert_with_priority(self, stream, priority)
            }
            fn len(&self) -> usize {
                $Set::len(self)
            }
            fn clear(&mut self) {
                $Set::clear(self);
            }
            fn set_starvation_bound(&mut self, bound: u32) {
                $Set::set_starvation_bound(self, bound);
            }
            fn terminated(&self) -> bool {
                FusedStream::is_terminated(self)
            }
            fn poll_event(&mut self, $cx: &mut Context<'_>) -> Poll<Option<Event<S::Item>>> {
                let $set = self;
                $poll
            }
            fn poll_stream(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
                Stream::poll_next(Pin::new(self), cx).map(|next| next.map(|_| ()))
            }
            fn iter(&self) -> Iter<'_, S>
            where
                S: Unpin,
            {
                $Set::iter(self)
            }
            fn iter_pin_ref(self: Pin<&Self>) -> IterPinRef<'_, S> {
                $Set::iter_pin_ref(self)
            }
            fn iter_mut(&mut self) -> IterMut<'_, S>
            where
                S: Unpin,
            {
                $Set::iter_mut(self)
            }
            fn iter_pin_mut(self: Pin<&mut Self>) -> IterPinMut<'_, S> {
                $Set::iter_pin_mut(self)
            }
            fn into_iter(self) -> IntoIter<S>
            where
                S: Unpin,
            {
                IntoIterator::into_iter(self)
            }
        }
    };
}

impl_stream_set!(StreamsUnordered, |set, cx| set
    .poll_next_with_key(cx)
    .map(|next| next.map(|(key, item)| Event::Item(key, item))));

impl_stream_set!(IndexedStreamsUnordered, |set, cx| {
    Stream::poll_next(Pin::new(set), cx).map(|next| {
        next.map(|(key, item)| match item {
            Some(item) => Event::Item(key, item),
            None => Event::End(key),
        })
    })
});

/// A set type, as a type constructor over the stream type.
trait Kind {
    /// Whether the set yields an end marker per stream.
    const REPORTS_END: bool;
    type Set<S: Stream>: StreamSet<S>;
}

/// `StreamsUnordered`.
struct Plain;
/// `IndexedStreamsUnordered`.
struct Indexed;

impl Kind for Plain {
    const REPORTS_END: bool = false;
    type Set<S: Stream> = StreamsUnordered<S>;
}

impl Kind for Indexed {
    const REPORTS_END: bool = true;
    type Set<S: Stream> = IndexedStreamsUnordered<S>;
}

/// Items are `(stream id, position in that stream)`.
type Item = (usize, u32);

/// What a [`Probe`] does once its ready items are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Return `Ready(None)`.
    End,
    /// Return `Pending` forever.
    Pend,
    /// Panic in `poll_next`.
    #[cfg(panic = "unwind")]
    Panic,
}

/// What happened to one [`Probe`], shared with the test.
#[derive(Debug, Default)]
struct Tracker {
    polls: AtomicUsize,
    drops: AtomicUsize,
    panic_on_drop: AtomicBool,
    /// The waker of its latest poll.
    waker: Mutex<Option<Waker>>,
}

impl Tracker {
    fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }

    fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }

    fn stored_waker(&self) -> Waker {
        self.waker
            .lock()
            .unwrap()
            .clone()
            .expect("the probe was polled and stored a waker")
    }
}

/// An `Unpin` stream that yields `(id, 0..len)`, each at once, then does
/// what `then` says. It stores its waker on every poll, counts polls and
/// drops, and panics if it is polled after it returned `Ready(None)`.
#[derive(Debug)]
struct Probe {
    id: usize,
    next: u32,
    len: u32,
    then: Then,
    ended: bool,
    tracker: Arc<Tracker>,
}

fn probe(id: usize, len: u32, then: Then) -> (Probe, Arc<Tracker>) {
    let tracker = Arc::new(Tracker::default());
    let probe = Probe {
        id,
        next: 0,
        len,
        then,
        ended: false,
        tracker: tracker.clone(),
    };
    (probe, tracker)
}

impl Stream for Probe {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut *self;
        assert!(
            !this.ended,
            "stream {} polled after it returned Ready(None)",
            this.id
        );
        this.tracker.polls.fetch_add(1, Ordering::SeqCst);
        *this.tracker.waker.lock().unwrap() = Some(cx.waker().clone());
        if this.next < this.len {
            this.next += 1;
            return Poll::Ready(Some((this.id, this.next - 1)));
        }
        match this.then {
            Then::End => {
                this.ended = true;
                Poll::Ready(None)
            }
            Then::Pend => Poll::Pending,
            #[cfg(panic = "unwind")]
            Then::Panic => panic!("stream {} panics in poll_next (on purpose)", this.id),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.tracker.drops.fetch_add(1, Ordering::SeqCst);
        if self.tracker.panic_on_drop.load(Ordering::SeqCst) {
            panic!("stream {} panics in Drop (on purpose)", self.id);
        }
    }
}

/// A parent waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl CountingWaker {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// One poll with a no-op parent waker.
fn poll_once<S: Stream, T: StreamSet<S>>(set: &mut T) -> Poll<Option<Event<S::Item>>> {
    let waker = noop_waker();
    set.poll_event(&mut Context::from_waker(&waker))
}

/// Polls until `Ready(None)` or a `Pending` without a wake of the parent
/// during the call; returns every output in order.
fn settle<S: Stream, T: StreamSet<S>>(set: &mut T) -> Vec<Event<S::Item>> {
    let parent = Arc::new(CountingWaker::default());
    let waker = waker(parent.clone());
    let mut cx = Context::from_waker(&waker);
    let mut events = Vec::new();
    for _ in 0..100_000 {
        let wakes_before = parent.wakes();
        match set.poll_event(&mut cx) {
            Poll::Ready(Some(event)) => events.push(event),
            Poll::Ready(None) => return events,
            Poll::Pending if parent.wakes() == wakes_before => return events,
            Poll::Pending => {}
        }
    }
    panic!("the set did not settle in 100,000 calls");
}

/// The positions of the items of stream `id` in `events`, in order, each
/// checked to carry `key`.
fn items_of(events: &[Event<Item>], id: usize, key: Key) -> Vec<u32> {
    events
        .iter()
        .filter_map(|event| match *event {
            Event::Item(item_key, (item_id, n)) if item_id == id => {
                assert_eq!(
                    item_key, key,
                    "an item of stream {id} came with another key"
                );
                Some(n)
            }
            _ => None,
        })
        .collect()
}

/// The keys of the end markers in `events`, sorted.
fn ends_of<I>(events: &[Event<I>]) -> Vec<Key> {
    let mut ends: Vec<Key> = events
        .iter()
        .filter_map(|event| match event {
            Event::End(key) => Some(*key),
            Event::Item(..) => None,
        })
        .collect();
    ends.sort_unstable();
    ends
}

/// The end markers a set of kind `K` yields for the streams `keys`, sorted.
fn expected_ends<K: Kind>(keys: impl IntoIterator<Item = Key>) -> Vec<Key> {
    let mut ends: Vec<Key> = if K::REPORTS_END {
        keys.into_iter().collect()
    } else {
        Vec::new()
    };
    ends.sort_unstable();
    ends
}

/// Silences the panics these tests cause on purpose (their messages say so);
/// every other panic is reported as usual.
#[cfg(panic = "unwind")]
fn quiet_intended_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !message.contains("(on purpose)") {
                previous(info);
            }
        }));
    });
}

/// Documented outcome: a stream that panics in `poll_next` (here after it
/// yielded some items) is dropped and its slot freed before the panic
/// reaches the caller of `poll_next`; `len` counts it out; the set keeps
/// working: every item of the other streams arrives, in order, the indexed
/// set ends each of them once (and yields no end marker for the panicked
/// stream), the set ends with `Ready(None)`, and a new stream can be pushed.
#[cfg(panic = "unwind")]
fn stream_panicking_in_poll_next_is_dropped_and_the_rest_finish<K: Kind>() {
    quiet_intended_panics();
    let mut set = K::Set::<Probe>::default();
    let mut trackers = Vec::new();
    let mut keys = Vec::new();
    for id in 0..5 {
        let (stream, tracker) = probe(id, 3, if id == 2 { Then::Panic } else { Then::End });
        keys.push(set.insert(stream));
        trackers.push(tracker);
    }

    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    let mut events = Vec::new();
    let mut panics = 0;
    for _ in 0..100 {
        match catch_unwind(AssertUnwindSafe(|| set.poll_event(&mut cx))) {
            Ok(Poll::Ready(Some(event))) => events.push(event),
            Ok(Poll::Ready(None)) => break,
            Ok(Poll::Pending) => {}
            Err(_) => {
                panics += 1;
                assert_eq!(
                    trackers[2].drops(),
                    1,
                    "the panicking stream is dropped before the panic propagates"
                );
                let live = trackers.iter().filter(|t| t.drops() == 0).count();
                assert_eq!(set.len(), live, "len counts exactly the live streams");
            }
        }
    }
    assert_eq!(
        panics, 1,
        "the stream panicked once and was never polled again"
    );
    assert_eq!(
        trackers[2].polls(),
        4,
        "three items, then the panicking poll"
    );
    for (id, key) in keys.iter().enumerate() {
        assert_eq!(
            items_of(&events, id, *key),
            [0, 1, 2],
            "items of stream {id}"
        );
    }
    let others = keys.iter().enumerate().filter(|(id, _)| *id != 2);
    assert_eq!(
        ends_of(&events),
        expected_ends::<K>(others.map(|(_, key)| *key))
    );
    assert!(set.terminated());
    assert_eq!(set.len(), 0);
    assert!(trackers.iter().all(|t| t.drops() == 1), "no double drop");

    let (stream, tracker) = probe(9, 2, Then::End);
    let key = set.insert(stream);
    let events = settle(&mut set);
    assert_eq!(items_of(&events, 9, key), [0, 1], "the set stays usable");
    assert_eq!(ends_of(&events), expected_ends::<K>([key]));
    assert_eq!(tracker.drops(), 1);
    assert_eq!(trackers[2].drops(), 1, "no double drop");
}

/// `n` streams that are pending forever, each polled once (so each holds a
/// waker registration), with their trackers.
fn pending_set<K: Kind>(n: usize) -> (K::Set<Probe>, Vec<Arc<Tracker>>) {
    let mut set = K::Set::<Probe>::default();
    let trackers = (0..n)
        .map(|id| {
            let (stream, tracker) = probe(id, 0, Then::Pend);
            set.push(stream);
            tracker
        })
        .collect::<Vec<_>>();
    assert!(settle(&mut set).is_empty());
    assert!(trackers.iter().all(|t| t.polls() == 1));
    (set, trackers)
}

fn drop_counts(trackers: &[Arc<Tracker>]) -> Vec<usize> {
    trackers.iter().map(|t| t.drops()).collect()
}

/// Documented outcome: if one stream panics in `Drop` during `clear`, every
/// stream is still dropped exactly once, the panic propagates out of
/// `clear`, and the set is left empty and usable: new streams pushed
/// afterwards deliver all their items.
#[cfg(panic = "unwind")]
fn panicking_drop_during_clear_drops_every_stream_once<K: Kind>() {
    quiet_intended_panics();
    const STREAMS: usize = 10;
    let (mut set, trackers) = pending_set::<K>(STREAMS);
    trackers[4].panic_on_drop.store(true, Ordering::SeqCst);

    let result = catch_unwind(AssertUnwindSafe(|| set.clear()));
    assert!(result.is_err(), "the Drop panic propagates out of clear");
    assert_eq!(
        drop_counts(&trackers),
        vec![1; STREAMS],
        "clear drops every stream once even when one Drop panics"
    );
    assert_eq!(set.len(), 0, "clear leaves the set empty");

    let mut keys = Vec::new();
    for id in 0..3 {
        let (stream, _) = probe(id, 2, Then::End);
        keys.push(set.insert(stream));
    }
    let events = settle(&mut set);
    for (id, key) in keys.iter().enumerate() {
        assert_eq!(items_of(&events, id, *key), [0, 1], "the set stays usable");
    }
    assert_eq!(ends_of(&events), expected_ends::<K>(keys.iter().copied()));
    assert!(set.terminated());
    drop(set);
    assert_eq!(drop_counts(&trackers), vec![1; STREAMS], "no double drop");
}

/// Documented outcome: if one stream panics in `Drop` while the set is
/// dropped, every other stream is still dropped exactly once and the panic
/// propagates out of the set's `drop`.
#[cfg(panic = "unwind")]
fn panicking_drop_during_set_drop_drops_every_stream_once<K: Kind>() {
    quiet_intended_panics();
    const STREAMS: usize = 10;
    let (set, trackers) = pending_set::<K>(STREAMS);
    trackers[7].panic_on_drop.store(true, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(move || drop(set)));
    assert!(
        result.is_err(),
        "the Drop panic propagates out of the set's drop"
    );
    assert_eq!(
        drop_counts(&trackers),
        vec![1; STREAMS],
        "every stream dropped exactly once"
    );
}

/// Documented outcome: a stream's waker that outlives the set (here moved to
/// another thread and woken there after the set is dropped) keeps no stream
/// alive, and waking, cloning or dropping it there is harmless.
fn waker_outliving_the_set_is_harmless_on_another_thread<K: Kind>() {
    let (set, trackers) = pending_set::<K>(3);
    let stream_waker = trackers[1].stored_waker();

    std::thread::scope(|scope| {
        let (go, wait) = mpsc::channel::<()>();
        let waker_thread = scope.spawn(move || {
            wait.recv().unwrap();
            stream_waker.wake_by_ref();
            let clone = stream_waker.clone();
            stream_waker.wake();
            clone.wake_by_ref();
            drop(clone);
        });
        drop(set);
        assert_eq!(
            drop_counts(&trackers),
            [1, 1, 1],
            "a live waker does not keep its stream alive"
        );
        go.send(()).unwrap();
        waker_thread
            .join()
            .expect("waking after the set died panicked");
    });
}

/// The control a [`Gated`] stream shares with the thread that releases it.
#[derive(Default)]
struct Gate {
    /// Releases so far; release number `items + 1` ends the stream.
    released: AtomicUsize,
    /// The waker of the stream's latest poll.
    waker: Mutex<Option<Waker>>,
}

/// A stream that yields one item per release of its gate and ends after
/// `items` items and one more release. It panics if polled after it ended.
struct Gated {
    id: usize,
    taken: usize,
    items: usize,
    ended: bool,
    gate: Arc<Gate>,
    drops: Arc<AtomicUsize>,
}

impl Stream for Gated {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut *self;
        assert!(
            !this.ended,
            "stream {} polled after it returned Ready(None)",
            this.id
        );
        // Register, then look (the usual order against lost wake-ups).
        *this.gate.waker.lock().unwrap() = Some(cx.waker().clone());
        let released = this.gate.released.load(Ordering::SeqCst);
        if this.taken < released.min(this.items) {
            this.taken += 1;
            Poll::Ready(Some((this.id, this.taken as u32 - 1)))
        } else if released > this.items {
            this.ended = true;
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Parent waker that unparks the polling thread.
struct Unparker {
    thread: Thread,
    notified: AtomicBool,
}

impl ArcWake for Unparker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.notified.store(true, Ordering::SeqCst);
        arc_self.thread.unpark();
    }
}

/// Documented outcome: wakes from 8 threads at once while the set polls
/// (100,000 of them, 1,600 under Miri) are never lost: every stream yields
/// every item, in order, and ends (the indexed set reports each end once);
/// no stream is polled after it returned `Ready(None)` (the stream would
/// panic); every stream is dropped; the set ends with `Ready(None)`. A lost
/// wake shows as the watchdog's failure instead of a hang.
fn wakes_from_eight_threads_while_polling_lose_no_stream<K: Kind>() {
    const THREADS: usize = 8;
    // Each stream gets `items + 1` releases and two wakes per release.
    let (streams, items) = if cfg!(miri) { (16, 49) } else { (80, 624) };
    let total_wakes = streams * (items + 1) * 2;
    assert!(total_wakes >= if cfg!(miri) { 1_600 } else { 100_000 });

    let drops = Arc::new(AtomicUsize::new(0));
    let gates: Vec<Arc<Gate>> = (0..streams).map(|_| Arc::default()).collect();
    let mut set = K::Set::<Gated>::default();
    let keys: Vec<Key> = gates
        .iter()
        .enumerate()
        .map(|(id, gate)| {
            set.insert(Gated {
                id,
                taken: 0,
                items,
                ended: false,
                gate: gate.clone(),
                drops: drops.clone(),
            })
        })
        .collect();

    let unparker = Arc::new(Unparker {
        thread: std::thread::current(),
        notified: AtomicBool::new(false),
    });
    let parent = waker(unparker.clone());
    let mut cx = Context::from_waker(&parent);
    // Every stream registers before the threads start.
    assert!(matches!(set.poll_event(&mut cx), Poll::Pending));
    assert!(gates
        .iter()
        .all(|gate| gate.waker.lock().unwrap().is_some()));

    let wakes_done = AtomicUsize::new(0);
    let start = Barrier::new(THREADS);
    let mut events = Vec::new();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (gates, start, wakes_done) = (&gates, &start, &wakes_done);
            scope.spawn(move || {
                let mine: Vec<&Arc<Gate>> = gates.iter().skip(thread).step_by(THREADS).collect();
                let wake = |gate: &Gate, consume: bool| {
                    let stored = gate.waker.lock().unwrap().clone();
                    let stored = stored.expect("registered before the threads started");
                    if consume {
                        stored.wake();
                    } else {
                        stored.wake_by_ref();
                    }
                    wakes_done.fetch_add(1, Ordering::Relaxed);
                };
                start.wait();
                for _ in 0..=items {
                    for gate in &mine {
                        wake(gate, false); // spurious: nothing released yet
                        gate.released.fetch_add(1, Ordering::SeqCst);
                        wake(gate, true);
                    }
                }
            });
        }

        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            unparker.notified.store(false, Ordering::SeqCst);
            match set.poll_event(&mut cx) {
                Poll::Ready(Some(event)) => events.push(event),
                Poll::Ready(None) => break,
                Poll::Pending => {
                    while !unparker.notified.swap(false, Ordering::SeqCst) {
                        let now = Instant::now();
                        assert!(
                            now < deadline,
                            "lost wake-up: {} streams left, {} of {total_wakes} wakes done",
                            set.len(),
                            wakes_done.load(Ordering::Relaxed)
                        );
                        std::thread::park_timeout(deadline - now);
                    }
                }
            }
        }
    });
    assert_eq!(wakes_done.load(Ordering::Relaxed), total_wakes);
    let want: Vec<u32> = (0..items as u32).collect();
    for (id, key) in keys.iter().enumerate() {
        assert_eq!(items_of(&events, id, *key), want, "items of stream {id}");
    }
    assert_eq!(ends_of(&events), expected_ends::<K>(keys.iter().copied()));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        streams,
        "every stream dropped"
    );
    assert!(set.terminated());
}

/// A stream that, for each of its `items` items, first wakes itself from
/// inside `poll_next` and returns `Pending` `spins` times; then it ends. It
/// panics if polled after it ended.
struct SelfWaking {
    spins: usize,
    spun: usize,
    next: u32,
    items: u32,
    ended: bool,
    polls: Arc<AtomicUsize>,
}

impl Stream for SelfWaking {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut *self;
        assert!(!this.ended, "self-waking stream polled after it ended");
        this.polls.fetch_add(1, Ordering::SeqCst);
        if this.next == this.items {
            this.ended = true;
            return Poll::Ready(None);
        }
        if this.spun < this.spins {
            this.spun += 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.spun = 0;
        this.next += 1;
        Poll::Ready(Some((0, this.next - 1)))
    }
}

/// Documented outcome: a stream that wakes itself from inside its own
/// `poll_next` is polled again in the next cycle, never twice in one
/// `poll_next` call; a call whose cycle produced no output wakes its own
/// task and returns `Pending` (so the executor comes back). The stream
/// delivers all its items and ends; a quiet sibling is not polled again.
fn stream_waking_itself_in_poll_next_is_polled_once_per_call<K: Kind>() {
    const SPINS: usize = 3;
    const ITEMS: u32 = 4;
    let polls = Arc::new(AtomicUsize::new(0));
    let mut set = K::Set::<futures::future::Either<SelfWaking, Probe>>::default();
    let key = set.insert(futures::future::Either::Left(SelfWaking {
        spins: SPINS,
        spun: 0,
        next: 0,
        items: ITEMS,
        ended: false,
        polls: polls.clone(),
    }));
    let (quiet, quiet_tracker) = probe(1, 0, Then::Pend);
    set.push(futures::future::Either::Right(quiet));

    let parent = Arc::new(CountingWaker::default());
    let parent_waker = waker(parent.clone());
    let mut cx = Context::from_waker(&parent_waker);
    let mut events = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 1_000, "the self-waking stream never finished");
        let (polls_before, wakes_before) = (polls.load(Ordering::SeqCst), parent.wakes());
        let result = set.poll_event(&mut cx);
        assert!(
            polls.load(Ordering::SeqCst) - polls_before <= 1,
            "call {calls} polled the self-waking stream twice"
        );
        match result {
            Poll::Ready(Some(event)) => events.push(event),
            Poll::Ready(None) => panic!("the quiet sibling is still in the set"),
            Poll::Pending if parent.wakes() == wakes_before => break,
            Poll::Pending => {}
        }
    }
    let total_polls = ITEMS as usize * (SPINS + 1) + 1;
    assert_eq!(polls.load(Ordering::SeqCst), total_polls);
    assert_eq!(items_of(&events, 0, key), (0..ITEMS).collect::<Vec<_>>());
    assert_eq!(ends_of(&events), expected_ends::<K>([key]));
    assert_eq!(
        quiet_tracker.polls(),
        1,
        "the quiet sibling was polled again"
    );
    assert_eq!(set.len(), 1);
}

/// Documented outcome: a stream already queued for the next cycle (by a
/// wake, or by the set itself after it yielded an item) is polled once in
/// that cycle, however many wakes arrive before it, and not again after.
fn wake_storm_on_a_queued_stream_polls_it_once<K: Kind>() {
    let wakes = if cfg!(miri) { 200 } else { 10_000 };
    let storm = |waker: &Waker| {
        for i in 0..wakes {
            if i % 2 == 0 {
                waker.wake_by_ref();
            } else {
                let owned = waker.clone();
                owned.wake(); // the consuming wake path
            }
        }
    };
    let mut set = K::Set::<Probe>::default();
    let (stream, tracker) = probe(0, 1, Then::Pend);
    let key = set.insert(stream);

    // Queued by the set: it yielded an item.
    assert_eq!(
        poll_once(&mut set),
        Poll::Ready(Some(Event::Item(key, (0, 0))))
    );
    assert_eq!(tracker.polls(), 1);
    storm(&tracker.stored_waker());
    assert_eq!(poll_once(&mut set), Poll::Pending);
    assert_eq!(tracker.polls(), 2, "queued stream polled once");
    for _ in 0..3 {
        assert_eq!(poll_once(&mut set), Poll::Pending);
    }
    assert_eq!(tracker.polls(), 2, "{wakes} wakes caused further polls");

    // Queued by its waker.
    storm(&tracker.stored_waker());
    assert_eq!(poll_once(&mut set), Poll::Pending);
    assert_eq!(tracker.polls(), 3, "woken stream polled once");
    for _ in 0..3 {
        assert_eq!(poll_once(&mut set), Poll::Pending);
    }
    assert_eq!(tracker.polls(), 3, "{wakes} wakes caused further polls");
}

/// Documented outcome: `clear` and the set's drop do not wait for, and are
/// not disturbed by, stream wakers alive on another thread (even while that
/// thread keeps waking them during the `clear`): every stream is dropped
/// once at once; the old wakers are stale and, woken after the slots are
/// reused, poll none of the new streams; woken after the set is dropped,
/// they do nothing.
fn clear_and_drop_while_wakers_are_alive_on_another_thread<K: Kind>() {
    const STREAMS: usize = 8;
    let rounds = if cfg!(miri) { 5 } else { 200 };
    let (mut set, trackers) = pending_set::<K>(STREAMS);
    let wakers: Vec<Waker> = trackers.iter().map(|t| t.stored_waker()).collect();
    let start = Barrier::new(2);

    std::thread::scope(|scope| {
        // Made in here, so a failing assertion drops them and the other
        // thread stops waiting instead of hanging the scope's join.
        let (to_thread, from_main) = mpsc::channel::<&str>();
        let (to_main, from_thread) = mpsc::channel::<&str>();
        let start = &start;
        let thread = scope.spawn(move || {
            let wake_all = || wakers.iter().for_each(Waker::wake_by_ref);
            start.wait();
            for _ in 0..rounds {
                wake_all(); // racing with `clear`
            }
            to_main.send("raced").unwrap();
            assert_eq!(from_main.recv().unwrap(), "slots reused");
            wake_all();
            to_main.send("woken after reuse").unwrap();
            assert_eq!(from_main.recv().unwrap(), "set dropped");
            wake_all();
            let clones = wakers.clone();
            clones.into_iter().for_each(Waker::wake);
            drop(wakers);
        });

        start.wait();
        set.clear();
        assert_eq!(
            drop_counts(&trackers),
            vec![1; STREAMS],
            "clear drops every stream although their wakers live on"
        );
        assert_eq!(set.len(), 0);
        assert_eq!(from_thread.recv().unwrap(), "raced");

        let mut new_trackers = Vec::new();
        for id in 0..STREAMS {
            let (stream, tracker) = probe(id, 0, Then::Pend);
            set.push(stream);
            new_trackers.push(tracker);
        }
        assert!(settle(&mut set).is_empty());
        assert!(
            new_trackers.iter().all(|t| t.polls() == 1),
            "each new stream is polled once by the first cycle"
        );
        to_thread.send("slots reused").unwrap();
        assert_eq!(from_thread.recv().unwrap(), "woken after reuse");
        for _ in 0..3 {
            assert_eq!(poll_once(&mut set), Poll::Pending);
        }
        assert!(
            new_trackers.iter().all(|t| t.polls() == 1),
            "a stale waker polled a new stream in its old slot"
        );

        drop(set);
        assert!(new_trackers.iter().all(|t| t.drops() == 1));
        to_thread.send("set dropped").unwrap();
        thread.join().expect("the waker thread panicked");
    });
    assert_eq!(drop_counts(&trackers), vec![1; STREAMS], "no double drop");
}

/// Documented outcome: forgetting a borrowing iterator (`iter`,
/// `iter_pin_ref`, `iter_mut`, `iter_pin_mut`) part way changes nothing but
/// what was done through it: every stream stays in the set and `len` is
/// right, changes made through the iterator show, streams pushed before
/// the forgotten `iter_mut` (which adopts them) are polled, every item
/// arrives, and every stream is dropped once.
// The borrowing iterators have no `Drop` today, so forgetting one equals
// dropping it; the test keeps forgetting harmless should one get a `Drop`.
#[allow(clippy::forget_non_drop)]
fn forgotten_borrowing_iterators_leave_the_set_intact<K: Kind>() {
    let mut set = K::Set::<Probe>::default();
    let mut trackers = Vec::new();
    let mut keys = Vec::new();
    for id in 0..4 {
        let (stream, tracker) = probe(id, 2, Then::End);
        keys.push(set.insert(stream));
        trackers.push(tracker);
    }
    let mut events = match poll_once(&mut set) {
        Poll::Ready(Some(event)) => vec![event],
        other => panic!("ready streams gave {other:?}"),
    };

    let mut iter = set.iter();
    assert!(iter.next().is_some());
    forget_shared_iterator(iter);
    let mut iter = Pin::new(&set).iter_pin_ref();
    assert!(iter.next().is_some());
    forget_shared_iterator(iter);
    assert_eq!(set.len(), 4);

    // Pushed through `&self`, adopted by `iter_mut`.
    for id in 4..6 {
        let (stream, tracker) = probe(id, 2, Then::End);
        keys.push(set.insert(stream));
        trackers.push(tracker);
    }
    let mut iter = set.iter_mut();
    let longer = iter.next().expect("six streams");
    longer.len += 1;
    let longer = longer.id;
    mem::forget(iter);
    let mut iter = Pin::new(&mut set).iter_pin_mut();
    let _ = iter.next();
    let shorter = iter.next().expect("six streams").get_mut();
    shorter.len -= 1;
    let shorter = shorter.id;
    mem::forget(iter);
    assert_ne!(longer, shorter);
    assert_eq!(set.len(), 6);

    events.extend(settle(&mut set));
    for (id, key) in keys.iter().enumerate() {
        let len = if id == longer {
            3
        } else if id == shorter {
            1
        } else {
            2
        };
        let want: Vec<u32> = (0..len).collect();
        assert_eq!(items_of(&events, id, *key), want, "items of stream {id}");
    }
    assert_eq!(ends_of(&events), expected_ends::<K>(keys.iter().copied()));
    assert!(set.terminated());
    assert!(trackers.iter().all(|t| t.drops() == 1));
}

/// Documented outcome: forgetting a partly consumed `IntoIter` leaks the
/// streams it still holds (safe: they are neither polled nor dropped); the
/// streams already taken out are the caller's and unaffected.
fn forgotten_into_iter_leaks_its_streams_without_dropping_them<K: Kind>() {
    let set = K::Set::<Probe>::default();
    let trackers: Vec<Arc<Tracker>> = (0..6)
        .map(|id| {
            let (stream, tracker) = probe(id, 1, Then::End);
            set.push(stream);
            tracker
        })
        .collect();
    let mut iter = set.into_iter();
    let taken: Vec<Probe> = iter.by_ref().take(2).collect();
    assert_eq!(iter.len(), 4);
    mem::forget(iter);
    assert_eq!(drop_counts(&trackers), vec![0; 6], "forget drops nothing");
    assert!(trackers.iter().all(|t| t.polls() == 0));
    let taken_ids: Vec<usize> = taken.iter().map(|stream| stream.id).collect();
    drop(taken);
    for (id, tracker) in trackers.iter().enumerate() {
        let want = usize::from(taken_ids.contains(&id));
        assert_eq!(tracker.drops(), want, "stream {id}");
    }
}

/// An endless stream that yields `()` and counts its drop.
struct Endless(Arc<AtomicUsize>);

impl Stream for Endless {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<()>> {
        Poll::Ready(Some(()))
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Documented outcome: a million streams (300 under Miri) are pushed,
/// polled and dropped cleanly: every item comes out exactly once, the
/// indexed set ends every stream once, and the set ends; a large set
/// dropped with every stream still live drops each once.
fn million_streams_are_pushed_polled_and_dropped<K: Kind>() {
    let count: u64 = if cfg!(miri) { 300 } else { 1_000_000 };
    let mut set = K::Set::<futures::stream::Once<futures::future::Ready<u64>>>::default();
    for i in 0..count {
        set.push(futures::stream::once(futures::future::ready(i)));
    }
    assert_eq!(set.len(), count as usize);
    let (mut sum, mut items, mut ends, mut pendings) = (0, 0, 0, 0);
    loop {
        match poll_once(&mut set) {
            Poll::Ready(Some(Event::Item(_, n))) => {
                sum += n;
                items += 1;
            }
            Poll::Ready(Some(Event::End(_))) => ends += 1,
            Poll::Ready(None) => break,
            Poll::Pending => {
                pendings += 1;
                assert!(pendings < 10, "ready streams keep the set pending");
            }
        }
    }
    assert_eq!(items, count);
    assert_eq!(sum, count * (count - 1) / 2);
    assert_eq!(ends, if K::REPORTS_END { count } else { 0 });
    assert!(set.terminated());
    drop(set);

    let drops = Arc::new(AtomicUsize::new(0));
    let count = (count / 10) as usize;
    let mut set = K::Set::<Endless>::default();
    for _ in 0..count {
        set.push(Endless(drops.clone()));
    }
    for _ in 0..count / 2 {
        assert!(matches!(
            poll_once(&mut set),
            Poll::Ready(Some(Event::Item(..)))
        ));
    }
    assert_eq!(set.len(), count);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(set);
    assert_eq!(drops.load(Ordering::SeqCst), count);
}

/// Documented outcome: a set with zero streams is empty and not yet
/// terminated; `poll_next` returns `Ready(None)` at once, without waking
/// the parent, and keeps doing so; `clear`, the iterators and `into_iter`
/// see nothing; a set emptied by `clear` behaves the same.
fn zero_streams<K: Kind>() {
    let parent = Arc::new(CountingWaker::default());
    let parent_waker = waker(parent.clone());
    let mut cx = Context::from_waker(&parent_waker);
    let mut set = K::Set::<Probe>::default();
    for round in 0..2 {
        assert_eq!(set.len(), 0);
        assert!(
            !set.terminated(),
            "round {round}: not terminated before polling"
        );
        assert_eq!(set.iter().len(), 0);
        assert_eq!(Pin::new(&set).iter_pin_ref().count(), 0);
        assert_eq!(set.iter_mut().len(), 0);
        assert_eq!(Pin::new(&mut set).iter_pin_mut().count(), 0);
        assert_eq!(set.poll_event(&mut cx), Poll::Ready(None));
        assert!(set.terminated());
        assert_eq!(set.poll_stream(&mut cx), Poll::Ready(None));
        assert_eq!(set.poll_event(&mut cx), Poll::Ready(None));
        set.clear();
        // Round 1: a set that had streams, cleared.
        let (stream, tracker) = probe(0, 1, Then::Pend);
        set.push(stream);
        assert_eq!(set.len(), 1);
        set.clear();
        assert_eq!(tracker.drops(), 1);
        assert_eq!(tracker.polls(), 0);
    }
    assert_eq!(parent.wakes(), 0, "an empty set never wakes its parent");
    let mut iter = set.into_iter();
    assert_eq!(iter.len(), 0);
    assert!(iter.next().is_none());
}

/// Documented outcome: after `Ready(None)` the set is terminated and every
/// further `poll_next` returns `Ready(None)` again, polling no stream (an
/// ended stream is never polled again; it would panic) and not waking the
/// parent, even when stale wakers of the ended streams are woken; a push
/// revives the set.
fn poll_next_after_ready_none_stays_ready_none<K: Kind>() {
    let mut set = K::Set::<Probe>::default();
    let mut trackers = Vec::new();
    for id in 0..3 {
        let (stream, tracker) = probe(id, 2, Then::End);
        set.push(stream);
        trackers.push(tracker);
    }
    let events = settle(&mut set);
    assert_eq!(events.len(), if K::REPORTS_END { 9 } else { 6 });
    assert!(set.terminated());
    let polls: Vec<usize> = trackers.iter().map(|t| t.polls()).collect();
    assert_eq!(polls, [3, 3, 3]);

    let parent = Arc::new(CountingWaker::default());
    let parent_waker = waker(parent.clone());
    let mut cx = Context::from_waker(&parent_waker);
    for _ in 0..5 {
        assert_eq!(set.poll_event(&mut cx), Poll::Ready(None));
        assert_eq!(set.poll_stream(&mut cx), Poll::Ready(None));
        for tracker in &trackers {
            tracker.stored_waker().wake();
        }
        assert!(set.terminated());
    }
    assert_eq!(
        parent.wakes(),
        0,
        "stale wakes after the end woke the parent"
    );
    let after: Vec<usize> = trackers.iter().map(|t| t.polls()).collect();
    assert_eq!(after, polls, "a stream was polled after the set ended");

    let (stream, _) = probe(7, 1, Then::End);
    let key = set.insert(stream);
    assert!(!set.terminated(), "a push revives the set");
    let events = settle(&mut set);
    assert_eq!(items_of(&events, 7, key), [0]);
    assert!(set.terminated());
}

/// A stream that, on its first poll, tries to reach the set polling it
/// through a shared handle, hands its `children` to the parent through
/// `queue`, and yields its id; then it ends.
struct Spawner {
    id: usize,
    children: Vec<Spawner>,
    polled: bool,
    queue: Rc<RefCell<Vec<Spawner>>>,
    /// Whether the set is reachable through the shared handle right now.
    set_reachable: Rc<dyn Fn() -> bool>,
    reached_set: Rc<AtomicUsize>,
}

impl Stream for Spawner {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut *self;
        if this.polled {
            return Poll::Ready(None);
        }
        this.polled = true;
        if (this.set_reachable)() {
            this.reached_set.fetch_add(1, Ordering::SeqCst);
        }
        this.queue.borrow_mut().append(&mut this.children);
        Poll::Ready(Some((this.id, 0)))
    }
}

/// Documented outcome: `push` takes `&self`, but `poll_next` holds the set
/// mutably for the whole call, so a stream cannot push into the set that is
/// polling it: the borrow checker rejects it, and a shared `RefCell`
/// handle is found borrowed from inside `poll_next`. The supported pattern
/// is a queue: streams hand new streams to the parent, which pushes them
/// between polls; those are polled by the next `poll_next`, and every item
/// (here of a tree of 31 streams) arrives once.
fn streams_made_inside_poll_next_are_pushed_between_polls<K: Kind>()
where
    K::Set<Spawner>: 'static,
{
    let set = Rc::new(RefCell::new(K::Set::<Spawner>::default()));
    let queue = Rc::new(RefCell::new(Vec::new()));
    let reached_set = Rc::new(AtomicUsize::new(0));
    let handle = Rc::downgrade(&set);
    let set_reachable: Rc<dyn Fn() -> bool> =
        Rc::new(move || handle.upgrade().is_some_and(|set| set.try_borrow().is_ok()));
    let mut next_id = 0;
    // A binary tree of depth 5: 31 streams.
    fn tree(
        depth: u32,
        next_id: &mut usize,
        make: &dyn Fn(usize, Vec<Spawner>) -> Spawner,
    ) -> Spawner {
        let id = *next_id;
        *next_id += 1;
        let children = if depth == 1 {
            Vec::new()
        } else {
            (0..2).map(|_| tree(depth - 1, next_id, make)).collect()
        };
        make(id, children)
    }
    let make = |id, children| Spawner {
        id,
        children,
        polled: false,
        queue: queue.clone(),
        set_reachable: set_reachable.clone(),
        reached_set: reached_set.clone(),
    };
    let root = tree(5, &mut next_id, &make);
    let root_key = set.borrow().insert(root);

    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    let mut ids = Vec::new();
    let mut keys = vec![root_key];
    let mut ends = Vec::new();
    for _ in 0..1_000 {
        let result = set.borrow_mut().poll_event(&mut cx);
        let spawned: Vec<Spawner> = queue.borrow_mut().drain(..).collect();
        for stream in spawned {
            keys.push(set.borrow().insert(stream));
        }
        match result {
            Poll::Ready(Some(Event::Item(_, (id, _)))) => ids.push(id),
            Poll::Ready(Some(Event::End(key))) => ends.push(key),
            Poll::Ready(None) if keys.len() == next_id => break,
            Poll::Ready(None) | Poll::Pending => {}
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..next_id).collect::<Vec<_>>());
    assert_eq!(next_id, 31);
    ends.sort_unstable();
    assert_eq!(ends, expected_ends::<K>(keys));
    assert_eq!(
        reached_set.load(Ordering::SeqCst),
        0,
        "the set was reachable from inside its own poll_next"
    );
    assert!(set.borrow().terminated());
    assert!(set_reachable(), "reachable between polls");
}

/// A stream that logs its letter on each poll. With `items == None` it
/// wakes itself and returns `Pending` forever; otherwise it yields `items`
/// items, one per poll, then ends.
struct Lane {
    letter: char,
    items: Option<u32>,
    next: u32,
    log: Rc<RefCell<Vec<char>>>,
}

impl Stream for Lane {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut *self;
        this.log.borrow_mut().push(this.letter);
        match this.items {
            None => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(items) if this.next < items => {
                this.next += 1;
                Poll::Ready(Some((this.letter as usize, this.next - 1)))
            }
            Some(_) => Poll::Ready(None),
        }
    }
}

/// Documented outcome: a HIGH stream that wakes itself on every poll and
/// never yields cannot starve the lower lanes: with bound `n`, NORMAL and
/// LOW streams with woken work each get a poll in every `n + 2` consecutive
/// stream polls, and deliver all their items (and end); the HIGH stream is
/// polled at most once per `poll_next` call.
fn lower_lanes_finish_under_a_high_stream_that_never_stops_waking_itself<K: Kind>() {
    const ITEMS: u32 = if cfg!(miri) { 4 } else { 20 };
    let bounds: &[u32] = if cfg!(miri) { &[1, 4] } else { &[1, 2, 4, 16] };
    for &bound in bounds {
        let log = Rc::new(RefCell::new(Vec::new()));
        let lane = |letter, items| Lane {
            letter,
            items,
            next: 0,
            log: log.clone(),
        };
        let mut set = K::Set::<Lane>::default();
        set.set_starvation_bound(bound);
        set.insert_with_priority(lane('H', None), Priority::HIGH);
        let normal = set.insert_with_priority(lane('N', Some(ITEMS)), Priority::NORMAL);
        let low = set.insert_with_priority(lane('L', Some(ITEMS)), Priority::LOW);

        let mut events = Vec::new();
        let mut calls = 0;
        while set.len() > 1 {
            calls += 1;
            assert!(calls < 10_000, "bound {bound}: lower lanes never finished");
            let highs_before = log.borrow().iter().filter(|&&c| c == 'H').count();
            if let Poll::Ready(Some(event)) = poll_once(&mut set) {
                events.push(event);
            }
            let highs = log.borrow().iter().filter(|&&c| c == 'H').count();
            assert!(
                highs - highs_before <= 1,
                "bound {bound}: the HIGH stream polled twice in one call"
            );
        }
        let log: String = log.borrow().iter().collect();
        let want: Vec<u32> = (0..ITEMS).collect();
        assert_eq!(items_of(&events, 'N' as usize, normal), want, "{log}");
        assert_eq!(items_of(&events, 'L' as usize, low), want, "{log}");
        assert_eq!(ends_of(&events), expected_ends::<K>([normal, low]));
        let window = bound as usize + 2;
        for letter in ['N', 'L'] {
            let last = log.rfind(letter).expect("polled");
            let chars: Vec<char> = log[..=last].chars().collect();
            for (start, run) in chars.windows(window).enumerate() {
                assert!(
                    run.contains(&letter),
                    "bound {bound}: no {letter} poll among stream polls {start}..{}: {log}",
                    start + window
                );
            }
        }
        assert!(log.contains('H'));
    }
}

macro_rules! for_each_kind {
    ($($(#[$attr:meta])* $test:ident;)*) => {
        mod streams_unordered {
            use super::*;
            $(
                $(#[$attr])*
                #[test]
                fn $test() {
                    super::$test::<Plain>();
                }
            )*
        }
        mod indexed_streams_unordered {
            use super::*;
            $(
                $(#[$attr])*
                #[test]
                fn $test() {
                    super::$test::<Indexed>();
                }
            )*
        }
    };
}

for_each_kind! {
    #[cfg(panic = "unwind")]
    stream_panicking_in_poll_next_is_dropped_and_the_rest_finish;
    #[cfg(panic = "unwind")]
    panicking_drop_during_clear_drops_every_stream_once;
    #[cfg(panic = "unwind")]
    panicking_drop_during_set_drop_drops_every_stream_once;
    waker_outliving_the_set_is_harmless_on_another_thread;
    wakes_from_eight_threads_while_polling_lose_no_stream;
    stream_waking_itself_in_poll_next_is_polled_once_per_call;
    wake_storm_on_a_queued_stream_polls_it_once;
    clear_and_drop_while_wakers_are_alive_on_another_thread;
    forgotten_borrowing_iterators_leave_the_set_intact;
    #[cfg_attr(
        any(miri, velodrome_asan),
        ignore = "leaks the forgotten streams on purpose; Miri and LeakSanitizer report leaks"
    )]
    forgotten_into_iter_leaks_its_streams_without_dropping_them;
    million_streams_are_pushed_polled_and_dropped;
    zero_streams;
    poll_next_after_ready_none_stays_ready_none;
    streams_made_inside_poll_next_are_pushed_between_polls;
    lower_lanes_finish_under_a_high_stream_that_never_stops_waking_itself;
}

/// Forgets an iterator through `&set`, which owns its order buffer (one
/// allocation): forgetting it leaks that buffer, which Miri's and
/// LeakSanitizer's leak checks report, so there it is dropped instead (the
/// iterators through `&mut set` keep their order in the set and are
/// forgotten everywhere).
fn forget_shared_iterator<I>(iter: I) {
    if cfg!(any(miri, velodrome_asan)) {
        drop(iter);
    } else {
        std::mem::forget(iter);
    }
}
