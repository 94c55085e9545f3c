//! `testnet chaos`: real transfers under real faults, then a verdict. A run funds accounts,
//! keeps transfers in flight through the client library, and meanwhile a nemesis injects the
//! faults a seed draws from a scenario ([`scenario`]): SIGKILL, SIGSTOP, a whole section down,
//! nftables partitions and packet loss ([`firewall`]), lying elders (`byzantine-elder`). Phases:
//! a quiet warm-up (the rate before), the faults, a quiet recovery (how fast the rate comes
//! back); then the load stops, every fault is healed, the network must settle, the elders are
//! stopped and the checker ([`crate::audit`]) reads every store. Ctrl-C ends the current phase
//! early and goes on to heal and check.
//!
//! - [`scenario`]: the scenario files and the schedule a seed draws.
//! - [`nemesis`]: starting and healing faults on the processes and the firewall.
//! - [`firewall`]: nftables rules on the elders' real UDP traffic.
//! - [`load`]: the transfers, each kept going until confirmed, recorded for the checker.

pub mod firewall;
pub mod load;
pub mod nemesis;
pub mod scenario;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use tokio::sync::watch;

use crate::audit::{self, violation, Violation};
use crate::bench_net::{fund, new_accounts, Latency};
use crate::elders::{log_file, Elders};
use crate::genesis::Genesis;
use crate::limits::{IN_FLIGHT_PER_CLIENT, READY_PATIENCE};
use crate::{survey, RunError};
use client::Client;
use load::{Confirmed, LoadOutcome, Tally};
use nemesis::{Injected, Nemesis, TICK};
use scenario::{Event, Kind, Scenario, Shape};

/// Quiet seconds before the faults: the rate to recover to is measured in their second half.
pub const WARM_UP_SECONDS: f64 = 8.0;
/// Quiet seconds after the faults, in which the rate must come back.
pub const RECOVERY_SECONDS: f64 = 15.0;
/// The rate counts as back once one second holds at least this share of the rate before.
const RECOVERED_SHARE: f64 = 0.5;
/// How soon after the last heal the rate must be back.
pub const RECOVERY_SECONDS_MAX: f64 = 10.0;
/// How long the healed network may take to agree, with every outbox empty.
const SETTLE_PATIENCE: Duration = Duration::from_secs(120);
/// How long a load client keeps trying one step before it tries the whole transfer again.
const CLIENT_PATIENCE: Duration = Duration::from_secs(3);
/// Where a run leaves its confirmed transfers and its verdict, inside the network directory.
pub const CONFIRMED_FILE: &str = "chaos-confirmed.json";
/// The verdict file.
pub const VERDICT_FILE: &str = "chaos-verdict.json";

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The scenario.
    pub scenario: Scenario,
    /// Seconds of faults.
    pub seconds: f64,
    /// The seed of the schedule (and of the load's choices).
    pub seed: u64,
    /// Transfers in flight.
    pub in_flight: usize,
    /// Accounts funded and used.
    pub accounts: usize,
}

/// What a run reports while it goes.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The phase.
    pub phase: &'static str,
    /// Seconds since the load began.
    pub elapsed: f64,
    /// Transfers confirmed.
    pub confirmed: u64,
    /// Faults started.
    pub faults: usize,
}

/// Latencies by phase, in ms.
#[derive(Clone, Debug, Serialize)]
pub struct Phases {
    /// Sent during the warm-up.
    pub before: Option<Latency>,
    /// Sent while faults were scheduled.
    pub during: Option<Latency>,
    /// Sent after the last heal.
    pub after: Option<Latency>,
}

/// The verdict of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The scenario.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Sections × elders.
    pub sections: usize,
    /// Elders per section.
    pub elders: usize,
    /// Seconds of load, all phases.
    pub seconds: f64,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// Transfers confirmed.
    pub confirmed: usize,
    /// Transfers refused for certain.
    pub refused: u64,
    /// Why they were refused, with how often.
    pub refusals: BTreeMap<String, u64>,
    /// Attempts that failed for a while and were tried again.
    pub retries: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// Packets the network faults dropped, by kind.
    pub packets_dropped: BTreeMap<&'static str, u64>,
    /// Mean time to rewrite the firewall table, in ms.
    pub firewall_update_ms: f64,
    /// Confirmed transfers per second in the second half of the warm-up.
    pub rate_before: f64,
    /// Confirmed per second while faults were scheduled.
    pub rate_during: f64,
    /// From the end of the faults until the first second (window start) that held half the
    /// rate before, in seconds.
    pub recovery_seconds: Option<f64>,
    /// Latency from first send to confirmation, by phase.
    pub latency_ms: Phases,
    /// How long the healed network took to settle, in seconds.
    pub settle_seconds: Option<f64>,
    /// Proofs the checker verified.
    pub proofs_checked: u64,
    /// Everything wrong; the run passes when this is empty.
    pub violations: Vec<Violation>,
    /// Every fault, when and where.
    pub injected: Vec<Injected>,
    /// The command that replays this run's schedule.
    pub replay: String,
}

