//! `silver-enrich --config FILE --hour 2025-08-11T14`: see the README.

use clap::Parser;

// Many short-lived strings and arrays; mimalloc keeps allocation cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use streamreel_lake::cli::RunArgs;

#[derive(Parser)]
#[command(version, about = "Clean, deduplicate and sessionize the bronze events of a window into silver")]
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
            tracing::error!("silver-enrich failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (config, window, run_id) = cli.run.load("silver-enrich")?;
    let report = silver_enrich::run(&config, window, &run_id).await?;
    streamreel_lake::report::emit(&report.summary(), &report, cli.run.report.as_deref())?;
    Ok(())
}
