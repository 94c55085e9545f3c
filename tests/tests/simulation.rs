//! Runs the deterministic simulation over many seeds in parallel and checks every invariant.
//!
//! `SIM_SEEDS=N` runs seeds 0..N (default 200); `SIM_SEED=S` replays one seed.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use tests::sim::{self, Stats};

const DEFAULT_SEEDS: u64 = 200;

fn seeds() -> Vec<u64> {
    let number = |name: &str| {
        std::env::var(name).ok().map(|value| {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}"))
        })
    };
    match number("SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..number("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    }
}

/// Runs one seed, turning a panic (a broken assertion inside the protocol) into an error.
fn run_seed(seed: u64) -> Result<Stats, String> {
    panic::catch_unwind(AssertUnwindSafe(|| sim::run(seed))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {message}"))
    })
}

#[test]
fn every_invariant_holds_across_seeds_with_byzantine_elders_and_misbehaving_clients() {
    let seeds = seeds();
    let next = AtomicUsize::new(0);
    let total = Mutex::new(Stats::default());
    let failures = Mutex::new(Vec::new());
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match run_seed(seed) {
                        Ok(stats) => *total.lock().unwrap() += &stats,
                        Err(error) => failures.lock().unwrap().push((seed, error)),
                    }
                }
            });
        }
    });
    let total = total.into_inner().unwrap();
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    eprintln!("{total}");
    for (seed, error) in &failures {
        eprintln!("seed {seed} FAILED: {error}\n  replay: SIM_SEED={seed} cargo test -p tests --test simulation");
    }
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed; first: seed {}",
        failures.len(),
        seeds.len(),
        failures[0].0
    );
    // The run must have exercised what it claims to, or it proves nothing.
    assert_eq!(total.seeds, seeds.len() as u64);
    assert!(
        total.transfers_certified >= 50 * total.seeds,
        "too few transfers: {}",
        total.transfers_certified
    );
    assert!(total.transfers_cross_section > 0 && total.invariant_checks > 0);
    // The elders ran the production batch path: group commits of several inputs, with the
    // crypto done ahead.
    assert!(total.batches_of_several > 0, "no batch held more than one input");
    assert!(total.proofs_checked_ahead > 0 && total.shares_signed_ahead > 0, "{total}");
    if seeds.len() >= 50 {
        for (what, count) in [
            ("dropped messages", total.messages_dropped),
            ("duplicated messages", total.messages_duplicated),
            ("crashes", total.crashes),
            ("garbage shares", total.byzantine_garbage_shares),
            ("conflicting shares", total.byzantine_conflicting_shares),
            ("withheld messages", total.byzantine_withheld),
            ("forged credits", total.byzantine_forged_credits),
            ("lies", total.byzantine_lies),
            ("client equivocations", total.client_equivocations),
            ("lost-track recoveries", total.client_lost_track),
            ("wrong seqs", total.client_wrong_seq),
            ("overspends", total.client_overspends),
            ("zero amounts", total.client_zero_amounts),
            ("bad signatures", total.client_bad_signatures),
            ("replays", total.client_replays),
            ("skipped registrations", total.client_skipped_registrations),
            ("partitions", total.partitions),
            ("outbox-full refusals", total.outbox_full_refusals),
            ("refusals for funds outwaited", total.refusals_waited_out),
        ] {
            assert!(count > 0, "no {what} were injected across {} seeds", seeds.len());
        }
    }
}
