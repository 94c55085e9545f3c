//! The elder's one writer: a thread that owns the ledger. It takes a batch of inputs and runs
//! each through the ledger; a committer thread that owns the store then commits every record
//! the batch produced in one transaction, and only then lets its replies and peer messages go
//! (R1, R3). Batches are committed in order, so while batch k is written, batch k + 1 is
//! already checked and handled, and nothing of it leaves before k and k + 1 are both durable.
//! A failed commit stops the process: an elder must never answer with state it did not
//! persist. Only section-sync messages (cursors and self-certifying proofs) leave at once.
//! The section signatures of all proofs in a batch are checked together first (one random
//! linear combination per signing section), which under load costs a fraction of one-by-one
//! checks.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use shared::ledger::{ElderId, Ledger, Output, Precomputed, Record};
use shared::messages::{ClientReply, ClientRequest, PeerMessage};
use shared::types::{DebitProof, SignedTransfer};
use tokio::sync::oneshot;

use crate::peers::Peers;
use crate::queue::{Input, Inputs};
use crate::store::Store;

/// Inputs handled per commit at most.
pub const GROUP_COMMIT_MAX: usize = 256;
/// Threads that share a batch's crypto at most.
const WORKERS_MAX: usize = 8;
/// Fewer proofs and transfers than this in a batch are not worth a thread.
const PARALLEL_ITEMS_MIN: usize = 8;
/// How often the ledger ticks: outbox delivery and section sync.
pub const TICK_MS: u64 = 250;

/// One handled batch's effects: persisted first, then released.
struct Commit {
    records: Vec<Record>,
    replies: Vec<(oneshot::Sender<ClientReply>, ClientReply)>,
    messages: Vec<(ElderId, PeerMessage)>,
}

/// Runs the ledger until the queue is stopped and drained, and returns once everything
/// handled is committed.
pub fn run(ledger: Ledger, store: Store, inputs: Inputs, peers: Peers) {
    // One batch waits while another is written: the ledger runs at most two batches ahead.
    let (commits, to_commit) = mpsc::sync_channel(1);
    let committer = std::thread::Builder::new()
        .name("commit".to_string())
        .spawn({
            let peers = peers.clone();
            move || commit(store, to_commit, peers)
        })
        .expect("spawn the commit thread");
    let applied = handle(ledger, inputs, commits, &peers);
    committer.join().expect("committing does not panic");
    tracing::info!(applied, "ledger stopped with everything committed");
}

/// Commits each batch in order, in one transaction, then sends its replies and messages.
fn commit(mut store: Store, commits: Receiver<Commit>, peers: Peers) {
    for Commit { records, replies, messages } in commits {
        if let Err(error) = store.append(&records) {
            tracing::error!(%error, "cannot persist; stopping before anything unpersisted leaves");
            std::process::exit(2);
        }
        for (reply, answer) in replies {
            // The client may have gone; its request is still applied and persisted.
            let _ = reply.send(answer);
        }
        for (to, message) in messages {
            peers.send(to, message);
        }
    }
}

/// Handles batches of inputs and hands each batch's effects to the committer; returns the
/// number of proofs applied.
fn handle(mut ledger: Ledger, inputs: Inputs, commits: SyncSender<Commit>, peers: &Peers) -> usize {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(WORKERS_MAX);
    let started = Instant::now();
    let tick = Duration::from_millis(TICK_MS);
    let mut next_tick = Instant::now();
    let mut stopping = false;
    while !stopping {
        let (batch, stop) = inputs.take(GROUP_COMMIT_MAX, next_tick);
        stopping = stop;
        let now_ms = started.elapsed().as_millis() as u64;
        ledger.accept_precomputed(precompute(&ledger, &batch, workers));
        let mut output = Output::default();
        let mut replies = Vec::new();
        for input in batch {
            match input {
                Input::Client { request, reply, .. } => {
                    let (answer, produced) = ledger.handle_client(request, now_ms);
                    merge(&mut output, produced);
                    replies.push((reply, answer));
                }
                Input::Peer { from, message, .. } => {
                    merge(&mut output, ledger.handle_peer(from, message, now_ms))
                }
            }
        }
        if Instant::now() >= next_tick {
            merge(&mut output, ledger.handle_tick(now_ms));
            next_tick = Instant::now() + tick;
        }
        for (to, message) in output.sync_messages {
            peers.send(to, message);
        }
        let commit = Commit { records: output.records, replies, messages: output.messages };
        commits.send(commit).expect("the committer runs until the ledger stops");
    }
    ledger.log().count()
}

/// A batch's crypto done ahead on `workers` cores (see [`Ledger::precompute`]); a small batch
/// is done here alone, where a thread would cost more than it saves.
fn precompute(ledger: &Ledger, batch: &[Input], workers: usize) -> Precomputed {
    let proofs: Vec<&DebitProof> = batch.iter().flat_map(proofs_in).collect();
    let transfers: Vec<&SignedTransfer> = batch
        .iter()
        .filter_map(|input| match input {
            Input::Client { request: ClientRequest::Validate { transfer, .. }, .. } => {
                Some(transfer)
            }
            _ => None,
        })
        .collect();
    if workers < 2 || proofs.len() + transfers.len() < PARALLEL_ITEMS_MIN {
        return ledger.precompute(&proofs, &transfers, rand::random);
    }
    let part = |items: usize| items.div_ceil(workers).max(1);
    let (proof_part, transfer_part) = (part(proofs.len()), part(transfers.len()));
    let work = |k: usize| {
        let proofs = proofs.chunks(proof_part).nth(k).unwrap_or_default();
        let transfers = transfers.chunks(transfer_part).nth(k).unwrap_or_default();
        ledger.precompute(proofs, transfers, rand::random)
    };
    std::thread::scope(|scope| {
        // Part 0 on this thread, the others on threads of their own.
        let parts: Vec<_> = (1..workers).map(|k| scope.spawn(move || work(k))).collect();
        let mut all = work(0);
        for part in parts {
            all.merge(part.join().expect("precomputing crypto does not panic"));
        }
        all
    })
}

/// The debit proofs an input brings, for the batch check of their signatures.
fn proofs_in(input: &Input) -> Vec<&DebitProof> {
    match input {
        Input::Client { request: ClientRequest::Register { proof, deps }, .. } => {
            std::iter::once(proof).chain(deps).collect()
        }
        Input::Client { request: ClientRequest::Validate { deps, .. }, .. } => {
            deps.iter().collect()
        }
        Input::Peer { message: PeerMessage::Proof { proof }, .. } => vec![proof],
        Input::Peer { message: PeerMessage::SyncReply { proofs, .. }, .. } => {
            proofs.iter().collect()
        }
        _ => Vec::new(),
    }
}

fn merge(into: &mut Output, from: Output) {
    into.records.extend(from.records);
    into.messages.extend(from.messages);
    into.sync_messages.extend(from.sync_messages);
}
