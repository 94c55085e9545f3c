//! Closing the slot of an aborted leg (R13). If a bundle aborts while some elders signed a
//! leg's lock that was never certified, those elders hold the lock at the payer's slot and
//! would refuse every other transfer there: the account would be stuck at that seq. Once an
//! elder holding such a lock applies the abort, it signs a share of the leg's void (a transfer
//! authorised by the abort certificate) and sends it to its section peers; an elder signs one
//! only if its slot holds that lock or nothing, so a void and any other transfer at one slot
//! are never both certified. `n − f` shares combine into the void's proof, which closes the
//! slot with nothing paid; the leg's lock certificate, if one turns up after all, takes its
//! place (`Account::upgrade_void`), so every elder ends in one state.

use std::collections::BTreeMap;

use super::{ElderId, Ledger, Output, ProofSource, Record, SlotState};
use crate::crypto;
use crate::limits::VOIDS_MAX;
use crate::messages::PeerMessage;
use crate::types::{
    AccountId, Authority, BlsSignature, BundleId, DebitProof, ElderIndex, OutcomeCertificate, Seq,
    SignedTransfer,
};

/// A void being certified by this elder's section.
#[derive(Clone, Debug)]
pub(super) struct Voiding {
    void: SignedTransfer,
    /// Verified shares, this elder's among them once it signed.
    shares: BTreeMap<ElderIndex, BlsSignature>,
    resends: u32,
}

/// The void of leg `leg` of an aborted bundle.
pub fn void_transfer(abort: &OutcomeCertificate, leg: u8) -> Option<SignedTransfer> {
    Some(SignedTransfer {
        transfer: abort.bundle.lock_transfer(usize::from(leg))?,
        authority: Authority::Void { outcome: Box::new(abort.clone()), leg },
    })
}

impl Ledger {
    /// After an abort is applied here: start the void of every leg whose slot here holds the
    /// leg's lock.
    pub(super) fn start_voids(
        &mut self,
        abort: &OutcomeCertificate,
        now_ms: u64,
        output: &mut Output,
    ) {
        if abort.commit {
            return;
        }
        for (index, leg) in abort.bundle.legs.iter().enumerate() {
            let leg_index = index as u8;
            let holds_lock = self.accounts.get(&leg.from).is_some_and(|account| {
                account.next_seq == leg.seq
                    && account.signed.as_deref().and_then(SignedTransfer::lock)
                        == Some((&abort.bundle, leg_index))
            });
            if let Some(void) = void_transfer(abort, leg_index).filter(|_| holds_lock) {
                self.sign_void(void, now_ms, output);
            }
        }
    }

    /// Signs this elder's share of `void` if its slot allows (recording it first, R1) and
    /// sends it to the section peers.
    fn sign_void(&mut self, void: SignedTransfer, now_ms: u64, output: &mut Output) {
        let state = self.check_shape(&void).and_then(|()| self.check_slot(&void));
        if state == Ok(SlotState::Open) {
            self.accounts.entry(void.transfer.from).or_default().signed =
                Some(Box::new(void.clone()));
            output.records.push(Record::Signed(void.clone()));
        } else if state != Ok(SlotState::HeldByThis) {
            return;
        }
        let id = crypto::transfer_id(&void);
        let share = crypto::sign_debit_share(&self.key_share, &self.debit_message(&id));
        let slot = (void.transfer.from, void.transfer.seq);
        let me = self.elder;
        self.voids
            .entry(slot)
            .or_insert_with(|| Voiding { void: void.clone(), shares: BTreeMap::new(), resends: 0 })
            .shares
            .insert(me, share);
        self.to_section_peers(PeerMessage::VoidShare { void: void.clone(), share }, output);
        if let Some((bundle, _)) = void.void() {
            let bundle = crypto::bundle_id(bundle);
            self.schedule_bundle(bundle, now_ms.saturating_add(super::outbox::retry_delay_ms(0)));
        }
        self.try_void(slot, now_ms, output);
    }

