//! The client's side of the protocol: build the next signed transfer, verify every share before
//! counting it (R8), combine `n − f` into a debit proof, recognise a conflict, and accept an
//! answer only once `f + 1` elders give the same one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use blsttc::SignatureShare;
use ed25519_dalek::SigningKey;

use crate::crypto;
use crate::messages::ClientReply;
use crate::network::{Network, Section};
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Amount, DebitProof, ElderIndex, Memo, Seq, SignedTransfer, Transfer, TransferId,
};

/// The account an ed25519 key controls.
pub fn account_id(key: &SigningKey) -> AccountId {
    AccountId(key.verifying_key().to_bytes())
}

/// Builds and signs a transfer, refusing locally what every honest elder would refuse.
pub fn build_transfer(
    key: &SigningKey,
    network: &Network,
    to: AccountId,
    amount: Amount,
    seq: Seq,
    memo: Memo,
) -> Result<SignedTransfer, Rejection> {
    let from = account_id(key);
    if !memo.is_within_limit() {
        let max = crate::limits::MEMO_BYTES_MAX as u64;
        return Err(Rejection::MemoTooLong { bytes: memo.0.len() as u64, max });
    }
    if amount == Amount::ZERO {
        return Err(Rejection::ZeroAmount);
    }
    if from == to {
        return Err(Rejection::SelfTransfer { account: from });
    }
    if !crypto::is_account_key(&to.0) {
        return Err(Rejection::InvalidRecipient { to });
    }
    let transfer = Transfer { from, to, amount, seq, memo };
    Ok(crypto::sign_transfer(key, &network.genesis, transfer))
}

/// Where collecting shares for one transfer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not enough answers yet.
    Waiting,
    /// `n − f` valid shares combined into a proof.
    Certified(DebitProof),
    /// An elder already signed another transfer of this account at this slot; finishing that
    /// one (sending it instead) is the way forward.
    Conflict(SignedTransfer),
    /// So many elders refused or answered falsely that `n − f` shares cannot come.
    Refused(Vec<(ElderIndex, Rejection)>),
}

/// Collects elders' answers to one validate request.
#[derive(Clone, Debug)]
pub struct ShareCollector {
    network: Arc<Network>,
    section: usize,
    signed: SignedTransfer,
    id: TransferId,
    message: Vec<u8>,
    shares: BTreeMap<ElderIndex, SignatureShare>,
    refused: BTreeMap<ElderIndex, Rejection>,
    invalid: BTreeSet<ElderIndex>,
}

impl ShareCollector {
    /// Starts collecting shares for `signed` from its sender's section.
    pub fn new(network: Arc<Network>, signed: SignedTransfer) -> ShareCollector {
        let section = network.section_index_of(&signed.transfer.from);
        let id = crypto::transfer_id(&signed);
        let message = crypto::debit_signing_bytes(&network.genesis, &id);
        ShareCollector {
            network,
            section,
            signed,
            id,
            message,
            shares: BTreeMap::new(),
            refused: BTreeMap::new(),
            invalid: BTreeSet::new(),
        }
    }

    /// The transfer being certified.
    pub fn signed(&self) -> &SignedTransfer {
        &self.signed
    }

    /// Its id.
    pub fn transfer_id(&self) -> TransferId {
        self.id
    }

    /// Elders whose valid share is counted.
    pub fn shared_by(&self) -> impl Iterator<Item = ElderIndex> + '_ {
        self.shares.keys().copied()
    }

    /// Elders that gave a share that failed verification or answered nonsense.
    pub fn invalid(&self) -> impl Iterator<Item = ElderIndex> + '_ {
        self.invalid.iter().copied()
    }

    fn section(&self) -> &Section {
        &self.network.sections[self.section]
    }

    /// Counts one elder's answer; a share is verified before it is counted.
    pub fn add(&mut self, elder: ElderIndex, reply: ClientReply) -> Progress {
        if self.shares.contains_key(&elder) || elder.0 as usize >= self.section().elder_count() {
            return self.progress();
        }
        match reply {
            ClientReply::Share { transfer, share }
                if transfer == self.id
                    && self.section().share_is_valid(elder, &self.message, &share) =>
            {
                self.refused.remove(&elder);
                self.invalid.remove(&elder);
                self.shares.insert(elder, share);
                if self.shares.len() >= self.section().shares_needed() {
                    return Progress::Certified(self.combine());
                }
            }
            ClientReply::Rejected(Rejection::Conflict { existing, .. })
                if self.is_own_rival(&existing) =>
            {
                return Progress::Conflict(*existing);
            }
            ClientReply::Rejected(rejection) => {
                self.refused.insert(elder, rejection);
            }
            _ => {
                self.invalid.insert(elder);
            }
        }
        self.progress()
    }

    /// A conflict answer counts only if it shows another transfer of ours at our slot,
    /// signed with our key: no elder can invent one.
    fn is_own_rival(&self, existing: &SignedTransfer) -> bool {
        existing.transfer.slot() == self.signed.transfer.slot()
            && *existing != self.signed
            && crypto::account_signature_is_valid(&self.network.genesis, existing)
    }

    fn progress(&self) -> Progress {
        let section = self.section();
        let lost = self.refused.len() + self.invalid.len();
        if section.elder_count() - lost < section.shares_needed() {
            let refusals = self.refused.iter().map(|(elder, r)| (*elder, r.clone())).collect();
            return Progress::Refused(refusals);
        }
        Progress::Waiting
    }

    fn combine(&self) -> DebitProof {
        let section = self.section();
        let shares = self.shares.iter().map(|(elder, share)| (elder.0 as usize, share));
        let signature = section
            .public_keys
            .combine_signatures(shares)
            .expect("enough distinct verified shares combine");
        DebitProof { signed: self.signed.clone(), section_key: section.key_id, signature }
    }
}

/// Accepts an answer once `f + 1` elders of a section give the same one, so at least one
/// honest elder stands behind it (R8).
#[derive(Clone, Debug)]
pub struct AgreedAnswer<T> {
    needed: usize,
    answers: BTreeMap<ElderIndex, T>,
}

impl<T: PartialEq + Clone> AgreedAnswer<T> {
    /// Waits for `f + 1` equal answers from `section`.
    pub fn new(section: &Section) -> AgreedAnswer<T> {
        AgreedAnswer { needed: section.faults_max() + 1, answers: BTreeMap::new() }
    }

    /// Counts an elder's latest answer; returns the answer once `f + 1` elders agree on it.
    pub fn add(&mut self, elder: ElderIndex, answer: T) -> Option<T> {
        self.answers.insert(elder, answer.clone());
        let agreeing = self.answers.values().filter(|other| **other == answer).count();
        (agreeing >= self.needed).then_some(answer)
    }
}
