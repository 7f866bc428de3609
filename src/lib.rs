//! velodrome: a fair, prioritised, budget-aware `FuturesUnordered` (work in progress).
