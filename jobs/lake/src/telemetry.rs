//! Logging for the binaries: human-readable lines, or one JSON object per
//! event for log systems (`--log-format json`, `STREAMREEL_LOG_FORMAT`), on
//! stderr. Panics are logged through tracing too. Delta's own logs are off
//! unless `RUST_LOG` names them: a conflict it reports is ours to judge.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

const QUIET_DEPENDENCIES: &str = "deltalake=off,deltalake_core=off,delta_kernel=off,buoyant_kernel=off,object_store=warn,hyper=warn,reqwest=warn";

pub fn init(format: LogFormat) {
    let configured = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let directives = if configured.contains("delta") { configured } else { format!("{configured},{QUIET_DEPENDENCIES}") };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_DEPENDENCIES}")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        // Airflow and CI capture stderr: colour codes only on a terminal.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        tracing::error!(location = %location, "panic: {message}");
    }));
}
