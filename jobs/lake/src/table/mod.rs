//! Delta tables without DataFusion, as the workers use them: open (creating a
//! table from its spec on first use), list the live files of a snapshot,
//! scan them ([`scan`]), write new files ([`write`]) and commit a change only
//! onto the snapshot it was planned from ([`commit`]).

pub mod commit;
pub mod key_filter;
mod log;
pub mod maintain;
mod ops;
pub mod scan;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{LogicalFileView, Remove, StructType};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, TableProperty};
use object_store::ObjectStore;
use tracing::debug;

use crate::error::{LakeError, Result};
use crate::location::Location;
use key_filter::KeyFilter;

pub use commit::{Change, CommitMeta, ReadSet};
pub use scan::{Prune, RowFilter, Scan};
pub use write::TableWriter;

/// Static description of one table of the contract.
pub struct TableSpec {
    /// Path under `lake_url`, e.g. `bronze/events`.
    pub path: &'static str,
    /// Every column, partition columns included.
    pub schema: SchemaRef,
    pub partition_columns: &'static [&'static str],
    /// Columns that get min/max statistics in the Delta log (data skipping).
    /// Texts (and lists of them) get parquet chunk statistics only when they
    /// are stats or sort columns.
    pub stats_columns: &'static [&'static str],
    /// High-cardinality columns where parquet dictionaries only cost time;
    /// their chunk statistics are written only if they are stats or sort
    /// columns.
    pub plain_columns: &'static [&'static str],
    /// Rows of every written file are sorted by these columns, so that row
    /// groups cover narrow ranges of them (pruned by statistics on reads).
    pub sort_columns: &'static [&'static str],
    /// Sort by the hour of the first sort column (a timestamp) only, rows of
    /// one hour kept in the order written. Row groups span hours, so their
    /// statistics are as narrow as under a full sort, while rows that came
    /// in together stay together and are copied as runs, not one by one.
    pub sort_by_hour: bool,
    /// Files are split by the hour of this timestamp column, so that a later
    /// copy-on-write rewrite of a few rows touches only their hours' files.
    pub file_hours: Option<&'static str>,
    pub row_group_rows: usize,
    /// Partitioned by the lake's hash bucket: the table records the bucket
    /// count it was created with, and refuses a config that differs.
    pub bucketed: bool,
    /// Holds personal data in the clear: files on a local lake are written
    /// readable by owner and group only.
    pub private: bool,
    /// Columns whose values (one 64-bit integer, or texts hashed together)
    /// every file records in a bloom filter in its add action, so lookups
    /// by them skip files from the log ([`key_filter`]).
    pub key_columns: &'static [&'static str],
}

impl TableSpec {
    pub fn partition_index(&self, column: &str) -> Option<usize> {
        self.partition_columns.iter().position(|c| *c == column)
    }
}

/// The values of a file's partition columns, in the spec's order, as the
/// Delta log writes them (`2025-08-11`, `7`).
pub type PartitionKey = Vec<Option<String>>;

/// The text of a date partition value (days since 1970-01-01).
pub fn date_value(days: i32) -> String {
    crate::time::days_to_date(days).format("%Y-%m-%d").to_string()
}

/// The day (since 1970-01-01) of a date partition value.
pub fn parse_date_value(value: &str) -> Option<i32> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().map(crate::time::date_to_days)
}

/// One live data file of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Relative to the table root, as in the log (decoded).
    pub path: String,
    pub size: i64,
    pub partition: PartitionKey,
    /// When the file was written (milliseconds since the epoch).
    pub modified: i64,
    /// The log's statistics (JSON), parsed only when asked for (row count,
    /// pruning): every run opens tables of thousands of files and looks at
    /// the statistics of a few.
    pub stats: Option<Arc<str>>,
    /// The bloom filter of the spec's key columns, when the file has one.
    pub keys: Option<Arc<KeyFilter>>,
}

impl DataFile {
    fn from_view(view: &LogicalFileView, partition_columns: &[&str]) -> DataFile {
        let values = view.partition_values_map();
        DataFile {
            path: view.path().to_string(),
            size: view.size(),
            partition: partition_columns.iter().map(|c| values.get(*c).cloned().flatten()).collect(),
            modified: view.modification_time(),
            stats: view.stats().map(Arc::from),
            keys: None,
        }
    }

    pub fn remove_action(&self, spec: &TableSpec, data_change: bool) -> Remove {
        let partition_values: HashMap<String, Option<String>> =
            spec.partition_columns.iter().zip(&self.partition).map(|(c, v)| (c.to_string(), v.clone())).collect();
        Remove {
            path: self.path.clone(),
            data_change,
            deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
            extended_file_metadata: Some(true),
            partition_values: Some(partition_values),
            size: Some(self.size),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
        }
    }

