//! The elder's ledger: a pure state machine. [`Ledger::handle_batch`] takes a batch of inputs
//! and returns, as a value, the records to persist and the replies and peer messages that may
//! leave only after them (R1). Time comes in as an argument; nothing here does I/O.
//!
//! - `batch`: the batch entry point, its crypto work, `Ready` and the timer deadline.
//! - `apply`: checking a proof and applying it (R3, R4).
//! - `outbox`: routing applied proofs and outcomes to other sections until acknowledged (R5).
//! - `account`: one account's state and digest.
//! - `referee`: deciding a bundle's outcome by binary agreement (R12).
//! - `settle`: escrow of locked legs and settling them by the outcome (R13).
//! - `void`: closing the slot of an aborted leg whose lock was never certified (R13).

mod account;
mod apply;
mod batch;
mod outbox;
mod recompute;
mod referee;
mod settle;
#[cfg(test)]
pub(crate) mod tests;
mod void;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use account::Account;
pub use batch::{CryptoWork, Input, Ready, Released, Unpersisted};
use outbox::{OutboxEntry, Routed};
pub use recompute::{recompute, Recomputed};
use referee::Referral;
use settle::Escrow;

use crate::agreement::Vote;
use crate::crypto::{self, HashedMessage, KeyShare, STATE_DIGEST_DOMAIN};
use crate::limits::{
    BUNDLE_DEADLINE_MS_MAX, CLOCK_SKEW_MS_MAX, DEBIT_MESSAGES_KEPT_MAX, HISTORY_PAGE_PROOFS_MAX,
    OUTBOX_CREDITS_PER_SECTION_MAX, SYNC_INTERVAL_MS, SYNC_PAGE_PROOFS_MAX,
};
use crate::messages::{
    AccountReport, ClientReply, ClientRequest, ElderStatus, HistoryPage, PeerMessage, SyncEntry,
};
use crate::network::{Network, Section};
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Amount, BlsSignature, Bundle, BundleId, DebitProof, Digest, ElderIndex,
    OutcomeCertificate, Prefix, Seq, SignedTransfer, TransferId, Window,
};

/// An elder's identity: its section's prefix and its index there.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ElderId {
    /// The elder's section.
    pub prefix: Prefix,
    /// Its index in the section.
    pub index: ElderIndex,
}

/// Where a proof came from, for counting the invalid ones.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum ProofSource {
    /// A client's registration or deps; clients have no identity an elder could count by.
    Client,
    /// An elder, known by its certificate: a routed credit or a sync page.
    Elder(ElderId),
}

/// One durable state change; a ledger is rebuilt by replaying its records in order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Record {
    /// A share was signed for this transfer at its slot (R1): durable before the share leaves.
    Signed(SignedTransfer),
    /// A verified proof was applied: its debit, credit or both, with the outbox entry (R3).
    Applied(DebitProof),
    /// An elder of the other section acknowledged a proof routed to it (R5).
    Acked {
        /// The transfer.
        transfer: TransferId,
        /// The acknowledging elder of the section the proof was routed to.
        elder: ElderIndex,
    },
    /// Section sync took a peer's log up to this position (R6), so a restart resumes there
    /// instead of pulling the peer's whole log again.
    Synced {
        /// The section peer.
        elder: ElderIndex,
        /// The position in its log.
        position: u64,
    },
    /// This elder referees the bundle, and was shown these valid lock certificates (all of
    /// them, or none yet).
    Referred {
        /// The bundle.
        bundle: Bundle,
        /// Its lock certificates.
        locks: Vec<DebitProof>,
    },
    /// This elder sent a vote in a bundle's agreement (R12): durable before it leaves.
    Voted {
        /// The bundle.
        bundle: BundleId,
        /// The vote.
        vote: Vote,
    },
    /// A bundle's outcome was applied here (R13), after the records of its locks.
    Settled(Box<OutcomeCertificate>),
    /// An elder of another section acknowledged a bundle's outcome routed to it.
    OutcomeAcked {
        /// The bundle.
        bundle: BundleId,
        /// The acknowledging elder's section.
        section: Prefix,
        /// The acknowledging elder.
        elder: ElderIndex,
    },
}

/// One entry of an elder's log, in the order applied: what section sync hands out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Logged {
    /// An applied proof.
    Proof(TransferId),
    /// An applied bundle outcome.
    Outcome(BundleId),
}

/// What handling inputs produced, gathered over a batch into its [`Ready`].
#[derive(Clone, Default, Debug)]
pub(crate) struct Output {
    /// Records to persist, in order, before sending `messages` (or any reply).
    pub records: Vec<Record>,
    /// Peer messages to send once the records are durable.
    pub messages: Vec<(ElderId, PeerMessage)>,
    /// Section-sync requests and pages, which may leave at once: they carry only a cursor or
    /// section-signed proofs, which prove themselves whether or not this elder keeps them, so
    /// waiting for a commit would only slow catch-up.
    pub sync_messages: Vec<(ElderId, PeerMessage)>,
}