/// Runs a chaos scenario on the network of `genesis` (whose elders must not be running), and
/// returns its verdict; `interrupt` turning true (Ctrl-C) ends the current phase early.
pub async fn run(
    genesis: &Genesis,
    options: &Options,
    interrupt: watch::Receiver<bool>,
    mut progress: impl FnMut(&Progress),
) -> Result<Verdict, RunError> {
    let network = Arc::new(transport::map::read(&genesis.map)?);
    let shape =
        Shape { sections: network.sections.len(), elders: network.sections[0].elder_count() };
    let schedule = options.scenario.schedule(options.seed, options.seconds, shape);
    let kinds: Vec<Kind> = schedule.iter().map(|event| event.fault.kind()).collect();
    firewall::clear_left_over(genesis);
    let firewall = if kinds.iter().any(|k| matches!(k, Kind::Partition | Kind::Loss)) {
        Some(firewall::Firewall::new(genesis).map_err(|e| RunError::Failed(e.to_string()))?)
    } else {
        None
    };
    let logs_at: Vec<u64> = genesis.elders.iter().map(|e| log_length(&log_file(e))).collect();
    let mut elders = Elders::new(genesis.clone(), false)?;
    elders.check_ports()?;
    elders.spawn_all()?;
    let mut nemesis = Nemesis::new(elders, firewall, kinds.contains(&Kind::Byzantine))
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let mut clients = survey::clients(&network, options.in_flight, IN_FLIGHT_PER_CLIENT)?;
    let missing = survey::wait_ready(&clients[0], READY_PATIENCE, |_, _| {}).await;
    if !missing.is_empty() {
        return Err(RunError::Failed(format!("elders {} did not start", missing.join(", "))));
    }
    // Fresh accounts every run: the seed fixes the faults, and a replay on the same network
    // must not sign again at seqs an earlier run used.
    let mut rng = ChaCha20Rng::from_entropy();
    let mut accounts = new_accounts(&network, options.accounts, &mut rng);
    fund(&clients[0], genesis, &accounts, &mut |_: &str, _, _| {}).await?;
    for client in &mut clients {
        client.set_patience(CLIENT_PATIENCE);
    }

    let (stop, stopped) = watch::channel(false);
    let tally = Arc::new(Tally::default());
    let began = Instant::now();
    let in_flight = options.in_flight;
    let load = tokio::spawn({
        let tally = tally.clone();
        async move {
            let mut rng = ChaCha20Rng::from_entropy();
            load::run(&clients, &mut accounts, in_flight, 0.5, &mut rng, (began, &tally), stopped)
                .await
        }
    });
    let mut violations = Vec::new();
    let timeline = drive(
        &mut nemesis,
        &schedule,
        options.seconds,
        &interrupt,
        began,
        &tally,
        &mut violations,
        &mut progress,
    )
    .await
    .map_err(|e| RunError::Failed(e.to_string()))?;
    let _ = stop.send(true);
    let outcome = load.await.map_err(|error| RunError::Failed(error.to_string()))??;
    let seconds = began.elapsed().as_secs_f64();
    progress(&Progress {
        phase: "settling",
        elapsed: seconds,
        confirmed: outcome.confirmed.len() as u64,
        faults: nemesis.injected.len(),
    });

    let settle_started = Instant::now();
    let (settled, _) = survey::wait_settled(&Client::new(network.clone())?, SETTLE_PATIENCE).await;
    let settle_seconds = settled.then(|| settle_started.elapsed().as_secs_f64());
    if !settled {
        violations.push(violation(
            "settle",
            None,
            format!("the healed network did not settle in {} s", SETTLE_PATIENCE.as_secs()),
        ));
    }
    let (packets_dropped, firewall_update_ms) = nemesis.dropped();
    let injected = nemesis.injected.clone();
    let mut elders = nemesis.into_elders();
    for name in tokio::task::spawn_blocking(move || elders.stop_all())
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?
    {
        violations.push(violation("exit", None, format!("elder {name} did not stop cleanly")));
    }
    violations.extend(panics(genesis, &logs_at));
    write_confirmed(genesis, &outcome.confirmed)?;
    progress(&Progress {
        phase: "checking",
        elapsed: seconds,
        confirmed: outcome.confirmed.len() as u64,
        faults: injected.len(),
    });
    let audit =
        audit::run(genesis, &outcome.confirmed).map_err(|e| RunError::Failed(e.to_string()))?;
    violations.extend(audit.violations);

    for conflict in &outcome.conflicts {
        violations.push(violation("conflict", None, conflict.clone()));
    }
    if outcome.confirmed.is_empty() && !timeline.interrupted {
        violations.push(violation("liveness", None, "no transfer was confirmed".to_string()));
    }
    let figures = Figures::of(&outcome, &timeline);
    if let Some(problem) = figures.liveness_problem(&timeline) {
        violations.push(violation("liveness", None, problem));
    }
    let mut faults = BTreeMap::new();
    for fault in &injected {
        *faults.entry(fault.kind).or_default() += 1;
    }
    Ok(Verdict {
        scenario: options.scenario.name.clone(),
        seed: options.seed,
        sections: shape.sections,
        elders: shape.elders,
        seconds,
        interrupted: timeline.interrupted,
        confirmed: outcome.confirmed.len(),
        refused: outcome.refused,
        refusals: outcome.refusals.iter().fold(BTreeMap::new(), |mut all, reason| {
            *all.entry(reason.clone()).or_default() += 1;
            all
        }),
        retries: outcome.retries,
        faults,
        packets_dropped,
        firewall_update_ms,
        rate_before: figures.rate_before,
        rate_during: figures.rate_during,
        recovery_seconds: figures.recovery_seconds,
        latency_ms: figures.phases,
        settle_seconds,
        proofs_checked: audit.proofs_checked,
        violations,
        injected,
        replay: String::new(),
    })
}

