//! Bundles (R12, R13) among whole sections: locks at one elder with every refusal exact, and
//! the referee's agreement, the outcome and the settlement over two sections of elders that
//! pass their peer messages to each other.

use ed25519_dalek::SigningKey;

use super::fixtures::{assert_refused_at, register, validate, Fixture, AWAY, ELDERS, HOME, SUPPLY};
use crate::crypto;
use crate::driver::account_id;
use crate::ledger::{ElderId, Ledger, Output, Record};
use crate::limits::{BUNDLE_DEADLINE_MS_MAX, CLOCK_SKEW_MS_MAX, OUTCOME_GRACE_MS};
use crate::messages::{ClientReply, ClientRequest, PeerMessage};
use crate::rejection::Rejection;
use crate::types::{
    AbortCertificate, AccountId, Amount, Authority, Bundle, DebitProof, Leg, OutcomeCertificate,
    PayerAuthority, Seq, SignedTransfer,
};

/// The deadline of the test bundles, in ms of the elders' clock.
const DEADLINE_MS: u64 = 1_000_000;

/// Two sections of elders that deliver every peer message they send, keeping every record.
struct World {
    fx: Fixture,
    elders: Vec<Vec<Ledger>>,
    records: Vec<Vec<Vec<Record>>>,
}

impl World {
    fn new(seed: u64) -> World {
        let fx = Fixture::new(seed);
        let elders = vec![fx.elders(HOME), fx.elders(AWAY)];
        let records = vec![vec![Vec::new(); ELDERS as usize]; 2];
        World { fx, elders, records }
    }

    fn elder(&mut self, id: ElderId) -> (&mut Ledger, &mut Vec<Record>) {
        let section = self.fx.network.sections.iter().position(|s| s.prefix == id.prefix);
        let section = section.expect("a section of the fixture");
        let index = id.index.0 as usize;
        (&mut self.elders[section][index], &mut self.records[section][index])
    }

    /// Keeps an output's records and delivers its messages, and all they cause, at `now_ms`.
    fn settle_output(&mut self, from: ElderId, output: Output, now_ms: u64) {
        let mut pending: Vec<(ElderId, ElderId, PeerMessage)> = Vec::new();
        self.elder(from).1.extend(output.records);
        let sent = output.messages.into_iter().chain(output.sync_messages);
        pending.extend(sent.map(|(to, message)| (from, to, message)));
        while let Some((from, to, message)) = pending.pop() {
            let (elder, records) = self.elder(to);
            let output = elder.handle_peer(from, message, now_ms);
            records.extend(output.records);
            let sent = output.messages.into_iter().chain(output.sync_messages);
            pending.extend(sent.map(|(next, message)| (to, next, message)));
        }
    }

    /// Every elder's timer work at `now_ms`, and all it causes.
    fn tick(&mut self, now_ms: u64) {
        for section in 0..2 {
            for index in 0..ELDERS as usize {
                let output = self.elders[section][index].handle_timeout(now_ms);
                let me = self.fx.elder_id(section, index as u32);
                self.settle_output(me, output, now_ms);
            }
        }
    }

    /// A client request to one elder; its output is delivered.
    fn ask(&mut self, section: usize, index: u32, request: ClientRequest, now: u64) -> ClientReply {
        let (reply, output) = self.elders[section][index as usize].handle_client(request, now);
        self.settle_output(self.fx.elder_id(section, index), output, now);
        reply
    }

    /// The lock of `leg`, certified by its payer's section and registered at its elders.
    fn lock(&mut self, bundle: &Bundle, leg: u8, payer: &SigningKey, now_ms: u64) -> DebitProof {
        let signed = lock(&self.fx, bundle, leg, payer);
        let section = self.fx.network.section_index_of(&signed.transfer.from);
        let proof = self.fx.certify_at(&mut self.elders[section], &signed);
        for index in 0..ELDERS {
            let request = ClientRequest::Register { proof: proof.clone(), deps: Vec::new() };
            let reply = self.ask(section, index, request, now_ms);
            assert!(matches!(reply, ClientReply::Registered { .. }), "{reply:?}");
        }
        proof
    }

