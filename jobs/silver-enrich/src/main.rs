//! `silver-enrich --config FILE --hour 2025-08-11T14 [--shard I/N]`: see the README.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Clean, deduplicate and sessionize the bronze events of a window into silver")]
struct Cli {
    #[command(flatten)]
    run: streamreel_lake::worker::RunArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    streamreel_lake::worker::run("silver-enrich", &cli.run, |ctx| async move { silver_enrich::run(&ctx).await })
}
