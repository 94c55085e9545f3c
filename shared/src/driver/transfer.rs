//! Driving one transfer to its end (R9 for the client): once a signed transfer for a seq may
//! have reached an elder, the wallet never signs another for that seq; the driver keeps
//! driving that one (sending lagging elders the debits they lack, waiting out refusals that
//! may change) until its debit is registered, a rival of the account is found and completed
//! instead, or it is certain that no proof can form.
//!
//! A send goes: a transfer left in flight is resumed first; otherwise the balance `f + 1`
//! elders agree on tells what may be spent, the transfer is built and recorded in flight (the
//! wallet is saved before anything leaves), certified by `n − f` shares, and registered with
//! `n − f` elders. A seq the elders say is used is settled from the account's history.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::asking::{Asking, Timing};
use super::query::Query;
use super::{
    Drive, DriverError, Payment, Progress, Ready, Receipt, ShareCollector, Signer, Steps, Unsaved,
    WalletState,
};
use crate::crypto;
use crate::messages::{AccountReport, ClientReply, ClientRequest};
use crate::network::{Network, Section};
use crate::rejection::Rejection;
use crate::types::{AccountId, Amount, DebitProof, ElderIndex, SignedTransfer, TransferId};

/// What a transfer driver is asked to do.
#[derive(Clone, Debug)]
pub enum Goal {
    /// Pay from the wallet; a transfer it left in flight is completed first.
    Send(Payment),
    /// Certify a transfer signed elsewhere (the caller tracks its seqs), and register its debit
    /// proof unless `register` is false; a conflict is an error.
    Complete {
        /// The transfer.
        signed: SignedTransfer,
        /// Whether to register the proof once certified.
        register: bool,
    },
    /// Register a debit proof with its sender's section.
    Register(DebitProof),
}

/// What the agreed balance is asked for.
#[derive(Clone, Debug)]
enum Purpose {
    /// Is the transfer left in flight still open, or was its seq used?
    Resume(SignedTransfer),
    /// How much may be spent at the next seq?
    Spend(Payment),
    /// Has the seq the elders say is used been applied by `f + 1` of them?
    Settle(SignedTransfer),
}

/// What a registered debit ends the send with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ending {
    /// Its receipt.
    Receipt,
    /// Its receipt, without registering (certify only).
    Certified,
    /// A resumed transfer that is not the one asked for.
    Resumed,
    /// A rival of the transfer asked for, completed instead.
    Conflict,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Asking the balance; `loop_deadline_ms` is when asking again stops, once it has begun.
    Balance {
        query: Box<Query>,
        purpose: Purpose,
        loop_deadline_ms: Option<u64>,
    },
    Certifying {
        collector: Box<ShareCollector>,
        asking: Asking,
    },
    Registering {
        proof: Box<DebitProof>,
        id: TransferId,
        asking: Asking,
        registered: BTreeSet<ElderIndex>,
    },
    History {
        query: Box<Query>,
        signed: Box<SignedTransfer>,
        report: AccountReport,
    },
    Done,
}

/// A transfer driver: one send, certify or registration.
#[derive(Clone, Debug)]
pub struct TransferDriver {
    network: Arc<Network>,
    /// What signs, for a send; `None` when the caller tracks the account.
    key: Option<Signer>,
    account: AccountId,
    wallet: WalletState,
    timing: Timing,
    phase: Phase,
    ending: Ending,
    refusals: Vec<(ElderIndex, Rejection)>,
    wallet_changed: bool,
    refused_for_funds: bool,
    waited_out: bool,
    certified: Option<DebitProof>,
    /// Transfers this driver has tried to certify: a rival is completed once, never in turn
    /// with the transfer it conflicts with (two of an account's transfers that split the
    /// elders between them can never be certified, R9).
    tried: BTreeSet<TransferId>,
    outcome: Option<Result<Receipt, DriverError>>,
    next_tag: u64,
}

