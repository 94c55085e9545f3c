//! The referee section's side of a bundle (R12): its elders run one binary agreement per
//! bundle ([`crate::agreement`]), put in commit once shown a valid lock of every leg while
//! `now ≤ deadline + CLOCK_SKEW_MS_MAX`, and abort once that time has passed without; every
//! vote is recorded before it leaves. The common coin of a round is the section's signature
//! over the bundle and round. Once decided, each elder signs a share of the outcome; `n − f`
//! combine into the certificate, which settles the legs ([`super::settle`]).

use std::collections::{BTreeMap, BTreeSet};

use super::{ElderId, Ledger, Output, Record};
use crate::agreement::{Agreement, Round, Step, Vote};
use crate::crypto;
use crate::limits::{AGREEMENT_ROUNDS_MAX, CLOCK_SKEW_MS_MAX, REFERRALS_MAX};
use crate::messages::PeerMessage;
use crate::rejection::Rejection;
use crate::types::{
    BlsSignature, Bundle, BundleId, DebitProof, ElderIndex, OutcomeCertificate, SignedTransfer,
};

/// One bundle this elder's section referees, until its outcome is certified.
#[derive(Clone, Debug)]
pub(super) struct Referral {
    bundle: Bundle,
    /// Valid lock certificates shown, by leg.
    locks: BTreeMap<u8, DebitProof>,
    agreement: Agreement,
    /// Coin shares by round and elder, this elder's own among them once given.
    coin_shares: BTreeMap<Round, BTreeMap<ElderIndex, BlsSignature>>,
    /// Outcome shares by outcome and elder.
    outcome_shares: BTreeMap<(bool, ElderIndex), BlsSignature>,
    /// Times every vote was sent again, for the backoff.
    resends: u32,
}

impl Referral {
    fn all_locked(&self) -> bool {
        self.locks.len() == self.bundle.legs.len()
    }

    /// When this elder puts in abort if it has no input yet.
    fn abort_after_ms(&self) -> u64 {
        self.bundle.deadline_ms.saturating_add(CLOCK_SKEW_MS_MAX)
    }
}

impl Ledger {
    /// A bundle to decide, with lock certificates, from a client, a referee peer or a leg
    /// section. Returns the certificate if the outcome is known.
    pub(super) fn refer(
        &mut self,
        bundle: Bundle,
        locks: Vec<DebitProof>,
        now_ms: u64,
        output: &mut Output,
    ) -> Result<Option<OutcomeCertificate>, Rejection> {
        let prefix = self.section().prefix;
        if bundle.referee != prefix {
            return Err(Rejection::NotReferee { referee: bundle.referee, prefix });
        }
        crypto::check_bundle_shape(&bundle)?;
        let id = crypto::bundle_id(&bundle);
        if let Some(certificate) = self.outcomes.get(&id) {
            return Ok(Some(certificate.clone()));
        }
        let known = self.referrals.get(&id).map(|referral| &referral.locks);
        let mut shown = Vec::new();
        for lock in locks {
            let Some((_, leg)) = lock.lock() else {
                return Err(Rejection::BadLock { leg: 0 });
            };
            if known.and_then(|known| known.get(&leg)) == Some(&lock) {
                continue;
            }
            self.network.check_lock(&bundle, leg, &lock)?;
            shown.push((leg, lock));
        }
        if !self.referrals.contains_key(&id) {
            // A referral costs a slot until decided: it opens only for a bundle a payer
            // countersigned and its section locked, due within the bound.
            if shown.is_empty() {
                return Err(Rejection::NoLockShown);
            }
            super::check_deadline_bound(&bundle, now_ms)?;
            if self.referrals.len() >= REFERRALS_MAX {
                return Err(Rejection::RefereeBusy { open: self.referrals.len() as u64 });
            }
            let locks = shown.iter().map(|(_, lock)| lock.clone()).collect();
            output.records.push(Record::Referred { bundle: bundle.clone(), locks });
            self.open_referral(bundle.clone());
            // The peers learn of it now, and then with every resend.
            self.schedule_bundle(id, now_ms);
        }
        let referral = self.referrals.get_mut(&id).expect("opened above");
        let complete_before = referral.all_locked();
        referral.locks.extend(shown);
        if referral.all_locked() && !complete_before {
            let locks: Vec<DebitProof> = referral.locks.values().cloned().collect();
            output.records.push(Record::Referred { bundle: bundle.clone(), locks: locks.clone() });
            self.to_section_peers(PeerMessage::Refer { bundle, locks }, output);
            let referral = self.referrals.get_mut(&id).expect("opened above");
            if now_ms <= referral.abort_after_ms() {
                let step = referral.agreement.input(true);
                self.agreement_step(id, step, now_ms, output);
            }
        }
        self.try_certify(id, now_ms, output);
        Ok(None)
    }

