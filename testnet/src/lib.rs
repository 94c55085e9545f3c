//! A local section bank network for newcomers, developers and tests: genesis into a directory,
//! one `elder` process per elder, status, a faucet and a guided demo.
//!
//! - [`elders`]: starting, signalling and stopping elder processes; pid and log files.
//! - [`probe`]: asking elders for their status; readiness, agreement and conservation.
//! - [`demo`]: the one-command tour.

pub mod demo;
pub mod elders;
pub mod probe;
