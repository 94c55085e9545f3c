//! A simulated client: transfers through validate → certify → register, balance queries
//! accepted once `f + 1` elders agree, and deliberate misbehaviour ("probes").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shared::crypto;
use shared::driver::{account_id, build_transfer, AgreedAnswer, Progress, ShareCollector};
use shared::limits::DEPS_MAX;
use shared::messages::{AccountReport, ClientReply, ClientRequest};
use shared::network::{Network, Section};
use shared::rejection::Rejection;
use shared::types::{
    AccountId, Amount, DebitProof, ElderIndex, Memo, Seq, SignedTransfer, Transfer,
};

/// How long a client waits for answers before asking again.
pub const RESEND_MS: u64 = 250;
/// Rounds a refusal probe waits before it ends without a refusal quorum (elders down).
const PROBE_ROUNDS_MAX: u32 = 8;
/// Rounds an equivocating client tries before it accepts being stuck at its seq (R9).
const EQUIVOCATION_ROUNDS_MAX: u32 = 40;
/// Operation numbers per operation: candidate `k` of an operation uses `op + k`.
const OP_STRIDE: u64 = 16;
/// How much the faucet gives each client.
pub const FUNDING: Amount = Amount(1_000_000_000);

/// A deliberate client misbehaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Two transfers for one seq, to different halves of the section.
    Equivocation,
    /// Signs a transfer, forgets it, signs another for the same seq, and must recover.
    LostTrack,
    /// A seq past the next one.
    SeqAhead,
    /// A seq already used.
    StaleSeq,
    /// More than the balance.
    Overspend,
    /// An amount of zero.
    ZeroAmount,
    /// A corrupted account signature.
    BadSignature,
    /// A transfer to oneself.
    SelfTransfer,
    /// Registering an already applied proof again.
    Replay,
    /// Certifying a cross-section transfer and handing it to the recipient section only,
    /// never registering it at home.
    SkipRegister,
}

impl Probe {
    /// Whether every honest elder must refuse it, so it can never be certified.
    pub fn must_be_refused(self) -> bool {
        !matches!(
            self,
            Probe::Equivocation | Probe::LostTrack | Probe::Replay | Probe::SkipRegister
        )
    }
}

/// Something the world must check or count.
#[derive(Clone, Debug)]
pub enum ClientEvent {
    /// A misbehaviour began.
    ProbeStarted(Probe),
    /// The client combined a debit proof.
    Certified { proof: DebitProof, probe: Option<Probe> },
    /// `n − f` elders acknowledged the registration.
    Registered { replay: bool },
    /// `f + 1` elders agreed on the balance; all answers are attached.
    BalanceAgreed { report: AccountReport, reports: BTreeMap<ElderIndex, AccountReport> },
    /// The client's own equivocation left it stuck at its seq.
    Stuck,
    /// An honest transfer some elder first refused for funds was certified.
    WaitedOut,
}

/// What a client does after one input.
#[derive(Default)]
pub struct Step {
    /// Requests to elders, as (section index, elder, operation number, request).
    pub requests: Vec<(usize, ElderIndex, u64, ClientRequest)>,
    /// What happened.
    pub events: Vec<ClientEvent>,
    /// When to wake next, from now.
    pub wake_in: Option<u64>,
}

struct Validation {
    candidates: Vec<ShareCollector>,
    probe: Option<Probe>,
    rounds: u32,
    /// Whether an elder refused for funds it did not have yet.
    refused_for_funds: bool,
}

/// Where and why a proof is being registered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// At home, to apply the debit: done at `n − f` acknowledgements.
    Home,
    /// At home again, an already applied proof (a probe).
    Replay,
    /// Only at the recipient's section, as a dependency of a request it refuses (a probe):
    /// done once `f + 1` elders there answered, so an honest one took the proof.
    Abroad,
}

enum State {
    Idle,
    /// Lost-track probe: a first transfer went out; the next one follows on wake.
    Forgetting(SignedTransfer),
    Validating(Validation),
    Registering {
        proof: DebitProof,
        acked: BTreeSet<ElderIndex>,
        kind: Registration,
    },
    Querying {
        answers: AgreedAnswer<AccountReport>,
        reports: BTreeMap<ElderIndex, AccountReport>,
    },
}

