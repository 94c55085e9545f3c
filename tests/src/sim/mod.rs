//! A seeded, deterministic simulation of whole sections in one process.
//!
//! One seed fixes everything: keys, which elders are Byzantine and how, client behaviour,
//! message drops, duplicates and delays, crash times. Virtual time only moves between events.
//! After the chaos phase the faults heal, the system settles, and [`check`] asserts every
//! invariant of DESIGN.md.

mod bundler;
mod check;
mod client;
mod elder;
mod net;
mod stats;

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::codec;
use shared::crypto;
use shared::driver::multisig::create_policy;
use shared::driver::{account_id, Signer};
use shared::genesis::{account_key_in, deal_network, offline_elder, Shape};
use shared::ledger::ElderId;
use shared::limits::CLOCK_SKEW_MS_MAX;
use shared::messages::{ClientReply, ClientRequest, PeerMessage};
use shared::network::{faults_max, Network};
use shared::rejection::Rejection;
use shared::types::{AccountId, Amount, DebitProof, ElderIndex, Prefix, Slot, TransferId, Window};

use bundler::SimBundler;
pub use client::Probe;
use client::{ClientEvent, SimClient, Step};
use elder::{Arrival, Byzantine, ReplyTo, Sent, SimElder};
use net::{Event, Faults, Net, Node, Payload};
pub use stats::Stats;

/// The shape of one run, derived from its seed.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Prefix length: `2^len` sections.
    pub prefix_len: u8,
    /// Elders per section.
    pub elders: usize,
    /// Clients besides the faucet.
    pub clients: usize,
    /// Relay clients: unfunded, each spends its whole balance once it has any.
    pub relays: usize,
    /// Transfers each client (and the faucet, after funding) makes.
    pub transfers_per_client: u32,
    /// Network fault rates during chaos.
    pub faults: Faults,
    /// Longest chaos phase, in virtual milliseconds.
    pub chaos_ms_max: u64,
    /// Longest time to settle after healing, in virtual milliseconds.
    pub heal_ms_max: u64,
    /// Fresh accounts the bundler pays from.
    pub bundle_accounts: usize,
    /// Bundles the bundler makes.
    pub bundles: u32,
}

impl SimConfig {
    /// Mostly 2 sections × 4 elders; every fourth seed 4 sections, every tenth 7 elders.
    pub fn for_seed(seed: u64) -> SimConfig {
        SimConfig {
            prefix_len: if seed % 4 == 3 { 2 } else { 1 },
            elders: if seed % 10 == 7 { 7 } else { 4 },
            clients: 4,
            relays: 2,
            transfers_per_client: 24,
            faults: Faults { drop: 0.03, duplicate: 0.02, long_delay: 0.05 },
            chaos_ms_max: 120_000,
            heal_ms_max: 120_000,
            bundle_accounts: 10,
            bundles: 3,
        }
    }
}

/// How often, in virtual milliseconds, the world checks whether it has settled.
const SETTLE_CHECK_MS: u64 = 200;
/// How long an elder gathers inputs into one batch after the first arrives: the group commit.
const BATCH_WINDOW_MS: u64 = 2;
/// How long a partition lasts, and the quiet time between two, in virtual milliseconds.
const PARTITION_MS: std::ops::Range<u64> = 1_000..8_000;
const PARTITION_GAP_MS: std::ops::Range<u64> = 3_000..20_000;
const SUPPLY: Amount = Amount(1_000_000_000_000);
/// Every this-many-th ordinary client is a multi-owner account (R10).
const POLICY_CLIENT_EVERY: usize = 4;

/// Runs one seed to the end and checks every invariant; the error says what broke.
pub fn run(seed: u64) -> Result<Stats, String> {
    let mut world = World::new(seed, SimConfig::for_seed(seed));
    world.run()?;
    world.stats.invariant_checks += check::check(&world)?;
    world.stats.voids_certified = world.voids_certified();
    world.stats.seeds = 1;
    Ok(world.stats)
}

