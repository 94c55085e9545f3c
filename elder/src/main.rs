//! `elder --config FILE`: one elder of a section bank network.

use std::path::PathBuf;

use clap::Parser;
use elder::conduct::Honest;
use elder::process;
use elder::store::{Identity, Store};

/// One elder of a section bank network: validates transfers, signs shares, applies proofs,
/// routes credits and syncs with its section. Logs go to stderr; set RUST_LOG (e.g. info).
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The elder's config file (TOML), as written by `testnet`.
    #[arg(long)]
    config: PathBuf,
    /// Create an empty store first. Genesis creates every elder's store, so this is only for
    /// an elder that has never run and lost its data directory before its first start: an
    /// elder that has signed anything must never start without its store (it could sign twice).
    #[arg(long)]
    new_store: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = process::setup(&args.config)?;
    if args.new_store {
        let identity = Identity { genesis: config.network.genesis, elder: config.me };
        Store::create(&config.data_dir, identity)?;
    }
    process::serve(config, Honest)
}
