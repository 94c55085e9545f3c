//! The network map (written once at genesis) and its validated, ready-to-use form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::{
    self, HashedMessage, SectionPublicKeys, SignaturePoint, GENESIS_DOMAIN, SECTION_KEY_DOMAIN,
};
use crate::limits::{
    ADDRESS_BYTES_MAX, CERTIFICATE_BYTES_MAX, ELDERS_MAX, PREFIX_BITS_MAX, SECTIONS_MAX,
};
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Amount, Authority, BlsSignature, Bundle, BundleId, DebitProof, Digest, ElderIndex,
    OutcomeCertificate, Prefix, SectionKeyId, SignedTransfer,
};

/// One elder as the map names it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ElderInfo {
    /// The elder's position in its section; it holds key share `index`.
    pub index: ElderIndex,
    /// Where it listens (`host:port`).
    pub address: String,
    /// SHA-256 of its TLS certificate, pinned by everyone who connects.
    pub cert_fingerprint: Digest,
}

/// One section as the map names it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SectionInfo {
    /// The accounts the section holds.
    pub prefix: Prefix,
    /// The section's threshold public keys: the encoded sharing (mode, n, then the n − f
    /// coefficients of its public polynomial in G2, 96 bytes each; the first is the section key).
    pub public_keys: Vec<u8>,
    /// The section's elders, index 0 first.
    pub elders: Vec<ElderInfo>,
}

/// The network map file: everything a client or elder needs to find and check sections.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NetworkMap {
    /// All money there is; the faucet holds it at genesis.
    pub supply: Amount,
    /// The account that holds the supply at genesis.
    pub faucet: AccountId,
    /// Every section; their prefixes split all accounts.
    pub sections: Vec<SectionInfo>,
    /// DER of the certificate authority that signed every elder's TLS certificate.
    pub certificate_authority: Vec<u8>,
}

/// Why a network map is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The section count is zero or above `SECTIONS_MAX`.
    #[error("a network map needs 1 to {max} sections; this one has {count}")]
    SectionCount {
        /// Sections in the map.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A prefix is malformed.
    #[error("section prefix {prefix:?} is malformed (at most {max} bits)")]
    BadPrefix {
        /// The prefix.
        prefix: Prefix,
        /// The bit limit.
        max: u8,
    },
    /// Two sections claim some of the same accounts.
    #[error("sections {first} and {second} overlap")]
    Overlap {
        /// One prefix.
        first: Prefix,
        /// The other.
        second: Prefix,
    },
    /// Some accounts belong to no section.
    #[error("the section prefixes leave some accounts without a section")]
    Gap,
    /// A section's elder count is zero or above `ELDERS_MAX`.
    #[error("section {prefix} needs 1 to {max} elders; it has {count}")]
    ElderCount {
        /// The section.
        prefix: Prefix,
        /// Its elders.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Elder indices are not 0, 1, 2, … in order.
    #[error("section {prefix}: elder at position {position} has index {index}")]
    ElderIndex {
        /// The section.
        prefix: Prefix,
        /// Where in the list.
        position: usize,
        /// What it says.
        index: ElderIndex,
    },
    /// An address is empty or too long.
    #[error("section {prefix}: elder {index} has an empty or over-long address")]
    Address {
        /// The section.
        prefix: Prefix,
        /// The elder.
        index: ElderIndex,
    },
    /// The public key bytes do not decode.
    #[error("section {prefix}: the public keys are malformed")]
    PublicKeys {
        /// The section.
        prefix: Prefix,
    },
    /// The keys were dealt for another number of elders or another threshold than the
    /// section's `n` elders and `n − f` shares.
    #[error(
        "section {prefix}: {elders} elders need {needed} shares, but its keys were dealt for \
         {key_set_elders} elders with {key_set_needed} shares needed"
    )]
    Threshold {
        /// The section.
        prefix: Prefix,
        /// Elders in the section.
        elders: usize,
        /// Shares `n − f`.
        needed: usize,
        /// Elders the keys were dealt for.
        key_set_elders: usize,
        /// Shares the keys need.
        key_set_needed: usize,
    },
    /// The supply is zero.
    #[error("the supply must be positive")]
    NoSupply,
    /// The certificate authority is empty or over `CERTIFICATE_BYTES_MAX`.
    #[error("the certificate authority is {bytes} bytes; 1 to {max} allowed")]
    CertificateAuthority {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The map does not encode within the message limit.
    #[error("the network map is too large: {0}")]
    TooLarge(String),
}

