//! The `bank` command line without a network: keys, addresses and errors that say what to do.

use std::process::{Command, Output};

fn bank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bank"))
        .args(args)
        .env_remove("BANK_NETWORK")
        .output()
        .expect("run bank")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keygen_then_address_prints_the_same_account_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("alice.key");
    let key = key.to_str().expect("utf-8 path");
    let made = bank(&["--json", "keygen", "--out", key]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let made: serde_json::Value = serde_json::from_slice(&made.stdout).expect("json");
    let shown = bank(&["address", "--key", key, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(made["account"], shown["account"]);
    assert_eq!(made["account"].as_str().map(str::len), Some(64));

    let again = bank(&["keygen", "--out", key]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
}

#[test]
fn a_malformed_account_is_refused_with_its_format() {
    let out = bank(&["--network", "/nonexistent", "balance", "12ab"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("64 hex digits"), "{}", text(&out.stderr));
}

#[test]
fn a_missing_network_map_says_how_to_give_one() {
    let account = "11".repeat(32);
    let out = bank(&["balance", &account]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--network"), "{}", text(&out.stderr));

    let out = bank(&["--network", "/nonexistent/network.map", "--json", "balance", &account]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json error");
    assert!(error["error"].as_str().is_some_and(|e| e.contains("/nonexistent/network.map")));
}
