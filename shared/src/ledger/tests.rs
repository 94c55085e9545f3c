//! Unit tests of the elder's ledger: every refusal names its exact cause and changes nothing;
//! validation, registration, credits, the outbox, rebuild and sync follow R1–R6.

mod bundles;
pub(crate) mod fixtures;
mod owners_and_windows;

use ed25519_dalek::VerifyingKey;

use fixtures::{
    assert_refused, register, register_request, transfer, validate, Fixture, Snapshot, AWAY,
    ELDERS, HOME, SUPPLY,
};

use std::collections::HashSet;

use super::{
    CryptoWork, ElderId, Input, Ledger, LedgerError, Output, Precomputed, ProofSource, Record,
};
use crate::crypto;
use crate::driver::account_id;
use crate::limits::{
    DEPS_MAX, MEMO_BYTES_MAX, OUTBOX_RETRY_DELAY_MS_MAX, SYNC_INTERVAL_MS, SYNC_PAGE_PROOFS_MAX,
};
use crate::messages::{ClientReply, ClientRequest, PeerMessage, SyncEntry};
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Amount, BlsSignature, DebitProof, Digest, ElderIndex, Memo, Seq, SignedTransfer,
    TransferId,
};

/// The credits an output sends, as (recipient elder, transfer id).
/// The crypto work of these proofs and transfers.
fn work<'a>(proofs: &[&'a DebitProof], transfers: &[&'a SignedTransfer]) -> CryptoWork<'a> {
    let proofs = proofs.iter().map(|proof| (ProofSource::Client, *proof)).collect();
    CryptoWork { proofs, transfers: transfers.to_vec() }
}

fn credits_sent(output: &Output) -> Vec<(ElderId, TransferId)> {
    output
        .messages
        .iter()
        .filter_map(|(to, message)| match message {
            PeerMessage::Proof { proof } => Some((*to, crypto::transfer_id(&proof.signed))),
            _ => None,
        })
        .collect()
}

/// Every elder of `section` except those in `acked`, as credit recipients of `id`.
fn credit_targets(
    fx: &Fixture,
    section: usize,
    id: TransferId,
    acked: &[u32],
) -> Vec<(ElderId, TransferId)> {
    (0..ELDERS).filter(|i| !acked.contains(i)).map(|i| (fx.elder_id(section, i), id)).collect()
}

// Refusals of a validate request (R2): each exact, each leaving the elder untouched.

#[test]
fn memo_over_the_limit_is_refused_with_memo_too_long() {
    let fx = Fixture::new(1);
    let mut elder = fx.ledger(HOME, 0);
    let mut long = transfer(&fx.faucet, fx.account_in(HOME), 5, 1);
    long.memo = Memo(vec![7; MEMO_BYTES_MAX + 1]);
    let signed = fx.sign(&fx.faucet, long);
    let bytes = (MEMO_BYTES_MAX + 1) as u64;
    let expected = Rejection::MemoTooLong { bytes, max: MEMO_BYTES_MAX as u64 };
    assert_refused(&mut elder, validate(signed), expected);
}

#[test]
fn validate_of_an_account_of_another_section_is_refused_with_wrong_section() {
    let fx = Fixture::new(2);
    let mut elder = fx.ledger(HOME, 0);
    let stranger = fx.key_in(AWAY);
    let signed = fx.signed(&stranger, fx.faucet_id(), 5, 1);
    let account = signed.transfer.from;
    let expected = Rejection::WrongSection { account, prefix: fx.prefix(HOME) };
    assert_refused(&mut elder, validate(signed), expected);
}

#[test]
fn transfer_changed_after_signing_is_refused_with_bad_account_signature() {
    let fx = Fixture::new(3);
    let mut elder = fx.ledger(HOME, 0);
    let mut signed = fx.signed(&fx.faucet, fx.account_in(HOME), 5, 1);
    signed.transfer.amount = Amount(500);
    let expected = Rejection::BadAccountSignature { account: fx.faucet_id() };
    assert_refused(&mut elder, validate(signed), expected);
}

#[test]
fn transfer_signed_by_another_key_is_refused_with_bad_account_signature() {
    let fx = Fixture::new(4);
    let mut elder = fx.ledger(HOME, 0);
    let thief = fx.key_in(HOME);
    let signed = fx.sign(&thief, transfer(&fx.faucet, account_id(&thief), 5, 1));
    let expected = Rejection::BadAccountSignature { account: fx.faucet_id() };
    assert_refused(&mut elder, validate(signed), expected);
}

#[test]
fn weak_recipient_key_is_refused_with_invalid_recipient() {
    let fx = Fixture::new(5);
    let mut elder = fx.ledger(HOME, 0);
    // All-zero bytes decode to a point of small order: a key nobody can sign for.
    let to = AccountId([0; 32]);
    let signed = fx.signed(&fx.faucet, to, 5, 1);
    assert_refused(&mut elder, validate(signed), Rejection::InvalidRecipient { to });
}

#[test]
fn recipient_that_is_not_a_curve_point_is_refused_with_invalid_recipient() {
    let fx = Fixture::new(6);
    let mut elder = fx.ledger(HOME, 0);
    let bytes = (1..=u8::MAX)
        .map(|byte| [byte; 32])
        .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
        .expect("some repeated byte is not a point encoding");
    let to = AccountId(bytes);
    let signed = fx.signed(&fx.faucet, to, 5, 1);
    assert_refused(&mut elder, validate(signed), Rejection::InvalidRecipient { to });
}

#[test]
fn transfer_to_oneself_is_refused_with_self_transfer() {
    let fx = Fixture::new(7);
    let mut elder = fx.ledger(HOME, 0);
    let signed = fx.signed(&fx.faucet, fx.faucet_id(), 5, 1);
    let expected = Rejection::SelfTransfer { account: fx.faucet_id() };
    assert_refused(&mut elder, validate(signed), expected);
}

#[test]
fn transfer_of_nothing_is_refused_with_zero_amount() {
    let fx = Fixture::new(8);
    let mut elder = fx.ledger(HOME, 0);
    let signed = fx.signed(&fx.faucet, fx.account_in(HOME), 0, 1);
    assert_refused(&mut elder, validate(signed), Rejection::ZeroAmount);
}

#[test]
fn seq_of_an_applied_debit_is_refused_with_stale_seq() {
    let fx = Fixture::new(9);
    let mut elders = vec![fx.ledger(HOME, 0)];
    let to = fx.account_in(HOME);
    fx.pay(&mut elders, &fx.faucet, to, 5, 1);
    let again = fx.signed(&fx.faucet, to, 6, 1);
    let expected = Rejection::StaleSeq { seq: Seq(1), next_seq: Seq(2) };
    assert_refused(&mut elders[0], validate(again), expected);
}

#[test]
fn seq_past_the_next_one_is_refused_with_seq_ahead() {
    let fx = Fixture::new(10);
    let mut elder = fx.ledger(HOME, 0);
    let signed = fx.signed(&fx.faucet, fx.account_in(HOME), 5, 2);
    let expected = Rejection::SeqAhead { seq: Seq(2), next_seq: Seq(1) };
    assert_refused(&mut elder, validate(signed), expected);
}

#[test]
fn second_transfer_for_same_seq_is_refused_with_conflict() {
    let fx = Fixture::new(11);
    let mut elder = fx.ledger(HOME, 0);
    let to = fx.account_in(HOME);
    let first = fx.signed(&fx.faucet, to, 5, 1);
    let (reply, _) = elder.handle_client(validate(first.clone()), 0);
    assert!(matches!(reply, ClientReply::Share { .. }), "{reply:?}");
    let second = fx.signed(&fx.faucet, to, 6, 1);
    let expected =
        Rejection::Conflict { slot: second.transfer.slot(), rival: Box::new(first.clone()) };
    assert_refused(&mut elder, validate(second), expected);
    let slot =
        elder.account(&fx.faucet_id()).and_then(|account| account.signed.as_deref().cloned());
    assert_eq!(slot, Some(first), "the slot still holds the first transfer");
}

#[test]
fn amount_over_the_balance_is_refused_with_insufficient_funds() {
    let fx = Fixture::new(12);
    let mut elder = fx.ledger(HOME, 0);
    let to = fx.account_in(HOME);
    let signed = fx.signed(&fx.faucet, to, SUPPLY + 1, 1);
    let expected =
        Rejection::InsufficientFunds { balance: Amount(SUPPLY), amount: Amount(SUPPLY + 1) };
    assert_refused(&mut elder, validate(signed), expected);
}

#[test]
fn account_never_credited_is_refused_with_insufficient_funds() {
    let fx = Fixture::new(13);
    let mut elder = fx.ledger(HOME, 0);
    let pauper = fx.key_in(HOME);
    let signed = fx.signed(&pauper, fx.faucet_id(), 1, 1);
    let expected = Rejection::InsufficientFunds { balance: Amount::ZERO, amount: Amount(1) };
    assert_refused(&mut elder, validate(signed), expected);
}

#[test]
fn more_deps_than_the_limit_are_refused_before_any_is_applied() {
    let fx = Fixture::new(14);
    let mut elder = fx.ledger(HOME, 3);
    let alice = fx.key_in(HOME);
    // A valid proof the elder lacks: applying it would change its state.
    let credit = fx.certify(fx.signed(&fx.faucet, account_id(&alice), 50, 1));
    let deps = vec![credit.clone(); DEPS_MAX + 1];
    let expected = Rejection::TooManyDeps { count: DEPS_MAX as u64 + 1, max: DEPS_MAX as u64 };
    let spend = fx.signed(&alice, fx.faucet_id(), 5, 1);
    let request = ClientRequest::Validate { transfer: spend.clone(), deps: deps.clone() };
    assert_refused(&mut elder, request, expected.clone());
    let proof = fx.certify(spend);
    assert_refused(&mut elder, ClientRequest::Register { proof, deps }, expected);
}

#[test]
fn counts_and_sizes_are_checked_where_bytes_become_values_before_any_crypto() {
    let fx = Fixture::new(15);
    let alice = fx.account_in(HOME);
    let proof = fx.certify(fx.signed(&fx.faucet, alice, 5, 1));
    // The bounds need no key and no state: checked on the decoded value alone.
    let mut long = proof.clone();
    long.signed.transfer.memo = Memo(vec![0; MEMO_BYTES_MAX + 1]);
    let bytes = MEMO_BYTES_MAX as u64 + 1;
    let max = MEMO_BYTES_MAX as u64;
    let register = ClientRequest::Register { proof: proof.clone(), deps: vec![long.clone()] };
    assert_eq!(register.check_bounds(), Err(Rejection::MemoTooLong { bytes, max }));
    let page = |count: usize| PeerMessage::SyncReply {
        entries: vec![SyncEntry::Proof(proof.clone()); count],
        next_position: count as u64,
    };
    assert_eq!(page(SYNC_PAGE_PROOFS_MAX).check_bounds(), Ok(()));
    let (count, max) = (SYNC_PAGE_PROOFS_MAX as u64 + 1, SYNC_PAGE_PROOFS_MAX as u64);
    let too_many = page(SYNC_PAGE_PROOFS_MAX + 1);
    assert_eq!(too_many.check_bounds(), Err(Rejection::TooManyProofs { count, max }));
    let mut elder = fx.ledger(HOME, 1);
    assert!(elder.handle_peer(fx.elder_id(HOME, 0), too_many, 0).records.is_empty());
    assert!(elder
        .handle_peer(fx.elder_id(AWAY, 0), PeerMessage::Proof { proof: long }, 0)
        .messages
        .is_empty());
}

// Refusals of register and of queries.

#[test]
fn register_of_another_sections_debit_is_refused_with_wrong_section() {
    let fx = Fixture::new(15);
    let mut elder = fx.ledger(HOME, 0);
    let stranger = fx.key_in(AWAY);
    // Even a debit paying this section is a credit here, and credits come from elders only.
    let proof = fx.certify(fx.signed(&stranger, fx.faucet_id(), 5, 1));
    let account = proof.transfer().from;
    let expected = Rejection::WrongSection { account, prefix: fx.prefix(HOME) };
    assert_refused(&mut elder, register_request(proof), expected);
}

#[test]
fn balance_and_history_of_another_sections_account_are_refused_with_wrong_section() {
    let fx = Fixture::new(16);
    let mut elder = fx.ledger(HOME, 0);
    let account = fx.account_in(AWAY);
    let expected = Rejection::WrongSection { account, prefix: fx.prefix(HOME) };
    assert_refused(&mut elder, ClientRequest::Balance { account }, expected.clone());
    let history = ClientRequest::History { account, debits_from: Seq::FIRST, credits_after: None };
    assert_refused(&mut elder, history, expected);
}

#[test]
fn proof_naming_another_sections_key_is_refused_with_unknown_section_key() {
    let fx = Fixture::new(17);
    let mut elder = fx.ledger(HOME, 0);
    let signed = fx.signed(&fx.faucet, fx.account_in(HOME), 5, 1);
    let proof = fx.proof_by(signed, AWAY, AWAY);
    let key = fx.network.sections[AWAY].key_id;
    assert_refused(&mut elder, register_request(proof), Rejection::UnknownSectionKey { key });
}

#[test]
fn proof_signed_by_another_key_is_refused_with_bad_section_signature() {
    let fx = Fixture::new(18);
    let mut elder = fx.ledger(HOME, 0);
    let signed = fx.signed(&fx.faucet, fx.account_in(HOME), 5, 1);
    let transfer = crypto::transfer_id(&signed);
    let proof = fx.proof_by(signed, AWAY, HOME);
    assert_refused(
        &mut elder,
        register_request(proof),
        Rejection::BadSectionSignature { transfer },
    );
}

#[test]
fn proof_whose_signature_certifies_another_transfer_is_refused_with_bad_section_signature() {
    let fx = Fixture::new(19);
    let mut elder = fx.ledger(HOME, 0);
    let to = fx.account_in(HOME);
    let mut proof = fx.certify(fx.signed(&fx.faucet, to, 5, 1));
    proof.signed = fx.signed(&fx.faucet, to, 500, 1);
    let transfer = crypto::transfer_id(&proof.signed);
    assert_refused(
        &mut elder,
        register_request(proof),
        Rejection::BadSectionSignature { transfer },
    );
}

#[test]
fn proof_whose_signature_is_not_a_curve_point_is_refused_with_bad_section_signature() {
    let fx = Fixture::new(23);
    let mut elder = fx.ledger(HOME, 0);
    let mut proof = fx.certify(fx.signed(&fx.faucet, fx.account_in(HOME), 5, 1));
    proof.signature = BlsSignature([0xff; BlsSignature::LEN]);
    let transfer = crypto::transfer_id(&proof.signed);
    let expected = Rejection::BadSectionSignature { transfer };
    assert_refused(&mut elder, register_request(proof), expected);
}

#[test]
fn certified_debit_past_the_next_seq_is_refused_with_seq_ahead() {
    let fx = Fixture::new(20);
    let mut elder = fx.ledger(HOME, 0);
    let proof = fx.certify(fx.signed(&fx.faucet, fx.account_in(HOME), 5, 2));
    let expected = Rejection::SeqAhead { seq: Seq(2), next_seq: Seq(1) };
    assert_refused(&mut elder, register_request(proof), expected);
}

#[test]
fn certified_debit_over_a_lagging_elders_balance_is_refused_with_missing_credits() {
    let fx = Fixture::new(21);
    let mut elders = fx.elders(HOME);
    let alice = fx.key_in(HOME);
    // Elders 0, 1 and 2 apply the credit to alice; elder 3 misses it.
    fx.pay(&mut elders[..3], &fx.faucet, account_id(&alice), 50, 1);
    let spend = fx.signed(&alice, fx.faucet_id(), 20, 1);
    let proof = fx.certify_at(&mut elders[..3], &spend);
    let expected = Rejection::MissingCredits { balance: Amount::ZERO, amount: Amount(20) };
    assert_refused(&mut elders[3], register_request(proof), expected);
}

#[test]
#[should_panic(expected = "the section key is compromised")]
fn two_certified_debits_for_one_slot_crash_the_elder() {
    let fx = Fixture::new(22);
    let mut elders = vec![fx.ledger(HOME, 0)];
    let to = fx.account_in(HOME);
    fx.pay(&mut elders, &fx.faucet, to, 5, 1);
    let rival = fx.certify(fx.signed(&fx.faucet, to, 6, 1));
    elders[0].handle_client(register_request(rival), 0);
}

// Validation and registration.

#[test]
fn same_transfer_asked_twice_returns_the_identical_share_and_one_signed_record() {
    let fx = Fixture::new(30);
    let mut elder = fx.ledger(HOME, 1);
    let signed = fx.signed(&fx.faucet, fx.account_in(AWAY), 5, 1);
    let (first, output) = elder.handle_client(validate(signed.clone()), 0);
    assert_eq!(output.records, vec![Record::Signed(signed.clone())]);
    assert!(output.messages.is_empty());
    let transfer = crypto::transfer_id(&signed);
    let ClientReply::Share { transfer: shared, share } = &first else { panic!("{first:?}") };
    assert_eq!(*shared, transfer);
    let message = crypto::debit_message(&fx.genesis(), &transfer);
    assert!(fx.network.sections[HOME].share_is_valid(ElderIndex(1), &message, share));
    let (second, output) = elder.handle_client(validate(signed), 0);
    assert_eq!(second, first);
    assert!(output.records.is_empty(), "asked again, the elder persisted {:?}", output.records);
}

#[test]
fn validate_applies_attached_deps_the_elder_lacks_and_skips_forged_ones() {
    let fx = Fixture::new(31);
    let mut elder = fx.ledger(HOME, 3);
    let alice = fx.key_in(HOME);
    let credit = fx.certify(fx.signed(&fx.faucet, account_id(&alice), 50, 1));
    let forged = fx.proof_by(fx.signed(&fx.faucet, account_id(&alice), 70, 1), AWAY, HOME);
    let spend = fx.signed(&alice, fx.faucet_id(), 20, 1);
    let deps = vec![forged, credit.clone()];
    let (reply, output) =
        elder.handle_client(ClientRequest::Validate { transfer: spend.clone(), deps }, 0);
    assert!(matches!(reply, ClientReply::Share { .. }), "{reply:?}");
    assert_eq!(output.records, vec![Record::Applied(credit), Record::Signed(spend)]);
    assert_eq!(elder.report(account_id(&alice)).balance, Amount(50));
}

#[test]
fn register_applies_debit_and_same_section_credit_at_once_and_again_changes_nothing() {
    let fx = Fixture::new(32);
    let mut elder = fx.ledger(HOME, 0);
    let alice = fx.account_in(HOME);
    let proof = fx.certify(fx.signed(&fx.faucet, alice, 40, 1));
    let output = register(&mut elder, &proof, 0);
    assert_eq!(output.records, vec![Record::Applied(proof.clone())]);
    assert!(output.messages.is_empty(), "a same-section credit needs no message");
    let faucet = elder.report(fx.faucet_id());
    assert_eq!((faucet.balance, faucet.next_seq), (Amount(SUPPLY - 40), Seq(2)));
    assert_eq!(elder.report(alice).balance, Amount(40));
    assert_eq!(elder.log().cloned().collect::<Vec<_>>(), vec![proof.clone()]);
    assert_eq!(elder.outbox().count(), 0);

    let before = Snapshot::of(&elder, &[alice]);
    let output = register(&mut elder, &proof, 0);
    assert!(output.records.is_empty() && output.messages.is_empty(), "{output:?}");
    assert_eq!(Snapshot::of(&elder, &[alice]), before);
}

#[test]
fn cross_section_register_queues_a_credit_to_every_recipient_elder() {
    let fx = Fixture::new(33);
    let mut elder = fx.ledger(HOME, 0);
    let bob = fx.account_in(AWAY);
    let proof = fx.certify(fx.signed(&fx.faucet, bob, 40, 1));
    let id = crypto::transfer_id(&proof.signed);
    let output = register(&mut elder, &proof, 0);
    assert_eq!(output.records, vec![Record::Applied(proof.clone())]);
    let expected: Vec<(ElderId, PeerMessage)> = (0..ELDERS)
        .map(|i| (fx.elder_id(AWAY, i), PeerMessage::Proof { proof: proof.clone() }))
        .collect();
    assert_eq!(output.messages, expected);
    assert_eq!(credits_sent(&output), credit_targets(&fx, AWAY, id, &[]));
    assert_eq!(elder.outbox().cloned().collect::<Vec<_>>(), vec![proof]);
    assert_eq!(elder.report(fx.faucet_id()).balance, Amount(SUPPLY - 40));
    assert!(elder.account(&bob).is_none(), "the recipient is not this section's to credit");
}

// Outgoing credits (R5) and incoming credits (R4).

#[test]
fn outbox_entry_leaves_after_f_plus_one_distinct_recipient_acks() {
    let fx = Fixture::new(40);
    let mut elder = fx.ledger(HOME, 0);
    let proof = fx.certify(fx.signed(&fx.faucet, fx.account_in(AWAY), 40, 1));
    let transfer = crypto::transfer_id(&proof.signed);
    register(&mut elder, &proof, 0);
    let ack = PeerMessage::ProofAck { transfer };

    let output = elder.handle_peer(fx.elder_id(AWAY, 1), ack.clone(), 0);
    assert_eq!(output.records, vec![Record::Acked { transfer, elder: ElderIndex(1) }]);
    assert_eq!(elder.outbox().count(), 1, "f acks are not enough");
    for stranger in [fx.elder_id(AWAY, 1), fx.elder_id(HOME, 2), fx.elder_id(AWAY, ELDERS)] {
        let output = elder.handle_peer(stranger, ack.clone(), 0);
        assert!(output.records.is_empty(), "ack from {stranger:?} counted");
        assert_eq!(elder.outbox().count(), 1, "ack from {stranger:?} counted");
    }
    let output = elder.handle_peer(fx.elder_id(AWAY, 3), ack.clone(), 0);
    assert_eq!(output.records, vec![Record::Acked { transfer, elder: ElderIndex(3) }]);
    assert_eq!(elder.outbox().count(), 0);
    assert!(elder.handle_peer(fx.elder_id(AWAY, 0), ack, 0).records.is_empty());
}

#[test]
fn incoming_credit_is_applied_once_acked_each_time_and_routed_back_only_while_few_senders_hold_it()
{
    let fx = Fixture::new(41);
    let mut elder = fx.ledger(AWAY, 2);
    let bob = fx.account_in(AWAY);
    let proof = fx.certify(fx.signed(&fx.faucet, bob, 40, 1));
    let transfer = crypto::transfer_id(&proof.signed);
    let (first, second) = (fx.elder_id(HOME, 0), fx.elder_id(HOME, 1));
    let credit = PeerMessage::Proof { proof: proof.clone() };
    let ack_to = |sender| vec![(sender, PeerMessage::ProofAck { transfer })];

    // The sender holds the proof applied: the first of f + 1 acknowledgements of routing it
    // back.
    let output = elder.handle_peer(first, credit.clone(), 0);
    let acked = |index| Record::Acked { transfer, elder: ElderIndex(index) };
    assert_eq!(output.records, vec![Record::Applied(proof), acked(0)]);
    assert_eq!(output.messages, ack_to(first));
    assert_eq!(elder.report(bob).balance, Amount(40));
    // With one sender only, it goes back to the rest of the sender section after a retry
    // delay, so its debit is applied there even if the client never registered it at home.
    let early = elder.handle_timeout(OUTBOX_RETRY_DELAY_MS_MAX - 1);
    assert!(credits_sent(&early).is_empty(), "{early:?}");
    let due = elder.handle_timeout(OUTBOX_RETRY_DELAY_MS_MAX);
    assert_eq!(credits_sent(&due), credit_targets(&fx, HOME, transfer, &[0]));

    let later = OUTBOX_RETRY_DELAY_MS_MAX;
    let output = elder.handle_peer(second, credit.clone(), later);
    assert_eq!(output.records, vec![acked(1)], "credited twice");
    assert_eq!(output.messages, ack_to(second), "a repeated credit is still acknowledged");
    assert_eq!(elder.outbox().count(), 0, "f + 1 senders hold it: it is not routed back");
    assert_eq!(elder.report(bob).balance, Amount(40));
    let before = Snapshot::of(&elder, &[bob]);
    let output = elder.handle_peer(first, credit, later);
    assert!(output.records.is_empty(), "{:?}", output.records);
    assert_eq!(output.messages, ack_to(first));
    assert_eq!(Snapshot::of(&elder, &[bob]), before);
}

#[test]
fn credit_proved_by_the_wrong_section_key_is_refused_without_ack() {
    let fx = Fixture::new(42);
    let mut elder = fx.ledger(AWAY, 0);
    let bob = fx.account_in(AWAY);
    let signed = fx.signed(&fx.faucet, bob, 40, 1);
    // Signed by the recipient's own section: unknown key, then a key named but not used.
    for forged in [fx.proof_by(signed.clone(), AWAY, AWAY), fx.proof_by(signed.clone(), AWAY, HOME)]
    {
        let before = Snapshot::of(&elder, &[bob]);
        let output =
            elder.handle_peer(fx.elder_id(HOME, 0), PeerMessage::Proof { proof: forged }, 0);
        assert!(output.records.is_empty() && output.messages.is_empty(), "{output:?}");
        assert_eq!(Snapshot::of(&elder, &[bob]), before);
    }
}

#[test]
fn credit_from_own_section_or_for_another_section_is_ignored() {
    let fx = Fixture::new(43);
    let mut elder = fx.ledger(AWAY, 0);
    let bob = fx.account_in(AWAY);
    let to_bob = fx.certify(fx.signed(&fx.faucet, bob, 40, 1));
    let to_home = fx.certify(fx.signed(&fx.faucet, fx.account_in(HOME), 40, 2));
    let inputs = [(fx.elder_id(AWAY, 1), to_bob), (fx.elder_id(HOME, 0), to_home)];
    for (from, proof) in inputs {
        let before = Snapshot::of(&elder, &[bob]);
        let output = elder.handle_peer(from, PeerMessage::Proof { proof }, 0);
        assert!(output.records.is_empty() && output.messages.is_empty(), "{output:?}");
        assert_eq!(Snapshot::of(&elder, &[bob]), before);
    }
}

#[test]
fn outbox_credits_are_sent_again_only_when_due_with_capped_backoff() {
    let fx = Fixture::new(44);
    let mut elder = fx.ledger(HOME, 0);
    let proof = fx.certify(fx.signed(&fx.faucet, fx.account_in(AWAY), 40, 1));
    let id = crypto::transfer_id(&proof.signed);
    let start = 1_000;
    assert_eq!(
        credits_sent(&register(&mut elder, &proof, start)),
        credit_targets(&fx, AWAY, id, &[])
    );
    elder.handle_peer(fx.elder_id(AWAY, 2), PeerMessage::ProofAck { transfer: id }, start);

    let mut due = start + 100;
    for delay in
        [200, 400, 800, 1_600, 3_200, 6_400, OUTBOX_RETRY_DELAY_MS_MAX, OUTBOX_RETRY_DELAY_MS_MAX]
    {
        assert_eq!(elder.outbox_due.first().map(|(at, _)| *at), Some(due), "indexed by due");
        let early = elder.handle_timeout(due - 1);
        assert!(credits_sent(&early).is_empty(), "credit sent before {due}");
        let on_time = elder.handle_timeout(due);
        assert_eq!(credits_sent(&on_time), credit_targets(&fx, AWAY, id, &[2]), "at {due}");
        due += delay;
    }
}

#[test]
fn kept_digests_and_totals_match_in_any_order_of_credits_and_track_every_change() {
    let fx = Fixture::new(44);
    let (dave, erin) = (fx.key_in(AWAY), fx.key_in(AWAY));
    let alice = fx.account_in(HOME);
    let credits: Vec<DebitProof> = [(&dave, 7), (&erin, 9)]
        .into_iter()
        .map(|(key, amount)| fx.certify(fx.signed(key, alice, amount, 1)))
        .collect();
    let (mut one, mut other) = (fx.ledger(HOME, 0), fx.ledger(HOME, 1));
    let genesis = one.state_digest();
    let deliver = |elder: &mut Ledger, proof: &DebitProof| {
        let message = PeerMessage::Proof { proof: proof.clone() };
        elder.handle_peer(fx.elder_id(AWAY, 0), message, 0);
    };
    deliver(&mut one, &credits[0]);
    let after_first = (one.state_digest(), one.report(alice).digest);
    assert_ne!(after_first.0, genesis, "a credit changes the section digest");
    deliver(&mut one, &credits[1]);
    deliver(&mut other, &credits[1]);
    deliver(&mut other, &credits[0]);
    assert_eq!(one.report(alice), other.report(alice), "same credits, any order");
    assert_eq!(one.state_digest(), other.state_digest());
    assert_ne!((one.state_digest(), one.report(alice).digest), after_first);
    assert_eq!(one.balance_total(), u128::from(SUPPLY) + 16);
    // A debit moves both accounts' digests and leaves the total where it was.
    let before = one.state_digest();
    register(&mut one, &fx.certify(fx.signed(&fx.faucet, alice, 1, 1)), 0);
    assert_ne!(one.state_digest(), before);
    assert_eq!(one.balance_total(), u128::from(SUPPLY) + 16);
}

#[test]
fn history_pages_debits_from_a_seq_and_credits_after_an_id() {
    let fx = Fixture::new(45);
    let mut elders = vec![fx.ledger(HOME, 0)];
    let alice = fx.account_in(HOME);
    let proofs: Vec<_> =
        (1..=3).map(|seq| fx.pay(&mut elders, &fx.faucet, alice, seq, seq)).collect();
    let history = |account, debits_from, credits_after| ClientRequest::History {
        account,
        debits_from: Seq(debits_from),
        credits_after,
    };
    let (reply, _) = elders[0].handle_client(history(fx.faucet_id(), 2, None), 0);
    let ClientReply::History(page) = reply else { panic!("{reply:?}") };
    assert_eq!((page.debits, page.credits), (proofs[1..].to_vec(), Vec::new()));

    let mut by_id = proofs.clone();
    by_id.sort_by_key(|proof| crypto::transfer_id(&proof.signed));
    let first = crypto::transfer_id(&by_id[0].signed);
    let (reply, _) = elders[0].handle_client(history(alice, 1, Some(first)), 0);
    let ClientReply::History(page) = reply else { panic!("{reply:?}") };
    assert_eq!((page.debits, page.credits), (Vec::new(), by_id[1..].to_vec()));

    let (reply, _) = elders[0].handle_client(ClientRequest::Balance { account: alice }, 0);
    assert_eq!(reply, ClientReply::Balance(elders[0].report(alice)));
    assert_eq!(elders[0].report(alice).balance, Amount(6));
}

#[test]
fn applied_and_status_queries_answer_from_the_state_here() {
    let fx = Fixture::new(46);
    let mut elders = fx.elders(HOME);
    let alice = fx.account_in(HOME);
    let proof = fx.pay(&mut elders, &fx.faucet, alice, 5, 1);
    let transfer = crypto::transfer_id(&proof.signed);
    let unknown = TransferId(Digest([9; 32]));
    for (asked, applied) in [(transfer, true), (unknown, false)] {
        let (reply, output) =
            elders[0].handle_client(ClientRequest::Applied { transfer: asked }, 0);
        assert_eq!(reply, ClientReply::Applied { transfer: asked, applied });
        assert!(output.records.is_empty() && output.messages.is_empty());
    }
    let (reply, _) = elders[0].handle_client(ClientRequest::Status, 0);
    let ClientReply::Status(status) = reply else { panic!("{reply:?}") };
    assert_eq!((status.state_digest, status.applied), (elders[0].state_digest(), 1));
    assert_eq!(status.balance_total, u128::from(SUPPLY));
}

#[test]
fn a_forgery_in_a_batch_is_found_by_bisection_and_the_rest_still_pass_together() {
    let fx = Fixture::new(47);
    let mut elder = fx.ledger(HOME, 0);
    let alice = fx.account_in(HOME);
    let good: Vec<_> =
        (1..=6).map(|seq| fx.certify(fx.signed(&fx.faucet, alice, 1, seq))).collect();
    let mut forged = fx.certify(fx.signed(&fx.faucet, alice, 2, 7));
    forged.signature = good[0].signature;
    let mut garbage = fx.certify(fx.signed(&fx.faucet, alice, 2, 8));
    garbage.signature = BlsSignature([0xff; BlsSignature::LEN]);
    let mut counter = 0u8;
    let mut seed = move || {
        counter = counter.wrapping_add(1);
        [counter; 32]
    };
    let all: Vec<&DebitProof> = good.iter().chain([&forged, &garbage]).collect();

    let precomputed = elder.precompute(&work(&all, &[]), &mut seed);
    let id = |proof: &DebitProof| (crypto::transfer_id(&proof.signed), proof.signature);
    let checked: HashSet<_> = good.iter().map(id).collect();
    assert_eq!(precomputed.checked, checked, "every genuine proof of the batch passes");
    assert_eq!(precomputed.forged, [id(&forged), id(&garbage)].into_iter().collect());
    // The same verdicts when the forgeries come from one peer and the genuine proofs from the
    // clients and another peer (a failed batch is then bisected per source).
    let peer = |index| {
        ProofSource::Elder(ElderId {
            prefix: fx.network.sections[HOME].prefix,
            index: ElderIndex(index),
        })
    };
    let honest = good
        .iter()
        .enumerate()
        .map(|(k, proof)| (if k % 2 == 0 { ProofSource::Client } else { peer(1) }, proof));
    let proofs = honest.chain([(peer(2), &forged), (peer(2), &garbage)]).collect();
    let sourced = elder.precompute(&CryptoWork { proofs, transfers: Vec::new() }, &mut seed);
    assert_eq!((&sourced.checked, &sourced.forged), (&precomputed.checked, &precomputed.forged));
    elder.accept_precomputed(precomputed);
    for proof in &good {
        register(&mut elder, proof, 0);
    }
    let again = elder.precompute(&work(&all[..6], &[]), &mut seed);
    assert!(again.checked.is_empty(), "applied proofs are not checked again");
    for bad in [forged, garbage] {
        let rejection =
            Rejection::BadSectionSignature { transfer: crypto::transfer_id(&bad.signed) };
        assert_refused(&mut elder, register_request(bad), rejection);
    }
    // Counted against their source: here, clients.
    let counted: Vec<(ProofSource, u64)> = elder.invalid_proofs().collect();
    assert_eq!(counted, vec![(ProofSource::Client, 2)]);
    let mut forged_credit = fx.certify(fx.signed(&fx.key_in(AWAY), alice, 3, 1));
    forged_credit.signature = good[1].signature;
    elder.handle_peer(fx.elder_id(AWAY, 2), PeerMessage::Proof { proof: forged_credit }, 0);
    let from_elder = (ProofSource::Elder(fx.elder_id(AWAY, 2)), 1);
    assert_eq!(elder.invalid_proofs().last(), Some(from_elder));
}

#[test]
fn shares_signed_ahead_are_the_shares_validate_gives_and_only_for_open_valid_slots() {
    let fx = Fixture::new(48);
    let mut ahead = fx.ledger(HOME, 1);
    let mut plain = fx.ledger(HOME, 1);
    let alice = fx.account_in(HOME);
    let open = fx.signed(&fx.faucet, alice, 5, 1);
    let ahead_of_seq = fx.signed(&fx.faucet, alice, 5, 2);
    let mut forged = fx.signed(&fx.faucet, alice, 6, 1);
    forged.authority = open.authority.clone();

    let precomputed = ahead.precompute(&work(&[], &[&open, &ahead_of_seq, &forged]), || [1; 32]);
    assert_eq!(precomputed.shares.len(), 1, "only the valid transfer at the open slot");
    ahead.accept_precomputed(precomputed);
    let (with, _) = ahead.handle_client(validate(open.clone()), 0);
    let (without, _) = plain.handle_client(validate(open), 0);
    assert_eq!(with, without);
    let account = forged.transfer.from;
    assert_refused(&mut ahead, validate(forged), Rejection::BadAccountSignature { account });
}

#[test]
fn no_share_is_signed_ahead_for_a_transfer_validate_will_refuse() {
    let fx = Fixture::new(55);
    let mut elder = fx.ledger(HOME, 2);
    let (alice, bob) = (fx.key_in(HOME), fx.account_in(AWAY));
    let overspend = fx.signed(&alice, bob, 5, 1);
    let mut long = transfer(&fx.faucet, bob, 5, 1);
    long.memo = Memo(vec![1; MEMO_BYTES_MAX + 1]);
    let long = fx.sign(&fx.faucet, long);
    let held = fx.signed(&fx.faucet, bob, 5, 1);
    elder.handle_client(validate(held.clone()), 0);
    let rival = fx.signed(&fx.faucet, bob, 6, 1);
    let precomputed = elder.precompute(&work(&[], &[&overspend, &long, &rival, &held]), || [1; 32]);
    let shared: Vec<TransferId> = precomputed.shares.keys().copied().collect();
    assert_eq!(shared, vec![crypto::transfer_id(&held)], "only the transfer holding the slot");
    let mut full = fx.ledger(HOME, 2);
    full.set_outbox_limit(0);
    assert!(full.precompute(&work(&[], &[&held]), || [1; 32]).shares.is_empty(), "no outbox room");
}

#[test]
fn a_shared_transfers_debit_message_is_kept_for_its_proof_check_and_dropped_once_applied() {
    let fx = Fixture::new(49);
    let mut elder = fx.ledger(HOME, 1);
    let alice = fx.account_in(HOME);
    let signed = fx.signed(&fx.faucet, alice, 5, 1);
    let id = crypto::transfer_id(&signed);
    let precomputed = elder.precompute(&work(&[], &[&signed]), || [1; 32]);
    elder.accept_precomputed(precomputed);
    elder.handle_client(validate(signed.clone()), 0);
    let kept = elder.debit_messages.peek(&id).copied();
    assert_eq!(kept, Some(crypto::debit_message(&fx.genesis(), &id)));

    // The kept message checks the proof: a forged signature is still refused.
    let mut forged = fx.certify(signed.clone());
    forged.signature = fx.certify(fx.signed(&fx.faucet, alice, 6, 1)).signature;
    let rejection = Rejection::BadSectionSignature { transfer: id };
    assert_refused(&mut elder, register_request(forged), rejection);
    register(&mut elder, &fx.certify(signed), 0);
    assert_eq!(elder.report(alice).balance, Amount(5));
    assert!(elder.debit_messages.is_empty(), "an applied proof's message is not kept");
}

// Restart and catch-up (R1, R5, R6).

#[test]
fn rebuild_from_records_restores_state_outbox_acks_and_the_signed_slot() {
    let fx = Fixture::new(50);
    let mut elder = fx.ledger(HOME, 0);
    let alice = fx.key_in(HOME);
    let (bob, carol, dave) = (fx.account_in(AWAY), fx.account_in(AWAY), fx.key_in(AWAY));
    let mut records = Vec::new();
    let mut keep = |output: Output| records.extend(output.records);
    for (seq, to) in [(1, account_id(&alice)), (2, bob), (3, carol)] {
        let proof = fx.certify(fx.signed(&fx.faucet, to, 100, seq));
        keep(register(&mut elder, &proof, 0));
    }
    let to_bob =
        crypto::transfer_id(&elder.outbox().find(|p| p.transfer().to == bob).unwrap().signed);
    keep(elder.handle_peer(fx.elder_id(AWAY, 0), PeerMessage::ProofAck { transfer: to_bob }, 0));
    let incoming = fx.certify(fx.signed(&dave, account_id(&alice), 20, 1));
    let from_dave = crypto::transfer_id(&incoming.signed);
    keep(elder.handle_peer(fx.elder_id(AWAY, 0), PeerMessage::Proof { proof: incoming }, 0));
    let signed = fx.signed(&alice, bob, 10, 1);
    let (share, output) = elder.handle_client(validate(signed.clone()), 0);
    keep(output);

    let me = elder.me();
    let mut rebuilt =
        Ledger::rebuild(fx.network.clone(), me, fx.key_share(HOME, 0), records).unwrap();
    let watched = [account_id(&alice), bob, carol];
    assert_eq!(Snapshot::of(&rebuilt, &watched), Snapshot::of(&elder, &watched));
    assert_eq!(rebuilt.state_digest(), elder.state_digest());

    let rival = fx.signed(&alice, bob, 11, 1);
    let expected =
        Rejection::Conflict { slot: rival.transfer.slot(), rival: Box::new(signed.clone()) };
    assert_refused(&mut rebuilt, validate(rival), expected);
    assert_eq!(rebuilt.handle_client(validate(signed), 0).0, share);

    // Entries come back due at once, and the elder that acked before is not asked again.
    let to_carol =
        crypto::transfer_id(&rebuilt.outbox().find(|p| p.transfer().to == carol).unwrap().signed);
    let mut expected = credit_targets(&fx, AWAY, to_bob, &[0]);
    expected.extend(credit_targets(&fx, AWAY, to_carol, &[]));
    expected.extend(credit_targets(&fx, AWAY, from_dave, &[0]));
    let mut sent = credits_sent(&rebuilt.handle_timeout(0));
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected);
    let ack = PeerMessage::ProofAck { transfer: to_bob };
    assert!(rebuilt.handle_peer(fx.elder_id(AWAY, 0), ack.clone(), 0).records.is_empty());
    rebuilt.handle_peer(fx.elder_id(AWAY, 1), ack, 0);
    let left: Vec<_> = rebuilt.outbox().map(|p| crypto::transfer_id(&p.signed)).collect();
    let mut expected = vec![to_carol, from_dave];
    expected.sort();
    assert_eq!(left, expected);
}