impl TransferDriver {
    /// Starts `goal` at `now_ms` for the account of `key` (a send) with its wallet state, or for
    /// the sender of the transfer given (certify, register) with `wallet` holding its deps.
    /// The first [`Steps::handle_timeout`] sends the first requests.
    pub fn new(
        network: Arc<Network>,
        key: Option<Signer>,
        wallet: WalletState,
        goal: Goal,
        timing: Timing,
        now_ms: u64,
    ) -> TransferDriver {
        let account = match (&goal, &key) {
            (Goal::Send(_), Some(signer)) => signer.account(),
            (Goal::Send(_), None) => panic!("a send needs the account key"),
            (Goal::Complete { signed, .. }, _) => signed.transfer.from,
            (Goal::Register(proof), _) => proof.transfer().from,
        };
        let mut driver = TransferDriver {
            network,
            key,
            account,
            wallet,
            timing,
            phase: Phase::Done,
            ending: Ending::Receipt,
            refusals: Vec::new(),
            wallet_changed: false,
            refused_for_funds: false,
            waited_out: false,
            certified: None,
            tried: BTreeSet::new(),
            outcome: None,
            next_tag: 0,
        };
        match goal {
            Goal::Send(payment) => match driver.wallet.pending().cloned() {
                Some(pending) => {
                    let asked = &pending.transfer;
                    // Most likely the same command run again after a failure: never pay twice.
                    let same = (asked.to, asked.amount, &asked.memo, asked.window)
                        == (payment.to, payment.amount, &payment.memo, payment.window);
                    if !same {
                        driver.ending = Ending::Resumed;
                    }
                    driver.ask_balance(Purpose::Resume(pending), now_ms, None);
                }
                None => driver.ask_balance(Purpose::Spend(payment), now_ms, None),
            },
            Goal::Complete { signed, register } => {
                if !register {
                    driver.ending = Ending::Certified;
                }
                driver.certify(signed, now_ms);
            }
            Goal::Register(proof) => driver.register(proof, now_ms),
        }
        driver
    }

    /// The wallet state as the driver left it: save it when [`Ready::wallet_changed`] says.
    pub fn wallet(&self) -> &WalletState {
        &self.wallet
    }

    /// Whether an elder first refused the transfer for funds it did not have yet and the
    /// transfer was certified all the same, once it caught up.
    pub fn waited_out_a_refusal(&self) -> bool {
        self.waited_out
    }

    /// The debit proof this driver combined, if it got that far (a registration that then
    /// failed may still have reached some elders).
    pub fn certified(&self) -> Option<&DebitProof> {
        self.certified.as_ref()
    }

    /// The transfer being certified, if certifying: for diagnostics.
    pub fn certifying(&self) -> Option<&ShareCollector> {
        match &self.phase {
            Phase::Certifying { collector, .. } => Some(collector),
            _ => None,
        }
    }

    fn section_of(&self, account: &AccountId) -> usize {
        self.network.section_index_of(account)
    }

    fn home(&self) -> &Section {
        self.network.section_of(&self.account)
    }

    fn tags_from(&mut self, next: u64) {
        self.next_tag = self.next_tag.max(next);
    }

    fn finish(&mut self, outcome: Result<Receipt, DriverError>) {
        self.phase = Phase::Done;
        self.outcome = Some(outcome);
    }

    fn change_wallet(&mut self, change: impl FnOnce(&mut WalletState)) {
        change(&mut self.wallet);
        self.wallet_changed = true;
    }

    /// Asks the home section the account's balance from `at_ms`, for `purpose`.
    fn ask_balance(&mut self, purpose: Purpose, at_ms: u64, loop_deadline_ms: Option<u64>) {
        let request = ClientRequest::Balance { account: self.account };
        let section = self.section_of(&self.account);
        let query = Query::new(&self.network, section, request, self.timing, self.next_tag, at_ms);
        self.phase = Phase::Balance { query: Box::new(query), purpose, loop_deadline_ms };
    }

