//! The crypto floor of one elder (`cargo bench -p shared`): account signature checks single and
//! batched, BLS share signing and verification, combining n − f shares, debit-proof checks one
//! by one and batched (1 to 256), and encoding and decoding each message. At the end it prints
//! the per-transfer floor: one account-signature check, one share, and one proof check at the
//! amortised batched cost.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::codec;
use shared::crypto;
use shared::floor::{Floor, Setup, FLOOR_BATCH_PROOFS};
use shared::messages::{ClientReply, ClientRequest, PeerMessage, SyncEntry};
use shared::types::{Authority, BlsSignature, DebitProof, ElderIndex, SignedTransfer};

/// One section of `elders` elders, dealt from a seed.
fn setup(elders: usize) -> Setup {
    Setup::deal(&mut ChaCha8Rng::seed_from_u64(elders as u64), elders)
}

fn account_signatures(c: &mut Criterion, setup: &Setup) {
    let signed = setup.transfer(1);
    c.bench_function("ed25519 verify", |b| {
        b.iter(|| crypto::account_signature_is_valid(&setup.network.genesis, black_box(&signed)))
    });
    let mut group = c.benchmark_group("ed25519 verify batched");
    for size in [64usize, 256] {
        let transfers: Vec<SignedTransfer> =
            (1..=size as u64).map(|seq| setup.transfer(seq)).collect();
        let messages: Vec<Vec<u8>> = transfers
            .iter()
            .map(|t| crypto::transfer_signing_bytes(&setup.network.genesis, &t.transfer))
            .collect();
        let signature = |signed: &SignedTransfer| match signed.authority {
            Authority::Key(signature) => signature,
            _ => unreachable!("the bench signs with single keys"),
        };
        let signatures: Vec<ed25519_dalek::Signature> = transfers.iter().map(signature).collect();
        let keys = vec![setup.faucet.verifying_key(); size];
        let borrowed: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| ed25519_dalek::verify_batch(&borrowed, &signatures, &keys).expect("valid"))
        });
    }
    group.finish();
}

fn shares(c: &mut Criterion, setup: &Setup) {
    let signed = setup.transfer(1);
    let id = crypto::transfer_id(&signed);
    let share_key = setup.keys.share(0);
    c.bench_function("BLS share sign, hashing the message", |b| {
        b.iter(|| {
            let message = crypto::debit_message(&setup.network.genesis, black_box(&id));
            crypto::sign_debit_share(&share_key, &message)
        })
    });
    let message = setup.debit_message(&signed);
    c.bench_function("BLS share sign, message hashed", |b| {
        b.iter(|| crypto::sign_debit_share(&share_key, black_box(&message)))
    });
    let share = crypto::sign_debit_share(&share_key, &message);
    c.bench_function("BLS share verify", |b| {
        b.iter(|| {
            setup.network.sections[0].share_is_valid(ElderIndex(0), &message, black_box(&share))
        })
    });
    let mut group = c.benchmark_group("combine n - f shares");
    for elders in [4usize, 7, 16, 31] {
        let setup = self::setup(elders);
        let section = &setup.network.sections[0];
        let message = crypto::debit_message(&setup.network.genesis, &id);
        let shares: BTreeMap<ElderIndex, BlsSignature> = (0..section.shares_needed())
            .map(|i| {
                (ElderIndex(i as u32), crypto::sign_debit_share(&setup.keys.share(i), &message))
            })
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(elders), &elders, |b, _| {
            b.iter(|| section.combine(black_box(&shares)).expect("combine"))
        });
    }
    group.finish();
}

/// Where a share and a proof check spend their time: the parts of BLS on G1.
fn bls_parts(c: &mut Criterion, setup: &Setup) {
    let bytes = crypto::debit_signing_bytes(
        &setup.network.genesis,
        &crypto::transfer_id(&setup.transfer(1)),
    );
    let signature = setup.proof(setup.transfer(1)).signature;
    let mut group = c.benchmark_group("BLS parts");
    group.bench_function("hash to G1", |b| b.iter(|| crypto::HashedMessage::of(black_box(&bytes))));
    group.bench_function("G1 decompress and subgroup check", |b| {
        b.iter(|| crypto::SignaturePoint::decode(black_box(&signature)).expect("a point"))
    });
    group.finish();
}

fn proofs(c: &mut Criterion, setup: &Setup) {
    let proof = setup.proof(setup.transfer(1));
    let id = crypto::transfer_id(&proof.signed);
    let section = &setup.network.sections[0];
    c.bench_function("debit proof verify, hashing the message", |b| {
        b.iter(|| {
            let message = crypto::debit_message(&setup.network.genesis, black_box(&id));
            section.proof_is_valid(&message, black_box(&proof))
        })
    });
    let message = crypto::debit_message(&setup.network.genesis, &id);
    c.bench_function("debit proof verify, message hashed", |b| {
        b.iter(|| section.proof_is_valid(&message, black_box(&proof)))
    });
    let mut group = c.benchmark_group("debit proof verify batched");
    for size in [1usize, 4, 16, 64, 256] {
        let batch = Batch::new(setup, size);
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| batch.check(0))
        });
    }
    group.finish();
    // One forged signature among 256 (another proof's, valid for another message): bisection
    // finds it and the other 255 still pass together.
    let mut batch = Batch::new(setup, 256);
    batch.signatures[17] = batch.signatures[18];
    c.bench_function("debit proof verify batched, 1 forged of 256", |b| b.iter(|| batch.check(1)));
}

