//! `StreamsUnordered` and `IndexedStreamsUnordered`: every item comes out,
//! ended streams are dropped and their slots reused, each stream is polled
//! at most once per `poll_next` and yields at most one item per poll (so
//! always-ready streams go round-robin and cannot starve pending ones), the
//! end marker of the indexed set, lanes, `FusedStream`, the iterators, and
//! the tokio budget.
//!
//! Properties shared by both types are written once over [`MergeSet`] and
//! run for each type by `for_each_set!`.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::executor::block_on;
use futures::stream::{BoxStream, FusedStream};
use futures::task::noop_waker;
use futures::{Stream, StreamExt};
use velodrome::{IndexedStreamsUnordered, Key, Priority, StreamsUnordered};

/// Items are `(stream id, position in that stream)`.
type Item = (usize, u32);
type Child = BoxStream<'static, Item>;

/// What a set yields, whatever its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Item(Key, Item),
    /// `IndexedStreamsUnordered`'s `(key, None)`.
    End(Key),
}

/// The two stream sets, over boxed streams.
trait MergeSet: Default {
    /// Whether the set reports a stream's end.
    const REPORTS_END: bool;
    fn insert(&self, stream: Child) -> Key;
    fn insert_with_priority(&self, stream: Child, priority: Priority) -> Key;
    fn len(&self) -> usize;
    fn contains(&self, key: Key) -> bool;
    fn set_starvation_bound(&mut self, bound: u32);
    fn clear(&mut self);
    fn terminated(&self) -> bool;
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>>;
}

impl MergeSet for StreamsUnordered<Child> {
    const REPORTS_END: bool = false;
    fn insert(&self, stream: Child) -> Key {
        StreamsUnordered::insert(self, stream)
    }
    fn insert_with_priority(&self, stream: Child, priority: Priority) -> Key {
        StreamsUnordered::insert_with_priority(self, stream, priority)
    }
    fn len(&self) -> usize {
        StreamsUnordered::len(self)
    }
    fn contains(&self, key: Key) -> bool {
        StreamsUnordered::contains(self, key)
    }
    fn set_starvation_bound(&mut self, bound: u32) {
        StreamsUnordered::set_starvation_bound(self, bound);
    }
    fn clear(&mut self) {
        StreamsUnordered::clear(self);
    }
    fn terminated(&self) -> bool {
        FusedStream::is_terminated(self)
    }
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_next_with_key(cx)
            .map(|next| next.map(|(key, item)| Event::Item(key, item)))
    }
}

impl MergeSet for IndexedStreamsUnordered<Child> {
    const REPORTS_END: bool = true;
    fn insert(&self, stream: Child) -> Key {
        IndexedStreamsUnordered::insert(self, stream)
    }
    fn insert_with_priority(&self, stream: Child, priority: Priority) -> Key {
        IndexedStreamsUnordered::insert_with_priority(self, stream, priority)
    }
    fn len(&self) -> usize {
        IndexedStreamsUnordered::len(self)
    }
    fn contains(&self, key: Key) -> bool {
        IndexedStreamsUnordered::contains(self, key)
    }
    fn set_starvation_bound(&mut self, bound: u32) {
        IndexedStreamsUnordered::set_starvation_bound(self, bound);
    }
    fn clear(&mut self) {
        IndexedStreamsUnordered::clear(self);
    }
    fn terminated(&self) -> bool {
        FusedStream::is_terminated(self)
    }
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_next_unpin(cx).map(|next| {
            next.map(|(key, item)| match item {
                Some(item) => Event::Item(key, item),
                None => Event::End(key),
            })
        })
    }
}

fn poll_once<S: MergeSet>(set: &mut S) -> Poll<Option<Event>> {
    let waker = noop_waker();
    set.poll_event(&mut Context::from_waker(&waker))
}

/// Everything the set yields until it returns `Ready(None)`, driven with
/// `block_on` (the set's own wake-ups drive it).
fn drain<S: MergeSet>(set: &mut S) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = block_on(futures::future::poll_fn(|cx| set.poll_event(cx))) {
        events.push(event);
    }
    events
}

/// The stream `id` of `len` items `(id, 0..len)`, all ready.
fn numbered(id: usize, len: u32) -> Child {
    futures::stream::iter((0..len).map(move |i| (id, i))).boxed()
}

/// Counts the polls of a stream and whether it was dropped.
#[derive(Default)]
struct Probe {
    polls: AtomicUsize,
    drops: AtomicUsize,
    ended: AtomicBool,
}

struct Probed<S> {
    inner: S,
    probe: Arc<Probe>,
}

