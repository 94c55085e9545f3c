//! `testnet bench`: end-to-end load against a running network. Accounts are funded from the
//! faucet through a two-level fan-out; then a fixed number of transfers stay in flight, each
//! from an idle account to a random one (in another section with the asked probability), each
//! confirmed when its debit is registered and its credit applied (`--rate` instead starts one
//! each time one is due, open loop, and times it from then). It reports confirmed transfers
//! per second, latency percentiles and CPU seconds per transfer per elder, each beside what the
//! crypto floor, measured on this machine before the load, allows; `--curve` then offers
//! shares of that throughput and draws latency against the offered load.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::genesis::Genesis;
use client::Client;
use ed25519_dalek::SigningKey;
use futures::stream::{FuturesUnordered, StreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use shared::driver::{account_id, build_transfer, Payment};
use shared::floor::{Floor, Setup};
use shared::genesis::account_key_in;
use shared::network::Network;
use shared::types::{AccountId, Amount, Seq};

use crate::catch_up::CatchUp;
use crate::elders::{cpu_seconds, is_elder_process, recorded_pid};
use crate::limits::{IN_FLIGHT_PER_CLIENT, PICK_TRIES};
use crate::RunError;

/// What each account gets from the faucet.
const FUNDING: u64 = 1_000_000;
/// How long each round of the floor's timing lasts (about 2 s in all).
const FLOOR_ROUND_MS: u64 = 20;
/// The shares of the peak the latency curve offers.
pub const CURVE_SHARES: [f64; 5] = [0.1, 0.25, 0.5, 0.75, 1.0];
/// How long each point of the curve offers its load.
const CURVE_POINT_SECONDS: f64 = 30.0;

/// What one load run measured.
#[derive(Clone, Debug, Serialize)]
pub struct NetBench {
    /// Sections × elders.
    pub sections: usize,
    /// Elders per section.
    pub elders: usize,
    /// Accounts sending and receiving.
    pub accounts: usize,
    /// Transfers confirmed.
    pub transfers: usize,
    /// Transfers kept in flight.
    pub in_flight: usize,
    /// Share of transfers to another section.
    pub cross_section: f64,
    /// Wall seconds of the load.
    pub seconds: f64,
    /// Confirmed transfers (debit registered, credit applied) per second.
    pub transfers_per_second: f64,
    /// Latency percentiles from sending to credit applied, in milliseconds.
    pub latency_ms: Latency,
    /// Elder CPU seconds (user + system) per transfer, averaged over elders.
    pub cpu_seconds_per_transfer_per_elder: f64,
    /// The outage's catch-up, if one was asked for.
    pub catch_up: Option<CatchUp>,
    /// The crypto floor of this network on this machine, and the figures over it.
    pub floor: FloorBound,
    /// Latency against offered load, if asked for: open-loop runs at shares of this run's
    /// throughput (the peak).
    pub curve: Vec<CurvePoint>,
}

/// One point of the latency-versus-load curve.
#[derive(Clone, Debug, Serialize)]
pub struct CurvePoint {
    /// The offered load as a share of the peak.
    pub share_of_peak: f64,
    /// Transfers offered per second.
    pub offered_per_second: f64,
    /// Transfers confirmed per second.
    pub transfers_per_second: f64,
    /// Latency percentiles, each transfer timed from when it was due, so a backlog counts.
    pub latency_ms: Latency,
}

/// What the crypto floor allows a network, measured on this machine before the load.
#[derive(Clone, Debug, Serialize)]
pub struct FloorBound {
    /// Everyone's crypto for one transfer (every elder it involves and the client), in µs.
    pub per_transfer_us: f64,
    /// One elder's share of it: the elders' part over the elders, in µs.
    pub per_transfer_per_elder_us: f64,
    /// Cores the bound divides by.
    pub cores: usize,
    /// Transfers per second the cores allow when the crypto is all they do.
    pub bound_transfers_per_second: f64,
    /// The confirmed throughput over that bound.
    pub throughput_over_bound: f64,
    /// The elders' CPU per transfer over their share of the floor.
    pub elder_cpu_over_floor: f64,
}

impl FloorBound {
    /// What `floor` allows `network` at this share of cross-section transfers (none with one
    /// section), and the run's figures over it.
    fn of(
        floor: &Floor,
        network: &Network,
        cross_section: f64,
        transfers_per_second: f64,
        cpu_seconds_per_transfer_per_elder: f64,
    ) -> FloorBound {
        let cross_section = if network.sections.len() > 1 { cross_section } else { 0.0 };
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        let per_transfer = floor.per_transfer(cross_section);
        let all_elders: usize = network.sections.iter().map(|section| section.elder_count()).sum();
        let per_elder = (per_transfer - floor.client()) / all_elders as u32;
        let bound = floor.bound(cores, cross_section);
        FloorBound {
            per_transfer_us: per_transfer.as_secs_f64() * 1e6,
            per_transfer_per_elder_us: per_elder.as_secs_f64() * 1e6,
            cores,
            bound_transfers_per_second: bound,
            throughput_over_bound: transfers_per_second / bound,
            elder_cpu_over_floor: cpu_seconds_per_transfer_per_elder / per_elder.as_secs_f64(),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// The percentiles of `latencies` (sorted here); `None` if there are none.
pub(crate) fn latency(latencies: &mut [Duration]) -> Option<Latency> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1e3
    };
    Some(Latency {
        p50: percentile(0.5),
        p90: percentile(0.9),
        p99: percentile(0.99),
        max: percentile(1.0),
    })
}

/// One account the load drives.
pub(crate) struct Account {
    pub(crate) key: SigningKey,
    pub(crate) id: AccountId,
    pub(crate) section: usize,
    pub(crate) next_seq: Seq,
}

/// `count` new accounts spread over the sections in turn.
pub(crate) fn new_accounts(network: &Network, count: usize, rng: &mut ChaCha20Rng) -> Vec<Account> {
    (0..count)
        .map(|k| {
            let section = k % network.sections.len();
            let key = account_key_in(rng, network.sections[section].prefix);
            Account { id: account_id(&key), key, section, next_seq: Seq::FIRST }
        })
        .collect()
}

/// The shape of a load run.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Accounts to fund and use.
    pub accounts: usize,
    /// Transfers to confirm.
    pub transfers: usize,
    /// Transfers in flight at once.
    pub in_flight: usize,
    /// Probability that a transfer goes to another section.
    pub cross_section: f64,
    /// Take one elder down for this long as the load starts, and time its catch-up.
    pub outage: Option<std::time::Duration>,
    /// Offer this many transfers per second (open loop, at most `in_flight` at once) instead
    /// of keeping `in_flight` going.
    pub rate: Option<f64>,
    /// After the run, measure latency at these shares of its throughput.
    pub curve: bool,
}

/// Runs the load against the network in `genesis`; `progress` hears (phase, done, total).
pub async fn run(
    genesis: &Genesis,
    load: Load,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<NetBench, RunError> {
    let network = Arc::new(transport::map::read(&genesis.map)?);
    progress("measuring the crypto floor", 0, 1);
    let elders = network.sections[0].elder_count();
    let floor = tokio::task::spawn_blocking(move || {
        let mut rng = ChaCha20Rng::from_entropy();
        let setup = Setup::deal(&mut rng, elders);
        Floor::measure(&setup, &mut rng, Duration::from_millis(FLOOR_ROUND_MS))
    })
    .await
    .map_err(|error| RunError::Failed(error.to_string()))?;
    progress("measuring the crypto floor", 1, 1);
    let clients = crate::survey::clients(&network, load.in_flight, IN_FLIGHT_PER_CLIENT)?;
    let mut rng = ChaCha20Rng::from_entropy();
    let mut accounts = new_accounts(&network, load.accounts, &mut rng);
    fund(&clients[0], genesis, &accounts, &mut progress).await?;

    let pids: Vec<u32> = genesis
        .elders
        .iter()
        .filter_map(recorded_pid)
        .filter(|pid| is_elder_process(*pid))
        .collect();
    let cpu_before: f64 = pids.iter().map(|pid| cpu_seconds(*pid)).sum();
    let outage = load
        .outage
        .map(|down| tokio::spawn(crate::catch_up::run(genesis.clone(), network.clone(), down)));
    let started = Instant::now();
    let mut latencies =
        drive_load(&network, &clients, &mut accounts, &load, &mut rng, &mut progress).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after: f64 = pids.iter().map(|pid| cpu_seconds(*pid)).sum();
    let catch_up = match outage {
        Some(task) => Some(task.await.map_err(|error| RunError::Failed(error.to_string()))??),
        None => None,
    };
    let transfers = latencies.len();
    let latency_ms = latency(&mut latencies)
        .ok_or_else(|| RunError::Failed("no transfer was confirmed".to_string()))?;
    let transfers_per_second = transfers as f64 / seconds;
    let cpu_seconds_per_transfer_per_elder =
        (cpu_after - cpu_before) / transfers as f64 / pids.len().max(1) as f64;
    let mut curve = Vec::new();
    for share in CURVE_SHARES.into_iter().filter(|_| load.curve) {
        let rate = share * transfers_per_second;
        let point = Load {
            transfers: ((rate * CURVE_POINT_SECONDS).round() as usize).max(1),
            rate: Some(rate),
            ..load
        };
        let started = Instant::now();
        let mut latencies =
            drive_load(&network, &clients, &mut accounts, &point, &mut rng, &mut progress).await?;
        let seconds = started.elapsed().as_secs_f64();
        curve.push(CurvePoint {
            share_of_peak: share,
            offered_per_second: rate,
            transfers_per_second: latencies.len() as f64 / seconds,
            latency_ms: latency(&mut latencies).expect("at least one transfer per point"),
        });
    }
    Ok(NetBench {
        sections: network.sections.len(),
        elders: network.sections[0].elder_count(),
        accounts: load.accounts,
        transfers,
        in_flight: load.in_flight,
        cross_section: load.cross_section,
        seconds,
        transfers_per_second,
        latency_ms,
        cpu_seconds_per_transfer_per_elder,
        catch_up,
        floor: FloorBound::of(
            &floor,
            &network,
            load.cross_section,
            transfers_per_second,
            cpu_seconds_per_transfer_per_elder,
        ),
        curve,
    })
}

/// Keeps `load.in_flight` transfers going (or, at a `load.rate`, starts one each time one is
/// due, at most `load.in_flight` at once), each from an account with none in flight, until
/// `load.transfers` are confirmed; returns each one's time from when it was due (sent, in a
/// closed loop) to its credit.
async fn drive_load(
    network: &Arc<Network>,
    clients: &[Client],
    accounts: &mut [Account],
    load: &Load,
    rng: &mut ChaCha20Rng,
    progress: &mut impl FnMut(&str, usize, usize),
) -> Result<Vec<Duration>, RunError> {
    let mut idle: VecDeque<usize> = (0..accounts.len()).collect();
    let mut running = FuturesUnordered::new();
    let mut latencies = Vec::with_capacity(load.transfers);
    let (mut sent, mut slot) = (0usize, 0usize);
    let started = Instant::now();
    let due = |sent: usize| match load.rate {
        Some(rate) => started + Duration::from_secs_f64(sent as f64 / rate),
        None => Instant::now(),
    };
    while latencies.len() < load.transfers {
        while running.len() < load.in_flight && sent < load.transfers {
            let scheduled = due(sent);
            if scheduled > Instant::now() {
                break;
            }
            let Some(from) = idle.pop_front() else { break };
            let to = pick_recipient(rng, accounts, from, load.cross_section);
            let account = &mut accounts[from];
            let signed = build_transfer(
                &account.key,
                network,
                Payment::new(to, Amount(1)),
                account.next_seq,
            )
            .map_err(|rejection| RunError::Failed(rejection.to_string()))?;
            account.next_seq = Seq(account.next_seq.0 + 1);
            let client = &clients[slot % clients.len()];
            slot += 1;
            sent += 1;
            running.push(async move {
                let receipt = client.certify_and_register(signed, &[]).await?;
                client.wait_for_credit(&receipt).await?;
                Ok::<_, client::ClientError>((from, scheduled.elapsed()))
            });
        }
        // At a rate, the next transfer may fall due before one finishes.
        let can_start = running.len() < load.in_flight && !idle.is_empty();
        let next = (load.rate.is_some() && sent < load.transfers && can_start).then(|| due(sent));
        let done = match next {
            Some(next) if running.is_empty() => {
                tokio::time::sleep_until(next.into()).await;
                continue;
            }
            Some(next) => tokio::select! {
                done = running.next() => done,
                () = tokio::time::sleep_until(next.into()) => continue,
            },
            None => running.next().await,
        };
        let Some(done) = done else { break };
        let (from, latency) = done?;
        idle.push_back(from);
        latencies.push(latency);
        progress("load", latencies.len(), load.transfers);
    }
    Ok(latencies)
}

/// A recipient other than `from`: in another section with probability `cross`, else in the
/// sender's own. Accounts are spread over the sections in turn, so either kind is common; a
/// tiny load may have none of the asked kind, and then any other account will do.
pub(crate) fn pick_recipient(
    rng: &mut ChaCha20Rng,
    accounts: &[Account],
    from: usize,
    cross: f64,
) -> AccountId {
    let home = accounts[from].section;
    let abroad = rng.gen_bool(cross.clamp(0.0, 1.0));
    for _ in 0..PICK_TRIES {
        let candidate = rng.gen_range(0..accounts.len());
        if candidate != from && (accounts[candidate].section != home) == abroad {
            return accounts[candidate].id;
        }
    }
    // At least two accounts (the command line's bound), so another one exists.
    let other = (from + rng.gen_range(1..accounts.len())) % accounts.len();
    accounts[other].id
}

/// Funds every account from the faucet: the faucet pays a few distributors in turn, and the
/// distributors pay the accounts in parallel, so funding takes about √accounts round trips.
pub(crate) async fn fund(
    client: &Client,
    genesis: &Genesis,
    accounts: &[Account],
    progress: &mut impl FnMut(&str, usize, usize),
) -> Result<(), RunError> {
    let network = client.network();
    let mut faucet =
        client::wallet::Wallet::open(&genesis.faucet_key).map_err(client::ClientError::from)?;
    let distributors = (accounts.len() as f64).sqrt().ceil() as usize;
    let per_distributor = accounts.len().div_ceil(distributors);
    let mut rng = ChaCha20Rng::from_entropy();
    let mut keys = Vec::new();
    for k in 0..distributors {
        let key = account_key_in(&mut rng, network.sections[k % network.sections.len()].prefix);
        let amount = Amount(FUNDING * per_distributor as u64 + 1);
        let receipt = client.send(&mut faucet, Payment::new(account_id(&key), amount)).await?;
        client.wait_for_credit(&receipt).await?;
        keys.push(key);
        progress("funding distributors", k + 1, distributors);
    }
    let mut paying = FuturesUnordered::new();
    for (key, chunk) in keys.iter().zip(accounts.chunks(per_distributor)) {
        paying.push(async move {
            for (n, account) in chunk.iter().enumerate() {
                let seq = Seq(n as u64 + 1);
                let signed =
                    build_transfer(key, network, Payment::new(account.id, Amount(FUNDING)), seq)
                        .map_err(|rejection| RunError::Failed(rejection.to_string()))?;
                let receipt = client.certify_and_register(signed, &[]).await?;
                client.wait_for_credit(&receipt).await?;
            }
            Ok::<_, RunError>(chunk.len())
        });
    }
    let mut funded = 0;
    while let Some(done) = paying.next().await {
        funded += done?;
        progress("funding accounts", funded, accounts.len());
    }
    Ok(())
}

/// Draws the latency curve of `bench` (p50 and p99 against the offered load) as an SVG file.
pub fn plot_curve(bench: &NetBench, path: &std::path::Path) -> Result<(), RunError> {
    let title = format!(
        "{} × {} elders, {:.0}% cross-section: latency against offered load",
        bench.sections,
        bench.elders,
        bench.cross_section * 100.0
    );
    draw_curve(&title, &bench.curve, path)
}

fn draw_curve(title: &str, points: &[CurvePoint], path: &std::path::Path) -> Result<(), RunError> {
    use plotters::prelude::*;
    let failed = |error: &dyn std::fmt::Display| {
        RunError::Failed(format!("cannot draw {}: {error}", path.display()))
    };
    let top = points.iter().map(|point| point.latency_ms.p99).fold(1.0, f64::max) * 1.1;
    let right = points.iter().map(|point| point.offered_per_second).fold(1.0, f64::max) * 1.05;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..right, 0.0..top)
        .map_err(|e| failed(&e))?;
    chart
        .configure_mesh()
        .x_desc("offered transfers per second")
        .y_desc("latency, ms")
        .draw()
        .map_err(|e| failed(&e))?;
    type Percentile = fn(&Latency) -> f64;
    let lines: [(&str, RGBColor, Percentile); 2] =
        [("p50", BLUE, |latency| latency.p50), ("p99", RED, |latency| latency.p99)];
    for (name, color, percentile) in lines {
        let series =
            points.iter().map(|point| (point.offered_per_second, percentile(&point.latency_ms)));
        chart
            .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
            .map_err(|e| failed(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(series.map(|(x, y)| Circle::new((x, y), 4, color.filled())))
            .map_err(|e| failed(&e))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|e| failed(&e))?;
    root.present().map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_shows_both_percentiles_at_every_point() {
        let latency = |p50, p99| Latency { p50, p90: p99, p99, max: p99 };
        let points: Vec<CurvePoint> = CURVE_SHARES
            .iter()
            .map(|share| CurvePoint {
                share_of_peak: *share,
                offered_per_second: share * 200.0,
                transfers_per_second: share * 190.0,
                latency_ms: latency(share * 100.0, share * 400.0),
            })
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("curve.svg");
        draw_curve("a test", &points, &path).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in ["a test", "p50", "p99", "offered transfers per second", "latency, ms"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert_eq!(svg.matches("<circle").count(), 2 * CURVE_SHARES.len());
        let missing = draw_curve("nowhere", &points, &dir.path().join("no/such/dir/curve.svg"));
        assert!(
            matches!(missing, Err(RunError::Failed(problem)) if problem.contains("cannot draw"))
        );
    }
}
