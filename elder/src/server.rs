//! The elder's QUIC endpoint. Clients open one bidirectional stream per request; elders, known
//! by the certificate they present, send peer messages on unidirectional streams. Connections,
//! streams and message bytes are bounded; whoever sends garbage loses its connection while
//! everyone else is served.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use shared::codec;
use shared::ledger::ElderId;
use shared::limits::MESSAGE_BYTES_MAX;
use shared::messages::{ClientReply, ClientRequest, PeerMessage};
use shared::network::Network;
use shared::types::Digest;
use tokio::sync::oneshot;
use tracing::Instrument;
use transport::limits::MESSAGE_READ_TIMEOUT_MS;
use transport::quic;

use crate::admission::Admission;
use crate::limits::{HANDSHAKE_TIMEOUT_MS, OVERLOAD_LOG_MS};
use crate::queue::{Inputs, NotQueued};

/// Why a connection was closed by the elder: its application close code.
#[derive(Clone, Copy)]
pub enum CloseCode {
    /// A message was malformed or over the byte limit.
    Garbage = 1,
    /// A peer message came from a connection without an elder certificate.
    NotAnElder = 2,
    /// Every slot for this kind of connection, or for this address, is taken.
    TooManyConnections = 6,
    /// A client connection sent no request for the idle time.
    Idle = 7,
}

impl CloseCode {
    fn close(self, connection: &quinn::Connection, reason: &str) {
        tracing::info!(reason, "closing connection");
        connection.close(quinn::VarInt::from_u32(self as u32), reason.as_bytes());
    }
}

/// Why the elder abandoned one stream (the connection stays).
#[derive(Clone, Copy)]
pub enum StreamCode {
    /// The ledger's queue is full; ask again shortly.
    Busy = 3,
    /// The elder is stopping.
    Stopping = 4,
    /// The message did not arrive within `MESSAGE_READ_TIMEOUT_MS`.
    TooSlow = 5,
}

impl StreamCode {
    fn code(self) -> quinn::VarInt {
        quinn::VarInt::from_u32(self as u32)
    }
}

/// What every connection handler needs.
struct Context {
    inputs: Inputs,
    elders: HashMap<Digest, ElderId>,
    admission: Arc<Admission>,
    client_idle: Duration,
    turned_away: Overload,
    dropped: Overload,
    refused: Overload,
}

