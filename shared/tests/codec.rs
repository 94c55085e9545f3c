//! The codec: every value round-trips, and no input, however hostile, makes the decoder panic,
//! allocate what a length prefix claims, or accept trailing or oversize bytes (R7).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use common::{keys, samples};
use shared::codec::{self, CodecError};
use shared::ledger::Record;
use shared::limits::{MEMO_BYTES_MAX, MESSAGE_BYTES_MAX, OWNERS_MAX};
use shared::messages::{
    AccountReport, ClientReply, ClientRequest, HistoryPage, PeerMessage, SyncEntry,
};
use shared::network::{Network, NetworkMap};
use shared::rejection::Rejection;
use shared::types::{
    AccountId, Amount, Authority, BlsSignature, DebitProof, Digest, ElderIndex, Memo,
    OwnerSignature, Policy, Prefix, SectionKeyId, Seq, SignedTransfer, Transfer, TransferId,
    Window,
};

/// The most serde reserves up front for a sequence whatever length it claims (its "cautious"
/// size hint); decoding then fails at the first missing element and frees it.
const PREALLOCATION_BYTES_MAX: usize = 1 << 20;

// The largest single allocation this thread asked for, to show what a hostile length costs.
thread_local! {
    static LARGEST_ALLOCATION: Cell<usize> = const { Cell::new(0) };
}

