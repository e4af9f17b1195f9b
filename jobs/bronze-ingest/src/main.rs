//! `bronze-ingest --config FILE --hour 2025-08-11T14`: see the README.

use clap::Parser;

// Parsing allocates many short strings; mimalloc keeps that off the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use streamreel_lake::cli::RunArgs;

#[derive(Parser)]
#[command(version, about = "Ingest landing JSON lines of a window into bronze Delta tables")]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    streamreel_lake::telemetry::init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("bronze-ingest failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (config, window, run_id) = cli.run.load("bronze-ingest")?;
    let report = bronze_ingest::run(&config, window, &run_id).await?;
    streamreel_lake::report::emit(&report.summary(), &report, cli.run.report.as_deref())?;
    bronze_ingest::check_reject_ratio(&report, config.bronze.max_reject_ratio)?;
    Ok(())
}
