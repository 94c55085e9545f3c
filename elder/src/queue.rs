//! The ledger's input queue: one bounded queue per source, taken round-robin, so no source can
//! crowd out the others. Each elder of the map is a source of its own; each client connection
//! is one, and all clients together are bounded too. The whole queue is bounded by count and
//! by encoded bytes.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::limits::{CLIENT_INPUTS_MAX, INPUT_QUEUE_BYTES_MAX, INPUT_QUEUE_MAX, PEER_INPUTS_MAX};
use shared::ledger::{ElderId, Input};
use shared::messages::{ClientReply, ClientRequest, PeerMessage};
use tokio::sync::oneshot;

/// Who an input came from; each has its own queue.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Source {
    /// An elder of the map, known by its certificate.
    Elder(ElderId),
    /// One client connection, by its endpoint-unique id.
    Client(usize),
}

/// Where a client's reply goes: the task serving its stream.
pub type ReplyTo = oneshot::Sender<ClientReply>;

/// One waiting input and its encoded size.
struct Queued {
    input: Input<ReplyTo>,
    bytes: usize,
}

/// Why an input was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum NotQueued {
    /// The queue, its bytes, or the source's share of it is full.
    Busy,
    /// The ledger thread is stopping.
    Stopped,
}

#[derive(Default)]
struct State {
    queues: BTreeMap<Source, VecDeque<Queued>>,
    /// The source served last: the next batch starts after it.
    last: Option<Source>,
    count: usize,
    clients: usize,
    bytes: usize,
    stopping: bool,
}

/// The queue, shared by the connection tasks that fill it and the ledger thread.
#[derive(Clone, Default)]
pub struct Inputs {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl Inputs {
    /// An empty queue.
    pub fn new() -> Inputs {
        Inputs::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.0.lock().expect("no thread panics holding the queue")
    }

    /// Queues a client request of `bytes` encoded bytes from client connection `connection`.
    pub fn client(
        &self,
        connection: usize,
        request: ClientRequest,
        bytes: usize,
        reply_to: ReplyTo,
    ) -> Result<(), NotQueued> {
        let input = Input::Client { request, reply_to };
        self.push(Source::Client(connection), Queued { input, bytes })
    }

    /// Queues a message of `bytes` encoded bytes from another elder.
    pub fn peer(&self, from: ElderId, message: PeerMessage, bytes: usize) -> Result<(), NotQueued> {
        self.push(Source::Elder(from), Queued { input: Input::Peer { from, message }, bytes })
    }

    fn push(&self, source: Source, queued: Queued) -> Result<(), NotQueued> {
        let mut state = self.state();
        if state.stopping {
            return Err(NotQueued::Stopped);
        }
        let is_client = matches!(source, Source::Client(_));
        let waiting = state.queues.get(&source).map_or(0, VecDeque::len);
        let full = state.count >= INPUT_QUEUE_MAX
            || state.bytes + queued.bytes > INPUT_QUEUE_BYTES_MAX
            || (is_client && state.clients >= CLIENT_INPUTS_MAX)
            || (!is_client && waiting >= PEER_INPUTS_MAX);
        if full {
            return Err(NotQueued::Busy);
        }
        state.count += 1;
        state.clients += usize::from(is_client);
        state.bytes += queued.bytes;
        state.queues.entry(source).or_default().push_back(queued);
        drop(state);
        self.shared.1.notify_one();
        Ok(())
    }

    /// Lets the ledger finish what is queued and stop; nothing more is queued.
    pub fn stop(&self) {
        self.state().stopping = true;
        self.shared.1.notify_all();
    }

    /// Takes up to `max` inputs, one from each source in turn, waiting until `deadline` for
    /// the first. Returns them and whether the ledger should stop after this batch (stop was
    /// asked and nothing is left).
    pub fn take(&self, max: usize, deadline: Instant) -> (Vec<Input<ReplyTo>>, bool) {
        let mut state = self.state();
        while state.count == 0 && !state.stopping {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            state = self.shared.1.wait_timeout(state, wait).expect("queue lock").0;
        }
        let mut batch = Vec::new();
        while batch.len() < max && state.count > 0 {
            let after = state.last.map_or(Bound::Unbounded, Bound::Excluded);
            let next = state
                .queues
                .range((after, Bound::Unbounded))
                .chain(state.queues.iter())
                .map(|(source, _)| *source)
                .next()
                .expect("a source holds the counted inputs");
            let queue = state.queues.get_mut(&next).expect("the source is queued");
            let queued = queue.pop_front().expect("queues are never left empty");
            if queue.is_empty() {
                state.queues.remove(&next);
            }
            state.last = Some(next);
            state.count -= 1;
            state.clients -= usize::from(matches!(next, Source::Client(_)));
            state.bytes -= queued.bytes;
            batch.push(queued.input);
        }
        let stop = state.stopping && state.count == 0;
        (batch, stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::types::{ElderIndex, Prefix};

    fn peer(index: u32) -> ElderId {
        ElderId { prefix: Prefix::ROOT, index: ElderIndex(index) }
    }

    fn sync(position: u64) -> PeerMessage {
        PeerMessage::SyncRequest { position }
    }

    fn senders(batch: &[Input<ReplyTo>]) -> Vec<(u32, u64)> {
        batch
            .iter()
            .map(|input| match input {
                Input::Peer { from, message: PeerMessage::SyncRequest { position } } => {
                    (from.index.0, *position)
                }
                _ => panic!("only sync requests were queued"),
            })
            .collect()
    }

    #[test]
    fn sources_are_served_in_turn_and_one_cannot_fill_the_queue() {
        let inputs = Inputs::new();
        for position in 0..PEER_INPUTS_MAX as u64 {
            inputs.peer(peer(1), sync(position), 10).expect("room for elder 1");
        }
        assert_eq!(inputs.peer(peer(1), sync(0), 10), Err(NotQueued::Busy), "its share is full");
        for position in 0..2 {
            inputs.peer(peer(2), sync(position), 10).expect("room for elder 2");
        }
        let (batch, stop) = inputs.take(4, Instant::now());
        assert!(!stop);
        assert_eq!(senders(&batch), vec![(1, 0), (2, 0), (1, 1), (2, 1)]);
        let (batch, _) = inputs.take(2, Instant::now());
        assert_eq!(senders(&batch), vec![(1, 2), (1, 3)], "elder 2 has nothing left");
    }

    #[test]
    fn the_queue_is_bounded_by_bytes_and_stops_once_drained() {
        let inputs = Inputs::new();
        inputs.peer(peer(1), sync(0), INPUT_QUEUE_BYTES_MAX - 5).expect("fits");
        assert_eq!(inputs.peer(peer(2), sync(0), 6), Err(NotQueued::Busy));
        inputs.peer(peer(2), sync(0), 5).expect("fits exactly");
        inputs.stop();
        assert_eq!(inputs.peer(peer(3), sync(0), 1), Err(NotQueued::Stopped));
        let (batch, stop) = inputs.take(1, Instant::now());
        assert_eq!((batch.len(), stop), (1, false));
        let (batch, stop) = inputs.take(8, Instant::now());
        assert_eq!((batch.len(), stop), (1, true));
        inputs.peer(peer(1), sync(0), 1).expect_err("stopped");
    }
}
