//! The `testnet` binary as a user drives it: up (detached), faucet, status, a second up that
//! finds the ports taken, down, resume with the same state, and the demo.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn testnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testnet")).args(args).output().expect("run testnet")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `testnet status --json` until `condition` holds or a minute passes.
fn status_until(dir: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = testnet(&["status", "--dir", dir, "--json"]);
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if condition(&status) || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn all_up(status: &Value, up: bool) -> bool {
    status["elders"].as_array().is_some_and(|elders| {
        elders.len() == 8 && elders.iter().all(|elder| elder["up"].as_bool() == Some(up))
    })
}

fn settled_with(status: &Value, faucet_paid: bool) -> bool {
    all_up(status, true)
        && status["balance_total"] == status["supply"]
        && status["sections"].as_array().is_some_and(|sections| {
            sections.iter().all(|section| section["digests_agree"].as_bool() == Some(true))
        })
        && status["elders"].as_array().is_some_and(|elders| {
            elders.iter().any(|elder| elder["applied"].as_u64() == Some(1)) == faucet_paid
        })
}

/// Stops a detached net even if the test fails half-way.
struct Down<'a>(&'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        testnet(&["down", "--dir", self.0]);
    }
}

#[test]
fn up_detached_then_status_faucet_down_and_resume_keep_the_state() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("net");
    let dir = dir.to_str().expect("utf-8 path");
    let base = testnet::elders::free_base_port(24_000, 8).expect("free ports").to_string();
    let up =
        ["up", "--dir", dir, "--sections", "2", "--elders", "4", "--base-port", &base, "--detach"];
    let _down = Down(dir);
    let out = testnet(&up);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("testnet down --dir"), "{}", text(&out.stdout));

    let again = testnet(&up);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("is in use"), "{}", text(&again.stderr));

    let account = "5b".repeat(32);
    let out = testnet(&["faucet", "--dir", dir, "--to", &account, "--amount", "5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = status_until(dir, |status| settled_with(status, true));
    assert!(settled_with(&status, true), "{status}");

    let out = testnet(&["down", "--dir", dir]);
    assert!(text(&out.stdout).contains("stopped 8 elders"), "{}", text(&out.stdout));
    let status = status_until(dir, |status| all_up(status, false));
    assert!(all_up(&status, false), "{status}");

    let out = testnet(&["up", "--dir", dir, "--detach"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = status_until(dir, |status| settled_with(status, true));
    assert!(settled_with(&status, true), "the resumed net kept its state: {status}");

    let summary = Path::new(dir).join("bench-summary.json");
    let bench = [
        "bench",
        "--dir",
        dir,
        "--accounts",
        "6",
        "--transfers",
        "20",
        "--in-flight",
        "3",
        "--outage",
        "1",
    ];
    let out = testnet(&bench);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("transfers/s"), "{}", text(&out.stdout));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("json");
    assert_eq!(report["transfers"].as_u64(), Some(20));
    assert!(report["latency_ms"]["p99"].as_f64().is_some_and(|p99| p99 > 0.0), "{report}");
    // Beside each figure, the crypto floor of this machine and the figure over it.
    let floor = &report["floor"];
    let figures = [
        "per_transfer_us",
        "bound_transfers_per_second",
        "throughput_over_bound",
        "elder_cpu_over_floor",
    ];
    for figure in figures {
        assert!(floor[figure].as_f64().is_some_and(|x| x > 0.0), "{figure}: {report}");
    }
    assert!(text(&out.stdout).contains("the crypto floor allows"), "{}", text(&out.stdout));
    // One elder was down for a second meanwhile, came back and caught up.
    let catch_up = &report["catch_up"];
    assert!(catch_up["down_seconds"].as_f64().is_some_and(|down| down >= 1.0), "{report}");
    assert!(catch_up["catch_up_seconds"].as_f64().is_some_and(|up| up > 0.0), "{report}");
    let status = status_until(dir, |status| status["balance_total"] == status["supply"]);
    assert_eq!(status["balance_total"], status["supply"], "money is conserved under load");

    // At a rate, 12 transfers at 8 per second take at least the 1.4 s until the last is due.
    let paced = ["bench", "--dir", dir, "--accounts", "6", "--transfers", "12", "--rate", "8"];
    let out = testnet(&paced);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("json");
    assert_eq!(report["transfers"].as_u64(), Some(12));
    assert!(report["seconds"].as_f64().is_some_and(|seconds| seconds >= 1.375), "{report}");
}

#[test]
fn a_directory_without_a_network_says_how_to_make_one() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().to_str().expect("utf-8 path");
    let out = testnet(&["status", "--dir", dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("holds no network"), "{}", text(&out.stderr));
}

#[test]
fn the_demo_passes_every_check_and_exits_zero() {
    let out = testnet(&["demo"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("demo passed") && stdout.contains("cross-section"), "{stdout}");
}

#[test]
fn bench_elder_runs_on_a_tiny_load_and_reports_its_rates() {
    let out = testnet(&[
        "bench-elder",
        "--elders",
        "4",
        "--transfers",
        "50",
        "--accounts",
        "1500",
        "--in-flight",
        "10",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(report["transfers"].as_u64(), Some(50));
    assert_eq!(report["accounts"].as_u64(), Some(1500), "{report}");
    for figure in [
        "validated_per_second",
        "registered_per_second",
        "transfers_per_second",
        "elder_cpu_us_per_validate",
        "elder_cpu_us_per_register",
        "funded_per_second",
        "restart_seconds",
        "store_bytes",
        "resident_bytes",
    ] {
        assert!(report[figure].as_f64().is_some_and(|x| x > 0.0), "{figure}: {report}");
    }
}
