//! `bronze-ingest`: landing JSON lines to the `bronze/events` Delta table,
//! every bad line or unreadable object kept in `bronze/rejects` with a reason.

pub mod error;
pub mod ingest;
pub mod lines;
pub mod object;
pub mod parse;
pub mod schema;

pub use error::BronzeError;
pub use ingest::{IngestReport, hour_folder, run};

/// Fails a finished run whose share of rejects passes the configured limit.
pub fn check_reject_ratio(report: &IngestReport, max_ratio: f64) -> Result<(), BronzeError> {
    if report.reject_ratio > max_ratio {
        return Err(BronzeError::TooManyRejects {
            rejected: report.rejected,
            records: report.rows_written + report.rejected,
            ratio: report.reject_ratio * 100.0,
            threshold: max_ratio * 100.0,
        });
    }
    Ok(())
}
