//! Scratch space on the worker's local disk: batches parked by part in Arrow
//! IPC files, read back one part at a time. A stage that must see all of a
//! part at once (silver's chunk of buckets) reads its input once, parks it
//! here, and holds one part in memory instead of reading the input per part.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::ipc::reader::FileReader;
use deltalake::arrow::ipc::writer::FileWriter;

use crate::error::{LakeError, Result};

/// Appends queued for the writing thread, at most: the queue holds the
/// batches, so this bounds the memory the spill adds to its caller's.
const QUEUED_APPENDS: usize = 4;

/// Write buffer per part file. A batch reaches a part as a slice of a few
/// thousand rows, written buffer by buffer: with the standard 8 KiB almost
/// every column buffer was a system call of its own, and they took more time
/// than the work that made the batches.
const PART_BUFFER: usize = 256 * 1024;

/// Parts of parked batches, in a temporary directory removed on drop. A
/// spill of one part keeps it in memory: it would be read back whole anyway.
/// Parts on disk are written by a thread of their own, so the caller goes
/// on with its next batches while earlier ones are written.
pub struct Spill {
    writer: Option<Writer>,
    dir: Option<tempfile::TempDir>,
    rows: Vec<u64>,
    in_memory: Vec<RecordBatch>,
}

impl Spill {
    /// `parts` empty parts, under the system's temporary directory (`TMPDIR`)
    /// when there are several.
    pub fn new(parts: usize) -> Result<Spill> {
        let (dir, writer) = if parts > 1 {
            let dir = tempfile::Builder::new().prefix("streamreel-spill-").tempdir().map_err(|e| spill_error(std::env::temp_dir(), e))?;
            let writer = Writer::start(dir.path().to_path_buf(), parts);
            (Some(dir), Some(writer))
        } else {
            (None, None)
        };
        Ok(Spill { writer, dir, rows: vec![0; parts], in_memory: Vec::new() })
    }

    pub fn parts(&self) -> usize {
        self.rows.len()
    }

    /// Rows parked in `part`.
    pub fn rows(&self, part: usize) -> u64 {
        self.rows[part]
    }

    /// Parks each batch at the end of its part, in the order given. Every
    /// batch of a part has the schema of its first.
    pub fn append(&mut self, batches: Vec<(usize, RecordBatch)>) -> Result<()> {
        let batches: Vec<(usize, RecordBatch)> = batches.into_iter().filter(|(_, batch)| batch.num_rows() > 0).collect();
        for (part, batch) in &batches {
            self.rows[*part] += batch.num_rows() as u64;
        }
        if self.dir.is_none() {
            self.in_memory.extend(batches.into_iter().map(|(_, batch)| batch));
            return Ok(());
        }
        let Some(writer) = &self.writer else {
            return Err(spill_error(self.dir_path(), "appended after the spill was sealed"));
        };
        if writer.queue.as_ref().is_some_and(|queue| queue.send(batches).is_ok()) {
            return Ok(());
        }
        // The writing thread stopped: its error says why.
        let stopped = self.writer.take().and_then(|writer| writer.finish().err());
        Err(stopped.unwrap_or_else(|| spill_error(self.dir_path(), "the writing thread stopped")))
    }

    /// Ends writing: every part can be read from now on.
    pub fn seal(&mut self) -> Result<()> {
        self.writer.take().map_or(Ok(()), Writer::finish)
    }

    /// The batches of `part`, in the order they were parked (none if nothing
    /// was). The spill must be sealed.
    pub fn read(&self, part: usize) -> Result<Vec<RecordBatch>> {
        if self.writer.is_some() {
            return Err(spill_error(part_path(&self.dir_path(), part), "read before the spill was sealed"));
        }
        if self.rows[part] == 0 {
            return Ok(Vec::new());
        }
        if self.dir.is_none() {
            return Ok(self.in_memory.clone());
        }
        let path = part_path(&self.dir_path(), part);
        let file = File::open(&path).map_err(|e| spill_error(&path, e))?;
        let reader = FileReader::try_new(BufReader::with_capacity(PART_BUFFER, file), None).map_err(|e| spill_error(&path, e))?;
        reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| spill_error(&path, e))
    }

    fn dir_path(&self) -> PathBuf {
        self.dir.as_ref().map_or_else(std::env::temp_dir, |d| d.path().to_path_buf())
    }
}

fn part_path(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("part-{part}.arrow"))
}

/// The thread that writes a spill's parts, fed through a bounded queue.
struct Writer {
    queue: Option<SyncSender<Vec<(usize, RecordBatch)>>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Writer {
    fn start(dir: PathBuf, parts: usize) -> Writer {
        let (queue, appends) = sync_channel(QUEUED_APPENDS);
        let thread = std::thread::spawn(move || write_parts(&dir, parts, appends));
        Writer { queue: Some(queue), thread: Some(thread) }
    }

    /// Waits for every queued batch to be written and the files closed.
    fn finish(mut self) -> Result<()> {
        self.queue.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(written)) => written,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    /// A spill dropped unsealed stops its thread before its directory goes.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_parts(dir: &Path, parts: usize, appends: Receiver<Vec<(usize, RecordBatch)>>) -> Result<()> {
    let mut writers: Vec<Option<FileWriter<BufWriter<File>>>> = (0..parts).map(|_| None).collect();
    for batches in appends {
        for (part, batch) in batches {
            let path = part_path(dir, part);
            let writer = match &mut writers[part] {
                Some(writer) => writer,
                slot => {
                    let file = File::create(&path).map_err(|e| spill_error(&path, e))?;
                    slot.insert(FileWriter::try_new(BufWriter::with_capacity(PART_BUFFER, file), &batch.schema()).map_err(|e| spill_error(&path, e))?)
                }
            };
            writer.write(&batch).map_err(|e| spill_error(&path, e))?;
        }
    }
    for (part, writer) in writers.iter_mut().enumerate() {
        if let Some(writer) = writer {
            writer.finish().map_err(|e| spill_error(part_path(dir, part), e))?;
        }
    }
    Ok(())
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
        spill.append(vec![(2, batch(&[1, 2])), (0, batch(&[3]))]).unwrap();
        spill.append(vec![(2, batch(&[4, 5, 6])), (1, batch(&[]))]).unwrap();
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
        spill.append(vec![(0, batch(&[1]))]).unwrap();
        spill.seal().unwrap();
        let dir = spill.dir.as_ref().expect("several parts go to disk").path().to_path_buf();
        assert!(dir.join("part-0.arrow").exists());
        drop(spill);
        assert!(!dir.exists());
        let mut unsealed = Spill::new(2).unwrap();
        unsealed.append(vec![(1, batch(&[1]))]).unwrap();
        let dir = unsealed.dir.as_ref().expect("several parts go to disk").path().to_path_buf();
        drop(unsealed);
        assert!(!dir.exists(), "dropped unsealed, the writing thread stops and the directory goes");
    }

    #[test]
    fn one_part_stays_in_memory() {
        let mut spill = Spill::new(1).unwrap();
        spill.append(vec![(0, batch(&[1, 2])), (0, batch(&[3]))]).unwrap();
        spill.seal().unwrap();
        assert!(spill.dir.is_none());
        assert_eq!(spill.rows(0), 3);
        assert_eq!(values(&spill.read(0).unwrap()), vec![1, 2, 3]);
    }
}
