//! Lying elders for chaos runs: the real elder shell and ledger (so the store stays the
//! elder's own and an honest restart carries on from it), with a [`Conduct`] that lies on the
//! wire in one of the ways below. Only the `byzantine-elder` binary of this crate uses it; the
//! `elder` binary has no way to.

use std::collections::VecDeque;

use elder::conduct::Conduct;
use elder::queue::ReplyTo;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use shared::crypto::{debit_message, sign_debit_share, transfer_id, KeyShare};
use shared::ledger::ElderId;
use shared::messages::{ClientReply, ClientRequest, PeerMessage, SyncEntry};
use shared::types::{Amount, BlsSignature, DebitProof, Digest, Seq, SignedTransfer, TransferId};

/// Proofs a replaying liar keeps to send again.
const REPLAY_KEPT: usize = 64;

/// Unanswered requests a withholding liar holds open; past this the oldest stream closes.
const WITHHELD_MAX: usize = 4_096;

/// How a byzantine elder lies.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Lie {
    /// Signs a share for every transfer it is asked about, also for a slot it already signed
    /// another transfer at: equivocation.
    Equivocate,
    /// Answers with shares that are valid points over the wrong message, or no point at all.
    Garbage,
    /// Sends no peer message and never answers, as an elder gone silent: the client waits out
    /// its answer time (the liar holds the last `WITHHELD_MAX` requests open).
    Withhold,
    /// Sends other sections forged credits (a tampered amount under the real signature),
    /// replays old ones, and acknowledges transfers it never saw.
    ForgeCredits,
    /// Answers section sync with tampered proofs and a cursor far past its log.
    ForgeSync,
    /// Reports inflated balances, wrong seqs and digests, and claims every transfer applied.
    LieBalances,
}

impl Lie {
    /// Every lie.
    pub const ALL: [Lie; 6] = [
        Lie::Equivocate,
        Lie::Garbage,
        Lie::Withhold,
        Lie::ForgeCredits,
        Lie::ForgeSync,
        Lie::LieBalances,
    ];
}

/// A conduct that tells one lie.
pub struct Lying {
    lie: Lie,
    key_share: KeyShare,
    genesis: Digest,
    rng: ChaCha20Rng,
    seen: VecDeque<DebitProof>,
    withheld: VecDeque<ReplyTo>,
}

impl Lying {
    /// A liar of kind `lie` that signs with `key_share` for the network of `genesis`.
    pub fn new(lie: Lie, key_share: KeyShare, genesis: Digest) -> Lying {
        Lying {
            lie,
            key_share,
            genesis,
            rng: ChaCha20Rng::from_entropy(),
            seen: VecDeque::new(),
            withheld: VecDeque::new(),
        }
    }

    fn share_for(&self, signed: &SignedTransfer) -> (TransferId, BlsSignature) {
        let id = transfer_id(signed);
        (id, sign_debit_share(&self.key_share, &debit_message(&self.genesis, &id)))
    }

    fn garbage_share(&mut self) -> BlsSignature {
        if self.rng.gen_bool(0.5) {
            let wrong = TransferId(Digest(self.rng.gen()));
            sign_debit_share(&self.key_share, &debit_message(&self.genesis, &wrong))
        } else {
            let mut bytes = [0u8; BlsSignature::LEN];
            self.rng.fill(&mut bytes[..]);
            BlsSignature(bytes)
        }
    }

    fn lie_about(&mut self, reply: ClientReply) -> ClientReply {
        match reply {
            ClientReply::Balance(mut report) => {
                report.balance = Amount(report.balance.0.saturating_mul(2).saturating_add(1_000));
                report.next_seq = Seq(report.next_seq.0 + 5);
                report.digest = Digest(self.rng.gen());
                ClientReply::Balance(report)
            }
            ClientReply::Applied { transfer, .. } => {
                ClientReply::Applied { transfer, applied: true }
            }
            ClientReply::Status(mut status) => {
                status.state_digest = Digest(self.rng.gen());
                status.applied += 1_000;
                ClientReply::Status(status)
            }
            other => other,
        }
    }

    fn forge(&mut self, proof: &DebitProof) -> DebitProof {
        let mut forged = proof.clone();
        forged.signed.transfer.amount = Amount(proof.transfer().amount.0.saturating_add(1_000));
        forged
    }
}

impl Conduct for Lying {
    /// The transfer of a validate request, so an equivocating liar can sign it whatever the
    /// ledger decided.
    type Note = Option<SignedTransfer>;

    fn note(&self, request: &ClientRequest) -> Option<SignedTransfer> {
        match request {
            ClientRequest::Validate { transfer, .. } if self.lie == Lie::Equivocate => {
                Some(transfer.clone())
            }
            _ => None,
        }
    }

    fn reply(&mut self, note: Option<SignedTransfer>, reply: ClientReply, reply_to: ReplyTo) {
        let reply = match (self.lie, reply) {
            (Lie::Withhold, _) => {
                if self.withheld.len() >= WITHHELD_MAX {
                    self.withheld.pop_front();
                }
                self.withheld.push_back(reply_to);
                return;
            }
            (Lie::Equivocate, ClientReply::Rejected(_)) if note.is_some() => {
                let (transfer, share) = self.share_for(note.as_ref().expect("checked"));
                ClientReply::Share { transfer, share }
            }
            (Lie::Garbage, ClientReply::Share { transfer, .. }) => {
                ClientReply::Share { transfer, share: self.garbage_share() }
            }
            (Lie::LieBalances, reply) => self.lie_about(reply),
            (_, reply) => reply,
        };
        let _ = reply_to.send(reply);
    }

    fn message(
        &mut self,
        to: ElderId,
        message: PeerMessage,
        out: &mut Vec<(ElderId, PeerMessage)>,
    ) {
        match (self.lie, message) {
            (Lie::Withhold, _) => {}
            (Lie::ForgeCredits, PeerMessage::Proof { proof }) => {
                let forged = self.forge(&proof);
                out.push((to, PeerMessage::Proof { proof: forged }));
                if let Some(old) = self.seen.front().cloned() {
                    out.push((to, PeerMessage::Proof { proof: old }));
                }
                let unseen = TransferId(Digest(self.rng.gen()));
                out.push((to, PeerMessage::ProofAck { transfer: unseen }));
                self.seen.push_back(proof.clone());
                if self.seen.len() > REPLAY_KEPT {
                    self.seen.pop_front();
                }
                out.push((to, PeerMessage::Proof { proof }));
            }
            (Lie::ForgeSync, PeerMessage::SyncReply { entries, next_position }) => {
                let entries = entries
                    .into_iter()
                    .map(|entry| match entry {
                        SyncEntry::Proof(proof) => SyncEntry::Proof(self.forge(&proof)),
                        outcome => outcome,
                    })
                    .collect();
                let next_position = next_position + self.rng.gen_range(1..1_000);
                out.push((to, PeerMessage::SyncReply { entries, next_position }));
            }
            (_, message) => out.push((to, message)),
        }
    }
}
