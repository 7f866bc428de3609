//! Keys, for every set type (`FuturesUnordered`, `StreamsUnordered`,
//! `IndexedStreamsUnordered`): `insert`, `contains`, `cancel`, `remove` and
//! `get_pin_mut` name exactly one child; a key of a child that finished, was
//! cancelled, removed or panicked never reaches the slot's next occupant;
//! cancellation mid-cycle, before the first poll, during wakes from another
//! thread and with a panicking `Drop`; and outputs carry their child's key.
//!
//! Every property is written once, generic over [`KeyedSet`], and run for
//! each set type by `for_each_set!` (one module per type).

use std::future::Future;
#[cfg(panic = "unwind")]
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::executor::block_on;
use futures::task::{noop_waker, waker, ArcWake};
use futures::{Stream, StreamExt};
use velodrome::{FuturesUnordered, IndexedStreamsUnordered, Key, StreamsUnordered};

/// What a [`Probe`] does when polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Store the waker, return `Pending`.
    Pending,
    /// Produce its value once: a future completes with it; a stream yields
    /// it as an item and goes back to `Pending`.
    Yield,
    /// Finish: a future completes with its value; a stream ends.
    Finish,
    /// Panic in `poll`.
    #[cfg(panic = "unwind")]
    Panic,
}

/// The test's handle on one probe: its script and what happened to it.
#[derive(Debug)]
struct ProbeState {
    tag: u32,
    mode: Mutex<Mode>,
    polls: AtomicUsize,
    drops: AtomicUsize,
    panic_on_drop: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl ProbeState {
    fn new(tag: u32) -> Arc<Self> {
        Arc::new(Self {
            tag,
            mode: Mutex::new(Mode::Pending),
            polls: AtomicUsize::new(0),
            drops: AtomicUsize::new(0),
            panic_on_drop: AtomicBool::new(false),
            waker: Mutex::new(None),
        })
    }

    fn child(self: &Arc<Self>) -> Probe {
        Probe {
            state: self.clone(),
            offset: 0,
        }
    }

    fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }

    fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Wakes the probe through the latest waker it stored (if it stored one).
    fn wake(&self) {
        if let Some(waker) = self.waker.lock().unwrap().as_ref() {
            waker.wake_by_ref();
        }
    }

    /// Switches the mode and wakes the probe so the set polls it.
    fn script(&self, mode: Mode) {
        self.set_mode(mode);
        self.wake();
    }

    fn stored_waker(&self) -> Waker {
        self.waker
            .lock()
            .unwrap()
            .clone()
            .expect("the probe was polled and stored a waker")
    }
}

/// A child that is both a `Future<Output = u32>` and a
/// `Stream<Item = u32>`, scripted through its [`ProbeState`]. Its value is
/// `tag + offset`; `offset` lives in the child itself, so changing it through
/// `get_pin_mut` shows the pin pointed at the child inside the set.
#[derive(Debug)]
struct Probe {
    state: Arc<ProbeState>,
    offset: u32,
}

impl Probe {
    fn tag(&self) -> u32 {
        self.state.tag
    }

    fn value(&self) -> u32 {
        self.state.tag + self.offset
    }

    /// Counts the poll and returns what to do.
    fn begin_poll(&self, cx: &Context<'_>) -> Mode {
        assert_eq!(self.state.drops(), 0, "a dropped probe was polled");
        self.state.polls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.state.mode.lock().unwrap();
        match mode {
            Mode::Pending => *self.state.waker.lock().unwrap() = Some(cx.waker().clone()),
            #[cfg(panic = "unwind")]
            Mode::Panic => panic!("probe {} panics in poll (on purpose)", self.tag()),
            Mode::Yield | Mode::Finish => {}
        }
        mode
    }
}

impl Future for Probe {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        match self.begin_poll(cx) {
            Mode::Pending => Poll::Pending,
            _ => Poll::Ready(self.value()),
        }
    }
}

