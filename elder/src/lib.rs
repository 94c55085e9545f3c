//! The elder process: the pure ledger of `shared` behind a QUIC endpoint, with its records in
//! redb. It does nothing clever: bytes in, ledger step, commit, bytes out.
//!
//! - [`admission`]: connection slots: handshakes, the elders' own, clients per address.
//! - [`conduct`]: what leaves the elder; always honest here, a hook for the chaos tooling.
//! - [`config`]: the TOML config and the files it names, checked before anything starts.
//! - [`limits`]: every bound and timing of the process, in one place.
//! - [`store`]: the redb record log and the identity of its directory.
//! - [`node`]: the one thread that owns the ledger and commits before anything leaves.
//! - [`server`]: the QUIC endpoint, connection and stream handling, limits.
//! - [`queue`]: the ledger's input queue, one bounded share per source, taken in turn.
//! - [`peers`]: queues and connections towards the other elders.
//! - [`process`]: the elder as a process: serve until a signal, panics end it.

pub mod admission;
pub mod conduct;
pub mod config;
pub mod limits;
pub mod node;
pub mod peers;
pub mod process;
pub mod queue;
pub mod server;
pub mod store;

use shared::ledger::{Ledger, LedgerError};

use config::Config;
use store::{Identity, Store, StoreError};

/// Why an elder cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key share or identity do not fit the map.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// TLS could not be set up.
    #[error(transparent)]
    Transport(#[from] transport::quic::TransportError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source} (is another elder using that port?)")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A started elder: its endpoint serves, its ledger thread runs.
pub struct Elder {
    endpoint: quinn::Endpoint,
    inputs: queue::Inputs,
    ledger: std::thread::JoinHandle<()>,
}

impl Elder {
    /// Rebuilds the ledger from the store, binds the endpoint and starts serving; what leaves
    /// passes through `conduct` ([`conduct::Honest`] for the elder binary).
    pub fn start<C: conduct::Conduct>(config: Config, conduct: C) -> Result<Elder, StartError> {
        let identity = Identity { genesis: config.network.genesis, elder: config.me };
        let store = Store::open(&config.data_dir, identity)?;
        let records = store.records()?;
        let restored = records.len();
        let ledger =
            Ledger::rebuild(config.network.clone(), config.me, config.key_share.clone(), records)?;
        let server = transport::quic::server_config(
            &config.network.map,
            config.certificate.clone(),
            config.tls_key.clone_key(),
        )?;
        let mut endpoint = quinn::Endpoint::server(server, config.listen)
            .map_err(|source| StartError::Bind { address: config.listen, source })?;
        let identity = Some((config.certificate, config.tls_key));
        endpoint.set_default_client_config(transport::quic::client_config(
            &config.network.map,
            identity,
        )?);
        tracing::info!(
            section = %config.me.prefix,
            elder = %config.me.index,
            listen = %config.listen,
            restored,
            "elder started"
        );
        let inputs = queue::Inputs::new();
        let peers = peers::Peers::start(&config.network, config.me, &endpoint);
        let ledger = std::thread::Builder::new()
            .name("ledger".to_string())
            .spawn({
                let inputs = inputs.clone();
                move || node::run(ledger, store, inputs, peers, conduct)
            })
            .expect("spawn the ledger thread");
        tokio::spawn(server::serve(
            endpoint.clone(),
            config.network,
            inputs.clone(),
            config.client_idle,
        ));
        Ok(Elder { endpoint, inputs, ledger })
    }

    /// Stops accepting, lets the ledger finish what is queued and commit it, then closes.
    pub async fn stop(self) {
        self.endpoint.set_server_config(None);
        self.inputs.stop();
        let ledger = self.ledger;
        let _ = tokio::task::spawn_blocking(move || ledger.join()).await;
        self.endpoint.close(quinn::VarInt::from_u32(0), b"elder stopping");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.endpoint.wait_idle())
            .await;
    }
}
