//! The wire messages: one enum per direction.

use serde::{Deserialize, Serialize};

use crate::agreement::{Round, Vote};
use crate::limits::{DEPS_MAX, LEGS_MAX, MEMO_BYTES_MAX, OWNERS_MAX, SYNC_PAGE_PROOFS_MAX};
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Amount, Authority, BlsSignature, Bundle, BundleId, DebitProof, Digest, Memo,
    OutcomeCertificate, OwnerSignature, PayerAuthority, Policy, Seq, SignedTransfer, TransferId,
    Window,
};

/// Client → elder.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Phase 1: check a signed transfer and answer with a signature share.
    Validate {
        /// The transfer.
        transfer: SignedTransfer,
        /// Proofs the elder may lack (earlier debits, credits to the sender).
        deps: Vec<DebitProof>,
    },
    /// Phase 3: apply a certified debit.
    Register {
        /// The debit proof.
        proof: DebitProof,
        /// Proofs the elder may lack (earlier debits, credits to the sender).
        deps: Vec<DebitProof>,
    },
    /// The account's balance, next seq and state digest.
    Balance {
        /// The account.
        account: AccountId,
    },
    /// A page of the account's history, as proofs.
    History {
        /// The account.
        account: AccountId,
        /// First debit seq wanted.
        debits_from: Seq,
        /// Credits with an id above this one (all, if `None`).
        credits_after: Option<TransferId>,
    },
    /// The elder's state digest and counts, for operators and tests.
    Status,
    /// Whether the transfer is applied here (its debit, its credit or both).
    Applied {
        /// The transfer.
        transfer: TransferId,
    },
    /// To the referee section: decide this bundle, shown these lock certificates (all of
    /// them to decide commit). Answered with the outcome once it is certified.
    Decide {
        /// The bundle.
        bundle: Bundle,
        /// Lock certificates of its legs, at most one per leg.
        locks: Vec<DebitProof>,
    },
    /// The certified outcome of a bundle, if this elder knows it.
    Outcome {
        /// The bundle.
        bundle: BundleId,
    },
}

/// Checks a memo against `MEMO_BYTES_MAX`.
pub(crate) fn check_memo(memo: &Memo) -> Result<(), Rejection> {
    if memo.is_within_limit() {
        return Ok(());
    }
    Err(Rejection::MemoTooLong { bytes: memo.0.len() as u64, max: MEMO_BYTES_MAX as u64 })
}

/// Checks that a transfer's window is not empty (it may still lie in the past or future).
pub(crate) fn check_window_shape(window: &Window) -> Result<(), Rejection> {
    match (window.valid_after, window.valid_before) {
        (Some(valid_after), Some(valid_before)) if valid_before < valid_after => {
            Err(Rejection::EmptyWindow { valid_after, valid_before })
        }
        _ => Ok(()),
    }
}

/// R7 for one signed transfer: its memo, the owner lists of a multi-owner one and the legs
/// of a lock's bundle within their limits.
fn check_signed(signed: &SignedTransfer) -> Result<(), Rejection> {
    check_memo(&signed.transfer.memo)?;
    check_authority_bounds(&signed.authority)
}

fn check_authority_bounds(authority: &Authority) -> Result<(), Rejection> {
    match authority {
        Authority::Key(_) => Ok(()),
        Authority::Policy { policy, signatures } => check_owners(policy, signatures),
        Authority::Void { abort, payer, .. } => {
            check_legs(&abort.bundle)?;
            check_payer_bounds(payer)
        }
        Authority::Bundle { bundle, payer, .. } => {
            check_legs(bundle)?;
            check_payer_bounds(payer)
        }
    }
}

fn check_payer_bounds(payer: &PayerAuthority) -> Result<(), Rejection> {
    match payer {
        PayerAuthority::Key(_) => Ok(()),
        PayerAuthority::Policy { policy, signatures } => check_owners(policy, signatures),
    }
}

/// R7 for a policy and its signatures: at most `OWNERS_MAX` of either.
fn check_owners(policy: &Policy, signatures: &[OwnerSignature]) -> Result<(), Rejection> {
    let count = policy.owners.len().max(signatures.len());
    if count > OWNERS_MAX {
        return Err(Rejection::TooManyOwners { count: count as u64, max: OWNERS_MAX as u64 });
    }
    Ok(())
}

/// R7 for a bundle: 1 to `LEGS_MAX` legs.
fn check_legs(bundle: &Bundle) -> Result<(), Rejection> {
    let count = bundle.legs.len();
    if count == 0 || count > LEGS_MAX {
        return Err(Rejection::LegCount { count: count as u64, max: LEGS_MAX as u64 });
    }
    Ok(())
}