struct TrackingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down may still allocate.
        let _ =
            LARGEST_ALLOCATION.try_with(|largest| largest.set(largest.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_allocation_during(f: impl FnOnce()) -> usize {
    LARGEST_ALLOCATION.with(|largest| largest.set(0));
    f();
    LARGEST_ALLOCATION.with(Cell::get)
}

// Strategies. BLS values come from small pools signed once by the seeded section keys.

fn bytes32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn account() -> impl Strategy<Value = AccountId> {
    bytes32().prop_map(AccountId)
}

fn transfer_id() -> impl Strategy<Value = TransferId> {
    bytes32().prop_map(|bytes| TransferId(Digest(bytes)))
}

fn memo() -> impl Strategy<Value = Memo> {
    // Past the limit too: the codec carries what the ledger then refuses.
    vec(any::<u8>(), 0..=MEMO_BYTES_MAX + 8).prop_map(Memo)
}

fn window() -> impl Strategy<Value = Window> {
    (any::<Option<u64>>(), any::<Option<u64>>())
        .prop_map(|(valid_after, valid_before)| Window { valid_after, valid_before })
}

fn transfer() -> impl Strategy<Value = Transfer> {
    (account(), account(), any::<u64>(), any::<u64>(), memo(), window()).prop_map(
        |(from, to, amount, seq, memo, window)| Transfer {
            from,
            to,
            amount: Amount(amount),
            seq: Seq(seq),
            memo,
            window,
        },
    )
}

fn ed25519_signature() -> impl Strategy<Value = ed25519_dalek::Signature> {
    (bytes32(), bytes32()).prop_map(|(r, s)| {
        ed25519_dalek::Signature::from_bytes(&[r, s].concat().try_into().unwrap())
    })
}

fn authority() -> impl Strategy<Value = Authority> {
    // Past the owner limit too: the codec carries what the bounds check then refuses.
    let owner = (any::<u8>(), ed25519_signature())
        .prop_map(|(owner, signature)| OwnerSignature { owner, signature });
    let policy = (any::<u8>(), vec(account(), 0..=OWNERS_MAX + 2), any::<u64>())
        .prop_map(|(threshold, owners, nonce)| Policy { threshold, owners, nonce });
    prop_oneof![
        ed25519_signature().prop_map(Authority::Key),
        (policy, vec(owner, 0..=OWNERS_MAX + 2))
            .prop_map(|(policy, signatures)| Authority::Policy { policy, signatures }),
    ]
}

fn signed_transfer() -> impl Strategy<Value = SignedTransfer> {
    (transfer(), authority())
        .prop_map(|(transfer, authority)| SignedTransfer { transfer, authority })
}

/// Section signatures and shares over a few transfers, from both sections' seeded keys.
fn bls_pool() -> &'static (Vec<BlsSignature>, Vec<BlsSignature>) {
    static POOL: OnceLock<(Vec<BlsSignature>, Vec<BlsSignature>)> = OnceLock::new();
    POOL.get_or_init(|| {
        let keys = keys();
        let signed: Vec<SignedTransfer> = (1..=3).map(|seq| keys.signed(seq, seq, b"")).collect();
        let signatures = signed
            .iter()
            .flat_map(|s| [0, 1].map(|section| keys.proof(section, s.clone()).signature));
        let shares = signed.iter().flat_map(|s| [0, 3].map(|elder| keys.share(1, elder, s)));
        (signatures.collect(), shares.collect())
    })
}

/// A BLS signature or share: a genuine one from `pool`, or any 48 bytes (the wire carries
/// them unchecked; only verification decompresses them).
fn bls_signature(pool: &[BlsSignature]) -> impl Strategy<Value = BlsSignature> {
    let any_bytes = vec(any::<u8>(), BlsSignature::LEN)
        .prop_map(|bytes| BlsSignature(bytes.try_into().unwrap()));
    prop_oneof![select(pool.to_vec()), any_bytes]
}

fn debit_proof() -> impl Strategy<Value = DebitProof> {
    let signatures = bls_signature(&bls_pool().0);
    (signed_transfer(), bytes32(), signatures).prop_map(|(signed, key, signature)| DebitProof {
        signed,
        section_key: SectionKeyId(Digest(key)),
        signature,
    })
}

fn proofs() -> impl Strategy<Value = Vec<DebitProof>> {
    vec(debit_proof(), 0..3)
}

fn prefix() -> impl Strategy<Value = Prefix> {
    (any::<u64>(), any::<u8>()).prop_map(|(value, len)| Prefix { value, len })
}

fn client_request() -> impl Strategy<Value = ClientRequest> {
    prop_oneof![
        (signed_transfer(), proofs())
            .prop_map(|(transfer, deps)| ClientRequest::Validate { transfer, deps }),
        (debit_proof(), proofs()).prop_map(|(proof, deps)| ClientRequest::Register { proof, deps }),
        account().prop_map(|account| ClientRequest::Balance { account }),
        (account(), any::<u64>(), proptest::option::of(transfer_id())).prop_map(
            |(account, seq, credits_after)| ClientRequest::History {
                account,
                debits_from: Seq(seq),
                credits_after,
            }
        ),
    ]
}

fn rejection() -> impl Strategy<Value = Rejection> {
    let amounts = (any::<u64>(), any::<u64>()).prop_map(|(a, b)| (Amount(a), Amount(b)));
    let seqs = (any::<u64>(), any::<u64>()).prop_map(|(a, b)| (Seq(a), Seq(b)));
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(bytes, max)| Rejection::MemoTooLong { bytes, max }),
        (any::<u64>(), any::<u64>()).prop_map(|(count, max)| Rejection::TooManyDeps { count, max }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(count, max)| Rejection::TooManyProofs { count, max }),
        (account(), prefix())
            .prop_map(|(account, prefix)| Rejection::WrongSection { account, prefix }),
        account().prop_map(|account| Rejection::BadAccountSignature { account }),
        account().prop_map(|to| Rejection::InvalidRecipient { to }),
        account().prop_map(|account| Rejection::SelfTransfer { account }),
        Just(Rejection::ZeroAmount),
        seqs.clone().prop_map(|(seq, next_seq)| Rejection::StaleSeq { seq, next_seq }),
        seqs.prop_map(|(seq, next_seq)| Rejection::SeqAhead { seq, next_seq }),
        account().prop_map(|account| Rejection::SeqExhausted { account }),
        (signed_transfer(), transfer()).prop_map(|(rival, asked)| Rejection::Conflict {
            slot: asked.slot(),
            rival: Box::new(rival),
        }),
        amounts
            .clone()
            .prop_map(|(balance, amount)| Rejection::InsufficientFunds { balance, amount }),
        amounts.prop_map(|(balance, amount)| Rejection::MissingCredits { balance, amount }),
        bytes32().prop_map(|key| Rejection::UnknownSectionKey { key: SectionKeyId(Digest(key)) }),
        transfer_id().prop_map(|transfer| Rejection::BadSectionSignature { transfer }),
        (account(), any::<u64>()).prop_map(|(account, amount)| Rejection::BalanceOverflow {
            account,
            amount: Amount(amount),
        }),
        any::<u64>().prop_map(|pending| Rejection::OutboxFull { section: Prefix::ROOT, pending }),
        account().prop_map(|account| Rejection::PolicyMismatch { account }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(count, threshold)| Rejection::OwnerSignatures { count, threshold }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(count, max)| Rejection::TooManyOwners { count, max }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(valid_after, early_ms)| Rejection::TooEarly { valid_after, early_ms }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(valid_before, late_ms)| Rejection::Expired { valid_before, late_ms }),
        (any::<u64>(), any::<u64>()).prop_map(|(valid_after, valid_before)| {
            Rejection::EmptyWindow { valid_after, valid_before }
        }),
    ]
}

