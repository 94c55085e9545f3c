//! The elder's one writer: a thread that owns the ledger and the store. It takes a batch of
//! inputs, runs each through the ledger, commits every record the batch produced in one
//! transaction, and only then lets replies and peer messages go (R1, R3). A failed commit
//! stops the process: an elder must never answer with state it did not persist.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use shared::ledger::{ElderId, Ledger, Output};
use shared::messages::{ClientReply, ClientRequest, PeerMessage};
use tokio::sync::oneshot;

use crate::peers::Peers;
use crate::store::Store;

/// Inputs handled per commit at most.
pub const GROUP_COMMIT_MAX: usize = 256;
/// Inputs waiting for the ledger at most; beyond it requests are turned away.
pub const INPUT_QUEUE_MAX: usize = 4096;
/// How often the ledger ticks: outbox delivery and section sync.
pub const TICK_MS: u64 = 250;

/// One input for the ledger thread.
pub enum Input {
    /// A client request and where its reply goes.
    Client {
        /// The request.
        request: ClientRequest,
        /// The reply's way back.
        reply: oneshot::Sender<ClientReply>,
    },
    /// A message from another elder.
    Peer {
        /// The sending elder, known by its certificate.
        from: ElderId,
        /// The message.
        message: PeerMessage,
    },
    /// Finish what is queued, then stop.
    Stop,
}

/// Runs the ledger until `Stop` arrives or every sender is gone.
pub fn run(mut ledger: Ledger, mut store: Store, inputs: Receiver<Input>, peers: Peers) {
    let started = Instant::now();
    let tick = Duration::from_millis(TICK_MS);
    let mut next_tick = Instant::now();
    let mut stopping = false;
    while !stopping {
        let mut batch = Vec::new();
        match inputs.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(input) => batch.push(input),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < GROUP_COMMIT_MAX {
            match inputs.try_recv() {
                Ok(input) => batch.push(input),
                Err(_) => break,
            }
        }
        let now_ms = started.elapsed().as_millis() as u64;
        let mut output = Output::default();
        let mut replies = Vec::new();
        for input in batch {
            match input {
                Input::Client { request, reply } => {
                    let (answer, produced) = ledger.handle_client(request, now_ms);
                    merge(&mut output, produced);
                    replies.push((reply, answer));
                }
                Input::Peer { from, message } => {
                    merge(&mut output, ledger.handle_peer(from, message, now_ms))
                }
                Input::Stop => stopping = true,
            }
        }
        if Instant::now() >= next_tick {
            merge(&mut output, ledger.handle_tick(now_ms));
            next_tick = Instant::now() + tick;
        }
        if let Err(error) = store.append(&output.records) {
            tracing::error!(%error, "cannot persist; stopping before anything unpersisted leaves");
            std::process::exit(2);
        }
        for (reply, answer) in replies {
            // The client may have gone; its request is still applied and persisted.
            let _ = reply.send(answer);
        }
        for (to, message) in output.messages {
            peers.send(to, message);
        }
    }
    tracing::info!(applied = ledger.log().count(), "ledger stopped with everything committed");
}

fn merge(into: &mut Output, from: Output) {
    into.records.extend(from.records);
    into.messages.extend(from.messages);
}
