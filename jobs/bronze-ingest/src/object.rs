//! One landing object to arrow batches: inflate, split lines, parse, and send
//! events and rejects onward in bounded batches as it goes.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::Arc;

use bytes::Bytes;
use flate2::bufread::MultiGzDecoder;
use streamreel_lake::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use streamreel_lake::arrow::datatypes::Schema;

use crate::lines::{Line, for_each_line};
use crate::parse::{Event, Limits, Reject, RejectReason, parse_line};
use crate::schema::{EVENTS_SCHEMA, REJECTS_SCHEMA, without_partitions};

/// Rows per batch handed to the writer: large enough to amortise, small
/// enough that a few in flight stay far below the memory bound.
pub const BATCH_ROWS: usize = 16 * 1024;
const READ_BUFFER: usize = 256 * 1024;

/// What the ingest needs to know to parse one object.
#[derive(Debug, Clone)]
pub struct ObjectJob {
    /// Path relative to the landing root, stored as `source_object`.
    pub name: String,
    pub gzip: bool,
    pub limits: Limits,
    pub max_line_bytes: usize,
    pub run_id: Arc<str>,
}

pub enum Batch {
    Events(RecordBatch),
    Rejects(RecordBatch),
}

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct ObjectStats {
    pub lines: u64,
    pub blank_lines: u64,
    pub rows: u64,
    pub rejects: BTreeMap<&'static str, u64>,
}

impl ObjectStats {
    pub fn rejected(&self) -> u64 {
        self.rejects.values().sum()
    }

    pub fn add(&mut self, other: &ObjectStats) {
        self.lines += other.lines;
        self.blank_lines += other.blank_lines;
        self.rows += other.rows;
        for (reason, n) in &other.rejects {
            *self.rejects.entry(reason).or_default() += n;
        }
    }
}

/// Parses a whole object, calling `send` with each full batch; `send`
/// returning false (the writer has gone) stops the work early.
pub fn parse_object(job: &ObjectJob, bytes: Bytes, mut send: impl FnMut(Batch) -> bool) -> ObjectStats {
    let mut stats = ObjectStats::default();
    if bytes.is_empty() {
        // An empty object is fine: zero rows (even when named .gz).
        return stats;
    }
    let mut events = EventColumns::new(&job.name, &job.run_id);
    let mut rejects = RejectColumns::new(&job.name, &job.run_id);
    let mut open = true;

    let mut on_line = |line_number: u64, line: Line<'_>| {
        if !open {
            return;
        }
        stats.lines += 1;
        let outcome = match line {
            Line::TooLong { prefix, length } => Err((
                Reject {
                    reason: RejectReason::LineTooLong,
                    detail: format!("line of {length} bytes is longer than the limit of {}", job.max_line_bytes),
                },
                prefix,
            )),
            Line::Complete(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
                stats.lines -= 1;
                stats.blank_lines += 1;
                return;
            }
            Line::Complete(bytes) => match parse_line(bytes, &job.limits) {
                Ok(event) => {
                    events.push(&event, line_number, bytes);
                    stats.rows += 1;
                    Ok(())
                }
                Err(reject) => Err((reject, bytes)),
            },
        };
        if let Err((reject, raw)) = outcome {
            *stats.rejects.entry(reject.reason.code()).or_default() += 1;
            rejects.push(Some(line_number), &reject, Some(raw));
        }
        if events.len >= BATCH_ROWS {
            open = send(Batch::Events(events.finish()));
        }
        if rejects.len >= BATCH_ROWS {
            open = open && send(Batch::Rejects(rejects.finish()));
        }
    };

    let walked = if job.gzip {
        let reader = BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(&bytes[..]));
        for_each_line(reader, job.max_line_bytes, &mut on_line)
    } else {
        for_each_line(&bytes[..], job.max_line_bytes, &mut on_line)
    };
    if let Err((lines_read, error)) = walked {
        // The lines before the damage were good and are kept; the object
        // itself is recorded with where and why it broke.
        let reject = Reject {
            reason: RejectReason::UnreadableObject,
            detail: format!("cannot read the object after line {lines_read}: {error}"),
        };
        *stats.rejects.entry(reject.reason.code()).or_default() += 1;
        rejects.push(None, &reject, None);
    }
    if open && events.len > 0 {
        open = send(Batch::Events(events.finish()));
    }
    if open && rejects.len > 0 {
        send(Batch::Rejects(rejects.finish()));
    }
    stats
}

/// A reject for an object that could not even be fetched.
pub fn object_reject(name: &str, run_id: &str, detail: String) -> RecordBatch {
    let mut rejects = RejectColumns::new(name, run_id);
    rejects.push(None, &Reject { reason: RejectReason::UnreadableObject, detail }, None);
    rejects.finish()
}

