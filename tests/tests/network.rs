//! Real elder processes over real QUIC on 127.0.0.1, driven through the client library:
//! transfers within and across sections, a double spend, kill -9 and restart, an outbox that
//! survives its elder's death, and garbage sent to an elder's port.

use std::time::{Duration, Instant};

use client::wallet::Wallet;
use client::{Client, ClientError};
use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use shared::driver::{account_id, build_transfer, DriverError, Payment};
use shared::genesis::account_key_in;
use shared::messages::ElderStatus;
use shared::types::{AccountId, Amount, Memo, Seq, SignedTransfer};
use testnet::elders::Signal;
use tests::net::{wait_for, TestNet};

/// One network at a time: each is eight processes on a small machine.
static ONE_NET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A new wallet in section `section` of `net`, saved in the net's directory.
/// Records `signed` in flight in the wallet, as a client that crashed right after would leave it.
fn leave_in_flight(wallet: &mut Wallet, signed: SignedTransfer) {
    let mut state = wallet.state().clone();
    state.set_pending(Some(signed));
    wallet.save(state).expect("save the wallet");
}

fn wallet_in(net: &TestNet, section: usize, name: &str, seed: u64) -> Wallet {
    let key =
        account_key_in(&mut ChaCha20Rng::seed_from_u64(seed), net.network.sections[section].prefix);
    let path = net.dir.path().join(format!("{name}.key"));
    Wallet::create(&path, &key).expect("write key");
    Wallet::open(&path).expect("open key")
}

/// The sections of the faucet and of the other section.
fn sections(net: &TestNet) -> (usize, usize) {
    let home = net.network.section_index_of(&net.network.map.faucet);
    (home, 1 - home)
}

