//! Deterministic values shared by the integration tests: one seeded network, and one sample of
//! every wire message variant built on it. Everything here is a pure function of fixed seeds
//! (ed25519 and BLS signing are deterministic), so the encodings never change by accident.

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use shared::agreement::{Values, Vote};
use shared::codec::{self, CodecError};
use shared::crypto::{self, SectionKeys};
use shared::driver::multisig::{create_policy, PartialTransfer};
use shared::genesis::{deal_network, offline_elder, Shape};
use shared::ledger::Record;
use shared::messages::{
    AccountReport, ClientReply, ClientRequest, ElderStatus, HistoryPage, PeerMessage, SyncEntry,
};
use shared::network::{Network, NetworkMap};
use shared::rejection::Rejection;
use shared::types::{
    AbortCertificate, AccountId, Amount, Authority, BlsSignature, Bundle, BundleId, DebitProof,
    Digest, ElderIndex, Leg, Memo, OutcomeCertificate, PayerAuthority, Prefix, SectionKeyId, Seq,
    SignedTransfer, Transfer, TransferId, Window,
};

/// Elders per section: n = 4, f = 1, so the key sets have threshold 2 (3 shares certify).
const ELDERS: u32 = 4;

/// The seeded network and the secrets behind it.
pub struct Keys {
    /// The validated network of two sections, prefixes `0` and `1`.
    pub network: Network,
    /// Each section's secret key set, by section index.
    pub key_sets: Vec<SectionKeys>,
    /// The faucet's key.
    pub alice: SigningKey,
    /// Another account's key.
    pub bob: SigningKey,
}

/// The one seeded network of the integration tests.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5ec7_10b4);
        let shape = Shape {
            prefixes: Prefix::all_of_len(1),
            elders: ELDERS as usize,
            supply: Amount(1_000_000),
            authority: vec![1],
        };
        let alice = SigningKey::from_bytes(&[0xa1; 32]);
        let bob = SigningKey::from_bytes(&[0xb0; 32]);
        let dealt = deal_network(&mut rng, shape, offline_elder, |_| alice.clone())
            .expect("the sample map is valid");
        Keys { network: dealt.network, key_sets: dealt.key_sets, alice, bob }
    })
}

/// The account a key controls.
pub fn account(key: &SigningKey) -> AccountId {
    AccountId(key.verifying_key().to_bytes())
}

impl Keys {
    /// Alice pays bob `amount` at `seq`, signed.
    pub fn signed(&self, amount: u64, seq: u64, memo: &[u8]) -> SignedTransfer {
        let transfer = Transfer {
            from: account(&self.alice),
            to: account(&self.bob),
            amount: Amount(amount),
            seq: Seq(seq),
            memo: Memo(memo.to_vec()),
            window: Window::ALWAYS,
        };
        crypto::sign_transfer(&self.alice, &self.network.genesis, transfer)
    }

    /// A multi-owner account of alice and bob (both must sign) pays bob at seq 1, inside a
    /// time window: the parts of a signed transfer that a plain one leaves out.
    pub fn owned_and_windowed(&self) -> SignedTransfer {
        let owners = vec![account(&self.alice), account(&self.bob)];
        let (policy, from) = create_policy(2, owners, None).expect("a valid policy");
        let transfer = Transfer {
            from,
            to: account(&self.bob),
            amount: Amount(40),
            seq: Seq(1),
            memo: Memo(b"shared".to_vec()),
            window: Window { valid_after: Some(1_800_000_000_000), valid_before: None },
        };
        let mut partial = PartialTransfer::new(policy, transfer).expect("the policy's account");
        for key in [&self.alice, &self.bob] {
            partial.sign(key, &self.network.genesis).expect("an owner");
        }
        partial.complete().expect("both signed")
    }

    /// A bundle of two legs, alice pays bob and bob pays alice, refereed by section 1.
    pub fn bundle(&self) -> Bundle {
        let (alice, bob) = (account(&self.alice), account(&self.bob));
        Bundle {
            legs: vec![
                Leg { from: alice, to: bob, amount: Amount(40), seq: Seq(4) },
                Leg { from: bob, to: alice, amount: Amount(10), seq: Seq(1) },
            ],
            deadline_ms: 1_800_000_060_000,
            referee: Prefix { value: 1, len: 1 },
            nonce: 7,
        }
    }

