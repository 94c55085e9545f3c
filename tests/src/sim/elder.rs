//! A simulated elder: the real ledger state machine with a durable record store that survives
//! crashes, or a Byzantine elder that bends the protocol in one of several ways.

use std::sync::Arc;

use blsttc::{SecretKeySet, SecretKeyShare};
use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shared::client::account_id;
use shared::crypto;
use shared::ledger::{ElderId, Ledger, Record};
use shared::messages::{AccountReport, ClientReply, ClientRequest, HistoryPage, PeerMessage};
use shared::network::Network;
use shared::types::{Amount, BlsSignature, DebitProof, Digest, Memo, Seq, Transfer};

use super::stats::Stats;

/// Credits for one section an elder holds unacknowledged before it refuses new ones: small,
/// so partitions fill outboxes and the way they drain afterwards is tested.
const OUTBOX_CREDITS_PER_SECTION: usize = 8;
/// Chance that a forging elder sends a round of forgeries on a tick.
const FORGERY_PER_TICK: f64 = 0.2;

/// How a Byzantine elder misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Byzantine {
    /// Answers validate requests with shares signed by a key that is not its own.
    GarbageShares,
    /// Signs a share for every transfer it is asked about, valid or not, many per slot.
    SignsAnything,
    /// Receives everything and answers nothing.
    Withholds,
    /// Acknowledges credits without applying them; sends forged, replayed and misrouted
    /// credits to other sections and forged sync pages to its peers.
    ForgesCredits,
    /// Reports inflated balances and empty histories.
    Lies,
}

impl Byzantine {
    /// Every kind, for random choice.
    pub const ALL: [Byzantine; 5] = [
        Byzantine::GarbageShares,
        Byzantine::SignsAnything,
        Byzantine::Withholds,
        Byzantine::ForgesCredits,
        Byzantine::Lies,
    ];
}

/// What an elder sends in answer to one input.
#[derive(Default)]
pub struct Sent {
    /// The reply to the requesting client, if any.
    pub reply: Option<ClientReply>,
    /// Messages to other elders.
    pub messages: Vec<(ElderId, PeerMessage)>,
}

/// One simulated elder.
pub struct SimElder {
    /// Its identity.
    pub id: ElderId,
    key_share: SecretKeyShare,
    network: Arc<Network>,
    /// Its durable store: survives crashes.
    pub store: Vec<Record>,
    /// Its in-memory ledger; `None` while crashed.
    pub ledger: Option<Ledger>,
    /// `None` for an honest elder.
    pub byzantine: Option<Byzantine>,
}

impl SimElder {
    /// A running elder at genesis.
    pub fn new(
        network: Arc<Network>,
        id: ElderId,
        key_share: SecretKeyShare,
        byzantine: Option<Byzantine>,
    ) -> SimElder {
        let mut ledger =
            Ledger::new(network.clone(), id, key_share.clone()).expect("genesis ledger");
        ledger.set_outbox_limit(OUTBOX_CREDITS_PER_SECTION);
        SimElder { id, key_share, network, store: Vec::new(), ledger: Some(ledger), byzantine }
    }

    /// Whether the elder follows the protocol.
    pub fn is_honest(&self) -> bool {
        self.byzantine.is_none()
    }

    /// Loses all in-memory state; the store stays.
    pub fn crash(&mut self) {
        self.ledger = None;
    }

    /// Comes back from the store alone.
    pub fn restart(&mut self) {
        let records = self.store.iter().cloned();
        let ledger =
            Ledger::rebuild(self.network.clone(), self.id, self.key_share.clone(), records);
        let mut ledger = ledger.expect("rebuild from own records");
        ledger.set_outbox_limit(OUTBOX_CREDITS_PER_SECTION);
        self.ledger = Some(ledger);
    }

    /// Persists the handler's records, then hands back what it sends (R1: durable first).
    fn persist(&mut self, output: shared::ledger::Output, reply: Option<ClientReply>) -> Sent {
        self.store.extend(output.records);
        // Everything leaves after the records here; sync messages may go sooner in the elder.
        let mut messages = output.messages;
        messages.extend(output.sync_messages);
        Sent { reply, messages }
    }

    /// Whether a message reaches the ledger: not while crashed, never at a withholding elder
    /// (which counts what it swallows).
    fn hears(&self, stats: &mut Stats) -> bool {
        if self.byzantine == Some(Byzantine::Withholds) {
            stats.byzantine_withheld += 1;
            return false;
        }
        self.ledger.is_some()
    }

