//! One account's state at an elder: balance, debit chain, credit-set digest, and the R1 share
//! slot.
//! Its digest is kept up to date as it changes, so answering for it costs the same at any size.

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
    /// Digest of the account's credit set (the set itself is the ledger's, one for all
    /// accounts: `Ledger::has_credit`): the XOR of each credit's domain-separated hash, so adding
    /// one costs one hash and equal sets give equal digests in any order.
    credit_set: Digest,
    /// Digest of the whole account state, kept current by `apply_*`; zero until the first.
    digest: Digest,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            balance: Amount::ZERO,
            next_seq: Seq::FIRST,
            signed: None,
            debits: Vec::new(),
            debit_head: Digest::default(),
            credit_set: Digest::default(),
            digest: Digest::default(),
        }
    }
}

impl Account {
    /// A genesis account holding `balance`.
    pub fn genesis(account: AccountId, balance: Amount) -> Account {
        let mut genesis = Account { balance, ..Account::default() };
        genesis.refresh_digest(account);
        genesis
    }

    /// The id of the applied debit at `seq`, if there is one.
    pub fn debit_at(&self, seq: Seq) -> Option<TransferId> {
        let index = usize::try_from(seq.0.checked_sub(1)?).ok()?;
        self.debits.get(index).copied()
    }

    /// Appends a checked debit of `account`: the caller verified seq and balance.
    pub fn apply_debit(&mut self, account: AccountId, id: TransferId, amount: Amount) {
        self.balance =
            self.balance.checked_sub(amount).expect("debit checked before it is applied");
        self.next_seq = self.next_seq.next().expect("seq checked before it is applied");
        self.signed = None;
        self.debits.push(id);
        self.debit_head = crypto::hash(DEBIT_CHAIN_DOMAIN, [&self.debit_head.0[..], &id.0 .0]);
        self.refresh_digest(account);
    }

    /// Closes the next seq of `account` with void `id` (R13): the slot is used, nothing is
    /// paid.
    pub fn apply_void(&mut self, account: AccountId, id: TransferId) {
        self.next_seq = self.next_seq.next().expect("seq checked before it is applied");
        self.signed = None;
        self.debits.push(id);
        self.debit_head = crypto::hash(DEBIT_CHAIN_DOMAIN, [&self.debit_head.0[..], &id.0 .0]);
        self.refresh_digest(account);
    }

    /// Puts the lock `lock` of an aborted leg in place of its void at `seq`, with its refund:
    /// the state an elder that applied the lock first (and refunded it) holds, so the two
    /// certificates of one aborted leg lead every elder to one state whichever came first.
    /// The caller adds the lock to the ledger's credit set (`Ledger::record_credit`).
    pub(super) fn upgrade_void(&mut self, account: AccountId, seq: Seq, lock: TransferId) {
        let index = usize::try_from(seq.0 - 1).expect("an applied seq");
        self.debits[index] = lock;
        self.debit_head = self.debits.iter().fold(Digest::default(), |head, id| {
            crypto::hash(DEBIT_CHAIN_DOMAIN, [&head.0[..], &id.0 .0])
        });
        xor_into(&mut self.credit_set, &crypto::hash(CREDIT_SET_DOMAIN, [&lock.0 .0[..]]));
        self.refresh_digest(account);
    }

    /// Adds a checked credit to `account`'s balance and digest: the caller verified it is new
    /// and cannot overflow, and adds it to the ledger's credit set (`Ledger::credit` does both).
    pub(super) fn apply_credit(&mut self, account: AccountId, id: TransferId, amount: Amount) {
        self.balance =
            self.balance.checked_add(amount).expect("credit checked before it is applied");
        let hashed = crypto::hash(CREDIT_SET_DOMAIN, [&id.0 .0[..]]);
        xor_into(&mut self.credit_set, &hashed);
        self.refresh_digest(account);
    }

    /// The account's state digest: equal at two elders exactly when they hold the same events.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The account as an elder reports it.
    pub fn report(&self, account: AccountId) -> AccountReport {
        AccountReport {
            account,
            balance: self.balance,
            next_seq: self.next_seq,
            digest: self.digest,
        }
    }

    fn refresh_digest(&mut self, account: AccountId) {
        self.digest = crypto::hash(
            ACCOUNT_DIGEST_DOMAIN,
            [
                &account.0[..],
                &self.balance.0.to_le_bytes(),
                &self.next_seq.0.to_le_bytes(),
                &self.debit_head.0,
                &self.credit_set.0,
            ],
        );
    }
}

/// `into ^= other`, byte by byte: how set digests are combined.
pub(crate) fn xor_into(into: &mut Digest, other: &Digest) {
    into.0.iter_mut().zip(other.0).for_each(|(byte, other)| *byte ^= other);
}