/// Why a ledger cannot be built for an elder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// No section has this prefix.
    #[error("the network map has no section {0}")]
    UnknownSection(Prefix),
    /// The elder index is past the section's elders.
    #[error("section {prefix} has {count} elders; there is no elder {index}")]
    UnknownElder {
        /// The section.
        prefix: Prefix,
        /// The index asked.
        index: ElderIndex,
        /// Its elder count.
        count: usize,
    },
    /// The key share is not this elder's share of the section key.
    #[error("the key share does not belong to elder {index} of section {prefix}")]
    WrongKeyShare {
        /// The section.
        prefix: Prefix,
        /// The elder.
        index: ElderIndex,
    },
    /// A stored record decodes but cannot be replayed onto the state before it: the store is
    /// damaged or belongs to another history.
    #[error("stored record {record} does not replay: {problem}")]
    Replay {
        /// The record's position in the store, from 0.
        record: u64,
        /// Why it does not fit.
        problem: String,
    },
}

/// Where a transfer stands against its account's slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotState {
    /// Nothing is signed at the slot yet.
    Open,
    /// This elder signed this very transfer there.
    HeldByThis,
}

/// What checking a proof found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ingested {
    /// The proof changed state.
    Applied,
    /// The proof was already applied; nothing changed.
    AlreadyApplied,
}

/// Crypto work done ahead of a batch of inputs, possibly on other cores.
#[derive(Clone, Debug, Default)]
pub struct Precomputed {
    /// Proofs whose section signature a batch check found valid.
    checked: HashSet<(TransferId, BlsSignature)>,
    /// Proofs whose section signature a batch check found invalid: refused without another
    /// check on the ledger thread.
    forged: HashSet<(TransferId, BlsSignature)>,
    /// Valid transfers with open slots: this elder's share for each, and the debit message
    /// it signed.
    shares: HashMap<TransferId, (BlsSignature, HashedMessage)>,
}

impl Precomputed {
    /// Adds another part's work.
    pub fn merge(&mut self, other: Precomputed) {
        self.checked.extend(other.checked);
        self.forged.extend(other.forged);
        self.shares.extend(other.shares);
    }

    /// Proofs whose section signature was checked ahead, valid or not.
    pub fn proofs_checked(&self) -> usize {
        self.checked.len() + self.forged.len()
    }

    /// Shares signed ahead.
    pub fn shares_signed(&self) -> usize {
        self.shares.len()
    }
}

/// One elder's whole ledger state.
#[derive(Clone, Debug)]
pub struct Ledger {
    network: Arc<Network>,
    section: usize,
    elder: ElderIndex,
    key_share: KeyShare,
    accounts: BTreeMap<AccountId, Account>,
    /// Every credit applied here, each exactly once: a grow-only set (only inserted into, so
    /// merging two elders' views is their union), ordered by account and then id, so an
    /// account's history pages are range queries. One set for all accounts: a set per
    /// account cost a B-tree node (about 400 bytes) even for one credit.
    credits: BTreeSet<(AccountId, TransferId)>,
    /// XOR of every account's digest and every applied outcome's, kept current as they
    /// change: an outcome is state even where it moves no money (it refunds a late lock).
    accounts_digest: Digest,
    /// The sum of every balance, kept current as accounts change.
    balance_total: u128,
    proofs: HashMap<TransferId, DebitProof>,
    log: Vec<Logged>,
    outbox: BTreeMap<Routed, OutboxEntry>,
    /// Outbox entries by when their next delivery is due.
    outbox_due: BTreeSet<(u64, Routed)>,
    /// Bundles this section referees and has not decided yet.
    referrals: BTreeMap<BundleId, Referral>,
    /// Locked legs held in escrow here, by bundle.
    escrow: BTreeMap<BundleId, Escrow>,
    /// The sum of every escrow here.
    escrow_total: u128,
    /// Outcomes applied here, by bundle.
    outcomes: HashMap<BundleId, OutcomeCertificate>,
    /// Each bundle's one timer (a referral's resend or abort, an escrow's ask), by due time.
    bundle_due: BTreeSet<(u64, BundleId)>,
    /// When each bundle's timer is due.
    bundle_next: HashMap<BundleId, u64>,
    /// Accounts whose slot holds a lock share of a bundle, by bundle: once its time is past,
    /// they ask the referee for the outcome even with no lock certificate (R13).
    lock_shares: BTreeMap<BundleId, BTreeSet<AccountId>>,
    /// Voids of aborted legs this section is certifying, by slot.
    voids: BTreeMap<void::VoidKey, void::Voiding>,
    /// When section sync next asks every peer for its news.
    next_sync_ms: u64,
    /// Outbox entries per target section.
    outbox_pending: BTreeMap<usize, usize>,
    /// Entries for one section beyond which signing new credits to it is refused.
    outbox_per_section_max: usize,
    sync_positions: BTreeMap<ElderIndex, u64>,
    /// Proofs refused for a section signature that does not verify or names a wrong key, by
    /// source: an elder that sends any is Byzantine.
    invalid_proofs: BTreeMap<ProofSource, u64>,
    /// Crypto done ahead for the current batch of inputs.
    precomputed: Precomputed,
    /// Debit messages of transfers this elder shared, kept until their proofs are applied so
    /// the proof check does not hash them again; the least recently shared go first.
    debit_messages: lru::LruCache<TransferId, HashedMessage>,
}

