//! The protocol's value types: accounts, amounts, sequence numbers, prefixes, transfers, proofs.

use std::fmt;
use std::str::FromStr;

use crdts::Dot;
use serde::{Deserialize, Serialize};

use crate::limits::{MEMO_BYTES_MAX, PREFIX_BITS_MAX};

/// A 32-byte SHA-256 digest: history heads, state digests, genesis hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &hex::encode(self.0)[..12])
    }
}

/// An account: the 32-byte ed25519 public key of its owner.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountId(pub [u8; 32]);

impl AccountId {
    /// The leading 64 bits, which decide the account's section.
    pub fn leading_bits(&self) -> u64 {
        let mut top = [0u8; 8];
        top.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(top)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &hex::encode(self.0)[..12])
    }
}

/// Why a string is not an account id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an account id is 64 hex digits (a 32-byte ed25519 public key); got {0:?}")]
pub struct AccountIdParseError(pub String);

impl FromStr for AccountId {
    type Err = AccountIdParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| AccountIdParseError(text.chars().take(80).collect()))?;
        Ok(AccountId(bytes))
    }
}

/// An amount of money in the smallest unit; arithmetic on it is checked.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Amount(pub u64);

impl Amount {
    /// Zero money.
    pub const ZERO: Amount = Amount(0);

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if it would go below zero.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An account's debit counter: the first debit has seq 1.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

impl Seq {
    /// The seq of an account's first debit.
    pub const FIRST: Seq = Seq(1);

    /// The following seq, or `None` on overflow.
    pub fn next(self) -> Option<Seq> {
        self.0.checked_add(1).map(Seq)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An elder's position in its section, 0-based; share `i` is key share `i`.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct ElderIndex(pub u32);

impl fmt::Display for ElderIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The leading `len` bits that every account of a section starts with.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Prefix {
    /// The prefix bits as an integer below `2^len`.
    pub value: u64,
    /// How many leading bits the prefix fixes.
    pub len: u8,
}

impl Prefix {
    /// The prefix that holds every account.
    pub const ROOT: Prefix = Prefix { value: 0, len: 0 };

    /// Whether the prefix is well formed: short enough and no bits past `len`.
    pub fn is_valid(&self) -> bool {
        self.len <= PREFIX_BITS_MAX && self.value >> self.len == 0
    }

    /// Whether `account` belongs to this prefix.
    pub fn matches(&self, account: &AccountId) -> bool {
        let shift = 64u32.saturating_sub(u32::from(self.len));
        self.len == 0 || account.leading_bits().checked_shr(shift) == Some(self.value)
    }

    /// Whether two prefixes share any account.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        let len = self.len.min(other.len);
        let shift = |p: &Prefix| p.value.checked_shr(u32::from(p.len - len)).unwrap_or(0);
        shift(self) == shift(other)
    }

    /// The prefixes of length `len`, in order: `2^len` sections that split every account.
    pub fn all_of_len(len: u8) -> Vec<Prefix> {
        assert!(len <= PREFIX_BITS_MAX.min(16), "prefix length {len} too long to list");
        (0..1u64 << len).map(|value| Prefix { value, len }).collect()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            return f.write_str("(root)");
        }
        write!(f, "{:0width$b}", self.value, width = usize::from(self.len))
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({self})")
    }
}

/// Free-form bytes a sender attaches to a transfer, at most `MEMO_BYTES_MAX` long.
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug, Serialize, Deserialize)]
pub struct Memo(pub Vec<u8>);

impl Memo {
    /// Whether the memo is within `MEMO_BYTES_MAX`.
    pub fn is_within_limit(&self) -> bool {
        self.0.len() <= MEMO_BYTES_MAX
    }
}

/// One account's slot for one debit: `(account, seq)` as a CRDT dot.
pub type Slot = Dot<AccountId>;

/// When a transfer may be certified, in milliseconds since the Unix epoch, by the clocks of
/// the elders that sign it (R11); either bound may be open.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug, Serialize, Deserialize)]
pub struct Window {
    /// Not before this time.
    pub valid_after: Option<u64>,
    /// Not after this time.
    pub valid_before: Option<u64>,
}