    /// Asks again after a pause, or gives up with `problem` once `loop_deadline_ms` is past.
    fn ask_balance_again(
        &mut self,
        purpose: Purpose,
        now_ms: u64,
        loop_deadline_ms: u64,
        give_up: impl FnOnce(&Self) -> DriverError,
    ) {
        if now_ms >= loop_deadline_ms {
            let error = give_up(self);
            return self.finish(Err(error));
        }
        let at_ms = now_ms.saturating_add(self.timing.retry_ms);
        self.ask_balance(purpose, at_ms, Some(loop_deadline_ms));
    }

    fn on_balance(
        &mut self,
        report: AccountReport,
        purpose: Purpose,
        loop_deadline_ms: Option<u64>,
        now_ms: u64,
    ) {
        let loop_deadline_ms =
            loop_deadline_ms.unwrap_or_else(|| now_ms.saturating_add(self.timing.patience_ms));
        match purpose {
            Purpose::Resume(pending) if report.next_seq <= pending.transfer.seq => {
                // Saved again before it is sent again: the shell may hold it in memory only
                // (an earlier save failed), and a transfer must be durable before it leaves.
                self.change_wallet(|wallet| wallet.set_pending(Some(pending.clone())));
                self.certify(pending, now_ms)
            }
            Purpose::Resume(signed) | Purpose::Settle(signed)
                if report.next_seq > signed.transfer.seq =>
            {
                self.read_debit(signed, report, now_ms)
            }
            Purpose::Resume(signed) | Purpose::Settle(signed) => {
                let (seq, transfer) = (signed.transfer.seq, crypto::transfer_id(&signed));
                let give_up = move |_: &Self| DriverError::InFlight {
                    transfer,
                    seq,
                    problem: format!("elders disagree whether seq {seq} is used"),
                };
                self.ask_balance_again(Purpose::Settle(signed), now_ms, loop_deadline_ms, give_up)
            }
            Purpose::Spend(payment) => {
                self.wallet.observe_next_seq(report.next_seq);
                let Some(spendable) = self.wallet.spendable(report.balance, report.next_seq) else {
                    // The agreeing elders lag by more debits than the wallet keeps.
                    let purpose = Purpose::Spend(payment);
                    let seq = report.next_seq;
                    let give_up = move |driver: &Self| {
                        let problem = format!("its elders have not applied seq {seq} yet");
                        DriverError::unreachable(driver.home(), driver.timing, problem)
                    };
                    return self.ask_balance_again(purpose, now_ms, loop_deadline_ms, give_up);
                };
                self.spend(payment, spendable, now_ms)
            }
        }
    }

    /// Builds the transfer, records it in flight and certifies it; an overspend is refused
    /// here, before anything is signed: once sent, a transfer must be driven to its end, and
    /// this one could only wait for credits.
    fn spend(&mut self, payment: Payment, balance: Amount, now_ms: u64) {
        if payment.amount > balance {
            let rejection = Rejection::InsufficientFunds { balance, amount: payment.amount };
            return self.finish(Err(DriverError::Invalid(rejection)));
        }
        let signer = self.key.as_ref().expect("a send has its signer");
        let seq = self.wallet.next_seq();
        match signer.build(&self.network, payment, seq) {
            Ok(signed) => {
                self.change_wallet(|wallet| wallet.set_pending(Some(signed.clone())));
                self.certify(signed, now_ms);
            }
            Err(rejection) => self.finish(Err(DriverError::Invalid(rejection))),
        }
    }

    fn certify(&mut self, signed: SignedTransfer, now_ms: u64) {
        let section = self.section_of(&signed.transfer.from);
        let elders = self.network.sections[section].elder_count();
        let request = ClientRequest::Validate { transfer: signed.clone(), deps: Vec::new() };
        let asking = Asking::new(section, elders, &request, self.next_tag, self.timing, now_ms);
        let collector = Box::new(ShareCollector::new(self.network.clone(), signed));
        self.tried.insert(collector.transfer_id());
        self.phase = Phase::Certifying { collector, asking };
    }

