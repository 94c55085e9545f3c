//! Every bound and timing of the elder process itself, with the unit last; the protocol's own
//! are in `shared::limits`. Each names what it protects.

// The ledger's input queue (per source, taken in turn).

/// Inputs waiting for the ledger at most.
pub const INPUT_QUEUE_MAX: usize = 4096;
/// Encoded bytes of the inputs waiting for the ledger at most: 4 096 full-size messages would
/// be 4 GiB, so the queue is bounded by bytes as well as by count.
pub const INPUT_QUEUE_BYTES_MAX: usize = 64 << 20;
/// Client requests waiting at most; beyond it they are turned away. The rest of the queue is
/// kept for peers, so client load never crowds out credits, acknowledgements and sync.
pub const CLIENT_INPUTS_MAX: usize = 3072;
/// Messages waiting from one elder at most: one peer cannot fill the queue.
pub const PEER_INPUTS_MAX: usize = 1024;

// The ledger thread.

/// Inputs handled per commit at most.
pub const GROUP_COMMIT_MAX: usize = 256;
/// Threads that share a batch's crypto at most.
pub const WORKERS_MAX: usize = 8;
/// Fewer proofs and transfers than this in a batch are not worth a thread.
pub const PARALLEL_ITEMS_MIN: usize = 8;

// Connections.

/// TLS handshakes in progress at most.
pub const HANDSHAKES_MAX: usize = 256;
/// TLS handshakes in progress from one address at most: room for every elder and client of
/// a local testnet (one address for all) reconnecting at once after a restart.
pub const HANDSHAKES_PER_ADDRESS_MAX: usize = 64;
/// Client connections served at once at most; more are closed after the handshake.
pub const CLIENT_CONNECTIONS_MAX: usize = 1024;
/// Client connections from one address at most.
pub const CLIENT_CONNECTIONS_PER_ADDRESS_MAX: usize = 64;
/// Connections per elder of the map at most (one each way, and one being replaced).
pub const CONNECTIONS_PER_ELDER_MAX: usize = 3;

// The endpoint.

/// Overload warnings are logged at most this often, each with its count.
pub const OVERLOAD_LOG_MS: u64 = 1_000;
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;

// Towards the other elders.

/// Messages queued for one elder at most.
pub const PEER_QUEUE_MAX: usize = 1024;
/// How long connecting to an elder, or sending it one message, may take.
pub const CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Pause after a failed connection before trying again.
pub const RECONNECT_DELAY_MS: u64 = 500;

// Config files.

/// Largest config or key file read.
pub const SMALL_FILE_BYTES_MAX: usize = 16 * 1024;
/// How long a client connection may stay without a request, unless the config says otherwise.
pub const CLIENT_IDLE_MS_DEFAULT: u64 = 60_000;
