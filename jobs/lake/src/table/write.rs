//! New data files for a table: rows grouped by partition, sorted by the
//! spec's sort columns, encoded as parquet in memory and uploaded in one put,
//! each described by an add action with the statistics readers prune by.
//! Nothing is visible until the adds are committed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ahash::AHashMap;
use deltalake::arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, Capacities, MutableArrayData, RecordBatch, TimestampMicrosecondArray, make_array,
};
use deltalake::arrow::compute::{interleave, interleave_record_batch};
use deltalake::arrow::datatypes::{DataType, Date32Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::row::{RowConverter, SortField};
use deltalake::kernel::Add;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::metadata::ParquetMetaData;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::file::statistics::Statistics;
use deltalake::parquet::schema::types::ColumnPath;
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
/// Rows per run, on average, from which `gather` copies runs.
const MIN_RUN: usize = 4;
/// Rows per run, on average, from which a file is encoded from slices of the
/// input batches, run by run, without gathering them first: each slice costs
/// the encoder a call per column.
const MIN_SLICE_RUN: usize = 128;
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
            properties = properties.set_column_dictionary_enabled((*column).into(), false);
        }
        // A text column's minimum and maximum cost two comparisons of every
        // value, and over rows sorted by other columns they span nearly
        // everything: only columns readers prune by keep them.
        for field in spec.schema.fields() {
            let column = field.name().as_str();
            if spec.stats_columns.contains(&column) || spec.sort_columns.contains(&column) {
                continue;
            }
            let path = match field.data_type() {
                DataType::Utf8 => ColumnPath::from(column),
                DataType::List(item) => ColumnPath::new(vec![column.into(), "list".into(), item.name().clone()]),
                _ if spec.plain_columns.contains(&column) => ColumnPath::from(column),
                _ => continue,
            };
            properties = properties.set_column_statistics_enabled(path, EnabledStatistics::None);
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
        self.write_selected(batches, &[]).await
    }

    /// `write_partitioned` of the rows `selected` lists (ascending) of each
    /// batch; a batch whose entry is `None`, or that has none, is written
    /// whole. A stage that drops a few rows of its batches hands them over
    /// as they are instead of copying the rest first: the files copy them
    /// anyway.
    pub async fn write_selected(&mut self, batches: &[RecordBatch], selected: &[Option<&[u32]>]) -> Result<()> {
        self.close_file().await?;
        let (batches, selected): (Vec<&RecordBatch>, Vec<Option<&[u32]>>) = batches
            .iter()
            .enumerate()
            .map(|(b, batch)| (batch, selected.get(b).copied().flatten()))
            .filter(|(batch, _)| batch.num_rows() > 0)
            .unzip();
        let groups: Vec<((PartitionKey, i64), Positions)> = self.group_rows(&batches, &selected)?.into_iter().collect();
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
    /// order of the input, of the `selected` rows of each batch (all when
    /// `None`). A row's group is found from the raw values of its partition
    /// columns; each group's text key is made once.
    fn group_rows(&self, batches: &[&RecordBatch], selected: &[Option<&[u32]>]) -> Result<RowGroups> {
        /// Raw partition values (a string's index in `texts`; null is
        /// `i64::MIN`) and the hour.
        type RawKey = [i64; MAX_PARTITION_COLUMNS + 1];
        if self.encoder.spec.partition_columns.len() > MAX_PARTITION_COLUMNS {
            return Err(self.encoder.failed("a partitioned batch", format!("more than {MAX_PARTITION_COLUMNS} partition columns")));
        }
        // Looked up on every row: a fast hash.
        let mut texts: AHashMap<String, i64> = AHashMap::new();
        let mut groups: AHashMap<RawKey, usize> = AHashMap::new();
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
            let rows: Box<dyn Iterator<Item = usize>> = match selected[b] {
                Some(rows) => Box::new(rows.iter().map(|&row| row as usize)),
                None => Box::new(0..batch.num_rows()),
            };
            for row in rows {
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

    /// One group's rows, sorted, as one file. Long runs of consecutive rows
    /// go to the file as slices of their batches (the encoder copies them
    /// anyway); short ones are gathered into one batch first.
    fn encode_group(&self, batches: &[&RecordBatch], key: &PartitionKey, rows: &Positions) -> Result<EncodedFile> {
        let (batches, rows) = referenced(batches, rows);
        let sorted = self.sorted(&batches, &rows)?;
        let mut open = self.new_file(key)?;
        let runs = runs(&sorted);
        if runs.len() * MIN_SLICE_RUN <= sorted.len() {
            for (batch, start, end) in runs {
                self.append(&mut open, &self.file_batch(&batches[batch].slice(start, end - start))?)?;
            }
        } else {
            let part = self.file_batch(&gather(&batches, &sorted, &runs).map_err(|e| self.failed("a partition", e))?)?;
            self.append(&mut open, &part)?;
        }
        self.encoded(open)
    }

    /// `rows` in the order of the spec's sort columns (the same order a sort
    /// of the group's concatenated rows gives).
    fn sorted(&self, batches: &[&RecordBatch], rows: &Positions) -> Result<Positions> {
        if self.spec.sort_columns.is_empty() || rows.len() < 2 {
            return Ok(rows.clone());
        }
        if self.spec.sort_by_hour {
            let name = self.spec.sort_columns[0];
            let times = batches
                .iter()
                .map(|b| b.column_by_name(name).and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.failed("a partition", format!("no timestamp column {name} to sort by")))?;
            return Ok(by_hour(&times, rows));
        }
        let mut columns = Vec::new();
        for name in self.spec.sort_columns {
            let Some(arrays) = batches.iter().map(|b| b.column_by_name(name).map(|c| c.as_ref())).collect::<Option<Vec<&dyn Array>>>() else {
                continue;
            };
            columns.push(interleave(&arrays, rows).map_err(|e| self.failed("a partition", e))?);
        }
        if columns.is_empty() {
            return Ok(rows.clone());
        }
        // Sort keys in arrow's row format compare as bytes, where a
        // comparator per column compared texts through a call per column
        // per comparison. The sort is stable: stored rows come back as
        // sorted runs, which it merges instead of sorting again, and rows
        // with equal keys keep their input order.
        let fields = columns.iter().map(|c| SortField::new(c.data_type().clone())).collect();
        let keys = RowConverter::new(fields).and_then(|converter| converter.convert_columns(&columns)).map_err(|e| self.failed("a partition", e))?;
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| keys.row(a).cmp(&keys.row(b)));
        Ok(order.into_iter().map(|i| rows[i]).collect())
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

/// `rows` by the hour of their time in `times` (one array per batch), rows
/// of one hour in the order given.
fn by_hour(times: &[&TimestampMicrosecondArray], rows: &Positions) -> Positions {
    let mut keyed: Vec<(i64, (usize, usize))> =
        rows.iter().map(|&(b, r)| (times[b].value(r).div_euclid(crate::time::MICROS_PER_HOUR), (b, r))).collect();
    keyed.sort_by_key(|(hour, _)| *hour);
    keyed.into_iter().map(|(_, row)| row).collect()
}

/// The batches that `positions` draw on, in order of first use, and the
/// positions renumbered into them. A rewrite's rows come in many batches
/// (a few from each file it rewrites) and each of its files draws on a few:
/// sorting and copying visit every batch they are given, column by column.
fn referenced<'a>(batches: &[&'a RecordBatch], positions: &Positions) -> (Vec<&'a RecordBatch>, Positions) {
    let mut slot = vec![usize::MAX; batches.len()];
    let mut used = Vec::new();
    let positions = positions
        .iter()
        .map(|&(batch, row)| {
            if slot[batch] == usize::MAX {
                slot[batch] = used.len();
                used.push(batches[batch]);
            }
            (slot[batch], row)
        })
        .collect();
    (used, positions)
}

/// `positions` as runs of consecutive rows of one batch: (batch, start, end).
fn runs(positions: &Positions) -> Vec<(usize, usize, usize)> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for &(batch, row) in positions {
        match runs.last_mut() {
            Some((b, _, end)) if *b == batch && *end == row => *end += 1,
            _ => runs.push((batch, row, row + 1)),
        }
    }
    runs
}

