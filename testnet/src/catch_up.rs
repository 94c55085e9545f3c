//! `testnet bench --outage SECONDS`: how fast an elder catches up after being down under load.
//! The last elder of the first section is killed with SIGKILL as the load starts, restarted
//! after the outage, and timed from its restart until it has applied as many proofs as its
//! section peers had when it came back (replaying its store and syncing the rest).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::genesis::Genesis;
use client::Client;
use serde::Serialize;
use shared::network::Network;

use crate::elders::{is_elder_process, recorded_pid, send_signal, Elders, Signal};
use crate::limits::{CATCH_UP_PATIENCE, CATCH_UP_POLL_MS};
use crate::{survey, RunError};

/// What one outage measured.
#[derive(Clone, Debug, Serialize)]
pub struct CatchUp {
    /// The elder taken down, as `section/index`.
    pub elder: String,
    /// How long it was down, in seconds.
    pub down_seconds: f64,
    /// Proofs its peers applied while it was down.
    pub proofs_missed: u64,
    /// From its restart until it applied as many proofs as its peers had then, in seconds.
    pub catch_up_seconds: f64,
}

/// Takes the last elder of the first section down for `down`, then times its catch-up.
pub async fn run(
    genesis: Genesis,
    network: Arc<Network>,
    down: Duration,
) -> Result<CatchUp, RunError> {
    let mut client = Client::new(network.clone())?;
    client.set_patience(Duration::from_secs(5));
    let section = &network.sections[0];
    let index = section.elder_count() as u32 - 1;
    let name = format!("{}/{index}", section.prefix);
    // Genesis lists the elders section by section, so the first section's come first.
    let position = index as usize;
    let status = |index| survey::status(&client, 0, index);
    let missing = || RunError::Failed(format!("elder {name} does not answer"));
    let before = status(index).await.ok_or_else(missing)?.applied;
    let pid = recorded_pid(&genesis.elders[position])
        .filter(|pid| is_elder_process(*pid))
        .ok_or_else(missing)?;
    send_signal(pid, Signal::Kill);
    let killed = Instant::now();
    tokio::time::sleep(down).await;
    let peers = futures::future::join_all((0..index).map(status)).await;
    let target = peers.iter().flatten().map(|status| status.applied).min().ok_or_else(|| {
        RunError::Failed(format!("no peer of elder {name} answers after the outage"))
    })?;
    let mut elders = Elders::new(genesis, true)?;
    elders.spawn(position)?;
    let restarted = Instant::now();
    let down_seconds = (restarted - killed).as_secs_f64();
    loop {
        if status(index).await.is_some_and(|status| status.applied >= target) {
            let catch_up_seconds = restarted.elapsed().as_secs_f64();
            let proofs_missed = target.saturating_sub(before);
            return Ok(CatchUp { elder: name, down_seconds, proofs_missed, catch_up_seconds });
        }
        if restarted.elapsed() > CATCH_UP_PATIENCE {
            let seconds = CATCH_UP_PATIENCE.as_secs();
            return Err(RunError::Failed(format!("elder {name} did not catch up in {seconds} s")));
        }
        tokio::time::sleep(Duration::from_millis(CATCH_UP_POLL_MS)).await;
    }
}
