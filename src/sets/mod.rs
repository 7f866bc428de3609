//! The set types: thin layers over the engine's `Core` that say what
//! polling one child means, plus the API, keys and iterators they share.

pub(crate) mod futures_unordered;
pub(crate) mod handle;
pub(crate) mod iter;
pub(crate) mod key;
pub(crate) mod progress;
pub(crate) mod room;
pub(crate) mod set_api;
pub(crate) mod streams_unordered;
