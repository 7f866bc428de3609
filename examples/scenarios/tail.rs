//! Tail latency: one task drains a never-empty set of always-ready children
//! while a probe task wants to run every millisecond, on one current-thread
//! runtime.
//!
//! The load task keeps `CHILDREN` children in its set for the run's
//! duration: each child does `CHILD_WORK` of CPU in its only poll and
//! completes, and every completion pushes a fresh child
//! (`while let Some(_) = set.next().await { set.push(..) }`), then the set
//! drains. The probe ticks a 1 ms `tokio::time::interval` and records, for
//! every tick, how late it ran. Ticks missed while the thread was held fire
//! in a burst afterwards (`MissedTickBehavior::Burst`, the default), each
//! with its own lateness, so a stall of `n` ms counts as `n` late ticks.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use velodrome::Priority;

use super::{human_us, spin, Set, Spread, Util, Velo};

/// Children in the set at any time while the load runs.
pub(crate) const CHILDREN: usize = 10_000;
/// CPU work of one child, done in its only poll.
pub(crate) const CHILD_WORK: Duration = Duration::from_micros(2);
/// The probe's period.
pub(crate) const PERIOD: Duration = Duration::from_millis(1);

/// What the load task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    /// No load task: the probe alone, the timer's own lateness.
    None,
    /// futures-util's set.
    Util,
    /// velodrome's set.
    Velodrome,
    /// velodrome's set inside `tokio::task::coop::unconstrained`.
    VelodromeUnconstrained,
}

impl Load {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Load::None => "no load (timer alone)",
            Load::Util => "futures-util",
            Load::Velodrome => "velodrome",
            Load::VelodromeUnconstrained => "velodrome, unconstrained",
        }
    }
}

/// One load's result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) load: Load,
    /// Lateness of the probe's ticks.
    pub(crate) late: Spread,
    /// How long each poll of the load task held the thread.
    pub(crate) polls: Spread,
    /// Children completed per second by the load task.
    pub(crate) children_per_s: f64,
}

#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) duration: Duration,
    pub(crate) none: Row,
    pub(crate) util: Row,
    pub(crate) velodrome: Row,
    pub(crate) unconstrained: Row,
}

/// A child: `work` of CPU in its first poll, then done.
pub(crate) struct Work(Duration);

impl Future for Work {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        spin(self.0);
        Poll::Ready(())
    }
}

/// Keeps `CHILDREN` children in the set for `duration`, then drains it.
/// Returns the number of children completed.
async fn load<S: Set<Work>>(duration: Duration) -> u64 {
    let mut set = S::new();
    for _ in 0..CHILDREN {
        set.push_in(Work(CHILD_WORK), Priority::NORMAL);
    }
    let start = Instant::now();
    let mut done = 0;
    while set.next().await.is_some() {
        done += 1;
        if start.elapsed() < duration {
            set.push_in(Work(CHILD_WORK), Priority::NORMAL);
        }
    }
    done
}

/// Ticks every `PERIOD` until a tick scheduled at or after the end time in
/// `end`, recording how late each tick ran.
async fn probe(end: Arc<Mutex<Option<Instant>>>) -> Vec<Duration> {
    let mut interval = tokio::time::interval(PERIOD);
    interval.tick().await;
    let mut late = Vec::new();
    loop {
        let scheduled = interval.tick().await.into_std();
        if end.lock().unwrap().is_some_and(|end| scheduled >= end) {
            return late;
        }
        late.push(scheduled.elapsed());
    }
}

/// What the load task did, and how long each of its polls took.
struct Timed {
    done: u64,
    polls: Vec<Duration>,
}

/// Spawns `task`, timing each of its polls.
async fn spawn_timed<T>(task: T) -> Timed
where
    T: Future<Output = u64> + Send + 'static,
{
    tokio::spawn(async move {
        let mut task = std::pin::pin!(task);
        let mut polls = Vec::new();
        let done = std::future::poll_fn(|cx| {
            let start = Instant::now();
            let out = task.as_mut().poll(cx);
            polls.push(start.elapsed());
            out
        })
        .await;
        Timed { done, polls }
    })
    .await
    .expect("load task")
}

