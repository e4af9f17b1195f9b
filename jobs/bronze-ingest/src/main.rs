//! `bronze-ingest --config FILE --hour 2025-08-11T14`: see the README.

use clap::Parser;
use streamreel_lake::cli::{RunArgs, run_main};

// Parsing allocates many short strings; mimalloc keeps that off the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Ingest landing JSON lines of a window into bronze Delta tables")]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    run_main("bronze-ingest", async {
        let cli = Cli::parse();
        let (config, window, run_id) = cli.run.load("bronze-ingest")?;
        let report = bronze_ingest::run(&config, window, &run_id).await?;
        streamreel_lake::report::emit(&report.summary(), &report, cli.run.report.as_deref())?;
        bronze_ingest::check_reject_ratio(&report, config.bronze.max_reject_ratio)?;
        Ok::<_, anyhow::Error>(())
    })
    .await
}
