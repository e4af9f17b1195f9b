//! Delta table I/O without DataFusion: create-or-open, stream record batches
//! into parquet files, commit "replace these files, add those" atomically with
//! our own optimistic retry, and read a table's parquet back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deltalake::arrow::array::{ArrayRef, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray, new_null_array};
use deltalake::arrow::datatypes::{DataType, SchemaRef};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, LogicalFileView, StructType};
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::{ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter};
use object_store::ObjectStoreExt;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, TableProperty};
use delta_kernel::expressions::Scalar;
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use tracing::{debug, info, warn};

use crate::error::{LakeError, Result};
use crate::storage::Location;

/// Static description of one of the tables of tables.md.
pub struct TableSpec {
    /// Path under `lake_url`, e.g. `bronze/events`.
    pub path: &'static str,
    pub schema: SchemaRef,
    pub partition_columns: &'static [&'static str],
    /// Columns that get min/max statistics in the Delta log (data skipping).
    pub stats_columns: &'static [&'static str],
    /// High-cardinality text columns where parquet dictionaries only cost time.
    pub plain_columns: &'static [&'static str],
}

/// An opened (possibly just created) Delta table and where it lives.
pub struct Table {
    pub location: Location,
    pub table: DeltaTable,
    spec_schema: SchemaRef,
    partition_columns: Vec<String>,
    writer_properties: WriterProperties,
}

const MAX_COMMIT_ATTEMPTS: usize = 25;
/// Parquet row groups are capped so a writer's in-memory buffer stays small.
const ROW_GROUP_ROWS: usize = 128 * 1024;
const TARGET_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Parallel downloads when reading a table back.
const READ_CONCURRENCY: usize = 8;

