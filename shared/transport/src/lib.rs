//! What the elder and the client both stand on, and nothing of the protocol: the protocol is
//! in `shared`, which stays free of sockets and files.
//!
//! - [`quic`]: QUIC and TLS with the map's authority and pinned elder certificates, both ends
//!   of the handshake, and one encoded message per stream.
//! - [`files`]: bounded reads, secret files (0600, refused when others can read them), atomic
//!   replacement.
//! - [`map`]: reading and checking a network map file.
//! - [`logging`]: one log setup for every binary, filtered by `RUST_LOG`.
//! - [`limits`]: its bounds and timings.

pub mod files;
pub mod limits;
pub mod logging;
pub mod map;
pub mod quic;