    fn on_validate_answer(
        &mut self,
        elder: ElderIndex,
        reply: Result<ClientReply, String>,
        request: ClientRequest,
        now_ms: u64,
    ) {
        let Phase::Certifying { collector, asking } = &mut self.phase else {
            return;
        };
        let reply = match reply {
            Err(_) => return asking.again(elder, request, now_ms),
            Ok(ClientReply::Rejected(rejection)) if rejection.is_retryable() => {
                self.refused_for_funds |= matches!(rejection, Rejection::InsufficientFunds { .. });
                let deps = self.wallet.deps_for(&rejection);
                let transfer = collector.signed().clone();
                return asking.again(elder, ClientRequest::Validate { transfer, deps }, now_ms);
            }
            Ok(reply) => reply,
        };
        match collector.add(elder, reply) {
            Progress::Waiting => {}
            // Tried already: wait for the shares that may still come, until the patience ends.
            Progress::Conflict(rival) if self.tried.contains(&crypto::transfer_id(&rival)) => {}
            Progress::Certified(proof) => {
                self.waited_out = self.refused_for_funds;
                self.certified = Some(proof.clone());
                if self.ending == Ending::Certified {
                    return self.finish(Ok(Receipt::of(proof)));
                }
                self.register(proof, now_ms);
            }
            Progress::Conflict(rival) if self.key.is_some() => {
                // Finish the transfer the elders hold so the account moves on, and report
                // the conflict.
                self.ending = Ending::Conflict;
                self.change_wallet(|wallet| wallet.set_pending(Some(rival.clone())));
                self.certify(rival, now_ms);
            }
            Progress::Conflict(rival) => {
                let (seq, rival) = (rival.transfer.seq, crypto::transfer_id(&rival));
                self.finish(Err(DriverError::Conflict { seq, rival }));
            }
            // More than f elders hold the seq used: by this transfer (certified and applied
            // by an earlier attempt) or by a rival; the history says which, with or without
            // a wallet.
            Progress::Refused(refusals)
                if refusals.iter().any(|(_, r)| matches!(r, Rejection::StaleSeq { .. })) =>
            {
                let signed = collector.signed().clone();
                self.ask_balance(Purpose::Settle(signed), now_ms, None);
            }
            // The window closed while some elders had signed and others had not: the slot
            // is split, and signing another transfer for it could freeze the account (R9).
            Progress::Refused(_) if !collector.is_certainly_refused() => {
                let (transfer, seq) = (collector.transfer_id(), collector.signed().transfer.seq);
                let problem = format!(
                    "its time window closed while it was being certified ({} elders signed it, \
                     {} refused it as expired)",
                    collector.shared_by().count(),
                    collector.expired_count()
                );
                self.finish(Err(DriverError::InFlight { transfer, seq, problem }));
            }
            // More than f elders refused for good: no proof can form, ever.
            Progress::Refused(refusals) => {
                if self.key.is_some() {
                    self.change_wallet(|wallet| wallet.set_pending(None));
                }
                let prefix = self.home().prefix;
                self.finish(Err(DriverError::refused(prefix, refusals)));
            }
        }
    }

    fn register(&mut self, proof: DebitProof, now_ms: u64) {
        let section = self.section_of(&proof.transfer().from);
        let elders = self.network.sections[section].elder_count();
        let request = ClientRequest::Register { proof: proof.clone(), deps: Vec::new() };
        let asking = Asking::new(section, elders, &request, self.next_tag, self.timing, now_ms);
        self.refusals.clear();
        let (registered, id) = (BTreeSet::new(), crypto::transfer_id(&proof.signed));
        self.phase = Phase::Registering { proof: Box::new(proof), id, asking, registered };
    }

