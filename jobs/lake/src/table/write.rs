//! New data files for a table: rows grouped by partition, sorted by the
//! spec's sort columns, encoded as parquet in memory and uploaded in one put,
//! each described by an add action with the statistics readers prune by.
//! Nothing is visible until the adds are committed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::{SortColumn, interleave, interleave_record_batch, lexsort_to_indices};
use deltalake::arrow::datatypes::{DataType, Date32Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use deltalake::kernel::Add;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::metadata::ParquetMetaData;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::file::statistics::Statistics;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Map, Value, json};

use super::key_filter::{self, KeyFilter};
use super::{PartitionKey, Table, TableSpec, date_value};
use crate::cores::map_on_cores;
use crate::error::{LakeError, Result};
use crate::location::Location;

/// A file is closed once its encoded size passes this.
const TARGET_FILE_BYTES: usize = 96 * 1024 * 1024;
/// Files put to the store at once.
const PUT_CONCURRENCY: usize = 8;
/// Text statistics longer than this are left out (a truncated maximum would
/// be wrong for readers that skip by it).
const MAX_STAT_TEXT: usize = 64;
/// (batch, row) positions of rows of the input batches.
type Positions = Vec<(usize, usize)>;
/// The positions of the rows of each (partition, hour).
type RowGroups = BTreeMap<(PartitionKey, i64), Positions>;
/// The most partition columns a table has (bronze: date, hour, bucket).
const MAX_PARTITION_COLUMNS: usize = 3;

/// Writes new files of one table; `finish` returns their add actions.
pub struct TableWriter {
    encoder: FileEncoder,
    store: Arc<dyn ObjectStore>,
    open: Option<OpenFile>,
    adds: Vec<Add>,
    /// Files close past this size.
    target_bytes: usize,
    /// Split files by the hour of the spec's `file_hours` column.
    split_hours: bool,
}

/// What encodes the table's files: shared by the cores that encode at once.
struct FileEncoder {
    spec: &'static TableSpec,
    location: Location,
    file_schema: SchemaRef,
    properties: WriterProperties,
}

struct OpenFile {
    key: PartitionKey,
    writer: ArrowWriter<Vec<u8>>,
    /// The filter keys of its rows, while the spec has key columns and
    /// there are at most `key_filter::MAX_KEYS`.
    filter_keys: Option<Vec<u64>>,
}

/// A finished file, encoded in memory, not stored yet.
struct EncodedFile {
    key: PartitionKey,
    bytes: Vec<u8>,
    metadata: ParquetMetaData,
    filter_keys: Option<Vec<u64>>,
}

impl Table {
    pub fn writer(&self) -> TableWriter {
        TableWriter::new(self.spec(), self.location().clone(), self.store())
    }
}

