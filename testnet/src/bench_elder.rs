//! `testnet bench-elder`: one real elder process over QUIC, measured the way FastPay's `bench`
//! measures one authority. The load client holds the dealer's key set, so it prepares every
//! signed transfer and debit proof before the clock starts; then it keeps a fixed number of
//! requests in flight, sends the validate requests of all transfers and then their register
//! requests, and reports transfers per second, the CPU each costs, and, for the scale run, the
//! store size, resident memory and restart time of an elder holding many accounts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::genesis::{self, Plan};
use client::Client;
use ed25519_dalek::SigningKey;
use futures::stream::{self, StreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use shared::driver::{account_id, build_transfer, Payment};
use shared::limits::DEPS_MAX;
use shared::messages::{ClientReply, ClientRequest};
use shared::network::Network;
use shared::types::{AccountId, Amount, DebitProof, ElderIndex, Seq, SignedTransfer};

use crate::elders::{cpu_seconds, free_base_port, resident_bytes, Elders, Signal};
use crate::limits::RESTART_PATIENCE;
use crate::{survey, RunError};

/// Where the benchmark looks for free ports.
const BENCH_PORTS_FROM: u16 = 19_100;
/// Accounts one funding account pays: the faucet pays the funders, each funder its accounts.
const FUNDED_PER_FUNDER: usize = 1_000;
/// What each account is funded with.
const FUNDING: u64 = 100;

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct ElderBench {
    /// Elders in the section (one of them runs).
    pub elders: usize,
    /// Transfers sent.
    pub transfers: usize,
    /// Accounts the section held before the clock started.
    pub accounts: usize,
    /// Requests kept in flight.
    pub in_flight: usize,
    /// Seconds to validate every transfer.
    pub validate_seconds: f64,
    /// Seconds to register every proof.
    pub register_seconds: f64,
    /// Validate requests per second.
    pub validated_per_second: f64,
    /// Register requests per second.
    pub registered_per_second: f64,
    /// Transfers per second, both phases together: transfers / (validate + register time).
    pub transfers_per_second: f64,
    /// The elder's CPU (user + system) per validate request, in microseconds.
    pub elder_cpu_us_per_validate: f64,
    /// The elder's CPU per register request, in microseconds.
    pub elder_cpu_us_per_register: f64,
    /// The load client's CPU per transfer (both requests), in microseconds.
    pub client_cpu_us_per_transfer: f64,
    /// Proofs per second while funding the accounts (17 to a request, many chains at once).
    pub funded_per_second: f64,
    /// The elder's store file after the run, in bytes.
    pub store_bytes: u64,
    /// The elder's resident memory after the run, in bytes.
    pub resident_bytes: u64,
    /// Seconds from starting the elder again until it answers with everything it applied.
    pub restart_seconds: f64,
}

/// Everything prepared before the clock starts.
struct Prepared {
    /// Funding chains in the order they must be registered: the faucet's to the funders
    /// first, then one chain per funder, which may go at once.
    funding: Vec<Vec<DebitProof>>,
    /// One validate request per transfer, and its register request.
    validates: Vec<ClientRequest>,
    registers: Vec<ClientRequest>,
}

/// Runs the benchmark: `transfers` transfers in a section funded with `accounts` accounts
/// (at least one per transfer); `progress` hears each phase with its work done and in all.
pub async fn run(
    elders: usize,
    transfers: usize,
    accounts: usize,
    in_flight: usize,
    progress: impl Fn(&str, usize, usize) + Sync,
) -> Result<ElderBench, RunError> {
    let accounts = accounts.max(transfers);
    let dir = tempfile::Builder::new().prefix("section-bank-bench-").tempdir()?;
    let base = free_base_port(BENCH_PORTS_FROM, elders)
        .ok_or_else(|| RunError::Failed(format!("no {elders} free UDP ports")))?;
    let plan = Plan::local(1, elders, base, Amount(u64::MAX / 2));
    let mut rng = ChaCha20Rng::seed_from_u64(elders as u64);
    let (genesis, dealer) = genesis::write_keeping_dealer_keys(dir.path(), &plan, &mut rng)?;
    let store = genesis.elders[0].data_dir().join(elder::store::STORE_FILE);
    let network = Arc::new(transport::map::read(&genesis.map)?);
    let faucet =
        client::wallet::Wallet::open(&genesis.faucet_key).map_err(client::ClientError::from)?;
    let prover = Prover { network: &network, section_keys: &dealer[0] };
    let prepared = prover.prepare(faucet.key(), transfers, accounts, &mut rng, &progress);

    let mut processes = Elders::new(genesis, false)?;
    processes.check_ports()?;
    processes.spawn(0)?;
    let streams = transport::limits::STREAMS_PER_CONNECTION_MAX as usize;
    let clients = survey::clients(&network, in_flight, streams)?;
    if !survey::wait_until(Duration::from_secs(60), || answers(&clients[0], 0)).await {
        return Err(RunError::Failed("the elder did not answer within 60 s".to_string()));
    }
    let started = Instant::now();
    let funded = fund(&clients, &prepared.funding, in_flight, &progress).await?;
    let funded_per_second = funded as f64 / started.elapsed().as_secs_f64();

    let elder_pid = processes.pid(0).unwrap_or_default();
    let timed = measure(&clients, prepared, in_flight, elder_pid, &progress).await?;

    let applied = funded + transfers;
    if !answers(&clients[0], applied).await {
        return Err(RunError::Failed(format!("the elder has not applied all {applied} proofs")));
    }
    let resident_bytes = resident_bytes(elder_pid);
    let restart_seconds = restart(&mut processes, &clients[0], applied, &progress).await?;
    let store_bytes = std::fs::metadata(&store)?.len();
    drop(clients);
    processes.stop_all();
    let count = transfers as f64;
    let micros_each = |seconds: f64| seconds * 1e6 / count;
    Ok(ElderBench {
        elders,
        transfers,
        accounts,
        in_flight,
        validate_seconds: timed.validate_seconds,
        register_seconds: timed.register_seconds,
        validated_per_second: count / timed.validate_seconds,
        registered_per_second: count / timed.register_seconds,
        transfers_per_second: count / (timed.validate_seconds + timed.register_seconds),
        elder_cpu_us_per_validate: micros_each(timed.elder_validate_cpu),
        elder_cpu_us_per_register: micros_each(timed.elder_register_cpu),
        client_cpu_us_per_transfer: micros_each(timed.client_cpu),
        funded_per_second,
        store_bytes,
        resident_bytes,
        restart_seconds,
    })
}

/// Wall and CPU seconds of the two measured phases.
struct Timed {
    validate_seconds: f64,
    register_seconds: f64,
    elder_validate_cpu: f64,
    elder_register_cpu: f64,
    client_cpu: f64,
}

/// Sends every validate request, then every register request, timing each phase and the CPU
/// the elder (`elder_pid`) and this process spend on it.
async fn measure(
    clients: &[Client],
    prepared: Prepared,
    in_flight: usize,
    elder_pid: u32,
    progress: &impl Fn(&str, usize, usize),
) -> Result<Timed, RunError> {
    let cpu = || (cpu_seconds(elder_pid), cpu_seconds(std::process::id()));
    let (elder_start, client_start) = cpu();
    let started = Instant::now();
    send_all(clients, prepared.validates, in_flight, "validating", progress, |reply| {
        matches!(reply, ClientReply::Share { .. })
    })
    .await?;
    let validate_seconds = started.elapsed().as_secs_f64();
    let (elder_validated, _) = cpu();
    let started = Instant::now();
    send_all(clients, prepared.registers, in_flight, "registering", progress, is_registered)
        .await?;
    let register_seconds = started.elapsed().as_secs_f64();
    let (elder_end, client_end) = cpu();
    Ok(Timed {
        validate_seconds,
        register_seconds,
        elder_validate_cpu: elder_validated - elder_start,
        elder_register_cpu: elder_end - elder_validated,
        client_cpu: client_end - client_start,
    })
}

/// Whether the elder answers a status request with at least `applied` proofs applied.
async fn answers(client: &Client, applied: usize) -> bool {
    survey::status(client, 0, 0).await.is_some_and(|status| status.applied >= applied as u64)
}

/// Stops the elder cleanly, starts it again and times how long it takes to answer with all
/// `applied` proofs: the whole store is replayed.
async fn restart(
    processes: &mut Elders,
    client: &Client,
    applied: usize,
    progress: &impl Fn(&str, usize, usize),
) -> Result<f64, RunError> {
    progress("restarting the elder", 0, 1);
    processes.signal(0, Signal::Terminate);
    if processes.wait_exit(0, RESTART_PATIENCE) != Some(0) {
        return Err(RunError::Failed("the elder did not stop cleanly".to_string()));
    }
    let started = Instant::now();
    processes.spawn(0)?;
    if !survey::wait_until(RESTART_PATIENCE, || answers(client, applied)).await {
        return Err(RunError::Failed(format!(
            "the restarted elder did not answer with its {applied} proofs within {} s",
            RESTART_PATIENCE.as_secs()
        )));
    }
    Ok(started.elapsed().as_secs_f64())
}

fn is_registered(reply: &ClientReply) -> bool {
    matches!(reply, ClientReply::Registered { .. })
}

/// Signs transfers and certifies them with the dealer's section key, as n − f elders would.
struct Prover<'a> {
    network: &'a Network,
    section_keys: &'a shared::crypto::SectionKeys,
}

