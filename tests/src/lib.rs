//! Integration tests of section bank.
//!
//! - [`sim`]: a deterministic simulation of whole sections in one process: seeded randomness,
//!   virtual time, a faulty network, crashing and Byzantine elders, misbehaving clients, and a
//!   checker of every invariant in DESIGN.md.
//! - [`net`]: a real network on 127.0.0.1: genesis in a temporary directory, one `elder`
//!   process per elder, killed, paused and restarted at will.

pub mod net;
pub mod sim;
