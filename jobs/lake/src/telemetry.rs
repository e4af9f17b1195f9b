//! Tracing setup shared by the binaries: human-readable lines on stderr,
//! filtered by `RUST_LOG` (default `info`, the Delta internals quieter).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,deltalake=warn,deltalake_core=warn,delta_kernel=warn,buoyant_kernel=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Airflow and CI capture stderr: colour codes only on a terminal.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
