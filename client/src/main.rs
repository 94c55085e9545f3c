//! `bank`: make keys, check balances and history, and send money on a section bank network.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use client::multisig;
use client::wallet::Wallet;
use client::{Client, History, Receipt};
use serde_json::json;
use shared::driver::multisig::{create_policy, PartialTransfer};
use shared::driver::{new_transfer, Payment};
use shared::genesis::account_key_in;
use shared::types::{AccountId, Amount, Authority, DebitProof, Memo, Policy, Prefix, Seq, Window};

mod bundle;

/// A command line for the section bank: accounts are ed25519 keys, money moves by
/// section-certified transfers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The network map file (written by `testnet up`).
    #[arg(long, global = true, env = "BANK_NETWORK")]
    network: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a new account key and write it to a file (mode 0600).
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// Make the account fall in this section (its position in the map, from 0); needs
        /// --network.
        #[arg(long)]
        section: Option<usize>,
    },
    /// Print the account a key file controls.
    Address {
        /// The key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Print an account's balance and next seq, as a quorum of its section agrees.
    Balance {
        /// The account: 64 hex digits.
        account: AccountId,
    },
    /// Pay from the key's account; completes a transfer left in flight first. With
    /// --policy, pay from a multi-owner account instead: the transfer is signed by this owner
    /// and written to --out, for the other owners to `sign` and anyone to `submit`.
    Send {
        /// The sender's key file (with --policy: one owner's key).
        #[arg(long)]
        key: PathBuf,
        /// The recipient account: 64 hex digits.
        #[arg(long)]
        to: AccountId,
        /// The amount, in the smallest unit (at least 1).
        #[arg(long)]
        amount: u64,
        /// A note for the recipient (at most 128 bytes).
        #[arg(long, default_value = "")]
        memo: String,
        /// Elders certify the transfer only from this time: RFC 3339
        /// (2026-12-04T10:00:00Z) or from now (+30s, +5m).
        #[arg(long, value_parser = parse_time)]
        not_before: Option<u64>,
        /// Elders certify the transfer only until this time (same forms as --not-before).
        #[arg(long, value_parser = parse_time)]
        expires: Option<u64>,
        /// Also wait until the recipient's section has applied the credit.
        #[arg(long)]
        wait: bool,
        /// Pay from the multi-owner account of this policy file (`multisig create`).
        #[arg(long, requires = "out")]
        policy: Option<PathBuf>,
        /// With --policy: where to write the partly signed transfer.
        #[arg(long, requires = "policy")]
        out: Option<PathBuf>,
    },
    /// Multi-owner accounts: any M of N owner keys together control one account.
    Multisig {
        #[command(subcommand)]
        command: MultisigCommand,
    },
    /// Add this owner's signature to a partly signed transfer (written by `send --policy`).
    Sign {
        /// The partly signed transfer file; it is rewritten with the signature added.
        partial: PathBuf,
        /// The owner's key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Certify and register a partly signed transfer once enough owners have signed it.
    Submit {
        /// The partly signed transfer file.
        partial: PathBuf,
        /// Also wait until the recipient's section has applied the credit.
        #[arg(long)]
        wait: bool,
    },
    /// List an account's debits and credits, each backed by a section-signed proof.
    History {
        /// The account: 64 hex digits.
        account: AccountId,
    },
    /// Atomic multi-party transfers: every leg is paid or none is, decided by a referee
    /// section. Make a bundle, add legs, have each payer sign it, then submit it.
    Bundle {
        #[command(subcommand)]
        command: BundleCommand,
    },
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Write a new, empty bundle file.
    New {
        /// Legs are locked only before this time: RFC 3339 or from now (+60s); after it the
        /// referee decides abort unless every leg was locked.
        #[arg(long, value_parser = parse_time)]
        deadline: u64,
        /// The section that decides the outcome (its position in the map, from 0).
        #[arg(long)]
        referee: usize,
        /// Where to write the bundle; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a leg (a payment) to a bundle no payer has signed yet; the payer's next seq is
    /// fixed in it, as its section agrees.
    Leg {
        /// The bundle file; it is rewritten with the leg added.
        bundle: PathBuf,
        /// The paying account (one leg per payer).
        #[arg(long)]
        from: AccountId,
        /// The paid account.
        #[arg(long)]
        to: AccountId,
        /// The amount, in the smallest unit (at least 1).
        #[arg(long)]
        amount: u64,
    },
    /// Sign a bundle as the payer of one of its legs (with --policy: as one owner of a
    /// multi-owner payer).
    Sign {
        /// The bundle file; it is rewritten with the signature added.
        bundle: PathBuf,
        /// The payer's (or owner's) key file.
        #[arg(long)]
        key: PathBuf,
        /// The policy file of a multi-owner payer.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Lock every signed leg, have the referee decide, and print each leg's fate.
    Submit {
        /// The bundle file.
        bundle: PathBuf,
        /// Also wait until every section of the bundle has paid or refunded its legs.
        #[arg(long)]
        wait: bool,
    },
    /// The certified outcome of a bundle, if any section holds it.
    Status {
        /// The bundle id: 64 hex digits.
        id: String,
    },
}

#[derive(Subcommand)]
enum MultisigCommand {
    /// Write the policy of a new multi-owner account and print the account.
    Create {
        /// How many distinct owners must sign each payment from it.
        #[arg(long)]
        threshold: u8,
        /// An owner's public key (`bank address --key K`); repeat for each owner, at most 16.
        #[arg(long = "owner", required = true)]
        owners: Vec<AccountId>,
        /// Make the account fall in this section (its position in the map, from 0); needs
        /// --network.
        #[arg(long)]
        section: Option<usize>,
        /// Where to write the policy; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    transport::logging::init("warn");
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let reason = format!("{error:#}");
            if json {
                println!("{}", json!({ "error": reason }));
            }
            eprintln!("bank: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The QUIC endpoint is made inside the runtime it runs on.
    let _entered = runtime.enter();
    match cli.command {
        Command::Keygen { out, section } => keygen(cli.network.as_deref(), &out, section, cli.json),
        Command::Address { key } => {
            let account = Wallet::open(&key)?.account();
            print(cli.json, json!({ "account": account.to_string() }), account.to_string());
            Ok(())
        }
        Command::Balance { account } => {
            let client = connect(cli.network.as_deref())?;
            let report = runtime.block_on(client.balance(account))?;
            let value = json!({
                "account": account.to_string(),
                "balance": report.balance.0,
                "next_seq": report.next_seq.0,
            });
            print(cli.json, value, format!("{} (next seq {})", report.balance, report.next_seq));
            Ok(())
        }
        Command::Send { key, to, amount, memo, not_before, expires, wait, policy, out } => {
            let window = Window { valid_after: not_before, valid_before: expires };
            let payment =
                Payment { to, amount: Amount(amount), memo: Memo(memo.into_bytes()), window };
            let client = connect(cli.network.as_deref())?;
            if let (Some(policy), Some(out)) = (policy, out) {
                return runtime
                    .block_on(start_partial(&client, &policy, &key, payment, &out, cli.json));
            }
            let mut wallet = Wallet::open(&key)?;
            let receipt = runtime.block_on(client.send(&mut wallet, payment))?;
            finish_send(&runtime, &client, &receipt, wait, cli.json)
        }
        Command::Multisig {
            command: MultisigCommand::Create { threshold, owners, section, out },
        } => {
            let prefix = match section {
                Some(index) => Some(section_prefix(cli.network.as_deref(), index)?),
                None => None,
            };
            let (policy, account) = create_policy(threshold, owners, prefix)?;
            multisig::create(&out, &policy)?;
            let value =
                json!({ "account": account.to_string(), "policy": out.display().to_string() });
            print(cli.json, value, format!("{account}\n(policy written to {})", out.display()));
            Ok(())
        }
        Command::Sign { partial: path, key } => {
            let network = transport::map::read(cli.network.as_deref().context(NO_NETWORK)?)?;
            let mut partial: PartialTransfer = multisig::read(&path, "a partly signed transfer")?;
            partial.check(&network.genesis)?;
            let key = Wallet::open(&key)?.key().clone();
            partial.sign(&key, &network.genesis)?;
            multisig::replace(&path, &partial)?;
            print_partial(cli.json, &partial, &path);
            Ok(())
        }
        Command::Submit { partial: path, wait } => {
            let client = connect(cli.network.as_deref())?;
            let partial: PartialTransfer = multisig::read(&path, "a partly signed transfer")?;
            let receipt = runtime.block_on(client.submit(&partial))?;
            finish_send(&runtime, &client, &receipt, wait, cli.json)
        }
        Command::History { account } => {
            let client = connect(cli.network.as_deref())?;
            let history = runtime.block_on(client.history(account))?;
            print_history(cli.json, &history);
            Ok(())
        }
        Command::Bundle { command } => {
            bundle::run(&runtime, cli.network.as_deref(), command, cli.json)
        }
    }
}

/// Prints a receipt, after waiting for its credit if asked.
fn finish_send(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    receipt: &Receipt,
    wait: bool,
    json: bool,
) -> anyhow::Result<()> {
    let credited = wait && runtime.block_on(client.wait_for_credit(receipt)).is_ok();
    print_receipt(json, receipt, credited);
    if wait && !credited {
        anyhow::bail!(
            "transfer {} is sent and registered, but its credit was not confirmed in time; \
             check with `bank history {}`",
            receipt.transfer,
            receipt.proof.transfer().to
        );
    }
    Ok(())
}

/// `send --policy`: fixes the multi-owner account's next seq as its section agrees, signs the
/// transfer as one owner and writes it for the others.
async fn start_partial(
    client: &Client,
    policy: &Path,
    key: &Path,
    payment: Payment,
    out: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let policy: Policy = multisig::read(policy, "a policy file")?;
    let from = shared::crypto::policy_account(&policy)
        .context("the policy file is malformed (write it again with `bank multisig create`)")?;
    let key = Wallet::open(key)?.key().clone();
    let next_seq = client.balance(from).await?.next_seq.max(Seq::FIRST);
    let transfer = new_transfer(from, payment, next_seq).map_err(anyhow::Error::new)?;
    let mut partial = PartialTransfer::new(policy, transfer)?;
    partial.sign(&key, &client.network().genesis)?;
    multisig::create(out, &partial)?;
    print_partial(json, &partial, out);
    Ok(())
}

fn print_partial(json: bool, partial: &PartialTransfer, path: &Path) {
    let missing = partial.missing();
    let value = json!({
        "partial": path.display().to_string(),
        "from": partial.transfer.from.to_string(),
        "seq": partial.transfer.seq.0,
        "signatures": partial.signatures.len(),
        "missing": missing,
    });
    let next = if missing == 0 {
        format!("ready: `bank submit {}`", path.display())
    } else {
        format!("{missing} more owner signature(s) needed: `bank sign {} --key K`", path.display())
    };
    let text = format!(
        "{} of {} signatures on seq {} from {}; {next}",
        partial.signatures.len(),
        partial.policy.threshold,
        partial.transfer.seq,
        partial.transfer.from,
    );
    print(json, value, text);
}

/// Reads a time given as RFC 3339 or as `+DURATION` from now, as ms since the Unix epoch.
fn parse_time(text: &str) -> Result<u64, String> {
    let time = match text.strip_prefix('+') {
        Some(duration) => {
            let duration = humantime::parse_duration(duration)
                .map_err(|error| format!("{error} (write e.g. +30s, +5m or +2h)"))?;
            std::time::SystemTime::now() + duration
        }
        None => humantime::parse_rfc3339_weak(text).map_err(|error| {
            format!("{error} (write RFC 3339, e.g. 2026-12-04T10:00:00Z, or +30s from now)")
        })?,
    };
    let since =
        time.duration_since(std::time::UNIX_EPOCH).map_err(|_| "before 1970".to_string())?;
    u64::try_from(since.as_millis()).map_err(|_| "too far in the future".to_string())
}

/// The prefix of section `index` of the map at `network`.
fn section_prefix(network: Option<&Path>, index: usize) -> anyhow::Result<Prefix> {
    let network = transport::map::read(network.context("--section needs --network")?)?;
    let count = network.sections.len();
    let section = network
        .sections
        .get(index)
        .with_context(|| format!("the network has {count} sections (0 to {})", count - 1))?;
    Ok(section.prefix)
}

fn keygen(
    network: Option<&Path>,
    out: &Path,
    section: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    let mut rng = rand::thread_rng();
    let key = match section {
        None => ed25519_dalek::SigningKey::generate(&mut rng),
        Some(index) => account_key_in(&mut rng, section_prefix(network, index)?),
    };
    Wallet::create(out, &key)?;
    let account = shared::driver::account_id(&key);
    let value = json!({ "account": account.to_string(), "key": out.display().to_string() });
    print(json, value, format!("{account}\n(key written to {})", out.display()));
    Ok(())
}

/// What to say when the network map is needed and not given.
const NO_NETWORK: &str = "no network map: pass --network FILE or set BANK_NETWORK";

fn connect(network: Option<&Path>) -> anyhow::Result<Client> {
    let path = network.context(NO_NETWORK)?;
    Ok(Client::connect(path)?)
}

fn print(json: bool, value: serde_json::Value, text: String) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn proof_json(proof: &DebitProof) -> serde_json::Value {
    let transfer = proof.transfer();
    json!({
        "transfer": shared::crypto::transfer_id(&proof.signed).to_string(),
        "from": transfer.from.to_string(),
        "to": transfer.to.to_string(),
        "amount": transfer.amount.0,
        "seq": transfer.seq.0,
        "memo": String::from_utf8_lossy(&transfer.memo.0),
        "valid_after": transfer.window.valid_after,
        "valid_before": transfer.window.valid_before,
        "owners_signed": match &proof.signed.authority {
            Authority::Policy { signatures, .. } => Some(signatures.len()),
            _ => None,
        },
        "bundle": proof.lock().map(|(bundle, _)| shared::crypto::bundle_id(bundle).to_string()),
    })
}

/// The window of a transfer in words, empty if it has none.
fn window_text(window: &Window) -> String {
    let at = |ms: u64| {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        humantime::format_rfc3339_millis(time).to_string()
    };
    match (window.valid_after, window.valid_before) {
        (None, None) => String::new(),
        (Some(after), None) => format!("  (valid from {})", at(after)),
        (None, Some(before)) => format!("  (valid until {})", at(before)),
        (Some(after), Some(before)) => format!("  (valid {} to {})", at(after), at(before)),
    }
}

fn print_receipt(json: bool, receipt: &Receipt, credited: bool) {
    let proof_bytes = shared::codec::encode(&receipt.proof).map_or(0, |bytes| bytes.len());
    let mut value = proof_json(&receipt.proof);
    value["proof_bytes"] = json!(proof_bytes);
    value["credited"] = json!(credited);
    let text = format!(
        "sent {} to {} at seq {}: transfer {} ({} proof bytes){}",
        receipt.proof.transfer().amount,
        receipt.proof.transfer().to,
        receipt.seq,
        receipt.transfer,
        proof_bytes,
        if credited { ", credit applied" } else { "" },
    );
    print(json, value, text);
}

fn print_history(json: bool, history: &History) {
    if json {
        let debits: Vec<_> = history.debits.iter().map(proof_json).collect();
        let credits: Vec<_> = history.credits.iter().map(proof_json).collect();
        println!("{}", json!({ "debits": debits, "credits": credits }));
        return;
    }
    for proof in &history.debits {
        let transfer = proof.transfer();
        let window = window_text(&transfer.window);
        println!(
            "debit  seq {:>4}  -{}  to {}{window}",
            transfer.seq, transfer.amount, transfer.to
        );
    }
    for proof in &history.credits {
        let transfer = proof.transfer();
        let window = window_text(&transfer.window);
        println!("credit            +{}  from {}{window}", transfer.amount, transfer.from);
    }
    if history.debits.is_empty() && history.credits.is_empty() {
        println!("no transfers");
    }
}
