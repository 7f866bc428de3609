//! Priority lanes: higher lanes are served first, a child woken in a higher
//! lane preempts a lower lane's cycle at the next child boundary, and the
//! starvation bound guarantees lower lanes a share.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::future::ready;
use futures::task::{waker, ArcWake};
use futures::StreamExt;
use velodrome::{FuturesUnordered, Priority};

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Drives `set` by hand until it settles (`Ready(None)`, or `Pending`
/// without a self-wake during the call), returning the outputs in order.
fn settle<S: futures::Stream + Unpin>(set: &mut S) -> Vec<S::Item> {
    let counter = Arc::new(CountingWaker::default());
    let parent = waker(counter.clone());
    let mut cx = Context::from_waker(&parent);
    let mut outputs = Vec::new();
    for _ in 0..10_000 {
        let before = counter.0.load(Ordering::SeqCst);
        match set.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(out)) => outputs.push(out),
            Poll::Ready(None) => return outputs,
            Poll::Pending => {
                if counter.0.load(Ordering::SeqCst) == before {
                    return outputs;
                }
            }
        }
    }
    panic!("the set did not settle in 10,000 calls");
}

#[test]
fn high_outputs_come_before_low_outputs() {
    let set = FuturesUnordered::new();
    for i in 0..10 {
        set.push_with_priority(ready(("low", i)), Priority::LOW);
    }
    for i in 0..10 {
        set.push_with_priority(ready(("high", i)), Priority::HIGH);
    }
    let mut set = set;
    let outputs = settle(&mut set);
    assert_eq!(outputs.len(), 20);
    let lanes: Vec<&str> = outputs.iter().map(|(lane, _)| *lane).collect();
    assert_eq!(
        lanes,
        [["high"; 10], ["low"; 10]].concat(),
        "every HIGH output before any LOW output"
    );
}

#[test]
fn lanes_are_served_high_then_normal_then_low() {
    let set = FuturesUnordered::new();
    for i in 0..3 {
        set.push_with_priority(ready(("low", i)), Priority::LOW);
        set.push(ready(("normal", i)));
        set.push_with_priority(ready(("high", i)), Priority::HIGH);
    }
    let mut set = set;
    let lanes: Vec<&str> = settle(&mut set).iter().map(|(lane, _)| *lane).collect();
    assert_eq!(
        lanes,
        [["high"; 3], ["normal"; 3], ["low"; 3]].concat(),
        "push() uses the NORMAL lane, between HIGH and LOW"
    );
    assert!(set.is_empty());
}

#[test]
fn push_with_normal_priority_equals_push() {
    let set = FuturesUnordered::new();
    set.push_with_priority(ready("low"), Priority::LOW);
    set.push_with_priority(ready("normal"), Priority::NORMAL);
    set.push(ready("plain"));
    let mut set = set;
    let outputs = settle(&mut set);
    assert_eq!(outputs.len(), 3);
    assert_eq!(outputs[2], "low");
}

/// Names in the poll log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Polled {
    High,
    Normal(usize),
}

/// State shared by the children of the preemption test.
#[derive(Default)]
struct Script {
    log: Mutex<Vec<Polled>>,
    high_waker: Mutex<Option<Waker>>,
    normal_wakers: Mutex<Vec<Option<Waker>>>,
    normal_polls: AtomicUsize,
    /// The NORMAL poll (1-based count) during which the HIGH child is woken.
    wake_high_at: AtomicUsize,
}

struct Logged {
    name: Polled,
    script: Arc<Script>,
}

impl Future for Logged {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let script = &self.script;
        script.log.lock().unwrap().push(self.name);
        match self.name {
            Polled::High => *script.high_waker.lock().unwrap() = Some(cx.waker().clone()),
            Polled::Normal(i) => {
                script.normal_wakers.lock().unwrap()[i] = Some(cx.waker().clone());
                let n = script.normal_polls.fetch_add(1, Ordering::SeqCst) + 1;
                if n == script.wake_high_at.load(Ordering::SeqCst) {
                    let high = script.high_waker.lock().unwrap().take();
                    high.expect("HIGH child registered").wake();
                }
            }
        }
        Poll::Pending
    }
}

