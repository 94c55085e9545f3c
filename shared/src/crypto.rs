//! Domain-separated hashing and signing: account signatures (ed25519), section shares (BLS).
//!
//! Every signed byte string starts with a domain tag and the network's genesis hash, so a
//! signature made for one message kind or one network never verifies as another.

use std::num::NonZeroU32;

use commonware_codec::{Copying, Decode as _, DecodeExt as _, Encode as _};
use commonware_cryptography::bls12381::dkg::feldman_desmedt::deal_anonymous;
use commonware_cryptography::bls12381::primitives::group::{
    Private, Scalar, Share, SmallScalar, G1, G2,
};
use commonware_cryptography::bls12381::primitives::ops::threshold;
use commonware_cryptography::bls12381::primitives::sharing::{Mode, ModeVersion, Sharing};
use commonware_cryptography::bls12381::primitives::variant::{MinSig, PartialSignature, Variant};
use commonware_math::algebra::{Additive as _, HashToGroup as _, Space as _};
use commonware_math::poly::Interpolator;
use commonware_parallel::Sequential;
use commonware_utils::ordered::Map;
use commonware_utils::{N3f1, Participant};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_chacha_10::rand_core::SeedableRng as _;
use rand_chacha_10::ChaCha20Rng;
use sha2::{Digest as _, Sha256};

use crate::agreement::Round;
use crate::codec;
use crate::limits::{ELDERS_MAX, LEGS_MAX, OWNERS_MAX};
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Authority, BlsSignature, Bundle, BundleId, Digest, ElderIndex, OwnerSignature,
    PayerAuthority, Policy, SignedTransfer, Transfer, TransferId,
};

/// Domain tag of the bytes an account key signs.
const TRANSFER_DOMAIN: &[u8] = b"section-bank/v1/transfer\0";
/// Domain tag of the bytes a section key (share) signs.
const DEBIT_DOMAIN: &[u8] = b"section-bank/v1/debit\0";
/// Domain tag of a multi-owner account id.
const POLICY_DOMAIN: &[u8] = b"section-bank/v1/policy\0";
/// Domain tag of a transfer id.
const TRANSFER_ID_DOMAIN: &[u8] = b"section-bank/v1/transfer-id\0";
/// Domain tag of the bytes a payer signs to countersign a bundle.
const BUNDLE_DOMAIN: &[u8] = b"section-bank/v1/bundle\0";
/// Domain tag of a bundle id.
const BUNDLE_ID_DOMAIN: &[u8] = b"section-bank/v1/bundle-id\0";
/// Domain tag of the bytes a referee section signs to certify a bundle's outcome.
const OUTCOME_DOMAIN: &[u8] = b"section-bank/v1/outcome\0";
/// Domain tag of the bytes a referee section signs as the common coin of an agreement round.
const COIN_DOMAIN: &[u8] = b"section-bank/v1/coin\0";
/// Domain tags of the other hashes, one per use.
pub(crate) const GENESIS_DOMAIN: &[u8] = b"section-bank/v1/genesis\0";
pub(crate) const SECTION_KEY_DOMAIN: &[u8] = b"section-bank/v1/section-key\0";
pub(crate) const DEBIT_CHAIN_DOMAIN: &[u8] = b"section-bank/v1/debit-chain\0";
pub(crate) const CREDIT_SET_DOMAIN: &[u8] = b"section-bank/v1/credit-set\0";
pub(crate) const ACCOUNT_DIGEST_DOMAIN: &[u8] = b"section-bank/v1/account\0";
pub(crate) const STATE_DIGEST_DOMAIN: &[u8] = b"section-bank/v1/state\0";
pub(crate) const OUTCOME_DIGEST_DOMAIN: &[u8] = b"section-bank/v1/outcome-digest\0";

/// SHA-256 over a domain tag followed by `parts`.
pub fn hash<'a>(domain: &[u8], parts: impl IntoIterator<Item = &'a [u8]>) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    for part in parts {
        hasher.update(part);
    }
    Digest(hasher.finalize().into())
}

/// The fingerprint the network map pins for a TLS certificate: plain SHA-256 of its DER.
pub fn certificate_fingerprint(der: &[u8]) -> Digest {
    hash(&[], [der])
}

