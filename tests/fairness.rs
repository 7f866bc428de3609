//! Fairness: each child is polled at most once per polling cycle, a cycle
//! serves the children woken before it started, and a cycle without output
//! ends the call with `Pending` and a self-wake instead of spinning.
//!
//! Every test drives `poll_next` by hand, so "one call" is observable: a
//! child polled twice inside one `poll_next` call was polled twice in one
//! cycle (the engine never starts a second cycle in a call whose cycle
//! produced no output, and returns as soon as a child completes).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::task::{noop_waker, waker, ArcWake};
use futures::StreamExt;
use velodrome::FuturesUnordered;

/// A waker that counts how often it was woken.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A child that wakes itself `wakes` times (one per poll) and then completes
/// with its `tag`; `wakes == usize::MAX` wakes itself forever. Its polls are
/// counted in `polls[tag]`.
struct SelfWaking {
    tag: usize,
    wakes_left: usize,
    polls: Arc<Vec<AtomicUsize>>,
}

impl Future for SelfWaking {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls[self.tag].fetch_add(1, Ordering::SeqCst);
        if self.wakes_left == 0 {
            return Poll::Ready(self.tag);
        }
        if self.wakes_left != usize::MAX {
            self.wakes_left -= 1;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn snapshot(polls: &[AtomicUsize]) -> Vec<usize> {
    polls.iter().map(|p| p.load(Ordering::SeqCst)).collect()
}

/// One child that always wakes itself and ten that wake themselves three
/// times: no child is polled twice in one `poll_next` call, and the ten all
/// finish although the spinner never stops.
#[test]
fn polled_only_once_at_most_per_cycle() {
    const SPINNER: usize = 10;
    let polls: Arc<Vec<AtomicUsize>> =
        Arc::new((0..=SPINNER).map(|_| AtomicUsize::new(0)).collect());
    let mut set = FuturesUnordered::new();
    for tag in 0..SPINNER {
        set.push(SelfWaking {
            tag,
            wakes_left: 3,
            polls: polls.clone(),
        });
    }
    set.push(SelfWaking {
        tag: SPINNER,
        wakes_left: usize::MAX,
        polls: polls.clone(),
    });

    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut finished = Vec::new();
    let mut calls = 0;
    while finished.len() < SPINNER {
        calls += 1;
        assert!(
            calls <= 1_000,
            "the ten children did not finish: {finished:?}"
        );
        let before = snapshot(&polls);
        let result = set.poll_next_unpin(&mut cx);
        let after = snapshot(&polls);
        for (tag, (b, a)) in before.iter().zip(&after).enumerate() {
            assert!(
                a - b <= 1,
                "child {tag} polled {} times in call {calls} ({result:?})",
                a - b
            );
        }
        match result {
            Poll::Ready(Some(tag)) => finished.push(tag),
            Poll::Ready(None) => panic!("the spinner never completes"),
            Poll::Pending => {}
        }
    }
    finished.sort_unstable();
    assert_eq!(finished, (0..SPINNER).collect::<Vec<_>>());
    for (tag, count) in snapshot(&polls).iter().enumerate().take(SPINNER) {
        assert_eq!(
            *count, 4,
            "child {tag}: three pending polls and the final one"
        );
    }
    assert_eq!(set.len(), 1, "only the spinner is left");
}

/// The spinner cannot monopolise the set: while ten children need three
/// self-wakes each, the spinner gets no more polls than cycles run, so it is
/// polled at most about as often as any other child.
#[test]
fn self_waking_child_gets_no_more_polls_than_others() {
    const SPINNER: usize = 10;
    let polls: Arc<Vec<AtomicUsize>> =
        Arc::new((0..=SPINNER).map(|_| AtomicUsize::new(0)).collect());
    let mut set = FuturesUnordered::new();
    set.push(SelfWaking {
        tag: SPINNER,
        wakes_left: usize::MAX,
        polls: polls.clone(),
    });
    for tag in 0..SPINNER {
        set.push(SelfWaking {
            tag,
            wakes_left: 3,
            polls: polls.clone(),
        });
    }
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut finished = 0;
    for _ in 0..1_000 {
        if let Poll::Ready(Some(_)) = set.poll_next_unpin(&mut cx) {
            finished += 1;
            if finished == SPINNER {
                break;
            }
        }
    }
    assert_eq!(finished, SPINNER);
    let spinner_polls = polls[SPINNER].load(Ordering::SeqCst);
    // Each of the four cycles a ten-child needs polls the spinner once; the
    // spinner may also lead or trail by one cycle.
    assert!(
        spinner_polls <= 5,
        "spinner polled {spinner_polls} times while the others needed 4 polls each"
    );
}

/// A child that returns `Pending` forever, counting polls, and on its poll
/// wakes the stored waker of another child (once).
struct WakesOther {
    polls: Arc<AtomicUsize>,
    own_waker: Arc<Mutex<Option<Waker>>>,
    wake_on_poll: Option<Arc<Mutex<Option<Waker>>>>,
}

impl Future for WakesOther {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        *self.own_waker.lock().unwrap() = Some(cx.waker().clone());
        if let Some(target) = self.wake_on_poll.take() {
            if let Some(w) = target.lock().unwrap().take() {
                w.wake();
            }
        }
        Poll::Pending
    }
}

/// A wake that arrives during a cycle is served in the next cycle (the next
/// `poll_next` call), not in the current one.
#[test]
fn wake_during_cycle_is_served_in_next_cycle() {
    let target_polls = Arc::new(AtomicUsize::new(0));
    let target_waker = Arc::new(Mutex::new(None));
    let waker_polls = Arc::new(AtomicUsize::new(0));
    let waker_waker = Arc::new(Mutex::new(None));
    let mut set = FuturesUnordered::new();
    set.push(WakesOther {
        polls: target_polls.clone(),
        own_waker: target_waker.clone(),
        wake_on_poll: None,
    });
    set.push(WakesOther {
        polls: waker_polls.clone(),
        own_waker: waker_waker.clone(),
        wake_on_poll: None,
    });
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!(target_polls.load(Ordering::SeqCst), 1);
    assert_eq!(waker_polls.load(Ordering::SeqCst), 1);

    // Arm the second child to wake the first during its next poll, then wake
    // only the second.
    for child in set.iter_mut() {
        if Arc::ptr_eq(&child.polls, &waker_polls) {
            child.wake_on_poll = Some(target_waker.clone());
        }
    }
    waker_waker.lock().unwrap().take().unwrap().wake();

    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!(waker_polls.load(Ordering::SeqCst), 2);
    assert_eq!(
        target_polls.load(Ordering::SeqCst),
        1,
        "a child woken during the cycle was polled in the same cycle"
    );
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!(
        target_polls.load(Ordering::SeqCst),
        2,
        "the wake is served by the next cycle"
    );
    assert_eq!(waker_polls.load(Ordering::SeqCst), 2);
}

/// A child pushed between two calls is polled by the next `poll_next`.
#[test]
fn pushed_child_is_polled_by_next_poll_next() {
    let polls = Arc::new(AtomicUsize::new(0));
    let mut set = FuturesUnordered::new();
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    for expected in 1..=3 {
        set.push(WakesOther {
            polls: polls.clone(),
            own_waker: Arc::new(Mutex::new(None)),
            wake_on_poll: None,
        });
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
        assert_eq!(
            polls.load(Ordering::SeqCst),
            expected,
            "the new child was not polled by the next poll_next"
        );
    }
}

/// A call whose whole cycle produced no output returns `Pending` after
/// waking its own task (so the executor comes back), having polled each due
/// child once.
#[test]
fn cycle_without_output_returns_pending_and_wakes_own_task() {
    let polls: Arc<Vec<AtomicUsize>> = Arc::new((0..3).map(|_| AtomicUsize::new(0)).collect());
    let mut set: FuturesUnordered<SelfWaking> = (0..3)
        .map(|tag| SelfWaking {
            tag,
            wakes_left: usize::MAX,
            polls: polls.clone(),
        })
        .collect();
    let counter = Arc::new(CountingWaker::default());
    let parent = waker(counter.clone());
    let mut cx = Context::from_waker(&parent);
    for call in 1..=5 {
        let wakes_before = counter.0.load(Ordering::SeqCst);
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
        assert!(
            counter.0.load(Ordering::SeqCst) > wakes_before,
            "call {call}: Pending after an outputless cycle must wake the task"
        );
        assert_eq!(
            snapshot(&polls),
            vec![call; 3],
            "call {call}: one poll per child per cycle"
        );
    }
}

/// When nothing is woken the set returns `Pending` without waking its own
/// task (no busy loop) and without polling any child.
#[test]
fn idle_set_returns_pending_without_self_wake() {
    let polls = Arc::new(AtomicUsize::new(0));
    let mut set = FuturesUnordered::new();
    set.push(WakesOther {
        polls: polls.clone(),
        own_waker: Arc::new(Mutex::new(None)),
        wake_on_poll: None,
    });
    let counter = Arc::new(CountingWaker::default());
    let parent = waker(counter.clone());
    let mut cx = Context::from_waker(&parent);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    let wakes = counter.0.load(Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    }
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        wakes,
        "an idle set must not wake its task"
    );
    assert_eq!(polls.load(Ordering::SeqCst), 1);
}

