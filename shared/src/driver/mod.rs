//! The client's side of the protocol as sans-IO state machines, after quinn-proto: a driver
//! takes elders' answers ([`Steps::handle_reply`]) and timer events
//! ([`Steps::handle_timeout`]), says when it next needs the clock ([`Steps::poll_timeout`]),
//! and hands out the requests to send in a [`Ready`] that releases them only once the wallet
//! changes it made are saved ([`Unsaved::saved`]). The `client` crate drives them over QUIC,
//! the simulation over its virtual network: both run this one implementation.
//!
//! - [`wallet`]: the account's key and id, building its next transfer, its remembered state.
//! - [`multisig`]: multi-owner accounts: a policy, a transfer passed round its owners.
//! - [`bundle`]: bundles: legs countersigned by their payers, locks, the referee's outcome.
//! - [`collect`]: judging answers: shares into a debit proof, `f + 1` agreeing answers.
//! - `asking`: one request per elder of a section, retried after pauses and timeouts.
//! - [`query`]: one question answered once `f + 1` elders agree.
//! - [`transfer`]: sending a transfer to its end: resume, spendable, certify, register, settle.

mod asking;
pub mod bundle;
pub mod collect;
pub mod multisig;
pub mod query;
pub mod transfer;
pub mod wallet;

pub use asking::{Outgoing, Timing};
pub use collect::{AgreedAnswer, Progress, ShareCollector};
pub use query::Query;
pub use transfer::{Goal, TransferDriver};
pub use wallet::{account_id, build_transfer, new_transfer, Payment, Signer, WalletState};

use crate::crypto;
use crate::messages::ClientReply;
use crate::network::Section;
use crate::rejection::Rejection;
use crate::types::{AccountId, Amount, DebitProof, ElderIndex, Prefix, Seq, TransferId};

/// The steps of one sans-IO client operation, whatever it ends with: object-safe, so a caller
/// can hold drivers of several kinds and run them alike.
pub trait Steps {
    /// An elder's answer to the request tagged `tag`, or what went wrong getting it.
    fn handle_reply(
        &mut self,
        elder: ElderIndex,
        tag: u64,
        reply: Result<ClientReply, String>,
        now_ms: u64,
    );

    /// The clock reached `now_ms`: send what is due, give up what ran out of patience.
    fn handle_timeout(&mut self, now_ms: u64);

    /// When the driver next needs [`Steps::handle_timeout`]; `None` once it is done.
    fn poll_timeout(&self) -> Option<u64>;

    /// The requests to send, behind any wallet change that must be saved first.
    fn poll(&mut self) -> Ready;
}

/// One sans-IO client operation: its steps, and what it ends with.
pub trait Drive: Steps {
    /// What the operation ends with.
    type Outcome;

    /// The outcome, once, when the operation is over.
    fn take_outcome(&mut self) -> Option<Self::Outcome>;
}

/// What a driver asks of its shell: save the wallet if it changed, then send the requests.
#[derive(Debug)]
#[must_use = "the requests wait for the wallet to be saved"]
pub struct Ready {
    /// Whether the wallet state changed and must be made durable before the requests leave
    /// (a transfer recorded in flight before it is sent, R9).
    pub wallet_changed: bool,
    /// The requests, held until the wallet is saved.
    pub unsaved: Unsaved,
}

/// Requests that may leave only once the wallet change before them is durable.
#[derive(Debug)]
#[must_use = "requests wait for the wallet to be saved"]
pub struct Unsaved {
    requests: Vec<Outgoing>,
}

impl Unsaved {
    /// Marks the wallet saved (or unchanged), which releases the requests.
    pub fn saved(self) -> Vec<Outgoing> {
        self.requests
    }
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
    /// The receipt of a debit proof.
    pub fn of(proof: DebitProof) -> Receipt {
        Receipt { transfer: crypto::transfer_id(&proof.signed), seq: proof.transfer().seq, proof }
    }
}

/// Why a client operation did not succeed; the message is one line a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
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
        "conflict: seq {seq} already holds transfer {rival} of this account, which was \
         completed instead; send again to make a new transfer"
    )]
    Conflict {
        /// The seq.
        seq: Seq,
        /// The transfer that holds it.
        rival: TransferId,
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
    /// send from this wallet finishes it before anything else (it may still be certified,
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
        /// The last problem seen.
        last_problem: String,
    },
}

impl DriverError {
    /// A refusal error, summarised by its most common reason.
    pub fn refused(prefix: Prefix, refusals: Vec<(ElderIndex, Rejection)>) -> DriverError {
        let mut counts: Vec<(usize, String)> = Vec::new();
        for (_, rejection) in &refusals {
            let text = rejection.to_string();
            match counts.iter_mut().find(|(_, known)| *known == text) {
                Some((count, _)) => *count += 1,
                None => counts.push((1, text)),
            }
        }
        let reason = counts
            .into_iter()
            .max_by_key(|(count, _)| *count)
            .map_or_else(|| "no reason given".to_string(), |(_, text)| text);
        DriverError::Refused { prefix, reason, refusals }
    }

    /// The section did not answer well enough within `timing`'s patience.
    pub fn unreachable(section: &Section, timing: Timing, last_problem: String) -> DriverError {
        DriverError::Unreachable {
            prefix: section.prefix,
            elders: section.elder_count(),
            seconds: timing.patience_ms / 1_000,
            last_problem,
        }
    }

    /// `f + 1` elders agreed on an answer that does not fit the question.
    pub fn unexpected(section: &Section, timing: Timing, reply: ClientReply) -> DriverError {
        match reply {
            ClientReply::Rejected(rejection) => {
                DriverError::refused(section.prefix, vec![(ElderIndex(0), rejection)])
            }
            other => DriverError::unreachable(
                section,
                timing,
                format!("elders agreed on a wrong answer: {other:?}"),
            ),
        }
    }
}
