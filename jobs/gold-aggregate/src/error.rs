//! Errors of the gold worker.

use silver_enrich::SilverError;
use streamreel_lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum GoldError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Silver(#[from] SilverError),
}
