//! Command-line flags every worker shares: the config file, the window, the
//! run id and where to write the run report.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::{LakeError, Result};
use crate::window::{Window, format_hour};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The YAML config (infra/config/local.yaml is the embedded default).
    #[arg(long, env = "STREAMREEL_CONFIG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Identifies this run in the rows it writes; defaults to one derived
    /// from the worker and window, so a rerun writes identical rows.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Also write the JSON run report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WindowArgs {
    /// One hour, e.g. 2025-08-11T14.
    #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    pub hour: Option<String>,
    /// First hour of the window (inclusive), e.g. 2025-08-11T00.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// End of the window (exclusive), e.g. 2025-08-12T00.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
}

impl WindowArgs {
    pub fn window(&self) -> Result<Window> {
        match (&self.hour, &self.from, &self.to) {
            (Some(hour), None, None) => Window::hour(hour),
            (None, Some(from), Some(to)) => Window::range(from, to),
            _ => Err(LakeError::Window("give --hour, or --from and --to".into())),
        }
    }
}

impl RunArgs {
    pub fn load(&self, worker: &str) -> Result<(Config, Window, String)> {
        let config = Config::load(&self.config)?;
        let window = self.window.window()?;
        let run_id = self
            .run_id
            .clone()
            .unwrap_or_else(|| format!("{worker}:{}/{}", format_hour(window.start), format_hour(window.end)));
        Ok((config, window, run_id))
    }
}

/// The body of every worker's `main`: tracing on stderr, then `work`; a
/// failure is one clear error line (with its causes) and a failing exit code.
pub async fn run_main<E: std::fmt::Display>(worker: &str, work: impl std::future::Future<Output = Result<(), E>>) -> std::process::ExitCode {
    crate::telemetry::init();
    match work.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{worker} failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