    /// Starts refereeing a bundle (or restores it from the store).
    pub(super) fn open_referral(&mut self, bundle: Bundle) {
        let id = crypto::bundle_id(&bundle);
        let section = self.section();
        let agreement = Agreement::new(section.elder_count(), section.faults_max(), self.elder);
        self.referrals.entry(id).or_insert(Referral {
            bundle,
            locks: BTreeMap::new(),
            agreement,
            coin_shares: BTreeMap::new(),
            outcome_shares: BTreeMap::new(),
            resends: 0,
        });
    }

    /// Restores a referral's locks and votes from the store.
    pub(super) fn restore_referral(&mut self, bundle: Bundle, locks: Vec<DebitProof>) {
        let id = crypto::bundle_id(&bundle);
        if self.outcomes.contains_key(&id) {
            return;
        }
        self.open_referral(bundle);
        let referral = self.referrals.get_mut(&id).expect("opened above");
        for lock in locks {
            if let Some((_, leg)) = lock.lock() {
                referral.locks.insert(leg, lock);
            }
        }
        self.schedule_bundle(id, 0);
    }

    /// Restores one recorded vote.
    pub(super) fn restore_vote(&mut self, id: BundleId, vote: Vote) {
        if let Some(referral) = self.referrals.get_mut(&id) {
            referral.agreement.restore(vote);
        }
    }

    /// Sends a message to every other elder of this section.
    pub(super) fn to_section_peers(&self, message: PeerMessage, output: &mut Output) {
        let me = self.me();
        for elder in &self.section().elders {
            if elder.index != me.index {
                let peer = ElderId { prefix: me.prefix, index: elder.index };
                output.messages.push((peer, message.clone()));
            }
        }
    }

    /// Carries out what the agreement asked: record and send its votes, give a coin share,
    /// give an outcome share once decided.
    fn agreement_step(&mut self, id: BundleId, step: Step, now_ms: u64, output: &mut Output) {
        for vote in step.votes {
            output.records.push(Record::Voted { bundle: id, vote });
            self.to_section_peers(PeerMessage::Vote { bundle: id, vote }, output);
        }
        if let Some(round) = step.coin {
            self.give_coin(id, round, now_ms, output);
        }
        if let Some(commit) = step.decided {
            let message = crypto::outcome_message(&self.network.genesis, &id, commit);
            let share = crypto::sign_debit_share(&self.key_share, &message);
            let me = self.elder;
            if let Some(referral) = self.referrals.get_mut(&id) {
                referral.outcome_shares.insert((commit, me), share);
            }
            self.to_section_peers(PeerMessage::OutcomeShare { bundle: id, commit, share }, output);
            self.try_certify(id, now_ms, output);
        }
    }

    /// Gives this elder's share of the coin of `round` and uses the coin if it forms.
    fn give_coin(&mut self, id: BundleId, round: Round, now_ms: u64, output: &mut Output) {
        let message = crypto::coin_message(&self.network.genesis, &id, round);
        let share = crypto::sign_debit_share(&self.key_share, &message);
        let me = self.elder;
        let Some(referral) = self.referrals.get_mut(&id) else {
            return;
        };
        if referral.coin_shares.entry(round).or_default().insert(me, share).is_some() {
            return;
        }
        self.to_section_peers(PeerMessage::CoinShare { bundle: id, round, share }, output);
        self.try_coin(id, round, now_ms, output);
    }

    /// Combines the coin of `round` once `n − f` shares are there, and passes it in.
    fn try_coin(&mut self, id: BundleId, round: Round, now_ms: u64, output: &mut Output) {
        let section = &self.network.sections[self.section];
        let Some(referral) = self.referrals.get_mut(&id) else {
            return;
        };
        let shares = referral.coin_shares.get(&round).cloned().unwrap_or_default();
        if shares.len() < section.shares_needed() {
            return;
        }
        let Some(signature) = section.combine(&shares) else {
            return;
        };
        let step = referral.agreement.coin(round, crypto::coin_value(&signature));
        self.agreement_step(id, step, now_ms, output);
    }