/// Byzantine elders `n` elders tolerate: the largest `f` with `n ≥ 3f + 1`.
pub fn faults_max(elders: usize) -> usize {
    elders.saturating_sub(1) / 3
}

/// Shares needed to certify among `n` elders: `n − f`, so two quorums share an honest elder.
pub fn shares_needed(elders: usize) -> usize {
    elders - faults_max(elders)
}

/// A validated section with its keys ready to use.
#[derive(Clone, Debug)]
pub struct Section {
    /// The accounts it holds.
    pub prefix: Prefix,
    /// Its threshold public keys.
    pub public_keys: SectionPublicKeys,
    /// The id of its public key, named in its debit proofs.
    pub key_id: SectionKeyId,
    /// Its elders.
    pub elders: Vec<ElderInfo>,
}

impl Section {
    /// Number of elders `n`.
    pub fn elder_count(&self) -> usize {
        self.elders.len()
    }

    /// Byzantine elders tolerated: the largest `f` with `n ≥ 3f + 1`.
    pub fn faults_max(&self) -> usize {
        faults_max(self.elder_count())
    }

    /// Shares needed to certify: `n − f`, so two quorums share an honest elder.
    pub fn shares_needed(&self) -> usize {
        shares_needed(self.elder_count())
    }

    /// Whether `share` is elder `elder`'s valid share over the debit message.
    pub fn share_is_valid(
        &self,
        elder: ElderIndex,
        message: &HashedMessage,
        share: &BlsSignature,
    ) -> bool {
        self.public_keys
            .key_shares
            .get(elder.0 as usize)
            .is_some_and(|key| crypto::bls_signature_is_valid(key, message, share))
    }

    /// Combines `n − f` shares (each from the elder it is keyed by) into the section's
    /// signature; `None` if too few or one does not decode. The caller verified each share.
    pub fn combine(&self, shares: &BTreeMap<ElderIndex, BlsSignature>) -> Option<BlsSignature> {
        let points: BTreeMap<ElderIndex, SignaturePoint> = shares
            .iter()
            .map(|(elder, share)| Some((*elder, SignaturePoint::decode(share)?)))
            .collect::<Option<_>>()?;
        self.public_keys.combine(&points)
    }

    /// Whether `proof` carries this section's valid signature over its debit message
    /// ([`crypto::debit_message`]), which the caller has already computed.
    pub fn proof_is_valid(&self, message: &HashedMessage, proof: &DebitProof) -> bool {
        proof.section_key == self.key_id
            && crypto::bls_signature_is_valid(&self.public_keys.key, message, &proof.signature)
    }

    fn from_info(info: &SectionInfo) -> Result<Section, MapError> {
        let prefix = info.prefix;
        let count = info.elders.len();
        if count == 0 || count > ELDERS_MAX {
            return Err(MapError::ElderCount { prefix, count, max: ELDERS_MAX });
        }
        for (position, elder) in info.elders.iter().enumerate() {
            if elder.index.0 as usize != position {
                return Err(MapError::ElderIndex { prefix, position, index: elder.index });
            }
            if elder.address.is_empty() || elder.address.len() > ADDRESS_BYTES_MAX {
                return Err(MapError::Address { prefix, index: elder.index });
            }
        }
        let public_keys =
            SectionPublicKeys::decode(&info.public_keys).ok_or(MapError::PublicKeys { prefix })?;
        let (key_set_elders, key_set_needed) = (public_keys.elders(), public_keys.shares_needed());
        if key_set_elders != count || key_set_needed != shares_needed(count) {
            let needed = shares_needed(count);
            return Err(MapError::Threshold {
                prefix,
                elders: count,
                needed,
                key_set_elders,
                key_set_needed,
            });
        }
        Ok(Section {
            prefix,
            key_id: SectionKeyId(crypto::hash(SECTION_KEY_DOMAIN, [info.public_keys.as_slice()])),
            public_keys,
            elders: info.elders.clone(),
        })
    }
}

