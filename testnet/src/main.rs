//! `testnet`: bring up a local section bank network, look at it, fund accounts, take the tour.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use client::wallet::Wallet;
use client::Client;
use shared::driver::Payment;
use shared::messages::ElderStatus;
use shared::types::{AccountId, Amount};
use testnet::elders::{self, Elders};
use testnet::genesis::{self, ElderFiles, Genesis, Plan};
use testnet::limits::READY_PATIENCE;
use testnet::survey;

/// Money in a new network, in the smallest unit.
const SUPPLY: u64 = 1_000_000_000_000;

/// A local section bank network: sections of elder processes on this machine, their keys and
/// the network map in one directory.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct DirArg {
    /// The network's directory.
    #[arg(long, default_value = "./testnet-data")]
    dir: PathBuf,
}

/// The shape and ports of a network to create.
#[derive(clap::Args)]
struct NewNetwork {
    /// Sections of a new network (a power of two). Default 2.
    #[arg(long)]
    sections: Option<usize>,
    /// Elders per section of a new network (n = 3f + 1 tolerates f faulty). Default 7 for
    /// `up`, 4 for `chaos`.
    #[arg(long)]
    elders: Option<usize>,
    /// The first elder's UDP port; the others follow it (`chaos` takes the first free block
    /// from there).
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
}

