//! The engine: storage, the shared header and its wakers, the atomic wake
//! sets, the poller's due sets, lanes, the budget glue and the one atomic
//! facade. Everything above (`sets`, `family`) goes through [`core::Core`].

pub(crate) mod atomic_waker;
pub(crate) mod budget;
pub(crate) mod core;
pub(crate) mod due;
pub(crate) mod header;
pub(crate) mod inject;
pub(crate) mod lanes;
pub(crate) mod loom;
pub(crate) mod page;
pub(crate) mod slots;
pub(crate) mod stash;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod wake_set;
pub(crate) mod waker;