    /// A section peer's share of a void: kept once the void and the share check out; this
    /// elder adds its own if its slot allows.
    pub(super) fn handle_void_share(
        &mut self,
        from: ElderId,
        void: SignedTransfer,
        share: BlsSignature,
        now_ms: u64,
        output: &mut Output,
    ) {
        let slot = (void.transfer.from, void.transfer.seq);
        if from.prefix != self.section().prefix
            || void.void().is_none()
            || (self.voids.len() >= VOIDS_MAX && !self.voids.contains_key(&slot))
            || self.check_shape(&void).is_err()
            || self.network.check_authority(&void).is_err()
        {
            return;
        }
        let id = crypto::transfer_id(&void);
        if !self.section().share_is_valid(from.index, &self.debit_message(&id), &share) {
            return;
        }
        let voiding = self.voids.entry(slot).or_insert_with(|| Voiding {
            void: void.clone(),
            shares: BTreeMap::new(),
            resends: 0,
        });
        if voiding.void != void {
            return;
        }
        voiding.shares.insert(from.index, share);
        if !voiding.shares.contains_key(&self.elder) {
            self.sign_void(void, now_ms, output);
        }
        self.try_void(slot, now_ms, output);
    }

    /// Combines `n − f` shares of the void at `slot` into its proof and applies it.
    fn try_void(&mut self, slot: (AccountId, Seq), now_ms: u64, output: &mut Output) {
        let section = &self.network.sections[self.section];
        let Some(voiding) = self.voids.get(&slot) else {
            return;
        };
        if voiding.shares.len() < section.shares_needed() {
            return;
        }
        let Some(signature) = section.combine(&voiding.shares) else {
            return;
        };
        let proof =
            DebitProof { signed: voiding.void.clone(), section_key: section.key_id, signature };
        let me = self.me();
        if self.ingest(ProofSource::Elder(me), proof, now_ms, output).is_ok() {
            self.voids.remove(&slot);
        }
    }

    /// A bundle's timer: this elder's void shares of its legs go out again, with backoff.
    pub(super) fn resend_voids(&mut self, bundle: BundleId, now_ms: u64, output: &mut Output) {
        let me = self.elder;
        let mut messages = Vec::new();
        let mut next = None;
        for voiding in self.voids.values_mut() {
            let of_bundle =
                voiding.void.void().is_some_and(|(b, _)| crypto::bundle_id(b) == bundle);
            let Some(share) = voiding.shares.get(&me).filter(|_| of_bundle) else {
                continue;
            };
            messages.push(PeerMessage::VoidShare { void: voiding.void.clone(), share: *share });
            let delay = super::outbox::retry_delay_ms(voiding.resends);
            voiding.resends = voiding.resends.saturating_add(1);
            next = Some(next.map_or(delay, |next: u64| next.min(delay)));
        }
        for message in messages {
            self.to_section_peers(message, output);
        }
        if let Some(delay) = next {
            self.schedule_bundle(bundle, now_ms.saturating_add(delay));
        }
    }

    /// After a restart: every void this elder had signed is certified on, from its own share.
    pub(super) fn restore_voids(&mut self) {
        let signed: Vec<SignedTransfer> = self
            .accounts
            .values()
            .filter_map(|account| account.signed.as_deref())
            .filter(|signed| signed.void().is_some())
            .cloned()
            .collect();
        let me = self.elder;
        for void in signed {
            let id = crypto::transfer_id(&void);
            let share = crypto::sign_debit_share(&self.key_share, &self.debit_message(&id));
            let bundle = void.void().map(|(b, _)| crypto::bundle_id(b)).expect("a void");
            let shares = BTreeMap::from([(me, share)]);
            self.voids.insert(
                (void.transfer.from, void.transfer.seq),
                Voiding { void, shares, resends: 0 },
            );
            self.schedule_bundle(bundle, 0);
        }
    }
}
