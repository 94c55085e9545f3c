//! `testnet audit`: the checker of a chaos run, over the stores of a stopped network. It trusts
//! nothing the elders say: it reads every elder's record log, checks every proof there under
//! its section's key, recomputes every balance from genesis and the proofs, and checks the
//! transfers a client saw confirmed against every elder. Each problem is one [`Violation`]
//! naming the elder, account and transfer it concerns.
//!
//! Checks, at every elder of every section:
//! - every proof verifies (account signature or, for a lock or a void, the payer's
//!   countersignature and the referee's certificate, and section signature in batches per
//!   signing section, each distinct proof once); no transfer is applied twice; no two proofs
//!   anywhere take one (account, seq), but the lock and the void of one aborted leg (R13);
//! - every bundle outcome settled anywhere verifies, is settled at every elder of every
//!   section of the bundle, and no bundle has both a commit and an abort (R12);
//! - every account's debit seqs run 1, 2, 3 … without a gap, and its balance equals genesis +
//!   credits − debits recomputed from the proofs and outcomes ([`recompute`]), never below
//!   zero, and the escrow the elder holds equals its locks without an outcome;
//! - the elder's rebuilt state equals that recomputation; elders of a section agree on their
//!   state digest and have empty outboxes;
//! - no elder signed shares for two transfers at one (account, seq) (R1), but a lock and the
//!   void of its aborted leg;
//! - every proof applied anywhere is applied at every elder of its payer's section and, but for
//!   a lock or a void, of its payee's (nothing credited that is not debited, nothing stuck half
//!   way);
//! - every confirmed transfer is debited exactly once at every elder of the payer's section
//!   and credited exactly once at every elder of the payee's;
//! - conservation: the sections' balances and escrow sum to the supply.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use elder::config::Config;
use elder::store::{Identity, Store};
use serde::Serialize;
use shared::crypto::{bls_batch_validity, bundle_id, debit_message, transfer_id, HashedMessage};
use shared::ledger::{recompute, Ledger, Record};
use shared::network::Network;
use shared::types::{
    AccountId, BlsSignature, BundleId, DebitProof, OutcomeCertificate, SignedTransfer, TransferId,
};

use crate::chaos::load::Confirmed;
use crate::elders::{elder_name, is_elder_process, recorded_pid};
use crate::genesis::Genesis;

/// Violations shown per check and elder; the rest are counted.
const VIOLATIONS_SHOWN_MAX: usize = 20;

/// Why an audit cannot run (a failed check is a violation, not an error).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An elder still runs and holds its store.
    #[error("elder {0} is running; stop the network first (`testnet down --dir DIR`)")]
    Running(String),
    /// An elder's config cannot be read.
    #[error("elder {elder}: {problem}")]
    Config {
        /// The elder.
        elder: String,
        /// Why.
        problem: String,
    },
}

/// One broken rule.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// Which check.
    pub check: &'static str,
    /// The elder it concerns, as `section/index`.
    pub elder: Option<String>,
    /// The account, in hex.
    pub account: Option<String>,
    /// The transfer, in hex.
    pub transfer: Option<String>,
    /// What is wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)?;
        if let Some(elder) = &self.elder {
            write!(f, " [elder {elder}]")?;
        }
        if let Some(account) = &self.account {
            write!(f, " [account {account}]")?;
        }
        if let Some(transfer) = &self.transfer {
            write!(f, " [transfer {transfer}]")?;
        }
        Ok(())
    }
}

/// What an audit looked at and found.
#[derive(Clone, Debug, Serialize)]
pub struct Audit {
    /// Elders whose stores were read.
    pub elders: usize,
    /// Proof copies checked (each elder's, so a proof held by 4 elders counts 4 times; each
    /// distinct proof is verified once).
    pub proofs_checked: u64,
    /// Confirmed transfers checked at every elder.
    pub confirmed_checked: usize,
    /// Everything wrong.
    pub violations: Vec<Violation>,
}

/// One elder's store, read back.
struct Held {
    name: String,
    section: usize,
    ledger: Option<Ledger>,
    proofs: Vec<DebitProof>,
    /// Transfers applied, with how many times.
    applied: HashMap<TransferId, u32>,
    /// Bundle outcomes settled.
    outcomes: HashMap<BundleId, OutcomeCertificate>,
}

