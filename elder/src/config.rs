//! The elder's TOML config and everything it names, loaded and checked before a socket is
//! bound. Relative paths are relative to the config file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::limits::{CLIENT_IDLE_MS_DEFAULT, SMALL_FILE_BYTES_MAX};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use shared::crypto::{self, KeyShare};
use shared::ledger::ElderId;
use shared::limits::{CERTIFICATE_BYTES_MAX, PREFIX_BITS_MAX};
use shared::network::Network;
use shared::types::{ElderIndex, Prefix};
use transport::files::{self, FileError};
use transport::map::{self, MapError};

/// The config file as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The network map file.
    pub network: PathBuf,
    /// The elder's section, as its prefix bits (`""` for a single section holding everything).
    pub section: String,
    /// The elder's index in its section.
    pub index: u32,
    /// The elder's BLS key-share file (64 hex digits, mode 0600).
    pub key_share: PathBuf,
    /// The elder's TLS certificate (DER).
    pub tls_certificate: PathBuf,
    /// The TLS certificate's private key (PKCS#8 DER, mode 0600).
    pub tls_key: PathBuf,
    /// Where the elder keeps its store.
    pub data_dir: PathBuf,
    /// The UDP address to listen on.
    pub listen: SocketAddr,
    /// How long a client connection may stay without a request before the elder closes it,
    /// in milliseconds (`CLIENT_IDLE_MS_DEFAULT` if left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_idle_ms: Option<u64>,
}

/// A config with every file it names loaded and checked.
pub struct Config {
    /// The network.
    pub network: Arc<Network>,
    /// This elder.
    pub me: ElderId,
    /// Its key share.
    pub key_share: KeyShare,
    /// Its TLS certificate.
    pub certificate: CertificateDer<'static>,
    /// The certificate's key.
    pub tls_key: PrivateKeyDer<'static>,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where it listens.
    pub listen: SocketAddr,
    /// How long a client connection may stay without a request.
    pub client_idle: std::time::Duration,
}

/// What is wrong with a config; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// The network map is unusable.
    #[error(transparent)]
    Map(#[from] MapError),
}

impl ConfigFile {
    /// Reads and parses a config file, without loading what it names.
    pub fn read(path: &Path) -> Result<ConfigFile, FileError> {
        let text = files::read_bounded(path, SMALL_FILE_BYTES_MAX)?;
        let text = String::from_utf8(text).map_err(|_| FileError::new(path, "is not UTF-8"))?;
        toml::from_str(&text).map_err(|error| FileError::new(path, error.message()))
    }
}

impl Config {
    /// Loads the config at `path` and every file it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = ConfigFile::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |relative: &Path| base.join(relative);
        let network = Arc::new(map::read(&resolve(&file.network))?);
        let prefix = parse_prefix(&file.section).ok_or_else(|| {
            FileError::new(
                path,
                format!(
                    "section {:?} is not a prefix of 0s and 1s (at most {PREFIX_BITS_MAX})",
                    file.section
                ),
            )
        })?;
        let me = ElderId { prefix, index: ElderIndex(file.index) };
        let Some(section) = network.sections.iter().find(|section| section.prefix == prefix) else {
            return Err(
                FileError::new(path, format!("the network map has no section {prefix}")).into()
            );
        };
        let Some(info) = section.elders.get(file.index as usize) else {
            let count = section.elder_count();
            return Err(FileError::new(
                path,
                format!("section {prefix} has {count} elders; index {} is past them", file.index),
            )
            .into());
        };
        let key_share = read_key_share(&resolve(&file.key_share), me.index)?;
        let certificate_path = resolve(&file.tls_certificate);
        let certificate = files::read_bounded(&certificate_path, CERTIFICATE_BYTES_MAX)?;
        if crypto::certificate_fingerprint(&certificate) != info.cert_fingerprint {
            let problem = format!(
                "is not the certificate the network map pins for elder {} of section {prefix}",
                file.index
            );
            return Err(FileError::new(&certificate_path, problem).into());
        }
        let tls_key_path = resolve(&file.tls_key);
        let tls_key = files::read_secret(&tls_key_path, SMALL_FILE_BYTES_MAX)?;
        check_key_matches(&certificate, &tls_key)
            .map_err(|problem| FileError::new(&tls_key_path, problem))?;
        Ok(Config {
            network,
            me,
            key_share,
            certificate: CertificateDer::from(certificate),
            tls_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls_key)),
            data_dir: resolve(&file.data_dir),
            listen: file.listen,
            client_idle: std::time::Duration::from_millis(
                file.client_idle_ms.unwrap_or(CLIENT_IDLE_MS_DEFAULT),
            ),
        })
    }
}

/// Checks that a PKCS#8 key is usable and belongs to the certificate.
fn check_key_matches(certificate: &[u8], key: &[u8]) -> Result<(), String> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|error| format!("is not a usable PKCS#8 key ({error})"))?;
    let certified =
        rustls::sign::CertifiedKey::new(vec![CertificateDer::from(certificate.to_vec())], signing);
    certified.keys_match().map_err(|_| "is not the key of the elder's certificate".to_string())
}

/// Parses prefix bits such as `"01"`; `""` is the root.
pub fn parse_prefix(bits: &str) -> Option<Prefix> {
    if bits.len() > usize::from(PREFIX_BITS_MAX) {
        return None;
    }
    let mut value = 0u64;
    for bit in bits.chars() {
        value = (value << 1) | u64::from(bit.to_digit(2)?);
    }
    Some(Prefix { value, len: bits.len() as u8 })
}

/// The bits of a prefix as a config names them.
pub fn prefix_bits(prefix: Prefix) -> String {
    if prefix.len == 0 {
        return String::new();
    }
    prefix.to_string()
}

/// Reads elder `elder`'s key-share file: 64 hex digits.
pub fn read_key_share(path: &Path, elder: ElderIndex) -> Result<KeyShare, FileError> {
    let bytes = files::read_secret_hex(path, "a key share")?;
    KeyShare::from_scalar(elder, &bytes).ok_or_else(|| {
        FileError::new(path, "is not a key share (not a non-zero scalar below the order)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bits_round_trip_and_bad_bits_are_refused() {
        for bits in ["", "0", "1", "0110"] {
            assert_eq!(prefix_bits(parse_prefix(bits).expect(bits)), bits);
        }
        assert_eq!(parse_prefix("012"), None);
        assert_eq!(parse_prefix(&"1".repeat(33)), None);
    }
}
