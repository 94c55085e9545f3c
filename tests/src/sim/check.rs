//! The invariants of DESIGN.md, checked once the faults have healed and the system settled.
//! Each returns how many individual assertions it made, or what broke.

use std::collections::HashMap;

use shared::crypto;
use shared::ledger::{recompute, Ledger};
use shared::types::{BundleId, DebitProof, OutcomeCertificate, Slot, TransferId};

use super::{id_of, World};

/// Runs every check; returns the number of assertions made.
pub fn check(world: &World) -> Result<u64, String> {
    let mut checks = 0;
    let sections: Vec<Vec<&Ledger>> = world
        .elders
        .chunks(world.config.elders)
        .map(|section| {
            section
                .iter()
                .filter(|e| e.is_honest())
                .map(|e| e.ledger.as_ref().expect("running"))
                .collect()
        })
        .collect();
    checks += honest_elders_agree(&sections)?;
    checks += supply_is_conserved(world, &sections)?;
    for section in &sections {
        for ledger in section {
            checks += balances_follow_from_proofs(world, ledger)?;
        }
    }
    checks += one_proof_per_slot(world, &sections)?;
    checks += every_proof_applied_and_credited_once(world, &sections)?;
    checks += bundles_all_or_none(world, &sections)?;
    Ok(checks)
}

/// After faults heal, all honest elders of a section report the same state digest, and no
/// outgoing credit is left unacknowledged.
fn honest_elders_agree(sections: &[Vec<&Ledger>]) -> Result<u64, String> {
    let mut checks = 0;
    for section in sections {
        let first = section[0].state_digest();
        for ledger in section {
            checks += 2;
            if ledger.state_digest() != first {
                return Err(format!(
                    "honest elders of section {} disagree on state",
                    ledger.me().prefix
                ));
            }
            if ledger.routing() > 0 {
                return Err(format!("elder {:?} still holds undelivered credits", ledger.me()));
            }
            if ledger.escrow_total() > 0 {
                return Err(format!("elder {:?} still holds escrow (R13)", ledger.me()));
            }
        }
    }
    Ok(checks)
}

/// Σ balances over all sections + Σ credits in flight = genesis supply; after healing nothing
/// is in flight.
fn supply_is_conserved(world: &World, sections: &[Vec<&Ledger>]) -> Result<u64, String> {
    let network = &world.network;
    let mut total: u128 = 0;
    let mut in_flight: u128 = 0;
    for section in sections {
        let ledger = section[0];
        total += ledger.accounts().map(|(_, account)| u128::from(account.balance.0)).sum::<u128>();
        // Escrow is money in flight; a lock's credit is the outcome's (checked per bundle).
        in_flight += ledger.escrow_total();
        for proof in ledger.log().filter(|proof| proof.signed.bundle_leg().is_none()) {
            let transfer = proof.transfer();
            let recipient = network.section_index_of(&transfer.to);
            let outgoing = ledger.section().prefix.matches(&transfer.from)
                && !ledger.section().prefix.matches(&transfer.to);
            let credited = sections[recipient][0].has_credit(&transfer.to, &id_of(proof));
            if outgoing && !credited {
                in_flight += u128::from(transfer.amount.0);
            }
        }
    }
    let supply = u128::from(network.map.supply.0);
    if total + in_flight != supply {
        return Err(format!(
            "conservation broken: balances {total} + in flight {in_flight} != {supply}"
        ));
    }
    if in_flight != 0 {
        return Err(format!("{in_flight} still in flight after healing"));
    }
    Ok(2)
}