    fn on_register_answer(
        &mut self,
        elder: ElderIndex,
        reply: Result<ClientReply, String>,
        request: ClientRequest,
        now_ms: u64,
    ) {
        let needed = self.home().shares_needed();
        let faults = self.home().faults_max();
        let Phase::Registering { proof, id, asking, registered } = &mut self.phase else {
            return;
        };
        match reply {
            Err(_) => asking.again(elder, request, now_ms),
            // Only an acknowledgement of this very proof counts towards n − f.
            Ok(ClientReply::Registered { transfer }) if transfer == *id => {
                registered.insert(elder);
                if registered.len() >= needed {
                    let proof = (**proof).clone();
                    self.registered(proof);
                }
            }
            Ok(ClientReply::Rejected(rejection)) if rejection.is_retryable() => {
                let deps = self.wallet.deps_for(&rejection);
                let proof = (**proof).clone();
                asking.again(elder, ClientRequest::Register { proof, deps }, now_ms);
            }
            Ok(ClientReply::Rejected(rejection)) => {
                self.refusals.push((elder, rejection));
                if self.refusals.len() > faults {
                    let error = DriverError::refused(self.home().prefix, self.refusals.clone());
                    self.finish(Err(error));
                }
            }
            Ok(_) => {}
        }
    }

    /// `n − f` elders applied the debit: the wallet moves past it.
    fn registered(&mut self, proof: DebitProof) {
        if self.key.is_some() {
            self.change_wallet(|wallet| wallet.finish(proof.clone()));
        }
        let outcome = self.ending_with(proof);
        self.finish(outcome);
    }

    fn ending_with(&self, proof: DebitProof) -> Result<Receipt, DriverError> {
        let transfer = &proof.signed.transfer;
        match self.ending {
            Ending::Receipt | Ending::Certified => Ok(Receipt::of(proof)),
            Ending::Resumed => Err(DriverError::Resumed {
                transfer: crypto::transfer_id(&proof.signed),
                amount: transfer.amount,
                to: transfer.to,
            }),
            Ending::Conflict => Err(DriverError::Conflict {
                seq: transfer.seq,
                rival: crypto::transfer_id(&proof.signed),
            }),
        }
    }

    /// The seq is applied: reads the debit there from the account's history.
    fn read_debit(&mut self, signed: SignedTransfer, report: AccountReport, now_ms: u64) {
        let seq = signed.transfer.seq;
        let request =
            ClientRequest::History { account: self.account, debits_from: seq, credits_after: None };
        let section = self.section_of(&self.account);
        let query = Query::new(&self.network, section, request, self.timing, self.next_tag, now_ms);
        let (query, signed) = (Box::new(query), Box::new(signed));
        self.phase = Phase::History { query, signed, report };
    }

    fn on_history(&mut self, page: ClientReply, signed: SignedTransfer, report: AccountReport) {
        let seq = signed.transfer.seq;
        let debit = match page {
            ClientReply::History(page) if page.account == self.account => {
                page.debits.into_iter().find(|proof| proof.transfer().seq == seq)
            }
            other => {
                let error = DriverError::unexpected(self.home(), self.timing, other);
                return self.finish(Err(error));
            }
        };
        let Some(proof) = debit else {
            let problem = format!("the debit at seq {seq} is applied but no elder returned it");
            let error = DriverError::unreachable(self.home(), self.timing, problem);
            return self.finish(Err(error));
        };
        self.change_wallet(|wallet| {
            wallet.finish(proof.clone());
            wallet.observe_next_seq(report.next_seq);
        });
        if proof.signed == signed {
            let outcome = self.ending_with(proof);
            return self.finish(outcome);
        }
        let rival = crypto::transfer_id(&proof.signed);
        self.finish(Err(DriverError::Conflict { seq, rival }));
    }

    /// A query phase's driver and what to do with its outcome.
    fn on_query_outcome(&mut self, now_ms: u64) {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        match phase {
            Phase::Balance { mut query, purpose, loop_deadline_ms } => match query.take_outcome() {
                None => self.phase = Phase::Balance { query, purpose, loop_deadline_ms },
                Some(Err(error)) => self.query_failed(error, &purpose),
                Some(Ok(ClientReply::Balance(report))) if report.account == self.account => {
                    self.on_balance(report, purpose, loop_deadline_ms, now_ms)
                }
                Some(Ok(other)) => {
                    let error = DriverError::unexpected(self.home(), self.timing, other);
                    self.finish(Err(error))
                }
            },
            Phase::History { mut query, signed, report } => match query.take_outcome() {
                None => self.phase = Phase::History { query, signed, report },
                Some(Err(error)) => self.finish(Err(error)),
                Some(Ok(page)) => self.on_history(page, *signed, report),
            },
            other => self.phase = other,
        }
    }

