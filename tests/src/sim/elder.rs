//! A simulated elder: the real ledger state machine with a durable record store that survives
//! crashes, or a Byzantine elder that bends the protocol in one of several ways.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shared::agreement::Vote;
use shared::crypto::{self, HashedMessage, KeyShare, SectionKeys};
use shared::driver::account_id;
use shared::ledger::{CryptoWork, ElderId, Input, Ledger, Precomputed, Record};
use shared::messages::{
    AccountReport, ClientReply, ClientRequest, HistoryPage, PeerMessage, SyncEntry,
};
use shared::network::Network;
use shared::types::{Amount, BundleId, DebitProof, Digest, Memo, Seq, Slot, Transfer, Window};

use super::net::Node;
use super::stats::Stats;

/// Credits for one section an elder holds unacknowledged before it refuses new ones: small,
/// so partitions fill outboxes and the way they drain afterwards is tested.
const OUTBOX_CREDITS_PER_SECTION: usize = 8;
/// Time between two rounds of forgeries from a forging elder, in virtual milliseconds.
const FORGERY_GAP_MS: std::ops::Range<u64> = 100..900;

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

/// Where a client's reply goes in the simulation: the client, its operation, and the slot a
/// validate request asks about (for the one-share-per-slot check).
#[derive(Clone, Copy, Debug)]
pub struct ReplyTo {
    /// The client (or the bundler).
    pub client: Node,
    /// Its operation number.
    pub op: u64,
    /// The slot and window of a validate request.
    pub validated: Option<(Slot, Window)>,
}

/// What an elder sends after a batch, or at once.
#[derive(Default)]
pub struct Sent {
    /// Replies to clients.
    pub replies: Vec<(ReplyTo, ClientReply)>,
    /// Messages to other elders.
    pub messages: Vec<(ElderId, PeerMessage)>,
}

/// How an input arrived.
pub enum Arrival {
    /// Queued; the first of a new batch when `first`, so the batch must be scheduled.
    Queued {
        /// Whether the inbox was empty.
        first: bool,
    },
    /// Answered or dropped without the ledger (crashed, or Byzantine).
    Handled(Sent),
}

/// One simulated elder.
pub struct SimElder {
    /// Its identity.
    pub id: ElderId,
    key_share: KeyShare,
    network: Arc<Network>,
    /// Its durable store: survives crashes.
    pub store: Vec<Record>,
    /// Its in-memory ledger; `None` while crashed.
    pub ledger: Option<Ledger>,
    /// Inputs waiting for the next batch; lost in a crash, as in the elder's queue.
    inbox: Vec<Input<ReplyTo>>,
    /// `None` for an honest elder.
    pub byzantine: Option<Byzantine>,
    /// When a forging elder sends its next round of forgeries.
    next_forgery_ms: u64,
    /// How far its clock is from the virtual time, within the allowed skew (R11).
    drift_ms: i64,
}

impl SimElder {
    /// A running elder at genesis.
    pub fn new(
        network: Arc<Network>,
        id: ElderId,
        key_share: KeyShare,
        byzantine: Option<Byzantine>,
        drift_ms: i64,
    ) -> SimElder {
        let mut ledger =
            Ledger::new(network.clone(), id, key_share.clone()).expect("genesis ledger");
        ledger.set_outbox_limit(OUTBOX_CREDITS_PER_SECTION);
        SimElder {
            id,
            key_share,
            network,
            store: Vec::new(),
            ledger: Some(ledger),
            inbox: Vec::new(),
            byzantine,
            next_forgery_ms: 0,
            drift_ms,
        }
    }

    /// Its clock at virtual time `now`.
    pub fn clock(&self, now: u64) -> u64 {
        now.saturating_add_signed(self.drift_ms)
    }

    /// Whether the elder follows the protocol.
    pub fn is_honest(&self) -> bool {
        self.byzantine.is_none()
    }

