//! Proofs routed to another section (R5): a debit's credit to the recipient section, and a
//! credit's debit back to the sender section; and bundle outcomes routed to every section of
//! the bundle (R13). Each is kept until f + 1 elders of that section acknowledge it, so at
//! least one honest elder there holds it (and sync spreads it to the rest); it is delivered
//! again with exponential backoff, across restarts.

use std::collections::BTreeSet;

use super::{ElderId, Ledger, Output, ProofSource, Record};
#[cfg(doc)]
use crate::limits::OUTBOX_CREDITS_PER_SECTION_MAX;
use crate::limits::{OUTBOX_RETRY_DELAY_MS_MAX, OUTBOX_RETRY_DELAY_MS_MIN};
use crate::messages::PeerMessage;
use crate::rejection::Rejection;
use crate::types::{BundleId, DebitProof, ElderIndex, TransferId};

/// What an outbox entry routes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(super) enum Routed {
    /// An applied proof, to the other section it concerns.
    Proof(TransferId),
    /// A bundle's outcome, to the section of this index.
    Outcome(BundleId, usize),
}

/// One routed proof or outcome awaiting acknowledgement.
#[derive(Clone, Debug)]
pub(super) struct OutboxEntry {
    /// Index of the section the proof is routed to.
    target: usize,
    /// Recipient elders that acknowledged.
    acked: BTreeSet<ElderIndex>,
    /// Deliveries so far, for the backoff.
    attempts: u32,
    /// When the next delivery is due.
    pub(super) next_attempt_ms: u64,
}

impl OutboxEntry {
    /// A new entry, due at `now_ms`.
    pub(super) fn new(target: usize, now_ms: u64) -> OutboxEntry {
        OutboxEntry { target, acked: BTreeSet::new(), attempts: 0, next_attempt_ms: now_ms }
    }
}

/// The delay before delivery number `attempts + 1`: doubling from the minimum, capped.
pub(super) fn retry_delay_ms(attempts: u32) -> u64 {
    OUTBOX_RETRY_DELAY_MS_MIN
        .saturating_mul(1u64 << attempts.min(32))
        .min(OUTBOX_RETRY_DELAY_MS_MAX)
}

impl Ledger {
    /// Queues an applied proof or outcome for routing to section `target`, due at `due_ms`.
    pub(super) fn add_to_outbox(&mut self, id: Routed, target: usize, due_ms: u64) {
        match self.outbox.insert(id, OutboxEntry::new(target, due_ms)) {
            Some(replaced) => {
                self.outbox_due.remove(&(replaced.next_attempt_ms, id));
            }
            None => *self.outbox_pending.entry(target).or_default() += 1,
        }
        self.outbox_due.insert((due_ms, id));
    }

    /// R5 bounded: refuses to sign a new credit for section `target` while too many for it
    /// await acknowledgement. Nothing else waits on the outbox.
    pub(super) fn check_outbox_room(&self, target: usize) -> Result<(), Rejection> {
        let pending = self.outbox_pending.get(&target).copied().unwrap_or(0);
        if pending >= self.outbox_per_section_max {
            let section = self.network.sections[target].prefix;
            return Err(Rejection::OutboxFull { section, pending: pending as u64 });
        }
        Ok(())
    }

    /// Sets how many credits for one section may await acknowledgement before signing new
    /// ones to it is refused ([`OUTBOX_CREDITS_PER_SECTION_MAX`] unless set).
    pub fn set_outbox_limit(&mut self, credits_per_section: usize) {
        self.outbox_per_section_max = credits_per_section;
    }

    /// Sends a routed proof or outcome to every elder of its target section that has not
    /// acknowledged it, and makes it due again after the backoff.
    pub(super) fn deliver(&mut self, id: Routed, now_ms: u64, output: &mut Output) {
        let Some(entry) = self.outbox.get_mut(&id) else {
            return;
        };
        self.outbox_due.remove(&(entry.next_attempt_ms, id));
        let message = match id {
            Routed::Proof(transfer) => PeerMessage::Proof { proof: self.proofs[&transfer].clone() },
            Routed::Outcome(bundle, _) => {
                PeerMessage::Outcome { certificate: Box::new(self.outcomes[&bundle].clone()) }
            }
        };
        let section = &self.network.sections[entry.target];
        for elder in section.elders.iter().filter(|elder| !entry.acked.contains(&elder.index)) {
            let to = ElderId { prefix: section.prefix, index: elder.index };
            output.messages.push((to, message.clone()));
        }
        entry.next_attempt_ms = now_ms.saturating_add(retry_delay_ms(entry.attempts));
        entry.attempts = entry.attempts.saturating_add(1);
        self.outbox_due.insert((entry.next_attempt_ms, id));
    }

    /// A proof routed here by another section's elder: a credit (R4) or the debit of a credit
    /// applied there. Acknowledged once applied here, even if it already was. The elder that
    /// routed it holds it applied, so it counts as an acknowledgement of this elder's routing
    /// it back: once f + 1 elders of the other section have routed a proof here, it is never
    /// sent back (R5 holds, one of them is honest), which halves the messages of a
    /// cross-section transfer.
    pub(super) fn handle_proof(
        &mut self,
        from: ElderId,
        proof: DebitProof,
        now_ms: u64,
        output: &mut Output,
    ) {
        if from.prefix == self.section().prefix {
            return;
        }
        if let Ok(transfer) = self.ingest(ProofSource::Elder(from), proof, now_ms, output) {
            self.handle_ack(from, Routed::Proof(transfer), output);
            output.messages.push((from, PeerMessage::ProofAck { transfer }));
        }
    }

    /// R5: an elder of the target section acknowledged a routed proof or outcome.
    pub(super) fn handle_ack(&mut self, from: ElderId, id: Routed, output: &mut Output) {
        let Some(entry) = self.outbox.get(&id) else {
            return;
        };
        let section = &self.network.sections[entry.target];
        let known = section.elders.iter().any(|elder| elder.index == from.index);
        if from.prefix != section.prefix || !known || entry.acked.contains(&from.index) {
            return;
        }
        self.record_ack(id, from.index);
        output.records.push(match id {
            Routed::Proof(transfer) => Record::Acked { transfer, elder: from.index },
            Routed::Outcome(bundle, _) => {
                Record::OutcomeAcked { bundle, section: from.prefix, elder: from.index }
            }
        });
    }

    /// Notes one acknowledgement; the entry leaves the outbox at f + 1 of them.
    pub(super) fn record_ack(&mut self, id: Routed, elder: ElderIndex) {
        let Some(entry) = self.outbox.get_mut(&id) else {
            return;
        };
        entry.acked.insert(elder);
        let target = entry.target;
        if entry.acked.len() > self.network.sections[target].faults_max() {
            let due = entry.next_attempt_ms;
            self.outbox.remove(&id);
            self.outbox_due.remove(&(due, id));
            let pending = self.outbox_pending.get_mut(&target).expect("counted when added");
            *pending -= 1;
        }
    }
}