    /// A balance query found no agreement: a transfer already sent stays in flight.
    fn query_failed(&mut self, error: DriverError, purpose: &Purpose) {
        let error = match (purpose, error) {
            (Purpose::Resume(signed) | Purpose::Settle(signed), error) => {
                let (seq, transfer) = (signed.transfer.seq, crypto::transfer_id(signed));
                DriverError::InFlight { transfer, seq, problem: error.to_string() }
            }
            (Purpose::Spend(_), error) => error,
        };
        self.finish(Err(error));
    }

    /// Certifying or registering ran out of patience.
    fn step_gave_up(&mut self, problem: String) {
        match &self.phase {
            Phase::Certifying { collector, .. } if self.key.is_some() => {
                let signed = collector.signed();
                let (seq, transfer) = (signed.transfer.seq, collector.transfer_id());
                self.finish(Err(DriverError::InFlight { transfer, seq, problem }))
            }
            _ => {
                let error = DriverError::unreachable(self.home(), self.timing, problem);
                self.finish(Err(error))
            }
        }
    }
}

impl Steps for TransferDriver {
    fn handle_reply(
        &mut self,
        elder: ElderIndex,
        tag: u64,
        reply: Result<ClientReply, String>,
        now_ms: u64,
    ) {
        match &mut self.phase {
            Phase::Balance { query, .. } | Phase::History { query, .. } => {
                query.handle_reply(elder, tag, reply, now_ms);
                self.on_query_outcome(now_ms);
            }
            Phase::Certifying { asking, .. } | Phase::Registering { asking, .. } => {
                let Some(request) = asking.answered(elder, tag, &reply) else {
                    return;
                };
                if matches!(self.phase, Phase::Certifying { .. }) {
                    self.on_validate_answer(elder, reply, request, now_ms);
                } else {
                    self.on_register_answer(elder, reply, request, now_ms);
                }
            }
            Phase::Done => {}
        }
    }

    fn handle_timeout(&mut self, now_ms: u64) {
        match &mut self.phase {
            Phase::Balance { query, .. } | Phase::History { query, .. } => {
                query.handle_timeout(now_ms);
                let next = query.next_tag();
                self.tags_from(next);
                self.on_query_outcome(now_ms);
            }
            Phase::Certifying { asking, .. } | Phase::Registering { asking, .. } => {
                if asking.gave_up(now_ms) {
                    let problem = asking.last_problem.clone();
                    return self.step_gave_up(problem);
                }
                asking.handle_timeout(now_ms);
                let next = asking.next_tag();
                self.tags_from(next);
            }
            Phase::Done => {}
        }
    }

    fn poll_timeout(&self) -> Option<u64> {
        match &self.phase {
            Phase::Balance { query, .. } | Phase::History { query, .. } => query.poll_timeout(),
            Phase::Certifying { asking, .. } | Phase::Registering { asking, .. } => {
                Some(asking.poll_timeout())
            }
            Phase::Done => None,
        }
    }

    fn poll(&mut self) -> Ready {
        let requests = match &mut self.phase {
            Phase::Balance { query, .. } | Phase::History { query, .. } => {
                query.poll().unsaved.saved()
            }
            Phase::Certifying { asking, .. } | Phase::Registering { asking, .. } => {
                asking.take_outgoing()
            }
            Phase::Done => Vec::new(),
        };
        let wallet_changed = std::mem::take(&mut self.wallet_changed);
        Ready { wallet_changed, unsaved: Unsaved { requests } }
    }
}

impl Drive for TransferDriver {
    type Outcome = Result<Receipt, DriverError>;