impl Ledger {
    /// A ledger at genesis for elder `me`: the faucet holds the supply if it is in this section.
    pub fn new(
        network: Arc<Network>,
        me: ElderId,
        key_share: KeyShare,
    ) -> Result<Ledger, LedgerError> {
        let section = network
            .sections
            .iter()
            .position(|section| section.prefix == me.prefix)
            .ok_or(LedgerError::UnknownSection(me.prefix))?;
        let keys = &network.sections[section].public_keys.key_shares;
        let key = keys.get(me.index.0 as usize).ok_or(LedgerError::UnknownElder {
            prefix: me.prefix,
            index: me.index,
            count: keys.len(),
        })?;
        if *key != key_share.public_key() || key_share.elder() != me.index {
            return Err(LedgerError::WrongKeyShare { prefix: me.prefix, index: me.index });
        }
        let mut accounts = BTreeMap::new();
        let (mut accounts_digest, mut balance_total) = (Digest::default(), 0);
        let faucet = network.map.faucet;
        if me.prefix.matches(&faucet) {
            let genesis = Account::genesis(faucet, network.map.supply);
            (accounts_digest, balance_total) = (genesis.digest(), u128::from(genesis.balance.0));
            accounts.insert(faucet, genesis);
        }
        Ok(Ledger {
            network,
            section,
            elder: me.index,
            key_share,
            accounts,
            credits: BTreeSet::new(),
            accounts_digest,
            balance_total,
            proofs: HashMap::new(),
            log: Vec::new(),
            outbox: BTreeMap::new(),
            outbox_due: BTreeSet::new(),
            referrals: BTreeMap::new(),
            escrow: BTreeMap::new(),
            escrow_total: 0,
            outcomes: HashMap::new(),
            bundle_due: BTreeSet::new(),
            bundle_next: HashMap::new(),
            voids: BTreeMap::new(),
            lock_shares: BTreeMap::new(),
            next_sync_ms: 0,
            outbox_pending: BTreeMap::new(),
            outbox_per_section_max: OUTBOX_CREDITS_PER_SECTION_MAX,
            sync_positions: BTreeMap::new(),
            invalid_proofs: BTreeMap::new(),
            precomputed: Precomputed::default(),
            debit_messages: lru::LruCache::new(
                std::num::NonZeroUsize::new(DEBIT_MESSAGES_KEPT_MAX).expect("not zero"),
            ),
        })
    }

    /// Rebuilds an elder's ledger from its persisted records alone (how a restart comes back).
    /// The records are this elder's own durable store, so proofs are not verified again, but
    /// each must fit the state before it: a record that does not is a typed error naming it.
    pub fn rebuild(
        network: Arc<Network>,
        me: ElderId,
        key_share: KeyShare,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Ledger, LedgerError> {
        let mut ledger = Ledger::new(network, me, key_share)?;
        for (position, record) in records.into_iter().enumerate() {
            match record {
                Record::Signed(signed) => {
                    let account = ledger.accounts.entry(signed.transfer.from).or_default();
                    if account.next_seq == signed.transfer.seq {
                        account.signed = Some(Box::new(signed.clone()));
                        ledger.watch_lock_share(&signed);
                    }
                }
                Record::Applied(proof) => {
                    let id = crypto::transfer_id(&proof.signed);
                    ledger.replay_check(&proof, id).map_err(|problem| LedgerError::Replay {
                        record: position as u64,
                        problem,
                    })?;
                    // Outbox entries come back due at once: delivery resumes in the first batch.
                    ledger.apply(proof, id, 0);
                }
                Record::Acked { transfer, elder } => {
                    ledger.record_ack(Routed::Proof(transfer), elder);
                }
                Record::Synced { elder, position } => {
                    ledger.sync_positions.insert(elder, position);
                }
                Record::Referred { bundle, locks } => ledger.restore_referral(bundle, locks),
                Record::Voted { bundle, vote } => ledger.restore_vote(bundle, vote),
                Record::Settled(certificate) => ledger.apply_outcome(*certificate, 0),
                Record::OutcomeAcked { bundle, section, elder } => {
                    let target = ledger.network.sections.iter().position(|s| s.prefix == section);
                    if let Some(target) = target {
                        ledger.record_ack(Routed::Outcome(bundle, target), elder);
                    }
                }
            }
        }
        ledger.restore_voids();
        Ok(ledger)
    }

    /// This elder's identity.
    pub fn me(&self) -> ElderId {
        ElderId { prefix: self.section().prefix, index: self.elder }
    }

    /// The network this ledger belongs to.
    pub fn network(&self) -> &Arc<Network> {
        &self.network
    }

    /// This elder's section.
    pub fn section(&self) -> &Section {
        &self.network.sections[self.section]
    }

    /// An account's state here, if it has any.
    pub fn account(&self, account: &AccountId) -> Option<&Account> {
        self.accounts.get(account)
    }

    /// Whether transfer `id` was credited to `account` here (a payment, a paid leg or a
    /// refunded lock).
    pub fn has_credit(&self, account: &AccountId, id: &TransferId) -> bool {
        self.credits.contains(&(*account, *id))
    }

    /// Every account with state here, in id order.
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, &Account)> {
        self.accounts.iter()
    }

