//! A simulated client: the `shared::driver` drivers the `bank` command line runs, over the
//! simulated network, and deliberate misbehaviour ("probes") as thin wrappers around them: a
//! driver given a transfer an honest wallet would never sign, two drivers racing for one seq,
//! a transfer forgotten before the driver signs another, requests kept from half a section.

use std::collections::BTreeMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shared::driver::{
    Drive, DriverError, Goal, Outgoing, Payment, Query, Signer, Steps, Timing, TransferDriver,
    WalletState,
};
use shared::messages::{AccountReport, ClientReply, ClientRequest};
use shared::network::Network;
use shared::types::{
    AccountId, Amount, Authority, DebitProof, ElderIndex, Memo, Seq, SignedTransfer, Transfer,
    Window,
};

/// How long a client waits for an elder's answer before asking again, and the pause before
/// asking again after an answer that may change.
pub const RESEND_MS: u64 = 250;
const RETRY_MS: u64 = 100;
/// How long an honest step keeps trying before the client starts it over.
const PATIENCE_MS: u64 = 30_000;
/// How long a probe that every honest elder refuses keeps trying: it never certifies.
const PROBE_PATIENCE_MS: u64 = 2_000;
/// How long a client racing itself for one seq tries before it accepts being stuck (R9).
const RACE_PATIENCE_MS: u64 = 10_000;
/// Operation numbers per operation: driver `k` of an operation tags from `op + k · DRIVER_TAGS`.
const OP_STRIDE: u64 = 1 << 40;
const DRIVER_TAGS: u64 = 1 << 32;
/// How far ahead a windowed transfer's window opens at most, and how long it stays open: long
/// enough that no honest transfer expires (an expired one would stay in flight, by design).
const WINDOW_OPENS_MS_MAX: u64 = 3_000;
const WINDOW_MS: u64 = 600_000;
/// How much the faucet gives each client.
pub const FUNDING: Amount = Amount(1_000_000_000);

/// A deliberate client misbehaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Two transfers for one seq, first to different halves of the section.
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
    Certified { proof: Box<DebitProof>, probe: Option<Probe> },
    /// `n − f` elders acknowledged the registration.
    Registered { replay: bool },
    /// `f + 1` elders agreed on the balance; all answers are attached.
    BalanceAgreed { report: AccountReport, reports: BTreeMap<ElderIndex, AccountReport> },
    /// The client's own equivocation left it stuck at its seq.
    Stuck,
    /// An honest transfer some elder first refused for funds was certified.
    WaitedOut,
    /// The bundler made a bundle.
    BundleMade { bundle: Box<shared::types::Bundle> },
    /// The referee's certified outcome of a bundle reached the bundler.
    BundleDecided { certificate: Box<shared::types::OutcomeCertificate> },
}

/// What a client does after one input.
#[derive(Default)]
pub struct Step {
    /// Requests to elders, as (section index, elder, operation number, request).
    pub requests: Vec<(usize, ElderIndex, u64, ClientRequest)>,
    /// What happened.
    pub events: Vec<ClientEvent>,
    /// When to wake next, in virtual time.
    pub wake_at: Option<u64>,
}

/// One driver of an operation, and how its requests and outcome are bent.
struct Running {
    driver: Driver,
    /// Elders its first requests may reach (the rest are kept from it): an equivocation's
    /// halves.
    first_only: Option<Vec<ElderIndex>>,
}

enum Driver {
    Transfer(Box<TransferDriver>),
    Query(Box<Query>),
}

/// What the client is doing.
enum State {
    Idle,
    /// Lost-track probe: a first transfer went out and is forgotten; the honest send follows
    /// on wake, at the same seq.
    Forgetting,
    /// Drivers at work, for `probe` if it is one.
    Running {
        drivers: Vec<Running>,
        probe: Option<Probe>,
    },
}

