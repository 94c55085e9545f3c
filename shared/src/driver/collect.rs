//! Judging a section's answers: verify every share before counting it (R8), combine `n − f`
//! into a debit proof, recognise a conflict, and accept an answer only once `f + 1` elders
//! give the same one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::crypto;
use crate::messages::ClientReply;
use crate::network::{Network, Section};
use crate::rejection::Rejection;
use crate::types::{DebitProof, ElderIndex, SignedTransfer, TransferId};

/// Where collecting shares for one transfer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not enough answers yet.
    Waiting,
    /// `n − f` valid shares combined into a proof.
    Certified(DebitProof),
    /// `n − f` shares cannot come because elders already signed another transfer of this
    /// account at this slot; finishing that one (sending it instead) is the way forward.
    Conflict(SignedTransfer),
    /// So many elders refused for good or answered falsely that `n − f` shares cannot come.
    /// Refusals that may change once an elder catches up (insufficient funds, seq ahead, …)
    /// never count here: the transfer may still be certified, so it must not be given up.
    Refused(Vec<(ElderIndex, Rejection)>),
}

/// Collects elders' answers to one validate request.
#[derive(Clone, Debug)]
pub struct ShareCollector {
    network: Arc<Network>,
    section: usize,
    signed: SignedTransfer,
    id: TransferId,
    message: crypto::HashedMessage,
    /// Shares that decode to points of the group; checked together when combined.
    shares: BTreeMap<ElderIndex, crypto::SignaturePoint>,
    refused: BTreeMap<ElderIndex, Rejection>,
    invalid: BTreeSet<ElderIndex>,
    rival: Option<SignedTransfer>,
}

impl ShareCollector {
    /// Starts collecting shares for `signed` from its sender's section.
    pub fn new(network: Arc<Network>, signed: SignedTransfer) -> ShareCollector {
        let section = network.section_index_of(&signed.transfer.from);
        let id = crypto::transfer_id(&signed);
        let message = crypto::debit_message(&network.genesis, &id);
        ShareCollector {
            network,
            section,
            signed,
            id,
            message,
            shares: BTreeMap::new(),
            refused: BTreeMap::new(),
            invalid: BTreeSet::new(),
            rival: None,
        }
    }

    /// The transfer being certified.
    pub fn signed(&self) -> &SignedTransfer {
        &self.signed
    }

    /// Its id.
    pub fn transfer_id(&self) -> TransferId {
        self.id
    }