impl<S: Stream + Unpin> Stream for Probed<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        assert!(
            !self.probe.ended.load(Ordering::SeqCst),
            "a stream was polled after it ended"
        );
        self.probe.polls.fetch_add(1, Ordering::SeqCst);
        let next = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(None) = next {
            self.probe.ended.store(true, Ordering::SeqCst);
        }
        next
    }
}

impl<S> Drop for Probed<S> {
    fn drop(&mut self) {
        self.probe.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn probed(inner: Child) -> (Child, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let stream = Probed {
        inner,
        probe: probe.clone(),
    };
    (stream.boxed(), probe)
}

/// Wakers of streams that are waiting for the test's helper.
#[derive(Clone, Default)]
struct Helper(Arc<Mutex<Vec<Waker>>>);

impl Helper {
    /// Wakes every stream waiting on the helper.
    fn wake_all(&self) {
        for waker in self.0.lock().unwrap().drain(..) {
            waker.wake();
        }
    }
}

/// A stream of `items` items, each preceded by `pendings` `Pending`s; each
/// `Pending` waits for the helper to wake it.
fn hesitant(id: usize, items: u32, pendings: u32, helper: Helper) -> Child {
    struct Hesitant {
        id: usize,
        next: u32,
        items: u32,
        pendings: u32,
        waited: u32,
        helper: Helper,
    }
    impl Stream for Hesitant {
        type Item = Item;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
            if self.next == self.items {
                return Poll::Ready(None);
            }
            if self.waited < self.pendings {
                self.waited += 1;
                self.helper.0.lock().unwrap().push(cx.waker().clone());
                return Poll::Pending;
            }
            self.waited = 0;
            self.next += 1;
            Poll::Ready(Some((self.id, self.next - 1)))
        }
    }
    Hesitant {
        id,
        next: 0,
        items,
        pendings,
        waited: 0,
        helper,
    }
    .boxed()
}

/// Every item of every stream comes out exactly once, whatever the
/// streams' lengths (empty ones included), each stream's items in order;
/// the indexed set adds one end marker per stream.
fn every_item_comes_out_of_streams_of_different_lengths<S: MergeSet>() {
    let streams = if cfg!(miri) { 8 } else { 40 };
    let mut set = S::default();
    let lengths: Vec<u32> = (0..streams).map(|id| (id as u32 * 7) % 13).collect();
    let keys: Vec<Key> = lengths
        .iter()
        .enumerate()
        .map(|(id, &len)| set.insert(numbered(id, len)))
        .collect();
    assert_eq!(set.len(), streams);

    let mut items: HashMap<usize, Vec<u32>> = HashMap::new();
    let mut ends = Vec::new();
    for event in drain(&mut set) {
        match event {
            Event::Item(key, (id, i)) => {
                assert_eq!(key, keys[id], "item of stream {id} with another key");
                assert!(!ends.contains(&key), "an item after its stream's end");
                items.entry(id).or_default().push(i);
            }
            Event::End(key) => ends.push(key),
        }
    }
    for (id, &len) in lengths.iter().enumerate() {
        let got = items.remove(&id).unwrap_or_default();
        assert_eq!(got, (0..len).collect::<Vec<_>>(), "items of stream {id}");
    }
    if S::REPORTS_END {
        ends.sort_unstable();
        assert_eq!(ends, keys, "one end marker per stream");
    } else {
        assert!(ends.is_empty());
    }
    assert_eq!(set.len(), 0);
    assert!(set.terminated());
}

/// A stream that ends is dropped right away (not when the set is) and its
/// slot goes to the next insert; its key is dead.
fn ended_stream_is_dropped_and_its_slot_reused<S: MergeSet>() {
    let mut set = S::default();
    let helper = Helper::default();
    let (waiting, waiting_probe) = probed(hesitant(0, 1, 1, helper.clone()));
    let waiting_key = set.insert(waiting);
    let (short, short_probe) = probed(numbered(1, 2));
    let short_key = set.insert(short);
    let mut events = Vec::new();
    while short_probe.drops.load(Ordering::SeqCst) == 0 {
        match poll_once(&mut set) {
            Poll::Ready(Some(event)) => events.push(event),
            Poll::Ready(None) => panic!("the waiting stream is still there"),
            Poll::Pending => {}
        }
        assert!(
            events.len() <= 3,
            "the short stream was not dropped: {events:?}"
        );
    }
    let mut expected = vec![
        Event::Item(short_key, (1, 0)),
        Event::Item(short_key, (1, 1)),
    ];
    if S::REPORTS_END {
        expected.push(Event::End(short_key));
    }
    // Without an end marker, the drop is noticed by the call that ends it.
    assert_eq!(events, expected);
    assert_eq!(short_probe.drops.load(Ordering::SeqCst), 1);
    assert!(short_probe.ended.load(Ordering::SeqCst));
    assert!(!set.contains(short_key));
    assert_eq!(set.len(), 1);

    let (next, next_probe) = probed(numbered(2, 1));
    let next_key = set.insert(next);
    assert_eq!(next_key.index(), short_key.index(), "the slot is reused");
    assert_ne!(next_key, short_key);
    helper.wake_all();
    let events = drain(&mut set);
    assert!(events.contains(&Event::Item(next_key, (2, 0))));
    assert!(events.contains(&Event::Item(waiting_key, (0, 0))));
    assert_eq!(next_probe.drops.load(Ordering::SeqCst), 1);
    assert_eq!(waiting_probe.drops.load(Ordering::SeqCst), 1);
    assert_eq!(short_probe.drops.load(Ordering::SeqCst), 1, "dropped once");
}

/// One stream that is always ready (an infinite `repeat`) next to ten that
/// are pending a few times before each item: every stream is polled at
/// most once per `poll_next` call, and the ten finish within a bound set by
/// their own work, not by the busy stream.
fn always_ready_stream_does_not_starve_pending_streams<S: MergeSet>() {
    const FINITE: usize = 10;
    let (items, pendings) = if cfg!(miri) { (2, 1) } else { (5, 3) };
    let mut set = S::default();
    let helper = Helper::default();
    let (busy, busy_probe) = probed(futures::stream::repeat((usize::MAX, 0)).boxed());
    set.insert(busy);
    let probes: Vec<Arc<Probe>> = (0..FINITE)
        .map(|id| {
            let (stream, probe) = probed(hesitant(id, items, pendings, helper.clone()));
            set.insert(stream);
            probe
        })
        .collect();
    let all: Vec<&Arc<Probe>> = std::iter::once(&busy_probe).chain(&probes).collect();

    // Each cycle polls every woken stream once and lasts at most one call
    // per item (11) plus one; each finite stream needs
    // `items * (pendings + 1) + 1` polls.
    let bound = (items * (pendings + 1) + 2) as usize * (FINITE + 2);
    let mut got = vec![0_u32; FINITE];
    let mut busy_items = 0;
    let mut calls = 0;
    while probes.iter().any(|p| p.drops.load(Ordering::SeqCst) == 0) {
        calls += 1;
        assert!(
            calls <= bound,
            "the ten did not finish in {bound} calls: {got:?}"
        );
        let before: Vec<usize> = all.iter().map(|p| p.polls.load(Ordering::SeqCst)).collect();
        match poll_once(&mut set) {
            Poll::Ready(Some(Event::Item(_, (usize::MAX, _)))) => busy_items += 1,
            Poll::Ready(Some(Event::Item(_, (id, i)))) => {
                assert_eq!(i, got[id], "stream {id} out of order");
                got[id] += 1;
            }
            Poll::Ready(Some(Event::End(_))) => {}
            Poll::Ready(None) => panic!("the busy stream never ends"),
            Poll::Pending => {}
        }
        for (n, probe) in all.iter().enumerate() {
            let polls = probe.polls.load(Ordering::SeqCst) - before[n];
            assert!(polls <= 1, "stream {n} polled {polls} times in one call");
        }
        helper.wake_all();
    }
    assert_eq!(got, vec![items; FINITE]);
    assert!(busy_items >= 1, "the busy stream was served too");
    assert_eq!(set.len(), 1);
}

/// With `n` always-ready streams, items come out round-robin: every window
/// of `n` consecutive items has one from each stream.
fn always_ready_streams_yield_round_robin<S: MergeSet>() {
    let n = if cfg!(miri) { 5 } else { 50 };
    let mut set = S::default();
    for id in 0..n {
        set.insert(futures::stream::repeat((id, 0)).boxed());
    }
    for round in 0..4 {
        let mut window: Vec<usize> = (0..n)
            .map(|_| match poll_once(&mut set) {
                Poll::Ready(Some(Event::Item(_, (id, _)))) => id,
                other => panic!("always-ready streams gave {other:?}"),
            })
            .collect();
        window.sort_unstable();
        assert_eq!(window, (0..n).collect::<Vec<_>>(), "window {round}");
    }
}

/// Items of a `HIGH` stream come before those of a `LOW` stream pushed
/// earlier, as long as the low lane's share is not due.
fn high_lane_items_come_before_low_lane_items<S: MergeSet>() {
    let mut set = S::default();
    set.set_starvation_bound(100);
    let low = set.insert_with_priority(numbered(0, 10), Priority::LOW);
    let high = set.insert_with_priority(numbered(1, 10), Priority::HIGH);
    let items: Vec<Key> = drain(&mut set)
        .into_iter()
        .filter_map(|event| match event {
            Event::Item(key, _) => Some(key),
            Event::End(_) => None,
        })
        .collect();
    let mut expected = vec![high; 10];
    expected.extend([low; 10]);
    assert_eq!(items, expected);
}

/// A `LOW` stream still gets an item through next to an endless `HIGH`
/// stream: one per `bound + 2` items at the latest.
fn low_lane_stream_keeps_its_share_next_to_an_endless_high_stream<S: MergeSet>() {
    let bound = 4;
    let mut set = S::default();
    set.set_starvation_bound(bound);
    set.insert_with_priority(futures::stream::repeat((0, 0)).boxed(), Priority::HIGH);
    set.insert_with_priority(futures::stream::repeat((1, 0)).boxed(), Priority::LOW);
    let mut since_low = 0;
    let mut lows = 0;
    for _ in 0..(if cfg!(miri) { 30 } else { 300 }) {
        match poll_once(&mut set) {
            Poll::Ready(Some(Event::Item(_, (1, _)))) => {
                lows += 1;
                since_low = 0;
            }
            Poll::Ready(Some(Event::Item(_, (0, _)))) => since_low += 1,
            other => panic!("endless streams gave {other:?}"),
        }
        assert!(
            since_low <= bound + 2,
            "the low lane waited {since_low} items"
        );
    }
    assert!(lows >= 1);
}

/// `is_terminated` is false while streams remain, true once the set has
/// returned `Ready(None)`, and false again after an insert or a `clear`.
fn is_terminated_follows_ready_none<S: MergeSet>() {
    let mut set = S::default();
    assert!(!set.terminated(), "a new set is not terminated");
    set.insert(numbered(0, 1));
    assert!(!set.terminated());
    assert!(!drain(&mut set).is_empty());
    assert!(set.terminated());
    assert_eq!(
        poll_once(&mut set),
        Poll::Ready(None),
        "polling again is fine"
    );
    assert!(set.terminated());
    let key = set.insert(numbered(1, 1));
    assert!(!set.terminated(), "an insert revives the set");
    assert_eq!(drain(&mut set)[0], Event::Item(key, (1, 0)));
    assert!(set.terminated());
    set.clear();
    assert!(!set.terminated(), "a cleared set is a fresh one");
}

macro_rules! for_each_set {
    ($($test:ident;)*) => {
        mod streams_unordered {
            $(
                #[test]
                fn $test() {
                    super::$test::<velodrome::StreamsUnordered<super::Child>>();
                }
            )*
        }
        mod indexed_streams_unordered {
            $(
                #[test]
                fn $test() {
                    super::$test::<velodrome::IndexedStreamsUnordered<super::Child>>();
                }
            )*
        }
    };
}

for_each_set! {
    every_item_comes_out_of_streams_of_different_lengths;
    ended_stream_is_dropped_and_its_slot_reused;
    always_ready_stream_does_not_starve_pending_streams;
    always_ready_streams_yield_round_robin;
    high_lane_items_come_before_low_lane_items;
    low_lane_stream_keeps_its_share_next_to_an_endless_high_stream;
    is_terminated_follows_ready_none;
}

/// `IndexedStreamsUnordered` yields `(key, None)` exactly once per stream,
/// after all of that stream's items, also for streams that pend between
/// items and for empty streams; then `Ready(None)`.
#[test]
fn indexed_yields_the_end_marker_once_after_the_items() {
    let streams = if cfg!(miri) { 6 } else { 30 };
    let helper = Helper::default();
    let mut set = IndexedStreamsUnordered::new();
    let lengths: Vec<u32> = (0..streams).map(|id| id as u32 % 5).collect();
    let keys: Vec<Key> = lengths
        .iter()
        .enumerate()
        .map(|(id, &len)| set.insert(hesitant(id, len, (id % 3) as u32, helper.clone())))
        .collect();
    let mut log: HashMap<Key, Vec<Option<u32>>> = HashMap::new();
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 10_000, "the set did not finish");
        match set.poll_next_unpin(&mut cx) {
            Poll::Ready(Some((key, item))) => {
                let entry = log.entry(key).or_default();
                assert_ne!(entry.last(), Some(&None), "output after the end marker");
                entry.push(item.map(|(_, i)| i));
            }
            Poll::Ready(None) => break,
            Poll::Pending => helper.wake_all(),
        }
    }
    assert_eq!(log.len(), streams);
    for (key, &len) in keys.iter().zip(&lengths) {
        let mut expected: Vec<Option<u32>> = (0..len).map(Some).collect();
        expected.push(None);
        assert_eq!(log[key], expected, "outputs of {key:?}");
    }
    assert!(set.is_terminated());
}