/// One simulated client with what signs for its account: a key, or owner keys of a policy.
pub struct SimClient {
    signer: Signer,
    /// Its account.
    pub account: AccountId,
    network: Arc<Network>,
    section: usize,
    wallet: WalletState,
    /// Every own debit proof registered, for replays.
    proofs: Vec<DebitProof>,
    /// Its current operation number; replies and timers of older operations are ignored.
    pub op: u64,
    state: State,
    transfers_left: u32,
    stuck: bool,
    funded: bool,
    to_fund: Vec<AccountId>,
    /// Transfers already signed for future seqs: when the account gets there it sends these,
    /// never a second transfer for the same seq (a late copy may still get signed).
    signed_ahead: BTreeMap<Seq, SignedTransfer>,
    /// A relay: spends its whole balance whenever it has any, and makes no probes.
    relay: bool,
    /// A relay's balance at its next seq, as `f + 1` elders last agreed.
    spendable: Option<Amount>,
    /// The earliest wake scheduled for the current operation's drivers, if any.
    wake_pending: Option<u64>,
}

impl SimClient {
    /// A client that will make `transfers` transfers; the faucet also funds `to_fund` first.
    pub fn new(
        signer: Signer,
        network: Arc<Network>,
        transfers: u32,
        to_fund: Vec<AccountId>,
    ) -> SimClient {
        let account = signer.account();
        let funded = account == network.map.faucet;
        SimClient {
            section: network.section_index_of(&account),
            signer,
            account,
            network,
            wallet: WalletState::default(),
            proofs: Vec::new(),
            op: 0,
            state: State::Idle,
            transfers_left: transfers,
            stuck: false,
            funded,
            to_fund,
            signed_ahead: BTreeMap::new(),
            relay: false,
            spendable: None,
            wake_pending: None,
        }
    }

    /// A relay client with nothing yet, which makes `transfers` transfers of all it has.
    pub fn relay(key: SigningKey, network: Arc<Network>, transfers: u32) -> SimClient {
        let signer = Signer::Key(key);
        SimClient { relay: true, ..SimClient::new(signer, network, transfers, Vec::new()) }
    }

    /// Index of the client's section.
    pub fn section(&self) -> usize {
        self.section
    }

