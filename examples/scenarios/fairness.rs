//! Fairness: busy children against 100 children that each need a few wakes
//! from a helper task.
//!
//! On a current-thread runtime, a parent task drains one set; a helper task
//! delivers one wake per turn to the next waiting child, round robin, and
//! yields. Each of the `WAITERS` children finishes after `WAKES` wakes. The
//! set also holds "hot" children that never finish and burn `HOT_WORK` of
//! CPU per poll: either one child that wakes itself in every poll, or a pair
//! that wake each other in every poll (two pipeline stages handing messages
//! back and forth). Counted until the last waiter finishes: polls of the hot
//! children, `poll_next` calls, helper turns, the most hot polls inside one
//! `poll_next` call, and the time taken.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use velodrome::Priority;

use super::{spin, wake_and_yield, BoxChild, Set, Util, Velo};

/// Children that need the helper.
pub(crate) const WAITERS: usize = 100;
/// Wakes each of them needs before it finishes.
pub(crate) const WAKES: u32 = 5;
/// CPU work per poll of a hot child.
pub(crate) const HOT_WORK: Duration = Duration::from_micros(5);

/// What keeps the set busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hot {
    /// One child that wakes itself in every poll.
    SelfWaking,
    /// Two children that wake each other in every poll (two pipeline stages
    /// passing messages back and forth).
    Pair,
}

impl Hot {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Hot::SelfWaking => "one, waking itself",
            Hot::Pair => "two, waking each other",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) name: &'static str,
    pub(crate) hot: Hot,
    /// Polls of the hot child(ren) until the 100 others had all finished.
    pub(crate) hot_polls: u64,
    /// `poll_next` calls until then.
    pub(crate) calls: u64,
    /// Turns of the helper (one wake per turn) until then.
    pub(crate) turns: u64,
    /// Most hot polls inside a single `poll_next` call.
    pub(crate) max_hot_per_call: u64,
    /// velodrome's own counters (`FuturesUnordered::stats`).
    pub(crate) stats: Option<velodrome::Stats>,
    pub(crate) elapsed: Duration,
}

impl Row {
    pub(crate) fn hot_per_turn(&self) -> f64 {
        self.hot_polls as f64 / self.turns as f64
    }
}

#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
}

/// What the helper, the children and the parent share. Relaxed atomics
/// throughout: everything runs on the runtime's one thread.
struct World {
    hot_polls: AtomicU64,
    finished: AtomicUsize,
    turns: AtomicU64,
    waiters: Vec<Slot>,
}

#[derive(Default)]
struct Slot {
    /// Wakes delivered so far.
    tickets: AtomicU32,
    /// Registered by the child while it waits for the next wake.
    waker: Mutex<Option<Waker>>,
}

/// A child that finishes after `WAKES` wakes from the helper.
struct Waiter {
    world: Arc<World>,
    id: usize,
}