    fn balance(&self, account: AccountId) -> Amount {
        let section = self.fx.network.section_index_of(&account);
        let balances: Vec<Amount> =
            self.elders[section].iter().map(|elder| elder.report(account).balance).collect();
        assert!(balances.windows(2).all(|pair| pair[0] == pair[1]), "{balances:?}");
        balances[0]
    }

    /// Every elder's balances and escrow add up to the supply with nothing in flight.
    fn assert_conserved(&self) {
        for index in 0..ELDERS as usize {
            let held: u128 = (0..2)
                .map(|s| {
                    self.elders[s][index].balance_total() + self.elders[s][index].escrow_total()
                })
                .sum();
            assert_eq!(held, u128::from(SUPPLY), "elder {index} of each section");
        }
    }

    fn outcome(&self, section: usize, bundle: &Bundle) -> Vec<Option<bool>> {
        let id = crypto::bundle_id(bundle);
        let outcome = |elder: &Ledger| elder.outcome(&id).map(|certificate| certificate.commit);
        self.elders[section].iter().map(outcome).collect()
    }
}

/// `payer`'s signed lock of leg `leg` of `bundle`.
fn lock(fx: &Fixture, bundle: &Bundle, leg: u8, payer: &SigningKey) -> SignedTransfer {
    let signature = crypto::sign_bundle(payer, &fx.genesis(), bundle);
    SignedTransfer {
        transfer: bundle.lock_transfer(usize::from(leg)).expect("a leg"),
        authority: Authority::Bundle {
            bundle: Box::new(bundle.clone()),
            leg,
            payer: PayerAuthority::Key(signature),
        },
    }
}

/// A ring of three funded accounts, two in `HOME` and one in `AWAY`: a pays b 30, b pays
/// c 20, c pays a 10, each at its first seq; `AWAY` referees.
struct Ring {
    keys: [SigningKey; 3],
    bundle: Bundle,
}

fn ring(world: &mut World) -> Ring {
    let keys = [world.fx.key_in(HOME), world.fx.key_in(AWAY), world.fx.key_in(HOME)];
    let ids: Vec<AccountId> = keys.iter().map(account_id).collect();
    let faucet = world.fx.faucet.clone();
    for (seq, id) in ids.iter().enumerate() {
        let proof = world.fx.certify(world.fx.signed(&faucet, *id, 100, seq as u64 + 1));
        for section in 0..2 {
            for (elder, records) in
                world.elders[section].iter_mut().zip(&mut world.records[section])
            {
                if elder.section().prefix.matches(id) || section == HOME {
                    records.extend(register_or_credit(elder, &proof).records);
                }
            }
        }
    }
    let leg = |from: usize, to: usize, amount| Leg {
        from: ids[from],
        to: ids[to],
        amount: Amount(amount),
        seq: Seq::FIRST,
    };
    let bundle = Bundle {
        legs: vec![leg(0, 1, 30), leg(1, 2, 20), leg(2, 0, 10)],
        deadline_ms: DEADLINE_MS,
        referee: world.fx.prefix(AWAY),
        nonce: 1,
    };
    Ring { keys, bundle }
}

/// Applies a funding proof at an elder of the payer's section or the payee's.
fn register_or_credit(elder: &mut Ledger, proof: &DebitProof) -> Output {
    if elder.section().prefix.matches(&proof.transfer().from) {
        register(elder, proof, 0)
    } else {
        let from = ElderId { prefix: Default::default(), index: crate::types::ElderIndex(0) };
        elder.handle_peer(from, PeerMessage::Proof { proof: proof.clone() }, 0)
    }
}

#[test]
fn a_lock_is_signed_before_the_deadline_only() {
    let mut world = World::new(301);
    let ring = ring(&mut world);
    let signed = lock(&world.fx, &ring.bundle, 0, &ring.keys[0]);
    let elder = &mut world.elders[HOME][0];
    let late = Rejection::DeadlinePassed { deadline_ms: DEADLINE_MS, late_ms: 0 };
    assert_refused_at(elder, validate(signed.clone()), late, DEADLINE_MS);
    let (reply, output) = elder.handle_client(validate(signed.clone()), DEADLINE_MS - 1);
    assert!(matches!(reply, ClientReply::Share { .. }), "{reply:?}");
    assert_eq!(output.records, vec![Record::Signed(signed)]);
}