/// Every balance equals genesis + credits − debits recomputed from the elder's own proofs,
/// so none went negative or drifted; `next_seq` counts the debits.
fn balances_follow_from_proofs(world: &World, ledger: &Ledger) -> Result<u64, String> {
    let outcomes: HashMap<BundleId, &OutcomeCertificate> =
        ledger.outcomes().map(|outcome| (crypto::bundle_id(&outcome.bundle), outcome)).collect();
    let recomputed = recompute(&world.network, ledger.section().prefix, ledger.log(), &outcomes);
    if recomputed.escrow != ledger.escrow_total() {
        return Err(format!(
            "{:?}: holds {} in escrow but its locks give {}",
            ledger.me(),
            ledger.escrow_total(),
            recomputed.escrow
        ));
    }
    let expected = recomputed.balances;
    let mut checks = 0;
    for (id, account) in ledger.accounts() {
        checks += 2;
        let recomputed = expected.get(id).copied().unwrap_or(0);
        if recomputed < 0 || recomputed != i128::from(account.balance.0) {
            return Err(format!(
                "{id:?} at {:?}: balance {} but proofs give {recomputed}",
                ledger.me(),
                account.balance
            ));
        }
        if account.next_seq.0 != account.debits.len() as u64 + 1 {
            return Err(format!(
                "{id:?}: next seq {} after {} debits",
                account.next_seq,
                account.debits.len()
            ));
        }
    }
    Ok(checks)
}

/// No two debit proofs for one slot, across every honest elder and every client, but the
/// lock and the void of one aborted leg (R13); and every applied debit is one a client
/// certified (nothing forged got in), or a void its section certified.
fn one_proof_per_slot(world: &World, sections: &[Vec<&Ledger>]) -> Result<u64, String> {
    let mut seen: HashMap<Slot, &DebitProof> = HashMap::new();
    let mut checks = 0;
    for ledger in sections.iter().flatten() {
        for proof in ledger.log() {
            checks += 2;
            let slot = proof.transfer().slot();
            let id = id_of(proof);
            let first = *seen.entry(slot).or_insert(proof);
            if id_of(first) != id && !first.signed.twin_of(&proof.signed) {
                return Err(format!("two debit proofs applied for slot {slot:?}"));
            }
            if proof.signed.void().is_some() {
                continue;
            }
            if world.certified.get(&slot).map(id_of) != Some(id) {
                return Err(format!(
                    "{:?} applied a proof no client certified: {slot:?}",
                    ledger.me()
                ));
            }
        }
    }
    Ok(checks)
}

/// Every debit proof a client got is applied at every honest elder of its section and
/// credited exactly once at every honest elder of the recipient's section.
fn every_proof_applied_and_credited_once(
    world: &World,
    sections: &[Vec<&Ledger>],
) -> Result<u64, String> {
    let mut checks = 0;
    let mut occurrences: Vec<HashMap<TransferId, u32>> = Vec::new();
    for ledger in sections.iter().flatten() {
        let mut counts = HashMap::new();
        for proof in ledger.log() {
            *counts.entry(id_of(proof)).or_insert(0) += 1;
        }
        occurrences.push(counts);
    }
    let mut index = 0;
    let offsets: Vec<usize> = sections
        .iter()
        .map(|section| {
            let start = index;
            index += section.len();
            start
        })
        .collect();
    for proof in world.certified.values() {
        let transfer = proof.transfer();
        let id = id_of(proof);
        let from = world.network.section_index_of(&transfer.from);
        let to = world.network.section_index_of(&transfer.to);
        for (k, ledger) in sections[from].iter().enumerate() {
            checks += 2;
            let applied = ledger.account(&transfer.from).and_then(|a| a.debit_at(transfer.seq));
            // A lock no one registered may have been voided (R13): its twin holds the slot.
            let voided = applied.is_some_and(|applied| {
                ledger
                    .log()
                    .any(|other| id_of(other) == applied && other.signed.twin_of(&proof.signed))
            });
            if applied != Some(id) && !voided {
                return Err(format!(
                    "certified {slot:?} not applied at {:?}",
                    ledger.me(),
                    slot = transfer.slot()
                ));
            }
            if !voided && occurrences[offsets[from] + k].get(&id) != Some(&1) {
                return Err(format!("{:?} applied {id:?} more than once", ledger.me()));
            }
        }
        if proof.lock().is_some() {
            // Its credit, or its refund, is the bundle's outcome: see `bundles_all_or_none`.
            continue;
        }
        for (k, ledger) in sections[to].iter().enumerate() {
            checks += 2;
            if !ledger.has_credit(&transfer.to, &id) {
                return Err(format!("certified {id:?} not credited at {:?}", ledger.me()));
            }
            if occurrences[offsets[to] + k].get(&id) != Some(&1) {
                return Err(format!("{:?} credited {id:?} more than once", ledger.me()));
            }
        }
    }
    Ok(checks)
}