#[test]
fn sections_cut_apart_with_full_outboxes_drain_each_other_when_they_meet_again() {
    let fx = Fixture::new(54);
    let (mut home, mut away) = (fx.ledger(HOME, 0), fx.ledger(AWAY, 0));
    home.set_outbox_limit(2);
    away.set_outbox_limit(2);
    let (bob, carol, alice) = (fx.account_in(AWAY), fx.account_in(AWAY), fx.account_in(HOME));
    // Cut apart: home fills its outbox with credits for away.
    let to_bob: Vec<DebitProof> =
        (1..=2).map(|seq| fx.certify(fx.signed(&fx.faucet, bob, 10, seq))).collect();
    for proof in &to_bob {
        register(&mut home, proof, 0);
    }
    let to_carol = fx.signed(&fx.faucet, carol, 10, 3);
    let section = fx.prefix(AWAY);
    assert_refused(&mut home, validate(to_carol), Rejection::OutboxFull { section, pending: 2 });
    // One unreachable section stops only transfers to it.
    let (reply, _) = home.handle_client(validate(fx.signed(&fx.faucet, alice, 10, 3)), 0);
    assert!(matches!(reply, ClientReply::Share { .. }), "{reply:?}");
    // Away fills its outbox with proofs for home: a credit's debit routed back, and a debit.
    let dave = fx.key_in(AWAY);
    let funding = fx.certify(fx.signed(&fx.faucet, account_id(&dave), 100, 10));
    away.handle_peer(fx.elder_id(HOME, 1), PeerMessage::Proof { proof: funding }, 0);
    let to_alice = fx.certify(fx.signed(&dave, alice, 30, 1));
    register(&mut away, &to_alice, 0);
    assert_eq!(away.outbox().count(), 2);

    // They meet again: each applies and acknowledges the other's credits, full as it is.
    let acks = |output: Output| -> Vec<PeerMessage> {
        let messages = output.messages.into_iter().map(|(_, message)| message);
        messages.filter(|message| matches!(message, PeerMessage::ProofAck { .. })).collect()
    };
    let delivered =
        home.handle_peer(fx.elder_id(AWAY, 0), PeerMessage::Proof { proof: to_alice.clone() }, 0);
    let id = crypto::transfer_id(&to_alice.signed);
    assert_eq!(acks(delivered), vec![PeerMessage::ProofAck { transfer: id }]);
    assert_eq!(home.report(alice).balance, Amount(30));
    for proof in &to_bob {
        let delivered =
            away.handle_peer(fx.elder_id(HOME, 0), PeerMessage::Proof { proof: proof.clone() }, 0);
        let id = crypto::transfer_id(&proof.signed);
        assert_eq!(acks(delivered), vec![PeerMessage::ProofAck { transfer: id }]);
    }
    assert_eq!(away.report(bob).balance, Amount(20));
    // f + 1 acknowledgements free room at home (the credit's debit routed back to away holds
    // one place), and transfers to away are signed again.
    for (proof, elder) in to_bob.iter().flat_map(|proof| [(proof, 0), (proof, 1)]) {
        let ack = PeerMessage::ProofAck { transfer: crypto::transfer_id(&proof.signed) };
        home.handle_peer(fx.elder_id(AWAY, elder), ack, 0);
    }
    let other = fx.key_in(HOME);
    let paid = fx.certify(fx.signed(&fx.faucet, account_id(&other), 50, 3));
    register(&mut home, &paid, 0);
    let (reply, _) = home.handle_client(validate(fx.signed(&other, carol, 10, 1)), 0);
    assert!(matches!(reply, ClientReply::Share { .. }), "{reply:?}");
}

