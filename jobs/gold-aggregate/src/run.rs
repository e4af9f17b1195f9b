//! The gold run: reads which sessions the window's silver runs rewrote (the
//! silver change log), recomputes the shard's changed buckets, and, when one
//! process owns the window (no `--shard`) or `--finalize` asks for it, adds
//! the title-level tables up from their per-bucket partials.

use std::time::Instant;

use serde::Serialize;
use streamreel_lake::replan::replanning;
use streamreel_lake::report::RunReport;
use streamreel_lake::table::Table;
use streamreel_lake::window::format_hour;
use streamreel_lake::worker::RunContext;
use streamreel_tables::Metadata;
use streamreel_tables::silver::CHANGES;
use tracing::{Instrument, info, info_span};

use crate::error::GoldError;
use crate::{changes, finalize, shard};

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Only add the title-level tables up (after every shard ran).
    pub finalize: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GoldReport {
    pub worker: &'static str,
    pub run_id: String,
    pub window_start: String,
    pub window_end: String,
    pub shard: String,
    /// Where the gold tables are: what the DAG's dbt task reads.
    pub lake_url: String,
    pub sessions_changed: u64,
    pub buckets_recomputed: u64,
    pub viewer_videos_recomputed: u64,
    pub bucket_days_recomputed: u64,
    pub finalized: bool,
    pub days_finalized: u64,
    pub titles_finalized: u64,
    pub plans: u64,
    pub seconds: f64,
}

impl RunReport for GoldReport {
    fn log_summary(&self) {
        info!(
            worker = self.worker,
            window_start = %self.window_start,
            window_end = %self.window_end,
            shard = %self.shard,
            sessions_changed = self.sessions_changed,
            buckets_recomputed = self.buckets_recomputed,
            viewer_videos_recomputed = self.viewer_videos_recomputed,
            bucket_days_recomputed = self.bucket_days_recomputed,
            finalized = self.finalized,
            days_finalized = self.days_finalized,
            titles_finalized = self.titles_finalized,
            plans = self.plans,
            seconds = self.seconds,
            "gold-aggregate {}..{}: {} changed sessions, {} viewer-videos in {} buckets recomputed{}, {:.2} s",
            self.window_start,
            self.window_end,
            self.sessions_changed,
            self.viewer_videos_recomputed,
            self.buckets_recomputed,
            if self.finalized { format!("; {} days and {} titles finalized", self.days_finalized, self.titles_finalized) } else { String::new() },
            self.seconds
        );
    }
}

pub async fn run(ctx: &RunContext, options: Options) -> Result<GoldReport, GoldError> {
    let started = Instant::now();
    let lake = ctx.config.lake()?;
    let span = info_span!("gold_aggregate", window = %ctx.window, shard = %ctx.shard, finalize = options.finalize);
    async move {
        let metadata = Metadata::load(&ctx.config.metadata_url).await?;
        let loaded_at = chrono::Utc::now().timestamp_micros();
        let buckets = ctx.config.buckets;
        let mut report = GoldReport {
            worker: ctx.worker,
            run_id: ctx.run_id.clone(),
            window_start: format_hour(ctx.window.start),
            window_end: format_hour(ctx.window.end),
            shard: if options.finalize { "finalize".into() } else { ctx.shard.to_string() },
            lake_url: lake.to_string(),
            ..Default::default()
        };
        let meta = ctx.commit_meta();
        // What the shard run read of the change log, when it read every
        // bucket: the finalize's first plan starts from it instead of reading
        // and deduplicating the log again (on a zapping day, a tenth of gold).
        let mut read_by_shard: Option<changes::Touched> = None;
        if !options.finalize {
            let input = shard::ShardInput { lake: &lake, buckets, settings: &ctx.config.metrics, metadata: &metadata, loaded_at, meta: meta.clone() };
            let counts = replanning("gold-aggregate", |plan| {
                let (input, lake) = (&input, &lake);
                async move {
                    let changes = changes::read(&Table::open(lake, &CHANGES, buckets).await?, ctx.window, {
                        let shard = ctx.shard;
                        move |b| shard.owns(b)
                    })
                    .await?;
                    let counts = shard::run(input, &changes).await?;
                    Ok::<_, GoldError>((changes.touched(), counts, plan))
                }
            })
            .await?;
            report.sessions_changed = counts.0.rows as u64;
            report.buckets_recomputed = counts.1.buckets;
            report.viewer_videos_recomputed = counts.1.viewer_videos;
            report.bucket_days_recomputed = counts.1.days;
            report.plans += counts.2 as u64;
            if ctx.shard.is_all() {
                read_by_shard = Some(counts.0);
            }
        }
        if options.finalize || !ctx.sharded {
            let counts = replanning("gold-aggregate --finalize", |plan| {
                let (lake, metadata, meta) = (&lake, &metadata, &meta);
                // A plan made again reads the log again: a conflict means the lake moved on.
                let known = read_by_shard.take();
                async move {
                    let touched = match known {
                        Some(touched) => touched,
                        None => changes::read(&Table::open(lake, &CHANGES, buckets).await?, ctx.window, |_| true).await?.touched(),
                    };
                    let counts = finalize::run(lake, buckets, metadata, &touched, loaded_at, meta).await?;
                    Ok::<_, GoldError>((touched.rows, counts, plan))
                }
            })
            .await?;
            report.sessions_changed = report.sessions_changed.max(counts.0 as u64);
            report.finalized = true;
            report.days_finalized = counts.1.days;
            report.titles_finalized = counts.1.titles;
            report.plans += counts.2 as u64;
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
    .instrument(span)
    .await
}
