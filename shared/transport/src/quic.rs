//! QUIC between clients and elders and between elders. TLS accepts an elder only if its certificate chains to the map's certificate
//! authority and its fingerprint is the one the map pins for that elder; each request is one
//! bidirectional stream carrying one encoded message each way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::limits::{IDLE_TIMEOUT_MS, KEEP_ALIVE_MS, STREAMS_PER_CONNECTION_MAX};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use shared::codec::{self, CodecError};
use shared::crypto;
use shared::limits::MESSAGE_BYTES_MAX;
use shared::network::{ElderInfo, NetworkMap};
use shared::types::Digest;

/// The name every elder certificate carries; the fingerprint tells elders apart.
pub const SERVER_NAME: &str = "elder.section-bank";
/// The application protocol both ends speak.
pub const ALPN: &[u8] = b"section-bank/1";

/// Why talking to an elder failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TLS could not be set up with these certificates.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The map's certificate authority is not a usable certificate.
    #[error("the network map's certificate authority is unusable: {0}")]
    Authority(String),
    /// A UDP socket could not be bound.
    #[error("cannot bind a UDP socket: {0}")]
    Bind(#[source] std::io::Error),
    /// The elder's address does not resolve.
    #[error("elder address {address} does not resolve to a socket address")]
    Address {
        /// The address from the map.
        address: String,
    },
    /// The connection could not be started.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The elder's address.
        address: String,
        /// Why.
        source: quinn::ConnectError,
    },
    /// The connection failed or was closed.
    #[error("connection to {address} failed: {source}")]
    Connection {
        /// The elder's address.
        address: String,
        /// Why.
        source: quinn::ConnectionError,
    },
    /// The elder's certificate is not the one the map pins.
    #[error("the elder at {address} presented a certificate the network map does not pin")]
    Fingerprint {
        /// The elder's address.
        address: String,
    },
    /// Writing the request failed.
    #[error("sending failed: {0}")]
    Write(#[from] quinn::WriteError),
    /// The stream was closed early.
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    /// Reading the answer failed or it was over `MESSAGE_BYTES_MAX`.
    #[error("receiving failed: {0}")]
    Read(#[from] quinn::ReadToEndError),
    /// The answer did not decode.
    #[error("the answer is malformed: {0}")]
    Codec(#[from] CodecError),
    /// No answer came in time.
    #[error("no answer within {ms} ms")]
    Timeout {
        /// The time waited.
        ms: u128,
    },
}

/// The ring crypto provider, chosen in one place.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The authority from the map as a root store.
pub fn root_store(map: &NetworkMap) -> Result<rustls::RootCertStore, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(map.certificate_authority.clone()))
        .map_err(|error| TransportError::Authority(error.to_string()))?;
    Ok(roots)
}

/// QUIC limits shared by both ends.
pub fn transport_config() -> quinn::TransportConfig {
    let mut config = quinn::TransportConfig::default();
    config
        .max_concurrent_bidi_streams(STREAMS_PER_CONNECTION_MAX.into())
        .max_concurrent_uni_streams(STREAMS_PER_CONNECTION_MAX.into())
        // What one peer can make us buffer: a message per stream, twice that per connection.
        .stream_receive_window(quinn::VarInt::from_u32(MESSAGE_BYTES_MAX as u32))
        .receive_window(quinn::VarInt::from_u32(2 * MESSAGE_BYTES_MAX as u32))
        .max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(IDLE_TIMEOUT_MS))))
        .keep_alive_interval(Some(Duration::from_millis(KEEP_ALIVE_MS)));
    config
}

/// Client TLS for connecting to elders; elders pass their own certificate to be known as one.
pub fn client_config(
    map: &NetworkMap,
    identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<quinn::ClientConfig, TransportError> {
    let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(root_store(map)?);
    let mut tls = match identity {
        Some((certificate, key)) => builder.with_client_auth_cert(vec![certificate], key)?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = QuicClientConfig::try_from(tls)
        .map_err(|error| TransportError::Authority(error.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// Server TLS: the elder's certificate, and client certificates checked against the map's
/// authority when presented (elders present theirs; clients need none).
pub fn server_config(
    map: &NetworkMap,
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, TransportError> {
    let provider = crypto_provider();
    let roots = Arc::new(root_store(map)?);
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|error| TransportError::Authority(error.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![certificate], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|error| TransportError::Authority(error.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

/// The fingerprint of the certificate the other end presented, if it presented one.
pub fn peer_fingerprint(connection: &quinn::Connection) -> Option<Digest> {
    let identity = connection.peer_identity()?;
    let chain = identity.downcast_ref::<Vec<CertificateDer<'static>>>()?;
    chain.first().map(|certificate| crypto::certificate_fingerprint(certificate))
}

/// Connects to one elder and checks that it is the elder the map names.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    elder: &ElderInfo,
) -> Result<quinn::Connection, TransportError> {
    let address = elder.address.clone();
    let socket = resolve(&address).await?;
    let connecting = endpoint
        .connect(socket, SERVER_NAME)
        .map_err(|source| TransportError::Connect { address: address.clone(), source })?;
    let connection = connecting
        .await
        .map_err(|source| TransportError::Connection { address: address.clone(), source })?;
    if peer_fingerprint(&connection) != Some(elder.cert_fingerprint) {
        connection.close(quinn::VarInt::from_u32(1), b"certificate not pinned");
        return Err(TransportError::Fingerprint { address });
    }
    Ok(connection)
}

async fn resolve(address: &str) -> Result<SocketAddr, TransportError> {
    let unresolvable = || TransportError::Address { address: address.to_string() };
    let mut found = tokio::net::lookup_host(address).await.map_err(|_| unresolvable())?;
    found.next().ok_or_else(unresolvable)
}

/// Sends one message on a new bidirectional stream and reads the one answer.
pub async fn exchange<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
    connection: &quinn::Connection,
    request: &Q,
) -> Result<A, TransportError> {
    let bytes = codec::encode(request)?;
    let (mut send, mut receive) = connection.open_bi().await.map_err(|source| {
        TransportError::Connection { address: connection.remote_address().to_string(), source }
    })?;
    send.write_all(&bytes).await?;
    send.finish()?;
    let answer = receive.read_to_end(MESSAGE_BYTES_MAX).await?;
    Ok(codec::decode(&answer)?)
}