impl Table {
    /// Opens the table at `lake/spec.path`, creating it with the spec's schema
    /// if it does not exist yet (two workers racing to create it both end up
    /// with the one table).
    pub async fn open_or_create(lake: &Location, spec: &TableSpec) -> Result<Table> {
        let location = lake.join(spec.path);
        if let Some(dir) = location.local_path() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                LakeError::delta(&location, DeltaTableError::generic(format!("cannot create {}: {e}", dir.display())))
            })?;
        }
        let err = |e| LakeError::delta(&location, e);
        let mut table = DeltaTableBuilder::from_url(location.url().clone())
            .map_err(err)?
            .with_storage_options(location.delta_storage_options())
            .build()
            .map_err(err)?;
        if table.verify_deltatable_existence().await.map_err(err)? {
            table.load().await.map_err(err)?;
        } else {
            table = create(&location, &table, spec).await?;
        }
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
        for column in spec.plain_columns {
            props = props
                .set_column_dictionary_enabled((*column).into(), false)
                .set_column_statistics_enabled((*column).into(), EnabledStatistics::None);
        }
        Ok(Table {
            location,
            table,
            spec_schema: spec.schema.clone(),
            partition_columns: spec.partition_columns.iter().map(|c| c.to_string()).collect(),
            writer_properties: props.build(),
        })
    }

    fn error(&self, source: DeltaTableError) -> LakeError {
        LakeError::delta(&self.location, source)
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.spec_schema
    }

    /// A writer that streams batches to new parquet files of this table; the
    /// files become visible only through [`Table::commit`].
    pub fn writer(&self) -> Result<TableWriter> {
        let writer = RecordBatchWriter::for_table(&self.table)
            .map_err(|e| self.error(e))?
            .with_writer_properties(self.writer_properties.clone())
            .with_target_file_size(TARGET_FILE_BYTES);
        Ok(TableWriter {
            writer,
            partition_columns: self.partition_columns.clone(),
            table: self.location.to_string(),
            rows: 0,
        })
    }

    /// The table's live files.
    pub fn files(&self) -> Result<Vec<LogicalFileView>> {
        Ok(self.table.snapshot().map_err(|e| self.error(e))?.log_data().into_iter().collect())
    }

    /// Live files whose partition values satisfy `keep`.
    pub fn files_where(&self, keep: impl Fn(&HashMap<String, Option<String>>) -> bool) -> Result<Vec<LogicalFileView>> {
        Ok(self.files()?.into_iter().filter(|f| keep(&f.partition_values_map())).collect())
    }

    /// Commits, in one Delta version, the removal of every live file that
    /// `replaced` selects and the addition of `adds`. When another writer
    /// commits first the selection is made again on the fresh snapshot, so
    /// writers of different partitions never block or lose each other's data.
    pub async fn commit(
        &mut self,
        adds: Vec<Add>,
        replaced: impl Fn(&LogicalFileView) -> bool,
        operation: &str,
        app_metadata: HashMap<String, serde_json::Value>,
    ) -> Result<Option<i64>> {
        let started = std::time::Instant::now();
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            if attempt > 0 {
                let pause = Duration::from_millis(20 * (1 << attempt.min(6)) as u64);
                tokio::time::sleep(pause).await;
                self.table.update_state().await.map_err(|e| self.error(e))?;
            }
            let snapshot = self.table.snapshot().map_err(|e| self.error(e))?;
            let removes: Vec<Action> = snapshot
                .log_data()
                .into_iter()
                .filter(|f| replaced(f))
                .map(|f| Action::Remove(f.remove_action(true)))
                .collect();
            if removes.is_empty() && adds.is_empty() {
                return Ok(None);
            }
            let (removed, added) = (removes.len(), adds.len());
            let mut actions = removes;
            actions.extend(adds.iter().cloned().map(Action::Add));
            let mode = if removed > 0 { SaveMode::Overwrite } else { SaveMode::Append };
            let op = DeltaOperation::Write {
                mode,
                partition_by: (!self.partition_columns.is_empty()).then(|| self.partition_columns.clone()),
                predicate: Some(operation.to_string()),
            };
            let result = CommitBuilder::from(CommitProperties::default().with_max_retries(3))
                .with_actions(actions)
                .with_app_metadata(app_metadata.clone())
                .build(Some(snapshot), self.table.log_store(), op)
                .await;
            match result {
                Ok(done) => {
                    let version = done.version();
                    self.table.update_state().await.map_err(|e| self.error(e))?;
                    info!(table = %self.location, version, removed, added, seconds = started.elapsed().as_secs_f64(), "committed");
                    return Ok(Some(version as i64));
                }
                Err(e) if is_retryable_conflict(&e) => {
                    warn!(table = %self.location, attempt, error = %e, "commit conflict, retrying on a fresh snapshot");
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        Err(LakeError::CommitConflict {
            table: self.location.to_string(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// Reads the given files (all columns of the spec, or `columns`), adding
    /// the partition columns back from the log. Files are fetched in parallel.
    pub async fn read(&self, files: &[LogicalFileView], columns: Option<&[&str]>) -> Result<Vec<RecordBatch>> {
        Ok(self.read_per_file(files, columns, None).await?.into_iter().flatten().collect())
    }

    /// Like [`Table::read`], one list of batches per file, keeping only the
    /// rows `filter` selects. The filter sees just its own columns and runs
    /// before the other columns are decoded, so a selective filter makes a
    /// read cheap.
    pub async fn read_per_file(
        &self,
        files: &[LogicalFileView],
        columns: Option<&[&str]>,
        filter: Option<RowFilterSpec>,
    ) -> Result<Vec<Vec<RecordBatch>>> {
        let schema = match columns {
            Some(names) => {
                let indices = names
                    .iter()
                    .map(|n| self.spec_schema.index_of(n))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| LakeError::arrow(self.location.to_string(), e))?;
                Arc::new(self.spec_schema.project(&indices).map_err(|e| LakeError::arrow(self.location.to_string(), e))?)
            }
            None => self.spec_schema.clone(),
        };
        let store = self.table.object_store();
        let jobs = files.iter().map(|file| {
            let store = store.clone();
            let schema = schema.clone();
            let path = file.object_store_path();
            let partitions = file.partition_values_map();
            let partition_columns = self.partition_columns.clone();
            let location = self.location.clone();
            let filter = filter.clone();
            async move {
                let name = path.to_string();
                let fetch = async { store.get(&path).await?.bytes().await };
                let bytes = fetch.await.map_err(|source| location.storage_error(source))?;
                // Decoding is CPU work: off the async threads, one file per core.
                tokio::task::spawn_blocking(move || {
                    let parquet_err = |source| LakeError::Parquet { file: name.clone(), source };
                    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet_err)?;
                    let file_schema = builder.schema().clone();
                    let roots = |names: &mut dyn Iterator<Item = &str>| -> Vec<usize> { names.filter_map(|n| file_schema.index_of(n).ok()).collect() };
                    let wanted = roots(&mut schema.fields().iter().map(|f| f.name().as_str()));
                    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
                    if let Some(filter) = filter {
                        let filter_mask = ProjectionMask::roots(builder.parquet_schema(), roots(&mut filter.columns.iter().map(String::as_str)));
                        let keep = filter.keep.clone();
                        let predicate = ArrowPredicateFn::new(filter_mask, move |batch| Ok(keep(&batch)));
                        builder = builder.with_row_filter(RowFilter::new(vec![Box::new(predicate)]));
                    }
                    let reader = builder.with_projection(mask).with_batch_size(64 * 1024).build().map_err(parquet_err)?;
                    reader
                        .map(|batch| {
                            let batch = batch.map_err(|e| LakeError::arrow(name.clone(), e))?;
                            conform(&batch, &schema, &partitions, &partition_columns).map_err(|e| LakeError::arrow(name.clone(), e))
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .await
                .map_err(|e| LakeError::Task(e.to_string()))?
            }
        });
        let per_file: Vec<Vec<RecordBatch>> = futures::stream::iter(jobs).buffered(READ_CONCURRENCY).try_collect().await?;
        debug!(table = %self.location, files = files.len(), "read");
        Ok(per_file)
    }
}

/// Which rows a read keeps: a predicate over a few (non-partition) columns,
/// which it receives in the file's column order.
#[derive(Clone)]
pub struct RowFilterSpec {
    pub columns: Vec<String>,
    pub keep: Arc<dyn Fn(&RecordBatch) -> BooleanArray + Send + Sync>,
}

async fn create(location: &Location, table: &DeltaTable, spec: &TableSpec) -> Result<DeltaTable> {
    let err = |e| LakeError::delta(location, e);
    let kernel_schema: StructType = spec
        .schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e: deltalake::arrow::error::ArrowError| LakeError::arrow(location.to_string(), e))?;
    let mut builder = table
        .create()
        .with_columns(kernel_schema.fields().cloned())
        .with_partition_columns(spec.partition_columns.iter().map(|c| c.to_string()))
        .with_save_mode(SaveMode::Ignore);
    if !spec.stats_columns.is_empty() {
        builder = builder.with_configuration_property(
            TableProperty::DataSkippingStatsColumns,
            Some(spec.stats_columns.join(",")),
        );
    }
    match builder.await {
        Ok(created) => Ok(created),
        Err(e) => {
            // Another worker created it between our load and create.
            debug!(table = %location, error = %e, "create lost a race; loading");
            let mut reloaded = DeltaTableBuilder::from_url(location.url().clone())
                .map_err(err)?
                .with_storage_options(location.delta_storage_options())
                .build()
                .map_err(err)?;
            reloaded.load().await.map_err(err)?;
            Ok(reloaded)
        }
    }
}

fn is_retryable_conflict(error: &DeltaTableError) -> bool {
    match error {
        DeltaTableError::VersionAlreadyExists(_) => true,
        DeltaTableError::Transaction { source } => matches!(
            source,
            TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_) | TransactionError::VersionAlreadyExists(_)
        ),
        _ => false,
    }
}

/// Projects a file's batch onto `schema`: columns in order, partition columns
/// rebuilt from the log's values, absent columns as nulls.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    partitions: &HashMap<String, Option<String>>,
    partition_columns: &[String],
) -> std::result::Result<RecordBatch, deltalake::arrow::error::ArrowError> {
    let rows = batch.num_rows();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| {
            if partition_columns.iter().any(|c| c == field.name()) {
                let value = partitions.get(field.name()).cloned().flatten();
                return partition_array(field.data_type(), value.as_deref(), rows);
            }
            Ok(match batch.column_by_name(field.name()) {
                Some(col) if col.data_type() == field.data_type() => col.clone(),
                Some(col) => deltalake::arrow::compute::cast(col, field.data_type())?,
                None => new_null_array(field.data_type(), rows),
            })
        })
        .collect::<std::result::Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

fn partition_array(
    data_type: &DataType,
    value: Option<&str>,
    rows: usize,
) -> std::result::Result<ArrayRef, deltalake::arrow::error::ArrowError> {
    let bad = |v: &str| deltalake::arrow::error::ArrowError::ParseError(format!("partition value {v:?} is not a {data_type}"));
    Ok(match (data_type, value) {
        (_, None) => new_null_array(data_type, rows),
        (DataType::Utf8, Some(v)) => Arc::new(StringArray::from(vec![v; rows])),
        (DataType::Int32, Some(v)) => Arc::new(Int32Array::from(vec![v.parse::<i32>().map_err(|_| bad(v))?; rows])),
        (DataType::Date32, Some(v)) => {
            let date = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad(v))?;
            Arc::new(Date32Array::from(vec![date_to_days(date); rows]))
        }
        (other, Some(v)) => return Err(deltalake::arrow::error::ArrowError::NotYetImplemented(format!("partition column of type {other} (value {v})"))),
    })
}

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The UTC day (days since 1970-01-01) of a timestamp in microseconds.
pub fn day_of(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// The day of a file's date partition `column`, as days since 1970-01-01.
pub fn partition_day(values: &HashMap<String, Option<String>>, column: &str) -> Option<i32> {
    let value = values.get(column)?.as_deref()?;
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().map(date_to_days)
}

/// What every worker records in the commits it makes, for lineage.
pub fn commit_metadata(worker: &str, run_id: &str, window: crate::Window) -> HashMap<String, serde_json::Value> {
    HashMap::from([
        ("streamreel.worker".to_string(), worker.into()),
        ("streamreel.run_id".to_string(), run_id.into()),
        ("streamreel.window".to_string(), window.to_string().into()),
    ])
}

/// Days since 1970-01-01, arrow's Date32.
pub fn date_to_days(date: chrono::NaiveDate) -> i32 {
    (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

pub fn days_to_date(days: i32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(days as i64)
}

/// Streams batches of one partition at a time into parquet files.
pub struct TableWriter {
    writer: RecordBatchWriter,
    partition_columns: Vec<String>,
    table: String,
    rows: usize,
}

/// A partition value as the writer needs it.
pub enum PartitionValue {
    Date(chrono::NaiveDate),
    Int(i32),
    Text(String),
}

impl TableWriter {
    /// Writes a batch whose rows all belong to the partition `values` (given in
    /// the order of the table's partition columns). The batch may omit the
    /// partition columns.
    pub async fn write(&mut self, batch: RecordBatch, values: &[PartitionValue]) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut partition: IndexMap<String, Scalar> = IndexMap::new();
        for (name, value) in self.partition_columns.iter().zip(values) {
            let scalar = match value {
                PartitionValue::Date(d) => Scalar::Date(date_to_days(*d)),
                PartitionValue::Int(i) => Scalar::Integer(*i),
                PartitionValue::Text(s) => Scalar::String(s.clone()),
            };
            partition.insert(name.clone(), scalar);
        }
        self.rows += batch.num_rows();
        self.writer
            .write_partition(batch, &partition, deltalake::writer::WriteMode::Default)
            .await
            .map_err(|e| LakeError::delta(&self.table, e))?;
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Closes the open files and returns their add actions (not yet
    /// committed); the writer can go on with new files.
    pub async fn flush(&mut self) -> Result<Vec<Add>> {
        self.writer.flush().await.map_err(|e| LakeError::delta(&self.table, e))
    }
}