impl Window {
    /// Valid at any time.
    pub const ALWAYS: Window = Window { valid_after: None, valid_before: None };
}

/// A payment order, as the sender signs it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Transfer {
    /// The paying account.
    pub from: AccountId,
    /// The paid account.
    pub to: AccountId,
    /// How much moves; at least 1.
    pub amount: Amount,
    /// The sender's debit counter this transfer takes.
    pub seq: Seq,
    /// Free-form bytes for the recipient.
    pub memo: Memo,
    /// When elders may certify it.
    pub window: Window,
}

impl Transfer {
    /// The `(from, seq)` slot this transfer occupies.
    pub fn slot(&self) -> Slot {
        Dot::new(self.from, self.seq.0)
    }
}

/// Who controls a multi-owner account: any `threshold` of its owner keys (R10). The account
/// id is a domain-separated hash of the policy ([`crate::crypto::policy_account`]); the
/// `nonce` lets its creator choose the section it falls in.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Policy {
    /// How many distinct owners must sign a debit.
    pub threshold: u8,
    /// The owners' ed25519 public keys, sorted, distinct, at most `OWNERS_MAX`.
    pub owners: Vec<AccountId>,
    /// Free bits that move the account id.
    pub nonce: u64,
}

/// One owner's signature over a transfer from a multi-owner account.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OwnerSignature {
    /// The owner's position in the policy's owner list.
    pub owner: u8,
    /// Its signature over the transfer's signing bytes.
    pub signature: ed25519_dalek::Signature,
}

/// One payment of a bundle: `from` pays `to` at its debit counter `seq`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Leg {
    /// The paying account.
    pub from: AccountId,
    /// The paid account.
    pub to: AccountId,
    /// How much moves; at least 1.
    pub amount: Amount,
    /// The payer's debit counter the leg's lock takes.
    pub seq: Seq,
}

/// An atomic multi-party transfer (R12, R13): every leg is paid or none is. Each leg's
/// section locks the leg's amount before `deadline_ms` (its clock); the `referee` section
/// decides commit or abort; the outcome settles every leg.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Bundle {
    /// The legs, at most `LEGS_MAX`, each from a different account.
    pub legs: Vec<Leg>,
    /// Locks are signed only before this time, in ms since the Unix epoch; after it (and the
    /// allowed clock skew) the referee decides abort unless every leg was locked.
    pub deadline_ms: u64,
    /// The section that decides the outcome.
    pub referee: Prefix,
    /// Free bits, so the same legs can be bundled twice.
    pub nonce: u64,
}

impl Bundle {
    /// The transfer that locks leg `leg`: its amount leaves the payer's balance into escrow.
    pub fn lock_transfer(&self, leg: usize) -> Option<Transfer> {
        let leg = self.legs.get(leg)?;
        Some(Transfer {
            from: leg.from,
            to: leg.to,
            amount: leg.amount,
            seq: leg.seq,
            memo: Memo::default(),
            window: Window::ALWAYS,
        })
    }
}

/// The identity of a bundle: a hash over its encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BundleId(pub Digest);

impl fmt::Display for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for BundleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BundleId({:?})", self.0)
    }
}

/// The referee section's certified decision on a bundle (R12): anyone holding the referee's
/// key can check it. A commit carries every leg's lock certificate, in leg order, so each
/// section can settle from it alone.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OutcomeCertificate {
    /// The bundle decided.
    pub bundle: Bundle,
    /// Commit (every leg is paid) or abort (every escrow returns to its payer).
    pub commit: bool,
    /// The referee's section key.
    pub section_key: SectionKeyId,
    /// The referee's combined BLS signature over the outcome.
    pub signature: BlsSignature,
    /// On commit, the lock certificate of every leg; empty on abort.
    pub locks: Vec<DebitProof>,
}