#[test]
fn a_lock_that_is_not_its_leg_or_not_the_payers_is_refused() {
    let mut world = World::new(302);
    let ring = ring(&mut world);
    let elder = &mut world.elders[HOME][0];
    let mut other_amount = lock(&world.fx, &ring.bundle, 0, &ring.keys[0]);
    other_amount.transfer.amount = Amount(31);
    assert_refused_at(elder, validate(other_amount), Rejection::NotALeg { leg: 0 }, 0);
    let by_another = lock(&world.fx, &ring.bundle, 0, &ring.keys[2]);
    let payer = account_id(&ring.keys[0]);
    assert_refused_at(
        elder,
        validate(by_another),
        Rejection::BadAccountSignature { account: payer },
        0,
    );
    let mut twice = ring.bundle.clone();
    twice.legs[1].from = payer;
    let signed = lock(&world.fx, &twice, 0, &ring.keys[0]);
    assert_refused_at(elder, validate(signed), Rejection::PayerTwice { account: payer }, 0);
}

#[test]
fn a_lock_and_a_plain_transfer_at_one_slot_conflict() {
    let mut world = World::new(303);
    let ring = ring(&mut world);
    let signed = lock(&world.fx, &ring.bundle, 0, &ring.keys[0]);
    let elder = &mut world.elders[HOME][0];
    let (reply, _) = elder.handle_client(validate(signed.clone()), 0);
    assert!(matches!(reply, ClientReply::Share { .. }));
    let plain = world.fx.signed(&ring.keys[0], world.fx.faucet_id(), 5, 1);
    let slot = plain.transfer.slot();
    let conflict = Rejection::Conflict { slot, rival: Box::new(signed) };
    assert_refused_at(elder, validate(plain), conflict, 0);
}

#[test]
fn a_registered_lock_holds_its_amount_in_escrow_and_is_no_credit_abroad() {
    let mut world = World::new(304);
    let ring = ring(&mut world);
    let lock = world.lock(&ring.bundle, 0, &ring.keys[0], 0);
    let (payer, payee) = (account_id(&ring.keys[0]), account_id(&ring.keys[1]));
    assert_eq!(world.balance(payer), Amount(70));
    assert_eq!(world.balance(payee), Amount(100));
    assert_eq!(world.elders[HOME][0].escrow_total(), 30);
    world.assert_conserved();
    let transfer = crypto::transfer_id(&lock.signed);
    let request = ClientRequest::Register { proof: lock, deps: Vec::new() };
    let wrong = Rejection::WrongSection { account: payer, prefix: world.fx.prefix(AWAY) };
    assert_refused_at(&mut world.elders[AWAY][0], request.clone(), wrong, 0);
    let ClientRequest::Register { proof, .. } = request else { unreachable!() };
    let from = world.fx.elder_id(HOME, 0);
    let output = world.elders[AWAY][0].handle_peer(from, PeerMessage::Proof { proof }, 0);
    assert!(output.messages.is_empty(), "a lock is not acknowledged as a credit");
    assert_eq!(world.balance(payee), Amount(100));
    assert!(!world.elders[AWAY][0]
        .log()
        .any(|proof| crypto::transfer_id(&proof.signed) == transfer));
}

