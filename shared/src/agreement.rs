//! Asynchronous binary agreement among a section's elders (R12): every honest elder decides
//! the same bit, a bit some honest elder put in, with no timing assumption.
//!
//! The algorithm of Mostéfaoui, Moumen and Raynal (2014) with the `Conf` round and the `Term`
//! shortcut as HoneyBadgerBFT runs it. Each round: a binary-value broadcast (`Value`, echoed
//! at `f + 1`, accepted into `bin_values` at `n − f`), one `Aux` with the first accepted
//! value, once `n − f` `Aux` fall in `bin_values` one `Conf` with their values, once `n − f`
//! `Conf` fall in `bin_values` the round's common coin. One value that equals the coin is
//! decided; one value that does not becomes the next estimate; two values make the coin the
//! next estimate. A decided elder sends `Term`, which counts as its `Value`, `Aux` and `Conf`
//! in every later round, and `f + 1` `Term` for one value decide it.
//!
//! The coin is the section's threshold signature over the bundle and round, so no `f`
//! elders can know it before an honest elder asks for it ([`Step::coin`]); rounds `0, 1`
//! modulo 3 use the fixed coins `true, false` (as HoneyBadgerBFT does), so agreement on
//! `true` ends in round 0 and on `false` in round 1 with no coin at all when the honest
//! elders agree from the start. This module has no crypto: the ledger gets the coin and
//! passes it in ([`Agreement::coin`]). The coin needs `n − f` shares, so an elder that has
//! decided still gives its share for any later round a peer asks: the others may need it to
//! finish (once one honest elder decided, every coin leads to the same decision).
//!
//! Durability: an elder records every vote it sends before it leaves, and a restarted elder
//! replays them through [`Agreement::restore`]; it then never sends a vote that contradicts
//! one it sent. What it had received is asked for again: every elder sends all its votes
//! again until the outcome is known.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::limits::AGREEMENT_ROUNDS_MAX;
use crate::types::ElderIndex;

/// A round of the agreement, from 0.
pub type Round = u32;

/// A set of binary values, as two bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug, Serialize, Deserialize)]
pub struct Values(u8);

impl Values {
    /// Neither value.
    pub const NONE: Values = Values(0);

    /// The set holding `value` only.
    pub fn single(value: bool) -> Values {
        Values(1 << u8::from(value))
    }

    /// Whether `value` is in the set.
    pub fn contains(self, value: bool) -> bool {
        self.0 & Values::single(value).0 != 0
    }

    /// The set with `value` added.
    pub fn with(self, value: bool) -> Values {
        Values(self.0 | Values::single(value).0)
    }

    /// Whether every value of `self` is in `other`.
    pub fn is_subset(self, other: Values) -> bool {
        self.0 & !other.0 == 0
    }

    /// The one value of a set of one.
    pub fn only(self) -> Option<bool> {
        match self.0 {
            0b01 => Some(false),
            0b10 => Some(true),
            _ => None,
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the two bits are all there is (bytes from the wire may hold more).
    pub fn is_well_formed(self) -> bool {
        self.0 <= 0b11
    }
}

/// One message of the agreement, from one elder to every other elder of its section.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Vote {
    /// Binary-value broadcast: the sender's estimate, or a value `f + 1` elders sent.
    Value {
        /// The round.
        round: Round,
        /// The value.
        value: bool,
    },
    /// The first value the sender accepted into `bin_values` this round.
    Aux {
        /// The round.
        round: Round,
        /// The value.
        value: bool,
    },
    /// The values of the `n − f` `Aux` the sender accepted this round.
    Conf {
        /// The round.
        round: Round,
        /// The values.
        values: Values,
    },
    /// The sender decided this value; it counts as its vote in every later round.
    Term {
        /// The decided value.
        value: bool,
    },
}

impl Vote {
    /// Whether the vote is within bounds: a round below `AGREEMENT_ROUNDS_MAX`, a value set of
    /// one or two values.
    pub fn is_well_formed(&self) -> bool {
        match *self {
            Vote::Value { round, .. } | Vote::Aux { round, .. } => round < AGREEMENT_ROUNDS_MAX,
            Vote::Conf { round, values } => {
                round < AGREEMENT_ROUNDS_MAX && values.is_well_formed() && !values.is_empty()
            }
            Vote::Term { .. } => true,
        }
    }
}

/// What handling an input or a vote asks of the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Votes to record durably and then send to every other elder of the section.
    pub votes: Vec<Vote>,
    /// The common coin of this round is wanted: release this elder's coin share for it and
    /// pass the coin in once it is known.
    pub coin: Option<Round>,
    /// The agreement decided this value (reported once).
    pub decided: Option<bool>,
}

