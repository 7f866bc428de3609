//! What is built on the sets: futures-util's concurrency layer (ordered
//! sets, joins, `select_all`, the buffered stream adapters) on the fair core.
//! Each module uses the engine's crate-private `Core` API or the public set
//! types, and adds no `unsafe` of its own where it can avoid it.

pub(crate) mod buffered;
#[cfg(feature = "tokio")]
pub(crate) mod deadlines;
pub(crate) mod for_each_concurrent;
pub(crate) mod join;
pub(crate) mod ordered;
pub(crate) mod select_all;
pub(crate) mod stream_ext;