    /// Elders whose share is counted: a well-formed share, checked when `n − f` combine.
    pub fn shared_by(&self) -> impl Iterator<Item = ElderIndex> + '_ {
        self.shares.keys().copied()
    }

    /// Elders that gave a share that failed verification or answered nonsense.
    pub fn invalid(&self) -> impl Iterator<Item = ElderIndex> + '_ {
        self.invalid.iter().copied()
    }

    fn section(&self) -> &Section {
        &self.network.sections[self.section]
    }

    /// Counts one elder's answer. Shares are checked together: once `n − f` have come they
    /// are combined and the result is verified, one pairing check in all. Only if that fails
    /// is each share verified, and the invalid ones are dropped and their elders counted as
    /// answering nonsense, so a Byzantine elder costs the client work only when it lies.
    pub fn add(&mut self, elder: ElderIndex, reply: ClientReply) -> Progress {
        if self.shares.contains_key(&elder) || elder.0 as usize >= self.section().elder_count() {
            return self.progress();
        }
        let well_formed = match &reply {
            ClientReply::Share { transfer, share } if *transfer == self.id => {
                crypto::SignaturePoint::decode(share)
            }
            _ => None,
        };
        match (reply, well_formed) {
            // Not an answer yet: this elder lags and may sign once it catches up.
            (ClientReply::Rejected(rejection), None) if rejection.is_retryable() => {
                self.refused.remove(&elder);
                self.invalid.remove(&elder);
            }
            (_, Some(share)) => {
                self.refused.remove(&elder);
                self.invalid.remove(&elder);
                self.shares.insert(elder, share);
                if self.shares.len() >= self.section().shares_needed() {
                    if let Some(proof) = self.certify() {
                        return Progress::Certified(proof);
                    }
                }
            }
            // An elder counts once, by its latest answer: a Byzantine elder that refuses and
            // then answers nonsense must not count as two of the f answers that may be lost.
            (ClientReply::Rejected(rejection), None) => {
                // A conflict is a refusal like any other: one elder's word must not make the
                // client drop a transfer that n − f honest elders may still certify (R8).
                if let Rejection::Conflict { rival, .. } = &rejection {
                    if self.is_own_rival(rival) {
                        self.rival = Some((**rival).clone());
                    }
                }
                self.invalid.remove(&elder);
                self.refused.insert(elder, rejection);
            }
            _ => {
                self.refused.remove(&elder);
                self.invalid.insert(elder);
            }
        }
        self.progress()
    }

    /// How many elders refused the transfer as past its window.
    pub fn expired_count(&self) -> usize {
        self.refused.values().filter(|r| matches!(r, Rejection::Expired { .. })).count()
    }

    /// Whether no proof of the transfer can ever form: refusals for good from more than `f`
    /// elders, and, if any refused it as expired, `n − f` of them so (then more than `f` honest
    /// elders never signed it, and their clocks only move on).
    pub fn is_certainly_refused(&self) -> bool {
        let expired = self.expired_count();
        matches!(self.progress(), Progress::Refused(_))
            && (expired == 0 || expired >= self.section().shares_needed())
    }

    /// A conflict answer counts only if it shows another transfer of ours at our slot,
    /// signed with our key: no elder can invent one.
    fn is_own_rival(&self, rival: &SignedTransfer) -> bool {
        rival.transfer.slot() == self.signed.transfer.slot()
            && *rival != self.signed
            && self.network.check_authority(rival).is_ok()
    }

    fn progress(&self) -> Progress {
        let section = self.section();
        let lost = self.refused.len() + self.invalid.len();
        if section.elder_count() - lost < section.shares_needed() {
            if let Some(rival) = &self.rival {
                return Progress::Conflict(rival.clone());
            }
            // Honest elders' clocks differ, so "expired" from some does not say the others
            // did not sign in time: wait for every answer unless n − f say so.
            let expired = self.expired_count();
            let answered = lost + self.shares.len();
            if expired > 0 && expired < section.shares_needed() && answered < section.elder_count()
            {
                return Progress::Waiting;
            }
            let refusals = self.refused.iter().map(|(elder, r)| (*elder, r.clone())).collect();
            return Progress::Refused(refusals);
        }
        Progress::Waiting
    }

    /// Combines the shares into a proof and verifies it. If it fails, some share is invalid:
    /// each is verified, and the invalid ones are dropped to wait for others.
    fn certify(&mut self) -> Option<DebitProof> {
        let section = &self.network.sections[self.section];
        let signature =
            section.public_keys.combine(&self.shares).expect("n − f distinct shares combine");
        let proof =
            DebitProof { signed: self.signed.clone(), section_key: section.key_id, signature };
        if section.proof_is_valid(&self.message, &proof) {
            return Some(proof);
        }
        let invalid: Vec<ElderIndex> = self
            .shares
            .iter()
            .filter(|(elder, share)| {
                !share.verifies(&section.public_keys.key_shares[elder.0 as usize], &self.message)
            })
            .map(|(elder, _)| *elder)
            .collect();
        for elder in invalid {
            self.shares.remove(&elder);
            self.invalid.insert(elder);
        }
        None
    }
}

/// Accepts an answer once `f + 1` elders of a section give the same one, so at least one
/// honest elder stands behind it (R8).
#[derive(Clone, Debug)]
pub struct AgreedAnswer<T> {
    needed: usize,
    elders: usize,
    answers: BTreeMap<ElderIndex, T>,
}

impl<T: PartialEq + Clone> AgreedAnswer<T> {
    /// Waits for `f + 1` equal answers from `section`.
    pub fn new(section: &Section) -> AgreedAnswer<T> {
        AgreedAnswer {
            needed: section.faults_max() + 1,
            elders: section.elder_count(),
            answers: BTreeMap::new(),
        }
    }