    /// Applied proofs in the order this elder applied them.
    pub fn log(&self) -> impl Iterator<Item = &DebitProof> {
        self.log.iter().filter_map(|logged| match logged {
            Logged::Proof(id) => Some(&self.proofs[id]),
            Logged::Outcome(_) => None,
        })
    }

    /// Proofs routed to another section and not yet acknowledged by enough of its elders.
    pub fn outbox(&self) -> impl Iterator<Item = &DebitProof> {
        self.outbox.keys().filter_map(|routed| match routed {
            Routed::Proof(id) => Some(&self.proofs[id]),
            Routed::Outcome(..) => None,
        })
    }

    /// Proofs and outcomes routed to other sections and not yet acknowledged by enough of
    /// their elders.
    pub fn routing(&self) -> usize {
        self.outbox.len()
    }

    /// How many proofs each source sent whose section signature was invalid.
    pub fn invalid_proofs(&self) -> impl Iterator<Item = (ProofSource, u64)> + '_ {
        self.invalid_proofs.iter().map(|(source, count)| (*source, *count))
    }

    /// The report of one account as this elder holds it.
    pub fn report(&self, account: AccountId) -> AccountReport {
        match self.accounts.get(&account) {
            Some(state) => state.report(account),
            None => Account::default().report(account),
        }
    }

    /// The sum of every balance here. A section's view may sum above the supply for a while
    /// (credits applied before their debits), so it is summed wide: at most 2^64 accounts of
    /// at most 2^64 − 1 each fit in a u128.
    pub fn balance_total(&self) -> u128 {
        self.balance_total
    }

    /// Digest of every account's state and every applied outcome: honest elders of a section
    /// agree on it once synced.
    /// Kept current as accounts change, so asking costs the same at any size.
    pub fn state_digest(&self) -> Digest {
        crypto::hash(STATE_DIGEST_DOMAIN, [&self.accounts_digest.0[..]])
    }

    /// Does a batch's crypto ahead, reading state only, so the caller may run it on several
    /// cores over parts of a batch and merge the parts ([`Precomputed::merge`]):
    /// - the section signatures of `proofs` are checked in batches, one random linear
    ///   combination per signing section (`seed` gives the randomness of its weights); a batch that
    ///   fails is split by source (each peer, and the clients) and each part bisected here,
    ///   so the bad proofs are found on this core and the good ones still pass together
    ///   ([`crypto::bls_batch_validity`]). A peer that sends forged proofs thus costs the
    ///   bisection of its own proofs only (R7);
    /// - for each of `transfers` that validate would sign (shape, seq, slot, balance and
    ///   outbox room checked first, then the account signature) this elder's share is signed. Signing is deterministic and nothing is
    ///   released here: a share leaves only when a validate request is accepted (R1).
    ///
    /// Proofs already applied here are not checked at all, and the debit message of a proof
    /// this elder shared is not hashed again.
    pub fn precompute(&self, work: &CryptoWork, mut seed: impl FnMut() -> [u8; 32]) -> Precomputed {
        let mut precomputed = Precomputed::default();
        let mut groups: BTreeMap<usize, Vec<(TransferId, BlsSignature, HashedMessage, usize)>> =
            BTreeMap::new();
        let mut sources: Vec<ProofSource> = Vec::new();
        // The same proof often comes several times in one batch (from each sync peer, as a
        // credit and as a dep): it is checked once.
        let mut seen = HashSet::new();
        for (source, proof) in &work.proofs {
            let id = crypto::transfer_id(&proof.signed);
            let signer = self.network.section_index_of(&proof.transfer().from);
            if self.proofs.contains_key(&id)
                || proof.section_key != self.network.sections[signer].key_id
                || !seen.insert((id, proof.signature))
            {
                continue;
            }
            let message = self.debit_message(&id);
            let part = sources.iter().position(|known| known == source).unwrap_or_else(|| {
                sources.push(*source);
                sources.len() - 1
            });
            groups.entry(signer).or_default().push((id, proof.signature, message, part));
        }
        for (signer, group) in groups {
            let key = &self.network.sections[signer].public_keys.key;
            let items: Vec<(&HashedMessage, &BlsSignature)> =
                group.iter().map(|(_, signature, message, _)| (message, signature)).collect();
            let parts: Vec<usize> = group.iter().map(|(.., part)| *part).collect();
            let validity = crypto::bls_batch_validity(key, &items, seed(), &parts);
            for ((id, signature, ..), valid) in group.iter().zip(validity) {
                let found = if valid { &mut precomputed.checked } else { &mut precomputed.forged };
                found.insert((*id, *signature));
            }
        }
        for signed in &work.transfers {
            // Only a transfer validate would sign is worth a share: the cheap checks first.
            if self.check_shape(signed).is_err()
                || self.check_slot(signed).is_err()
                || self.network.check_authority(signed).is_err()
            {
                continue;
            }
            let id = crypto::transfer_id(signed);
            let message = self.debit_message(&id);
            let share = crypto::sign_debit_share(&self.key_share, &message);
            precomputed.shares.insert(id, (share, message));
        }
        precomputed
    }

    /// Uses `precomputed` for the inputs that follow, until the batch ends, and keeps the
    /// debit messages it hashed for the proofs that will follow the shares.
    fn accept_precomputed(&mut self, precomputed: Precomputed) {
        for (id, (_, message)) in &precomputed.shares {
            self.debit_messages.put(*id, *message);
        }
        self.precomputed = precomputed;
    }

    /// The debit message of transfer `id`: kept from signing a share, or hashed now.
    fn debit_message(&self, id: &TransferId) -> HashedMessage {
        match self.debit_messages.peek(id) {
            Some(message) => *message,
            None => crypto::debit_message(&self.network.genesis, id),
        }
    }

    /// One client request, outside a batch (unit tests).
    #[cfg(test)]
    pub(crate) fn handle_client(
        &mut self,
        request: ClientRequest,
        now_ms: u64,
    ) -> (ClientReply, Output) {
        let mut output = Output::default();
        (self.client_input(request, now_ms, &mut output), output)
    }

    /// One peer message, outside a batch (unit tests).
    #[cfg(test)]
    pub(crate) fn handle_peer(&mut self, from: ElderId, message: PeerMessage, now: u64) -> Output {
        let mut output = Output::default();
        self.peer_input(from, message, now, &mut output);
        output
    }

    /// The timer work due at `now_ms`, outside a batch (unit tests).
    #[cfg(test)]
    pub(crate) fn handle_timeout(&mut self, now_ms: u64) -> Output {
        let mut output = Output::default();
        self.timeout_work(now_ms, &mut output);
        output
    }

    /// Answers one client request.
    fn client_input(
        &mut self,
        request: ClientRequest,
        now_ms: u64,
        output: &mut Output,
    ) -> ClientReply {
        if let Err(rejection) = request.check_bounds() {
            return ClientReply::Rejected(rejection);
        }
        let reply = match request {
            ClientRequest::Validate { transfer, deps } => {
                self.ingest_deps(&deps, now_ms, output);
                self.handle_validate(transfer, now_ms, output)
            }
            ClientRequest::Register { proof, deps } => {
                self.ingest_deps(&deps, now_ms, output);
                self.handle_register(proof, now_ms, output)
            }
            ClientRequest::Balance { account } => self.handle_balance(account),
            ClientRequest::History { account, debits_from, credits_after } => {
                self.handle_history(account, debits_from, credits_after)
            }
            ClientRequest::Status => Ok(ClientReply::Status(ElderStatus {
                state_digest: self.state_digest(),
                applied: self.log.len() as u64,
                outbox: self.outbox.len() as u64,
                balance_total: self.balance_total(),
            })),
            ClientRequest::Applied { transfer } => {
                Ok(ClientReply::Applied { transfer, applied: self.proofs.contains_key(&transfer) })
            }
            ClientRequest::Decide { bundle, locks } => {
                let id = crypto::bundle_id(&bundle);
                self.refer(bundle, locks, now_ms, output).map(|known| match known {
                    Some(certificate) => ClientReply::Outcome(Box::new(certificate)),
                    None => ClientReply::Undecided { bundle: id },
                })
            }
            ClientRequest::Outcome { bundle } => Ok(match self.outcomes.get(&bundle) {
                Some(certificate) => ClientReply::Outcome(Box::new(certificate.clone())),
                None => ClientReply::Undecided { bundle },
            }),
        };
        reply.unwrap_or_else(ClientReply::Rejected)
    }

    /// Handles one message from another elder; answers go into the output's messages.
    fn peer_input(
        &mut self,
        from: ElderId,
        message: PeerMessage,
        now_ms: u64,
        output: &mut Output,
    ) {
        if message.check_bounds().is_err() {
            return;
        }
        match message {
            PeerMessage::Proof { proof } => self.handle_proof(from, proof, now_ms, output),
            PeerMessage::ProofAck { transfer } => {
                self.handle_ack(from, Routed::Proof(transfer), output)
            }
            PeerMessage::SyncRequest { position } => {
                self.handle_sync_request(from, position, output)
            }
            PeerMessage::SyncReply { entries, next_position } => {
                self.handle_sync_reply(from, entries, next_position, now_ms, output)
            }
            PeerMessage::Refer { bundle, locks } => {
                // A leg section asking for an overdue outcome gets it once it is known.
                if let Ok(Some(certificate)) = self.refer(bundle, locks, now_ms, output) {
                    if from.prefix != self.section().prefix {
                        let certificate = Box::new(certificate);
                        output.messages.push((from, PeerMessage::Outcome { certificate }));
                    }
                }
            }
            PeerMessage::Vote { bundle, vote } => {
                self.handle_vote(from, bundle, vote, now_ms, output)
            }
            PeerMessage::CoinShare { bundle, round, share } => {
                self.handle_coin_share(from, bundle, round, share, now_ms, output)
            }
            PeerMessage::OutcomeShare { bundle, commit, share } => {
                self.handle_outcome_share(from, bundle, commit, share, now_ms, output)
            }
            PeerMessage::Outcome { certificate } => {
                self.handle_routed_outcome(from, *certificate, now_ms, output)
            }
            PeerMessage::Overdue { lock } => self.handle_overdue(from, lock, now_ms, output),
            PeerMessage::VoidShare { void, share } => {
                self.handle_void_share(from, void, share, now_ms, output)
            }
            PeerMessage::OutcomeAck { bundle } => {
                let target = self.network.sections.iter().position(|s| s.prefix == from.prefix);
                if let Some(target) = target {
                    self.handle_ack(from, Routed::Outcome(bundle, target), output);
                }
            }
        }
    }

    /// The timer work due at `now_ms` (see [`Ledger::poll_timeout`]): deliver the routed
    /// proofs and outcomes that are due, run the bundle timers that are due and, every
    /// `SYNC_INTERVAL_MS`, ask every section peer for its news.
    fn timeout_work(&mut self, now_ms: u64, output: &mut Output) {
        while self.outbox_due.first().is_some_and(|(due, _)| *due <= now_ms) {
            let (_, id) = self.outbox_due.pop_first().expect("just seen");
            self.deliver(id, now_ms, output);
        }
        self.bundle_timeouts(now_ms, output);
        if now_ms < self.next_sync_ms {
            return;
        }
        self.next_sync_ms = now_ms.saturating_add(SYNC_INTERVAL_MS);
        let me = self.me();
        for elder in &self.section().elders {
            if elder.index != self.elder {
                let position = self.sync_positions.get(&elder.index).copied().unwrap_or(0);
                let peer = ElderId { prefix: me.prefix, index: elder.index };
                output.sync_messages.push((peer, PeerMessage::SyncRequest { position }));
            }
        }
    }

    /// Phase 1 (R1, R2, R11): check a signed transfer and sign a share, at most one per slot,
    /// only while this elder's clock (`now_ms`, ms since the Unix epoch) is inside its window.
    fn handle_validate(
        &mut self,
        signed: SignedTransfer,
        now_ms: u64,
        output: &mut Output,
    ) -> Result<ClientReply, Rejection> {
        let id = crypto::transfer_id(&signed);
        self.check_shape(&signed)?;
        // A share signed ahead means the account signature was checked then.
        if !self.precomputed.shares.contains_key(&id) {
            self.network.check_authority(&signed)?;
        }
        // The share signed while the window was open is given again after it closed: it is
        // no new signature, and the client that lost it must still be able to finish.
        if self.check_slot(&signed)? == SlotState::HeldByThis {
            return Ok(self.share_reply(id));
        }
        check_window(&signed.transfer.window, now_ms)?;
        if let Some((bundle, _)) = signed.lock() {
            // R13: a leg is locked only before the deadline, by this elder's clock, for a
            // bounded time, and never once the bundle is decided.
            check_deadline(bundle, now_ms)?;
            let id = crypto::bundle_id(bundle);
            if self.outcomes.contains_key(&id) {
                return Err(Rejection::AlreadyDecided { bundle: id });
            }
        }
        self.accounts.entry(signed.transfer.from).or_default().signed =
            Some(Box::new(signed.clone()));
        self.watch_lock_share(&signed);
        let reply = self.share_reply(id);
        output.records.push(Record::Signed(signed));
        Ok(reply)
    }

    /// The checks of R2 that need no account state and no signature check: sizes, section,
    /// amount, recipient key.
    fn check_shape(&self, signed: &SignedTransfer) -> Result<(), Rejection> {
        let transfer = &signed.transfer;
        crate::messages::check_memo(&transfer.memo)?;
        let prefix = self.section().prefix;
        if !prefix.matches(&transfer.from) {
            return Err(Rejection::WrongSection { account: transfer.from, prefix });
        }
        if transfer.amount.0 == 0 {
            return Err(Rejection::ZeroAmount);
        }
        if transfer.from == transfer.to {
            return Err(Rejection::SelfTransfer { account: transfer.from });
        }
        if !crypto::is_account_key(&transfer.to.0) {
            return Err(Rejection::InvalidRecipient { to: transfer.to });
        }
        if let Some((bundle, _)) = signed.lock() {
            // Money locked for a referee that does not exist could never be settled.
            if self.network.referee_of(bundle).is_none() {
                return Err(Rejection::NotReferee { referee: bundle.referee, prefix });
            }
        }
        crate::messages::check_window_shape(&transfer.window)
    }

    /// The checks of R1 and R2 on the account's state: the seq is the next one, the slot is
    /// open or holds this very transfer, the balance covers it, and the recipient's section
    /// has outbox room.
    fn check_slot(&self, signed: &SignedTransfer) -> Result<SlotState, Rejection> {
        let transfer = &signed.transfer;
        let account = self.accounts.get(&transfer.from);
        check_seq(transfer.seq, account.map_or(Seq::FIRST, |account| account.next_seq))?;
        match account.and_then(|account| account.signed.as_deref()) {
            Some(rival) if rival == signed => return Ok(SlotState::HeldByThis),
            // R13: a void may follow the lock of its own leg, and nothing else.
            Some(rival) if signed.void().is_some() && rival.lock() == signed.void() => {}
            Some(rival) => {
                let rival = Box::new(rival.clone());
                return Err(Rejection::Conflict { slot: transfer.slot(), rival });
            }
            None => {}
        }
        if transfer.seq.next().is_none() {
            return Err(Rejection::SeqExhausted { account: transfer.from });
        }
        if signed.void().is_some() {
            // A void pays nothing: no balance or outbox room needed.
            return Ok(SlotState::Open);
        }
        let balance = account.map_or(Amount::ZERO, |account| account.balance);
        if transfer.amount > balance {
            return Err(Rejection::InsufficientFunds { balance, amount: transfer.amount });
        }
        if !self.section().prefix.matches(&transfer.to) {
            self.check_outbox_room(self.network.section_index_of(&transfer.to))?;
        }
        Ok(SlotState::Open)
    }

    /// This elder's share over the transfer; BLS signing is deterministic, so asking again
    /// for the same transfer gives the same share.
    fn share_reply(&self, transfer: TransferId) -> ClientReply {
        let share = match self.precomputed.shares.get(&transfer) {
            Some((share, _)) => *share,
            None => crypto::sign_debit_share(&self.key_share, &self.debit_message(&transfer)),
        };
        ClientReply::Share { transfer, share }
    }

    /// Phase 3 (R3): apply a certified debit of this section.
    fn handle_register(
        &mut self,
        proof: DebitProof,
        now_ms: u64,
        output: &mut Output,
    ) -> Result<ClientReply, Rejection> {
        let prefix = self.section().prefix;
        let from = proof.transfer().from;
        if !prefix.matches(&from) {
            return Err(Rejection::WrongSection { account: from, prefix });
        }
        let transfer = self.ingest(ProofSource::Client, proof, now_ms, output)?;
        Ok(ClientReply::Registered { transfer })
    }

    /// Applies client-attached proofs the elder may lack; each is verified, failures ignored.
    fn ingest_deps(&mut self, deps: &[DebitProof], now_ms: u64, output: &mut Output) {
        for dep in deps {
            let _ = self.ingest(ProofSource::Client, dep.clone(), now_ms, output);
        }
    }

    /// Answers a balance query for an account of this section.
    fn handle_balance(&self, account: AccountId) -> Result<ClientReply, Rejection> {
        self.check_own_account(account)?;
        Ok(ClientReply::Balance(self.report(account)))
    }

    /// Answers a history query with a page of proofs.
    fn handle_history(
        &self,
        account: AccountId,
        debits_from: Seq,
        credits_after: Option<TransferId>,
    ) -> Result<ClientReply, Rejection> {
        self.check_own_account(account)?;
        let mut page = HistoryPage { account, debits: Vec::new(), credits: Vec::new() };
        if let Some(state) = self.accounts.get(&account) {
            let skip = usize::try_from(debits_from.0.saturating_sub(1)).unwrap_or(usize::MAX);
            let proof = |id: &TransferId| self.proofs[id].clone();
            page.debits =
                state.debits.iter().skip(skip).take(HISTORY_PAGE_PROOFS_MAX).map(proof).collect();
            let after = match credits_after {
                Some(after) => std::ops::Bound::Excluded((account, after)),
                None => std::ops::Bound::Included((account, TransferId(Digest([0; 32])))),
            };
            let last = std::ops::Bound::Included((account, TransferId(Digest([0xff; 32]))));
            page.credits = self
                .credits
                .range((after, last))
                .take(HISTORY_PAGE_PROOFS_MAX)
                .map(|(_, id)| proof(id))
                .collect();
        }
        Ok(ClientReply::History(page))
    }

    fn check_own_account(&self, account: AccountId) -> Result<(), Rejection> {
        let prefix = self.section().prefix;
        if prefix.matches(&account) {
            Ok(())
        } else {
            Err(Rejection::WrongSection { account, prefix })
        }
    }

    /// Section sync, serving side: a page of this elder's log to a section peer.
    fn handle_sync_request(&self, from: ElderId, position: u64, output: &mut Output) {
        if from.prefix != self.section().prefix {
            return;
        }
        let start = usize::try_from(position).unwrap_or(usize::MAX).min(self.log.len());
        let end = start.saturating_add(SYNC_PAGE_PROOFS_MAX).min(self.log.len());
        let entries = self.log[start..end]
            .iter()
            .map(|logged| match logged {
                Logged::Proof(id) => SyncEntry::Proof(self.proofs[id].clone()),
                Logged::Outcome(id) => SyncEntry::Outcome(Box::new(self.outcomes[id].clone())),
            })
            .collect();
        let reply = PeerMessage::SyncReply { entries, next_position: end as u64 };
        output.sync_messages.push((from, reply));
    }

    /// Section sync, pulling side (R6): apply a peer's log page in its order, verifying each
    /// proof and outcome; stop at the first this elder cannot apply yet and ask from there
    /// next time.
    fn handle_sync_reply(
        &mut self,
        from: ElderId,
        entries: Vec<SyncEntry>,
        next_position: u64,
        now_ms: u64,
        output: &mut Output,
    ) {
        if from.prefix != self.section().prefix {
            return;
        }
        let start = next_position.saturating_sub(entries.len() as u64);
        let full = entries.len() == SYNC_PAGE_PROOFS_MAX;
        let mut consumed = 0u64;
        let mut blocked = false;
        let source = ProofSource::Elder(from);
        for entry in entries {
            let applied = match entry {
                SyncEntry::Proof(proof) => self.ingest(source, proof, now_ms, output).map(|_| ()),
                SyncEntry::Outcome(certificate) => {
                    self.handle_outcome(source, *certificate, now_ms, output).map(|_| ())
                }
            };
            match applied {
                Err(rejection) if rejection.is_retryable() => {
                    blocked = true;
                    break;
                }
                // A proof that can never apply (forged, foreign) is skipped, not retried.
                Ok(_) | Err(_) => consumed += 1,
            }
        }
        let position = self.sync_positions.entry(from.index).or_default();
        if start + consumed <= *position {
            return;
        }
        *position = start + consumed;
        let position = *position;
        output.records.push(Record::Synced { elder: from.index, position });
        // A full page means more may follow: ask for it now rather than at the next sync.
        if full && !blocked {
            output.sync_messages.push((from, PeerMessage::SyncRequest { position }));
        }
    }
}