#[derive(Subcommand)]
enum Command {
    /// Create a network (or resume the one in --dir) and run its elders until Ctrl-C.
    Up {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        new: NewNetwork,
        /// Delete the network in --dir and start a new one.
        #[arg(long)]
        fresh: bool,
        /// Return once every elder answers, leaving them running (stop with `testnet down`).
        #[arg(long)]
        detach: bool,
    },
    /// Stop the elders of a detached network.
    Down {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Show each elder up or down, its store size, whether each section agrees, and the total
    /// of all balances against the supply.
    Status {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pay from the faucet account (a normal transfer signed with the faucet key).
    Faucet {
        #[command(flatten)]
        dir: DirArg,
        /// The recipient: 64 hex digits.
        #[arg(long)]
        to: AccountId,
        /// The amount, in the smallest unit.
        #[arg(long)]
        amount: u64,
    },
    /// Write genesis files for elders on several machines: one self-contained directory per
    /// elder, to copy to its host and run with `elder --config DIR/elder.toml`.
    Genesis {
        #[command(flatten)]
        dir: DirArg,
        /// Every elder's HOST:PORT, comma-separated, section by section.
        #[arg(long, value_delimiter = ',', required = true)]
        hosts: Vec<String>,
        /// Sections (a power of two); the hosts are split evenly between them.
        #[arg(long, default_value_t = 1)]
        sections: usize,
    },
    /// End-to-end load against a running network: confirmed transfers per second (debit
    /// registered and credit applied), latency percentiles, elder CPU per transfer; writes a
    /// JSON summary.
    Bench {
        #[command(flatten)]
        dir: DirArg,
        /// Accounts to fund from the faucet and use.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(2..=100_000))]
        accounts: u64,
        /// Transfers to confirm.
        #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        transfers: u64,
        /// Transfers in flight at once (at most one per account).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        in_flight: u64,
        /// Share of transfers that go to another section, 0 to 1.
        #[arg(long, default_value_t = 0.5)]
        cross_section: f64,
        /// Where to write the JSON summary (default DIR/bench-summary.json).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Kill the last elder of the first section as the load starts, restart it after this
        /// many seconds, and report how long it takes to catch up with its peers.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3_600))]
        outage: Option<u64>,
        /// Offer this many transfers per second (open loop, at most --in-flight at once), each
        /// timed from when it was due, instead of keeping --in-flight going.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        rate: Option<u64>,
        /// After the run, offer 10, 25, 50, 75 and 100% of its throughput for 30 s each, print
        /// throughput and latency at each, and draw the curve into this SVG file.
        #[arg(long, value_name = "SVG")]
        curve: Option<PathBuf>,
    },
    /// Measure one elder the way FastPay's bench measures one authority: transfers and proofs
    /// prepared before the clock starts, then validate and register requests over QUIC with a
    /// fixed number in flight. Prints `transfers/s: X`.
    BenchElder {
        /// Elders in the section (one of them runs; the section key needs all their shares).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=100))]
        elders: u64,
        /// Transfers to send (each from its own account to the next sender, so at least 2).
        #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
        transfers: u64,
        /// Accounts the section holds before the clock starts (the scale run); at least one
        /// per transfer. Each costs about 0.4 ms of preparing and 0.3 ms of funding.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        accounts: Option<u64>,
        /// Requests kept in flight.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=2_000))]
        in_flight: u64,
        /// Print a JSON summary instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Chaos: a steady load of real transfers while faults drawn from a seed hit the elders
    /// (crashes, pauses, a section down, partitions and packet loss on their real traffic,
    /// lying elders); then every fault is healed, the network must settle, and the checker
    /// reads every store. Prints a verdict with figures and exits non-zero on any violation.
    /// Ctrl-C stops early and still heals and checks. Partitions and loss need nftables
    /// (`apt-get install nftables`) and root.
    Chaos {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        new: NewNetwork,
        /// A scenario shipped in testnet/chaos/ (crash, pause, section-down, partition, loss,
        /// byzantine, mixed) or the path of a scenario file.
        #[arg(long, default_value = "mixed")]
        scenario: String,
        /// Seconds of faults (a quiet warm-up comes before them and a recovery after).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=604_800))]
        seconds: u64,
        /// The schedule's seed; the same seed gives the same faults (random if left out).
        #[arg(long)]
        seed: Option<u64>,
        /// Transfers in flight.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        in_flight: u64,
        /// Accounts funded and used (at least the transfers in flight).
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(2..=100_000))]
        accounts: u64,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The checker alone, over the stores of a stopped network: every proof verifies, balances
    /// recompute from the proofs and add up to the supply, sections agree with empty outboxes,
    /// and every transfer the last chaos run saw confirmed is there exactly once.
    Audit {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The tour: a fresh network in a temporary directory, accounts in different sections,
    /// transfers within and across sections, balances, proof sizes and conservation of supply.
    Demo {
        /// Elders per section.
        #[arg(long, default_value_t = 4)]
        elders: usize,
    },
}

fn main() -> ExitCode {
    transport::logging::init("warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("testnet: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse().command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("testnet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command; `Ok(false)` when it ran but a check failed.
async fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Up { dir, new, fresh, detach } => {
            up(&dir.dir, new.sections, new.elders, new.base_port, fresh, detach).await
        }
        Command::Down { dir } => {
            let genesis = open(&dir.dir)?;
            let stopped = elders::stop_detached(&genesis);
            println!("stopped {stopped} elders of {}", dir.dir.display());
            if testnet::chaos::firewall::clear_left_over(&genesis) {
                println!("removed the network faults an interrupted chaos run left");
            }
            Ok(true)
        }
        Command::Chaos { dir, new, scenario, seconds, seed, in_flight, accounts, json } => {
            let options = testnet::chaos::Options {
                scenario: testnet::chaos::scenario::Scenario::find(&scenario)?,
                seconds: seconds as f64,
                seed: seed.unwrap_or_else(rand::random),
                in_flight: in_flight.min(accounts) as usize,
                accounts: accounts as usize,
            };
            chaos(&dir.dir, new, &scenario, options, json).await
        }
        Command::Audit { dir, json } => audit(&dir.dir, json),
        Command::Status { dir, json } => status(&dir.dir, json).await,
        Command::Faucet { dir, to, amount } => faucet(&dir.dir, to, amount).await,
        Command::Genesis { dir, hosts, sections } => write_genesis(&dir.dir, hosts, sections),
        Command::Demo { elders } => Ok(testnet::demo::run(elders).await?),
        Command::Bench {
            dir,
            accounts,
            transfers,
            in_flight,
            cross_section,
            out,
            outage,
            rate,
            curve,
        } => {
            if !(0.0..=1.0).contains(&cross_section) {
                bail!("--cross-section must be between 0 and 1; got {cross_section}");
            }
            if curve.is_some() && (outage.is_some() || rate.is_some()) {
                bail!("--curve measures its own rates on a quiet network: leave out --outage and --rate");
            }
            let load = testnet::bench_net::Load {
                accounts: accounts as usize,
                transfers: transfers as usize,
                in_flight: (in_flight as usize).min(accounts as usize),
                cross_section,
                outage: outage.map(Duration::from_secs),
                rate: rate.map(|rate| rate as f64),
                curve: curve.is_some(),
            };
            bench(&dir.dir, load, out, curve).await
        }
        Command::BenchElder { elders, transfers, accounts, in_flight, json } => {
            let accounts = accounts.map_or(transfers as usize, |accounts| accounts as usize);
            let shape = (elders as usize, transfers as usize, accounts, in_flight as usize);
            bench_elder(shape, json).await
        }
    }
}

/// `testnet faucet`: pays from the faucet and waits for the credit.
async fn faucet(dir: &Path, to: AccountId, amount: u64) -> anyhow::Result<bool> {
    let genesis = open(dir)?;
    let client = Client::connect(&genesis.map)?;
    let mut faucet = Wallet::open(&genesis.faucet_key)?;
    let receipt = client.send(&mut faucet, Payment::new(to, Amount(amount))).await?;
    client.wait_for_credit(&receipt).await?;
    println!("paid {amount} to {to}: transfer {} (seq {})", receipt.transfer, receipt.seq);
    Ok(true)
}

/// `testnet genesis`: one self-contained directory per elder, for several machines.
fn write_genesis(dir: &Path, hosts: Vec<String>, sections: usize) -> anyhow::Result<bool> {
    let elders = hosts.len() / sections.max(1);
    if elders * sections != hosts.len() || elders == 0 {
        bail!("{} hosts do not split evenly into {sections} sections", hosts.len());
    }
    let plan = Plan { sections, elders, addresses: hosts, supply: Amount(SUPPLY) };
    let genesis = create(dir, &plan)?;
    println!("wrote {} elder directories:", genesis.elders.len());
    for elder in &genesis.elders {
        let dir = elder.config.parent().unwrap_or(Path::new("."));
        let config = elder.config.display();
        println!("  {}  {}  (elder --config {config})", elder.address, dir.display());
    }
    let (map, key) = (genesis.map.display(), genesis.faucet_key.display());
    println!("network map: {map}\nfaucet key:  {key}");
    Ok(true)
}

/// `testnet bench`: end-to-end load against the running network in `dir`.
async fn bench(
    dir: &Path,
    load: testnet::bench_net::Load,
    out: Option<PathBuf>,
    curve: Option<PathBuf>,
) -> anyhow::Result<bool> {
    let genesis = open(dir)?;
    let bar = progress_bar()?;
    let report = testnet::bench_net::run(&genesis, load, |phase, done, total| {
        show_progress(&bar, phase, done, total)
    })
    .await?;
    bar.finish_and_clear();
    let out = out.unwrap_or_else(|| dir.join("bench-summary.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let latency = &report.latency_ms;
    println!(
        "{} × {} elders, {} accounts, {} in flight, {:.0}% cross-section:\n  \
         confirmed {} transfers in {:.1} s = {:.0} transfers/s \
         ({:.2} of the {:.0} transfers/s the crypto floor allows on {} cores)\n  \
         latency p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms\n  \
         elder CPU {:.2} ms per transfer per elder ({:.2}× its share of the floor, {:.0} µs)\n\
         summary: {}",
        report.sections,
        report.elders,
        report.accounts,
        report.in_flight,
        report.cross_section * 100.0,
        report.transfers,
        report.seconds,
        report.transfers_per_second,
        report.floor.throughput_over_bound,
        report.floor.bound_transfers_per_second,
        report.floor.cores,
        latency.p50,
        latency.p90,
        latency.p99,
        latency.max,
        report.cpu_seconds_per_transfer_per_elder * 1e3,
        report.floor.elder_cpu_over_floor,
        report.floor.per_transfer_per_elder_us,
        out.display()
    );
    if let Some(catch_up) = &report.catch_up {
        println!(
            "outage: elder {} down {:.1} s, {} proofs behind; caught up {:.2} s after its restart",
            catch_up.elder,
            catch_up.down_seconds,
            catch_up.proofs_missed,
            catch_up.catch_up_seconds
        );
    }
    if let Some(svg) = curve {
        println!("latency against offered load (each transfer timed from when it was due):");
        println!("  share of peak  offered/s  confirmed/s   p50 ms   p99 ms");
        for point in &report.curve {
            println!(
                "  {:>12.0}%  {:>9.0}  {:>11.0}  {:>7.0}  {:>7.0}",
                point.share_of_peak * 100.0,
                point.offered_per_second,
                point.transfers_per_second,
                point.latency_ms.p50,
                point.latency_ms.p99
            );
        }
        testnet::bench_net::plot_curve(&report, &svg)?;
        println!("curve: {}", svg.display());
    }
    Ok(true)
}

/// `testnet chaos`: a network in `dir` (made if there is none), the run, the verdict.
async fn chaos(
    dir: &Path,
    new: NewNetwork,
    scenario: &str,
    options: testnet::chaos::Options,
    json: bool,
) -> anyhow::Result<bool> {
    let genesis = if dir.join(genesis::MAP_FILE).exists() {
        let genesis = open(dir)?;
        let running = elders::stop_detached(&genesis);
        if running > 0 {
            eprintln!(
                "stopped the {running} running elders of {}: the run starts its own",
                dir.display()
            );
        }
        genesis
    } else {
        let (sections, elders) = (new.sections.unwrap_or(2), new.elders.unwrap_or(4));
        let base = elders::free_base_port(new.base_port, sections * elders)
            .context("no free block of UDP ports for the elders")?;
        create(dir, &Plan::local(sections, elders, base, Amount(SUPPLY)))?
    };
    let network = transport::map::read(&genesis.map)?;
    let replay = format!(
        "testnet chaos --dir {} --sections {} --elders {} --scenario {scenario} --seconds {} \
         --seed {} --in-flight {} --accounts {}",
        dir.display(),
        network.sections.len(),
        network.sections[0].elder_count(),
        options.seconds,
        options.seed,
        options.in_flight,
        options.accounts
    );
    eprintln!(
        "chaos: {} for {} s, seed {}; replay with:\n  {replay}",
        options.scenario.description, options.seconds, options.seed
    );
    let (interrupt, interrupted) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping the load, healing every fault, then checking");
            let _ = interrupt.send(true);
        }
    });
    let bar =
        if json { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut verdict = testnet::chaos::run(&genesis, &options, interrupted, |p| {
        bar.set_message(format!(
            "{:<9} {:>6.1} s  {} confirmed  {} faults",
            p.phase, p.elapsed, p.confirmed, p.faults
        ))
    })
    .await?;
    bar.finish_and_clear();
    verdict.replay = replay;
    let text = serde_json::to_string_pretty(&verdict)?;
    let out = dir.join(testnet::chaos::VERDICT_FILE);
    std::fs::write(&out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    if json {
        println!("{text}");
    } else {
        print_verdict(&verdict, &out);
    }
    Ok(verdict.violations.is_empty())
}

fn print_verdict(verdict: &testnet::chaos::Verdict, out: &Path) {
    let faults: Vec<String> =
        verdict.faults.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    let dropped: Vec<String> =
        verdict.packets_dropped.iter().map(|(kind, n)| format!("{n} by {kind}")).collect();
    println!(
        "{} on {} × {} elders, seed {}, {:.0} s{}",
        verdict.scenario,
        verdict.sections,
        verdict.elders,
        verdict.seed,
        verdict.seconds,
        if verdict.interrupted { " (interrupted)" } else { "" }
    );
    println!(
        "  confirmed {} transfers, refused {}, retried {} attempts",
        verdict.confirmed, verdict.refused, verdict.retries
    );
    println!(
        "  faults: {}",
        if faults.is_empty() { "none".to_string() } else { faults.join(", ") }
    );
    if !dropped.is_empty() {
        println!(
            "  packets dropped: {} (firewall update {:.1} ms)",
            dropped.join(", "),
            verdict.firewall_update_ms
        );
    }
    println!(
        "  rate: {:.0}/s before, {:.0}/s during faults; back to half in {}",
        verdict.rate_before,
        verdict.rate_during,
        match (verdict.recovery_seconds, verdict.interrupted) {
            (Some(seconds), _) => format!("{seconds:.1} s"),
            (None, true) => "- (interrupted)".to_string(),
            (None, false) => "never".to_string(),
        }
    );
    let phase = |latency: &Option<testnet::bench_net::Latency>| {
        latency
            .as_ref()
            .map_or("-".to_string(), |l| format!("p50 {:.0} ms, p99 {:.0} ms", l.p50, l.p99))
    };
    let latency = &verdict.latency_ms;
    println!("  latency before: {}", phase(&latency.before));
    println!("  latency during: {}", phase(&latency.during));
    println!("  latency after:  {}", phase(&latency.after));
    println!(
        "  settled in {}; {} proofs checked",
        verdict.settle_seconds.map_or("-".to_string(), |s| format!("{s:.1} s")),
        verdict.proofs_checked
    );
    println!("violations: {}", verdict.violations.len());
    for violation in &verdict.violations {
        println!("  {violation}");
    }
    println!("verdict: {}\nreplay:  {}", out.display(), verdict.replay);
}

/// `testnet audit`: the checker over the stopped network in `dir`.
fn audit(dir: &Path, json: bool) -> anyhow::Result<bool> {
    let genesis = open(dir)?;
    let path = testnet::chaos::confirmed_path(&genesis);
    let confirmed: Vec<testnet::chaos::load::Confirmed> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged", path.display()))?,
        Err(_) => Vec::new(),
    };
    let audit = testnet::audit::run(&genesis, &confirmed)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&audit)?);
    } else {
        println!(
            "{} elders, {} proofs checked, {} confirmed transfers checked\nviolations: {}",
            audit.elders,
            audit.proofs_checked,
            audit.confirmed_checked,
            audit.violations.len()
        );
        for violation in &audit.violations {
            println!("  {violation}");
        }
    }
    Ok(audit.violations.is_empty())
}

/// `testnet bench-elder`: one elder's throughput, as (elders, transfers, accounts, in flight).
async fn bench_elder(
    (elders, transfers, accounts, in_flight): (usize, usize, usize, usize),
    json: bool,
) -> anyhow::Result<bool> {
    let bar = if json { indicatif::ProgressBar::hidden() } else { progress_bar()? };
    let report =
        testnet::bench_elder::run(elders, transfers, accounts, in_flight, |phase, done, total| {
            show_progress(&bar, phase, done, total)
        })
        .await?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(true);
    }
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    println!(
        "one elder of {elders}, {} accounts, {transfers} transfers, {in_flight} in flight:\n  \
         validate {:.0}/s ({:.2} s), elder CPU {:.0} µs each\n  \
         register {:.0}/s ({:.2} s), elder CPU {:.0} µs each\n  \
         load client CPU {:.0} µs per transfer\n  \
         funding {:.0} proofs/s; store {:.1} MiB; resident {:.1} MiB; restart {:.2} s\n\
         transfers/s: {:.0}",
        report.accounts,
        report.validated_per_second,
        report.validate_seconds,
        report.elder_cpu_us_per_validate,
        report.registered_per_second,
        report.register_seconds,
        report.elder_cpu_us_per_register,
        report.client_cpu_us_per_transfer,
        report.funded_per_second,
        mib(report.store_bytes),
        mib(report.resident_bytes),
        report.restart_seconds,
        report.transfers_per_second
    );
    Ok(true)
}

