//! What a checker recomputes from an elder's applied proofs and outcomes alone, trusting none
//! of its state: every balance of its section and the escrow it holds. The simulation's
//! checker and `testnet audit` both compare an elder's state against this.

use std::collections::{BTreeMap, HashMap};

use crate::crypto;
use crate::network::Network;
use crate::types::{AccountId, BundleId, DebitProof, OutcomeCertificate, Prefix};

/// One section's money as its applied proofs and outcomes give it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recomputed {
    /// Each account's balance: genesis + credits − debits; negative if the proofs overspend.
    pub balances: BTreeMap<AccountId, i128>,
    /// The money of locks whose bundle has no outcome here yet (R13).
    pub escrow: u128,
}

/// Recomputes the section of `prefix` from the proofs applied there and the outcomes settled
/// there: a payment debits its payer and credits its payee; a void closes a slot and moves
/// nothing; a lock debits its payer and waits in escrow until its bundle's outcome pays the
/// recipient (commit) or the payer back (abort); a commit credits a recipient held here whose
/// payer is elsewhere from the certificate.
pub fn recompute<'a>(
    network: &Network,
    prefix: Prefix,
    proofs: impl IntoIterator<Item = &'a DebitProof>,
    outcomes: &HashMap<BundleId, &OutcomeCertificate>,
) -> Recomputed {
    let mut recomputed = Recomputed::default();
    let balances = &mut recomputed.balances;
    if prefix.matches(&network.map.faucet) {
        balances.insert(network.map.faucet, i128::from(network.map.supply.0));
    }
    for proof in proofs.into_iter().filter(|proof| proof.void().is_none()) {
        let transfer = proof.transfer();
        let amount = i128::from(transfer.amount.0);
        if prefix.matches(&transfer.from) {
            *balances.entry(transfer.from).or_default() -= amount;
        }
        let paid = match proof.lock() {
            None => Some(transfer.to),
            Some((bundle, _)) => match outcomes.get(&crypto::bundle_id(bundle)) {
                Some(outcome) if outcome.commit => Some(transfer.to),
                Some(_) => Some(transfer.from),
                None => {
                    recomputed.escrow += u128::from(transfer.amount.0);
                    None
                }
            },
        };
        if let Some(paid) = paid.filter(|paid| prefix.matches(paid)) {
            *balances.entry(paid).or_default() += amount;
        }
    }
    for outcome in outcomes.values().filter(|outcome| outcome.commit) {
        for leg in &outcome.bundle.legs {
            if prefix.matches(&leg.to) && !prefix.matches(&leg.from) {
                *balances.entry(leg.to).or_default() += i128::from(leg.amount.0);
            }
        }
    }
    recomputed
}