impl Stream for Probe {
    type Item = u32;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
        match self.begin_poll(cx) {
            Mode::Pending => Poll::Pending,
            Mode::Yield => {
                self.state.set_mode(Mode::Pending);
                // Pending again from now on: store the waker as a pending
                // poll would, so the test can wake it for the next item.
                *self.state.waker.lock().unwrap() = Some(cx.waker().clone());
                Poll::Ready(Some(self.value()))
            }
            _ => Poll::Ready(None),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.state.drops.fetch_add(1, Ordering::SeqCst);
        if self.state.panic_on_drop.load(Ordering::SeqCst) {
            panic!("probe {} panics in Drop (on purpose)", self.tag());
        }
    }
}

/// One output of a set, whatever its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// A future's output or a stream's item, with the child's key.
    Output(Key, u32),
    /// `IndexedStreamsUnordered`'s end marker `(key, None)`.
    Ended(Key),
}

/// The keyed API of the three set types, over [`Probe`] children.
trait KeyedSet: Default + Sync {
    fn insert(&self, child: Probe) -> Key;
    fn contains(&self, key: Key) -> bool;
    fn cancel(&mut self, key: Key) -> bool;
    fn remove(&mut self, key: Key) -> Option<Probe>;
    fn get_pin_mut(&mut self, key: Key) -> Option<Pin<&mut Probe>>;
    fn len(&self) -> usize;
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>>;
    /// What the set yields when the child `key` finishes with `value`.
    fn finish_events(key: Key, value: u32) -> Vec<Event>;
}

macro_rules! impl_keyed_set {
    ($Set:ident, |$set:ident, $cx:ident| $poll:expr, |$key:ident, $value:ident| $finish:expr) => {
        impl KeyedSet for $Set<Probe> {
            fn insert(&self, child: Probe) -> Key {
                $Set::insert(self, child)
            }
            fn contains(&self, key: Key) -> bool {
                $Set::contains(self, key)
            }
            fn cancel(&mut self, key: Key) -> bool {
                $Set::cancel(self, key)
            }
            fn remove(&mut self, key: Key) -> Option<Probe> {
                $Set::remove(self, key)
            }
            fn get_pin_mut(&mut self, key: Key) -> Option<Pin<&mut Probe>> {
                $Set::get_pin_mut(self, key)
            }
            fn len(&self) -> usize {
                $Set::len(self)
            }
            fn poll_event(&mut self, $cx: &mut Context<'_>) -> Poll<Option<Event>> {
                let $set = self;
                $poll
            }
            fn finish_events($key: Key, $value: u32) -> Vec<Event> {
                $finish
            }
        }
    };
}

impl_keyed_set!(
    FuturesUnordered,
    |set, cx| set
        .poll_next_with_key(cx)
        .map(|next| next.map(|(key, value)| Event::Output(key, value))),
    |key, value| vec![Event::Output(key, value)]
);

impl_keyed_set!(
    StreamsUnordered,
    |set, cx| set
        .poll_next_with_key(cx)
        .map(|next| next.map(|(key, item)| Event::Output(key, item))),
    |_key, _value| Vec::new()
);

impl_keyed_set!(
    IndexedStreamsUnordered,
    |set, cx| set.poll_next_unpin(cx).map(|next| {
        next.map(|(key, item)| match item {
            Some(item) => Event::Output(key, item),
            None => Event::Ended(key),
        })
    }),
    |key, _value| vec![Event::Ended(key)]
);

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// One `poll_next` with a no-op parent waker.
fn poll_once<S: KeyedSet>(set: &mut S) -> Poll<Option<Event>> {
    let waker = noop_waker();
    set.poll_event(&mut Context::from_waker(&waker))
}