/// R11: whether an elder whose clock reads `now_ms` may sign a share of a transfer with this
/// window, which it widens by `CLOCK_SKEW_MS_MAX` on each side.
pub fn check_window(window: &Window, now_ms: u64) -> Result<(), Rejection> {
    if let Some(valid_after) = window.valid_after {
        let opens_ms = valid_after.saturating_sub(CLOCK_SKEW_MS_MAX);
        if now_ms < opens_ms {
            return Err(Rejection::TooEarly { valid_after, early_ms: opens_ms - now_ms });
        }
    }
    if let Some(valid_before) = window.valid_before {
        let closes_ms = valid_before.saturating_add(CLOCK_SKEW_MS_MAX);
        if now_ms > closes_ms {
            return Err(Rejection::Expired { valid_before, late_ms: now_ms - closes_ms });
        }
    }
    Ok(())
}

/// Whether a bundle's legs may still be locked at `now_ms`: before its deadline, and that
/// deadline not too far ([`check_deadline_bound`]).
fn check_deadline(bundle: &Bundle, now_ms: u64) -> Result<(), Rejection> {
    let deadline_ms = bundle.deadline_ms;
    if now_ms >= deadline_ms {
        return Err(Rejection::DeadlinePassed { deadline_ms, late_ms: now_ms - deadline_ms });
    }
    check_deadline_bound(bundle, now_ms)
}

