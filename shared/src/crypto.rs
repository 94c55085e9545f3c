//! Domain-separated hashing and signing: account signatures (ed25519), section shares (BLS).
//!
//! Every signed byte string starts with a domain tag and the network's genesis hash, so a
//! signature made for one message kind or one network never verifies as another.

use blsttc::SecretKeyShare;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::codec;
use crate::types::{BlsSignature, Digest, SignedTransfer, Transfer, TransferId};

/// Domain tag of the bytes an account key signs.
const TRANSFER_DOMAIN: &[u8] = b"section-bank/v1/transfer\0";
/// Domain tag of the bytes a section key (share) signs.
const DEBIT_DOMAIN: &[u8] = b"section-bank/v1/debit\0";
/// Domain tag of a transfer id.
const TRANSFER_ID_DOMAIN: &[u8] = b"section-bank/v1/transfer-id\0";
/// Domain tags of the other hashes, one per use.
pub(crate) const GENESIS_DOMAIN: &[u8] = b"section-bank/v1/genesis\0";
pub(crate) const SECTION_KEY_DOMAIN: &[u8] = b"section-bank/v1/section-key\0";
pub(crate) const DEBIT_CHAIN_DOMAIN: &[u8] = b"section-bank/v1/debit-chain\0";
pub(crate) const CREDIT_SET_DOMAIN: &[u8] = b"section-bank/v1/credit-set\0";
pub(crate) const ACCOUNT_DIGEST_DOMAIN: &[u8] = b"section-bank/v1/account\0";
pub(crate) const STATE_DIGEST_DOMAIN: &[u8] = b"section-bank/v1/state\0";

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
    SignedTransfer { transfer, signature }
}

/// Whether the account signature is valid for the sender's key (strict: no malleable forms).
pub fn account_signature_is_valid(genesis: &Digest, signed: &SignedTransfer) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&signed.transfer.from.0) else {
        return false;
    };
    key.verify_strict(&transfer_signing_bytes(genesis, &signed.transfer), &signed.signature).is_ok()
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

/// An elder's BLS signature share certifying the transfer `id`.
pub fn sign_debit_share(
    key_share: &SecretKeyShare,
    genesis: &Digest,
    id: &TransferId,
) -> BlsSignature {
    BlsSignature(key_share.sign(debit_signing_bytes(genesis, id)).to_bytes())
}

/// A BLS public key (section key or key share) prepared for verification.
pub type BlsPublicKey = blst::min_pk::PublicKey;

/// Prepares a public key (section key or key share, compressed) for verification: decompressed
/// and group-checked once. `None` for bytes that are no usable key, such as the identity.
pub fn bls_public_key(bytes: &[u8; 48]) -> Option<BlsPublicKey> {
    BlsPublicKey::key_validate(bytes).ok()
}

/// Whether `signature` is `key`'s BLS signature over `message`, with blsttc's hash-to-curve
/// tag. One multi-Miller loop and one final exponentiation (blsttc's own verify computes two
/// full pairings); the signature is decompressed and group-checked here, not when decoded.
pub fn bls_signature_is_valid(
    key: &BlsPublicKey,
    message: &[u8],
    signature: &BlsSignature,
) -> bool {
    let Ok(signature) = blst::min_pk::Signature::uncompress(&signature.0) else {
        return false;
    };
    let result = signature.verify(true, message, blsttc::DST, &[], key, false);
    result == blst::BLST_ERROR::BLST_SUCCESS
}