/// Encodes a value the protocol built or already decoded within the message limit.
fn encode_within_limit<T: serde::Serialize>(value: &T) -> Vec<u8> {
    codec::encode(value).expect("a transfer that fits a message re-encodes within the limit")
}

/// The bytes an account key signs for `transfer` on the network `genesis`.
pub fn transfer_signing_bytes(genesis: &Digest, transfer: &Transfer) -> Vec<u8> {
    let mut bytes = [TRANSFER_DOMAIN, &genesis.0].concat();
    bytes.extend(encode_within_limit(transfer));
    bytes
}

/// Signs `transfer` with the sender's account key.
pub fn sign_transfer(key: &SigningKey, genesis: &Digest, transfer: Transfer) -> SignedTransfer {
    let signature = key.sign(&transfer_signing_bytes(genesis, &transfer));
    SignedTransfer { transfer, authority: Authority::Key(signature) }
}

/// One owner's signature over `transfer` from the account of `policy`; `None` if `key` is
/// not one of its owners.
pub fn sign_as_owner(
    key: &SigningKey,
    genesis: &Digest,
    policy: &Policy,
    transfer: &Transfer,
) -> Option<OwnerSignature> {
    let me = AccountId(key.verifying_key().to_bytes());
    let owner = policy.owners.iter().position(|owner| *owner == me)?;
    let signature = key.sign(&transfer_signing_bytes(genesis, transfer));
    Some(OwnerSignature { owner: u8::try_from(owner).ok()?, signature })
}

/// Whether a policy is well formed: `1 ≤ threshold ≤ owners ≤ OWNERS_MAX`, owners sorted and
/// distinct. (Whether each owner is a usable key is checked when the policy is made, and an
/// unusable one can never sign.)
pub fn policy_is_well_formed(policy: &Policy) -> bool {
    let owners = policy.owners.len();
    policy.threshold >= 1
        && usize::from(policy.threshold) <= owners
        && owners <= OWNERS_MAX
        && policy.owners.windows(2).all(|pair| pair[0] < pair[1])
}

/// The account a policy controls: the first domain-separated hash of the policy and a counter
/// that is a usable ed25519 point, so money can be sent to it like to any account while no
/// one knows a key for it (about half of all hashes qualify). `None` for a malformed policy.
pub fn policy_account(policy: &Policy) -> Option<AccountId> {
    if !policy_is_well_formed(policy) {
        return None;
    }
    let encoded = encode_within_limit(policy);
    (0u8..=u8::MAX)
        .map(|counter| hash(POLICY_DOMAIN, [encoded.as_slice(), &[counter]]).0)
        .find(is_account_key)
        .map(AccountId)
}

/// R2's first check, and R10's: the transfer is authorised by its account's key, or by exactly
/// `threshold` distinct owners (in owner order) of the policy that hashes to the account; a
/// lock (R13) by the payer's key or owners over the bundle, whose leg it must be exactly. The
/// cheap checks come before any signature is verified.
pub fn check_authority(genesis: &Digest, signed: &SignedTransfer) -> Result<(), Rejection> {
    let transfer = &signed.transfer;
    match &signed.authority {
        Authority::Bundle { bundle, leg, payer } => {
            check_bundle_shape(bundle)?;
            if bundle.lock_transfer(usize::from(*leg)).as_ref() != Some(transfer) {
                return Err(Rejection::NotALeg { leg: *leg });
            }
            check_payer(genesis, transfer.from, payer, bundle)
        }
        // Only the network can check a referee's certificate: `Network::check_authority`.
        Authority::Void { abort, .. } => {
            Err(Rejection::BadOutcome { bundle: bundle_id(&abort.bundle) })
        }
        authority => {
            check_signers(transfer.from, authority, &transfer_signing_bytes(genesis, transfer))
        }
    }
}

/// Whether `payer` is `account`'s countersignature of `bundle` (R13).
pub fn check_payer(
    genesis: &Digest,
    account: AccountId,
    payer: &PayerAuthority,
    bundle: &Bundle,
) -> Result<(), Rejection> {
    let bytes = bundle_signing_bytes(genesis, &bundle_id(bundle));
    let authority = match payer {
        PayerAuthority::Key(signature) => Authority::Key(*signature),
        PayerAuthority::Policy { policy, signatures } => {
            Authority::Policy { policy: policy.clone(), signatures: signatures.clone() }
        }
    };
    check_signers(account, &authority, &bytes)
}

