//! Outgoing credits (R5): kept until f + 1 elders of the recipient section acknowledge them,
//! so at least one honest recipient holds each; delivered again with exponential backoff.

use std::collections::BTreeSet;

use super::{ElderId, Ingested, Ledger, Output, Record};
use crate::crypto;
use crate::limits::{OUTBOX_RETRY_DELAY_MS_MAX, OUTBOX_RETRY_DELAY_MS_MIN};
use crate::messages::PeerMessage;
use crate::types::{DebitProof, ElderIndex, TransferId};

/// One outgoing credit awaiting acknowledgement.
#[derive(Clone, Debug)]
pub(super) struct OutboxEntry {
    /// Index of the recipient section in the network.
    recipient: usize,
    /// Recipient elders that acknowledged.
    acked: BTreeSet<ElderIndex>,
    /// Deliveries so far, for the backoff.
    attempts: u32,
    /// When the next delivery is due.
    pub(super) next_attempt_ms: u64,
}

impl OutboxEntry {
    /// A new entry, due at `now_ms`.
    pub(super) fn new(recipient: usize, now_ms: u64) -> OutboxEntry {
        OutboxEntry { recipient, acked: BTreeSet::new(), attempts: 0, next_attempt_ms: now_ms }
    }
}

/// The delay before delivery number `attempts + 1`: doubling from the minimum, capped.
fn retry_delay_ms(attempts: u32) -> u64 {
    OUTBOX_RETRY_DELAY_MS_MIN
        .saturating_mul(1u64 << attempts.min(32))
        .min(OUTBOX_RETRY_DELAY_MS_MAX)
}

impl Ledger {
    /// Sends an outgoing credit to every recipient elder that has not acknowledged it.
    pub(super) fn deliver(&mut self, id: TransferId, now_ms: u64, output: &mut Output) {
        let Some(entry) = self.outbox.get_mut(&id) else {
            return;
        };
        let section = &self.network.sections[entry.recipient];
        for elder in section.elders.iter().filter(|elder| !entry.acked.contains(&elder.index)) {
            let to = ElderId { prefix: section.prefix, index: elder.index };
            output.messages.push((to, PeerMessage::Credit { proof: self.proofs[&id].clone() }));
        }
        entry.next_attempt_ms = now_ms.saturating_add(retry_delay_ms(entry.attempts));
        entry.attempts = entry.attempts.saturating_add(1);
    }

    /// R4: a credit from another section; acknowledged once applied here, even if already.
    pub(super) fn handle_credit(
        &mut self,
        from: ElderId,
        proof: DebitProof,
        now_ms: u64,
        output: &mut Output,
    ) {
        let prefix = self.section().prefix;
        if from.prefix == prefix || !prefix.matches(&proof.transfer().to) {
            return;
        }
        let transfer = crypto::transfer_id(&proof.signed);
        if let Ok(Ingested::Applied | Ingested::AlreadyApplied) = self.ingest(proof, now_ms, output)
        {
            output.messages.push((from, PeerMessage::CreditAck { transfer }));
        }
    }

    /// R5: a recipient elder acknowledged an outgoing credit.
    pub(super) fn handle_credit_ack(&mut self, from: ElderId, id: TransferId, output: &mut Output) {
        let Some(entry) = self.outbox.get(&id) else {
            return;
        };
        let section = &self.network.sections[entry.recipient];
        let known = section.elders.iter().any(|elder| elder.index == from.index);
        if from.prefix != section.prefix || !known || entry.acked.contains(&from.index) {
            return;
        }
        self.record_ack(id, from.index);
        output.records.push(Record::Acked { transfer: id, elder: from.index });
    }

    /// Notes one acknowledgement; the entry leaves the outbox at f + 1 of them.
    pub(super) fn record_ack(&mut self, id: TransferId, elder: ElderIndex) {
        let Some(entry) = self.outbox.get_mut(&id) else {
            return;
        };
        entry.acked.insert(elder);
        if entry.acked.len() > self.network.sections[entry.recipient].faults_max() {
            self.outbox.remove(&id);
        }
    }
}
