//! Bundles at a leg section (R13). A registered lock holds its leg's amount in escrow until
//! the referee's outcome certificate settles it: paid to the recipient on commit, back to
//! the payer on abort. An escrow still held after the deadline, the clock skew and a grace
//! period asks the referee for the outcome, so no one can leave money locked. An outcome is
//! routed to every other section of the bundle until `f + 1` elders of each acknowledge it.

use std::collections::{BTreeMap, BTreeSet};

use super::{ElderId, Ledger, Output, ProofSource, Record};
use crate::crypto;
use crate::limits::{CLOCK_SKEW_MS_MAX, OUTBOX_RETRY_DELAY_MS_MAX, OUTCOME_GRACE_MS};
use crate::messages::PeerMessage;
use crate::rejection::Rejection;
use crate::types::{
    Amount, Bundle, BundleId, DebitProof, OutcomeCertificate, SignedTransfer, TransferId,
};

/// When an elder holding escrow or a lock share of `bundle` asks the referee itself.
fn overdue_ms(bundle: &Bundle) -> u64 {
    bundle.deadline_ms.saturating_add(CLOCK_SKEW_MS_MAX).saturating_add(OUTCOME_GRACE_MS)
}

/// The legs of one bundle whose locks are registered here and not settled yet.
#[derive(Clone, Debug)]
pub(super) struct Escrow {
    /// The bundle.
    pub(super) bundle: Bundle,
    /// Each escrowed leg's lock and amount.
    pub(super) legs: BTreeMap<u8, (TransferId, Amount)>,
    /// How many times the referee was asked for the outcome.
    pub(super) asks: u32,
}

impl Ledger {
    /// A lock's debit was applied: its amount waits in escrow, or is settled at once if the
    /// bundle's outcome is known here already.
    pub(super) fn hold_lock(&mut self, bundle: &Bundle, leg: u8, lock: TransferId) {
        let id = crypto::bundle_id(bundle);
        let amount = bundle.legs[usize::from(leg)].amount;
        if let Some(commit) = self.outcomes.get(&id).map(|certificate| certificate.commit) {
            self.release(bundle, leg, lock, commit);
            return;
        }
        let ask_ms = overdue_ms(bundle);
        let escrow = self.escrow.entry(id).or_insert_with(|| Escrow {
            bundle: bundle.clone(),
            legs: BTreeMap::new(),
            asks: 0,
        });
        escrow.legs.insert(leg, (lock, amount));
        self.escrow_total += u128::from(amount.0);
        self.schedule_bundle(id, ask_ms);
    }

    /// Pays out an escrowed leg: on commit to its recipient if it is held here (one held
    /// elsewhere is credited there, from the certificate), on abort back to its payer.
    fn release(&mut self, bundle: &Bundle, leg: u8, lock: TransferId, commit: bool) {
        let leg = bundle.legs[usize::from(leg)];
        let paid = if commit { leg.to } else { leg.from };
        if self.section().prefix.matches(&paid) {
            self.credit(paid, lock, leg.amount);
        }
    }

    /// Every outcome applied here.
    pub fn outcomes(&self) -> impl Iterator<Item = &OutcomeCertificate> {
        self.outcomes.values()
    }

    /// The money held in escrow here: in flight, for conservation.
    pub fn escrow_total(&self) -> u128 {
        self.escrow_total
    }

    /// The certified outcome of a bundle, if known here.
    pub fn outcome(&self, bundle: &BundleId) -> Option<&OutcomeCertificate> {
        self.outcomes.get(bundle)
    }

