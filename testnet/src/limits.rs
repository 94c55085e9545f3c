//! The testnet tools' own waits and bounds; the protocol's are in `shared::limits`, the
//! elder's in `elder::limits`.

use std::time::Duration;

/// How long the restarted elder may take to answer with everything it applied.
pub const RESTART_PATIENCE: Duration = Duration::from_secs(600);
/// Requests one client connection carries at once, well under its stream limit.
pub const IN_FLIGHT_PER_CLIENT: usize = 32;
/// Tries at picking a recipient of the asked kind before taking any other account.
pub const PICK_TRIES: usize = 64;
/// How long the restarted elder may take to catch up before the run fails.
pub const CATCH_UP_PATIENCE: Duration = Duration::from_secs(300);
/// How long the demo waits for elders or for the sections to settle.
pub const DEMO_PATIENCE: Duration = Duration::from_secs(60);
/// How long stopping elders may take before they are killed.
pub const STOP_PATIENCE: Duration = Duration::from_secs(10);
/// Pause between checks whether an elder has exited.
pub const EXIT_POLL_MS: u64 = 20;
/// How long `up` waits for every elder to answer.
pub const READY_PATIENCE: Duration = Duration::from_secs(60);
/// How often a waiting survey asks again.
pub const SURVEY_POLL_MS: u64 = 100;
/// Pause between two status checks.
pub const CATCH_UP_POLL_MS: u64 = 50;
