//! The `elder` binary refuses a bad config before binding a socket, with an error that names
//! the file and what is wrong with it.

use std::path::Path;
use std::process::Command;

use rand::SeedableRng;
use shared::types::Amount;
use testnet::genesis::{self, Plan};

/// Runs `elder --config path` and returns its exit code and stderr.
fn run_elder(config: &Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_elder"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "error")
        .output()
        .expect("run elder");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn genesis_in(dir: &Path) -> genesis::Genesis {
    let plan = Plan::local(1, 4, 1, Amount(1_000));
    genesis::write(dir, &plan, &mut rand::rngs::StdRng::seed_from_u64(9)).expect("genesis")
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nowhere.toml");
    let (code, stderr) = run_elder(&missing);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("nowhere.toml") && stderr.contains("No such file"), "{stderr}");
}

#[test]
fn a_corrupt_network_map_is_named_with_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = genesis_in(dir.path());
    let map = genesis.elders[0].config.with_file_name("network.map");
    std::fs::write(map, b"not a map").expect("corrupt the elder's copy of the map");
    let (code, stderr) = run_elder(&genesis.elders[0].config);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("network.map") && stderr.contains("is not a network map"), "{stderr}");
}

#[test]
fn a_key_share_of_another_elder_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = genesis_in(dir.path());
    let share = |position: usize| genesis.elders[position].config.with_file_name("key-share");
    std::fs::copy(share(1), share(0)).expect("swap in elder 1's share");
    let (code, stderr) = run_elder(&genesis.elders[0].config);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("key share does not belong to elder 0"), "{stderr}");
}

#[test]
fn a_certificate_the_map_does_not_pin_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = genesis_in(dir.path());
    let certificate =
        |position: usize| genesis.elders[position].config.with_file_name("tls-certificate.der");
    std::fs::copy(certificate(2), certificate(0)).expect("swap in elder 2's certificate");
    let (code, stderr) = run_elder(&genesis.elders[0].config);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("tls-certificate.der") && stderr.contains("not the certificate"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_config_field_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = genesis_in(dir.path());
    let config = &genesis.elders[0].config;
    let text = std::fs::read_to_string(config).expect("read config");
    std::fs::write(config, format!("{text}\nlisten_port = 3\n")).expect("write config");
    let (code, stderr) = run_elder(config);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("elder.toml") && stderr.contains("listen_port"), "{stderr}");
}

#[test]
fn secrets_are_written_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = genesis_in(dir.path());
    let elder_dir = genesis.elders[0].config.parent().expect("elder dir").to_path_buf();
    for secret in
        [genesis.faucet_key.clone(), elder_dir.join("key-share"), elder_dir.join("tls-key.der")]
    {
        let mode = std::fs::metadata(&secret).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", secret.display());
    }
}

#[test]
fn a_tls_key_of_another_elder_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = genesis_in(dir.path());
    let key = |position: usize| genesis.elders[position].config.with_file_name("tls-key.der");
    std::fs::remove_file(key(0)).expect("remove elder 0's key");
    std::fs::copy(key(3), key(0)).expect("swap in elder 3's key");
    let (code, stderr) = run_elder(&genesis.elders[0].config);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("tls-key.der") && stderr.contains("not the key"), "{stderr}");
}

#[test]
fn an_elder_without_its_store_refuses_to_start_unless_told_it_is_new() {
    let dir = tempfile::tempdir().expect("temp dir");
    let genesis = genesis_in(dir.path());
    let data = genesis.elders[0].data_dir();
    assert!(data.join(elder::store::STORE_FILE).is_file(), "genesis creates the store");
    std::fs::remove_dir_all(&data).expect("lose the data directory");
    let (code, stderr) = run_elder(&genesis.elders[0].config);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("elder.redb") && stderr.contains("--new-store"), "{stderr}");
    assert!(!data.exists(), "a refused start creates nothing");
}