    /// R13: applies an outcome certificate once per bundle. On commit, the locks of this
    /// section's legs are registered first from the certificate (a lock never registered
    /// here, or missed, is taken from it; one that cannot apply yet is a refusal that may
    /// change). Then every escrow of the bundle is released, the recipients held here are
    /// credited, and the certificate is routed to the bundle's other sections.
    pub(super) fn handle_outcome(
        &mut self,
        source: ProofSource,
        certificate: OutcomeCertificate,
        now_ms: u64,
        output: &mut Output,
    ) -> Result<BundleId, Rejection> {
        let id = crypto::bundle_id(&certificate.bundle);
        if self.outcomes.contains_key(&id) {
            return Ok(id);
        }
        self.network.check_outcome(&certificate)?;
        let prefix = self.section().prefix;
        if certificate.commit {
            for lock in &certificate.locks {
                if prefix.matches(&lock.transfer().from) {
                    self.ingest(source, lock.clone(), now_ms, output)?;
                }
            }
        }
        self.check_outcome_credits(&certificate, id)?;
        output.records.push(Record::Settled(Box::new(certificate.clone())));
        let abort = (!certificate.commit).then(|| certificate.clone());
        self.apply_outcome(certificate, 0);
        self.deliver_outcome(id, now_ms, output);
        if let Some(abort) = abort {
            self.start_voids(&abort, now_ms, output);
        }
        Ok(id)
    }

    /// Whether every credit the outcome makes here fits its account's balance as this elder
    /// sees it (a view may hold credits whose debits it lacks): `BalanceOverflow`, which may
    /// change, otherwise.
    fn check_outcome_credits(
        &self,
        certificate: &OutcomeCertificate,
        id: BundleId,
    ) -> Result<(), Rejection> {
        let prefix = self.section().prefix;
        let escrowed = self.escrow.get(&id);
        let mut added: BTreeMap<crate::types::AccountId, u64> = BTreeMap::new();
        for (index, leg) in certificate.bundle.legs.iter().enumerate() {
            let held = escrowed.is_some_and(|escrow| escrow.legs.contains_key(&(index as u8)));
            let paid = match certificate.commit {
                true if prefix.matches(&leg.to) && (held || !prefix.matches(&leg.from)) => leg.to,
                false if held => leg.from,
                _ => continue,
            };
            let sum = added.entry(paid).or_default();
            let balance = self.accounts.get(&paid).map_or(0, |account| account.balance.0);
            *sum = sum
                .checked_add(leg.amount.0)
                .filter(|sum| balance.checked_add(*sum).is_some())
                .ok_or(Rejection::BalanceOverflow { account: paid, amount: leg.amount })?;
        }
        Ok(())
    }

    /// Settles a checked outcome here: releases the escrows, credits the recipients held here
    /// whose payers are elsewhere, keeps the certificate, and routes it to the bundle's other
    /// sections, first due at `due_ms`.
    pub(super) fn apply_outcome(&mut self, certificate: OutcomeCertificate, due_ms: u64) {
        let id = crypto::bundle_id(&certificate.bundle);
        let prefix = self.section().prefix;
        if let Some(escrow) = self.escrow.remove(&id) {
            for (leg, (lock, amount)) in escrow.legs {
                self.escrow_total -= u128::from(amount.0);
                self.release(&certificate.bundle, leg, lock, certificate.commit);
            }
        }
        if certificate.commit {
            for (leg, lock) in certificate.bundle.legs.iter().zip(&certificate.locks) {
                if prefix.matches(&leg.to) && !prefix.matches(&leg.from) {
                    let lock_id = crypto::transfer_id(&lock.signed);
                    // The credit's proof, for history and applied queries.
                    self.proofs.insert(lock_id, lock.clone());
                    self.credit(leg.to, lock_id, leg.amount);
                }
            }
        }
        let own = self.section;
        let targets: BTreeSet<usize> = certificate
            .bundle
            .legs
            .iter()
            .flat_map(|leg| [leg.from, leg.to])
            .map(|account| self.network.section_index_of(&account))
            .filter(|target| *target != own)
            .collect();
        for target in targets {
            self.add_to_outbox(super::Routed::Outcome(id, target), target, due_ms);
        }
        self.referrals.remove(&id);
        self.lock_shares.remove(&id);
        let digest = crypto::hash(
            crypto::OUTCOME_DIGEST_DOMAIN,
            [&id.0 .0[..], &[u8::from(certificate.commit)]],
        );
        super::account::xor_into(&mut self.accounts_digest, &digest);
        self.log.push(super::Logged::Outcome(id));
        self.outcomes.insert(id, certificate);
    }