/// The rows at `positions` (whose `runs` are given), in that order. Runs are
/// copied whole, one copy per run and column, when they are long enough to
/// beat copying row by row.
fn gather(batches: &[&RecordBatch], positions: &Positions, runs: &[(usize, usize, usize)]) -> std::result::Result<RecordBatch, ArrowError> {
    if runs.len() * MIN_RUN > positions.len() || batches.is_empty() {
        return interleave_record_batch(batches, positions);
    }
    let schema = batches[0].schema();
    let columns = (0..schema.fields().len())
        .map(|c| {
            let data: Vec<ArrayData> = batches.iter().map(|b| b.column(c).to_data()).collect();
            let nulls = data.iter().any(|d| d.null_count() > 0);
            // Texts get their bytes' room at once: grown as copied, their
            // buffers were copied again at every doubling.
            let capacities = match schema.field(c).data_type() {
                DataType::Utf8 => {
                    let texts: Vec<_> = batches.iter().map(|b| b.column(c).as_string::<i32>()).collect();
                    let bytes = runs
                        .iter()
                        .map(|&(batch, start, end)| (texts[batch].value_offsets()[end] - texts[batch].value_offsets()[start]) as usize)
                        .sum();
                    Capacities::Binary(positions.len(), Some(bytes))
                }
                _ => Capacities::Array(positions.len()),
            };
            let mut out = MutableArrayData::with_capacities(data.iter().collect(), nulls, capacities);
            for &(batch, start, end) in runs {
                out.try_extend(batch, start, end)?;
            }
            Ok(make_array(out.freeze()))
        })
        .collect::<std::result::Result<Vec<ArrayRef>, ArrowError>>()?;
    RecordBatch::try_new(schema, columns)
}

