//! Every bound the protocol enforces, as a named constant with its unit last (R7).

/// Largest encoded message or network map the codec will decode or produce.
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;
/// Largest memo a transfer may carry.
pub const MEMO_BYTES_MAX: usize = 128;
/// Most owner keys a multi-owner account's policy may name (R10).
pub const OWNERS_MAX: usize = 16;
/// How far an honest elder's clock may be from true time. An elder signs a transfer's share
/// only while its clock is inside the transfer's window widened by this on each side (R11), so
/// an honest elder whose clock is off by up to this much never refuses a transfer that is
/// inside its window by true time; a proof thus shows that enough honest elders saw a time
/// within this of the window. Elders are expected to run NTP, which keeps clocks within tens
/// of milliseconds.
pub const CLOCK_SKEW_MS_MAX: u64 = 2_000;
/// Most legs one bundle may have (R13).
pub const LEGS_MAX: usize = 16;
/// Furthest ahead a bundle's deadline may be when a lock is signed or a referee first hears
/// of it: money is never locked for longer than this (plus the skew and the grace).
pub const BUNDLE_DEADLINE_MS_MAX: u64 = 3_600_000;
/// Most bundles a referee elder decides at once; more are refused until some are decided.
pub const REFERRALS_MAX: usize = 4_096;
/// How long after a bundle's deadline (and the allowed clock skew) an elder holding its
/// escrow waits for the outcome before it asks the referee itself (R13: no stuck money).
pub const OUTCOME_GRACE_MS: u64 = 5_000;
/// Most voids of aborted legs an elder certifies at once with its section peers.
pub const VOIDS_MAX: usize = 4_096;
/// Most rounds of one binary agreement (R12). Each round with a threshold coin ends the
/// agreement with probability at least 1/2 once the honest elders' values meet, so an
/// agreement that is not over after this many rounds never will be in practice; votes for
/// later rounds are dropped.
pub const AGREEMENT_ROUNDS_MAX: u32 = 64;
/// Most proofs a client may attach to one request as dependencies.
pub const DEPS_MAX: usize = 16;
/// Most proofs in one section-sync reply: about 200 KiB at most. Each page costs the puller a
/// round trip through both elders' group commits, so pages are large: an elder back from an
/// outage under load pulls at this many proofs per round trip and per peer.
pub const SYNC_PAGE_PROOFS_MAX: usize = 512;
/// Most proofs of each kind (debits, credits) in one history page.
pub const HISTORY_PAGE_PROOFS_MAX: usize = 64;
/// Most sections a network map may name.
pub const SECTIONS_MAX: usize = 1024;
/// Most elders one section may have.
pub const ELDERS_MAX: usize = 100;
/// Longest section prefix, in bits.
pub const PREFIX_BITS_MAX: u8 = 32;
/// Longest elder address in a network map.
pub const ADDRESS_BYTES_MAX: usize = 256;
/// Largest DER certificate a network map carries.
pub const CERTIFICATE_BYTES_MAX: usize = 4096;
/// How often an elder asks each section peer for the proofs it lacks (R6); a full page is
/// followed at once by the next request, so this bounds only how soon news starts to flow.
pub const SYNC_INTERVAL_MS: u64 = 250;
/// First delay before an unacknowledged outgoing credit is sent again.
pub const OUTBOX_RETRY_DELAY_MS_MIN: u64 = 100;
/// Longest delay between two deliveries of an unacknowledged outgoing credit.
pub const OUTBOX_RETRY_DELAY_MS_MAX: u64 = 10_000;
/// Most credits for one other section an elder holds unacknowledged before it refuses to sign
/// new transfers to that section. Only signing is refused: registrations, credits and sync
/// never wait on an outbox, so sections cut apart drain each other once they meet again.
pub const OUTBOX_CREDITS_PER_SECTION_MAX: usize = 100_000;
/// Debit messages an elder keeps hashed from signing a share, for the proof check that
/// follows: transfers validated and not yet applied, about 19 MB when full.
pub const DEBIT_MESSAGES_KEPT_MAX: usize = 65_536;
/// How long a client waits for an elder's answer before it asks again.
pub const CLIENT_ANSWER_MS_MAX: u64 = 5_000;
/// The pause before a client asks an elder again after an answer that may change.
pub const CLIENT_RETRY_DELAY_MS: u64 = 200;
/// How long one client step (a query, certifying, registering) keeps trying before it reports
/// the section unreachable.
pub const CLIENT_PATIENCE_MS: u64 = 30_000;
