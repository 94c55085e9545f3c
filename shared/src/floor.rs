//! The crypto floor: the least each party's cryptography costs per transfer, measured on this
//! machine when asked. `cargo bench -p shared` prints it; `testnet bench` prints beside its
//! throughput the bound it allows for that network and the ratio, so a figure always comes
//! with the floor of the machine and the moment it was measured on.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use blsttc::rand::Rng;
use ed25519_dalek::SigningKey;

use crate::crypto::{self, HashedMessage};
use crate::driver::account_id;
use crate::genesis::{deal_network, offline_elder, Shape};
use crate::types::{
    Amount, BlsSignature, DebitProof, ElderIndex, Memo, Prefix, Seq, SignedTransfer, Transfer,
    Window,
};

/// Proofs checked together, as an elder batches them under load.
pub const FLOOR_BATCH: usize = 64;

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
    /// One proof's share of a batch of [`FLOOR_BATCH`].
    pub proof_batched: Duration,
}

impl Floor {
    /// Measures every step for a section of `elders` with keys drawn from `rng`: the median of
    /// 15 rounds of about `round` each.
    pub fn measure(rng: &mut impl Rng, elders: usize, round: Duration) -> Floor {
        let shape = Shape {
            prefixes: vec![Prefix::ROOT],
            elders,
            supply: Amount(u64::MAX),
            authority: vec![1],
        };
        let faucet = |rng: &mut _| SigningKey::from_bytes(&Rng::gen(rng));
        let mut dealt = deal_network(rng, shape, offline_elder, faucet).expect("a valid map");
        let (network, keys) = (dealt.network, dealt.key_sets.remove(0));
        let section = &network.sections[0];
        let genesis = network.genesis;
        let transfer = |seq: u64| Transfer {
            from: account_id(&dealt.faucet),
            to: account_id(&SigningKey::from_bytes(&[seq as u8 | 1; 32])),
            amount: Amount(5),
            seq: Seq(seq),
            memo: Memo::default(),
            window: Window::ALWAYS,
        };
        let sign = |seq| crypto::sign_transfer(&dealt.faucet, &genesis, transfer(seq));
        let proof = |signed: SignedTransfer| {
            let id = crypto::transfer_id(&signed);
            let bytes = crypto::debit_signing_bytes(&genesis, &id);
            let signature = BlsSignature(keys.secret_key().sign(bytes).to_bytes());
            DebitProof { signed, section_key: section.key_id, signature }
        };
        let median = |run: &mut dyn FnMut()| median_of_rounds(round, run);

        let signed = sign(1);
        let id = crypto::transfer_id(&signed);
        let message = crypto::debit_message(&genesis, &id);
        let shares: BTreeMap<ElderIndex, BlsSignature> = (0..section.shares_needed())
            .map(|i| {
                (
                    ElderIndex(i as u32),
                    crypto::sign_debit_share(&keys.secret_key_share(i), &message),
                )
            })
            .collect();
        let single = proof(signed.clone());
        let batch: Vec<DebitProof> = (1..=FLOOR_BATCH as u64).map(|seq| proof(sign(seq))).collect();
        let messages: Vec<HashedMessage> = batch
            .iter()
            .map(|p| crypto::debit_message(&genesis, &crypto::transfer_id(&p.signed)))
            .collect();
        let items: Vec<(&HashedMessage, &BlsSignature)> =
            messages.iter().zip(batch.iter().map(|p| &p.signature)).collect();
        let weights: Vec<u64> = (0..FLOOR_BATCH).map(|_| rng.gen()).collect();
        let share_key = keys.secret_key_share(0);
        Floor {
            elders,
            account_sign: median(&mut || {
                black_box(sign(1));
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
                    crypto::bls_batch_validity(&section.key, &items, &weights, &[0; FLOOR_BATCH]);
                assert!(valid.iter().all(|valid| *valid));
            }) / FLOOR_BATCH as u32,
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

/// The median time of one `run`, over 15 rounds of about `round` each.
fn median_of_rounds(round: Duration, run: &mut dyn FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..15)
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