/// Polls until `Ready(None)` or a `Pending` without a self-wake during the
/// call; returns every event in order.
fn settle<S: KeyedSet>(set: &mut S) -> Vec<Event> {
    let parent = Arc::new(CountingWaker::default());
    let waker = waker(parent.clone());
    let mut cx = Context::from_waker(&waker);
    let mut events = Vec::new();
    for _ in 0..1_000 {
        let wakes_before = parent.0.load(Ordering::SeqCst);
        match set.poll_event(&mut cx) {
            Poll::Ready(Some(event)) => events.push(event),
            Poll::Ready(None) => return events,
            Poll::Pending if parent.0.load(Ordering::SeqCst) == wakes_before => return events,
            Poll::Pending => {}
        }
    }
    panic!("the set did not settle in 1,000 calls");
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

/// Inserts one pending probe per tag and returns the handles and keys.
fn insert_probes<S: KeyedSet>(
    set: &S,
    tags: std::ops::Range<u32>,
) -> (Vec<Arc<ProbeState>>, Vec<Key>) {
    let probes: Vec<_> = tags.map(ProbeState::new).collect();
    let keys = probes
        .iter()
        .map(|probe| set.insert(probe.child()))
        .collect();
    (probes, keys)
}

/// Asserts that `key` names nothing: every keyed operation misses.
fn assert_dead<S: KeyedSet>(set: &mut S, key: Key, context: &str) {
    assert!(!set.contains(key), "{context}: contains({key:?})");
    assert!(
        set.get_pin_mut(key).is_none(),
        "{context}: get_pin_mut({key:?})"
    );
    assert!(set.remove(key).is_none(), "{context}: remove({key:?})");
    assert!(!set.cancel(key), "{context}: cancel({key:?})");
}

/// Every keyed operation reaches exactly the child its key names:
/// `get_pin_mut` pins the child inside the set, `remove` hands it back
/// undropped, `cancel` drops it in place once, and neither touches the
/// others.
fn keyed_operations_reach_exactly_their_child<S: KeyedSet>() {
    let mut set = S::default();
    let (probes, keys) = insert_probes(&set, 0..5);
    assert_eq!(set.len(), 5);
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(key.index(), i, "a fresh set fills slots in order");
        assert!(set.contains(*key));
        assert_eq!(set.get_pin_mut(*key).expect("live child").tag(), i as u32);
    }
    // A change made through the pin shows in the child's output.
    set.get_pin_mut(keys[4]).unwrap().get_mut().offset = 100;

    let removed = set.remove(keys[1]).expect("remove hands the child back");
    assert_eq!(removed.tag(), 1);
    assert_eq!(
        probes[1].drops(),
        0,
        "remove moves the child out, undropped"
    );
    assert_eq!(set.len(), 4);
    assert_dead(&mut set, keys[1], "after remove");
    drop(removed);
    assert_eq!(probes[1].drops(), 1);

    assert!(set.cancel(keys[2]));
    assert_eq!(probes[2].drops(), 1, "cancel drops the child in place");
    assert_eq!(set.len(), 3);
    assert_dead(&mut set, keys[2], "after cancel");
    assert_eq!(probes[2].drops(), 1, "a second cancel drops nothing");

    for i in [0, 3, 4] {
        assert!(
            set.contains(keys[i]),
            "child {i} survives the others' removal"
        );
        assert_eq!(probes[i].drops(), 0);
    }
    assert!(settle(&mut set).is_empty());
    for i in [0, 3, 4] {
        assert_eq!(probes[i].polls(), 1);
    }
    assert_eq!(probes[1].polls() + probes[2].polls(), 0);

    let mut events = Vec::new();
    for i in [0, 3, 4] {
        probes[i].script(Mode::Finish);
        events.extend(settle(&mut set));
    }
    let expected: Vec<Event> = [(0, 0), (3, 3), (4, 104)]
        .into_iter()
        .flat_map(|(i, value)| S::finish_events(keys[i], value))
        .collect();
    assert_eq!(events, expected);
    assert_eq!(set.len(), 0);
    for key in &keys {
        assert_dead(&mut set, *key, "after every child is gone");
    }
    drop(set);
    for probe in &probes {
        assert_eq!(probe.drops(), 1, "probe {} dropped once", probe.tag);
    }
}

/// How a child leaves the set.
#[derive(Clone, Copy, Debug)]
enum Gone {
    Finished,
    Cancelled,
    Removed,
    #[cfg(panic = "unwind")]
    Panicked,
}

