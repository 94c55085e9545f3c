//! The chaos run's load: transfers of 1 between funded accounts, `in_flight` at once, each
//! kept going through faults until it is confirmed (debit registered at `n − f` elders of its
//! section, credit applied at `f + 1` of the recipient's), exactly as an honest client must:
//! once a transfer is signed for a seq, that transfer is retried, never another one. Every
//! confirmed transfer is recorded for the checker.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::{Client, ClientError};
use futures::stream::{FuturesUnordered, StreamExt};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use shared::driver::{build_transfer, DriverError, Payment};
use shared::network::Network;
use shared::types::{AccountId, Amount, Seq, SignedTransfer, TransferId};
use tokio::sync::watch;

use crate::bench_net::{pick_recipient, Account};
use crate::RunError;

/// Pause before a transfer that failed for now is tried again.
const RETRY_MS: u64 = 200;

/// A transfer a client saw confirmed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Confirmed {
    /// The transfer.
    pub transfer: TransferId,
    /// The payer.
    pub from: AccountId,
    /// Its seq.
    pub seq: Seq,
    /// The payee.
    pub to: AccountId,
    /// The amount.
    pub amount: Amount,
    /// When it was first sent, in ms since the load began.
    pub sent_ms: u64,
    /// When it was confirmed, in ms since the load began.
    pub confirmed_ms: u64,
}

/// What the load did.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Every confirmed transfer.
    pub confirmed: Vec<Confirmed>,
    /// Transfers the section refused for certain (their accounts stop sending).
    pub refused: u64,
    /// Attempts that failed for now and were tried again.
    pub retries: u64,
    /// Refusals, by message, as examples for the report.
    pub refusals: Vec<String>,
    /// Conflicts: the load never signs two transfers for one seq, so each is a violation.
    pub conflicts: Vec<String>,
}

/// Counters the progress line reads while the load runs.
#[derive(Debug, Default)]
pub struct Tally {
    /// Transfers confirmed so far.
    pub confirmed: AtomicU64,
    /// Attempts retried so far.
    pub retries: AtomicU64,
}

enum Attempt {
    Confirmed(Confirmed),
    Refused(String),
    Conflict(String),
    Stopped,
}

/// Drives transfers until `stop` turns true; in-flight attempts are then abandoned (they may
/// still complete inside the network, which the checker's conservation check covers).
pub(crate) async fn run(
    clients: &[Client],
    accounts: &mut [Account],
    in_flight: usize,
    cross_section: f64,
    rng: &mut ChaCha20Rng,
    (began, tally): (Instant, &Tally),
    stop: watch::Receiver<bool>,
) -> Result<LoadOutcome, RunError> {
    let network = clients[0].network().clone();
    let mut idle: VecDeque<usize> = (0..accounts.len()).collect();
    let mut running = FuturesUnordered::new();
    let mut outcome = LoadOutcome::default();
    let mut slot = 0usize;
    loop {
        while running.len() < in_flight && !*stop.borrow() {
            let Some(from) = idle.pop_front() else { break };
            let to = pick_recipient(rng, accounts, from, cross_section);
            let account = &mut accounts[from];
            let signed = transfer(&network, account, to)?;
            account.next_seq = Seq(account.next_seq.0 + 1);
            let client = &clients[slot % clients.len()];
            slot += 1;
            let stop = stop.clone();
            running
                .push(async move { (from, keep_trying(client, signed, began, tally, stop).await) });
        }
        let Some((from, attempt)) = running.next().await else { break };
        match attempt {
            Attempt::Confirmed(confirmed) => {
                outcome.confirmed.push(confirmed);
                idle.push_back(from);
            }
            Attempt::Refused(reason) => {
                outcome.refused += 1;
                outcome.refusals.push(reason);
            }
            Attempt::Conflict(problem) => outcome.conflicts.push(problem),
            Attempt::Stopped => {}
        }
    }
    outcome.retries = tally.retries.load(Ordering::Relaxed);
    Ok(outcome)
}

fn transfer(
    network: &Network,
    account: &Account,
    to: AccountId,
) -> Result<SignedTransfer, RunError> {
    build_transfer(&account.key, network, Payment::new(to, Amount(1)), account.next_seq)
        .map_err(|rejection| RunError::Failed(rejection.to_string()))
}

/// Certifies, registers and waits for the credit of `signed`, again and again until it is
/// confirmed, refused for certain, or the load stops.
async fn keep_trying(
    client: &Client,
    signed: SignedTransfer,
    began: Instant,
    tally: &Tally,
    mut stop: watch::Receiver<bool>,
) -> Attempt {
    let sent_ms = began.elapsed().as_millis() as u64;
    loop {
        let attempt = async {
            let receipt = client.certify_and_register(signed.clone(), &[]).await?;
            client.wait_for_credit(&receipt).await?;
            Ok::<_, ClientError>(receipt)
        };
        let result = tokio::select! {
            result = attempt => result,
            _ = stop.wait_for(|stopped| *stopped) => return Attempt::Stopped,
        };
        match result {
            Ok(receipt) => {
                tally.confirmed.fetch_add(1, Ordering::Relaxed);
                let transfer = &signed.transfer;
                return Attempt::Confirmed(Confirmed {
                    transfer: receipt.transfer,
                    from: transfer.from,
                    seq: transfer.seq,
                    to: transfer.to,
                    amount: transfer.amount,
                    sent_ms,
                    confirmed_ms: began.elapsed().as_millis() as u64,
                });
            }
            Err(ClientError::Failed(error @ DriverError::Refused { .. })) => {
                return Attempt::Refused(error.to_string());
            }
            Err(ClientError::Failed(error @ DriverError::Conflict { .. })) => {
                let account = signed.transfer.from;
                return Attempt::Conflict(format!("account {account}: {error}"));
            }
            Err(_) => {
                tally.retries.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(RETRY_MS)) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return Attempt::Stopped,
                }
            }
        }
    }
}