/// When the phases began and ended, in ms since the load began.
struct Timeline {
    faults_from: u64,
    healed_at: u64,
    ended_at: u64,
    interrupted: bool,
}

/// Runs the phases: warm-up, the schedule, recovery; ends early on `interrupt`. The nemesis's
/// steps block (signals, waits for an exit, nft): this runs on the caller's thread, and the
/// load on the runtime's workers.
#[allow(clippy::too_many_arguments)]
async fn drive(
    nemesis: &mut Nemesis,
    schedule: &[Event],
    seconds: f64,
    interrupt: &watch::Receiver<bool>,
    began: Instant,
    tally: &Tally,
    violations: &mut Vec<Violation>,
    progress: &mut impl FnMut(&Progress),
) -> Result<Timeline, nemesis::NemesisError> {
    let now_ms = || began.elapsed().as_millis() as u64;
    let faults_from = (WARM_UP_SECONDS * 1e3) as u64;
    let faults_until = faults_from + (seconds * 1e3) as u64;
    let ends_at = faults_until + (RECOVERY_SECONDS * 1e3) as u64;
    // (time, start or heal, event id), in time order, heals before starts at one time.
    let mut steps: Vec<(u64, bool, u64)> = Vec::new();
    for (id, event) in schedule.iter().enumerate() {
        steps.push((faults_from + event.at_ms, true, id as u64));
        steps.push((faults_from + event.end_ms(), false, id as u64));
    }
    steps.sort_by_key(|(at, start, id)| (*at, *start, *id));
    let mut next = 0;
    let mut healed_at = None;
    let mut interrupted = false;
    loop {
        let now = now_ms();
        if *interrupt.borrow() {
            interrupted = true;
        }
        while next < steps.len() && steps[next].0 <= now && !interrupted {
            let (_, start, id) = steps[next];
            if start {
                nemesis.start(id, &schedule[id as usize], now)?;
            } else {
                nemesis.heal(id, now)?;
            }
            next += 1;
        }
        for (elder, status) in nemesis.unexpected_exits()? {
            let detail = format!("elder {elder} exited on its own ({status}); see its elder.log");
            violations.push(violation("exit", Some(&elder), detail));
        }
        if healed_at.is_none() && (now >= faults_until || interrupted) {
            nemesis.heal_all(now)?;
            healed_at = Some(now);
        }
        if now >= ends_at || interrupted {
            let healed_at = healed_at.unwrap_or(now);
            return Ok(Timeline { faults_from, healed_at, ended_at: now, interrupted });
        }
        let phase = if now < faults_from {
            "warm-up"
        } else if now < faults_until {
            "faults"
        } else {
            "recovery"
        };
        progress(&Progress {
            phase,
            elapsed: now as f64 / 1e3,
            confirmed: tally.confirmed.load(Ordering::Relaxed),
            faults: nemesis.injected.len(),
        });
        tokio::time::sleep(TICK).await;
    }
}

