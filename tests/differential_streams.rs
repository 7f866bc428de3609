//! Differential tests of the stream sets: random scripts of pushes, polls,
//! wakes, cancels and clears are applied to `StreamsUnordered`,
//! `futures::stream::select_all` and `IndexedStreamsUnordered`, and to a
//! model of what each scripted stream must have produced.
//!
//! After every operation:
//!
//! - the items so far, as multisets, and `len()` agree between
//!   `StreamsUnordered`, `select_all` and the model;
//! - `IndexedStreamsUnordered`'s outputs per key are exactly the model's:
//!   that stream's items in its order, then its end marker once if it ended.
//!
//! A stream's progress depends only on the wakes the script delivered to it,
//! never on how often or in which order it was polled, and `Poll` drives each
//! set until it settles (`Pending` without a self-wake during the call, or
//! `Ready(None)`), so settled sets are comparable. `select_all` has no keys:
//! a cancel there takes the set apart and rebuilds it without the stream.

use std::collections::HashMap;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::stream::SelectAll;
use futures::task::{waker, ArcWake};
use futures::{Stream, StreamExt};
use proptest::collection::vec;
use proptest::prelude::*;
use velodrome::{IndexedStreamsUnordered, Key, StreamsUnordered};

/// One scripted operation, applied to every set and the model.
#[derive(Clone, Debug)]
enum Op {
    /// Push a stream whose item `i` needs `gates[i]` more wakes than item
    /// `i - 1` before it is ready, and whose end needs `end` more after the
    /// last item.
    Push { gates: Vec<usize>, end: usize },
    /// Drive every set until it settles.
    Poll,
    /// Deliver one wake to every stream pushed so far (live or not).
    WakeAll,
    /// Deliver one wake to stream `index % pushed`.
    WakeOne(usize),
    /// Cancel stream `index % pushed` (by key; by rebuilding `select_all`).
    Cancel(usize),
    /// `clear()` every set.
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (vec(0..3_usize, 0..5), 0..2_usize).prop_map(|(gates, end)| Op::Push { gates, end }),
        4 => Just(Op::Poll),
        2 => Just(Op::WakeAll),
        3 => any::<usize>().prop_map(Op::WakeOne),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => Just(Op::Clear),
    ]
}

/// Item `(stream id, position)`.
type Item = (usize, usize);