impl Prover<'_> {
    fn sign(&self, key: &SigningKey, to: AccountId, amount: u64, seq: u64) -> SignedTransfer {
        build_transfer(key, self.network, Payment::new(to, Amount(amount)), Seq(seq))
            .expect("a positive payment to another account")
    }

    fn prove(&self, signed: SignedTransfer) -> DebitProof {
        shared::genesis::dealer_proof(self.network, self.section_keys, 0, signed)
    }

    /// One funding chain: `payer` pays each of `to` in seq order.
    fn chain(&self, payer: &SigningKey, to: &[AccountId], amount: u64) -> Vec<DebitProof> {
        let pay = |(k, to): (usize, &AccountId)| self.sign(payer, *to, amount, k as u64 + 1);
        to.iter().enumerate().map(pay).map(|signed| self.prove(signed)).collect()
    }

    /// The funding of `accounts` accounts, the first `transfers` of which are the senders;
    /// each sender's transfer (seq 1, to the next sender) and its proof. The work is spread
    /// over every core.
    fn prepare(
        &self,
        faucet: &SigningKey,
        transfers: usize,
        accounts: usize,
        rng: &mut ChaCha20Rng,
        progress: &(impl Fn(&str, usize, usize) + Sync),
    ) -> Prepared {
        let senders: Vec<SigningKey> =
            (0..transfers).map(|_| SigningKey::from_bytes(&rng.gen())).collect();
        let funders: Vec<SigningKey> = (0..accounts.div_ceil(FUNDED_PER_FUNDER))
            .map(|_| SigningKey::from_bytes(&rng.gen()))
            .collect();
        let seeds: Vec<[u8; 32]> = (senders.len()..accounts).map(|_| rng.gen()).collect();
        let done = AtomicUsize::new(0);
        let total = accounts + funders.len() + transfers;
        let tick = |count: usize| {
            let done = done.fetch_add(count, Ordering::Relaxed) + count;
            progress("preparing transfers and proofs", done, total);
        };
        let others = on_every_core(&seeds, |seed| {
            tick(1);
            account_id(&SigningKey::from_bytes(seed))
        });
        let funded: Vec<AccountId> = senders.iter().map(account_id).chain(others).collect();
        let per_funder: Vec<(&SigningKey, &[AccountId])> =
            funders.iter().zip(funded.chunks(FUNDED_PER_FUNDER)).collect();
        let mut funding = vec![self.chain(
            faucet,
            &funders.iter().map(account_id).collect::<Vec<_>>(),
            FUNDING * FUNDED_PER_FUNDER as u64,
        )];
        tick(funders.len());
        funding.extend(on_every_core(&per_funder, |(funder, to)| {
            tick(to.len());
            self.chain(funder, to, FUNDING)
        }));
        let pairs: Vec<(usize, &SigningKey)> = senders.iter().enumerate().collect();
        let transfers: Vec<SignedTransfer> = on_every_core(&pairs, |(k, sender)| {
            self.sign(sender, funded[(k + 1) % senders.len()], 1, 1)
        });
        let registers = on_every_core(&transfers, |signed| {
            tick(1);
            ClientRequest::Register { proof: self.prove(signed.clone()), deps: Vec::new() }
        });
        let validates = transfers
            .into_iter()
            .map(|transfer| ClientRequest::Validate { transfer, deps: Vec::new() })
            .collect();
        Prepared { funding, validates, registers }
    }
}