/// Whether `authority` is `account`'s key or `threshold` of its owners signing `bytes`.
fn check_signers(account: AccountId, authority: &Authority, bytes: &[u8]) -> Result<(), Rejection> {
    let bad_signature = Rejection::BadAccountSignature { account };
    let verify = |key: &[u8; 32], signature| {
        VerifyingKey::from_bytes(key)
            .and_then(|key| key.verify_strict(bytes, signature))
            .map_err(|_| bad_signature.clone())
    };
    match authority {
        Authority::Key(signature) => verify(&account.0, signature),
        Authority::Policy { policy, signatures } => {
            if policy_account(policy) != Some(account) {
                return Err(Rejection::PolicyMismatch { account });
            }
            let owners = policy.owners.len();
            let in_order = signatures.windows(2).all(|pair| pair[0].owner < pair[1].owner)
                && signatures.iter().all(|signed| usize::from(signed.owner) < owners);
            if signatures.len() != usize::from(policy.threshold) || !in_order {
                return Err(Rejection::OwnerSignatures {
                    count: signatures.len() as u64,
                    threshold: u64::from(policy.threshold),
                });
            }
            signatures.iter().try_for_each(|signed| {
                verify(&policy.owners[usize::from(signed.owner)].0, &signed.signature)
            })
        }
        Authority::Bundle { .. } | Authority::Void { .. } => Err(bad_signature),
    }
}

/// The shape of a bundle (R7, R13): 1 to `LEGS_MAX` legs, each paying at least 1 from an
/// account to another, no payer twice.
pub fn check_bundle_shape(bundle: &Bundle) -> Result<(), Rejection> {
    let count = bundle.legs.len();
    if count == 0 || count > LEGS_MAX {
        return Err(Rejection::LegCount { count: count as u64, max: LEGS_MAX as u64 });
    }
    for (index, leg) in bundle.legs.iter().enumerate() {
        let leg_index = index as u8;
        if leg.amount.0 == 0 || leg.from == leg.to {
            return Err(Rejection::NotALeg { leg: leg_index });
        }
        if bundle.legs[..index].iter().any(|earlier| earlier.from == leg.from) {
            return Err(Rejection::PayerTwice { account: leg.from });
        }
    }
    Ok(())
}

/// The id of a bundle.
pub fn bundle_id(bundle: &Bundle) -> BundleId {
    BundleId(hash(BUNDLE_ID_DOMAIN, [encode_within_limit(bundle).as_slice()]))
}

/// The bytes a payer's key (or each of its owners) signs to countersign bundle `id`.
pub fn bundle_signing_bytes(genesis: &Digest, id: &BundleId) -> Vec<u8> {
    [BUNDLE_DOMAIN, &genesis.0, &id.0 .0].concat()
}

/// A payer's signature over a bundle, by its account key or as one owner of a policy.
pub fn sign_bundle(
    key: &SigningKey,
    genesis: &Digest,
    bundle: &Bundle,
) -> ed25519_dalek::Signature {
    key.sign(&bundle_signing_bytes(genesis, &bundle_id(bundle)))
}

/// The bytes a referee section (or one share of its key) signs to certify the outcome of
/// bundle `id`.
pub fn outcome_signing_bytes(genesis: &Digest, id: &BundleId, commit: bool) -> Vec<u8> {
    [OUTCOME_DOMAIN, &genesis.0, &id.0 .0, &[u8::from(commit)]].concat()
}

/// [`outcome_signing_bytes`] hashed to the curve.
pub fn outcome_message(genesis: &Digest, id: &BundleId, commit: bool) -> HashedMessage {
    HashedMessage::of(&outcome_signing_bytes(genesis, id, commit))
}

/// The hashed message a referee section signs as the common coin of one agreement round.
pub fn coin_message(genesis: &Digest, id: &BundleId, round: Round) -> HashedMessage {
    HashedMessage::of(&[COIN_DOMAIN, &genesis.0, &id.0 .0, &round.to_le_bytes()].concat())
}

