//! Iteration order: every set's iterators yield the most recently pushed
//! child first, exactly as futures-util's `FuturesUnordered` does (its
//! intrusive list links each push at the head), whatever slots the children
//! reuse and whether the pushes were adopted by a poll yet.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::task::noop_waker_ref;
use futures::Stream;
use proptest::prelude::*;

/// A child that finishes once its `ready` flag is set; it keeps its latest
/// waker so the test can wake it, as a timer or socket would.
struct Child {
    id: u32,
    ready: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
}

impl Future for Child {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.ready.get() {
            return Poll::Ready(self.id);
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// One child's handles, shared by the copy in each set.
#[derive(Default)]
struct Handles {
    ready: Rc<Cell<bool>>,
    wakers: [Rc<RefCell<Option<Waker>>>; 2],
}

impl Handles {
    fn child(&self, id: u32, set: usize) -> Child {
        Child {
            id,
            ready: self.ready.clone(),
            waker: self.wakers[set].clone(),
        }
    }

    fn finish(&self) {
        self.ready.set(true);
        for waker in &self.wakers {
            if let Some(waker) = waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push,
    /// Finish the live child at this position of the live list (modulo).
    Finish(usize),
    /// Poll both sets until they are idle.
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Push),
        2 => any::<usize>().prop_map(Op::Finish),
        2 => Just(Op::Drain),
    ]
}

fn drain<S: Stream<Item = u32> + Unpin>(set: &mut S) -> Vec<u32> {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut out = Vec::new();
    // A few rounds: velodrome's cycle rule may return `Pending` with work
    // left (it woke the task), futures-util yields after 32 polls.
    for _ in 0..4 {
        while let Poll::Ready(Some(id)) = Pin::new(&mut *set).poll_next(&mut cx) {
            out.push(id);
        }
    }
    out.sort_unstable();
    out
}

fn ids<'a>(iter: impl Iterator<Item = &'a Child>) -> Vec<u32> {
    iter.map(|child| child.id).collect()
}

fn check_orders(
    ours: &mut velodrome::FuturesUnordered<Child>,
    theirs: &mut futures::stream::FuturesUnordered<Child>,
) {
    let expected = ids(theirs.iter());
    assert_eq!(ids(ours.iter()), expected, "iter");
    assert_eq!(ids(ours.iter_mut().map(|c| &*c)), expected, "iter_mut");
    assert_eq!(
        ids(Pin::new(&*ours).iter_pin_ref().map(Pin::get_ref)),
        expected,
        "iter_pin_ref"
    );
    assert_eq!(
        ids(Pin::new(&mut *ours).iter_pin_mut().map(|c| &*c.get_mut())),
        expected,
        "iter_pin_mut"
    );
    assert_eq!(ids((&*ours).into_iter()), expected, "&set into_iter");
}

fn run(ops: &[Op]) {
    let mut ours = velodrome::FuturesUnordered::new();
    let mut theirs = futures::stream::FuturesUnordered::new();
    let mut live: Vec<(u32, Handles)> = Vec::new();
    let mut next_id = 0;
    for op in ops {
        match op {
            Op::Push => {
                let handles = Handles::default();
                ours.push(handles.child(next_id, 0));
                theirs.push(handles.child(next_id, 1));
                live.push((next_id, handles));
                next_id += 1;
            }
            Op::Finish(at) if !live.is_empty() => {
                let (_, handles) = live.remove(at % live.len());
                handles.finish();
            }
            Op::Finish(_) => {}
            Op::Drain => assert_eq!(drain(&mut ours), drain(&mut theirs)),
        }
        check_orders(&mut ours, &mut theirs);
    }
    let expected: Vec<u32> = theirs.into_iter().map(|child| child.id).collect();
    assert_eq!(
        ours.into_iter().map(|child| child.id).collect::<Vec<_>>(),
        expected,
        "into_iter"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        // Under Miri's isolation there is no `getcwd`, which proptest's
        // failure file needs before the first case.
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    })]

    #[test]
    fn iterators_match_futures_util_order(ops in prop::collection::vec(op(), 1..if cfg!(miri) { 24 } else { 120 })) {
        run(&ops);
    }
}

#[test]
fn newest_child_comes_first_after_slot_reuse() {
    // Push 0..4, finish 1 and 2 (their slots are freed), push 4 and 5 into
    // those slots: futures-util yields 5, 4, 3, 0.
    let ops = [
        Op::Push,
        Op::Push,
        Op::Push,
        Op::Push,
        Op::Drain,
        Op::Finish(1),
        Op::Finish(1),
        Op::Drain,
        Op::Push,
        Op::Push,
    ];
    run(&ops);
    let set = velodrome::FuturesUnordered::new();
    for id in 0..3 {
        set.push(std::future::ready(id));
    }
    let order: Vec<_> = set.into_iter().map(|ready| ready.into_inner()).collect();
    assert_eq!(order, [2, 1, 0]);
}

/// A stream of `left` copies of its id.
struct IdStream {
    id: u32,
    left: u32,
}

impl Stream for IdStream {
    type Item = u32;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(self.id))
    }
}

#[test]
fn streams_iterate_newest_first() {
    let mut set = velodrome::StreamsUnordered::new();
    for id in 0..4 {
        set.push(IdStream { id, left: 2 });
    }
    set.push(IdStream { id: 4, left: 0 });
    assert_eq!(set.len(), 5);
    assert_eq!(
        set.iter().map(|s| s.id).collect::<Vec<_>>(),
        [4, 3, 2, 1, 0]
    );
    // Streams that yield stay where they are in the push order (they are
    // not re-pushed); the one that ends frees its slot for the next push.
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut polls = 0;
    while set.len() == 5 && polls < 16 {
        let _ = Pin::new(&mut set).poll_next(&mut cx);
        polls += 1;
    }
    let left: Vec<u32> = set.iter().map(|s| s.id).collect();
    assert_eq!(left, [3, 2, 1, 0], "the empty stream ended");
    set.push(IdStream { id: 9, left: 1 });
    let order: Vec<u32> = set.iter_mut().map(|s| s.id).collect();
    assert_eq!(order[0], 9, "the newest stream comes first");
    assert_eq!(&order[1..], &left[..]);
    let indexed = velodrome::IndexedStreamsUnordered::new();
    for id in 0..3 {
        indexed.push(IdStream { id, left: 1 });
    }
    let order: Vec<u32> = indexed.into_iter().map(|s| s.id).collect();
    assert_eq!(order, [2, 1, 0]);
}
