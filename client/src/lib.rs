//! The section bank client: find an account's section from the network map, talk to all its
//! elders at once over QUIC, and believe only what the protocol proves. The protocol itself is
//! in `shared::driver` (the same drivers the simulation runs); this crate drives them with
//! real connections and timers and saves the wallet when a driver says so, before the
//! requests that depend on it leave.
//!
//! It stands on the `transport` crate (QUIC with pinned certificates, files, the map) as the
//! elder does.
//!
//! - [`wallet`]: the account key file and the account's state beside it.
//! - [`limits`]: the client's own bounds and timings.
//! - [`multisig`]: the policy and partly signed transfer files of multi-owner accounts.
//! - `section`: running a driver: its requests over kept connections, its timers.
//! - `bundles`: submitting a bundle, its outcome, waiting until it is settled.
//! - [`Client`]: balance, history, send and waiting for a credit.

mod bundles;
pub mod limits;
pub mod multisig;
mod section;
pub mod wallet;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::crypto;
use shared::driver::multisig::{MultisigError, PartialTransfer};
use shared::driver::{
    DriverError, Goal, Payment, Query, Signer, Timing, TransferDriver, WalletState,
};
use shared::limits::HISTORY_PAGE_PROOFS_MAX;
use shared::messages::{AccountReport, ClientReply, ClientRequest, HistoryPage};
use shared::network::Network;
use shared::types::{AccountId, DebitProof, ElderIndex, Seq, SignedTransfer, TransferId};

use crate::limits::{CREDIT_POLL_MS_MAX, CREDIT_POLL_MS_MIN, HISTORY_PAGES_MAX};
pub use bundles::BundleReport;
pub use shared::driver::Receipt;
use transport::files::FileError;
use transport::map::MapError;
use transport::quic::{self, TransportError};
use wallet::Wallet;