/// The line as text: almost always valid UTF-8 already (checked at memory
/// speed); otherwise with replacement characters.
fn text(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// Typical bytes per value, to size the builders once per batch.
const ID_BYTES: usize = 32;
const LINE_BYTES: usize = 768;

fn strings(bytes_per_value: usize) -> StringBuilder {
    StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * bytes_per_value)
}

struct EventColumns<'j> {
    source: &'j str,
    run_id: &'j str,
    len: usize,
    ids: [StringBuilder; 4],
    timestamp: TimestampMicrosecondBuilder,
    numbers: [Float64Builder; 5],
    counters: [Int64Builder; 2],
    texts: [StringBuilder; 12],
    source_object: StringBuilder,
    line_number: Int64Builder,
    run: StringBuilder,
    raw_line: StringBuilder,
    schema: Arc<Schema>,
}

impl<'j> EventColumns<'j> {
    fn new(source: &'j str, run_id: &'j str) -> Self {
        EventColumns {
            source,
            run_id,
            len: 0,
            ids: std::array::from_fn(|_| strings(ID_BYTES)),
            timestamp: TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
            numbers: std::array::from_fn(|_| Float64Builder::with_capacity(BATCH_ROWS)),
            counters: std::array::from_fn(|_| Int64Builder::with_capacity(BATCH_ROWS)),
            texts: std::array::from_fn(|_| strings(ID_BYTES)),
            source_object: strings(64),
            line_number: Int64Builder::with_capacity(BATCH_ROWS),
            run: strings(48),
            raw_line: strings(LINE_BYTES),
            schema: without_partitions(&EVENTS_SCHEMA),
        }
    }

    fn push(&mut self, e: &Event<'_>, line_number: u64, raw: &[u8]) {
        for (builder, value) in self.ids.iter_mut().zip([&e.event_id, &e.customer_id, &e.title_id, &e.event_type]) {
            builder.append_value(value);
        }
        self.timestamp.append_value(e.timestamp_micros);
        // Order of EVENTS_SCHEMA: position, watch duration, completion, bandwidth, then
        // buffering_events (counter), buffering duration, error_count (counter).
        self.numbers[0].append_option(e.position_seconds);
        self.numbers[1].append_option(e.watch_duration_seconds);
        self.numbers[2].append_option(e.completion_percentage);
        self.numbers[3].append_option(e.bandwidth_mbps);
        self.counters[0].append_option(e.buffering_events);
        self.numbers[4].append_option(e.buffering_duration_seconds);
        self.counters[1].append_option(e.error_count);
        for (builder, value) in self.texts.iter_mut().zip(&e.texts) {
            builder.append_option(value.as_deref());
        }
        self.source_object.append_value(self.source);
        self.line_number.append_value(line_number as i64);
        self.run.append_value(self.run_id);
        self.raw_line.append_value(text(raw));
        self.len += 1;
    }

    /// The batch so far; the builders start over at full capacity (arrow's
    /// own `finish` would leave them empty, to regrow every batch).
    fn finish(&mut self) -> RecordBatch {
        let fresh = EventColumns::new(self.source, self.run_id);
        std::mem::replace(self, fresh).into_batch()
    }

    fn into_batch(mut self) -> RecordBatch {
        let [id, customer, title, event_type] = &mut self.ids;
        let [position, watch, completion, bandwidth, buffering_seconds] = &mut self.numbers;
        let [buffering_events, errors] = &mut self.counters;
        let mut columns: Vec<ArrayRef> = vec![
            std::sync::Arc::new(id.finish()),
            std::sync::Arc::new(customer.finish()),
            std::sync::Arc::new(title.finish()),
            std::sync::Arc::new(event_type.finish()),
            std::sync::Arc::new(self.timestamp.finish()),
            std::sync::Arc::new(position.finish()),
            std::sync::Arc::new(watch.finish()),
            std::sync::Arc::new(completion.finish()),
            std::sync::Arc::new(bandwidth.finish()),
            std::sync::Arc::new(buffering_events.finish()),
            std::sync::Arc::new(buffering_seconds.finish()),
            std::sync::Arc::new(errors.finish()),
        ];
        columns.extend(self.texts.iter_mut().map(|b| std::sync::Arc::new(b.finish()) as ArrayRef));
        columns.push(std::sync::Arc::new(self.source_object.finish()));
        columns.push(std::sync::Arc::new(self.line_number.finish()));
        columns.push(std::sync::Arc::new(self.run.finish()));
        columns.push(std::sync::Arc::new(self.raw_line.finish()));
        RecordBatch::try_new(self.schema.clone(), columns).expect("event columns match the bronze schema")
    }
}

