//! The crypto floor: the least each party's cryptography costs per transfer, measured on this
//! machine when asked. A measuring tool beside the protocol, not part of it: the one module of
//! this crate that reads a clock. `cargo bench -p shared` prints it; `testnet bench` prints beside its
//! throughput the bound it allows for that network and the ratio, so a figure always comes
//! with the floor of the machine and the moment it was measured on.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rand::Rng;

use crate::crypto::{self, HashedMessage, SectionKeys};
use crate::driver::account_id;
use crate::genesis::{deal_network, offline_elder, Shape};
use crate::network::Network;
use crate::types::{
    Amount, BlsSignature, DebitProof, ElderIndex, Memo, Prefix, Seq, SignedTransfer, Transfer,
    Window,
};

/// Proofs checked together, as an elder batches them under load.
pub const FLOOR_BATCH_PROOFS: usize = 64;
/// Rounds timed per step; the floor takes their median.
const FLOOR_ROUNDS: usize = 15;

/// One section of a given size with its secret key set and a faucet key: what the floor and
/// the crypto bench sign and check with.
pub struct Setup {
    /// The one-section network.
    pub network: Network,
    /// Its dealt keys; share `i` is elder `i`'s.
    pub keys: SectionKeys,
    /// The faucet's key, which signs every transfer.
    pub faucet: SigningKey,
}

impl Setup {
    /// Deals a section of `elders` from `rng`.
    pub fn deal(rng: &mut impl Rng, elders: usize) -> Setup {
        let shape = Shape {
            prefixes: vec![Prefix::ROOT],
            elders,
            supply: Amount(u64::MAX),
            authority: vec![1],
        };
        let faucet = |rng: &mut _| SigningKey::from_bytes(&Rng::gen(rng));
        let mut dealt = deal_network(rng, shape, offline_elder, faucet).expect("a valid map");
        Setup { network: dealt.network, keys: dealt.key_sets.remove(0), faucet: dealt.faucet }
    }

    /// The faucet's signed transfer of 5 at `seq`.
    pub fn transfer(&self, seq: u64) -> SignedTransfer {
        let transfer = Transfer {
            from: account_id(&self.faucet),
            to: account_id(&SigningKey::from_bytes(&[seq as u8 | 1; 32])),
            amount: Amount(5),
            seq: Seq(seq),
            memo: Memo::default(),
            window: Window::ALWAYS,
        };
        crypto::sign_transfer(&self.faucet, &self.network.genesis, transfer)
    }

    /// `signed`'s debit proof under the section key.
    pub fn proof(&self, signed: SignedTransfer) -> DebitProof {
        crate::genesis::dealer_proof(&self.network, &self.keys, 0, signed)
    }

    /// `signed`'s debit message, hashed.
    pub fn debit_message(&self, signed: &SignedTransfer) -> HashedMessage {
        crypto::debit_message(&self.network.genesis, &crypto::transfer_id(signed))
    }
}

/// What each step costs on this machine, for a section of `elders`.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    /// Elders per section.
    pub elders: usize,
    /// A client signs a transfer (ed25519).
    pub account_sign: Duration,
    /// An elder checks it (ed25519).
    pub account_check: Duration,
    /// The debit message hashed to the curve (once per party that signs or checks).
    pub hash: Duration,
    /// One BLS signature share over a hashed message.
    pub share_sign: Duration,
    /// Combining `n − f` shares into the section's signature.
    pub combine: Duration,
    /// One proof checked alone.
    pub proof_single: Duration,
    /// One proof's share of a batch of [`FLOOR_BATCH_PROOFS`].
    pub proof_batched: Duration,
}

impl Floor {
    /// Measures every step on `setup`'s section: the median of [`FLOOR_ROUNDS`] rounds of
    /// about `round` each.
    pub fn measure(setup: &Setup, rng: &mut impl Rng, round: Duration) -> Floor {
        let section = &setup.network.sections[0];
        let genesis = setup.network.genesis;
        let median = |run: &mut dyn FnMut()| median_of_rounds(round, run);
        let signed = setup.transfer(1);
        let id = crypto::transfer_id(&signed);
        let message = setup.debit_message(&signed);
        let shares: BTreeMap<ElderIndex, BlsSignature> = (0..section.shares_needed())
            .map(|i| {
                let share = crypto::sign_debit_share(&setup.keys.share(i), &message);
                (ElderIndex(i as u32), share)
            })
            .collect();
        let single = setup.proof(signed.clone());
        let batch: Vec<DebitProof> =
            (1..=FLOOR_BATCH_PROOFS as u64).map(|seq| setup.proof(setup.transfer(seq))).collect();
        let messages: Vec<HashedMessage> =
            batch.iter().map(|proof| setup.debit_message(&proof.signed)).collect();
        let items: Vec<(&HashedMessage, &BlsSignature)> =
            messages.iter().zip(batch.iter().map(|proof| &proof.signature)).collect();
        let seed: [u8; 32] = rng.gen();
        let parts = [0; FLOOR_BATCH_PROOFS];
        let share_key = setup.keys.share(0);
        Floor {
            elders: section.elder_count(),
            account_sign: median(&mut || {
                black_box(setup.transfer(1));
            }),
            account_check: median(&mut || {
                assert!(crypto::account_signature_is_valid(&genesis, black_box(&signed)))
            }),
            hash: median(&mut || {
                black_box(crypto::debit_message(&genesis, &id));
            }),
            share_sign: median(&mut || {
                black_box(crypto::sign_debit_share(&share_key, &message));
            }),
            combine: median(&mut || assert!(section.combine(black_box(&shares)).is_some())),
            proof_single: median(&mut || assert!(section.proof_is_valid(&message, &single))),
            proof_batched: median(&mut || {
                let valid =
                    crypto::bls_batch_validity(&section.public_keys.key, &items, seed, &parts);
                assert!(valid.iter().all(|valid| *valid));
            }) / FLOOR_BATCH_PROOFS as u32,
        }
    }

    /// One elder of the paying section, per transfer: the account check and the share at
    /// validate, the proof check (batched) at register or sync.
    pub fn payer_elder(&self) -> Duration {
        self.account_check + self.hash + self.share_sign + self.proof_batched
    }

    /// One elder of the receiving section of a cross-section transfer: the proof check.
    pub fn payee_elder(&self) -> Duration {
        self.hash + self.proof_batched
    }

    /// The client, per transfer: signing, combining `n − f` shares and checking the result.
    pub fn client(&self) -> Duration {
        self.account_sign + self.hash + self.combine + self.proof_single
    }

    /// Everyone's crypto for one transfer, with this share of them cross-section: every elder
    /// of the paying section, every elder of the receiving one if it is another, the client.
    pub fn per_transfer(&self, cross_section: f64) -> Duration {
        let elders = self.elders as u32;
        self.payer_elder() * elders
            + (self.payee_elder() * elders).mul_f64(cross_section)
            + self.client()
    }

    /// The most transfers per second `cores` cores allow a network of such sections and its
    /// clients, when the cryptography is all they do.
    pub fn bound(&self, cores: usize, cross_section: f64) -> f64 {
        cores as f64 / self.per_transfer(cross_section).as_secs_f64()
    }
}

/// The median time of one `run`, over [`FLOOR_ROUNDS`] rounds of about `round` each.
fn median_of_rounds(round: Duration, run: &mut dyn FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..FLOOR_ROUNDS)
        .map(|_| {
            let started = Instant::now();
            let mut count = 0u32;
            while count == 0 || started.elapsed() < round {
                run();
                count += 1;
            }
            started.elapsed() / count
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}
