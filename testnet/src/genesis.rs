//! Writes a whole network into a directory, as a trusted dealer would: a BLS key set per
//! section, a certificate authority and one TLS certificate per elder, the network map, a
//! faucet key holding the supply, and one config per elder. Secrets get mode 0600; the
//! dealer's BLS master keys and the authority's key are not kept.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use client::wallet::Wallet;
use rand::{CryptoRng, Rng};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use shared::codec;
use shared::crypto;
use shared::genesis::{deal_network, Dealt, Shape};
use shared::limits::{ELDERS_MAX, SECTIONS_MAX};
use shared::network::ElderInfo;
use shared::types::{Amount, ElderIndex, Prefix};

use elder::config::{prefix_bits, ConfigFile};
use elder::store::{Identity, Store, StoreError};
use shared::ledger::ElderId;
use transport::files::{self, FileError, SECRET_FILE_MODE};
use transport::quic::SERVER_NAME;

/// The network map's file name in a genesis directory.
pub const MAP_FILE: &str = "network.map";
/// The faucet key's file name in a genesis directory.
pub const FAUCET_KEY_FILE: &str = "faucet.key";
/// An elder's config file name inside its directory.
pub const CONFIG_FILE: &str = "elder.toml";

/// The shape of a network to create.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Sections: a power of two, so prefixes of equal length split every account.
    pub sections: usize,
    /// Elders per section.
    pub elders: usize,
    /// Every elder's `host:port`, section by section: `sections × elders` of them.
    pub addresses: Vec<String>,
    /// All money there is.
    pub supply: Amount,
}

impl Plan {
    /// A network on 127.0.0.1 whose elder `k` (counting across sections) has port
    /// `base_port + k`.
    pub fn local(sections: usize, elders: usize, base_port: u16, supply: Amount) -> Plan {
        let count = sections.saturating_mul(elders);
        let addresses =
            (0..count).map(|k| format!("127.0.0.1:{}", usize::from(base_port) + k)).collect();
        Plan { sections, elders, addresses, supply }
    }
}

/// One elder's files.
#[derive(Clone, Debug)]
pub struct ElderFiles {
    /// Its section.
    pub prefix: Prefix,
    /// Its index.
    pub index: ElderIndex,
    /// Its address, as the map gives it to everyone.
    pub address: String,
    /// The socket address it binds.
    pub listen: SocketAddr,
    /// Its config file.
    pub config: PathBuf,
}

impl ElderFiles {
    /// Its data directory, beside its config.
    pub fn data_dir(&self) -> PathBuf {
        self.config.with_file_name(DATA_DIR)
    }
}

/// What genesis wrote.
#[derive(Clone, Debug)]
pub struct Genesis {
    /// The network map.
    pub map: PathBuf,
    /// The faucet's key.
    pub faucet_key: PathBuf,
    /// Every elder, section by section.
    pub elders: Vec<ElderFiles>,
}

impl Genesis {
    /// Finds the network a genesis directory holds, from its map and each elder's config.
    pub fn read(dir: &Path) -> Result<Genesis, GenesisError> {
        let map = dir.join(MAP_FILE);
        let network =
            transport::map::read(&map).map_err(|error| GenesisError::Read(error.to_string()))?;
        let mut elders = Vec::new();
        for section in &network.sections {
            for elder in &section.elders {
                let config =
                    dir.join(elder_dir_name(section.prefix, elder.index)).join(CONFIG_FILE);
                let listen = ConfigFile::read(&config)?.listen;
                elders.push(ElderFiles {
                    prefix: section.prefix,
                    index: elder.index,
                    address: elder.address.clone(),
                    listen,
                    config,
                });
            }
        }
        Ok(Genesis { map, faucet_key: dir.join(FAUCET_KEY_FILE), elders })
    }
}

/// Why genesis failed.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The plan cannot be built.
    #[error("cannot plan this network: {0}")]
    Plan(String),
    /// A certificate could not be made.
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// An elder's new store could not be created.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A genesis directory's map is unusable.
    #[error("{0}")]
    Read(String),
}

/// Writes a new network into `dir`, which must not hold one yet.
pub fn write(
    dir: &Path,
    plan: &Plan,
    rng: &mut (impl Rng + CryptoRng),
) -> Result<Genesis, GenesisError> {
    write_keeping_dealer_keys(dir, plan, rng).map(|(genesis, _)| genesis)
}

/// What only the dealer knows: each section's secret key set, section by section. Benchmarks
/// keep it to make debit proofs without asking elders; a real network never has it.
pub type DealerKeys = Vec<shared::crypto::SectionKeys>;

