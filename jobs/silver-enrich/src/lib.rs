//! `silver-enrich`: the window's bronze rows become clean, deduplicated,
//! enriched events; the sessions that gain or lose an event are recomputed
//! into watched segments and per-session facts (docs/metrics.md).

pub mod columns;
pub mod dedup;
pub mod enrich;
pub mod error;
pub mod plan;
pub mod run;
pub mod segments;
pub mod sessions;
pub mod write;

pub use error::SilverError;
pub use run::{SilverReport, run};