#[test]
fn records_that_do_not_replay_stop_rebuild_with_an_error_naming_the_record() {
    let fx = Fixture::new(52);
    let me = fx.elder_id(HOME, 0);
    let alice = fx.account_in(HOME);
    let first = fx.certify(fx.signed(&fx.faucet, alice, 100, 1));
    let second = fx.certify(fx.signed(&fx.faucet, alice, 100, 2));
    let rebuild = |records: Vec<Record>| {
        Ledger::rebuild(fx.network.clone(), me, fx.key_share(HOME, 0), records).err()
    };
    let applied = |proof: &DebitProof| Record::Applied(proof.clone());
    assert_eq!(rebuild(vec![applied(&first), applied(&second)]), None);
    // A debit out of seq order, the same proof twice, and a debit the balance cannot cover.
    let Some(LedgerError::Replay { record: 0, problem }) = rebuild(vec![applied(&second)]) else {
        panic!("a debit at seq 2 before seq 1 does not replay");
    };
    assert!(problem.contains("seq 2"), "{problem}");
    let twice = rebuild(vec![applied(&first), applied(&first)]);
    assert!(matches!(twice, Some(LedgerError::Replay { record: 1, .. })), "{twice:?}");
    let bob = fx.key_in(HOME);
    let broke = fx.certify(fx.signed(&bob, alice, 1, 1));
    let broke = rebuild(vec![applied(&first), applied(&broke)]);
    assert!(matches!(broke, Some(LedgerError::Replay { record: 1, .. })), "{broke:?}");
}

