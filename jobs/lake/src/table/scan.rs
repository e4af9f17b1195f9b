//! Reads of a table's files: ranged through the parquet crate's async
//! object-store reader, so only the projected columns of the row groups that
//! survive pruning are fetched, and a row filter decodes its own columns
//! before the rest.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, BooleanArray, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray, new_null_array};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ArrowReaderOptions;
use deltalake::parquet::arrow::arrow_reader::{ArrowPredicateFn, RowFilter as ParquetRowFilter};
use deltalake::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use deltalake::parquet::errors::ParquetError;
use deltalake::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use deltalake::parquet::file::statistics::Statistics;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};

use super::{DataFile, Table, TableSpec, parse_date_value};
use crate::error::{LakeError, Result};

/// Files read at once: each is a task, so decoding runs on every core.
const READ_CONCURRENCY: usize = 8;
const BATCH_ROWS: usize = 64 * 1024;

/// Keeps only row groups (and files, by their log statistics) whose range of
/// an integer-like column (integers, dates as days, timestamps as
/// microseconds) meets one of `intervals` (inclusive, sorted or not).
#[derive(Debug, Clone)]
pub struct Prune {
    pub column: String,
    pub intervals: Vec<(i64, i64)>,
}

impl Prune {
    pub fn new(column: &str, intervals: Vec<(i64, i64)>) -> Prune {
        Prune { column: column.to_string(), intervals }
    }

    fn meets(&self, (lo, hi): (i64, i64)) -> bool {
        self.intervals.iter().any(|&(a, b)| a <= hi && lo <= b)
    }

    /// Whether `file` may hold a row inside the intervals: its log
    /// statistics of the column meet one, or it has none.
    pub fn keeps_file(&self, file: &DataFile) -> bool {
        file.range_of(&self.column).is_none_or(|range| self.meets(range))
    }
}

/// Which rows a read keeps: a predicate over a few non-partition columns,
/// evaluated before the other columns are decoded.
#[derive(Clone)]
pub struct RowFilter {
    pub columns: Vec<String>,
    pub keep: Arc<dyn Fn(&RecordBatch) -> BooleanArray + Send + Sync>,
}

impl RowFilter {
    pub fn new(columns: &[&str], keep: impl Fn(&RecordBatch) -> BooleanArray + Send + Sync + 'static) -> RowFilter {
        RowFilter { columns: columns.iter().map(|c| c.to_string()).collect(), keep: Arc::new(keep) }
    }

    /// The filter over a batch that holds (at least) its columns: `keep`
    /// sees only those, as it does in a scan.
    pub fn select(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let indices = self
            .columns
            .iter()
            .map(|c| batch.schema().index_of(c).map_err(|e| LakeError::data("a row filter's columns", e)))
            .collect::<Result<Vec<usize>>>()?;
        let columns = batch.project(&indices).map_err(|e| LakeError::data("a row filter's columns", e))?;
        Ok((self.keep)(&columns))
    }
}

/// A read of some files of one table.
pub struct Scan<'t> {
    table: &'t Table,
    files: Vec<DataFile>,
    columns: Option<Vec<String>>,
    prune: Vec<Prune>,
    filter: Option<RowFilter>,
}

impl Table {
    pub fn scan(&self, files: Vec<DataFile>) -> Scan<'_> {
        Scan { table: self, files, columns: None, prune: Vec::new(), filter: None }
    }
}

impl<'t> Scan<'t> {
    /// Only these columns, in this order (partition columns allowed).
    pub fn columns(mut self, columns: &[&str]) -> Self {
        self.columns = Some(columns.iter().map(|c| c.to_string()).collect());
        self
    }

    pub fn prune(mut self, prune: Prune) -> Self {
        self.prune.push(prune);
        self
    }

