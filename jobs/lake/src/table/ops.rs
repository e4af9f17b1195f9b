//! The changes stages make, built on scans and writers: append rows,
//! replace the rows that match a predicate (copy-on-write of the files that
//! hold them), and replace whole partitions. Each returns the [`Change`] to
//! commit, with the partitions it read.

use std::collections::BTreeSet;

use deltalake::arrow::array::{BooleanArray, RecordBatch};
use deltalake::arrow::compute::{filter_record_batch, not};

use super::{Change, DataFile, PartitionKey, ReadSet, RowFilter, Table};
use crate::error::{LakeError, Result};

impl Table {
    /// New rows in new files: a blind append.
    pub async fn append(&self, rows: &[RecordBatch]) -> Result<Change> {
        let mut writer = self.writer();
        writer.write_partitioned(rows).await?;
        Ok(Change { adds: writer.finish().await?, removes: Vec::new(), reads: ReadSet::Nothing, compaction: false })
    }

    /// Removes the rows of `scope`'s files that `matches` selects, by
    /// rewriting those files without them, and adds `rows` (of each batch,
    /// the rows `selected` lists, as `TableWriter::write_selected` takes
    /// them). The plan read `reads` (at least the partitions of `scope`).
    ///
    /// Each file in scope is read once, whole, and split in memory: nearly
    /// every file a plan puts in scope holds a match, so probing the filter
    /// columns first and then reading the hit files again opened and
    /// decoded almost every file twice.
    pub async fn replace_rows(
        &self,
        scope: Vec<DataFile>,
        matches: RowFilter,
        rows: &[RecordBatch],
        selected: &[Option<Vec<u32>>],
        reads: BTreeSet<PartitionKey>,
    ) -> Result<Change> {
        let mut reads = reads;
        reads.extend(scope.iter().map(|f| f.partition.clone()));
        let mut hit = Vec::new();
        let mut kept: Vec<RecordBatch> = Vec::new();
        let mut replaced = 0;
        for (file, batches) in self.scan(scope).read_per_file().await? {
            let selected = batches.iter().map(|batch| matches.select(batch)).collect::<Result<Vec<BooleanArray>>>()?;
            let matched: usize = selected.iter().map(|s| s.true_count()).sum();
            if matched == 0 {
                continue;
            }
            replaced += matched;
            for (batch, selected) in batches.iter().zip(&selected) {
                let others = not(selected).map_err(|e| LakeError::data("rows to keep", e))?;
                kept.push(filter_record_batch(batch, &others).map_err(|e| LakeError::data("rows to keep", e))?);
            }
            hit.push(file);
        }
        tracing::debug!(
            table = %self.location(),
            files = hit.len(),
            replaced,
            kept = kept.iter().map(|b| b.num_rows()).sum::<usize>(),
            "rewriting files without the replaced rows"
        );
        // The kept rows are whole batches; the new ones follow with their selections.
        let selected: Vec<Option<&[u32]>> = std::iter::repeat_n(None, kept.len()).chain(selected.iter().map(Option::as_deref)).collect();
        kept.extend(rows.iter().cloned());
        let mut writer = self.writer();
        writer.write_selected(&kept, &selected).await?;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, LazyLock};

    use deltalake::arrow::array::{AsArray, Int32Array, Int64Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema};

    use super::*;
    use crate::Location;
    use crate::table::{CommitMeta, TableSpec};

