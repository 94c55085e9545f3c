//! Applying verified proofs: the debit of this section (R3) and the credit into it (R4).
//! Each path checks everything first into locals, then commits in one step that cannot fail.

use super::account::xor_into;
use super::{Account, Ingested, Ledger, Output, ProofSource, Record};
use crate::crypto;
use crate::limits::OUTBOX_RETRY_DELAY_MS_MAX;
use crate::network::Section;
use crate::rejection::Rejection;
use crate::types::{AccountId, Authority, DebitProof, TransferId};

impl Ledger {
    /// Applies a proof that concerns this section, from any source: registration, a credit
    /// from another section, a sync page or a client's deps; an invalid signature is counted
    /// against its source. Idempotent. Returns the proof's
    /// transfer id, computed once here, when the proof is applied (now or before).
    pub(super) fn ingest(
        &mut self,
        source: ProofSource,
        proof: DebitProof,
        now_ms: u64,
        output: &mut Output,
    ) -> Result<TransferId, Rejection> {
        let prefix = self.section().prefix;
        let transfer = proof.transfer();
        let id = crypto::transfer_id(&proof.signed);
        let checked = if prefix.matches(&transfer.from) {
            self.check_debit(&proof, id)
        } else if proof.signed.bundle_leg().is_some() {
            return Err(Rejection::LockIsNoCredit { transfer: id });
        } else if prefix.matches(&transfer.to) {
            self.check_credit(&proof, id)
        } else {
            return Err(Rejection::WrongSection { account: transfer.to, prefix });
        };
        if let Err(Rejection::BadSectionSignature { .. } | Rejection::UnknownSectionKey { .. }) =
            &checked
        {
            *self.invalid_proofs.entry(source).or_default() += 1;
        }
        let outcome = checked?;
        if let Authority::Void { abort, .. } = &proof.signed.authority {
            // A void stands on its abort: the abort is applied first, so its record replays
            // before the void's (and an elder still holding the leg's escrow releases it).
            self.handle_outcome(source, abort.outcome(), now_ms, output)?;
        }
        if outcome == Ingested::Applied {
            // A proof an elder sent is applied there already: a section peer has routed it,
            // and an elder of the other section counts as an acknowledgement of this elder's
            // routing it back (`handle_proof`). This elder's own delivery (still owed, R5)
            // waits a full retry delay, so the other elders' deliveries acknowledge it before
            // it leaves, and an elder catching up spends its time applying, not re-sending
            // what the recipients hold.
            let from_elder = matches!(source, ProofSource::Elder(_));
            let due =
                if from_elder { now_ms.saturating_add(OUTBOX_RETRY_DELAY_MS_MAX) } else { now_ms };
            let outgoing = self.apply(proof.clone(), id, due);
            output.records.push(Record::Applied(proof));
            if outgoing && !from_elder {
                self.deliver(super::Routed::Proof(id), now_ms, output);
            }
        }
        Ok(id)
    }

