//! Errors of the gold worker.

use streamreel_lake::LakeError;
use streamreel_lake::replan::Conflicted;
use streamreel_tables::MetadataError;

#[derive(Debug, thiserror::Error)]
pub enum GoldError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("--finalize adds up every bucket: it takes no --shard")]
    FinalizeWithShard,
}

impl Conflicted for GoldError {
    fn is_conflict(&self) -> bool {
        matches!(self, GoldError::Lake(e) if e.is_conflict())
    }
}