    /// Loses all in-memory state, queued inputs included; the store stays.
    pub fn crash(&mut self) {
        self.ledger = None;
        self.inbox.clear();
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

    /// When the ledger next has timer work, if it runs at all.
    pub fn deadline(&self) -> Option<u64> {
        let ledger = self.ledger.as_ref()?;
        let deadline = ledger.poll_timeout().saturating_add_signed(-self.drift_ms);
        (self.byzantine != Some(Byzantine::Withholds)).then_some(deadline)
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

    fn queue(&mut self, input: Input<ReplyTo>) -> Arrival {
        self.inbox.push(input);
        Arrival::Queued { first: self.inbox.len() == 1 }
    }

    /// A client request arrives.
    pub fn on_request(
        &mut self,
        request: ClientRequest,
        reply_to: ReplyTo,
        stats: &mut Stats,
    ) -> Arrival {
        if !self.hears(stats) {
            return Arrival::Handled(Sent::default());
        }
        if let (Some(Byzantine::SignsAnything), ClientRequest::Validate { transfer, .. }) =
            (self.byzantine, &request)
        {
            stats.byzantine_conflicting_shares += 1;
            let id = crypto::transfer_id(transfer);
            let message = crypto::debit_message(&self.network.genesis, &id);
            let share = crypto::sign_debit_share(&self.key_share, &message);
            let reply = ClientReply::Share { transfer: id, share };
            return Arrival::Handled(Sent { replies: vec![(reply_to, reply)], messages: vec![] });
        }
        self.queue(Input::Client { request, reply_to })
    }

    /// Another elder's message arrives.
    pub fn on_peer(&mut self, from: ElderId, message: PeerMessage, stats: &mut Stats) -> Arrival {
        if !self.hears(stats) {
            return Arrival::Handled(Sent::default());
        }
        if let (Some(Byzantine::ForgesCredits), PeerMessage::Proof { proof }) =
            (self.byzantine, &message)
        {
            stats.byzantine_forged_credits += 1;
            let transfer = crypto::transfer_id(&proof.signed);
            let ack = (from, PeerMessage::ProofAck { transfer });
            return Arrival::Handled(Sent { replies: vec![], messages: vec![ack] });
        }
        self.queue(Input::Peer { from, message })
    }

    /// Whether a batch would do anything at `now`: inputs wait or timer work is due.
    pub fn has_work(&self, now: u64) -> bool {
        self.deadline().is_some_and(|deadline| !self.inbox.is_empty() || deadline <= now)
    }

    /// Runs one batch through the ledger's batch entry point, as the elder's node does: the
    /// inbox with its crypto done ahead in two parts, then the timer work due at `now`. The
    /// records are persisted before the replies and messages are released (R1).
    pub fn run_batch(&mut self, now: u64, rng: &mut ChaCha8Rng, stats: &mut Stats) -> Sent {
        if self.deadline().is_none() {
            return Sent::default();
        }
        let clock = self.clock(now);
        let ledger = self.ledger.as_mut().expect("a running elder has a ledger");
        let inputs = std::mem::take(&mut self.inbox);
        let referred = match self.byzantine {
            Some(Byzantine::SignsAnything) => bundles_referred(&inputs),
            _ => Vec::new(),
        };
        stats.batches += 1;
        stats.batches_of_several += u64::from(inputs.len() > 1);
        let work = CryptoWork::of(&inputs);
        let mut precomputed = Precomputed::default();
        for part in work.split(2) {
            precomputed.merge(ledger.precompute(&part, || rng.gen()));
        }
        stats.proofs_checked_ahead += precomputed.proofs_checked() as u64;
        stats.shares_signed_ahead += precomputed.shares_signed() as u64;
        let ready = ledger.handle_batch(inputs, precomputed, clock);
        self.store.extend(ready.records);
        let released = ready.unpersisted.persisted();
        // Sync messages may leave before the records in the elder; here they leave together.
        let mut messages = ready.sync_messages;
        messages.extend(released.messages);
        let replies = released
            .replies
            .into_iter()
            .map(|(reply_to, reply)| (reply_to, self.bend(reply, rng, stats)))
            .collect();
        for bundle in referred {
            stats.byzantine_outcome_equivocations += 1;
            messages.extend(self.both_outcomes(bundle));
        }
        if self.byzantine == Some(Byzantine::ForgesCredits) && now >= self.next_forgery_ms {
            self.next_forgery_ms = now + rng.gen_range(FORGERY_GAP_MS);
            messages.extend(self.forgeries(rng, stats));
        }
        Sent { replies, messages }
    }

    /// A Byzantine referee elder's votes and shares for both outcomes of `bundle`, to every
    /// section peer: R12 must hold anyway.
    fn both_outcomes(&self, bundle: BundleId) -> Vec<(ElderId, PeerMessage)> {
        let own = self.network.sections.iter().find(|s| s.prefix == self.id.prefix);
        let own = own.expect("own section");
        let mut messages = Vec::new();
        for commit in [true, false] {
            let message = crypto::outcome_message(&self.network.genesis, &bundle, commit);
            let share = crypto::sign_debit_share(&self.key_share, &message);
            let votes = [
                PeerMessage::OutcomeShare { bundle, commit, share },
                PeerMessage::Vote { bundle, vote: Vote::Value { round: 0, value: commit } },
                PeerMessage::Vote { bundle, vote: Vote::Aux { round: 0, value: commit } },
                PeerMessage::Vote { bundle, vote: Vote::Term { value: commit } },
            ];
            for vote in votes {
                messages.extend(to_all(own.prefix, &own.elders, vote));
            }
        }
        messages.retain(|(to, _)| *to != self.id);
        messages
    }

    /// A Byzantine elder's version of an honest reply.
    fn bend(&self, reply: ClientReply, rng: &mut ChaCha8Rng, stats: &mut Stats) -> ClientReply {
        match (self.byzantine, reply) {
            (Some(Byzantine::GarbageShares), ClientReply::Share { transfer, .. }) => {
                stats.byzantine_garbage_shares += 1;
                let wrong_key = SectionKeys::deal(1, rng.gen()).share(0);
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
        }
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
            window: Window::ALWAYS,
        };
        let section = network.section_of(&transfer.from);
        let forged = DebitProof {
            signed: crypto::sign_transfer(&forger, &network.genesis, transfer),
            section_key: section.key_id,
            signature: SectionKeys::deal(1, rng.gen())
                .sign(&HashedMessage::of(b"not the section key")),
        };
        messages.extend(to_all(
            target.prefix,
            &target.elders,
            PeerMessage::Proof { proof: forged.clone() },
        ));
        let own =
            network.sections.iter().find(|s| s.prefix == self.id.prefix).expect("own section");
        let ledger = self.ledger.as_ref().expect("a running elder forges");
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
        let page =
            PeerMessage::SyncReply { entries: vec![SyncEntry::Proof(forged)], next_position: 1 };
        messages.extend(to_all(own.prefix, &own.elders, page));
        stats.byzantine_forged_credits += messages.len() as u64;
        messages
    }
}

/// The bundles a batch's referee messages are about.
fn bundles_referred(inputs: &[Input<ReplyTo>]) -> Vec<BundleId> {
    let mut bundles: Vec<BundleId> = inputs
        .iter()
        .filter_map(|input| match input {
            Input::Peer { message: PeerMessage::Vote { bundle, .. }, .. } => Some(*bundle),
            Input::Peer { message: PeerMessage::Refer { bundle, .. }, .. } => {
                Some(crypto::bundle_id(bundle))
            }
            _ => None,
        })
        .collect();
    bundles.sort();
    bundles.dedup();
    bundles
}

/// `message` to every one of `elders` of section `prefix`.
fn to_all(
    prefix: shared::types::Prefix,
    elders: &[shared::network::ElderInfo],
    message: PeerMessage,
) -> Vec<(ElderId, PeerMessage)> {
    elders.iter().map(|elder| (ElderId { prefix, index: elder.index }, message.clone())).collect()
}
