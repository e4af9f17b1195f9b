//! Errors of the silver worker.

use streamreel_lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum SilverError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("video metadata {file}: {detail}")]
    Metadata { file: String, detail: String },
    #[error("the IP hash key is missing: set the environment variable {0} (silver.ip_hash_key_env)")]
    MissingIpKey(String),
    #[error("a worker task failed: {0}")]
    Task(String),
}
