//! Keeping a table healthy for years: bin-packing small files (a commit
//! without data change), expiring files past a retention, deleting files no
//! version within the retention can read (and orphans of killed commits),
//! removing old log entries while keeping a checkpoint, and measuring what
//! the table holds on storage.

use std::collections::BTreeMap;
use std::time::Duration;

use deltalake::DeltaTableError;
use deltalake::kernel::Add;
use deltalake::kernel::transaction::TransactionError;
use deltalake::operations::vacuum::VacuumMode;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tracing::warn;

use super::{Change, DataFile, PartitionKey, ReadSet, Table};
use crate::error::{LakeError, Result};

/// How long checkpoints keep a removed file's tombstone (Delta table property).
pub const TOMBSTONE_RETENTION: &str = "delta.deletedFileRetentionDuration";

/// One compaction unit: small files of one partition and what replaces them.
#[derive(Debug, Clone)]
pub struct Bin {
    pub files: Vec<DataFile>,
    pub adds: Vec<Add>,
}

/// What a table holds on storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DiskUsage {
    /// Live files of the snapshot and their bytes.
    pub live_files: u64,
    pub live_bytes: u64,
    /// Every data file under the table (live, removed, orphaned).
    pub stored_files: u64,
    pub stored_bytes: u64,
    pub log_files: u64,
    pub log_bytes: u64,
}

impl Table {
    /// Per partition, the files smaller than `target` bytes packed (smallest
    /// first) into bins of at most `target` bytes; bins of one file are left.
    pub fn compaction_bins(&self, target: u64) -> Vec<Vec<DataFile>> {
        let mut by_partition: BTreeMap<&PartitionKey, Vec<&DataFile>> = BTreeMap::new();
        for file in self.files().iter().filter(|f| (f.size as u64) < target) {
            by_partition.entry(&file.partition).or_default().push(file);
        }
        let mut bins = Vec::new();
        for mut files in by_partition.into_values() {
            files.sort_by_key(|f| (f.size, f.path.clone()));
            let mut bin: Vec<DataFile> = Vec::new();
            let mut size = 0u64;
            for file in files {
                if !bin.is_empty() && size + file.size as u64 > target {
                    bins.push(std::mem::take(&mut bin));
                    size = 0;
                }
                size += file.size as u64;
                bin.push(file.clone());
            }
            bins.push(bin);
        }
        bins.retain(|bin| bin.len() > 1);
        bins
    }

    /// Rewrites each bin as one file (rows unchanged, in file order).
    pub async fn compact(&self, bins: Vec<Vec<DataFile>>, target: u64) -> Result<Vec<Bin>> {
        let mut out = Vec::with_capacity(bins.len());
        for files in bins {
            let mut writer = self.writer().whole_files(target as usize);
            for file in &files {
                for batch in self.scan(vec![file.clone()]).read().await? {
                    writer.write(&file.partition, &batch).await?;
                }
            }
            out.push(Bin { files, adds: writer.finish().await? });
        }
        Ok(out)
    }

    /// The change that swaps the bins' files for their rewrites, without
    /// data change: it conflicts only with a commit that removed one of them.
    pub fn compaction_change(bins: &[Bin]) -> Change {
        Change {
            adds: bins.iter().flat_map(|b| b.adds.iter().cloned()).collect(),
            removes: bins.iter().flat_map(|b| b.files.iter().cloned()).collect(),
            reads: ReadSet::Nothing,
            compaction: true,
        }
    }

    /// Whether every file of `bin` is still live (after a refresh).
    pub fn holds(&self, bin: &Bin) -> bool {
        bin.files.iter().all(|f| self.snapshot.files.contains_key(&f.path))
    }

    /// Removes, as a data change, every live file written before `cutoff_ms`.
    pub fn expire_before(&self, cutoff_ms: i64) -> Change {
        let removes: Vec<DataFile> = self.files().iter().filter(|f| f.modified < cutoff_ms).cloned().collect();
        Change { adds: Vec::new(), removes, reads: ReadSet::Nothing, compaction: false }
    }

