//! `elder --config FILE`: one elder of a section bank network.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use elder::config::Config;
use elder::store::{Identity, Store};
use elder::Elder;

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

/// Exit status of an elder whose thread panicked.
const PANIC_EXIT_CODE: i32 = 101;

fn main() -> anyhow::Result<()> {
    transport::logging::init("info");
    exit_on_panic();
    let args = Args::parse();
    let config =
        Config::load(&args.config).with_context(|| format!("config {}", args.config.display()))?;
    if args.new_store {
        let identity = Identity { genesis: config.network.genesis, elder: config.me };
        Store::create(&config.data_dir, identity)?;
    }
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

/// A panic on any thread is a crash: the elder must not keep its endpoint open with a dead
/// ledger or commit thread inside, so the process ends at once with a non-zero status (what
/// it acknowledged is durable; a restart replays it).
fn exit_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        tracing::error!(%info, "a thread panicked; exiting");
        std::process::exit(PANIC_EXIT_CODE);
    }));
}
