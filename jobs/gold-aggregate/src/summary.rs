//! A short, readable summary of the gold tables for a terminal: top titles,
//! the engagement tier mix, the ISPs where buffering hurts most.

use polars::prelude::*;
use streamreel_lake::Location;
use streamreel_lake::table::Table;
use streamreel_tables::gold::{ENGAGEMENT, EngagementRow, QOS_HOURLY, QosRow};

use crate::shard::read_rows;

fn descending() -> SortMultipleOptions {
    SortMultipleOptions::default().with_order_descending(true).with_nulls_last(true)
}

/// Renders the summary of the gold tables under `lake_url`.
pub async fn summary(lake_url: &str, buckets: u32) -> Result<String, Box<dyn std::error::Error>> {
    let lake = Location::parse(lake_url)?;
    let engagement: Vec<EngagementRow> = read_rows(&Table::open(&lake, &ENGAGEMENT, buckets).await?, |_| true).await?;
    let qos: Vec<QosRow> = read_rows(&Table::open(&lake, &QOS_HOURLY, buckets).await?, |_| true).await?;
    let viewers = df!(
        "title" => engagement.iter().map(|e| e.title.clone().unwrap_or_else(|| e.title_id.clone())).collect::<Vec<_>>(),
        "customer_id" => engagement.iter().map(|e| e.customer_id.clone()).collect::<Vec<_>>(),
        "watch_seconds" => engagement.iter().map(|e| e.total_watch_seconds).collect::<Vec<_>>(),
        "unique_watch_pct" => engagement.iter().map(|e| e.unique_watch_percentage).collect::<Vec<_>>(),
        "tier" => engagement.iter().map(|e| e.engagement_tier.clone()).collect::<Vec<_>>(),
    )?;
    let top_titles = viewers
        .clone()
        .lazy()
        .group_by([col("title")])
        .agg([
            col("customer_id").n_unique().alias("viewers"),
            (col("watch_seconds").sum() / lit(3600.0)).alias("watch_hours"),
            col("unique_watch_pct").mean().alias("avg_unique_watch_%"),
        ])
        .sort(["viewers"], descending())
        .limit(10)
        .collect()?;
    let total = viewers.height().max(1) as f64;
    let tiers = viewers
        .lazy()
        .group_by([col("tier")])
        .agg([len().alias("viewer_videos")])
        .with_column((col("viewer_videos").cast(DataType::Float64) * lit(100.0 / total)).alias("share_%"))
        .sort(["viewer_videos"], descending())
        .collect()?;
    let isps = df!(
        "isp" => qos.iter().map(|q| q.isp.clone()).collect::<Vec<_>>(),
        "sessions" => qos.iter().map(|q| q.sessions).collect::<Vec<_>>(),
        "buffering_seconds" => qos.iter().map(|q| q.buffering_seconds).collect::<Vec<_>>(),
        "watch_seconds" => qos.iter().map(|q| q.watch_seconds).collect::<Vec<_>>(),
    )?
    .lazy()
    .group_by([col("isp")])
    .agg([col("sessions").sum(), col("buffering_seconds").sum(), col("watch_seconds").sum()])
    .with_column((lit(100.0) * col("buffering_seconds") / (col("buffering_seconds") + col("watch_seconds"))).alias("rebuffer_%"))
    .select([col("isp"), col("sessions"), col("rebuffer_%")])
    .sort(["rebuffer_%"], descending())
    .limit(5)
    .collect()?;
    Ok(format!("Top titles by viewers\n{top_titles}\n\nEngagement tier mix (viewer-videos)\n{tiers}\n\nWorst ISPs by rebuffer ratio\n{isps}\n"))
}
