//! The commit protocol: a change lands only on the snapshot it was planned
//! from. When another writer committed since, its actions are checked
//! against what the plan read and what it removes; if they touched neither,
//! the change goes in on top of them, otherwise the commit fails with
//! [`LakeError::Conflict`] naming the competing commit, and the stage plans
//! again. Nothing is ever re-applied from a stale plan.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add};
use deltalake::logstore::CommitOrBytes;
use deltalake::protocol::{DeltaOperation, SaveMode};

use tracing::{debug, info};

use super::log::{Actions, data_file_of, parse_commit};
use super::{DataFile, PartitionKey, Table};
use crate::error::{LakeError, Result};
use crate::location::Location;
use crate::shard::Shard;
use crate::window::Window;

/// Writers racing for the same version, with nothing in conflict, retry this
/// often before giving up.
const MAX_RACES: usize = 200;
/// A checkpoint every this many versions keeps opening a table cheap.
const CHECKPOINT_INTERVAL: u64 = 10;
/// Test hook for the crash tests: `before:<table path>` or
/// `after:<table path>` kills the process at that commit.
pub const KILL_AT_ENV: &str = "STREAMREEL_TEST_KILL_AT";

/// What a plan read from the table: a concurrent commit that adds or removes
/// files there invalidates the plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ReadSet {
    /// A blind write: appends commute with anything.
    #[default]
    Nothing,
    Partitions(BTreeSet<PartitionKey>),
    /// An unpartitioned table read whole.
    Table,
}

impl ReadSet {
    fn covers(&self, key: &PartitionKey) -> bool {
        match self {
            ReadSet::Nothing => false,
            ReadSet::Partitions(keys) => keys.contains(key),
            ReadSet::Table => true,
        }
    }
}

/// One table's part of a stage's plan.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub adds: Vec<Add>,
    /// Live files of the snapshot the plan read.
    pub removes: Vec<DataFile>,
    pub reads: ReadSet,
    /// False for compaction: the removed rows are all in the adds.
    pub compaction: bool,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty() && self.removes.is_empty()
    }
}

/// Who commits: recorded in every commit's app metadata, for lineage and to
/// name the competing run in a conflict.
#[derive(Debug, Clone)]
pub struct CommitMeta {
    pub worker: String,
    pub run_id: String,
    pub window: Option<Window>,
    pub shard: Option<Shard>,
}

impl CommitMeta {
    fn app_metadata(&self) -> HashMap<String, serde_json::Value> {
        let mut meta = HashMap::from([
            ("streamreel.worker".to_string(), self.worker.clone().into()),
            ("streamreel.run_id".to_string(), self.run_id.clone().into()),
        ]);
        if let Some(window) = self.window {
            meta.insert("streamreel.window".into(), window.to_string().into());
        }
        if let Some(shard) = self.shard {
            meta.insert("streamreel.shard".into(), shard.to_string().into());
        }
        meta
    }

    fn window_text(&self) -> String {
        self.window.map(|w| format!("window {w}: ")).unwrap_or_default()
    }
}