#[test]
fn a_bundle_with_every_leg_locked_commits_and_pays_every_leg_once() {
    let mut world = World::new(305);
    let ring = ring(&mut world);
    let locks: Vec<DebitProof> =
        (0..3).map(|leg| world.lock(&ring.bundle, leg, &ring.keys[leg as usize], 10)).collect();
    world.assert_conserved();
    let decide = ClientRequest::Decide { bundle: ring.bundle.clone(), locks };
    let reply = world.ask(AWAY, 0, decide, 20);
    assert_eq!(reply, ClientReply::Undecided { bundle: crypto::bundle_id(&ring.bundle) });
    // One referee elder shown every lock drives the agreement to its end: its peers learn
    // of the bundle from it, and votes that came before the bundle come again when resent.
    world.tick(200);
    let query = ClientRequest::Outcome { bundle: crypto::bundle_id(&ring.bundle) };
    let ClientReply::Outcome(certificate) = world.ask(AWAY, 3, query, 30) else {
        panic!("the outcome is certified");
    };
    assert!(certificate.commit);
    for section in [HOME, AWAY] {
        assert_eq!(world.outcome(section, &ring.bundle), vec![Some(true); 4]);
    }
    let ids: Vec<AccountId> = ring.keys.iter().map(account_id).collect();
    assert_eq!(world.balance(ids[0]), Amount(100 - 30 + 10));
    assert_eq!(world.balance(ids[1]), Amount(100 - 20 + 30));
    assert_eq!(world.balance(ids[2]), Amount(100 - 10 + 20));
    world.assert_conserved();
    // The outcome routed again, or asked for again, pays nothing twice.
    world.tick(DEADLINE_MS * 2);
    let again = PeerMessage::Outcome { certificate: certificate.clone() };
    let output = world.elders[HOME][1].handle_peer(world.fx.elder_id(AWAY, 2), again, 0);
    assert_eq!(output.records, Vec::new());
    assert_eq!(world.balance(ids[0]), Amount(80));
    world.assert_conserved();
}

#[test]
fn an_overdue_escrow_asks_the_referee_which_aborts_and_every_lock_is_refunded() {
    let mut world = World::new(306);
    let ring = ring(&mut world);
    // The third payer never locks, and no client ever asks the referee.
    world.lock(&ring.bundle, 0, &ring.keys[0], 10);
    world.lock(&ring.bundle, 1, &ring.keys[1], 10);
    assert_eq!(world.balance(account_id(&ring.keys[0])), Amount(70));
    world.tick(DEADLINE_MS);
    assert_eq!(world.outcome(AWAY, &ring.bundle), vec![None; 4], "nothing before the grace");
    let overdue = DEADLINE_MS + CLOCK_SKEW_MS_MAX + OUTCOME_GRACE_MS;
    world.tick(overdue);
    world.tick(overdue + 1);
    for section in [HOME, AWAY] {
        assert_eq!(world.outcome(section, &ring.bundle), vec![Some(false); 4]);
    }
    for key in &ring.keys {
        assert_eq!(world.balance(account_id(key)), Amount(100));
    }
    for section in [HOME, AWAY] {
        assert!(world.elders[section].iter().all(|elder| elder.escrow_total() == 0));
    }
    world.assert_conserved();
    // The lock registered after the abort is refunded at once.
    let late = lock(&world.fx, &ring.bundle, 2, &ring.keys[2]);
    let proof = world.fx.certify(late);
    register(&mut world.elders[HOME][0], &proof, overdue);
    assert_eq!(world.elders[HOME][0].report(account_id(&ring.keys[2])).balance, Amount(100));
    assert_eq!(world.elders[HOME][0].report(account_id(&ring.keys[2])).next_seq, Seq(2));
}

#[test]
fn a_restarted_referee_and_leg_elder_rebuild_the_same_outcome_and_escrow() {
    let mut world = World::new(307);
    let ring = ring(&mut world);
    let locks: Vec<DebitProof> =
        (0..3).map(|leg| world.lock(&ring.bundle, leg, &ring.keys[leg as usize], 10)).collect();
    let decide = ClientRequest::Decide { bundle: ring.bundle.clone(), locks };
    world.ask(AWAY, 1, decide, 20);
    world.tick(200);
    for (section, index) in [(AWAY, 1u32), (AWAY, 3), (HOME, 2)] {
        let records = world.records[section][index as usize].clone();
        let me = world.fx.elder_id(section, index);
        let key_share = world.fx.key_share(section, index);
        let rebuilt = Ledger::rebuild(world.fx.network.clone(), me, key_share, records)
            .expect("its own records replay");
        let elder = &world.elders[section][index as usize];
        assert_eq!(rebuilt.state_digest(), elder.state_digest());
        assert_eq!(rebuilt.escrow_total(), 0);
        let id = crypto::bundle_id(&ring.bundle);
        assert_eq!(rebuilt.outcome(&id).map(|c| c.commit), Some(true));
    }
}

