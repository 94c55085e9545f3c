//! The one enum of expected rejections: sent back as the answer, each with its context.

use serde::{Deserialize, Serialize};

use crate::types::{
    AccountId, Amount, BundleId, Prefix, SectionKeyId, Seq, SignedTransfer, Slot, TransferId,
};

/// Why an elder refused a request; every variant says enough to act on.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// The memo is over `MEMO_BYTES_MAX`.
    #[error("memo is {bytes} bytes; at most {max} allowed")]
    MemoTooLong {
        /// Its length.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// More dependency proofs than `DEPS_MAX` were attached.
    #[error("{count} dependency proofs attached; at most {max} allowed")]
    TooManyDeps {
        /// How many came.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A multi-owner policy or its signatures name more owners than `OWNERS_MAX`.
    #[error("{count} owners or owner signatures; at most {max} allowed")]
    TooManyOwners {
        /// How many came.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// The account is not held by this elder's section.
    #[error("account {account} is not in section {prefix}; ask the section that holds it")]
    WrongSection {
        /// The account.
        account: AccountId,
        /// This elder's section.
        prefix: Prefix,
    },
    /// The account signature does not verify.
    #[error("the signature of account {account} does not verify")]
    BadAccountSignature {
        /// The claimed signer.
        account: AccountId,
    },
    /// The policy sent with a multi-owner transfer is malformed or is not the paying
    /// account's (its hash is another account).
    #[error("the policy given is not the policy of account {account}")]
    PolicyMismatch {
        /// The paying account.
        account: AccountId,
    },
    /// A multi-owner transfer carries the wrong number of owner signatures, or not in owner
    /// order.
    #[error(
        "{count} owner signatures; the policy needs exactly {threshold}, one per owner, in owner \
         order"
    )]
    OwnerSignatures {
        /// How many came.
        count: u64,
        /// How many the policy needs.
        threshold: u64,
    },
    /// The elder's clock is before the transfer's window (R11); it may be signed later.
    #[error("too early by {early_ms} ms: valid after {valid_after} (ms since the Unix epoch)")]
    TooEarly {
        /// The window's start.
        valid_after: u64,
        /// How far before it (less the allowed clock skew) the elder's clock is.
        early_ms: u64,
    },
    /// The elder's clock is past the transfer's window (R11); it will not sign it.
    #[error("expired {late_ms} ms ago: valid before {valid_before} (ms since the Unix epoch)")]
    Expired {
        /// The window's end.
        valid_before: u64,
        /// How far past it (beyond the allowed clock skew) the elder's clock is.
        late_ms: u64,
    },
    /// The window is empty: it ends before it starts.
    #[error("the time window ends ({valid_before}) before it starts ({valid_after})")]
    EmptyWindow {
        /// The window's start.
        valid_after: u64,
        /// The window's end.
        valid_before: u64,
    },
    /// The recipient is not a usable ed25519 public key; money sent there would be lost.
    #[error("recipient {to} is not a valid account key")]
    InvalidRecipient {
        /// The recipient.
        to: AccountId,
    },
    /// Sender and recipient are the same account.
    #[error("account {account} cannot pay itself")]
    SelfTransfer {
        /// The account.
        account: AccountId,
    },
    /// The amount is zero.
    #[error("the amount must be at least 1")]
    ZeroAmount,
    /// The seq was already used by an applied debit.
    #[error("seq {seq} is already used; the account's next seq is {next_seq}")]
    StaleSeq {
        /// The seq asked for.
        seq: Seq,
        /// The account's next seq here.
        next_seq: Seq,
    },
    /// The seq is beyond the next one: earlier debits are missing here (attach them as deps).
    #[error("seq {seq} is ahead; this elder's next seq is {next_seq} (send the earlier proofs)")]
    SeqAhead {
        /// The seq asked for.
        seq: Seq,
        /// The account's next seq here.
        next_seq: Seq,
    },
    /// The account has used every seq.
    #[error("account {account} has no seq left")]
    SeqExhausted {
        /// The account.
        account: AccountId,
    },
    /// This elder already signed another transfer at this slot (R1); finish that one instead.
    #[error("slot already holds another signed transfer")]
    Conflict {
        /// The slot.
        slot: Slot,
        /// The transfer this elder signed there.
        rival: Box<SignedTransfer>,
    },
    /// The balance does not cover the amount.
    #[error("balance {balance} does not cover amount {amount}")]
    InsufficientFunds {
        /// The balance here.
        balance: Amount,
        /// The amount asked.
        amount: Amount,
    },
    /// A certified debit this elder cannot apply yet: it lacks credits its peers have.
    #[error("balance {balance} here does not cover certified amount {amount}; catching up")]
    MissingCredits {
        /// The balance here.
        balance: Amount,
        /// The certified amount.
        amount: Amount,
    },
    /// The proof names a key that is not its sender section's.
    #[error("proof is signed by key {key:?}, not the sender section's")]
    UnknownSectionKey {
        /// The key named.
        key: SectionKeyId,
    },
    /// The section signature does not verify.
    #[error("section signature on transfer {transfer} does not verify")]
    BadSectionSignature {
        /// The transfer.
        transfer: TransferId,
    },
    /// A credit would overflow the recipient's balance as this elder sees it: it holds credits
    /// whose debits it has not applied yet, and must catch up first.
    #[error("crediting {amount} would overflow the balance of {account}")]
    BalanceOverflow {
        /// The recipient.
        account: AccountId,
        /// The amount.
        amount: Amount,
    },
    /// Too many credits for the recipient's section await its acknowledgement: that section
    /// is unreachable or slow. Transfers to other sections go on; try this one again later.
    #[error(
        "{pending} credits to section {section} await its acknowledgement (it is unreachable \
         or slow); transfers to it wait until it catches up"
    )]
    OutboxFull {
        /// The recipient's section.
        section: Prefix,
        /// Credits for it waiting.
        pending: u64,
    },
    /// A bundle has no legs or more than `LEGS_MAX`.
    #[error("a bundle has {count} legs; 1 to {max} allowed")]
    LegCount {
        /// How many came.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A bundle names one payer in two legs.
    #[error("account {account} pays in two legs of the bundle; one leg per payer")]
    PayerTwice {
        /// The payer.
        account: AccountId,
    },
    /// A lock is not exactly leg `leg` of its bundle, or that leg pays nothing or itself.
    #[error("the lock is not leg {leg} of its bundle, or that leg is malformed")]
    NotALeg {
        /// The leg named.
        leg: u8,
    },
    /// The bundle's deadline has passed by this elder's clock: it locks no more legs.
    #[error("the bundle's deadline {deadline_ms} passed {late_ms} ms ago; it locks no more legs")]
    DeadlinePassed {
        /// The deadline, in ms since the Unix epoch.
        deadline_ms: u64,
        /// How long ago, by this elder's clock.
        late_ms: u64,
    },
    /// The bundle's deadline is further ahead than `BUNDLE_DEADLINE_MS_MAX`.
    #[error("the bundle's deadline {deadline_ms} is more than {max_ms} ms ahead")]
    DeadlineTooFar {
        /// The deadline, in ms since the Unix epoch.
        deadline_ms: u64,
        /// How far ahead a deadline may be.
        max_ms: u64,
    },
    /// The referee hears of a bundle only with a valid lock certificate of one of its legs:
    /// with none, nothing is locked and there is nothing to decide.
    #[error("no valid lock certificate of the bundle was shown; nothing is locked to decide")]
    NoLockShown,
    /// The bundle's outcome is known here already: its legs lock no more.
    #[error("bundle {bundle} is decided already; its legs lock no more")]
    AlreadyDecided {
        /// The bundle.
        bundle: BundleId,
    },
    /// The bundle names another section (or no section) as its referee.
    #[error("section {prefix} is not the referee of this bundle (it names {referee})")]
    NotReferee {
        /// The referee the bundle names.
        referee: Prefix,
        /// This elder's section.
        prefix: Prefix,
    },
    /// A lock certificate shown to the referee does not verify or is not the bundle's leg.
    #[error("the lock certificate of leg {leg} does not verify")]
    BadLock {
        /// The leg.
        leg: u8,
    },
    /// An outcome certificate does not verify under the referee's key, or a commit lacks a
    /// valid lock of some leg.
    #[error("the outcome certificate of bundle {bundle} does not verify")]
    BadOutcome {
        /// The bundle.
        bundle: BundleId,
    },
    /// The referee holds as many undecided bundles as it may; try again later.
    #[error("the referee decides {open} bundles already; try again later")]
    RefereeBusy {
        /// Bundles it is deciding.
        open: u64,
    },
    /// A lock certificate is no credit: its recipient is paid only by a commit outcome.
    #[error("transfer {transfer} locks a bundle leg; only the bundle's commit pays it")]
    LockIsNoCredit {
        /// The lock.
        transfer: TransferId,
    },
    /// An agreement vote past `AGREEMENT_ROUNDS_MAX` or with no values.
    #[error("the agreement vote is malformed")]
    MalformedVote,
    /// A sync page carried more proofs than `SYNC_PAGE_PROOFS_MAX`.
    #[error("{count} proofs in one sync page; at most {max} allowed")]
    TooManyProofs {
        /// How many came.
        count: u64,
        /// The limit.
        max: u64,
    },
}
