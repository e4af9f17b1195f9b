//! `bronze-ingest --config FILE --hour 2025-08-11T14 [--shard I/N]`: see the README.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Ingest the landing JSON lines of a window into the bronze Delta tables")]
struct Cli {
    #[command(flatten)]
    run: streamreel_lake::worker::RunArgs,
    /// Replace the window's partitions even when objects ingested before are
    /// gone from the landing area (their rows are dropped).
    #[arg(long)]
    allow_missing_objects: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let options = bronze_ingest::Options { allow_missing_objects: cli.allow_missing_objects };
    streamreel_lake::worker::run("bronze-ingest", &cli.run, |ctx| async move { bronze_ingest::run(&ctx, options).await })
}
