//! The account's own side: the id a key controls, building its next signed transfer, and what
//! a wallet remembers between runs (next seq, the transfer in flight, its latest debit proofs)
//! with the rules for changing it. Writing it to disk is the shell's job; the drivers say when.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use super::multisig::{MultisigError, PartialTransfer};
use crate::crypto;
use crate::limits::DEPS_MAX;
use crate::network::Network;
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Amount, DebitProof, Digest, Memo, Policy, Seq, SignedTransfer, Transfer, Window,
};

/// The account an ed25519 key controls.
pub fn account_id(key: &SigningKey) -> AccountId {
    AccountId(key.verifying_key().to_bytes())
}

/// What signs an account's transfers: its key, or enough of its owners' keys held together
/// (a custodian of a multi-owner account; owners on different machines pass a
/// [`PartialTransfer`] round instead).
#[derive(Clone, Debug)]
pub enum Signer {
    /// The account's own key.
    Key(SigningKey),
    /// `threshold` distinct owners' keys of the policy.
    Owners {
        /// The account's policy.
        policy: Policy,
        /// The keys that sign, each an owner, as many as the threshold.
        keys: Vec<SigningKey>,
    },
}

impl Signer {
    /// A signer of the policy's account from owner keys: the first `threshold` distinct
    /// owners among `keys`.
    pub fn owners(policy: Policy, keys: Vec<SigningKey>) -> Result<Signer, MultisigError> {
        if crypto::policy_account(&policy).is_none() {
            let owners = policy.owners.len() as u64;
            return Err(MultisigError::Shape { threshold: policy.threshold.into(), owners });
        }
        let need = usize::from(policy.threshold);
        let mut chosen: Vec<SigningKey> = Vec::new();
        for key in keys {
            let id = account_id(&key);
            let fresh = chosen.iter().all(|known| account_id(known) != id);
            if chosen.len() < need && fresh && policy.owners.contains(&id) {
                chosen.push(key);
            }
        }
        if chosen.len() < need {
            return Err(MultisigError::Missing { have: chosen.len() as u64, need: need as u64 });
        }
        Ok(Signer::Owners { policy, keys: chosen })
    }

    /// The account it signs for.
    pub fn account(&self) -> AccountId {
        match self {
            Signer::Key(key) => account_id(key),
            Signer::Owners { policy, .. } => {
                crypto::policy_account(policy).expect("a signer's policy is well formed")
            }
        }
    }

    /// Signs `transfer` on the network `genesis`.
    pub fn sign(&self, genesis: &Digest, transfer: Transfer) -> SignedTransfer {
        match self {
            Signer::Key(key) => crypto::sign_transfer(key, genesis, transfer),
            Signer::Owners { policy, keys } => {
                let mut partial = PartialTransfer::new(policy.clone(), transfer)
                    .expect("a signer signs its own account's transfers");
                for key in keys {
                    partial.sign(key, genesis).expect("a signer's keys are distinct owners");
                }
                partial.complete().expect("a signer holds the threshold")
            }
        }
    }

    /// Builds and signs the transfer of `payment` at `seq` ([`new_transfer`]).
    pub fn build(
        &self,
        network: &Network,
        payment: Payment,
        seq: Seq,
    ) -> Result<SignedTransfer, Rejection> {
        Ok(self.sign(&network.genesis, new_transfer(self.account(), payment, seq)?))
    }
}

/// What a sender asks to pay: the parts of a transfer the account does not fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The recipient.
    pub to: AccountId,
    /// The amount.
    pub amount: Amount,
    /// The memo.
    pub memo: Memo,
    /// When it may be certified.
    pub window: Window,
}

impl Payment {
    /// `amount` to `to`, with no memo, valid at any time.
    pub fn new(to: AccountId, amount: Amount) -> Payment {
        Payment { to, amount, memo: Memo::default(), window: Window::ALWAYS }
    }
}

/// The transfer of `payment` from `from` at `seq`, refusing locally what every honest elder
/// would refuse whatever its state.
pub fn new_transfer(from: AccountId, payment: Payment, seq: Seq) -> Result<Transfer, Rejection> {
    let Payment { to, amount, memo, window } = payment;
    crate::messages::check_memo(&memo)?;
    crate::messages::check_window_shape(&window)?;
    if amount == Amount::ZERO {
        return Err(Rejection::ZeroAmount);
    }
    if from == to {
        return Err(Rejection::SelfTransfer { account: from });
    }
    if !crypto::is_account_key(&to.0) {
        return Err(Rejection::InvalidRecipient { to });
    }
    Ok(Transfer { from, to, amount, seq, memo, window })
}

/// Builds and signs the transfer of `payment` from `key`'s account at `seq`
/// ([`new_transfer`]).
pub fn build_transfer(
    key: &SigningKey,
    network: &Network,
    payment: Payment,
    seq: Seq,
) -> Result<SignedTransfer, Rejection> {
    Ok(crypto::sign_transfer(key, &network.genesis, new_transfer(account_id(key), payment, seq)?))
}

/// What a wallet remembers between runs. A transfer in flight is written before it is sent,
/// so a client that crashes resumes it instead of signing a conflicting one (R9).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletState {
    next_seq: Seq,
    pending: Option<SignedTransfer>,
    recent: Vec<DebitProof>,
}

impl WalletState {
    /// The lowest seq the next transfer may take, as far as this wallet knows.
    pub fn next_seq(&self) -> Seq {
        self.next_seq.max(Seq::FIRST)
    }

