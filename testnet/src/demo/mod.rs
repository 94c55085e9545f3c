//! The one-command tour: a fresh network in a temporary directory, four accounts in two
//! sections, funding from the faucet, transfers within and across sections, balances before
//! and after, proof sizes, then a multi-owner payment, a time window, and two bundles (one
//! commits, one aborts) (`agreements`), and conservation of supply; every check printed,
//! and the answer `true` only if all of them held.

mod agreements;

use std::path::Path;
use std::time::Instant;

use crate::genesis::{self, Plan};
use client::wallet::Wallet;
use client::{Client, ClientError};
use shared::driver::{DriverError, Payment};
use shared::genesis::account_key_in;
use shared::network::Network;
use shared::rejection::Rejection;
use shared::types::{Amount, Memo};

use crate::elders::{free_base_port, Elders};
use crate::limits::DEMO_PATIENCE;
use crate::{survey, RunError};

/// Money in the demo network.
const SUPPLY: Amount = Amount(1_000_000_000);
/// What the faucet gives each demo account.
const FUNDING: u64 = 1_000;
/// Where the demo looks for free ports.
const DEMO_PORTS_FROM: u16 = 17_100;

/// Counts the checks and prints each.
#[derive(Default)]
struct Checks {
    passed: usize,
    failed: usize,
}

impl Checks {
    fn check(&mut self, held: bool, what: &str) {
        if held {
            self.passed += 1;
            println!("  ✓ {what}");
        } else {
            self.failed += 1;
            println!("  ✗ {what}");
        }
    }
}

