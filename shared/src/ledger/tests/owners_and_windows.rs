//! Multi-owner accounts (R10) and time windows (R11) at one elder: what is signed, and every
//! refusal exact with the state unchanged.

use ed25519_dalek::SigningKey;

use super::fixtures::{
    assert_refused, assert_refused_at, register, transfer, validate, Fixture, HOME,
};
use crate::driver::account_id;
use crate::driver::multisig::{create_policy, PartialTransfer};
use crate::limits::{CLOCK_SKEW_MS_MAX, OWNERS_MAX};
use crate::messages::{ClientReply, ClientRequest};
use crate::rejection::Rejection;
use crate::types::{AccountId, Amount, Authority, Policy, Seq, SignedTransfer, Window};

/// A 2-of-3 account in `HOME`, funded with 100 at every elder of `elders`.
struct Shared {
    owners: Vec<SigningKey>,
    policy: Policy,
    account: AccountId,
}

fn shared_account(fx: &Fixture, elders: &mut [crate::ledger::Ledger]) -> Shared {
    let owners: Vec<SigningKey> = (0..3).map(|_| fx.key_in(HOME)).collect();
    let ids = owners.iter().map(account_id).collect();
    let (policy, account) = create_policy(2, ids, Some(fx.prefix(HOME))).expect("a policy");
    fx.pay(elders, &fx.faucet, account, 100, 1);
    Shared { owners, policy, account }
}

impl Shared {
    /// The account pays `amount` to `to` at `seq`, signed by the owners at `signers`.
    fn signed(
        &self,
        fx: &Fixture,
        to: AccountId,
        amount: u64,
        seq: u64,
        signers: &[usize],
    ) -> SignedTransfer {
        let mut unsigned = transfer(&fx.faucet, to, amount, seq);
        unsigned.from = self.account;
        let mut partial = PartialTransfer::new(self.policy.clone(), unsigned).expect("its policy");
        for &signer in signers {
            partial.sign(&self.owners[signer], &fx.genesis()).expect("an owner");
        }
        let authority =
            Authority::Policy { policy: self.policy.clone(), signatures: partial.signatures };
        SignedTransfer { transfer: partial.transfer, authority }
    }
}

#[test]
fn transfer_signed_by_threshold_owners_is_certified_and_applied() {
    let fx = Fixture::new(201);
    let mut elders = fx.elders(HOME);
    let shared = shared_account(&fx, &mut elders);
    let to = fx.account_in(HOME);
    let signed = shared.signed(&fx, to, 30, 1, &[0, 2]);
    let proof = fx.certify_at(&mut elders, &signed);
    for elder in &mut elders {
        register(elder, &proof, 0);
        assert_eq!(elder.report(shared.account).balance, Amount(70));
        assert_eq!(elder.report(to).balance, Amount(30));
    }
}

#[test]
fn too_few_owner_signatures_are_refused_with_owner_signatures() {
    let fx = Fixture::new(202);
    let mut elders = fx.elders(HOME);
    let shared = shared_account(&fx, &mut elders);
    let signed = shared.signed(&fx, fx.account_in(HOME), 30, 1, &[1]);
    let expected = Rejection::OwnerSignatures { count: 1, threshold: 2 };
    assert_refused(&mut elders[0], validate(signed), expected);
}

#[test]
fn one_owner_signing_twice_is_refused_with_owner_signatures() {
    let fx = Fixture::new(203);
    let mut elders = fx.elders(HOME);
    let shared = shared_account(&fx, &mut elders);
    let mut signed = shared.signed(&fx, fx.account_in(HOME), 30, 1, &[0, 1]);
    if let Authority::Policy { signatures, .. } = &mut signed.authority {
        signatures[1] = signatures[0];
    }
    let expected = Rejection::OwnerSignatures { count: 2, threshold: 2 };
    assert_refused(&mut elders[0], validate(signed), expected);
}

#[test]
fn a_signature_by_someone_else_in_an_owners_place_is_refused_with_bad_account_signature() {
    let fx = Fixture::new(204);
    let mut elders = fx.elders(HOME);
    let shared = shared_account(&fx, &mut elders);
    let mut signed = shared.signed(&fx, fx.account_in(HOME), 30, 1, &[0, 1]);
    let bytes = crate::crypto::transfer_signing_bytes(&fx.genesis(), &signed.transfer);
    let forged = ed25519_dalek::Signer::sign(&fx.key_in(HOME), &bytes);
    if let Authority::Policy { signatures, .. } = &mut signed.authority {
        signatures[1].signature = forged;
    }
    let expected = Rejection::BadAccountSignature { account: shared.account };
    assert_refused(&mut elders[0], validate(signed), expected);
}

#[test]
fn a_policy_that_is_not_the_accounts_is_refused_with_policy_mismatch() {
    let fx = Fixture::new(205);
    let mut elders = fx.elders(HOME);
    let shared = shared_account(&fx, &mut elders);
    let mut signed = shared.signed(&fx, fx.account_in(HOME), 30, 1, &[0, 1]);
    // The same owners with a threshold of one: a policy that would let one owner pay alone.
    if let Authority::Policy { policy, signatures } = &mut signed.authority {
        policy.threshold = 1;
        signatures.truncate(1);
    }
    let expected = Rejection::PolicyMismatch { account: shared.account };
    assert_refused(&mut elders[0], validate(signed), expected);
}

