//! A real network for tests: genesis in a temporary directory and one `elder` process per
//! elder (through `testnet`'s process management), which tests kill, pause and restart at
//! will. Every elder is killed when the net is dropped.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::wallet::Wallet;
use client::Client;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use shared::messages::ElderStatus;
use shared::network::Network;
use shared::types::Amount;
use testnet::audit::{self, Violation};
use testnet::elders::{free_base_port, Elders, Signal};
use testnet::genesis::{self, DealerKeys, Genesis, Plan};
use testnet::survey;

/// Money in a test network.
pub const SUPPLY: Amount = Amount(1_000_000_000_000);
/// How long a test waits for a condition before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Ports handed out in this process, so parallel tests never share one.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A running test network.
pub struct TestNet {
    /// The genesis directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The network.
    pub network: Arc<Network>,
    /// The dealer's secret key set of each section, for tests that play a compromised key.
    pub dealer: DealerKeys,
    elders: Elders,
    elders_per_section: usize,
}

impl TestNet {
    /// Writes a genesis of `sections` × `elders` and starts every elder.
    pub fn start(sections: usize, elders: usize, seed: u64) -> TestNet {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = Plan::local(sections, elders, free_ports(sections * elders), SUPPLY);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (genesis, dealer) =
            genesis::write_keeping_dealer_keys(dir.path(), &plan, &mut rng).expect("genesis");
        let network = Arc::new(transport::map::read(&genesis.map).expect("the map reads back"));
        let mut processes = Elders::new(genesis, false).expect("elder binary");
        processes.spawn_all().expect("spawn elders");
        TestNet { dir, network, dealer, elders: processes, elders_per_section: elders }
    }

    /// What genesis wrote.
    pub fn genesis(&self) -> &Genesis {
        self.elders.genesis()
    }

    /// The position of elder `index` of section `section` in the genesis list.
    pub fn position(&self, section: usize, index: u32) -> usize {
        section * self.elders_per_section + index as usize
    }

    /// Starts (or restarts) the elder at `position`.
    pub fn spawn(&mut self, position: usize) {
        self.elders.spawn(position).expect("spawn elder");
    }

    /// SIGKILL: the elder dies at whatever point it was.
    pub fn kill(&mut self, position: usize) {
        self.elders.signal(position, Signal::Kill);
    }

    /// Sends a signal to the elder at `position`.
    pub fn signal(&mut self, position: usize, signal: Signal) {
        self.elders.signal(position, signal);
    }

    /// Waits up to `PATIENCE` for the elder at `position` to exit; returns its exit code, or
    /// `None` if it still runs.
    pub fn wait_exit(&mut self, position: usize) -> Option<i32> {
        self.elders.wait_exit(position, PATIENCE)
    }

    /// The log of the elder at `position`, for failure messages.
    pub fn log(&self, position: usize) -> String {
        let log = testnet::elders::log_file(&self.genesis().elders[position]);
        std::fs::read_to_string(log).unwrap_or_default()
    }

    /// A client of this network.
    pub fn client(&self) -> Client {
        let mut client = Client::new(self.network.clone()).expect("client");
        client.set_patience(PATIENCE);
        client
    }

    /// The faucet's wallet.
    pub fn faucet(&self) -> Wallet {
        Wallet::open(&self.genesis().faucet_key).expect("faucet wallet")
    }

    /// The status of one elder, if it answers.
    pub async fn status(&self, client: &Client, position: usize) -> Option<ElderStatus> {
        let section = position / self.elders_per_section;
        let index = (position % self.elders_per_section) as u32;
        survey::status(client, section, index).await
    }

    /// Waits until every elder answers a status request.
    pub async fn wait_ready(&self, client: &Client) {
        let missing = survey::wait_ready(client, PATIENCE, |_, _| {}).await;
        assert!(missing.is_empty(), "elders {missing:?} did not come up:\n{}", self.log(0));
    }

    /// Waits until the network settles, stops every elder cleanly and audits their stores as
    /// `testnet audit` does: the violations found.
    pub async fn stop_and_audit(&mut self, client: &Client) -> Vec<Violation> {
        let (settled, views) = survey::wait_settled(client, PATIENCE).await;
        assert!(settled, "the network never settled: {views:?}");
        let unclean = tokio::task::block_in_place(|| self.elders.stop_all());
        assert!(unclean.is_empty(), "elders {unclean:?} did not stop cleanly");
        audit::run(self.genesis(), &[]).expect("the audit runs").violations
    }

    /// Waits until every elder of `section` reports the same state digest; returns it.
    pub async fn wait_section_agrees(&self, client: &Client, section: usize) -> ElderStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let view = &survey::survey(client).await[section];
            let everyone = view.elders.iter().all(Option::is_some);
            if everyone && view.answering_agree() {
                return view.elders[0].clone().expect("every elder answered");
            }
            assert!(Instant::now() < deadline, "section {section} never agreed: {view:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Polls `condition` every 100 ms until it holds or `PATIENCE` runs out.
pub async fn wait_for<F, Fut>(condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    survey::wait_until(PATIENCE, condition).await
}

/// The first of `count` consecutive UDP ports that are free now, distinct within this process.
pub fn free_ports(count: usize) -> u16 {
    let offset = (std::process::id() % 200) as u16 * 100;
    let from = 30_000 + offset + NEXT_PORT.fetch_add(count as u16, Ordering::SeqCst);
    let base = free_base_port(from, count).expect("free ports");
    NEXT_PORT.fetch_max(base + count as u16 - 30_000 - offset, Ordering::SeqCst);
    base
}