/// The wakes delivered to one stream of one set, and its latest waker.
#[derive(Default)]
struct Wakes {
    delivered: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl Wakes {
    fn deliver(&self) {
        self.delivered.fetch_add(1, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

/// Cumulative wakes each step of a stream needs: `thresholds[i]` for item
/// `i`, the last entry for the end.
fn thresholds(gates: &[usize], end: usize) -> Vec<usize> {
    let mut total = 0;
    let mut out: Vec<usize> = gates
        .iter()
        .map(|gate| {
            total += gate;
            total
        })
        .collect();
    out.push(total + end);
    out
}

/// Steps (items, then the end) ready after `delivered` wakes.
fn ready_steps(thresholds: &[usize], delivered: usize) -> usize {
    thresholds.iter().take_while(|&&t| t <= delivered).count()
}

/// A stream that yields `(id, i)` for each of its items once enough wakes
/// were delivered, then ends; it panics if polled after its end.
struct Scripted {
    id: usize,
    next: usize,
    thresholds: Arc<[usize]>,
    wakes: Arc<Wakes>,
}

impl Stream for Scripted {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let items = self.thresholds.len() - 1;
        assert!(
            self.next <= items,
            "stream {} polled after its end",
            self.id
        );
        if self.wakes.delivered.load(Ordering::SeqCst) < self.thresholds[self.next] {
            *self.wakes.waker.lock().unwrap() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        self.next += 1;
        if self.next > items {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some((self.id, self.next - 1)))
        }
    }
}

/// One output: the key if the set gives one, the item or the end marker.
type Output = (Option<Key>, Option<Item>);

/// The operations the three sets offer, under one name.
trait DiffSet: Default {
    fn push_stream(&mut self, stream: Scripted) -> Option<Key>;
    /// Removes the stream; returns whether it was there.
    fn cancel_stream(&mut self, id: usize, key: Option<Key>) -> bool;
    fn clear_all(&mut self);
    fn length(&self) -> usize;
    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Output>>;
}

impl DiffSet for StreamsUnordered<Scripted> {
    fn push_stream(&mut self, stream: Scripted) -> Option<Key> {
        Some(self.insert(stream))
    }
    fn cancel_stream(&mut self, _id: usize, key: Option<Key>) -> bool {
        self.cancel(key.unwrap())
    }
    fn clear_all(&mut self) {
        self.clear();
    }
    fn length(&self) -> usize {
        self.len()
    }
    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Output>> {
        self.poll_next_with_key(cx)
            .map(|next| next.map(|(key, item)| (Some(key), Some(item))))
    }
}

impl DiffSet for IndexedStreamsUnordered<Scripted> {
    fn push_stream(&mut self, stream: Scripted) -> Option<Key> {
        Some(self.insert(stream))
    }
    fn cancel_stream(&mut self, _id: usize, key: Option<Key>) -> bool {
        self.cancel(key.unwrap())
    }
    fn clear_all(&mut self) {
        self.clear();
    }
    fn length(&self) -> usize {
        self.len()
    }
    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Output>> {
        self.poll_next_unpin(cx)
            .map(|next| next.map(|(key, item)| (Some(key), item)))
    }
}

impl DiffSet for SelectAll<Scripted> {
    fn push_stream(&mut self, stream: Scripted) -> Option<Key> {
        self.push(stream);
        None
    }
    fn cancel_stream(&mut self, id: usize, _key: Option<Key>) -> bool {
        let streams: Vec<Scripted> = mem::take(self).into_iter().collect();
        let before = streams.len();
        *self = streams.into_iter().filter(|s| s.id != id).collect();
        self.len() != before
    }
    fn clear_all(&mut self) {
        self.clear();
    }
    fn length(&self) -> usize {
        self.len()
    }
    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Output>> {
        self.poll_next_unpin(cx)
            .map(|next| next.map(|item| (None, Some(item))))
    }
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// One set with its own streams and everything it has yielded.
struct Side<S> {
    set: S,
    wakes: Vec<Arc<Wakes>>,
    keys: Vec<Option<Key>>,
    items: Vec<Item>,
    /// Outputs per key, in order (`None`: the end marker).
    log: HashMap<Key, Vec<Option<usize>>>,
    parent: Arc<CountingWaker>,
}

impl<S: DiffSet> Side<S> {
    fn new() -> Self {
        Self {
            set: S::default(),
            wakes: Vec::new(),
            keys: Vec::new(),
            items: Vec::new(),
            log: HashMap::new(),
            parent: Arc::default(),
        }
    }

    /// Applies `op`; returns the result of a cancel.
    fn apply(&mut self, op: &Op) -> Option<bool> {
        match op {
            Op::Push { gates, end } => {
                let wakes = Arc::new(Wakes::default());
                let key = self.set.push_stream(Scripted {
                    id: self.wakes.len(),
                    next: 0,
                    thresholds: thresholds(gates, *end).into(),
                    wakes: wakes.clone(),
                });
                self.wakes.push(wakes);
                self.keys.push(key);
            }
            Op::Poll => self.settle(),
            Op::WakeAll => self.wakes.iter().for_each(|w| w.deliver()),
            Op::WakeOne(index) => {
                if !self.wakes.is_empty() {
                    self.wakes[index % self.wakes.len()].deliver();
                }
            }
            Op::Cancel(index) => {
                if !self.wakes.is_empty() {
                    let id = index % self.wakes.len();
                    return Some(self.set.cancel_stream(id, self.keys[id]));
                }
            }
            Op::Clear => self.set.clear_all(),
        }
        None
    }

    /// Polls until `Ready(None)` or a `Pending` without a self-wake.
    fn settle(&mut self) {
        let waker = waker(self.parent.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10_000 {
            let wakes_before = self.parent.0.load(Ordering::SeqCst);
            match self.set.poll_output(&mut cx) {
                Poll::Ready(Some((key, item))) => {
                    if let Some((id, i)) = item {
                        self.items.push((id, i));
                        if let Some(key) = key {
                            assert_eq!(Some(key), self.keys[id], "item of stream {id}");
                        }
                    }
                    if let Some(key) = key {
                        self.log.entry(key).or_default().push(item.map(|(_, i)| i));
                    }
                }
                Poll::Ready(None) => return,
                Poll::Pending => {
                    if self.parent.0.load(Ordering::SeqCst) == wakes_before {
                        return;
                    }
                }
            }
        }
        panic!("the set did not settle in 10,000 calls");
    }

    fn sorted_items(&self) -> Vec<Item> {
        let mut items = self.items.clone();
        items.sort_unstable();
        items
    }
}

/// What each stream must have produced by now.
#[derive(Default)]
struct Model {
    streams: Vec<ModelStream>,
}

struct ModelStream {
    thresholds: Vec<usize>,
    delivered: usize,
    /// Steps (items, then the end) the sets have produced.
    steps: usize,
    live: bool,
}

impl ModelStream {
    fn items(&self) -> usize {
        self.thresholds.len() - 1
    }
}

impl Model {
    fn apply(&mut self, op: &Op) -> Option<bool> {
        let pushed = self.streams.len();
        match op {
            Op::Push { gates, end } => self.streams.push(ModelStream {
                thresholds: thresholds(gates, *end),
                delivered: 0,
                steps: 0,
                live: true,
            }),
            Op::Poll => {
                for stream in self.streams.iter_mut().filter(|s| s.live) {
                    stream.steps = ready_steps(&stream.thresholds, stream.delivered);
                    stream.live = stream.steps <= stream.items();
                }
            }
            Op::WakeAll => self.streams.iter_mut().for_each(|s| s.delivered += 1),
            Op::WakeOne(index) if pushed > 0 => self.streams[index % pushed].delivered += 1,
            Op::Cancel(index) if pushed > 0 => {
                let stream = &mut self.streams[index % pushed];
                return Some(mem::replace(&mut stream.live, false));
            }
            Op::Clear => self.streams.iter_mut().for_each(|s| s.live = false),
            Op::WakeOne(_) | Op::Cancel(_) => {}
        }
        None
    }

    fn len(&self) -> usize {
        self.streams.iter().filter(|s| s.live).count()
    }

    fn sorted_items(&self) -> Vec<Item> {
        let mut items: Vec<Item> = self
            .streams
            .iter()
            .enumerate()
            .flat_map(|(id, s)| (0..s.steps.min(s.items())).map(move |i| (id, i)))
            .collect();
        items.sort_unstable();
        items
    }

    /// The outputs stream `id` must have had in an indexed set: its items
    /// in order, then the end marker if it ended.
    fn log(&self, id: usize) -> Vec<Option<usize>> {
        let stream = &self.streams[id];
        let mut log: Vec<Option<usize>> = (0..stream.steps.min(stream.items())).map(Some).collect();
        if stream.steps > stream.items() {
            log.push(None);
        }
        log
    }
}

fn check(
    model: &Model,
    streams: &Side<StreamsUnordered<Scripted>>,
    reference: &Side<SelectAll<Scripted>>,
    indexed: &Side<IndexedStreamsUnordered<Scripted>>,
    context: &str,
) -> Result<(), TestCaseError> {
    let expected = model.sorted_items();
    prop_assert_eq!(
        reference.sorted_items(),
        expected.clone(),
        "select_all items, {}",
        context
    );
    prop_assert_eq!(
        streams.sorted_items(),
        expected.clone(),
        "StreamsUnordered items, {}",
        context
    );
    prop_assert_eq!(
        indexed.sorted_items(),
        expected,
        "IndexedStreamsUnordered items, {}",
        context
    );
    prop_assert_eq!(
        reference.set.length(),
        model.len(),
        "select_all len, {}",
        context
    );
    prop_assert_eq!(
        streams.set.length(),
        model.len(),
        "StreamsUnordered len, {}",
        context
    );
    prop_assert_eq!(
        indexed.set.length(),
        model.len(),
        "IndexedStreamsUnordered len, {}",
        context
    );
    for (id, key) in indexed.keys.iter().enumerate() {
        let key = key.expect("indexed sets give keys");
        let got = indexed.log.get(&key).cloned().unwrap_or_default();
        prop_assert_eq!(
            got,
            model.log(id),
            "outputs of stream {} ({:?}), {}",
            id,
            key,
            context
        );
    }
    prop_assert!(
        indexed
            .log
            .keys()
            .all(|key| indexed.keys.contains(&Some(*key))),
        "outputs under a key no insert returned"
    );
    Ok(())
}

fn run_script(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut streams = Side::<StreamsUnordered<Scripted>>::new();
    let mut reference = Side::<SelectAll<Scripted>>::new();
    let mut indexed = Side::<IndexedStreamsUnordered<Scripted>>::new();
    let drain = (0..12).flat_map(|_| [Op::WakeAll, Op::Poll]);
    for (step, op) in ops.iter().cloned().chain(drain).enumerate() {
        let expected = model.apply(&op);
        let results = [streams.apply(&op), reference.apply(&op), indexed.apply(&op)];
        prop_assert_eq!(
            results,
            [expected; 3],
            "cancel results at step {} ({:?})",
            step,
            op
        );
        check(
            &model,
            &streams,
            &reference,
            &indexed,
            &format!("after step {step} ({op:?})"),
        )?;
    }
    // Every stream needs at most 4 * 2 + 1 wakes, so the drain ended them.
    prop_assert_eq!(model.len(), 0);
    for keys in [&streams.keys, &indexed.keys] {
        let mut keys: Vec<Key> = keys.iter().flatten().copied().collect();
        keys.sort_unstable();
        keys.dedup();
        prop_assert_eq!(
            keys.len(),
            model.streams.len(),
            "a key was handed out twice"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn stream_sets_match_select_all_and_the_model(ops in vec(op(), 0..48)) {
        run_script(&ops)?;
    }
}

/// Cancelling a stream that has items ready but not yet polled, and one
/// that already ended, then clearing and reusing the set.
#[test]
fn cancel_ready_and_ended_streams_then_clear() {
    run_script(&[
        Op::Push {
            gates: vec![0, 1],
            end: 0,
        },
        Op::Push {
            gates: vec![0],
            end: 0,
        },
        Op::Push {
            gates: vec![1, 1, 1],
            end: 1,
        },
        Op::Poll,
        Op::WakeAll,
        Op::Cancel(0),
        Op::Cancel(1),
        Op::Poll,
        Op::Clear,
        Op::Push {
            gates: vec![0, 0],
            end: 1,
        },
        Op::Cancel(2),
        Op::WakeOne(3),
        Op::Poll,
    ])
    .unwrap();
}

/// A stream pushed and cancelled before any poll produces nothing.
#[test]
fn push_then_cancel_before_any_poll() {
    run_script(&[
        Op::Push {
            gates: vec![],
            end: 0,
        },
        Op::Push {
            gates: vec![0],
            end: 0,
        },
        Op::Cancel(1),
        Op::Poll,
    ])
    .unwrap();
}