/// The rates, recovery and latencies of a run.
struct Figures {
    rate_before: f64,
    rate_during: f64,
    recovery_seconds: Option<f64>,
    phases: Phases,
}

impl Figures {
    fn of(outcome: &LoadOutcome, timeline: &Timeline) -> Figures {
        let confirmed = &outcome.confirmed;
        let count = |from: u64, to: u64| {
            confirmed.iter().filter(|c| (from..to).contains(&c.confirmed_ms)).count() as f64
        };
        let half = timeline.faults_from / 2;
        let rate_before =
            count(half, timeline.faults_from) / ((timeline.faults_from - half) as f64 / 1e3);
        let during_ms = timeline.healed_at.saturating_sub(timeline.faults_from).max(1);
        let rate_during =
            count(timeline.faults_from, timeline.healed_at) / (during_ms as f64 / 1e3);
        let wanted = (rate_before * RECOVERED_SHARE).max(1.0);
        let mut recovery_seconds = None;
        let mut window = timeline.healed_at;
        while window + 1_000 <= timeline.ended_at {
            if count(window, window + 1_000) >= wanted {
                recovery_seconds = Some((window - timeline.healed_at) as f64 / 1e3);
                break;
            }
            window += 100;
        }
        let phase = |from: u64, to: u64| {
            let mut latencies: Vec<Duration> = confirmed
                .iter()
                .filter(|c| (from..to).contains(&c.sent_ms))
                .map(|c| Duration::from_millis(c.confirmed_ms - c.sent_ms))
                .collect();
            crate::bench_net::latency(&mut latencies)
        };
        let phases = Phases {
            before: phase(0, timeline.faults_from),
            during: phase(timeline.faults_from, timeline.healed_at),
            after: phase(timeline.healed_at, u64::MAX),
        };
        Figures { rate_before, rate_during, recovery_seconds, phases }
    }

    /// Why liveness failed, if it did: the rate must be back within `RECOVERY_SECONDS_MAX`.
    fn liveness_problem(&self, timeline: &Timeline) -> Option<String> {
        if timeline.interrupted || self.rate_before == 0.0 {
            return None;
        }
        match self.recovery_seconds {
            Some(seconds) if seconds <= RECOVERY_SECONDS_MAX => None,
            Some(seconds) => Some(format!(
                "the rate took {seconds:.1} s after the last heal to come back to half the {:.0}/s \
                 before the faults (at most {RECOVERY_SECONDS_MAX} s)",
                self.rate_before
            )),
            None => Some(format!(
                "the rate never came back to half the {:.0}/s before the faults in {RECOVERY_SECONDS} s",
                self.rate_before
            )),
        }
    }
}

fn log_length(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

/// Panics any elder logged since the run began.
fn panics(genesis: &Genesis, logs_at: &[u64]) -> Vec<Violation> {
    let mut found = Vec::new();
    for (elder, from) in genesis.elders.iter().zip(logs_at) {
        let log = std::fs::read(log_file(elder)).unwrap_or_default();
        let new = String::from_utf8_lossy(log.get(*from as usize..).unwrap_or_default());
        if let Some(line) = new.lines().find(|line| line.contains("panicked")) {
            let name = crate::elders::elder_name(elder);
            found.push(violation("panic", Some(&name), line.trim().to_string()));
        }
    }
    found
}

/// The confirmed transfers of the last run, for `testnet audit`.
fn write_confirmed(genesis: &Genesis, confirmed: &[Confirmed]) -> Result<(), RunError> {
    let path = confirmed_path(genesis);
    let text = serde_json::to_string(confirmed).map_err(|e| RunError::Failed(e.to_string()))?;
    std::fs::write(&path, text)?;
    Ok(())
}

/// Where a network's last chaos run left its confirmed transfers.
pub fn confirmed_path(genesis: &Genesis) -> PathBuf {
    genesis.map.with_file_name(CONFIRMED_FILE)
}