/// The fixed coin of a round, or `None` for a round that asks the threshold coin.
pub fn fixed_coin(round: Round) -> Option<bool> {
    match round % 3 {
        0 => Some(true),
        1 => Some(false),
        _ => None,
    }
}

/// One round's tallies.
#[derive(Clone, Debug, Default)]
struct RoundState {
    values_from: [BTreeSet<ElderIndex>; 2],
    sent_values: Values,
    bin_values: Values,
    aux: BTreeMap<ElderIndex, bool>,
    sent_aux: bool,
    conf: BTreeMap<ElderIndex, Values>,
    /// The values of this elder's `Conf`, once sent.
    conf_values: Option<Values>,
    coin_asked: bool,
    coin: Option<bool>,
}

/// One elder's part in one binary agreement.
#[derive(Clone, Debug)]
pub struct Agreement {
    elders: usize,
    faults: usize,
    me: ElderIndex,
    round: Round,
    /// This elder's estimate for the current round; `None` until it has an input.
    estimate: Option<bool>,
    decided: Option<bool>,
    /// The current round and the next one (votes for later rounds are dropped and come
    /// again: every elder repeats its votes until the outcome is known).
    rounds: BTreeMap<Round, RoundState>,
    terms: BTreeMap<ElderIndex, bool>,
    /// Every vote this elder sent, in order, to send again.
    sent: Vec<Vote>,
}

impl Agreement {
    /// Elder `me`'s part in an agreement among `elders` elders, tolerating `faults` of them.
    pub fn new(elders: usize, faults: usize, me: ElderIndex) -> Agreement {
        Agreement {
            elders,
            faults,
            me,
            round: 0,
            estimate: None,
            decided: None,
            rounds: BTreeMap::new(),
            terms: BTreeMap::new(),
            sent: Vec::new(),
        }
    }

    /// The decided value, once decided.
    pub fn decided(&self) -> Option<bool> {
        self.decided
    }

    /// Whether this elder has put in its own value (or, restarted, had done so).
    pub fn has_input(&self) -> bool {
        self.estimate.is_some() || self.decided.is_some()
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.round
    }

    /// Every vote this elder sent, to send again while the outcome is not known.
    pub fn sent(&self) -> &[Vote] {
        &self.sent
    }

    /// Puts in this elder's value; only the first input counts.
    pub fn input(&mut self, value: bool) -> Step {
        let mut step = Step::default();
        if self.has_input() || self.round != 0 {
            return step;
        }
        self.estimate = Some(value);
        self.progress(&mut step);
        step
    }

    /// Replays a vote this elder sent before a restart, in the order sent. The first
    /// `Value` of each round was the estimate of that round (an elder sends its estimate
    /// before it handles anything of a new round).
    pub fn restore(&mut self, vote: Vote) {
        if !vote.is_well_formed() {
            return;
        }
        match vote {
            Vote::Value { round, value }
                if round > self.round || (round == self.round && self.estimate.is_none()) =>
            {
                self.enter_round(round);
                self.estimate = Some(value);
            }
            Vote::Term { value } => self.decided = Some(value),
            _ => {}
        }
        self.sent.push(vote);
        let mut ignored = Step::default();
        self.count(self.me, vote, &mut ignored);
        if let Some(state) = self.rounds.get_mut(&vote_round(&vote)) {
            match vote {
                Vote::Value { value, .. } => state.sent_values = state.sent_values.with(value),
                Vote::Aux { .. } => state.sent_aux = true,
                Vote::Conf { values, .. } => state.conf_values = Some(values),
                Vote::Term { .. } => {}
            }
        }
    }