impl Future for Waiter {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let slot = &self.world.waiters[self.id];
        if slot.tickets.load(Relaxed) >= WAKES {
            return Poll::Ready(());
        }
        *slot.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A hot child that wakes itself.
struct SelfWaking {
    world: Arc<World>,
}

impl Future for SelfWaking {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.world.hot_polls.fetch_add(1, Relaxed);
        spin(HOT_WORK);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One of two hot children that hand a token back and forth.
struct PairHalf {
    world: Arc<World>,
    pair: Arc<PairState>,
    me: usize,
}

struct PairState {
    /// Whose move it is.
    turn: AtomicUsize,
    wakers: [Mutex<Option<Waker>>; 2],
}

impl Future for PairHalf {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.world.hot_polls.fetch_add(1, Relaxed);
        *self.pair.wakers[self.me].lock().unwrap() = Some(cx.waker().clone());
        if self.pair.turn.load(Relaxed) == self.me {
            spin(HOT_WORK);
            let other = 1 - self.me;
            self.pair.turn.store(other, Relaxed);
            if let Some(w) = self.pair.wakers[other].lock().unwrap().as_ref() {
                w.wake_by_ref();
            }
        }
        Poll::Pending
    }
}

/// Delivers one wake per turn to the next waiting child, round robin, then
/// yields to the runtime.
async fn helper(world: Arc<World>) {
    let mut cursor = 0;
    while world.finished.load(Relaxed) < WAITERS {
        world.turns.fetch_add(1, Relaxed);
        for step in 0..WAITERS {
            let slot = &world.waiters[(cursor + step) % WAITERS];
            let waker = slot.waker.lock().unwrap().take();
            if let Some(waker) = waker {
                slot.tickets.fetch_add(1, Relaxed);
                waker.wake();
                cursor = (cursor + step + 1) % WAITERS;
                break;
            }
        }
        wake_and_yield().await;
    }
}

/// What the parent task counted.
struct Counts {
    hot_polls: u64,
    calls: u64,
    max_hot_per_call: u64,
    stats: Option<velodrome::Stats>,
}

/// Drains a set of the hot children and the waiters until every waiter
/// finished.
async fn parent<S: Set<BoxChild<()>>>(world: Arc<World>, hot: Hot) -> Counts {
    let mut set = S::new();
    match hot {
        Hot::SelfWaking => {
            let world = world.clone();
            set.push_in(Box::pin(SelfWaking { world }), Priority::NORMAL);
        }
        Hot::Pair => {
            let pair = Arc::new(PairState {
                turn: AtomicUsize::new(0),
                wakers: Default::default(),
            });
            for me in 0..2 {
                let (world, pair) = (world.clone(), pair.clone());
                set.push_in(Box::pin(PairHalf { world, pair, me }), Priority::NORMAL);
            }
        }
    }
    for id in 0..WAITERS {
        let world = world.clone();
        set.push_in(Box::pin(Waiter { world, id }), Priority::NORMAL);
    }
    let (mut calls, mut max_hot_per_call) = (0, 0);
    while world.finished.load(Relaxed) < WAITERS {
        let next = poll_fn(|cx| {
            calls += 1;
            let before = world.hot_polls.load(Relaxed);
            let next = set.poll_next_unpin(cx);
            max_hot_per_call = max_hot_per_call.max(world.hot_polls.load(Relaxed) - before);
            next
        })
        .await;
        // Only waiters finish: hot children never do.
        assert!(next.is_some());
        world.finished.fetch_add(1, Relaxed);
    }
    Counts {
        hot_polls: world.hot_polls.load(Relaxed),
        calls,
        max_hot_per_call,
        stats: set.stats(),
    }
}

fn row<S>(hot: Hot) -> Row
where
    S: Set<BoxChild<()>> + Send + 'static,
{
    let world = Arc::new(World {
        hot_polls: AtomicU64::new(0),
        finished: AtomicUsize::new(0),
        turns: AtomicU64::new(0),
        waiters: (0..WAITERS).map(|_| Slot::default()).collect(),
    });
    let rt = super::runtime();
    let start = Instant::now();
    let counts = rt.block_on(async {
        let parent = tokio::spawn(parent::<S>(world.clone(), hot));
        let helper = tokio::spawn(helper(world.clone()));
        let out = parent.await.expect("parent task");
        helper.await.expect("helper task");
        out
    });
    Row {
        name: S::NAME,
        hot,
        hot_polls: counts.hot_polls,
        calls: counts.calls,
        turns: world.turns.load(Relaxed),
        max_hot_per_call: counts.max_hot_per_call,
        stats: counts.stats,
        elapsed: start.elapsed(),
    }
}

/// Runs both hot kinds under both sets; fast enough that `quick` changes
/// nothing.
pub(crate) fn run(_quick: bool) -> Report {
    let rows = [Hot::SelfWaking, Hot::Pair]
        .into_iter()
        .flat_map(|hot| [row::<Util<_>>(hot), row::<Velo<_>>(hot)])
        .collect();
    Report { rows }
}

/// The scenario in one line.
pub(crate) fn setup() -> String {
    format!(
        "{WAITERS} children each needing {WAKES} wakes from a helper task (one wake per \
         helper turn), next to hot children burning {} µs per poll; one set, one \
         current-thread runtime",
        HOT_WORK.as_micros()
    )
}

impl Report {
    fn pair(&self, hot: Hot) -> (&Row, &Row) {
        let mut rows = self.rows.iter().filter(|r| r.hot == hot);
        let util = rows.next().expect("futures-util row");
        let velodrome = rows.next().expect("velodrome row");
        (util, velodrome)
    }