    pub fn filter(mut self, filter: RowFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The schema of the batches this scan returns.
    pub fn schema(&self) -> Result<SchemaRef> {
        projected_schema(self.table.spec(), self.columns.as_deref(), &self.table.location().to_string())
    }

    pub async fn read(self) -> Result<Vec<RecordBatch>> {
        Ok(self.read_per_file().await?.into_iter().flat_map(|(_, batches)| batches).collect())
    }

    /// The batches of each file that survives pruning, with the file.
    pub async fn read_per_file(self) -> Result<Vec<(DataFile, Vec<RecordBatch>)>> {
        let spec = self.table.spec();
        let schema = self.schema()?;
        let table_name = self.table.location().to_string();
        let files: Vec<DataFile> = self.files.into_iter().filter(|file| self.prune.iter().all(|p| p.keeps_file(file))).collect();
        let started = std::time::Instant::now();
        let file_count = files.len();
        let prune = Arc::new(self.prune);
        let store = self.table.store();
        let jobs = files.into_iter().map(|file| {
            let (store, schema, prune, filter, table_name) = (store.clone(), schema.clone(), prune.clone(), self.filter.clone(), table_name.clone());
            let partition_columns: Vec<String> = spec.partition_columns.iter().map(|c| c.to_string()).collect();
            tokio::spawn(async move {
                let path = object_store::path::Path::from(file.path.as_str());
                let failed = |cause: &dyn std::fmt::Display| LakeError::Read {
                    table: table_name.clone(),
                    file: file.path.clone(),
                    cause: crate::error::clean(cause),
                };
                let reader = RangedFile { store, path, size: file.size as u64 };
                let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(|e| failed(&e))?;
                let row_groups: Vec<usize> = {
                    let metadata = builder.metadata();
                    (0..metadata.num_row_groups()).filter(|&i| prune.iter().all(|p| row_group_meets(metadata.row_group(i), p))).collect()
                };
                if row_groups.is_empty() {
                    return Ok((file, Vec::new()));
                }
                let file_schema = builder.schema().clone();
                let roots = |names: &mut dyn Iterator<Item = &str>| -> Vec<usize> { names.filter_map(|n| file_schema.index_of(n).ok()).collect() };
                let wanted = roots(&mut schema.fields().iter().map(|f| f.name().as_str()));
                let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
                let mut builder = builder.with_row_groups(row_groups).with_projection(mask).with_batch_size(BATCH_ROWS);
                if let Some(filter) = filter {
                    let filter_mask = ProjectionMask::roots(builder.parquet_schema(), roots(&mut filter.columns.iter().map(String::as_str)));
                    let keep = filter.keep.clone();
                    let predicate = ArrowPredicateFn::new(filter_mask, move |batch| Ok(keep(&batch)));
                    builder = builder.with_row_filter(ParquetRowFilter::new(vec![Box::new(predicate)]));
                }
                let stream = builder.build().map_err(|e| failed(&e))?;
                let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| failed(&e))?;
                let values: HashMap<&str, Option<&str>> =
                    partition_columns.iter().map(String::as_str).zip(file.partition.iter().map(Option::as_deref)).collect();
                let conformed = batches
                    .iter()
                    .filter(|b| b.num_rows() > 0)
                    .map(|b| conform(b, &schema, &values).map_err(|e| failed(&e)))
                    .collect::<Result<Vec<_>>>()?;
                Ok::<_, LakeError>((file, conformed))
            })
        });
        let read: Vec<(DataFile, Vec<RecordBatch>)> = futures::stream::iter(jobs)
            .buffered(READ_CONCURRENCY)
            .map(|joined| joined.map_err(|e| LakeError::Task(e.to_string()))?)
            .try_collect()
            .await?;
        let rows: usize = read.iter().flat_map(|(_, batches)| batches).map(RecordBatch::num_rows).sum();
        tracing::debug!(table = %table_name, files = file_count, rows, columns = schema.fields().len(), seconds = started.elapsed().as_secs_f64(), "read");
        Ok(read)
    }
}

/// A parquet file of the table, fetched by byte ranges: the footer first,
/// then only the column chunks a read needs.
struct RangedFile {
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    size: u64,
}

/// Footer bytes fetched up front, so most files need one request for it.
const FOOTER_HINT: usize = 64 * 1024;

impl AsyncFileReader for RangedFile {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> BoxFuture<'_, deltalake::parquet::errors::Result<bytes::Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(|e| ParquetError::External(Box::new(e))) }.boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<std::ops::Range<u64>>) -> BoxFuture<'_, deltalake::parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(|e| ParquetError::External(Box::new(e))) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, deltalake::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new().with_prefetch_hint(Some(FOOTER_HINT)).load_and_finish(self, size).await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

fn projected_schema(spec: &TableSpec, columns: Option<&[String]>, table: &str) -> Result<SchemaRef> {
    match columns {
        None => Ok(spec.schema.clone()),
        Some(names) => {
            let fields: Vec<Field> = names
                .iter()
                .map(|n| spec.schema.field_with_name(n).cloned().map_err(|e| LakeError::data(format!("table {table}"), e)))
                .collect::<Result<_>>()?;
            Ok(Arc::new(Schema::new(fields)))
        }
    }
}

/// Whether a row group's statistics of the pruning column meet it; missing
/// statistics keep the row group.
fn row_group_meets(row_group: &RowGroupMetaData, prune: &Prune) -> bool {
    let Some(column) = row_group.columns().iter().find(|c| c.column_path().string() == prune.column) else { return true };
    let range = match column.statistics() {
        Some(Statistics::Int64(s)) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a, *b)),
        Some(Statistics::Int32(s)) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a as i64, *b as i64)),
        _ => None,
    };
    range.is_none_or(|range| prune.meets(range))
}

/// Projects a file's batch onto `schema`: columns in order, partition columns
/// rebuilt from the log's values, columns the file lacks as nulls.
fn conform(batch: &RecordBatch, schema: &SchemaRef, partitions: &HashMap<&str, Option<&str>>) -> std::result::Result<RecordBatch, String> {
    let rows = batch.num_rows();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| {
            if let Some(value) = partitions.get(field.name().as_str()) {
                return partition_array(field.data_type(), *value, rows);
            }
            Ok(match batch.column_by_name(field.name()) {
                Some(col) if col.data_type() == field.data_type() => col.clone(),
                Some(col) => deltalake::arrow::compute::cast(col, field.data_type()).map_err(|e| e.to_string())?,
                None => new_null_array(field.data_type(), rows),
            })
        })
        .collect::<std::result::Result<_, String>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

fn partition_array(data_type: &DataType, value: Option<&str>, rows: usize) -> std::result::Result<ArrayRef, String> {
    let bad = |v: &str| format!("partition value {v:?} is not a {data_type}");
    Ok(match (data_type, value) {
        (_, None) => new_null_array(data_type, rows),
        (DataType::Utf8, Some(v)) => Arc::new(StringArray::from(vec![v; rows])),
        (DataType::Int32, Some(v)) => Arc::new(Int32Array::from(vec![v.parse::<i32>().map_err(|_| bad(v))?; rows])),
        (DataType::Int64, Some(v)) => Arc::new(Int64Array::from(vec![v.parse::<i64>().map_err(|_| bad(v))?; rows])),
        (DataType::Date32, Some(v)) => Arc::new(Date32Array::from(vec![parse_date_value(v).ok_or_else(|| bad(v))?; rows])),
        (other, Some(v)) => return Err(format!("partition column of type {other} (value {v})")),
    })
}