/// The referee's certified abort of a bundle, as a void carries it: the outcome without
/// locks, so no transfer type contains itself (a decoder never recurses deeper than this).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AbortCertificate {
    /// The bundle aborted.
    pub bundle: Bundle,
    /// The referee's section key.
    pub section_key: SectionKeyId,
    /// The referee's combined BLS signature over the abort.
    pub signature: BlsSignature,
}

impl AbortCertificate {
    /// The abort of an outcome certificate, if it is one.
    pub fn of(outcome: &OutcomeCertificate) -> Option<AbortCertificate> {
        (!outcome.commit).then(|| AbortCertificate {
            bundle: outcome.bundle.clone(),
            section_key: outcome.section_key,
            signature: outcome.signature,
        })
    }

    /// The outcome certificate it is.
    pub fn outcome(&self) -> OutcomeCertificate {
        OutcomeCertificate {
            bundle: self.bundle.clone(),
            commit: false,
            section_key: self.section_key,
            signature: self.signature,
            locks: Vec::new(),
        }
    }
}

/// What shows that a bundle's payer countersigned it: its key's signature over the bundle's
/// id, or exactly `threshold` of its policy's owners' signatures, in owner order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum PayerAuthority {
    /// The payer is an ed25519 key, and this is its signature.
    Key(ed25519_dalek::Signature),
    /// The payer is a policy: the policy and its owners' signatures.
    Policy {
        /// The policy whose id is the paying account.
        policy: Policy,
        /// The owners' signatures.
        signatures: Vec<OwnerSignature>,
    },
}

/// What shows that the paying account's owner(s) want a transfer.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Authority {
    /// The account is an ed25519 key, and this is its signature.
    Key(ed25519_dalek::Signature),
    /// The account is a policy: the policy and exactly `threshold` owner signatures, in
    /// owner order.
    Policy {
        /// The policy whose id is the paying account.
        policy: Policy,
        /// The owners' signatures.
        signatures: Vec<OwnerSignature>,
    },
    /// The transfer locks leg `leg` of a bundle ([`Bundle::lock_transfer`]): the payer's
    /// authority signs the bundle's id.
    Bundle {
        /// The bundle.
        bundle: Box<Bundle>,
        /// Which leg this transfer locks.
        leg: u8,
        /// The payer's signature(s) over the bundle.
        payer: PayerAuthority,
    },
    /// The transfer voids leg `leg` of an aborted bundle (R13): the leg's slot is used and
    /// nothing is paid. The referee's abort and the payer's countersignature of the bundle
    /// (so no one else can use up a payer's seq) authorise it; its section certifies it by
    /// itself, to close a slot where some elders signed the leg's lock.
    Void {
        /// The abort certificate.
        abort: Box<AbortCertificate>,
        /// The leg whose slot it closes.
        leg: u8,
        /// The payer's signature(s) over the bundle, as its lock carried them.
        payer: PayerAuthority,
    },
}

/// A transfer with what authorises it: its sender's signature, or its owners'.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedTransfer {
    /// What is signed.
    pub transfer: Transfer,
    /// The signature(s) over the transfer's domain-separated signing bytes.
    pub authority: Authority,
}

/// The identity of a signed transfer: a hash over its encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransferId(pub Digest);

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransferId({:?})", self.0)
    }
}

/// Names a section public key: a hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct SectionKeyId(pub Digest);

/// A BLS signature or signature share (a compressed G1 point), kept as bytes on the wire: it is
/// decompressed and checked to lie in the group only when it is verified, so the many copies
/// of a proof that arrive and turn out to be known already cost no curve arithmetic.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlsSignature(#[serde(with = "serde_big_array::BigArray")] pub [u8; BlsSignature::LEN]);

impl BlsSignature {
    /// Bytes of a compressed G1 point.
    pub const LEN: usize = 48;
}

impl fmt::Debug for BlsSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlsSignature({})", &hex::encode(self.0)[..12])
    }
}

/// A signed transfer certified by its sender section: anyone holding the section key can check it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DebitProof {
    /// The certified transfer.
    pub signed: SignedTransfer,
    /// The section key that signed.
    pub section_key: SectionKeyId,
    /// The combined BLS section signature over the transfer's debit signing bytes.
    pub signature: BlsSignature,
}

