//! A simulated party to bundles (R12, R13): it owns fresh funded accounts, puts them into
//! bundles and drives the same drivers `bank bundle submit` runs (a wallet-less transfer
//! driver per lock, then the referee's outcome query), and misbehaves on purpose: a client
//! that vanishes after locking some legs, a deadline that passes before the locks, two
//! bundles racing for one payer's seq, and a lock certificate forged for the referee.

use std::collections::VecDeque;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use shared::driver::bundle::{OutcomeQuery, PartialBundle, Verdict};
use shared::driver::{
    account_id, Drive, Goal, Outgoing, Steps, Timing, TransferDriver, WalletState,
};
use shared::messages::ClientReply;
use shared::network::Network;
use shared::types::{AccountId, Amount, BlsSignature, DebitProof, ElderIndex, Leg, Seq};

use super::client::{ClientEvent, Step, RESEND_MS};

/// Operation numbers per bundle step, and tags per driver, as the clients use them.
const OP_STRIDE: u64 = 1 << 40;
const DRIVER_TAGS: u64 = 1 << 32;
/// How long a lock or the outcome query keeps trying, beyond the deadline for the outcome.
const PATIENCE_MS: u64 = 30_000;
/// When the bundler starts, so the faucet has funded its accounts.
pub const START_MS: u64 = 3_000;

/// What a bundle plan does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Every payer signs, every leg is locked, the referee decides.
    Honest,
    /// Some legs are locked, then the client vanishes: the elders must get it decided.
    Vanishes,
    /// The deadline passes before (most) locks: the referee decides abort.
    Late,
    /// Two bundles share their first payer at one seq: at most one lock takes the slot.
    Racing,
    /// The referee is shown a forged lock certificate besides the real ones.
    ForgedLock,
}

const PLANS: [Plan; 5] = [Plan::Honest, Plan::Vanishes, Plan::Late, Plan::Racing, Plan::ForgedLock];

enum State {
    Idle,
    /// Lock drivers, by bundle and leg.
    Locking {
        plan: Plan,
        bundles: Vec<PartialBundle>,
        drivers: Vec<(usize, TransferDriver)>,
    },
    /// The referee's outcome queries, one per bundle.
    Deciding {
        queries: Vec<OutcomeQuery>,
    },
}

/// The bundler.
pub struct SimBundler {
    network: Arc<Network>,
    /// Fresh accounts, each paying in one bundle (or two racing ones) at seq 1.
    keys: VecDeque<SigningKey>,
    state: State,
    /// The current operation number; replies to older ones are ignored.
    pub op: u64,
    bundles_left: u32,
}

impl SimBundler {
    /// A bundler that makes `bundles` bundles from `keys` (funded by the faucet).
    pub fn new(network: Arc<Network>, keys: Vec<SigningKey>, bundles: u32) -> SimBundler {
        SimBundler { network, keys: keys.into(), state: State::Idle, op: 0, bundles_left: bundles }
    }

    /// Whether it has nothing under way.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Whether it has nothing more to do.
    pub fn is_done(&self) -> bool {
        self.is_idle() && self.bundles_left == 0
    }

    fn timing() -> Timing {
        Timing { answer_ms: RESEND_MS, retry_ms: 100, patience_ms: PATIENCE_MS }
    }

    /// A timer fires; `healing` forbids new bundles.
    pub fn wake(&mut self, op: u64, now: u64, rng: &mut ChaCha8Rng, healing: bool) -> Step {
        let mut step = Step::default();
        if op != self.op {
            return step;
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle if healing || self.bundles_left == 0 => {}
            State::Idle => self.start_bundle(now, rng, &mut step),
            mut state => {
                state_drivers(&mut state, |driver| driver.handle_timeout(now));
                self.state = state;
                self.advance(now, rng, &mut step);
            }
        }
        step
    }

