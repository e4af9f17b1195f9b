//! Errors of the bronze worker.

use streamreel_lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum BronzeError {
    #[error(transparent)]
    Storage(#[from] LakeError),
    #[error("a parse task failed: {0}")]
    Task(String),
    #[error("{rejected} of {records} records rejected ({ratio:.2} %), above the allowed {threshold:.2} % (bronze.max_reject_ratio); every line was written to bronze/events or bronze/rejects")]
    TooManyRejects {
        rejected: u64,
        records: u64,
        ratio: f64,
        threshold: f64,
    },
}