/// The network in `dir`, with an error that says what to do if there is none.
fn open(dir: &Path) -> anyhow::Result<Genesis> {
    if !dir.join(genesis::MAP_FILE).exists() {
        bail!(
            "{} holds no network (no {}); create one with `testnet up --dir {}`",
            dir.display(),
            genesis::MAP_FILE,
            dir.display()
        );
    }
    Genesis::read(dir).with_context(|| {
        format!(
            "{} is damaged; start over with `testnet up --fresh --dir {}`",
            dir.display(),
            dir.display()
        )
    })
}

fn create(dir: &Path, plan: &Plan) -> anyhow::Result<Genesis> {
    if dir.join(genesis::MAP_FILE).exists() {
        bail!(
            "{} already holds a network; use another --dir or `testnet up --fresh`",
            dir.display()
        );
    }
    Ok(genesis::write(dir, plan, &mut rand::rngs::OsRng)?)
}

async fn up(
    dir: &Path,
    sections: Option<usize>,
    elders: Option<usize>,
    base_port: u16,
    fresh: bool,
    detach: bool,
) -> anyhow::Result<bool> {
    if fresh && dir.join(genesis::MAP_FILE).exists() {
        // A damaged directory is removed too: that is what --fresh is for.
        if let Ok(genesis) = open(dir) {
            elders::stop_detached(&genesis);
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let genesis = if dir.join(genesis::MAP_FILE).exists() {
        let genesis = open(dir)?;
        if sections.is_some() || elders.is_some() {
            eprintln!("resuming the network in {}; --sections and --elders apply only to a new one (add --fresh)", dir.display());
        }
        genesis
    } else {
        let plan =
            Plan::local(sections.unwrap_or(2), elders.unwrap_or(7), base_port, Amount(SUPPLY));
        create(dir, &plan)?
    };
    let mut processes = Elders::new(genesis.clone(), detach)?;
    processes.check_ports()?;
    processes.spawn_all()?;
    let client = Client::connect(&genesis.map)?;
    let bar = indicatif::ProgressBar::new(genesis.elders.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {pos}/{len} elders answering",
    )?);
    bar.set_message("starting");
    let missing =
        survey::wait_ready(&client, READY_PATIENCE, |ready, _| bar.set_position(ready as u64))
            .await;
    bar.finish_and_clear();
    if !missing.is_empty() {
        processes.stop_all();
        bail!(
            "elders {} did not answer within {} s; see elder.log in their directories",
            missing.join(", "),
            READY_PATIENCE.as_secs()
        );
    }
    print_table(&client, &genesis, dir);
    if detach {
        println!("\nrunning in the background; stop with: testnet down --dir {}", dir.display());
        return Ok(true);
    }
    println!("\nrunning; Ctrl-C stops every elder");
    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    let unclean = tokio::task::spawn_blocking(move || processes.stop_all()).await?;
    if !unclean.is_empty() {
        bail!("elders {} did not stop cleanly", unclean.join(", "));
    }
    println!("all elders stopped cleanly");
    Ok(true)
}

fn print_table(client: &Client, genesis: &Genesis, dir: &Path) {
    let network = client.network();
    println!("{:<10} {:>6} {:>6}  addresses", "section", "elders", "f");
    for section in &network.sections {
        let addresses: Vec<&str> = section.elders.iter().map(|e| e.address.as_str()).collect();
        println!(
            "{:<10} {:>6} {:>6}  {}",
            section.prefix.to_string(),
            section.elder_count(),
            section.faults_max(),
            addresses.join(" ")
        );
    }
    let faucet = network.map.faucet;
    println!("\nnetwork map: {}", genesis.map.display());
    println!(
        "faucet key:  {} (account {faucet}, holds {})",
        genesis.faucet_key.display(),
        network.map.supply
    );
    let map = genesis.map.display();
    let (bank, testnet) = (sibling_binary("bank"), sibling_binary("testnet"));
    let dir = dir.display();
    println!("\ntry:");
    println!("  export BANK_NETWORK={map}");
    println!("  {bank} keygen --out alice.key --section 0");
    println!("  {testnet} faucet --dir {dir} --to $({bank} address --key alice.key) --amount 1000");
    println!("  {bank} balance $({bank} address --key alice.key)");
    println!("  {bank} keygen --out bob.key --section 1");
    println!(
        "  {bank} send --key alice.key --to $({bank} address --key bob.key) --amount 250 --wait"
    );
    println!("  {bank} history $({bank} address --key bob.key)");
    println!("  {testnet} status --dir {dir}");
}

/// How to call a binary built beside this one, relative to the working directory if it can be.
fn sibling_binary(name: &str) -> String {
    let exe = std::env::current_exe().unwrap_or_default().with_file_name(name);
    let cwd = std::env::current_dir().unwrap_or_default();
    match exe.strip_prefix(&cwd) {
        Ok(relative) => format!("./{}", relative.display()),
        Err(_) => exe.display().to_string(),
    }
}

/// One elder's line in `status`: its files, its answer (if up) and its store size.
type StatusRow<'a> = (&'a ElderFiles, &'a Option<ElderStatus>, u64);

/// What `status` found: every elder, each section's agreement, and the supply check.
struct StatusReport<'a> {
    rows: Vec<StatusRow<'a>>,
    views: &'a [survey::SectionView],
    agreeing: Vec<bool>,
    supply: Amount,
    total: Option<u128>,
}

