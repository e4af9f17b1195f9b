//! The one entry point of every worker binary: the shared flags, logging, a
//! tokio runtime, the run, its report, and on failure one error line and a
//! failing exit code.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::error::{LakeError, Result};
use crate::report::RunReport;
use crate::shard::Shard;
use crate::table::CommitMeta;
use crate::telemetry::LogFormat;
use crate::window::{Window, format_hour};

/// Flags every worker takes.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The YAML config (infra/config/local.yaml is the embedded default).
    #[arg(long, env = "STREAMREEL_CONFIG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Run as one of N shards, owning the buckets b with b mod N = I. Without
    /// it the run owns every bucket (and gold finalizes itself).
    #[arg(long, env = "STREAMREEL_SHARD", value_parser = |s: &str| Shard::parse(s).map_err(|e| e.to_string()))]
    pub shard: Option<Shard>,
    /// Names the run in the rows and commits it writes; by default derived
    /// from the worker and the window, so a rerun writes identical rows.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Also write the JSON run report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// `json` logs one JSON object per event, for log systems.
    #[arg(long, env = "STREAMREEL_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,
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

/// What a run is about: settings, window, shard and its name.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub worker: &'static str,
    pub config: Config,
    pub window: Window,
    pub shard: Shard,
    /// Given as `--shard`: one of several processes sharing the window.
    pub sharded: bool,
    pub run_id: String,
}

impl RunContext {
    /// A run owning `shard`'s buckets (`None`: every bucket, one process).
    pub fn new(worker: &'static str, config: Config, window: Window, shard: Option<Shard>, run_id: Option<String>) -> Result<RunContext> {
        let sharded = shard.is_some();
        let shard = shard.unwrap_or(Shard::ALL).check(config.buckets)?;
        let run_id = run_id.unwrap_or_else(|| format!("{worker}:{}/{}", format_hour(window.start), format_hour(window.end)));
        Ok(RunContext { worker, config, window, shard, sharded, run_id })
    }

    pub fn commit_meta(&self) -> CommitMeta {
        CommitMeta { worker: self.worker.to_string(), run_id: self.run_id.clone(), window: Some(self.window), shard: Some(self.shard) }
    }
}

impl RunArgs {
    pub fn context(&self, worker: &'static str) -> Result<RunContext> {
        RunContext::new(worker, Config::load(&self.config)?, self.window.window()?, self.shard, self.run_id.clone())
    }
}

/// Runs a worker: `work` gets the run's context and returns its report.
pub fn run<R, E, F, Fut>(worker: &'static str, args: &RunArgs, work: F) -> ExitCode
where
    R: RunReport,
    E: std::fmt::Display,
    F: FnOnce(RunContext) -> Fut,
    Fut: Future<Output = std::result::Result<R, E>>,
{
    execute(worker, args.log_format, args.report.as_deref(), async {
        let context = args.context(worker).map_err(|e| e.to_string())?;
        work(context).await.map_err(|e| e.to_string())
    })
}

/// The body of every binary: logging, a tokio runtime, the work, its report
/// (summary logged, JSON on stdout and in `report`), and on failure one error
/// line and a failing exit code.
pub fn execute<R: RunReport>(
    name: &str,
    format: LogFormat,
    report: Option<&std::path::Path>,
    work: impl Future<Output = std::result::Result<R, String>>,
) -> ExitCode {
    crate::keep_freed_memory();
    crate::telemetry::init(format);
    let outcome = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string()).and_then(|runtime| {
        runtime.block_on(async {
            let done = work.await?;
            done.log_summary();
            crate::report::emit(&done, report).map_err(|e| e.to_string())?;
            done.verdict()
        })
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            tracing::error!("{name} failed: {line}");
            ExitCode::FAILURE
        }
    }
}