#[test]
fn lagging_elder_catches_up_from_sync_pages_to_the_same_state() {
    let fx = Fixture::new(51);
    let mut peers = vec![fx.ledger(HOME, 0)];
    let alice = fx.account_in(HOME);
    let proofs = SYNC_PAGE_PROOFS_MAX as u64 + 6;
    for seq in 1..proofs {
        fx.pay(&mut peers, &fx.faucet, alice, 1, seq);
    }
    fx.pay(&mut peers, &fx.faucet, fx.account_in(AWAY), 1, proofs);
    let mut peer = peers.remove(0);
    let mut lagging = fx.ledger(HOME, 3);
    assert_ne!(lagging.state_digest(), peer.state_digest());

    // One sync request when the timer runs; a full page is followed by the next request at once.
    let timeout = lagging.handle_timeout(0);
    let mut request =
        timeout.sync_messages.into_iter().find(|(to, _)| *to == peer.me()).map(|m| m.1);
    let (mut page_sizes, mut records) = (Vec::new(), Vec::new());
    while let Some(asked) = request.take() {
        let reply = peer.handle_peer(lagging.me(), asked, 0);
        let [(to, page)] = <[_; 1]>::try_from(reply.sync_messages).unwrap();
        assert_eq!(to, lagging.me());
        let PeerMessage::SyncReply { entries, .. } = &page else { panic!("{page:?}") };
        page_sizes.push(entries.len());
        let output = lagging.handle_peer(peer.me(), page, 0);
        request = output.sync_messages.iter().find(|(to, _)| *to == peer.me()).map(|m| m.1.clone());
        records.extend(output.records);
    }
    assert_eq!(page_sizes, vec![SYNC_PAGE_PROOFS_MAX, 6]);
    assert_eq!(lagging.state_digest(), peer.state_digest());
    assert_eq!(lagging.log().collect::<Vec<_>>(), peer.log().collect::<Vec<_>>());
    assert_eq!(lagging.outbox().collect::<Vec<_>>(), peer.outbox().collect::<Vec<_>>());
    assert!(credits_sent(&lagging.handle_timeout(OUTBOX_RETRY_DELAY_MS_MAX - 1)).is_empty());
    let away = crypto::transfer_id(&peer.outbox().next().expect("one credit away").signed);
    let due = lagging.handle_timeout(OUTBOX_RETRY_DELAY_MS_MAX);
    assert_eq!(credits_sent(&due), credit_targets(&fx, AWAY, away, &[]), "delivered when due");

    // The position is durable: after a restart the elder asks from where it stopped.
    let synced = SYNC_PAGE_PROOFS_MAX as u64 + 6;
    assert!(records.contains(&Record::Synced { elder: peer.me().index, position: synced }));
    let me = lagging.me();
    let mut restarted =
        Ledger::rebuild(fx.network.clone(), me, fx.key_share(HOME, 3), records).expect("rebuild");
    let timeout = restarted.handle_timeout(0);
    let asked = timeout.sync_messages.into_iter().find(|(to, _)| *to == peer.me()).map(|m| m.1);
    assert_eq!(asked, Some(PeerMessage::SyncRequest { position: synced }));
}

