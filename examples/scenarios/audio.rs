//! Priority: a simulated sound card next to busy network children, all in
//! one set driven by one tokio task.
//!
//! Frame `i` is due at `start + i * period`. A clock thread (standing in for
//! the sound card's interrupt or an audio callback thread) raises frame
//! `i`'s line at its due time and wakes it; the frame child then does a bit
//! of mixing and completes. The driving task records, for each frame, how
//! long after the line was raised the set handed the frame over: its
//! lateness. A frame later than `tolerance` is a deadline miss. (Measured
//! from the raise rather than the due time, so that a clock thread the OS
//! ran late does not count against the sets; those frames are counted
//! separately.) Next to the frames, `network` children
//! are always ready: each poll burns `network_work` of CPU, wakes itself and
//! returns `Pending`.
//!
//! Rows: futures-util's set; velodrome with every child in one lane
//! (fairness alone); velodrome with frames in `HIGH` and the network in
//! `LOW`.
//!
//! With `Source::TokioTimer` frames await `tokio::time::sleep_until` instead
//! of the clock thread (see `examples/audio_priority.rs` for what that
//! measures).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use futures::StreamExt as _;
use velodrome::Priority;

use super::{human_us, spin, BoxChild, Set, Spread, Util, Velo};

/// Where frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A dedicated thread wakes frame `i` at its due time.
    ClockThread,
    /// Frame `i` awaits `tokio::time::sleep_until(due)`.
    TokioTimer,
}

/// Where the set is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    /// In the future given to `Runtime::block_on` (like `#[tokio::main]`).
    BlockOn,
    /// In a task from `tokio::spawn`.
    Spawned,
}

/// The scenario's knobs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) frames: usize,
    pub(crate) period: Duration,
    pub(crate) tolerance: Duration,
    pub(crate) frame_work: Duration,
    pub(crate) network: usize,
    pub(crate) network_work: Duration,
    pub(crate) source: Source,
    pub(crate) driver: Driver,
}

impl Config {
    pub(crate) fn new(quick: bool) -> Self {
        Self {
            frames: if quick { 300 } else { 500 },
            period: Duration::from_millis(2),
            tolerance: Duration::from_millis(1),
            frame_work: Duration::from_micros(10),
            network: 32,
            network_work: Duration::from_micros(40),
            source: Source::ClockThread,
            driver: Driver::Spawned,
        }
    }
}

/// One set's result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) name: &'static str,
    /// Lateness of each frame: handed over by the set minus ready time (the
    /// raise of its line, or its due time with tokio timers).
    pub(crate) late: Spread,
    /// Frames later than the tolerance.
    pub(crate) misses: usize,
    /// Frames whose line the clock thread itself raised more than the
    /// tolerance after their due time (the OS ran it late). Not counted in
    /// `misses`, which start at the raise; a sign of a busy machine.
    pub(crate) clock_misses: usize,
    /// Network child polls per second while frames were flowing.
    pub(crate) network_polls_per_s: f64,
}

#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) config: Config,
    pub(crate) util: Row,
    pub(crate) one_lane: Row,
    pub(crate) lanes: Row,
}

/// A frame as the set yields it.
#[derive(Debug, Clone, Copy)]
struct Frame {
    due: Instant,
    /// When the frame became ready: its line's raise, or with tokio timers
    /// (whose firing is not observable) its due time.
    ready: Instant,
}

/// One frame's "interrupt line": raised by the clock, awaited by the frame.
#[derive(Default)]
struct Line {
    raised: AtomicBool,
    raised_at: Mutex<Option<Instant>>,
    waker: AtomicWaker,
}

/// A frame fed by the clock thread.
struct ClockFrame {
    line: Arc<Line>,
    due: Instant,
    work: Duration,
}

