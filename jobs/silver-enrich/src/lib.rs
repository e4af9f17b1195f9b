//! `silver-enrich`: the window's bronze rows become clean, deduplicated,
//! enriched events; the sessions they touch are recomputed into watched
//! segments and per-session facts (shared/spec/metrics.md).

pub mod enrich;
pub mod error;
pub mod rows;
pub mod run;
pub mod schema;
pub mod segments;
pub mod sessions;

pub use error::SilverError;
pub use run::{SilverReport, run};