#[test]
fn sync_request_from_another_section_gets_no_reply() {
    let fx = Fixture::new(52);
    let mut elders = vec![fx.ledger(HOME, 0)];
    fx.pay(&mut elders, &fx.faucet, fx.account_in(HOME), 1, 1);
    let output =
        elders[0].handle_peer(fx.elder_id(AWAY, 0), PeerMessage::SyncRequest { position: 0 }, 0);
    let nothing = output.messages.is_empty() && output.sync_messages.is_empty();
    assert!(nothing && output.records.is_empty(), "{output:?}");
}

#[test]
fn debit_credited_abroad_but_never_registered_at_home_is_applied_from_the_routed_proof() {
    let fx = Fixture::new(70);
    let (mut home, mut away) = (fx.ledger(HOME, 0), fx.ledger(AWAY, 1));
    let bob = fx.account_in(AWAY);
    let proof = fx.certify(fx.signed(&fx.faucet, bob, 30, 1));
    let transfer = crypto::transfer_id(&proof.signed);
    // The client skips registration at home and hands the proof abroad as a dependency.
    let request = ClientRequest::Register { proof: proof.clone(), deps: vec![proof] };
    let (_, output) = away.handle_client(request, 0);
    assert_eq!(away.report(bob).balance, Amount(30));
    let routed = output.messages.into_iter().find(|(to, _)| *to == home.me());
    let (_, message) = routed.expect("the proof is routed back to the sender section");
    let output = home.handle_peer(away.me(), message, 0);
    let faucet = home.report(fx.faucet_id());
    assert_eq!((faucet.balance, faucet.next_seq), (Amount(SUPPLY - 30), Seq(2)));
    assert!(output.messages.contains(&(away.me(), PeerMessage::ProofAck { transfer })));
}