/// While a NORMAL cycle is under way, a NORMAL child's poll wakes the HIGH
/// child: the HIGH child is the very next child polled, and the NORMAL
/// cycle then resumes.
#[test]
fn high_child_woken_mid_cycle_is_polled_at_next_child_boundary() {
    const NORMALS: usize = 5;
    let script = Arc::new(Script {
        normal_wakers: Mutex::new(vec![None; NORMALS]),
        wake_high_at: AtomicUsize::new(usize::MAX),
        ..Script::default()
    });
    let mut set = FuturesUnordered::new();
    set.push_with_priority(
        Logged {
            name: Polled::High,
            script: script.clone(),
        },
        Priority::HIGH,
    );
    for i in 0..NORMALS {
        set.push(Logged {
            name: Polled::Normal(i),
            script: script.clone(),
        });
    }
    settle(&mut set);
    assert_eq!(
        script.log.lock().unwrap().len(),
        NORMALS + 1,
        "every child polled once"
    );

    script.log.lock().unwrap().clear();
    script.normal_polls.store(0, Ordering::SeqCst);
    script.wake_high_at.store(2, Ordering::SeqCst);
    let wakers: Vec<Waker> = script
        .normal_wakers
        .lock()
        .unwrap()
        .iter_mut()
        .map(|w| w.take().unwrap())
        .collect();
    wakers.into_iter().for_each(Waker::wake);
    settle(&mut set);

    let log = script.log.lock().unwrap().clone();
    assert_eq!(log.len(), NORMALS + 1, "poll order: {log:?}");
    assert!(
        matches!(log[..2], [Polled::Normal(_), Polled::Normal(_)]),
        "the NORMAL cycle starts: {log:?}"
    );
    assert_eq!(
        log[2],
        Polled::High,
        "the HIGH child woken by the 2nd NORMAL poll must be polled next: {log:?}"
    );
    assert!(
        log[3..].iter().all(|p| matches!(p, Polled::Normal(_))),
        "the NORMAL cycle resumes after the HIGH child: {log:?}"
    );
    let mut normals: Vec<usize> = log
        .iter()
        .filter_map(|p| match p {
            Polled::Normal(i) => Some(*i),
            Polled::High => None,
        })
        .collect();
    normals.sort_unstable();
    assert_eq!(normals, (0..NORMALS).collect::<Vec<_>>(), "{log:?}");
}

/// A child that logs its lane letter and wakes itself; it completes after
/// `polls_to_ready` polls (`usize::MAX` = never).
struct Spinner {
    letter: char,
    polls_to_ready: usize,
    log: Arc<Mutex<Vec<char>>>,
}

impl Future for Spinner {
    type Output = char;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<char> {
        self.log.lock().unwrap().push(self.letter);
        if self.polls_to_ready != usize::MAX {
            self.polls_to_ready -= 1;
            if self.polls_to_ready == 0 {
                return Poll::Ready(self.letter);
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn starvation_bound_defaults_to_16_and_can_be_set() {
    let mut set = FuturesUnordered::<Spinner>::new();
    assert_eq!(set.starvation_bound(), 16);
    for n in [1, 3, 16, 1_000] {
        set.set_starvation_bound(n);
        assert_eq!(set.starvation_bound(), n);
    }
}

/// A HIGH child that always wakes itself and a LOW child that needs several
/// polls: with bound `n`, the LOW child is polled at least once in every
/// `n + 2` consecutive child polls while it has woken work, and completes.
#[test]
fn low_lane_gets_a_poll_within_starvation_bound() {
    const LOW_POLLS: usize = if cfg!(miri) { 6 } else { 20 };
    for bound in [1_u32, 2, 4, 16] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut set = FuturesUnordered::new();
        set.set_starvation_bound(bound);
        set.push_with_priority(
            Spinner {
                letter: 'H',
                polls_to_ready: usize::MAX,
                log: log.clone(),
            },
            Priority::HIGH,
        );
        set.push_with_priority(
            Spinner {
                letter: 'L',
                polls_to_ready: LOW_POLLS,
                log: log.clone(),
            },
            Priority::LOW,
        );
        let noop = futures::task::noop_waker();
        let mut cx = Context::from_waker(&noop);
        let mut low_done = false;
        for _ in 0..(LOW_POLLS * (bound as usize + 2) * 4) {
            if let Poll::Ready(Some(letter)) = set.poll_next_unpin(&mut cx) {
                assert_eq!(letter, 'L');
                low_done = true;
                break;
            }
        }
        let log: String = log.lock().unwrap().iter().collect();
        assert!(low_done, "bound {bound}: LOW never completed; polls: {log}");
        assert_eq!(log.matches('L').count(), LOW_POLLS);
        assert!(log.contains('H'), "bound {bound}: HIGH never polled: {log}");
        let window = bound as usize + 2;
        let chars: Vec<char> = log.chars().collect();
        for (start, run) in chars.windows(window).enumerate() {
            assert!(
                run.contains(&'L'),
                "bound {bound}: no LOW poll among child polls {start}..{}: {log}",
                start + window
            );
        }
    }
}

/// The lower lane's share is a bound, not a takeover: with a large bound
/// the HIGH child gets many polls between two LOW polls.
#[test]
fn high_lane_keeps_precedence_within_the_bound() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut set = FuturesUnordered::new();
    set.set_starvation_bound(8);
    set.push_with_priority(
        Spinner {
            letter: 'L',
            polls_to_ready: usize::MAX,
            log: log.clone(),
        },
        Priority::LOW,
    );
    set.push_with_priority(
        Spinner {
            letter: 'H',
            polls_to_ready: usize::MAX,
            log: log.clone(),
        },
        Priority::HIGH,
    );
    let noop = futures::task::noop_waker();
    let mut cx = Context::from_waker(&noop);
    for _ in 0..200 {
        assert_eq!(set.poll_next_unpin(&mut cx), Poll::Pending);
    }
    let log: String = log.lock().unwrap().iter().collect();
    let highs = log.matches('H').count();
    let lows = log.matches('L').count();
    assert!(lows > 0, "LOW starved: {log}");
    assert!(
        highs >= 4 * lows,
        "HIGH should dominate with bound 8 ({highs} HIGH vs {lows} LOW polls): {log}"
    );
}