#[test]
fn an_outcome_not_signed_by_the_referee_or_missing_a_lock_is_refused() {
    let mut world = World::new(308);
    let ring = ring(&mut world);
    let locks: Vec<DebitProof> =
        (0..2).map(|leg| world.lock(&ring.bundle, leg, &ring.keys[leg as usize], 10)).collect();
    let id = crypto::bundle_id(&ring.bundle);
    let forged = |commit: bool, locks: Vec<DebitProof>, signer: usize| {
        let bytes = crypto::outcome_signing_bytes(&world.fx.genesis(), &id, commit);
        OutcomeCertificate {
            bundle: ring.bundle.clone(),
            commit,
            section_key: world.fx.network.sections[AWAY].key_id,
            signature: world.fx.section_signature(signer, &bytes),
            locks,
        }
    };
    // Signed by a leg section instead of the referee; a commit with a lock missing.
    let elder = &mut world.elders[HOME][0];
    let before = elder.state_digest();
    for certificate in [forged(false, Vec::new(), HOME), forged(true, locks, AWAY)] {
        let output = elder.handle_peer(
            world.fx.elder_id(AWAY, 0),
            PeerMessage::Outcome { certificate: Box::new(certificate) },
            0,
        );
        assert_eq!(output.records, Vec::new());
        assert!(output.messages.is_empty(), "no acknowledgement of a bad outcome");
    }
    assert_eq!(elder.state_digest(), before);
    assert_eq!(elder.outcome(&id), None);
}

#[test]
fn an_elder_that_missed_the_outcome_catches_up_from_sync_to_the_same_state() {
    let mut world = World::new(309);
    let ring = ring(&mut world);
    let locks: Vec<DebitProof> =
        (0..3).map(|leg| world.lock(&ring.bundle, leg, &ring.keys[leg as usize], 10)).collect();
    let decide = ClientRequest::Decide { bundle: ring.bundle.clone(), locks };
    world.ask(AWAY, 0, decide, 20);
    world.tick(200);
    // An elder of each section that saw none of it pulls its peer's log.
    for section in [HOME, AWAY] {
        let mut fresh = world.fx.ledger(section, 3);
        let peer = &mut world.elders[section][0];
        let mut position = 0;
        loop {
            let request = PeerMessage::SyncRequest { position };
            let served = peer.handle_peer(fresh.me(), request, 300);
            let [(_, page)] = <[_; 1]>::try_from(served.sync_messages).expect("one page");
            let PeerMessage::SyncReply { next_position, .. } = &page else { panic!("{page:?}") };
            if *next_position == position {
                break;
            }
            position = *next_position;
            fresh.handle_peer(peer.me(), page, 300);
        }
        assert_eq!(fresh.state_digest(), peer.state_digest(), "section {section}");
        let id = crypto::bundle_id(&ring.bundle);
        assert_eq!(fresh.outcome(&id).map(|c| c.commit), Some(true));
        assert_eq!(fresh.escrow_total(), 0);
    }
}

/// Validates `signed` at elders `at` of `section` only, keeping their records; returns their
/// shares as a collector would count them.
fn validate_at(world: &mut World, section: usize, at: &[usize], signed: &SignedTransfer) {
    for &index in at {
        let (reply, output) =
            world.elders[section][index].handle_client(validate(signed.clone()), 10);
        assert!(matches!(reply, ClientReply::Share { .. }), "{reply:?}");
        world.records[section][index].extend(output.records);
    }
}