impl Future for ClockFrame {
    type Output = Frame;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Frame> {
        // Acquire: pairs with the clock thread's Release store, so
        // `raised_at` is written.
        if !self.line.raised.load(Ordering::Acquire) {
            self.line.waker.register(cx.waker());
            if !self.line.raised.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        spin(self.work);
        Poll::Ready(Frame {
            due: self.due,
            ready: self.line.raised_at.lock().unwrap().unwrap_or(self.due),
        })
    }
}

/// A network child: always ready, burns `work` per poll, wakes itself and
/// never finishes.
struct Network {
    work: Duration,
    polls: Arc<AtomicU64>,
}

impl Future for Network {
    type Output = Frame;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Frame> {
        spin(self.work);
        self.polls.fetch_add(1, Ordering::Relaxed);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Sleeps until `due`: a coarse sleep, then a spin for the last stretch.
fn sleep_until_precise(due: Instant) {
    let slack = Duration::from_micros(300);
    let now = Instant::now();
    if due > now + slack {
        std::thread::sleep(due - now - slack);
    }
    while Instant::now() < due {
        std::hint::spin_loop();
    }
}

/// What one run of the driving task measured.
struct Run {
    late: Vec<Duration>,
    clock_late: Vec<Duration>,
    network_polls: u64,
    window: Duration,
}

async fn drive<S: Set<BoxChild<Frame>>>(cfg: Config, lanes: bool) -> Run {
    let (frame_lane, network_lane) = if lanes {
        (Priority::HIGH, Priority::LOW)
    } else {
        (Priority::NORMAL, Priority::NORMAL)
    };
    let mut set = S::new();
    let polls = Arc::new(AtomicU64::new(0));
    for _ in 0..cfg.network {
        let child = Network {
            work: cfg.network_work,
            polls: polls.clone(),
        };
        set.push_in(Box::pin(child), network_lane);
    }
    let start = Instant::now() + Duration::from_millis(5);
    let mut lines = Vec::new();
    for i in 0..cfg.frames {
        let due = start + cfg.period * i as u32;
        let work = cfg.frame_work;
        let child: BoxChild<Frame> = match cfg.source {
            Source::ClockThread => {
                let line = Arc::new(Line::default());
                lines.push((due, line.clone()));
                Box::pin(ClockFrame { line, due, work })
            }
            Source::TokioTimer => Box::pin(async move {
                tokio::time::sleep_until(due.into()).await;
                spin(work);
                Frame { due, ready: due }
            }),
        };
        set.push_in(child, frame_lane);
    }
    let clock = std::thread::spawn(move || {
        for (due, line) in lines {
            sleep_until_precise(due);
            *line.raised_at.lock().unwrap() = Some(Instant::now());
            // Release: pairs with the frame's Acquire load.
            line.raised.store(true, Ordering::Release);
            line.waker.wake();
        }
    });
    let mut run = Run {
        late: Vec::with_capacity(cfg.frames),
        clock_late: Vec::with_capacity(cfg.frames),
        network_polls: 0,
        window: Duration::ZERO,
    };
    let mut first = None;
    while let Some(frame) = set.next().await {
        let now = Instant::now();
        let (polls_then, then) = *first.get_or_insert((polls.load(Ordering::Relaxed), now));
        run.late.push(now.saturating_duration_since(frame.ready));
        run.clock_late
            .push(frame.ready.saturating_duration_since(frame.due));
        if run.late.len() == cfg.frames {
            run.network_polls = polls.load(Ordering::Relaxed) - polls_then;
            run.window = now - then;
            break;
        }
    }
    drop(set);
    clock.join().expect("clock thread");
    run
}

fn row<S>(cfg: Config, lanes: bool, name: &'static str) -> Row
where
    S: Set<BoxChild<Frame>> + Send + 'static,
{
    let rt = super::runtime();
    let run = match cfg.driver {
        Driver::BlockOn => rt.block_on(drive::<S>(cfg, lanes)),
        Driver::Spawned => rt
            .block_on(rt.spawn(drive::<S>(cfg, lanes)))
            .expect("driving task"),
    };
    let over = |v: &[Duration]| v.iter().filter(|l| **l > cfg.tolerance).count();
    Row {
        name,
        misses: over(&run.late),
        clock_misses: over(&run.clock_late),
        late: Spread::of(run.late),
        network_polls_per_s: run.network_polls as f64 / run.window.as_secs_f64(),
    }
}

/// Runs the three rows with `config`, each on a fresh runtime.
pub(crate) fn run_with(config: Config) -> Report {
    Report {
        config,
        util: row::<Util<_>>(config, false, "futures-util"),
        one_lane: row::<Velo<_>>(config, false, "velodrome, one lane"),
        lanes: row::<Velo<_>>(config, true, "velodrome, HIGH/LOW"),
    }
}

/// Runs the default scenario (300 frames when `quick`, else 500).
pub(crate) fn run(quick: bool) -> Report {
    run_with(Config::new(quick))
}

impl Report {
    fn rows(&self) -> [&Row; 3] {
        [&self.util, &self.one_lane, &self.lanes]
    }

    pub(crate) fn setup(&self) -> String {
        let c = &self.config;
        let source = match c.source {
            Source::ClockThread => "a clock thread",
            Source::TokioTimer => "tokio timers",
        };
        let driver = match c.driver {
            Driver::BlockOn => "the block_on future",
            Driver::Spawned => "a spawned task",
        };
        format!(
            "{} frames, one every {} ms from {source}, deadline = ready + {} ms; \
             {} network children burning {} µs per poll; one set in {driver} \
             of a current-thread runtime",
            c.frames,
            c.period.as_millis(),
            c.tolerance.as_millis(),
            c.network,
            c.network_work.as_micros(),
        )
    }

    pub(crate) fn print(&self) {
        println!("{}", self.setup());
        println!();
        println!(
            "| {:<20} | {:>13} | {:>9} | {:>9} | {:>9} | {:>15} |",
            "set", "misses", "p50 late", "p99 late", "max late", "network polls/s"
        );
        println!(
            "|{:-<22}|{:->15}|{:->11}|{:->11}|{:->11}|{:->17}|",
            "", "", "", "", "", ""
        );
        for r in self.rows() {
            println!(
                "| {:<20} | {:>13} | {:>9} | {:>9} | {:>9} | {:>15.0} |",
                r.name,
                format!("{} / {}", r.misses, r.late.samples),
                human_us(r.late.p50_us),
                human_us(r.late.p99_us),
                human_us(r.late.max_us),
                r.network_polls_per_s
            );
        }
        if self.config.source == Source::ClockThread {
            let clock: Vec<String> = self
                .rows()
                .iter()
                .map(|r| r.clock_misses.to_string())
                .collect();
            println!();
            println!(
                "Frames the clock thread itself raised more than {} ms after their due time \
                 (the OS ran it late; not counted above), per row: {}.",
                self.config.tolerance.as_millis(),
                clock.join(", ")
            );
        }
        if let Some(warning) = self.busy_warning() {
            println!("{warning}");
        }
        println!();
        println!("{}", self.interpretation());
    }

    pub(crate) fn interpretation(&self) -> String {
        let (u, o, l) = (&self.util, &self.one_lane, &self.lanes);
        let mut line = format!(
            "=> Frames in HIGH, network in LOW: velodrome missed {} of {} deadlines, \
             futures-util {} (p50 lateness {} vs {}).",
            l.misses,
            l.late.samples,
            u.misses,
            human_us(l.late.p50_us),
            human_us(u.late.p50_us),
        );
        if o.misses > l.misses {
            line += &format!(
                " In one lane velodrome missed {}: the lanes, not fairness alone, do it.",
                o.misses
            );
        }
        line += &format!(
            " The network kept {:.0}% of futures-util's poll rate.",
            100.0 * l.network_polls_per_s / u.network_polls_per_s
        );
        line
    }

    /// A warning when the OS delayed the clock thread itself for more than
    /// 2% of the frames: the runtime's thread is then surely delayed too,
    /// and the numbers include much scheduling noise.
    pub(crate) fn busy_warning(&self) -> Option<String> {
        let worst = self.rows().iter().map(|r| r.clock_misses).max()?;
        (worst * 50 > self.config.frames).then(|| {
            format!(
                "Warning: the machine was busy (the clock thread itself was late for up to \
                 {worst} frames); these numbers include much OS scheduling delay."
            )
        })
    }

    pub(crate) fn print_summary(&self) {
        for r in self.rows() {
            println!(
                "  {:<20} {:>4} / {} deadlines missed, lateness p50 {:>8}, p99 {:>8}",
                r.name,
                r.misses,
                r.late.samples,
                human_us(r.late.p50_us),
                human_us(r.late.p99_us)
            );
        }
        if let Some(warning) = self.busy_warning() {
            println!("  {warning}");
        }
    }
}
