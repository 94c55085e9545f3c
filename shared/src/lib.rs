//! The section bank protocol as a pure state machine: no I/O, no clock, no global randomness.
//! The elder process, the client and the testnet add sockets, storage and timers around it.
//! One module is a measuring tool beside it and reads a clock: [`floor`].
//!
//! - [`agreement`]: asynchronous binary agreement among a section's elders (R12).
//! - [`types`]: accounts, amounts, seqs, prefixes, transfers and debit proofs.
//! - [`network`]: the network map and its validated form with the section keys.
//! - [`messages`]: the wire messages, one enum per direction.
//! - [`codec`]: the only place that calls bincode, with its byte limit.
//! - [`crypto`]: domain-separated hashing, account signatures, BLS shares.
//! - [`ledger`]: the elder's state machine: one batch entry point, a `Ready` out, records.
//! - [`genesis`]: a trusted dealer: key sets, sections, whole networks.
//! - [`floor`]: the crypto floor per transfer, measured on this machine.
//! - [`driver`]: the client's side as sans-IO drivers: send a transfer to its end, query a
//!   section, collect shares, agree on answers; the wallet's state and rules.
//! - [`rejection`]: the one enum of expected rejections.
//! - [`limits`]: every bound, as a named constant.

pub mod agreement;
pub mod codec;
pub mod crypto;
pub mod driver;
pub mod floor;
pub mod genesis;
pub mod ledger;
pub mod limits;
pub mod messages;
pub mod network;
pub mod rejection;
pub mod types;