    /// R3: a debit applies only with a valid section signature and only at the next seq.
    fn check_debit(&self, proof: &DebitProof, id: TransferId) -> Result<Ingested, Rejection> {
        let transfer = proof.transfer();
        let account = self.accounts.get(&transfer.from);
        if account.and_then(|account| account.debit_at(transfer.seq)) == Some(id) {
            return Ok(Ingested::AlreadyApplied);
        }
        self.check_signature(self.section(), proof, id)?;
        let next_seq = account.map_or(crate::types::Seq::FIRST, |account| account.next_seq);
        if transfer.seq < next_seq {
            // Only the lock and the void of one aborted leg may both be certified (R13): a
            // void after its lock changes nothing, a lock after its void takes its place.
            let applied = account.and_then(|account| account.debit_at(transfer.seq));
            let applied = applied.and_then(|applied| self.proofs.get(&applied));
            let twin = applied.is_some_and(|applied| applied.signed.twin_of(&proof.signed));
            assert!(
                twin,
                "two section-signed debits for slot ({:?}, {}): the section key is compromised",
                transfer.from, transfer.seq
            );
            let upgrade = proof.lock().is_some();
            return Ok(if upgrade { Ingested::Applied } else { Ingested::AlreadyApplied });
        }
        if transfer.seq > next_seq {
            return Err(Rejection::SeqAhead { seq: transfer.seq, next_seq });
        }
        let balance = account.map_or(crate::types::Amount::ZERO, |account| account.balance);
        if transfer.amount > balance && proof.void().is_none() {
            return Err(Rejection::MissingCredits { balance, amount: transfer.amount });
        }
        if transfer.seq.next().is_none() {
            return Err(Rejection::SeqExhausted { account: transfer.from });
        }
        if self.section().prefix.matches(&transfer.to) && proof.lock().is_none() {
            // The same-section credit lands in this elder's view, which may hold credits whose
            // debits it has not applied yet: check it too, so applying cannot overflow.
            let to_balance = match self.accounts.get(&transfer.to) {
                _ if transfer.to == transfer.from => balance.checked_sub(transfer.amount),
                Some(recipient) => Some(recipient.balance),
                None => Some(crate::types::Amount::ZERO),
            };
            if to_balance.and_then(|b| b.checked_add(transfer.amount)).is_none() {
                let (account, amount) = (transfer.to, transfer.amount);
                return Err(Rejection::BalanceOverflow { account, amount });
            }
        }
        Ok(Ingested::Applied)
    }

    /// R4: a credit applies once per transfer id, only under the sending section's key.
    fn check_credit(&self, proof: &DebitProof, id: TransferId) -> Result<Ingested, Rejection> {
        let transfer = proof.transfer();
        let account = self.accounts.get(&transfer.to);
        if self.has_credit(&transfer.to, &id) {
            return Ok(Ingested::AlreadyApplied);
        }
        self.check_signature(self.network.section_of(&transfer.from), proof, id)?;
        let balance = account.map_or(crate::types::Amount::ZERO, |account| account.balance);
        if balance.checked_add(transfer.amount).is_none() {
            let (account, amount) = (transfer.to, transfer.amount);
            return Err(Rejection::BalanceOverflow { account, amount });
        }
        Ok(Ingested::Applied)
    }

    /// Whether a stored proof fits the state it is replayed onto, so that applying it cannot
    /// break an invariant: new here, and its debit at the next seq and covered, its credit
    /// not overflowing, and it concerns this section.
    pub(super) fn replay_check(&self, proof: &DebitProof, id: TransferId) -> Result<(), String> {
        let prefix = self.section().prefix;
        let transfer = proof.transfer();
        if self.proofs.contains_key(&id) {
            return Err(format!("transfer {id} is applied twice"));
        }
        let debit = prefix.matches(&transfer.from);
        let credit = prefix.matches(&transfer.to) && proof.signed.bundle_leg().is_none();
        if !debit && !credit {
            return Err(format!("transfer {id} does not concern section {prefix}"));
        }
        let mut from_balance = None;
        if debit {
            let account = self.accounts.get(&transfer.from);
            let next_seq = account.map_or(crate::types::Seq::FIRST, |account| account.next_seq);
            let balance = account.map_or(crate::types::Amount::ZERO, |account| account.balance);
            let upgrades_void = transfer.seq < next_seq && proof.lock().is_some();
            if (transfer.seq != next_seq && !upgrades_void) || next_seq.next().is_none() {
                let seq = transfer.seq;
                return Err(format!(
                    "debit {id} is at seq {seq}, the account's next is {next_seq}"
                ));
            }
            from_balance = if proof.void().is_some() || upgrades_void {
                Some(balance)
            } else {
                Some(balance.checked_sub(transfer.amount).ok_or_else(|| {
                    format!("debit {id} of {} exceeds the balance {balance}", transfer.amount)
                })?)
            };
        }
        if credit {
            let balance = match self.accounts.get(&transfer.to) {
                _ if transfer.from == transfer.to => from_balance,
                Some(account) => Some(account.balance),
                None => Some(crate::types::Amount::ZERO),
            };
            if balance.and_then(|balance| balance.checked_add(transfer.amount)).is_none() {
                return Err(format!("credit {id} overflows the balance of {}", transfer.to));
            }
        }
        Ok(())
    }

