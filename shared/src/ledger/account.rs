//! One account's state at an elder: balance, debit chain, credit set, and the R1 share slot.

use crdts::GSet;

use crate::crypto::{self, ACCOUNT_DIGEST_DOMAIN, CREDIT_SET_DOMAIN, DEBIT_CHAIN_DOMAIN};
use crate::messages::AccountReport;
use crate::types::{AccountId, Amount, Digest, Seq, SignedTransfer, TransferId};

/// An account as one elder holds it.
#[derive(Clone, Debug)]
pub struct Account {
    /// Current balance.
    pub balance: Amount,
    /// The seq the next debit takes.
    pub next_seq: Seq,
    /// The transfer this elder signed a share for at `next_seq`, if any (R1); boxed, so an
    /// account without one takes a pointer, not a whole transfer.
    pub signed: Option<Box<SignedTransfer>>,
    /// Applied debits; the one at seq `s` is at index `s − 1`.
    pub debits: Vec<TransferId>,
    /// Hash chain over the applied debits, in seq order.
    pub debit_head: Digest,
    /// Applied credits, each exactly once.
    pub credits: GSet<TransferId>,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            balance: Amount::ZERO,
            next_seq: Seq::FIRST,
            signed: None,
            debits: Vec::new(),
            debit_head: Digest::default(),
            credits: GSet::new(),
        }
    }
}

impl Account {
    /// The id of the applied debit at `seq`, if there is one.
    pub fn debit_at(&self, seq: Seq) -> Option<TransferId> {
        let index = usize::try_from(seq.0.checked_sub(1)?).ok()?;
        self.debits.get(index).copied()
    }

    /// Appends a checked debit: the caller verified seq and balance.
    pub fn apply_debit(&mut self, id: TransferId, amount: Amount) {
        self.balance = self.balance.checked_sub(amount).expect("debit checked before commit");
        self.next_seq = self.next_seq.next().expect("seq checked before commit");
        self.signed = None;
        self.debits.push(id);
        self.debit_head = crypto::hash(DEBIT_CHAIN_DOMAIN, [&self.debit_head.0[..], &id.0 .0]);
    }

    /// Adds a checked credit: the caller verified it is new and cannot overflow.
    pub fn apply_credit(&mut self, id: TransferId, amount: Amount) {
        self.balance = self.balance.checked_add(amount).expect("credit checked before commit");
        self.credits.insert(id);
    }

    /// The account's state digest: equal at two elders exactly when they hold the same events.
    pub fn report(&self, account: AccountId) -> AccountReport {
        let credit_ids = self.credits.read();
        let credit_set = crypto::hash(CREDIT_SET_DOMAIN, credit_ids.iter().map(|id| &id.0 .0[..]));
        let digest = crypto::hash(
            ACCOUNT_DIGEST_DOMAIN,
            [
                &account.0[..],
                &self.balance.0.to_le_bytes(),
                &self.next_seq.0.to_le_bytes(),
                &self.debit_head.0,
                &credit_set.0,
            ],
        );
        AccountReport { account, balance: self.balance, next_seq: self.next_seq, digest }
    }
}
