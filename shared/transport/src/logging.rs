//! Logs to stderr, filtered by `RUST_LOG`.

/// Sends this process's logs to stderr, filtered by `RUST_LOG` (else at `default_level`):
/// one setup for every binary of the project.
pub fn init(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
