//! The client's own bounds and timings, with the unit last; the protocol's are in
//! `shared::limits`, a driver's waits in `shared::driver::Timing`.

// Queries.

/// First pause between checks whether a credit (or an outcome) has landed; it doubles each
/// time, up to [`CREDIT_POLL_MS_MAX`]. A credit usually lands within a few milliseconds of its
/// registration, so a fixed long pause was most of a quiet network's tail latency.
pub const CREDIT_POLL_MS_MIN: u64 = 5;
/// Longest pause between checks whether a credit has landed.
pub const CREDIT_POLL_MS_MAX: u64 = 200;
/// Pages of history a client reads for one account at most.
pub const HISTORY_PAGES_MAX: usize = 10_000;
/// How long a client waits for a bundle's outcome beyond the time the referee decides abort
/// at the latest (its deadline plus the clock skew).
pub const OUTCOME_WAIT_MS_MIN: u64 = 30_000;
