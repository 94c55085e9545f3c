//! Integration tests of section bank.
//!
//! - [`sim`]: a deterministic simulation of whole sections in one process: seeded randomness,
//!   virtual time, a faulty network, crashing and Byzantine elders, misbehaving clients, and a
//!   checker of every invariant in DESIGN.md.

pub mod sim;
