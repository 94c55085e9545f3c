//! `byzantine-elder --config FILE --lie KIND`: an elder that lies on the wire, for chaos runs
//! only (`testnet chaos` starts it in place of an honest elder, on that elder's own files).

use std::path::PathBuf;

use clap::Parser;
use elder::process;
use testnet::lies::{Lie, Lying};

/// A lying elder for chaos runs: the real elder with replies and messages that lie.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The elder's config file (TOML), as written by `testnet`.
    #[arg(long)]
    config: PathBuf,
    /// How it lies.
    #[arg(long, value_enum)]
    lie: Lie,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = process::setup(&args.config)?;
    tracing::warn!(lie = ?args.lie, "this elder lies");
    let conduct = Lying::new(args.lie, config.key_share.clone(), config.network.genesis);
    process::serve(config, conduct)
}