    /// False only when the file certainly holds none of `keys` (filter keys
    /// of the spec's key columns); a file without a filter may hold any.
    pub fn may_hold_any(&self, keys: &[u64]) -> bool {
        self.keys.as_ref().is_none_or(|filter| keys.iter().any(|k| filter.may_hold(*k)))
    }

    /// The file's row count, from the log's statistics.
    pub fn rows(&self) -> Option<u64> {
        /// Only the row count; the rest is skipped without allocating.
        #[derive(serde::Deserialize)]
        struct Records {
            #[serde(rename = "numRecords")]
            num_records: Option<u64>,
        }
        serde_json::from_str::<Records>(self.stats.as_deref()?).ok()?.num_records
    }

    /// The file's value range of a numeric or timestamp statistics column,
    /// when the log has it (timestamps as microseconds).
    pub fn range_of(&self, column: &str) -> Option<(i64, i64)> {
        let number = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            serde_json::Value::String(s) => {
                chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_micros()).or_else(|| parse_date_value(s).map(i64::from))
            }
            _ => None,
        };
        #[derive(serde::Deserialize)]
        struct Ranges {
            #[serde(default, rename = "minValues")]
            min: serde_json::Map<String, serde_json::Value>,
            #[serde(default, rename = "maxValues")]
            max: serde_json::Map<String, serde_json::Value>,
        }
        let ranges: Ranges = serde_json::from_str(self.stats.as_deref()?).ok()?;
        Some((number(ranges.min.get(column)?)?, number(ranges.max.get(column)?)?))
    }
}

/// An open Delta table at one snapshot.
pub struct Table {
    spec: &'static TableSpec,
    location: Location,
    /// For commits and checkpoints; its own snapshot is not loaded.
    delta: DeltaTable,
    snapshot: log::Snapshot,
    /// The snapshot's live files, in path order.
    files: Vec<DataFile>,
}

/// The table property that records a bucketed table's bucket count.
const BUCKETS_PROPERTY: &str = "streamreel.buckets";

impl Table {
    /// Opens the table at `lake/spec.path`, creating it with the spec's schema
    /// when it does not exist yet.
    pub async fn open(lake: &Location, spec: &'static TableSpec, buckets: u32) -> Result<Table> {
        let location = lake.join(spec.path);
        let delta = builder(&location)?.build().map_err(|e| LakeError::delta(&location, e))?;
        let snapshot = match read_snapshot(&location, &delta, spec).await? {
            Some(snapshot) => snapshot,
            None => {
                create(&location, &delta, spec, buckets).await?;
                read_snapshot(&location, &delta, spec)
                    .await?
                    .ok_or_else(|| LakeError::delta(&location, "the table vanished right after its creation"))?
            }
        };
        if spec.bucketed {
            let found = snapshot.configuration.get(BUCKETS_PROPERTY).cloned().flatten();
            if found.as_deref() != Some(buckets.to_string().as_str()) {
                let found = found.unwrap_or_else(|| "an unrecorded number of".into());
                return Err(LakeError::Buckets { table: location.to_string(), found, configured: buckets });
            }
        }
        if location.is_local() {
            commit::remove_stale_staging(&location).await;
        }
        let mut table = Table { spec, location, delta, snapshot, files: Vec::new() };
        table.list_files();
        Ok(table)
    }

    /// Opens the table if it exists (maintenance never creates tables).
    pub async fn open_existing(lake: &Location, spec: &'static TableSpec) -> Result<Option<Table>> {
        let location = lake.join(spec.path);
        let delta = builder(&location)?.build().map_err(|e| LakeError::delta(&location, e))?;
        let Some(snapshot) = read_snapshot(&location, &delta, spec).await? else { return Ok(None) };
        let mut table = Table { spec, location, delta, snapshot, files: Vec::new() };
        table.list_files();
        Ok(Some(table))
    }

    pub fn spec(&self) -> &'static TableSpec {
        self.spec
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn version(&self) -> u64 {
        self.snapshot.version
    }

