//! Multi-owner accounts on the owners' side (R10): making a policy whose account falls in a
//! chosen section, and a transfer that goes round the owners, each adding a signature on
//! their own machine, until `threshold` of them have signed and it can be certified.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use super::account_id;
use crate::crypto;
use crate::limits::OWNERS_MAX;
use crate::types::{
    AccountId, Authority, Digest, OwnerSignature, Policy, Prefix, SignedTransfer, Transfer,
};

/// Why a policy cannot be made or a partial transfer not signed or completed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MultisigError {
    /// The threshold and the number of owners do not fit.
    #[error(
        "a policy needs 1 <= threshold <= owners <= {OWNERS_MAX}; got threshold {threshold} of \
         {owners} owners"
    )]
    Shape {
        /// The threshold asked.
        threshold: u64,
        /// The owners given.
        owners: u64,
    },
    /// An owner key is given twice.
    #[error("owner {0} is listed twice")]
    DuplicateOwner(AccountId),
    /// An owner key is no usable ed25519 public key.
    #[error("owner {0} is not a valid ed25519 public key")]
    InvalidOwner(AccountId),
    /// The policy does not control the transfer's paying account.
    #[error("the policy is not the policy of account {0}")]
    NotThePolicy(AccountId),
    /// The signing key is not one of the policy's owners.
    #[error("key {0} is not an owner of this account")]
    NotAnOwner(AccountId),
    /// This owner has signed already.
    #[error("owner {0} has signed this transfer already")]
    AlreadySigned(AccountId),
    /// A signature in the partial transfer does not verify, or is out of owner order.
    #[error("the signature of owner {0} does not verify for this transfer and network")]
    BadSignature(AccountId),
    /// Not enough owners have signed yet.
    #[error("{have} of {need} owner signatures; {} more needed", need - have)]
    Missing {
        /// Signatures so far.
        have: u64,
        /// Signatures needed.
        need: u64,
    },
}

/// The policy of `threshold` of `owners`, with the first nonce that puts its account in
/// `section` (any section if `None`), and that account.
pub fn create_policy(
    threshold: u8,
    mut owners: Vec<AccountId>,
    section: Option<Prefix>,
) -> Result<(Policy, AccountId), MultisigError> {
    let shape = MultisigError::Shape { threshold: threshold.into(), owners: owners.len() as u64 };
    if threshold == 0 || usize::from(threshold) > owners.len() || owners.len() > OWNERS_MAX {
        return Err(shape);
    }
    if let Some(invalid) = owners.iter().find(|owner| !crypto::is_account_key(&owner.0)) {
        return Err(MultisigError::InvalidOwner(*invalid));
    }
    owners.sort();
    if let Some(pair) = owners.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(MultisigError::DuplicateOwner(pair[0]));
    }
    let mut policy = Policy { threshold, owners, nonce: 0 };
    loop {
        let account = crypto::policy_account(&policy).expect("a well-formed policy has an id");
        if section.is_none_or(|prefix| prefix.matches(&account)) {
            return Ok((policy, account));
        }
        policy.nonce += 1;
    }
}

/// A transfer from a multi-owner account with the owner signatures it has so far: what the
/// owners pass round (as a file) until `threshold` have signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialTransfer {
    /// The policy of the paying account.
    pub policy: Policy,
    /// The transfer, its seq fixed.
    pub transfer: Transfer,
    /// Signatures so far, in owner order.
    pub signatures: Vec<OwnerSignature>,
}

impl PartialTransfer {
    /// `transfer` from the account of `policy`, with no signature yet.
    pub fn new(policy: Policy, transfer: Transfer) -> Result<PartialTransfer, MultisigError> {
        if crypto::policy_account(&policy) != Some(transfer.from) {
            return Err(MultisigError::NotThePolicy(transfer.from));
        }
        Ok(PartialTransfer { policy, transfer, signatures: Vec::new() })
    }

    /// Whether the policy controls the paying account and every signature so far is a
    /// distinct owner's, in owner order, and verifies on the network `genesis` (for a
    /// partial transfer read from a file someone else wrote).
    pub fn check(&self, genesis: &Digest) -> Result<(), MultisigError> {
        if crypto::policy_account(&self.policy) != Some(self.transfer.from) {
            return Err(MultisigError::NotThePolicy(self.transfer.from));
        }
        let bytes = crypto::transfer_signing_bytes(genesis, &self.transfer);
        let mut previous = None;
        for signed in &self.signatures {
            let owner = self.policy.owners.get(usize::from(signed.owner));
            let owner = owner.ok_or(MultisigError::BadSignature(self.transfer.from))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&owner.0);
            let verifies =
                key.is_ok_and(|key| key.verify_strict(&bytes, &signed.signature).is_ok());
            if !verifies || previous.is_some_and(|previous| previous >= signed.owner) {
                return Err(MultisigError::BadSignature(*owner));
            }
            previous = Some(signed.owner);
        }
        Ok(())
    }

    /// Adds the signature of the owner whose key this is.
    pub fn sign(&mut self, key: &SigningKey, genesis: &Digest) -> Result<(), MultisigError> {
        let me = account_id(key);
        let signature = crypto::sign_as_owner(key, genesis, &self.policy, &self.transfer)
            .ok_or(MultisigError::NotAnOwner(me))?;
        match self.signatures.binary_search_by_key(&signature.owner, |signed| signed.owner) {
            Ok(_) => Err(MultisigError::AlreadySigned(me)),
            Err(at) => {
                self.signatures.insert(at, signature);
                Ok(())
            }
        }
    }

    /// How many more owners must sign.
    pub fn missing(&self) -> usize {
        usize::from(self.policy.threshold).saturating_sub(self.signatures.len())
    }

    /// The signed transfer, from the first `threshold` signatures in owner order, once there
    /// are enough.
    pub fn complete(&self) -> Result<SignedTransfer, MultisigError> {
        let need = usize::from(self.policy.threshold);
        if self.signatures.len() < need {
            let (have, need) = (self.signatures.len() as u64, need as u64);
            return Err(MultisigError::Missing { have, need });
        }
        let signatures = self.signatures[..need].to_vec();
        let authority = Authority::Policy { policy: self.policy.clone(), signatures };
        Ok(SignedTransfer { transfer: self.transfer.clone(), authority })
    }
}