    /// Gives the common coin of `round`, once the ledger has combined it.
    pub fn coin(&mut self, round: Round, value: bool) -> Step {
        let mut step = Step::default();
        if let Some(state) = self.rounds.get_mut(&round) {
            if state.coin.is_none() && state.coin_asked {
                state.coin = Some(value);
                self.progress(&mut step);
            }
        }
        step
    }

    /// Handles one vote of elder `from` (which may be this elder's own, sent again).
    pub fn handle(&mut self, from: ElderIndex, vote: Vote) -> Step {
        let mut step = Step::default();
        if from.0 as usize >= self.elders || !vote.is_well_formed() {
            return step;
        }
        self.count(from, vote, &mut step);
        self.progress(&mut step);
        step
    }

    /// Adds a vote to the tallies; a `Term` decides at `f + 1`.
    fn count(&mut self, from: ElderIndex, vote: Vote, step: &mut Step) {
        if let Vote::Term { value } = vote {
            self.terms.entry(from).or_insert(value);
            let agreeing = self.terms.values().filter(|term| **term == value).count();
            if agreeing > self.faults {
                self.decide(value, step);
            }
            self.rounds.entry(self.round).or_default();
            let rounds: Vec<Round> = self.rounds.keys().copied().collect();
            for round in rounds {
                self.count_term(from, round, value);
            }
            return;
        }
        let round = vote_round(&vote);
        if round < self.round || round > self.round.saturating_add(1) {
            return;
        }
        let state = self.rounds.entry(round).or_default();
        match vote {
            Vote::Value { value, .. } => {
                state.values_from[usize::from(value)].insert(from);
            }
            Vote::Aux { value, .. } => {
                state.aux.entry(from).or_insert(value);
            }
            Vote::Conf { values, .. } => {
                state.conf.entry(from).or_insert(values);
            }
            Vote::Term { .. } => unreachable!("handled above"),
        }
    }

    /// Counts a `Term` as `Value`, `Aux` and `Conf` of `from` in `round`.
    fn count_term(&mut self, from: ElderIndex, round: Round, value: bool) {
        let state = self.rounds.entry(round).or_default();
        state.values_from[usize::from(value)].insert(from);
        state.aux.entry(from).or_insert(value);
        state.conf.entry(from).or_insert(Values::single(value));
    }

    /// Runs the current round as far as the tallies allow, into later rounds if it ends.
    /// Without an input an elder still echoes, accepts and votes on what others sent, as the
    /// binary-value broadcast lets any elder do.
    fn progress(&mut self, step: &mut Step) {
        while self.decided.is_none() {
            if let Some(estimate) = self.estimate {
                self.send_value(estimate, step);
            }
            self.echo_and_accept(step);
            self.send_aux(step);
            self.send_conf(step);
            let Some(next) = self.finish_round(step) else {
                return;
            };
            if self.round + 1 >= AGREEMENT_ROUNDS_MAX {
                return;
            }
            self.enter_round(self.round + 1);
            self.estimate = Some(next);
        }
    }

    fn state(&mut self) -> &mut RoundState {
        self.rounds.entry(self.round).or_default()
    }