/// `work` over `items` on every core, in order.
fn on_every_core<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = items.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(part)
            .map(|chunk| scope.spawn(|| chunk.iter().map(&work).collect::<Vec<R>>()))
            .collect();
        parts.into_iter().flat_map(|part| part.join().expect("preparing does not panic")).collect()
    })
}

/// Registers the funding chains: the first alone, then the rest, enough chains at once for
/// about `in_flight` proofs in flight. Each chain goes in seq order, each request carrying the 16 proofs before its own
/// as deps, so the elder applies 17 per request and never sees a gap. Returns the proofs
/// registered.
async fn fund(
    clients: &[Client],
    chains: &[Vec<DebitProof>],
    in_flight: usize,
    progress: &impl Fn(&str, usize, usize),
) -> Result<usize, RunError> {
    let total: usize = chains.iter().map(Vec::len).sum();
    let Some((first, rest)) = chains.split_first() else { return Ok(0) };
    let mut funded = register_chain(&clients[0], first).await?;
    let mut chains = stream::iter(rest.iter().enumerate())
        .map(|(k, chain)| register_chain(&clients[k % clients.len()], chain))
        .buffer_unordered(in_flight.div_ceil(DEPS_MAX + 1).max(1));
    while let Some(done) = chains.next().await {
        funded += done?;
        progress("funding accounts", funded, total);
    }
    Ok(funded)
}