#[test]
fn same_section_credit_that_would_overflow_a_lagging_view_is_refused_not_applied() {
    let fx = Fixture::with_supply(71, u64::MAX);
    let mut elder = fx.ledger(HOME, 0);
    let holder = fx.key_in(HOME);
    let zed = fx.key_in(AWAY);
    fx.pay(std::slice::from_mut(&mut elder), &fx.faucet, account_id(&holder), 2, 1);
    // The faucet's big payment abroad is not applied here, but money coming back is.
    let _abroad = fx.certify(fx.signed(&fx.faucet, account_id(&zed), u64::MAX - 2, 2));
    let back = fx.certify(fx.signed(&zed, fx.faucet_id(), 2, 1));
    elder.handle_peer(fx.elder_id(AWAY, 0), PeerMessage::Proof { proof: back }, 0);
    assert_eq!(elder.report(fx.faucet_id()).balance, Amount(u64::MAX));
    let overflowing = fx.certify(fx.signed(&holder, fx.faucet_id(), 2, 1));
    let expected = Rejection::BalanceOverflow { account: fx.faucet_id(), amount: Amount(2) };
    assert!(expected.is_retryable(), "the elder applies it once it has caught up");
    assert_refused(&mut elder, register_request(overflowing), expected);
}

// The batch entry point.

