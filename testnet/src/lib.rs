//! A local section bank network for newcomers, developers and tests: genesis into a directory,
//! one `elder` process per elder, status, a faucet and a guided demo.
//!
//! - [`elders`]: starting, signalling and stopping elder processes; pid and log files.
//! - [`probe`]: asking elders for their status; readiness, agreement and conservation.
//! - [`demo`]: the one-command tour.
//! - [`bench_elder`]: one elder's throughput, measured the way FastPay measures one authority.

pub mod bench_elder;
pub mod demo;
pub mod elders;
pub mod probe;