    /// Delivers the routing of a newly applied outcome at once.
    fn deliver_outcome(&mut self, id: BundleId, now_ms: u64, output: &mut Output) {
        let routed: Vec<super::Routed> = (0..self.network.sections.len())
            .map(|target| super::Routed::Outcome(id, target))
            .filter(|routed| self.outbox.contains_key(routed))
            .collect();
        for routed in routed {
            self.deliver(routed, now_ms, output);
        }
    }

    /// An outcome routed here by an elder, of another section or of this one: applied, and
    /// acknowledged to an elder of another section.
    pub(super) fn handle_routed_outcome(
        &mut self,
        from: ElderId,
        certificate: OutcomeCertificate,
        now_ms: u64,
        output: &mut Output,
    ) {
        let applied = self.handle_outcome(ProofSource::Elder(from), certificate, now_ms, output);
        if let Ok(bundle) = applied {
            if from.prefix != self.section().prefix {
                output.messages.push((from, PeerMessage::OutcomeAck { bundle }));
            }
        }
    }

    /// Notes a lock share this elder holds, so that it asks the referee once the bundle's
    /// time is past (R13: a lock share alone must not hold a slot for ever).
    pub(super) fn watch_lock_share(&mut self, signed: &SignedTransfer) {
        let Some((bundle, _)) = signed.lock() else {
            return;
        };
        let id = crypto::bundle_id(bundle);
        let due = overdue_ms(bundle);
        self.lock_shares.entry(id).or_default().insert(signed.transfer.from);
        self.schedule_bundle(id, due);
    }

    /// A bundle past its time with lock shares here and no escrow: ask every referee elder,
    /// showing one countersigned lock share, again after a while; forget accounts whose slot
    /// moved on.
    pub(super) fn ask_for_lock_shares(&mut self, id: BundleId, now_ms: u64, output: &mut Output) {
        let Some(accounts) = self.lock_shares.get(&id) else {
            return;
        };
        let held = accounts
            .iter()
            .filter_map(|account| self.accounts.get(account)?.signed.as_deref())
            .find(|signed| signed.lock().is_some_and(|(b, _)| crypto::bundle_id(b) == id));
        let Some(lock) = held.cloned() else {
            self.lock_shares.remove(&id);
            return;
        };
        let bundle = lock.lock().map(|(bundle, _)| bundle.clone()).expect("a lock");
        self.to_referee(&bundle, PeerMessage::Overdue { lock }, output);
        self.schedule_bundle(id, now_ms.saturating_add(OUTBOX_RETRY_DELAY_MS_MAX));
    }

    /// An escrow overdue at `now_ms`: ask every elder of the referee for the outcome (the
    /// referee decides abort if it never saw every lock), again with backoff.
    pub(super) fn ask_referee(&mut self, id: BundleId, now_ms: u64, output: &mut Output) {
        let Some(escrow) = self.escrow.get_mut(&id) else {
            return;
        };
        let delay = super::outbox::retry_delay_ms(escrow.asks);
        escrow.asks = escrow.asks.saturating_add(1);
        let bundle = escrow.bundle.clone();
        // The locks held prove the referee must decide (it opens nothing without one).
        let locks: Vec<DebitProof> =
            escrow.legs.values().map(|(lock, _)| self.proofs[lock].clone()).collect();
        self.schedule_bundle(id, now_ms.saturating_add(delay));
        let refer = PeerMessage::Refer { bundle: bundle.clone(), locks };
        self.to_referee(&bundle, refer, output);
    }

    /// Sends a message to every elder of the bundle's referee section.
    fn to_referee(&self, bundle: &Bundle, message: PeerMessage, output: &mut Output) {
        let Some(referee) = self.network.referee_of(bundle) else {
            return;
        };
        for elder in &referee.elders {
            let to = ElderId { prefix: referee.prefix, index: elder.index };
            output.messages.push((to, message.clone()));
        }
    }
}