/// The coin a section signature gives: one bit of its hash, which no one can know before
/// `n − f` elders gave their shares.
pub fn coin_value(signature: &BlsSignature) -> bool {
    hash(COIN_DOMAIN, [&signature.0[..]]).0[0] & 1 == 1
}

/// Whether the transfer is authorised ([`check_authority`]).
pub fn account_signature_is_valid(genesis: &Digest, signed: &SignedTransfer) -> bool {
    check_authority(genesis, signed).is_ok()
}

/// Whether 32 bytes are a usable ed25519 public key, so money sent there is not burned.
pub fn is_account_key(bytes: &[u8; 32]) -> bool {
    VerifyingKey::from_bytes(bytes).is_ok_and(|key| !key.is_weak())
}

/// The id of a signed transfer.
pub fn transfer_id(signed: &SignedTransfer) -> TransferId {
    TransferId(hash(TRANSFER_ID_DOMAIN, [encode_within_limit(signed).as_slice()]))
}

/// The bytes a section key (or one share of it) signs to certify the transfer `id`.
pub fn debit_signing_bytes(genesis: &Digest, id: &TransferId) -> Vec<u8> {
    [DEBIT_DOMAIN, &genesis.0, &id.0 .0].concat()
}

/// A message hashed to the curve (G1, with the standard MinSig message tag): what a BLS
/// signature signs and what checking it needs. Hashing costs about 40% of a share (about 60 µs
/// here), so an elder keeps a transfer's hash from validate, where it signs its share, to
/// register, where it checks the proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashedMessage(G1);

impl HashedMessage {
    /// Hashes `message` to the curve.
    pub fn of(message: &[u8]) -> HashedMessage {
        HashedMessage(G1::hash_to_group(MinSig::MESSAGE, message))
    }
}

/// The hashed message a section key (or one share of it) signs to certify the transfer `id`.
pub fn debit_message(genesis: &Digest, id: &TransferId) -> HashedMessage {
    HashedMessage::of(&debit_signing_bytes(genesis, id))
}

/// One elder's share of its section's secret key: its index and its scalar. The elder's key
/// file (mode 0600) holds the scalar ([`KeyShare::scalar`]); its config names the index.
/// Never printed.
#[derive(Clone)]
pub struct KeyShare(Share);

impl KeyShare {
    /// Elder `elder`'s share with this scalar (32 bytes, big-endian); `None` unless it is a
    /// non-zero scalar below the group order.
    pub fn from_scalar(elder: ElderIndex, scalar: &[u8; 32]) -> Option<KeyShare> {
        let private = Private::decode(Copying(scalar)).ok()?;
        Some(KeyShare(Share::new(Participant::new(elder.0), private)))
    }

    /// The scalar [`KeyShare::from_scalar`] reads.
    pub fn scalar(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        self.0.private.expose(|scalar| bytes.copy_from_slice(&scalar.encode()));
        bytes
    }

    /// Its public key share, which the network map names for its elder.
    pub fn public_key(&self) -> BlsPublicKey {
        self.0.public::<MinSig>()
    }

    /// Its share of the signature over `message`, as a point.
    fn sign(&self, message: &HashedMessage) -> G1 {
        self.0.private.expose(|scalar| message.0 * scalar)
    }

    /// The elder this share belongs to.
    pub fn elder(&self) -> ElderIndex {
        ElderIndex(self.0.index.get())
    }
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyShare(elder {}, secret withheld)", self.0.index)
    }
}

/// An elder's BLS signature share over a hashed message ([`debit_message`] and the like).
pub fn sign_debit_share(key_share: &KeyShare, message: &HashedMessage) -> BlsSignature {
    signature_bytes(&key_share.sign(message))
}

/// The compressed bytes of a signature point.
fn signature_bytes(point: &G1) -> BlsSignature {
    let mut bytes = [0; BlsSignature::LEN];
    bytes.copy_from_slice(&point.encode());
    BlsSignature(bytes)
}

/// A section's secret key as the dealer holds it at genesis: the public sharing the network
/// map names, every elder's share, and the whole secret they share. Only genesis, the tests
/// and the benchmarks hold one.
pub struct SectionKeys {
    sharing: Sharing<MinSig>,
    shares: Vec<KeyShare>,
    secret: Private,
}

