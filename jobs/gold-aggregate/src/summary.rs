//! A short, readable summary of the gold tables for a terminal: top titles,
//! the engagement tier mix, the ISPs where buffering hurts most.

use polars::prelude::*;
use streamreel_lake::arrow::array::{Array, AsArray, RecordBatch};
use streamreel_lake::arrow::compute::concat_batches;
use streamreel_lake::arrow::datatypes::Float64Type;
use streamreel_lake::delta::{Table, TableSpec};
use streamreel_lake::storage::Location;

use crate::schema::{ENGAGEMENT, QOS_HOURLY};

async fn read(lake: &Location, spec: &TableSpec, columns: &[&str]) -> Result<RecordBatch, crate::GoldError> {
    let table = Table::open_or_create(lake, spec).await?;
    let batches = table.read(&table.files()?, Some(columns)).await?;
    let schema = std::sync::Arc::new(spec.schema.project(&columns.iter().map(|c| spec.schema.index_of(c).expect("column")).collect::<Vec<_>>()).expect("projection"));
    concat_batches(&schema, &batches).map_err(|e| crate::GoldError::Lake(streamreel_lake::LakeError::arrow(spec.path, e)))
}

fn texts(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    batch.column_by_name(name).expect("column").as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
}

fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let a = batch.column_by_name(name).expect("column").as_primitive::<Float64Type>();
    (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))).collect()
}

fn descending() -> SortMultipleOptions {
    SortMultipleOptions::default().with_order_descending(true).with_nulls_last(true)
}

/// Renders the summary of the gold tables under `lake_url`.
pub async fn summary(lake_url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let lake = Location::parse(lake_url)?;
    let engagement = read(&lake, &ENGAGEMENT, &["customer_id", "title", "title_id", "total_watch_seconds", "unique_watch_percentage", "engagement_tier"]).await?;
    let qos = read(&lake, &QOS_HOURLY, &["isp", "sessions", "buffering_seconds", "watch_seconds"]).await?;
    let viewers = df!(
        "title" => texts(&engagement, "title").into_iter().zip(texts(&engagement, "title_id")).map(|(t, id)| t.or(id)).collect::<Vec<_>>(),
        "customer_id" => texts(&engagement, "customer_id"),
        "watch_seconds" => floats(&engagement, "total_watch_seconds"),
        "unique_watch_pct" => floats(&engagement, "unique_watch_percentage"),
        "tier" => texts(&engagement, "engagement_tier"),
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
        "isp" => texts(&qos, "isp"),
        "sessions" => qos.column_by_name("sessions").expect("sessions").as_primitive::<streamreel_lake::arrow::datatypes::Int64Type>().values().to_vec(),
        "buffering_seconds" => floats(&qos, "buffering_seconds"),
        "watch_seconds" => floats(&qos, "watch_seconds"),
    )?
    .lazy()
    .group_by([col("isp")])
    .agg([col("sessions").sum(), col("buffering_seconds").sum(), col("watch_seconds").sum()])
    .with_column((lit(100.0) * col("buffering_seconds") / (col("buffering_seconds") + col("watch_seconds"))).alias("rebuffer_%"))
    .select([col("isp"), col("sessions"), col("rebuffer_%")])
    .sort(["rebuffer_%"], descending())
    .limit(5)
    .collect()?;
    Ok(format!(
        "Top titles by viewers\n{top_titles}\n\nEngagement tier mix (viewer-videos)\n{tiers}\n\nWorst ISPs by rebuffer ratio\n{isps}\n"
    ))
}