/// Why a client operation failed; the message is one line a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The network map file is unusable.
    #[error(transparent)]
    Map(#[from] MapError),
    /// The QUIC endpoint could not be set up.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A multi-owner policy or partial transfer is unusable.
    #[error(transparent)]
    Multisig(#[from] MultisigError),
    /// A bundle file is unusable.
    #[error(transparent)]
    Bundle(#[from] shared::driver::bundle::BundleError),
    /// The section refused, the transfer conflicts or is still in flight, or the section did
    /// not answer: what the protocol says, as the driver found it.
    #[error(transparent)]
    Failed(#[from] DriverError),
}

/// An account's history as proofs, oldest debits first and credits in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Debits, in seq order.
    pub debits: Vec<DebitProof>,
    /// Credits, in transfer id order.
    pub credits: Vec<DebitProof>,
}

/// The kept connection to each elder, shared with the requests still running on them.
type Connections = Arc<Mutex<HashMap<(usize, ElderIndex), quinn::Connection>>>;

/// A connection to the network described by one map.
pub struct Client {
    network: Arc<Network>,
    endpoint: quinn::Endpoint,
    connections: Connections,
    timing: Timing,
}

impl Client {
    /// Reads and checks the network map at `path` and opens a QUIC endpoint.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        Client::new(Arc::new(transport::map::read(path)?))
    }

    /// A client for an already checked network.
    pub fn new(network: Arc<Network>) -> Result<Client, ClientError> {
        let config = quic::client_config(&network.map, None)?;
        let local = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let mut endpoint = quinn::Endpoint::client(local).map_err(TransportError::Bind)?;
        endpoint.set_default_client_config(config);
        Ok(Client {
            network,
            endpoint,
            connections: Connections::default(),
            timing: Timing::DEFAULT,
        })
    }

    /// How long each step keeps trying before it reports the section unreachable.
    pub fn set_patience(&mut self, patience: Duration) {
        self.timing.patience_ms = patience.as_millis() as u64;
    }

    /// The network this client talks to.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    /// The answer `f + 1` elders of `account`'s section agree on (R8).
    async fn agree(
        &self,
        account: AccountId,
        request: ClientRequest,
    ) -> Result<ClientReply, ClientError> {
        let section = self.network.section_index_of(&account);
        let mut query = Query::new(&self.network, section, request, self.timing, 0, 0);
        Ok(self.drive(&mut query, |_| Ok(())).await??)
    }

    fn unexpected(&self, account: AccountId, reply: ClientReply) -> ClientError {
        let section = self.network.section_of(&account);
        DriverError::unexpected(section, self.timing, reply).into()
    }

    /// The balance and next seq of `account`, as `f + 1` elders of its section agree.
    pub async fn balance(&self, account: AccountId) -> Result<AccountReport, ClientError> {
        match self.agree(account, ClientRequest::Balance { account }).await? {
            ClientReply::Balance(report) if report.account == account => Ok(report),
            other => Err(self.unexpected(account, other)),
        }
    }

    /// Whether `transfer` is applied in `account`'s section, as `f + 1` elders agree.
    pub async fn is_applied(
        &self,
        account: AccountId,
        transfer: TransferId,
    ) -> Result<bool, ClientError> {
        match self.agree(account, ClientRequest::Applied { transfer }).await? {
            ClientReply::Applied { transfer: answered, applied } if answered == transfer => {
                Ok(applied)
            }
            other => Err(self.unexpected(account, other)),
        }
    }

    /// Every debit and credit of `account`, page by page, each page agreed by `f + 1` elders.
    pub async fn history(&self, account: AccountId) -> Result<History, ClientError> {
        let mut history = History::default();
        let mut debits_from = Seq::FIRST;
        let mut credits_after = None;
        for _ in 0..HISTORY_PAGES_MAX {
            let page = self.history_page(account, debits_from, credits_after).await?;
            let full = page.debits.len() == HISTORY_PAGE_PROOFS_MAX
                || page.credits.len() == HISTORY_PAGE_PROOFS_MAX;
            if let Some(last) = page.debits.last() {
                debits_from = Seq(last.transfer().seq.0.saturating_add(1));
            }
            if let Some(last) = page.credits.last() {
                credits_after = Some(crypto::transfer_id(&last.signed));
            }
            history.debits.extend(page.debits);
            history.credits.extend(page.credits);
            if !full {
                break;
            }
        }
        Ok(history)
    }

    async fn history_page(
        &self,
        account: AccountId,
        debits_from: Seq,
        credits_after: Option<TransferId>,
    ) -> Result<HistoryPage, ClientError> {
        let request = ClientRequest::History { account, debits_from, credits_after };
        match self.agree(account, request).await? {
            ClientReply::History(page) if page.account == account => Ok(page),
            other => Err(self.unexpected(account, other)),
        }
    }

    /// Pays `amount` from the wallet's account to `to`: certifies the transfer with its
    /// section, registers the debit there, and returns the receipt. A transfer the wallet left
    /// in flight is completed first; the wallet is saved before each request that depends on
    /// it leaves.
    pub async fn send(
        &self,
        wallet: &mut Wallet,
        payment: Payment,
    ) -> Result<Receipt, ClientError> {
        if let Some(pending) = wallet.state().pending() {
            tracing::info!(transfer = %crypto::transfer_id(pending), "resuming a transfer in flight");
        }
        let goal = Goal::Send(payment);
        let key = Some(Signer::Key(wallet.key().clone()));
        let state = wallet.state().clone();
        let mut driver =
            TransferDriver::new(self.network.clone(), key, state, goal, self.timing, 0);
        let outcome = self.drive(&mut driver, |driver| wallet.save(driver.wallet().clone())).await;
        // What the driver learnt without needing it durable (the agreed next seq) is kept too.
        wallet.remember(driver.wallet().clone());
        Ok(outcome??)
    }

    /// Waits until the credit of `receipt` is applied in the recipient's section, as `f + 1`
    /// of its elders agree.
    pub async fn wait_for_credit(&self, receipt: &Receipt) -> Result<(), ClientError> {
        let to = receipt.proof.transfer().to;
        let deadline = Instant::now() + Duration::from_millis(self.timing.patience_ms);
        let mut pauses = poll_pauses();
        while !self.is_applied(to, receipt.transfer).await? {
            if Instant::now() >= deadline {
                let problem = "the credit is not applied yet".to_string();
                let section = self.network.section_of(&to);
                return Err(DriverError::unreachable(section, self.timing, problem).into());
            }
            tokio::time::sleep(pauses.next().unwrap_or_default()).await;
        }
        Ok(())
    }

    /// Runs a wallet-less transfer driver: the caller tracks the account's seqs.
    async fn complete(&self, goal: Goal, deps: &[DebitProof]) -> Result<Receipt, ClientError> {
        let state = WalletState::with_deps(deps);
        let mut driver =
            TransferDriver::new(self.network.clone(), None, state, goal, self.timing, 0);
        Ok(self.drive(&mut driver, |_| Ok(())).await??)
    }

    /// Certifies `signed` and registers its debit proof with the sender's section, without a
    /// wallet (the caller tracks the account's seqs); a conflict is an error.
    pub async fn certify_and_register(
        &self,
        signed: SignedTransfer,
        deps: &[DebitProof],
    ) -> Result<Receipt, ClientError> {
        self.complete(Goal::Complete { signed, register: true }, deps).await
    }

    /// Collects `n − f` verified shares for `signed` into a debit proof; a conflict with
    /// another transfer of the account at the same seq is an error.
    pub async fn certify(
        &self,
        signed: SignedTransfer,
        deps: &[DebitProof],
    ) -> Result<DebitProof, ClientError> {
        let receipt = self.complete(Goal::Complete { signed, register: false }, deps).await?;
        Ok(receipt.proof)
    }

    /// Certifies and registers a transfer from a multi-owner account once `threshold` of its
    /// owners have signed it; says how many are missing otherwise.
    pub async fn submit(&self, partial: &PartialTransfer) -> Result<Receipt, ClientError> {
        partial.check(&self.network.genesis)?;
        let signed = partial.complete()?;
        self.certify_and_register(signed, &[]).await
    }

    /// Registers a debit proof with its sender's section until `n − f` elders applied it.
    pub async fn register(
        &self,
        proof: &DebitProof,
        deps: &[DebitProof],
    ) -> Result<(), ClientError> {
        self.complete(Goal::Register(proof.clone()), deps).await.map(|_| ())
    }
}

/// The pauses between checks whether something has landed: doubling from
/// [`CREDIT_POLL_MS_MIN`] to [`CREDIT_POLL_MS_MAX`], then that, without end.
pub(crate) fn poll_pauses() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(CREDIT_POLL_MS_MIN), |ms| Some((ms * 2).min(CREDIT_POLL_MS_MAX)))
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_pauses_double_from_the_least_and_stay_at_the_most() {
        let pauses: Vec<u64> =
            poll_pauses().take(9).map(|pause| pause.as_millis() as u64).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 200, 200, 200]);
    }
}