/// `testnet status`: every elder's answer, each section's agreement, conservation of supply.
async fn status(dir: &Path, json: bool) -> anyhow::Result<bool> {
    let genesis = open(dir)?;
    let mut client = Client::connect(&genesis.map)?;
    client.set_patience(Duration::from_secs(5));
    let views = survey::survey(&client).await;
    let supply = client.network().map.supply;
    let total = survey::total_balance(&views);
    let mut rows = Vec::new();
    for (elder, status) in
        genesis.elders.iter().zip(views.iter().flat_map(|view| view.elders.iter()))
    {
        let store = elder.data_dir().join(elder::store::STORE_FILE);
        let bytes = std::fs::metadata(&store).map(|meta| meta.len()).unwrap_or(0);
        rows.push((elder, status, bytes));
    }
    let agreeing: Vec<bool> =
        views.iter().map(|view| view.answering_agree() && view.agreed().is_some()).collect();
    let healthy = agreeing.iter().all(|agree| *agree) && total.is_some();
    let report = StatusReport { rows, views: &views, agreeing, supply, total };
    if json {
        report.print_json();
    } else {
        report.print_table();
    }
    Ok(healthy)
}

impl StatusReport<'_> {
    fn print_json(&self) {
        let StatusReport { rows, views, agreeing, supply, total } = self;
        let elders: Vec<_> = rows
            .iter()
            .map(|(elder, status, bytes)| {
                serde_json::json!({
                    "section": elder.prefix.to_string(),
                    "index": elder.index.0,
                    "address": elder.address,
                    "up": status.is_some(),
                    "store_bytes": bytes,
                    "applied": status.as_ref().map(|s| s.applied),
                    "outbox": status.as_ref().map(|s| s.outbox),
                    "state_digest": status.as_ref().map(|s| s.state_digest.to_string()),
                })
            })
            .collect();
        let sections: Vec<_> = views
            .iter()
            .zip(agreeing)
            .map(|(view, agree)| {
                serde_json::json!({
                    "section": view.prefix.to_string(),
                    "digests_agree": agree,
                    "balance_total": view.agreed().map(|s| s.balance_total),
                })
            })
            .collect();
        let report = serde_json::json!({
            "elders": elders,
            "sections": sections,
            "supply": supply.0,
            "balance_total": total,
        });
        println!("{report}");
    }

    fn print_table(&self) {
        let StatusReport { rows, views, agreeing, .. } = self;
        let (supply, total) = (self.supply, self.total);
        println!(
            "{:<10} {:>5} {:<22} {:<5} {:>10} {:>8} {:>7}  digest",
            "section", "elder", "address", "up", "store", "applied", "outbox"
        );
        for (elder, status, bytes) in rows {
            let (up, applied, outbox, digest) = match status {
                Some(s) => (
                    "up",
                    s.applied.to_string(),
                    s.outbox.to_string(),
                    s.state_digest.to_string()[..12].to_string(),
                ),
                None => ("down", "-".into(), "-".into(), "-".into()),
            };
            let (section, index) = (elder.prefix.to_string(), elder.index.0);
            println!(
            "{section:<10} {index:>5} {:<22} {up:<5} {bytes:>10} {applied:>8} {outbox:>7}  {digest}",
            elder.address
        );
        }
        println!();
        for (view, agree) in views.iter().zip(agreeing) {
            let verdict = if *agree { "agree" } else { "DISAGREE or not enough elders up" };
            let balance = view.agreed().map_or("?".to_string(), |s| s.balance_total.to_string());
            println!(
                "section {:<10} digests {verdict}; balances {balance}",
                view.prefix.to_string()
            );
        }
        match total {
            Some(total) if total == u128::from(supply.0) => {
                println!("total of all balances {total} = supply {supply}")
            }
            Some(total) => println!(
                "total of all balances {total} vs supply {supply}: {} in flight between sections",
                u128::from(supply.0).saturating_sub(total)
            ),
            None => println!("total of all balances unknown: a section has no agreeing quorum"),
        }
    }
}

/// A progress bar for a benchmark's phases.
fn progress_bar() -> anyhow::Result<indicatif::ProgressBar> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{msg:>30} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
    )?);
    Ok(bar)
}

/// Shows a phase's progress: `done` of `total`.
fn show_progress(bar: &indicatif::ProgressBar, phase: &str, done: usize, total: usize) {
    if bar.message() != phase {
        bar.set_message(phase.to_string());
        bar.reset_eta();
    }
    bar.set_length(total as u64);
    bar.set_position(done as u64);
}