/// Audits the stopped network of `genesis` against the transfers clients saw `confirmed`.
pub fn run(genesis: &Genesis, confirmed: &[Confirmed]) -> Result<Audit, AuditError> {
    let mut violations = Vec::new();
    let mut held = Vec::new();
    let mut network: Option<Arc<Network>> = None;
    for elder in &genesis.elders {
        let name = elder_name(elder);
        if recorded_pid(elder).is_some_and(is_elder_process) {
            return Err(AuditError::Running(name));
        }
        let config = Config::load(&elder.config).map_err(|error| AuditError::Config {
            elder: name.clone(),
            problem: error.to_string(),
        })?;
        network.get_or_insert_with(|| config.network.clone());
        held.push(read(&config, name, &mut violations));
    }
    let Some(network) = network else {
        return Ok(Audit { elders: 0, proofs_checked: 0, confirmed_checked: 0, violations });
    };
    let proofs_checked = check_proofs(&network, &held, &mut violations);
    for elder in &held {
        check_balances(&network, elder, &mut violations);
    }
    check_outcomes(&network, &held, &mut violations);
    check_sections(&network, &held, &mut violations);
    check_everywhere(&network, &held, confirmed, &mut violations);
    let violations = capped(violations);
    Ok(Audit { elders: held.len(), proofs_checked, confirmed_checked: confirmed.len(), violations })
}

/// A violation of `check` at `elder` (if it concerns one), with no account or transfer.
pub(crate) fn violation(check: &'static str, elder: Option<&str>, detail: String) -> Violation {
    Violation { check, elder: elder.map(str::to_string), account: None, transfer: None, detail }
}

/// Reads an elder's records and rebuilds its ledger from them.
fn read(config: &Config, name: String, violations: &mut Vec<Violation>) -> Held {
    let section = config.network.sections.iter().position(|s| s.prefix == config.me.prefix);
    let mut held = Held {
        name: name.clone(),
        section: section.unwrap_or(0),
        ledger: None,
        proofs: Vec::new(),
        applied: HashMap::new(),
        outcomes: HashMap::new(),
    };
    let identity = Identity { genesis: config.network.genesis, elder: config.me };
    let records = match Store::open(&config.data_dir, identity).and_then(|store| store.records()) {
        Ok(records) => records,
        Err(error) => {
            violations.push(violation("store", Some(&name), error.to_string()));
            return held;
        }
    };
    let mut signed: BTreeMap<(AccountId, u64), BTreeMap<TransferId, &SignedTransfer>> =
        BTreeMap::new();
    for record in &records {
        match record {
            Record::Applied(proof) => {
                *held.applied.entry(transfer_id(&proof.signed)).or_default() += 1;
                held.proofs.push(proof.clone());
            }
            Record::Signed(transfer) => {
                let slot = (transfer.transfer.from, transfer.transfer.seq.0);
                signed.entry(slot).or_default().insert(transfer_id(transfer), transfer);
            }
            Record::Settled(outcome) => {
                held.outcomes.insert(bundle_id(&outcome.bundle), (**outcome).clone());
            }
            Record::Acked { .. }
            | Record::Synced { .. }
            | Record::Referred { .. }
            | Record::Voted { .. }
            | Record::OutcomeAcked { .. } => {}
        }
    }
    for ((account, seq), transfers) in signed {
        if !one_or_twins(transfers.values().copied()) {
            violations.push(Violation {
                account: Some(account.to_string()),
                ..violation(
                    "sign-once",
                    Some(&name),
                    format!("signed shares for {} transfers at seq {seq}", transfers.len()),
                )
            });
        }
    }
    let network = config.network.clone();
    match Ledger::rebuild(network, config.me, config.key_share.clone(), records) {
        Ok(ledger) => held.ledger = Some(ledger),
        Err(error) => violations.push(violation("replay", Some(&name), error.to_string())),
    }
    held
}

/// A proof as the audit tells them apart: its transfer and its section signature.
type ProofKey = (TransferId, BlsSignature);

