//! Real elder processes meeting what must stop them: a broken invariant inside the ledger
//! ends the process with a non-zero status at once, never a zombie that keeps serving.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use shared::client::build_transfer;
use shared::genesis::{account_key_in, dealer_proof};
use shared::messages::{ClientReply, ClientRequest};
use shared::types::{Amount, ElderIndex, Memo, Seq};
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
                shared::client::account_id(&account_key_in(&mut rng, network.sections[0].prefix));
            let signed =
                build_transfer(faucet.key(), &network, to, Amount(5), Seq(1), Memo::default())
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