async fn balance(client: &Client, account: AccountId) -> Amount {
    client.balance(account).await.expect("balance").balance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_section_transfer_moves_money_and_the_section_agrees() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let net = TestNet::start(2, 4, 1);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, _) = sections(&net);
    let alice = wallet_in(&net, home, "alice", 11);
    let mut faucet = net.faucet();

    let receipt = client
        .send(
            &mut faucet,
            Payment {
                memo: Memo(b"hello".to_vec()),
                ..Payment::new(alice.account(), Amount(1_000))
            },
        )
        .await
        .expect("send");
    assert_eq!(receipt.seq.0, 1);
    client.wait_for_credit(&receipt).await.expect("credited");
    assert_eq!(balance(&client, alice.account()).await, Amount(1_000));
    assert_eq!(balance(&client, faucet.account()).await, Amount(tests::net::SUPPLY.0 - 1_000));
    let history = client.history(alice.account()).await.expect("history");
    assert_eq!(history.credits, vec![receipt.proof]);
    net.wait_section_agrees(&client, home).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_left_in_flight_by_a_crash_is_resumed_not_replaced() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let net = TestNet::start(2, 4, 9);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, _) = sections(&net);
    let alice = wallet_in(&net, home, "alice", 91);
    let mut faucet = net.faucet();
    let key = faucet.key().clone();
    let transfer = |amount, seq| {
        let payment = Payment::new(alice.account(), Amount(amount));
        build_transfer(&key, client.network(), payment, Seq(seq)).expect("transfer")
    };

    // Crash after writing the pending transfer, before sending it.
    let unsent = transfer(10, 1);
    leave_in_flight(&mut faucet, unsent);
    drop(faucet);
    let mut faucet = net.faucet();
    let resumed = client.send(&mut faucet, Payment::new(alice.account(), Amount(20))).await;
    assert!(
        matches!(
            resumed,
            Err(ClientError::Failed(DriverError::Resumed { amount: Amount(10), .. }))
        ),
        "the earlier transfer is completed and reported first: {resumed:?}"
    );
    let receipt =
        client.send(&mut faucet, Payment::new(alice.account(), Amount(20))).await.expect("send");
    assert_eq!(receipt.seq, Seq(2), "the pending transfer took seq 1");

    // Crash after registering, before the wallet recorded it.
    let registered = transfer(30, 3);
    leave_in_flight(&mut faucet, registered.clone());
    let proof = client.certify(registered, &[]).await.expect("certify");
    client.register(&proof, &[]).await.expect("register");
    drop(faucet);
    let mut faucet = net.faucet();
    let again = client.send(&mut faucet, Payment::new(alice.account(), Amount(30))).await;
    assert_eq!(again.expect("the same send run again").seq, Seq(3), "and not paid twice");
    let receipt =
        client.send(&mut faucet, Payment::new(alice.account(), Amount(40))).await.expect("send");
    assert_eq!(receipt.seq, Seq(4));

    let history = client.history(net.network.map.faucet).await.expect("history");
    let amounts: Vec<u64> = history.debits.iter().map(|proof| proof.transfer().amount.0).collect();
    assert_eq!(amounts, vec![10, 20, 30, 40], "each transfer once, in seq order");
    assert_eq!(balance(&client, alice.account()).await, Amount(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_section_transfer_credit_arrives_in_the_other_section() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let net = TestNet::start(2, 4, 2);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, away) = sections(&net);
    let bob = wallet_in(&net, away, "bob", 21);
    let mut faucet = net.faucet();

    let transfers = 50u64;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for n in 1..=transfers {
        let one = Instant::now();
        let receipt =
            client.send(&mut faucet, Payment::new(bob.account(), Amount(n))).await.expect("send");
        client.wait_for_credit(&receipt).await.expect("credited");
        latencies.push(one.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    eprintln!(
        "{transfers} sequential cross-section transfers (certified, registered, credit applied) \
         on 2 x 4 elders: {:.1} transfers/s, latency p50 {:?} max {:?}",
        transfers as f64 / elapsed.as_secs_f64(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    let total: u64 = (1..=transfers).sum();
    assert_eq!(balance(&client, bob.account()).await, Amount(total));
    let home_status = net.wait_section_agrees(&client, home).await;
    assert_eq!(home_status.applied, transfers);
    let away_status = net.wait_section_agrees(&client, away).await;
    assert_eq!(away_status.applied, transfers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_spend_at_one_seq_certifies_at_most_one_transfer() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let net = TestNet::start(2, 4, 3);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, away) = sections(&net);
    let (alice, bob) = (wallet_in(&net, home, "alice", 31), wallet_in(&net, away, "bob", 32));
    let mut faucet = net.faucet();

    // Each round a fresh account spends its seq 1 twice at once. A split vote may leave that
    // account stuck for good (R9): that is the double spender's own loss, so it is not reused.
    let mut won = 0;
    for round in 0..5u64 {
        let spender = wallet_in(&net, home, &format!("spender-{round}"), 300 + round);
        let funding = client.send(&mut faucet, Payment::new(spender.account(), Amount(100)));
        client.wait_for_credit(&funding.await.expect("fund")).await.expect("funded");
        let network = client.network();
        let signed = |to, amount| {
            build_transfer(spender.key(), network, Payment::new(to, Amount(amount)), Seq(1))
                .expect("transfer")
        };
        let (first, second) = (signed(alice.account(), 60), signed(bob.account(), 70));
        let (one, two) = tokio::join!(client.certify(first, &[]), client.certify(second, &[]));
        let outcomes = [one, two];
        let certified: Vec<_> =
            outcomes.iter().filter_map(|outcome| outcome.as_ref().ok()).collect();
        assert!(certified.len() <= 1, "round {round}: both transfers of one seq were certified");
        for outcome in &outcomes {
            if let Err(error) = outcome {
                assert!(
                    matches!(error, ClientError::Failed(DriverError::Conflict { .. })),
                    "round {round}: {error}"
                );
            }
        }
        if let Some(proof) = certified.first() {
            won += 1;
            client.register(proof, &[]).await.expect("register the certified one");
            let report = client.balance(spender.account()).await.expect("balance");
            assert_eq!(report.balance, Amount(100 - proof.transfer().amount.0));
        }
    }
    eprintln!("double spend: {won} of 5 rounds certified one transfer, the rest neither");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elder_killed_during_transfers_restarts_and_matches_its_peers() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let mut net = TestNet::start(2, 4, 4);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, away) = sections(&net);
    let bob = wallet_in(&net, away, "bob", 41);
    let alice = wallet_in(&net, home, "alice", 42);
    let mut faucet = net.faucet();
    let victim = net.position(home, 1);

    let mut sent = 0u64;
    for n in 0..30u64 {
        if n == 10 {
            net.kill(victim);
        }
        if n == 20 {
            net.spawn(victim);
        }
        let to = if n % 2 == 0 { bob.account() } else { alice.account() };
        match client.send(&mut faucet, Payment::new(to, Amount(1))).await {
            Ok(_) => {}
            // The send cut short below left its transfer in the wallet; it was finished now.
            Err(ClientError::Failed(DriverError::Resumed { .. })) => {
                sent += 1;
                client.send(&mut faucet, Payment::new(to, Amount(1))).await.expect("send");
            }
            Err(error) => panic!("send: {error}"),
        }
        sent += 1;
        if n == 5 {
            // Kill it again in the middle of a burst of requests, not between them.
            let killer = tokio::time::sleep(Duration::from_millis(3));
            tokio::pin!(killer);
            let send = client.send(&mut faucet, Payment::new(to, Amount(1)));
            tokio::select! {
                // The send is cut short too, as if the client crashed with it.
                _ = &mut killer => { net.kill(victim); net.spawn(victim); }
                result = send => { result.expect("send"); sent += 1; }
            }
        }
    }
    let status = net.wait_section_agrees(&client, home).await;
    let restarted = net.status(&client, victim).await.expect("restarted elder answers");
    assert_eq!(restarted.state_digest, status.state_digest);
    let report = client.balance(faucet.account()).await.expect("balance");
    eprintln!(
        "kill -9 test: {} transfers registered, all present at the restarted elder",
        report.next_seq.0 - 1
    );
    assert!(
        report.next_seq.0 > sent,
        "every acknowledged transfer survived: {report:?} after {sent}"
    );
    assert_eq!(restarted.applied, report.next_seq.0 - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elder_killed_before_delivering_its_outbox_delivers_after_restart() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let mut net = TestNet::start(2, 4, 5);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, away) = sections(&net);
    let bob = wallet_in(&net, away, "bob", 51);
    let mut faucet = net.faucet();
    let away_elders: Vec<usize> = (0..4).map(|index| net.position(away, index)).collect();
    let home_elders: Vec<usize> = (0..4).map(|index| net.position(home, index)).collect();

    for position in &away_elders {
        net.signal(*position, Signal::Stop);
    }
    let receipt =
        client.send(&mut faucet, Payment::new(bob.account(), Amount(77))).await.expect("send");
    for position in &home_elders {
        net.kill(*position);
    }
    for position in &away_elders {
        net.signal(*position, Signal::Continue);
    }
    assert!(
        !client.is_applied(bob.account(), receipt.transfer).await.expect("asked"),
        "credit came early"
    );
    for position in &home_elders {
        net.spawn(*position);
    }
    client.wait_for_credit(&receipt).await.expect("the restarted elders delivered the credit");
    assert_eq!(balance(&client, bob.account()).await, Amount(77));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_are_refused_while_transfers_go_on() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let net = TestNet::start(2, 4, 6);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, _) = sections(&net);
    let alice = wallet_in(&net, home, "alice", 61);
    let target = &net.network.sections[home].elders[0];

    let attack = async {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("endpoint");
        let config = transport::quic::client_config(&net.network.map, None).expect("config");
        let mut rng = ChaCha20Rng::seed_from_u64(62);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        for round in 0..20 {
            // Raw datagrams that are not QUIC at all.
            let noise: Vec<u8> = (0..1200).map(|_| rand::Rng::gen(&mut rng)).collect();
            udp.send_to(&noise, &target.address).expect("send datagram");
            let mut endpoint = endpoint.clone();
            endpoint.set_default_client_config(config.clone());
            let connection = transport::quic::connect(&endpoint, target).await.expect("connect");
            let (mut send, _receive) = connection.open_bi().await.expect("stream");
            let frame: Vec<u8> = if round % 2 == 0 {
                (0..512).map(|_| rand::Rng::gen(&mut rng)).collect()
            } else {
                vec![0u8; shared::limits::MESSAGE_BYTES_MAX + 1]
            };
            let _ = send.write_all(&frame).await;
            let _ = send.finish();
            let closed = tokio::time::timeout(Duration::from_secs(10), connection.closed()).await;
            let reason = closed.expect("the elder closed the connection");
            assert!(
                matches!(reason, quinn::ConnectionError::ApplicationClosed(ref close) if close.error_code == quinn::VarInt::from_u32(1)),
                "round {round}: closed with {reason:?}"
            );
        }
    };
    let mut faucet = net.faucet();
    let transfer = client.send(&mut faucet, Payment::new(alice.account(), Amount(5)));
    let ((), receipt) = tokio::join!(attack, transfer);
    receipt.expect("a transfer alongside the garbage succeeds");
    assert!(wait_for(|| async { balance(&client, alice.account()).await == Amount(5) }).await);
    assert!(
        net.status(&client, net.position(home, 0)).await.is_some(),
        "the attacked elder still serves"
    );
}

#[test]
fn a_key_file_is_written_with_mode_0600_never_overwritten_and_opened_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("k.key");
    let key = SigningKey::from_bytes(&[7; 32]);
    Wallet::create(&path, &key).expect("create");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(Wallet::create(&path, &key).is_err());
    let open = Wallet::open(&path).expect("open");
    assert_eq!(open.account(), account_id(&key));
    let busy = Wallet::open(&path).err().expect("a second open while the first holds it");
    assert!(busy.to_string().contains("in use by another process"), "{busy}");
    drop(open);
    Wallet::open(&path).expect("free again once the first is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_an_elder_cleanly_and_it_comes_back_with_its_state() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let mut net = TestNet::start(2, 4, 7);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, away) = sections(&net);
    let bob = wallet_in(&net, away, "bob", 71);
    let mut faucet = net.faucet();
    let elder = net.position(home, 2);
    for amount in 1..=3 {
        client.send(&mut faucet, Payment::new(bob.account(), Amount(amount))).await.expect("send");
    }
    let before = net.wait_section_agrees(&client, home).await;
    net.signal(elder, Signal::Terminate);
    assert_eq!(net.wait_exit(elder), Some(0), "{}", net.log(elder));
    net.spawn(elder);
    let same_state = |status: Option<ElderStatus>| {
        status.is_some_and(|s| (s.state_digest, s.applied) == (before.state_digest, before.applied))
    };
    assert!(wait_for(|| async { same_state(net.status(&client, elder).await) }).await);
}

/// The `bank` binary beside the `elder` binary the net runs.
fn bank_binary() -> std::path::PathBuf {
    testnet::elders::elder_binary().expect("elder binary").with_file_name("bank")
}

/// A file named `name` in the net's directory, as a command-line argument.
fn file_in(net: &TestNet, name: &str) -> String {
    net.dir.path().join(name).to_str().expect("utf-8 path").to_string()
}

/// The JSON of a `bank` run that must succeed.
fn ok((code, json, stderr): (Option<i32>, serde_json::Value, String)) -> serde_json::Value {
    assert_eq!(code, Some(0), "{stderr}");
    json
}

/// Runs `bank` with the net's map and returns (exit code, stdout as JSON, stderr).
fn bank(net: &TestNet, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let output = std::process::Command::new(bank_binary())
        .arg("--network")
        .arg(&net.genesis().map)
        .arg("--json")
        .args(args)
        .output()
        .expect("run bank");
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code(), json, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_command_line_sends_across_sections_and_explains_a_refusal() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let net = TestNet::start(2, 4, 8);
    let client = net.client();
    net.wait_ready(&client).await;
    let (_, away) = sections(&net);
    let carol_key = net.dir.path().join("carol.key");
    let carol_key = carol_key.to_str().expect("utf-8 path");
    let faucet_key = net.genesis().faucet_key.to_str().expect("utf-8 path");

    let (code, made, stderr) =
        bank(&net, &["keygen", "--out", carol_key, "--section", &away.to_string()]);
    assert_eq!(code, Some(0), "{stderr}");
    let carol = made["account"].as_str().expect("account").to_string();
    assert_eq!(net.network.section_index_of(&carol.parse().expect("account id")), away);

    let send =
        ["send", "--key", faucet_key, "--to", &carol, "--amount", "250", "--memo", "hi", "--wait"];
    let (code, sent, stderr) = bank(&net, &send);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        (sent["amount"].as_u64(), sent["seq"].as_u64(), sent["credited"].as_bool()),
        (Some(250), Some(1), Some(true))
    );

    let (code, balance, stderr) = bank(&net, &["balance", &carol]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(balance["balance"].as_u64(), Some(250));
    let (code, history, stderr) = bank(&net, &["history", &carol]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(history["credits"][0]["memo"].as_str(), Some("hi"));

    let faucet = account_id(net.faucet().key()).to_string();
    let overspend = ["send", "--key", carol_key, "--to", &faucet, "--amount", "251"];
    let (code, refused, stderr) = bank(&net, &overspend);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("balance 250 does not cover amount 251"), "{stderr}");
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("does not cover")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_multi_owner_account_pays_once_two_of_three_owners_sign_and_windows_hold() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let net = TestNet::start(2, 4, 8);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, away) = sections(&net);
    let path = |name: &str| file_in(&net, name);
    let mut owners = Vec::new();
    for name in ["o1.key", "o2.key", "o3.key"] {
        let made = ok(bank(&net, &["keygen", "--out", &path(name)]));
        owners.push(made["account"].as_str().expect("account").to_string());
    }
    let carol =
        ok(bank(&net, &["keygen", "--out", &path("carol.key"), "--section", &away.to_string()]));
    let carol = carol["account"].as_str().expect("account").to_string();
    let mut create = vec!["multisig", "create", "--threshold", "2", "--section"];
    let home_text = home.to_string();
    create.push(&home_text);
    for owner in &owners {
        create.extend(["--owner", owner.as_str()]);
    }
    let policy = path("shared.policy");
    create.extend(["--out", &policy]);
    let made = ok(bank(&net, &create));
    let shared = made["account"].as_str().expect("account").to_string();
    assert_eq!(net.network.section_index_of(&shared.parse().expect("account id")), home);
    let faucet_key = net.genesis().faucet_key.to_str().expect("utf-8 path").to_string();
    ok(bank(&net, &["send", "--key", &faucet_key, "--to", &shared, "--amount", "500", "--wait"]));

    // Owner 1 starts a payment; one signature of two does not certify it.
    let partial = path("pay.partial");
    let start = ["send", "--policy", &policy, "--key", &path("o1.key"), "--to", &carol];
    let started = ok(bank(&net, &[&start[..], &["--amount", "120", "--out", &partial]].concat()));
    assert_eq!((started["seq"].as_u64(), started["missing"].as_u64()), (Some(1), Some(1)));
    let (code, _, stderr) = bank(&net, &["submit", &partial]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("1 of 2 owner signatures; 1 more needed"), "{stderr}");
    let (code, _, stderr) = bank(&net, &["sign", &partial, "--key", &path("carol.key")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is not an owner"), "{stderr}");
    let (code, _, stderr) = bank(&net, &["sign", &partial, "--key", &path("o1.key")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("has signed this transfer already"), "{stderr}");
    ok(bank(&net, &["sign", &partial, "--key", &path("o3.key")]));
    let sent = ok(bank(&net, &["submit", &partial, "--wait"]));
    assert_eq!((sent["amount"].as_u64(), sent["credited"].as_bool()), (Some(120), Some(true)));
    assert_eq!(sent["owners_signed"].as_u64(), Some(2));
    assert_eq!(balance(&client, shared.parse().expect("id")).await, Amount(380));
    assert_eq!(balance(&client, carol.parse().expect("id")).await, Amount(120));

    // A transfer whose window has closed is refused and leaves its seq free; one whose window
    // opens in a moment waits for it and goes through.
    let send = ["send", "--key", &faucet_key, "--to", &carol, "--amount", "5"];
    let (code, refused, stderr) =
        bank(&net, &[&send[..], &["--expires", "2020-01-01T00:00:00Z"]].concat());
    assert_eq!(code, Some(1));
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("expired")), "{stderr}");
    let later = ok(bank(&net, &[&send[..], &["--not-before", "+3s"]].concat()));
    assert_eq!(later["seq"].as_u64(), Some(2), "the refused transfer used no seq");
    let opens = later["valid_after"].as_u64().expect("a window");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time");
    let skew = shared::limits::CLOCK_SKEW_MS_MAX;
    assert!(now_ms.as_millis() as u64 + skew >= opens, "certified before its window opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_bundle_ring_commits_and_a_bundle_with_an_unsigned_leg_aborts_and_refunds() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let mut net = TestNet::start(2, 4, 8);
    let client = net.client();
    net.wait_ready(&client).await;
    let (home, away) = sections(&net);
    let path = |name: &str| file_in(&net, name);
    let faucet_key = net.genesis().faucet_key.to_str().expect("utf-8 path").to_string();
    let mut accounts = Vec::new();
    for (name, section) in [("alice.key", home), ("bob.key", away), ("carol.key", home)] {
        let made =
            ok(bank(&net, &["keygen", "--out", &path(name), "--section", &section.to_string()]));
        let account = made["account"].as_str().expect("account").to_string();
        ok(bank(
            &net,
            &["send", "--key", &faucet_key, "--to", &account, "--amount", "100", "--wait"],
        ));
        accounts.push(account);
    }
    let (alice, bob, carol) = (&accounts[0], &accounts[1], &accounts[2]);

    // A ring across both sections, refereed by the other section: every leg is paid.
    let ring = path("ring.bundle");
    let referee = away.to_string();
    ok(bank(
        &net,
        &["bundle", "new", "--deadline", "+120s", "--referee", &referee, "--out", &ring],
    ));
    for (from, to, amount) in [(alice, bob, "30"), (bob, carol, "20"), (carol, alice, "10")] {
        ok(bank(&net, &["bundle", "leg", &ring, "--from", from, "--to", to, "--amount", amount]));
    }
    let (code, _, stderr) = bank(&net, &["bundle", "sign", &ring, "--key", &faucet_key]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("pays in no leg"), "{stderr}");
    for name in ["alice.key", "bob.key", "carol.key"] {
        ok(bank(&net, &["bundle", "sign", &ring, "--key", &path(name)]));
    }
    let (code, _, stderr) =
        bank(&net, &["bundle", "leg", &ring, "--from", alice, "--to", carol, "--amount", "1"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("legs cannot change"), "{stderr}");
    let submitted = ok(bank(&net, &["bundle", "submit", &ring, "--wait"]));
    assert_eq!(submitted["outcome"].as_str(), Some("commit"), "{submitted}");
    assert_eq!(submitted["settled"].as_bool(), Some(true));
    for (account, expected) in [(alice, 80), (bob, 110), (carol, 110)] {
        assert_eq!(balance(&client, account.parse().expect("id")).await, Amount(expected));
    }
    let id = submitted["bundle"].as_str().expect("bundle id").to_string();
    let status = ok(bank(&net, &["bundle", "status", &id]));
    assert_eq!(status["outcome"].as_str(), Some("commit"));

    // Bob never signs: the deadline passes, the referee decides abort, alice is refunded.
    let pair = path("pair.bundle");
    ok(bank(
        &net,
        &["bundle", "new", "--deadline", "+3s", "--referee", &home.to_string(), "--out", &pair],
    ));
    ok(bank(&net, &["bundle", "leg", &pair, "--from", alice, "--to", bob, "--amount", "50"]));
    ok(bank(&net, &["bundle", "leg", &pair, "--from", bob, "--to", alice, "--amount", "50"]));
    ok(bank(&net, &["bundle", "sign", &pair, "--key", &path("alice.key")]));
    let aborted = ok(bank(&net, &["bundle", "submit", &pair, "--wait"]));
    assert_eq!(aborted["outcome"].as_str(), Some("abort"), "{aborted}");
    assert_eq!(aborted["legs"][0].as_str(), Some("refunded"));
    assert!(aborted["legs"][1].as_str().is_some_and(|fate| fate.starts_with("not locked")));
    for (account, expected) in [(alice, 80), (bob, 110)] {
        assert_eq!(balance(&client, account.parse().expect("id")).await, Amount(expected));
    }

    // The stores hold what happened: locks, escrow, outcomes and credits add up.
    let violations = net.stop_and_audit(&client).await;
    assert!(violations.is_empty(), "{violations:#?}");
}
