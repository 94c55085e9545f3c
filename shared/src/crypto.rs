//! Domain-separated hashing and signing: account signatures (ed25519), section shares (BLS).
//!
//! Every signed byte string starts with a domain tag and the network's genesis hash, so a
//! signature made for one message kind or one network never verifies as another.

use blsttc::SecretKeyShare;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::agreement::Round;
use crate::codec;
use crate::limits::{LEGS_MAX, OWNERS_MAX};
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Authority, BlsSignature, Bundle, BundleId, Digest, OwnerSignature, PayerAuthority,
    Policy, SignedTransfer, Transfer, TransferId,
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

/// A message hashed to the curve (G2) with blsttc's tag: what a BLS signature signs and what
/// checking it needs. Hashing costs as much as signing (about 170 µs here), so an elder keeps a
/// transfer's hash from validate, where it signs its share, to register, where it checks the
/// proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashedMessage(blsttc::G2Affine);

impl HashedMessage {
    /// Hashes `message` to the curve.
    pub fn of(message: &[u8]) -> HashedMessage {
        HashedMessage(blsttc::hash_g2(message))
    }
}

/// The hashed message a section key (or one share of it) signs to certify the transfer `id`.
pub fn debit_message(genesis: &Digest, id: &TransferId) -> HashedMessage {
    HashedMessage::of(&debit_signing_bytes(genesis, id))
}

/// An elder's BLS signature share over a debit message ([`debit_message`]).
pub fn sign_debit_share(key_share: &SecretKeyShare, message: &HashedMessage) -> BlsSignature {
    BlsSignature(key_share.sign_g2(message.0).to_bytes())
}

/// A BLS public key (section key or key share) prepared for verification.
pub type BlsPublicKey = blst::min_pk::PublicKey;

/// Prepares a public key (section key or key share, compressed) for verification: decompressed
/// and group-checked once. `None` for bytes that are no usable key, such as the identity.
pub fn bls_public_key(bytes: &[u8; 48]) -> Option<BlsPublicKey> {
    BlsPublicKey::key_validate(bytes).ok()
}

/// A signature decompressed and checked to be a point of the G2 subgroup other than the
/// identity; `None` for bytes that are no such point.
fn signature_point(signature: &BlsSignature) -> Option<blst::blst_p2_affine> {
    let mut point = blst::blst_p2_affine::default();
    // SAFETY: blst reads the 96 bytes of a compressed G2 point from a 96-byte array and
    // writes one affine point; the checks read that point only.
    let usable = unsafe {
        blst::blst_p2_uncompress(&mut point, signature.0.as_ptr()) == blst::BLST_ERROR::BLST_SUCCESS
            && !blst::blst_p2_affine_is_inf(&point)
            && blst::blst_p2_affine_in_g2(&point)
    };
    usable.then_some(point)
}

/// The negated generator of G1, for checking two pairings equal as one product.
static NEGATED_G1: std::sync::LazyLock<blst::blst_p1_affine> = std::sync::LazyLock::new(|| {
    let (mut point, mut affine) = (blst::blst_p1::default(), blst::blst_p1_affine::default());
    // SAFETY: the generator is a static; the other pointers are to values owned here.
    unsafe {
        blst::blst_p1_from_affine(&mut point, blst::blst_p1_affine_generator());
        blst::blst_p1_cneg(&mut point, true);
        blst::blst_p1_to_affine(&mut affine, &point);
    }
    affine
});

/// Whether `e(key, message) = e(g1, signature)`, as `e(key, message)·e(−g1, signature) = 1`:
/// one Miller loop over both pairs and one final exponentiation, for points already checked.
fn pairings_agree(
    key: &BlsPublicKey,
    message: &blst::blst_p2_affine,
    signature: &blst::blst_p2_affine,
) -> bool {
    let key = blst::blst_p1_affine::from(*key);
    let lefts = [message as *const blst::blst_p2_affine, signature];
    let rights = [&key as *const blst::blst_p1_affine, &*NEGATED_G1];
    let (mut loop_value, mut product) = (blst::blst_fp12::default(), blst::blst_fp12::default());
    // SAFETY: two pointers in each array, each to an initialised point that outlives the call.
    unsafe {
        blst::blst_miller_loop_n(&mut loop_value, lefts.as_ptr(), rights.as_ptr(), 2);
        blst::blst_final_exp(&mut product, &loop_value);
        blst::blst_fp12_is_one(&product)
    }
}

/// Whether `signature` is `key`'s BLS signature over `message`: one Miller loop over two pairs
/// and one final exponentiation (blsttc's own verify computes two full pairings); the
/// signature is decompressed and group-checked here, not when decoded.
pub fn bls_signature_is_valid(
    key: &BlsPublicKey,
    message: &HashedMessage,
    signature: &BlsSignature,
) -> bool {
    signature_point(signature).is_some_and(|point| pairings_agree(key, message.0.as_ref(), &point))
}