/// Whether a bundle's deadline is at most `BUNDLE_DEADLINE_MS_MAX` after `now_ms`, so what it
/// holds (a slot, escrow, a referral) is held for a bounded time.
fn check_deadline_bound(bundle: &Bundle, now_ms: u64) -> Result<(), Rejection> {
    let (deadline_ms, max_ms) = (bundle.deadline_ms, BUNDLE_DEADLINE_MS_MAX);
    if deadline_ms.saturating_sub(now_ms) > max_ms {
        return Err(Rejection::DeadlineTooFar { deadline_ms, max_ms });
    }
    Ok(())
}

/// Where `seq` stands against the account's next seq; only the next seq is valid.
fn check_seq(seq: Seq, next_seq: Seq) -> Result<(), Rejection> {
    if seq < next_seq {
        return Err(Rejection::StaleSeq { seq, next_seq });
    }
    if seq > next_seq {
        return Err(Rejection::SeqAhead { seq, next_seq });
    }
    Ok(())
}

impl Rejection {
    /// Whether the same request may succeed later without change, once this elder catches up
    /// (earlier debits, credits its peers have, outbox room): such a refusal is never final,
    /// and a client that sent the transfer keeps asking rather than giving it up.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Rejection::SeqAhead { .. }
                | Rejection::TooEarly { .. }
                | Rejection::InsufficientFunds { .. }
                | Rejection::MissingCredits { .. }
                | Rejection::BalanceOverflow { .. }
                | Rejection::OutboxFull { .. }
        )
    }
}