    /// Alice's lock of the bundle's first leg, signed.
    pub fn lock(&self) -> SignedTransfer {
        let bundle = self.bundle();
        let signature = crypto::sign_bundle(&self.alice, &self.network.genesis, &bundle);
        SignedTransfer {
            transfer: bundle.lock_transfer(0).expect("leg 0"),
            authority: Authority::Bundle {
                bundle: Box::new(bundle),
                leg: 0,
                payer: PayerAuthority::Key(signature),
            },
        }
    }

    /// The referee's abort of the bundle.
    pub fn abort(&self) -> OutcomeCertificate {
        let bundle = self.bundle();
        let id = crypto::bundle_id(&bundle);
        let message = crypto::outcome_message(&self.network.genesis, &id, false);
        let key_share = self.key_sets[1].share(0);
        OutcomeCertificate {
            bundle,
            commit: false,
            section_key: self.network.sections[1].key_id,
            // The one signature a test can make without combining: a share stands in for the
            // section's, which has the same encoding.
            signature: crypto::sign_debit_share(&key_share, &message),
            locks: Vec::new(),
        }
    }

    /// `signed` certified by section `section`.
    pub fn proof(&self, section: usize, signed: SignedTransfer) -> DebitProof {
        shared::genesis::dealer_proof(&self.network, &self.key_sets[section], section, signed)
    }

    /// Elder `elder` of section `section`'s share certifying `signed`.
    pub fn share(&self, section: usize, elder: u32, signed: &SignedTransfer) -> BlsSignature {
        let key_share = self.key_sets[section].share(elder as usize);
        let message = crypto::debit_message(&self.network.genesis, &crypto::transfer_id(signed));
        crypto::sign_debit_share(&key_share, &message)
    }
}

/// One value of any wire type.
#[derive(Clone, PartialEq, Debug)]
pub enum Message {
    /// Client → elder.
    Request(ClientRequest),
    /// Elder → client.
    Reply(ClientReply),
    /// Elder → elder.
    Peer(PeerMessage),
    /// Elder → its store.
    Record(Record),
    /// The network map file.
    Map(NetworkMap),
}

impl Message {
    /// The value's encoding.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Request(value) => codec::encode(value),
            Message::Reply(value) => codec::encode(value),
            Message::Peer(value) => codec::encode(value),
            Message::Record(value) => codec::encode(value),
            Message::Map(value) => codec::encode(value),
        }
        .expect("samples encode within the limit")
    }

    /// Decodes `bytes` as a value of the same type as `self`.
    pub fn decode_like(&self, bytes: &[u8]) -> Result<Message, CodecError> {
        Ok(match self {
            Message::Request(_) => Message::Request(codec::decode(bytes)?),
            Message::Reply(_) => Message::Reply(codec::decode(bytes)?),
            Message::Peer(_) => Message::Peer(codec::decode(bytes)?),
            Message::Record(_) => Message::Record(codec::decode(bytes)?),
            Message::Map(_) => Message::Map(codec::decode(bytes)?),
        })
    }

    /// The variant's name; the matches have no wildcard, so a new variant fails to compile
    /// here until it is named, which is the moment to add a sample of it below.
    pub fn name(&self) -> String {
        match self {
            Message::Request(request) => format!("client_request_{}", request.kind()),
            Message::Reply(ClientReply::Rejected(rejection)) => {
                format!("client_reply_rejected_{}", rejection_name(rejection))
            }
            Message::Reply(reply) => format!("client_reply_{}", reply_name(reply)),
            Message::Peer(message) => format!("peer_message_{}", peer_name(message)),
            Message::Record(record) => format!("record_{}", record_name(record)),
            Message::Map(_) => "network_map".to_string(),
        }
    }
}

