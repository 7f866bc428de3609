//! What is built on the sets: futures-util's concurrency layer (ordered
//! sets, joins, `select_all`, the buffered stream adapters) on the fair core.