    static SPEC: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
        path: "test/rows",
        schema: Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("value", DataType::Int64, false),
            Field::new("part", DataType::Int32, false),
        ])),
        partition_columns: &["part"],
        stats_columns: &[],
        plain_columns: &[],
        sort_columns: &["value"],
        file_hours: None,
        sort_by_hour: false,
        row_group_rows: 1024,
        bucketed: false,
        private: false,
        key_columns: &[],
    });

    fn rows(rows: &[(&str, i64, i32)]) -> RecordBatch {
        let names: StringArray = rows.iter().map(|r| Some(r.0)).collect();
        let values: Int64Array = rows.iter().map(|r| r.1).collect();
        let parts: Int32Array = rows.iter().map(|r| r.2).collect();
        RecordBatch::try_new(SPEC.schema.clone(), vec![Arc::new(names), Arc::new(values), Arc::new(parts)]).unwrap()
    }

    async fn stored(lake: &Location) -> Vec<(String, i64, i32)> {
        let table = Table::open(lake, &SPEC, 1).await.unwrap();
        let mut found = Vec::new();
        for batch in table.scan(table.files().to_vec()).read().await.unwrap() {
            let (names, values, parts) =
                (batch.column(0).as_string::<i32>(), batch.column(1).as_primitive::<Int64Type>(), batch.column(2).as_primitive::<Int32Type>());
            found.extend((0..batch.num_rows()).map(|i| (names.value(i).to_string(), values.value(i), parts.value(i))));
        }
        found.sort();
        found
    }

    /// A new table of `SPEC` in `dir`, and what its commits carry.
    async fn empty_table(dir: &tempfile::TempDir) -> (Location, CommitMeta, Table) {
        let lake = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let meta = CommitMeta { worker: "test".into(), run_id: "run".into(), window: None, shard: None };
        let table = Table::open(&lake, &SPEC, 1).await.unwrap();
        (lake, meta, table)
    }

    #[tokio::test]
    async fn replacing_rows_rewrites_only_the_files_that_hold_a_match() {
        let dir = tempfile::tempdir().unwrap();
        let (lake, meta, mut table) = empty_table(&dir).await;
        let change = table.append(&[rows(&[("a", 1, 0), ("b", 2, 0), ("c", 3, 1), ("d", 4, 2)])]).await.unwrap();
        table.commit(change, &meta).await.unwrap();
        let mut table = Table::open(&lake, &SPEC, 1).await.unwrap();
        assert_eq!(table.files().len(), 3);

        // The filter reads its own column by position, as scans hand it only
        // the filter's columns.
        let matches =
            RowFilter::new(&["value"], |batch| batch.column(0).as_primitive::<Int64Type>().iter().map(|v| Some(matches!(v, Some(2 | 4)))).collect());
        let change = table.replace_rows(table.files().to_vec(), matches, &[rows(&[("e", 5, 0)])], &[], BTreeSet::new()).await.unwrap();
        let removed: BTreeSet<PartitionKey> = change.removes.iter().map(|f| f.partition.clone()).collect();
        assert_eq!(removed, BTreeSet::from([vec![Some("0".to_string())], vec![Some("2".to_string())]]), "only the files holding b and d");
        assert!(matches!(&change.reads, ReadSet::Partitions(reads) if reads.len() == 3));
        table.commit(change, &meta).await.unwrap();

        let expected: Vec<(String, i64, i32)> = [("a", 1, 0), ("c", 3, 1), ("e", 5, 0)].iter().map(|(n, v, p)| (n.to_string(), *v, *p)).collect();
        assert_eq!(stored(&lake).await, expected);
    }

    #[tokio::test]
    async fn only_the_selected_rows_of_new_batches_are_added() {
        let dir = tempfile::tempdir().unwrap();
        let (lake, meta, mut table) = empty_table(&dir).await;
        let nothing = RowFilter::new(&["value"], |batch| BooleanArray::from(vec![false; batch.num_rows()]));
        let batches = [rows(&[("a", 1, 0), ("b", 2, 1), ("c", 3, 0), ("d", 4, 0)]), rows(&[("e", 5, 0), ("f", 6, 2)]), rows(&[("g", 7, 0)])];
        // Rows 0 and 2 of the first batch, the second whole (`None`), the
        // third whole (no entry), and a batch with no rows selected.
        let selected = [Some(vec![0, 2]), None];
        let change = table.replace_rows(Vec::new(), nothing.clone(), &batches, &selected, BTreeSet::new()).await.unwrap();
        table.commit(change, &meta).await.unwrap();
        let change = table.replace_rows(Vec::new(), nothing, &[rows(&[("h", 8, 0)])], &[Some(vec![])], BTreeSet::new()).await.unwrap();
        assert!(change.adds.is_empty(), "no row selected, no file");

        let expected: Vec<(String, i64, i32)> =
            [("a", 1, 0), ("c", 3, 0), ("e", 5, 0), ("f", 6, 2), ("g", 7, 0)].iter().map(|(n, v, p)| (n.to_string(), *v, *p)).collect();
        assert_eq!(stored(&lake).await, expected);
    }
}