fn reply_name(reply: &ClientReply) -> &'static str {
    match reply {
        ClientReply::Share { .. } => "share",
        ClientReply::Registered { .. } => "registered",
        ClientReply::Balance(_) => "balance",
        ClientReply::History(_) => "history",
        ClientReply::Applied { .. } => "applied",
        ClientReply::Status(_) => "status",
        ClientReply::Outcome(_) => "outcome",
        ClientReply::Undecided { .. } => "undecided",
        ClientReply::Rejected(_) => "rejected",
    }
}

fn peer_name(message: &PeerMessage) -> &'static str {
    match message {
        PeerMessage::Proof { .. } => "proof",
        PeerMessage::ProofAck { .. } => "proof_ack",
        PeerMessage::SyncRequest { .. } => "sync_request",
        PeerMessage::SyncReply { .. } => "sync_reply",
        PeerMessage::Refer { .. } => "refer",
        PeerMessage::Vote { .. } => "vote",
        PeerMessage::CoinShare { .. } => "coin_share",
        PeerMessage::OutcomeShare { .. } => "outcome_share",
        PeerMessage::Outcome { .. } => "outcome",
        PeerMessage::OutcomeAck { .. } => "outcome_ack",
        PeerMessage::VoidShare { .. } => "void_share",
        PeerMessage::Overdue { .. } => "overdue",
    }
}

fn record_name(record: &Record) -> &'static str {
    match record {
        Record::Signed(_) => "signed",
        Record::Applied(_) => "applied",
        Record::Acked { .. } => "acked",
        Record::Synced { .. } => "synced",
        Record::Referred { .. } => "referred",
        Record::Voted { .. } => "voted",
        Record::Settled(_) => "settled",
        Record::OutcomeAcked { .. } => "outcome_acked",
    }
}

fn rejection_name(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::MemoTooLong { .. } => "memo_too_long",
        Rejection::TooManyDeps { .. } => "too_many_deps",
        Rejection::TooManyProofs { .. } => "too_many_proofs",
        Rejection::WrongSection { .. } => "wrong_section",
        Rejection::BadAccountSignature { .. } => "bad_account_signature",
        Rejection::InvalidRecipient { .. } => "invalid_recipient",
        Rejection::SelfTransfer { .. } => "self_transfer",
        Rejection::ZeroAmount => "zero_amount",
        Rejection::StaleSeq { .. } => "stale_seq",
        Rejection::SeqAhead { .. } => "seq_ahead",
        Rejection::SeqExhausted { .. } => "seq_exhausted",
        Rejection::Conflict { .. } => "conflict",
        Rejection::InsufficientFunds { .. } => "insufficient_funds",
        Rejection::MissingCredits { .. } => "missing_credits",
        Rejection::UnknownSectionKey { .. } => "unknown_section_key",
        Rejection::BadSectionSignature { .. } => "bad_section_signature",
        Rejection::BalanceOverflow { .. } => "balance_overflow",
        Rejection::OutboxFull { .. } => "outbox_full",
        Rejection::TooManyOwners { .. } => "too_many_owners",
        Rejection::PolicyMismatch { .. } => "policy_mismatch",
        Rejection::OwnerSignatures { .. } => "owner_signatures",
        Rejection::TooEarly { .. } => "too_early",
        Rejection::Expired { .. } => "expired",
        Rejection::EmptyWindow { .. } => "empty_window",
        Rejection::LegCount { .. } => "leg_count",
        Rejection::PayerTwice { .. } => "payer_twice",
        Rejection::NotALeg { .. } => "not_a_leg",
        Rejection::DeadlinePassed { .. } => "deadline_passed",
        Rejection::NotReferee { .. } => "not_referee",
        Rejection::BadLock { .. } => "bad_lock",
        Rejection::BadOutcome { .. } => "bad_outcome",
        Rejection::RefereeBusy { .. } => "referee_busy",
        Rejection::LockIsNoCredit { .. } => "lock_is_no_credit",
        Rejection::MalformedVote => "malformed_vote",
        Rejection::DeadlineTooFar { .. } => "deadline_too_far",
        Rejection::NoLockShown => "no_lock_shown",
        Rejection::AlreadyDecided { .. } => "already_decided",
    }
}