fn client_reply() -> impl Strategy<Value = ClientReply> {
    let shares = bls_signature(&bls_pool().1);
    let report = (account(), any::<u64>(), any::<u64>(), bytes32()).prop_map(
        |(account, balance, next_seq, digest)| AccountReport {
            account,
            balance: Amount(balance),
            next_seq: Seq(next_seq),
            digest: Digest(digest),
        },
    );
    prop_oneof![
        (transfer_id(), shares)
            .prop_map(|(transfer, share)| ClientReply::Share { transfer, share }),
        transfer_id().prop_map(|transfer| ClientReply::Registered { transfer }),
        report.prop_map(ClientReply::Balance),
        (account(), proofs(), proofs()).prop_map(|(account, debits, credits)| {
            ClientReply::History(HistoryPage { account, debits, credits })
        }),
        rejection().prop_map(ClientReply::Rejected),
    ]
}

fn peer_message() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        debit_proof().prop_map(|proof| PeerMessage::Proof { proof }),
        transfer_id().prop_map(|transfer| PeerMessage::ProofAck { transfer }),
        any::<u64>().prop_map(|position| PeerMessage::SyncRequest { position }),
        (proofs(), any::<u64>()).prop_map(|(proofs, next_position)| PeerMessage::SyncReply {
            entries: proofs.into_iter().map(SyncEntry::Proof).collect(),
            next_position
        }),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        signed_transfer().prop_map(Record::Signed),
        debit_proof().prop_map(Record::Applied),
        (any::<u32>(), any::<u64>())
            .prop_map(|(elder, position)| Record::Synced { elder: ElderIndex(elder), position }),
        (transfer_id(), any::<u32>())
            .prop_map(|(transfer, elder)| Record::Acked { transfer, elder: ElderIndex(elder) }),
    ]
}

/// Encodes `value` and decodes it back as the same type.
fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    codec::decode(&codec::encode(value).expect("encodes")).expect("decodes its own encoding")
}

/// Decodes `bytes` as every wire type; reaching the end means nothing panicked. A map that
/// decodes is also validated, since a node does that next with the same untrusted bytes.
fn decode_as_everything(bytes: &[u8]) {
    let _ = codec::decode::<ClientRequest>(bytes);
    let _ = codec::decode::<ClientReply>(bytes);
    let _ = codec::decode::<PeerMessage>(bytes);
    let _ = codec::decode::<Record>(bytes);
    if let Ok(map) = codec::decode::<NetworkMap>(bytes) {
        let _ = Network::new(map);
    }
}