/// R7 for a bundle and lock certificates shown with it: at most one per leg, each bounded.
fn check_bundle_and_locks(bundle: &Bundle, locks: &[DebitProof]) -> Result<(), Rejection> {
    check_legs(bundle)?;
    check_proofs(locks, bundle.legs.len(), |count, max| Rejection::LegCount { count, max })
}

/// Checks a list of proofs: at most `max` of them (`too_many` builds the refusal), each
/// within its limits.
fn check_proofs(
    proofs: &[DebitProof],
    max: usize,
    too_many: impl FnOnce(u64, u64) -> Rejection,
) -> Result<(), Rejection> {
    if proofs.len() > max {
        return Err(too_many(proofs.len() as u64, max as u64));
    }
    proofs.iter().try_for_each(|proof| check_signed(&proof.signed))
}

impl ClientRequest {
    /// R7 where bytes become values: every count and size this request carries is within
    /// its limit. Checked before the request is queued or any signature is checked, so
    /// expensive work is paid for by valid input only.
    pub fn check_bounds(&self) -> Result<(), Rejection> {
        let too_many_deps = |count, max| Rejection::TooManyDeps { count, max };
        match self {
            ClientRequest::Validate { transfer, deps } => {
                check_signed(transfer)?;
                check_proofs(deps, DEPS_MAX, too_many_deps)
            }
            ClientRequest::Register { proof, deps } => {
                check_signed(&proof.signed)?;
                check_proofs(deps, DEPS_MAX, too_many_deps)
            }
            ClientRequest::Decide { bundle, locks } => check_bundle_and_locks(bundle, locks),
            ClientRequest::Balance { .. }
            | ClientRequest::History { .. }
            | ClientRequest::Status
            | ClientRequest::Applied { .. }
            | ClientRequest::Outcome { .. } => Ok(()),
        }
    }

    /// The request's kind in one word, for logs and test names.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientRequest::Validate { .. } => "validate",
            ClientRequest::Register { .. } => "register",
            ClientRequest::Balance { .. } => "balance",
            ClientRequest::History { .. } => "history",
            ClientRequest::Status => "status",
            ClientRequest::Applied { .. } => "applied",
            ClientRequest::Decide { .. } => "decide",
            ClientRequest::Outcome { .. } => "outcome",
        }
    }
}

/// One account as an elder reports it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct AccountReport {
    /// The account.
    pub account: AccountId,
    /// Its balance.
    pub balance: Amount,
    /// The seq its next debit takes.
    pub next_seq: Seq,
    /// Digest of its whole state: debit chain head, credit set, balance, next seq.
    pub digest: Digest,
}

/// A page of an account's history; every entry is a checkable proof.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The account.
    pub account: AccountId,
    /// Debits in seq order from the asked seq.
    pub debits: Vec<DebitProof>,
    /// Credits in id order after the asked id.
    pub credits: Vec<DebitProof>,
}

/// An elder's view of its own state.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ElderStatus {
    /// Digest of every account's state; honest synced elders of a section agree on it.
    pub state_digest: Digest,
    /// Proofs applied.
    pub applied: u64,
    /// Proofs routed to another section and not yet acknowledged.
    pub outbox: u64,
    /// The sum of every balance held here; wider than an amount, since a section's view may
    /// hold credits whose debits it has not seen yet and so sum above the supply.
    pub balance_total: u128,
}

/// Elder → client.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ClientReply {
    /// The elder's share certifying the transfer.
    Share {
        /// The transfer.
        transfer: TransferId,
        /// The share.
        share: BlsSignature,
    },
    /// The debit is applied here.
    Registered {
        /// The transfer.
        transfer: TransferId,
    },
    /// Answer to a balance query.
    Balance(AccountReport),
    /// Answer to a history query.
    History(HistoryPage),
    /// Answer to a status query.
    Status(ElderStatus),
    /// Answer to an applied query.
    Applied {
        /// The transfer.
        transfer: TransferId,
        /// Whether this elder applied it.
        applied: bool,
    },
    /// A bundle's certified outcome.
    Outcome(Box<OutcomeCertificate>),
    /// The bundle is not decided yet here (or not known).
    Undecided {
        /// The bundle.
        bundle: BundleId,
    },
    /// The request was refused.
    Rejected(Rejection),
}

