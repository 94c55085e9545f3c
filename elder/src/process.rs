//! The elder as a process: panics end it, it serves until SIGTERM or Ctrl-C, then stops
//! cleanly. Shared by the elder binary and the chaos tooling's lying one.

use std::path::Path;

use anyhow::Context;

use crate::conduct::Conduct;
use crate::config::Config;
use crate::Elder;

/// Exit status of an elder whose thread panicked.
pub const PANIC_EXIT_CODE: i32 = 101;

/// What every elder process does first: logs through `RUST_LOG` (default info), makes a panic
/// a crash, and loads and checks its config.
pub fn setup(config: &Path) -> anyhow::Result<Config> {
    transport::logging::init("info");
    exit_on_panic();
    Config::load(config).with_context(|| format!("config {}", config.display()))
}

/// Starts an elder with `conduct` and serves until SIGTERM or Ctrl-C, then stops it with
/// everything it handled committed.
pub fn serve<C: Conduct>(config: Config, conduct: C) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let elder = Elder::start(config, conduct)?;
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