impl SectionKeys {
    /// Deals a key for `elders` elders, `n − f` of whose shares make a signature, from a
    /// 32-byte seed (a seed gives the same keys every time).
    pub fn deal(elders: usize, seed: [u8; 32]) -> SectionKeys {
        let count = u32::try_from(elders).ok().and_then(NonZeroU32::new);
        let count = count.expect("a section has between 1 and u32::MAX elders");
        let rng = ChaCha20Rng::from_seed(seed);
        let (sharing, shares) = deal_anonymous::<MinSig, N3f1>(rng, Mode::NonZeroCounter, count);
        // The secret is the sharing polynomial at 0: the first n − f shares interpolated, each
        // at its evaluation point i + 1 (`Mode::NonZeroCounter`).
        let quorum = &shares[..sharing.required() as usize];
        let points = quorum
            .iter()
            .map(|share| (share.index, Scalar::from_u64(u64::from(share.index.get()) + 1)));
        let values = quorum.iter().map(|share| (share.index, share.private.expose(|x| x.clone())));
        let secret = Interpolator::new(points)
            .interpolate(&Map::from_iter_dedup(values), &Sequential)
            .expect("the values are at the interpolator's points");
        SectionKeys {
            sharing,
            shares: shares.into_iter().map(KeyShare).collect(),
            secret: Private::new(secret),
        }
    }

    /// The section's public keys as the network map holds them ([`SectionPublicKeys::decode`]).
    pub fn public_keys(&self) -> Vec<u8> {
        self.sharing.encode().to_vec()
    }

    /// Elder `index`'s key share.
    pub fn share(&self, index: usize) -> KeyShare {
        self.shares[index].clone()
    }

    /// The section's signature over `message`: what any `n − f` of its elders' shares combine
    /// to, made with the whole secret in one multiplication.
    pub fn sign(&self, message: &HashedMessage) -> BlsSignature {
        signature_bytes(&self.secret.expose(|scalar| message.0 * scalar))
    }
}

/// A BLS public key (section key or key share, in G2), decoded and group-checked.
pub type BlsPublicKey = G2;

/// A section's public keys, decoded and checked once: the section key, each elder's key
/// share, and what combining shares needs.
#[derive(Clone, Debug)]
pub struct SectionPublicKeys {
    sharing: Sharing<MinSig>,
    /// The section key.
    pub key: BlsPublicKey,
    /// Each elder's key share, by index.
    pub key_shares: Vec<BlsPublicKey>,
}

impl SectionPublicKeys {
    /// Decodes a section's public keys from the map's bytes: `None` unless they are one
    /// sharing among 1 to `ELDERS_MAX` elders, every point in the group and none of the keys
    /// the identity. Whether they fit the section is [`SectionPublicKeys::elders`] and
    /// [`SectionPublicKeys::shares_needed`].
    pub fn decode(bytes: &[u8]) -> Option<SectionPublicKeys> {
        let most = NonZeroU32::new(ELDERS_MAX as u32).expect("ELDERS_MAX is positive");
        let sharing =
            Sharing::<MinSig>::decode_cfg(Copying(bytes), &(most, ModeVersion::v0())).ok()?;
        let key_shares = (0..sharing.total().get())
            .map(|index| sharing.partial_public(Participant::new(index)).ok())
            .collect::<Option<Vec<_>>>()?;
        let usable = key_shares.iter().all(|key| *key != G2::zero());
        usable.then(|| SectionPublicKeys { key: *sharing.public(), key_shares, sharing })
    }

    /// The elders the keys were dealt for.
    pub fn elders(&self) -> usize {
        self.sharing.total().get() as usize
    }

    /// The shares that make a signature.
    pub fn shares_needed(&self) -> usize {
        self.sharing.required() as usize
    }

    /// Combines `n − f` decoded shares (each from the elder it is keyed by) into the
    /// section's signature; `None` if too few. The caller checks the result (or each share).
    pub fn combine<'a>(
        &self,
        shares: impl IntoIterator<Item = (&'a ElderIndex, &'a SignaturePoint)>,
    ) -> Option<BlsSignature> {
        let partials: Vec<PartialSignature<MinSig>> = shares
            .into_iter()
            .map(|(elder, share)| PartialSignature {
                index: Participant::new(elder.0),
                value: share.0,
            })
            .collect();
        let signature = threshold::recover::<MinSig, _>(&self.sharing, &partials, &Sequential);
        signature.ok().map(|point| signature_bytes(&point))
    }
}

