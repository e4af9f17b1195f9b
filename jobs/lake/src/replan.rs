//! Planning again when a concurrent run changed what a plan read: the
//! stage's whole attempt (open, plan, write, commit) reruns on fresh
//! snapshots, a bounded number of times.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::error::LakeError;

/// Plans a stage makes before it gives up with the conflict's line.
pub const MAX_PLANS: u32 = 6;

/// Errors that can say whether they are a commit conflict.
pub trait Conflicted {
    fn is_conflict(&self) -> bool;
}

impl Conflicted for LakeError {
    fn is_conflict(&self) -> bool {
        LakeError::is_conflict(self)
    }
}

/// Runs `attempt` until it succeeds, fails with something other than a
/// conflict, or has conflicted [`MAX_PLANS`] times.
pub async fn replanning<T, E, F, Fut>(stage: &str, mut attempt: F) -> Result<T, E>
where
    E: Conflicted + std::fmt::Display,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut plan = 1;
    loop {
        match attempt(plan).await {
            Err(e) if e.is_conflict() && plan < MAX_PLANS => {
                warn!(stage, plan, "{e}; planning again on the new snapshot");
                // Spread competing runs apart so one of them gets through.
                let jitter = (uuid::Uuid::new_v4().as_u128() % 400) as u64;
                tokio::time::sleep(Duration::from_millis(100 * plan as u64 + jitter)).await;
                plan += 1;
            }
            other => return other,
        }
    }
}