impl PeerMessage {
    /// R7 where bytes become values, as [`ClientRequest::check_bounds`]: a sync page holds at
    /// most `SYNC_PAGE_PROOFS_MAX` proofs, every memo is within its limit.
    pub fn check_bounds(&self) -> Result<(), Rejection> {
        match self {
            PeerMessage::Proof { proof } => check_signed(&proof.signed),
            PeerMessage::SyncReply { entries, .. } => {
                if entries.len() > SYNC_PAGE_PROOFS_MAX {
                    let (count, max) = (entries.len() as u64, SYNC_PAGE_PROOFS_MAX as u64);
                    return Err(Rejection::TooManyProofs { count, max });
                }
                entries.iter().try_for_each(|entry| match entry {
                    SyncEntry::Proof(proof) => check_signed(&proof.signed),
                    SyncEntry::Outcome(certificate) => {
                        check_bundle_and_locks(&certificate.bundle, &certificate.locks)
                    }
                })
            }
            PeerMessage::Refer { bundle, locks } => check_bundle_and_locks(bundle, locks),
            PeerMessage::Outcome { certificate } => {
                check_bundle_and_locks(&certificate.bundle, &certificate.locks)
            }
            PeerMessage::VoidShare { void, .. } => check_signed(void),
            PeerMessage::Overdue { lock } => check_signed(lock),
            PeerMessage::Vote { vote, .. } if !vote.is_well_formed() => {
                Err(Rejection::MalformedVote)
            }
            PeerMessage::ProofAck { .. }
            | PeerMessage::SyncRequest { .. }
            | PeerMessage::Vote { .. }
            | PeerMessage::CoinShare { .. }
            | PeerMessage::OutcomeShare { .. }
            | PeerMessage::OutcomeAck { .. } => Ok(()),
        }
    }
}

/// One entry of an elder's log as section sync carries it: each proves itself. Proofs are
/// nearly every entry, so they are not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SyncEntry {
    /// An applied proof.
    Proof(DebitProof),
    /// An applied bundle outcome (R13).
    Outcome(Box<OutcomeCertificate>),
}

/// Elder → elder.
// A message lives only while it is handled, so its size does not matter; boxing the proof
// would cost an allocation per credit for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum PeerMessage {
    /// A proof that concerns the receiver's section and was applied in the sender's: the
    /// credit of a debit applied there, or the debit of a credit applied there (R4, R5).
    Proof {
        /// The debit proof.
        proof: DebitProof,
    },
    /// The proof is applied at the acknowledging elder.
    ProofAck {
        /// The transfer applied.
        transfer: TransferId,
    },
    /// Section sync: send me your applied proofs from this position of your log.
    SyncRequest {
        /// Position in the responder's log.
        position: u64,
    },
    /// Section sync: a page of the responder's log.
    SyncReply {
        /// Applied proofs and outcomes in the responder's log order.
        entries: Vec<SyncEntry>,
        /// The log position after the last proof in this page.
        next_position: u64,
    },
    /// To the referee's elders: a bundle to decide, with the lock certificates the sender
    /// holds (from a referee peer, or from a leg section asking for an overdue outcome).
    Refer {
        /// The bundle.
        bundle: Bundle,
        /// Lock certificates, at most one per leg.
        locks: Vec<DebitProof>,
    },
    /// A referee peer's vote in a bundle's agreement (R12), recorded before it was sent.
    Vote {
        /// The bundle.
        bundle: BundleId,
        /// The vote.
        vote: Vote,
    },
    /// A referee peer's share of the common coin of one agreement round.
    CoinShare {
        /// The bundle.
        bundle: BundleId,
        /// The round.
        round: Round,
        /// The share.
        share: BlsSignature,
    },
    /// A referee peer's share of the outcome it decided.
    OutcomeShare {
        /// The bundle.
        bundle: BundleId,
        /// The decided outcome.
        commit: bool,
        /// The share.
        share: BlsSignature,
    },
    /// A bundle's certified outcome, to settle its legs here (R13) or to know it.
    Outcome {
        /// The certificate.
        certificate: Box<OutcomeCertificate>,
    },
    /// To the referee's elders: the sender's slot holds this countersigned lock share of a
    /// bundle past its time, with no outcome known; decide it (R13).
    Overdue {
        /// The lock share's transfer, signed by the payer.
        lock: SignedTransfer,
    },
    /// A section peer's share of the void of an aborted leg (R13).
    VoidShare {
        /// The void, with the abort certificate that authorises it.
        void: SignedTransfer,
        /// The peer's share over it.
        share: BlsSignature,
    },
    /// The outcome is applied at the acknowledging elder.
    OutcomeAck {
        /// The bundle.
        bundle: BundleId,
    },
}