/// A stream that hands out the numbers in its queue, front first; `Unpin`, so
/// the by-reference iterators apply.
#[derive(Debug)]
struct Queue {
    id: usize,
    items: VecDeque<u32>,
}

impl Stream for Queue {
    type Item = Item;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let id = self.id;
        Poll::Ready(self.items.pop_front().map(|i| (id, i)))
    }
}

fn queue(id: usize, len: u32) -> Queue {
    Queue {
        id,
        items: (0..len).collect(),
    }
}

fn ids<'a>(streams: impl Iterator<Item = &'a Queue>) -> Vec<usize> {
    let mut ids: Vec<usize> = streams.map(|q| q.id).collect();
    ids.sort_unstable();
    ids
}

/// The iterators visit every live stream once (not the ended ones), with
/// exact lengths; changes through `iter_mut` / `iter_pin_mut` show in the
/// items; `into_iter` hands back the streams with their remaining items.
#[test]
fn iterators_visit_every_live_stream() {
    let mut set: StreamsUnordered<Queue> = (0..4).map(|id| queue(id, id as u32)).collect();
    set.extend([queue(4, 4)]);
    assert_eq!(set.len(), 5);
    assert_eq!(set.iter().len(), 5);
    assert_eq!(ids(set.iter()), [0, 1, 2, 3, 4]);
    assert_eq!(ids((&set).into_iter()), [0, 1, 2, 3, 4]);
    assert_eq!(Pin::new(&set).iter_pin_ref().len(), 5);

    // One call: stream 0 (empty) ends and is dropped, stream 1 yields.
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Ready(Some((1, 0))));
    assert_eq!(set.len(), 4);
    assert_eq!(ids(set.iter()), [1, 2, 3, 4], "the ended stream is gone");

    for q in set.iter_mut() {
        q.items.push_back(100);
    }
    for q in &mut set {
        q.items.push_back(200);
    }
    for mut q in Pin::new(&mut set).iter_pin_mut() {
        q.items.push_back(300);
    }
    let mut items: Vec<Item> = block_on((&mut set).take(3).collect());
    items.sort_unstable();
    assert_eq!(items, [(2, 0), (3, 0), (4, 0)], "round-robin over the rest");

    let mut back: Vec<Queue> = set.into_iter().collect();
    back.sort_unstable_by_key(|q| q.id);
    let remaining: Vec<(usize, Vec<u32>)> = back
        .into_iter()
        .map(|q| (q.id, q.items.into_iter().collect()))
        .collect();
    assert_eq!(
        remaining,
        [
            (1, vec![100, 200, 300]),
            (2, vec![1, 100, 200, 300]),
            (3, vec![1, 2, 100, 200, 300]),
            (4, vec![1, 2, 3, 100, 200, 300]),
        ]
    );

    let indexed: IndexedStreamsUnordered<Queue> = (0..3).map(|id| queue(id, 1)).collect();
    assert_eq!(ids(indexed.iter()), [0, 1, 2]);
    assert_eq!(indexed.into_iter().count(), 3);
}

