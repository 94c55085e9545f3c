//! How an elder behaves on the wire. The elder binary is always [`Honest`]: its replies and
//! messages are exactly what the ledger produced. The trait exists so that the chaos tooling
//! can build a separate, lying binary around the same shell and ledger (`byzantine-elder` in
//! the testnet crate); no configuration of this binary can make it lie.

use shared::ledger::ElderId;
use shared::messages::{ClientReply, ClientRequest, PeerMessage};

use crate::queue::ReplyTo;

/// What leaves an elder, after the ledger produced it and its records are durable.
pub trait Conduct: Send + 'static {
    /// What a conduct keeps of a request to shape its reply (nothing, for the honest one).
    type Note: Send + 'static;

    /// Taken from each client request as it enters a batch.
    fn note(&self, request: &ClientRequest) -> Self::Note;

    /// Answers a request on `reply_to` (or, for a liar, does something else with it).
    fn reply(&mut self, note: Self::Note, reply: ClientReply, reply_to: ReplyTo);

    /// The peer messages that leave for one the ledger produced, added to `out`.
    fn message(&mut self, to: ElderId, message: PeerMessage, out: &mut Vec<(ElderId, PeerMessage)>);
}

/// The ledger's replies and messages, unchanged.
pub struct Honest;

impl Conduct for Honest {
    type Note = ();

    fn note(&self, _request: &ClientRequest) {}

    fn reply(&mut self, _note: (), reply: ClientReply, reply_to: ReplyTo) {
        // The client may have gone; its request is still applied and persisted.
        let _ = reply_to.send(reply);
    }

    fn message(
        &mut self,
        to: ElderId,
        message: PeerMessage,
        out: &mut Vec<(ElderId, PeerMessage)>,
    ) {
        out.push((to, message));
    }
}
