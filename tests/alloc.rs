//! Allocation behaviour, measured with a counting global allocator: no
//! allocation per wake, none per push into a reused slot, none per poll in
//! steady state.
//!
//! The counter is a `const`-initialised thread-local `Cell`, so it needs no
//! allocation or destructor registration of its own, and each test only sees
//! the allocations of its own thread (the harness runs tests in parallel).
//! This also works under Miri, which supports custom global allocators and
//! `const` thread-locals, so nothing here is skipped there; sizes shrink.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::future::{ready, Ready};
use futures::task::noop_waker;
use futures::StreamExt;
use velodrome::FuturesUnordered;

mod common;

use common::allocations_during;

/// A child that stays pending, storing its waker; it wakes itself on every
/// poll if `spin`.
struct Idle {
    spin: bool,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Future for Idle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut slot = self.waker.lock().unwrap();
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
        if self.spin {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

#[test]
fn probe_counts_allocations_on_this_thread() {
    let (allocations, boxed) = allocations_during(|| Box::new(7_u64));
    assert_eq!(allocations, 1, "the counting allocator is not in use");
    drop(boxed);
}

#[test]
fn waking_a_child_does_not_allocate() {
    let children = if cfg!(miri) { 8 } else { 64 };
    let wakes = if cfg!(miri) { 50 } else { 1_000 };
    let slots: Vec<_> = (0..children)
        .map(|_| Arc::new(Mutex::new(None::<Waker>)))
        .collect();
    let mut set: FuturesUnordered<Idle> = slots
        .iter()
        .map(|slot| Idle {
            spin: false,
            waker: slot.clone(),
        })
        .collect();
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    for _ in 0..3 {
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    }
    let child_wakers: Vec<Waker> = slots
        .iter()
        .map(|slot| slot.lock().unwrap().clone().expect("child was polled"))
        .collect();
    // Warm up: one full wake/poll round.
    child_wakers.iter().for_each(Waker::wake_by_ref);
    for _ in 0..3 {
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    }

    let (allocations, ()) = allocations_during(|| {
        for i in 0..wakes {
            let waker = &child_wakers[i % children];
            let clone = waker.clone();
            clone.wake_by_ref();
            drop(clone);
            let owned = waker.clone();
            owned.wake(); // the consuming wake path
            waker.wake_by_ref();
        }
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {wakes} rounds of clone + wake_by_ref + wake + drop"
    );
}

#[test]
fn push_into_reused_slot_does_not_allocate() {
    let children: u64 = if cfg!(miri) { 32 } else { 1_024 };
    let mut set = FuturesUnordered::<Ready<u64>>::new();
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    let mut round = |set: &mut FuturesUnordered<Ready<u64>>| {
        for value in 0..children {
            set.push(ready(value));
        }
        let mut sum = 0;
        loop {
            match set.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(value)) => sum += value,
                Poll::Ready(None) => break,
                Poll::Pending => {}
            }
        }
        sum
    };
    let expected = children * (children - 1) / 2;
    assert_eq!(round(&mut set), expected, "first round (may allocate)");
    for again in 1..=2 {
        let (allocations, sum) = allocations_during(|| round(&mut set));
        assert_eq!(sum, expected);
        assert_eq!(
            allocations, 0,
            "round {again}: {allocations} allocations to push and drain {children} children \
             into slots freed by the previous round"
        );
    }
}

#[test]
fn steady_state_poll_does_not_allocate() {
    let children = if cfg!(miri) { 8 } else { 64 };
    let calls = if cfg!(miri) { 20 } else { 1_000 };
    let mut set: FuturesUnordered<Idle> = (0..children)
        .map(|i| Idle {
            spin: i % 2 == 0,
            waker: Arc::new(Mutex::new(None)),
        })
        .collect();
    let external: Vec<Waker> = {
        let noop = noop_waker();
        let mut cx = Context::from_waker(&noop);
        let mut calls = 0;
        while set
            .iter()
            .any(|child| child.waker.lock().unwrap().is_none())
        {
            calls += 1;
            assert!(calls < 1_000, "some child was never polled");
            assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
        }
        for _ in 0..10 {
            assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
        }
        set.iter()
            .filter(|child| !child.spin)
            .map(|child| child.waker.lock().unwrap().clone().unwrap())
            .collect()
    };
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    let (allocations, ()) = allocations_during(|| {
        for call in 0..calls {
            // Half the children spin; also wake one of the others per call.
            external[call % external.len()].wake_by_ref();
            assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
        }
    });
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {calls} steady-state poll_next calls"
    );
}
