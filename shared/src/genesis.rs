//! Genesis by a trusted dealer: one threshold key set per section, `n − f` shares needed.
//! Randomness comes in as an argument, so a seed gives the same network every time.

use ed25519_dalek::SigningKey;
use rand::Rng;

use crate::crypto::{self, SectionKeys};
use crate::driver::account_id;
use crate::network::{ElderInfo, MapError, Network, NetworkMap, SectionInfo};
use crate::types::{Amount, DebitProof, ElderIndex, Prefix, SignedTransfer};

/// Deals one key set per prefix and describes each section with `elders` elders, named by
/// `elder(prefix, index)`. Returns the sections for the map and the secret key sets, whose
/// share `i` belongs to elder `i`.
pub fn deal_sections(
    rng: &mut impl Rng,
    prefixes: &[Prefix],
    elders: usize,
    mut elder: impl FnMut(Prefix, ElderIndex) -> ElderInfo,
) -> (Vec<SectionInfo>, Vec<SectionKeys>) {
    assert!(elders > 0, "a section needs at least one elder");
    let key_sets: Vec<SectionKeys> =
        prefixes.iter().map(|_| SectionKeys::deal(elders, rng.gen())).collect();
    let sections = prefixes
        .iter()
        .zip(&key_sets)
        .map(|(prefix, keys)| SectionInfo {
            prefix: *prefix,
            public_keys: keys.public_keys(),
            elders: (0..elders as u32).map(|index| elder(*prefix, ElderIndex(index))).collect(),
        })
        .collect();
    (sections, key_sets)
}

/// The shape of a network to deal.
#[derive(Clone, Debug)]
pub struct Shape {
    /// One section per prefix.
    pub prefixes: Vec<Prefix>,
    /// Elders per section.
    pub elders: usize,
    /// All the money there is, held by the faucet at genesis.
    pub supply: Amount,
    /// The certificate authority's DER certificate, for the map.
    pub authority: Vec<u8>,
}

/// A dealt network with what only the dealer knows.
pub struct Dealt {
    /// The validated network.
    pub network: Network,
    /// Each section's secret key set; share `i` belongs to elder `i`.
    pub key_sets: Vec<SectionKeys>,
    /// The faucet's key.
    pub faucet: SigningKey,
}

/// Deals a whole network of `shape`: the key sets (see [`deal_sections`]), then the faucet's
/// key from `faucet` (drawn after the key sets, from the same randomness), then the map,
/// checked. Genesis, the simulation, the fixtures and the benchmarks all build theirs here.
pub fn deal_network<R: Rng>(
    rng: &mut R,
    shape: Shape,
    elder: impl FnMut(Prefix, ElderIndex) -> ElderInfo,
    faucet: impl FnOnce(&mut R) -> SigningKey,
) -> Result<Dealt, MapError> {
    let (sections, key_sets) = deal_sections(rng, &shape.prefixes, shape.elders, elder);
    let faucet = faucet(rng);
    let map = NetworkMap {
        supply: shape.supply,
        faucet: account_id(&faucet),
        sections,
        certificate_authority: shape.authority,
    };
    Ok(Dealt { network: Network::new(map)?, key_sets, faucet })
}

/// An elder of a network that never opens a socket (tests, the simulation, benchmarks):
/// an address and fingerprint that name it and nothing more.
pub fn offline_elder(_prefix: Prefix, index: ElderIndex) -> ElderInfo {
    let address = format!("127.0.0.1:{}", 1000 + index.0);
    ElderInfo { index, address, cert_fingerprint: crate::types::Digest([index.0 as u8; 32]) }
}

/// A fresh account key whose account falls in `prefix`.
pub fn account_key_in(rng: &mut impl Rng, prefix: Prefix) -> SigningKey {
    loop {
        let key = SigningKey::from_bytes(&rng.gen());
        if prefix.matches(&account_id(&key)) {
            return key;
        }
    }
}

/// A debit proof of `signed` signed with a section's dealt keys, naming section `named`'s key:
/// `n − f` shares combined, as elders would give them when `keys` are that section's. Only the
/// dealer (benchmarks, tests) holds every share; a real network never does.
pub fn dealer_proof(
    network: &Network,
    keys: &SectionKeys,
    named: usize,
    signed: SignedTransfer,
) -> DebitProof {
    let signature =
        keys.sign(&crypto::debit_message(&network.genesis, &crypto::transfer_id(&signed)));
    DebitProof { signed, section_key: network.sections[named].key_id, signature }
}