impl TableWriter {
    fn new(spec: &'static TableSpec, location: Location, store: Arc<dyn ObjectStore>) -> TableWriter {
        let file_schema = Arc::new(Schema::new(
            spec.schema.fields().iter().filter(|f| !spec.partition_columns.contains(&f.name().as_str())).cloned().collect::<Vec<_>>(),
        ));
        let mut properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(spec.row_group_rows));
        for column in spec.plain_columns {
            properties = properties
                .set_column_dictionary_enabled((*column).into(), false)
                .set_column_statistics_enabled((*column).into(), EnabledStatistics::None);
        }
        TableWriter {
            encoder: FileEncoder { spec, location, file_schema, properties: properties.build() },
            store,
            open: None,
            adds: Vec::new(),
            target_bytes: TARGET_FILE_BYTES,
            split_hours: true,
        }
    }

    /// A new writer of the same table, with no files yet.
    pub fn sibling(&self) -> TableWriter {
        TableWriter::new(self.encoder.spec, self.encoder.location.clone(), self.store.clone())
    }

    /// Files of up to `bytes`, one per partition whatever the hours of its
    /// rows: what compaction writes.
    pub fn whole_files(mut self, bytes: usize) -> TableWriter {
        self.target_bytes = bytes;
        self.split_hours = false;
        self
    }

    /// Appends rows that all belong to partition `key` to the partition's
    /// open file (the batch may include or omit the partition columns).
    /// Rows are written in the order given.
    pub async fn write(&mut self, key: &PartitionKey, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.open.as_ref().is_some_and(|open| &open.key != key) {
            self.close_file().await?;
        }
        let batch = self.encoder.file_batch(batch)?;
        if self.open.is_none() {
            self.open = Some(self.encoder.new_file(key)?);
        }
        let open = self.open.as_mut().expect("opened above");
        self.encoder.append(open, &batch)?;
        if open.writer.bytes_written() + open.writer.in_progress_size() >= self.target_bytes {
            self.close_file().await?;
        }
        Ok(())
    }

    /// Writes batches that carry the partition columns: rows are grouped by
    /// partition (and by the hour of the spec's `file_hours` column) into
    /// files, and sorted by the spec's sort columns within each. Each file's
    /// rows are copied once, straight from the input batches, so a window's
    /// rows are never held twice.
    pub async fn write_partitioned(&mut self, batches: &[RecordBatch]) -> Result<()> {
        self.close_file().await?;
        let batches: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
        let groups: Vec<((PartitionKey, i64), Positions)> = self.group_rows(&batches)?.into_iter().collect();
        // Sorting, copying and encoding are most of a write, and files are
        // independent: each core encodes its share of the groups.
        let encoder = &self.encoder;
        let files = map_on_cores(&groups, |((key, _), rows)| encoder.encode_group(&batches, key, rows)).into_iter().collect::<Result<Vec<_>>>()?;
        let stored: Vec<Add> = futures::stream::iter(files.into_iter().map(|file| encoder.store_file(&self.store, file)))
            .buffered(PUT_CONCURRENCY)
            .try_collect()
            .await?;
        self.adds.extend(stored);
        Ok(())
    }

    /// The (batch, row) positions of every (partition, hour) group, in the
    /// order of the input. A row's group is found from the raw values of its
    /// partition columns; each group's text key is made once.
    fn group_rows(&self, batches: &[&RecordBatch]) -> Result<RowGroups> {
        /// Raw partition values (a string's index in `texts`; null is
        /// `i64::MIN`) and the hour.
        type RawKey = [i64; MAX_PARTITION_COLUMNS + 1];
        if self.encoder.spec.partition_columns.len() > MAX_PARTITION_COLUMNS {
            return Err(self.encoder.failed("a partitioned batch", format!("more than {MAX_PARTITION_COLUMNS} partition columns")));
        }
        let mut texts: HashMap<String, i64> = HashMap::new();
        let mut groups: HashMap<RawKey, usize> = HashMap::new();
        // Per group, in order of appearance: its (text key, hour) and rows.
        let mut found: Vec<((PartitionKey, i64), Positions)> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let columns: Vec<&ArrayRef> = self
                .encoder
                .spec
                .partition_columns
                .iter()
                .map(|name| {
                    batch.column_by_name(name).ok_or_else(|| self.encoder.failed("a partitioned batch", format!("no partition column {name}")))
                })
                .collect::<Result<_>>()?;
            let hours = self.encoder.spec.file_hours.filter(|_| self.split_hours).and_then(|name| batch.column_by_name(name));
            let hours = hours.map(|column| column.as_primitive::<TimestampMicrosecondType>());
            for row in 0..batch.num_rows() {
                let mut raw: RawKey = [0; MAX_PARTITION_COLUMNS + 1];
                for (slot, column) in raw.iter_mut().zip(&columns) {
                    *slot = raw_partition_value(column, row, &mut texts);
                }
                raw[MAX_PARTITION_COLUMNS] = hours.map_or(0, |h| h.value(row).div_euclid(crate::time::MICROS_PER_HOUR));
                let group = *groups.entry(raw).or_insert_with(|| {
                    found.push(((columns.iter().map(|column| partition_text(column, row)).collect(), raw[MAX_PARTITION_COLUMNS]), Vec::new()));
                    found.len() - 1
                });
                found[group].1.push((b, row));
            }
        }
        let mut ordered = RowGroups::new();
        for (key, rows) in found {
            ordered.entry(key).or_default().extend(rows);
        }
        Ok(ordered)
    }

    /// Closes the open file; returns every add action written so far.
    pub async fn finish(mut self) -> Result<Vec<Add>> {
        self.close_file().await?;
        Ok(self.adds)
    }

    async fn close_file(&mut self) -> Result<()> {
        let Some(open) = self.open.take() else { return Ok(()) };
        let file = self.encoder.encoded(open)?;
        let add = self.encoder.store_file(&self.store, file).await?;
        self.adds.push(add);
        Ok(())
    }
}

