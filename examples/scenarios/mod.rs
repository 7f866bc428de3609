//! The scenarios behind `examples/showcase.rs`, `examples/fairness.rs`,
//! `examples/audio_priority.rs` and `examples/tail_latency.rs`: each is a
//! `run(quick) -> Report` function, and each report prints itself in full or
//! as a few showcase lines. Included by the examples with `#[path]`.

#![allow(
    dead_code,
    reason = "shared by several example targets; each uses a part"
)]

pub(crate) mod audio;
pub(crate) mod fairness;
pub(crate) mod tail;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use velodrome::Priority;

/// Busy-waits for `d`: the CPU work a child does in one poll.
pub(crate) fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// A set of futures as the scenarios drive it: futures-util's or velodrome's.
pub(crate) trait Set<F: Future>: Stream<Item = F::Output> + Unpin {
    /// Row label.
    const NAME: &'static str;
    /// An empty set.
    fn new() -> Self;
    /// Adds a child in `lane` (futures-util has no lanes and ignores it).
    fn push_in(&self, fut: F, lane: Priority);
    /// What the set's poller counted (futures-util counts nothing).
    fn stats(&self) -> Option<velodrome::Stats> {
        None
    }
}

/// futures-util's set, the baseline.
pub(crate) type Util<F> = futures_util::stream::FuturesUnordered<F>;
/// velodrome's set.
pub(crate) type Velo<F> = velodrome::FuturesUnordered<F>;

impl<F: Future> Set<F> for Util<F> {
    const NAME: &'static str = "futures-util";
    fn new() -> Self {
        Self::new()
    }
    fn push_in(&self, fut: F, _lane: Priority) {
        self.push(fut);
    }
}

impl<F: Future> Set<F> for Velo<F> {
    const NAME: &'static str = "velodrome";
    fn new() -> Self {
        Self::new()
    }
    fn push_in(&self, fut: F, lane: Priority) {
        self.push_with_priority(fut, lane);
    }
    fn stats(&self) -> Option<velodrome::Stats> {
        Some(velodrome::FuturesUnordered::stats(self))
    }
}

/// A future that wakes its own task once and returns `Pending` once: a
/// yield that, unlike `tokio::task::yield_now`, puts the task straight back
/// in the run queue.
pub(crate) fn wake_and_yield() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// p50 / p99 / max of a sample, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spread {
    pub(crate) samples: usize,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
}

impl Spread {
    pub(crate) fn of(mut sample: Vec<Duration>) -> Self {
        if sample.is_empty() {
            return Self::default();
        }
        sample.sort_unstable();
        let at = |q: f64| {
            let i = ((sample.len() as f64 - 1.0) * q).round() as usize;
            sample[i].as_secs_f64() * 1e6
        };
        Self {
            samples: sample.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: at(1.0),
        }
    }
}

/// Formats microseconds with a unit that keeps 3–4 significant digits.
pub(crate) fn human_us(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.0} ms", us / 1e3)
    } else if us >= 1_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

/// A pinned, boxed child, so one set can hold children of several kinds.
pub(crate) type BoxChild<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A fresh current-thread runtime with time enabled.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a current-thread runtime")
}

/// How much the OS took the CPU away from a spinning thread: the machine's
/// noise floor, which shows in every max and p99 above it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Noise {
    pub(crate) window: Duration,
    /// Gaps longer than `STALL` between two consecutive clock reads.
    pub(crate) stalls: usize,
    pub(crate) longest: Duration,
}

impl Noise {
    /// A gap this long between two clock reads of a spin loop means the
    /// thread was not running.
    pub(crate) const STALL: Duration = Duration::from_micros(500);

    /// Spins for `window`, counting stalls.
    pub(crate) fn measure(window: Duration) -> Self {
        let start = Instant::now();
        let (mut last, mut stalls, mut longest) = (start, 0, Duration::ZERO);
        while last - start < window {
            let now = Instant::now();
            let gap = now - last;
            if gap > Self::STALL {
                stalls += 1;
                longest = longest.max(gap);
            }
            last = now;
        }
        Self {
            window,
            stalls,
            longest,
        }
    }

    pub(crate) fn describe(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .map_or_else(String::new, |l| format!(", load average {l}"));
        format!(
            "machine: {cores} cores{load}; a spinning thread lost the CPU {} times for more \
             than {} µs in {} ms (longest {})",
            self.stalls,
            Self::STALL.as_micros(),
            self.window.as_millis(),
            human_us(self.longest.as_secs_f64() * 1e6)
        )
    }
}