    /// An elder's reply to operation `op` arrives.
    pub fn reply(
        &mut self,
        elder: ElderIndex,
        op: u64,
        reply: ClientReply,
        now: u64,
        rng: &mut ChaCha8Rng,
    ) -> Step {
        let mut step = Step::default();
        let Some(offset) = op.checked_sub(self.op).filter(|offset| *offset < OP_STRIDE) else {
            return step;
        };
        let (k, tag) = ((offset / DRIVER_TAGS) as usize, offset % DRIVER_TAGS);
        let mut index = 0;
        state_drivers(&mut self.state, |driver| {
            if index == k {
                driver.handle_reply(elder, tag, Ok(reply.clone()), now);
            }
            index += 1;
        });
        self.advance(now, rng, &mut step);
        step
    }

    /// Takes fresh accounts into a new bundle (two for a race) and starts locking.
    fn start_bundle(&mut self, now: u64, rng: &mut ChaCha8Rng, step: &mut Step) {
        let plan = *PLANS.choose(rng).expect("plans");
        let legs = rng.gen_range(2..=3usize).min(self.keys.len());
        if legs < 2 {
            self.bundles_left = 0;
            return;
        }
        let payers: Vec<SigningKey> = self.keys.drain(..legs).collect();
        let deadline_ms = match plan {
            Plan::Late => now + rng.gen_range(1..100),
            _ => now + rng.gen_range(3_000..15_000),
        };
        let referee = self.network.sections.choose(rng).expect("sections").prefix;
        let ring = |payers: &[SigningKey], rng: &mut ChaCha8Rng| {
            let mut partial = PartialBundle::new(deadline_ms, referee, rng.gen());
            for (i, payer) in payers.iter().enumerate() {
                let to = account_id(&payers[(i + 1) % payers.len()]);
                let amount = Amount(rng.gen_range(1..=1_000));
                let leg = Leg { from: account_id(payer), to, amount, seq: Seq::FIRST };
                partial.add_leg(leg).expect("a ring of distinct payers");
            }
            for payer in payers {
                partial.sign(payer, None, &self.network.genesis).expect("a payer");
            }
            partial
        };
        let mut bundles = vec![ring(&payers, rng)];
        if plan == Plan::Racing {
            // The rival pays from the same first account, at the same seq, to someone else.
            let mut rivals = vec![payers[0].clone()];
            rivals.extend(self.keys.drain(..1.min(self.keys.len())));
            if rivals.len() == 2 {
                bundles.push(ring(&rivals, rng));
            }
        }
        for partial in &bundles {
            step.events.push(ClientEvent::BundleMade { bundle: Box::new(partial.bundle.clone()) });
        }
        let mut drivers = Vec::new();
        for (b, partial) in bundles.iter().enumerate() {
            for leg in 0..partial.bundle.legs.len() as u8 {
                // A vanishing client locks only some legs, at least one.
                if plan == Plan::Vanishes && leg > 0 && rng.gen_bool(0.5) {
                    continue;
                }
                let signed = partial.lock(leg).expect("signed by its payer");
                let goal = Goal::Complete { signed, register: true };
                let wallet = WalletState::default();
                let timing = Self::timing();
                let driver =
                    TransferDriver::new(self.network.clone(), None, wallet, goal, timing, now);
                drivers.push((b, driver));
            }
        }
        self.bundles_left -= 1;
        self.state = State::Locking { plan, bundles, drivers };
        state_drivers(&mut self.state, |driver| driver.handle_timeout(now));
        self.advance(now, rng, step);
    }