/// A change to a valid encoding.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR the byte at this position (modulo the length) with a non-zero mask.
    Flip(usize, u8),
    /// Keep only this many bytes (modulo the length).
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
    /// Overwrite eight bytes from this position with a little-endian u64, as a length would be.
    Length(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let length = prop_oneof![Just(u64::MAX), Just(u64::from(u32::MAX)), any::<u64>(), 0..4096u64];
    prop_oneof![
        (any::<usize>(), 1..=u8::MAX).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        any::<usize>().prop_map(Mutation::Truncate),
        vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
        (any::<usize>(), length).prop_map(|(at, length)| Mutation::Length(at, length)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    match mutation {
        Mutation::Flip(at, mask) => bytes[at % len] ^= mask,
        Mutation::Truncate(keep) => bytes.truncate(keep % len),
        Mutation::Extend(extra) => bytes.extend(extra),
        Mutation::Length(at, length) => {
            let at = at % len.saturating_sub(8).max(1);
            let end = (at + 8).min(len);
            bytes[at..end].copy_from_slice(&length.to_le_bytes()[..end - at]);
        }
    }
}

proptest! {
    // Failures print their minimal input; there is no source tree beside an integration test
    // binary to persist them in.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn transfer_round_trips(value in transfer()) {
        prop_assert_eq!(round_trip(&value), value);
    }

    #[test]
    fn signed_transfer_round_trips(value in signed_transfer()) {
        prop_assert_eq!(round_trip(&value), value);
    }

    #[test]
    fn client_request_round_trips(value in client_request()) {
        prop_assert_eq!(round_trip(&value), value);
    }

    #[test]
    fn client_reply_round_trips(value in client_reply()) {
        prop_assert_eq!(round_trip(&value), value);
    }

    #[test]
    fn peer_message_round_trips(value in peer_message()) {
        prop_assert_eq!(round_trip(&value), value);
    }

    #[test]
    fn record_round_trips(value in record()) {
        prop_assert_eq!(round_trip(&value), value);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in vec(any::<u8>(), 0..4096)) {
        decode_as_everything(&bytes);
    }

    #[test]
    fn mutated_valid_encodings_never_panic_the_decoder(
        index in any::<prop::sample::Index>(),
        mutations in vec(mutation(), 1..4),
    ) {
        let samples = samples();
        let (_, sample) = &samples[index.index(samples.len())];
        let mut bytes = sample.encode();
        for mutation in &mutations {
            if bytes.is_empty() {
                break;
            }
            mutate(&mut bytes, mutation);
        }
        decode_as_everything(&bytes);
        // Decoding as its own type must also give a value or an error, and a value that
        // decodes re-encodes to the very bytes it came from (the encoding is canonical).
        if let Ok(decoded) = sample.decode_like(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }
}

#[test]
fn every_sample_round_trips_and_refuses_a_trailing_byte() {
    for (name, sample) in samples() {
        let mut bytes = sample.encode();
        assert_eq!(sample.decode_like(&bytes).unwrap(), sample, "{name}");
        bytes.push(0);
        let error = sample.decode_like(&bytes).unwrap_err();
        assert!(matches!(error, CodecError::TrailingBytes { extra: 1 }), "{name}: {error:?}");
    }
}

#[test]
fn length_prefix_claiming_u64_max_elements_fails_fast_without_allocating_it() {
    let keys = keys();
    // A validate request whose memo claims u64::MAX bytes: the encoding of an empty memo is
    // eight zero bytes, right after the seq.
    let signed = keys.signed(5, 1, b"");
    let valid =
        codec::encode(&ClientRequest::Validate { transfer: signed, deps: Vec::new() }).unwrap();
    // Layout: variant u32, from, to, amount, seq, memo length, two empty window bounds (one
    // tag byte each), authority variant u32, signature, deps length.
    assert_eq!(valid.len(), 4 + 32 + 32 + 8 + 8 + 8 + 2 + 4 + 64 + 8);
    let memo_at = 4 + 32 + 32 + 8 + 8;
    assert_eq!(valid[memo_at..memo_at + 8], [0; 8]);
    let mut hostile_memo = valid.clone();
    hostile_memo[memo_at..memo_at + 8].copy_from_slice(&[0xff; 8]);
    let mut hostile_deps = valid;
    let deps_at = hostile_deps.len() - 8;
    hostile_deps[deps_at..].copy_from_slice(&[0xff; 8]);

    let refuses_bytes = |bytes: &[u8]| codec::decode::<Vec<u8>>(bytes).is_err();
    let refuses_request = |bytes: &[u8]| codec::decode::<ClientRequest>(bytes).is_err();
    let cases = [
        ("Vec<u8>", vec![0xff; 8], &refuses_bytes as &dyn Fn(&[u8]) -> bool),
        ("memo", hostile_memo, &refuses_request),
        ("deps", hostile_deps, &refuses_request),
    ];
    for (name, bytes, refuses) in cases {
        let start = Instant::now();
        let mut refused = false;
        let largest = largest_allocation_during(|| refused = refuses(&bytes));
        assert!(refused, "{name}: a u64::MAX length decoded");
        assert!(largest <= PREALLOCATION_BYTES_MAX, "{name}: allocated {largest} bytes at once");
        assert!(start.elapsed() < Duration::from_secs(2), "{name}: took {:?}", start.elapsed());
    }
}

#[test]
fn input_over_the_limit_is_refused_with_too_large() {
    let bytes = vec![0u8; MESSAGE_BYTES_MAX + 1];
    let error = codec::decode::<Vec<u8>>(&bytes).unwrap_err();
    assert!(matches!(error, CodecError::TooLarge { max: MESSAGE_BYTES_MAX }), "{error:?}");
    let error = codec::encode(&Memo(bytes)).unwrap_err();
    assert!(matches!(error, CodecError::TooLarge { max: MESSAGE_BYTES_MAX }), "{error:?}");
}

#[test]
fn input_at_the_limit_is_accepted() {
    // A Vec<u8> encodes as an 8-byte length and its bytes.
    let value = vec![0xabu8; MESSAGE_BYTES_MAX - 8];
    let bytes = codec::encode(&value).unwrap();
    assert_eq!(bytes.len(), MESSAGE_BYTES_MAX);
    assert_eq!(codec::decode::<Vec<u8>>(&bytes).unwrap(), value);
}