#[test]
fn a_batch_hands_out_its_records_first_and_its_replies_and_credits_only_once_persisted() {
    let fx = Fixture::new(80);
    let mut elder = fx.ledger(HOME, 0);
    let (bob, carol) = (fx.account_in(AWAY), fx.account_in(HOME));
    let shared = fx.signed(&fx.faucet, carol, 5, 2);
    let paid = fx.certify(fx.signed(&fx.faucet, bob, 7, 1));
    let inputs = vec![
        Input::Client { request: register_request(paid.clone()), reply_to: "register" },
        Input::Client { request: validate(shared.clone()), reply_to: "validate" },
        Input::Client { request: ClientRequest::Balance { account: carol }, reply_to: "balance" },
    ];
    let work = CryptoWork::of(&inputs);
    assert_eq!((work.proofs.len(), work.transfers.len()), (1, 1));
    let precomputed = elder.precompute(&work, || [1; 32]);
    let ready = elder.handle_batch(inputs, precomputed, 0);
    assert_eq!(ready.records, vec![Record::Applied(paid.clone()), Record::Signed(shared.clone())]);
    let released = ready.unpersisted.persisted();
    let tokens: Vec<&str> = released.replies.iter().map(|(token, _)| *token).collect();
    assert_eq!(tokens, vec!["register", "validate", "balance"], "replies in input order");
    let id = crypto::transfer_id(&paid.signed);
    assert_eq!(released.replies[0].1, ClientReply::Registered { transfer: id });
    assert!(matches!(released.replies[1].1, ClientReply::Share { .. }));
    let credits = credits_sent(&Output { messages: released.messages, ..Output::default() });
    assert_eq!(credits, credit_targets(&fx, AWAY, id, &[]), "the credit leaves with the replies");
    assert!(elder.precomputed.shares.is_empty(), "precomputed work lasts one batch");
}

