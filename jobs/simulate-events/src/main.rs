//! `simulate-events --landing DIR --date 2025-08-11 --events 1000000`.

use clap::Parser;

use streamreel_lake::Location;

#[derive(Parser)]
#[command(version, about = "Write a simulated day of player telemetry into landing folders")]
struct Cli {
    /// Landing root: a local directory or s3://bucket/prefix.
    #[arg(long)]
    landing: String,
    /// The video metadata CSV whose titles the viewers watch.
    #[arg(long, default_value = "metadata/video_metadata.csv")]
    metadata: String,
    /// The simulated day (UTC).
    #[arg(long, default_value = "2025-08-11")]
    date: chrono::NaiveDate,
    /// About how many events to generate.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of events delivered twice.
    #[arg(long, default_value_t = 0.01)]
    duplicate_ratio: f64,
    /// Share of lines that are broken.
    #[arg(long, default_value_t = 0.001)]
    bad_line_ratio: f64,
    /// Share of events landing hours late (a tenth of that a day late).
    #[arg(long, default_value_t = 0.02)]
    late_ratio: f64,
    /// Zapping viewers: each session flips through this many titles (gold's
    /// hard case: many viewer-title pairs). Absent: realistic viewing.
    #[arg(long)]
    viewer_titles: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    streamreel_lake::telemetry::init(Default::default());
    let cli = Cli::parse();
    let spec = simulate_events::SimulationSpec {
        date: cli.date,
        events: cli.events,
        seed: cli.seed,
        duplicate_ratio: cli.duplicate_ratio,
        bad_line_ratio: cli.bad_line_ratio,
        late_ratio: cli.late_ratio,
        very_late_ratio: cli.late_ratio / 10.0,
        viewer_titles: cli.viewer_titles,
        ..Default::default()
    };
    let metadata = Location::read_file(&cli.metadata).await?;
    let titles = simulate_events::read_titles(&metadata, &cli.metadata)?;
    let started = std::time::Instant::now();
    let report = simulate_events::simulate(&spec, &titles, &Location::parse(&cli.landing)?).await?;
    let summary = format!(
        "simulate-events: {} sessions, {} lines ({} duplicates, {} bad) in {} objects, landing {}..{}, {:.1} s",
        report.sessions,
        report.lines,
        report.duplicates,
        report.bad_lines,
        report.objects,
        report.landing_from,
        report.landing_to,
        started.elapsed().as_secs_f64()
    );
    tracing::info!("{summary}");
    streamreel_lake::report::emit(&report, None)?;
    Ok(())
}
