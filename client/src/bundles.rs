//! Bundles through the client (R12, R13): lock every signed leg at its payer's section, show
//! the locks to the referee and wait for its certified outcome, and wait until every section
//! of the bundle has settled it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use shared::crypto;
use shared::driver::bundle::{OutcomeQuery, PartialBundle, Verdict};
use shared::driver::DriverError;
use shared::limits::CLOCK_SKEW_MS_MAX;
use shared::types::{BundleId, DebitProof, OutcomeCertificate};

use crate::limits::OUTCOME_WAIT_MS_MIN;
use crate::{Client, ClientError};

/// What became of a submitted bundle.
#[derive(Clone, Debug)]
pub struct BundleReport {
    /// The bundle.
    pub bundle: BundleId,
    /// Per leg: its lock certificate, or why it could not be locked.
    pub locks: Vec<Result<DebitProof, String>>,
    /// The referee's certified outcome.
    pub certificate: OutcomeCertificate,
}

/// Milliseconds since the Unix epoch by this machine's clock.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

impl Client {
    /// Submits a bundle: locks every leg its payer signed (certified and registered at the
    /// payer's section, all at once), shows the locks to the referee and waits for the
    /// certified outcome: commit if every leg was locked before the deadline, abort once the
    /// deadline has passed without. A leg that cannot be locked is reported, not an error.
    pub async fn submit_bundle(
        &self,
        partial: &PartialBundle,
    ) -> Result<BundleReport, ClientError> {
        partial.check(&self.network.genesis)?;
        let legs = 0..partial.bundle.legs.len() as u8;
        let locking = legs.map(|leg| async move {
            let Some(signed) = partial.lock(leg) else {
                return Err(format!("leg {leg} is not signed by its payer"));
            };
            let receipt = self.certify_and_register(signed, &[]).await;
            receipt.map(|receipt| receipt.proof).map_err(|error| error.to_string())
        });
        let locks: Vec<Result<DebitProof, String>> = join_all(locking).await;
        let shown: Vec<DebitProof> = locks.iter().filter_map(|lock| lock.clone().ok()).collect();
        if shown.is_empty() {
            // Nothing is locked, so there is nothing for the referee to decide.
            let reasons: Vec<String> = locks
                .iter()
                .enumerate()
                .filter_map(|(leg, lock)| {
                    lock.as_ref().err().map(|why| format!("leg {leg}: {why}"))
                })
                .collect();
            let reason = format!("no leg could be locked ({})", reasons.join("; "));
            let prefix = partial.bundle.referee;
            return Err(DriverError::Refused { prefix, reason, refusals: Vec::new() }.into());
        }
        // Waiting past the deadline (and the skew) is the referee's way to decide abort.
        let decided_by = partial.bundle.deadline_ms.saturating_add(CLOCK_SKEW_MS_MAX);
        let mut timing = self.timing;
        timing.patience_ms =
            decided_by.saturating_sub(now_ms()).saturating_add(OUTCOME_WAIT_MS_MIN);
        let mut query =
            OutcomeQuery::decide(self.network.clone(), partial.bundle.clone(), shown, timing, 0)?;
        let certificate = match self.drive(&mut query, |_| Ok(())).await?? {
            Verdict::Decided(certificate) => *certificate,
            Verdict::Undecided => unreachable!("a decide query waits for the certificate"),
        };
        Ok(BundleReport { bundle: partial.id(), locks, certificate })
    }

    /// The certified outcome of bundle `id`, from the first section that holds it; `None`
    /// if `f + 1` elders of every section say it is not decided (or not known) there.
    pub async fn bundle_outcome(
        &self,
        id: BundleId,
    ) -> Result<Option<OutcomeCertificate>, ClientError> {
        for section in 0..self.network.sections.len() {
            if let Verdict::Decided(certificate) = self.outcome_at(section, id).await? {
                return Ok(Some(*certificate));
            }
        }
        Ok(None)
    }

    async fn outcome_at(&self, section: usize, id: BundleId) -> Result<Verdict, ClientError> {
        let mut query = OutcomeQuery::status(self.network.clone(), section, id, self.timing, 0);
        Ok(self.drive(&mut query, |_| Ok(())).await??)
    }

    /// Waits until every section of the bundle has applied its outcome (`f + 1` elders of
    /// each hold the certificate), so every leg is paid or refunded.
    pub async fn wait_settled(&self, certificate: &OutcomeCertificate) -> Result<(), ClientError> {
        let id = crypto::bundle_id(&certificate.bundle);
        let mut sections: Vec<usize> = certificate
            .bundle
            .legs
            .iter()
            .flat_map(|leg| [leg.from, leg.to])
            .map(|account| self.network.section_index_of(&account))
            .collect();
        sections.sort_unstable();
        sections.dedup();
        let started = std::time::Instant::now();
        for section in sections {
            let mut pauses = crate::poll_pauses();
            while self.outcome_at(section, id).await? == Verdict::Undecided {
                if started.elapsed() >= Duration::from_millis(self.timing.patience_ms) {
                    let problem = "the outcome is not applied there yet".to_string();
                    let section = &self.network.sections[section];
                    return Err(DriverError::unreachable(section, self.timing, problem).into());
                }
                tokio::time::sleep(pauses.next().unwrap_or_default()).await;
            }
        }
        Ok(())
    }
}