/// Whether every signature in `items` is `key`'s valid BLS signature over its message, checked
/// at once by a random linear combination: with a weight `r_i` per item (from the caller, made
/// odd so it is never zero), `e(key, Σ r_i·H(m_i)) = e(g1, Σ r_i·σ_i)`. A batch holding an
/// invalid signature passes with probability at most 2^-63. It costs one hash to the curve and
/// one subgroup check per item, two multi-scalar multiplications and two Miller loops: a
/// fraction of checking the items one by one, each with its own pairings.
pub fn bls_batch_is_valid(
    key: &BlsPublicKey,
    items: &[(&[u8], &BlsSignature)],
    weights: &[u64],
) -> bool {
    use blst::{blst_fp12, blst_p1_affine, blst_p2, blst_p2_affine, MultiPoint, BLST_ERROR};
    assert_eq!(items.len(), weights.len(), "one weight per item");
    if items.is_empty() {
        return true;
    }
    let mut signatures = Vec::with_capacity(items.len());
    let mut hashes = Vec::with_capacity(items.len());
    for (message, signature) in items {
        let mut point = blst_p2_affine::default();
        // SAFETY: blst reads the 96 bytes of a compressed G2 point from a 96-byte array and
        // writes one affine point; the checks read that point only.
        let usable = unsafe {
            blst::blst_p2_uncompress(&mut point, signature.0.as_ptr()) == BLST_ERROR::BLST_SUCCESS
                && !blst::blst_p2_affine_is_inf(&point)
                && blst::blst_p2_affine_in_g2(&point)
        };
        if !usable {
            return false;
        }
        signatures.push(point);
        let mut hash = blst_p2::default();
        // SAFETY: the message and tag pointers come with their lengths; no augmentation.
        unsafe {
            blst::blst_hash_to_g2(
                &mut hash,
                message.as_ptr(),
                message.len(),
                blsttc::DST.as_ptr(),
                blsttc::DST.len(),
                std::ptr::null(),
                0,
            );
        }
        hashes.push(hash);
    }
    let scalars: Vec<u8> = weights.iter().flat_map(|weight| (weight | 1).to_le_bytes()).collect();
    let hash_sum = blst::p2_affines::from(&hashes).mult(&scalars, 64);
    let signature_sum = signatures.as_slice().mult(&scalars, 64);
    let (mut hash_sum_affine, mut signature_sum_affine) =
        (blst_p2_affine::default(), blst_p2_affine::default());
    let key_affine = blst_p1_affine::from(*key);
    let (mut left, mut right) = (blst_fp12::default(), blst_fp12::default());
    // SAFETY: every pointer is to an initialised value owned here; the generator is a static.
    unsafe {
        blst::blst_p2_to_affine(&mut hash_sum_affine, &hash_sum);
        blst::blst_p2_to_affine(&mut signature_sum_affine, &signature_sum);
        blst::blst_miller_loop(&mut left, &hash_sum_affine, &key_affine);
        blst::blst_miller_loop(&mut right, &signature_sum_affine, blst::blst_p1_affine_generator());
        blst::blst_fp12_finalverify(&left, &right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AccountId, Amount, Memo, Seq};

    fn transfer_from(key: &SigningKey) -> Transfer {
        Transfer {
            from: AccountId(key.verifying_key().to_bytes()),
            to: AccountId(SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes()),
            amount: Amount(5),
            seq: Seq(1),
            memo: Memo(b"rent".to_vec()),
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
    fn debit_and_transfer_signing_bytes_never_coincide() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = sign_transfer(&key, &Digest([1; 32]), transfer_from(&key));
        let debit = debit_signing_bytes(&Digest([1; 32]), &transfer_id(&signed));
        let account = transfer_signing_bytes(&Digest([1; 32]), &signed.transfer);
        assert_ne!(debit[..DEBIT_DOMAIN.len()], account[..DEBIT_DOMAIN.len()]);
    }

    fn signed_batch(count: usize) -> (BlsPublicKey, Vec<Vec<u8>>, Vec<BlsSignature>) {
        let secret = blsttc::SecretKey::from_bytes([3; 32]).expect("a scalar below the order");
        let key = bls_public_key(&secret.public_key().to_bytes()).expect("key");
        let messages: Vec<Vec<u8>> =
            (0..count).map(|i| format!("debit {i}").into_bytes()).collect();
        let signatures = messages.iter().map(|m| BlsSignature(secret.sign(m).to_bytes())).collect();
        (key, messages, signatures)
    }

    #[test]
    fn a_batch_of_valid_signatures_passes_and_one_bad_signature_fails_it() {
        let (key, messages, mut signatures) = signed_batch(9);
        let weights: Vec<u64> =
            (0..9).map(|i| 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i + 1)).collect();
        let items = |signatures: &[BlsSignature]| -> Vec<(Vec<u8>, BlsSignature)> {
            messages.iter().cloned().zip(signatures.iter().copied()).collect()
        };
        let check = |items: &[(Vec<u8>, BlsSignature)]| {
            let borrowed: Vec<(&[u8], &BlsSignature)> =
                items.iter().map(|(m, s)| (m.as_slice(), s)).collect();
            bls_batch_is_valid(&key, &borrowed, &weights)
        };
        assert!(check(&items(&signatures)));
        assert!(items(&signatures).iter().all(|(m, s)| bls_signature_is_valid(&key, m, s)));
        // Two signatures swapped: each valid, but not for its message.
        signatures.swap(2, 5);
        assert!(!check(&items(&signatures)));
        signatures.swap(2, 5);
        signatures[7].0[5] ^= 1;
        assert!(!check(&items(&signatures)));
        // Zero weights are made odd, so no item escapes the check.
        let zero = vec![0u64; 9];
        let borrowed: Vec<(&[u8], &BlsSignature)> =
            messages.iter().map(|m| m.as_slice()).zip(signatures.iter()).collect();
        assert!(!bls_batch_is_valid(&key, &borrowed, &zero));
    }
}
