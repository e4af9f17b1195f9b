//! `gold-aggregate --config FILE --hour 2025-08-11T14 [--shard I/N | --finalize]`: see the README.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Update the gold tables from what the window changed in silver")]
struct Cli {
    #[command(flatten)]
    run: streamreel_lake::worker::RunArgs,
    /// Add the title-level tables up over every bucket, once every shard of
    /// the window has run (a run without --shard does it itself).
    #[arg(long)]
    finalize: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let options = gold_aggregate::Options { finalize: cli.finalize };
    streamreel_lake::worker::run("gold-aggregate", &cli.run, |ctx| async move {
        if options.finalize && ctx.sharded {
            return Err(gold_aggregate::GoldError::FinalizeWithShard);
        }
        gold_aggregate::run(&ctx, options).await
    })
}
