//! The section bank client: find an account's section from the network map, talk to all its
//! elders at once over QUIC, and believe only what the protocol proves. Shares are verified
//! before they are combined, answers count once `f + 1` elders agree, and a transfer in flight
//! is written to the wallet before it leaves.
//!
//! It stands on the `transport` crate (QUIC with pinned certificates, files, the map) as the
//! elder does.
//!
//! - [`wallet`]: the account key file and the account's progress beside it.
//! - `section`: asking every elder of a section at once and judging the answers.
//! - [`Client`]: balance, history, send and waiting for a credit.

mod section;
pub mod wallet;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::client::build_transfer;
use shared::crypto;
use shared::limits::HISTORY_PAGE_PROOFS_MAX;
use shared::messages::{AccountReport, ClientReply, ClientRequest, HistoryPage};
use shared::network::Network;
use shared::rejection::Rejection;
use shared::types::{
    AccountId, Amount, DebitProof, ElderIndex, Memo, Prefix, Seq, SignedTransfer, TransferId,
};

use transport::files::FileError;
use transport::map::MapError;
use transport::quic::{self, TransportError};
use wallet::Wallet;

/// Pause between checks whether a credit has landed.
const CREDIT_POLL_MS: u64 = 200;
/// Pages of history a client reads for one account at most.
const HISTORY_PAGES_MAX: usize = 10_000;

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
    /// Refused before sending: every honest elder would refuse it too.
    #[error("{0}")]
    Invalid(Rejection),
    /// Too many elders of the section refused for the request to succeed.
    #[error("section {prefix} refused: {reason}")]
    Refused {
        /// The section.
        prefix: Prefix,
        /// The most common refusal, as text.
        reason: String,
        /// Every refusal.
        refusals: Vec<(ElderIndex, Rejection)>,
    },
    /// The account had already signed another transfer at this seq; that one was completed.
    #[error(
        "conflict: seq {seq} already holds transfer {existing} of this account, which was \
         completed instead; send again to make a new transfer"
    )]
    Conflict {
        /// The seq.
        seq: Seq,
        /// The transfer that holds it.
        existing: TransferId,
    },
    /// A transfer an earlier run left in flight was completed instead of the one asked for.
    #[error(
        "an earlier transfer left in flight ({amount} to {to}, transfer {transfer}) was \
         completed first; run the command again to send this one"
    )]
    Resumed {
        /// The completed transfer.
        transfer: TransferId,
        /// Its amount.
        amount: Amount,
        /// Its recipient.
        to: AccountId,
    },
    /// The transfer was sent but is not certified yet; it stays in the wallet, and the next
    /// `send` from this wallet finishes it before anything else (it may still be certified,
    /// so no other transfer may take its seq).
    #[error(
        "transfer {transfer} (seq {seq}) is sent but not certified yet: {problem}. It stays \
         in the wallet; the next send from this account finishes it first"
    )]
    InFlight {
        /// The transfer.
        transfer: TransferId,
        /// Its seq.
        seq: Seq,
        /// Why it is not done: the section's last answer.
        problem: String,
    },
    /// Not enough elders of the section answered in time.
    #[error(
        "section {prefix} is unreachable: no quorum of its {elders} elders answered within \
         {seconds} s (last problem: {last_problem})"
    )]
    Unreachable {
        /// The section.
        prefix: Prefix,
        /// Its elders.
        elders: usize,
        /// How long the client tried.
        seconds: u64,
        /// The last error seen.
        last_problem: String,
    },
}

/// What a completed transfer leaves with its sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transfer's id.
    pub transfer: TransferId,
    /// Its seq.
    pub seq: Seq,
    /// The section-signed debit proof.
    pub proof: DebitProof,
}

impl Receipt {
    /// The receipt of a registered debit proof.
    pub fn of(proof: DebitProof) -> Receipt {
        Receipt { transfer: crypto::transfer_id(&proof.signed), seq: proof.transfer().seq, proof }
    }
}

/// An account's history as proofs, oldest debits first and credits in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Debits, in seq order.
    pub debits: Vec<DebitProof>,
    /// Credits, in transfer id order.
    pub credits: Vec<DebitProof>,
}

