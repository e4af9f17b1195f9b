//! Reads a table's snapshot straight from its Delta log: the last classic
//! checkpoint, then every JSON commit after it. It holds what the workers
//! need (live files with their partition values and statistics, the table's
//! configuration), at a fraction of the cost of a full kernel snapshot, which
//! matters when every hourly run opens a dozen tables.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use deltalake::arrow::array::{Array, AsArray, MapArray, RecordBatch, StructArray};
use deltalake::arrow::datatypes::Int64Type;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;

use super::key_filter::{KeyFilter, TAG};
use super::{DataFile, PartitionKey};

/// A version of the table: its live files and configuration.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: u64,
    /// Live files by path.
    pub files: HashMap<String, DataFile>,
    pub configuration: HashMap<String, Option<String>>,
}

/// What one log entry does to the snapshot.
#[derive(Debug, Default)]
pub struct Actions {
    pub adds: Vec<DataFile>,
    /// Paths and partitions of the files removed.
    pub removes: Vec<(String, PartitionKey)>,
    pub configuration: Option<HashMap<String, Option<String>>>,
    pub protocol_changed: bool,
    pub commit_info: serde_json::Map<String, serde_json::Value>,
}

impl Snapshot {
    pub fn apply(&mut self, version: u64, actions: &Actions) {
        for (path, _) in &actions.removes {
            self.files.remove(path);
        }
        for add in &actions.adds {
            self.files.insert(add.path.clone(), add.clone());
        }
        if let Some(configuration) = &actions.configuration {
            self.configuration = configuration.clone();
        }
        self.version = version;
    }
}

#[derive(Deserialize)]
struct LogLine {
    #[serde(default)]
    add: Option<AddLine>,
    #[serde(default)]
    remove: Option<RemoveLine>,
    #[serde(default, rename = "metaData")]
    metadata: Option<MetadataLine>,
    #[serde(default)]
    protocol: Option<serde_json::Value>,
    #[serde(default, rename = "commitInfo")]
    commit_info: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct AddLine {
    path: String,
    #[serde(default, rename = "partitionValues")]
    partition_values: HashMap<String, Option<String>>,
    #[serde(default)]
    size: i64,
    #[serde(default, rename = "modificationTime")]
    modification_time: i64,
    #[serde(default)]
    stats: Option<String>,
    #[serde(default)]
    tags: Option<HashMap<String, Option<String>>>,
}

#[derive(Deserialize)]
struct RemoveLine {
    path: String,
    #[serde(default, rename = "partitionValues")]
    partition_values: Option<HashMap<String, Option<String>>>,
}

#[derive(Deserialize)]
struct MetadataLine {
    #[serde(default)]
    configuration: HashMap<String, Option<String>>,
}

/// Parses one JSON commit.
pub fn parse_commit(bytes: &[u8], partition_columns: &[&str]) -> Result<Actions, String> {
    let mut actions = Actions::default();
    for line in lines(bytes) {
        let line: LogLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        if let Some(add) = line.add {
            actions.adds.push(data_file(
                decode(&add.path),
                key(&add.partition_values, partition_columns),
                add.size,
                add.modification_time,
                add.stats.as_deref(),
                key_filter_of(&add.tags),
            ));
        }
        if let Some(remove) = line.remove {
            actions.removes.push((decode(&remove.path), key(&remove.partition_values.unwrap_or_default(), partition_columns)));
        }
        if let Some(metadata) = line.metadata {
            actions.configuration = Some(metadata.configuration);
        }
        actions.protocol_changed |= line.protocol.is_some();
        if let Some(info) = line.commit_info {
            actions.commit_info = info;
        }
    }
    Ok(actions)
}

/// The live file an add action of ours describes.
pub fn data_file_of(add: &deltalake::kernel::Add, partition_columns: &[&str]) -> DataFile {
    data_file(
        add.path.clone(),
        key(&add.partition_values, partition_columns),
        add.size,
        add.modification_time,
        add.stats.as_deref(),
        key_filter_of(&add.tags),
    )
}

/// The key filter an add action's tags hold, if any this version reads.
fn key_filter_of(tags: &Option<HashMap<String, Option<String>>>) -> Option<KeyFilter> {
    tags.as_ref()?.get(TAG)?.as_deref().and_then(KeyFilter::decode)
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace))
}

