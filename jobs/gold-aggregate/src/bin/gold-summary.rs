//! `gold-summary --config FILE`: prints top titles, the engagement tier mix
//! and the worst ISPs by rebuffer ratio from the gold tables.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Print a short summary of the gold tables")]
struct Cli {
    #[arg(long, env = "STREAMREEL_CONFIG")]
    config: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = streamreel_lake::Config::load(&cli.config)?;
    let text = gold_aggregate::summary::summary(&config.lake_url, config.buckets).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    print!("{text}");
    Ok(())
}