/// Makes the (polled, pending) child `key` leave the set in the way `how`.
fn make_gone<S: KeyedSet>(set: &mut S, key: Key, probe: &ProbeState, how: Gone) {
    let len = set.len();
    match how {
        Gone::Finished => {
            probe.script(Mode::Finish);
            assert_eq!(settle(set), S::finish_events(key, probe.tag));
        }
        Gone::Cancelled => assert!(set.cancel(key)),
        Gone::Removed => {
            let child = set.remove(key).expect("the child is live");
            assert_eq!(child.tag(), probe.tag);
        }
        #[cfg(panic = "unwind")]
        Gone::Panicked => {
            quiet_intended_panics();
            probe.script(Mode::Panic);
            let result = catch_unwind(AssertUnwindSafe(|| settle(set)));
            assert!(result.is_err(), "the probe's panic reaches the caller");
        }
    }
    assert_eq!(probe.drops(), 1, "{how:?}: the child is dropped once");
    assert_eq!(set.len(), len - 1, "{how:?}: len counts the child out");
}

/// A key of a child that is gone (finished, cancelled, removed or panicked)
/// never reaches the slot's next occupant: over 20 rounds of two reuses of
/// one slot (9 under Miri, whose cost grows with the square: still past the
/// 16 generations of the wakers' 4-bit tag), every old key misses while the
/// occupant of the slot and a neighbour are untouched.
fn key_of_gone_child_never_reaches_the_next_occupant<S: KeyedSet>(how: Gone) {
    let mut set = S::default();
    let neighbour = ProbeState::new(u32::MAX / 2);
    let neighbour_key = set.insert(neighbour.child());
    let mut stale: Vec<Key> = Vec::new();
    let mut slot = None;
    let rounds = if cfg!(miri) { 9 } else { 20 };
    for round in 0..rounds {
        let a = ProbeState::new(round);
        let key_a = set.insert(a.child());
        assert_eq!(
            *slot.get_or_insert(key_a.index()),
            key_a.index(),
            "slot reused"
        );
        assert!(!stale.contains(&key_a), "a key was handed out twice");
        assert!(settle(&mut set).is_empty());
        assert_eq!(a.polls(), 1);
        make_gone(&mut set, key_a, &a, how);
        stale.push(key_a);

        let b = ProbeState::new(1_000 + round);
        let key_b = set.insert(b.child());
        assert_eq!(key_b.index(), key_a.index(), "B reuses A's slot");
        assert_ne!(key_b, key_a);
        assert!(!stale.contains(&key_b), "a key was handed out twice");
        for &old in &stale {
            assert_dead(&mut set, old, &format!("{how:?}, round {round}"));
        }
        assert!(set.contains(key_b), "old keys did not cancel B");
        assert_eq!(b.drops(), 0);
        assert_eq!(set.get_pin_mut(key_b).unwrap().tag(), b.tag);
        assert_eq!(set.len(), 2);
        assert!(settle(&mut set).is_empty());
        assert_eq!(b.polls(), 1, "B is polled as a new child");
        b.script(Mode::Finish);
        assert_eq!(settle(&mut set), S::finish_events(key_b, b.tag));
        assert_eq!(b.drops(), 1);
        assert_eq!(a.drops(), 1, "A is dropped once in all");
        stale.push(key_b);
    }
    assert!(set.contains(neighbour_key));
    assert_eq!(neighbour.polls(), 1);
    assert_eq!(neighbour.drops(), 0);
}