/// Which signatures in `items` are `key`'s valid BLS signatures over their messages, found
/// with as few pairings as the batch allows. Each signature is decompressed and group-checked
/// once; one that is no point of the group is invalid at once and never joins a batch. The
/// others are checked together by a random linear combination: with a weight `r_i` per item
/// (from the caller, made odd so it is never zero), `e(key, Σ r_i·H(m_i)) = e(g1, Σ r_i·σ_i)`,
/// which a batch holding an invalid signature passes with probability at most 2^-63. A batch
/// that fails is split in halves and each half checked the same way, down to single items,
/// so `b` bad signatures among `n` cost about `2·b·log2(n)` checks rather than `n`.
///
/// `parts` names where each item came from: a failed batch is first split by part, so the
/// bad signatures of one source make only that source's items bisect, and the others still
/// pass in one check each (one part for all when the sources do not matter).
pub fn bls_batch_validity(
    key: &BlsPublicKey,
    items: &[(&HashedMessage, &BlsSignature)],
    weights: &[u64],
    parts: &[usize],
) -> Vec<bool> {
    assert_eq!(items.len(), weights.len(), "one weight per item");
    assert_eq!(items.len(), parts.len(), "one part per item");
    let mut valid = vec![false; items.len()];
    let mut batch = Vec::with_capacity(items.len());
    for (index, ((message, signature), weight)) in items.iter().zip(weights).enumerate() {
        if let Some(point) = signature_point(signature) {
            batch.push(BatchItem {
                index,
                part: parts[index],
                message: *message.0.as_ref(),
                point,
                weight: weight | 1,
            });
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
    message: blst::blst_p2_affine,
    point: blst::blst_p2_affine,
    weight: u64,
}

/// Whether every signature of `batch` is valid, by one random linear combination.
fn agrees(key: &BlsPublicKey, batch: &[BatchItem]) -> bool {
    match batch {
        [] => true,
        [item] => pairings_agree(key, &item.message, &item.point),
        _ => {
            let messages: Vec<_> = batch.iter().map(|item| item.message).collect();
            let points: Vec<_> = batch.iter().map(|item| item.point).collect();
            let scalars: Vec<u8> =
                batch.iter().flat_map(|item| item.weight.to_le_bytes()).collect();
            let message_sum = weighted_sum(&messages, &scalars);
            pairings_agree(key, &message_sum, &weighted_sum(&points, &scalars))
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

/// `Σ weight_i·point_i` for 64-bit little-endian weights (Pippenger), on the calling thread:
/// blst's own `mult` spreads one sum over its thread pool, which fights the elder's per-batch
/// workers for the same cores. `points` is not empty.
fn weighted_sum(points: &[blst::blst_p2_affine], weights: &[u8]) -> blst::blst_p2_affine {
    assert_eq!(weights.len(), points.len() * 8, "one 64-bit weight per point");
    // blst reads the points and the weights as one contiguous run each when the second pointer
    // of each list is null.
    let point_list = [points.as_ptr(), std::ptr::null()];
    let weight_list = [weights.as_ptr(), std::ptr::null()];
    let (mut sum, mut affine) = (blst::blst_p2::default(), blst::blst_p2_affine::default());
    // SAFETY: the scratch size is blst's own for this many points; the lists point at
    // `points.len()` affine points and as many 64-bit weights, checked above.
    unsafe {
        let words = blst::blst_p2s_mult_pippenger_scratch_sizeof(points.len()) / 8;
        let mut scratch = vec![0 as blst::limb_t; words];
        blst::blst_p2s_mult_pippenger(
            &mut sum,
            point_list.as_ptr(),
            points.len(),
            weight_list.as_ptr(),
            64,
            scratch.as_mut_ptr(),
        );
        blst::blst_p2_to_affine(&mut affine, &sum);
    }
    affine
}

#[cfg(test)]
mod tests {
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
        let secret = blsttc::SecretKey::from_bytes([3; 32]).expect("a scalar below the order");
        let key = bls_public_key(&secret.public_key().to_bytes()).expect("key");
        let messages: Vec<Vec<u8>> =
            (0..count).map(|i| format!("debit {i}").into_bytes()).collect();
        let signatures = messages.iter().map(|m| BlsSignature(secret.sign(m).to_bytes())).collect();
        let messages = messages.iter().map(|m| HashedMessage::of(m)).collect();
        (key, messages, signatures)
    }

    #[test]
    fn a_batch_check_finds_exactly_the_bad_signatures() {
        let (key, messages, mut signatures) = signed_batch(9);
        let weights: Vec<u64> =
            (0..9).map(|i| 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i + 1)).collect();
        // Found alike with one part for all and with items from three sources, interleaved.
        let check = |signatures: &[BlsSignature], weights: &[u64]| {
            let items: Vec<(&HashedMessage, &BlsSignature)> =
                messages.iter().zip(signatures).collect();
            let bad = |parts: &[usize]| {
                let validity = bls_batch_validity(&key, &items, weights, parts);
                (0..9).filter(|i| !validity[*i]).collect::<Vec<usize>>()
            };
            let sources: Vec<usize> = (0..9).map(|i| i % 3).collect();
            let (alone, by_source) = (bad(&[0; 9]), bad(&sources));
            assert_eq!(alone, by_source);
            alone
        };
        assert_eq!(check(&signatures, &weights), Vec::<usize>::new());
        assert!(messages.iter().zip(&signatures).all(|(m, s)| bls_signature_is_valid(&key, m, s)));
        // Two signatures swapped: each valid, but not for its message.
        signatures.swap(2, 5);
        assert_eq!(check(&signatures, &weights), vec![2, 5]);
        assert!(!bls_signature_is_valid(&key, &messages[2], &signatures[2]));
        signatures.swap(2, 5);
        // A flipped bit makes bytes that are no point at all; zero weights are made odd.
        signatures[7].0[5] ^= 1;
        assert_eq!(check(&signatures, &weights), vec![7]);
        assert_eq!(check(&signatures, &[0; 9]), vec![7]);
        assert!(!bls_signature_is_valid(&key, &messages[7], &signatures[7]));
    }
}
