//! The simulated network: a virtual-time event queue that drops, duplicates, delays and
//! reorders messages. Messages travel as codec bytes, so the real encoding is exercised.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shared::ledger::ElderId;
use shared::types::ElderIndex;

use super::stats::Stats;

/// Who receives an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// An elder, by flat index (section × n + index).
    Elder(usize),
    /// A client, by index.
    Client(usize),
    /// The party to bundles.
    Bundler,
}

/// What arrives.
#[derive(Clone, Debug)]
pub enum Payload {
    /// An encoded `ClientRequest` from a client or the bundler, tagged with its operation
    /// number.
    Request { from: Node, op: u64, bytes: Vec<u8> },
    /// An encoded `ClientReply` to a client.
    Reply { elder: ElderIndex, op: u64, bytes: Vec<u8> },
    /// An encoded `PeerMessage` from another elder.
    Peer { from: ElderId, bytes: Vec<u8> },
    /// An elder runs a batch: the inputs that have arrived, and its timer work if due.
    Run,
    /// A client's timer, for the operation it was set in.
    Wake { op: u64 },
    /// A crash of an elder.
    Crash,
    /// A restart of a crashed elder.
    Restart,
}

/// One scheduled event.
#[derive(Debug)]
pub struct Event {
    /// Virtual time, in milliseconds.
    pub at: u64,
    order: u64,
    /// Receiver.
    pub to: Node,
    /// Content.
    pub payload: Payload,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    // Reversed: the binary heap pops the earliest event first, ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// Fault rates of the network while chaos lasts.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// Probability a message is lost.
    pub drop: f64,
    /// Probability a message arrives twice.
    pub duplicate: f64,
    /// Probability a message is held back long enough to overtake others.
    pub long_delay: f64,
}

/// The event queue.
#[derive(Default)]
pub struct Net {
    queue: BinaryHeap<Event>,
    scheduled: u64,
}

/// Shortest and longest ordinary delivery delay, and the longest held-back delay.
const DELAY_MS_MIN: u64 = 1;
const DELAY_MS_MAX: u64 = 20;
const LONG_DELAY_MS_MAX: u64 = 400;

impl Net {
    /// Schedules a timer or fault event exactly at `at`.
    pub fn schedule(&mut self, at: u64, to: Node, payload: Payload) {
        self.scheduled += 1;
        self.queue.push(Event { at, order: self.scheduled, to, payload });
    }

    /// Sends a message at `now`, through the faults when they are on.
    pub fn send(
        &mut self,
        rng: &mut ChaCha8Rng,
        stats: &mut Stats,
        now: u64,
        faults: Option<Faults>,
        to: Node,
        payload: Payload,
    ) {
        let mut copies = 1;
        if let Some(faults) = faults {
            if rng.gen_bool(faults.drop) {
                stats.messages_dropped += 1;
                return;
            }
            if rng.gen_bool(faults.duplicate) {
                stats.messages_duplicated += 1;
                copies = 2;
            }
        }
        for _ in 0..copies {
            let held_back = faults.is_some_and(|faults| rng.gen_bool(faults.long_delay));
            let delay = if held_back {
                stats.messages_delayed += 1;
                rng.gen_range(DELAY_MS_MAX..=LONG_DELAY_MS_MAX)
            } else {
                rng.gen_range(DELAY_MS_MIN..=DELAY_MS_MAX)
            };
            self.schedule(now + delay, to, payload.clone());
        }
    }

    /// The next event, if any.
    pub fn pop(&mut self) -> Option<Event> {
        self.queue.pop()
    }
}