/// Counts inputs turned away under overload and logs the count at most once a second: a
/// warning per message would cost an overloaded elder more than the message.
#[derive(Default)]
struct Overload {
    count: std::sync::atomic::AtomicU64,
    last_logged: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Overload {
    fn note(&self, what: &'static str) {
        use std::sync::atomic::Ordering;
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_logged.lock().expect("no thread panics holding it");
        if last.is_some_and(|last| last.elapsed() < Duration::from_millis(OVERLOAD_LOG_MS)) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let count = self.count.swap(0, Ordering::Relaxed);
        tracing::warn!(count, "{what}");
    }
}

/// Accepts connections until the endpoint is closed; a client connection that sends no
/// request for `client_idle` is closed, so an idle one cannot hold its slot for ever.
pub async fn serve(
    endpoint: quinn::Endpoint,
    network: Arc<Network>,
    inputs: Inputs,
    client_idle: Duration,
) {
    let elders: HashMap<Digest, ElderId> = network
        .sections
        .iter()
        .flat_map(|section| {
            section.elders.iter().map(|elder| {
                (elder.cert_fingerprint, ElderId { prefix: section.prefix, index: elder.index })
            })
        })
        .collect();
    let admission = Admission::new(elders.len());
    let context = Arc::new(Context {
        inputs,
        elders,
        admission,
        client_idle,
        turned_away: Overload::default(),
        dropped: Overload::default(),
        refused: Overload::default(),
    });
    while let Some(incoming) = endpoint.accept().await {
        if !incoming.remote_address_validated() {
            // A stateless retry proves the address before any state is kept for it.
            let _ = incoming.retry();
            continue;
        }
        let address = incoming.remote_address().ip();
        let Some(handshake) = context.admission.handshake(address) else {
            context.refused.note("too many handshakes in progress; connections refused");
            incoming.refuse();
            continue;
        };
        let span = tracing::info_span!("connection", remote = %incoming.remote_address());
        let context = context.clone();
        tokio::spawn(
            async move {
                let timeout = Duration::from_millis(HANDSHAKE_TIMEOUT_MS);
                let connection = match tokio::time::timeout(timeout, incoming).await {
                    Ok(Ok(connection)) => connection,
                    Ok(Err(error)) => return tracing::debug!(%error, "handshake failed"),
                    Err(_) => return tracing::debug!("handshake too slow"),
                };
                drop(handshake);
                let elder = quic::peer_fingerprint(&connection)
                    .and_then(|fingerprint| context.elders.get(&fingerprint).copied());
                let Some(slot) = context.admission.connection(address, elder.is_some()) else {
                    let reason = "too many connections of this kind or from this address";
                    return CloseCode::TooManyConnections.close(&connection, reason);
                };
                handle_connection(connection, elder, context).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
}

async fn handle_connection(
    connection: quinn::Connection,
    elder: Option<ElderId>,
    context: Arc<Context>,
) {
    tracing::debug!(?elder, "connected");
    let idle = tokio::time::sleep(context.client_idle);
    tokio::pin!(idle);
    // Requests being answered: a connection is idle only with none.
    let answering = Arc::new(());
    loop {
        tokio::select! {
            stream = connection.accept_bi() => {
                let Ok((send, receive)) = stream else { break };
                idle.as_mut().reset(tokio::time::Instant::now() + context.client_idle);
                let span = tracing::debug_span!("request", kind = tracing::field::Empty);
                let (connection, context) = (connection.clone(), context.clone());
                let answering = answering.clone();
                tokio::spawn(
                    async move {
                        handle_request(connection, send, receive, context).await;
                        drop(answering);
                    }
                    .instrument(span),
                );
            }
            stream = connection.accept_uni() => {
                let Ok(receive) = stream else { break };
                let Some(from) = elder else {
                    CloseCode::NotAnElder.close(&connection, "peer messages are for elders only");
                    break;
                };
                let (connection, context) = (connection.clone(), context.clone());
                tokio::spawn(handle_peer_message(connection, from, receive, context));
            }
            () = &mut idle, if elder.is_none() => {
                if Arc::strong_count(&answering) > 1 {
                    idle.as_mut().reset(tokio::time::Instant::now() + context.client_idle);
                    continue;
                }
                CloseCode::Idle.close(&connection, "no request for the idle time");
                break;
            }
        }
    }
}

async fn read_message<T: serde::de::DeserializeOwned>(
    connection: &quinn::Connection,
    receive: &mut quinn::RecvStream,
) -> Option<(T, usize)> {
    let timeout = Duration::from_millis(MESSAGE_READ_TIMEOUT_MS);
    let bytes = match tokio::time::timeout(timeout, receive.read_to_end(MESSAGE_BYTES_MAX)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(quinn::ReadToEndError::TooLong)) => {
            CloseCode::Garbage.close(connection, "message over the byte limit");
            return None;
        }
        Ok(Err(_)) => return None,
        Err(_) => {
            let _ = receive.stop(StreamCode::TooSlow.code());
            return None;
        }
    };
    match codec::decode(&bytes) {
        Ok(message) => Some((message, bytes.len())),
        Err(error) => {
            CloseCode::Garbage.close(connection, &format!("malformed message: {error}"));
            None
        }
    }
}

async fn handle_request(
    connection: quinn::Connection,
    mut send: quinn::SendStream,
    mut receive: quinn::RecvStream,
    context: Arc<Context>,
) {
    let Some((request, bytes)) = read_message::<ClientRequest>(&connection, &mut receive).await
    else {
        return;
    };
    tracing::Span::current().record("kind", request.kind());
    tracing::debug!("request");
    if let Err(rejection) = request.check_bounds() {
        // Refused before it is queued or any signature is checked.
        tracing::debug!(%rejection, "request out of bounds");
        return write_reply(send, &ClientReply::Rejected(rejection)).await;
    }
    let (reply, answer) = oneshot::channel();
    match context.inputs.client(connection.stable_id(), request, bytes, reply) {
        Ok(()) => {}
        Err(NotQueued::Busy) => {
            context.turned_away.note("ledger queue full; requests turned away");
            let _ = send.reset(StreamCode::Busy.code());
            return;
        }
        Err(NotQueued::Stopped) => {
            let _ = send.reset(StreamCode::Stopping.code());
            return;
        }
    }
    let Ok(answer) = answer.await else {
        let _ = send.reset(StreamCode::Stopping.code());
        return;
    };
    write_reply(send, &answer).await;
}

async fn write_reply(mut send: quinn::SendStream, reply: &ClientReply) {
    let Ok(bytes) = codec::encode(reply) else { return };
    if send.write_all(&bytes).await.is_ok() {
        let _ = send.finish();
    }
}

async fn handle_peer_message(
    connection: quinn::Connection,
    from: ElderId,
    mut receive: quinn::RecvStream,
    context: Arc<Context>,
) {
    let Some((message, bytes)) = read_message::<PeerMessage>(&connection, &mut receive).await
    else {
        return;
    };
    if let Err(rejection) = message.check_bounds() {
        let (section, elder) = (from.prefix, from.index);
        tracing::warn!(%section, %elder, %rejection, "peer message out of bounds; dropped");
        return;
    }
    if context.inputs.peer(from, message, bytes) == Err(NotQueued::Busy) {
        // The sender's outbox and sync repeat what is dropped.
        context.dropped.note("ledger queue full; peer messages dropped");
    }
}