/// A signature or share decompressed and checked to be a point of the G1 subgroup other than
/// the identity, as combining needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignaturePoint(G1);

impl SignaturePoint {
    /// Decodes `signature`; `None` for bytes that are no such point.
    pub fn decode(signature: &BlsSignature) -> Option<SignaturePoint> {
        G1::decode(Copying(&signature.0)).ok().map(SignaturePoint)
    }

    /// Whether it is `key`'s signature over `message`.
    pub fn verifies(&self, key: &BlsPublicKey, message: &HashedMessage) -> bool {
        MinSig::verify(key, &message.0, &self.0).is_ok()
    }
}

/// Whether `signature` is `key`'s BLS signature over `message`: one Miller loop over two pairs
/// and one final exponentiation; the signature is decompressed and group-checked here, not
/// when decoded.
pub fn bls_signature_is_valid(
    key: &BlsPublicKey,
    message: &HashedMessage,
    signature: &BlsSignature,
) -> bool {
    SignaturePoint::decode(signature).is_some_and(|point| point.verifies(key, message))
}

/// Which signatures in `items` are `key`'s valid BLS signatures over their messages, found
/// with as few pairings as the batch allows. Each signature is decompressed and group-checked
/// once; one that is no point of the group is invalid at once and never joins a batch. The
/// others are checked together by a random linear combination: with a 128-bit weight `r_i`
/// per item drawn from `seed` (which must be unpredictable to whoever made the signatures),
/// `e(Σ r_i·H(m_i), key) = e(Σ r_i·σ_i, g2)`, which a batch holding an invalid signature
/// passes with probability at most 2^-128. A batch that fails is split in halves and each half
/// checked the same way, down to single items, so `b` bad signatures among `n` cost about
/// `2·b·log2(n)` checks rather than `n`.
///
/// `parts` names where each item came from: a failed batch is first split by part, so the
/// bad signatures of one source make only that source's items bisect, and the others still
/// pass in one check each (one part for all when the sources do not matter).
pub fn bls_batch_validity(
    key: &BlsPublicKey,
    items: &[(&HashedMessage, &BlsSignature)],
    seed: [u8; 32],
    parts: &[usize],
) -> Vec<bool> {
    assert_eq!(items.len(), parts.len(), "one part per item");
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut valid = vec![false; items.len()];
    let mut batch = Vec::with_capacity(items.len());
    for (index, (message, signature)) in items.iter().enumerate() {
        if let Some(SignaturePoint(point)) = SignaturePoint::decode(signature) {
            let weight = SmallScalar::random(&mut rng);
            batch.push(BatchItem { index, part: parts[index], message: message.0, point, weight });
        }
    }
    batch.sort_by_key(|item| item.part);
    let parts: Vec<&[BatchItem]> = batch.chunk_by(|a, b| a.part == b.part).collect();
    if agrees(key, &batch) {
        mark(&batch, &mut valid);
    } else if let [whole] = parts[..] {
        halves(key, whole, &mut valid);
    } else {
        parts.into_iter().for_each(|part| bisect(key, part, &mut valid));
    }
    valid
}

/// One decoded item of a batch check.
struct BatchItem {
    index: usize,
    part: usize,
    message: G1,
    point: G1,
    weight: SmallScalar,
}

/// Whether every signature of `batch` is valid, by one random linear combination (Pippenger
/// sums on the calling thread: the elder runs its batches on several cores itself).
fn agrees(key: &BlsPublicKey, batch: &[BatchItem]) -> bool {
    match batch {
        [] => true,
        [item] => MinSig::verify(key, &item.message, &item.point).is_ok(),
        _ => {
            let messages: Vec<G1> = batch.iter().map(|item| item.message).collect();
            let points: Vec<G1> = batch.iter().map(|item| item.point).collect();
            let weights: Vec<SmallScalar> = batch.iter().map(|item| item.weight.clone()).collect();
            let message_sum = G1::msm(&messages, &weights, &Sequential);
            MinSig::verify(key, &message_sum, &G1::msm(&points, &weights, &Sequential)).is_ok()
        }
    }
}

