//! One question to a section, answered once `f + 1` of its elders give the same answer, so at
//! least one honest elder stands behind it (R8). Elders that disagree, fail or lag are asked
//! again after a pause until then, or until the patience runs out.

use std::collections::BTreeMap;

use super::asking::{Asking, Timing};
use super::{AgreedAnswer, Drive, DriverError, Ready, Steps, Unsaved};
use crate::messages::{ClientReply, ClientRequest};
use crate::network::{Network, Section};
use crate::types::ElderIndex;

/// A query driver.
#[derive(Clone, Debug)]
pub struct Query {
    section: Section,
    timing: Timing,
    asking: Asking,
    agreement: AgreedAnswer<ClientReply>,
    answers: BTreeMap<ElderIndex, ClientReply>,
    outcome: Option<Result<ClientReply, DriverError>>,
    done: bool,
}

impl Query {
    /// Asks `request` of every elder of section `section` from `at_ms`; tags start at
    /// `first_tag`.
    pub fn new(
        network: &Network,
        section: usize,
        request: ClientRequest,
        timing: Timing,
        first_tag: u64,
        at_ms: u64,
    ) -> Query {
        let info = network.sections[section].clone();
        let asking = Asking::new(section, info.elder_count(), &request, first_tag, timing, at_ms);
        Query {
            agreement: AgreedAnswer::new(&info),
            section: info,
            timing,
            asking,
            answers: BTreeMap::new(),
            outcome: None,
            done: false,
        }
    }

    /// Every elder's latest answer, to check which elders stood behind the agreed one.
    pub fn answers(&self) -> &BTreeMap<ElderIndex, ClientReply> {
        &self.answers
    }

    /// The first tag free after this query's.
    pub fn next_tag(&self) -> u64 {
        self.asking.next_tag()
    }

    fn finish(&mut self, outcome: Result<ClientReply, DriverError>) {
        self.outcome = Some(outcome);
        self.done = true;
    }
}

impl Steps for Query {
    fn handle_reply(
        &mut self,
        elder: ElderIndex,
        tag: u64,
        reply: Result<ClientReply, String>,
        now_ms: u64,
    ) {
        if self.done {
            return;
        }
        let Some(request) = self.asking.answered(elder, tag, &reply) else {
            return;
        };
        if let Ok(reply) = reply {
            self.answers.insert(elder, reply.clone());
            if let Some(agreed) = self.agreement.add(elder, reply) {
                return self.finish(Ok(agreed));
            }
        }
        // Not agreed yet: this elder may change its answer once it catches up.
        self.asking.again(elder, request, now_ms);
    }

    fn handle_timeout(&mut self, now_ms: u64) {
        if self.done {
            return;
        }
        if self.asking.gave_up(now_ms) {
            let problem = self.asking.last_problem.clone();
            return self.finish(Err(DriverError::unreachable(&self.section, self.timing, problem)));
        }
        self.asking.handle_timeout(now_ms);
    }

    fn poll_timeout(&self) -> Option<u64> {
        (!self.done).then(|| self.asking.poll_timeout())
    }

    fn poll(&mut self) -> Ready {
        let requests = self.asking.take_outgoing();
        Ready { wallet_changed: false, unsaved: Unsaved { requests } }
    }
}

impl Drive for Query {
    type Outcome = Result<ClientReply, DriverError>;

    fn take_outcome(&mut self) -> Option<Self::Outcome> {
        self.outcome.take()
    }
}
