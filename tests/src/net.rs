//! A real network for tests: genesis files in a temporary directory and one `elder` process per
//! elder, each logging to a file beside its config. Processes can be killed with SIGKILL,
//! paused with SIGSTOP, resumed and restarted; everything is killed when the net is dropped.

use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::wallet::Wallet;
use client::Client;
use elder::genesis::{self, Genesis, Plan};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use shared::messages::{ClientReply, ClientRequest, ElderStatus};
use shared::network::Network;
use shared::types::{Amount, ElderIndex};

/// Money in a test network.
pub const SUPPLY: Amount = Amount(1_000_000_000_000);
/// How long a test waits for a condition before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Ports handed out in this process, so parallel tests never share one.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A workspace binary (`elder`, `bank`) in the running test's own target directory; `cargo
/// test` builds them because their packages have integration tests.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace` (cargo test builds it)",
        binary.display()
    );
    binary
}

/// A running test network.
pub struct TestNet {
    /// The genesis directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// What genesis wrote.
    pub genesis: Genesis,
    /// The network.
    pub network: Arc<Network>,
    processes: Vec<Option<Child>>,
    elders_per_section: usize,
}

impl TestNet {
    /// Writes a genesis of `sections` × `elders` and starts every elder.
    pub fn start(sections: usize, elders: usize, seed: u64) -> TestNet {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = Plan::local(sections, elders, free_ports(sections * elders), SUPPLY);
        let genesis = genesis::write(dir.path(), &plan, &mut ChaCha20Rng::seed_from_u64(seed))
            .expect("genesis");
        let network = Arc::new(client::read_network(&genesis.map).expect("the map reads back"));
        let mut net = TestNet {
            dir,
            processes: (0..genesis.elders.len()).map(|_| None).collect(),
            genesis,
            network,
            elders_per_section: elders,
        };
        for position in 0..net.processes.len() {
            net.spawn(position);
        }
        net
    }

    /// The position of elder `index` of section `section` in the genesis list.
    pub fn position(&self, section: usize, index: u32) -> usize {
        section * self.elders_per_section + index as usize
    }

    /// Starts (or restarts) the elder at `position`.
    pub fn spawn(&mut self, position: usize) {
        let config = &self.genesis.elders[position].config;
        let log = config.with_file_name("elder.log");
        let log = File::options().create(true).append(true).open(&log).expect("elder log");
        let child = Command::new(binary("elder"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", std::env::var("ELDER_LOG").unwrap_or_else(|_| "info".to_string()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn elder");
        self.processes[position] = Some(child);
    }

    /// SIGKILL: the elder dies at whatever point it was.
    pub fn kill(&mut self, position: usize) {
        if let Some(mut child) = self.processes[position].take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`) to the elder at `position`.
    pub fn signal(&self, position: usize, signal: &str) {
        let child = self.processes[position].as_ref().expect("elder running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the elder at `position` to exit and returns its exit code.
    pub fn wait_exit(&mut self, position: usize) -> Option<i32> {
        let mut child = self.processes[position].take().expect("elder running");
        child.wait().expect("wait for elder").code()
    }

    /// The log of the elder at `position`, for failure messages.
    pub fn log(&self, position: usize) -> String {
        let path = self.genesis.elders[position].config.with_file_name("elder.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// A client of this network.
    pub fn client(&self) -> Client {
        let mut client = Client::new(self.network.clone()).expect("client");
        client.set_patience(PATIENCE);
        client
    }

    /// The faucet's wallet.
    pub fn faucet(&self) -> Wallet {
        Wallet::open(&self.genesis.faucet_key).expect("faucet wallet")
    }

    /// The status of one elder, if it answers.
    pub async fn status(&self, client: &Client, position: usize) -> Option<ElderStatus> {
        let (section, index) = self.locate(position);
        match client.ask(section, index, &ClientRequest::Status).await {
            Ok(ClientReply::Status(status)) => Some(status),
            _ => None,
        }
    }

    fn locate(&self, position: usize) -> (usize, ElderIndex) {
        let section = position / self.elders_per_section;
        (section, ElderIndex((position % self.elders_per_section) as u32))
    }

    /// Waits until every elder answers a status request.
    pub async fn wait_ready(&self, client: &Client) {
        for position in 0..self.processes.len() {
            let ready = wait_for(|| async { self.status(client, position).await.is_some() }).await;
            assert!(ready, "elder {position} did not come up:\n{}", self.log(position));
        }
    }

    /// Waits until every elder of `section` reports the same state digest; returns it.
    pub async fn wait_section_agrees(&self, client: &Client, section: usize) -> ElderStatus {
        let positions: Vec<usize> = (0..self.elders_per_section as u32)
            .map(|index| self.position(section, index))
            .collect();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut statuses = Vec::new();
            for position in &positions {
                statuses.extend(self.status(client, *position).await);
            }
            let agreed = statuses.len() == positions.len()
                && statuses.iter().all(|status| status.state_digest == statuses[0].state_digest);
            if agreed {
                return statuses.swap_remove(0);
            }
            assert!(Instant::now() < deadline, "section {section} never agreed: {statuses:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for position in 0..self.processes.len() {
            if let Some(child) = &self.processes[position] {
                let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).status();
            }
            self.kill(position);
        }
    }
}

/// Polls `condition` every 100 ms until it holds or `PATIENCE` runs out.
pub async fn wait_for<F, Fut>(mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The first of `count` consecutive UDP ports that are free now, distinct within this process.
fn free_ports(count: usize) -> u16 {
    let offset = (std::process::id() % 200) as u16 * 100;
    loop {
        let taken = NEXT_PORT.fetch_add(count as u16, Ordering::SeqCst);
        let base = 30_000 + offset + taken;
        let all_free = (0..count as u16).all(|k| UdpSocket::bind(("127.0.0.1", base + k)).is_ok());
        if all_free {
            return base;
        }
    }
}