/// A validated network map: genesis hash computed, sections ready to verify with.
#[derive(Clone, Debug)]
pub struct Network {
    /// The map it was built from.
    pub map: NetworkMap,
    /// The hash of the map, mixed into every signature.
    pub genesis: Digest,
    /// The sections, in map order.
    pub sections: Vec<Section>,
}

impl Network {
    /// Checks every rule of a network map and prepares its keys.
    pub fn new(map: NetworkMap) -> Result<Network, MapError> {
        let count = map.sections.len();
        if count == 0 || count > SECTIONS_MAX {
            return Err(MapError::SectionCount { count, max: SECTIONS_MAX });
        }
        if map.supply == Amount::ZERO {
            return Err(MapError::NoSupply);
        }
        let bytes = map.certificate_authority.len();
        if bytes == 0 || bytes > CERTIFICATE_BYTES_MAX {
            return Err(MapError::CertificateAuthority { bytes, max: CERTIFICATE_BYTES_MAX });
        }
        check_prefixes(&map)?;
        let sections = map.sections.iter().map(Section::from_info).collect::<Result<_, _>>()?;
        let encoded = codec::encode(&map).map_err(|error| MapError::TooLarge(error.to_string()))?;
        let genesis = crypto::hash(GENESIS_DOMAIN, [encoded.as_slice()]);
        Ok(Network { map, genesis, sections })
    }

    /// The index of the section that holds `account`.
    pub fn section_index_of(&self, account: &AccountId) -> usize {
        self.sections
            .iter()
            .position(|section| section.prefix.matches(account))
            .expect("validated prefixes cover every account")
    }

    /// The section that holds `account`.
    pub fn section_of(&self, account: &AccountId) -> &Section {
        &self.sections[self.section_index_of(account)]
    }
}

impl Network {
    /// The section that referees `bundle`, if the map has it.
    pub fn referee_of(&self, bundle: &Bundle) -> Option<&Section> {
        self.sections.iter().find(|section| section.prefix == bundle.referee)
    }

    /// Whether `lock` is a valid lock certificate of leg `leg` of `bundle`: exactly that
    /// leg's lock, signed by the payer's section.
    pub fn check_lock(&self, bundle: &Bundle, leg: u8, lock: &DebitProof) -> Result<(), Rejection> {
        let is_leg = lock.lock() == Some((bundle, leg))
            && bundle.lock_transfer(usize::from(leg)).as_ref() == Some(lock.transfer());
        let message = || crypto::debit_message(&self.genesis, &crypto::transfer_id(&lock.signed));
        if !is_leg || !self.section_of(&lock.transfer().from).proof_is_valid(&message(), lock) {
            return Err(Rejection::BadLock { leg });
        }
        Ok(())
    }

    /// R2's first check with the map at hand: [`crypto::check_authority`], and for a void
    /// (R13) a valid abort certificate of a bundle whose leg the void is exactly.
    pub fn check_authority(&self, signed: &SignedTransfer) -> Result<(), Rejection> {
        let Authority::Void { abort, leg, payer } = &signed.authority else {
            return crypto::check_authority(&self.genesis, signed);
        };
        if abort.bundle.lock_transfer(usize::from(*leg)).as_ref() != Some(&signed.transfer) {
            return Err(Rejection::NotALeg { leg: *leg });
        }
        crypto::check_payer(&self.genesis, signed.transfer.from, payer, &abort.bundle)?;
        self.check_outcome(&abort.outcome()).map(|_| ())
    }