/// One simulated client with its account key.
pub struct SimClient {
    key: SigningKey,
    /// Its account.
    pub account: AccountId,
    network: Arc<Network>,
    section: usize,
    next_seq: Seq,
    proofs: Vec<DebitProof>,
    /// Its current operation number; replies and timers of older operations are ignored.
    pub op: u64,
    state: State,
    transfers_left: u32,
    stuck: bool,
    funded: bool,
    to_fund: Vec<AccountId>,
    elder_next_seq: BTreeMap<ElderIndex, Seq>,
    /// Transfers already signed for future seqs: when the account gets there it sends these,
    /// never a second transfer for the same seq (a late copy may still get signed).
    signed_ahead: BTreeMap<Seq, SignedTransfer>,
    /// A relay: spends its whole balance whenever it has any, and makes no probes.
    relay: bool,
    /// A relay's balance at its next seq, as `f + 1` elders last agreed.
    spendable: Option<Amount>,
}

impl SimClient {
    /// A client that will make `transfers` transfers; the faucet also funds `to_fund` first.
    pub fn new(
        key: SigningKey,
        network: Arc<Network>,
        transfers: u32,
        to_fund: Vec<AccountId>,
    ) -> SimClient {
        let account = account_id(&key);
        let funded = account == network.map.faucet;
        SimClient {
            section: network.section_index_of(&account),
            key,
            account,
            network,
            next_seq: Seq::FIRST,
            proofs: Vec::new(),
            op: 0,
            state: State::Idle,
            transfers_left: transfers,
            stuck: false,
            funded,
            to_fund,
            elder_next_seq: BTreeMap::new(),
            signed_ahead: BTreeMap::new(),
            relay: false,
            spendable: None,
        }
    }

    /// A relay client with nothing yet, which makes `transfers` transfers of all it has.
    pub fn relay(key: SigningKey, network: Arc<Network>, transfers: u32) -> SimClient {
        SimClient { relay: true, ..SimClient::new(key, network, transfers, Vec::new()) }
    }

    /// Index of the client's section.
    pub fn section(&self) -> usize {
        self.section
    }

    fn section_info(&self) -> &Section {
        &self.network.sections[self.section]
    }

    /// Whether no operation is under way.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Whether the client has nothing more to do.
    pub fn is_done(&self) -> bool {
        self.is_idle() && (self.stuck || (self.transfers_left == 0 && self.to_fund.is_empty()))
    }

    /// The current operation, for diagnostics.
    pub fn describe(&self) -> String {
        match &self.state {
            State::Idle => "idle".to_string(),
            State::Forgetting(_) => "forgetting a transfer".to_string(),
            State::Validating(v) => format!(
                "validating {:?} (probe {:?}, round {}), shares from {:?}",
                v.candidates.iter().map(|c| c.signed().transfer.clone()).collect::<Vec<_>>(),
                v.probe,
                v.rounds,
                v.candidates.iter().map(|c| c.shared_by().collect::<Vec<_>>()).collect::<Vec<_>>()
            ),
            State::Registering { proof, acked, .. } => {
                format!("registering {:?}, acked by {acked:?}", proof.transfer())
            }
            State::Querying { .. } => "querying its balance".to_string(),
        }
    }