    /// Sends what the drivers ask, moves to the next step once they are all done, and sets
    /// the next wake.
    fn advance(&mut self, now: u64, rng: &mut ChaCha8Rng, step: &mut Step) {
        let mut index = 0u64;
        let op = self.op;
        state_drivers(&mut self.state, |driver| {
            for Outgoing { section, elder, tag, request } in driver.poll().unsaved.saved() {
                step.requests.push((section, elder, op + index * DRIVER_TAGS + tag, request));
            }
            index += 1;
        });
        let mut wake = None;
        state_drivers(&mut self.state, |driver| {
            if let Some(at) = driver.poll_timeout() {
                wake = Some(wake.map_or(at, |w: u64| w.min(at)));
            }
        });
        if let Some(at) = wake {
            step.wake_at = Some(at.max(now));
            return;
        }
        self.op += OP_STRIDE;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Locking { plan, bundles, drivers } => {
                self.decide(plan, bundles, drivers, now, rng, step)
            }
            State::Deciding { mut queries } => {
                for query in &mut queries {
                    if let Some(Ok(Verdict::Decided(certificate))) = query.take_outcome() {
                        step.events.push(ClientEvent::BundleDecided { certificate });
                    }
                }
                step.wake_at = Some(now + RESEND_MS);
            }
            State::Idle => step.wake_at = Some(now + RESEND_MS),
        }
    }

    /// The locks are done: report them, and show them to the referee unless the client
    /// vanishes.
    fn decide(
        &mut self,
        plan: Plan,
        bundles: Vec<PartialBundle>,
        drivers: Vec<(usize, TransferDriver)>,
        now: u64,
        rng: &mut ChaCha8Rng,
        step: &mut Step,
    ) {
        let mut locks: Vec<Vec<DebitProof>> = vec![Vec::new(); bundles.len()];
        for (b, mut driver) in drivers {
            let registered = driver.take_outcome().is_some_and(|outcome| outcome.is_ok());
            if let Some(proof) = driver.certified() {
                let proof = Box::new(proof.clone());
                step.events.push(ClientEvent::Certified { proof, probe: None });
            }
            if registered {
                locks[b].push(driver.certified().expect("a registered lock").clone());
            }
        }
        if plan == Plan::Vanishes {
            step.wake_at = Some(now + RESEND_MS);
            return;
        }
        let mut queries = Vec::new();
        // With no lock there is nothing to decide (the referee refuses to hear of it).
        for (partial, mut shown) in bundles.into_iter().zip(locks).filter(|(_, l)| !l.is_empty()) {
            if plan == Plan::ForgedLock {
                if let Some(mut forged) = shown.first().cloned() {
                    forged.signature.0[rng.gen_range(0..BlsSignature::LEN)] ^= 1;
                    shown.insert(0, forged);
                }
            }
            let mut timing = Self::timing();
            timing.patience_ms = partial.bundle.deadline_ms.saturating_sub(now) + PATIENCE_MS;
            let query =
                OutcomeQuery::decide(self.network.clone(), partial.bundle, shown, timing, now)
                    .expect("the referee is a section");
            queries.push(query);
        }
        self.state = State::Deciding { queries };
        state_drivers(&mut self.state, |driver| driver.handle_timeout(now));
        self.advance(now, rng, step);
    }

    /// The current step, for diagnostics.
    pub fn describe(&self) -> String {
        match &self.state {
            State::Idle => "idle".to_string(),
            State::Locking { plan, drivers, .. } => format!("{plan:?}: {} locks", drivers.len()),
            State::Deciding { queries } => format!("deciding {} bundles", queries.len()),
        }
    }
}

/// Every driver of the current step, in order.
fn state_drivers(state: &mut State, mut each: impl FnMut(&mut dyn Steps)) {
    match state {
        State::Idle => {}
        State::Locking { drivers, .. } => drivers.iter_mut().for_each(|(_, d)| each(d)),
        State::Deciding { queries } => queries.iter_mut().for_each(|q| each(q)),
    }
}

/// The keys of the bundler's accounts, spread over the sections.
pub fn keys(rng: &mut ChaCha8Rng, network: &Network, count: usize) -> Vec<SigningKey> {
    (0..count)
        .map(|i| {
            let prefix = network.sections[i % network.sections.len()].prefix;
            shared::genesis::account_key_in(rng, prefix)
        })
        .collect()
}

/// Every account of these keys.
pub fn accounts(keys: &[SigningKey]) -> Vec<AccountId> {
    keys.iter().map(account_id).collect()
}