    /// A client request arrives.
    pub fn on_request(
        &mut self,
        request: ClientRequest,
        now: u64,
        rng: &mut ChaCha8Rng,
        stats: &mut Stats,
    ) -> Sent {
        if !self.hears(stats) {
            return Sent::default();
        }
        if let (Some(Byzantine::SignsAnything), ClientRequest::Validate { transfer, .. }) =
            (self.byzantine, &request)
        {
            stats.byzantine_conflicting_shares += 1;
            let id = crypto::transfer_id(transfer);
            let message = crypto::debit_message(&self.network.genesis, &id);
            let share = crypto::sign_debit_share(&self.key_share, &message);
            return Sent {
                reply: Some(ClientReply::Share { transfer: id, share }),
                messages: vec![],
            };
        }
        let ledger = self.ledger.as_mut().expect("an elder that hears is running");
        let (reply, output) = ledger.handle_client(request, now);
        let reply = match (self.byzantine, reply) {
            (Some(Byzantine::GarbageShares), ClientReply::Share { transfer, .. }) => {
                stats.byzantine_garbage_shares += 1;
                let wrong_key = SecretKeySet::random(0, rng).secret_key_share(0);
                let message = crypto::debit_message(&self.network.genesis, &transfer);
                let share = crypto::sign_debit_share(&wrong_key, &message);
                ClientReply::Share { transfer, share }
            }
            (Some(Byzantine::Lies), ClientReply::Balance(report)) => {
                stats.byzantine_lies += 1;
                ClientReply::Balance(AccountReport {
                    balance: Amount(report.balance.0.saturating_add(1_000_000_000)),
                    digest: Digest(rng.gen()),
                    ..report
                })
            }
            (Some(Byzantine::Lies), ClientReply::History(page)) => {
                stats.byzantine_lies += 1;
                ClientReply::History(HistoryPage { debits: vec![], credits: vec![], ..page })
            }
            (_, reply) => reply,
        };
        self.persist(output, Some(reply))
    }

    /// Another elder's message arrives.
    pub fn on_peer(
        &mut self,
        from: ElderId,
        message: PeerMessage,
        now: u64,
        stats: &mut Stats,
    ) -> Sent {
        if !self.hears(stats) {
            return Sent::default();
        }
        if let (Some(Byzantine::ForgesCredits), PeerMessage::Proof { proof }) =
            (self.byzantine, &message)
        {
            stats.byzantine_forged_credits += 1;
            let transfer = crypto::transfer_id(&proof.signed);
            return Sent {
                reply: None,
                messages: vec![(from, PeerMessage::ProofAck { transfer })],
            };
        }
        let ledger = self.ledger.as_mut().expect("an elder that hears is running");
        let output = ledger.handle_peer(from, message, now);
        self.persist(output, None)
    }

    /// The elder's timer fires.
    pub fn on_tick(&mut self, now: u64, rng: &mut ChaCha8Rng, stats: &mut Stats) -> Sent {
        if self.byzantine == Some(Byzantine::Withholds) {
            return Sent::default();
        }
        let Some(ledger) = self.ledger.as_mut() else {
            return Sent::default();
        };
        let output = ledger.handle_tick(now);
        let mut sent = self.persist(output, None);
        if self.byzantine == Some(Byzantine::ForgesCredits) && rng.gen_bool(FORGERY_PER_TICK) {
            sent.messages.extend(self.forgeries(rng, stats));
        }
        sent
    }

    /// One round of forged traffic: a credit with a made-up signature, a replayed real
    /// credit, a real credit sent to the wrong section, and a forged sync page.
    fn forgeries(&self, rng: &mut ChaCha8Rng, stats: &mut Stats) -> Vec<(ElderId, PeerMessage)> {
        let network = &self.network;
        let mut messages = Vec::new();
        let others: Vec<_> =
            network.sections.iter().filter(|s| s.prefix != self.id.prefix).collect();
        let Some(target) = others.choose(rng) else {
            return messages;
        };
        let forger = SigningKey::from_bytes(&rng.gen());
        let victim = (0..)
            .map(|_| SigningKey::from_bytes(&rng.gen()))
            .find(|key| target.prefix.matches(&account_id(key)));
        let transfer = Transfer {
            from: account_id(&forger),
            to: account_id(&victim.expect("some key falls in every section")),
            amount: Amount(1_000_000),
            seq: Seq(rng.gen_range(1..100)),
            memo: Memo(b"forged".to_vec()),
        };
        let section = network.section_of(&transfer.from);
        let forged = DebitProof {
            signed: crypto::sign_transfer(&forger, &network.genesis, transfer),
            section_key: section.key_id,
            signature: BlsSignature(
                SecretKeySet::random(0, rng).secret_key().sign(b"not the section key").to_bytes(),
            ),
        };
        let to_all = |prefix, elders: &[shared::network::ElderInfo], message: PeerMessage| {
            elders
                .iter()
                .map(move |elder| (ElderId { prefix, index: elder.index }, message.clone()))
                .collect::<Vec<_>>()
        };
        messages.extend(to_all(
            target.prefix,
            &target.elders,
            PeerMessage::Proof { proof: forged.clone() },
        ));
        let own =
            network.sections.iter().find(|s| s.prefix == self.id.prefix).expect("own section");
        let ledger = self.ledger.as_ref().expect("ticking elder is running");
        if let Some(real) = ledger.log().collect::<Vec<_>>().choose(rng).copied() {
            let recipient = network.section_of(&real.transfer().to);
            messages.extend(to_all(
                recipient.prefix,
                &recipient.elders,
                PeerMessage::Proof { proof: real.clone() },
            ));
            messages.extend(to_all(
                target.prefix,
                &target.elders,
                PeerMessage::Proof { proof: real.clone() },
            ));
        }
        let page = PeerMessage::SyncReply { proofs: vec![forged], next_position: 1 };
        messages.extend(to_all(own.prefix, &own.elders, page));
        stats.byzantine_forged_credits += messages.len() as u64;
        messages
    }
}