    /// A timer fires; `healing` forbids starting new operations.
    pub fn wake(
        &mut self,
        op: u64,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        healing: bool,
    ) -> Step {
        let mut step = Step::default();
        if op != self.op {
            return step;
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle if self.is_done() || healing => {}
            State::Idle if !self.funded => self.start_query(&mut step),
            State::Idle => self.start_action(rng, accounts, &mut step),
            State::Forgetting(next) => {
                let candidates = vec![ShareCollector::new(self.network.clone(), next)];
                let validation = Validation {
                    candidates,
                    probe: Some(Probe::LostTrack),
                    rounds: 0,
                    refused_for_funds: false,
                };
                self.send_validations(&validation, &mut step);
                self.state = State::Validating(validation);
            }
            State::Validating(mut validation) => {
                validation.rounds += 1;
                let limit = match validation.probe {
                    Some(probe) if probe.must_be_refused() => PROBE_ROUNDS_MAX,
                    Some(_) => EQUIVOCATION_ROUNDS_MAX,
                    // Rivals at one seq can split the elders for good (R9).
                    None if validation.candidates.len() > 1 => EQUIVOCATION_ROUNDS_MAX,
                    None => u32::MAX,
                };
                if validation.rounds > limit {
                    if !validation.probe.is_some_and(Probe::must_be_refused) {
                        self.stuck = true;
                        step.events.push(ClientEvent::Stuck);
                    }
                    self.finish(rng, &mut step);
                } else {
                    self.send_validations(&validation, &mut step);
                    self.state = State::Validating(validation);
                }
            }
            State::Registering { proof, acked, kind } => {
                self.send_registrations(&proof, &acked, kind, &mut step);
                self.state = State::Registering { proof, acked, kind };
            }
            State::Querying { .. } => self.start_query(&mut step),
        }
        step
    }

    /// An elder's reply to operation `op` arrives.
    pub fn reply(
        &mut self,
        elder: ElderIndex,
        op: u64,
        reply: ClientReply,
        rng: &mut ChaCha8Rng,
    ) -> Step {
        let mut step = Step::default();
        let Some(candidate) = op.checked_sub(self.op).map(|k| k as usize) else {
            return step;
        };
        if let ClientReply::Rejected(Rejection::SeqAhead { next_seq, .. }) = &reply {
            self.elder_next_seq.insert(elder, *next_seq);
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Validating(mut validation) if candidate < validation.candidates.len() => {
                if let ClientReply::Rejected(Rejection::InsufficientFunds { .. }) = &reply {
                    validation.refused_for_funds |= validation.probe.is_none();
                }
                let progress = validation.candidates[candidate].add(elder, reply);
                self.on_progress(progress, validation, rng, &mut step);
            }
            State::Registering { proof, mut acked, kind } if candidate == 0 => {
                let id = crypto::transfer_id(&proof.signed);
                let (taken, needed) = match kind {
                    Registration::Abroad => (
                        matches!(reply, ClientReply::Rejected(Rejection::WrongSection { .. })),
                        self.network.section_of(&proof.transfer().to).faults_max() + 1,
                    ),
                    Registration::Home | Registration::Replay => (
                        reply == (ClientReply::Registered { transfer: id }),
                        self.section_info().shares_needed(),
                    ),
                };
                if taken {
                    acked.insert(elder);
                }
                if acked.len() >= needed {
                    self.registered(proof, kind, rng, &mut step);
                } else {
                    self.state = State::Registering { proof, acked, kind };
                }
            }
            State::Querying { mut answers, mut reports } if candidate == 0 => match reply {
                ClientReply::Balance(report) if report.account == self.account => {
                    reports.insert(elder, report.clone());
                    if let Some(agreed) = answers.add(elder, report) {
                        if !self.funded && agreed.balance > Amount::ZERO {
                            self.funded = true;
                            self.next_seq = agreed.next_seq;
                        }
                        if self.relay && agreed.next_seq == self.next_seq {
                            self.spendable = Some(agreed.balance);
                        }
                        step.events.push(ClientEvent::BalanceAgreed { report: agreed, reports });
                        self.finish(rng, &mut step);
                    } else {
                        self.state = State::Querying { answers, reports };
                    }
                }
                _ => self.state = State::Querying { answers, reports },
            },
            state => self.state = state,
        }
        step
    }

