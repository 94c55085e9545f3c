//! The agreement among simulated elders: votes delivered in a seeded random order, a coin that
//! forms only once `n − f` elders asked for it, Byzantine elders voting at random, restarts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// A section of elders running one agreement, with a seeded scheduler.
struct Section {
    rng: ChaCha8Rng,
    elders: Vec<Agreement>,
    byzantine: BTreeSet<usize>,
    queue: VecDeque<(usize, usize, Vote)>,
    decided: Vec<Option<bool>>,
    coin_asked: BTreeMap<Round, BTreeSet<usize>>,
    coins: BTreeMap<Round, bool>,
}

impl Section {
    fn new(seed: u64, elders: usize, byzantine: usize) -> Section {
        let faults = (elders - 1) / 3;
        let agreements =
            (0..elders).map(|i| Agreement::new(elders, faults, ElderIndex(i as u32))).collect();
        Section {
            rng: ChaCha8Rng::seed_from_u64(seed),
            elders: agreements,
            byzantine: (elders - byzantine..elders).collect(),
            queue: VecDeque::new(),
            decided: vec![None; elders],
            coin_asked: BTreeMap::new(),
            coins: BTreeMap::new(),
        }
    }

    fn faults(&self) -> usize {
        (self.elders.len() - 1) / 3
    }

    fn honest(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.elders.len()).filter(|i| !self.byzantine.contains(i))
    }

    fn take(&mut self, elder: usize, step: Step) {
        for vote in step.votes {
            for to in 0..self.elders.len() {
                if to != elder {
                    self.queue.push_back((elder, to, vote));
                }
            }
        }
        if let Some(value) = step.decided {
            assert_eq!(self.decided[elder], None, "elder {elder} decided twice");
            self.decided[elder] = Some(value);
            self.release_coins();
        }
        if let Some(round) = step.coin {
            self.coin_asked.entry(round).or_default().insert(elder);
            self.release_coins();
        }
    }

    /// A coin forms once `n − f` elders gave their shares: those that asked for it, and
    /// those that decided already, which give theirs for any later round asked (the ledger
    /// does so); then every elder that asked gets it.
    fn release_coins(&mut self) {
        let quorum = self.elders.len() - self.faults();
        let decided: BTreeSet<usize> =
            self.honest().filter(|i| self.decided[*i].is_some()).collect();
        let ready: Vec<(Round, Vec<usize>)> = self
            .coin_asked
            .iter()
            .filter(|(_, asked)| asked.union(&decided).count() >= quorum)
            .map(|(round, asked)| (*round, asked.iter().copied().collect()))
            .collect();
        for (round, asked) in ready {
            let coin = *self.coins.entry(round).or_insert_with(|| self.rng.gen());
            for elder in asked {
                let step = self.elders[elder].coin(round, coin);
                self.take(elder, step);
            }
        }
    }

    fn input(&mut self, elder: usize, value: bool) {
        let step = self.elders[elder].input(value);
        self.take(elder, step);
    }

    /// A Byzantine elder's vote: any kind, any round near the start, any value.
    fn random_vote(&mut self) -> Vote {
        let round = self.rng.gen_range(0..4);
        let value = self.rng.gen();
        match self.rng.gen_range(0..4) {
            0 => Vote::Value { round, value },
            1 => Vote::Aux { round, value },
            2 => Vote::Conf { round, values: Values(self.rng.gen_range(1..4)) },
            _ => Vote::Term { value },
        }
    }

    /// Delivers votes in random order until every honest elder decided; when nothing is
    /// left to deliver, every elder sends all its votes again (as the ledger does).
    fn run(&mut self) {
        for _ in 0..200_000 {
            if self.honest().all(|i| self.decided[i].is_some()) {
                return;
            }
            if self.queue.is_empty() {
                for elder in self.honest().collect::<Vec<_>>() {
                    let step =
                        Step { votes: self.elders[elder].sent().to_vec(), ..Step::default() };
                    self.take(elder, step);
                }
            }
            let pick = self.rng.gen_range(0..self.queue.len());
            let (from, to, vote) = self.queue.remove(pick).expect("picked inside");
            if self.byzantine.contains(&to) {
                continue;
            }
            let vote = if self.byzantine.contains(&from) { self.random_vote() } else { vote };
            let step = self.elders[to].handle(ElderIndex(from as u32), vote);
            self.take(to, step);
            if self.rng.gen_ratio(1, 8) {
                for liar in self.byzantine.clone() {
                    let vote = self.random_vote();
                    self.queue.push_back((liar, self.rng.gen_range(0..self.elders.len()), vote));
                }
            }
        }
        panic!("no decision after 200 000 deliveries");
    }

    fn decisions(&self) -> BTreeSet<bool> {
        self.honest().map(|i| self.decided[i].expect("every honest elder decided")).collect()
    }
}

#[test]
fn unanimous_true_is_decided_in_round_zero_without_a_coin() {
    let mut section = Section::new(1, 4, 0);
    (0..4).for_each(|elder| section.input(elder, true));
    section.run();
    assert_eq!(section.decisions(), BTreeSet::from([true]));
    assert!(section.coin_asked.is_empty(), "fixed coins only");
}