impl FileEncoder {
    /// Puts an encoded file under its partition's folder; its add action.
    async fn store_file(&self, store: &Arc<dyn ObjectStore>, file: EncodedFile) -> Result<Add> {
        let partition_path: Vec<String> = self
            .spec
            .partition_columns
            .iter()
            .zip(&file.key)
            .map(|(c, v)| format!("{c}={}", v.as_deref().unwrap_or("__HIVE_DEFAULT_PARTITION__")))
            .collect();
        let name = format!("part-{}.snappy.parquet", uuid::Uuid::new_v4());
        let path = if partition_path.is_empty() { name } else { format!("{}/{name}", partition_path.join("/")) };
        let size = file.bytes.len() as i64;
        store.put(&object_store::path::Path::from(path.as_str()), file.bytes.into()).await.map_err(|e| self.failed(&path, e))?;
        if self.spec.private
            && let Some(dir) = self.location.local_path()
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join(&path), std::fs::Permissions::from_mode(0o640)).map_err(|e| self.failed(&path, e))?;
        }
        let stats = self.stats(&file.metadata);
        let tags = file.filter_keys.map(|keys| HashMap::from([(key_filter::TAG.to_string(), Some(KeyFilter::build(&keys).encode()))]));
        let partition_values = self.spec.partition_columns.iter().zip(file.key).map(|(c, v)| (c.to_string(), v)).collect();
        Ok(Add {
            path,
            size,
            partition_values,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(stats.to_string()),
            tags,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        })
    }

    /// Appends a batch in the file schema to an open file, noting its keys.
    fn append(&self, open: &mut OpenFile, batch: &RecordBatch) -> Result<()> {
        if let Some(keys) = open.filter_keys.as_mut() {
            match key_filter::keys_of(self.spec.key_columns, batch) {
                Some(more) if keys.len() + more.len() <= key_filter::MAX_KEYS => keys.extend(more),
                _ => open.filter_keys = None,
            }
        }
        open.writer.write(batch).map_err(|e| self.failed("a new file", e))
    }

    /// One group's rows, sorted, as one file.
    fn encode_group(&self, batches: &[&RecordBatch], key: &PartitionKey, rows: &Positions) -> Result<EncodedFile> {
        let sorted = self.sorted(batches, rows)?;
        let part = self.file_batch(&interleave_record_batch(batches, &sorted).map_err(|e| self.failed("a partition", e))?)?;
        let mut open = self.new_file(key)?;
        self.append(&mut open, &part)?;
        self.encoded(open)
    }

    /// `rows` in the order of the spec's sort columns (the same order a sort
    /// of the group's concatenated rows gives).
    fn sorted(&self, batches: &[&RecordBatch], rows: &Positions) -> Result<Positions> {
        if self.spec.sort_columns.is_empty() || rows.len() < 2 {
            return Ok(rows.clone());
        }
        let mut columns = Vec::new();
        for name in self.spec.sort_columns {
            let Some(arrays) = batches.iter().map(|b| b.column_by_name(name).map(|c| c.as_ref())).collect::<Option<Vec<&dyn Array>>>() else {
                continue;
            };
            let values = interleave(&arrays, rows).map_err(|e| self.failed("a partition", e))?;
            columns.push(SortColumn { values, options: None });
        }
        if columns.is_empty() {
            return Ok(rows.clone());
        }
        let order = lexsort_to_indices(&columns, None).map_err(|e| self.failed("a partition", e))?;
        Ok(order.values().iter().map(|i| rows[*i as usize]).collect())
    }

    /// The batch without partition columns, in the file schema's order.
    fn file_batch(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .file_schema
            .fields()
            .iter()
            .map(|field| batch.column_by_name(field.name()).cloned().ok_or_else(|| self.failed("a batch", format!("no column {}", field.name()))))
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(self.file_schema.clone(), columns).map_err(|e| self.failed("a batch", e))
    }

    fn new_file(&self, key: &PartitionKey) -> Result<OpenFile> {
        let writer =
            ArrowWriter::try_new(Vec::new(), self.file_schema.clone(), Some(self.properties.clone())).map_err(|e| self.failed("a new file", e))?;
        let filter_keys = (!self.spec.key_columns.is_empty()).then(Vec::new);
        Ok(OpenFile { key: key.clone(), writer, filter_keys })
    }

    /// The file's bytes and footer, ready to store.
    fn encoded(&self, open: OpenFile) -> Result<EncodedFile> {
        let mut writer = open.writer;
        let metadata = writer.finish().map_err(|e| self.failed("a new file", e))?;
        // `into_inner` would write the footer a second time.
        let bytes = std::mem::take(writer.inner_mut());
        Ok(EncodedFile { key: open.key, bytes, metadata, filter_keys: open.filter_keys })
    }

    /// Delta statistics (rows, and min, max and null count of the spec's
    /// statistics columns) from the file's own row-group statistics.
    fn stats(&self, metadata: &ParquetMetaData) -> Value {
        let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
        let schema = metadata.file_metadata().schema_descr();
        for name in self.spec.stats_columns {
            let Ok(field) = self.file_schema.field_with_name(name) else { continue };
            let Some(index) = schema.columns().iter().position(|c| c.path().string() == *name) else { continue };
            let mut range: Option<(Value, Value)> = None;
            let mut null_count = 0u64;
            let mut complete = true;
            for row_group in metadata.row_groups() {
                let Some(stats) = row_group.column(index).statistics() else {
                    complete = false;
                    break;
                };
                null_count += stats.null_count_opt().unwrap_or(0);
                if row_group.num_rows() as u64 == stats.null_count_opt().unwrap_or(0) {
                    continue;
                }
                match stat_values(stats, field.data_type()) {
                    Some((lo, hi)) => {
                        range = Some(match range {
                            None => (lo, hi),
                            Some((a, b)) => (least(a, lo), greatest(b, hi)),
                        })
                    }
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if !complete {
                continue;
            }
            nulls.insert(name.to_string(), json!(null_count));
            if let Some((lo, hi)) = range {
                min.insert(name.to_string(), lo);
                max.insert(name.to_string(), hi);
            }
        }
        json!({"numRecords": metadata.file_metadata().num_rows(), "minValues": min, "maxValues": max, "nullCount": nulls})
    }

    fn failed(&self, file: &str, cause: impl std::fmt::Display) -> LakeError {
        LakeError::Write { table: self.location.to_string(), file: file.to_string(), cause: crate::error::clean(&cause) }
    }
}

/// A partition value as a number that tells values apart: the value of a
/// numeric column, a string's index in `texts`, `i64::MIN` for null.
fn raw_partition_value(column: &ArrayRef, row: usize, texts: &mut HashMap<String, i64>) -> i64 {
    if column.is_null(row) {
        return i64::MIN;
    }
    match column.data_type() {
        DataType::Date32 => i64::from(column.as_primitive::<Date32Type>().value(row)),
        DataType::Int32 => i64::from(column.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row),
        _ => {
            let text = column.as_string::<i32>().value(row);
            match texts.get(text) {
                Some(index) => *index,
                None => {
                    let index = texts.len() as i64;
                    texts.insert(text.to_string(), index);
                    index
                }
            }
        }
    }
}

/// A partition value as the log writes it.
fn partition_text(column: &ArrayRef, row: usize) -> Option<String> {
    if column.is_null(row) {
        return None;
    }
    Some(match column.data_type() {
        DataType::Date32 => date_value(column.as_primitive::<Date32Type>().value(row)),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row).to_string(),
        _ => column.as_string::<i32>().value(row).to_string(),
    })
}

