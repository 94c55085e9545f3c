//! Test fixtures shared by the ledger and client unit tests: a seeded two-section network
//! (n = 4, so f = 1 and 3 shares certify), elders, accounts, transfers and debit proofs, and a
//! snapshot of an elder's state to prove that a refused request changed nothing.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::crypto::{self, HashedMessage, KeyShare, SectionKeys};
use crate::driver::{account_id, Progress, ShareCollector};
use crate::genesis::{account_key_in, deal_network, offline_elder, Shape};
use crate::ledger::{ElderId, Ledger, Output};
use crate::messages::{AccountReport, ClientReply, ClientRequest};
use crate::network::Network;
use crate::rejection::Rejection;
use crate::types::{
    AccountId, Amount, BlsSignature, DebitProof, Digest, ElderIndex, Memo, Prefix, Seq,
    SignedTransfer, Transfer, Window,
};

/// Elders per section: n = 4 tolerates f = 1 and needs n − f = 3 shares.
pub(crate) const ELDERS: u32 = 4;
/// All the money there is; the faucet holds it at genesis.
pub(crate) const SUPPLY: u64 = 1_000_000;
/// The section of prefix `0`, which holds the faucet.
pub(crate) const HOME: usize = 0;
/// The section of prefix `1`.
pub(crate) const AWAY: usize = 1;
/// The prefixes of `HOME` and `AWAY`, by section index.
const PREFIXES: [Prefix; 2] = [Prefix { value: 0, len: 1 }, Prefix { value: 1, len: 1 }];

/// A seeded network of two sections, with the secrets needed to run and forge for it.
pub(crate) struct Fixture {
    rng: RefCell<ChaCha8Rng>,
    /// The validated network.
    pub(crate) network: Arc<Network>,
    key_sets: Vec<SectionKeys>,
    /// The faucet's key; its account is in `HOME` and holds `SUPPLY` at genesis.
    pub(crate) faucet: SigningKey,
}

impl Fixture {
    /// The network for `seed`: the same seed gives the same keys, accounts and genesis.
    pub(crate) fn new(seed: u64) -> Fixture {
        Fixture::with_supply(seed, SUPPLY)
    }

    /// The network for `seed` with `supply` in the faucet.
    pub(crate) fn with_supply(seed: u64, supply: u64) -> Fixture {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let shape = Shape {
            prefixes: PREFIXES.to_vec(),
            elders: ELDERS as usize,
            supply: Amount(supply),
            authority: vec![1],
        };
        let dealt =
            deal_network(&mut rng, shape, offline_elder, |rng| account_key_in(rng, PREFIXES[HOME]))
                .expect("the fixture map is valid");
        let network = Arc::new(dealt.network);
        Fixture { rng: RefCell::new(rng), network, key_sets: dealt.key_sets, faucet: dealt.faucet }
    }

    /// The network's genesis hash.
    pub(crate) fn genesis(&self) -> Digest {
        self.network.genesis
    }

    /// The faucet's account.
    pub(crate) fn faucet_id(&self) -> AccountId {
        account_id(&self.faucet)
    }

    /// The prefix of section `section`.
    pub(crate) fn prefix(&self, section: usize) -> Prefix {
        PREFIXES[section]
    }

    /// The identity of elder `index` of `section`.
    pub(crate) fn elder_id(&self, section: usize, index: u32) -> ElderId {
        ElderId { prefix: PREFIXES[section], index: ElderIndex(index) }
    }

    /// Elder `index`'s key share of `section`.
    pub(crate) fn key_share(&self, section: usize, index: u32) -> KeyShare {
        self.key_sets[section].share(index as usize)
    }

    /// A key share of no section of this network.
    pub(crate) fn stranger_key_share(&self) -> KeyShare {
        SectionKeys::deal(ELDERS as usize, self.rng.borrow_mut().gen()).share(0)
    }

    /// Elder `index` of `section` at genesis.
    pub(crate) fn ledger(&self, section: usize, index: u32) -> Ledger {
        let me = self.elder_id(section, index);
        Ledger::new(self.network.clone(), me, self.key_share(section, index))
            .expect("the fixture elder exists")
    }

    /// Every elder of `section` at genesis, index 0 first.
    pub(crate) fn elders(&self, section: usize) -> Vec<Ledger> {
        (0..ELDERS).map(|index| self.ledger(section, index)).collect()
    }

    /// A fresh account key whose account falls in `section`.
    pub(crate) fn key_in(&self, section: usize) -> SigningKey {
        account_key_in(&mut *self.rng.borrow_mut(), PREFIXES[section])
    }

    /// A fresh account in `section`, for receiving only.
    pub(crate) fn account_in(&self, section: usize) -> AccountId {
        account_id(&self.key_in(section))
    }

    /// Signs `transfer` with `key` (which need not be the sender's) on this network.
    pub(crate) fn sign(&self, key: &SigningKey, transfer: Transfer) -> SignedTransfer {
        crypto::sign_transfer(key, &self.genesis(), transfer)
    }

    /// `key`'s account pays `amount` to `to` at `seq`, with an empty memo, signed.
    pub(crate) fn signed(
        &self,
        key: &SigningKey,
        to: AccountId,
        amount: u64,
        seq: u64,
    ) -> SignedTransfer {
        self.sign(key, transfer(key, to, amount, seq))
    }

    /// A proof as if `signer`'s section certified `signed`, naming `named`'s section key:
    /// `signer == named` makes a genuine proof, anything else a forgery.
    pub(crate) fn proof_by(
        &self,
        signed: SignedTransfer,
        signer: usize,
        named: usize,
    ) -> DebitProof {
        crate::genesis::dealer_proof(&self.network, &self.key_sets[signer], named, signed)
    }