struct World {
    rng: ChaCha8Rng,
    now: u64,
    net: Net,
    network: Arc<Network>,
    config: SimConfig,
    elders: Vec<SimElder>,
    clients: Vec<SimClient>,
    accounts: Vec<AccountId>,
    stats: Stats,
    healing: bool,
    heal_started: u64,
    /// Every debit proof a client combined, by slot.
    certified: HashMap<Slot, DebitProof>,
    /// The transfer each honest elder signed a share for, per slot (R1).
    honest_shares: HashMap<(usize, Slot), TransferId>,
    /// The partition in force, if any: each section's side, and when it ends.
    partition: Option<(Vec<bool>, u64)>,
    /// When the next partition begins.
    next_partition: u64,
    /// The times each elder has a batch scheduled.
    runs: Vec<std::collections::BTreeSet<u64>>,
    /// The party to bundles, and every bundle it made, and the outcomes it was given.
    bundler: SimBundler,
    bundles: Vec<shared::types::Bundle>,
    outcomes: HashMap<shared::types::BundleId, bool>,
}

impl World {
    fn new(seed: u64, config: SimConfig) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let prefixes = Prefix::all_of_len(config.prefix_len);
        let n = config.elders;
        let f = faults_max(n);
        let shape =
            Shape { prefixes: prefixes.clone(), elders: n, supply: SUPPLY, authority: vec![1] };
        let dealt =
            deal_network(&mut rng, shape, offline_elder, |rng| account_key_in(rng, prefixes[0]))
                .expect("simulated map is valid");
        let (network, key_sets, faucet) = (Arc::new(dealt.network), dealt.key_sets, dealt.faucet);
        let mut elders = Vec::new();
        for (k, (prefix, keys)) in prefixes.iter().zip(&key_sets).enumerate() {
            let mut byzantine: Vec<usize> = (0..n).collect();
            byzantine.shuffle(&mut rng);
            byzantine.truncate(f);
            for i in 0..n {
                let id = ElderId { prefix: *prefix, index: ElderIndex(i as u32) };
                // Kinds rotate with seed and section, so every kind shows up every few seeds.
                let kind = byzantine
                    .iter()
                    .position(|b| *b == i)
                    .map(|j| Byzantine::ALL[(seed as usize * 2 + k + j) % Byzantine::ALL.len()]);
                let skew = CLOCK_SKEW_MS_MAX as i64;
                let drift = rng.gen_range(-skew..=skew);
                let key_share = keys.share(i);
                elders.push(SimElder::new(network.clone(), id, key_share, kind, drift));
            }
        }
        let bundler_keys = bundler::keys(&mut rng, &network, config.bundle_accounts);
        let bundler_accounts = bundler::accounts(&bundler_keys);
        let (clients, accounts) = clients(&mut rng, &network, &config, faucet, bundler_accounts);
        let bundler = SimBundler::new(network.clone(), bundler_keys, config.bundles);
        let runs = vec![Default::default(); elders.len()];
        let mut world = World {
            rng,
            now: 0,
            net: Net::default(),
            network,
            config,
            elders,
            clients,
            accounts,
            stats: Stats::default(),
            healing: false,
            heal_started: 0,
            certified: HashMap::new(),
            honest_shares: HashMap::new(),
            partition: None,
            next_partition: 0,
            runs,
            bundler,
            bundles: Vec::new(),
            outcomes: HashMap::new(),
        };
        world.next_partition = world.rng.gen_range(PARTITION_GAP_MS);
        for e in 0..world.elders.len() {
            world.schedule_run(e, 0);
        }
        for c in 0..world.clients.len() {
            let at = world.rng.gen_range(0..50);
            world.net.schedule(at, Node::Client(c), Payload::Wake { op: 0 });
        }
        world.net.schedule(bundler::START_MS, Node::Bundler, Payload::Wake { op: 0 });
        world.schedule_crash();
        world
    }

    /// Distinct voids of aborted legs applied at honest elders (R13).
    fn voids_certified(&self) -> u64 {
        let voids: std::collections::BTreeSet<TransferId> = self
            .elders
            .iter()
            .filter(|elder| elder.is_honest())
            .filter_map(|elder| elder.ledger.as_ref())
            .flat_map(|ledger| ledger.log().filter(|proof| proof.void().is_some()).map(id_of))
            .collect();
        voids.len() as u64
    }

    fn faults(&self) -> Option<Faults> {
        (!self.healing).then_some(self.config.faults)
    }

    fn flat(&self, section: usize, elder: ElderIndex) -> usize {
        section * self.config.elders + elder.0 as usize
    }

    fn flat_of(&self, id: ElderId) -> usize {
        let section = self
            .network
            .sections
            .iter()
            .position(|s| s.prefix == id.prefix)
            .expect("known section");
        self.flat(section, id.index)
    }

    /// A crash of a random honest elder, some time from now.
    fn schedule_crash(&mut self) {
        let at = self.now + self.rng.gen_range(500..3_000);
        let honest: Vec<usize> =
            (0..self.elders.len()).filter(|e| self.elders[*e].is_honest()).collect();
        let victim = *honest.choose(&mut self.rng).expect("honest elders");
        self.net.schedule(at, Node::Elder(victim), Payload::Crash);
    }

    fn run(&mut self) -> Result<(), String> {
        let mut next_check = 0;
        while let Some(event) = self.net.pop() {
            self.now = event.at;
            if !self.healing
                && (self.now >= self.config.chaos_ms_max
                    || (self.clients.iter().all(SimClient::is_done) && self.bundler.is_done()))
            {
                self.heal();
            }
            self.update_partition();
            if self.healing && self.now >= next_check {
                if self.settled() {
                    return Ok(());
                }
                if self.now > self.heal_started + self.config.heal_ms_max {
                    let why = self.unsettled().unwrap_or_default();
                    let limit = self.config.heal_ms_max;
                    return Err(format!("did not settle {limit} ms after healing: {why}"));
                }
                next_check = self.now + SETTLE_CHECK_MS;
            }
            self.dispatch(event)?;
        }
        Err("the event queue ran dry".to_string())
    }

    /// Starts or ends a partition when its time comes: the sections fall into two sides, and
    /// peer messages between the sides are lost both ways while clients still reach their
    /// own section, so outboxes fill towards the other side.
    fn update_partition(&mut self) {
        if let Some((_, until)) = &self.partition {
            if self.now >= *until || self.healing {
                self.partition = None;
            }
            return;
        }
        if self.healing || self.now < self.next_partition {
            return;
        }
        let sections = self.network.sections.len();
        let mut side: Vec<bool> = (0..sections).map(|_| self.rng.gen()).collect();
        // Both sides non-empty: section 0 on one, a random other on the other.
        side[0] = false;
        side[self.rng.gen_range(1..sections)] = true;
        let until = self.now + self.rng.gen_range(PARTITION_MS);
        self.next_partition = until + self.rng.gen_range(PARTITION_GAP_MS);
        self.partition = Some((side, until));
        self.stats.partitions += 1;
    }

    /// Whether the partition in force cuts section `one` off from section `other`.
    fn cut(&self, one: usize, other: usize) -> bool {
        self.partition.as_ref().is_some_and(|(side, _)| side[one] != side[other])
    }

    /// Ends the chaos: no more network faults or crashes; crashed elders restart now.
    fn heal(&mut self) {
        self.healing = true;
        self.partition = None;
        self.heal_started = self.now;
        for e in 0..self.elders.len() {
            if self.elders[e].ledger.is_none() {
                self.restart(e);
            }
        }
    }

    /// Whether everything has settled: clients idle, outboxes empty, honest digests agree.
    fn settled(&self) -> bool {
        self.unsettled().is_none()
    }

    /// What has not settled yet, if anything.
    fn unsettled(&self) -> Option<String> {
        if let Some(c) = self.clients.iter().position(|c| !c.is_idle()) {
            return Some(format!("client {c} is busy: {}", self.clients[c].describe()));
        }
        if !self.bundler.is_idle() {
            return Some(format!("the bundler is busy: {}", self.bundler.describe()));
        }
        for elder in self.elders.iter().filter(|e| e.is_honest()) {
            let Some(ledger) = elder.ledger.as_ref() else {
                return Some(format!("elder {:?} is down", elder.id));
            };
            if let Some(proof) = ledger.outbox().next() {
                return Some(format!("elder {:?} still delivers {:?}", elder.id, proof.transfer()));
            }
            if ledger.routing() > 0 || ledger.escrow_total() > 0 {
                let escrow = ledger.escrow_total();
                return Some(format!(
                    "elder {:?} routes outcomes or holds escrow {escrow}",
                    elder.id
                ));
            }
        }
        for section in self.elders.chunks(self.config.elders) {
            let mut digests = section
                .iter()
                .filter(|e| e.is_honest())
                .map(|e| (e.id, e.ledger.as_ref().expect("running").state_digest()));
            let (first, digest) = digests.next().expect("an honest elder per section");
            if let Some((other, _)) = digests.find(|(_, d)| *d != digest) {
                return Some(format!("{first:?} and {other:?} disagree on state"));
            }
        }
        None
    }

    fn dispatch(&mut self, event: Event) -> Result<(), String> {
        match (event.to, event.payload) {
            (Node::Elder(e), Payload::Request { from: client, op, bytes }) => {
                let request: ClientRequest = decode(&bytes)?;
                let validated = match &request {
                    ClientRequest::Validate { transfer, .. } => {
                        Some((transfer.transfer.slot(), transfer.transfer.window))
                    }
                    _ => None,
                };
                let reply_to = ReplyTo { client, op, validated };
                let arrival = self.elders[e].on_request(request, reply_to, &mut self.stats);
                self.arrived(e, arrival)
            }
            (Node::Elder(e), Payload::Peer { from, bytes }) => {
                let message: PeerMessage = decode(&bytes)?;
                let arrival = self.elders[e].on_peer(from, message, &mut self.stats);
                self.arrived(e, arrival)
            }
            (Node::Elder(e), Payload::Run) => {
                self.runs[e].remove(&self.now);
                if self.elders[e].has_work(self.now) {
                    let sent = self.elders[e].run_batch(self.now, &mut self.rng, &mut self.stats);
                    self.send_from_elder(e, sent)?;
                }
                if let Some(deadline) = self.elders[e].deadline() {
                    self.schedule_run(e, deadline.max(self.now));
                }
                Ok(())
            }
            (Node::Elder(e), Payload::Crash) => {
                if !self.healing {
                    self.crash(e);
                    self.schedule_crash();
                }
                Ok(())
            }
            (Node::Elder(e), Payload::Restart) => {
                if self.elders[e].ledger.is_none() {
                    self.restart(e);
                }
                Ok(())
            }
            (Node::Client(c), Payload::Reply { elder, op, bytes }) => {
                let reply: ClientReply = decode(&bytes)?;
                let step = self.clients[c].reply(elder, op, reply, self.now);
                self.apply_step(c, step)
            }
            (Node::Client(c), Payload::Wake { op }) => {
                let step =
                    self.clients[c].wake(op, self.now, &mut self.rng, &self.accounts, self.healing);
                self.apply_step(c, step)
            }
            (Node::Bundler, Payload::Reply { elder, op, bytes }) => {
                let reply: ClientReply = decode(&bytes)?;
                let step = self.bundler.reply(elder, op, reply, self.now, &mut self.rng);
                let op = self.bundler.op;
                self.apply_steps(Node::Bundler, None, op, step)
            }
            (Node::Bundler, Payload::Wake { op }) => {
                let step = self.bundler.wake(op, self.now, &mut self.rng, self.healing);
                let op = self.bundler.op;
                self.apply_steps(Node::Bundler, None, op, step)
            }
            (to, payload) => Err(format!("misrouted event {payload:?} to {to:?}")),
        }
    }

    /// An input reached elder `e`: the first of a batch schedules the batch; an input answered
    /// without the ledger is sent on at once.
    fn arrived(&mut self, e: usize, arrival: Arrival) -> Result<(), String> {
        match arrival {
            Arrival::Queued { first: true } => {
                self.schedule_run(e, self.now + BATCH_WINDOW_MS);
                Ok(())
            }
            Arrival::Queued { first: false } => Ok(()),
            Arrival::Handled(sent) => self.send_from_elder(e, sent),
        }
    }

    /// Elder `e` runs a batch at `at`, unless one is already due by then.
    fn schedule_run(&mut self, e: usize, at: u64) {
        if self.runs[e].first().is_some_and(|first| *first <= at) {
            return;
        }
        self.runs[e].insert(at);
        self.net.schedule(at, Node::Elder(e), Payload::Run);
    }

    /// Elder `e` comes back from its records, and runs its first batch now.
    fn restart(&mut self, e: usize) {
        self.elders[e].restart();
        self.schedule_run(e, self.now);
    }

    /// Sends what elder `e` released: replies to clients, checked for R1, and peer messages.
    fn send_from_elder(&mut self, e: usize, sent: Sent) -> Result<(), String> {
        for (reply_to, reply) in sent.replies {
            if let (Some((slot, window)), ClientReply::Share { transfer, .. }) =
                (reply_to.validated, &reply)
            {
                self.check_one_share_per_slot(e, slot, *transfer, window)?;
            }
            if let ClientReply::Rejected(Rejection::OutboxFull { .. }) = &reply {
                self.stats.outbox_full_refusals += 1;
            }
            let bytes = encode(&reply)?;
            let (elder, op) = (self.elders[e].id.index, reply_to.op);
            self.send(reply_to.client, Payload::Reply { elder, op, bytes });
        }
        self.send_peer_messages(e, sent.messages)
    }

    /// Crashes elder `e` unless another elder of its section is already down.
    fn crash(&mut self, e: usize) {
        let section = e / self.config.elders;
        let range = section * self.config.elders..(section + 1) * self.config.elders;
        if self.elders[range].iter().any(|elder| elder.ledger.is_none()) {
            return;
        }
        self.elders[e].crash();
        self.stats.crashes += 1;
        let at = self.now + self.rng.gen_range(200..2_000);
        self.net.schedule(at, Node::Elder(e), Payload::Restart);
    }

    /// R1 at every honest elder, across its crashes: one transfer per slot ever gets a share;
    /// and R11: an honest elder signs it first only while its own clock is inside the
    /// transfer's window widened by the skew (it may give the same share again later).
    fn check_one_share_per_slot(
        &mut self,
        e: usize,
        slot: Slot,
        transfer: TransferId,
        window: Window,
    ) -> Result<(), String> {
        if !self.elders[e].is_honest() {
            return Ok(());
        }
        self.stats.invariant_checks += 1;
        if !self.honest_shares.contains_key(&(e, slot)) {
            let clock = self.elders[e].clock(self.now);
            if let Err(outside) = shared::ledger::check_window(&window, clock) {
                let id = self.elders[e].id;
                return Err(format!("R11: honest elder {id:?} signed {slot:?} {outside}"));
            }
            self.stats.windowed_shares += u64::from(window != Window::ALWAYS);
        }
        let signed = *self.honest_shares.entry((e, slot)).or_insert(transfer);
        if signed != transfer {
            return Err(format!(
                "R1: honest elder {:?} signed two transfers for slot {slot:?}",
                self.elders[e].id
            ));
        }
        Ok(())
    }

    fn send(&mut self, to: Node, payload: Payload) {
        let faults = self.faults();
        self.net.send(&mut self.rng, &mut self.stats, self.now, faults, to, payload);
    }

    fn send_peer_messages(
        &mut self,
        e: usize,
        messages: Vec<(ElderId, PeerMessage)>,
    ) -> Result<(), String> {
        let from = self.elders[e].id;
        for (to, message) in messages {
            let bytes = encode(&message)?;
            let to = self.flat_of(to);
            if self.cut(e / self.config.elders, to / self.config.elders) {
                self.stats.messages_cut += 1;
                continue;
            }
            self.send(Node::Elder(to), Payload::Peer { from, bytes });
        }
        Ok(())
    }

    fn apply_step(&mut self, c: usize, step: Step) -> Result<(), String> {
        let section = self.clients[c].section();
        let op = self.clients[c].op;
        self.apply_steps(Node::Client(c), Some(section), op, step)
    }

    /// Sends a client's (or the bundler's) requests, takes its events, sets its wake; the
    /// events count for `section` (a certified proof's own section when `None`).
    fn apply_steps(
        &mut self,
        from: Node,
        section: Option<usize>,
        op: u64,
        step: Step,
    ) -> Result<(), String> {
        for (to_section, elder, op, request) in step.requests {
            let bytes = encode(&request)?;
            let to = Node::Elder(self.flat(to_section, elder));
            self.send(to, Payload::Request { from, op, bytes });
        }
        for event in step.events {
            let section = section.unwrap_or_else(|| match &event {
                ClientEvent::Certified { proof, .. } => {
                    self.network.section_index_of(&proof.transfer().from)
                }
                _ => 0,
            });
            self.on_client_event(section, event)?;
        }
        if let Some(at) = step.wake_at {
            self.net.schedule(at, from, Payload::Wake { op });
        }
        Ok(())
    }

    fn on_client_event(&mut self, section: usize, event: ClientEvent) -> Result<(), String> {
        match event {
            ClientEvent::ProbeStarted(probe) => self.count_probe(probe),
            ClientEvent::Certified { proof, probe } => {
                self.stats.invariant_checks += 2;
                if let Some(probe) = probe.filter(|p| p.must_be_refused()) {
                    return Err(format!(
                        "a {probe:?} transfer was certified: {:?}",
                        proof.transfer()
                    ));
                }
                let slot = proof.transfer().slot();
                if let Some(other) = self.certified.get(&slot) {
                    if *other != *proof {
                        return Err(format!("two debit proofs for slot {slot:?}"));
                    }
                    return Ok(());
                }
                self.stats.transfers_certified += 1;
                let to_section = self.network.section_index_of(&proof.transfer().to);
                self.stats.transfers_cross_section += u64::from(to_section != section);
                self.certified.insert(slot, *proof);
            }
            ClientEvent::Registered { replay, .. } => {
                self.stats.transfers_registered += u64::from(!replay);
            }
            ClientEvent::BalanceAgreed { report, reports } => {
                // R8: what the client accepted, at least one honest elder said.
                self.stats.balances_agreed += 1;
                self.stats.invariant_checks += 1;
                let honest_said = reports.iter().any(|(elder, r)| {
                    *r == report && self.elders[self.flat(section, *elder)].is_honest()
                });
                if !honest_said {
                    return Err(format!(
                        "client accepted a balance no honest elder gave: {report:?}"
                    ));
                }
            }
            ClientEvent::Stuck => self.stats.clients_stuck += 1,
            ClientEvent::WaitedOut => self.stats.refusals_waited_out += 1,
            ClientEvent::BundleMade { bundle } => {
                self.stats.bundles_made += 1;
                self.bundles.push(*bundle);
            }
            ClientEvent::BundleDecided { certificate } => {
                // R12: one outcome per bundle, whoever asks.
                self.stats.invariant_checks += 1;
                let id = crypto::bundle_id(&certificate.bundle);
                let seen = *self.outcomes.entry(id).or_insert(certificate.commit);
                if seen != certificate.commit {
                    return Err(format!("bundle {id:?} certified both commit and abort"));
                }
                let counter = if certificate.commit {
                    &mut self.stats.bundles_committed
                } else {
                    &mut self.stats.bundles_aborted
                };
                *counter += 1;
            }
        }
        Ok(())
    }

    fn count_probe(&mut self, probe: Probe) {
        let counter = match probe {
            Probe::Equivocation => &mut self.stats.client_equivocations,
            Probe::LostTrack => &mut self.stats.client_lost_track,
            Probe::SeqAhead | Probe::StaleSeq => &mut self.stats.client_wrong_seq,
            Probe::Overspend => &mut self.stats.client_overspends,
            Probe::ZeroAmount => &mut self.stats.client_zero_amounts,
            Probe::BadSignature => &mut self.stats.client_bad_signatures,
            Probe::SelfTransfer => &mut self.stats.client_self_transfers,
            Probe::Replay => &mut self.stats.client_replays,
            Probe::SkipRegister => &mut self.stats.client_skipped_registrations,
        };
        *counter += 1;
    }
}

