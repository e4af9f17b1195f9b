//! Errors of the bronze worker.

use streamreel_lake::LakeError;
use streamreel_lake::replan::Conflicted;

#[derive(Debug, thiserror::Error)]
pub enum BronzeError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("the landing root {0} does not exist (landing_url); nothing was changed")]
    LandingRoot(String),
    #[error(
        "window {window}: {count} landing objects ingested before are gone (e.g. {examples}); bronze still holds their rows and nothing was changed. Restore them, or pass --allow-missing-objects to drop their rows"
    )]
    VanishedObjects { window: String, count: usize, examples: String },
}

impl Conflicted for BronzeError {
    fn is_conflict(&self) -> bool {
        matches!(self, BronzeError::Lake(e) if e.is_conflict())
    }
}