/// A child under the script's control: it counts polls, stores its waker,
/// wakes itself while `spin` is set and completes once `ready` is set.
#[derive(Default)]
struct Controlled {
    polls: AtomicUsize,
    spin: std::sync::atomic::AtomicBool,
    ready: std::sync::atomic::AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct ControlledChild(Arc<Controlled>);

impl Future for ControlledChild {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let control = &self.0;
        control.polls.fetch_add(1, Ordering::SeqCst);
        *control.waker.lock().unwrap() = Some(cx.waker().clone());
        if control.ready.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if control.spin.load(Ordering::SeqCst) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// The cycle that polls a newly pushed child is a whole cycle: if it
/// produces no output, the call ends there, so a new child that wakes itself
/// is polled once by the first `poll_next`, not once more in a second cycle.
#[test]
fn new_self_waking_child_is_polled_once_by_first_poll_next() {
    let control = Arc::new(Controlled::default());
    control.spin.store(true, Ordering::SeqCst);
    let mut set = FuturesUnordered::new();
    set.push(ControlledChild(control.clone()));
    let counter = Arc::new(CountingWaker::default());
    let parent = waker(counter.clone());
    let mut cx = Context::from_waker(&parent);
    for call in 1..=3 {
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
        assert_eq!(
            control.polls.load(Ordering::SeqCst),
            call,
            "a self-waking child was polled more than once in call {call}"
        );
    }
}

/// A call that finishes a cycle begun by an earlier call (which returned an
/// output mid-cycle) ends there instead of starting another cycle, so no
/// child is polled twice in that call.
#[test]
fn continued_cycle_does_not_start_another_in_same_call() {
    let finisher = Arc::new(Controlled::default());
    let spinner = Arc::new(Controlled::default());
    let mut set = FuturesUnordered::new();
    // The finisher is pushed (and, in index order, due) first.
    set.push(ControlledChild(finisher.clone()));
    set.push(ControlledChild(spinner.clone()));
    let noop = noop_waker();
    let mut cx = Context::from_waker(&noop);
    for _ in 0..3 {
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    }
    assert_eq!(finisher.polls.load(Ordering::SeqCst), 1);
    assert_eq!(spinner.polls.load(Ordering::SeqCst), 1);

    finisher.ready.store(true, Ordering::SeqCst);
    spinner.spin.store(true, Ordering::SeqCst);
    for control in [&finisher, &spinner] {
        control.waker.lock().unwrap().take().unwrap().wake();
    }
    let mut finished = false;
    for call in 1..=4 {
        let before = spinner.polls.load(Ordering::SeqCst);
        if set.poll_next_unpin(&mut cx) == Poll::Ready(Some(())) {
            finished = true;
        }
        let polled = spinner.polls.load(Ordering::SeqCst) - before;
        assert!(
            polled <= 1,
            "call {call}: the spinner was polled {polled} times in one call"
        );
    }
    assert!(finished, "the finisher never completed");
    assert_eq!(finisher.polls.load(Ordering::SeqCst), 2);
}
