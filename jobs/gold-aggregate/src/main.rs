//! `gold-aggregate --config FILE --hour 2025-08-11T14`: see the README.

use clap::Parser;
use streamreel_lake::cli::{RunArgs, run_main};

// Many short-lived strings and arrays; mimalloc keeps allocation cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Update the gold tables from what the window changed in silver")]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    run_main("gold-aggregate", async {
        let cli = Cli::parse();
        let (config, window, run_id) = cli.run.load("gold-aggregate")?;
        let report = gold_aggregate::run(&config, window, &run_id).await?;
        streamreel_lake::report::emit(&report.summary(), &report, cli.run.report.as_deref())?;
        Ok::<_, anyhow::Error>(())
    })
    .await
}