/// A connection to the network described by one map.
pub struct Client {
    network: Arc<Network>,
    endpoint: quinn::Endpoint,
    connections: Mutex<HashMap<(usize, ElderIndex), quinn::Connection>>,
    patience: Duration,
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
            connections: Mutex::new(HashMap::new()),
            patience: Duration::from_secs(30),
        })
    }

    /// How long an operation keeps trying before it reports the section unreachable.
    pub fn set_patience(&mut self, patience: Duration) {
        self.patience = patience;
    }

    /// The network this client talks to.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
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
    /// in flight is completed first.
    pub async fn send(
        &self,
        wallet: &mut Wallet,
        to: AccountId,
        amount: Amount,
        memo: Memo,
    ) -> Result<Receipt, ClientError> {
        if let Some(pending) = wallet.pending().cloned() {
            let transfer = crypto::transfer_id(&pending);
            tracing::info!(%transfer, "resuming a transfer in flight");
            let asked = &pending.transfer;
            let same = (asked.to, asked.amount, &asked.memo) == (to, amount, &memo);
            let receipt = self.resume(wallet, pending.clone()).await?;
            if same {
                // Most likely the same command run again after a failure: never pay twice.
                return Ok(receipt);
            }
            return Err(ClientError::Resumed {
                transfer,
                amount: pending.transfer.amount,
                to: pending.transfer.to,
            });
        }
        let balance = self.spendable(wallet).await?;
        if amount > balance {
            // Refused here, before anything is signed: once sent, a transfer must be driven
            // to its end, and this one could only wait for credits.
            return Err(ClientError::Invalid(Rejection::InsufficientFunds { balance, amount }));
        }
        let seq = wallet.next_seq();
        let signed = build_transfer(wallet.key(), &self.network, to, amount, seq, memo)
            .map_err(ClientError::Invalid)?;
        wallet.set_pending(Some(signed.clone()))?;
        self.complete(wallet, signed).await
    }

    /// What the wallet's account can spend at its next seq, as `f + 1` elders agree: their
    /// balance, less the wallet's own debits they have not applied yet. At least one of them
    /// is honest and lacks no debit counted here, so every honest elder will come to hold at
    /// least this much (credits only add).
    async fn spendable(&self, wallet: &mut Wallet) -> Result<Amount, ClientError> {
        let deadline = Instant::now() + self.patience;
        loop {
            let report = self.balance(wallet.account()).await?;
            wallet.observe_next_seq(report.next_seq);
            let unapplied = wallet.recent().iter().filter(|p| p.transfer().seq >= report.next_seq);
            let known = unapplied.clone().count() as u64;
            let behind = wallet.next_seq().0 - report.next_seq.0;
            if known == behind {
                let mut debits = unapplied.map(|proof| proof.transfer().amount);
                let owed = debits.try_fold(Amount::ZERO, |sum, amount| sum.checked_add(amount));
                return Ok(owed
                    .and_then(|owed| report.balance.checked_sub(owed))
                    .unwrap_or_default());
            }
            // The agreeing elders lag by more debits than the wallet keeps: ask again.
            if Instant::now() >= deadline {
                let section = self.network.section_of(&wallet.account());
                let problem = format!("its elders have not applied seq {} yet", report.next_seq);
                return Err(self.unreachable(section, problem));
            }
            tokio::time::sleep(Duration::from_millis(CREDIT_POLL_MS)).await;
        }
    }

    /// Completes a transfer left in flight: it may already be registered, or still need
    /// certifying.
    async fn resume(
        &self,
        wallet: &mut Wallet,
        pending: SignedTransfer,
    ) -> Result<Receipt, ClientError> {
        let report = self.balance(wallet.account()).await?;
        if report.next_seq <= pending.transfer.seq {
            return self.complete(wallet, pending).await;
        }
        self.settle_applied(wallet, &pending).await
    }

    /// Settles a seq that elders say is used: waits until `f + 1` elders agree it is applied,
    /// then reads the debit there. `signed` itself gives its receipt; a rival of ours (signed
    /// by this key elsewhere) is recorded and reported as the conflict.
    async fn settle_applied(
        &self,
        wallet: &mut Wallet,
        signed: &SignedTransfer,
    ) -> Result<Receipt, ClientError> {
        let account = wallet.account();
        let (seq, transfer) = (signed.transfer.seq, crypto::transfer_id(signed));
        let deadline = Instant::now() + self.patience;
        let report = loop {
            let report = self.balance(account).await?;
            if report.next_seq > seq {
                break report;
            }
            if Instant::now() >= deadline {
                let problem = format!("elders disagree whether seq {seq} is used");
                return Err(ClientError::InFlight { transfer, seq, problem });
            }
            tokio::time::sleep(Duration::from_millis(CREDIT_POLL_MS)).await;
        };
        let page = self.history_page(account, seq, None).await?;
        let Some(proof) = page.debits.into_iter().find(|proof| proof.transfer().seq == seq) else {
            let problem = format!("the debit at seq {seq} is applied but no elder returned it");
            return Err(self.unreachable(self.network.section_of(&account), problem));
        };
        wallet.finish(proof.clone())?;
        wallet.observe_next_seq(report.next_seq);
        if proof.signed == *signed {
            return Ok(Receipt::of(proof));
        }
        Err(ClientError::Conflict { seq, existing: crypto::transfer_id(&proof.signed) })
    }

    /// Waits until the credit of `receipt` is applied in the recipient's section, as `f + 1`
    /// of its elders agree.
    pub async fn wait_for_credit(&self, receipt: &Receipt) -> Result<(), ClientError> {
        let to = receipt.proof.transfer().to;
        let deadline = Instant::now() + self.patience;
        while !self.is_applied(to, receipt.transfer).await? {
            if Instant::now() >= deadline {
                let problem = "the credit is not applied yet".to_string();
                return Err(self.unreachable(self.network.section_of(&to), problem));
            }
            tokio::time::sleep(Duration::from_millis(CREDIT_POLL_MS)).await;
        }
        Ok(())
    }

    /// Certifies and registers `signed`; on a conflict, completes the rival instead.
    async fn complete(
        &self,
        wallet: &mut Wallet,
        signed: SignedTransfer,
    ) -> Result<Receipt, ClientError> {
        let transfer = crypto::transfer_id(&signed);
        let seq = signed.transfer.seq;
        let proof = match self.certify_or_rival(signed.clone(), wallet.recent()).await {
            Ok(Certified::Proof(proof)) => proof,
            Ok(Certified::Rival(rival)) => return Err(self.complete_rival(wallet, rival).await),
            // More than f elders hold the seq used: by this transfer or by a rival of ours.
            Err(ClientError::Refused { refusals, .. })
                if refusals.iter().any(|(_, r)| matches!(r, Rejection::StaleSeq { .. })) =>
            {
                return self.settle_applied(wallet, &signed).await;
            }
            // More than f elders refused for good: no proof can form, ever.
            Err(error @ ClientError::Refused { .. }) => {
                wallet.set_pending(None)?;
                return Err(error);
            }
            Err(ClientError::Unreachable { last_problem, .. }) => {
                return Err(ClientError::InFlight { transfer, seq, problem: last_problem });
            }
            Err(error) => return Err(error),
        };
        self.register(&proof, wallet.recent()).await?;
        wallet.finish(proof.clone())?;
        Ok(Receipt::of(proof))
    }

    /// Elders hold another transfer of ours at this seq: finish that one so the account moves
    /// on, and report the conflict.
    async fn complete_rival(&self, wallet: &mut Wallet, rival: SignedTransfer) -> ClientError {
        let seq = rival.transfer.seq;
        let existing = crypto::transfer_id(&rival);
        tracing::warn!(%seq, transfer = %existing, "completing the transfer the elders already hold");
        let outcome = async {
            wallet.set_pending(Some(rival.clone()))?;
            let receipt = self.certify_and_register(rival, wallet.recent()).await?;
            wallet.finish(receipt.proof).map_err(ClientError::from)
        };
        match outcome.await {
            Ok(()) => ClientError::Conflict { seq, existing },
            Err(error) => error,
        }
    }

    /// Certifies `signed` and registers its debit proof with the sender's section, without a
    /// wallet (the caller tracks the account's seqs); a conflict is an error.
    pub async fn certify_and_register(
        &self,
        signed: SignedTransfer,
        deps: &[DebitProof],
    ) -> Result<Receipt, ClientError> {
        let proof = self.certify(signed, deps).await?;
        self.register(&proof, deps).await?;
        Ok(Receipt::of(proof))
    }

    /// Collects `n − f` verified shares for `signed` into a debit proof; a conflict with
    /// another transfer of the account at the same seq is an error.
    pub async fn certify(
        &self,
        signed: SignedTransfer,
        deps: &[DebitProof],
    ) -> Result<DebitProof, ClientError> {
        match self.certify_or_rival(signed, deps).await? {
            Certified::Proof(proof) => Ok(proof),
            Certified::Rival(rival) => Err(ClientError::Conflict {
                seq: rival.transfer.seq,
                existing: crypto::transfer_id(&rival),
            }),
        }
    }
}

/// How certifying a transfer ended.
enum Certified {
    /// The debit proof.
    Proof(DebitProof),
    /// Another transfer of the account holds the seq.
    Rival(SignedTransfer),
}