/// Runs the tour with `elders` elders in each of two sections.
pub async fn run(elders: usize) -> Result<bool, RunError> {
    let dir = tempfile_dir()?;
    let count = 2 * elders;
    let base = free_base_port(DEMO_PORTS_FROM, count)
        .ok_or(RunError::Failed(format!("no {count} free UDP ports from {DEMO_PORTS_FROM}")))?;
    let plan = Plan::local(2, elders, base, SUPPLY);
    let genesis = genesis::write(dir.path(), &plan, &mut rand::rngs::OsRng)?;
    let mut processes = Elders::new(genesis.clone(), false)?;
    processes.check_ports()?;
    let client = Client::connect(&genesis.map)?;
    let network = client.network().clone();
    let section = &network.sections[0];
    println!(
        "section bank demo: 2 sections × {elders} elders (f = {}, {} shares make a proof), in {}",
        section.faults_max(),
        section.shares_needed(),
        dir.path().display()
    );
    let started = Instant::now();
    processes.spawn_all()?;
    let missing = survey::wait_ready(&client, DEMO_PATIENCE, |_, _| {}).await;
    if !missing.is_empty() {
        return Err(RunError::Failed(format!(
            "elders {} did not answer within 60 s; see elder.log in their directories",
            missing.join(", ")
        )));
    }
    println!(
        "{count} elder processes answering over QUIC after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let passed = tour(&client, &network, dir.path(), &genesis.faucet_key).await?;
    println!("stopping the elders (SIGTERM)…");
    let unclean = tokio::task::spawn_blocking(move || processes.stop_all())
        .await
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    let mut checks = passed;
    checks.check(unclean.is_empty(), "every elder stopped cleanly (exit 0)");
    println!(
        "\ndemo {}: {} of {} checks held",
        if checks.failed == 0 { "passed" } else { "FAILED" },
        checks.passed,
        checks.passed + checks.failed
    );
    Ok(checks.failed == 0)
}

fn tempfile_dir() -> Result<tempfile::TempDir, std::io::Error> {
    tempfile::Builder::new().prefix("section-bank-demo-").tempdir()
}

/// The accounts, funding, transfers and checks.
async fn tour(
    client: &Client,
    network: &Network,
    dir: &Path,
    faucet_key: &Path,
) -> Result<Checks, RunError> {
    let mut wallets = accounts(network, dir)?;
    let mut faucet = Wallet::open(faucet_key).map_err(ClientError::from)?;
    println!("\nthe faucet pays each {FUNDING}…");
    for wallet in &wallets {
        let receipt =
            client.send(&mut faucet, Payment::new(wallet.account(), Amount(FUNDING))).await?;
        client.wait_for_credit(&receipt).await?;
    }
    let before = balances(client, &wallets).await?;
    println!("balances before: {}", show(&NAMES, &before));
    let expected = transfers(client, &mut wallets, before).await?;
    let alice = wallets[0].account();
    let overspend = client.send(&mut wallets[1], Payment::new(alice, Amount(1_000_000))).await;
    let refusal = match &overspend {
        Err(
            error @ ClientError::Failed(DriverError::Invalid(Rejection::InsufficientFunds {
                ..
            })),
        ) => error.to_string(),
        Err(error) => format!("unexpected error: {error}"),
        Ok(receipt) => format!("it went through as transfer {}", receipt.transfer),
    };
    println!("  bob   → alice 1000000  refused: {refusal}");
    let after = balances(client, &wallets).await?;
    println!("\nbalances after:  {}", show(&NAMES, &after));
    println!("checks:");
    let mut checks = Checks::default();
    checks.check(
        after == expected,
        &format!("every balance is as expected ({})", show(&NAMES, &expected)),
    );
    checks.check(
        refusal.contains("does not cover"),
        "an overspend is refused before anything is signed (f + 1 elders agree on the \
         balance) and moves nothing",
    );
    let history = client.history(wallets[0].account()).await?;
    checks.check(
        history.debits.len() == 2 && history.credits.len() == 2,
        "alice's history holds her 2 debits and 2 credits, each a section-signed proof",
    );
    agreements::tour(client, &mut wallets, &mut faucet, &mut checks).await?;
    check_conservation(client, network, &mut checks).await;
    Ok(checks)
}

/// The tour's accounts.
const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// A new wallet for each of the tour's accounts, two in each section.
fn accounts(network: &Network, dir: &Path) -> Result<Vec<Wallet>, RunError> {
    println!("\naccounts:");
    let mut wallets = Vec::new();
    for (n, name) in NAMES.iter().enumerate() {
        let section = &network.sections[n / 2];
        let key = account_key_in(&mut rand::rngs::OsRng, section.prefix);
        let path = dir.join(format!("{name}.key"));
        Wallet::create(&path, &key).map_err(ClientError::from)?;
        let wallet = Wallet::open(&path).map_err(ClientError::from)?;
        println!("  {name:<6} section {}  {}", section.prefix, wallet.account());
        wallets.push(wallet);
    }
    Ok(wallets)
}

/// The tour's transfers, within and across sections; returns the balances they should leave.
async fn transfers(
    client: &Client,
    wallets: &mut [Wallet],
    mut expected: Vec<u64>,
) -> Result<Vec<u64>, RunError> {
    let transfers =
        [(0, 1, 100, "hello bob"), (0, 2, 250, "rent"), (2, 3, 50, ""), (3, 0, 20, "thanks")];
    println!("\ntransfers:");
    for (from, to, amount, memo) in transfers {
        let to_account = wallets[to].account();
        let kind = if from / 2 == to / 2 { "same section " } else { "cross-section" };
        let one = Instant::now();
        let receipt = client
            .send(
                &mut wallets[from],
                Payment {
                    memo: Memo(memo.as_bytes().to_vec()),
                    ..Payment::new(to_account, Amount(amount))
                },
            )
            .await?;
        client.wait_for_credit(&receipt).await?;
        let bytes = shared::codec::encode(&receipt.proof).map_or(0, |bytes| bytes.len());
        println!(
            "  {:<6}→ {:<6}{amount:>5}  {kind}  seq {}  proof {bytes} bytes  {} ms to credit",
            NAMES[from],
            NAMES[to],
            receipt.seq,
            one.elapsed().as_millis()
        );
        expected[from] -= amount;
        expected[to] += amount;
    }
    Ok(expected)
}

/// Waits for the network to settle and checks that the sections hold the whole supply.
async fn check_conservation(client: &Client, network: &Network, checks: &mut Checks) {
    let (settled, views) = survey::wait_settled(client, DEMO_PATIENCE).await;
    let totals: Vec<String> = views
        .iter()
        .map(|view| view.agreed().map_or("?".to_string(), |s| s.balance_total.to_string()))
        .collect();
    checks.check(
        settled,
        &format!(
            "conservation: the sections hold {} = supply {}, nothing in flight, and every \
             section's elders agree on their state",
            totals.join(" + "),
            network.map.supply
        ),
    );
}

async fn balances(client: &Client, wallets: &[Wallet]) -> Result<Vec<u64>, ClientError> {
    let mut balances = Vec::new();
    for wallet in wallets {
        balances.push(client.balance(wallet.account()).await?.balance.0);
    }
    Ok(balances)
}

fn show(names: &[&str], amounts: &[u64]) -> String {
    names
        .iter()
        .zip(amounts)
        .map(|(name, amount)| format!("{name} {amount}"))
        .collect::<Vec<_>>()
        .join(", ")
}