/// A child woken but not yet polled in the cycle the set is working through
/// (the call before returned an output mid-cycle) is never polled once
/// cancelled; the rest of the cycle is.
fn cancelled_mid_cycle_child_is_never_polled_again<S: KeyedSet>() {
    let mut set = S::default();
    let (probes, keys) = insert_probes(&set, 0..6);
    assert!(settle(&mut set).is_empty());
    probes[0].set_mode(Mode::Yield);
    probes.iter().for_each(|probe| probe.wake());

    // One call: the cycle starts, and stops at the first output.
    assert_eq!(
        poll_once(&mut set),
        Poll::Ready(Some(Event::Output(keys[0], 0)))
    );
    let due: Vec<usize> = (1..6).filter(|&i| probes[i].polls() == 1).collect();
    assert!(!due.is_empty(), "the cycle stopped before its end");
    let victim = due[due.len() / 2];
    assert!(set.cancel(keys[victim]));
    assert_eq!(probes[victim].drops(), 1);
    // Its stale waker must not bring it (or its slot) back either.
    probes[victim].wake();

    assert!(settle(&mut set).is_empty());
    for (i, probe) in probes.iter().enumerate().skip(1) {
        let expected = if i == victim { 1 } else { 2 };
        assert_eq!(
            probe.polls(),
            expected,
            "polls of child {i} (victim {victim})"
        );
    }
    // Five left, less the first child if producing its output finished it.
    assert_eq!(set.len(), 4 + usize::from(set.contains(keys[0])));
}

/// A child woken (queued for the next cycle) and cancelled before that cycle
/// is never polled; the other woken children are, once each.
fn cancelled_queued_child_is_never_polled_again<S: KeyedSet>() {
    let mut set = S::default();
    let (probes, keys) = insert_probes(&set, 0..6);
    assert!(settle(&mut set).is_empty());
    probes.iter().for_each(|probe| probe.wake());
    assert!(set.cancel(keys[3]));
    assert!(settle(&mut set).is_empty());
    let polls: Vec<usize> = probes.iter().map(|probe| probe.polls()).collect();
    assert_eq!(polls, [2, 2, 2, 1, 2, 2]);
    assert_eq!(set.len(), 5);
}

/// While another thread keeps waking a child through its waker, the set
/// cancels it: the child is dropped exactly once, never polled again, and
/// the wakes that keep coming (now stale) touch neither the set's other
/// children nor the new occupant of the slot in a harmful way.
fn cancel_while_another_thread_keeps_waking<S: KeyedSet>() {
    let rounds = if cfg!(miri) { 8 } else { 200 };
    let mut set = S::default();
    let (probes, keys) = insert_probes(&set, 0..3);
    assert!(settle(&mut set).is_empty());
    let victim = &probes[1];
    let victim_waker = victim.stored_waker();
    let stop = AtomicBool::new(false);
    let (started_tx, started_rx) = mpsc::channel();

    std::thread::scope(|scope| {
        let waking = scope.spawn(|| {
            let mut wakes = 0_usize;
            while !stop.load(Ordering::SeqCst) {
                victim_waker.wake_by_ref();
                wakes += 1;
                if wakes == 1 {
                    started_tx.send(()).unwrap();
                }
                std::thread::yield_now();
            }
            wakes
        });
        started_rx.recv().unwrap();
        // The wake has arrived: the next poll polls the victim.
        let _ = poll_once(&mut set);
        assert!(victim.polls() >= 2, "the victim is being woken");
        assert!(set.cancel(keys[1]));
        assert_eq!(victim.drops(), 1);
        let polls_at_cancel = victim.polls();

        let next = ProbeState::new(7);
        let next_key = set.insert(next.child());
        assert_eq!(next_key.index(), keys[1].index(), "the slot is reused");
        for _ in 0..rounds {
            let _ = poll_once(&mut set);
            assert_eq!(
                victim.polls(),
                polls_at_cancel,
                "the cancelled child was polled"
            );
            assert!(!set.contains(keys[1]));
            assert!(set.contains(next_key));
        }
        stop.store(true, Ordering::SeqCst);
        let wakes = waking.join().expect("waking thread panicked");
        assert!(wakes >= 1);
        assert_eq!(victim.drops(), 1);
        assert_eq!(next.drops(), 0);
        assert!(next.polls() >= 1, "the new occupant is polled");
    });
    drop(victim_waker);
    assert_eq!(set.len(), 3);
    for i in [0, 2] {
        assert!(set.contains(keys[i]));
        assert_eq!(probes[i].polls(), 1, "a child nobody woke was polled");
    }
    drop(set);
    assert_eq!(victim.drops(), 1, "dropped exactly once");
    assert!(probes.iter().all(|probe| probe.drops() == 1));
}

