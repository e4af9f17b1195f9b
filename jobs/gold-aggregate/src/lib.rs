//! `gold-aggregate`: engagement per viewer and video, per video and day,
//! retention and drop-off, quality of service per hour and concurrency per
//! five minutes (shared/spec/metrics.md, "Gold"), updated incrementally.

pub mod error;
pub mod facts;
pub mod metrics;
pub mod run;
pub mod schema;
pub mod summary;

pub use error::GoldError;
pub use run::{GoldReport, run};
