//! A fair, prioritised, budget-aware drop-in replacement for
//! `futures::stream::FuturesUnordered`.
//!
//! ```
//! use futures::StreamExt;
//! use velodrome::FuturesUnordered; // was: use futures::stream::FuturesUnordered;
//!
//! # futures::executor::block_on(async {
//! let mut set = FuturesUnordered::new();
//! set.push(std::future::ready(1));
//! set.push(std::future::ready(2));
//! let mut sum = 0;
//! while let Some(n) = set.next().await {
//!     sum += n;
//! }
//! assert_eq!(sum, 3);
//! # });
//! ```
//!
//! What changes when you switch:
//!
//! - **Fairness**: each child is polled at most once per cycle, so a child
//!   that keeps waking itself cannot starve its siblings.
//! - **Priority lanes**: [`FuturesUnordered::push_with_priority`] with
//!   [`Priority::HIGH`] / [`NORMAL`](Priority::NORMAL) / [`LOW`](Priority::LOW).
//! - **Keys**: [`FuturesUnordered::insert`] returns a [`Key`] to cancel or
//!   remove one child.
//! - **Streams**: [`StreamsUnordered`] and [`IndexedStreamsUnordered`] merge
//!   many streams with the same fairness, lanes and keys.
//! - **Push handles**: [`FuturesUnordered::handle`] returns a [`PushHandle`]
//!   that pushes from other tasks and threads while the set is polled; an
//!   empty set waits while handles live.
//! - **Runtime citizenship** (feature `tokio`, default): the set takes part
//!   in the parent task's cooperative budget.
//! - **Cost**: no allocation per wake, per waker clone, or per push into a
//!   reused slot.
//!
//! Without the default features (`std`, `tokio`) the crate is `no_std` and
//! needs only `alloc`.
//!
//! See `ARCHITECTURE.md` in the repository for the engine and its rules.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

extern crate alloc;

mod engine;
mod family;
mod sets;

pub use engine::lanes::Priority;
pub use engine::stats::Stats;
pub use family::buffered::{BufferUnordered, Buffered, TryBufferUnordered, TryBuffered};
#[cfg(feature = "tokio")]
pub use family::deadlines::{DeadlineSet, Deadlines, Elapsed};
pub use family::for_each_concurrent::{ForEachConcurrent, TryForEachConcurrent};
pub use family::join::{join_all, try_join_all, JoinAll, TryJoinAll};
pub use family::ordered::FuturesOrdered;
pub use family::select_all::{select_all, SelectAll};
pub use family::stream_ext::{FairStreamExt, FairTryStreamExt};
pub use sets::futures_unordered::{FuturesUnordered, WithKeys};
pub use sets::handle::{Closed, PushHandle};
pub use sets::iter::{IntoIter, Iter, IterMut, IterPinMut, IterPinRef};
pub use sets::key::Key;
pub use sets::progress::ProgressWhile;
pub use sets::room::{Full, MakeRoom};
pub use sets::streams_unordered::{IndexedStreamsUnordered, StreamsUnordered};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
