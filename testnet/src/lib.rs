//! A local section bank network for newcomers, developers and tests: genesis into a directory,
//! one `elder` process per elder, status, a faucet and a guided demo.
//!
//! - [`genesis`]: a trusted dealer writing a whole network's files.
//! - [`elders`]: starting, signalling and stopping elder processes; pid and log files.
//! - [`survey`]: asking elders for their status; readiness, agreement and conservation.
//! - [`demo`]: the one-command tour.
//! - [`bench_elder`]: one elder's throughput, measured the way FastPay measures one authority.
//! - [`bench_net`]: end-to-end load against a running network.
//! - [`limits`]: the tools' waits and bounds.
//! - [`catch_up`]: one elder taken down under that load, and how fast it catches up.
//! - [`chaos`]: load under injected faults, with a verdict; [`lies`]: the lying elders.
//! - [`audit`]: the checker over a stopped network's stores.

pub mod audit;
pub mod bench_elder;
pub mod bench_net;
pub mod catch_up;
pub mod chaos;
pub mod demo;
pub mod elders;
pub mod genesis;
pub mod lies;
pub mod limits;
pub mod survey;

/// Why the demo or a benchmark could not run (a failed check is reported, not an error).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Genesis failed.
    #[error(transparent)]
    Genesis(#[from] genesis::GenesisError),
    /// A network map is unusable.
    #[error(transparent)]
    Map(#[from] transport::map::MapError),
    /// Elders could not be started.
    #[error(transparent)]
    Elders(#[from] elders::ElderError),
    /// A client operation failed.
    #[error(transparent)]
    Client(#[from] client::ClientError),
    /// A temporary directory or file could not be made.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Something the run needs did not happen.
    #[error("{0}")]
    Failed(String),
}