/// One sample of every rejection, each with distinct context values.
fn rejections(keys: &Keys) -> Vec<Rejection> {
    let (alice, bob) = (account(&keys.alice), account(&keys.bob));
    let (first, rival) = (keys.signed(250, 3, b"rent"), keys.signed(251, 3, b"rent"));
    let id = crypto::transfer_id(&first);
    vec![
        Rejection::MemoTooLong { bytes: 129, max: 128 },
        Rejection::TooManyDeps { count: 17, max: 16 },
        Rejection::TooManyProofs { count: 65, max: 64 },
        Rejection::WrongSection { account: bob, prefix: Prefix { value: 0, len: 1 } },
        Rejection::BadAccountSignature { account: alice },
        Rejection::InvalidRecipient { to: AccountId([0; 32]) },
        Rejection::SelfTransfer { account: alice },
        Rejection::ZeroAmount,
        Rejection::StaleSeq { seq: Seq(2), next_seq: Seq(3) },
        Rejection::SeqAhead { seq: Seq(5), next_seq: Seq(3) },
        Rejection::SeqExhausted { account: alice },
        Rejection::Conflict { slot: rival.transfer.slot(), rival: Box::new(first) },
        Rejection::InsufficientFunds { balance: Amount(100), amount: Amount(250) },
        Rejection::MissingCredits { balance: Amount(10), amount: Amount(250) },
        Rejection::UnknownSectionKey { key: SectionKeyId(Digest([0x5c; 32])) },
        Rejection::BadSectionSignature { transfer: id },
        Rejection::BalanceOverflow { account: bob, amount: Amount(u64::MAX) },
        Rejection::OutboxFull { section: Prefix::ROOT, pending: 100_000 },
        Rejection::TooManyOwners { count: 17, max: 16 },
        Rejection::PolicyMismatch { account: alice },
        Rejection::OwnerSignatures { count: 1, threshold: 2 },
        Rejection::TooEarly { valid_after: 1_800_000_000_000, early_ms: 4_200 },
        Rejection::Expired { valid_before: 1_800_000_000_000, late_ms: 310 },
        Rejection::EmptyWindow { valid_after: 1_800_000_000_001, valid_before: 1_800_000_000_000 },
        Rejection::LegCount { count: 17, max: 16 },
        Rejection::PayerTwice { account: bob },
        Rejection::NotALeg { leg: 3 },
        Rejection::DeadlinePassed { deadline_ms: 1_800_000_060_000, late_ms: 12 },
        Rejection::NotReferee { referee: Prefix { value: 1, len: 1 }, prefix: Prefix::ROOT },
        Rejection::BadLock { leg: 1 },
        Rejection::BadOutcome { bundle: BundleId(Digest([0xb7; 32])) },
        Rejection::RefereeBusy { open: 4_096 },
        Rejection::LockIsNoCredit { transfer: id },
        Rejection::MalformedVote,
        Rejection::DeadlineTooFar { deadline_ms: 1_800_003_600_001, max_ms: 3_600_000 },
        Rejection::NoLockShown,
        Rejection::AlreadyDecided { bundle: BundleId(Digest([0xb8; 32])) },
    ]
}