/// Every output carries the key of the child it came from, also after slots
/// have been reused by new children.
fn outputs_carry_the_key_of_their_child<S: KeyedSet>() {
    let mut set = S::default();
    for batch in 0..3 {
        let (probes, keys) = insert_probes(&set, batch * 10..batch * 10 + 8);
        assert!(settle(&mut set).is_empty());
        for (probe, key) in probes.iter().zip(&keys).rev() {
            probe.script(Mode::Yield);
            assert_eq!(settle(&mut set), [Event::Output(*key, probe.tag)]);
        }
        for (probe, key) in probes.iter().zip(&keys) {
            if set.contains(*key) {
                // Streams live on after an item.
                probe.script(Mode::Finish);
                assert_eq!(settle(&mut set), S::finish_events(*key, probe.tag));
            }
        }
        assert_eq!(set.len(), 0);
    }
}

/// Children pushed through `&self` (from several threads) can be found,
/// pinned and cancelled before the set was ever polled; a cancelled one is
/// never polled and its slot goes to the next push.
fn pushed_through_shared_ref_then_cancelled_before_any_poll<S: KeyedSet>() {
    let mut set = S::default();
    let probes: Vec<_> = (0..4).map(ProbeState::new).collect();
    let shared = &set;
    let keys: Vec<Key> = std::thread::scope(|scope| {
        let handles: Vec<_> = probes
            .iter()
            .map(|probe| scope.spawn(move || shared.insert(probe.child())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(set.len(), 4);
    for (probe, key) in probes.iter().zip(&keys) {
        assert!(
            set.contains(*key),
            "a pushed child is found before any poll"
        );
        assert_eq!(set.get_pin_mut(*key).unwrap().tag(), probe.tag);
    }
    assert!(set.cancel(keys[1]));
    assert_eq!(probes[1].drops(), 1);
    assert_eq!(set.len(), 3);
    assert_dead(&mut set, keys[1], "cancelled before any poll");

    let late = ProbeState::new(9);
    let late_key = set.insert(late.child());
    assert_eq!(late_key.index(), keys[1].index());
    assert!(
        set.cancel(late_key),
        "a push right after a cancel, cancelled"
    );
    assert_eq!(late.drops(), 1);

    assert!(settle(&mut set).is_empty());
    let polls: Vec<usize> = probes.iter().map(|probe| probe.polls()).collect();
    assert_eq!(polls, [1, 0, 1, 1]);
    assert_eq!(late.polls(), 0);
    assert_eq!(set.len(), 3);
}

/// A child whose `Drop` panics during `cancel`: the panic reaches the
/// caller, the child was dropped once, `len` is right, its key is dead, and
/// the other children and later pushes are unaffected.
#[cfg(panic = "unwind")]
fn panicking_drop_during_cancel_leaves_the_set_usable<S: KeyedSet>() {
    quiet_intended_panics();
    let mut set = S::default();
    let (probes, keys) = insert_probes(&set, 0..5);
    assert!(settle(&mut set).is_empty());
    probes[2].panic_on_drop.store(true, Ordering::SeqCst);
    let result = catch_unwind(AssertUnwindSafe(|| set.cancel(keys[2])));
    assert!(result.is_err(), "the Drop panic propagates out of cancel");
    assert_eq!(probes[2].drops(), 1);
    assert_eq!(set.len(), 4);
    assert_dead(&mut set, keys[2], "after a panicking cancel");
    assert_eq!(probes[2].drops(), 1, "no second drop");

    let next = ProbeState::new(50);
    let next_key = set.insert(next.child());
    assert_eq!(next_key.index(), keys[2].index(), "the slot is reused");
    probes.iter().for_each(|probe| probe.wake());
    assert!(settle(&mut set).is_empty());
    let polls: Vec<usize> = probes.iter().map(|probe| probe.polls()).collect();
    assert_eq!(polls, [2, 2, 1, 2, 2]);
    assert_eq!(next.polls(), 1);

    let mut events = Vec::new();
    let mut expected = Vec::new();
    for (probe, key) in probes.iter().zip(&keys).chain([(&next, &next_key)]) {
        if *key != keys[2] {
            probe.script(Mode::Finish);
            events.extend(settle(&mut set));
            expected.extend(S::finish_events(*key, probe.tag));
        }
    }
    assert_eq!(events, expected);
    assert_eq!(set.len(), 0);
    drop(set);
    assert!(probes.iter().all(|probe| probe.drops() == 1));
    assert_eq!(next.drops(), 1);
}

/// A child whose `Drop` panics when it finishes (the set drops it after its
/// last poll): the panic reaches the caller, the child was dropped once,
/// its key is dead, and the others keep working.
#[cfg(panic = "unwind")]
fn panicking_drop_of_a_finishing_child_leaves_the_set_usable<S: KeyedSet>() {
    quiet_intended_panics();
    let mut set = S::default();
    let (probes, keys) = insert_probes(&set, 0..3);
    assert!(settle(&mut set).is_empty());
    probes[1].panic_on_drop.store(true, Ordering::SeqCst);
    probes[1].script(Mode::Finish);
    let result = catch_unwind(AssertUnwindSafe(|| settle(&mut set)));
    assert!(result.is_err(), "the Drop panic reaches the caller");
    assert_eq!(probes[1].drops(), 1);
    assert_eq!(set.len(), 2);
    assert_dead(&mut set, keys[1], "after a panicking drop on finish");
    assert_eq!(probes[1].drops(), 1, "no second drop");
    for i in [0, 2] {
        probes[i].script(Mode::Finish);
        assert_eq!(settle(&mut set), S::finish_events(keys[i], probes[i].tag));
    }
    assert_eq!(set.len(), 0);
    assert!(probes.iter().all(|probe| probe.drops() == 1));
}

/// A child that panics in `poll` is dropped and removed before the panic
/// reaches the caller; its key is dead, and the others keep working.
#[cfg(panic = "unwind")]
fn child_panicking_in_poll_is_removed_and_its_key_is_dead<S: KeyedSet>() {
    quiet_intended_panics();
    let mut set = S::default();
    let (probes, keys) = insert_probes(&set, 0..4);
    assert!(settle(&mut set).is_empty());
    probes[1].script(Mode::Panic);
    probes[3].wake();
    let result = catch_unwind(AssertUnwindSafe(|| settle(&mut set)));
    assert!(result.is_err(), "the child's panic reaches the caller");
    assert_eq!(probes[1].drops(), 1);
    assert_eq!(set.len(), 3);
    assert_dead(&mut set, keys[1], "after a panic in poll");

    // The rest of the cycle still runs; the panicked child is not polled.
    assert!(settle(&mut set).is_empty());
    assert_eq!(probes[1].polls(), 2);
    assert_eq!(probes[3].polls(), 2);
    assert_eq!(
        probes[0].polls() + probes[2].polls(),
        2,
        "unwoken children rest"
    );
    let next = ProbeState::new(8);
    let next_key = set.insert(next.child());
    assert_eq!(next_key.index(), keys[1].index());
    assert_dead(&mut set, keys[1], "after the slot was reused");
    assert!(set.contains(next_key));
    for (probe, key) in probes.iter().zip(&keys).chain([(&next, &next_key)]) {
        if *key != keys[1] {
            probe.script(Mode::Finish);
            assert_eq!(settle(&mut set), S::finish_events(*key, probe.tag));
        }
    }
    assert_eq!(set.len(), 0);
}

macro_rules! for_each_set {
    ($($(#[$attr:meta])* $test:ident;)*) => {
        for_each_set!(@module futures_unordered, FuturesUnordered; $($(#[$attr])* $test;)*);
        for_each_set!(@module streams_unordered, StreamsUnordered; $($(#[$attr])* $test;)*);
        for_each_set!(@module indexed_streams_unordered, IndexedStreamsUnordered; $($(#[$attr])* $test;)*);
    };
    (@module $module:ident, $Set:ident; $($(#[$attr:meta])* $test:ident;)*) => {
        mod $module {
            use super::*;

            $(
                $(#[$attr])*
                #[test]
                fn $test() {
                    super::$test::<$Set<Probe>>();
                }
            )*
        }
    };
}

// One test per way of leaving the set.

fn key_of_finished_child_never_reaches_the_next_occupant<S: KeyedSet>() {
    key_of_gone_child_never_reaches_the_next_occupant::<S>(Gone::Finished);
}

fn key_of_cancelled_child_never_reaches_the_next_occupant<S: KeyedSet>() {
    key_of_gone_child_never_reaches_the_next_occupant::<S>(Gone::Cancelled);
}

fn key_of_removed_child_never_reaches_the_next_occupant<S: KeyedSet>() {
    key_of_gone_child_never_reaches_the_next_occupant::<S>(Gone::Removed);
}

#[cfg(panic = "unwind")]
fn key_of_panicked_child_never_reaches_the_next_occupant<S: KeyedSet>() {
    key_of_gone_child_never_reaches_the_next_occupant::<S>(Gone::Panicked);
}

for_each_set! {
    keyed_operations_reach_exactly_their_child;
    key_of_finished_child_never_reaches_the_next_occupant;
    key_of_cancelled_child_never_reaches_the_next_occupant;
    key_of_removed_child_never_reaches_the_next_occupant;
    #[cfg(panic = "unwind")]
    key_of_panicked_child_never_reaches_the_next_occupant;
    cancelled_mid_cycle_child_is_never_polled_again;
    cancelled_queued_child_is_never_polled_again;
    cancel_while_another_thread_keeps_waking;
    outputs_carry_the_key_of_their_child;
    pushed_through_shared_ref_then_cancelled_before_any_poll;
    #[cfg(panic = "unwind")]
    panicking_drop_during_cancel_leaves_the_set_usable;
    #[cfg(panic = "unwind")]
    panicking_drop_of_a_finishing_child_leaves_the_set_usable;
    #[cfg(panic = "unwind")]
    child_panicking_in_poll_is_removed_and_its_key_is_dead;
}

/// `with_keys` pairs each future's output with its key, across slot reuse.
#[test]
fn with_keys_pairs_each_output_with_its_key() {
    let mut set = FuturesUnordered::new();
    let mut seen_keys = Vec::new();
    for batch in 0..3_u32 {
        let expected: Vec<(Key, u32)> = (0..6)
            .map(|i| {
                let value = batch * 100 + i;
                (set.insert(futures::future::ready(value)), value)
            })
            .collect();
        let mut got: Vec<(Key, u32)> = block_on(set.with_keys().collect());
        got.sort_unstable_by_key(|(_, value)| *value);
        assert_eq!(got, expected);
        for (key, _) in &expected {
            assert!(!seen_keys.contains(key), "keys are never reused");
            seen_keys.push(*key);
        }
    }
}

/// `StreamsUnordered::poll_next_with_key` pairs each item with the key of
/// its stream, in the stream's order.
#[test]
fn poll_next_with_key_pairs_each_item_with_its_stream() {
    let mut set = StreamsUnordered::new();
    let keys: Vec<Key> = (0..5_u32)
        .map(|s| set.insert(futures::stream::iter((0..=s).map(move |i| (s, i)))))
        .collect();
    let mut per_stream: Vec<Vec<u32>> = vec![Vec::new(); keys.len()];
    while let Some((key, (s, i))) =
        block_on(futures::future::poll_fn(|cx| set.poll_next_with_key(cx)))
    {
        assert_eq!(
            key, keys[s as usize],
            "item of stream {s} came with another key"
        );
        per_stream[s as usize].push(i);
    }
    for (s, items) in per_stream.iter().enumerate() {
        assert_eq!(*items, (0..=s as u32).collect::<Vec<_>>());
    }
}