/// Every elder of `section` pulls elder 0's log.
fn sync_from_first(world: &mut World, section: usize, now_ms: u64) {
    for index in 1..ELDERS as usize {
        let mut position = 0;
        loop {
            let (first, rest) = world.elders[section].split_at_mut(1);
            let (peer, puller) = (&mut first[0], &mut rest[index - 1]);
            let served =
                peer.handle_peer(puller.me(), PeerMessage::SyncRequest { position }, now_ms);
            let [(_, page)] = <[_; 1]>::try_from(served.sync_messages).expect("one page");
            let PeerMessage::SyncReply { next_position, .. } = &page else { panic!("{page:?}") };
            if *next_position == position {
                break;
            }
            position = *next_position;
            let output = puller.handle_peer(peer.me(), page, now_ms);
            world.records[section][index].extend(output.records);
        }
    }
}

fn past_the_grace(world: &mut World) -> u64 {
    let overdue = DEADLINE_MS + CLOCK_SKEW_MS_MAX + OUTCOME_GRACE_MS;
    for step in 0..4 {
        world.tick(overdue + step * 200);
    }
    overdue + 800
}

#[test]
fn a_slot_some_elders_locked_is_voided_after_the_abort_and_the_account_goes_on() {
    let mut world = World::new(310);
    let ring = ring(&mut world);
    world.lock(&ring.bundle, 0, &ring.keys[0], 10);
    world.lock(&ring.bundle, 1, &ring.keys[1], 10);
    // Carol's lock gets two shares of the three it needs: never certified.
    let carol_lock = lock(&world.fx, &ring.bundle, 2, &ring.keys[2]);
    validate_at(&mut world, HOME, &[0, 1], &carol_lock);
    let now = past_the_grace(&mut world);
    assert_eq!(world.outcome(HOME, &ring.bundle), vec![Some(false); 4]);
    let carol = account_id(&ring.keys[2]);
    for elder in &world.elders[HOME] {
        let report = elder.report(carol);
        assert_eq!((report.balance, report.next_seq), (Amount(100), Seq(2)), "{:?}", elder.me());
    }
    let digest = world.elders[HOME][0].state_digest();
    assert!(world.elders[HOME].iter().all(|elder| elder.state_digest() == digest));
    world.assert_conserved();
    // The slot is closed: seq 1 is used, and carol pays at seq 2.
    let stale = world.fx.signed(&ring.keys[2], world.fx.faucet_id(), 5, 1);
    let used = Rejection::StaleSeq { seq: Seq(1), next_seq: Seq(2) };
    assert_refused_at(&mut world.elders[HOME][3], validate(stale), used, now);
    let next = world.fx.signed(&ring.keys[2], world.fx.faucet_id(), 5, 2);
    let (reply, _) = world.elders[HOME][3].handle_client(validate(next), now);
    assert!(matches!(reply, ClientReply::Share { .. }), "{reply:?}");
    // Rebuilt from its records, an elder holds the same state.
    let me = world.fx.elder_id(HOME, 1);
    let records = world.records[HOME][1].clone();
    let rebuilt =
        Ledger::rebuild(world.fx.network.clone(), me, world.fx.key_share(HOME, 1), records)
            .expect("its records replay");
    assert_eq!(rebuilt.state_digest(), world.elders[HOME][1].state_digest());
}

#[test]
fn a_lock_certified_but_voided_takes_the_voids_place_and_every_elder_ends_in_one_state() {
    let mut world = World::new(311);
    let ring = ring(&mut world);
    world.lock(&ring.bundle, 0, &ring.keys[0], 10);
    world.lock(&ring.bundle, 1, &ring.keys[1], 10);
    // Carol's lock is certified, but its holder never registers it: the slot is voided.
    let carol_lock = lock(&world.fx, &ring.bundle, 2, &ring.keys[2]);
    validate_at(&mut world, HOME, &[0, 1, 2], &carol_lock);
    let certificate = world.fx.certify(carol_lock);
    let now = past_the_grace(&mut world);
    let carol = account_id(&ring.keys[2]);
    assert!(world.elders[HOME].iter().all(|elder| elder.report(carol).next_seq == Seq(2)));
    let voided = world.elders[HOME][0].state_digest();
    // Then it turns up at one elder, and sync takes it to the others.
    register(&mut world.elders[HOME][0], &certificate, now);
    assert_ne!(world.elders[HOME][0].state_digest(), voided, "the lock took the void's place");
    sync_from_first(&mut world, HOME, now);
    let digest = world.elders[HOME][0].state_digest();
    for elder in &world.elders[HOME] {
        assert_eq!(elder.state_digest(), digest, "{:?}", elder.me());
        let report = elder.report(carol);
        assert_eq!((report.balance, report.next_seq), (Amount(100), Seq(2)));
        let lock_id = crypto::transfer_id(&certificate.signed);
        assert_eq!(elder.account(&carol).and_then(|a| a.debit_at(Seq(1))), Some(lock_id));
    }
    world.assert_conserved();
}