    /// Deletes the data files no version of the last `retention` can read:
    /// removed files whose removal is older than that, and files no version
    /// references (orphans of killed commits) older than that. Returns the
    /// files deleted (or, dry, that would be).
    pub async fn vacuum(&self, retention: Duration, dry_run: bool) -> Result<Vec<String>> {
        let mut full = super::builder(self.location())?.build().map_err(|e| self.error(e))?;
        full.load().await.map_err(|e| self.error(e))?;
        let retention = chrono::Duration::from_std(retention).map_err(|e| self.error(e))?;
        let (_, metrics) = full
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Full)
            .with_dry_run(dry_run)
            .await
            .map_err(|e| self.error(format!("vacuum: {e}")))?;
        Ok(metrics.files_deleted)
    }

    /// Makes checkpoints keep a removed file's tombstone only as long as
    /// `retention`, the vacuum's: a table rewritten hourly gathers many
    /// times more tombstones than live files, and with the Delta default
    /// (a week) a lake whose vacuum keeps less would carry them in every
    /// checkpoint for nothing. Commits the table property
    /// `delta.deletedFileRetentionDuration` only when it differs; returns
    /// whether it did (or, dry, would).
    pub async fn keep_tombstones_for(&mut self, retention: Duration, dry_run: bool) -> Result<bool> {
        let wanted = format!("interval {} seconds", retention.as_secs());
        if self.property(TOMBSTONE_RETENTION) == Some(wanted.as_str()) {
            return Ok(false);
        }
        if dry_run {
            return Ok(true);
        }
        // The metadata commit reads the whole table, so any worker commit
        // that removed a file meanwhile fails it: try again on a fresh
        // snapshot, and leave it to the next maintenance run if workers keep
        // winning (checkpoints only stay larger until then).
        for attempt in 1..=3 {
            let mut full = super::builder(self.location())?.build().map_err(|e| self.error(e))?;
            full.load().await.map_err(|e| self.error(e))?;
            match full.set_tbl_properties().with_properties([(TOMBSTONE_RETENTION.to_string(), wanted.clone())].into()).await {
                Ok(_) => {
                    self.refresh().await?;
                    return Ok(true);
                }
                Err(DeltaTableError::Transaction { source: TransactionError::CommitConflict(e) }) => {
                    warn!(attempt, "setting {TOMBSTONE_RETENTION} met a concurrent commit: {e}");
                }
                Err(e) => return Err(self.error(format!("setting {TOMBSTONE_RETENTION}: {e}"))),
            }
        }
        Ok(false)
    }

    /// Writes a checkpoint of the current version, then deletes log entries
    /// older than `retention` that come before a checkpoint every version of
    /// the retention can start from. Returns the entries deleted (or, dry,
    /// that would be).
    pub async fn clean_log(&self, retention: Duration, dry_run: bool) -> Result<usize> {
        let version = self.version();
        let cutoff = chrono::Utc::now().timestamp_millis() - retention.as_millis() as i64;
        if dry_run {
            return self.expired_log_entries(version, cutoff).await;
        }
        if version > 0 {
            self.checkpoint(version).await?;
        }
        deltalake::checkpoints::cleanup_expired_logs_for(version, self.delta.log_store().as_ref(), cutoff, None)
            .await
            .map_err(|e| self.error(format!("log cleanup: {e}")))
    }

    /// What `clean_log` would delete: entries older than the cutoff before the
    /// newest checkpoint that is not newer than any entry within it.
    async fn expired_log_entries(&self, version: u64, cutoff: i64) -> Result<usize> {
        let entries = self.log_entries().await?;
        let versioned = |name: &str| name.split('.').next().and_then(|v| v.parse::<u64>().ok());
        let keep =
            entries.iter().filter(|(_, modified)| *modified >= cutoff).filter_map(|(name, _)| versioned(name)).min().unwrap_or(version).min(version);
        let Some(safe) =
            entries.iter().filter(|(name, _)| name.contains(".checkpoint")).filter_map(|(name, _)| versioned(name)).filter(|v| *v <= keep).max()
        else {
            return Ok(0);
        };
        Ok(entries.iter().filter(|(name, modified)| versioned(name).is_some_and(|v| v < safe) && *modified <= cutoff).count())
    }

    async fn log_entries(&self) -> Result<Vec<(String, i64)>> {
        let listed: Vec<object_store::ObjectMeta> =
            self.store().list(Some(&Path::from("_delta_log"))).try_collect().await.map_err(|e| LakeError::storage(self.location(), e))?;
        Ok(listed.into_iter().filter_map(|m| m.location.filename().map(|n| (n.to_string(), m.last_modified.timestamp_millis()))).collect())
    }

    /// Live, stored and log bytes of the table.
    pub async fn disk_usage(&self) -> Result<DiskUsage> {
        let store = self.store();
        let listed: Vec<object_store::ObjectMeta> = store.list(None).try_collect().await.map_err(|e| LakeError::storage(self.location(), e))?;
        let mut usage =
            DiskUsage { live_files: self.files().len() as u64, live_bytes: self.files().iter().map(|f| f.size as u64).sum(), ..Default::default() };
        for meta in listed {
            let path = meta.location.as_ref();
            if path.starts_with("_delta_log/") {
                usage.log_files += 1;
                usage.log_bytes += meta.size;
            } else if path.ends_with(".parquet") {
                usage.stored_files += 1;
                usage.stored_bytes += meta.size;
            }
        }
        Ok(usage)
    }
}

/// Deletes files a commit never took (best effort: vacuum collects any left).
pub async fn delete_uncommitted(store: &dyn ObjectStore, adds: &[Add]) {
    for add in adds {
        let _ = store.delete(&Path::from(add.path.as_str())).await;
    }
}