    fn on_progress(
        &mut self,
        progress: Progress,
        mut validation: Validation,
        rng: &mut ChaCha8Rng,
        step: &mut Step,
    ) {
        match progress {
            Progress::Certified(proof) => {
                // A rival the elders held (found through a conflict) is a genuine transfer of
                // ours, not the probe: only the probe's own transfer must never be certified.
                let id = crypto::transfer_id(&proof.signed);
                let probe = validation.probe.filter(|probe| {
                    !probe.must_be_refused() || validation.candidates[0].transfer_id() == id
                });
                step.events.push(ClientEvent::Certified { proof: proof.clone(), probe });
                if validation.refused_for_funds {
                    step.events.push(ClientEvent::WaitedOut);
                }
                let kind = match probe {
                    Some(Probe::SkipRegister) => Registration::Abroad,
                    _ => Registration::Home,
                };
                let acked = BTreeSet::new();
                self.send_registrations(&proof, &acked, kind, step);
                self.state = State::Registering { proof, acked, kind };
                return;
            }
            Progress::Conflict(existing) => {
                // Finish the transfer the elders hold: it is ours, signed with our key.
                let id = crypto::transfer_id(&existing);
                let known = validation.candidates.iter().any(|c| c.transfer_id() == id);
                if !known && validation.candidates.len() < OP_STRIDE as usize {
                    let k = validation.candidates.len();
                    validation.candidates.push(ShareCollector::new(self.network.clone(), existing));
                    self.send_candidate(&validation.candidates[k], k, None, step);
                }
            }
            Progress::Refused(_) if validation.probe.is_some_and(Probe::must_be_refused) => {
                self.finish(rng, step);
                return;
            }
            Progress::Refused(_) | Progress::Waiting => {}
        }
        self.state = State::Validating(validation);
    }

    fn registered(
        &mut self,
        proof: DebitProof,
        kind: Registration,
        rng: &mut ChaCha8Rng,
        step: &mut Step,
    ) {
        if kind != Registration::Replay {
            self.advance(&proof);
        }
        if kind != Registration::Abroad {
            step.events.push(ClientEvent::Registered { replay: kind == Registration::Replay });
        }
        self.finish(rng, step);
    }

    /// The account moved past the proof's seq.
    fn advance(&mut self, proof: &DebitProof) {
        let transfer = proof.transfer();
        if self.to_fund.first() == Some(&transfer.to) && transfer.amount == FUNDING {
            self.to_fund.remove(0);
        } else {
            self.transfers_left = self.transfers_left.saturating_sub(1);
        }
        self.next_seq = transfer.seq.next().expect("seq within range");
        self.proofs.push(proof.clone());
    }

    fn finish(&mut self, rng: &mut ChaCha8Rng, step: &mut Step) {
        self.state = State::Idle;
        self.op += OP_STRIDE;
        step.wake_in = Some(if self.funded { rng.gen_range(1..=30) } else { RESEND_MS });
    }

    fn start_query(&mut self, step: &mut Step) {
        let answers = AgreedAnswer::new(self.section_info());
        self.state = State::Querying { answers, reports: BTreeMap::new() };
        for elder in &self.section_info().elders {
            let request = ClientRequest::Balance { account: self.account };
            step.requests.push((self.section, elder.index, self.op, request));
        }
        step.wake_in = Some(RESEND_MS);
    }

    fn start_action(&mut self, rng: &mut ChaCha8Rng, accounts: &[AccountId], step: &mut Step) {
        if let Some(to) = self.to_fund.first().copied() {
            let signed = self.sign(to, FUNDING, self.next_seq);
            return self.start_validation(vec![signed], None, step);
        }
        if self.relay {
            return match self.spendable.take() {
                Some(balance) if balance > Amount::ZERO => {
                    let to = self.random_other(rng, accounts);
                    let signed = self.sign(to, balance, self.next_seq);
                    self.start_validation(vec![signed], None, step)
                }
                _ => self.start_query(step),
            };
        }
        match rng.gen_range(0..100) {
            0..=2 => self.start_query(step),
            3..=14 => self.start_probe(rng, accounts, step),
            _ => {
                self.signed_ahead.retain(|seq, _| *seq >= self.next_seq);
                let signed = match self.signed_ahead.remove(&self.next_seq) {
                    Some(signed) => signed,
                    None => self.random_transfer(rng, accounts, self.next_seq),
                };
                self.start_validation(vec![signed], None, step);
            }
        }
    }

