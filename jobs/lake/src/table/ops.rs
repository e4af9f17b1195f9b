//! The changes stages make, built on scans and writers: append rows,
//! replace the rows that match a predicate (copy-on-write of the files that
//! hold them), and replace whole partitions. Each returns the [`Change`] to
//! commit, with the partitions it read.

use std::collections::BTreeSet;
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::compute::not;

use super::{Change, DataFile, PartitionKey, ReadSet, RowFilter, Table};
use crate::error::Result;

impl Table {
    /// New rows in new files: a blind append.
    pub async fn append(&self, rows: &[RecordBatch]) -> Result<Change> {
        let mut writer = self.writer();
        writer.write_partitioned(rows).await?;
        Ok(Change { adds: writer.finish().await?, removes: Vec::new(), reads: ReadSet::Nothing, compaction: false })
    }

    /// Removes the rows of `scope`'s files that `matches` selects, by
    /// rewriting those files without them, and adds `rows`. The plan read
    /// `reads` (at least the partitions of `scope`).
    pub async fn replace_rows(
        &self,
        scope: Vec<DataFile>,
        matches: RowFilter,
        rows: &[RecordBatch],
        reads: BTreeSet<PartitionKey>,
    ) -> Result<Change> {
        let mut reads = reads;
        reads.extend(scope.iter().map(|f| f.partition.clone()));
        let probed =
            self.scan(scope).columns(&matches.columns.iter().map(String::as_str).collect::<Vec<_>>()).filter(matches.clone()).read_per_file().await?;
        let hit: Vec<DataFile> = probed.into_iter().filter(|(_, batches)| batches.iter().any(|b| b.num_rows() > 0)).map(|(file, _)| file).collect();
        let keep = matches.keep.clone();
        let others = RowFilter { columns: matches.columns.clone(), keep: Arc::new(move |batch| not(&keep(batch)).expect("boolean not")) };
        let mut kept: Vec<RecordBatch> = self.scan(hit.clone()).filter(others).read().await?;
        kept.extend(rows.iter().cloned());
        let mut writer = self.writer();
        writer.write_partitioned(&kept).await?;
        Ok(Change { adds: writer.finish().await?, removes: hit, reads: ReadSet::Partitions(reads), compaction: false })
    }

    /// Replaces everything in `partitions` with `rows` (whose partitions must
    /// be among them).
    pub async fn replace_partitions(&self, partitions: BTreeSet<PartitionKey>, rows: &[RecordBatch]) -> Result<Change> {
        let removes = self.files_where(|key| partitions.contains(key));
        let mut writer = self.writer();
        writer.write_partitioned(rows).await?;
        let reads = if self.spec().partition_columns.is_empty() { ReadSet::Table } else { ReadSet::Partitions(partitions) };
        Ok(Change { adds: writer.finish().await?, removes, reads, compaction: false })
    }
}