    /// Section `section`'s whole signature over `bytes`, as `n − f` combined shares make it.
    pub(crate) fn section_signature(&self, section: usize, bytes: &[u8]) -> BlsSignature {
        self.key_sets[section].sign(&HashedMessage::of(bytes))
    }

    /// The genuine debit proof of `signed`, certified by its sender's section.
    pub(crate) fn certify(&self, signed: SignedTransfer) -> DebitProof {
        let section = self.network.section_index_of(&signed.transfer.from);
        self.proof_by(signed, section, section)
    }

    /// Certifies `signed` the way a client does: validate at each of `elders` in turn and
    /// combine their verified shares.
    pub(crate) fn certify_at(&self, elders: &mut [Ledger], signed: &SignedTransfer) -> DebitProof {
        let mut collector = ShareCollector::new(self.network.clone(), signed.clone());
        for elder in elders {
            let (reply, _) = elder.handle_client(validate(signed.clone()), 0);
            if let Progress::Certified(proof) = collector.add(elder.me().index, reply) {
                return proof;
            }
        }
        panic!("the elders did not certify {:?}", signed.transfer);
    }

    /// `key`'s account pays `to` at `seq`; the proof is registered at each of `elders`.
    pub(crate) fn pay(
        &self,
        elders: &mut [Ledger],
        key: &SigningKey,
        to: AccountId,
        amount: u64,
        seq: u64,
    ) -> DebitProof {
        let proof = self.certify(self.signed(key, to, amount, seq));
        for elder in elders {
            register(elder, &proof, 0);
        }
        proof
    }
}

/// `from`'s account pays `amount` to `to` at `seq`, with an empty memo (unsigned).
pub(crate) fn transfer(from: &SigningKey, to: AccountId, amount: u64, seq: u64) -> Transfer {
    Transfer {
        from: account_id(from),
        to,
        amount: Amount(amount),
        seq: Seq(seq),
        memo: Memo::default(),
        window: Window::ALWAYS,
    }
}

/// A validate request without deps.
pub(crate) fn validate(signed: SignedTransfer) -> ClientRequest {
    ClientRequest::Validate { transfer: signed, deps: Vec::new() }
}

/// A register request without deps.
pub(crate) fn register_request(proof: DebitProof) -> ClientRequest {
    ClientRequest::Register { proof, deps: Vec::new() }
}

/// Registers `proof` at `elder`, which must accept it; returns what the elder asked to do.
pub(crate) fn register(elder: &mut Ledger, proof: &DebitProof, now_ms: u64) -> Output {
    let (reply, output) = elder.handle_client(register_request(proof.clone()), now_ms);
    let transfer = crypto::transfer_id(&proof.signed);
    assert_eq!(reply, ClientReply::Registered { transfer }, "elder {:?}", elder.me());
    output
}

/// Everything observable about an elder's state, to compare before and after an input.
#[derive(Debug, PartialEq)]
pub(crate) struct Snapshot {
    digest: Digest,
    reports: Vec<AccountReport>,
    slots: Vec<(AccountId, Option<SignedTransfer>)>,
    log: Vec<DebitProof>,
    outbox: Vec<DebitProof>,
}

impl Snapshot {
    /// The state of `elder`, reporting every account it holds and every account in `watched`.
    pub(crate) fn of(elder: &Ledger, watched: &[AccountId]) -> Snapshot {
        let mut accounts: BTreeSet<AccountId> = elder.accounts().map(|(id, _)| *id).collect();
        accounts.extend(watched);
        Snapshot {
            digest: elder.state_digest(),
            reports: accounts.iter().map(|account| elder.report(*account)).collect(),
            slots: accounts
                .iter()
                .map(|id| {
                    (*id, elder.account(id).and_then(|account| account.signed.as_deref().cloned()))
                })
                .collect(),
            log: elder.log().cloned().collect(),
            outbox: elder.outbox().cloned().collect(),
        }
    }
}

/// The accounts a request names, so a snapshot covers them even if the elder holds no state.
fn named_accounts(request: &ClientRequest) -> Vec<AccountId> {
    match request {
        ClientRequest::Validate { transfer, .. } => {
            vec![transfer.transfer.from, transfer.transfer.to]
        }
        ClientRequest::Register { proof, .. } => vec![proof.transfer().from, proof.transfer().to],
        ClientRequest::Balance { account } | ClientRequest::History { account, .. } => {
            vec![*account]
        }
        ClientRequest::Decide { bundle, .. } => {
            bundle.legs.iter().flat_map(|leg| [leg.from, leg.to]).collect()
        }
        ClientRequest::Applied { .. } | ClientRequest::Status | ClientRequest::Outcome { .. } => {
            vec![]
        }
    }
}

/// Sends `request` to `elder` and checks that it is refused with exactly `expected`, with
/// nothing to persist or send and no change to the elder's state.
pub(crate) fn assert_refused(elder: &mut Ledger, request: ClientRequest, expected: Rejection) {
    assert_refused_at(elder, request, expected, 0)
}

/// [`assert_refused`] with the elder's clock at `now_ms`.
pub(crate) fn assert_refused_at(
    elder: &mut Ledger,
    request: ClientRequest,
    expected: Rejection,
    now_ms: u64,
) {
    let watched = named_accounts(&request);
    let before = Snapshot::of(elder, &watched);
    let (reply, output) = elder.handle_client(request, now_ms);
    assert_eq!(reply, ClientReply::Rejected(expected));
    assert!(output.records.is_empty(), "a refusal persisted {:?}", output.records);
    assert!(output.messages.is_empty(), "a refusal sent {:?}", output.messages);
    assert_eq!(Snapshot::of(elder, &watched), before, "a refusal changed the state");
}
