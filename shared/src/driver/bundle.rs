//! Bundles on the parties' side (R12, R13): a bundle put together and countersigned as it goes
//! round its payers ([`PartialBundle`], passed as a file), each leg's lock, and asking the
//! referee for the outcome ([`OutcomeQuery`]): a certificate proves itself, so the first valid
//! one ends the question; "undecided" is believed only from `f + 1` elders.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use super::asking::{Asking, Timing};
use super::collect::AgreedAnswer;
use super::{account_id, Drive, DriverError, Ready, Steps, Unsaved};
use crate::crypto;
use crate::limits::LEGS_MAX;
use crate::messages::{ClientReply, ClientRequest};
use crate::network::{Network, Section};
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Authority, Bundle, BundleId, DebitProof, ElderIndex, Leg, OutcomeCertificate,
    OwnerSignature, PayerAuthority, Policy, SignedTransfer,
};

/// Why a bundle cannot take a leg or a signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle has `LEGS_MAX` legs already.
    #[error("a bundle has at most {LEGS_MAX} legs")]
    Full,
    /// Legs cannot change once a payer has signed: the signatures are over the whole bundle.
    #[error("payers have signed this bundle already; legs cannot change (start a new bundle)")]
    Signed,
    /// The leg's shape is wrong (or the bundle's, for one that was edited by hand).
    #[error("{0}")]
    Shape(Rejection),
    /// The key (or the policy) pays in no leg of the bundle.
    #[error("account {0} pays in no leg of this bundle")]
    NotAPayer(AccountId),
    /// The key is not an owner of the payer's policy.
    #[error("key {0} is not an owner of the paying account")]
    NotAnOwner(AccountId),
    /// This key has signed already.
    #[error("{0} has signed this bundle already")]
    AlreadySigned(AccountId),
    /// A signature in the file does not verify for this bundle and network.
    #[error("the signature for leg {0} does not verify for this bundle and network")]
    BadSignature(u8),
}

/// A bundle with the payers' signatures so far: what the parties pass round as a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialBundle {
    /// The bundle.
    pub bundle: Bundle,
    /// Per leg, the payer's authority over the bundle so far: its key's signature, or its
    /// policy with the owner signatures so far, in owner order.
    pub payers: Vec<Option<PayerAuthority>>,
}

impl PartialBundle {
    /// A bundle with no legs yet.
    pub fn new(deadline_ms: u64, referee: crate::types::Prefix, nonce: u64) -> PartialBundle {
        let bundle = Bundle { legs: Vec::new(), deadline_ms, referee, nonce };
        PartialBundle { bundle, payers: Vec::new() }
    }

    /// The bundle's id, which every payer signs.
    pub fn id(&self) -> BundleId {
        crypto::bundle_id(&self.bundle)
    }

    /// Adds a leg, before anyone has signed.
    pub fn add_leg(&mut self, leg: Leg) -> Result<(), BundleError> {
        if self.payers.iter().any(Option::is_some) {
            return Err(BundleError::Signed);
        }
        if self.bundle.legs.len() >= LEGS_MAX {
            return Err(BundleError::Full);
        }
        let mut bundle = self.bundle.clone();
        bundle.legs.push(leg);
        crypto::check_bundle_shape(&bundle).map_err(BundleError::Shape)?;
        self.bundle = bundle;
        self.payers.push(None);
        Ok(())
    }