    pub(crate) fn print(&self) {
        println!("{}", setup());
        println!();
        println!(
            "| {:<22} | {:<12} | {:>9} | {:>10} | {:>6} | {:>8} | {:>12} | {:>8} |",
            "hot children",
            "set",
            "hot polls",
            "poll_next",
            "turns",
            "hot/turn",
            "max hot/call",
            "time"
        );
        println!(
            "|{:-<24}|{:-<14}|{:->11}|{:->12}|{:->8}|{:->10}|{:->14}|{:->10}|",
            "", "", "", "", "", "", "", ""
        );
        for r in &self.rows {
            println!(
                "| {:<22} | {:<12} | {:>9} | {:>10} | {:>6} | {:>8.2} | {:>12} | {:>8} |",
                r.hot.label(),
                r.name,
                r.hot_polls,
                r.calls,
                r.turns,
                r.hot_per_turn(),
                r.max_hot_per_call,
                format!("{:.1} ms", r.elapsed.as_secs_f64() * 1e3)
            );
        }
        println!();
        println!("{}", self.interpretation());
    }

    pub(crate) fn interpretation(&self) -> String {
        let (su, sv) = self.pair(Hot::SelfWaking);
        let (pu, pv) = self.pair(Hot::Pair);
        format!(
            "=> Before the 100 others finished, a self-waking child got {} polls under \
             futures-util and {} under velodrome ({:.1}x); a pair waking each other got {} \
             and {} ({:.0}x), and the 100 others finished in {:.1} ms instead of {:.1} ms.",
            su.hot_polls,
            sv.hot_polls,
            su.hot_polls as f64 / sv.hot_polls as f64,
            pu.hot_polls,
            pv.hot_polls,
            pu.hot_polls as f64 / pv.hot_polls as f64,
            pv.elapsed.as_secs_f64() * 1e3,
            pu.elapsed.as_secs_f64() * 1e3,
        )
    }

    /// What velodrome's counters say about its rows: why the hot children
    /// got so few polls.
    pub(crate) fn explain_with_stats(&self) -> String {
        let mut lines = Vec::new();
        for r in &self.rows {
            let Some(stats) = r.stats else { continue };
            lines.push(format!(
                "  velodrome's own counters ({}): {} child polls in {} cycles ({:.1} per \
                 cycle), {} outputs; {} calls ended by the cycle rule, {} by tokio's budget, \
                 {} after 128 outputs",
                r.hot.label(),
                stats.polls,
                stats.cycles,
                stats.polls as f64 / stats.cycles.max(1) as f64,
                stats.outputs,
                stats.cycle_yields,
                stats.tokio_budget_yields,
                stats.output_budget_yields,
            ));
        }
        lines.push(
            "  => each cycle polls every woken child once, so a hot child gets one poll per \
             cycle however often it wakes itself; a cycle with no output ends the call."
                .to_string(),
        );
        lines.join("\n")
    }

    pub(crate) fn print_summary(&self) {
        for r in &self.rows {
            println!(
                "  {:<22} {:<12} {:>6} hot polls, {:>6.2} per helper turn, max {:>3} per \
                 poll_next, {:>6.1} ms",
                r.hot.label(),
                r.name,
                r.hot_polls,
                r.hot_per_turn(),
                r.max_hot_per_call,
                r.elapsed.as_secs_f64() * 1e3
            );
        }
    }
}