    fn take_outcome(&mut self) -> Option<Self::Outcome> {
        self.outcome.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{account_id, Outgoing};
    use crate::ledger::tests::fixtures::{register, validate, Fixture, HOME};
    use crate::ledger::Ledger;
    use crate::types::Seq;
    use ed25519_dalek::SigningKey;

    const TIMING: Timing = Timing { answer_ms: 250, retry_ms: 100, patience_ms: 5_000 };

    /// What one poll of the driver handed out.
    struct Polled {
        wallet_changed: bool,
        validates: usize,
        pending: Option<SignedTransfer>,
    }

    /// Runs `driver` against `elders` (answering in index order, at once) until it ends;
    /// `before` may change the elders as the clock moves.
    fn run(
        driver: &mut TransferDriver,
        elders: &mut [Ledger],
        mut before: impl FnMut(u64, &mut [Ledger]),
    ) -> (Result<Receipt, DriverError>, Vec<Polled>) {
        let (mut now, mut polls) = (0, Vec::new());
        loop {
            before(now, elders);
            driver.handle_timeout(now);
            let ready = driver.poll();
            let wallet_changed = ready.wallet_changed;
            let requests = ready.unsaved.saved();
            let validates = requests
                .iter()
                .filter(|outgoing| matches!(outgoing.request, ClientRequest::Validate { .. }))
                .count();
            let pending = driver.wallet().pending().cloned();
            polls.push(Polled { wallet_changed, validates, pending });
            for Outgoing { elder, tag, request, .. } in requests {
                let (reply, _) = elders[elder.0 as usize].handle_client(request, now);
                driver.handle_reply(elder, tag, Ok(reply), now);
            }
            if let Some(outcome) = driver.take_outcome() {
                return (outcome, polls);
            }
            now = driver.poll_timeout().expect("a driver without an outcome waits").max(now);
        }
    }

    fn send(
        fx: &Fixture,
        key: &SigningKey,
        wallet: WalletState,
        to: AccountId,
        amount: u64,
    ) -> TransferDriver {
        let goal = Goal::Send(Payment::new(to, Amount(amount)));
        let signer = Some(Signer::Key(key.clone()));
        TransferDriver::new(fx.network.clone(), signer, wallet, goal, TIMING, 0)
    }

    #[test]
    fn a_send_is_saved_in_flight_before_any_validate_leaves_and_ends_registered() {
        let fx = Fixture::new(90);
        let mut elders = fx.elders(HOME);
        let to = fx.account_in(HOME);
        let mut driver = send(&fx, &fx.faucet, WalletState::default(), to, 7);
        let (outcome, polls) = run(&mut driver, &mut elders, |_, _| {});
        let receipt = outcome.expect("sent");
        let first = polls.iter().position(|poll| poll.validates > 0).expect("validated");
        assert!(polls[first].wallet_changed, "the wallet is saved in the same step, first");
        assert_eq!(polls[first].pending.as_ref(), Some(&receipt.proof.signed));
        assert!(polls[..first].iter().all(|poll| poll.pending.is_none()));
        assert_eq!(driver.wallet().next_seq(), Seq(2));
        assert_eq!(driver.wallet().pending(), None);
        assert!(elders.iter().all(|elder| elder.report(to).balance == Amount(7)));
    }

    #[test]
    fn lagging_elders_that_refuse_for_funds_are_waited_out_not_counted_as_refusals() {
        // Bob was just paid 100: elders 1 and 2 applied the credit, 0 and 3 not yet.
        let fx = Fixture::new(91);
        let mut elders = fx.elders(HOME);
        let bob = fx.key_in(HOME);
        let paid = fx.certify(fx.signed(&fx.faucet, account_id(&bob), 100, 1));
        for index in [1, 2] {
            register(&mut elders[index], &paid, 0);
        }
        let mut driver = send(&fx, &bob, WalletState::default(), fx.account_in(HOME), 100);
        let (outcome, _) = run(&mut driver, &mut elders, |now, elders| {
            if now >= 1_000 && elders[0].report(account_id(&bob)).balance == Amount::ZERO {
                register(&mut elders[0], &paid, now);
            }
        });
        let receipt = outcome.expect("certified once elder 0 caught up");
        assert_eq!(receipt.seq, Seq(1));
        assert!(driver.waited_out_a_refusal());
    }

    #[test]
    fn a_transfer_left_in_flight_whose_seq_is_used_is_settled_from_history() {
        let fx = Fixture::new(92);
        let mut elders = fx.elders(HOME);
        let to = fx.account_in(HOME);
        let proof = fx.pay(&mut elders, &fx.faucet, to, 9, 1);
        let mut wallet = WalletState::default();
        wallet.set_pending(Some(proof.signed.clone()));
        let mut driver = send(&fx, &fx.faucet, wallet, to, 9);
        let (outcome, polls) = run(&mut driver, &mut elders, |_, _| {});
        assert_eq!(outcome, Ok(Receipt::of(proof)));
        assert!(polls.iter().all(|poll| poll.validates == 0), "nothing is signed again");
        assert_eq!((driver.wallet().next_seq(), driver.wallet().pending()), (Seq(2), None));
    }

    #[test]
    fn completing_again_a_transfer_an_earlier_attempt_applied_returns_its_receipt() {
        // A tool without a wallet retries a transfer whose first attempt registered it but
        // did not hear back: the elders say its seq is used, and that is no refusal.
        let fx = Fixture::new(96);
        let mut elders = fx.elders(HOME);
        let proof = fx.pay(&mut elders, &fx.faucet, fx.account_in(HOME), 5, 1);
        let goal = Goal::Complete { signed: proof.signed.clone(), register: true };
        let mut driver =
            TransferDriver::new(fx.network.clone(), None, WalletState::default(), goal, TIMING, 0);
        let (outcome, _) = run(&mut driver, &mut elders, |_, _| {});
        assert_eq!(outcome, Ok(Receipt::of(proof)));
    }

    #[test]
    fn a_transfer_resumed_from_memory_is_saved_again_before_it_is_sent_again() {
        let fx = Fixture::new(95);
        let mut elders = fx.elders(HOME);
        let to = fx.account_in(HOME);
        let pending = fx.signed(&fx.faucet, to, 4, 1);
        let mut wallet = WalletState::default();
        wallet.set_pending(Some(pending.clone()));
        let mut driver = send(&fx, &fx.faucet, wallet, to, 4);
        let (outcome, polls) = run(&mut driver, &mut elders, |_, _| {});
        assert_eq!(outcome.expect("resumed").proof.signed, pending);
        let first = polls.iter().position(|poll| poll.validates > 0).expect("validated");
        assert!(polls[first].wallet_changed, "saved in the step that sends it");
    }

    #[test]
    fn a_rival_the_elders_hold_is_completed_and_reported_as_the_conflict() {
        let fx = Fixture::new(93);
        let mut elders = fx.elders(HOME);
        let rival = fx.signed(&fx.faucet, fx.account_in(HOME), 3, 1);
        for elder in elders.iter_mut() {
            elder.handle_client(validate(rival.clone()), 0);
        }
        let mut driver = send(&fx, &fx.faucet, WalletState::default(), fx.account_in(HOME), 8);
        let (outcome, _) = run(&mut driver, &mut elders, |_, _| {});
        let id = crypto::transfer_id(&rival);
        assert_eq!(outcome, Err(DriverError::Conflict { seq: Seq(1), rival: id }));
        let kept = driver.wallet().recent().last().expect("the rival's debit is kept");
        assert_eq!(kept.signed, rival);
        assert_eq!(driver.wallet().next_seq(), Seq(2));
    }

    #[test]
    fn two_transfers_splitting_the_elders_end_in_flight_without_completing_each_other_in_turn() {
        let fx = Fixture::new(94);
        let mut elders = fx.elders(HOME);
        let first = fx.signed(&fx.faucet, fx.account_in(HOME), 3, 1);
        for elder in &mut elders[..2] {
            elder.handle_client(validate(first.clone()), 0);
        }
        // The wallet lost track of `first`: it signs another at the same seq (not honest).
        let mut driver = send(&fx, &fx.faucet, WalletState::default(), fx.account_in(HOME), 8);
        let (outcome, _) = run(&mut driver, &mut elders, |_, _| {});
        assert!(matches!(outcome, Err(DriverError::InFlight { seq: Seq(1), .. })), "{outcome:?}");
    }
}
