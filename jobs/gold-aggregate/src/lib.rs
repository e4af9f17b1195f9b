//! `gold-aggregate`: engagement per viewer and video, per viewer and day,
//! per video and day, retention and drop-off, quality of service per hour
//! and concurrency per five minutes (docs/metrics.md, "Gold"), updated for
//! exactly what the window's silver runs changed, one shard of buckets at a
//! time, then added up over buckets by `--finalize`.

pub mod changes;
pub mod error;
pub mod finalize;
pub mod metrics;
pub mod run;
pub mod shard;
pub mod summary;

pub use error::GoldError;
pub use run::{GoldReport, Options, run};