/// A batch of proofs' messages and signatures, as an elder checks them.
struct Batch {
    key: crypto::BlsPublicKey,
    messages: Vec<crypto::HashedMessage>,
    signatures: Vec<BlsSignature>,
    seed: [u8; 32],
}

impl Batch {
    fn new(setup: &Setup, size: usize) -> Batch {
        let proofs: Vec<DebitProof> =
            (1..=size as u64).map(|seq| setup.proof(setup.transfer(seq))).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(size as u64);
        Batch {
            key: setup.network.sections[0].public_keys.key,
            messages: proofs.iter().map(|p| setup.debit_message(&p.signed)).collect(),
            signatures: proofs.iter().map(|p| p.signature).collect(),
            seed: rng.gen(),
        }
    }

    /// Checks the batch, asserting that exactly `invalid` signatures fail.
    fn check(&self, invalid: usize) -> bool {
        let items: Vec<(&crypto::HashedMessage, &BlsSignature)> =
            self.messages.iter().zip(&self.signatures).collect();
        let parts = vec![0; items.len()];
        let validity = crypto::bls_batch_validity(&self.key, &items, self.seed, &parts);
        assert_eq!(validity.iter().filter(|valid| !**valid).count(), invalid);
        invalid == 0
    }
}

fn codec(c: &mut Criterion, setup: &Setup) {
    let signed = setup.transfer(2);
    let proof = setup.proof(setup.transfer(1));
    let id = crypto::transfer_id(&signed);
    let message = crypto::debit_message(&setup.network.genesis, &id);
    let share = crypto::sign_debit_share(&setup.keys.share(0), &message);
    let messages: Vec<(&str, Vec<u8>)> = vec![
        (
            "validate",
            codec::encode(&ClientRequest::Validate { transfer: signed.clone(), deps: vec![] })
                .unwrap(),
        ),
        (
            "register",
            codec::encode(&ClientRequest::Register { proof: proof.clone(), deps: vec![] }).unwrap(),
        ),
        ("share", codec::encode(&ClientReply::Share { transfer: id, share }).unwrap()),
        ("proof", codec::encode(&PeerMessage::Proof { proof: proof.clone() }).unwrap()),
        (
            "sync page of 64",
            codec::encode(&PeerMessage::SyncReply {
                entries: vec![SyncEntry::Proof(proof.clone()); 64],
                next_position: 64,
            })
            .unwrap(),
        ),
    ];
    let mut group = c.benchmark_group("codec");
    for (name, bytes) in &messages {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("decode {name}"), |b| {
            b.iter(|| match *name {
                "validate" | "register" => {
                    drop(codec::decode::<ClientRequest>(black_box(bytes)).unwrap())
                }
                "share" => drop(codec::decode::<ClientReply>(black_box(bytes)).unwrap()),
                _ => drop(codec::decode::<PeerMessage>(black_box(bytes)).unwrap()),
            })
        });
    }
    for (name, bytes) in &messages {
        group.bench_function(format!("encode {name}"), |b| match *name {
            "validate" | "register" => {
                let message: ClientRequest = codec::decode(bytes).unwrap();
                b.iter(|| codec::encode(black_box(&message)).unwrap())
            }
            "share" => {
                let message: ClientReply = codec::decode(bytes).unwrap();
                b.iter(|| codec::encode(black_box(&message)).unwrap())
            }
            _ => {
                let message: PeerMessage = codec::decode(bytes).unwrap();
                b.iter(|| codec::encode(black_box(&message)).unwrap())
            }
        });
    }
    group.finish();
}

/// The per-transfer crypto floor of one elder and of a client (`shared::floor`): what
/// validate and register cost an elder at least, the debit message hashed once.
fn print_floor(setup: &Setup) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let floor = Floor::measure(setup, &mut rng, Duration::from_millis(50));
    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    println!("\nper-transfer crypto floor, {} elders (this machine):", floor.elders);
    println!("  account signature check  {:>8.1} µs", micros(floor.account_check));
    println!("  debit message hashed     {:>8.1} µs  (once, at validate)", micros(floor.hash));
    println!("  BLS share sign           {:>8.1} µs", micros(floor.share_sign));
    println!(
        "  proof check, batch of {FLOOR_BATCH_PROOFS} {:>8.1} µs  (one by one: {:.1} µs)",
        micros(floor.proof_batched),
        micros(floor.proof_single)
    );
    println!(
        "  floor of one elder       {:>8.1} µs  = {:.0} transfers/s on one core",
        micros(floor.payer_elder()),
        1.0 / floor.payer_elder().as_secs_f64()
    );
    println!(
        "  client (sign, combine {} shares, check) {:.1} µs",
        shared::network::shares_needed(floor.elders),
        micros(floor.client())
    );
}

fn main() {
    let setup = setup(7);
    let mut c = Criterion::default().configure_from_args();
    account_signatures(&mut c, &setup);
    shares(&mut c, &setup);
    bls_parts(&mut c, &setup);
    proofs(&mut c, &setup);
    codec(&mut c, &setup);
    c.final_summary();
    print_floor(&setup);
}
