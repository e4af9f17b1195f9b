//! `bronze-ingest`: landing JSON lines to the `bronze/events` Delta table,
//! every bad line or unreadable object kept in `bronze/rejects` with its
//! reason.

pub mod error;
mod flat;
pub mod ingest;
pub mod landing;
pub mod lines;
pub mod object;
pub mod parse;

pub use error::BronzeError;
pub use ingest::{IngestReport, Options, run};