    /// Counts an elder's latest answer; returns the answer once `f + 1` elders agree on it.
    pub fn add(&mut self, elder: ElderIndex, answer: T) -> Option<T> {
        if elder.0 as usize >= self.elders {
            return None;
        }
        self.answers.insert(elder, answer.clone());
        let agreeing = self.answers.values().filter(|other| **other == answer).count();
        (agreeing >= self.needed).then_some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::account_id;
    use crate::ledger::tests::fixtures::{validate, Fixture, AWAY, HOME};
    use crate::ledger::Ledger;
    use crate::types::{Amount, BlsSignature, Seq, Transfer};

    /// A collector for a fresh faucet transfer, with the home section's elders at genesis.
    fn collecting(fx: &Fixture) -> (ShareCollector, Vec<Ledger>) {
        let signed = fx.signed(&fx.faucet, fx.account_in(HOME), 5, 1);
        (ShareCollector::new(fx.network.clone(), signed), fx.elders(HOME))
    }

    /// Elder `index`'s genuine answer to validating the collector's transfer.
    fn answer(collector: &ShareCollector, elders: &mut [Ledger], index: u32) -> ClientReply {
        elders[index as usize].handle_client(validate(collector.signed().clone()), 0).0
    }

    /// A refusal that stays: the seq is used.
    fn rejection() -> Rejection {
        Rejection::StaleSeq { seq: Seq(1), next_seq: Seq(2) }
    }

    fn refusal() -> ClientReply {
        ClientReply::Rejected(rejection())
    }

    #[test]
    fn lagging_elders_refusing_for_funds_do_not_make_the_transfer_refused_and_sign_once_caught_up()
    {
        // Bob was just paid 100: elders 1 and 2 applied the credit, elders 0 and 3 not yet.
        let fx = Fixture::new(71);
        let mut elders = fx.elders(HOME);
        let bob = fx.key_in(HOME);
        let paid = fx.certify(fx.signed(&fx.faucet, account_id(&bob), 100, 1));
        for index in [1, 2] {
            crate::ledger::tests::fixtures::register(&mut elders[index], &paid, 0);
        }
        let signed = fx.signed(&bob, fx.account_in(AWAY), 100, 1);
        let mut collector = ShareCollector::new(fx.network.clone(), signed.clone());
        for index in [1u32, 2, 0, 3] {
            let (reply, _) = elders[index as usize].handle_client(validate(signed.clone()), 0);
            assert_eq!(collector.add(ElderIndex(index), reply), Progress::Waiting, "elder {index}");
        }
        // Elders 0 and 3 catch up; asked again, they sign the very same transfer.
        crate::ledger::tests::fixtures::register(&mut elders[0], &paid, 0);
        let (reply, _) = elders[0].handle_client(validate(signed.clone()), 0);
        let Progress::Certified(proof) = collector.add(ElderIndex(0), reply) else {
            panic!("three shares of four certify");
        };
        assert_eq!(proof.signed, signed);
    }

    #[test]
    fn expired_answers_are_final_only_once_n_minus_f_say_so_or_every_elder_answered() {
        // Elder clocks differ: elders 2 and 3 say it expired, elders 0 and 1 signed in time.
        let fx = Fixture::new(73);
        let mut elders = fx.elders(HOME);
        let to = fx.account_in(HOME);
        let mut unsigned = crate::ledger::tests::fixtures::transfer(&fx.faucet, to, 5, 1);
        unsigned.window.valid_before = Some(1_000_000);
        let signed = fx.sign(&fx.faucet, unsigned);
        let mut collector = ShareCollector::new(fx.network.clone(), signed.clone());
        let late = 1_000_000 + crate::limits::CLOCK_SKEW_MS_MAX + 1;
        let mut ask = |index: u32, now_ms| {
            elders[index as usize].handle_client(validate(signed.clone()), now_ms).0
        };
        for index in [2u32, 3] {
            let reply = ask(index, late);
            assert!(matches!(reply, ClientReply::Rejected(Rejection::Expired { .. })), "{reply:?}");
            assert_eq!(collector.add(ElderIndex(index), reply), Progress::Waiting, "elder {index}");
        }
        assert_eq!(collector.add(ElderIndex(0), ask(0, 1_000_000)), Progress::Waiting);
        // Every elder answered: two signed, two refused; the slot is split, nothing certain.
        assert!(matches!(collector.add(ElderIndex(1), ask(1, 1_000_000)), Progress::Refused(_)));
        assert!(!collector.is_certainly_refused(), "elders 0 and 1 signed it");

        // Three of four say it expired and none signed: no proof can ever form.
        let mut collector = ShareCollector::new(fx.network.clone(), signed.clone());
        let mut fresh = fx.elders(HOME);
        for index in [1u32, 2, 3] {
            let (reply, _) = fresh[index as usize].handle_client(validate(signed.clone()), late);
            collector.add(ElderIndex(index), reply);
        }
        assert!(collector.is_certainly_refused());
    }

    #[test]
    fn certified_only_after_n_minus_f_valid_shares_and_the_proof_verifies() {
        let fx = Fixture::new(60);
        let (mut collector, mut elders) = collecting(&fx);
        for index in [0, 2] {
            let reply = answer(&collector, &mut elders, index);
            assert_eq!(collector.add(ElderIndex(index), reply), Progress::Waiting);
        }
        let reply = answer(&collector, &mut elders, 3);
        let Progress::Certified(proof) = collector.add(ElderIndex(3), reply) else {
            panic!("three valid shares of four certify");
        };
        assert_eq!(proof.signed, *collector.signed());
        let section = &fx.network.sections[HOME];
        let message = crypto::debit_message(&fx.genesis(), &collector.transfer_id());
        assert!(section.proof_is_valid(&message, &proof));
        let shared: Vec<ElderIndex> = collector.shared_by().collect();
        assert_eq!(shared, vec![ElderIndex(0), ElderIndex(2), ElderIndex(3)]);
    }

    #[test]
    fn share_signed_by_a_stranger_key_is_found_when_the_combination_fails_and_never_certifies() {
        let fx = Fixture::new(61);
        let (mut collector, mut elders) = collecting(&fx);
        let message = crypto::debit_message(&fx.genesis(), &collector.transfer_id());
        let garbage = crypto::sign_debit_share(&fx.stranger_key_share(), &message);
        // Elder 0 sends bytes that are no curve point: nonsense at once.
        let transfer = collector.transfer_id();
        let share = |share| ClientReply::Share { transfer, share };
        let nonsense = share(BlsSignature([0xff; BlsSignature::LEN]));
        assert_eq!(collector.add(ElderIndex(0), nonsense), Progress::Waiting);
        assert_eq!(collector.invalid().collect::<Vec<_>>(), vec![ElderIndex(0)]);
        assert_eq!(collector.shared_by().count(), 0);
        // Then a well-formed share under a stranger's key: counted until n − f combine.
        assert_eq!(collector.add(ElderIndex(0), share(garbage)), Progress::Waiting);
        assert_eq!(collector.invalid().count(), 0);
        for index in [1, 2] {
            let reply = answer(&collector, &mut elders, index);
            assert_eq!(collector.add(ElderIndex(index), reply), Progress::Waiting);
        }
        // The combined proof failed; checking each share found elder 0's.
        assert_eq!(collector.invalid().collect::<Vec<_>>(), vec![ElderIndex(0)]);
        assert_eq!(collector.shared_by().collect::<Vec<_>>(), vec![ElderIndex(1), ElderIndex(2)]);
        let reply = answer(&collector, &mut elders, 3);
        let Progress::Certified(proof) = collector.add(ElderIndex(3), reply) else {
            panic!("the three honest shares certify");
        };
        let section = &fx.network.sections[HOME];
        let message = crypto::debit_message(&fx.genesis(), &collector.transfer_id());
        assert!(section.proof_is_valid(&message, &proof));
    }

    #[test]
    fn genuine_share_for_another_transfer_is_counted_invalid() {
        let fx = Fixture::new(62);
        let (mut collector, mut elders) = collecting(&fx);
        let other = fx.signed(&fx.faucet, fx.account_in(HOME), 6, 1);
        let (reply, _) = elders[0].handle_client(validate(other), 0);
        assert_eq!(collector.add(ElderIndex(0), reply), Progress::Waiting);
        assert_eq!(collector.invalid().collect::<Vec<_>>(), vec![ElderIndex(0)]);
    }

    #[test]
    fn conflict_is_reported_once_it_leaves_too_few_elders_to_certify() {
        let fx = Fixture::new(63);
        let (mut collector, mut elders) = collecting(&fx);
        let to = collector.signed().transfer.to;
        let earlier = fx.signed(&fx.faucet, to, 7, 1);
        for elder in [1, 2] {
            elders[elder].handle_client(validate(earlier.clone()), 0);
        }
        let reply = answer(&collector, &mut elders, 1);
        assert!(matches!(reply, ClientReply::Rejected(Rejection::Conflict { .. })), "{reply:?}");
        // One elder's conflict alone (perhaps a Byzantine one) must not derail the transfer.
        assert_eq!(collector.add(ElderIndex(1), reply), Progress::Waiting);
        let reply = answer(&collector, &mut elders, 2);
        assert_eq!(collector.add(ElderIndex(2), reply), Progress::Conflict(earlier));
    }

    #[test]
    fn conflict_carrying_a_transfer_not_signed_by_our_key_counts_as_a_refusal() {
        let fx = Fixture::new(64);
        let (mut collector, _) = collecting(&fx);
        let ours = collector.signed().transfer.clone();
        let forger = fx.key_in(HOME);
        let invented = fx.sign(&forger, Transfer { amount: Amount(9), ..ours.clone() });
        let conflict = |rival: SignedTransfer| {
            let slot = ours.slot();
            ClientReply::Rejected(Rejection::Conflict { slot, rival: Box::new(rival) })
        };
        assert_eq!(collector.add(ElderIndex(0), conflict(invented.clone())), Progress::Waiting);
        // Our own transfer, sent back as its own rival, is no conflict either.
        let own = collector.signed().clone();
        let Progress::Refused(refusals) = collector.add(ElderIndex(2), conflict(own.clone()))
        else {
            panic!("two refusals of four leave too few elders to certify");
        };
        let elders: Vec<ElderIndex> = refusals.iter().map(|(elder, _)| *elder).collect();
        assert_eq!(elders, vec![ElderIndex(0), ElderIndex(2)]);
    }

    #[test]
    fn refused_only_when_more_than_f_elders_refuse() {
        let fx = Fixture::new(65);
        let (mut collector, _) = collecting(&fx);
        assert_eq!(collector.add(ElderIndex(3), refusal()), Progress::Waiting);
        let expected = vec![(ElderIndex(1), rejection()), (ElderIndex(3), rejection())];
        assert_eq!(collector.add(ElderIndex(1), refusal()), Progress::Refused(expected));
    }

    #[test]
    fn elder_that_refuses_then_answers_nonsense_counts_once() {
        let fx = Fixture::new(66);
        let (mut collector, mut elders) = collecting(&fx);
        let nonsense = ClientReply::Registered { transfer: collector.transfer_id() };
        assert_eq!(collector.add(ElderIndex(0), refusal()), Progress::Waiting);
        assert_eq!(collector.add(ElderIndex(0), nonsense.clone()), Progress::Waiting);
        assert_eq!(collector.add(ElderIndex(0), refusal()), Progress::Waiting);
        for index in [1, 2] {
            let reply = answer(&collector, &mut elders, index);
            assert_eq!(collector.add(ElderIndex(index), reply), Progress::Waiting);
        }
        let reply = answer(&collector, &mut elders, 3);
        assert!(matches!(collector.add(ElderIndex(3), reply), Progress::Certified(_)));
    }

    #[test]
    fn answers_from_elders_outside_the_section_are_ignored() {
        let fx = Fixture::new(67);
        let (mut collector, _) = collecting(&fx);
        for index in 4..10 {
            assert_eq!(collector.add(ElderIndex(index), refusal()), Progress::Waiting);
        }
        assert_eq!(collector.invalid().count(), 0);
    }

    #[test]
    fn agreed_answer_returns_once_f_plus_one_elders_give_the_same_one() {
        let fx = Fixture::new(68);
        let mut agreed = AgreedAnswer::new(&fx.network.sections[HOME]);
        assert_eq!(agreed.add(ElderIndex(0), 10u64), None);
        assert_eq!(agreed.add(ElderIndex(1), 11), None);
        assert_eq!(agreed.add(ElderIndex(2), 10), Some(10));
    }

    #[test]
    fn single_lying_elder_cannot_make_a_value_accepted() {
        let fx = Fixture::new(69);
        let mut agreed = AgreedAnswer::new(&fx.network.sections[HOME]);
        for _ in 0..3 {
            assert_eq!(agreed.add(ElderIndex(3), 1_000_000u64), None, "one elder, said often");
        }
        assert_eq!(agreed.add(ElderIndex(0), 10), None);
        // The liar switching to the truth counts once, as its latest answer.
        assert_eq!(agreed.add(ElderIndex(3), 10), Some(10));
        assert_eq!(agreed.add(ElderIndex(3), 1_000_000), None);
    }
}
