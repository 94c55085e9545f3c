//! `elder --config FILE`: one elder of a section bank network.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use elder::config::Config;
use elder::Elder;

/// One elder of a section bank network: validates transfers, signs shares, applies proofs,
/// routes credits and syncs with its section. Logs go to stderr; set RUST_LOG (e.g. info).
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The elder's config file (TOML), as written by `testnet`.
    #[arg(long)]
    config: PathBuf,
}

fn main() -> anyhow::Result<()> {
    client::init_logging("info");
    let args = Args::parse();
    let config =
        Config::load(&args.config).with_context(|| format!("config {}", args.config.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let elder = Elder::start(config)?;
        wait_for_signal().await?;
        tracing::info!("stopping");
        elder.stop().await;
        anyhow::Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