/// The faucet's client, which funds the others first, the ordinary clients (every
/// `POLICY_CLIENT_EVERY`th a 2-of-3 multi-owner account whose client holds the owners' keys)
/// and the relays, and every client's account (the faucet's first).
fn clients(
    rng: &mut ChaCha8Rng,
    network: &Arc<Network>,
    config: &SimConfig,
    faucet: SigningKey,
    bundler_accounts: Vec<AccountId>,
) -> (Vec<SimClient>, Vec<AccountId>) {
    let prefixes = Prefix::all_of_len(config.prefix_len);
    let transfers = config.transfers_per_client;
    let signers: Vec<Signer> = (0..config.clients)
        .map(|c| {
            let prefix = prefixes[c % prefixes.len()];
            if c % POLICY_CLIENT_EVERY != POLICY_CLIENT_EVERY - 1 {
                return Signer::Key(account_key_in(rng, prefix));
            }
            let keys: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate(rng)).collect();
            let owners = keys.iter().map(account_id).collect();
            let (policy, _) = create_policy(2, owners, Some(prefix)).expect("a 2-of-3 policy");
            Signer::owners(policy, keys).expect("the owners' keys")
        })
        .collect();
    let mut accounts: Vec<AccountId> = signers.iter().map(Signer::account).collect();
    let faucet_account = account_id(&faucet);
    let faucet = Signer::Key(faucet);
    // The bundler's accounts are funded first, so its bundles can lock from the start.
    let to_fund = bundler_accounts.into_iter().chain(accounts.iter().copied()).collect();
    let mut clients = vec![SimClient::new(faucet, network.clone(), transfers, to_fund)];
    clients.extend(
        signers
            .into_iter()
            .map(|signer| SimClient::new(signer, network.clone(), transfers, vec![])),
    );
    // Relays start with nothing and spend all that reaches them, as soon as f + 1 elders
    // agree it has: the pattern where lagging elders refuse for funds at first.
    for r in 0..config.relays {
        let key = account_key_in(rng, prefixes[(r + 1) % prefixes.len()]);
        accounts.push(account_id(&key));
        clients.push(SimClient::relay(key, network.clone(), transfers / 4));
    }
    accounts.insert(0, faucet_account);
    (clients, accounts)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    codec::encode(value).map_err(|error| format!("encode: {error}"))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    codec::decode(bytes).map_err(|error| format!("decode: {error}"))
}

/// Transfer ids, for the checker.
fn id_of(proof: &DebitProof) -> TransferId {
    crypto::transfer_id(&proof.signed)
}