    /// Whether no operation is under way and nothing is left in flight.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle) && (self.stuck || self.wallet.pending().is_none())
    }

    /// Whether the client has nothing more to do.
    pub fn is_done(&self) -> bool {
        self.is_idle() && (self.stuck || (self.transfers_left == 0 && self.to_fund.is_empty()))
    }

    /// The current operation, for diagnostics.
    pub fn describe(&self) -> String {
        match &self.state {
            State::Idle => format!("idle, in flight: {:?}", self.wallet.pending()),
            State::Forgetting => "forgetting a transfer".to_string(),
            State::Running { drivers, probe } => {
                let certifying: Vec<_> = drivers
                    .iter()
                    .filter_map(|running| match &running.driver {
                        Driver::Transfer(driver) => driver.certifying(),
                        Driver::Query(_) => None,
                    })
                    .map(|c| (c.signed().transfer.clone(), c.shared_by().collect::<Vec<_>>()))
                    .collect();
                format!("probe {probe:?}, certifying (transfer, shared by): {certifying:?}")
            }
        }
    }

    fn timing(patience_ms: u64) -> Timing {
        Timing { answer_ms: RESEND_MS, retry_ms: RETRY_MS, patience_ms }
    }

    /// A timer fires; `healing` forbids starting new operations, though a transfer left in
    /// flight is still driven to its end.
    pub fn wake(
        &mut self,
        op: u64,
        now: u64,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        healing: bool,
    ) -> Step {
        let mut step = Step::default();
        if op != self.op {
            return step;
        }
        if self.wake_pending.is_some_and(|pending| pending <= now) {
            self.wake_pending = None;
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle if self.stuck => {}
            State::Idle if self.wallet.pending().is_some() => self.resume(now, &mut step),
            State::Idle if self.is_done() || healing => {}
            State::Idle if !self.funded => self.start_query(now, &mut step),
            State::Idle => self.start_action(rng, accounts, now, &mut step),
            State::Forgetting => {
                let to = random_other(self.account, rng, accounts);
                let amount = Amount(rng.gen_range(1..=1000));
                let goal = Goal::Send(Payment { memo: memo(now), ..Payment::new(to, amount) });
                let driver = self.send_driver(goal, Self::timing(RACE_PATIENCE_MS), now);
                self.start(
                    vec![Running { driver, first_only: None }],
                    Some(Probe::LostTrack),
                    now,
                    &mut step,
                );
            }
            State::Running { mut drivers, probe } => {
                for running in &mut drivers {
                    running.driver.get_mut().handle_timeout(now);
                }
                self.advance(drivers, probe, now, &mut step);
            }
        }
        step
    }

    /// An elder's reply to operation `op` arrives.
    pub fn reply(&mut self, elder: ElderIndex, op: u64, reply: ClientReply, now: u64) -> Step {
        let mut step = Step::default();
        let Some(offset) = op.checked_sub(self.op).filter(|offset| *offset < OP_STRIDE) else {
            return step;
        };
        let (k, tag) = ((offset / DRIVER_TAGS) as usize, offset % DRIVER_TAGS);
        let State::Running { drivers, .. } = &mut self.state else {
            return step;
        };
        let Some(running) = drivers.get_mut(k) else {
            return step;
        };
        running.driver.get_mut().handle_reply(elder, tag, Ok(reply), now);
        if let State::Running { drivers, probe } = std::mem::replace(&mut self.state, State::Idle) {
            self.advance(drivers, probe, now, &mut step);
        }
        step
    }

    /// Starts drivers for an operation: their first requests go out now.
    fn start(
        &mut self,
        mut drivers: Vec<Running>,
        probe: Option<Probe>,
        now: u64,
        step: &mut Step,
    ) {
        if let Some(probe) = probe {
            step.events.push(ClientEvent::ProbeStarted(probe));
        }
        for running in &mut drivers {
            running.driver.get_mut().handle_timeout(now);
        }
        self.advance(drivers, probe, now, step);
    }

    /// Sends what the drivers ask (the wallet is in memory and never lost here), ends the
    /// operation once every driver is done, and sets the next wake.
    fn advance(
        &mut self,
        mut drivers: Vec<Running>,
        probe: Option<Probe>,
        now: u64,
        step: &mut Step,
    ) {
        for (k, running) in drivers.iter_mut().enumerate() {
            let ready = running.driver.get_mut().poll();
            for Outgoing { section, elder, tag, request } in ready.unsaved.saved() {
                // An equivocation's halves: the requests kept from an elder look lost.
                if running.first_only.as_ref().is_some_and(|only| !only.contains(&elder)) {
                    continue;
                }
                let op = self.op + k as u64 * DRIVER_TAGS + tag;
                step.requests.push((section, elder, op, request));
            }
            running.first_only = None;
        }
        let wake = drivers.iter().filter_map(|running| running.driver.get().poll_timeout()).min();
        match wake {
            Some(at) => {
                // One wake pending per operation is enough: a later one is set when it fires.
                let at = at.max(now);
                if self.wake_pending.is_none_or(|pending| at < pending || pending < now) {
                    self.wake_pending = Some(at);
                    step.wake_at = Some(at);
                }
                self.state = State::Running { drivers, probe };
            }
            None => self.finish(drivers, probe, now, step),
        }
    }

    /// Every driver of the operation is done: report what it certified and learnt.
    fn finish(&mut self, drivers: Vec<Running>, probe: Option<Probe>, now: u64, step: &mut Step) {
        let mut registered_any = false;
        for running in drivers {
            match running.driver {
                Driver::Transfer(mut driver) => {
                    let outcome = driver.take_outcome().expect("a finished driver has an outcome");
                    let Some(proof) = driver.certified().cloned() else {
                        registered_any |= self.learn(&driver, None, probe, step);
                        continue;
                    };
                    step.events
                        .push(ClientEvent::Certified { proof: Box::new(proof.clone()), probe });
                    if driver.waited_out_a_refusal() && probe.is_none() {
                        step.events.push(ClientEvent::WaitedOut);
                    }
                    if probe == Some(Probe::SkipRegister) {
                        return self.hand_abroad(proof, now, step);
                    }
                    let registered = outcome.is_ok().then_some(proof);
                    registered_any |= self.learn(&driver, registered, probe, step);
                }
                Driver::Query(mut query) => {
                    let outcome = query.take_outcome().expect("a finished query has an outcome");
                    self.agreed(&query, outcome, step);
                }
            }
        }
        if matches!(probe, Some(Probe::Equivocation | Probe::LostTrack)) && !registered_any {
            self.stuck = true;
            step.events.push(ClientEvent::Stuck);
        }
        self.state = State::Idle;
        self.op += OP_STRIDE;
        self.wake_pending = None;
        let pause = if self.funded { think_time(now) } else { RESEND_MS };
        step.wake_at = Some(now + pause);
    }

    /// Skip-register probe, second half: the certified proof goes to the recipient's section
    /// only, as a dep of a registration it refuses (wrong section) and keeps. Once `f + 1`
    /// elders there agree on that answer, an honest one took the proof, and routing brings the
    /// debit home.
    fn hand_abroad(&mut self, proof: DebitProof, now: u64, step: &mut Step) {
        let section = self.network.section_index_of(&proof.transfer().to);
        let request = ClientRequest::Register { proof: proof.clone(), deps: vec![proof.clone()] };
        let timing = Self::timing(PATIENCE_MS);
        let query = Query::new(&self.network, section, request, timing, 0, now);
        self.wallet.finish(proof.clone());
        self.count(&proof);
        self.op += OP_STRIDE;
        self.wake_pending = None;
        let driver = Driver::Query(Box::new(query));
        self.start(vec![Running { driver, first_only: None }], None, now, step);
    }

    /// What a transfer driver's end teaches the client, given the proof it registered if any;
    /// whether a debit of the account was registered.
    fn learn(
        &mut self,
        driver: &TransferDriver,
        registered: Option<DebitProof>,
        probe: Option<Probe>,
        step: &mut Step,
    ) -> bool {
        let proof = if matches!(probe, None | Some(Probe::LostTrack)) {
            // A send: the driver kept the wallet, a rival it completed included.
            let before = self.wallet.next_seq();
            self.wallet = driver.wallet().clone();
            if self.wallet.next_seq() == before {
                return false;
            }
            self.wallet.recent().last().cloned().expect("a finished debit is kept")
        } else {
            let Some(proof) = registered else { return false };
            if probe == Some(Probe::Replay) {
                step.events.push(ClientEvent::Registered { replay: true });
                return false;
            }
            self.wallet.finish(proof.clone());
            proof
        };
        step.events.push(ClientEvent::Registered { replay: false });
        self.count(&proof);
        true
    }

    /// The account moved past the proof's seq.
    fn count(&mut self, proof: &DebitProof) {
        let transfer = proof.transfer();
        if self.to_fund.first() == Some(&transfer.to) && transfer.amount == FUNDING {
            self.to_fund.remove(0);
        } else {
            self.transfers_left = self.transfers_left.saturating_sub(1);
        }
        self.proofs.push(proof.clone());
    }

    /// A balance query ended.
    fn agreed(
        &mut self,
        query: &Query,
        outcome: Result<ClientReply, DriverError>,
        step: &mut Step,
    ) {
        let Ok(ClientReply::Balance(agreed)) = outcome else { return };
        if agreed.account != self.account {
            return;
        }
        if !self.funded && agreed.balance > Amount::ZERO {
            self.funded = true;
            self.wallet.observe_next_seq(agreed.next_seq);
        }
        if self.relay && agreed.next_seq == self.wallet.next_seq() {
            self.spendable = Some(agreed.balance);
        }
        let reports = query
            .answers()
            .iter()
            .filter_map(|(elder, reply)| match reply {
                ClientReply::Balance(report) => Some((*elder, report.clone())),
                _ => None,
            })
            .collect();
        step.events.push(ClientEvent::BalanceAgreed { report: agreed, reports });
    }

    fn send_driver(&self, goal: Goal, timing: Timing, now: u64) -> Driver {
        let key = Some(self.signer.clone());
        let (network, wallet) = (self.network.clone(), self.wallet.clone());
        Driver::Transfer(Box::new(TransferDriver::new(network, key, wallet, goal, timing, now)))
    }

    /// A wallet-less driver for a transfer the probe built itself.
    fn probe_driver(&self, goal: Goal, patience_ms: u64, now: u64) -> Driver {
        let wallet = WalletState::with_deps(self.wallet.recent());
        let timing = Self::timing(patience_ms);
        let driver = TransferDriver::new(self.network.clone(), None, wallet, goal, timing, now);
        Driver::Transfer(Box::new(driver))
    }

    /// Drives the transfer left in flight to its end.
    fn resume(&mut self, now: u64, step: &mut Step) {
        let pending = self.wallet.pending().expect("resumed only when in flight").transfer.clone();
        let goal = Goal::Send(Payment {
            to: pending.to,
            amount: pending.amount,
            memo: pending.memo,
            window: pending.window,
        });
        let driver = self.send_driver(goal, Self::timing(PATIENCE_MS), now);
        self.start(vec![Running { driver, first_only: None }], None, now, step);
    }

    fn start_query(&mut self, now: u64, step: &mut Step) {
        let request = ClientRequest::Balance { account: self.account };
        let timing = Self::timing(PATIENCE_MS);
        let query = Query::new(&self.network, self.section, request, timing, 0, now);
        let driver = Driver::Query(Box::new(query));
        self.start(vec![Running { driver, first_only: None }], None, now, step);
    }

    fn start_action(
        &mut self,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        now: u64,
        step: &mut Step,
    ) {
        // One honest transfer in eight carries a time window that opens soon (R11): elders
        // whose clocks are behind refuse it as too early, and the client waits that out.
        let window = if rng.gen_ratio(1, 8) {
            let opens = now + rng.gen_range(0..WINDOW_OPENS_MS_MAX);
            Window { valid_after: Some(opens), valid_before: Some(opens + WINDOW_MS) }
        } else {
            Window::ALWAYS
        };
        let honest = |client: &Self, to: AccountId, amount: Amount| {
            let payment = Payment { memo: memo(now), window, ..Payment::new(to, amount) };
            client.send_driver(Goal::Send(payment), Self::timing(PATIENCE_MS), now)
        };
        let driver = if let Some(to) = self.to_fund.first().copied() {
            honest(self, to, FUNDING)
        } else if self.relay {
            match self.spendable.take() {
                Some(balance) if balance > Amount::ZERO => {
                    honest(self, random_other(self.account, rng, accounts), balance)
                }
                _ => return self.start_query(now, step),
            }
        } else {
            match rng.gen_range(0..100) {
                0..=2 => return self.start_query(now, step),
                3..=14 => return self.start_probe(rng, accounts, now, step),
                _ => {
                    let next = self.wallet.next_seq();
                    self.signed_ahead.retain(|seq, _| *seq >= next);
                    if let Some(signed) = self.signed_ahead.remove(&next) {
                        // Signed ahead by a probe: this one, never a second for the seq.
                        self.wallet.set_pending(Some(signed));
                        return self.resume(now, step);
                    }
                    let to = random_other(self.account, rng, accounts);
                    honest(self, to, Amount(rng.gen_range(1..=1000)))
                }
            }
        };
        self.start(vec![Running { driver, first_only: None }], None, now, step);
    }

    fn start_probe(
        &mut self,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        now: u64,
        step: &mut Step,
    ) {
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
        let seq = self.wallet.next_seq();
        let alone = |driver| vec![Running { driver, first_only: None }];
        let drivers = match probe {
            Probe::Equivocation => self.equivocation(rng, accounts, seq, now),
            Probe::LostTrack => return self.lose_track(rng, accounts, seq, now, step),
            Probe::Replay => {
                let Some(proof) = self.proofs.choose(rng).cloned() else {
                    return self.start_query(now, step);
                };
                alone(self.probe_driver(Goal::Register(proof), PATIENCE_MS, now))
            }
            Probe::SkipRegister => {
                let abroad: Vec<AccountId> = accounts
                    .iter()
                    .copied()
                    .filter(|a| self.network.section_index_of(a) != self.section)
                    .collect();
                let Some(to) = abroad.choose(rng).copied() else {
                    return self.start_query(now, step);
                };
                let signed = self.sign(to, Amount(rng.gen_range(1..=1000)), seq);
                let goal = Goal::Complete { signed, register: false };
                alone(self.probe_driver(goal, PATIENCE_MS, now))
            }
            refused => {
                let Some(signed) = self.refused_transfer(refused, rng, accounts, seq) else {
                    return self.start_query(now, step);
                };
                let goal = Goal::Complete { signed, register: false };
                alone(self.probe_driver(goal, PROBE_PATIENCE_MS, now))
            }
        };
        self.start(drivers, Some(probe), now, step);
    }

    /// Two drivers race for one seq, each first heard by a different half of the section.
    fn equivocation(
        &self,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        seq: Seq,
        now: u64,
    ) -> Vec<Running> {
        let elders: Vec<ElderIndex> =
            self.network.sections[self.section].elders.iter().map(|e| e.index).collect();
        let half = elders.len() / 2;
        [elders[..half].to_vec(), elders[half..].to_vec()]
            .into_iter()
            .map(|only| {
                let signed = self.random_transfer(rng, accounts, seq);
                let goal = Goal::Complete { signed, register: true };
                let driver = self.probe_driver(goal, RACE_PATIENCE_MS, now);
                Running { driver, first_only: Some(only) }
            })
            .collect()
    }

    /// Lost-track probe, first half: a transfer goes to every elder and is forgotten at once
    /// (sent with an operation number no reply will match); the send that follows on wake
    /// signs another at the same seq and must recover through the conflict.
    fn lose_track(
        &mut self,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        seq: Seq,
        now: u64,
        step: &mut Step,
    ) {
        let forgotten = self.random_transfer(rng, accounts, seq);
        for elder in &self.network.sections[self.section].elders {
            let request = ClientRequest::Validate { transfer: forgotten.clone(), deps: vec![] };
            step.requests.push((self.section, elder.index, self.op + OP_STRIDE - 1, request));
        }
        step.events.push(ClientEvent::ProbeStarted(Probe::LostTrack));
        self.state = State::Forgetting;
        step.wake_at = Some(now + RESEND_MS);
    }

    /// The transfer a probe that every honest elder must refuse sends, if it can make one.
    fn refused_transfer(
        &mut self,
        probe: Probe,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        seq: Seq,
    ) -> Option<SignedTransfer> {
        let to = random_other(self.account, rng, accounts);
        Some(match probe {
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
            Probe::Overspend => self.sign(to, self.network.map.supply, seq),
            Probe::ZeroAmount => self.sign_unchecked(to, Amount::ZERO, seq),
            Probe::SelfTransfer => self.sign_unchecked(self.account, Amount(1), seq),
            Probe::BadSignature => {
                let mut signed = self.random_transfer(rng, accounts, seq);
                let signature = match &mut signed.authority {
                    Authority::Key(signature) => signature,
                    Authority::Policy { signatures, .. } => &mut signatures[0].signature,
                    Authority::Bundle { .. } | Authority::Void { .. } => {
                        unreachable!("a random transfer is no lock or void")
                    }
                };
                let mut bytes = signature.to_bytes();
                bytes[0] ^= 1;
                *signature = ed25519_dalek::Signature::from_bytes(&bytes);
                signed
            }
            _ => return None,
        })
    }

    fn random_transfer(
        &self,
        rng: &mut ChaCha8Rng,
        accounts: &[AccountId],
        seq: Seq,
    ) -> SignedTransfer {
        let to = random_other(self.account, rng, accounts);
        self.sign(to, Amount(rng.gen_range(1..=1000)), seq)
    }

    fn sign(&self, to: AccountId, amount: Amount, seq: Seq) -> SignedTransfer {
        let memo = Memo(format!("seq {seq}").into_bytes());
        self.signer
            .build(&self.network, Payment { memo, ..Payment::new(to, amount) }, seq)
            .expect("a well-formed transfer")
    }

    /// Signs what `build_transfer` would refuse, to see the elders refuse it too.
    fn sign_unchecked(&self, to: AccountId, amount: Amount, seq: Seq) -> SignedTransfer {
        let transfer = Transfer {
            from: self.account,
            to,
            amount,
            seq,
            memo: Memo::default(),
            window: Window::ALWAYS,
        };
        self.signer.sign(&self.network.genesis, transfer)
    }
}

impl Driver {
    /// The driver, whatever its kind.
    fn get(&self) -> &dyn Steps {
        match self {
            Driver::Transfer(driver) => driver.as_ref(),
            Driver::Query(query) => query.as_ref(),
        }
    }

    /// The driver, whatever its kind, to run.
    fn get_mut(&mut self) -> &mut dyn Steps {
        match self {
            Driver::Transfer(driver) => driver.as_mut(),
            Driver::Query(query) => query.as_mut(),
        }
    }
}

fn random_other(me: AccountId, rng: &mut ChaCha8Rng, accounts: &[AccountId]) -> AccountId {
    loop {
        let to = *accounts.choose(rng).expect("accounts");
        if to != me {
            return to;
        }
    }
}

fn memo(now: u64) -> Memo {
    Memo(format!("at {now}").into_bytes())
}

/// A short think time between operations, varied by the clock.
fn think_time(now: u64) -> u64 {
    1 + now % 30
}
