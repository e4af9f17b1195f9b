//! `lake-maintain`: keeps every table of the lake healthy for years. Per
//! table: expire old windows of the silver change log, bin-pack each
//! partition's small files (a commit without data change, which yields to
//! any concurrent commit that removed one of its files), delete the files no
//! version within the retention can read (and orphans of killed commits),
//! let checkpoints drop tombstones past that same retention, and remove log
//! entries past the log retention, keeping a checkpoint.
//! Safe while workers write, as long as the retention outlasts a worker run.

use std::time::{Duration, Instant};

use serde::Serialize;
use streamreel_lake::report::RunReport;
use streamreel_lake::table::maintain::{Bin, DiskUsage, delete_uncommitted};
use streamreel_lake::table::{CommitMeta, Table};
use streamreel_lake::{Config, LakeError};
use streamreel_tables::silver::CHANGES;
use tracing::{Instrument, info, info_span, warn};

#[derive(Debug, thiserror::Error)]
pub enum MaintainError {
    #[error(transparent)]
    Lake(#[from] LakeError),
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    /// Only these table paths (all when empty).
    pub tables: Vec<String>,
    /// Names the run in its commits (default: lake-maintain and the time).
    pub run_id: Option<String>,
}

/// What one table went through.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableReport {
    pub table: String,
    pub before: DiskUsage,
    pub after: DiskUsage,
    /// Change-log files past `change_log_retention_days`, removed.
    pub expired_files: u64,
    pub bins: u64,
    pub files_compacted: u64,
    pub files_written: u64,
    /// Bins left as they were: a concurrent commit removed one of their files.
    pub bins_skipped: u64,
    pub files_vacuumed: u64,
    /// The table's tombstone retention was set to the vacuum's.
    pub tombstone_retention_set: bool,
    pub log_entries_removed: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MaintainReport {
    pub worker: &'static str,
    pub dry_run: bool,
    pub target_file_mb: u64,
    pub retention_hours: f64,
    pub log_retention_hours: f64,
    pub tables: Vec<TableReport>,
    pub seconds: f64,
}

impl RunReport for MaintainReport {
    fn log_summary(&self) {
        let sum = |f: fn(&TableReport) -> u64| self.tables.iter().map(f).sum::<u64>();
        info!(
            worker = self.worker,
            dry_run = self.dry_run,
            tables = self.tables.len(),
            stored_files_before = sum(|t| t.before.stored_files),
            stored_files_after = sum(|t| t.after.stored_files),
            stored_bytes_before = sum(|t| t.before.stored_bytes),
            stored_bytes_after = sum(|t| t.after.stored_bytes),
            live_bytes = sum(|t| t.after.live_bytes),
            files_compacted = sum(|t| t.files_compacted),
            files_vacuumed = sum(|t| t.files_vacuumed),
            log_entries_removed = sum(|t| t.log_entries_removed),
            bins_skipped = sum(|t| t.bins_skipped),
            seconds = self.seconds,
            "lake-maintain{}: {} tables, {} files compacted into {}, {} files vacuumed, {} log entries removed; stored files {} -> {}, {:.2} s",
            if self.dry_run { " (dry run)" } else { "" },
            self.tables.len(),
            sum(|t| t.files_compacted),
            sum(|t| t.files_written),
            sum(|t| t.files_vacuumed),
            sum(|t| t.log_entries_removed),
            sum(|t| t.before.stored_files),
            sum(|t| t.after.stored_files),
            self.seconds
        );
    }
}

/// Compaction commits that met a concurrent removal are tried this often.
const COMMIT_ATTEMPTS: usize = 3;

pub async fn run(config: &Config, options: &Options) -> Result<MaintainReport, MaintainError> {
    let started = Instant::now();
    let lake = config.lake()?;
    let settings = &config.maintenance;
    let hours = |h: f64| Duration::from_secs_f64(h * 3600.0);
    let mut report = MaintainReport {
        worker: "lake-maintain",
        dry_run: options.dry_run,
        target_file_mb: settings.target_file_mb,
        retention_hours: settings.retention_hours,
        log_retention_hours: settings.log_retention_hours,
        ..Default::default()
    };
    let meta = CommitMeta {
        worker: "lake-maintain".into(),
        run_id: options.run_id.clone().unwrap_or_else(|| format!("lake-maintain:{}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"))),
        window: None,
        shard: None,
    };
    let target = settings.target_file_mb * 1024 * 1024;
    for spec in streamreel_tables::all_tables() {
        if !options.tables.is_empty() && !options.tables.iter().any(|t| t == spec.path) {
            continue;
        }
        let Some(mut table) = Table::open_existing(&lake, spec).await? else { continue };
        let span = info_span!("lake_maintain", table = %table.location());
        let done = async {
            let mut row = TableReport { table: spec.path.to_string(), before: table.disk_usage().await?, ..Default::default() };
            if spec.path == CHANGES.path {
                let cutoff = chrono::Utc::now().timestamp_millis() - (settings.change_log_retention_days * 86_400_000.0) as i64;
                let expired = table.expire_before(cutoff);
                row.expired_files = expired.removes.len() as u64;
                if !options.dry_run && !expired.is_empty() {
                    table.commit(expired, &meta).await?;
                }
            }
            let bins = table.compaction_bins(target);
            row.bins = bins.len() as u64;
            row.files_compacted = bins.iter().map(|b| b.len() as u64).sum();
            if !options.dry_run && !bins.is_empty() {
                let written = table.compact(bins, target).await?;
                let (files_written, skipped) = commit_compaction(&mut table, written, &meta).await?;
                row.files_written = files_written;
                row.bins_skipped = skipped;
            }
            row.files_vacuumed = table.vacuum(hours(settings.retention_hours), options.dry_run).await?.len() as u64;
            row.tombstone_retention_set = table.keep_tombstones_for(hours(settings.retention_hours), options.dry_run).await?;
            row.log_entries_removed = table.clean_log(hours(settings.log_retention_hours), options.dry_run).await? as u64;
            table.refresh().await?;
            row.after = table.disk_usage().await?;
            info!(
                files_compacted = row.files_compacted,
                files_vacuumed = row.files_vacuumed,
                log_entries_removed = row.log_entries_removed,
                "maintained"
            );
            Ok::<_, MaintainError>(row)
        }
        .instrument(span)
        .await?;
        report.tables.push(done);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Commits the rewritten bins; when a concurrent commit removed a file of
/// some bin, those bins are dropped (their rewrites deleted) and the rest
/// committed. Returns (files written and committed, bins skipped).
async fn commit_compaction(table: &mut Table, mut bins: Vec<Bin>, meta: &CommitMeta) -> Result<(u64, u64), MaintainError> {
    let mut skipped = 0;
    for attempt in 1..=COMMIT_ATTEMPTS {
        match table.commit(Table::compaction_change(&bins), meta).await {
            Ok(_) => return Ok((bins.iter().map(|b| b.adds.len() as u64).sum(), skipped)),
            Err(e) if e.is_conflict() => {
                warn!(attempt, "{e}; compacting only the bins whose files are all still live");
                table.refresh().await?;
                let (live, gone): (Vec<Bin>, Vec<Bin>) = bins.into_iter().partition(|b| table.holds(b));
                for bin in &gone {
                    delete_uncommitted(table.store().as_ref(), &bin.adds).await;
                }
                skipped += gone.len() as u64;
                bins = live;
                if bins.is_empty() {
                    return Ok((0, skipped));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    for bin in &bins {
        delete_uncommitted(table.store().as_ref(), &bin.adds).await;
    }
    Ok((0, skipped + bins.len() as u64))
}