/// Whether each distinct proof held anywhere verifies (account signature, and section
/// signature checked in batches per signing section), keyed by transfer and signature.
fn verify_all(network: &Network, held: &[Held]) -> HashMap<ProofKey, bool> {
    let mut distinct: HashMap<ProofKey, &DebitProof> = HashMap::new();
    for proof in held.iter().flat_map(|elder| &elder.proofs) {
        distinct.entry((transfer_id(&proof.signed), proof.signature)).or_insert(proof);
    }
    let mut by_section: Vec<Vec<(ProofKey, HashedMessage, &DebitProof)>> =
        vec![Vec::new(); network.sections.len()];
    for (key, proof) in distinct {
        let message = debit_message(&network.genesis, &key.0);
        by_section[network.section_index_of(&proof.transfer().from)].push((key, message, proof));
    }
    let mut valid = HashMap::new();
    for (section, proofs) in network.sections.iter().zip(by_section) {
        let items: Vec<_> =
            proofs.iter().map(|(_, message, proof)| (message, &proof.signature)).collect();
        let parts = vec![0; items.len()];
        let signed = bls_batch_validity(&section.public_keys.key, &items, rand::random(), &parts);
        for ((key, _, proof), section_signed) in proofs.iter().zip(signed) {
            let ok = section_signed && network.check_authority(&proof.signed).is_ok();
            valid.insert(*key, ok);
        }
    }
    valid
}

/// Every proof verifies; none is applied twice at one elder; no slot holds two transfers.
fn check_proofs(network: &Network, held: &[Held], violations: &mut Vec<Violation>) -> u64 {
    let valid = verify_all(network, held);
    let mut slots: BTreeMap<(AccountId, u64), BTreeMap<TransferId, &SignedTransfer>> =
        BTreeMap::new();
    let mut checked = 0;
    for elder in held {
        for proof in &elder.proofs {
            let id = transfer_id(&proof.signed);
            let transfer = proof.transfer();
            checked += 1;
            let signer = network.section_of(&transfer.from);
            let verified = valid.get(&(id, proof.signature)).copied().unwrap_or(false);
            if !verified || proof.section_key != signer.key_id {
                violations.push(Violation {
                    account: Some(transfer.from.to_string()),
                    transfer: Some(id.to_string()),
                    ..violation(
                        "proof",
                        Some(&elder.name),
                        format!("the proof of seq {} does not verify", transfer.seq),
                    )
                });
            }
            slots.entry((transfer.from, transfer.seq.0)).or_default().insert(id, &proof.signed);
        }
        for (id, times) in &elder.applied {
            if *times > 1 {
                violations.push(Violation {
                    transfer: Some(id.to_string()),
                    ..violation("once", Some(&elder.name), format!("applied {times} times"))
                });
            }
        }
    }
    for ((account, seq), transfers) in slots {
        if !one_or_twins(transfers.values().copied()) {
            let detail = format!("{} different proofs for seq {seq}", transfers.len());
            violations.push(Violation {
                account: Some(account.to_string()),
                ..violation("slot", None, detail)
            });
        }
    }
    checked
}

/// Whether the distinct transfers at one slot are one, or the lock and the void of one
/// aborted leg (R13).
fn one_or_twins<'a>(transfers: impl Iterator<Item = &'a SignedTransfer>) -> bool {
    let transfers: Vec<&SignedTransfer> = transfers.collect();
    match transfers[..] {
        [_] => true,
        [one, other] => one.twin_of(other),
        _ => false,
    }
}