    /// Signs the bundle as the payer whose key this is, or, with `policy`, as one owner of
    /// the multi-owner payer it controls. Returns the leg signed for.
    pub fn sign(
        &mut self,
        key: &SigningKey,
        policy: Option<&Policy>,
        genesis: &crate::types::Digest,
    ) -> Result<u8, BundleError> {
        let me = account_id(key);
        let payer = match policy {
            Some(policy) => crypto::policy_account(policy).ok_or(BundleError::NotAnOwner(me))?,
            None => me,
        };
        let leg = self.bundle.legs.iter().position(|leg| leg.from == payer);
        let leg = leg.ok_or(BundleError::NotAPayer(payer))?;
        let signature = crypto::sign_bundle(key, genesis, &self.bundle);
        let slot = &mut self.payers[leg];
        match (policy, slot.as_mut()) {
            (None, None) => *slot = Some(PayerAuthority::Key(signature)),
            (None, Some(_)) => return Err(BundleError::AlreadySigned(me)),
            (Some(policy), _) => {
                let owner = policy.owners.iter().position(|owner| *owner == me);
                let owner = owner.ok_or(BundleError::NotAnOwner(me))? as u8;
                let authority = slot.get_or_insert_with(|| PayerAuthority::Policy {
                    policy: policy.clone(),
                    signatures: Vec::new(),
                });
                let PayerAuthority::Policy { signatures, .. } = authority else {
                    return Err(BundleError::AlreadySigned(me));
                };
                if signatures.len() >= usize::from(policy.threshold) {
                    return Err(BundleError::AlreadySigned(payer));
                }
                match signatures.binary_search_by_key(&owner, |signed| signed.owner) {
                    Ok(_) => return Err(BundleError::AlreadySigned(me)),
                    Err(at) => signatures.insert(at, OwnerSignature { owner, signature }),
                }
            }
        }
        Ok(leg as u8)
    }

    /// Checks a bundle read from a file someone else wrote: its shape, and every signature
    /// so far over this bundle on the network `genesis`, by its payer or a distinct owner of
    /// the payer's policy, in owner order.
    pub fn check(&self, genesis: &crate::types::Digest) -> Result<(), BundleError> {
        crypto::check_bundle_shape(&self.bundle).map_err(BundleError::Shape)?;
        if self.payers.len() != self.bundle.legs.len() {
            return Err(BundleError::Shape(Rejection::LegCount {
                count: self.payers.len() as u64,
                max: self.bundle.legs.len() as u64,
            }));
        }
        let bytes = crypto::bundle_signing_bytes(genesis, &self.id());
        let verifies = |key: &AccountId, signature: &ed25519_dalek::Signature| {
            ed25519_dalek::VerifyingKey::from_bytes(&key.0)
                .is_ok_and(|key| key.verify_strict(&bytes, signature).is_ok())
        };
        for (index, (leg, payer)) in self.bundle.legs.iter().zip(&self.payers).enumerate() {
            let good = match payer {
                None => true,
                Some(PayerAuthority::Key(signature)) => verifies(&leg.from, signature),
                Some(PayerAuthority::Policy { policy, signatures }) => {
                    crypto::policy_account(policy) == Some(leg.from)
                        && signatures.len() <= usize::from(policy.threshold)
                        && signatures.windows(2).all(|pair| pair[0].owner < pair[1].owner)
                        && signatures.iter().all(|signed| {
                            policy
                                .owners
                                .get(usize::from(signed.owner))
                                .is_some_and(|owner| verifies(owner, &signed.signature))
                        })
                }
            };
            if !good {
                return Err(BundleError::BadSignature(index as u8));
            }
        }
        Ok(())
    }

    /// Legs whose payer has not signed enough yet.
    pub fn unsigned_legs(&self) -> Vec<u8> {
        (0..self.payers.len() as u8).filter(|leg| self.lock(*leg).is_none()).collect()
    }

    /// The signed lock of `leg`, once its payer (or `threshold` of its owners) signed.
    pub fn lock(&self, leg: u8) -> Option<SignedTransfer> {
        let payer = self.payers.get(usize::from(leg))?.clone()?;
        if let PayerAuthority::Policy { policy, signatures } = &payer {
            if signatures.len() != usize::from(policy.threshold) {
                return None;
            }
        }
        Some(SignedTransfer {
            transfer: self.bundle.lock_transfer(usize::from(leg))?,
            authority: Authority::Bundle { bundle: Box::new(self.bundle.clone()), leg, payer },
        })
    }
}

/// What a referee's elders say of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The certified outcome.
    Decided(Box<OutcomeCertificate>),
    /// `f + 1` elders say it is not decided yet.
    Undecided,
}

