//! Memory and allocation counts for velodrome and its peers, measured with a
//! counting global allocator.
//!
//! Children are a zero-sized future that parks a clone of its waker on its
//! first poll and finishes once a global gate opens. For each implementation,
//! with `N` children:
//!
//! - bytes/child: live heap bytes held by the set divided by `N`, right after
//!   the pushes and again after every child was polled once;
//! - allocs/push: allocations per `push`, on the first fill and again into
//!   the slots a full drain left behind;
//! - allocs/wake: allocations per clone + `wake` + drop of a child's waker;
//! - allocs/completion and frees/completion: per child yielded by `next`.
//!
//! Run: `cargo run --release --example memory`.

#[path = "../benches/common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use common::{
    FuturesBuffered, FuturesConcurrency, FuturesUtil, Peer, Set, Unicycle, VelodromePeer,
};

/// Children per measurement.
const N: usize = 100_000;

#[path = "heap/mod.rs"]
mod heap;

/// Opens the gate: every [`Gated`] child finishes on its next poll.
static OPEN: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Wakers parked by [`Gated`] children on their first poll.
    static PARKED: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// The zero-sized child.
struct Gated;

impl Future for Gated {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if OPEN.load(Relaxed) {
            return Poll::Ready(());
        }
        PARKED.with(|parked| parked.borrow_mut().push(cx.waker().clone()));
        Poll::Pending
    }
}

/// The parent's waker: records that the set asked to be polled again.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Relaxed);
    }
}

/// Polls `set` until it returns `Pending` without asking to be polled again
/// (or ends); returns the number of items it yielded.
fn poll_until_idle<S: Set<Gated>>(set: &mut S, flag: &Arc<Flag>, waker: &Waker) -> usize {
    let mut cx = Context::from_waker(waker);
    let mut items = 0;
    loop {
        flag.0.store(false, Relaxed);
        match set.poll_set(&mut cx) {
            Poll::Ready(Some(())) => items += 1,
            Poll::Ready(None) => return items,
            Poll::Pending if flag.0.load(Relaxed) => {}
            Poll::Pending => return items,
        }
    }
}

/// One row of the table.
struct Row {
    name: &'static str,
    bytes_pushed: f64,
    bytes_polled: f64,
    allocs_push_first: f64,
    allocs_push_reused: f64,
    allocs_wake: f64,
    allocs_completion: f64,
    frees_completion: f64,
}

fn per_child(count: u64) -> f64 {
    count as f64 / N as f64
}

fn bytes_per_child(live: isize, base: isize) -> f64 {
    (live - base) as f64 / N as f64
}

fn measure<P: Peer>() -> Row {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&flag));
    OPEN.store(false, Relaxed);
    PARKED.with(|parked| parked.borrow_mut().reserve(N));

    // First fill.
    let base = heap::live();
    let allocs = heap::allocs();
    let mut set = <P::Set<Gated> as Set<_>>::new();
    for _ in 0..N {
        set.push(Gated);
    }
    let allocs_push_first = per_child(heap::allocs() - allocs);
    let bytes_pushed = bytes_per_child(heap::live(), base);

    // Every child polled once and parked (the parked list was reserved
    // before `base`, so only the set's own growth counts).
    assert_eq!(poll_until_idle(&mut set, &flag, &waker), 0);
    assert_eq!(
        PARKED.with(|parked| parked.borrow().len()),
        N,
        "{}",
        P::NAME
    );
    let bytes_polled = bytes_per_child(heap::live(), base);

    // One clone + wake + drop per child's waker.
    let allocs = heap::allocs();
    PARKED.with(|parked| {
        for waker in parked.borrow().iter() {
            #[expect(
                clippy::waker_clone_wake,
                reason = "clone + wake + drop is the operation measured"
            )]
            waker.clone().wake();
        }
    });
    let allocs_wake = per_child(heap::allocs() - allocs);

    // The children's own wakers go, as a woken waker would; then drain:
    // every child completes.
    PARKED.with(|parked| parked.borrow_mut().clear());
    OPEN.store(true, Relaxed);
    let (allocs, frees) = (heap::allocs(), heap::frees());
    let mut done = 0;
    while done < N {
        let items = poll_until_idle(&mut set, &flag, &waker);
        assert!(items > 0, "{} stalled after {done} of {N}", P::NAME);
        done += items;
    }
    let allocs_completion = per_child(heap::allocs() - allocs);
    let frees_completion = per_child(heap::frees() - frees);

    // Refill the drained set.
    OPEN.store(false, Relaxed);
    let allocs = heap::allocs();
    for _ in 0..N {
        set.push(Gated);
    }
    let allocs_push_reused = per_child(heap::allocs() - allocs);
    assert_eq!(set.len(), N);
    drop(set);

    Row {
        name: P::NAME,
        bytes_pushed,
        bytes_polled,
        allocs_push_first,
        allocs_push_reused,
        allocs_wake,
        allocs_completion,
        frees_completion,
    }
}

fn main() {
    assert_eq!(size_of::<Gated>(), 0);
    let rows = [
        measure::<VelodromePeer>(),
        measure::<FuturesUtil>(),
        measure::<FuturesBuffered>(),
        measure::<Unicycle>(),
        measure::<FuturesConcurrency>(),
    ];
    println!("Memory: N = {N} zero-sized children, counting global allocator");
    println!();
    println!(
        "| implementation | bytes/child pushed | bytes/child polled | allocs/push first fill \
         | allocs/push reused | allocs/wake | allocs/completion | frees/completion |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            row.name,
            row.bytes_pushed,
            row.bytes_polled,
            row.allocs_push_first,
            row.allocs_push_reused,
            row.allocs_wake,
            row.allocs_completion,
            row.frees_completion,
        );
    }
}
