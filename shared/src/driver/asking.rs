//! Asking every elder of a section at once, without I/O: each elder has one request out at a
//! time, tagged so a late answer to an earlier request is recognised; the driver judges each
//! answer and settles the elder or asks it again after a pause; an elder that does not answer
//! in time, or whose connection failed, is asked the same again after the pause.

use crate::limits::{CLIENT_ANSWER_MS_MAX, CLIENT_PATIENCE_MS, CLIENT_RETRY_DELAY_MS};
use crate::messages::{ClientReply, ClientRequest};
use crate::types::ElderIndex;

/// A request for the shell to send to one elder; its answer comes back with the same tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The section's index in the network.
    pub section: usize,
    /// The elder.
    pub elder: ElderIndex,
    /// Matches the answer to this request.
    pub tag: u64,
    /// The request.
    pub request: ClientRequest,
}

/// How long a driver waits, in milliseconds of the shell's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long an elder may take to answer before it is asked again.
    pub answer_ms: u64,
    /// The pause before asking an elder again.
    pub retry_ms: u64,
    /// How long one step (certifying, registering, one query) keeps trying before it reports
    /// the section unreachable.
    pub patience_ms: u64,
}

impl Timing {
    /// What the `bank` command line and the library use by default.
    pub const DEFAULT: Timing = Timing {
        answer_ms: CLIENT_ANSWER_MS_MAX,
        retry_ms: CLIENT_RETRY_DELAY_MS,
        patience_ms: CLIENT_PATIENCE_MS,
    };
}

/// Where one elder stands.
#[derive(Clone, Debug)]
enum Slot {
    /// A request is out since `since_ms`.
    Waiting { tag: u64, request: ClientRequest, since_ms: u64 },
    /// To be asked `request` at `at_ms`.
    Again { at_ms: u64, request: ClientRequest },
    /// Its answer is final for this step.
    Settled,
}

/// One step's requests to the elders of one section.
#[derive(Clone, Debug)]
pub(crate) struct Asking {
    section: usize,
    slots: Vec<Slot>,
    next_tag: u64,
    outgoing: Vec<Outgoing>,
    timing: Timing,
    /// When the step gives up.
    deadline_ms: u64,
    /// The latest problem an elder reported, for the error if the step gives up.
    pub(crate) last_problem: String,
}

impl Asking {
    /// Asks every one of `elders` elders of `section` `request` at `at_ms`; tags start at
    /// `first_tag`.
    pub(crate) fn new(
        section: usize,
        elders: usize,
        request: &ClientRequest,
        first_tag: u64,
        timing: Timing,
        at_ms: u64,
    ) -> Asking {
        let slots = (0..elders).map(|_| Slot::Again { at_ms, request: request.clone() }).collect();
        Asking {
            section,
            slots,
            next_tag: first_tag,
            outgoing: Vec::new(),
            timing,
            deadline_ms: at_ms.saturating_add(timing.patience_ms),
            last_problem: "no answer yet".to_string(),
        }
    }

    /// The first tag free after this step's.
    pub(crate) fn next_tag(&self) -> u64 {
        self.next_tag
    }

    /// Whether the step ran out of patience at `now_ms`.
    pub(crate) fn gave_up(&self, now_ms: u64) -> bool {
        now_ms >= self.deadline_ms
    }

    /// The request `reply` (with `tag`, from `elder`) answers, if it is the one awaited; the
    /// elder is then settled until the driver asks it again, and a problem the reply shows is
    /// kept for the error if the step gives up.
    pub(crate) fn answered(
        &mut self,
        elder: ElderIndex,
        tag: u64,
        reply: &Result<ClientReply, String>,
    ) -> Option<ClientRequest> {
        let slot = self.slots.get_mut(elder.0 as usize)?;
        let request = match std::mem::replace(slot, Slot::Settled) {
            Slot::Waiting { tag: awaited, request, .. } if awaited == tag => request,
            other => {
                *slot = other;
                return None;
            }
        };
        if let Some(problem) = problem_of(elder, reply) {
            self.last_problem = problem;
        }
        Some(request)
    }

    /// Asks `elder` `request` again after the pause.
    pub(crate) fn again(&mut self, elder: ElderIndex, request: ClientRequest, now_ms: u64) {
        if let Some(slot) = self.slots.get_mut(elder.0 as usize) {
            *slot = Slot::Again { at_ms: now_ms.saturating_add(self.timing.retry_ms), request };
        }
    }

    /// Sends what is due at `now_ms`: requests whose pause is over, and requests again to
    /// elders that did not answer in time.
    pub(crate) fn handle_timeout(&mut self, now_ms: u64) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let request = match slot {
                Slot::Again { at_ms, request } if *at_ms <= now_ms => request.clone(),
                Slot::Waiting { since_ms, request, .. }
                    if since_ms.saturating_add(self.timing.answer_ms) <= now_ms =>
                {
                    request.clone()
                }
                _ => continue,
            };
            let tag = self.next_tag;
            self.next_tag += 1;
            let elder = ElderIndex(index as u32);
            self.outgoing.push(Outgoing {
                section: self.section,
                elder,
                tag,
                request: request.clone(),
            });
            *slot = Slot::Waiting { tag, request, since_ms: now_ms };
        }
    }

    /// When something is next due: a pause ending, an answer overdue, or the step's deadline.
    pub(crate) fn poll_timeout(&self) -> u64 {
        let due = self.slots.iter().filter_map(|slot| match slot {
            Slot::Again { at_ms, .. } => Some(*at_ms),
            Slot::Waiting { since_ms, .. } => Some(since_ms.saturating_add(self.timing.answer_ms)),
            Slot::Settled => None,
        });
        due.min().unwrap_or(u64::MAX).min(self.deadline_ms)
    }

    /// The requests to send now.
    pub(crate) fn take_outgoing(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outgoing)
    }
}

/// The problem an answer shows, for the error if the step gives up.
fn problem_of(elder: ElderIndex, reply: &Result<ClientReply, String>) -> Option<String> {
    match reply {
        Err(problem) => Some(format!("elder {elder}: {problem}")),
        Ok(ClientReply::Rejected(rejection)) => Some(format!("elder {elder}: {rejection}")),
        Ok(_) => None,
    }
}
