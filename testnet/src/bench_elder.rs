//! `testnet bench-elder`: one real elder process over QUIC, measured the way FastPay's `bench`
//! measures one authority. The load client holds the dealer's key set, so it prepares every
//! signed transfer and debit proof before the clock starts; then it keeps a fixed number of
//! requests in flight, sends the validate requests of all transfers and then their register
//! requests, and reports transfers per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use client::Client;
use ed25519_dalek::SigningKey;
use elder::genesis::{self, Plan};
use futures::stream::{self, StreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use shared::client::account_id;
use shared::crypto;
use shared::limits::DEPS_MAX;
use shared::messages::{ClientReply, ClientRequest};
use shared::network::Network;
use shared::types::{
    Amount, BlsSignature, DebitProof, ElderIndex, Memo, Seq, SignedTransfer, Transfer,
};

use crate::elders::{free_base_port, Elders};
use crate::{probe, RunError};

/// Where the benchmark looks for free ports.
const BENCH_PORTS_FROM: u16 = 19_100;

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct ElderBench {
    /// Elders in the section (one of them runs).
    pub elders: usize,
    /// Transfers sent.
    pub transfers: usize,
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
}

/// Everything prepared before the clock starts.
struct Prepared {
    funding: Vec<DebitProof>,
    transfers: Vec<SignedTransfer>,
    proofs: Vec<DebitProof>,
}

/// Runs the benchmark; `progress` hears each phase as it starts.
pub async fn run(
    elders: usize,
    transfers: usize,
    in_flight: usize,
    mut progress: impl FnMut(&str),
) -> Result<ElderBench, RunError> {
    let dir = tempfile::Builder::new().prefix("section-bank-bench-").tempdir()?;
    let base = free_base_port(BENCH_PORTS_FROM, elders)
        .ok_or_else(|| RunError::Failed(format!("no {elders} free UDP ports")))?;
    let plan = Plan::local(1, elders, base, Amount(u64::MAX / 2));
    let mut rng = ChaCha20Rng::seed_from_u64(elders as u64);
    let (genesis, dealer) = genesis::write_keeping_dealer_keys(dir.path(), &plan, &mut rng)?;
    let network = Arc::new(client::read_network(&genesis.map)?);
    let faucet =
        client::wallet::Wallet::open(&genesis.faucet_key).map_err(client::ClientError::from)?;
    progress("preparing transfers and proofs");
    let prepared = prepare(&network, &dealer[0], faucet.key(), transfers, &mut rng);

    let mut processes = Elders::new(genesis, false)?;
    processes.check_ports()?;
    processes.spawn(0)?;
    let streams = client::transport::STREAMS_PER_CONNECTION_MAX as usize;
    let clients = probe::clients(&network, in_flight, streams)?;
    let ready = || async { probe::status(&clients[0], 0, 0).await.is_some() };
    if !probe::wait_until(Duration::from_secs(60), ready).await {
        return Err(RunError::Failed("the elder did not answer within 60 s".to_string()));
    }
    progress("funding the sending accounts");
    let registers = |proofs: &[DebitProof]| {
        proofs
            .iter()
            .map(|proof| ClientRequest::Register { proof: proof.clone(), deps: Vec::new() })
            .collect()
    };
    fund(&clients[0], &prepared.funding).await?;

    progress("validating");
    let validates = prepared
        .transfers
        .iter()
        .map(|transfer| ClientRequest::Validate { transfer: transfer.clone(), deps: Vec::new() })
        .collect();
    let started = Instant::now();
    send_all(&clients, validates, in_flight, |reply| matches!(reply, ClientReply::Share { .. }))
        .await?;
    let validate_seconds = started.elapsed().as_secs_f64();
    progress("registering");
    let started = Instant::now();
    send_all(&clients, registers(&prepared.proofs), in_flight, is_registered).await?;
    let register_seconds = started.elapsed().as_secs_f64();

    let status = probe::status(&clients[0], 0, 0).await;
    let applied = status.map_or(0, |status| status.applied);
    if applied != 2 * transfers as u64 {
        return Err(RunError::Failed(format!(
            "the elder applied {applied} proofs, not {}",
            2 * transfers
        )));
    }
    drop(clients);
    processes.stop_all();
    let count = transfers as f64;
    Ok(ElderBench {
        elders,
        transfers,
        in_flight,
        validate_seconds,
        register_seconds,
        validated_per_second: count / validate_seconds,
        registered_per_second: count / register_seconds,
        transfers_per_second: count / (validate_seconds + register_seconds),
    })
}

fn is_registered(reply: &ClientReply) -> bool {
    matches!(reply, ClientReply::Registered { .. })
}

/// Funding proofs from the faucet to one account per transfer, the transfers those accounts
/// make (each its seq 1, to the next account), and the transfers' debit proofs.
fn prepare(
    network: &Network,
    dealer: &blsttc::SecretKeySet,
    faucet: &SigningKey,
    count: usize,
    rng: &mut ChaCha20Rng,
) -> Prepared {
    let senders: Vec<SigningKey> = (0..count).map(|_| SigningKey::from_bytes(&rng.gen())).collect();
    let sign = |key: &SigningKey, to, amount, seq| {
        let transfer = Transfer {
            from: account_id(key),
            to,
            amount: Amount(amount),
            seq: Seq(seq),
            memo: Memo::default(),
        };
        crypto::sign_transfer(key, &network.genesis, transfer)
    };
    let prove = |signed: SignedTransfer| {
        let id = crypto::transfer_id(&signed);
        let message = crypto::debit_signing_bytes(&network.genesis, &id);
        let signature = BlsSignature(dealer.secret_key().sign(message).to_bytes());
        DebitProof { signed, section_key: network.sections[0].key_id, signature }
    };
    let funding = senders
        .iter()
        .enumerate()
        .map(|(k, sender)| prove(sign(faucet, account_id(sender), 100, k as u64 + 1)))
        .collect();
    let transfers: Vec<SignedTransfer> = senders
        .iter()
        .enumerate()
        .map(|(k, sender)| sign(sender, account_id(&senders[(k + 1) % count]), 1, 1))
        .collect();
    let proofs = transfers.iter().cloned().map(prove).collect();
    Prepared { funding, transfers, proofs }
}

/// Registers the faucet's funding debits in seq order, each request carrying the 16 before
/// its proof as deps, so the elder applies 17 per request and never sees a gap.
async fn fund(client: &Client, funding: &[DebitProof]) -> Result<(), RunError> {
    for chunk in funding.chunks(DEPS_MAX + 1) {
        let (proof, deps) = chunk.split_last().expect("chunks are never empty");
        let request = ClientRequest::Register { proof: proof.clone(), deps: deps.to_vec() };
        match client.ask(0, ElderIndex(0), &request).await {
            Ok(reply) if is_registered(&reply) => {}
            outcome => return Err(RunError::Failed(format!("funding failed: {outcome:?}"))),
        }
    }
    Ok(())
}

/// Sends every request to elder 0 with `in_flight` open at once; each answer must pass `ok`.
async fn send_all(
    clients: &[Client],
    requests: Vec<ClientRequest>,
    in_flight: usize,
    ok: impl Fn(&ClientReply) -> bool,
) -> Result<(), RunError> {
    let mut answers = stream::iter(requests.into_iter().enumerate())
        .map(|(k, request)| async move {
            let client = &clients[k % clients.len()];
            client.ask(0, ElderIndex(0), &request).await
        })
        .buffer_unordered(in_flight);
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(reply) if ok(&reply) => {}
            Ok(reply) => return Err(RunError::Failed(format!("unexpected answer: {reply:?}"))),
            Err(error) => {
                let error: client::transport::TransportError = error;
                return Err(RunError::Failed(format!("request failed: {error}")));
            }
        }
    }
    Ok(())
}