struct RejectColumns<'j> {
    source: &'j str,
    run_id: &'j str,
    len: usize,
    source_object: StringBuilder,
    line_number: Int64Builder,
    reason: StringBuilder,
    detail: StringBuilder,
    raw_line: StringBuilder,
    run: StringBuilder,
    schema: Arc<Schema>,
}

impl<'j> RejectColumns<'j> {
    fn new(source: &'j str, run_id: &'j str) -> Self {
        RejectColumns {
            source,
            run_id,
            len: 0,
            source_object: StringBuilder::new(),
            line_number: Int64Builder::new(),
            reason: StringBuilder::new(),
            detail: StringBuilder::new(),
            raw_line: StringBuilder::new(),
            run: StringBuilder::new(),
            schema: without_partitions(&REJECTS_SCHEMA),
        }
    }

    fn push(&mut self, line_number: Option<u64>, reject: &Reject, raw: Option<&[u8]>) {
        self.source_object.append_value(self.source);
        self.line_number.append_option(line_number.map(|n| n as i64));
        self.reason.append_value(reject.reason.code());
        self.detail.append_value(&reject.detail);
        self.raw_line.append_option(raw.map(text));
        self.run.append_value(self.run_id);
        self.len += 1;
    }

    fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source_object.finish()),
            Arc::new(self.line_number.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.detail.finish()),
            Arc::new(self.raw_line.finish()),
            Arc::new(self.run.finish()),
        ];
        self.len = 0;
        RecordBatch::try_new(self.schema.clone(), columns).expect("reject columns match the rejects schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn job(gzip: bool) -> ObjectJob {
        ObjectJob {
            name: "year=2025/month=08/day=11/hour=14/a.json.gz".into(),
            gzip,
            limits: Limits { latest_micros: i64::MAX },
            max_line_bytes: 200,
            run_id: "test".into(),
        }
    }

    const GOOD: &str = r#"{"event_id":"e1","customer_id":"c","title_id":"t","event_type":"start","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":0}"#;

    fn gzip(text: &str) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    fn run(job: &ObjectJob, bytes: Bytes) -> (ObjectStats, usize, Vec<String>) {
        let mut rows = 0;
        let mut reasons = Vec::new();
        let stats = parse_object(job, bytes, |batch| {
            match batch {
                Batch::Events(b) => rows += b.num_rows(),
                Batch::Rejects(b) => {
                    let col = b.column_by_name("reason").unwrap();
                    let col = col.as_any().downcast_ref::<streamreel_lake::arrow::array::StringArray>().unwrap();
                    reasons.extend(col.iter().map(|r| r.unwrap().to_string()));
                }
            }
            true
        });
        (stats, rows, reasons)
    }

    #[test]
    fn good_bad_blank_and_long_lines_are_all_accounted_for() {
        let text = format!("{GOOD}\nnot json\n\n{}\n{GOOD}", "x".repeat(300));
        let (stats, rows, reasons) = run(&job(true), gzip(&text));
        assert_eq!((stats.lines, stats.blank_lines, stats.rows), (4, 1, 2));
        assert_eq!(rows, 2);
        assert_eq!(reasons, ["invalid_json", "line_too_long"]);
        assert_eq!(stats.rows + stats.rejected(), stats.lines);
    }

    #[test]
    fn a_truncated_gzip_keeps_what_came_before_and_records_the_object() {
        let body: String = (0..2000).map(|_| format!("{GOOD}\n")).collect();
        let full = gzip(&body);
        let truncated = full.slice(..full.len() / 2);
        let (stats, rows, reasons) = run(&job(true), truncated);
        assert!(rows > 0 && rows < 2000, "{rows}");
        assert_eq!(reasons.last().map(String::as_str), Some("unreadable_object"));
        assert_eq!(stats.rejects.get("unreadable_object"), Some(&1));
    }

    #[test]
    fn plain_text_named_gz_is_an_unreadable_object() {
        let (stats, rows, reasons) = run(&job(true), Bytes::from(format!("{GOOD}\n")));
        assert_eq!(rows, 0);
        assert_eq!(reasons, ["unreadable_object"]);
        assert_eq!(stats.lines, 0);
    }

    #[test]
    fn plain_json_objects_and_empty_objects_are_fine() {
        let (stats, rows, _) = run(&job(false), Bytes::from(format!("{GOOD}\n{GOOD}\n")));
        assert_eq!((stats.rows, rows), (2, 2));
        let (stats, rows, reasons) = run(&job(true), gzip(""));
        assert_eq!((stats.lines, rows, reasons.len()), (0, 0, 0));
        let (stats, _, reasons) = run(&job(true), Bytes::new());
        assert_eq!((stats.lines, reasons.len()), (0, 0));
    }
}