    fn start_probe(&mut self, rng: &mut ChaCha8Rng, accounts: &[AccountId], step: &mut Step) {
        let probe = *[
            Probe::Equivocation,
            Probe::LostTrack,
            Probe::SeqAhead,
            Probe::StaleSeq,
            Probe::Overspend,
            Probe::ZeroAmount,
            Probe::BadSignature,
            Probe::SelfTransfer,
            Probe::Replay,
            Probe::SkipRegister,
        ]
        .choose(rng)
        .expect("probes");
        let seq = self.next_seq;
        let signed = match probe {
            Probe::Equivocation => {
                let first = self.random_transfer(rng, accounts, seq);
                let second = self.random_transfer(rng, accounts, seq);
                step.events.push(ClientEvent::ProbeStarted(probe));
                return self.start_validation(vec![first, second], Some(probe), step);
            }
            Probe::LostTrack => {
                let forgotten = self.random_transfer(rng, accounts, seq);
                for elder in &self.section_info().elders {
                    let request =
                        ClientRequest::Validate { transfer: forgotten.clone(), deps: vec![] };
                    // An operation number no reply will match: the client forgot it.
                    step.requests.push((
                        self.section,
                        elder.index,
                        self.op + OP_STRIDE - 1,
                        request,
                    ));
                }
                self.state = State::Forgetting(self.random_transfer(rng, accounts, seq));
                step.events.push(ClientEvent::ProbeStarted(probe));
                step.wake_in = Some(RESEND_MS);
                return;
            }
            Probe::Replay => {
                let Some(proof) = self.proofs.choose(rng).cloned() else {
                    return self.start_query(step);
                };
                step.events.push(ClientEvent::ProbeStarted(probe));
                let acked = BTreeSet::new();
                let kind = Registration::Replay;
                self.send_registrations(&proof, &acked, kind, step);
                self.state = State::Registering { proof, acked, kind };
                return;
            }
            Probe::SkipRegister => {
                let abroad: Vec<AccountId> = accounts
                    .iter()
                    .copied()
                    .filter(|a| self.network.section_index_of(a) != self.section)
                    .collect();
                let Some(to) = abroad.choose(rng).copied() else {
                    return self.start_query(step);
                };
                step.events.push(ClientEvent::ProbeStarted(probe));
                let signed = self.sign(to, Amount(rng.gen_range(1..=1000)), seq);
                return self.start_validation(vec![signed], Some(probe), step);
            }
            Probe::SeqAhead => {
                let ahead = Seq(seq.0 + rng.gen_range(1..5));
                let signed = match self.signed_ahead.get(&ahead) {
                    Some(signed) => signed.clone(),
                    None => self.random_transfer(rng, accounts, ahead),
                };
                self.signed_ahead.insert(ahead, signed.clone());
                signed
            }
            Probe::StaleSeq if seq > Seq::FIRST => {
                self.random_transfer(rng, accounts, Seq(seq.0 - 1))
            }
            Probe::StaleSeq => return self.start_query(step),
            Probe::Overspend => {
                self.sign(self.random_other(rng, accounts), self.network.map.supply, seq)
            }
            Probe::ZeroAmount => {
                self.sign_unchecked(self.random_other(rng, accounts), Amount::ZERO, seq)
            }
            Probe::SelfTransfer => self.sign_unchecked(self.account, Amount(1), seq),
            Probe::BadSignature => {
                let mut signed = self.random_transfer(rng, accounts, seq);
                let mut bytes = signed.signature.to_bytes();
                bytes[0] ^= 1;
                signed.signature = ed25519_dalek::Signature::from_bytes(&bytes);
                signed
            }
        };
        step.events.push(ClientEvent::ProbeStarted(probe));
        self.start_validation(vec![signed], Some(probe), step);
    }

    fn random_other(&self, rng: &mut ChaCha8Rng, accounts: &[AccountId]) -> AccountId {
        loop {
            let to = *accounts.choose(rng).expect("accounts");
            if to != self.account {
                return to;
            }
        }
    }

