//! `bank`: make keys, check balances and history, and send money on a section bank network.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use client::wallet::Wallet;
use client::{Client, History, Receipt};
use serde_json::json;
use shared::genesis::account_key_in;
use shared::types::{AccountId, Amount, DebitProof, Memo};

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
    /// Pay from the key's account; completes a transfer left in flight first.
    Send {
        /// The sender's key file.
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
        /// Also wait until the recipient's section has applied the credit.
        #[arg(long)]
        wait: bool,
    },
    /// List an account's debits and credits, each backed by a section-signed proof.
    History {
        /// The account: 64 hex digits.
        account: AccountId,
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
        Command::Send { key, to, amount, memo, wait } => {
            let client = connect(cli.network.as_deref())?;
            let mut wallet = Wallet::open(&key)?;
            let memo = Memo(memo.into_bytes());
            let receipt = runtime.block_on(client.send(&mut wallet, to, Amount(amount), memo))?;
            let credited = wait && runtime.block_on(client.wait_for_credit(&receipt)).is_ok();
            print_receipt(cli.json, &receipt, credited);
            if wait && !credited {
                anyhow::bail!(
                    "transfer {} is sent and registered, but its credit was not confirmed in \
                     time; check with `bank history {to}`",
                    receipt.transfer
                );
            }
            Ok(())
        }
        Command::History { account } => {
            let client = connect(cli.network.as_deref())?;
            let history = runtime.block_on(client.history(account))?;
            print_history(cli.json, &history);
            Ok(())
        }
    }
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
        Some(index) => {
            let network = transport::map::read(network.context("--section needs --network")?)?;
            let count = network.sections.len();
            let section = network.sections.get(index).with_context(|| {
                format!("the network has {count} sections (0 to {})", count - 1)
            })?;
            account_key_in(&mut rng, section.prefix)
        }
    };
    Wallet::create(out, &key)?;
    let account = shared::driver::account_id(&key);
    let value = json!({ "account": account.to_string(), "key": out.display().to_string() });
    print(json, value, format!("{account}\n(key written to {})", out.display()));
    Ok(())
}

fn connect(network: Option<&Path>) -> anyhow::Result<Client> {
    let path = network.context("no network map: pass --network FILE or set BANK_NETWORK")?;
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
    })
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
        println!("debit  seq {:>4}  -{}  to {}", transfer.seq, transfer.amount, transfer.to);
    }
    for proof in &history.credits {
        let transfer = proof.transfer();
        println!("credit            +{}  from {}", transfer.amount, transfer.from);
    }
    if history.debits.is_empty() && history.credits.is_empty() {
        println!("no transfers");
    }
}