/// Every outcome settled anywhere verifies and is the only outcome of its bundle, and it is
/// settled at every elder of every section of its bundle (R12, R13).
fn check_outcomes(network: &Network, held: &[Held], violations: &mut Vec<Violation>) {
    // bundle → its outcomes, each distinct certificate once (by its signature)
    let mut seen: BTreeMap<BundleId, BTreeMap<BlsSignature, &OutcomeCertificate>> = BTreeMap::new();
    for outcome in held.iter().flat_map(|elder| elder.outcomes.values()) {
        let certificates = seen.entry(bundle_id(&outcome.bundle)).or_default();
        certificates.entry(outcome.signature).or_insert(outcome);
    }
    for (id, certificates) in seen {
        let mut bundle = None;
        for outcome in certificates.values() {
            if network.check_outcome(outcome).is_err() {
                let detail = format!("an outcome of bundle {id} does not verify");
                violations.push(violation("outcome", None, detail));
            }
            bundle = Some(&outcome.bundle);
        }
        if certificates.values().any(|outcome| outcome.commit)
            && certificates.values().any(|outcome| !outcome.commit)
        {
            violations.push(violation(
                "atomic",
                None,
                format!("bundle {id} both commits and aborts"),
            ));
        }
        let sections: BTreeSet<usize> = bundle
            .iter()
            .flat_map(|bundle| &bundle.legs)
            .flat_map(|leg| [leg.from, leg.to])
            .map(|account| network.section_index_of(&account))
            .collect();
        for elder in held.iter().filter(|elder| sections.contains(&elder.section)) {
            if !elder.outcomes.contains_key(&id) {
                let detail = format!("bundle {id} is settled at another elder but not here");
                violations.push(violation("spread", Some(&elder.name), detail));
            }
        }
    }
}

/// Recomputes every balance of the elder's section from genesis and its proofs, and checks
/// seqs, signs and the elder's own state against it.
fn check_balances(network: &Network, elder: &Held, violations: &mut Vec<Violation>) {
    let prefix = network.sections[elder.section].prefix;
    let outcomes = elder.outcomes.iter().map(|(id, outcome)| (*id, outcome)).collect();
    let recomputed = recompute(network, prefix, &elder.proofs, &outcomes);
    let balances = recomputed.balances;
    let mut seqs: BTreeMap<AccountId, BTreeSet<u64>> = BTreeMap::new();
    for proof in &elder.proofs {
        let transfer = proof.transfer();
        if prefix.matches(&transfer.from) {
            seqs.entry(transfer.from).or_default().insert(transfer.seq.0);
        }
    }
    let about = |account: AccountId, check: &'static str, detail: String| Violation {
        account: Some(account.to_string()),
        ..violation(check, Some(&elder.name), detail)
    };
    for (account, seen) in seqs {
        if seen.iter().enumerate().any(|(k, seq)| *seq != k as u64 + 1) {
            violations.push(about(account, "seqs", format!("debit seqs are {seen:?}, not 1..")));
        }
    }
    for (account, balance) in &balances {
        if *balance < 0 {
            violations.push(about(*account, "balance", format!("the proofs spend {balance}")));
        }
    }
    let Some(ledger) = &elder.ledger else { return };
    if ledger.escrow_total() != recomputed.escrow {
        let detail = format!(
            "holds {} in escrow but its locks without an outcome give {}",
            ledger.escrow_total(),
            recomputed.escrow
        );
        violations.push(violation("escrow", Some(&elder.name), detail));
    }
    let held: BTreeMap<AccountId, i128> =
        ledger.accounts().map(|(account, state)| (*account, i128::from(state.balance.0))).collect();
    for account in balances.keys().chain(held.keys()).collect::<BTreeSet<_>>() {
        let from_proofs = balances.get(account).copied().unwrap_or(0);
        let stated = held.get(account).copied().unwrap_or(0);
        if from_proofs != stated {
            let detail = format!("holds {stated} but its proofs give {from_proofs}");
            violations.push(about(*account, "balance", detail));
        }
    }
}

/// Elders of a section agree and have nothing in flight; the sections sum to the supply.
fn check_sections(network: &Network, held: &[Held], violations: &mut Vec<Violation>) {
    let mut total: u128 = 0;
    for position in 0..network.sections.len() {
        let members: Vec<(&str, &Ledger)> = held
            .iter()
            .filter(|elder| elder.section == position)
            .filter_map(|elder| Some((elder.name.as_str(), elder.ledger.as_ref()?)))
            .collect();
        for (name, ledger) in &members {
            let waiting = ledger.routing();
            if waiting > 0 {
                violations.push(violation(
                    "outbox",
                    Some(name),
                    format!("{waiting} proofs or outcomes still wait for acknowledgement"),
                ));
            }
        }
        let Some((first, reference)) = members.first() else { continue };
        for (name, ledger) in &members[1..] {
            if ledger.state_digest() != reference.state_digest() {
                violations.push(violation(
                    "agreement",
                    Some(name),
                    format!("its state digest differs from elder {first}'s"),
                ));
            }
        }
        total += reference.balance_total() + reference.escrow_total();
    }
    let supply = u128::from(network.map.supply.0);
    if total != supply {
        violations.push(violation(
            "conservation",
            None,
            format!("balances and escrow sum to {total}, the supply is {supply}"),
        ));
    }
}

