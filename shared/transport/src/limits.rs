//! The transport's bounds and timings, with the unit last; the protocol's own (message size
//! and the rest) are in `shared::limits`.

// QUIC.

/// Streams a peer may have open at once on one connection, each direction.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 64;
/// A connection with no traffic for this long is closed.
pub const IDLE_TIMEOUT_MS: u32 = 30_000;
/// How long a peer may take to send one whole message.
pub const MESSAGE_READ_TIMEOUT_MS: u64 = 10_000;
/// Keep-alive interval, well under the idle timeout.
pub const KEEP_ALIVE_MS: u64 = 5_000;

// Files.

/// Bytes of a secret-key file: 64 hex digits and a newline.
pub const SECRET_KEY_FILE_BYTES_MAX: usize = 65;