/// Like [`write`], and hands back the dealer's key sets instead of forgetting them.
pub fn write_keeping_dealer_keys(
    dir: &Path,
    plan: &Plan,
    rng: &mut (impl Rng + CryptoRng),
) -> Result<(Genesis, DealerKeys), GenesisError> {
    let listens = check_plan(plan)?;
    std::fs::create_dir_all(dir).map_err(|error| FileError::new(dir, error))?;
    let authority = Authority::new()?;
    let prefixes = Prefix::all_of_len(plan.sections.trailing_zeros() as u8);
    let mut elders = Vec::new();
    let mut certificates = Vec::new();
    for (position, prefix) in prefixes.iter().enumerate() {
        for index in 0..plan.elders {
            let k = position * plan.elders + index;
            let (certificate, key) = authority.certify()?;
            certificates.push((certificate, key));
            elders.push(ElderFiles {
                prefix: *prefix,
                index: ElderIndex(index as u32),
                address: plan.addresses[k].clone(),
                listen: listens[k],
                config: dir
                    .join(elder_dir_name(*prefix, ElderIndex(index as u32)))
                    .join(CONFIG_FILE),
            });
        }
    }
    let mut next = 0;
    let shape = Shape {
        prefixes: prefixes.clone(),
        elders: plan.elders,
        supply: plan.supply,
        authority: authority.der(),
    };
    let named = |_, index| {
        let elder = &elders[next];
        let fingerprint = crypto::certificate_fingerprint(&certificates[next].0);
        next += 1;
        ElderInfo { index, address: elder.address.clone(), cert_fingerprint: fingerprint }
    };
    let Dealt { network, key_sets, faucet } =
        deal_network(rng, shape, named, |rng| ed25519_dalek::SigningKey::generate(rng))
            .map_err(|error| GenesisError::Plan(error.to_string()))?;
    let map_path = dir.join(MAP_FILE);
    let map_bytes =
        codec::encode(&network.map).map_err(|error| GenesisError::Plan(error.to_string()))?;
    files::replace(&map_path, &map_bytes, 0o644)?;
    let faucet_key = dir.join(FAUCET_KEY_FILE);
    Wallet::create(&faucet_key, &faucet)?;
    for (position, elder) in elders.iter().enumerate() {
        let share = key_sets[position / plan.elders].share(elder.index.0 as usize);
        let (certificate, key) = &certificates[position];
        write_elder(elder, &map_bytes, &share.scalar(), certificate, key)?;
        let identity = Identity {
            genesis: network.genesis,
            elder: ElderId { prefix: elder.prefix, index: elder.index },
        };
        Store::create(&elder.data_dir(), identity)?;
    }
    Ok((Genesis { map: map_path, faucet_key, elders }, key_sets))
}

/// Checks that `plan` can be built and returns where each elder listens.
fn check_plan(plan: &Plan) -> Result<Vec<SocketAddr>, GenesisError> {
    let sections_ok = plan.sections.is_power_of_two() && plan.sections <= SECTIONS_MAX;
    if !sections_ok || plan.elders == 0 || plan.elders > ELDERS_MAX {
        return Err(GenesisError::Plan(format!(
            "{} sections of {} elders: sections must be a power of two up to {SECTIONS_MAX} \
             and elders 1 to {ELDERS_MAX}",
            plan.sections, plan.elders
        )));
    }
    let count = plan.sections * plan.elders;
    if plan.addresses.len() != count {
        let given = plan.addresses.len();
        return Err(GenesisError::Plan(format!(
            "{count} elders need {count} addresses; {given} given"
        )));
    }
    plan.addresses.iter().map(|address| listen_address(address)).collect()
}

/// Where an elder with this map address listens: the address itself if it is an IP address,
/// else every interface at its port (a host name resolves elsewhere).
fn listen_address(address: &str) -> Result<SocketAddr, GenesisError> {
    if let Ok(socket) = address.parse() {
        return Ok(socket);
    }
    let port = address.rsplit_once(':').and_then(|(_, port)| port.parse::<u16>().ok());
    let port = port.ok_or_else(|| {
        GenesisError::Plan(format!("address {address:?} is not HOST:PORT with a port up to 65535"))
    })?;
    Ok(SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)))
}

/// The data directory's name inside an elder's directory.
pub const DATA_DIR: &str = "data";

/// The directory name of one elder inside a genesis directory.
pub fn elder_dir_name(prefix: Prefix, index: ElderIndex) -> String {
    let bits = prefix_bits(prefix);
    let section = if bits.is_empty() { "root".to_string() } else { bits };
    format!("elder-{section}-{index}")
}

/// Writes one elder's self-contained directory: it can be copied to another machine alone.
fn write_elder(
    elder: &ElderFiles,
    map: &[u8],
    key_share: &[u8; 32],
    certificate: &[u8],
    tls_key: &[u8],
) -> Result<(), GenesisError> {
    let dir = elder.config.parent().expect("an elder config lives in its directory");
    std::fs::create_dir_all(dir).map_err(|error| FileError::new(dir, error))?;
    files::create_secret_hex(&dir.join("key-share"), key_share)?;
    files::create_secret(&dir.join("tls-key.der"), tls_key)?;
    files::replace(&dir.join("tls-certificate.der"), certificate, 0o644)?;
    files::replace(&dir.join(MAP_FILE), map, 0o644)?;
    let config = ConfigFile {
        network: PathBuf::from(MAP_FILE),
        section: prefix_bits(elder.prefix),
        index: elder.index.0,
        key_share: PathBuf::from("key-share"),
        tls_certificate: PathBuf::from("tls-certificate.der"),
        tls_key: PathBuf::from("tls-key.der"),
        data_dir: PathBuf::from(DATA_DIR),
        listen: elder.listen,
        client_idle_ms: None,
    };
    let text = toml::to_string(&config).map_err(|error| GenesisError::Plan(error.to_string()))?;
    files::replace(&elder.config, text.as_bytes(), SECRET_FILE_MODE)?;
    Ok(())
}

/// The dealer's certificate authority, alive only during genesis.
struct Authority {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    fn new() -> Result<Authority, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "section bank elder authority");
        let certificate = params.self_signed(&key)?;
        Ok(Authority { certificate, key })
    }

    fn der(&self) -> Vec<u8> {
        self.certificate.der().to_vec()
    }

    /// A new elder certificate (DER) and its PKCS#8 key, for both ends of TLS.
    fn certify(&self) -> Result<(Vec<u8>, Vec<u8>), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, SERVER_NAME);
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let certificate = params.signed_by(&key, &self.certificate, &self.key)?;
        Ok((certificate.der().to_vec(), key.serialize_der()))
    }
}