impl Table {
    /// Commits `change` as one Delta version, on top of the snapshot it was
    /// planned from or of later commits that touched nothing it read or
    /// removes. Returns the version, or `None` for an empty change.
    pub async fn commit(&mut self, change: Change, meta: &CommitMeta) -> Result<Option<u64>> {
        let started = Instant::now();
        let log_store = self.delta.log_store();
        let table = self.location().to_string();
        let mut checked = self.snapshot.version;
        let removed: HashSet<&str> = change.removes.iter().map(|f| f.path.as_str()).collect();
        let mut concurrent: Vec<(u64, Actions)> = Vec::new();
        if change.is_empty() {
            // Nothing to write, but the plan still decided that from what it read.
            let latest = log_store.get_latest_version(checked).await.map_err(|e| self.error(e))?;
            self.check_versions(checked + 1..=latest, &change, &removed, meta).await?;
            return Ok(None);
        }
        kill_point("before", self.spec().path);
        let mut actions: Vec<Action> = change.removes.iter().map(|f| Action::Remove(f.remove_action(self.spec(), !change.compaction))).collect();
        actions.extend(change.adds.iter().cloned().map(|mut add| {
            add.data_change = !change.compaction;
            Action::Add(add)
        }));
        let operation = if change.compaction {
            DeltaOperation::Optimize { predicate: None, target_size: change.adds.iter().map(|a| a.size).max().unwrap_or(0) }
        } else {
            DeltaOperation::Write {
                mode: if change.removes.is_empty() { SaveMode::Append } else { SaveMode::Overwrite },
                partition_by: (!self.spec().partition_columns.is_empty())
                    .then(|| self.spec().partition_columns.iter().map(|c| c.to_string()).collect()),
                predicate: None,
            }
        };
        let prepared = CommitBuilder::from(CommitProperties::default())
            .with_actions(actions)
            .with_app_metadata(meta.app_metadata())
            .build(None, log_store.clone(), operation)
            .into_prepared_commit_future()
            .await
            .map_err(|e| self.error(e))?;
        let bytes: CommitOrBytes = prepared.commit_or_bytes().clone();
        let mut version = None;
        for race in 0..MAX_RACES {
            let latest = log_store.get_latest_version(checked).await.map_err(|e| self.error(e))?;
            if latest > checked {
                concurrent.extend(self.check_versions(checked + 1..=latest, &change, &removed, meta).await?);
                checked = latest;
            }
            match log_store.write_commit_entry(checked + 1, bytes.clone(), uuid::Uuid::new_v4()).await {
                Ok(()) => {
                    version = Some(checked + 1);
                    break;
                }
                Err(TransactionError::VersionAlreadyExists(_)) => {
                    debug!(table = %table, race, "another writer took the version; checking its commit");
                    tokio::time::sleep(Duration::from_millis(5 + (race as u64 % 7) * 3)).await;
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        let Some(version) = version else {
            return Err(LakeError::Conflict {
                table,
                detail: format!("{}gave up after {MAX_RACES} commit races with other writers", meta.window_text()),
            });
        };
        kill_point("after", self.spec().path);
        for (v, actions) in &concurrent {
            self.snapshot.apply(*v, actions);
        }
        let ours = Actions {
            adds: change.adds.iter().map(|a| data_file_of(a, self.spec().partition_columns)).collect(),
            removes: change.removes.iter().map(|f| (f.path.clone(), f.partition.clone())).collect(),
            ..Default::default()
        };
        self.snapshot.apply(version, &ours);
        self.list_files();
        if version % CHECKPOINT_INTERVAL == 0 {
            self.checkpoint(version).await?;
        }
        info!(table = %table, version, added = change.adds.len(), removed = change.removes.len(), seconds = started.elapsed().as_secs_f64(), "committed");
        Ok(Some(version))
    }

    /// Writes a checkpoint of `version`, so that opening the table reads at
    /// most a few commits.
    pub(super) async fn checkpoint(&self, version: u64) -> Result<()> {
        let mut at = super::builder(self.location())?.build().map_err(|e| self.error(e))?;
        at.load_version(version).await.map_err(|e| self.error(e))?;
        deltalake::checkpoints::create_checkpoint(&at, None).await.map_err(|e| self.error(format!("checkpoint of version {version}: {e}")))
    }

    /// The commits of `versions` (by other writers), or [`LakeError::Conflict`]
    /// when one of them touched what `change` read or removes.
    async fn check_versions(
        &self,
        versions: std::ops::RangeInclusive<u64>,
        change: &Change,
        removed: &HashSet<&str>,
        meta: &CommitMeta,
    ) -> Result<Vec<(u64, Actions)>> {
        let log_store = self.delta.log_store();
        let mut seen = Vec::new();
        for version in versions {
            let Some(bytes) = log_store.read_commit_entry(version).await.map_err(|e| self.error(e))? else { continue };
            let actions = parse_commit(&bytes, self.spec().partition_columns).map_err(|e| self.error(format!("version {version}: {e}")))?;
            let touched = if actions.configuration.is_some() || actions.protocol_changed {
                Some("changed the table's metadata".to_string())
            } else if let Some((path, _)) = actions.removes.iter().find(|(p, _)| removed.contains(p.as_str())) {
                Some(format!("removed {path}, which this run replaces"))
            } else {
                let mut partitions = actions.adds.iter().map(|a| &a.partition).chain(actions.removes.iter().map(|(_, key)| key));
                partitions.find(|key| change.reads.covers(key)).map(|key| format!("changed partition {}, which this run read", self.describe(key)))
            };
            if let Some(what) = touched {
                return Err(LakeError::Conflict {
                    table: self.location().to_string(),
                    detail: format!(
                        "{}a concurrent commit (version {version}, {}) {what}",
                        meta.window_text(),
                        describe_commit(&actions.commit_info)
                    ),
                });
            }
            seen.push((version, actions));
        }
        Ok(seen)
    }

    fn describe(&self, key: &PartitionKey) -> String {
        self.spec().partition_columns.iter().zip(key).map(|(c, v)| format!("{c}={}", v.as_deref().unwrap_or("null"))).collect::<Vec<_>>().join("/")
    }
}

/// Who made a commit, from its commit info.
fn describe_commit(info: &serde_json::Map<String, serde_json::Value>) -> String {
    let text = |key: &str| info.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let mut parts = vec![text("operation").unwrap_or_else(|| "unknown operation".into())];
    for (key, label) in [("streamreel.worker", "by"), ("streamreel.run_id", "run"), ("streamreel.window", "window"), ("streamreel.shard", "shard")] {
        if let Some(value) = text(key) {
            parts.push(format!("{label} {value}"));
        }
    }
    parts.join(" ")
}

fn kill_point(when: &str, table: &str) {
    if let Ok(target) = std::env::var(KILL_AT_ENV)
        && target == format!("{when}:{table}")
    {
        eprintln!("{KILL_AT_ENV}: killing the process {when} the commit to {table}");
        // SAFETY: sending a signal to our own process.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Removes what killed commits leave in a local table's log: staged
/// `NNN.json#k` files of versions already decided, and temporary commit
/// files, once they are old enough that no live writer can still own them.
pub(crate) async fn remove_stale_staging(location: &Location) {
    let Some(dir) = location.local_path().map(|d| d.join("_delta_log")) else { return };
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let latest = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).and_then(|v| v.parse::<u64>().ok()))
        .max();
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let staged_version = name.split_once(".json#").and_then(|(v, _)| v.parse::<u64>().ok());
        let stale = match staged_version {
            Some(v) => latest.is_some_and(|latest| v <= latest),
            None => name.starts_with("_commit_") && name.ends_with(".json.tmp"),
        };
        let old =
            entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok()).is_some_and(|age| age > Duration::from_secs(1));
        if stale && old {
            debug!(file = %name, "removing debris of a killed commit");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_winning_commit_is_read_for_its_partitions_removals_and_author() {
        let log = br#"{"commitInfo":{"operation":"WRITE","streamreel.worker":"silver-enrich","streamreel.run_id":"r1","streamreel.window":"[2025-08-11T10, 2025-08-11T11)"}}
{"add":{"path":"bucket=3/event_date=2025-08-11/part-1.parquet","partitionValues":{"bucket":"3","event_date":"2025-08-11"},"size":1,"modificationTime":0,"dataChange":true}}
{"remove":{"path":"bucket=3/event_date=2025-08-11/part-%3D0.parquet","partitionValues":{"bucket":"3","event_date":"2025-08-11"},"dataChange":true}}
"#;
        let actions = parse_commit(log, &["bucket", "event_date"]).unwrap();
        let key = vec![Some("3".to_string()), Some("2025-08-11".to_string())];
        assert_eq!(actions.adds[0].partition, key);
        assert_eq!(actions.removes, vec![("bucket=3/event_date=2025-08-11/part-=0.parquet".to_string(), key.clone())]);
        assert!(actions.configuration.is_none() && !actions.protocol_changed);
        assert_eq!(describe_commit(&actions.commit_info), "WRITE by silver-enrich run r1 window [2025-08-11T10, 2025-08-11T11)");
        let reads = ReadSet::Partitions([key.clone()].into());
        assert!(reads.covers(&key));
        assert!(!ReadSet::Nothing.covers(&key));
    }
}