    /// Whether a certificate is the referee's valid outcome (R12): signed by the section the
    /// bundle names, and on commit carrying a valid lock of every leg, in leg order. Anyone
    /// holding the map can check it. Returns the bundle's id.
    pub fn check_outcome(&self, certificate: &OutcomeCertificate) -> Result<BundleId, Rejection> {
        let bundle = &certificate.bundle;
        let id = crypto::bundle_id(bundle);
        let bad = Rejection::BadOutcome { bundle: id };
        crypto::check_bundle_shape(bundle)?;
        let referee = self.referee_of(bundle).ok_or(bad.clone())?;
        let message = crypto::outcome_message(&self.genesis, &id, certificate.commit);
        if certificate.section_key != referee.key_id
            || !crypto::bls_signature_is_valid(
                &referee.public_keys.key,
                &message,
                &certificate.signature,
            )
        {
            return Err(bad);
        }
        let locks_expected = if certificate.commit { bundle.legs.len() } else { 0 };
        if certificate.locks.len() != locks_expected {
            return Err(bad);
        }
        for (leg, lock) in certificate.locks.iter().enumerate() {
            self.check_lock(bundle, leg as u8, lock).map_err(|_| bad.clone())?;
        }
        Ok(id)
    }
}

/// Prefixes must be well formed, pairwise disjoint and together cover every account.
fn check_prefixes(map: &NetworkMap) -> Result<(), MapError> {
    let mut covered: u64 = 0;
    for (i, section) in map.sections.iter().enumerate() {
        let prefix = section.prefix;
        if !prefix.is_valid() {
            return Err(MapError::BadPrefix { prefix, max: PREFIX_BITS_MAX });
        }
        if let Some(other) = map.sections[..i].iter().find(|s| s.prefix.overlaps(&prefix)) {
            return Err(MapError::Overlap { first: other.prefix, second: prefix });
        }
        // Disjoint prefixes of at most 32 bits cover at most 2^32 slots: no overflow.
        covered += 1u64 << (u32::from(PREFIX_BITS_MAX) - u32::from(prefix.len));
    }
    if covered != 1u64 << PREFIX_BITS_MAX {
        return Err(MapError::Gap);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_elder_map(public_keys: Vec<u8>) -> NetworkMap {
        let elder = ElderInfo {
            index: ElderIndex(0),
            address: "127.0.0.1:1".to_string(),
            cert_fingerprint: Digest::default(),
        };
        let section = SectionInfo { prefix: Prefix::ROOT, public_keys, elders: vec![elder] };
        NetworkMap {
            supply: Amount(1),
            faucet: AccountId([1; 32]),
            sections: vec![section],
            certificate_authority: vec![1],
        }
    }

    #[test]
    fn identity_section_key_is_refused_as_malformed() {
        // A one-elder key whose one coefficient, the section key, is the identity of G2.
        let mut identity = crate::crypto::SectionKeys::deal(1, [1; 32]).public_keys();
        let key_at = identity.len() - 96;
        identity[key_at..].fill(0);
        identity[key_at] = 0xc0;
        let error = Network::new(one_elder_map(identity)).unwrap_err();
        assert_eq!(error, MapError::PublicKeys { prefix: Prefix::ROOT });
    }

    #[test]
    fn keys_dealt_for_another_section_size_are_refused_with_both_sizes() {
        let keys = crate::crypto::SectionKeys::deal(4, [1; 32]).public_keys();
        let error = Network::new(one_elder_map(keys)).unwrap_err();
        let expected = MapError::Threshold {
            prefix: Prefix::ROOT,
            elders: 1,
            needed: 1,
            key_set_elders: 4,
            key_set_needed: 3,
        };
        assert_eq!(error, expected);
    }

    #[test]
    fn empty_section_key_is_refused_as_malformed() {
        let error = Network::new(one_elder_map(Vec::new())).unwrap_err();
        assert_eq!(error, MapError::PublicKeys { prefix: Prefix::ROOT });
    }
}
