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
use serde::Deserialize;
use tracing::{debug, info};

use super::{DataFile, PartitionKey, Table};
use crate::error::{LakeError, Result};
use crate::location::Location;
use crate::shard::Shard;
use crate::window::Window;

/// Writers racing for the same version, with nothing in conflict, retry this
/// often before giving up.
const MAX_RACES: usize = 200;
/// A checkpoint every this many versions keeps opening a table cheap.
const CHECKPOINT_INTERVAL: u64 = 100;
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
        let log_store = self.delta().log_store();
        let table = self.location().to_string();
        let mut checked = self.delta().version().unwrap_or(0);
        let removed: HashSet<&str> = change.removes.iter().map(|f| f.path.as_str()).collect();
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
                partition_by: (!self.spec().partition_columns.is_empty()).then(|| self.spec().partition_columns.iter().map(|c| c.to_string()).collect()),
                predicate: None,
            }
        };
        let mut version = None;
        for race in 0..MAX_RACES {
            let latest = log_store.get_latest_version(checked).await.map_err(|e| self.error(e))?;
            if latest > checked {
                self.check_versions(checked + 1..=latest, &change, &removed, meta).await?;
                self.delta_mut().update_incremental(Some(latest)).await.map_err(|e| self.error(e))?;
                checked = latest;
            }
            let snapshot = self.delta().snapshot().map_err(|e| self.error(e))?;
            let prepared = CommitBuilder::from(CommitProperties::default())
                .with_actions(actions.clone())
                .with_app_metadata(meta.app_metadata())
                .build(Some(snapshot), log_store.clone(), operation.clone())
                .into_prepared_commit_future()
                .await
                .map_err(|e| self.error(e))?;
            let bytes: CommitOrBytes = prepared.commit_or_bytes().clone();
            match log_store.write_commit_entry(checked + 1, bytes, uuid::Uuid::new_v4()).await {
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
        self.delta_mut().update_incremental(Some(version)).await.map_err(|e| self.error(e))?;
        self.reload_files()?;
        if version % CHECKPOINT_INTERVAL == 0 {
            deltalake::checkpoints::create_checkpoint(self.delta(), None).await.map_err(|e| self.error(format!("checkpoint: {e}")))?;
        }
        info!(table = %table, version, added = change.adds.len(), removed = change.removes.len(), seconds = started.elapsed().as_secs_f64(), "committed");
        Ok(Some(version))
    }

    /// Fails with [`LakeError::Conflict`] when one of `versions` touched what
    /// `change` read or removes.
    async fn check_versions(
        &self,
        versions: std::ops::RangeInclusive<u64>,
        change: &Change,
        removed: &HashSet<&str>,
        meta: &CommitMeta,
    ) -> Result<()> {
        let log_store = self.delta().log_store();
        for version in versions {
            let Some(bytes) = log_store.read_commit_entry(version).await.map_err(|e| self.error(e))? else { continue };
            let commit = WinningCommit::parse(&bytes, self.spec().partition_columns).map_err(|e| self.error(format!("version {version}: {e}")))?;
            let touched = if commit.metadata_changed {
                Some("changed the table's metadata".to_string())
            } else if let Some(path) = commit.removed.iter().find(|p| removed.contains(p.as_str())) {
                Some(format!("removed {path}, which this run replaces"))
            } else {
                commit.partitions.iter().find(|key| change.reads.covers(key)).map(|key| format!("changed partition {}, which this run read", self.describe(key)))
            };
            if let Some(what) = touched {
                return Err(LakeError::Conflict {
                    table: self.location().to_string(),
                    detail: format!("{}a concurrent commit (version {version}, {}) {what}", meta.window_text(), commit.describe()),
                });
            }
        }
        Ok(())
    }

    fn describe(&self, key: &PartitionKey) -> String {
        self.spec().partition_columns.iter().zip(key).map(|(c, v)| format!("{c}={}", v.as_deref().unwrap_or("null"))).collect::<Vec<_>>().join("/")
    }

    fn delta_mut(&mut self) -> &mut deltalake::DeltaTable {
        &mut self.delta
    }

    fn reload_files(&mut self) -> Result<()> {
        self.files = self.list_files()?;
        Ok(())
    }
}

/// What a commit of another writer did, as far as conflicts go.
struct WinningCommit {
    partitions: Vec<PartitionKey>,
    removed: Vec<String>,
    metadata_changed: bool,
    info: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct LogLine {
    #[serde(default)]
    add: Option<FileAction>,
    #[serde(default)]
    remove: Option<FileAction>,
    #[serde(default, rename = "metaData")]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    protocol: Option<serde_json::Value>,
    #[serde(default, rename = "commitInfo")]
    commit_info: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct FileAction {
    path: String,
    #[serde(default, rename = "partitionValues")]
    partition_values: Option<HashMap<String, Option<String>>>,
}

impl WinningCommit {
    fn parse(bytes: &[u8], partition_columns: &[&str]) -> std::result::Result<WinningCommit, String> {
        let mut commit = WinningCommit { partitions: Vec::new(), removed: Vec::new(), metadata_changed: false, info: Default::default() };
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            let line: LogLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            commit.metadata_changed |= line.metadata.is_some() || line.protocol.is_some();
            if let Some(info) = line.commit_info {
                commit.info = info;
            }
            for (action, removal) in [(line.add, false), (line.remove, true)] {
                let Some(action) = action else { continue };
                let values = action.partition_values.unwrap_or_default();
                commit.partitions.push(partition_columns.iter().map(|c| values.get(*c).cloned().flatten()).collect());
                if removal {
                    commit.removed.push(percent_decode(&action.path));
                }
            }
        }
        Ok(commit)
    }

    fn describe(&self) -> String {
        let text = |key: &str| self.info.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let mut parts = vec![text("operation").unwrap_or_else(|| "unknown operation".into())];
        if let Some(worker) = text("streamreel.worker") {
            parts.push(format!("by {worker}"));
        }
        if let Some(run) = text("streamreel.run_id") {
            parts.push(format!("run {run}"));
        }
        if let Some(window) = text("streamreel.window") {
            parts.push(format!("window {window}"));
        }
        if let Some(shard) = text("streamreel.shard") {
            parts.push(format!("shard {shard}"));
        }
        parts.join(" ")
    }
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&path[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
        let old = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok()).is_some_and(|age| age > Duration::from_secs(2));
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
        let commit = WinningCommit::parse(log, &["bucket", "event_date"]).unwrap();
        assert_eq!(commit.partitions, vec![vec![Some("3".into()), Some("2025-08-11".into())]; 2]);
        assert_eq!(commit.removed, vec!["bucket=3/event_date=2025-08-11/part-=0.parquet".to_string()]);
        assert!(!commit.metadata_changed);
        assert_eq!(commit.describe(), "WRITE by silver-enrich run r1 window [2025-08-11T10, 2025-08-11T11)");
        let reads = ReadSet::Partitions([vec![Some("3".into()), Some("2025-08-11".into())]].into());
        assert!(reads.covers(&commit.partitions[0]));
        assert!(!ReadSet::Nothing.covers(&commit.partitions[0]));
    }
}
