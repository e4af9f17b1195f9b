//! The two bronze tables: every field of events.md typed, plus lineage
//! (raw line, source object, line number, run id); and the rejects.

use std::sync::{Arc, LazyLock};

use streamreel_lake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use streamreel_lake::delta::TableSpec;

pub const LANDING_DATE: &str = "landing_date";
pub const LANDING_HOUR: &str = "landing_hour";

/// Text fields of an event, in schema order after the three required ids.
pub const OPTIONAL_TEXT_FIELDS: [&str; 12] = [
    "device_type",
    "device_id",
    "device_os",
    "app_version",
    "quality",
    "ip_address",
    "country",
    "state",
    "city",
    "isp",
    "connection_type",
    "session_id",
];

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub static EVENTS_SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let mut fields = vec![
        text("event_id", false),
        text("customer_id", false),
        text("title_id", false),
        text("event_type", false),
        Field::new("event_timestamp", timestamp(), false),
        Field::new("position_seconds", DataType::Float64, true),
        Field::new("watch_duration_seconds", DataType::Float64, true),
        Field::new("completion_percentage", DataType::Float64, true),
        Field::new("bandwidth_mbps", DataType::Float64, true),
        Field::new("buffering_events", DataType::Int64, true),
        Field::new("buffering_duration_seconds", DataType::Float64, true),
        Field::new("error_count", DataType::Int64, true),
    ];
    fields.extend(OPTIONAL_TEXT_FIELDS.iter().map(|name| text(name, true)));
    fields.extend([
        text("source_object", false),
        Field::new("line_number", DataType::Int64, false),
        text("run_id", false),
        text("raw_line", false),
        Field::new(LANDING_DATE, DataType::Date32, false),
        Field::new(LANDING_HOUR, DataType::Int32, false),
    ]);
    Arc::new(Schema::new(fields))
});

pub static EVENTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "bronze/events",
    schema: EVENTS_SCHEMA.clone(),
    partition_columns: &[LANDING_DATE, LANDING_HOUR],
    stats_columns: &["event_timestamp", "customer_id", "title_id", "event_type", "line_number"],
    plain_columns: &["event_id", "raw_line", "ip_address", "device_id", "session_id"],
});

pub static REJECTS_SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source_object", DataType::Utf8, false),
        // Null for a whole object that could not be read.
        Field::new("line_number", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
        Field::new("raw_line", DataType::Utf8, true),
        Field::new("run_id", DataType::Utf8, false),
        Field::new(LANDING_DATE, DataType::Date32, false),
        Field::new(LANDING_HOUR, DataType::Int32, false),
    ]))
});

pub static REJECTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "bronze/rejects",
    schema: REJECTS_SCHEMA.clone(),
    partition_columns: &[LANDING_DATE, LANDING_HOUR],
    stats_columns: &["reason", "line_number"],
    plain_columns: &["raw_line"],
});

/// The schema of the parquet files (partition columns live in the log).
pub fn without_partitions(schema: &Schema) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| f.name() != LANDING_DATE && f.name() != LANDING_HOUR)
            .cloned()
            .collect::<Vec<_>>(),
    ))
}