/// R12 and R13 for every bundle: one outcome, held by every honest elder of every section of
/// the bundle; on commit every leg debited at its payer and credited once at its recipient,
/// on abort no leg credited and every registered lock refunded; a bundle with a registered
/// lock is never left without an outcome (no stuck money).
fn bundles_all_or_none(world: &World, sections: &[Vec<&Ledger>]) -> Result<u64, String> {
    let network = &world.network;
    let mut checks = 0;
    let mut outcomes: HashMap<BundleId, bool> = world.outcomes.clone();
    for ledger in sections.iter().flatten() {
        for outcome in ledger.outcomes() {
            checks += 1;
            let id = crypto::bundle_id(&outcome.bundle);
            if *outcomes.entry(id).or_insert(outcome.commit) != outcome.commit {
                return Err(format!("bundle {id:?}: commit and abort both certified (R12)"));
            }
        }
    }
    for bundle in &world.bundles {
        let id = crypto::bundle_id(bundle);
        let locked = bundle.legs.iter().any(|leg| {
            sections[network.section_index_of(&leg.from)].iter().any(|ledger| {
                ledger.log().any(|proof| proof.lock().is_some_and(|(b, _)| b == bundle))
            })
        });
        let Some(&commit) = outcomes.get(&id) else {
            if locked {
                return Err(format!("bundle {id:?} has locked money and no outcome (R13)"));
            }
            continue;
        };
        for leg in &bundle.legs {
            let involved = [leg.from, leg.to].map(|account| network.section_index_of(&account));
            for ledger in involved.iter().flat_map(|section| &sections[*section]) {
                checks += 1;
                if ledger.outcome(&id).map(|outcome| outcome.commit) != Some(commit) {
                    return Err(format!("{:?} lacks the outcome of bundle {id:?}", ledger.me()));
                }
            }
            let payer_lock = sections[involved[0]][0].account(&leg.from).and_then(|account| {
                account.debit_at(leg.seq).filter(|lock| {
                    sections[involved[0]][0].log().any(|p| {
                        crypto::transfer_id(&p.signed) == *lock
                            && p.lock().is_some_and(|(locked, _)| locked == bundle)
                    })
                })
            });
            let paid_to = if commit { leg.to } else { leg.from };
            for ledger in &sections[network.section_index_of(&paid_to)] {
                checks += 1;
                let credited = payer_lock.is_some_and(|lock| ledger.has_credit(&paid_to, &lock));
                if commit && !credited {
                    return Err(format!(
                        "committed bundle {id:?}: a leg is not paid at {:?}",
                        ledger.me()
                    ));
                }
                if !commit && payer_lock.is_some() && !credited {
                    return Err(format!(
                        "aborted bundle {id:?}: a lock is not refunded at {:?}",
                        ledger.me()
                    ));
                }
            }
            if !commit {
                for ledger in &sections[network.section_index_of(&leg.to)] {
                    checks += 1;
                    if payer_lock.is_some_and(|lock| ledger.has_credit(&leg.to, &lock)) {
                        return Err(format!(
                            "aborted bundle {id:?} paid a leg at {:?}",
                            ledger.me()
                        ));
                    }
                }
            }
        }
    }
    Ok(checks)
}
