//! Errors of the silver worker.

use streamreel_lake::LakeError;
use streamreel_lake::replan::Conflicted;
use streamreel_tables::MetadataError;

#[derive(Debug, thiserror::Error)]
pub enum SilverError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("the IP hash key is missing: set the environment variable {0} (silver.ip_hash_key_env)")]
    MissingIpKey(String),
}

impl Conflicted for SilverError {
    fn is_conflict(&self) -> bool {
        matches!(self, SilverError::Lake(e) if e.is_conflict())
    }
}