#[test]
fn more_owners_than_the_limit_are_refused_where_bytes_become_values() {
    let fx = Fixture::new(206);
    let mut elders = fx.elders(HOME);
    let shared = shared_account(&fx, &mut elders);
    let mut signed = shared.signed(&fx, fx.account_in(HOME), 30, 1, &[0, 1]);
    if let Authority::Policy { policy, .. } = &mut signed.authority {
        policy.owners = vec![shared.account; OWNERS_MAX + 1];
    }
    let request = validate(signed);
    let count = (OWNERS_MAX + 1) as u64;
    let expected = Rejection::TooManyOwners { count, max: OWNERS_MAX as u64 };
    assert_eq!(request.check_bounds(), Err(expected));
}

#[test]
fn two_owner_groups_signing_different_transfers_for_one_seq_get_a_conflict() {
    let fx = Fixture::new(207);
    let mut elders = fx.elders(HOME);
    let shared = shared_account(&fx, &mut elders);
    let first = shared.signed(&fx, fx.account_in(HOME), 30, 1, &[0, 1]);
    let second = shared.signed(&fx, fx.account_in(HOME), 40, 1, &[1, 2]);
    let (reply, _) = elders[0].handle_client(validate(first.clone()), 0);
    assert!(matches!(reply, ClientReply::Share { .. }), "{reply:?}");
    let expected = Rejection::Conflict { slot: second.transfer.slot(), rival: Box::new(first) };
    assert_refused(&mut elders[0], validate(second), expected);
}

/// The faucet pays at seq 1 within `window`.
fn windowed(fx: &Fixture, window: Window) -> SignedTransfer {
    let mut unsigned = transfer(&fx.faucet, fx.account_in(HOME), 5, 1);
    unsigned.window = window;
    fx.sign(&fx.faucet, unsigned)
}

const NOON_MS: u64 = 1_800_000_000_000;

#[test]
fn a_share_is_signed_only_inside_the_window_widened_by_the_clock_skew() {
    let fx = Fixture::new(208);
    let window = Window { valid_after: Some(NOON_MS), valid_before: Some(NOON_MS + 60_000) };
    let signed = windowed(&fx, window);
    let opens = NOON_MS - CLOCK_SKEW_MS_MAX;
    let closes = NOON_MS + 60_000 + CLOCK_SKEW_MS_MAX;
    let mut elder = fx.ledger(HOME, 0);
    let early = Rejection::TooEarly { valid_after: NOON_MS, early_ms: 4_200 };
    assert_refused_at(&mut elder, validate(signed.clone()), early, opens - 4_200);
    let late = Rejection::Expired { valid_before: NOON_MS + 60_000, late_ms: 1 };
    assert_refused_at(&mut elder, validate(signed.clone()), late, closes + 1);
    for now_ms in [opens, closes] {
        let mut elder = fx.ledger(HOME, 0);
        let (reply, _) = elder.handle_client(validate(signed.clone()), now_ms);
        assert!(matches!(reply, ClientReply::Share { .. }), "at {now_ms}: {reply:?}");
    }
}

#[test]
fn a_share_signed_in_time_is_given_again_after_the_window_and_the_proof_registers_any_time() {
    let fx = Fixture::new(209);
    let window = Window { valid_after: None, valid_before: Some(NOON_MS) };
    let signed = windowed(&fx, window);
    let mut elder = fx.ledger(HOME, 0);
    let (first, _) = elder.handle_client(validate(signed.clone()), NOON_MS);
    let later = NOON_MS + CLOCK_SKEW_MS_MAX + 60_000;
    let (again, output) = elder.handle_client(validate(signed.clone()), later);
    assert_eq!(first, again, "the same share, not a new one");
    assert!(output.records.is_empty(), "nothing new signed");
    register(&mut elder, &fx.certify(signed), later);
    assert_eq!(elder.report(fx.faucet_id()).next_seq, Seq(2));
}

#[test]
fn a_window_that_ends_before_it_starts_is_refused_with_empty_window() {
    let fx = Fixture::new(210);
    let window = Window { valid_after: Some(NOON_MS), valid_before: Some(NOON_MS - 1) };
    let expected = Rejection::EmptyWindow { valid_after: NOON_MS, valid_before: NOON_MS - 1 };
    let mut elder = fx.ledger(HOME, 0);
    assert_refused_at(&mut elder, validate(windowed(&fx, window)), expected, NOON_MS);
}

#[test]
fn a_bounds_check_passes_a_policy_transfer_within_the_limits() {
    let fx = Fixture::new(211);
    let mut elders = fx.elders(HOME);
    let shared = shared_account(&fx, &mut elders);
    let signed = shared.signed(&fx, fx.account_in(HOME), 30, 1, &[0, 1]);
    let request = ClientRequest::Validate { transfer: signed, deps: Vec::new() };
    assert_eq!(request.check_bounds(), Ok(()));
}