    /// A table property (Delta `configuration`) of this snapshot.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.snapshot.configuration.get(name).and_then(|v| v.as_deref())
    }

    /// The live files of this snapshot.
    pub fn files(&self) -> &[DataFile] {
        &self.files
    }

    /// Live files whose partition satisfies `keep`.
    pub fn files_where(&self, keep: impl Fn(&PartitionKey) -> bool) -> Vec<DataFile> {
        self.files.iter().filter(|f| keep(&f.partition)).cloned().collect()
    }

    /// The table's object store, rooted at the table.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.delta.object_store()
    }

    /// Moves to the latest version.
    pub async fn refresh(&mut self) -> Result<()> {
        let store = self.store();
        let current = match log::read_since(store.as_ref(), &mut self.snapshot, self.spec.partition_columns).await {
            Ok(true) => true,
            Ok(false) => false,
            Err(log::ReadError::Failed(cause) | log::ReadError::Unsupported(cause)) => return Err(self.error(cause)),
        };
        if !current {
            self.snapshot =
                read_snapshot(&self.location, &self.delta, self.spec).await?.ok_or_else(|| self.error("the table has no log any more"))?;
        }
        self.list_files();
        Ok(())
    }

    /// Reads the table as of an earlier version (time travel).
    pub async fn open_version(lake: &Location, spec: &'static TableSpec, version: u64) -> Result<Table> {
        let location = lake.join(spec.path);
        let mut delta = builder(&location)?.build().map_err(|e| LakeError::delta(&location, e))?;
        delta.load_version(version).await.map_err(|e| LakeError::delta(&location, e))?;
        let snapshot = kernel_snapshot(&delta, spec).map_err(|e| LakeError::delta(&location, e))?;
        let mut table = Table { spec, location, delta, snapshot, files: Vec::new() };
        table.list_files();
        Ok(table)
    }

    fn list_files(&mut self) {
        let mut files: Vec<DataFile> = self.snapshot.files.values().cloned().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        self.files = files;
    }

    fn error(&self, cause: impl std::fmt::Display) -> LakeError {
        LakeError::delta(&self.location, cause)
    }
}

/// The latest snapshot, read from the log; through the full kernel when the
/// log holds what the fast reader does not read.
async fn read_snapshot(location: &Location, delta: &DeltaTable, spec: &TableSpec) -> Result<Option<log::Snapshot>> {
    match log::read_latest(delta.object_store().as_ref(), spec.partition_columns).await {
        Ok(snapshot) => Ok(snapshot),
        Err(log::ReadError::Failed(cause)) => Err(LakeError::delta(location, cause)),
        Err(log::ReadError::Unsupported(what)) => {
            debug!(table = %location, what, "reading the log through the delta kernel");
            let mut full = builder(location)?.build().map_err(|e| LakeError::delta(location, e))?;
            full.load().await.map_err(|e| LakeError::delta(location, e))?;
            Ok(Some(kernel_snapshot(&full, spec).map_err(|e| LakeError::delta(location, e))?))
        }
    }
}

fn kernel_snapshot(delta: &DeltaTable, spec: &TableSpec) -> std::result::Result<log::Snapshot, DeltaTableError> {
    let state = delta.snapshot()?;
    Ok(log::Snapshot {
        version: state.version(),
        files: state.log_data().iter().map(|view| DataFile::from_view(&view, spec.partition_columns)).map(|f| (f.path.clone(), f)).collect(),
        configuration: state.metadata().configuration().iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
    })
}

fn builder(location: &Location) -> Result<DeltaTableBuilder> {
    Ok(DeltaTableBuilder::from_url(location.url().clone())
        .map_err(|e| LakeError::delta(location, e))?
        .with_storage_options(location.delta_storage_options()))
}

async fn create(location: &Location, table: &DeltaTable, spec: &TableSpec, buckets: u32) -> Result<()> {
    let kernel_schema: StructType =
        spec.schema.as_ref().try_into_kernel().map_err(|e: deltalake::arrow::error::ArrowError| LakeError::delta(location, e))?;
    let mut configuration: BTreeMap<String, Option<String>> = BTreeMap::new();
    if !spec.stats_columns.is_empty() {
        configuration.insert(TableProperty::DataSkippingStatsColumns.as_ref().to_string(), Some(spec.stats_columns.join(",")));
    }
    if spec.bucketed {
        configuration.insert(BUCKETS_PROPERTY.to_string(), Some(buckets.to_string()));
    }
    let created = table
        .create()
        .with_columns(kernel_schema.fields().cloned())
        .with_partition_columns(spec.partition_columns.iter().map(|c| c.to_string()))
        .with_configuration(configuration)
        .with_raise_if_key_not_exists(false)
        .with_save_mode(SaveMode::ErrorIfExists)
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if lost_creation_race(&e) => {
            debug!(table = %location, "another writer created the table first");
            Ok(())
        }
        Err(e) => Err(LakeError::delta(location, format!("cannot create the table: {e}"))),
    }
}

/// The errors of a `create` that lost to a concurrent creation: the table
/// exists by now, or version 0 was written by someone else.
fn lost_creation_race(error: &DeltaTableError) -> bool {
    use deltalake::kernel::transaction::TransactionError;
    match error {
        DeltaTableError::VersionAlreadyExists(0) => true,
        DeltaTableError::Transaction { source } => {
            matches!(source, TransactionError::VersionAlreadyExists(0) | TransactionError::CommitConflict(_))
        }
        // The builder's own `TableAlreadyExists` (a private type; its message).
        DeltaTableError::GenericError { source } => source.to_string().contains("table already exists"),
        _ => false,
    }
}
