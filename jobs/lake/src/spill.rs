//! Scratch space on the worker's local disk: batches parked by part in Arrow
//! IPC files, read back one part at a time. A stage that must see all of a
//! part at once (silver's chunk of buckets) reads its input once, parks it
//! here, and holds one part in memory instead of reading the input per part.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::ipc::reader::FileReader;
use deltalake::arrow::ipc::writer::FileWriter;

use crate::error::{LakeError, Result};

/// Parts of parked batches, in a temporary directory removed on drop. A
/// spill of one part keeps it in memory: it would be read back whole anyway.
pub struct Spill {
    dir: Option<tempfile::TempDir>,
    writers: Vec<Option<FileWriter<BufWriter<File>>>>,
    rows: Vec<u64>,
    in_memory: Vec<RecordBatch>,
}

impl Spill {
    /// `parts` empty parts, under the system's temporary directory (`TMPDIR`)
    /// when there are several.
    pub fn new(parts: usize) -> Result<Spill> {
        let dir = if parts > 1 {
            Some(tempfile::Builder::new().prefix("streamreel-spill-").tempdir().map_err(|e| spill_error(std::env::temp_dir(), e))?)
        } else {
            None
        };
        Ok(Spill { dir, writers: (0..parts).map(|_| None).collect(), rows: vec![0; parts], in_memory: Vec::new() })
    }

    pub fn parts(&self) -> usize {
        self.rows.len()
    }

    /// Rows parked in `part`.
    pub fn rows(&self, part: usize) -> u64 {
        self.rows[part]
    }

    /// Parks `batch` at the end of `part`. Every batch of a part has the
    /// schema of its first.
    pub fn append(&mut self, part: usize, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows[part] += batch.num_rows() as u64;
        if self.dir.is_none() {
            self.in_memory.push(batch.clone());
            return Ok(());
        }
        let path = self.path(part);
        let writer = match &mut self.writers[part] {
            Some(writer) => writer,
            slot => {
                let file = File::create(&path).map_err(|e| spill_error(&path, e))?;
                slot.insert(FileWriter::try_new(BufWriter::new(file), &batch.schema()).map_err(|e| spill_error(&path, e))?)
            }
        };
        writer.write(batch).map_err(|e| spill_error(&path, e))
    }

    /// Ends writing: every part can be read from now on.
    pub fn seal(&mut self) -> Result<()> {
        for part in 0..self.writers.len() {
            if let Some(mut writer) = self.writers[part].take() {
                writer.finish().map_err(|e| spill_error(self.path(part), e))?;
            }
        }
        Ok(())
    }

    /// The batches of `part`, in the order they were parked (none if nothing
    /// was). The spill must be sealed.
    pub fn read(&self, part: usize) -> Result<Vec<RecordBatch>> {
        if self.writers[part].is_some() {
            return Err(spill_error(self.path(part), "read before the spill was sealed"));
        }
        if self.rows[part] == 0 {
            return Ok(Vec::new());
        }
        if self.dir.is_none() {
            return Ok(self.in_memory.clone());
        }
        let path = self.path(part);
        let file = File::open(&path).map_err(|e| spill_error(&path, e))?;
        let reader = FileReader::try_new(BufReader::new(file), None).map_err(|e| spill_error(&path, e))?;
        reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| spill_error(&path, e))
    }

    fn path(&self, part: usize) -> PathBuf {
        let dir = self.dir.as_ref().map_or_else(std::env::temp_dir, |d| d.path().to_path_buf());
        dir.join(format!("part-{part}.arrow"))
    }
}

fn spill_error(path: impl Into<PathBuf>, cause: impl std::fmt::Display) -> LakeError {
    LakeError::Spill { path: path.into(), cause: crate::error::clean(&cause) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{AsArray, Int64Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        let texts: StringArray = values.iter().map(|v| (v % 2 == 0).then(|| format!("row {v}"))).collect();
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec())), Arc::new(texts)]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect()
    }

    #[test]
    fn parts_read_back_what_was_parked_in_order() {
        let mut spill = Spill::new(3).unwrap();
        spill.append(2, &batch(&[1, 2])).unwrap();
        spill.append(0, &batch(&[3])).unwrap();
        spill.append(2, &batch(&[4, 5, 6])).unwrap();
        spill.append(1, &batch(&[])).unwrap();
        assert!(spill.read(2).is_err(), "unsealed parts cannot be read");
        spill.seal().unwrap();
        assert_eq!((spill.rows(0), spill.rows(1), spill.rows(2)), (1, 0, 5));
        assert_eq!(values(&spill.read(2).unwrap()), vec![1, 2, 4, 5, 6]);
        assert_eq!(values(&spill.read(0).unwrap()), vec![3]);
        assert!(spill.read(1).unwrap().is_empty());
        let back = spill.read(2).unwrap();
        assert_eq!(back[1], batch(&[4, 5, 6]), "values and nulls survive");
    }

    #[test]
    fn the_directory_goes_with_the_spill() {
        let mut spill = Spill::new(2).unwrap();
        spill.append(0, &batch(&[1])).unwrap();
        let dir = spill.dir.as_ref().expect("several parts go to disk").path().to_path_buf();
        assert!(dir.join("part-0.arrow").exists());
        drop(spill);
        assert!(!dir.exists());
    }

    #[test]
    fn one_part_stays_in_memory() {
        let mut spill = Spill::new(1).unwrap();
        spill.append(0, &batch(&[1, 2])).unwrap();
        spill.append(0, &batch(&[3])).unwrap();
        spill.seal().unwrap();
        assert!(spill.dir.is_none());
        assert_eq!(spill.rows(0), 3);
        assert_eq!(values(&spill.read(0).unwrap()), vec![1, 2, 3]);
    }
}