/// Feature `tokio`: a `StreamsUnordered` of always-ready streams, drained by
/// one task of a current-thread runtime, lets a sibling task run within 128
/// items (the set's budget), so it cannot hog its thread.
#[cfg(feature = "tokio")]
#[test]
fn always_ready_streams_let_a_sibling_task_run_within_128_items() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let items_before_sibling = rt.block_on(async {
        let driver = tokio::spawn(async {
            let mut set = StreamsUnordered::new();
            for id in 0..8 {
                set.push(futures::stream::repeat(id));
            }
            let sibling_ran = Arc::new(AtomicBool::new(false));
            // Spawned from the driver, so it can only run once the driver
            // yields.
            let flag = sibling_ran.clone();
            let sibling = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
            // Items that came out before the sibling ran: the yield happens
            // inside a `next()`, so an item that arrives after it is not one.
            let mut items = 0_usize;
            loop {
                set.next().await.expect("endless streams");
                if sibling_ran.load(Ordering::SeqCst) {
                    break;
                }
                items += 1;
                assert!(items <= 10_000, "the sibling never ran");
            }
            sibling.await.unwrap();
            items
        });
        driver.await.unwrap()
    });
    assert!(
        (1..=128).contains(&items_before_sibling),
        "the sibling waited {items_before_sibling} items"
    );
}
