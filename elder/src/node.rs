//! The elder's one writer: a thread that owns the ledger. It takes a batch of inputs, has the
//! ledger name the batch's crypto work and spreads it over the cores, then hands the batch to
//! [`Ledger::handle_batch`]; a committer thread that owns the store then commits every record
//! the batch produced in one transaction, and only then lets its replies and peer messages go
//! (R1, R3). Batches are committed in order, so while batch k is written, batch k + 1 is
//! already checked and handled, and nothing of it leaves before k and k + 1 are both durable.
//! A failed commit stops the process: an elder must never answer with state it did not
//! persist. Only section-sync messages (cursors and self-certifying proofs) leave at once.
//! The section signatures of all proofs in a batch are checked together first (one random
//! linear combination per signing section), which under load costs a fraction of one-by-one
//! checks.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::ledger::{CryptoWork, ElderId, Input, Ledger, Precomputed, Record, Unpersisted};
use shared::messages::PeerMessage;

use crate::conduct::Conduct;

use crate::limits::{GROUP_COMMIT_MAX, PARALLEL_ITEMS_MIN, WORKERS_MAX};
use crate::peers::Peers;
use crate::queue::{Inputs, ReplyTo};
use crate::store::Store;

/// One handled batch on its way to the store: its records, then what they release.
struct Commit<N> {
    records: Vec<Record>,
    unpersisted: Unpersisted<(N, ReplyTo)>,
}

/// The conduct, shared by the thread that handles batches (sync messages) and the one that
/// commits them (replies and the other messages).
type Shared<C> = Arc<Mutex<C>>;

/// Runs the ledger until the queue is stopped and drained, and returns once everything
/// handled is committed; what leaves passes through `conduct`.
pub fn run<C: Conduct>(ledger: Ledger, store: Store, inputs: Inputs, peers: Peers, conduct: C) {
    let conduct = Arc::new(Mutex::new(conduct));
    // One batch waits while another is written: the ledger runs at most two batches ahead.
    let (commits, to_commit) = mpsc::sync_channel(1);
    let committer = std::thread::Builder::new()
        .name("commit".to_string())
        .spawn({
            let (peers, conduct) = (peers.clone(), conduct.clone());
            move || commit(store, to_commit, peers, conduct)
        })
        .expect("spawn the commit thread");
    let applied = handle(ledger, inputs, commits, &peers, &conduct);
    committer.join().expect("committing does not panic");
    tracing::info!(applied, "ledger stopped with everything committed");
}

/// Commits each batch in order, in one transaction, then sends its replies and messages.
fn commit<C: Conduct>(
    mut store: Store,
    commits: Receiver<Commit<C::Note>>,
    peers: Peers,
    conduct: Shared<C>,
) {
    for Commit { records, unpersisted } in commits {
        if let Err(error) = store.append(&records) {
            tracing::error!(%error, "cannot persist; stopping before anything unpersisted leaves");
            std::process::exit(2);
        }
        let released = unpersisted.persisted();
        let mut conduct = conduct.lock().expect("a conduct does not panic");
        for ((note, reply_to), reply) in released.replies {
            conduct.reply(note, reply, reply_to);
        }
        send(&mut *conduct, &peers, released.messages);
    }
}

/// Sends peer messages as the conduct has them leave.
fn send<C: Conduct>(conduct: &mut C, peers: &Peers, messages: Vec<(ElderId, PeerMessage)>) {
    let mut out = Vec::with_capacity(messages.len());
    for (to, message) in messages {
        conduct.message(to, message, &mut out);
    }
    for (to, message) in out {
        peers.send(to, message);
    }
}

/// Handles batches of inputs, each as soon as it is there or when the ledger's next deadline
/// comes, and hands each batch's effects to the committer; returns the proofs applied.
fn handle<C: Conduct>(
    mut ledger: Ledger,
    inputs: Inputs,
    commits: SyncSender<Commit<C::Note>>,
    peers: &Peers,
    conduct: &Shared<C>,
) -> usize {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(WORKERS_MAX);
    let mut clock = Clock::default();
    let mut stopping = false;
    while !stopping {
        let wait_ms = ledger.poll_timeout().saturating_sub(clock.now_ms());
        let (batch, stop) =
            inputs.take(GROUP_COMMIT_MAX, Instant::now() + Duration::from_millis(wait_ms));
        stopping = stop;
        let batch = noted(batch, &*conduct.lock().expect("a conduct does not panic"));
        let now_ms = clock.now_ms();
        let precomputed = precompute(&ledger, &CryptoWork::of(&batch), workers);
        let ready = ledger.handle_batch(batch, precomputed, now_ms);
        send(&mut *conduct.lock().expect("a conduct does not panic"), peers, ready.sync_messages);
        let commit = Commit { records: ready.records, unpersisted: ready.unpersisted };
        commits.send(commit).expect("the committer runs until the ledger stops");
    }
    ledger.log().count()
}

/// The ledger's clock: milliseconds since the Unix epoch, as time windows need (R11), held
/// from going back so the ledger's timers survive a step of the system clock backwards.
#[derive(Default)]
struct Clock {
    latest_ms: u64,
}

impl Clock {
    fn now_ms(&mut self) -> u64 {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let wall_ms = wall.map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
        self.latest_ms = self.latest_ms.max(wall_ms);
        self.latest_ms
    }
}

/// A batch with the conduct's note on each client request.
fn noted<C: Conduct>(batch: Vec<Input<ReplyTo>>, conduct: &C) -> Vec<Input<(C::Note, ReplyTo)>> {
    let note = |input| match input {
        Input::Client { request, reply_to } => {
            let note = conduct.note(&request);
            Input::Client { request, reply_to: (note, reply_to) }
        }
        Input::Peer { from, message } => Input::Peer { from, message },
    };
    batch.into_iter().map(note).collect()
}

/// A batch's crypto done ahead on `workers` cores (see [`Ledger::precompute`]); a small batch
/// is done here alone, where a thread would cost more than it saves.
fn precompute(ledger: &Ledger, work: &CryptoWork, workers: usize) -> Precomputed {
    let parts = if workers < 2 || work.len() < PARALLEL_ITEMS_MIN { 1 } else { workers };
    let precomputed = precompute_on(ledger, work, parts);
    let (proofs, shares) = (precomputed.proofs_checked(), precomputed.shares_signed());
    tracing::trace!(proofs, shares, parts, "batch crypto done ahead");
    precomputed
}

/// [`precompute`] in `parts` parts, each on a core of its own.
fn precompute_on(ledger: &Ledger, work: &CryptoWork, parts: usize) -> Precomputed {
    if parts < 2 {
        return ledger.precompute(work, rand::random);
    }
    let parts = work.split(parts);
    std::thread::scope(|scope| {
        // Part 0 on this thread, the others on threads of their own.
        let (first, rest) = parts.split_first().expect("at least one part");
        let threads: Vec<_> = rest
            .iter()
            .map(|part| scope.spawn(move || ledger.precompute(part, rand::random)))
            .collect();
        let mut all = ledger.precompute(first, rand::random);
        for thread in threads {
            all.merge(thread.join().expect("precomputing crypto does not panic"));
        }
        all
    })
}