    fn random_transfer(
        &self,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        seq: Seq,
    ) -> SignedTransfer {
        let to = self.random_other(rng, accounts);
        self.sign(to, Amount(rng.gen_range(1..=1000)), seq)
    }

    fn sign(&self, to: AccountId, amount: Amount, seq: Seq) -> SignedTransfer {
        let memo = Memo(format!("seq {seq}").into_bytes());
        build_transfer(&self.key, &self.network, to, amount, seq, memo)
            .expect("a well-formed transfer")
    }

    /// Signs what `build_transfer` would refuse, to see the elders refuse it too.
    fn sign_unchecked(&self, to: AccountId, amount: Amount, seq: Seq) -> SignedTransfer {
        let transfer = Transfer { from: self.account, to, amount, seq, memo: Memo::default() };
        crypto::sign_transfer(&self.key, &self.network.genesis, transfer)
    }

    fn start_validation(
        &mut self,
        transfers: Vec<SignedTransfer>,
        probe: Option<Probe>,
        step: &mut Step,
    ) {
        let candidates =
            transfers.into_iter().map(|t| ShareCollector::new(self.network.clone(), t)).collect();
        let validation = Validation { candidates, probe, rounds: 0, refused_for_funds: false };
        if probe == Some(Probe::Equivocation) {
            // Each half of the section first hears a different transfer.
            let half = self.section_info().elder_count() / 2;
            let elders: Vec<ElderIndex> =
                self.section_info().elders.iter().map(|e| e.index).collect();
            self.send_candidate(&validation.candidates[0], 0, Some(&elders[..half]), step);
            self.send_candidate(&validation.candidates[1], 1, Some(&elders[half..]), step);
        } else {
            self.send_validations(&validation, step);
        }
        self.state = State::Validating(validation);
    }

    fn send_validations(&self, validation: &Validation, step: &mut Step) {
        for (k, candidate) in validation.candidates.iter().enumerate() {
            self.send_candidate(candidate, k, None, step);
        }
    }

    /// Asks the elders (all, or `only`) that have not shared yet to validate candidate `k`.
    fn send_candidate(
        &self,
        candidate: &ShareCollector,
        k: usize,
        only: Option<&[ElderIndex]>,
        step: &mut Step,
    ) {
        let shared: BTreeSet<ElderIndex> = candidate.shared_by().collect();
        for elder in &self.section_info().elders {
            let index = elder.index;
            if shared.contains(&index) || only.is_some_and(|only| !only.contains(&index)) {
                continue;
            }
            let request = ClientRequest::Validate {
                transfer: candidate.signed().clone(),
                deps: self.deps_for(index),
            };
            step.requests.push((self.section, index, self.op + k as u64, request));
        }
        step.wake_in = Some(RESEND_MS);
    }

    fn send_registrations(
        &self,
        proof: &DebitProof,
        acked: &BTreeSet<ElderIndex>,
        kind: Registration,
        step: &mut Step,
    ) {
        let section = match kind {
            Registration::Abroad => self.network.section_index_of(&proof.transfer().to),
            Registration::Home | Registration::Replay => self.section,
        };
        for elder in &self.network.sections[section].elders {
            if !acked.contains(&elder.index) {
                let deps = match kind {
                    Registration::Abroad => vec![proof.clone()],
                    Registration::Home | Registration::Replay => self.deps_for(elder.index),
                };
                let request = ClientRequest::Register { proof: proof.clone(), deps };
                step.requests.push((section, elder.index, self.op, request));
            }
        }
        step.wake_in = Some(RESEND_MS);
    }

    /// The client's own proofs an elder reported missing (it answered `SeqAhead`).
    fn deps_for(&self, elder: ElderIndex) -> Vec<DebitProof> {
        match self.elder_next_seq.get(&elder) {
            Some(seq) if *seq < self.next_seq => {
                let first = usize::try_from(seq.0 - 1).expect("small seq");
                self.proofs.iter().skip(first).take(DEPS_MAX).cloned().collect()
            }
            _ => Vec::new(),
        }
    }
}