impl DebitProof {
    /// The certified transfer.
    pub fn transfer(&self) -> &Transfer {
        &self.signed.transfer
    }

    /// The bundle and leg, if this proof certifies a lock rather than a payment.
    pub fn lock(&self) -> Option<(&Bundle, u8)> {
        self.signed.lock()
    }

    /// The bundle and leg, if this proof certifies a void.
    pub fn void(&self) -> Option<(&Bundle, u8)> {
        self.signed.void()
    }
}

impl SignedTransfer {
    /// The bundle and leg, if this transfer is a lock rather than a payment.
    pub fn lock(&self) -> Option<(&Bundle, u8)> {
        match &self.authority {
            Authority::Bundle { bundle, leg, .. } => Some((bundle, *leg)),
            _ => None,
        }
    }

    /// The bundle and leg, if this transfer voids a leg.
    pub fn void(&self) -> Option<(&Bundle, u8)> {
        match &self.authority {
            Authority::Void { abort, leg, .. } => Some((&abort.bundle, *leg)),
            _ => None,
        }
    }

    /// The bundle and leg this transfer locks or voids, if either: it is never a credit.
    pub fn bundle_leg(&self) -> Option<(&Bundle, u8)> {
        self.lock().or_else(|| self.void())
    }

    /// Whether this and `other` are the lock and the void of one aborted leg: the only two
    /// transfers that may both be certified at one slot (R13).
    pub fn twin_of(&self, other: &SignedTransfer) -> bool {
        self.bundle_leg().is_some()
            && self.bundle_leg() == other.bundle_leg()
            && self.lock().is_some() != other.lock().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account_starting_with(byte: u8) -> AccountId {
        let mut bytes = [0u8; 32];
        bytes[0] = byte;
        AccountId(bytes)
    }

    #[test]
    fn prefix_matches_leading_bits() {
        let one = Prefix { value: 1, len: 1 };
        assert!(one.matches(&account_starting_with(0b1000_0000)));
        assert!(!one.matches(&account_starting_with(0b0111_1111)));
        assert!(Prefix::ROOT.matches(&account_starting_with(0xff)));
        let two = Prefix { value: 0b10, len: 2 };
        assert!(two.matches(&account_starting_with(0b1011_0000)));
        assert!(!two.matches(&account_starting_with(0b1100_0000)));
    }

    #[test]
    fn prefixes_overlap_only_when_one_extends_the_other() {
        let zero = Prefix { value: 0, len: 1 };
        let zero_one = Prefix { value: 0b01, len: 2 };
        let one = Prefix { value: 1, len: 1 };
        assert!(zero.overlaps(&zero_one));
        assert!(zero_one.overlaps(&zero));
        assert!(!one.overlaps(&zero_one));
        assert!(Prefix::ROOT.overlaps(&one));
    }

    #[test]
    fn prefix_with_bits_past_its_length_is_invalid() {
        assert!(!Prefix { value: 2, len: 1 }.is_valid());
        assert!(!Prefix { value: 0, len: PREFIX_BITS_MAX + 1 }.is_valid());
        assert!(Prefix { value: 1, len: 1 }.is_valid());
    }

    #[test]
    fn account_id_parses_64_hex_digits_only() {
        let id = account_starting_with(0xab);
        assert_eq!(id.to_string().parse::<AccountId>(), Ok(id));
        assert!("abc".parse::<AccountId>().is_err());
        assert!("zz".repeat(32).parse::<AccountId>().is_err());
    }

    #[test]
    fn checked_arithmetic_refuses_overflow_and_underflow() {
        assert_eq!(Amount(u64::MAX).checked_add(Amount(1)), None);
        assert_eq!(Amount(1).checked_sub(Amount(2)), None);
        assert_eq!(Seq(u64::MAX).next(), None);
        assert_eq!(Seq(1).next(), Some(Seq(2)));
    }
}