/// Why a transfer must be at every elder of its payer's section and of its payee's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// A client saw it confirmed.
    Confirmed,
    /// Some elder applied its proof.
    Applied,
}

/// A transfer that must be at every elder of its payer's section and of its payee's.
struct Seen<'a> {
    why: Expected,
    from: AccountId,
    seq: u64,
    /// The account whose section credits it: the payee, or for a lock or a void the payer.
    to: AccountId,
    /// The transfer, if it is a void: an elder may hold its twin lock instead.
    void: Option<&'a SignedTransfer>,
}

/// Every confirmed transfer, and every proof applied at any elder, is applied at each elder
/// of its payer's section and of its payee's.
fn check_everywhere(
    network: &Network,
    held: &[Held],
    confirmed: &[Confirmed],
    violations: &mut Vec<Violation>,
) {
    let mut expected: BTreeMap<TransferId, Seen> = BTreeMap::new();
    for proof in held.iter().flat_map(|elder| &elder.proofs) {
        let transfer = proof.transfer();
        // A lock or a void is no credit: its payee's section holds only the outcome.
        let to = if proof.signed.bundle_leg().is_some() { transfer.from } else { transfer.to };
        let void = proof.void().map(|_| &proof.signed);
        let seen =
            Seen { why: Expected::Applied, from: transfer.from, seq: transfer.seq.0, to, void };
        expected.insert(transfer_id(&proof.signed), seen);
    }
    for transfer in confirmed {
        let (from, seq, to) = (transfer.from, transfer.seq.0, transfer.to);
        let seen = Seen { why: Expected::Confirmed, from, seq, to, void: None };
        expected.insert(transfer.transfer, seen);
    }
    for (id, Seen { why, from, seq, to, void }) in expected {
        let (payer, payee) = (network.section_index_of(&from), network.section_index_of(&to));
        for elder in held.iter().filter(|elder| elder.section == payer || elder.section == payee) {
            // An elder that applied the lock first holds it in place of the void (R13).
            let twin_held = || {
                void.is_some_and(|void| elder.proofs.iter().any(|proof| proof.signed.twin_of(void)))
            };
            if !elder.applied.contains_key(&id) && !twin_held() {
                let what = if elder.section == payer { "debited" } else { "credited" };
                let (check, detail) = match why {
                    Expected::Confirmed => {
                        ("confirmed", format!("confirmed seq {seq} is not {what} here"))
                    }
                    Expected::Applied => (
                        "spread",
                        format!("seq {seq} is applied at another elder but not {what} here"),
                    ),
                };
                violations.push(Violation {
                    account: Some(from.to_string()),
                    transfer: Some(id.to_string()),
                    ..violation(check, Some(&elder.name), detail)
                });
            }
        }
    }
}

/// At most `VIOLATIONS_SHOWN_MAX` violations of one check at one elder, then one that says
/// how many more there were (an elder that never caught up would otherwise fill the verdict
/// with one line per proof).
fn capped(violations: Vec<Violation>) -> Vec<Violation> {
    let mut shown: BTreeMap<(&'static str, Option<String>), usize> = BTreeMap::new();
    let mut kept = Vec::new();
    for found in violations {
        let count = shown.entry((found.check, found.elder.clone())).or_default();
        *count += 1;
        if *count <= VIOLATIONS_SHOWN_MAX {
            kept.push(found);
        }
    }
    for ((check, elder), count) in shown {
        if count > VIOLATIONS_SHOWN_MAX {
            let more = count - VIOLATIONS_SHOWN_MAX;
            kept.push(violation(check, elder.as_deref(), format!("and {more} more like these")));
        }
    }
    kept
}