#[test]
fn unanimous_false_is_decided_without_the_threshold_coin() {
    let mut section = Section::new(2, 4, 0);
    (0..4).for_each(|elder| section.input(elder, false));
    section.run();
    assert_eq!(section.decisions(), BTreeSet::from([false]));
    assert!(section.coin_asked.is_empty(), "round 1 has a fixed coin");
}

#[test]
fn honest_elders_agree_on_one_input_with_byzantine_voters() {
    for (elders, byzantine) in [(4, 1), (7, 2), (10, 3)] {
        for seed in 0..60 {
            let mut section = Section::new(seed, elders, byzantine);
            let inputs: Vec<bool> = (0..elders).map(|_| section.rng.gen()).collect();
            for elder in section.honest().collect::<Vec<_>>() {
                section.input(elder, inputs[elder]);
            }
            section.run();
            let decisions = section.decisions();
            assert_eq!(decisions.len(), 1, "seed {seed}, n = {elders}: {decisions:?}");
            let honest_inputs: BTreeSet<bool> = section.honest().map(|i| inputs[i]).collect();
            assert!(
                honest_inputs.is_superset(&decisions),
                "seed {seed}: no honest elder put it in"
            );
        }
    }
}

#[test]
fn elders_without_input_follow_the_others() {
    let mut section = Section::new(3, 7, 0);
    (0..5).for_each(|elder| section.input(elder, false));
    section.run();
    assert_eq!(section.decisions(), BTreeSet::from([false]));
}

#[test]
fn f_plus_one_terms_decide_for_an_elder_that_saw_nothing_else() {
    let mut agreement = Agreement::new(4, 1, ElderIndex(0));
    let step = agreement.handle(ElderIndex(1), Vote::Term { value: true });
    assert_eq!(step.decided, None);
    let step = agreement.handle(ElderIndex(2), Vote::Term { value: true });
    assert_eq!(step.decided, Some(true));
    assert_eq!(step.votes, vec![Vote::Term { value: true }]);
    assert_eq!(agreement.input(false), Step::default(), "an input after deciding changes nothing");
}

#[test]
fn one_liar_alone_cannot_end_the_agreement() {
    let mut agreement = Agreement::new(4, 1, ElderIndex(0));
    for _ in 0..3 {
        let step = agreement.handle(ElderIndex(3), Vote::Term { value: false });
        assert_eq!(step.decided, None);
    }
    assert_eq!(agreement.handle(ElderIndex(4), Vote::Term { value: false }), Step::default());
}

#[test]
fn malformed_votes_are_dropped() {
    let mut agreement = Agreement::new(4, 1, ElderIndex(0));
    let late = Vote::Value { round: AGREEMENT_ROUNDS_MAX, value: true };
    assert_eq!(agreement.handle(ElderIndex(1), late), Step::default());
    let empty = Vote::Conf { round: 0, values: Values::NONE };
    assert_eq!(agreement.handle(ElderIndex(1), empty), Step::default());
    let garbage = Vote::Conf { round: 0, values: Values(7) };
    assert_eq!(agreement.handle(ElderIndex(1), garbage), Step::default());
}

/// Two votes of one kind in one round with different content from one elder: what an honest
/// elder must never send, even across a restart.
fn contradicting(votes: &[Vote]) -> Option<(Vote, Vote)> {
    for (i, first) in votes.iter().enumerate() {
        for second in &votes[i + 1..] {
            let clash = match (first, second) {
                (Vote::Aux { round: a, value: x }, Vote::Aux { round: b, value: y }) => {
                    a == b && x != y
                }
                (Vote::Conf { round: a, values: x }, Vote::Conf { round: b, values: y }) => {
                    a == b && x != y
                }
                (Vote::Term { value: x }, Vote::Term { value: y }) => x != y,
                _ => false,
            };
            if clash {
                return Some((*first, *second));
            }
        }
    }
    None
}

#[test]
fn a_restarted_elder_never_contradicts_what_it_sent() {
    for seed in 0..80 {
        let mut section = Section::new(seed, 4, 0);
        for elder in 0..4 {
            let value = section.rng.gen();
            section.input(elder, value);
        }
        // Run part of the way, then restart elder 0 from its sent votes alone: what it had
        // received is lost, and the others send their votes again.
        let deliveries = section.rng.gen_range(0..60);
        for _ in 0..deliveries {
            if section.queue.is_empty() {
                break;
            }
            let pick = section.rng.gen_range(0..section.queue.len());
            let (from, to, vote) = section.queue.remove(pick).expect("picked inside");
            let step = section.elders[to].handle(ElderIndex(from as u32), vote);
            section.take(to, step);
        }
        let sent_before = section.elders[0].sent().to_vec();
        let mut restarted = Agreement::new(4, 1, ElderIndex(0));
        sent_before.iter().for_each(|vote| restarted.restore(*vote));
        assert_eq!(restarted.decided(), section.decided[0], "seed {seed}");
        section.elders[0] = restarted;
        section.queue.retain(|(_, to, _)| *to != 0);
        section.run();
        assert_eq!(section.decisions().len(), 1, "seed {seed}");
        let sent = section.elders[0].sent();
        assert_eq!(&sent[..sent_before.len()], &sent_before[..], "seed {seed}");
        assert_eq!(contradicting(sent), None, "seed {seed}");
    }
}
