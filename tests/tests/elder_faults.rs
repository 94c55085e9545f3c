//! Real elder processes meeting what must stop them: a broken invariant inside the ledger
//! ends the process with a non-zero status at once, never a zombie that keeps serving.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use shared::driver::{build_transfer, Payment};
use shared::genesis::{account_key_in, dealer_proof};
use shared::messages::{ClientReply, ClientRequest};
use shared::types::{Amount, ElderIndex, Seq};
use testnet::elders::Signal;
use tests::net::TestNet;

/// One network at a time: each is eight processes on a small machine.
static ONE_NET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_the_ledger_thread_ends_the_elder_with_a_non_zero_status() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let mut net = TestNet::start(2, 4, 81);
    let client = net.client();
    net.wait_ready(&client).await;
    let network = net.network.clone();
    let home = network.section_index_of(&network.map.faucet);
    let faucet = net.faucet();
    // Two debits for one slot, both section-signed: only a compromised section key can make
    // them, and an elder shown both must crash on its assertion rather than limp on.
    let mut rng = ChaCha20Rng::seed_from_u64(82);
    let proofs: Vec<_> = (0..2)
        .map(|_| {
            let to =
                shared::driver::account_id(&account_key_in(&mut rng, network.sections[0].prefix));
            let signed =
                build_transfer(faucet.key(), &network, Payment::new(to, Amount(5)), Seq(1))
                    .expect("a valid transfer");
            dealer_proof(&network, &net.dealer[home], home, signed)
        })
        .collect();
    let register = |proof| ClientRequest::Register { proof, deps: Vec::new() };
    let reply = client.ask(home, ElderIndex(0), &register(proofs[0].clone())).await;
    assert!(matches!(reply, Ok(ClientReply::Registered { .. })), "{reply:?}");
    let _ = client.ask(home, ElderIndex(0), &register(proofs[1].clone())).await;
    let position = net.position(home, 0);
    let code = tokio::task::block_in_place(|| net.wait_exit(position));
    assert_eq!(code, Some(101), "the elder exits with the panic status:\n{}", net.log(position));
    assert!(net.log(position).contains("panicked"), "{}", net.log(position));
    // The other elders are untouched.
    assert!(net.status(&client, net.position(home, 1)).await.is_some());
}

/// Opens a client connection to elder `index` of `section` from `endpoint`.
async fn connect_from(
    endpoint: &quinn::Endpoint,
    net: &TestNet,
    section: usize,
    index: usize,
) -> quinn::Connection {
    let target = &net.network.sections[section].elders[index];
    transport::quic::connect(endpoint, target).await.expect("connect")
}

/// Waits for `connection` to be closed by the elder; returns the close code.
async fn closed_with(connection: &quinn::Connection) -> Option<u32> {
    let closed = tokio::time::timeout(tests::net::PATIENCE, connection.closed()).await.ok()?;
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            Some(close.error_code.into_inner() as u32)
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_one_address_leaves_honest_clients_served_and_idle_ones_closed() {
    let _one = ONE_NET_AT_A_TIME.lock().await;
    let mut net = TestNet::start(2, 4, 83);
    let client = net.client();
    net.wait_ready(&client).await;
    let network = net.network.clone();
    let home = network.section_index_of(&network.map.faucet);
    // Elder 0 of the faucet's section closes idle clients after one second.
    let position = net.position(home, 0);
    net.signal(position, Signal::Terminate);
    assert_eq!(net.wait_exit(position), Some(0));
    let config = &net.genesis().elders[position].config;
    let text = std::fs::read_to_string(config).expect("config");
    std::fs::write(config, format!("{text}client_idle_ms = 1000\n")).expect("config");
    net.spawn(position);
    net.wait_ready(&client).await;

    // Another loopback address floods elder 0 with connections and holds them.
    let mut flooder = quinn::Endpoint::client("127.0.0.2:0".parse().unwrap()).expect("endpoint");
    let config = transport::quic::client_config(&network.map, None).expect("client config");
    flooder.set_default_client_config(config);
    let share = elder::limits::CLIENT_CONNECTIONS_PER_ADDRESS_MAX;
    let mut flood = Vec::new();
    for _ in 0..share + 8 {
        flood.push(connect_from(&flooder, &net, home, 0).await);
    }
    let too_many = elder::server::CloseCode::TooManyConnections as u32;
    let mut refused = 0;
    for connection in &flood[share..] {
        refused += usize::from(closed_with(connection).await == Some(too_many));
    }
    assert_eq!(refused, 8, "every connection past the address's share is closed");

    // An honest client on another address is served by that very elder while the flood holds.
    let reply = client.ask(home, ElderIndex(0), &ClientRequest::Status).await;
    assert!(matches!(reply, Ok(ClientReply::Status(_))), "{reply:?}");
    let mut faucet = net.faucet();
    let mut rng = ChaCha20Rng::seed_from_u64(84);
    let to =
        shared::driver::account_id(&account_key_in(&mut rng, network.sections[1 - home].prefix));
    client.send(&mut faucet, Payment::new(to, Amount(3))).await.expect("a transfer goes through");

    // The flood's connections make no request: the elder closes them as idle.
    let idle = elder::server::CloseCode::Idle as u32;
    assert_eq!(closed_with(&flood[0]).await, Some(idle), "an idle connection loses its slot");
}
