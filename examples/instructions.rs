//! One workload of the `sets` benchmark, for one implementation, in a plain
//! loop: a target for `valgrind --tool=callgrind`, whose instruction counts
//! repeat from run to run where wall-clock times on a shared machine do not.
//!
//! ```sh
//! cargo build --release --example instructions
//! valgrind --tool=callgrind target/release/examples/instructions velodrome ready_drain
//! ```
//!
//! Implementations: `velodrome`, `futures-util`, `futures-buffered`,
//! `unicycle`, `futures-concurrency`. Workloads (as in `benches/sets.rs`):
//! `ready_drain`, `pending_once`, `yield_10` (each 100 sets of 1,000
//! children, pushed then drained) and `steady_state` (100,000 completions in
//! a set kept at 1,000 children) and `server_event` (1,000 parked
//! children, then 100,000 events: wake one, take its output, push a fresh
//! child in its place, poll until it parks) and `remote_feed` (100 rounds of
//! 1,000 ready children sent from outside the set, then drained: through a
//! `PushHandle` for velodrome, through tokio's unbounded mpsc drained into
//! the set for the others, the loop users write today). Divide valgrind's
//! `I refs` by the children (100,000) for instructions per child; a run with
//! an unknown workload name gives the fixed cost of starting the program.

#[path = "../benches/common/mod.rs"]
mod common;

use std::future::{ready, Ready};
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use common::{
    drain, FuturesBuffered, FuturesConcurrency, FuturesUtil, Peer, Set, Unicycle, VelodromePeer,
    Yield,
};

/// Children per set, and sets per run.
const SIZE: usize = 1_000;
const ROUNDS: usize = 100;

fn run<P: Peer>(workload: &str) {
    match workload {
        "ready_drain" => (0..ROUNDS).for_each(|_| drop(common::ready_drain_round::<P>(SIZE))),
        "pending_once" => (0..ROUNDS).for_each(|_| drop(common::pending_once_round::<P>(SIZE))),
        "yield_10" => (0..ROUNDS).for_each(|_| drop(common::yield_round::<P>(SIZE, 10))),
        "steady_state" => {
            let mut set = <P::Set<Yield> as Set<_>>::new();
            for i in 0..SIZE {
                set.push(Yield(i as u32 % 3));
            }
            for i in 0..SIZE * ROUNDS {
                drain(&mut set, 1);
                set.push(Yield(i as u32 % 3));
            }
        }
        "server_event" => {
            let board = common::Board::new(SIZE);
            let mut set: P::Set<common::Parked> = common::parked_set(&board, SIZE);
            let order = common::shuffled(SIZE, 0x9E37_79B9_7F4A_7C15);
            for i in 0..SIZE * ROUNDS {
                common::server_event(&mut set, &board, order[i % SIZE]);
            }
        }
        other => eprintln!("unknown workload {other}: nothing run"),
    }
}

/// `remote_feed` for velodrome: push through a handle, then drain.
fn remote_feed_velodrome() {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut set = velodrome::FuturesUnordered::new();
    for _ in 0..ROUNDS {
        let handle = set.handle();
        for i in 0..SIZE {
            handle.push(ready(i)).unwrap();
        }
        drop(handle);
        while let Poll::Ready(Some(x)) = set.poll_next_unpin(&mut cx) {
            std::hint::black_box(x);
        }
    }
}

/// `remote_feed` for a peer: send through tokio's unbounded mpsc, then
/// drain the channel into the set and the set, as one loop.
fn remote_feed_channel<S: Stream<Item = usize> + Unpin>(
    mut new: impl FnMut() -> S,
    push: impl Fn(&mut S, Ready<usize>),
) {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut set = new();
    for _ in 0..ROUNDS {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..SIZE {
            tx.send(ready(i)).unwrap();
        }
        drop(tx);
        let mut open = true;
        loop {
            while open {
                match rx.poll_recv(&mut cx) {
                    Poll::Ready(Some(child)) => push(&mut set, child),
                    Poll::Ready(None) => open = false,
                    Poll::Pending => break,
                }
            }
            match set.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(x)) => drop(std::hint::black_box(x)),
                _ => break,
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(implementation), Some(workload)) = (args.next(), args.next()) else {
        eprintln!("usage: instructions <implementation> <workload>");
        std::process::exit(2);
    };
    if workload == "remote_feed" {
        match implementation.as_str() {
            VelodromePeer::NAME => remote_feed_velodrome(),
            FuturesUtil::NAME => {
                remote_feed_channel(futures_util::stream::FuturesUnordered::new, |set, child| {
                    set.push(child)
                })
            }
            FuturesBuffered::NAME => {
                remote_feed_channel(futures_buffered::FuturesUnordered::new, |set, child| {
                    set.push(child)
                })
            }
            other => eprintln!("remote_feed: no {other} variant"),
        }
        return;
    }
    match implementation.as_str() {
        VelodromePeer::NAME => run::<VelodromePeer>(&workload),
        FuturesUtil::NAME => run::<FuturesUtil>(&workload),
        FuturesBuffered::NAME => run::<FuturesBuffered>(&workload),
        Unicycle::NAME => run::<Unicycle>(&workload),
        FuturesConcurrency::NAME => run::<FuturesConcurrency>(&workload),
        other => {
            eprintln!("unknown implementation {other}");
            std::process::exit(2);
        }
    }
}