    /// Credits checked transfer `id` to `account` (new here, and it cannot overflow): into
    /// the ledger's credit set and the account's balance and digest.
    pub(super) fn credit(
        &mut self,
        account: AccountId,
        id: TransferId,
        amount: crate::types::Amount,
    ) {
        self.record_credit(account, id);
        self.change_account(account, |state| state.apply_credit(account, id, amount));
    }

    /// Adds `(account, id)` to the credit set; the caller changes the account's digest with it.
    pub(super) fn record_credit(&mut self, account: AccountId, id: TransferId) {
        let new = self.credits.insert((account, id));
        assert!(new, "a credit is checked to be new before it is applied");
    }

    /// Changes one account and keeps the section's digest and balance total current: each
    /// account contributes its digest by XOR, so a change costs the same at any size.
    pub(super) fn change_account(&mut self, id: AccountId, change: impl FnOnce(&mut Account)) {
        let account = self.accounts.entry(id).or_default();
        let (digest_before, balance_before) = (account.digest(), account.balance);
        change(account);
        xor_into(&mut self.accounts_digest, &digest_before);
        xor_into(&mut self.accounts_digest, &account.digest());
        self.balance_total =
            self.balance_total - u128::from(balance_before.0) + u128::from(account.balance.0);
    }

    fn check_signature(
        &self,
        signer: &Section,
        proof: &DebitProof,
        id: TransferId,
    ) -> Result<(), Rejection> {
        if proof.section_key != signer.key_id {
            return Err(Rejection::UnknownSectionKey { key: proof.section_key });
        }
        let key = (id, proof.signature);
        let valid = if self.precomputed.checked.contains(&key) {
            true
        } else if self.precomputed.forged.contains(&key) {
            false
        } else {
            signer.proof_is_valid(&self.debit_message(&id), proof)
        };
        if !valid {
            return Err(Rejection::BadSectionSignature { transfer: id });
        }
        Ok(())
    }

    /// Applies a checked proof as one step (R3): the debit, the history, the credit, and for a
    /// cross-section transfer the outbox entry that routes the proof to the other section.
    /// Both directions are routed: the credit to the recipient section, and the debit back to
    /// the sender section, so a proof that reached the recipient without being registered at
    /// home still gets its debit applied and the supply stays conserved; the routing is first
    /// due at `due_ms`. Returns whether the proof was queued for routing. A lock's debit
    /// goes into escrow instead, until its bundle's outcome (R13).
    pub(super) fn apply(&mut self, proof: DebitProof, id: TransferId, due_ms: u64) -> bool {
        let prefix = self.section().prefix;
        let transfer = proof.transfer();
        let (from, to, amount) = (transfer.from, transfer.to, transfer.amount);
        if let Some((bundle, leg)) = proof.signed.bundle_leg() {
            let (bundle, seq) = (bundle.clone(), transfer.seq);
            let upgrade = self.accounts.get(&from).is_some_and(|account| account.next_seq > seq);
            if proof.void().is_some() {
                self.change_account(from, |account| account.apply_void(from, id));
                self.forget_voids(from, seq);
            } else if upgrade {
                self.record_credit(from, id);
                self.change_account(from, |account| account.upgrade_void(from, seq, id));
            } else {
                self.change_account(from, |account| account.apply_debit(from, id, amount));
                self.hold_lock(&bundle, leg, id);
            }
            self.log.push(super::Logged::Proof(id));
            self.proofs.insert(id, proof);
            self.debit_messages.pop(&id);
            return false;
        }
        let mut other_section = None;
        if prefix.matches(&from) {
            self.change_account(from, |account| account.apply_debit(from, id, amount));
        } else {
            other_section = Some(self.network.section_index_of(&from));
        }
        if prefix.matches(&to) {
            self.credit(to, id, amount);
        } else {
            other_section = Some(self.network.section_index_of(&to));
        }
        if let Some(target) = other_section {
            self.add_to_outbox(super::Routed::Proof(id), target, due_ms);
        }
        self.log.push(super::Logged::Proof(id));
        self.proofs.insert(id, proof);
        self.debit_messages.pop(&id);
        other_section.is_some()
    }
}