/// Registers one funding chain in seq order, 17 proofs to a request; returns its length.
async fn register_chain(client: &Client, chain: &[DebitProof]) -> Result<usize, RunError> {
    for chunk in chain.chunks(DEPS_MAX + 1) {
        let (proof, deps) = chunk.split_last().expect("chunks are never empty");
        let request = ClientRequest::Register { proof: proof.clone(), deps: deps.to_vec() };
        match client.ask(0, ElderIndex(0), &request).await {
            Ok(reply) if is_registered(&reply) => {}
            outcome => return Err(RunError::Failed(format!("funding failed: {outcome:?}"))),
        }
    }
    Ok(chain.len())
}

/// Sends every request to elder 0 with `in_flight` open at once; each answer must pass `ok`.
async fn send_all(
    clients: &[Client],
    requests: Vec<ClientRequest>,
    in_flight: usize,
    phase: &str,
    progress: &impl Fn(&str, usize, usize),
    ok: impl Fn(&ClientReply) -> bool,
) -> Result<(), RunError> {
    let total = requests.len();
    let mut answers = stream::iter(requests.into_iter().enumerate())
        .map(|(k, request)| async move {
            let client = &clients[k % clients.len()];
            client.ask(0, ElderIndex(0), &request).await
        })
        .buffer_unordered(in_flight);
    let mut done = 0;
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(reply) if ok(&reply) => {}
            Ok(reply) => return Err(RunError::Failed(format!("unexpected answer: {reply:?}"))),
            Err(error) => return Err(RunError::Failed(format!("request failed: {error}"))),
        }
        done += 1;
        if done % 256 == 0 || done == total {
            progress(phase, done, total);
        }
    }
    Ok(())
}
