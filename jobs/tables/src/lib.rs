//! The StreamReel contract, in one crate: where every table lives, its
//! schema, partitioning and row type (bronze, silver, gold and the internal
//! tables between them), the buckets rows carry, the video metadata reader,
//! the event vocabulary and the union of intervals. The workers depend on
//! this crate and on the storage layer, never on each other; docs/ says what
//! every column means.

pub mod bronze;
pub mod event_type;
pub mod gold;
pub mod intervals;
pub mod metadata;
pub mod silver;

mod builders;
mod fields;

pub use event_type::EventType;
pub use metadata::{Metadata, MetadataError, VideoMetadata};

/// The bucket of a customer id: silver and gold rows carry it as the
/// `customer_bucket` partition column.
pub fn customer_bucket(customer_id: &str, buckets: u32) -> u32 {
    streamreel_lake::shard::bucket_of(customer_id, buckets)
}

/// Every table of the contract, in pipeline order: what maintenance walks.
pub fn all_tables() -> Vec<&'static streamreel_lake::TableSpec> {
    vec![
        &*bronze::EVENTS,
        &*bronze::REJECTS,
        &*silver::EVENTS,
        &*silver::DUPLICATES,
        &*silver::SEGMENTS,
        &*silver::SESSIONS,
        &*silver::CHANGES,
        &*gold::ENGAGEMENT,
        &*gold::VIEWER_DAILY,
        &*gold::VIDEO_DAILY,
        &*gold::RETENTION,
        &*gold::QOS_HOURLY,
        &*gold::CONCURRENCY,
        &*gold::VIDEO_DAILY_PARTS,
        &*gold::RETENTION_PARTS,
        &*gold::QOS_HOURLY_PARTS,
        &*gold::CONCURRENCY_PARTS,
    ]
}