#[test]
fn a_void_not_countersigned_by_the_payer_is_refused_and_uses_no_seq() {
    let mut world = World::new(312);
    let ring = ring(&mut world);
    world.lock(&ring.bundle, 0, &ring.keys[0], 10);
    past_the_grace(&mut world);
    let id = crypto::bundle_id(&ring.bundle);
    let abort = world.elders[HOME][0].outcome(&id).cloned().expect("aborted");
    // Anyone holding the abort, but not carol's signature over the bundle, tries to use up
    // carol's seq with a void of her leg.
    let carol = account_id(&ring.keys[2]);
    let stranger = world.fx.key_in(HOME);
    let forged_payer = crypto::sign_bundle(&stranger, &world.fx.genesis(), &ring.bundle);
    let void = SignedTransfer {
        transfer: ring.bundle.lock_transfer(2).expect("leg 2"),
        authority: Authority::Void {
            abort: Box::new(AbortCertificate::of(&abort).expect("an abort")),
            leg: 2,
            payer: PayerAuthority::Key(forged_payer),
        },
    };
    let refused = Rejection::BadAccountSignature { account: carol };
    assert_refused_at(&mut world.elders[HOME][1], validate(void), refused, DEADLINE_MS * 2);
    assert_eq!(world.elders[HOME][1].report(carol).next_seq, Seq::FIRST);
}

#[test]
fn the_referee_hears_of_a_bundle_only_with_a_lock_and_a_deadline_within_the_bound() {
    let mut world = World::new(313);
    let ring = ring(&mut world);
    let decide = |bundle: &Bundle, locks| ClientRequest::Decide { bundle: bundle.clone(), locks };
    let elder = &mut world.elders[AWAY][0];
    assert_refused_at(elder, decide(&ring.bundle, Vec::new()), Rejection::NoLockShown, 10);
    let mut far = ring.bundle.clone();
    far.deadline_ms = 10 + BUNDLE_DEADLINE_MS_MAX + 1;
    let signed = lock(&world.fx, &far, 0, &ring.keys[0]);
    let too_far =
        Rejection::DeadlineTooFar { deadline_ms: far.deadline_ms, max_ms: BUNDLE_DEADLINE_MS_MAX };
    assert_refused_at(&mut world.elders[HOME][0], validate(signed), too_far, 10);
}

#[test]
fn a_lock_share_alone_gets_its_bundle_aborted_and_its_slot_voided() {
    let mut world = World::new(314);
    let ring = ring(&mut world);
    // Only two elders signed carol's lock; nothing is certified, nothing held in escrow, and
    // no client ever asks the referee.
    let carol_lock = lock(&world.fx, &ring.bundle, 2, &ring.keys[2]);
    validate_at(&mut world, HOME, &[0, 1], &carol_lock);
    world.tick(DEADLINE_MS);
    assert_eq!(world.outcome(AWAY, &ring.bundle), vec![None; 4]);
    past_the_grace(&mut world);
    assert_eq!(world.outcome(AWAY, &ring.bundle), vec![Some(false); 4]);
    let carol = account_id(&ring.keys[2]);
    for elder in &world.elders[HOME] {
        assert_eq!(elder.report(carol).next_seq, Seq(2), "{:?}", elder.me());
        assert_eq!(elder.report(carol).balance, Amount(100));
    }
    world.assert_conserved();
}