    /// Forms the outcome certificate once `n − f` shares of the decided outcome are there
    /// (and, for commit, every lock), and settles it.
    fn try_certify(&mut self, id: BundleId, now_ms: u64, output: &mut Output) {
        let section = &self.network.sections[self.section];
        let Some(referral) = self.referrals.get(&id) else {
            return;
        };
        let Some(commit) = referral.agreement.decided() else {
            return;
        };
        let shares: BTreeMap<ElderIndex, BlsSignature> = referral
            .outcome_shares
            .iter()
            .filter(|((outcome, _), _)| *outcome == commit)
            .map(|((_, elder), share)| (*elder, *share))
            .collect();
        if shares.len() < section.shares_needed() || (commit && !referral.all_locked()) {
            return;
        }
        let Some(signature) = section.combine(&shares) else {
            return;
        };
        let certificate = OutcomeCertificate {
            bundle: referral.bundle.clone(),
            commit,
            section_key: section.key_id,
            signature,
            locks: if commit { referral.locks.values().cloned().collect() } else { Vec::new() },
        };
        let me = self.me();
        let settled =
            self.handle_outcome(super::ProofSource::Elder(me), certificate.clone(), now_ms, output);
        if settled.is_ok() {
            let certificate = Box::new(certificate);
            self.to_section_peers(PeerMessage::Outcome { certificate }, output);
        }
    }

    /// A referee peer's vote.
    pub(super) fn handle_vote(
        &mut self,
        from: ElderId,
        id: BundleId,
        vote: Vote,
        now_ms: u64,
        output: &mut Output,
    ) {
        if from.prefix != self.section().prefix {
            return;
        }
        if let Some(certificate) = self.outcomes.get(&id) {
            let certificate = Box::new(certificate.clone());
            output.messages.push((from, PeerMessage::Outcome { certificate }));
            return;
        }
        let Some(referral) = self.referrals.get_mut(&id) else {
            return;
        };
        let step = referral.agreement.handle(from.index, vote);
        self.agreement_step(id, step, now_ms, output);
    }

    /// A referee peer's coin share: kept once verified. An elder that has decided gives its
    /// own share for any round asked, since the others may need it to finish.
    pub(super) fn handle_coin_share(
        &mut self,
        from: ElderId,
        id: BundleId,
        round: Round,
        share: BlsSignature,
        now_ms: u64,
        output: &mut Output,
    ) {
        // Only rounds an honest elder may be in: bounded, and at most the next one unless
        // this elder decided (then it helps any later round to its end).
        let Some(referral) = self.referrals.get(&id) else {
            return;
        };
        let ahead = referral.agreement.decided().is_none()
            && round > referral.agreement.round().saturating_add(1);
        if round >= AGREEMENT_ROUNDS_MAX || ahead {
            return;
        }
        let message = crypto::coin_message(&self.network.genesis, &id, round);
        if !self.is_peer_share(from, &message, &share) {
            return;
        }
        let referral = self.referrals.get_mut(&id).expect("seen above");
        referral.coin_shares.entry(round).or_default().insert(from.index, share);
        if referral.agreement.decided().is_some() {
            self.give_coin(id, round, now_ms, output);
        }
        self.try_coin(id, round, now_ms, output);
    }

    /// A referee peer's outcome share: kept once verified.
    pub(super) fn handle_outcome_share(
        &mut self,
        from: ElderId,
        id: BundleId,
        commit: bool,
        share: BlsSignature,
        now_ms: u64,
        output: &mut Output,
    ) {
        let message = crypto::outcome_message(&self.network.genesis, &id, commit);
        if !self.is_peer_share(from, &message, &share) {
            return;
        }
        let Some(referral) = self.referrals.get_mut(&id) else {
            return;
        };
        referral.outcome_shares.insert((commit, from.index), share);
        self.try_certify(id, now_ms, output);
    }

    /// Whether `share` is section peer `from`'s valid share over `message`.
    fn is_peer_share(
        &self,
        from: ElderId,
        message: &crypto::HashedMessage,
        share: &BlsSignature,
    ) -> bool {
        from.prefix == self.section().prefix
            && self.section().share_is_valid(from.index, message, share)
    }