/// Asks a section for a bundle's outcome: the referee with `Decide` (showing locks, waiting
/// for the certificate) or any section with `Outcome` (settled there yet?).
#[derive(Clone, Debug)]
pub struct OutcomeQuery {
    network: Arc<Network>,
    section: Section,
    bundle: BundleId,
    timing: Timing,
    asking: Asking,
    /// Whether to wait for the certificate rather than accept "undecided".
    wait: bool,
    undecided: AgreedAnswer<()>,
    outcome: Option<Result<Verdict, DriverError>>,
}

impl OutcomeQuery {
    /// Shows the referee `locks` and waits for the certificate (its patience in `timing`).
    pub fn decide(
        network: Arc<Network>,
        bundle: Bundle,
        locks: Vec<DebitProof>,
        timing: Timing,
        at_ms: u64,
    ) -> Result<OutcomeQuery, DriverError> {
        let referee = network.referee_of(&bundle).ok_or_else(|| {
            let rejection =
                Rejection::NotReferee { referee: bundle.referee, prefix: bundle.referee };
            DriverError::Invalid(rejection)
        })?;
        let section = network.sections.iter().position(|s| s.prefix == referee.prefix);
        let id = crypto::bundle_id(&bundle);
        let request = ClientRequest::Decide { bundle, locks };
        let section = section.expect("the referee is a section");
        Ok(OutcomeQuery::new(network, section, id, request, true, timing, at_ms))
    }

    /// Asks section `section` whether bundle `id` is settled there, accepting "undecided"
    /// from `f + 1` elders.
    pub fn status(
        network: Arc<Network>,
        section: usize,
        id: BundleId,
        timing: Timing,
        at_ms: u64,
    ) -> OutcomeQuery {
        let request = ClientRequest::Outcome { bundle: id };
        OutcomeQuery::new(network, section, id, request, false, timing, at_ms)
    }

    fn new(
        network: Arc<Network>,
        section: usize,
        bundle: BundleId,
        request: ClientRequest,
        wait: bool,
        timing: Timing,
        at_ms: u64,
    ) -> OutcomeQuery {
        let info = network.sections[section].clone();
        let asking = Asking::new(section, info.elder_count(), &request, 0, timing, at_ms);
        OutcomeQuery {
            undecided: AgreedAnswer::new(&info),
            section: info,
            network,
            bundle,
            timing,
            asking,
            wait,
            outcome: None,
        }
    }
}

impl Steps for OutcomeQuery {
    fn handle_reply(
        &mut self,
        elder: ElderIndex,
        tag: u64,
        reply: Result<ClientReply, String>,
        now_ms: u64,
    ) {
        if self.outcome.is_some() {
            return;
        }
        let Some(request) = self.asking.answered(elder, tag, &reply) else {
            return;
        };
        match reply {
            Ok(ClientReply::Outcome(certificate))
                if self.network.check_outcome(&certificate) == Ok(self.bundle) =>
            {
                self.outcome = Some(Ok(Verdict::Decided(certificate)));
                return;
            }
            Ok(ClientReply::Undecided { bundle })
                if bundle == self.bundle
                    && !self.wait
                    && self.undecided.add(elder, ()).is_some() =>
            {
                self.outcome = Some(Ok(Verdict::Undecided));
                return;
            }
            _ => {}
        }
        // Not decided yet, a lagging or lying elder (one refusal proves nothing: the client
        // checked the bundle and its locks itself), or a lost answer: ask again.
        self.asking.again(elder, request, now_ms);
    }

    fn handle_timeout(&mut self, now_ms: u64) {
        if self.outcome.is_some() {
            return;
        }
        if self.asking.gave_up(now_ms) {
            let problem = self.asking.last_problem.clone();
            let error = DriverError::unreachable(&self.section, self.timing, problem);
            self.outcome = Some(Err(error));
            return;
        }
        self.asking.handle_timeout(now_ms);
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.outcome.is_none().then(|| self.asking.poll_timeout())
    }

    fn poll(&mut self) -> Ready {
        let requests = self.asking.take_outgoing();
        Ready { wallet_changed: false, unsaved: Unsaved { requests } }
    }
}

impl Drive for OutcomeQuery {
    type Outcome = Result<Verdict, DriverError>;

    fn take_outcome(&mut self) -> Option<Self::Outcome> {
        self.outcome.take()
    }
}