#[test]
fn the_ledger_names_its_next_deadline_and_syncs_once_per_interval() {
    let fx = Fixture::new(81);
    let mut elder = fx.ledger(HOME, 0);
    let sync_requests = |ready: &super::Ready<()>| {
        let requests = ready.sync_messages.iter();
        requests.filter(|(_, m)| matches!(m, PeerMessage::SyncRequest { .. })).count()
    };
    assert_eq!(elder.poll_timeout(), 0, "a new ledger syncs at once");
    let first = elder.handle_batch(Vec::<Input<()>>::new(), Precomputed::default(), 0);
    assert_eq!(sync_requests(&first), ELDERS as usize - 1, "each section peer is asked");
    assert_eq!(elder.poll_timeout(), SYNC_INTERVAL_MS);
    let early = elder.handle_batch(Vec::<Input<()>>::new(), Precomputed::default(), 10);
    assert_eq!(sync_requests(&early), 0, "not before the interval");
    let proof = fx.certify(fx.signed(&fx.faucet, fx.account_in(AWAY), 3, 1));
    register(&mut elder, &proof, 20);
    assert_eq!(elder.poll_timeout(), 120, "the credit's second delivery comes first");
    let due = elder.handle_batch(Vec::<Input<()>>::new(), Precomputed::default(), 120);
    let id = crypto::transfer_id(&proof.signed);
    let messages = due.unpersisted.persisted().messages;
    let credits = credits_sent(&Output { messages, ..Output::default() });
    assert_eq!(credits, credit_targets(&fx, AWAY, id, &[]), "delivered when due");
    assert_eq!(elder.poll_timeout(), SYNC_INTERVAL_MS);
}

#[test]
fn an_elder_refuses_to_start_with_another_elders_key_share_or_a_strangers() {
    let fx = Fixture::new(1);
    let me = fx.elder_id(HOME, 1);
    for wrong in [fx.key_share(HOME, 0), fx.key_share(AWAY, 1), fx.stranger_key_share()] {
        let error = Ledger::new(fx.network.clone(), me, wrong).err();
        assert_eq!(error, Some(LedgerError::WrongKeyShare { prefix: me.prefix, index: me.index }));
    }
    assert!(Ledger::new(fx.network.clone(), me, fx.key_share(HOME, 1)).is_ok());
}