/// One deterministic sample of every variant of every wire type, each with its name.
pub fn samples() -> Vec<(String, Message)> {
    let keys = keys();
    let (alice, bob) = (account(&keys.alice), account(&keys.bob));
    let earlier = keys.proof(0, keys.signed(100, 2, b""));
    let signed = keys.signed(250, 3, b"rent");
    let transfer = crypto::transfer_id(&signed);
    let proof = keys.proof(0, signed.clone());
    let report = AccountReport {
        account: alice,
        balance: Amount(999_750),
        next_seq: Seq(4),
        digest: Digest([0xd1; 32]),
    };
    let page = HistoryPage { account: bob, debits: Vec::new(), credits: vec![proof.clone()] };
    let mut messages = vec![
        Message::Request(ClientRequest::Validate {
            transfer: signed.clone(),
            deps: vec![earlier.clone()],
        }),
        Message::Request(ClientRequest::Register { proof: proof.clone(), deps: Vec::new() }),
        Message::Request(ClientRequest::Balance { account: bob }),
        Message::Request(ClientRequest::History {
            account: alice,
            debits_from: Seq(2),
            credits_after: Some(TransferId(Digest([0x7e; 32]))),
        }),
        Message::Request(ClientRequest::Applied { transfer }),
        Message::Request(ClientRequest::Status),
        Message::Reply(ClientReply::Share { transfer, share: keys.share(0, 1, &signed) }),
        Message::Reply(ClientReply::Registered { transfer }),
        Message::Reply(ClientReply::Balance(report)),
        Message::Reply(ClientReply::History(page)),
        Message::Reply(ClientReply::Applied { transfer, applied: true }),
        Message::Reply(ClientReply::Status(ElderStatus {
            state_digest: Digest([0x5d; 32]),
            applied: 12,
            outbox: 3,
            balance_total: 1_000,
        })),
    ];
    messages.extend(rejections(keys).into_iter().map(|r| Message::Reply(ClientReply::Rejected(r))));
    messages.extend([
        Message::Peer(PeerMessage::Proof { proof: proof.clone() }),
        Message::Peer(PeerMessage::ProofAck { transfer }),
        Message::Peer(PeerMessage::SyncRequest { position: 64 }),
        Message::Peer(PeerMessage::SyncReply {
            entries: vec![
                SyncEntry::Proof(earlier),
                SyncEntry::Proof(proof.clone()),
                SyncEntry::Outcome(Box::new(keys.abort())),
            ],
            next_position: 67,
        }),
        Message::Record(Record::Signed(keys.owned_and_windowed())),
        Message::Record(Record::Applied(proof)),
        Message::Record(Record::Acked { transfer, elder: ElderIndex(2) }),
        Message::Record(Record::Synced { elder: ElderIndex(3), position: 640 }),
        Message::Map(keys.network.map.clone()),
    ]);
    messages.extend(bundle_samples(keys));
    messages.into_iter().map(|message| (message.name(), message)).collect()
}

/// One sample of every variant that carries bundles, locks, votes and outcomes.
fn bundle_samples(keys: &Keys) -> Vec<Message> {
    let bundle = keys.bundle();
    let id = crypto::bundle_id(&bundle);
    let lock = keys.proof(0, keys.lock());
    let abort = keys.abort();
    let share = BlsSignature(abort.signature.0);
    vec![
        Message::Request(ClientRequest::Decide {
            bundle: bundle.clone(),
            locks: vec![lock.clone()],
        }),
        Message::Request(ClientRequest::Outcome { bundle: id }),
        Message::Reply(ClientReply::Outcome(Box::new(abort.clone()))),
        Message::Reply(ClientReply::Undecided { bundle: id }),
        Message::Peer(PeerMessage::Refer { bundle: bundle.clone(), locks: vec![lock.clone()] }),
        Message::Peer(PeerMessage::Vote {
            bundle: id,
            vote: Vote::Conf { round: 2, values: Values::single(true).with(false) },
        }),
        Message::Peer(PeerMessage::CoinShare { bundle: id, round: 2, share }),
        Message::Peer(PeerMessage::OutcomeShare { bundle: id, commit: false, share }),
        Message::Peer(PeerMessage::Outcome { certificate: Box::new(abort.clone()) }),
        Message::Peer(PeerMessage::OutcomeAck { bundle: id }),
        Message::Peer(PeerMessage::Overdue { lock: keys.lock() }),
        Message::Peer(PeerMessage::VoidShare {
            void: SignedTransfer {
                transfer: abort.bundle.lock_transfer(1).expect("leg 1"),
                authority: Authority::Void {
                    abort: Box::new(AbortCertificate::of(&abort).expect("an abort")),
                    leg: 1,
                    payer: PayerAuthority::Key(crypto::sign_bundle(
                        &keys.bob,
                        &keys.network.genesis,
                        &abort.bundle,
                    )),
                },
            },
            share,
        }),
        Message::Record(Record::Referred { bundle, locks: vec![lock] }),
        Message::Record(Record::Voted { bundle: id, vote: Vote::Aux { round: 1, value: true } }),
        Message::Record(Record::Settled(Box::new(abort))),
        Message::Record(Record::OutcomeAcked {
            bundle: id,
            section: Prefix::ROOT,
            elder: ElderIndex(3),
        }),
    ]
}