    /// A referral's timer: put in abort once its time has passed without every lock, and
    /// send every vote and share again (with backoff) while the outcome is not certified.
    fn referral_timeout(&mut self, id: BundleId, now_ms: u64, output: &mut Output) {
        let me = self.elder;
        let Some(referral) = self.referrals.get_mut(&id) else {
            return;
        };
        if !referral.agreement.has_input() && now_ms > referral.abort_after_ms() {
            let step = referral.agreement.input(false);
            self.agreement_step(id, step, now_ms, output);
        }
        let Some(referral) = self.referrals.get_mut(&id) else {
            return;
        };
        let delay = super::outbox::retry_delay_ms(referral.resends);
        referral.resends = referral.resends.saturating_add(1);
        let mut due = now_ms.saturating_add(delay);
        if !referral.agreement.has_input() {
            due = due.min(referral.abort_after_ms().saturating_add(1));
        }
        let locks = referral.locks.values().cloned().collect();
        let mut messages = vec![PeerMessage::Refer { bundle: referral.bundle.clone(), locks }];
        messages.extend(
            referral
                .agreement
                .sent()
                .iter()
                .map(|vote| PeerMessage::Vote { bundle: id, vote: *vote }),
        );
        for (round, shares) in &referral.coin_shares {
            if let Some(share) = shares.get(&me) {
                messages.push(PeerMessage::CoinShare { bundle: id, round: *round, share: *share });
            }
        }
        if let Some(commit) = referral.agreement.decided() {
            // The share given when it decided is kept; after a restart it is signed again.
            let share = referral.outcome_shares.get(&(commit, me)).copied().unwrap_or_else(|| {
                let message = crypto::outcome_message(&self.network.genesis, &id, commit);
                crypto::sign_debit_share(&self.key_share, &message)
            });
            messages.push(PeerMessage::OutcomeShare { bundle: id, commit, share });
        }
        self.schedule_bundle(id, due);
        for message in messages {
            self.to_section_peers(message, output);
        }
    }

    /// A leg elder's slot holds a countersigned lock share of a bundle past its time: the
    /// payer's signature shows the bundle is real, so the referee opens it (and decides
    /// abort, having no lock) or answers with the outcome.
    pub(super) fn handle_overdue(
        &mut self,
        from: ElderId,
        lock: SignedTransfer,
        now_ms: u64,
        output: &mut Output,
    ) {
        let Some((bundle, _)) = lock.lock() else {
            return;
        };
        let (bundle, id) = (bundle.clone(), crypto::bundle_id(bundle));
        if let Some(certificate) = self.outcomes.get(&id) {
            let certificate = Box::new(certificate.clone());
            output.messages.push((from, PeerMessage::Outcome { certificate }));
            return;
        }
        let open = self.referrals.contains_key(&id);
        if open
            || bundle.referee != self.section().prefix
            || bundle.deadline_ms > now_ms
            || self.referrals.len() >= REFERRALS_MAX
            || crypto::check_authority(&self.network.genesis, &lock).is_err()
        {
            return;
        }
        output.records.push(Record::Referred { bundle: bundle.clone(), locks: Vec::new() });
        self.open_referral(bundle);
        self.schedule_bundle(id, now_ms);
    }

    /// Bundles whose referee is this section and whose outcome is not certified yet.
    pub fn open_referrals(&self) -> usize {
        self.referrals.len()
    }

    /// Sets a bundle's one timer to `at_ms`, unless it is due earlier already.
    pub(super) fn schedule_bundle(&mut self, id: BundleId, at_ms: u64) {
        if let Some(current) = self.bundle_next.get(&id) {
            if *current <= at_ms {
                return;
            }
            self.bundle_due.remove(&(*current, id));
        }
        self.bundle_next.insert(id, at_ms);
        self.bundle_due.insert((at_ms, id));
    }

    /// Every bundle timer due at `now_ms`: referrals and overdue escrows.
    pub(super) fn bundle_timeouts(&mut self, now_ms: u64, output: &mut Output) {
        let mut due = BTreeSet::new();
        while self.bundle_due.first().is_some_and(|(at, _)| *at <= now_ms) {
            let (_, id) = self.bundle_due.pop_first().expect("just seen");
            self.bundle_next.remove(&id);
            due.insert(id);
        }
        for id in due {
            if self.referrals.contains_key(&id) {
                self.referral_timeout(id, now_ms, output);
            }
            if self.escrow.contains_key(&id) && !self.outcomes.contains_key(&id) {
                self.ask_referee(id, now_ms, output);
            } else if !self.outcomes.contains_key(&id) {
                self.ask_for_lock_shares(id, now_ms, output);
            }
            self.resend_voids(id, now_ms, output);
        }
    }
}