    /// The transfer signed and possibly sent but not yet registered.
    pub fn pending(&self) -> Option<&SignedTransfer> {
        self.pending.as_ref()
    }

    /// The latest own debit proofs, for elders that lag behind.
    pub fn recent(&self) -> &[DebitProof] {
        &self.recent
    }

    /// A state holding only `proofs`, for certifying or registering without a wallet.
    pub fn with_deps(proofs: &[DebitProof]) -> WalletState {
        WalletState { recent: proofs.to_vec(), ..WalletState::default() }
    }

    /// Records a transfer as in flight (or none).
    pub fn set_pending(&mut self, pending: Option<SignedTransfer>) {
        self.pending = pending;
    }

    /// Records a registered debit: the seq moves past it and nothing is in flight.
    pub fn finish(&mut self, proof: DebitProof) {
        let seq = proof.transfer().seq;
        self.next_seq = self.next_seq().max(Seq(seq.0.saturating_add(1)));
        self.pending = None;
        self.recent.retain(|known| known.transfer().seq != seq);
        self.recent.push(proof);
        let excess = self.recent.len().saturating_sub(DEPS_MAX);
        self.recent.drain(..excess);
    }

    /// Moves the next seq up to what the section reports.
    pub fn observe_next_seq(&mut self, next_seq: Seq) {
        self.next_seq = self.next_seq().max(next_seq);
    }

    /// What the account can spend at its next seq, given the balance and next seq `f + 1`
    /// elders agree on: their balance less the wallet's own debits they have not applied yet.
    /// At least one of them is honest and lacks no debit counted here, so every honest elder
    /// will come to hold at least this much (credits only add). `None` when they lag by more
    /// debits than the wallet keeps: ask again.
    pub fn spendable(&self, balance: Amount, next_seq: Seq) -> Option<Amount> {
        let unapplied = self.recent.iter().filter(|proof| proof.transfer().seq >= next_seq);
        let behind = self.next_seq().0.saturating_sub(next_seq.0);
        if unapplied.clone().count() as u64 != behind {
            return None;
        }
        let mut debits = unapplied.map(|proof| proof.transfer().amount);
        let owed = debits.try_fold(Amount::ZERO, |sum, amount| sum.checked_add(amount));
        Some(owed.and_then(|owed| balance.checked_sub(owed)).unwrap_or_default())
    }

    /// The own debits an elder lacks, by its `SeqAhead` answer.
    pub fn deps_for(&self, rejection: &Rejection) -> Vec<DebitProof> {
        match rejection {
            Rejection::SeqAhead { next_seq, .. } => {
                let lacking = self.recent.iter().filter(|proof| proof.transfer().seq >= *next_seq);
                lacking.cloned().collect()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::fixtures::{Fixture, HOME};

    #[test]
    fn build_transfer_refuses_what_every_honest_elder_would_refuse() {
        let fx = Fixture::new(70);
        let (key, to) = (&fx.faucet, fx.account_in(HOME));
        let build = |to, amount, memo: Vec<u8>| {
            let payment = Payment { memo: Memo(memo), ..Payment::new(to, Amount(amount)) };
            build_transfer(key, &fx.network, payment, Seq(1))
        };
        let long = vec![0; crate::limits::MEMO_BYTES_MAX + 1];
        let max = crate::limits::MEMO_BYTES_MAX as u64;
        assert_eq!(build(to, 5, long), Err(Rejection::MemoTooLong { bytes: max + 1, max }));
        assert_eq!(build(to, 0, vec![]), Err(Rejection::ZeroAmount));
        let me = account_id(key);
        assert_eq!(build(me, 5, vec![]), Err(Rejection::SelfTransfer { account: me }));
        let weak = AccountId([0; 32]);
        assert_eq!(build(weak, 5, vec![]), Err(Rejection::InvalidRecipient { to: weak }));
        let signed = build(to, 5, b"rent".to_vec()).unwrap();
        assert!(crypto::account_signature_is_valid(&fx.genesis(), &signed));
        let window = Window { valid_after: Some(10), valid_before: Some(9) };
        let empty = build_transfer(
            key,
            &fx.network,
            Payment { window, ..Payment::new(to, Amount(5)) },
            Seq(1),
        );
        assert_eq!(empty, Err(Rejection::EmptyWindow { valid_after: 10, valid_before: 9 }));
    }

    #[test]
    fn spendable_subtracts_debits_the_agreeing_elders_lack_and_waits_when_it_cannot_tell() {
        let fx = Fixture::new(72);
        let to = fx.account_in(HOME);
        let mut wallet = WalletState::default();
        for seq in 1..=3 {
            wallet.finish(fx.certify(fx.signed(&fx.faucet, to, 10 * seq, seq)));
        }
        assert_eq!(wallet.next_seq(), Seq(4));
        assert_eq!(wallet.spendable(Amount(100), Seq(4)), Some(Amount(100)), "all applied");
        assert_eq!(wallet.spendable(Amount(100), Seq(3)), Some(Amount(70)), "seq 3 unapplied");
        assert_eq!(wallet.spendable(Amount(40), Seq(2)), Some(Amount(0)), "never below zero");
        wallet.recent.remove(0);
        assert_eq!(wallet.spendable(Amount(100), Seq(1)), None, "seq 1 is no longer kept");
    }
}