fn key(values: &HashMap<String, Option<String>>, partition_columns: &[&str]) -> PartitionKey {
    partition_columns.iter().map(|c| values.get(*c).cloned().flatten()).collect()
}

fn data_file(path: String, partition: PartitionKey, size: i64, modified: i64, stats: Option<&str>, keys: Option<KeyFilter>) -> DataFile {
    DataFile { path, size, partition, modified, stats: stats.map(Arc::from), keys: keys.map(Arc::new) }
}

/// Paths in the log are URIs: `%xx` escapes decoded.
pub fn decode(path: &str) -> String {
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

#[derive(Deserialize)]
struct LastCheckpoint {
    version: u64,
    #[serde(default)]
    parts: Option<u64>,
}

/// Why the fast reader declined a table: it has something only the full
/// kernel reads (a multi-part or v2 checkpoint).
#[derive(Debug)]
pub enum ReadError {
    Unsupported(String),
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> ReadError {
    ReadError::Failed(crate::error::clean(&e))
}

/// The table's latest snapshot, or `None` when it has no log.
pub async fn read_latest(store: &dyn ObjectStore, partition_columns: &[&str]) -> Result<Option<Snapshot>, ReadError> {
    let log = Path::from("_delta_log");
    let hint: Option<LastCheckpoint> = match store.get(&log.clone().join("_last_checkpoint")).await {
        Ok(result) => serde_json::from_slice(&result.bytes().await.map_err(failed)?).ok(),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(failed(e)),
    };
    if hint.as_ref().is_some_and(|h| h.parts.is_some_and(|p| p > 1)) {
        return Err(ReadError::Unsupported("a multi-part checkpoint".into()));
    }
    let start = hint.as_ref().map(|h| h.version);
    let listed: Vec<object_store::ObjectMeta> = match start {
        Some(v) => store.list_with_offset(Some(&log), &log.clone().join(format!("{v:020}.checkpoint"))).try_collect().await,
        None => store.list(Some(&log)).try_collect().await,
    }
    .map_err(failed)?;
    let mut commits: Vec<u64> =
        listed.iter().filter_map(|m| m.location.filename().and_then(|n| n.strip_suffix(".json")).and_then(|v| v.parse::<u64>().ok())).collect();
    commits.sort_unstable();
    // Without a hint, the newest checkpoint listed (early commits may be
    // cleaned up).
    let start = start.or_else(|| {
        listed
            .iter()
            .filter_map(|m| m.location.filename().and_then(|n| n.strip_suffix(".checkpoint.parquet")).and_then(|v| v.parse::<u64>().ok()))
            .max()
    });
    commits.retain(|v| start.is_none_or(|s| *v > s));
    let mut snapshot = match start {
        Some(version) => read_checkpoint(store, version, partition_columns).await?,
        None if commits.first() == Some(&0) => Snapshot::default(),
        None if listed.is_empty() => return Ok(None),
        None => return Err(ReadError::Unsupported("a log without version 0 or a classic checkpoint".into())),
    };
    for (expected, version) in (snapshot.version + u64::from(start.is_some())..).zip(commits.iter().copied()) {
        if version != expected {
            return Err(ReadError::Failed(format!("the log skips from version {expected} to {version}")));
        }
        let bytes = store.get(&log.clone().join(format!("{version:020}.json"))).await.map_err(failed)?.bytes().await.map_err(failed)?;
        let actions = parse_commit(&bytes, partition_columns).map_err(|e| ReadError::Failed(format!("version {version}: {e}")))?;
        snapshot.apply(version, &actions);
    }
    Ok(Some(snapshot))
}

/// Brings a snapshot up to the latest version by its later commits; `None`
/// when they are not all there any more (read it afresh).
pub async fn read_since(store: &dyn ObjectStore, snapshot: &mut Snapshot, partition_columns: &[&str]) -> Result<bool, ReadError> {
    let log = Path::from("_delta_log");
    let after = log.clone().join(format!("{:020}.json", snapshot.version));
    let listed: Vec<object_store::ObjectMeta> = store.list_with_offset(Some(&log), &after).try_collect().await.map_err(failed)?;
    let mut commits: Vec<u64> = listed
        .iter()
        .filter_map(|m| m.location.filename().and_then(|n| n.strip_suffix(".json")).and_then(|v| v.parse::<u64>().ok()))
        .filter(|v| *v > snapshot.version)
        .collect();
    commits.sort_unstable();
    for (expected, version) in (snapshot.version + 1..).zip(commits) {
        if version != expected {
            return Ok(false);
        }
        let bytes = store.get(&log.clone().join(format!("{version:020}.json"))).await.map_err(failed)?.bytes().await.map_err(failed)?;
        let actions = parse_commit(&bytes, partition_columns).map_err(|e| ReadError::Failed(format!("version {version}: {e}")))?;
        snapshot.apply(version, &actions);
    }
    Ok(true)
}

/// The live files and configuration a classic single-file checkpoint holds.
async fn read_checkpoint(store: &dyn ObjectStore, version: u64, partition_columns: &[&str]) -> Result<Snapshot, ReadError> {
    let path = Path::from("_delta_log").join(format!("{version:020}.checkpoint.parquet"));
    let bytes: Bytes = match store.get(&path).await {
        Ok(result) => result.bytes().await.map_err(failed)?,
        Err(object_store::Error::NotFound { .. }) => return Err(ReadError::Unsupported(format!("no classic checkpoint at version {version}"))),
        Err(e) => return Err(failed(e)),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(failed)?;
    // Only the live files and the configuration: a table rewritten hourly
    // keeps many times more tombstones (`remove`) than live files until
    // they expire, and decoding them would make every open cost its history.
    let wanted: Vec<usize> = ["add", "metaData"].iter().filter_map(|name| builder.schema().index_of(name).ok()).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
    let reader = builder.with_projection(mask).build().map_err(failed)?;
    let mut snapshot = Snapshot { version, ..Default::default() };
    for batch in reader {
        let batch: RecordBatch = batch.map_err(failed)?;
        if let Some(adds) = batch.column_by_name("add").map(|c| c.as_struct()) {
            read_adds(adds, partition_columns, &mut snapshot)?;
        }
        if let Some(metadata) = batch.column_by_name("metaData").map(|c| c.as_struct()) {
            let Some(configuration) = metadata.column_by_name("configuration") else { continue };
            let configuration = configuration.as_map();
            for row in (0..metadata.len()).filter(|&i| metadata.is_valid(i)) {
                snapshot.configuration.clear();
                for_each_entry(configuration, row, |name, value| {
                    snapshot.configuration.insert(name.to_string(), value.map(str::to_string));
                });
            }
        }
    }
    Ok(snapshot)
}

fn read_adds(adds: &StructArray, partition_columns: &[&str], snapshot: &mut Snapshot) -> Result<(), ReadError> {
    let column = |name: &str| adds.column_by_name(name).ok_or_else(|| ReadError::Unsupported(format!("a checkpoint without add.{name}")));
    let path = column("path")?.as_string::<i32>();
    let size = column("size")?.as_primitive::<Int64Type>();
    let modified = column("modificationTime")?.as_primitive::<Int64Type>();
    let values = column("partitionValues")?.as_map();
    let stats = adds.column_by_name("stats").map(|c| c.as_string::<i32>());
    let tags = adds.column_by_name("tags").map(|c| c.as_map());
    for row in (0..adds.len()).filter(|&i| adds.is_valid(i)) {
        let mut partition: PartitionKey = vec![None; partition_columns.len()];
        for_each_entry(values, row, |name, value| {
            if let Some(at) = partition_columns.iter().position(|c| *c == name) {
                partition[at] = value.map(str::to_string);
            }
        });
        let stats = stats.filter(|s| s.is_valid(row)).map(|s| s.value(row));
        let mut keys = None;
        if let Some(tags) = tags {
            for_each_entry(tags, row, |name, value| {
                if name == TAG {
                    keys = value.and_then(KeyFilter::decode);
                }
            });
        }
        let file = data_file(decode(path.value(row)), partition, size.value(row), modified.value(row), stats, keys);
        snapshot.files.insert(file.path.clone(), file);
    }
    Ok(())
}

/// Calls `visit` with every (key, value) of a row of a string map column,
/// without copying them.
fn for_each_entry(map: &MapArray, row: usize, mut visit: impl FnMut(&str, Option<&str>)) {
    if map.is_null(row) {
        return;
    }
    let (start, end) = (map.value_offsets()[row] as usize, map.value_offsets()[row + 1] as usize);
    let (keys, values) = (map.keys().as_string::<i32>(), map.values().as_string::<i32>());
    for i in start..end {
        visit(keys.value(i), values.is_valid(i).then(|| values.value(i)));
    }
}
