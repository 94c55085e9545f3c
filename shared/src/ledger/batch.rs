//! The ledger's one entry point: a batch of inputs in, a [`Ready`] out (raft-rs's `Ready`).
//! What must be durable first (records) and what may leave at once (section sync) are handed
//! out directly; replies and peer messages sit in an [`Unpersisted`] that gives them up only
//! when the caller marks the records persisted (R1, R3). The ledger also finds a batch's
//! crypto work ([`CryptoWork`]), which the shell may spread over cores, and says when it next
//! needs the clock ([`Ledger::poll_timeout`]).

use super::{ElderId, Ledger, Output, Precomputed, ProofSource, Record};
use crate::messages::{ClientReply, ClientRequest, PeerMessage, SyncEntry};
use crate::types::{DebitProof, SignedTransfer};

/// One input of a batch; `T` is the shell's way back to the client (a reply channel in the
/// elder, a client and operation in the simulation).
#[derive(Debug)]
pub enum Input<T> {
    /// A client's request.
    Client {
        /// The request.
        request: ClientRequest,
        /// Where its reply goes.
        reply_to: T,
    },
    /// Another elder's message.
    Peer {
        /// The sending elder, known by its certificate.
        from: ElderId,
        /// The message.
        message: PeerMessage,
    },
}

/// The crypto a batch needs ahead of handling: the proofs whose section signatures are
/// checked together, and the transfers this elder may sign a share for.
#[derive(Clone, Debug, Default)]
pub struct CryptoWork<'a> {
    /// Each proof with where it came from: a failed batch check is bisected per source, so
    /// forged proofs from one peer make only that peer's proofs be checked apart.
    pub(crate) proofs: Vec<(ProofSource, &'a DebitProof)>,
    pub(crate) transfers: Vec<&'a SignedTransfer>,
}

impl<'a> CryptoWork<'a> {
    /// The crypto work of `inputs`: every proof they carry, every transfer to validate.
    pub fn of<T>(inputs: &'a [Input<T>]) -> CryptoWork<'a> {
        let mut work = CryptoWork::default();
        for input in inputs {
            match input {
                Input::Client { request: ClientRequest::Register { proof, deps }, .. } => {
                    let proofs = std::iter::once(proof).chain(deps);
                    work.proofs.extend(proofs.map(|proof| (ProofSource::Client, proof)));
                }
                Input::Client { request: ClientRequest::Validate { transfer, deps }, .. } => {
                    work.transfers.push(transfer);
                    work.proofs.extend(deps.iter().map(|proof| (ProofSource::Client, proof)));
                }
                Input::Peer { from, message: PeerMessage::Proof { proof } } => {
                    work.proofs.push((ProofSource::Elder(*from), proof))
                }
                Input::Peer { from, message: PeerMessage::SyncReply { entries, .. } } => {
                    work.proofs.extend(entries.iter().filter_map(|entry| match entry {
                        SyncEntry::Proof(proof) => Some((ProofSource::Elder(*from), proof)),
                        SyncEntry::Outcome(_) => None,
                    }))
                }
                _ => {}
            }
        }
        work
    }

    /// Proofs and transfers in all.
    pub fn len(&self) -> usize {
        self.proofs.len() + self.transfers.len()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The work cut into `parts` parts of about equal size, for as many cores.
    pub fn split(&self, parts: usize) -> Vec<CryptoWork<'a>> {
        let parts = parts.max(1);
        let size = |items: usize| items.div_ceil(parts).max(1);
        let mut proofs = self.proofs.chunks(size(self.proofs.len()));
        let mut transfers = self.transfers.chunks(size(self.transfers.len()));
        (0..parts)
            .map(|_| CryptoWork {
                proofs: proofs.next().unwrap_or_default().to_vec(),
                transfers: transfers.next().unwrap_or_default().to_vec(),
            })
            .collect()
    }
}

/// What a handled batch asks of the shell: persist the records, send the sync messages when
/// it likes, and only after the records are durable, the rest.
#[derive(Debug)]
#[must_use = "the records must be persisted and then the replies sent"]
pub struct Ready<T> {
    /// Records to persist, in order.
    pub records: Vec<Record>,
    /// Section-sync requests and pages, which may leave at once: they carry only a cursor or
    /// section-signed proofs, which prove themselves whether or not this elder keeps them.
    pub sync_messages: Vec<(ElderId, PeerMessage)>,
    /// The replies and peer messages, held until the records are persisted.
    pub unpersisted: Unpersisted<T>,
}

/// Replies and peer messages that may leave only once their batch's records are durable.
#[derive(Debug)]
#[must_use = "replies wait for their records to be persisted"]
pub struct Unpersisted<T> {
    replies: Vec<(T, ClientReply)>,
    messages: Vec<(ElderId, PeerMessage)>,
}

/// Replies and peer messages whose records are durable: free to leave.
#[derive(Debug)]
pub struct Released<T> {
    /// Each client's reply, with its way back.
    pub replies: Vec<(T, ClientReply)>,
    /// Messages to other elders.
    pub messages: Vec<(ElderId, PeerMessage)>,
}

impl<T> Unpersisted<T> {
    /// Marks the batch's records persisted, which releases its replies and messages. Call
    /// it only once every record of the batch (and of every batch before it) is durable.
    pub fn persisted(self) -> Released<T> {
        Released { replies: self.replies, messages: self.messages }
    }
}

impl Ledger {
    /// Handles a batch of inputs in order, using `precomputed` (from [`Ledger::precompute`]
    /// over this batch's [`CryptoWork`]) for its crypto, then whatever timer work is due at
    /// `now_ms`. Without the precomputed work each check is simply done here.
    pub fn handle_batch<T>(
        &mut self,
        inputs: Vec<Input<T>>,
        precomputed: Precomputed,
        now_ms: u64,
    ) -> Ready<T> {
        self.accept_precomputed(precomputed);
        let mut output = Output::default();
        let mut replies = Vec::new();
        for input in inputs {
            match input {
                Input::Client { request, reply_to } => {
                    replies.push((reply_to, self.client_input(request, now_ms, &mut output)));
                }
                Input::Peer { from, message } => {
                    self.peer_input(from, message, now_ms, &mut output)
                }
            }
        }
        self.timeout_work(now_ms, &mut output);
        self.accept_precomputed(Precomputed::default());
        Ready {
            records: output.records,
            sync_messages: output.sync_messages,
            unpersisted: Unpersisted { replies, messages: output.messages },
        }
    }

    /// When the ledger next has timer work, in the clock of `now_ms`: the earliest outbox
    /// delivery or bundle timer due, or the next section sync. A batch handled at or after it does the work,
    /// with or without inputs.
    pub fn poll_timeout(&self) -> u64 {
        let delivery = self.outbox_due.first().map_or(u64::MAX, |(due, _)| *due);
        let bundle = self.bundle_due.first().map_or(u64::MAX, |(due, _)| *due);
        delivery.min(bundle).min(self.next_sync_ms)
    }
}