/// A row group's (min, max) as Delta statistics values: numbers, dates as
/// `YYYY-MM-DD`, timestamps at millisecond precision rounded outwards (so a
/// reader skipping by them never skips a matching row).
fn stat_values(stats: &Statistics, data_type: &DataType) -> Option<(Value, Value)> {
    match (stats, data_type) {
        (Statistics::Int32(s), DataType::Date32) => Some((json!(date_value(*s.min_opt()?)), json!(date_value(*s.max_opt()?)))),
        (Statistics::Int32(s), _) => Some((json!(s.min_opt()?), json!(s.max_opt()?))),
        (Statistics::Int64(s), DataType::Timestamp(TimeUnit::Microsecond, _)) => {
            let (lo, hi) = (s.min_opt()?.div_euclid(1000) * 1000, (s.max_opt()? + 999).div_euclid(1000) * 1000);
            let text = |micros: i64| chrono::DateTime::from_timestamp_micros(micros).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            Some((json!(text(lo)?), json!(text(hi)?)))
        }
        (Statistics::Int64(s), _) => Some((json!(s.min_opt()?), json!(s.max_opt()?))),
        (Statistics::Double(s), _) if s.min_opt()?.is_finite() && s.max_opt()?.is_finite() => Some((json!(s.min_opt()?), json!(s.max_opt()?))),
        (Statistics::ByteArray(s), DataType::Utf8) => {
            let (lo, hi) = (std::str::from_utf8(s.min_opt()?.data()).ok()?, std::str::from_utf8(s.max_opt()?.data()).ok()?);
            (lo.len() <= MAX_STAT_TEXT && hi.len() <= MAX_STAT_TEXT).then(|| (json!(lo), json!(hi)))
        }
        _ => None,
    }
}

fn least(a: Value, b: Value) -> Value {
    if compare(&b, &a).is_lt() { b } else { a }
}

fn greatest(a: Value, b: Value) -> Value {
    if compare(&b, &a).is_gt() { b } else { a }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}
