//! Messages to other elders: one queue and one sending task per elder, each keeping a
//! connection that authenticates this elder by its certificate. A full queue or an unreachable
//! elder drops messages; the protocol repeats what matters (outbox retries, sync ticks).

use std::collections::HashMap;
use std::time::Duration;

use crate::limits::{CONNECT_TIMEOUT_MS, PEER_QUEUE_MAX, RECONNECT_DELAY_MS};
use shared::codec;
use shared::ledger::ElderId;
use shared::messages::PeerMessage;
use shared::network::{ElderInfo, Network};
use tokio::sync::mpsc;
use tracing::Instrument;
use transport::quic;

/// Queues towards every other elder of the network.
#[derive(Clone)]
pub struct Peers {
    queues: HashMap<ElderId, mpsc::Sender<PeerMessage>>,
}

impl Peers {
    /// Starts one sending task per elder other than `me`, on `endpoint`.
    pub fn start(network: &Network, me: ElderId, endpoint: &quinn::Endpoint) -> Peers {
        let mut queues = HashMap::new();
        for section in &network.sections {
            for elder in &section.elders {
                let id = ElderId { prefix: section.prefix, index: elder.index };
                if id == me {
                    continue;
                }
                let (sender, receiver) = mpsc::channel(PEER_QUEUE_MAX);
                let span = tracing::debug_span!("peer", section = %id.prefix, elder = %id.index);
                tokio::spawn(deliver(endpoint.clone(), elder.clone(), receiver).instrument(span));
                queues.insert(id, sender);
            }
        }
        Peers { queues }
    }

    /// Queues a message; drops it if the queue is full.
    pub fn send(&self, to: ElderId, message: PeerMessage) {
        if let Some(queue) = self.queues.get(&to) {
            if queue.try_send(message).is_err() {
                tracing::debug!(section = %to.prefix, elder = %to.index, "peer queue full; dropped");
            }
        }
    }
}

async fn deliver(
    endpoint: quinn::Endpoint,
    elder: ElderInfo,
    mut queue: mpsc::Receiver<PeerMessage>,
) {
    let mut connection: Option<quinn::Connection> = None;
    while let Some(message) = queue.recv().await {
        let Ok(bytes) = codec::encode(&message) else { continue };
        if connection.as_ref().is_none_or(|c| c.close_reason().is_some()) {
            let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
            match tokio::time::timeout(timeout, quic::connect(&endpoint, &elder)).await {
                Ok(Ok(opened)) => connection = Some(opened),
                outcome => {
                    let problem = match outcome {
                        Ok(Err(error)) => error.to_string(),
                        _ => "timed out".to_string(),
                    };
                    tracing::debug!(%problem, "cannot reach elder");
                    connection = None;
                    tokio::time::sleep(Duration::from_millis(RECONNECT_DELAY_MS)).await;
                    continue;
                }
            }
        }
        let open = connection.as_ref().expect("connected above");
        let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
        let sent = tokio::time::timeout(timeout, send_one(open, &bytes)).await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::debug!("sending to elder failed or timed out; reconnecting");
            connection = None;
        }
    }
}

async fn send_one(
    connection: &quinn::Connection,
    bytes: &[u8],
) -> Result<(), quic::TransportError> {
    let mut stream =
        connection.open_uni().await.map_err(|source| quic::TransportError::Connection {
            address: connection.remote_address().to_string(),
            source,
        })?;
    stream.write_all(bytes).await?;
    stream.finish()?;
    Ok(())
}