/// A partition value as a number that tells values apart: the value of a
/// numeric column, a string's index in `texts`, `i64::MIN` for null.
fn raw_partition_value(column: &ArrayRef, row: usize, texts: &mut AHashMap<String, i64>) -> i64 {
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

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Int64Array, ListBuilder, StringArray, StringBuilder};
    use deltalake::arrow::datatypes::Field;

    use super::*;

    const HOUR: i64 = crate::time::MICROS_PER_HOUR;

    fn batch(first: i64, rows: usize) -> RecordBatch {
        let ids: Int64Array = (first..first + rows as i64).collect();
        let texts: StringArray = (0..rows).map(|i| (i % 3 != 0).then(|| format!("text {}", first + i as i64))).collect();
        let mut lists = ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            lists.values().append_value(format!("flag {i}"));
            lists.append(i % 2 == 0);
        }
        RecordBatch::try_from_iter(vec![
            ("id", Arc::new(ids) as ArrayRef),
            ("text", Arc::new(texts) as ArrayRef),
            ("flags", Arc::new(lists.finish()) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn gathering_runs_gives_the_rows_a_row_by_row_copy_gives() {
        let (a, b) = (batch(0, 50), batch(100, 40));
        let batches = [&a, &b];
        // Long runs (copied as runs), then single rows (copied row by row).
        let runs: Positions = (10..30).map(|r| (1, r)).chain((0..45).map(|r| (0, r))).chain((30..40).map(|r| (1, r))).collect();
        let scattered: Positions = (0..40).map(|r| (r % 2, r)).collect();
        for positions in [runs, scattered] {
            let expected = interleave_record_batch(&batches, &positions).unwrap();
            assert_eq!(gather(&batches, &positions, &super::runs(&positions)).unwrap(), expected);
        }
    }

    #[test]
    fn a_group_keeps_only_the_batches_it_draws_on() {
        let (a, b, c) = (batch(0, 5), batch(100, 5), batch(200, 5));
        let batches = [&a, &b, &c];
        let positions: Positions = vec![(2, 4), (0, 1), (2, 0), (0, 3)];
        let (used, renumbered) = referenced(&batches, &positions);
        assert_eq!(used, vec![&c, &a]);
        assert_eq!(renumbered, vec![(0, 4), (1, 1), (0, 0), (1, 3)]);
        assert_eq!(gather(&used, &renumbered, &runs(&renumbered)).unwrap(), interleave_record_batch(&batches, &positions).unwrap());
    }

    /// An unpartitioned test table of row groups of 700 rows.
    fn spec(
        fields: Vec<Field>,
        stats_columns: &'static [&'static str],
        plain_columns: &'static [&'static str],
        sort_columns: &'static [&'static str],
    ) -> TableSpec {
        TableSpec {
            path: "test/table",
            schema: Arc::new(Schema::new(fields)),
            partition_columns: &[],
            stats_columns,
            plain_columns,
            sort_columns,
            file_hours: None,
            sort_by_hour: false,
            row_group_rows: 700,
            bucketed: false,
            private: false,
            key_columns: &[],
        }
    }

    /// A writer of `spec` into a temporary directory (kept while it lives).
    fn writer_of(spec: &'static TableSpec) -> (tempfile::TempDir, TableWriter) {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let writer = TableWriter::new(spec, location.clone(), location.object_store().unwrap().0);
        (dir, writer)
    }

    static SORTED: std::sync::LazyLock<TableSpec> = std::sync::LazyLock::new(|| {
        spec(vec![Field::new("name", DataType::Utf8, false), Field::new("value", DataType::Int64, false)], &[], &[], &["value"])
    });

    fn named(values: impl Iterator<Item = i64>) -> RecordBatch {
        let values: Vec<i64> = values.collect();
        let names: StringArray = values.iter().map(|v| Some(format!("row {v}"))).collect();
        RecordBatch::try_new(SORTED.schema.clone(), vec![Arc::new(names), Arc::new(Int64Array::from(values))]).unwrap()
    }

    /// The (name, value) rows of an encoded file, in file order.
    fn decoded(file: EncodedFile) -> Vec<(String, i64)> {
        let reader = deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(bytes::Bytes::from(file.bytes), 256).unwrap();
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let (names, values) = (batch.column(0).as_string::<i32>(), batch.column(1).as_primitive::<Int64Type>());
            rows.extend((0..batch.num_rows()).map(|i| (names.value(i).to_string(), values.value(i))));
        }
        rows
    }

    #[test]
    fn a_file_holds_its_rows_sorted_whether_runs_are_sliced_or_gathered() {
        let (_dir, writer) = writer_of(&SORTED);
        let expected: Vec<(String, i64)> = (0..3000).map(|v| (format!("row {v}"), v)).collect();
        // Two long runs, given in the wrong order: encoded as slices.
        let (low, high) = (named(0..1500), named(1500..3000));
        let positions: Positions = (0..1500).map(|r| (1, r)).chain((0..1500).map(|r| (0, r))).collect();
        let file = writer.encoder.encode_group(&[&high, &low], &Vec::new(), &positions).unwrap();
        assert_eq!(decoded(file), expected);
        // Rows alternating between the batches: gathered.
        let (even, odd) = (named((0..3000).step_by(2)), named((1..3000).step_by(2)));
        let positions: Positions = (0..1500).flat_map(|r| [(0, r), (1, r)]).collect();
        let file = writer.encoder.encode_group(&[&odd, &even], &Vec::new(), &positions).unwrap();
        assert_eq!(decoded(file), expected);
    }

    static STATISTICS: std::sync::LazyLock<TableSpec> = std::sync::LazyLock::new(|| {
        let fields = vec![
            Field::new("sorted_text", DataType::Utf8, false),
            Field::new("pruned_text", DataType::Utf8, false),
            Field::new("other_text", DataType::Utf8, false),
            Field::new("texts", DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))), false),
            Field::new("number", DataType::Int64, false),
            Field::new("plain_number", DataType::Int64, false),
        ];
        spec(fields, &["pruned_text"], &["plain_number"], &["sorted_text"])
    });

    #[test]
    fn texts_keep_statistics_only_where_readers_prune_by_them() {
        let (_dir, writer) = writer_of(&STATISTICS);
        let text = |prefix: &str| Arc::new((0..10).map(|i| Some(format!("{prefix} {i}"))).collect::<StringArray>()) as ArrayRef;
        let mut texts = ListBuilder::new(StringBuilder::new());
        for i in 0..10 {
            texts.values().append_value(format!("flag {i}"));
            texts.append(true);
        }
        let numbers = Arc::new((0..10).collect::<Int64Array>()) as ArrayRef;
        let batch = RecordBatch::try_new(
            STATISTICS.schema.clone(),
            vec![text("sorted"), text("pruned"), text("other"), Arc::new(texts.finish()), numbers.clone(), numbers],
        )
        .unwrap();
        let file = writer.encoder.encode_group(&[&batch], &Vec::new(), &(0..10).map(|r| (0, r)).collect()).unwrap();
        let with_statistics: Vec<String> =
            file.metadata.row_group(0).columns().iter().filter(|c| c.statistics().is_some()).map(|c| c.column_path().string()).collect();
        assert_eq!(with_statistics, vec!["sorted_text", "pruned_text", "number"]);
    }

    #[test]
    fn rows_sorted_by_hour_keep_their_order_within_an_hour() {
        let times = [TimestampMicrosecondArray::from(vec![3 * HOUR + 5, HOUR + 9, 3 * HOUR, HOUR]), TimestampMicrosecondArray::from(vec![2 * HOUR])];
        let rows: Positions = vec![(0, 0), (0, 1), (1, 0), (0, 2), (0, 3)];
        assert_eq!(by_hour(&[&times[0], &times[1]], &rows), vec![(0, 1), (0, 3), (1, 0), (0, 0), (0, 2)]);
    }

    #[test]
    fn schema_of_gathered_rows_is_the_batches() {
        let a = batch(0, 8);
        let positions: Positions = (0..8).map(|r| (0, r)).collect();
        let gathered = gather(&[&a], &positions, &runs(&positions)).unwrap();
        assert_eq!(gathered.schema().fields().iter().map(|f: &Arc<Field>| f.name().clone()).collect::<Vec<_>>(), vec!["id", "text", "flags"]);
        assert_eq!(gathered, a);
    }
}
