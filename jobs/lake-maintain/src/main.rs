//! `lake-maintain --config FILE [--dry-run] [--table PATH]…`: see the README.

use clap::Parser;
use streamreel_lake::telemetry::LogFormat;

#[derive(Parser)]
#[command(version, about = "Compact, vacuum and clean the log of every table of the lake")]
struct Cli {
    /// The YAML config (its `maintenance` section holds the settings).
    #[arg(long, env = "STREAMREEL_CONFIG")]
    config: std::path::PathBuf,
    /// Say what would be done, and change nothing (the vacuum count then
    /// leaves out the files the compaction would replace).
    #[arg(long)]
    dry_run: bool,
    /// Only these tables (paths under the lake, e.g. silver/events).
    #[arg(long = "table")]
    tables: Vec<String>,
    /// Names the run in the commits it writes (default: lake-maintain and the time).
    #[arg(long)]
    run_id: Option<String>,
    /// Also write the JSON run report to this file.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    #[arg(long, env = "STREAMREEL_LOG_FORMAT", value_enum, default_value_t)]
    log_format: LogFormat,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let options = lake_maintain::Options { dry_run: cli.dry_run, tables: cli.tables, run_id: cli.run_id };
    streamreel_lake::worker::execute("lake-maintain", cli.log_format, cli.report.as_deref(), async {
        let config = streamreel_lake::Config::load(&cli.config).map_err(|e| e.to_string())?;
        lake_maintain::run(&config, &options).await.map_err(|e| e.to_string())
    })
}