fn row(kind: Load, duration: Duration) -> Row {
    let rt = super::runtime();
    let end = Arc::new(Mutex::new(None));
    let (late, timed, elapsed) = rt.block_on(async {
        let probe = tokio::spawn(probe(end.clone()));
        // Let the probe start before the load does.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let start = Instant::now();
        let timed = match kind {
            Load::None => {
                tokio::time::sleep(duration).await;
                Timed {
                    done: 0,
                    polls: Vec::new(),
                }
            }
            Load::Util => spawn_timed(load::<Util<Work>>(duration)).await,
            Load::Velodrome => spawn_timed(load::<Velo<Work>>(duration)).await,
            Load::VelodromeUnconstrained => {
                spawn_timed(tokio::task::coop::unconstrained(load::<Velo<Work>>(
                    duration,
                )))
                .await
            }
        };
        let elapsed = start.elapsed();
        *end.lock().unwrap() = Some(Instant::now());
        (probe.await.expect("probe task"), timed, elapsed)
    });
    Row {
        load: kind,
        late: Spread::of(late),
        polls: Spread::of(timed.polls),
        children_per_s: timed.done as f64 / elapsed.as_secs_f64(),
    }
}

/// Runs the four rows, each on a fresh runtime, with 0.5 s of load when
/// `quick`, else 1 s.
pub(crate) fn run(quick: bool) -> Report {
    let duration = Duration::from_millis(if quick { 500 } else { 1000 });
    Report {
        duration,
        none: row(Load::None, duration),
        util: row(Load::Util, duration),
        velodrome: row(Load::Velodrome, duration),
        unconstrained: row(Load::VelodromeUnconstrained, duration),
    }
}

impl Report {
    fn rows(&self) -> [&Row; 4] {
        [&self.none, &self.util, &self.velodrome, &self.unconstrained]
    }

    pub(crate) fn setup(&self) -> String {
        format!(
            "{} ms of load: {} always-ready children of {} µs CPU each, refilled as they \
             complete, in one task; a probe task ticks every {} ms; one current-thread runtime",
            self.duration.as_millis(),
            CHILDREN,
            CHILD_WORK.as_micros(),
            PERIOD.as_millis(),
        )
    }

    pub(crate) fn print(&self) {
        println!("{}", self.setup());
        println!();
        println!(
            "| {:<24} | {:>10} | {:>10} | {:>10} | {:>6} | {:>15} | {:>12} | {:>12} |",
            "load",
            "p50 late",
            "p99 late",
            "max late",
            "ticks",
            "load polls",
            "longest poll",
            "children/s"
        );
        println!(
            "|{:-<26}|{:->12}|{:->12}|{:->12}|{:->8}|{:->17}|{:->14}|{:->14}|",
            "", "", "", "", "", "", "", ""
        );
        for r in self.rows() {
            let (polls, longest, rate) = if r.load == Load::None {
                ("-".to_string(), "-".to_string(), "-".to_string())
            } else {
                (
                    r.polls.samples.to_string(),
                    human_us(r.polls.max_us),
                    format!("{:.0}", r.children_per_s),
                )
            };
            println!(
                "| {:<24} | {:>10} | {:>10} | {:>10} | {:>6} | {:>15} | {:>12} | {:>12} |",
                r.load.label(),
                human_us(r.late.p50_us),
                human_us(r.late.p99_us),
                human_us(r.late.max_us),
                r.late.samples,
                polls,
                longest,
                rate
            );
        }
        println!();
        println!("{}", self.interpretation());
    }

    pub(crate) fn interpretation(&self) -> String {
        let (n, u, v, c) = (&self.none, &self.util, &self.velodrome, &self.unconstrained);
        format!(
            "=> futures-util held the thread for {} in {} poll(s), so the probe ran up to {} \
             late; velodrome yielded {} times (every <=128 outputs) and kept the probe's p99 at \
             {} (timer alone: {}) at {:.0}% of futures-util's throughput; inside \
             `unconstrained` it held the thread like futures-util (max {}).",
            human_us(u.polls.max_us),
            u.polls.samples,
            human_us(u.late.max_us),
            v.polls.samples.saturating_sub(1),
            human_us(v.late.p99_us),
            human_us(n.late.p99_us),
            100.0 * v.children_per_s / u.children_per_s,
            human_us(c.late.max_us),
        )
    }

    pub(crate) fn print_summary(&self) {
        for r in self.rows() {
            println!(
                "  {:<24} probe lateness p50 {:>8}, p99 {:>8}, max {:>8}",
                r.load.label(),
                human_us(r.late.p50_us),
                human_us(r.late.p99_us),
                human_us(r.late.max_us)
            );
        }
    }
}
