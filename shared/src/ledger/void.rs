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
    AbortCertificate, AccountId, Authority, BlsSignature, BundleId, DebitProof, ElderIndex,
    OutcomeCertificate, Seq, SignedTransfer, TransferId,
};

/// A void being certified, keyed by its slot and id: one slot may see voids of several
/// aborted bundles' legs, and each is certified on its own.
pub(super) type VoidKey = (AccountId, Seq, TransferId);

/// A void being certified by this elder's section.
#[derive(Clone, Debug)]
pub(super) struct Voiding {
    void: SignedTransfer,
    /// Verified shares, this elder's among them once it signed.
    shares: BTreeMap<ElderIndex, BlsSignature>,
    resends: u32,
}

/// The void of the lock `lock` of an aborted bundle: the lock's transfer, authorised by the
/// abort and the payer's countersignature the lock carries.
pub fn void_of(abort: &OutcomeCertificate, lock: &SignedTransfer) -> Option<SignedTransfer> {
    let Authority::Bundle { leg, payer, .. } = &lock.authority else {
        return None;
    };
    let abort = Box::new(AbortCertificate::of(abort)?);
    let authority = Authority::Void { abort, leg: *leg, payer: payer.clone() };
    Some(SignedTransfer { transfer: lock.transfer.clone(), authority })
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
            let held = self.accounts.get(&leg.from).and_then(|account| {
                let lock = account.signed.as_deref()?;
                let of_leg = lock.lock() == Some((&abort.bundle, index as u8));
                (account.next_seq == leg.seq && of_leg).then(|| lock.clone())
            });
            if let Some(void) = held.and_then(|lock| void_of(abort, &lock)) {
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
        let slot = (void.transfer.from, void.transfer.seq, id);
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
        let id = crypto::transfer_id(&void);
        let slot = (void.transfer.from, void.transfer.seq, id);
        // An entry opens only for a void this elder's own slot accepts, so a peer cannot
        // fill the map or crowd out the void that is due.
        // A void already being certified here (its key holds its id) was checked when it
        // came first; only the share is new.
        let known = self.voids.contains_key(&slot);
        if from.prefix != self.section().prefix
            || void.void().is_none()
            || (!known
                && (self.voids.len() >= VOIDS_MAX
                    || self.check_shape(&void).is_err()
                    || !matches!(
                        self.check_slot(&void),
                        Ok(SlotState::Open | SlotState::HeldByThis)
                    )
                    || self.network.check_authority(&void).is_err()))
            || !self.section().share_is_valid(from.index, &self.debit_message(&id), &share)
        {
            return;
        }
        let voiding = self.voids.entry(slot).or_insert_with(|| Voiding {
            void: void.clone(),
            shares: BTreeMap::new(),
            resends: 0,
        });
        voiding.shares.insert(from.index, share);
        if !voiding.shares.contains_key(&self.elder) {
            self.sign_void(void, now_ms, output);
        }
        self.try_void(slot, now_ms, output);
    }

    /// Combines `n − f` shares of the void at `slot` into its proof and applies it.
    fn try_void(&mut self, slot: VoidKey, now_ms: u64, output: &mut Output) {
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
            self.forget_voids(slot.0, slot.1);
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

    /// The slot `(account, seq)` is used: no void of it is certified any more.
    pub(super) fn forget_voids(&mut self, account: AccountId, seq: Seq) {
        self.voids.retain(|(of, at, _), _| (*of, *at) != (account, seq));
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
                (void.transfer.from, void.transfer.seq, id),
                Voiding { void, shares, resends: 0 },
            );
            self.schedule_bundle(bundle, 0);
        }
    }
}