/// Marks every item of `batch` valid.
fn mark(batch: &[BatchItem], valid: &mut [bool]) {
    batch.iter().for_each(|item| valid[item.index] = true);
}

/// Marks the valid items of `batch` in `valid`: the whole batch at once, or each half.
fn bisect(key: &BlsPublicKey, batch: &[BatchItem], valid: &mut [bool]) {
    if agrees(key, batch) {
        mark(batch, valid);
    } else {
        halves(key, batch, valid);
    }
}

/// Marks the valid items of `batch`, known to hold an invalid one, half by half.
fn halves(key: &BlsPublicKey, batch: &[BatchItem], valid: &mut [bool]) {
    if batch.len() > 1 {
        let (left, right) = batch.split_at(batch.len() / 2);
        bisect(key, left, valid);
        bisect(key, right, valid);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::types::{Amount, Memo, Policy, Seq, Window};

    fn transfer_from(key: &SigningKey) -> Transfer {
        Transfer {
            from: AccountId(key.verifying_key().to_bytes()),
            to: AccountId(SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes()),
            amount: Amount(5),
            seq: Seq(1),
            memo: Memo(b"rent".to_vec()),
            window: Window::ALWAYS,
        }
    }

    #[test]
    fn account_signature_does_not_verify_on_another_network() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = sign_transfer(&key, &Digest([1; 32]), transfer_from(&key));
        assert!(account_signature_is_valid(&Digest([1; 32]), &signed));
        assert!(!account_signature_is_valid(&Digest([2; 32]), &signed));
    }

    #[test]
    fn changing_any_field_breaks_the_account_signature() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut signed = sign_transfer(&key, &Digest([1; 32]), transfer_from(&key));
        signed.transfer.amount = Amount(6);
        assert!(!account_signature_is_valid(&Digest([1; 32]), &signed));
    }

    #[test]
    fn a_policy_account_is_a_usable_key_no_one_holds_and_every_field_moves_it() {
        let owners: Vec<AccountId> = [3u8, 4, 5]
            .map(|seed| AccountId(SigningKey::from_bytes(&[seed; 32]).verifying_key().to_bytes()))
            .into_iter()
            .collect();
        let mut sorted = owners.clone();
        sorted.sort();
        let policy = Policy { threshold: 2, owners: sorted, nonce: 0 };
        let account = policy_account(&policy).expect("well formed");
        assert!(is_account_key(&account.0));
        let others = [
            Policy { threshold: 1, ..policy.clone() },
            Policy { nonce: 1, ..policy.clone() },
            Policy { owners: policy.owners[..2].to_vec(), ..policy.clone() },
        ];
        for other in others {
            assert_ne!(policy_account(&other), Some(account), "{other:?}");
        }
        let unsorted = Policy { owners, ..policy.clone() };
        let malformed =
            [Policy { threshold: 0, ..policy.clone() }, Policy { threshold: 4, ..policy.clone() }];
        for bad in malformed
            .into_iter()
            .chain([unsorted].into_iter().filter(|p| p.owners != policy.owners))
        {
            assert_eq!(policy_account(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debit_and_transfer_signing_bytes_never_coincide() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = sign_transfer(&key, &Digest([1; 32]), transfer_from(&key));
        let debit = debit_signing_bytes(&Digest([1; 32]), &transfer_id(&signed));
        let account = transfer_signing_bytes(&Digest([1; 32]), &signed.transfer);
        assert_ne!(debit[..DEBIT_DOMAIN.len()], account[..DEBIT_DOMAIN.len()]);
    }

    fn signed_batch(count: usize) -> (BlsPublicKey, Vec<HashedMessage>, Vec<BlsSignature>) {
        let keys = SectionKeys::deal(1, [3; 32]);
        let key = SectionPublicKeys::decode(&keys.public_keys()).expect("dealt").key;
        let messages: Vec<HashedMessage> =
            (0..count).map(|i| HashedMessage::of(format!("debit {i}").as_bytes())).collect();
        let signatures = messages.iter().map(|m| keys.sign(m)).collect();
        (key, messages, signatures)
    }

    #[test]
    fn a_batch_check_finds_exactly_the_bad_signatures() {
        let (key, messages, mut signatures) = signed_batch(9);
        // Found alike with one part for all and with items from three sources, interleaved,
        // and whatever the seed of the weights.
        let check = |signatures: &[BlsSignature]| {
            let items: Vec<(&HashedMessage, &BlsSignature)> =
                messages.iter().zip(signatures).collect();
            let bad = |seed: u8, parts: &[usize]| {
                let validity = bls_batch_validity(&key, &items, [seed; 32], parts);
                (0..9).filter(|i| !validity[*i]).collect::<Vec<usize>>()
            };
            let sources: Vec<usize> = (0..9).map(|i| i % 3).collect();
            let alone = bad(0, &[0; 9]);
            assert_eq!(alone, bad(1, &sources));
            assert_eq!(alone, bad(2, &[0; 9]));
            alone
        };
        assert_eq!(check(&signatures), Vec::<usize>::new());
        assert!(messages.iter().zip(&signatures).all(|(m, s)| bls_signature_is_valid(&key, m, s)));
        // Two signatures swapped: each valid, but not for its message.
        signatures.swap(2, 5);
        assert_eq!(check(&signatures), vec![2, 5]);
        assert!(!bls_signature_is_valid(&key, &messages[2], &signatures[2]));
        signatures.swap(2, 5);
        // A flipped bit makes bytes that are no point at all.
        signatures[7].0[5] ^= 1;
        assert_eq!(check(&signatures), vec![7]);
        assert!(!bls_signature_is_valid(&key, &messages[7], &signatures[7]));
    }

    #[test]
    fn the_identity_and_points_outside_the_group_are_no_signatures() {
        let (key, messages, mut signatures) = signed_batch(3);
        // The identity, and (0, 2): on the curve, of order 3, outside G1.
        let identity =
            BlsSignature([0xc0].into_iter().chain([0; 47]).collect::<Vec<_>>().try_into().unwrap());
        let order_three =
            BlsSignature([0x80].into_iter().chain([0; 47]).collect::<Vec<_>>().try_into().unwrap());
        for bad in [identity, order_three] {
            assert_eq!(SignaturePoint::decode(&bad), None);
            assert!(!bls_signature_is_valid(&key, &messages[1], &bad));
            signatures[1] = bad;
            let items: Vec<(&HashedMessage, &BlsSignature)> =
                messages.iter().zip(&signatures).collect();
            assert_eq!(bls_batch_validity(&key, &items, [5; 32], &[0; 3]), [true, false, true]);
        }
    }

    #[test]
    fn the_dealers_quorum_is_n_minus_f_at_every_size() {
        for elders in 1..=crate::limits::ELDERS_MAX {
            assert_eq!(
                <N3f1 as commonware_utils::Faults>::quorum(elders),
                crate::network::shares_needed(elders) as u32
            );
        }
    }

    #[test]
    fn any_n_minus_f_shares_make_the_one_section_signature_and_fewer_make_none() {
        for elders in [1, 2, 3, 4, 5, 7, 16, 31, crate::limits::ELDERS_MAX] {
            let keys = SectionKeys::deal(elders, [elders as u8; 32]);
            let public = SectionPublicKeys::decode(&keys.public_keys()).expect("dealt");
            let needed = crate::network::shares_needed(elders);
            assert_eq!((public.elders(), public.shares_needed()), (elders, needed));
            let message = HashedMessage::of(b"debit");
            let shares: BTreeMap<ElderIndex, BlsSignature> = (0..elders)
                .rev()
                .map(|i| (keys.share(i).elder(), sign_debit_share(&keys.share(i), &message)))
                .collect();
            assert!(shares.iter().all(|(elder, share)| {
                bls_signature_is_valid(&public.key_shares[elder.0 as usize], &message, share)
            }));
            let last: BTreeMap<_, _> = shares.clone().into_iter().skip(elders - needed).collect();
            let points: BTreeMap<ElderIndex, SignaturePoint> = last
                .iter()
                .map(|(elder, share)| (*elder, SignaturePoint::decode(share).expect("a point")))
                .collect();
            let combined = public.combine(&points).expect("n − f shares");
            assert_eq!(combined, keys.sign(&message), "{elders} elders");
            assert!(bls_signature_is_valid(&public.key, &message, &combined));
            if needed > 1 {
                assert_eq!(public.combine(points.iter().skip(1)), None, "{elders} elders");
            }
        }
    }
}