    /// Echoes every value `f + 1` elders sent; accepts every value `n − f` elders sent.
    fn echo_and_accept(&mut self, step: &mut Step) {
        let (faults, quorum) = (self.faults, self.elders - self.faults);
        for value in [false, true] {
            let count = self.state().values_from[usize::from(value)].len();
            if count > faults {
                self.send_value(value, step);
            }
            let count = self.state().values_from[usize::from(value)].len();
            if count >= quorum {
                let state = self.state();
                state.bin_values = state.bin_values.with(value);
            }
        }
    }

    fn send_value(&mut self, value: bool, step: &mut Step) {
        let round = self.round;
        if !self.state().sent_values.contains(value) {
            self.state().sent_values = self.state().sent_values.with(value);
            self.send(Vote::Value { round, value }, step);
        }
    }

    /// Once a value is accepted, sends one `Aux` with it (the estimate if both are).
    fn send_aux(&mut self, step: &mut Step) {
        let (round, estimate) = (self.round, self.estimate.unwrap_or(true));
        let state = self.state();
        if state.sent_aux || state.bin_values.is_empty() {
            return;
        }
        let value = state.bin_values.only().unwrap_or(estimate);
        state.sent_aux = true;
        self.send(Vote::Aux { round, value }, step);
    }

    /// Once `n − f` `Aux` hold accepted values, sends one `Conf` with those values.
    fn send_conf(&mut self, step: &mut Step) {
        let (round, quorum) = (self.round, self.elders - self.faults);
        let state = self.state();
        if state.conf_values.is_some() {
            return;
        }
        let accepted: Vec<bool> =
            state.aux.values().copied().filter(|value| state.bin_values.contains(*value)).collect();
        if accepted.len() < quorum {
            return;
        }
        let values = accepted.iter().fold(Values::NONE, |values, value| values.with(*value));
        state.conf_values = Some(values);
        self.send(Vote::Conf { round, values }, step);
    }

    /// Once `n − f` `Conf` hold accepted values and the coin is known, decides or returns
    /// the next round's estimate.
    fn finish_round(&mut self, step: &mut Step) -> Option<bool> {
        let (round, quorum) = (self.round, self.elders - self.faults);
        let state = self.state();
        let values = state.conf_values?;
        let bin_values = state.bin_values;
        let confirmed = state.conf.values().filter(|conf| conf.is_subset(bin_values)).count();
        if confirmed < quorum {
            return None;
        }
        let coin = match (fixed_coin(round), state.coin) {
            (Some(coin), _) | (None, Some(coin)) => coin,
            (None, None) => {
                if !state.coin_asked {
                    state.coin_asked = true;
                    step.coin = Some(round);
                }
                return None;
            }
        };
        match values.only() {
            Some(value) if value == coin => {
                self.decide(value, step);
                None
            }
            Some(value) => Some(value),
            None => Some(coin),
        }
    }

    fn enter_round(&mut self, round: Round) {
        if round >= AGREEMENT_ROUNDS_MAX {
            return;
        }
        self.round = round;
        self.rounds.retain(|kept, _| *kept >= round);
        let terms: Vec<(ElderIndex, bool)> =
            self.terms.iter().map(|(elder, value)| (*elder, *value)).collect();
        for (elder, value) in terms {
            self.count_term(elder, round, value);
        }
    }

    fn decide(&mut self, value: bool, step: &mut Step) {
        if self.decided.is_some() {
            return;
        }
        self.decided = Some(value);
        step.decided = Some(value);
        self.send(Vote::Term { value }, step);
    }

    /// Sends a vote: to the others through the step, and to this elder's own tallies.
    fn send(&mut self, vote: Vote, step: &mut Step) {
        self.sent.push(vote);
        step.votes.push(vote);
        let me = self.me;
        self.count(me, vote, step);
    }
}

/// The round a vote belongs to (`Term` belongs to every round; this gives 0).
fn vote_round(vote: &Vote) -> Round {
    match *vote {
        Vote::Value { round, .. } | Vote::Aux { round, .. } | Vote::Conf { round, .. } => round,
        Vote::Term { .. } => 0,
    }
}

#[cfg(test)]
mod tests;
